/*
 * flatwalk.c - a walk's directory listings from one flat listing of their
 * parent's subtree, and the page iterator of every listObjects walk. A
 * directory's listing is stored only once every key of its range has come;
 * the pages stop as soon as they cost more than one listing each would.
 *
 * A walk (find, du, ls -R, rsync) reads a directory D, then asks for the
 * listing of each of its subdirectories. The first such listing that is
 * not cached, when D was read by readdir and at least two of D's
 * subdirectories from this one on are not cached, is fetched as one flat
 * listing of D's subtree (no delimiter, FLATWALK_PAGE_AMOUNT keys a page)
 * from this subdirectory on. Keys come in order, so a directory is
 * complete once a key past its range, or the last page, has come: its
 * listing is built as the delimited listing's would be (the config's
 * build) and cached. The fetch stops after as many pages as D's uncached
 * subdirectories from there on (what one listing each would have cost),
 * and as soon as the pages taken outnumber what one listing each would
 * have cost for what they brought (a page per subdirectory of D
 * completed, plus the full pages of entries of the one still open); what
 * it did not complete is then listed one directory at a time, as before.
 * One flat listing per readdir of D (again only once its listings may
 * have expired). A lookup or an ls of one directory never starts one.
 */
#include "flatwalk.h"

#include "listing.h"
#include "threads.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_SEPARATOR "\x1f"
/* Directories recently read by readdir: a walk reads a directory, then
 * lists its subdirectories. */
#define WALKED_MAX 64

/* ---- the pages of one listObjects walk ---- */

int object_pages_init(object_pages *it, lakefs_client *c, const tree_ref *ref,
                      const lakefs_list_params *p, uint64_t max_items)
{
    memset(it, 0, sizeof(*it));
    it->client = c;
    it->ref = ref;
    it->params = *p;
    lakefs_pager_init(&it->pager, true, max_items);
    if (p->after) {
        it->pager.after = strdup(p->after);
        if (!it->pager.after)
            return -ENOMEM;
    }
    return 0;
}

/* The next page, asked for in a thread of its own while the current one
 * is parsed. Owns its copies of the parameters: the walk that asked may
 * move (to a background thread) meanwhile. */
struct page_ahead {
    pthread_t thread;
    lakefs_client *client;
    char *repo, *api_ref;
    lakefs_list_params params;
    char *prefix, *delimiter, *after;
    int rc;
    char *body;
    size_t len;
    lakefs_error err;
};

static void *ahead_main(void *arg)
{
    page_ahead *a = arg;
    a->rc = lakefs_list_objects_body(a->client, a->repo, a->api_ref,
                                     &a->params, &a->body, &a->len, &a->err);
    return NULL;
}

static void ahead_free(page_ahead *a)
{
    free(a->repo);
    free(a->api_ref);
    free(a->prefix);
    free(a->delimiter);
    free(a->after);
    free(a->body);
    free(a);
}

static char *dup_or_null(const char *s, bool *oom)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *oom = true;
    return d;
}

/* Asks for the page after `after` in a thread; nothing when it cannot
 * start (the page is then asked for when it is wanted, as without). */
static void ahead_start(object_pages *it, const char *after)
{
    page_ahead *a = calloc(1, sizeof(*a));
    if (!a)
        return;
    bool oom = false;
    a->client = it->client;
    a->repo = dup_or_null(it->ref->repo, &oom);
    a->api_ref = dup_or_null(it->ref->api_ref, &oom);
    a->params = it->params;
    a->prefix = dup_or_null(it->params.prefix, &oom);
    a->delimiter = dup_or_null(it->params.delimiter, &oom);
    a->after = dup_or_null(after, &oom);
    a->params.prefix = a->prefix;
    a->params.delimiter = a->delimiter;
    a->params.after = a->after;
    if (oom || thread_start_masked(&a->thread, ahead_main, a) != 0) {
        ahead_free(a);
        return;
    }
    it->ahead = a;
}

/* Waits for the page asked for ahead: its result, or (body NULL) nothing
 * when it was not for `after` (then it is dropped: asked for in vain). */
static int ahead_join(object_pages *it, const char *after, char **body,
                      size_t *len)
{
    page_ahead *a = it->ahead;
    it->ahead = NULL;
    pthread_join(a->thread, NULL);
    *body = NULL;
    *len = 0;
    int rc = 0;
    if (after && a->after && strcmp(after, a->after) == 0) {
        rc = a->rc;
        if (rc)
            it->err = a->err;
        *body = a->body;
        *len = a->len;
        a->body = NULL;
    }
    ahead_free(a);
    return rc;
}

/* Starts the next page now when sure says it will be taken and this
 * body's pagination (read ahead of its parse) says there is one. */
static void maybe_ahead(object_pages *it, const char *body, size_t len,
                        object_pages_sure_fn sure, void *ctx)
{
    lakefs_pagination peek;
    if (!sure || lakefs_peek_pagination(body, len, &peek) != 0)
        return;
    /* What lakefs_pager_next will accept: anything else ends the pages. */
    const char *after = it->pager.after;
    if (peek.has_more && peek.results > 0 && peek.next_offset[0] &&
        !(it->end && strcmp(peek.next_offset, it->end) >= 0) &&
        (!after || strcmp(peek.next_offset, after) > 0) &&
        (!it->pager.max_items ||
         it->pager.items + (uint64_t)peek.results < it->pager.max_items) &&
        sure(ctx, it->pager.pages + 1))
        ahead_start(it, peek.next_offset);
    free(peek.next_offset);
}

