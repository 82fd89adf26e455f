/*
 * fs_ops.c - the FUSE operations: translates each request into the tree
 * (metadata), the reader (data) and the control files, and answers EROFS
 * to every write. Thin on purpose: no caching or HTTP here, and never a
 * presigned URL or a credential in anything it returns.
 */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include "fs_ops.h"
#include "dlist.h"

#include "entryset.h"

#include "control.h"
#include "fs_internal.h"
#include "jsonnul.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <time.h>

#define XATTR_PREFIX "user.lakefs."
#define XATTR_META_PREFIX XATTR_PREFIX "meta."

lakefuse_fs *fs_current(void)
{
    return fuse_get_context()->private_data;
}

int fs_check_writable(const lakefuse_fs *fs, const tree_node *n)
{
    if (fs->read_only || !n->ref || !n->ref->is_branch)
        return -EROFS;
    if (n->kind == TREE_CONTROL_DIR || n->kind == TREE_CONTROL_FILE)
        return -EPERM;
    return 0;
}

void fs_cache_set(lakefuse_fs *fs, const tree_ref *ref, const char *rel_key,
                  const fs_entry *entry)
{
    const char *slash = strrchr(rel_key, '/');
    char *dir = slash ? strndup(rel_key, (size_t)(slash - rel_key))
                      : strdup("");
    const char *name = slash ? slash + 1 : rel_key;
    if (!dir || metacache_update_entry(fs->meta, ref->cache_key, dir, name,
                                       entry) != 0)
        metacache_invalidate_ref(fs->meta, ref->cache_key);
    free(dir);
}

void fs_cache_set_object_as(lakefuse_fs *fs, const tree_ref *ref,
                            const char *rel_key,
                            const lakefs_object_stats *st,
                            const fs_entry *like)
{
    const char *slash = strrchr(rel_key, '/');
    fs_entry e;
    if (fs_entry_from_object(&e, slash ? slash + 1 : rel_key, st) != 0) {
        metacache_invalidate_ref(fs->meta, ref->cache_key); /* ENOMEM */
        return;
    }
    if (like) { /* the special bits `like` showed, no others */
        uint32_t hide = e.mode & 07000u & ~(like->mode & 07000u);
        e.mode &= ~hide;
        e.unshown_mode = hide;
    } else { /* shown as a listing would show it: an upload of a file
                whose bits this mount hides records them, and must not
                unmask them */
        tree_mask_entry(fs->tree, ref, rel_key, &e);
    }
    fs_cache_set(fs, ref, rel_key, &e);
    fs_entry_free(&e);
}

void fs_cache_set_object(lakefuse_fs *fs, const tree_ref *ref,
                         const char *rel_key, const lakefs_object_stats *st)
{
    fs_cache_set_object_as(fs, ref, rel_key, st, NULL);
}

/* ---- attributes ---- */

static void stat_dir(lakefuse_fs *fs, struct stat *st, int64_t mtime,
                     mode_t perm)
{
    memset(st, 0, sizeof(*st));
    st->st_mode = S_IFDIR | perm;
    st->st_nlink = 1; /* "unknown": find must not skip subdirectories */
    st->st_uid = fs->uid;
    st->st_gid = fs->gid;
    st->st_mtime = st->st_ctime = st->st_atime =
        mtime != 0 ? (time_t)mtime : fs->mount_time; /* 0: none kept */
    st->st_blksize = 4096;
}

static void stat_entry(lakefuse_fs *fs, const fs_entry *e, struct stat *st)
{
    if (e->is_dir) {
        stat_dir(fs, st, e->mtime, e->mode & 07777);
    } else {
        memset(st, 0, sizeof(*st));
        st->st_mode = e->is_symlink ? (S_IFLNK | 0777)
                                    : (fs_entry_type(e) | e->mode);
        st->st_rdev = (dev_t)e->rdev;
        st->st_nlink = 1;
        st->st_size = e->size;
        if (e->is_symlink) { /* lstat's size of a link: its target's length */
            const char *target =
                lakefs_metadata_get(&e->metadata, LISTING_KEY_SYMLINK_TARGET);
            st->st_size = target ? (off_t)strlen(target) : 0;
        }
        st->st_blocks = (e->size + 511) / 512;
        st->st_blksize = fs->block_size;
        st->st_mtime = st->st_ctime = st->st_atime = (time_t)e->mtime;
        st->st_uid = fs->uid;
        st->st_gid = fs->gid;
    }
    if (e->has_owner) {
        st->st_uid = e->uid;
        st->st_gid = e->gid;
    }
}

static void stat_node(lakefuse_fs *fs, const tree_node *n, struct stat *st)
{
    switch (n->kind) {
    case TREE_FILE:
        stat_entry(fs, &n->entry, st);
        break;
    case TREE_DIR:
        if (n->ref_root)
            stat_dir(fs, st, n->ref->commit_time, 0755);
        else
            stat_entry(fs, &n->entry, st);
        break;
    case TREE_CONTROL_DIR:
        stat_dir(fs, st, 0, control_mode(fs, n));
        break;
    case TREE_CONTROL_FILE:
        /* Generated at open and read with direct I/O: size 0, as in /proc. */
        memset(st, 0, sizeof(*st));
        st->st_mode = S_IFREG | control_mode(fs, n);
        st->st_nlink = 1;
        st->st_uid = fs->uid;
        st->st_gid = fs->gid;
        st->st_mtime = st->st_ctime = st->st_atime = time(NULL);
        break;
    default:
        stat_dir(fs, st, 0, 0755);
        break;
    }
}

/* A directory's mode, owner (when recorded) and mtime (when set), as its
 * marker holds them. */
static void stat_marker_attrs(struct stat *st, uint32_t mode, bool has_owner,
                              uid_t uid, gid_t gid, int64_t mtime)
{
    st->st_mode = S_IFDIR | (mode & 07777);
    if (has_owner) {
        st->st_uid = uid;
        st->st_gid = gid;
    }
    if (mtime != 0) /* 0: none recorded; before 1970 is negative */
        st->st_mtime = st->st_ctime = st->st_atime = (time_t)mtime;
}

/* A directory whose marker is still to upload (-o async_close: a mkdir,
 * or a chmod, chown or utime queued) is what the marker will hold: a
 * landing of an earlier upload of it may have put older attributes in
 * the cached listing meanwhile. */
