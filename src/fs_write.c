/*
 * fs_write.c - the FUSE operations that change a branch: files are staged
 * and uploaded through the writer, names change with server-side copies
 * and deletes (never a re-upload), attributes through user metadata. Each
 * operation updates the listing cache so the mount shows its own writes at
 * once. Fixed refs and -o ro mounts answer EROFS before anything happens.
 */
#include "fs_internal.h"

#include "control.h"
#include "workflow.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_FILE_PERMISSIONS 0644u
#define DELETE_BATCH 1000

static open_file *handle_of(struct fuse_file_info *fi)
{
    return fi ? (open_file *)(uintptr_t)fi->fh : NULL;
}

/* A node for a path that must exist; -EROFS when its ref is not writable. */
static int resolve_writable(lakefuse_fs *fs, const char *path, tree_node *n)
{
    if (!path) { /* unlinked while open: nothing on the server to change */
        memset(n, 0, sizeof(*n));
        return -ESTALE;
    }
    int rc = tree_resolve(fs->tree, path, n);
    if (rc)
        return rc;
    rc = fs_check_writable(fs, n);
    if (rc)
        tree_node_free(n);
    return rc;
}

/* The directory a new name goes in, writable; *key is its rel key. */
static int resolve_new_name(lakefuse_fs *fs, const char *path,
                            tree_node *parent, char **key)
{
    char *name = NULL;
    *key = NULL;
    int rc = tree_resolve_parent(fs->tree, path, parent, &name);
    if (rc)
        return rc;
    if (parent->kind != TREE_DIR)
        rc = parent->kind == TREE_FILE ? -ENOTDIR : -EROFS;
    if (rc == 0)
        rc = fs_check_writable(fs, parent);
    if (rc == 0 && parent->ref_root &&
        strcmp(name, TREE_CONTROL_DIR_NAME) == 0)
        rc = -EPERM; /* the control directory's name */
    if (rc == 0 && !listing_name_is_valid(name))
        rc = -EINVAL;
    if (rc == 0 && !(*key = tree_child_key(parent, name)))
        rc = -ENOMEM;
    free(name);
    if (rc)
        tree_node_free(parent);
    return rc;
}

/* prefix + rel_key: the object key on the server. */
static char *object_key(const tree_ref *ref, const char *rel_key)
{
    char *s = NULL;
    if (asprintf(&s, "%s%s", ref->prefix, rel_key) < 0)
        return NULL;
    return s;
}

static void cache_new_file(lakefuse_fs *fs, const tree_ref *ref,
                           const char *rel_key, uint32_t mode)
{
    const char *slash = strrchr(rel_key, '/');
    fs_entry e = {.name = (char *)(slash ? slash + 1 : rel_key),
                  .mtime = time(NULL),
                  .mode = mode ? mode : DEFAULT_FILE_PERMISSIONS};
    fs_cache_set(fs, ref, rel_key, &e);
}

/* ---- files ---- */

int fs_write_open(lakefuse_fs *fs, const tree_node *n,
                  struct fuse_file_info *fi, open_file *of)
{
    int rc = fs_check_writable(fs, n);
    if (rc)
        return rc;
    char *key = tree_object_key(n);
    if (!key)
        return -ENOMEM;
    bool truncate = (fi->flags & O_TRUNC) != 0;
    reader_file *base = truncate ? NULL : fs_open_object_reader(fs, n);
    if (!truncate && !base) {
        free(key);
        return -ENOMEM;
    }
    rc = writer_open(fs->writer, n->ref->repo, n->ref->api_ref, key, base,
                     n->entry.size, n->entry.mtime, truncate, 0, &of->w);
    free(key);
    if (rc)
        return rc;
    of->writer = true;
    of->ref = n->ref;
    of->append = (fi->flags & O_APPEND) != 0;
    if (truncate) {
        fs_entry e = {0};
        if (fs_entry_copy(&e, &n->entry) == 0) {
            e.size = 0;
            e.mtime = time(NULL);
            fs_cache_set(fs, n->ref, n->key, &e);
        }
        fs_entry_free(&e);
    }
    return 0;
}

