/* Starting the daemon's own threads. Signals (SIGINT, SIGTERM, SIGHUP) are
 * for libfuse's handler on the main thread, which ends the session loop: a
 * signal delivered to a helper thread instead would set the session's exit
 * flag without waking the loop. So every helper starts with all signals
 * blocked (and threads it starts, such as libcurl's resolver, inherit that). */
#ifndef LAKEFUSE_THREADS_H
#define LAKEFUSE_THREADS_H

#include <pthread.h>
#include <signal.h>

/* pthread_create with every signal blocked in the new thread; returns its
 * error number (0 on success). */
static inline int thread_start_masked(pthread_t *t, void *(*fn)(void *),
                                      void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

#endif
