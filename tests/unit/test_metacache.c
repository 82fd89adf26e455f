/*
 * test_metacache.c - unit tests of src/metacache.c: positive and negative
 * lookups, expiry (time passed explicitly, never slept), LRU eviction under
 * a byte budget, generations, updates, foreach and a multi-threaded smoke
 * test. Never talks to a server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include <cmocka.h>

#include "metacache.h"

#include "entryset.h"

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

/* foreach_after's callback: checks each name is the next one expected. */
typedef struct after_walk {
    size_t next; /* index of the name expected next */
    size_t seen;
} after_walk;

static int expect_next(void *ctx, const fs_entry *e)
{
    after_walk *w = ctx;
    char want[16];
    snprintf(want, sizeof(want), "f%05zu", w->next * 2);
    assert_string_equal(e->name, want);
    w->next++;
    w->seen++;
    return 0;
}

/* Entries after a name, over several chunks: a name present, one between
 * two entries, one before all and one after all, and NULL. */
static void test_foreach_after(void **state)
{
    (void)state;
    enum { N = 1000 }; /* f00000, f00002, ... f01998: several chunks */
    fs_entry *entries = calloc(N, sizeof(*entries));
    assert_non_null(entries);
    for (size_t i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof(name), "f%05zu", i * 2);
        entries[i] = file_entry(name, 1);
    }
    metacache *mc = metacache_new(BIG_BUDGET);
    assert_int_equal(metacache_put(mc, "r", "d", entries, N, 0,
                                   metacache_generation(mc, "r")),
                     0);
    for (size_t k = 0; k < 2 * N; k++) { /* after f(k): k even is present */
        char after[16];
        snprintf(after, sizeof(after), "f%05zu", k);
        after_walk w = {.next = k / 2 + 1};
        assert_int_equal(metacache_foreach_after(mc, "r", "d", 0, after,
                                                 expect_next, &w),
                         0);
        assert_int_equal(w.seen, N - (k / 2 + 1));
    }
    after_walk all = {0};
    assert_int_equal(metacache_foreach_after(mc, "r", "d", 0, NULL,
                                             expect_next, &all), 0);
    assert_int_equal(all.seen, N);
    after_walk before = {0};
    assert_int_equal(metacache_foreach_after(mc, "r", "d", 0, "a",
                                             expect_next, &before), 0);
    assert_int_equal(before.seen, N);
    after_walk past = {0};
    assert_int_equal(metacache_foreach_after(mc, "r", "d", 0, "g",
                                             expect_next, &past), 0);
    assert_int_equal(past.seen, 0);
    assert_int_equal(metacache_foreach_after(mc, "r", "nope", 0, NULL,
                                             expect_next, &past),
                     -ENODATA);
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

/* ---- per-directory generations (issue 13) ---- */

/* Puts ABC into (r, dir) with generation g; 1 if it was kept. */
static int put_at(metacache *mc, const char *dir, uint64_t g)
{
    size_t n;
    fs_entry *entries = make_entries(&n, ABC);
    assert_int_equal(metacache_put(mc, "r", dir, entries, n, 0, g), 0);
    int rc = metacache_lookup(mc, "r", dir, "a", 0, NULL);
    assert_true(rc == 1 || rc == -ENODATA);
    if (rc == 1)
        metacache_invalidate_ref(mc, "r"); /* a clean slate for the next */
    return rc == 1;
}

