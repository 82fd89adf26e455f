/*
 * writer.c - the open-for-write table: one staged file per branch path,
 * reference-counted across descriptors, its journal state kept in step
 * (clean -> pending on the first write, -> clean after an upload, failed
 * when one fails). A wfile's lock serialises its I/O and its upload, so an
 * upload always sends one consistent version. Lock order: writer, wfile.
 */
#include "writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct wfile {
    writer *w;
    char *repo;
    char *branch;
    char *key;
    int fd;
    uint64_t staging_id;
    int refs;       /* under w->lock */
    reader_file *base; /* content still to copy in, or NULL */
    int64_t base_size;
    bool dirty;     /* changed since the last upload (or never uploaded) */
    bool unlinked;
    uint32_t mode;  /* explicit permission bits; 0: the default */
    int64_t mtime;
    pthread_mutex_t lock;
    struct wfile *next;
};

struct writer {
    writer_config cfg;
    pthread_mutex_t lock;
    wfile *files;
    size_t open_count; /* wfiles in files; read without the lock */
};

writer *writer_new(const writer_config *cfg, int *err)
{
    writer *w = calloc(1, sizeof(*w));
    if (!w) {
        *err = -ENOMEM;
        return NULL;
    }
    w->cfg = *cfg;
    pthread_mutex_init(&w->lock, NULL);
    *err = 0;
    return w;
}

void writer_free(writer *w)
{
    if (!w)
        return;
    pthread_mutex_destroy(&w->lock);
    free(w);
}

static bool same_file(const wfile *f, const char *repo, const char *branch,
                      const char *key)
{
    return strcmp(f->repo, repo) == 0 && strcmp(f->branch, branch) == 0 &&
           strcmp(f->key, key) == 0;
}

/* Under w->lock. */
static wfile *find_locked(writer *w, const char *repo, const char *branch,
                          const char *key)
{
    for (wfile *f = w->files; f; f = f->next)
        if (same_file(f, repo, branch, key))
            return f;
    return NULL;
}

