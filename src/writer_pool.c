/*
 * writer_pool.c - -o async_close: a close queues its file's upload and
 * returns; a bounded pool of threads uploads queued files in parallel,
 * oldest first. A queued file is in the state writer.h already keeps for
 * one whose upload failed (staged data file, PENDING journal, shown by
 * stat, readdir and reads, recovered by the next mount after a crash), so
 * the pool adds no state of its own beyond the queue: the upload, its
 * outcome (FAILED and background retries, conflicts) and the rules on
 * names (unlink and rename wait for an upload in flight through the io
 * lock; a detached file is never uploaded) are writer.c's.
 */
#include "writer_internal.h"
#include "threads.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool writer_async(const writer *w)
{
    return w->cfg.upload_threads > 0;
}

/* Under w->lock: (repo, branch)'s record, or NULL. Few branches have
 * files pending at once: a list. */
static pool_branch *branch_find_locked(writer *w, const char *repo,
                                       const char *branch)
{
    for (pool_branch *b = w->pool_branches; b; b = b->next)
        if (strcmp(b->repo, repo) == 0 && strcmp(b->branch, branch) == 0)
            return b;
    return NULL;
}

/* Under w->lock: one more pending hold of f (queued, or a thread on it). */
static int hold_locked(writer *w, wfile *f)
{
    if (!f->pb) {
        pool_branch *b = branch_find_locked(w, f->repo, f->branch);
        if (!b) {
            b = calloc(1, sizeof(*b));
            if (b && (!(b->repo = strdup(f->repo)) ||
                      !(b->branch = strdup(f->branch)))) {
                free(b->repo);
                free(b);
                b = NULL;
            }
            if (!b)
                return -ENOMEM;
            b->next = w->pool_branches;
            w->pool_branches = b;
        }
        f->pb = b;
    }
    f->pb->pending++;
    return 0;
}

/* Under w->lock: one hold of f less; its branch settled when none is
 * left. */
static void unhold_locked(writer *w, wfile *f)
{
    pool_branch *b = f->pb;
    if (!f->queued && f->busy == 0)
        f->pb = NULL; /* f holds none: a later hold looks the branch up */
    if (--b->pending > 0)
        return;
    pool_branch **p = &w->pool_branches;
    while (*p != b)
        p = &(*p)->next;
    *p = b->next;
    free(b->repo);
    free(b->branch);
    free(b);
    pthread_cond_broadcast(&w->settled);
}

/* Under w->lock: f joins the queue's tail with a reference of its own,
 * unless it is queued already (the upload will take its newest bytes) or
 * has nothing to send. 0, or -ENOMEM (not queued). */
static int enqueue_locked(writer *w, wfile *f)
{
    pthread_mutex_lock(&f->state);
    bool todo = !f->detached && (f->st == W_DIRTY || f->st == W_FAILED);
    pthread_mutex_unlock(&f->state);
    if (!todo || f->queued)
        return 0;
    if (hold_locked(w, f) != 0)
        return -ENOMEM;
    f->queued = true;
    f->refs++;
    f->q_next = NULL;
    if (w->q_tail)
        w->q_tail->q_next = f;
    else
        w->q_head = f;
    w->q_tail = f;
    w->pool.queued++;
    pthread_cond_signal(&w->q_wake);
    return 0;
}

int wfile_queue(wfile *f)
{
    writer *w = f->w;
    if (!writer_async(w) || w->n_workers == 0)
        return wfile_flush(f, NULL);
    pthread_mutex_lock(&w->lock);
    int rc = enqueue_locked(w, f);
    pthread_mutex_unlock(&w->lock);
    /* Without memory to count it, the close uploads it itself. */
    return rc ? wfile_flush(f, NULL) : 0;
}

static void *pool_main(void *arg)
{
    writer *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->q_head && !w->stopping)
            pthread_cond_wait(&w->q_wake, &w->lock);
        wfile *f = w->q_head;
        if (!f)
            break; /* stopping, and the queue is drained */
        w->q_head = f->q_next;
        if (!w->q_head)
            w->q_tail = NULL;
        f->q_next = NULL;
        f->queued = false; /* a close from now on queues it again */
        f->busy++;         /* the queue's hold is this thread's now */
        w->pool.queued--;
        if (++w->pool.in_flight > w->pool.max_in_flight)
            w->pool.max_in_flight = w->pool.in_flight;
        pthread_mutex_unlock(&w->lock);
        /* As a close would: last writer wins. A failure is FAILED and
         * goes to the retry thread (conditional) once unreferenced. */
        pthread_mutex_lock(&f->io);
        int rc = writer_upload_once(f, false, NULL);
        pthread_mutex_unlock(&f->io);
        pthread_mutex_lock(&w->lock);
        f->busy--;
        w->pool.in_flight--;
        if (rc == 1)
            w->pool.done++;
        else if (rc != 0)
            w->pool.failed++;
        unhold_locked(w, f);
        pthread_mutex_unlock(&w->lock);
        wfile_release(f);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int writer_pool_start(writer *w)
{
    if (!writer_async(w))
        return 0;
    w->workers = calloc((size_t)w->cfg.upload_threads, sizeof(*w->workers));
    if (!w->workers)
        return -ENOMEM;
    int rc = 0;
    while (rc == 0 && w->n_workers < w->cfg.upload_threads) {
        rc = -thread_start_masked(&w->workers[w->n_workers], pool_main, w);
        if (rc == 0)
            w->n_workers++;
    }
    w->pool.threads = (uint64_t)w->n_workers;
    return rc;
}

void writer_pool_stop(writer *w)
{
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_broadcast(&w->q_wake);
    pthread_mutex_unlock(&w->lock);
    for (int i = 0; i < w->n_workers; i++)
        pthread_join(w->workers[i], NULL);
    w->n_workers = 0;
    free(w->workers);
    w->workers = NULL;
    /* Without threads (none started), what is queued only drops its
     * reference: writer_free's last pass uploads it. */
    pthread_mutex_lock(&w->lock);
    while (w->q_head) {
        wfile *f = w->q_head;
        w->q_head = f->q_next;
        f->queued = false;
        f->refs--;
        unhold_locked(w, f);
    }
    w->q_tail = NULL;
    pthread_mutex_unlock(&w->lock);
}

void writer_settle_branch(writer *w, const char *repo, const char *branch)
{
    if (!writer_async(w))
        return;
    pthread_mutex_lock(&w->lock);
    /* Woken when a branch's last pending file is done: a lookup among
     * the branches with files pending, not a walk of the table. */
    while (w->n_workers > 0 && branch_find_locked(w, repo, branch))
        pthread_cond_wait(&w->settled, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

void writer_pool_flush_branch(writer *w, const char *repo, const char *branch)
{
    pthread_mutex_lock(&w->lock);
    /* The table is newest first: walk it backwards for the oldest. */
    wfile *last = w->files;
    while (last && last->next)
        last = last->next;
    for (wfile *f = last; f && w->n_workers > 0; f = f->prev)
        if (strcmp(f->repo, repo) == 0 && strcmp(f->branch, branch) == 0)
            enqueue_locked(w, f);
    pthread_mutex_unlock(&w->lock);
    writer_settle_branch(w, repo, branch);
}

void writer_pool_get_stats(writer *w, writer_pool_stats *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->pool;
    pthread_mutex_unlock(&w->lock);
}
