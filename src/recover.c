/*
 * recover.c - finishing what a dead mount started: orphaned staged files
 * go to their branch with the same upload as a close, each logged; a
 * failure stops the mount rather than hiding the file. Never discards a
 * file unless the server has it or the user ran `staged discard`.
 */
#include "recover.h"

#include "cli.h"
#include "staging.h"
#include "upload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool in_scope(const lakefuse_uri *uri, const staging_entry *e)
{
    if (!e->repo || !e->branch || !e->path)
        return false;
    if (uri->repo && strcmp(uri->repo, e->repo) != 0)
        return false;
    return !uri->ref || strcmp(uri->ref, e->branch) == 0;
}

static int upload_orphan(lakefs_client *client, const upload_caps *caps,
                         const staging_entry *e, lakefs_error *err)
{
    int fd = open(e->data_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(err->message, sizeof(err->message), "%s: %s", e->data_path,
                 strerror(errno));
        return -errno;
    }
    upload_attrs attrs = {.mtime = e->mtime, .mode = e->mode,
                          .uid = getuid(), .gid = getgid()};
    int rc = upload_fd(client, caps, e->repo, e->branch, e->path, fd, e->size,
                       &attrs, NULL, err);
    close(fd);
    return rc;
}

/* staging_list_orphans, or one line on stderr saying why not. */
static int list_orphans(const char *cache_dir, staging_entry **e, size_t *n)
{
    int rc = staging_list_orphans(cache_dir, e, n);
    if (rc)
        fprintf(stderr, "lakefuse: cannot read staged files in %s: %s\n",
                cache_dir, strerror(-rc));
    return rc;
}

int recover_orphans(lakefs_client *client, logger *log,
                    const upload_caps *caps, const char *cache_dir,
                    const lakefuse_uri *uri)
{
    staging_entry *e = NULL;
    size_t n = 0;
    if (list_orphans(cache_dir, &e, &n) != 0)
        return 1;
    size_t failed = 0;
    char first[700] = "";
    for (size_t i = 0; i < n; i++) {
        if (e[i].state == STAGING_CLEAN) {
            staging_remove_orphan(cache_dir, &e[i]);
            continue;
        }
        if (!in_scope(uri, &e[i]))
            continue;
        lakefs_error err = {0};
        if (upload_orphan(client, caps, &e[i], &err) == 0) {
            logger_write(log, LOG_LEVEL_INFO,
                         "recovered %s (%lld bytes) to lakefs://%s/%s",
                         e[i].path, (long long)e[i].size, e[i].repo,
                         e[i].branch);
            staging_remove_orphan(cache_dir, &e[i]);
            continue;
        }
        if (failed++ == 0)
            snprintf(first, sizeof(first), "lakefs://%s/%s/%s: %s",
                     e[i].repo, e[i].branch, e[i].path, err.message);
    }
    staging_entries_free(e, n);
    if (failed == 0)
        return 0;
    fprintf(stderr,
            "lakefuse: %zu staged file(s) from an earlier mount could not "
            "be uploaded (first: %s); `lakefuse staged list` shows them, "
            "`lakefuse staged discard` drops them\n",
            failed, first);
    return 1;
}

static const char *state_name(staging_state s)
{
    return s == STAGING_FAILED ? "failed"
           : s == STAGING_CLEAN ? "uploaded"
                                : "pending";
}

static int staged_list(const char *cache_dir, bool discard)
{
    staging_entry *e = NULL;
    size_t n = 0;
    if (list_orphans(cache_dir, &e, &n) != 0)
        return 1;
    int status = 0;
    for (size_t i = 0; i < n; i++) {
        if (discard) {
            if (staging_remove_orphan(cache_dir, &e[i]) != 0)
                status = 1;
            continue;
        }
        printf("%s\tlakefs://%s/%s/%s\t%lld bytes%s%s\n",
               state_name(e[i].state), e[i].repo ? e[i].repo : "?",
               e[i].branch ? e[i].branch : "?", e[i].path ? e[i].path : "?",
               (long long)e[i].size, e[i].error ? "\t" : "",
               e[i].error ? e[i].error : "");
    }
    if (discard)
        printf("discarded %zu staged file(s)\n", n);
    staging_entries_free(e, n);
    return status;
}

int staged_command(int argc, char **argv)
{
    static const struct option options[] = {
        {"cache-dir", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cache_dir = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        if (opt == 'c') {
            cache_dir = optarg;
            continue;
        }
        fputs("usage: lakefuse staged list|discard [--cache-dir DIR]\n",
              opt == 'h' ? stdout : stderr);
        return opt == 'h' ? 0 : 2;
    }
    bool list = optind == argc - 1 && strcmp(argv[optind], "list") == 0;
    bool discard = optind == argc - 1 && strcmp(argv[optind], "discard") == 0;
    if (!list && !discard) {
        fputs("usage: lakefuse staged list|discard [--cache-dir DIR]\n",
              stderr);
        return 2;
    }
    char *dir = cli_cache_dir(cache_dir);
    if (!dir)
        return 1;
    int status = staged_list(dir, discard);
    free(dir);
    return status;
}
