/*
 * fs_attr.c - attribute changes on a branch: chmod, chown and utimens
 * through user metadata in lakectl's formats (never a re-upload), symlinks
 * as lakectl stores them, user.lakefs.meta.KEY and the workflow xattrs,
 * and the clear errnos for what an object store cannot hold.
 */
#include "fs_internal.h"

#include "control.h"
#include "jsonnul.h"
#include "workflow.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- attributes ---- */

/* An attribute change of n: its ctime (and what utimens set) in memory,
 * where lakectl's formats have no place for them (fs_times.h). */
static void note_change(lakefuse_fs *fs, const tree_node *n,
                        const struct timespec *atime,
                        const struct timespec *mtime)
{
    char *key = tree_object_key(n);
    if (key)
        fs_times_change(fs->times, n->ref->repo, n->ref->api_ref, key, atime,
                        mtime);
    free(key);
}

/* Replaces the user metadata of the object at key, keeping its other
 * keys: updateObjectUserMetadata, never a re-upload. Its outcome is
 * settled by the client: an update applied with every answer lost is a
 * success. Answered EIO instead, the program would see the change (the
 * listing is read again) and a file still open for writing here would
 * undo it with its next upload, which carries the attributes it knew
 * (soak seed 109901: a removed key came back). */
static int update_key_attrs(lakefuse_fs *fs, const tree_ref *ref,
                            const char *key_in, const upload_attrs *attrs)
{
    lakefs_metadata md;
    int rc = upload_build_metadata(attrs, &md);
    char *key = key_in ? strdup(key_in) : NULL;
    lakefs_error err = {0};
    if (rc == 0 && key)
        rc = lakefs_update_object_user_metadata_settled(
            fs->client, ref->repo, ref->api_ref, key, &md, &err);
    else if (rc == 0)
        rc = -ENOMEM;
    if (rc && rc != -ENOMEM)
        logger_write(fs->log, LOG_LEVEL_ERROR, "updating metadata of '%s': %s",
                     key ? key : "?", err.message);
    free(key);
    lakefs_metadata_free(&md);
    return rc == 0 || rc == -ENOMEM ? rc : rc == -ENOENT ? rc : -EIO;
}

static int update_attrs(lakefuse_fs *fs, const tree_node *n,
                        const upload_attrs *attrs)
{
    char *key = tree_object_key(n);
    int rc = key ? update_key_attrs(fs, n->ref, key, attrs) : -ENOMEM;
    free(key);
    return rc == -ENOENT ? -EIO : rc;
}

/* The changes asked for over a (mtime WFILE_MTIME_KEEP, mode < 0, uid and
 * gid (uid_t)-1: unchanged); a new mode gets the type bits type. */
static void apply_changes(upload_attrs *a, uint32_t type, int64_t mtime,
                          int64_t mode, uid_t uid, gid_t gid)
{
    if (mode >= 0)
        a->mode = type | ((uint32_t)mode & 07777u);
    if (mtime != WFILE_MTIME_KEEP)
        a->mtime = mtime;
    if (uid != (uid_t)-1)
        a->uid = uid;
    if (gid != (gid_t)-1)
        a->gid = gid;
}

/* A change of n's attributes failed, and lakeFS may hold it or not: what
 * this mount and the kernel cached of n is forgotten, so that the next
 * stat shows what lakeFS holds (the kernel would show the attributes
 * from before the change for attr_timeout, and then lakeFS's). A
 * directory's own listing, which holds its marker, change_dir_attrs_once
 * has dropped already. */
static void forget_attrs(lakefuse_fs *fs, const tree_node *n)
{
    fs_forget_parent(fs, n->ref, n->key);
    workflow_forget_kernel(fs, n->ref, n->key);
}

/* A change of one user metadata key: value NULL removes it. */
typedef struct meta_change {
    const char *key;
    const char *value;
} meta_change;

/* -o async_close: the directory's marker uploaded again (made, when it
 * has none) through the writer's queue with the attributes a, as mkdir's
 * is: the change answers once it is journaled, the writer lists the
 * marker with them until it lands, and a dead mount's goes with the next
 * one's recovery. cur: the marker as listed (its user metadata kept, its
 * checksum the base), or NULL. 0, 1 when the wfile had been uploaded
 * before the change reached it (a change of it landing meanwhile): the
 * caller changes the object itself, or -errno. */
static int queue_dir_attrs(lakefuse_fs *fs, const tree_node *n,
                           const char *marker, const fs_entry *cur,
                           const upload_attrs *a, const meta_change *mc)
{
    writer_base base = {.entry = cur};
    wfile *w = NULL;
    int rc = writer_open(fs->writer, n->ref->repo, n->ref->api_ref, marker,
                         cur ? &base : NULL, true, a->mode, n->ref, &w);
    if (rc == 0) {
        int set = wfile_set_attrs_if_unsent(w, a->mtime, a->mode & 07777u,
                                            a->uid, a->gid);
        if (set == 1 && mc)
            set = wfile_set_meta_if_unsent(w, mc->key, mc->value);
        rc = set < 0 ? set : set == 0 ? 1 : 0;
    }
    if (rc == 0) {
        int q = wfile_queue(w);
        rc = q < 0 ? q : 0;
    }
    if (w)
        wfile_release(w);
    return rc;
}

