/*
 * lakefs_internal.h - what the client's own files share and nobody else
 * sees: the client struct, one HTTP exchange with retries (lakefs_http.c),
 * and JSON parsing into the public structs (lakefs_json.c).
 * Only lakefs_http.c talks to libcurl; only lakefs_json.c to cJSON.
 */
#ifndef LAKEFUSE_LAKEFS_INTERNAL_H
#define LAKEFUSE_LAKEFS_INTERNAL_H

#include "lakefs.h"
#include "strbuf.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#define LAKEFS_POOL_MAX 32
/* A JSON answer bigger than this is refused: a listing page of 1000
 * objects with metadata is well under 2 MiB. Bounds memory per call. */
#define LAKEFS_JSON_BODY_MAX (16u << 20)
/* All JSON answers being read at once, by every thread of one client:
 * 32 FUSE threads could otherwise hold 32 bodies of the cap. */
#define LAKEFS_JSON_BUDGET (64u << 20)

enum lakefs_counter {
    COUNTER_REQUESTS,
    COUNTER_RETRIES,
    COUNTER_FAILURES,
    COUNTER_BYTES_RECEIVED,
    COUNTER_BYTES_SENT,
    COUNTER_KINDS
};

struct lakefs_client {
    char *base_url; /* ".../api/v1", no trailing slash */
    char *access_key_id;
    char *secret_access_key;
    char *user_agent;
    char *ca_file; /* NULL: the system's trust store */
    long connect_timeout_ms;
    long request_timeout_ms;
    long stall_timeout_ms;
    unsigned max_attempts;
    long retry_base_ms;
    long retry_max_delay_ms;
    long retry_budget_ms;
    lakefs_fault_hook fault_hook;
    void *fault_ctx;
    bool https_only;          /* the endpoint is https: so is every URL */
    size_t json_body_max;     /* one JSON answer */
    size_t json_budget;       /* every JSON answer in flight */
    _Atomic size_t json_in_flight; /* bytes held against json_budget */

    pthread_mutex_t pool_lock;
    void *pool[LAKEFS_POOL_MAX]; /* idle CURL easy handles (keep-alive) */
    /* DNS cache and TLS sessions shared by every handle (a CURLSH, NULL
     * when it could not be made); connections stay per handle. */
    void *share;
    pthread_mutex_t share_locks[2];
    size_t pool_count;

    _Atomic uint64_t counters[LAKEFS_OP_COUNT][COUNTER_KINDS];
    _Atomic uint64_t jitter_state;
};

/* One request. Exactly one body source may be set: json_body, or body_fd
 * with body_size. Exactly one sink: none (JSON/text into response body,
 * bounded), or sink_buf/sink_cap, or sink_fd. */
typedef struct http_request {
    lakefs_op op;
    const char *method;
    const char *path_and_query; /* under base_url, already escaped */
    const char *absolute_url;   /* presigned: used instead, sent with no
                                   credentials */
    const char *json_body;
    int body_fd;                /* -1: none */
    int64_t body_offset;        /* where the body starts in body_fd (read
                                   with pread: a regular file) */
    int64_t body_size;
    const char *content_type;   /* of the fd body */
    const char *const *extra_headers; /* NULL-terminated, may be NULL */
    uint64_t range_offset;
    size_t range_len;           /* 0: no Range header */
    void *sink_buf;
    size_t sink_cap;
    int sink_fd;                /* -1: none */
    bool no_redirect_follow;    /* report 3xx + Location to the caller */
    bool maybe_applied;         /* out (lakefs_call): failed, but the
                                   server may have applied the request */
} http_request;

typedef struct http_response {
    int status;
    strbuf body;            /* JSON/text answers and error bodies */
    size_t sink_written;    /* bytes delivered to sink_buf/sink_fd */
    uint64_t sink_received; /* body bytes of a 2xx answer meant for the
                               sink, before a 200 answer to a Range was
                               cut down to the range */
    char *location;
    char *etag;
    char *content_md5;
    char *content_range;
    char *content_type;
    bool maybe_applied;     /* a failure that may have reached the server
                               (a non-idempotent request is not retried) */
    size_t budget_held;     /* bytes of body counted in *budget */
    _Atomic size_t *budget;
} http_response;

void http_request_init(http_request *req, lakefs_op op, const char *method);
/* false for an operation whose repetition is not harmless (commit, merge,
 * createBranch, link, copy, ...): it is retried only when the request
 * provably never reached the server, and after an ambiguous failure the
 * caller checks the outcome (lakefs_outcome.c). */
