/*
 * reader.c - serves reads of open files block by block: the block cache
 * first, then one shared fetch per run of missing blocks (an in-flight table
 * keyed by object and block), with sequential read-ahead on a worker pool.
 * Never holds more than max_inflight_bytes of fetched data, never fetches a
 * block another caller is fetching, never frees a source a fetch may use.
 */
#include "reader.h"
#include "dlist.h"
#include "fetchbuf.h"
#include "threads.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Cached blocks of one read-ahead step handed to the warmer, at most. */
#define WARM_BATCH 32

#define DEFAULT_WORKERS 4
#define DEFAULT_MAX_FETCH ((size_t)8 << 20)
#define DEFAULT_MAX_READAHEAD ((size_t)16 << 20)
#define DEFAULT_MAX_INFLIGHT ((size_t)32 << 20)
/* With several FUSE threads the kernel's own readahead (four requests of
 * up to max_read, fs_ops.c) arrives out of order, so a read this close to
 * the previous end is still sequential: four blocks, or four read sizes
 * when reads are small (so that random 4 KiB reads do not look sequential
 * whenever two land near each other). The read size is the largest this
 * descriptor has seen: the short last read of a file, arriving before the
 * read ahead of it, is as sequential as the others. */
#define SEQUENTIAL_SLACK_BLOCKS 4
#define SEQUENTIAL_SLACK_READS 4
#define TOUCHED_SLOTS 4096
#define OBJECT_SLOTS 64
/* Fetched bytes waiting for the store thread at most; beyond, the owner
 * of a fetch (a reader or read-ahead worker) stores its blocks itself. */
#define STORE_BEHIND_MAX ((size_t)8 << 20)
/* A descriptor whose random reads so far number 1/this of its object's
 * blocks reads densely: its random misses fetch whole blocks. */
#define DENSE_RANDOM_FRACTION 16
/* Random reads no larger than block_size / this are fetched alone. */
#define DIRECT_READ_FRACTION 8
/* A descriptor reading densely at random fills its object into the cache
 * in the background (GETs of this size at most, run by the workers) when
 * the object is no larger than 1/this of the cache: past that point the
 * whole object will be wanted, and a few large GETs cost far less than a
 * GET per block. */
#define FILL_FETCH_BYTES ((size_t)4 << 20)
#define FILL_CACHE_FRACTION 4

typedef enum fetch_state {
    FETCH_QUEUED,  /* read-ahead not started: a reader needing it takes it */
    FETCH_RUNNING, /* its owner is checking the cache or fetching */
    FETCH_DONE,    /* result, range and data are final */
} fetch_state;

/*
 * One GET of blocks [first, first + count) of one object. It is in the
 * table (registered) from creation until its blocks are in the cache or it
 * failed; when the cache could not take them (no cache, cache full) it stays
 * as a resident until a reader has read its last byte or the budget needs
 * the memory back, so read-ahead is not wasted.
 */
typedef struct fetch_entry {
    struct fetch_entry *older;
    struct fetch_entry *newer;
    reader_file *file; /* referenced until DONE: the fetch and its source */
    uint64_t size;
    uint64_t first;
    uint64_t count; /* shrinks while RUNNING when the cache has the ends */
    fetch_state state;
    bool readahead; /* nobody was waiting for it when it was created */
    bool registered;
    bool resident;
    bool consumed; /* a reader has read its last byte */
    int result;
    unsigned refs; /* the owner (or the queue) and each reader using it */
    unsigned char *data;
    size_t reserved; /* budget held until the entry is freed */
    bool uncacheable; /* the fetch said its bytes must not be cached */
    bool store_pending; /* the store thread has yet to write its blocks */
    bool storing;       /* the store thread is writing them */
    bool stored;        /* its blocks are in the cache: evictable freely */
    bool random;        /* fetched for a random read: once stored, its
                           later reads come from the cache, not memory */
    bool orphan;        /* its file was closed: once stored, let it go */
    bool fill;          /* background fill of a densely read object: waits
                           for budget like a reader, and while queued a
                           small read of its blocks does not take it over
                           (a direct GET is sooner) */
    uint64_t serial;    /* of the file that created it */
    blockcache_id id; /* a copy: a resident outlives its file */
} fetch_entry;

struct reader_file {
    reader *r;
    blockcache_id id;
    uint64_t size;
    uint64_t block_count;
    reader_fetch_fn fetch;
    void *source;
    void (*source_free)(void *source);
    unsigned refs; /* under r->lock: the handle and each unfinished fetch */
    bool closed;   /* under r->lock */
    uint64_t serial; /* tells its entries from other files' */
    pthread_mutex_t lock; /* guards the sequential state below */
    bool have_prev;
    uint64_t prev_end;       /* where the latest sequential read ended */
    uint64_t window;         /* read-ahead window in bytes */
    uint64_t readahead_next; /* blocks below it are fetched or scheduled */
    uint64_t random_reads;   /* reads that were not sequential */
    uint64_t max_read_len;   /* the largest read seen */
};

typedef struct object_slot {
    uint64_t hash; /* 0: empty */
    uint64_t random_reads;
    bool filling;
} object_slot;

typedef struct counters {
    _Atomic uint64_t fetches, bytes_fetched, bytes_from_cache, bytes_served,
        readahead_blocks, fetch_errors, fetch_waits, budget_waits,
        uncacheable_fetches, direct_fetches, buffers_mapped, fill_blocks;
} counters;

