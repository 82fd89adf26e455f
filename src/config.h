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
    /* --secret-access-key-file: a file holding the key on one line, or
     * "-" for standard input. Ranks with secret_access_key (both given is
     * an error), before the environment and the YAML file. */
    const char *secret_access_key_file;
    /* Owned copy behind secret_access_key when it came from argv (the
     * argv bytes are overwritten); config_flags_free zeroes it. */
    char *secret_copy;
} lakefuse_config_flags;

/* Fills cfg; 0 or a negative errno with a one-line reason in errbuf.
 * A missing default file is not an error; a missing --config file, a YAML
 * syntax error or a non-string value is. Missing fields are left NULL for
 * the caller to report. */
int config_load(lakefuse_config *cfg, const lakefuse_config_flags *flags,
                char *errbuf, size_t errlen);
/* Zeroes the secret and frees everything. */
void config_free(lakefuse_config *cfg);
void config_flags_free(lakefuse_config_flags *flags);

/* Zeroes the value of every secret LAKECTL_* variable in the process
 * environment (so /proc/PID/environ no longer shows it) and unsets it.
 * Call once the configuration is loaded. */
void config_forget_environment(void);

/* The longest secret key file read (lakeFS keys are 40 characters). */
#define CONFIG_SECRET_FILE_MAX 4096
/* The largest YAML file read. */
#define CONFIG_YAML_MAX (1u << 20)

#endif
