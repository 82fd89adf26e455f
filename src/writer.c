/*
 * writer.c - the write state machine of writer.h: the table of files
 * being written, their journal kept in step with every state change, the
 * uploads (close/fsync in the caller's thread, retries in a background
 * thread) and what happens to a file's name on unlink and rename. Never
 * holds the table lock or a state lock across the network.
 */
#include "writer_internal.h"
#include "chainhash.h"
#include "dlist.h"
#include "threads.h"


#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 60000
#define FILL_CHUNK (1u << 20)
#define TABLE_MIN_BUCKETS 256

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static void supersede_orphans(writer *w, const char *repo, const char *branch,
                              const char *path);

/* ---- the journal ---- */

/* Under f->state: the journal says what the wfile is now; durable: fsync'd
 * before this returns. */
static int journal_write(wfile *f, bool durable)
{
    static const staging_state map[] = {
        [W_CLEAN] = STAGING_CLEAN,
        [W_DIRTY] = STAGING_PENDING,
        [W_FAILED] = STAGING_FAILED,
        [W_CONFLICT] = STAGING_CONFLICT,
    };
    if (f->detached || !f->journal_live)
        return 0;
    staging_entry e = {
        .repo = f->repo,
        .branch = f->branch,
        .path = f->key,
        .state = map[f->st],
        .error = f->error,
        .mode = f->mode,
        .base_absent = f->base_absent,
        .base = f->base,
        .generation = f->gen,
        .sealed = f->sealed,
        .sealed_size = f->sealed_size,
        .digest = f->sealed ? f->digest : NULL,
        .boot_id = f->w->boot_id,
        .client_mtime = f->mtime,
        .has_owner = f->has_owner,
        .uid = f->uid,
        .gid = f->gid,
        .metadata = f->meta,
        .content_type = f->content_type,
        .attempts = f->attempts,
        .n_attempts = f->n_attempts,
    };
    int rc = durable ? staging_write(f->w->cfg.staging, f->staging_id, &e)
                     : staging_write_unsynced(f->w->cfg.staging,
                                              f->staging_id, &e);
    if (rc == 0)
        f->journal_durable = durable;
    if (rc == 0 && durable)
        f->journal_volatile = false;
    return rc;
}

int wfile_journal_sync(wfile *f)
{
    return journal_write(f, true);
}

/* Under f->state: the journal of a DIRTY file that was never sealed, not
 * fsync'd. Recovery trusts unsealed bytes only in the boot they were
 * written in, which a daemon's death (kill -9) keeps, page cache and all;
 * after a power loss they are never uploaded, so an fsync here would
 * protect nothing recovery may use. A file that is let go of unsent
 * (wfile_release) or whose upload fails is journaled durably then. Saves
 * a create's and each fchmod/fchown/futimens's two fsyncs (tar x). */
static int journal_note(wfile *f)
{
    return journal_write(f, f->st != W_DIRTY || f->sealed);
}

/* ---- the table ---- */

static bool same_file(const wfile *f, const char *repo, const char *branch,
                      const char *key)
{
    return strcmp(f->key, key) == 0 && strcmp(f->repo, repo) == 0 &&
           strcmp(f->branch, branch) == 0;
}

/* FNV-1a of repo, branch and key, each ended by its NUL. */
static uint64_t file_hash(const char *repo, const char *branch,
                          const char *key)
{
    uint64_t h = 14695981039346656037ull;
    const char *parts[] = {repo, branch, key};
    for (size_t i = 0; i < 3; i++) {
        const unsigned char *c = (const unsigned char *)parts[i];
        do
            h = (h ^ *c) * 1099511628211ull;
        while (*c++);
    }
    return h;
}

/* Under w->lock: a lookup per read (writer_find), so keyed, not a walk.
 * Of two wfiles of one key (a file renamed to a name opened during the
 * rename), the newer, as the list walk found it. */
static wfile *find_locked(writer *w, const char *repo, const char *branch,
                          const char *key)
{
    uint64_t h = file_hash(repo, branch, key);
    wfile *found = NULL;
    for (wfile *f = w->buckets[h & (w->n_buckets - 1)]; f; f = f->hash_next)
        if (f->hash == h && (!found || f->seq > found->seq) &&
            same_file(f, repo, branch, key))
            found = f;
    return found;
}

/* Under w->lock. */
void writer_hash_add_locked(writer *w, wfile *f)
{
    f->hash = file_hash(f->repo, f->branch, f->key);
    wfile **head = &w->buckets[f->hash & (w->n_buckets - 1)];
    f->hash_next = *head;
    *head = f;
}

void writer_hash_remove_locked(writer *w, wfile *f)
{
    wfile **p = &w->buckets[f->hash & (w->n_buckets - 1)];
    while (*p != f)
        p = &(*p)->hash_next;
    *p = f->hash_next;
    f->hash_next = NULL;
}

/* Under w->lock: twice the buckets once there are more files than
 * buckets; without memory the chains just grow longer. */
static void hash_grow_locked(writer *w)
{
    if (w->count < w->n_buckets)
        return;
    size_t n = w->n_buckets * 2;
    wfile **grown = calloc(n, sizeof(*grown));
    if (!grown)
        return;
    CHAIN_REHASH(wfile, f, hash_next, w->buckets, w->n_buckets, grown,
                 f->hash & (n - 1));
    free(w->buckets);
    w->buckets = grown;
    w->n_buckets = n;
}

/* Under w->lock: f, not in the table, joins it. */
static void link_locked(writer *w, wfile *f)
{
    f->in_table = true;
    f->seq = w->next_seq++;
    DLIST_HEAD_PUSH(w->files, f, prev, next);
    writer_hash_add_locked(w, f);
    __atomic_add_fetch(&w->count, 1, __ATOMIC_RELAXED);
    hash_grow_locked(w);
}

/* Under w->lock. */
void writer_unlink_locked(writer *w, wfile *f)
{
    if (!f->in_table)
        return;
    writer_hash_remove_locked(w, f);
    DLIST_HEAD_UNLINK(w->files, f, prev, next);
    f->in_table = false;
    __atomic_sub_fetch(&w->count, 1, __ATOMIC_RELAXED);
}

void wfile_clear_attempts(wfile *f)
{
    for (size_t i = 0; i < f->n_attempts; i++)
        free(f->attempts[i]);
    f->n_attempts = 0;
}

/* Remembers what a failed upload tried to put.
 * A checksum already there is not added again: the same bytes failing
 * over and over (fsyncs, background retries) would otherwise push out an
 * older attempt that lakeFS applied with its answer lost, and the next
 * conditional upload would take that object for another client's. */
