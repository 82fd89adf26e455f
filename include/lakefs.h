/*
 * lakefs.h - a small typed C client for the lakeFS REST API (v1).
 *
 * One function per lakeFS operation that lakefuse needs. It knows HTTP and
 * JSON and nothing of FUSE; any program may use it. It never holds a whole
 * object in memory: object bodies stream from and to file descriptors or
 * caller-sized buffers.
 */
#ifndef LAKEFS_H
#define LAKEFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Error convention
 * ----------------
 * Every function that can fail returns 0 on success or a negative errno.
 * When the caller passes a non-NULL `lakefs_error *`, it is filled with the
 * HTTP status (0 for transport or parse errors) and a message: the server's
 * own `message` where it sent one, otherwise a description of the failure.
 * The message never contains credentials.
 *
 * HTTP status -> errno (after retries, see below):
 *   400 Bad Request            -EINVAL
 *   401 Unauthorized           -EACCES  (lakeFS also uses it for policy denials)
 *   403 Forbidden              -EPERM
 *   404 Not Found              -ENOENT
 *   409 Conflict               -EEXIST
 *   410 Gone                   -EIO     (object data expired)
 *   412 Precondition Failed    -EEXIST
 *   416 Range Not Satisfiable  -ERANGE
 *   420, 429 Too Many Requests -EAGAIN
 *   501 Not Implemented        -EOPNOTSUPP
 *   other 4xx                  -EINVAL
 *   5xx                        -EIO
 *   unexpected 1xx/3xx         -EPROTO
 * Transport failures: timeout or a stalled transfer -ETIMEDOUT, connection
 * refused -ECONNREFUSED,
 * unknown host -EHOSTUNREACH, other -EIO. A malformed, truncated or
 * mistyped response body is -EPROTO. Allocation failure is -ENOMEM.
 *
 * Retries
 * -------
 * 429, 420, 503, 500 "branch is currently locked" and transport errors are
 * retried with exponential backoff and full jitter, bounded both by
 * `max_attempts` and by `retry_budget_ms`. Other 4xx are never retried. An
 * upload is retried only when its body can be re-read (a regular file read
 * with pread); a pipe or socket body is sent once.
 * Operations whose repetition is not harmless (commit, merge,
 * createBranch, createTag, createRepository, linkPhysicalAddress,
 * completePresignMultipartUpload, copyObject) are retried only when the
 * request provably never reached the server (connection refused, DNS,
 * TLS handshake, 429/420/503/locked). After an ambiguous failure (a
 * timeout, a cut connection, a 5xx, a garbled answer) the function asks
 * the server whether the request was applied (did the branch head move
 * to a commit with this message, parent and metadata? does the branch,
 * the object with this address/checksum exist?) and reports success
 * exactly when it was; when even that cannot be known, -EIO with
 * "outcome unknown" in the message.
 *
 * URLs
 * ----
 * Only http and https are spoken, for every request and redirect; with an
 * https endpoint, only https (lakefs_url_check).
 *
 * Ownership
 * ---------
 * Result structs are filled by the call and owned by the caller, who frees
 * them with the matching `*_free` function (which also zeroes them, so a
 * double free is harmless). On failure the out struct is left zeroed.
 * Input strings are only borrowed for the duration of the call.
 */

#define LAKEFS_ERROR_MESSAGE_MAX 512

typedef struct lakefs_error {
    int status; /* HTTP status, 0 when no response was received */
    bool not_applied; /* the failed request provably changed nothing: every
                         try was refused (a 4xx, 429, 503, "locked") or never
                         sent (connection refused, DNS, TLS). false when a
                         try may have been applied, or it cannot be told */
    char message[LAKEFS_ERROR_MESSAGE_MAX];
} lakefs_error;

/* Operations, named by the spec's operationId (see lakefs_op_name). The
 * client counts requests per operation: lakefuse's .lakefs/stats and the
 * tests read these. */
