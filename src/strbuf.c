/*
 * strbuf.c - growable byte buffer; see strbuf.h. Never writes past its
 * allocation and never grows past its limit.
 */
#include "strbuf.h"
#include "jsonnul.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int strbuf_reserve(strbuf *sb, size_t extra)
{
    if (sb->error)
        return sb->error;
    if (extra > SIZE_MAX - sb->len - 1 ||
        (sb->limit && sb->len + extra > sb->limit)) {
        sb->error = -EFBIG;
        return sb->error;
    }
    size_t need = sb->len + extra + 1;
    if (need <= sb->cap)
        return 0;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *data = realloc(sb->data, cap);
    if (!data) {
        sb->error = -ENOMEM;
        return sb->error;
    }
    sb->data = data;
    sb->cap = cap;
    return 0;
}

void strbuf_append(strbuf *sb, const void *data, size_t len)
{
    if (strbuf_reserve(sb, len))
        return;
    if (len)
        memcpy(sb->data + sb->len, data, len);
    sb->len += len;
    sb->data[sb->len] = '\0';
}

void strbuf_puts(strbuf *sb, const char *s)
{
    strbuf_append(sb, s, strlen(s));
}

void strbuf_printf(strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        sb->error = sb->error ? sb->error : -EINVAL;
        return;
    }
    if (strbuf_reserve(sb, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

void strbuf_put_escaped(strbuf *sb, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (jsonnul_at((const char *)p)) { /* U+0000 */
            strbuf_append(sb, "%00", 3);
            p++;
        } else if (is_unreserved(*p)) {
            strbuf_append(sb, p, 1);
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            strbuf_append(sb, esc, 3);
        }
    }
}

int strbuf_error(const strbuf *sb)
{
    return sb->error;
}

char *strbuf_detach(strbuf *sb)
{
    if (sb->error) {
        strbuf_release(sb);
        return NULL;
    }
    if (!sb->data)
        strbuf_append(sb, "", 0);
    char *out = sb->data;
    sb->data = NULL;
    sb->len = sb->cap = 0;
    return out;
}

void strbuf_release(strbuf *sb)
{
    free(sb->data);
    sb->data = NULL;
    sb->len = sb->cap = 0;
    sb->error = 0;
}
