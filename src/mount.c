/*
 * mount.c - `lakefuse mount`: options, fail-fast checks, then the FUSE
 * session (multithreaded loop, signal handlers, daemonizing once the mount
 * is up). Builds the layers of one lakefuse_fs and tears them down after
 * unmount. Nothing that starts threads runs before the daemon forks.
 */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include "mount.h"

#include "cli.h"
#include "control.h"
#include "fs.h"
#include "fs_ops.h"
#include "prefetch.h"
#include "recover.h"
#include "target.h"
#include "uri.h"
#include "urlbatch.h"

#include <ctype.h>
#include <errno.h>
#include <fuse.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MOUNT_MAX_THREADS 32

/* ---- options ---- */

void mount_options_init(mount_options *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->attr_timeout = MOUNT_DEFAULT_ATTR_TIMEOUT;
    opts->cache_size = MOUNT_DEFAULT_CACHE_SIZE;
    opts->metadata_cache_size = MOUNT_DEFAULT_METADATA_CACHE_SIZE;
    opts->presign = true;
    opts->dir_markers = true;
    opts->max_rename_objects = MOUNT_DEFAULT_MAX_RENAME_OBJECTS;
    opts->max_dir_entries = TREE_MAX_DIR_ENTRIES;
    opts->multipart_threshold = MOUNT_DEFAULT_MULTIPART_THRESHOLD;
    opts->prefetch = MOUNT_DEFAULT_PREFETCH;
    opts->direct_upload_max = UPLOAD_DEFAULT_DIRECT_MAX;
    opts->eager_upload = true;
    opts->upload_threads = MOUNT_DEFAULT_UPLOAD_THREADS;
}

void mount_options_free(mount_options *opts)
{
    free(opts->cache_dir);
    free(opts->log_file);
    free(opts->fuse_options);
    memset(opts, 0, sizeof(*opts));
}

/* Decimal digits only: no sign, no leading blank (strtoull would accept
 * " -1" and wrap it to 2^64 - 1), no overflow. end: where they stop. */
static int parse_digits(const char *text, unsigned long long *out,
                        char **end)
{
    if (!isdigit((unsigned char)text[0]))
        return -1;
    errno = 0;
    *out = strtoull(text, end, 10);
    return errno ? -1 : 0;
}

int mount_parse_size(const char *text, uint64_t *out)
{
    char *end;
    unsigned long long v;
    if (parse_digits(text, &v, &end) != 0)
        return -1;
    static const char units[] = "KMGT";
    const char *unit = *end ? strchr(units, *end & ~0x20) : NULL;
    if (*end && (!unit || (end[1] && strcmp(end + 1, "iB") != 0 &&
                           strcmp(end + 1, "B") != 0)))
        return -1;
    for (const char *u = units; unit && u <= unit; u++) {
        if (v > (ULLONG_MAX >> 10))
            return -1;
        v <<= 10;
    }
    *out = v;
    return 0;
}

int mount_parse_count(const char *text, uint64_t *out)
{
    char *end;
    unsigned long long v;
    if (parse_digits(text, &v, &end) != 0 || *end)
        return -1;
    *out = v;
    return 0;
}

int mount_parse_seconds(const char *text, double max, double *out)
{
    /* Plain decimal notation only: strtod would also take "nan", "inf",
     * hexadecimal floats and a leading sign or blank. */
    size_t digits = strspn(text, "0123456789");
    size_t fraction = text[digits] == '.'
                          ? strspn(text + digits + 1, "0123456789")
                          : 0;
    size_t len = digits + (text[digits] == '.' ? 1 + fraction : 0);
    if (digits + fraction == 0 || text[len] != '\0')
        return -1;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || *end || !isfinite(v) || v < 0 || v > max)
        return -1;
    *out = v;
    return 0;
}

