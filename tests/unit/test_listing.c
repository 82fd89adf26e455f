/*
 * test_listing.c - unit tests of src/listing.c: listObjects results turned
 * into sorted POSIX entries (markers, prefixes, invalid names, collisions)
 * and the lakectl ::lakefs:: metadata. Pure: never talks to a server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "listing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct warnings {
    int count;
    char last[1024];
} warnings;

static void count_warning(void *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void count_warning(void *ctx, const char *fmt, ...)
{
    warnings *w = ctx;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->last, sizeof(w->last), fmt, ap);
    va_end(ap);
    w->count++;
}

/* A growable array of results, as the client would hand them over. */
typedef struct results {
    lakefs_object_stats *items;
    size_t count;
} results;

static lakefs_object_stats *add_result(results *r, const char *path,
                                       lakefs_path_type type, int64_t size,
                                       int64_t mtime)
{
    r->items = realloc(r->items, (r->count + 1) * sizeof(*r->items));
    assert_non_null(r->items);
    lakefs_object_stats *st = &r->items[r->count++];
    memset(st, 0, sizeof(*st));
    st->path = strdup(path);
    st->path_type = type;
    if (type == LAKEFS_PATH_OBJECT) {
        st->size_bytes = size;
        st->mtime = mtime;
        st->checksum = strdup("etag");
        st->physical_address = strdup("s3://bucket/data/x");
        st->content_type = strdup("application/octet-stream");
    } else {
        st->checksum = strdup("");
        st->physical_address = strdup("");
    }
    return st;
}

static lakefs_object_stats *add_object(results *r, const char *path)
{
    return add_result(r, path, LAKEFS_PATH_OBJECT, 10, 1000);
}

static void add_prefix(results *r, const char *path)
{
    add_result(r, path, LAKEFS_PATH_COMMON_PREFIX, 0, 0);
}

static void set_meta(lakefs_object_stats *st, const char *key,
                     const char *value)
{
    assert_int_equal(lakefs_metadata_set(&st->metadata, key, value), 0);
}

static void results_free(results *r)
{
    for (size_t i = 0; i < r->count; i++)
        lakefs_object_stats_free(&r->items[i]);
    free(r->items);
    r->items = NULL;
    r->count = 0;
}

typedef struct built {
    fs_entry *entries;
    size_t count;
    warnings warn;
} built;

static void build(const char *prefix, results *r, built *b)
{
    memset(b, 0, sizeof(*b));
    assert_int_equal(listing_build(prefix, r->items, r->count, &b->entries,
                                   &b->count, count_warning, &b->warn),
                     0);
}

static void built_free(built *b)
{
    fs_entries_free(b->entries, b->count);
    b->entries = NULL;
    b->count = 0;
}

/* One object under "d/" with the given metadata, built into one entry. */
static void build_one(const char *key, const char *value, fs_entry *out)
{
    results r = {0};
    lakefs_object_stats *st = add_object(&r, "d/f");
    if (key)
        set_meta(st, key, value);
    built b;
    build("d/", &r, &b);
    assert_int_equal(b.count, 1);
    assert_int_equal(b.warn.count, 0);
    *out = b.entries[0];
    free(b.entries);
    results_free(&r);
}

static void test_marker_dropped(void **state)
{
    (void)state;
    results r = {0};
    add_object(&r, "d/");
    add_object(&r, "d/a");
    built b;
    build("d/", &r, &b);
    assert_int_equal(b.count, 1);
    assert_string_equal(b.entries[0].name, "a");
    assert_int_equal(b.warn.count, 0);
    built_free(&b);
    results_free(&r);
}

static void test_only_marker_is_empty_dir(void **state)
{
    (void)state;
    results r = {0};
    add_object(&r, "d/");
    built b;
    build("d/", &r, &b);
    assert_int_equal(b.count, 0);
    assert_null(b.entries);
    results_free(&r);
}

