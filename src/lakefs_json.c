/*
 * lakefs_json.c - lakeFS JSON models to and from the plain structs of
 * lakefs.h. The only file that calls cJSON. Every field is checked for
 * its type; a malformed, truncated or mistyped body is -EPROTO, never a
 * crash, and leaves the out struct zeroed.
 */
#include "lakefs_internal.h"
#include "jsonnul.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Field readers: JSON null counts as absent.                          */

static int field_error(lakefs_error *err, const char *key, const char *why)
{
    lakefs_error_set(err, 0, "malformed lakeFS response: field '%s' %s", key,
                     why);
    return -EPROTO;
}

static const cJSON *field(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNull(v) ? NULL : v;
}

static int read_string(const cJSON *obj, const char *key, bool required,
                       char **out, lakefs_error *err)
{
    const cJSON *v = field(obj, key);
    if (!v)
        return required ? field_error(err, key, "is missing") : 0;
    if (!cJSON_IsString(v) || !v->valuestring)
        return field_error(err, key, "is not a string");
    *out = strdup(v->valuestring);
    if (!*out) {
        lakefs_error_set(err, 0, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

static int read_int64(const cJSON *obj, const char *key, bool required,
                      int64_t *out, lakefs_error *err)
{
    const cJSON *v = field(obj, key);
    if (!v)
        return required ? field_error(err, key, "is missing") : 0;
    if (!cJSON_IsNumber(v))
        return field_error(err, key, "is not a number");
    double d = v->valuedouble;
    /* 2^63 is not representable as int64; cJSON holds doubles, so demand
     * an integral value inside the exactly representable range. */
    if (!isfinite(d) || d != floor(d) || fabs(d) > 9007199254740992.0)
        return field_error(err, key, "is not an integer");
    *out = (int64_t)d;
    return 0;
}

static int read_bool(const cJSON *obj, const char *key, bool required,
                     bool *out, lakefs_error *err)
{
    const cJSON *v = field(obj, key);
    if (!v)
        return required ? field_error(err, key, "is missing") : 0;
    if (!cJSON_IsBool(v))
        return field_error(err, key, "is not a boolean");
    *out = cJSON_IsTrue(v);
    return 0;
}

static int read_metadata(const cJSON *obj, const char *key,
                         lakefs_metadata *out, lakefs_error *err)
{
    const cJSON *v = field(obj, key);
    if (!v)
        return 0;
    if (!cJSON_IsObject(v))
        return field_error(err, key, "is not an object");
    const cJSON *item;
    cJSON_ArrayForEach(item, v)
    {
        if (!cJSON_IsString(item) || !item->string)
            return field_error(err, key, "has a non-string value");
        int rc = lakefs_metadata_set(out, item->string, item->valuestring);
        if (rc) {
            lakefs_error_set(err, 0, "out of memory");
            return rc;
        }
    }
    return 0;
}

static int read_path_type(const cJSON *obj, lakefs_path_type *out,
                          lakefs_error *err)
{
    char *s = NULL;
    int rc = read_string(obj, "path_type", true, &s, err);
    if (rc)
        return rc;
    if (strcmp(s, "object") == 0)
        *out = LAKEFS_PATH_OBJECT;
    else if (strcmp(s, "common_prefix") == 0)
        *out = LAKEFS_PATH_COMMON_PREFIX;
    else
        rc = field_error(err, "path_type", "has an unknown value");
    free(s);
    return rc;
}

static int parse_document(const char *body, size_t len, cJSON **doc,
                          bool want_object, lakefs_error *err)
{
    const char *end = NULL;
    /* A key or value holding U+0000 would be cut short: see jsonnul.h. */
    char *decoded = NULL;
    size_t decoded_len = 0;
    *doc = NULL;
    if (jsonnul_decode(body, len, &decoded, &decoded_len)) {
        lakefs_error_set(err, 0, "out of memory");
        return -ENOMEM;
    }
    if (decoded) {
        body = decoded;
        len = decoded_len;
    }
    *doc = cJSON_ParseWithLengthOpts(body, len, &end, false);
    /* cJSON stops after the first value: anything but whitespace after it
     * means the body is not one JSON document. */
    while (*doc && end && end < body + len &&
           (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (*doc && end != body + len) {
        cJSON_Delete(*doc);
        *doc = NULL;
    }
    free(decoded);
    if (!*doc) {
        lakefs_error_set(err, 0, "malformed lakeFS response: not JSON");
        return -EPROTO;
    }
    if (want_object && !cJSON_IsObject(*doc)) {
        cJSON_Delete(*doc);
        *doc = NULL;
        lakefs_error_set(err, 0,
                         "malformed lakeFS response: not a JSON object");
        return -EPROTO;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Models                                                              */

static int repository_from(const cJSON *o, lakefs_repository *r,
                           lakefs_error *err)
{
    int rc;
    if ((rc = read_string(o, "id", true, &r->id, err)) ||
        (rc = read_string(o, "default_branch", true, &r->default_branch,
                          err)) ||
        (rc = read_string(o, "storage_namespace", true,
                          &r->storage_namespace, err)) ||
        (rc = read_string(o, "storage_id", false, &r->storage_id, err)) ||
        (rc = read_int64(o, "creation_date", true, &r->creation_date,
                         err)) ||
        (rc = read_bool(o, "read_only", false, &r->read_only, err)))
        return rc;
    return 0;
}

static int ref_from(const cJSON *o, lakefs_ref *r, lakefs_error *err)
{
    int rc;
    if ((rc = read_string(o, "id", true, &r->id, err)) ||
        (rc = read_string(o, "commit_id", true, &r->commit_id, err)))
        return rc;
    return 0;
}

static int commit_parents_from(const cJSON *o, lakefs_commit *c,
                               lakefs_error *err)
{
    const cJSON *parents = field(o, "parents");
    if (!parents)
        return field_error(err, "parents", "is missing");
    if (!cJSON_IsArray(parents))
        return field_error(err, "parents", "is not an array");
    size_t n = (size_t)cJSON_GetArraySize(parents);
    c->parents = calloc(n ? n : 1, sizeof(char *));
    if (!c->parents)
        return -ENOMEM;
    const cJSON *p;
    cJSON_ArrayForEach(p, parents)
    {
        if (!cJSON_IsString(p))
            return field_error(err, "parents", "has a non-string entry");
        c->parents[c->parent_count] = strdup(p->valuestring);
        if (!c->parents[c->parent_count])
            return -ENOMEM;
        c->parent_count++;
    }
    return 0;
}

static int commit_from(const cJSON *o, lakefs_commit *c, lakefs_error *err)
{
    int rc;
    if ((rc = read_string(o, "id", true, &c->id, err)) ||
        (rc = commit_parents_from(o, c, err)) ||
        (rc = read_string(o, "committer", true, &c->committer, err)) ||
        (rc = read_string(o, "message", true, &c->message, err)) ||
        (rc = read_int64(o, "creation_date", true, &c->creation_date,
                         err)) ||
        (rc = read_string(o, "meta_range_id", true, &c->meta_range_id,
                          err)) ||
        (rc = read_metadata(o, "metadata", &c->metadata, err)) ||
        (rc = read_int64(o, "generation", false, &c->generation, err)))
        return rc;
    return 0;
}

static int object_stats_from(const cJSON *o, lakefs_object_stats *s,
                             lakefs_error *err)
{
    int rc;
    if ((rc = read_string(o, "path", true, &s->path, err)) ||
        (rc = read_path_type(o, &s->path_type, err)) ||
        (rc = read_string(o, "physical_address", true, &s->physical_address,
                          err)) ||
        (rc = read_int64(o, "physical_address_expiry", false,
                         &s->physical_address_expiry, err)) ||
        (rc = read_string(o, "checksum", true, &s->checksum, err)) ||
        (rc = read_int64(o, "size_bytes", false, &s->size_bytes, err)) ||
        (rc = read_int64(o, "mtime", true, &s->mtime, err)) ||
        (rc = read_string(o, "content_type", false, &s->content_type,
                          err)) ||
        (rc = read_metadata(o, "metadata", &s->metadata, err)))
        return rc;
    if (s->size_bytes < 0)
        return field_error(err, "size_bytes", "is negative");
    return 0;
}

static int diff_type_from(const char *s, lakefs_diff_type *out)
{
    static const struct {
        const char *name;
        lakefs_diff_type type;
    } types[] = {
        {"added", LAKEFS_DIFF_ADDED},
        {"removed", LAKEFS_DIFF_REMOVED},
        {"changed", LAKEFS_DIFF_CHANGED},
        {"conflict", LAKEFS_DIFF_CONFLICT},
        {"prefix_changed", LAKEFS_DIFF_PREFIX_CHANGED},
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(s, types[i].name) == 0) {
            *out = types[i].type;
            return 0;
        }
    }
    return -EPROTO;
}

static int diff_from(const cJSON *o, lakefs_diff *d, lakefs_error *err)
{
    char *type = NULL;
    int rc;
    d->size_bytes = -1;
    if ((rc = read_string(o, "type", true, &type, err)))
        return rc;
    rc = diff_type_from(type, &d->type);
    free(type);
    if (rc)
        return field_error(err, "type", "has an unknown value");
    if ((rc = read_string(o, "path", true, &d->path, err)) ||
        (rc = read_path_type(o, &d->path_type, err)) ||
        (rc = read_int64(o, "size_bytes", false, &d->size_bytes, err)))
        return rc;
    return 0;
}

static int pagination_from(const cJSON *o, lakefs_pagination *p,
                           lakefs_error *err)
{
    const cJSON *v = field(o, "pagination");
    if (!v)
        return field_error(err, "pagination", "is missing");
    if (!cJSON_IsObject(v))
        return field_error(err, "pagination", "is not an object");
    int rc;
    if ((rc = read_bool(v, "has_more", true, &p->has_more, err)) ||
        (rc = read_string(v, "next_offset", true, &p->next_offset, err)) ||
        (rc = read_int64(v, "results", true, &p->results, err)) ||
        (rc = read_int64(v, "max_per_page", true, &p->max_per_page, err)))
        return rc;
    return 0;
}

/* A page's pagination read before its results are parsed: lakeFS writes
 * "pagination" as the first member of a list (its ObjectStatsList and the
 * other lists put the field first), so the next page can be asked for
 * while this one's results are parsed. Only the first member is looked
 * at (a "pagination" written later, or spelled with escapes, is -ENOENT:
 * the caller then waits for the full parse, which checks everything). */
int lakefs_peek_pagination(const char *body, size_t len, lakefs_pagination *out)
{
    static const char key[] = "\"pagination\"";
    memset(out, 0, sizeof(*out));
    size_t i = 0;
#define PEEK_SKIP_WS()                                                        \
    while (i < len && (body[i] == ' ' || body[i] == '\t' ||                   \
                       body[i] == '\n' || body[i] == '\r'))                   \
        i++
    PEEK_SKIP_WS();
    if (i >= len || body[i] != '{')
        return -ENOENT;
    i++;
    PEEK_SKIP_WS();
    if (len - i < sizeof(key) - 1 || memcmp(body + i, key, sizeof(key) - 1))
        return -ENOENT;
    i += sizeof(key) - 1;
    PEEK_SKIP_WS();
    if (i >= len || body[i] != ':')
        return -ENOENT;
    i++;
#undef PEEK_SKIP_WS
    /* cJSON stops at the end of this one value. A next_offset holding
     * U+0000 (jsonnul.h) is left to the full parse. */
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(body + i, len - i, &end, false);
    if (v && end &&
        memmem(body + i, (size_t)(end - (body + i)), "\\u0000", 6)) {
        cJSON_Delete(v);
        v = NULL;
    }
    if (!v)
        return -ENOENT;
    lakefs_error err = {0};
    int rc = cJSON_IsObject(v) ? 0 : -ENOENT;
    if (rc == 0 &&
        ((rc = read_bool(v, "has_more", true, &out->has_more, &err)) ||
         (rc = read_string(v, "next_offset", true, &out->next_offset, &err)) ||
         (rc = read_int64(v, "results", true, &out->results, &err))))
        rc = rc == -ENOMEM ? rc : -ENOENT;
    cJSON_Delete(v);
    if (rc) {
        free(out->next_offset);
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* Generic single-object and list parsing                              */

typedef int (*element_parser)(const cJSON *o, void *elem, lakefs_error *err);
typedef void (*element_freer)(void *elem);

static int parse_one(const char *body, size_t len, void *out, size_t size,
                     element_parser parse, element_freer release,
                     lakefs_error *err)
{
    cJSON *doc;
    memset(out, 0, size);
    int rc = parse_document(body, len, &doc, true, err);
    if (rc)
        return rc;
    rc = parse(doc, out, err);
    cJSON_Delete(doc);
    if (rc) {
        release(out);
        memset(out, 0, size);
    }
    return rc;
}

/* Parses {"pagination": ..., "results": [...]} (or another array key)
 * into a freshly allocated element array. */
static int parse_array(const cJSON *doc, const char *key, size_t elem_size,
                       element_parser parse, element_freer release,
                       void **items, size_t *count, lakefs_error *err)
{
    const cJSON *results = field(doc, key);
    if (!results)
        return field_error(err, key, "is missing");
    if (!cJSON_IsArray(results))
        return field_error(err, key, "is not an array");
    size_t n = (size_t)cJSON_GetArraySize(results);
    char *array = calloc(n ? n : 1, elem_size);
    if (!array) {
        lakefs_error_set(err, 0, "out of memory");
        return -ENOMEM;
    }
    size_t done = 0;
    const cJSON *item;
    int rc = 0;
    cJSON_ArrayForEach(item, results)
    {
        void *elem = array + done * elem_size;
        if (!cJSON_IsObject(item)) {
            rc = field_error(err, key, "has a non-object entry");
            break;
        }
        rc = parse(item, elem, err);
        done++;
        if (rc)
            break;
    }
    if (rc) {
        for (size_t i = 0; i < done; i++)
            release(array + i * elem_size);
        free(array);
        return rc;
    }
    *items = array;
    *count = n;
    return 0;
}

typedef struct generic_list {
    void *items;
    size_t count;
    lakefs_pagination pagination;
} generic_list;

static void pagination_free(lakefs_pagination *p)
{
    free(p->next_offset);
    memset(p, 0, sizeof(*p));
}

static int parse_list(const char *body, size_t len, generic_list *out,
                      size_t elem_size, element_parser parse,
                      element_freer release, lakefs_error *err)
{
    cJSON *doc;
    memset(out, 0, sizeof(*out));
    int rc = parse_document(body, len, &doc, true, err);
    if (rc)
        return rc;
    rc = pagination_from(doc, &out->pagination, err);
    if (!rc)
        rc = parse_array(doc, "results", elem_size, parse, release,
                         &out->items, &out->count, err);
    cJSON_Delete(doc);
    if (rc) {
        pagination_free(&out->pagination);
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

/* The typed entry points: thin casts over the generic machinery. */
#define DEFINE_PARSERS(model, type, list_type)                                \
    static int model##_elem(const cJSON *o, void *e, lakefs_error *err)      \
    {                                                                         \
        return model##_from(o, (type *)e, err);                              \
    }                                                                         \
    static void model##_elem_free(void *e)                                    \
    {                                                                         \
        lakefs_##model##_free((type *)e);                                     \
    }                                                                         \
    int lakefs_parse_##model##_list(const char *body, size_t len,             \
                                    list_type *out, lakefs_error *err)        \
    {                                                                         \
        _Static_assert(sizeof(list_type) == sizeof(generic_list),            \
                       "list layout");                                        \
        return parse_list(body, len, (generic_list *)out, sizeof(type),       \
                          model##_elem, model##_elem_free, err);              \
    }

DEFINE_PARSERS(repository, lakefs_repository, lakefs_repository_list)
DEFINE_PARSERS(ref, lakefs_ref, lakefs_ref_list)
DEFINE_PARSERS(commit, lakefs_commit, lakefs_commit_list)
DEFINE_PARSERS(diff, lakefs_diff, lakefs_diff_list)

static int object_stats_elem(const cJSON *o, void *e, lakefs_error *err)
{
    return object_stats_from(o, e, err);
}

static void object_stats_elem_free(void *e)
{
    lakefs_object_stats_free(e);
}

int lakefs_parse_object_list(const char *body, size_t len,
                             lakefs_object_list *out, lakefs_error *err)
{
    _Static_assert(sizeof(lakefs_object_list) == sizeof(generic_list),
                   "list layout");
    return parse_list(body, len, (generic_list *)out,
                      sizeof(lakefs_object_stats), object_stats_elem,
                      object_stats_elem_free, err);
}

int lakefs_parse_repository(const char *body, size_t len,
                            lakefs_repository *out, lakefs_error *err)
{
    return parse_one(body, len, out, sizeof(*out), repository_elem,
                     repository_elem_free, err);
}

int lakefs_parse_ref(const char *body, size_t len, lakefs_ref *out,
                     lakefs_error *err)
{
    return parse_one(body, len, out, sizeof(*out), ref_elem, ref_elem_free,
                     err);
}

int lakefs_parse_commit(const char *body, size_t len, lakefs_commit *out,
                        lakefs_error *err)
{
    return parse_one(body, len, out, sizeof(*out), commit_elem,
                     commit_elem_free, err);
}

int lakefs_parse_object_stats(const char *body, size_t len,
                              lakefs_object_stats *out, lakefs_error *err)
{
    return parse_one(body, len, out, sizeof(*out), object_stats_elem,
                     object_stats_elem_free, err);
}

static int staging_location_from(const cJSON *o, void *e, lakefs_error *err)
{
    lakefs_staging_location *l = e;
    int rc;
    if ((rc = read_string(o, "physical_address", true, &l->physical_address,
                          err)) ||
        (rc = read_string(o, "presigned_url", false, &l->presigned_url,
                          err)) ||
        (rc = read_int64(o, "presigned_url_expiry", false,
                         &l->presigned_url_expiry, err)))
        return rc;
    return 0;
}

static void staging_location_free(void *e)
{
    lakefs_staging_location_free(e);
}

static int upload_to_from(const cJSON *o, void *out, lakefs_error *err)
{
    return read_string(o, "presigned_url", true, (char **)out, err);
}

static void upload_to_free(void *out)
{
    free(*(char **)out);
}

int lakefs_parse_upload_to(const char *body, size_t len, char **url,
                           lakefs_error *err)
{
    return parse_one(body, len, url, sizeof(*url), upload_to_from,
                     upload_to_free, err);
}

int lakefs_parse_staging_location(const char *body, size_t len,
                                  lakefs_staging_location *out,
                                  lakefs_error *err)
{
    return parse_one(body, len, out, sizeof(*out), staging_location_from,
                     staging_location_free, err);
}

static int storage_config_from(const cJSON *o, lakefs_storage_config *s,
                               lakefs_error *err)
{
    int rc;
    if ((rc = read_string(o, "blockstore_type", true, &s->blockstore_type,
                          err)) ||
        (rc = read_string(o, "blockstore_id", false, &s->blockstore_id,
                          err)) ||
        (rc = read_string(o, "default_namespace_prefix", false,
                          &s->default_namespace_prefix, err)) ||
        (rc = read_bool(o, "pre_sign_support", true, &s->pre_sign_support,
                        err)) ||
        (rc = read_bool(o, "pre_sign_multipart_upload", false,
                        &s->pre_sign_multipart_upload, err)) ||
        (rc = read_bool(o, "import_support", false, &s->import_support,
                        err)))
        return rc;
    return 0;
}

static int storage_config_elem(const cJSON *o, void *e, lakefs_error *err)
{
    return storage_config_from(o, e, err);
}

static void storage_config_elem_free(void *e)
{
    lakefs_storage_config_free(e);
}

static int config_from(const cJSON *o, void *e, lakefs_error *err)
{
    lakefs_config *c = e;
    const cJSON *version = field(o, "version_config");
    int rc;
    if (version) {
        if (!cJSON_IsObject(version))
            return field_error(err, "version_config", "is not an object");
        if ((rc = read_string(version, "version", false, &c->version, err)))
            return rc;
    }
    const cJSON *storage = field(o, "storage_config");
    if (storage) {
        if (!cJSON_IsObject(storage))
            return field_error(err, "storage_config", "is not an object");
        if ((rc = storage_config_from(storage, &c->storage, err)))
            return rc;
        c->has_storage = true;
    }
    if (field(o, "storage_config_list"))
        return parse_array(o, "storage_config_list",
                           sizeof(lakefs_storage_config),
                           storage_config_elem, storage_config_elem_free,
                           (void **)&c->storage_list, &c->storage_list_count,
                           err);
    return 0;
}

static void config_free(void *e)
{
    lakefs_config_free(e);
}

int lakefs_parse_config(const char *body, size_t len, lakefs_config *out,
                        lakefs_error *err)
{
    return parse_one(body, len, out, sizeof(*out), config_from, config_free,
                     err);
}

static int current_user_from(const cJSON *o, void *e, lakefs_error *err)
{
    lakefs_user *u = e;
    const cJSON *user = field(o, "user");
    if (!user)
        return field_error(err, "user", "is missing");
    if (!cJSON_IsObject(user))
        return field_error(err, "user", "is not an object");
    int rc;
    if ((rc = read_string(user, "id", true, &u->id, err)) ||
        (rc = read_string(user, "email", false, &u->email, err)) ||
        (rc = read_int64(user, "creation_date", true, &u->creation_date,
                         err)))
        return rc;
    return 0;
}

static void user_free(void *e)
{
    lakefs_user_free(e);
}

int lakefs_parse_current_user(const char *body, size_t len, lakefs_user *out,
                              lakefs_error *err)
{
    return parse_one(body, len, out, sizeof(*out), current_user_from,
                     user_free, err);
}

static int object_error_from(const cJSON *o, void *e, lakefs_error *err)
{
    lakefs_object_error *oe = e;
    int64_t status = 0;
    int rc;
    if ((rc = read_int64(o, "status_code", true, &status, err)) ||
        (rc = read_string(o, "message", true, &oe->message, err)) ||
        (rc = read_string(o, "path", false, &oe->path, err)))
        return rc;
    oe->status_code = (int)status;
    return 0;
}

static void object_error_free(void *e)
{
    lakefs_object_error *oe = e;
    free(oe->message);
    free(oe->path);
    memset(oe, 0, sizeof(*oe));
}

static int object_error_list_from(const cJSON *o, void *e, lakefs_error *err)
{
    lakefs_object_error_list *l = e;
    return parse_array(o, "errors", sizeof(lakefs_object_error),
                       object_error_from, object_error_free,
                       (void **)&l->items, &l->count, err);
}

static void object_error_list_free(void *e)
{
    lakefs_object_error_list_free(e);
}

int lakefs_parse_object_error_list(const char *body, size_t len,
                                   lakefs_object_error_list *out,
                                   lakefs_error *err)
{
    return parse_one(body, len, out, sizeof(*out), object_error_list_from,
                     object_error_list_free, err);
}

static int merge_result_from(const cJSON *o, void *e, lakefs_error *err)
{
    return read_string(o, "reference", true, (char **)e, err);
}

static void string_free(void *e)
{
    free(*(char **)e);
}

int lakefs_parse_merge_result(const char *body, size_t len, char **reference,
                              lakefs_error *err)
{
    return parse_one(body, len, reference, sizeof(*reference),
                     merge_result_from, string_free, err);
}

static int presigned_urls_from(const cJSON *o, lakefs_multipart_upload *u,
                               lakefs_error *err)
{
    const cJSON *urls = field(o, "presigned_urls");
    if (!urls)
        return 0; /* optional: none were asked for */
    if (!cJSON_IsArray(urls))
        return field_error(err, "presigned_urls", "is not an array");
    size_t n = (size_t)cJSON_GetArraySize(urls);
    u->presigned_urls = calloc(n ? n : 1, sizeof(char *));
    if (!u->presigned_urls) {
        lakefs_error_set(err, 0, "out of memory");
        return -ENOMEM;
    }
    const cJSON *url;
    cJSON_ArrayForEach(url, urls)
    {
        if (!cJSON_IsString(url))
            return field_error(err, "presigned_urls",
                               "has a non-string entry");
        u->presigned_urls[u->url_count] = strdup(url->valuestring);
        if (!u->presigned_urls[u->url_count]) {
            lakefs_error_set(err, 0, "out of memory");
            return -ENOMEM;
        }
        u->url_count++;
    }
    return 0;
}

static int multipart_upload_from(const cJSON *o, void *e, lakefs_error *err)
{
    lakefs_multipart_upload *u = e;
    int rc;
    if ((rc = read_string(o, "upload_id", true, &u->upload_id, err)) ||
        (rc = read_string(o, "physical_address", true, &u->physical_address,
                          err)) ||
        (rc = presigned_urls_from(o, u, err)))
        return rc;
    return 0;
}

static void multipart_upload_free(void *e)
{
    lakefs_multipart_upload_free(e);
}

int lakefs_parse_multipart_upload(const char *body, size_t len,
                                  lakefs_multipart_upload *out,
                                  lakefs_error *err)
{
    return parse_one(body, len, out, sizeof(*out), multipart_upload_from,
                     multipart_upload_free, err);
}

int lakefs_parse_error_message(const char *body, size_t len, char *msg,
                               size_t cap)
{
    cJSON *doc = cJSON_ParseWithLength(body, len);
    const cJSON *m = cJSON_IsObject(doc) ? field(doc, "message") : NULL;
    int rc = -EPROTO;
    if (cJSON_IsString(m) && cap > 0) {
        snprintf(msg, cap, "%s", m->valuestring);
        rc = 0;
    }
    cJSON_Delete(doc);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Request bodies                                                      */

static char *print_and_delete(cJSON *doc, bool ok)
{
    char *out = ok && doc ? jsonnul_print(doc, false) : NULL;
    cJSON_Delete(doc);
    return out;
}

static bool add_string(cJSON *obj, const char *key, const char *value)
{
    return !value || cJSON_AddStringToObject(obj, key, value) != NULL;
}

static bool add_metadata(cJSON *obj, const char *key,
                         const lakefs_metadata *md)
{
    if (!md)
        return true;
    cJSON *m = cJSON_AddObjectToObject(obj, key);
    if (!m)
        return false;
    for (size_t i = 0; i < md->count; i++)
        if (!cJSON_AddStringToObject(m, md->items[i].key,
                                     md->items[i].value))
            return false;
    return true;
}

char *lakefs_json_commit_creation(const char *message,
                                  const lakefs_metadata *metadata,
                                  bool allow_empty)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && add_string(o, "message", message) &&
              add_metadata(o, "metadata", metadata) &&
              (!allow_empty || cJSON_AddTrueToObject(o, "allow_empty"));
    return print_and_delete(o, ok);
}

char *lakefs_json_merge(const lakefs_merge_options *opt)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    if (ok && opt) {
        ok = add_string(o, "message", opt->message) &&
             add_metadata(o, "metadata", opt->metadata) &&
             add_string(o, "strategy", opt->strategy) &&
             (!opt->allow_empty ||
              cJSON_AddTrueToObject(o, "allow_empty")) &&
             (!opt->force || cJSON_AddTrueToObject(o, "force")) &&
             (!opt->squash || cJSON_AddTrueToObject(o, "squash_merge"));
    }
    return print_and_delete(o, ok);
}

static char *two_strings(const char *k1, const char *v1, const char *k2,
                         const char *v2)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && add_string(o, k1, v1) && add_string(o, k2, v2);
    return print_and_delete(o, ok);
}

char *lakefs_json_branch_creation(const char *name, const char *source)
{
    return two_strings("name", name, "source", source);
}

char *lakefs_json_tag_creation(const char *id, const char *ref)
{
    return two_strings("id", id, "ref", ref);
}

char *lakefs_json_reset(const char *type, const char *path)
{
    return two_strings("type", type, "path", path);
}

char *lakefs_json_copy(const char *src_path, const char *src_ref)
{
    return two_strings("src_path", src_path, "src_ref", src_ref);
}

char *lakefs_json_repository_creation(const char *name,
                                      const char *storage_namespace,
                                      const char *default_branch)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && add_string(o, "name", name) &&
              add_string(o, "storage_namespace", storage_namespace) &&
              add_string(o, "default_branch", default_branch);
    return print_and_delete(o, ok);
}

char *lakefs_json_user_metadata(const lakefs_metadata *set)
{
    static const lakefs_metadata empty = {NULL, 0};
    cJSON *o = cJSON_CreateObject();
    bool ok = o && add_metadata(o, "set", set ? set : &empty);
    return print_and_delete(o, ok);
}

char *lakefs_json_path_list(const char *const *paths, size_t count)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = o ? cJSON_AddArrayToObject(o, "paths") : NULL;
    bool ok = arr != NULL;
    for (size_t i = 0; ok && i < count; i++) {
        cJSON *s = cJSON_CreateString(paths[i]);
        ok = s && cJSON_AddItemToArray(arr, s);
    }
    return print_and_delete(o, ok);
}

char *lakefs_json_staging_metadata(const lakefs_staging_location *staging,
                                   const char *checksum, int64_t size_bytes,
                                   const lakefs_metadata *user_metadata,
                                   const char *content_type)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *loc = o ? cJSON_AddObjectToObject(o, "staging") : NULL;
    bool ok = loc &&
              add_string(loc, "physical_address",
                         staging->physical_address) &&
              add_string(loc, "presigned_url", staging->presigned_url) &&
              (!staging->presigned_url_expiry ||
               cJSON_AddNumberToObject(loc, "presigned_url_expiry",
                                       (double)staging
                                           ->presigned_url_expiry)) &&
              add_string(o, "checksum", checksum) &&
              cJSON_AddNumberToObject(o, "size_bytes", (double)size_bytes) &&
              add_metadata(o, "user_metadata", user_metadata) &&
              add_string(o, "content_type", content_type);
    return print_and_delete(o, ok);
}

char *lakefs_json_complete_multipart(const char *physical_address,
                                     const lakefs_upload_part *parts,
                                     size_t count,
                                     const lakefs_metadata *user_metadata,
                                     const char *content_type)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && add_string(o, "physical_address", physical_address);
    cJSON *arr = ok ? cJSON_AddArrayToObject(o, "parts") : NULL;
    ok = arr != NULL;
    for (size_t i = 0; ok && i < count; i++) {
        cJSON *part = cJSON_CreateObject();
        if (!part || !cJSON_AddItemToArray(arr, part)) {
            cJSON_Delete(part); /* not attached: not freed with o */
            ok = false;
            break;
        }
        ok = cJSON_AddNumberToObject(part, "part_number",
                                     parts[i].part_number) &&
             add_string(part, "etag", parts[i].etag ? parts[i].etag : "");
    }
    ok = ok && add_metadata(o, "user_metadata", user_metadata) &&
         add_string(o, "content_type", content_type);
    return print_and_delete(o, ok);
}

char *lakefs_json_abort_multipart(const char *physical_address)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && add_string(o, "physical_address", physical_address);
    return print_and_delete(o, ok);
}
