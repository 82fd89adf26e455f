/*
 * tree.h - what a path in the mount names: the repositories, a repository's
 * refs, a directory or file inside a ref, or the hidden .lakefs/ control
 * directory. Directory listings are the unit of metadata: they are fetched
 * whole (paginated listObjects, listBranches, listRepositories), once for
 * all concurrent callers, and kept in the metadata cache; a lookup never
 * costs a statObject. Knows nothing of FUSE.
 */
#ifndef LAKEFUSE_TREE_H
#define LAKEFUSE_TREE_H

#include "lakefs.h"
#include "listing.h"
#include "log.h"
#include "metacache.h"
#include "target.h"
#include "uri.h"

#include <stdbool.h>
#include <stdint.h>

/* The name of the hidden control directory at ref roots and the mount
 * root; an object of that name at a ref root is hidden by it. */
#define TREE_CONTROL_DIR_NAME ".lakefs"

typedef enum tree_mode {
    TREE_MODE_ALL,  /* lakefs://: repositories at the root */
    TREE_MODE_REPO, /* lakefs://REPO: refs at the root */
    TREE_MODE_REF   /* lakefs://REPO/REF[/PREFIX]: one tree */
} tree_mode;

/* A ref the mount has met. Lives as long as the tree; never changes. */
typedef struct tree_ref {
    char *repo;
    char *name;      /* as written in the path or URI */
    char *api_ref;   /* what listings and reads ask for: the branch name,
                        or the commit id a fixed ref resolved to */
    char *commit_id; /* fixed refs: the commit; branches: NULL (moves) */
    bool is_branch;
    char *cache_key; /* metadata cache key: fixed refs naming the same
                        commit share their listings */
    char *prefix;    /* "" or "sub/tree/": the URI's PREFIX */
    int64_t commit_time; /* fixed refs: the commit's creation date */
    char *storage_namespace; /* the repository's (NULL: unknown): part of
                                the data cache key of its objects */
} tree_ref;

typedef enum tree_kind {
    TREE_REPOSITORIES, /* the root of a lakefs:// mount */
    TREE_REPOSITORY,   /* lists the branches of node.repo */
    TREE_DIR,          /* a directory in a ref (ref_root: the ref itself) */
    TREE_FILE,         /* an object (entry.is_symlink: a symlink) */
    TREE_CONTROL_DIR,  /* .lakefs/ (ref NULL: the mount root's) */
    TREE_CONTROL_FILE
} tree_kind;

/* The control files of .lakefs/ (TREE_CONTROL_FILE), and its diff/
 * directory (TREE_CONTROL_DIR with TREE_CONTROL_DIFF; a file in it has
 * TREE_CONTROL_DIFF and key = the other ref's name). */
typedef enum tree_control {
    TREE_CONTROL_NONE,
    TREE_CONTROL_HEAD,
    TREE_CONTROL_STATS,
    TREE_CONTROL_STATUS,
    TREE_CONTROL_STATUS_JSON,
    TREE_CONTROL_COMMIT,
    TREE_CONTROL_MERGE,
    TREE_CONTROL_BRANCH,
    TREE_CONTROL_RESET,
    TREE_CONTROL_DIFF,
    TREE_CONTROL_COUNT
} tree_control;

/* The file name of a control ("commit"), or NULL for NONE. */
const char *tree_control_name(tree_control c);
/* Whether .lakefs/ holds it: only stats without a ref (the mount root). */
bool tree_control_exists(tree_control c, bool in_ref);

typedef struct tree_node {
    tree_kind kind;
    char *repo;          /* TREE_REPOSITORY and everything inside one */
    const tree_ref *ref; /* inside a ref, else NULL */
    char *key;           /* TREE_DIR/TREE_FILE: the path inside the ref,
                            relative to its prefix: "" at the ref root */
    bool ref_root;
    tree_control control; /* TREE_CONTROL_FILE/DIR */
    fs_entry entry; /* TREE_FILE, and TREE_DIR below the ref root */
    bool stat_only; /* from tree_resolve_stat: entry holds what stat needs */
} tree_node;

