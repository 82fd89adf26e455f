/*
 * listings.c - fetch-once-and-cache of directory listings over the
 * metacache. A fetch in flight is shared by every caller of the same
 * directory; a listing too large to cache is fetched per use, never kept.
 */
#include "listings.h"

#include "entryset.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_SEPARATOR "\x1f"

/* A listing being fetched: later callers wait for it instead of fetching
 * the same directory again. */
typedef struct flight {
    char *key; /* cache key + "\x1f" + dir */
    bool done;
    int waiters;
    struct flight *next;
} flight;

struct listings {
    metacache *meta;
    logger *log;
    pthread_mutex_t lock;
    pthread_cond_t flight_done;
    flight *flights;
};

int64_t listings_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

listings *listings_new(metacache *meta, logger *log)
{
    listings *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->meta = meta;
    l->log = log;
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->flight_done, NULL);
    return l;
}

void listings_free(listings *l)
{
    if (!l)
        return;
    pthread_cond_destroy(&l->flight_done);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

static char *flight_key(const listing_source *src)
{
    char *key = NULL;
    if (asprintf(&key, "%s" KEY_SEPARATOR "%s", src->cache_key, src->dir) < 0)
        return NULL;
    return key;
}

static void flight_free(flight *f)
{
    free(f->key);
    free(f);
}

uint64_t listings_generation(listings *l, const listing_source *src)
{
    return metacache_generation(l->meta, src->cache_key);
}

/* The one place listings enter the cache: src's own, and those a fetch
 * of src brought along (a flat listing of a subtree). */
int listings_store(listings *l, const listing_source *src, const char *dir,
                   fs_entry *entries, size_t n, uint64_t generation)
{
    if (src->ttl_ms < 0) {
        fs_entries_free(entries, n);
        return 0;
    }
    int64_t expires = src->ttl_ms ? listings_now_ms() + src->ttl_ms : 0;
    return metacache_put(l->meta, src->cache_key, dir, entries, n, expires,
                         generation);
}

static int no_entry(void *ctx, const fs_entry *e)
{
    (void)ctx;
    (void)e;
    return 1;
}

bool listings_cached(listings *l, const listing_source *src, const char *dir)
{
    return metacache_foreach(l->meta, src->cache_key, dir, listings_now_ms(),
                             no_entry, NULL) != -ENODATA;
}

int listings_peek(listings *l, const listing_source *src,
                  int (*fn)(void *ctx, const fs_entry *e), void *ctx)
{
    if (src->ttl_ms < 0)
        return -ENODATA;
    return metacache_foreach(l->meta, src->cache_key, src->dir,
                             listings_now_ms(), fn, ctx);
}

/* Fetches src into the cache unless another thread is already doing it, in
 * which case this waits for that fetch. 0: look in the cache now;
 * 1: not cacheable, fetch directly; negative errno. */
static int ensure_cached(listings *l, const listing_source *src)
{
    if (src->ttl_ms < 0)
        return 1;
    char *key = flight_key(src);
    if (!key)
        return -ENOMEM;
    pthread_mutex_lock(&l->lock);
    for (flight *f = l->flights; f; f = f->next) {
        if (strcmp(f->key, key) != 0)
            continue;
        f->waiters++;
        while (!f->done)
            pthread_cond_wait(&l->flight_done, &l->lock);
        f->waiters--;
        bool last = f->waiters == 0; /* the fetcher has let go of it */
        pthread_mutex_unlock(&l->lock);
        if (last)
            flight_free(f);
        free(key);
        return 0; /* whatever happened, the caller looks again */
    }
    flight *mine = calloc(1, sizeof(*mine));
    if (!mine) {
        pthread_mutex_unlock(&l->lock);
        free(key);
        return -ENOMEM;
    }
    mine->key = key;
    mine->next = l->flights;
    l->flights = mine;
    pthread_mutex_unlock(&l->lock);

    uint64_t generation = listings_generation(l, src);
    fs_entry *entries = NULL;
    size_t n = 0;
    int rc = src->fetch(src->ctx, src, &entries, &n);
    if (rc == 0 && listings_store(l, src, src->dir, entries, n,
                                  generation) == -EFBIG)
        logger_write(l->log, LOG_LEVEL_INFO,
                     "listing of '%s' is larger than the metadata "
                     "cache; it is fetched on every use",
                     src->dir);

    pthread_mutex_lock(&l->lock);
    mine->done = true;
    for (flight **p = &l->flights; *p; p = &(*p)->next) {
        if (*p == mine) {
            *p = mine->next;
            break;
        }
    }
    pthread_cond_broadcast(&l->flight_done);
    bool last = mine->waiters == 0; /* else the last waiter frees it */
    pthread_mutex_unlock(&l->lock);
    if (last)
        flight_free(mine);
    return rc;
}

static int compare_entry_name(const void *key, const void *elem)
{
    return strcmp(key, ((const fs_entry *)elem)->name);
}

/* One way of reading a listing: from the cache (-ENODATA when it holds
 * no valid listing), or from a private fetch when it cannot be cached. */
typedef struct listing_reader {
    int (*from_cache)(listings *l, const listing_source *src, void *ctx);
    int (*from_entries)(void *ctx, const fs_entry *entries, size_t n);
    void *ctx;
} listing_reader;

/* The cache; on a miss one shared fetch into it and the cache again; a
 * listing that still is not there (too big, expired at once, dropped for a
 * newer write) is fetched for this caller alone. */
static int read_listing(listings *l, const listing_source *src,
                        const listing_reader *r)
{
    int rc = r->from_cache(l, src, r->ctx);
    if (rc != -ENODATA)
        return rc;
    rc = ensure_cached(l, src);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        rc = r->from_cache(l, src, r->ctx);
        if (rc != -ENODATA)
            return rc;
    }
    fs_entry *entries = NULL;
    size_t n = 0;
    rc = src->fetch(src->ctx, src, &entries, &n);
    if (rc == 0)
        rc = r->from_entries(r->ctx, entries, n);
    fs_entries_free(entries, n);
    return rc;
}

