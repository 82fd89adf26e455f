/*
 * test_errors.c - unit tests of the client's error handling: the HTTP
 * status -> errno table, operation names, client creation and endpoint
 * normalization, and the retry policy, driven by the fault hook (no server).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include "lakefs.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Nothing listens there; with the hook answering, nothing connects. */
#define DEAD_ENDPOINT "http://127.0.0.1:1"

/* ------------------------------------------------------------------ */
/* Fault hook: answers script[i] on call i, then `then` forever.        */

#define MAX_SCRIPT 16

typedef struct hook_ctx {
    int script[MAX_SCRIPT];
    size_t script_len;
    int then;
    unsigned calls;
    lakefs_op ops[64];
    unsigned attempts[64];
} hook_ctx;

static int fault_hook(void *ctx, lakefs_op op, unsigned attempt)
{
    hook_ctx *h = ctx;
    if (h->calls < 64) {
        h->ops[h->calls] = op;
        h->attempts[h->calls] = attempt;
    }
    int answer = h->calls < h->script_len ? h->script[h->calls] : h->then;
    h->calls++;
    return answer;
}

/* Clients of the running test, freed by the teardown even when an
 * assertion fails half-way (so the sanitizer build stays leak-free). */
static lakefs_client *tracked[16];
static size_t ntracked;

static lakefs_client *track(lakefs_client *c)
{
    assert_non_null(c);
    assert_true(ntracked < sizeof(tracked) / sizeof(tracked[0]));
    tracked[ntracked++] = c;
    return c;
}

static void release_client(lakefs_client *c)
{
    for (size_t i = 0; i < ntracked; i++) {
        if (tracked[i] == c) {
            tracked[i] = tracked[--ntracked];
            break;
        }
    }
    lakefs_client_free(c);
}

static int free_clients(void **state)
{
    (void)state;
    while (ntracked > 0)
        lakefs_client_free(tracked[--ntracked]);
    return 0;
}

static lakefs_client *new_client(hook_ctx *h, unsigned max_attempts)
{
    lakefs_client_config cfg = {
        .endpoint = DEAD_ENDPOINT,
        .access_key_id = "AKIATEST",
        .secret_access_key = "secret",
        .connect_timeout_ms = 2000,
        .request_timeout_ms = 2000,
        .max_attempts = max_attempts,
        .retry_base_ms = 1,
        .retry_max_delay_ms = 2,
        .fault_hook = h ? fault_hook : NULL,
        .fault_ctx = h,
    };
    lakefs_error err = {0};
    lakefs_client *c = lakefs_client_new(&cfg, &err);
    if (!c)
        fail_msg("lakefs_client_new: %s", err.message);
    return track(c);
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle))
        fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

static void assert_stats(lakefs_client *c, lakefs_op op, uint64_t requests,
                         uint64_t retries, uint64_t failures)
{
    lakefs_op_stats st;
    lakefs_client_op_stats(c, op, &st);
    if (st.requests != requests || st.retries != retries ||
        st.failures != failures)
        fail_msg("%s stats: requests %llu retries %llu failures %llu, "
                 "want %llu %llu %llu",
                 lakefs_op_name(op), (unsigned long long)st.requests,
                 (unsigned long long)st.retries,
                 (unsigned long long)st.failures,
                 (unsigned long long)requests, (unsigned long long)retries,
                 (unsigned long long)failures);
    assert_int_equal(st.bytes_sent, 0);
    assert_int_equal(st.bytes_received, 0);
}

