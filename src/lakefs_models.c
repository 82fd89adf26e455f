/*
 * lakefs_models.c - ownership of the public model structs: metadata maps,
 * deep copies and the *_free functions, and the pager that guards every
 * paged walk. Every free zeroes what it freed, so freeing twice or
 * freeing a zeroed struct is harmless.
 */
#include "lakefs_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *lakefs_metadata_get(const lakefs_metadata *md, const char *key)
{
    for (size_t i = 0; md && i < md->count; i++)
        if (strcmp(md->items[i].key, key) == 0)
            return md->items[i].value;
    return NULL;
}

bool lakefs_metadata_equal(const lakefs_metadata *a, const lakefs_metadata *b)
{
    if (a->count != b->count)
        return false;
    for (size_t i = 0; i < b->count; i++) {
        const char *v = lakefs_metadata_get(a, b->items[i].key);
        if (!v || strcmp(v, b->items[i].value) != 0)
            return false;
    }
    return true;
}

int lakefs_metadata_set(lakefs_metadata *md, const char *key,
                        const char *value)
{
    char *v = strdup(value);
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < md->count; i++) {
        if (strcmp(md->items[i].key, key) == 0) {
            free(md->items[i].value);
            md->items[i].value = v;
            return 0;
        }
    }
    char *k = strdup(key);
    lakefs_kv *items = k ? realloc(md->items, (md->count + 1) * sizeof(*items))
                         : NULL;
    if (!items) {
        free(k);
        free(v);
        return -ENOMEM;
    }
    items[md->count].key = k;
    items[md->count].value = v;
    md->items = items;
    md->count++;
    return 0;
}

void lakefs_metadata_free(lakefs_metadata *md)
{
    for (size_t i = 0; i < md->count; i++) {
        free(md->items[i].key);
        free(md->items[i].value);
    }
    free(md->items);
    md->items = NULL;
    md->count = 0;
}

void lakefs_repository_free(lakefs_repository *r)
{
    free(r->id);
    free(r->default_branch);
    free(r->storage_namespace);
    free(r->storage_id);
    memset(r, 0, sizeof(*r));
}

void lakefs_ref_free(lakefs_ref *r)
{
    free(r->id);
    free(r->commit_id);
    memset(r, 0, sizeof(*r));
}

void lakefs_commit_free(lakefs_commit *c)
{
    for (size_t i = 0; i < c->parent_count; i++)
        free(c->parents[i]);
    free(c->parents);
    free(c->id);
    free(c->committer);
    free(c->message);
    free(c->meta_range_id);
    lakefs_metadata_free(&c->metadata);
    memset(c, 0, sizeof(*c));
}

void lakefs_object_stats_free(lakefs_object_stats *s)
{
    free(s->path);
    free(s->physical_address);
    free(s->checksum);
    free(s->content_type);
    lakefs_metadata_free(&s->metadata);
    memset(s, 0, sizeof(*s));
}

void lakefs_diff_free(lakefs_diff *d)
{
    free(d->path);
    memset(d, 0, sizeof(*d));
}

void lakefs_staging_location_free(lakefs_staging_location *l)
{
    free(l->physical_address);
    free(l->presigned_url);
    memset(l, 0, sizeof(*l));
}

void lakefs_multipart_upload_free(lakefs_multipart_upload *u)
{
    for (size_t i = 0; i < u->url_count; i++)
        free(u->presigned_urls[i]);
    free(u->presigned_urls);
    free(u->upload_id);
    free(u->physical_address);
    memset(u, 0, sizeof(*u));
}

void lakefs_storage_config_free(lakefs_storage_config *s)
{
    free(s->blockstore_type);
    free(s->blockstore_id);
    free(s->default_namespace_prefix);
    memset(s, 0, sizeof(*s));
}

void lakefs_config_free(lakefs_config *c)
{
    free(c->version);
    lakefs_storage_config_free(&c->storage);
    for (size_t i = 0; i < c->storage_list_count; i++)
        lakefs_storage_config_free(&c->storage_list[i]);
    free(c->storage_list);
    memset(c, 0, sizeof(*c));
}

void lakefs_user_free(lakefs_user *u)
{
    free(u->id);
    free(u->email);
    memset(u, 0, sizeof(*u));
}

#define DEFINE_LIST_FREE(list_type, elem_free)                                \
    void list_type##_free(list_type *l)                                       \
    {                                                                         \
        for (size_t i = 0; i < l->count; i++)                                 \
            elem_free(&l->items[i]);                                          \
        free(l->items);                                                       \
        free(l->pagination.next_offset);                                      \
        memset(l, 0, sizeof(*l));                                             \
    }