/* A size from min to max; *out untouched otherwise. */
static int parse_size_in(const char *text, uint64_t min, uint64_t max,
                         uint64_t *out)
{
    uint64_t v;
    if (mount_parse_size(text, &v) != 0 || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *text, bool *out)
{
    if (!strcmp(text, "true") || !strcmp(text, "1") || !strcmp(text, "yes"))
        *out = true;
    else if (!strcmp(text, "false") || !strcmp(text, "0") ||
             !strcmp(text, "no"))
        *out = false;
    else
        return -1;
    return 0;
}

static int append_fuse_option(mount_options *opts, const char *opt)
{
    char *joined = NULL;
    if (asprintf(&joined, "%s%s%s", opts->fuse_options ? opts->fuse_options
                                                       : "",
                 opts->fuse_options ? "," : "", opt) < 0)
        return -1;
    free(opts->fuse_options);
    opts->fuse_options = joined;
    return 0;
}

static int replace_string(char **dst, const char *value)
{
    free(*dst);
    *dst = strdup(value);
    return *dst ? 0 : -1;
}

#define SIZE_EXPECTED "a size in bytes, with an optional K, M, G or T suffix"

/* One name[=value]: ours, or handed to FUSE. A bad value is reported with
 * what the option takes. */
static int parse_one_option(mount_options *opts, char *item, char *why,
                            size_t why_len)
{
    char *value = strchr(item, '=');
    if (value)
        *value++ = '\0';
    int bad = 0;
    const char *expect = NULL;
    if (!strcmp(item, "attr_timeout")) {
        bad = !value || mount_parse_seconds(value, MOUNT_MAX_ATTR_TIMEOUT,
                                            &opts->attr_timeout);
        expect = "seconds from 0 to 86400, as a plain decimal number";
    } else if (!strcmp(item, "cache_dir")) {
        bad = !value || !*value || replace_string(&opts->cache_dir, value);
        expect = "a directory";
    } else if (!strcmp(item, "cache_size")) {
        bad = !value || mount_parse_size(value, &opts->cache_size);
        expect = SIZE_EXPECTED;
    } else if (!strcmp(item, "metadata_cache_size")) {
        bad = !value || parse_size_in(value, 1u << 20, UINT64_MAX,
                                      &opts->metadata_cache_size);
        expect = SIZE_EXPECTED ", at least 1M";
    } else if (!strcmp(item, "presign")) {
        bad = !value || parse_bool(value, &opts->presign);
        expect = "true or false";
    } else if (!strcmp(item, "log_file")) {
        bad = !value || !*value || replace_string(&opts->log_file, value);
        expect = "a file name";
    } else if (!strcmp(item, "dir_markers")) {
        bad = value && parse_bool(value, &opts->dir_markers);
        if (!value)
            opts->dir_markers = true;
        expect = "true or false";
    } else if (!strcmp(item, "nodir_markers")) {
        bad = value != NULL;
        opts->dir_markers = false;
        expect = "no value";
    } else if (!strcmp(item, "max_rename_objects")) {
        bad = !value || mount_parse_count(value, &opts->max_rename_objects);
        expect = "a whole number";
    } else if (!strcmp(item, "max_dir_entries")) {
        bad = !value || mount_parse_count(value, &opts->max_dir_entries) ||
              opts->max_dir_entries == 0;
        expect = "a whole number, at least 1";
    } else if (!strcmp(item, "multipart_threshold")) {
        bad = !value || parse_size_in(value, MOUNT_MIN_MULTIPART_THRESHOLD,
                                      INT64_MAX, &opts->multipart_threshold);
        expect = SIZE_EXPECTED ", at least 5M";
    } else if (!strcmp(item, "prefetch")) {
        uint64_t files = 0;
        bad = !value || mount_parse_count(value, &files) ||
              files > MOUNT_MAX_PREFETCH;
        if (!bad)
            opts->prefetch = files;
        expect = "a whole number from 0 to 64";
    } else if (!strcmp(item, "eager_upload")) {
        bad = value && parse_bool(value, &opts->eager_upload);
        if (!value)
            opts->eager_upload = true;
        expect = "true or false";
    } else if (!strcmp(item, "direct_upload_max")) {
        bad = !value || parse_size_in(value, 0, INT64_MAX,
                                      &opts->direct_upload_max);
        expect = SIZE_EXPECTED;
    } else if (!strcmp(item, "async_close")) {
        bad = value && parse_bool(value, &opts->async_close);
        if (!value)
            opts->async_close = true;
        expect = "true or false";
    } else if (!strcmp(item, "upload_threads")) {
        uint64_t n = 0;
        bad = !value || mount_parse_count(value, &n) || n == 0 ||
              n > MOUNT_MAX_UPLOAD_THREADS;
        if (!bad)
            opts->upload_threads = n;
        expect = "a whole number from 1 to 64";
    } else {
        if (!strcmp(item, "allow_other"))
            opts->allow_other = true;
        if (!strcmp(item, "ro"))
            opts->read_only = true;
        if (value)
            value[-1] = '=';
        return append_fuse_option(opts, item);
    }
    if (bad)
        snprintf(why, why_len, "bad value for -o %s%s%s: expected %s", item,
                 value ? "=" : "", value ? value : "", expect);
    return bad ? -1 : 0;
}

int mount_parse_options(mount_options *opts, const char *list, char *why,
                        size_t why_len)
{
    char *copy = strdup(list);
    if (!copy) {
        snprintf(why, why_len, "out of memory");
        return -1;
    }
    int rc = 0;
    for (char *save = NULL, *item = strtok_r(copy, ",", &save);
         item && rc == 0; item = strtok_r(NULL, ",", &save))
        rc = parse_one_option(opts, item, why, why_len);
    free(copy);
    return rc;
}

static void mount_usage(FILE *out)
{
    fputs("usage: lakefuse mount [-f] [-d] [-o OPT[,OPT...]] URI MOUNTPOINT\n"
          "\n"
          "URI: lakefs:// (every repository), lakefs://REPO (its refs),\n"
          "     lakefs://REPO/REF[/PREFIX] (one ref, optionally a sub-tree)\n"
          "\n"
          "  -f                     stay in the foreground\n"
          "  -d                     FUSE debug output (implies -f)\n"
          "  -o attr_timeout=SECS   how long branch listings and attributes\n"
          "                         are trusted (default 5; fixed refs: "
          "forever)\n"
          "  -o cache_dir=DIR       data cache (default "
          "$XDG_CACHE_HOME/lakefuse)\n"
          "  -o cache_size=SIZE     data cache budget (default 4G)\n"
          "  -o metadata_cache_size=SIZE  listing cache budget (default 64M)\n"
          "  -o presign=BOOL        read data from presigned URLs when the\n"
          "                         server offers them (default true)\n"
          "  -o log_file=PATH       log here (default: stderr with -f, else\n"
          "                         syslog)\n"
          "  -o ro                  read-only, branches too\n"
          "  -o dir_markers=BOOL    mkdir stores a \"dir/\" marker object so\n"
          "                         empty directories last (default true)\n"
          "  -o max_rename_objects=N  largest directory rename done on the\n"
          "                         server (default 10000; above: EXDEV)\n"
          "  -o max_dir_entries=N   most entries a directory listing may\n"
          "                         hold (default 1000000; more: EIO)\n"
          "  -o multipart_threshold=SIZE  files this large are uploaded in\n"
          "                         parts when the server offers presigned\n"
          "                         multipart upload (default 64M, at least\n"
          "                         5M)\n"
          "  -o prefetch=N          small files read ahead of a program\n"
          "                         reading a directory in order (default\n"
          "                         8, 0: off)\n"
          "  -o direct_upload_max=SIZE  files up to this size are uploaded\n"
          "                         in one uploadObject request (default 1M;\n"
          "                         0: presigned PUTs only)\n"
          "  -o eager_upload=BOOL   a large file written from its start\n"
          "                         sends its parts while it is written\n"
          "                         (default true)\n"
          "  -o async_close         close returns once the file is staged;\n"
          "                         uploads run in the background (fsync\n"
          "                         waits for them and reports errors)\n"
          "  -o upload_threads=N    uploads at once with async_close\n"
          "                         (default 8, at most 64)\n"
          "  other -o options go to FUSE (allow_other, ro, ...)\n"
          "\n" CLI_CONNECTION_HELP,
          out);
}

/* ---- checks before mounting ---- */

/* Absolute path of an existing directory, or NULL after a message. */
static char *check_mountpoint(const char *path)
{
    struct stat st, parent;
    if (stat(path, &st) != 0) {
        if (errno == ENOTCONN)
            fprintf(stderr, "lakefuse: mountpoint %s is busy: a dead FUSE "
                            "mount (run fusermount3 -u %s)\n",
                    path, path);
        else
            fprintf(stderr, "lakefuse: mountpoint %s: %s\n", path,
                    strerror(errno));
        return NULL;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "lakefuse: mountpoint %s is not a directory\n", path);
        return NULL;
    }
    char *abs = realpath(path, NULL);
    char *up = NULL;
    if (!abs || asprintf(&up, "%s/..", abs) < 0) {
        fprintf(stderr, "lakefuse: mountpoint %s: %s\n", path,
                strerror(errno));
        free(abs);
        return NULL;
    }
    bool busy = strcmp(abs, "/") == 0 ||
                (stat(up, &parent) == 0 && parent.st_dev != st.st_dev);
    free(up);
    if (busy) {
        fprintf(stderr, "lakefuse: mountpoint %s is busy: something is "
                        "already mounted there\n", abs);
        free(abs);
        return NULL;
    }
    return abs;
}

