/*
 * fs_times.c - sub-second mtimes, atimes and ctimes that lakeFS cannot
 * store, per object key, in a chained hash table under one lock. Entries
 * are made only by attribute changes and by changes of a directory's
 * entries, so the table stays as small as the set of paths a program
 * touched with chmod, chown or utimens and of directories it created or
 * removed names in; until then a stat costs one atomic load. The table
 * holds at most max_entries (FS_TIMES_MAX_ENTRIES by default): beyond
 * that the least recently changed paths are forgotten, and show the
 * times lakeFS holds (whole seconds; atime = ctime = mtime).
 */
#include "fs_times.h"
#include "chainhash.h"
#include "dlist.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The table's first size; it doubles whenever it holds more entries
 * than buckets, so a lookup stays one short chain however many paths a
 * mount touched (a `tar x` sets the times of every file it makes). */
#define FS_TIMES_MIN_BUCKETS 1024

typedef struct times_entry {
    char *id; /* repo \x1f ref \x1f key */
    struct timespec atime, mtime, ctime;
    struct timespec touched; /* a directory's entries changed (mtime) */
    bool has_atime, has_mtime, has_touched;
    struct times_entry *next;           /* in its bucket */
    struct times_entry *newer, *older;  /* by last change */
} times_entry;

struct fs_times {
    pthread_mutex_t lock;
    atomic_size_t count;
    size_t max_entries;
    size_t n_buckets; /* a power of 2 */
    times_entry **buckets;
    times_entry *newest, *oldest;
    uint64_t evicted;
};

fs_times *fs_times_new(size_t max_entries)
{
    fs_times *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->n_buckets = FS_TIMES_MIN_BUCKETS;
    t->buckets = calloc(t->n_buckets, sizeof(*t->buckets));
    if (!t->buckets) {
        free(t);
        return NULL;
    }
    t->max_entries = max_entries ? max_entries : FS_TIMES_MAX_ENTRIES;
    pthread_mutex_init(&t->lock, NULL);
    return t;
}

