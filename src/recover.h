/*
 * recover.h - staged files a dead mount left behind (staging.h orphans):
 * uploaded by the next mount that covers their branch, before it serves,
 * when their bytes can be trusted and the server still holds their base;
 * else kept aside as conflicts. Listed, exported and discarded one path at
 * a time by `lakefuse staged`. Nothing is dropped without a command saying
 * so, and nothing here stops a mount.
 */
#ifndef LAKEFUSE_RECOVER_H
#define LAKEFUSE_RECOVER_H

#include "lakefs.h"
#include "log.h"
#include "upload.h"
#include "writer.h"
#include "uri.h"

#include <stdbool.h>

/* Recovers every orphan whose branch the URI covers, logging each: uploads
 * it when the server still holds its base, drops it when the server
 * already has its bytes, else records it as a conflict (or, after a
 * failure, as failed: the next mount tries again) and says so on stderr.
 * Each failed one is handed to w (writer_note_orphan, may be NULL): a
 * later successful upload of its path supersedes it. 0, or 1 when the
 * staged files cannot be read at all. */
int recover_orphans(lakefs_client *client, logger *log,
                    const upload_caps *caps, const char *cache_dir,
                    const lakefuse_uri *uri, writer *w);

/* `lakefuse staged list [PATH] | discard [PATH] | export PATH DEST
 * [--cache-dir DIR]`; argv[0] is "staged". Returns the exit status. */
int staged_command(int argc, char **argv);

#endif