int object_pages_next_ahead(object_pages *it, lakefs_object_list *page,
                            object_pages_sure_fn sure, void *ctx)
{
    memset(page, 0, sizeof(*page));
    if (it->pager.done)
        return 0;
    char *body = NULL;
    size_t len = 0;
    int rc = 0;
    if (it->ahead)
        rc = ahead_join(it, it->pager.after, &body, &len);
    if (rc == 0 && !body) {
        it->params.after = it->pager.after;
        rc = lakefs_list_objects_body(it->client, it->ref->repo,
                                      it->ref->api_ref, &it->params, &body,
                                      &len, &it->err);
    }
    if (rc)
        return rc;
    maybe_ahead(it, body, len, sure, ctx);
    rc = lakefs_list_objects_parse(it->client, body, len, page, &it->err);
    free(body);
    if (rc)
        return rc;
    rc = lakefs_pager_next(&it->pager, &page->pagination, page->count,
                           &it->err);
    if (rc) {
        lakefs_object_list_free(page);
        return rc;
    }
    return 1;
}

int object_pages_next(object_pages *it, lakefs_object_list *page)
{
    return object_pages_next_ahead(it, page, NULL, NULL);
}

void object_pages_free(object_pages *it)
{
    if (it->ahead) {
        char *body;
        size_t len;
        ahead_join(it, NULL, &body, &len);
    }
    lakefs_pager_free(&it->pager);
}

void object_items_free(lakefs_object_stats *items, size_t count)
{
    for (size_t i = 0; i < count; i++)
        lakefs_object_stats_free(&items[i]);
    free(items);
}

/* ---- the directories readdir read ---- */

typedef struct walked_dir {
    char *key;           /* cache key "\x1f" dir */
    int64_t tried_at_ms; /* its last flat listing; 0: none yet */
} walked_dir;

typedef struct flat_bg flat_bg;

struct flatwalk {
    flatwalk_config cfg;
    pthread_mutex_t lock; /* walked, background, each flat_bg's progress */
    pthread_cond_t progressed; /* a background walk took a page or ended */
    walked_dir walked[WALKED_MAX];
    size_t next_walked;
    flat_bg *background; /* flat listings going on after their answer */
    bool stopping;       /* flatwalk_quiesce: no page more */
};

flatwalk *flatwalk_new(const flatwalk_config *cfg)
{
    flatwalk *fw = calloc(1, sizeof(*fw));
    if (!fw)
        return NULL;
    fw->cfg = *cfg;
    pthread_mutex_init(&fw->lock, NULL);
    pthread_cond_init(&fw->progressed, NULL);
    return fw;
}

static void reap_background(flatwalk *fw, bool all);

void flatwalk_quiesce(flatwalk *fw)
{
    if (!fw)
        return;
    pthread_mutex_lock(&fw->lock);
    fw->stopping = true;
    pthread_mutex_unlock(&fw->lock);
    reap_background(fw, true);
    pthread_mutex_lock(&fw->lock);
    fw->stopping = false;
    pthread_mutex_unlock(&fw->lock);
}

void flatwalk_free(flatwalk *fw)
{
    if (!fw)
        return;
    flatwalk_quiesce(fw);
    for (size_t i = 0; i < WALKED_MAX; i++)
        free(fw->walked[i].key);
    pthread_cond_destroy(&fw->progressed);
    pthread_mutex_destroy(&fw->lock);
    free(fw);
}

/* A new string, or NULL when out of memory. */
__attribute__((format(printf, 1, 2))) static char *
format_string(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int rc = vasprintf(&s, fmt, ap);
    va_end(ap);
    return rc < 0 ? NULL : s;
}

static char *walked_key(const tree_ref *ref, const char *dir)
{
    return format_string("%s" KEY_SEPARATOR "%s", ref->cache_key, dir);
}

void flatwalk_note_read(flatwalk *fw, const tree_ref *ref, const char *dir)
{
    char *key = walked_key(ref, dir);
    if (!key)
        return; /* only an optimisation is lost */
    pthread_mutex_lock(&fw->lock);
    bool known = false;
    for (size_t i = 0; i < WALKED_MAX && !known; i++)
        known = fw->walked[i].key && strcmp(fw->walked[i].key, key) == 0;
    if (known) {
        free(key);
    } else {
        walked_dir *slot = &fw->walked[fw->next_walked];
        fw->next_walked = (fw->next_walked + 1) % WALKED_MAX;
        free(slot->key);
        *slot = (walked_dir){.key = key};
    }
    pthread_mutex_unlock(&fw->lock);
}

