/*
 * prefetch.h - small-file prefetch: when a program opens a directory's
 * files in listing order (its first file, or file k then the listing's
 * next file), the next few small files of that cached listing are read in the background,
 * through the reader, into the block cache, so that their open + read is a
 * cache hit. Bounded (files and bytes ahead of each reader); stops when the
 * order breaks. Never asks lakeFS for a listing (only cached listings are
 * used), never fetches a file this mount is writing, never caches bytes the
 * reader would not (same fetch, same checks, same cache key).
 */
#ifndef LAKEFUSE_PREFETCH_H
#define LAKEFUSE_PREFETCH_H

#include <stdint.h>

struct lakefuse_fs;
struct tree_node;

typedef struct prefetch_config {
    unsigned max_files;     /* files fetched ahead of one reader (> 0) */
    uint64_t max_file_size; /* only objects of 1 to this many bytes */
    uint64_t max_bytes;     /* bytes fetched ahead of one reader */
} prefetch_config;

typedef struct prefetch_stats {
    uint64_t files;     /* files fetched ahead (one reader_read each; a
                           file the cache holds already is not fetched) */
    uint64_t hits;      /* opens of a file a prefetch fetched (counted when
                           both the open and the fetch happened) */
    uint64_t wasted;    /* files prefetched and never opened (skipped by
                           the reader, the order broke, unmount) */
    uint64_t cancelled; /* queued prefetches dropped before they started */
    uint64_t errors;    /* prefetches that failed (nothing cached) */
    uint64_t bytes;     /* bytes read by prefetches */
} prefetch_stats;

typedef struct prefetch prefetch;

/* Starts max_files worker threads. fs is borrowed: its reader, block
 * cache, metadata cache and writer must outlive prefetch_free. NULL with
 * *err set (-EINVAL, -ENOMEM, a thread creation error). */
prefetch *prefetch_new(struct lakefuse_fs *fs, const prefetch_config *cfg,
                       int *err);
/* Waits for the fetches running, drops the rest (prefetched files never
 * opened count as wasted), frees. NULL is a no-op. */
void prefetch_free(prefetch *p);

/* The hook at open: n (a TREE_FILE opened for reading through the reader)
 * was opened. Counts a hit when a prefetch fetched it, and decides what to
 * fetch next. Cheap when the order breaks; p may be NULL (off). */
void prefetch_opened(prefetch *p, const struct tree_node *n);

/* Zeroes *out when p is NULL. */
void prefetch_get_stats(prefetch *p, prefetch_stats *out);

#endif
