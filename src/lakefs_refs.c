/*
 * lakefs_refs.c - lakeFS operations on the server, repositories, branches,
 * tags and commits, and the versioning verbs (diff, commit, merge, reset).
 * Each function builds one request and parses one answer; transport,
 * retries and errors are lakefs_http.c's business.
 */
#include "lakefs_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Adapters from the typed parsers to lakefs_call's generic one. */
#define PARSER(model, type)                                                   \
    static int parse_##model(const char *b, size_t n, void *out,             \
                             lakefs_error *e)                                 \
    {                                                                         \
        return lakefs_parse_##model(b, n, (type *)out, e);                   \
    }

PARSER(repository, lakefs_repository)
PARSER(repository_list, lakefs_repository_list)
PARSER(ref, lakefs_ref)
PARSER(ref_list, lakefs_ref_list)
PARSER(commit, lakefs_commit)
PARSER(commit_list, lakefs_commit_list)
PARSER(diff_list, lakefs_diff_list)
PARSER(config, lakefs_config)
PARSER(current_user, lakefs_user)
PARSER(merge_result, char *)

static void repo_url(strbuf *url, const char *repo, const char *collection)
{
    strbuf_puts(url, "/repositories");
    url_add_segment(url, repo);
    if (collection)
        strbuf_puts(url, collection);
}

/* ------------------------------------------------------------------ */

int lakefs_health_check(lakefs_client *c, lakefs_error *err)
{
    http_request req;
    http_request_init(&req, LAKEFS_OP_HEALTH_CHECK, "GET");
    req.path_and_query = "/healthcheck";
    return lakefs_call(c, &req, NULL, NULL, NULL, 0, err);
}

int lakefs_get_config(lakefs_client *c, lakefs_config *out, lakefs_error *err)
{
    http_request req;
    http_request_init(&req, LAKEFS_OP_GET_CONFIG, "GET");
    req.path_and_query = "/config";
    return lakefs_call(c, &req, NULL, parse_config, out, sizeof(*out), err);
}

int lakefs_get_current_user(lakefs_client *c, lakefs_user *out,
                            lakefs_error *err)
{
    http_request req;
    http_request_init(&req, LAKEFS_OP_GET_CURRENT_USER, "GET");
    req.path_and_query = "/user";
    return lakefs_call(c, &req, NULL, parse_current_user, out, sizeof(*out), err);
}

int lakefs_list_repositories(lakefs_client *c, const lakefs_list_params *p,
                             lakefs_repository_list *out, lakefs_error *err)
{
    strbuf url = STRBUF_INIT;
    strbuf_puts(&url, "/repositories");
    url_add_page_params(&url, p);
    http_request req;
    http_request_init(&req, LAKEFS_OP_LIST_REPOSITORIES, "GET");
    return lakefs_call(c, &req, &url, parse_repository_list, out, sizeof(*out), err);
}

int lakefs_get_repository(lakefs_client *c, const char *repo,
                          lakefs_repository *out, lakefs_error *err)
{
    strbuf url = STRBUF_INIT;
    repo_url(&url, repo, NULL);
    http_request req;
    http_request_init(&req, LAKEFS_OP_GET_REPOSITORY, "GET");
    return lakefs_call(c, &req, &url, parse_repository, out, sizeof(*out), err);
}

int lakefs_create_repository(lakefs_client *c, const char *name,
                             const char *storage_namespace,
                             const char *default_branch,
                             lakefs_repository *out, lakefs_error *err)
{
    strbuf url = STRBUF_INIT;
    strbuf_puts(&url, "/repositories");
    http_request req;
    http_request_init(&req, LAKEFS_OP_CREATE_REPOSITORY, "POST");
    char *body = lakefs_json_repository_creation(
        name, storage_namespace, default_branch ? default_branch : "main");
    int rc = lakefs_call_json(c, &req, &url, body, parse_repository, out,
                              sizeof(*out), err);
    if (rc && req.maybe_applied) {
        lakefs_error check = {0};
        int outcome = lakefs_outcome_repository(c, name, storage_namespace,
                                                out, &check);
        rc = lakefs_outcome_settle(c, req.op, rc, outcome, &check, err);
    }
    return rc;
}

/* Branch and tag pages take the same prefix/after/amount parameters. */
static int list_refs(lakefs_client *c, lakefs_op op, const char *repo,
                     const char *collection, const lakefs_list_params *p,
                     lakefs_ref_list *out, lakefs_error *err)
{
    strbuf url = STRBUF_INIT;
    repo_url(&url, repo, collection);
    url_add_page_params(&url, p);
    http_request req;
    http_request_init(&req, op, "GET");
    return lakefs_call(c, &req, &url, parse_ref_list, out, sizeof(*out), err);
}

int lakefs_list_branches(lakefs_client *c, const char *repo,
                         const lakefs_list_params *p, lakefs_ref_list *out,
                         lakefs_error *err)
{
    return list_refs(c, LAKEFS_OP_LIST_BRANCHES, repo, "/branches", p, out,
                     err);
}