void fs_times_free(fs_times *t)
{
    if (!t)
        return;
    times_entry *e = t->newest;
    while (e) {
        times_entry *older = e->older;
        free(e->id);
        free(e);
        e = older;
    }
    free(t->buckets);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static char *make_id(const char *repo, const char *ref, const char *key)
{
    char *id = NULL;
    if (asprintf(&id, "%s\x1f%s\x1f%s", repo, ref, key) < 0)
        return NULL;
    return id;
}

static uint64_t hash_of(const char *id)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

static times_entry **bucket_of(fs_times *t, const char *id)
{
    return &t->buckets[hash_of(id) & (t->n_buckets - 1)];
}

/* The entry of id, or NULL; *link (may be NULL) the pointer to it. */
static times_entry *find_locked(fs_times *t, const char *id,
                                times_entry ***link)
{
    times_entry **p = bucket_of(t, id);
    for (; *p; p = &(*p)->next)
        if (strcmp((*p)->id, id) == 0)
            break;
    if (link)
        *link = p;
    return *p;
}

/* ---- order of last change ---- */

static void order_unlink(fs_times *t, times_entry *e)
{
    DLIST_UNLINK(t->newest, t->oldest, e, newer, older);
}

static void order_push_newest(fs_times *t, times_entry *e)
{
    DLIST_PUSH_FIRST(t->newest, t->oldest, e, newer, older);
}

/* e changed now: it is the last the bound would forget. */
static void order_touch(fs_times *t, times_entry *e)
{
    if (t->newest != e) {
        order_unlink(t, e);
        order_push_newest(t, e);
    }
}

/* Under t->lock: e, already out of its bucket, is freed. */
static void drop_locked(fs_times *t, times_entry *e)
{
    order_unlink(t, e);
    free(e->id);
    free(e);
    atomic_fetch_sub(&t->count, 1);
}

/* Under t->lock: twice the buckets once the table holds more entries than
 * it has buckets (best effort: without memory the chains grow). */
static void grow_locked(fs_times *t)
{
    size_t n = t->n_buckets * 2;
    times_entry **b = calloc(n, sizeof(*b));
    if (!b)
        return;
    CHAIN_REHASH(times_entry, e, next, t->buckets, t->n_buckets, b,
                 hash_of(e->id) & (n - 1));
    free(t->buckets);
    t->buckets = b;
    t->n_buckets = n;
}

/* Under t->lock: the least recently changed entries beyond the bound go
 * (their paths then show the times lakeFS holds: whole seconds). */
static void evict_locked(fs_times *t)
{
    while (atomic_load(&t->count) > t->max_entries && t->oldest) {
        times_entry *e = t->oldest, **link;
        if (find_locked(t, e->id, &link) == e)
            *link = e->next;
        drop_locked(t, e);
        t->evicted++;
    }
}

/* Under t->lock: id's entry, made when it has none (taking *id, which is
 * then NULL), as the most recently changed; NULL without memory. */
static times_entry *get_locked(fs_times *t, char **id)
{
    times_entry **link;
    times_entry *e = find_locked(t, *id, &link);
    if (e) {
        order_touch(t, e);
        return e;
    }
    if ((e = calloc(1, sizeof(*e))) == NULL)
        return NULL;
    e->id = *id;
    *id = NULL;
    *link = e;
    order_push_newest(t, e);
    if (atomic_fetch_add(&t->count, 1) + 1 > t->n_buckets)
        grow_locked(t);
    evict_locked(t); /* never e: it is the newest */
    return e;
}

void fs_times_get_stats(fs_times *t, fs_times_stats *out)
{
    pthread_mutex_lock(&t->lock);
    out->entries = atomic_load(&t->count);
    out->evicted = t->evicted;
    pthread_mutex_unlock(&t->lock);
}

bool fs_times_idle(fs_times *t)
{
    return atomic_load(&t->count) == 0;
}

int fs_times_change(fs_times *t, const char *repo, const char *ref,
                    const char *key, const struct timespec *atime,
                    const struct timespec *mtime)
{
    char *id = make_id(repo, ref, key);
    if (!id)
        return -ENOMEM;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    pthread_mutex_lock(&t->lock);
    times_entry *e = get_locked(t, &id);
    if (e) {
        e->ctime = now;
        if (atime) {
            e->atime = *atime;
            e->has_atime = true;
        }
        if (mtime) {
            e->mtime = *mtime;
            e->has_mtime = true;
            /* an mtime set explicitly replaces the one its entries'
             * changes gave a directory (touch -d after filling it) */
            e->has_touched = false;
        }
    }
    pthread_mutex_unlock(&t->lock);
    free(id);
    return e ? 0 : -ENOMEM;
}

int fs_times_touch(fs_times *t, const char *repo, const char *ref,
                   const char *key)
{
    char *id = make_id(repo, ref, key);
    if (!id)
        return -ENOMEM;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    pthread_mutex_lock(&t->lock);
    times_entry *e = get_locked(t, &id);
    if (e) {
        e->ctime = e->touched = now;
        e->has_touched = true;
    }
    pthread_mutex_unlock(&t->lock);
    free(id);
    return e ? 0 : -ENOMEM;
}

/* Under t->lock: e, out of its bucket, takes new_id (NULL: e goes) and
 * replaces whatever that name had. */
static void rename_locked(fs_times *t, times_entry *e, char *new_id)
{
    times_entry **link;
    times_entry *old = new_id ? find_locked(t, new_id, &link) : NULL;
    if (old) {
        *link = old->next;
        drop_locked(t, old);
    }
    if (!new_id) {
        drop_locked(t, e);
        return;
    }
    free(e->id);
    e->id = new_id;
    times_entry **head = bucket_of(t, e->id);
    e->next = *head;
    *head = e;
}

void fs_times_move(fs_times *t, const char *repo, const char *ref,
                   const char *key, const char *new_key)
{
    if (atomic_load(&t->count) == 0)
        return;
    char *id = make_id(repo, ref, key);
    char *new_id = new_key ? make_id(repo, ref, new_key) : NULL;
    pthread_mutex_lock(&t->lock);
    times_entry **link;
    times_entry *e = id ? find_locked(t, id, &link) : NULL;
    if (e) {
        *link = e->next;
        if (new_id) {
            clock_gettime(CLOCK_REALTIME, &e->ctime); /* a rename */
            order_touch(t, e);
        }
        rename_locked(t, e, new_id);
        new_id = NULL;
    }
    pthread_mutex_unlock(&t->lock);
    free(new_id);
    free(id);
}

void fs_times_move_dir(fs_times *t, const char *repo, const char *ref,
                       const char *key, const char *new_key)
{
    if (atomic_load(&t->count) == 0)
        return;
    char *id = make_id(repo, ref, key);
    if (!id)
        return;
    size_t len = strlen(id);
    /* Collected first: re-linking while walking the buckets could visit
     * a moved entry twice. */
    times_entry *moved = NULL;
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->n_buckets; i++) {
        times_entry **p = &t->buckets[i];
        while (*p) {
            times_entry *e = *p;
            if (strncmp(e->id, id, len) == 0 &&
                (e->id[len] == '\0' || e->id[len] == '/')) {
                *p = e->next;
                e->next = moved;
                moved = e;
            } else {
                p = &e->next;
            }
        }
    }
    while (moved) {
        times_entry *e = moved;
        moved = e->next;
        char *new_id = NULL;
        if (new_key && asprintf(&new_id, "%s\x1f%s\x1f%s%s", repo, ref,
                                new_key, e->id + len) < 0)
            new_id = NULL;
        rename_locked(t, e, new_id);
    }
    pthread_mutex_unlock(&t->lock);
    free(id);
}

void fs_times_apply(fs_times *t, const char *repo, const char *ref,
                    const char *key, struct stat *st)
{
    if (atomic_load(&t->count) == 0)
        return;
    char *id = make_id(repo, ref, key);
    if (!id)
        return;
    pthread_mutex_lock(&t->lock);
    const times_entry *e = find_locked(t, id, NULL);
    if (e) {
        if (e->has_mtime && e->mtime.tv_sec == st->st_mtim.tv_sec)
            st->st_mtim = e->mtime;
        if (e->has_touched && S_ISDIR(st->st_mode) &&
            (e->touched.tv_sec > st->st_mtim.tv_sec ||
             (e->touched.tv_sec == st->st_mtim.tv_sec &&
              e->touched.tv_nsec > st->st_mtim.tv_nsec)))
            st->st_mtim = e->touched;
        if (e->has_atime)
            st->st_atim = e->atime;
        if (e->ctime.tv_sec > st->st_mtim.tv_sec ||
            (e->ctime.tv_sec == st->st_mtim.tv_sec &&
             e->ctime.tv_nsec > st->st_mtim.tv_nsec))
            st->st_ctim = e->ctime;
        else
            st->st_ctim = st->st_mtim;
    }
    pthread_mutex_unlock(&t->lock);
    free(id);
}
