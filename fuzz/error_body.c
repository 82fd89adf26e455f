/*
 * error_body.c - libFuzzer target: the lakeFS error body parser
 * ({"message": ...}, src/lakefs_json.c) and the status -> errno table, as
 * the client uses them on every non-2xx answer. The message must come back
 * NUL-terminated inside its buffer, whatever the body and the buffer size.
 */
#include "fuzz.h"

#include "lakefs_internal.h"

#include <errno.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The first two bytes pick the status and the buffer size. */
    int status = size >= 1 ? 100 + data[0] * 2 : 500;
    size_t cap = size >= 2 ? (size_t)data[1] % 64 : 16;
    if (size >= 2) {
        data += 2;
        size -= 2;
    }
    char small[64];
    memset(small, 'x', sizeof(small));
    int rc = lakefs_parse_error_message((const char *)data, size, small, cap);
    FUZZ_CHECK(rc == 0 || rc == -EPROTO);
    if (rc == 0)
        FUZZ_CHECK(cap > 0 && memchr(small, '\0', cap) != NULL);

    char msg[LAKEFS_ERROR_MESSAGE_MAX];
    lakefs_error err = {0};
    if (lakefs_parse_error_message((const char *)data, size, msg,
                                   sizeof(msg)) == 0)
        lakefs_error_set(&err, status, "%s", msg);
    else
        lakefs_error_set(&err, status, "HTTP status %d", status);
    FUZZ_CHECK(err.status == status);
    FUZZ_CHECK(memchr(err.message, '\0', sizeof(err.message)) != NULL);

    int e = lakefs_status_to_errno(status);
    FUZZ_CHECK(e < 0 || (status >= 200 && status < 400 && e == 0));
    return 0;
}