static void test_generation_per_directory(void **state)
{
    (void)state;
    metacache *mc = metacache_new(BIG_BUDGET);
    fs_entry e = file_entry("x", 1);

    /* a write in D drops a stale put for D, not for E */
    uint64_t g = metacache_generation(mc, "r");
    assert_int_equal(metacache_update_entry(mc, "r", "D", "x", &e), 0);
    assert_false(put_at(mc, "D", g));
    g = metacache_generation(mc, "r");
    assert_int_equal(metacache_update_entry(mc, "r", "D", "x", &e), 0);
    assert_true(put_at(mc, "E", g));
    /* a fetch that began after the write is kept */
    g = metacache_generation(mc, "r");
    assert_int_equal(metacache_update_entry(mc, "r", "D", "x", &e), 0);
    assert_true(put_at(mc, "D", metacache_generation(mc, "r")));
    /* a removal counts as a write too */
    g = metacache_generation(mc, "r");
    assert_int_equal(metacache_update_entry(mc, "r", "D", "x", NULL), 0);
    assert_false(put_at(mc, "D", g));

    /* a write in a/b/c may create or remove the implicit directories
     * a, a/b, a/b/c: stale puts of every ancestor are dropped, those of
     * siblings, descendants and look-alike names are kept */
    static const char *const dropped[] = {"a/b/c", "a/b", "a", ""};
    static const char *const kept[] = {"a/b/c/d", "a/b/cc", "a/bb", "b",
                                       "a/b/d", "ab", NULL};
    for (size_t i = 0; i < 4; i++) {
        g = metacache_generation(mc, "r");
        assert_int_equal(metacache_update_entry(mc, "r", "a/b/c", "x", &e),
                         0);
        assert_false(put_at(mc, dropped[i], g));
    }
    for (size_t i = 0; kept[i]; i++) {
        g = metacache_generation(mc, "r");
        assert_int_equal(metacache_update_entry(mc, "r", "a/b/c", "x", &e),
                         0);
        assert_true(put_at(mc, kept[i], g));
    }

    /* invalidate_dir works the same way */
    g = metacache_generation(mc, "r");
    metacache_invalidate_dir(mc, "r", "p/q");
    assert_false(put_at(mc, "p", g));
    g = metacache_generation(mc, "r");
    metacache_invalidate_dir(mc, "r", "p/q");
    assert_true(put_at(mc, "s", g));

    /* invalidate_ref drops every stale put of the ref, none of others */
    g = metacache_generation(mc, "r");
    metacache_invalidate_ref(mc, "r");
    assert_false(put_at(mc, "unrelated", g));
    g = metacache_generation(mc, "r");
    metacache_invalidate_ref(mc, "other");
    assert_true(put_at(mc, "unrelated", g));
    /* a write in another ref's D does not touch r's D */
    g = metacache_generation(mc, "r");
    assert_int_equal(metacache_update_entry(mc, "other", "D", "x", &e), 0);
    assert_true(put_at(mc, "D", g));

    fs_entry_free(&e);
    assert_int_equal(metacache_verify(mc), 0);
    metacache_free(mc);
}

/* The directory records are bounded; past the bound a stale put is still
 * dropped (the floor moves), never kept. */
static void test_generation_records_bounded(void **state)
{
    (void)state;
    metacache *mc = metacache_new(16 * 1024); /* a bound of 16 records */
    metacache_stats before, st;
    metacache_get_stats(mc, &before);
    char dir[32];
    for (int round = 0; round < 50; round++) {
        uint64_t g = metacache_generation(mc, "r");
        for (int i = 0; i <= round; i++) {
            snprintf(dir, sizeof(dir), "d%d", i);
            metacache_invalidate_dir(mc, "r", dir);
        }
        /* every directory written since g: each stale put is dropped */
        for (int i = 0; i <= round; i++) {
            snprintf(dir, sizeof(dir), "d%d", i);
            size_t n;
            fs_entry *entries = make_entries(&n, ABC);
            assert_int_equal(metacache_put(mc, "r", dir, entries, n, 0, g), 0);
            assert_int_equal(metacache_lookup(mc, "r", dir, "a", 0, NULL),
                             -ENODATA);
        }
        assert_int_equal(metacache_verify(mc), 0);
    }
    metacache_get_stats(mc, &st);
    assert_true(st.bytes - before.bytes < 16 * 256);
    metacache_free(mc);
}

/* ---- updates against a brute-force model ---- */

#define MODEL_NAMES 3000

typedef struct model {
    bool present[MODEL_NAMES];
    int64_t size[MODEL_NAMES];
} model;

static void model_name(char *buf, size_t len, size_t i)
{
    /* names of varying length, not in numeric order */
    snprintf(buf, len, "n%zu%s", (i * 7919) % MODEL_NAMES,
             i % 3 ? "" : "-longer-name");
}

