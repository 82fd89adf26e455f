/*
 * entryset.c - a directory listing's entries as a reference-counted,
 * copy-on-write sorted array of chunks (at most CHUNK_MAX items each): an
 * insert, replace or remove costs two binary searches and a move of at most
 * a chunk's pointers (a split also moves the chunk array's n / CHUNK_MAX);
 * the byte estimate follows each update. Nothing here locks: a set held by
 * someone else (refs > 1) is never written, an update copies the pointer
 * arrays it must change first, never the entries.
 */
#include "entryset.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define ALLOC_OVERHEAD ENTRYSET_ALLOC_OVERHEAD
/* Items per chunk: a full chunk splits in two halves; new() fills 3/4. */
#define CHUNK_MAX 256
#define CHUNK_FILL (CHUNK_MAX * 3 / 4)

typedef struct item {
    atomic_uint refs;
    fs_entry e;
} item;

typedef struct chunk {
    atomic_uint refs;
    size_t count; /* never 0 while in a set */
    size_t cap;   /* at most CHUNK_MAX; small directories stay small */
    item *items[];
} chunk;

/* The entries of a listing in name order: chunks[i] all sort before
 * chunks[i + 1]. Shared read-only with readers once refs > 1. */
struct entryset {
    atomic_uint refs;
    chunk **chunks;
    size_t nchunks, cap;
    size_t count; /* entries */
    size_t bytes; /* estimate of everything the set holds */
};

static size_t string_bytes(const char *s)
{
    return s ? strlen(s) + 1 + ALLOC_OVERHEAD : 0;
}

/* Heap held by one entry, beyond the fs_entry struct itself. */
static size_t entry_heap_bytes(const fs_entry *e)
{
    size_t bytes = string_bytes(e->name) + string_bytes(e->checksum) +
                   string_bytes(e->physical_address) +
                   string_bytes(e->content_type);
    if (e->metadata.count)
        bytes += e->metadata.count * sizeof(lakefs_kv) + ALLOC_OVERHEAD;
    for (size_t i = 0; i < e->metadata.count; i++)
        bytes += string_bytes(e->metadata.items[i].key) +
                 string_bytes(e->metadata.items[i].value);
    return bytes;
}

static size_t chunk_bytes(size_t cap)
{
    return sizeof(chunk) + cap * sizeof(item *) + ALLOC_OVERHEAD;
}

static size_t item_bytes(const fs_entry *e)
{
    return sizeof(item) + ALLOC_OVERHEAD + entry_heap_bytes(e);
}

static size_t chunk_array_bytes(size_t cap)
{
    return cap ? cap * sizeof(chunk *) + ALLOC_OVERHEAD : 0;
}


/* ---- reference-counted storage; releases may run without the lock ---- */

static void item_release(item *it)
{
    if (atomic_fetch_sub(&it->refs, 1) == 1) {
        fs_entry_free(&it->e);
        free(it);
    }
}

static void chunk_release(chunk *c)
{
    if (atomic_fetch_sub(&c->refs, 1) == 1) {
        for (size_t i = 0; i < c->count; i++)
            item_release(c->items[i]);
        free(c);
    }
}

void entryset_release(entryset *v)
{
    if (atomic_fetch_sub(&v->refs, 1) == 1) {
        for (size_t i = 0; i < v->nchunks; i++)
            chunk_release(v->chunks[i]);
        free(v->chunks);
        free(v);
    }
}

static chunk *chunk_new(size_t cap)
{
    chunk *c = malloc(sizeof(*c) + cap * sizeof(item *));
    if (c) {
        atomic_init(&c->refs, 1);
        c->count = 0;
        c->cap = cap;
    }
    return c;
}