typedef struct tree_config {
    lakefs_client *client;
    metacache *meta;
    logger *log;
    const lakefuse_uri *uri;      /* copied */
    const mount_target *target;   /* the URI's, resolved at mount time */
    int64_t attr_timeout_ms;      /* listings of branches, repositories and
                                     ref lists; 0: one request only */
    uint64_t max_dir_entries;     /* entries one listing may hold (a
                                     directory, the repositories, one
                                     repository's branches); more is an
                                     error (EIO, logged). 0: the default */
} tree_config;

/* The default cap on entries per directory listing. */
#define TREE_MAX_DIR_ENTRIES 1000000u

/* A directory's own listing holds its marker object ("dir/") as an entry
 * of this name, never listed (tree_list skips it): the directory's mode,
 * owner and mtime as lakectl records them on the marker. */
#define TREE_MARKER_NAME "."

typedef struct tree tree;

/* NULL with *err set (-ENOMEM, -EINVAL). */
tree *tree_new(const tree_config *cfg, int *err);
void tree_free(tree *t);
tree_mode tree_get_mode(const tree *t);
/* true when no path of the mount can change (one fixed ref). */
bool tree_is_fixed(const tree *t);

/*
 * Files a branch directory holds that lakeFS may not list yet: those being
 * written in this mount. The source calls add for each file directly in
 * directory dir_prefix (an object key prefix: "" or "a/b/") of (repo,
 * branch), name relative to it, mode 0 for the default; it returns add's
 * first non-zero value, else 0. add never calls back into the source.
 */
typedef int (*tree_pending_add_fn)(void *add_ctx, const fs_entry *file);
typedef int (*tree_pending_fn)(void *ctx, const char *repo,
                               const char *branch, const char *dir_prefix,
                               tree_pending_add_fn add, void *add_ctx);
/* Set once, before the tree serves lookups: every listing of a branch
 * directory fetched from lakeFS then also shows its pending files, with
 * their sizes and times (listing_merge_files). */
void tree_set_pending_files(tree *t, tree_pending_fn fn, void *ctx);

/* -o nodir_markers: directory dir (relative to ref's prefix, not "") of
 * a branch lives in this mount's memory: every listing of its parent
 * shows it (a directory of mode 0755) while lakeFS lists nothing there,
 * until tree_drop_local_dirs. mkdir's directories, and those this mount
 * emptied, for the life of the tree. 0 or -ENOMEM. */
int tree_keep_local_dir(tree *t, const tree_ref *ref, const char *dir);
/* rmdir: dir and the directories kept under it are no more. */
void tree_drop_local_dirs(tree *t, const tree_ref *ref, const char *dir);
/* A rename of directory from to to: the directories kept under from (it
 * included) are kept under to. 0 or -ENOMEM (then some may be lost). */
int tree_move_local_dirs(tree *t, const tree_ref *ref, const char *from,
                         const char *to);

/* This mount wrote the object key (with the ref's prefix) of repo with a
 * setuid, setgid or sticky bit: listings show those bits on it. Objects
 * not noted show them masked (0777), whoever recorded them. Kept for the
 * life of the tree (one string per key). 0 or -ENOMEM. */
int tree_note_special_mode(tree *t, const char *repo, const char *key);
/* Masks entry e of rel_key (relative to ref's root) as listings are: its
 * setuid, setgid and sticky bits move to e->unshown_mode unless this mount
 * wrote them (for entries cached from an upload's or a change's answer). */
void tree_mask_entry(tree *t, const tree_ref *ref, const char *rel_key,
                     fs_entry *e);
/* Whether key of repo is noted (tree_note_special_mode). */
bool tree_special_mode_noted(tree *t, const char *repo, const char *key);
/* Takes key's note back (a rename that noted its destination failed). */
void tree_forget_special_mode(tree *t, const char *repo, const char *key);
/* A rename moved old_key to new_key: the bits this mount showed there go
 * along (a directory's rename moves its files one by one). */
void tree_move_special_mode(tree *t, const char *repo, const char *old_key,
                            const char *new_key);