static void stat_overlay_marker(lakefuse_fs *fs, const tree_node *n,
                                struct stat *st)
{
    if (writer_idle(fs->writer))
        return;
    char *marker = fs_dir_key(n->ref, n->key);
    wfile *w = marker ? writer_find(fs->writer, n->ref->repo,
                                    n->ref->api_ref, marker)
                      : NULL;
    free(marker);
    if (!w)
        return;
    int64_t mtime;
    uint32_t mode;
    bool has_owner;
    uid_t uid;
    gid_t gid;
    if (wfile_unsent_owner(w, &mtime, &mode, &has_owner, &uid, &gid) && mode)
        stat_marker_attrs(st, mode, has_owner, uid, gid, mtime);
    wfile_release(w);
}

int fs_dir_owner(lakefuse_fs *fs, const tree_node *n, struct stat *st)
{
    stat_node(fs, n, st);
    if (n->kind != TREE_DIR || n->ref_root)
        return 0;
    fs_entry marker;
    int rc = tree_dir_marker(fs->tree, n, &marker);
    if (rc < 0)
        return rc;
    if (rc > 0) {
        stat_marker_attrs(st, marker.mode, marker.has_owner, marker.uid,
                          marker.gid, marker.mtime);
        fs_entry_free(&marker);
    }
    stat_overlay_marker(fs, n, st);
    return 0;
}

/* A directory in a ref: its link count is 2 plus the subdirectories its
 * listing shows, and its marker's lakectl keys give its mode, owner and
 * mtime. Costs the directory's listing, which any use of it needs. A
 * listing that fails is the stat's error: the parent's entry lacks the
 * mode and owner, and the kernel would keep those for attr_timeout. */
static int stat_dir_listing(lakefuse_fs *fs, const tree_node *n,
                            struct stat *st)
{
    fs_entry marker;
    bool has_marker;
    size_t subdirs;
    int rc = tree_dir_info(fs->tree, n, &marker, &has_marker, &subdirs);
    if (rc == -ENOENT)
        return 0; /* gone meanwhile: the parent's entry stands */
    if (rc)
        return rc;
    st->st_nlink = (nlink_t)(2 + subdirs);
    if (!has_marker || n->ref_root)
        goto out;
    stat_marker_attrs(st, marker.mode, marker.has_owner, marker.uid,
                      marker.gid, marker.mtime);
out:
    if (has_marker)
        fs_entry_free(&marker);
    if (!n->ref_root)
        stat_overlay_marker(fs, n, st);
    return 0;
}

/* The times kept in memory for rel_key of ref (fs_times.h). */
static void stat_kept_times(lakefuse_fs *fs, const tree_ref *ref,
                            const char *dir, const char *name,
                            struct stat *st)
{
    if (!ref || fs_times_idle(fs->times))
        return;
    char *key = NULL;
    if (asprintf(&key, "%s%s%s%s", ref->prefix, dir, dir[0] && name ? "/" : "",
                 name ? name : "") < 0)
        return;
    fs_times_apply(fs->times, ref->repo, ref->api_ref, key, st);
    free(key);
}

/* The wfile of a node whose path is open for writing, or NULL. */
static wfile *open_wfile(lakefuse_fs *fs, const tree_node *n)
{
    if (!n->ref || !n->ref->is_branch || !n->key || writer_idle(fs->writer))
        return NULL;
    return fs_node_wfile(fs, n);
}

/* A file open for writing shows its staged size, times, mode and owner. */
static void stat_overlay_wfile(wfile *w, struct stat *st)
{
    int64_t size, mtime;
    uint32_t mode;
    wfile_attrs(w, &size, &mtime, &mode);
    st->st_size = size;
    st->st_blocks = (size + 511) / 512;
    st->st_mtime = st->st_ctime = (time_t)mtime;
    if (mode)
        st->st_mode = S_IFREG | (mode & 07777);
    fs_stat_wfile_owner(w, st);
}

void fs_stat_wfile_owner(wfile *w, struct stat *st)
{
    bool has_owner;
    uid_t uid;
    gid_t gid;
    wfile_owner(w, &has_owner, &uid, &gid);
    if (has_owner) { /* a chown of an unsent file is in it alone */
        st->st_uid = uid;
        st->st_gid = gid;
    }
}

/* A file created here and not uploaded yet is missing from a listing
 * fetched again meanwhile: it exists while its wfile does. */
static int stat_unlisted_wfile(lakefuse_fs *fs, const char *path,
                               struct stat *st)
{
    if (writer_idle(fs->writer)) /* the usual ENOENT costs nothing more */
        return -ENOENT;
    tree_node parent;
    char *name = NULL;
    if (tree_resolve_parent(fs->tree, path, &parent, &name) != 0)
        return -ENOENT;
    wfile *w = NULL;
    char *rel = parent.kind == TREE_DIR ? tree_child_key(&parent, name)
                                        : NULL;
    char *key = NULL;
    if (rel && parent.ref->is_branch &&
        asprintf(&key, "%s%s", parent.ref->prefix, rel) >= 0)
        w = writer_find(fs->writer, parent.ref->repo, parent.ref->api_ref,
                        key);
    free(key);
    free(rel);
    free(name);
    tree_node_free(&parent);
    if (!w)
        return -ENOENT;
    fs_entry e = {.mode = LISTING_DEFAULT_FILE_MODE};
    stat_entry(fs, &e, st);
    stat_overlay_wfile(w, st);
    wfile_release(w);
    return 0;
}

static int stat_open_handle(struct fuse_file_info *fi, struct stat *st,
                            nlink_t nlink)
{
    open_file *of = fi ? (open_file *)(uintptr_t)fi->fh : NULL;
    struct stat copy;
    bool pinned = of && of->data && of->pinned_fd >= 0 &&
                  fstat(of->pinned_fd, &copy) == 0;
    if (!of || (!of->w && !pinned && !of->pinned_w))
        return -ESTALE;
    fs_entry e = {.mode = LISTING_DEFAULT_FILE_MODE};
    stat_entry(fs_current(), &e, st);
    if (of->w || of->pinned_w) {
        stat_overlay_wfile(of->w ? of->w : of->pinned_w, st);
    } else { /* a reader whose name went: its private copy */
        st->st_size = copy.st_size;
        st->st_blocks = (copy.st_size + 511) / 512;
    }
    st->st_nlink = nlink;
    return 0;
}