typedef struct model_walk {
    const model *m;
    const char *sorted[MODEL_NAMES];
    size_t sorted_index[MODEL_NAMES];
    size_t expected, at;
} model_walk;

static int check_walk(void *ctx, const fs_entry *e)
{
    model_walk *w = ctx;
    assert_true(w->at < w->expected);
    assert_string_equal(e->name, w->sorted[w->at]);
    assert_int_equal(e->size, w->m->size[w->sorted_index[w->at]]);
    w->at++;
    return 0;
}

static int compare_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void check_against_model(metacache *mc, const model *m,
                                char names[][32])
{
    static model_walk w;
    memset(&w, 0, sizeof(w));
    w.m = m;
    const char *tmp[MODEL_NAMES];
    size_t n = 0;
    for (size_t i = 0; i < MODEL_NAMES; i++)
        if (m->present[i])
            tmp[n++] = names[i];
    qsort(tmp, n, sizeof(*tmp), compare_str);
    for (size_t i = 0; i < n; i++) {
        w.sorted[i] = tmp[i];
        w.sorted_index[i] = (size_t)(((const char(*)[32])tmp[i]) - names);
    }
    w.expected = n;
    assert_int_equal(metacache_foreach(mc, "r", "d", 0, check_walk, &w), 0);
    assert_int_equal(w.at, n);
    assert_int_equal(metacache_verify(mc), 0);
}

static void test_updates_match_model(void **state)
{
    (void)state;
    static char names[MODEL_NAMES][32];
    static model m;
    memset(&m, 0, sizeof(m));
    for (size_t i = 0; i < MODEL_NAMES; i++)
        model_name(names[i], sizeof(names[i]), i);
    metacache *mc = metacache_new(BIG_BUDGET);
    /* start from a listing of every other name */
    fs_entry *entries = calloc(MODEL_NAMES, sizeof(*entries));
    assert_non_null(entries);
    size_t n = 0;
    for (size_t i = 0; i < MODEL_NAMES; i += 2) {
        entries[n++] = file_entry(names[i], (int64_t)i);
        m.present[i] = true;
        m.size[i] = (int64_t)i;
    }
    assert_int_equal(metacache_put(mc, "r", "d", entries, n, 0,
                                   metacache_generation(mc, "r")),
                     0);
    check_against_model(mc, &m, names);

    unsigned seed = 12345;
    for (int op = 0; op < 40000; op++) {
        seed = seed * 1103515245u + 12345u;
        size_t i = (seed >> 8) % MODEL_NAMES;
        /* phases: mostly inserts, then mostly removes, then mixed, so that
         * chunks split, empty out and refill */
        int phase = op / 10000;
        unsigned r = (seed >> 20) % 10;
        bool remove = phase == 0 ? r < 2 : phase == 1 ? r < 8 : r < 5;
        if (remove) {
            assert_int_equal(
                metacache_update_entry(mc, "r", "d", names[i], NULL), 0);
            m.present[i] = false;
        } else {
            fs_entry e = file_entry("ignored", op);
            assert_int_equal(
                metacache_update_entry(mc, "r", "d", names[i], &e), 0);
            fs_entry_free(&e);
            m.present[i] = true;
            m.size[i] = op;
        }
        fs_entry got;
        int rc = metacache_lookup(mc, "r", "d", names[i], 0, &got);
        assert_int_equal(rc, m.present[i] ? 1 : 0);
        if (rc == 1) {
            assert_string_equal(got.name, names[i]);
            assert_int_equal(got.size, m.size[i]);
            fs_entry_free(&got);
        }
        if (op % 997 == 0)
            check_against_model(mc, &m, names);
    }
    check_against_model(mc, &m, names);
    /* remove everything: the listing is empty, not absent */
    for (size_t i = 0; i < MODEL_NAMES; i++) {
        assert_int_equal(metacache_update_entry(mc, "r", "d", names[i], NULL),
                         0);
        m.present[i] = false;
    }
    check_against_model(mc, &m, names);
    assert_int_equal(metacache_lookup(mc, "r", "d", names[0], 0, NULL), 0);
    fs_entry e = file_entry("ignored", 1);
    assert_int_equal(metacache_update_entry(mc, "r", "d", "again", &e), 0);
    fs_entry_free(&e);
    assert_int_equal(metacache_lookup(mc, "r", "d", "again", 0, NULL), 1);
    assert_int_equal(metacache_verify(mc), 0);

    /* the incremental estimate equals a fresh put of the same listing's
     * entries plus what its chunk layout costs: both verified above; and
     * dropping the listing gives all its bytes back */
    metacache_stats st, empty;
    metacache_get_stats(mc, &st);
    metacache_invalidate_dir(mc, "r", "d");
    metacache_get_stats(mc, &empty);
    assert_true(empty.bytes < st.bytes);
    assert_int_equal(empty.listings, 0);
    assert_int_equal(metacache_verify(mc), 0);
    metacache_free(mc);
}

