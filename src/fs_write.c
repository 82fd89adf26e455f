/*
 * fs_write.c - the FUSE operations that change a branch's files and
 * directories: files are staged and uploaded through the writer, mkdir and
 * rmdir keep directory markers. Each updates the listing cache so the
 * mount shows its own writes at once. Fixed refs and -o ro mounts answer
 * EROFS before anything happens (renames: fs_rename.c; attributes,
 * links and xattrs: fs_attr.c).
 */
#include "fs_internal.h"

#include "control.h"
#include "fs_ops.h"
#include "workflow.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_FILE_PERMISSIONS 0644u

static open_file *handle_of(struct fuse_file_info *fi)
{
    return fi ? (open_file *)(uintptr_t)fi->fh : NULL;
}

/* A node for a path that must exist; -EROFS when its ref is not writable. */
int fs_resolve_writable(lakefuse_fs *fs, const char *path, tree_node *n)
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
int fs_resolve_new_name(lakefuse_fs *fs, const char *path,
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
    /* lakeFS takes such a key, but its JSON answers carry it back with
     * U+FFFD in place of the bytes: a name no one could open again. */
    if (rc == 0 && !listing_utf8_is_valid(name))
        rc = -EILSEQ;
    if (rc == 0 && !(*key = tree_child_key(parent, name)))
        rc = -ENOMEM;
    /* Refused here, not by the upload at close. */
    if (rc == 0 && !fs_key_fits(parent->ref, *key, 0)) {
        free(*key);
        *key = NULL;
        rc = -ENAMETOOLONG;
    }
    free(name);
    if (rc)
        tree_node_free(parent);
    return rc;
}

bool fs_key_fits(const tree_ref *ref, const char *rel_key, size_t extra)
{
    return strlen(ref->prefix) + strlen(rel_key) + extra <=
           LAKEFS_MAX_PATH_LENGTH;
}

/* prefix + rel_key: the object key on the server. */
char *fs_object_key(const tree_ref *ref, const char *rel_key)
{
    char *s = NULL;
    if (asprintf(&s, "%s%s", ref->prefix, rel_key) < 0)
        return NULL;
    return s;
}

char *fs_dir_key(const tree_ref *ref, const char *rel_dir)
{
    char *s = NULL;
    if (asprintf(&s, "%s%s%s", ref->prefix, rel_dir, rel_dir[0] ? "/" : "") <
        0)
        return NULL;
    return s;
}

void fs_forget_parent(lakefuse_fs *fs, const tree_ref *ref,
                      const char *rel_key)
{
    const char *slash = strrchr(rel_key, '/');
    char *dir = slash ? strndup(rel_key, (size_t)(slash - rel_key))
                      : strdup("");
    if (dir)
        metacache_invalidate_dir(fs->meta, ref->cache_key, dir);
    else
        metacache_invalidate_ref(fs->meta, ref->cache_key);
    free(dir);
}

/* The owner a new name in the directory parent gets, as Linux gives it:
 * the calling process's user and group (with -o allow_other another
 * user's), but in a set-group-ID directory the directory's group, and a
 * new directory there (*mode, when not NULL) keeps the bit. The kernel
 * has already dropped a new file's set-group-ID bit when the caller may
 * not have it. 1 when that is not the mount's owner (a listing shows the
 * mount's owner anyway), 0 when it is, or -errno: the directory's
 * listing, which says whether it is set-group-ID, could not be had. */
int fs_new_owner(lakefuse_fs *fs, const tree_node *parent, uid_t *uid,
                 gid_t *gid, uint32_t *mode)
{
    const struct fuse_context *ctx = fuse_get_context();
    *uid = ctx ? ctx->uid : fs->uid;
    *gid = ctx ? ctx->gid : fs->gid;
    struct stat dir;
    int rc = fs_dir_owner(fs, parent, &dir);
    if (rc)
        return rc;
    if (S_ISDIR(dir.st_mode) && (dir.st_mode & S_ISGID)) {
        *gid = dir.st_gid;
        if (mode && S_ISDIR(*mode))
            *mode |= S_ISGID;
    }
    return *uid != fs->uid || *gid != fs->gid;
}