bool lakefs_op_is_idempotent(lakefs_op op);
/* Commit and merge: no total timeout, they wait as long as the server
 * holds the connection open; the stall guard starts with the answer. */
bool lakefs_op_is_long_running(lakefs_op op);
/* lakefs_url_check with the endpoint's scheme rule given; who names the
 * URL in the message ("from the server", "as endpoint"). */
int lakefs_url_check_scheme(bool https_only, const char *url, const char *who,
                            lakefs_error *err);
/* Runs the request with retries. Returns 0 on a 2xx (or a 3xx when
 * no_redirect_follow), else a negative errno with err filled. The response
 * must be released with http_response_release in every case. */
int http_execute(lakefs_client *c, const http_request *req,
                 http_response *resp, lakefs_error *err);
void http_response_release(http_response *resp);

/* Runs req and, on success, hands the body to parse (when parse and out
 * are not NULL: a caller that wants no result passes out NULL). out (of
 * out_size bytes) is zeroed first, so it is zeroed on any failure.
 * A parse failure counts as a failure of the operation. The url strbuf,
 * when given, is checked for allocation failure and released. */
typedef int (*response_parser)(const char *body, size_t len, void *out,
                               lakefs_error *err);
int lakefs_call(lakefs_client *c, http_request *req, strbuf *url,
                response_parser parse, void *out, size_t out_size,
                lakefs_error *err);

/* lakefs_call with a JSON body built by a lakefs_json_* function: NULL
 * (allocation failure) is -ENOMEM; the body is freed here. */
int lakefs_call_json(lakefs_client *c, http_request *req, strbuf *url,
                     char *json_body, response_parser parse, void *out,
                     size_t out_size, lakefs_error *err);

