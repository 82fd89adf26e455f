/*
 * writer_names.c - the writer's side of unlink and rename (writer.h,
 * "names"): a file leaves its name (DETACHED) when it is unlinked or a
 * rename replaces it, and a rename moves the files under the old name to
 * the new one, keys and journals, while the server-side copy runs
 * (writer_move_*). The state machine itself is writer.c's.
 */
#include "writer_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Under f->io: f, referenced by the caller, leaves its name. */
static void detach_io_locked(wfile *f)
{
    writer *w = f->w;
    eager_abandon(&f->eager); /* its bytes never go up now */
    pthread_mutex_lock(&w->lock);
    writer_unlink_locked(w, f);
    pthread_mutex_lock(&f->state);
    f->detached = true;
    wfile_drop_journal(f);
    pthread_mutex_unlock(&f->state);
    pthread_mutex_unlock(&w->lock);
}

/* Waits for its upload in flight (the io lock), so nothing of it lands
 * after the caller's delete. */
static void detach(wfile *f)
{
    pthread_mutex_lock(&f->io);
    detach_io_locked(f);
    pthread_mutex_unlock(&f->io);
}

int writer_unlink(writer *w, const char *repo, const char *branch,
                  const char *key, int (*delete_fn)(void *ctx), void *ctx)
{
    wfile *f = writer_find(w, repo, branch, key);
    if (!f)
        return delete_fn(ctx);
    pthread_mutex_lock(&f->io);
    /* A descriptor that has not read or written yet still owes its copy
     * of the object: taken now, while the object is there. */
    int rc = wfile_ensure_filled(f);
    if (rc == 0)
        rc = delete_fn(ctx);
    if (rc == 0)
        detach_io_locked(f);
    pthread_mutex_unlock(&f->io);
    wfile_release(f);
    return rc;
}

void wfile_mark_unlinked(wfile *f)
{
    detach(f);
}

void writer_detach(writer *w, const char *repo, const char *branch,
                   const char *key)
{
    wfile *f = writer_find(w, repo, branch, key);
    if (!f)
        return;
    detach(f);
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
        pthread_mutex_lock(&f->state);
        bool hit = !f->detached && f->st != W_CONFLICT &&
                   strcmp(f->repo, repo) == 0 &&
                   strcmp(f->branch, branch) == 0 &&
                   strncmp(f->key, dir_prefix, plen) == 0;
        /* A marker: "c/" after the prefix (a subdirectory), or nothing (the
         * directory's own); a clean one is on the server, as listed. */
        const char *slash = hit ? strchr(f->key + plen, '/') : NULL;
        bool marker = slash && slash[1] == '\0' && f->st != W_CLEAN;
        bool self = hit && plen && f->key[plen] == '\0' &&
                    f->key[plen - 1] == '/' && f->st != W_CLEAN;
        /* Deeper: its first directory below the prefix exists. */
        bool implied = slash && slash[1] != '\0' && f->st != W_CLEAN;
        hit = hit && ((f->key[plen] && !slash) || marker || self || implied);
        writer_entry e = {.key = f->key, .size = f->size, .mtime = f->mtime,
                          .mode = f->mode & ~f->unshown_mode,
                          .unshown_mode = f->unshown_mode, .meta = &f->meta,
                          .base = f->st == W_CLEAN ? f->base : NULL,
                          .is_dir = marker || self || implied,
                          .self = self, .implied = implied,
                          .has_owner = f->has_owner, .uid = f->uid,
                          .gid = f->gid};
        if (hit)
            rc = fn(ctx, &e);
        pthread_mutex_unlock(&f->state);
    }
    pthread_mutex_unlock(&w->lock);
    return rc;
}

/* new_key + what follows old_len bytes of key. */
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

static bool rename_hit(const wfile *f, const char *old_key, size_t old_len,
                       bool prefix)
{
    return prefix ? strncmp(f->key, old_key, old_len) == 0 &&
                        f->key[old_len] == '/'
                  : strcmp(f->key, old_key) == 0;
}

/* References to the table's wfiles of (repo, branch) that hit. */
static int collect(writer *w, const char *repo, const char *branch,
                   const char *key, bool prefix, wfile ***out, size_t *n)
{
    size_t cap = 0, len = strlen(key);
    *out = NULL;
    *n = 0;
    int rc = 0;
    pthread_mutex_lock(&w->lock);
    for (wfile *f = w->files; f && rc == 0; f = f->next) {
        pthread_mutex_lock(&f->state);
        bool hit = strcmp(f->repo, repo) == 0 &&
                   strcmp(f->branch, branch) == 0 &&
                   rename_hit(f, key, len, prefix);
        pthread_mutex_unlock(&f->state);
        if (!hit)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            wfile **grown = realloc(*out, cap * sizeof(**out));
            if (!grown) {
                rc = -ENOMEM;
                break;
            }
            *out = grown;
        }
        f->refs++;
        (*out)[(*n)++] = f;
    }
    pthread_mutex_unlock(&w->lock);
    return rc;
}

static void release_all(wfile **files, size_t n)
{
    for (size_t i = 0; i < n; i++)
        wfile_release(files[i]);
    free(files);
}

