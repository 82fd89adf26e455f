/*
 * fs_readers.c - descriptors open for reading on a branch object, by key,
 * so that what this mount does to the object reaches them as it would on
 * a local filesystem: reads see what another descriptor wrote (through its
 * staged file, then the uploaded object), and a descriptor whose name is
 * unlinked or replaced keeps reading the bytes it opened (a private copy
 * taken before the name goes). Never copies a file that no descriptor
 * holds open.
 */
#include "fs_internal.h"
#include "prefetch.h"
#include "fs_ops.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#define COPY_CHUNK (1u << 20)

void fs_count_file_request(lakefuse_fs *fs, fs_file_request kind)
{
    atomic_fetch_add_explicit(&fs->counters.file[kind], 1,
                              memory_order_relaxed);
}

void fs_file_request_get_stats(lakefuse_fs *fs, fs_file_request_stats *out)
{
    _Atomic uint64_t *c = fs->counters.file;
    out->opens = atomic_load(&c[FS_REQ_OPEN]);
    out->reads = atomic_load(&c[FS_REQ_READ]);
    out->flushes = atomic_load(&c[FS_REQ_FLUSH]);
    out->releases = atomic_load(&c[FS_REQ_RELEASE]);
}

static bool is_branch_reader(const open_file *of)
{
    return of->data && of->ref && of->ref->is_branch && of->key;
}

int fs_readers_add(lakefuse_fs *fs, open_file *of, const tree_node *n)
{
    of->pinned_fd = -1;
    pthread_rwlock_init(&of->lock, NULL);
    of->lock_ready = true;
    prefetch_opened(fs->prefetch, n); /* fetches its successors ahead */
    if (!n->ref || !n->ref->is_branch)
        return 0;
    of->ref = n->ref;
    of->key = tree_object_key(n);
    if (!of->key)
        return -ENOMEM;
    pthread_mutex_lock(&fs->readers_lock);
    of->reader_next = fs->readers;
    if (fs->readers)
        fs->readers->reader_prev = of;
    __atomic_store_n(&fs->readers, of, __ATOMIC_RELEASE);
    of->registered = true;
    pthread_mutex_unlock(&fs->readers_lock);
    return 0;
}

/* Whether a descriptor reads anything, without the lock: the check that
 * lets unlink, rename and uploads skip the list. fs->readers is written
 * under readers_lock with release stores, so a reader registered before
 * the caller began is seen. */
static bool any_reader(lakefuse_fs *fs)
{
    return __atomic_load_n(&fs->readers, __ATOMIC_ACQUIRE) != NULL;
}

void fs_readers_remove(lakefuse_fs *fs, open_file *of)
{
    if (of->registered) {
        pthread_mutex_lock(&fs->readers_lock);
        if (of->reader_prev)
            of->reader_prev->reader_next = of->reader_next;
        else
            __atomic_store_n(&fs->readers, of->reader_next, __ATOMIC_RELEASE);
        if (of->reader_next)
            of->reader_next->reader_prev = of->reader_prev;
        of->registered = false;
        pthread_mutex_unlock(&fs->readers_lock);
    }
    if (of->pinned_fd >= 0)
        close(of->pinned_fd);
    if (of->pinned_w)
        wfile_release(of->pinned_w);
    if (of->lock_ready)
        pthread_rwlock_destroy(&of->lock);
    free(of->key);
}

