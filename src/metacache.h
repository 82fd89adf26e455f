/*
 * metacache.h - a bounded, thread-safe cache of directory listings (sorted
 * fs_entry arrays) keyed by (ref, directory), answering lookups, negative
 * lookups and readdir, sshfs-style. It never talks to lakeFS and never
 * grows past its byte budget: least-recently-used listings are evicted.
 *
 * Changes to this contract (issue 13):
 * - generations are per directory: metacache_generation() hands out one
 *   clock, and a put for dir D is dropped only if D or one of its
 *   descendants was written (update_entry / invalidate_dir) or the ref was
 *   invalidated since; writes elsewhere in the ref no longer drop it.
 * - metacache_foreach() calls fn without the cache lock, over a snapshot
 *   of the listing taken when it started (fn may call into the cache).
 * - metacache_lookup_with() answers a lookup by calling fn under the lock
 *   with the cached entry itself: nothing is copied.
 * - metacache_verify() recomputes the byte estimate from scratch (tests).
 * - metacache_foreach_after() walks from the entry after a name, found in
 *   O(log n) (small-file prefetch follows a reader through a listing).
 */
#ifndef LAKEFUSE_METACACHE_H
#define LAKEFUSE_METACACHE_H

#include "listing.h"

#include <stddef.h>
#include <stdint.h>

typedef struct metacache metacache;
struct entryset;

typedef struct metacache_stats {
    uint64_t hits;          /* lookups that found the name, valid foreach */
    uint64_t misses;        /* lookups/foreach with no valid listing */
    uint64_t negative_hits; /* lookups answered "no such name" */
    uint64_t evictions;     /* listings evicted to stay under max_bytes */
    uint64_t bytes;         /* current estimate of heap memory held */
    uint64_t listings;      /* listings currently cached */
} metacache_stats;

/* NULL on ENOMEM. max_bytes bounds the estimate of all heap memory held by
 * cached listings (the small per-ref generation records are counted but
 * never evicted). */
metacache *metacache_new(size_t max_bytes);
void metacache_free(metacache *mc);

/*
 * Generation to read before fetching a listing and pass to put (ref_key is
 * not used: one clock serves every ref). A put for (ref, D) is dropped when,
 * since that generation was read, the ref was invalidated or there was an
 * update_entry / invalidate_dir in D or in any directory below D (a write
 * in "a/b" may make the implicit directory "a" or "a/b" appear or vanish),
 * so that a listing fetched before a write is never cached after it.
 * Writes in other directories do not drop it.
 */
uint64_t metacache_generation(metacache *mc, const char *ref_key);

/*
 * Stores the listing of `dir` ("" for the ref root, else "a/b" without
 * trailing slash) under ref_key, replacing any previous one, and takes
 * ownership of entries (n of them; sorted by name - sorted here if not).
 * expires_at_ms: CLOCK_MONOTONIC ms, 0 = never expires (fixed commits).
 * Evicts least-recently-used listings to stay under max_bytes.
 * Returns 0 (also when dropped for a stale generation), -EFBIG when the
 * listing alone exceeds max_bytes, or -ENOMEM; entries are freed on every
 * path that does not keep them.
 */
int metacache_put(metacache *mc, const char *ref_key, const char *dir,
                  fs_entry *entries, size_t n, int64_t expires_at_ms,
                  uint64_t generation);

/*
 * 1: name found in a valid cached listing of dir, *out a deep copy (free it
 * with fs_entry_free); 0: the listing is cached and valid and name is not
 * in it (negative answer); -ENODATA: no valid listing (absent or expired);
 * -ENOMEM. out may be NULL. A listing is valid while now_ms < expires_at_ms.
 */
int metacache_lookup(metacache *mc, const char *ref_key, const char *dir,
                     const char *name, int64_t now_ms, fs_entry *out);

/*
 * As metacache_lookup, but copies nothing: when name is found, fn (if not
 * NULL) is called under the cache lock with the cached entry (read it, do
 * not keep pointers into it, do not call back into the cache); a negative
 * return of fn is returned, else 1.
 */
int metacache_lookup_with(metacache *mc, const char *ref_key, const char *dir,
                          const char *name, int64_t now_ms,
                          int (*fn)(void *ctx, const fs_entry *e), void *ctx);

/* Calls fn for every entry of a valid cached listing, in order, without
 * the cache lock held: over a snapshot of the listing as it was when the
 * call began (later updates do not show in it, and it stays valid if the
 * listing is dropped meanwhile; fn may call into the cache). Stops early
 * when fn returns non-zero and returns that value; 0 after the last entry.
 * -ENODATA if there is no valid listing. */
int metacache_foreach(metacache *mc, const char *ref_key, const char *dir,
                      int64_t now_ms, int (*fn)(void *ctx, const fs_entry *e),
                      void *ctx);
/* The same from the first entry whose name sorts after `after` (NULL: from
 * the first), found in O(log n). */
int metacache_foreach_after(metacache *mc, const char *ref_key,
                            const char *dir, int64_t now_ms,
                            const char *after,
                            int (*fn)(void *ctx, const fs_entry *e),
                            void *ctx);

/* A reference to the valid cached listing of dir as it is now (release it
 * with entryset_release; later updates copy, so it never changes): 0, or
 * -ENODATA if there is none. */
int metacache_snapshot(metacache *mc, const char *ref_key, const char *dir,
                       int64_t now_ms, struct entryset **out);

/* Replaces or inserts (entry non-NULL, copied; its name is used as given by
 * `name`) or removes (entry NULL) one name in the cached listing of dir, if
 * cached. Returns 0 whether or not the listing was cached, or -ENOMEM (the
 * listing is then dropped, so the cache never answers stale). */
int metacache_update_entry(metacache *mc, const char *ref_key, const char *dir,
                           const char *name, const fs_entry *entry);

void metacache_invalidate_dir(metacache *mc, const char *ref_key,
                              const char *dir);
/* Drops every listing of the ref and bumps its generation. */
void metacache_invalidate_ref(metacache *mc, const char *ref_key);

/* The same, handing back (when paths is not NULL) the "dir/name" of every
 * entry the dropped listings held, so that a caller can tell the kernel
 * to forget them too (free each, then the array). On ENOMEM the list is
 * cut short; the listings are dropped in every case. */
void metacache_invalidate_ref_paths(metacache *mc, const char *ref_key,
                                    char ***paths, size_t *count);

void metacache_get_stats(metacache *mc, metacache_stats *out);

/* For tests: checks every cached listing's order and chunk structure and
 * recomputes the byte estimate from scratch. 0 if it matches the one kept
 * up to date by each update, else -EINVAL. O(total entries). */
int metacache_verify(metacache *mc);

#endif
