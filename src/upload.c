/*
 * upload.c - one object from a local file: presigned multipart upload,
 * staging flow or uploadObject, with lakectl's ::lakefs:: metadata. The
 * file is read by the client with pread, part by part, so a failed
 * attempt is retried from where its part starts and no part is ever held
 * in memory. Parts go up concurrently, at most UPLOAD_PART_THREADS at
 * once; after a failure no new part starts. A multipart upload that fails
 * is aborted, never left behind.
 */
#include "upload.h"
#include "threads.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int upload_build_metadata(const upload_attrs *attrs, lakefs_metadata *md)
{
    memset(md, 0, sizeof(*md));
    const lakefs_metadata *extra = attrs->extra;
    int rc = 0;
    for (size_t i = 0; extra && rc == 0 && i < extra->count; i++)
        rc = lakefs_metadata_set(md, extra->items[i].key,
                                 extra->items[i].value);
    char buf[128];
    if (rc == 0) {
        snprintf(buf, sizeof(buf), "%lld", (long long)attrs->mtime);
        rc = lakefs_metadata_set(md, "::lakefs::client-mtime", buf);
    }
    if (rc == 0 && attrs->mode) {
        /* lakectl's POSIXPermissions (pkg/local/posix_permissions*.go):
         * Mode is os.FileMode(stat.Mode), the raw st_mode, type bits
         * included (0100644 a file, 040755 a directory marker). A mode
         * without type bits (an older journal) is a regular file's. */
        uint32_t mode = attrs->mode & (S_IFMT | 07777u);
        if (!(mode & S_IFMT))
            mode |= S_IFREG;
        snprintf(buf, sizeof(buf), "{\"UID\":%u,\"GID\":%u,\"Mode\":%u}",
                 attrs->uid, attrs->gid, mode);
        rc = lakefs_metadata_set(md, "::lakefs::posix-permissions", buf);
    }
    if (rc)
        lakefs_metadata_free(md);
    return rc;
}

