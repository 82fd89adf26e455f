/*
 * listings.h - directory listings fetched whole, once, and cached: a
 * lookup or a walk of (cache key, dir) is answered from the metacache, and
 * on a miss the listing is fetched by its source's callback - one fetch in
 * flight per directory however many threads ask - and cached until it
 * expires. Knows nothing of lakeFS or of paths.
 */
#ifndef LAKEFUSE_LISTINGS_H
#define LAKEFUSE_LISTINGS_H

#include "listing.h"
#include "log.h"
#include "metacache.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct listing_source listing_source;

/* Fetches the whole listing of src: entries sorted by name (fs_entry
 * arrays as listing_build makes them). 0 or a negative errno. */
typedef int (*listing_fetch_fn)(void *ctx, const listing_source *src,
                                fs_entry **entries, size_t *n);

/* Where a listing comes from and how long it may be cached. */
struct listing_source {
    const char *cache_key;
    const char *dir;
    int64_t ttl_ms; /* 0: never expires; < 0: never cached */
    listing_fetch_fn fetch;
    void *ctx;        /* the fetch callback's */
    const char *repo; /* for the callback */
    const void *ref;  /* for the callback */
};

typedef struct listings listings;

/* NULL on ENOMEM. meta and log are borrowed. */
listings *listings_new(metacache *meta, logger *log);
void listings_free(listings *l);

/* 1 and *out a copy (fs_entry_free it) when name is in the listing, 0 when
 * it is not, or a negative errno (the fetch's). out may be NULL: then
 * nothing is copied. */
int listings_lookup(listings *l, const listing_source *src, const char *name,
                    fs_entry *out);
/* The same, but *out gets only what stat needs: the name, the scalar
 * fields and the symlink target key (copied under the cache lock; nothing
 * else is copied). */
int listings_lookup_stat(listings *l, const listing_source *src,
                         const char *name, fs_entry *out);
/* fn for each entry in name order (over a snapshot of a cached listing,
 * without the cache lock; fn must not call back into l); stops at
 * fn's first non-zero value and returns it; 0 or a negative errno. */
int listings_foreach(listings *l, const listing_source *src,
                     int (*fn)(void *ctx, const fs_entry *e), void *ctx);

/* The listing as one set (*out; entryset_release it): the cached one,
 * shared, or one fetched now when it cannot be cached. A holder reads it
 * at its own pace (a directory handle); it never changes. 0 or a negative
 * errno. */
struct entryset;
int listings_snapshot(listings *l, const listing_source *src,
                      struct entryset **out);

/* For a fetch that brings the listings of other directories of the same
 * source along (a flat listing of a subtree): read the generation before
 * the fetch, then store each complete listing of dir (entries sorted as
 * listing_build makes them; taken) with src's expiry. A listing fetched
 * before a write is dropped, as a normal fetch's is. 0, -EFBIG (too big
 * to cache) or -ENOMEM. */
uint64_t listings_generation(listings *l, const listing_source *src);
int listings_store(listings *l, const listing_source *src, const char *dir,
                   fs_entry *entries, size_t n, uint64_t generation);
/* true when a valid listing of dir (of src's cache key) is cached. */
bool listings_cached(listings *l, const listing_source *src, const char *dir);
/* listings_foreach from the cache only: -ENODATA when src's listing is not
 * cached (nothing is fetched). fn runs under the cache's lock. */
int listings_peek(listings *l, const listing_source *src,
                  int (*fn)(void *ctx, const fs_entry *e), void *ctx);

/* Drops every cached listing under cache_key. */
void listings_forget(listings *l, const char *cache_key);

/* CLOCK_MONOTONIC in milliseconds: the clock of every expiry. */
int64_t listings_now_ms(void);

#endif
