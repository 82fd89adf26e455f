/*
 * cli.c - connection options and configuration loading shared by the
 * lakefuse commands. Messages name the endpoint, never a key.
 */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
    free(dir);
    return abs;
}

