/*
 * eager_upload.c - the parts of a large file go up while it is being
 * written (eager_upload.h). A file written from offset 0 is followed by
 * its written prefix; once that holds a whole part (or reaches the
 * multipart threshold, when lower) a thread creates a presigned multipart
 * upload, and each part the prefix has moved past is PUT straight from the
 * staged file by up to EAGER_THREADS threads. Starting at the first part
 * rather than at the threshold lets the upload keep pace with a fast
 * writer from the start; a file that then ends below the threshold still
 * completes in parts (a whole part already went up; the last part may be
 * any size), so its ETag has the multipart form (upload_eager_in_parts).
 * A write into a part that is going or has gone up marks it dirty: the
 * close sends it again (the staged file is the truth, the part's ETag is
 * replaced). The close sends the dirty parts and those not yet sent (the
 * tail, parts of holes) with the same threads plus its own, then
 * completes. A failed part or a refused create make the close abort the
 * upload and start over with upload_fd.
 */
#include "eager_upload.h"
#include "threads.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Threads PUTting parts of one file: upload.c's parallelism. */
#define EAGER_THREADS 4
/* Threads of all eager uploads of the process together: many large files
 * written at once share these; the rest send their parts at close. */
#define EAGER_THREADS_TOTAL 16

static int eager_threads_running; /* atomic */

/* One thread's place among EAGER_THREADS_TOTAL, or false. */
static bool reserve_thread(void)
{
    if (__atomic_add_fetch(&eager_threads_running, 1, __ATOMIC_ACQ_REL) <=
        EAGER_THREADS_TOTAL)
        return true;
    __atomic_sub_fetch(&eager_threads_running, 1, __ATOMIC_ACQ_REL);
    return false;
}

static void release_threads(int n)
{
    __atomic_sub_fetch(&eager_threads_running, n, __ATOMIC_ACQ_REL);
}

/* thread_start_masked within the process-wide bound. */
static int start_bounded(pthread_t *t, void *(*fn)(void *), void *arg)
{
    if (!reserve_thread())
        return -EAGAIN;
    int rc = thread_start_masked(t, fn, arg);
    if (rc != 0)
        release_threads(1);
    return rc;
}
/* Presigned URLs asked for at create (1 GiB of 16 MiB parts); a part past
 * them asks uploadPart for its own (one request each). */
#define EAGER_URLS 64

typedef enum part_state {
    PART_READY, /* to be sent */
    PART_BUSY,  /* a thread is sending it */
    PART_DONE,  /* sent: etag */
} part_state;

typedef struct eager_part {
    part_state st;
    bool dirty; /* written again since its PUT began: sent again at close */
    char *etag;
} eager_part;

struct eager_upload {
    lakefs_client *c;
    upload_caps caps;
    char *repo, *branch, *key;
    int fd;
    int64_t part_size;
    pthread_mutex_t lock; /* everything below */
    pthread_cond_t cond;  /* a part became ready or finished, create done */
    int64_t seq_end;      /* bytes [0, seq_end) were written in order */
    bool started;         /* the creating thread runs */
    bool created;         /* mpu is valid */
    bool create_done;     /* create answered (created or broken) */
    lakefs_multipart_upload mpu;
    bool broken;   /* create or a part failed: the close starts over */
    bool closing;  /* the close waits: every ready part goes, then exit */
    bool stop;     /* abandoned: no part starts */
    eager_part *parts; /* parts whose range is complete (or, closing, all) */
    int n_parts;
    int cap_parts;
    int scan;  /* no READY part below it */
    int ready; /* READY parts */
    int busy;  /* BUSY parts */
    int idle;  /* threads waiting for work */
    pthread_t threads[EAGER_THREADS];
    int n_threads;
    int rc; /* the first failure, with err */
    lakefs_error err;
};

static void set_message(lakefs_error *err, const char *msg)
{
    err->status = 0;
    err->not_applied = false;
    snprintf(err->message, sizeof(err->message), "%s", msg);
}

static void fail_locked(eager_upload *e, int rc, const lakefs_error *err)
{
    if (!e->broken) {
        e->broken = true;
        e->rc = rc;
        e->err = *err;
    }
    pthread_cond_broadcast(&e->cond);
}

/* ---- the threads ---- */

/* The part's presigned URL: create's, else a fresh one from uploadPart. */
static int part_url(eager_upload *e, int i, bool fresh, char **url,
                    lakefs_error *err)
{
    if (!fresh && (size_t)i < e->mpu.url_count) {
        *url = strdup(e->mpu.presigned_urls[i]);
        return *url ? 0 : -ENOMEM;
    }
    int rc = lakefs_upload_part_url(e->c, e->repo, e->branch, e->key,
                                    e->mpu.upload_id, i + 1,
                                    e->mpu.physical_address, url, err);
    if (rc == 0 && (rc = lakefs_url_check(e->c, *url, err)) != 0) {
        free(*url);
        *url = NULL;
    }
    return rc;
}

