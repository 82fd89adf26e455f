/*
 * metacache.c - bounded LRU cache of directory listings: a chained hash
 * table keyed by (ref, dir), an LRU list and one mutex; no global state.
 *
 * A listing's entries live in a version: a sorted array of chunks of at
 * most CHUNK_MAX items each, so that an insert, replace or remove costs a
 * binary search plus a move of at most CHUNK_MAX pointers (and, on a split,
 * of the chunk array: n / CHUNK_MAX pointers), and its byte estimate is
 * kept up to date by each update rather than re-summed. Versions, chunks
 * and items are reference counted and immutable once shared: foreach takes
 * a reference to the version under the lock and walks it outside it; an
 * update that finds the version (or a chunk) shared copies that array of
 * pointers first (copy-on-write), never the entries.
 *
 * Generations: every write (update_entry, invalidate_dir) stamps the
 * directory and each of its ancestors (a write can make an implicit parent
 * directory appear or vanish) with a new value of one clock;
 * invalidate_ref stamps the ref. A put that was fetched at generation g is
 * dropped when its directory's or its ref's stamp is newer than g, so a
 * write elsewhere in the branch does not throw away a fetch in flight.
 *
 * It must never exceed its byte budget, never hand out pointers into its
 * storage past the lock (lookups copy or call back under the lock) and
 * never cache a listing older than a write.
 */
#include "metacache.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* What malloc spends per allocation beyond the bytes asked for, so that the
 * estimate tracks real heap use for many small strings. */
#define ALLOC_OVERHEAD 16
#define INITIAL_BUCKETS 64
/* Items per chunk: a full chunk splits in two halves; put fills them 3/4. */
#define CHUNK_MAX 256
#define CHUNK_FILL (CHUNK_MAX * 3 / 4)
/* Bounds on the per-directory generation records (see dir_gen_limit). */
#define MIN_DIR_GENERATIONS 16
#define MAX_DIR_GENERATIONS 4096
#define DIR_GENERATION_ESTIMATE 128 /* bytes one record takes, roughly */
#define DIR_GENERATION_BUCKETS 128

/* One entry; immutable once in a chunk, shared by copied chunks. */
typedef struct item {
    atomic_uint refs;
    fs_entry e;
} item;

typedef struct chunk {
    atomic_uint refs;
    size_t count; /* never 0 while in a version */
    size_t cap;   /* at most CHUNK_MAX; small directories stay small */
    item *items[];
} chunk;

/* The entries of a listing in name order: chunks[i] all sort before
 * chunks[i + 1]. Shared read-only with readers once refs > 1. */
typedef struct version {
    atomic_uint refs;
    chunk **chunks;
    size_t nchunks, cap;
    size_t count; /* entries */
} version;

typedef struct listing {
    char *ref_key;
    char *dir;
    uint64_t hash;
    version *v;
    int64_t expires_at_ms; /* 0: never */
    size_t bytes;          /* estimate of everything this listing holds */
    struct listing *hash_next;
    struct listing *lru_prev; /* towards the most recently used */
    struct listing *lru_next; /* towards the least recently used */
} listing;

/* The generation of a ref that was invalidated at least once. Refs are few
 * (the branches and commits a mount touches), so a list is enough. */
typedef struct ref_generation {
    char *ref_key;
    uint64_t generation;
    struct ref_generation *next;
} ref_generation;

/* The generation of a directory written to (or under) since its ref's
 * last invalidation. Bounded: past the limit they are all forgotten and
 * the floor moves up instead. */
typedef struct dir_generation {
    char *ref_key;
    char *dir;
    uint64_t hash;
    uint64_t generation;
    struct dir_generation *next;
} dir_generation;

