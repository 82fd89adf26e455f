/*
 * tree.c - mount paths to repositories, refs and object keys. Listings are
 * fetched whole through the C client and cached in the metacache, with one
 * fetch in flight per directory however many threads ask. Refs met by name
 * are resolved once and kept: fixed refs are pinned to their commit. It
 * never answers a lookup with a statObject.
 */
#include "tree.h"

#include "entryset.h"

#include "flatwalk.h"
#include "listings.h"
#include "strset.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE_AMOUNT FLATWALK_PAGE_AMOUNT
/* Refs a mount keeps (resolved names); beyond that, new ones are refused
 * so that a scan of random names cannot grow memory without bound. */
#define MAX_REFS 4096
/* Names that are not refs, remembered for attr_timeout. */
#define MAX_NEGATIVE_REFS 256
#define KEY_SEPARATOR "\x1f"
/* Listing warnings already logged (hashes of their text): a hostile name
 * is reported once per mount, not on every refetch of its directory. */
#define MAX_WARNED 4096
#define REPOSITORIES_KEY "\x01repositories"
#define REFS_KEY_PREFIX "\x01refs" KEY_SEPARATOR

typedef struct negative_ref {
    char *repo_and_name; /* "repo\x1fname" */
    int64_t expires_at_ms;
} negative_ref;

struct tree {
    lakefs_client *client;
    logger *log;
    lakefuse_uri uri;
    tree_mode mode;
    int64_t ttl_ms;
    char *repo_namespace; /* lakefs://REPO[/REF]: the repository's */
    uint64_t max_dir_entries; /* a listing with more is an error */

    listings *listings;
    flatwalk *flat; /* walks served from flat listings */
    pthread_mutex_t lock; /* refs, negatives */
    tree_ref **refs;
    size_t ref_count;
    tree_ref *single; /* TREE_MODE_REF: the mounted ref */
    tree_pending_fn pending; /* files being written, or NULL */
    void *pending_ctx;
    negative_ref negatives[MAX_NEGATIVE_REFS];
    size_t next_negative;
    /* "repo\x1fkey" of objects this mount wrote with setuid, setgid or
     * sticky bits (under lock): only those show them. */
    strset special_modes; /* repo "\x1f" key of files whose setuid,
                             setgid or sticky bits this mount wrote */
    uint64_t warned[MAX_WARNED]; /* open addressing, 0 = free (under lock) */
    size_t warned_count;
    /* -o nodir_markers: "repo\x1fbranch\x1fkey/" of the directories that
     * live in this mount's memory only (tree_keep_local_dir), sorted
     * bytewise, so that a directory's are one run (under lock). */
    char **local_dirs;
    size_t local_count, local_cap;
};

static char *join3(const char *a, const char *b, const char *c)
{
    char *s = NULL;
    if (asprintf(&s, "%s%s%s", a, b, c) < 0)
        return NULL;
    return s;
}

/* true the first time text is seen (always, once the table is full). */
static bool warn_first_time(tree *t, const char *text)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    h |= 1; /* never 0, the free mark */
    bool first = true;
    pthread_mutex_lock(&t->lock);
    if (t->warned_count < MAX_WARNED / 2) {
        size_t i = (size_t)(h % MAX_WARNED);
        while (t->warned[i] && t->warned[i] != h)
            i = (i + 1) % MAX_WARNED;
        first = t->warned[i] == 0;
        if (first) {
            t->warned[i] = h;
            t->warned_count++;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return first;
}

static void warn_listing(void *ctx, const char *fmt, ...)
{
    tree *t = ctx;
    char text[1800]; /* two names of LISTING_PRINTABLE_MAX and words */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (warn_first_time(t, text))
        logger_write(t->log, LOG_LEVEL_WARNING, "%s", text);
}

/* ---- refs ---- */

static void ref_free(tree_ref *r)
{
    if (!r)
        return;
    free(r->repo);
    free(r->name);
    free(r->api_ref);
    free(r->commit_id);
    free(r->cache_key);
    free(r->prefix);
    free(r->storage_namespace);
    free(r);
}

/* commit_id NULL: a branch. */
static tree_ref *ref_make(const char *repo, const char *name,
                          const char *commit_id, const char *prefix,
                          int64_t commit_time, const char *storage_namespace)
{
    tree_ref *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->repo = strdup(repo);
    r->name = strdup(name);
    r->is_branch = commit_id == NULL;
    r->api_ref = strdup(commit_id ? commit_id : name);
    r->commit_id = commit_id ? strdup(commit_id) : NULL;
    r->prefix = strdup(prefix ? prefix : "");
    r->commit_time = commit_time;
    r->storage_namespace =
        storage_namespace ? strdup(storage_namespace) : NULL;
    /* Branches by name; fixed refs by commit, so main~1 and its id share. */
    r->cache_key = join3(repo, commit_id ? KEY_SEPARATOR "@" : KEY_SEPARATOR,
                         commit_id ? commit_id : name);
    if (!r->repo || !r->name || !r->api_ref || !r->prefix || !r->cache_key ||
        (commit_id && !r->commit_id) ||
        (storage_namespace && !r->storage_namespace)) {
        ref_free(r);
        return NULL;
    }
    return r;
}

/* Under t->lock. */
static tree_ref *ref_find_locked(tree *t, const char *repo, const char *name)
{
    for (size_t i = 0; i < t->ref_count; i++)
        if (strcmp(t->refs[i]->repo, repo) == 0 &&
            strcmp(t->refs[i]->name, name) == 0)
            return t->refs[i];
    return NULL;
}

/* Adds r (or returns the record another thread added first, freeing r). */
static int ref_add(tree *t, tree_ref *r, const tree_ref **out)
{
    pthread_mutex_lock(&t->lock);
    tree_ref *have = ref_find_locked(t, r->repo, r->name);
    if (have) {
        pthread_mutex_unlock(&t->lock);
        ref_free(r);
        *out = have;
        return 0;
    }
    if (t->ref_count >= MAX_REFS) {
        pthread_mutex_unlock(&t->lock);
        logger_write(t->log, LOG_LEVEL_WARNING,
                     "too many refs opened by name (%d): '%s' refused",
                     MAX_REFS, r->name);
        ref_free(r);
        return -ENFILE;
    }
    t->refs[t->ref_count++] = r;
    pthread_mutex_unlock(&t->lock);
    *out = r;
    return 0;
}

static bool negative_find(tree *t, const char *key)
{
    int64_t now = listings_now_ms();
    bool found = false;
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < MAX_NEGATIVE_REFS && !found; i++)
        found = t->negatives[i].repo_and_name &&
                t->negatives[i].expires_at_ms > now &&
                strcmp(t->negatives[i].repo_and_name, key) == 0;
    pthread_mutex_unlock(&t->lock);
    return found;
}

static void negative_add(tree *t, char *key)
{
    pthread_mutex_lock(&t->lock);
    negative_ref *slot = &t->negatives[t->next_negative];
    t->next_negative = (t->next_negative + 1) % MAX_NEGATIVE_REFS;
    free(slot->repo_and_name);
    slot->repo_and_name = key;
    slot->expires_at_ms = listings_now_ms() + t->ttl_ms;
    pthread_mutex_unlock(&t->lock);
}

