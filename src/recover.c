/*
 * recover.c - finishing what a dead mount started, as one more transition
 * of the write state machine (writer.h): an orphaned staged file goes to
 * its branch only if its bytes can be trusted (sealed digest, or the same
 * boot) and the server still holds the base they were written on;
 * otherwise it is kept aside as a conflict. Nothing blocks a mount and
 * nothing is dropped unless the server has the bytes or the user ran
 * `staged discard`.
 */
#include "recover.h"

#include "cli.h"
#include "durable.h"
#include "staging.h"
#include "textfield.h"
#include "upload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool in_scope(const lakefuse_uri *uri, const staging_entry *e)
{
    if (!e->repo || !e->branch || !e->path)
        return false;
    if (uri->repo && strcmp(uri->repo, e->repo) != 0)
        return false;
    return !uri->ref || strcmp(uri->ref, e->branch) == 0;
}

/* NULL when the staged bytes are what the journal says they are, else why
 * not: sealed data must match its size and digest; unsealed data (written,
 * never closed) only in the boot it was written in, since a power loss can
 * leave it torn or zero-filled while a daemon's death does not. */
static const char *untrusted(const staging_entry *e, int fd)
{
    static char boot[DURABLE_BOOT_ID_MAX];
    if (e->sealed) {
        char digest[DURABLE_DIGEST_HEX];
        if (e->size != e->sealed_size)
            return "staged data is not the size its journal sealed";
        if (durable_digest_fd(fd, e->size, digest) != 0 ||
            strcmp(digest, e->digest) != 0)
            return "staged data does not match its journal's digest";
        return NULL;
    }
    durable_boot_id(boot);
    if (!e->boot_id || !*boot || strcmp(boot, e->boot_id) != 0)
        return "staged data from before a restart was never sealed (a power "
               "loss may have torn it)";
    return NULL;
}

/* Records the outcome in the orphan's journal (it stays for `staged`). */
static void keep_orphan(const char *cache_dir, staging_entry *e,
                        staging_state state, const char *why)
{
    char *error = strdup(why);
    if (!error)
        return;
    free(e->error);
    e->error = error;
    e->state = state;
    staging_write_orphan(cache_dir, e);
}

/* A trusted entry whose bytes the server already holds (an upload that
 * landed before the daemon died, its outcome never journaled): the object
 * must carry the attributes the journal acknowledged since (a utime,
 * chmod or xattr made while that upload ran), not the upload's. 0, or a
 * negative errno with err filled. */
static int carry_journal_attrs(lakefs_client *client, const staging_entry *e,
                               const upload_attrs *attrs,
                               const lakefs_object_stats *st,
                               lakefs_error *err)
{
    lakefs_metadata md;
    int rc = upload_build_metadata(attrs, &md);
    if (rc == 0 && !lakefs_metadata_equal(&st->metadata, &md))
        rc = lakefs_update_object_user_metadata(client, e->repo, e->branch,
                                                e->path, &md, err);
    lakefs_metadata_free(&md);
    return rc;
}