static void add_attempt(wfile *f, const char *checksum)
{
    for (size_t i = 0; i < f->n_attempts; i++)
        if (strcmp(f->attempts[i], checksum) == 0)
            return;
    char *copy = strdup(checksum);
    if (!copy)
        return;
    if (f->n_attempts == STAGING_MAX_ATTEMPTS) {
        /* Full: the oldest quarter stays (the first failure of an outage
         * is the likeliest to have landed: a server that went down right
         * after applying it), the oldest of the rest goes. */
        size_t drop = STAGING_MAX_ATTEMPTS / 4;
        free(f->attempts[drop]);
        memmove(f->attempts + drop, f->attempts + drop + 1,
                (STAGING_MAX_ATTEMPTS - drop - 1) * sizeof(f->attempts[0]));
        f->n_attempts--;
    }
    f->attempts[f->n_attempts++] = copy;
}

static void wfile_destroy(wfile *f)
{
    eager_abandon(&f->eager);
    wfile_clear_attempts(f);
    if (f->fill)
        reader_close(f->fill);
    if (f->fd >= 0)
        close(f->fd);
    pthread_mutex_destroy(&f->io);
    pthread_mutex_destroy(&f->state);
    lakefs_metadata_free(&f->meta);
    free(f->content_type);
    free(f->base);
    free(f->error);
    free(f->repo);
    free(f->branch);
    free(f->key);
    free(f);
}

int writer_set_string(char **dst, const char *src)
{
    char *copy = src ? strdup(src) : NULL;
    if (src && !copy)
        return -ENOMEM;
    free(*dst);
    *dst = copy;
    return 0;
}

/* The type bits of lakectl's Mode for key: a directory's marker ("dir/",
 * made by mkdir with -o async_close) is S_IFDIR, anything else a regular
 * file. A rename keeps the kind (a marker only moves with its directory). */
static uint32_t key_type(const char *key)
{
    size_t n = strlen(key);
    return n && key[n - 1] == '/' ? S_IFDIR : S_IFREG;
}

/* Attributes an edit keeps: those of the object it was opened on. The
 * ::lakefs:: keys the upload writes itself are left to it. */
static int keep_entry_attrs(wfile *f, const fs_entry *e)
{
    int rc = 0;
    f->mtime = e->mtime;
    /* Recorded on the server, or set through this mount since it listed
     * the object (whose cached entry then has the mode and owner only). */
    bool explicit_mode =
        lakefs_metadata_get(&e->metadata, LISTING_KEY_POSIX_PERMISSIONS) !=
            NULL ||
        e->has_owner || e->mode != LISTING_DEFAULT_FILE_MODE;
    f->mode = explicit_mode
                  ? key_type(f->key) | ((e->mode | e->unshown_mode) & 07777u)
                  : 0;
    f->unshown_mode = explicit_mode ? e->unshown_mode & 07000u : 0;
    f->has_owner = e->has_owner;
    f->uid = e->uid;
    f->gid = e->gid;
    for (size_t i = 0; rc == 0 && i < e->metadata.count; i++) {
        const lakefs_kv *kv = &e->metadata.items[i];
        if (strcmp(kv->key, LISTING_KEY_CLIENT_MTIME) == 0 ||
            strcmp(kv->key, LISTING_KEY_POSIX_PERMISSIONS) == 0)
            continue;
        rc = lakefs_metadata_set(&f->meta, kv->key, kv->value);
    }
    if (rc == 0)
        rc = writer_set_string(&f->content_type, e->content_type);
    if (rc == 0)
        rc = writer_set_string(&f->base, e->checksum);
    f->base_absent = e->checksum == NULL;
    f->size = e->size;
    return rc;
}

/* A new wfile with its staged file and first journal, not in the table
 * yet. A CLEAN one's journal is fsync'd: made without the table lock. */
static int wfile_make(writer *w, const char *repo, const char *branch,
                      const char *key, const writer_base *base,
                      bool truncate, uint32_t mode, const void *tag,
                      wfile **out)
{
    wfile *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->tag = tag;
    f->w = w;
    f->fd = -1;
    f->refs = 1;
    f->mtime = now_s();
    f->base_absent = true;
    f->mode = mode ? key_type(key) | (mode & 07777u) : 0;
    pthread_mutex_init(&f->io, NULL);
    pthread_mutex_init(&f->state, NULL);
    f->repo = strdup(repo);
    f->branch = strdup(branch);
    f->key = strdup(key);
    int rc = f->repo && f->branch && f->key ? 0 : -ENOMEM;
    if (rc == 0 && base && base->entry)
        rc = keep_entry_attrs(f, base->entry);
    bool dirty = !base || truncate;
    if (dirty) {
        f->st = W_DIRTY;
        f->gen = 1;
        f->size = 0;
        f->mtime = now_s();
    }
    if (rc == 0) {
        staging_entry init = {.repo = f->repo,
                              .branch = f->branch,
                              .path = f->key,
                              .state = dirty ? STAGING_PENDING : STAGING_CLEAN,
                              .mode = f->mode,
                              .base_absent = f->base_absent,
                              .base = f->base,
                              .generation = f->gen,
                              .boot_id = w->boot_id,
                              .client_mtime = f->mtime,
                              .has_owner = f->has_owner,
                              .uid = f->uid,
                              .gid = f->gid,
                              .metadata = f->meta,
                              .content_type = f->content_type};
        /* A new or truncated file starts DIRTY and unsealed: journal_note's
         * reasoning. */
        rc = dirty ? staging_create_entry_unsynced(w->cfg.staging, &init,
                                                   &f->staging_id, &f->fd)
                   : staging_create_entry(w->cfg.staging, &init,
                                          &f->staging_id, &f->fd);
        f->journal_durable = !dirty;
        f->journal_volatile = dirty;
    }
    if (rc) {
        wfile_destroy(f);
        return rc;
    }
    f->journal_live = true;
    *out = f;
    return 0;
}