static void test_common_prefixes_become_dirs(void **state)
{
    (void)state;
    results r = {0};
    add_prefix(&r, "d/sub/");
    add_object(&r, "d/file");
    built b;
    build("d/", &r, &b);
    assert_int_equal(b.count, 2);
    assert_string_equal(b.entries[0].name, "file");
    assert_false(b.entries[0].is_dir);
    assert_int_equal(b.entries[0].size, 10);
    assert_int_equal(b.entries[0].mode, 0644);
    assert_non_null(b.entries[0].checksum);
    assert_string_equal(b.entries[1].name, "sub");
    assert_true(b.entries[1].is_dir);
    assert_int_equal(b.entries[1].size, 0);
    assert_int_equal(b.entries[1].mode, 0755);
    assert_null(b.entries[1].checksum);
    built_free(&b);
    results_free(&r);
}

static void test_root_listing(void **state)
{
    (void)state;
    results r = {0};
    add_prefix(&r, "a/");
    add_object(&r, "b");
    built b;
    build("", &r, &b);
    assert_int_equal(b.count, 2);
    assert_string_equal(b.entries[0].name, "a");
    assert_true(b.entries[0].is_dir);
    assert_string_equal(b.entries[1].name, "b");
    built_free(&b);
    results_free(&r);
}

