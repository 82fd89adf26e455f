/*
 * metacache.c - bounded LRU cache of directory listings: a chained hash
 * table keyed by (ref, dir), an LRU list and one mutex; no global state.
 *
 * A listing's entries are an entryset (entryset.h): O(log n) updates
 * with the byte estimate kept current, and reference counted, so that
 * foreach takes a reference under the lock and walks it outside it while
 * updates copy on write.
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
#include "chainhash.h"
#include "dlist.h"

#include "entryset.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* What malloc spends per allocation beyond the bytes asked for, so that the
 * estimate tracks real heap use for many small strings. */
#define ALLOC_OVERHEAD ENTRYSET_ALLOC_OVERHEAD
#define INITIAL_BUCKETS 64
/* Bounds on the per-directory generation records (metacache_new). */
#define MIN_DIR_GENERATIONS 16
#define MAX_DIR_GENERATIONS 4096
#define DIR_GENERATION_ESTIMATE 128 /* bytes one record takes, roughly */
#define DIR_GENERATION_BUCKETS 128

typedef struct listing {
    char *ref_key;
    char *dir;
    uint64_t hash;
    entryset *entries; /* shared with foreach callers walking it */
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


/* What a listing holds besides its entries. */
static size_t listing_own_bytes(const listing *l)
{
    return sizeof(*l) + ALLOC_OVERHEAD + string_bytes(l->ref_key) +
           string_bytes(l->dir);
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

static void listing_destroy(listing *l)
{
    if (l->entries)
        entryset_release(l->entries);
    free(l->ref_key);
    free(l->dir);
    free(l);
}

/* ---- LRU list and hash table, all called with the lock held ---- */

static void lru_unlink(metacache *mc, listing *l)
{
    DLIST_UNLINK(mc->lru_head, mc->lru_tail, l, lru_prev, lru_next);
}

static void lru_push_front(metacache *mc, listing *l)
{
    DLIST_PUSH_FIRST(mc->lru_head, mc->lru_tail, l, lru_prev, lru_next);
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
 * walking its entries keeps those alive). */
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
    CHAIN_REHASH(listing, l, hash_next, mc->buckets, mc->bucket_count,
                 buckets, l->hash % new_count);
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

/* What s would weigh without its physical addresses. */
static size_t addressless_bytes(const entryset *s)
{
    return entryset_bytes(s) - entryset_address_bytes(s);
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
    l->entries = entryset_new(entries, n);
    if (!l->entries) {
        listing_destroy(l);
        return -ENOMEM;
    }
    l->expires_at_ms = expires_at_ms;
    l->hash = hash_key(ref_key, dir);
    l->bytes = listing_own_bytes(l) + entryset_bytes(l->entries);

    pthread_mutex_lock(&mc->lock);
    int rc = 0;
    if (generation < current_generation(mc, ref_key, dir)) {
        rc = 1; /* fetched before a write or invalidation: stale */
    } else if (l->bytes > mc->max_bytes &&
               listing_own_bytes(l) + addressless_bytes(l->entries) >
                   mc->max_bytes) {
        rc = -EFBIG;
    } else {
        if (l->bytes > mc->max_bytes) {
            /* Too big with each entry's physical address, small
             * enough without: kept without (a read asks for its URL or
             * its data by key), rather than fetched again for every
             * lookup. Nobody else holds the set yet. */
            entryset_drop_addresses(l->entries);
            l->bytes = listing_own_bytes(l) + entryset_bytes(l->entries);
        }
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
        const fs_entry *e = entryset_find(l->entries, name);
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
    return metacache_foreach_after(mc, ref_key, dir, now_ms, NULL, fn, ctx);
}

int metacache_foreach_after(metacache *mc, const char *ref_key,
                            const char *dir, int64_t now_ms,
                            const char *after,
                            int (*fn)(void *ctx, const fs_entry *e),
                            void *ctx)
{
    pthread_mutex_lock(&mc->lock);
    listing *l = valid_listing(mc, ref_key, dir, now_ms);
    entryset *snapshot = NULL;
    if (!l) {
        mc->stats.misses++;
    } else {
        mc->stats.hits++;
        snapshot = entryset_retain(l->entries); /* updates now copy */
    }
    pthread_mutex_unlock(&mc->lock);
    if (!snapshot)
        return -ENODATA;
    int rc = entryset_foreach_after(snapshot, after, fn, ctx);
    entryset_release(snapshot);
    return rc;
}

int metacache_snapshot(metacache *mc, const char *ref_key, const char *dir,
                       int64_t now_ms, entryset **out)
{
    pthread_mutex_lock(&mc->lock);
    listing *l = valid_listing(mc, ref_key, dir, now_ms);
    if (l)
        mc->stats.hits++;
    else
        mc->stats.misses++;
    *out = l ? entryset_retain(l->entries) : NULL;
    pthread_mutex_unlock(&mc->lock);
    return *out ? 0 : -ENODATA;
}

int metacache_update_entry(metacache *mc, const char *ref_key, const char *dir,
                           const char *name, const fs_entry *entry)
{
    pthread_mutex_lock(&mc->lock);
    bump_dir(mc, ref_key, dir);
    int rc = 0;
    listing *l = find_listing(mc, ref_key, dir);
    if (l) {
        size_t before = entryset_bytes(l->entries);
        rc = entryset_update(&l->entries, name, entry);
        size_t after = entryset_bytes(l->entries);
        l->bytes = l->bytes + after - before;
        mc->bytes = mc->bytes + after - before;
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

typedef struct collector {
    char ***paths;
    size_t *n, *cap;
    const char *dir;
} collector;

/* "dir/name" (or "name" in the root dir ""), appended to paths. */
static int collect_path(void *ctx, const fs_entry *e)
{
    collector *c = ctx;
    if (*c->n == *c->cap) {
        size_t ncap = *c->cap ? *c->cap * 2 : 32;
        char **grown = realloc(*c->paths, ncap * sizeof(**c->paths));
        if (!grown)
            return -ENOMEM;
        *c->paths = grown;
        *c->cap = ncap;
    }
    size_t dl = strlen(c->dir), nl = strlen(e->name);
    char *p = malloc(dl + nl + 2);
    if (!p)
        return -ENOMEM;
    memcpy(p, c->dir, dl);
    p[dl] = '/';
    memcpy(p + (dl ? dl + 1 : 0), e->name, nl + 1);
    (*c->paths)[(*c->n)++] = p;
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
            collector c = {paths, count, &cap, l->dir};
            if (paths && rc == 0)
                rc = entryset_foreach(l->entries, collect_path, &c);
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
        if (entryset_verify(l->entries) ||
            listing_own_bytes(l) + entryset_bytes(l->entries) != l->bytes)
            rc = -EINVAL;
        total += l->bytes;
    }
    if (listings != mc->listing_count || total != mc->bytes)
        rc = -EINVAL;
    pthread_mutex_unlock(&mc->lock);
    return rc;
}