/* One try of change_dir_attrs (below): -EEXIST when the marker it made
 * found one another client made. */
static int change_dir_attrs_once(lakefuse_fs *fs, const tree_node *n,
                                 int64_t mtime, int64_t mode, uid_t uid,
                                 gid_t gid, const meta_change *mc)
{
    fs_entry cur;
    bool has_marker;
    size_t subdirs;
    int rc = tree_dir_info(fs->tree, n, &cur, &has_marker, &subdirs);
    if (rc)
        return rc;
    upload_attrs a = {
        .mtime = has_marker && cur.mtime != 0 ? cur.mtime : time(NULL),
        .mode = S_IFDIR | (has_marker ? cur.mode & 07777u
                                      : LISTING_DEFAULT_DIR_MODE),
        .uid = has_marker && cur.has_owner ? cur.uid : fs->uid,
        .gid = has_marker && cur.has_owner ? cur.gid : fs->gid,
        .extra = has_marker ? &cur.metadata : NULL};
    apply_changes(&a, S_IFDIR, mtime, mode, uid, gid);
    char *marker = fs_dir_key(n->ref, n->key); /* n is not a ref root */
    if (!marker)
        rc = -ENOMEM;
    /* A marker not uploaded yet (mkdir with -o async_close) takes the
     * change with it, as a file not uploaded yet does. */
    wfile *w = rc == 0 ? writer_find(fs->writer, n->ref->repo,
                                     n->ref->api_ref, marker)
                       : NULL;
    int unsent = !w ? 0
                 : mc ? wfile_set_meta_if_unsent(w, mc->key, mc->value)
                      : wfile_set_attrs_if_unsent(w, mtime, mode, uid, gid);
    /* Its upload may be in flight with the attributes before the change:
     * queued again, it is uploaded again after that one (a marker has no
     * program holding it open whose close would queue it). */
    if (unsent == 1 && writer_async(fs->writer)) {
        int q = wfile_queue(w);
        if (q < 0)
            unsent = q;
    }
    if (w)
        wfile_release(w);
    if (unsent < 0)
        rc = unsent;
    /* The marker's metadata with the key changed, when it was not staged:
     * a removal of a key it lacks changes nothing (-ENODATA). */
    static const lakefs_metadata no_metadata;
    lakefs_metadata md = {0};
    if (rc == 0 && unsent == 0 && mc) {
        rc = fs_metadata_with(has_marker ? &cur.metadata : &no_metadata,
                              mc->key, mc->value, &md);
        a.extra = &md;
    }
    /* A listed marker without its checksum (this mount's own entry for
     * it, from a synchronous change) would be no base to recover on; one
     * that holds bytes would be replaced by an empty marker: both are
     * changed in place (updateObjectUserMetadata keeps the bytes). */
    if (rc == 0 && unsent == 0 && writer_async(fs->writer) &&
        (!has_marker || (cur.checksum && !cur.marker_has_bytes))) {
        rc = queue_dir_attrs(fs, n, marker, has_marker ? &cur : NULL, &a,
                             mc);
        if (rc == 0)
            unsent = 1;
        else if (rc == 1) /* landed meanwhile: as without the option */
            rc = 0;
    }
    if (rc == 0 && unsent == 0 && has_marker)
        rc = update_key_attrs(fs, n->ref, marker, &a);
    if (rc == 0 && unsent == 0 && !has_marker) /* or removed since listed */
        rc = -ENOENT;
    if (rc == -ENOENT) {
        a.if_absent = true; /* never over a marker made since the listing */
        rc = fs_upload_empty_attrs(fs, n->ref, marker, &a, NULL);
    }
    /* The directory's own listing shows the marker from now on, with the
     * user metadata it was given and whether it holds bytes: the next
     * change starts from that entry (without its keys it would send them
     * removed), and rmdir deletes no marker that holds bytes. */
    fs_entry e = {.name = TREE_MARKER_NAME, .is_dir = true,
                  .mtime = a.mtime, .mode = a.mode & 07777u,
                  .uid = a.uid, .gid = a.gid, .has_owner = true,
                  .marker_has_bytes = has_marker && cur.marker_has_bytes};
    char *self = NULL;
    if (rc == 0 && upload_build_metadata(&a, &e.metadata) == 0 &&
        asprintf(&self, "%s%s%s", n->key, n->key[0] ? "/" : "",
                 TREE_MARKER_NAME) >= 0)
        fs_cache_set(fs, n->ref, self, &e);
    else if (rc != -ENODATA) /* that one changed nothing */
        metacache_invalidate_dir(fs->meta, n->ref->cache_key, n->key);
    lakefs_metadata_free(&e.metadata);
    lakefs_metadata_free(&md);
    free(self);
    free(marker);
    if (has_marker)
        fs_entry_free(&cur);
    return rc;
}