/* Shared small helpers. */
void lakefs_error_set(lakefs_error *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void lakefs_count_failure(lakefs_client *c, lakefs_op op);
/* Appends "&name=value" (or "?name=value" for the first parameter). */
void url_add_param(strbuf *url, const char *name, const char *value);
void url_add_int_param(strbuf *url, const char *name, long long value);
/* "/" + segment, percent-encoded ("/" too); "." and ".." become "%2E" and
 * "%2E%2E" so that no name changes the request path. */
void url_add_segment(strbuf *url, const char *segment);
/* Adds prefix/after/amount from p (which may be NULL); the list variant
 * adds delimiter too (listObjects and the diffs take it). */
void url_add_page_params(strbuf *url, const lakefs_list_params *p);
void url_add_list_params(strbuf *url, const lakefs_list_params *p);

/* JSON parsing, each returning 0 or -EPROTO (message in err). The `body`
 * need not be NUL-terminated. Out structs are zeroed on failure. */
int lakefs_parse_error_message(const char *body, size_t len, char *msg,
                               size_t cap);
int lakefs_parse_repository(const char *body, size_t len,
                            lakefs_repository *out, lakefs_error *err);
int lakefs_parse_repository_list(const char *body, size_t len,
                                 lakefs_repository_list *out,
                                 lakefs_error *err);
int lakefs_parse_ref(const char *body, size_t len, lakefs_ref *out,
                     lakefs_error *err);
int lakefs_parse_ref_list(const char *body, size_t len, lakefs_ref_list *out,
                          lakefs_error *err);
int lakefs_parse_commit(const char *body, size_t len, lakefs_commit *out,
                        lakefs_error *err);
int lakefs_parse_commit_list(const char *body, size_t len,
                             lakefs_commit_list *out, lakefs_error *err);
int lakefs_parse_object_stats(const char *body, size_t len,
                              lakefs_object_stats *out, lakefs_error *err);
int lakefs_parse_object_list(const char *body, size_t len,
                             lakefs_object_list *out, lakefs_error *err);
int lakefs_parse_diff_list(const char *body, size_t len, lakefs_diff_list *out,
                           lakefs_error *err);
int lakefs_parse_staging_location(const char *body, size_t len,
                                  lakefs_staging_location *out,
                                  lakefs_error *err);
int lakefs_parse_config(const char *body, size_t len, lakefs_config *out,
                        lakefs_error *err);
int lakefs_parse_current_user(const char *body, size_t len, lakefs_user *out,
                              lakefs_error *err);
int lakefs_parse_object_error_list(const char *body, size_t len,
                                   lakefs_object_error_list *out,
                                   lakefs_error *err);
int lakefs_parse_merge_result(const char *body, size_t len, char **reference,
                              lakefs_error *err);
/* UploadTo {"presigned_url"} (uploadPart's answer). */
int lakefs_parse_upload_to(const char *body, size_t len, char **url,
                           lakefs_error *err);
int lakefs_parse_multipart_upload(const char *body, size_t len,
                                  lakefs_multipart_upload *out,
                                  lakefs_error *err);

/* Outcome checks after an ambiguous failure of a non-idempotent request
 * (lakefs_outcome.c): 1 applied (out filled as the call would have), 0 not
 * applied, or a negative errno when it cannot be known. */
int lakefs_outcome_commit(lakefs_client *c, const char *repo,
                          const char *branch, const char *old_head,
                          const char *message, const lakefs_metadata *md,
                          lakefs_commit *out, lakefs_error *err);
int lakefs_outcome_merge(lakefs_client *c, const char *repo,
                         const char *dest, const char *old_head,
                         const lakefs_merge_options *opt, char **reference,
                         lakefs_error *err);
int lakefs_outcome_branch(lakefs_client *c, const char *repo,
                          const char *name, const char *source,
                          char **commit_id, lakefs_error *err);
int lakefs_outcome_tag(lakefs_client *c, const char *repo, const char *tag,
                       const char *target, lakefs_ref *out,
                       lakefs_error *err);
/* link and multipart complete: the object has this physical address (and
 * checksum, when not NULL). */
int lakefs_outcome_object(lakefs_client *c, const char *repo,
                          const char *branch, const char *path,
                          const char *physical_address, const char *checksum,
                          lakefs_object_stats *out, lakefs_error *err);
/* copy: the destination holds the source's bytes, metadata and content
 * type (the object the copy makes, or one no different from it). */
int lakefs_outcome_copy(lakefs_client *c, const char *repo,
                        const char *branch, const char *src_path,
                        const char *src_ref, const char *dest_path,
                        lakefs_object_stats *out, lakefs_error *err);
int lakefs_outcome_repository(lakefs_client *c, const char *name,
                              const char *storage_namespace,
                              lakefs_repository *out, lakefs_error *err);
/* A failure lakefs_retry_idempotent tries again: one the request may
 * have come through (a 5xx, a cut or garbled answer, a timeout). */
bool lakefs_failure_transient(int rc);
/* An idempotent request's last failure (lakefs_*_settled): the object
 * at path is gone; it holds exactly md as its user metadata. */
int lakefs_outcome_deleted(lakefs_client *c, const char *repo,
                           const char *branch, const char *path,
                           lakefs_error *err);
int lakefs_outcome_user_metadata(lakefs_client *c, const char *repo,
                                 const char *branch, const char *path,
                                 const lakefs_metadata *md,
                                 lakefs_error *err);
/* The call's result from its rc and the check's outcome: 0 when applied
 * (err cleared, the failure uncounted), rc when not, -EIO with both
 * messages when unknown. */
int lakefs_outcome_settle(lakefs_client *c, lakefs_op op, int rc,
                          int outcome, const lakefs_error *check_err,
                          lakefs_error *err);

/* JSON bodies for requests; NULL on allocation failure. */
char *lakefs_json_commit_creation(const char *message,
                                  const lakefs_metadata *metadata,
                                  bool allow_empty);
char *lakefs_json_merge(const lakefs_merge_options *opt);
char *lakefs_json_branch_creation(const char *name, const char *source);
char *lakefs_json_tag_creation(const char *id, const char *ref);
char *lakefs_json_repository_creation(const char *name,
                                      const char *storage_namespace,
                                      const char *default_branch);
char *lakefs_json_reset(const char *type, const char *path);
char *lakefs_json_copy(const char *src_path, const char *src_ref);
char *lakefs_json_user_metadata(const lakefs_metadata *set);
char *lakefs_json_path_list(const char *const *paths, size_t count);
char *lakefs_json_staging_metadata(const lakefs_staging_location *staging,
                                   const char *checksum, int64_t size_bytes,
                                   const lakefs_metadata *user_metadata,
                                   const char *content_type);
char *lakefs_json_complete_multipart(const char *physical_address,
                                     const lakefs_upload_part *parts,
                                     size_t count,
                                     const lakefs_metadata *user_metadata,
                                     const char *content_type);
char *lakefs_json_abort_multipart(const char *physical_address);

#endif