ssize_t fs_readers_read(lakefuse_fs *fs, open_file *of, char *buf,
                        size_t size, off_t offset)
{
    ssize_t n;
    pthread_rwlock_rdlock(&of->lock);
    if (of->pinned_fd >= 0) { /* its name went away: its own bytes */
        n = pread(of->pinned_fd, buf, size, offset);
        pthread_rwlock_unlock(&of->lock);
        return n < 0 ? -errno : n;
    }
    if (of->pinned_w) { /* its name went away while being written */
        n = wfile_read(of->pinned_w, buf, size, offset);
        pthread_rwlock_unlock(&of->lock);
        return n;
    }
    pthread_rwlock_unlock(&of->lock);
    /* Being written through another descriptor of this mount: its staged
     * bytes are the file's content now. (The key under the lock: a rename
     * moves it.) */
    wfile *w = NULL;
    if (is_branch_reader(of) && !writer_idle(fs->writer)) {
        pthread_rwlock_rdlock(&of->lock);
        w = writer_find(fs->writer, of->ref->repo, of->ref->api_ref, of->key);
        pthread_rwlock_unlock(&of->lock);
    }
    if (w) {
        n = wfile_read(w, buf, size, offset);
        wfile_release(w);
        return n;
    }
    pthread_rwlock_rdlock(&of->lock);
    if (of->pinned_fd >= 0) {
        n = pread(of->pinned_fd, buf, size, offset);
        if (n < 0)
            n = -errno;
    } else {
        n = reader_read(of->data, buf, size, (uint64_t)offset);
    }
    pthread_rwlock_unlock(&of->lock);
    return n;
}

/* ---- cached reads spliced from block files ---- */

/* The block files a thread's last reply was spliced from stay open until
 * libfuse has sent it: the op returns before the splice, with no call
 * after it. So each FUSE thread gives its pieces back at its next read, or
 * when it ends (libfuse cancels its workers before the mount is torn
 * down). A thread holds at most one read's pieces. */
typedef struct held_pieces {
    reader *reader;
    reader_piece *pieces;
    size_t count;
    size_t cap;
    /* Replies from memory (mem_reply): the thread's buffer, page-aligned,
     * FS_MAX_READ_BYTES, and its pipe; pipe_r -1: none yet, pipe_failed:
     * none to be had (the mount's pipe limits). */
    char *mem;
    int pipe_r, pipe_w;
    bool pipe_failed;
} held_pieces;

static pthread_key_t held_key;
static pthread_once_t held_once = PTHREAD_ONCE_INIT;
static bool held_key_ok;

static void held_give_back(held_pieces *h)
{
    reader_unpin(h->reader, h->pieces, h->count);
    h->count = 0;
}

static void close_pipe(held_pieces *h)
{
    if (h->pipe_r >= 0) {
        close(h->pipe_r);
        close(h->pipe_w);
    }
    h->pipe_r = h->pipe_w = -1;
}

static void held_destroy(void *p)
{
    held_pieces *h = p;
    held_give_back(h);
    close_pipe(h);
    free(h->mem);
    free(h->pieces);
    free(h);
}

static void held_key_create(void)
{
    held_key_ok = pthread_key_create(&held_key, held_destroy) == 0;
}

/* This thread's held pieces, with room for cap; NULL on ENOMEM. */
static held_pieces *held_get(size_t cap)
{
    pthread_once(&held_once, held_key_create);
    if (!held_key_ok)
        return NULL;
    held_pieces *h = pthread_getspecific(held_key);
    if (!h) {
        h = calloc(1, sizeof(*h));
        if (h)
            h->pipe_r = h->pipe_w = -1;
        if (!h || pthread_setspecific(held_key, h) != 0) {
            free(h);
            return NULL;
        }
    }
    if (h->cap < cap) {
        reader_piece *more = realloc(h->pieces, cap * sizeof(*more));
        if (!more)
            return NULL;
        h->pieces = more;
        h->cap = cap;
    }
    return h;
}

/* 0 with *bufp set when every byte asked for is cached (or the read is at
 * the end); else nothing is held and the caller reads into memory. */