/* getBranch against the dead endpoint, the hook answering. */
static int get_branch(lakefs_client *c, lakefs_error *err)
{
    lakefs_ref ref;
    memset(&ref, 0, sizeof(ref));
    int rc = lakefs_get_branch(c, "repo", "main", &ref, err);
    lakefs_ref_free(&ref);
    return rc;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ */
/* Status table and names                                              */

static void test_status_to_errno_table(void **state)
{
    (void)state;
    static const struct {
        int status;
        int want;
    } table[] = {
        /* as documented in lakefs.h */
        {400, -EINVAL},     {401, -EACCES}, {403, -EPERM},
        {404, -ENOENT},     {409, -EEXIST}, {410, -EIO},
        {412, -EEXIST},     {416, -ERANGE}, {420, -EAGAIN},
        {429, -EAGAIN},     {501, -EOPNOTSUPP},
        /* other 4xx, 5xx, 1xx/3xx */
        {402, -EINVAL},     {405, -EINVAL}, {408, -EINVAL},
        {411, -EINVAL},     {418, -EINVAL}, {499, -EINVAL},
        {500, -EIO},        {502, -EIO},    {503, -EIO},
        {504, -EIO},        {599, -EIO},
        {100, -EPROTO},     {101, -EPROTO}, {301, -EPROTO},
        {302, -EPROTO},     {304, -EPROTO}, {307, -EPROTO},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        int got = lakefs_status_to_errno(table[i].status);
        if (got != table[i].want)
            fail_msg("status %d: got %d (%s), want %d (%s)", table[i].status,
                     got, strerror(-got), table[i].want,
                     strerror(-table[i].want));
    }
}

static void test_op_names(void **state)
{
    (void)state;
    assert_string_equal(lakefs_op_name(LAKEFS_OP_HEALTH_CHECK), "healthCheck");
    assert_string_equal(lakefs_op_name(LAKEFS_OP_LIST_OBJECTS), "listObjects");
    assert_string_equal(lakefs_op_name(LAKEFS_OP_GET_BRANCH), "getBranch");
    assert_string_equal(lakefs_op_name(LAKEFS_OP_UPLOAD_OBJECT),
                        "uploadObject");
    assert_string_equal(lakefs_op_name(LAKEFS_OP_UPDATE_OBJECT_USER_METADATA),
                        "updateObjectUserMetadata");
    assert_string_equal(lakefs_op_name(LAKEFS_OP_MERGE_INTO_BRANCH),
                        "mergeIntoBranch");
    assert_string_equal(
        lakefs_op_name(LAKEFS_OP_CREATE_PRESIGN_MULTIPART_UPLOAD),
        "createPresignMultipartUpload");
    assert_string_equal(
        lakefs_op_name(LAKEFS_OP_COMPLETE_PRESIGN_MULTIPART_UPLOAD),
        "completePresignMultipartUpload");
    assert_string_equal(
        lakefs_op_name(LAKEFS_OP_ABORT_PRESIGN_MULTIPART_UPLOAD),
        "abortPresignMultipartUpload");
    assert_string_equal(lakefs_op_name(LAKEFS_OP_UPLOAD_PART), "uploadPart");
    assert_string_equal(lakefs_op_name(LAKEFS_OP_PRESIGNED_GET),
                        "presignedGet");
    assert_string_equal(lakefs_op_name(LAKEFS_OP_PRESIGNED_PUT),
                        "presignedPut");
    assert_string_equal(lakefs_op_name(LAKEFS_OP_COUNT), "unknown");
    assert_string_equal(lakefs_op_name((lakefs_op)(LAKEFS_OP_COUNT + 7)),
                        "unknown");
    assert_string_equal(lakefs_op_name((lakefs_op)-1), "unknown");
    /* every operation has its own non-empty name */
    for (int i = 0; i < LAKEFS_OP_COUNT; i++) {
        const char *a = lakefs_op_name((lakefs_op)i);
        if (!a || !*a || strcmp(a, "unknown") == 0)
            fail_msg("operation %d has no name", i);
        for (int j = 0; j < i; j++)
            if (strcmp(a, lakefs_op_name((lakefs_op)j)) == 0)
                fail_msg("operations %d and %d share the name %s", j, i, a);
    }
}

/* ------------------------------------------------------------------ */
/* Client creation                                                     */

static void expect_bad_endpoint(const char *endpoint, const char *why)
{
    lakefs_client_config cfg = {.endpoint = endpoint};
    lakefs_error err;
    memset(&err, 0, sizeof(err));
    err.status = 99;
    lakefs_client *c = lakefs_client_new(&cfg, &err);
    if (c) {
        lakefs_client_free(c);
        fail_msg("endpoint \"%s\" accepted", endpoint ? endpoint : "(null)");
    }
    assert_int_equal(err.status, 0);
    assert_contains(err.message, why);
}

static void test_client_new_errors(void **state)
{
    (void)state;
    expect_bad_endpoint(NULL, "endpoint");
    expect_bad_endpoint("", "endpoint");
    expect_bad_endpoint("ftp://h:21", "http://");
    expect_bad_endpoint("h:8000", "http://");
    expect_bad_endpoint("127.0.0.1:8000/api/v1", "http://");
    /* NULL err is allowed */
    lakefs_client_config cfg = {.endpoint = "ftp://x"};
    assert_null(lakefs_client_new(&cfg, NULL));
    lakefs_client_free(NULL); /* harmless */
}

static void expect_base_url(const char *endpoint, const char *want)
{
    lakefs_client_config cfg = {.endpoint = endpoint};
    lakefs_error err = {0};
    lakefs_client *c = lakefs_client_new(&cfg, &err);
    if (!c)
        fail_msg("endpoint \"%s\" refused: %s", endpoint, err.message);
    if (strcmp(lakefs_client_base_url(c), want) != 0) {
        char got[256];
        snprintf(got, sizeof(got), "%s", lakefs_client_base_url(c));
        lakefs_client_free(c);
        fail_msg("endpoint \"%s\": base URL \"%s\", want \"%s\"", endpoint,
                 got, want);
    }
    lakefs_client_free(c);
}

static void test_endpoint_normalization(void **state)
{
    (void)state;
    expect_base_url("http://h:1", "http://h:1/api/v1");
    expect_base_url("http://h:1/", "http://h:1/api/v1");
    expect_base_url("http://h:1///", "http://h:1/api/v1");
    expect_base_url("http://h:1/api/v1", "http://h:1/api/v1");
    expect_base_url("http://h:1/api/v1/", "http://h:1/api/v1");
    expect_base_url("https://lakefs.example.com",
                    "https://lakefs.example.com/api/v1");
    expect_base_url("https://example.com/lakefs/",
                    "https://example.com/lakefs/api/v1");
    expect_base_url("https://example.com/lakefs/api/v1",
                    "https://example.com/lakefs/api/v1");
}

static void test_client_copies_config(void **state)
{
    (void)state;
    char endpoint[] = "http://h:1";
    char key[] = "AKIA";
    lakefs_client_config cfg = {.endpoint = endpoint, .access_key_id = key,
                                .secret_access_key = "s"};
    lakefs_client *c = track(lakefs_client_new(&cfg, NULL));
    memset(endpoint, 'x', sizeof(endpoint) - 1);
    memset(key, 'x', sizeof(key) - 1);
    assert_string_equal(lakefs_client_base_url(c), "http://h:1/api/v1");
    release_client(c);
}

/* ------------------------------------------------------------------ */
/* Retries through the fault hook                                      */

static void test_429_always_exhausts_attempts(void **state)
{
    (void)state;
    hook_ctx h = {.then = 429};
    lakefs_client *c = new_client(&h, 4);
    lakefs_error err;
    memset(&err, 0, sizeof(err));
    assert_int_equal(get_branch(c, &err), -EAGAIN);
    assert_int_equal(h.calls, 4);
    for (unsigned i = 0; i < h.calls; i++) {
        assert_int_equal(h.ops[i], LAKEFS_OP_GET_BRANCH);
        assert_int_equal(h.attempts[i], i);
    }
    assert_int_equal(err.status, 429);
    assert_contains(err.message, "429");
    assert_stats(c, LAKEFS_OP_GET_BRANCH, 4, 3, 1);
    /* other operations were not counted */
    assert_stats(c, LAKEFS_OP_GET_REPOSITORY, 0, 0, 0);

    /* a second call counts on top; reset zeroes everything */
    h.calls = 0;
    assert_int_equal(get_branch(c, &err), -EAGAIN);
    assert_int_equal(h.calls, 4);
    assert_stats(c, LAKEFS_OP_GET_BRANCH, 8, 6, 2);
    lakefs_client_reset_stats(c);
    assert_stats(c, LAKEFS_OP_GET_BRANCH, 0, 0, 0);
    /* out of range op: zeroes, no crash */
    lakefs_op_stats st;
    memset(&st, 0xA5, sizeof(st));
    lakefs_client_op_stats(c, LAKEFS_OP_COUNT, &st);
    assert_int_equal(st.requests, 0);
    assert_int_equal(st.failures, 0);
    release_client(c);
}

static void test_default_max_attempts_is_six(void **state)
{
    (void)state;
    hook_ctx h = {.then = 420};
    lakefs_client *c = new_client(&h, 0);
    assert_int_equal(get_branch(c, NULL), -EAGAIN);
    assert_int_equal(h.calls, 6);
    assert_stats(c, LAKEFS_OP_GET_BRANCH, 6, 5, 1);
    release_client(c);
}

static void test_503_twice_then_404(void **state)
{
    (void)state;
    hook_ctx h = {.script = {503, 503}, .script_len = 2, .then = 404};
    lakefs_client *c = new_client(&h, 5);
    lakefs_error err;
    memset(&err, 0, sizeof(err));
    assert_int_equal(get_branch(c, &err), -ENOENT);
    assert_int_equal(h.calls, 3);
    assert_int_equal(err.status, 404);
    assert_stats(c, LAKEFS_OP_GET_BRANCH, 3, 2, 1);
    release_client(c);
}

static void test_503_always_is_eio(void **state)
{
    (void)state;
    hook_ctx h = {.then = 503};
    lakefs_client *c = new_client(&h, 3);
    assert_int_equal(get_branch(c, NULL), -EIO);
    assert_int_equal(h.calls, 3);
    release_client(c);
}

/* Statuses that are final on the first answer. */
static void test_not_retried(void **state)
{
    (void)state;
    static const struct {
        int status;
        int want;
    } cases[] = {
        {404, -ENOENT}, {400, -EINVAL}, {401, -EACCES},
        {403, -EPERM},  {409, -EEXIST}, {412, -EEXIST},
        {410, -EIO},    {500, -EIO},    {501, -EOPNOTSUPP},
        {502, -EIO},    {302, -EPROTO}, {405, -EINVAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hook_ctx h = {.then = cases[i].status};
        lakefs_client *c = new_client(&h, 5);
        lakefs_error err;
        memset(&err, 0, sizeof(err));
        int rc = get_branch(c, &err);
        if (rc != cases[i].want || h.calls != 1)
            fail_msg("status %d: rc %d after %u attempts, want %d after 1",
                     cases[i].status, rc, h.calls, cases[i].want);
        assert_int_equal(err.status, cases[i].status);
        assert_stats(c, LAKEFS_OP_GET_BRANCH, 1, 0, 1);
        release_client(c);
    }
}

static void test_transport_fault_is_retried(void **state)
{
    (void)state;
    /* two transport-style failures, then a real answer */
    hook_ctx h = {.script = {-ECONNRESET, -ETIMEDOUT}, .script_len = 2,
                  .then = 404};
    lakefs_client *c = new_client(&h, 5);
    lakefs_error err;
    memset(&err, 0, sizeof(err));
    assert_int_equal(get_branch(c, &err), -ENOENT);
    assert_int_equal(h.calls, 3);
    assert_stats(c, LAKEFS_OP_GET_BRANCH, 3, 2, 1);
    release_client(c);

    /* always failing: the last errno comes back, status 0 */
    hook_ctx h2 = {.then = -ETIMEDOUT};
    c = new_client(&h2, 3);
    memset(&err, 0, sizeof(err));
    err.status = 77;
    assert_int_equal(get_branch(c, &err), -ETIMEDOUT);
    assert_int_equal(h2.calls, 3);
    assert_int_equal(err.status, 0);
    assert_true(err.message[0] != '\0');
    assert_stats(c, LAKEFS_OP_GET_BRANCH, 3, 2, 1);
    release_client(c);
}

static void test_retry_budget_stops_early(void **state)
{
    (void)state;
    /* the first backoff (500..1000 ms) already exceeds the 10 ms budget */
    hook_ctx h = {.then = 503};
    lakefs_client_config cfg = {
        .endpoint = DEAD_ENDPOINT,
        .max_attempts = 6,
        .retry_base_ms = 1000,
        .retry_max_delay_ms = 5000,
        .retry_budget_ms = 10,
        .fault_hook = fault_hook,
        .fault_ctx = &h,
    };
    lakefs_client *c = track(lakefs_client_new(&cfg, NULL));
    int64_t t0 = now_ms();
    assert_int_equal(get_branch(c, NULL), -EIO);
    int64_t elapsed = now_ms() - t0;
    assert_int_equal(h.calls, 1);
    assert_true(elapsed < 400); /* it did not sleep the backoff */
    assert_stats(c, LAKEFS_OP_GET_BRANCH, 1, 0, 1);
    release_client(c);

    /* backoffs 50..100 ms then 100..200 ms against a 120 ms budget: one
     * retry fits, the second does not */
    hook_ctx h2 = {.then = 429};
    cfg.retry_base_ms = 100;
    cfg.retry_budget_ms = 120;
    cfg.fault_ctx = &h2;
    c = track(lakefs_client_new(&cfg, NULL));
    t0 = now_ms();
    assert_int_equal(get_branch(c, NULL), -EAGAIN);
    elapsed = now_ms() - t0;
    assert_true(h2.calls > 1);
    assert_true(h2.calls < 6);
    assert_true(elapsed >= 50);  /* slept at least one backoff */
    assert_true(elapsed < 1000);
    release_client(c);
}

static void test_connection_refused_retried(void **state)
{
    (void)state;
    lakefs_client *c = new_client(NULL, 3);
    lakefs_error err;
    memset(&err, 0, sizeof(err));
    err.status = 55;
    assert_int_equal(get_branch(c, &err), -ECONNREFUSED);
    assert_int_equal(err.status, 0);
    assert_true(err.message[0] != '\0');
    assert_null(strstr(err.message, "secret")); /* no credentials */
    assert_stats(c, LAKEFS_OP_GET_BRANCH, 3, 2, 1);
    release_client(c);
}

/* not_applied: set exactly when no try of the request can have changed
 * anything (refused by status, or never sent); the writer remembers a
 * failed upload as possibly landed unless it is set. */
static void test_not_applied(void **state)
{
    (void)state;
    static const struct {
        int script[3];
        size_t len;
        int then;
        bool want;
    } cases[] = {
        {{0}, 0, 400, true},          /* refused */
        {{0}, 0, 404, true},
        {{0}, 0, 503, true},          /* refused every time */
        {{0}, 0, 500, false},         /* may come after the work */
        {{0}, 0, -ECONNREFUSED, true}, /* never sent */
        {{0}, 0, -ECONNRESET, false}, /* cut: may have been applied */
        {{-ECONNRESET}, 1, 404, false}, /* an earlier try may have been */
        {{-ECONNREFUSED, 503}, 2, 404, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hook_ctx h = {.script_len = cases[i].len, .then = cases[i].then};
        memcpy(h.script, cases[i].script, sizeof(cases[i].script));
        lakefs_client *c = new_client(&h, 3);
        lakefs_error err;
        memset(&err, 0, sizeof(err));
        err.not_applied = !cases[i].want; /* the call must set it */
        assert_true(get_branch(c, &err) < 0);
        if (err.not_applied != cases[i].want)
            fail_msg("case %zu: not_applied %d, want %d", i,
                     err.not_applied, cases[i].want);
        release_client(c);
    }
    /* a real refused connection */
    lakefs_client *c = new_client(NULL, 2);
    lakefs_error err;
    memset(&err, 0, sizeof(err));
    assert_int_equal(get_branch(c, &err), -ECONNREFUSED);
    assert_true(err.not_applied);
    release_client(c);
}

static void test_delete_objects_limit(void **state)
{
    (void)state;
    hook_ctx h = {.then = 404};
    lakefs_client *c = new_client(&h, 3);
    const char **paths = calloc(1001, sizeof(*paths));
    assert_non_null(paths);
    for (size_t i = 0; i < 1001; i++)
        paths[i] = "some/path";
    lakefs_error err;
    memset(&err, 0, sizeof(err));
    assert_int_equal(lakefs_delete_objects(c, "repo", "main", paths, 1001,
                                           NULL, &err),
                     -EINVAL);
    assert_int_equal(h.calls, 0);
    assert_contains(err.message, "1000");
    assert_stats(c, LAKEFS_OP_DELETE_OBJECTS, 0, 0, 0);

    /* 1000 is allowed: the request is made (and answered 404 here) */
    assert_int_equal(lakefs_delete_objects(c, "repo", "main", paths, 1000,
                                           NULL, &err),
                     -ENOENT);
    assert_int_equal(h.calls, 1);
    assert_stats(c, LAKEFS_OP_DELETE_OBJECTS, 1, 0, 1);
    free(paths);
    release_client(c);
}

static void test_upload_pipe_not_retried(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], "hello", 5), 5);
    close(fds[1]);
    hook_ctx h = {.then = 503};
    lakefs_client *c = new_client(&h, 4);
    lakefs_object_stats out;
    memset(&out, 0, sizeof(out));
    lakefs_error err;
    assert_int_equal(lakefs_upload_object_fd(c, "repo", "main", "a/b.txt",
                                             fds[0], 5, NULL, &out, &err),
                     -EIO);
    assert_int_equal(h.calls, 1);
    assert_int_equal(h.ops[0], LAKEFS_OP_UPLOAD_OBJECT);
    assert_stats(c, LAKEFS_OP_UPLOAD_OBJECT, 1, 0, 1);
    lakefs_object_stats_free(&out);
    close(fds[0]);
    release_client(c);
}