/* ---- lookups that copy nothing; foreach outside the lock ---- */

static int read_size(void *ctx, const fs_entry *e)
{
    *(int64_t *)ctx = e->size;
    return 0;
}

static int refuse(void *ctx, const fs_entry *e)
{
    (void)ctx;
    (void)e;
    return -EIO;
}

static void test_lookup_with(void **state)
{
    (void)state;
    metacache *mc = metacache_new(BIG_BUDGET);
    put_names(mc, "r", "d", ABC, 0);
    int64_t size = -1;
    assert_int_equal(
        metacache_lookup_with(mc, "r", "d", "c", 0, read_size, &size), 1);
    assert_int_equal(size, 3);
    size = -1;
    assert_int_equal(
        metacache_lookup_with(mc, "r", "d", "q", 0, read_size, &size), 0);
    assert_int_equal(size, -1); /* not called */
    assert_int_equal(
        metacache_lookup_with(mc, "r", "x", "a", 0, read_size, &size),
        -ENODATA);
    assert_int_equal(metacache_lookup_with(mc, "r", "d", "a", 0, refuse, NULL),
                     -EIO);
    assert_int_equal(metacache_lookup_with(mc, "r", "d", "a", 0, NULL, NULL),
                     1);
    metacache_free(mc);
}

typedef struct reentrant {
    metacache *mc;
    size_t seen;
} reentrant;

/* Writes into and drops the very listing being walked: allowed now that
 * fn runs without the lock; the walk sees the snapshot. */
static int write_while_walking(void *ctx, const fs_entry *e)
{
    reentrant *r = ctx;
    static const char *const want[] = {"a", "b", "c"};
    assert_string_equal(e->name, want[r->seen]);
    r->seen++;
    fs_entry add = file_entry("ignored", 9);
    assert_int_equal(metacache_update_entry(r->mc, "r", "d", "aa", &add), 0);
    assert_int_equal(metacache_update_entry(r->mc, "r", "d", "c", NULL), 0);
    fs_entry_free(&add);
    if (r->seen == 2)
        metacache_invalidate_ref(r->mc, "r");
    return 0;
}

static void test_foreach_is_a_snapshot(void **state)
{
    (void)state;
    metacache *mc = metacache_new(BIG_BUDGET);
    put_names(mc, "r", "d", ABC, 0);
    reentrant r = {mc, 0};
    assert_int_equal(
        metacache_foreach(mc, "r", "d", 0, write_while_walking, &r), 0);
    assert_int_equal(r.seen, 3);
    assert_int_equal(metacache_lookup(mc, "r", "d", "a", 0, NULL), -ENODATA);

    /* an update after a walk began, before it ends, copies on write */
    put_names(mc, "r", "d", ABC, 0);
    static const char *const abaac[] = {"a", "aa", "b", NULL};
    r.seen = 0;
    collected c = {0};
    assert_int_equal(metacache_foreach(mc, "r", "d", 0, collect, &c), 0);
    fs_entry add = file_entry("ignored", 9);
    assert_int_equal(metacache_update_entry(mc, "r", "d", "aa", &add), 0);
    assert_int_equal(metacache_update_entry(mc, "r", "d", "c", NULL), 0);
    fs_entry_free(&add);
    assert_names(mc, "d", abaac);
    assert_int_equal(metacache_verify(mc), 0);
    metacache_free(mc);
}

