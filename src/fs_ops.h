/*
 * fs_ops.h - the FUSE operations table of a lakefuse mount. The struct
 * fuse's private data must be a lakefuse_fs (fs.h) whose layers are ready
 * before the first request.
 */
#ifndef LAKEFUSE_FS_OPS_H
#define LAKEFUSE_FS_OPS_H

#include "fs.h"

struct fuse_operations;

const struct fuse_operations *fs_operations(void);

/* The largest read the kernel sends (mount option max_read, and the init
 * reply): 248 pages, so that a reply spliced from block files (header and
 * up to three pieces) fits libfuse's pipe within the 1 MiB an unprivileged
 * pipe may grow to (/proc/sys/fs/pipe-max-size); a 1 MiB request would
 * not, and every cached read would fall back to a copy. */
#define FS_MAX_READ_BYTES (248u * 4096u)

/* readdir's work since the mount began (.lakefs/stats "readdir"): kernel
 * requests served, entries visited to fill them, chunks passed to find
 * where a request starts, and listings taken (one per open and rewind). */
typedef struct fs_readdir_stats {
    unsigned long long requests, entries, steps, snapshots;
} fs_readdir_stats;
void fs_readdir_get_stats(lakefuse_fs *fs, fs_readdir_stats *out);

/* FUSE requests on files (not .lakefs control files) since the mount
 * began (.lakefs/stats "file_requests", fs_readers.c): what a program's
 * open, read and close cost in kernel round trips (a close of a
 * descriptor that cannot write sends no FLUSH), by fs_file_request (fs.h). */
typedef struct fs_file_request_stats {
    uint64_t opens, reads, flushes, releases;
} fs_file_request_stats;
void fs_count_file_request(lakefuse_fs *fs, fs_file_request kind);
void fs_file_request_get_stats(lakefuse_fs *fs, fs_file_request_stats *out);

/* getxattr requests since the mount began (.lakefs/stats "getxattr"): all
 * of them, and those refused with EOPNOTSUPP (a namespace lakefuse keeps
 * nothing in: security.*, system.*, trusted.*). */
typedef struct fs_xattr_stats {
    unsigned long long requests, unsupported;
} fs_xattr_stats;
void fs_xattr_get_stats(lakefuse_fs *fs, fs_xattr_stats *out);

/* Descriptors open for writing now (.lakefs/stats "open_for_writing"):
 * their files upload when the program closes them, and until then the
 * mount is busy. */
uint64_t fs_files_open_for_writing(lakefuse_fs *fs);

/* After the session ends: releases the descriptors of files and
 * directories whose RELEASE or RELEASEDIR the kernel never delivered (an
 * unmount right after a close can abort it, a daemon can exit with
 * directories open). */
void fs_release_leftover_files(lakefuse_fs *fs);

#endif