/* true (and noted) when a flat listing of dir may start now. */
static bool claim_walked(flatwalk *fw, const tree_ref *ref, const char *dir)
{
    char *key = walked_key(ref, dir);
    if (!key)
        return false;
    int64_t now = listings_now_ms();
    int64_t ttl_ms = fw->cfg.ttl_ms;
    bool claimed = false;
    pthread_mutex_lock(&fw->lock);
    for (size_t i = 0; i < WALKED_MAX; i++) {
        walked_dir *w = &fw->walked[i];
        if (!w->key || strcmp(w->key, key) != 0)
            continue;
        claimed = w->tried_at_ms == 0 ||
                  (ttl_ms > 0 && now - w->tried_at_ms >= ttl_ms);
        if (claimed)
            w->tried_at_ms = now ? now : 1;
        break;
    }
    pthread_mutex_unlock(&fw->lock);
    free(key);
    return claimed;
}

/* ---- one flat listing ---- */

/* The names of D's subdirectories from `from` on (name order). */
typedef struct subdir_names {
    const char *from;
    char **names;
    size_t n, cap;
    int rc;
} subdir_names;

static int collect_subdir(void *ctx, const fs_entry *e)
{
    subdir_names *s = ctx;
    if (!e->is_dir || strcmp(e->name, TREE_MARKER_NAME) == 0 ||
        strcmp(e->name, s->from) < 0)
        return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **grown = realloc(s->names, cap * sizeof(*grown));
        if (!grown)
            return s->rc = -ENOMEM;
        s->names = grown;
        s->cap = cap;
    }
    s->names[s->n] = strdup(e->name);
    if (!s->names[s->n])
        return s->rc = -ENOMEM;
    s->n++;
    return 0;
}

/* A directory of the subtree whose range the pages are in. */
typedef struct flat_dir {
    char *prefix; /* its key prefix, ending in '/' */
    lakefs_object_stats *items; /* as its delimited listing would give */
    size_t n, cap;
    bool skip; /* unreachable (a name that is not a POSIX name), or more
                  than max_dir_entries: left to a listing of its own */
} flat_dir;

typedef struct flat_walk {
    flatwalk *fw;
    const listing_source *src; /* the directory asked for (in the
                                  background: bg->src, a copy) */
    const char *want;          /* its key prefix */
    size_t base_len;           /* the ref's prefix: cache dirs lack it */
    flat_dir *stack;           /* [0] is D, whose listing is cached */
    size_t depth, cap;
    char *last;                /* the previous key */
    uint64_t generation;
    size_t children_done;      /* of D, complete and stored */
    size_t stored;
    fs_entry *want_entries;
    size_t want_n;
    bool want_done;
    /* A walk split into streams (flat_split): the keys of this one's range
     * are from lo (NULL: the first key asked for) to before end (NULL: the
     * last key of the subtree); ended: a key from end on has come. Not the
     * walk's to free. */
    const char *lo, *end;
    bool ended;
} flat_walk;

static void flat_dir_free(flat_dir *d)
{
    free(d->prefix);
    object_items_free(d->items, d->n);
    memset(d, 0, sizeof(*d));
}

static int flat_add(flat_walk *w, flat_dir *d, lakefs_object_stats *item)
{
    if (!d->skip && d->n >= w->fw->cfg.max_dir_entries) {
        d->skip = true; /* its own listing reports it */
        object_items_free(d->items, d->n);
        d->items = NULL;
        d->n = d->cap = 0;
    }
    if (d->skip) {
        lakefs_object_stats_free(item);
        return 0;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        lakefs_object_stats *grown = realloc(d->items, cap * sizeof(*grown));
        if (!grown) {
            lakefs_object_stats_free(item);
            return -ENOMEM;
        }
        d->items = grown;
        d->cap = cap;
    }
    d->items[d->n++] = *item;
    memset(item, 0, sizeof(*item));
    return 0;
}

/* The top directory's range is over: its listing is complete. */
static int flat_close(flat_walk *w)
{
    const flatwalk_config *cfg = &w->fw->cfg;
    const tree_ref *ref = w->src->ref;
    flat_dir d = w->stack[--w->depth];
    int rc = 0;
    if (!d.skip) {
        size_t len = strlen(d.prefix);
        char *dir = strndup(d.prefix + w->base_len, len - w->base_len - 1);
        fs_entry *entries = NULL;
        size_t n = 0;
        rc = dir ? cfg->build(cfg->ctx, ref, dir, d.prefix, d.items, d.n,
                              &entries, &n)
                 : -ENOMEM;
        if (rc == 0 && strcmp(d.prefix, w->want) == 0) {
            w->want_entries = entries;
            w->want_n = n;
            w->want_done = true;
        } else if (rc == 0) {
            int put = listings_store(cfg->listings, w->src, dir, entries, n,
                                     w->generation);
            rc = put == -ENOMEM ? put : 0;
            w->stored++;
        }
        free(dir);
    }
    if (rc == 0 && w->depth == 1)
        w->children_done++;
    flat_dir_free(&d);
    return rc;
}

/* Opens directory `prefix` (named name) inside the top one: a delimited
 * listing of its parent shows a prefix for it. */