static void test_sorted_bytewise(void **state)
{
    (void)state;
    results r = {0};
    add_object(&r, "zeta");
    add_prefix(&r, "Beta/");
    add_object(&r, "alpha");
    add_object(&r, "\xc3\xa9t\xc3\xa9"); /* "ete" in UTF-8 sorts last */
    add_object(&r, "a-b");
    built b;
    build("", &r, &b);
    const char *want[] = {"Beta", "a-b", "alpha", "zeta", "\xc3\xa9t\xc3\xa9"};
    assert_int_equal(b.count, 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(b.entries[i].name, want[i]);
    built_free(&b);
    results_free(&r);
}

static void test_invalid_names_skipped(void **state)
{
    (void)state;
    char long_name[2 + 256 + 1] = "d/";
    memset(long_name + 2, 'x', 256);
    long_name[2 + 256] = '\0';
    char max_name[2 + 255 + 1] = "d/";
    memset(max_name + 2, 'y', 255);
    max_name[2 + 255] = '\0';

    results r = {0};
    add_prefix(&r, "d//");   /* empty name, from "d//x" */
    add_object(&r, "d/.");   /* "." */
    add_object(&r, "d/..");  /* ".." */
    add_prefix(&r, "d/../"); /* ".." as a directory */
    add_object(&r, long_name);
    add_object(&r, max_name); /* 255 bytes is fine */
    add_object(&r, "d/ok");
    built b;
    build("d/", &r, &b);
    assert_int_equal(b.warn.count, 5);
    assert_int_equal(b.count, 2);
    assert_string_equal(b.entries[0].name, "ok");
    assert_string_equal(b.entries[1].name, max_name + 2);
    built_free(&b);
    results_free(&r);
}

/* Names lakeFS could never send (not UTF-8, keys over 1024 bytes) are
 * skipped like invalid ones; odd but valid names (tab, newline, NFD) stay. */
static void test_hostile_names_skipped(void **state)
{
    (void)state;
    char deep[1100] = "";
    for (int i = 0; i < 4; i++)
        strcat(deep, "dddddddddddddddddddddddddddddddddddddddddddddddddd"
                     "dddddddddddddddddddddddddddddddddddddddddddddddddd"
                     "dddddddddddddddddddddddddddddddddddddddddddddddddd"
                     "dddddddddddddddddddddddddddddddddddddddddddddddddd"
                     "dddddddddddddddddddddddddddddddddddddddddddddddddd/");
    /* deep: 1004 bytes; a 20-byte name fits (1024), a 21-byte one not. */
    char fits[1200], too_long[1200], too_long_dir[1200];
    snprintf(fits, sizeof(fits), "%s%s", deep, "aaaaaaaaaaaaaaaaaaaa");
    snprintf(too_long, sizeof(too_long), "%s%s", deep, "bbbbbbbbbbbbbbbbbbbbb");
    snprintf(too_long_dir, sizeof(too_long_dir), "%s%s", deep,
             "cccccccccccccccccccc/");
    results r = {0};
    add_object(&r, fits);
    add_object(&r, too_long);
    add_prefix(&r, too_long_dir); /* 1025 bytes with its '/' */
    add_object(&r, "d/bad\xff\xfe");
    add_object(&r, "d/overlong\xc0\xaf");
    add_object(&r, "d/surrogate\xed\xa0\x80");
    built b;
    build(deep, &r, &b);
    assert_int_equal(b.count, 1);
    assert_string_equal(b.entries[0].name, "aaaaaaaaaaaaaaaaaaaa");
    assert_int_equal(b.warn.count, 5); /* 2 too long, 3 outside the prefix */
    built_free(&b);
    results_free(&r);

    add_object(&r, "d/bad\xff\xfe");
    add_object(&r, "d/overlong\xc0\xaf");
    add_object(&r, "d/surrogate\xed\xa0\x80");
    add_object(&r, "d/tab\there");
    add_object(&r, "d/nl\nhere");
    add_object(&r, "d/cafe\xcc\x81");
    add_object(&r, "d/caf\xc3\xa9");
    build("d/", &r, &b);
    assert_int_equal(b.count, 4);
    assert_int_equal(b.warn.count, 3);
    assert_non_null(strstr(b.warn.last, "\\xed\\xa0\\x80"));
    assert_null(strchr(b.warn.last, '\n'));
    built_free(&b);
    results_free(&r);
}

static void test_printable(void **state)
{
    (void)state;
    char buf[64];
    listing_printable("a\tb\nc\x1b[31m\\\"\xff caf\xc3\xa9", buf, sizeof(buf));
    assert_string_equal(buf, "a\\x09b\\x0ac\\x1b[31m\\x5c\\x22\\xff caf\xc3\xa9");
    char small[12];
    listing_printable("0123456789abcdef", small, sizeof(small));
    assert_string_equal(small, "01234567...");
    listing_printable("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", small,
                      sizeof(small));
    assert_true(listing_utf8_is_valid(small)); /* never cut inside a character */
    assert_true(listing_utf8_is_valid("caf\xc3\xa9 \xf0\x9f\x98\x80"));
    assert_false(listing_utf8_is_valid("\xf4\x90\x80\x80")); /* > U+10FFFF */
    assert_false(listing_utf8_is_valid("\xe0\x80\xaf"));      /* overlong */
    assert_false(listing_utf8_is_valid("\xc3"));                /* cut short */
    /* U+0000 inside lakefuse (jsonnul.h): shown as \x00, valid only
     * where a NUL may be (a metadata value) */
    listing_printable("a\xc0\x80" "b\xc0", buf, sizeof(buf));
    assert_string_equal(buf, "a\\x00b\\xc0");
    assert_false(listing_utf8_is_valid("a\xc0\x80"));
    assert_true(listing_utf8_nul_is_valid("a\xc0\x80\xc3\xa9"));
    assert_false(listing_utf8_nul_is_valid("a\xc0\x81"));
}

static void test_name_validity(void **state)
{
    (void)state;
    assert_false(listing_name_is_valid(""));
    assert_false(listing_name_is_valid("."));
    assert_false(listing_name_is_valid(".."));
    assert_false(listing_name_is_valid("a/b"));
    assert_true(listing_name_is_valid("..."));
    assert_true(listing_name_is_valid(".hidden"));
}

static void test_outside_prefix_skipped(void **state)
{
    (void)state;
    results r = {0};
    add_object(&r, "d2/x");
    add_object(&r, "d/x");
    built b;
    build("d/", &r, &b);
    assert_int_equal(b.count, 1);
    assert_string_equal(b.entries[0].name, "x");
    assert_int_equal(b.warn.count, 1);
    assert_non_null(strstr(b.warn.last, "d2/x"));
    built_free(&b);
    results_free(&r);
}

static void test_collision_dir_wins(void **state)
{
    (void)state;
    results r = {0};
    add_object(&r, "d/a"); /* the object comes first in byte order */
    add_prefix(&r, "d/a/");
    add_object(&r, "d/b");
    built b;
    build("d/", &r, &b);
    assert_int_equal(b.count, 2);
    assert_string_equal(b.entries[0].name, "a");
    assert_true(b.entries[0].is_dir);
    assert_string_equal(b.entries[1].name, "b");
    assert_false(b.entries[1].is_dir);
    assert_int_equal(b.warn.count, 1);
    assert_non_null(strstr(b.warn.last, "d/a"));
    built_free(&b);
    results_free(&r);
}

static void test_bad_prefix_rejected(void **state)
{
    (void)state;
    fs_entry *entries = NULL;
    size_t count = 0;
    assert_int_equal(listing_build("d", NULL, 0, &entries, &count, NULL, NULL),
                     -EINVAL);
}

static void test_client_mtime_preferred(void **state)
{
    (void)state;
    fs_entry e;
    build_one(LISTING_KEY_CLIENT_MTIME, "1700000000", &e);
    assert_int_equal(e.mtime, 1700000000);
    fs_entry_free(&e);
    build_one(NULL, NULL, &e);
    assert_int_equal(e.mtime, 1000);
    fs_entry_free(&e);
}

static void test_bad_client_mtime_ignored(void **state)
{
    (void)state;
    const char *bad[] = {
        "", "12abc", " 12", "1.5", "0x10", "99999999999999999999", "-"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        fs_entry e;
        build_one(LISTING_KEY_CLIENT_MTIME, bad[i], &e);
        assert_int_equal(e.mtime, 1000);
        fs_entry_free(&e);
    }
}

static void test_posix_permissions_mode(void **state)
{
    (void)state;
    fs_entry e;
    build_one(LISTING_KEY_POSIX_PERMISSIONS,
              "{\"UID\":1000,\"GID\":100,\"Mode\":384}", &e); /* 0600 */
    assert_int_equal(e.mode, 0600);
    assert_true(e.has_owner);
    assert_int_equal(e.uid, 1000);
    assert_int_equal(e.gid, 100);
    fs_entry_free(&e);

    /* Go's fs.FileMode keeps type bits above the permissions. */
    build_one(LISTING_KEY_POSIX_PERMISSIONS,
              "{\"UID\":0,\"GID\":0,\"Mode\":2147484141}", &e); /* dir|0755 */
    assert_int_equal(e.mode, 0755);
    fs_entry_free(&e);

    build_one(LISTING_KEY_POSIX_PERMISSIONS, "{\"Mode\":\"0750\"}", &e);
    assert_int_equal(e.mode, 0750);
    assert_false(e.has_owner);
    fs_entry_free(&e);
}

static void test_posix_permissions_garbage_ignored(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "not json",
                         "{",
                         "[1,2]",
                         "42",
                         "null",
                         "{\"Mode\":-1}",
                         "{\"Mode\":1.5}",
                         "{\"Mode\":\"rwx\"}",
                         "{\"Mode\":1e300}",
                         "{\"UID\":-3,\"GID\":\"x\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        fs_entry e;
        build_one(LISTING_KEY_POSIX_PERMISSIONS, bad[i], &e);
        assert_int_equal(e.mode, 0644);
        assert_false(e.has_owner);
        fs_entry_free(&e);
    }
}

