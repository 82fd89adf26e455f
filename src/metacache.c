/*
 * metacache.c - bounded LRU cache of directory listings: a chained hash
 * table keyed by (ref, dir), an LRU list and one mutex; no global state.
 * It must never exceed its byte budget, never hand out pointers into its
 * storage (lookups copy) and never cache a listing older than a write.
 */
#include "metacache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* What malloc spends per allocation beyond the bytes asked for, so that the
 * estimate tracks real heap use for many small strings. */
#define ALLOC_OVERHEAD 16
#define INITIAL_BUCKETS 64

typedef struct listing {
    char *ref_key;
    char *dir;
    uint64_t hash;
    fs_entry *entries; /* sorted by name */
    size_t count;
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
    uint64_t clock;            /* last generation handed out */
    uint64_t floor_generation; /* every ref's generation is at least this */
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

static size_t listing_bytes(const listing *l)
{
    size_t bytes = sizeof(*l) + ALLOC_OVERHEAD + string_bytes(l->ref_key) +
                   string_bytes(l->dir) + ALLOC_OVERHEAD +
                   l->count * sizeof(fs_entry);
    for (size_t i = 0; i < l->count; i++)
        bytes += entry_heap_bytes(&l->entries[i]);
    return bytes;
}

static uint64_t hash_key(const char *ref_key, const char *dir)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)ref_key; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    h = (h ^ 0xffu) * 1099511628211ull; /* separator no key byte can be */
    for (const unsigned char *p = (const unsigned char *)dir; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h;
}