typedef enum lakefs_op {
    LAKEFS_OP_HEALTH_CHECK,
    LAKEFS_OP_GET_CONFIG,
    LAKEFS_OP_GET_CURRENT_USER,
    LAKEFS_OP_LIST_REPOSITORIES,
    LAKEFS_OP_GET_REPOSITORY,
    LAKEFS_OP_CREATE_REPOSITORY,
    LAKEFS_OP_LIST_BRANCHES,
    LAKEFS_OP_GET_BRANCH,
    LAKEFS_OP_CREATE_BRANCH,
    LAKEFS_OP_DELETE_BRANCH,
    LAKEFS_OP_LIST_TAGS,
    LAKEFS_OP_CREATE_TAG,
    LAKEFS_OP_GET_COMMIT,
    LAKEFS_OP_LOG_COMMITS,
    LAKEFS_OP_LIST_OBJECTS,
    LAKEFS_OP_STAT_OBJECT,
    LAKEFS_OP_GET_OBJECT,
    LAKEFS_OP_UPLOAD_OBJECT,
    LAKEFS_OP_DELETE_OBJECT,
    LAKEFS_OP_DELETE_OBJECTS,
    LAKEFS_OP_COPY_OBJECT,
    LAKEFS_OP_UPDATE_OBJECT_USER_METADATA,
    LAKEFS_OP_GET_PHYSICAL_ADDRESS,
    LAKEFS_OP_LINK_PHYSICAL_ADDRESS,
    LAKEFS_OP_CREATE_PRESIGN_MULTIPART_UPLOAD,
    LAKEFS_OP_COMPLETE_PRESIGN_MULTIPART_UPLOAD,
    LAKEFS_OP_ABORT_PRESIGN_MULTIPART_UPLOAD,
    LAKEFS_OP_UPLOAD_PART,
    LAKEFS_OP_DIFF_BRANCH,
    LAKEFS_OP_DIFF_REFS,
    LAKEFS_OP_COMMIT,
    LAKEFS_OP_MERGE_INTO_BRANCH,
    LAKEFS_OP_RESET_BRANCH,
    LAKEFS_OP_PRESIGNED_GET, /* GET of a presigned URL (object store) */
    LAKEFS_OP_PRESIGNED_PUT, /* PUT to a presigned URL (object store) */
    LAKEFS_OP_COUNT
} lakefs_op;

/* The spec's operationId, e.g. "listObjects"; presigned transfers are
 * "presignedGet" / "presignedPut". Static storage. */
const char *lakefs_op_name(lakefs_op op);

/* Per-operation counters, updated atomically. */
typedef struct lakefs_op_stats {
    uint64_t requests;       /* HTTP requests sent, retries included */
    uint64_t retries;        /* of which were retries */
    uint64_t failures;       /* calls that returned an error */
    uint64_t bytes_received; /* response body bytes */
    uint64_t bytes_sent;     /* request body bytes */
} lakefs_op_stats;

/*
 * Fault hook, for fault-injection tests. Called before every HTTP attempt.
 * Return 0 to send the request, a negative errno to make this attempt fail
 * as a transport error would (and be retried as one), or an HTTP status
 * (>= 100) to make it answer that status with an empty body.
 */
typedef int (*lakefs_fault_hook)(void *ctx, lakefs_op op, unsigned attempt);

typedef struct lakefs_client_config {
    const char *endpoint;          /* http(s)://host[:port][/api/v1] */
    const char *access_key_id;
    const char *secret_access_key;
    long connect_timeout_ms;       /* 0: 10 s */
    long request_timeout_ms;       /* total, of one metadata call but commit
                                      and merge; 0: 60 s */
    long low_speed_timeout_s;      /* stall guard in seconds, when
                                      stall_timeout_ms is 0; 0: 60 s */
    long stall_timeout_ms;         /* a transfer aborts (-ETIMEDOUT) when
                                      no byte moved this long: data
                                      transfers and metadata calls from
                                      their start; commit and merge, which
                                      have no total timeout and wait while
                                      the connection lives (TCP
                                      keepalive), from their answer's
                                      first byte. 0: low_speed_timeout_s */
    size_t json_body_max;          /* largest JSON answer read into memory
                                      (larger: -EFBIG); 0: 16 MiB */
    size_t json_budget;            /* all JSON answers in flight at once in
                                      this client (beyond: -ENOBUFS);
                                      0: 64 MiB */
    unsigned max_attempts;         /* 0: 6 (first try + 5 retries) */
    long retry_base_ms;            /* first backoff; 0: 100 ms */
    long retry_max_delay_ms;       /* cap of one backoff; 0: 5 s */
    long retry_budget_ms;          /* total time for one call; 0: 60 s */
    const char *user_agent;        /* NULL: "lakefuse/<version>" */
    const char *ca_file;           /* PEM certificates to trust for https
                                      instead of the system's; NULL: the
                                      system's */
    lakefs_fault_hook fault_hook;  /* NULL: none */
    void *fault_ctx;
} lakefs_client_config;

