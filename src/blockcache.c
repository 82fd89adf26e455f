/*
 * blockcache.c - on-disk LRU block cache, DIR/v3/<2 hex>/<id>-<index> with
 * id = SHA-256 of the object's identity (server, storage namespace,
 * physical address, checksum, size: blockcache_make_id). Each file is a
 * header (magic, version, id, length, XXH3-128 of the data) then the
 * block's bytes. The first read of a block file in this process reads it
 * whole and verifies it; a file that fails is removed and reported as a
 * miss, so a block damaged by a crash or the disk is refetched, never
 * served. A verified file stays open (a bounded LRU of descriptors) and
 * later reads pread exactly the bytes asked for: the files' headers, seals
 * and descriptors are blockfd.c's, the index and stores this file's. The
 * LRU clock lives in
 * memory; the recency of hit blocks reaches their files' mtimes in batches
 * and at close (see README, data cache). One mutex guards the index and
 * the descriptor list; block data is read, hashed and written outside it.
 * Never builds a path from a server string, serves a byte of an unverified
 * file, or renames a partial block into place. Older layouts (DIR/v1,
 * DIR/v2: keyed by checksum and size alone, which any writer can claim) are
 * removed, never read.
 */
#include "blockcache_internal.h"
#include "chainhash.h"
#include "dlist.h"

#include <openssl/evp.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define KEY_HEX_LEN (2 * BLOCKCACHE_ID_SIZE)
#define OLD_KEY_HEX_LEN 32 /* v1 and v2 names */
/* Temp files older than this at open were left by a crash, not a writer. */
#define STALE_TEMP_SECONDS 3600
#define TEMP_PREFIX ".tmp-"
/* The layout directory under DIR: bumped when the file format or the
 * keying changes, so a block written by an older lakefuse is never read as
 * a new one. */
#define LAYOUT_DIR "v3"
static const char *const old_layout_dirs[] = {"v1", "v2"};

/* ---- identities, keys and paths ---- */


/* A field as (8-byte length, bytes), NULL as a length no string has: the
 * encoding of the identity is unambiguous, so no two identities share a
 * digest input. */
static int digest_field(EVP_MD_CTX *ctx, const char *s)
{
    unsigned char len[8];
    put_le64(len, s ? (uint64_t)strlen(s) : UINT64_MAX);
    if (EVP_DigestUpdate(ctx, len, sizeof(len)) != 1)
        return -EIO;
    if (s && EVP_DigestUpdate(ctx, s, strlen(s)) != 1)
        return -EIO;
    return 0;
}

/* SHA-256, fetched once: EVP_sha256() makes OpenSSL 3 look the algorithm
 * up again in every EVP_DigestInit_ex (a lock and a search per object
 * opened; 1.6% of the daemon's CPU in a `cat` of 1,000 small files). Kept
 * for the life of the process. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int blockcache_make_id(const blockcache_object *o, blockcache_id *out)
{
    static const char domain[] = "lakefuse block cache v3";
    memset(out, 0, sizeof(*out));
    if (o == NULL)
        return -EINVAL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return -ENOMEM;
    unsigned char size[8];
    put_le64(size, o->size);
    unsigned int n = 0;
    pthread_once(&sha256_once, fetch_sha256);
    const EVP_MD *md = sha256_md ? sha256_md : EVP_sha256();
    int rc = EVP_DigestInit_ex(ctx, md, NULL) == 1 ? 0 : -EIO;
    if (rc == 0 && EVP_DigestUpdate(ctx, domain, sizeof(domain)) != 1)
        rc = -EIO;
    const char *fields[] = {o->server, o->namespace, o->address, o->checksum};
    for (size_t i = 0; rc == 0 && i < sizeof(fields) / sizeof(*fields); i++)
        rc = digest_field(ctx, fields[i]);
    if (rc == 0 && EVP_DigestUpdate(ctx, size, sizeof(size)) != 1)
        rc = -EIO;
    if (rc == 0 && (EVP_DigestFinal_ex(ctx, out->digest, &n) != 1 ||
                    n != BLOCKCACHE_ID_SIZE))
        rc = -EIO;
    EVP_MD_CTX_free(ctx);
    if (rc == 0)
        out->size = o->size;
    else
        memset(out, 0, sizeof(*out));
    return rc;
}

static void make_key(const blockcache_id *id, uint64_t index, block_key *key)
{
    memcpy(key->id, id->digest, BLOCKCACHE_ID_SIZE);
    key->index = index;
}

static void key_hex(const block_key *key, char out[KEY_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < BLOCKCACHE_ID_SIZE; i++) {
        out[2 * i] = digits[key->id[i] >> 4];
        out[2 * i + 1] = digits[key->id[i] & 15];
    }
    out[KEY_HEX_LEN] = '\0';
}

/* DIR/v3/<2 hex> into out; length was checked at open. */
static void shard_path(const blockcache *bc, const block_key *key,
                       char *out, size_t cap)
{
    char hex[KEY_HEX_LEN + 1];
    key_hex(key, hex);
    snprintf(out, cap, "%s/%.2s", bc->root, hex);
}

