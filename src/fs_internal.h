/*
 * fs_internal.h - what the FUSE operation files (fs_ops.c: lookups and
 * reads, fs_write.c: changes) share: the open-file handle, the current
 * mount, and the helpers that keep the listing cache in step with a write.
 */
#ifndef LAKEFUSE_FS_INTERNAL_H
#define LAKEFUSE_FS_INTERNAL_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#endif
#include <fuse.h>

#include "fs.h"

/* A handle given to FUSE (fi->fh), on one of fs's lists until its
 * release. The kernel sends RELEASE and RELEASEDIR after close(2)
 * returns, in the background, and an unmount right after the close can
 * abort it: what is still on a list when the session ends is released at
 * teardown (fs_release_leftover_files). */
typedef struct fs_handle {
    struct fs_handle *next, *prev;
} fs_handle;

/* fi->fh of an open file: exactly one of data (an object read through
 * the reader), w (a file open for writing, or read while one is) or text
 * (a control file). */
typedef struct open_file {
    reader_file *data;
    wfile *w;
    bool writer; /* opened for writing: close uploads */
    const tree_ref *ref; /* of w or data (refs live as long as the tree) */
    bool append;
    char *text;
    size_t text_len;
    tree_node *control; /* a control file open for writing */
    /* data on a branch (fs_readers.c): */
    char *key;              /* the object key it reads */
    pthread_rwlock_t lock;  /* reads vs a swap of data or the pin */
    bool lock_ready;
    int pinned_fd;          /* a private copy once the name went, or -1 */
    wfile *pinned_w;        /* or, when the file was open for writing
                             * then, its staged file (one content) */
    bool registered;        /* in fs->readers, under fs->readers_lock */
    struct open_file *reader_next, *reader_prev;
    fs_handle open; /* on fs->open_files */
} open_file;

/* Every open_file handed to FUSE is on fs->open_files until its release. */
void fs_open_files_add(lakefuse_fs *fs, open_file *of);

lakefuse_fs *fs_current(void);

/* 0 when changes may be made inside node's ref, else -EROFS. */
int fs_check_writable(const lakefuse_fs *fs, const tree_node *n);

/* The block cache key of a TREE_FILE node's object. 0 or -errno. */
int fs_object_content_id(lakefuse_fs *fs, const tree_node *n,
                         blockcache_id *id);
/* A reader on the object of a TREE_FILE node; NULL on ENOMEM. */
reader_file *fs_open_object_reader(lakefuse_fs *fs, const tree_node *n);
/* The same, for a prefetch started by the open of list_from (a key
 * relative to the ref root, in n's directory): the presigned listing its
 * URL may need starts there, so the opener's read finds its URL in it. */
reader_file *fs_open_object_reader_from(lakefuse_fs *fs, const tree_node *n,
                                        const char *list_from);

/* Sets (entry non-NULL) or removes the listing entry of rel_key ("a/b",
 * relative to the ref root) in the cached listing of its directory. */
void fs_cache_set(lakefuse_fs *fs, const tree_ref *ref, const char *rel_key,
                  const fs_entry *entry);
/* The same from an object's stats (name = rel_key's last component). */
void fs_cache_set_object(lakefuse_fs *fs, const tree_ref *ref,
                         const char *rel_key, const lakefs_object_stats *st);
/* The same, showing the setuid/setgid/sticky bits `like` showed and no
 * others (NULL: those this mount noted, as a listing shows them). A
 * rename's copy: it keeps what the object records, and what this mount
 * hid at the old name stays hidden at the new one (the bits it showed are
 * noted there once the rename succeeded). */
void fs_cache_set_object_as(lakefuse_fs *fs, const tree_ref *ref,
                            const char *rel_key,
                            const lakefs_object_stats *st,
                            const fs_entry *like);

/* Helpers of the write operations (fs_write.c). A node for a path that
 * must exist, -EROFS when its ref is not writable: */
int fs_resolve_writable(lakefuse_fs *fs, const char *path, tree_node *n);
/* The directory a new name goes in, writable; *key its rel key. */
int fs_resolve_new_name(lakefuse_fs *fs, const char *path, tree_node *parent,
                        char **key);
