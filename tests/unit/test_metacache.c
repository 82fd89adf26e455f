/*
 * test_metacache.c - unit tests of src/metacache.c: positive and negative
 * lookups, expiry (time passed explicitly, never slept), LRU eviction under
 * a byte budget, generations, updates, foreach and a multi-threaded smoke
 * test. Never talks to a server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "metacache.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BIG_BUDGET (64u << 20)

static fs_entry file_entry(const char *name, int64_t size)
{
    fs_entry e;
    memset(&e, 0, sizeof(e));
    e.name = strdup(name);
    assert_non_null(e.name);
    e.size = size;
    e.mode = 0644;
    e.checksum = strdup("etag");
    assert_int_equal(lakefs_metadata_set(&e.metadata, "k", "v"), 0);
    return e;
}

/* A heap array of files named by a NULL-terminated list, sizes 1, 2, ... */
static fs_entry *make_entries(size_t *n, const char *const *names)
{
    size_t count = 0;
    while (names[count])
        count++;
    fs_entry *entries = calloc(count ? count : 1, sizeof(*entries));
    assert_non_null(entries);
    for (size_t i = 0; i < count; i++)
        entries[i] = file_entry(names[i], (int64_t)i + 1);
    *n = count;
    return entries;
}

static void put_names(metacache *mc, const char *ref, const char *dir,
                      const char *const *names, int64_t expires)
{
    size_t n;
    fs_entry *entries = make_entries(&n, names);
    assert_int_equal(metacache_put(mc, ref, dir, entries, n, expires,
                                   metacache_generation(mc, ref)),
                     0);
}

static const char *const ABC[] = {"a", "b", "c", NULL};

static void test_lookup_positive_and_negative(void **state)
{
    (void)state;
    metacache *mc = metacache_new(BIG_BUDGET);
    assert_non_null(mc);
    put_names(mc, "repo/main", "d", ABC, 0);

    fs_entry e;
    assert_int_equal(metacache_lookup(mc, "repo/main", "d", "b", 0, &e), 1);
    assert_string_equal(e.name, "b");
    assert_int_equal(e.size, 2);
    assert_string_equal(lakefs_metadata_get(&e.metadata, "k"), "v");
    fs_entry_free(&e);

    assert_int_equal(metacache_lookup(mc, "repo/main", "d", "zz", 0, &e), 0);
    assert_int_equal(metacache_lookup(mc, "repo/main", "d", "0", 0, &e), 0);
    /* other dir, other ref: no listing */
    assert_int_equal(metacache_lookup(mc, "repo/main", "", "d", 0, &e),
                     -ENODATA);
    assert_int_equal(metacache_lookup(mc, "repo/dev", "d", "b", 0, &e),
                     -ENODATA);

    metacache_stats st;
    metacache_get_stats(mc, &st);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.negative_hits, 2);
    assert_int_equal(st.misses, 2);
    assert_int_equal(st.listings, 1);
    assert_true(st.bytes > 0);
    metacache_free(mc);
}

static void test_empty_listing_is_negative(void **state)
{
    (void)state;
    metacache *mc = metacache_new(BIG_BUDGET);
    assert_int_equal(metacache_put(mc, "r", "empty", NULL, 0, 0, 0), 0);
    assert_int_equal(metacache_lookup(mc, "r", "empty", "x", 0, NULL), 0);
    metacache_free(mc);
}

static void test_unsorted_put_is_sorted(void **state)
{
    (void)state;
    static const char *const names[] = {"c", "a", "b", NULL};
    metacache *mc = metacache_new(BIG_BUDGET);
    put_names(mc, "r", "", names, 0);
    for (size_t i = 0; names[i]; i++)
        assert_int_equal(metacache_lookup(mc, "r", "", names[i], 0, NULL), 1);
    metacache_free(mc);
}