/* ---- fetchers ---- */

static int log_failure(tree *t, int rc, const lakefs_error *err,
                       const char *what, const char *name)
{
    if (rc != -ENOENT)
        logger_write(t->log, LOG_LEVEL_ERROR, "%s '%s': %s", what, name,
                     err->message);
    return rc == -ENOENT || rc == -ENOMEM || rc == -EACCES ? rc : -EIO;
}

/* Appends an entry to a growable array: a copy of proto named name. */
static int push_entry(fs_entry **entries, size_t *n, size_t *cap,
                      const char *name, const fs_entry *proto)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        fs_entry *grown = realloc(*entries, ncap * sizeof(**entries));
        if (!grown)
            return -ENOMEM;
        *entries = grown;
        *cap = ncap;
    }
    fs_entry *e = &(*entries)[*n];
    *e = *proto;
    e->name = strdup(name);
    if (!e->name)
        return -ENOMEM;
    (*n)++;
    return 0;
}

/* Appends a directory entry named name (skipped when not a valid name).
 * A repository's entry carries its storage namespace in physical_address
 * (a directory has no other use for it): the data cache keys by it. */
static int push_dir_entry(fs_entry **entries, size_t *n, size_t *cap,
                          const char *name, int64_t mtime,
                          const char *storage_namespace)
{
    if (!listing_name_is_valid(name))
        return 0;
    fs_entry dir = {.is_dir = true, .mode = LISTING_DEFAULT_DIR_MODE,
                    .mtime = mtime};
    int rc = push_entry(entries, n, cap, name, &dir);
    if (rc == 0 && storage_namespace) {
        fs_entry *e = &(*entries)[*n - 1];
        e->physical_address = strdup(storage_namespace);
        rc = e->physical_address ? 0 : -ENOMEM;
    }
    return rc;
}

/* A listing that failed: one log line, and EIO (ENOMEM as itself). An
 * error answer is never an empty or partial directory, and a 404 is no
 * exception: the directory was listed, so lakeFS should have it. */
static int listing_failure(tree *t, int rc, const lakefs_error *err,
                           const char *what, const char *name)
{
    if (rc == -EFBIG)
        logger_write(t->log, LOG_LEVEL_ERROR,
                     "%s '%s': more than %llu entries, the most a "
                     "directory may hold (-o max_dir_entries=N raises it)",
                     what, name, (unsigned long long)t->max_dir_entries);
    else
        logger_write(t->log, LOG_LEVEL_ERROR, "%s '%s': %s", what, name,
                     err->message[0] ? err->message : strerror(-rc));
    return rc == -ENOMEM ? rc : -EIO;
}

/* One page of a name listing (repositories, branches): pushes its entries
 * and hands back its pagination (*page_info, which the caller frees). */
typedef int (*name_page_fn)(tree *t, const listing_source *src,
                            const char *after, fs_entry **entries, size_t *n,
                            size_t *cap, lakefs_pagination *page_info,
                            size_t *page_count, lakefs_error *err);

static int fetch_name_pages(tree *t, const listing_source *src,
                            name_page_fn page, const char *what,
                            fs_entry **entries, size_t *n)
{
    size_t cap = 0;
    lakefs_pager pager;
    lakefs_pager_init(&pager, true, t->max_dir_entries);
    lakefs_error err = {0};
    int rc;
    *entries = NULL;
    *n = 0;
    do {
        lakefs_pagination info = {0};
        size_t count = 0;
        rc = page(t, src, pager.after, entries, n, &cap, &info, &count, &err);
        if (rc == 0)
            rc = lakefs_pager_next(&pager, &info, count, &err);
        free(info.next_offset);
    } while (rc == 0 && !pager.done);
    lakefs_pager_free(&pager);
    if (rc) {
        fs_entries_free(*entries, *n);
        *entries = NULL;
        *n = 0;
        rc = listing_failure(t, rc, &err, what, src->repo ? src->repo : "");
    }
    return rc;
}

static int repositories_page(tree *t, const listing_source *src,
                             const char *after, fs_entry **entries,
                             size_t *n, size_t *cap,
                             lakefs_pagination *info, size_t *count,
                             lakefs_error *err)
{
    (void)src;
    lakefs_list_params p = {.after = after, .amount = PAGE_AMOUNT};
    lakefs_repository_list page;
    int rc = lakefs_list_repositories(t->client, &p, &page, err);
    if (rc)
        return rc;
    for (size_t i = 0; rc == 0 && i < page.count; i++)
        rc = push_dir_entry(entries, n, cap, page.items[i].id,
                            page.items[i].creation_date,
                            page.items[i].storage_namespace);
    *info = page.pagination;
    *count = page.count;
    page.pagination.next_offset = NULL;
    lakefs_repository_list_free(&page);
    return rc;
}

static int branches_page(tree *t, const listing_source *src,
                         const char *after, fs_entry **entries, size_t *n,
                         size_t *cap, lakefs_pagination *info, size_t *count,
                         lakefs_error *err)
{
    lakefs_list_params p = {.after = after, .amount = PAGE_AMOUNT};
    lakefs_ref_list page;
    int rc = lakefs_list_branches(t->client, src->repo, &p, &page, err);
    if (rc)
        return rc;
    for (size_t i = 0; rc == 0 && i < page.count; i++)
        rc = push_dir_entry(entries, n, cap, page.items[i].id, 0, NULL);
    *info = page.pagination;
    *count = page.count;
    page.pagination.next_offset = NULL;
    lakefs_ref_list_free(&page);
    return rc;
}

static int fetch_repositories(void *ctx, const listing_source *src,
                              fs_entry **entries, size_t *n)
{
    return fetch_name_pages(ctx, src, repositories_page,
                            "listing repositories", entries, n);
}

static int fetch_branches(void *ctx, const listing_source *src,
                          fs_entry **entries, size_t *n)
{
    return fetch_name_pages(ctx, src, branches_page, "listing branches of",
                            entries, n);
}

/* Collects every page of listObjects(prefix, delimiter "/"): the parsed
 * results are moved out of each page, never copied, and the walk stops
 * at max_dir_entries. Never presigned: lakeFS would sign every object
 * listed; a read asks for its URL (urlbatch.h). */