/* Resolves an absolute mount path ("/", "/a/b"). 0, or -ENOENT, -EIO,
 * -ENOMEM, -EACCES... out is zeroed on failure; free it with
 * tree_node_free. */
int tree_resolve(tree *t, const char *path, tree_node *out);
/* The same, but out->entry holds only what stat needs (name, type, size,
 * times, mode, owner, symlink target; no checksum, address, content type
 * or other metadata): copied from the listing cache with no more than
 * that (getattr's path). */
int tree_resolve_stat(tree *t, const char *path, tree_node *out);
void tree_node_free(tree_node *n);

/*
 * Calls fn for each entry of a directory node (TREE_REPOSITORIES,
 * TREE_REPOSITORY, TREE_DIR), sorted by name, without "." and "..": the
 * control directory is never listed. fn must not call back into the tree.
 * Returns 0, fn's non-zero value, or a negative errno.
 */
int tree_list(tree *t, const tree_node *dir,
              int (*fn)(void *ctx, const fs_entry *e), void *ctx);

/* The entries tree_list walks, as one set the caller holds (*out,
 * entryset_release it) and reads at its own pace: a directory handle keeps
 * it so that each readdir resumes where the last stopped. Unlike
 * tree_list it includes the entries tree_list skips: pass each to
 * tree_list_shows. 0 or a negative errno. */
struct entryset;
int tree_snapshot(tree *t, const tree_node *dir, struct entryset **out);
/* false for an entry of dir's snapshot that tree_list does not show. */
bool tree_list_shows(const tree_node *dir, const fs_entry *e);

/* What a TREE_DIR's own listing (fetched when not cached) says of it: its
 * marker's entry (*marker, free with fs_entry_free, when *has_marker;
 * marker may be NULL) and how many subdirectories it lists. 0 or -errno. */
int tree_dir_info(tree *t, const tree_node *dir, fs_entry *marker,
                  bool *has_marker, size_t *subdirs);

/* The marker's entry in a TREE_DIR's own listing (fetched when not
 * cached), with what stat needs: 1 and *marker (fs_entry_free it), 0 when
 * it has none (the ref root never has), or -errno. A lookup, no walk;
 * where listings are not cached (attr_timeout=0), one statObject. */
int tree_dir_marker(tree *t, const tree_node *dir, fs_entry *marker);

/* A directory this mount has just made (mkdir): its listing holds its
 * marker (the object the upload returned; NULL: none, -o nodir_markers)
 * and nothing else, cached as a fetch would have cached it, so that the
 * lookup and stat that follow a mkdir ask lakeFS nothing. generation: from
 * tree_dir_generation, read before the marker was made; the listing is
 * dropped when the directory was written since. 0 or a negative errno. */
uint64_t tree_dir_generation(tree *t, const tree_ref *ref);
int tree_cache_new_dir(tree *t, const tree_ref *ref, const char *dir,
                       const lakefs_object_stats *marker,
                       uint64_t generation);

/* For creating a name: resolves the directory holding path into parent
 * and sets *name (malloc'd) to path's last component. 0 or -errno. */
int tree_resolve_parent(tree *t, const char *path, tree_node *parent,
                        char **name);
/* "dir/name" (or "name" under the ref root) for a name in a TREE_DIR. */
char *tree_child_key(const tree_node *dir, const char *name);

/* The mount path ("/..." ) of rel ("" for the ref root) inside ref. */
char *tree_mount_path(const tree *t, const tree_ref *ref, const char *rel);
/* Forget the cached repository list / a repository's branch list. */
void tree_forget_repositories(tree *t);
void tree_forget_branches(tree *t, const char *repo);

/* The object key of a TREE_FILE/TREE_DIR node: prefix + key. malloc'd. */
char *tree_object_key(const tree_node *n);

/* The commit a ref points to now: the pinned one for fixed refs, a
 * getBranch for branches. 0 or a negative errno; *out malloc'd. */
int tree_ref_head(tree *t, const tree_ref *ref, char **out);

#endif