static void test_expiry(void **state)
{
    (void)state;
    metacache *mc = metacache_new(BIG_BUDGET);
    put_names(mc, "r", "d", ABC, 1000);
    assert_int_equal(metacache_lookup(mc, "r", "d", "a", 999, NULL), 1);
    assert_int_equal(metacache_lookup(mc, "r", "d", "x", 999, NULL), 0);
    assert_int_equal(metacache_lookup(mc, "r", "d", "a", 1000, NULL),
                     -ENODATA);
    /* an expired listing is gone, even for an earlier clock */
    assert_int_equal(metacache_lookup(mc, "r", "d", "a", 0, NULL), -ENODATA);
    metacache_stats st;
    metacache_get_stats(mc, &st);
    assert_int_equal(st.listings, 0);
    metacache_free(mc);
}

static void test_never_expires(void **state)
{
    (void)state;
    metacache *mc = metacache_new(BIG_BUDGET);
    put_names(mc, "r", "d", ABC, 0);
    assert_int_equal(metacache_lookup(mc, "r", "d", "c", INT64_MAX, NULL), 1);
    metacache_free(mc);
}

static void test_lru_eviction(void **state)
{
    (void)state;
    /* Measure one listing, then allow room for about three. */
    metacache *probe = metacache_new(BIG_BUDGET);
    metacache_stats empty, one;
    metacache_get_stats(probe, &empty);
    put_names(probe, "r", "d0", ABC, 0);
    metacache_get_stats(probe, &one);
    metacache_free(probe);
    size_t per_listing = one.bytes - empty.bytes;

    metacache *mc = metacache_new(empty.bytes + 3 * per_listing + 8);
    put_names(mc, "r", "d0", ABC, 0);
    put_names(mc, "r", "d1", ABC, 0);
    put_names(mc, "r", "d2", ABC, 0);
    /* touch d0 so d1 is now the least recently used */
    assert_int_equal(metacache_lookup(mc, "r", "d0", "a", 0, NULL), 1);
    put_names(mc, "r", "d3", ABC, 0);

    metacache_stats st;
    metacache_get_stats(mc, &st);
    assert_int_equal(st.evictions, 1);
    assert_int_equal(st.listings, 3);
    assert_true(st.bytes <= empty.bytes + 3 * per_listing + 8);
    assert_int_equal(metacache_lookup(mc, "r", "d1", "a", 0, NULL), -ENODATA);
    assert_int_equal(metacache_lookup(mc, "r", "d0", "a", 0, NULL), 1);
    assert_int_equal(metacache_lookup(mc, "r", "d2", "a", 0, NULL), 1);
    assert_int_equal(metacache_lookup(mc, "r", "d3", "a", 0, NULL), 1);

    /* the lookups above used d0, d2, d3 in turn: d0 is now the oldest */
    put_names(mc, "r", "d4", ABC, 0);
    assert_int_equal(metacache_lookup(mc, "r", "d0", "a", 0, NULL), -ENODATA);
    assert_int_equal(metacache_lookup(mc, "r", "d2", "a", 0, NULL), 1);
    metacache_get_stats(mc, &st);
    assert_int_equal(st.evictions, 2);
    metacache_free(mc);
}

static void test_too_big_listing_refused(void **state)
{
    (void)state;
    metacache *mc = metacache_new(64);
    size_t n;
    fs_entry *entries = make_entries(&n, ABC);
    assert_int_equal(metacache_put(mc, "r", "d", entries, n, 0, 0), -EFBIG);
    assert_int_equal(metacache_lookup(mc, "r", "d", "a", 0, NULL), -ENODATA);
    metacache_free(mc);
}