int writer_open(writer *w, const char *repo, const char *branch,
                const char *key, const writer_base *base, bool truncate,
                uint32_t mode, const void *tag, wfile **out)
{
    *out = NULL;
    reader_file *content = base ? base->reader : NULL;
    bool dirty = !base || truncate; /* journaled without an fsync */
    wfile *made = NULL;
    int rc = 0;
    pthread_mutex_lock(&w->lock);
    wfile *f = find_locked(w, repo, branch, key);
    if (!f && !dirty) {
        /* The fsync of a CLEAN journal without the table lock; another
         * open may link a wfile of the key meanwhile: that one is used. */
        pthread_mutex_unlock(&w->lock);
        rc = wfile_make(w, repo, branch, key, base, truncate, mode, tag,
                        &made);
        pthread_mutex_lock(&w->lock);
        f = rc == 0 ? find_locked(w, repo, branch, key) : NULL;
    } else if (!f) {
        rc = wfile_make(w, repo, branch, key, base, truncate, mode, tag,
                        &made);
    }
    bool fresh = f == NULL;
    /* An upload of the key landed since the caller read base's entry:
     * the entry may predate it (its wfile has left the table meanwhile),
     * and the file must not start on older bytes than it holds. */
    bool stale = fresh && made && base && !truncate && base->landed_valid &&
                 writer_landed_since(w, repo, branch, key, base->landed);
    if (stale) {
        rc = -EAGAIN;
    } else if (f) {
        f->refs++;
    } else if (made) {
        link_locked(w, made);
        f = made;
        made = NULL;
    }
    if (rc == 0 && fresh && base && !truncate) {
        f->fill = content; /* copied in on first use */
        content = NULL;
    }
    pthread_mutex_unlock(&w->lock);
    if (made) { /* not linked: its CLEAN journal goes as any */
        wfile_drop_journal(made);
        wfile_destroy(made);
    }
    if (content)
        reader_close(content);
    if (rc == 0 && !fresh && truncate)
        rc = wfile_truncate(f, 0);
    if (rc) {
        if (f)
            wfile_release(f);
        return rc;
    }
    *out = f;
    return 0;
}

bool writer_idle(const writer *w)
{
    return __atomic_load_n(&w->count, __ATOMIC_RELAXED) == 0;
}

wfile *writer_find(writer *w, const char *repo, const char *branch,
                   const char *key)
{
    pthread_mutex_lock(&w->lock);
    wfile *f = find_locked(w, repo, branch, key);
    if (f)
        f->refs++;
    pthread_mutex_unlock(&w->lock);
    return f;
}

/* Under f->state: the journal entry goes (the bytes will never be
 * uploaded); the data file's name goes too, open descriptors keep it. */
void wfile_drop_journal(wfile *f)
{
    if (!f->journal_live)
        return;
    /* A clean journal that comes back after a power loss is dropped by
     * recovery, and so is anything an entry that was never fsync'd can
     * come back as (settle): their removal needs no directory fsync. Any
     * other must go for good (an unlinked file's bytes must never come
     * back). */
    if (f->st == W_CLEAN && !f->detached &&
        (f->journal_durable || f->journal_volatile))
        staging_remove_clean(f->w->cfg.staging, f->staging_id);
    else
        staging_remove(f->w->cfg.staging, f->staging_id);
    f->journal_live = false;
}

void wfile_release(wfile *f)
{
    writer *w = f->w;
    pthread_mutex_lock(&w->lock);
    bool last = --f->refs == 0;
    bool destroy = false;
    if (last) {
        pthread_mutex_lock(&f->state);
        if (f->detached || f->st == W_CLEAN || f->st == W_CONFLICT) {
            writer_unlink_locked(w, f);
            destroy = true;
            if (f->st == W_CLEAN || f->detached)
                wfile_drop_journal(f);
            /* a conflict keeps its journal and data for `staged` */
        } else {
            /* Not on the server yet: stays, and the retry thread uploads
             * it (an mmap written after close, a deferred close). From
             * here the mount answers for it with no descriptor open: its
             * journal is made durable. */
            if (!f->journal_durable)
                wfile_journal_sync(f);
            if (f->st == W_DIRTY)
                f->retry_at_ms = now_ms();
            pthread_cond_signal(&w->wake);
        }
        pthread_mutex_unlock(&f->state);
    }
    pthread_mutex_unlock(&w->lock);
    if (destroy)
        wfile_destroy(f);
}

/* ---- content ---- */

/* Under f->io: copies the base object into the staged file, once. */
int wfile_ensure_filled(wfile *f)
{
    if (!f->fill)
        return 0;
    char *buf = malloc(FILL_CHUNK);
    int rc = buf ? 0 : -ENOMEM;
    for (uint64_t off = 0; rc == 0;) {
        ssize_t n = reader_read(f->fill, buf, FILL_CHUNK, off);
        if (n <= 0) {
            rc = (int)n;
            break;
        }
        if (pwrite(f->fd, buf, (size_t)n, (off_t)off) != n)
            rc = errno ? -errno : -EIO;
        off += (uint64_t)n;
    }
    free(buf);
    if (rc == 0) {
        reader_close(f->fill);
        __atomic_store_n(&f->fill, NULL, __ATOMIC_RELEASE);
    } else if (ftruncate(f->fd, 0) != 0) {
        rc = -EIO;
    }
    return rc;
}

/* Under f->state: one more change; journaled before it is acknowledged
 * when the file was CLEAN (a FAILED or DIRTY journal already says the
 * server lacks the bytes). */
static int note_change(wfile *f)
{
    if (f->detached)
        return 0;
    bool was_clean = f->st == W_CLEAN || f->st == W_CONFLICT;
    f->gen++;
    if (f->st != W_FAILED)
        f->st = W_DIRTY;
    f->sealed = false;
    return was_clean ? wfile_journal_sync(f) : 0;
}

ssize_t wfile_read(wfile *f, void *buf, size_t len, off_t off)
{
    ssize_t n = 0;
    /* Once filled, reads need no lock: they never wait for an upload. */
    if (__atomic_load_n(&f->fill, __ATOMIC_ACQUIRE)) {
        pthread_mutex_lock(&f->io);
        n = wfile_ensure_filled(f);
        pthread_mutex_unlock(&f->io);
    }
    if (n == 0) {
        n = pread(f->fd, buf, len, off);
        if (n < 0)
            n = -errno;
    }
    return n;
}

/* Under f->state: bytes [off, off + len) of the staged file changed
 * (size_before: the file's size before), for the eager upload. */
static void note_written(wfile *f, int64_t size_before, int64_t off,
                         int64_t len)
{
    if (!f->detached)
        eager_note_write(&f->eager, f->w->cfg.client, &f->w->cfg.caps,
                         f->repo, f->branch, f->key, f->fd, size_before, off,
                         len);
}

