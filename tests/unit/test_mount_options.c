/*
 * test_mount_options.c - `lakefuse mount -o` parsing: lakefuse's own
 * options with their defaults and bounds, sizes with binary suffixes, and
 * everything else handed to FUSE untouched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mount.h"

static void test_defaults(void **state)
{
    (void)state;
    mount_options o;
    mount_options_init(&o);
    assert_true(o.presign);
    assert_false(o.foreground);
    assert_true(o.attr_timeout == MOUNT_DEFAULT_ATTR_TIMEOUT);
    assert_int_equal(o.cache_size, MOUNT_DEFAULT_CACHE_SIZE);
    assert_int_equal(o.metadata_cache_size, MOUNT_DEFAULT_METADATA_CACHE_SIZE);
    assert_null(o.cache_dir);
    assert_null(o.fuse_options);
    mount_options_free(&o);
}

static void test_sizes(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(mount_parse_size("4096", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(mount_parse_size("2K", &v), 0);
    assert_int_equal(v, 2048);
    assert_int_equal(mount_parse_size("3m", &v), 0);
    assert_int_equal(v, 3ULL << 20);
    assert_int_equal(mount_parse_size("10G", &v), 0);
    assert_int_equal(v, 10ULL << 30);
    assert_int_equal(mount_parse_size("1GiB", &v), 0);
    assert_int_equal(v, 1ULL << 30);
    assert_int_equal(mount_parse_size("1T", &v), 0);
    assert_int_equal(v, 1ULL << 40);
    assert_int_equal(mount_parse_size("", &v), -1);
    assert_int_equal(mount_parse_size("-1", &v), -1);
    assert_int_equal(mount_parse_size("12X", &v), -1);
    assert_int_equal(mount_parse_size("1Gx", &v), -1);
    assert_int_equal(mount_parse_size("99999999999999999T", &v), -1);
}

static void test_own_options(void **state)
{
    (void)state;
    mount_options o;
    mount_options_init(&o);
    char why[128] = "";
    assert_int_equal(mount_parse_options(&o,
                                         "attr_timeout=1.5,cache_dir=/c,"
                                         "cache_size=1G,presign=false,"
                                         "metadata_cache_size=8M,"
                                         "log_file=/l.log",
                                         why, sizeof(why)),
                     0);
    assert_true(o.attr_timeout == 1.5);
    assert_string_equal(o.cache_dir, "/c");
    assert_int_equal(o.cache_size, 1ULL << 30);
    assert_false(o.presign);
    assert_int_equal(o.metadata_cache_size, 8ULL << 20);
    assert_string_equal(o.log_file, "/l.log");
    assert_null(o.fuse_options);
    /* A later -o overrides an earlier one. */
    assert_int_equal(mount_parse_options(&o, "cache_dir=/d,presign=yes", why,
                                         sizeof(why)),
                     0);
    assert_string_equal(o.cache_dir, "/d");
    assert_true(o.presign);
    mount_options_free(&o);
}

static void test_fuse_options_pass_through(void **state)
{
    (void)state;
    mount_options o;
    mount_options_init(&o);
    char why[128] = "";
    assert_int_equal(mount_parse_options(&o, "ro,allow_other,max_read=65536",
                                         why, sizeof(why)),
                     0);
    assert_string_equal(o.fuse_options, "ro,allow_other,max_read=65536");
    assert_true(o.allow_other);
    assert_int_equal(mount_parse_options(&o, "noatime", why, sizeof(why)), 0);
    assert_string_equal(o.fuse_options, "ro,allow_other,max_read=65536,noatime");
    mount_options_free(&o);
}

static void bad_option(const char *list)
{
    mount_options o;
    mount_options_init(&o);
    char why[128] = "";
    assert_int_equal(mount_parse_options(&o, list, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "bad value for -o"));
    mount_options_free(&o);
}

static void test_bad_values(void **state)
{
    (void)state;
    bad_option("attr_timeout=abc");
    bad_option("attr_timeout=-1");
    bad_option("attr_timeout");
    bad_option("cache_size=lots");
    bad_option("metadata_cache_size=1K"); /* below the 1 MiB floor */
    bad_option("presign=maybe");
    bad_option("cache_dir=");
    bad_option("log_file");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_own_options),
        cmocka_unit_test(test_fuse_options_pass_through),
        cmocka_unit_test(test_bad_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