/* ---- concurrent readers and writers (run under the sanitizer too) ---- */

#define RW_BASE 2000
#define RW_WRITERS 2
#define RW_READERS 3
#define RW_OPS 3000

typedef struct rw_ctx {
    metacache *mc;
    int id;
    size_t walks;
    const char *prev;
    char prev_buf[64];
    size_t count;
    bool ok;
} rw_ctx;

static int rw_check(void *ctx, const fs_entry *e)
{
    rw_ctx *c = ctx;
    if (c->count && strcmp(c->prev_buf, e->name) >= 0)
        c->ok = false; /* out of order or duplicated */
    snprintf(c->prev_buf, sizeof(c->prev_buf), "%s", e->name);
    c->count++;
    return 0;
}

static void *rw_reader(void *arg)
{
    rw_ctx *c = arg;
    char name[32];
    for (int i = 0; i < RW_OPS / 10; i++) {
        c->count = 0;
        int rc = metacache_foreach(c->mc, "r", "d", 0, rw_check, c);
        if (rc == 0) {
            c->walks++;
            /* the base names are never removed */
            if (c->count < RW_BASE)
                c->ok = false;
        }
        for (int k = 0; k < 20; k++) {
            snprintf(name, sizeof(name), "base%05d", (i * 31 + k) % RW_BASE);
            int64_t size = -1;
            rc = metacache_lookup_with(c->mc, "r", "d", name, 0, read_size,
                                       &size);
            if (rc != 1 && rc != -ENODATA)
                c->ok = false;
        }
    }
    return NULL;
}

static void *rw_writer(void *arg)
{
    rw_ctx *c = arg;
    char name[32];
    for (int i = 0; i < RW_OPS; i++) {
        snprintf(name, sizeof(name), "w%d-%05d", c->id, i);
        fs_entry e = file_entry("ignored", i);
        if (metacache_update_entry(c->mc, "r", "d", name, &e) != 0)
            c->ok = false;
        fs_entry_free(&e);
        if (i % 3 == 0) { /* remove one of its own earlier names */
            snprintf(name, sizeof(name), "w%d-%05d", c->id, i / 2);
            if (metacache_update_entry(c->mc, "r", "d", name, NULL) != 0)
                c->ok = false;
        }
        if (i % 500 == 250) { /* and now and then a write elsewhere */
            metacache_invalidate_dir(c->mc, "r", "elsewhere");
        }
    }
    return NULL;
}

static void test_concurrent_readers_and_writers(void **state)
{
    (void)state;
    metacache *mc = metacache_new(BIG_BUDGET);
    fs_entry *entries = calloc(RW_BASE, sizeof(*entries));
    assert_non_null(entries);
    char name[32];
    for (int i = 0; i < RW_BASE; i++) {
        snprintf(name, sizeof(name), "base%05d", i);
        entries[i] = file_entry(name, i);
    }
    assert_int_equal(metacache_put(mc, "r", "d", entries, RW_BASE, 0,
                                   metacache_generation(mc, "r")),
                     0);
    rw_ctx ctx[RW_WRITERS + RW_READERS];
    pthread_t threads[RW_WRITERS + RW_READERS];
    for (int i = 0; i < RW_WRITERS + RW_READERS; i++) {
        memset(&ctx[i], 0, sizeof(ctx[i]));
        ctx[i].mc = mc;
        ctx[i].id = i;
        ctx[i].ok = true;
        assert_int_equal(pthread_create(&threads[i], NULL,
                                        i < RW_WRITERS ? rw_writer : rw_reader,
                                        &ctx[i]),
                         0);
    }
    size_t walks = 0;
    for (int i = 0; i < RW_WRITERS + RW_READERS; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_true(ctx[i].ok);
        walks += ctx[i].walks;
    }
    assert_true(walks > 0);
    assert_int_equal(metacache_verify(mc), 0);
    /* the final listing is exactly what the writers left */
    for (int w = 0; w < RW_WRITERS; w++) {
        bool removed[RW_OPS] = {false};
        for (int i = 0; i < RW_OPS; i += 3)
            removed[i / 2] = true;
        for (int i = 0; i < RW_OPS; i++) {
            snprintf(name, sizeof(name), "w%d-%05d", w, i);
            assert_int_equal(metacache_lookup(mc, "r", "d", name, 0, NULL),
                             removed[i] ? 0 : 1);
        }
    }
    metacache_free(mc);
}