static void cache_new_file(lakefuse_fs *fs, const tree_ref *ref,
                           const char *rel_key, uint32_t mode, bool has_owner,
                           uid_t uid, gid_t gid)
{
    const char *slash = strrchr(rel_key, '/');
    fs_entry e = {.name = (char *)(slash ? slash + 1 : rel_key),
                  .mtime = time(NULL),
                  .mode = mode ? mode & 07777u : DEFAULT_FILE_PERMISSIONS,
                  .has_owner = has_owner,
                  .uid = uid,
                  .gid = gid};
    fs_cache_set(fs, ref, rel_key, &e);
}

void fs_dir_changed(lakefuse_fs *fs, const tree_ref *ref, const char *rel_key)
{
    const char *slash = strrchr(rel_key, '/');
    int len = slash ? (int)(slash - rel_key) : 0;
    char *dir = NULL;
    if (asprintf(&dir, "%s%.*s", ref->prefix, len, rel_key) >= 0)
        fs_times_touch(fs->times, ref->repo, ref->api_ref, dir);
    free(dir);
}

/* ---- files ---- */

/* A descriptor open for writing only bypasses the kernel's page cache
 * (direct_io). For a cached write the kernel first asks for the file's
 * security.capability (file_remove_privs: FUSE marks no inode S_NOSEC
 * unless the daemon takes FUSE_HANDLE_KILLPRIV_V2, which libfuse 3.14
 * cannot ask for), one more round trip to this daemon per write: twice
 * the requests of a cp. A direct write skips that. Nothing reads or maps
 * through a write-only descriptor, and the kernel drops the range written
 * from the pages it caches, so readers see the same bytes. Not for a file
 * with setuid/setgid bits, which a cached write by an unprivileged
 * process clears and a direct one would not. */
static void direct_if_write_only(wfile *w, struct fuse_file_info *fi)
{
    if ((fi->flags & O_ACCMODE) != O_WRONLY)
        return;
    int64_t size, mtime;
    uint32_t mode;
    wfile_attrs(w, &size, &mtime, &mode);
    if (!(mode & (S_ISUID | S_ISGID)))
        fi->direct_io = 1;
}

int fs_write_open(lakefuse_fs *fs, const tree_node *n,
                  struct fuse_file_info *fi, open_file *of,
                  const uint64_t *landed)
{
    int rc = fs_check_writable(fs, n);
    if (rc)
        return rc;
    char *key = tree_object_key(n);
    if (!key)
        return -ENOMEM;
    bool truncate = (fi->flags & O_TRUNC) != 0;
    /* An edit keeps the object's mode, owner, metadata and content type. */
    writer_base base = {.reader = truncate ? NULL
                                           : fs_open_object_reader(fs, n),
                        .entry = &n->entry,
                        .landed_valid = landed != NULL,
                        .landed = landed ? *landed : 0};
    if (!truncate && !base.reader) {
        free(key);
        return -ENOMEM;
    }
    rc = writer_open(fs->writer, n->ref->repo, n->ref->api_ref, key, &base,
                     truncate, 0, n->ref, &of->w);
    free(key);
    if (rc)
        return rc;
    of->writer = true;
    of->ref = n->ref;
    of->append = (fi->flags & O_APPEND) != 0;
    direct_if_write_only(of->w, fi);
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
    int rc = fs_resolve_new_name(fs, path, &parent, &rel_key);
    if (rc)
        return rc;
    open_file *of = calloc(1, sizeof(*of));
    char *key = fs_object_key(parent.ref, rel_key);
    /* Recorded exactly as the kernel passes it (umask applied), 0000 and
     * the setuid/setgid/sticky bits too. */
    uint32_t perm = S_IFREG | (mode & 07777u);
    uid_t uid;
    gid_t gid;
    int other_owner = fs_new_owner(fs, &parent, &uid, &gid, NULL);
    rc = other_owner < 0 ? other_owner
         : of && key   ? writer_open(fs->writer, parent.ref->repo,
                                     parent.ref->api_ref, key, NULL,
                                     (fi->flags & O_TRUNC) != 0, perm,
                                     parent.ref, &of->w)
                       : -ENOMEM;
    if (rc == 0 && other_owner) {
        rc = wfile_set_owner(of->w, uid, gid);
        if (rc)
            wfile_release(of->w);
    }
    if (rc == 0) {
        of->writer = true;
        of->ref = parent.ref;
        of->append = (fi->flags & O_APPEND) != 0;
        direct_if_write_only(of->w, fi);
        if (perm & 07000u)
            tree_note_special_mode(fs->tree, parent.ref->repo, key);
        cache_new_file(fs, parent.ref, rel_key, perm, other_owner, uid, gid);
        fs_dir_changed(fs, parent.ref, rel_key);
        fi->fh = (uint64_t)(uintptr_t)of;
        fs_open_files_add(fs, of);
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

/* Uploads a changed wfile (the writer's on_uploaded puts the new object in
 * the listing cache); with -o async_close, unless sync (fsync), queues the
 * upload for the writer's pool instead. */
static int flush_and_cache(lakefuse_fs *fs, wfile *w, bool sync)
{
    int rc = !sync && writer_async(fs->writer) ? wfile_queue(w)
                                               : wfile_flush(w, NULL);
    return rc == 1 ? 0 : rc;
}

/* Whether descriptor fd of pid was opened for writing (/proc fdinfo);
 * when that cannot be read, assume it was (the caller then defers). */
static bool fd_writes(pid_t pid, const char *fd)
{
    char path[64 + NAME_MAX];
    snprintf(path, sizeof(path), "/proc/%ld/fdinfo/%s", (long)pid, fd);
    FILE *f = fopen(path, "re");
    if (!f)
        return true;
    char line[128];
    unsigned long flags = O_WRONLY;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "flags: %lo", &flags) == 1)
            break;
    fclose(f);
    return (flags & O_ACCMODE) != O_RDONLY;
}

