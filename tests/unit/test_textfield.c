/*
 * test_textfield.c - unit tests of src/textfield.c: plain fields are
 * written as they are; a field that could end or forge a line, or that
 * starts with a quote, is quoted with C escapes, U+0000 (jsonnul.h's
 * mark) included, and never holds a raw newline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "jsonnul.h"
#include "textfield.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *field(const char *s)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    textfield_put(f, s);
    assert_int_equal(fclose(f), 0);
    return out;
}

static void check(const char *in, const char *want)
{
    char *got = field(in);
    assert_string_equal(got, want);
    assert_null(strchr(got, '\n'));
    free(got);
}

static void test_plain_fields_are_written_as_they_are(void **state)
{
    (void)state;
    check("data/file.csv", "data/file.csv");
    check("with space", "with space");
    check("caf\xc3\xa9", "caf\xc3\xa9"); /* UTF-8 as it is */
    check("", "");
    check("a\"b", "\"a\\\"b\""); /* a quote inside: quoted */
    check("x: y", "x: y");
}

static void test_line_breaking_bytes_are_escaped(void **state)
{
    (void)state;
    check("x\nD important.csv", "\"x\\nD important.csv\"");
    check("tab\there", "\"tab\\there\"");
    check("back\\slash", "\"back\\\\slash\"");
    check("\"starts", "\"\\\"starts\"");
    check("bell\x07" "del\x7f" "cr\r", "\"bell\\x07del\\x7fcr\\x0d\"");
    check("nul" JSONNUL_MARK "end", "\"nul\\x00end\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_fields_are_written_as_they_are),
        cmocka_unit_test(test_line_breaking_bytes_are_escaped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
