/*
 * control.h - the contents of the virtual files under .lakefs/: `head`
 * (the commit a ref points to now) and `stats` (JSON counters of API calls,
 * caches and bytes). Rendered at open, so a reader sees one snapshot.
 * Never puts a credential, a presigned URL or a server secret in them.
 */
#ifndef LAKEFUSE_CONTROL_H
#define LAKEFUSE_CONTROL_H

#include "fs.h"

#include <stddef.h>

/* *out (malloc'd, *len bytes) for a TREE_CONTROL_FILE node. 0 or -errno. */
int control_render(lakefuse_fs *fs, const tree_node *node, char **out,
                   size_t *len);

/* The stats JSON alone (also used by tests and the demo). */
char *control_stats_json(lakefuse_fs *fs);

#endif