int fs_write_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    lakefuse_fs *fs = fs_current();
    tree_node parent;
    char *rel_key;
    int rc = resolve_new_name(fs, path, &parent, &rel_key);
    if (rc)
        return rc;
    open_file *of = calloc(1, sizeof(*of));
    char *key = object_key(parent.ref, rel_key);
    uint32_t perm = mode & 07777u;
    if (perm == DEFAULT_FILE_PERMISSIONS)
        perm = 0; /* nothing to record */
    rc = of && key ? writer_open(fs->writer, parent.ref->repo,
                                 parent.ref->api_ref, key, NULL, 0, 0, true,
                                 perm, &of->w)
                   : -ENOMEM;
    if (rc == 0) {
        of->writer = true;
        of->ref = parent.ref;
        of->append = (fi->flags & O_APPEND) != 0;
        cache_new_file(fs, parent.ref, rel_key, perm);
        fi->fh = (uint64_t)(uintptr_t)of;
    } else {
        free(of);
    }
    free(key);
    free(rel_key);
    tree_node_free(&parent);
    return rc;
}

int fs_write_write(const char *path, const char *buf, size_t size, off_t off,
                   struct fuse_file_info *fi)
{
    (void)path;
    open_file *of = handle_of(fi);
    if (of && of->control) { /* one request per write(2) */
        int rc = control_write(fs_current(), of->control, buf, size);
        return rc ? rc : (int)size;
    }
    if (!of || !of->w || !of->writer)
        return -EBADF;
    ssize_t n = wfile_write(of->w, buf, size, of->append ? -1 : off);
    return (int)n;
}

/* Uploads a changed wfile and puts the new object in the listing cache. */
static int flush_and_cache(lakefuse_fs *fs, wfile *w, const tree_ref *ref)
{
    lakefs_object_stats st;
    memset(&st, 0, sizeof(st));
    int rc = wfile_flush(w, &st);
    if (rc == 1) {
        if (ref && st.path &&
            strncmp(st.path, ref->prefix, strlen(ref->prefix)) == 0)
            fs_cache_set_object(fs, ref, st.path + strlen(ref->prefix), &st);
        lakefs_object_stats_free(&st);
        rc = 0;
    }
    return rc;
}

int fs_write_flush(const char *path, struct fuse_file_info *fi)
{
    open_file *of = handle_of(fi);
    if (!of || !of->w || !of->writer)
        return 0;
    (void)path; /* NULL with nullpath_ok */
    return flush_and_cache(fs_current(), of->w, of->ref);
}

int fs_write_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)datasync;
    return fs_write_flush(path, fi);
}

int fs_write_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    open_file *of = handle_of(fi);
    if (of && of->w)
        return of->writer ? wfile_truncate(of->w, size) : -EBADF;
    lakefuse_fs *fs = fs_current();
    tree_node n;
    if (path && tree_resolve(fs->tree, path, &n) == 0) {
        /* `echo x > .lakefs/commit` truncates first: nothing to do. */
        bool control = n.kind == TREE_CONTROL_FILE &&
                       (control_mode(fs, &n) & 0200);
        tree_node_free(&n);
        if (control)
            return 0;
    }
    int rc = resolve_writable(fs, path, &n);
    if (rc)
        return rc;
    if (n.kind != TREE_FILE) {
        tree_node_free(&n);
        return -EISDIR;
    }
    /* Open, truncate, upload, close: what `truncate -s` expects. */
    struct fuse_file_info tmp = {.flags = size == 0 ? O_TRUNC : O_RDWR};
    open_file handle = {0};
    rc = fs_write_open(fs, &n, &tmp, &handle);
    if (rc == 0) {
        rc = wfile_truncate(handle.w, size);
        if (rc == 0)
            rc = flush_and_cache(fs, handle.w, n.ref);
        wfile_release(handle.w);
    }
    tree_node_free(&n);
    return rc;
}

static int delete_key(lakefuse_fs *fs, const tree_ref *ref, const char *key)
{
    lakefs_error err = {0};
    int rc = lakefs_delete_object(fs->client, ref->repo, ref->api_ref, key,
                                  &err);
    if (rc)
        logger_write(fs->log, LOG_LEVEL_ERROR, "deleting '%s': %s", key,
                     err.message);
    return rc == 0 || rc == -ENOENT ? 0 : -EIO;
}