int lakefs_list_tags(lakefs_client *c, const char *repo,
                     const lakefs_list_params *p, lakefs_ref_list *out,
                     lakefs_error *err)
{
    return list_refs(c, LAKEFS_OP_LIST_TAGS, repo, "/tags", p, out, err);
}

int lakefs_get_branch(lakefs_client *c, const char *repo, const char *branch,
                      lakefs_ref *out, lakefs_error *err)
{
    strbuf url = STRBUF_INIT;
    repo_url(&url, repo, "/branches");
    url_add_segment(&url, branch);
    http_request req;
    http_request_init(&req, LAKEFS_OP_GET_BRANCH, "GET");
    return lakefs_call(c, &req, &url, parse_ref, out, sizeof(*out), err);
}

/* createBranch answers 201 with the commit id as text/html, not JSON. */
static int parse_commit_id_text(const char *body, size_t len, void *out,
                                lakefs_error *err)
{
    while (len > 0 && isspace((unsigned char)body[len - 1]))
        len--;
    while (len > 0 && isspace((unsigned char)*body)) {
        body++;
        len--;
    }
    for (size_t i = 0; i < len; i++) {
        if (!isxdigit((unsigned char)body[i])) {
            lakefs_error_set(err, 0,
                             "malformed lakeFS response: not a commit id");
            return -EPROTO;
        }
    }
    char **id = out;
    *id = strndup(body, len);
    if (!*id) {
        lakefs_error_set(err, 0, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

int lakefs_create_branch(lakefs_client *c, const char *repo, const char *name,
                         const char *source, char **commit_id_out,
                         lakefs_error *err)
{
    strbuf url = STRBUF_INIT;
    repo_url(&url, repo, "/branches");
    http_request req;
    http_request_init(&req, LAKEFS_OP_CREATE_BRANCH, "POST");
    char *id = NULL;
    int rc = lakefs_call_json(c, &req, &url,
                            lakefs_json_branch_creation(name, source),
                            parse_commit_id_text, &id, sizeof(id), err);
    if (rc && req.maybe_applied) {
        lakefs_error check = {0};
        int outcome = lakefs_outcome_branch(c, repo, name, source, &id,
                                            &check);
        rc = lakefs_outcome_settle(c, req.op, rc, outcome, &check, err);
    }
    if (commit_id_out)
        *commit_id_out = id;
    else
        free(id);
    return rc;
}

int lakefs_delete_branch(lakefs_client *c, const char *repo,
                         const char *branch, lakefs_error *err)
{
    strbuf url = STRBUF_INIT;
    repo_url(&url, repo, "/branches");
    url_add_segment(&url, branch);
    http_request req;
    http_request_init(&req, LAKEFS_OP_DELETE_BRANCH, "DELETE");
    return lakefs_call(c, &req, &url, NULL, NULL, 0, err);
}

int lakefs_create_tag(lakefs_client *c, const char *repo, const char *tag,
                      const char *ref, lakefs_ref *out, lakefs_error *err)
{
    strbuf url = STRBUF_INIT;
    repo_url(&url, repo, "/tags");
    http_request req;
    http_request_init(&req, LAKEFS_OP_CREATE_TAG, "POST");
    int rc = lakefs_call_json(c, &req, &url,
                              lakefs_json_tag_creation(tag, ref), parse_ref,
                              out, sizeof(*out), err);
    if (rc && req.maybe_applied) {
        lakefs_error check = {0};
        int outcome = lakefs_outcome_tag(c, repo, tag, ref, out, &check);
        rc = lakefs_outcome_settle(c, req.op, rc, outcome, &check, err);
    }
    return rc;
}

int lakefs_get_commit(lakefs_client *c, const char *repo, const char *ref,
                      lakefs_commit *out, lakefs_error *err)
{
    strbuf url = STRBUF_INIT;
    repo_url(&url, repo, "/commits");
    url_add_segment(&url, ref);
    http_request req;
    http_request_init(&req, LAKEFS_OP_GET_COMMIT, "GET");
    return lakefs_call(c, &req, &url, parse_commit, out, sizeof(*out), err);
}

int lakefs_log_commits(lakefs_client *c, const char *repo, const char *ref,
                       const lakefs_list_params *p, lakefs_commit_list *out,
                       lakefs_error *err)
{
    strbuf url = STRBUF_INIT;
    repo_url(&url, repo, "/refs");
    url_add_segment(&url, ref);
    strbuf_puts(&url, "/commits");
    if (p && p->after)
        url_add_param(&url, "after", p->after);
    if (p && p->amount > 0)
        url_add_int_param(&url, "amount", p->amount);
    http_request req;
    http_request_init(&req, LAKEFS_OP_LOG_COMMITS, "GET");
    return lakefs_call(c, &req, &url, parse_commit_list, out, sizeof(*out), err);
}

/* ------------------------------------------------------------------ */
/* Versioning                                                          */

int lakefs_diff_branch(lakefs_client *c, const char *repo, const char *branch,
                       const lakefs_list_params *p, lakefs_diff_list *out,
                       lakefs_error *err)
{
    strbuf url = STRBUF_INIT;
    repo_url(&url, repo, "/branches");
    url_add_segment(&url, branch);
    strbuf_puts(&url, "/diff");
    url_add_list_params(&url, p);
    http_request req;
    http_request_init(&req, LAKEFS_OP_DIFF_BRANCH, "GET");
    return lakefs_call(c, &req, &url, parse_diff_list, out, sizeof(*out), err);
}

int lakefs_diff_refs(lakefs_client *c, const char *repo, const char *left,
                     const char *right, const lakefs_list_params *p,
                     lakefs_diff_list *out, lakefs_error *err)
{
    strbuf url = STRBUF_INIT;
    repo_url(&url, repo, "/refs");
    url_add_segment(&url, left);
    strbuf_puts(&url, "/diff");
    url_add_segment(&url, right);
    url_add_list_params(&url, p);
    if (p && p->two_dot)
        url_add_param(&url, "type", "two_dot");
    http_request req;
    http_request_init(&req, LAKEFS_OP_DIFF_REFS, "GET");
    return lakefs_call(c, &req, &url, parse_diff_list, out, sizeof(*out), err);
}

int lakefs_commit_branch(lakefs_client *c, const char *repo, const char *branch,
                         const char *message, const lakefs_metadata *metadata,
                  bool allow_empty, lakefs_commit *out, lakefs_error *err)
{
    /* The head before: what an ambiguous failure is checked against. */
    lakefs_ref before;
    int rc = lakefs_get_branch(c, repo, branch, &before, err);
    if (rc) {
        if (out)
            memset(out, 0, sizeof(*out));
        return rc;
    }
    strbuf url = STRBUF_INIT;
    repo_url(&url, repo, "/branches");
    url_add_segment(&url, branch);
    strbuf_puts(&url, "/commits");
    http_request req;
    http_request_init(&req, LAKEFS_OP_COMMIT, "POST");
    rc = lakefs_call_json(
        c, &req, &url,
        lakefs_json_commit_creation(message, metadata, allow_empty),
        parse_commit, out, sizeof(*out), err);
    if (rc && req.maybe_applied) {
        lakefs_error check = {0};
        int outcome = lakefs_outcome_commit(c, repo, branch,
                                            before.commit_id, message,
                                            metadata, out, &check);
        rc = lakefs_outcome_settle(c, req.op, rc, outcome, &check, err);
    }
    lakefs_ref_free(&before);
    return rc;
}

int lakefs_merge(lakefs_client *c, const char *repo, const char *source_ref,
                 const char *dest_branch, const lakefs_merge_options *opt,
                 char **reference_out, lakefs_error *err)
{
    if (reference_out)
        *reference_out = NULL;
    /* The head before: what an ambiguous failure is checked against. */
    lakefs_ref before;
    int rc = lakefs_get_branch(c, repo, dest_branch, &before, err);
    if (rc)
        return rc;
    strbuf url = STRBUF_INIT;
    repo_url(&url, repo, "/refs");
    url_add_segment(&url, source_ref);
    strbuf_puts(&url, "/merge");
    url_add_segment(&url, dest_branch);
    http_request req;
    http_request_init(&req, LAKEFS_OP_MERGE_INTO_BRANCH, "POST");
    char *reference = NULL;
    rc = lakefs_call_json(c, &req, &url, lakefs_json_merge(opt),
                          parse_merge_result, &reference, sizeof(reference),
                          err);
    if (rc && req.maybe_applied) {
        lakefs_error check = {0};
        int outcome = lakefs_outcome_merge(c, repo, dest_branch,
                                           before.commit_id, opt, &reference,
                                           &check);
        rc = lakefs_outcome_settle(c, req.op, rc, outcome, &check, err);
    }
    lakefs_ref_free(&before);
    if (reference_out)
        *reference_out = reference;
    else
        free(reference);
    return rc;
}

int lakefs_reset_branch(lakefs_client *c, const char *repo,
                        const char *branch, lakefs_reset_type type,
                        const char *path, lakefs_error *err)
{
    static const char *const names[] = {
        [LAKEFS_RESET_OBJECT] = "object",
        [LAKEFS_RESET_COMMON_PREFIX] = "common_prefix",
        [LAKEFS_RESET_ALL] = "reset",
    };
    if ((unsigned)type > LAKEFS_RESET_ALL ||
        (type != LAKEFS_RESET_ALL && !path)) {
        lakefs_error_set(err, 0, "reset needs a valid type and a path");
        return -EINVAL;
    }
    strbuf url = STRBUF_INIT;
    repo_url(&url, repo, "/branches");
    url_add_segment(&url, branch);
    http_request req;
    http_request_init(&req, LAKEFS_OP_RESET_BRANCH, "PUT");
    return lakefs_call_json(
        c, &req, &url,
        lakefs_json_reset(names[type], type == LAKEFS_RESET_ALL ? NULL : path),
        NULL, NULL, 0, err);
}