static void test_symlink_flag(void **state)
{
    (void)state;
    fs_entry e;
    build_one(LISTING_KEY_SYMLINK_TARGET, "../target", &e);
    assert_true(e.is_symlink);
    fs_entry_free(&e);
    build_one("other", "x", &e);
    assert_false(e.is_symlink);
    fs_entry_free(&e);
}

/* One object "d/f" of size bytes with posix-permissions Mode mode and,
 * when rdev is not NULL, the lakefuse-rdev key. */
static void build_special(int64_t size, unsigned mode, const char *rdev,
                          fs_entry *out)
{
    results r = {0};
    lakefs_object_stats *st = add_result(&r, "d/f", LAKEFS_PATH_OBJECT, size, 1);
    char json[96];
    snprintf(json, sizeof(json), "{\"UID\":0,\"GID\":0,\"Mode\":%u}", mode);
    set_meta(st, LISTING_KEY_POSIX_PERMISSIONS, json);
    if (rdev)
        set_meta(st, LISTING_KEY_RDEV, rdev);
    built b;
    build("d/", &r, &b);
    assert_int_equal(b.count, 1);
    *out = b.entries[0];
    free(b.entries);
    results_free(&r);
}

static void test_special_files(void **state)
{
    (void)state;
    fs_entry e;
    build_special(0, 010640, NULL, &e); /* S_IFIFO | 0640 */
    assert_int_equal(e.special, 010000);
    assert_int_equal(fs_entry_type(&e), 010000);
    assert_int_equal(e.mode, 0640);
    assert_int_equal(e.rdev, 0);
    fs_entry_free(&e);

    build_special(0, 020600, "259", &e); /* S_IFCHR, makedev(1, 3) */
    assert_int_equal(e.special, 020000);
    assert_int_equal(e.rdev, 259);
    fs_entry_free(&e);

    build_special(0, 0140755, "5", &e); /* a socket has no device number */
    assert_int_equal(e.special, 0140000);
    assert_int_equal(e.rdev, 0);
    fs_entry_free(&e);

    /* Not numbers, or out of range: no device number. */
    const char *bad[] = {"", "x", "-1", "12x", " 7", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        build_special(0, 060600, bad[i], &e);
        assert_int_equal(e.special, 060000);
        assert_int_equal(e.rdev, 0);
        fs_entry_free(&e);
    }

    /* Bytes under the name: a regular file whatever the mode says. */
    build_special(5, 010644, NULL, &e);
    assert_int_equal(e.special, 0);
    assert_int_equal(fs_entry_type(&e), 0100000);
    fs_entry_free(&e);
    /* Other types in Mode are not special files; nor is a symlink. */
    build_special(0, 040755, NULL, &e);
    assert_int_equal(fs_entry_type(&e), 0100000);
    fs_entry_free(&e);
    build_special(0, 0120777, NULL, &e);
    assert_int_equal(fs_entry_type(&e), 0100000);
    fs_entry_free(&e);
}

