/*
 * test_strbuf.c - unit tests of src/strbuf.c (growth, printf, percent-
 * escaping, the size limit and its sticky error, detach/release) and of the
 * URL helpers built on it (url_add_param, url_add_segment, ...).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lakefs_internal.h"
#include "strbuf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The escaped form of one string, as a fresh string the caller frees. */
static char *escaped(const char *s)
{
    strbuf sb = STRBUF_INIT;
    strbuf_put_escaped(&sb, s);
    char *out = strbuf_detach(&sb);
    assert_non_null(out);
    return out;
}

static void assert_escapes_to(const char *in, const char *want)
{
    char *got = escaped(in);
    assert_string_equal(got, want);
    free(got);
}

static void test_init_state(void **state)
{
    (void)state;
    strbuf sb = STRBUF_INIT;
    assert_null(sb.data);
    assert_int_equal(sb.len, 0);
    assert_int_equal(sb.cap, 0);
    assert_int_equal(sb.limit, 0);
    assert_int_equal(strbuf_error(&sb), 0);
    strbuf_release(&sb); /* releasing an untouched buffer is harmless */
    assert_null(sb.data);
}

static void test_append_and_puts(void **state)
{
    (void)state;
    strbuf sb = STRBUF_INIT;
    strbuf_puts(&sb, "hello");
    strbuf_append(&sb, ", world!!!", 7); /* only part of it */
    assert_int_equal(sb.len, 12);
    assert_string_equal(sb.data, "hello, world");
    assert_true(sb.cap > sb.len);
    /* binary data with an embedded NUL keeps its length */
    strbuf_append(&sb, "a\0b", 3);
    assert_int_equal(sb.len, 15);
    assert_memory_equal(sb.data + 12, "a\0b", 3);
    assert_int_equal(sb.data[15], '\0');
    /* an empty append changes nothing */
    strbuf_append(&sb, "zzz", 0);
    assert_int_equal(sb.len, 15);
    assert_int_equal(strbuf_error(&sb), 0);
    strbuf_release(&sb);
    assert_null(sb.data);
    assert_int_equal(sb.len, 0);
    assert_int_equal(sb.cap, 0);
}

static void test_append_growth_many_kib(void **state)
{
    (void)state;
    strbuf sb = STRBUF_INIT;
    enum { CHUNKS = 5000 };
    /* chunks of varying size: 0..36 bytes, over 80 KiB in all */
    char chunk[64];
    size_t total = 0;
    for (int i = 0; i < CHUNKS; i++) {
        size_t n = (size_t)(i % 37);
        for (size_t j = 0; j < n; j++)
            chunk[j] = (char)('a' + (i + (int)j) % 26);
        strbuf_append(&sb, chunk, n);
        total += n;
        assert_int_equal(sb.len, total);
        assert_true(sb.cap >= sb.len + 1);
        assert_int_equal(sb.data[sb.len], '\0');
    }
    assert_true(total > 80 * 1024);
    assert_int_equal(strbuf_error(&sb), 0);
    /* verify every byte again after all the reallocations */
    size_t pos = 0;
    for (int i = 0; i < CHUNKS; i++) {
        size_t n = (size_t)(i % 37);
        for (size_t j = 0; j < n; j++, pos++)
            if (sb.data[pos] != (char)('a' + (i + (int)j) % 26))
                fail_msg("byte %zu differs after growth", pos);
    }
    assert_int_equal(pos, sb.len);
    strbuf_release(&sb);
}