typedef struct lakefs_client lakefs_client;

/* Creates a client; the config's strings are copied. Returns NULL on bad
 * config (message in err) or allocation failure. Thread-safe after
 * creation: calls may run concurrently from any number of threads. */
lakefs_client *lakefs_client_new(const lakefs_client_config *config,
                                 lakefs_error *err);
void lakefs_client_free(lakefs_client *client);

/* The normalized API base URL ("http://host:port/api/v1"). */
const char *lakefs_client_base_url(const lakefs_client *client);

/* Checks a URL the server handed out (a presigned URL, a redirect's
 * Location) before anything is sent to it: http or https only (https only
 * when the client's endpoint is https), a host, no user:password@, no
 * control characters or spaces. 0, or -EPROTO with the reason in err.
 * Every request to such a URL is checked again by the client. */
int lakefs_url_check(const lakefs_client *client, const char *url,
                     lakefs_error *err);

/* Counters of one operation, and all of them reset to zero. */
void lakefs_client_op_stats(const lakefs_client *client, lakefs_op op,
                            lakefs_op_stats *out);
void lakefs_client_reset_stats(lakefs_client *client);

/* Maps an HTTP status to the negative errno of the table above. */
int lakefs_status_to_errno(int status);

/* ------------------------------------------------------------------ */
/* Models (plain structs, owned by the caller)                         */

typedef struct lakefs_kv {
    char *key;
    char *value;
} lakefs_kv;

typedef struct lakefs_metadata {
    lakefs_kv *items;
    size_t count;
} lakefs_metadata;

/* Value for key, or NULL. */
const char *lakefs_metadata_get(const lakefs_metadata *md, const char *key);
/* true when a and b hold the same keys with the same values (any order;
 * keys are unique in each). */
bool lakefs_metadata_equal(const lakefs_metadata *a, const lakefs_metadata *b);
/* Adds or replaces key (copied). */
int lakefs_metadata_set(lakefs_metadata *md, const char *key,
                        const char *value);
void lakefs_metadata_free(lakefs_metadata *md);

typedef struct lakefs_pagination {
    bool has_more;
    char *next_offset;
    int64_t results;
    int64_t max_per_page;
} lakefs_pagination;

/*
 * One walk over the pages of a paged call (repositories, branches, tags,
 * diffs, log, listObjects), with the guard every such walk needs: a page
 * that says has_more but gives no way forward - an empty page, an empty
 * next_offset, an offset that does not advance (ordered walks: names and
 * paths, whose offsets must increase bytewise) or one already seen (the
 * log: commit ids, which must never repeat) - ends the walk with -EPROTO
 * instead of looping; more than max_items items end it with -EFBIG.
 *
 *   lakefs_pager pg;
 *   lakefs_pager_init(&pg, true, limit);
 *   do { ask for the page after pg.after (NULL: the first);
 *        use its items; rc = lakefs_pager_next(&pg, &page.pagination,
 *        page.count, err); } while (rc == 0 && !pg.done);
 *   lakefs_pager_free(&pg);
 */
typedef struct lakefs_pager {
    char *after;        /* the next page's offset; NULL for the first */
    bool ordered;       /* offsets increase bytewise */
    bool done;          /* the last page was taken */
    uint64_t pages;     /* pages taken */
    uint64_t items;     /* items in them */
    uint64_t max_items; /* 0: no limit */
    uint64_t *seen;     /* unordered walks: hashes of the offsets met */
    size_t seen_count, seen_cap;
} lakefs_pager;

void lakefs_pager_init(lakefs_pager *p, bool ordered, uint64_t max_items);
/* Takes the pagination of the page just fetched, which held count items:
 * 0 (p->done when it was the last page, else p->after is the next
 * offset), -EPROTO (the pagination does not advance), -EFBIG (over
 * max_items) or -ENOMEM, with a message in err. */
int lakefs_pager_next(lakefs_pager *p, const lakefs_pagination *page,
                      size_t count, lakefs_error *err);
void lakefs_pager_free(lakefs_pager *p);

typedef struct lakefs_repository {
    char *id;
    char *default_branch;
    char *storage_namespace;
    char *storage_id; /* may be NULL */
    int64_t creation_date;
    bool read_only;
} lakefs_repository;

typedef struct lakefs_ref {
    char *id;
    char *commit_id;
} lakefs_ref;