static int flat_open(flat_walk *w, char *name, char *prefix)
{
    if (w->depth == w->cap) {
        size_t cap = w->cap * 2;
        flat_dir *grown = realloc(w->stack, cap * sizeof(*grown));
        if (grown) {
            w->stack = grown;
            w->cap = cap;
        }
    }
    if (!name || !prefix || w->depth == w->cap) {
        free(name);
        free(prefix);
        return -ENOMEM;
    }
    flat_dir *parent = &w->stack[w->depth - 1];
    bool skip = (w->depth > 1 && parent->skip) ||
                !listing_name_is_valid(name) || !listing_utf8_is_valid(name);
    free(name);
    int rc = 0;
    if (w->depth > 1) { /* D's own listing is cached already */
        lakefs_object_stats sub = {.path = strdup(prefix),
                                   .path_type = LAKEFS_PATH_COMMON_PREFIX};
        rc = sub.path ? flat_add(w, parent, &sub) : -ENOMEM;
    }
    w->stack[w->depth++] = (flat_dir){.prefix = prefix, .skip = skip};
    return rc;
}

/* One key of the flat listing, in order: closes the directories it is
 * past, opens those it is in, and files it where a delimited listing
 * would show it. */
static int flat_key(flat_walk *w, lakefs_object_stats *item)
{
    const char *k = item->path;
    const flat_dir *top = &w->stack[0];
    if (!k || item->path_type != LAKEFS_PATH_OBJECT ||
        strncmp(k, top->prefix, strlen(top->prefix)) != 0 ||
        (w->last && strcmp(k, w->last) <= 0))
        return -EPROTO; /* not what was asked: left to delimited listings */
    /* Another stream's range: before lo, a key of a subdirectory whose
     * name sorts before the boundary's ("d050-1/" < "d050/"); from end on,
     * every key that follows. */
    if (w->lo && strcmp(k, w->lo) < 0)
        return 0;
    if (w->ended || (w->end && strcmp(k, w->end) >= 0)) {
        w->ended = true;
        return 0;
    }
    char *last = strdup(k);
    if (!last)
        return -ENOMEM;
    free(w->last);
    w->last = last;
    int rc = 0;
    while (rc == 0 && w->depth > 1 &&
           strncmp(k, w->stack[w->depth - 1].prefix,
                   strlen(w->stack[w->depth - 1].prefix)) != 0)
        rc = flat_close(w);
    size_t at = strlen(w->stack[w->depth - 1].prefix);
    for (const char *slash; rc == 0 && (slash = strchr(k + at, '/'));) {
        size_t end = (size_t)(slash - k) + 1;
        rc = flat_open(w, strndup(k + at, end - at - 1), strndup(k, end));
        at = end;
    }
    if (rc == 0 && w->depth > 1)
        rc = flat_add(w, &w->stack[w->depth - 1], item);
    return rc;
}

/* Whether subdirectory name of d (in ref) has no cached listing (false
 * when out of memory: only an optimisation is lost). */
static bool subdir_uncached(flatwalk *fw, const tree_ref *ref, const char *d,
                            const char *name)
{
    listing_source src;
    fw->cfg.source(fw->cfg.ctx, ref, "", &src);
    char *dir = format_string("%s%s%s", d, d[0] ? "/" : "", name);
    bool uncached = dir && !listings_cached(fw->cfg.listings, &src, dir);
    free(dir);
    return uncached;
}

/* How many of names (subdirectories of D) have no cached listing. */
static size_t count_uncached(flatwalk *fw, const tree_ref *ref, const char *d,
                             char **names, size_t n)
{
    size_t uncached = 0;
    for (size_t i = 0; i < n; i++)
        uncached += subdir_uncached(fw, ref, d, names[i]);
    return uncached;
}

/* Whether the pages taken so far paid for themselves: what one listing
 * each would have cost for what they brought is a page each for the
 * completed subdirectories, and the full pages of entries of the one
 * still open (a subdirectory of 3,000 names costs three pages either
 * way). Never more than bound pages. */
static bool flat_worth_more(const flat_walk *w, uint64_t pages, size_t bound)
{
    size_t credit =
        w->children_done +
        (w->depth > 1 ? w->stack[1].n / FLATWALK_PAGE_AMOUNT : 0);
    return pages < bound && credit >= pages;
}

/* Ends the pages: the directories still open are complete when the last
 * page was taken; logs what the listing did. */
static int flat_finish(flat_walk *w, object_pages *pages, const char *start,
                       int rc)
{
    const flatwalk_config *cfg = &w->fw->cfg;
    /* The pages passed the range's end: the keys of every directory still
     * open came before it (end names a subdirectory of the top one, and no
     * open directory holds it), so they are complete too. */
    if (rc == 0 && (pages->pager.done || w->ended))
        while (rc == 0 && w->depth > 1)
            rc = flat_close(w);
    char shown[LISTING_PRINTABLE_MAX], shown_start[LISTING_PRINTABLE_MAX];
    listing_printable(w->stack[0].prefix, shown, sizeof(shown));
    listing_printable(start, shown_start, sizeof(shown_start));
    logger_write(cfg->log, LOG_LEVEL_DEBUG,
                 "flat listing of \"%s\" after \"%s\": %llu pages, %zu "
                 "directories complete%s",
                 shown, shown_start, (unsigned long long)pages->pager.pages,
                 w->stored + w->want_done,
                 rc ? " (stopped by an error: the rest is listed alone)"
                    : "");
    return rc;
}

