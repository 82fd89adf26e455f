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

#include <errno.h>
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
    durable_failed_attempt(fd, size, &eager_caps, NULL, tried, &n);
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
    durable_failed_attempt(fd, size, &plain, NULL, tried, &n);
    assert_int_equal(n, 1); /* one presigned PUT: the MD5 only */
    assert_int_equal(strlen(tried[0]), 32);
    close(fd);
    /* Below one part an eager upload never started: one PUT. */
    size = PART - 1;
    fd = pattern_file(size, 3);
    assert_false(upload_eager_in_parts(&eager_caps, size));
    durable_failed_attempt(fd, size, &eager_caps, NULL, tried, &n);
    assert_int_equal(n, 1);
    close(fd);
}

/* hex of an EVP digest of fd's size bytes, computed here in one piece. */
static void whole_digest(const EVP_MD *md, int fd, int64_t size, char *out)
{
    unsigned char *buf = malloc(size > 0 ? (size_t)size : 1);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, (size_t)size, 0), size);
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    assert_int_equal(EVP_Digest(buf, (size_t)size, d, &len, md, NULL), 1);
    for (unsigned i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    free(buf);
}

/* A failed upload's seal and attempt checksums come from one read of the
 * file: each the same as computed alone, for sizes around the read chunk
 * (1 MiB) and the part size, in one PUT and in parts. */
static void test_failed_attempt_in_one_pass(void **state)
{
    (void)state;
    const int64_t sizes[] = {0, 1, MIB - 1, MIB + 1, PART - 1,
                             20 * MIB + 7, 2 * PART, 2 * PART + 3};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        int64_t size = sizes[i];
        int fd = pattern_file(size, (unsigned)i + 7);
        char digest[DURABLE_DIGEST_HEX], want[DURABLE_ETAG_MAX * 2];
        char tried[DURABLE_ATTEMPT_ETAGS][DURABLE_ETAG_MAX];
        size_t n = 9;
        assert_int_equal(durable_failed_attempt(fd, size, &eager_caps, digest,
                                                tried, &n),
                         0);
        whole_digest(EVP_sha256(), fd, size, want);
        assert_string_equal(digest, want);
        char alone[DURABLE_DIGEST_HEX];
        assert_int_equal(durable_digest_fd(fd, size, alone), 0);
        assert_string_equal(alone, want);
        whole_digest(EVP_md5(), fd, size, want);
        assert_string_equal(tried[0], want);
        bool parts = upload_eager_in_parts(&eager_caps, size);
        assert_int_equal(n, parts ? 2 : 1);
        if (parts) {
            s3_multipart_etag(fd, size, PART, want);
            assert_string_equal(tried[1], want);
        }
        /* Without the checksums (a try refused before it was sent). */
        n = 9;
        assert_int_equal(
            durable_failed_attempt(fd, size, &eager_caps, digest, NULL, &n), 0);
        assert_int_equal(n, 0);
        /* A file shorter than the size asked for: no seal, no checksum. */
        assert_int_equal(durable_failed_attempt(fd, size + 1, &eager_caps,
                                                digest, tried, &n),
                         -EIO);
        assert_int_equal(n, 0);
        assert_string_equal(digest, "");
        close(fd);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed_attempt_in_one_pass),
        cmocka_unit_test(test_eager_file_below_threshold_may_be_multipart),
        cmocka_unit_test(test_without_eager_or_below_one_part_one_etag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
