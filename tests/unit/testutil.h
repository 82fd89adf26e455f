/*
 * testutil.h - helpers several unit test files share: checking that a
 * struct was left zeroed, temporary directory trees and the fixture made
 * of one, and a block cache opened in it. Include after <cmocka.h>.
 */
#ifndef LAKEFUSE_TESTUTIL_H
#define LAKEFUSE_TESTUTIL_H

#include "blockcache.h"

#include <ftw.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static inline bool testutil_all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

static inline int testutil_remove_entry(const char *path,
                                        const struct stat *st, int flag,
                                        struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* mkdtemp of /tmp/NAME.XXXXXX into buf (at least 64 bytes). 0 or -1. */
static inline int testutil_make_temp_dir(char *buf, size_t len,
                                         const char *name)
{
    if (snprintf(buf, len, "/tmp/%s.XXXXXX", name) >= (int)len)
        return -1;
    return mkdtemp(buf) ? 0 : -1;
}

/* rm -rf dir, without following symlinks. */
static inline int testutil_remove_tree(const char *dir)
{
    return nftw(dir, testutil_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The fixture of tests whose module keeps files under a cache directory:
 * a fresh temporary directory, and the path of "cache" in it (the module
 * under test makes it). */
typedef struct testutil_dir_fixture {
    char dir[64];   /* the outer mkdtemp directory */
    char cache[96]; /* dir/cache */
} testutil_dir_fixture;

/* cmocka setup: a new fixture in /tmp/NAME.XXXXXX, in *state. 0 or -1. */
static inline int testutil_dir_setup(void **state, const char *name)
{
    testutil_dir_fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    if (testutil_make_temp_dir(f->dir, sizeof(f->dir), name) != 0) {
        free(f);
        return -1;
    }
    snprintf(f->cache, sizeof(f->cache), "%s/cache", f->dir);
    *state = f;
    return 0;
}

/* cmocka teardown: removes the fixture's directory tree and frees it. */
static inline int testutil_dir_teardown(void **state)
{
    testutil_dir_fixture *f = *state;
    testutil_remove_tree(f->dir);
    free(f);
    return 0;
}

/* A block cache in dir, which must open. */
static inline blockcache *testutil_open_blockcache(const char *dir,
                                                   uint64_t max_bytes,
                                                   uint32_t block_size)
{
    int err = 1;
    blockcache *bc = blockcache_open(dir, max_bytes, block_size, &err);
    assert_non_null(bc);
    assert_int_equal(err, 0);
    return bc;
}

#endif
