/*
 * test_http_policy.c - unit tests of the client's transport policy, driven
 * by the fault hook (no server): which URLs from a server are used at all,
 * which operations are sent again after which failures, and that an
 * ambiguous failure of a non-idempotent one is checked, never re-sent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lakefs_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MAX_SCRIPT 16

/* Answers per operation: script[op][i] on that operation's i-th attempt,
 * then[op] after; counts every attempt. */
typedef struct hook_ctx {
    int script[LAKEFS_OP_COUNT][MAX_SCRIPT];
    size_t len[LAKEFS_OP_COUNT];
    int then[LAKEFS_OP_COUNT];
    unsigned calls[LAKEFS_OP_COUNT];
} hook_ctx;

static int fault_hook(void *ctx, lakefs_op op, unsigned attempt)
{
    (void)attempt;
    hook_ctx *h = ctx;
    unsigned i = h->calls[op]++;
    return i < h->len[op] ? h->script[op][i] : h->then[op];
}

static lakefs_client *client;

static int free_client(void **state)
{
    (void)state;
    lakefs_client_free(client);
    client = NULL;
    return 0;
}

static lakefs_client *new_client(const char *endpoint, hook_ctx *h)
{
    lakefs_client_config cfg = {
        .endpoint = endpoint,
        .access_key_id = "AKIATEST",
        .secret_access_key = "secret",
        .connect_timeout_ms = 2000,
        .request_timeout_ms = 2000,
        .max_attempts = 4,
        .retry_base_ms = 1,
        .retry_max_delay_ms = 2,
        .fault_hook = h ? fault_hook : NULL,
        .fault_ctx = h,
    };
    lakefs_error err = {0};
    client = lakefs_client_new(&cfg, &err);
    if (!client)
        fail_msg("lakefs_client_new: %s", err.message);
    return client;
}

static uint64_t requests(lakefs_client *c, lakefs_op op)
{
    lakefs_op_stats st;
    lakefs_client_op_stats(c, op, &st);
    return st.requests;
}

static void assert_refused(lakefs_client *c, const char *url,
                           const char *why)
{
    lakefs_error err = {0};
    int rc = lakefs_url_check(c, url, &err);
    if (rc != -EPROTO || !strstr(err.message, why))
        fail_msg("\"%s\": rc %d, message \"%s\", wanted -EPROTO and \"%s\"",
                 url, rc, err.message, why);
}

static void test_url_check(void **state)
{
    (void)state;
    lakefs_client *c = new_client("http://127.0.0.1:1", NULL);
    lakefs_error err = {0};
    assert_int_equal(lakefs_url_check(c, "http://127.0.0.2:8000/_presigned/"
                                         "x?X-Amz-Signature=ab",
                                      &err),
                     0);
    assert_int_equal(lakefs_url_check(c, "https://bucket.s3.amazonaws.com/k",
                                      &err),
                     0);
    assert_int_equal(lakefs_url_check(c, "HTTP://[::1]:9000/k", &err), 0);
    assert_refused(c, "file:///tmp/target", "not http or https");
    assert_refused(c, "gopher://127.0.0.1:70/_x", "not http or https");
    assert_refused(c, "dict://127.0.0.1/x", "not http or https");
    assert_refused(c, "ftp://h/x", "not http or https");
    assert_refused(c, "/relative/path", "not http or https");
    assert_refused(c, "", "empty");
    assert_refused(c, "http://user:pw@h/x", "credentials");
    assert_refused(c, "http://h\\@evil/x", "credentials");
    assert_refused(c, "http:///x", "without a host");
    assert_refused(c, "http://:80/x", "without a host");
    assert_refused(c, "http://h/a b", "control character");
    assert_refused(c, "http://h/a\r\nX-Injected: 1", "control character");
    assert_refused(c, "http://h/\x7f", "control character");
    /* The configured endpoint is checked the same way. */
    lakefs_client_config bad = {.endpoint = "http://u:p@h"};
    assert_null(lakefs_client_new(&bad, &err));
    assert_non_null(strstr(err.message, "credentials"));
}

