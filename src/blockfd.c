/*
 * blockfd.c - the block files themselves: the header each starts with, the
 * seal (an xattr) that lets a file checked or written in this boot skip its
 * checksum, opening and checking a file, and the bounded LRU of
 * checked descriptors kept open for exact-range reads and pins. Never hands
 * out a descriptor of a file that failed its check; a descriptor in use is
 * closed only by its last user.
 */
#include "blockcache_internal.h"
#include "dlist.h"

#include <xxhash.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

/* ---- the block file header ---- */

/* The header a block file for key with these len bytes must start with. */
void blockfd_header_encode(const block_key *key, const void *data,
                          uint32_t len, unsigned char header[HEADER_SIZE])
{
    memset(header, 0, HEADER_SIZE);
    memcpy(header, HEADER_MAGIC, 4);
    put_le32(header + 4, HEADER_VERSION);
    put_le32(header + 8, len);
    memcpy(header + 16, key->id, BLOCKCACHE_ID_SIZE);
    put_le64(header + 48, key->index);
    XXH128_canonical_t digest;
    XXH128_canonicalFromHash(&digest, XXH3_128bits(data, len));
    _Static_assert(sizeof(digest) == DIGEST_SIZE, "digest size");
    memcpy(header + 56, &digest, DIGEST_SIZE);
}

/* 0 when the header read from a file is the one its data and name call
 * for; -EBADMSG when not (a bad magic, version, key, length or digest). */
static int header_verify(const unsigned char header[HEADER_SIZE],
                         const block_key *key, const void *data, uint32_t len)
{
    unsigned char want[HEADER_SIZE];
    blockfd_header_encode(key, data, len, want);
    return memcmp(header, want, HEADER_SIZE) == 0 ? 0 : -EBADMSG;
}

/* The header's fields without its digest: what a sealed file is checked
 * against (a sound file under another block's name still fails). */
static int header_check_fields(const unsigned char header[HEADER_SIZE],
                               const block_key *key, uint32_t len)
{
    unsigned char want[56];
    memset(want, 0, sizeof(want));
    memcpy(want, HEADER_MAGIC, 4);
    put_le32(want + 4, HEADER_VERSION);
    put_le32(want + 8, len);
    memcpy(want + 16, key->id, BLOCKCACHE_ID_SIZE);
    put_le64(want + 48, key->index);
    return memcmp(header, want, sizeof(want)) == 0 ? 0 : -EBADMSG;
}

/* ---- seals ---- */

int64_t blockfd_mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

static void seal_encode(const blockcache *bc, int64_t mtime_ns,
                        unsigned char seal[SEAL_SIZE])
{
    memcpy(seal, "LFS1", 4);
    memcpy(seal + 4, bc->boot_id, BOOT_ID_SIZE);
    put_le64(seal + 40, (uint64_t)mtime_ns);
}

/* Whether fd's seal was made in this boot for the mtime it has now. */
static bool seal_matches(const blockcache *bc, int fd, const struct stat *st)
{
    if (bc->boot_id[0] == '\0')
        return false;
    unsigned char want[SEAL_SIZE], got[SEAL_SIZE + 1];
    seal_encode(bc, blockfd_mtime_ns(st), want);
    return fgetxattr(fd, SEAL_XATTR, got, sizeof(got)) == SEAL_SIZE &&
           memcmp(got, want, SEAL_SIZE) == 0;
}

/* Seals fd for the mtime it had when its data was written or checked.
 * Best effort: without a seal the file is only checked again. */
bool blockfd_seal_write(const blockcache *bc, int fd, int64_t mtime_ns)
{
    if (bc->boot_id[0] == '\0')
        return false;
    unsigned char seal[SEAL_SIZE];
    seal_encode(bc, mtime_ns, seal);
    return fsetxattr(fd, SEAL_XATTR, seal, SEAL_SIZE, 0) == 0;
}