typedef struct lakefs_commit {
    char *id;
    char **parents;
    size_t parent_count;
    char *committer;
    char *message;
    int64_t creation_date;
    char *meta_range_id;
    lakefs_metadata metadata;
    int64_t generation; /* 0 when absent */
} lakefs_commit;

typedef enum lakefs_path_type {
    LAKEFS_PATH_OBJECT,
    LAKEFS_PATH_COMMON_PREFIX
} lakefs_path_type;

typedef struct lakefs_object_stats {
    char *path;
    lakefs_path_type path_type;
    char *physical_address;          /* a URL when presigned */
    int64_t physical_address_expiry; /* epoch s; 0 when not presigned */
    char *checksum;
    int64_t size_bytes;
    int64_t mtime;
    char *content_type;              /* may be NULL */
    lakefs_metadata metadata;
} lakefs_object_stats;

typedef enum lakefs_diff_type {
    LAKEFS_DIFF_ADDED,
    LAKEFS_DIFF_REMOVED,
    LAKEFS_DIFF_CHANGED,
    LAKEFS_DIFF_CONFLICT,
    LAKEFS_DIFF_PREFIX_CHANGED
} lakefs_diff_type;

typedef struct lakefs_diff {
    lakefs_diff_type type;
    char *path;
    lakefs_path_type path_type;
    int64_t size_bytes; /* -1 when absent */
} lakefs_diff;

typedef struct lakefs_staging_location {
    char *physical_address;
    char *presigned_url; /* NULL unless presign was asked for */
    int64_t presigned_url_expiry;
} lakefs_staging_location;

/* A presigned multipart upload (createPresignMultipartUpload). */
typedef struct lakefs_multipart_upload {
    char *upload_id;
    char *physical_address; /* of the whole object, sent back on
                               complete and abort */
    char **presigned_urls;  /* url_count URLs, part 1 first */
    size_t url_count;
} lakefs_multipart_upload;

typedef struct lakefs_storage_config {
    char *blockstore_type;
    char *blockstore_id;            /* may be NULL */
    char *default_namespace_prefix; /* may be NULL */
    bool pre_sign_support;
    bool pre_sign_multipart_upload;
    bool import_support;
} lakefs_storage_config;

typedef struct lakefs_config {
    char *version;                   /* may be NULL */
    bool has_storage;                /* storage_config was present */
    lakefs_storage_config storage;
    lakefs_storage_config *storage_list;
    size_t storage_list_count;
} lakefs_config;

typedef struct lakefs_user {
    char *id;
    char *email; /* may be NULL */
    int64_t creation_date;
} lakefs_user;

typedef struct lakefs_object_error {
    int status_code;
    char *message;
    char *path; /* may be NULL */
} lakefs_object_error;

/* Pages: items plus the server's pagination. */
#define LAKEFS_DECLARE_LIST(name, type)                                       \
    typedef struct name {                                                     \
        type *items;                                                          \
        size_t count;                                                         \
        lakefs_pagination pagination;                                         \
    } name

LAKEFS_DECLARE_LIST(lakefs_repository_list, lakefs_repository);
LAKEFS_DECLARE_LIST(lakefs_ref_list, lakefs_ref);
LAKEFS_DECLARE_LIST(lakefs_commit_list, lakefs_commit);
LAKEFS_DECLARE_LIST(lakefs_object_list, lakefs_object_stats);
LAKEFS_DECLARE_LIST(lakefs_diff_list, lakefs_diff);

typedef struct lakefs_object_error_list {
    lakefs_object_error *items;
    size_t count;
} lakefs_object_error_list;

void lakefs_repository_free(lakefs_repository *repo);
void lakefs_ref_free(lakefs_ref *ref);
void lakefs_commit_free(lakefs_commit *commit);
void lakefs_object_stats_free(lakefs_object_stats *stats);
void lakefs_diff_free(lakefs_diff *diff);
void lakefs_staging_location_free(lakefs_staging_location *loc);
void lakefs_multipart_upload_free(lakefs_multipart_upload *upload);
void lakefs_storage_config_free(lakefs_storage_config *storage);
void lakefs_config_free(lakefs_config *config);
void lakefs_user_free(lakefs_user *user);
void lakefs_repository_list_free(lakefs_repository_list *list);
void lakefs_ref_list_free(lakefs_ref_list *list);
void lakefs_commit_list_free(lakefs_commit_list *list);
void lakefs_object_list_free(lakefs_object_list *list);
void lakefs_diff_list_free(lakefs_diff_list *list);
void lakefs_object_error_list_free(lakefs_object_error_list *list);

