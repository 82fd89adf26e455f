/*
 * fetchbuf.h - memory for the reader's fetched data. Data of a block or
 * more lives in a mapping of its own, returned to the system when freed
 * (from malloc, megabytes allocated on one thread and freed on another
 * stay in the process's arenas: peak RSS twice the in-flight budget), and
 * a freed mapping is kept for the next fetch of the same size instead of
 * being unmapped: mapping and populating fresh pages (page faults, zeroing,
 * memory-cgroup charges) cost a third of the daemon's CPU on a cold
 * sequential read. The pool is bounded, and its caller counts what it
 * keeps in its memory budget. The pool is not thread-safe: the caller
 * serialises every call but fetchbuf_size and fetchbuf_alloc.
 */
#ifndef LAKEFUSE_FETCHBUF_H
#define LAKEFUSE_FETCHBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fetchbuf_kept;

typedef struct fetchbuf_pool {
    struct fetchbuf_kept *kept; /* freed mappings, linked in their bytes */
    size_t kept_bytes;
    size_t max_bytes; /* kept at most */
    size_t unit;      /* mappings are whole multiples of it (a block) */
} fetchbuf_pool;

/* The bytes a buffer for len bytes of data takes: len below a mapping's
 * minimum (malloc), else len rounded up to whole units. */
size_t fetchbuf_size(const fetchbuf_pool *p, size_t len);
/* A kept mapping for len bytes (of fetchbuf_size(p, len) bytes), its bytes
 * leaving the pool's count; NULL when none is kept. */
unsigned char *fetchbuf_take_kept(fetchbuf_pool *p, size_t len);
/* A new buffer of fetchbuf_size(p, len) bytes (*mapped: a new mapping);
 * NULL on ENOMEM. */
unsigned char *fetchbuf_alloc(const fetchbuf_pool *p, size_t len,
                              bool *mapped);
/* Gives a buffer of fetchbuf_size(p, len) bytes back: kept (true, its
 * bytes now in the pool's count) when it is a mapping and keep allows and
 * there is room, else freed (false). */
bool fetchbuf_give(fetchbuf_pool *p, unsigned char *data, size_t len,
                   bool keep);
/* Unmaps one kept mapping; returns its size, 0 when none is kept. */
size_t fetchbuf_reclaim(fetchbuf_pool *p);
/* Unmaps every kept mapping; returns the bytes released. */
size_t fetchbuf_drain(fetchbuf_pool *p);

#endif
