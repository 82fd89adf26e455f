/*
 * fs_source.c - where an open file's bytes come from: a presigned URL
 * (asked for at the first fetch, from a batch of its directory's:
 * urlbatch.h; refreshed with statObject near its expiry) or the lakeFS
 * API, with the checks that keep a replaced object from being cached under
 * the listed one's key. Never shows a URL; never fetches for a cached read.
 */
#include "fs_internal.h"
#include "urlbatch.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A presigned URL is refreshed this long before it expires. */
#define URL_REFRESH_MARGIN_S 30

typedef struct object_source {
    lakefuse_fs *fs;
    char *repo;
    char *ref;       /* branch name or commit id */
    char *key;       /* object key */
    char *list_from; /* object key a URL listing starts at; NULL: key */
    char *checksum;
    int64_t size;    /* as listed: an answer for another size is refused */
    bool check_etag; /* branch: the object at key may have been replaced */
    bool unverified_logged;
    char *cache_key; /* to drop the listing when the object changed */
    char *dir;
    pthread_mutex_t lock;
    char *url; /* presigned, asked for at the first fetch (urlbatch) */
    int64_t url_expiry;
    bool api_only; /* no presigned URL: read through the API */
} object_source;

static void object_source_free(void *p)
{
    object_source *s = p;
    if (!s)
        return;
    free(s->repo);
    free(s->ref);
    free(s->key);
    free(s->list_from);
    free(s->checksum);
    free(s->cache_key);
    free(s->dir);
    free(s->url);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static bool is_presigned_url(const fs_entry *e)
{
    return e->physical_address && e->physical_address_expiry > 0 &&
           strncmp(e->physical_address, "http", 4) == 0;
}

static object_source *object_source_new(lakefuse_fs *fs, const tree_node *n)
{
    object_source *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    s->fs = fs;
    s->repo = strdup(n->ref->repo);
    s->ref = strdup(n->ref->api_ref);
    s->key = tree_object_key(n);
    s->checksum = strdup(n->entry.checksum ? n->entry.checksum : "");
    s->size = n->entry.size;
    s->check_etag = n->ref->is_branch;
    s->cache_key = strdup(n->ref->cache_key);
    const char *slash = strrchr(n->key, '/');
    s->dir = slash ? strndup(n->key, (size_t)(slash - n->key)) : strdup("");
    bool ok = s->repo && s->ref && s->key && s->checksum && s->cache_key &&
              s->dir;
    if (!ok) {
        object_source_free(s);
        return NULL;
    }
    s->api_only = !fs->urls;
    return s;
}

/* The object changed under its name since it was listed: drop the listing
 * so that the next open sees the new one. */
static int source_stale(object_source *s, const char *why)
{
    logger_write(s->fs->log, LOG_LEVEL_WARNING,
                 "'%s' changed while open (%s); reopen it to read the new "
                 "version", s->key, why);
    metacache_invalidate_dir(s->fs->meta, s->cache_key, s->dir);
    return -ESTALE;
}

/* A new presigned URL from statObject; the checksum must not have moved. */
static int source_refresh_url(object_source *s, char **url_out)
{
    lakefs_object_stats st;
    lakefs_error err = {0};
    int rc = lakefs_stat_object(s->fs->client, s->repo, s->ref, s->key, true,
                                &st, &err);
    if (rc) {
        logger_write(s->fs->log, LOG_LEVEL_ERROR,
                     "refreshing the URL of '%s': %s", s->key, err.message);
        return rc == -ENOENT ? source_stale(s, "deleted") : -EIO;
    }
    if (!st.checksum || strcmp(st.checksum, s->checksum) != 0) {
        lakefs_object_stats_free(&st);
        return source_stale(s, "new checksum");
    }
    pthread_mutex_lock(&s->lock);
    free(s->url);
    s->url = st.physical_address;
    s->url_expiry = st.physical_address_expiry;
    st.physical_address = NULL;
    *url_out = strdup(s->url);
    pthread_mutex_unlock(&s->lock);
    lakefs_object_stats_free(&st);
    return *url_out ? 0 : -ENOMEM;
}

/* The URL to fetch from (*url NULL: the API): the one this file has,
 * refreshed when it is about to expire, or at its first fetch one from
 * a batch of its directory's (a cached read needs none). */
static int source_url(object_source *s, char **url)
{
    pthread_mutex_lock(&s->lock);
    bool have = s->url != NULL, api = s->api_only;
    bool fresh = have && s->url_expiry - (int64_t)time(NULL) >=
                             URL_REFRESH_MARGIN_S;
    *url = fresh ? strdup(s->url) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (api || fresh)
        return api || *url ? 0 : -ENOMEM;
    if (have)
        return source_refresh_url(s, url);
    lakefs_error err = {0};
    int64_t expiry = 0;
    int rc = urlbatch_get(s->fs->urls, s->repo, s->ref, s->key, s->list_from,
                          s->checksum, URL_REFRESH_MARGIN_S, url, &expiry,
                          &err);
    if (rc == -ENOENT || rc == -ESTALE)
        return source_stale(s, rc == -ENOENT ? "deleted" : "new checksum");
    pthread_mutex_lock(&s->lock);
    if (rc == -EPROTO) { /* the server gave no usable URL */
        s->api_only = true;
        rc = 0;
    } else if (rc == 0 && !s->url) {
        s->url = strdup(*url);
        s->url_expiry = expiry;
    }
    pthread_mutex_unlock(&s->lock);
    if (rc && rc != -ENOMEM)
        logger_write(s->fs->log, LOG_LEVEL_ERROR, "presigning '%s': %s",
                     s->key, err.message);
    return rc == 0 || rc == -ENOMEM ? rc : -EIO;
}

/* reader_fetch_fn: presigned URL when there is one, else the API. */
static int source_fetch(void *p, uint64_t offset, size_t len, void *buf,
                        size_t *out_len)
{
    object_source *s = p;
    lakefs_error err = {0};
    char *url = NULL;
    int rc = source_url(s, &url);
    if (rc)
        return rc;
    lakefs_range_check check = {
        .etag = !url && s->check_etag ? s->checksum : NULL,
        .object_size = s->size,
    };
    if (url) {
        rc = lakefs_read_url_range(s->fs->client, url, &check, offset, len,
                                   buf, out_len, &err);
        free(url);
    } else {
        rc = lakefs_read_object_range(s->fs->client, s->repo, s->ref, s->key,
                                      false, &check, offset, len, buf,
                                      out_len, &err);
        if (rc == -ESTALE || rc == -ENOENT)
            return source_stale(s, err.message);
    }
    if (rc) {
        logger_write(s->fs->log, LOG_LEVEL_ERROR, "reading '%s': %s", s->key,
                     err.message);
        return rc == -ENOMEM ? rc : -EIO;
    }
    if (check.content_unverified) {
        pthread_mutex_lock(&s->lock);
        bool first = !s->unverified_logged;
        s->unverified_logged = true;
        pthread_mutex_unlock(&s->lock);
        if (first)
            logger_write(s->fs->log, LOG_LEVEL_WARNING,
                         "'%s': its bytes do not match their MD5 ETag; "
                         "served but not cached", s->key);
        return READER_FETCH_UNCACHEABLE;
    }
    return 0;
}

/* The data cache key of a listed object (blockcache.h says why each part
 * is in it): a presigned address without its query, which every signature
 * changes. */
int fs_object_content_id(lakefuse_fs *fs, const tree_node *n,
                         blockcache_id *id)
{
    const fs_entry *e = &n->entry;
    char *address = NULL;
    if (is_presigned_url(e)) {
        address = strndup(e->physical_address,
                          strcspn(e->physical_address, "?#"));
        if (!address)
            return -ENOMEM;
    }
    blockcache_object o = {
        .server = lakefs_client_base_url(fs->client),
        .namespace = n->ref->storage_namespace,
        .address = address ? address : e->physical_address,
        .checksum = e->checksum ? e->checksum : "",
        .size = (uint64_t)e->size,
    };
    int rc = blockcache_make_id(&o, id);
    free(address);
    return rc;
}

reader_file *fs_open_object_reader_from(lakefuse_fs *fs, const tree_node *n,
                                        const char *list_from)
{
    blockcache_id id;
    if (fs_object_content_id(fs, n, &id) != 0)
        return NULL;
    object_source *src = object_source_new(fs, n);
    if (!src)
        return NULL;
    if (list_from) {
        src->list_from = fs_object_key(n->ref, list_from);
        if (!src->list_from) {
            object_source_free(src);
            return NULL;
        }
    }
    return reader_open(fs->reader, &id, source_fetch, src, object_source_free);
}

reader_file *fs_open_object_reader(lakefuse_fs *fs, const tree_node *n)
{
    return fs_open_object_reader_from(fs, n, NULL);
}