/* PUTs part i from the staged file; a URL refused (expired while the file
 * was being written) is replaced once. */
static int put_part(eager_upload *e, int i, int64_t len, char **etag,
                    lakefs_error *err)
{
    int64_t offset = (int64_t)i * e->part_size;
    int rc = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        char *url = NULL;
        rc = part_url(e, i, attempt > 0, &url, err);
        if (rc == 0)
            rc = lakefs_put_presigned_range_fd(e->c, url, e->fd, offset,
                                               len, etag, err);
        free(url);
        if (rc != -EPERM && rc != -EACCES)
            break;
    }
    return rc;
}

/* Under e->lock: the lowest READY part, now BUSY, or -1. */
static int take_locked(eager_upload *e)
{
    if (e->ready == 0)
        return -1;
    for (int i = e->scan; i < e->n_parts; i++) {
        if (e->parts[i].st == PART_READY) {
            e->parts[i].st = PART_BUSY;
            e->parts[i].dirty = false;
            e->ready--;
            e->busy++;
            e->scan = i + 1;
            return i;
        }
    }
    return -1;
}

static int64_t part_len_locked(const eager_upload *e, int i)
{
    int64_t start = (int64_t)i * e->part_size;
    int64_t end = start + e->part_size;
    return (end > e->seq_end ? e->seq_end : end) - start;
}

/* Under e->lock: sends ready parts until told to stop, the upload broke,
 * or (closing) none is left. Drops the lock around each PUT. */
static void work_locked(eager_upload *e)
{
    lakefs_error err = {0};
    for (;;) {
        if (e->stop || e->broken)
            break;
        int i = take_locked(e);
        if (i < 0) {
            if (e->closing)
                break;
            e->idle++;
            pthread_cond_wait(&e->cond, &e->lock);
            e->idle--;
            continue;
        }
        int64_t len = part_len_locked(e, i);
        pthread_mutex_unlock(&e->lock);
        char *etag = NULL;
        int rc = put_part(e, i, len, &etag, &err);
        pthread_mutex_lock(&e->lock);
        e->busy--;
        eager_part *p = &e->parts[i];
        if (rc == 0) {
            free(p->etag);
            p->etag = etag;
            p->st = PART_DONE;
            if (p->dirty && e->closing) { /* written during its PUT */
                p->st = PART_READY;
                p->dirty = false;
                e->ready++;
                if (e->scan > i)
                    e->scan = i;
            }
        } else {
            free(etag);
            p->st = PART_DONE; /* not sent; the upload is broken anyway */
            p->dirty = true;
            fail_locked(e, rc, &err);
        }
        pthread_cond_broadcast(&e->cond);
    }
}

static void spawn_locked(eager_upload *e);

/* Checks every URL create gave before a part goes anywhere. */
static int check_urls(eager_upload *e, lakefs_error *err)
{
    for (size_t i = 0; i < e->mpu.url_count; i++) {
        int rc = lakefs_url_check(e->c, e->mpu.presigned_urls[i], err);
        if (rc)
            return rc;
    }
    return 0;
}