entryset *entryset_new(fs_entry *entries, size_t n)
{
    entryset *v = calloc(1, sizeof(*v));
    size_t nchunks = (n + CHUNK_FILL - 1) / CHUNK_FILL;
    size_t i = 0;
    if (v) {
        atomic_init(&v->refs, 1);
        v->cap = nchunks;
        v->chunks = nchunks ? malloc(nchunks * sizeof(*v->chunks)) : NULL;
        if (nchunks && !v->chunks) {
            free(v);
            v = NULL;
        }
    }
    if (v)
        v->bytes = sizeof(*v) + ALLOC_OVERHEAD + chunk_array_bytes(nchunks);
    for (; v && i < n; i++) {
        if (i % CHUNK_FILL == 0) {
            /* full chunks get room to grow; a small listing's one chunk
             * is sized to fit */
            size_t cap = n - i < CHUNK_FILL ? n - i : CHUNK_MAX;
            chunk *c = chunk_new(cap);
            if (!c)
                break;
            v->chunks[v->nchunks++] = c;
            v->bytes += chunk_bytes(cap);
        }
        item *it = malloc(sizeof(*it));
        if (!it)
            break;
        atomic_init(&it->refs, 1);
        it->e = entries[i];
        v->bytes += item_bytes(&it->e);
        chunk *c = v->chunks[v->nchunks - 1];
        c->items[c->count++] = it;
        v->count++;
    }
    if (v && i < n) { /* ENOMEM: chunks already built are trimmed */
        if (v->nchunks && v->chunks[v->nchunks - 1]->count == 0)
            free(v->chunks[--v->nchunks]);
        entryset_release(v);
        v = NULL;
    }
    for (; i < n; i++)
        fs_entry_free(&entries[i]);
    free(entries);
    return v;
}

/* The chunk that holds name or where it would go: the last whose first
 * name sorts at or before name, else the first. */
static size_t find_chunk(const entryset *v, const char *name)
{
    size_t lo = 0, hi = v->nchunks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(v->chunks[mid]->items[0]->e.name, name) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo ? lo - 1 : 0;
}

/* Index of name in c, or -(insertion point) - 1. */
static ptrdiff_t chunk_search(const chunk *c, const char *name)
{
    size_t lo = 0, hi = c->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(c->items[mid]->e.name, name);
        if (cmp == 0)
            return (ptrdiff_t)mid;
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(ptrdiff_t)lo - 1;
}

const fs_entry *entryset_find(const entryset *v, const char *name)
{
    if (!v->nchunks)
        return NULL;
    const chunk *c = v->chunks[find_chunk(v, name)];
    ptrdiff_t i = chunk_search(c, name);
    return i < 0 ? NULL : &c->items[i]->e;
}

/* ---- updates in place (lock held) ---- */

/* Makes *vp its caller's own: whoever else holds it keeps the old array,
 * the caller gets a copy of the chunk pointers. */
static int own_set(entryset **vp)
{
    entryset *v = *vp;
    if (atomic_load(&v->refs) == 1)
        return 0;
    entryset *nv = calloc(1, sizeof(*nv));
    chunk **chunks = v->cap ? malloc(v->cap * sizeof(*chunks)) : NULL;
    if (!nv || (v->cap && !chunks)) {
        free(nv);
        free(chunks);
        return -ENOMEM;
    }
    atomic_init(&nv->refs, 1);
    for (size_t i = 0; i < v->nchunks; i++) {
        chunks[i] = v->chunks[i];
        atomic_fetch_add(&chunks[i]->refs, 1);
    }
    nv->chunks = chunks;
    nv->nchunks = v->nchunks;
    nv->cap = v->cap;
    nv->count = v->count;
    nv->bytes = v->bytes;
    *vp = nv;
    entryset_release(v);
    return 0;
}

/* Chunk ci of a set of its own, copied first if another set shares
 * it; NULL on ENOMEM (nothing changed). */
static chunk *own_chunk(entryset *v, size_t ci)
{
    chunk *c = v->chunks[ci];
    if (atomic_load(&c->refs) == 1)
        return c;
    chunk *nc = chunk_new(c->cap);
    if (!nc)
        return NULL;
    nc->count = c->count;
    for (size_t i = 0; i < c->count; i++) {
        nc->items[i] = c->items[i];
        atomic_fetch_add(&nc->items[i]->refs, 1);
    }
    v->chunks[ci] = nc;
    chunk_release(c);
    return nc;
}

static void account(entryset *v, size_t add, size_t sub)
{
    v->bytes = v->bytes + add - sub;
}

