/*
 * entryset.h - the entries of one directory listing, sorted by name, as a
 * reference-counted set that is never written while shared: a holder can
 * read it from any thread while its owner updates (the update copies what
 * it changes first). Updates cost O(log n) plus at most a chunk's worth of
 * pointer moves, and keep the byte estimate current. No locking inside:
 * the owner serialises its updates and retains (refs only go up under the
 * owner's lock; release is safe from anywhere).
 */
#ifndef LAKEFUSE_ENTRYSET_H
#define LAKEFUSE_ENTRYSET_H

#include "listing.h"

#include <stddef.h>

/* What malloc spends per allocation beyond the bytes asked for, so that an
 * estimate tracks real heap use for many small strings. */
#define ENTRYSET_ALLOC_OVERHEAD 16

typedef struct entryset entryset;

/* A set owning entries[0..n) (sorted by name, names unique), moved out of
 * the array; the array is freed in every case. NULL on ENOMEM (the entries
 * are freed too). */
entryset *entryset_new(fs_entry *entries, size_t n);
/* One more holder; the same pointer. */
entryset *entryset_retain(entryset *s);
/* Drops a holder; the last one frees the set (from any thread). */
void entryset_release(entryset *s);

size_t entryset_count(const entryset *s);
/* Estimate of the heap the set holds (its entries, chunks and arrays). */
size_t entryset_bytes(const entryset *s);
/* The entry named name, or NULL; valid until the caller's next update or
 * release of the set. */
const fs_entry *entryset_find(const entryset *s, const char *name);
/* fn for each entry in name order, until it returns non-zero (returned). */
int entryset_foreach(const entryset *s, int (*fn)(void *ctx, const fs_entry *e),
                     void *ctx);
/* The same from the first entry whose name sorts after `after` (all of
 * them when after is NULL): O(log n) to find where to start. */
int entryset_foreach_after(const entryset *s, const char *after,
                           int (*fn)(void *ctx, const fs_entry *e),
                           void *ctx);

/* Where entryset_foreach_from last started: the chunk holding an index and
 * the index of that chunk's first entry. Zero it before the first call;
 * valid for one set only. */
typedef struct entryset_pos {
    size_t chunk;
    size_t base;
} entryset_pos;

/* fn(ctx, entry, index) for each entry from index `index` (0-based, name
 * order) on, until it returns non-zero (returned). pos (may be NULL) is
 * where the previous call on the same set started: a walk that moves
 * forward starts from there, so a directory read in n calls costs O(n)
 * in all, not O(n^2); a jump back restarts from the first chunk. *steps
 * (may be NULL) is increased by the chunks passed to find the start. */
int entryset_foreach_from(const entryset *s, size_t index, entryset_pos *pos,
                          size_t *steps,
                          int (*fn)(void *ctx, const fs_entry *e,
                                    size_t index),
                          void *ctx);

/*
 * Inserts or replaces (entry non-NULL: copied, under `name`) or removes
 * (entry NULL) one name. When another holder shares *s, *s is first
 * replaced by the caller's own copy of the pointer arrays (the other
 * holder's view does not change). 0 or -ENOMEM, after which *s is still a
 * consistent set to release (it may or may not hold the change).
 */
int entryset_update(entryset **s, const char *name, const fs_entry *entry);

/* Drops every entry's physical address (often the largest part of a
 * listed object) and keeps the byte estimate current, for a listing that
 * would not fit the cache with them: a reader then asks for the object's
 * URL or data by its key. Only for a set nobody else holds (refs 1). */
void entryset_drop_addresses(entryset *s);
/* The part of entryset_bytes that entryset_drop_addresses would free. */
size_t entryset_address_bytes(const entryset *s);

/* For tests: order, structure and the byte estimate recomputed from
 * scratch. 0 or -EINVAL. */
int entryset_verify(const entryset *s);

#endif
