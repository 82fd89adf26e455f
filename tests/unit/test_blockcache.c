/*
 * test_blockcache.c - unit tests of src/blockcache.c against real temporary
 * directories: round trips, block lengths, keys, LRU order in memory and
 * across reopen, crash leftovers, hostile checksums, threads, write errors,
 * and block files damaged on disk (never served, removed and counted).
 * Every test removes the directories it creates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include "testutil.h"

#include "blockcache.h"
#include "warm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define BS 16u        /* block size used by most tests */
#define OBJ_SIZE 40u  /* three blocks: 16, 16, 8 */

typedef testutil_dir_fixture fixture;

static int setup(void **state)
{
    return testutil_dir_setup(state, "test_blockcache");
}

static int teardown(void **state)
{
    return testutil_dir_teardown(state);
}

/* An object's id as the mount makes it, with a fixed server, namespace and
 * address: these tests are about blocks, test_id_* about identities. */
static blockcache_id test_id(const char *checksum, uint64_t size)
{
    blockcache_object o = {"http://lakefs.test/api/v1", "s3://bucket/ns",
                           "s3://bucket/ns/data/x", checksum, size};
    blockcache_id id;
    assert_int_equal(blockcache_make_id(&o, &id), 0);
    return id;
}
#define ID(checksum, size) (&(blockcache_id[1]){test_id((checksum), (size))}[0])

static blockcache *open_cache(const fixture *f, uint64_t max_bytes)
{
    return testutil_open_blockcache(f->cache, max_bytes, BS);
}

/* Deterministic block content, distinct per (seed, index). */
static void fill(unsigned char *buf, size_t len, unsigned seed,
                 uint64_t index)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(seed * 31u + index * 7u + i);
}

static void put_block(blockcache *bc, const char *checksum, uint64_t size,
                      uint64_t index, unsigned seed)
{
    unsigned char data[BS];
    size_t len = BS;
    if ((index + 1) * BS > size)
        len = (size_t)(size - index * BS);
    fill(data, len, seed, index);
    assert_int_equal(blockcache_put(bc, ID(checksum, size), index, data, len), 0);
}

/* Asserts the block is cached with the content put_block gave it. */
static void assert_hit(blockcache *bc, const char *checksum, uint64_t size,
                       uint64_t index, unsigned seed)
{
    unsigned char got[BS];
    unsigned char want[BS];
    ssize_t n = blockcache_get(bc, ID(checksum, size), index, got, sizeof(got));
    assert_true(n > 0);
    fill(want, (size_t)n, seed, index);
    assert_memory_equal(got, want, (size_t)n);
}

static void assert_miss(blockcache *bc, const char *checksum, uint64_t size,
                        uint64_t index)
{
    unsigned char got[BS];
    assert_int_equal(blockcache_get(bc, ID(checksum, size), index, got, BS),
                     -ENOENT);
}

typedef struct file_count {
    int blocks;       /* regular files in DIR/v3/<shard>/ not named .tmp-* */
    int temps;        /* .tmp-* files */
    char last[PATH_MAX];
} file_count;

static file_count walk_result;

static int count_entry(const char *path, const struct stat *st, int flag,
                       struct FTW *ftw)
{
    (void)ftw;
    if (flag == FTW_F && S_ISREG(st->st_mode)) {
        const char *base = strrchr(path, '/') + 1;
        if (strncmp(base, ".tmp-", 5) == 0) {
            walk_result.temps++;
        } else {
            walk_result.blocks++;
            snprintf(walk_result.last, sizeof(walk_result.last), "%s", path);
        }
    }
    return 0;
}

static file_count count_files(const char *dir)
{
    memset(&walk_result, 0, sizeof(walk_result));
    nftw(dir, count_entry, 16, FTW_PHYS);
    return walk_result;
}

static char recent_file[PATH_MAX];
static int recent_files;

static int find_recent(const char *path, const struct stat *st, int flag,
                       struct FTW *ftw)
{
    (void)ftw;
    if (flag == FTW_F && S_ISREG(st->st_mode) &&
        time(NULL) - st->st_mtime < 60) {
        snprintf(recent_file, sizeof(recent_file), "%s", path);
        recent_files++;
    }
    return 0;
}

/* Stores a block and dates its file's mtime `age` seconds ago (all older
 * blocks must already be aged), so the on-disk LRU order does not depend
 * on the clock's granularity. */
static void put_block_aged(const fixture *f, blockcache *bc,
                           const char *checksum, uint64_t size,
                           uint64_t index, unsigned seed, int age)
{
    put_block(bc, checksum, size, index, seed);
    recent_files = 0;
    nftw(f->cache, find_recent, 16, FTW_PHYS);
    assert_int_equal(recent_files, 1);
    time_t then = time(NULL) - age;
    struct timespec times[2] = {{then, 0}, {then, 0}};
    assert_int_equal(utimensat(AT_FDCWD, recent_file, times, 0), 0);
}

static void test_round_trip(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 1 << 20);
    assert_int_equal(blockcache_block_size(bc), BS);
    put_block(bc, "etag-a", OBJ_SIZE, 0, 1);
    put_block(bc, "etag-a", OBJ_SIZE, 1, 1);
    assert_hit(bc, "etag-a", OBJ_SIZE, 0, 1);
    assert_hit(bc, "etag-a", OBJ_SIZE, 1, 1);
    assert_int_equal(count_files(f->cache).blocks, 2);
    assert_int_equal(count_files(f->cache).temps, 0);
    blockcache_close(bc);
}

static void test_miss_is_enoent(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 1 << 20);
    assert_miss(bc, "etag-a", OBJ_SIZE, 0);
    put_block(bc, "etag-a", OBJ_SIZE, 0, 1);
    assert_miss(bc, "etag-a", OBJ_SIZE, 1);
    assert_miss(bc, "etag-b", OBJ_SIZE, 0);
    blockcache_close(bc);
}

/* blockcache_warm reads a stored block's file and nothing else: no hit or
 * miss counted, no file of the cache opened for later reads; a block not
 * stored is -ENOENT, one past the object's end -EINVAL. */
static void test_warm_reads_a_stored_block_and_counts_nothing(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 1 << 20);
    int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    assert_true(null_fd >= 0);
    put_block(bc, "etag-a", OBJ_SIZE, 0, 1);
    blockcache_stats before, after;
    blockcache_get_stats(bc, &before);
    assert_int_equal(blockcache_warm(bc, ID("etag-a", OBJ_SIZE), 0, null_fd), 0);
    assert_int_equal(blockcache_warm(bc, ID("etag-a", OBJ_SIZE), 1, null_fd),
                     -ENOENT);
    assert_int_equal(blockcache_warm(bc, ID("etag-a", OBJ_SIZE),
                                     OBJ_SIZE / BS + 1, null_fd),
                     -EINVAL);
    blockcache_get_stats(bc, &after);
    assert_int_equal(after.hits, before.hits);
    assert_int_equal(after.misses, before.misses);
    assert_int_equal(after.file_opens, before.file_opens);
    assert_int_equal(after.open_files, before.open_files);
    assert_hit(bc, "etag-a", OBJ_SIZE, 0, 1);
    close(null_fd);
    blockcache_close(bc);
}