/* Compares a mount point field of /proc/self/mountinfo (spaces, tabs,
 * newlines and backslashes written as \ooo) with path. */
static bool mountinfo_path_is(const char *field, const char *path)
{
    while (*field && *path) {
        char c = *field;
        if (c == '\\' && field[1] >= '0' && field[1] <= '3' && field[2] >= '0' &&
            field[2] <= '7' && field[3] >= '0' && field[3] <= '7') {
            c = (char)((field[1] - '0') * 64 + (field[2] - '0') * 8 +
                       (field[3] - '0'));
            field += 3;
        }
        if (c != *path)
            return false;
        field++;
        path++;
    }
    return *field == '\0' && *path == '\0';
}

/* The kernel reads ahead at most the mount's read_ahead_kb, 128 KiB unless
 * raised, and FUSE's init can only lower it (the kernel sets it to the
 * smaller of its default and our answer when it reads the init reply): a
 * sequential read of a large file reaches lakefuse as 128 KiB requests,
 * eight round trips per cache block. So once init is done (at the first
 * getattr) root raises the mount's window to kb through sysfs
 * (/sys/class/bdi/MAJ:MIN/read_ahead_kb; the device number comes from
 * /proc/self/mountinfo, so nothing asks the mount itself). Elsewhere the
 * kernel's default stays; either way reads are correct. */
static void raise_readahead(lakefuse_fs *fs, const char *mountpoint,
                            unsigned kb)
{
    FILE *f = mountpoint ? fopen("/proc/self/mountinfo", "re") : NULL;
    if (!f)
        return;
    char *line = NULL, dev[64] = "";
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        /* ID PARENT MAJ:MIN ROOT MOUNTPOINT ... */
        char *save = NULL, *field[5] = {0};
        char *tok = strtok_r(line, " ", &save);
        for (int i = 0; tok && i < 5; i++, tok = strtok_r(NULL, " ", &save))
            field[i] = tok;
        if (field[4] && mountinfo_path_is(field[4], mountpoint) &&
            strlen(field[2]) < sizeof(dev))
            strcpy(dev, field[2]); /* the last one: the newest mount */
    }
    free(line);
    fclose(f);
    if (!dev[0] || strspn(dev, "0123456789:") != strlen(dev))
        return;
    char path[128];
    snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
    FILE *ra = fopen(path, "we");
    bool ok = ra && fprintf(ra, "%u\n", kb) > 0;
    if (ra && fclose(ra) != 0)
        ok = false;
    logger_write(fs->log, ok ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO,
                 ok ? "read-ahead of %s raised to %u KiB"
                    : "read-ahead of %s left at the kernel's default "
                      "(raising it to %u KiB needs root)",
                 mountpoint, kb);
}

/* At least two cache blocks, in whole requests of FS_MAX_READ_BYTES (a
 * window that is not a multiple of them ends in a small request). */
static unsigned readahead_kb(uint32_t block_size)
{
    uint64_t want = 2 * (uint64_t)block_size;
    if (want < 4 * (uint64_t)FS_MAX_READ_BYTES)
        want = 4 * (uint64_t)FS_MAX_READ_BYTES;
    uint64_t requests = (want + FS_MAX_READ_BYTES - 1) / FS_MAX_READ_BYTES;
    return (unsigned)(requests * FS_MAX_READ_BYTES / 1024);
}

/* The once of fs->readahead_once: the read-ahead window above. */
static void raise_readahead_once(void)
{
    lakefuse_fs *fs = fs_current();
    raise_readahead(fs, fs->mountpoint, readahead_kb(fs->block_size));
}

/* fs_internal.h */
bool fs_landed_on(lakefuse_fs *fs, const tree_node *n, uint64_t since)
{
    if (!n->ref || !n->ref->is_branch || !n->key ||
        writer_landed(fs->writer) == since)
        return false;
    char *key = tree_object_key(n);
    bool landed = !key || writer_landed_since(fs->writer, n->ref->repo,
                                              n->ref->api_ref, key, since);
    free(key);
    return landed;
}

/* One try of getattr; *again: its listing may be older than the writer's
 * answer (an upload of the file landed in between): try again. */
static int getattr_once(lakefuse_fs *fs, const char *path, struct stat *st,
                        bool *again)
{
    *again = false;
    uint64_t since = writer_landed(fs->writer); /* before the listing */
    tree_node n;
    int rc = tree_resolve_stat(fs->tree, path, &n);
    if (rc == -ENAMETOOLONG && fs_hidden_name(path))
        /* libfuse probes a free .fuse_hidden name before it hides a file
         * unlinked while open; that name lives in memory, never on lakeFS,
         * so lakeFS's key limit does not apply: anything but ENOENT here
         * would make the unlink EBUSY in a deep directory. */
        return -ENOENT;
    if (rc == -ENOENT) {
        rc = stat_unlisted_wfile(fs, path, st);
        /* Unlisted then, and its wfile gone now: it may have landed. */
        *again = rc == -ENOENT && writer_landed(fs->writer) != since;
        return rc;
    }
    if (rc)
        return rc;
    stat_node(fs, &n, st);
    /* Until it is uploaded, a file being written is what it holds here. */
    wfile *w = n.kind == TREE_FILE ? open_wfile(fs, &n) : NULL;
    bool overlaid = false;
    if (w) {
        overlaid = wfile_dirty(w);
        if (overlaid)
            stat_overlay_wfile(w, st);
        wfile_release(w);
    }
    if (n.kind == TREE_FILE && !overlaid && fs_landed_on(fs, &n, since))
        *again = true;
    if (n.kind == TREE_DIR)
        rc = stat_dir_listing(fs, &n, st);
    if (rc == 0 && (n.kind == TREE_FILE || n.kind == TREE_DIR) && n.key)
        stat_kept_times(fs, n.ref, n.key, NULL, st);
    tree_node_free(&n);
    return rc;
}

/* Tries of getattr_once: each further one needs another upload of the
 * same file to land during the previous one. */
#define GETATTR_TRIES 16