int fs_write_unlink(const char *path)
{
    lakefuse_fs *fs = fs_current();
    tree_node n;
    int rc = resolve_writable(fs, path, &n);
    if (rc)
        return rc;
    char *key = tree_object_key(&n);
    if (n.kind != TREE_FILE)
        rc = -EISDIR;
    else if (!key)
        rc = -ENOMEM;
    else
        rc = delete_key(fs, n.ref, key);
    if (rc == 0) {
        wfile *w = writer_find(fs->writer, n.ref->repo, n.ref->api_ref, key);
        if (w) {
            wfile_mark_unlinked(w);
            wfile_release(w);
        }
        fs_cache_set(fs, n.ref, n.key, NULL);
    }
    free(key);
    tree_node_free(&n);
    return rc;
}

/* ---- directories ---- */

/* Uploads an empty object (a directory marker, a symlink). */
static int upload_empty(lakefuse_fs *fs, const tree_ref *ref, const char *key,
                        const lakefs_metadata *extra,
                        lakefs_object_stats *out)
{
    int fd = memfd_create("lakefuse-empty", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    upload_attrs attrs = {.mtime = time(NULL), .extra = extra};
    lakefs_error err = {0};
    /* Small: uploadObject is one request where the staging flow is three. */
    int rc = upload_fd(fs->client, NULL, ref->repo, ref->api_ref, key, fd, 0,
                       &attrs, out, &err);
    close(fd);
    if (rc)
        logger_write(fs->log, LOG_LEVEL_ERROR, "creating '%s': %s", key,
                     err.message);
    return rc ? -EIO : 0;
}

/* mkdir where the parent lists refs or repositories: a new branch (from
 * the default branch) or repository. 1 when the parent is not one. */
static int mkdir_namespace(lakefuse_fs *fs, const char *path)
{
    tree_node parent;
    char *name = NULL;
    int rc = tree_resolve_parent(fs->tree, path, &parent, &name);
    if (rc)
        return rc;
    if (parent.kind != TREE_REPOSITORY && parent.kind != TREE_REPOSITORIES)
        rc = 1;
    else if (fs->read_only)
        rc = -EROFS;
    else if (!listing_name_is_valid(name))
        rc = -EINVAL;
    else if (parent.kind == TREE_REPOSITORY)
        rc = workflow_mkdir_branch(fs, parent.repo, name);
    else
        rc = workflow_mkdir_repository(fs, name);
    free(name);
    tree_node_free(&parent);
    return rc;
}

int fs_write_mkdir(const char *path, mode_t mode)
{
    (void)mode; /* directories are 0755: lakeFS has no directory objects */
    lakefuse_fs *fs = fs_current();
    int rc = mkdir_namespace(fs, path);
    if (rc <= 0)
        return rc;
    tree_node parent;
    char *rel_key;
    rc = resolve_new_name(fs, path, &parent, &rel_key);
    if (rc)
        return rc;
    char *marker = NULL;
    if (asprintf(&marker, "%s%s/", parent.ref->prefix, rel_key) < 0)
        rc = -ENOMEM;
    if (rc == 0 && fs->dir_markers)
        rc = upload_empty(fs, parent.ref, marker, NULL, NULL);
    if (rc == 0) {
        const char *slash = strrchr(rel_key, '/');
        fs_entry e = {.name = (char *)(slash ? slash + 1 : rel_key),
                      .is_dir = true, .mode = LISTING_DEFAULT_DIR_MODE,
                      .mtime = time(NULL)};
        fs_cache_set(fs, parent.ref, rel_key, &e);
    }
    free(marker);
    free(rel_key);
    tree_node_free(&parent);
    return rc;
}

static int count_entry(void *ctx, const fs_entry *e)
{
    (void)e;
    ++*(size_t *)ctx;
    return 1; /* one is enough */
}

int fs_write_rmdir(const char *path)
{
    lakefuse_fs *fs = fs_current();
    tree_node n;
    int rc = resolve_writable(fs, path, &n);
    if (rc)
        return rc;
    size_t entries = 0;
    if (n.kind != TREE_DIR)
        rc = -ENOTDIR;
    else if (n.ref_root)
        rc = -EPERM; /* a branch is not deleted by rmdir */
    else
        rc = tree_list(fs->tree, &n, count_entry, &entries);
    if (rc >= 0 && entries > 0)
        rc = -ENOTEMPTY;
    char *marker = NULL;
    if (rc >= 0 && asprintf(&marker, "%s%s/", n.ref->prefix, n.key) < 0)
        rc = -ENOMEM;
    if (rc >= 0)
        rc = delete_key(fs, n.ref, marker);
    if (rc == 0) {
        fs_cache_set(fs, n.ref, n.key, NULL);
        metacache_invalidate_dir(fs->meta, n.ref->cache_key, n.key);
    }
    free(marker);
    tree_node_free(&n);
    return rc < 0 ? rc : 0;
}

/* ---- rename ---- */

static int copy_key(lakefuse_fs *fs, const tree_ref *ref, const char *from,
                    const char *to, lakefs_object_stats *out)
{
    lakefs_error err = {0};
    int rc = lakefs_copy_object(fs->client, ref->repo, ref->api_ref, from,
                                NULL, to, out, &err);
    if (rc)
        logger_write(fs->log, LOG_LEVEL_ERROR, "copying '%s' to '%s': %s",
                     from, to, err.message);
    return rc == -ENOENT ? rc : rc ? -EIO : 0;
}

static int rename_file(lakefuse_fs *fs, const tree_node *src,
                       const tree_ref *ref, const char *dst_rel)
{
    char *from = tree_object_key(src);
    char *to = object_key(ref, dst_rel);
    int rc = from && to ? 0 : -ENOMEM;
    wfile *w = rc ? NULL
                  : writer_find(fs->writer, ref->repo, ref->api_ref, from);
    lakefs_object_stats st;
    memset(&st, 0, sizeof(st));
    if (rc == 0 && w && wfile_dirty(w)) {
        /* Its newest bytes are staged: they go to the new name on close;
         * the old name's object (an older version, if any) goes away. */
        rc = writer_rename(fs->writer, ref->repo, ref->api_ref, from, to,
                           false);
        if (rc == 0)
            rc = delete_key(fs, ref, from);
        if (rc == 0)
            fs_cache_set(fs, ref, dst_rel, &src->entry);
    } else if (rc == 0) {
        rc = copy_key(fs, ref, from, to, &st);
        if (rc == 0)
            rc = delete_key(fs, ref, from);
        if (rc == 0 && w)
            rc = writer_rename(fs->writer, ref->repo, ref->api_ref, from, to,
                               false);
        if (rc == 0)
            fs_cache_set_object(fs, ref, dst_rel, &st);
    }
    if (rc == 0)
        fs_cache_set(fs, ref, src->key, NULL);
    if (w)
        wfile_release(w);
    lakefs_object_stats_free(&st);
    free(from);
    free(to);
    return rc;
}

/* Every object under prefix (markers included), at most max + 1. */
static int collect_keys(lakefuse_fs *fs, const tree_ref *ref,
                        const char *prefix, uint64_t max, char ***keys,
                        size_t *n)
{
    lakefs_list_params p = {.prefix = prefix, .amount = 1000};
    lakefs_object_iter it;
    int rc = lakefs_object_iter_init(&it, fs->client, ref->repo,
                                     ref->api_ref, &p);
    if (rc)
        return rc;
    const lakefs_object_stats *st;
    lakefs_error err = {0};
    size_t cap = 0;
    while (*n <= max && (rc = lakefs_object_iter_next(&it, &st, &err)) == 1) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = realloc(*keys, cap * sizeof(**keys));
            if (!grown) {
                rc = -ENOMEM;
                break;
            }
            *keys = grown;
        }
        if (!((*keys)[*n] = strdup(st->path))) {
            rc = -ENOMEM;
            break;
        }
        (*n)++;
    }
    lakefs_object_iter_free(&it);
    return rc < 0 ? -EIO : 0;
}