/* Deep copies (for caches). */
int lakefs_object_stats_copy(lakefs_object_stats *dst,
                             const lakefs_object_stats *src);

/* Paging parameters shared by the list calls; NULL/0 fields are omitted.
 * `amount` 0 lets the server choose (100); the maximum is 1000. */
typedef struct lakefs_list_params {
    const char *prefix;
    const char *after;
    const char *delimiter;
    int amount;
    bool presign;          /* listObjects only */
    bool no_user_metadata; /* listObjects only: user_metadata=false */
    bool two_dot;          /* diffRefs only: type=two_dot */
} lakefs_list_params;

/* ------------------------------------------------------------------ */
/* Setup, auth, configuration                                          */

int lakefs_health_check(lakefs_client *c, lakefs_error *err);
int lakefs_get_config(lakefs_client *c, lakefs_config *out, lakefs_error *err);
int lakefs_get_current_user(lakefs_client *c, lakefs_user *out,
                            lakefs_error *err);

/* The storage config that applies to a repository: the storage_list entry
 * whose blockstore_id equals storage_id, else the single storage_config.
 * Borrowed from config; NULL when there is none. */
const lakefs_storage_config *
lakefs_config_storage_for(const lakefs_config *config, const char *storage_id);

/* ------------------------------------------------------------------ */
/* Repositories, branches, tags, commits                               */

int lakefs_list_repositories(lakefs_client *c, const lakefs_list_params *p,
                             lakefs_repository_list *out, lakefs_error *err);
int lakefs_get_repository(lakefs_client *c, const char *repo,
                          lakefs_repository *out, lakefs_error *err);
/* default_branch NULL: "main". */
int lakefs_create_repository(lakefs_client *c, const char *name,
                             const char *storage_namespace,
                             const char *default_branch,
                             lakefs_repository *out, lakefs_error *err);

int lakefs_list_branches(lakefs_client *c, const char *repo,
                         const lakefs_list_params *p, lakefs_ref_list *out,
                         lakefs_error *err);
int lakefs_get_branch(lakefs_client *c, const char *repo, const char *branch,
                      lakefs_ref *out, lakefs_error *err);
/* source is any ref expression. *commit_id_out (may be NULL) receives the
 * commit id the server answers with (a malloc'd string). */
int lakefs_create_branch(lakefs_client *c, const char *repo, const char *name,
                         const char *source, char **commit_id_out,
                         lakefs_error *err);
int lakefs_delete_branch(lakefs_client *c, const char *repo,
                         const char *branch, lakefs_error *err);

int lakefs_list_tags(lakefs_client *c, const char *repo,
                     const lakefs_list_params *p, lakefs_ref_list *out,
                     lakefs_error *err);
int lakefs_create_tag(lakefs_client *c, const char *repo, const char *tag,
                      const char *ref, lakefs_ref *out, lakefs_error *err);

/* Any ref expression (commit id, short id, branch, tag, main~2, main@)
 * resolves to the commit it names. */
int lakefs_get_commit(lakefs_client *c, const char *repo, const char *ref,
                      lakefs_commit *out, lakefs_error *err);
/* Uses p->after and p->amount. */
int lakefs_log_commits(lakefs_client *c, const char *repo, const char *ref,
                       const lakefs_list_params *p, lakefs_commit_list *out,
                       lakefs_error *err);

/* ------------------------------------------------------------------ */
/* Objects: reading                                                    */

/* One page of listObjects. */
int lakefs_list_objects(lakefs_client *c, const char *repo, const char *ref,
                        const lakefs_list_params *p, lakefs_object_list *out,
                        lakefs_error *err);

/* The same page in two steps, so that the next page can be asked for
 * before this one is parsed: its body (free() it), then its parse. */
int lakefs_list_objects_body(lakefs_client *c, const char *repo,
                             const char *ref, const lakefs_list_params *p,
                             char **body, size_t *len, lakefs_error *err);
int lakefs_list_objects_parse(lakefs_client *c, const char *body, size_t len,
                              lakefs_object_list *out, lakefs_error *err);
/* A list body's pagination without parsing its results: 0 and *out (free
 * out->next_offset) when "pagination" is the body's first member (as
 * lakeFS writes it), else -ENOENT (or -ENOMEM). Only a hint: the full
 * parse is what counts. */
int lakefs_peek_pagination(const char *body, size_t len,
                           lakefs_pagination *out);

