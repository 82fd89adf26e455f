/*
 * listing.c - libFuzzer target: lakeFS listing results -> POSIX directory
 * entries (listing_build and listing_merge_files, src/listing.c), with
 * names and lakectl metadata as hostile as a server can send them.
 * Input: the directory prefix, then '\0'-separated records, each a flags
 * byte (bit 0: common prefix, bit 1: posix-permissions, bit 2:
 * client-mtime, bit 3: symlink target, bit 4: a file being written of that
 * name) and the path, then "\x01"-separated metadata values.
 * Checked: every entry is a valid, unique, UTF-8 POSIX name in sorted
 * order whose key fits lakeFS's limit, with permission bits only; the
 * log form of every name is one printable line; nothing leaks.
 */
#include "fuzz.h"

#include "listing.h"

#include <errno.h>
#include <string.h>

#define MAX_RECORDS 64

typedef struct record {
    const char *fields[4]; /* path, posix-permissions, client-mtime, target */
    unsigned flags;
} record;

static size_t split(char *text, size_t len, char sep, char **parts,
                    size_t max)
{
    size_t n = 0;
    char *start = text;
    for (size_t i = 0; i <= len && n < max; i++) {
        if (i == len || text[i] == sep) {
            text[i] = '\0';
            parts[n++] = start;
            start = text + i + 1;
        }
    }
    return n;
}

static void warn_ignore(void *ctx, const char *fmt, ...)
{
    (void)ctx;
    (void)fmt;
}

static void check_entries(const char *prefix, const fs_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(e[i].name && listing_name_is_valid(e[i].name));
        FUZZ_CHECK(listing_utf8_is_valid(e[i].name));
        FUZZ_CHECK((e[i].mode & ~07777u) == 0);
        FUZZ_CHECK(!e[i].is_dir || !e[i].checksum);
        if (i)
            FUZZ_CHECK(strcmp(e[i - 1].name, e[i].name) < 0);
        FUZZ_CHECK(strlen(prefix) + strlen(e[i].name) + (e[i].is_dir ? 1 : 0) <=
                   LAKEFS_MAX_PATH_LENGTH);
    }
}

/* A log line's version of a name: printable, UTF-8, within cap. */
static void check_printable(const char *name, size_t cap)
{
    char buf[LISTING_PRINTABLE_MAX];
    memset(buf, 'z', sizeof(buf));
    listing_printable(name, buf, cap);
    if (cap == 0)
        return;
    FUZZ_CHECK(memchr(buf, '\0', cap) != NULL);
    for (const unsigned char *p = (const unsigned char *)buf; *p; p++)
        FUZZ_CHECK(*p >= 0x20 && *p != 0x7f);
    FUZZ_CHECK(listing_utf8_is_valid(buf));
    listing_printable(name, buf, sizeof(buf));
    FUZZ_CHECK(listing_utf8_is_valid(buf));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 2);
    if (!text)
        return 0;
    memcpy(text, data, size);
    char *recs[MAX_RECORDS + 1];
    size_t nrec = split(text, size, '\0', recs, MAX_RECORDS + 1);
    /* The prefix: "" or ending in '/', as the tree asks for it. */
    char *prefix = recs[0];
    size_t plen = strlen(prefix);
    char *fixed = malloc(plen + 2);
    if (!fixed) {
        free(text);
        return 0;
    }
    memcpy(fixed, prefix, plen + 1);
    if (plen && fixed[plen - 1] != '/') {
        fixed[plen] = '/';
        fixed[plen + 1] = '\0';
    }

    lakefs_object_stats items[MAX_RECORDS];
    fs_entry extra[MAX_RECORDS];
    size_t n = 0, extra_n = 0;
    memset(items, 0, sizeof(items));
    memset(extra, 0, sizeof(extra));
    for (size_t r = 1; r < nrec; r++) {
        if (!recs[r][0])
            continue;
        record rec = {.flags = (unsigned char)recs[r][0]};
        char *parts[4] = {"", NULL, NULL, NULL};
        split(recs[r] + 1, strlen(recs[r] + 1), '\x01', parts, 4);
        check_printable(parts[0], (unsigned char)recs[r][0] % 40);
        lakefs_object_stats *st = &items[n++];
        st->path = strdup(parts[0]);
        st->path_type = rec.flags & 1 ? LAKEFS_PATH_COMMON_PREFIX
                                      : LAKEFS_PATH_OBJECT;
        st->checksum = strdup("etag");
        st->size_bytes = (int64_t)(rec.flags >> 5);
        st->mtime = 1600000000;
        static const char *const keys[] = {LISTING_KEY_POSIX_PERMISSIONS,
                                           LISTING_KEY_CLIENT_MTIME,
                                           LISTING_KEY_SYMLINK_TARGET};
        for (int k = 0; k < 3; k++)
            if ((rec.flags & (2u << k)) && parts[k + 1])
                lakefs_metadata_set(&st->metadata, keys[k], parts[k + 1]);
        if ((rec.flags & 16) && extra_n < MAX_RECORDS) {
            const char *slash = strrchr(parts[0], '/');
            extra[extra_n].name = strdup(slash ? slash + 1 : parts[0]);
            extra[extra_n].size = 7;
            extra[extra_n].mode = rec.flags & 32 ? 0100000u : 0;
            /* listing_merge_files wants distinct names. */
            for (size_t j = 0; j < extra_n && extra[extra_n].name; j++)
                if (strcmp(extra[j].name, extra[extra_n].name) == 0) {
                    free(extra[extra_n].name);
                    extra[extra_n].name = NULL;
                }
            if (extra[extra_n].name)
                extra_n++;
        }
    }

    fs_entry *entries = NULL;
    size_t count = 0;
    int rc = listing_build(fixed, items, n, &entries, &count, warn_ignore,
                           NULL);
    FUZZ_CHECK(rc == 0 || rc == -ENOMEM);
    if (rc == 0) {
        check_entries(fixed, entries, count);
        for (size_t i = 0; i < count; i++) {
            fs_entry copy;
            if (fs_entry_copy(&copy, &entries[i]) == 0) {
                FUZZ_CHECK(strcmp(copy.name, entries[i].name) == 0);
                fs_entry_free(&copy);
            }
        }
        if (listing_merge_files(&entries, &count, extra, extra_n) == 0) {
            /* Merged names are plain POSIX names; the key limit is the
             * writer's to enforce, not the listing's. */
            for (size_t i = 0; i < count; i++) {
                FUZZ_CHECK(listing_name_is_valid(entries[i].name));
                if (i)
                    FUZZ_CHECK(strcmp(entries[i - 1].name, entries[i].name) <
                               0);
            }
        }
        fs_entries_free(entries, count);
    }
    for (size_t i = 0; i < n; i++)
        lakefs_object_stats_free(&items[i]);
    for (size_t i = 0; i < extra_n; i++)
        fs_entry_free(&extra[i]);
    free(fixed);
    free(text);
    return 0;
}
