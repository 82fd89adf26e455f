/*
 * lakefs_objects.c - lakeFS object operations: listing (with a pagination
 * iterator), stat, ranged reads (through the API or presigned URLs), and
 * writes (uploadObject, the staging flow, presigned multipart upload,
 * delete, copy, user metadata).
 * Object bodies stream through caller buffers and file descriptors; this
 * file never holds a whole object in memory.
 */
#include "lakefs_internal.h"

#include <openssl/evp.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int parse_object_stats(const char *b, size_t n, void *out,
                              lakefs_error *e)
{
    return lakefs_parse_object_stats(b, n, out, e);
}

static int parse_object_list(const char *b, size_t n, void *out,
                             lakefs_error *e)
{
    return lakefs_parse_object_list(b, n, out, e);
}

static int parse_staging_location(const char *b, size_t n, void *out,
                                  lakefs_error *e)
{
    return lakefs_parse_staging_location(b, n, out, e);
}

static int parse_object_error_list(const char *b, size_t n, void *out,
                                   lakefs_error *e)
{
    return lakefs_parse_object_error_list(b, n, out, e);
}

/* "/repositories/{repo}/{kind}/{name}/objects{suffix}?path=..." */
static void object_url(strbuf *url, const char *repo, const char *kind,
                       const char *name, const char *suffix, const char *path)
{
    strbuf_puts(url, "/repositories");
    url_add_segment(url, repo);
    strbuf_puts(url, kind);
    url_add_segment(url, name);
    strbuf_puts(url, suffix);
    if (path)
        url_add_param(url, "path", path);
}

static void add_presign(strbuf *url, bool presign)
{
    if (presign)
        url_add_param(url, "presign", "true");
}

/* ------------------------------------------------------------------ */
/* Listing                                                             */

static void list_objects_url(strbuf *url, const char *repo, const char *ref,
                             const lakefs_list_params *p)
{
    object_url(url, repo, "/refs", ref, "/objects/ls", NULL);
    url_add_list_params(url, p);
    if (p)
        add_presign(url, p->presign);
    if (p && p->no_user_metadata)
        url_add_param(url, "user_metadata", "false");
}

int lakefs_list_objects(lakefs_client *c, const char *repo, const char *ref,
                        const lakefs_list_params *p, lakefs_object_list *out,
                        lakefs_error *err)
{
    strbuf url = STRBUF_INIT;
    list_objects_url(&url, repo, ref, p);
    http_request req;
    http_request_init(&req, LAKEFS_OP_LIST_OBJECTS, "GET");
    return lakefs_call(c, &req, &url, parse_object_list, out, sizeof(*out), err);
}

typedef struct raw_body {
    char *data;
    size_t len;
} raw_body;

static int capture_body(const char *b, size_t n, void *out, lakefs_error *e)
{
    raw_body *r = out;
    r->data = malloc(n + 1);
    if (!r->data) {
        lakefs_error_set(e, 0, "out of memory");
        return -ENOMEM;
    }
    memcpy(r->data, b, n);
    r->data[n] = '\0';
    r->len = n;
    return 0;
}

int lakefs_list_objects_body(lakefs_client *c, const char *repo,
                             const char *ref, const lakefs_list_params *p,
                             char **body, size_t *len, lakefs_error *err)
{
    strbuf url = STRBUF_INIT;
    list_objects_url(&url, repo, ref, p);
    http_request req;
    http_request_init(&req, LAKEFS_OP_LIST_OBJECTS, "GET");
    raw_body r;
    int rc = lakefs_call(c, &req, &url, capture_body, &r, sizeof(r), err);
    *body = rc == 0 ? r.data : NULL;
    *len = rc == 0 ? r.len : 0;
    return rc;
}

int lakefs_list_objects_parse(lakefs_client *c, const char *body, size_t len,
                              lakefs_object_list *out, lakefs_error *err)
{
    memset(out, 0, sizeof(*out));
    int rc = lakefs_parse_object_list(body, len, out, err);
    if (rc)
        lakefs_count_failure(c, LAKEFS_OP_LIST_OBJECTS); /* as lakefs_call */
    return rc;
}

static char *dup_optional(const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = true;
    return d;
}

int lakefs_object_iter_init(lakefs_object_iter *it, lakefs_client *c,
                            const char *repo, const char *ref,
                            const lakefs_list_params *p)
{
    static const lakefs_list_params none = {0};
    if (!p)
        p = &none;
    bool oom = false;
    memset(it, 0, sizeof(*it));
    it->client = c;
    it->repo = dup_optional(repo, &oom);
    it->ref = dup_optional(ref, &oom);
    it->prefix = dup_optional(p->prefix, &oom);
    it->delimiter = dup_optional(p->delimiter, &oom);
    lakefs_pager_init(&it->pager, true, 0);
    it->pager.after = dup_optional(p->after, &oom);
    it->amount = p->amount;
    it->presign = p->presign;
    it->no_user_metadata = p->no_user_metadata;
    if (oom) {
        lakefs_object_iter_free(it);
        return -ENOMEM;
    }
    return 0;
}