static void test_stale_generation_dropped(void **state)
{
    (void)state;
    metacache *mc = metacache_new(BIG_BUDGET);
    uint64_t before = metacache_generation(mc, "r");
    uint64_t other = metacache_generation(mc, "other");
    put_names(mc, "r", "d", ABC, 0);
    metacache_invalidate_ref(mc, "r");
    assert_int_equal(metacache_lookup(mc, "r", "d", "a", 0, NULL), -ENODATA);
    assert_true(metacache_generation(mc, "r") > before);

    /* a listing fetched before the invalidation is not cached */
    size_t n;
    fs_entry *entries = make_entries(&n, ABC);
    assert_int_equal(metacache_put(mc, "r", "d", entries, n, 0, before), 0);
    assert_int_equal(metacache_lookup(mc, "r", "d", "a", 0, NULL), -ENODATA);

    /* other refs are not affected */
    entries = make_entries(&n, ABC);
    assert_int_equal(metacache_put(mc, "other", "d", entries, n, 0, other), 0);
    assert_int_equal(metacache_lookup(mc, "other", "d", "a", 0, NULL), 1);

    /* a fresh fetch is */
    put_names(mc, "r", "d", ABC, 0);
    assert_int_equal(metacache_lookup(mc, "r", "d", "a", 0, NULL), 1);
    metacache_free(mc);
}

static void test_invalidate_ref_drops_all_its_dirs(void **state)
{
    (void)state;
    metacache *mc = metacache_new(BIG_BUDGET);
    put_names(mc, "r", "", ABC, 0);
    put_names(mc, "r", "a", ABC, 0);
    put_names(mc, "s", "a", ABC, 0);
    metacache_invalidate_ref(mc, "r");
    assert_int_equal(metacache_lookup(mc, "r", "", "a", 0, NULL), -ENODATA);
    assert_int_equal(metacache_lookup(mc, "r", "a", "a", 0, NULL), -ENODATA);
    assert_int_equal(metacache_lookup(mc, "s", "a", "a", 0, NULL), 1);
    metacache_free(mc);
}

static void test_invalidate_dir(void **state)
{
    (void)state;
    metacache *mc = metacache_new(BIG_BUDGET);
    put_names(mc, "r", "d", ABC, 0);
    put_names(mc, "r", "e", ABC, 0);
    uint64_t before = metacache_generation(mc, "r");
    metacache_invalidate_dir(mc, "r", "d");
    assert_int_equal(metacache_lookup(mc, "r", "d", "a", 0, NULL), -ENODATA);
    assert_int_equal(metacache_lookup(mc, "r", "e", "a", 0, NULL), 1);
    /* a fetch in flight during the invalidation is dropped too */
    size_t n;
    fs_entry *entries = make_entries(&n, ABC);
    assert_int_equal(metacache_put(mc, "r", "d", entries, n, 0, before), 0);
    assert_int_equal(metacache_lookup(mc, "r", "d", "a", 0, NULL), -ENODATA);
    metacache_invalidate_dir(mc, "r", "not-cached"); /* harmless */
    metacache_free(mc);
}

typedef struct collected {
    char names[16][8];
    size_t count;
    size_t stop_after; /* 0: never stop */
} collected;

static int collect(void *ctx, const fs_entry *e)
{
    collected *c = ctx;
    snprintf(c->names[c->count], sizeof(c->names[0]), "%s", e->name);
    c->count++;
    return c->stop_after && c->count == c->stop_after ? 42 : 0;
}

static void assert_names(metacache *mc, const char *dir,
                         const char *const *want)
{
    collected c = {0};
    assert_int_equal(metacache_foreach(mc, "r", dir, 0, collect, &c), 0);
    size_t i = 0;
    for (; want[i]; i++) {
        assert_true(i < c.count);
        assert_string_equal(c.names[i], want[i]);
    }
    assert_int_equal(c.count, i);
}