/* Pagination iterator over listObjects: walks every page, guarded by a
 * lakefs_pager (a pagination that does not advance is -EPROTO). */
typedef struct lakefs_object_iter {
    lakefs_client *client;
    char *repo, *ref, *prefix, *delimiter;
    int amount;
    bool presign, no_user_metadata;
    lakefs_object_list page;
    size_t pos;
    lakefs_pager pager; /* pager.after: the next page's offset */
    uint64_t pages_fetched;
} lakefs_object_iter;

int lakefs_object_iter_init(lakefs_object_iter *it, lakefs_client *c,
                            const char *repo, const char *ref,
                            const lakefs_list_params *p);
/* 1 and *out set (borrowed until the next call), 0 at the end, or a
 * negative errno (the iterator may be called again to retry the page). */
int lakefs_object_iter_next(lakefs_object_iter *it,
                            const lakefs_object_stats **out,
                            lakefs_error *err);
void lakefs_object_iter_free(lakefs_object_iter *it);

int lakefs_stat_object(lakefs_client *c, const char *repo, const char *ref,
                       const char *path, bool presign,
                       lakefs_object_stats *out, lakefs_error *err);

/*
 * Reads up to `len` bytes at `offset` into buf (a ranged GET). *out_len is
 * the number of bytes read: less than len only at the end of the object,
 * and 0 for an offset at or past the end. With presign the server's 302 is
 * followed without the Authorization header, keeping the Range.
 */
int lakefs_get_object_range(lakefs_client *c, const char *repo,
                            const char *ref, const char *path, bool presign,
                            uint64_t offset, size_t len, void *buf,
                            size_t *out_len, lakefs_error *err);
/* The same, but only when the object still has `checksum` (the ETag of the
 * answer, when checksum is not NULL): else -ESTALE and no bytes. Reading a
 * branch by path can meet a newer object than the one listed; data cached
 * by checksum must never mix the two. */
int lakefs_get_object_range_checked(lakefs_client *c, const char *repo,
                                    const char *ref, const char *path,
                                    bool presign, const char *checksum,
                                    uint64_t offset, size_t len, void *buf,
                                    size_t *out_len, lakefs_error *err);
/* The same from an already presigned URL (physical_address of a presigned
 * stat or listing): no lakeFS call, no credentials sent. */
int lakefs_get_url_range(lakefs_client *c, const char *url, uint64_t offset,
                         size_t len, void *buf, size_t *out_len,
                         lakefs_error *err);

/*
 * What a ranged read of a listed object is held to. Every answer must be
 * the range asked for and nothing else (a 206 whose Content-Range names
 * exactly the bytes sent, or a 200 carrying the whole object, of which the
 * range is kept): an error page sent with 200, a shifted or missing
 * Content-Range, a short or long body is -EPROTO, with no bytes. With
 * object_size (>= 0) the answer must also be of an object of that size.
 */
typedef struct lakefs_range_check {
    const char *etag;    /* in: the answer's ETag must name it, else
                            -ESTALE (reading a branch by path); NULL: any */
    int64_t object_size; /* in: the size the listing gave; -1: unknown */
    bool content_unverified; /* out: the whole object was read and its MD5
                                is not the plain-MD5 ETag it came with
                                (wrong bytes, or a store whose ETags are no
                                MD5, such as SSE-KMS): serve, never cache */
} lakefs_range_check;

/* lakefs_get_object_range / lakefs_get_url_range held to check (may be
 * NULL: the answer is still checked to be the range asked for). */
int lakefs_read_object_range(lakefs_client *c, const char *repo,
                             const char *ref, const char *path, bool presign,
                             lakefs_range_check *check, uint64_t offset,
                             size_t len, void *buf, size_t *out_len,
                             lakefs_error *err);
int lakefs_read_url_range(lakefs_client *c, const char *url,
                          lakefs_range_check *check, uint64_t offset,
                          size_t len, void *buf, size_t *out_len,
                          lakefs_error *err);
/* Streams the whole object into fd with pwrite from file offset 0;
 * *out_size gets the object size. */
int lakefs_get_object_to_fd(lakefs_client *c, const char *repo,
                            const char *ref, const char *path, bool presign,
                            int fd, int64_t *out_size, lakefs_error *err);

/* ------------------------------------------------------------------ */
/* Objects: writing (all on a branch)                                  */

/* The longest object path lakeFS accepts, in bytes (catalog.MaxPathLength
 * in lakeFS's pkg/catalog/validate.go): a longer one is refused with 400. */
