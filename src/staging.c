/*
 * staging.c - CACHE_DIR/staging/<session>/{lock,<id>.data,<id>.json}: data
 * written to the mount and journals saying where it belongs, each replaced
 * whole (temp file, fsync, rename, directory fsync). Never reads file data,
 * never puts a user string in a file name, never follows a symlink in it.
 */
#include "staging_internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STAGING_SUBDIR "staging"
#define LOCK_NAME "lock"
/* New session names are random: a retry only follows a lost race with an
 * orphan scan removing the directory being set up. */
#define OPEN_ATTEMPTS 8
#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

struct staging {
    pthread_mutex_t mutex; /* orders journal rewrites, removes and listing */
    char *name;            /* session directory name */
    char *path;            /* absolute path of the session directory */
    int root_fd;           /* CACHE_DIR/staging */
    int dir_fd;            /* the session directory */
    int lock_fd;           /* flock'ed `lock` for the session's life */
    uint64_t next_id;
    uint64_t journal_writes; /* staging_stats, atomically */
    uint64_t fsyncs;
};

/* A journal written (durable: fsync'd with its directory) or, with
 * journal false, a removal made durable (its directory fsync'd). */
static void count_io(staging *s, bool journal, bool durable)
{
    if (journal)
        __atomic_add_fetch(&s->journal_writes, 1, __ATOMIC_RELAXED);
    if (durable)
        __atomic_add_fetch(&s->fsyncs, journal ? 2 : 1, __ATOMIC_RELAXED);
}

void staging_get_stats(staging *s, staging_stats *out)
{
    out->journal_writes = __atomic_load_n(&s->journal_writes, __ATOMIC_RELAXED);
    out->fsyncs = __atomic_load_n(&s->fsyncs, __ATOMIC_RELAXED);
}

typedef struct entry_vec {
    staging_entry *items;
    size_t count;
    size_t cap;
} entry_vec;

typedef enum name_kind {
    NAME_OTHER,
    NAME_JOURNAL,
    NAME_DATA,
    NAME_TEMP,
    NAME_LOCK
} name_kind;


/* ---- names ---- */

/* Entry names are canonical: "<id>.json" and "<id>.data", id 1..2^64-1. */
static name_kind classify_name(const char *name, uint64_t *id)
{
    char *end = NULL;
    if (strcmp(name, LOCK_NAME) == 0)
        return NAME_LOCK;
    if (strncmp(name, TEMP_PREFIX, strlen(TEMP_PREFIX)) == 0)
        return NAME_TEMP;
    if (name[0] < '1' || name[0] > '9')
        return NAME_OTHER;
    errno = 0;
    unsigned long long value = strtoull(name, &end, 10);
    if (errno != 0)
        return NAME_OTHER;
    *id = value;
    if (strcmp(end, ".json") == 0)
        return NAME_JOURNAL;
    if (strcmp(end, ".data") == 0)
        return NAME_DATA;
    return NAME_OTHER;
}


static bool session_name_ok(const char *name)
{
    return name != NULL && name[0] != '\0' && name[0] != '.' &&
           strchr(name, '/') == NULL && strlen(name) < 256;
}

/* "<epoch ns>-<pid>-<64 random bits>": unique across processes and time. */
static char *new_session_name(void)
{
    struct timespec now;
    uint64_t nonce = 0;
    char *name = NULL;
    clock_gettime(CLOCK_REALTIME, &now);
    if (getrandom(&nonce, sizeof(nonce), GRND_NONBLOCK) !=
        (ssize_t)sizeof(nonce))
        nonce ^= (uint64_t)now.tv_nsec * 0x9E3779B97F4A7C15ULL;
    int64_t ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    if (asprintf(&name, "%020" PRId64 "-%ld-%016" PRIx64, ns, (long)getpid(),
                 nonce) < 0)
        return NULL;
    return name;
}

static staging_entry *vec_push(entry_vec *v)
{
    if (v->count == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        staging_entry *items = realloc(v->items, cap * sizeof(*items));
        if (items == NULL)
            return NULL;
        v->items = items;
        v->cap = cap;
    }
    staging_entry *e = &v->items[v->count];
    memset(e, 0, sizeof(*e));
    return e;
}

