/*
 * test_config.c - unit tests of src/config.c: config_load's precedence
 * (flags > LAKECTL_* environment > lakectl YAML file), field by field, the
 * default $HOME/.lakectl.yaml, --config, and its YAML error reporting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ENV_ENDPOINT "LAKECTL_SERVER_ENDPOINT_URL"
#define ENV_KEY "LAKECTL_CREDENTIALS_ACCESS_KEY_ID"
#define ENV_SECRET "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"

typedef struct fixture {
    char dir[64];        /* a fresh temp dir, used as $HOME */
    char home_file[128]; /* $HOME/.lakectl.yaml */
    char other_file[128]; /* $HOME/other.yaml, for --config */
    char *saved_home;
} fixture;

static const char lakectl_yaml[] =
    "# written by lakectl config\n"
    "credentials:\n"
    "  access_key_id: AKIAFILE\n"
    "  secret_access_key: file/secret+KEY\n"
    "metastore:\n"
    "  glue:\n"
    "    catalog_id: \"\"\n"
    "  hive:\n"
    "    uri: \"\"\n"
    "server:\n"
    "  endpoint_url: http://file.example:8000\n"
    "  retries:\n"
    "    enabled: true\n"
    "    max_attempts: 4\n"
    "options:\n"
    "  parallelism: 25\n";

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        fail_msg("cannot create %s", path);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void clear_env(void)
{
    unsetenv(ENV_ENDPOINT);
    unsetenv(ENV_KEY);
    unsetenv(ENV_SECRET);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/lakefuse-config-XXXXXX");
    if (!mkdtemp(fx->dir)) {
        free(fx);
        return -1;
    }
    snprintf(fx->home_file, sizeof(fx->home_file), "%s/.lakectl.yaml",
             fx->dir);
    snprintf(fx->other_file, sizeof(fx->other_file), "%s/other.yaml",
             fx->dir);
    const char *home = getenv("HOME");
    fx->saved_home = home ? strdup(home) : NULL;
    setenv("HOME", fx->dir, 1);
    clear_env();
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    unlink(fx->home_file);
    unlink(fx->other_file);
    rmdir(fx->dir);
    if (fx->saved_home)
        setenv("HOME", fx->saved_home, 1);
    else
        unsetenv("HOME");
    clear_env();
    free(fx->saved_home);
    free(fx);
    return 0;
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!haystack || !strstr(haystack, needle))
        fail_msg("\"%s\" does not contain \"%s\"",
                 haystack ? haystack : "(null)", needle);
}

