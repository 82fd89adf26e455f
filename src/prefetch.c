/*
 * prefetch.c - small-file prefetch (prefetch.h). Per directory being read
 * (a few "streams", least recently used replaced), it remembers the file
 * opened last and the listing's next file; an open of exactly that next
 * file, of the listing's first file, or of a file it prefetched, confirms
 * the order and tops up a window
 * of the following small files, which worker threads read whole through
 * the reader (so the block cache gets them under their usual key, with the
 * usual checks). Any other open ends the window. Never fetches more than
 * max_files / max_bytes ahead of a reader, never lists a directory.
 */
#include "prefetch.h"

#include "fs_internal.h"
#include "listings.h"
#include "threads.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Directories followed at once (a parallel `cat` of several directories). */
#define PREFETCH_STREAMS 8

typedef enum item_state {
    ITEM_QUEUED,  /* waiting for a worker; an open cancels it */
    ITEM_RUNNING, /* a worker is reading it */
    ITEM_DONE,    /* read whole: its blocks are in the cache */
    ITEM_FAILED,  /* nothing cached (an error, or being written here) */
    ITEM_CACHED,  /* in the cache already: nothing fetched */
} item_state;

typedef struct prefetch_item {
    item_state state;
    bool detached; /* its stream let it go while running: the worker frees */
    bool opened;   /* opened while running: a hit, not waste */
    const tree_ref *ref;
    char *key; /* relative to the ref's prefix, as tree_node.key */
    char *opened_key; /* the open that queued it (same form); NULL: none */
    fs_entry entry;
} prefetch_item;

typedef struct prefetch_stream {
    const tree_ref *ref; /* NULL: slot free */
    char *dir;
    char *last;      /* the name opened last */
    char *next;      /* the listing's first file after the window (after
                        last when the window is empty); NULL: none */
    prefetch_item **items; /* the window, in listing order */
    size_t count;
    uint64_t used; /* for the LRU */
} prefetch_stream;

typedef struct counters {
    _Atomic uint64_t files, hits, wasted, cancelled, errors, bytes;
} counters;

struct prefetch {
    lakefuse_fs *fs;
    prefetch_config cfg;
    pthread_mutex_t lock;
    pthread_cond_t work;
    bool stopping;
    prefetch_stream streams[PREFETCH_STREAMS];
    uint64_t clock;
    unsigned worker_count;
    pthread_t *workers;
    counters stats;
};

static void count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static void item_free(prefetch_item *it)
{
    if (!it)
        return;
    free(it->key);
    free(it->opened_key);
    fs_entry_free(&it->entry);
    free(it);
}

/* Under p->lock: the window lets go of it. A file read and never opened
 * was wasted; one still running is left to its worker, which decides. */
static void item_drop(prefetch *p, prefetch_item *it)
{
    switch (it->state) {
    case ITEM_QUEUED:
        count(&p->stats.cancelled, 1);
        break;
    case ITEM_RUNNING:
        it->detached = true;
        return;
    case ITEM_DONE:
        count(&p->stats.wasted, 1);
        break;
    case ITEM_FAILED:
    case ITEM_CACHED:
        break;
    }
    item_free(it);
}

/* Under p->lock: drops items [0, n) of the window. */
static void stream_drop_front(prefetch *p, prefetch_stream *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        item_drop(p, s->items[i]);
    memmove(s->items, s->items + n, (s->count - n) * sizeof(*s->items));
    s->count -= n;
}

static void stream_clear(prefetch *p, prefetch_stream *s)
{
    stream_drop_front(p, s, s->count);
    free(s->dir);
    free(s->last);
    free(s->next);
    s->dir = s->last = s->next = NULL;
    s->ref = NULL;
}

/* ---- the listing's files after a name ---- */

typedef struct scan_ctx {
    prefetch *p;
    prefetch_stream *s;
    const char *after; /* the walk starts after this name */
    bool fill;         /* add eligible files to the window */
    uint64_t bytes;    /* of the window */
    int error;
} scan_ctx;

