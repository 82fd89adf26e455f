/*
 * log.h - where the mount reports what it cannot show through the
 * filesystem: skipped object names, server errors, retries given up. To a
 * file (-o log_file=), to stderr in the foreground, else to syslog. Callers
 * never pass secrets; the logger never adds any.
 */
#ifndef LAKEFUSE_LOG_H
#define LAKEFUSE_LOG_H

#include <stdarg.h>
#include <stdbool.h>

typedef enum log_level {
    LOG_LEVEL_ERROR,
    LOG_LEVEL_WARNING,
    LOG_LEVEL_INFO,
    LOG_LEVEL_DEBUG
} log_level;

typedef struct logger logger;

/* path: append to that file (created 0600); else stderr when foreground, syslog when not.
 * Messages above max_level are dropped. NULL with *err set on failure. */
logger *logger_open(const char *path, bool foreground, log_level max_level,
                    int *err);
void logger_close(logger *lg);

void logger_write(logger *lg, log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void logger_vwrite(logger *lg, log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
