/*
 * cli.c - connection options and configuration loading shared by the
 * lakefuse commands. Messages name the endpoint, never a key.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* The key would show in ps and /proc/PID/cmdline to every local user:
 * keep a copy, overwrite the argument. */
static bool take_secret_from_argv(char *arg, lakefuse_config_flags *flags)
{
    char *copy = strdup(arg);
    if (!copy) {
        fprintf(stderr, "lakefuse: out of memory\n");
        return false;
    }
    memset(arg, 'x', strlen(arg));
    free(flags->secret_copy);
    flags->secret_copy = copy;
    flags->secret_access_key = copy;
    fprintf(stderr, "lakefuse: warning: --secret-access-key shows the key "
                    "to other local users (ps); use "
                    "--secret-access-key-file, "
                    "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY or "
                    "~/.lakectl.yaml\n");
    return true;
}

bool cli_connection_option(int opt, char *arg, lakefuse_config_flags *flags)
{
    switch (opt) {
    case CLI_OPT_CONFIG:
        flags->config_file = arg;
        return true;
    case CLI_OPT_ENDPOINT:
        flags->endpoint = arg;
        return true;
    case CLI_OPT_ACCESS_KEY_ID:
        flags->access_key_id = arg;
        return true;
    case CLI_OPT_SECRET_ACCESS_KEY:
        return take_secret_from_argv(arg, flags);
    case CLI_OPT_SECRET_ACCESS_KEY_FILE:
        flags->secret_access_key_file = arg;
        return true;
    default:
        return false;
    }
}

int cli_load_config(const lakefuse_config_flags *flags, lakefuse_config *cfg)
{
    /* From here the memory holds the key: no core file, and no ptrace or
     * /proc/PID/mem by other processes of the user. Only the commands
     * that load credentials do this (the daemon inherits it); the others
     * stay inspectable, as the mount reads /proc/PID/fd of its callers. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    char why[512];
    int rc = config_load(cfg, flags, why, sizeof(why));
    config_forget_environment();
    if (rc != 0) {
        fprintf(stderr, "lakefuse: %s\n", why);
        return 1;
    }
    if (!cfg->endpoint)
        fprintf(stderr, "lakefuse: no lakeFS endpoint: set --endpoint, "
                        "LAKECTL_SERVER_ENDPOINT_URL or server.endpoint_url "
                        "in ~/.lakectl.yaml\n");
    else if (!cfg->access_key_id || !cfg->secret_access_key)
        fprintf(stderr, "lakefuse: no lakeFS credentials: set "
                        "LAKECTL_CREDENTIALS_ACCESS_KEY_ID and "
                        "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY or the "
                        "credentials section of ~/.lakectl.yaml\n");
    else
        return 0;
    config_free(cfg);
    return 1;
}

lakefs_client *cli_client(const lakefuse_config *cfg, unsigned max_attempts)
{
    lakefs_client_config cc = {
        .endpoint = cfg->endpoint,
        .access_key_id = cfg->access_key_id,
        .secret_access_key = cfg->secret_access_key,
        .max_attempts = max_attempts,
    };
    lakefs_error err = {0};
    lakefs_client *client = lakefs_client_new(&cc, &err);
    if (!client)
        fprintf(stderr, "lakefuse: %s\n", err.message);
    return client;
}

int cli_check_server(lakefs_client *client, lakefs_user *user)
{
    lakefs_error err = {0};
    int rc = lakefs_get_current_user(client, user, &err);
    if (rc == 0)
        return 0;
    if (err.status == 0 || err.status >= 500)
        fprintf(stderr, "lakefuse: lakeFS at %s does not answer: %s\n",
                lakefs_client_base_url(client), err.message);
    else
        fprintf(stderr, "lakefuse: credentials refused by %s: %s\n",
                lakefs_client_base_url(client), err.message);
    return 1;
}

static int mkdir_p(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -ENOMEM;
    int rc = 0;
    for (char *p = copy + 1; rc == 0; p++) {
        bool end = *p == '\0';
        if (*p != '/' && !end)
            continue;
        *p = '\0';
        if (mkdir(copy, 0700) != 0 && errno != EEXIST)
            rc = -errno;
        if (end)
            break;
        *p = '/';
    }
    free(copy);
    return rc;
}

/* ---- the cache directory: private to this user, or refused ---- */

/* The cache directory's subdirectories that lakefuse fills (block cache,
 * staged files): walked whole at every start. */
static const char *const cache_subdirs[] = {"data", "staging"};
#define CACHE_TREE_MAX_DEPTH 8

static int refuse(char *why, size_t len, const char *path, const char *what)
{
    snprintf(why, len, "%s %s", path, what);
    return -EPERM;
}

/* A failed call on path: its errno, negated, with why saying so. */
static int failed(char *why, size_t len, const char *path)
{
    int e = errno;
    snprintf(why, len, "%s: %s", path, strerror(e));
    return -e;
}

/* A directory another user could change: one owned by someone else, or
 * writable by group or others. */
static int check_private_dir(const struct stat *st, const char *path,
                             char *why, size_t len)
{
    if (!S_ISDIR(st->st_mode))
        return refuse(why, len, path, "is not a directory");
    if (st->st_uid != geteuid())
        return refuse(why, len, path, "is owned by another user");
    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        char what[96];
        snprintf(what, sizeof(what),
                 "is writable by group or others (mode %04o)",
                 (unsigned)(st->st_mode & 07777));
        return refuse(why, len, path, what);
    }
    return 0;
}