static int getattr_path(const char *path, struct stat *st,
                        struct fuse_file_info *fi)
{
    lakefuse_fs *fs = fs_current();
    pthread_once(&fs->readahead_once, raise_readahead_once);
    if (!path) /* a file unlinked while open: only its handle knows it */
        return stat_open_handle(fi, st, 0);
    if (fs_hidden_name(path) && fs_hidden_getattr(fs, path, st) == 0)
        return 0;
    bool again = true;
    int rc = 0;
    for (int i = 0; again && i < GETATTR_TRIES; i++) {
        memset(st, 0, sizeof(*st));
        rc = getattr_once(fs, path, st, &again);
    }
    /* A descriptor being written knows its file without lakeFS: libfuse
     * asks this right after a create, and a failure there would undo the
     * create in the program's eyes (EIO) while the new file stays. */
    open_file *of = fi ? (open_file *)(uintptr_t)fi->fh : NULL;
    if (rc && rc != -ENOENT && of && of->w && stat_open_handle(fi, st, 1) == 0)
        return 0;
    return rc;
}

/* libfuse 3's private layouts that fs_request_unique reads: its
 * per-thread context (the public fuse_context, then the request served)
 * and the head of a request (its session, the kernel's unique id, a
 * counter, a lock, then the public fuse_ctx). */
typedef struct lib_context {
    struct fuse_context ctx;
    fuse_req_t req;
} lib_context;

typedef struct lib_req_head {
    void *se;
    uint64_t unique;
    int ctr;
    pthread_mutex_t lock;
    struct fuse_ctx ctx;
} lib_req_head;

uint64_t fs_request_unique(void)
{
    struct fuse_context *c = fuse_get_context();
    fuse_req_t req = c ? ((const lib_context *)(const void *)c)->req : NULL;
    if (!req)
        return 0;
    /* The layout holds when the public fuse_req_ctx() finds the request's
     * context where it puts it, carrying the caller libfuse gave us. */
    const struct fuse_ctx *rc = fuse_req_ctx(req);
    if ((const char *)rc !=
            (const char *)req + offsetof(lib_req_head, ctx) ||
        rc->pid != c->pid || rc->uid != c->uid || rc->gid != c->gid)
        return 0;
    return ((const lib_req_head *)(const void *)req)->unique;
}

static int op_getattr(const char *path, struct stat *st,
                      struct fuse_file_info *fi)
{
    int rc = getattr_path(path, st, fi);
    if (rc == -ENOENT && path && fs_hidden_name(path))
        fs_hidden_probed(path); /* libfuse may be about to hide a file */
    return rc;
}

int fs_stat_path(const char *path, struct stat *st)
{
    return getattr_path(path, st, NULL);
}

/* ---- handles given to FUSE ---- */

/* The struct of type holding handle h as its member `open`. */
#define HANDLE_OWNER(h, type) \
    ((type *)(void *)((char *)(h) - offsetof(type, open)))

static void handles_add(lakefuse_fs *fs, fs_handle **list, fs_handle *h)
{
    pthread_mutex_lock(&fs->open_files_lock);
    DLIST_HEAD_PUSH(*list, h, prev, next);
    pthread_mutex_unlock(&fs->open_files_lock);
}

static void handles_remove(lakefuse_fs *fs, fs_handle **list, fs_handle *h)
{
    pthread_mutex_lock(&fs->open_files_lock);
    DLIST_HEAD_UNLINK(*list, h, prev, next);
    pthread_mutex_unlock(&fs->open_files_lock);
}

/* The first handle of list, or NULL. */
static fs_handle *handles_first(lakefuse_fs *fs, fs_handle **list)
{
    pthread_mutex_lock(&fs->open_files_lock);
    fs_handle *h = *list;
    pthread_mutex_unlock(&fs->open_files_lock);
    return h;
}

/* ---- directories ---- */

/* fi->fh of an open directory: its node, on fs->open_dirs until
 * releasedir, and what its reads resume from. libfuse serialises the
 * requests of one handle. */
typedef struct open_dir {
    tree_node node;
    fs_handle open;
    entryset *entries; /* taken at offset 0; NULL before the first read */
    entryset_pos pos;  /* where the last read started in it */
    uint64_t landed;   /* writer_landed() before the entries were taken */
} open_dir;

/* readdir's work, for .lakefs/stats (fs_ops.h). */
void fs_readdir_get_stats(lakefuse_fs *fs, fs_readdir_stats *out)
{
    out->requests = fs->counters.readdir_requests;
    out->entries = fs->counters.readdir_entries;
    out->steps = fs->counters.readdir_steps;
    out->snapshots = fs->counters.readdir_snapshots;
}

/* Offsets given to the kernel: "." is 1, ".." 2, entry i of the
 * snapshot i + 3; a read from offset o goes on with entry o - 2. */
#define DIR_FIRST_OFFSET 3

typedef struct fill_ctx {
    lakefuse_fs *fs;
    void *buf;
    fuse_fill_dir_t filler;
    const tree_node *dir;
    uint64_t landed; /* open_dir's */
} fill_ctx;

/* true when name, in the directory being read, is open for writing, or
 * was uploaded since the entries were taken (writer.h, Landings): the
 * entry may be older than the file. */
static bool writing_here(fill_ctx *f, const char *name)
{
    const tree_node *d = f->dir;
    if (!d->ref || !d->ref->is_branch || !d->key)
        return false;
    bool landed = writer_landed(f->fs->writer) != f->landed;
    if (!landed && writer_idle(f->fs->writer))
        return false;
    char *rel = tree_child_key(d, name);
    char *key = rel ? tree_object_key(&(tree_node){.ref = d->ref, .key = rel})
                    : NULL;
    bool unsure = key == NULL; /* no memory: let getattr answer */
    wfile *w = key ? writer_find(f->fs->writer, d->ref->repo, d->ref->api_ref,
                                 key)
                   : NULL;
    if (w) {
        unsure = true;
        wfile_release(w);
    } else if (key && landed) {
        unsure = writer_landed_since(f->fs->writer, d->ref->repo,
                                     d->ref->api_ref, key, f->landed);
    }
    free(rel);
    free(key);
    return unsure;
}