static void test_printf_growth(void **state)
{
    (void)state;
    strbuf sb = STRBUF_INIT;
    strbuf_printf(&sb, "%s-%d-%05.1f", "x", -42, 3.14159);
    assert_string_equal(sb.data, "x--42-003.1");
    assert_int_equal(sb.len, strlen("x--42-003.1"));

    /* one large formatted piece (16 KiB), then many small ones */
    char *big = malloc(16 * 1024 + 1);
    assert_non_null(big);
    memset(big, 'Q', 16 * 1024);
    big[16 * 1024] = '\0';
    strbuf_printf(&sb, "[%s]", big);
    assert_int_equal(sb.len, 11 + 16 * 1024 + 2);
    assert_int_equal(sb.data[11], '[');
    assert_int_equal(sb.data[11 + 16 * 1024], 'Q');
    assert_int_equal(sb.data[11 + 16 * 1024 + 1], ']');
    free(big);

    size_t before = sb.len;
    for (int i = 0; i < 4000; i++)
        strbuf_printf(&sb, "%04d,", i);
    assert_int_equal(sb.len, before + 4000 * 5);
    assert_memory_equal(sb.data + before, "0000,0001,", 10);
    assert_memory_equal(sb.data + sb.len - 5, "3999,", 5);
    assert_int_equal(sb.data[sb.len], '\0');
    /* an empty format still leaves a valid string */
    strbuf_printf(&sb, "%s", "");
    assert_int_equal(sb.len, before + 4000 * 5);
    assert_int_equal(strbuf_error(&sb), 0);
    strbuf_release(&sb);

    strbuf empty = STRBUF_INIT;
    strbuf_printf(&empty, "%s", "");
    assert_non_null(empty.data);
    assert_string_equal(empty.data, "");
    strbuf_release(&empty);
}

static void test_escape_unreserved_kept(void **state)
{
    (void)state;
    const char *unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                             "abcdefghijklmnopqrstuvwxyz"
                             "0123456789-._~";
    assert_escapes_to(unreserved, unreserved);
    assert_escapes_to("", "");
}

static void test_escape_reserved_and_others(void **state)
{
    (void)state;
    assert_escapes_to(" ", "%20");
    assert_escapes_to("/", "%2F");
    assert_escapes_to("^", "%5E");
    assert_escapes_to("%", "%25");
    assert_escapes_to("a/b c", "a%2Fb%20c");
    assert_escapes_to("main~2^1", "main~2%5E1");
    /* U+0000 inside lakefuse (jsonnul.h): %00, not the two bytes */
    assert_escapes_to("a\xc0\x80" "b\xc0", "a%00b%C0");
    assert_escapes_to("?&=#+:@!$'()*,;[]",
                      "%3F%26%3D%23%2B%3A%40%21%24%27%28%29%2A%2C%3B%5B%5D");
    assert_escapes_to("\"<>\\`{|}", "%22%3C%3E%5C%60%7B%7C%7D");
    assert_escapes_to("\t\r\n\x01\x7f", "%09%0D%0A%01%7F");
    /* UTF-8 bytes one by one, uppercase hex */
    assert_escapes_to("\xc3\xa9t\xc3\xa9", "%C3%A9t%C3%A9");     /* été */
    assert_escapes_to("\xe2\x82\xac", "%E2%82%AC");              /* € */
    assert_escapes_to("\xf0\x9f\x98\x80", "%F0%9F%98%80");       /* emoji */
    assert_escapes_to("\xff\xfe", "%FF%FE");
}