static int collect_objects(tree *t, const tree_ref *ref, const char *prefix,
                           const char *after, lakefs_object_stats **items,
                           size_t *n)
{
    lakefs_list_params p = {.prefix = prefix, .delimiter = "/",
                            .amount = PAGE_AMOUNT, .after = after};
    object_pages pages;
    /* *n items came already (a flat listing's, up to after): the bound is
     * on the whole listing (flatwalk hands over fewer than it). */
    int rc = object_pages_init(&pages, t->client, ref, &p,
                               t->max_dir_entries - *n);
    size_t cap = 0;
    lakefs_object_list page;
    while (rc == 0 && (rc = object_pages_next(&pages, &page)) == 1) {
        rc = 0;
        if (*n + page.count > cap) {
            size_t ncap = cap ? cap : 64;
            while (ncap < *n + page.count)
                ncap *= 2;
            lakefs_object_stats *grown = realloc(*items, ncap * sizeof(**items));
            rc = grown ? 0 : -ENOMEM;
            if (grown) {
                *items = grown;
                cap = ncap;
            }
        }
        if (rc == 0 && page.count) {
            memcpy(*items + *n, page.items, page.count * sizeof(*page.items));
            *n += page.count;
            page.count = 0; /* moved: the page frees only its array */
        }
        lakefs_object_list_free(&page);
        if (rc)
            break;
    }
    if (rc)
        rc = listing_failure(t, rc, &pages.err, "listing",
                             prefix[0] ? prefix : "/");
    object_pages_free(&pages);
    return rc;
}

/* The pending files of a branch directory, gathered by the hook. */
typedef struct pending_files {
    fs_entry *items;
    size_t n, cap;
} pending_files;

static int add_pending(void *ctx, const fs_entry *file)
{
    pending_files *p = ctx;
    fs_entry plain = {.size = file->size, .mtime = file->mtime,
                      .mode = file->mode,
                      .unshown_mode = file->unshown_mode,
                      .is_dir = file->is_dir,
                      .has_owner = file->has_owner, .uid = file->uid,
                      .gid = file->gid};
    /* Its user metadata too: a file the listing lacks (not uploaded yet,
     * or uploaded since lakeFS was asked) shows it with its bytes. */
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < file->metadata.count; i++)
        rc = lakefs_metadata_set(&plain.metadata, file->metadata.items[i].key,
                                 file->metadata.items[i].value);
    /* The object it is, when the server has its bytes (listing_merge_files
     * then keeps the listed entry of that object as listed). */
    if (rc == 0 && file->checksum && !(plain.checksum = strdup(file->checksum)))
        rc = -ENOMEM;
    if (rc == 0)
        rc = push_entry(&p->items, &p->n, &p->cap, file->name, &plain);
    if (rc) {
        lakefs_metadata_free(&plain.metadata);
        free(plain.checksum);
    }
    return rc;
}

/* A directory that only exists (pending_from_writer's implied: mode 0). */
static bool only_exists(const fs_entry *e)
{
    return e->is_dir && e->mode == 0;
}

static int compare_pending(const void *a, const void *b)
{
    const fs_entry *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (int)only_exists(x) - (int)only_exists(y);
}

/* One entry a name (listing_merge_files needs them distinct): a directory
 * implied by each file being written deeper in it comes once, and not at
 * all beside an entry of its own (a marker, a file of that name). */
static void dedupe_pending(pending_files *p)
{
    if (p->n < 2)
        return;
    qsort(p->items, p->n, sizeof(*p->items), compare_pending);
    size_t kept = 1;
    for (size_t i = 1; i < p->n; i++) {
        fs_entry *e = &p->items[i];
        if (only_exists(e) && strcmp(e->name, p->items[kept - 1].name) == 0)
            fs_entry_free(e);
        else
            p->items[kept++] = *e;
    }
    p->n = kept;
}

static int collect_pending(tree *t, const tree_ref *ref, const char *prefix,
                           pending_files *out)
{
    if (!t->pending || !ref->is_branch)
        return 0;
    int rc = t->pending(t->pending_ctx, ref->repo, ref->api_ref, prefix,
                        add_pending, out);
    if (rc >= 0)
        dedupe_pending(out);
    return rc < 0 ? rc : 0;
}

static bool special_mode_known(tree *t, const char *id)
{
    pthread_mutex_lock(&t->lock);
    bool known = strset_contains(&t->special_modes, id);
    pthread_mutex_unlock(&t->lock);
    return known;
}

int tree_note_special_mode(tree *t, const char *repo, const char *key)
{
    char *id = join3(repo, "\x1f", key);
    if (!id)
        return -ENOMEM;
    pthread_mutex_lock(&t->lock);
    int rc = strset_add_owned(&t->special_modes, id);
    pthread_mutex_unlock(&t->lock);
    return rc;
}

bool tree_special_mode_noted(tree *t, const char *repo, const char *key)
{
    char *id = join3(repo, "\x1f", key);
    bool known = id && special_mode_known(t, id);
    free(id);
    return known;
}

void tree_forget_special_mode(tree *t, const char *repo, const char *key)
{
    char *id = join3(repo, "\x1f", key);
    if (!id)
        return;
    pthread_mutex_lock(&t->lock);
    strset_remove(&t->special_modes, id);
    pthread_mutex_unlock(&t->lock);
    free(id);
}

void tree_move_special_mode(tree *t, const char *repo, const char *old_key,
                            const char *new_key)
{
    if (tree_special_mode_noted(t, repo, old_key))
        tree_note_special_mode(t, repo, new_key);
}

/* A file's setuid, setgid and sticky bits from object metadata are shown
 * only when this mount wrote them: anyone who can write to the branch
 * could otherwise plant a setuid file for this machine. e's key is
 * dir_key + name (dir_key ends in '/' or is empty). */
static void mask_one(tree *t, const tree_ref *ref, const char *dir_key,
                     const char *name, fs_entry *e)
{
    if (e->is_dir || !(e->mode & 07000u))
        return;
    char *key = join3(dir_key, name, "");
    char *id = key ? join3(ref->repo, "\x1f", key) : NULL;
    if (!(id && special_mode_known(t, id))) {
        e->unshown_mode |= e->mode & 07000u;
        e->mode &= 0777u;
    }
    free(id);
    free(key);
}

static void mask_special_modes(tree *t, const tree_ref *ref,
                               const char *prefix, fs_entry *entries,
                               size_t n)
{
    for (size_t i = 0; i < n; i++)
        mask_one(t, ref, prefix, entries[i].name, &entries[i]);
}

void tree_mask_entry(tree *t, const tree_ref *ref, const char *rel_key,
                     fs_entry *e)
{
    mask_one(t, ref, ref->prefix, rel_key, e);
}

/* The directory's marker object (its key is the listing's prefix) as an
 * entry named TREE_MARKER_NAME, inserted in name order: it carries the
 * directory's own mode, owner and mtime (lakectl's keys on "dir/"). */
static int add_marker_entry(const char *prefix,
                            const lakefs_object_stats *items, size_t count,
                            fs_entry **entries, size_t *n)
{
    const lakefs_object_stats *marker = NULL;
    for (size_t i = 0; prefix[0] && i < count && !marker; i++)
        if (items[i].path && strcmp(items[i].path, prefix) == 0)
            marker = &items[i];
    if (!marker)
        return 0;
    fs_entry e;
    if (fs_entry_from_marker(&e, TREE_MARKER_NAME, marker) != 0)
        return -ENOMEM;
    fs_entry *grown = realloc(*entries, (*n + 1) * sizeof(**entries));
    if (!grown) {
        fs_entry_free(&e);
        return -ENOMEM;
    }
    size_t at = 0;
    while (at < *n && strcmp(grown[at].name, TREE_MARKER_NAME) < 0)
        at++;
    memmove(&grown[at + 1], &grown[at], (*n - at) * sizeof(*grown));
    grown[at] = e;
    *entries = grown;
    (*n)++;
    return 0;
}

