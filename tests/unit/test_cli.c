/*
 * test_cli.c - unit tests of src/cli.c's cache directory check
 * (cli_check_cache_dir): what another user could have prepared is
 * refused with the path and the reason, a private tree is accepted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli.h"
#include "testutil.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

typedef struct fixture {
    char top[64];         /* mkdtemp: 0700, under sticky /tmp */
    char cache[128];      /* top/cache */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (!f || testutil_make_temp_dir(f->top, sizeof(f->top), "test_cli")) {
        free(f);
        return -1;
    }
    snprintf(f->cache, sizeof(f->cache), "%s/cache", f->top);
    if (mkdir(f->cache, 0700) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    chmod(f->top, 0700);
    testutil_remove_tree(f->top);
    free(f);
    return 0;
}

/* top/cache/REL, made as a directory (mode 0700) with its parents. */
static void make_dirs(const fixture *f, const char *rel)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", f->cache, rel);
    for (char *p = path + strlen(f->cache) + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            assert_true(mkdir(path, 0700) == 0 || errno == EEXIST);
            *p = saved;
            if (saved == '\0')
                break;
        }
    }
}

static void cache_path(const fixture *f, const char *rel, char *out)
{
    snprintf(out, PATH_MAX, "%s/%s", f->cache, rel);
}

static void assert_refused(const fixture *f, const char *path_part,
                           const char *reason)
{
    char why[PATH_MAX + 128] = "";
    assert_int_equal(cli_check_cache_dir(f->cache, why, sizeof(why)), -EPERM);
    if (!strstr(why, path_part) || !strstr(why, reason))
        fail_msg("\"%s\" does not name %s and \"%s\"", why, path_part, reason);
}

static void assert_accepted(const fixture *f)
{
    char why[PATH_MAX + 128] = "";
    int rc = cli_check_cache_dir(f->cache, why, sizeof(why));
    if (rc != 0)
        fail_msg("refused: %s", why);
}

static void test_private_tree_accepted(void **state)
{
    fixture *f = *state;
    assert_accepted(f); /* empty */
    make_dirs(f, "data/v2/ab");
    make_dirs(f, "staging/session");
    char file[PATH_MAX];
    cache_path(f, "data/v2/ab/block-0", file);
    FILE *out = fopen(file, "w");
    assert_non_null(out);
    fclose(out);
    assert_int_equal(chmod(f->cache, 0755), 0); /* readable is fine */
    assert_accepted(f);
    /* Outside data/ and staging/ the cache directory is not lakefuse's
     * alone: a link there is left alone. */
    char other[PATH_MAX];
    cache_path(f, "someone-elses-link", other);
    assert_int_equal(symlink("/etc", other), 0);
    assert_accepted(f);
}

static void test_writable_directories_refused(void **state)
{
    fixture *f = *state;
    assert_int_equal(chmod(f->cache, 0775), 0);
    assert_refused(f, f->cache, "writable by group or others (mode 0775)");
    assert_int_equal(chmod(f->cache, 0700), 0);
    make_dirs(f, "staging/s1");
    char dir[PATH_MAX];
    cache_path(f, "staging/s1", dir);
    assert_int_equal(chmod(dir, 01777), 0); /* sticky is no excuse here */
    assert_refused(f, "/staging/s1", "writable by group or others");
}

static void test_links_and_special_files_refused(void **state)
{
    fixture *f = *state;
    char path[PATH_MAX];
    cache_path(f, "data", path);
    assert_int_equal(symlink(f->top, path), 0);
    assert_refused(f, "/data", "is a symbolic link");
    assert_int_equal(unlink(path), 0);
    make_dirs(f, "data/v2/cd");
    cache_path(f, "data/v2/cd/block", path);
    assert_int_equal(symlink("/etc/passwd", path), 0);
    assert_refused(f, "/data/v2/cd/block", "is a symbolic link");
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_refused(f, "/data/v2/cd/block", "is not a regular file");
    assert_int_equal(unlink(path), 0);
    int sock = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(sock >= 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    assert_true(strlen(path) < sizeof(addr.sun_path));
    memcpy(addr.sun_path, path, strlen(path) + 1);
    assert_int_equal(bind(sock, (struct sockaddr *)&addr, sizeof(addr)), 0);
    close(sock);
    assert_refused(f, "/data/v2/cd/block", "is not a regular file");
}

static void test_nesting_bounded(void **state)
{
    fixture *f = *state;
    make_dirs(f, "data/1/2/3/4/5/6/7");
    assert_accepted(f);
    make_dirs(f, "data/1/2/3/4/5/6/7/8");
    assert_refused(f, "/data/1/2/3/4/5/6/7/8", "nested too deep");
}

static void test_open_ancestor_refused(void **state)
{
    fixture *f = *state;
    assert_int_equal(chmod(f->top, 0777), 0);
    assert_refused(f, f->top, "writable by other users and not sticky");
    assert_int_equal(chmod(f->top, 01777), 0); /* as /tmp: fine */
    assert_accepted(f);
}

static void test_other_owner_refused(void **state)
{
    fixture *f = *state;
    if (geteuid() != 0)
        skip(); /* only root can give a directory away */
    make_dirs(f, "data/ef");
    char path[PATH_MAX];
    cache_path(f, "data/ef/planted", path);
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    fclose(out);
    assert_int_equal(chown(path, 65534, 65534), 0);
    assert_refused(f, "/data/ef/planted", "is owned by another user");
    assert_int_equal(unlink(path), 0);
    assert_int_equal(chown(f->cache, 65534, 65534), 0);
    assert_refused(f, f->cache, "is owned by another user");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_private_tree_accepted),
        T(test_writable_directories_refused),
        T(test_links_and_special_files_refused),
        T(test_nesting_bounded),
        T(test_open_ancestor_refused),
        T(test_other_owner_refused),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
