/*
 * test_uri.c - lakefs:// URI parsing: the three forms lakectl uses, ref
 * expressions kept verbatim, prefixes normalized, and every malformed
 * form refused with a reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "uri.h"

static void parse_ok(const char *text, const char *repo, const char *ref,
                     const char *prefix)
{
    lakefuse_uri u;
    char why[256] = "";
    assert_int_equal(uri_parse(text, &u, why, sizeof(why)), 0);
    if (repo)
        assert_string_equal(u.repo, repo);
    else
        assert_null(u.repo);
    if (ref)
        assert_string_equal(u.ref, ref);
    else
        assert_null(u.ref);
    if (prefix)
        assert_string_equal(u.prefix, prefix);
    else
        assert_null(u.prefix);
    uri_free(&u);
}

static void parse_fails(const char *text, const char *reason_part)
{
    lakefuse_uri u;
    char why[256] = "";
    assert_int_equal(uri_parse(text, &u, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, reason_part));
    assert_null(u.repo);
    assert_null(u.ref);
}

static void test_every_repository(void **state)
{
    (void)state;
    parse_ok("lakefs://", NULL, NULL, NULL);
}

static void test_one_repository(void **state)
{
    (void)state;
    parse_ok("lakefs://my-repo", "my-repo", NULL, NULL);
    parse_ok("lakefs://my-repo/", "my-repo", NULL, NULL);
}

static void test_ref_and_prefix(void **state)
{
    (void)state;
    parse_ok("lakefs://repo/main", "repo", "main", "");
    parse_ok("lakefs://repo/main/", "repo", "main", "");
    parse_ok("lakefs://repo/main/data/2024", "repo", "main", "data/2024/");
    parse_ok("lakefs://repo/main/data/2024/", "repo", "main", "data/2024/");
}

static void test_ref_expressions_kept(void **state)
{
    (void)state;
    parse_ok("lakefs://repo/main~1", "repo", "main~1", "");
    parse_ok("lakefs://repo/main@", "repo", "main@", "");
    parse_ok("lakefs://repo/a1b2c3^2/x", "repo", "a1b2c3^2", "x/");
    parse_ok("lakefs://repo/...", "repo", "...", ""); /* not a dot segment */
    parse_ok("lakefs://repo/v1.0", "repo", "v1.0", "");
}

static void test_malformed(void **state)
{
    (void)state;
    parse_fails("s3://bucket/key", "lakefs://");
    parse_fails("lakefs:/repo", "lakefs://");
    parse_fails("lakefs://Repo", "repository names");
    parse_fails("lakefs://ab", "repository names");
    parse_fails("lakefs://-abc", "repository names");
    parse_fails("lakefs://repo//x", "empty ref");
    parse_fails("lakefs://repo/main/a//b", "segment");
    parse_fails("lakefs://repo/main/../etc", "segment");
    parse_fails("lakefs://repo/main/./x", "segment");
    /* A dot segment as the ref: never a lakeFS ref, refused before any
     * request (the client would send it escaped anyway). */
    parse_fails("lakefs://repo/..", "not lakeFS refs");
    parse_fails("lakefs://repo/.", "not lakeFS refs");
    parse_fails("lakefs://repo/../main", "not lakeFS refs");
    parse_fails("lakefs://repo/./x", "not lakeFS refs");
}

static void test_repository_names(void **state)
{
    (void)state;
    assert_true(uri_valid_repository_name("abc"));
    assert_true(uri_valid_repository_name("a-1"));
    assert_false(uri_valid_repository_name("a_b"));
    char long_name[65];
    memset(long_name, 'a', 64);
    long_name[64] = '\0';
    assert_false(uri_valid_repository_name(long_name));
    long_name[63] = '\0';
    assert_true(uri_valid_repository_name(long_name));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_repository),
        cmocka_unit_test(test_one_repository),
        cmocka_unit_test(test_ref_and_prefix),
        cmocka_unit_test(test_ref_expressions_kept),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_repository_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