ssize_t wfile_write(wfile *f, const void *buf, size_t len, off_t off)
{
    pthread_mutex_lock(&f->io);
    ssize_t n = wfile_ensure_filled(f);
    if (n == 0) {
        pthread_mutex_lock(&f->state);
        n = note_change(f);
        if (off < 0)
            off = f->size;
        f->mtime = now_s();
        pthread_mutex_unlock(&f->state);
    }
    if (n == 0) {
        n = pwrite(f->fd, buf, len, off);
        if (n < 0)
            n = -errno;
    }
    if (n > 0) {
        pthread_mutex_lock(&f->state);
        int64_t before = f->size;
        if (off + n > f->size)
            f->size = off + n;
        note_written(f, before, off, n);
        pthread_mutex_unlock(&f->state);
    }
    pthread_mutex_unlock(&f->io);
    return n;
}

int wfile_truncate(wfile *f, off_t size)
{
    pthread_mutex_lock(&f->io);
    if (size == 0 && f->fill) { /* nothing of it is kept: no download */
        reader_close(f->fill);
        __atomic_store_n(&f->fill, NULL, __ATOMIC_RELEASE);
    }
    eager_note_truncate(&f->eager, size); /* kept unless sent bytes are cut */
    int rc = wfile_ensure_filled(f);
    if (rc == 0) {
        pthread_mutex_lock(&f->state);
        rc = note_change(f);
        f->mtime = now_s();
        pthread_mutex_unlock(&f->state);
    }
    if (rc == 0 && ftruncate(f->fd, size) != 0)
        rc = -errno;
    if (rc == 0) {
        pthread_mutex_lock(&f->state);
        f->size = size;
        pthread_mutex_unlock(&f->state);
    }
    pthread_mutex_unlock(&f->io);
    return rc;
}

int wfile_fallocate(wfile *f, int mode, off_t off, off_t len)
{
    bool keep = mode & FALLOC_FL_KEEP_SIZE;
    int kind = mode & ~FALLOC_FL_KEEP_SIZE;
    if (off < 0 || len <= 0 || off > INT64_MAX - len)
        return -EINVAL;
    if ((kind != 0 && kind != FALLOC_FL_PUNCH_HOLE &&
         kind != FALLOC_FL_ZERO_RANGE) ||
        (kind == FALLOC_FL_PUNCH_HOLE && !keep))
        return -EOPNOTSUPP; /* collapse and insert ranges: not offered */
    pthread_mutex_lock(&f->io);
    int rc = wfile_ensure_filled(f);
    pthread_mutex_lock(&f->state);
    int64_t before = f->size;
    int64_t after = !keep && off + len > before ? off + len : before;
    /* Bytes change where a hole or zeros go in below the size, and where
     * the file grows; an allocation alone changes nothing to upload. */
    int64_t end = off + len < after ? off + len : after;
    bool changes = after != before || (kind != 0 && off < end);
    if (rc == 0 && changes) {
        rc = note_change(f);
        f->mtime = now_s();
    }
    pthread_mutex_unlock(&f->state);
    if (rc == 0 && fallocate(f->fd, mode, off, len) != 0) {
        rc = -errno;
        /* A growing allocation that failed part way (ENOSPC) may have
         * grown the staged file: the file keeps the size it had. */
        struct stat st;
        if (!keep && fstat(f->fd, &st) == 0 && st.st_size != before &&
            ftruncate(f->fd, before) != 0)
            logger_write(f->w->cfg.log, LOG_LEVEL_WARNING,
                         "'%s': could not restore its size after a failed "
                         "fallocate: %s", f->key, strerror(errno));
    }
    if (rc == 0 && changes) {
        pthread_mutex_lock(&f->state);
        f->size = after;
        if (off < end) /* the zeros are a write of the range */
            note_written(f, before, off, end - off);
        pthread_mutex_unlock(&f->state);
    }
    pthread_mutex_unlock(&f->io);
    return rc;
}

void wfile_attrs(wfile *f, int64_t *size, int64_t *mtime, uint32_t *mode)
{
    pthread_mutex_lock(&f->state);
    *size = f->size;
    *mtime = f->mtime;
    *mode = f->mode & ~f->unshown_mode;
    pthread_mutex_unlock(&f->state);
}

/* An attribute change: carried by the next upload of an unsent file,
 * only remembered (and journaled) by a clean one. */
static int attr_change(wfile *f)
{
    if (f->st == W_CLEAN || f->st == W_CONFLICT)
        return wfile_journal_sync(f);
    bool was_sealed = f->sealed;
    f->gen++;
    f->sealed = false;
    /* A FAILED file's journal was sealed: its new, unsealed state must be
     * durable before the change is acknowledged. */
    return was_sealed || f->st != W_DIRTY ? wfile_journal_sync(f) : journal_note(f);
}

/* Under f->state: true when the server lacks the newest bytes. */
static bool unsent_locked(const wfile *f)
{
    return !f->detached && (f->st == W_DIRTY || f->st == W_FAILED);
}

static void set_owner_locked(wfile *f, uid_t uid, gid_t gid)
{
    if (!f->has_owner) {
        f->uid = f->w->cfg.uid;
        f->gid = f->w->cfg.gid;
    }
    if (uid != (uid_t)-1)
        f->uid = uid;
    if (gid != (gid_t)-1)
        f->gid = gid;
    f->has_owner = true;
    if (!f->mode)
        f->mode = key_type(f->key) | (key_type(f->key) == S_IFDIR
                                          ? LISTING_DEFAULT_DIR_MODE
                                          : LISTING_DEFAULT_FILE_MODE);
}

/* Under f->state: mtime, mode (< 0: unchanged) and owner, then the
 * change is journaled (and, on an unsent file, counted). */
static int set_attrs_locked(wfile *f, int64_t mtime, int64_t mode, uid_t uid,
                            gid_t gid)
{
    if (mode >= 0) {
        /* recorded, 0000 too */
        f->mode = key_type(f->key) | ((uint32_t)mode & 07777u);
        f->unshown_mode = 0; /* a chmod names every bit */
    }
    if (mtime != WFILE_MTIME_KEEP)
        f->mtime = mtime;
    if (uid != (uid_t)-1 || gid != (gid_t)-1)
        set_owner_locked(f, uid, gid);
    return attr_change(f);
}

int wfile_set_mode(wfile *f, uint32_t mode)
{
    pthread_mutex_lock(&f->state);
    int rc = set_attrs_locked(f, WFILE_MTIME_KEEP, mode & 07777u, (uid_t)-1,
                              (gid_t)-1);
    pthread_mutex_unlock(&f->state);
    return rc;
}