struct reader {
    pthread_mutex_t lock;         /* table, budget, file refs, stopping */
    pthread_cond_t fetch_changed; /* an entry finished, shrank or left */
    pthread_cond_t budget_freed;
    pthread_cond_t work_queued;
    pthread_cond_t store_queued; /* an entry waits for the store thread */
    pthread_cond_t stores_done;  /* stores_pending went down */
    blockcache *cache;
    warmer *warm; /* cached blocks of read-ahead windows into the page
                     cache; NULL without a cache */
    uint64_t block_size;
    uint64_t fetch_blocks;  /* blocks per GET at most */
    uint64_t readahead_max; /* bytes, whole blocks */
    size_t max_inflight;
    size_t inflight_bytes; /* entries' reservations and kept buffers */
    fetchbuf_pool buffers; /* freed data mappings kept for reuse while a
                              file is open: counted in inflight_bytes */
    unsigned open_files;
    uint64_t direct_max; /* random reads up to this size are fetched alone */
    uint64_t fill_max;   /* objects up to this size may be filled */
    uint64_t fill_blocks; /* blocks per fill GET */
    unsigned budget_waiters;
    /* The in-flight table, oldest first; also the read-ahead queue (its
     * QUEUED entries). Its length is bounded by the open files' windows
     * over max_fetch_bytes, so a linear scan is cheap. */
    fetch_entry *oldest;
    fetch_entry *newest;
    _Atomic uint64_t generation; /* bumped when an entry leaves the table */
    bool stopping;
    unsigned worker_count;
    pthread_t *workers;
    /* Write-behind: fetched blocks go into the cache on this thread, so
     * neither a reader nor a read-ahead worker waits for the cache's
     * digest and file writes. The entry stays in the table (its readers
     * are served from memory) until stored. */
    pthread_t store_thread;
    bool store_started;
    bool store_stopping;
    unsigned stores_pending;
    size_t pending_bytes; /* of the entries handed to the store thread */
    unsigned unfinished; /* entries whose owner has not finished them */
    uint64_t next_serial;
    /* Blocks a random read fetched a piece of, recently (a hash per
     * slot; a collision just forgets one): the second random miss in a
     * block fetches it whole, so a file read at random densely ends up
     * in whole cached blocks while a sparse one costs only its bytes. */
    uint64_t touched[TOUCHED_SLOTS];
    /* Random reads per object over all its descriptors, and whether its
     * fill was queued (a collision forgets one: it counts afresh). */
    object_slot objects[OBJECT_SLOTS];
    counters stats;
};

