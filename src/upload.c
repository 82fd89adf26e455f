/*
 * upload.c - one object from a local file: staging flow or uploadObject,
 * with lakectl's ::lakefs:: metadata. The file is read by the client with
 * pread, so a failed attempt can be retried from the start.
 */
#include "upload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int upload_build_metadata(const upload_attrs *attrs, lakefs_metadata *md)
{
    memset(md, 0, sizeof(*md));
    const lakefs_metadata *extra = attrs->extra;
    int rc = 0;
    for (size_t i = 0; extra && rc == 0 && i < extra->count; i++)
        rc = lakefs_metadata_set(md, extra->items[i].key,
                                 extra->items[i].value);
    char buf[128];
    if (rc == 0) {
        snprintf(buf, sizeof(buf), "%lld", (long long)attrs->mtime);
        rc = lakefs_metadata_set(md, "::lakefs::client-mtime", buf);
    }
    if (rc == 0 && attrs->mode) {
        /* lakectl's POSIXPermissions: a Go fs.FileMode, i.e. the
         * permission bits of a regular file. */
        snprintf(buf, sizeof(buf), "{\"UID\":%u,\"GID\":%u,\"Mode\":%u}",
                 attrs->uid, attrs->gid, attrs->mode & 07777u);
        rc = lakefs_metadata_set(md, "::lakefs::posix-permissions", buf);
    }
    if (rc)
        lakefs_metadata_free(md);
    return rc;
}

static int upload_presigned(lakefs_client *c, const char *repo,
                            const char *branch, const char *path, int fd,
                            int64_t size, const lakefs_upload_options *opt,
                            lakefs_object_stats *out, lakefs_error *err)
{
    lakefs_staging_location loc;
    int rc = lakefs_get_physical_address(c, repo, branch, path, true, &loc,
                                         err);
    if (rc)
        return rc;
    char *checksum = NULL;
    if (!loc.presigned_url)
        rc = -EPROTO;
    else
        rc = lakefs_put_presigned_fd(c, loc.presigned_url, fd, size,
                                     opt->content_type, &checksum, err);
    if (rc == 0)
        rc = lakefs_link_physical_address(c, repo, branch, path, &loc,
                                          checksum, size, opt, out, err);
    free(checksum);
    lakefs_staging_location_free(&loc);
    return rc;
}

int upload_fd(lakefs_client *c, bool presign, const char *repo,
              const char *branch, const char *path, int fd, int64_t size,
              const upload_attrs *attrs, lakefs_object_stats *out,
              lakefs_error *err)
{
    lakefs_metadata md;
    int rc = upload_build_metadata(attrs, &md);
    if (rc)
        return rc;
    lakefs_upload_options opt = {.metadata = &md};
    lakefs_object_stats ignored;
    lakefs_object_stats *result = out ? out : &ignored;
    memset(result, 0, sizeof(*result)); /* freed on every path below */
    if (presign)
        rc = upload_presigned(c, repo, branch, path, fd, size, &opt, result,
                              err);
    else
        rc = lakefs_upload_object_fd(c, repo, branch, path, fd, size, &opt,
                                     result, err);
    if (!out)
        lakefs_object_stats_free(&ignored);
    lakefs_metadata_free(&md);
    return rc;
}
