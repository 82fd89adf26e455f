/*
 * cli.h - what the lakefuse commands share: the connection options
 * (--config, --endpoint, --access-key-id, --secret-access-key) and loading
 * the configuration with one clear line on stderr when something is
 * missing. Never prints a secret.
 */
#ifndef LAKEFUSE_CLI_H
#define LAKEFUSE_CLI_H

#include "config.h"
#include "lakefs.h"

#include <getopt.h>
#include <stdbool.h>

enum {
    CLI_OPT_CONFIG = 256,
    CLI_OPT_ENDPOINT,
    CLI_OPT_ACCESS_KEY_ID,
    CLI_OPT_SECRET_ACCESS_KEY,
    CLI_OPT_FIRST_COMMAND_OPTION /* commands number their own from here */
};

#define CLI_CONNECTION_OPTIONS                                                \
    {"config", required_argument, NULL, CLI_OPT_CONFIG},                      \
        {"endpoint", required_argument, NULL, CLI_OPT_ENDPOINT},              \
        {"access-key-id", required_argument, NULL, CLI_OPT_ACCESS_KEY_ID},    \
        {"secret-access-key", required_argument, NULL,                       \
         CLI_OPT_SECRET_ACCESS_KEY}

#define CLI_CONNECTION_HELP                                                   \
    "connection options (else LAKECTL_* variables, else ~/.lakectl.yaml):\n"  \
    "  --config FILE              lakectl-style YAML file\n"                  \
    "  --endpoint URL             lakeFS endpoint, with or without /api/v1\n" \
    "  --access-key-id ID\n"                                                  \
    "  --secret-access-key KEY\n"

/* true when getopt's opt was a connection option (stored in flags). */
bool cli_connection_option(int opt, const char *arg,
                           lakefuse_config_flags *flags);

/* config_load plus the checks that endpoint and credentials are set.
 * 0, or 1 after one line on stderr. */
int cli_load_config(const lakefuse_config_flags *flags, lakefuse_config *cfg);

/* A client for cfg with max_attempts (0: the client's default); NULL after
 * one line on stderr. */
lakefs_client *cli_client(const lakefuse_config *cfg, unsigned max_attempts);

/* getCurrentUser, explained: 0, or 1 after one line on stderr saying
 * whether the server did not answer or refused the credentials. */
int cli_check_server(lakefs_client *client, lakefs_user *user);

/* The cache directory: explicit_dir, else $XDG_CACHE_HOME/lakefuse, else
 * ~/.cache/lakefuse; created (0700) and made absolute (the daemon chdirs
 * to /). NULL after one line on stderr. */
char *cli_cache_dir(const char *explicit_dir);

#endif
