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

#include <string.h>

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
    fs_times *t = fs_times_new();
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
    fs_times *t = fs_times_new();
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
    fs_times *t = fs_times_new();
    assert_int_equal(fs_times_change(t, "r", "main", "a", NULL, NULL), 0);
    struct stat st = stat_at(INT32_MAX); /* written after the change */
    fs_times_apply(t, "r", "main", "a", &st);
    assert_int_equal(st.st_ctim.tv_sec, INT32_MAX);
    fs_times_free(t);
}

static void test_unlink_and_rename(void **state)
{
    (void)state;
    fs_times *t = fs_times_new();
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_kept_changes_nothing),
        cmocka_unit_test(test_utimens_nanoseconds_and_atime),
        cmocka_unit_test(test_ctime_never_before_mtime),
        cmocka_unit_test(test_unlink_and_rename),
    };
    return cmocka_run_group_tests_name("fs_times", tests, NULL, NULL);
}
