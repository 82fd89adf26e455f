/*
 * strbuf.h - a growable NUL-terminated byte buffer for building URLs and
 * bodies. Errors are sticky: after a failed allocation every append is a
 * no-op and strbuf_error() reports -ENOMEM, so callers check once.
 */
#ifndef LAKEFUSE_STRBUF_H
#define LAKEFUSE_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct strbuf {
    char *data; /* always NUL-terminated once anything was appended */
    size_t len;
    size_t cap;
    size_t limit; /* 0: unlimited; appends past it fail with -EFBIG */
    int error;    /* 0 or a negative errno */
} strbuf;

#define STRBUF_INIT {NULL, 0, 0, 0, 0}

void strbuf_append(strbuf *sb, const void *data, size_t len);
void strbuf_puts(strbuf *sb, const char *s);
void strbuf_printf(strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s percent-encoded: everything but RFC 3986 unreserved
 * characters (A-Z a-z 0-9 - . _ ~) is escaped, "/" included; the bytes
 * C0 80 (U+0000 inside lakefuse, jsonnul.h) as %00. */
void strbuf_put_escaped(strbuf *sb, const char *s);
int strbuf_error(const strbuf *sb);
/* Hands the buffer to the caller (never NULL on success: "" when empty). */
char *strbuf_detach(strbuf *sb);
void strbuf_release(strbuf *sb);

#endif