static void test_file_only(void **state)
{
    fixture *fx = *state;
    write_file(fx->home_file, lakectl_yaml);
    lakefuse_config cfg;
    lakefuse_config_flags flags = {0};
    char err[256];
    assert_int_equal(config_load(&cfg, &flags, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_string_equal(cfg.endpoint, "http://file.example:8000");
    assert_string_equal(cfg.access_key_id, "AKIAFILE");
    assert_string_equal(cfg.secret_access_key, "file/secret+KEY");
    assert_string_equal(cfg.source_file, fx->home_file);
    config_free(&cfg);
    assert_null(cfg.endpoint);
    assert_null(cfg.source_file);
    config_free(&cfg); /* twice is harmless */
}

static void test_env_overrides_file_field_by_field(void **state)
{
    fixture *fx = *state;
    write_file(fx->home_file, lakectl_yaml);
    lakefuse_config_flags flags = {0};
    char err[256];
    lakefuse_config cfg;

    setenv(ENV_ENDPOINT, "http://env.example:1", 1);
    assert_int_equal(config_load(&cfg, &flags, err, sizeof(err)), 0);
    assert_string_equal(cfg.endpoint, "http://env.example:1");
    assert_string_equal(cfg.access_key_id, "AKIAFILE");
    assert_string_equal(cfg.secret_access_key, "file/secret+KEY");
    config_free(&cfg);

    unsetenv(ENV_ENDPOINT);
    setenv(ENV_KEY, "AKIAENV", 1);
    assert_int_equal(config_load(&cfg, &flags, err, sizeof(err)), 0);
    assert_string_equal(cfg.endpoint, "http://file.example:8000");
    assert_string_equal(cfg.access_key_id, "AKIAENV");
    assert_string_equal(cfg.secret_access_key, "file/secret+KEY");
    config_free(&cfg);

    unsetenv(ENV_KEY);
    setenv(ENV_SECRET, "envsecret", 1);
    assert_int_equal(config_load(&cfg, &flags, err, sizeof(err)), 0);
    assert_string_equal(cfg.endpoint, "http://file.example:8000");
    assert_string_equal(cfg.access_key_id, "AKIAFILE");
    assert_string_equal(cfg.secret_access_key, "envsecret");
    assert_string_equal(cfg.source_file, fx->home_file);
    config_free(&cfg);
}

static void test_empty_env_counts_as_unset(void **state)
{
    fixture *fx = *state;
    write_file(fx->home_file, lakectl_yaml);
    setenv(ENV_ENDPOINT, "", 1);
    setenv(ENV_KEY, "", 1);
    lakefuse_config_flags flags = {0};
    char err[256];
    lakefuse_config cfg;
    assert_int_equal(config_load(&cfg, &flags, err, sizeof(err)), 0);
    assert_string_equal(cfg.endpoint, "http://file.example:8000");
    assert_string_equal(cfg.access_key_id, "AKIAFILE");
    config_free(&cfg);
}

static void test_flags_override_env_and_file(void **state)
{
    fixture *fx = *state;
    write_file(fx->home_file, lakectl_yaml);
    setenv(ENV_ENDPOINT, "http://env.example:1", 1);
    setenv(ENV_KEY, "AKIAENV", 1);
    setenv(ENV_SECRET, "envsecret", 1);
    char err[256];
    lakefuse_config cfg;

    /* one flag at a time: that field from the flag, the others from env */
    lakefuse_config_flags flags = {.endpoint = "http://flag.example:2"};
    assert_int_equal(config_load(&cfg, &flags, err, sizeof(err)), 0);
    assert_string_equal(cfg.endpoint, "http://flag.example:2");
    assert_string_equal(cfg.access_key_id, "AKIAENV");
    assert_string_equal(cfg.secret_access_key, "envsecret");
    config_free(&cfg);

    flags = (lakefuse_config_flags){.access_key_id = "AKIAFLAG"};
    assert_int_equal(config_load(&cfg, &flags, err, sizeof(err)), 0);
    assert_string_equal(cfg.endpoint, "http://env.example:1");
    assert_string_equal(cfg.access_key_id, "AKIAFLAG");
    assert_string_equal(cfg.secret_access_key, "envsecret");
    config_free(&cfg);

    /* flag > env > file all at once, a different source per field */
    unsetenv(ENV_ENDPOINT);
    unsetenv(ENV_KEY);
    flags = (lakefuse_config_flags){.secret_access_key = "flagsecret"};
    setenv(ENV_KEY, "AKIAENV2", 1);
    assert_int_equal(config_load(&cfg, &flags, err, sizeof(err)), 0);
    assert_string_equal(cfg.endpoint, "http://file.example:8000"); /* file */
    assert_string_equal(cfg.access_key_id, "AKIAENV2");             /* env */
    assert_string_equal(cfg.secret_access_key, "flagsecret");       /* flag */
    config_free(&cfg);
}

static void test_flags_copied(void **state)
{
    (void)state;
    char endpoint[] = "http://flag.example:3";
    lakefuse_config_flags flags = {.endpoint = endpoint,
                                   .access_key_id = "k",
                                   .secret_access_key = "s"};
    char err[256];
    lakefuse_config cfg;
    assert_int_equal(config_load(&cfg, &flags, err, sizeof(err)), 0);
    assert_ptr_not_equal(cfg.endpoint, endpoint);
    endpoint[0] = 'X';
    assert_string_equal(cfg.endpoint, "http://flag.example:3");
    assert_string_equal(cfg.access_key_id, "k");
    assert_string_equal(cfg.secret_access_key, "s");
    assert_null(cfg.source_file); /* no default file in the temp HOME */
    config_free(&cfg);
}

static void test_missing_default_file_is_fine(void **state)
{
    (void)state;
    lakefuse_config_flags flags = {0};
    char err[256] = "garbage";
    lakefuse_config cfg;
    memset(&cfg, 0xA5, sizeof(cfg));
    assert_int_equal(config_load(&cfg, &flags, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_null(cfg.endpoint);
    assert_null(cfg.access_key_id);
    assert_null(cfg.secret_access_key);
    assert_null(cfg.source_file);
    config_free(&cfg);

    /* only the environment */
    setenv(ENV_ENDPOINT, "http://env.example:1", 1);
    assert_int_equal(config_load(&cfg, &flags, err, sizeof(err)), 0);
    assert_string_equal(cfg.endpoint, "http://env.example:1");
    assert_null(cfg.access_key_id);
    config_free(&cfg);
}

static void test_no_home(void **state)
{
    (void)state;
    unsetenv("HOME");
    lakefuse_config_flags flags = {.endpoint = "http://h:1"};
    char err[256];
    lakefuse_config cfg;
    assert_int_equal(config_load(&cfg, &flags, err, sizeof(err)), 0);
    assert_string_equal(cfg.endpoint, "http://h:1");
    assert_null(cfg.source_file);
    config_free(&cfg);
}

static void test_config_flag_file_replaces_default(void **state)
{
    fixture *fx = *state;
    write_file(fx->home_file, lakectl_yaml);
    write_file(fx->other_file, "server:\n"
                               "  endpoint_url: \"http://other:9000/api/v1\"\n"
                               "credentials:\n"
                               "  access_key_id: 'AKIAOTHER'\n");
    lakefuse_config_flags flags = {.config_file = fx->other_file};
    char err[256];
    lakefuse_config cfg;
    assert_int_equal(config_load(&cfg, &flags, err, sizeof(err)), 0);
    assert_string_equal(cfg.endpoint, "http://other:9000/api/v1");
    assert_string_equal(cfg.access_key_id, "AKIAOTHER");
    /* not in --config and the default file is not read at all */
    assert_null(cfg.secret_access_key);
    assert_string_equal(cfg.source_file, fx->other_file);
    config_free(&cfg);
}

static void test_missing_config_flag_file(void **state)
{
    fixture *fx = *state;
    write_file(fx->home_file, lakectl_yaml); /* must not be used instead */
    char missing[192];
    snprintf(missing, sizeof(missing), "%s/does-not-exist.yaml", fx->dir);
    lakefuse_config_flags flags = {.config_file = missing,
                                   .endpoint = "http://flag:1"};
    char err[256];
    lakefuse_config cfg;
    memset(&cfg, 0xA5, sizeof(cfg));
    int rc = config_load(&cfg, &flags, err, sizeof(err));
    assert_int_equal(rc, -ENOENT);
    assert_contains(err, missing);
    assert_null(cfg.endpoint); /* zeroed on failure */
    assert_null(cfg.access_key_id);
    assert_null(cfg.source_file);
    config_free(&cfg);
}

static void test_yaml_syntax_error_names_line(void **state)
{
    fixture *fx = *state;
    /* a tab cannot start a token: libyaml stops on line 4 */
    write_file(fx->home_file, "server:\n"
                              "  endpoint_url: http://x:1\n"
                              "credentials:\n"
                              "\taccess_key_id: k\n");
    lakefuse_config_flags flags = {0};
    char err[256];
    lakefuse_config cfg;
    int rc = config_load(&cfg, &flags, err, sizeof(err));
    assert_int_equal(rc, -EINVAL);
    assert_contains(err, fx->home_file);
    assert_contains(err, "line 4");
    assert_null(cfg.endpoint);
    config_free(&cfg);

    /* an unclosed flow sequence further down */
    write_file(fx->other_file, "credentials:\n"
                               "  access_key_id: k\n"
                               "  secret_access_key: TOPSECRET\n"
                               "server: {endpoint_url: [a, b\n"
                               "other: 1\n");
    lakefuse_config_flags flags2 = {.config_file = fx->other_file};
    rc = config_load(&cfg, &flags2, err, sizeof(err));
    assert_int_equal(rc, -EINVAL);
    assert_contains(err, fx->other_file);
    assert_contains(err, "YAML error at line");
    assert_null(strstr(err, "TOPSECRET")); /* never prints a secret */
    config_free(&cfg);
}

static void test_non_scalar_value(void **state)
{
    fixture *fx = *state;
    lakefuse_config_flags flags = {0};
    char err[256];
    lakefuse_config cfg;

    write_file(fx->home_file, "server:\n"
                              "  endpoint_url:\n"
                              "    - http://a:1\n"
                              "    - http://b:1\n");
    assert_int_equal(config_load(&cfg, &flags, err, sizeof(err)), -EINVAL);
    assert_contains(err, "server.endpoint_url");
    assert_contains(err, fx->home_file);
    assert_null(cfg.endpoint);

    write_file(fx->home_file, "credentials:\n"
                              "  access_key_id: k\n"
                              "  secret_access_key: {nested: value}\n");
    assert_int_equal(config_load(&cfg, &flags, err, sizeof(err)), -EINVAL);
    assert_contains(err, "credentials.secret_access_key");
    assert_null(cfg.access_key_id);

    /* a flag for the same field does not excuse a broken file */
    lakefuse_config_flags with_flag = {.secret_access_key = "s"};
    assert_int_equal(config_load(&cfg, &with_flag, err, sizeof(err)),
                     -EINVAL);
    config_free(&cfg);
}

static void test_top_level_not_mapping(void **state)
{
    fixture *fx = *state;
    write_file(fx->home_file, "- server\n- credentials\n");
    lakefuse_config_flags flags = {0};
    char err[256];
    lakefuse_config cfg;
    assert_int_equal(config_load(&cfg, &flags, err, sizeof(err)), -EINVAL);
    assert_contains(err, fx->home_file);
    assert_contains(err, "mapping");
    config_free(&cfg);
}

static void test_empty_file_and_unrelated_keys(void **state)
{
    fixture *fx = *state;
    lakefuse_config_flags flags = {0};
    char err[256];
    lakefuse_config cfg;

    write_file(fx->home_file, "");
    assert_int_equal(config_load(&cfg, &flags, err, sizeof(err)), 0);
    assert_null(cfg.endpoint);
    assert_null(cfg.access_key_id);
    assert_string_equal(cfg.source_file, fx->home_file);
    config_free(&cfg);

    /* keys in other sections, lists and maps elsewhere, look-alike keys at
     * the wrong level: all ignored */
    write_file(fx->home_file, "endpoint_url: http://wrong-level:1\n"
                              "access_key_id: WRONG\n"
                              "metastore:\n"
                              "  glue: {catalog_id: x}\n"
                              "server:\n"
                              "  retries: [1, 2, 3]\n"
                              "  endpoint_url: http://right:1\n"
                              "  unknown: {a: b}\n"
                              "credentials:\n"
                              "  secret_access_key: s3cr3t\n"
                              "  extra: [x]\n"
                              "other_section:\n"
                              "  access_key_id: ALSO-WRONG\n");
    assert_int_equal(config_load(&cfg, &flags, err, sizeof(err)), 0);
    assert_string_equal(cfg.endpoint, "http://right:1");
    assert_null(cfg.access_key_id);
    assert_string_equal(cfg.secret_access_key, "s3cr3t");
    config_free(&cfg);
}

static void test_numeric_scalar_is_a_string(void **state)
{
    fixture *fx = *state;
    write_file(fx->home_file, "credentials:\n"
                              "  access_key_id: 12345\n"
                              "  secret_access_key: \"00\"\n");
    lakefuse_config_flags flags = {0};
    char err[256];
    lakefuse_config cfg;
    assert_int_equal(config_load(&cfg, &flags, err, sizeof(err)), 0);
    assert_string_equal(cfg.access_key_id, "12345");
    assert_string_equal(cfg.secret_access_key, "00");
    config_free(&cfg);
}

static void test_small_error_buffer(void **state)
{
    fixture *fx = *state;
    char missing[192];
    snprintf(missing, sizeof(missing), "%s/nope.yaml", fx->dir);
    lakefuse_config_flags flags = {.config_file = missing};
    char err[8];
    lakefuse_config cfg;
    assert_int_equal(config_load(&cfg, &flags, err, sizeof(err)), -ENOENT);
    assert_int_equal(strlen(err), sizeof(err) - 1); /* truncated, ended */
    config_free(&cfg);
}

/* ---- the secret key from a file or standard input ---- */

static void load_with_secret_file(fixture *fx, const char *content,
                                  lakefuse_config *cfg, char *err,
                                  size_t errlen, int *rc)
{
    char path[192];
    snprintf(path, sizeof(path), "%s/secret", fx->dir);
    write_file(path, content);
    lakefuse_config_flags flags = {.secret_access_key_file = path};
    *rc = config_load(cfg, &flags, err, errlen);
    unlink(path);
}

static void test_secret_file_beats_env_and_yaml(void **state)
{
    fixture *fx = *state;
    write_file(fx->home_file, lakectl_yaml);
    setenv(ENV_SECRET, "envsecret", 1);
    char err[256];
    lakefuse_config cfg;
    int rc;
    load_with_secret_file(fx, "from/file+KEY\n", &cfg, err, sizeof(err),
                          &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.secret_access_key, "from/file+KEY");
    assert_string_equal(cfg.access_key_id, "AKIAFILE"); /* others: as ever */
    config_free(&cfg);
    load_with_secret_file(fx, "crlf-key\r\n", &cfg, err, sizeof(err), &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.secret_access_key, "crlf-key");
    config_free(&cfg);
    load_with_secret_file(fx, "no-newline", &cfg, err, sizeof(err), &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.secret_access_key, "no-newline");
    config_free(&cfg);
}

static void test_secret_file_refusals(void **state)
{
    fixture *fx = *state;
    char err[256];
    lakefuse_config cfg;
    int rc;
    static const char *const bad[] = {"", "\n", "two\nlines\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        load_with_secret_file(fx, bad[i], &cfg, err, sizeof(err), &rc);
        assert_int_equal(rc, -EINVAL);
        assert_contains(err, "one non-empty line");
        assert_null(strstr(err, "lines")); /* the content is never shown */
        assert_null(cfg.secret_access_key);
    }
    char big[CONFIG_SECRET_FILE_MAX + 2];
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    load_with_secret_file(fx, big, &cfg, err, sizeof(err), &rc);
    assert_int_equal(rc, -EFBIG);
    assert_contains(err, "longer than 4096 bytes");
    char missing[192];
    snprintf(missing, sizeof(missing), "%s/no-such-secret", fx->dir);
    lakefuse_config_flags flags = {.secret_access_key_file = missing};
    assert_int_equal(config_load(&cfg, &flags, err, sizeof(err)), -ENOENT);
    assert_contains(err, "no-such-secret");
    flags = (lakefuse_config_flags){.secret_access_key = "s",
                                    .secret_access_key_file = missing};
    assert_int_equal(config_load(&cfg, &flags, err, sizeof(err)), -EINVAL);
    assert_contains(err, "not both");
}

static void test_secret_from_stdin(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], "piped-KEY\n", 10), 10);
    close(fds[1]);
    int saved = dup(STDIN_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fds[0], STDIN_FILENO), STDIN_FILENO);
    close(fds[0]);
    lakefuse_config_flags flags = {.secret_access_key_file = "-"};
    char err[256];
    lakefuse_config cfg;
    int rc = config_load(&cfg, &flags, err, sizeof(err));
    dup2(saved, STDIN_FILENO);
    close(saved);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.secret_access_key, "piped-KEY");
    config_free(&cfg);
}

