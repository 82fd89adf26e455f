/*
 * upload.h - puts the bytes of a local file on a branch, the way lakeFS
 * clients do: a presigned multipart upload for a large file when the
 * server offers it, uploadObject for a small one (one request), the
 * staging flow (getPhysicalAddress, PUT to the presigned URL,
 * linkPhysicalAddress) for the rest when it presigns, else uploadObject.
 * Streams from the file descriptor; never holds the file, or a part of
 * it, in memory.
 */
#ifndef LAKEFUSE_UPLOAD_H
#define LAKEFUSE_UPLOAD_H

#include "lakefs.h"

#include <stdbool.h>
#include <stdint.h>

/* What lakectl records with an object written through a filesystem. */
typedef struct upload_attrs {
    int64_t mtime; /* ::lakefs::client-mtime (epoch s) */
    uint32_t mode; /* ::lakefs::posix-permissions Mode: st_mode with its
                      type bits (bits alone: a regular file's); 0: not
                      recorded */
    uint32_t uid, gid;
    const lakefs_metadata *extra; /* other user metadata to keep, or NULL */
    const char *content_type;     /* NULL: application/octet-stream */
    bool if_absent; /* create only (If-None-Match: *): -EEXIST when the
                       path holds an object (not checked by uploads in
                       parts, which lakeFS cannot make conditional) */
} upload_attrs;

/* Builds the metadata an upload or updateObjectUserMetadata carries:
 * extra's keys, then client-mtime and posix-permissions (replacing any in
 * extra). 0 or -ENOMEM; free md with lakefs_metadata_free. */
int upload_build_metadata(const upload_attrs *attrs, lakefs_metadata *md);

#define UPLOAD_DEFAULT_PART_SIZE (16LL << 20)
#define UPLOAD_DEFAULT_MULTIPART_THRESHOLD (64LL << 20)

/* How the server lets us upload. */
typedef struct upload_caps {
    bool presign;      /* staging flow through presigned URLs */
    bool multipart;    /* presigned multipart upload (needs presign) */
    int64_t part_size; /* 0: UPLOAD_DEFAULT_PART_SIZE; at least
                          5 MiB, grown so no file needs more
                          than 10000 parts */
    int64_t multipart_threshold; /* files this large go in parts; 0:
                                    UPLOAD_DEFAULT_MULTIPART_THRESHOLD */
    int64_t direct_max; /* files up to this size go in one uploadObject
                           request even when presigning (the bytes pass
                           through lakeFS; one request where the staging
                           flow costs two and a PUT), when their metadata
                           travels in headers unchanged; 0: never */
    bool eager; /* a file written in order sends its parts while it is
                   being written (eager_upload.h) */
} upload_caps;

#define UPLOAD_DEFAULT_DIRECT_MAX (1LL << 20)


/* The part size of a multipart upload of size bytes: caps->part_size
 * (default 16 MiB), at least S3's 5 MiB, grown so no file needs more than
 * 10000 parts. */
int64_t upload_part_size(const upload_caps *caps, int64_t size);

/* Whether upload_fd sends size bytes in parts with these caps. */
bool upload_in_parts(const upload_caps *caps, int64_t size);

/* Whether a size-byte object may have been sent in parts with these caps:
 * by upload_fd (upload_in_parts), or by an eager upload, which starts once
 * a whole part is written and then finishes in parts whatever the size
 * (eager_upload.h). The store ETag of such an object may be the multipart
 * form. */
bool upload_eager_in_parts(const upload_caps *caps, int64_t size);

/* Uploads size bytes of fd (a regular file, read with pread from offset
 * 0) to repo/branch/path: in parts when caps allow multipart and size is
 * at least the threshold (an upload that fails is aborted), else with
 * uploadObject when upload_is_direct, else in one presigned PUT when
 * caps->presign, else (caps NULL too) with uploadObject. *out (may be NULL) gets the new object's stats. 0 or a
 * negative errno with err filled. */
int upload_fd(lakefs_client *c, const upload_caps *caps, const char *repo,
              const char *branch, const char *path, int fd, int64_t size,
              const upload_attrs *attrs, lakefs_object_stats *out,
              lakefs_error *err);

#endif
