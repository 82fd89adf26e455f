/*
 * warm.h - cached blocks read into the page cache ahead of a sequential
 * reader. A read served from the block cache is spliced from its block
 * file into /dev/fuse; when that file's pages are not in memory (after a
 * remount that followed a reboot, or once the kernel let them go) each
 * read waits for its own disk read, one block file at a time. The reader
 * hands the cached blocks of its read-ahead window to a warmer, whose
 * threads read their files into the page cache, several at once, in order
 * (blockcache_warm), so the splices that follow find them there. Only a hint: a full queue
 * drops what does not fit, nothing is checked or counted as a hit, and a
 * failure is ignored (the read then waits for the disk as before).
 */
#ifndef LAKEFUSE_WARM_H
#define LAKEFUSE_WARM_H

#include "blockcache.h"

#include <stdint.h>

typedef struct warmer warmer;

typedef struct warm_stats {
    uint64_t queued;  /* hints taken (one waiting already is not again) */
    uint64_t blocks;  /* of them, block files read into the page cache */
    uint64_t failed;  /* of them, not read (evicted meanwhile, an error) */
    uint64_t dropped; /* hints not taken: the queue was full */
} warm_stats;

/* Its threads (WARM_THREADS); bc is borrowed and must outlive warmer_free. NULL with *err
 * set (-ENOMEM, a thread or /dev/null error). */
warmer *warmer_new(blockcache *bc, int *err);
/* Stops the threads (the queue left unread), frees. NULL is a no-op. */
void warmer_free(warmer *w);
/* Queues block index of object id. Never blocks on I/O; w may be NULL. */
void warmer_add(warmer *w, const blockcache_id *id, uint64_t index);
/* Zeroes *out when w is NULL. */
void warmer_get_stats(warmer *w, warm_stats *out);

#endif
