/*
 * lakefs_outcome.c - after a non-idempotent request failed ambiguously (a
 * timeout, a cut connection, a 5xx, a garbled answer: the server may have
 * applied it), ask the server what happened instead of sending it again.
 * Each check answers 1 (applied: the caller reports success, once), 0 (not
 * applied: the original error stands) or a negative errno (unknown).
 * Only idempotent reads are sent from here.
 */
#include "lakefs_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool same_string(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* The commit's metadata holds every pair of md (NULL: none); exact: and
 * nothing else (a merge commit may carry keys the server adds). */
static bool same_metadata(const lakefs_metadata *have,
                          const lakefs_metadata *md, bool exact)
{
    size_t want = md ? md->count : 0;
    if (exact && have->count != want)
        return false;
    for (size_t i = 0; i < want; i++)
        if (!same_string(lakefs_metadata_get(have, md->items[i].key),
                         md->items[i].value))
            return false;
    return true;
}

/* What the commit made by the call that failed looks like. */
typedef struct our_commit {
    size_t parents;   /* exactly this many (0: any); the first is the
                         head read before the call */
    const char *message;        /* NULL: any */
    const lakefs_metadata *metadata; /* its pairs (NULL: none) */
    bool exact_metadata;        /* and no others */
} our_commit;

/* Whether the branch's head moved from old_head to a commit the call
 * made: 1 and *head (the caller frees it), 0 when the head did not move
 * or moved to another commit, or a negative errno. */
static int head_is_ours(lakefs_client *c, const char *repo,
                        const char *branch, const char *old_head,
                        const our_commit *want, lakefs_commit *head,
                        lakefs_error *err)
{
    memset(head, 0, sizeof(*head));
    lakefs_ref ref;
    int rc = lakefs_get_branch(c, repo, branch, &ref, err);
    if (rc)
        return rc;
    bool moved = !same_string(ref.commit_id, old_head);
    if (moved)
        rc = lakefs_get_commit(c, repo, ref.commit_id, head, err);
    lakefs_ref_free(&ref);
    if (rc || !moved)
        return rc;
    bool ours = head->parent_count >= 1 &&
                (!want->parents || head->parent_count == want->parents) &&
                same_string(head->parents[0], old_head) &&
                (!want->message || same_string(head->message, want->message)) &&
                same_metadata(&head->metadata, want->metadata,
                              want->exact_metadata);
    if (!ours)
        lakefs_commit_free(head);
    return ours;
}

int lakefs_outcome_commit(lakefs_client *c, const char *repo,
                          const char *branch, const char *old_head,
                          const char *message, const lakefs_metadata *md,
                          lakefs_commit *out, lakefs_error *err)
{
    our_commit want = {.message = message, .metadata = md,
                       .exact_metadata = true};
    lakefs_commit head;
    int rc = head_is_ours(c, repo, branch, old_head, &want, &head, err);
    if (rc == 1 && out)
        *out = head;
    else if (rc == 1)
        lakefs_commit_free(&head);
    return rc;
}

int lakefs_outcome_merge(lakefs_client *c, const char *repo,
                         const char *dest, const char *old_head,
                         const lakefs_merge_options *opt, char **reference,
                         lakefs_error *err)
{
    /* A merge commit has the source as its second parent, unless squashed;
     * lakeFS may add metadata keys of its own. */
    our_commit want = {.parents = opt && opt->squash ? 1 : 2,
                       .message = opt ? opt->message : NULL,
                       .metadata = opt ? opt->metadata : NULL};
    lakefs_commit head;
    int rc = head_is_ours(c, repo, dest, old_head, &want, &head, err);
    if (rc == 1 && reference) {
        *reference = head.id;
        head.id = NULL;
    }
    if (rc == 1)
        lakefs_commit_free(&head);
    return rc;
}

/* The commit a ref expression names now. */
static int resolve(lakefs_client *c, const char *repo, const char *ref,
                   char **id, lakefs_error *err)
{
    lakefs_commit commit;
    int rc = lakefs_get_commit(c, repo, ref, &commit, err);
    if (rc)
        return rc;
    *id = commit.id;
    commit.id = NULL;
    lakefs_commit_free(&commit);
    return 0;
}

int lakefs_outcome_branch(lakefs_client *c, const char *repo,
                          const char *name, const char *source,
                          char **commit_id, lakefs_error *err)
{
    lakefs_ref ref;
    int rc = lakefs_get_branch(c, repo, name, &ref, err);
    if (rc == -ENOENT)
        return 0;
    if (rc)
        return rc;
    char *want = NULL;
    rc = resolve(c, repo, source, &want, err);
    int ours = rc == 0 && same_string(ref.commit_id, want);
    if (ours && commit_id) {
        *commit_id = ref.commit_id;
        ref.commit_id = NULL;
    }
    free(want);
    lakefs_ref_free(&ref);
    return rc ? rc : ours;
}

