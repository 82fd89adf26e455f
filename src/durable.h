/*
 * durable.h - the checks that decide whether staged bytes may go to
 * lakeFS: a digest that seals a staged file before it is trusted, the
 * store ETag the bytes would get (to tell "the server already has these
 * bytes" from "someone else changed the object"), and the conditional
 * upload that recovery and background retries use. Never uploads over an
 * object that is not the base the bytes were written on.
 * int results are 0 or a negative errno unless said otherwise.
 */
#ifndef LAKEFUSE_DURABLE_H
#define LAKEFUSE_DURABLE_H

#include "lakefs.h"
#include "upload.h"

#include <stdbool.h>
#include <stdint.h>

#define DURABLE_DIGEST_HEX 65 /* SHA-256 in hex, NUL included */
#define DURABLE_ETAG_MAX 48   /* MD5 hex, "-N" for parts, NUL */
#define DURABLE_BOOT_ID_MAX 40

/* SHA-256 of the first size bytes of fd (pread), hex into out. -EIO when
 * the file is shorter. */
int durable_digest_fd(int fd, int64_t size, char out[DURABLE_DIGEST_HEX]);

/* Whether the first size bytes of fd are what an object with this
 * checksum holds, as far as the checksum can say: an MD5 ETag (32 hex) of
 * one PUT, or the "MD5-of-part-MD5s-N" of a multipart upload whose parts
 * were part_size bytes (the caps' part size). false when it cannot tell. */
bool durable_bytes_match(int fd, int64_t size, const char *checksum,
                         const upload_caps *caps);

/* This kernel boot's id (/proc/sys/kernel/random/boot_id), "" when
 * unknown. Staged data that was never sealed can only be trusted in the
 * boot it was written in: a daemon's death keeps the page cache, a power
 * loss does not. */
void durable_boot_id(char out[DURABLE_BOOT_ID_MAX]);

#define DURABLE_ATTEMPT_ETAGS 2
/* After a failed upload, in one read of the file: the SHA-256 that seals
 * it (digest non-NULL: durable_digest_fd's), and (etags non-NULL) the
 * checksums an object holding the first size bytes of fd would have if
 * upload_fd's attempt with caps had reached lakeFS: the MD5 of one PUT,
 * and the multipart form when the upload may go in parts
 * (upload_eager_in_parts: an eager upload completes in parts below the
 * multipart threshold too), kept since its answer may have been lost
 * after lakeFS applied it; *n: how many. 0 or -errno (no digest, *n 0). */
int durable_failed_attempt(int fd, int64_t size, const upload_caps *caps,
                           char digest[DURABLE_DIGEST_HEX],
                           char etags[DURABLE_ATTEMPT_ETAGS][DURABLE_ETAG_MAX],
                           size_t *n);

/* What the path's object is relative to the bytes to upload. */
typedef struct durable_base {
    bool absent;          /* the bytes were written as a new file */
    const char *checksum; /* else the object they were written on; NULL:
                             unknown (never uploaded conditionally) */
    const char *const *own; /* checksums of this file's own earlier
                               attempts since the base (their answers were
                               lost): the object may be one of them */
    size_t n_own;
} durable_base;

/* 1 when the object at path holds exactly the first size bytes of fd (as
 * far as its checksum tells: durable_bytes_match), with *out (may be
 * NULL) its stats; 0 when it does not or there is none, or a negative
 * errno with err filled. Staged bytes that cannot be trusted may still be
 * dropped when the server has them; an upload that failed after it may
 * have been applied has landed when it does. */
int durable_server_has(lakefs_client *c, const upload_caps *caps,
                       const char *repo, const char *branch, const char *path,
                       int fd, int64_t size, lakefs_object_stats *out,
                       lakefs_error *err);

/* Outcomes of durable_upload_if_base beyond 0 (uploaded). */
#define DURABLE_ALREADY_THERE 1 /* the server holds exactly these bytes */
#define DURABLE_CONFLICT 2      /* the object is no longer the base */

/*
 * Uploads size bytes of fd to repo/branch/path only if the path still
 * holds the base (or one of the file's own earlier attempts): absent bases are created with If-None-Match: * (atomic);
 * for an existing base the object is stat'ed first and must still carry
 * the base checksum (lakeFS has no If-Match: a concurrent change between
 * the stat and the link can still win, a window of one request). When the
 * object is not the base but holds exactly these bytes (an earlier
 * attempt whose answer was lost), DURABLE_ALREADY_THERE. Returns 0 with
 * *out (may be NULL) the new object's stats, DURABLE_ALREADY_THERE (*out
 * the server's stats), DURABLE_CONFLICT with err saying why, or a negative
 * errno with err filled.
 */
int durable_upload_if_base(lakefs_client *c, const upload_caps *caps,
                           const char *repo, const char *branch,
                           const char *path, int fd, int64_t size,
                           const durable_base *base, const upload_attrs *attrs,
                           lakefs_object_stats *out, lakefs_error *err);

/* true when an upload that failed with rc (and err's HTTP status) will
 * fail the same way if tried again: the server refused the request
 * itself (400, 401, 403, 404, 412, 422; a 409 from
 * linkPhysicalAddress is retried, as lakectl does), not a timeout, a 5xx or 429. */
bool durable_failure_is_permanent(int rc, const lakefs_error *err);

#endif