static int iter_fetch_page(lakefs_object_iter *it, lakefs_error *err)
{
    lakefs_list_params p = {
        .prefix = it->prefix,
        .after = it->pager.after,
        .delimiter = it->delimiter,
        .amount = it->amount,
        .presign = it->presign,
        .no_user_metadata = it->no_user_metadata,
    };
    lakefs_object_list page;
    int rc = lakefs_list_objects(it->client, it->repo, it->ref, &p, &page,
                                 err);
    if (rc)
        return rc;
    /* A copy of the pager: a refused page leaves the iterator as it was,
     * so the caller may ask again. */
    lakefs_pager next = it->pager;
    next.after = it->pager.after ? strdup(it->pager.after) : NULL;
    next.seen = NULL;
    next.seen_count = next.seen_cap = 0;
    rc = it->pager.after && !next.after
             ? -ENOMEM
             : lakefs_pager_next(&next, &page.pagination, page.count, err);
    if (rc) {
        lakefs_pager_free(&next);
        lakefs_object_list_free(&page);
        return rc;
    }
    lakefs_pager_free(&it->pager);
    it->pager = next;
    lakefs_object_list_free(&it->page);
    it->page = page;
    it->pos = 0;
    it->pages_fetched++;
    return 0;
}

int lakefs_object_iter_next(lakefs_object_iter *it,
                            const lakefs_object_stats **out,
                            lakefs_error *err)
{
    while (it->pos >= it->page.count) {
        if (it->pager.done)
            return 0;
        int rc = iter_fetch_page(it, err);
        if (rc)
            return rc;
    }
    *out = &it->page.items[it->pos++];
    return 1;
}

void lakefs_object_iter_free(lakefs_object_iter *it)
{
    free(it->repo);
    free(it->ref);
    free(it->prefix);
    free(it->delimiter);
    lakefs_pager_free(&it->pager);
    lakefs_object_list_free(&it->page);
    memset(it, 0, sizeof(*it));
}

int lakefs_stat_object(lakefs_client *c, const char *repo, const char *ref,
                       const char *path, bool presign,
                       lakefs_object_stats *out, lakefs_error *err)
{
    strbuf url = STRBUF_INIT;
    object_url(&url, repo, "/refs", ref, "/objects/stat", path);
    add_presign(&url, presign);
    http_request req;
    http_request_init(&req, LAKEFS_OP_STAT_OBJECT, "GET");
    return lakefs_call(c, &req, &url, parse_object_stats, out, sizeof(*out), err);
}

/* ------------------------------------------------------------------ */
/* Reading data                                                        */

/* Runs a data GET; when the server redirects to a presigned URL, follows
 * it with a fresh request that carries no credentials (the object store
 * rejects a second auth) but keeps the Range. */
static int get_following_presign(lakefs_client *c, http_request *req,
                                 http_response *resp, lakefs_error *err)
{
    int rc = http_execute(c, req, resp, err);
    if (rc || resp->status < 300 || resp->status >= 400)
        return rc;
    if (!resp->location) {
        lakefs_error_set(err, resp->status,
                         "redirect without a usable Location");
        lakefs_count_failure(c, req->op);
        return -EPROTO;
    }
    rc = lakefs_url_check(c, resp->location, err);
    if (rc) {
        lakefs_count_failure(c, req->op);
        return rc;
    }
    char *location = resp->location;
    resp->location = NULL;
    http_response_release(resp);
    http_request follow = *req;
    follow.op = LAKEFS_OP_PRESIGNED_GET;
    follow.absolute_url = location;
    follow.path_and_query = NULL;
    follow.no_redirect_follow = false;
    rc = http_execute(c, &follow, resp, err);
    free(location);
    return rc;
}

static int finish_range_read(http_response *resp, int rc, size_t *out_len)
{
    *out_len = 0;
    if (rc == -ERANGE) /* 416: offset at or past the end */
        rc = 0;
    else if (rc == 0)
        *out_len = resp->sink_written;
    http_response_release(resp);
    return rc;
}

/* "bytes FIRST-LAST/TOTAL", TOTAL "*" (-1) or a number; nothing else. */
static bool parse_content_range(const char *s, uint64_t *first,
                                uint64_t *last, int64_t *total)
{
    unsigned long long a, b, t;
    int used = 0;
    if (!s || strncmp(s, "bytes ", 6) != 0)
        return false;
    s += 6;
    if (sscanf(s, "%llu-%llu/%n", &a, &b, &used) != 2 || used == 0 ||
        s[0] < '0' || s[0] > '9')
        return false;
    s += used;
    *first = a;
    *last = b;
    if (strcmp(s, "*") == 0) {
        *total = -1;
        return true;
    }
    used = 0;
    if (s[0] < '0' || s[0] > '9' || sscanf(s, "%llu%n", &t, &used) != 1 ||
        s[used] != '\0' || t > INT64_MAX)
        return false;
    *total = (int64_t)t;
    return true;
}

