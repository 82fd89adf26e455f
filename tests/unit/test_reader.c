/*
 * test_reader.c - unit tests of src/reader.c over a fake fetch callback that
 * serves generated content, counts and logs calls, injects errors and short
 * reads, and can hold calls at a gate. Threads meet through condition
 * variables and reader counters, never sleeps. Every test removes its
 * directories.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include "reader.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)
#define BS 4096u /* block size of most tests */
#define LOG_MAX 4096

/* ---- the fake object store ---- */

typedef struct fake_call {
    uint64_t offset;
    size_t len;
} fake_call;

typedef struct fake_state {
    unsigned calls;
    fake_call log[LOG_MAX];
    int fail_calls; /* the next N calls fail with fail_rc */
    int fail_rc;
    size_t short_by;  /* the next call returns this many bytes too few */
    int uncacheable_calls; /* the next N calls say: serve, do not cache */
    bool gate_closed; /* calls at offset >= gate_from wait while closed */
    uint64_t gate_from;
    unsigned at_gate;   /* calls waiting at the gate */
    size_t outstanding; /* bytes asked by calls in progress */
    size_t max_outstanding;
    unsigned bad_requests; /* asked past the object's end */
    unsigned frees;
} fake_state;

static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fake_changed = PTHREAD_COND_INITIALIZER;
static fake_state fake;

typedef struct source {
    uint64_t size;
    uint64_t seed;
} source;

/* Deterministic content without a short period, distinct per seed. */
static unsigned char content_byte(uint64_t seed, uint64_t offset)
{
    uint64_t h = (offset + seed * 0x100000001b3ULL) * 0x9E3779B97F4A7C15ULL;
    return (unsigned char)((h ^ (h >> 32)) >> 24);
}

static void fill_content(unsigned char *buf, uint64_t seed, uint64_t offset,
                         size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = content_byte(seed, offset + i);
}

static int fake_fetch(void *p, uint64_t offset, size_t len, void *buf,
                      size_t *out_len)
{
    source *s = p;
    pthread_mutex_lock(&fake_lock);
    if (fake.calls < LOG_MAX)
        fake.log[fake.calls] = (fake_call){offset, len};
    fake.calls++;
    fake.outstanding += len;
    if (fake.outstanding > fake.max_outstanding)
        fake.max_outstanding = fake.outstanding;
    if (offset + len > s->size)
        fake.bad_requests++;
    int rc = 0;
    if (fake.fail_calls > 0) {
        fake.fail_calls--;
        rc = fake.fail_rc;
    }
    size_t short_by = fake.short_by;
    fake.short_by = 0;
    if (rc == 0 && fake.uncacheable_calls > 0) {
        fake.uncacheable_calls--;
        rc = READER_FETCH_UNCACHEABLE;
    }
    pthread_cond_broadcast(&fake_changed);
    if (fake.gate_closed && offset >= fake.gate_from) {
        fake.at_gate++;
        pthread_cond_broadcast(&fake_changed);
        while (fake.gate_closed)
            pthread_cond_wait(&fake_changed, &fake_lock);
        fake.at_gate--;
    }
    pthread_mutex_unlock(&fake_lock);

    if (rc >= 0 && offset + len <= s->size)
        fill_content(buf, s->seed, offset, len);
    pthread_mutex_lock(&fake_lock);
    fake.outstanding -= len;
    pthread_mutex_unlock(&fake_lock);
    if (rc < 0)
        return rc;
    *out_len = len - short_by;
    return rc;
}

static void free_source(void *p)
{
    pthread_mutex_lock(&fake_lock);
    fake.frees++;
    pthread_mutex_unlock(&fake_lock);
    free(p);
}

static fake_state fake_snapshot(void)
{
    pthread_mutex_lock(&fake_lock);
    fake_state copy = fake;
    pthread_mutex_unlock(&fake_lock);
    return copy;
}

static void gate_close(uint64_t from)
{
    pthread_mutex_lock(&fake_lock);
    fake.gate_closed = true;
    fake.gate_from = from;
    pthread_mutex_unlock(&fake_lock);
}

static void gate_open(void)
{
    pthread_mutex_lock(&fake_lock);
    fake.gate_closed = false;
    pthread_cond_broadcast(&fake_changed);
    pthread_mutex_unlock(&fake_lock);
}

static void wait_at_gate(unsigned n)
{
    pthread_mutex_lock(&fake_lock);
    while (fake.at_gate < n)
        pthread_cond_wait(&fake_changed, &fake_lock);
    pthread_mutex_unlock(&fake_lock);
}

/* ---- fixture ---- */

typedef testutil_dir_fixture fixture;

static int setup(void **state)
{
    memset(&fake, 0, sizeof(fake));
    return testutil_dir_setup(state, "test_reader");
}

static int teardown(void **state)
{
    return testutil_dir_teardown(state);
}

static blockcache *open_cache(const fixture *f, uint64_t max_bytes,
                              uint32_t block_size)
{
    return testutil_open_blockcache(f->cache, max_bytes, block_size);
}

/* run over a block cache in the fixture, then over none. */
static void with_and_without_cache(void **state, uint64_t max_bytes,
                                   uint32_t block_size,
                                   void (*run)(blockcache *bc))
{
    blockcache *bc = open_cache(*state, max_bytes, block_size);
    run(bc);
    blockcache_close(bc);
    run(NULL);
}

static reader *new_reader(const reader_config *cfg)
{
    int err = 1;
    reader *r = reader_new(cfg, &err);
    assert_non_null(r);
    assert_int_equal(err, 0);
    return r;
}

/* The cache identity of a test object: its checksum and size decide it. */
static blockcache_id object_id(const char *checksum, uint64_t size)
{
    blockcache_object o = {"http://lakefs.test", "mem://ns", "mem://ns/x",
                           checksum, size};
    blockcache_id id;
    assert_int_equal(blockcache_make_id(&o, &id), 0);
    return id;
}

static reader_file *open_object(reader *r, const char *checksum, uint64_t size,
                                uint64_t seed)
{
    source *s = malloc(sizeof(*s));
    assert_non_null(s);
    *s = (source){size, seed};
    blockcache_id id = object_id(checksum, size);
    reader_file *f = reader_open(r, &id, fake_fetch, s, free_source);
    assert_non_null(f);
    return f;
}

