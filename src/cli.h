/*
 * cli.h - what the lakefuse commands share: the connection options
 * (--config, --endpoint, --access-key-id, --secret-access-key[-file]) and
 * loading the configuration with one clear line on stderr when something
 * is missing. Never prints a secret; a key given on the command line is
 * copied and overwritten in argv (with a warning), one in the environment
 * is erased from it once read.
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
    CLI_OPT_SECRET_ACCESS_KEY_FILE,
    CLI_OPT_FIRST_COMMAND_OPTION /* commands number their own from here */
};

#define CLI_CONNECTION_OPTIONS                                                \
    {"config", required_argument, NULL, CLI_OPT_CONFIG},                      \
        {"endpoint", required_argument, NULL, CLI_OPT_ENDPOINT},              \
        {"access-key-id", required_argument, NULL, CLI_OPT_ACCESS_KEY_ID},    \
        {"secret-access-key", required_argument, NULL,                       \
         CLI_OPT_SECRET_ACCESS_KEY},                                          \
        {"secret-access-key-file", required_argument, NULL,                  \
         CLI_OPT_SECRET_ACCESS_KEY_FILE}

#define CLI_CONNECTION_HELP                                                   \
    "connection options (else LAKECTL_* variables, else ~/.lakectl.yaml):\n"  \
    "  --config FILE              lakectl-style YAML file\n"                  \
    "  --endpoint URL             lakeFS endpoint, with or without /api/v1\n" \
    "  --access-key-id ID\n"                                                  \
    "  --secret-access-key-file FILE  the secret key on one line ('-':\n"    \
    "                             standard input)\n"                         \
    "  --secret-access-key KEY    (visible to other users: avoid)\n"

/* true when getopt's opt was a connection option (stored in flags). arg
 * is getopt's optarg, inside argv: --secret-access-key's value is copied
 * into flags->secret_copy and its argv bytes overwritten, after a warning
 * on stderr. Free flags with config_flags_free. false with flags unchanged
 * when the copy cannot be made (then: a message, and exit). */
bool cli_connection_option(int opt, char *arg, lakefuse_config_flags *flags);

/* config_load plus the checks that endpoint and credentials are set. The
 * process is made non-dumpable first and the secret variables are erased
 * from the environment after, whatever the outcome. 0, or 1 after one
 * line on stderr. */
int cli_load_config(const lakefuse_config_flags *flags, lakefuse_config *cfg);

/* A client for cfg with max_attempts (0: the client's default); NULL after
 * one line on stderr. */
lakefs_client *cli_client(const lakefuse_config *cfg, unsigned max_attempts);

/* getCurrentUser, explained: 0, or 1 after one line on stderr saying
 * whether the server did not answer or refused the credentials. */
int cli_check_server(lakefs_client *client, lakefs_user *user);

/* The cache directory: explicit_dir, else $XDG_CACHE_HOME/lakefuse, else
 * ~/.cache/lakefuse; created (0700) and made absolute (the daemon chdirs
 * to /), then checked by cli_check_cache_dir. NULL after one line on
 * stderr. */
char *cli_cache_dir(const char *explicit_dir);

/* Refuses (-EPERM, the path and the reason in why) a cache directory that
 * another user could change or that could lead outside it: dir must be
 * owned by this user and not writable by group or others; each directory
 * above it owned by root or this user and, if others can write to it,
 * sticky; everything under its data/ and staging/ this user's own
 * directories (same rule) and regular files, with no symbolic link, fifo,
 * socket or device. Once it passes only this user (and root) can change
 * what is inside. dir: an absolute, resolved path. */
int cli_check_cache_dir(const char *dir, char *why, size_t len);

#endif