int wfile_set_mtime(wfile *f, int64_t mtime)
{
    pthread_mutex_lock(&f->state);
    int rc = set_attrs_locked(f, mtime, -1, (uid_t)-1, (gid_t)-1);
    pthread_mutex_unlock(&f->state);
    return rc;
}

int wfile_set_owner(wfile *f, uid_t uid, gid_t gid)
{
    pthread_mutex_lock(&f->state);
    set_owner_locked(f, uid, gid);
    int rc = attr_change(f);
    pthread_mutex_unlock(&f->state);
    return rc;
}

int wfile_set_attrs_if_unsent(wfile *f, int64_t mtime, int64_t mode,
                              uid_t uid, gid_t gid)
{
    pthread_mutex_lock(&f->state);
    bool unsent = unsent_locked(f);
    int rc = unsent ? set_attrs_locked(f, mtime, mode, uid, gid) : 0;
    pthread_mutex_unlock(&f->state);
    return rc ? rc : unsent ? 1 : 0;
}

static int set_meta_locked(wfile *f, const char *key, const char *value)
{
    int rc = 0;
    if (value) {
        rc = lakefs_metadata_set(&f->meta, key, value);
    } else {
        lakefs_metadata kept = {0};
        bool found = false;
        for (size_t i = 0; rc == 0 && i < f->meta.count; i++) {
            if (strcmp(f->meta.items[i].key, key) == 0)
                found = true;
            else
                rc = lakefs_metadata_set(&kept, f->meta.items[i].key,
                                         f->meta.items[i].value);
        }
        if (rc == 0 && !found)
            rc = -ENODATA;
        if (rc == 0) {
            lakefs_metadata_free(&f->meta);
            f->meta = kept;
        } else {
            lakefs_metadata_free(&kept);
        }
    }
    if (rc == 0)
        rc = attr_change(f);
    return rc;
}

int wfile_set_meta(wfile *f, const char *key, const char *value)
{
    pthread_mutex_lock(&f->state);
    int rc = set_meta_locked(f, key, value);
    pthread_mutex_unlock(&f->state);
    return rc;
}

int wfile_set_meta_if_unsent(wfile *f, const char *key, const char *value)
{
    pthread_mutex_lock(&f->state);
    bool unsent = unsent_locked(f);
    int rc = unsent ? set_meta_locked(f, key, value) : 0;
    pthread_mutex_unlock(&f->state);
    return rc ? rc : unsent ? 1 : 0;
}

int wfile_metadata(wfile *f, lakefs_metadata *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&f->state);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < f->meta.count; i++)
        rc = lakefs_metadata_set(out, f->meta.items[i].key,
                                 f->meta.items[i].value);
    pthread_mutex_unlock(&f->state);
    if (rc)
        lakefs_metadata_free(out);
    return rc;
}

void wfile_owner(wfile *f, bool *has_owner, uid_t *uid, gid_t *gid)
{
    pthread_mutex_lock(&f->state);
    *has_owner = f->has_owner;
    *uid = f->uid;
    *gid = f->gid;
    pthread_mutex_unlock(&f->state);
}

bool wfile_unsent_owner(wfile *f, int64_t *mtime, uint32_t *mode,
                        bool *has_owner, uid_t *uid, gid_t *gid)
{
    pthread_mutex_lock(&f->state);
    bool unsent = unsent_locked(f);
    *mtime = f->mtime;
    *mode = f->mode & ~f->unshown_mode;
    *has_owner = f->has_owner;
    *uid = f->uid;
    *gid = f->gid;
    pthread_mutex_unlock(&f->state);
    return unsent;
}

bool wfile_dirty(wfile *f)
{
    pthread_mutex_lock(&f->state);
    bool dirty = unsent_locked(f);
    pthread_mutex_unlock(&f->state);
    return dirty;
}

const char *wfile_key(wfile *f)
{
    return f->key;
}

/* ---- uploads ---- */

/* What one upload sends, taken under f->state. */
typedef struct upload_snapshot {
    char *key;
    uint64_t gen;
    int64_t size;
    int64_t mtime;
    uint32_t mode;
    uint32_t uid, gid;
    lakefs_metadata meta;
    char *content_type;
    bool base_absent;
    char *base;
    char **attempts;
    size_t n_attempts;
} upload_snapshot;

static void snapshot_free(upload_snapshot *s)
{
    for (size_t i = 0; i < s->n_attempts; i++)
        free(s->attempts[i]);
    free(s->attempts);
    free(s->key);
    lakefs_metadata_free(&s->meta);
    free(s->content_type);
    free(s->base);
    memset(s, 0, sizeof(*s));
}

static int snapshot_take(wfile *f, upload_snapshot *s)
{
    memset(s, 0, sizeof(*s));
    s->gen = f->gen;
    s->size = f->size;
    s->mtime = f->mtime;
    s->mode = f->mode;
    s->uid = f->has_owner ? f->uid : f->w->cfg.uid;
    s->gid = f->has_owner ? f->gid : f->w->cfg.gid;
    s->base_absent = f->base_absent;
    int rc = writer_set_string(&s->key, f->key);
    if (rc == 0)
        rc = writer_set_string(&s->content_type, f->content_type);
    if (rc == 0)
        rc = writer_set_string(&s->base, f->base);
    for (size_t i = 0; rc == 0 && i < f->meta.count; i++)
        rc = lakefs_metadata_set(&s->meta, f->meta.items[i].key,
                                 f->meta.items[i].value);
    if (rc == 0 && f->n_attempts &&
        !(s->attempts = calloc(f->n_attempts, sizeof(*s->attempts))))
        rc = -ENOMEM;
    for (size_t i = 0; rc == 0 && i < f->n_attempts; i++, s->n_attempts++)
        rc = writer_set_string(&s->attempts[i], f->attempts[i]);
    if (rc)
        snapshot_free(s);
    return rc;
}

static void schedule_retry(wfile *f)
{
    writer *w = f->w;
    int lo = w->cfg.retry_min_ms > 0 ? w->cfg.retry_min_ms : RETRY_MIN_MS;
    int hi = w->cfg.retry_max_ms > 0 ? w->cfg.retry_max_ms : RETRY_MAX_MS;
    f->retry_delay_ms = f->retry_delay_ms ? f->retry_delay_ms * 2 : lo;
    if (f->retry_delay_ms > hi)
        f->retry_delay_ms = hi;
    f->retry_at_ms = now_ms() + f->retry_delay_ms;
}

