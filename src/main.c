/*
 * main.c - the lakefuse command line: `mount` (mount.c), `doctor` (can
 * lakefuse reach lakeFS with the configured endpoint and credentials, and
 * does a URI name a repository and ref?), --help and --version.
 * Never prints a secret.
 */
#include "cli.h"
#include "cli_control.h"
#include "mount.h"
#include "recover.h"
#include "target.h"
#include "uri.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fputs("usage: lakefuse [--help] [--version] <command> [options]\n"
          "\n"
          "commands:\n"
          "  mount [-f] [-o OPT,...] URI MOUNTPOINT\n"
          "                 mount lakefs:// (every repository), "
          "lakefs://REPO\n"
          "                 (every ref) or lakefs://REPO/REF[/PREFIX]; "
          "see\n"
          "                 `lakefuse mount --help` for the options\n"
          "  commit DIR -m MSG [--meta K=V]... [--allow-empty]\n"
          "                 commit the branch mounted at DIR (prints the id)\n"
          "  status DIR     uncommitted changes and pending uploads\n"
          "  diff DIR REF   what DIR's ref has relative to REF\n"
          "  merge REF DIR  merge REF into the branch at DIR\n"
          "  branch create|delete DIR NAME\n"
          "                 create NAME from DIR's ref, or delete branch NAME\n"
          "  umount DIR     wait for pending uploads, then unmount\n"
          "  staged list|discard [PATH] | export PATH DEST [--cache-dir DIR]\n"
          "                 files a dead mount left staged (the next mount\n"
          "                 of their branch uploads them) and conflicts\n"
          "                 kept aside\n"
          "  doctor [URI]   check that lakeFS answers and accepts the\n"
          "                 credentials, and that URI (lakefs://REPO[/REF])\n"
          "                 names an existing repository and ref\n"
          "\n" CLI_CONNECTION_HELP,
          out);
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

/* Connects as the mount will: credentials, server capabilities, then the
 * URI's repository and ref when one is given. */
static int doctor(const lakefuse_config *cfg, const char *uri)
{
    lakefs_client *client = cli_client(cfg, 2);
    if (!client)
        return 1;
    lakefs_user user = {0};
    lakefs_config config = {0};
    lakefs_error err = {0};
    int status = cli_check_server(client, &user);
    if (status == 0 && lakefs_get_config(client, &config, &err) != 0) {
        fprintf(stderr, "lakefuse: cannot read server config: %s\n",
                err.message);
        status = 1;
    } else if (status == 0) {
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

static int doctor_command(int argc, char **argv)
{
    static const struct option options[] = {
        CLI_CONNECTION_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    lakefuse_config_flags flags = {0};
    int opt, status = -1;
    while (status < 0 &&
           (opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        if (cli_connection_option(opt, optarg, &flags))
            continue;
        usage(opt == 'h' ? stdout : stderr);
        status = opt == 'h' ? 0 : 2;
    }
    if (status < 0 && argc - optind > 1) {
        usage(stderr);
        status = 2;
    }
    lakefuse_config cfg;
    if (status < 0 && cli_load_config(&flags, &cfg) != 0)
        status = 1;
    config_flags_free(&flags);
    if (status >= 0)
        return status;
    status = doctor(&cfg, optind < argc ? argv[optind] : NULL);
    config_free(&cfg);
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
    if (strcmp(argv[1], "doctor") == 0)
        return doctor_command(argc - 1, argv + 1);
    if (strcmp(argv[1], "mount") == 0)
        return mount_command(argc - 1, argv + 1);
    if (strcmp(argv[1], "staged") == 0)
        return staged_command(argc - 1, argv + 1);
    int status = control_command(argc - 1, argv + 1);
    if (status >= 0)
        return status;
    fprintf(stderr, "lakefuse: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