static int fill_entry(void *ctx, const fs_entry *e, size_t index)
{
    fill_ctx *f = ctx;
    f->fs->counters.readdir_entries++;
    if (!tree_list_shows(f->dir, e))
        return 0;
    off_t off = (off_t)(index + DIR_FIRST_OFFSET);
    struct stat st;
    stat_entry(f->fs, e, &st);
    /* A subdirectory's attributes come from its own listing (getattr):
     * its type alone here, so the kernel asks when it needs them. */
    if (f->dir->kind == TREE_DIR && e->is_dir)
        return f->filler(f->buf, e->name, &st, off, 0) ? 1 : 0;
    if (f->dir->kind == TREE_DIR)
        stat_kept_times(f->fs, f->dir->ref, f->dir->key, e->name, &st);
    /* A file open for writing here: its attributes are what it holds, not
     * what the listing says; getattr gives those (with no attributes the
     * kernel keeps its own and asks). */
    if (f->dir->kind == TREE_DIR && !e->is_dir && writing_here(f, e->name))
        return f->filler(f->buf, e->name, &st, off, 0) ? 1 : 0;
    /* With an offset per entry libfuse sends each kernel request's worth
     * as we fill it, attributes included (FUSE_FILL_DIR_PLUS: the kernel
     * then asks no lookup per entry); without one it would keep the
     * whole listing and walk it from the start for every request. */
    return f->filler(f->buf, e->name, &st, off, FUSE_FILL_DIR_PLUS) ? 1 : 0;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
                      off_t offset, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags)
{
    (void)path;
    (void)flags;
    lakefuse_fs *fs = fs_current();
    open_dir *d = (open_dir *)(uintptr_t)fi->fh;
    const tree_node *n = &d->node;
    fs->counters.readdir_requests++;
    if (offset < 0)
        return -EINVAL;
    if (offset < 1 && filler(buf, ".", NULL, 1, 0))
        return 0;
    if (offset < 2 && filler(buf, "..", NULL, 2, 0))
        return 0;
    size_t from = offset < 2 ? 0 : (size_t)offset - 2;
    if (n->kind == TREE_CONTROL_DIR) {
        /* diff/ lists nothing: any ref opens by name. */
        size_t i = 0;
        for (int c = TREE_CONTROL_NONE + 1;
             n->control != TREE_CONTROL_DIFF && c < TREE_CONTROL_COUNT; c++) {
            if (!tree_control_exists((tree_control)c, n->ref != NULL))
                continue;
            if (i++ < from)
                continue;
            if (filler(buf, tree_control_name((tree_control)c), NULL,
                       (off_t)(i - 1 + DIR_FIRST_OFFSET), 0))
                break;
        }
        return 0;
    }
    /* Offset 0 is a first read or a rewind: the listing as it is now.
     * Later reads go on in the same snapshot, from where the last one
     * stopped (entryset_pos), so that reading n entries costs O(n). */
    if (offset == 0 || !d->entries) {
        if (d->entries)
            entryset_release(d->entries);
        d->entries = NULL;
        d->pos = (entryset_pos){0, 0};
        d->landed = writer_landed(fs->writer);
        int rc = tree_snapshot(fs->tree, n, &d->entries);
        if (rc)
            return rc;
        fs->counters.readdir_snapshots++;
    }
    fill_ctx ctx = {fs, buf, filler, n, d->landed};
    size_t steps = 0;
    int rc = entryset_foreach_from(d->entries, from, &d->pos, &steps,
                                   fill_entry, &ctx);
    fs->counters.readdir_steps += steps;
    return rc > 0 ? 0 : rc; /* > 0: the filler's buffer is full */
}

static int op_opendir(const char *path, struct fuse_file_info *fi)
{
    lakefuse_fs *fs = fs_current();
    open_dir *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    tree_node *n = &d->node;
    int rc = tree_resolve(fs->tree, path, n);
    if (rc) {
        free(d);
        return rc;
    }
    if (n->kind == TREE_FILE || n->kind == TREE_CONTROL_FILE) {
        tree_node_free(n);
        free(d);
        return -ENOTDIR;
    }
    /* A fixed ref's directories never change: let the kernel keep them. */
    if (n->kind == TREE_DIR && !n->ref->is_branch) {
        fi->cache_readdir = 1;
        fi->keep_cache = 1;
    }
    fi->fh = (uint64_t)(uintptr_t)d;
    handles_add(fs, &fs->open_dirs, &d->open);
    return 0;
}

static void release_open_dir(lakefuse_fs *fs, open_dir *d)
{
    handles_remove(fs, &fs->open_dirs, &d->open);
    tree_node_free(&d->node);
    if (d->entries)
        entryset_release(d->entries);
    free(d);
}

static int op_releasedir(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    release_open_dir(fs_current(), (open_dir *)(uintptr_t)fi->fh);
    return 0;
}

/* ---- reading files ---- */