/* ---- session directories ---- */

#define KIND_BIT(kind) (1u << (kind))

/* Unlinks every name whose kind is in remove_mask; returns how many
 * journals the directory holds, or a negative errno. */
static int session_scan(int dir_fd, unsigned remove_mask)
{
    int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (d == NULL) {
        int rc = -errno;
        if (fd >= 0)
            close(fd);
        return rc;
    }
    int journals = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t id = 0;
        name_kind kind = classify_name(de->d_name, &id);
        if (kind == NAME_JOURNAL)
            journals++;
        if (remove_mask & KIND_BIT(kind))
            unlinkat(dir_fd, de->d_name, 0);
    }
    closedir(d);
    return journals;
}

static int is_journal(const struct dirent *de)
{
    uint64_t id = 0;
    return classify_name(de->d_name, &id) == NAME_JOURNAL;
}

/* Appends the session's entries to v in id order (versionsort puts
 * "2.json" before "10.json": ids are written without leading zeros). */
static int session_load_entries(int dir_fd, const char *session,
                                const char *session_path, bool clean_temps,
                                entry_vec *v)
{
    struct dirent **names = NULL;
    if (clean_temps)
        session_scan(dir_fd, KIND_BIT(NAME_TEMP));
    int count = scandirat(dir_fd, ".", &names, is_journal, versionsort);
    int rc = count < 0 ? -errno : 0;
    for (int i = 0; i < count; i++) {
        uint64_t id = 0;
        staging_entry *e = NULL;
        classify_name(names[i]->d_name, &id);
        if (rc == 0 && (e = vec_push(v)) == NULL)
            rc = -ENOMEM;
        if (e != NULL) {
            rc = staging_entry_load(dir_fd, session, session_path, id, e);
            if (rc == 0)
                v->count++;
            else
                staging_entry_clear(e);
            if (rc == -ENOENT)
                rc = 0; /* removed since the directory was read */
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

/* Removes a session directory that holds no journal. Only the holder of
 * its lock (locked) deletes files in it: data never acknowledged, temp
 * files, then the lock. A session without a lock file may be one being
 * made right now, so it is only rmdir'ed, which fails unless it is empty. */
static void session_remove_if_empty(int root_fd, const char *name, int dir_fd,
                                    bool locked)
{
    if (session_scan(dir_fd, 0) != 0)
        return;
    if (locked)
        session_scan(dir_fd, KIND_BIT(NAME_DATA) | KIND_BIT(NAME_TEMP) |
                                 KIND_BIT(NAME_LOCK));
    unlinkat(root_fd, name, AT_REMOVEDIR);
}

/* 1: the session is orphaned (*lock_fd holds its lock, or is -1 when it
 * has no lock file); 0: a live process holds it; or a negative errno.
 * flock locks belong to the open file description, so the lock of this
 * process's own open session conflicts with this fresh open too. */
static int session_probe_lock(int dir_fd, int *lock_fd)
{
    *lock_fd = -1;
    int fd = openat(dir_fd, LOCK_NAME,
                    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 1 : -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int rc = errno == EWOULDBLOCK ? 0 : -errno;
        close(fd);
        return rc;
    }
    *lock_fd = fd;
    return 1;
}

/* One attempt at making and locking session `name`. -EAGAIN: lost a race
 * with an orphan scan, which took the half-made directory for a crash
 * leftover; the lock is only trusted while its file is still linked. */
static int session_try_create(staging *s, const char *name)
{
    struct stat st;
    if (mkdirat(s->root_fd, name, 0700) != 0)
        return errno == EEXIST ? -EAGAIN : -errno;
    s->dir_fd = openat(s->root_fd, name, DIR_FLAGS);
    if (s->dir_fd < 0)
        return errno == ENOENT ? -EAGAIN : -errno;
    s->lock_fd =
        openat(s->dir_fd, LOCK_NAME,
               O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (s->lock_fd < 0) {
        int rc = errno == ENOENT ? -EAGAIN : -errno;
        unlinkat(s->root_fd, name, AT_REMOVEDIR);
        return rc;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    if (fstat(s->lock_fd, &st) != 0)
        return -errno;
    return st.st_nlink > 0 ? 0 : -EAGAIN;
}

/* Makes and locks a new session directory. */
static int session_create(staging *s)
{
    int rc = -EAGAIN;
    for (int attempt = 0; attempt < OPEN_ATTEMPTS && rc == -EAGAIN;
         attempt++) {
        char *name = new_session_name();
        if (name == NULL)
            return -ENOMEM;
        rc = session_try_create(s, name);
        if (rc == 0) {
            s->name = name;
            return 0;
        }
        /* Whatever is left is an orphan without entries: the next scan
         * removes it. */
        if (s->lock_fd >= 0)
            close(s->lock_fd);
        if (s->dir_fd >= 0)
            close(s->dir_fd);
        s->lock_fd = s->dir_fd = -1;
        free(name);
    }
    return rc;
}

/* -EPERM unless the directory open at fd is this user's and not writable
 * by group or others: staged bytes and journals must be nobody else's to
 * change. */
static int check_private(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
        return -EPERM;
    return 0;
}

/* realpath(cache_dir)/staging and its descriptor; with create, makes both
 * directories first (mode 0700) when missing. */
static int staging_root_open(const char *cache_dir, bool create,
                             char **root_path, int *root_fd)
{
    int rc = 0;
    *root_path = NULL;
    if (create && mkdir(cache_dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    char *abs = realpath(cache_dir, NULL);
    if (abs == NULL)
        return -errno;
    if (asprintf(root_path, "%s/" STAGING_SUBDIR, abs) < 0) {
        *root_path = NULL;
        rc = -ENOMEM;
    }
    free(abs);
    if (rc == 0 && create && mkdir(*root_path, 0700) != 0 && errno != EEXIST)
        rc = -errno;
    if (rc == 0 && (*root_fd = open(*root_path, DIR_FLAGS)) < 0)
        rc = -errno;
    if (rc == 0 && (rc = check_private(*root_fd)) != 0) {
        close(*root_fd);
        *root_fd = -1;
    }
    if (rc != 0) {
        free(*root_path);
        *root_path = NULL;
    }
    return rc;
}

/* ---- public API ---- */

/* An empty session goes with its lock file, unlinked while still locked so
 * that a scan never finds it free; a session with entries stays. */
static void staging_free(staging *s)
{
    if (s->lock_fd >= 0) {
        session_remove_if_empty(s->root_fd, s->name, s->dir_fd, true);
        close(s->lock_fd);
    }
    if (s->dir_fd >= 0)
        close(s->dir_fd);
    if (s->root_fd >= 0)
        close(s->root_fd);
    free(s->name);
    free(s->path);
    free(s);
}

staging *staging_open(const char *cache_dir, int *err)
{
    char *root_path = NULL;
    staging *s = NULL;
    int rc = 0;
    if (cache_dir == NULL || *cache_dir == '\0')
        rc = -EINVAL;
    else if ((s = calloc(1, sizeof(*s))) == NULL)
        rc = -ENOMEM;
    if (rc != 0)
        goto out;
    s->root_fd = s->dir_fd = s->lock_fd = -1;
    s->next_id = 1;
    rc = staging_root_open(cache_dir, true, &root_path, &s->root_fd);
    if (rc == 0)
        rc = session_create(s);
    if (rc == 0 && asprintf(&s->path, "%s/%s", root_path, s->name) < 0) {
        s->path = NULL;
        rc = -ENOMEM;
    }
    if (rc == 0)
        rc = -pthread_mutex_init(&s->mutex, NULL);
    free(root_path);
    if (rc != 0) {
        staging_free(s);
        s = NULL;
    }
out:
    if (err)
        *err = rc;
    return s;
}

void staging_close(staging *s)
{
    if (s == NULL)
        return;
    pthread_mutex_destroy(&s->mutex);
    staging_free(s);
}

/* A new entry; durable: its journal fsync'd before this returns. */
static int create_entry(staging *s, const staging_entry *init, uint64_t *id,
                        int *fd, bool durable)
{
    char data[ENTRY_NAME_MAX];
    if (s == NULL || init == NULL || init->repo == NULL ||
        init->branch == NULL || init->path == NULL ||
        !staging_state_valid(init->state) || id == NULL || fd == NULL)
        return -EINVAL;
    pthread_mutex_lock(&s->mutex);
    uint64_t new_id = s->next_id++;
    pthread_mutex_unlock(&s->mutex);
    /* The data file comes first: a crash before the journal leaves a data
     * file without one, which is ignored, never a journal without data. */
    staging_entry_file_name(data, new_id, ".data");
    int data_fd =
        openat(s->dir_fd, data,
               O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (data_fd < 0)
        return -errno;
    int rc = durable ? staging_journal_write(s->dir_fd, new_id, init)
                     : staging_journal_write_unsynced(s->dir_fd, new_id, init);
    if (rc == 0)
        count_io(s, true, durable);
    if (rc != 0) {
        close(data_fd);
        unlinkat(s->dir_fd, data, 0);
        return rc;
    }
    *id = new_id;
    *fd = data_fd;
    return 0;
}

int staging_create_entry(staging *s, const staging_entry *init, uint64_t *id,
                         int *fd)
{
    return create_entry(s, init, id, fd, true);
}

int staging_create_entry_unsynced(staging *s, const staging_entry *init,
                                  uint64_t *id, int *fd)
{
    return create_entry(s, init, id, fd, false);
}

int staging_create(staging *s, const char *repo, const char *branch,
                   const char *path, staging_state initial, uint64_t *id,
                   int *fd)
{
    staging_entry rec = {.repo = (char *)repo,
                         .branch = (char *)branch,
                         .path = (char *)path,
                         .state = initial};
    return staging_create_entry(s, &rec, id, fd);
}

static int write_entry(staging *s, uint64_t id, const staging_entry *e,
                       bool durable)
{
    if (s == NULL || id == 0 || e == NULL || !e->repo || !e->branch ||
        !e->path || !staging_state_valid(e->state))
        return -EINVAL;
    pthread_mutex_lock(&s->mutex);
    int rc = durable ? staging_journal_replace(s->dir_fd, id, e)
                     : staging_journal_replace_unsynced(s->dir_fd, id, e);
    pthread_mutex_unlock(&s->mutex);
    if (rc == 0)
        count_io(s, true, durable);
    return rc;
}

int staging_write(staging *s, uint64_t id, const staging_entry *e)
{
    return write_entry(s, id, e, true);
}

int staging_write_unsynced(staging *s, uint64_t id, const staging_entry *e)
{
    return write_entry(s, id, e, false);
}

typedef struct journal_change {
    const char *path; /* NULL: unchanged */
    bool set_mode;
    uint32_t mode;
    bool set_state;
    staging_state state;
    const char *error;
} journal_change;

/* Read, change, write back, under the mutex so that two changes of one
 * entry, or a change and a remove, never interleave. */
static int journal_update(staging *s, uint64_t id, const journal_change *c)
{
    char name[ENTRY_NAME_MAX];
    char *text = NULL;
    size_t len = 0;
    const char *why = NULL;
    staging_entry rec = {0};
    if (s == NULL || id == 0)
        return -EINVAL;
    staging_entry_file_name(name, id, ".json");
    pthread_mutex_lock(&s->mutex);
    int rc = staging_read_journal_text(s->dir_fd, name, &text, &len);
    if (rc == 0)
        rc = staging_journal_parse(text, len, &rec, &why);
    if (rc == -EINVAL || rc == -EFBIG)
        rc = -EIO; /* an unreadable journal: nothing to update */
    if (rc == 0 && c->path) {
        free(rec.path);
        rc = (rec.path = strdup(c->path)) ? 0 : -ENOMEM;
    }
    if (rc == 0 && c->set_state) {
        free(rec.error);
        rec.error = NULL;
        rec.state = c->state;
        if (c->state == STAGING_FAILED && c->error)
            rc = (rec.error = strdup(c->error)) ? 0 : -ENOMEM;
    }
    if (c->set_mode)
        rec.mode = c->mode;
    if (rc == 0)
        rc = staging_journal_replace(s->dir_fd, id, &rec);
    pthread_mutex_unlock(&s->mutex);
    if (rc == 0)
        count_io(s, true, true);
    free(text);
    staging_entry_clear(&rec);
    return rc;
}

int staging_set_path(staging *s, uint64_t id, const char *path)
{
    if (path == NULL)
        return -EINVAL;
    journal_change c = {.path = path};
    return journal_update(s, id, &c);
}

int staging_set_mode(staging *s, uint64_t id, uint32_t mode)
{
    journal_change c = {.set_mode = true, .mode = mode};
    return journal_update(s, id, &c);
}

int staging_set_state(staging *s, uint64_t id, staging_state state,
                      const char *error)
{
    if (!staging_state_valid(state))
        return -EINVAL;
    journal_change c = {.set_state = true, .state = state, .error = error};
    return journal_update(s, id, &c);
}

/* Data first, then the journal, as staging.h says: a crash in between
 * leaves a journal without data, which listing reports as failed. */
static int remove_entry_files(int dir_fd, uint64_t id, bool durable)
{
    char data[ENTRY_NAME_MAX], journal[ENTRY_NAME_MAX];
    staging_entry_file_name(data, id, ".data");
    staging_entry_file_name(journal, id, ".json");
    bool data_gone = unlinkat(dir_fd, data, 0) != 0;
    if (data_gone && errno != ENOENT)
        return -errno;
    bool journal_gone = unlinkat(dir_fd, journal, 0) != 0;
    if (journal_gone && errno != ENOENT)
        return -errno;
    if (durable && fsync(dir_fd) != 0)
        return -errno;
    return data_gone && journal_gone ? -ENOENT : 0;
}

int staging_remove(staging *s, uint64_t id)
{
    if (s == NULL || id == 0)
        return -EINVAL;
    pthread_mutex_lock(&s->mutex);
    int rc = remove_entry_files(s->dir_fd, id, true);
    pthread_mutex_unlock(&s->mutex);
    if (rc == 0)
        count_io(s, false, true);
    return rc;
}

int staging_remove_clean(staging *s, uint64_t id)
{
    if (s == NULL || id == 0)
        return -EINVAL;
    pthread_mutex_lock(&s->mutex);
    int rc = remove_entry_files(s->dir_fd, id, false);
    pthread_mutex_unlock(&s->mutex);
    return rc;
}

/* Hands the entries over, or none after an error. */
static int vec_finish(entry_vec *v, int rc, staging_entry **out, size_t *n)
{
    if (rc != 0 || v->count == 0) {
        staging_entries_free(v->items, v->count);
        v->items = NULL;
        v->count = 0;
    }
    *out = v->items;
    *n = v->count;
    return rc;
}

int staging_list(staging *s, staging_entry **out, size_t *n)
{
    entry_vec v = {0};
    if (s == NULL || out == NULL || n == NULL)
        return -EINVAL;
    pthread_mutex_lock(&s->mutex);
    int rc = session_load_entries(s->dir_fd, s->name, s->path, false, &v);
    pthread_mutex_unlock(&s->mutex);
    return vec_finish(&v, rc, out, n);
}

static int is_session(const struct dirent *de)
{
    return session_name_ok(de->d_name);
}

static int compare_names(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Opens session `name` if it is an orphan: 1 with *dir_fd open and
 * *lock_fd holding its lock (-1: it has no lock file); 0 (nothing open)
 * when a live process holds it; or a negative errno. */
static int orphan_open(int root_fd, const char *name, int *dir_fd,
                       int *lock_fd)
{
    *lock_fd = -1;
    *dir_fd = openat(root_fd, name, DIR_FLAGS);
    if (*dir_fd < 0)
        return -errno;
    int rc = session_probe_lock(*dir_fd, lock_fd);
    if (rc <= 0) {
        close(*dir_fd);
        *dir_fd = -1;
    }
    return rc;
}

/* Appends an orphaned session's entries; cleans it when it has none. */
static int orphan_session_load(int root_fd, const char *root_path,
                               const char *name, entry_vec *v)
{
    int dir_fd = -1, lock_fd = -1;
    char *session_path = NULL;
    int rc = orphan_open(root_fd, name, &dir_fd, &lock_fd);
    if (rc <= 0) /* live, gone, not a directory, a symlink */
        return rc == -ENOMEM ? rc : 0;
    size_t before = v->count;
    rc = asprintf(&session_path, "%s/%s", root_path, name) < 0 ? -ENOMEM : 0;
    if (rc == 0)
        rc = session_load_entries(dir_fd, name, session_path, lock_fd >= 0, v);
    if (rc == 0 && v->count == before)
        session_remove_if_empty(root_fd, name, dir_fd, lock_fd >= 0);
    if (lock_fd >= 0)
        close(lock_fd);
    close(dir_fd);
    free(session_path);
    return rc;
}

int staging_list_orphans(const char *cache_dir, staging_entry **out, size_t *n)
{
    entry_vec v = {0};
    char *root_path = NULL;
    struct dirent **names = NULL;
    int count = 0, root_fd = -1;
    if (cache_dir == NULL || out == NULL || n == NULL)
        return -EINVAL;
    int rc = staging_root_open(cache_dir, false, &root_path, &root_fd);
    if (rc == -ENOENT)
        rc = 0; /* no staging directory: nothing was ever staged */
    else if (rc == 0)
        count = scandirat(root_fd, ".", &names, is_session, compare_names);
    if (count < 0)
        rc = -errno;
    for (int i = 0; i < count; i++) {
        if (rc == 0)
            rc = orphan_session_load(root_fd, root_path, names[i]->d_name, &v);
        free(names[i]);
    }
    free(names);
    free(root_path);
    if (root_fd >= 0)
        close(root_fd);
    return vec_finish(&v, rc, out, n);
}

/* One orphan entry's session, opened and locked: 0 with the three
 * descriptors (close them with orphan_entry_close), -EBUSY when a live
 * mount holds it, or another negative errno. */
typedef struct orphan_handle {
    int root_fd, dir_fd, lock_fd;
} orphan_handle;

static void orphan_entry_close(orphan_handle *h)
{
    if (h->lock_fd >= 0)
        close(h->lock_fd);
    if (h->dir_fd >= 0)
        close(h->dir_fd);
    if (h->root_fd >= 0)
        close(h->root_fd);
}

static int orphan_entry_open(const char *cache_dir, const staging_entry *e,
                             orphan_handle *h)
{
    char *root_path = NULL;
    h->root_fd = h->dir_fd = h->lock_fd = -1;
    if (cache_dir == NULL || e == NULL || !session_name_ok(e->session) ||
        e->id == 0)
        return -EINVAL;
    int rc = staging_root_open(cache_dir, false, &root_path, &h->root_fd);
    free(root_path);
    if (rc != 0)
        return rc;
    rc = orphan_open(h->root_fd, e->session, &h->dir_fd, &h->lock_fd);
    return rc == 0 ? -EBUSY : rc < 0 ? rc : 0; /* never a live session's */
}

int staging_remove_orphan(const char *cache_dir, const staging_entry *e)
{
    orphan_handle h;
    int rc = orphan_entry_open(cache_dir, e, &h);
    if (rc == 0)
        rc = remove_entry_files(h.dir_fd, e->id, true);
    if (h.dir_fd >= 0 && (rc == 0 || rc == -ENOENT))
        session_remove_if_empty(h.root_fd, e->session, h.dir_fd,
                                h.lock_fd >= 0);
    orphan_entry_close(&h);
    return rc;
}

int staging_write_orphan(const char *cache_dir, const staging_entry *e)
{
    if (e == NULL || !e->repo || !e->branch || !e->path ||
        !staging_state_valid(e->state))
        return -EINVAL;
    orphan_handle h;
    int rc = orphan_entry_open(cache_dir, e, &h);
    if (rc == 0)
        rc = staging_journal_write(h.dir_fd, e->id, e);
    orphan_entry_close(&h);
    return rc;
}

void staging_entries_free(staging_entry *entries, size_t n)
{
    if (entries == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        staging_entry_clear(&entries[i]);
    free(entries);
}
