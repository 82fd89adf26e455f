/*
 * control_write.c - writes to .lakefs/commit, merge, branch and reset:
 * each write(2) is parsed (plain text, or a JSON object for the options)
 * and becomes one workflow action; its result is kept per ref for reading
 * back. Never acts on a partial or malformed request.
 */
#include "control.h"

#include "workflow.h"
#include "jsonnul.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- results kept for reading back ---- */

static void remember(lakefuse_fs *fs, const tree_ref *ref, tree_control c,
                     char *json)
{
    if (!json)
        return;
    pthread_mutex_lock(&fs->results_lock);
    control_result *r = fs->results;
    while (r && !(r->ref == ref && r->control == (int)c))
        r = r->next;
    if (!r && (r = calloc(1, sizeof(*r))) != NULL) {
        r->ref = ref;
        r->control = (int)c;
        r->next = fs->results;
        fs->results = r;
    }
    if (r) {
        free(r->json);
        r->json = json;
        json = NULL;
    }
    pthread_mutex_unlock(&fs->results_lock);
    free(json);
}

int control_last_result(lakefuse_fs *fs, const tree_ref *ref,
                        tree_control c, char **out)
{
    pthread_mutex_lock(&fs->results_lock);
    const control_result *r = fs->results;
    while (r && !(r->ref == ref && r->control == (int)c))
        r = r->next;
    int rc = asprintf(out, "%s\n", r ? r->json : "{}") < 0 ? -ENOMEM : 0;
    pthread_mutex_unlock(&fs->results_lock);
    if (rc)
        *out = NULL;
    return rc;
}

void control_results_free(lakefuse_fs *fs)
{
    control_result *r = fs->results;
    while (r) {
        control_result *next = r->next;
        free(r->json);
        free(r);
        r = next;
    }
    fs->results = NULL;
}

/* ---- parsing a request ---- */

/* The text without surrounding whitespace (a trailing newline from echo). */
static char *trimmed(const char *buf, size_t len)
{
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
                   buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        len--;
    while (len && (*buf == ' ' || *buf == '\t' || *buf == '\n')) {
        buf++;
        len--;
    }
    return strndup(buf, len);
}

/* A JSON object of strings into metadata; false when it is not one. */
static bool parse_metadata(const cJSON *obj, lakefs_metadata *md)
{
    if (!obj)
        return true;
    if (!cJSON_IsObject(obj))
        return false;
    const cJSON *item;
    cJSON_ArrayForEach(item, obj)
    {
        if (!cJSON_IsString(item) ||
            lakefs_metadata_set(md, item->string, item->valuestring) != 0)
            return false;
    }
    return true;
}

static const char *json_string(const cJSON *o, const char *name, bool *bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v)
        return NULL;
    if (!cJSON_IsString(v)) {
        *bad = true;
        return NULL;
    }
    return v->valuestring;
}

typedef struct request {
    char *text;       /* the plain-text form, trimmed */
    cJSON *json;      /* the JSON form, when the text starts with '{' */
    lakefs_metadata metadata;
    bool bad;
} request;

static void request_parse(request *r, const char *buf, size_t len)
{
    memset(r, 0, sizeof(*r));
    r->text = trimmed(buf, len);
    if (!r->text) {
        r->bad = true;
        return;
    }
    if (r->text[0] != '{')
        return;
    r->json = jsonnul_parse(r->text);
    if (!cJSON_IsObject(r->json) ||
        !parse_metadata(cJSON_GetObjectItemCaseSensitive(r->json, "metadata"),
                        &r->metadata))
        r->bad = true;
}

static void request_free(request *r)
{
    free(r->text);
    cJSON_Delete(r->json);
    lakefs_metadata_free(&r->metadata);
}

/* ---- the actions ---- */