void blockcache_block_path(const blockcache *bc, const block_key *key,
                           char *out, size_t cap)
{
    char hex[KEY_HEX_LEN + 1];
    key_hex(key, hex);
    snprintf(out, cap, "%s/%.2s/%s-%llu", bc->root, hex, hex,
             (unsigned long long)key->index);
}

/* The exact length of block `index` of id's object, or 0 if the object
 * has no such block or bc or id is missing: what every call taking a block
 * checks first (0 is their -EINVAL). */
static uint64_t block_length(const blockcache *bc, const blockcache_id *id,
                             uint64_t index)
{
    if (bc == NULL || id == NULL)
        return 0;
    uint64_t object_size = id->size;
    uint32_t block_size = bc->block_size;
    uint64_t block_count = object_size / block_size +
                           (object_size % block_size != 0 ? 1 : 0);
    if (index >= block_count)
        return 0;
    if (index == block_count - 1 && object_size % block_size != 0)
        return object_size % block_size;
    return block_size;
}

/* ---- the index: hash table plus LRU list; caller holds the lock ---- */

static size_t key_bucket(const blockcache *bc, const block_key *key)
{
    uint64_t lo;
    memcpy(&lo, key->id, sizeof(lo)); /* a SHA-256: any 8 bytes will do */
    uint64_t h = lo ^ (key->index * 0xC2B2AE3D27D4EB4FULL);
    h ^= h >> 29;
    return (size_t)(h & (bc->bucket_count - 1));
}

static bool key_equal(const block_key *a, const block_key *b)
{
    return a->index == b->index &&
           memcmp(a->id, b->id, BLOCKCACHE_ID_SIZE) == 0;
}

cache_entry *blockcache_index_find(const blockcache *bc, const block_key *key)
{
    cache_entry *e = bc->buckets[key_bucket(bc, key)];
    while (e != NULL && !key_equal(&e->key, key))
        e = e->hash_next;
    return e;
}

static void lru_unlink(blockcache *bc, cache_entry *e)
{
    DLIST_UNLINK(bc->newest, bc->oldest, e, newer, older);
}

static void lru_push_newest(blockcache *bc, cache_entry *e)
{
    DLIST_PUSH_FIRST(bc->newest, bc->oldest, e, newer, older);
}

static int index_grow(blockcache *bc)
{
    size_t new_count = bc->bucket_count * 2;
    cache_entry **fresh = calloc(new_count, sizeof(*fresh));
    if (fresh == NULL)
        return -ENOMEM;
    cache_entry **old = bc->buckets;
    size_t old_count = bc->bucket_count;
    bc->buckets = fresh;
    bc->bucket_count = new_count;
    CHAIN_REHASH(cache_entry, e, hash_next, old, old_count, fresh,
                 key_bucket(bc, &e->key));
    free(old);
    return 0;
}

/* Adds a block as the newest; the key must not be present. */
static int index_insert(blockcache *bc, const block_key *key, uint32_t len)
{
    if (bc->entry_count >= bc->bucket_count)
        (void)index_grow(bc); /* on failure, longer chains still work */
    cache_entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return -ENOMEM;
    e->key = *key;
    e->len = len;
    e->generation = bc->next_generation++;
    size_t b = key_bucket(bc, key);
    e->hash_next = bc->buckets[b];
    bc->buckets[b] = e;
    lru_push_newest(bc, e);
    bc->entry_count++;
    bc->stats.used_bytes += len;
    return 0;
}

static void index_remove(blockcache *bc, cache_entry *e)
{
    if (e->open != NULL)
        blockfd_detach(bc, e->open);
    if (e->stamp_dirty)
        bc->dirty_stamps--;
    cache_entry **link = &bc->buckets[key_bucket(bc, &e->key)];
    while (*link != e)
        link = &(*link)->hash_next;
    *link = e->hash_next;
    lru_unlink(bc, e);
    bc->entry_count--;
    bc->stats.used_bytes -= e->len;
    free(e);
}