static reader_stats stats_of(reader *r)
{
    reader_stats st;
    reader_get_stats(r, &st);
    return st;
}

/* Index of the first byte that differs from the object's content, or len. */
static size_t first_mismatch(const unsigned char *buf, uint64_t seed,
                             uint64_t offset, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != content_byte(seed, offset + i))
            return i;
    return len;
}

/* Reads [offset, offset + len) and checks the count and every byte. */
static void check_read(reader_file *f, uint64_t size, uint64_t seed,
                       uint64_t offset, size_t len)
{
    size_t expect = 0;
    if (offset < size)
        expect = size - offset < len ? (size_t)(size - offset) : len;
    unsigned char *buf = malloc(len + 1);
    assert_non_null(buf);
    ssize_t n = reader_read(f, buf, len, offset);
    assert_int_equal(n, expect);
    assert_int_equal(first_mismatch(buf, seed, offset, expect), expect);
    free(buf);
}

/* Reads the whole object front to back in chunks of `chunk`. */
static void read_sequentially(reader_file *f, uint64_t size, uint64_t seed,
                              size_t chunk)
{
    unsigned char *buf = malloc(chunk);
    assert_non_null(buf);
    for (uint64_t off = 0; off < size; off += chunk) {
        size_t want = size - off < chunk ? (size_t)(size - off) : chunk;
        ssize_t n = reader_read(f, buf, chunk, off);
        assert_int_equal(n, want);
        assert_int_equal(first_mismatch(buf, seed, off, want), want);
    }
    free(buf);
}

/* Every fetch so far was inside the object, at most max, and either
 * block-aligned or a small random read's own bytes within one block (at
 * most block_size / 8, the default direct_read_max). */
static void check_fetch_log(uint32_t block_size, size_t max_len)
{
    fake_state s = fake_snapshot();
    assert_int_equal(s.bad_requests, 0);
    for (unsigned i = 0; i < s.calls && i < LOG_MAX; i++) {
        const fake_call *c = &s.log[i];
        assert_true(c->len > 0 && c->len <= max_len);
        bool aligned = c->offset % block_size == 0;
        bool piece = c->len <= block_size / 8 &&
                     c->offset / block_size ==
                         (c->offset + c->len - 1) / block_size;
        assert_true(aligned || piece);
    }
}

/* ---- reader threads ---- */

typedef struct read_job {
    pthread_t thread;
    reader_file *f;
    uint64_t offset;
    size_t len;
    unsigned char buf[2 * BS];
    ssize_t result;
} read_job;

static void *read_job_main(void *p)
{
    read_job *j = p;
    j->result = reader_read(j->f, j->buf, j->len, j->offset);
    return NULL;
}

static void start_read(read_job *j, reader_file *f, uint64_t offset,
                       size_t len)
{
    j->f = f;
    j->offset = offset;
    j->len = len;
    j->result = 0;
    assert_int_equal(pthread_create(&j->thread, NULL, read_job_main, j), 0);
}

/* Spins (yielding) until a reader counter moves: the reader signals no
 * condition variable we could wait on. Gives up when the fake saw more
 * than max_calls fetches, so a broken dedupe fails instead of hanging. */
static void wait_for_counter(reader *r, size_t field, unsigned max_calls)
{
    for (;;) {
        reader_stats st = stats_of(r);
        uint64_t value;
        memcpy(&value, (const char *)&st + field, sizeof(value));
        if (value > 0 || fake_snapshot().calls > max_calls)
            return;
        sched_yield();
    }
}

/* ---- tests ---- */

static void test_bad_arguments(void **state)
{
    fixture *fx = *state;
    int err = 0;
    reader_config cfg = {.block_size = 0};
    assert_null(reader_new(&cfg, &err));
    assert_int_equal(err, -EINVAL);
    assert_null(reader_new(NULL, &err));
    assert_int_equal(err, -EINVAL);

    blockcache *bc = open_cache(fx, MIB, BS);
    cfg = (reader_config){.cache = bc, .block_size = 2 * BS};
    assert_null(reader_new(&cfg, &err));
    assert_int_equal(err, -EINVAL);
    cfg = (reader_config){.block_size = BS, .max_inflight_bytes = BS - 1};
    assert_null(reader_new(&cfg, &err));
    assert_int_equal(err, -EINVAL);

    cfg = (reader_config){.cache = bc, .block_size = BS, .workers = 1};
    reader *r = new_reader(&cfg);
    source *s = malloc(sizeof(*s));
    assert_non_null(s);
    /* A failed open still owns the source. */
    blockcache_id id = object_id("sum", 10);
    assert_null(reader_open(r, &id, NULL, s, free_source));
    assert_int_equal(fake.frees, 1);
    reader_free(r);
    blockcache_close(bc);
}