typedef struct flat_sure {
    const flat_walk *w;
    size_t bound;
} flat_sure;

/* Whether flat_page will take the page after page n (before page n is
 * parsed): it does when, after page n, n < bound and the credit is at
 * least n (flat_worth_more). The credit after page n is at least the
 * subdirectories of D completed before it (children_done never goes
 * down), so these alone make it sure; a walk being stopped takes none. */
static bool flat_sure_next(void *ctx, uint64_t n)
{
    const flat_sure *s = ctx;
    if (n >= s->bound || s->w->children_done < n)
        return false;
    flatwalk *fw = s->w->fw;
    pthread_mutex_lock(&fw->lock);
    bool stopping = fw->stopping;
    pthread_mutex_unlock(&fw->lock);
    return !stopping;
}

/* One page: 1 when the next one is worth taking, 0 when the pages are
 * over, or a negative errno. The next page is asked for before this one
 * is parsed when it is sure to be taken, so that lakeFS answers it while
 * this one is parsed and filed (the pages of a walk come one after the
 * other: each waits for the one before's next_offset). */
static int flat_page(flat_walk *w, object_pages *pages, size_t bound)
{
    lakefs_object_list page;
    flat_sure sure = {w, bound};
    int rc = object_pages_next_ahead(pages, &page, flat_sure_next, &sure);
    if (rc <= 0)
        return rc;
    rc = 0;
    for (size_t i = 0; rc == 0 && i < page.count; i++)
        rc = flat_key(w, &page.items[i]);
    lakefs_object_list_free(&page);
    if (rc)
        return rc;
    return !pages->pager.done && !w->ended &&
           flat_worth_more(w, pages->pager.pages, bound);
}

static void subdir_names_free(subdir_names *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->names[i]);
    free(s->names);
    memset(s, 0, sizeof(*s));
}

/* d's subdirectories (in ref) from name on, as d's cached listing has
 * them: 0, or -1 when that listing is gone or does not show name. */
static int flat_subdirs(flatwalk *fw, const tree_ref *ref, const char *d,
                        const char *name, subdir_names *s)
{
    listing_source dsrc;
    fw->cfg.source(fw->cfg.ctx, ref, d, &dsrc);
    *s = (subdir_names){.from = name};
    int rc = listings_peek(fw->cfg.listings, &dsrc, collect_subdir, s);
    if (rc == 0 && s->rc == 0 && s->n && strcmp(s->names[0], name) == 0)
        return 0;
    subdir_names_free(s);
    return -1;
}

/* How many pages a flat listing of d (in ref) from subdirectory name on
 * may take: its uncached subdirectories from there, when name is one. */
static size_t flat_bound(flatwalk *fw, const tree_ref *ref, const char *d,
                         const char *name)
{
    subdir_names s;
    if (flat_subdirs(fw, ref, d, name, &s))
        return 0;
    size_t bound = count_uncached(fw, ref, d, s.names, s.n);
    subdir_names_free(&s);
    return bound;
}

void flatwalk_partial_free(flatwalk_partial *p)
{
    object_items_free(p->items, p->n);
    free(p->after);
    memset(p, 0, sizeof(*p));
}

/* The pages stopped with the asked directory open: its items so far into
 * *partial when its listing can go on from the last key (a key of its
 * own, not one inside a subdirectory of it, whose common prefix a
 * delimited listing resumed there could give again). */
static void flat_take_partial(flat_walk *w, flatwalk_partial *partial)
{
    flat_dir *d = &w->stack[1];
    if (w->depth != 2 || d->skip || strcmp(d->prefix, w->want) != 0 ||
        !w->last || d->n >= w->fw->cfg.max_dir_entries)
        return;
    char *after = strdup(w->last);
    if (!after)
        return;
    *partial = (flatwalk_partial){.items = d->items, .n = d->n,
                                  .after = after};
    d->items = NULL;
    d->n = d->cap = 0;
}

/* ---- the pages after the answer ----
 *
 * Once the asked directory is complete its listing is answered at once and
 * the flat listing goes on in a thread of its own: a walk (find) works in
 * that directory while the next pages come. A listing of a directory in
 * the range still ahead of it waits for it (instead of a listing of its
 * own) until the pages have passed the directory or ended, then takes it
 * from the listings it stored; one they did not store (the pages stopped
 * before it, a write dropped it) is listed alone, as before. */
struct flat_bg {
    flat_bg *next;
    flatwalk *fw;
    pthread_t thread;
    listing_source src; /* a copy: the asker's is gone */
    char *dir;          /* src.dir */
    char *cache_key;    /* src.cache_key */
    char *start;        /* the first key asked for */
    char *top;          /* the walked directory's key prefix (w's stack
                           is the thread's alone: it may move) */
    char *lo, *end;     /* w.lo and w.end: its range (flat_split) */
    flat_walk w;
    object_pages pages;
    size_t bound;
    char *progress; /* under fw->lock: the last key taken (NULL: none) */
    bool done;      /* under fw->lock */
};

static void flat_walk_release(flat_walk *w)
{
    while (w->depth > 0)
        flat_dir_free(&w->stack[--w->depth]);
    free(w->stack);
    free(w->last);
    fs_entries_free(w->want_entries, w->want_n);
    w->want_entries = NULL;
    w->want_n = 0;
}