/* Drops a block from the index and from disk. */
void blockcache_discard_block(blockcache *bc, cache_entry *e)
{
    char path[PATH_MAX];
    blockcache_block_path(bc, &e->key, path, sizeof(path));
    unlink(path);
    index_remove(bc, e);
}

static void evict_to_budget(blockcache *bc)
{
    while (bc->oldest != NULL && (bc->stats.used_bytes > bc->max_bytes ||
                                  bc->entry_count > bc->max_entries)) {
        blockcache_discard_block(bc, bc->oldest);
        bc->stats.evictions++;
    }
}

/* A strictly increasing wall-clock stamp, so two touches in one clock tick
 * still order correctly on disk. */
static struct timespec next_stamp(blockcache *bc)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t ns = (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
    if (ns <= bc->last_stamp_ns)
        ns = bc->last_stamp_ns + 1;
    bc->last_stamp_ns = ns;
    struct timespec stamp = {ns / 1000000000LL, ns % 1000000000LL};
    return stamp;
}

static void set_mtime(int fd, struct timespec stamp)
{
    struct timespec times[2] = {stamp, stamp};
    (void)futimens(fd, times); /* best effort: only the remount order */
}

static struct timespec stamp_time(int64_t ns)
{
    struct timespec t = {ns / 1000000000LL, ns % 1000000000LL};
    return t;
}

/* ---- the LRU clock's persistence ---- */

/* A use: the newest in memory, its stamp to be written later. */
static void touch_entry(blockcache *bc, cache_entry *e)
{
    lru_unlink(bc, e);
    lru_push_newest(bc, e);
    (void)next_stamp(bc);
    e->used_ns = bc->last_stamp_ns;
    if (!e->stamp_dirty)
        bc->dirty_stamps++;
    e->stamp_dirty = true;
}

typedef struct stamp_item {
    block_key key;
    int64_t used_ns;
    bool sealed;
    int64_t seal_mtime_ns;
} stamp_item;

/* Takes the recency stamps not yet written (oldest first, at most cap);
 * the caller writes them with write_stamps, outside the lock. */
static size_t take_stamps(blockcache *bc, stamp_item *items, size_t cap)
{
    size_t n = 0;
    for (cache_entry *e = bc->oldest; e != NULL && n < cap; e = e->newer) {
        if (!e->stamp_dirty)
            continue;
        items[n].key = e->key;
        items[n].used_ns = e->used_ns;
        items[n].sealed = e->sealed;
        items[n].seal_mtime_ns = e->seal_mtime_ns;
        n++;
        e->stamp_dirty = false;
        bc->dirty_stamps--;
    }
    return n;
}

/* Dates one block file; a file sealed for the mtime it still has (not
 * written to since) is sealed again for its new one, anything else loses
 * its seal (its new mtime no longer matches). Returns the mtime sealed, or
 * -1. Best effort: a block evicted meanwhile has no file to stamp. */
static int64_t write_stamp(blockcache *bc, const stamp_item *item)
{
    char path[PATH_MAX];
    blockcache_block_path(bc, &item->key, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return -1;
    struct stat st;
    bool keep = item->sealed && fstat(fd, &st) == 0 &&
                blockfd_mtime_ns(&st) == item->seal_mtime_ns;
    set_mtime(fd, stamp_time(item->used_ns));
    int64_t sealed = -1;
    if (keep && fstat(fd, &st) == 0 &&
        blockfd_seal_write(bc, fd, blockfd_mtime_ns(&st)))
        sealed = blockfd_mtime_ns(&st);
    close(fd);
    return sealed;
}

static void write_stamps(blockcache *bc, const stamp_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int64_t sealed = write_stamp(bc, &items[i]);
        if (!items[i].sealed)
            continue;
        pthread_mutex_lock(&bc->lock);
        cache_entry *e = blockcache_index_find(bc, &items[i].key);
        if (e != NULL && e->sealed &&
            e->seal_mtime_ns == items[i].seal_mtime_ns) {
            e->sealed = sealed >= 0;
            e->seal_mtime_ns = sealed;
        }
        pthread_mutex_unlock(&bc->lock);
    }
    pthread_mutex_lock(&bc->lock);
    bc->stats.stamps_written += n;
    pthread_mutex_unlock(&bc->lock);
}

/* Writes every pending stamp when STAMP_BATCH have gathered (or all, at
 * close), so the order survives a remount without a write per hit. */