/*
 * true when the process closing a descriptor still holds another one on
 * the same file, as a shell redirection does (it dup2s the new file onto
 * stdout and closes the original before writing): that close is not the
 * last, and uploading there would briefly show other clients an empty or
 * half-written object. Only descriptors open for writing count: a reader
 * left open must not keep the writer's close from uploading. When /proc
 * cannot say, the close uploads.
 */
static bool held_elsewhere(const lakefuse_fs *fs, const char *path)
{
    pid_t pid = fuse_get_context()->pid;
    if (!fs->mountpoint || !path || pid <= 0)
        return false;
    char target[PATH_MAX], dir[64];
    if (snprintf(target, sizeof(target), "%s%s", fs->mountpoint, path) >=
        (int)sizeof(target))
        return false;
    snprintf(dir, sizeof(dir), "/proc/%ld/fd", (long)pid);
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool found = false;
    const struct dirent *de;
    while (!found && (de = readdir(d)) != NULL) {
        char link[PATH_MAX];
        if (de->d_name[0] == '.')
            continue;
        ssize_t n = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
        if (n > 0) {
            link[n] = '\0';
            found = strcmp(link, target) == 0 && fd_writes(pid, de->d_name);
        }
    }
    closedir(d);
    return found;
}

int fs_write_flush(const char *path, struct fuse_file_info *fi)
{
    open_file *of = handle_of(fi);
    if (of && (of->data || of->w))
        fs_count_file_request(fs_current(), FS_REQ_FLUSH);
    if (!of || !of->w || !of->writer)
        return 0;
    lakefuse_fs *fs = fs_current();
    if (held_elsewhere(fs, path))
        return 0; /* the last close (or release) uploads */
    return flush_and_cache(fs, of->w, false);
}

int fs_write_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)path;
    (void)datasync;
    open_file *of = handle_of(fi);
    if (!of || !of->w)
        return 0;
    lakefuse_fs *fs = fs_current();
    /* A read-only descriptor on a staged file too, with -o async_close:
     * `sync FILE` opens it read-only, and a close there only queued the
     * upload. Without the pool, the writer's close already uploaded. */
    if (!of->writer && !writer_async(fs->writer))
        return 0;
    /* Durable means on lakeFS: waits for a queued file's upload in flight
     * (its io lock) and makes one if it is still to do. */
    return flush_and_cache(fs, of->w, true);
}

/* A directory's entries are durable once lakeFS holds them: with -o
 * async_close, the files closed in it and the markers of directories made
 * in it (and its own) are uploaded, or waited for, before this returns;
 * without, only failed uploads waiting for a retry are left to make. */