/* chmod, chown or utimens of a directory, or (mc) a change of one user
 * metadata key: on its marker "dir/" (made when it has none), in
 * lakectl's keys, so the directory keeps them. A ref root has no marker,
 * nor has a -o nodir_markers mount: nothing is stored there (the caller
 * refuses a metadata change). Removing a key the marker lacks: -ENODATA. */
static int change_dir_attrs(lakefuse_fs *fs, const tree_node *n,
                            int64_t mtime, int64_t mode, uid_t uid,
                            gid_t gid, const meta_change *mc)
{
    if (n->ref_root || !fs->dir_markers)
        return 0;
    int rc = change_dir_attrs_once(fs, n, mtime, mode, uid, gid, mc);
    /* Another client made the marker since the listing said none: the
     * change goes onto that one (its bytes and metadata kept), listed
     * again. */
    if (rc == -EEXIST)
        rc = change_dir_attrs_once(fs, n, mtime, mode, uid, gid, mc);
    if (rc == -EIO || rc == -EEXIST)
        forget_attrs(fs, n);
    return rc == -EEXIST ? -EIO : rc;
}

typedef struct only_entry {
    const char *name; /* the name about to go */
    size_t count;     /* entries seen, up to 2 */
    bool is_name;     /* the first one is it */
} only_entry;

static int note_only_entry(void *ctx, const fs_entry *e)
{
    only_entry *o = ctx;
    if (o->count++ == 0)
        o->is_name = strcmp(e->name, o->name) == 0;
    return o->count >= 2; /* two: something stays */
}

int fs_keep_parent_dir(lakefuse_fs *fs, const tree_ref *ref,
                       const char *rel_key)
{
    const char *slash = strrchr(rel_key, '/');
    if (!slash || !ref->is_branch)
        return 0; /* in the ref root */
    tree_node n = {.kind = TREE_DIR, .ref = ref,
                   .key = strndup(rel_key, (size_t)(slash - rel_key))};
    only_entry o = {.name = slash + 1};
    fs_entry marker;
    bool has_marker = true;
    size_t subdirs;
    int rc = n.key ? tree_list(fs->tree, &n, note_only_entry, &o) : -ENOMEM;
    bool last = rc >= 0 && o.count == 1 && o.is_name;
    if (last) {
        rc = tree_dir_info(fs->tree, &n, &marker, &has_marker, &subdirs);
        if (rc == 0 && has_marker)
            fs_entry_free(&marker);
    }
    if (last && rc == 0 && !has_marker)
        rc = fs->dir_markers
                 ? change_dir_attrs(fs, &n, WFILE_MTIME_KEEP, -1, (uid_t)-1,
                                    (gid_t)-1, NULL)
                 : tree_keep_local_dir(fs->tree, ref, n.key);
    if (rc < 0 && n.key)
        logger_write(fs->log, LOG_LEVEL_ERROR,
                     "keeping the directory '%s%s' before its last name "
                     "goes: %s; the name is left as it is",
                     ref->prefix, n.key, strerror(-rc));
    free(n.key);
    return rc < 0 ? rc : 0;
}

/* What the object records now, as the starting point of a change. A
 * symlink keeps lakectl's format: client-mtime and symlink-target only
 * (pkg/local/sync.go records no posix-permissions for one), unless an
 * owner was given to it here, recorded with its lstat mode S_IFLNK|0777. */
static void current_attrs(const lakefuse_fs *fs, const fs_entry *e,
                          upload_attrs *a)
{
    a->mtime = e->mtime;
    if (e->is_symlink)
        a->mode = e->has_owner ? (S_IFLNK | 0777u) : 0;
    else /* with the bits the object records but this mount hides */
        a->mode = fs_entry_type(e) | ((e->mode | e->unshown_mode) & 07777u);
    a->uid = e->has_owner ? e->uid : fs->uid;
    a->gid = e->has_owner ? e->gid : fs->gid;
    a->extra = &e->metadata;
}

wfile *fs_node_wfile(lakefuse_fs *fs, const tree_node *n)
{
    char *key = tree_object_key(n);
    wfile *w = key ? writer_find(fs->writer, n->ref->repo, n->ref->api_ref,
                                 key)
                   : NULL;
    free(key);
    return w;
}

/* The user metadata the staged copy at key (a file's, a directory's
 * marker) will upload while its newest bytes are not on lakeFS: 0 and
 * *out, -ENOENT when none is staged, or -ENOMEM. */
static int staged_metadata(lakefuse_fs *fs, const tree_ref *ref,
                           const char *key, lakefs_metadata *out)
{
    memset(out, 0, sizeof(*out));
    wfile *w = writer_find(fs->writer, ref->repo, ref->api_ref, key);
    int rc = w && wfile_dirty(w) ? wfile_metadata(w, out) : -ENOENT;
    if (w)
        wfile_release(w);
    return rc;
}