/* Server, credentials, presign and presigned multipart support,
 * repository and ref. */
static int check_target(const lakefuse_config *cfg, const lakefuse_uri *uri,
                        mount_target *target, bool *server_presigns,
                        bool *server_multipart)
{
    lakefs_client *probe = cli_client(cfg, 2);
    if (!probe)
        return 1;
    lakefs_user user = {0};
    lakefs_config config = {0};
    lakefs_error err = {0};
    char why[700];
    int status = cli_check_server(probe, &user);
    if (status == 0 && lakefs_get_config(probe, &config, &err) != 0) {
        fprintf(stderr, "lakefuse: cannot read the server config: %s\n",
                err.message);
        status = 1;
    }
    if (status == 0) {
        const lakefs_storage_config *st =
            lakefs_config_storage_for(&config, NULL);
        *server_presigns = st && st->pre_sign_support;
        *server_multipart = st && st->pre_sign_multipart_upload;
        if (target_resolve(probe, uri, target, why, sizeof(why)) != 0) {
            fprintf(stderr, "lakefuse: %s\n", why);
            status = 1;
        }
    }
    lakefs_user_free(&user);
    lakefs_config_free(&config);
    lakefs_client_free(probe);
    return status;
}

/* ---- the filesystem's layers ---- */

static void fs_teardown(lakefuse_fs *fs)
{
    prefetch_free(fs->prefetch); /* its workers use the reader and writer */
    fs->prefetch = NULL;
    fs_release_leftover_files(fs);
    if (fs->tree)
        tree_set_pending_files(fs->tree, NULL, NULL);
    fs_hidden_free_all(fs);
    writer_free(fs->writer);
    staging_close(fs->staging);
    free(fs->cache_dir);
    reader_free(fs->reader);
    tree_free(fs->tree);
    urlbatch_free(fs->urls);
    metacache_free(fs->meta);
    blockcache_close(fs->blocks);
    lakefs_client_free(fs->client);
    logger_close(fs->log);
    control_results_free(fs);
    pthread_mutex_destroy(&fs->results_lock);
    pthread_mutex_destroy(&fs->open_memory_lock);
    pthread_mutex_destroy(&fs->readers_lock);
    pthread_mutex_destroy(&fs->open_files_lock);
    fs_times_free(fs->times);
}