/* An object named like the control directory at a ref root is hidden by
 * it (tree_list skips it, a lookup finds .lakefs/): say so once. */
static void warn_hidden_control(tree *t, const char *prefix,
                                const fs_entry *entries, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(entries[i].name, TREE_CONTROL_DIR_NAME) == 0) {
            char shown[LISTING_PRINTABLE_MAX];
            listing_printable(prefix, shown, sizeof(shown));
            warn_listing(t, "listing of \"%s\": %s \"%s" TREE_CONTROL_DIR_NAME
                            "\" is hidden by the control directory",
                         shown, entries[i].is_dir ? "directory" : "object",
                         shown);
        }
}

/* ---- directories in this mount's memory (-o nodir_markers) ---- */

/* "repo\x1fbranch\x1f" + prefix + dir + "/" (no "/" for dir ""): the id
 * of ref's directory dir under key prefix prefix ("" or ending in "/"),
 * or with dir "" where the ids of those under prefix sort. */
static char *local_id(const tree_ref *ref, const char *prefix,
                      const char *dir)
{
    char *s = NULL;
    if (asprintf(&s, "%s\x1f%s\x1f%s%s%s", ref->repo, ref->api_ref, prefix,
                 dir, dir[0] ? "/" : "") < 0)
        return NULL;
    return s;
}