static void set_message(lakefs_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_message(lakefs_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    err->status = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

static int upload_presigned(lakefs_client *c, const char *repo,
                            const char *branch, const char *path, int fd,
                            int64_t size, const lakefs_upload_options *opt,
                            lakefs_object_stats *out, lakefs_error *err)
{
    lakefs_staging_location loc;
    int rc =
        lakefs_get_physical_address(c, repo, branch, path, true, &loc, err);
    if (rc)
        return rc;
    char *checksum = NULL;
    if (!loc.presigned_url) {
        set_message(err, "getPhysicalAddress answered without a "
                         "presigned URL");
        rc = -EPROTO;
    } else if ((rc = lakefs_url_check(c, loc.presigned_url, err)) != 0) {
        /* A file:// or an http URL for an https server: nothing sent. */
    } else {
        rc = lakefs_put_presigned_fd(c, loc.presigned_url, fd, size,
                                     opt->content_type, &checksum, err);
    }
    if (rc == 0)
        rc = lakefs_link_physical_address(c, repo, branch, path, &loc,
                                          checksum, size, opt, out, err);
    free(checksum);
    lakefs_staging_location_free(&loc);
    return rc;
}

/* The part size for a file of size bytes: caps->part_size (default 16
 * MiB), at least S3's 5 MiB, grown so no file needs over 10000 parts. */
int64_t upload_part_size(const upload_caps *caps, int64_t size)
{
    const int64_t mib = 1 << 20;
    int64_t part = caps && caps->part_size > 0 ? caps->part_size
                                               : UPLOAD_DEFAULT_PART_SIZE;
    if (part < LAKEFS_MULTIPART_MIN_PART_SIZE)
        part = LAKEFS_MULTIPART_MIN_PART_SIZE;
    int64_t needed = size / LAKEFS_MULTIPART_MAX_PARTS +
                     (size % LAKEFS_MULTIPART_MAX_PARTS != 0);
    if (part < needed) /* grown in whole MiB */
        part = (needed / mib + (needed % mib != 0)) * mib;
    return part;
}

/* The parts of an upload in flight: ETags as the store returned them. */
typedef struct part_list {
    lakefs_upload_part *parts;
    char **etags;
    int count;
} part_list;

static int part_list_init(part_list *l, int count)
{
    l->count = count;
    l->parts = calloc((size_t)count, sizeof(*l->parts));
    l->etags = calloc((size_t)count, sizeof(*l->etags));
    return l->parts && l->etags ? 0 : -ENOMEM;
}

static void part_list_free(part_list *l)
{
    for (int i = 0; l->etags && i < l->count; i++)
        free(l->etags[i]);
    free(l->etags);
    free(l->parts);
    memset(l, 0, sizeof(*l));
}

/* Where an upload goes, for the calls made while it is in flight. */
typedef struct upload_target {
    const char *repo;
    const char *branch;
    const char *path;
} upload_target;

/* The store refused a part's URL (403: it expired while earlier parts went
 * up): one more try with a fresh URL from uploadPart. */
static int put_part_fresh_url(lakefs_client *c, const upload_target *t,
                              const lakefs_multipart_upload *mpu, int number,
                              int fd, int64_t offset, int64_t len,
                              char **etag, lakefs_error *err)
{
    char *url = NULL;
    int rc = lakefs_upload_part_url(c, t->repo, t->branch, t->path,
                                    mpu->upload_id, number,
                                    mpu->physical_address, &url, err);
    if (rc == 0)
        rc = lakefs_put_presigned_range_fd(c, url, fd, offset, len, etag, err);
    free(url);
    return rc;
}

/* Parts PUT at once by one upload: enough to fill the link to the store
 * without a thread (and a curl handle) per part. */
#define UPLOAD_PART_THREADS 4

/* The parts of one upload, shared by the threads that PUT them. Each part
 * is taken by one thread, which alone writes its slot of the part_list;
 * the joins publish them to the caller. */
typedef struct part_queue {
    lakefs_client *c;
    const upload_target *t;
    const lakefs_multipart_upload *mpu;
    int fd;
    int64_t size;
    int64_t part_size;
    part_list *l;
    pthread_mutex_t lock; /* guards next, rc and err */
    int next;             /* the next part to start, 0-based */
    int rc;               /* the first failure: no part starts after it */
    lakefs_error err;     /* that failure's message */
} part_queue;

/* PUTs part i (0-based) straight from the file at its offset. */
static int put_part(part_queue *q, int i, lakefs_error *err)
{
    int64_t offset = (int64_t)i * q->part_size;
    int64_t len = q->size - offset < q->part_size ? q->size - offset
                                                   : q->part_size;
    char **etag = &q->l->etags[i];
    int rc = lakefs_put_presigned_range_fd(
        q->c, q->mpu->presigned_urls[i], q->fd, offset, len, etag, err);
    if (rc == -EPERM || rc == -EACCES)
        rc = put_part_fresh_url(q->c, q->t, q->mpu, i + 1, q->fd, offset,
                                len, etag, err);
    if (rc == 0) {
        q->l->parts[i].part_number = i + 1;
        q->l->parts[i].etag = *etag;
    }
    return rc;
}

/* The next part to PUT, or -1 when all have started or one has failed. */
static int part_take(part_queue *q)
{
    pthread_mutex_lock(&q->lock);
    int i = -1;
    if (q->rc == 0 && q->next < q->l->count)
        i = q->next++;
    pthread_mutex_unlock(&q->lock);
    return i;
}

static void part_fail(part_queue *q, int rc, const lakefs_error *err)
{
    pthread_mutex_lock(&q->lock);
    if (q->rc == 0) {
        q->rc = rc;
        q->err = *err;
    }
    pthread_mutex_unlock(&q->lock);
}

/* One thread of the pool: PUTs parts until none is left or one failed.
 * lakefs_error is per call, so each thread has its own. */
static void *part_worker(void *arg)
{
    part_queue *q = arg;
    lakefs_error err = {0};
    for (;;) {
        int i = part_take(q);
        if (i < 0)
            break;
        int rc = put_part(q, i, &err);
        if (rc != 0) {
            part_fail(q, rc, &err);
            break;
        }
    }
    return NULL;
}

/* Starts up to max helper threads, no more than the parts beyond the one
 * the caller takes. They block every signal (those are for FUSE's
 * threads). A helper that cannot start only costs parallelism: the caller
 * works too. Returns how many started. */
static int part_threads_start(part_queue *q, pthread_t *threads, int max)
{
    int want = q->l->count - 1 < max ? q->l->count - 1 : max;
    int started = 0;
    while (started < want &&
           thread_start_masked(&threads[started], part_worker, q) == 0)
        started++;
    return started;
}

/* PUTs every part, up to UPLOAD_PART_THREADS at once (the calling thread
 * is one of them), each straight from the file at its offset; fills l in
 * part order. On failure, the first failing part's error. */
static int put_parts(lakefs_client *c, const upload_target *t,
                     const lakefs_multipart_upload *mpu, int fd, int64_t size,
                     int64_t part_size, part_list *l, lakefs_error *err)
{
    if (mpu->url_count != (size_t)l->count) {
        set_message(err,
                    "createPresignMultipartUpload gave %zu presigned "
                    "URLs for %d parts",
                    mpu->url_count, l->count);
        return -EPROTO;
    }
    /* Every URL is checked before the first part goes: no part is sent
     * anywhere when one of them is not an http(s) URL we may use. */
    for (int i = 0; i < l->count; i++) {
        int bad = lakefs_url_check(c, mpu->presigned_urls[i], err);
        if (bad)
            return bad;
    }
    part_queue q = {.c = c,
                    .t = t,
                    .mpu = mpu,
                    .fd = fd,
                    .size = size,
                    .part_size = part_size,
                    .l = l};
    int rc = -pthread_mutex_init(&q.lock, NULL);
    if (rc != 0)
        return rc;
    pthread_t helpers[UPLOAD_PART_THREADS - 1];
    int started = part_threads_start(&q, helpers, UPLOAD_PART_THREADS - 1);
    part_worker(&q);
    for (int k = 0; k < started; k++)
        pthread_join(helpers[k], NULL);
    pthread_mutex_destroy(&q.lock);
    if (q.rc != 0 && err)
        *err = q.err;
    return q.rc;
}

static int upload_multipart(lakefs_client *c, const upload_caps *caps,
                            const char *repo, const char *branch,
                            const char *path, int fd, int64_t size,
                            const lakefs_upload_options *opt,
                            lakefs_object_stats *out, lakefs_error *err)
{
    int64_t part_size = upload_part_size(caps, size);
    int count = (int)(size / part_size + (size % part_size != 0));
    lakefs_multipart_upload mpu;
    int rc = lakefs_create_presign_multipart(c, repo, branch, path, count,
                                             &mpu, err);
    if (rc == -EOPNOTSUPP) /* offered by the config, refused here */
        return upload_presigned(c, repo, branch, path, fd, size, opt, out,
                                err);
    if (rc)
        return rc;
    part_list parts = {0};
    rc = part_list_init(&parts, count);
    if (rc == 0)
        rc = put_parts(c, &(upload_target){repo, branch, path}, &mpu, fd,
                       size, part_size, &parts, err);
    if (rc == 0)
        rc = lakefs_complete_presign_multipart(
            c, repo, branch, path, mpu.upload_id, mpu.physical_address,
            parts.parts, (size_t)count, opt, out, err);
    if (rc) {
        /* Best effort: the error that matters is the one in err. */
        lakefs_error ignored = {0};
        lakefs_abort_presign_multipart(c, repo, branch, path, mpu.upload_id,
                                       mpu.physical_address, &ignored);
    }
    part_list_free(&parts);
    lakefs_multipart_upload_free(&mpu);
    return rc;
}

bool upload_in_parts(const upload_caps *caps, int64_t size)
{
    if (!caps || !caps->presign || !caps->multipart || size <= 0)
        return false;
    int64_t threshold = caps->multipart_threshold > 0
                            ? caps->multipart_threshold
                            : UPLOAD_DEFAULT_MULTIPART_THRESHOLD;
    return size >= threshold;
}

bool upload_eager_in_parts(const upload_caps *caps, int64_t size)
{
    if (upload_in_parts(caps, size))
        return true;
    return caps && caps->eager && upload_in_parts(caps, INT64_MAX) &&
           size >= upload_part_size(caps, size);
}

/* A metadata key uploadObject carries unchanged: lakeFS takes it from an
 * X-Lakefs-Meta-KEY (or X-Lakefs-Internal-) header and lower-cases it, so
 * lower-case letters, digits, '-' and '.' only. */
static bool header_key_ok(const char *key)
{
    static const char internal[] = "::lakefs::";
    if (strncmp(key, internal, sizeof(internal) - 1) == 0)
        key += sizeof(internal) - 1;
    if (!*key)
        return false;
    for (const char *p = key; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.'))
            return false;
    return true;
}

/* A header value that arrives unchanged: printable ASCII, not empty, no
 * blank at either end (HTTP trims those). */
static bool header_value_ok(const char *value)
{
    size_t n = strlen(value);
    if (n == 0 || value[0] == ' ' || value[n - 1] == ' ')
        return false;
    for (const char *p = value; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            return false;
    return true;
}

/* Header bytes of metadata uploadObject carries at most: proxies and
 * servers refuse larger request headers (8 KiB is a common limit for all
 * of them, and a refusal is a 400 that no retry heals). */
#define METADATA_HEADER_BUDGET 4096

/* What one key takes of the budget: its header line, prefix included. */
static size_t header_bytes(const lakefs_kv *kv)
{
    return strlen(kv->key) + strlen(kv->value) + 24;
}

static bool metadata_fits_headers(const lakefs_metadata *md,
                                  const char *content_type)
{
    if (content_type && !header_value_ok(content_type))
        return false;
    size_t bytes = 0;
    for (size_t i = 0; md && i < md->count; i++) {
        if (!header_key_ok(md->items[i].key) ||
            !header_value_ok(md->items[i].value))
            return false;
        bytes += header_bytes(&md->items[i]);
    }
    return bytes <= METADATA_HEADER_BUDGET;
}

/* uploadObject where the staging flow is not to be had (no presigned
 * URLs) and the metadata would not reach lakeFS unchanged through headers
 * (HTTP trims blanks at either end, lakeFS lower-cases keys; a symlink's
 * target " x" would come back "x"): the keys that fit go with the upload,
 * then the whole metadata is set exactly as JSON (repeating that changes
 * nothing). If that fails the call fails: a writer's retry sends it all
 * again (the object then is its own attempt); a symlink or special file
 * answers EIO. */
static int upload_then_set_metadata(lakefs_client *c, const char *repo,
                                    const char *branch, const char *path,
                                    int fd, int64_t size,
                                    const lakefs_upload_options *opt,
                                    lakefs_object_stats *result,
                                    lakefs_error *err)
{
    const lakefs_metadata *md = opt->metadata;
    lakefs_metadata fit = {0}, exact = {0};
    int rc = 0;
    size_t bytes = 0;
    /* lakectl's keys (mode, mtime, symlink target) first: they make the
     * object what it is. */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; rc == 0 && i < md->count; i++) {
            const lakefs_kv *kv = &md->items[i];
            size_t add = header_bytes(kv);
            bool internal = strncmp(kv->key, "::lakefs::", 10) == 0;
            if (internal == (pass == 0) && header_key_ok(kv->key) &&
                header_value_ok(kv->value) &&
                bytes + add <= METADATA_HEADER_BUDGET) {
                rc = lakefs_metadata_set(&fit, kv->key, kv->value);
                bytes += add;
            }
        }
    for (size_t i = 0; rc == 0 && i < md->count; i++)
        rc = lakefs_metadata_set(&exact, md->items[i].key,
                                 md->items[i].value);
    lakefs_upload_options first = *opt;
    first.metadata = &fit;
    if (rc == 0)
        rc = lakefs_upload_object_fd(c, repo, branch, path, fd, size, &first,
                                     result, err);
    if (rc == 0) {
        /* Repeating it changes nothing: a 500 or a cut answer, which the
         * client does not retry itself, is tried again, and settled. */
        rc = lakefs_update_object_user_metadata_settled(c, repo, branch, path,
                                                        md, err);
        if (rc == 0) {
            lakefs_metadata_free(&result->metadata);
            result->metadata = exact;
            memset(&exact, 0, sizeof(exact));
        }
    }
    lakefs_metadata_free(&fit);
    lakefs_metadata_free(&exact);
    return rc;
}

static bool direct_size(const upload_caps *caps, int64_t size)
{
    return caps && caps->presign && caps->direct_max > 0 &&
           size <= caps->direct_max && !upload_in_parts(caps, size);
}

int upload_fd(lakefs_client *c, const upload_caps *caps, const char *repo,
              const char *branch, const char *path, int fd, int64_t size,
              const upload_attrs *attrs, lakefs_object_stats *out,
              lakefs_error *err)
{
    lakefs_metadata md;
    int rc = upload_build_metadata(attrs, &md);
    if (rc)
        return rc;
    lakefs_upload_options opt = {.metadata = &md,
                                 .content_type = attrs->content_type,
                                 .if_none_match = attrs->if_absent};
    lakefs_object_stats ignored;
    lakefs_object_stats *result = out ? out : &ignored;
    memset(result, 0, sizeof(*result)); /* freed on every path below */
    lakefs_upload_options parts_opt = opt;
    /* completePresignMultipartUpload has no If-None-Match: a conditional
     * create in parts rests on the caller's check that the path is free. */
    parts_opt.if_none_match = false;
    /* A small file: one request. Its metadata must reach lakeFS unchanged
     * through headers; else the staging flow, which sends it as JSON. */
    bool direct = direct_size(caps, size) &&
                  metadata_fits_headers(&md, attrs->content_type);
    if (upload_in_parts(caps, size))
        rc = upload_multipart(c, caps, repo, branch, path, fd, size,
                              &parts_opt, result, err);
    else if (caps && caps->presign && !direct)
        rc = upload_presigned(c, repo, branch, path, fd, size, &opt, result,
                              err);
    else if (metadata_fits_headers(&md, NULL))
        rc = lakefs_upload_object_fd(c, repo, branch, path, fd, size, &opt,
                                     result, err);
    else
        rc = upload_then_set_metadata(c, repo, branch, path, fd, size, &opt,
                                      result, err);
    if (!out)
        lakefs_object_stats_free(&ignored);
    lakefs_metadata_free(&md);
    return rc;
}
