/*
 * test_fs_times.c - unit tests of src/fs_times.c: what is kept and shown
 * (nanoseconds only while the second matches, atime, ctime never before
 * mtime), unlink and rename, ref and repository separation. Never sleeps
 * and never talks to a server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fs_times.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static struct stat stat_at(time_t mtime)
{
    struct stat st;
    memset(&st, 0, sizeof(st));
    st.st_mtim.tv_sec = st.st_ctim.tv_sec = st.st_atim.tv_sec = mtime;
    return st;
}

static void test_nothing_kept_changes_nothing(void **state)
{
    (void)state;
    fs_times *t = fs_times_new(0);
    assert_non_null(t);
    assert_true(fs_times_idle(t));
    struct stat st = stat_at(100), want = st;
    fs_times_apply(t, "r", "main", "a", &st);
    assert_memory_equal(&st, &want, sizeof(st));
    fs_times_free(t);
}

static void test_utimens_nanoseconds_and_atime(void **state)
{
    (void)state;
    fs_times *t = fs_times_new(0);
    struct timespec a = {50, 123}, m = {100, 987654321};
    assert_int_equal(fs_times_change(t, "r", "main", "a", &a, &m), 0);
    assert_false(fs_times_idle(t));
    struct stat st = stat_at(100);
    fs_times_apply(t, "r", "main", "a", &st);
    assert_int_equal(st.st_mtim.tv_nsec, 987654321);
    assert_int_equal(st.st_atim.tv_sec, 50);
    assert_int_equal(st.st_atim.tv_nsec, 123);
    assert_true(st.st_ctim.tv_sec > 100); /* the change happened now */
    /* A later write moved the mtime: its nanoseconds are not shown. */
    st = stat_at(200);
    fs_times_apply(t, "r", "main", "a", &st);
    assert_int_equal(st.st_mtim.tv_sec, 200);
    assert_int_equal(st.st_mtim.tv_nsec, 0);
    /* Other refs, repositories and keys are untouched. */
    const char *others[][3] = {{"r", "dev", "a"}, {"q", "main", "a"},
                               {"r", "main", "ab"}};
    for (size_t i = 0; i < 3; i++) {
        st = stat_at(100);
        fs_times_apply(t, others[i][0], others[i][1], others[i][2], &st);
        assert_int_equal(st.st_mtim.tv_nsec, 0);
        assert_int_equal(st.st_ctim.tv_sec, 100);
    }
    fs_times_free(t);
}

static void test_ctime_never_before_mtime(void **state)
{
    (void)state;
    fs_times *t = fs_times_new(0);
    assert_int_equal(fs_times_change(t, "r", "main", "a", NULL, NULL), 0);
    struct stat st = stat_at(INT32_MAX); /* written after the change */
    fs_times_apply(t, "r", "main", "a", &st);
    assert_int_equal(st.st_ctim.tv_sec, INT32_MAX);
    fs_times_free(t);
}

static void test_unlink_and_rename(void **state)
{
    (void)state;
    fs_times *t = fs_times_new(0);
    struct timespec m = {100, 5};
    assert_int_equal(fs_times_change(t, "r", "main", "a", NULL, &m), 0);
    assert_int_equal(fs_times_change(t, "r", "main", "b", NULL, &m), 0);
    fs_times_move(t, "r", "main", "a", "c"); /* rename a -> c */
    struct stat st = stat_at(100);
    fs_times_apply(t, "r", "main", "a", &st);
    assert_int_equal(st.st_mtim.tv_nsec, 0);
    st = stat_at(100);
    fs_times_apply(t, "r", "main", "c", &st);
    assert_int_equal(st.st_mtim.tv_nsec, 5);
    fs_times_move(t, "r", "main", "c", "b"); /* replaces b's */
    fs_times_move(t, "r", "main", "b", NULL); /* unlink */
    assert_true(fs_times_idle(t));
    fs_times_free(t);
}

static void key_of(char *buf, size_t len, int i)
{
    snprintf(buf, len, "dir%d/file%d", i % 97, i);
}