static void exact_reads(reader *r, const char *checksum)
{
    const uint64_t size = 10 * BS + 123;
    reader_file *f = open_object(r, checksum, size, 7);
    static const struct {
        uint64_t offset;
        size_t len;
    } cases[] = {
        {0, 1},
        {BS - 1, 2},
        {BS - 1, BS + 2},
        {100, 3 * BS},
        {5 * BS, BS},
        {size - 1, 10},
        {size - 123, 200},
        {size - 200, 500},
        {2 * BS + 17, 5 * BS},
        {0, size},
        {0, 2 * size},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_read(f, size, 7, cases[i].offset, cases[i].len);
    uint64_t x = 12345;
    for (int i = 0; i < 300; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        uint64_t offset = (x >> 33) % (size + 50);
        size_t len = (size_t)((x >> 13) % (3 * BS)) + 1;
        check_read(f, size, 7, offset, len);
    }
    unsigned char buf[16];
    assert_int_equal(reader_read(f, buf, sizeof(buf), size), 0);
    assert_int_equal(reader_read(f, buf, sizeof(buf), size + 5), 0);
    assert_int_equal(reader_read(f, buf, sizeof(buf), UINT64_MAX), 0);
    assert_int_equal(reader_read(f, buf, 0, 0), 0);
    reader_close(f);
}

static void test_exact_reads_with_and_without_cache(void **state)
{
    fixture *fx = *state;
    blockcache *bc = open_cache(fx, 64 * MIB, BS);
    reader_config cfg = {.cache = bc,
                         .block_size = BS,
                         .workers = 2,
                         .max_fetch_bytes = 4 * BS};
    reader *r = new_reader(&cfg);
    exact_reads(r, "cached");
    reader_free(r);
    blockcache_close(bc);

    cfg.cache = NULL;
    r = new_reader(&cfg);
    exact_reads(r, "uncached");
    reader_free(r);
    check_fetch_log(BS, 4 * BS);
    assert_int_equal(fake.frees, 2);
}

static void test_small_object_is_one_fetch(void **state)
{
    fixture *fx = *state;
    blockcache *bc = open_cache(fx, MIB, BS);
    for (int cached = 1; cached >= 0; cached--) {
        memset(&fake, 0, sizeof(fake));
        reader_config cfg = {.cache = cached ? bc : NULL, .block_size = BS};
        reader *r = new_reader(&cfg);
        reader_file *f = open_object(r, "small", 1000, 3);
        check_read(f, 1000, 3, 500, 100);
        check_read(f, 1000, 3, 0, 4096);
        check_read(f, 1000, 3, 999, 1);
        reader_close(f);
        reader_free(r);
        fake_state s = fake_snapshot();
        /* Without a cache the 2nd and 3rd reads may fetch again; the first
         * is still exactly the whole object. */
        if (cached)
            assert_int_equal(s.calls, 1);
        assert_int_equal(s.log[0].offset, 0);
        assert_int_equal(s.log[0].len, 1000);
        assert_int_equal(s.frees, 1);
    }
    blockcache_close(bc);
}

static void test_reread_and_remount_fetch_nothing(void **state)
{
    fixture *fx = *state;
    const uint64_t size = 20 * BS + 5;
    blockcache *bc = open_cache(fx, 64 * MIB, BS);
    reader_config cfg = {.cache = bc,
                         .block_size = BS,
                         .workers = 3,
                         .max_fetch_bytes = 4 * BS};
    reader *r = new_reader(&cfg);
    reader_file *f = open_object(r, "reread", size, 11);
    read_sequentially(f, size, 11, 3000);
    reader_close(f);
    reader_stats first = stats_of(r);
    assert_true(first.fetches > 0);
    assert_int_equal(first.bytes_fetched, size); /* no byte twice */

    f = open_object(r, "reread", size, 11);
    read_sequentially(f, size, 11, 3000);
    check_read(f, size, 11, 7, 3 * BS);
    reader_close(f);
    assert_int_equal(stats_of(r).fetches, first.fetches);
    reader_free(r);
    blockcache_close(bc);

    /* A later mount of the same cache directory. */
    bc = open_cache(fx, 64 * MIB, BS);
    cfg.cache = bc;
    r = new_reader(&cfg);
    f = open_object(r, "reread", size, 11);
    read_sequentially(f, size, 11, 3000);
    reader_close(f);
    reader_stats again = stats_of(r);
    assert_int_equal(again.fetches, 0);
    assert_int_equal(again.bytes_from_cache, size);
    assert_int_equal(again.bytes_served, size);
    reader_free(r);
    blockcache_close(bc);
    assert_int_equal(fake.frees, 3);
}

/* A warm cache serves reads smaller than a block with block-file reads of
 * just those bytes: each file is opened (and verified whole) once per
 * cache, later reads of N bytes read N bytes. Read-ahead of cached blocks
 * only looks at the index. */
static void test_warm_reads_read_only_the_bytes_asked_for(void **state)
{
    fixture *fx = *state;
    const uint64_t size = 20 * BS + 5; /* 21 blocks */
    const uint64_t blocks = 21;
    blockcache *bc = open_cache(fx, 64 * MIB, BS);
    reader_config cfg = {.cache = bc, .block_size = BS, .workers = 2};
    reader *r = new_reader(&cfg);
    reader_file *f = open_object(r, "warm", size, 4);
    read_sequentially(f, size, 4, 1000);
    reader_close(f);
    reader_free(r);
    blockcache_close(bc);

    bc = open_cache(fx, 64 * MIB, BS); /* a later mount */
    cfg.cache = bc;
    r = new_reader(&cfg);
    f = open_object(r, "warm", size, 4);
    read_sequentially(f, size, 4, 1000);
    blockcache_stats first;
    blockcache_get_stats(bc, &first);
    assert_int_equal(first.file_opens, blocks);
    /* Verifying reads each file whole once; the rest of each block's
     * reads come on top, never a whole block per read (that was 4x). */
    assert_true(first.file_bytes_read >= size + 88 * blocks);
    assert_true(first.file_bytes_read <= 2 * size + 88 * blocks);

    read_sequentially(f, size, 4, 1000);
    check_read(f, size, 4, 4090, 20);
    reader_close(f);
    blockcache_stats again;
    blockcache_get_stats(bc, &again);
    assert_int_equal(again.file_opens, blocks);
    assert_int_equal(again.file_bytes_read - first.file_bytes_read,
                     size + 20);
    assert_int_equal(stats_of(r).fetches, 0);
    assert_int_equal(stats_of(r).bytes_from_cache, 2 * size + 20);
    reader_free(r);
    blockcache_close(bc);
}

/*
 * 64 MiB, 1 MiB blocks, 8 MiB GETs, 16 MiB window, read front to back.
 * The window doubles per read (2, 4, 8, 16 blocks) while read-ahead runs
 * ahead in batches: with 128 KiB reads [0,3) (the first read's own fetch,
 * reaching its window), [3,5), [5,9), [9,17), then whole 8-block GETs
 * [17,25) ... [49,57) and the tail [57,64): 10 GETs, and with 1 MiB reads
 * the same count ([0,3) [3,6) [6,11) [11,19) [19,27) [27,35) [35,43)
 * [43,51) [51,59) [59,64)). No block is ever fetched twice.
 */
#define SEQ_SIZE (64 * MIB)
#define SEQ_FETCHES 10

static void sequential_read(blockcache *bc, size_t chunk)
{
    memset(&fake, 0, sizeof(fake));
    reader_config cfg = {.cache = bc,
                         .block_size = MIB,
                         .max_fetch_bytes = 8 * MIB,
                         .max_readahead_bytes = 16 * MIB,
                         .max_inflight_bytes = 64 * MIB};
    reader *r = new_reader(&cfg);
    reader_file *f = open_object(r, bc ? "seq-cached" : "seq", SEQ_SIZE, 5);
    read_sequentially(f, SEQ_SIZE, 5, chunk);
    reader_close(f);
    reader_stats st = stats_of(r);
    reader_free(r);
    fake_state s = fake_snapshot();
    assert_int_equal(s.calls, SEQ_FETCHES);
    assert_int_equal(st.fetches, SEQ_FETCHES);
    assert_int_equal(st.bytes_fetched, SEQ_SIZE);
    assert_int_equal(st.bytes_served, SEQ_SIZE);
    assert_int_equal(st.fetch_errors, 0);
    assert_int_equal(s.frees, 1);
    check_fetch_log(MIB, 8 * MIB);
}

static void test_sequential_read_fetches_few_large_ranges(void **state)
{
    fixture *fx = *state;
    blockcache *bc = open_cache(fx, 256 * MIB, MIB);
    sequential_read(bc, 128 * KIB);
    blockcache_close(bc);
    testutil_remove_tree(fx->cache);
    bc = open_cache(fx, 256 * MIB, MIB);
    sequential_read(bc, MIB);
    blockcache_close(bc);
}

static void test_sequential_read_without_cache(void **state)
{
    (void)state;
    sequential_read(NULL, 128 * KIB);
    sequential_read(NULL, MIB);
}

/* A cache that takes nothing (its directory replaced by a file: root
 * ignores permissions, not ENOTDIR): every put fails, reads still work,
 * and read-ahead stays in memory until read, so no byte is fetched twice. */
static void test_failing_cache_serves_from_memory(void **state)
{
    fixture *fx = *state;
    const uint64_t size = 64 * BS + 77;
    blockcache *bc = open_cache(fx, 64 * MIB, BS);
    char layout[128]; /* the block cache's layout directory */
    snprintf(layout, sizeof(layout), "%s/v3", fx->cache);
    assert_int_equal(testutil_remove_tree(layout), 0);
    FILE *blocker = fopen(layout, "w");
    assert_non_null(blocker);
    fclose(blocker);

    reader_config cfg = {.cache = bc,
                         .block_size = BS,
                         .workers = 2,
                         .max_fetch_bytes = 4 * BS,
                         .max_readahead_bytes = 16 * BS};
    reader *r = new_reader(&cfg);
    reader_file *f = open_object(r, "nowhere", size, 6);
    read_sequentially(f, size, 6, 1000);
    reader_close(f);
    reader_stats st = stats_of(r);
    reader_free(r);
    blockcache_stats cs;
    blockcache_get_stats(bc, &cs);
    blockcache_close(bc);
    assert_true(cs.write_errors > 0);
    assert_int_equal(cs.bytes_stored, 0);
    assert_int_equal(st.bytes_fetched, size);
    assert_int_equal(st.bytes_from_cache, 0);
    assert_int_equal(fake.frees, 1);
}

static void concurrent_same_block(bool two_handles)
{
    /* The shared block is the last one: the second read counts as
     * sequential, and nothing is left to read ahead. */
    const uint64_t size = 2 * BS;
    reader_config cfg = {.block_size = BS, .workers = 1};
    reader *r = new_reader(&cfg);
    reader_file *f1 = open_object(r, "shared", size, 9);
    reader_file *f2 = two_handles ? open_object(r, "shared", size, 9) : f1;
    gate_close(0);
    read_job a;
    read_job b;
    start_read(&a, f1, BS, BS);
    start_read(&b, f2, BS, BS);
    /* One holds the only fetch at the gate; wait until the other waits on
     * it (a second fetch call would end the wait and fail below). */
    wait_for_counter(r, offsetof(reader_stats, fetch_waits), 1);
    gate_open();
    pthread_join(a.thread, NULL);
    pthread_join(b.thread, NULL);
    assert_int_equal(a.result, BS);
    assert_int_equal(b.result, BS);
    assert_int_equal(first_mismatch(a.buf, 9, BS, BS), BS);
    assert_int_equal(first_mismatch(b.buf, 9, BS, BS), BS);
    reader_stats st = stats_of(r);
    assert_int_equal(st.fetches, 1);
    assert_int_equal(st.fetch_waits, 1);
    reader_close(f1);
    if (two_handles)
        reader_close(f2);
    reader_free(r);
}

static void test_concurrent_readers_share_one_fetch(void **state)
{
    (void)state;
    concurrent_same_block(false);
    assert_int_equal(fake.calls, 1);
    assert_int_equal(fake.frees, 1);
    memset(&fake, 0, sizeof(fake));
    concurrent_same_block(true);
    assert_int_equal(fake.calls, 1);
    assert_int_equal(fake.frees, 2);
}

static void test_fetch_error_reaches_waiters_then_retry_works(void **state)
{
    fixture *fx = *state;
    const uint64_t size = 4 * BS;
    blockcache *bc = open_cache(fx, MIB, BS);
    reader_config cfg = {.cache = bc, .block_size = BS, .workers = 1};
    reader *r = new_reader(&cfg);
    reader_file *f = open_object(r, "flaky", size, 4);
    fake.fail_calls = 1;
    fake.fail_rc = -EACCES;
    gate_close(0);
    read_job a;
    read_job b;
    start_read(&a, f, 2 * BS, BS);
    start_read(&b, f, 2 * BS + 100, 1000); /* > BS / 8: not fetched alone */
    wait_for_counter(r, offsetof(reader_stats, fetch_waits), 1);
    gate_open();
    pthread_join(a.thread, NULL);
    pthread_join(b.thread, NULL);
    assert_int_equal(a.result, -EACCES);
    assert_int_equal(b.result, -EACCES);
    reader_stats st = stats_of(r);
    assert_int_equal(st.fetches, 1);
    assert_int_equal(st.fetch_errors, 1);

    /* The failed fetch left the table: the next read fetches again. */
    check_read(f, size, 4, 2 * BS, BS);
    assert_int_equal(stats_of(r).fetches, 2);
    check_read(f, size, 4, 2 * BS + 10, 20);
    assert_int_equal(stats_of(r).fetches, 2);

    /* A plain error with nobody waiting, then a retry. */
    fake.fail_calls = 1;
    fake.fail_rc = -ETIMEDOUT;
    unsigned char buf[BS];
    assert_int_equal(reader_read(f, buf, BS, 0), -ETIMEDOUT);
    check_read(f, size, 4, 0, BS);
    reader_close(f);
    reader_free(r);
    blockcache_close(bc);
}

static void test_short_fetch_is_eio(void **state)
{
    fixture *fx = *state;
    const uint64_t size = 3 * BS + 10;
    blockcache *bc = open_cache(fx, MIB, BS);
    reader_config cfg = {.cache = bc, .block_size = BS};
    reader *r = new_reader(&cfg);
    reader_file *f = open_object(r, "shrunk", size, 2);
    fake.short_by = 1;
    unsigned char buf[2 * BS];
    assert_int_equal(reader_read(f, buf, sizeof(buf), 3 * BS), -EIO);
    assert_int_equal(stats_of(r).fetch_errors, 1);
    /* Nothing of the short answer was cached. */
    check_read(f, size, 2, 3 * BS, sizeof(buf));
    assert_int_equal(stats_of(r).fetches, 2);
    reader_close(f);
    reader_free(r);
    blockcache_close(bc);
}

/* Bytes the fetch could not vouch for (READER_FETCH_UNCACHEABLE) are
 * served but never stored: the next open fetches them again. */
static void test_uncacheable_fetch_is_served_not_stored(void **state)
{
    fixture *fx = *state;
    const uint64_t size = 3 * BS + 10;
    blockcache *bc = open_cache(fx, MIB, BS);
    reader_config cfg = {.cache = bc, .block_size = BS, .workers = 1};
    reader *r = new_reader(&cfg);
    fake.uncacheable_calls = 1;
    reader_file *f = open_object(r, "unverified", size, 4);
    check_read(f, size, 4, 0, (size_t)size);
    reader_close(f);
    reader_flush(r); /* blocks are stored behind the reads */
    blockcache_stats cs;
    blockcache_get_stats(bc, &cs);
    assert_int_equal(cs.bytes_stored, 0);
    assert_int_equal(stats_of(r).uncacheable_fetches, 1);
    assert_int_equal(stats_of(r).fetches, 1);

    f = open_object(r, "unverified", size, 4); /* fetched again, stored */
    check_read(f, size, 4, 0, (size_t)size);
    reader_close(f);
    assert_int_equal(stats_of(r).fetches, 2);
    reader_flush(r);
    blockcache_get_stats(bc, &cs);
    assert_int_equal(cs.bytes_stored, size);
    f = open_object(r, "unverified", size, 4); /* now from the cache */
    check_read(f, size, 4, 0, (size_t)size);
    reader_close(f);
    assert_int_equal(stats_of(r).fetches, 2);
    reader_free(r);
    blockcache_close(bc);
}

typedef struct seq_job {
    pthread_t thread;
    reader_file *f;
    uint64_t size;
    uint64_t seed;
    size_t bad; /* reads with a wrong count or wrong bytes */
} seq_job;

static void *seq_job_main(void *p)
{
    seq_job *j = p;
    unsigned char buf[3000];
    for (uint64_t off = 0; off < j->size; off += sizeof(buf)) {
        size_t want = j->size - off < sizeof(buf) ? (size_t)(j->size - off)
                                                  : sizeof(buf);
        ssize_t n = reader_read(j->f, buf, sizeof(buf), off);
        if (n != (ssize_t)want ||
            first_mismatch(buf, j->seed, off, want) != want)
            j->bad++;
    }
    return NULL;
}

static void budget_run(blockcache *bc)
{
    enum { FILES = 4 };
    const size_t budget = 8 * BS;
    reader_config cfg = {.cache = bc,
                         .block_size = BS,
                         .workers = 4,
                         .max_fetch_bytes = 4 * BS,
                         .max_readahead_bytes = 16 * BS,
                         .max_inflight_bytes = budget};
    memset(&fake, 0, sizeof(fake));
    reader *r = new_reader(&cfg);
    seq_job jobs[FILES];
    for (unsigned i = 0; i < FILES; i++) {
        char name[16];
        snprintf(name, sizeof(name), "budget-%u", i);
        jobs[i] = (seq_job){.size = 64 * BS + i, .seed = 20 + i};
        jobs[i].f = open_object(r, name, jobs[i].size, jobs[i].seed);
        assert_int_equal(
            pthread_create(&jobs[i].thread, NULL, seq_job_main, &jobs[i]), 0);
    }
    for (unsigned i = 0; i < FILES; i++) {
        pthread_join(jobs[i].thread, NULL);
        assert_int_equal(jobs[i].bad, 0);
        reader_close(jobs[i].f);
    }
    reader_free(r);
    fake_state s = fake_snapshot();
    assert_true(s.max_outstanding <= budget);
    assert_int_equal(s.frees, FILES);
    check_fetch_log(BS, 4 * BS);
}

static void test_budget_bounds_fetched_bytes(void **state)
{
    with_and_without_cache(state, 64 * MIB, BS, budget_run);
}

static void test_reader_waits_for_budget(void **state)
{
    fixture *fx = *state;
    blockcache *bc = open_cache(fx, MIB, BS);
    reader_config cfg = {
        .cache = bc, .block_size = BS, .workers = 1, .max_inflight_bytes = BS};
    reader *r = new_reader(&cfg);
    reader_file *x = open_object(r, "x", BS, 1);
    reader_file *y = open_object(r, "y", BS, 2);
    gate_close(0);
    read_job a;
    read_job b;
    start_read(&a, x, 0, BS);
    wait_at_gate(1);
    start_read(&b, y, 0, BS);
    /* The only block of budget is at the gate: y must wait, not fetch. */
    wait_for_counter(r, offsetof(reader_stats, budget_waits), 1);
    assert_int_equal(fake_snapshot().calls, 1);
    gate_open();
    pthread_join(a.thread, NULL);
    pthread_join(b.thread, NULL);
    assert_int_equal(a.result, BS);
    assert_int_equal(b.result, BS);
    assert_int_equal(first_mismatch(a.buf, 1, 0, BS), BS);
    assert_int_equal(first_mismatch(b.buf, 2, 0, BS), BS);
    assert_int_equal(fake.calls, 2);
    assert_int_equal(fake.max_outstanding, BS);
    reader_close(x);
    reader_close(y);
    reader_free(r);
    blockcache_close(bc);
}

static void close_with_readahead_in_flight(blockcache *bc)
{
    const uint64_t size = 64 * BS;
    const uint64_t held = 16 * BS; /* read-ahead from here waits at a gate */
    memset(&fake, 0, sizeof(fake));
    reader_config cfg = {.cache = bc,
                         .block_size = BS,
                         .workers = 2,
                         .max_fetch_bytes = 4 * BS,
                         .max_readahead_bytes = 32 * BS};
    reader *r = new_reader(&cfg);
    reader_file *f = open_object(r, "closing", size, 8);
    gate_close(held);
    /* Never reads past `held`, so never waits on a held fetch. */
    read_sequentially(f, held, 8, BS);
    wait_at_gate(1);
    reader_close(f);
    assert_int_equal(fake_snapshot().frees, 0); /* a worker still uses it */
    gate_open();
    reader_free(r);
    assert_int_equal(fake.frees, 1);
    assert_int_equal(fake.outstanding, 0);
}

static void test_close_with_readahead_in_flight(void **state)
{
    with_and_without_cache(state, 64 * MIB, BS, close_with_readahead_in_flight);
}

/* Random 4 KiB reads of a large object fetch their own 4 KiB, uncached,
 * straight into the caller's buffer; the second random miss in a block
 * fetches that block whole (and stores it), as do all random misses once a
 * descriptor's random reads number 1/16 of the object's blocks, so dense
 * random reads end up cached while sparse ones cost only their bytes. */
static void random_reads(blockcache *bc)
{
    memset(&fake, 0, sizeof(fake));
    const uint64_t size = 4096 * MIB; /* the fake stores nothing */
    reader_config cfg = {.cache = bc, .block_size = MIB};
    reader *r = new_reader(&cfg);
    reader_file *f = open_object(r, "random", size, 12);
    /* 16 reads in 16 distinct blocks, far apart: 16 GETs of 4 KiB. */
    for (uint64_t i = 0; i < 16; i++)
        check_read(f, size, 12, (i * 37 % 64) * MIB + 8 * KIB * (i + 1),
                   4 * KIB);
    reader_flush(r);
    reader_stats st = stats_of(r);
    fake_state s = fake_snapshot();
    assert_int_equal(s.calls, 16);
    for (unsigned i = 0; i < 16; i++) {
        assert_int_equal(s.log[i].len, 4 * KIB);
        assert_int_equal(s.log[i].offset,
                         (i * 37 % 64) * MIB + 8 * KIB * (i + 1));
    }
    assert_int_equal(st.bytes_fetched, 16 * 4 * KIB);
    assert_int_equal(st.direct_fetches, 16);
    assert_int_equal(st.readahead_blocks, 0);
    if (bc != NULL) {
        blockcache_stats cs;
        blockcache_get_stats(bc, &cs);
        assert_int_equal(cs.bytes_stored, 0); /* pieces are never cached */
    }

    /* Another random read in block 0 (touched by the first read): the
     * whole block, once; a third read there fetches nothing. */
    check_read(f, size, 12, 300 * KIB, 4 * KIB);
    check_read(f, size, 12, 62 * MIB, 4 * KIB); /* block 62: untouched */
    check_read(f, size, 12, 700 * KIB, 4 * KIB);
    reader_flush(r);
    s = fake_snapshot();
    assert_int_equal(s.calls, 18);
    assert_int_equal(s.log[16].offset, 0);
    assert_int_equal(s.log[16].len, MIB);
    assert_int_equal(s.log[17].offset, 62 * MIB);
    assert_int_equal(s.log[17].len, 4 * KIB);
    st = stats_of(r);
    assert_int_equal(st.bytes_fetched, 17 * 4 * KIB + MIB);
    assert_int_equal(st.direct_fetches, 17);
    if (bc != NULL) {
        blockcache_stats cs;
        blockcache_get_stats(bc, &cs);
        assert_int_equal(cs.bytes_stored, MIB);
    }
    /* A read of more than block_size / 8 is no small random read. */
    check_read(f, size, 12, 20 * MIB + 4 * KIB, 256 * KIB);
    s = fake_snapshot();
    assert_int_equal(s.calls, 19);
    assert_int_equal(s.log[18].offset, 20 * MIB);
    assert_int_equal(s.log[18].len, MIB);
    reader_close(f);

    /* 64 blocks: after 4 random reads (1/16) every random miss is a
     * whole block. */
    f = open_object(r, "dense", 64 * MIB, 14);
    for (uint64_t i = 0; i < 6; i++)
        check_read(f, 64 * MIB, 14, (i * 11 + 1) * MIB + 4 * KIB, 4 * KIB);
    s = fake_snapshot();
    assert_int_equal(s.calls, 25);
    for (unsigned i = 19; i < 23; i++)
        assert_int_equal(s.log[i].len, 4 * KIB);
    assert_int_equal(s.log[23].offset, 45 * MIB);
    assert_int_equal(s.log[23].len, MIB);
    assert_int_equal(s.log[24].offset, 56 * MIB);
    assert_int_equal(s.log[24].len, MIB);
    reader_close(f);
    reader_free(r);
    assert_int_equal(fake.frees, 2);
}

static void test_random_small_reads_fetch_their_bytes(void **state)
{
    /* A cache just too small for the 64 MiB object to be filled. */
    with_and_without_cache(state, 255 * MIB, MIB, random_reads);
}

/* Once an object is read densely at random (its second random read of 16
 * blocks, here by a second descriptor: they count together), an object that fits in a quarter of the cache is
 * filled in the background: GETs of 4 MiB, every block stored, each fetched
 * once; the reads meanwhile are fetched alone or wait for the fill's GET.
 * Afterwards every read comes from the cache, with no GET. */
static void test_dense_random_reads_fill_the_object(void **state)
{
    fixture *fx = *state;
    memset(&fake, 0, sizeof(fake));
    const uint64_t size = 16 * MIB;
    blockcache *bc = open_cache(fx, 256 * MIB, MIB);
    reader_config cfg = {.cache = bc, .block_size = MIB};
    reader *r = new_reader(&cfg);
    reader_file *f = open_object(r, "fill", size, 21);
    reader_file *g = open_object(r, "fill", size, 21);
    check_read(f, size, 21, 5 * MIB + 4 * KIB, 4 * KIB); /* direct */
    check_read(g, size, 21, 9 * MIB + 8 * KIB, 4 * KIB); /* starts it */
    reader_flush(r);
    reader_stats st = stats_of(r);
    assert_int_equal(st.fill_blocks, 16);
    assert_int_equal(st.readahead_blocks, 0);
    /* The second read was fetched alone (fill not started) or served by
     * the fill's GET: 4 GETs of 4 MiB and one or two of 4 KiB. */
    assert_in_range(st.direct_fetches, 1, 2);
    assert_int_equal(st.fetches, 4 + st.direct_fetches);
    assert_int_equal(st.bytes_fetched, size + st.direct_fetches * 4 * KIB);
    fake_state s = fake_snapshot();
    unsigned big = 0;
    for (unsigned i = 0; i < s.calls; i++)
        if (s.log[i].len == 4 * MIB) {
            assert_int_equal(s.log[i].offset % (4 * MIB), 0);
            big++;
        }
    assert_int_equal(big, 4);
    blockcache_stats cs;
    blockcache_get_stats(bc, &cs);
    assert_int_equal(cs.bytes_stored, size);
    for (uint64_t i = 0; i < 32; i++)
        check_read(f, size, 21, (i * 7 % 16) * MIB + i * 4 * KIB, 4 * KIB);
    assert_int_equal(stats_of(r).fetches, st.fetches);
    reader_close(g);
    reader_close(f);
    reader_free(r);
    blockcache_close(bc);
}

/* A cold read is answered from the fetched bytes in memory: no block file
 * is opened to serve it, and every block is in the cache once the stores
 * behind the reads are done. */
static void test_cold_read_served_from_memory_stored_behind(void **state)
{
    fixture *fx = *state;
    const uint64_t size = 24 * MIB + 5;
    blockcache *bc = open_cache(fx, 256 * MIB, MIB);
    /* Room for the whole object: no block leaves memory for the budget. */
    reader_config cfg = {.cache = bc,
                         .block_size = MIB,
                         .max_inflight_bytes = 64 * MIB};
    reader *r = new_reader(&cfg);
    reader_file *f = open_object(r, "behind", size, 13);
    read_sequentially(f, size, 13, 128 * KIB);
    reader_close(f);
    reader_flush(r);
    blockcache_stats cs;
    blockcache_get_stats(bc, &cs);
    assert_int_equal(cs.file_opens, 0);
    assert_int_equal(cs.bytes_stored, size);
    reader_stats st = stats_of(r);
    assert_int_equal(st.bytes_fetched, size);
    assert_int_equal(st.bytes_from_cache, 0);

    f = open_object(r, "behind", size, 13); /* now from the cache */
    read_sequentially(f, size, 13, MIB);
    reader_close(f);
    assert_int_equal(stats_of(r).bytes_fetched, size);
    assert_int_equal(stats_of(r).bytes_from_cache, size);
    reader_free(r);
    blockcache_close(bc);
}

/* A fetch buffer freed while a file is open is kept for the next GET of its
 * size, within the budget: random whole-block reads of one file map one
 * buffer, whatever their number; with the budget at two blocks, a kept
 * buffer of another size is given back for the one needed; after the last
 * close nothing is kept, so the next read maps again. */
static void test_fetch_buffers_are_reused(void **state)
{
    (void)state;
    const uint64_t size = 64 * MIB;
    reader_config cfg = {.block_size = MIB, .max_inflight_bytes = 2 * MIB};
    reader *r = new_reader(&cfg);
    reader_file *f = open_object(r, "reuse", size, 21);
    /* Far apart: random, not sequential (no read-ahead). */
    const uint64_t blocks[] = {40, 10, 60, 25, 50, 1};
    for (size_t i = 0; i < sizeof(blocks) / sizeof(*blocks); i++)
        check_read(f, size, 21, blocks[i] * MIB, MIB);
    reader_stats st = stats_of(r);
    assert_int_equal(st.fetches, 6);
    assert_int_equal(st.buffers_mapped, 1);
    /* Two blocks in one read: a buffer of two blocks, the budget's whole;
     * the kept one-block buffer is unmapped to make room. */
    check_read(f, size, 21, 30 * MIB + MIB / 2, MIB);
    st = stats_of(r);
    assert_int_equal(st.fetches, 7);
    assert_int_equal(st.buffers_mapped, 2);
    check_read(f, size, 21, 20 * MIB + MIB / 2, MIB); /* that one again */
    assert_int_equal(stats_of(r).buffers_mapped, 2);
    reader_close(f);
    f = open_object(r, "reuse", size, 21);
    check_read(f, size, 21, 45 * MIB, MIB);
    st = stats_of(r);
    assert_int_equal(st.fetches, 9);
    assert_int_equal(st.buffers_mapped, 3);
    reader_close(f);
    reader_free(r);
}

/* Blocks held in memory after their fetch (stored behind, not yet read to
 * their end) are not pinned from the files their store wrote: reader_pin
 * leaves them to reader_read, which serves them from memory (and lets the
 * memory go once read); no block file is opened. */
static void test_pin_leaves_fetched_blocks_to_memory(void **state)
{
    fixture *fx = *state;
    const uint64_t size = 2 * BS;
    blockcache *bc = open_cache(fx, 64 * MIB, BS);
    reader_config cfg = {.cache = bc, .block_size = BS, .workers = 1};
    reader *r = new_reader(&cfg);
    reader_file *f = open_object(r, "in-memory", size, 23);
    check_read(f, size, 23, 0, 100); /* one GET of both blocks */
    reader_flush(r);                 /* both stored, still held */
    blockcache_id id = object_id("in-memory", size);
    assert_true(blockcache_contains(bc, &id, 0));
    assert_true(blockcache_contains(bc, &id, 1));

    reader_piece pieces[4];
    size_t n = 99;
    assert_int_equal(reader_pin(f, 100, size - 100, pieces, 4, &n), -ENOENT);
    assert_int_equal(n, 0);
    check_read(f, size, 23, 100, size - 100);
    blockcache_stats cs;
    blockcache_get_stats(bc, &cs);
    assert_int_equal(cs.file_opens, 0);
    assert_int_equal(cs.bytes_pinned, 0);
    reader_stats st = stats_of(r);
    assert_int_equal(st.fetches, 1);
    assert_int_equal(st.bytes_from_cache, 0);

    /* Read to its end, the entry let its memory go: now the cache's. */
    assert_int_equal(reader_pin(f, 0, size, pieces, 4, &n), 0);
    assert_int_equal(n, 2);
    reader_unpin(r, pieces, n);
    reader_close(f);
    reader_free(r);
    blockcache_close(bc);
}

/* reader_holds answers for blocks in memory (fetched, not yet stored or
 * read to their end) as for cached ones, so a prefetch does not read a
 * file again that is only waiting for its store. */
static void test_holds_sees_blocks_in_memory(void **state)
{
    (void)state;
    const uint64_t size = 2 * BS;
    reader_config cfg = {.block_size = BS, .workers = 1}; /* no cache */
    reader *r = new_reader(&cfg);
    blockcache_id id = object_id("held", size);
    blockcache_id other = object_id("other", size);
    assert_false(reader_holds(r, &id, 0));
    reader_file *f = open_object(r, "held", size, 25);
    check_read(f, size, 25, 0, 100); /* one GET of both blocks, held */
    assert_true(reader_holds(r, &id, 0));
    assert_true(reader_holds(r, &id, 1));
    assert_false(reader_holds(r, &id, 2));
    assert_false(reader_holds(r, &other, 0));
    check_read(f, size, 25, 100, size - 100); /* read to its end: let go */
    assert_false(reader_holds(r, &id, 0));
    assert_int_equal(stats_of(r).fetches, 1);
    reader_close(f);
    reader_free(r);
}

/* reader_pin hands out cached ranges as descriptor pieces (one per block,
 * in order, exactly the object's bytes) and counts them as served; a range
 * the cache cannot answer whole pins nothing and counts no hit. */
static void test_pin_hands_out_cached_ranges(void **state)
{
    fixture *fx = *state;
    const uint64_t size = 5 * BS + 100;
    blockcache *bc = open_cache(fx, 64 * MIB, BS);
    reader_config cfg = {.cache = bc, .block_size = BS, .workers = 2};
    reader *r = new_reader(&cfg);
    reader_file *f = open_object(r, "pinned", size, 21);
    read_sequentially(f, size, 21, 5000);
    /* Blocks are stored behind the reads, and held in memory (where
     * reader_pin leaves them to reader_read) until stored and read to
     * their entry's end: wait for the stores, then the cache has all six
     * and nothing of the file is held. */
    reader_flush(r);
    blockcache_id id = object_id("pinned", size);
    for (uint64_t b = 0; b < 6; b++)
        assert_true(blockcache_contains(bc, &id, b));
    reader_stats before = stats_of(r);

    reader_piece pieces[5];
    size_t n = 99;
    uint64_t offset = BS - 10;
    size_t len = 2 * BS + 20;
    assert_int_equal(reader_pin(f, offset, len, pieces, 5, &n), 0);
    assert_int_equal(n, 4);
    size_t sizes[4] = {10, BS, BS, 10};
    unsigned char buf[2 * BS];
    uint64_t at = offset;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(pieces[i].len, sizes[i]);
        assert_int_equal(pread(pieces[i].pin.fd, buf, pieces[i].len,
                               pieces[i].pin.pos),
                         (ssize_t)pieces[i].len);
        assert_int_equal(first_mismatch(buf, 21, at, pieces[i].len),
                         pieces[i].len);
        at += pieces[i].len;
    }
    reader_unpin(r, pieces, n);
    reader_stats after = stats_of(r);
    assert_int_equal(after.fetches, before.fetches);
    assert_int_equal(after.bytes_served - before.bytes_served, len);
    assert_int_equal(after.bytes_from_cache - before.bytes_from_cache, len);

    /* The tail is clipped at the end; at the end nothing is pinned. */
    assert_int_equal(reader_pin(f, size - 50, 4 * BS, pieces, 4, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(pieces[0].len, 50);
    reader_unpin(r, pieces, n);
    assert_int_equal(reader_pin(f, size, BS, pieces, 4, &n), 0);
    assert_int_equal(n, 0);

    blockcache_stats cache_before;
    blockcache_get_stats(bc, &cache_before);
    assert_int_equal(reader_pin(f, 0, 3 * BS, pieces, 2, &n), -E2BIG);
    reader_file *cold = open_object(r, "not-cached", size, 22);
    assert_int_equal(reader_pin(cold, BS, 10, pieces, 4, &n), -ENOENT);
    assert_int_equal(n, 0);
    blockcache_stats cache_after;
    blockcache_get_stats(bc, &cache_after);
    assert_int_equal(cache_after.hits, cache_before.hits);
    assert_int_equal(cache_after.misses, cache_before.misses);
    assert_int_equal(stats_of(r).fetches, after.fetches);
    reader_close(cold);
    reader_close(f);
    reader_free(r);

    /* No cache: nothing to pin. */
    reader_config none = {.block_size = BS, .workers = 1};
    r = new_reader(&none);
    f = open_object(r, "pinned", size, 21);
    assert_int_equal(reader_pin(f, 0, 10, pieces, 4, &n), -ENOENT);
    reader_close(f);
    reader_free(r);
    blockcache_close(bc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_exact_reads_with_and_without_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_object_is_one_fetch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reread_and_remount_fetch_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_warm_reads_read_only_the_bytes_asked_for, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_sequential_read_fetches_few_large_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequential_read_without_cache,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_cache_serves_from_memory,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_concurrent_readers_share_one_fetch, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_fetch_error_reaches_waiters_then_retry_works, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_short_fetch_is_eio, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_uncacheable_fetch_is_served_not_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_bounds_fetched_bytes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_waits_for_budget, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_close_with_readahead_in_flight,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_random_small_reads_fetch_their_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_dense_random_reads_fill_the_object, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_cold_read_served_from_memory_stored_behind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pin_hands_out_cached_ranges,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_buffers_are_reused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_pin_leaves_fetched_blocks_to_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_holds_sees_blocks_in_memory,
                                        setup, teardown),
    };
    return cmocka_run_group_tests_name("reader", tests, NULL, NULL);
}