static void flush_stamps(blockcache *bc, bool all)
{
    pthread_mutex_lock(&bc->lock);
    uint64_t pending = bc->dirty_stamps;
    stamp_item *items = NULL;
    size_t n = 0;
    if (pending > 0 && (all || pending >= STAMP_BATCH)) {
        items = malloc(pending * sizeof(*items));
        if (items != NULL)
            n = take_stamps(bc, items, pending);
    }
    pthread_mutex_unlock(&bc->lock);
    if (n > 0)
        write_stamps(bc, items, n);
    free(items);
}

/* ---- rebuilding the index at open ---- */

typedef struct found_block {
    block_key key;
    uint32_t len;
    int64_t mtime_ns;
} found_block;

typedef struct found_list {
    found_block *items;
    size_t count;
    size_t cap;
} found_list;

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* "<hex_len lowercase hex>-<decimal index>" in the shard named by its
 * first two characters; anything else is not ours. The id's bytes go to
 * id (hex_len / 2 of them) when it is not NULL. */
static bool parse_name(const char *shard, const char *name, size_t hex_len,
                       unsigned char *id, uint64_t *index_out)
{
    if (strlen(name) < hex_len + 2 || name[hex_len] != '-' ||
        strncmp(name, shard, 2) != 0)
        return false;
    for (size_t i = 0; i < hex_len; i += 2) {
        int hi = hex_digit(name[i]);
        int lo = hex_digit(name[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        if (id != NULL)
            id[i / 2] = (unsigned char)(hi << 4 | lo);
    }
    const char *digits = name + hex_len + 1;
    uint64_t index = 0;
    for (const char *p = digits; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || (p == digits && *p == '0' && p[1]))
            return false;
        unsigned d = (unsigned)(*p - '0');
        if (index > (UINT64_MAX - d) / 10)
            return false;
        index = index * 10 + d;
    }
    *index_out = index;
    return true;
}

static bool parse_block_name(const char *shard, const char *name,
                             block_key *key)
{
    return parse_name(shard, name, KEY_HEX_LEN, key->id, &key->index);
}

static int found_add(found_list *list, const found_block *b)
{
    if (list->count == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 256;
        found_block *items = realloc(list->items, cap * sizeof(*items));
        if (items == NULL)
            return -ENOMEM;
        list->items = items;
        list->cap = cap;
    }
    list->items[list->count++] = *b;
    return 0;
}

static int scan_shard(blockcache *bc, const char *shard, found_list *list)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", bc->root, shard);
    DIR *d = opendir(path);
    if (d == NULL)
        return 0; /* a shard we cannot list holds nothing we can use */
    int dfd = dirfd(d);
    time_t now = time(NULL);
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        struct stat st;
        if (de->d_name[0] == '.' && strncmp(de->d_name, TEMP_PREFIX,
                                            strlen(TEMP_PREFIX)) != 0)
            continue;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        if (strncmp(de->d_name, TEMP_PREFIX, strlen(TEMP_PREFIX)) == 0) {
            if (now - st.st_mtime > STALE_TEMP_SECONDS)
                unlinkat(dfd, de->d_name, 0);
            continue;
        }
        found_block b;
        if (!parse_block_name(shard, de->d_name, &b.key))
            continue;
        if (st.st_size <= HEADER_SIZE ||
            (uint64_t)st.st_size - HEADER_SIZE > bc->block_size) {
            unlinkat(dfd, de->d_name, 0); /* can never be a valid block */
            bc->stats.corrupt++;
            continue;
        }
        b.len = (uint32_t)(st.st_size - HEADER_SIZE);
        b.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL +
                     st.st_mtim.tv_nsec;
        rc = found_add(list, &b);
    }
    closedir(d);
    return rc;
}

static int compare_found_by_mtime(const void *a, const void *b)
{
    const found_block *x = a;
    const found_block *y = b;
    if (x->mtime_ns != y->mtime_ns)
        return x->mtime_ns < y->mtime_ns ? -1 : 1;
    return 0;
}

static bool is_shard_name(const char *name)
{
    return strlen(name) == 2 && strspn(name, "0123456789abcdef") == 2;
}