#define LAKEFS_MAX_PATH_LENGTH 1024

typedef struct lakefs_upload_options {
    const char *content_type;       /* NULL: application/octet-stream */
    const lakefs_metadata *metadata; /* user metadata; keys that start
                                        with "::lakefs::" are sent as the
                                        internal ones lakectl uses */
    bool if_none_match;             /* create only: EEXIST if present */
} lakefs_upload_options;

/* uploadObject with the raw body streamed from fd (size bytes from file
 * offset 0 when fd is a regular file, else read sequentially once). */
int lakefs_upload_object_fd(lakefs_client *c, const char *repo,
                            const char *branch, const char *path, int fd,
                            int64_t size, const lakefs_upload_options *opt,
                            lakefs_object_stats *out, lakefs_error *err);
/* Deleting a missing path succeeds, as on the server. */
int lakefs_delete_object(lakefs_client *c, const char *repo,
                         const char *branch, const char *path,
                         lakefs_error *err);
/* Up to 1000 paths; per-path failures come back in *failed (may be NULL
 * when the caller does not care; they still make the call fail with the
 * first one's errno). */
int lakefs_delete_objects(lakefs_client *c, const char *repo,
                          const char *branch, const char *const *paths,
                          size_t count, lakefs_object_error_list *failed,
                          lakefs_error *err);
/* src_ref NULL: the destination branch. */
int lakefs_copy_object(lakefs_client *c, const char *repo, const char *branch,
                       const char *src_path, const char *src_ref,
                       const char *dest_path, lakefs_object_stats *out,
                       lakefs_error *err);
/* A caller's own retry of a request whose repetition leaves the same state
 * (a delete, a metadata update, a copy onto the same name), after a
 * failure the client does not retry itself (a 5xx, a cut or garbled
 * answer): up to LAKEFS_IDEMPOTENT_TRIES tries in all. true: try again
 * (*tries counts). A rename or an unlink half done under a flaky server is
 * worse than a slow one. */
#define LAKEFS_IDEMPOTENT_TRIES 4
bool lakefs_retry_idempotent(int rc, int *tries);

/* Replaces all user metadata (no data re-upload). */
int lakefs_update_object_user_metadata(lakefs_client *c, const char *repo,
                                       const char *branch, const char *path,
                                       const lakefs_metadata *set,
                                       lakefs_error *err);

/* deleteObject and updateObjectUserMetadata tried as
 * lakefs_retry_idempotent says, their outcome settled: when every try failed after it may have reached the
 * server (answers lost, a 5xx), one statObject says whether it was
 * applied after all - the object gone (a delete), the object holding
 * exactly `set` (a metadata update) - and then the call succeeds. A
 * delete of a missing path succeeds. */
int lakefs_delete_object_settled(lakefs_client *c, const char *repo,
                                 const char *branch, const char *path,
                                 lakefs_error *err);
int lakefs_update_object_user_metadata_settled(lakefs_client *c,
                                               const char *repo,
                                               const char *branch,
                                               const char *path,
                                               const lakefs_metadata *set,
                                               lakefs_error *err);

/* Staging flow: get an address, PUT the bytes to its presigned URL, link. */
int lakefs_get_physical_address(lakefs_client *c, const char *repo,
                                const char *branch, const char *path,
                                bool presign, lakefs_staging_location *out,
                                lakefs_error *err);
/* PUTs size bytes from fd to a presigned URL without lakeFS credentials.
 * *checksum_out (may be NULL) receives the store's checksum as lakectl
 * derives it (Content-MD5 as hex, else the ETag unquoted). */
int lakefs_put_presigned_fd(lakefs_client *c, const char *url, int fd,
                            int64_t size, const char *content_type,
                            char **checksum_out, lakefs_error *err);
int lakefs_link_physical_address(lakefs_client *c, const char *repo,
                                 const char *branch, const char *path,
                                 const lakefs_staging_location *staging,
                                 const char *checksum, int64_t size_bytes,
                                 const lakefs_upload_options *opt,
                                 lakefs_object_stats *out, lakefs_error *err);

/* Presigned multipart upload (experimental in lakeFS; offered when the
 * storage config says pre_sign_multipart_upload): create with one
 * presigned URL per part, PUT each part to its URL, complete with the
 * parts' ETags in ascending order. Every part but the last must be at
 * least 5 MiB on S3; there are at most 10000 parts. Abort on failure, or
 * the store keeps the parts until its own cleanup. */