/* The warmer's threads take each hint once: a stored block is read, one
 * not stored fails; the counters say so once both are done (waited for,
 * at most 10 s). */
static void test_warmer_reads_stored_blocks_and_fails_missing_ones(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 1 << 20);
    put_block(bc, "etag-a", OBJ_SIZE, 0, 1);
    int err = -1;
    warmer *w = warmer_new(bc, &err);
    assert_non_null(w);
    assert_int_equal(err, 0);
    warmer_add(w, ID("etag-a", OBJ_SIZE), 0);
    warmer_add(w, ID("etag-a", OBJ_SIZE), 1);
    warm_stats st;
    for (int i = 0; i < 10000; i++) {
        warmer_get_stats(w, &st);
        if (st.blocks + st.failed == 2)
            break;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    assert_int_equal(st.queued, 2);
    assert_int_equal(st.blocks, 1);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.dropped, 0);
    warmer_free(w);
    warmer_add(NULL, ID("etag-a", OBJ_SIZE), 0); /* no warmer: nothing */
    warmer_get_stats(NULL, &st);
    assert_int_equal(st.queued + st.blocks + st.failed + st.dropped, 0);
    assert_hit(bc, "etag-a", OBJ_SIZE, 0, 1);
    blockcache_close(bc);
}

static void test_last_block_is_short(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 1 << 20);
    unsigned char data[8];
    unsigned char got[8];
    fill(data, sizeof(data), 3, 2);
    assert_int_equal(blockcache_put(bc, ID("e", OBJ_SIZE), 2, data, 8), 0);
    /* A buffer of exactly the short length is enough. */
    assert_int_equal(blockcache_get(bc, ID("e", OBJ_SIZE), 2, got, 8), 8);
    assert_memory_equal(got, data, 8);
    /* Past the end of the object there is no block. */
    assert_int_equal(blockcache_get(bc, ID("e", OBJ_SIZE), 3, got, 8), -EINVAL);
    /* An object that is an exact multiple has a full last block. */
    put_block(bc, "f", 2 * BS, 1, 4);
    unsigned char full[BS];
    assert_int_equal(blockcache_get(bc, ID("f", 2 * BS), 1, full, BS), BS);
    /* A buffer shorter than the block is refused, not overflowed. */
    assert_int_equal(blockcache_get(bc, ID("f", 2 * BS), 1, full, BS - 1),
                     -EINVAL);
    blockcache_close(bc);
}

static void test_wrong_length_put_is_einval(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 1 << 20);
    unsigned char data[BS + 1] = {0};
    assert_int_equal(blockcache_put(bc, ID("e", OBJ_SIZE), 0, data, BS - 1),
                     -EINVAL);
    assert_int_equal(blockcache_put(bc, ID("e", OBJ_SIZE), 0, data, BS + 1),
                     -EINVAL);
    assert_int_equal(blockcache_put(bc, ID("e", OBJ_SIZE), 2, data, BS), -EINVAL);
    assert_int_equal(blockcache_put(bc, ID("e", OBJ_SIZE), 3, data, 8), -EINVAL);
    assert_int_equal(blockcache_put(bc, ID("e", 0), 0, data, 0), -EINVAL);
    assert_miss(bc, "e", OBJ_SIZE, 0);
    assert_int_equal(count_files(f->cache).blocks, 0);
    blockcache_stats st;
    blockcache_get_stats(bc, &st);
    assert_int_equal(st.write_errors, 0); /* a caller bug, not a disk one */
    blockcache_close(bc);
}

static void test_size_is_part_of_key(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 1 << 20);
    put_block(bc, "same", OBJ_SIZE, 0, 1);
    assert_miss(bc, "same", OBJ_SIZE + BS, 0);
    put_block(bc, "same", OBJ_SIZE + BS, 0, 2);
    assert_hit(bc, "same", OBJ_SIZE, 0, 1);
    assert_hit(bc, "same", OBJ_SIZE + BS, 0, 2);
    assert_int_equal(count_files(f->cache).blocks, 2);
    blockcache_close(bc);
}

static void test_lru_eviction_order(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 3 * BS);
    put_block(bc, "a", BS, 0, 1);
    put_block(bc, "b", BS, 0, 2);
    put_block(bc, "c", BS, 0, 3);
    assert_hit(bc, "a", BS, 0, 1); /* a is now the newest; b the oldest */
    put_block(bc, "d", BS, 0, 4);
    assert_miss(bc, "b", BS, 0);
    assert_hit(bc, "c", BS, 0, 3); /* order now: a, d, c (oldest first) */
    put_block(bc, "e", BS, 0, 5);
    assert_miss(bc, "a", BS, 0);
    assert_hit(bc, "c", BS, 0, 3);
    assert_hit(bc, "d", BS, 0, 4);
    assert_hit(bc, "e", BS, 0, 5);
    blockcache_stats st;
    blockcache_get_stats(bc, &st);
    assert_int_equal(st.evictions, 2);
    assert_int_equal(st.used_bytes, 3 * BS);
    assert_int_equal(count_files(f->cache).blocks, 3);
    blockcache_close(bc);
}

static void test_reopen_keeps_blocks_and_lru_order(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 3 * BS);
    put_block_aged(f, bc, "a", BS, 0, 1, 3000);
    put_block_aged(f, bc, "b", BS, 0, 2, 2000);
    put_block_aged(f, bc, "c", OBJ_SIZE, 2, 3, 1000); /* short block too */
    assert_hit(bc, "a", BS, 0, 1); /* oldest first: b, c, a */
    blockcache_close(bc);

    bc = open_cache(f, 3 * BS);
    blockcache_stats st;
    blockcache_get_stats(bc, &st);
    assert_int_equal(st.used_bytes, 2 * BS + 8);
    assert_int_equal(st.evictions, 0);
    put_block(bc, "d", BS, 0, 4); /* must evict b, the oldest by mtime */
    assert_miss(bc, "b", BS, 0);
    assert_hit(bc, "a", BS, 0, 1);
    assert_hit(bc, "c", OBJ_SIZE, 2, 3);
    assert_hit(bc, "d", BS, 0, 4);
    blockcache_close(bc);
}

static void test_reopen_with_smaller_budget_evicts(void **state)
{
    fixture *f = *state;
    const char *names[] = {"a", "b", "c", "d", "e", "f"};
    blockcache *bc = open_cache(f, 6 * BS);
    for (unsigned i = 0; i < 6; i++)
        put_block_aged(f, bc, names[i], BS, 0, i, 6000 - (int)i * 1000);
    assert_hit(bc, "a", BS, 0, 0); /* oldest first: b, c, d, e, f, a */
    blockcache_close(bc);

    bc = open_cache(f, 2 * BS);
    blockcache_stats st;
    blockcache_get_stats(bc, &st);
    assert_int_equal(st.evictions, 4);
    assert_int_equal(st.used_bytes, 2 * BS);
    assert_int_equal(st.max_bytes, 2 * BS);
    assert_int_equal(count_files(f->cache).blocks, 2);
    for (unsigned i = 1; i < 5; i++)
        assert_miss(bc, names[i], BS, 0);
    assert_hit(bc, "a", BS, 0, 0);
    assert_hit(bc, "f", BS, 0, 5);
    blockcache_close(bc);
}