static int rebuild_index(blockcache *bc)
{
    DIR *d = opendir(bc->root);
    if (d == NULL)
        return -errno;
    found_list list = {NULL, 0, 0};
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (is_shard_name(de->d_name)) {
            rc = scan_shard(bc, de->d_name, &list);
            unsigned byte = (unsigned)strtoul(de->d_name, NULL, 16);
            atomic_store_explicit(&bc->shard_made[byte], 1,
                                  memory_order_relaxed);
        }
    }
    closedir(d);
    if (rc == 0 && list.count > 0) {
        qsort(list.items, list.count, sizeof(*list.items),
              compare_found_by_mtime);
        for (size_t i = 0; i < list.count && rc == 0; i++) {
            found_block *b = &list.items[i];
            if (blockcache_index_find(bc, &b->key) == NULL)
                rc = index_insert(bc, &b->key, b->len);
            if (b->mtime_ns > bc->last_stamp_ns)
                bc->last_stamp_ns = b->mtime_ns;
        }
    }
    free(list.items);
    if (rc == 0)
        evict_to_budget(bc);
    return rc;
}

/* Blocks of the layout before headers cannot be verified: drop them, so
 * they are neither served nor left holding disk space. Only names this
 * cache writes are removed; best effort. */
static void remove_old_shard(int parent, const char *shard)
{
    int fd = openat(parent, shard,
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t index;
        if (parse_name(shard, de->d_name, OLD_KEY_HEX_LEN, NULL, &index) ||
            strncmp(de->d_name, TEMP_PREFIX, strlen(TEMP_PREFIX)) == 0)
            unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
    unlinkat(parent, shard, AT_REMOVEDIR);
}

static void remove_old_layout(const char *dir, const char *layout)
{
    char old[PATH_MAX];
    snprintf(old, sizeof(old), "%s/%s", dir, layout);
    DIR *d = opendir(old);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (is_shard_name(de->d_name))
            remove_old_shard(dirfd(d), de->d_name);
    }
    closedir(d);
    rmdir(old);
}

/* ---- public API ---- */

static int make_dir(const char *path)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Marks the layout root as a top of a directory hierarchy (FS_TOPDIR_FL),
 * so that ext4 spreads the shards made in it over its block groups, as it
 * does for directories at the root of the file system, instead of putting
 * them all in the root's group. A new file's inode is looked for in its
 * shard's group, and on ext4 without a journal each inode allocation
 * steps over every inode of that group freed in the last 5-30 s: after
 * thousands of files were deleted nearby (an old cache removed, the
 * benchmark's previous runs), storing 1,000 small blocks cost the daemon
 * 0.4 s of CPU in the first run of a `cat` of 1,000 files and 1.3 s in the
 * fifth (on tmpfs, 0.35-0.46 s in every run). Best effort: other file
 * systems ignore or refuse the flag. */
static void spread_shards(const char *root)
{
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return;
    int flags = 0;
    if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && !(flags & FS_TOPDIR_FL)) {
        flags |= FS_TOPDIR_FL;
        (void)ioctl(fd, FS_IOC_SETFLAGS, &flags);
    }
    close(fd);
}

/* How many checked block files stay open: a quarter of the descriptor
 * limit (the rest is for staging files, connections and the kernel's
 * requests), within MIN_OPEN_FILES..MAX_OPEN_FILES. */
static uint64_t open_files_bound(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return MIN_OPEN_FILES;
    uint64_t n = rl.rlim_cur == RLIM_INFINITY ? MAX_OPEN_FILES
                                              : (uint64_t)rl.rlim_cur / 4;
    if (n < MIN_OPEN_FILES)
        n = MIN_OPEN_FILES;
    return n > MAX_OPEN_FILES ? MAX_OPEN_FILES : n;
}

/* Makes the shards a new cache lacks, at open: a mkdir in a directory
 * marked FS_TOPDIR_FL costs ext4 a search of its block groups (about a
 * quarter of the daemon's CPU while the first 1,000 small files read
 * after a mount were stored, when each first store of a shard made it).
 * A shard that cannot be made now is made by its first store. */
static void make_shards(blockcache *bc)
{
    char path[PATH_MAX];
    for (unsigned i = 0; i < 256; i++) {
        if (atomic_load_explicit(&bc->shard_made[i], memory_order_relaxed))
            continue;
        snprintf(path, sizeof(path), "%s/%02x", bc->root, i);
        if (make_dir(path) == 0)
            atomic_store_explicit(&bc->shard_made[i], 1,
                                  memory_order_relaxed);
    }
}