/* This boot's id, or "" (then no file is trusted without its check). */
void blockfd_read_boot_id(blockcache *bc)
{
    bc->boot_id[0] = '\0';
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[BOOT_ID_SIZE + 2];
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n >= BOOT_ID_SIZE &&
        (n == BOOT_ID_SIZE || buf[BOOT_ID_SIZE] == '\n') &&
        strspn(buf, "0123456789abcdef-") == BOOT_ID_SIZE) {
        memcpy(bc->boot_id, buf, BOOT_ID_SIZE);
        bc->boot_id[BOOT_ID_SIZE] = '\0';
    }
}

/* ---- open descriptors of verified files (caller holds the lock) ---- */

static void fd_unlink(blockcache *bc, open_block *ob)
{
    DLIST_UNLINK(bc->fd_newest, bc->fd_oldest, ob, newer, older);
}

static void fd_push_newest(blockcache *bc, open_block *ob)
{
    DLIST_PUSH_FIRST(bc->fd_newest, bc->fd_oldest, ob, newer, older);
}

/* Takes ob off its block and the list; closes it unless a read is using
 * it (that read closes it when done: fd_release). */
void blockfd_detach(blockcache *bc, open_block *ob)
{
    fd_unlink(bc, ob);
    ob->entry->open = NULL;
    ob->entry = NULL;
    bc->stats.open_files--;
    if (ob->users == 0) {
        close(ob->fd);
        free(ob);
    }
}

void blockfd_release(open_block *ob)
{
    if (--ob->users == 0 && ob->entry == NULL) {
        close(ob->fd);
        free(ob);
    }
}

/* Keeps ob (a checked file of e) open as the newest; closes the oldest
 * beyond max_open_files. */
static void fd_attach(blockcache *bc, cache_entry *e, open_block *ob)
{
    ob->entry = e;
    e->open = ob;
    fd_push_newest(bc, ob);
    bc->stats.open_files++;
    while (bc->stats.open_files > bc->max_open_files)
        blockfd_detach(bc, bc->fd_oldest);
}

/* Reads exactly len bytes at offset; -EBADMSG if the file ends first. */
int blockfd_read_exact(int fd, void *buf, size_t len, off_t offset)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done,
                          offset + (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EBADMSG; /* shrank under us */
        done += (size_t)n;
    }
    return 0;
}

/* Opens the block file for key and checks it: its header always; its data
 * against the header's digest unless a seal of this boot vouches for the
 * file as it is (then no data is read). The data checked goes into `data`
 * (len bytes) when given, else into a buffer of its own. Returns the open
 * descriptor, with *hashed saying whether the data was read and checked
 * and *sealed_mtime the mtime its seal holds (-1: none); -ENOENT if the
 * file is gone, -EBADMSG if it fails its check, or another -errno. With
 * `small` (blockfd_acquire), the whole file is asked into the page cache. */