bool fs_overlay_staged_metadata(lakefuse_fs *fs, tree_node *n)
{
    if (n->kind != TREE_FILE || !n->ref || !n->ref->is_branch ||
        writer_idle(fs->writer))
        return false;
    char *key = tree_object_key(n);
    lakefs_metadata md = {0};
    int rc = key ? staged_metadata(fs, n->ref, key, &md) : -ENOMEM;
    free(key);
    /* The ::lakefs:: keys are the upload's own: the listing's stand. */
    for (size_t i = 0; rc == 0 && i < n->entry.metadata.count; i++) {
        const lakefs_kv *kv = &n->entry.metadata.items[i];
        if (strncmp(kv->key, "::lakefs::", 10) == 0)
            rc = lakefs_metadata_set(&md, kv->key, kv->value);
    }
    if (rc == 0) {
        lakefs_metadata_free(&n->entry.metadata);
        n->entry.metadata = md;
    } else {
        lakefs_metadata_free(&md);
    }
    return rc == 0;
}

int fs_dir_metadata(lakefuse_fs *fs, const tree_node *n,
                    lakefs_metadata *out)
{
    memset(out, 0, sizeof(*out));
    if (n->kind != TREE_DIR || n->ref_root || !fs->dir_markers)
        return 0;
    int rc = -ENOENT;
    if (!writer_idle(fs->writer)) {
        char *marker = fs_dir_key(n->ref, n->key);
        rc = marker ? staged_metadata(fs, n->ref, marker, out) : -ENOMEM;
        free(marker);
    }
    if (rc != -ENOENT)
        return rc;
    fs_entry cur;
    bool has_marker;
    size_t subdirs;
    rc = tree_dir_info(fs->tree, n, &cur, &has_marker, &subdirs);
    if (rc == 0 && has_marker) {
        *out = cur.metadata; /* taken over */
        memset(&cur.metadata, 0, sizeof(cur.metadata));
        fs_entry_free(&cur);
    }
    return rc;
}

/* Remembers an attribute change on a file's wfile, so that its next
 * upload records it too. */
static int wfile_note_attrs(wfile *w, int64_t mtime, int64_t mode, uid_t uid,
                            gid_t gid)
{
    int rc = 0;
    if (mode >= 0)
        rc = wfile_set_mode(w, (uint32_t)mode);
    if (rc == 0 && mtime != WFILE_MTIME_KEEP)
        rc = wfile_set_mtime(w, mtime);
    if (rc == 0 && (uid != (uid_t)-1 || gid != (gid_t)-1))
        rc = wfile_set_owner(w, uid, gid);
    return rc;
}

/* A file whose upload may have landed after n was resolved (the writer
 * held it when the change was decided, or a landing of it was counted
 * since): n's entry (the size before an O_TRUNC rewrite, the older object
 * and its attributes) would go to lakeFS and back to the listing with the
 * change. The landing reached the listing before the file turned clean
 * (writer.h, Landings): n is resolved again from it; *since is taken
 * anew before that. */
static int refresh_node(lakefuse_fs *fs, const char *path, tree_node *n,
                        uint64_t *since)
{
    tree_node fresh;
    *since = writer_landed(fs->writer);
    int rc = path ? tree_resolve(fs->tree, path, &fresh) : -ESTALE;
    if (rc)
        return rc;
    if (fresh.kind != n->kind) {
        tree_node_free(&fresh);
        return -ENOENT; /* replaced meanwhile */
    }
    tree_node_free(n);
    *n = fresh;
    return 0;
}

/* Resolves n again when the change goes to the object (not staged) and
 * its entry may predate a landing: the writer held the file (w), or a
 * landing of it was counted since. */
static int refresh_if_landed(lakefuse_fs *fs, const char *path, tree_node *n,
                             const wfile *w, uint64_t *since)
{
    if (!w && !fs_landed_on(fs, n, *since))
        return 0;
    return refresh_node(fs, path, n, since);
}

/* n's changed entry back into the listing. An upload of the file that
 * landed after since, or is landing now, may have put a newer entry there
 * first, which n's (older bytes' size and checksum) just replaced: the
 * directory is listed again instead. */
static void cache_changed_entry(lakefuse_fs *fs, const tree_node *n,
                                uint64_t since)
{
    fs_cache_set(fs, n->ref, n->key, &n->entry);
    if (fs_landed_on(fs, n, since) || writer_landing(fs->writer))
        fs_forget_parent(fs, n->ref, n->key);
}

/* Applies one attribute change to a file: to its staged copy alone when
 * the server lacks its newest bytes (the upload carries it), else to the
 * object's metadata (and to an open staged copy, for its next upload). */