static void test_https_endpoint_uses_https_only(void **state)
{
    (void)state;
    hook_ctx h = {0};
    lakefs_client *c = new_client("https://127.0.0.1:1", &h);
    lakefs_error err = {0};
    assert_int_equal(lakefs_url_check(c, "https://s3.example/k", &err), 0);
    assert_refused(c, "http://s3.example/k", "endpoint is https");

    /* Nothing is attempted: the hook would see every attempt. */
    char buf[8];
    size_t got = 99;
    assert_int_equal(lakefs_get_url_range(c, "http://127.0.0.1:1/k", 0,
                                          sizeof(buf), buf, &got, &err),
                     -EPROTO);
    assert_int_equal(got, 0);
    assert_int_equal(h.calls[LAKEFS_OP_PRESIGNED_GET], 0);
    assert_int_equal(requests(c, LAKEFS_OP_PRESIGNED_GET), 0);
    FILE *f = tmpfile();
    assert_non_null(f);
    char *sum = NULL;
    assert_int_equal(lakefs_put_presigned_fd(c, "file:///tmp/x", fileno(f), 0,
                                             NULL, &sum, &err),
                     -EPROTO);
    fclose(f);
    assert_null(sum);
    assert_int_equal(h.calls[LAKEFS_OP_PRESIGNED_PUT], 0);
}

static void test_idempotency_classes(void **state)
{
    (void)state;
    const lakefs_op once[] = {
        LAKEFS_OP_COMMIT, LAKEFS_OP_MERGE_INTO_BRANCH,
        LAKEFS_OP_CREATE_BRANCH, LAKEFS_OP_CREATE_TAG,
        LAKEFS_OP_CREATE_REPOSITORY, LAKEFS_OP_LINK_PHYSICAL_ADDRESS,
        LAKEFS_OP_COMPLETE_PRESIGN_MULTIPART_UPLOAD, LAKEFS_OP_COPY_OBJECT};
    size_t n = 0;
    for (int op = 0; op < LAKEFS_OP_COUNT; op++)
        if (!lakefs_op_is_idempotent((lakefs_op)op))
            n++;
    assert_int_equal(n, sizeof(once) / sizeof(once[0]));
    for (size_t i = 0; i < n; i++)
        assert_false(lakefs_op_is_idempotent(once[i]));
    assert_true(lakefs_op_is_long_running(LAKEFS_OP_COMMIT));
    assert_true(lakefs_op_is_long_running(LAKEFS_OP_MERGE_INTO_BRANCH));
    assert_false(lakefs_op_is_long_running(LAKEFS_OP_GET_BRANCH));
}

static int create_branch(lakefs_client *c, char **id, lakefs_error *err)
{
    *id = NULL;
    return lakefs_create_branch(c, "repo", "dev", "main", id, err);
}

/* Refused connections never carried the request: sent again. */
/* A caller's retry of an idempotent request: transient failures only,
 * LAKEFS_IDEMPOTENT_TRIES tries in all. */
static void test_caller_retry_of_idempotent_requests(void **state)
{
    (void)state;
    const int transient[] = {-EIO, -EAGAIN, -ETIMEDOUT, -EPROTO, -ECONNRESET};
    for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++) {
        int tries = 0, sent = 1;
        while (lakefs_retry_idempotent(transient[i], &tries))
            sent++;
        assert_int_equal(sent, LAKEFS_IDEMPOTENT_TRIES);
    }
    const int final[] = {0, -ENOENT, -EACCES, -EINVAL, -EEXIST, -ENOMEM};
    for (size_t i = 0; i < sizeof(final) / sizeof(final[0]); i++) {
        int tries = 0;
        assert_false(lakefs_retry_idempotent(final[i], &tries));
    }
}

static void test_never_sent_is_retried(void **state)
{
    (void)state;
    hook_ctx h = {0};
    h.script[LAKEFS_OP_CREATE_BRANCH][0] = -ECONNREFUSED;
    h.script[LAKEFS_OP_CREATE_BRANCH][1] = -EHOSTUNREACH;
    h.script[LAKEFS_OP_CREATE_BRANCH][2] = 429;
    h.len[LAKEFS_OP_CREATE_BRANCH] = 3;
    h.then[LAKEFS_OP_CREATE_BRANCH] = 409;
    lakefs_client *c = new_client("http://127.0.0.1:1", &h);
    char *id;
    lakefs_error err = {0};
    assert_int_equal(create_branch(c, &id, &err), -EEXIST);
    assert_int_equal(h.calls[LAKEFS_OP_CREATE_BRANCH], 4);
    assert_int_equal(h.calls[LAKEFS_OP_GET_BRANCH], 0); /* no check */
}

