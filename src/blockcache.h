/*
 * blockcache.h - the on-disk data cache: fixed-size blocks keyed by a
 * SHA-256 of the object's identity (server, storage namespace, physical
 * address, checksum, size), LRU within a byte budget, shared by later
 * mounts of the same directory. Every block file carries an XXH3-128 of its
 * bytes, checked when this process first opens the file unless a seal of
 * this boot says it was checked (or written) and not written to since;
 * the file then stays open, in a bounded LRU of descriptors, for reads of
 * exact ranges. Never serves a block that fails its check, never shows a
 * partial block, never puts a server string in a path.
 * int/ssize_t results are >= 0 or a negative errno.
 */
#ifndef LAKEFUSE_BLOCKCACHE_H
#define LAKEFUSE_BLOCKCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct blockcache blockcache;

#define BLOCKCACHE_ID_SIZE 32

/* What an object's content is known by. A checksum and a size are only
 * what the object's metadata claims: any writer can link bytes under
 * another object's checksum (linkPhysicalAddress), and any server can
 * claim anything. The server and the storage namespace confine a claim to
 * where it was made, and the physical address to the bytes it names (a
 * presigned URL without its query, which changes with every signature).
 * NULL fields are hashed as absent, distinct from "". */
typedef struct blockcache_object {
    const char *server;    /* the lakeFS endpoint URL */
    const char *namespace; /* the repository's storage namespace */
    const char *address;   /* the object's physical address */
    const char *checksum;
    uint64_t size;
} blockcache_object;

/* The cache key of an object's blocks: SHA-256 of its identity, and its
 * size (which decides each block's length). */
typedef struct blockcache_id {
    unsigned char digest[BLOCKCACHE_ID_SIZE];
    uint64_t size;
} blockcache_id;

/* 0, -ENOMEM or -EIO (libcrypto failed); *out is zeroed on failure. */
int blockcache_make_id(const blockcache_object *object, blockcache_id *out);

typedef struct blockcache_stats {
    uint64_t hits;
    uint64_t misses;
    uint64_t bytes_served;
    uint64_t bytes_stored;
    uint64_t evictions;
    uint64_t used_bytes;
    uint64_t max_bytes;
    uint64_t write_errors;
    uint64_t corrupt; /* block files that failed their check and were
                         removed (at open or on a get) */
    uint64_t file_opens;      /* block files opened (and checked) to read */
    uint64_t files_hashed;    /* of those, read whole and hashed (no seal
                                 of this boot vouched for them) */
    uint64_t file_bytes_read; /* bytes read from block files, headers too */
    uint64_t open_files;      /* verified block files held open now */
    uint64_t bytes_pinned;    /* of bytes_served, handed out as descriptor
                                 ranges (blockcache_pin), not copied */
    uint64_t stamps_written;  /* recency stamps written to file mtimes */
} blockcache_stats;

/* Opens (creating if needed, mode 0700) dir; rebuilds the index from the
 * block files already there (a later mount shares the cache), ordered by
 * file mtimes (a block's last use as far as a previous process wrote it:
 * its store, or a later hit flushed in a batch or at close), and evicts
 * at once if over max_bytes. Files of an impossible size are removed
 * (counted in corrupt); blocks of an older on-disk layout (DIR/v1, DIR/v2)
 * are removed, never read.
 * block_size: bytes per block (e.g. 1 MiB), > 0. The in-memory index holds
 * at most max_bytes / 4096 + 1024 blocks (about 90 bytes each); beyond that
 * the least recently used are evicted even under the byte budget.
 * Sets *err (if err is not NULL) to 0 or -errno; returns NULL on failure. */
blockcache *blockcache_open(const char *dir, uint64_t max_bytes,
                            uint32_t block_size, int *err);
/* Writes the recency of blocks hit since the last batch to their mtimes,
 * closes the kept descriptors, frees. No call may be running on bc. */
void blockcache_close(blockcache *bc);
uint32_t blockcache_block_size(const blockcache *bc);

