/*
 * lakefs_http.c - the client's transport: a pool of keep-alive curl
 * handles, one request with bounded retries, and the status/errno map.
 * The only file that calls libcurl. It never logs or returns credentials,
 * never retries a request whose body cannot be sent again, never retries a
 * non-idempotent one that may have reached the server, and speaks only
 * http and https (https only, when the endpoint is https).
 */
#include "lakefs_internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef LAKEFUSE_VERSION
#define LAKEFUSE_VERSION "0.0.0"
#endif

/* Error bodies are read into memory only this far. */
#define ERROR_BODY_MAX (64u << 10)

static pthread_once_t curl_init_once = PTHREAD_ONCE_INIT;
static int curl_init_result;

static void curl_global_setup(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK
                           ? 0
                           : -EIO;
}

/* ------------------------------------------------------------------ */
/* Small shared helpers                                                */

void lakefs_error_set(lakefs_error *err, int status, const char *fmt, ...)
{
    if (!err)
        return;
    err->status = status;
    err->not_applied = false; /* http_execute says when it knows better */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

void lakefs_count_failure(lakefs_client *c, lakefs_op op)
{
    atomic_fetch_add(&c->counters[op][COUNTER_FAILURES], 1);
}

static void count(lakefs_client *c, lakefs_op op, enum lakefs_counter kind,
                  uint64_t n)
{
    atomic_fetch_add(&c->counters[op][kind], n);
}

void url_add_param(strbuf *url, const char *name, const char *value)
{
    int first = !url->data || !strchr(url->data, '?');
    strbuf_puts(url, first ? "?" : "&");
    strbuf_put_escaped(url, name);
    strbuf_puts(url, "=");
    strbuf_put_escaped(url, value);
}

void url_add_int_param(strbuf *url, const char *name, long long value)
{
    char num[32];
    snprintf(num, sizeof(num), "%lld", value);
    url_add_param(url, name, num);
}

void url_add_segment(strbuf *url, const char *segment)
{
    strbuf_puts(url, "/");
    /* "." and ".." are dot segments that libcurl (RFC 3986) would remove
     * with the segment before them: a branch named ".." would turn
     * DELETE .../branches/.. into DELETE /repositories/REPO. Escaped,
     * they are names like any other. */
    if (strcmp(segment, ".") == 0 || strcmp(segment, "..") == 0) {
        for (const char *p = segment; *p; p++)
            strbuf_puts(url, "%2E");
        return;
    }
    strbuf_put_escaped(url, segment);
}

void url_add_page_params(strbuf *url, const lakefs_list_params *p)
{
    if (!p)
        return;
    if (p->prefix)
        url_add_param(url, "prefix", p->prefix);
    if (p->after)
        url_add_param(url, "after", p->after);
    if (p->amount > 0)
        url_add_int_param(url, "amount", p->amount);
}

void url_add_list_params(strbuf *url, const lakefs_list_params *p)
{
    url_add_page_params(url, p);
    if (p && p->delimiter)
        url_add_param(url, "delimiter", p->delimiter);
}

int lakefs_status_to_errno(int status)
{
    switch (status) {
    case 400:
        return -EINVAL;
    case 401:
        return -EACCES;
    case 403:
        return -EPERM;
    case 404:
        return -ENOENT;
    case 409:
    case 412:
        return -EEXIST;
    case 410:
        return -EIO;
    case 416:
        return -ERANGE;
    case 420:
    case 429:
        return -EAGAIN;
    case 501:
        return -EOPNOTSUPP;
    default:
        break;
    }
    if (status >= 400 && status < 500)
        return -EINVAL;
    if (status >= 500)
        return -EIO;
    return -EPROTO;
}

static const char *const op_names[LAKEFS_OP_COUNT] = {
    [LAKEFS_OP_HEALTH_CHECK] = "healthCheck",
    [LAKEFS_OP_GET_CONFIG] = "getConfig",
    [LAKEFS_OP_GET_CURRENT_USER] = "getCurrentUser",
    [LAKEFS_OP_LIST_REPOSITORIES] = "listRepositories",
    [LAKEFS_OP_GET_REPOSITORY] = "getRepository",
    [LAKEFS_OP_CREATE_REPOSITORY] = "createRepository",
    [LAKEFS_OP_LIST_BRANCHES] = "listBranches",
    [LAKEFS_OP_GET_BRANCH] = "getBranch",
    [LAKEFS_OP_CREATE_BRANCH] = "createBranch",
    [LAKEFS_OP_DELETE_BRANCH] = "deleteBranch",
    [LAKEFS_OP_LIST_TAGS] = "listTags",
    [LAKEFS_OP_CREATE_TAG] = "createTag",
    [LAKEFS_OP_GET_COMMIT] = "getCommit",
    [LAKEFS_OP_LOG_COMMITS] = "logCommits",
    [LAKEFS_OP_LIST_OBJECTS] = "listObjects",
    [LAKEFS_OP_STAT_OBJECT] = "statObject",
    [LAKEFS_OP_GET_OBJECT] = "getObject",
    [LAKEFS_OP_UPLOAD_OBJECT] = "uploadObject",
    [LAKEFS_OP_DELETE_OBJECT] = "deleteObject",
    [LAKEFS_OP_DELETE_OBJECTS] = "deleteObjects",
    [LAKEFS_OP_COPY_OBJECT] = "copyObject",
    [LAKEFS_OP_UPDATE_OBJECT_USER_METADATA] = "updateObjectUserMetadata",
    [LAKEFS_OP_GET_PHYSICAL_ADDRESS] = "getPhysicalAddress",
    [LAKEFS_OP_LINK_PHYSICAL_ADDRESS] = "linkPhysicalAddress",
    [LAKEFS_OP_CREATE_PRESIGN_MULTIPART_UPLOAD] =
        "createPresignMultipartUpload",
    [LAKEFS_OP_COMPLETE_PRESIGN_MULTIPART_UPLOAD] =
        "completePresignMultipartUpload",
    [LAKEFS_OP_ABORT_PRESIGN_MULTIPART_UPLOAD] = "abortPresignMultipartUpload",
    [LAKEFS_OP_UPLOAD_PART] = "uploadPart",
    [LAKEFS_OP_DIFF_BRANCH] = "diffBranch",
    [LAKEFS_OP_DIFF_REFS] = "diffRefs",
    [LAKEFS_OP_COMMIT] = "commit",
    [LAKEFS_OP_MERGE_INTO_BRANCH] = "mergeIntoBranch",
    [LAKEFS_OP_RESET_BRANCH] = "resetBranch",
    [LAKEFS_OP_PRESIGNED_GET] = "presignedGet",
    [LAKEFS_OP_PRESIGNED_PUT] = "presignedPut",
};

const char *lakefs_op_name(lakefs_op op)
{
    if ((unsigned)op >= LAKEFS_OP_COUNT)
        return "unknown";
    return op_names[op];
}

/* ------------------------------------------------------------------ */
/* Client lifetime and the handle pool                                 */

static char *normalize_base_url(const char *endpoint, lakefs_error *err)
{
    if (!endpoint || !*endpoint) {
        lakefs_error_set(err, 0, "no lakeFS endpoint configured");
        return NULL;
    }
    if (strncmp(endpoint, "http://", 7) && strncmp(endpoint, "https://", 8)) {
        lakefs_error_set(err, 0,
                         "endpoint must start with http:// or https://");
        return NULL;
    }
    if (lakefs_url_check_scheme(false, endpoint, "as endpoint", err))
        return NULL; /* the message says why */
    size_t scheme_len = strncmp(endpoint, "https://", 8) == 0 ? 8 : 7;
    size_t len = strlen(endpoint);
    while (len > scheme_len && endpoint[len - 1] == '/')
        len--;
    if (len == scheme_len || endpoint[scheme_len] == '/') {
        lakefs_error_set(err, 0, "endpoint %s has no host", endpoint);
        return NULL;
    }
    strbuf sb = STRBUF_INIT;
    strbuf_append(&sb, endpoint, len);
    static const char api_suffix[] = "/api/v1";
    size_t suffix_len = sizeof(api_suffix) - 1;
    if (len < suffix_len ||
        strcmp(sb.data + len - suffix_len, api_suffix) != 0)
        strbuf_puts(&sb, api_suffix);
    return strbuf_detach(&sb);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* The share's lock callbacks: one mutex per kind of shared data. */
static pthread_mutex_t *share_mutex(lakefs_client *c, curl_lock_data data)
{
    return &c->share_locks[data == CURL_LOCK_DATA_DNS ? 0 : 1];
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access,
                       void *userp)
{
    (void)h;
    (void)access;
    pthread_mutex_lock(share_mutex(userp, data));
}

static void share_unlock(CURL *h, curl_lock_data data, void *userp)
{
    (void)h;
    pthread_mutex_unlock(share_mutex(userp, data));
}

/* A shared DNS cache and TLS session cache, so a handle taken from the
 * pool resumes TLS sessions the others made. Without it (allocation
 * failure) each handle keeps its own: slower, not wrong. */
static void share_setup(lakefs_client *c)
{
    CURLSH *sh = curl_share_init();
    if (!sh)
        return;
    if (pthread_mutex_init(&c->share_locks[0], NULL) != 0) {
        curl_share_cleanup(sh);
        return;
    }
    if (pthread_mutex_init(&c->share_locks[1], NULL) != 0) {
        pthread_mutex_destroy(&c->share_locks[0]);
        curl_share_cleanup(sh);
        return;
    }
    curl_share_setopt(sh, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(sh, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(sh, CURLSHOPT_USERDATA, c);
    curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    c->share = sh;
}

static void share_free(lakefs_client *c)
{
    if (!c->share)
        return;
    curl_share_cleanup(c->share);
    pthread_mutex_destroy(&c->share_locks[0]);
    pthread_mutex_destroy(&c->share_locks[1]);
    c->share = NULL;
}

/* Frees c and the strings lakefs_client_new copied into it (NULL ones
 * too, as a half-made client has them); the secret key is wiped first. */
static void free_settings(lakefs_client *c)
{
    if (c->secret_access_key) {
        explicit_bzero(c->secret_access_key, strlen(c->secret_access_key));
        free(c->secret_access_key);
    }
    free(c->base_url);
    free(c->ca_file);
    free(c->access_key_id);
    free(c->user_agent);
    free(c);
}

lakefs_client *lakefs_client_new(const lakefs_client_config *cfg,
                                 lakefs_error *err)
{
    pthread_once(&curl_init_once, curl_global_setup);
    if (curl_init_result) {
        lakefs_error_set(err, 0, "libcurl initialisation failed");
        return NULL;
    }
    lakefs_client *c = calloc(1, sizeof(*c));
    if (!c) {
        lakefs_error_set(err, 0, "out of memory");
        return NULL;
    }
    c->base_url = normalize_base_url(cfg->endpoint, err);
    if (!c->base_url) {
        free(c);
        return NULL;
    }
    c->ca_file = dup_or_null(cfg->ca_file);
    c->access_key_id = dup_or_null(cfg->access_key_id);
    c->secret_access_key = dup_or_null(cfg->secret_access_key);
    c->user_agent = strdup(cfg->user_agent ? cfg->user_agent
                                           : "lakefuse/" LAKEFUSE_VERSION);
    c->connect_timeout_ms = cfg->connect_timeout_ms > 0
                                ? cfg->connect_timeout_ms
                                : 10000;
    c->request_timeout_ms = cfg->request_timeout_ms > 0
                                ? cfg->request_timeout_ms
                                : 60000;
    c->stall_timeout_ms = cfg->stall_timeout_ms > 0 ? cfg->stall_timeout_ms
                          : cfg->low_speed_timeout_s > 0
                              ? cfg->low_speed_timeout_s * 1000
                              : 60000;
    c->json_body_max = cfg->json_body_max > 0 ? cfg->json_body_max
                                              : LAKEFS_JSON_BODY_MAX;
    c->json_budget = cfg->json_budget > 0 ? cfg->json_budget
                                          : LAKEFS_JSON_BUDGET;
    c->https_only = strncmp(c->base_url, "https://", 8) == 0;
    c->max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : 6;
    c->retry_base_ms = cfg->retry_base_ms > 0 ? cfg->retry_base_ms : 100;
    c->retry_max_delay_ms = cfg->retry_max_delay_ms > 0
                                ? cfg->retry_max_delay_ms
                                : 5000;
    c->retry_budget_ms = cfg->retry_budget_ms > 0 ? cfg->retry_budget_ms
                                                  : 60000;
    c->fault_hook = cfg->fault_hook;
    c->fault_ctx = cfg->fault_ctx;
    atomic_store(&c->jitter_state,
                 (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^
                     (uint64_t)(uintptr_t)c);
    if (!c->user_agent || (cfg->ca_file && !c->ca_file) ||
        (cfg->access_key_id && !c->access_key_id) ||
        (cfg->secret_access_key && !c->secret_access_key) ||
        pthread_mutex_init(&c->pool_lock, NULL) != 0) {
        lakefs_error_set(err, 0, "out of memory");
        free_settings(c);
        return NULL;
    }
    share_setup(c);
    return c;
}

void lakefs_client_free(lakefs_client *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->pool_count; i++)
        curl_easy_cleanup(c->pool[i]);
    share_free(c); /* after every handle that used it */
    pthread_mutex_destroy(&c->pool_lock);
    free_settings(c);
}

const char *lakefs_client_base_url(const lakefs_client *c)
{
    return c->base_url;
}

void lakefs_client_op_stats(const lakefs_client *c, lakefs_op op,
                            lakefs_op_stats *out)
{
    memset(out, 0, sizeof(*out));
    if ((unsigned)op >= LAKEFS_OP_COUNT)
        return;
    lakefs_client *mc = (lakefs_client *)c; /* atomics need non-const */
    out->requests = atomic_load(&mc->counters[op][COUNTER_REQUESTS]);
    out->retries = atomic_load(&mc->counters[op][COUNTER_RETRIES]);
    out->failures = atomic_load(&mc->counters[op][COUNTER_FAILURES]);
    out->bytes_received =
        atomic_load(&mc->counters[op][COUNTER_BYTES_RECEIVED]);
    out->bytes_sent = atomic_load(&mc->counters[op][COUNTER_BYTES_SENT]);
}

void lakefs_client_reset_stats(lakefs_client *c)
{
    for (int op = 0; op < LAKEFS_OP_COUNT; op++)
        for (int k = 0; k < COUNTER_KINDS; k++)
            atomic_store(&c->counters[op][k], 0);
}

/* A handle from the pool keeps its live connections, so requests to the
 * same server reuse them (keep-alive) without a shared connection cache. */
static CURL *pool_take(lakefs_client *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->pool_lock);
    if (c->pool_count > 0)
        h = c->pool[--c->pool_count];
    pthread_mutex_unlock(&c->pool_lock);
    if (h)
        curl_easy_reset(h);
    else
        h = curl_easy_init();
    return h;
}

static void pool_give_back(lakefs_client *c, CURL *h)
{
    pthread_mutex_lock(&c->pool_lock);
    if (c->pool_count < LAKEFS_POOL_MAX) {
        c->pool[c->pool_count++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->pool_lock);
    if (h)
        curl_easy_cleanup(h);
}

/* ------------------------------------------------------------------ */
/* One attempt                                                         */

typedef struct transfer {
    lakefs_client *client;
    CURL *handle;
    const http_request *req;
    http_response *resp;
    int64_t body_sent;     /* bytes of the fd body handed to curl */
    size_t json_sent;      /* bytes of the JSON body handed to curl */
    bool body_seekable;
    bool range_ignored;    /* server answered 200 to a Range request */
    uint64_t skip_left;    /* bytes still to drop in that case */
    int callback_errno;    /* set when a callback aborted the transfer */
    const char *callback_why; /* its message, when not strerror's */
    /* Stall guard (on_progress): no byte either way for stall_ms. */
    long stall_ms;
    bool stall_armed;      /* commit/merge: only once the answer starts */
    bool stalled;
    int64_t last_move_ms;
    curl_off_t last_dl, last_ul;
} transfer;

#define SINK_BUFFER_BYTES (256L * 1024)
#define UPLOAD_BUFFER_BYTES (256L * 1024)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reserves n more bytes of JSON body against the client's budget. */
static int body_reserve(lakefs_client *c, http_response *resp, size_t n)
{
    size_t held = atomic_load(&c->json_in_flight);
    do {
        if (held + n > c->json_budget)
            return -ENOBUFS;
    } while (!atomic_compare_exchange_weak(&c->json_in_flight, &held,
                                           held + n));
    resp->budget = &c->json_in_flight;
    resp->budget_held += n;
    return 0;
}

static bool status_is_success(long status)
{
    return status >= 200 && status < 300;
}

static size_t deliver_to_sink(transfer *t, const char *data, size_t n)
{
    const http_request *req = t->req;
    http_response *resp = t->resp;
    if (t->skip_left) {
        size_t skip = n < t->skip_left ? n : (size_t)t->skip_left;
        t->skip_left -= skip;
        data += skip;
        n -= skip;
    }
    if (req->range_len && resp->sink_written + n > req->range_len)
        n = req->range_len - resp->sink_written; /* 200 to a Range */
    if (req->sink_buf) {
        if (resp->sink_written + n > req->sink_cap) {
            t->callback_errno = -EPROTO; /* more than asked for */
            return 0;
        }
        memcpy((char *)req->sink_buf + resp->sink_written, data, n);
    } else {
        size_t done = 0;
        while (done < n) {
            ssize_t w = pwrite(req->sink_fd, data + done, n - done,
                               (off_t)(resp->sink_written + done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                t->callback_errno = w < 0 ? -errno : -EIO;
                return 0;
            }
            done += (size_t)w;
        }
    }
    resp->sink_written += n;
    return 0; /* caller reports the full chunk as consumed */
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    transfer *t = userp;
    size_t n = size * nmemb;
    t->last_move_ms = now_ms();
    long status = 0;
    curl_easy_getinfo(t->handle, CURLINFO_RESPONSE_CODE, &status);
    bool to_sink = status_is_success(status) &&
                   (t->req->sink_buf || t->req->sink_fd >= 0);
    if (to_sink) {
        t->resp->sink_received += n;
        if (status == 200 && t->req->range_len && !t->range_ignored) {
            t->range_ignored = true;
            t->skip_left = t->req->range_offset;
        }
        deliver_to_sink(t, data, n);
        return t->callback_errno ? 0 : n;
    }
    strbuf *body = &t->resp->body;
    lakefs_client *c = t->client;
    bool ok = status_is_success(status);
    if (ok && body->len + n > c->json_body_max) {
        t->callback_errno = -EFBIG;
        t->callback_why = "answer larger than the client accepts";
        return 0;
    }
    size_t room = ok ? n
                  : body->len >= ERROR_BODY_MAX      ? 0
                  : ERROR_BODY_MAX - body->len < n ? ERROR_BODY_MAX - body->len
                                                     : n;
    if (room == 0)
        return n; /* the rest of an error page: dropped */
    if (body_reserve(c, t->resp, room) != 0) {
        t->callback_errno = -ENOBUFS;
        t->callback_why = "too many large answers in flight at once";
        return 0;
    }
    body->limit = ok ? c->json_body_max : ERROR_BODY_MAX;
    strbuf_append(body, data, room);
    if (strbuf_error(body)) {
        t->callback_errno = strbuf_error(body) == -EFBIG
                                ? -EPROTO
                                : strbuf_error(body);
        return 0;
    }
    return n;
}

/* The stall guard: aborts (-ETIMEDOUT) a transfer on which no byte moved
 * for stall_ms. curl calls this about once a second when idle. */
static int on_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow,
                       curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal;
    (void)ultotal;
    transfer *t = userp;
    int64_t now = now_ms();
    if (dlnow != t->last_dl || ulnow != t->last_ul) {
        t->last_dl = dlnow;
        t->last_ul = ulnow;
        t->last_move_ms = now;
        return 0;
    }
    if (t->stall_armed && now - t->last_move_ms > t->stall_ms) {
        t->stalled = true;
        return 1;
    }
    return 0;
}

static size_t on_read_body(char *out, size_t size, size_t nmemb, void *userp)
{
    transfer *t = userp;
    const http_request *req = t->req;
    size_t want = size * nmemb;
    int64_t left = req->body_size - t->body_sent;
    if (left <= 0)
        return 0;
    if ((int64_t)want > left)
        want = (size_t)left;
    for (;;) {
        ssize_t r = t->body_seekable
                        ? pread(req->body_fd, out, want,
                                (off_t)(req->body_offset + t->body_sent))
                        : read(req->body_fd, out, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            t->callback_errno = -errno;
            return CURL_READFUNC_ABORT;
        }
        if (r == 0) { /* the file shrank under us: refuse to send less */
            t->callback_errno = -EIO;
            return CURL_READFUNC_ABORT;
        }
        t->body_sent += r;
        return (size_t)r;
    }
}

static char *header_value(const char *line, size_t n, const char *name)
{
    size_t name_len = strlen(name);
    if (n <= name_len || strncasecmp(line, name, name_len) != 0 ||
        line[name_len] != ':')
        return NULL;
    const char *v = line + name_len + 1;
    const char *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' ||
                       end[-1] == ' '))
        end--;
    return strndup(v, (size_t)(end - v));
}

static void keep_header(char **slot, char *value)
{
    if (!value)
        return;
    free(*slot);
    *slot = value;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userp)
{
    transfer *t = userp;
    size_t n = size * nmemb;
    t->last_move_ms = now_ms();
    t->stall_armed = true; /* the answer has started */
    http_response *r = t->resp;
    keep_header(&r->location, header_value(line, n, "Location"));
    keep_header(&r->etag, header_value(line, n, "ETag"));
    keep_header(&r->content_md5, header_value(line, n, "Content-MD5"));
    keep_header(&r->content_range, header_value(line, n, "Content-Range"));
    keep_header(&r->content_type, header_value(line, n, "Content-Type"));
    return n;
}

static int transport_errno(CURLcode rc)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return -EHOSTUNREACH;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

/* true when the request cannot have reached the server: no connection
 * was made, or none that carried it (TLS handshake). */
static bool transport_error_before_sending(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SSL_CONNECT_ERROR:
        return true;
    default:
        return false;
    }
}

static bool transport_error_retryable(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

static void response_reset(http_response *resp)
{
    if (resp->budget)
        atomic_fetch_sub(resp->budget, resp->budget_held);
    strbuf_release(&resp->body);
    free(resp->location);
    free(resp->etag);
    free(resp->content_md5);
    free(resp->content_range);
    free(resp->content_type);
    memset(resp, 0, sizeof(*resp));
}

void http_response_release(http_response *resp)
{
    response_reset(resp);
}

void http_request_init(http_request *req, lakefs_op op, const char *method)
{
    memset(req, 0, sizeof(*req));
    req->op = op;
    req->method = method;
    req->body_fd = -1;
    req->sink_fd = -1;
}

static struct curl_slist *build_headers(const http_request *req,
                                        bool *oom)
{
    struct curl_slist *list = NULL;
    char range[96];
    const char *fixed[4] = {"Expect:", NULL, NULL, NULL};
    size_t nfixed = 1;
    if (req->json_body)
        fixed[nfixed++] = "Content-Type: application/json";
    if (req->range_len) {
        snprintf(range, sizeof(range), "Range: bytes=%llu-%llu",
                 (unsigned long long)req->range_offset,
                 (unsigned long long)(req->range_offset + req->range_len -
                                      1));
        fixed[nfixed++] = range;
    }
    for (size_t i = 0; i < nfixed; i++) {
        struct curl_slist *next = curl_slist_append(list, fixed[i]);
        if (!next)
            goto fail;
        list = next;
    }
    if (req->body_fd >= 0) {
        char ct[256];
        snprintf(ct, sizeof(ct), "Content-Type: %s",
                 req->content_type ? req->content_type
                                   : "application/octet-stream");
        struct curl_slist *next = curl_slist_append(list, ct);
        if (!next)
            goto fail;
        list = next;
    }
    for (const char *const *h = req->extra_headers; h && *h; h++) {
        struct curl_slist *next = curl_slist_append(list, *h);
        if (!next)
            goto fail;
        list = next;
    }
    return list;
fail:
    curl_slist_free_all(list);
    *oom = true;
    return NULL;
}

/* A JSON body through a read callback with no way to seek back: when a
 * kept-alive connection dies after carrying the request, libcurl cannot
 * silently send it again on a fresh one (it would need to rewind), so a
 * non-idempotent request reaches the server at most once per attempt. */
static size_t on_read_json(char *out, size_t size, size_t nmemb, void *userp)
{
    transfer *t = userp;
    size_t len = strlen(t->req->json_body);
    size_t left = len - t->json_sent;
    size_t n = size * nmemb < left ? size * nmemb : left;
    memcpy(out, t->req->json_body + t->json_sent, n);
    t->json_sent += n;
    return n;
}

static void set_body_options(CURL *h, const http_request *req, transfer *t)
{
    if (req->json_body && !lakefs_op_is_idempotent(req->op)) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read_json);
        curl_easy_setopt(h, CURLOPT_READDATA, t);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)strlen(req->json_body));
    } else if (req->json_body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->json_body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)strlen(req->json_body));
    } else if (req->body_fd >= 0) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read_body);
        curl_easy_setopt(h, CURLOPT_READDATA, t);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
                         (curl_off_t)req->body_size);
    } else if (strcmp(req->method, "POST") == 0 ||
               strcmp(req->method, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    if (strcmp(req->method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else if (strcmp(req->method, "GET") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
}

static void set_common_options(lakefs_client *c, CURL *h,
                               const http_request *req, transfer *t,
                               const char *url, struct curl_slist *headers)
{
    curl_easy_setopt(h, CURLOPT_URL, url);
    /* Only http(s), for the request and any redirect: a server-supplied
     * file:// or gopher:// URL must not reach another protocol. */
    const char *protocols = c->https_only ? "https" : "http,https";
#if CURL_AT_LEAST_VERSION(7, 85, 0)
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, protocols);
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
#else
    long mask = c->https_only ? CURLPROTO_HTTPS
                              : CURLPROTO_HTTP | CURLPROTO_HTTPS;
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, mask);
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS, mask);
    (void)protocols;
#endif
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (c->share)
        curl_easy_setopt(h, CURLOPT_SHARE, c->share);
    if (c->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    /* Keepalive probes notice a dead peer while commit or merge wait. */
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 10L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    bool data_transfer = req->body_fd >= 0 || req->sink_fd >= 0 ||
                         req->sink_buf;
    /* Downloads of data: a larger receive buffer than curl's 16 KiB, so a
     * ranged GET of megabytes costs a few dozen recv/poll system calls
     * instead of one pair per 16 KiB (measured: half the syscalls of a
     * sequential read). Small ranges gain nothing: smaller still. */
    if (req->sink_buf || req->sink_fd >= 0)
        curl_easy_setopt(h, CURLOPT_BUFFERSIZE,
                         req->range_len && req->range_len < SINK_BUFFER_BYTES
                             ? 16384L
                             : (long)SINK_BUFFER_BYTES);
    /* Uploads of data: the same for the send side. curl's 64 KiB default
     * costs a pread and a send per 64 KiB; a part of 16 MiB then takes 256
     * of each instead of 64 (fewer wakeups while a large file is still
     * being written beside it). Small bodies keep the default. */
    if (req->body_fd >= 0 && req->body_size > UPLOAD_BUFFER_BYTES)
        curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE,
                         (long)UPLOAD_BUFFER_BYTES);
    /* Large bodies have no total deadline; commit and merge none either
     * (the server may work on them for minutes, the connection idle).
     * Every transfer has the stall guard. */
    if (!data_transfer && !lakefs_op_is_long_running(req->op))
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->request_timeout_ms);
    t->client = c;
    t->stall_ms = c->stall_timeout_ms;
    t->stall_armed = !lakefs_op_is_long_running(req->op);
    t->last_move_ms = now_ms();
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, t);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, t);
    if (!req->absolute_url && c->access_key_id && c->secret_access_key) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, c->access_key_id);
        curl_easy_setopt(h, CURLOPT_PASSWORD, c->secret_access_key);
    }
    set_body_options(h, req, t);
}

