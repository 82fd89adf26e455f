/*
 * workflow.c - commit, merge, branch, reset and diff for a mounted ref,
 * with lakeFS errors turned into the errno table of workflow.h and the
 * branch's caches (ours and the kernel's) refreshed after a change of
 * head. Never commits before this mount's staged writes are uploaded.
 */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include "workflow.h"

#include "jsonnul.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors and results ---- */

static int map_error(int rc, const lakefs_error *err)
{
    const char *m = err ? err->message : "";
    if (rc == -EINVAL && strstr(m, "no changes"))
        return -ENODATA;
    if (rc == -EINVAL && (strstr(m, "uncommitted") || strstr(m, "dirty")))
        return -EBUSY;
    switch (rc) {
    case -EEXIST:
    case -ENOENT:
    case -EINVAL:
    case -EACCES:
    case -EPERM:
    case -ENOMEM:
        return rc;
    default:
        return -EIO;
    }
}

char *workflow_error_json(int rc, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", 0);
    const char *name = strerrorname_np(-rc);
    cJSON_AddStringToObject(o, "errno", name ? name : "EIO");
    cJSON_AddStringToObject(o, "error",
                            message && *message ? message : strerror(-rc));
    char *text = jsonnul_print(o, false);
    cJSON_Delete(o);
    return text;
}

static cJSON *metadata_json(const lakefs_metadata *md)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; md && o && i < md->count; i++)
        cJSON_AddStringToObject(o, md->items[i].key, md->items[i].value);
    return o;
}

static char *commit_json(const lakefs_commit *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *commit = cJSON_AddObjectToObject(o, "commit");
    cJSON_AddBoolToObject(o, "ok", 1);
    cJSON_AddStringToObject(commit, "id", c->id ? c->id : "");
    cJSON_AddStringToObject(commit, "message", c->message ? c->message : "");
    cJSON_AddItemToObject(commit, "metadata", metadata_json(&c->metadata));
    cJSON *parents = cJSON_AddArrayToObject(commit, "parents");
    for (size_t i = 0; i < c->parent_count; i++)
        cJSON_AddItemToArray(parents, cJSON_CreateString(c->parents[i]));
    cJSON_AddStringToObject(commit, "committer",
                            c->committer ? c->committer : "");
    cJSON_AddNumberToObject(commit, "creation_date",
                            (double)c->creation_date);
    char *text = jsonnul_print(o, false);
    cJSON_Delete(o);
    return text;
}

static char *ok_json(const char *key, const char *value)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", 1);
    if (key)
        cJSON_AddStringToObject(o, key, value ? value : "");
    char *text = jsonnul_print(o, false);
    cJSON_Delete(o);
    return text;
}

static int fail(lakefuse_fs *fs, int rc, const lakefs_error *err,
                const char *what, char **result)
{
    int mapped = map_error(rc, err);
    logger_write(fs->log, LOG_LEVEL_INFO, "%s failed: %s", what,
                 err && err->message[0] ? err->message : strerror(-mapped));
    *result = workflow_error_json(mapped, err ? err->message : NULL);
    return mapped;
}

static int require_branch(const tree_ref *ref, char **result)
{
    if (ref->is_branch)
        return 0;
    *result = workflow_error_json(-EROFS, "a fixed ref cannot change");
    return -EROFS;
}

/* ---- caches ---- */

void workflow_forget_kernel(lakefuse_fs *fs, const tree_ref *ref,
                            const char *rel)
{
    struct fuse_context *ctx = fuse_get_context();
    struct fuse *f = ctx ? ctx->fuse : NULL;
    char *p = f ? tree_mount_path(fs->tree, ref, rel) : NULL;
    if (p)
        fuse_invalidate_path(f, p); /* ENOENT: the kernel had none */
    free(p);
}

void workflow_refresh(lakefuse_fs *fs, const tree_ref *ref)
{
    char **paths = NULL;
    size_t n = 0;
    metacache_invalidate_ref_paths(fs->meta, ref->cache_key, &paths, &n);
    for (size_t i = 0; i < n; i++) {
        workflow_forget_kernel(fs, ref, paths[i]);
        free(paths[i]);
    }
    free(paths);
    workflow_forget_kernel(fs, ref, "");
}

/* ---- actions ---- */

int workflow_commit(lakefuse_fs *fs, const tree_ref *ref, const char *message,
                    const lakefs_metadata *metadata, bool allow_empty,
                    char **result)
{
    *result = NULL;
    int rc = require_branch(ref, result);
    if (rc)
        return rc;
    if (!message || !*message) {
        *result = workflow_error_json(-EINVAL, "a commit needs a message");
        return -EINVAL;
    }
    /* What this mount holds staged is part of what the user commits. */
    rc = writer_flush_branch(fs->writer, ref->repo, ref->api_ref);
    if (rc) {
        *result = workflow_error_json(-EIO, "pending uploads failed; see "
                                            ".lakefs/status");
        return -EIO;
    }
    lakefs_commit commit;
    lakefs_error err = {0};
    rc = lakefs_commit_branch(fs->client, ref->repo, ref->api_ref, message,
                              metadata, allow_empty, &commit, &err);
    if (rc)
        return fail(fs, rc, &err, "commit", result);
    *result = commit_json(&commit);
    logger_write(fs->log, LOG_LEVEL_INFO, "committed %s to %s/%s", commit.id,
                 ref->repo, ref->name);
    lakefs_commit_free(&commit);
    workflow_refresh(fs, ref);
    return 0;
}

