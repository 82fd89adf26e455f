/*
 * config.c - lakectl-compatible configuration: flags, LAKECTL_* variables,
 * then the YAML file, parsed with libyaml (never by hand). Only the keys
 * lakefuse needs are read; everything else in the file is ignored, as
 * lakectl ignores what it does not know.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef struct yaml_source {
    char *endpoint;
    char *access_key_id;
    char *secret_access_key;
} yaml_source;

static yaml_node_t *mapping_get(yaml_document_t *doc, yaml_node_t *map,
                                const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE &&
            strcmp((const char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(doc, p->value);
    }
    return NULL;
}

/* section.key as a string; absent is fine, any other type is an error. */
static int read_scalar(yaml_document_t *doc, const char *section,
                       const char *key, char **out, char *errbuf,
                       size_t errlen)
{
    yaml_node_t *root = yaml_document_get_root_node(doc);
    yaml_node_t *sec = mapping_get(doc, root, section);
    yaml_node_t *v = mapping_get(doc, sec, key);
    if (!v)
        return 0;
    if (v->type != YAML_SCALAR_NODE) {
        snprintf(errbuf, errlen, "%s.%s must be a string", section, key);
        return -EINVAL;
    }
    *out = strdup((const char *)v->data.scalar.value);
    return *out ? 0 : -ENOMEM;
}

static int parse_yaml_file(const char *path, FILE *f, yaml_source *src,
                           char *errbuf, size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_file(&parser, f);
    int rc = 0;
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(errbuf, errlen, "%s: YAML error at line %zu: %s", path,
                 parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "unknown");
        yaml_parser_delete(&parser);
        return -EINVAL;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && root->type != YAML_MAPPING_NODE) {
        snprintf(errbuf, errlen, "%s: top level must be a mapping", path);
        rc = -EINVAL;
    }
    if (!rc)
        rc = read_scalar(&doc, "server", "endpoint_url", &src->endpoint,
                         errbuf, errlen);
    if (!rc)
        rc = read_scalar(&doc, "credentials", "access_key_id",
                         &src->access_key_id, errbuf, errlen);
    if (!rc)
        rc = read_scalar(&doc, "credentials", "secret_access_key",
                         &src->secret_access_key, errbuf, errlen);
    if (rc && rc != -ENOMEM && errbuf[0] && !strstr(errbuf, path)) {
        char detail[256];
        snprintf(detail, sizeof(detail), "%s", errbuf);
        snprintf(errbuf, errlen, "%s: %s", path, detail);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

static char *default_config_path(void)
{
    const char *home = getenv("HOME");
    if (!home || !*home)
        return NULL;
    char *path = NULL;
    if (asprintf(&path, "%s/.lakectl.yaml", home) < 0)
        return NULL;
    return path;
}

static int first_of(char **out, const char *flag, const char *env_name,
                    const char *from_file)
{
    const char *env = getenv(env_name);
    const char *v = flag ? flag : (env && *env) ? env : from_file;
    if (!v)
        return 0;
    *out = strdup(v);
    return *out ? 0 : -ENOMEM;
}

static void yaml_source_free(yaml_source *s)
{
    free(s->endpoint);
    free(s->access_key_id);
    free(s->secret_access_key);
}

int config_load(lakefuse_config *cfg, const lakefuse_config_flags *flags,
                char *errbuf, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    errbuf[0] = '\0';
    yaml_source file = {0};
    char *path = flags->config_file ? strdup(flags->config_file)
                                    : default_config_path();
    int rc = 0;
    FILE *f = path ? fopen(path, "r") : NULL;
    if (f) {
        rc = parse_yaml_file(path, f, &file, errbuf, errlen);
        fclose(f);
        if (!rc) {
            cfg->source_file = path;
            path = NULL;
        }
    } else if (flags->config_file) {
        snprintf(errbuf, errlen, "cannot read config file %s: %s",
                 flags->config_file, strerror(errno));
        rc = -ENOENT;
    }
    free(path);
    if (!rc)
        rc = first_of(&cfg->endpoint, flags->endpoint,
                      "LAKECTL_SERVER_ENDPOINT_URL", file.endpoint);
    if (!rc)
        rc = first_of(&cfg->access_key_id, flags->access_key_id,
                      "LAKECTL_CREDENTIALS_ACCESS_KEY_ID", file.access_key_id);
    if (!rc)
        rc = first_of(&cfg->secret_access_key, flags->secret_access_key,
                      "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY",
                      file.secret_access_key);
    yaml_source_free(&file);
    if (rc) {
        if (rc == -ENOMEM && !errbuf[0])
            snprintf(errbuf, errlen, "out of memory");
        config_free(cfg);
    }
    return rc;
}

void config_free(lakefuse_config *cfg)
{
    free(cfg->endpoint);
    free(cfg->access_key_id);
    free(cfg->secret_access_key);
    free(cfg->source_file);
    memset(cfg, 0, sizeof(*cfg));
}