int fs_write_fsyncdir(const char *path, int datasync,
                      struct fuse_file_info *fi)
{
    (void)datasync;
    (void)fi;
    lakefuse_fs *fs = fs_current();
    if (!path || writer_idle(fs->writer))
        return 0;
    tree_node n;
    int rc = tree_resolve(fs->tree, path, &n);
    if (rc) /* removed since it was opened: no entries left to sync */
        return rc == -ENOENT ? 0 : rc;
    if (n.kind == TREE_DIR && n.ref && n.ref->is_branch) {
        char *dir_key = fs_dir_key(n.ref, n.key);
        rc = dir_key ? writer_flush_dir(fs->writer, n.ref->repo,
                                        n.ref->api_ref, dir_key)
                     : -ENOMEM;
        free(dir_key);
    }
    tree_node_free(&n);
    return rc;
}

int fs_write_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    open_file *of = handle_of(fi);
    if (of && of->w)
        return of->writer ? wfile_truncate(of->w, size) : -EBADF;
    lakefuse_fs *fs = fs_current();
    tree_node n;
    /* The writer's landings before the listing: as op_open, an upload of
     * the file that lands between the resolve and the open leaves n older
     * than the file; it is resolved again then. */
    uint64_t since = writer_landed(fs->writer);
    int rc = path ? tree_resolve(fs->tree, path, &n) : -ESTALE;
    if (rc)
        return rc;
    /* `echo x > .lakefs/commit` truncates first: nothing to do. */
    if (n.kind == TREE_CONTROL_FILE && (control_mode(fs, &n) & 0200))
        rc = 1;
    else
        rc = fs_check_writable(fs, &n);
    if (rc == 0 && n.kind != TREE_FILE)
        rc = -EISDIR;
    if (rc) {
        tree_node_free(&n);
        return rc > 0 ? 0 : rc;
    }
    /* Open, truncate, upload, close: what `truncate -s` expects. Once the
     * staged copy is truncated the call succeeds: the file shows the new
     * size from now on, so an upload that fails (there is no close to
     * report it on) shows in .lakefs/status and is retried in the
     * background, like any failed upload. */
    struct fuse_file_info tmp = {.flags = size == 0 ? O_TRUNC : O_RDWR};
    open_file handle = {0};
    rc = fs_write_open(fs, &n, &tmp, &handle, &since);
    for (int tries = 1; rc == -EAGAIN; tries++) {
        tree_node_free(&n);
        since = writer_landed(fs->writer);
        rc = tree_resolve(fs->tree, path, &n);
        if (rc)
            return rc;
        rc = n.kind == TREE_FILE
                 ? fs_write_open(fs, &n, &tmp, &handle,
                                 tries + 1 < FS_OPEN_TRIES ? &since : NULL)
                 : -EISDIR;
    }
    if (rc == 0) {
        rc = wfile_truncate(handle.w, size);
        if (rc == 0)
            flush_and_cache(fs, handle.w, false);
        wfile_release(handle.w);
    }
    tree_node_free(&n);
    return rc;
}

int fs_delete_key(lakefuse_fs *fs, const tree_ref *ref, const char *key)
{
    lakefs_error err = {0};
    /* Applied, every answer lost? The client asks lakeFS whether it is
     * gone. */
    int rc = lakefs_delete_object_settled(fs->client, ref->repo,
                                          ref->api_ref, key, &err);
    if (rc)
        logger_write(fs->log, LOG_LEVEL_ERROR, "deleting '%s': %s", key,
                     err.message);
    return rc ? -EIO : 0;
}

typedef struct delete_ctx {
    lakefuse_fs *fs;
    const tree_ref *ref;
    const char *key;
} delete_ctx;

static int delete_cb(void *p)
{
    delete_ctx *d = p;
    return fs_delete_key(d->fs, d->ref, d->key);
}