static void test_truncated_block_is_miss_and_removed(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 1 << 20);
    put_block(bc, "a", OBJ_SIZE, 0, 1);
    file_count files = count_files(f->cache);
    assert_int_equal(files.blocks, 1);
    assert_int_equal(truncate(files.last, 5), 0);
    assert_miss(bc, "a", OBJ_SIZE, 0);
    assert_int_equal(access(files.last, F_OK), -1);
    blockcache_stats st;
    blockcache_get_stats(bc, &st);
    assert_int_equal(st.used_bytes, 0);
    assert_int_equal(st.corrupt, 1);
    /* It can be stored again afterwards. */
    put_block(bc, "a", OBJ_SIZE, 0, 1);
    assert_hit(bc, "a", OBJ_SIZE, 0, 1);
    blockcache_close(bc);

    /* Truncated while unmounted: the reopened index must not trust it. */
    assert_int_equal(truncate(files.last, 3), 0);
    bc = open_cache(f, 1 << 20);
    assert_miss(bc, "a", OBJ_SIZE, 0);
    assert_int_equal(access(files.last, F_OK), -1);
    blockcache_close(bc);
}

/* ---- damaged block files: never served, removed, counted ---- */

/* The size of a block file on disk (header and data). */
static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* Overwrites len bytes at offset (negative: from the end) with byte, or
 * flips them when flip is set; the file keeps its length. */
static void damage(const char *path, off_t offset, size_t len, int byte,
                   bool flip)
{
    off_t size = file_size(path);
    if (offset < 0)
        offset += size;
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char buf[4096];
    assert_true(len <= sizeof(buf));
    assert_int_equal(pread(fd, buf, len, offset), (ssize_t)len);
    for (size_t i = 0; i < len; i++)
        buf[i] = flip ? (unsigned char)(buf[i] ^ 0x01) : (unsigned char)byte;
    assert_int_equal(pwrite(fd, buf, len, offset), (ssize_t)len);
    close(fd);
    assert_int_equal(file_size(path), size);
}

static uint64_t corrupt_count(blockcache *bc)
{
    blockcache_stats st;
    blockcache_get_stats(bc, &st);
    return st.corrupt;
}

/* Opens the cache again: the one block file there was, damaged, is a miss,
 * counted corrupt and removed. */
static blockcache *reopen_catching_damage(const fixture *f,
                                          const char *checksum,
                                          uint64_t size, uint64_t index)
{
    blockcache *bc = open_cache(f, 1 << 20);
    assert_miss(bc, checksum, size, index);
    assert_int_equal(corrupt_count(bc), 1);
    assert_int_equal(count_files(f->cache).blocks, 0);
    return bc;
}

static void test_flipped_data_byte_is_refetched_not_served(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 1 << 20);
    put_block(bc, "a", OBJ_SIZE, 2, 1); /* the short last block */
    file_count files = count_files(f->cache);
    assert_int_equal(files.blocks, 1);
    assert_int_equal(corrupt_count(bc), 0);
    damage(files.last, -1, 1, 0, true); /* the data's last byte */
    assert_miss(bc, "a", OBJ_SIZE, 2);
    assert_int_equal(corrupt_count(bc), 1);
    assert_int_equal(access(files.last, F_OK), -1);
    blockcache_stats st;
    blockcache_get_stats(bc, &st);
    assert_int_equal(st.used_bytes, 0);
    assert_int_equal(st.hits, 0);
    /* Refetched by the caller and stored again: served from then on. */
    put_block(bc, "a", OBJ_SIZE, 2, 1);
    assert_hit(bc, "a", OBJ_SIZE, 2, 1);
    assert_int_equal(corrupt_count(bc), 1);
    blockcache_close(bc);

    /* Damaged while unmounted: the reopened cache checks it too. */
    damage(files.last, -(off_t)3, 1, 0, true);
    bc = reopen_catching_damage(f, "a", OBJ_SIZE, 2);
    blockcache_close(bc);
}

static void test_zero_filled_block_is_a_miss(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 1 << 20);
    put_block(bc, "a", OBJ_SIZE, 0, 1);
    put_block(bc, "a", OBJ_SIZE, 1, 1);
    file_count files = count_files(f->cache);
    assert_int_equal(files.blocks, 2);
    /* What a power loss after the rename can leave: the right length, all
     * zeros (header included). */
    damage(files.last, 0, (size_t)file_size(files.last), 0, false);
    unsigned char got[BS];
    int misses = 0;
    for (uint64_t i = 0; i < 2; i++) {
        ssize_t n = blockcache_get(bc, ID("a", OBJ_SIZE), i, got, BS);
        if (n == -ENOENT) {
            misses++;
        } else {
            unsigned char want[BS];
            fill(want, BS, 1, i);
            assert_int_equal(n, BS);
            assert_memory_equal(got, want, BS);
        }
    }
    assert_int_equal(misses, 1);
    assert_int_equal(corrupt_count(bc), 1);
    assert_int_equal(count_files(f->cache).blocks, 1);
    assert_int_equal(access(files.last, F_OK), -1);
    blockcache_close(bc);
}

static void test_bad_header_is_a_miss(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 1 << 20);
    put_block(bc, "a", OBJ_SIZE, 0, 1);
    file_count files = count_files(f->cache);
    damage(files.last, 0, 1, 0, true); /* the magic */
    assert_miss(bc, "a", OBJ_SIZE, 0);
    assert_int_equal(corrupt_count(bc), 1);
    assert_int_equal(access(files.last, F_OK), -1);

    /* A sound file under another block's name (same length): its header
     * names the other block, so it is not served for this one. */
    put_block(bc, "a", OBJ_SIZE, 0, 1);
    char saved[PATH_MAX];
    snprintf(saved, sizeof(saved), "%s/a-block", f->dir);
    assert_int_equal(rename(count_files(f->cache).last, saved), 0);
    put_block(bc, "b", OBJ_SIZE, 0, 2);
    files = count_files(f->cache);
    assert_int_equal(files.blocks, 1);
    assert_int_equal(rename(saved, files.last), 0);
    assert_miss(bc, "b", OBJ_SIZE, 0);
    assert_int_equal(corrupt_count(bc), 2);
    assert_int_equal(access(files.last, F_OK), -1);
    assert_miss(bc, "a", OBJ_SIZE, 0); /* its file is gone: not corrupt */
    assert_int_equal(corrupt_count(bc), 2);
    blockcache_close(bc);
}

/* A block file of format version 3 under its own name, as lakefuse wrote
 * it before the XXH3-128 digest (a SHA-256 of the data at 56): sound by the
 * rules it was written under, refetched by these, never served. */
