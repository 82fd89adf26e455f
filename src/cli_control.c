/*
 * cli_control.c - `lakefuse commit|status|diff|merge|branch|umount`: thin
 * commands over a mount's control files, so they need no credentials and
 * work on any lakefuse mount. Each finds the ref root (the directory whose
 * .lakefs/ has a head) above DIR, writes one request, reads the result.
 */
#include "cli_control.h"
#include "textfield.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CONTROL ".lakefs"

/* The ref root at or above dir, or NULL after a message. */
static char *find_ref_root(const char *dir)
{
    char *p = realpath(dir, NULL);
    if (!p) {
        fprintf(stderr, "lakefuse: %s: %s\n", dir, strerror(errno));
        return NULL;
    }
    for (;;) {
        char head[PATH_MAX];
        struct stat st;
        snprintf(head, sizeof(head), "%s/" CONTROL "/head", p);
        if (stat(head, &st) == 0)
            return p;
        char *slash = strrchr(p, '/');
        if (!slash || slash == p)
            break;
        *slash = '\0';
    }
    fprintf(stderr, "lakefuse: %s is not inside a ref of a lakefuse mount\n",
            dir);
    free(p);
    return NULL;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *text = NULL;
    size_t len = 0, cap = 0;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *grown = realloc(text, cap);
            if (!grown) {
                free(text);
                fclose(f);
                return NULL;
            }
            text = grown;
        }
        memcpy(text + len, buf, n);
        len += n;
    }
    fclose(f);
    if (!text)
        text = strdup("");
    else
        text[len] = '\0';
    return text;
}

/* Writes one request; 0 or the errno the mount answered. */
static int write_control(const char *root, const char *name, const char *text)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/" CONTROL "/%s", root, name);
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0)
        return errno;
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int rc = n == (ssize_t)len ? 0 : n < 0 ? errno : EIO;
    close(fd);
    return rc;
}

/* The result JSON of the last request on a control file. */
static cJSON *read_result(const char *root, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/" CONTROL "/%s", root, name);
    char *text = read_file(path);
    cJSON *o = text ? cJSON_Parse(text) : NULL;
    free(text);
    return o;
}

static const char *result_string(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b)
        v = cJSON_GetObjectItemCaseSensitive(v, b);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* One request and its outcome: prints the result field on success, the
 * server's reason on failure. Returns the exit status. */
static int request(const char *root, const char *name, const char *text,
                   const char *ok_a, const char *ok_b, const char *what)
{
    int rc = write_control(root, name, text);
    cJSON *o = read_result(root, name);
    const char *error = result_string(o, "error", NULL);
    int status = 0;
    if (rc == ENODATA && strcmp(name, "commit") == 0) {
        printf("nothing to commit, working tree clean\n");
        status = 1;
    } else if (rc) {
        fprintf(stderr, "lakefuse: %s failed: %s\n", what,
                error ? error : strerror(rc));
        const cJSON *conflicts = cJSON_GetObjectItemCaseSensitive(o, "conflicts");
        const cJSON *c;
        cJSON_ArrayForEach(c, conflicts)
        {
            if (cJSON_IsString(c)) { /* a line each, whatever the name */
                fputs("CONFLICT: ", stderr);
                textfield_put(stderr, c->valuestring);
                fputc('\n', stderr);
            }
        }
        status = 1;
    } else if (ok_a) {
        const char *v = result_string(o, ok_a, ok_b);
        printf("%s\n", v ? v : "");
    }
    cJSON_Delete(o);
    return status;
}

static int cat_control(const char *root, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/" CONTROL "/%s", root, name);
    char *text = read_file(path);
    if (!text) {
        fprintf(stderr, "lakefuse: %s: %s\n", name,
                errno == ENOENT ? "unknown ref" : strerror(errno));
        return 1;
    }
    fputs(text, stdout);
    free(text);
    return 0;
}

/* ---- commands ---- */