/* bg's own strings and bg itself (not its walk or pages). */
static void bg_free_names(flat_bg *bg)
{
    free((char *)bg->w.want);
    free(bg->dir);
    free(bg->cache_key);
    free(bg->start);
    free(bg->top);
    free(bg->lo);
    free(bg->end);
    free(bg->progress);
    free(bg);
}

static void bg_free(flat_bg *bg)
{
    flat_walk_release(&bg->w);
    object_pages_free(&bg->pages);
    bg_free_names(bg);
}

static void *bg_run(void *arg)
{
    flat_bg *bg = arg;
    flatwalk *fw = bg->fw;
    int rc = 1;
    for (;;) {
        pthread_mutex_lock(&fw->lock);
        bool stop = fw->stopping;
        pthread_mutex_unlock(&fw->lock);
        if (stop || rc != 1)
            break;
        rc = flat_page(&bg->w, &bg->pages, bg->bound);
        char *progress = bg->w.last ? strdup(bg->w.last) : NULL;
        pthread_mutex_lock(&fw->lock);
        if (progress) {
            free(bg->progress);
            bg->progress = progress;
        }
        pthread_cond_broadcast(&fw->progressed);
        pthread_mutex_unlock(&fw->lock);
    }
    flat_finish(&bg->w, &bg->pages, bg->start, rc < 0 ? rc : 0);
    pthread_mutex_lock(&fw->lock);
    bg->done = true;
    pthread_cond_broadcast(&fw->progressed);
    pthread_mutex_unlock(&fw->lock);
    return NULL;
}

/* Joins and frees the background walks that ended (all: every one,
 * waiting for them). */
static void reap_background(flatwalk *fw, bool all)
{
    for (;;) {
        flat_bg *found = NULL;
        pthread_mutex_lock(&fw->lock);
        for (flat_bg **p = &fw->background; *p; p = &(*p)->next) {
            if (all || (*p)->done) {
                found = *p;
                *p = found->next;
                break;
            }
        }
        pthread_mutex_unlock(&fw->lock);
        if (!found)
            return;
        pthread_join(found->thread, NULL);
        bg_free(found);
    }
}

/* Hands w (its pages in mid walk) to a thread of its own, with *lo and
 * *end, its range (flat_walk), when not NULL; false when it cannot start
 * (w, pages, *lo and *end are then still the caller's). */
static bool go_background(flatwalk *fw, flat_walk *w, object_pages *pages,
                          const char *start, size_t bound, char **lo,
                          char **end)
{
    reap_background(fw, false);
    flat_bg *bg = calloc(1, sizeof(*bg));
    if (!bg)
        return false;
    bg->fw = fw;
    bg->src = *w->src;
    bg->dir = strdup(w->src->dir);
    bg->cache_key = strdup(w->src->cache_key);
    bg->start = strdup(start);
    bg->top = strdup(w->stack[0].prefix);
    char *want = strdup(w->want);
    if (!bg->dir || !bg->cache_key || !bg->start || !bg->top || !want) {
        free(bg->dir);
        free(bg->cache_key);
        free(bg->start);
        free(bg->top);
        free(want);
        free(bg);
        return false;
    }
    bg->src.dir = bg->dir;
    bg->src.cache_key = bg->cache_key;
    bg->w = *w;
    bg->w.src = &bg->src;
    bg->w.want = want;
    bg->w.want_entries = NULL; /* answered by the caller */
    bg->w.want_n = 0;
    bg->pages = *pages;
    bg->pages.ref = bg->src.ref;
    bg->bound = bound;
    bg->progress = w->last ? strdup(w->last) : NULL;
    bg->lo = lo ? *lo : NULL;
    bg->end = end ? *end : NULL;
    bg->w.lo = bg->lo;
    bg->w.end = bg->end;
    bg->pages.end = bg->end;
    pthread_mutex_lock(&fw->lock);
    bool ok = !fw->stopping &&
              thread_start_masked(&bg->thread, bg_run, bg) == 0;
    if (ok) {
        bg->next = fw->background;
        fw->background = bg;
    }
    pthread_mutex_unlock(&fw->lock);
    if (!ok) { /* the walk is still the caller's */
        bg->lo = bg->end = NULL;
        bg_free_names(bg);
        return false;
    }
    if (lo)
        *lo = NULL;
    if (end)
        *end = NULL;
    /* Now the thread's. */
    w->stack = NULL;
    w->depth = w->cap = 0;
    w->last = NULL;
    memset(pages, 0, sizeof(*pages));
    return true;
}

/* Whether key (the last one taken) is past directory prefix's range. */
static bool passed(const char *key, const char *prefix)
{
    return key && strncmp(key, prefix, strlen(prefix)) != 0 &&
           strcmp(key, prefix) > 0;
}

typedef struct entries_copy {
    fs_entry *entries;
    size_t n, cap;
    int rc;
} entries_copy;

static int copy_entry(void *ctx, const fs_entry *e)
{
    entries_copy *c = ctx;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        fs_entry *grown = realloc(c->entries, cap * sizeof(*grown));
        if (!grown)
            return c->rc = -ENOMEM;
        c->entries = grown;
        c->cap = cap;
    }
    if (fs_entry_copy(&c->entries[c->n], e))
        return c->rc = -ENOMEM;
    c->n++;
    return 0;
}

