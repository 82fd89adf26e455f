/*
 * fs_times.h - the times lakectl's metadata cannot hold, kept in memory for
 * the life of a mount: sub-second mtimes and atimes set by utimens, and the
 * ctime of every attribute change (chmod, chown, utimens), and the mtime
 * and ctime of directories whose entries changed. lakectl's
 * ::lakefs::client-mtime is whole seconds and it stores no atime or ctime.
 * Never talks to lakeFS; forgets everything at unmount.
 */
#ifndef LAKEFUSE_FS_TIMES_H
#define LAKEFUSE_FS_TIMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

typedef struct fs_times fs_times;

/* How many paths a mount keeps times for by default (about 200 bytes
 * each): beyond it, the least recently changed are forgotten. */
#define FS_TIMES_MAX_ENTRIES 65536

/* At most max_entries paths (0: FS_TIMES_MAX_ENTRIES). NULL on ENOMEM. */
fs_times *fs_times_new(size_t max_entries);
void fs_times_free(fs_times *t);

/* .lakefs/stats "times": paths kept now, and forgotten by the bound. */
typedef struct fs_times_stats {
    uint64_t entries, evicted;
} fs_times_stats;
void fs_times_get_stats(fs_times *t, fs_times_stats *out);

/* true when nothing is kept (no lock: a hint for hot paths). */
bool fs_times_idle(fs_times *t);

/* An attribute change of (repo, ref, key) now: its ctime becomes now, and
 * atime / mtime (each may be NULL: unchanged) what utimens set. 0 or
 * -ENOMEM. */
int fs_times_change(fs_times *t, const char *repo, const char *ref,
                    const char *key, const struct timespec *atime,
                    const struct timespec *mtime);
/* The directory key (its prefix without the '/', "" or the mount's prefix
 * for a ref root) had a name created, removed or renamed through this
 * mount: its mtime and ctime become now (lakeFS keeps no time for a
 * prefix, and updating the marker on every create would cost a request).
 * 0 or -ENOMEM. */
int fs_times_touch(fs_times *t, const char *repo, const char *ref,
                   const char *key);
/* The file left key (unlink) or moved to new_key (rename; NULL: gone). */
void fs_times_move(fs_times *t, const char *repo, const char *ref,
                   const char *key, const char *new_key);
/* The directory key was removed (new_key NULL) or renamed to new_key:
 * its own entry and those of everything under it go or move along. */
void fs_times_move_dir(fs_times *t, const char *repo, const char *ref,
                       const char *key, const char *new_key);
/* Shows what was kept on st, whose times come from lakeFS: the recorded
 * mtime's nanoseconds while st_mtime is still the second it was set in
 * (a later write or another client's change wins), the atime set, and a
 * ctime of the last change (never before st_mtime). */
void fs_times_apply(fs_times *t, const char *repo, const char *ref,
                    const char *key, struct stat *st);

#endif
