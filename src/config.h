/*
 * config.h - where lakefuse finds its lakeFS endpoint and credentials, the
 * way lakectl does: command-line flags, then the LAKECTL_* environment
 * variables, then ~/.lakectl.yaml (or --config FILE). Field by field, the
 * first source that sets a value wins. Never prints a secret.
 */
#ifndef LAKEFUSE_CONFIG_H
#define LAKEFUSE_CONFIG_H

#include <stddef.h>

typedef struct lakefuse_config {
    char *endpoint; /* as given; the client adds /api/v1 when missing */
    char *access_key_id;
    char *secret_access_key;
    char *source_file; /* the YAML file that was read, or NULL */
} lakefuse_config;

/* What the caller got from its own flags (each may be NULL). */
typedef struct lakefuse_config_flags {
    const char *config_file; /* --config: must exist when given */
    const char *endpoint;
    const char *access_key_id;
    const char *secret_access_key;
} lakefuse_config_flags;

/* Fills cfg; 0 or a negative errno with a one-line reason in errbuf.
 * A missing default file is not an error; a missing --config file, a YAML
 * syntax error or a non-string value is. Missing fields are left NULL for
 * the caller to report. */
int config_load(lakefuse_config *cfg, const lakefuse_config_flags *flags,
                char *errbuf, size_t errlen);
void config_free(lakefuse_config *cfg);

#endif