static int commit_command(int argc, char **argv)
{
    static const struct option options[] = {
        {"message", required_argument, NULL, 'm'},
        {"meta", required_argument, NULL, 'M'},
        {"allow-empty", no_argument, NULL, 'e'},
        {NULL, 0, NULL, 0},
    };
    cJSON *req = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(req, "metadata");
    const char *message = NULL;
    bool usage = false;
    int opt;
    while (!usage && (opt = getopt_long(argc, argv, "m:", options, NULL)) != -1) {
        char *eq = opt == 'M' ? strchr(optarg, '=') : NULL;
        if (opt == 'm')
            message = optarg;
        else if (opt == 'e')
            cJSON_AddBoolToObject(req, "allow_empty", 1);
        else if (eq) {
            *eq = '\0';
            cJSON_AddStringToObject(meta, optarg, eq + 1);
        } else
            usage = true;
    }
    if (usage || !message || optind != argc - 1) {
        fputs("usage: lakefuse commit DIR -m MESSAGE [--meta KEY=VALUE]... "
              "[--allow-empty]\n",
              stderr);
        cJSON_Delete(req);
        return 2;
    }
    cJSON_AddStringToObject(req, "message", message);
    char *root = find_ref_root(argv[optind]);
    char *text = cJSON_PrintUnformatted(req);
    int status = root && text ? request(root, "commit", text, "commit", "id",
                                        "commit")
                              : 1;
    free(text);
    free(root);
    cJSON_Delete(req);
    return status;
}

/* true when argc is right; else prints usage. */
static bool arity(int argc, int want, const char *usage)
{
    if (argc == want)
        return true;
    fprintf(stderr, "usage: %s\n", usage);
    return false;
}

/* fusermount3 -u dir: true when it unmounted. quiet: its complaint (a
 * busy mount) goes to /dev/null. */
static bool fusermount_u(const char *dir, bool quiet)
{
    pid_t pid = fork();
    if (pid == 0) {
        int null = quiet ? open("/dev/null", O_WRONLY) : -1;
        if (null >= 0)
            dup2(null, STDERR_FILENO);
        execlp("fusermount3", "fusermount3", "-u", dir, (char *)NULL);
        _exit(127);
    }
    int ws = 0;
    return pid > 0 && waitpid(pid, &ws, 0) == pid && WIFEXITED(ws) &&
           WEXITSTATUS(ws) == 0;
}

/* After waiting for uploads: how long a busy mount is tried again. The
 * upload a close waits for is done (its journal entry clean) a moment
 * before the close returns and the kernel lets go of the file; on a
 * loaded machine that moment can outlast the first try. */
#define UMOUNT_BUSY_RETRY_MS 5000
#define UMOUNT_BUSY_STEP_MS 100
/* How often umount reads the mount's counters while waiting, and after
 * how many reads it says that files still open for writing are what it
 * waits for (a close in progress is open too, for a moment). */
#define UMOUNT_POLL_MS 200
#define UMOUNT_TELL_OPEN_ROUNDS 5

/* A counter of .lakefs/stats (0 when absent). */
static long stat_count(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? (long)v->valuedouble : 0;
}

/* Unmounts once the mount has no upload left to do. Failed uploads are
 * not waited for (their retries back off for up to a minute each, and an
 * outage can last): the mount is left up, retrying them, and the exit
 * status says so. Conflicts (kept aside, never uploaded automatically)
 * do not hold the unmount back: they stay in the cache either way. */
