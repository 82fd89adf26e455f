/*
 * uri.c - libFuzzer target: lakefs://REPO/REF/PREFIX parsing (src/uri.c).
 * On success the parts must keep uri.h's promises: a valid repository
 * name, a non-empty ref without '/', a prefix that is "" or clean segments
 * each ending in '/', never "." or "..", never over 255 bytes.
 */
#include "fuzz.h"

#include "uri.h"

#include <errno.h>
#include <string.h>

static void check_prefix(const char *p)
{
    size_t len = strlen(p);
    if (len == 0)
        return;
    FUZZ_CHECK(p[len - 1] == '/' && p[0] != '/');
    const char *seg = p;
    while (*seg) {
        const char *slash = strchr(seg, '/');
        FUZZ_CHECK(slash != NULL);
        size_t n = (size_t)(slash - seg);
        FUZZ_CHECK(n > 0 && n <= 255);
        FUZZ_CHECK(!(n == 1 && seg[0] == '.'));
        FUZZ_CHECK(!(n == 2 && seg[0] == '.' && seg[1] == '.'));
        seg = slash + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char errbuf[160];
    lakefuse_uri uri;
    int rc = uri_parse(text, &uri, errbuf, sizeof(errbuf));
    FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
    if (rc == 0) {
        if (uri.repo)
            FUZZ_CHECK(uri_valid_repository_name(uri.repo));
        if (uri.ref) {
            FUZZ_CHECK(uri.repo && uri.ref[0] && !strchr(uri.ref, '/'));
            FUZZ_CHECK(uri.prefix != NULL);
            check_prefix(uri.prefix);
        } else {
            FUZZ_CHECK(uri.prefix == NULL);
        }
    } else {
        FUZZ_CHECK(!uri.repo && !uri.ref && !uri.prefix);
        FUZZ_CHECK(memchr(errbuf, '\0', sizeof(errbuf)) != NULL);
    }
    uri_free(&uri);
    free(text);
    return 0;
}
