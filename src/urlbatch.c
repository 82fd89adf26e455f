/*
 * urlbatch.c - presigned GET URLs in batches (urlbatch.h). Per directory
 * being read (a few, least recently used replaced) it keeps the URLs of a
 * contiguous run of the directory's objects, in key order, from one or
 * more presigned listObjects pages. A miss lists from the wanted key; a
 * hit in the last page (past its half, for pages under URLBATCH_EARLY)
 * has the next page (twice as large) fetched by the refill thread, so neither that reader nor the readers
 * behind it wait (a page of 512 presigned objects takes lakeFS 50-120 ms,
 * during which the thread that asked for it used to hold up its own GET,
 * and a program reaching that file waited for both). One fetch per
 * directory at a time; other threads wanting that directory wait for it.
 * Never holds its lock over a request.
 */
#include "urlbatch.h"

#include "threads.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define URLBATCH_DIRS 8
#define URLBATCH_FIRST 16
#define URLBATCH_MAX 1000 /* lakeFS's largest page */
#define URLBATCH_KEEP 2048 /* URLs kept per directory */
/* Pages at least this large have the next one asked for as soon as a
 * reader starts on them. */
#define URLBATCH_EARLY 64

typedef struct url_item {
    char *key;
    char *checksum;
    char *url; /* NULL: the server gave no http(s) URL */
    int64_t expiry;
    int64_t issued; /* when its page came */
} url_item;

typedef struct url_dir {
    char *repo; /* NULL: slot free */
    char *ref;
    char *prefix; /* "dir/", "" at the root */
    url_item *items; /* sorted; every object between the first and last */
    size_t count, cap;
    size_t run_start; /* the last page fetched: items[run_start..count) */
    bool more;        /* the directory goes on after the last item */
    int next_amount;
    bool busy; /* a fetch is in flight (or queued for the refill thread) */
    char *refill_after; /* queued for the refill thread: the page after */
    int refill_amount;
    uint64_t used;
} url_dir;

struct urlbatch {
    lakefs_client *client;
    pthread_mutex_t lock;
    pthread_cond_t fetched;
    pthread_cond_t refill_queued;
    pthread_t refiller; /* started at the first refill: after any fork */
    bool refiller_started;
    bool stopping;
    url_dir dirs[URLBATCH_DIRS];
    uint64_t clock;
    urlbatch_stats stats;
};

urlbatch *urlbatch_new(lakefs_client *client)
{
    urlbatch *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    u->client = client;
    pthread_mutex_init(&u->lock, NULL);
    pthread_cond_init(&u->fetched, NULL);
    pthread_cond_init(&u->refill_queued, NULL);
    return u;
}

static void item_free(url_item *it)
{
    free(it->key);
    free(it->checksum);
    free(it->url);
}

static void dir_clear_items(url_dir *d)
{
    for (size_t i = 0; i < d->count; i++)
        item_free(&d->items[i]);
    d->count = d->run_start = 0;
}

static void dir_free(url_dir *d)
{
    dir_clear_items(d);
    free(d->items);
    free(d->refill_after);
    free(d->repo);
    free(d->ref);
    free(d->prefix);
    memset(d, 0, sizeof(*d));
}

void urlbatch_free(urlbatch *u)
{
    if (!u)
        return;
    pthread_mutex_lock(&u->lock);
    u->stopping = true; /* pages queued and not started are not fetched */
    pthread_cond_broadcast(&u->refill_queued);
    bool started = u->refiller_started;
    pthread_mutex_unlock(&u->lock);
    if (started)
        pthread_join(u->refiller, NULL);
    for (size_t i = 0; i < URLBATCH_DIRS; i++)
        dir_free(&u->dirs[i]);
    pthread_cond_destroy(&u->refill_queued);
    pthread_cond_destroy(&u->fetched);
    pthread_mutex_destroy(&u->lock);
    free(u);
}

void urlbatch_get_stats(urlbatch *u, urlbatch_stats *out)
{
    pthread_mutex_lock(&u->lock);
    *out = u->stats;
    pthread_mutex_unlock(&u->lock);
}

static url_dir *find_dir(urlbatch *u, const char *repo, const char *ref,
                         const char *prefix)
{
    for (size_t i = 0; i < URLBATCH_DIRS; i++) {
        url_dir *d = &u->dirs[i];
        if (d->repo && strcmp(d->repo, repo) == 0 &&
            strcmp(d->ref, ref) == 0 && strcmp(d->prefix, prefix) == 0)
            return d;
    }
    return NULL;
}

