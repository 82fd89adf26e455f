/*
 * test_durable.c - unit tests of the store ETags src/durable.c derives
 * from staged bytes: an upload attempt's possible ETags include the
 * multipart form whenever the file may have gone up in parts, an eager
 * upload below the multipart threshold included (upload_eager_in_parts),
 * and durable_bytes_match recognises that form for the same bytes only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "durable.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIB (1LL << 20)
#define PART (16 * MIB)

/* An unlinked temporary file of size bytes of a pattern (seed). */
static int pattern_file(int64_t size, unsigned seed)
{
    char path[] = "/tmp/test_durable.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    unsigned char *buf = malloc(MIB);
    assert_non_null(buf);
    for (int64_t off = 0; off < size; off += MIB) {
        int64_t n = size - off < MIB ? size - off : MIB;
        for (int64_t i = 0; i < n; i++)
            buf[i] = (unsigned char)((off + i) * 31 + seed);
        assert_int_equal(pwrite(fd, buf, (size_t)n, off), n);
    }
    free(buf);
    return fd;
}

/* The S3 multipart ETag of fd's size bytes in part_size parts, computed
 * here independently of durable.c. */
static void s3_multipart_etag(int fd, int64_t size, int64_t part_size,
                              char out[DURABLE_ETAG_MAX])
{
    int parts = (int)((size + part_size - 1) / part_size);
    unsigned char *all = malloc((size_t)parts * 16);
    unsigned char *buf = malloc((size_t)part_size);
    assert_true(all && buf);
    for (int i = 0; i < parts; i++) {
        int64_t off = (int64_t)i * part_size;
        int64_t n = size - off < part_size ? size - off : part_size;
        assert_int_equal(pread(fd, buf, (size_t)n, off), n);
        unsigned len = 0;
        assert_int_equal(EVP_Digest(buf, (size_t)n, all + 16 * i, &len,
                                    EVP_md5(), NULL),
                         1);
    }
    unsigned char d[16];
    unsigned len = 0;
    assert_int_equal(
        EVP_Digest(all, (size_t)parts * 16, d, &len, EVP_md5(), NULL), 1);
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    snprintf(out + 32, DURABLE_ETAG_MAX - 32, "-%d", parts);
    free(buf);
    free(all);
}

static const upload_caps eager_caps = {.presign = true,
                                       .multipart = true,
                                       .eager = true};

static void test_eager_file_below_threshold_may_be_multipart(void **state)
{
    (void)state;
    int64_t size = 20 * MIB + 7; /* one whole part, below 64 MiB */
    int fd = pattern_file(size, 1);
    assert_false(upload_in_parts(&eager_caps, size));
    assert_true(upload_eager_in_parts(&eager_caps, size));
    char tried[DURABLE_ATTEMPT_ETAGS][DURABLE_ETAG_MAX];
    size_t n = 0;
    durable_attempt_etags(fd, size, &eager_caps, tried, &n);
    assert_int_equal(n, 2);
    char want[DURABLE_ETAG_MAX];
    s3_multipart_etag(fd, size, PART, want);
    assert_string_equal(tried[1], want);
    assert_true(durable_bytes_match(fd, size, want, &eager_caps));
    /* Another byte count, the same ETag: not these bytes. */
    assert_false(durable_bytes_match(fd, size - 1, want, &eager_caps));
    close(fd);
}

static void test_without_eager_or_below_one_part_one_etag(void **state)
{
    (void)state;
    upload_caps plain = eager_caps;
    plain.eager = false;
    int64_t size = 20 * MIB;
    int fd = pattern_file(size, 2);
    char tried[DURABLE_ATTEMPT_ETAGS][DURABLE_ETAG_MAX];
    size_t n = 0;
    durable_attempt_etags(fd, size, &plain, tried, &n);
    assert_int_equal(n, 1); /* one presigned PUT: the MD5 only */
    assert_int_equal(strlen(tried[0]), 32);
    close(fd);
    /* Below one part an eager upload never started: one PUT. */
    size = PART - 1;
    fd = pattern_file(size, 3);
    assert_false(upload_eager_in_parts(&eager_caps, size));
    durable_attempt_etags(fd, size, &eager_caps, tried, &n);
    assert_int_equal(n, 1);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eager_file_below_threshold_may_be_multipart),
        cmocka_unit_test(test_without_eager_or_below_one_part_one_etag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