blockcache *blockcache_open(const char *dir, uint64_t max_bytes,
                            uint32_t block_size, int *err)
{
    int rc = 0;
    blockcache *bc = NULL;
    /* Room for "/v3/xx/" + key + "-" + index + a temp suffix. */
    if (dir == NULL || block_size == 0 || strlen(dir) + 200 >= PATH_MAX) {
        rc = -EINVAL;
        goto out;
    }
    bc = calloc(1, sizeof(*bc));
    if (bc == NULL || (bc->root = malloc(strlen(dir) + 4)) == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    sprintf(bc->root, "%s/" LAYOUT_DIR, dir);
    bc->max_bytes = max_bytes;
    bc->max_entries = max_bytes / 4096 + 1024;
    bc->block_size = block_size;
    bc->stats.max_bytes = max_bytes;
    bc->max_open_files = open_files_bound();
    bc->bucket_count = 1024;
    bc->buckets = calloc(bc->bucket_count, sizeof(*bc->buckets));
    if (bc->buckets == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    rc = make_dir(dir);
    if (rc == 0)
        rc = make_dir(bc->root);
    if (rc == 0)
        spread_shards(bc->root);
    if (rc == 0)
        rc = -pthread_mutex_init(&bc->lock, NULL);
    if (rc != 0)
        goto out;
    blockfd_read_boot_id(bc);
    rc = -pthread_cond_init(&bc->opened, NULL);
    if (rc != 0) {
        pthread_mutex_destroy(&bc->lock);
        goto out;
    }
    for (size_t i = 0; i < sizeof(old_layout_dirs) / sizeof(*old_layout_dirs);
         i++)
        remove_old_layout(dir, old_layout_dirs[i]);
    rc = rebuild_index(bc);
    if (rc != 0) {
        blockcache_close(bc);
        bc = NULL;
    } else {
        make_shards(bc);
    }
out:
    if (rc != 0 && bc != NULL) { /* failed before the mutex existed */
        free(bc->buckets);
        free(bc->root);
        free(bc);
        bc = NULL;
    }
    if (err != NULL)
        *err = rc;
    return bc;
}

void blockcache_close(blockcache *bc)
{
    if (bc == NULL)
        return;
    flush_stamps(bc, true);
    while (bc->fd_oldest != NULL) /* no read is running: all close now */
        blockfd_detach(bc, bc->fd_oldest);
    cache_entry *e = bc->newest;
    while (e != NULL) {
        cache_entry *next = e->older;
        free(e);
        e = next;
    }
    pthread_cond_destroy(&bc->opened);
    pthread_mutex_destroy(&bc->lock);
    free(bc->buckets);
    free(bc->root);
    free(bc);
}

uint32_t blockcache_block_size(const blockcache *bc)
{
    return bc->block_size;
}

/* Under the lock: a hit of len bytes (bytes_read of them read from the
 * file here). Returns whether a batch of stamps is due. */
static bool count_hit(blockcache *bc, const block_key *key,
                      uint64_t generation, size_t len, size_t bytes_read)
{
    bc->stats.hits++;
    bc->stats.bytes_served += len;
    bc->stats.file_bytes_read += bytes_read;
    cache_entry *e = blockcache_index_find(bc, key);
    if (e != NULL && e->generation == generation)
        touch_entry(bc, e);
    return bc->dirty_stamps >= STAMP_BATCH;
}

/* A range of one block taken for blockcache_read or blockcache_pin. */
typedef struct range_use {
    block_key key;
    open_block *ob;
    uint64_t generation;
    bool filled; /* the check read the whole block into the caller's buffer */
} range_use;

/* A read of at most 1/this of a block is small (blockfd_acquire). */
#define SMALL_READ_FRACTION 8

/* What blockcache_read and blockcache_pin share: the range must lie within
 * block `index` of the object (-EINVAL otherwise); then the block's checked
 * descriptor is taken for the caller (blockfd_acquire: -ENOENT on a miss).
 * `whole`, when not NULL, is filled (u->filled) if the range is the whole
 * block and its file is checked now: a whole-block read is checked
 * straight into the caller's buffer. */
static int range_acquire(blockcache *bc, const blockcache_id *id,
                         uint64_t index, uint64_t offset, size_t len,
                         void *whole, range_use *u)
{
    uint64_t block_len = block_length(bc, id, index);
    if (block_len == 0 || len == 0 || offset >= block_len ||
        len > block_len - offset)
        return -EINVAL;
    make_key(id, index, &u->key);
    if (offset != 0 || len != block_len)
        whole = NULL;
    bool small = len <= block_len / SMALL_READ_FRACTION;
    return blockfd_acquire(bc, &u->key, (uint32_t)block_len, whole, small,
                           &u->ob, &u->generation, &u->filled);
}

ssize_t blockcache_read(blockcache *bc, const blockcache_id *id,
                        uint64_t index, uint64_t offset, void *buf,
                        size_t len)
{
    if (buf == NULL)
        return -EINVAL;
    range_use u;
    int rc = range_acquire(bc, id, index, offset, len, buf, &u);
    if (rc != 0)
        return rc;
    if (!u.filled)
        rc = blockfd_read_exact(u.ob->fd, buf, len,
                                (off_t)(HEADER_SIZE + offset));

    pthread_mutex_lock(&bc->lock);
    blockfd_release(u.ob);
    bool flush = false;
    if (rc == 0) {
        flush = count_hit(bc, &u.key, u.generation, len, u.filled ? 0 : len);
    } else {
        bc->stats.misses++;
        if (rc == -EBADMSG) { /* shrank under us */
            bc->stats.corrupt++;
            cache_entry *e = blockcache_index_find(bc, &u.key);
            if (e != NULL && e->generation == u.generation)
                blockcache_discard_block(bc, e);
            rc = -ENOENT;
        }
    }
    pthread_mutex_unlock(&bc->lock);
    if (flush)
        flush_stamps(bc, false);
    return rc == 0 ? (ssize_t)len : rc;
}

int blockcache_pin(blockcache *bc, const blockcache_id *id, uint64_t index,
                   uint64_t offset, size_t len, blockcache_pinned *out)
{
    if (out == NULL)
        return -EINVAL;
    range_use u;
    int rc = range_acquire(bc, id, index, offset, len, NULL, &u);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&bc->lock);
    bool flush = count_hit(bc, &u.key, u.generation, len, len);
    bc->stats.bytes_pinned += len;
    pthread_mutex_unlock(&bc->lock);
    if (flush)
        flush_stamps(bc, false);
    out->fd = u.ob->fd;
    out->pos = (off_t)(HEADER_SIZE + offset);
    out->ref = u.ob;
    return 0;
}

void blockcache_unpin(blockcache *bc, blockcache_pinned *pinned)
{
    if (bc == NULL || pinned == NULL || pinned->ref == NULL)
        return;
    pthread_mutex_lock(&bc->lock);
    blockfd_release(pinned->ref);
    pthread_mutex_unlock(&bc->lock);
    pinned->ref = NULL;
    pinned->fd = -1;
}

ssize_t blockcache_get(blockcache *bc, const blockcache_id *id,
                       uint64_t index, void *buf, size_t cap)
{
    uint64_t len = block_length(bc, id, index);
    if (buf == NULL || len == 0 || cap < len)
        return -EINVAL;
    return blockcache_read(bc, id, index, 0, buf, (size_t)len);
}

bool blockcache_contains(blockcache *bc, const blockcache_id *id,
                         uint64_t index)
{
    if (block_length(bc, id, index) == 0)
        return false;
    block_key key;
    make_key(id, index, &key);
    pthread_mutex_lock(&bc->lock);
    bool found = blockcache_index_find(bc, &key) != NULL;
    pthread_mutex_unlock(&bc->lock);
    return found;
}

int blockcache_warm(blockcache *bc, const blockcache_id *id, uint64_t index,
                    int null_fd)
{
    uint64_t len = block_length(bc, id, index);
    if (len == 0)
        return -EINVAL;
    block_key key;
    make_key(id, index, &key);
    struct stat st;
    int fd = blockfd_open_file(bc, &key, (uint32_t)len, &st);
    if (fd < 0)
        return fd;
    int rc = 0;
    off_t pos = 0;
    while (rc == 0 && pos < st.st_size) {
        ssize_t n = sendfile(null_fd, fd, &pos, (size_t)(st.st_size - pos));
        if (n < 0 && errno != EINTR)
            rc = -errno;
        else if (n == 0)
            break;
    }
    close(fd);
    return rc;
}

static int write_all(int fd, const void *data, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, (const char *)data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;
        done += (size_t)n;
    }
    return 0;
}