static void test_version3_block_is_refetched(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 1 << 20);
    put_block(bc, "a", OBJ_SIZE, 0, 1);
    blockcache_close(bc);
    file_count files = count_files(f->cache);
    assert_int_equal(files.blocks, 1);
    unsigned char file[88 + BS];
    int fd = open(files.last, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, file, sizeof(file), 0), (ssize_t)sizeof(file));
    assert_int_equal(file[4], 4); /* this format's version */
    file[4] = 3;
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(file + 88, BS, file + 56, &n, EVP_sha256(),
                                NULL), 1);
    assert_int_equal(pwrite(fd, file, 88, 0), 88);
    close(fd);

    bc = open_cache(f, 1 << 20);
    assert_miss(bc, "a", OBJ_SIZE, 0);
    assert_int_equal(corrupt_count(bc), 1);
    assert_int_equal(access(files.last, F_OK), -1);
    put_block(bc, "a", OBJ_SIZE, 0, 1); /* refetched: served from then on */
    assert_hit(bc, "a", OBJ_SIZE, 0, 1);
    blockcache_close(bc);
}

/* Writes an old-layout block file DIR/LAYOUT/<shard>/<32 hex>-0 as older
 * lakefuse versions named them (v1: bare bytes; v2: a header, keyed by
 * checksum and size alone), plus a crash's temp file next to it. */
static void plant_old_block(const fixture *f, const char *layout)
{
    static const char name[] = "ab0123456789abcdef0123456789abcd-0";
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", f->cache, layout);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/%s/ab", f->cache, layout);
    assert_int_equal(mkdir(path, 0700), 0);
    const char *files[] = {name, ".tmp-ab0123-0-1-2"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s/ab/%s", f->cache, layout,
                 files[i]);
        unsigned char data[BS + 72];
        fill(data, sizeof(data), 1, 0);
        int fd = open(path, O_CREAT | O_WRONLY | O_EXCL, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
        close(fd);
    }
}

/* Cache directories of older layouts (v1: no headers; v2: keyed by what
 * any writer can claim) are neither served nor kept by a reopen. */
static void test_old_layouts_are_removed(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 1 << 20);
    blockcache_close(bc);
    plant_old_block(f, "v1");
    plant_old_block(f, "v2");
    char v3[PATH_MAX];
    snprintf(v3, sizeof(v3), "%s/v3", f->cache);
    assert_int_equal(testutil_remove_tree(v3), 0);

    bc = open_cache(f, 1 << 20);
    blockcache_stats st;
    blockcache_get_stats(bc, &st);
    assert_int_equal(st.used_bytes, 0);
    file_count files = count_files(f->cache);
    assert_int_equal(files.blocks + files.temps, 0);
    char path[PATH_MAX];
    for (int v = 1; v <= 2; v++) {
        snprintf(path, sizeof(path), "%s/v%d", f->cache, v);
        assert_int_equal(access(path, F_OK), -1); /* removed, not kept */
    }
    /* The new layout works in its place. */
    put_block(bc, "a", OBJ_SIZE, 0, 1);
    assert_hit(bc, "a", OBJ_SIZE, 0, 1);
    blockcache_close(bc);
}

/* Every part of an identity keys the blocks: a writer who claims another
 * object's checksum and size in another repository (another storage
 * namespace), on another server or at another address gets other blocks;
 * and the encoding leaves no ambiguity between fields. */
static void test_id_covers_every_part(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 1 << 20);
    blockcache_object base = {"http://a.test/api/v1", "s3://bucket/repo-a",
                              "s3://bucket/repo-a/data/x1", "0123abcd",
                              OBJ_SIZE};
    blockcache_id want;
    assert_int_equal(blockcache_make_id(&base, &want), 0);
    assert_int_equal(want.size, OBJ_SIZE);
    unsigned char data[BS];
    fill(data, BS, 9, 0);
    assert_int_equal(blockcache_put(bc, &want, 0, data, BS), 0);

    blockcache_object others[] = {
        {"http://b.test/api/v1", base.namespace, base.address, base.checksum,
         OBJ_SIZE},
        {base.server, "s3://bucket/repo-b", base.address, base.checksum,
         OBJ_SIZE},
        {base.server, base.namespace, "s3://bucket/repo-a/data/x2",
         base.checksum, OBJ_SIZE},
        {base.server, base.namespace, base.address, "0123abce", OBJ_SIZE},
        {base.server, base.namespace, base.address, base.checksum,
         OBJ_SIZE + 1},
        {base.server, NULL, base.address, base.checksum, OBJ_SIZE},
        {base.server, "", base.address, base.checksum, OBJ_SIZE},
        /* the same bytes split differently between two fields */
        {"http://a.test/api/v1s3://bucket/repo-a", "", base.address,
         base.checksum, OBJ_SIZE},
    };
    unsigned char got[BS];
    for (size_t i = 0; i < sizeof(others) / sizeof(*others); i++) {
        blockcache_id id;
        assert_int_equal(blockcache_make_id(&others[i], &id), 0);
        assert_memory_not_equal(id.digest, want.digest, BLOCKCACHE_ID_SIZE);
        assert_int_equal(blockcache_get(bc, &id, 0, got, BS), -ENOENT);
    }
    /* The same identity again: the same blocks, also after a reopen. */
    blockcache_id again;
    assert_int_equal(blockcache_make_id(&base, &again), 0);
    assert_memory_equal(again.digest, want.digest, BLOCKCACHE_ID_SIZE);
    blockcache_close(bc);
    bc = open_cache(f, 1 << 20);
    assert_int_equal(blockcache_get(bc, &again, 0, got, BS), BS);
    assert_memory_equal(got, data, BS);
    assert_int_equal(blockcache_make_id(NULL, &again), -EINVAL);
    blockcache_close(bc);
}

static void test_hostile_checksum_stays_inside(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 1 << 20);
    const char *hostile[] = {"../../etc/passwd", "/etc/passwd", "..",
                             "a/b\n", ""};
    for (unsigned i = 0; i < 5; i++)
        put_block(bc, hostile[i], BS, 0, i);
    for (unsigned i = 0; i < 5; i++)
        assert_hit(bc, hostile[i], BS, 0, i);
    /* Every file is inside the cache dir, and nothing else was created
     * next to it. */
    assert_int_equal(count_files(f->cache).blocks, 5);
    assert_int_equal(count_files(f->dir).blocks, 5);
    DIR *d = opendir(f->dir);
    assert_non_null(d);
    struct dirent *de;
    int entries = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            assert_string_equal(de->d_name, "cache");
            entries++;
        }
    }
    closedir(d);
    assert_int_equal(entries, 1);
    blockcache_close(bc);
}

static void test_stats_counters(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 10 * BS);
    put_block(bc, "a", OBJ_SIZE, 0, 1);
    put_block(bc, "a", OBJ_SIZE, 2, 1);
    put_block(bc, "a", OBJ_SIZE, 2, 1); /* already cached: not stored again */
    assert_hit(bc, "a", OBJ_SIZE, 0, 1);
    assert_hit(bc, "a", OBJ_SIZE, 2, 1);
    assert_hit(bc, "a", OBJ_SIZE, 2, 1);
    assert_miss(bc, "a", OBJ_SIZE, 1);
    blockcache_stats st;
    blockcache_get_stats(bc, &st);
    assert_int_equal(st.hits, 3);
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.bytes_served, BS + 8 + 8);
    assert_int_equal(st.bytes_stored, BS + 8);
    assert_int_equal(st.used_bytes, BS + 8);
    assert_int_equal(st.max_bytes, 10 * BS);
    assert_int_equal(st.evictions, 0);
    assert_int_equal(st.write_errors, 0);
    blockcache_close(bc);
}