struct writer_move {
    writer *w;
    char *new_key;
    size_t old_len;
    bool prefix;
    wfile **moved;
    size_t n_moved;
    wfile **victims;
    size_t n_victims;
};

static bool listed(wfile *const *files, size_t n, const wfile *f)
{
    for (size_t i = 0; i < n; i++)
        if (files[i] == f)
            return true;
    return false;
}

static void move_free(writer_move *m)
{
    for (size_t i = 0; i < m->n_victims; i++)
        pthread_mutex_unlock(&m->victims[i]->io);
    for (size_t i = 0; i < m->n_moved; i++)
        pthread_mutex_unlock(&m->moved[i]->io);
    release_all(m->victims, m->n_victims);
    release_all(m->moved, m->n_moved);
    pthread_mutex_unlock(&m->w->rename_lock);
    free(m->new_key);
    free(m);
}

int writer_move_begin(writer *w, const char *repo, const char *branch,
                      const char *old_key, const char *new_key, bool prefix,
                      writer_move **out)
{
    *out = NULL;
    writer_move *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->w = w;
    m->prefix = prefix;
    m->old_len = strlen(old_key);
    /* One rename at a time: only renames hold more than one io lock. */
    pthread_mutex_lock(&w->rename_lock);
    int rc = (m->new_key = strdup(new_key)) ? 0 : -ENOMEM;
    if (rc == 0)
        rc = collect(w, repo, branch, old_key, prefix, &m->moved, &m->n_moved);
    if (rc == 0)
        rc = collect(w, repo, branch, new_key, prefix, &m->victims,
                     &m->n_victims);
    size_t kept = 0;
    for (size_t i = 0; i < m->n_victims; i++) {
        if (listed(m->moved, m->n_moved, m->victims[i]))
            wfile_release(m->victims[i]);
        else
            m->victims[kept++] = m->victims[i];
    }
    m->n_victims = kept;
    /* After their uploads in flight; none starts until the end. */
    for (size_t i = 0; i < m->n_moved; i++)
        pthread_mutex_lock(&m->moved[i]->io);
    for (size_t i = 0; i < m->n_victims; i++)
        pthread_mutex_lock(&m->victims[i]->io);
    /* Files not yet copied in are, before their objects move or are
     * replaced: their descriptors keep the bytes they opened. */
    for (size_t i = 0; rc == 0 && i < m->n_moved; i++)
        rc = wfile_ensure_filled(m->moved[i]);
    for (size_t i = 0; rc == 0 && i < m->n_victims; i++)
        rc = wfile_ensure_filled(m->victims[i]);
    if (rc || (m->n_moved == 0 && m->n_victims == 0)) {
        move_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

bool writer_move_dirty(const writer_move *m)
{
    bool dirty = false;
    for (size_t i = 0; m && i < m->n_moved && !dirty; i++) {
        wfile *f = m->moved[i];
        pthread_mutex_lock(&f->state);
        dirty = !f->detached && (f->st == W_DIRTY || f->st == W_FAILED);
        pthread_mutex_unlock(&f->state);
    }
    return dirty;
}

int writer_move_foreach(const writer_move *m,
                        int (*fn)(void *ctx, const char *old_key,
                                  const char *new_key),
                        void *ctx)
{
    int rc = 0;
    for (size_t i = 0; m && rc == 0 && i < m->n_moved; i++) {
        wfile *f = m->moved[i];
        pthread_mutex_lock(&f->state);
        char *old_key = f->detached ? NULL : strdup(f->key);
        pthread_mutex_unlock(&f->state);
        if (!old_key)
            continue; /* detached: it keeps no name */
        char *new_key = renamed_key(old_key, m->old_len, m->new_key);
        rc = new_key ? fn(ctx, old_key, new_key) : -ENOMEM;
        free(new_key);
        free(old_key);
    }
    return rc;
}

int writer_move_end(writer_move *m, bool done, const char *new_base)
{
    if (!m)
        return 0;
    int rc = 0;
    for (size_t i = 0; done && i < m->n_victims; i++)
        detach_io_locked(m->victims[i]);
    for (size_t i = 0; done && rc == 0 && i < m->n_moved; i++) {
        wfile *f = m->moved[i];
        /* The key and its place in the table change together; the
         * journal's fsync comes after the table lock is let go. */
        pthread_mutex_lock(&m->w->lock);
        pthread_mutex_lock(&f->state);
        char *key = renamed_key(f->key, m->old_len, m->new_key);
        bool renamed = key && !f->detached;
        if (!key) {
            rc = -ENOMEM;
        } else if (renamed) {
            if (f->in_table)
                writer_hash_remove_locked(m->w, f);
            free(f->key);
            f->key = key;
            key = NULL;
            if (f->in_table)
                writer_hash_add_locked(m->w, f);
            if (new_base) {
                f->base_absent = !*new_base;
                rc = writer_set_string(&f->base, *new_base ? new_base : NULL);
                wfile_clear_attempts(f); /* they were tries at the old name */
            }
        }
        pthread_mutex_unlock(&m->w->lock);
        if (renamed && rc == 0)
            rc = wfile_journal_sync(f);
        free(key);
        pthread_mutex_unlock(&f->state);
    }
    move_free(m);
    return rc;
}

