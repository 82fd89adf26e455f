/*
 * staging.h - local files holding written data until lakeFS has it, each
 * with a journal entry saying where it belongs (repository, branch, path),
 * so that nothing handed to the mount is lost if the daemon dies or the
 * server is away. Layout: CACHE_DIR/staging/<session>/<id>.data and
 * <id>.json; a session directory belongs to one live mount, which holds an
 * flock on its `lock` file. Sessions whose lock nobody holds are orphans:
 * the next mount recovers them. Never keeps file data in memory.
 * int results are 0 or a negative errno.
 */
#ifndef LAKEFUSE_STAGING_H
#define LAKEFUSE_STAGING_H

#include "lakefs.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum staging_state {
    STAGING_PENDING, /* written, not (fully) uploaded yet */
    STAGING_FAILED,  /* an upload was tried and failed; error says why */
    STAGING_CLEAN,   /* the server has these bytes (uploaded, or fetched
                        and not changed): recovery drops the entry, so
                        that it never overwrites a newer version */
    STAGING_CONFLICT /* kept aside: the server's object is no longer the
                        base these bytes were written on (or the bytes
                        cannot be trusted); never uploaded automatically,
                        listed until `staged export|discard` */
} staging_state;

/* One journal entry, as read back (all strings owned). When the journal
 * cannot be read, repo, branch and path are NULL (state STAGING_FAILED,
 * error says why); size and mtime are 0 when the data file is missing. */
typedef struct staging_entry {
    char *session;   /* session directory name */
    uint64_t id;
    char *repo;
    char *branch;
    char *path;      /* object key on the branch */
    char *data_path; /* absolute path of the <id>.data file */
    staging_state state;
    char *error;     /* NULL unless STAGING_FAILED */
    uint32_t mode;   /* lakectl's Mode to record (S_IFREG | bits; older
                        journals: bits alone), 0: none */
    int64_t size;    /* of the data file when listed */
    int64_t mtime;   /* of the data file when listed (epoch s) */
    /* Version 2: what the bytes were written on, and what they are. */
    bool base_absent; /* a new file: the path held no object */
    char *base;       /* checksum of the object it was opened from; NULL
                         and !base_absent: unknown (a version 1 journal) */
    uint64_t generation; /* changes made; an upload records the one sent */
    bool sealed;         /* sealed_size and digest describe the data file,
                            fsync'd before the journal said so */
    int64_t sealed_size;
    char *digest;        /* SHA-256 (hex) of the sealed data */
    char *boot_id;       /* the kernel boot the data was written in */
    int64_t client_mtime; /* ::lakefs::client-mtime to record; 0: data mtime */
    bool has_owner;
    uint32_t uid, gid;
    lakefs_metadata metadata; /* user metadata the object keeps */
    char *content_type;       /* NULL: the default */
    char **attempts;  /* checksums of failed uploads since the base (their
                         answers may have been lost after lakeFS applied
                         them), at most STAGING_MAX_ATTEMPTS */
    size_t n_attempts;
} staging_entry;

/* Distinct checksums: two per failed generation (writer.c add_attempt), so
 * an attempt that landed is known for 16 later failed versions. */
#define STAGING_MAX_ATTEMPTS 32

typedef struct staging staging;

/* Creates a new session under cache_dir/staging (mode 0700), locked by
 * this process for as long as it is open. NULL with *err set. */
staging *staging_open(const char *cache_dir, int *err);
/* Releases the lock; removes the session directory when it holds no
 * entry (entries left behind are orphans for the next mount). */
void staging_close(staging *s);

/* A new entry in state `initial` (STAGING_CLEAN for a copy of an
 * existing object about to be filled, STAGING_PENDING for a new file):
 * the journal file is written and fsync'd (with its
 * directory) before this returns; *fd is the data file, empty, opened
 * O_RDWR|O_CLOEXEC, owned by the caller (close it yourself). */
int staging_create(staging *s, const char *repo, const char *branch,
                   const char *path, staging_state initial, uint64_t *id,
                   int *fd);
/* staging_create with a whole first journal record (its repo, branch,
 * path, state and version 2 fields). */
int staging_create_entry(staging *s, const staging_entry *init, uint64_t *id,
                         int *fd);
/* staging_create_entry without the fsyncs, for an entry whose data is not
 * sealed: recovery trusts such data only in the boot it was written in
 * (journal boot_id), and a daemon's death keeps the page cache, so the
 * fsyncs would protect nothing recovery may use. The next staging_write
 * (any state change) makes the journal durable. */
int staging_create_entry_unsynced(staging *s, const staging_entry *init,
                                  uint64_t *id, int *fd);
/* Rewrites an entry's journal whole from e (its repo, branch, path, state,
 * error and version 2 fields; session, id and data_path are ignored):
 * temp file, fsync, rename, directory fsync. */
int staging_write(staging *s, uint64_t id, const staging_entry *e);
/* The same without the fsyncs, for an entry that stays STAGING_PENDING and
 * unsealed (as staging_create_entry_unsynced says). */
int staging_write_unsynced(staging *s, uint64_t id, const staging_entry *e);
/* The same for an orphan entry (e->session, e->id), which must still be
 * an orphan (-EBUSY when a live mount holds its session). */
int staging_write_orphan(const char *cache_dir, const staging_entry *e);
/* Rewrites an entry's journal (atomically: temp file, fsync, rename). */
int staging_set_path(staging *s, uint64_t id, const char *path);
int staging_set_mode(staging *s, uint64_t id, uint32_t mode);
/* error: NULL for STAGING_PENDING. */
int staging_set_state(staging *s, uint64_t id, staging_state state,
                      const char *error);
/* Deletes the data file and then the journal entry (the data is on the
 * server, or the user discarded it). */
int staging_remove(staging *s, uint64_t id);
/* The same for an entry whose journal durably says STAGING_CLEAN, without
 * the directory fsync: should the removal be lost to a power loss, the
 * clean entry that comes back is one recovery drops. */
int staging_remove_clean(staging *s, uint64_t id);

/* What the journal cost since staging_open: journals written, and fsyncs
 * (two per durable journal write: the file and its directory; one per
 * removal made durable). For .lakefs/stats. */
typedef struct staging_stats {
    uint64_t journal_writes;
    uint64_t fsyncs;
} staging_stats;
void staging_get_stats(staging *s, staging_stats *out);

/* This session's entries, in id order (for .lakefs/status). */
int staging_list(staging *s, staging_entry **out, size_t *n);

/* Entries of every orphaned session under cache_dir/staging (sessions
 * whose lock can be taken; this process's own open session never is),
 * sorted by (session, id). A journal entry without its data file, or
 * unparsable, is returned with state STAGING_FAILED and an error saying
 * so rather than skipped (except a STAGING_CLEAN one without data, which
 * stays clean); a data file without a journal entry is ignored
 * (it was never acknowledged to a writer). */
int staging_list_orphans(const char *cache_dir, staging_entry **out,
                         size_t *n);
/* Removes one orphan entry's files; removes its session directory when it
 * was the last entry. */
int staging_remove_orphan(const char *cache_dir, const staging_entry *e);

void staging_entries_free(staging_entry *entries, size_t n);

#endif