static uint64_t hash_path(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* true when path was last opened with the same checksum (keep the kernel's
 * cached pages); records checksum for the next open. */
static bool same_content_as_last_open(lakefuse_fs *fs, const char *path,
                                      const char *checksum)
{
    uint64_t h = hash_path(path);
    fs_open_memory *slot = &fs->open_memory[h % FS_OPEN_MEMORY_SLOTS];
    bool fits = strlen(checksum) < sizeof(slot->checksum);
    pthread_mutex_lock(&fs->open_memory_lock);
    bool same = fits && slot->path_hash == h && slot->checksum[0] &&
                strcmp(slot->checksum, checksum) == 0;
    slot->path_hash = h;
    snprintf(slot->checksum, sizeof(slot->checksum), "%s",
             fits ? checksum : "");
    pthread_mutex_unlock(&fs->open_memory_lock);
    return same;
}

/* -EAGAIN (nothing opened) when an upload of the file landed after since,
 * the writer's landing count taken before n was resolved: its wfile may
 * have left the writer's table between the resolve and the open, and n's
 * listing entry may be the object before that upload, so the open would
 * show (or, for writing, copy in and build on) older bytes than the file
 * holds (writer.h, Landings). The caller resolves again. last: open what
 * was found anyway (bounded tries). */
static int open_object(lakefuse_fs *fs, const char *path, const tree_node *n,
                       open_file *of, struct fuse_file_info *fi,
                       uint64_t since, bool last)
{
    bool writing = (fi->flags & O_ACCMODE) != O_RDONLY ||
                   (fi->flags & O_TRUNC);
    if (writing) /* writer_open makes the same check */
        return fs_write_open(fs, n, fi, of, last ? NULL : &since);
    /* Being written in this mount: read the staged bytes. */
    if ((of->w = open_wfile(fs, n)) != NULL)
        return 0;
    of->data = fs_open_object_reader(fs, n);
    if (!of->data)
        return -ENOMEM;
    int rc = fs_readers_add(fs, of, n);
    if (rc == 0 && !last && fs_landed_on(fs, n, since))
        rc = -EAGAIN;
    if (rc) {
        fs_readers_remove(fs, of);
        reader_close(of->data);
        memset(of, 0, sizeof(*of)); /* as new, for the caller's next try */
        return rc;
    }
    const char *checksum = n->entry.checksum ? n->entry.checksum : "";
    bool same = same_content_as_last_open(fs, path, checksum);
    fi->keep_cache = !n->ref->is_branch || same;
    return 0;
}

/* A control file: rendered at open for reading; for writing, each write
 * is one request (control_write). */
static int open_control(lakefuse_fs *fs, const tree_node *n, open_file *of,
                        struct fuse_file_info *fi, bool writing)
{
    fi->direct_io = 1;
    if (writing) {
        if (!(control_mode(fs, n) & 0200))
            return n->ref && !n->ref->is_branch ? -EROFS : -EACCES;
        of->control = calloc(1, sizeof(*of->control));
        if (!of->control)
            return -ENOMEM;
        of->control->kind = n->kind;
        of->control->control = n->control;
        of->control->ref = n->ref;
        if ((fi->flags & O_ACCMODE) == O_WRONLY)
            return 0;
    }
    return control_render(fs, n, &of->text, &of->text_len);
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
    lakefuse_fs *fs = fs_current();
    bool writing = (fi->flags & O_ACCMODE) != O_RDONLY ||
                   (fi->flags & O_TRUNC);
    open_file *of = calloc(1, sizeof(*of));
    if (!of)
        return -ENOMEM;
    int rc = -EAGAIN;
    for (int tries = 0; rc == -EAGAIN; tries++) {
        uint64_t since = writer_landed(fs->writer); /* before the listing */
        tree_node n;
        rc = tree_resolve(fs->tree, path, &n);
        if (rc)
            break;
        if (n.kind == TREE_FILE) {
            if (tries == 0)
                fs_count_file_request(fs, FS_REQ_OPEN);
            rc = open_object(fs, path, &n, of, fi, since,
                             tries + 1 >= FS_OPEN_TRIES);
        } else if (n.kind == TREE_CONTROL_FILE) {
            rc = open_control(fs, &n, of, fi, writing);
        } else {
            rc = -EISDIR;
        }
        tree_node_free(&n);
    }
    if (rc) {
        free(of);
        return rc;
    }
    /* Closing a descriptor that cannot write has nothing to upload: the
     * kernel skips its FLUSH (one round trip less per close of a file
     * read, such as each file of a `cat`). */
    if (!writing)
        fi->noflush = 1;
    fi->fh = (uint64_t)(uintptr_t)of;
    fs_open_files_add(fs, of);
    return 0;
}

static int op_read(const char *path, char *buf, size_t size, off_t offset,
                   struct fuse_file_info *fi)
{
    (void)path;
    open_file *of = (open_file *)(uintptr_t)fi->fh;
    if (offset < 0)
        return -EINVAL;
    if (of->data)
        return (int)fs_readers_read(fs_current(), of, buf, size, offset);
    if (of->w)
        return (int)wfile_read(of->w, buf, size, offset);
    if ((size_t)offset >= of->text_len)
        return 0;
    size_t n = of->text_len - (size_t)offset;
    if (n > size)
        n = size;
    memcpy(buf, of->text + offset, n);
    return (int)n;
}

void fs_open_files_add(lakefuse_fs *fs, open_file *of)
{
    handles_add(fs, &fs->open_files, &of->open);
}

uint64_t fs_files_open_for_writing(lakefuse_fs *fs)
{
    uint64_t n = 0;
    pthread_mutex_lock(&fs->open_files_lock);
    for (fs_handle *h = fs->open_files; h != NULL; h = h->next)
        n += HANDLE_OWNER(h, open_file)->writer;
    pthread_mutex_unlock(&fs->open_files_lock);
    return n;
}

static void release_open_file(lakefuse_fs *fs, open_file *of);

void fs_release_leftover_files(lakefuse_fs *fs)
{
    fs_handle *h;
    while ((h = handles_first(fs, &fs->open_files)))
        release_open_file(fs, HANDLE_OWNER(h, open_file));
    while ((h = handles_first(fs, &fs->open_dirs)))
        release_open_dir(fs, HANDLE_OWNER(h, open_dir));
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    open_file *of = (open_file *)(uintptr_t)fi->fh;
    lakefuse_fs *fs = fs_current();
    if (of->data || of->w)
        fs_count_file_request(fs, FS_REQ_RELEASE);
    release_open_file(fs, of);
    return 0;
}

static void release_open_file(lakefuse_fs *fs, open_file *of)
{
    handles_remove(fs, &fs->open_files, &of->open);
    if (of->data) {
        fs_readers_remove(fs, of);
        reader_close(of->data);
    }
    if (of->w)
        wfile_release(of->w);
    if (of->control) {
        tree_node_free(of->control);
        free(of->control);
    }
    free(of->text);
    free(of);
}

static int op_readlink(const char *path, char *buf, size_t size)
{
    lakefuse_fs *fs = fs_current();
    tree_node n;
    int rc = tree_resolve(fs->tree, path, &n);
    if (rc)
        return rc;
    const char *target =
        n.kind == TREE_FILE && n.entry.is_symlink
            ? lakefs_metadata_get(&n.entry.metadata, LISTING_KEY_SYMLINK_TARGET)
            : NULL;
    if (!target)
        rc = -EINVAL;
    else if (size > 0)
        snprintf(buf, size, "%s", target);
    tree_node_free(&n);
    return rc;
}

/* ---- extended attributes ---- */

/* Called for each attribute; value NULL when only names are wanted. */
typedef int (*xattr_fn)(void *ctx, const char *name, const char *value);

static int emit_xattr(xattr_fn fn, void *ctx, const char *suffix,
                      const char *value)
{
    char name[512];
    int len = snprintf(name, sizeof(name), "%s%s", XATTR_PREFIX, suffix);
    if (len < 0 || (size_t)len >= sizeof(name))
        return 0; /* a metadata key too long for an xattr name */
    return fn(ctx, name, value);
}

static int meta_xattrs(const lakefs_metadata *md, xattr_fn fn, void *ctx)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < md->count; i++) {
        char suffix[512];
        snprintf(suffix, sizeof(suffix), "meta.%s", md->items[i].key);
        rc = emit_xattr(fn, ctx, suffix, md->items[i].value);
    }
    return rc;
}