static void test_upload_regular_file_retried(void **state)
{
    (void)state;
    char path[] = "/tmp/lakefuse-upload-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, "0123456789", 10), 10);
    hook_ctx h = {.then = 503};
    lakefs_client *c = new_client(&h, 4);
    lakefs_object_stats out;
    memset(&out, 0, sizeof(out));
    lakefs_error err;
    assert_int_equal(lakefs_upload_object_fd(c, "repo", "main", "a/b.txt", fd,
                                             10, NULL, &out, &err),
                     -EIO);
    assert_int_equal(h.calls, 4);
    assert_stats(c, LAKEFS_OP_UPLOAD_OBJECT, 4, 3, 1);
    lakefs_object_stats_free(&out);
    close(fd);
    release_client(c);
}


static void test_upload_pipe_transport_fault_not_retried(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    close(fds[1]);
    hook_ctx h = {.then = -ECONNRESET};
    lakefs_client *c = new_client(&h, 4);
    assert_int_equal(lakefs_upload_object_fd(c, "repo", "main", "p", fds[0],
                                             0, NULL, NULL, NULL),
                     -ECONNRESET);
    assert_int_equal(h.calls, 1);
    close(fds[0]);
    release_client(c);
}

/* A part read at an offset is re-read from that offset on every retry,
 * which needs pread: a pipe is refused before anything is sent. */