/* The first index whose id sorts at or after id (caller holds lock). */
static size_t local_lower_bound(const tree *t, const char *id)
{
    size_t lo = 0, hi = t->local_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(t->local_dirs[mid], id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Takes id (owned): 0, or -ENOMEM (id freed). Caller holds lock. */
static int local_insert(tree *t, char *id)
{
    size_t at = local_lower_bound(t, id);
    if (at < t->local_count && strcmp(t->local_dirs[at], id) == 0) {
        free(id);
        return 0;
    }
    if (t->local_count == t->local_cap) {
        size_t cap = t->local_cap ? 2 * t->local_cap : 16;
        char **grown = realloc(t->local_dirs, cap * sizeof(*grown));
        if (!grown) {
            free(id);
            return -ENOMEM;
        }
        t->local_dirs = grown;
        t->local_cap = cap;
    }
    memmove(&t->local_dirs[at + 1], &t->local_dirs[at],
            (t->local_count - at) * sizeof(*t->local_dirs));
    t->local_dirs[at] = id;
    t->local_count++;
    return 0;
}

/* The ids that start with id_prefix: [*first, returned end). */
static size_t local_run(const tree *t, const char *id_prefix, size_t *first)
{
    size_t len = strlen(id_prefix);
    size_t i = *first = local_lower_bound(t, id_prefix);
    while (i < t->local_count &&
           strncmp(t->local_dirs[i], id_prefix, len) == 0)
        i++;
    return i;
}

static void local_remove_run(tree *t, size_t first, size_t end)
{
    if (first == end)
        return; /* none: t->local_dirs may be NULL */
    for (size_t i = first; i < end; i++)
        free(t->local_dirs[i]);
    memmove(&t->local_dirs[first], &t->local_dirs[end],
            (t->local_count - end) * sizeof(*t->local_dirs));
    t->local_count -= end - first;
}

/* Whether any directory is kept: none is the rule (-o dir_markers). */
static bool local_any(tree *t)
{
    pthread_mutex_lock(&t->lock);
    bool any = t->local_count > 0;
    pthread_mutex_unlock(&t->lock);
    return any;
}

int tree_keep_local_dir(tree *t, const tree_ref *ref, const char *dir)
{
    if (!ref->is_branch || !dir[0])
        return 0;
    char *id = local_id(ref, ref->prefix, dir);
    if (!id)
        return -ENOMEM;
    pthread_mutex_lock(&t->lock);
    int rc = local_insert(t, id);
    pthread_mutex_unlock(&t->lock);
    return rc;
}

void tree_drop_local_dirs(tree *t, const tree_ref *ref, const char *dir)
{
    char *id = local_any(t) ? local_id(ref, ref->prefix, dir) : NULL;
    if (!id)
        return;
    pthread_mutex_lock(&t->lock);
    size_t first = 0, end = local_run(t, id, &first);
    local_remove_run(t, first, end);
    pthread_mutex_unlock(&t->lock);
    free(id);
}

int tree_move_local_dirs(tree *t, const tree_ref *ref, const char *from,
                         const char *to)
{
    if (!local_any(t))
        return 0;
    char *from_id = local_id(ref, ref->prefix, from);
    char *to_id = local_id(ref, ref->prefix, to);
    int rc = from_id && to_id ? 0 : -ENOMEM;
    char **moved = NULL;
    size_t count = 0;
    pthread_mutex_lock(&t->lock);
    size_t first = 0, end = rc ? 0 : local_run(t, from_id, &first);
    if (rc == 0 && end > first &&
        !(moved = calloc(end - first, sizeof(*moved))))
        rc = -ENOMEM;
    size_t from_len = from_id ? strlen(from_id) : 0;
    for (size_t i = first; rc == 0 && i < end; i++, count++)
        if (!(moved[count] = join3(to_id, t->local_dirs[i] + from_len, "")))
            rc = -ENOMEM;
    if (rc == 0 && end > first)
        local_remove_run(t, first, end);
    for (size_t i = 0; i < count; i++)
        if (rc == 0)
            rc = local_insert(t, moved[i]);
        else
            free(moved[i]);
    pthread_mutex_unlock(&t->lock);
    free(moved);
    free(from_id);
    free(to_id);
    return rc;
}

/* The directories under prefix that live in this mount's memory: each
 * first component not listed becomes a directory of the default mode
 * (lakeFS keeps nothing of them: mode 0, see listing_merge_files); a
 * listed name stays as listed. */
static int add_local_dirs(tree *t, const tree_ref *ref, const char *prefix,
                          fs_entry **entries, size_t *n)
{
    if (!ref->is_branch || !local_any(t)) /* every listing: no allocation */
        return 0;
    char *id = local_id(ref, prefix, "");
    if (!id)
        return -ENOMEM;
    size_t len = strlen(id);
    pending_files extra = {0};
    int rc = 0;
    pthread_mutex_lock(&t->lock);
    size_t first = 0, end = local_run(t, id, &first);
    for (size_t i = first; rc == 0 && i < end; i++) {
        const char *rest = t->local_dirs[i] + len;
        const char *slash = strchr(rest, '/');
        char *name = slash ? strndup(rest, (size_t)(slash - rest)) : NULL;
        if (!name) {
            rc = slash ? -ENOMEM : 0;
            continue;
        }
        /* those under one directory are one run */
        bool seen = extra.n &&
                    strcmp(extra.items[extra.n - 1].name, name) == 0;
        fs_entry dir = {.is_dir = true};
        if (!seen)
            rc = push_entry(&extra.items, &extra.n, &extra.cap, name, &dir);
        free(name);
    }
    pthread_mutex_unlock(&t->lock);
    free(id);
    if (rc == 0 && extra.n)
        rc = listing_merge_files(entries, n, extra.items, extra.n);
    fs_entries_free(extra.items, extra.n);
    return rc;
}

/* The entries of directory `dir` (key prefix `prefix`) from its
 * delimited listing's results, mapped as listing_build maps them, with
 * the directory's marker and the files being written in it merged. */
static int build_objects(tree *t, const tree_ref *ref, const char *dir,
                         const char *prefix, const lakefs_object_stats *items,
                         size_t count, const pending_files *pending,
                         fs_entry **entries, size_t *n)
{
    int rc = listing_build(prefix, items, count, entries, n, warn_listing, t);
    if (rc == 0 && dir[0] == '\0')
        warn_hidden_control(t, prefix, *entries, *n);
    if (rc == 0)
        mask_special_modes(t, ref, prefix, *entries, *n);
    if (rc == 0)
        rc = add_marker_entry(prefix, items, count, entries, n);
    if (rc == 0 && pending->n)
        rc = listing_merge_files(entries, n, pending->items, pending->n);
    if (rc == 0)
        rc = add_local_dirs(t, ref, prefix, entries, n);
    if (rc) {
        fs_entries_free(*entries, *n);
        *entries = NULL;
        *n = 0;
    }
    return rc;
}

/* A directory a flat listing completed (flatwalk's build): built as
 * fetch_objects builds it, with the files being written in it now. */
static int build_flat_dir(void *ctx, const tree_ref *ref, const char *dir,
                          const char *prefix, const lakefs_object_stats *items,
                          size_t count, fs_entry **entries, size_t *n)
{
    tree *t = ctx;
    pending_files pending = {0};
    int rc = collect_pending(t, ref, prefix, &pending);
    if (rc == 0)
        rc = build_objects(t, ref, dir, prefix, items, count, &pending,
                           entries, n);
    fs_entries_free(pending.items, pending.n);
    return rc;
}

/* Asks the writer before lakeFS: a file uploaded and let go of in between
 * is then in one of the two, never in neither. A walk's directory may come
 * from a flat listing of its parent's subtree instead (flatwalk). */
static int fetch_objects(void *ctx, const listing_source *src,
                         fs_entry **entries, size_t *n)
{
    tree *t = ctx;
    const tree_ref *ref = src->ref;
    flatwalk_partial part;
    int flat = flatwalk_fetch(t->flat, src, entries, n, &part);
    if (flat == 1)
        return 0;
    char *prefix = join3(ref->prefix, src->dir, src->dir[0] ? "/" : "");
    if (!prefix) {
        flatwalk_partial_free(&part);
        return -ENOMEM;
    }
    pending_files pending = {0};
    /* What a flat listing that stopped inside this directory brought of
     * it: its own listing goes on after the last key instead of again. */
    lakefs_object_stats *items = part.items;
    size_t count = part.n;
    part.items = NULL;
    part.n = 0;
    int rc = collect_pending(t, ref, prefix, &pending);
    if (rc == 0)
        rc = collect_objects(t, ref, prefix, part.after, &items, &count);
    flatwalk_partial_free(&part);
    if (rc == 0)
        rc = build_objects(t, ref, src->dir, prefix, items, count, &pending,
                           entries, n);
    fs_entries_free(pending.items, pending.n);
    object_items_free(items, count);
    free(prefix);
    return rc;
}

static void repositories_source(tree *t, listing_source *src)
{
    *src = (listing_source){.cache_key = REPOSITORIES_KEY, .dir = "",
                            .ttl_ms = t->ttl_ms ? t->ttl_ms : -1,
                            .fetch = fetch_repositories, .ctx = t};
}

/* key_buf receives the cache key; the caller frees it. */
static int branches_source(tree *t, const char *repo, listing_source *src,
                           char **key_buf)
{
    *key_buf = join3(REFS_KEY_PREFIX, repo, "");
    if (!*key_buf)
        return -ENOMEM;
    *src = (listing_source){.cache_key = *key_buf, .dir = "",
                            .ttl_ms = t->ttl_ms ? t->ttl_ms : -1,
                            .fetch = fetch_branches, .ctx = t,
                            .repo = repo};
    return 0;
}

static void objects_source(tree *t, const tree_ref *ref, const char *dir,
                           listing_source *src)
{
    int64_t ttl = ref->is_branch ? (t->ttl_ms ? t->ttl_ms : -1) : 0;
    *src = (listing_source){.cache_key = ref->cache_key, .dir = dir,
                            .ttl_ms = ttl, .fetch = fetch_objects, .ctx = t,
                            .repo = ref->repo, .ref = ref};
}

/* flatwalk's source. */
static void flat_dir_source(void *ctx, const tree_ref *ref, const char *dir,
                            listing_source *src)
{
    objects_source(ctx, ref, dir, src);
}


/* ---- resolving refs by name ---- */

static bool is_listed_branch(tree *t, const char *repo, const char *name,
                             int *rc_out)
{
    listing_source src;
    char *key;
    *rc_out = branches_source(t, repo, &src, &key);
    if (*rc_out)
        return false;
    int rc = listings_lookup(t->listings, &src, name, NULL);
    free(key);
    *rc_out = rc < 0 ? rc : 0;
    return rc == 1;
}

/* Asks the server what name is: a branch (getBranch), else a commit
 * (getCommit resolves tags, ids, main~1, main@). */
static int ref_resolve_remote(tree *t, const char *repo, const char *ns,
                              const char *name, tree_ref **out)
{
    lakefs_error err = {0};
    int rc = -ENOENT;
    if (!strpbrk(name, "~^@$")) {
        lakefs_ref branch;
        rc = lakefs_get_branch(t->client, repo, name, &branch, &err);
        lakefs_ref_free(&branch);
        if (rc == 0) {
            *out = ref_make(repo, name, NULL, "", 0, ns);
            return *out ? 0 : -ENOMEM;
        }
        if (rc != -ENOENT && rc != -EINVAL)
            return log_failure(t, rc, &err, "looking up branch", name);
    }
    lakefs_commit commit;
    rc = lakefs_get_commit(t->client, repo, name, &commit, &err);
    if (rc == -EINVAL)
        rc = -ENOENT; /* not a ref expression lakeFS understands */
    if (rc)
        return rc == -ENOENT ? rc
                             : log_failure(t, rc, &err, "resolving ref", name);
    *out = ref_make(repo, name, commit.id, "", commit.creation_date, ns);
    lakefs_commit_free(&commit);
    return *out ? 0 : -ENOMEM;
}

/* ns: the repository's storage namespace (NULL: unknown). */
static int ref_lookup(tree *t, const char *repo, const char *ns,
                      const char *name, const tree_ref **out)
{
    if (!listing_name_is_valid(name))
        return -ENOENT;
    pthread_mutex_lock(&t->lock);
    const tree_ref *known = ref_find_locked(t, repo, name);
    pthread_mutex_unlock(&t->lock);
    int rc = 0;
    if (known && !known->is_branch) {
        *out = known;
        return 0;
    }
    /* A branch is believed while the (cached) branch list shows it. */
    bool listed = is_listed_branch(t, repo, name, &rc);
    if (rc)
        return rc;
    if (listed && known) {
        *out = known;
        return 0;
    }
    char *negative_key = join3(repo, KEY_SEPARATOR, name);
    if (!negative_key)
        return -ENOMEM;
    if (!listed && negative_find(t, negative_key)) {
        free(negative_key);
        return -ENOENT;
    }
    tree_ref *r = NULL;
    if (listed) {
        r = ref_make(repo, name, NULL, "", 0, ns);
        rc = r ? 0 : -ENOMEM;
    } else {
        rc = ref_resolve_remote(t, repo, ns, name, &r);
    }
    if (rc == -ENOENT) {
        negative_add(t, negative_key);
        return rc;
    }
    free(negative_key);
    return rc ? rc : ref_add(t, r, out);
}

/* ---- public ---- */

tree *tree_new(const tree_config *cfg, int *err)
{
    tree *t = calloc(1, sizeof(*t));
    if (!t) {
        *err = -ENOMEM;
        return NULL;
    }
    t->client = cfg->client;
    t->log = cfg->log;
    t->ttl_ms = cfg->attr_timeout_ms;
    t->max_dir_entries =
        cfg->max_dir_entries ? cfg->max_dir_entries : TREE_MAX_DIR_ENTRIES;
    pthread_mutex_init(&t->lock, NULL);
    t->listings = listings_new(cfg->meta, cfg->log);
    flatwalk_config flat = {.client = t->client, .listings = t->listings,
                            .log = t->log, .ttl_ms = t->ttl_ms,
                            .max_dir_entries = t->max_dir_entries,
                            .source = flat_dir_source,
                            .build = build_flat_dir, .ctx = t};
    t->flat = flatwalk_new(&flat);
    const lakefuse_uri *u = cfg->uri;
    bool ns_ok = true;
    if (cfg->target && cfg->target->storage_namespace) {
        t->repo_namespace = strdup(cfg->target->storage_namespace);
        ns_ok = t->repo_namespace != NULL;
    }
    t->mode = !u->repo ? TREE_MODE_ALL : !u->ref ? TREE_MODE_REPO
                                                  : TREE_MODE_REF;
    t->uri.repo = u->repo ? strdup(u->repo) : NULL;
    t->uri.ref = u->ref ? strdup(u->ref) : NULL;
    t->uri.prefix = u->prefix ? strdup(u->prefix) : NULL;
    t->refs = calloc(MAX_REFS, sizeof(*t->refs));
    bool ok = ns_ok && t->refs && t->listings && t->flat &&
              (!u->repo || t->uri.repo) && (!u->ref || t->uri.ref) &&
              (!u->prefix || t->uri.prefix);
    if (ok && t->mode == TREE_MODE_REF) {
        const mount_target *tg = cfg->target;
        if (!tg || !tg->commit_id) {
            tree_free(t);
            *err = -EINVAL;
            return NULL;
        }
        t->single = ref_make(u->repo, u->ref,
                             tg->is_branch ? NULL : tg->commit_id,
                             u->prefix, 0, tg->storage_namespace);
        ok = t->single != NULL;
    }
    if (!ok) {
        tree_free(t);
        *err = -ENOMEM;
        return NULL;
    }
    *err = 0;
    return t;
}

void tree_free(tree *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->ref_count; i++)
        ref_free(t->refs[i]);
    free(t->refs);
    ref_free(t->single);
    for (size_t i = 0; i < MAX_NEGATIVE_REFS; i++)
        free(t->negatives[i].repo_and_name);
    flatwalk_free(t->flat);
    uri_free(&t->uri);
    free(t->repo_namespace);
    listings_free(t->listings);
    strset_clear(&t->special_modes);
    for (size_t i = 0; i < t->local_count; i++)
        free(t->local_dirs[i]);
    free(t->local_dirs);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

void tree_set_pending_files(tree *t, tree_pending_fn fn, void *ctx)
{
    /* A flat listing going on in the background asks the hook for the
     * directories it completes: none may be running across the change. */
    flatwalk_quiesce(t->flat);
    t->pending = fn;
    t->pending_ctx = ctx;
}

tree_mode tree_get_mode(const tree *t)
{
    return t->mode;
}

bool tree_is_fixed(const tree *t)
{
    return t->mode == TREE_MODE_REF && !t->single->is_branch;
}

void tree_node_free(tree_node *n)
{
    free(n->repo);
    free(n->key);
    fs_entry_free(&n->entry);
    memset(n, 0, sizeof(*n));
}

char *tree_object_key(const tree_node *n)
{
    if (!n->ref || !n->key)
        return NULL;
    return join3(n->ref->prefix, n->key, "");
}

int tree_ref_head(tree *t, const tree_ref *ref, char **out)
{
    *out = NULL;
    if (!ref->is_branch) {
        *out = strdup(ref->commit_id);
        return *out ? 0 : -ENOMEM;
    }
    lakefs_ref branch;
    lakefs_error err = {0};
    int rc = lakefs_get_branch(t->client, ref->repo, ref->name, &branch,
                               &err);
    if (rc)
        return log_failure(t, rc, &err, "reading the head of", ref->name);
    *out = branch.commit_id;
    branch.commit_id = NULL;
    lakefs_ref_free(&branch);
    return 0;
}

/* ---- paths ---- */

/* Splits a mount path in place into at most max components. */
static int split_path(char *path, char **comps, size_t max, size_t *n)
{
    *n = 0;
    for (char *save = NULL, *c = strtok_r(path, "/", &save); c;
         c = strtok_r(NULL, "/", &save)) {
        if (*n == max || strlen(c) > LISTING_NAME_MAX)
            return -ENAMETOOLONG; /* POSIX: no component over NAME_MAX */
        comps[(*n)++] = c;
    }
    return 0;
}

static const char *const control_names[TREE_CONTROL_COUNT] = {
    [TREE_CONTROL_HEAD] = "head",
    [TREE_CONTROL_STATS] = "stats",
    [TREE_CONTROL_STATUS] = "status",
    [TREE_CONTROL_STATUS_JSON] = "status.json",
    [TREE_CONTROL_COMMIT] = "commit",
    [TREE_CONTROL_MERGE] = "merge",
    [TREE_CONTROL_BRANCH] = "branch",
    [TREE_CONTROL_RESET] = "reset",
    [TREE_CONTROL_DIFF] = "diff",
};

const char *tree_control_name(tree_control c)
{
    return c > TREE_CONTROL_NONE && c < TREE_CONTROL_COUNT ? control_names[c]
                                                           : NULL;
}

bool tree_control_exists(tree_control c, bool in_ref)
{
    if (c <= TREE_CONTROL_NONE || c >= TREE_CONTROL_COUNT)
        return false;
    return in_ref || c == TREE_CONTROL_STATS;
}

static int resolve_control(const tree_ref *ref, char **comps, size_t n,
                           tree_node *out)
{
    out->ref = ref;
    out->kind = TREE_CONTROL_DIR;
    if (n == 1)
        return 0;
    tree_control found = TREE_CONTROL_NONE;
    for (int c = TREE_CONTROL_NONE + 1; c < TREE_CONTROL_COUNT; c++)
        if (tree_control_exists((tree_control)c, ref != NULL) &&
            strcmp(comps[1], control_names[c]) == 0)
            found = (tree_control)c;
    out->control = found;
    if (found == TREE_CONTROL_NONE || (found != TREE_CONTROL_DIFF && n > 2) ||
        n > 3)
        return -ENOENT;
    if (found != TREE_CONTROL_DIFF) {
        out->kind = TREE_CONTROL_FILE;
        return 0;
    }
    if (n == 2) /* the diff/ directory */
        return 0;
    out->kind = TREE_CONTROL_FILE;
    out->key = strdup(comps[2]); /* the other ref, checked when read */
    return out->key ? 0 : -ENOMEM;
}

/* Joins comps[0..n) with "/" into a new string ("" for n == 0). */
static char *join_components(char **comps, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(comps[i]) + 1;
    char *s = malloc(len);
    if (!s)
        return NULL;
    s[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(s, "/");
        strcat(s, comps[i]);
    }
    return s;
}

/* comps[0..n) is a path inside ref. */
static int resolve_in_ref(tree *t, const tree_ref *ref, char **comps,
                          size_t n, tree_node *out)
{
    out->ref = ref;
    if (n == 0) {
        out->kind = TREE_DIR;
        out->ref_root = true;
        out->key = strdup("");
        return out->key ? 0 : -ENOMEM;
    }
    if (strcmp(comps[0], TREE_CONTROL_DIR_NAME) == 0)
        return resolve_control(ref, comps, n, out);
    /* No lakeFS key is longer: listings never show one (listing_build),
     * and creating one is refused with the same errno. */
    size_t key_len = strlen(ref->prefix) + n - 1;
    for (size_t i = 0; i < n; i++)
        key_len += strlen(comps[i]);
    if (key_len > LAKEFS_MAX_PATH_LENGTH)
        return -ENAMETOOLONG;
    char *dir = join_components(comps, n - 1);
    if (!dir)
        return -ENOMEM;
    listing_source src;
    objects_source(t, ref, dir, &src);
    int rc = (out->stat_only ? listings_lookup_stat : listings_lookup)(
        t->listings, &src, comps[n - 1], &out->entry);
    free(dir);
    if (rc <= 0)
        return rc == 0 ? -ENOENT : rc;
    out->kind = out->entry.is_dir ? TREE_DIR : TREE_FILE;
    out->key = join_components(comps, n);
    return out->key ? 0 : -ENOMEM;
}

static int resolve_repository(tree *t, const char *repo, const char *ns,
                              char **comps, size_t n, tree_node *out)
{
    out->repo = strdup(repo);
    if (!out->repo)
        return -ENOMEM;
    if (n == 0) {
        out->kind = TREE_REPOSITORY;
        return 0;
    }
    const tree_ref *ref;
    int rc = ref_lookup(t, repo, ns, comps[0], &ref);
    if (rc)
        return rc;
    return resolve_in_ref(t, ref, comps + 1, n - 1, out);
}

static int resolve_path(tree *t, const char *path, tree_node *out,
                        bool stat_only)
{
    memset(out, 0, sizeof(*out));
    out->stat_only = stat_only;
    /* Every FUSE call comes here: size the array to the path. */
    size_t max = 1;
    for (const char *p = path; *p; p++)
        max += *p == '/';
    char *copy = strdup(path);
    char **comps = malloc(max * sizeof(*comps));
    size_t n = 0;
    int rc = copy && comps ? 0 : -ENOMEM;
    if (rc == 0)
        rc = split_path(copy, comps, max, &n);
    if (rc == 0) {
        bool control = n > 0 && strcmp(comps[0], TREE_CONTROL_DIR_NAME) == 0;
        if (t->mode == TREE_MODE_REF) {
            out->repo = strdup(t->single->repo);
            rc = out->repo ? resolve_in_ref(t, t->single, comps, n, out)
                           : -ENOMEM;
        } else if (control) {
            rc = resolve_control(NULL, comps, n, out);
        } else if (t->mode == TREE_MODE_REPO) {
            rc = resolve_repository(t, t->uri.repo, t->repo_namespace, comps,
                                    n, out);
        } else if (n == 0) {
            out->kind = TREE_REPOSITORIES;
        } else {
            listing_source src;
            repositories_source(t, &src);
            fs_entry repo = {0};
            rc = listings_lookup(t->listings, &src, comps[0], &repo);
            rc = rc == 1 ? resolve_repository(t, comps[0],
                                              repo.physical_address,
                                              comps + 1, n - 1, out)
                         : rc == 0 ? -ENOENT : rc;
            fs_entry_free(&repo);
        }
    }
    free(comps);
    free(copy);
    if (rc)
        tree_node_free(out);
    return rc;
}

int tree_resolve(tree *t, const char *path, tree_node *out)
{
    return resolve_path(t, path, out, false);
}

int tree_resolve_stat(tree *t, const char *path, tree_node *out)
{
    return resolve_path(t, path, out, true);
}

/* Hides an object named like the control directory at a ref root. */
typedef struct hide_control_ctx {
    int (*fn)(void *ctx, const fs_entry *e);
    void *ctx;
    bool root;
} hide_control_ctx;

static int skip_control_entry(void *ctx, const fs_entry *e)
{
    hide_control_ctx *h = ctx;
    if (strcmp(e->name, TREE_MARKER_NAME) == 0)
        return 0; /* the directory itself */
    if (h->root && strcmp(e->name, TREE_CONTROL_DIR_NAME) == 0)
        return 0;
    return h->fn(h->ctx, e);
}

typedef struct dir_info_ctx {
    fs_entry *marker;
    bool *has_marker;
    size_t *subdirs;
    int rc;
} dir_info_ctx;

static int note_dir_entry(void *ctx, const fs_entry *e)
{
    dir_info_ctx *d = ctx;
    if (strcmp(e->name, TREE_MARKER_NAME) == 0) {
        if (d->marker && !*d->has_marker) {
            d->rc = fs_entry_copy(d->marker, e);
            *d->has_marker = d->rc == 0;
        }
    } else if (e->is_dir) {
        ++*d->subdirs;
    }
    return d->rc;
}

int tree_dir_info(tree *t, const tree_node *dir, fs_entry *marker,
                  bool *has_marker, size_t *subdirs)
{
    *has_marker = false;
    *subdirs = 0;
    if (marker)
        memset(marker, 0, sizeof(*marker));
    if (dir->kind != TREE_DIR)
        return -ENOTDIR;
    listing_source src;
    objects_source(t, dir->ref, dir->key, &src);
    dir_info_ctx d = {marker, has_marker, subdirs, 0};
    int rc = listings_foreach(t->listings, &src, note_dir_entry, &d);
    if (rc && *has_marker)
        fs_entry_free(marker);
    if (rc)
        *has_marker = false;
    return rc < 0 ? rc : rc > 0 ? d.rc : 0;
}

int tree_dir_marker(tree *t, const tree_node *dir, fs_entry *marker)
{
    memset(marker, 0, sizeof(*marker));
    if (dir->kind != TREE_DIR || dir->ref_root)
        return 0;
    listing_source src;
    objects_source(t, dir->ref, dir->key, &src);
    if (src.ttl_ms >= 0)
        return listings_lookup_stat(t->listings, &src, TREE_MARKER_NAME,
                                    marker);
    /* Nothing is cached (attr_timeout=0): one statObject of the marker,
     * not every page of the directory. */
    char *key = NULL;
    if (asprintf(&key, "%s%s/", dir->ref->prefix, dir->key) < 0)
        return -ENOMEM;
    lakefs_object_stats st;
    memset(&st, 0, sizeof(st));
    lakefs_error err = {0};
    int rc = lakefs_stat_object(t->client, dir->ref->repo,
                                dir->ref->api_ref, key, false, &st, &err);
    if (rc == 0)
        rc = fs_entry_from_marker(marker, TREE_MARKER_NAME, &st) == 0
                 ? 1
                 : -ENOMEM;
    else if (rc == -ENOENT)
        rc = 0;
    else
        rc = log_failure(t, rc, &err, "reading the marker of", key);
    lakefs_object_stats_free(&st);
    free(key);
    return rc;
}

uint64_t tree_dir_generation(tree *t, const tree_ref *ref)
{
    listing_source src;
    objects_source(t, ref, "", &src);
    return listings_generation(t->listings, &src);
}

int tree_cache_new_dir(tree *t, const tree_ref *ref, const char *dir,
                       const lakefs_object_stats *marker,
                       uint64_t generation)
{
    listing_source src;
    objects_source(t, ref, dir, &src);
    if (src.ttl_ms < 0)
        return 0; /* attr_timeout=0: nothing is cached */
    char *prefix = join3(ref->prefix, dir, dir[0] ? "/" : "");
    if (!prefix)
        return -ENOMEM;
    /* Its marker, when the writer has it still to upload (-o async_close),
     * is what the writer lists. */
    pending_files pending = {0};
    fs_entry *entries = NULL;
    size_t n = 0;
    int rc = collect_pending(t, ref, prefix, &pending);
    if (rc == 0)
        rc = build_objects(t, ref, dir, prefix, marker, marker ? 1 : 0,
                           &pending, &entries, &n);
    if (rc == 0)
        rc = listings_store(t->listings, &src, dir, entries, n, generation);
    fs_entries_free(pending.items, pending.n);
    free(prefix);
    return rc;
}

int tree_list(tree *t, const tree_node *dir,
              int (*fn)(void *ctx, const fs_entry *e), void *ctx)
{
    listing_source src;
    switch (dir->kind) {
    case TREE_REPOSITORIES:
        repositories_source(t, &src);
        return listings_foreach(t->listings, &src, fn, ctx);
    case TREE_REPOSITORY: {
        char *key;
        int rc = branches_source(t, dir->repo, &src, &key);
        if (rc == 0)
            rc = listings_foreach(t->listings, &src, fn, ctx);
        free(key);
        return rc;
    }
    case TREE_DIR: {
        objects_source(t, dir->ref, dir->key, &src);
        if (src.ttl_ms >= 0)
            flatwalk_note_read(t->flat, dir->ref, dir->key);
        hide_control_ctx h = {fn, ctx, dir->ref_root};
        return listings_foreach(t->listings, &src, skip_control_entry, &h);
    }
    default:
        return -ENOTDIR;
    }
}

int tree_snapshot(tree *t, const tree_node *dir, entryset **out)
{
    *out = NULL;
    listing_source src;
    switch (dir->kind) {
    case TREE_REPOSITORIES:
        repositories_source(t, &src);
        return listings_snapshot(t->listings, &src, out);
    case TREE_REPOSITORY: {
        char *key;
        int rc = branches_source(t, dir->repo, &src, &key);
        if (rc == 0)
            rc = listings_snapshot(t->listings, &src, out);
        free(key);
        return rc;
    }
    case TREE_DIR:
        objects_source(t, dir->ref, dir->key, &src);
        if (src.ttl_ms >= 0)
            flatwalk_note_read(t->flat, dir->ref, dir->key);
        return listings_snapshot(t->listings, &src, out);
    default:
        return -ENOTDIR;
    }
}

bool tree_list_shows(const tree_node *dir, const fs_entry *e)
{
    if (dir->kind != TREE_DIR)
        return true;
    if (strcmp(e->name, TREE_MARKER_NAME) == 0)
        return false;
    return !(dir->ref_root && strcmp(e->name, TREE_CONTROL_DIR_NAME) == 0);
}

int tree_resolve_parent(tree *t, const char *path, tree_node *parent,
                        char **name)
{
    *name = NULL;
    memset(parent, 0, sizeof(*parent));
    const char *slash = strrchr(path, '/');
    if (!slash || !slash[1])
        return -EINVAL;
    if (strlen(slash + 1) > LISTING_NAME_MAX)
        return -ENAMETOOLONG;
    char *dir = slash == path ? strdup("/")
                              : strndup(path, (size_t)(slash - path));
    *name = strdup(slash + 1);
    int rc = dir && *name ? tree_resolve(t, dir, parent) : -ENOMEM;
    free(dir);
    if (rc) {
        free(*name);
        *name = NULL;
    }
    return rc;
}

char *tree_child_key(const tree_node *dir, const char *name)
{
    if (!dir->key)
        return NULL;
    return join3(dir->key, dir->key[0] ? "/" : "", name);
}

char *tree_mount_path(const tree *t, const tree_ref *ref, const char *rel)
{
    char *s = NULL;
    const char *sep = rel[0] ? "/" : "";
    int rc;
    if (t->mode == TREE_MODE_ALL)
        rc = asprintf(&s, "/%s/%s%s%s", ref->repo, ref->name, sep, rel);
    else if (t->mode == TREE_MODE_REPO)
        rc = asprintf(&s, "/%s%s%s", ref->name, sep, rel);
    else
        rc = asprintf(&s, "/%s", rel);
    return rc < 0 ? NULL : s;
}

void tree_forget_repositories(tree *t)
{
    listings_forget(t->listings, REPOSITORIES_KEY);
}

void tree_forget_branches(tree *t, const char *repo)
{
    char *key = join3(REFS_KEY_PREFIX, repo, "");
    if (key)
        listings_forget(t->listings, key);
    free(key);
    /* A name that was not a branch a moment ago may be one now. */
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < MAX_NEGATIVE_REFS; i++) {
        free(t->negatives[i].repo_and_name);
        t->negatives[i].repo_and_name = NULL;
    }
    pthread_mutex_unlock(&t->lock);
}