static void listing_destroy(listing *l)
{
    fs_entries_free(l->entries, l->count);
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

/* Unlinks l from the table and the LRU list and frees it. */
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

/* Index of name in l, or -(insertion point) - 1. */
static ptrdiff_t search(const listing *l, const char *name)
{
    size_t lo = 0, hi = l->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(l->entries[mid].name, name);
        if (c == 0)
            return (ptrdiff_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(ptrdiff_t)lo - 1;
}

static ref_generation *find_generation(metacache *mc, const char *ref_key)
{
    for (ref_generation *g = mc->generations; g; g = g->next)
        if (strcmp(g->ref_key, ref_key) == 0)
            return g;
    return NULL;
}

static uint64_t current_generation(metacache *mc, const char *ref_key)
{
    ref_generation *g = find_generation(mc, ref_key);
    uint64_t generation = g ? g->generation : 0;
    return generation > mc->floor_generation ? generation
                                             : mc->floor_generation;
}

/* Moves the ref's generation past every one handed out so far. Without
 * memory for the ref's record, every ref moves on (the floor), which only
 * costs some dropped puts. */
static void bump_generation(metacache *mc, const char *ref_key)
{
    mc->clock++;
    ref_generation *g = find_generation(mc, ref_key);
    if (!g) {
        g = calloc(1, sizeof(*g));
        char *key = g ? strdup(ref_key) : NULL;
        if (!key) {
            free(g);
            mc->floor_generation = mc->clock;
            return;
        }
        g->ref_key = key;
        g->next = mc->generations;
        mc->generations = g;
        mc->bytes += sizeof(*g) + ALLOC_OVERHEAD + string_bytes(key);
    }
    g->generation = mc->clock;
}

/* ---- public API ---- */

metacache *metacache_new(size_t max_bytes)
{
    metacache *mc = calloc(1, sizeof(*mc));
    if (!mc)
        return NULL;
    mc->buckets = calloc(INITIAL_BUCKETS, sizeof(*mc->buckets));
    if (!mc->buckets || pthread_mutex_init(&mc->lock, NULL) != 0) {
        free(mc->buckets);
        free(mc);
        return NULL;
    }
    mc->bucket_count = INITIAL_BUCKETS;
    mc->max_bytes = max_bytes;
    mc->bytes = sizeof(*mc) + INITIAL_BUCKETS * sizeof(*mc->buckets);
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
    free(mc->buckets);
    pthread_mutex_destroy(&mc->lock);
    free(mc);
}

uint64_t metacache_generation(metacache *mc, const char *ref_key)
{
    pthread_mutex_lock(&mc->lock);
    uint64_t generation = current_generation(mc, ref_key);
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
    l->entries = entries;
    l->count = n;
    l->expires_at_ms = expires_at_ms;
    l->hash = hash_key(ref_key, dir);
    l->bytes = listing_bytes(l);

    pthread_mutex_lock(&mc->lock);
    int rc = 0;
    if (generation < current_generation(mc, ref_key)) {
        rc = 1; /* fetched before an invalidation: stale */
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

int metacache_lookup(metacache *mc, const char *ref_key, const char *dir,
                     const char *name, int64_t now_ms, fs_entry *out)
{
    pthread_mutex_lock(&mc->lock);
    int rc;
    listing *l = valid_listing(mc, ref_key, dir, now_ms);
    if (!l) {
        mc->stats.misses++;
        rc = -ENODATA;
    } else {
        ptrdiff_t i = search(l, name);
        if (i < 0) {
            mc->stats.negative_hits++;
            rc = 0;
        } else {
            mc->stats.hits++;
            rc = out ? fs_entry_copy(out, &l->entries[i]) : 0;
            if (rc == 0)
                rc = 1;
        }
    }
    pthread_mutex_unlock(&mc->lock);
    return rc;
}

int metacache_foreach(metacache *mc, const char *ref_key, const char *dir,
                      int64_t now_ms, int (*fn)(void *ctx, const fs_entry *e),
                      void *ctx)
{
    pthread_mutex_lock(&mc->lock);
    int rc = 0;
    listing *l = valid_listing(mc, ref_key, dir, now_ms);
    if (!l) {
        mc->stats.misses++;
        rc = -ENODATA;
    } else {
        mc->stats.hits++;
        for (size_t i = 0; rc == 0 && i < l->count; i++)
            rc = fn(ctx, &l->entries[i]);
    }
    pthread_mutex_unlock(&mc->lock);
    return rc;
}

/* Applies one insert/replace/remove to l; -ENOMEM leaves l unchanged. */
static int apply_update(listing *l, const char *name, const fs_entry *entry)
{
    ptrdiff_t i = search(l, name);
    if (!entry) {
        if (i < 0)
            return 0;
        fs_entry_free(&l->entries[i]);
        memmove(&l->entries[i], &l->entries[i + 1],
                (l->count - (size_t)i - 1) * sizeof(*l->entries));
        l->count--;
        return 0;
    }
    fs_entry copy;
    if (fs_entry_copy(&copy, entry))
        return -ENOMEM;
    char *copy_name = strdup(name);
    if (!copy_name) {
        fs_entry_free(&copy);
        return -ENOMEM;
    }
    free(copy.name);
    copy.name = copy_name;
    if (i >= 0) {
        fs_entry_free(&l->entries[i]);
        l->entries[i] = copy;
        return 0;
    }
    fs_entry *grown =
        realloc(l->entries, (l->count + 1) * sizeof(*l->entries));
    if (!grown) {
        fs_entry_free(&copy);
        return -ENOMEM;
    }
    size_t at = (size_t)(-i - 1);
    memmove(&grown[at + 1], &grown[at], (l->count - at) * sizeof(*grown));
    grown[at] = copy;
    l->entries = grown;
    l->count++;
    return 0;
}

int metacache_update_entry(metacache *mc, const char *ref_key, const char *dir,
                           const char *name, const fs_entry *entry)
{
    pthread_mutex_lock(&mc->lock);
    bump_generation(mc, ref_key);
    int rc = 0;
    listing *l = find_listing(mc, ref_key, dir);
    if (l) {
        rc = apply_update(l, name, entry);
        if (rc) {
            remove_listing(mc, l);
        } else {
            size_t bytes = listing_bytes(l);
            mc->bytes = mc->bytes - l->bytes + bytes;
            l->bytes = bytes;
            evict(mc, NULL);
        }
    }
    pthread_mutex_unlock(&mc->lock);
    return rc;
}

void metacache_invalidate_dir(metacache *mc, const char *ref_key,
                              const char *dir)
{
    pthread_mutex_lock(&mc->lock);
    bump_generation(mc, ref_key);
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
    bump_generation(mc, ref_key);
    listing *l = mc->lru_head;
    while (l) {
        listing *next = l->lru_next;
        if (strcmp(l->ref_key, ref_key) == 0) {
            for (size_t i = 0; paths && rc == 0 && i < l->count; i++)
                rc = collect_path(paths, count, &cap, l->dir,
                                  l->entries[i].name);
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