static void test_presigned_range_needs_a_regular_file(void **state)
{
    (void)state;
    hook_ctx h = {.then = 503};
    lakefs_client *c = new_client(&h, 4);
    lakefs_error err;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    char *etag = (char *)"untouched";
    assert_int_equal(lakefs_put_presigned_range_fd(c, "http://127.0.0.1:9/p",
                                                   fds[0], 5, 5, &etag, &err),
                     -ESPIPE);
    assert_null(etag);
    assert_contains(err.message, "regular file");
    close(fds[0]);
    close(fds[1]);
    assert_int_equal(lakefs_put_presigned_range_fd(c, "http://127.0.0.1:9/p",
                                                   0, -1, 5, NULL, &err),
                     -EINVAL);
    assert_int_equal(h.calls, 0);

    char path[] = "/tmp/lakefuse-range-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, "0123456789", 10), 10);
    assert_int_equal(lakefs_put_presigned_range_fd(c, "http://127.0.0.1:9/p",
                                                   fd, 4, 6, &etag, &err),
                     -EIO);
    assert_null(etag);
    assert_int_equal(h.calls, 4); /* a regular file: retried */
    assert_int_equal(h.ops[0], LAKEFS_OP_PRESIGNED_PUT);
    assert_stats(c, LAKEFS_OP_PRESIGNED_PUT, 4, 3, 1);
    close(fd);
    release_client(c);
}

