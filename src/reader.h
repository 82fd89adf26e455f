/*
 * reader.h - the data path of open files: reads are served in fixed-size
 * blocks from the on-disk block cache, missing blocks are fetched with
 * ranged GETs (one GET may cover several consecutive blocks), sequential
 * access is detected per open file and read ahead on a small worker pool
 * with a growing window, and concurrent readers of the same block share one
 * fetch. Fetched blocks are served from memory and stored in the cache
 * behind the reads, by a thread of their own. A small random read that
 * misses fetches only its own bytes, uncached, unless its block was read
 * at random before or its descriptor reads densely at random; once an
 * object up to a quarter of the cache is filled into it in the background
 * (a few GETs of several MiB), small reads meanwhile fetched alone. It knows
 * nothing of FUSE or lakeFS: bytes come from a fetch callback. Never holds
 * more than max_inflight_bytes of fetched data, buffers kept for reuse
 * (fetchbuf.h) included.
 */
#ifndef LAKEFUSE_READER_H
#define LAKEFUSE_READER_H

#include "blockcache.h"
#include "warm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Fetches len bytes at offset of the object described by `source` into buf;
 * *out_len is the number of bytes read (less than len only at the end of
 * the object). 0, READER_FETCH_UNCACHEABLE (the bytes may be served but
 * must not go into the block cache: their content could not be verified),
 * or a negative errno. Called from FUSE threads and from reader workers,
 * possibly concurrently for one source.
 */
#define READER_FETCH_UNCACHEABLE 1
typedef int (*reader_fetch_fn)(void *source, uint64_t offset, size_t len,
                               void *buf, size_t *out_len);

typedef struct reader_config {
    blockcache *cache;          /* may be NULL: no disk cache */
    uint32_t block_size;        /* bytes per block; must equal the cache's */
    unsigned workers;           /* read-ahead threads; 0: 4 */
    size_t max_fetch_bytes;     /* largest single GET; 0: 8 MiB */
    size_t max_readahead_bytes; /* read-ahead window cap; 0: 16 MiB */
    size_t max_inflight_bytes;  /* fetched data held in memory; 0: 32 MiB */
    size_t direct_read_max;     /* a random read up to this many bytes that
                                   misses the cache fetches just its bytes,
                                   uncached; 0: block_size / 8 */
} reader_config;

typedef struct reader_stats {
    uint64_t fetches;          /* fetch callback calls (GETs) */
    uint64_t bytes_fetched;    /* bytes the fetch callback returned */
    uint64_t bytes_from_cache; /* bytes served from the block cache */
    uint64_t bytes_served;     /* bytes returned by reader_read */
    uint64_t readahead_blocks; /* blocks fetched ahead of a reader */
    uint64_t fetch_errors;
    uint64_t fetch_waits;  /* reads that waited for another caller's fetch */
    uint64_t budget_waits; /* fetches that waited for max_inflight_bytes */
    uint64_t uncacheable_fetches; /* fetches whose bytes were not cached */
    uint64_t direct_fetches; /* random reads fetched alone, not cached */
    uint64_t buffers_mapped; /* fetch buffers newly mapped; a freed one is
                                kept for the next GET of its size while a
                                file is open (within max_inflight_bytes) */
    uint64_t fill_blocks; /* blocks fetched by background fills */
    warm_stats warm;      /* cached blocks read ahead into the page cache */
} reader_stats;

typedef struct reader reader;
typedef struct reader_file reader_file;

/* NULL with *err set (-EINVAL, -ENOMEM, thread creation error). */
reader *reader_new(const reader_config *cfg, int *err);
/* Waits for the workers' current fetches, then frees. Every reader_file
 * must have been closed. */
void reader_free(reader *r);

/*
 * Opens one object for reading: id is the identity of its content (its
 * size: id->size) and keys the block cache. The reader_file owns `source` and calls
 * source_free(source) (if not NULL) once nothing uses it any more, which
 * may be after reader_close returns (read-ahead still in flight).
 * NULL on ENOMEM (source is then freed too).
 */
reader_file *reader_open(reader *r, const blockcache_id *id,
                         reader_fetch_fn fetch, void *source,
                         void (*source_free)(void *source));

/* Reads up to len bytes at offset: fewer only at the end of the object, 0
 * at or past it. Thread-safe (several FUSE threads may read one file).
 * Returns the byte count or a negative errno (the fetch's). */
ssize_t reader_read(reader_file *f, void *buf, size_t len, uint64_t offset);

/* Drops the caller's reference; read-ahead for the file is cancelled where
 * it has not started. */
void reader_close(reader_file *f);

/* Whether the block is cached or fetched (or being fetched) into memory,
 * waiting to be stored behind the reads: a read of it gets no GET. */
bool reader_holds(reader *r, const blockcache_id *id, uint64_t block);

void reader_get_stats(reader *r, reader_stats *out);

/* Waits until every fetch started is done and every fetched block handed
 * to the cache is written (blocks are stored behind the reads, on a thread
 * of their own). Read-ahead queued for a file still open runs first. */
void reader_flush(reader *r);

/* One cached piece of a read, as a descriptor range (see blockcache_pin). */
typedef struct reader_piece {
    blockcache_pinned pin;
    size_t len;
} reader_piece;

/*
 * The bytes reader_read would return for [offset, offset + len), when the
 * block cache holds all of them, as descriptor ranges to hand on (a splice
 * to /dev/fuse) instead of copies: pieces[0..*pinned) in order, each within
 * one block. Counts the read and drives read-ahead as reader_read does.
 * 0 (*pinned 0 at or past the end), -ENOENT when any byte is not cached or
 * there is no cache, -E2BIG when more than max_pieces are needed: then
 * nothing is pinned and the caller reads with reader_read. The pieces stay
 * valid until given back with reader_unpin, which may come after
 * reader_close of f.
 */
int reader_pin(reader_file *f, uint64_t offset, size_t len,
               reader_piece *pieces, size_t max_pieces, size_t *pinned);
void reader_unpin(reader *r, reader_piece *pieces, size_t count);

#endif