static int delete_keys(lakefuse_fs *fs, const tree_ref *ref, char **keys,
                       size_t n)
{
    for (size_t i = 0; i < n; i += DELETE_BATCH) {
        size_t count = n - i < DELETE_BATCH ? n - i : DELETE_BATCH;
        lakefs_error err = {0};
        int rc = lakefs_delete_objects(fs->client, ref->repo, ref->api_ref,
                                       (const char *const *)keys + i, count,
                                       NULL, &err);
        if (rc) {
            logger_write(fs->log, LOG_LEVEL_ERROR, "deleting objects: %s",
                         err.message);
            return -EIO;
        }
    }
    return 0;
}

/* Object by object on the server, up to max_rename_objects: beyond that
 * EXDEV, so that mv copies instead of lakefuse doing an unbounded job. */
static int rename_dir(lakefuse_fs *fs, const tree_node *src,
                      const tree_ref *ref, const char *dst_rel)
{
    char *from = object_key(ref, src->key);
    char *to = object_key(ref, dst_rel);
    char *from_prefix = NULL;
    char **keys = NULL;
    size_t n = 0;
    int rc = from && to && asprintf(&from_prefix, "%s/", from) >= 0
                 ? collect_keys(fs, ref, from_prefix, fs->max_rename_objects,
                                &keys, &n)
                 : -ENOMEM;
    if (rc == 0 && n > fs->max_rename_objects)
        rc = -EXDEV;
    size_t from_len = strlen(from ? from : "");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char *dst = NULL;
        if (asprintf(&dst, "%s%s", to, keys[i] + from_len) < 0)
            rc = -ENOMEM;
        else
            rc = copy_key(fs, ref, keys[i], dst, NULL);
        free(dst);
    }
    if (rc == 0)
        rc = delete_keys(fs, ref, keys, n);
    if (rc == 0)
        rc = writer_rename(fs->writer, ref->repo, ref->api_ref, from, to,
                           true);
    /* Many listings changed: let them be fetched again. */
    metacache_invalidate_ref(fs->meta, ref->cache_key);
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
    free(from_prefix);
    free(from);
    free(to);
    return rc;
}