/* Every entry under the directory open at fd (named path, a buffer of
 * PATH_MAX) is this user's: directories as check_private_dir wants them,
 * regular files; no symbolic link, fifo, socket or device, whose opening
 * could lead out of the cache or block. */
static int check_cache_tree(int fd, char *path, int depth, char *why,
                            size_t len)
{
    int copy = dup(fd);
    DIR *d = copy < 0 ? NULL : fdopendir(copy);
    if (!d) {
        int rc = failed(why, len, path);
        if (copy >= 0)
            close(copy);
        return rc;
    }
    size_t base = strlen(path);
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* gone meanwhile: another mount's temporary file */
        snprintf(path + base, PATH_MAX - base, "/%s", de->d_name);
        if (S_ISLNK(st.st_mode))
            rc = refuse(why, len, path, "is a symbolic link");
        else if (S_ISDIR(st.st_mode) && depth >= CACHE_TREE_MAX_DEPTH)
            rc = refuse(why, len, path, "is nested too deep");
        else if (S_ISDIR(st.st_mode))
            rc = check_private_dir(&st, path, why, len);
        else if (!S_ISREG(st.st_mode))
            rc = refuse(why, len, path, "is not a regular file");
        else if (st.st_uid != geteuid())
            rc = refuse(why, len, path, "is owned by another user");
        if (rc == 0 && S_ISDIR(st.st_mode)) {
            int sub = openat(fd, de->d_name,
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                rc = check_cache_tree(sub, path, depth + 1, why, len);
                close(sub);
            }
        }
        path[base] = '\0';
    }
    closedir(d);
    return rc;
}

/* Each directory above dir: owned by root or this user, and writable by
 * others only with the sticky bit (as /tmp), so nobody else can move the
 * cache directory away and put another in its place. */
static int check_ancestors(const char *dir, char *why, size_t len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s", dir);
    for (char *slash = strrchr(path, '/'); slash; slash = strrchr(path, '/')) {
        slash[slash == path ? 1 : 0] = '\0';
        struct stat st;
        if (lstat(path, &st) != 0)
            return failed(why, len, path);
        if (st.st_uid != 0 && st.st_uid != geteuid())
            return refuse(why, len, path, "is owned by another user");
        if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
            return refuse(why, len, path,
                          "is writable by other users and not sticky");
        if (slash == path)
            break;
    }
    return 0;
}

int cli_check_cache_dir(const char *dir, char *why, size_t len)
{
    int rc = check_ancestors(dir, why, len);
    int fd = rc == 0 ? open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                     O_CLOEXEC)
                     : -1;
    struct stat st;
    if (rc == 0 && (fd < 0 || fstat(fd, &st) != 0))
        rc = failed(why, len, dir);
    if (rc == 0)
        rc = check_private_dir(&st, dir, why, len);
    for (size_t i = 0;
         rc == 0 && i < sizeof(cache_subdirs) / sizeof(cache_subdirs[0]);
         i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, cache_subdirs[i]);
        if (fstatat(fd, cache_subdirs[i], &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* made (0700) when first used */
        if (S_ISLNK(st.st_mode))
            rc = refuse(why, len, path, "is a symbolic link");
        if (rc == 0)
            rc = check_private_dir(&st, path, why, len);
        int sub = rc == 0 ? openat(fd, cache_subdirs[i],
                                   O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                       O_CLOEXEC)
                          : -1;
        if (sub >= 0) {
            rc = check_cache_tree(sub, path, 1, why, len);
            close(sub);
        }
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

char *cli_cache_dir(const char *explicit_dir)
{
    char *dir = NULL;
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    if (explicit_dir)
        dir = strdup(explicit_dir);
    else if (xdg && *xdg == '/' && asprintf(&dir, "%s/lakefuse", xdg) < 0)
        dir = NULL;
    else if (!(xdg && *xdg == '/') &&
             asprintf(&dir, "%s/.cache/lakefuse", home ? home : "/tmp") < 0)
        dir = NULL;
    int rc = dir ? mkdir_p(dir) : -ENOMEM;
    char *abs = rc == 0 ? realpath(dir, NULL) : NULL;
    if (!abs)
        fprintf(stderr, "lakefuse: cache directory %s: %s\n",
                dir ? dir : "?", strerror(rc ? -rc : errno));
    char why[PATH_MAX + 128];
    if (abs && cli_check_cache_dir(abs, why, sizeof(why)) != 0) {
        fprintf(stderr, "lakefuse: cache directory %s refused: %s\n", abs,
                why);
        free(abs);
        abs = NULL;
    }
    free(dir);
    return abs;
}