static int splice_cached(lakefuse_fs *fs, open_file *of,
                         struct fuse_bufvec **bufp, size_t size, off_t offset)
{
    size_t cap = size / fs->block_size + 2;
    held_pieces *h = held_get(cap);
    if (!h)
        return -ENOMEM;
    size_t count = 0;
    int rc = -EAGAIN;
    pthread_rwlock_rdlock(&of->lock);
    /* A private copy, or the staged file of a writer in this mount, is the
     * file's content: those are read the usual way. */
    if (of->pinned_fd < 0 && !of->pinned_w &&
        !(is_branch_reader(of) && !writer_idle(fs->writer)))
        rc = reader_pin(of->data, (uint64_t)offset, size, h->pieces, cap,
                        &count);
    pthread_rwlock_unlock(&of->lock);
    if (rc != 0)
        return rc;
    size_t slots = count ? count : 1;
    struct fuse_bufvec *bv =
        calloc(1, sizeof(*bv) + (slots - 1) * sizeof(bv->buf[0]));
    if (!bv) {
        reader_unpin(fs->reader, h->pieces, count);
        return -ENOMEM;
    }
    bv->count = slots;
    for (size_t i = 0; i < count; i++) {
        bv->buf[i].size = h->pieces[i].len;
        bv->buf[i].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
        bv->buf[i].fd = h->pieces[i].pin.fd;
        bv->buf[i].pos = h->pieces[i].pin.pos;
    }
    h->reader = fs->reader;
    h->count = count;
    *bufp = bv;
    return 0;
}

/* ---- replies from memory through the thread's pipe ---- */

/* libfuse sends a reply of two pages or more from memory by writing it
 * into its pipe (a copy) and splicing that into /dev/fuse (another); one
 * from a descriptor it splices without the first copy. So a read answered
 * from memory (bytes fetched, not yet in the cache: a cold read) goes
 * into the thread's own buffer and is vmspliced into the thread's pipe,
 * which maps its pages instead of copying them, and the reply is that
 * pipe. The buffer is not written again before the thread's next read, by
 * when libfuse has sent the reply (the kernel copies it into the FUSE
 * request during the splice); a pipe that still holds bytes then (a reply
 * libfuse failed to send) is replaced, never read from. Measured on a
 * cold sequential read of 256 MiB (the bundled server, page cache
 * dropped, 9 interleaved runs): 0.415 s -> 0.370 s, the daemon's CPU
 * 0.50 s -> 0.40 s. */

static bool reply_pipe_ready(held_pieces *h)
{
    if (h->pipe_r >= 0) {
        int left = 0;
        if (ioctl(h->pipe_r, FIONREAD, &left) == 0 && left == 0)
            return true;
        close_pipe(h); /* bytes of a reply never sent: not to be mixed in */
    }
    if (h->pipe_failed)
        return false;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        h->pipe_failed = true;
        return false;
    }
    if (fcntl(fds[1], F_SETPIPE_SZ, (int)FS_MAX_READ_BYTES) <
        (int)FS_MAX_READ_BYTES) {
        close(fds[0]);
        close(fds[1]);
        h->pipe_failed = true;
        return false;
    }
    h->pipe_r = fds[0];
    h->pipe_w = fds[1];
    return true;
}

/* The n bytes of h->mem, whole, in h's pipe: true, or false with the pipe
 * dropped (the caller replies from memory). */
static bool vmsplice_all(held_pieces *h, size_t n)
{
    struct iovec iov = {h->mem, n};
    while (iov.iov_len > 0) {
        ssize_t m = vmsplice(h->pipe_w, &iov, 1, SPLICE_F_NONBLOCK);
        if (m <= 0) {
            close_pipe(h);
            return false;
        }
        iov.iov_base = (char *)iov.iov_base + m;
        iov.iov_len -= (size_t)m;
    }
    return true;
}

/* size bytes at offset read through the file system's read: into the
 * thread's buffer and its pipe when the reply is large enough for libfuse
 * to splice it (0 with *bufp set), or -EAGAIN for the caller to read into
 * memory of its own; or the read's negative errno. */