int fs_write_rename(const char *from, const char *to, unsigned int flags)
{
    if (flags & RENAME_EXCHANGE)
        return -EINVAL;
    lakefuse_fs *fs = fs_current();
    tree_node src, parent, dst;
    char *dst_rel;
    int rc = resolve_writable(fs, from, &src);
    if (rc)
        return rc;
    if (src.kind != TREE_FILE && (src.kind != TREE_DIR || src.ref_root)) {
        tree_node_free(&src);
        return -EPERM; /* branches are not renamed through the filesystem */
    }
    rc = resolve_new_name(fs, to, &parent, &dst_rel);
    if (rc) {
        tree_node_free(&src);
        return rc == -EPERM ? -EPERM : rc;
    }
    if (parent.ref != src.ref)
        rc = -EXDEV; /* another ref: mv copies */
    int exists = rc ? 0 : tree_resolve(fs->tree, to, &dst) == 0;
    if (rc == 0 && exists && (flags & RENAME_NOREPLACE))
        rc = -EEXIST;
    else if (rc == 0 && exists && dst.kind == TREE_DIR && src.kind == TREE_FILE)
        rc = -EISDIR;
    else if (rc == 0 && exists && dst.kind == TREE_FILE && src.kind == TREE_DIR)
        rc = -ENOTDIR;
    if (exists)
        tree_node_free(&dst);
    if (rc == 0)
        rc = src.kind == TREE_FILE ? rename_file(fs, &src, src.ref, dst_rel)
                                   : rename_dir(fs, &src, src.ref, dst_rel);
    free(dst_rel);
    tree_node_free(&parent);
    tree_node_free(&src);
    return rc;
}

/* ---- attributes ---- */

/* Replaces the user metadata of a closed object, keeping its other keys:
 * updateObjectUserMetadata, never a re-upload. */
static int update_attrs(lakefuse_fs *fs, const tree_node *n,
                        const upload_attrs *attrs)
{
    lakefs_metadata md;
    int rc = upload_build_metadata(attrs, &md);
    char *key = tree_object_key(n);
    lakefs_error err = {0};
    if (rc == 0 && key)
        rc = lakefs_update_object_user_metadata(
            fs->client, n->ref->repo, n->ref->api_ref, key, &md, &err);
    else if (rc == 0)
        rc = -ENOMEM;
    if (rc && rc != -ENOMEM)
        logger_write(fs->log, LOG_LEVEL_ERROR, "updating metadata of '%s': %s",
                     key ? key : "?", err.message);
    free(key);
    lakefs_metadata_free(&md);
    return rc == 0 || rc == -ENOMEM ? rc : -EIO;
}

/* What the object records now, as the starting point of a change. */
static void current_attrs(const lakefuse_fs *fs, const fs_entry *e,
                          upload_attrs *a)
{
    a->mtime = e->mtime;
    a->mode = e->mode;
    a->uid = e->has_owner ? e->uid : fs->uid;
    a->gid = e->has_owner ? e->gid : fs->gid;
    a->extra = &e->metadata;
}

/* Applies one attribute change to a file: to its staged copy when one is
 * open with unsent changes, else to the object's metadata. */
