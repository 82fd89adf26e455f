/*
 * lakefs_policy.c - what the client may send, where, and how often: the
 * idempotency class of each operation (which failures allow sending it
 * again) and the check of every URL a server hands out (only http and
 * https, https only behind an https endpoint, no credentials or control
 * characters). Never sends anything itself.
 */
#include "lakefs_internal.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

bool lakefs_failure_transient(int rc)
{
    return rc == -EIO || rc == -EAGAIN || rc == -ETIMEDOUT ||
           rc == -EPROTO || rc == -ECONNRESET;
}

bool lakefs_retry_idempotent(int rc, int *tries)
{
    return lakefs_failure_transient(rc) && ++*tries < LAKEFS_IDEMPOTENT_TRIES;
}

bool lakefs_op_is_idempotent(lakefs_op op)
{
    switch (op) {
    case LAKEFS_OP_COMMIT:
    case LAKEFS_OP_MERGE_INTO_BRANCH:
    case LAKEFS_OP_CREATE_BRANCH:
    case LAKEFS_OP_CREATE_TAG:
    case LAKEFS_OP_CREATE_REPOSITORY:
    case LAKEFS_OP_LINK_PHYSICAL_ADDRESS:
    case LAKEFS_OP_COMPLETE_PRESIGN_MULTIPART_UPLOAD:
    case LAKEFS_OP_COPY_OBJECT:
        return false;
    default:
        /* Reads; deletes and metadata/reset PUTs that leave the same state
         * when repeated; uploads of the same bytes (the writer checks an
         * If-None-Match refusal itself); createPresignMultipartUpload and
         * getPhysicalAddress, whose repetition only leaves an unused
         * upload or address behind. */
        return true;
    }
}

bool lakefs_op_is_long_running(lakefs_op op)
{
    return op == LAKEFS_OP_COMMIT || op == LAKEFS_OP_MERGE_INTO_BRANCH;
}

/* ------------------------------------------------------------------ */
/* URLs from the server                                                */

static bool has_prefix_nocase(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

int lakefs_url_check_scheme(bool https_only, const char *url, const char *who,
                            lakefs_error *err)
{
    if (!url || !*url) {
        lakefs_error_set(err, 0, "refused an empty URL %s", who);
        return -EPROTO;
    }
    bool https = has_prefix_nocase(url, "https://");
    if (!https && !has_prefix_nocase(url, "http://")) {
        lakefs_error_set(err, 0,
                         "refused a URL %s that is not http or https",
                         who);
        return -EPROTO;
    }
    if (https_only && !https) {
        lakefs_error_set(err, 0,
                         "refused an http URL %s: the endpoint is https",
                         who);
        return -EPROTO;
    }
    for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
        if (*p <= ' ' || *p == 0x7f) {
            lakefs_error_set(err, 0,
                             "refused a URL %s with a control character or "
                             "space",
                             who);
            return -EPROTO;
        }
    }
    const char *host = strstr(url, "://") + 3;
    size_t authority = strcspn(host, "/?#");
    if (memchr(host, '@', authority) || memchr(host, '\\', authority)) {
        lakefs_error_set(err, 0,
                         "refused a URL %s with credentials in it", who);
        return -EPROTO;
    }
    if (authority == 0 || host[0] == ':') {
        lakefs_error_set(err, 0, "refused a URL %s without a host", who);
        return -EPROTO;
    }
    return 0;
}

int lakefs_url_check(const lakefs_client *c, const char *url,
                     lakefs_error *err)
{
    return lakefs_url_check_scheme(c->https_only, url, "from the server",
                                   err);
}