#define LAKEFS_MULTIPART_MAX_PARTS 10000
#define LAKEFS_MULTIPART_MIN_PART_SIZE (5LL << 20)

/* parts: 1..LAKEFS_MULTIPART_MAX_PARTS URLs wanted (0: none). */
int lakefs_create_presign_multipart(lakefs_client *c, const char *repo,
                                    const char *branch, const char *path,
                                    int parts, lakefs_multipart_upload *out,
                                    lakefs_error *err);
/* PUTs size bytes of fd, read with pread from file offset `offset`, to a
 * presigned URL without lakeFS credentials; fd must be a regular file
 * when offset is not 0 (else -ESPIPE). A retry re-reads from `offset`.
 * *etag_out (may be NULL) receives the ETag header as the store sent it
 * (quotes included): what completing the upload sends back. */
int lakefs_put_presigned_range_fd(lakefs_client *c, const char *url, int fd,
                                  int64_t offset, int64_t size,
                                  char **etag_out, lakefs_error *err);

typedef struct lakefs_upload_part {
    int part_number;  /* 1-based */
    const char *etag; /* as lakefs_put_presigned_range_fd returned it */
} lakefs_upload_part;

/* A fresh presigned URL for part part_number (1..10000) of an upload in
 * flight (uploadPart), when the one from create has expired. *url_out is
 * malloc'd. */
int lakefs_upload_part_url(lakefs_client *c, const char *repo,
                           const char *branch, const char *path,
                           const char *upload_id, int part_number,
                           const char *physical_address, char **url_out,
                           lakefs_error *err);

/* parts in ascending part_number; *out (may be NULL) gets the staged
 * object's stats. opt (may be NULL): content_type and
 * metadata are stored with the object, user metadata keys as they are
 * (as lakefs_link_physical_address does); if_none_match has no
 * equivalent on this endpoint and is refused (-EINVAL). */
int lakefs_complete_presign_multipart(
    lakefs_client *c, const char *repo, const char *branch, const char *path,
    const char *upload_id, const char *physical_address,
    const lakefs_upload_part *parts, size_t count,
    const lakefs_upload_options *opt, lakefs_object_stats *out,
    lakefs_error *err);
int lakefs_abort_presign_multipart(lakefs_client *c, const char *repo,
                                   const char *branch, const char *path,
                                   const char *upload_id,
                                   const char *physical_address,
                                   lakefs_error *err);

/* ------------------------------------------------------------------ */
/* Diff, commit, merge, reset                                          */

/* Uncommitted changes of a branch (one page). */
int lakefs_diff_branch(lakefs_client *c, const char *repo, const char *branch,
                       const lakefs_list_params *p, lakefs_diff_list *out,
                       lakefs_error *err);
/* Changes from left to right, three-dot unless p->two_dot (one page). */
int lakefs_diff_refs(lakefs_client *c, const char *repo, const char *left,
                     const char *right, const lakefs_list_params *p,
                     lakefs_diff_list *out, lakefs_error *err);

/* metadata may be NULL. -EINVAL with "commit: no changes" when nothing is
 * staged and !allow_empty. */
int lakefs_commit_branch(lakefs_client *c, const char *repo, const char *branch,
                         const char *message, const lakefs_metadata *metadata,
                  bool allow_empty, lakefs_commit *out, lakefs_error *err);

typedef struct lakefs_merge_options {
    const char *message;             /* NULL: server default */
    const lakefs_metadata *metadata;
    const char *strategy;            /* NULL, "dest-wins" or "source-wins" */
    bool allow_empty;
    bool force;
    bool squash;
} lakefs_merge_options;

/* Merges source_ref into dest_branch; *reference_out (may be NULL) gets the
 * resulting commit id. A conflict is -EEXIST (409). */
int lakefs_merge(lakefs_client *c, const char *repo, const char *source_ref,
                 const char *dest_branch, const lakefs_merge_options *opt,
                 char **reference_out, lakefs_error *err);

typedef enum lakefs_reset_type {
    LAKEFS_RESET_OBJECT,        /* one path */
    LAKEFS_RESET_COMMON_PREFIX, /* everything under a prefix */
    LAKEFS_RESET_ALL            /* every uncommitted change */
} lakefs_reset_type;

int lakefs_reset_branch(lakefs_client *c, const char *repo,
                        const char *branch, lakefs_reset_type type,
                        const char *path, lakefs_error *err);

#ifdef __cplusplus
}
#endif

#endif /* LAKEFS_H */