/* A cut connection may have carried it: checked, not sent again. The
 * branch is not there, so the first error stands. */
static void test_cut_is_checked_not_resent(void **state)
{
    (void)state;
    hook_ctx h = {0};
    h.then[LAKEFS_OP_CREATE_BRANCH] = -ECONNRESET;
    h.then[LAKEFS_OP_GET_BRANCH] = 404;
    lakefs_client *c = new_client("http://127.0.0.1:1", &h);
    char *id;
    lakefs_error err = {0};
    assert_int_equal(create_branch(c, &id, &err), -ECONNRESET);
    assert_null(id);
    assert_int_equal(h.calls[LAKEFS_OP_CREATE_BRANCH], 1);
    assert_int_equal(h.calls[LAKEFS_OP_GET_BRANCH], 1);

    /* A 5xx that is not a refusal to start: the same. */
    hook_ctx h2 = {0};
    h2.then[LAKEFS_OP_CREATE_BRANCH] = 502;
    h2.then[LAKEFS_OP_GET_BRANCH] = 404;
    lakefs_client_free(client);
    c = new_client("http://127.0.0.1:1", &h2);
    assert_int_equal(create_branch(c, &id, &err), -EIO);
    assert_int_equal(h2.calls[LAKEFS_OP_CREATE_BRANCH], 1);
    assert_int_equal(h2.calls[LAKEFS_OP_GET_BRANCH], 1);
}

/* When the check cannot tell either: -EIO saying so, and still one try. */
static void test_unknown_outcome_is_eio(void **state)
{
    (void)state;
    hook_ctx h = {0};
    h.then[LAKEFS_OP_CREATE_BRANCH] = -ETIMEDOUT;
    h.then[LAKEFS_OP_GET_BRANCH] = -ETIMEDOUT;
    lakefs_client *c = new_client("http://127.0.0.1:1", &h);
    char *id;
    lakefs_error err = {0};
    assert_int_equal(create_branch(c, &id, &err), -EIO);
    assert_non_null(strstr(err.message, "outcome is unknown"));
    assert_int_equal(h.calls[LAKEFS_OP_CREATE_BRANCH], 1);
    assert_int_equal(h.calls[LAKEFS_OP_GET_BRANCH], 4); /* idempotent */
    lakefs_op_stats st;
    lakefs_client_op_stats(c, LAKEFS_OP_CREATE_BRANCH, &st);
    assert_int_equal(st.failures, 1);
}

/* deleteBranch is sent again after a cut answer; a 404 then means the
 * first attempt deleted it: success. A 404 at once is still ENOENT. */
static void test_delete_branch_lost_answer(void **state)
{
    (void)state;
    hook_ctx h = {0};
    h.script[LAKEFS_OP_DELETE_BRANCH][0] = -ECONNRESET;
    h.len[LAKEFS_OP_DELETE_BRANCH] = 1;
    h.then[LAKEFS_OP_DELETE_BRANCH] = 404;
    lakefs_client *c = new_client("http://127.0.0.1:1", &h);
    lakefs_error err = {0};
    assert_int_equal(lakefs_delete_branch(c, "repo", "dev", &err), 0);
    assert_int_equal(h.calls[LAKEFS_OP_DELETE_BRANCH], 2);
    assert_int_equal(lakefs_delete_branch(c, "repo", "dev", &err), -ENOENT);
    assert_int_equal(h.calls[LAKEFS_OP_DELETE_BRANCH], 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_url_check, free_client),
        cmocka_unit_test_teardown(test_https_endpoint_uses_https_only,
                                  free_client),
        cmocka_unit_test_teardown(test_idempotency_classes, free_client),
        cmocka_unit_test(test_caller_retry_of_idempotent_requests),
        cmocka_unit_test_teardown(test_never_sent_is_retried, free_client),
        cmocka_unit_test_teardown(test_cut_is_checked_not_resent,
                                  free_client),
        cmocka_unit_test_teardown(test_unknown_outcome_is_eio, free_client),
        cmocka_unit_test_teardown(test_delete_branch_lost_answer,
                                  free_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