static int change_file_attrs(lakefuse_fs *fs, tree_node *n, int64_t mtime,
                             int64_t mode, uid_t uid, gid_t gid)
{
    char *key = tree_object_key(n);
    if (!key)
        return -ENOMEM;
    wfile *w = writer_find(fs->writer, n->ref->repo, n->ref->api_ref, key);
    free(key);
    int rc = 0;
    if (w && wfile_dirty(w)) {
        if (mode >= 0)
            rc = wfile_set_mode(w, (uint32_t)mode);
        if (rc == 0 && mtime >= 0)
            rc = wfile_set_mtime(w, mtime);
    } else {
        upload_attrs a;
        current_attrs(fs, &n->entry, &a);
        if (mode >= 0)
            a.mode = (uint32_t)mode & 07777u;
        if (mtime >= 0)
            a.mtime = mtime;
        if (uid != (uid_t)-1)
            a.uid = uid;
        if (gid != (gid_t)-1)
            a.gid = gid;
        rc = update_attrs(fs, n, &a);
        if (rc == 0) {
            n->entry.mode = a.mode;
            n->entry.mtime = a.mtime;
            n->entry.uid = a.uid;
            n->entry.gid = a.gid;
            n->entry.has_owner = true;
            fs_cache_set(fs, n->ref, n->key, &n->entry);
        }
    }
    if (w)
        wfile_release(w);
    return rc;
}

int fs_write_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    (void)fi;
    lakefuse_fs *fs = fs_current();
    tree_node n;
    int rc = resolve_writable(fs, path, &n);
    if (rc)
        return rc;
    /* lakeFS has no directory objects: directories stay 0755. */
    if (n.kind == TREE_FILE && !n.entry.is_symlink)
        rc = change_file_attrs(fs, &n, -1, mode & 07777u, (uid_t)-1,
                               (gid_t)-1);
    tree_node_free(&n);
    return rc;
}

int fs_write_chown(const char *path, uid_t uid, gid_t gid,
                   struct fuse_file_info *fi)
{
    (void)fi;
    lakefuse_fs *fs = fs_current();
    tree_node n;
    int rc = resolve_writable(fs, path, &n);
    if (rc)
        return rc;
    uid_t cur_uid = n.entry.has_owner ? n.entry.uid : fs->uid;
    gid_t cur_gid = n.entry.has_owner ? n.entry.gid : fs->gid;
    bool same = (uid == (uid_t)-1 || uid == cur_uid) &&
                (gid == (gid_t)-1 || gid == cur_gid);
    if (!same && fuse_get_context()->uid != 0)
        rc = -EPERM; /* only root gives files away, as on any filesystem */
    else if (!same && n.kind == TREE_FILE)
        rc = change_file_attrs(fs, &n, -1, -1, uid, gid);
    tree_node_free(&n);
    return rc;
}

int fs_write_utimens(const char *path, const struct timespec tv[2],
                     struct fuse_file_info *fi)
{
    (void)fi;
    lakefuse_fs *fs = fs_current();
    tree_node n;
    int rc = resolve_writable(fs, path, &n);
    if (rc)
        return rc;
    int64_t mtime = -1;
    if (!tv || tv[1].tv_nsec == UTIME_NOW)
        mtime = time(NULL);
    else if (tv[1].tv_nsec != UTIME_OMIT)
        mtime = tv[1].tv_sec;
    /* Directory times are not stored (no directory objects). */
    if (n.kind == TREE_FILE && mtime >= 0)
        rc = change_file_attrs(fs, &n, mtime, -1, (uid_t)-1, (gid_t)-1);
    tree_node_free(&n);
    return rc;
}

int fs_write_symlink(const char *target, const char *path)
{
    lakefuse_fs *fs = fs_current();
    tree_node parent;
    char *rel_key;
    int rc = resolve_new_name(fs, path, &parent, &rel_key);
    if (rc)
        return rc;
    lakefs_metadata md = {0};
    lakefs_object_stats st;
    memset(&st, 0, sizeof(st));
    char *key = object_key(parent.ref, rel_key);
    rc = key ? lakefs_metadata_set(&md, LISTING_KEY_SYMLINK_TARGET, target)
             : -ENOMEM;
    if (rc == 0)
        rc = upload_empty(fs, parent.ref, key, &md, &st);
    if (rc == 0)
        fs_cache_set_object(fs, parent.ref, rel_key, &st);
    lakefs_object_stats_free(&st);
    lakefs_metadata_free(&md);
    free(key);
    free(rel_key);
    tree_node_free(&parent);
    return rc;
}