static void test_multipart_invalid_arguments_send_nothing(void **state)
{
    (void)state;
    hook_ctx h = {.then = 404};
    lakefs_client *c = new_client(&h, 2);
    lakefs_error err;
    lakefs_multipart_upload mpu;
    memset(&mpu, 0xA5, sizeof(mpu));
    assert_int_equal(lakefs_create_presign_multipart(c, "repo", "main", "p",
                                                     -1, &mpu, &err),
                     -EINVAL);
    assert_true(testutil_all_zero(&mpu, sizeof(mpu)));
    memset(&mpu, 0xA5, sizeof(mpu));
    assert_int_equal(lakefs_create_presign_multipart(
                         c, "repo", "main", "p",
                         LAKEFS_MULTIPART_MAX_PARTS + 1, &mpu, &err),
                     -EINVAL);
    assert_true(testutil_all_zero(&mpu, sizeof(mpu)));
    assert_contains(err.message, "parts");

    /* no exclusive create on completion: refused rather than ignored */
    lakefs_upload_part part = {1, "\"e\""};
    lakefs_upload_options opt = {.if_none_match = true};
    lakefs_object_stats st;
    memset(&st, 0xA5, sizeof(st));
    assert_int_equal(lakefs_complete_presign_multipart(c, "repo", "main", "p",
                                                       "u", "s3://x", &part, 1,
                                                       &opt, &st, &err),
                     -EINVAL);
    assert_true(testutil_all_zero(&st, sizeof(st)));
    assert_int_equal(h.calls, 0);

    /* a failed call leaves the out struct zeroed */
    memset(&mpu, 0xA5, sizeof(mpu));
    assert_int_equal(
        lakefs_create_presign_multipart(c, "repo", "main", "p", 3, &mpu, &err),
        -ENOENT);
    assert_true(testutil_all_zero(&mpu, sizeof(mpu)));
    assert_int_equal(h.ops[0], LAKEFS_OP_CREATE_PRESIGN_MULTIPART_UPLOAD);
    memset(&st, 0xA5, sizeof(st));
    assert_int_equal(lakefs_complete_presign_multipart(c, "repo", "main", "p",
                                                       "u", "s3://x", &part, 1,
                                                       NULL, &st, &err),
                     -ENOENT);
    assert_true(testutil_all_zero(&st, sizeof(st)));
    assert_int_equal(lakefs_abort_presign_multipart(c, "repo", "main", "p",
                                                    "u", "s3://x", &err),
                     -ENOENT);
    assert_int_equal(h.calls, 3);
    assert_int_equal(h.ops[1], LAKEFS_OP_COMPLETE_PRESIGN_MULTIPART_UPLOAD);
    assert_int_equal(h.ops[2], LAKEFS_OP_ABORT_PRESIGN_MULTIPART_UPLOAD);
    release_client(c);
}