extern char **environ;

/* The value is zeroed where it was (what /proc/PID/environ shows) and the
 * variable unset; other variables stay. */
static void test_forget_environment(void **state)
{
    (void)state;
    setenv(ENV_SECRET, "wipe-me-please", 1);
    setenv(ENV_KEY, "AKIAKEEP", 1);
    char *where = NULL;
    for (char **e = environ; *e; e++)
        if (strncmp(*e, ENV_SECRET "=", strlen(ENV_SECRET) + 1) == 0)
            where = *e + strlen(ENV_SECRET) + 1;
    assert_non_null(where);
    size_t len = strlen(where);
    config_forget_environment();
    assert_null(getenv(ENV_SECRET));
    assert_string_equal(getenv(ENV_KEY), "AKIAKEEP");
    /* setenv's string is still allocated (glibc never frees it): its
     * bytes must be zero now. */
    for (size_t i = 0; i < len; i++)
        assert_int_equal(where[i], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_file_only),
        T(test_env_overrides_file_field_by_field),
        T(test_empty_env_counts_as_unset),
        T(test_flags_override_env_and_file),
        T(test_flags_copied),
        T(test_missing_default_file_is_fine),
        T(test_no_home),
        T(test_config_flag_file_replaces_default),
        T(test_missing_config_flag_file),
        T(test_yaml_syntax_error_names_line),
        T(test_non_scalar_value),
        T(test_top_level_not_mapping),
        T(test_empty_file_and_unrelated_keys),
        T(test_numeric_scalar_is_a_string),
        T(test_small_error_buffer),
        T(test_secret_file_beats_env_and_yaml),
        T(test_secret_file_refusals),
        T(test_secret_from_stdin),
        T(test_forget_environment),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