static void test_block_larger_than_budget_is_not_stored(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, BS / 2);
    put_block(bc, "a", BS, 0, 1);
    assert_miss(bc, "a", BS, 0);
    assert_int_equal(count_files(f->cache).blocks, 0);
    blockcache_close(bc);
}

static void test_open_rejects_bad_arguments(void **state)
{
    fixture *f = *state;
    int err = 0;
    assert_null(blockcache_open(f->cache, 1 << 20, 0, &err));
    assert_int_equal(err, -EINVAL);
    /* A regular file where the directory should be. */
    int fd = open(f->cache, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    err = 0;
    assert_null(blockcache_open(f->cache, 1 << 20, BS, &err));
    assert_true(err < 0);
}

#define THREADS 4
#define THREAD_OBJECTS 12
#define THREAD_ROUNDS 400

typedef struct thread_arg {
    blockcache *bc;
    unsigned seed;
    int failures;
    uint64_t gets;
} thread_arg;

static void *hammer(void *p)
{
    thread_arg *arg = p;
    unsigned r = arg->seed;
    for (int i = 0; i < THREAD_ROUNDS; i++) {
        r = r * 1103515245u + 12345u;
        unsigned obj = (r >> 8) % THREAD_OBJECTS;
        uint64_t index = (r >> 16) % 3;
        char checksum[32];
        snprintf(checksum, sizeof(checksum), "obj-%u", obj);
        size_t len = index == 2 ? 8 : BS;
        unsigned char data[BS];
        unsigned char got[BS];
        fill(data, len, obj, index);
        if ((r >> 24) % 2 == 0) {
            if (blockcache_put(arg->bc, ID(checksum, OBJ_SIZE), index, data,
                               len) != 0)
                arg->failures++;
        } else {
            ssize_t n = blockcache_get(arg->bc, ID(checksum, OBJ_SIZE), index,
                                       got, sizeof(got));
            arg->gets++;
            if (n == -ENOENT)
                continue;
            if (n != (ssize_t)len || memcmp(got, data, len) != 0)
                arg->failures++;
        }
    }
    return NULL;
}

static void test_concurrent_puts_and_gets(void **state)
{
    fixture *f = *state;
    /* Room for about a third of the 36 blocks, so eviction runs too. */
    blockcache *bc = open_cache(f, 12 * BS);
    pthread_t threads[THREADS];
    thread_arg args[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        args[i] = (thread_arg){bc, i + 1, 0, 0};
        assert_int_equal(
            pthread_create(&threads[i], NULL, hammer, &args[i]), 0);
    }
    uint64_t gets = 0;
    for (unsigned i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(args[i].failures, 0);
        gets += args[i].gets;
    }
    blockcache_stats st;
    blockcache_get_stats(bc, &st);
    assert_int_equal(st.hits + st.misses, gets);
    assert_true(st.hits > 0);
    assert_true(st.evictions > 0);
    assert_true(st.used_bytes <= 12 * BS);
    assert_int_equal(st.write_errors, 0);
    file_count files = count_files(f->cache);
    assert_int_equal(files.temps, 0);
    /* The index and the directory agree after all that. */
    blockcache_close(bc);
    bc = open_cache(f, 12 * BS);
    blockcache_stats reopened;
    blockcache_get_stats(bc, &reopened);
    assert_int_equal(reopened.used_bytes, st.used_bytes);
    blockcache_close(bc);
}

/* The names of the shard directories under cache/v3, as a bit set. */
/* seen[s]: 1 when shard s exists and holds a file, 0 otherwise (shards
 * are made empty when the cache opens). */
static void list_shards(const fixture *f, unsigned char seen[256])
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/v3", f->cache);
    memset(seen, 0, 256);
    DIR *d = opendir(path);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        unsigned v;
        if (strlen(de->d_name) != 2 || sscanf(de->d_name, "%2x", &v) != 1)
            continue;
        int sfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY);
        DIR *sd = sfd >= 0 ? fdopendir(sfd) : NULL;
        if (sd == NULL) {
            if (sfd >= 0)
                close(sfd);
            continue;
        }
        struct dirent *se;
        while ((se = readdir(sd)) != NULL)
            if (se->d_name[0] != '.')
                seen[v] = 1;
        closedir(sd);
    }
    closedir(d);
}

/* Stores block 0 of name (pattern seed): the shard that store put the
 * first file in, or -1 when the block went into one that held some. */
static int put_in_new_shard(const fixture *f, blockcache *bc,
                            const char *name, unsigned seed)
{
    unsigned char before[256];
    unsigned char after[256];
    list_shards(f, before);
    put_block(bc, name, OBJ_SIZE, 0, seed);
    list_shards(f, after);
    for (int s = 0; s < 256; s++)
        if (after[s] && !before[s])
            return s;
    return -1;
}

/* Removes shard directory shard behind the cache's back; path: its name. */
static void remove_shard(const fixture *f, int shard, char path[PATH_MAX])
{
    snprintf(path, PATH_MAX, "%s/v3/%02x", f->cache, shard);
    assert_int_equal(testutil_remove_tree(path), 0);
}

/* Every shard exists once a new cache is open: the first stores after a
 * mount make no directory. */
static void test_a_new_cache_has_its_shards(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 1 << 20);
    char path[PATH_MAX];
    struct stat st;
    for (int s = 0; s < 256; s++) {
        snprintf(path, sizeof(path), "%s/v3/%02x", f->cache, s);
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 0777, 0700);
    }
    blockcache_close(bc);
}

static void test_write_error_is_counted_and_reads_continue(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 1 << 20);
    put_block(bc, "keep", OBJ_SIZE, 0, 1);

    /* Find an object whose blocks land in a shard of their own. */
    char victim[32];
    int shard = -1;
    for (unsigned i = 0; i < 64 && shard < 0; i++) {
        snprintf(victim, sizeof(victim), "victim-%u", i);
        shard = put_in_new_shard(f, bc, victim, 2);
    }
    assert_true(shard >= 0);

    /* Replace that shard directory with a regular file: root ignores
     * permissions, but not ENOTDIR. */
    char path[PATH_MAX];
    remove_shard(f, shard, path);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);

    unsigned char data[BS];
    fill(data, BS, 2, 1);
    int rc = blockcache_put(bc, ID(victim, OBJ_SIZE), 1, data, BS);
    assert_true(rc < 0);
    assert_int_not_equal(rc, -EINVAL);
    blockcache_stats st;
    blockcache_get_stats(bc, &st);
    assert_int_equal(st.write_errors, 1);

    /* Other blocks still read; the block whose file vanished is a miss. */
    assert_hit(bc, "keep", OBJ_SIZE, 0, 1);
    assert_miss(bc, victim, OBJ_SIZE, 0);
    assert_miss(bc, victim, OBJ_SIZE, 1);
    blockcache_get_stats(bc, &st);
    assert_int_equal(st.used_bytes, BS);
    assert_int_equal(count_files(f->cache).temps, 0);
    blockcache_close(bc);
}