static int umount_command(int argc, char **argv)
{
    if (!arity(argc, 2, "lakefuse umount DIR"))
        return 2;
    char stats[PATH_MAX];
    snprintf(stats, sizeof(stats), "%s/" CONTROL "/stats", argv[1]);
    bool tty = isatty(STDERR_FILENO);
    bool waited = false, told_open = false;
    long failed = 0, conflicts = 0;
    for (int round = 0;; round++) {
        char *text = read_file(stats);
        cJSON *o = text ? cJSON_Parse(text) : NULL;
        free(text);
        long pending = stat_count(o, "pending_uploads");
        long open = stat_count(o, "open_for_writing");
        failed = stat_count(o, "failed_uploads");
        conflicts = stat_count(o, "conflicts");
        cJSON_Delete(o);
        if (pending == 0)
            break;
        waited = true;
        if (tty)
            fprintf(stderr, "\rwaiting for %ld upload(s)%s %c", pending,
                    open > 0 ? ", file(s) still open for writing" : "",
                    "|/-\\"[round % 4]);
        else if (open > 0 && !told_open && round >= UMOUNT_TELL_OPEN_ROUNDS) {
            /* A program holds a file open: its upload comes at its close,
             * which may be far off. Say what is waited for (once). */
            fprintf(stderr,
                    "lakefuse: %s: waiting for %ld file(s) still open for "
                    "writing to be closed (their uploads follow); "
                    "interrupt to stop waiting, the mount stays up\n",
                    argv[1], open);
            told_open = true;
        }
        struct timespec ts = {0, UMOUNT_POLL_MS * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (tty)
        fputs("\r\033[K", stderr);
    if (failed > 0) {
        fprintf(stderr,
                "lakefuse: %ld upload(s) failed; %s stays mounted and "
                "retries them (`lakefuse status` at a branch shows why).\n"
                "lakefuse: `fusermount3 -u %s` unmounts anyway: the bytes "
                "stay in the cache and the next mount uploads them.\n",
                failed, argv[1], argv[1]);
        return 1;
    }
    if (conflicts > 0)
        fprintf(stderr,
                "lakefuse: %ld file(s) kept aside as conflicts, not on "
                "lakeFS: `lakefuse staged list` shows them.\n",
                conflicts);
    int tries = waited ? UMOUNT_BUSY_RETRY_MS / UMOUNT_BUSY_STEP_MS : 1;
    for (int i = 1;; i++) {
        if (fusermount_u(argv[1], i < tries))
            return 0;
        if (i >= tries)
            break;
        struct timespec ts = {0, UMOUNT_BUSY_STEP_MS * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "lakefuse: could not unmount %s\n", argv[1]);
    return 1;
}

static int status_command(int argc, char **argv)
{
    if (!arity(argc, 2, "lakefuse status DIR"))
        return 2;
    char *root = find_ref_root(argv[1]);
    int status = root ? cat_control(root, "status") : 1;
    free(root);
    return status;
}

static int diff_command(int argc, char **argv)
{
    if (!arity(argc, 3, "lakefuse diff DIR REF"))
        return 2;
    char name[PATH_MAX];
    snprintf(name, sizeof(name), "diff/%s", argv[2]);
    char *root = find_ref_root(argv[1]);
    int status = root ? cat_control(root, name) : 1;
    free(root);
    return status;
}

static int merge_command(int argc, char **argv)
{
    if (!arity(argc, 3, "lakefuse merge REF DIR"))
        return 2;
    char *root = find_ref_root(argv[2]);
    int status =
        root ? request(root, "merge", argv[1], "reference", NULL, "merge") : 1;
    free(root);
    return status;
}

static int branch_command(int argc, char **argv)
{
    const char *usage = "lakefuse branch create|delete DIR NAME";
    if (!arity(argc, 4, usage))
        return 2;
    bool del = strcmp(argv[1], "delete") == 0;
    if (!del && strcmp(argv[1], "create") != 0) {
        fprintf(stderr, "usage: %s\n", usage);
        return 2;
    }
    char text[PATH_MAX];
    snprintf(text, sizeof(text), "%s%s", del ? "-d " : "", argv[3]);
    char *root = find_ref_root(argv[2]);
    int status = root ? request(root, "branch", text, NULL, NULL,
                                del ? "branch delete" : "branch create")
                      : 1;
    free(root);
    return status;
}

int control_command(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
    } commands[] = {
        {"commit", commit_command}, {"status", status_command},
        {"diff", diff_command},     {"merge", merge_command},
        {"branch", branch_command}, {"umount", umount_command},
    };
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[0], commands[i].name) == 0)
            return commands[i].run(argc, argv);
    return -1;
}