static void test_metadata_copied(void **state)
{
    (void)state;
    results r = {0};
    lakefs_object_stats *st = add_object(&r, "f");
    set_meta(st, "color", "blue");
    set_meta(st, LISTING_KEY_CLIENT_MTIME, "5");
    st->physical_address_expiry = 1234;
    built b;
    build("", &r, &b);
    results_free(&r); /* the entries must not borrow from the results */
    assert_int_equal(b.count, 1);
    fs_entry *e = &b.entries[0];
    assert_int_equal(e->metadata.count, 2);
    assert_string_equal(lakefs_metadata_get(&e->metadata, "color"), "blue");
    assert_string_equal(
        lakefs_metadata_get(&e->metadata, LISTING_KEY_CLIENT_MTIME), "5");
    assert_string_equal(e->physical_address, "s3://bucket/data/x");
    assert_int_equal(e->physical_address_expiry, 1234);
    assert_string_equal(e->content_type, "application/octet-stream");

    fs_entry copy;
    assert_int_equal(fs_entry_copy(&copy, e), 0);
    built_free(&b);
    assert_string_equal(copy.name, "f");
    assert_string_equal(lakefs_metadata_get(&copy.metadata, "color"), "blue");
    assert_int_equal(copy.mtime, 5);
    fs_entry_free(&copy);
    fs_entry_free(&copy); /* harmless twice */
}