/* ---- multi-threaded smoke test ---- */

typedef struct worker {
    metacache *mc;
    int id;
    int wrong; /* a lookup of "b" that answered another entry */
    bool own_hit;
} worker;

static fs_entry *abcd_entries(size_t *n)
{
    static const char *const names[] = {"a", "b", "c", "d", NULL};
    fs_entry *entries = calloc(4, sizeof(*entries));
    *n = 0;
    while (names[*n]) {
        entries[*n].name = strdup(names[*n]);
        (*n)++;
    }
    return entries;
}

static void *work(void *arg)
{
    worker *w = arg;
    char dir[16];
    for (int i = 0; i < 2000; i++) {
        snprintf(dir, sizeof(dir), "d%d", i % 37);
        const char *ref = i % 2 ? "r1" : "r2";
        if ((i + w->id) % 3 == 0) {
            size_t n;
            fs_entry *entries = abcd_entries(&n);
            metacache_put(w->mc, ref, dir, entries, n, 0,
                          metacache_generation(w->mc, ref));
        } else if (i % 101 == 0) {
            metacache_invalidate_ref(w->mc, ref);
        } else {
            fs_entry e;
            if (metacache_lookup(w->mc, ref, dir, "b", 0, &e) == 1) {
                if (strcmp(e.name, "b") != 0)
                    w->wrong++;
                fs_entry_free(&e);
            }
        }
    }
    /* Whether the loop's lookups hit depends on scheduling (the others'
     * puts evict and invalidate). A listing of this thread's own ref, which
     * nobody invalidates, found right after it is put: deterministic but for
     * the others evicting it in between, so tried a bounded number of times
     * while they still run. */
    char own[16];
    snprintf(own, sizeof(own), "own%d", w->id);
    for (int tries = 0; tries < 1000 && !w->own_hit; tries++) {
        size_t n;
        fs_entry *entries = abcd_entries(&n);
        metacache_put(w->mc, own, "d", entries, n, 0,
                      metacache_generation(w->mc, own));
        fs_entry e;
        if (metacache_lookup(w->mc, own, "d", "c", 0, &e) == 1) {
            w->own_hit = strcmp(e.name, "c") == 0;
            if (!w->own_hit)
                w->wrong++;
            fs_entry_free(&e);
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
        workers[i] = (worker){mc, i, 0, false};
        assert_int_equal(pthread_create(&threads[i], NULL, work, &workers[i]),
                         0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(workers[i].wrong, 0);
        assert_true(workers[i].own_hit);
    }
    metacache_stats st;
    metacache_get_stats(mc, &st);
    assert_true(st.bytes <= 16 * 1024);
    assert_true(st.hits + st.misses + st.negative_hits > 0);
    metacache_free(mc);
}


/* n files f00000.. with (url: a 2,000-byte physical address each). */
static fs_entry *numbered_entries(size_t n, bool url)
{
    fs_entry *entries = calloc(n, sizeof(*entries));
    assert_non_null(entries);
    char name[32];
    char *addr = malloc(2001);
    assert_non_null(addr);
    memset(addr, 'u', 2000);
    memcpy(addr, "https://", 8);
    addr[2000] = 0;
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "f%05zu", i);
        entries[i] = file_entry(name, (int64_t)i);
        if (url) {
            entries[i].physical_address = strdup(addr);
            entries[i].physical_address_expiry = 1;
        }
    }
    free(addr);
    return entries;
}

static int find_address(void *ctx, const fs_entry *e)
{
    *(bool *)ctx = e->physical_address != NULL;
    return 0;
}

/* A listing too big for the budget with a presigned URL per entry but not
 * without is kept without them (a lookup answers from it, with no URL),
 * rather than refused and fetched again for every lookup. */