static void test_invalid_arguments_send_nothing(void **state)
{
    (void)state;
    hook_ctx h = {.then = 404};
    lakefs_client *c = new_client(&h, 3);
    lakefs_error err;

    /* metadata that would inject a header line */
    static const char *const bad[][2] = {
        {"color", "blue\r\nX-Evil: 1"},
        {"co\nlor", "blue"},
        {"a:b", "v"},
        {"a b", "v"},
        {"::lakefs::", "v"}, /* empty internal name */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        lakefs_metadata md = {0};
        assert_int_equal(lakefs_metadata_set(&md, bad[i][0], bad[i][1]), 0);
        lakefs_upload_options opt = {.metadata = &md};
        memset(&err, 0, sizeof(err));
        int rc = lakefs_upload_object_fd(c, "repo", "main", "p", 0, 0, &opt,
                                         NULL, &err);
        lakefs_metadata_free(&md);
        if (rc != -EINVAL)
            fail_msg("metadata %zu: rc %d, want -EINVAL", i, rc);
        assert_contains(err.message, "metadata");
    }
    assert_int_equal(h.calls, 0);

    /* resets: a path is needed except for LAKEFS_RESET_ALL */
    assert_int_equal(lakefs_reset_branch(c, "repo", "main",
                                         LAKEFS_RESET_OBJECT, NULL, &err),
                     -EINVAL);
    assert_int_equal(lakefs_reset_branch(c, "repo", "main",
                                         (lakefs_reset_type)9, "p", &err),
                     -EINVAL);
    assert_int_equal(h.calls, 0);
    assert_int_equal(lakefs_reset_branch(c, "repo", "main", LAKEFS_RESET_ALL,
                                         NULL, &err),
                     -ENOENT);
    assert_int_equal(h.calls, 1);
    release_client(c);
}

