/*
 * fetchbuf.c - fetched data's buffers, mappings kept for reuse (see
 * fetchbuf.h). Never keeps more than max_bytes, never keeps memory from
 * malloc, never hands out a buffer of another size than asked.
 */
#include "fetchbuf.h"

#include <stdlib.h>
#include <sys/mman.h>

/* Smaller data comes from malloc: no two system calls per small file. */
#define MAPPED_DATA_MIN ((size_t)256 << 10)

typedef struct fetchbuf_kept {
    struct fetchbuf_kept *next;
    size_t size;
} kept_mapping;

size_t fetchbuf_size(const fetchbuf_pool *p, size_t len)
{
    if (len < MAPPED_DATA_MIN || p->unit == 0)
        return len;
    return (len + p->unit - 1) / p->unit * p->unit;
}

unsigned char *fetchbuf_take_kept(fetchbuf_pool *p, size_t len)
{
    if (len < MAPPED_DATA_MIN)
        return NULL;
    size_t size = fetchbuf_size(p, len);
    for (kept_mapping **link = &p->kept; *link != NULL;
         link = &(*link)->next) {
        kept_mapping *k = *link;
        if (k->size == size) {
            *link = k->next;
            p->kept_bytes -= size;
            return (unsigned char *)k;
        }
    }
    return NULL;
}

unsigned char *fetchbuf_alloc(const fetchbuf_pool *p, size_t len,
                              bool *mapped)
{
    *mapped = false;
    if (len < MAPPED_DATA_MIN)
        return malloc(len);
    void *m = mmap(NULL, fetchbuf_size(p, len), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    *mapped = true;
    return m;
}

bool fetchbuf_give(fetchbuf_pool *p, unsigned char *data, size_t len,
                   bool keep)
{
    if (data == NULL)
        return false;
    if (len < MAPPED_DATA_MIN) {
        free(data);
        return false;
    }
    size_t size = fetchbuf_size(p, len);
    if (!keep || p->kept_bytes + size > p->max_bytes) {
        munmap(data, size);
        return false;
    }
    kept_mapping *k = (kept_mapping *)(void *)data;
    k->size = size;
    k->next = p->kept;
    p->kept = k;
    p->kept_bytes += size;
    return true;
}

size_t fetchbuf_reclaim(fetchbuf_pool *p)
{
    kept_mapping *k = p->kept;
    if (k == NULL)
        return 0;
    p->kept = k->next;
    size_t size = k->size;
    p->kept_bytes -= size;
    munmap(k, size);
    return size;
}

size_t fetchbuf_drain(fetchbuf_pool *p)
{
    size_t released = 0;
    size_t n;
    while ((n = fetchbuf_reclaim(p)) > 0)
        released += n;
    return released;
}