static void test_big_listing_kept_without_addresses(void **state)
{
    (void)state;
    metacache *probe = metacache_new(BIG_BUDGET);
    metacache_stats empty, full;
    metacache_get_stats(probe, &empty);
    assert_int_equal(metacache_put(probe, "r", "d", numbered_entries(100, false),
                                   100, 0, 0),
                     0);
    metacache_get_stats(probe, &full);
    metacache_free(probe);
    size_t budget = full.bytes + 1000; /* 100 URLs weigh 200,000 more */
    metacache *mc = metacache_new(budget);
    assert_int_equal(metacache_put(mc, "r", "d", numbered_entries(100, true),
                                   100, 0, 0),
                     0);
    bool has_address = true;
    assert_int_equal(metacache_lookup_with(mc, "r", "d", "f00042", 0,
                                           find_address, &has_address),
                     1);
    assert_false(has_address);
    metacache_stats st;
    metacache_get_stats(mc, &st);
    assert_true(st.bytes <= budget);
    assert_int_equal(st.listings, 1);
    assert_int_equal(metacache_verify(mc), 0);
    /* one that does not fit even without them is still refused */
    assert_int_equal(metacache_put(mc, "r", "e", numbered_entries(400, true),
                                   400, 0, 0),
                     -EFBIG);
    metacache_free(mc);
}

typedef struct walk_ctx {
    size_t next;    /* the index expected next */
    size_t visited; /* entries passed to the callback */
    size_t room;    /* how many more fit this request */
    bool in_order;
} walk_ctx;

static int take_entry(void *ctx, const fs_entry *e, size_t index)
{
    walk_ctx *w = ctx;
    char name[32];
    snprintf(name, sizeof(name), "f%05zu", index);
    w->visited++;
    if (index != w->next || strcmp(e->name, name) != 0)
        w->in_order = false;
    if (w->room == 0)
        return 1; /* did not fit: the next request starts here again */
    w->room--;
    w->next = index + 1;
    return 0;
}

/* A directory read in requests of 37 entries, each resuming where the last
 * stopped, visits each entry once (plus one per request that did not fit)
 * and passes each chunk once in all: O(n), at two sizes alike. */
static void test_foreach_from_reads_in_linear_work(void **state)
{
    (void)state;
    const size_t sizes[] = {1000, 20000};
    for (size_t k = 0; k < 2; k++) {
        size_t n = sizes[k];
        entryset *s = entryset_new(numbered_entries(n, false), n);
        assert_non_null(s);
        entryset_pos pos = {0, 0};
        walk_ctx w = {0, 0, 0, true};
        size_t steps = 0, requests = 0;
        while (w.next < n) {
            w.room = 37;
            requests++;
            entryset_foreach_from(s, w.next, &pos, &steps, take_entry, &w);
        }
        assert_true(w.in_order);
        assert_int_equal(w.next, n);
        assert_int_equal(w.visited, n + requests - 1);
        /* every chunk passed once: fewer steps than chunks of 192 */
        assert_true(steps <= n / 192 + 1);
        /* a jump back restarts from the first chunk and lands right */
        w = (walk_ctx){n / 3, 0, 5, true};
        steps = 0;
        entryset_foreach_from(s, n / 3, &pos, &steps, take_entry, &w);
        assert_true(w.in_order);
        assert_int_equal(w.next, n / 3 + 5);
        assert_true(steps <= n / 3 / 192 + 1);
        entryset_release(s);
    }
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
        cmocka_unit_test(test_foreach_after),
        cmocka_unit_test(test_many_dirs_and_bytes_accounting),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_generation_per_directory),
        cmocka_unit_test(test_generation_records_bounded),
        cmocka_unit_test(test_updates_match_model),
        cmocka_unit_test(test_lookup_with),
        cmocka_unit_test(test_foreach_is_a_snapshot),
        cmocka_unit_test(test_concurrent_readers_and_writers),
        cmocka_unit_test(test_big_listing_kept_without_addresses),
        cmocka_unit_test(test_foreach_from_reads_in_linear_work),
    };
    return cmocka_run_group_tests_name("metacache", tests, NULL, NULL);
}
