/*
 * eager_upload.h - a large file's parts go up while a program is still
 * writing it from start to end, so that its close only sends what is left
 * and completes the upload. A presigned multipart upload is invisible
 * until completed: nothing lakeFS shows changes before the close. The
 * staged file stays the truth: parts are streamed from its descriptor,
 * never held in memory, and whatever the eager upload cannot vouch for
 * (a part written again after it went up, the tail) is sent at close.
 * Anything unusual (a truncate below the written prefix, unlink, rename, a
 * failed part, a file that ends up below one part or is uploaded
 * conditionally) aborts it, and the close takes the ordinary path of
 * upload.h.
 *
 * Every function is called under the owning wfile's io lock (writes,
 * truncates, uploads and detaches of the file are serialised by it);
 * none holds a lock of the caller's across the network.
 */
#ifndef LAKEFUSE_EAGER_UPLOAD_H
#define LAKEFUSE_EAGER_UPLOAD_H

#include "upload.h"

#include <stdint.h>

typedef struct eager_upload eager_upload;

/* Bytes [off, off + len) of fd were written (size_before: the file's size
 * before). Starts tracking a file written from offset 0 on an empty file
 * (*ep NULL), starts the multipart upload once the written prefix holds a
 * whole part (or reaches the multipart threshold, when lower), and queues
 * each part the writer has moved past.
 * A write into a part already sent marks it for the close to send again.
 * Never blocks on the network (a thread of the upload does). */
void eager_note_write(eager_upload **ep, lakefs_client *c,
                      const upload_caps *caps, const char *repo,
                      const char *branch, const char *key, int fd,
                      int64_t size_before, int64_t off, int64_t len);

/* The file is about to be truncated to size: *ep goes on when no byte of
 * the written prefix is cut (a grow, the current size, a cut above the
 * prefix), else it is abandoned (eager_abandon). */
void eager_note_truncate(eager_upload **ep, int64_t size);

/* Stops the upload of *ep if any (waits for parts in flight, aborts the
 * multipart upload) and frees it; *ep becomes NULL. */
void eager_abandon(eager_upload **ep);

/* upload_fd, finishing *ep's upload when it fits this one (same key, a
 * size upload_eager_in_parts takes in parts of its part size, no failed
 * part, not attrs->if_absent), even below the multipart threshold: only
 * the parts not yet sent, or written again since, go up before it
 * completes.
 * Otherwise *ep is abandoned and upload_fd does it all; so too when a
 * part fails, in the background or here (the eager upload is aborted
 * first). *ep is NULL after. */
int eager_upload_fd(eager_upload **ep, lakefs_client *c,
                    const upload_caps *caps, const char *repo,
                    const char *branch, const char *path, int fd,
                    int64_t size, const upload_attrs *attrs,
                    lakefs_object_stats *out, lakefs_error *err);

#endif