struct metacache {
    pthread_mutex_t lock;
    size_t max_bytes;
    size_t bytes;
    listing **buckets;
    size_t bucket_count;
    size_t listing_count;
    listing *lru_head; /* most recently used */
    listing *lru_tail; /* least recently used: evicted first */
    ref_generation *generations;
    dir_generation **dir_generations; /* dir_generation_buckets chains */
    size_t dir_generation_buckets;
    size_t dir_generation_count;
    size_t dir_generation_limit;
    uint64_t clock;            /* last generation handed out */
    uint64_t floor_generation; /* every directory's is at least this */
    metacache_stats stats;
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

/* The estimate of a listing computed from scratch (metacache_verify). */
static size_t listing_bytes_slow(const listing *l)
{
    size_t bytes = sizeof(*l) + ALLOC_OVERHEAD + string_bytes(l->ref_key) +
                   string_bytes(l->dir) + sizeof(version) + ALLOC_OVERHEAD +
                   chunk_array_bytes(l->v->cap);
    for (size_t c = 0; c < l->v->nchunks; c++)
        bytes += chunk_bytes(l->v->chunks[c]->cap);
    for (size_t c = 0; c < l->v->nchunks; c++)
        for (size_t i = 0; i < l->v->chunks[c]->count; i++)
            bytes += item_bytes(&l->v->chunks[c]->items[i]->e);
    return bytes;
}

static uint64_t hash_key_n(const char *ref_key, const char *dir, size_t len)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)ref_key; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    h = (h ^ 0xffu) * 1099511628211ull; /* separator no key byte can be */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)dir[i]) * 1099511628211ull;
    return h;
}