/* ---- exact-range reads, kept descriptors, the in-memory clock ---- */

static blockcache_stats stats_of(blockcache *bc)
{
    blockcache_stats st;
    blockcache_get_stats(bc, &st);
    return st;
}

/* A store skips the mkdir of a shard it made before; a shard removed
 * behind the cache's back is made again by the next store into it. */
static void test_removed_shard_is_made_again(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 1 << 20);
    int shard = put_in_new_shard(f, bc, "again", 3);
    assert_true(shard >= 0);
    char path[PATH_MAX];
    remove_shard(f, shard, path);

    /* Block 1 of the same object lands in the same shard. */
    put_block(bc, "again", OBJ_SIZE, 1, 3);
    unsigned char after[256];
    list_shards(f, after);
    assert_true(after[shard]);
    assert_hit(bc, "again", OBJ_SIZE, 1, 3);
    assert_int_equal(stats_of(bc).write_errors, 0);
    assert_int_equal(count_files(f->cache).temps, 0);
    blockcache_close(bc);
}

/* The layout root is marked FS_TOPDIR_FL (where the file system keeps
 * the flag: ext4), so that its shards are spread over the block groups. */
static int dir_flags(const char *path, int *flags)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = ioctl(fd, FS_IOC_GETFLAGS, flags);
    close(fd);
    return rc;
}

static void test_layout_root_spreads_its_shards(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 1 << 20);
    /* Does this file system keep the flag at all? */
    char probe[PATH_MAX];
    snprintf(probe, sizeof(probe), "%s/probe", f->cache);
    assert_int_equal(mkdir(probe, 0700), 0);
    int flags = 0;
    int fd = open(probe, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(fd >= 0);
    bool kept = ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 &&
                (flags |= FS_TOPDIR_FL, ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0) &&
                dir_flags(probe, &flags) == 0 && (flags & FS_TOPDIR_FL);
    close(fd);
    assert_int_equal(rmdir(probe), 0);
    if (!kept) {
        blockcache_close(bc);
        skip();
    }
    char root[PATH_MAX];
    snprintf(root, sizeof(root), "%s/v3", f->cache);
    assert_int_equal(dir_flags(root, &flags), 0);
    assert_true(flags & FS_TOPDIR_FL);
    put_block(bc, "spread", OBJ_SIZE, 0, 1);
    assert_hit(bc, "spread", OBJ_SIZE, 0, 1);
    blockcache_close(bc);
}

/* Reads [offset, offset + len) of a put_block block and checks the bytes. */
static void assert_range(blockcache *bc, const char *checksum, uint64_t size,
                         uint64_t index, unsigned seed, uint64_t offset,
                         size_t len)
{
    unsigned char got[BS];
    unsigned char want[BS];
    memset(got, 0xEE, sizeof(got));
    assert_int_equal(blockcache_read(bc, ID(checksum, size), index, offset,
                                     got, len),
                     (ssize_t)len);
    fill(want, BS, seed, index);
    assert_memory_equal(got, want + offset, len);
}

static void test_read_of_a_range_reads_only_that_range(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 1 << 20);
    put_block(bc, "a", OBJ_SIZE, 1, 1);
    put_block(bc, "a", OBJ_SIZE, 2, 1); /* the short last block: 8 bytes */
    blockcache_stats st = stats_of(bc);
    assert_int_equal(st.file_opens, 0); /* a put opens nothing to read */

    /* The first read checks the header (the put sealed the file in this
     * boot: its data is not hashed again)... */
    assert_range(bc, "a", OBJ_SIZE, 1, 1, 3, 5);
    st = stats_of(bc);
    assert_int_equal(st.file_opens, 1);
    assert_int_equal(st.files_hashed, 0);
    assert_int_equal(st.file_bytes_read, 88 + 5);
    assert_int_equal(st.open_files, 1);
    /* ...later ones read exactly what they ask for, from the same file. */
    assert_range(bc, "a", OBJ_SIZE, 1, 1, 0, 1);
    assert_range(bc, "a", OBJ_SIZE, 1, 1, 8, 8);
    assert_range(bc, "a", OBJ_SIZE, 1, 1, 15, 1);
    st = stats_of(bc);
    assert_int_equal(st.file_opens, 1);
    assert_int_equal(st.file_bytes_read, 88 + 5 + 1 + 8 + 1);
    assert_int_equal(st.hits, 4);
    assert_int_equal(st.bytes_served, 5 + 1 + 8 + 1);
    assert_range(bc, "a", OBJ_SIZE, 2, 1, 7, 1);
    assert_range(bc, "a", OBJ_SIZE, 2, 1, 0, 8);
    st = stats_of(bc);
    assert_int_equal(st.file_opens, 2);
    assert_int_equal(st.file_bytes_read, 88 + 5 + 10 + 88 + 1 + 8);
    assert_int_equal(st.open_files, 2);

    /* Ranges outside the block are refused, never clipped. */
    unsigned char buf[BS];
    const blockcache_id *id = ID("a", OBJ_SIZE);
    assert_int_equal(blockcache_read(bc, id, 2, 0, buf, 9), -EINVAL);
    assert_int_equal(blockcache_read(bc, id, 2, 8, buf, 1), -EINVAL);
    assert_int_equal(blockcache_read(bc, id, 1, 4, buf, 0), -EINVAL);
    assert_int_equal(blockcache_read(bc, id, 1, UINT64_MAX, buf, 1), -EINVAL);
    assert_int_equal(blockcache_read(bc, id, 3, 0, buf, 1), -EINVAL);
    assert_int_equal(blockcache_read(bc, id, 0, 0, buf, 4), -ENOENT);
    assert_true(blockcache_contains(bc, id, 1));
    assert_false(blockcache_contains(bc, id, 0));
    assert_false(blockcache_contains(bc, id, 3));
    assert_int_equal(stats_of(bc).file_bytes_read, st.file_bytes_read);
    blockcache_close(bc);
}

/* A block damaged before its first read is caught by that read; the
 * descriptor of a block that failed is not kept. */
static void test_verification_happens_at_first_open(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 1 << 20);
    put_block(bc, "a", OBJ_SIZE, 0, 1);
    file_count files = count_files(f->cache);
    damage(files.last, -2, 1, 0, true);
    unsigned char buf[BS];
    /* Even a one-byte read of an undamaged byte checks the whole file. */
    assert_int_equal(blockcache_read(bc, ID("a", OBJ_SIZE), 0, 0, buf, 1),
                     -ENOENT);
    blockcache_stats st = stats_of(bc);
    assert_int_equal(st.corrupt, 1);
    assert_int_equal(st.open_files, 0);
    assert_int_equal(st.used_bytes, 0);
    assert_int_equal(access(files.last, F_OK), -1);
    blockcache_close(bc);
}

typedef struct range_job {
    pthread_t thread;
    blockcache *bc;
    unsigned offset;
    ssize_t result;
    unsigned char got[4];
} range_job;