static int do_commit(lakefuse_fs *fs, const tree_ref *ref, request *r,
                     char **result)
{
    const char *message = r->text;
    bool allow_empty = false;
    if (r->json) {
        message = json_string(r->json, "message", &r->bad);
        const cJSON *ae =
            cJSON_GetObjectItemCaseSensitive(r->json, "allow_empty");
        if (ae && !cJSON_IsBool(ae))
            r->bad = true;
        allow_empty = cJSON_IsTrue(ae);
    }
    if (r->bad)
        return -EINVAL;
    return workflow_commit(fs, ref, message, &r->metadata, allow_empty,
                           result);
}

static int do_merge(lakefuse_fs *fs, const tree_ref *ref, request *r,
                    char **result)
{
    workflow_merge_request m = {.source = r->text,
                                .metadata = &r->metadata};
    if (r->json) {
        m.source = json_string(r->json, "source", &r->bad);
        m.message = json_string(r->json, "message", &r->bad);
        m.strategy = json_string(r->json, "strategy", &r->bad);
    }
    if (r->bad)
        return -EINVAL;
    return workflow_merge(fs, ref, &m, result);
}

static int do_branch(lakefuse_fs *fs, const tree_ref *ref, request *r,
                     char **result)
{
    const char *name = r->text;
    bool delete_it = false;
    if (r->json) {
        name = json_string(r->json, "name", &r->bad);
        delete_it = cJSON_IsTrue(
            cJSON_GetObjectItemCaseSensitive(r->json, "delete"));
    } else if (strncmp(name, "-d ", 3) == 0) {
        delete_it = true;
        name += 3;
        while (*name == ' ')
            name++;
    }
    if (r->bad)
        return -EINVAL;
    return workflow_branch(fs, ref, name, delete_it, result);
}

static int act(lakefuse_fs *fs, const tree_ref *ref, tree_control c,
               const char *buf, size_t len)
{
    request r;
    request_parse(&r, buf, len);
    char *result = NULL;
    int rc = -EINVAL;
    if (c == TREE_CONTROL_COMMIT)
        rc = do_commit(fs, ref, &r, &result);
    else if (c == TREE_CONTROL_MERGE)
        rc = do_merge(fs, ref, &r, &result);
    else if (c == TREE_CONTROL_BRANCH)
        rc = do_branch(fs, ref, &r, &result);
    else if (c == TREE_CONTROL_RESET && !r.bad && !r.json)
        rc = workflow_reset(fs, ref, r.text, &result);
    if (!result)
        result = workflow_error_json(rc, r.bad ? "malformed request" : NULL);
    remember(fs, ref, c, result);
    request_free(&r);
    return rc;
}

int control_write(lakefuse_fs *fs, const tree_node *node, const char *buf,
                  size_t len)
{
    if (node->kind != TREE_CONTROL_FILE || !node->ref)
        return -EACCES;
    return act(fs, node->ref, node->control, buf, len);
}

int control_xattr_action(lakefuse_fs *fs, const tree_node *ref_root,
                         const char *name, const char *value, size_t size)
{
    tree_control c = strcmp(name, "user.lakefs.commit") == 0
                         ? TREE_CONTROL_COMMIT
                     : strcmp(name, "user.lakefs.merge") == 0
                         ? TREE_CONTROL_MERGE
                         : TREE_CONTROL_NONE;
    if (c == TREE_CONTROL_NONE)
        return -ENOTSUP;
    return act(fs, ref_root->ref, c, value, size);
}

unsigned control_mode(const lakefuse_fs *fs, const tree_node *node)
{
    if (node->kind == TREE_CONTROL_DIR)
        return 0555;
    bool branch = node->ref && node->ref->is_branch && !fs->read_only;
    switch (node->control) {
    case TREE_CONTROL_COMMIT:
    case TREE_CONTROL_MERGE:
    case TREE_CONTROL_RESET:
        return branch ? 0644 : 0444;
    case TREE_CONTROL_BRANCH:
        return fs->read_only ? 0444 : 0644;
    default:
        return 0444;
    }
}
