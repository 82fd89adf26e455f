/*
 * config.c - lakectl-compatible configuration: flags, LAKECTL_* variables,
 * then the YAML file, parsed with libyaml (never by hand). Only the keys
 * lakefuse needs are read; everything else in the file is ignored, as
 * lakectl ignores what it does not know. Text that may hold the secret key
 * (the file's bytes, libyaml's buffers and nodes, copies) is zeroed before
 * it is freed; libyaml's short-lived scanner buffers are the exception.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

extern char **environ;

/* The variables that hold a secret: zeroed and unset once read. */
static const char *const secret_variables[] = {
    "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY",
};

static void free_secret(char *s)
{
    if (s)
        explicit_bzero(s, strlen(s));
    free(s);
}

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

/* Zeroes what libyaml keeps of the input: its raw and decoded buffers and
 * the document's scalars (the secret among them). */
static void yaml_wipe(yaml_parser_t *parser, yaml_document_t *doc)
{
    if (parser->raw_buffer.start)
        explicit_bzero(parser->raw_buffer.start,
                       (size_t)(parser->raw_buffer.end -
                                parser->raw_buffer.start));
    if (parser->buffer.start)
        explicit_bzero(parser->buffer.start,
                       (size_t)(parser->buffer.end - parser->buffer.start));
    for (yaml_node_t *n = doc ? doc->nodes.start : NULL;
         n && n < doc->nodes.top; n++)
        if (n->type == YAML_SCALAR_NODE && n->data.scalar.value)
            explicit_bzero(n->data.scalar.value, n->data.scalar.length);
}

static int parse_yaml_text(const char *path, const char *text, size_t len,
                           yaml_source *src, char *errbuf, size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int rc = 0;
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(errbuf, errlen, "%s: YAML error at line %zu: %s", path,
                 parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "unknown");
        yaml_wipe(&parser, NULL);
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
    yaml_wipe(&parser, &doc);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

/* Reads all of fd (at most max bytes) into *out, NUL-terminated, without
 * stdio (whose buffer would keep a copy). -EFBIG when longer. */
static int read_bounded(int fd, size_t max, char **out, size_t *len)
{
    size_t cap = 4096, got = 0;
    char *buf = malloc(cap + 1);
    int rc = buf ? 0 : -ENOMEM;
    while (rc == 0) {
        if (got == cap) {
            size_t bigger = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *grown = bigger > cap ? malloc(bigger + 1) : NULL;
            if (!grown) {
                rc = bigger > cap ? -ENOMEM : -EFBIG;
                break;
            }
            memcpy(grown, buf, got);
            explicit_bzero(buf, got);
            free(buf);
            buf = grown;
            cap = bigger;
        }
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = -errno;
        else if (n == 0)
            break;
        else
            got += (size_t)n;
        if (got > max)
            rc = -EFBIG;
    }
    if (rc != 0) {
        if (buf)
            explicit_bzero(buf, got);
        free(buf);
        return rc;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

static int parse_yaml_file(const char *path, int fd, yaml_source *src,
                           char *errbuf, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc = read_bounded(fd, CONFIG_YAML_MAX, &text, &len);
    if (rc != 0) {
        snprintf(errbuf, errlen, "cannot read config file %s: %s", path,
                 rc == -EFBIG ? "larger than 1 MiB" : strerror(-rc));
        return rc;
    }
    rc = parse_yaml_text(path, text, len, src, errbuf, errlen);
    explicit_bzero(text, len);
    free(text);
    return rc;
}

/* --secret-access-key-file: the key on one line (a final newline is
 * dropped), from path or from standard input for "-". */
static int read_secret_file(const char *path, char **out, char *errbuf,
                            size_t errlen)
{
    bool from_stdin = strcmp(path, "-") == 0;
    const char *name = from_stdin ? "standard input" : path;
    int fd = from_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(errbuf, errlen, "cannot read the secret key file %s: %s",
                 path, strerror(e));
        return -e;
    }
    char *text = NULL;
    size_t len = 0;
    int rc = read_bounded(fd, CONFIG_SECRET_FILE_MAX, &text, &len);
    if (!from_stdin)
        close(fd);
    if (rc != 0) {
        snprintf(errbuf, errlen, "cannot read the secret key from %s: %s",
                 name, rc == -EFBIG ? "longer than 4096 bytes"
                                    : strerror(-rc));
        return rc;
    }
    size_t key_len = len;
    if (key_len > 0 && text[key_len - 1] == '\n')
        key_len--;
    if (key_len > 0 && text[key_len - 1] == '\r')
        key_len--;
    if (key_len == 0 || memchr(text, '\n', key_len) ||
        memchr(text, '\0', key_len)) {
        snprintf(errbuf, errlen, "the secret key from %s must be one "
                 "non-empty line", name);
        rc = -EINVAL;
    } else if ((*out = strndup(text, key_len)) == NULL) {
        rc = -ENOMEM;
    }
    explicit_bzero(text, len);
    free(text);
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
    free_secret(s->secret_access_key);
}

/* The secret: --secret-access-key or --secret-access-key-file, else the
 * environment, else the file. */
static int load_secret(lakefuse_config *cfg, const lakefuse_config_flags *flags,
                       const char *from_file, char *errbuf, size_t errlen)
{
    if (flags->secret_access_key && flags->secret_access_key_file) {
        snprintf(errbuf, errlen, "give --secret-access-key or "
                 "--secret-access-key-file, not both");
        return -EINVAL;
    }
    if (flags->secret_access_key_file)
        return read_secret_file(flags->secret_access_key_file,
                                &cfg->secret_access_key, errbuf, errlen);
    return first_of(&cfg->secret_access_key, flags->secret_access_key,
                    secret_variables[0], from_file);
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
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd >= 0) {
        rc = parse_yaml_file(path, fd, &file, errbuf, errlen);
        close(fd);
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
        rc = load_secret(cfg, flags, file.secret_access_key, errbuf, errlen);
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
    free_secret(cfg->secret_access_key);
    free(cfg->source_file);
    memset(cfg, 0, sizeof(*cfg));
}

void config_flags_free(lakefuse_config_flags *flags)
{
    free_secret(flags->secret_copy);
    flags->secret_copy = NULL;
    flags->secret_access_key = NULL;
}

void config_forget_environment(void)
{
    for (size_t i = 0;
         i < sizeof(secret_variables) / sizeof(secret_variables[0]); i++) {
        size_t name_len = strlen(secret_variables[i]);
        /* The original strings live where /proc/PID/environ reads them:
         * unsetenv alone would only drop the pointer. */
        for (char **e = environ; e && *e; e++)
            if (strncmp(*e, secret_variables[i], name_len) == 0 &&
                (*e)[name_len] == '=')
                explicit_bzero(*e + name_len + 1,
                               strlen(*e + name_len + 1));
        unsetenv(secret_variables[i]);
    }
}