/* A directory waited for a background walk gives up after this long and
 * is listed alone: a guard, never the expected path (a page takes
 * milliseconds). */
#define BG_WAIT_MAX_S 60

/* 1 and src's listing (the caller frees it) when a background walk of
 * the same ref covers its range and stored it (waiting for the walk to
 * pass it first); 0 otherwise. */
static int wait_background(flatwalk *fw, const listing_source *src,
                           fs_entry **entries, size_t *n)
{
    const tree_ref *ref = src->ref;
    pthread_mutex_lock(&fw->lock);
    bool any = fw->background != NULL;
    pthread_mutex_unlock(&fw->lock);
    if (!any)
        return 0; /* the usual case: nothing going on */
    char *prefix = format_string("%s%s/", ref->prefix, src->dir);
    if (!prefix)
        return 0;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += BG_WAIT_MAX_S;
    bool covered = false;
    pthread_mutex_lock(&fw->lock);
    for (flat_bg *bg = fw->background; bg; bg = bg->next) {
        const char *top = bg->top;
        if (bg->src.ref != ref ||
            strcmp(bg->src.cache_key, src->cache_key) != 0 ||
            strncmp(prefix, top, strlen(top)) != 0 ||
            strlen(prefix) <= strlen(top) || strcmp(prefix, bg->start) < 0 ||
            (bg->lo && strcmp(prefix, bg->lo) < 0) ||
            (bg->end && strcmp(prefix, bg->end) >= 0))
            continue;
        /* Passed already (stored between the asker's look in the cache
         * and now), or still ahead: either way the cache has it next. */
        covered = true;
        int rc = 0;
        while (rc == 0 && !bg->done && !passed(bg->progress, prefix))
            rc = pthread_cond_timedwait(&fw->progressed, &fw->lock,
                                        &deadline);
        break;
    }
    pthread_mutex_unlock(&fw->lock);
    free(prefix);
    if (!covered)
        return 0;
    entries_copy c = {0};
    int rc = listings_peek(fw->cfg.listings, src, copy_entry, &c);
    if (rc || c.rc) {
        fs_entries_free(c.entries, c.n);
        return 0;
    }
    *entries = c.entries;
    *n = c.n;
    return 1;
}

/* ---- a walk split into streams ----
 *
 * lakeFS answers one page at a time, and each page of a flat listing waits
 * for the one before's last key: a subtree of many pages takes as long as
 * its pages one after the other, while a walk stats every subdirectory of
 * D (whose listing it needs) before it reads the first. Once the first
 * page(s) showed how many subdirectories a page holds, a walk that would
 * take at least FLAT_SPLIT_MIN_PAGES more is split: the uncached
 * subdirectories still ahead are cut into up to FLAT_STREAMS_MAX ranges of
 * as many, each listed by a stream of its own from its first
 * subdirectory's key, up to the next range's (the first stream, already
 * going, takes the first range). Each range costs at most one page more
 * than one stream would have taken for it (its last page is cut at the
 * next range's start), and the streams' pages come at once. */
#define FLAT_STREAMS_MAX 4
#define FLAT_SPLIT_MIN_PAGES 4