static void wfile_destroy(wfile *f)
{
    if (f->base)
        reader_close(f->base);
    if (f->fd >= 0)
        close(f->fd);
    pthread_mutex_destroy(&f->lock);
    free(f->repo);
    free(f->branch);
    free(f->key);
    free(f);
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* A new wfile, linked in. */
static int create_locked(writer *w, const char *repo, const char *branch,
                         const char *key, bool created, wfile **out)
{
    wfile *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->w = w;
    f->fd = -1;
    f->refs = 1;
    f->mtime = now_s();
    f->dirty = created;
    f->repo = strdup(repo);
    f->branch = strdup(branch);
    f->key = strdup(key);
    pthread_mutex_init(&f->lock, NULL);
    int rc = f->repo && f->branch && f->key ? 0 : -ENOMEM;
    if (rc == 0)
        rc = staging_create(w->cfg.staging, repo, branch, key,
                            created ? STAGING_PENDING : STAGING_CLEAN,
                            &f->staging_id, &f->fd);
    if (rc) {
        wfile_destroy(f);
        return rc;
    }
    f->next = w->files;
    w->files = f;
    __atomic_add_fetch(&w->open_count, 1, __ATOMIC_RELAXED);
    *out = f;
    return 0;
}

int writer_open(writer *w, const char *repo, const char *branch,
                const char *key, reader_file *base, int64_t base_size,
                int64_t base_mtime, bool created, uint32_t mode,
                wfile **out)
{
    *out = NULL;
    pthread_mutex_lock(&w->lock);
    wfile *f = find_locked(w, repo, branch, key);
    bool fresh = f == NULL;
    int rc = 0;
    if (f)
        f->refs++;
    else
        rc = create_locked(w, repo, branch, key, created || !base, &f);
    if (rc == 0 && fresh) {
        if (base && !created) {
            f->base = base;
            f->base_size = base_size;
            f->mtime = base_mtime;
            base = NULL;
        }
        f->mode = mode;
    }
    pthread_mutex_unlock(&w->lock);
    if (base)
        reader_close(base);
    if (rc == 0 && !fresh && created)
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
    return __atomic_load_n(&w->open_count, __ATOMIC_RELAXED) == 0;
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

void wfile_release(wfile *f)
{
    writer *w = f->w;
    pthread_mutex_lock(&w->lock);
    bool last = --f->refs == 0;
    if (last)
        for (wfile **p = &w->files; *p; p = &(*p)->next)
            if (*p == f) {
                *p = f->next;
                __atomic_sub_fetch(&w->open_count, 1, __ATOMIC_RELAXED);
                break;
            }
    pthread_mutex_unlock(&w->lock);
    if (!last)
        return;
    /* Normally flushed on close; a last try for data that was not (an
     * mmap written after close). Failing, it stays journaled. */
    if (f->dirty && !f->unlinked)
        wfile_flush(f, NULL);
    if (!f->dirty || f->unlinked)
        staging_remove(w->cfg.staging, f->staging_id);
    wfile_destroy(f);
}

/* Under f->lock: copies the base object into the staged file, once. */
static int ensure_filled(wfile *f)
{
    if (!f->base)
        return 0;
    size_t cap = 1u << 20;
    char *buf = malloc(cap);
    int rc = buf ? 0 : -ENOMEM;
    for (uint64_t off = 0; rc == 0;) {
        ssize_t n = reader_read(f->base, buf, cap, off);
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
        reader_close(f->base);
        f->base = NULL;
    } else if (ftruncate(f->fd, 0) != 0) {
        rc = -EIO;
    }
    return rc;
}

/* Under f->lock: the first change after an upload journals the file as
 * pending again, before the change is acknowledged. */
static int mark_dirty(wfile *f)
{
    int rc = ensure_filled(f);
    if (rc)
        return rc;
    f->mtime = now_s();
    if (f->dirty)
        return 0;
    rc = staging_set_state(f->w->cfg.staging, f->staging_id,
                               STAGING_PENDING, NULL);
    if (rc == 0)
        f->dirty = true;
    return rc;
}

ssize_t wfile_read(wfile *f, void *buf, size_t len, off_t off)
{
    pthread_mutex_lock(&f->lock);
    ssize_t n = ensure_filled(f);
    if (n == 0) {
        n = pread(f->fd, buf, len, off);
        if (n < 0)
            n = -errno;
    }
    pthread_mutex_unlock(&f->lock);
    return n;
}

ssize_t wfile_write(wfile *f, const void *buf, size_t len, off_t off)
{
    pthread_mutex_lock(&f->lock);
    ssize_t n = mark_dirty(f);
    struct stat st;
    if (n == 0 && off < 0)
        off = fstat(f->fd, &st) == 0 ? st.st_size : -1;
    if (n == 0 && off < 0)
        n = -errno;
    if (n == 0) {
        n = pwrite(f->fd, buf, len, off);
        if (n < 0)
            n = -errno;
    }
    pthread_mutex_unlock(&f->lock);
    return n;
}

int wfile_truncate(wfile *f, off_t size)
{
    pthread_mutex_lock(&f->lock);
    if (size == 0 && f->base) { /* nothing of it is kept: no download */
        reader_close(f->base);
        f->base = NULL;
    }
    int rc = mark_dirty(f);
    if (rc == 0 && ftruncate(f->fd, size) != 0)
        rc = -errno;
    pthread_mutex_unlock(&f->lock);
    return rc;
}

void wfile_attrs(wfile *f, int64_t *size, int64_t *mtime, uint32_t *mode)
{
    struct stat st;
    pthread_mutex_lock(&f->lock);
    if (f->base)
        *size = f->base_size;
    else
        *size = fstat(f->fd, &st) == 0 ? st.st_size : 0;
    *mtime = f->mtime;
    *mode = f->mode;
    pthread_mutex_unlock(&f->lock);
}

int wfile_set_mode(wfile *f, uint32_t mode)
{
    pthread_mutex_lock(&f->lock);
    int rc = mark_dirty(f);
    if (rc == 0) {
        f->mode = mode & 07777u;
        rc = staging_set_mode(f->w->cfg.staging, f->staging_id, f->mode);
    }
    pthread_mutex_unlock(&f->lock);
    return rc;
}

int wfile_set_mtime(wfile *f, int64_t mtime)
{
    pthread_mutex_lock(&f->lock);
    int rc = mark_dirty(f);
    if (rc == 0)
        f->mtime = mtime;
    pthread_mutex_unlock(&f->lock);
    return rc;
}

bool wfile_dirty(wfile *f)
{
    pthread_mutex_lock(&f->lock);
    bool dirty = f->dirty && !f->unlinked;
    pthread_mutex_unlock(&f->lock);
    return dirty;
}

const char *wfile_key(wfile *f)
{
    return f->key;
}

int wfile_flush(wfile *f, lakefs_object_stats *out)
{
    writer *w = f->w;
    pthread_mutex_lock(&f->lock);
    if (!f->dirty || f->unlinked) {
        pthread_mutex_unlock(&f->lock);
        return 0;
    }
    struct stat st;
    int rc = fstat(f->fd, &st) == 0 ? 0 : -errno;
    upload_attrs attrs = {.mtime = f->mtime, .mode = f->mode,
                          .uid = w->cfg.uid, .gid = w->cfg.gid};
    lakefs_error err = {0};
    if (rc == 0)
        rc = upload_fd(w->cfg.client, &w->cfg.caps, f->repo, f->branch,
                       f->key, f->fd, st.st_size, &attrs, out, &err);
    else
        snprintf(err.message, sizeof(err.message), "staged file: %s",
                 strerror(-rc));
    if (rc == 0) {
        f->dirty = false;
        staging_set_state(w->cfg.staging, f->staging_id, STAGING_CLEAN,
                          NULL);
    } else {
        logger_write(w->cfg.log, LOG_LEVEL_ERROR,
                     "upload of '%s' to %s/%s failed, kept in the cache "
                     "directory: %s",
                     f->key, f->repo, f->branch, err.message);
        staging_set_state(w->cfg.staging, f->staging_id, STAGING_FAILED,
                          err.message);
    }
    pthread_mutex_unlock(&f->lock);
    return rc == 0 ? 1 : -EIO;
}

void wfile_mark_unlinked(wfile *f)
{
    pthread_mutex_lock(&f->lock);
    f->unlinked = true;
    pthread_mutex_unlock(&f->lock);
}

void writer_detach(writer *w, const char *repo, const char *branch,
                   const char *key)
{
    wfile *f = writer_find(w, repo, branch, key);
    if (!f)
        return;
    wfile_mark_unlinked(f);
    wfile_release(f);
}

int writer_foreach_in_dir(writer *w, const char *repo, const char *branch,
                          const char *dir_prefix,
                          int (*fn)(void *ctx, const writer_entry *e),
                          void *ctx)
{
    size_t plen = strlen(dir_prefix);
    int rc = 0;
    pthread_mutex_lock(&w->lock);
    for (wfile *f = w->files; f && rc == 0; f = f->next) {
        if (f->unlinked || strcmp(f->repo, repo) != 0 ||
            strcmp(f->branch, branch) != 0 ||
            strncmp(f->key, dir_prefix, plen) != 0 ||
            strchr(f->key + plen, '/') != NULL || !f->key[plen])
            continue;
        writer_entry e = {.key = f->key};
        uint32_t mode;
        wfile_attrs(f, &e.size, &e.mtime, &mode);
        e.mode = mode;
        rc = fn(ctx, &e);
    }
    pthread_mutex_unlock(&w->lock);
    return rc;
}

/* new_key + what follows old_key in key. */
static char *renamed_key(const char *key, size_t old_len, const char *new_key)
{
    size_t n = strlen(new_key), rest = strlen(key) - old_len;
    char *s = malloc(n + rest + 1);
    if (!s)
        return NULL;
    memcpy(s, new_key, n);
    memcpy(s + n, key + old_len, rest + 1);
    return s;
}

int writer_rename(writer *w, const char *repo, const char *branch,
                  const char *old_key, const char *new_key, bool prefix)
{
    size_t old_len = strlen(old_key);
    int rc = 0;
    pthread_mutex_lock(&w->lock);
    for (wfile *f = w->files; f && rc == 0; f = f->next) {
        if (strcmp(f->repo, repo) != 0 || strcmp(f->branch, branch) != 0)
            continue;
        bool hit = prefix ? strncmp(f->key, old_key, old_len) == 0 &&
                                f->key[old_len] == '/'
                          : strcmp(f->key, old_key) == 0;
        if (!hit)
            continue;
        char *key = renamed_key(f->key, old_len, new_key);
        if (!key) {
            rc = -ENOMEM;
            break;
        }
        pthread_mutex_lock(&f->lock);
        free(f->key);
        f->key = key;
        /* A staged copy that was never changed belongs to the old name's
         * object, which the rename copies on the server. */
        rc = staging_set_path(w->cfg.staging, f->staging_id, key);
        pthread_mutex_unlock(&f->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return rc;
}

int writer_flush_branch(writer *w, const char *repo, const char *branch)
{
    /* Take references under the table lock, upload outside it. */
    size_t n = 0, cap = 0;
    wfile **files = NULL;
    int rc = 0;
    pthread_mutex_lock(&w->lock);
    for (wfile *f = w->files; f && rc == 0; f = f->next) {
        if (strcmp(f->repo, repo) != 0 || strcmp(f->branch, branch) != 0)
            continue;
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
