/*
 * json_models.c - libFuzzer target: every lakeFS JSON model parser of the
 * C client (src/lakefs_json.c) on the same bytes, as a hostile server could
 * send them. Each must return 0 or a negative errno, leave its out struct
 * zeroed on failure, and free without leaks either way.
 */
#include "fuzz.h"

#include "lakefs_internal.h"

#include <errno.h>
#include <string.h>

/* A failed parse leaves the struct all zero bytes. */
static int zeroed(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

#define PARSE(type, fn, freer)                                                \
    do {                                                                      \
        type out;                                                             \
        lakefs_error err = {0};                                               \
        memset(&out, 0x5a, sizeof(out));                                      \
        int rc = fn((const char *)data, size, &out, &err);                    \
        FUZZ_CHECK(rc == 0 || rc == -EPROTO || rc == -ENOMEM);                \
        if (rc)                                                               \
            FUZZ_CHECK(zeroed(&out, sizeof(out)));                            \
        FUZZ_CHECK(memchr(err.message, '\0', sizeof(err.message)));           \
        freer(&out);                                                          \
    } while (0)

static void check_object_list(const uint8_t *data, size_t size)
{
    lakefs_object_list list;
    lakefs_error err = {0};
    if (lakefs_parse_object_list((const char *)data, size, &list, &err))
        return;
    for (size_t i = 0; i < list.count; i++) {
        const lakefs_object_stats *st = &list.items[i];
        FUZZ_CHECK(st->path != NULL);
        for (size_t k = 0; k < st->metadata.count; k++)
            FUZZ_CHECK(st->metadata.items[k].key &&
                       st->metadata.items[k].value);
        lakefs_object_stats copy;
        if (lakefs_object_stats_copy(&copy, st) == 0) {
            FUZZ_CHECK(strcmp(copy.path, st->path) == 0);
            lakefs_object_stats_free(&copy);
        }
    }
    lakefs_object_list_free(&list);
}

static void string_free(char **s)
{
    free(*s);
    *s = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    PARSE(lakefs_repository, lakefs_parse_repository, lakefs_repository_free);
    PARSE(lakefs_repository_list, lakefs_parse_repository_list,
          lakefs_repository_list_free);
    PARSE(lakefs_ref, lakefs_parse_ref, lakefs_ref_free);
    PARSE(lakefs_ref_list, lakefs_parse_ref_list, lakefs_ref_list_free);
    PARSE(lakefs_commit, lakefs_parse_commit, lakefs_commit_free);
    PARSE(lakefs_commit_list, lakefs_parse_commit_list,
          lakefs_commit_list_free);
    PARSE(lakefs_object_stats, lakefs_parse_object_stats,
          lakefs_object_stats_free);
    PARSE(lakefs_object_list, lakefs_parse_object_list,
          lakefs_object_list_free);
    PARSE(lakefs_diff_list, lakefs_parse_diff_list, lakefs_diff_list_free);
    PARSE(lakefs_staging_location, lakefs_parse_staging_location,
          lakefs_staging_location_free);
    PARSE(lakefs_config, lakefs_parse_config, lakefs_config_free);
    PARSE(lakefs_user, lakefs_parse_current_user, lakefs_user_free);
    PARSE(lakefs_object_error_list, lakefs_parse_object_error_list,
          lakefs_object_error_list_free);
    PARSE(lakefs_multipart_upload, lakefs_parse_multipart_upload,
          lakefs_multipart_upload_free);
    PARSE(char *, lakefs_parse_merge_result, string_free);
    PARSE(char *, lakefs_parse_upload_to, string_free);
    check_object_list(data, size);
    return 0;
}