/* Whether prefix + rel_key, plus extra bytes, is a key lakeFS accepts
 * (LAKEFS_MAX_PATH_LENGTH). */
bool fs_key_fits(const tree_ref *ref, const char *rel_key, size_t extra);
/* prefix + rel_key: the object key on the server (malloc'd). */
char *fs_object_key(const tree_ref *ref, const char *rel_key);
/* The key of directory rel_dir of ref as a prefix: its marker's key
 * ("prefix/a/b/"), the ref's prefix at its root. NULL on ENOMEM. */
char *fs_dir_key(const tree_ref *ref, const char *rel_dir);
/* 0 when directory dir (not a ref root) has no marker or an empty one;
 * -ENOTEMPTY and a log line when its marker ("dir/", written through the
 * API) holds bytes, which no file shows: rmdir and a rename onto the
 * directory would delete them unseen. Or a negative errno. */
int fs_marker_holds_nothing(lakefuse_fs *fs, const tree_node *dir);
/* tree_list's callback that counts one entry into *(size_t *)ctx and
 * stops: whether a directory holds anything. */
int fs_count_entry(void *ctx, const fs_entry *e);
/* true when an upload of n's file landed after `since`, a writer_landed()
 * taken before n was resolved (writer.h, Landings): n's entry may be the
 * object before that upload (the size before an O_TRUNC rewrite). */
bool fs_landed_on(lakefuse_fs *fs, const tree_node *n, uint64_t since);
/* Tries of an open that finds an upload of its file landed since it
 * read the file's listing entry (writer.h, Landings): each further one
 * needs another upload of the file to land during the previous one. */
#define FS_OPEN_TRIES 16
/* Drops the cached listing of rel_key's directory: after a request that
 * failed, lakeFS may have carried it out all the same (its answer was
 * lost), and the mount must show what lakeFS holds. */
void fs_forget_parent(lakefuse_fs *fs, const tree_ref *ref,
                      const char *rel_key);
/* deleteObject; a missing object is not an error. 0 or -EIO. */
int fs_delete_key(lakefuse_fs *fs, const tree_ref *ref, const char *key);
/* Uploads an empty object (a directory marker, a symlink, a special file)
 * with the lakectl attributes given. With attrs->if_absent, only as a
 * create: never over an object another client made meanwhile
 * (If-None-Match: *; an object that is exactly the one sent is this
 * create's own, its answer lost and the resend refused), -EEXIST when key
 * holds another. 0 (*out, may be NULL, gets its stats), else -EIO
 * (logged). */
int fs_upload_empty_attrs(lakefuse_fs *fs, const tree_ref *ref,
                          const char *key, const upload_attrs *attrs,
                          lakefs_object_stats *out);

/* A file whose newest bytes are still staged shows the user metadata its
 * upload will carry, not the listing's (fs_attr.c): true when n took it. */
bool fs_overlay_staged_metadata(lakefuse_fs *fs, tree_node *n);
/* The user metadata of directory n (not a ref root): its marker's, the
 * staged marker's while one waits for its upload; empty without a marker
 * (fs_attr.c). 0 or -errno; free out with lakefs_metadata_free. */
int fs_dir_metadata(lakefuse_fs *fs, const tree_node *n,
                    lakefs_metadata *out);
/* The writer's wfile of a file node, referenced (wfile_release), or NULL
 * (fs_attr.c). */
wfile *fs_node_wfile(lakefuse_fs *fs, const tree_node *n);

/* Descriptors reading branch objects (fs_readers.c). add: after of->data
 * is opened on node n (registers branch readers); remove: at release,
 * before of->data is closed. */
int fs_readers_add(lakefuse_fs *fs, open_file *of, const tree_node *n);
void fs_readers_remove(lakefuse_fs *fs, open_file *of);
/* A read through of: its private copy once pinned, else the staged file
 * of the key when this mount is writing it, else the object. */
ssize_t fs_readers_read(lakefuse_fs *fs, open_file *of, char *buf,
                        size_t size, off_t offset);
/* The FUSE read_buf op: cached bytes of an object as descriptor ranges of
 * block files (libfuse splices them into /dev/fuse: no copy through this
 * process), anything else through the read op into memory. */
