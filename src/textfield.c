/*
 * textfield.c - quoting of a field of a line of text (textfield.h).
 */
#include "textfield.h"

#include "jsonnul.h"

#include <stdbool.h>

static bool plain_byte(const unsigned char *p)
{
    return *p >= 0x20 && *p != 0x7f && *p != '\\' && *p != '"' &&
           !jsonnul_at((const char *)p);
}

void textfield_put(FILE *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    bool plain = *p != '"';
    for (; plain && *p; p++)
        plain = plain_byte(p);
    if (plain) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (p = (const unsigned char *)s; *p; p++) {
        if (jsonnul_at((const char *)p)) {
            fputs("\\x00", out);
            p++;
        } else if (*p == '\n') {
            fputs("\\n", out);
        } else if (*p == '\t') {
            fputs("\\t", out);
        } else if (*p == '"' || *p == '\\') {
            fputc('\\', out);
            fputc(*p, out);
        } else if (!plain_byte(p)) {
            fprintf(out, "\\x%02x", *p);
        } else {
            fputc(*p, out);
        }
    }
    fputc('"', out);
}