static int file_xattrs(const fs_entry *e, xattr_fn fn, void *ctx)
{
    char mtime[32];
    snprintf(mtime, sizeof(mtime), "%" PRId64, e->mtime);
    /* A presigned URL's query is its signature: never shown. */
    char *address = e->physical_address ? strdup(e->physical_address) : NULL;
    if (address && strchr(address, '?'))
        *strchr(address, '?') = '\0';
    int rc = emit_xattr(fn, ctx, "checksum", e->checksum ? e->checksum : "");
    if (rc == 0 && address)
        rc = emit_xattr(fn, ctx, "physical_address", address);
    if (rc == 0 && e->content_type)
        rc = emit_xattr(fn, ctx, "content_type", e->content_type);
    if (rc == 0)
        rc = emit_xattr(fn, ctx, "mtime", mtime);
    if (rc == 0)
        rc = meta_xattrs(&e->metadata, fn, ctx);
    free(address);
    return rc;
}

static int node_xattrs(lakefuse_fs *fs, const tree_node *n, bool values,
                       xattr_fn fn, void *ctx)
{
    /* The kernel answers user.* reads on a symlink itself (ENODATA, as
     * no filesystem may hold user attributes on one): list none there. */
    if (n->kind == TREE_FILE && n->entry.is_symlink)
        return 0;
    if (n->kind == TREE_FILE)
        return file_xattrs(&n->entry, fn, ctx);
    if (n->kind == TREE_DIR && !n->ref_root) { /* its marker's metadata */
        lakefs_metadata md;
        int rc = fs_dir_metadata(fs, n, &md);
        if (rc == 0)
            rc = meta_xattrs(&md, fn, ctx);
        lakefs_metadata_free(&md);
        return rc;
    }
    if (n->kind != TREE_DIR)
        return 0;
    if (!values)
        return emit_xattr(fn, ctx, "commit_id", NULL);
    char *head = NULL;
    int rc = tree_ref_head(fs->tree, n->ref, &head);
    if (rc == 0)
        rc = emit_xattr(fn, ctx, "commit_id", head);
    free(head);
    return rc;
}

typedef struct xattr_get {
    const char *name;
    char *buf;
    size_t size;
    int result; /* length, or -errno; -ENODATA until found */
} xattr_get;

static int xattr_get_one(void *ctx, const char *name, const char *value)
{
    xattr_get *g = ctx;
    if (strcmp(name, g->name) != 0)
        return 0;
    /* A metadata value's U+0000 (jsonnul.h) is the NUL byte it was. */
    size_t len = jsonnul_to_bytes(value, g->buf, g->size);
    if (g->size != 0 && len > g->size)
        g->result = -ERANGE;
    else
        g->result = (int)len;
    return 1;
}

void fs_xattr_get_stats(lakefuse_fs *fs, fs_xattr_stats *out)
{
    out->requests = fs->counters.xattr_requests;
    out->unsupported = fs->counters.xattr_unsupported;
}

/* path resolved with the user metadata its staged bytes will carry
 * (fs_overlay_staged_metadata); resolved again when an upload of the file
 * landed in between, as getattr_once does: the entry read before that
 * landing lacks the keys the upload carried, and the file no longer shows
 * them staged. */
static int resolve_with_metadata(lakefuse_fs *fs, const char *path,
                                 tree_node *n)
{
    if (fs_hidden_name(path)) { /* fgetxattr of a file unlinked while open */
        memset(n, 0, sizeof(*n));
        n->kind = TREE_FILE;
        int rc = fs_hidden_entry(fs, path, &n->entry);
        if (rc != -ENOENT)
            return rc;
    }
    for (int tries = 1;; tries++) {
        uint64_t since = writer_landed(fs->writer); /* before the listing */
        int rc = tree_resolve(fs->tree, path, n);
        if (rc)
            return rc;
        bool overlaid = fs_overlay_staged_metadata(fs, n);
        if (n->kind != TREE_FILE || overlaid || tries >= GETATTR_TRIES ||
            !fs_landed_on(fs, n, since))
            return 0;
        tree_node_free(n);
    }
}

static int get_xattr(lakefuse_fs *fs, const char *path, const char *name,
                     char *value, size_t size);

static int op_getxattr(const char *path, const char *name, char *value,
                       size_t size)
{
    lakefuse_fs *fs = fs_current();
    fs->counters.xattr_requests++;
    return get_xattr(fs, path, name, value, size);
}

/* setxattr's XATTR_CREATE (the name must not be there: EEXIST) and
 * XATTR_REPLACE (it must: ENODATA), judged on what getxattr shows. The
 * kernel holds the inode's lock across a setxattr, so none of this
 * mount's comes in between. */
static int op_setxattr(const char *path, const char *name, const char *value,
                       size_t size, int flags)
{
    if (path && (flags & (XATTR_CREATE | XATTR_REPLACE)) &&
        strncmp(name, "user.", 5) == 0) { /* others: ENOTSUP below */
        int got = get_xattr(fs_current(), path, name, NULL, 0);
        if (got >= 0 && (flags & XATTR_CREATE))
            return -EEXIST;
        if (got == -ENODATA && (flags & XATTR_REPLACE))
            return -ENODATA;
        if (got < 0 && got != -ENODATA && got != -EOPNOTSUPP)
            return got;
    }
    return fs_write_setxattr(path, name, value, size, flags);
}