static void *range_job_main(void *p)
{
    range_job *j = p;
    j->result = blockcache_read(j->bc, ID("shared", BS), 0, j->offset, j->got,
                                sizeof(j->got));
    return NULL;
}

/* What a file looks like after a reboot: no seal of this boot. */
static void unseal(const char *path)
{
    if (removexattr(path, "user.lakefuse.seal") != 0)
        assert_int_equal(errno, ENODATA);
}

static void test_concurrent_first_reads_open_the_file_once(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 1 << 20);
    put_block(bc, "shared", BS, 0, 9);
    blockcache_close(bc);
    file_count files = count_files(f->cache);
    const char *path = files.last;
    for (int round = 0; round < 50; round++) {
        unseal(path); /* as after a reboot: the data must be hashed */
        bc = open_cache(f, 1 << 20); /* a new process: nothing verified */
        range_job jobs[4];
        for (unsigned i = 0; i < 4; i++) {
            jobs[i] = (range_job){.bc = bc, .offset = 4 * i};
            assert_int_equal(
                pthread_create(&jobs[i].thread, NULL, range_job_main,
                               &jobs[i]),
                0);
        }
        unsigned char want[BS];
        fill(want, BS, 9, 0);
        for (unsigned i = 0; i < 4; i++) {
            pthread_join(jobs[i].thread, NULL);
            assert_int_equal(jobs[i].result, 4);
            assert_memory_equal(jobs[i].got, want + 4 * i, 4);
        }
        blockcache_stats st = stats_of(bc);
        assert_int_equal(st.file_opens, 1);
        assert_int_equal(st.files_hashed, 1);
        assert_int_equal(st.file_bytes_read, 88 + BS + 4 * 4);
        assert_int_equal(st.hits, 4);
        blockcache_close(bc);
    }
}

/* One-block objects PREFIX<i> for i in [from, to), block i's seed i. */
static void put_numbered(blockcache *bc, const char *prefix, unsigned from,
                         unsigned to)
{
    char name[16];
    for (unsigned i = from; i < to; i++) {
        snprintf(name, sizeof(name), "%s%u", prefix, i);
        put_block(bc, name, BS, 0, i);
    }
}

static void assert_numbered_hits(blockcache *bc, const char *prefix,
                                 unsigned from, unsigned to)
{
    char name[16];
    for (unsigned i = from; i < to; i++) {
        snprintf(name, sizeof(name), "%s%u", prefix, i);
        assert_hit(bc, name, BS, 0, i);
    }
}

static void test_open_descriptors_are_bounded(void **state)
{
    fixture *f = *state;
    /* A descriptor limit of 256: a quarter of it, 64, stay open. */
    struct rlimit saved;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    struct rlimit low = {.rlim_cur = 256, .rlim_max = saved.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    blockcache *bc = open_cache(f, 1 << 20);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
    put_numbered(bc, "n", 0, 100);
    assert_numbered_hits(bc, "n", 0, 100);
    blockcache_stats st = stats_of(bc);
    assert_int_equal(st.file_opens, 100);
    assert_int_equal(st.open_files, 64);
    /* The 64 read last are still open: reading them opens nothing. */
    assert_numbered_hits(bc, "n", 36, 100);
    assert_int_equal(stats_of(bc).file_opens, 100);
    assert_hit(bc, "n0", BS, 0, 0); /* closed earlier: opened again */
    st = stats_of(bc);
    assert_int_equal(st.file_opens, 101);
    assert_int_equal(st.open_files, 64);
    blockcache_close(bc);

    /* Eviction closes the evicted block's descriptor. */
    bc = open_cache(f, 2 * BS);
    st = stats_of(bc);
    assert_int_equal(st.used_bytes, 2 * BS);
    assert_hit(bc, "n0", BS, 0, 0);
    assert_hit(bc, "n99", BS, 0, 99);
    assert_int_equal(stats_of(bc).open_files, 2);
    put_block(bc, "fresh", BS, 0, 7); /* evicts n0 (the older hit) */
    assert_miss(bc, "n0", BS, 0);
    st = stats_of(bc);
    assert_int_equal(st.open_files, 1);
    assert_int_equal(st.evictions, 99);
    blockcache_close(bc);
}

/* Random reads over more blocks than 64 (fio over a large file): with a
 * descriptor limit of 800, 200 files stay open, so reading 150 blocks at
 * random again and again opens each file once. */
static void test_open_descriptors_follow_the_limit(void **state)
{
    fixture *f = *state;
    struct rlimit saved;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    if (saved.rlim_max != RLIM_INFINITY && saved.rlim_max < 800)
        skip();
    struct rlimit wide = {.rlim_cur = 800, .rlim_max = saved.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &wide), 0);
    blockcache *bc = open_cache(f, 1 << 20);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
    char name[16];
    for (unsigned i = 0; i < 150; i++) {
        snprintf(name, sizeof(name), "n%u", i);
        put_block(bc, name, BS, 0, i);
    }
    for (unsigned round = 0; round < 3; round++) {
        for (unsigned k = 0; k < 150; k++) {
            /* every block, shuffled */
            unsigned i = (k * 37 + round * 11) % 150;
            snprintf(name, sizeof(name), "n%u", i);
            assert_hit(bc, name, BS, 0, i);
        }
    }
    blockcache_stats st = stats_of(bc);
    assert_int_equal(st.hits, 450);
    assert_int_equal(st.file_opens, 150);
    assert_int_equal(st.open_files, 150);
    blockcache_close(bc);
}

static int64_t mtime_ns_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
}

/* Hits move the clock in memory; no read writes a file's mtime. The close
 * writes the stamps (test_reopen_keeps_blocks_and_lru_order checks the
 * order a reopen rebuilds from them). */
static void test_hits_write_no_mtime_until_close(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 1 << 20);
    put_block_aged(f, bc, "a", BS, 0, 1, 1000);
    file_count files = count_files(f->cache);
    int64_t before = mtime_ns_of(files.last);
    for (int i = 0; i < 10; i++)
        assert_hit(bc, "a", BS, 0, 1);
    assert_int_equal(mtime_ns_of(files.last), before);
    assert_int_equal(stats_of(bc).stamps_written, 0);
    blockcache_close(bc);
    assert_true(mtime_ns_of(files.last) > before + 900 * 1000000000LL);
}

/* Once 1024 hit blocks wait for their stamps, the hit or put that finds
 * them writes them all, so a mount killed before its close keeps most of
 * its order. */
static void test_stamps_are_written_in_batches(void **state)
{
    fixture *f = *state;
    char name[16];
    blockcache *bc = open_cache(f, 1 << 20);
    put_numbered(bc, "s", 0, 1030);
    for (unsigned i = 0; i < 1023; i++) {
        snprintf(name, sizeof(name), "s%u", i);
        assert_hit(bc, name, BS, 0, i);
        assert_hit(bc, name, BS, 0, i); /* one stamp per block, not hit */
    }
    assert_int_equal(stats_of(bc).stamps_written, 0);
    assert_hit(bc, "s1023", BS, 0, 1023); /* the 1024th: a batch */
    assert_int_equal(stats_of(bc).stamps_written, 1024);
    assert_numbered_hits(bc, "s", 1024, 1030);
    put_block(bc, "next", BS, 0, 1); /* 6 waiting: not a batch yet */
    assert_int_equal(stats_of(bc).stamps_written, 1024);
    blockcache_close(bc); /* writes the rest: see the test above */
}

