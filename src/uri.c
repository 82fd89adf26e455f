/*
 * uri.c - parses lakefs://REPO/REF/PREFIX. A repository name must be a
 * valid lakeFS id; a ref is any non-empty ref expression (main, a tag, a
 * commit id, main~2, main@); a prefix must be a clean relative path (no
 * empty, "." or ".." segment) since it becomes the mount's root directory.
 */
#include "uri.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEME "lakefs://"

int uri_valid_repository_name(const char *name)
{
    size_t len = strlen(name);
    if (len < 3 || len > 63)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                  (ch == '-' && i > 0);
        if (!ok)
            return 0;
    }
    return 1;
}

static int fail(char *errbuf, size_t errlen, const char *text,
                const char *why)
{
    snprintf(errbuf, errlen, "invalid URI '%s': %s", text, why);
    return -EINVAL;
}

/* Copies "a/b/c" (no leading slash, trailing one optional) to "a/b/c/",
 * refusing empty, "." and ".." segments. */
static int normalize_prefix(const char *p, char **out)
{
    size_t len = strlen(p);
    if (len && p[len - 1] == '/')
        len--;
    if (len == 0) {
        *out = strdup("");
        return *out ? 0 : -ENOMEM;
    }
    const char *seg = p;
    const char *end = p + len;
    while (seg <= end) {
        const char *slash = memchr(seg, '/', (size_t)(end - seg));
        const char *seg_end = slash ? slash : end;
        size_t seg_len = (size_t)(seg_end - seg);
        if (seg_len == 0 || (seg_len == 1 && seg[0] == '.') ||
            (seg_len == 2 && seg[0] == '.' && seg[1] == '.') ||
            seg_len > 255)
            return -EINVAL;
        seg = seg_end + 1;
    }
    *out = malloc(len + 2);
    if (!*out)
        return -ENOMEM;
    memcpy(*out, p, len);
    (*out)[len] = '/';
    (*out)[len + 1] = '\0';
    return 0;
}

int uri_parse(const char *text, lakefuse_uri *out, char *errbuf,
              size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(text, SCHEME, strlen(SCHEME)) != 0)
        return fail(errbuf, errlen, text, "must start with lakefs://");
    const char *rest = text + strlen(SCHEME);
    if (*rest == '\0')
        return 0;
    const char *slash = strchr(rest, '/');
    size_t repo_len = slash ? (size_t)(slash - rest) : strlen(rest);
    out->repo = strndup(rest, repo_len);
    if (!out->repo)
        goto oom;
    if (!uri_valid_repository_name(out->repo)) {
        uri_free(out);
        return fail(errbuf, errlen, text,
                    "repository names are 3-63 characters of a-z, 0-9 and "
                    "'-', not starting with '-'");
    }
    if (!slash || slash[1] == '\0')
        return 0;
    const char *ref = slash + 1;
    const char *ref_end = strchr(ref, '/');
    size_t ref_len = ref_end ? (size_t)(ref_end - ref) : strlen(ref);
    if (ref_len == 0) {
        uri_free(out);
        return fail(errbuf, errlen, text, "empty ref");
    }
    if ((ref_len == 1 || ref_len == 2) && strncmp(ref, "..", ref_len) == 0) {
        /* No branch starts with '.' and no tag ends with one (lakeFS's
         * graveler/validate.go): a dot segment only ever names a path. */
        uri_free(out);
        return fail(errbuf, errlen, text, "'.' and '..' are not lakeFS refs");
    }
    out->ref = strndup(ref, ref_len);
    if (!out->ref)
        goto oom;
    int rc = normalize_prefix(ref_end ? ref_end + 1 : "", &out->prefix);
    if (rc == -ENOMEM)
        goto oom;
    if (rc) {
        uri_free(out);
        return fail(errbuf, errlen, text,
                    "the path has an empty, '.', '..' or over-long segment");
    }
    return 0;
oom:
    uri_free(out);
    snprintf(errbuf, errlen, "out of memory");
    return -ENOMEM;
}

void uri_free(lakefuse_uri *uri)
{
    free(uri->repo);
    free(uri->ref);
    free(uri->prefix);
    memset(uri, 0, sizeof(*uri));
}