/* The header and the block in one writev (a small file's block is one
 * syscall, not two); a short write finishes with write_all. */
static int write_block(int fd, const unsigned char *header, const void *data,
                       size_t len)
{
    struct iovec iov[2] = {{(void *)header, HEADER_SIZE},
                           {(void *)data, len}};
    ssize_t n;
    do
        n = writev(fd, iov, 2);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    size_t done = (size_t)n;
    if (done < HEADER_SIZE) {
        int rc = write_all(fd, header + done, HEADER_SIZE - done);
        if (rc != 0)
            return rc;
        done = HEADER_SIZE;
    }
    return write_all(fd, (const char *)data + (done - HEADER_SIZE),
                     len - (done - HEADER_SIZE));
}

/* Opens a new temp file in the block's shard, making the shard first
 * unless this cache made (or found) it already. */
static int open_temp(blockcache *bc, const block_key *key, const char *shard,
                     const char *tmp_path)
{
    _Atomic unsigned char *made = &bc->shard_made[key->id[0]];
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!atomic_load_explicit(made, memory_order_relaxed)) {
            int rc = make_dir(shard);
            if (rc != 0)
                return rc;
            atomic_store_explicit(made, 1, memory_order_relaxed);
        }
        int fd = open(tmp_path,
                      O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                      0600);
        if (fd >= 0 || errno != ENOENT)
            return fd < 0 ? -errno : fd;
        /* The shard went away behind this cache: make it again. */
        atomic_store_explicit(made, 0, memory_order_relaxed);
    }
    return -ENOENT;
}