/* The tree's pending-files hook over the writer: the files it holds in a
 * directory are listed there even before lakeFS has them. */
typedef struct pending_walk {
    size_t prefix_len;
    tree_pending_add_fn add;
    void *add_ctx;
} pending_walk;

static int pending_from_writer(void *ctx, const writer_entry *e)
{
    pending_walk *p = ctx;
    if (e->is_dir) {
        /* A marker not uploaded yet: its directory ("c" of "c/") exists, or
         * (self) the listed directory's own marker entry. Something deeper
         * (implied): "c" of "c/d/x" exists, with no attributes of its own
         * (mode 0: listing_merge_files keeps a listed one as listed). */
        const char *name = e->key + p->prefix_len;
        char *dir = e->self      ? strdup(TREE_MARKER_NAME)
                    : e->implied ? strndup(name, strcspn(name, "/"))
                                 : strndup(name, strlen(name) - 1);
        if (!dir)
            return -ENOMEM;
        fs_entry d = {.name = dir, .is_dir = true};
        if (!e->implied) { /* the marker's attributes */
            d.mtime = e->mtime;
            d.mode = e->mode;
            d.has_owner = e->has_owner;
            d.uid = e->uid;
            d.gid = e->gid;
        }
        int rc = p->add(p->add_ctx, &d);
        free(dir);
        return rc;
    }
    fs_entry file = {.name = (char *)e->key + p->prefix_len,
                     .size = e->size, .mtime = e->mtime, .mode = e->mode,
                     .unshown_mode = e->unshown_mode,
                     .has_owner = e->has_owner, .uid = e->uid,
                     .gid = e->gid};
    if (e->meta)
        file.metadata = *e->meta; /* borrowed: the tree copies it */
    file.checksum = (char *)e->base;
    return p->add(p->add_ctx, &file);
}