static int mem_reply(held_pieces *h, const char *path,
                     struct fuse_bufvec **bufp, size_t size, off_t offset,
                     struct fuse_file_info *fi)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (!h || size < 2 * page || size > FS_MAX_READ_BYTES ||
        !reply_pipe_ready(h))
        return -EAGAIN;
    if (!h->mem) {
        void *m = NULL;
        if (posix_memalign(&m, page, FS_MAX_READ_BYTES) != 0)
            return -EAGAIN;
        h->mem = m;
    }
    struct fuse_bufvec *bv = malloc(sizeof(*bv));
    if (!bv)
        return -ENOMEM;
    int n = fs_operations()->read(path, h->mem, size, offset, fi);
    if (n < 0) {
        free(bv);
        return n;
    }
    *bv = (struct fuse_bufvec)FUSE_BUFVEC_INIT((size_t)n);
    if ((size_t)n >= 2 * page && vmsplice_all(h, (size_t)n)) {
        bv->buf[0].flags = FUSE_BUF_IS_FD;
        bv->buf[0].fd = h->pipe_r;
    } else { /* small (the end of the file), or no pipe after all */
        bv->buf[0].mem = malloc(n ? (size_t)n : 1);
        if (!bv->buf[0].mem) {
            free(bv);
            return -ENOMEM;
        }
        memcpy(bv->buf[0].mem, h->mem, (size_t)n);
    }
    *bufp = bv;
    return 0;
}

int fs_readers_read_buf(const char *path, struct fuse_bufvec **bufp,
                        size_t size, off_t offset, struct fuse_file_info *fi)
{
    lakefuse_fs *fs = fs_current();
    open_file *of = (open_file *)(uintptr_t)fi->fh;
    pthread_once(&held_once, held_key_create); /* held_key_ok is set */
    held_pieces *h = held_key_ok ? pthread_getspecific(held_key) : NULL;
    if (h)
        held_give_back(h); /* libfuse has sent this thread's last reply */
    if (of->data || of->w)
        fs_count_file_request(fs, FS_REQ_READ);
    if (offset >= 0 && of->data && fs->blocks &&
        splice_cached(fs, of, bufp, size, offset) == 0)
        return 0;
    int rc = mem_reply(held_get(0), path, bufp, size, offset, fi);
    if (rc != -EAGAIN)
        return rc;
    struct fuse_bufvec *bv = malloc(sizeof(*bv));
    char *mem = malloc(size ? size : 1);
    int n = bv && mem ? fs_operations()->read(path, mem, size, offset, fi)
                      : -ENOMEM;
    if (n < 0) {
        free(bv);
        free(mem);
        return n;
    }
    *bv = (struct fuse_bufvec)FUSE_BUFVEC_INIT((size_t)n);
    bv->buf[0].mem = mem;
    *bufp = bv;
    return 0;
}

/* Under readers_lock: true when of reads key (or, with prefix, a key
 * under key + "/"). */
static bool reads_key(const open_file *of, const tree_ref *ref,
                      const char *key, bool prefix)
{
    if (of->ref != ref || !of->key)
        return false;
    size_t len = strlen(key);
    return prefix ? strncmp(of->key, key, len) == 0 && of->key[len] == '/'
                  : strcmp(of->key, key) == 0;
}

/* The bytes of of's object (or of the file being written at its key) in
 * an unnamed file of the cache directory. */
