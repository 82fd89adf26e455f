/*
 * recover.h - staged files a dead mount left behind (staging.h orphans):
 * uploaded by the next mount that covers their branch, before it serves,
 * or listed and discarded by `lakefuse staged list|discard`. Nothing is
 * dropped without a command saying so.
 */
#ifndef LAKEFUSE_RECOVER_H
#define LAKEFUSE_RECOVER_H

#include "lakefs.h"
#include "log.h"
#include "upload.h"
#include "uri.h"

#include <stdbool.h>

/* Uploads every orphan whose branch the URI covers, logging each; drops
 * orphans whose bytes the server already has. 0, or 1 after one line on
 * stderr when some could not be uploaded (the mount must not start). */
int recover_orphans(lakefs_client *client, logger *log,
                    const upload_caps *caps, const char *cache_dir,
                    const lakefuse_uri *uri);

/* `lakefuse staged list|discard [--cache-dir DIR]`; argv[0] is "staged".
 * Returns the exit status. */
int staged_command(int argc, char **argv);

#endif