static uint64_t hash_key(const char *ref_key, const char *dir)
{
    return hash_key_n(ref_key, dir, strlen(dir));
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

static void version_release(version *v)
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

/* A version owning entries[0..n) (sorted), which are moved out of the
 * array; the array is freed in every case. *bytes: the items' and chunks'
 * estimate. NULL on ENOMEM. */
static version *version_build(fs_entry *entries, size_t n, size_t *bytes)
{
    version *v = calloc(1, sizeof(*v));
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
    *bytes = v ? chunk_array_bytes(nchunks) : 0;
    for (; v && i < n; i++) {
        if (i % CHUNK_FILL == 0) {
            /* full chunks get room to grow; a small listing's one chunk
             * is sized to fit */
            size_t cap = n - i < CHUNK_FILL ? n - i : CHUNK_MAX;
            chunk *c = chunk_new(cap);
            if (!c)
                break;
            v->chunks[v->nchunks++] = c;
            *bytes += chunk_bytes(cap);
        }
        item *it = malloc(sizeof(*it));
        if (!it)
            break;
        atomic_init(&it->refs, 1);
        it->e = entries[i];
        *bytes += item_bytes(&it->e);
        chunk *c = v->chunks[v->nchunks - 1];
        c->items[c->count++] = it;
        v->count++;
    }
    if (v && i < n) { /* ENOMEM: chunks already built are trimmed */
        if (v->nchunks && v->chunks[v->nchunks - 1]->count == 0)
            free(v->chunks[--v->nchunks]);
        version_release(v);
        v = NULL;
    }
    for (; i < n; i++)
        fs_entry_free(&entries[i]);
    free(entries);
    return v;
}

/* The chunk that holds name or where it would go: the last whose first
 * name sorts at or before name, else the first. */
static size_t find_chunk(const version *v, const char *name)
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

static const fs_entry *version_find(const version *v, const char *name)
{
    if (!v->nchunks)
        return NULL;
    const chunk *c = v->chunks[find_chunk(v, name)];
    ptrdiff_t i = chunk_search(c, name);
    return i < 0 ? NULL : &c->items[i]->e;
}

static void listing_destroy(listing *l)
{
    if (l->v)
        version_release(l->v);
    free(l->ref_key);
    free(l->dir);
    free(l);
}

/* ---- LRU list and hash table, all called with the lock held ---- */

static void lru_unlink(metacache *mc, listing *l)
{
    if (l->lru_prev)
        l->lru_prev->lru_next = l->lru_next;
    else
        mc->lru_head = l->lru_next;
    if (l->lru_next)
        l->lru_next->lru_prev = l->lru_prev;
    else
        mc->lru_tail = l->lru_prev;
    l->lru_prev = l->lru_next = NULL;
}

static void lru_push_front(metacache *mc, listing *l)
{
    l->lru_prev = NULL;
    l->lru_next = mc->lru_head;
    if (mc->lru_head)
        mc->lru_head->lru_prev = l;
    mc->lru_head = l;
    if (!mc->lru_tail)
        mc->lru_tail = l;
}

static listing **find_slot(metacache *mc, const char *ref_key, const char *dir,
                           uint64_t hash)
{
    listing **slot = &mc->buckets[hash % mc->bucket_count];
    for (; *slot; slot = &(*slot)->hash_next) {
        listing *l = *slot;
        if (l->hash == hash && strcmp(l->ref_key, ref_key) == 0 &&
            strcmp(l->dir, dir) == 0)
            return slot;
    }
    return slot;
}

static listing *find_listing(metacache *mc, const char *ref_key,
                             const char *dir)
{
    return *find_slot(mc, ref_key, dir, hash_key(ref_key, dir));
}

/* Unlinks l from the table and the LRU list and frees it (a reader still
 * walking its version keeps that alive). */
static void remove_listing(metacache *mc, listing *l)
{
    listing **slot = find_slot(mc, l->ref_key, l->dir, l->hash);
    *slot = l->hash_next;
    lru_unlink(mc, l);
    mc->bytes -= l->bytes;
    mc->listing_count--;
    listing_destroy(l);
}

/* Doubles the bucket array when the table gets crowded; on ENOMEM the table
 * keeps working with longer chains. */
static void maybe_grow(metacache *mc)
{
    if (mc->listing_count < mc->bucket_count)
        return;
    size_t new_count = mc->bucket_count * 2;
    listing **buckets = calloc(new_count, sizeof(*buckets));
    if (!buckets)
        return;
    for (size_t i = 0; i < mc->bucket_count; i++) {
        listing *l = mc->buckets[i];
        while (l) {
            listing *next = l->hash_next;
            l->hash_next = buckets[l->hash % new_count];
            buckets[l->hash % new_count] = l;
            l = next;
        }
    }
    free(mc->buckets);
    mc->bytes += (new_count - mc->bucket_count) * sizeof(*buckets);
    mc->buckets = buckets;
    mc->bucket_count = new_count;
}

/* Evicts least-recently-used listings, sparing `keep`, until under budget. */
static void evict(metacache *mc, const listing *keep)
{
    while (mc->bytes > mc->max_bytes && mc->lru_tail) {
        listing *victim = mc->lru_tail;
        if (victim == keep) {
            if (!victim->lru_prev)
                return;
            victim = victim->lru_prev;
        }
        remove_listing(mc, victim);
        mc->stats.evictions++;
    }
}

static bool listing_valid(const listing *l, int64_t now_ms)
{
    return l->expires_at_ms == 0 || now_ms < l->expires_at_ms;
}

/* The valid listing of (ref_key, dir), marked recently used, or NULL (an
 * expired one is freed on the way). */
static listing *valid_listing(metacache *mc, const char *ref_key,
                              const char *dir, int64_t now_ms)
{
    listing *l = find_listing(mc, ref_key, dir);
    if (!l)
        return NULL;
    if (!listing_valid(l, now_ms)) {
        remove_listing(mc, l);
        return NULL;
    }
    lru_unlink(mc, l);
    lru_push_front(mc, l);
    return l;
}

/* ---- updates in place (lock held) ---- */

/* Makes l's version its own: a reader holding it keeps the old array,
 * the listing gets a copy of the chunk pointers. */
static int own_version(listing *l)
{
    version *v = l->v;
    if (atomic_load(&v->refs) == 1)
        return 0;
    version *nv = calloc(1, sizeof(*nv));
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
    l->v = nv;
    version_release(v);
    return 0;
}

/* Chunk ci of an owned version, copied first if another version shares
 * it; NULL on ENOMEM (nothing changed). */
static chunk *own_chunk(version *v, size_t ci)
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

static void account(metacache *mc, listing *l, size_t add, size_t sub)
{
    l->bytes = l->bytes + add - sub;
    mc->bytes = mc->bytes + add - sub;
}

/* Room for one more chunk pointer in l's (owned) version. */
static int reserve_chunk_slot(metacache *mc, listing *l)
{
    version *v = l->v;
    if (v->nchunks < v->cap)
        return 0;
    size_t ncap = v->cap ? v->cap * 2 : 4;
    chunk **grown = realloc(v->chunks, ncap * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    account(mc, l, chunk_array_bytes(ncap), chunk_array_bytes(v->cap));
    v->chunks = grown;
    v->cap = ncap;
    return 0;
}

static void insert_chunk(version *v, size_t at, chunk *c)
{
    memmove(&v->chunks[at + 1], &v->chunks[at],
            (v->nchunks - at) * sizeof(*v->chunks));
    v->chunks[at] = c;
    v->nchunks++;
}

/* Inserts it (owned) at position pos of chunk ci, splitting a full chunk;
 * -ENOMEM leaves the listing consistent and it unused. */
static int insert_item(metacache *mc, listing *l, size_t ci, size_t pos,
                       item *it)
{
    version *v = l->v;
    if (reserve_chunk_slot(mc, l))
        return -ENOMEM;
    if (v->nchunks == 0) {
        chunk *c = chunk_new(4);
        if (!c)
            return -ENOMEM;
        insert_chunk(v, 0, c);
        account(mc, l, chunk_bytes(4), 0);
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
        account(mc, l, chunk_bytes(ncap), chunk_bytes(grown->cap));
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
        account(mc, l, chunk_bytes(CHUNK_MAX), 0);
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
    account(mc, l, item_bytes(&it->e), 0);
    return 0;
}

/* Applies one insert/replace/remove to l; -ENOMEM may leave l changed
 * only in ways that keep it consistent (the caller then drops it). */
static int apply_update(metacache *mc, listing *l, const char *name,
                        const fs_entry *entry)
{
    version *v = l->v;
    size_t ci = v->nchunks ? find_chunk(v, name) : 0;
    ptrdiff_t i = v->nchunks ? chunk_search(v->chunks[ci], name) : -1;
    if (!entry && i < 0)
        return 0;
    if (own_version(l))
        return -ENOMEM;
    v = l->v;
    if (!entry) {
        chunk *c = own_chunk(v, ci);
        if (!c)
            return -ENOMEM;
        item *old = c->items[i];
        memmove(&c->items[i], &c->items[i + 1],
                (c->count - (size_t)i - 1) * sizeof(*c->items));
        c->count--;
        v->count--;
        account(mc, l, 0, item_bytes(&old->e));
        item_release(old);
        if (c->count == 0) {
            memmove(&v->chunks[ci], &v->chunks[ci + 1],
                    (v->nchunks - ci - 1) * sizeof(*v->chunks));
            v->nchunks--;
            account(mc, l, 0, chunk_bytes(c->cap));
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
            account(mc, l, item_bytes(&it->e), item_bytes(&old->e));
            item_release(old);
            return 0;
        }
        rc = -ENOMEM;
    } else {
        size_t pos = (size_t)(-i - 1);
        /* a name before every chunk's first goes at the front of chunk 0;
         * one past the end of chunk ci stays in ci (its last is smaller) */
        rc = insert_item(mc, l, ci, pos, it);
        if (rc == 0)
            return 0;
    }
    item_release(it);
    return rc;
}

/* ---- generations (lock held) ---- */

static ref_generation *find_generation(metacache *mc, const char *ref_key)
{
    for (ref_generation *g = mc->generations; g; g = g->next)
        if (strcmp(g->ref_key, ref_key) == 0)
            return g;
    return NULL;
}

static dir_generation **find_dir_generation(metacache *mc,
                                            const char *ref_key,
                                            const char *dir, size_t len,
                                            uint64_t hash)
{
    dir_generation **slot = 
        &mc->dir_generations[hash % mc->dir_generation_buckets];
    for (; *slot; slot = &(*slot)->next) {
        dir_generation *g = *slot;
        if (g->hash == hash && strncmp(g->dir, dir, len) == 0 &&
            g->dir[len] == '\0' && strcmp(g->ref_key, ref_key) == 0)
            return slot;
    }
    return slot;
}

static size_t dir_generation_bytes(const dir_generation *g)
{
    return sizeof(*g) + ALLOC_OVERHEAD + string_bytes(g->ref_key) +
           string_bytes(g->dir);
}

static void free_dir_generation(metacache *mc, dir_generation **slot)
{
    dir_generation *g = *slot;
    *slot = g->next;
    mc->bytes -= dir_generation_bytes(g);
    mc->dir_generation_count--;
    free(g->ref_key);
    free(g->dir);
    free(g);
}

/* Forgets the directory records of ref_key (NULL: of every ref). */
static void forget_dir_generations(metacache *mc, const char *ref_key)
{
    for (size_t b = 0; b < mc->dir_generation_buckets; b++) {
        dir_generation **slot = &mc->dir_generations[b];
        while (*slot) {
            if (!ref_key || strcmp((*slot)->ref_key, ref_key) == 0)
                free_dir_generation(mc, slot);
            else
                slot = &(*slot)->next;
        }
    }
}

/* The generation of the put (ref_key, dir) is compared with: the newest
 * stamp of the ref, the directory or the floor. */
static uint64_t current_generation(metacache *mc, const char *ref_key,
                                   const char *dir)
{
    uint64_t generation = mc->floor_generation;
    ref_generation *g = find_generation(mc, ref_key);
    if (g && g->generation > generation)
        generation = g->generation;
    size_t len = strlen(dir);
    dir_generation *d =
        *find_dir_generation(mc, ref_key, dir, len,
                             hash_key_n(ref_key, dir, len));
    if (d && d->generation > generation)
        generation = d->generation;
    return generation;
}

/* Moves the ref's generation past every one handed out so far. Without
 * memory for the ref's record, every directory moves on (the floor), which
 * only costs some dropped puts. */
static void bump_ref(metacache *mc, const char *ref_key)
{
    uint64_t now = ++mc->clock;
    forget_dir_generations(mc, ref_key); /* the ref's stamp covers them */
    ref_generation *g = find_generation(mc, ref_key);
    if (!g) {
        g = calloc(1, sizeof(*g));
        char *key = g ? strdup(ref_key) : NULL;
        if (!key) {
            free(g);
            mc->floor_generation = now;
            return;
        }
        g->ref_key = key;
        g->next = mc->generations;
        mc->generations = g;
        mc->bytes += sizeof(*g) + ALLOC_OVERHEAD + string_bytes(key);
    }
    g->generation = now;
}

/* Stamps dir[0..len) of ref_key; false when it had to move the floor
 * instead (no memory, or too many records: all are forgotten). */
static bool stamp_dir(metacache *mc, const char *ref_key, const char *dir,
                      size_t len, uint64_t now)
{
    uint64_t hash = hash_key_n(ref_key, dir, len);
    dir_generation **slot = find_dir_generation(mc, ref_key, dir, len, hash);
    if (*slot) {
        (*slot)->generation = now;
        return true;
    }
    dir_generation *g = NULL;
    if (mc->dir_generation_count < mc->dir_generation_limit)
        g = calloc(1, sizeof(*g));
    if (g) {
        g->ref_key = strdup(ref_key);
        g->dir = strndup(dir, len);
    }
    if (!g || !g->ref_key || !g->dir) {
        if (g) {
            free(g->ref_key);
            free(g->dir);
            free(g);
        }
        forget_dir_generations(mc, NULL);
        mc->floor_generation = now;
        return false;
    }
    g->hash = hash;
    g->generation = now;
    *slot = g;
    mc->dir_generation_count++;
    mc->bytes += dir_generation_bytes(g);
    return true;
}

/* A write in dir: stamps it and every ancestor up to the ref root, since
 * the write may have made an implicit directory appear or disappear in
 * each of them. */
static void bump_dir(metacache *mc, const char *ref_key, const char *dir)
{
    uint64_t now = ++mc->clock;
    size_t len = strlen(dir);
    for (;;) {
        if (!stamp_dir(mc, ref_key, dir, len, now) || len == 0)
            return;
        while (len > 0 && dir[len - 1] != '/')
            len--;
        if (len > 0)
            len--; /* drop the slash: "a/b" -> "a" */
    }
}

/* ---- public API ---- */

metacache *metacache_new(size_t max_bytes)
{
    metacache *mc = calloc(1, sizeof(*mc));
    if (!mc)
        return NULL;
    /* directory records take at most about 1/64 of the budget */
    size_t limit = max_bytes / 64 / DIR_GENERATION_ESTIMATE;
    mc->dir_generation_limit = limit < MIN_DIR_GENERATIONS ? MIN_DIR_GENERATIONS
                               : limit > MAX_DIR_GENERATIONS
                                   ? MAX_DIR_GENERATIONS
                                   : limit;
    mc->dir_generation_buckets = DIR_GENERATION_BUCKETS;
    mc->buckets = calloc(INITIAL_BUCKETS, sizeof(*mc->buckets));
    mc->dir_generations =
        calloc(mc->dir_generation_buckets, sizeof(*mc->dir_generations));
    if (!mc->buckets || !mc->dir_generations ||
        pthread_mutex_init(&mc->lock, NULL) != 0) {
        free(mc->buckets);
        free(mc->dir_generations);
        free(mc);
        return NULL;
    }
    mc->bucket_count = INITIAL_BUCKETS;
    mc->max_bytes = max_bytes;
    mc->bytes = sizeof(*mc) + INITIAL_BUCKETS * sizeof(*mc->buckets) +
                mc->dir_generation_buckets * sizeof(*mc->dir_generations);
    return mc;
}

void metacache_free(metacache *mc)
{
    if (!mc)
        return;
    while (mc->lru_head)
        remove_listing(mc, mc->lru_head);
    ref_generation *g = mc->generations;
    while (g) {
        ref_generation *next = g->next;
        free(g->ref_key);
        free(g);
        g = next;
    }
    forget_dir_generations(mc, NULL);
    free(mc->dir_generations);
    free(mc->buckets);
    pthread_mutex_destroy(&mc->lock);
    free(mc);
}

uint64_t metacache_generation(metacache *mc, const char *ref_key)
{
    (void)ref_key; /* one clock; what a put is compared with is per dir */
    pthread_mutex_lock(&mc->lock);
    uint64_t generation = mc->clock;
    pthread_mutex_unlock(&mc->lock);
    return generation;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(((const fs_entry *)a)->name, ((const fs_entry *)b)->name);
}

static void sort_if_needed(fs_entry *entries, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        if (strcmp(entries[i - 1].name, entries[i].name) > 0) {
            qsort(entries, n, sizeof(*entries), compare_names);
            return;
        }
    }
}

int metacache_put(metacache *mc, const char *ref_key, const char *dir,
                  fs_entry *entries, size_t n, int64_t expires_at_ms,
                  uint64_t generation)
{
    listing *l = calloc(1, sizeof(*l));
    if (l) {
        l->ref_key = strdup(ref_key);
        l->dir = strdup(dir);
    }
    if (!l || !l->ref_key || !l->dir) {
        if (l)
            listing_destroy(l);
        fs_entries_free(entries, n);
        return -ENOMEM;
    }
    sort_if_needed(entries, n);
    size_t entry_bytes;
    l->v = version_build(entries, n, &entry_bytes);
    if (!l->v) {
        listing_destroy(l);
        return -ENOMEM;
    }
    l->expires_at_ms = expires_at_ms;
    l->hash = hash_key(ref_key, dir);
    l->bytes = sizeof(*l) + ALLOC_OVERHEAD + string_bytes(l->ref_key) +
               string_bytes(l->dir) + sizeof(version) + ALLOC_OVERHEAD +
               entry_bytes;

    pthread_mutex_lock(&mc->lock);
    int rc = 0;
    if (generation < current_generation(mc, ref_key, dir)) {
        rc = 1; /* fetched before a write or invalidation: stale */
    } else if (l->bytes > mc->max_bytes) {
        rc = -EFBIG;
    } else {
        listing *old = find_listing(mc, ref_key, dir);
        if (old)
            remove_listing(mc, old);
        listing **slot = &mc->buckets[l->hash % mc->bucket_count];
        l->hash_next = *slot;
        *slot = l;
        lru_push_front(mc, l);
        mc->listing_count++;
        mc->bytes += l->bytes;
        maybe_grow(mc);
        evict(mc, l);
        l = NULL;
    }
    pthread_mutex_unlock(&mc->lock);
    if (l)
        listing_destroy(l);
    return rc > 0 ? 0 : rc;
}

int metacache_lookup_with(metacache *mc, const char *ref_key, const char *dir,
                          const char *name, int64_t now_ms,
                          int (*fn)(void *ctx, const fs_entry *e), void *ctx)
{
    pthread_mutex_lock(&mc->lock);
    int rc;
    listing *l = valid_listing(mc, ref_key, dir, now_ms);
    if (!l) {
        mc->stats.misses++;
        rc = -ENODATA;
    } else {
        const fs_entry *e = version_find(l->v, name);
        if (!e) {
            mc->stats.negative_hits++;
            rc = 0;
        } else {
            mc->stats.hits++;
            rc = fn ? fn(ctx, e) : 0;
            if (rc >= 0)
                rc = 1;
        }
    }
    pthread_mutex_unlock(&mc->lock);
    return rc;
}

static int copy_entry(void *ctx, const fs_entry *e)
{
    return fs_entry_copy(ctx, e) ? -ENOMEM : 0;
}

int metacache_lookup(metacache *mc, const char *ref_key, const char *dir,
                     const char *name, int64_t now_ms, fs_entry *out)
{
    return metacache_lookup_with(mc, ref_key, dir, name, now_ms,
                                 out ? copy_entry : NULL, out);
}

int metacache_foreach(metacache *mc, const char *ref_key, const char *dir,
                      int64_t now_ms, int (*fn)(void *ctx, const fs_entry *e),
                      void *ctx)
{
    pthread_mutex_lock(&mc->lock);
    listing *l = valid_listing(mc, ref_key, dir, now_ms);
    version *v = NULL;
    if (!l) {
        mc->stats.misses++;
    } else {
        mc->stats.hits++;
        v = l->v;
        atomic_fetch_add(&v->refs, 1); /* a snapshot: updates copy */
    }
    pthread_mutex_unlock(&mc->lock);
    if (!v)
        return -ENODATA;
    int rc = 0;
    for (size_t c = 0; rc == 0 && c < v->nchunks; c++)
        for (size_t i = 0; rc == 0 && i < v->chunks[c]->count; i++)
            rc = fn(ctx, &v->chunks[c]->items[i]->e);
    version_release(v);
    return rc;
}

int metacache_update_entry(metacache *mc, const char *ref_key, const char *dir,
                           const char *name, const fs_entry *entry)
{
    pthread_mutex_lock(&mc->lock);
    bump_dir(mc, ref_key, dir);
    int rc = 0;
    listing *l = find_listing(mc, ref_key, dir);
    if (l) {
        rc = apply_update(mc, l, name, entry);
        if (rc)
            remove_listing(mc, l);
        else
            evict(mc, NULL);
    }
    pthread_mutex_unlock(&mc->lock);
    return rc;
}

void metacache_invalidate_dir(metacache *mc, const char *ref_key,
                              const char *dir)
{
    pthread_mutex_lock(&mc->lock);
    bump_dir(mc, ref_key, dir);
    listing *l = find_listing(mc, ref_key, dir);
    if (l)
        remove_listing(mc, l);
    pthread_mutex_unlock(&mc->lock);
}

/* "dir/name" (or "name" in the root dir ""), appended to paths. */
static int collect_path(char ***paths, size_t *n, size_t *cap,
                        const char *dir, const char *name)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 32;
        char **grown = realloc(*paths, ncap * sizeof(**paths));
        if (!grown)
            return -ENOMEM;
        *paths = grown;
        *cap = ncap;
    }
    size_t dl = strlen(dir), nl = strlen(name);
    char *p = malloc(dl + nl + 2);
    if (!p)
        return -ENOMEM;
    memcpy(p, dir, dl);
    p[dl] = '/';
    memcpy(p + (dl ? dl + 1 : 0), name, nl + 1);
    (*paths)[(*n)++] = p;
    return 0;
}

