/*
 * textfield.h - one field of a line of text that a program parses (the
 * control files' status and diff, `lakefuse staged list`): an object name
 * or a server's message written so that it can never end the line or
 * forge another.
 */
#ifndef LAKEFUSE_TEXTFIELD_H
#define LAKEFUSE_TEXTFIELD_H

#include <stdio.h>

/* Writes s as it is, or, when it holds a control character (a tab or a
 * newline among them), '"', '\\' or U+0000 (jsonnul.h's mark), or starts
 * with '"', between double quotes with C escapes (\n, \t, \", \\, \xNN),
 * as git quotes paths. */
void textfield_put(FILE *out, const char *s);

#endif
