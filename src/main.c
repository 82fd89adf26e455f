/*
 * main.c - the lakefuse command line. Today: `doctor` (can lakefuse reach
 * lakeFS with the configured endpoint and credentials?), --help and
 * --version; the mount itself arrives with the filesystem layers.
 * Never prints a secret.
 */
#include "config.h"
#include "lakefs.h"
#include "target.h"
#include "uri.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fputs("usage: lakefuse [--help] [--version] <command> [options]\n"
          "\n"
          "commands:\n"
          "  doctor [URI]   check that lakeFS answers and accepts the\n"
          "                 credentials, and that URI (lakefs://REPO[/REF])\n"
          "                 names an existing repository and ref\n"
          "\n"
          "connection options (else LAKECTL_* variables, else "
          "~/.lakectl.yaml):\n"
          "  --config FILE              lakectl-style YAML file\n"
          "  --endpoint URL             lakeFS endpoint, with or without "
          "/api/v1\n"
          "  --access-key-id ID\n"
          "  --secret-access-key KEY\n",
          out);
}

static int parse_connection_flags(int argc, char **argv,
                                  lakefuse_config_flags *flags)
{
    enum { OPT_CONFIG = 256, OPT_ENDPOINT, OPT_KEY, OPT_SECRET };
    static const struct option options[] = {
        {"config", required_argument, NULL, OPT_CONFIG},
        {"endpoint", required_argument, NULL, OPT_ENDPOINT},
        {"access-key-id", required_argument, NULL, OPT_KEY},
        {"secret-access-key", required_argument, NULL, OPT_SECRET},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case OPT_CONFIG:
            flags->config_file = optarg;
            break;
        case OPT_ENDPOINT:
            flags->endpoint = optarg;
            break;
        case OPT_KEY:
            flags->access_key_id = optarg;
            break;
        case OPT_SECRET:
            flags->secret_access_key = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    return 0;
}

static int doctor_target(lakefs_client *client, const char *text)
{
    lakefuse_uri uri;
    char why[700];
    if (uri_parse(text, &uri, why, sizeof(why)) != 0) {
        fprintf(stderr, "lakefuse: %s\n", why);
        return 1;
    }
    mount_target t;
    int status = 1;
    if (target_resolve(client, &uri, &t, why, sizeof(why)) != 0) {
        fprintf(stderr, "lakefuse: %s\n", why);
    } else {
        if (uri.repo)
            printf("repository: %s (default branch %s)\n", uri.repo,
                   t.default_branch);
        if (uri.ref)
            printf("ref:        %s -> commit %s (%s)\n", uri.ref,
                   t.commit_id,
                   t.is_branch ? "branch: follows its head"
                               : "fixed: read-only");
        target_free(&t);
        status = 0;
    }
    uri_free(&uri);
    return status;
}

/* Connects as the mount will: health, credentials, server capabilities,
 * then the URI's repository and ref when one is given. */
static int doctor(const lakefuse_config *cfg, const char *uri)
{
    lakefs_client_config cc = {
        .endpoint = cfg->endpoint,
        .access_key_id = cfg->access_key_id,
        .secret_access_key = cfg->secret_access_key,
        .max_attempts = 2,
    };
    lakefs_error err = {0};
    lakefs_client *client = lakefs_client_new(&cc, &err);
    if (!client) {
        fprintf(stderr, "lakefuse: %s\n", err.message);
        return 1;
    }
    int status = 1;
    lakefs_user user = {0};
    lakefs_config config = {0};
    if (lakefs_health_check(client, &err) != 0) {
        fprintf(stderr, "lakefuse: lakeFS at %s does not answer: %s\n",
                lakefs_client_base_url(client), err.message);
    } else if (lakefs_get_current_user(client, &user, &err) != 0) {
        fprintf(stderr, "lakefuse: credentials refused by %s: %s\n",
                lakefs_client_base_url(client), err.message);
    } else if (lakefs_get_config(client, &config, &err) != 0) {
        fprintf(stderr, "lakefuse: cannot read server config: %s\n",
                err.message);
    } else {
        const lakefs_storage_config *st =
            lakefs_config_storage_for(&config, NULL);
        printf("endpoint:  %s\n", lakefs_client_base_url(client));
        printf("version:   %s\n", config.version ? config.version : "?");
        printf("user:      %s\n", user.id);
        printf("storage:   %s (presign %s)\n",
               st ? st->blockstore_type : "?",
               st && st->pre_sign_support ? "yes" : "no");
        status = uri ? doctor_target(client, uri) : 0;
    }
    lakefs_user_free(&user);
    lakefs_config_free(&config);
    lakefs_client_free(client);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("lakefuse %s\n", LAKEFUSE_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "doctor") != 0) {
        fprintf(stderr, "lakefuse: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    lakefuse_config_flags flags = {0};
    if (parse_connection_flags(argc - 1, argv + 1, &flags) != 0 ||
        argc - 1 - optind > 1) {
        usage(stderr);
        return 2;
    }
    const char *uri = optind < argc - 1 ? argv[1 + optind] : NULL;
    lakefuse_config cfg;
    char why[512];
    if (config_load(&cfg, &flags, why, sizeof(why)) != 0) {
        fprintf(stderr, "lakefuse: %s\n", why);
        return 1;
    }
    int status = 1;
    if (!cfg.endpoint)
        fprintf(stderr, "lakefuse: no lakeFS endpoint: set --endpoint, "
                        "LAKECTL_SERVER_ENDPOINT_URL or server.endpoint_url "
                        "in ~/.lakectl.yaml\n");
    else if (!cfg.access_key_id || !cfg.secret_access_key)
        fprintf(stderr, "lakefuse: no lakeFS credentials: set "
                        "LAKECTL_CREDENTIALS_ACCESS_KEY_ID and "
                        "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY or the "
                        "credentials section of ~/.lakectl.yaml\n");
    else
        status = doctor(&cfg, uri);
    config_free(&cfg);
    return status;
}