void metacache_invalidate_ref_paths(metacache *mc, const char *ref_key,
                                    char ***paths, size_t *count)
{
    size_t cap = 0;
    int rc = 0;
    if (paths) {
        *paths = NULL;
        *count = 0;
    }
    pthread_mutex_lock(&mc->lock);
    bump_ref(mc, ref_key);
    listing *l = mc->lru_head;
    while (l) {
        listing *next = l->lru_next;
        if (strcmp(l->ref_key, ref_key) == 0) {
            const version *v = l->v;
            for (size_t c = 0; paths && rc == 0 && c < v->nchunks; c++)
                for (size_t i = 0; rc == 0 && i < v->chunks[c]->count; i++)
                    rc = collect_path(paths, count, &cap, l->dir,
                                      v->chunks[c]->items[i]->e.name);
            remove_listing(mc, l);
        }
        l = next;
    }
    pthread_mutex_unlock(&mc->lock);
}

void metacache_invalidate_ref(metacache *mc, const char *ref_key)
{
    metacache_invalidate_ref_paths(mc, ref_key, NULL, NULL);
}

void metacache_get_stats(metacache *mc, metacache_stats *out)
{
    pthread_mutex_lock(&mc->lock);
    *out = mc->stats;
    out->bytes = mc->bytes;
    out->listings = mc->listing_count;
    pthread_mutex_unlock(&mc->lock);
}

