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

/* ---- writes (control_write.c) ---- */

/* One write(2) to commit, merge, branch or reset: one request, done when
 * this returns. 0 or the errno of workflow.h. */
int control_write(lakefuse_fs *fs, const tree_node *node, const char *buf,
                  size_t len);
/* Permission bits of a control file or directory node. */
unsigned control_mode(const lakefuse_fs *fs, const tree_node *node);
/* The last result on (ref, control) as JSON ending in a newline; "{}" when
 * there was none. *out malloc'd. */
int control_last_result(lakefuse_fs *fs, const tree_ref *ref,
                        tree_control c, char **out);
/* setxattr user.lakefs.commit / user.lakefs.merge on a ref root: 0,
 * -ENOTSUP for other names, or the action's errno. */
int control_xattr_action(lakefuse_fs *fs, const tree_node *ref_root,
                         const char *name, const char *value, size_t size);
void control_results_free(lakefuse_fs *fs);

#endif