/* After an upload of s: the wfile's new state, journaled. Under f->state.
 * A failure or conflict is fsync'd (sealed, it is trusted across a power
 * loss). A success is fsync'd only when an earlier state of the entry was
 * (it could come back after a power loss and be acted on): an entry that
 * was never fsync'd (a new file's: journal_note) can only come back as one
 * of its own unsynced states, each harmless: CLEAN is dropped by recovery,
 * and unsealed PENDING from an earlier boot is never uploaded (recovery
 * drops it when the server holds exactly its bytes, as it does after this
 * upload, else keeps it aside). Saves a small file's two fsyncs. */
static void settle(wfile *f, const upload_snapshot *s, int rc,
                   const lakefs_object_stats *st, const lakefs_error *err)
{
    if (f->detached)
        return;
    bool same_name = strcmp(f->key, s->key) == 0;
    if (rc == 0 || rc == DURABLE_ALREADY_THERE) {
        if (same_name) {
            writer_set_string(&f->base, st->checksum);
            f->base_absent = st->checksum == NULL;
            wfile_clear_attempts(f);
        }
        free(f->error);
        f->error = NULL;
        f->permanent = false;
        f->retry_delay_ms = 0;
        bool current = f->gen == s->gen && same_name;
        f->st = current ? W_CLEAN : W_DIRTY;
        if (!current)
            f->retry_at_ms = now_ms();
    } else if (rc == DURABLE_CONFLICT) {
        f->st = W_CONFLICT;
        writer_set_string(&f->error, err->message);
    } else {
        f->st = W_FAILED;
        writer_set_string(&f->error, err->message[0] ? err->message
                                              : strerror(rc < 0 ? -rc : EIO));
        f->permanent = durable_failure_is_permanent(rc, err);
        schedule_retry(f);
    }
    bool uploaded = rc == 0 || rc == DURABLE_ALREADY_THERE;
    journal_write(f, !uploaded || !f->journal_volatile);
}

/* A conflict gives the name back to the server's object. */
static void leave_table(wfile *f)
{
    writer *w = f->w;
    pthread_mutex_lock(&w->lock);
    writer_unlink_locked(w, f);
    pthread_mutex_unlock(&w->lock);
}

/* The server already holds the bytes (an earlier attempt whose answer was
 * lost): the object must carry this upload's attributes too, not that
 * attempt's (a utime, chmod or xattr since then would be lost, and the
 * file shown CLEAN). 0 (st's metadata then says what the object holds),
 * or a negative errno with err filled. */
static int carry_attrs(writer *w, const wfile *f, const char *key,
                       const upload_attrs *attrs, lakefs_object_stats *st,
                       lakefs_error *err)
{
    lakefs_metadata md;
    int rc = upload_build_metadata(attrs, &md);
    if (rc)
        return rc;
    if (!lakefs_metadata_equal(&st->metadata, &md)) {
        /* it sets the whole metadata: a retry repeats it harmlessly */
        rc = lakefs_update_object_user_metadata(w->cfg.client, f->repo,
                                                f->branch, key, &md, err);
        if (rc == 0) {
            lakefs_metadata_free(&st->metadata);
            st->metadata = md;
            memset(&md, 0, sizeof(md));
        }
    }
    lakefs_metadata_free(&md);
    return rc;
}

static uint64_t *landed_slot(writer *w, const char *repo,
                             const char *branch, const char *key)
{
    return &w->landed_at[file_hash(repo, branch, key) &
                         (WRITER_LANDED_SLOTS - 1)];
}

/* After on_uploaded, before the file turns CLEAN (writer.h, Landings). */
static void note_landed(writer *w, const char *repo, const char *branch,
                        const char *key)
{
    uint64_t n = __atomic_add_fetch(&w->landed, 1, __ATOMIC_SEQ_CST);
    uint64_t *slot = landed_slot(w, repo, branch, key);
    uint64_t cur = __atomic_load_n(slot, __ATOMIC_SEQ_CST);
    /* Two landings in one slot at once: the larger count stays. */
    while (cur < n && !__atomic_compare_exchange_n(slot, &cur, n, false,
                                                   __ATOMIC_SEQ_CST,
                                                   __ATOMIC_SEQ_CST))
        ;
}

bool writer_landing(const writer *w)
{
    return __atomic_load_n(&w->landing, __ATOMIC_SEQ_CST) != 0;
}

uint64_t writer_landed(const writer *w)
{
    return __atomic_load_n(&w->landed, __ATOMIC_SEQ_CST);
}

bool writer_landed_since(const writer *w, const char *repo,
                         const char *branch, const char *key, uint64_t since)
{
    if (writer_landed(w) == since) /* the usual case: nothing landed */
        return false;
    return __atomic_load_n(landed_slot((writer *)w, repo, branch, key),
                           __ATOMIC_SEQ_CST) > since;
}