static int get_xattr(lakefuse_fs *fs, const char *path, const char *name,
                     char *value, size_t size)
{
    /* Only user.* holds anything here (user.lakefs.*; setxattr refuses
     * every other name with ENOTSUP). Another namespace is refused as not
     * supported rather than answered "no such attribute": GNU ls -l reads
     * security.selinux and system.posix_acl_access of every file, the
     * kernel forwards both every time (two FUSE round trips a file, most
     * of an ls -l of a large directory), and ls, like cp and tar, stops
     * asking a file system once it answers EOPNOTSUPP. The kernel's own
     * reads (security.capability on write and exec) take EOPNOTSUPP as
     * no attribute, as they take ENODATA. */
    if (strncmp(name, "user.", 5) != 0) {
        fs->counters.xattr_unsupported++;
        return -EOPNOTSUPP;
    }
    if (strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)) != 0)
        return -ENODATA;
    tree_node n;
    int rc = resolve_with_metadata(fs, path, &n);
    if (rc)
        return rc;
    xattr_get g = {name, value, size, -ENODATA};
    /* Only a ref root's commit_id costs a call; ask for it by name. */
    bool wants_head = strcmp(name, XATTR_PREFIX "commit_id") == 0;
    rc = node_xattrs(fs, &n, wants_head, xattr_get_one, &g);
    tree_node_free(&n);
    return rc < 0 ? rc : g.result;
}

typedef struct xattr_list {
    char *buf;
    size_t size;
    size_t used;
} xattr_list;

static int xattr_list_one(void *ctx, const char *name, const char *value)
{
    (void)value;
    xattr_list *l = ctx;
    size_t len = strlen(name) + 1;
    if (l->size && l->used + len <= l->size)
        memcpy(l->buf + l->used, name, len);
    l->used += len;
    return 0;
}

static int op_listxattr(const char *path, char *list, size_t size)
{
    lakefuse_fs *fs = fs_current();
    tree_node n;
    int rc = resolve_with_metadata(fs, path, &n);
    if (rc)
        return rc;
    xattr_list l = {list, size, 0};
    rc = node_xattrs(fs, &n, false, xattr_list_one, &l);
    tree_node_free(&n);
    if (rc < 0)
        return rc;
    if (size && l.used > size)
        return -ERANGE;
    return (int)l.used;
}

/* ---- everything else ---- */

/* Space and inodes are those of the cache directory's file system: what
 * a file written here needs is room for its staged copy until its upload
 * (lakeFS itself states no capacity). Tools that check free space before
 * writing (file managers, some installers and data tools) refuse a file
 * system that reports none. */
static int op_statfs(const char *path, struct statvfs *st)
{
    (void)path;
    lakefuse_fs *fs = fs_current();
    struct statvfs cache;
    memset(st, 0, sizeof(*st));
    st->f_frsize = 4096;
    if (fs->cache_dir && statvfs(fs->cache_dir, &cache) == 0) {
        st->f_frsize = cache.f_frsize;
        st->f_blocks = cache.f_blocks;
        st->f_bfree = cache.f_bfree;
        st->f_bavail = cache.f_bavail;
        st->f_files = cache.f_files;
        st->f_ffree = cache.f_ffree;
        st->f_favail = cache.f_favail;
    }
    st->f_bsize = fs->block_size;
    st->f_namemax = LISTING_NAME_MAX;
    return 0;
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    lakefuse_fs *fs = fs_current();
    /* Fixed refs never change; branches are re-checked after attr_timeout,
     * and lakefuse answers the kernel's re-checks from its own caches. */
    double timeout = tree_is_fixed(fs->tree) ? 86400.0 : fs->attr_timeout;
    cfg->entry_timeout = timeout;
    cfg->attr_timeout = timeout;
    /* A missing name is answered from lakefuse's listings at no API cost;
     * the kernel keeps none on branches, where a name can appear through
     * lakeFS (a failed request the server carried out, another client)
     * without the kernel seeing it created. */
    cfg->negative_timeout = tree_is_fixed(fs->tree) ? timeout : 0;
    /* libfuse numbers nodes (use_ino 0) and keeps none the kernel forgot
     * (remember=0, mount.c says why). */
    cfg->use_ino = 0;
    /* A file unlinked or replaced while open is renamed by libfuse to a
     * .fuse_hidden name, which lakefuse keeps in memory only (never on
     * lakeFS): fstat of its descriptors then still has a path. */
    cfg->nullpath_ok = 0;
    cfg->hard_remove = 0;
    cfg->kernel_cache = 0;
    cfg->auto_cache = 0;
    conn->want |= FUSE_CAP_READDIRPLUS;
    conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
    /* Cached reads reply with descriptors of block files
     * (fs_readers_read_buf): spliced into /dev/fuse, never copied through
     * this process. */
    if (conn->capable & FUSE_CAP_SPLICE_WRITE)
        conn->want |= FUSE_CAP_SPLICE_WRITE;
    if (conn->max_read == 0 || conn->max_read > FS_MAX_READ_BYTES)
        conn->max_read = FS_MAX_READ_BYTES;
    conn->max_background = 64;
    conn->congestion_threshold = 48;
    /* The kernel sets the read-ahead window from this init's reply: the
     * first getattr, which comes after it, raises it, once. */
    fs->readahead_once = (pthread_once_t)PTHREAD_ONCE_INIT;
    return fs;
}

static const struct fuse_operations operations = {
    .init = op_init,
    .getattr = op_getattr,
    .readlink = op_readlink,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .open = op_open,
    .read = op_read,
    .read_buf = fs_readers_read_buf,
    .release = op_release,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .statfs = op_statfs,
    .flush = fs_write_flush,
    .fsync = fs_write_fsync,
    .fsyncdir = fs_write_fsyncdir,
    .mknod = fs_write_mknod,
    .mkdir = fs_write_mkdir,
    .unlink = fs_write_unlink,
    .rmdir = fs_write_rmdir,
    .symlink = fs_write_symlink,
    .rename = fs_write_rename,
    .link = fs_write_link,
    .chmod = fs_write_chmod,
    .chown = fs_write_chown,
    .truncate = fs_write_truncate,
    .create = fs_write_create,
    .write = fs_write_write,
    .setxattr = op_setxattr,
    .removexattr = fs_write_removexattr,
    .utimens = fs_write_utimens,
    .fallocate = fs_write_fallocate,
};

const struct fuse_operations *fs_operations(void)
{
    return &operations;
}