static int change_file_attrs(lakefuse_fs *fs, const char *path, tree_node *n,
                             uint64_t since, int64_t mtime, int64_t mode,
                             uid_t uid, gid_t gid)
{
    wfile *w = fs_node_wfile(fs, n);
    /* Decided with the upload's settling excluded: a check, then a change
     * could land on a file whose upload ended meanwhile, which nothing
     * uploads again, and the object would keep the old attributes. */
    int rc = w ? wfile_set_attrs_if_unsent(w, mtime, mode, uid, gid) : 0;
    if (rc == 0)
        rc = refresh_if_landed(fs, path, n, w, &since);
    if (rc == 1) {
        rc = 0;
    } else if (rc == 0) {
        upload_attrs a;
        current_attrs(fs, &n->entry, &a);
        apply_changes(&a, fs_entry_type(&n->entry), mtime, mode, uid, gid);
        if (n->entry.is_symlink && (uid != (uid_t)-1 || gid != (gid_t)-1))
            a.mode = S_IFLNK | 0777u; /* chown -h: the owner needs a place */
        rc = update_attrs(fs, n, &a);
        if (rc == -EIO) /* it may have landed */
            forget_attrs(fs, n);
        if (rc == 0 && w)
            rc = wfile_note_attrs(w, mtime, mode, uid, gid);
        if (rc == 0) {
            if (mode >= 0) /* a chmod names every bit */
                n->entry.unshown_mode = 0;
            n->entry.mode = a.mode & 07777u & ~n->entry.unshown_mode;
            n->entry.mtime = a.mtime;
            n->entry.uid = a.uid;
            n->entry.gid = a.gid;
            n->entry.has_owner = a.mode != 0; /* an unowned symlink: none */
            cache_changed_entry(fs, n, since);
        }
    }
    if (w)
        wfile_release(w);
    return rc;
}

/* One attribute change of a file or a directory (see above). */
static int change_attrs(lakefuse_fs *fs, const char *path, tree_node *n,
                        uint64_t since, int64_t mtime, int64_t mode,
                        uid_t uid, gid_t gid)
{
    if (n->kind == TREE_FILE)
        return change_file_attrs(fs, path, n, since, mtime, mode, uid, gid);
    if (n->kind == TREE_DIR)
        return change_dir_attrs(fs, n, mtime, mode, uid, gid, NULL);
    return 0;
}

int fs_write_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    (void)fi;
    lakefuse_fs *fs = fs_current();
    if (fs_hidden_name(path)) { /* fchmod of a file unlinked while open */
        int rc = fs_hidden_setattr(fs, path, mode & 07777u, (uid_t)-1,
                                   (gid_t)-1, NULL, NULL);
        if (rc != -ENOENT) /* else an object of that name */
            return rc;
    }
    tree_node n;
    uint64_t since = writer_landed(fs->writer); /* before n's listing */
    int rc = fs_resolve_writable(fs, path, &n);
    if (rc)
        return rc;
    char *key = (mode & 07000u) && n.kind == TREE_FILE ? tree_object_key(&n)
                                                         : NULL;
    if (key) /* before the change: a listing fetched meanwhile shows it */
        rc = tree_note_special_mode(fs->tree, n.ref->repo, key);
    free(key);
    if (rc == 0 && !n.entry.is_symlink)
        rc = change_attrs(fs, path, &n, since, WFILE_MTIME_KEEP,
                          mode & 07777u, (uid_t)-1, (gid_t)-1);
    if (rc == 0)
        note_change(fs, &n, NULL, NULL);
    tree_node_free(&n);
    return rc;
}

/* POSIX chown(2): a process that owns the file may set its group to its
 * own group or one of its supplementary groups, keeping the owner. */
static bool owner_may_chgrp(uid_t cur_uid, uid_t uid, gid_t gid)
{
    const struct fuse_context *ctx = fuse_get_context();
    if (ctx->uid != cur_uid || (uid != (uid_t)-1 && uid != cur_uid))
        return false;
    if (gid == (gid_t)-1 || gid == ctx->gid)
        return true;
    gid_t groups[64];
    int n = fuse_getgroups(64, groups);
    for (int i = 0; i < n && i < 64; i++)
        if (groups[i] == gid)
            return true;
    return false;
}

/* chown(uid, gid) of a file owned by cur: 1 when it changes nothing, 0
 * when the caller may make the change, -EPERM when only root may (as on
 * any file system). */
static int chown_check(const struct stat *cur, uid_t uid, gid_t gid)
{
    if ((uid == (uid_t)-1 || uid == cur->st_uid) &&
        (gid == (gid_t)-1 || gid == cur->st_gid))
        return 1;
    if (fuse_get_context()->uid != 0 &&
        !owner_may_chgrp(cur->st_uid, uid, gid))
        return -EPERM;
    return 0;
}

/* fchown of a file unlinked while open: the same rule, on what this
 * mount keeps of it. */
static int chown_hidden(lakefuse_fs *fs, const char *path, uid_t uid,
                        gid_t gid)
{
    struct stat st;
    int rc = fs_hidden_getattr(fs, path, &st);
    if (rc == 0)
        rc = chown_check(&st, uid, gid);
    if (rc < 0)
        return rc;
    return fs_hidden_setattr(fs, path, -1, uid, gid, NULL, NULL);
}