/* A tar of many files: every path keeps its nanoseconds (the table grows
 * past its first 1,024 buckets), and stats count them. */
static void test_many_paths_all_kept(void **state)
{
    (void)state;
    fs_times *t = fs_times_new(0);
    enum { N = 20000 };
    char key[64];
    for (int i = 0; i < N; i++) {
        struct timespec m = {100, i + 1};
        key_of(key, sizeof(key), i);
        assert_int_equal(fs_times_change(t, "r", "main", key, NULL, &m), 0);
    }
    for (int i = 0; i < N; i++) {
        struct stat st = stat_at(100);
        key_of(key, sizeof(key), i);
        fs_times_apply(t, "r", "main", key, &st);
        assert_int_equal(st.st_mtim.tv_nsec, i + 1);
    }
    fs_times_stats s;
    fs_times_get_stats(t, &s);
    assert_int_equal(s.entries, N);
    assert_int_equal(s.evicted, 0);
    for (int i = 0; i < N; i++) { /* unlink of each */
        key_of(key, sizeof(key), i);
        fs_times_move(t, "r", "main", key, NULL);
    }
    assert_true(fs_times_idle(t));
    fs_times_free(t);
}

/* Beyond its bound the table forgets the least recently changed paths:
 * a change, a rename or a directory touch makes a path recent again. */
static void test_the_bound_forgets_the_least_recently_changed(void **state)
{
    (void)state;
    fs_times *t = fs_times_new(3);
    struct timespec m = {100, 7};
    assert_int_equal(fs_times_change(t, "r", "main", "a", NULL, &m), 0);
    assert_int_equal(fs_times_change(t, "r", "main", "b", NULL, &m), 0);
    assert_int_equal(fs_times_touch(t, "r", "main", "d"), 0);
    /* a changed again, b renamed: d is now the least recent */
    assert_int_equal(fs_times_change(t, "r", "main", "a", NULL, &m), 0);
    fs_times_move(t, "r", "main", "b", "b2");
    assert_int_equal(fs_times_change(t, "r", "main", "e", NULL, &m), 0);
    fs_times_stats s;
    fs_times_get_stats(t, &s);
    assert_int_equal(s.entries, 3);
    assert_int_equal(s.evicted, 1);
    const char *kept[] = {"a", "b2", "e"};
    for (size_t i = 0; i < 3; i++) {
        struct stat st = stat_at(100);
        fs_times_apply(t, "r", "main", kept[i], &st);
        assert_int_equal(st.st_mtim.tv_nsec, 7);
    }
    struct stat st = stat_at(100);
    st.st_mode = S_IFDIR | 0755;
    fs_times_apply(t, "r", "main", "d", &st); /* forgotten: lakeFS's times */
    assert_int_equal(st.st_mtim.tv_sec, 100);
    assert_int_equal(st.st_ctim.tv_sec, 100);
    /* the next new path evicts a (the oldest now), never the new one */
    assert_int_equal(fs_times_change(t, "r", "main", "f", NULL, &m), 0);
    st = stat_at(100);
    fs_times_apply(t, "r", "main", "a", &st);
    assert_int_equal(st.st_mtim.tv_nsec, 0);
    st = stat_at(100);
    fs_times_apply(t, "r", "main", "f", &st);
    assert_int_equal(st.st_mtim.tv_nsec, 7);
    /* a directory rename moves what it holds and frees what it replaces */
    fs_times_move_dir(t, "r", "main", "b2", "e");
    fs_times_get_stats(t, &s);
    assert_int_equal(s.entries, 2);
    fs_times_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_kept_changes_nothing),
        cmocka_unit_test(test_utimens_nanoseconds_and_atime),
        cmocka_unit_test(test_ctime_never_before_mtime),
        cmocka_unit_test(test_unlink_and_rename),
        cmocka_unit_test(test_many_paths_all_kept),
        cmocka_unit_test(test_the_bound_forgets_the_least_recently_changed),
    };
    return cmocka_run_group_tests_name("fs_times", tests, NULL, NULL);
}
