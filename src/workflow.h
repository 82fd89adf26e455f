/*
 * workflow.h - the lakeFS workflow on a mounted ref: commit, merge, branch,
 * reset, and the cache refresh each needs so the mount shows the new head
 * at once. Control files, extended attributes and mkdir all come here.
 * Each action returns 0 or a negative errno (table below) and, in
 * *result, a JSON text saying what happened (for reading back).
 *
 * errno table: nothing to commit or merge -ENODATA; merge conflict
 * -EEXIST; branch exists -EEXIST; unknown ref -ENOENT; bad name or
 * message -EINVAL; destination has uncommitted changes -EBUSY; refused by
 * the server -EACCES (401) / -EPERM (403); fixed ref -EROFS; anything else
 * from the server or the network -EIO.
 */
#ifndef LAKEFUSE_WORKFLOW_H
#define LAKEFUSE_WORKFLOW_H

#include "fs.h"

#include <stdbool.h>

int workflow_commit(lakefuse_fs *fs, const tree_ref *ref, const char *message,
                    const lakefs_metadata *metadata, bool allow_empty,
                    char **result);

typedef struct workflow_merge_request {
    const char *source;
    const char *message;  /* NULL: the server's */
    const char *strategy; /* NULL, "dest-wins", "source-wins" */
    const lakefs_metadata *metadata;
} workflow_merge_request;

int workflow_merge(lakefuse_fs *fs, const tree_ref *ref,
                   const workflow_merge_request *req, char **result);

/* Creates branch name from ref, or deletes branch name of ref's repo. */
int workflow_branch(lakefuse_fs *fs, const tree_ref *ref, const char *name,
                    bool delete_it, char **result);

/* path: an object, a prefix ending in "/", or "*" for everything; relative
 * to the ref root. */
int workflow_reset(lakefuse_fs *fs, const tree_ref *ref, const char *path,
                   char **result);

/* mkdir in a repository directory / at the root of a lakefs:// mount. */
int workflow_mkdir_branch(lakefuse_fs *fs, const char *repo,
                          const char *name);
int workflow_mkdir_repository(lakefuse_fs *fs, const char *name);

/* Drops what the mount and the kernel cached of a branch's tree. */
void workflow_refresh(lakefuse_fs *fs, const tree_ref *ref);
/* Drops the kernel's cached attributes of ref's path rel (a relative key;
 * "" the ref root); nothing outside a FUSE request. */
void workflow_forget_kernel(lakefuse_fs *fs, const tree_ref *ref,
                            const char *rel);

/* Changes as lists them: other NULL: the branch's uncommitted changes
 * (diffBranch); else what ref has relative to other (diffRefs, three-dot,
 * left = other). Paths under the ref's prefix only, relative to it; at
 * most WORKFLOW_MAX_DIFF. Free with workflow_diff_free. */
#define WORKFLOW_MAX_DIFF 100000
int workflow_diff(lakefuse_fs *fs, const tree_ref *ref, const char *other,
                  lakefs_diff **items, size_t *n);
void workflow_diff_free(lakefs_diff *items, size_t n);

/* A JSON result for a failure, {"ok": false, "errno": ..., "error": ...}. */
char *workflow_error_json(int rc, const char *message);

#endif