int fs_write_chown(const char *path, uid_t uid, gid_t gid,
                   struct fuse_file_info *fi)
{
    (void)fi;
    lakefuse_fs *fs = fs_current();
    if (fs_hidden_name(path)) {
        int rc = chown_hidden(fs, path, uid, gid);
        if (rc != -ENOENT) /* else an object of that name */
            return rc;
    }
    tree_node n;
    uint64_t since = writer_landed(fs->writer); /* before n's listing */
    int rc = fs_resolve_writable(fs, path, &n);
    if (rc)
        return rc;
    struct stat cur = {.st_uid = n.entry.has_owner ? n.entry.uid : fs->uid,
                       .st_gid = n.entry.has_owner ? n.entry.gid : fs->gid};
    fs_entry marker; /* a directory's owner is its marker's */
    bool has_marker = false;
    size_t subdirs;
    if (n.kind == TREE_DIR &&
        tree_dir_info(fs->tree, &n, &marker, &has_marker, &subdirs) == 0 &&
        has_marker) {
        if (marker.has_owner) {
            cur.st_uid = marker.uid;
            cur.st_gid = marker.gid;
        }
        fs_entry_free(&marker);
    }
    wfile *w = n.kind == TREE_FILE ? fs_node_wfile(fs, &n) : NULL;
    if (w) { /* a chown its next upload carries is the owner now */
        fs_stat_wfile_owner(w, &cur);
        wfile_release(w);
    }
    rc = chown_check(&cur, uid, gid);
    if (rc == 0)
        rc = change_attrs(fs, path, &n, since, WFILE_MTIME_KEEP, -1, uid, gid);
    else if (rc == 1)
        rc = 0; /* nothing to change */
    if (rc == 0)
        note_change(fs, &n, NULL, NULL);
    tree_node_free(&n);
    return rc;
}

int fs_write_utimens(const char *path, const struct timespec tv[2],
                     struct fuse_file_info *fi)
{
    (void)fi;
    lakefuse_fs *fs = fs_current();
    struct timespec now, set[2];
    clock_gettime(CLOCK_REALTIME, &now);
    bool given[2];
    for (int i = 0; i < 2; i++) {
        given[i] = !tv || tv[i].tv_nsec != UTIME_OMIT;
        set[i] = !tv || tv[i].tv_nsec == UTIME_NOW ? now : tv[i];
    }
    if (fs_hidden_name(path)) { /* futimens of a file unlinked while open */
        int rc = fs_hidden_setattr(fs, path, -1, (uid_t)-1, (gid_t)-1,
                                   given[0] ? &set[0] : NULL,
                                   given[1] ? &set[1] : NULL);
        if (rc != -ENOENT) /* else an object of that name */
            return rc;
    }
    tree_node n;
    uint64_t since = writer_landed(fs->writer); /* before n's listing */
    int rc = fs_resolve_writable(fs, path, &n);
    if (rc)
        return rc;
    /* client-mtime holds whole seconds; the rest is kept in memory. */
    int64_t mtime = given[1] ? (int64_t)set[1].tv_sec : WFILE_MTIME_KEEP;
    if (mtime != WFILE_MTIME_KEEP)
        rc = change_attrs(fs, path, &n, since, mtime, -1, (uid_t)-1,
                          (gid_t)-1);
    if (rc == 0)
        note_change(fs, &n, given[0] ? &set[0] : NULL,
                    given[1] ? &set[1] : NULL);
    tree_node_free(&n);
    return rc;
}

/* An empty object at the new name path with the attributes a (a symlink's
 * target or a device's number in its metadata): one uploadObject, then the
 * listing shows it. */
static int make_empty_object(const char *path, const upload_attrs *a)
{
    lakefuse_fs *fs = fs_current();
    tree_node parent;
    char *rel_key;
    int rc = fs_resolve_new_name(fs, path, &parent, &rel_key);
    if (rc)
        return rc;
    lakefs_object_stats st;
    memset(&st, 0, sizeof(st));
    char *key = fs_object_key(parent.ref, rel_key);
    rc = key ? 0 : -ENOMEM;
    if (rc == 0 && (a->mode & 07000u))
        rc = tree_note_special_mode(fs->tree, parent.ref->repo, key);
    upload_attrs created = *a;
    created.if_absent = true; /* never over another client's object */
    if (rc == 0 && created.mode) { /* a special file (a symlink: no owner) */
        int other = fs_new_owner(fs, &parent, &created.uid, &created.gid,
                                 &created.mode);
        rc = other < 0 ? other : 0;
    }
    if (rc == 0)
        rc = fs_upload_empty_attrs(fs, parent.ref, key, &created, &st);
    if (rc == 0) {
        fs_cache_set_object(fs, parent.ref, rel_key, &st);
        fs_dir_changed(fs, parent.ref, rel_key);
    } else if (rc == -EIO || rc == -EEXIST) { /* the name lists as it is */
        fs_forget_parent(fs, parent.ref, rel_key);
    }
    lakefs_object_stats_free(&st);
    free(key);
    free(rel_key);
    tree_node_free(&parent);
    return rc;
}

/* As lakectl stores one: the target and client-mtime, no
 * posix-permissions. */
int fs_write_symlink(const char *target, const char *path)
{
    /* Kept in the object's user metadata, a JSON string. */
    if (!listing_utf8_is_valid(target))
        return -EILSEQ;
    lakefs_metadata md = {0};
    upload_attrs a = {.mtime = time(NULL), .extra = &md};
    int rc = lakefs_metadata_set(&md, LISTING_KEY_SYMLINK_TARGET, target);
    if (rc == 0)
        rc = make_empty_object(path, &a);
    lakefs_metadata_free(&md);
    return rc;
}