/* A free slot or the least recently used one not being fetched; NULL when
 * every slot is being fetched (the caller waits) or on ENOMEM (*oom). */
static url_dir *take_dir(urlbatch *u, const char *repo, const char *ref,
                         const char *prefix, bool *oom)
{
    url_dir *best = NULL;
    for (size_t i = 0; i < URLBATCH_DIRS; i++) {
        url_dir *d = &u->dirs[i];
        if (!d->repo) {
            best = d;
            break;
        }
        if (!d->busy && (!best || d->used < best->used))
            best = d;
    }
    if (!best)
        return NULL;
    dir_free(best);
    best->repo = strdup(repo);
    best->ref = strdup(ref);
    best->prefix = strdup(prefix);
    if (!best->repo || !best->ref || !best->prefix) {
        dir_free(best);
        *oom = true;
        return NULL;
    }
    best->next_amount = URLBATCH_FIRST;
    return best;
}

/* Index of key in d, or -1. */
static ssize_t find_item(const url_dir *d, const char *key)
{
    size_t lo = 0, hi = d->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(d->items[mid].key, key);
        if (c == 0)
            return (ssize_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* The largest string below key that a listing "after" it still includes
 * key from: key without its last character (a whole UTF-8 sequence). */
static char *before(const char *key)
{
    size_t n = strlen(key);
    while (n > 0 && ((unsigned char)key[n - 1] & 0xC0) == 0x80)
        n--;
    if (n > 0)
        n--;
    return strndup(key, n);
}

/* One presigned page of the directory after `after`. */
static int fetch_page(urlbatch *u, const url_dir *d, const char *after,
                      int amount, lakefs_object_list *page,
                      lakefs_error *err)
{
    lakefs_list_params p = {.prefix = d->prefix, .after = after,
                            .delimiter = "/", .amount = amount,
                            .presign = true, .no_user_metadata = true};
    memset(page, 0, sizeof(*page));
    return lakefs_list_objects(u->client, d->repo, d->ref, &p, page, err);
}

static bool is_http_url(const lakefs_object_stats *st)
{
    return st->physical_address && st->physical_address_expiry > 0 &&
           (strncmp(st->physical_address, "http://", 7) == 0 ||
            strncmp(st->physical_address, "https://", 8) == 0);
}

/* Appends the page's objects (after every item of d, in key order: a
 * listing is sorted) to d, moving their strings out of the page. */
static int append_page(url_dir *d, lakefs_object_list *page)
{
    int64_t now = (int64_t)time(NULL);
    if (d->count + page->count > d->cap) {
        size_t cap = d->cap ? d->cap : 64;
        while (cap < d->count + page->count)
            cap *= 2;
        url_item *grown = realloc(d->items, cap * sizeof(*grown));
        if (!grown)
            return -ENOMEM;
        d->items = grown;
        d->cap = cap;
    }
    d->run_start = d->count;
    for (size_t i = 0; i < page->count; i++) {
        lakefs_object_stats *st = &page->items[i];
        if (st->path_type != LAKEFS_PATH_OBJECT || !st->path)
            continue;
        if (d->count && strcmp(st->path, d->items[d->count - 1].key) <= 0)
            continue; /* out of order: not trusted to be contiguous */
        url_item *it = &d->items[d->count++];
        memset(it, 0, sizeof(*it));
        it->key = st->path;
        st->path = NULL;
        it->checksum = st->checksum ? st->checksum : strdup("");
        st->checksum = NULL;
        if (is_http_url(st)) {
            it->url = st->physical_address;
            st->physical_address = NULL;
            it->expiry = st->physical_address_expiry;
            it->issued = now;
        }
        if (!it->checksum) {
            item_free(it);
            d->count--;
            return -ENOMEM;
        }
    }
    d->more = page->pagination.has_more;
    /* Bounded: the oldest URLs go first. */
    if (d->count > URLBATCH_KEEP) {
        size_t drop = d->count - URLBATCH_KEEP;
        for (size_t i = 0; i < drop; i++)
            item_free(&d->items[i]);
        memmove(d->items, d->items + drop,
                (d->count - drop) * sizeof(*d->items));
        d->count -= drop;
        d->run_start = d->run_start > drop ? d->run_start - drop : 0;
    }
    return 0;
}

static int next_amount(int amount)
{
    return amount * 2 > URLBATCH_MAX ? URLBATCH_MAX : amount * 2;
}

/* Under the lock: the answer for key from d, or 1 when d cannot answer
 * (not there, another checksum, expiring): ask the server. Expiring is
 * under margin_s of life left, or under half of the life the server gave
 * it when that is shorter than the margin: a server signing URLs for
 * less than the margin would otherwise have every reader of the
 * directory list it again, for URLs no fresher than those it holds. */
static int answer(urlbatch *u, const url_dir *d, ssize_t i,
                  const char *checksum, int margin_s, char **url,
                  int64_t *expiry)
{
    if (i < 0)
        return 1;
    const url_item *it = &d->items[i];
    if (strcmp(it->checksum, checksum) != 0)
        return 1;
    if (!it->url)
        return -EPROTO;
    int64_t need = margin_s, half_life = (it->expiry - it->issued) / 2;
    if (half_life < need)
        need = half_life;
    if (it->expiry - (int64_t)time(NULL) < need)
        return 1;
    *url = strdup(it->url);
    if (!*url)
        return -ENOMEM;
    *expiry = it->expiry;
    u->stats.urls++;
    return 0;
}

/* The next page after d's last item, fetched by this thread (d->busy set
 * by the caller); errors are ignored: a later miss asks again. */
static void refill(urlbatch *u, url_dir *d, char *after, int amount)
{
    lakefs_object_list page;
    lakefs_error err = {0};
    int rc = fetch_page(u, d, after, amount, &page, &err);
    pthread_mutex_lock(&u->lock);
    u->stats.batches++;
    bool contiguous =
        d->count && strcmp(d->items[d->count - 1].key, after) == 0;
    if (rc == 0 && contiguous && append_page(d, &page) == 0)
        d->next_amount = next_amount(amount);
    d->busy = false;
    pthread_cond_broadcast(&u->fetched);
    pthread_mutex_unlock(&u->lock);
    lakefs_object_list_free(&page);
    free(after);
}

/* The refill thread: fetches each queued next page (urlbatch_get queues
 * at most one per directory, with d->busy set) in turn. */
static void *refiller_main(void *arg)
{
    urlbatch *u = arg;
    pthread_mutex_lock(&u->lock);
    for (;;) {
        url_dir *d = NULL;
        for (size_t i = 0; i < URLBATCH_DIRS && !d; i++)
            if (u->dirs[i].refill_after)
                d = &u->dirs[i];
        if (d && u->stopping) { /* not fetched: a later miss asks */
            free(d->refill_after);
            d->refill_after = NULL;
            d->busy = false;
            pthread_cond_broadcast(&u->fetched);
            continue;
        }
        if (!d) {
            if (u->stopping)
                break;
            pthread_cond_wait(&u->refill_queued, &u->lock);
            continue;
        }
        char *after = d->refill_after;
        int amount = d->refill_amount;
        d->refill_after = NULL;
        pthread_mutex_unlock(&u->lock);
        refill(u, d, after, amount); /* frees after, clears d->busy */
        pthread_mutex_lock(&u->lock);
    }
    pthread_mutex_unlock(&u->lock);
    return NULL;
}

/* Under the lock, with d->busy set: hands the page after `after` to the
 * refill thread (started now if need be). false when no thread could be
 * started: the caller fetches it itself. */
static bool queue_refill(urlbatch *u, url_dir *d, char *after, int amount)
{
    if (!u->refiller_started) {
        if (u->stopping ||
            thread_start_masked(&u->refiller, refiller_main, u) != 0)
            return false;
        u->refiller_started = true;
    }
    d->refill_after = after;
    d->refill_amount = amount;
    pthread_cond_signal(&u->refill_queued);
    return true;
}

/* Whether from is a key of d's directory before key: where a listing for
 * key may start (urlbatch_get's list_from). */
static bool starts_before(const url_dir *d, const char *from, const char *key)
{
    size_t n = strlen(d->prefix);
    return from && strncmp(from, d->prefix, n) == 0 && from[n] &&
           !strchr(from + n, '/') && strcmp(from, key) < 0;
}

/* Under the lock, on a miss: lists the directory from key, or from
 * list_from before it (d->busy set by the caller), replacing what d held,
 * then answers from it. */
static int fetch_from(urlbatch *u, url_dir *d, const char *key,
                      const char *list_from, const char *checksum,
                      char **url, int64_t *expiry, lakefs_error *err)
{
    /* Reading on past the end of what d holds: a larger page. */
    bool onward = d->count && d->more &&
                  strcmp(key, d->items[d->count - 1].key) > 0;
    int amount = onward ? d->next_amount : URLBATCH_FIRST;
    const char *start =
        !onward && starts_before(d, list_from, key) ? list_from : key;
    lakefs_object_list page;
    int rc;
    for (;;) {
        char *after = before(start);
        memset(&page, 0, sizeof(page));
        pthread_mutex_unlock(&u->lock);
        rc = after ? fetch_page(u, d, after, amount, &page, err) : -ENOMEM;
        free(after);
        pthread_mutex_lock(&u->lock);
        u->stats.batches++;
        if (rc == 0) {
            dir_clear_items(d);
            rc = append_page(d, &page);
            d->next_amount = next_amount(amount);
        }
        /* A page from list_from that ends before key: again from key. */
        bool short_of_key = rc == 0 && start != key && d->more &&
                            (!d->count ||
                             strcmp(d->items[d->count - 1].key, key) < 0);
        if (!short_of_key)
            break;
        lakefs_object_list_free(&page);
        start = key;
    }
    d->busy = false;
    pthread_cond_broadcast(&u->fetched);
    if (rc == 0) {
        ssize_t i = find_item(d, key);
        if (i < 0)
            rc = -ENOENT;
        else if (strcmp(d->items[i].checksum, checksum) != 0)
            rc = -ESTALE;
        else
            rc = answer(u, d, i, checksum, 0, url, expiry);
    }
    lakefs_object_list_free(&page);
    return rc;
}

int urlbatch_get(urlbatch *u, const char *repo, const char *ref,
                 const char *key, const char *list_from,
                 const char *checksum, int margin_s, char **url,
                 int64_t *expiry, lakefs_error *err)
{
    *url = NULL;
    const char *slash = strrchr(key, '/');
    char *prefix = strndup(key, slash ? (size_t)(slash - key) + 1 : 0);
    if (!prefix)
        return -ENOMEM;
    checksum = checksum ? checksum : "";
    int rc;
    pthread_mutex_lock(&u->lock);
    for (;;) {
        url_dir *d = find_dir(u, repo, ref, prefix);
        if (d) {
            d->used = ++u->clock;
            ssize_t i = find_item(d, key);
            rc = answer(u, d, i, checksum, margin_s, url, expiry);
            if (rc <= 0) {
                /* Into the last page: the next one is queued now, so it
                 * comes before the reader reaches it (the page is twice
                 * as large and lakeFS signs each URL: a page of 512 took
                 * 100-300 ms on the loaded benchmark machine, longer
                 * than reading half of a page of 256 files). Past half
                 * of a page under URLBATCH_EARLY, so that a program
                 * reading a few files costs one page. */
                size_t run = d->count - d->run_start;
                size_t at = run >= URLBATCH_EARLY ? 0 : run / 2;
                bool ahead = rc == 0 && !d->busy && d->more &&
                             (size_t)i >= d->run_start + at;
                char *after = ahead ? strdup(d->items[d->count - 1].key)
                                    : NULL;
                if (after)
                    d->busy = true;
                int amount = d->next_amount;
                if (after && queue_refill(u, d, after, amount))
                    after = NULL; /* the refill thread's now */
                pthread_mutex_unlock(&u->lock);
                if (after)
                    refill(u, d, after, amount);
                free(prefix);
                return rc;
            }
            if (d->busy) {
                pthread_cond_wait(&u->fetched, &u->lock);
                continue;
            }
        } else {
            bool oom = false;
            d = take_dir(u, repo, ref, prefix, &oom);
            if (oom) {
                rc = -ENOMEM;
                break;
            }
            if (!d) {
                pthread_cond_wait(&u->fetched, &u->lock);
                continue;
            }
        }
        d->busy = true;
        d->used = ++u->clock;
        rc = fetch_from(u, d, key, list_from, checksum, url, expiry, err);
        break;
    }
    pthread_mutex_unlock(&u->lock);
    free(prefix);
    return rc;
}