/* writer_internal.h; conditional for background retries. */
int writer_upload_once(wfile *f, bool conditional, lakefs_object_stats *out)
{
    writer *w = f->w;
    upload_snapshot s;
    pthread_mutex_lock(&f->state);
    bool todo = !f->detached && (f->st == W_DIRTY || f->st == W_FAILED);
    int rc = todo ? snapshot_take(f, &s) : 0;
    pthread_mutex_unlock(&f->state);
    if (!todo || rc)
        return rc;
    rc = wfile_ensure_filled(f);
    lakefs_error err = {0};
    lakefs_object_stats st;
    memset(&st, 0, sizeof(st));
    upload_attrs attrs = {.mtime = s.mtime,
                          .mode = s.mode,
                          .uid = s.uid,
                          .gid = s.gid,
                          .extra = &s.meta,
                          .content_type = s.content_type};
    if (rc) {
        snprintf(err.message, sizeof(err.message), "staged file: %s",
                 strerror(-rc));
        err.not_applied = true; /* nothing was sent */
    } else if (conditional) {
        eager_abandon(&f->eager); /* a conditional upload starts over */
        durable_base base = {.absent = s.base_absent,
                             .checksum = s.base,
                             .own = (const char *const *)s.attempts,
                             .n_own = s.n_attempts};
        rc = durable_upload_if_base(w->cfg.client, &w->cfg.caps, f->repo,
                                    f->branch, s.key, f->fd, s.size, &base,
                                    &attrs, &st, &err);
    } else {
        rc = eager_upload_fd(&f->eager, w->cfg.client, &w->cfg.caps,
                             f->repo, f->branch, s.key, f->fd, s.size,
                             &attrs, &st, &err);
        /* A failure that may have come after lakeFS applied the upload (a
         * cut answer, then a resend that failed): when the object holds
         * exactly these bytes the upload landed, and the close or fsync
         * succeeds instead of answering EIO for bytes that are there. */
        if (rc < 0 && !err.not_applied) {
            lakefs_error ignored = {0};
            lakefs_object_stats_free(&st);
            memset(&st, 0, sizeof(st));
            if (durable_server_has(w->cfg.client, &w->cfg.caps, f->repo,
                                   f->branch, s.key, f->fd, s.size, &st,
                                   &ignored) == 1)
                rc = DURABLE_ALREADY_THERE;
        }
    }
    if (rc == DURABLE_ALREADY_THERE) {
        int r = carry_attrs(w, f, s.key, &attrs, &st, &err);
        if (r) {
            lakefs_object_stats_free(&st);
            memset(&st, 0, sizeof(st));
            rc = r;
        }
    }
    bool uploaded = rc == 0 || rc == DURABLE_ALREADY_THERE;
    /* The mount's listing shows the new object before the file turns
     * CLEAN: a stat in between would otherwise find neither the staged
     * overlay (the file is clean) nor the new size (the listing is not
     * updated yet), and the kernel would keep that answer. (The key cannot
     * change meanwhile: a rename waits for this upload's io lock.) */
    if (uploaded) {
        __atomic_add_fetch(&w->landing, 1, __ATOMIC_SEQ_CST);
        if (w->cfg.on_uploaded && st.path)
            w->cfg.on_uploaded(w->cfg.on_uploaded_ctx, f->tag, &st);
        /* ...and a stat or directory read that read the listing before it
         * and finds the file clean after it learns that it must read
         * again. */
        note_landed(w, f->repo, f->branch, s.key);
        __atomic_sub_fetch(&w->landing, 1, __ATOMIC_SEQ_CST);
    }
    char digest[DURABLE_DIGEST_HEX];
    char tried[DURABLE_ATTEMPT_ETAGS][DURABLE_ETAG_MAX];
    size_t n_tried = 0;
    /* After a failure, in one read of the file: the seal (the size and
     * digest of the bytes that were to be sent, for the journal; a clean
     * upload needs none, and one cut short by the daemon's death leaves
     * the entry unsealed, which recovery trusts only in the same boot, so
     * the happy path reads nothing twice) and the checksums of this try.
     * Only a try that may have reached lakeFS can be the object there
     * later: an outage's refused connections would otherwise fill the
     * list and push out an attempt that landed before it. */
    bool sealed = rc < 0 &&
                  durable_failed_attempt(f->fd, s.size, &w->cfg.caps, digest,
                                         err.not_applied ? NULL : tried,
                                         &n_tried) == 0;
    pthread_mutex_lock(&f->state);
    if (sealed && f->gen == s.gen) {
        f->sealed = true;
        f->sealed_size = s.size;
        memcpy(f->digest, digest, sizeof(digest));
    }
    for (size_t i = 0; i < n_tried && strcmp(f->key, s.key) == 0; i++)
        add_attempt(f, tried[i]);
    settle(f, &s, rc, &st, &err);
    bool conflict = f->st == W_CONFLICT;
    pthread_mutex_unlock(&f->state);
    if (uploaded) {
        supersede_orphans(w, f->repo, f->branch, s.key);
        if (out) {
            *out = st;
            memset(&st, 0, sizeof(st));
        }
        rc = 1;
    } else if (conflict) {
        logger_write(w->cfg.log, LOG_LEVEL_ERROR,
                     "kept '%s' of %s/%s aside, not uploaded: %s "
                     "(`lakefuse staged list` shows it)",
                     s.key, f->repo, f->branch, err.message);
        leave_table(f);
    } else {
        logger_write(w->cfg.log, LOG_LEVEL_ERROR,
                     "upload of '%s' to %s/%s failed, kept in the cache "
                     "directory: %s",
                     s.key, f->repo, f->branch, err.message);
    }
    lakefs_object_stats_free(&st);
    snapshot_free(&s);
    return rc;
}

int wfile_flush(wfile *f, lakefs_object_stats *out)
{
    if (out)
        memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&f->io);
    int rc = writer_upload_once(f, false, out);
    pthread_mutex_unlock(&f->io);
    return rc == 1 ? 1 : rc == 0 ? 0 : -EIO;
}

/* Which wfiles of the branch flush_matching uploads (under w->lock and
 * f->state); NULL: all. */
typedef bool (*flush_match_fn)(const wfile *f, const char *arg);

/* Flushes the branch's wfiles that match: references taken under the
 * table lock, uploads outside it, in the table's order. 0, or -EIO when
 * one upload failed (the rest are not tried). */
static int flush_matching(writer *w, const char *repo, const char *branch,
                          flush_match_fn match, const char *arg)
{
    size_t n = 0, cap = 0;
    wfile **files = NULL;
    int rc = 0;
    pthread_mutex_lock(&w->lock);
    for (wfile *f = w->files; f && rc == 0; f = f->next) {
        if (strcmp(f->repo, repo) != 0 || strcmp(f->branch, branch) != 0)
            continue;
        if (match) {
            pthread_mutex_lock(&f->state);
            bool hit = match(f, arg);
            pthread_mutex_unlock(&f->state);
            if (!hit)
                continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            wfile **grown = realloc(files, cap * sizeof(*files));
            if (!grown) {
                rc = -ENOMEM;
                break;
            }
            files = grown;
        }
        f->refs++;
        files[n++] = f;
    }
    pthread_mutex_unlock(&w->lock);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && wfile_flush(files[i], NULL) < 0)
            rc = -EIO;
        wfile_release(files[i]);
    }
    free(files);
    return rc;
}

int writer_flush_branch(writer *w, const char *repo, const char *branch)
{
    /* With the pool, its threads upload the branch's files in parallel
     * first; the loop then finds them clean (and retries, as without it,
     * what failed). */
    if (writer_async(w))
        writer_pool_flush_branch(w, repo, branch);
    return flush_matching(w, repo, branch, NULL, NULL);
}

/* An entry of directory dir_key ("a/b/", "" at the root) or its own
 * marker, handed over by its program (queued, being uploaded, or failed
 * and waiting for a retry): what fsync of the directory makes durable. A
 * file still open and being written is its program's to close or fsync. */
static bool handed_over_in_dir(const wfile *f, const char *dir_key)
{
    size_t n = strlen(dir_key);
    if (f->detached || strncmp(f->key, dir_key, n) != 0)
        return false;
    const char *slash = strchr(f->key + n, '/');
    if (slash && slash[1] != '\0')
        return false; /* deeper down */
    return f->queued || f->busy > 0 || f->st == W_FAILED;
}