static bool eligible(const scan_ctx *c, const fs_entry *e)
{
    const prefetch_config *cfg = &c->p->cfg;
    if (e->is_symlink || e->size <= 0 || (uint64_t)e->size > cfg->max_file_size)
        return false;
    if (!e->physical_address) /* it keys the cache (no checksum: imports) */
        return false;
    return c->bytes + (uint64_t)e->size <= cfg->max_bytes ||
           c->s->count == 0;
}

static int add_item(scan_ctx *c, const fs_entry *e)
{
    prefetch_stream *s = c->s;
    prefetch_item *it = calloc(1, sizeof(*it));
    if (!it)
        return -ENOMEM;
    it->ref = s->ref;
    tree_node dir = {.kind = TREE_DIR, .ref = s->ref, .key = s->dir};
    it->key = tree_child_key(&dir, e->name);
    it->opened_key = s->last ? tree_child_key(&dir, s->last) : NULL;
    if (!it->key || (s->last && !it->opened_key) ||
        fs_entry_copy(&it->entry, e) != 0) {
        item_free(it);
        return -ENOMEM;
    }
    it->state = ITEM_QUEUED;
    s->items[s->count++] = it;
    c->bytes += (uint64_t)e->size;
    return 0;
}

/* metacache_foreach's callback: 1 stops the walk. */
static int scan_entry(void *ctx, const fs_entry *e)
{
    scan_ctx *c = ctx;
    if (e->is_dir || strcmp(e->name, TREE_MARKER_NAME) == 0)
        return 0;
    if (c->fill && c->s->count < c->p->cfg.max_files && eligible(c, e)) {
        c->error = add_item(c, e);
        return c->error ? 1 : 0;
    }
    c->s->next = strdup(e->name); /* NULL on ENOMEM: the order breaks */
    return 1;
}

/* Under p->lock: sets s->next to the listing's first file after the
 * window (or after s->last), first adding to the window when fill. */
static void stream_scan(prefetch *p, prefetch_stream *s, bool fill)
{
    free(s->next);
    s->next = NULL;
    scan_ctx c = {.p = p, .s = s, .fill = fill};
    c.after = s->count ? s->items[s->count - 1]->entry.name : s->last;
    for (size_t i = 0; i < s->count; i++)
        c.bytes += (uint64_t)s->items[i]->entry.size;
    size_t before = s->count;
    int rc = metacache_foreach_after(p->fs->meta, s->ref->cache_key, s->dir,
                                     listings_now_ms(), c.after, scan_entry,
                                     &c);
    if (rc < 0 || c.error) { /* not cached (any more): nothing to follow */
        free(s->next);
        s->next = NULL;
    }
    /* One worker per new item: waking them all for one would only make
     * the rest go back to sleep. */
    for (size_t i = before; i < s->count; i++)
        pthread_cond_signal(&p->work);
}

/* metacache_foreach's callback: stops at the listing's first file. */
static int first_file_entry(void *ctx, const fs_entry *e)
{
    if (e->is_dir || strcmp(e->name, TREE_MARKER_NAME) == 0)
        return 0;
    return strcmp(e->name, (const char *)ctx) == 0 ? 1 : 2;
}

/* Whether name is the first file of s's cached listing: a program that
 * starts there (cat of a glob) is most likely reading the directory. */
static bool is_first_file(prefetch *p, const prefetch_stream *s,
                          const char *name)
{
    return metacache_foreach(p->fs->meta, s->ref->cache_key, s->dir,
                             listings_now_ms(), first_file_entry,
                             (void *)name) == 1;
}

/* ---- the hook at open ---- */

static prefetch_stream *stream_for(prefetch *p, const tree_ref *ref,
                                   const char *dir, size_t dir_len)
{
    prefetch_stream *oldest = &p->streams[0];
    for (size_t i = 0; i < PREFETCH_STREAMS; i++) {
        prefetch_stream *s = &p->streams[i];
        if (s->ref == ref && strlen(s->dir) == dir_len &&
            memcmp(s->dir, dir, dir_len) == 0)
            return s;
        if (!s->ref || (oldest->ref && s->used < oldest->used))
            oldest = s;
    }
    stream_clear(p, oldest);
    oldest->dir = strndup(dir, dir_len);
    if (!oldest->dir)
        return NULL;
    oldest->ref = ref;
    return oldest;
}

