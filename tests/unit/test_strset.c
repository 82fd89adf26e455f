/*
 * test_strset.c - unit tests of src/strset.c: membership after adds, a
 * duplicate add keeps one copy, growth past many resizes keeps every
 * member, and near-miss strings are not members.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "strset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_empty_set_holds_nothing(void **state)
{
    (void)state;
    strset s = {0};
    assert_false(strset_contains(&s, "repo\x1f" "a"));
    assert_false(strset_contains(&s, ""));
    strset_clear(&s);
}

static void test_add_then_contains_and_duplicates_count_once(void **state)
{
    (void)state;
    strset s = {0};
    assert_int_equal(strset_add_owned(&s, strdup("repo\x1f" "bin/tool")), 0);
    assert_int_equal(strset_add_owned(&s, strdup("repo\x1f" "bin/tool")), 0);
    assert_int_equal(s.count, 1);
    assert_true(strset_contains(&s, "repo\x1f" "bin/tool"));
    assert_false(strset_contains(&s, "repo\x1f" "bin/too"));
    assert_false(strset_contains(&s, "repo\x1f" "bin/tool2"));
    assert_false(strset_contains(&s, "other\x1f" "bin/tool"));
    strset_clear(&s);
    assert_int_equal(s.count, 0);
    assert_false(strset_contains(&s, "repo\x1f" "bin/tool"));
}

static void test_many_members_survive_growth(void **state)
{
    (void)state;
    strset s = {0};
    char key[64];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "r\x1f" "dir/%d", i);
        assert_int_equal(strset_add_owned(&s, strdup(key)), 0);
    }
    assert_int_equal(s.count, 5000);
    assert_true(s.count * 2 <= s.n_slots);
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "r\x1f" "dir/%d", i);
        assert_true(strset_contains(&s, key));
    }
    for (int i = 5000; i < 6000; i++) {
        snprintf(key, sizeof key, "r\x1f" "dir/%d", i);
        assert_false(strset_contains(&s, key));
    }
    strset_clear(&s);
}

static void test_null_string_is_an_allocation_failure(void **state)
{
    (void)state;
    strset s = {0};
    assert_int_equal(strset_add_owned(&s, NULL), -ENOMEM);
    assert_int_equal(s.count, 0);
    strset_clear(&s);
}

/* Removing every other member, in an order unrelated to the probe runs,
 * keeps every remaining member findable (the runs are closed up behind a
 * removal) and the removed ones gone; removing a non-member does nothing. */
static void test_remove_keeps_the_others_findable(void **state)
{
    (void)state;
    strset s = {0};
    char key[64];
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof key, "r\x1f" "f/%d", i);
        assert_int_equal(strset_add_owned(&s, strdup(key)), 0);
    }
    strset_remove(&s, "r\x1f" "not/there");
    assert_int_equal(s.count, 3000);
    for (int k = 0; k < 3000; k++) {
        int i = (k * 7919) % 3000; /* a permutation: 7919 is prime */
        if (i % 2)
            continue;
        snprintf(key, sizeof key, "r\x1f" "f/%d", i);
        strset_remove(&s, key);
        assert_false(strset_contains(&s, key));
    }
    assert_int_equal(s.count, 1500);
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof key, "r\x1f" "f/%d", i);
        if (strset_contains(&s, key) != (i % 2 == 1))
            fail_msg("%s: member %d, want %d", key, strset_contains(&s, key),
                     i % 2 == 1);
    }
    assert_int_equal(strset_add_owned(&s, strdup("r\x1f" "f/0")), 0);
    assert_true(strset_contains(&s, "r\x1f" "f/0"));
    strset_clear(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_set_holds_nothing),
        cmocka_unit_test(test_add_then_contains_and_duplicates_count_once),
        cmocka_unit_test(test_many_members_survive_growth),
        cmocka_unit_test(test_null_string_is_an_allocation_failure),
        cmocka_unit_test(test_remove_keeps_the_others_findable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