static bool is_md5_hex(const char *s, size_t n)
{
    if (n != 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789abcdefABCDEF", s[i]))
            return false;
    return true;
}

/* Whether the whole object in buf has the MD5 its ETag names; true when
 * the ETag is not a plain MD5 (a multipart "-N" one, another store's). */
static bool content_matches_etag(const char *etag, const void *buf,
                                 size_t len)
{
    if (!etag)
        return true;
    while (*etag == ' ' || *etag == '"')
        etag++;
    size_t n = strcspn(etag, "\" ");
    if (!is_md5_hex(etag, n))
        return true;
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dn = 0;
    if (EVP_Digest(buf, len, d, &dn, EVP_md5(), NULL) != 1 || dn != 16)
        return true; /* no verdict without libcrypto: nothing to refuse */
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    return strncasecmp(hex, etag, 32) == 0;
}

/* Whether an answer to a GET of [offset, offset + len) is that range and
 * nothing else: a 206 with a Content-Range naming exactly the bytes sent,
 * or a 200 carrying the whole object (of the listed size, when known),
 * from which the HTTP layer kept the range. An error page sent with 200,
 * a shifted or missing Content-Range, a body shorter or longer than its
 * range, or an object of another size is -EPROTO: such bytes must never
 * be served or cached as the object's. */
static int check_range_answer(const http_response *resp, uint64_t offset,
                              size_t len, int64_t object_size,
                              lakefs_error *err)
{
    uint64_t got = resp->sink_written;
    uint64_t first = 0, last = 0;
    int64_t total = -1;
    if (resp->status == 206) {
        if (!parse_content_range(resp->content_range, &first, &last,
                                 &total)) {
            lakefs_error_set(err, resp->status,
                             "206 answer without a valid Content-Range (%s)",
                             resp->content_range ? resp->content_range
                                                 : "missing");
            return -EPROTO;
        }
        bool exact = first == offset && last >= first &&
                     last - first + 1 == got && got <= len &&
                     resp->sink_received == got &&
                     (total < 0 || last < (uint64_t)total);
        bool at_end = got == len || (total >= 0 && last + 1 == (uint64_t)total);
        if (!exact || !at_end) {
            lakefs_error_set(err, resp->status,
                             "answer is not the range asked for (bytes "
                             "%llu-%llu; Content-Range %s, %llu bytes sent)",
                             (unsigned long long)offset,
                             (unsigned long long)(offset + len - 1),
                             resp->content_range,
                             (unsigned long long)resp->sink_received);
            return -EPROTO;
        }
    } else if (resp->status == 200) {
        total = (int64_t)resp->sink_received; /* the whole object, framed */
        if (object_size >= 0 && total != object_size) {
            lakefs_error_set(err, resp->status,
                             "200 answer of %lld bytes to a ranged GET of a "
                             "%lld-byte object (an error page?)",
                             (long long)total, (long long)object_size);
            return -EPROTO;
        }
    } else {
        lakefs_error_set(err, resp->status,
                         "unexpected status %d to a ranged GET",
                         resp->status);
        return -EPROTO;
    }
    if (total >= 0 && object_size >= 0 && total != object_size) {
        lakefs_error_set(err, resp->status,
                         "object is %lld bytes, listed as %lld",
                         (long long)total, (long long)object_size);
        return -EPROTO;
    }
    if (total >= 0) {
        uint64_t left = offset < (uint64_t)total ? (uint64_t)total - offset
                                                 : 0;
        if (got != (left < len ? left : len)) {
            lakefs_error_set(err, resp->status,
                             "answer holds %llu bytes of the %llu asked for "
                             "at %llu",
                             (unsigned long long)got, (unsigned long long)len,
                             (unsigned long long)offset);
            return -EPROTO;
        }
    }
    return 0;
}

/* true when the response's ETag names the checksum (quotes ignored). */
static bool etag_matches(const char *etag, const char *checksum)
{
    if (!etag)
        return false;
    while (*etag == ' ' || *etag == '"')
        etag++;
    size_t n = strlen(checksum);
    if (strncmp(etag, checksum, n) != 0)
        return false;
    for (etag += n; *etag; etag++)
        if (*etag != '"' && *etag != ' ')
            return false;
    return true;
}

/* After a ranged GET: the one place that decides what its answer is.
 * 0, the transport's errno, -ESTALE when the answer names another version
 * of the object than check->etag (reopen), or -EPROTO when it is not the
 * range asked for (counted as a failure of op); and whether a whole
 * object read matches a plain-MD5 ETag. An answer that is not the range
 * (an error page) is no sign that the object changed, so the range is
 * checked first - unless the answer is data with another ETag: a replaced
 * object of another size never matches the listed range either, and that
 * is ESTALE, not a broken server. */
static int check_range_read(lakefs_client *c, lakefs_op op,
                            http_response *resp, int rc,
                            lakefs_range_check *check, uint64_t offset,
                            size_t len, const void *buf, lakefs_error *err)
{
    const char *etag = check ? check->etag : NULL;
    int64_t size = check ? check->object_size : -1;
    if (rc == 0) {
        bool data = resp->status == 200 || resp->status == 206;
        bool other_version = etag && !etag_matches(resp->etag, etag);
        rc = check_range_answer(resp, offset, len, size, err);
        if (rc == 0 && check && offset == 0 && size >= 0 &&
            resp->sink_written == (uint64_t)size &&
            !content_matches_etag(resp->etag, buf, resp->sink_written))
            check->content_unverified = true;
        if (other_version && (rc == 0 || (data && resp->etag))) {
            lakefs_error_set(err, resp->status,
                             "object changed since it was listed (ETag %s)",
                             resp->etag ? resp->etag : "missing");
            rc = -ESTALE;
        }
    }
    if (rc == -EPROTO)
        lakefs_count_failure(c, op);
    return rc;
}

/* A getObject into the sink the caller set up in req: builds the URL and
 * follows the presign redirect. resp is always safe to release. */
static int get_object(lakefs_client *c, const char *repo, const char *ref,
                      const char *path, bool presign, http_request *req,
                      http_response *resp, lakefs_error *err)
{
    memset(resp, 0, sizeof(*resp));
    strbuf url = STRBUF_INIT;
    object_url(&url, repo, "/refs", ref, "/objects", path);
    add_presign(&url, presign);
    if (strbuf_error(&url)) {
        strbuf_release(&url);
        return -ENOMEM;
    }
    req->path_and_query = url.data;
    req->no_redirect_follow = presign;
    int rc = get_following_presign(c, req, resp, err);
    strbuf_release(&url);
    return rc;
}

static void range_request_init(http_request *req, lakefs_op op,
                               uint64_t offset, size_t len, void *buf)
{
    http_request_init(req, op, "GET");
    req->range_offset = offset;
    req->range_len = len;
    req->sink_buf = buf;
    req->sink_cap = len;
}

int lakefs_read_object_range(lakefs_client *c, const char *repo,
                             const char *ref, const char *path, bool presign,
                             lakefs_range_check *check, uint64_t offset,
                             size_t len, void *buf, size_t *out_len,
                             lakefs_error *err)
{
    *out_len = 0;
    if (check)
        check->content_unverified = false;
    if (len == 0)
        return 0;
    http_request req;
    range_request_init(&req, LAKEFS_OP_GET_OBJECT, offset, len, buf);
    http_response resp;
    int rc = get_object(c, repo, ref, path, presign, &req, &resp, err);
    rc = check_range_read(c, req.op, &resp, rc, check, offset, len, buf, err);
    return finish_range_read(&resp, rc, out_len);
}

int lakefs_get_object_range_checked(lakefs_client *c, const char *repo,
                                    const char *ref, const char *path,
                                    bool presign, const char *checksum,
                                    uint64_t offset, size_t len, void *buf,
                                    size_t *out_len, lakefs_error *err)
{
    lakefs_range_check check = {.etag = checksum, .object_size = -1};
    return lakefs_read_object_range(c, repo, ref, path, presign, &check,
                                    offset, len, buf, out_len, err);
}

int lakefs_get_object_range(lakefs_client *c, const char *repo,
                            const char *ref, const char *path, bool presign,
                            uint64_t offset, size_t len, void *buf,
                            size_t *out_len, lakefs_error *err)
{
    return lakefs_get_object_range_checked(c, repo, ref, path, presign, NULL,
                                           offset, len, buf, out_len, err);
}

int lakefs_read_url_range(lakefs_client *c, const char *url,
                          lakefs_range_check *check, uint64_t offset,
                          size_t len, void *buf, size_t *out_len,
                          lakefs_error *err)
{
    *out_len = 0;
    if (check)
        check->content_unverified = false;
    if (len == 0)
        return 0;
    http_request req;
    range_request_init(&req, LAKEFS_OP_PRESIGNED_GET, offset, len, buf);
    req.absolute_url = url;
    http_response resp;
    int rc = http_execute(c, &req, &resp, err);
    rc = check_range_read(c, req.op, &resp, rc, check, offset, len, buf, err);
    return finish_range_read(&resp, rc, out_len);
}

int lakefs_get_url_range(lakefs_client *c, const char *url, uint64_t offset,
                         size_t len, void *buf, size_t *out_len,
                         lakefs_error *err)
{
    return lakefs_read_url_range(c, url, NULL, offset, len, buf, out_len,
                                 err);
}

int lakefs_get_object_to_fd(lakefs_client *c, const char *repo,
                            const char *ref, const char *path, bool presign,
                            int fd, int64_t *out_size, lakefs_error *err)
{
    http_request req;
    http_request_init(&req, LAKEFS_OP_GET_OBJECT, "GET");
    req.sink_fd = fd;
    http_response resp;
    int rc = get_object(c, repo, ref, path, presign, &req, &resp, err);
    if (rc == 0 && out_size)
        *out_size = (int64_t)resp.sink_written;
    http_response_release(&resp);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */

/* Header lines for user metadata, lakectl's way: "::lakefs::x" keys go as
 * X-Lakefs-Internal-x, others as X-Lakefs-Meta-key. A key or value with a
 * line break could inject headers: refused. */
static int metadata_headers(const lakefs_upload_options *opt,
                            char ***lines_out, lakefs_error *err)
{
    static const char internal_prefix[] = "::lakefs::";
    size_t n = opt && opt->metadata ? opt->metadata->count : 0;
    char **lines = calloc(n + 2, sizeof(char *));
    if (!lines)
        return -ENOMEM;
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        const lakefs_kv *kv = &opt->metadata->items[i];
        bool internal = strncmp(kv->key, internal_prefix,
                                sizeof(internal_prefix) - 1) == 0;
        const char *name = internal ? kv->key + sizeof(internal_prefix) - 1
                                    : kv->key;
        if (!*name || strpbrk(name, "\r\n: ") || strpbrk(kv->value, "\r\n"))
            goto bad;
        if (asprintf(&lines[used], "X-Lakefs-%s-%s: %s",
                     internal ? "Internal" : "Meta", name, kv->value) < 0) {
            lines[used] = NULL;
            goto oom;
        }
        used++;
    }
    if (opt && opt->if_none_match) {
        lines[used] = strdup("If-None-Match: *");
        if (!lines[used])
            goto oom;
        used++;
    }
    *lines_out = lines;
    return 0;
bad:
    lakefs_error_set(err, 0, "metadata key or value not valid in a header");
    for (size_t i = 0; i < used; i++)
        free(lines[i]);
    free(lines);
    return -EINVAL;
oom:
    for (size_t i = 0; i < used; i++)
        free(lines[i]);
    free(lines);
    return -ENOMEM;
}

static void free_lines(char **lines)
{
    for (char **l = lines; l && *l; l++)
        free(*l);
    free(lines);
}

int lakefs_upload_object_fd(lakefs_client *c, const char *repo,
                            const char *branch, const char *path, int fd,
                            int64_t size, const lakefs_upload_options *opt,
                            lakefs_object_stats *out, lakefs_error *err)
{
    char **headers = NULL;
    int rc = metadata_headers(opt, &headers, err);
    if (rc)
        return rc;
    strbuf url = STRBUF_INIT;
    object_url(&url, repo, "/branches", branch, "/objects", path);
    http_request req;
    http_request_init(&req, LAKEFS_OP_UPLOAD_OBJECT, "POST");
    req.body_fd = fd;
    req.body_size = size;
    req.content_type = opt ? opt->content_type : NULL;
    req.extra_headers = (const char *const *)headers;
    rc = lakefs_call(c, &req, &url, parse_object_stats, out, sizeof(*out),
                     err);
    free_lines(headers);
    return rc;
}

int lakefs_delete_object(lakefs_client *c, const char *repo,
                         const char *branch, const char *path,
                         lakefs_error *err)
{
    strbuf url = STRBUF_INIT;
    object_url(&url, repo, "/branches", branch, "/objects", path);
    http_request req;
    http_request_init(&req, LAKEFS_OP_DELETE_OBJECT, "DELETE");
    return lakefs_call(c, &req, &url, NULL, NULL, 0, err);
}

/* Whether the last try of an idempotent request (lakefs_*_settled) is
 * to be checked: it may have come through (not a 4xx, not out of memory,
 * not provably unsent). */
static bool settle_needed(int rc, const lakefs_error *err)
{
    return lakefs_failure_transient(rc) && !err->not_applied;
}

int lakefs_delete_object_settled(lakefs_client *c, const char *repo,
                                 const char *branch, const char *path,
                                 lakefs_error *err)
{
    lakefs_error mine = {0};
    if (!err)
        err = &mine;
    int rc, tries = 0;
    do
        rc = lakefs_delete_object(c, repo, branch, path, err);
    while (lakefs_retry_idempotent(rc, &tries));
    if (rc == -ENOENT || !settle_needed(rc, err))
        return rc == -ENOENT ? 0 : rc;
    lakefs_error check = {0};
    int outcome = lakefs_outcome_deleted(c, repo, branch, path, &check);
    return lakefs_outcome_settle(c, LAKEFS_OP_DELETE_OBJECT, rc, outcome,
                                 &check, err);
}

int lakefs_update_object_user_metadata_settled(lakefs_client *c,
                                               const char *repo,
                                               const char *branch,
                                               const char *path,
                                               const lakefs_metadata *set,
                                               lakefs_error *err)
{
    lakefs_error mine = {0};
    if (!err)
        err = &mine;
    int rc, tries = 0;
    do /* it sets the whole metadata: repeating it changes nothing */
        rc = lakefs_update_object_user_metadata(c, repo, branch, path, set,
                                                err);
    while (lakefs_retry_idempotent(rc, &tries));
    if (!settle_needed(rc, err))
        return rc;
    lakefs_error check = {0};
    int outcome =
        lakefs_outcome_user_metadata(c, repo, branch, path, set, &check);
    return lakefs_outcome_settle(c, LAKEFS_OP_UPDATE_OBJECT_USER_METADATA, rc,
                                 outcome, &check, err);
}

int lakefs_delete_objects(lakefs_client *c, const char *repo,
                          const char *branch, const char *const *paths,
                          size_t count, lakefs_object_error_list *failed,
                          lakefs_error *err)
{
    if (failed)
        memset(failed, 0, sizeof(*failed));
    if (count > 1000) {
        lakefs_error_set(err, 0, "at most 1000 paths per deleteObjects");
        return -EINVAL;
    }
    strbuf url = STRBUF_INIT;
    object_url(&url, repo, "/branches", branch, "/objects/delete", NULL);
    http_request req;
    http_request_init(&req, LAKEFS_OP_DELETE_OBJECTS, "POST");
    lakefs_object_error_list errors;
    int rc = lakefs_call_json(c, &req, &url,
                            lakefs_json_path_list(paths, count),
                            parse_object_error_list, &errors, sizeof(errors), err);
    if (rc)
        return rc;
    if (errors.count > 0) {
        const lakefs_object_error *first = &errors.items[0];
        lakefs_error_set(err, first->status_code, "%s: %s",
                         first->path ? first->path : "(path)",
                         first->message);
        rc = lakefs_status_to_errno(first->status_code);
        lakefs_count_failure(c, LAKEFS_OP_DELETE_OBJECTS);
    }
    if (failed)
        *failed = errors;
    else
        lakefs_object_error_list_free(&errors);
    return rc;
}

int lakefs_copy_object(lakefs_client *c, const char *repo, const char *branch,
                       const char *src_path, const char *src_ref,
                       const char *dest_path, lakefs_object_stats *out,
                       lakefs_error *err)
{
    strbuf url = STRBUF_INIT;
    object_url(&url, repo, "/branches", branch, "/objects/copy", NULL);
    url_add_param(&url, "dest_path", dest_path);
    http_request req;
    http_request_init(&req, LAKEFS_OP_COPY_OBJECT, "POST");
    int rc = lakefs_call_json(c, &req, &url,
                            lakefs_json_copy(src_path, src_ref),
                            parse_object_stats, out, sizeof(*out), err);
    if (rc && req.maybe_applied) {
        lakefs_error check = {0};
        int outcome = lakefs_outcome_copy(c, repo, branch, src_path, src_ref,
                                          dest_path, out, &check);
        rc = lakefs_outcome_settle(c, req.op, rc, outcome, &check, err);
    }
    return rc;
}

int lakefs_update_object_user_metadata(lakefs_client *c, const char *repo,
                                       const char *branch, const char *path,
                                       const lakefs_metadata *set,
                                       lakefs_error *err)
{
    strbuf url = STRBUF_INIT;
    object_url(&url, repo, "/branches", branch,
               "/objects/stat/user_metadata", path);
    http_request req;
    http_request_init(&req, LAKEFS_OP_UPDATE_OBJECT_USER_METADATA, "PUT");
    /* The spec says 201, servers send 204: any 2xx is success. */
    return lakefs_call_json(c, &req, &url, lakefs_json_user_metadata(set),
                          NULL, NULL, 0, err);
}

int lakefs_get_physical_address(lakefs_client *c, const char *repo,
                                const char *branch, const char *path,
                                bool presign, lakefs_staging_location *out,
                                lakefs_error *err)
{
    strbuf url = STRBUF_INIT;
    object_url(&url, repo, "/branches", branch, "/staging/backing", path);
    add_presign(&url, presign);
    http_request req;
    http_request_init(&req, LAKEFS_OP_GET_PHYSICAL_ADDRESS, "GET");
    return lakefs_call(c, &req, &url, parse_staging_location, out, sizeof(*out), err);
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Content-MD5 (base64) as lowercase hex, the checksum lakectl links. */
static char *md5_base64_to_hex(const char *b64)
{
    unsigned char raw[16];
    size_t nraw = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (const char *p = b64; *p && *p != '='; p++) {
        const char *pos = strchr(b64_alphabet, *p);
        if (!pos || !*p)
            return NULL;
        acc = (acc << 6) | (uint32_t)(pos - b64_alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (nraw == sizeof(raw))
                return NULL;
            raw[nraw++] = (unsigned char)(acc >> bits);
        }
    }
    if (nraw != sizeof(raw))
        return NULL;
    char *hex = malloc(2 * sizeof(raw) + 1);
    for (size_t i = 0; hex && i < sizeof(raw); i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    return hex;
}

static char *etag_unquoted(const char *etag)
{
    strbuf sb = STRBUF_INIT;
    for (const char *p = etag; *p; p++)
        if (*p != '"' && *p != ' ')
            strbuf_append(&sb, p, 1);
    return strbuf_detach(&sb);
}

/* One PUT of size bytes of fd from offset to a presigned URL (no
 * credentials). resp must be released in every case. */
static int put_presigned(lakefs_client *c, const char *url, int fd,
                         int64_t offset, int64_t size,
                         const char *content_type, http_response *resp,
                         lakefs_error *err)
{
    http_request req;
    http_request_init(&req, LAKEFS_OP_PRESIGNED_PUT, "PUT");
    req.absolute_url = url;
    req.body_fd = fd;
    req.body_offset = offset;
    req.body_size = size;
    req.content_type = content_type;
    return http_execute(c, &req, resp, err);
}

int lakefs_put_presigned_fd(lakefs_client *c, const char *url, int fd,
                            int64_t size, const char *content_type,
                            char **checksum_out, lakefs_error *err)
{
    http_response resp;
    int rc = put_presigned(c, url, fd, 0, size, content_type, &resp, err);
    if (rc == 0 && checksum_out) {
        char *sum = NULL;
        if (resp.content_md5)
            sum = md5_base64_to_hex(resp.content_md5);
        if (!sum && resp.etag)
            sum = etag_unquoted(resp.etag);
        if (!sum || !*sum) {
            free(sum);
            lakefs_error_set(err, resp.status,
                             "object store answered without a checksum");
            lakefs_count_failure(c, LAKEFS_OP_PRESIGNED_PUT);
            rc = -EPROTO;
        } else {
            *checksum_out = sum;
        }
    }
    http_response_release(&resp);
    return rc;
}

int lakefs_link_physical_address(lakefs_client *c, const char *repo,
                                 const char *branch, const char *path,
                                 const lakefs_staging_location *staging,
                                 const char *checksum, int64_t size_bytes,
                                 const lakefs_upload_options *opt,
                                 lakefs_object_stats *out, lakefs_error *err)
{
    const char *const exclusive[] = {"If-None-Match: *", NULL};
    strbuf url = STRBUF_INIT;
    object_url(&url, repo, "/branches", branch, "/staging/backing", path);
    http_request req;
    http_request_init(&req, LAKEFS_OP_LINK_PHYSICAL_ADDRESS, "PUT");
    if (opt && opt->if_none_match)
        req.extra_headers = exclusive;
    char *body = lakefs_json_staging_metadata(
        staging, checksum, size_bytes, opt ? opt->metadata : NULL,
        opt ? opt->content_type : NULL);
    int rc = lakefs_call_json(c, &req, &url, body, parse_object_stats,
                            out, sizeof(*out), err);
    if (rc && req.maybe_applied) {
        lakefs_error check = {0};
        int outcome = lakefs_outcome_object(
            c, repo, branch, path, staging->physical_address, checksum, out,
            &check);
        rc = lakefs_outcome_settle(c, req.op, rc, outcome, &check, err);
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* Presigned multipart upload                                          */

static int parse_multipart_upload(const char *b, size_t n, void *out,
                                  lakefs_error *e)
{
    return lakefs_parse_multipart_upload(b, n, out, e);
}

/* "/repositories/{repo}/branches/{branch}/staging/pmpu[/{id}]?path=" */
static void multipart_url(strbuf *url, const char *repo, const char *branch,
                          const char *upload_id, const char *path)
{
    object_url(url, repo, "/branches", branch, "/staging/pmpu", NULL);
    if (upload_id)
        url_add_segment(url, upload_id);
    url_add_param(url, "path", path);
}

int lakefs_create_presign_multipart(lakefs_client *c, const char *repo,
                                    const char *branch, const char *path,
                                    int parts, lakefs_multipart_upload *out,
                                    lakefs_error *err)
{
    if (parts < 0 || parts > LAKEFS_MULTIPART_MAX_PARTS) {
        memset(out, 0, sizeof(*out));
        lakefs_error_set(err, 0, "parts must be between 0 and %d",
                         LAKEFS_MULTIPART_MAX_PARTS);
        return -EINVAL;
    }
    strbuf url = STRBUF_INIT;
    multipart_url(&url, repo, branch, NULL, path);
    if (parts > 0)
        url_add_int_param(&url, "parts", parts);
    http_request req;
    http_request_init(&req, LAKEFS_OP_CREATE_PRESIGN_MULTIPART_UPLOAD, "POST");
    return lakefs_call(c, &req, &url, parse_multipart_upload, out,
                       sizeof(*out), err);
}

int lakefs_put_presigned_range_fd(lakefs_client *c, const char *url, int fd,
                                  int64_t offset, int64_t size,
                                  char **etag_out, lakefs_error *err)
{
    if (etag_out)
        *etag_out = NULL;
    if (offset < 0 || size < 0) {
        lakefs_error_set(err, 0, "negative offset or size");
        return -EINVAL;
    }
    http_response resp;
    int rc = put_presigned(c, url, fd, offset, size, NULL, &resp, err);
    if (rc == 0 && etag_out) {
        if (!resp.etag || !*resp.etag) {
            lakefs_error_set(err, resp.status,
                             "object store answered without an ETag");
            lakefs_count_failure(c, LAKEFS_OP_PRESIGNED_PUT);
            rc = -EPROTO;
        } else {
            /* Sent back as received, quotes and all, as lakectl does. */
            *etag_out = resp.etag;
            resp.etag = NULL;
        }
    }
    http_response_release(&resp);
    return rc;
}

int lakefs_complete_presign_multipart(
    lakefs_client *c, const char *repo, const char *branch, const char *path,
    const char *upload_id, const char *physical_address,
    const lakefs_upload_part *parts, size_t count,
    const lakefs_upload_options *opt, lakefs_object_stats *out,
    lakefs_error *err)
{
    if (opt && opt->if_none_match) {
        if (out)
            memset(out, 0, sizeof(*out));
        lakefs_error_set(err, 0,
                         "completePresignMultipartUpload has no "
                         "exclusive create");
        return -EINVAL;
    }
    strbuf url = STRBUF_INIT;
    multipart_url(&url, repo, branch, upload_id, path);
    http_request req;
    http_request_init(&req, LAKEFS_OP_COMPLETE_PRESIGN_MULTIPART_UPLOAD,
                      "PUT");
    char *body = lakefs_json_complete_multipart(
        physical_address, parts, count, opt ? opt->metadata : NULL,
        opt ? opt->content_type : NULL);
    int rc = lakefs_call_json(c, &req, &url, body, parse_object_stats, out,
                              sizeof(*out), err);
    if (rc && req.maybe_applied) {
        lakefs_error check = {0};
        int outcome = lakefs_outcome_object(c, repo, branch, path,
                                            physical_address, NULL, out,
                                            &check);
        rc = lakefs_outcome_settle(c, req.op, rc, outcome, &check, err);
    }
    return rc;
}

int lakefs_abort_presign_multipart(lakefs_client *c, const char *repo,
                                   const char *branch, const char *path,
                                   const char *upload_id,
                                   const char *physical_address,
                                   lakefs_error *err)
{
    strbuf url = STRBUF_INIT;
    multipart_url(&url, repo, branch, upload_id, path);
    http_request req;
    http_request_init(&req, LAKEFS_OP_ABORT_PRESIGN_MULTIPART_UPLOAD,
                      "DELETE");
    return lakefs_call_json(c, &req, &url,
                            lakefs_json_abort_multipart(physical_address),
                            NULL, NULL, 0, err);
}

static int parse_upload_to(const char *b, size_t n, void *out,
                           lakefs_error *e)
{
    return lakefs_parse_upload_to(b, n, out, e);
}

int lakefs_upload_part_url(lakefs_client *c, const char *repo,
                           const char *branch, const char *path,
                           const char *upload_id, int part_number,
                           const char *physical_address, char **url_out,
                           lakefs_error *err)
{
    *url_out = NULL;
    if (part_number < 1 || part_number > LAKEFS_MULTIPART_MAX_PARTS) {
        lakefs_error_set(err, 0, "part number must be between 1 and %d",
                         LAKEFS_MULTIPART_MAX_PARTS);
        return -EINVAL;
    }
    strbuf url = STRBUF_INIT;
    object_url(&url, repo, "/branches", branch, "/staging/pmpu", NULL);
    url_add_segment(&url, upload_id);
    strbuf_puts(&url, "/parts");
    char number[16];
    snprintf(number, sizeof(number), "%d", part_number);
    url_add_segment(&url, number);
    url_add_param(&url, "path", path);
    http_request req;
    http_request_init(&req, LAKEFS_OP_UPLOAD_PART, "PUT");
    /* UploadPartFrom has the same shape as AbortPresignMultipartUpload. */
    return lakefs_call_json(c, &req, &url,
                            lakefs_json_abort_multipart(physical_address),
                            parse_upload_to, url_out, sizeof(*url_out), err);
}
