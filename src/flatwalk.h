/*
 * flatwalk.h - a walk's directory listings (find, du, ls -R, rsync) served
 * from one flat listing of their parent's subtree instead of one delimited
 * listing each; and the page iterator every listObjects walk of the tree
 * goes through. Knows nothing of FUSE; never stores a directory listing it
 * has not seen whole.
 */
#ifndef LAKEFUSE_FLATWALK_H
#define LAKEFUSE_FLATWALK_H

#include "lakefs.h"
#include "listings.h"
#include "log.h"
#include "tree.h"

#include <stdbool.h>
#include <stdint.h>

/* Keys asked for a page by every listing of the tree; the flat walk's
 * credit rule counts in pages of this size. */
#define FLATWALK_PAGE_AMOUNT 1000

/* ---- the pages of one listObjects walk ---- */

/* Guarded by a lakefs_pager: pager.pages counts the pages taken and
 * pager.done says the last one was. */
typedef struct page_ahead page_ahead;

typedef struct object_pages {
    lakefs_client *client;
    const tree_ref *ref;
    lakefs_list_params params; /* params.after follows pager.after */
    lakefs_pager pager;
    lakefs_error err; /* what a failure said */
    page_ahead *ahead; /* the next page, asked for already (NULL: not) */
    const char *end; /* not the caller's to free: no page is asked for
                        ahead once a page reached this key (NULL: none) */
} object_pages;

/* Walks listObjects(p) of ref from p->after (NULL: the first key); more
 * than max_items items (0: no limit) is -EFBIG. 0 or -ENOMEM; free it
 * with object_pages_free either way. */
int object_pages_init(object_pages *it, lakefs_client *c, const tree_ref *ref,
                      const lakefs_list_params *p, uint64_t max_items);
/* 1 and the next page in *page (free it with lakefs_object_list_free), 0
 * when the last page was taken, or a negative errno (it->err says why). */
int object_pages_next(object_pages *it, lakefs_object_list *page);
/* Whether the page after page n (numbered from 1) is sure to be taken if
 * there is one: only then is it asked for before page n is parsed. */
typedef bool (*object_pages_sure_fn)(void *ctx, uint64_t n);
/* object_pages_next, asking for the next page as soon as this one's body
 * is in (before its parse and the caller's work on it) when sure says it
 * will be taken: lakeFS answers it meanwhile. */
int object_pages_next_ahead(object_pages *it, lakefs_object_list *page,
                            object_pages_sure_fn sure, void *ctx);
/* Waits for a page asked for ahead (a request made is a request waited
 * for) and frees it. */
void object_pages_free(object_pages *it);

/* Frees count items and the array. */
void object_items_free(lakefs_object_stats *items, size_t count);

/* ---- walks served from flat listings ---- */

typedef struct flatwalk_config {
    lakefs_client *client;
    listings *listings;
    logger *log;
    int64_t ttl_ms;   /* a directory is flat-listed again once its last
                         flat listing is this old (0: never again) */
    uint64_t max_dir_entries; /* a directory with more is left to its own
                                 listing, which reports it */
    /* The listing source of dir in ref, as the tree's lookups use it. */
    void (*source)(void *ctx, const tree_ref *ref, const char *dir,
                   listing_source *src);
    /* A directory's entries (dir in ref, key prefix `prefix`) from the
     * items its delimited listing would give, as the tree builds them. */
    int (*build)(void *ctx, const tree_ref *ref, const char *dir,
                 const char *prefix, const lakefs_object_stats *items,
                 size_t count, fs_entry **entries, size_t *n);
    void *ctx;
} flatwalk_config;

typedef struct flatwalk flatwalk;

/* NULL when out of memory. */
flatwalk *flatwalk_new(const flatwalk_config *cfg);
/* Stops the flat listings going on in the background after their answer
 * (each ends after the page it is taking) and waits for them: before what
 * they call (the config's build and source, the listings) goes away. */
void flatwalk_quiesce(flatwalk *fw);
void flatwalk_free(flatwalk *fw);
/* readdir read dir of ref: a walk of its subdirectories may follow. */
void flatwalk_note_read(flatwalk *fw, const tree_ref *ref, const char *dir);
/* What a flat listing that stopped inside the asked directory brought of
 * it: the items its delimited listing gives, in order, up to and
 * including key `after`; its listing goes on from there. */
typedef struct flatwalk_partial {
    lakefs_object_stats *items;
    size_t n;
    char *after;
} flatwalk_partial;
void flatwalk_partial_free(flatwalk_partial *p);

/* 1 and the listing of src's directory (the caller frees it) when a flat
 * listing of its parent's subtree gave it, the other directories it
 * completed stored in the listings; 2 and *partial (free it with
 * flatwalk_partial_free) when the flat listing stopped inside it, at a
 * key of its own (no subdirectory of it open), so that its delimited
 * listing goes on after partial->after instead of starting again; 0 when
 * it is to be listed alone. */
int flatwalk_fetch(flatwalk *fw, const listing_source *src,
                   fs_entry **entries, size_t *n, flatwalk_partial *partial);

#endif
