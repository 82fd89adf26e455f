/*
 * urlbatch.h - presigned GET URLs for the objects a mount reads, asked for
 * only when bytes must come from the store. Listings are fetched without
 * presigning: lakeFS signs every object it lists (0.1 to 0.25 ms each on
 * lakeFS with an S3 store, and a 3x larger answer), which a walk, `ls -l`
 * or `stat` never needs. A URL comes from a presigned listObjects of the
 * file's directory starting at the file: a batch that grows (16 objects,
 * doubling to 1,000) while a program reads the directory in order, the
 * next batch fetched when half of the last one has been used. Never keys
 * the data cache (the listing's physical address does) and never lists
 * anything but the directory of a file being read.
 */
#ifndef LAKEFUSE_URLBATCH_H
#define LAKEFUSE_URLBATCH_H

#include "lakefs.h"

#include <stdint.h>

typedef struct urlbatch urlbatch;

typedef struct urlbatch_stats {
    uint64_t batches; /* presigned listObjects requests */
    uint64_t urls;    /* URLs handed out */
} urlbatch_stats;

/* client is borrowed. NULL on ENOMEM. */
urlbatch *urlbatch_new(lakefs_client *client);
void urlbatch_free(urlbatch *u);

/* A URL to read key (the full object key) of repo at ref, whose listing
 * gave checksum, valid for at least margin_s more seconds (or, when the
 * server signs for less than that, half of the life it gave): 0 with *url
 * (the caller frees) and *expiry (epoch s). -ENOENT: the server no longer
 * lists the object; -ESTALE: it lists another checksum; -EPROTO: it gives
 * no presigned http(s) URL for it (read through the API); another
 * negative errno when the request failed (err says why). Waits for a
 * batch of the same directory another thread is fetching. list_from
 * (NULL: none), a key of the same directory before key, is where a
 * listing it needs starts: the file a program opened, whose read a
 * prefetch of the files after it may come before. */
int urlbatch_get(urlbatch *u, const char *repo, const char *ref,
                 const char *key, const char *list_from,
                 const char *checksum, int margin_s, char **url,
                 int64_t *expiry, lakefs_error *err);

void urlbatch_get_stats(urlbatch *u, urlbatch_stats *out);

#endif
