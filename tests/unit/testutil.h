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

#endif