int fs_readers_read_buf(const char *path, struct fuse_bufvec **bufp,
                        size_t size, off_t offset, struct fuse_file_info *fi);
/* key (or everything under key + "/" with prefix) is about to be
 * unlinked, renamed or replaced: descriptors reading it take a private
 * copy of their bytes first (a download of what the cache lacks), or,
 * when the file is open for writing, keep reading its staged file (what
 * its writers write after is what they read, as on a local file). */
void fs_readers_pin(lakefuse_fs *fs, const tree_ref *ref, const char *key,
                    bool prefix);
/* A file moved from key from to key to (a rename): descriptors reading it
 * follow it (those that took a private copy keep it). */
void fs_readers_move(lakefuse_fs *fs, const tree_ref *ref, const char *from,
                     const char *to);
/* This mount uploaded st: descriptors reading its key read it from now
 * on. rel_key: st->path relative to ref's prefix. */
void fs_readers_uploaded(lakefuse_fs *fs, const tree_ref *ref,
                         const char *rel_key, const lakefs_object_stats *st);

/* Whether a read-only descriptor of this mount reads key (an object key,
 * as tree_object_key) of ref. */
bool fs_readers_has(lakefuse_fs *fs, const tree_ref *ref, const char *key);
/* *out: md with key set to value, or removed (value NULL): 0, -ENODATA
 * (removing a key md lacks: *out empty), -ENOMEM. */
int fs_metadata_with(const lakefs_metadata *md, const char *key,
                     const char *value, lakefs_metadata *out);

/* libfuse's names for files unlinked or replaced while open
 * (DIR/.fuse_hidden and 16 hex digits, exactly; no other name is one):
 * kept in memory only (fs_readers.c). add takes
 * over w's reference (may be NULL) and copies e, the object's attributes
 * and user metadata as the file had them (its xattrs from then on). */
bool fs_hidden_name(const char *path);
int fs_hidden_add(lakefuse_fs *fs, const char *path, const struct stat *st,
                  wfile *w, const fs_entry *e);
/* libfuse probes a free hidden name (a getattr answering ENOENT) and then
 * renames the file it hides to it, both while serving the kernel's one
 * request (an unlink, or a rename onto the open file): probed records the
 * probe (per thread), probe_was says whether path is the name probed
 * while serving the current request, and forgets it. A program's own
 * rename to such a name is another request than the kernel's lookup of
 * the name before it. Without the request's id (fs_request_unique: 0),
 * the probe must be this thread's last, within a second, and such a
 * rename of a file open here can be taken for libfuse's. */
/* The kernel's id of the FUSE request this thread serves, 0 if unknown. */
uint64_t fs_request_unique(void);
void fs_hidden_probed(const char *path);
bool fs_hidden_probe_was(const char *path);
/* A copy of the kept entry (fs_entry_free it), its mtime the one getattr
 * shows: 0, -ENOENT, -ENOMEM. */
int fs_hidden_entry(lakefuse_fs *fs, const char *path, fs_entry *out);
/* fsetxattr (value not NULL) or fremovexattr of user metadata KEY on the
 * kept entry: 0, -ENOENT, -ENODATA (removing a key it lacks), -ENOMEM. */
int fs_hidden_set_meta(lakefuse_fs *fs, const char *path, const char *key,
                       const char *value);
int fs_hidden_getattr(lakefuse_fs *fs, const char *path, struct stat *st);
/* chmod (mode >= 0), chown (uid/gid not -1) or utimens (atime, mtime not
 * NULL) of the file unlinked while open that path names: on what this
 * mount keeps of it (nothing of it is on lakeFS any more). 0, -ENOENT,
 * -ENOMEM. */
int fs_hidden_setattr(lakefuse_fs *fs, const char *path, int64_t mode,
                      uid_t uid, gid_t gid, const struct timespec *atime,
                      const struct timespec *mtime);
/* st's owner becomes w's when w has one (wfile_owner). */
void fs_stat_wfile_owner(wfile *w, struct stat *st);
int fs_hidden_remove(lakefuse_fs *fs, const char *path);
/* A directory was renamed from -> to: the hidden files inside it (libfuse
 * moved its nodes along) answer to their new paths. */