DEFINE_LIST_FREE(lakefs_repository_list, lakefs_repository_free)
DEFINE_LIST_FREE(lakefs_ref_list, lakefs_ref_free)
DEFINE_LIST_FREE(lakefs_commit_list, lakefs_commit_free)
DEFINE_LIST_FREE(lakefs_object_list, lakefs_object_stats_free)
DEFINE_LIST_FREE(lakefs_diff_list, lakefs_diff_free)

void lakefs_object_error_list_free(lakefs_object_error_list *l)
{
    for (size_t i = 0; i < l->count; i++) {
        free(l->items[i].message);
        free(l->items[i].path);
    }
    free(l->items);
    memset(l, 0, sizeof(*l));
}

static int copy_string(char **dst, const char *src)
{
    if (!src) {
        *dst = NULL;
        return 0;
    }
    *dst = strdup(src);
    return *dst ? 0 : -ENOMEM;
}

int lakefs_object_stats_copy(lakefs_object_stats *dst,
                             const lakefs_object_stats *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->path_type = src->path_type;
    dst->physical_address_expiry = src->physical_address_expiry;
    dst->size_bytes = src->size_bytes;
    dst->mtime = src->mtime;
    int rc = copy_string(&dst->path, src->path);
    if (!rc)
        rc = copy_string(&dst->physical_address, src->physical_address);
    if (!rc)
        rc = copy_string(&dst->checksum, src->checksum);
    if (!rc)
        rc = copy_string(&dst->content_type, src->content_type);
    for (size_t i = 0; !rc && i < src->metadata.count; i++)
        rc = lakefs_metadata_set(&dst->metadata, src->metadata.items[i].key,
                                 src->metadata.items[i].value);
    if (rc)
        lakefs_object_stats_free(dst);
    return rc;
}

const lakefs_storage_config *
lakefs_config_storage_for(const lakefs_config *config, const char *storage_id)
{
    for (size_t i = 0; storage_id && *storage_id &&
                       i < config->storage_list_count;
         i++) {
        const lakefs_storage_config *s = &config->storage_list[i];
        if (s->blockstore_id && strcmp(s->blockstore_id, storage_id) == 0)
            return s;
    }
    if (config->has_storage)
        return &config->storage;
    return config->storage_list_count ? &config->storage_list[0] : NULL;
}

/* ---- the pager ---- */

void lakefs_pager_init(lakefs_pager *p, bool ordered, uint64_t max_items)
{
    memset(p, 0, sizeof(*p));
    p->ordered = ordered;
    p->max_items = max_items;
}

void lakefs_pager_free(lakefs_pager *p)
{
    free(p->after);
    free(p->seen);
    memset(p, 0, sizeof(*p));
}

static uint64_t offset_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Unordered walks: whether offset was met before; remembers it. A hash
 * collision could only end a walk early with an error, never loop. */
static int seen_before(lakefs_pager *p, const char *offset, bool *seen)
{
    uint64_t h = offset_hash(offset);
    *seen = false;
    for (size_t i = 0; i < p->seen_count && !*seen; i++)
        *seen = p->seen[i] == h;
    if (*seen)
        return 0;
    if (p->seen_count == p->seen_cap) {
        size_t cap = p->seen_cap ? p->seen_cap * 2 : 16;
        uint64_t *grown = realloc(p->seen, cap * sizeof(*grown));
        if (!grown)
            return -ENOMEM;
        p->seen = grown;
        p->seen_cap = cap;
    }
    p->seen[p->seen_count++] = h;
    return 0;
}

int lakefs_pager_next(lakefs_pager *p, const lakefs_pagination *page,
                      size_t count, lakefs_error *err)
{
    p->pages++;
    p->items += count;
    if (p->max_items && p->items > p->max_items) {
        lakefs_error_set(err, 0, "more than %llu entries",
                         (unsigned long long)p->max_items);
        return -EFBIG;
    }
    if (!page->has_more) {
        p->done = true;
        return 0;
    }
    const char *next = page->next_offset;
    const char *why = NULL;
    bool seen = false;
    if (count == 0)
        why = "an empty page says there is more";
    else if (!next || !*next)
        why = "more pages but no next_offset";
    else if (p->ordered && p->after && strcmp(next, p->after) <= 0)
        why = "next_offset does not advance";
    else if (!p->ordered) {
        /* Every earlier offset was a next_offset, and is in the set. */
        if (seen_before(p, next, &seen) != 0)
            return -ENOMEM;
        if (seen)
            why = "next_offset repeats an earlier one";
    }
    if (why) {
        lakefs_error_set(err, 0,
                         "malformed lakeFS response: pagination does not "
                         "advance (%s, page %llu)",
                         why, (unsigned long long)p->pages);
        return -EPROTO;
    }
    char *copy = strdup(next);
    if (!copy)
        return -ENOMEM;
    free(p->after);
    p->after = copy;
    return 0;
}