int fs_write_unlink(const char *path)
{
    lakefuse_fs *fs = fs_current();
    if (fs_hidden_name(path) && fs_hidden_remove(fs, path) == 0)
        return 0; /* the last close of a file unlinked while open */
    tree_node n;
    int rc = fs_resolve_writable(fs, path, &n);
    if (rc)
        return rc;
    char *key = tree_object_key(&n);
    if (n.kind != TREE_FILE)
        rc = -EISDIR;
    else if (!key)
        rc = -ENOMEM;
    else
        rc = fs_keep_parent_dir(fs, n.ref, n.key);
    if (rc == 0) {
        /* The delete and the staged copy's detach are one step: an upload
         * of it in flight lands before the delete, never after. */
        fs_readers_pin(fs, n.ref, key, false); /* they keep their bytes */
        delete_ctx d = {fs, n.ref, key};
        rc = writer_unlink(fs->writer, n.ref->repo, n.ref->api_ref, key,
                           delete_cb, &d);
    }
    if (rc == 0) {
        fs_cache_set(fs, n.ref, n.key, NULL);
        fs_times_move(fs->times, n.ref->repo, n.ref->api_ref, key, NULL);
        fs_dir_changed(fs, n.ref, n.key);
    } else if (rc == -EIO) {
        fs_forget_parent(fs, n.ref, n.key);
    }
    free(key);
    tree_node_free(&n);
    return rc;
}

/* writer_uploaded_fn: the listing shows what was uploaded, whichever
 * thread uploaded it (a close, a release, a background retry). */
/* A directory's marker landed (mkdir with -o async_close): the parent's
 * entry and the directory's own (".") take it, as a synchronous mkdir's
 * do, and a listing read from lakeFS before it landed is not kept (the
 * cache's generations move). dir: the directory's key in ref. */
static void cache_landed_marker(lakefuse_fs *fs, const tree_ref *ref,
                                const char *dir,
                                const lakefs_object_stats *st)
{
    const char *slash = strrchr(dir, '/');
    fs_entry e;
    if (fs_entry_from_marker(&e, slash ? slash + 1 : dir, st) != 0) {
        metacache_invalidate_ref(fs->meta, ref->cache_key); /* ENOMEM */
        return;
    }
    char *self = NULL;
    if (asprintf(&self, "%s/%s", dir, TREE_MARKER_NAME) < 0) {
        metacache_invalidate_ref(fs->meta, ref->cache_key);
    } else {
        fs_cache_set(fs, ref, self, &e);
        fs_cache_set(fs, ref, dir, &e);
    }
    free(self);
    fs_entry_free(&e);
}

void fs_on_uploaded(void *ctx, const void *tag, const lakefs_object_stats *st)
{
    lakefuse_fs *fs = ctx;
    const tree_ref *ref = tag;
    size_t pl = ref ? strlen(ref->prefix) : 0;
    if (!ref || !st->path || strncmp(st->path, ref->prefix, pl) != 0)
        return;
    size_t len = strlen(st->path);
    if (len > pl + 1 && st->path[len - 1] == '/') {
        char *dir = strndup(st->path + pl, len - pl - 1);
        if (dir)
            cache_landed_marker(fs, ref, dir, st);
        else
            metacache_invalidate_ref(fs->meta, ref->cache_key);
        free(dir);
        return;
    }
    fs_cache_set_object(fs, ref, st->path + pl, st);
    fs_readers_uploaded(fs, ref, st->path + pl, st);
}

/* ---- directories ---- */

/* 1 when st is an empty object holding exactly the user metadata attrs
 * give (what fs_upload_empty_attrs sends), 0 when not, or -ENOMEM. */
static int is_empty_object_sent(const lakefs_object_stats *st,
                                const upload_attrs *attrs)
{
    lakefs_metadata md;
    if (upload_build_metadata(attrs, &md) != 0)
        return -ENOMEM;
    bool same = st->size_bytes == 0 &&
                lakefs_metadata_equal(&st->metadata, &md);
    lakefs_metadata_free(&md);
    return same;
}

/* After a create-only upload of key answered EEXIST: 1 when the object
 * there is the one it sent (its answer was lost and the client's resend
 * refused; *out then holds it), 0 when another client's, -ENOENT when
 * none is there any more, another -errno (*err) when it cannot tell. */
static int created_by_us(lakefuse_fs *fs, const tree_ref *ref,
                         const char *key, const upload_attrs *attrs,
                         lakefs_object_stats *out, lakefs_error *err)
{
    lakefs_object_stats st;
    memset(&st, 0, sizeof(st));
    int got = lakefs_stat_object(fs->client, ref->repo, ref->api_ref, key,
                                 false, &st, err);
    int ours = got == 0 ? is_empty_object_sent(&st, attrs) : got;
    if (ours == 1 && out) {
        *out = st;
        memset(&st, 0, sizeof(st));
    }
    lakefs_object_stats_free(&st);
    return ours;
}

