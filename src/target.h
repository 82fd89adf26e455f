/*
 * target.h - what a lakefs:// URI names on the server, resolved before
 * anything is mounted: the repository must exist, the ref must resolve to
 * a commit, and a plain branch name is told apart from a fixed ref (tag,
 * commit id, main~1, main@), which is read-only and never moves.
 */
#ifndef LAKEFUSE_TARGET_H
#define LAKEFUSE_TARGET_H

#include "lakefs.h"
#include "uri.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct mount_target {
    char *default_branch; /* of uri->repo, when one is named */
    char *storage_namespace; /* of uri->repo: part of the data cache key */
    char *commit_id;      /* the commit uri->ref resolves to now */
    bool is_branch;       /* uri->ref is a branch name: follows its head */
} mount_target;

/* 0, or a negative errno with one line for the user in why. */
int target_resolve(lakefs_client *c, const lakefuse_uri *uri,
                   mount_target *out, char *why, size_t why_len);
void target_free(mount_target *t);

#endif