/* Copies bytes [offset, offset + len) of block `index` of the object id
 * (its size: id->size) into buf. Returns len, -ENOENT when not cached (a
 * miss), -EINVAL for an index past the end or a range outside the block
 * (len 0 included), or another -errno (buf's content is then unspecified).
 * The first read of a block file in this process checks its length and
 * header; unless the file carries a seal of this boot for the mtime it has
 * (set when this boot wrote or hashed it: a power loss is a new boot, and
 * any write moves the mtime), it is read whole (about 0.5 ms per MiB to
 * hash) and checked against the header's digest, then sealed. A file that
 * fails (wrong length, bad header, digest mismatch: a power loss after the
 * rename, or the disk) is removed, counted in corrupt, and is a miss, so
 * the caller refetches it. A file that passes stays open (at most a
 * quarter of the descriptor limit at blockcache_open, between 64 and 1024;
 * least recently read closed first) and later reads pread just the range.
 * A hit makes the block the newest in memory; its file's mtime, which
 * orders the blocks for the next blockcache_open, is written later: by the
 * read or put that finds 1024 hit blocks waiting for it, and at
 * blockcache_close.
 * Thread-safe. */
ssize_t blockcache_read(blockcache *bc, const blockcache_id *id,
                        uint64_t index, uint64_t offset, void *buf,
                        size_t len);

/* A cached range as a descriptor and position, for a caller that hands
 * them on (a splice to /dev/fuse) instead of copying the bytes: the file
 * is checked as for blockcache_read, the hit counted at once, and the
 * descriptor stays open until blockcache_unpin, even if the block is
 * evicted meanwhile. The bytes are [pos, pos + len) of fd. */
typedef struct blockcache_pinned {
    int fd;
    off_t pos;
    struct open_block *ref;
} blockcache_pinned;

/* 0, -ENOENT (a miss), -EINVAL (as blockcache_read) or another -errno. */
int blockcache_pin(blockcache *bc, const blockcache_id *id, uint64_t index,
                   uint64_t offset, size_t len, blockcache_pinned *out);
/* Gives the descriptor back; pinned->ref is NULL afterwards. */
void blockcache_unpin(blockcache *bc, blockcache_pinned *pinned);

/* The whole block: blockcache_read of [0, its length) into buf (cap >= the
 * block's length: block_size, or less for the last block, else -EINVAL).
 * Returns the length. */
ssize_t blockcache_get(blockcache *bc, const blockcache_id *id,
                       uint64_t index, void *buf, size_t cap);

/* Whether the index holds the block; reads no file, counts nothing. A block
 * it holds can still turn out a miss (its file damaged or removed). */
bool blockcache_contains(blockcache *bc, const blockcache_id *id,
                         uint64_t index);

/* Reads the block's file into the page cache, for a reader that will
 * splice it soon (warm.h): opened by name with the shape check of every
 * open (a regular file of the block's size), its bytes not checked, nothing
 * counted or touched (the LRU order stays), its bytes sent to null_fd
 * (/dev/null) by sendfile, which reads through the page cache's usual
 * read-ahead without copying them. 0, -EINVAL (no such block), -ENOENT
 * (not cached), -EBADMSG (not a block file), or the -errno of the open or
 * the read. Thread-safe; takes no lock. */
int blockcache_warm(blockcache *bc, const blockcache_id *id, uint64_t index,
                    int null_fd);

/* Stores a block; len must be its exact length given id->size and the
 * block size (-EINVAL otherwise). Written with its header (and digest) to a
 * temp file then renamed, so no reader ever sees a partial block; used and
 * max bytes count the data, not the 88-byte headers. Evicts LRU blocks to stay under
 * max_bytes. Storing a block already cached only refreshes it; a block
 * larger than max_bytes is not stored (returns 0). A write error (-ENOSPC,
 * -EIO, ...) is returned, counted in write_errors, and leaves the cache
 * consistent. */
int blockcache_put(blockcache *bc, const blockcache_id *id, uint64_t index,
                   const void *data, size_t len);

void blockcache_get_stats(blockcache *bc, blockcache_stats *out);

#endif