static void test_large_listing(void **state)
{
    (void)state;
    enum { N = 3000 };
    results r = {0};
    char path[64];
    /* Server order is byte order; feed it reversed to exercise sorting. */
    for (int i = N - 1; i >= 0; i--) {
        snprintf(path, sizeof(path), "big/%05d%s", i, i % 10 ? "" : "/");
        if (i % 10)
            add_object(&r, path);
        else
            add_prefix(&r, path);
    }
    add_object(&r, "big/");
    built b;
    build("big/", &r, &b);
    assert_int_equal(b.warn.count, 0);
    assert_int_equal(b.count, N);
    for (int i = 0; i < N; i++) {
        snprintf(path, sizeof(path), "%05d", i);
        assert_string_equal(b.entries[i].name, path);
        assert_int_equal(b.entries[i].is_dir, i % 10 == 0);
    }
    built_free(&b);
    results_free(&r);
}

/* Files being written merge into a listing: new names added in order,
 * listed files take the newer size and mtime, directories stay, and a
 * listed symlink a file is being written over (a rename of an open file
 * onto it) becomes that regular file, without the link's target. */
static void test_merge_pending_files(void **state)
{
    (void)state;
    results r = {0};
    add_object(&r, "d/b");
    set_meta(add_object(&r, "d/link"), LISTING_KEY_SYMLINK_TARGET, "b");
    add_prefix(&r, "d/sub/");
    built b;
    build("d/", &r, &b);
    assert_int_equal(b.count, 3);
    fs_entry extra[] = {
        {.name = "c", .size = 7, .mtime = 2000},
        {.name = "b", .size = 99, .mtime = 3000},
        {.name = "a", .size = 1, .mtime = 4000, .mode = 0600},
        {.name = "sub", .size = 5, .mtime = 5000},
        {.name = "link", .size = 5, .mtime = 5000},
        {.name = "..", .size = 5, .mtime = 5000},
    };
    assert_int_equal(listing_merge_files(&b.entries, &b.count, extra, 6), 0);
    const char *names[] = {"a", "b", "c", "link", "sub"};
    assert_int_equal(b.count, 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(b.entries[i].name, names[i]);
    assert_int_equal(b.entries[0].mode, 0600);
    assert_int_equal(b.entries[0].mtime, 4000);
    assert_int_equal(b.entries[1].size, 99);
    assert_int_equal(b.entries[1].mtime, 3000);
    assert_int_equal(b.entries[1].mode, LISTING_DEFAULT_FILE_MODE);
    assert_string_equal(b.entries[1].checksum, "etag");
    assert_int_equal(b.entries[2].size, 7);
    assert_int_equal(b.entries[2].mode, LISTING_DEFAULT_FILE_MODE);
    assert_false(b.entries[2].is_dir);
    assert_false(b.entries[3].is_symlink);
    assert_false(b.entries[3].is_dir);
    assert_int_equal(b.entries[3].size, 5);
    assert_int_equal(b.entries[3].mtime, 5000);
    assert_int_equal(b.entries[3].mode, LISTING_DEFAULT_FILE_MODE);
    assert_null(b.entries[3].checksum);
    assert_null(lakefs_metadata_get(&b.entries[3].metadata,
                                    LISTING_KEY_SYMLINK_TARGET));
    assert_true(b.entries[4].is_dir);
    assert_int_equal(b.entries[4].size, 0);
    built_free(&b);
    results_free(&r);
    /* Into an empty listing; an added file carries a copy of its extra's
     * user metadata (a file being written shows it with its bytes). */
    lakefs_metadata md = {0};
    assert_int_equal(lakefs_metadata_set(&md, "owner", "alice"), 0);
    extra[0].metadata = md;
    fs_entry *none = NULL;
    size_t n = 0;
    assert_int_equal(listing_merge_files(&none, &n, extra, 2), 0);
    extra[0].metadata = (lakefs_metadata){0};
    lakefs_metadata_free(&md);
    assert_int_equal(n, 2);
    assert_string_equal(none[0].name, "b");
    assert_string_equal(none[1].name, "c");
    assert_int_equal(none[0].metadata.count, 0);
    assert_string_equal(lakefs_metadata_get(&none[1].metadata, "owner"),
                        "alice");
    fs_entries_free(none, n);
}

/* A file being written keeps the setuid, setgid and sticky bits its object
 * records for its upload, unshown (tree.h): merged, a listed file and a
 * new name show its mode without them and keep them in unshown_mode, so
 * that a later change (chmod aside) or rename neither drops them from the
 * object nor takes them for bits this mount wrote. Its owner (a chown its
 * upload carries) shows too; one without an owner leaves the listed. */
static void test_merge_pending_files_keeps_unshown_bits(void **state)
{
    (void)state;
    results r = {0};
    add_object(&r, "d/listed");
    built b;
    build("d/", &r, &b);
    assert_int_equal(b.count, 1);
    b.entries[0].mode = 0755; /* as masked: 04755 recorded */
    b.entries[0].unshown_mode = 04000;
    b.entries[0].has_owner = true;
    b.entries[0].uid = 7;
    b.entries[0].gid = 8;
    fs_entry extra[] = {
        {.name = "listed", .size = 9, .mtime = 2000,
         .mode = S_IFREG | 0755, .unshown_mode = 04000, .has_owner = true,
         .uid = 1234, .gid = 4321},
        {.name = "new", .size = 1, .mtime = 3000, .mode = S_IFREG | 0644,
         .unshown_mode = 01000, .has_owner = true, .uid = 5, .gid = 6},
        {.name = "plain", .size = 1, .mtime = 3000},
    };
    assert_int_equal(listing_merge_files(&b.entries, &b.count, extra, 3), 0);
    assert_int_equal(b.count, 3);
    assert_string_equal(b.entries[0].name, "listed");
    assert_int_equal(b.entries[0].mode, 0755);
    assert_int_equal(b.entries[0].unshown_mode, 04000);
    assert_int_equal(b.entries[0].size, 9);
    assert_true(b.entries[0].has_owner);
    assert_int_equal(b.entries[0].uid, 1234);
    assert_int_equal(b.entries[0].gid, 4321);
    assert_string_equal(b.entries[1].name, "new");
    assert_int_equal(b.entries[1].mode, 0644);
    assert_int_equal(b.entries[1].unshown_mode, 01000);
    assert_true(b.entries[1].has_owner);
    assert_int_equal(b.entries[1].uid, 5);
    assert_string_equal(b.entries[2].name, "plain");
    assert_false(b.entries[2].has_owner);
    built_free(&b);
    results_free(&r);
}

/* Markers not uploaded yet merge as directories: a name not listed is
 * added as one with the marker's mode, mtime and owner; a listed
 * directory takes them; "." (the listed directory's own) is taken though
 * it is no valid name; a file listed under the name stays a file; a
 * pending "." that is not a directory is skipped. */
static void test_merge_pending_markers(void **state)
{
    (void)state;
    fs_entry *entries = NULL;
    size_t n = 0;
    fs_entry listed[] = {
        {.name = ".", .is_dir = true, .mode = 0755, .mtime = 100},
        {.name = "file", .size = 3, .mtime = 100},
        {.name = "sub", .is_dir = true, .mode = 0755},
    };
    entries = calloc(3, sizeof(*entries));
    assert_non_null(entries);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(fs_entry_copy(&entries[i], &listed[i]), 0);
    }
    n = 3;
    fs_entry extra[] = {
        {.name = "new", .is_dir = true, .mode = 040700, .mtime = 7,
         .has_owner = true, .uid = 1000, .gid = 1001},
        {.name = ".", .is_dir = true, .mode = 040711, .mtime = 8},
        {.name = "sub", .is_dir = true, .mode = 040750, .mtime = 9},
        {.name = "file", .is_dir = true, .mode = 040777, .mtime = 10},
    };
    assert_int_equal(listing_merge_files(&entries, &n, extra, 4), 0);
    const char *names[] = {".", "file", "new", "sub"};
    assert_int_equal(n, 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(entries[i].name, names[i]);
    assert_true(entries[0].is_dir);
    assert_int_equal(entries[0].mode, 0711);
    assert_int_equal(entries[0].mtime, 8);
    assert_false(entries[1].is_dir);
    assert_int_equal(entries[1].size, 3);
    assert_true(entries[2].is_dir);
    assert_int_equal(entries[2].mode, 0700);
    assert_int_equal(entries[2].mtime, 7);
    assert_true(entries[2].has_owner);
    assert_int_equal(entries[2].uid, 1000);
    assert_int_equal(entries[2].gid, 1001);
    assert_int_equal(entries[3].mode, 0750);
    assert_int_equal(entries[3].mtime, 9);
    fs_entries_free(entries, n);

    fs_entry *none = NULL;
    n = 0;
    fs_entry not_dir[] = {{.name = ".", .size = 1}};
    assert_int_equal(listing_merge_files(&none, &n, not_dir, 1), 0);
    assert_int_equal(n, 0);
    free(none);
}

/* A directory that only exists (mode 0: a file being written deeper in
 * it, or one the mount keeps in memory) is added when missing, with the
 * default mode, and leaves a listed directory's attributes as listed. */
static void test_merge_existing_directories(void **state)
{
    (void)state;
    fs_entry listed = {.name = "sub", .is_dir = true, .mode = 0700,
                       .mtime = 5, .has_owner = true, .uid = 7, .gid = 8};
    fs_entry *entries = calloc(1, sizeof(*entries));
    assert_non_null(entries);
    assert_int_equal(fs_entry_copy(&entries[0], &listed), 0);
    size_t n = 1;
    fs_entry extra[] = {{.name = "implied", .is_dir = true},
                        {.name = "sub", .is_dir = true}};
    assert_int_equal(listing_merge_files(&entries, &n, extra, 2), 0);
    assert_int_equal(n, 2);
    assert_string_equal(entries[0].name, "implied");
    assert_true(entries[0].is_dir);
    assert_int_equal(entries[0].mode, LISTING_DEFAULT_DIR_MODE);
    assert_string_equal(entries[1].name, "sub");
    assert_int_equal(entries[1].mode, 0700);
    assert_int_equal(entries[1].mtime, 5);
    assert_int_equal(entries[1].uid, 7);
    fs_entries_free(entries, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_marker_dropped),
        cmocka_unit_test(test_only_marker_is_empty_dir),
        cmocka_unit_test(test_common_prefixes_become_dirs),
        cmocka_unit_test(test_root_listing),
        cmocka_unit_test(test_sorted_bytewise),
        cmocka_unit_test(test_invalid_names_skipped),
        cmocka_unit_test(test_name_validity),
        cmocka_unit_test(test_hostile_names_skipped),
        cmocka_unit_test(test_printable),
        cmocka_unit_test(test_outside_prefix_skipped),
        cmocka_unit_test(test_collision_dir_wins),
        cmocka_unit_test(test_bad_prefix_rejected),
        cmocka_unit_test(test_client_mtime_preferred),
        cmocka_unit_test(test_bad_client_mtime_ignored),
        cmocka_unit_test(test_posix_permissions_mode),
        cmocka_unit_test(test_posix_permissions_garbage_ignored),
        cmocka_unit_test(test_special_files),
        cmocka_unit_test(test_symlink_flag),
        cmocka_unit_test(test_metadata_copied),
        cmocka_unit_test(test_large_listing),
        cmocka_unit_test(test_merge_pending_files),
        cmocka_unit_test(test_merge_pending_files_keeps_unshown_bits),
        cmocka_unit_test(test_merge_pending_markers),
        cmocka_unit_test(test_merge_existing_directories),
    };
    return cmocka_run_group_tests_name("listing", tests, NULL, NULL);
}
