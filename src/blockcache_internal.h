/*
 * blockcache_internal.h - what blockcache.c (the index, the LRU and its
 * clock, stores) and blockfd.c (block file headers, seals, the checked
 * descriptors kept open) share. Not for other modules: they use
 * blockcache.h. Functions that take the cache's lock say so; the others
 * run under it or touch no shared state.
 */
#ifndef LAKEFUSE_BLOCKCACHE_INTERNAL_H
#define LAKEFUSE_BLOCKCACHE_INTERNAL_H

#include "blockcache.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* A block file: this header, then exactly `length` bytes of data.
 *   0  magic "LFBC"            4  format version (4), little-endian u32
 *   8  data length, u32 LE     12 zero
 *   16 object id (32 bytes)    48 block index, u64 LE
 *   56 XXH3-128 of the data (16 bytes, canonical: big-endian)
 *   72 zero (16 bytes)
 * The id and index catch a file found under another block's name; the
 * digest catches zero-filled or garbled data of the right length (a power
 * loss after the rename, or the disk). It guards against accidents, not
 * against someone who can write the cache directory (who can write the
 * user's files anyway), so a checksum at memory speed serves: version 3
 * had SHA-256, which cost the daemon a quarter of its CPU on a cold
 * sequential read; a version 3 file fails its check and is refetched. */
#define HEADER_SIZE 88
#define HEADER_MAGIC "LFBC"
#define HEADER_VERSION 4u
#define DIGEST_SIZE 16
/* Verified block files kept open (each costs one descriptor): a quarter of
 * the process's descriptor limit, within these bounds. Random reads over
 * more blocks than are kept open reopen (and recheck the header and seal
 * of) a file for almost every read. */
#define MIN_OPEN_FILES 64
#define MAX_OPEN_FILES 1024
/* Hit blocks whose new recency is written to their mtimes at once: the
 * recency of a mount killed before its close loses at most this many. */
#define STAMP_BATCH 1024
/* The seal: an extended attribute saying "this file's data matched its
 * digest in boot BOOT_ID, when its mtime was MTIME". Within that boot the
 * page cache holds what was written or checked, and any write(2) to the
 * file moves its mtime, so a file whose seal matches (same boot, same
 * mtime) is served without hashing it again; a power loss (a new boot) or
 * any change to the file sends it back to the full check.
 *   0 "LFS1"   4 boot id (36 characters)   40 mtime in ns, i64 LE */
#define SEAL_XATTR "user.lakefuse.seal"
#define SEAL_SIZE 48
#define BOOT_ID_SIZE 36

typedef struct block_key {
    unsigned char id[BLOCKCACHE_ID_SIZE];
    uint64_t index;
} block_key;

struct cache_entry;

/* A verified block file held open. It leaves the descriptor list when its
 * block leaves the index or the list is full; the descriptor is closed when
 * no read is using it any more (users == 0). */
typedef struct open_block {
    int fd;
    unsigned users;            /* preads in progress, under the lock */
    struct cache_entry *entry; /* NULL once detached */
    struct open_block *newer;  /* descriptor LRU */
    struct open_block *older;
} open_block;

typedef struct cache_entry {
    block_key key;
    uint64_t generation; /* tells a re-inserted block from the one we saw */
    uint32_t len;
    bool stamp_dirty;    /* used_ns is newer than the file's mtime */
    bool opening;        /* a reader is verifying its file: others wait */
    bool sealed;         /* its file carries a seal of this boot for the
                            mtime below, set or checked by this process */
    int64_t seal_mtime_ns;
    int64_t used_ns;     /* the in-memory LRU clock at its last hit */
    open_block *open;    /* NULL: not opened (verified) yet */
    struct cache_entry *hash_next;
    struct cache_entry *newer; /* LRU list: head is newest, tail oldest */
    struct cache_entry *older;
} cache_entry;

struct blockcache {
    pthread_mutex_t lock;
    pthread_cond_t opened; /* an entry's opening ended */
    char *root; /* DIR/v3 */
    uint64_t max_bytes;
    uint64_t max_entries;
    uint32_t block_size;
    cache_entry **buckets;
    size_t bucket_count; /* a power of two */
    uint64_t entry_count;
    cache_entry *newest;
    cache_entry *oldest;
    uint64_t next_generation;
    int64_t last_stamp_ns; /* LRU clock, written to file mtimes */
    uint64_t temp_counter;
    /* Shards (by their first key byte) known to exist: a block's store
     * skips their mkdir (an ENOENT open makes it again). */
    _Atomic unsigned char shard_made[256];
    open_block *fd_newest; /* descriptor LRU */
    open_block *fd_oldest;
    uint64_t max_open_files; /* MIN_OPEN_FILES..MAX_OPEN_FILES */
    uint64_t dirty_stamps; /* entries with stamp_dirty */
    char boot_id[BOOT_ID_SIZE + 1]; /* "" when unknown: nothing is sealed */
    blockcache_stats stats;
};

static inline void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* ---- blockcache.c (callers hold the lock) ---- */

/* DIR/v3/<2 hex>/<id hex>-<index> into out. */
void blockcache_block_path(const blockcache *bc, const block_key *key,
                           char *out, size_t cap);
cache_entry *blockcache_index_find(const blockcache *bc, const block_key *key);
/* Drops a block from the index and from disk. */
void blockcache_discard_block(blockcache *bc, cache_entry *e);

/* ---- blockfd.c ---- */

/* The header a block file for key with these len bytes must start with. */
void blockfd_header_encode(const block_key *key, const void *data,
                          uint32_t len, unsigned char header[HEADER_SIZE]);
int64_t blockfd_mtime_ns(const struct stat *st);
/* Seals fd for the mtime it had when its data was written or checked.
 * Best effort: without a seal the file is only checked again. */
bool blockfd_seal_write(const blockcache *bc, int fd, int64_t mtime_ns);
/* This boot's id into bc->boot_id, or "" (then nothing is sealed). */
void blockfd_read_boot_id(blockcache *bc);
/* Opens block key's file read-only (no link, no FIFO waited for) and
 * checks its shape: a regular file of the header and len bytes (*st, its
 * stat). The descriptor; -ENOENT if it is gone, -EBADMSG if it is anything
 * else, or another -errno. Reads nothing of it. */
int blockfd_open_file(const blockcache *bc, const block_key *key,
                      uint32_t len, struct stat *st);
/* Reads exactly len bytes at offset; -EBADMSG if the file ends first. */
int blockfd_read_exact(int fd, void *buf, size_t len, off_t offset);
/* Under the lock: takes ob off its block and the list; closes it unless a
 * read is using it (that read closes it at its blockfd_release). */
void blockfd_detach(blockcache *bc, open_block *ob);
/* Under the lock: gives back a use taken by blockfd_acquire. */
void blockfd_release(open_block *ob);
/* Takes the lock: makes block key's checked descriptor ready and takes a
 * use of it (*out). An open one at once; else one thread opens and checks
 * the file while others wait for the outcome. When that check read the
 * data into `data` (a whole-block read, len block_len), *filled says so.
 * `small`: the caller reads a small part of the block (a random read), so
 * a file opened now is read into the page cache whole, ahead of the reads
 * of its other parts. Counts misses, opens and damaged files itself; 0,
 * -ENOENT (a miss) or another -errno. */
int blockfd_acquire(blockcache *bc, const block_key *key, uint32_t block_len,
                    unsigned char *data, bool small, open_block **out,
                    uint64_t *generation_out, bool *filled);

#endif