/* A fifo, socket or device node: an empty object whose posix-permissions
 * Mode has the type (the raw st_mode, as lakectl records a file's), a
 * device's number in the user metadata key lakefuse-rdev. The kernel
 * serves a fifo's or socket's I/O itself and opens no device on a nodev
 * mount: the object only names it, as an inode does. */
static int make_special(const char *path, mode_t mode, dev_t dev)
{
    uint32_t type = mode & S_IFMT;
    lakefs_metadata md = {0};
    upload_attrs a = {.mtime = time(NULL), .mode = type | (mode & 07777u),
                      .extra = &md};
    char rdev[32];
    snprintf(rdev, sizeof(rdev), "%llu", (unsigned long long)dev);
    int rc = (type == S_IFCHR || type == S_IFBLK) && dev != 0
                 ? lakefs_metadata_set(&md, LISTING_KEY_RDEV, rdev)
                 : 0;
    if (rc == 0)
        rc = make_empty_object(path, &a);
    lakefs_metadata_free(&md);
    return rc;
}

int fs_write_mknod(const char *path, mode_t mode, dev_t dev)
{
    switch (mode & S_IFMT) {
    case S_IFIFO:
    case S_IFSOCK:
    case S_IFCHR:
    case S_IFBLK:
        return make_special(path, mode, dev);
    case S_IFREG:
    case 0:
        break;
    default:
        return -EINVAL;
    }
    struct fuse_file_info fi = {.flags = O_WRONLY};
    int rc = fs_write_create(path, mode, &fi);
    if (rc)
        return rc;
    /* The file exists from here on: a failed upload of it is retried in
     * the background (as after truncate by path), not an error of mknod. */
    open_file *of = (open_file *)(uintptr_t)fi.fh;
    fs_write_flush(path, &fi);
    wfile_release(of->w);
    free(of);
    return 0;
}

int fs_write_link(const char *from, const char *to)
{
    (void)to;
    lakefuse_fs *fs = fs_current();
    tree_node n;
    int rc = fs_resolve_writable(fs, from, &n);
    if (rc == 0)
        tree_node_free(&n);
    return rc ? rc : -EPERM; /* objects have no hard links */
}

#define XATTR_META "user.lakefs.meta."

int fs_metadata_with(const lakefs_metadata *md, const char *key,
                     const char *value, lakefs_metadata *out)
{
    memset(out, 0, sizeof(*out));
    bool found = false;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < md->count; i++) {
        const lakefs_kv *kv = &md->items[i];
        if (strcmp(kv->key, key) == 0)
            found = true;
        else
            rc = lakefs_metadata_set(out, kv->key, kv->value);
    }
    if (rc == 0 && value)
        rc = lakefs_metadata_set(out, key, value);
    else if (rc == 0 && !found)
        rc = -ENODATA;
    if (rc)
        lakefs_metadata_free(out);
    return rc;
}

/* What user metadata KEY may hold, as set to value (NULL: removed): 0 and
 * *copy (the value as stored, NULL for a removal; free it), or -EINVAL,
 * -ENOTSUP, -EILSEQ, -ENOMEM. */
static int meta_xattr_value(const char *key, const char *value, size_t size,
                            char **copy)
{
    *copy = NULL;
    if (!*key)
        return -EINVAL;
    /* lakectl's own keys (mode, owner, mtime, symlink target) follow
     * chmod, chown, utime and symlink: set here they would be replaced
     * by the upload's. Not supported, as the other user.lakefs.* names. */
    if (strncmp(key, "::lakefs::", 10) == 0)
        return -ENOTSUP;
    /* User metadata is JSON strings: bytes that are not UTF-8 come back
     * as U+FFFD. Refused, not altered. A NUL is U+0000 (jsonnul.h). */
    *copy = value ? jsonnul_from_bytes(value, size) : NULL;
    if (value && !*copy)
        return -ENOMEM;
    if (!listing_utf8_is_valid(key) ||
        (*copy && !listing_utf8_nul_is_valid(*copy))) {
        free(*copy);
        *copy = NULL;
        return -EILSEQ;
    }
    return 0;
}

/* user.lakefs.meta.KEY: the object's user metadata with KEY set (value
 * non-NULL) or removed, through updateObjectUserMetadata; on a file whose
 * newest bytes are still staged, on the staged copy (its upload carries
 * it). */