int writer_flush_dir(writer *w, const char *repo, const char *branch,
                     const char *dir_key)
{
    return flush_matching(w, repo, branch, handed_over_in_dir, dir_key);
}

/* ---- earlier mounts' failures ---- */

static char *orphan_id(const char *repo, const char *branch, const char *path)
{
    char *id = NULL;
    return asprintf(&id, "%s\n%s\n%s", repo, branch, path) < 0 ? NULL : id;
}

void writer_note_orphan(writer *w, const char *repo, const char *branch,
                        const char *path)
{
    char *id = orphan_id(repo, branch, path);
    pthread_mutex_lock(&w->lock);
    char **grown = id ? realloc(w->orphans, (w->n_orphans + 1) *
                                                sizeof(*grown))
                      : NULL;
    if (grown) {
        w->orphans = grown;
        w->orphans[w->n_orphans++] = id;
        id = NULL;
    }
    pthread_mutex_unlock(&w->lock);
    free(id);
}

/* Removes an earlier mount's failed or pending entries for the path. */
static void drop_orphans_of(writer *w, const char *repo, const char *branch,
                            const char *path)
{
    staging_entry *e = NULL;
    size_t n = 0;
    if (!w->cfg.cache_dir ||
        staging_list_orphans(w->cfg.cache_dir, &e, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++)
        if ((e[i].state == STAGING_FAILED || e[i].state == STAGING_PENDING) &&
            e[i].repo && strcmp(e[i].repo, repo) == 0 && e[i].branch &&
            strcmp(e[i].branch, branch) == 0 && e[i].path &&
            strcmp(e[i].path, path) == 0 &&
            staging_remove_orphan(w->cfg.cache_dir, &e[i]) == 0)
            logger_write(w->cfg.log, LOG_LEVEL_INFO,
                         "staged %s for lakefs://%s/%s from an earlier "
                         "mount superseded by a newer upload",
                         path, repo, branch);
    staging_entries_free(e, n);
}

/* After a successful upload of path: an earlier mount's failure of it is
 * superseded. Cheap when there is none (the usual case). */
static void supersede_orphans(writer *w, const char *repo, const char *branch,
                              const char *path)
{
    if (__atomic_load_n(&w->n_orphans, __ATOMIC_RELAXED) == 0)
        return;
    char *id = orphan_id(repo, branch, path);
    bool hit = false;
    pthread_mutex_lock(&w->lock);
    for (size_t i = 0; id && i < w->n_orphans; i++)
        if (strcmp(w->orphans[i], id) == 0) {
            free(w->orphans[i]);
            w->orphans[i] = w->orphans[--w->n_orphans];
            hit = true;
            break;
        }
    pthread_mutex_unlock(&w->lock);
    free(id);
    if (hit)
        drop_orphans_of(w, repo, branch, path);
}

/* ---- background retries ---- */

/* A referenced wfile due for a retry, or NULL. Under w->lock. */
static wfile *next_due(writer *w, int64_t now, int64_t *next_at)
{
    for (wfile *f = w->files; f; f = f->next) {
        pthread_mutex_lock(&f->state);
        bool waiting = f->refs == 0 && !f->detached &&
                       (f->st == W_DIRTY ||
                        (f->st == W_FAILED && !f->permanent));
        bool due = waiting && f->retry_at_ms <= now;
        if (waiting && !due && f->retry_at_ms < *next_at)
            *next_at = f->retry_at_ms;
        pthread_mutex_unlock(&f->state);
        if (due) {
            f->refs++;
            return f;
        }
    }
    return NULL;
}

static void *retry_main(void *arg)
{
    writer *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->stopping) {
        int64_t next_at = now_ms() + 1000;
        wfile *f = next_due(w, now_ms(), &next_at);
        if (f) {
            pthread_mutex_unlock(&w->lock);
            pthread_mutex_lock(&f->io);
            writer_upload_once(f, true, NULL);
            pthread_mutex_unlock(&f->io);
            wfile_release(f);
            pthread_mutex_lock(&w->lock);
            continue;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t wait_ms = next_at - now_ms();
        if (wait_ms < 10)
            wait_ms = 10;
        until.tv_sec += wait_ms / 1000;
        until.tv_nsec += (wait_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&w->wake, &w->lock, &until);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

writer *writer_new(const writer_config *cfg, int *err)
{
    writer *w = calloc(1, sizeof(*w));
    if (!w) {
        *err = -ENOMEM;
        return NULL;
    }
    w->cfg = *cfg;
    w->n_buckets = TABLE_MIN_BUCKETS;
    w->buckets = calloc(w->n_buckets, sizeof(*w->buckets));
    if (!w->buckets) {
        free(w);
        *err = -ENOMEM;
        return NULL;
    }
    durable_boot_id(w->boot_id);
    pthread_mutex_init(&w->lock, NULL);
    pthread_mutex_init(&w->rename_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&w->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&w->q_wake, NULL);
    pthread_cond_init(&w->settled, NULL);
    *err = 0;
    return w;
}

int writer_start(writer *w)
{
    int rc = -thread_start_masked(&w->retry_thread, retry_main, w);
    w->thread_started = rc == 0;
    if (rc == 0)
        rc = writer_pool_start(w);
    return rc;
}

void writer_free(writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->lock);
    if (w->thread_started)
        pthread_join(w->retry_thread, NULL);
    /* The pool uploads what is queued (in parallel), then ends. */
    writer_pool_stop(w);
    /* One last try for what is still to upload; the rest stays journaled
     * (the session becomes an orphan the next mount recovers). */
    while (w->files) {
        wfile *f = w->files;
        writer_unlink_locked(w, f);
        if (!f->detached && (f->st == W_DIRTY || f->st == W_FAILED)) {
            pthread_mutex_lock(&f->io);
            writer_upload_once(f, true, NULL);
            pthread_mutex_unlock(&f->io);
        }
        if (f->st == W_CLEAN || f->detached)
            wfile_drop_journal(f);
        wfile_destroy(f);
    }
    for (size_t i = 0; i < w->n_orphans; i++)
        free(w->orphans[i]);
    free(w->orphans);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->q_wake);
    pthread_cond_destroy(&w->settled);
    pthread_mutex_destroy(&w->rename_lock);
    pthread_mutex_destroy(&w->lock);
    free(w->buckets);
    free(w);
}