static int writer_pending_files(void *ctx, const char *repo,
                                const char *branch, const char *dir_prefix,
                                tree_pending_add_fn add, void *add_ctx)
{
    writer *w = ctx;
    if (writer_idle(w))
        return 0;
    pending_walk p = {strlen(dir_prefix), add, add_ctx};
    return writer_foreach_in_dir(w, repo, branch, dir_prefix,
                                 pending_from_writer, &p);
}

/* Everything but the reader and the writer's retries (they start threads:
 * see fs_start_reader). */
static int fs_setup(lakefuse_fs *fs, const lakefuse_config *cfg,
                    const lakefuse_uri *uri, const mount_target *target,
                    const mount_options *opts, const char *cache_dir,
                    const upload_caps *caps)
{
    bool presign = caps->presign;
    int err = 0;
    pthread_mutex_init(&fs->open_memory_lock, NULL);
    pthread_mutex_init(&fs->readers_lock, NULL);
    pthread_mutex_init(&fs->open_files_lock, NULL);
    pthread_mutex_init(&fs->results_lock, NULL);
    fs->uid = getuid();
    fs->gid = getgid();
    fs->mount_time = time(NULL);
    fs->times = fs_times_new(0);
    if (!fs->times)
        return -ENOMEM;
    fs->attr_timeout = opts->attr_timeout;
    fs->presign = presign;
    fs->block_size = MOUNT_BLOCK_SIZE;
    fs->prefetch_files = (unsigned)opts->prefetch;
    fs->read_only = opts->read_only;
    fs->dir_markers = opts->dir_markers;
    fs->max_rename_objects = opts->max_rename_objects;
    fs->log = logger_open(opts->log_file, opts->foreground, LOG_LEVEL_INFO,
                          &err);
    if (!fs->log) {
        fprintf(stderr, "lakefuse: log file %s: %s\n", opts->log_file,
                strerror(-err));
        return 1;
    }
    char *data_dir = NULL;
    if (asprintf(&data_dir, "%s/data", cache_dir) < 0)
        return 1;
    fs->blocks = blockcache_open(data_dir, opts->cache_size,
                                 MOUNT_BLOCK_SIZE, &err);
    if (!fs->blocks)
        fprintf(stderr, "lakefuse: data cache %s: %s\n", data_dir,
                strerror(-err));
    free(data_dir);
    fs->client = fs->blocks ? cli_client(cfg, 0) : NULL;
    fs->meta = fs->client ? metacache_new(opts->metadata_cache_size) : NULL;
    if (!fs->meta)
        return 1;
    fs->urls = presign ? urlbatch_new(fs->client) : NULL;
    if (presign && !fs->urls)
        return 1;
    tree_config tc = {
        .client = fs->client,
        .meta = fs->meta,
        .log = fs->log,
        .uri = uri,
        .target = target,
        .attr_timeout_ms = (int64_t)(opts->attr_timeout * 1000.0),
        .max_dir_entries = opts->max_dir_entries,
    };
    fs->tree = tree_new(&tc, &err);
    if (!fs->tree)
        return 1;
    fs->cache_dir = strdup(cache_dir);
    fs->staging = fs->cache_dir ? staging_open(cache_dir, &err) : NULL;
    if (!fs->staging) {
        fprintf(stderr, "lakefuse: staging directory in %s: %s\n", cache_dir,
                strerror(-err));
        return 1;
    }
    writer_config wc = {.client = fs->client, .staging = fs->staging,
                        .log = fs->log, .caps = *caps,
                        .uid = fs->uid, .gid = fs->gid,
                        .on_uploaded = fs_on_uploaded,
                        .on_uploaded_ctx = fs,
                        .cache_dir = fs->cache_dir,
                        .upload_threads = opts->async_close
                                              ? (int)opts->upload_threads
                                              : 0};
    fs->writer = writer_new(&wc, &err);
    if (!fs->writer)
        return 1;
    tree_set_pending_files(fs->tree, writer_pending_files, fs->writer);
    /* What a dead mount left staged goes to lakeFS before anything else. */
    return recover_orphans(fs->client, fs->log, caps, cache_dir, uri,
                           fs->writer);
}