/* Paths changed on both sides since the merge base: what conflicts. */
static cJSON *conflict_paths(lakefuse_fs *fs, const tree_ref *ref,
                             const char *source)
{
    cJSON *list = cJSON_CreateArray();
    lakefs_diff *theirs = NULL, *ours = NULL;
    size_t nt = 0, no = 0;
    tree_ref source_ref = *ref;
    source_ref.api_ref = (char *)source;
    if (workflow_diff(fs, &source_ref, ref->api_ref, &theirs, &nt) == 0 &&
        workflow_diff(fs, ref, source, &ours, &no) == 0)
        for (size_t i = 0; i < nt; i++)
            for (size_t j = 0; j < no; j++)
                if (strcmp(theirs[i].path, ours[j].path) == 0) {
                    cJSON_AddItemToArray(list,
                                         cJSON_CreateString(theirs[i].path));
                    break;
                }
    workflow_diff_free(theirs, nt);
    workflow_diff_free(ours, no);
    return list;
}

int workflow_merge(lakefuse_fs *fs, const tree_ref *ref,
                   const workflow_merge_request *req, char **result)
{
    *result = NULL;
    int rc = require_branch(ref, result);
    if (rc)
        return rc;
    if (!req->source || !*req->source) {
        *result = workflow_error_json(-EINVAL, "merge needs a source ref");
        return -EINVAL;
    }
    rc = writer_flush_branch(fs->writer, ref->repo, ref->api_ref);
    lakefs_merge_options opt = {.message = req->message,
                                .metadata = req->metadata,
                                .strategy = req->strategy};
    char *reference = NULL;
    lakefs_error err = {0};
    if (rc == 0)
        rc = lakefs_merge(fs->client, ref->repo, req->source, ref->api_ref,
                          &opt, &reference, &err);
    if (rc == -EEXIST) {
        rc = fail(fs, rc, &err, "merge", result);
        cJSON *o = jsonnul_parse(*result);
        if (o) {
            cJSON_AddItemToObject(o, "conflicts",
                                  conflict_paths(fs, ref, req->source));
            free(*result);
            *result = jsonnul_print(o, false);
            cJSON_Delete(o);
        }
        return rc;
    }
    if (rc)
        return fail(fs, rc, &err, "merge", result);
    *result = ok_json("reference", reference);
    free(reference);
    workflow_refresh(fs, ref);
    return 0;
}

int workflow_branch(lakefuse_fs *fs, const tree_ref *ref, const char *name,
                    bool delete_it, char **result)
{
    *result = NULL;
    if (!name || !listing_name_is_valid(name)) {
        *result = workflow_error_json(-EINVAL, "not a branch name");
        return -EINVAL;
    }
    lakefs_error err = {0};
    char *commit_id = NULL;
    int rc = delete_it ? lakefs_delete_branch(fs->client, ref->repo, name,
                                              &err)
                       : lakefs_create_branch(fs->client, ref->repo, name,
                                              ref->api_ref, &commit_id, &err);
    if (rc)
        return fail(fs, rc, &err, delete_it ? "branch delete" : "branch",
                    result);
    *result = ok_json(delete_it ? "deleted" : "created", name);
    free(commit_id);
    tree_forget_branches(fs->tree, ref->repo);
    return 0;
}

int workflow_reset(lakefuse_fs *fs, const tree_ref *ref, const char *path,
                   char **result)
{
    *result = NULL;
    int rc = require_branch(ref, result);
    if (rc)
        return rc;
    if (!path || !*path) {
        *result = workflow_error_json(-EINVAL, "reset needs a path or *");
        return -EINVAL;
    }
    bool all = strcmp(path, "*") == 0 && !ref->prefix[0];
    bool prefix = all || strcmp(path, "*") == 0 || path[strlen(path) - 1] == '/';
    char *full = NULL;
    if (asprintf(&full, "%s%s", ref->prefix, strcmp(path, "*") ? path : "") < 0)
        return -ENOMEM;
    lakefs_error err = {0};
    /* A queued upload landing after the reset would bring back what the
     * reset discards: the async_close pool's uploads go first. */
    writer_settle_branch(fs->writer, ref->repo, ref->api_ref);
    rc = lakefs_reset_branch(fs->client, ref->repo, ref->api_ref,
                             all      ? LAKEFS_RESET_ALL
                             : prefix ? LAKEFS_RESET_COMMON_PREFIX
                                      : LAKEFS_RESET_OBJECT,
                             full, &err);
    free(full);
    if (rc)
        return fail(fs, rc, &err, "reset", result);
    *result = ok_json("reset", path);
    workflow_refresh(fs, ref);
    return 0;
}

