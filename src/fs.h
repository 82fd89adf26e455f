/*
 * fs.h - one mounted lakefuse filesystem: the layers a FUSE request goes
 * through (tree -> metacache for metadata, reader -> blockcache for data,
 * all talking to lakeFS only through the client) and the options that
 * shaped them. Everything a request needs hangs off this struct; there is
 * no global state.
 */
#ifndef LAKEFUSE_FS_H
#define LAKEFUSE_FS_H

#include "blockcache.h"
#include "fs_times.h"
#include "lakefs.h"
#include "log.h"
#include "metacache.h"
#include "reader.h"
#include "staging.h"
#include "tree.h"
#include "writer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* Remembers the checksum each path had when last opened, so the kernel's
 * page cache is kept across opens while the content is unchanged. Lossy
 * (a fixed number of slots): a forgotten path only costs a cache drop. */
#define FS_OPEN_MEMORY_SLOTS 4096

typedef struct fs_open_memory {
    uint64_t path_hash;
    char checksum[72]; /* "" when empty; longer checksums are not kept */
} fs_open_memory;

/* The last result of a commit, merge, branch or reset on a ref, for
 * reading back from the control file (control_write.c). */
typedef struct control_result {
    const void *ref; /* a tree_ref */
    int control;     /* a tree_control */
    char *json;
    struct control_result *next;
} control_result;

/* The kinds of FUSE request on files counted in fs_counters.file. */
typedef enum fs_file_request {
    FS_REQ_OPEN,
    FS_REQ_READ,
    FS_REQ_FLUSH,
    FS_REQ_RELEASE,
    FS_REQ_KINDS
} fs_file_request;

/* FUSE requests this mount served since it began, for .lakefs/stats
 * (control.c; what each counts: fs_ops.h). Counted by fs_ops.c and
 * fs_readers.c from any FUSE thread, hence atomic. */
typedef struct fs_counters {
    _Atomic uint64_t file[FS_REQ_KINDS]; /* by fs_file_request */
    _Atomic uint64_t readdir_requests, readdir_entries, readdir_steps,
        readdir_snapshots;
    _Atomic uint64_t xattr_requests, xattr_unsupported;
} fs_counters;

typedef struct lakefuse_fs {
    lakefs_client *client;
    logger *log;
    tree *tree;
    metacache *meta;
    blockcache *blocks; /* NULL when the data cache is off */
    reader *reader;
    staging *staging;
    char *cache_dir; /* its staging/ holds earlier mounts' leftovers too */   /* this mount's staged files */
    writer *writer;     /* files open for writing */
    const char *mountpoint; /* absolute */
    bool read_only;     /* -o ro: branches too */
    bool dir_markers;   /* mkdir stores a "dir/" marker object */
    uint64_t max_rename_objects;
    bool presign;        /* data from presigned URLs */
    struct urlbatch *urls; /* those URLs, asked for at read (presign) */
    double attr_timeout; /* seconds */
    uint32_t block_size;
    unsigned prefetch_files;     /* -o prefetch=N */
    struct prefetch *prefetch;   /* small-file prefetch (NULL: off) */
    uid_t uid;
    gid_t gid;
    time_t mount_time;
    fs_times *times; /* sub-second mtimes, atimes, ctimes (in memory) */
    pthread_mutex_t results_lock;
    control_result *results;
    pthread_mutex_t open_memory_lock;
    fs_open_memory open_memory[FS_OPEN_MEMORY_SLOTS];
    pthread_mutex_t readers_lock;
    struct open_file *readers; /* descriptors reading branch objects */
    struct hidden_file *hidden; /* names of files unlinked while open */
    pthread_mutex_t open_files_lock; /* open_files and open_dirs */
    struct fs_handle *open_files; /* every descriptor not yet released */
    struct fs_handle *open_dirs;  /* every directory not yet released */
    pthread_once_t readahead_once; /* armed by init, run by a getattr */
    fs_counters counters;
} lakefuse_fs;

/* writer_uploaded_fn of the mount (ctx: the lakefuse_fs, tag: the
 * tree_ref the file was opened in): the listing shows the new object. */
void fs_on_uploaded(void *ctx, const void *tag, const lakefs_object_stats *st);

/* Drops the names of files unlinked while open (at unmount). */
void fs_hidden_free_all(lakefuse_fs *fs);

#endif
