/*
 * jsonnul.h - U+0000 inside lakeFS's JSON strings.
 *
 * Real lakeFS (v1.84) stores object keys and user metadata that hold
 * U+0000, as an SDK sends them, and lists them back as "a\u0000b". cJSON's
 * strings are C strings: parsed as they are, "a\u0000b" would be cut to
 * "a" (another object's name) and a metadata value written back by a
 * chmod or an edit would lose its tail. So inside lakefuse that character
 * is the two bytes C0 80 (JSONNUL_MARK, the "modified UTF-8" NUL): never
 * valid UTF-8, so no name, value or message a program hands the mount can
 * hold it (each is checked as UTF-8 where it enters), and every answer,
 * body and URL made from a string turns it back into U+0000 exactly.
 */
#ifndef LAKEFUSE_JSONNUL_H
#define LAKEFUSE_JSONNUL_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#define JSONNUL_MARK "\xc0\x80"

/* true when the NUL-terminated bytes at p start with JSONNUL_MARK. */
static inline bool jsonnul_at(const char *p)
{
    return p[0] == JSONNUL_MARK[0] && p[1] == JSONNUL_MARK[1];
}

/* The JSON text body (len bytes) with every \u0000 escape written as
 * JSONNUL_MARK, in *out (NUL-terminated, *out_len bytes; the caller frees
 * it), or *out NULL when body holds none (parse body itself). 0 or
 * -ENOMEM. */
int jsonnul_decode(const char *body, size_t len, char **out, size_t *out_len);

/* cJSON_Parse of text (NUL-terminated) after jsonnul_decode. */
cJSON *jsonnul_parse(const char *text);

/* cJSON_Print (formatted) or cJSON_PrintUnformatted of doc, with every
 * JSONNUL_MARK written as \u0000; NULL on ENOMEM. */
char *jsonnul_print(const cJSON *doc, bool formatted);

/* s as the bytes it stands for (each JSONNUL_MARK a NUL byte): written to
 * buf when cap allows; returns their count. */
size_t jsonnul_to_bytes(const char *s, char *buf, size_t cap);

/* size bytes as a string (each NUL byte a JSONNUL_MARK); NULL on ENOMEM. */
char *jsonnul_from_bytes(const char *data, size_t size);

#endif