void fs_hidden_move_dir(lakefuse_fs *fs, const char *from, const char *to);
/* rel_key was created, removed or renamed: its directory's mtime and ctime
 * become now, for the life of the mount (fs_times_touch). */
void fs_dir_changed(lakefuse_fs *fs, const tree_ref *ref, const char *rel_key);
/* Before this mount removes the name rel_key of branch ref (unlink,
 * rmdir, a rename to another directory, libfuse's hide of an open file).
 * When it is the last entry of a directory (not a ref root) that has no
 * marker, lakeFS would hold nothing the directory could be listed from
 * once it goes, and the directory would vanish with its last name, which
 * no POSIX directory does: it keeps its attributes on a marker made now,
 * before the removal (change_dir_attrs: create-only; queued and journaled
 * with -o async_close), or with -o nodir_markers in this mount's memory
 * (tree_keep_local_dir). 0, or the negative errno the removal must fail
 * with, having changed nothing the mount shows (a log line says why). */
int fs_keep_parent_dir(lakefuse_fs *fs, const tree_ref *ref,
                       const char *rel_key);
/* getattr of a path, as the FUSE operation answers it (fs_ops.c). */
int fs_stat_path(const char *path, struct stat *st);

/* The write operations (fs_write.c, fs_rename.c, fs_attr.c). */
int fs_write_create(const char *path, mode_t mode, struct fuse_file_info *fi);
/* landed: writer_landed() taken before n was resolved, or NULL; -EAGAIN
 * when n must be resolved again (writer_open). */
int fs_write_open(lakefuse_fs *fs, const tree_node *n,
                  struct fuse_file_info *fi, open_file *of,
                  const uint64_t *landed);
int fs_write_write(const char *path, const char *buf, size_t size, off_t off,
                   struct fuse_file_info *fi);
int fs_write_flush(const char *path, struct fuse_file_info *fi);
int fs_write_fsync(const char *path, int datasync, struct fuse_file_info *fi);
int fs_write_fsyncdir(const char *path, int datasync,
                      struct fuse_file_info *fi);
int fs_write_truncate(const char *path, off_t size, struct fuse_file_info *fi);
int fs_write_unlink(const char *path);
int fs_write_mkdir(const char *path, mode_t mode);
int fs_write_rmdir(const char *path);
int fs_write_rename(const char *from, const char *to, unsigned int flags);
int fs_write_chmod(const char *path, mode_t mode, struct fuse_file_info *fi);
int fs_write_chown(const char *path, uid_t uid, gid_t gid,
                   struct fuse_file_info *fi);
int fs_write_utimens(const char *path, const struct timespec tv[2],
                     struct fuse_file_info *fi);
int fs_write_symlink(const char *target, const char *path);
/* A directory node's mode and owner as stat shows them (its marker's,
 * or what a marker still queued will hold) in *st; the rest as the
 * parent's listing has it. A lookup in the directory's listing, no walk
 * (stat adds the link count, which walks it). 0 or -errno. */
int fs_dir_owner(lakefuse_fs *fs, const tree_node *n, struct stat *st);
/* The owner a new name in the directory parent gets: the calling
 * process's (with -o allow_other another user's), or in a set-group-ID
 * directory its group, a new directory (*mode, when not NULL) keeping the
 * bit, as Linux gives them. 1 when that is not the mount's owner (whom a
 * listing shows anyway), 0 when it is, or -errno (the directory's listing
 * could not be had). */
int fs_new_owner(lakefuse_fs *fs, const tree_node *parent, uid_t *uid,
                 gid_t *gid, uint32_t *mode);
int fs_write_mknod(const char *path, mode_t mode, dev_t dev);
int fs_write_link(const char *from, const char *to);
int fs_write_setxattr(const char *path, const char *name, const char *value,
                      size_t size, int flags);
int fs_write_removexattr(const char *path, const char *name);
int fs_write_fallocate(const char *path, int mode, off_t off, off_t len,
                       struct fuse_file_info *fi);

#endif