static int fs_start_reader(lakefuse_fs *fs)
{
    reader_config rc = {.cache = fs->blocks, .block_size = fs->block_size};
    int err = 0;
    fs->reader = reader_new(&rc, &err);
    if (!fs->reader)
        logger_write(fs->log, LOG_LEVEL_ERROR, "cannot start the reader: %s",
                     strerror(-err));
    if (fs->reader && fs->blocks && fs->prefetch_files > 0) {
        prefetch_config pc = {.max_files = fs->prefetch_files,
                              .max_file_size = fs->block_size,
                              .max_bytes = MOUNT_PREFETCH_MAX_BYTES};
        fs->prefetch = prefetch_new(fs, &pc, &err);
        if (!fs->prefetch) /* reads work without it */
            logger_write(fs->log, LOG_LEVEL_WARNING,
                         "small-file prefetch is off: %s", strerror(-err));
        err = 0;
    }
    if (fs->reader && (err = writer_start(fs->writer)) != 0)
        logger_write(fs->log, LOG_LEVEL_ERROR,
                     "cannot start the upload retries: %s", strerror(-err));
    return fs->reader && err == 0 ? 0 : -1;
}

/* ---- the FUSE session ---- */

/* libfuse numbers nodes (st_ino) and frees a node once the kernel forgets
 * it. Its `remember` option kept forgotten nodes (an hour, until
 * 2026-12-05), so a path kept its number across cache evictions; but a
 * node kept after its name vanished through another client (the kernel
 * revalidated the name, lakeFS said it was gone, the kernel forgot it) is
 * still in libfuse's table, and a rename onto that name made libfuse 3.14
 * abort the daemon (fuse.c unlink_node: Assertion `node->nlookup > 1').
 * So remember is 0, set after the user's options so that none brings it
 * back.
 *
 * fsname shows in /proc/mounts and df; FUSE options cannot hold a comma.
 * nodev comes last, after the user's options (the last of dev/nodev wins):
 * a device node is whatever an object's metadata says, so none on the
 * mount may ever open a device. */
static int build_fuse_args(struct fuse_args *args, const char *uri_text,
                           const mount_options *opts)
{
    bool plain = !strpbrk(uri_text, ",\\ \t\n");
    char *o = NULL;
    if (asprintf(&o, "fsname=%s,subtype=lakefuse,max_read=%u"
                     "%s%s%s,remember=0,nodev",
                 plain ? uri_text : "lakefs", FS_MAX_READ_BYTES,
                 opts->allow_other
                                                  ? ",default_permissions"
                                                  : "",
                 opts->fuse_options ? "," : "",
                 opts->fuse_options ? opts->fuse_options : "") < 0)
        return -1;
    int rc = fuse_opt_add_arg(args, "lakefuse");
    if (rc == 0)
        rc = fuse_opt_add_arg(args, "-o");
    if (rc == 0)
        rc = fuse_opt_add_arg(args, o);
    if (rc == 0 && opts->debug)
        rc = fuse_opt_add_arg(args, "-d");
    free(o);
    return rc;
}

static int serve(struct fuse *f, lakefuse_fs *fs)
{
    struct fuse_session *se = fuse_get_session(f);
    if (fuse_set_signal_handlers(se) != 0)
        return 1;
    int status = 1;
    struct fuse_loop_config *loop = fuse_loop_cfg_create();
    if (loop && fs_start_reader(fs) == 0) {
        fuse_loop_cfg_set_max_threads(loop, MOUNT_MAX_THREADS);
        int rc = fuse_loop_mt(f, loop);
        /* A signal ends the loop with its number: a clean unmount too. */
        status = rc < 0 ? 1 : 0;
        if (rc < 0)
            logger_write(fs->log, LOG_LEVEL_ERROR, "FUSE loop failed: %s",
                         strerror(-rc));
    }
    fuse_loop_cfg_destroy(loop);
    fuse_remove_signal_handlers(se);
    return status;
}

/* Mounts and serves; fs is set up. Prints the "mounted" line once the
 * kernel has the mount, then daemonizes unless in the foreground. */