static int set_meta_xattr(lakefuse_fs *fs, const char *path, tree_node *n,
                          uint64_t since, const char *key, const char *value,
                          size_t size)
{
    char *copy;
    int vrc = meta_xattr_value(key, value, size, &copy);
    if (vrc)
        return vrc;
    wfile *w = fs_node_wfile(fs, n);
    bool staged = false; /* decided as in change_file_attrs */
    int rc = 0;
    if (w) {
        rc = wfile_set_meta_if_unsent(w, key, copy);
        staged = rc == 1;
        rc = rc == 1 ? 0 : rc;
    }
    if (rc == 0 && !staged) /* as in change_file_attrs */
        rc = refresh_if_landed(fs, path, n, w, &since);
    /* The metadata sent is n's once resolved again: taken before, it
     * could be the object's before an upload that landed meanwhile, and
     * the keys that upload carried would be dropped (soak seed 99202,
     * -o async_close: a key set while the file was staged was gone after
     * the next setxattr). */
    lakefs_metadata md = {0};
    if (rc == 0 && !staged) {
        fs_overlay_staged_metadata(fs, n); /* what the file has now */
        rc = fs_metadata_with(&n->entry.metadata, key, copy, &md);
    }
    if (rc == 0 && !staged) {
        upload_attrs a;
        current_attrs(fs, &n->entry, &a);
        a.extra = &md;
        if (!n->entry.has_owner &&
            a.mode == (S_IFREG | LISTING_DEFAULT_FILE_MODE))
            a.mode = 0; /* keep not recording what was not recorded */
        rc = update_attrs(fs, n, &a);
        if (rc == -EIO) /* it may have landed */
            forget_attrs(fs, n);
        if (rc == 0 && w) {
            int r = wfile_set_meta(w, key, copy);
            rc = r == -ENODATA ? 0 : r;
        }
    }
    /* A staged change leaves the listing alone (as change_file_attrs):
     * n's entry is the object before the file's pending upload, which may
     * land between the change and here; written back, it would replace
     * that landing's entry and show the older bytes once the file is
     * clean. */
    if (rc == 0 && !staged) {
        lakefs_metadata_free(&n->entry.metadata);
        n->entry.metadata = md;
        memset(&md, 0, sizeof(md));
        cache_changed_entry(fs, n, since);
    }
    if (w)
        wfile_release(w);
    free(copy);
    lakefs_metadata_free(&md);
    return rc;
}

/* user.lakefs.meta.KEY of a directory: on its marker, as its mode and
 * owner are (change_dir_attrs). A -o nodir_markers mount has no place for
 * it: ENOTSUP. */
static int set_dir_meta_xattr(lakefuse_fs *fs, const tree_node *n,
                              const char *key, const char *value,
                              size_t size)
{
    if (!fs->dir_markers)
        return -ENOTSUP;
    char *copy;
    int rc = meta_xattr_value(key, value, size, &copy);
    meta_change mc = {key, copy};
    if (rc == 0)
        rc = change_dir_attrs(fs, n, WFILE_MTIME_KEEP, -1, (uid_t)-1,
                              (gid_t)-1, &mc);
    free(copy);
    return rc;
}

/* fsetxattr or fremovexattr of a file unlinked while open: its user
 * metadata as this mount keeps it (nothing of the file is on lakeFS any
 * more); -ENOENT when path names no such file. */
static int hidden_setxattr(lakefuse_fs *fs, const char *path,
                           const char *name, const char *value, size_t size)
{
    if (strncmp(name, XATTR_META, strlen(XATTR_META)) != 0) {
        struct stat st;
        int rc = fs_hidden_getattr(fs, path, &st);
        return rc ? rc : -ENOTSUP;
    }
    char *copy;
    int rc = meta_xattr_value(name + strlen(XATTR_META), value, size, &copy);
    if (rc == 0)
        rc = fs_hidden_set_meta(fs, path, name + strlen(XATTR_META), copy);
    free(copy);
    return rc;
}

int fs_write_setxattr(const char *path, const char *name, const char *value,
                      size_t size, int flags)
{
    (void)flags;
    lakefuse_fs *fs = fs_current();
    if (path && fs_hidden_name(path)) {
        int rc = hidden_setxattr(fs, path, name, value, size);
        if (rc != -ENOENT)
            return rc;
    }
    tree_node n;
    uint64_t since = writer_landed(fs->writer); /* before n's listing */
    int rc = path ? tree_resolve(fs->tree, path, &n) : -ESTALE;
    if (rc)
        return rc;
    bool meta = strncmp(name, XATTR_META, strlen(XATTR_META)) == 0 &&
                (n.kind == TREE_FILE || (n.kind == TREE_DIR && !n.ref_root));
    if (n.kind == TREE_DIR && n.ref_root && value)
        rc = control_xattr_action(fs, &n, name, value, size);
    else
        rc = -ENOTSUP;
    /* Not an action: EROFS first, then ENOTSUP for a name nothing holds
     * (a ref root's other names included: answered 0, such a name would
     * read back as never set). */
    if (rc == -ENOTSUP) {
        rc = fs_check_writable(fs, &n);
        const char *key = meta ? name + strlen(XATTR_META) : NULL;
        if (rc == 0 && meta && n.kind == TREE_DIR)
            rc = set_dir_meta_xattr(fs, &n, key, value, size);
        else if (rc == 0 && meta)
            rc = set_meta_xattr(fs, path, &n, since, key, value, size);
        else if (rc == 0)
            rc = -ENOTSUP;
    }
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
    open_file *of = fi ? (open_file *)(uintptr_t)fi->fh : NULL;
    if (!of || of->control || of->text)
        return -EOPNOTSUPP;
    if (!of->w || !of->writer)
        return -EBADF; /* not open for writing */
    return wfile_fallocate(of->w, mode, off, len);
}

