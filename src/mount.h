/*
 * mount.h - `lakefuse mount`: parses the options, checks everything that
 * can be checked before mounting (server, credentials, repository, ref,
 * mountpoint, cache directory) so that a failure is one line on stderr and
 * nothing mounted, then mounts and serves until unmounted.
 */
#ifndef LAKEFUSE_MOUNT_H
#define LAKEFUSE_MOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MOUNT_DEFAULT_ATTR_TIMEOUT 5.0
#define MOUNT_MAX_ATTR_TIMEOUT 86400.0
#define MOUNT_DEFAULT_CACHE_SIZE (4ULL << 30)
#define MOUNT_DEFAULT_METADATA_CACHE_SIZE (64ULL << 20)
#define MOUNT_BLOCK_SIZE (1u << 20)
#define MOUNT_DEFAULT_MAX_RENAME_OBJECTS 10000
#define MOUNT_DEFAULT_MULTIPART_THRESHOLD (64ULL << 20)
/* S3's smallest part: a smaller threshold would only add requests. */
#define MOUNT_MIN_MULTIPART_THRESHOLD (5ULL << 20)
/* Small files read ahead of a program reading a directory in order. */
#define MOUNT_DEFAULT_PREFETCH 8
#define MOUNT_MAX_PREFETCH 64
/* Bytes of small files fetched ahead of one reader. */
#define MOUNT_PREFETCH_MAX_BYTES (4ULL << 20)
/* -o async_close: uploads in flight at once (rclone's and the limit's 8). */
#define MOUNT_DEFAULT_UPLOAD_THREADS 8
#define MOUNT_MAX_UPLOAD_THREADS 64

typedef struct mount_options {
    bool foreground;
    bool debug;
    double attr_timeout;
    char *cache_dir; /* NULL: $XDG_CACHE_HOME/lakefuse or ~/.cache/lakefuse */
    uint64_t cache_size;
    uint64_t metadata_cache_size;
    bool presign;
    char *log_file;
    char *fuse_options; /* the -o options lakefuse does not know, for FUSE */
    bool allow_other;
    bool read_only;          /* -o ro: branches read-only too */
    bool dir_markers;        /* mkdir stores a "dir/" marker object */
    uint64_t max_rename_objects;
    uint64_t max_dir_entries; /* entries one listing may hold */
    uint64_t multipart_threshold; /* files this large upload in parts */
    uint64_t prefetch; /* small files fetched ahead (0: off) */
    uint64_t direct_upload_max; /* files up to this size: uploadObject */
    bool eager_upload; /* parts go up while a large file is written */
    bool async_close; /* close queues the upload (writer_pool.c) */
    uint64_t upload_threads; /* its pool's threads */
} mount_options;

/* Parses one -o list into opts (defaults must be set first). 0, or -1
 * with a one-line reason in why. */
int mount_parse_options(mount_options *opts, const char *list, char *why,
                        size_t why_len);
void mount_options_init(mount_options *opts);
void mount_options_free(mount_options *opts);

/* "10G", "512M", "4096": bytes (binary suffixes K M G T). 0 or -1: a
 * sign, a blank, anything but digits first, or an overflow is -1. */
int mount_parse_size(const char *text, uint64_t *out);
/* Digits only, no suffix, no overflow. 0 or -1. */
int mount_parse_count(const char *text, uint64_t *out);
/* "5", "0.25", "2.": a finite plain decimal from 0 to max (no sign, no
 * exponent, no nan or inf). 0 or -1; *out is untouched on -1. */
int mount_parse_seconds(const char *text, double max, double *out);

/* argv[0] is "mount". Returns the process exit status. */
int mount_command(int argc, char **argv);

#endif