int fs_upload_empty_attrs(lakefuse_fs *fs, const tree_ref *ref,
                          const char *key, const upload_attrs *attrs,
                          lakefs_object_stats *out)
{
    int fd = memfd_create("lakefuse-empty", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    lakefs_error err = {0};
    int rc;
    /* Small: uploadObject is one request where the staging flow is three.
     * A create refused (If-None-Match) by an object that is gone when
     * read back was refused by one deleted since: it is made again, once;
     * a name another client keeps creating and deleting answers EEXIST. */
    for (int tries = 0;; tries++) {
        rc = upload_fd(fs->client, NULL, ref->repo, ref->api_ref, key, fd, 0,
                       attrs, out, &err);
        if (rc != -EEXIST || !attrs->if_absent)
            break;
        rc = created_by_us(fs, ref, key, attrs, out, &err);
        if (rc == -ENOENT && tries == 0)
            continue;
        if (rc == 0 || rc == -ENOENT) {
            logger_write(fs->log, LOG_LEVEL_WARNING,
                         "creating '%s': another client made an object "
                         "there; left as it is (EEXIST)",
                         key);
            rc = -EEXIST;
        }
        break;
    }
    close(fd);
    if (rc == 1 || rc == 0 || rc == -EEXIST)
        return rc == -EEXIST ? rc : 0;
    logger_write(fs->log, LOG_LEVEL_ERROR, "creating '%s': %s", key,
                 err.message);
    return -EIO;
}

/* With -o async_close, mkdir's marker goes as a closed file does: staged
 * (empty) and journaled, the mkdir answered, the upload queued for the
 * pool; until it lands the writer lists the directory (writer_entry
 * is_dir), chmod/chown/utimens go with the upload, rmdir deletes through
 * the writer and a rename of the directory moves it. A dead mount's
 * marker is uploaded by the next one (recover.c), as any staged file. */
static int queue_marker(lakefuse_fs *fs, const tree_ref *ref,
                        const char *marker, upload_attrs *attrs,
                        bool other_owner)
{
    wfile *w = NULL;
    int rc = writer_open(fs->writer, ref->repo, ref->api_ref, marker, NULL,
                         true, attrs->mode, ref, &w);
    if (rc == 0 && other_owner)
        rc = wfile_set_owner(w, attrs->uid, attrs->gid);
    if (rc == 0) { /* the marker's mtime is the wfile's (made now) */
        int64_t size;
        uint32_t mode;
        wfile_attrs(w, &size, &attrs->mtime, &mode);
    }
    if (rc == 0)
        rc = wfile_queue(w);
    if (w)
        wfile_release(w);
    return rc;
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
    lakefuse_fs *fs = fs_current();
    int rc = mkdir_namespace(fs, path);
    if (rc <= 0)
        return rc;
    tree_node parent;
    char *rel_key;
    rc = fs_resolve_new_name(fs, path, &parent, &rel_key);
    if (rc)
        return rc;
    char *marker = NULL;
    if (!fs_key_fits(parent.ref, rel_key, 1)) /* its marker, "dir/" */
        rc = -ENAMETOOLONG;
    else if (asprintf(&marker, "%s%s/", parent.ref->prefix, rel_key) < 0)
        rc = -ENOMEM;
    /* The marker keeps the directory's mode, owner and mtime as lakectl
     * does for a folder: posix-permissions with Mode = S_IFDIR | bits. */
    upload_attrs attrs = {.mtime = time(NULL),
                          .mode = S_IFDIR | (mode & 07777u),
                          .if_absent = true};
    int other_owner =
        rc ? 0
           : fs_new_owner(fs, &parent, &attrs.uid, &attrs.gid, &attrs.mode);
    if (other_owner < 0)
        rc = other_owner;
    /* Read before the marker is made: a write in the new directory meanwhile
     * keeps its listing below from being cached. */
    uint64_t generation = tree_dir_generation(fs->tree, parent.ref);
    lakefs_object_stats made;
    memset(&made, 0, sizeof(made));
    if (rc == 0 && fs->dir_markers && writer_async(fs->writer))
        rc = queue_marker(fs, parent.ref, marker, &attrs, other_owner);
    else if (rc == 0 && fs->dir_markers)
        rc = fs_upload_empty_attrs(fs, parent.ref, marker, &attrs, &made);
    if (rc == 0) {
        /* A new directory holds nothing but its marker: the lookup and
         * stat that follow (every mkdir's) need no listing. */
        tree_cache_new_dir(fs->tree, parent.ref, rel_key,
                           fs->dir_markers && made.path ? &made : NULL,
                           generation);
        const char *slash = strrchr(rel_key, '/');
        fs_entry e = {.name = (char *)(slash ? slash + 1 : rel_key),
                      .is_dir = true,
                      .mode = fs->dir_markers ? attrs.mode & 07777u
                                              : LISTING_DEFAULT_DIR_MODE,
                      .mtime = attrs.mtime,
                      .has_owner = other_owner && fs->dir_markers,
                      .uid = attrs.uid,
                      .gid = attrs.gid};
        fs_cache_set(fs, parent.ref, rel_key, &e);
        fs_dir_changed(fs, parent.ref, rel_key);
        if (!fs->dir_markers) /* nothing on lakeFS lists it */
            rc = tree_keep_local_dir(fs->tree, parent.ref, rel_key);
    } else if (rc == -EIO || rc == -EEXIST) { /* the name lists as it is */
        fs_forget_parent(fs, parent.ref, rel_key);
    }
    lakefs_object_stats_free(&made);
    free(marker);
    free(rel_key);
    tree_node_free(&parent);
    return rc;
}

int fs_count_entry(void *ctx, const fs_entry *e)
{
    (void)e;
    ++*(size_t *)ctx;
    return 1; /* one is enough */
}

int fs_marker_holds_nothing(lakefuse_fs *fs, const tree_node *dir)
{
    fs_entry marker;
    bool has_marker = false;
    size_t subdirs = 0;
    int rc = tree_dir_info(fs->tree, dir, &marker, &has_marker, &subdirs);
    if (rc || !has_marker)
        return rc;
    if (marker.marker_has_bytes) {
        char *key = fs_dir_key(dir->ref, dir->key);
        logger_write(fs->log, LOG_LEVEL_WARNING,
                     "the directory marker '%s' holds bytes, which no file "
                     "shows: not deleted or replaced (ENOTEMPTY); delete "
                     "it through lakeFS if it is not wanted",
                     key ? key : dir->key);
        free(key);
        rc = -ENOTEMPTY;
    }
    fs_entry_free(&marker);
    return rc;
}

int fs_write_rmdir(const char *path)
{
    lakefuse_fs *fs = fs_current();
    tree_node n;
    int rc = fs_resolve_writable(fs, path, &n);
    if (rc)
        return rc;
    size_t entries = 0;
    if (n.kind != TREE_DIR)
        rc = -ENOTDIR;
    else if (n.ref_root)
        rc = -EPERM; /* a branch is not deleted by rmdir */
    else
        rc = tree_list(fs->tree, &n, fs_count_entry, &entries);
    if (rc >= 0 && entries > 0)
        rc = -ENOTEMPTY;
    char *marker = rc >= 0 ? fs_dir_key(n.ref, n.key) : NULL;
    if (rc >= 0 && !marker)
        rc = -ENOMEM;
    if (rc >= 0)
        rc = fs_marker_holds_nothing(fs, &n);
    if (rc >= 0)
        rc = fs_keep_parent_dir(fs, n.ref, n.key);
    /* Through the writer: a marker still to upload (mkdir with -o
     * async_close) never lands after the delete. */
    delete_ctx d = {fs, n.ref, marker};
    if (rc >= 0)
        rc = writer_unlink(fs->writer, n.ref->repo, n.ref->api_ref, marker,
                           delete_cb, &d);
    if (rc == 0) {
        fs_cache_set(fs, n.ref, n.key, NULL);
        metacache_invalidate_dir(fs->meta, n.ref->cache_key, n.key);
        char *dir_key = tree_object_key(&n);
        if (dir_key) /* its kept times are no other file's */
            fs_times_move_dir(fs->times, n.ref->repo, n.ref->api_ref,
                              dir_key, NULL);
        free(dir_key);
        tree_drop_local_dirs(fs->tree, n.ref, n.key);
        fs_dir_changed(fs, n.ref, n.key);
    } else if (rc == -EIO) {
        fs_forget_parent(fs, n.ref, n.key);
    }
    free(marker);
    tree_node_free(&n);
    return rc < 0 ? rc : 0;
}