int blockfd_open_file(const blockcache *bc, const block_key *key,
                      uint32_t len, struct stat *st)
{
    char path[PATH_MAX];
    blockcache_block_path(bc, key, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOTDIR || errno == ELOOP ? -ENOENT : -errno;
    int rc = 0;
    if (fstat(fd, st) != 0)
        rc = -errno;
    else if (!S_ISREG(st->st_mode) ||
             (uint64_t)st->st_size != (uint64_t)HEADER_SIZE + len)
        rc = -EBADMSG;
    if (rc != 0) {
        close(fd);
        return rc;
    }
    return fd;
}

static int open_checked(const blockcache *bc, const block_key *key,
                        uint32_t len, unsigned char *data, bool small,
                        bool *hashed, int64_t *sealed_mtime)
{
    *hashed = false;
    *sealed_mtime = -1;
    struct stat st;
    int fd = blockfd_open_file(bc, key, len, &st);
    if (fd < 0)
        return fd;
    unsigned char header[HEADER_SIZE];
    int rc = 0;
    /* A small read of a block is followed by reads of its other parts: the
     * whole file is asked for now, one disk read, not one per part. A large
     * read is left to the kernel's read-ahead on the read (or splice)
     * itself, which fills the page cache in large folios: WILLNEED fills it
     * a page at a time, and cost a third of the daemon's CPU on a
     * sequential read of a 256 MiB object from the cache after a remount
     * (0.24 s -> 0.20 s without it, medians of 6 runs, 2026-12-05). */
    if (rc == 0 && small)
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
    if (rc == 0)
        rc = blockfd_read_exact(fd, header, HEADER_SIZE, 0);
    if (rc == 0 && seal_matches(bc, fd, &st)) {
        rc = header_check_fields(header, key, len);
        if (rc == 0)
            *sealed_mtime = blockfd_mtime_ns(&st);
    } else if (rc == 0) {
        unsigned char *buf = data != NULL ? data : malloc(len);
        rc = buf != NULL ? blockfd_read_exact(fd, buf, len, HEADER_SIZE)
                         : -ENOMEM;
        *hashed = rc == 0;
        if (rc == 0)
            rc = header_verify(header, key, buf, len);
        if (buf != data)
            free(buf);
        /* The mtime from before the read: a write since moved it, and the
         * seal then no longer matches. */
        if (rc == 0 && blockfd_seal_write(bc, fd, blockfd_mtime_ns(&st)))
            *sealed_mtime = blockfd_mtime_ns(&st);
    }
    if (rc != 0) {
        close(fd);
        return rc;
    }
    return fd;
}

/* Makes block key's checked descriptor ready and takes a use of it
 * (*out, given back with read_done): an open one at once; else one thread
 * opens and checks the file while others wait for the outcome. When that
 * check read the data into `data` (a whole-block read), *filled says so.
 * Counts misses, opens and damaged files itself; 0, -ENOENT (a miss) or
 * another -errno. */
int blockfd_acquire(blockcache *bc, const block_key *key, uint32_t block_len,
                    unsigned char *data, bool small, open_block **out,
                    uint64_t *generation_out, bool *filled)
{
    *filled = false;
    pthread_mutex_lock(&bc->lock);
    cache_entry *e;
    for (;;) {
        e = blockcache_index_find(bc, key);
        if (e == NULL) {
            bc->stats.misses++;
            pthread_mutex_unlock(&bc->lock);
            return -ENOENT;
        }
        if (e->open != NULL || !e->opening)
            break;
        pthread_cond_wait(&bc->opened, &bc->lock);
    }
    uint64_t generation = e->generation;
    *generation_out = generation;
    open_block *ob = e->open;
    if (ob != NULL) {
        ob->users++;
        fd_unlink(bc, ob);
        fd_push_newest(bc, ob);
        pthread_mutex_unlock(&bc->lock);
        *out = ob;
        return 0;
    }
    e->opening = true;
    pthread_mutex_unlock(&bc->lock);

    bool hashed = false;
    int64_t sealed = -1;
    int fd = open_checked(bc, key, block_len, data, small, &hashed, &sealed);
    if (fd >= 0 && (ob = calloc(1, sizeof(*ob))) == NULL) {
        close(fd);
        fd = -ENOMEM;
    }

    pthread_mutex_lock(&bc->lock);
    if (fd != -ENOENT) {
        bc->stats.file_opens++;
        bc->stats.file_bytes_read +=
            HEADER_SIZE + (hashed ? (uint64_t)block_len : 0);
    }
    if (hashed)
        bc->stats.files_hashed++;
    e = blockcache_index_find(bc, key);
    bool same = e != NULL && e->generation == generation;
    /* Waiters look again once the outcome (kept, or discarded below) is in
     * the index, so a bad file is checked and counted once. */
    if (same)
        e->opening = false;
    pthread_cond_broadcast(&bc->opened);
    if (fd >= 0) {
        ob->fd = fd;
        ob->users = 1;
        if (same && e->open == NULL) {
            fd_attach(bc, e, ob);
            e->sealed = sealed >= 0;
            e->seal_mtime_ns = sealed;
        } /* else evicted or replaced meanwhile: closed at its release */
    } else {
        bc->stats.misses++;
        if (fd == -EBADMSG)
            bc->stats.corrupt++;
        if (same && (fd == -ENOENT || fd == -EBADMSG))
            /* damaged by a crash or the disk, or removed: the caller
             * refetches */
            blockcache_discard_block(bc, e);
    }
    pthread_mutex_unlock(&bc->lock);
    if (fd < 0)
        return fd == -EBADMSG ? -ENOENT : fd;
    *out = ob;
    *filled = hashed && data != NULL; /* and it passed: fd >= 0 */
    return 0;
}
