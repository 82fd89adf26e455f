/*
 * testutil.h - helpers several unit test files share: checking that a
 * struct was left zeroed, and removing a temporary directory tree.
 */
#ifndef LAKEFUSE_TESTUTIL_H
#define LAKEFUSE_TESTUTIL_H

#include <ftw.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
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

/* rm -rf dir, without following symlinks. */
static inline int testutil_remove_tree(const char *dir)
{
    return nftw(dir, testutil_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
