/*
 * log.c - one line per message, with a UTC timestamp and a level, written
 * with a single write under a lock so lines from FUSE threads never
 * interleave. Never allocates per message beyond a bounded stack buffer.
 * A log file it creates is private to the user (0600).
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

struct logger {
    pthread_mutex_t lock;
    FILE *file;       /* owned unless it is stderr */
    bool owns_file;
    bool use_syslog;
    log_level max_level;
};

static const char *const level_names[] = {"error", "warning", "info",
                                          "debug"};

logger *logger_open(const char *path, bool foreground, log_level max_level,
                    int *err)
{
    logger *lg = calloc(1, sizeof(*lg));
    if (!lg) {
        *err = -ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&lg->lock, NULL);
    lg->max_level = max_level;
    if (path) {
        /* Created 0600: server messages and object names are nobody
         * else's business. An existing file keeps its mode. */
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        lg->file = fd >= 0 ? fdopen(fd, "a") : NULL;
        if (!lg->file) {
            *err = -errno;
            if (fd >= 0)
                close(fd);
            pthread_mutex_destroy(&lg->lock);
            free(lg);
            return NULL;
        }
        lg->owns_file = true;
    } else if (foreground) {
        lg->file = stderr;
    } else {
        lg->use_syslog = true;
        openlog("lakefuse", LOG_PID, LOG_DAEMON);
    }
    *err = 0;
    return lg;
}

void logger_close(logger *lg)
{
    if (!lg)
        return;
    if (lg->owns_file)
        fclose(lg->file);
    if (lg->use_syslog)
        closelog();
    pthread_mutex_destroy(&lg->lock);
    free(lg);
}

void logger_vwrite(logger *lg, log_level level, const char *fmt, va_list ap)
{
    if (!lg || level > lg->max_level)
        return;
    char msg[LOG_LINE_MAX];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* One line per message: a server string with a newline stays on it. */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    if (lg->use_syslog) {
        static const int priorities[] = {LOG_ERR, LOG_WARNING, LOG_INFO,
                                         LOG_DEBUG};
        syslog(priorities[level], "%s: %s", level_names[level], msg);
        return;
    }
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[32];
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    pthread_mutex_lock(&lg->lock);
    fprintf(lg->file, "%s lakefuse[%ld]: %s: %s\n", stamp, (long)getpid(),
            level_names[level], msg);
    fflush(lg->file);
    pthread_mutex_unlock(&lg->lock);
}

void logger_write(logger *lg, log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    logger_vwrite(lg, level, fmt, ap);
    va_end(ap);
}