typedef struct lookup_ctx {
    const char *name;
    fs_entry *out;
    bool stat_only;
} lookup_ctx;

/* What stat needs of e, into dst (zeroed first): 0 or -ENOMEM (dst
 * left zeroed). */
static int copy_for_stat(fs_entry *dst, const fs_entry *e)
{
    *dst = (fs_entry){.name = strdup(e->name), .is_dir = e->is_dir,
                      .is_symlink = e->is_symlink, .special = e->special,
                      .rdev = e->rdev, .size = e->size,
                      .mtime = e->mtime, .mode = e->mode, .uid = e->uid,
                      .gid = e->gid, .has_owner = e->has_owner};
    const char *target =
        lakefs_metadata_get(&e->metadata, LISTING_KEY_SYMLINK_TARGET);
    if (!dst->name ||
        (target && lakefs_metadata_set(&dst->metadata,
                                       LISTING_KEY_SYMLINK_TARGET, target))) {
        fs_entry_free(dst);
        return -ENOMEM;
    }
    return 0;
}

static int copy_found(void *ctx, const fs_entry *e)
{
    lookup_ctx *c = ctx;
    if (c->stat_only)
        return copy_for_stat(c->out, e);
    return fs_entry_copy(c->out, e) ? -ENOMEM : 0;
}

static int lookup_cached(listings *l, const listing_source *src, void *ctx)
{
    lookup_ctx *c = ctx;
    return metacache_lookup_with(l->meta, src->cache_key, src->dir, c->name,
                                 listings_now_ms(),
                                 c->out ? copy_found : NULL, c);
}

static int lookup_entries(void *ctx, const fs_entry *entries, size_t n)
{
    lookup_ctx *c = ctx;
    const fs_entry *e = n ? bsearch(c->name, entries, n, sizeof(*entries),
                                    compare_entry_name)
                          : NULL;
    if (!e)
        return 0;
    if (!c->out)
        return 1;
    return copy_found(c, e) == 0 ? 1 : -ENOMEM;
}

int listings_lookup(listings *l, const listing_source *src, const char *name,
                    fs_entry *out)
{
    lookup_ctx c = {name, out, false};
    listing_reader r = {lookup_cached, lookup_entries, &c};
    return read_listing(l, src, &r);
}

int listings_lookup_stat(listings *l, const listing_source *src,
                         const char *name, fs_entry *out)
{
    lookup_ctx c = {name, out, true};
    listing_reader r = {lookup_cached, lookup_entries, &c};
    return read_listing(l, src, &r);
}

typedef struct foreach_ctx {
    int (*fn)(void *ctx, const fs_entry *e);
    void *ctx;
} foreach_ctx;

static int foreach_cached(listings *l, const listing_source *src, void *ctx)
{
    foreach_ctx *c = ctx;
    return metacache_foreach(l->meta, src->cache_key, src->dir,
                             listings_now_ms(), c->fn, c->ctx);
}

static int foreach_entries(void *ctx, const fs_entry *entries, size_t n)
{
    foreach_ctx *c = ctx;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = c->fn(c->ctx, &entries[i]);
    return rc;
}

int listings_foreach(listings *l, const listing_source *src,
                     int (*fn)(void *ctx, const fs_entry *e), void *ctx)
{
    foreach_ctx c = {fn, ctx};
    listing_reader r = {foreach_cached, foreach_entries, &c};
    return read_listing(l, src, &r);
}

static int snapshot_cached(listings *l, const listing_source *src, void *ctx)
{
    return metacache_snapshot(l->meta, src->cache_key, src->dir,
                              listings_now_ms(), ctx);
}

static int snapshot_entries(void *ctx, const fs_entry *entries, size_t n)
{
    fs_entry *copy = calloc(n ? n : 1, sizeof(*copy));
    if (!copy)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (fs_entry_copy(&copy[i], &entries[i])) {
            fs_entries_free(copy, i);
            return -ENOMEM;
        }
    }
    *(entryset **)ctx = entryset_new(copy, n);
    return *(entryset **)ctx ? 0 : -ENOMEM;
}

int listings_snapshot(listings *l, const listing_source *src, entryset **out)
{
    *out = NULL;
    listing_reader r = {snapshot_cached, snapshot_entries, out};
    int rc = read_listing(l, src, &r);
    if (rc && *out) {
        entryset_release(*out);
        *out = NULL;
    }
    return rc;
}

void listings_forget(listings *l, const char *cache_key)
{
    metacache_invalidate_ref(l->meta, cache_key);
}