int workflow_mkdir_branch(lakefuse_fs *fs, const char *repo,
                          const char *name)
{
    lakefs_repository r;
    lakefs_error err = {0};
    int rc = lakefs_get_repository(fs->client, repo, &r, &err);
    char *commit_id = NULL;
    if (rc == 0)
        rc = lakefs_create_branch(fs->client, repo, name, r.default_branch,
                                  &commit_id, &err);
    if (rc == 0)
        logger_write(fs->log, LOG_LEVEL_INFO, "created branch %s/%s from %s",
                     repo, name, r.default_branch);
    else
        logger_write(fs->log, LOG_LEVEL_WARNING, "mkdir %s/%s: %s", repo,
                     name, err.message);
    free(commit_id);
    lakefs_repository_free(&r);
    tree_forget_branches(fs->tree, repo);
    return rc ? map_error(rc, &err) : 0;
}

int workflow_mkdir_repository(lakefuse_fs *fs, const char *name)
{
    lakefs_config config;
    lakefs_error err = {0};
    int rc = lakefs_get_config(fs->client, &config, &err);
    const lakefs_storage_config *st =
        rc == 0 ? lakefs_config_storage_for(&config, NULL) : NULL;
    const char *prefix = st ? st->default_namespace_prefix : NULL;
    char *ns = NULL;
    if (rc == 0 && (!prefix || !*prefix)) {
        logger_write(fs->log, LOG_LEVEL_WARNING,
                     "mkdir %s: the server has no default_namespace_prefix, "
                     "so lakefuse cannot choose a storage namespace; create "
                     "the repository with lakectl",
                     name);
        rc = -EPERM;
    } else if (rc == 0) {
        size_t len = strlen(prefix);
        if (asprintf(&ns, "%s%s%s", prefix,
                     len && prefix[len - 1] == '/' ? "" : "/", name) < 0)
            ns = NULL;
        lakefs_repository repo;
        rc = ns ? lakefs_create_repository(fs->client, name, ns, NULL, &repo,
                                           &err)
                : -ENOMEM;
        if (rc == 0)
            lakefs_repository_free(&repo);
        else
            logger_write(fs->log, LOG_LEVEL_WARNING, "mkdir %s: %s", name,
                         err.message);
        rc = rc ? map_error(rc, &err) : 0;
    }
    free(ns);
    lakefs_config_free(&config);
    tree_forget_repositories(fs->tree);
    return rc;
}

/* ---- diffs ---- */

void workflow_diff_free(lakefs_diff *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        lakefs_diff_free(&items[i]);
    free(items);
}

/* Keeps d when under the ref's prefix, with the prefix cut off. */
static int keep_diff(const tree_ref *ref, lakefs_diff *d, lakefs_diff **items,
                     size_t *n, size_t *cap)
{
    size_t pl = strlen(ref->prefix);
    if (!d->path || strncmp(d->path, ref->prefix, pl) != 0 ||
        !d->path[pl]) {
        lakefs_diff_free(d);
        return 0;
    }
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        lakefs_diff *grown = realloc(*items, *cap * sizeof(**items));
        if (!grown) {
            lakefs_diff_free(d);
            return -ENOMEM;
        }
        *items = grown;
    }
    memmove(d->path, d->path + pl, strlen(d->path + pl) + 1);
    (*items)[(*n)++] = *d;
    memset(d, 0, sizeof(*d));
    return 0;
}

int workflow_diff(lakefuse_fs *fs, const tree_ref *ref, const char *other,
                  lakefs_diff **items, size_t *n)
{
    *items = NULL;
    *n = 0;
    size_t cap = 0;
    lakefs_pager pager; /* a diff that does not advance is an error */
    lakefs_pager_init(&pager, true, 0);
    int rc = 0;
    while (rc == 0 && *n < WORKFLOW_MAX_DIFF && !pager.done) {
        lakefs_list_params p = {.after = pager.after, .amount = 1000,
                                .prefix = ref->prefix[0] ? ref->prefix : NULL};
        lakefs_diff_list page;
        lakefs_error err = {0};
        rc = other ? lakefs_diff_refs(fs->client, ref->repo, other,
                                      ref->api_ref, &p, &page, &err)
                   : lakefs_diff_branch(fs->client, ref->repo, ref->api_ref,
                                        &p, &page, &err);
        if (rc == 0)
            rc = lakefs_pager_next(&pager, &page.pagination, page.count,
                                   &err);
        if (rc) {
            lakefs_diff_list_free(&page);
            rc = map_error(rc, &err);
            break;
        }
        for (size_t i = 0; rc == 0 && i < page.count; i++)
            rc = keep_diff(ref, &page.items[i], items, n, &cap);
        lakefs_diff_list_free(&page);
    }
    lakefs_pager_free(&pager);
    if (rc) {
        workflow_diff_free(*items, *n);
        *items = NULL;
        *n = 0;
    }
    return rc;
}