static int run_fuse(lakefuse_fs *fs, const char *uri_text,
                    const char *mountpoint, const mount_options *opts)
{
    struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
    if (build_fuse_args(&args, uri_text, opts) != 0) {
        fuse_opt_free_args(&args);
        return 1;
    }
    struct fuse *f = fuse_new(&args, fs_operations(),
                              sizeof(struct fuse_operations), fs);
    fuse_opt_free_args(&args);
    if (!f) {
        fprintf(stderr, "lakefuse: bad FUSE options: %s\n",
                opts->fuse_options ? opts->fuse_options : "");
        return 1;
    }
    if (fuse_mount(f, mountpoint) != 0) {
        fprintf(stderr, "lakefuse: cannot mount on %s\n", mountpoint);
        fuse_destroy(f);
        return 1;
    }
    printf("mounted %s on %s\n", uri_text, mountpoint);
    fflush(stdout);
    int status = 1;
    if (fuse_daemonize(opts->foreground) == 0)
        status = serve(f, fs);
    fuse_unmount(f);
    fuse_destroy(f);
    return status;
}

/* ---- the command ---- */

static int parse_command_line(int argc, char **argv, mount_options *opts,
                              lakefuse_config_flags *flags)
{
    static const struct option options[] = {
        CLI_CONNECTION_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char why[512];
    int opt;
    while ((opt = getopt_long(argc, argv, "fdho:", options, NULL)) != -1) {
        if (cli_connection_option(opt, optarg, flags))
            continue;
        switch (opt) {
        case 'f':
            opts->foreground = true;
            break;
        case 'd':
            opts->foreground = opts->debug = true;
            break;
        case 'o':
            if (mount_parse_options(opts, optarg, why, sizeof(why)) != 0) {
                fprintf(stderr, "lakefuse: %s\n", why);
                return 2;
            }
            break;
        case 'h':
            mount_usage(stdout);
            return 0;
        default:
            mount_usage(stderr);
            return 2;
        }
    }
    if (argc - optind != 2) {
        mount_usage(stderr);
        return 2;
    }
    return -1; /* go on */
}

static int mount_prepared(const lakefuse_config *cfg, const char *uri_text,
                          const lakefuse_uri *uri, const char *mountpoint,
                          const mount_options *opts)
{
    mount_target target = {0};
    bool server_presigns = false, server_multipart = false;
    char *mnt = NULL, *cache_dir = NULL;
    int status = check_target(cfg, uri, &target, &server_presigns,
                              &server_multipart);
    if (status == 0 && !(mnt = check_mountpoint(mountpoint)))
        status = 1;
    if (status == 0 && !(cache_dir = cli_cache_dir(opts->cache_dir)))
        status = 1;
    if (status == 0) {
        upload_caps caps = {
            .presign = opts->presign && server_presigns,
            .multipart_threshold = (int64_t)opts->multipart_threshold,
            .direct_max = (int64_t)opts->direct_upload_max,
            .eager = opts->eager_upload,
        };
        caps.multipart = caps.presign && server_multipart;
        lakefuse_fs *fs = calloc(1, sizeof(*fs));
        status = !fs || fs_setup(fs, cfg, uri, &target, opts, cache_dir,
                                 &caps);
        if (status == 0) {
            fs->mountpoint = mnt; /* borrowed: outlives the session */
            status = run_fuse(fs, uri_text, mnt, opts);
        }
        if (fs)
            fs_teardown(fs);
        free(fs);
    }
    free(mnt);
    free(cache_dir);
    target_free(&target);
    return status;
}

int mount_command(int argc, char **argv)
{
    mount_options opts;
    mount_options_init(&opts);
    lakefuse_config_flags flags = {0};
    int status = parse_command_line(argc, argv, &opts, &flags);
    if (status >= 0) {
        config_flags_free(&flags);
        mount_options_free(&opts);
        return status;
    }
    const char *uri_text = argv[optind];
    const char *mountpoint = argv[optind + 1];
    lakefuse_uri uri;
    char why[700];
    lakefuse_config cfg;
    if (uri_parse(uri_text, &uri, why, sizeof(why)) != 0) {
        fprintf(stderr, "lakefuse: %s\n", why);
        status = 1;
    } else {
        status = cli_load_config(&flags, &cfg);
        config_flags_free(&flags); /* the key's copy goes at once */
        if (status == 0) {
            status = mount_prepared(&cfg, uri_text, &uri, mountpoint, &opts);
            config_free(&cfg);
        }
        uri_free(&uri);
    }
    config_flags_free(&flags);
    mount_options_free(&opts);
    return status;
}