int metacache_verify(metacache *mc)
{
    pthread_mutex_lock(&mc->lock);
    int rc = 0;
    size_t total = sizeof(*mc) + mc->bucket_count * sizeof(*mc->buckets) +
                   mc->dir_generation_buckets * sizeof(*mc->dir_generations);
    for (ref_generation *g = mc->generations; g; g = g->next)
        total += sizeof(*g) + ALLOC_OVERHEAD + string_bytes(g->ref_key);
    size_t records = 0;
    for (size_t b = 0; b < mc->dir_generation_buckets; b++)
        for (dir_generation *d = mc->dir_generations[b]; d; d = d->next) {
            total += dir_generation_bytes(d);
            records++;
        }
    if (records != mc->dir_generation_count)
        rc = -EINVAL;
    size_t listings = 0;
    for (listing *l = mc->lru_head; l; l = l->lru_next, listings++) {
        const version *v = l->v;
        size_t count = 0;
        const char *prev = NULL;
        for (size_t c = 0; c < v->nchunks; c++) {
            if (v->chunks[c]->count == 0 || v->chunks[c]->count > v->chunks[c]->cap ||
                v->chunks[c]->cap > CHUNK_MAX)
                rc = -EINVAL;
            for (size_t i = 0; i < v->chunks[c]->count; i++, count++) {
                const char *name = v->chunks[c]->items[i]->e.name;
                if (prev && strcmp(prev, name) >= 0)
                    rc = -EINVAL;
                prev = name;
            }
        }
        if (count != v->count || v->nchunks > v->cap ||
            listing_bytes_slow(l) != l->bytes)
            rc = -EINVAL;
        total += l->bytes;
    }
    if (listings != mc->listing_count || total != mc->bytes)
        rc = -EINVAL;
    pthread_mutex_unlock(&mc->lock);
    return rc;
}