typedef struct attempt_result {
    int rc;          /* 0 or negative errno */
    bool retryable;
    bool maybe_applied; /* failed after the request may have arrived */
} attempt_result;

static void describe_http_error(http_response *resp, lakefs_error *err)
{
    char msg[LAKEFS_ERROR_MESSAGE_MAX];
    if (resp->body.len &&
        lakefs_parse_error_message(resp->body.data, resp->body.len, msg,
                                   sizeof(msg)) == 0)
        lakefs_error_set(err, resp->status, "%s", msg);
    else
        lakefs_error_set(err, resp->status, "HTTP status %d", resp->status);
}

static bool status_retryable(http_response *resp)
{
    switch (resp->status) {
    case 420:
    case 429:
    case 503:
        return true;
    case 500:
        return resp->body.data &&
               strstr(resp->body.data, "currently locked") != NULL;
    default:
        return false;
    }
}

static attempt_result run_attempt(lakefs_client *c, const http_request *req,
                                  http_response *resp, unsigned attempt,
                                  bool body_seekable, lakefs_error *err)
{
    attempt_result res = {0, false, false};
    response_reset(resp);
    count(c, req->op, COUNTER_REQUESTS, 1);
    if (attempt > 0)
        count(c, req->op, COUNTER_RETRIES, 1);

    if (c->fault_hook) {
        int fault = c->fault_hook(c->fault_ctx, req->op, attempt);
        if (fault < 0) {
            lakefs_error_set(err, 0, "injected fault: %s", strerror(-fault));
            /* As a transport error: refused and unreachable never sent
             * anything; anything else may have been cut after sending. */
            return (attempt_result){fault, true,
                                    fault != -ECONNREFUSED &&
                                        fault != -EHOSTUNREACH};
        }
        if (fault >= 100) {
            resp->status = fault;
            if (status_is_success(fault) ||
                (req->no_redirect_follow && fault >= 300 && fault < 400))
                return (attempt_result){0, false, false};
            describe_http_error(resp, err);
            bool retry = status_retryable(resp);
            return (attempt_result){lakefs_status_to_errno(fault), retry,
                                    fault >= 500 && !retry};
        }
    }

    CURL *h = pool_take(c);
    strbuf url = STRBUF_INIT;
    if (req->absolute_url) {
        strbuf_puts(&url, req->absolute_url);
    } else {
        strbuf_puts(&url, c->base_url);
        strbuf_puts(&url, req->path_and_query);
    }
    bool oom = false;
    struct curl_slist *headers = build_headers(req, &oom);
    if (!h || oom || strbuf_error(&url)) {
        lakefs_error_set(err, 0, "out of memory");
        curl_slist_free_all(headers);
        strbuf_release(&url);
        if (h)
            curl_easy_cleanup(h);
        return (attempt_result){-ENOMEM, false, false};
    }

    transfer t = {.handle = h, .req = req, .resp = resp,
                  .body_seekable = body_seekable};
    set_common_options(c, h, req, &t, url.data, headers);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    resp->status = (int)status;
    count(c, req->op, COUNTER_BYTES_SENT, (uint64_t)t.body_sent);
    count(c, req->op, COUNTER_BYTES_RECEIVED,
          resp->sink_written + resp->body.len);

    if (rc != CURLE_OK) {
        res.maybe_applied = !transport_error_before_sending(rc);
        if (t.stalled) {
            res.rc = -ETIMEDOUT;
            res.retryable = true;
            lakefs_error_set(err, 0, "transfer stalled: no data for %ld ms",
                             t.stall_ms);
        } else if (t.callback_errno) {
            res.rc = t.callback_errno;
            lakefs_error_set(err, 0, "%s",
                             t.callback_why ? t.callback_why
                             : res.rc == -EPROTO
                                 ? "response larger than expected"
                                 : strerror(-res.rc));
        } else if (rc == CURLE_SEND_FAIL_REWIND) {
            /* libcurl wanted to re-send on a new connection (on_read_json
             * refuses): the request went out, the answer never came. */
            res.rc = -EIO;
            lakefs_error_set(err, 0, "the connection closed after the "
                                     "request was sent");
        } else {
            res.rc = transport_errno(rc);
            res.retryable = transport_error_retryable(rc);
            lakefs_error_set(err, 0, "%s", curl_easy_strerror(rc));
        }
        resp->status = 0;
        /* A broken connection must not go back to the pool. */
        curl_easy_cleanup(h);
    } else {
        pool_give_back(c, h);
        if (status_is_success(status) ||
            (req->no_redirect_follow && status >= 300 && status < 400)) {
            res.rc = 0;
        } else {
            res.rc = lakefs_status_to_errno((int)status);
            res.retryable = status_retryable(resp);
            /* A 5xx other than a refusal to start may have come after
             * the work was done (a gateway's timeout, a late crash). */
            res.maybe_applied = status >= 500 && !res.retryable;
            describe_http_error(resp, err);
        }
    }
    curl_slist_free_all(headers);
    strbuf_release(&url);
    return res;
}