static void test_range_past_end_is_eof(void **state)
{
    (void)state;
    /* 416 on a ranged read means "at or past the end": 0 bytes, success */
    hook_ctx h = {.then = 416};
    lakefs_client *c = new_client(&h, 3);
    char buf[16];
    size_t n = 99;
    assert_int_equal(lakefs_get_object_range(c, "repo", "main", "p", false,
                                             1000, sizeof(buf), buf, &n,
                                             NULL),
                     0);
    assert_int_equal(n, 0);
    assert_int_equal(h.calls, 1);
    /* len 0: nothing asked, nothing sent */
    n = 99;
    assert_int_equal(lakefs_get_object_range(c, "repo", "main", "p", false, 0,
                                             0, buf, &n, NULL),
                     0);
    assert_int_equal(n, 0);
    assert_int_equal(h.calls, 1);
    release_client(c);
}

/* ------------------------------------------------------------------ */
/* Contract checks that fail until bugs in src/ are fixed (see report) */

/* lakefs.h: the hook's status makes the attempt "answer that status with
 * an empty body"; a 2xx answer is a success, so transient faults followed
 * by a 204 must let healthCheck succeed. BUG: run_attempt maps every hook
 * status through lakefs_status_to_errno, so 2xx becomes -EPROTO. */
static void test_hook_2xx_is_success(void **state)
{
    (void)state;
    hook_ctx h = {.script = {503, -ECONNRESET}, .script_len = 2,
                  .then = 204};
    lakefs_client *c = new_client(&h, 5);
    lakefs_error err;
    memset(&err, 0, sizeof(err));
    int rc = lakefs_health_check(c, &err);
    if (rc != 0)
        fail_msg("healthCheck answered 204 by the hook: rc %d (%s), "
                 "message \"%s\"", rc, strerror(-rc), err.message);
    assert_int_equal(h.calls, 3);
    assert_stats(c, LAKEFS_OP_HEALTH_CHECK, 3, 2, 0);

    /* a 200 with an empty body reaches the JSON parser, which refuses it */
    hook_ctx h2 = {.then = 200};
    lakefs_client *c2 = new_client(&h2, 5);
    memset(&err, 0, sizeof(err));
    assert_int_equal(get_branch(c2, &err), -EPROTO);
    assert_int_equal(h2.calls, 1);
    assert_contains(err.message, "not JSON");
    release_client(c2);
    release_client(c);
}

/* lakefs.h, Ownership: "On failure the out struct is left zeroed." BUG:
 * lakefs_call only runs the parser (which zeroes) after a 2xx, so an HTTP
 * or transport failure leaves the caller's struct untouched. */
