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

/* Values that strtod/strtoull would take and turn into something else:
 * nan and inf, a negative size wrapped to 2^64 - 1, an overflow clamped to
 * ULLONG_MAX. Each is refused and leaves the option at its default. */
static void refused_keeping_default(const char *list)
{
    mount_options o;
    mount_options_init(&o);
    char why[256] = "";
    assert_int_equal(mount_parse_options(&o, list, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "bad value for -o"));
    assert_non_null(strstr(why, "expected"));
    assert_true(o.attr_timeout == MOUNT_DEFAULT_ATTR_TIMEOUT);
    assert_int_equal(o.cache_size, MOUNT_DEFAULT_CACHE_SIZE);
    assert_int_equal(o.metadata_cache_size, MOUNT_DEFAULT_METADATA_CACHE_SIZE);
    assert_int_equal(o.max_rename_objects, MOUNT_DEFAULT_MAX_RENAME_OBJECTS);
    assert_int_equal(o.multipart_threshold, MOUNT_DEFAULT_MULTIPART_THRESHOLD);
    assert_int_equal(o.prefetch, MOUNT_DEFAULT_PREFETCH);
    assert_false(o.async_close);
    assert_int_equal(o.upload_threads, MOUNT_DEFAULT_UPLOAD_THREADS);
    mount_options_free(&o);
}

static void test_hostile_numbers(void **state)
{
    (void)state;
    static const char *const refused[] = {
        "attr_timeout=nan", "attr_timeout=NaN", "attr_timeout=inf",
        "attr_timeout=-inf", "attr_timeout=infinity", "attr_timeout=",
        "attr_timeout=1e3", "attr_timeout=0x10", "attr_timeout= 5",
        "attr_timeout=+5", "attr_timeout=-0", "attr_timeout=.",
        "attr_timeout=86400.5", "attr_timeout=1e999", "attr_timeout=5s",
        "cache_size=-1", "cache_size= -1", "cache_size=+1", "cache_size=",
        "cache_size=18446744073709551616", "cache_size=17179869184T",
        "cache_size=0x10", "cache_size=1.5G",
        "metadata_cache_size=-1", "metadata_cache_size= -64M",
        "max_rename_objects=-1", "max_rename_objects= -1",
        "max_rename_objects=", "max_rename_objects=18446744073709551616",
        "max_rename_objects=10K", "multipart_threshold=-64M",
        "multipart_threshold=9223372036854775808",
        "prefetch=", "prefetch", "prefetch=-1", "prefetch=65", "prefetch=8K",
        "prefetch=18446744073709551616",
        "upload_threads=", "upload_threads", "upload_threads=0",
        "upload_threads=65", "upload_threads=-1", "upload_threads=8K",
        "async_close=maybe", "async_close=",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        refused_keeping_default(refused[i]);
}

static void test_number_edges_accepted(void **state)
{
    (void)state;
    mount_options o;
    mount_options_init(&o);
    char why[256] = "";
    assert_int_equal(mount_parse_options(&o,
                                         "attr_timeout=86400,cache_size=0,"
                                         "max_rename_objects="
                                         "18446744073709551615",
                                         why, sizeof(why)),
                     0);
    assert_true(o.attr_timeout == 86400.0);
    assert_int_equal(o.cache_size, 0);
    assert_true(o.max_rename_objects == UINT64_MAX);
    assert_int_equal(mount_parse_options(&o, "prefetch=0", why, sizeof(why)),
                     0);
    assert_int_equal(o.prefetch, 0);
    assert_int_equal(mount_parse_options(&o, "prefetch=64", why, sizeof(why)),
                     0);
    assert_int_equal(o.prefetch, MOUNT_MAX_PREFETCH);
    assert_false(o.async_close);
    assert_int_equal(mount_parse_options(&o, "async_close,upload_threads=64",
                                         why, sizeof(why)),
                     0);
    assert_true(o.async_close);
    assert_int_equal(o.upload_threads, MOUNT_MAX_UPLOAD_THREADS);
    assert_int_equal(mount_parse_options(&o, "async_close=false,upload_threads=1",
                                         why, sizeof(why)),
                     0);
    assert_false(o.async_close);
    assert_int_equal(o.upload_threads, 1);
    assert_int_equal(mount_parse_options(&o, "attr_timeout=0.25", why,
                                         sizeof(why)),
                     0);
    assert_true(o.attr_timeout == 0.25);
    assert_int_equal(mount_parse_options(&o, "attr_timeout=.5", why,
                                         sizeof(why)),
                     0);
    assert_true(o.attr_timeout == 0.5);
    assert_int_equal(mount_parse_options(&o, "attr_timeout=0", why,
                                         sizeof(why)),
                     0);
    assert_true(o.attr_timeout == 0.0);
    uint64_t v = 0;
    assert_int_equal(mount_parse_size("16777215T", &v), 0);
    assert_true(v == 16777215ULL << 40);
    assert_int_equal(mount_parse_size("16777216T", &v), -1);
    mount_options_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_own_options),
        cmocka_unit_test(test_fuse_options_pass_through),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_hostile_numbers),
        cmocka_unit_test(test_number_edges_accepted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