static bool same_string(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Whether two entries name the same content: the fields of its cache key
 * (a presigned address without its query, which every signature changes). */
static bool same_content(const fs_entry *a, const fs_entry *b)
{
    const char *pa = a->physical_address ? a->physical_address : "";
    const char *pb = b->physical_address ? b->physical_address : "";
    size_t la = strcspn(pa, "?#"), lb = strcspn(pb, "?#");
    return a->size == b->size && same_string(a->checksum, b->checksum) &&
           la == lb && memcmp(pa, pb, la) == 0;
}

/* The window's item for the opened file (same name and content), or -1. */
static ssize_t window_index(const prefetch_stream *s, const char *name,
                            const fs_entry *e)
{
    for (size_t i = 0; i < s->count; i++) {
        const fs_entry *w = &s->items[i]->entry;
        if (strcmp(w->name, name) == 0)
            return same_content(w, e) ? (ssize_t)i : -1;
    }
    return -1;
}

void prefetch_opened(prefetch *p, const tree_node *n)
{
    if (!p || n->kind != TREE_FILE || !n->ref || !n->key)
        return;
    const char *slash = strrchr(n->key, '/');
    const char *name = slash ? slash + 1 : n->key;
    size_t dir_len = slash ? (size_t)(slash - n->key) : 0;
    pthread_mutex_lock(&p->lock);
    prefetch_stream *s = stream_for(p, n->ref, n->key, dir_len);
    if (!s) {
        pthread_mutex_unlock(&p->lock);
        return;
    }
    s->used = ++p->clock;
    bool in_order;
    ssize_t at = window_index(s, name, &n->entry);
    if (at >= 0) {
        stream_drop_front(p, s, (size_t)at); /* skipped by the reader */
        prefetch_item *it = s->items[0];
        if (it->state == ITEM_DONE) /* a running one counts when done */
            count(&p->stats.hits, 1);
        it->opened = true;
        if (it->state == ITEM_QUEUED) /* the open reads it itself */
            count(&p->stats.cancelled, 1);
        if (it->state == ITEM_RUNNING)
            it->detached = true;
        else
            item_free(it);
        memmove(s->items, s->items + 1, (s->count - 1) * sizeof(*s->items));
        s->count--;
        in_order = true;
    } else {
        bool successor = s->count == 0 && s->last && s->next &&
                         strcmp(s->next, name) == 0;
        stream_drop_front(p, s, s->count); /* any other open breaks it */
        in_order = successor || is_first_file(p, s, name);
    }
    char *last = strdup(name);
    free(s->last);
    s->last = last;
    if (last)
        stream_scan(p, s, in_order);
    else
        stream_drop_front(p, s, s->count);
    pthread_mutex_unlock(&p->lock);
}

/* ---- workers ---- */

/* Under p->lock: the first queued item of the most recently used stream. */
static prefetch_item *next_queued(prefetch *p)
{
    prefetch_item *best = NULL;
    uint64_t best_used = 0;
    for (size_t i = 0; i < PREFETCH_STREAMS; i++) {
        prefetch_stream *s = &p->streams[i];
        for (size_t j = 0; s->ref && j < s->count; j++)
            if (s->items[j]->state == ITEM_QUEUED) {
                if (!best || s->used > best_used) {
                    best = s->items[j];
                    best_used = s->used;
                }
                break;
            }
    }
    return best;
}

/* Reads the whole file through the reader: its blocks go to the cache.
 * 0, 1 when the cache has it already (nothing read), or -errno. */
static int fetch_item(prefetch *p, prefetch_item *it)
{
    lakefuse_fs *fs = p->fs;
    if (it->ref->is_branch && !writer_idle(fs->writer)) {
        char *key = fs_object_key(it->ref, it->key);
        wfile *w = key ? writer_find(fs->writer, it->ref->repo,
                                     it->ref->api_ref, key)
                       : NULL;
        free(key);
        if (w) { /* an open reads the staged bytes, not the object */
            wfile_release(w);
            return -EBUSY;
        }
    }
    tree_node node = {.kind = TREE_FILE, .ref = it->ref, .key = it->key,
                      .entry = it->entry};
    blockcache_id id;
    int rc = fs_object_content_id(fs, &node, &id);
    if (rc)
        return rc;
    /* Read before (a file fits in one block): in the cache, or still in
     * the reader's memory waiting for the store thread. */
    if (blockcache_contains(fs->blocks, &id, 0) ||
        (fs->reader && reader_holds(fs->reader, &id, 0)))
        return 1;
    count(&p->stats.files, 1);
    reader_file *rf = fs_open_object_reader_from(fs, &node, it->opened_key);
    if (!rf)
        return -ENOMEM;
    size_t size = (size_t)it->entry.size;
    void *buf = malloc(size);
    ssize_t got = buf ? reader_read(rf, buf, size, 0) : -ENOMEM;
    free(buf);
    reader_close(rf);
    if (got >= 0)
        count(&p->stats.bytes, (uint64_t)got);
    return got == (ssize_t)size ? 0 : got < 0 ? (int)got : -EIO;
}

static void *worker_main(void *arg)
{
    prefetch *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stopping) {
        prefetch_item *it = next_queued(p);
        if (!it) {
            pthread_cond_wait(&p->work, &p->lock);
            continue;
        }
        it->state = ITEM_RUNNING;
        pthread_mutex_unlock(&p->lock);
        int rc = fetch_item(p, it);
        pthread_mutex_lock(&p->lock);
        it->state = rc == 0 ? ITEM_DONE : rc > 0 ? ITEM_CACHED : ITEM_FAILED;
        if (rc < 0)
            count(&p->stats.errors, 1);
        if (it->detached) {
            if (rc == 0)
                count(it->opened ? &p->stats.hits : &p->stats.wasted, 1);
            item_free(it);
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* ---- life cycle ---- */

prefetch *prefetch_new(lakefuse_fs *fs, const prefetch_config *cfg, int *err)
{
    *err = 0;
    if (!fs || !cfg || cfg->max_files == 0 || cfg->max_file_size == 0) {
        *err = -EINVAL;
        return NULL;
    }
    prefetch *p = calloc(1, sizeof(*p));
    if (!p) {
        *err = -ENOMEM;
        return NULL;
    }
    p->fs = fs;
    p->cfg = *cfg;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    for (size_t i = 0; i < PREFETCH_STREAMS; i++) {
        p->streams[i].items = calloc(cfg->max_files, sizeof(prefetch_item *));
        if (!p->streams[i].items)
            *err = -ENOMEM;
    }
    p->workers = calloc(cfg->max_files, sizeof(pthread_t));
    if (!p->workers)
        *err = -ENOMEM;
    for (unsigned i = 0; *err == 0 && i < cfg->max_files; i++) {
        int rc = thread_start_masked(&p->workers[i], worker_main, p);
        if (rc)
            *err = -rc;
        else
            p->worker_count++;
    }
    if (*err) {
        int keep = *err;
        prefetch_free(p);
        *err = keep;
        return NULL;
    }
    return p;
}

void prefetch_free(prefetch *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->worker_count; i++)
        pthread_join(p->workers[i], NULL);
    for (size_t i = 0; i < PREFETCH_STREAMS; i++) {
        if (p->streams[i].items)
            stream_clear(p, &p->streams[i]);
        free(p->streams[i].items);
    }
    free(p->workers);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

void prefetch_get_stats(prefetch *p, prefetch_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!p)
        return;
    out->files = atomic_load(&p->stats.files);
    out->hits = atomic_load(&p->stats.hits);
    out->wasted = atomic_load(&p->stats.wasted);
    out->cancelled = atomic_load(&p->stats.cancelled);
    out->errors = atomic_load(&p->stats.errors);
    out->bytes = atomic_load(&p->stats.bytes);
}