/* A seal of this boot spares a reopened cache the hash; a file without
 * one (another boot) is hashed once, then sealed. */
static void test_seal_spares_the_hash_within_a_boot(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 1 << 20);
    put_block(bc, "a", BS, 0, 3);
    blockcache_close(bc);
    file_count files = count_files(f->cache);

    bc = open_cache(f, 1 << 20);
    assert_hit(bc, "a", BS, 0, 3);
    blockcache_stats st = stats_of(bc);
    assert_int_equal(st.file_opens, 1);
    assert_int_equal(st.files_hashed, 0);
    assert_int_equal(st.file_bytes_read, 88 + BS);
    blockcache_close(bc);

    unseal(files.last);
    bc = open_cache(f, 1 << 20);
    assert_hit(bc, "a", BS, 0, 3);
    st = stats_of(bc);
    assert_int_equal(st.files_hashed, 1);
    assert_int_equal(st.file_bytes_read, 88 + BS);
    blockcache_close(bc);

    bc = open_cache(f, 1 << 20); /* sealed by that check */
    assert_hit(bc, "a", BS, 0, 3);
    assert_int_equal(stats_of(bc).files_hashed, 0);
    blockcache_close(bc);
}

/* A seal is only good for the file as it was: data changed with its mtime
 * put back but a seal of another boot, or changed by a write (which moves
 * the mtime) under a seal of this boot, is hashed, caught and refetched. */
static void test_seal_does_not_cover_a_changed_file(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 1 << 20);
    put_block(bc, "a", BS, 0, 3);
    blockcache_close(bc);
    char path_a[PATH_MAX], path_b[PATH_MAX];
    bc = open_cache(f, 1 << 20);
    assert_hit(bc, "a", BS, 0, 3);
    blockcache_close(bc);
    file_count files = count_files(f->cache); /* a alone */
    assert_int_equal(files.blocks, 1);
    snprintf(path_a, sizeof(path_a), "%s", files.last);

    /* Another boot's seal for the very mtime the file has. */
    unsigned char seal[48];
    assert_int_equal(getxattr(path_a, "user.lakefuse.seal", seal, sizeof(seal)),
                     48);
    seal[4] = seal[4] == '0' ? '1' : '0';
    struct stat st;
    assert_int_equal(stat(path_a, &st), 0);
    damage(path_a, -1, 1, 0, true);
    struct timespec times[2] = {st.st_mtim, st.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, path_a, times, 0), 0);
    assert_int_equal(setxattr(path_a, "user.lakefuse.seal", seal, sizeof(seal),
                              0),
                     0);
    bc = reopen_catching_damage(f, "a", BS, 0);

    /* b: read (sealed and open), damaged by a write while this cache runs;
     * the close dates it but must not seal it again. */
    put_block(bc, "b", BS, 0, 4);
    assert_hit(bc, "b", BS, 0, 4);
    files = count_files(f->cache); /* b alone */
    assert_int_equal(files.blocks, 1);
    snprintf(path_b, sizeof(path_b), "%s", files.last);
    damage(path_b, -1, 1, 0, true);
    blockcache_close(bc);
    bc = reopen_catching_damage(f, "b", BS, 0);
    blockcache_close(bc);
}

/* A pinned range is a descriptor and position holding exactly the block's
 * bytes; it stays usable while pinned even when the block is evicted, and
 * unpinning the last use of an evicted block closes its file. */
static void test_pin_hands_out_the_range_and_outlives_eviction(void **state)
{
    fixture *f = *state;
    blockcache *bc = open_cache(f, 2 * BS);
    put_block(bc, "a", OBJ_SIZE, 1, 5);
    unsigned char want[BS], got[BS];
    fill(want, BS, 5, 1);
    blockcache_pinned p = {.fd = -1};
    assert_int_equal(blockcache_pin(bc, ID("a", OBJ_SIZE), 1, 3, 9, &p), 0);
    assert_true(p.fd >= 0);
    assert_int_equal(pread(p.fd, got, 9, p.pos), 9);
    assert_memory_equal(got, want + 3, 9);
    blockcache_stats st = stats_of(bc);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.bytes_served, 9);
    assert_int_equal(st.bytes_pinned, 9);
    assert_int_equal(st.open_files, 1);

    put_block(bc, "b", BS, 0, 6); /* evict a */
    put_block(bc, "c", BS, 0, 7);
    assert_false(blockcache_contains(bc, ID("a", OBJ_SIZE), 1));
    assert_int_equal(stats_of(bc).open_files, 0);
    memset(got, 0, sizeof(got));
    assert_int_equal(pread(p.fd, got, 9, p.pos), 9); /* still open */
    assert_memory_equal(got, want + 3, 9);
    int fd = p.fd;
    blockcache_unpin(bc, &p);
    assert_null(p.ref);
    assert_int_equal(fcntl(fd, F_GETFD), -1); /* closed with the last use */

    /* Misses and bad ranges pin nothing. */
    assert_int_equal(blockcache_pin(bc, ID("a", OBJ_SIZE), 1, 0, 1, &p),
                     -ENOENT);
    assert_int_equal(blockcache_pin(bc, ID("b", BS), 0, 8, 9, &p), -EINVAL);
    assert_int_equal(blockcache_pin(bc, ID("b", BS), 0, 0, BS, &p), 0);
    blockcache_unpin(bc, &p);
    assert_int_equal(stats_of(bc).open_files, 1); /* kept: still cached */
    blockcache_close(bc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_miss_is_enoent, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_warm_reads_a_stored_block_and_counts_nothing, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_warmer_reads_stored_blocks_and_fails_missing_ones, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_last_block_is_short, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wrong_length_put_is_einval,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_is_part_of_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lru_eviction_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_reopen_keeps_blocks_and_lru_order, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_reopen_with_smaller_budget_evicts, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_truncated_block_is_miss_and_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_flipped_data_byte_is_refetched_not_served, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_filled_block_is_a_miss,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_header_is_a_miss, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_version3_block_is_refetched,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_id_covers_every_part, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_old_layouts_are_removed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hostile_checksum_stays_inside,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_counters, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_block_larger_than_budget_is_not_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_rejects_bad_arguments,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_puts_and_gets, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_write_error_is_counted_and_reads_continue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_new_cache_has_its_shards, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_removed_shard_is_made_again,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_layout_root_spreads_its_shards,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_read_of_a_range_reads_only_that_range, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_verification_happens_at_first_open, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_concurrent_first_reads_open_the_file_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_descriptors_follow_the_limit,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_descriptors_are_bounded,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_hits_write_no_mtime_until_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stamps_are_written_in_batches,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_seal_spares_the_hash_within_a_boot, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_seal_does_not_cover_a_changed_file, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_pin_hands_out_the_range_and_outlives_eviction, setup,
            teardown),
    };
    return cmocka_run_group_tests_name("blockcache", tests, NULL, NULL);
}
