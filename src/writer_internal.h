/*
 * writer_internal.h - the writer's state shared by writer.c (the state
 * machine), writer_names.c (unlink and rename) and writer_pool.c (the
 * upload pool of -o async_close). Not for any other module: they go
 * through writer.h.
 */
#ifndef LAKEFUSE_WRITER_INTERNAL_H
#define LAKEFUSE_WRITER_INTERNAL_H

#include "writer.h"

#include "durable.h"
#include "eager_upload.h"

#include <pthread.h>

#define WRITER_LANDED_SLOTS 1024

/* A branch with files queued or being uploaded by the pool: pending counts
 * them (queued, plus one per pool thread on each), so that a settle's
 * wakeup is O(1) in the writer's table (writer_pool.c). */
typedef struct pool_branch {
    char *repo, *branch;
    size_t pending;
    struct pool_branch *next;
} pool_branch;

typedef enum wstate {
    W_CLEAN,
    W_DIRTY,
    W_FAILED,
    W_CONFLICT,
} wstate;

struct wfile {
    writer *w;
    char *repo;
    char *branch;
    pthread_mutex_t io;    /* content: fill, writes, truncates, uploads */
    pthread_mutex_t state; /* everything below; journal writes */
    char *key;
    int fd;
    uint64_t staging_id;
    int refs;        /* under w->lock */
    bool in_table;   /* under w->lock */
    bool detached;
    wstate st;
    uint64_t gen;
    bool journal_live; /* the journal entry exists */
    bool journal_durable; /* its last write was fsync'd (unsealed DIRTY
                             states are written without: see journal_note) */
    bool journal_volatile; /* no state of it was ever fsync'd: see
                              settle_journal */
    reader_file *fill; /* base content still to copy in, or NULL */
    eager_upload *eager; /* parts sent while written, or NULL (f->io) */
    int64_t size;
    /* base: what the server holds at key, as far as this file knows */
    bool base_absent;
    char *base;
    /* attributes the next upload records */
    int64_t mtime;
    uint32_t mode; /* lakectl's Mode (S_IFREG | bits); 0: not recorded */
    uint32_t unshown_mode; /* bits of mode the object had that this mount
                              does not show (fs_entry.unshown_mode): the
                              upload keeps them, stat hides them */
    bool has_owner;
    uint32_t uid, gid;
    lakefs_metadata meta;
    char *content_type;
    const void *tag; /* the opener's, for on_uploaded */
    /* failures */
    char *error;
    bool permanent;
    int64_t retry_at_ms;
    int retry_delay_ms;
    /* failed uploads since the base: lakeFS may have applied them */
    char *attempts[STAGING_MAX_ATTEMPTS];
    size_t n_attempts;
    /* the last seal: sealed data is (sealed_size, digest) */
    bool sealed;
    int64_t sealed_size;
    char digest[DURABLE_DIGEST_HEX];
    /* In the table (under w->lock): the list walks use (newest first),
     * and the chain of its hash bucket. repo, branch and key make the
     * hash; a rename changes key under both w->lock and f->state, so
     * either suffices to read it. seq: when it joined the table. */
    struct wfile *next, *prev, *hash_next;
    uint64_t hash;
    uint64_t seq;
    /* -o async_close (writer_pool.c), under w->lock: in the upload queue
     * (which holds a reference), the pool threads uploading it (one, or
     * two when it was queued again during an upload), and its branch's
     * record of pending files while either is non-zero. */
    bool queued;
    int busy;
    struct wfile *q_next;
    struct pool_branch *pb;
};

struct writer {
    writer_config cfg;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_mutex_t rename_lock; /* one writer_move at a time */
    bool stopping;
    pthread_t retry_thread;
    bool thread_started;
    wfile *files;
    size_t count; /* wfiles in files; read without the lock */
    wfile **buckets; /* the same wfiles by hash; n_buckets a power of 2 */
    size_t n_buckets;
    uint64_t next_seq;
    char **orphans; /* "repo\nbranch\npath" of earlier mounts' failures */
    size_t n_orphans;
    char boot_id[DURABLE_BOOT_ID_MAX];
    /* -o async_close (writer_pool.c): the queue of closed files to upload,
     * oldest first, each holding a reference; under lock. */
    wfile *q_head, *q_tail;
    pthread_cond_t q_wake;  /* a file queued, or stopping */
    pthread_cond_t settled; /* a branch's pending count reached 0 */
    pool_branch *pool_branches; /* those with pending > 0 */
    /* writer_landed: the landings so far, and per hash slot of (repo,
     * branch, key) the count of its newest landing. Atomic, no lock. */
    uint64_t landed;
    uint64_t landed_at[WRITER_LANDED_SLOTS];
    uint64_t landing; /* landings between on_uploaded and note_landed */
    pthread_t *workers;
    int n_workers; /* started */
    writer_pool_stats pool;
};

/* One upload of f, under f->io (writer.c). conditional: only over the
 * base. 1 (uploaded, *out filled when non-NULL), 0 (nothing to do),
 * DURABLE_CONFLICT, or a negative errno. */
int writer_upload_once(wfile *f, bool conditional, lakefs_object_stats *out);

/* writer.c's helpers that unlink and rename (writer_names.c) share. */
/* Under f->state: the journal, fsync'd with its directory. */
int wfile_journal_sync(wfile *f);
/* Under f->state: the journal entry goes (the bytes will never be
 * uploaded); the data file's name goes too, open descriptors keep it. */
void wfile_drop_journal(wfile *f);
/* Under f->io: copies the base object into the staged file, once. */
int wfile_ensure_filled(wfile *f);
/* Under f->state: forgets the checksums of f's earlier upload attempts. */
void wfile_clear_attempts(wfile *f);
/* The table, under w->lock: f in or out of the hash of (repo, branch, key)
 * alone, or out of the table altogether. */
void writer_hash_add_locked(writer *w, wfile *f);
void writer_hash_remove_locked(writer *w, wfile *f);
void writer_unlink_locked(writer *w, wfile *f);
/* *dst = a copy of src (NULL for NULL), the old one freed: 0 or -ENOMEM. */
int writer_set_string(char **dst, const char *src);

/* The pool (writer_pool.c): started by writer_start, drained and joined by
 * writer_free (w->stopping set) before its last uploads. */
int writer_pool_start(writer *w);
void writer_pool_stop(writer *w);
/* Queues every unsent file of (repo, branch) and waits for the pool. */
void writer_pool_flush_branch(writer *w, const char *repo,
                              const char *branch);

#endif