static int private_copy(lakefuse_fs *fs, open_file *of, int *out)
{
    int fd = open(fs->cache_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    char *buf = malloc(COPY_CHUNK);
    int rc = buf ? 0 : -ENOMEM;
    for (off_t off = 0; rc == 0;) {
        ssize_t n = fs_readers_read(fs, of, buf, COPY_CHUNK, off);
        if (n <= 0) {
            rc = (int)n;
            break;
        }
        if (pwrite(fd, buf, (size_t)n, off) != n)
            rc = -EIO;
        off += n;
    }
    free(buf);
    if (rc) {
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

void fs_readers_pin(lakefuse_fs *fs, const tree_ref *ref, const char *key,
                    bool prefix)
{
    if (!any_reader(fs) || !fs->cache_dir)
        return;
    pthread_mutex_lock(&fs->readers_lock);
    for (open_file *of = fs->readers; of; of = of->reader_next) {
        if (!reads_key(of, ref, key, prefix) || of->pinned_fd >= 0 ||
            of->pinned_w)
            continue;
        wfile *w = writer_idle(fs->writer)
                       ? NULL
                       : writer_find(fs->writer, of->ref->repo,
                                     of->ref->api_ref, of->key);
        if (w) { /* its writers' descriptors keep it: so does this one */
            pthread_rwlock_wrlock(&of->lock);
            of->pinned_w = w;
            pthread_rwlock_unlock(&of->lock);
            continue;
        }
        int fd = -1;
        int rc = private_copy(fs, of, &fd);
        if (rc) {
            logger_write(fs->log, LOG_LEVEL_WARNING,
                         "'%s' is going away while open for reading and "
                         "could not be kept for it: %s",
                         of->key, strerror(-rc));
            continue;
        }
        pthread_rwlock_wrlock(&of->lock);
        of->pinned_fd = fd;
        pthread_rwlock_unlock(&of->lock);
    }
    pthread_mutex_unlock(&fs->readers_lock);
}

void fs_readers_move(lakefuse_fs *fs, const tree_ref *ref, const char *from,
                     const char *to)
{
    if (!any_reader(fs))
        return;
    pthread_mutex_lock(&fs->readers_lock);
    for (open_file *of = fs->readers; of; of = of->reader_next) {
        if (!reads_key(of, ref, from, false) || of->pinned_fd >= 0 ||
            of->pinned_w)
            continue;
        char *key = strdup(to);
        if (!key)
            continue; /* ENOMEM: it reads what it opened, as before */
        pthread_rwlock_wrlock(&of->lock);
        free(of->key);
        of->key = key;
        pthread_rwlock_unlock(&of->lock);
    }
    pthread_mutex_unlock(&fs->readers_lock);
}

void fs_readers_uploaded(lakefuse_fs *fs, const tree_ref *ref,
                         const char *rel_key, const lakefs_object_stats *st)
{
    if (!any_reader(fs) || !st->path)
        return;
    tree_node n = {.kind = TREE_FILE, .ref = ref, .key = (char *)rel_key};
    const char *slash = strrchr(rel_key, '/');
    if (fs_entry_from_object(&n.entry, slash ? slash + 1 : rel_key, st) != 0)
        return;
    pthread_mutex_lock(&fs->readers_lock);
    for (open_file *of = fs->readers; of; of = of->reader_next) {
        if (!reads_key(of, ref, st->path, false) || of->pinned_fd >= 0 ||
            of->pinned_w)
            continue;
        /* The object this mount just wrote is the file's content now. */
        reader_file *fresh = fs_open_object_reader(fs, &n);
        if (!fresh)
            continue;
        pthread_rwlock_wrlock(&of->lock);
        reader_file *old = of->data;
        of->data = fresh;
        pthread_rwlock_unlock(&of->lock);
        reader_close(old);
    }
    pthread_mutex_unlock(&fs->readers_lock);
    fs_entry_free(&n.entry);
}

/* ---- names of files unlinked while open ---- */

/* libfuse (hard_remove off) renames a file unlinked or replaced while open
 * to DIR/.fuse_hiddenXXXXXXXXYYYYYYYY and unlinks that name after the last
 * close, so that fstat on the descriptor still has a path. Such names live
 * in this mount's memory only; lakeFS never sees them. */
typedef struct hidden_file {
    char *path;
    struct stat st; /* as the file was when its name went */
    wfile *w;       /* its staged bytes (still growing), or NULL */
    fs_entry entry; /* its object's attributes then: fgetxattr's answers */
    struct hidden_file *next;
} hidden_file;

static void hidden_free(hidden_file *h)
{
    if (h->w)
        wfile_release(h->w);
    fs_entry_free(&h->entry);
    free(h->path);
    free(h);
}

/* Under readers_lock: path's hidden file, or NULL. */
static hidden_file *hidden_find(lakefuse_fs *fs, const char *path)
{
    for (hidden_file *h = fs->hidden; h; h = h->next)
        if (strcmp(h->path, path) == 0)
            return h;
    return NULL;
}

#define HIDDEN_PREFIX ".fuse_hidden"
#define HIDDEN_HEX 16 /* libfuse: ".fuse_hidden%08x%08x", node id and counter */

bool fs_hidden_name(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    const char *base = slash ? slash + 1 : path;
    if (!base || strncmp(base, HIDDEN_PREFIX, strlen(HIDDEN_PREFIX)) != 0)
        return false;
    const char *hex = base + strlen(HIDDEN_PREFIX);
    for (int i = 0; i < HIDDEN_HEX; i++)
        if (!((hex[i] >= '0' && hex[i] <= '9') ||
              (hex[i] >= 'a' && hex[i] <= 'f')))
            return false;
    return hex[HIDDEN_HEX] == '\0';
}

static _Thread_local uint64_t probe_hash;
static _Thread_local uint64_t probe_request; /* 0: unknown */
static _Thread_local int64_t probe_ns; /* 0: none */

static uint64_t path_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

static int64_t monotonic_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

void fs_hidden_probed(const char *path)
{
    probe_hash = path_hash(path);
    probe_request = fs_request_unique();
    probe_ns = monotonic_ns();
}

bool fs_hidden_probe_was(const char *path)
{
    uint64_t request = fs_request_unique();
    bool was = probe_ns != 0 && probe_hash == path_hash(path) &&
               probe_request == request &&
               monotonic_ns() - probe_ns < 1000000000LL;
    probe_ns = 0;
    return was;
}

bool fs_readers_has(lakefuse_fs *fs, const tree_ref *ref, const char *key)
{
    if (!any_reader(fs))
        return false;
    bool found = false;
    pthread_mutex_lock(&fs->readers_lock);
    for (open_file *of = fs->readers; of && !found; of = of->reader_next)
        found = reads_key(of, ref, key, false);
    pthread_mutex_unlock(&fs->readers_lock);
    return found;
}

int fs_hidden_add(lakefuse_fs *fs, const char *path, const struct stat *st,
                  wfile *w, const fs_entry *e)
{
    hidden_file *h = calloc(1, sizeof(*h));
    if (!h || !(h->path = strdup(path)) ||
        fs_entry_copy(&h->entry, e) != 0) {
        if (h)
            free(h->path);
        free(h);
        if (w) /* taken over, as on success */
            wfile_release(w);
        return -ENOMEM;
    }
    h->st = *st;
    h->st.st_nlink = 0;
    h->w = w;
    pthread_mutex_lock(&fs->readers_lock);
    h->next = fs->hidden;
    fs->hidden = h;
    pthread_mutex_unlock(&fs->readers_lock);
    return 0;
}

int fs_hidden_getattr(lakefuse_fs *fs, const char *path, struct stat *st)
{
    wfile *w = NULL;
    int rc = -ENOENT;
    pthread_mutex_lock(&fs->readers_lock);
    hidden_file *h = hidden_find(fs, path);
    if (h) {
        *st = h->st;
        w = h->w;
        rc = 0;
    }
    pthread_mutex_unlock(&fs->readers_lock);
    if (rc == 0 && w) { /* the hidden entry holds its reference */
        int64_t size, mtime;
        uint32_t mode;
        wfile_attrs(w, &size, &mtime, &mode);
        st->st_size = size;
        st->st_blocks = (size + 511) / 512;
        st->st_mtime = (time_t)mtime;
        fs_stat_wfile_owner(w, st);
    }
    return rc;
}

int fs_hidden_setattr(lakefuse_fs *fs, const char *path, int64_t mode,
                      uid_t uid, gid_t gid, const struct timespec *atime,
                      const struct timespec *mtime)
{
    int rc = -ENOENT;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    pthread_mutex_lock(&fs->readers_lock);
    for (hidden_file *h = fs->hidden; h; h = h->next) {
        if (strcmp(h->path, path) != 0)
            continue;
        if (mode >= 0)
            h->st.st_mode = (h->st.st_mode & S_IFMT) | ((mode_t)mode & 07777);
        if (uid != (uid_t)-1)
            h->st.st_uid = uid;
        if (gid != (gid_t)-1)
            h->st.st_gid = gid;
        if (atime)
            h->st.st_atim = *atime;
        if (mtime)
            h->st.st_mtim = *mtime;
        h->st.st_ctim = now;
        rc = 0;
        /* Its staged bytes (detached: nothing uploads them) give getattr
         * their owner and mtime: they take the change too. */
        if (h->w && (uid != (uid_t)-1 || gid != (gid_t)-1))
            rc = wfile_set_owner(h->w, (uid_t)h->st.st_uid,
                                 (gid_t)h->st.st_gid);
        if (rc == 0 && h->w && mtime)
            rc = wfile_set_mtime(h->w, (int64_t)mtime->tv_sec);
        break;
    }
    pthread_mutex_unlock(&fs->readers_lock);
    return rc;
}

int fs_hidden_remove(lakefuse_fs *fs, const char *path)
{
    hidden_file *gone = NULL;
    pthread_mutex_lock(&fs->readers_lock);
    for (hidden_file **p = &fs->hidden; *p; p = &(*p)->next)
        if (strcmp((*p)->path, path) == 0) {
            gone = *p;
            *p = gone->next;
            break;
        }
    pthread_mutex_unlock(&fs->readers_lock);
    if (!gone)
        return -ENOENT;
    hidden_free(gone);
    return 0;
}

int fs_hidden_entry(lakefuse_fs *fs, const char *path, fs_entry *out)
{
    memset(out, 0, sizeof(*out));
    struct stat st;
    int rc = fs_hidden_getattr(fs, path, &st); /* the mtime it shows now */
    if (rc)
        return rc;
    rc = -ENOENT;
    pthread_mutex_lock(&fs->readers_lock);
    hidden_file *h = hidden_find(fs, path);
    if (h)
        rc = fs_entry_copy(out, &h->entry) != 0 ? -ENOMEM : 0;
    pthread_mutex_unlock(&fs->readers_lock);
    if (rc == 0)
        out->mtime = (int64_t)st.st_mtime;
    return rc;
}

int fs_hidden_set_meta(lakefuse_fs *fs, const char *path, const char *key,
                       const char *value)
{
    int rc = -ENOENT;
    pthread_mutex_lock(&fs->readers_lock);
    hidden_file *h = hidden_find(fs, path);
    lakefs_metadata md;
    if (h)
        rc = fs_metadata_with(&h->entry.metadata, key, value, &md);
    if (h && rc == 0) {
        lakefs_metadata_free(&h->entry.metadata);
        h->entry.metadata = md;
        clock_gettime(CLOCK_REALTIME, &h->st.st_ctim);
    }
    pthread_mutex_unlock(&fs->readers_lock);
    return rc;
}

void fs_hidden_move_dir(lakefuse_fs *fs, const char *from, const char *to)
{
    size_t len = strlen(from);
    pthread_mutex_lock(&fs->readers_lock);
    for (hidden_file *h = fs->hidden; h; h = h->next) {
        if (strncmp(h->path, from, len) != 0 || h->path[len] != '/')
            continue;
        char *moved = NULL;
        if (asprintf(&moved, "%s%s", to, h->path + len) < 0)
            continue; /* ENOMEM: the old name stays, as before the fix */
        free(h->path);
        h->path = moved;
    }
    pthread_mutex_unlock(&fs->readers_lock);
}

void fs_hidden_free_all(lakefuse_fs *fs)
{
    while (fs->hidden)
        fs_hidden_remove(fs, fs->hidden->path);
}