int fs_write_mknod(const char *path, mode_t mode, dev_t dev)
{
    (void)dev;
    if (!S_ISREG(mode)) {
        /* No devices, fifos or sockets in an object store (after EROFS). */
        lakefuse_fs *fs = fs_current();
        tree_node parent;
        char *rel_key;
        int rc = resolve_new_name(fs, path, &parent, &rel_key);
        if (rc == 0) {
            free(rel_key);
            tree_node_free(&parent);
        }
        return rc ? rc : -EPERM;
    }
    struct fuse_file_info fi = {.flags = O_WRONLY};
    int rc = fs_write_create(path, mode, &fi);
    if (rc)
        return rc;
    open_file *of = handle_of(&fi);
    rc = fs_write_flush(path, &fi);
    wfile_release(of->w);
    free(of);
    return rc;
}

int fs_write_link(const char *from, const char *to)
{
    (void)to;
    lakefuse_fs *fs = fs_current();
    tree_node n;
    int rc = resolve_writable(fs, from, &n);
    if (rc == 0)
        tree_node_free(&n);
    return rc ? rc : -EPERM; /* objects have no hard links */
}

#define XATTR_META "user.lakefs.meta."

/* user.lakefs.meta.KEY on a closed file: the object's user metadata with
 * KEY set (value non-NULL) or removed, through updateObjectUserMetadata. */
static int set_meta_xattr(lakefuse_fs *fs, tree_node *n, const char *key,
                          const char *value, size_t size)
{
    if (!*key)
        return -EINVAL;
    lakefs_metadata md = {0};
    int rc = 0;
    bool found = false;
    for (size_t i = 0; rc == 0 && i < n->entry.metadata.count; i++) {
        const lakefs_kv *kv = &n->entry.metadata.items[i];
        if (strcmp(kv->key, key) == 0)
            found = true;
        else
            rc = lakefs_metadata_set(&md, kv->key, kv->value);
    }
    char *copy = value ? strndup(value, size) : NULL;
    if (rc == 0 && value)
        rc = copy ? lakefs_metadata_set(&md, key, copy) : -ENOMEM;
    else if (rc == 0 && !found)
        rc = -ENODATA;
    if (rc == 0) {
        upload_attrs a;
        current_attrs(fs, &n->entry, &a);
        a.extra = &md;
        if (!n->entry.has_owner && a.mode == LISTING_DEFAULT_FILE_MODE)
            a.mode = 0; /* keep not recording what was not recorded */
        rc = update_attrs(fs, n, &a);
    }
    if (rc == 0) {
        lakefs_metadata_free(&n->entry.metadata);
        n->entry.metadata = md;
        memset(&md, 0, sizeof(md));
        fs_cache_set(fs, n->ref, n->key, &n->entry);
    }
    free(copy);
    lakefs_metadata_free(&md);
    return rc;
}

int fs_write_setxattr(const char *path, const char *name, const char *value,
                      size_t size, int flags)
{
    (void)flags;
    lakefuse_fs *fs = fs_current();
    tree_node n;
    int rc = path ? tree_resolve(fs->tree, path, &n) : -ESTALE;
    if (rc)
        return rc;
    bool meta = n.kind == TREE_FILE &&
                strncmp(name, XATTR_META, strlen(XATTR_META)) == 0;
    if (n.kind == TREE_DIR && n.ref_root && value)
        rc = control_xattr_action(fs, &n, name, value, size);
    else
        rc = -ENOTSUP;
    if (rc == -ENOTSUP) /* not an action: EROFS first, then ENOTSUP */
        rc = fs_check_writable(fs, &n);
    if (rc == -ENOTSUP || rc < 0)
        ;
    else if (meta)
        rc = set_meta_xattr(fs, &n, name + strlen(XATTR_META), value, size);
    else if (!(n.kind == TREE_DIR && n.ref_root && value))
        rc = -ENOTSUP;
    tree_node_free(&n);
    return rc;
}

int fs_write_removexattr(const char *path, const char *name)
{
    return fs_write_setxattr(path, name, NULL, 0, 0);
}

int fs_write_fallocate(const char *path, int mode, off_t off, off_t len,
                       struct fuse_file_info *fi)
{
    (void)path;
    (void)mode;
    (void)off;
    (void)len;
    (void)fi;
    return -EOPNOTSUPP;
}
