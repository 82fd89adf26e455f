/*
 * writer.h - files open for writing on a branch. Each path being written
 * has one staged file (staging.h), shared by every descriptor open on it,
 * which serves reads and writes until the data is uploaded on the last
 * writer's close or on fsync. Never holds file data in memory; never
 * acknowledges a close before lakeFS has the bytes.
 */
#ifndef LAKEFUSE_WRITER_H
#define LAKEFUSE_WRITER_H

#include "lakefs.h"
#include "log.h"
#include "reader.h"
#include "staging.h"
#include "upload.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct writer writer;
typedef struct wfile wfile;

typedef struct writer_config {
    lakefs_client *client;
    staging *staging;
    logger *log;
    upload_caps caps; /* how uploads reach lakeFS */
    uid_t uid;        /* recorded with explicit modes */
    gid_t gid;
} writer_config;

writer *writer_new(const writer_config *cfg, int *err);
/* Every wfile must have been released. */
void writer_free(writer *w);

/*
 * The wfile of (repo, branch, key), taking a reference: the one already
 * open, else a new one. A new one starts empty when base is NULL, else
 * with base's content (an object of base_size bytes, mtime base_mtime),
 * copied in on first use, so that opening for write and closing without
 * touching the data (touch, chmod through an fd) costs no download. The
 * wfile owns base (reader_close) in every case. `created` marks it changed
 * (an upload is due even if nothing is written: a new or truncated file).
 * NULL from find when no wfile is open for the key. 0 or a negative errno.
 */
int writer_open(writer *w, const char *repo, const char *branch,
                const char *key, reader_file *base, int64_t base_size,
                int64_t base_mtime, bool created, uint32_t mode,
                wfile **out);
wfile *writer_find(writer *w, const char *repo, const char *branch,
                   const char *key);
/* true when no file is open for writing (no lock: a hint for hot paths,
 * which may then skip writer_find and its key). */
bool writer_idle(const writer *w);
/* Drops a reference; the last one frees the wfile and, when its data is
 * on the server (or it was unlinked), its staged file. */
void wfile_release(wfile *f);

ssize_t wfile_read(wfile *f, void *buf, size_t len, off_t off);
/* off < 0: append at the end. */
ssize_t wfile_write(wfile *f, const void *buf, size_t len, off_t off);
int wfile_truncate(wfile *f, off_t size);
/* Current size and mtime. */
void wfile_attrs(wfile *f, int64_t *size, int64_t *mtime, uint32_t *mode);
int wfile_set_mode(wfile *f, uint32_t mode);
int wfile_set_mtime(wfile *f, int64_t mtime);
bool wfile_dirty(wfile *f);
const char *wfile_key(wfile *f);

/* Uploads when changed since the last upload; *out (may be NULL) gets the
 * object's stats when an upload happened (returns 1 then), 0 when there was
 * nothing to do. A failure is -EIO (the staged file stays, journaled as
 * failed, and the next flush tries again). */
int wfile_flush(wfile *f, lakefs_object_stats *out);

/* Flushes every open wfile of the branch with unsent changes (before a
 * commit or merge). 0, or -EIO when one upload failed. */
int writer_flush_branch(writer *w, const char *repo, const char *branch);

/* The object was deleted: the data will not be uploaded. */
void wfile_mark_unlinked(wfile *f);
/* The name key no longer belongs to its wfile (the object was unlinked, or
 * a rename replaced it): the wfile leaves the table, so that a new file of
 * that name starts afresh, and its bytes are never uploaded; descriptors
 * still open on it keep reading them. No-op when key has no wfile. */
void writer_detach(writer *w, const char *repo, const char *branch,
                   const char *key);

/* One file of a directory that the writer holds (open, or not yet on the
 * server): its key, current size, mtime and explicit mode (0: default). */
typedef struct writer_entry {
    const char *key;
    int64_t size;
    int64_t mtime;
    uint32_t mode;
} writer_entry;
/* fn for each wfile of (repo, branch) directly in directory dir_prefix
 * ("" for the root, else "a/b/": keys that start with it and hold no
 * further '/'). fn runs under the writer's table lock and must not call
 * back into the writer; a non-zero return stops the walk and is returned. */
int writer_foreach_in_dir(writer *w, const char *repo, const char *branch,
                          const char *dir_prefix,
                          int (*fn)(void *ctx, const writer_entry *e),
                          void *ctx);

/* Renames open wfiles at old_key, or under old_key + "/" when prefix. */
int writer_rename(writer *w, const char *repo, const char *branch,
                  const char *old_key, const char *new_key, bool prefix);

#endif