static void count(_Atomic uint64_t *counter, uint64_t n)
{
    atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static uint64_t ceil_div(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}

static uint64_t block_bytes(const reader *r, uint64_t size, uint64_t block)
{
    return min_u64(size - block * r->block_size, r->block_size);
}

/* Byte offset just past the entry's data. */
static uint64_t fetch_end(const reader *r, const fetch_entry *e)
{
    return min_u64((e->first + e->count) * r->block_size, e->size);
}

static bool fetch_covers(const fetch_entry *e, uint64_t block)
{
    return block >= e->first && block - e->first < e->count;
}

static bool same_object(const fetch_entry *e, const reader_file *f)
{
    return e->size == f->size &&
           memcmp(e->id.digest, f->id.digest, BLOCKCACHE_ID_SIZE) == 0;
}

static void file_destroy(reader_file *f)
{
    if (f->source_free != NULL && f->source != NULL)
        f->source_free(f->source);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

/* ---- the in-flight table (callers hold r->lock) ---- */

static void table_remove(reader *r, fetch_entry *e)
{
    DLIST_UNLINK(r->newest, r->oldest, e, newer, older);
    e->registered = false;
    atomic_fetch_add(&r->generation, 1);
    pthread_cond_broadcast(&r->fetch_changed);
}

static fetch_entry *table_find(reader *r, const reader_file *f, uint64_t block)
{
    for (fetch_entry *e = r->oldest; e != NULL; e = e->newer)
        if (fetch_covers(e, block) && same_object(e, f))
            return e;
    return NULL;
}

/* The first block in [from, limit) that an entry of f's object covers, or
 * limit: where a new fetch starting before `from` has to stop. */
static uint64_t table_next_covered(reader *r, const reader_file *f,
                                   uint64_t from, uint64_t limit)
{
    for (fetch_entry *e = r->oldest; e != NULL; e = e->newer) {
        if (e->count == 0 || e->first >= limit ||
            e->first + e->count <= from || !same_object(e, f))
            continue;
        limit = e->first > from ? e->first : from;
    }
    return limit;
}

static fetch_entry *fetch_new(reader *r, reader_file *f, uint64_t first,
                              uint64_t blocks, bool readahead)
{
    fetch_entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->id = f->id;
    e->serial = f->serial;
    e->file = f;
    f->refs++;
    e->size = f->size;
    e->first = first;
    e->count = blocks;
    e->state = readahead ? FETCH_QUEUED : FETCH_RUNNING;
    e->readahead = readahead;
    e->refs = 1;
    e->registered = true;
    r->unfinished++;
    DLIST_PUSH_FIRST(r->newest, r->oldest, e, newer, older);
    return e;
}

/* Drops the entry's file reference; returns the file if that was the last
 * one (the caller destroys it after unlocking: source_free is theirs). */
static reader_file *fetch_drop_file(fetch_entry *e)
{
    reader_file *f = e->file;
    e->file = NULL;
    return f != NULL && --f->refs == 0 ? f : NULL;
}

/* Its buffer is kept for the next fetch of that size while a file is open
 * (still counted in the budget, which reclaims it when short), else
 * freed. */
static void fetch_free(reader *r, fetch_entry *e)
{
    if (!fetchbuf_give(&r->buffers, e->data, e->reserved,
                       r->open_files > 0))
        r->inflight_bytes -= e->reserved;
    if (e->reserved > 0)
        pthread_cond_broadcast(&r->budget_freed);
    free(e);
}

static void fetch_release(reader *r, fetch_entry *e)
{
    if (--e->refs > 0)
        return;
    if (!e->registered)
        fetch_free(r, e);
    else if (e->resident)
        pthread_cond_broadcast(&r->budget_freed); /* now evictable */
}

/* ---- the memory budget (callers hold r->lock) ---- */

/* Frees the oldest resident nobody is reading. Read-ahead may only evict
 * residents left by readers that the cache did not take, never another
 * file's unread read-ahead, or read-ahead of several files would keep
 * evicting each other's, nor a stored block a reader may be in the middle
 * of (it would be read back from the cache). */
static bool budget_evict_resident(reader *r, bool for_reader)
{
    for (fetch_entry *e = r->oldest; e != NULL; e = e->newer) {
        if (e->resident && e->refs == 0 &&
            (for_reader || (!e->readahead && !e->stored))) {
            table_remove(r, e);
            fetch_free(r, e);
            return true;
        }
    }
    return false;
}

/* Budget and a buffer for len bytes of fetched data: *data is a kept
 * buffer of the size needed (its bytes, counted in the budget while kept,
 * are the reservation now), or NULL with the budget reserved for a new
 * one. A reader waits for budget; read-ahead gives up instead, and also
 * yields to any waiting reader so that it cannot starve them. */
static bool budget_reserve(reader *r, size_t len, bool for_reader,
                           unsigned char **data)
{
    size_t size = fetchbuf_size(&r->buffers, len);
    bool waited = false;
    *data = NULL;
    for (;;) {
        if (!for_reader && r->budget_waiters > 0)
            return false;
        *data = fetchbuf_take_kept(&r->buffers, len);
        if (*data != NULL)
            return true;
        if (r->inflight_bytes + size <= r->max_inflight)
            break;
        /* Kept buffers hold no data, and none is of this size: they go
         * first. An evicted resident's buffer may be. */
        size_t reclaimed = fetchbuf_reclaim(&r->buffers);
        if (reclaimed > 0) {
            r->inflight_bytes -= reclaimed;
            continue;
        }
        if (budget_evict_resident(r, for_reader))
            continue;
        if (!for_reader)
            return false;
        if (!waited)
            count(&r->stats.budget_waits, 1);
        waited = true;
        r->budget_waiters++;
        pthread_cond_wait(&r->budget_freed, &r->lock);
        r->budget_waiters--;
    }
    r->inflight_bytes += size;
    return true;
}

/* ---- running one fetch ---- */

/* Whether the cache's index has the block (no file is read). */
static bool cache_has(reader *r, const blockcache_id *id, uint64_t block)
{
    return r->cache != NULL && blockcache_contains(r->cache, id, block);
}

/* Read-ahead scheduled blindly; drop the ends the cache already has (a
 * re-read of a cached file then fetches nothing). */
static void fetch_trim_cached(reader *r, fetch_entry *e)
{
    uint64_t first = e->first;
    uint64_t end = e->first + e->count;
    while (first < end && cache_has(r, &e->id, first))
        first++;
    while (end > first && cache_has(r, &e->id, end - 1))
        end--;
    if (first == e->first && end == e->first + e->count)
        return;
    pthread_mutex_lock(&r->lock);
    e->first = first;
    e->count = end - first;
    /* Blocks left the table: a reader that found this entry covering its
     * block (and so did not look in the cache) must look again, not
     * fetch the block it no longer finds here (read_fetched). */
    atomic_fetch_add(&r->generation, 1);
    pthread_cond_broadcast(&r->fetch_changed); /* waiters outside look again */
    pthread_mutex_unlock(&r->lock);
}

/* Calls the fetch for [offset, offset + len) into buf and counts it (a
 * direct fetch in direct_fetches too): 0 when all len bytes came,
 * READER_FETCH_UNCACHEABLE, or a negative errno. We never ask past the end:
 * fewer bytes means the object shrank (-EIO). */
static int fetch_counted(reader *r, reader_file *f, uint64_t offset,
                         size_t len, void *buf, bool direct)
{
    size_t got = 0;
    int rc = f->fetch(f->source, offset, len, buf, &got);
    count(&r->stats.fetches, 1);
    if (direct)
        count(&r->stats.direct_fetches, 1);
    bool uncacheable = rc == READER_FETCH_UNCACHEABLE;
    if (uncacheable) {
        count(&r->stats.uncacheable_fetches, 1);
        rc = 0;
    }
    if (rc == 0)
        count(&r->stats.bytes_fetched, min_u64(got, len));
    if (rc > 0 || (rc == 0 && got != len))
        rc = -EIO;
    if (rc < 0) {
        count(&r->stats.fetch_errors, 1);
        return rc;
    }
    return uncacheable ? READER_FETCH_UNCACHEABLE : 0;
}

static int fetch_call(reader *r, reader_file *f, fetch_entry *e, size_t len)
{
    int rc = fetch_counted(r, f, e->first * r->block_size, len, e->data,
                           false);
    if (rc == READER_FETCH_UNCACHEABLE) {
        e->uncacheable = true;
        rc = 0;
    }
    return rc;
}

/* Runs an entry its caller owns (RUNNING): trims cached ends (read-ahead
 * scheduled blindly, trim set), reserves budget, calls the fetch. Returns
 * with the entry DONE; a failed or empty one has left the table so a later
 * read retries. */
static void fetch_execute(reader *r, fetch_entry *e, bool for_reader,
                          bool trim)
{
    reader_file *f = e->file;
    if (trim)
        fetch_trim_cached(r, e);
    size_t len = (size_t)(fetch_end(r, e) - e->first * r->block_size);
    size_t size = fetchbuf_size(&r->buffers, len);
    pthread_mutex_lock(&r->lock);
    /* A fill waits for budget (a skipped block would cost a GET of its
     * own later); the budget frees as fetched blocks are stored. */
    bool go = e->count > 0 && (for_reader || !f->closed) &&
              budget_reserve(r, len, for_reader || e->fill, &e->data);
    if (go)
        e->reserved = size;
    else
        e->count = 0; /* read-ahead skipped: readers will fetch */
    pthread_mutex_unlock(&r->lock);

    int rc = 0;
    if (go && e->data == NULL) {
        bool mapped = false;
        e->data = fetchbuf_alloc(&r->buffers, len, &mapped);
        if (mapped)
            count(&r->stats.buffers_mapped, 1);
    }
    if (go)
        rc = e->data == NULL ? -ENOMEM : fetch_call(r, f, e, len);
    pthread_mutex_lock(&r->lock);
    e->result = rc;
    e->state = FETCH_DONE;
    if (rc < 0 || e->count == 0)
        table_remove(r, e);
    pthread_cond_broadcast(&r->fetch_changed);
    reader_file *dead = fetch_drop_file(e);
    pthread_mutex_unlock(&r->lock);
    if (dead != NULL)
        file_destroy(dead);
}

/* True when every block went into the cache. A failed put is counted by the
 * cache; the data is still served from memory. */
static bool fetch_store(reader *r, const fetch_entry *e)
{
    if (r->cache == NULL || e->uncacheable)
        return false;
    bool all = true;
    for (uint64_t i = 0; i < e->count; i++) {
        uint64_t block = e->first + i;
        if (blockcache_put(r->cache, &e->id, block,
                           e->data + i * r->block_size,
                           block_bytes(r, e->size, block)) != 0)
            all = false;
    }
    return all;
}

/* After the entry's blocks went to the cache (all: every one of them):
 * it leaves the table once read to its end, or at once when fetched for a
 * random read or for a file now closed; else it stays, resident (stored
 * residents are evicted first, by anyone). Drops the owner's reference. */
static void store_done(reader *r, fetch_entry *e, bool all)
{
    e->stored = all;
    if (e->registered) {
        if (e->consumed || ((e->random || e->orphan) && all))
            table_remove(r, e);
        else
            e->resident = true;
    }
    fetch_release(r, e);
}

/* Drops a reference after serving from the entry. The owner hands the
 * blocks to the store thread (with its reference); the entry stays in the
 * table, resident, until a reader has read its last byte (or the budget
 * needs the memory back), so the reader it was fetched for is served from
 * memory, not from the cache file just written. */
static void fetch_finish(reader *r, fetch_entry *e, bool owner, bool consumed)
{
    bool ok = e->result == 0 && e->count > 0;
    bool store = owner && ok && r->cache != NULL && !e->uncacheable &&
                 r->store_started;
    pthread_mutex_lock(&r->lock);
    e->consumed = e->consumed || consumed;
    if (store && r->pending_bytes + e->reserved <= STORE_BEHIND_MAX) {
        e->store_pending = true;
        r->stores_pending++;
        r->pending_bytes += e->reserved;
        pthread_cond_signal(&r->store_queued);
    } else if (store) {
        /* The store thread is that far behind: store here. */
        pthread_mutex_unlock(&r->lock);
        bool all = fetch_store(r, e);
        pthread_mutex_lock(&r->lock);
        store_done(r, e, all);
    } else {
        if (owner && ok && !e->consumed)
            e->resident = true;
        else if (e->registered && (owner || (e->resident && e->consumed)))
            table_remove(r, e);
        fetch_release(r, e);
    }
    if (owner) {
        r->unfinished--;
        pthread_cond_broadcast(&r->stores_done);
    }
    pthread_mutex_unlock(&r->lock);
}

/* ---- the store thread ---- */

static void *store_main(void *arg)
{
    reader *r = arg;
    /* The in-flight budget bounds how far the stores may fall behind:
     * held blocks count in it until stored. */
    pthread_mutex_lock(&r->lock);
    for (;;) {
        fetch_entry *e = r->oldest; /* oldest first: it was read first */
        while (e != NULL && !(e->store_pending && !e->storing))
            e = e->newer;
        if (e == NULL) {
            if (r->store_stopping && r->stores_pending == 0)
                break;
            pthread_cond_wait(&r->store_queued, &r->lock);
            continue;
        }
        e->storing = true;
        pthread_mutex_unlock(&r->lock);
        bool all = fetch_store(r, e);
        pthread_mutex_lock(&r->lock);
        e->storing = false;
        e->store_pending = false;
        r->stores_pending--;
        r->pending_bytes -= e->reserved;
        store_done(r, e, all);
        pthread_cond_broadcast(&r->stores_done);
        pthread_cond_broadcast(&r->budget_freed); /* maybe evictable now */
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* ---- read-ahead workers ---- */

static void *worker_main(void *arg)
{
    reader *r = arg;
    pthread_mutex_lock(&r->lock);
    while (!r->stopping) {
        fetch_entry *e = r->oldest; /* oldest queued first */
        while (e != NULL && e->state != FETCH_QUEUED)
            e = e->newer;
        if (e == NULL) {
            pthread_cond_wait(&r->work_queued, &r->lock);
            continue;
        }
        e->state = FETCH_RUNNING;
        pthread_mutex_unlock(&r->lock);
        fetch_execute(r, e, false, true);
        if (e->result == 0 && e->count > 0)
            count(e->fill ? &r->stats.fill_blocks
                          : &r->stats.readahead_blocks,
                  e->count);
        fetch_finish(r, e, true, false);
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* Queues [from, to) as GETs of at most fetch_blocks, around what is already
 * in the table and what is cached (an index lookup). A cached block is not
 * queued: a worker holding it, even only to find it cached, would make
 * reader_pin hand the read to reader_read (a copy) meanwhile. Blocks cached
 * or evicted after this are left to the workers (fetch_trim_cached). */
static void queue_blocks(reader_file *f, uint64_t from, uint64_t to,
                         uint64_t width, bool fill)
{
    reader *r = f->r;
    bool queued = false;
    /* Read-ahead's cached blocks go to the warmer instead (a window is at
     * most readahead_max: WARM_BATCH blocks of 1 MiB cover 32 MiB). */
    uint64_t warm[WARM_BATCH];
    size_t warm_count = 0;
    pthread_mutex_lock(&r->lock);
    uint64_t block = from;
    while (block < to && !f->closed && !r->stopping) {
        fetch_entry *e = table_find(r, f, block);
        if (e != NULL) {
            block = e->first + e->count;
            continue;
        }
        if (cache_has(r, &f->id, block)) {
            if (!fill && warm_count < WARM_BATCH)
                warm[warm_count++] = block;
            block++;
            continue;
        }
        uint64_t end =
            table_next_covered(r, f, block + 1, min_u64(to, block + width));
        for (uint64_t b = block + 1; b < end; b++)
            if (cache_has(r, &f->id, b)) {
                end = b;
                break;
            }
        e = fetch_new(r, f, block, end - block, true);
        if (e == NULL)
            break; /* out of memory: readers will fetch */
        if (fill) /* leaves the table once stored */
            e->fill = e->random = true;
        queued = true;
        block = end;
    }
    if (queued)
        pthread_cond_broadcast(&r->work_queued);
    pthread_mutex_unlock(&r->lock);
    for (size_t i = 0; i < warm_count; i++)
        warmer_add(r->warm, &f->id, warm[i]);
}

static void queue_readahead(reader_file *f, uint64_t from, uint64_t to)
{
    queue_blocks(f, from, to, f->r->fetch_blocks, false);
}

/* Queues the object's missing blocks as fill GETs of fill_blocks each, in
 * order, for the workers: entries like read-ahead's, but waiting for budget
 * instead of giving up, and leaving the table once stored (random), so the
 * memory held stays within max_inflight_bytes while the cache takes the
 * object. reader_close drops the ones not started; a block cached meanwhile
 * is trimmed by the worker. */
static void queue_fill(reader_file *f)
{
    queue_blocks(f, 0, f->block_count, f->r->fill_blocks, true);
}

/* ---- the read path ---- */

typedef struct read_ctx {
    reader_file *f;
    uint64_t extend_end;    /* a miss may fetch up to this block */
    uint64_t fetched_end;   /* end block of the fetches this read ran */
    bool sequential;
    bool dense; /* a random read of a file read densely at random */
    bool fill;  /* ... that starts the object's background fill */
    bool filling; /* the object's fill was queued: small random reads of
                     blocks it has not started are fetched alone */
} read_ctx;

/* Under r->lock: whether a fill of f's object is still in the table. */
static bool table_has_fill(reader *r, const reader_file *f)
{
    for (fetch_entry *e = r->oldest; e != NULL; e = e->newer)
        if (e->fill && same_object(e, f))
            return true;
    return false;
}

/* The object's slot in r->objects (under r->lock), taken over if another
 * object had it. */
static object_slot *object_find(reader *r, const reader_file *f)
{
    uint64_t h = f->size * 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < BLOCKCACHE_ID_SIZE; i++)
        h = (h ^ f->id.digest[i]) * 0x100000001b3ULL;
    h = h != 0 ? h : 1;
    object_slot *slot = &r->objects[h % OBJECT_SLOTS];
    if (slot->hash != h) {
        slot->hash = h;
        slot->random_reads = 0;
        slot->filling = false;
    }
    return slot;
}

/* After a random read: counts it for the object (all its descriptors: fio's
 * jobs each open the file) and starts the fill once the object's random
 * reads number 1/16 of its blocks, if it fits in a quarter of the cache. */
static void plan_fill(read_ctx *c)
{
    reader_file *f = c->f;
    reader *r = f->r;
    if (r->cache == NULL || f->size > r->fill_max || f->block_count < 2)
        return;
    pthread_mutex_lock(&r->lock);
    object_slot *slot = object_find(r, f);
    if (slot->filling && !table_has_fill(r, f)) {
        /* Done: count afresh, and after as many random reads again fill
         * what the cache has evicted since (if anything). */
        slot->filling = false;
        slot->random_reads = 0;
    }
    if (!slot->filling &&
        slot->random_reads * DENSE_RANDOM_FRACTION >= f->block_count) {
        slot->filling = true;
        c->fill = true;
    }
    slot->random_reads++;
    c->filling = slot->filling;
    pthread_mutex_unlock(&r->lock);
}

/* Sequential detection and the window; returns whether the read is
 * sequential and sets how far a miss may fetch. */
static bool plan_read(read_ctx *c, uint64_t offset, uint64_t end)
{
    reader_file *f = c->f;
    reader *r = f->r;
    pthread_mutex_lock(&f->lock);
    if (end - offset > f->max_read_len)
        f->max_read_len = end - offset;
    uint64_t slack = min_u64(SEQUENTIAL_SLACK_BLOCKS * r->block_size,
                             SEQUENTIAL_SLACK_READS * f->max_read_len);
    bool sequential = f->have_prev ? offset + slack >= f->prev_end &&
                                         offset <= f->prev_end + slack
                                   : offset == 0;
    if (sequential) {
        f->window = min_u64(f->window * 2, r->readahead_max);
        if (end > f->prev_end)
            f->prev_end = end;
    } else {
        f->window = r->block_size;
        f->readahead_next = 0;
        f->prev_end = end;
        /* Dense random access (as many random reads as 1/16 of the
         * object's blocks already): whole blocks will be read again. */
        c->dense = f->random_reads * DENSE_RANDOM_FRACTION >= f->block_count;
        f->random_reads++;
    }
    f->have_prev = true;
    uint64_t reach = sequential ? end + f->window : end;
    pthread_mutex_unlock(&f->lock);
    if (!sequential)
        plan_fill(c);
    c->extend_end = min_u64(ceil_div(reach, r->block_size), f->block_count);
    return sequential;
}

/* Bytes at pos from the block cache, exactly the range wanted within its
 * block, or 0 on a miss (a cache read error is a miss too: the fetch still
 * works). */
static ssize_t read_cached(read_ctx *c, uint64_t pos, unsigned char *dst,
                           size_t want)
{
    reader_file *f = c->f;
    reader *r = f->r;
    if (r->cache == NULL)
        return 0;
    uint64_t block = pos / r->block_size;
    size_t skip = (size_t)(pos % r->block_size);
    size_t len = (size_t)block_bytes(r, f->size, block);
    size_t n = (size_t)min_u64(len - skip, want);
    if (blockcache_read(r->cache, &f->id, block, skip, dst, n) != (ssize_t)n)
        return 0;
    count(&r->stats.bytes_from_cache, n);
    return (ssize_t)n;
}

/* How far a fetch for `block` may reach: the missing blocks after it, up
 * to the read's (or sequential window's) end and one GET; the first cached
 * block ends the run. A cache miss is an index lookup, so this is cheap. */
static uint64_t probe_run(read_ctx *c, uint64_t block)
{
    reader_file *f = c->f;
    reader *r = f->r;
    uint64_t limit = min_u64(c->extend_end, block + r->fetch_blocks);
    if (limit <= block)
        limit = block + 1;
    for (uint64_t b = block + 1; b < limit; b++)
        if (cache_has(r, &f->id, b))
            return b;
    return limit;
}

/* Copies from a DONE entry: bytes copied, 0 if it no longer covers pos
 * (look again), or its fetch's error. */
static ssize_t serve_fetch(reader *r, const fetch_entry *e, uint64_t pos,
                           unsigned char *dst, size_t want, bool *consumed)
{
    if (!fetch_covers(e, pos / r->block_size))
        return 0;
    if (e->result < 0)
        return e->result;
    uint64_t end = fetch_end(r, e);
    size_t n = (size_t)min_u64(end - pos, want);
    memcpy(dst, e->data + (pos - e->first * r->block_size), n);
    *consumed = pos + n == end;
    return (ssize_t)n;
}

/* Under r->lock: whether the block's bytes are the table's to serve, not
 * the cache's: an entry covers it that is fetching (or has fetched) it, or
 * is queued read-ahead for it while the cache does not have it. Its owner
 * may store the block at any moment once fetched (stores run behind, or on
 * the owner's thread when the store thread lags), so "not DONE yet" must
 * not send a reader to the cache: it would read back the file the store
 * just wrote. A queued entry cannot be fetched while r->lock is held, so
 * the cache having its block then means it was cached before. */
static bool table_serves(reader *r, const reader_file *f, uint64_t block)
{
    fetch_entry *e = table_find(r, f, block);
    return e != NULL &&
           (e->state != FETCH_QUEUED || !cache_has(r, &f->id, block));
}

/* Bytes at pos from fetched data still in memory (resident, or waiting
 * for the store thread): before the cache, so a block just fetched is not
 * read back from the file its store wrote. 0: not in memory; then
 * *in_table says whether an entry still running (or queued and not
 * cached) covers pos: the caller waits for it (read_fetched) instead of
 * looking in the cache. */
static ssize_t read_memory(read_ctx *c, uint64_t pos, unsigned char *dst,
                           size_t want, bool *in_table, bool *queued_fill)
{
    reader_file *f = c->f;
    reader *r = f->r;
    uint64_t block = pos / r->block_size;
    pthread_mutex_lock(&r->lock);
    fetch_entry *e = table_find(r, f, block);
    if (e == NULL || e->state != FETCH_DONE || e->result != 0) {
        *in_table = table_serves(r, f, block);
        *queued_fill = *in_table && e != NULL && e->fill &&
                       e->state == FETCH_QUEUED;
        pthread_mutex_unlock(&r->lock);
        return 0;
    }
    e->refs++;
    pthread_mutex_unlock(&r->lock);
    bool consumed = false;
    ssize_t n = serve_fetch(r, e, pos, dst, want, &consumed);
    fetch_finish(r, e, false, consumed);
    return n;
}

/* Bytes at pos from the table: waits for the entry that covers it, takes
 * over queued read-ahead, or starts a fetch. 0 means look again (the table
 * changed since the cache said no). */
static ssize_t read_fetched(read_ctx *c, uint64_t pos, unsigned char *dst,
                            size_t want, uint64_t generation)
{
    reader_file *f = c->f;
    reader *r = f->r;
    uint64_t block = pos / r->block_size;
    uint64_t limit = probe_run(c, block);
    bool own = true;
    bool stolen = false;

    pthread_mutex_lock(&r->lock);
    fetch_entry *e = table_find(r, f, block);
    if (e == NULL) {
        if (atomic_load(&r->generation) != generation) {
            pthread_mutex_unlock(&r->lock);
            return 0; /* an entry left: the cache may have the block now */
        }
        limit = table_next_covered(r, f, block + 1, limit);
        e = fetch_new(r, f, block, limit - block, false);
        if (e != NULL)
            e->random = !c->sequential;
        if (e == NULL) {
            pthread_mutex_unlock(&r->lock);
            return -ENOMEM;
        }
    } else if (e->state == FETCH_QUEUED) {
        /* Waiting for a free worker would be slower than fetching. */
        e->state = FETCH_RUNNING;
        e->readahead = false;
        stolen = true;
    } else {
        own = false;
        e->refs++;
        if (e->state != FETCH_DONE)
            count(&r->stats.fetch_waits, 1);
        while (e->state != FETCH_DONE && fetch_covers(e, block))
            pthread_cond_wait(&r->fetch_changed, &r->lock);
        if (!fetch_covers(e, block)) {
            fetch_release(r, e);
            pthread_mutex_unlock(&r->lock);
            return 0;
        }
    }
    pthread_mutex_unlock(&r->lock);

    if (own) {
        fetch_execute(r, e, true, stolen);
        if (e->count > 0 && e->first + e->count > c->fetched_end)
            c->fetched_end = e->first + e->count;
    }
    bool consumed = false;
    ssize_t n = serve_fetch(r, e, pos, dst, want, &consumed);
    fetch_finish(r, e, own, consumed);
    return n;
}

/* Which object and block: never 0 (0 marks an empty slot). */
static uint64_t touch_hash(const reader_file *f, uint64_t block)
{
    uint64_t h = f->size * 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < BLOCKCACHE_ID_SIZE; i++)
        h = (h ^ f->id.digest[i]) * 0x100000001b3ULL;
    h ^= (block + 1) * 0xC2B2AE3D27D4EB4FULL;
    return h != 0 ? h : 1;
}

/* A small random read that missed the cache: exactly the bytes wanted
 * (to the end of their block), fetched straight into the caller's buffer
 * and never stored - a whole block for each random 4 KiB read would fetch
 * 256 times what is read. Blocks in the table (being fetched, or held in
 * memory) and blocks a random read already fetched a piece of are left to
 * read_fetched (0: look there), which fetches the whole block, as are all
 * random misses of a descriptor that reads densely (plan_read): a block
 * read several times is cheaper fetched and cached once. */
static ssize_t read_direct(read_ctx *c, uint64_t pos, unsigned char *dst,
                           size_t want)
{
    reader_file *f = c->f;
    reader *r = f->r;
    uint64_t block = pos / r->block_size;
    uint64_t h = touch_hash(f, block);
    uint64_t *slot = &r->touched[h % TOUCHED_SLOTS];
    pthread_mutex_lock(&r->lock);
    fetch_entry *e = table_find(r, f, block);
    bool whole;
    if (e != NULL && e->fill && e->state == FETCH_QUEUED)
        whole = false; /* a GET of its own is sooner than the fill's */
    else if (c->filling) /* the fill brings blocks whole */
        whole = e != NULL;
    else
        whole = e != NULL || *slot == h;
    *slot = h;
    pthread_mutex_unlock(&r->lock);
    if (whole)
        return 0;
    size_t len = (size_t)min_u64(want, (block + 1) * r->block_size - pos);
    /* (Uncacheable bytes are served: these are never cached anyway.) */
    int rc = fetch_counted(r, f, pos, len, dst, true);
    if (rc < 0)
        return rc;
    return (ssize_t)len;
}

/* After a sequential read ending at `end`: queue the blocks of
 * [end, end + window) not scheduled yet. Small batches only while the
 * window is small; once it spans a whole GET, wait until a whole GET's
 * worth is missing, so a long read costs about size / max_fetch GETs. */
static void schedule_readahead(reader_file *f, uint64_t end,
                               uint64_t fetched_end)
{
    reader *r = f->r;
    uint64_t bs = r->block_size;
    pthread_mutex_lock(&f->lock);
    if (fetched_end > f->readahead_next)
        f->readahead_next = fetched_end;
    uint64_t from = ceil_div(end, bs); /* the block at end was just read */
    if (from < f->readahead_next)
        from = f->readahead_next;
    uint64_t last = min_u64(ceil_div(end + f->window, bs), f->block_count);
    uint64_t blocks = last > from ? last - from : 0;
    if (last < f->block_count) {
        uint64_t half_window = f->window / bs / 2;
        uint64_t batch =
            min_u64(r->fetch_blocks, half_window ? half_window : 1);
        if (blocks >= r->fetch_blocks)
            blocks -= blocks % r->fetch_blocks;
        else if (blocks < batch)
            blocks = 0;
    }
    if (blocks > 0)
        f->readahead_next = from + blocks;
    pthread_mutex_unlock(&f->lock);
    if (blocks > 0)
        queue_readahead(f, from, from + blocks);
}

ssize_t reader_read(reader_file *f, void *buf, size_t len, uint64_t offset)
{
    if (f == NULL || (buf == NULL && len > 0))
        return -EINVAL;
    if (offset >= f->size || len == 0)
        return 0;
    if (len > f->size - offset)
        len = (size_t)(f->size - offset);
    if (len > SSIZE_MAX)
        len = SSIZE_MAX;
    read_ctx c = {.f = f};
    uint64_t end = offset + len;
    bool sequential = plan_read(&c, offset, end);
    c.sequential = sequential;
    /* (An object of one block is fetched whole: as cheap as a piece.) */
    bool direct = !sequential && len <= f->r->direct_max &&
                  f->size > f->r->block_size;
    /* Dense reads fetch whole blocks, unless a fill brings them (this
     * descriptor's or another's: a queued fill block is fetched alone). */
    bool whole = c.dense && !c.filling;
    if (c.fill)
        queue_fill(f);
    size_t done = 0;
    ssize_t n = 0;
    while (done < len) {
        unsigned char *dst = (unsigned char *)buf + done;
        uint64_t generation = atomic_load(&f->r->generation);
        bool in_table = false;
        bool queued_fill = false;
        n = read_memory(&c, offset + done, dst, len - done, &in_table,
                        &queued_fill);
        if (n == 0 && !in_table)
            n = read_cached(&c, offset + done, dst, len - done);
        if (n == 0 && direct && (queued_fill || (!in_table && !whole)))
            n = read_direct(&c, offset + done, dst, len - done);
        if (n == 0) /* and 0 again: the table changed, look again */
            n = read_fetched(&c, offset + done, dst, len - done, generation);
        if (n < 0)
            break;
        done += (size_t)n;
    }
    if (n < 0)
        return n;
    count(&f->r->stats.bytes_served, len);
    if (sequential)
        schedule_readahead(f, end, c.fetched_end);
    return (ssize_t)len;
}

/* ---- lifecycle ---- */

static size_t or_default(size_t value, size_t fallback)
{
    return value != 0 ? value : fallback;
}

static int reader_configure(reader *r, const reader_config *cfg)
{
    if (cfg == NULL || cfg->block_size == 0 ||
        (cfg->cache != NULL &&
         blockcache_block_size(cfg->cache) != cfg->block_size))
        return -EINVAL;
    uint64_t bs = cfg->block_size;
    size_t max_fetch = or_default(cfg->max_fetch_bytes, DEFAULT_MAX_FETCH);
    size_t readahead =
        or_default(cfg->max_readahead_bytes, DEFAULT_MAX_READAHEAD);
    r->max_inflight =
        or_default(cfg->max_inflight_bytes, DEFAULT_MAX_INFLIGHT);
    if (r->max_inflight < bs)
        return -EINVAL; /* not even one block could be fetched */
    r->cache = cfg->cache;
    r->block_size = bs;
    /* A GET larger than the whole budget could never start. */
    r->fetch_blocks = min_u64(max_fetch, r->max_inflight) / bs;
    if (r->fetch_blocks == 0)
        r->fetch_blocks = 1;
    r->readahead_max = readahead < bs ? bs : readahead / bs * bs;
    /* Kept buffers count in the budget, which reclaims them when short;
     * two GETs' worth are enough for a sequential reader (the one being
     * read and the next), and keep idle memory low. */
    r->buffers.unit = bs;
    r->buffers.max_bytes =
        (size_t)min_u64(2 * r->fetch_blocks * bs, r->max_inflight);
    r->direct_max = cfg->direct_read_max != 0 ? cfg->direct_read_max
                                              : bs / DIRECT_READ_FRACTION;
    if (r->direct_max >= bs)
        r->direct_max = bs - 1;
    r->fill_blocks = min_u64(FILL_FETCH_BYTES, r->fetch_blocks * bs) / bs;
    if (r->fill_blocks == 0)
        r->fill_blocks = 1;
    if (r->cache != NULL) {
        blockcache_stats cs;
        blockcache_get_stats(r->cache, &cs);
        r->fill_max = cs.max_bytes / FILL_CACHE_FRACTION;
    }
    r->worker_count = (unsigned)or_default(cfg->workers, DEFAULT_WORKERS);
    return 0;
}

reader *reader_new(const reader_config *cfg, int *err)
{
    reader *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        if (err != NULL)
            *err = -ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->fetch_changed, NULL);
    pthread_cond_init(&r->budget_freed, NULL);
    pthread_cond_init(&r->work_queued, NULL);
    pthread_cond_init(&r->store_queued, NULL);
    pthread_cond_init(&r->stores_done, NULL);
    int rc = reader_configure(r, cfg);
    if (rc == 0 && r->cache != NULL) {
        rc = -thread_start_masked(&r->store_thread, store_main, r);
        r->store_started = rc == 0;
    }
    if (rc == 0 && r->cache != NULL)
        r->warm = warmer_new(r->cache, &rc);
    unsigned wanted = r->worker_count;
    r->worker_count = 0; /* reader_free joins the started ones */
    if (rc == 0) {
        r->workers = calloc(wanted, sizeof(*r->workers));
        rc = r->workers == NULL ? -ENOMEM : 0;
    }
    while (rc == 0 && r->worker_count < wanted) {
        rc = -thread_start_masked(&r->workers[r->worker_count], worker_main,
                                  r);
        if (rc == 0)
            r->worker_count++;
    }
    if (rc != 0) {
        reader_free(r);
        r = NULL;
    }
    if (err != NULL)
        *err = rc;
    return r;
}

void reader_free(reader *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_cond_broadcast(&r->work_queued);
    pthread_mutex_unlock(&r->lock);
    for (unsigned i = 0; i < r->worker_count; i++)
        pthread_join(r->workers[i], NULL);
    if (r->store_started) { /* it stores what is pending, then ends */
        pthread_mutex_lock(&r->lock);
        r->store_stopping = true;
        pthread_cond_signal(&r->store_queued);
        pthread_mutex_unlock(&r->lock);
        pthread_join(r->store_thread, NULL);
    }
    warmer_free(r->warm);
    /* Every file is closed (its queued read-ahead with it) and no thread
     * is left: only residents remain. */
    while (r->oldest != NULL) {
        fetch_entry *e = r->oldest;
        table_remove(r, e);
        fetch_free(r, e);
    }
    r->inflight_bytes -= fetchbuf_drain(&r->buffers);
    pthread_cond_destroy(&r->work_queued);
    pthread_cond_destroy(&r->store_queued);
    pthread_cond_destroy(&r->stores_done);
    pthread_cond_destroy(&r->budget_freed);
    pthread_cond_destroy(&r->fetch_changed);
    pthread_mutex_destroy(&r->lock);
    free(r->workers);
    free(r);
}

reader_file *reader_open(reader *r, const blockcache_id *id,
                         reader_fetch_fn fetch, void *source,
                         void (*source_free)(void *source))
{
    reader_file *f = NULL;
    if (r != NULL && id != NULL && fetch != NULL)
        f = calloc(1, sizeof(*f));
    if (f == NULL) {
        if (source_free != NULL && source != NULL)
            source_free(source);
        return NULL;
    }
    pthread_mutex_init(&f->lock, NULL);
    f->r = r;
    f->id = *id;
    f->size = id->size;
    f->block_count = ceil_div(f->size, r->block_size);
    f->fetch = fetch;
    f->source = source;
    f->source_free = source_free;
    f->refs = 1;
    f->window = r->block_size;
    pthread_mutex_lock(&r->lock);
    f->serial = ++r->next_serial;
    r->open_files++;
    pthread_mutex_unlock(&r->lock);
    return f;
}

void reader_close(reader_file *f)
{
    if (f == NULL)
        return;
    reader *r = f->r;
    pthread_mutex_lock(&r->lock);
    f->closed = true;
    bool fill_dropped = false;
    fetch_entry *e = r->oldest;
    while (e != NULL) {
        fetch_entry *newer = e->newer;
        if (e->state == FETCH_QUEUED && e->file == f) {
            fill_dropped = fill_dropped || e->fill;
            /* Read-ahead no worker has started. Never the file's last
             * reference: the handle's is still held. */
            table_remove(r, e);
            fetch_drop_file(e);
            fetch_release(r, e);
            r->unfinished--;
            pthread_cond_broadcast(&r->stores_done);
        } else if (e->resident && e->stored && e->refs == 0 &&
                   e->serial == f->serial) {
            /* Its read-ahead nobody read, already in the cache: the
             * memory goes back now. */
            table_remove(r, e);
            fetch_free(r, e);
        } else if (e->serial == f->serial) {
            e->orphan = true; /* the same once its store is done */
        }
        e = newer;
    }
    /* The fill stops with the descriptor that queued it; another one of
     * the object still reading at random starts it again. */
    if (fill_dropped)
        object_find(r, f)->filling = false;
    /* Nothing open: no fetch is coming to reuse the kept buffers. */
    if (--r->open_files == 0)
        r->inflight_bytes -= fetchbuf_drain(&r->buffers);
    bool dead = --f->refs == 0;
    pthread_mutex_unlock(&r->lock);
    if (dead)
        file_destroy(f);
}

bool reader_holds(reader *r, const blockcache_id *id, uint64_t block)
{
    if (r == NULL || id == NULL)
        return false;
    bool held = false;
    pthread_mutex_lock(&r->lock);
    for (fetch_entry *e = r->oldest; e != NULL && !held; e = e->newer)
        held = e->state != FETCH_QUEUED && fetch_covers(e, block) &&
               e->size == id->size &&
               memcmp(e->id.digest, id->digest, BLOCKCACHE_ID_SIZE) == 0;
    pthread_mutex_unlock(&r->lock);
    return held || cache_has(r, id, block);
}

void reader_get_stats(reader *r, reader_stats *out)
{
    const counters *s = &r->stats;
    out->fetches = atomic_load(&s->fetches);
    out->bytes_fetched = atomic_load(&s->bytes_fetched);
    out->bytes_from_cache = atomic_load(&s->bytes_from_cache);
    out->bytes_served = atomic_load(&s->bytes_served);
    out->readahead_blocks = atomic_load(&s->readahead_blocks);
    out->fetch_errors = atomic_load(&s->fetch_errors);
    out->fetch_waits = atomic_load(&s->fetch_waits);
    out->budget_waits = atomic_load(&s->budget_waits);
    out->uncacheable_fetches = atomic_load(&s->uncacheable_fetches);
    out->direct_fetches = atomic_load(&s->direct_fetches);
    out->buffers_mapped = atomic_load(&s->buffers_mapped);
    out->fill_blocks = atomic_load(&s->fill_blocks);
    warmer_get_stats(r->warm, &out->warm);
}

void reader_flush(reader *r)
{
    pthread_mutex_lock(&r->lock);
    while (r->stores_pending > 0 || r->unfinished > 0)
        pthread_cond_wait(&r->stores_done, &r->lock);
    pthread_mutex_unlock(&r->lock);
}

/* ---- reads handed on as descriptors (a splice to /dev/fuse) ---- */

int reader_pin(reader_file *f, uint64_t offset, size_t len,
               reader_piece *pieces, size_t max_pieces, size_t *pinned)
{
    *pinned = 0;
    if (f == NULL || (pieces == NULL && max_pieces > 0))
        return -EINVAL;
    reader *r = f->r;
    if (r->cache == NULL)
        return -ENOENT;
    if (offset >= f->size || len == 0)
        return 0;
    if (len > f->size - offset)
        len = (size_t)(f->size - offset);
    uint64_t end = offset + len;
    /* The index first (no file is read): a read the cache cannot answer
     * whole is left to reader_read before any hit is counted. */
    uint64_t last = (end - 1) / r->block_size;
    if (last - offset / r->block_size >= max_pieces)
        return -E2BIG;
    for (uint64_t b = offset / r->block_size; b <= last; b++)
        if (!cache_has(r, &f->id, b))
            return -ENOENT;
    /* Blocks fetched into memory (or being fetched) are served from there
     * by reader_read, which also lets their memory go once read to the
     * end: pinned from the files their store just wrote, they would be
     * read back from disk and stay held, unread, until the budget needs
     * them (and read-ahead may not evict them: it would stall). */
    pthread_mutex_lock(&r->lock);
    bool in_memory = false;
    for (uint64_t b = offset / r->block_size; b <= last && !in_memory; b++)
        in_memory = table_serves(r, f, b);
    pthread_mutex_unlock(&r->lock);
    if (in_memory)
        return -ENOENT;
    size_t n = 0;
    int rc = 0;
    for (uint64_t pos = offset; pos < end && rc == 0;) {
        uint64_t block = pos / r->block_size;
        uint64_t skip = pos % r->block_size;
        size_t want = (size_t)min_u64(
            block_bytes(r, f->size, block) - skip, end - pos);
        if (n == max_pieces) {
            rc = -E2BIG;
            break;
        }
        rc = blockcache_pin(r->cache, &f->id, block, skip, want,
                            &pieces[n].pin);
        if (rc == 0) {
            pieces[n++].len = want;
            pos += want;
        }
    }
    if (rc != 0) { /* all or nothing: the caller reads the usual way */
        while (n > 0)
            blockcache_unpin(r->cache, &pieces[--n].pin);
        return rc;
    }
    read_ctx c = {.f = f};
    bool sequential = plan_read(&c, offset, end);
    count(&r->stats.bytes_from_cache, len);
    count(&r->stats.bytes_served, len);
    if (sequential)
        schedule_readahead(f, end, 0);
    *pinned = n;
    return 0;
}

void reader_unpin(reader *r, reader_piece *pieces, size_t count)
{
    for (size_t i = 0; r != NULL && i < count; i++)
        blockcache_unpin(r->cache, &pieces[i].pin);
}