/* Writes the block, behind its header, to a fresh temp file in its shard;
 * on success its path is in tmp_path. Never leaves a temp file behind on
 * failure. */
static int write_temp_file(blockcache *bc, const block_key *key,
                           uint64_t counter, const void *data, size_t len,
                           struct timespec stamp, char *tmp_path, size_t cap,
                           int64_t *sealed_mtime)
{
    *sealed_mtime = -1;
    char shard[PATH_MAX];
    char hex[KEY_HEX_LEN + 1];
    unsigned char header[HEADER_SIZE];
    blockfd_header_encode(key, data, (uint32_t)len, header);
    shard_path(bc, key, shard, sizeof(shard));
    key_hex(key, hex);
    int n = snprintf(tmp_path, cap, "%s/" TEMP_PREFIX "%s-%llu-%ld-%llu",
                     shard, hex, (unsigned long long)key->index,
                     (long)getpid(), (unsigned long long)counter);
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    int fd = open_temp(bc, key, shard, tmp_path);
    if (fd < 0)
        return fd;
    int rc = write_block(fd, header, data, len);
    if (rc == 0) {
        set_mtime(fd, stamp);
        struct stat st; /* the mtime as the filesystem keeps it */
        if (fstat(fd, &st) == 0 &&
            blockfd_seal_write(bc, fd, blockfd_mtime_ns(&st)))
            *sealed_mtime = blockfd_mtime_ns(&st);
    }
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp_path);
    return rc;
}

int blockcache_put(blockcache *bc, const blockcache_id *id, uint64_t index,
                   const void *data, size_t len)
{
    uint64_t want = block_length(bc, id, index);
    if (data == NULL || want == 0 || len != want)
        return -EINVAL;
    if (len > bc->max_bytes)
        return 0;
    block_key key;
    make_key(id, index, &key);

    pthread_mutex_lock(&bc->lock);
    cache_entry *e = blockcache_index_find(bc, &key);
    if (e != NULL) {
        touch_entry(bc, e);
        pthread_mutex_unlock(&bc->lock);
        return 0;
    }
    struct timespec stamp = next_stamp(bc);
    uint64_t counter = bc->temp_counter++;
    pthread_mutex_unlock(&bc->lock);

    char tmp_path[PATH_MAX];
    int64_t sealed = -1;
    int rc = write_temp_file(bc, &key, counter, data, len, stamp, tmp_path,
                             sizeof(tmp_path), &sealed);

    pthread_mutex_lock(&bc->lock);
    /* Rename under the lock so the index and the directory agree about
     * which blocks exist when eviction unlinks. */
    if (rc == 0 && blockcache_index_find(bc, &key) != NULL) {
        unlink(tmp_path); /* another thread stored it meanwhile */
    } else if (rc == 0) {
        char path[PATH_MAX];
        blockcache_block_path(bc, &key, path, sizeof(path));
        if (rename(tmp_path, path) != 0) {
            rc = -errno;
            unlink(tmp_path);
        } else {
            rc = index_insert(bc, &key, (uint32_t)len);
            if (rc != 0) {
                unlink(path);
            } else {
                e = blockcache_index_find(bc, &key);
                e->sealed = sealed >= 0;
                e->seal_mtime_ns = sealed;
            }
        }
        if (rc == 0) {
            bc->stats.bytes_stored += len;
            evict_to_budget(bc);
        }
    }
    if (rc != 0)
        bc->stats.write_errors++;
    pthread_mutex_unlock(&bc->lock);
    if (rc == 0)
        flush_stamps(bc, false);
    return rc;
}

void blockcache_get_stats(blockcache *bc, blockcache_stats *out)
{
    pthread_mutex_lock(&bc->lock);
    *out = bc->stats;
    pthread_mutex_unlock(&bc->lock);
}