static void *creator_main(void *arg)
{
    eager_upload *e = arg;
    lakefs_error err = {0};
    lakefs_multipart_upload mpu;
    memset(&mpu, 0, sizeof(mpu));
    int rc = lakefs_create_presign_multipart(e->c, e->repo, e->branch, e->key,
                                             EAGER_URLS, &mpu, &err);
    pthread_mutex_lock(&e->lock);
    e->create_done = true;
    if (rc == 0) {
        e->mpu = mpu;
        e->created = true;
        rc = check_urls(e, &err);
    }
    if (rc) {
        fail_locked(e, rc, &err);
    } else {
        spawn_locked(e);
        work_locked(e);
    }
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

static void *worker_main(void *arg)
{
    eager_upload *e = arg;
    pthread_mutex_lock(&e->lock);
    work_locked(e);
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

/* Under e->lock, once created: one more thread per ready part nobody
 * waits for, up to EAGER_THREADS in all. A thread that cannot start
 * costs only parallelism (the close sends what is left itself). */
static void spawn_locked(eager_upload *e)
{
    while (e->created && !e->stop && !e->broken &&
           e->n_threads < EAGER_THREADS && e->ready > e->idle &&
           start_bounded(&e->threads[e->n_threads], worker_main, e) == 0)
        e->n_threads++;
    pthread_cond_broadcast(&e->cond);
}

/* ---- the writer's side ---- */

static eager_upload *eager_new(lakefs_client *c, const upload_caps *caps,
                               const char *repo, const char *branch,
                               const char *key, int fd)
{
    eager_upload *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->c = c;
    e->caps = *caps;
    e->fd = fd;
    e->part_size = upload_part_size(caps, 0);
    e->repo = strdup(repo);
    e->branch = strdup(branch);
    e->key = strdup(key);
    if (!e->repo || !e->branch || !e->key ||
        pthread_mutex_init(&e->lock, NULL) != 0) {
        free(e->repo);
        free(e->branch);
        free(e->key);
        free(e);
        return NULL;
    }
    pthread_cond_init(&e->cond, NULL);
    return e;
}

/* Under e->lock: parts up to count exist, new ones READY. */
static bool add_parts_locked(eager_upload *e, int count)
{
    if (count > e->cap_parts) {
        int cap = e->cap_parts ? e->cap_parts : 64;
        while (cap < count)
            cap *= 2;
        eager_part *p = realloc(e->parts, (size_t)cap * sizeof(*p));
        if (!p)
            return false;
        e->parts = p;
        e->cap_parts = cap;
    }
    for (int i = e->n_parts; i < count; i++) {
        e->parts[i] = (eager_part){.st = PART_READY};
        e->ready++;
    }
    if (e->n_parts < count && e->scan > e->n_parts)
        e->scan = e->n_parts;
    if (count > e->n_parts)
        e->n_parts = count;
    return true;
}

void eager_note_write(eager_upload **ep, lakefs_client *c,
                      const upload_caps *caps, const char *repo,
                      const char *branch, const char *key, int fd,
                      int64_t size_before, int64_t off, int64_t len)
{
    eager_upload *e = *ep;
    if (!e) {
        /* Only a file written in order from its start, on a server that
         * takes presigned multipart uploads. */
        if (len <= 0 || off != 0 || size_before != 0 || !caps->eager ||
            !upload_in_parts(caps, INT64_MAX))
            return;
        e = *ep = eager_new(c, caps, repo, branch, key, fd);
        if (!e)
            return;
    }
    pthread_mutex_lock(&e->lock);
    if (e->broken || e->stop) {
        pthread_mutex_unlock(&e->lock);
        return;
    }
    /* Parts already going or gone: the close sends them again. */
    int64_t end = off + len;
    for (int64_t i = off / e->part_size;
         i < e->n_parts && i * e->part_size < end; i++)
        if (e->parts[i].st != PART_READY)
            e->parts[i].dirty = true;
    if (off <= e->seq_end && end > e->seq_end) {
        e->seq_end = end;
        int64_t whole = e->seq_end / e->part_size;
        if (whole > LAKEFS_MULTIPART_MAX_PARTS) {
            lakefs_error err = {0};
            set_message(&err, "too many parts for an eager upload");
            fail_locked(e, -EFBIG, &err);
        } else if (upload_eager_in_parts(&e->caps, e->seq_end)) {
            if (!add_parts_locked(e, (int)whole)) {
                lakefs_error err = {0};
                set_message(&err, "out of memory");
                fail_locked(e, -ENOMEM, &err);
            } else if (!e->started) {
                e->started = true;
                if (start_bounded(&e->threads[0], creator_main, e) == 0) {
                    e->n_threads = 1;
                } else {
                    lakefs_error err = {0};
                    set_message(&err, "cannot start a thread");
                    e->create_done = true;
                    fail_locked(e, -EAGAIN, &err);
                }
            } else {
                spawn_locked(e);
            }
        }
    }
    pthread_mutex_unlock(&e->lock);
}

/* Stops every thread (parts in flight finish) and joins them. */
static void stop_threads(eager_upload *e)
{
    pthread_mutex_lock(&e->lock);
    e->stop = true;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
    for (int i = 0; i < e->n_threads; i++)
        pthread_join(e->threads[i], NULL);
    release_threads(e->n_threads);
    e->n_threads = 0;
}

static void eager_free(eager_upload *e)
{
    for (int i = 0; i < e->n_parts; i++)
        free(e->parts[i].etag);
    free(e->parts);
    lakefs_multipart_upload_free(&e->mpu);
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->lock);
    free(e->repo);
    free(e->branch);
    free(e->key);
    free(e);
}

/* Best effort: the store drops the parts; nothing was ever visible. */
static void abort_upload(eager_upload *e)
{
    if (!e->created)
        return;
    lakefs_error ignored = {0};
    lakefs_abort_presign_multipart(e->c, e->repo, e->branch, e->key,
                                   e->mpu.upload_id, e->mpu.physical_address,
                                   &ignored);
}

void eager_note_truncate(eager_upload **ep, int64_t size)
{
    eager_upload *e = *ep;
    if (!e)
        return;
    /* Parts exist only below seq_end: a size at or above it changes no
     * byte any part holds (a grow adds zeros the close sends). No write
     * runs meanwhile (the io lock), so seq_end is stable here. */
    pthread_mutex_lock(&e->lock);
    bool keep = size >= e->seq_end;
    pthread_mutex_unlock(&e->lock);
    if (!keep)
        eager_abandon(ep);
}

void eager_abandon(eager_upload **ep)
{
    eager_upload *e = *ep;
    if (!e)
        return;
    *ep = NULL;
    stop_threads(e);
    abort_upload(e);
    eager_free(e);
}

/* The upload can finish as a size-byte object at path. */
static bool fits(const eager_upload *e, const upload_caps *caps,
                 const char *path, int64_t size)
{
    return e->created && !e->broken && strcmp(e->key, path) == 0 &&
           upload_eager_in_parts(caps, size) &&
           upload_part_size(caps, size) == e->part_size &&
           size >= e->seq_end;
}

/* Sends what is left of a size-byte file and completes. *part_failed:
 * a part could not be sent (the upload is aborted). */
static int finish(eager_upload *e, int64_t size, const upload_attrs *attrs,
                  lakefs_object_stats *out, lakefs_error *err,
                  bool *part_failed)
{
    int count = (int)(size / e->part_size + (size % e->part_size != 0));
    pthread_mutex_lock(&e->lock);
    e->closing = true;
    e->seq_end = size; /* no write runs meanwhile (the io lock) */
    int rc = add_parts_locked(e, count) ? 0 : -ENOMEM;
    for (int i = 0; rc == 0 && i < e->n_parts; i++)
        if (e->parts[i].st == PART_DONE && e->parts[i].dirty) {
            e->parts[i].st = PART_READY;
            e->parts[i].dirty = false;
            e->ready++;
        }
    e->scan = 0;
    if (rc == 0) {
        spawn_locked(e);
        for (;;) { /* the closing thread sends parts too */
            work_locked(e);
            if (e->broken || (e->busy == 0 && e->ready == 0))
                break;
            if (e->ready == 0)
                pthread_cond_wait(&e->cond, &e->lock);
        }
        if (e->broken) {
            rc = e->rc;
            *err = e->err;
            *part_failed = true;
        }
    }
    pthread_mutex_unlock(&e->lock);
    stop_threads(e);
    lakefs_upload_part *parts =
        rc == 0 ? calloc((size_t)count, sizeof(*parts)) : NULL;
    if (rc == 0 && !parts)
        rc = -ENOMEM;
    for (int i = 0; rc == 0 && i < count; i++)
        parts[i] = (lakefs_upload_part){i + 1, e->parts[i].etag};
    lakefs_metadata md = {0};
    if (rc == 0)
        rc = upload_build_metadata(attrs, &md);
    if (rc == 0) {
        /* As upload_fd's parts: no If-None-Match on complete. */
        lakefs_upload_options opt = {.metadata = &md,
                                     .content_type = attrs->content_type};
        rc = lakefs_complete_presign_multipart(
            e->c, e->repo, e->branch, e->key, e->mpu.upload_id,
            e->mpu.physical_address, parts, (size_t)count, &opt, out, err);
        lakefs_metadata_free(&md);
    }
    free(parts);
    if (rc)
        abort_upload(e);
    return rc;
}

int eager_upload_fd(eager_upload **ep, lakefs_client *c,
                    const upload_caps *caps, const char *repo,
                    const char *branch, const char *path, int fd,
                    int64_t size, const upload_attrs *attrs,
                    lakefs_object_stats *out, lakefs_error *err)
{
    eager_upload *e = *ep;
    if (e) {
        /* A create in flight answers first: it decides which way. */
        pthread_mutex_lock(&e->lock);
        while (e->started && !e->create_done)
            pthread_cond_wait(&e->cond, &e->lock);
        /* An exclusive create is never finished here: a complete cannot
         * carry If-None-Match, and below the threshold upload_fd's link
         * can. */
        bool ok = !attrs->if_absent && fits(e, caps, path, size);
        pthread_mutex_unlock(&e->lock);
        if (ok) {
            *ep = NULL;
            lakefs_object_stats ignored;
            lakefs_object_stats *result = out ? out : &ignored;
            memset(result, 0, sizeof(*result));
            bool part_failed = false;
            int rc = finish(e, size, attrs, result, err, &part_failed);
            if (!out)
                lakefs_object_stats_free(&ignored);
            eager_free(e);
            /* A part that failed (in the background or now) gets what any
             * failed eager part gets: the whole file once more. */
            if (!part_failed)
                return rc;
            memset(err, 0, sizeof(*err));
            return upload_fd(c, caps, repo, branch, path, fd, size, attrs,
                             out, err);
        }
        eager_abandon(ep);
    }
    return upload_fd(c, caps, repo, branch, path, fd, size, attrs, out, err);
}