/* ------------------------------------------------------------------ */
/* Retries                                                             */

static uint64_t next_random(lakefs_client *c)
{
    /* xorshift64*, advanced with a CAS so threads never share a value. */
    uint64_t old = atomic_load(&c->jitter_state), x;
    do {
        x = old ? old : 0x9E3779B97F4A7C15ull;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
    } while (!atomic_compare_exchange_weak(&c->jitter_state, &old, x));
    return x * 0x2545F4914F6CDD1Dull;
}

/* Exponential backoff with jitter: half the window fixed, half random, so
 * retries spread out but always make some progress. */
static long backoff_ms(lakefs_client *c, unsigned attempt)
{
    long window = c->retry_base_ms;
    for (unsigned i = 1; i < attempt && window < c->retry_max_delay_ms; i++)
        window *= 2;
    if (window > c->retry_max_delay_ms)
        window = c->retry_max_delay_ms;
    long half = window / 2;
    return half + (long)(next_random(c) % (uint64_t)(window - half + 1));
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static bool fd_is_rereadable(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

int http_execute(lakefs_client *c, const http_request *req,
                 http_response *resp, lakefs_error *err)
{
    memset(resp, 0, sizeof(*resp));
    bool body_seekable = req->body_fd >= 0 && fd_is_rereadable(req->body_fd);
    if (req->body_fd >= 0 && req->body_offset != 0 &&
        (!body_seekable || req->body_offset < 0)) {
        lakefs_error_set(err, 0,
                         "a body at a file offset needs a regular "
                         "file");
        return -ESPIPE; /* a bad argument: nothing sent, nothing counted */
    }
    if (req->absolute_url) {
        int rc = lakefs_url_check(c, req->absolute_url, err);
        if (rc) {
            lakefs_count_failure(c, req->op);
            return rc;
        }
    }
    bool may_retry = req->body_fd < 0 || body_seekable;
    bool idempotent = lakefs_op_is_idempotent(req->op);
    bool maybe_done = false; /* an earlier attempt may have been applied */
    int64_t start = now_ms();
    attempt_result res = {0, false, false};
    for (unsigned attempt = 0; attempt < c->max_attempts; attempt++) {
        res = run_attempt(c, req, resp, attempt, body_seekable, err);
        if (res.rc == 0)
            return 0;
        /* A branch deleted by an attempt whose answer was lost: the retry
         * finds it gone, which is what was asked. */
        if (res.rc == -ENOENT && maybe_done &&
            req->op == LAKEFS_OP_DELETE_BRANCH) {
            if (err)
                memset(err, 0, sizeof(*err));
            return 0;
        }
        maybe_done = maybe_done || res.maybe_applied;
        /* The request may have been applied: sending it again could apply
         * it twice. The caller checks what happened instead. */
        if (!idempotent && res.maybe_applied) {
            resp->maybe_applied = true;
            break;
        }
        if (!res.retryable || !may_retry || attempt + 1 >= c->max_attempts)
            break;
        long delay = backoff_ms(c, attempt + 1);
        if (now_ms() - start + delay > c->retry_budget_ms)
            break;
        sleep_ms(delay);
    }
    lakefs_count_failure(c, req->op);
    if (err)
        err->not_applied = !maybe_done;
    return res.rc;
}

int lakefs_call(lakefs_client *c, http_request *req, strbuf *url,
                response_parser parse, void *out, size_t out_size,
                lakefs_error *err)
{
    if (out)
        memset(out, 0, out_size); /* zeroed on failure, as documented */
    if (url) {
        if (strbuf_error(url)) {
            strbuf_release(url);
            lakefs_error_set(err, 0, "out of memory");
            return -ENOMEM;
        }
        req->path_and_query = url->data;
    }
    http_response resp;
    int rc = http_execute(c, req, &resp, err);
    req->maybe_applied = resp.maybe_applied;
    if (rc == 0 && parse && out) {
        rc = parse(resp.body.data ? resp.body.data : "", resp.body.len, out,
                   err);
        if (rc) {
            lakefs_count_failure(c, req->op);
            req->maybe_applied = true; /* a 2xx, garbled: it was done */
        }
    }
    http_response_release(&resp);
    if (url)
        strbuf_release(url);
    return rc;
}

int lakefs_call_json(lakefs_client *c, http_request *req, strbuf *url,
                     char *json_body, response_parser parse, void *out,
                     size_t out_size, lakefs_error *err)
{
    if (out)
        memset(out, 0, out_size);
    if (!json_body) {
        if (url)
            strbuf_release(url);
        lakefs_error_set(err, 0, "out of memory");
        return -ENOMEM;
    }
    req->json_body = json_body;
    int rc = lakefs_call(c, req, url, parse, out, out_size, err);
    free(json_body);
    return rc;
}