/* Room for one more chunk pointer in a set of its own. */
static int reserve_chunk_slot(entryset *v)
{
    if (v->nchunks < v->cap)
        return 0;
    size_t ncap = v->cap ? v->cap * 2 : 4;
    chunk **grown = realloc(v->chunks, ncap * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    account(v, chunk_array_bytes(ncap), chunk_array_bytes(v->cap));
    v->chunks = grown;
    v->cap = ncap;
    return 0;
}

static void insert_chunk(entryset *v, size_t at, chunk *c)
{
    memmove(&v->chunks[at + 1], &v->chunks[at],
            (v->nchunks - at) * sizeof(*v->chunks));
    v->chunks[at] = c;
    v->nchunks++;
}

/* Inserts it (owned) at position pos of chunk ci of a set of its own,
 * growing or splitting a full chunk; -ENOMEM leaves v consistent and it
 * unused. */
static int insert_item(entryset *v, size_t ci, size_t pos, item *it)
{
    if (reserve_chunk_slot(v))
        return -ENOMEM;
    if (v->nchunks == 0) {
        chunk *c = chunk_new(4);
        if (!c)
            return -ENOMEM;
        insert_chunk(v, 0, c);
        account(v, chunk_bytes(4), 0);
    }
    chunk *c = own_chunk(v, ci);
    if (!c)
        return -ENOMEM;
    if (c->count == c->cap && c->cap < CHUNK_MAX) {
        size_t ncap = c->cap * 2 < 4 ? 4 : c->cap * 2;
        if (ncap > CHUNK_MAX)
            ncap = CHUNK_MAX;
        chunk *grown = realloc(c, sizeof(*c) + ncap * sizeof(item *));
        if (!grown)
            return -ENOMEM;
        account(v, chunk_bytes(ncap), chunk_bytes(grown->cap));
        grown->cap = ncap;
        v->chunks[ci] = c = grown;
    }
    if (c->count == CHUNK_MAX) {
        chunk *upper = chunk_new(CHUNK_MAX);
        if (!upper)
            return -ENOMEM;
        size_t half = CHUNK_MAX / 2;
        upper->count = CHUNK_MAX - half;
        memcpy(upper->items, &c->items[half],
               upper->count * sizeof(*upper->items));
        c->count = half;
        insert_chunk(v, ci + 1, upper);
        account(v, chunk_bytes(CHUNK_MAX), 0);
        if (pos > half) {
            c = upper;
            pos -= half;
        }
    }
    memmove(&c->items[pos + 1], &c->items[pos],
            (c->count - pos) * sizeof(*c->items));
    c->items[pos] = it;
    c->count++;
    v->count++;
    account(v, item_bytes(&it->e), 0);
    return 0;
}

int entryset_update(entryset **vp, const char *name, const fs_entry *entry)
{
    entryset *v = *vp;
    size_t ci = v->nchunks ? find_chunk(v, name) : 0;
    ptrdiff_t i = v->nchunks ? chunk_search(v->chunks[ci], name) : -1;
    if (!entry && i < 0)
        return 0;
    if (own_set(vp))
        return -ENOMEM;
    v = *vp;
    if (!entry) {
        chunk *c = own_chunk(v, ci);
        if (!c)
            return -ENOMEM;
        item *old = c->items[i];
        memmove(&c->items[i], &c->items[i + 1],
                (c->count - (size_t)i - 1) * sizeof(*c->items));
        c->count--;
        v->count--;
        account(v, 0, item_bytes(&old->e));
        item_release(old);
        if (c->count == 0) {
            memmove(&v->chunks[ci], &v->chunks[ci + 1],
                    (v->nchunks - ci - 1) * sizeof(*v->chunks));
            v->nchunks--;
            account(v, 0, chunk_bytes(c->cap));
            chunk_release(c);
        }
        return 0;
    }
    item *it = malloc(sizeof(*it));
    char *copy_name = strdup(name);
    if (!it || !copy_name || fs_entry_copy(&it->e, entry)) {
        free(it);
        free(copy_name);
        return -ENOMEM;
    }
    free(it->e.name);
    it->e.name = copy_name;
    atomic_init(&it->refs, 1);
    int rc = 0;
    if (i >= 0) {
        chunk *c = own_chunk(v, ci);
        if (c) {
            item *old = c->items[i];
            c->items[i] = it;
            account(v, item_bytes(&it->e), item_bytes(&old->e));
            item_release(old);
            return 0;
        }
        rc = -ENOMEM;
    } else {
        size_t pos = (size_t)(-i - 1);
        /* a name before every chunk's first goes at the front of chunk 0;
         * one past the end of chunk ci stays in ci (its last is smaller) */
        rc = insert_item(v, ci, pos, it);
        if (rc == 0)
            return 0;
    }
    item_release(it);
    return rc;
}

entryset *entryset_retain(entryset *v)
{
    atomic_fetch_add(&v->refs, 1);
    return v;
}

size_t entryset_count(const entryset *v)
{
    return v->count;
}

size_t entryset_bytes(const entryset *v)
{
    return v->bytes;
}

int entryset_foreach(const entryset *v, int (*fn)(void *ctx, const fs_entry *e),
                     void *ctx)
{
    return entryset_foreach_after(v, NULL, fn, ctx);
}

int entryset_foreach_after(const entryset *v, const char *after,
                           int (*fn)(void *ctx, const fs_entry *e),
                           void *ctx)
{
    size_t first_chunk = 0, first = 0;
    if (after && v->nchunks) {
        first_chunk = find_chunk(v, after);
        ptrdiff_t at = chunk_search(v->chunks[first_chunk], after);
        first = at >= 0 ? (size_t)at + 1 : (size_t)(-at - 1);
    }
    int rc = 0;
    for (size_t c = first_chunk; rc == 0 && c < v->nchunks; c++, first = 0)
        for (size_t i = first; rc == 0 && i < v->chunks[c]->count; i++)
            rc = fn(ctx, &v->chunks[c]->items[i]->e);
    return rc;
}

int entryset_foreach_from(const entryset *v, size_t index, entryset_pos *pos,
                          size_t *steps,
                          int (*fn)(void *ctx, const fs_entry *e,
                                    size_t index),
                          void *ctx)
{
    size_t c = 0, base = 0;
    if (pos && pos->chunk < v->nchunks && pos->base <= index) {
        c = pos->chunk;
        base = pos->base;
    }
    while (c < v->nchunks && base + v->chunks[c]->count <= index) {
        base += v->chunks[c]->count;
        c++;
        if (steps)
            ++*steps;
    }
    if (pos) {
        pos->chunk = c;
        pos->base = base;
    }
    int rc = 0;
    for (size_t first = index - base; rc == 0 && c < v->nchunks; c++) {
        for (size_t i = first; rc == 0 && i < v->chunks[c]->count; i++)
            rc = fn(ctx, &v->chunks[c]->items[i]->e, base + i);
        base += v->chunks[c]->count;
        first = 0;
    }
    return rc;
}

size_t entryset_address_bytes(const entryset *v)
{
    size_t bytes = 0;
    for (size_t c = 0; c < v->nchunks; c++)
        for (size_t i = 0; i < v->chunks[c]->count; i++)
            bytes += string_bytes(v->chunks[c]->items[i]->e.physical_address);
    return bytes;
}

void entryset_drop_addresses(entryset *v)
{
    for (size_t c = 0; c < v->nchunks; c++) {
        for (size_t i = 0; i < v->chunks[c]->count; i++) {
            fs_entry *e = &v->chunks[c]->items[i]->e;
            v->bytes -= string_bytes(e->physical_address);
            free(e->physical_address);
            e->physical_address = NULL;
            e->physical_address_expiry = 0;
        }
    }
}

int entryset_verify(const entryset *v)
{
    size_t bytes = sizeof(*v) + ALLOC_OVERHEAD + chunk_array_bytes(v->cap);
    size_t count = 0;
    const char *prev = NULL;
    int rc = v->nchunks > v->cap ? -EINVAL : 0;
    for (size_t c = 0; c < v->nchunks; c++) {
        const chunk *ch = v->chunks[c];
        if (ch->count == 0 || ch->count > ch->cap || ch->cap > CHUNK_MAX)
            rc = -EINVAL;
        bytes += chunk_bytes(ch->cap);
        for (size_t i = 0; i < ch->count; i++, count++) {
            const char *name = ch->items[i]->e.name;
            if (prev && strcmp(prev, name) >= 0)
                rc = -EINVAL;
            prev = name;
            bytes += item_bytes(&ch->items[i]->e);
        }
    }
    if (count != v->count || bytes != v->bytes)
        rc = -EINVAL;
    return rc;
}