static void test_update_entry(void **state)
{
    (void)state;
    static const char *const bd[] = {"b", "d", NULL};
    metacache *mc = metacache_new(BIG_BUDGET);
    put_names(mc, "r", "x", bd, 0);

    fs_entry e = file_entry("ignored", 77);
    assert_int_equal(metacache_update_entry(mc, "r", "x", "c", &e), 0);
    assert_int_equal(metacache_update_entry(mc, "r", "x", "a", &e), 0);
    assert_int_equal(metacache_update_entry(mc, "r", "x", "e", &e), 0);
    static const char *const abcde[] = {"a", "b", "c", "d", "e", NULL};
    assert_names(mc, "x", abcde);

    fs_entry got;
    assert_int_equal(metacache_lookup(mc, "r", "x", "c", 0, &got), 1);
    assert_string_equal(got.name, "c");
    assert_int_equal(got.size, 77);
    fs_entry_free(&got);

    /* replace */
    e.size = 5;
    assert_int_equal(metacache_update_entry(mc, "r", "x", "b", &e), 0);
    assert_int_equal(metacache_lookup(mc, "r", "x", "b", 0, &got), 1);
    assert_int_equal(got.size, 5);
    fs_entry_free(&got);
    assert_names(mc, "x", abcde);

    /* remove, first, middle, last, and a missing name */
    assert_int_equal(metacache_update_entry(mc, "r", "x", "a", NULL), 0);
    assert_int_equal(metacache_update_entry(mc, "r", "x", "c", NULL), 0);
    assert_int_equal(metacache_update_entry(mc, "r", "x", "e", NULL), 0);
    assert_int_equal(metacache_update_entry(mc, "r", "x", "zz", NULL), 0);
    assert_names(mc, "x", bd);
    assert_int_equal(metacache_lookup(mc, "r", "x", "c", 0, NULL), 0);

    /* not cached: nothing to do, still 0 */
    assert_int_equal(metacache_update_entry(mc, "r", "nodir", "a", &e), 0);
    assert_int_equal(metacache_lookup(mc, "r", "nodir", "a", 0, NULL),
                     -ENODATA);
    fs_entry_free(&e);
    metacache_free(mc);
}

static void test_update_entry_drops_older_fetch(void **state)
{
    (void)state;
    metacache *mc = metacache_new(BIG_BUDGET);
    uint64_t before = metacache_generation(mc, "r");
    fs_entry e = file_entry("new", 1);
    assert_int_equal(metacache_update_entry(mc, "r", "d", "new", &e), 0);
    fs_entry_free(&e);
    size_t n;
    fs_entry *entries = make_entries(&n, ABC); /* lacks "new" */
    assert_int_equal(metacache_put(mc, "r", "d", entries, n, 0, before), 0);
    assert_int_equal(metacache_lookup(mc, "r", "d", "new", 0, NULL), -ENODATA);
    metacache_free(mc);
}

static void test_foreach_order_and_stop(void **state)
{
    (void)state;
    static const char *const names[] = {"m", "b", "z", "a", NULL};
    static const char *const sorted[] = {"a", "b", "m", "z", NULL};
    metacache *mc = metacache_new(BIG_BUDGET);
    put_names(mc, "r", "d", names, 0);
    assert_names(mc, "d", sorted);

    collected c = {0};
    c.stop_after = 2;
    assert_int_equal(metacache_foreach(mc, "r", "d", 0, collect, &c), 42);
    assert_int_equal(c.count, 2);
    assert_string_equal(c.names[1], "b");

    c.count = 0;
    assert_int_equal(metacache_foreach(mc, "r", "nope", 0, collect, &c),
                     -ENODATA);
    assert_int_equal(c.count, 0);
    metacache_free(mc);
}

static void test_put_replaces(void **state)
{
    (void)state;
    static const char *const xy[] = {"x", "y", NULL};
    metacache *mc = metacache_new(BIG_BUDGET);
    put_names(mc, "r", "d", ABC, 0);
    put_names(mc, "r", "d", xy, 0);
    assert_int_equal(metacache_lookup(mc, "r", "d", "a", 0, NULL), 0);
    assert_int_equal(metacache_lookup(mc, "r", "d", "y", 0, NULL), 1);
    metacache_stats st;
    metacache_get_stats(mc, &st);
    assert_int_equal(st.listings, 1);
    metacache_free(mc);
}

