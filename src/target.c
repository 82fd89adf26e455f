/*
 * target.c - resolves a lakefs:// URI against the server (repository, ref
 * to commit, branch or fixed). Three calls at most; it only reads.
 */
#include "target.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int explain(int rc, const lakefs_error *err, char *why, size_t len,
                   const char *what)
{
    if (rc == -ENOENT)
        snprintf(why, len, "%s not found", what);
    else
        snprintf(why, len, "cannot look up %s: %s", what, err->message);
    return rc;
}

/* A ref expression with ~, ^, @ or $ is a fixed commit even when it
 * starts with a branch name. */
static bool looks_like_branch_name(const char *ref)
{
    return strpbrk(ref, "~^@$") == NULL;
}

int target_resolve(lakefs_client *c, const lakefuse_uri *uri,
                   mount_target *out, char *why, size_t why_len)
{
    memset(out, 0, sizeof(*out));
    if (!uri->repo)
        return 0;
    char what[600];
    lakefs_error err = {0};
    lakefs_repository repo;
    snprintf(what, sizeof(what), "repository '%s'", uri->repo);
    int rc = lakefs_get_repository(c, uri->repo, &repo, &err);
    if (rc)
        return explain(rc, &err, why, why_len, what);
    out->default_branch = repo.default_branch;
    out->storage_namespace = repo.storage_namespace;
    repo.default_branch = NULL;
    repo.storage_namespace = NULL;
    lakefs_repository_free(&repo);
    if (!uri->ref)
        return 0;

    lakefs_commit commit;
    snprintf(what, sizeof(what), "ref '%s' in repository '%s'", uri->ref,
             uri->repo);
    rc = lakefs_get_commit(c, uri->repo, uri->ref, &commit, &err);
    if (rc) {
        target_free(out);
        return explain(rc, &err, why, why_len, what);
    }
    out->commit_id = commit.id;
    commit.id = NULL;
    lakefs_commit_free(&commit);

    if (looks_like_branch_name(uri->ref)) {
        lakefs_ref branch;
        rc = lakefs_get_branch(c, uri->repo, uri->ref, &branch, &err);
        if (rc == 0) {
            out->is_branch = true;
            lakefs_ref_free(&branch);
        } else if (rc != -ENOENT) {
            target_free(out);
            return explain(rc, &err, why, why_len, what);
        }
    }
    return 0;
}

void target_free(mount_target *t)
{
    free(t->default_branch);
    free(t->storage_namespace);
    free(t->commit_id);
    memset(t, 0, sizeof(*t));
}