static void test_failure_leaves_out_zeroed(void **state)
{
    (void)state;
    hook_ctx h = {.then = 404};
    lakefs_client *c = new_client(&h, 2);

    lakefs_ref ref;
    memset(&ref, 0xA5, sizeof(ref));
    assert_int_equal(lakefs_get_branch(c, "repo", "main", &ref, NULL),
                     -ENOENT);
    if (!testutil_all_zero(&ref, sizeof(ref)))
        fail_msg("lakefs_get_branch left its out struct non-zero");

    lakefs_object_stats st;
    memset(&st, 0xA5, sizeof(st));
    assert_int_equal(lakefs_stat_object(c, "repo", "main", "p", false, &st,
                                        NULL),
                     -ENOENT);
    if (!testutil_all_zero(&st, sizeof(st)))
        fail_msg("lakefs_stat_object left its out struct non-zero");

    lakefs_object_list list;
    memset(&list, 0xA5, sizeof(list));
    assert_int_equal(lakefs_list_objects(c, "repo", "main", NULL, &list,
                                         NULL),
                     -ENOENT);
    if (!testutil_all_zero(&list, sizeof(list)))
        fail_msg("lakefs_list_objects left its out struct non-zero");

    lakefs_config conf;
    memset(&conf, 0xA5, sizeof(conf));
    assert_int_equal(lakefs_get_config(c, &conf, NULL), -ENOENT);
    if (!testutil_all_zero(&conf, sizeof(conf)))
        fail_msg("lakefs_get_config left its out struct non-zero");

    lakefs_object_error_list failed;
    memset(&failed, 0xA5, sizeof(failed));
    const char *paths[] = {"a"};
    assert_int_equal(lakefs_delete_objects(c, "repo", "main", paths, 1,
                                           &failed, NULL),
                     -ENOENT);
    if (!testutil_all_zero(&failed, sizeof(failed)))
        fail_msg("lakefs_delete_objects left *failed non-zero");
    release_client(c);
}

/* An endpoint with no host is bad config. BUG: normalize_base_url strips
 * the "//" of "http://" as trailing slashes and answers "http:/api/v1". */
static void test_endpoint_without_host_refused(void **state)
{
    (void)state;
    expect_bad_endpoint("http://", "endpoint");
    expect_bad_endpoint("https:///", "endpoint");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_status_to_errno_table, free_clients),
        cmocka_unit_test_teardown(test_op_names, free_clients),
        cmocka_unit_test_teardown(test_client_new_errors, free_clients),
        cmocka_unit_test_teardown(test_endpoint_normalization, free_clients),
        cmocka_unit_test_teardown(test_client_copies_config, free_clients),
        cmocka_unit_test_teardown(test_429_always_exhausts_attempts,
                                  free_clients),
        cmocka_unit_test_teardown(test_default_max_attempts_is_six,
                                  free_clients),
        cmocka_unit_test_teardown(test_503_twice_then_404, free_clients),
        cmocka_unit_test_teardown(test_503_always_is_eio, free_clients),
        cmocka_unit_test_teardown(test_not_retried, free_clients),
        cmocka_unit_test_teardown(test_transport_fault_is_retried,
                                  free_clients),
        cmocka_unit_test_teardown(test_retry_budget_stops_early, free_clients),
        cmocka_unit_test_teardown(test_connection_refused_retried,
                                  free_clients),
        cmocka_unit_test_teardown(test_not_applied, free_clients),
        cmocka_unit_test_teardown(test_delete_objects_limit, free_clients),
        cmocka_unit_test_teardown(test_upload_pipe_not_retried, free_clients),
        cmocka_unit_test_teardown(test_upload_regular_file_retried,
                                  free_clients),
        cmocka_unit_test_teardown(test_upload_pipe_transport_fault_not_retried,
                                  free_clients),
        cmocka_unit_test_teardown(test_presigned_range_needs_a_regular_file,
                                  free_clients),
        cmocka_unit_test_teardown(
            test_multipart_invalid_arguments_send_nothing, free_clients),
        cmocka_unit_test_teardown(test_invalid_arguments_send_nothing,
                                  free_clients),
        cmocka_unit_test_teardown(test_range_past_end_is_eof, free_clients),
        cmocka_unit_test_teardown(test_hook_2xx_is_success, free_clients),
        cmocka_unit_test_teardown(test_failure_leaves_out_zeroed,
                                  free_clients),
        cmocka_unit_test_teardown(test_endpoint_without_host_refused,
                                  free_clients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