static void test_many_dirs_and_bytes_accounting(void **state)
{
    (void)state;
    metacache *mc = metacache_new(BIG_BUDGET);
    metacache_stats empty, st;
    metacache_get_stats(mc, &empty);
    char dir[32];
    for (int i = 0; i < 1000; i++) { /* forces the table to grow */
        snprintf(dir, sizeof(dir), "dir%d", i);
        put_names(mc, "r", dir, ABC, 0);
    }
    for (int i = 0; i < 1000; i++) {
        snprintf(dir, sizeof(dir), "dir%d", i);
        assert_int_equal(metacache_lookup(mc, "r", dir, "c", 0, NULL), 1);
    }
    metacache_get_stats(mc, &st);
    assert_int_equal(st.listings, 1000);
    metacache_invalidate_ref(mc, "r");
    metacache_get_stats(mc, &st);
    assert_int_equal(st.listings, 0);
    /* all that is left: the grown bucket array and one generation record */
    assert_true(st.bytes > empty.bytes);
    assert_true(st.bytes < empty.bytes + 64 * 1024);
    metacache_free(mc);
}

/* ---- multi-threaded smoke test ---- */

typedef struct worker {
    metacache *mc;
    int id;
    int found;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    char dir[16];
    for (int i = 0; i < 2000; i++) {
        snprintf(dir, sizeof(dir), "d%d", i % 37);
        const char *ref = i % 2 ? "r1" : "r2";
        if ((i + w->id) % 3 == 0) {
            size_t n;
            static const char *const names[] = {"a", "b", "c", "d", NULL};
            fs_entry *entries = calloc(4, sizeof(*entries));
            n = 0;
            while (names[n]) {
                memset(&entries[n], 0, sizeof(entries[n]));
                entries[n].name = strdup(names[n]);
                n++;
            }
            metacache_put(w->mc, ref, dir, entries, n, 0,
                          metacache_generation(w->mc, ref));
        } else if (i % 101 == 0) {
            metacache_invalidate_ref(w->mc, ref);
        } else {
            fs_entry e;
            if (metacache_lookup(w->mc, ref, dir, "b", 0, &e) == 1) {
                if (strcmp(e.name, "b") == 0)
                    w->found++;
                fs_entry_free(&e);
            }
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    metacache *mc = metacache_new(16 * 1024); /* small: evicts a lot */
    worker workers[4];
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        workers[i] = (worker){mc, i, 0};
        assert_int_equal(pthread_create(&threads[i], NULL, work, &workers[i]),
                         0);
    }
    int found = 0;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        found += workers[i].found;
    }
    assert_true(found > 0);
    metacache_stats st;
    metacache_get_stats(mc, &st);
    assert_true(st.bytes <= 16 * 1024);
    assert_true(st.hits + st.misses + st.negative_hits > 0);
    metacache_free(mc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_positive_and_negative),
        cmocka_unit_test(test_empty_listing_is_negative),
        cmocka_unit_test(test_unsorted_put_is_sorted),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_never_expires),
        cmocka_unit_test(test_lru_eviction),
        cmocka_unit_test(test_too_big_listing_refused),
        cmocka_unit_test(test_stale_generation_dropped),
        cmocka_unit_test(test_invalidate_ref_drops_all_its_dirs),
        cmocka_unit_test(test_invalidate_dir),
        cmocka_unit_test(test_update_entry),
        cmocka_unit_test(test_update_entry_drops_older_fetch),
        cmocka_unit_test(test_foreach_order_and_stop),
        cmocka_unit_test(test_put_replaces),
        cmocka_unit_test(test_many_dirs_and_bytes_accounting),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests_name("metacache", tests, NULL, NULL);
}