static int key_order(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The key prefixes of d's uncached subdirectories from name on that come
 * after key `after`, in key order ("d1-x/" before "d1/"), in *keys. */
static size_t keys_ahead(flatwalk *fw, const tree_ref *ref, const char *d,
                         const char *name, const char *top,
                         const char *after, char ***keys)
{
    *keys = NULL;
    subdir_names s;
    if (flat_subdirs(fw, ref, d, name, &s))
        return 0;
    char **out = calloc(s.n ? s.n : 1, sizeof(*out));
    size_t n = 0;
    for (size_t i = 0; out && i < s.n; i++) {
        char *key = format_string("%s%s/", top, s.names[i]);
        if (key && strcmp(key, after) > 0 &&
            subdir_uncached(fw, ref, d, s.names[i])) {
            out[n++] = key;
            key = NULL;
        }
        free(key);
    }
    subdir_names_free(&s);
    if (out)
        qsort(out, n, sizeof(*out), key_order);
    *keys = out;
    return out ? n : 0;
}

/* Starts the stream of keys from lo (a subdirectory's key prefix) to
 * before end (NULL: the subtree's last); false when it cannot (lo and end
 * are then still the caller's). */
static bool start_stream(flatwalk *fw, const flat_walk *first, char **lo,
                         char **end, size_t bound)
{
    flat_walk w = {.fw = fw, .src = first->src, .want = "",
                   .base_len = first->base_len, .cap = 8,
                   .generation = first->generation};
    char *after = strndup(*lo, strlen(*lo) - 1); /* keys > "d050" */
    w.stack = calloc(w.cap, sizeof(*w.stack));
    char *top = strdup(first->stack[0].prefix);
    bool ok = after && w.stack && top;
    if (ok) {
        w.stack[0].prefix = top;
        w.depth = 1;
        top = NULL;
        lakefs_list_params p = {.prefix = w.stack[0].prefix, .after = after,
                                .amount = FLATWALK_PAGE_AMOUNT};
        object_pages pages;
        ok = object_pages_init(&pages, fw->cfg.client, first->src->ref, &p,
                               0) == 0 &&
             go_background(fw, &w, &pages, after, bound, lo, end);
        if (!ok)
            object_pages_free(&pages);
    }
    flat_walk_release(&w);
    free(top);
    free(after);
    return ok;
}

/* Splits walk w of d (its first page(s) taken, the asked subdirectory name
 * complete) when what is left is worth it: starts the other streams and
 * gives the end of w's own range in *first_end (NULL: not split). */
static void flat_split(flatwalk *fw, const flat_walk *w, const object_pages *pages,
                       const char *d, const char *name, char **first_end)
{
    *first_end = NULL;
    if (!w->children_done || !w->last || pages->pager.done)
        return;
    char **keys;
    size_t left = keys_ahead(fw, w->src->ref, d, name, w->stack[0].prefix,
                             w->last, &keys);
    uint64_t taken = pages->pager.pages;
    uint64_t pages_left = (left * taken + w->children_done - 1) /
                          w->children_done;
    size_t streams = (size_t)(pages_left / 2);
    if (streams > FLAT_STREAMS_MAX)
        streams = FLAT_STREAMS_MAX;
    if (pages_left >= FLAT_SPLIT_MIN_PAGES && streams >= 2) {
        /* From the last range to the second: a range whose stream did not
         * start is the one before's too. */
        char *next_lo = NULL; /* the range after this one's start */
        for (size_t i = streams - 1; i >= 1; i--) {
            size_t from = i * left / streams;
            size_t to = (i + 1) * left / streams;
            char *lo = strdup(keys[from]);
            char *end = next_lo ? strdup(next_lo) : NULL;
            if (lo && (!next_lo || end) &&
                start_stream(fw, w, &lo, &end, to - from)) {
                free(next_lo);
                next_lo = strdup(keys[from]);
            }
            free(lo);
            free(end);
        }
        *first_end = next_lo;
    }
    for (size_t i = 0; i < left; i++)
        free(keys[i]);
    free(keys);
}

int flatwalk_fetch(flatwalk *fw, const listing_source *src,
                   fs_entry **entries, size_t *n, flatwalk_partial *partial)
{
    memset(partial, 0, sizeof(*partial));
    const tree_ref *ref = src->ref;
    if (src->ttl_ms < 0 || !src->dir[0])
        return 0;
    if (wait_background(fw, src, entries, n))
        return 1;
    const char *slash = strrchr(src->dir, '/');
    char *d = slash ? strndup(src->dir, (size_t)(slash - src->dir))
                    : strdup("");
    const char *name = slash ? slash + 1 : src->dir;
    if (!d || !claim_walked(fw, ref, d)) {
        free(d);
        return 0;
    }
    size_t bound = flat_bound(fw, ref, d, name);
    flat_walk w = {.fw = fw, .src = src, .base_len = strlen(ref->prefix),
                   .cap = 8};
    char *top = format_string("%s%s%s", ref->prefix, d, d[0] ? "/" : "");
    char *want = format_string("%s%s/", ref->prefix, src->dir);
    char *start = format_string("%s%s", ref->prefix, src->dir);
    w.want = want;
    w.stack = calloc(w.cap, sizeof(*w.stack));
    int rc = bound >= 2 && top && want && start && w.stack ? 0 : -1;
    if (rc == 0) {
        w.stack[0].prefix = top;
        w.depth = 1;
        top = NULL;
        w.generation = listings_generation(fw->cfg.listings, src);
        lakefs_list_params p = {.prefix = w.stack[0].prefix, .after = start,
                                .amount = FLATWALK_PAGE_AMOUNT};
        object_pages pages;
        rc = object_pages_init(&pages, fw->cfg.client, ref, &p, 0);
        int more = rc == 0 ? 1 : rc;
        while (more == 1 && !w.want_done)
            more = flat_page(&w, &pages, bound);
        /* The asked directory is complete and more pages are worth taking:
         * they come in the background while the asker goes on, in several
         * streams when there are many. */
        char *end = NULL;
        if (more == 1)
            flat_split(fw, &w, &pages, d, name, &end);
        if (more == 1 && go_background(fw, &w, &pages, start, bound, NULL,
                                       &end)) {
            rc = 0;
        } else {
            /* Takes no page more: the range up to the other streams' start
             * (if any started) is listed one directory at a time. */
            rc = flat_finish(&w, &pages, start, more < 0 ? more : 0);
            object_pages_free(&pages);
        }
        free(end);
        if (rc == 0 && !w.want_done)
            flat_take_partial(&w, partial);
    }
    fs_entry *got = w.want_entries;
    size_t got_n = w.want_n;
    bool done = rc == 0 && w.want_done;
    w.want_entries = NULL;
    w.want_n = 0;
    flat_walk_release(&w);
    free(top);
    free(want);
    free(start);
    free(d);
    if (done) {
        *entries = got;
        *n = got_n;
        return 1;
    }
    fs_entries_free(got, got_n);
    return partial->after ? 2 : 0;
}