static void test_escape_every_byte(void **state)
{
    (void)state;
    /* All 255 non-NUL bytes: the unreserved ones kept, every other one
     * escaped with exactly three characters of uppercase hex. */
    char in[256];
    for (int i = 1; i < 256; i++)
        in[i - 1] = (char)i;
    in[255] = '\0';
    char *out = escaped(in);
    const char *p = out;
    for (int c = 1; c < 256; c++) {
        int unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                         (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                         c == '_' || c == '~';
        if (unreserved) {
            if (*p != (char)c)
                fail_msg("byte 0x%02X should be kept", c);
            p++;
        } else {
            char want[4];
            snprintf(want, sizeof(want), "%%%02X", c);
            if (strncmp(p, want, 3) != 0)
                fail_msg("byte 0x%02X: want %s, got %.3s", c, want, p);
            p += 3;
        }
    }
    assert_int_equal(*p, '\0');
    free(out);
}

static void test_limit_efbig_sticky(void **state)
{
    (void)state;
    strbuf sb = STRBUF_INIT;
    sb.limit = 10;
    strbuf_puts(&sb, "12345");
    strbuf_puts(&sb, "67890"); /* exactly at the limit: fine */
    assert_int_equal(strbuf_error(&sb), 0);
    assert_int_equal(sb.len, 10);
    assert_string_equal(sb.data, "1234567890");
    strbuf_puts(&sb, "X"); /* one past */
    assert_int_equal(strbuf_error(&sb), -EFBIG);
    assert_int_equal(sb.len, 10);
    assert_string_equal(sb.data, "1234567890"); /* untouched */
    /* sticky: later appends of any kind are no-ops */
    strbuf_append(&sb, "", 0);
    strbuf_printf(&sb, "%d", 1);
    strbuf_put_escaped(&sb, "a");
    assert_int_equal(strbuf_error(&sb), -EFBIG);
    assert_int_equal(sb.len, 10);
    /* detach of a failed buffer: NULL and the memory is released */
    assert_null(strbuf_detach(&sb));
    assert_null(sb.data);
    assert_int_equal(sb.len, 0);

    /* a single big append over the limit fails without writing */
    strbuf sb2 = STRBUF_INIT;
    sb2.limit = 100;
    char big[101];
    memset(big, 'b', sizeof(big));
    strbuf_append(&sb2, big, sizeof(big));
    assert_int_equal(strbuf_error(&sb2), -EFBIG);
    assert_int_equal(sb2.len, 0);
    /* printf and escaping honour the limit too */
    strbuf sb3 = STRBUF_INIT;
    sb3.limit = 4;
    strbuf_printf(&sb3, "%s", "12345");
    assert_int_equal(strbuf_error(&sb3), -EFBIG);
    assert_int_equal(sb3.len, 0);
    strbuf sb4 = STRBUF_INIT;
    sb4.limit = 5;
    strbuf_put_escaped(&sb4, "ab/"); /* "ab%2F" is 5 bytes: fits */
    assert_int_equal(strbuf_error(&sb4), 0);
    assert_string_equal(sb4.data, "ab%2F");
    strbuf_put_escaped(&sb4, "c");
    assert_int_equal(strbuf_error(&sb4), -EFBIG);
    assert_string_equal(sb4.data, "ab%2F");
    /* release clears the error */
    strbuf_release(&sb2);
    strbuf_release(&sb3);
    strbuf_release(&sb4);
    assert_int_equal(strbuf_error(&sb2), 0);
    assert_int_equal(strbuf_error(&sb4), 0);
}

static void test_detach(void **state)
{
    (void)state;
    strbuf sb = STRBUF_INIT;
    char *s = strbuf_detach(&sb); /* never appended to */
    assert_non_null(s);
    assert_string_equal(s, "");
    assert_null(sb.data);
    free(s);

    strbuf_puts(&sb, "abc");
    s = strbuf_detach(&sb);
    assert_string_equal(s, "abc");
    assert_null(sb.data);
    assert_int_equal(sb.len, 0);
    assert_int_equal(sb.cap, 0);
    /* the buffer is reusable after detaching */
    strbuf_puts(&sb, "de");
    assert_string_equal(sb.data, "de");
    assert_ptr_not_equal(sb.data, s);
    free(s);
    strbuf_release(&sb);
}

static void test_url_add_param(void **state)
{
    (void)state;
    strbuf url = STRBUF_INIT;
    url_add_param(&url, "path", "a b/c"); /* first on an empty buffer */
    assert_string_equal(url.data, "?path=a%20b%2Fc");
    strbuf_release(&url);

    strbuf_puts(&url, "/repositories/r/refs/main/objects");
    url_add_param(&url, "path", "dir/file name.txt");
    url_add_param(&url, "presign", "true");
    url_add_int_param(&url, "amount", 1000);
    url_add_int_param(&url, "neg", -7);
    url_add_param(&url, "we=ird&", "v?=&#");
    url_add_param(&url, "empty", "");
    assert_string_equal(url.data,
                        "/repositories/r/refs/main/objects"
                        "?path=dir%2Ffile%20name.txt&presign=true"
                        "&amount=1000&neg=-7&we%3Dird%26=v%3F%3D%26%23"
                        "&empty=");
    assert_int_equal(strbuf_error(&url), 0);
    strbuf_release(&url);
}

static void test_url_add_segment(void **state)
{
    (void)state;
    strbuf url = STRBUF_INIT;
    strbuf_puts(&url, "/repositories");
    url_add_segment(&url, "my-repo");
    strbuf_puts(&url, "/refs");
    url_add_segment(&url, "main~2^1");
    url_add_segment(&url, "feat/x y?z");
    url_add_segment(&url, "caf\xc3\xa9");
    assert_string_equal(url.data, "/repositories/my-repo/refs/main~2%5E1"
                                  "/feat%2Fx%20y%3Fz/caf%C3%A9");
    /* an escaped '?' in a segment does not count as a query start */
    url_add_param(&url, "after", "a");
    url_add_param(&url, "amount", "2");
    const char *tail = "/caf%C3%A9?after=a&amount=2";
    assert_true(url.len > strlen(tail));
    assert_string_equal(url.data + url.len - strlen(tail), tail);
    strbuf_release(&url);
}

/* "." and ".." would be removed by libcurl with the segment before them;
 * escaped they stay names. Longer runs of dots are not dot segments. */
static void test_url_add_segment_dot_segments(void **state)
{
    (void)state;
    strbuf url = STRBUF_INIT;
    strbuf_puts(&url, "/repositories");
    url_add_segment(&url, "..");
    strbuf_puts(&url, "/branches");
    url_add_segment(&url, ".");
    url_add_segment(&url, "...");
    url_add_segment(&url, "..x");
    url_add_segment(&url, "../..");
    url_add_segment(&url, "");
    assert_string_equal(url.data, "/repositories/%2E%2E/branches/%2E/..."
                                  "/..x/..%2F../");
    strbuf_release(&url);
}

static void test_url_page_and_list_params(void **state)
{
    (void)state;
    strbuf url = STRBUF_INIT;
    strbuf_puts(&url, "/x");
    url_add_page_params(&url, NULL);
    url_add_list_params(&url, NULL);
    assert_string_equal(url.data, "/x");

    lakefs_list_params p = {.prefix = "d/", .after = "d/a", .amount = 0,
                            .delimiter = "/"};
    url_add_page_params(&url, &p); /* no amount (0), no delimiter */
    assert_string_equal(url.data, "/x?prefix=d%2F&after=d%2Fa");
    strbuf_release(&url);

    strbuf_puts(&url, "/y");
    p.amount = 1000;
    url_add_list_params(&url, &p);
    assert_string_equal(url.data,
                        "/y?prefix=d%2F&after=d%2Fa&amount=1000&delimiter=%2F");
    strbuf_release(&url);

    lakefs_list_params only_amount = {.amount = 5};
    strbuf_puts(&url, "/z");
    url_add_list_params(&url, &only_amount);
    assert_string_equal(url.data, "/z?amount=5");
    strbuf_release(&url);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_state),
        cmocka_unit_test(test_append_and_puts),
        cmocka_unit_test(test_append_growth_many_kib),
        cmocka_unit_test(test_printf_growth),
        cmocka_unit_test(test_escape_unreserved_kept),
        cmocka_unit_test(test_escape_reserved_and_others),
        cmocka_unit_test(test_escape_every_byte),
        cmocka_unit_test(test_limit_efbig_sticky),
        cmocka_unit_test(test_detach),
        cmocka_unit_test(test_url_add_param),
        cmocka_unit_test(test_url_add_segment),
        cmocka_unit_test(test_url_add_segment_dot_segments),
        cmocka_unit_test(test_url_page_and_list_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
