/*
 * jsonnul.c - U+0000 inside lakeFS's JSON strings (jsonnul.h).
 */
#include "jsonnul.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

static const char escape[] = "\\u0000";

int jsonnul_decode(const char *body, size_t len, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (!body || !memmem(body, len, escape, sizeof(escape) - 1))
        return 0;
    char *d = malloc(len + 1);
    if (!d)
        return -ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        if (body[i] != '\\') {
            d[o++] = body[i++];
        } else if (len - i >= sizeof(escape) - 1 &&
                   memcmp(body + i, escape, sizeof(escape) - 1) == 0) {
            memcpy(d + o, JSONNUL_MARK, 2);
            o += 2;
            i += sizeof(escape) - 1;
        } else { /* an escape pair as it is: "\\u0000" is text */
            d[o++] = body[i++];
            if (i < len)
                d[o++] = body[i++];
        }
    }
    d[o] = '\0';
    *out = d;
    *out_len = o;
    return 0;
}

cJSON *jsonnul_parse(const char *text)
{
    if (!text)
        return NULL;
    char *decoded = NULL;
    size_t n = 0;
    if (jsonnul_decode(text, strlen(text), &decoded, &n))
        return NULL;
    cJSON *doc = cJSON_Parse(decoded ? decoded : text);
    free(decoded);
    return doc;
}

char *jsonnul_print(const cJSON *doc, bool formatted)
{
    char *text = formatted ? cJSON_Print(doc) : cJSON_PrintUnformatted(doc);
    if (!text || !strstr(text, JSONNUL_MARK))
        return text;
    strbuf sb = STRBUF_INIT;
    const char *p = text;
    for (const char *m; (m = strstr(p, JSONNUL_MARK)); p = m + 2) {
        strbuf_append(&sb, p, (size_t)(m - p));
        strbuf_puts(&sb, escape);
    }
    strbuf_puts(&sb, p);
    free(text);
    return strbuf_detach(&sb);
}

size_t jsonnul_to_bytes(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    for (const char *p = s; *p; n++) {
        bool mark = jsonnul_at(p);
        if (n < cap)
            buf[n] = mark ? '\0' : *p;
        p += mark ? 2 : 1;
    }
    return n;
}

char *jsonnul_from_bytes(const char *data, size_t size)
{
    size_t nuls = 0;
    for (size_t i = 0; i < size; i++)
        nuls += data[i] == '\0';
    char *s = malloc(size + nuls + 1);
    if (!s)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < size; i++) {
        if (data[i] == '\0') {
            memcpy(s + o, JSONNUL_MARK, 2);
            o += 2;
        } else {
            s[o++] = data[i];
        }
    }
    s[o] = '\0';
    return s;
}