int lakefs_outcome_tag(lakefs_client *c, const char *repo, const char *tag,
                       const char *target, lakefs_ref *out,
                       lakefs_error *err)
{
    /* A tag name is a ref expression; "tags/NAME" would not be needed
     * unless a branch had the same name, which lakeFS refuses. */
    char *have = NULL, *want = NULL;
    int rc = resolve(c, repo, tag, &have, err);
    if (rc == -ENOENT)
        return 0;
    if (rc == 0)
        rc = resolve(c, repo, target, &want, err);
    int ours = rc == 0 && same_string(have, want);
    if (ours && out) {
        out->id = strdup(tag);
        out->commit_id = have;
        have = NULL;
        if (!out->id) {
            lakefs_ref_free(out);
            rc = -ENOMEM;
        }
    }
    free(have);
    free(want);
    return rc ? rc : ours;
}

int lakefs_outcome_object(lakefs_client *c, const char *repo,
                          const char *branch, const char *path,
                          const char *physical_address, const char *checksum,
                          lakefs_object_stats *out, lakefs_error *err)
{
    lakefs_object_stats st;
    int rc = lakefs_stat_object(c, repo, branch, path, false, &st, err);
    if (rc == -ENOENT)
        return 0;
    if (rc)
        return rc;
    bool ours = same_string(st.physical_address, physical_address) &&
                (!checksum || same_string(st.checksum, checksum));
    if (ours && out) {
        *out = st;
        return 1;
    }
    lakefs_object_stats_free(&st);
    return ours;
}

int lakefs_outcome_copy(lakefs_client *c, const char *repo,
                        const char *branch, const char *src_path,
                        const char *src_ref, const char *dest_path,
                        lakefs_object_stats *out, lakefs_error *err)
{
    lakefs_object_stats src, dest;
    int rc = lakefs_stat_object(c, repo, branch, dest_path, false, &dest,
                                err);
    if (rc == -ENOENT)
        return 0;
    if (rc)
        return rc;
    rc = lakefs_stat_object(c, repo, src_ref ? src_ref : branch, src_path,
                            false, &src, err);
    /* The copy's result is the source's bytes with the source's metadata
     * and content type: a destination that differs in any of them is not
     * it. The same bytes alone prove nothing: every symlink and empty
     * file has the checksum of "", and a file replaced by a copy of the
     * same data with another mode would keep its old metadata. */
    int ours = rc == 0 && same_string(src.checksum, dest.checksum) &&
               src.size_bytes == dest.size_bytes &&
               same_metadata(&dest.metadata, &src.metadata, true) &&
               (src.content_type && dest.content_type
                    ? strcmp(src.content_type, dest.content_type) == 0
                    : src.content_type == dest.content_type);
    lakefs_object_stats_free(&src);
    if (ours && out) {
        *out = dest;
        return 1;
    }
    lakefs_object_stats_free(&dest);
    /* The source gone since (a rename's delete ran) cannot be compared:
     * the destination is there, so unknown rather than "not applied". */
    return rc == -ENOENT ? -EIO : rc ? rc : ours;
}

int lakefs_outcome_repository(lakefs_client *c, const char *name,
                              const char *storage_namespace,
                              lakefs_repository *out, lakefs_error *err)
{
    lakefs_repository repo;
    int rc = lakefs_get_repository(c, name, &repo, err);
    if (rc == -ENOENT)
        return 0;
    if (rc)
        return rc;
    bool ours = same_string(repo.storage_namespace, storage_namespace);
    if (ours && out) {
        *out = repo;
        return 1;
    }
    lakefs_repository_free(&repo);
    return ours;
}

int lakefs_outcome_deleted(lakefs_client *c, const char *repo,
                           const char *branch, const char *path,
                           lakefs_error *err)
{
    lakefs_object_stats st;
    int rc = lakefs_stat_object(c, repo, branch, path, false, &st, err);
    if (rc == -ENOENT)
        return 1;
    if (rc)
        return rc;
    lakefs_object_stats_free(&st);
    return 0;
}

int lakefs_outcome_user_metadata(lakefs_client *c, const char *repo,
                                 const char *branch, const char *path,
                                 const lakefs_metadata *md,
                                 lakefs_error *err)
{
    lakefs_object_stats st;
    int rc = lakefs_stat_object(c, repo, branch, path, false, &st, err);
    if (rc == -ENOENT)
        return 0; /* nothing there to have taken it */
    if (rc)
        return rc;
    bool ours = same_metadata(&st.metadata, md, true);
    lakefs_object_stats_free(&st);
    return ours;
}

int lakefs_outcome_settle(lakefs_client *c, lakefs_op op, int rc,
                          int outcome, const lakefs_error *check_err,
                          lakefs_error *err)
{
    if (outcome > 0) {
        /* Applied: the call succeeds after all, and is not a failure. */
        atomic_fetch_sub(&c->counters[op][COUNTER_FAILURES], 1);
        if (err)
            memset(err, 0, sizeof(*err));
        return 0;
    }
    if (outcome == 0)
        return rc; /* not applied: the original error stands */
    char first[LAKEFS_ERROR_MESSAGE_MAX];
    snprintf(first, sizeof(first), "%s", err ? err->message : "");
    lakefs_error_set(err, 0,
                     "%s failed (%s) and its outcome is unknown: checking "
                     "it failed too (%s)",
                     lakefs_op_name(op), first,
                     check_err ? check_err->message : "");
    return -EIO;
}