/* One orphan: 0 recovered (or already there), 1 kept aside or failed. */
static int recover_one(lakefs_client *client, logger *log,
                       const upload_caps *caps, const char *cache_dir,
                       staging_entry *e, char *first, size_t first_len)
{
    lakefs_error err = {0};
    int fd = open(e->data_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    const char *why = fd < 0 ? "staged data file cannot be opened"
                             : untrusted(e, fd);
    int rc = why ? DURABLE_CONFLICT : 0;
    /* Untrusted bytes the server holds exactly: nothing to keep (an entry
     * whose upload succeeded but whose CLEAN journal was never fsync'd can
     * come back so after a power loss: writer.c settle). */
    if (rc && fd >= 0 &&
        durable_server_has(client, caps, e->repo, e->branch, e->path, fd,
                           e->size, NULL, &err) == 1)
        rc = DURABLE_ALREADY_THERE;
    if (rc == 0) {
        durable_base base = {.absent = e->base_absent,
                             .checksum = e->base,
                             .own = (const char *const *)e->attempts,
                             .n_own = e->n_attempts};
        upload_attrs attrs = {
            .mtime = e->client_mtime ? e->client_mtime : e->mtime,
            .mode = e->mode,
            .uid = e->has_owner ? e->uid : getuid(),
            .gid = e->has_owner ? e->gid : getgid(),
            .extra = &e->metadata,
            .content_type = e->content_type};
        lakefs_object_stats st;
        memset(&st, 0, sizeof(st));
        rc = durable_upload_if_base(client, caps, e->repo, e->branch, e->path,
                                    fd, e->size, &base, &attrs, &st, &err);
        if (rc == DURABLE_ALREADY_THERE) {
            int r = carry_journal_attrs(client, e, &attrs, &st, &err);
            if (r)
                rc = r;
        }
        lakefs_object_stats_free(&st);
        why = err.message;
    }
    if (fd >= 0)
        close(fd);
    if (rc == 0 || rc == DURABLE_ALREADY_THERE) {
        logger_write(log, LOG_LEVEL_INFO,
                     "recovered %s (%lld bytes) to lakefs://%s/%s%s",
                     e->path, (long long)e->size, e->repo, e->branch,
                     rc ? " (the server already had it)" : "");
        staging_remove_orphan(cache_dir, e);
        return 0;
    }
    bool conflict = rc == DURABLE_CONFLICT;
    logger_write(log, LOG_LEVEL_ERROR,
                 "staged %s for lakefs://%s/%s %s: %s; `lakefuse staged "
                 "list` shows it, `lakefuse staged export|discard` handle it",
                 e->path, e->repo, e->branch,
                 conflict ? "kept aside, not uploaded" : "not uploaded yet",
                 why);
    keep_orphan(cache_dir, e, conflict ? STAGING_CONFLICT : STAGING_FAILED,
                why);
    if (!*first)
        snprintf(first, first_len, "lakefs://%s/%s/%s: %s", e->repo,
                 e->branch, e->path, why);
    return 1;
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
                    const lakefuse_uri *uri, writer *w)
{
    staging_entry *e = NULL;
    size_t n = 0;
    if (list_orphans(cache_dir, &e, &n) != 0)
        return 1;
    size_t kept = 0;
    char first[700] = "";
    for (size_t i = 0; i < n; i++) {
        if (e[i].state == STAGING_CLEAN) {
            staging_remove_orphan(cache_dir, &e[i]);
            continue;
        }
        if (e[i].state == STAGING_CONFLICT || !in_scope(uri, &e[i]))
            continue;
        int k = recover_one(client, log, caps, cache_dir, &e[i], first,
                            sizeof(first));
        if (k && w && e[i].state == STAGING_FAILED)
            writer_note_orphan(w, e[i].repo, e[i].branch, e[i].path);
        kept += (size_t)k;
    }
    staging_entries_free(e, n);
    if (kept)
        fprintf(stderr,
                "lakefuse: %zu staged file(s) from an earlier mount were not "
                "uploaded (first: %s); they are kept: `lakefuse staged list` "
                "shows them\n",
                kept, first);
    return 0;
}

/* ---- lakefuse staged ---- */

static const char *state_name(staging_state s)
{
    switch (s) {
    case STAGING_FAILED:
        return "failed";
    case STAGING_CLEAN:
        return "uploaded";
    case STAGING_CONFLICT:
        return "conflict";
    default:
        return "pending";
    }
}

/* One line of `staged list`: state, lakefs:// URI, size, and the error of
 * a failed upload, tab-separated (the URI and error as text fields). */
static void list_line(const staging_entry *e)
{
    char *uri = NULL;
    if (asprintf(&uri, "lakefs://%s/%s/%s", e->repo ? e->repo : "?",
                 e->branch ? e->branch : "?", e->path ? e->path : "?") < 0)
        uri = NULL;
    printf("%s\t", state_name(e->state));
    textfield_put(stdout, uri ? uri : "?");
    printf("\t%lld bytes", (long long)e->size);
    if (e->error) {
        fputc('\t', stdout);
        textfield_put(stdout, e->error);
    }
    fputc('\n', stdout);
    free(uri);
}

/* An entry matches "lakefs://REPO/BRANCH/PATH" or a bare object PATH. */
static bool entry_matches(const staging_entry *e, const char *want)
{
    if (!e->repo || !e->branch || !e->path)
        return false;
    if (strncmp(want, "lakefs://", 9) != 0)
        return strcmp(e->path, want) == 0;
    char *uri = NULL;
    if (asprintf(&uri, "lakefs://%s/%s/%s", e->repo, e->branch, e->path) < 0)
        return false;
    bool same = strcmp(uri, want) == 0;
    free(uri);
    return same;
}

/* Copies a staged data file to dest (created or replaced, 0644). */
static int export_entry(const staging_entry *e, const char *dest)
{
    int in = open(e->data_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int out = in < 0 ? -1
                     : open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                            0644);
    int rc = in < 0 || out < 0 ? -errno : 0;
    char buf[65536];
    while (rc == 0) {
        ssize_t r = read(in, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : 0;
            break;
        }
        for (ssize_t done = 0; rc == 0 && done < r;) {
            ssize_t w = write(out, buf + done, (size_t)(r - done));
            if (w < 0 && errno != EINTR)
                rc = -errno;
            else if (w > 0)
                done += w;
        }
    }
    if (out >= 0 && close(out) != 0 && rc == 0)
        rc = -errno;
    if (in >= 0)
        close(in);
    return rc;
}

typedef enum staged_action { STAGED_LIST, STAGED_DISCARD, STAGED_EXPORT } staged_action;

static int staged_run(const char *cache_dir, staged_action action,
                      const char *path, const char *dest)
{
    staging_entry *e = NULL;
    size_t n = 0;
    if (list_orphans(cache_dir, &e, &n) != 0)
        return 1;
    int status = 0;
    size_t hits = 0, last = n;
    for (size_t i = 0; i < n; i++) {
        if (path && !entry_matches(&e[i], path))
            continue;
        hits++;
        last = i;
        if (action == STAGED_DISCARD) {
            if (staging_remove_orphan(cache_dir, &e[i]) != 0)
                status = 1;
        } else if (action == STAGED_LIST) {
            list_line(&e[i]);
        }
    }
    if (action == STAGED_DISCARD)
        printf("discarded %zu staged file(s)\n", hits);
    if (action == STAGED_EXPORT) {
        /* The newest entry for the path: the last bytes written to it. */
        int rc = last < n ? export_entry(&e[last], dest) : -ENOENT;
        if (rc)
            fprintf(stderr, "lakefuse: staged export %s: %s\n", path,
                    rc == -ENOENT && last == n ? "no staged file of that path"
                                               : strerror(-rc));
        else
            printf("exported lakefs://%s/%s/%s (%lld bytes) to %s\n",
                   e[last].repo, e[last].branch, e[last].path,
                   (long long)e[last].size, dest);
        status = rc ? 1 : 0;
    }
    staging_entries_free(e, n);
    return status;
}

#define STAGED_USAGE                                                         \
    "usage: lakefuse staged list [PATH] [--cache-dir DIR]\n"                 \
    "       lakefuse staged discard [PATH] [--cache-dir DIR]\n"              \
    "       lakefuse staged export PATH DEST [--cache-dir DIR]\n"            \
    "PATH: lakefs://REPO/BRANCH/KEY or an object KEY\n"

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
        fputs(STAGED_USAGE, opt == 'h' ? stdout : stderr);
        return opt == 'h' ? 0 : 2;
    }
    int rest = argc - optind;
    const char *verb = rest > 0 ? argv[optind] : "";
    staged_action action = STAGED_LIST;
    bool ok = false;
    if (strcmp(verb, "list") == 0) {
        ok = rest <= 2;
    } else if (strcmp(verb, "discard") == 0) {
        ok = rest <= 2;
        action = STAGED_DISCARD;
    } else if (strcmp(verb, "export") == 0) {
        ok = rest == 3;
        action = STAGED_EXPORT;
    }
    if (!ok) {
        fputs(STAGED_USAGE, stderr);
        return 2;
    }
    const char *path = rest >= 2 ? argv[optind + 1] : NULL;
    const char *dest = rest == 3 ? argv[optind + 2] : NULL;
    char *dir = cli_cache_dir(cache_dir);
    if (!dir)
        return 1;
    int status = staged_run(dir, action, path, dest);
    free(dir);
    return status;
}
