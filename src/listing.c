/*
 * listing.c - lakeFS listObjects results -> sorted POSIX directory entries.
 * Pure: no I/O, no global state. Server-sent names and lakectl metadata are
 * untrusted input: anything malformed is skipped or ignored, never fatal.
 */
#include "listing.h"
#include "jsonnul.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int copy_string(char **dst, const char *src)
{
    *dst = NULL;
    if (!src)
        return 0;
    *dst = strdup(src);
    return *dst ? 0 : -ENOMEM;
}

/* Copies every key as received (duplicates too), in order. */
static int copy_metadata(lakefs_metadata *dst, const lakefs_metadata *src)
{
    dst->items = NULL;
    dst->count = 0;
    if (!src->count)
        return 0;
    dst->items = calloc(src->count, sizeof(*dst->items));
    if (!dst->items)
        return -ENOMEM;
    for (size_t i = 0; i < src->count; i++) {
        dst->items[i].key = strdup(src->items[i].key);
        dst->items[i].value = strdup(src->items[i].value);
        dst->count = i + 1;
        if (!dst->items[i].key || !dst->items[i].value) {
            lakefs_metadata_free(dst);
            return -ENOMEM;
        }
    }
    return 0;
}

void fs_entry_free(fs_entry *e)
{
    if (!e)
        return;
    free(e->name);
    free(e->checksum);
    free(e->physical_address);
    free(e->content_type);
    lakefs_metadata_free(&e->metadata);
    memset(e, 0, sizeof(*e));
}

void fs_entries_free(fs_entry *entries, size_t count)
{
    for (size_t i = 0; entries && i < count; i++)
        fs_entry_free(&entries[i]);
    free(entries);
}

int fs_entry_copy(fs_entry *dst, const fs_entry *src)
{
    *dst = *src;
    dst->name = dst->checksum = NULL;
    dst->physical_address = dst->content_type = NULL;
    dst->metadata.items = NULL;
    dst->metadata.count = 0;
    int rc = copy_string(&dst->name, src->name);
    if (!rc)
        rc = copy_string(&dst->checksum, src->checksum);
    if (!rc)
        rc = copy_string(&dst->physical_address, src->physical_address);
    if (!rc)
        rc = copy_string(&dst->content_type, src->content_type);
    if (!rc)
        rc = copy_metadata(&dst->metadata, &src->metadata);
    if (rc)
        fs_entry_free(dst);
    return rc;
}

/* A plain decimal integer: optional '-', 1 to 18 digits, nothing else. */
static bool parse_client_mtime(const char *s, int64_t *out)
{
    if (!s)
        return false;
    const char *p = s[0] == '-' ? s + 1 : s;
    size_t digits = strlen(p);
    if (digits == 0 || digits > 18)
        return false;
    for (size_t i = 0; i < digits; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    *out = strtoll(s, NULL, 10);
    return true;
}

/* A JSON number that is an integer in [0, UINT32_MAX]. */
static bool json_uint32(const cJSON *item, uint32_t *out)
{
    if (!cJSON_IsNumber(item))
        return false;
    double v = item->valuedouble;
    if (!isfinite(v) || v < 0 || v > (double)UINT32_MAX || floor(v) != v)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* Mode as lakectl writes it (a Go fs.FileMode number, type bits included),
 * or as a string of octal digits ("0644"), which people write by hand. */
static bool json_mode(const cJSON *item, uint32_t *out)
{
    if (json_uint32(item, out))
        return true;
    if (!cJSON_IsString(item) || !item->valuestring)
        return false;
    const char *s = item->valuestring;
    size_t len = strlen(s);
    if (len == 0 || len > 11)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '7')
            return false;
    unsigned long v = strtoul(s, NULL, 8);
    if (v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* Applies ::lakefs::posix-permissions {"UID","GID","Mode"}; anything invalid
 * leaves the defaults. Mode and owner are taken independently. The type
 * bits of Mode are returned in *type (0 when there are none). */
static void apply_posix_permissions(fs_entry *e, const char *json,
                                    uint32_t *type)
{
    *type = 0;
    if (!json)
        return;
    cJSON *root = cJSON_Parse(json);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return;
    }
    uint32_t mode, uid, gid;
    if (json_mode(cJSON_GetObjectItemCaseSensitive(root, "Mode"), &mode)) {
        e->mode = mode & 07777u;
        *type = mode & S_IFMT;
    }
    if (json_uint32(cJSON_GetObjectItemCaseSensitive(root, "UID"), &uid) &&
        json_uint32(cJSON_GetObjectItemCaseSensitive(root, "GID"), &gid)) {
        e->uid = uid;
        e->gid = gid;
        e->has_owner = true;
    }
    cJSON_Delete(root);
}

int fs_entry_from_object(fs_entry *out, const char *name,
                         const lakefs_object_stats *st)
{
    memset(out, 0, sizeof(*out));
    out->size = st->size_bytes;
    out->mtime = st->mtime;
    out->mode = LISTING_DEFAULT_FILE_MODE;
    out->physical_address_expiry = st->physical_address_expiry;
    int rc = copy_string(&out->name, name);
    if (!rc)
        rc = copy_string(&out->checksum, st->checksum);
    if (!rc)
        rc = copy_string(&out->physical_address, st->physical_address);
    if (!rc)
        rc = copy_string(&out->content_type, st->content_type);
    if (!rc)
        rc = copy_metadata(&out->metadata, &st->metadata);
    if (rc) {
        fs_entry_free(out);
        return rc;
    }
    int64_t client_mtime;
    if (parse_client_mtime(
            lakefs_metadata_get(&st->metadata, LISTING_KEY_CLIENT_MTIME),
            &client_mtime))
        out->mtime = client_mtime;
    uint32_t type;
    apply_posix_permissions(
        out,
        lakefs_metadata_get(&st->metadata, LISTING_KEY_POSIX_PERMISSIONS),
        &type);
    out->is_symlink =
        lakefs_metadata_get(&st->metadata, LISTING_KEY_SYMLINK_TARGET) != NULL;
    /* A special file only when the object is empty: bytes stored under a
     * name stay readable whatever its metadata says. */
    if (!out->is_symlink && st->size_bytes == 0 &&
        (type == S_IFIFO || type == S_IFSOCK || type == S_IFCHR ||
         type == S_IFBLK)) {
        out->special = type;
        const char *rdev = lakefs_metadata_get(&st->metadata, LISTING_KEY_RDEV);
        char *end;
        errno = 0;
        unsigned long long v = rdev && (type == S_IFCHR || type == S_IFBLK) &&
                                       *rdev >= '0' && *rdev <= '9'
                                   ? strtoull(rdev, &end, 10)
                                   : 0;
        if (v && errno == 0 && *end == '\0')
            out->rdev = v;
    }
    return 0;
}

int fs_entry_from_marker(fs_entry *out, const char *name,
                         const lakefs_object_stats *marker)
{
    if (fs_entry_from_object(out, name, marker) != 0)
        return -ENOMEM;
    if (!lakefs_metadata_get(&marker->metadata,
                             LISTING_KEY_POSIX_PERMISSIONS))
        out->mode = LISTING_DEFAULT_DIR_MODE;
    out->is_dir = true;
    out->is_symlink = false;
    out->special = 0;
    out->rdev = 0;
    out->size = 0;
    out->marker_has_bytes = marker->size_bytes > 0;
    return 0;
}

uint32_t fs_entry_type(const fs_entry *e)
{
    if (e->is_dir)
        return S_IFDIR;
    if (e->is_symlink)
        return S_IFLNK;
    return e->special ? e->special : S_IFREG;
}

bool listing_name_is_valid(const char *name)
{
    size_t len = strnlen(name, LISTING_NAME_MAX + 1);
    if (len == 0 || len > LISTING_NAME_MAX)
        return false;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    return memchr(name, '/', len) == NULL;
}

/* The length of the valid UTF-8 character at p (1 to 4), or 0: a stray
 * continuation byte, an overlong form, a UTF-16 surrogate, above U+10FFFF,
 * or cut short. */
static size_t utf8_char_len(const unsigned char *p)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t n = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                                      : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0 || (n == 2 && c < 0xc2) || (n == 4 && c > 0xf4))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0; /* also stops at the NUL */
    if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0) ||
        (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))
        return 0;
    return n;
}

static bool utf8_is_valid(const char *s, bool nul_marks)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = nul_marks && jsonnul_at((const char *)p)
                       ? 2
                       : utf8_char_len(p);
        if (n == 0)
            return false;
        p += n;
    }
    return true;
}

bool listing_utf8_is_valid(const char *s)
{
    return utf8_is_valid(s, false);
}

bool listing_utf8_nul_is_valid(const char *s)
{
    return utf8_is_valid(s, true);
}

void listing_printable(const char *s, char *buf, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (cap < 4) {
        if (cap)
            buf[0] = '\0';
        return;
    }
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        char esc[4];
        size_t n = utf8_char_len(p);
        const char *from = (const char *)p;
        if (jsonnul_at((const char *)p)) { /* U+0000 */
            memcpy(esc, "\\x00", 4);
            from = esc;
            n = 4;
            p += 2;
        } else if (n == 0 || *p < 0x20 || *p == 0x7f || *p == '\\' ||
                   *p == '"') {
            esc[0] = '\\';
            esc[1] = 'x';
            esc[2] = hex[*p >> 4];
            esc[3] = hex[*p & 15];
            from = esc;
            n = 4;
            p++;
        } else {
            p += n;
        }
        if (o + n + 4 > cap) { /* keep room for "..." and the NUL */
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(buf + o, from, n);
        o += n;
    }
    buf[o] = '\0';
}

/* Directories sort before objects of the same name, so that deduplication
 * keeps the directory. */
static int compare_entries(const void *a, const void *b)
{
    const fs_entry *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return (int)y->is_dir - (int)x->is_dir;
}

/* The entry for one result, or 0 with out->name NULL when it is skipped. */
static int entry_for_item(const char *prefix, size_t prefix_len,
                          const lakefs_object_stats *st, fs_entry *out,
                          listing_warn_fn warn, void *warn_ctx)
{
    memset(out, 0, sizeof(*out));
    const char *path = st->path ? st->path : "";
    char shown_dir[LISTING_PRINTABLE_MAX], shown[LISTING_PRINTABLE_MAX];
    if (strncmp(path, prefix, prefix_len) != 0) {
        if (warn) {
            listing_printable(prefix, shown_dir, sizeof(shown_dir));
            listing_printable(path, shown, sizeof(shown));
            warn(warn_ctx, "listing of \"%s\": result \"%s\" is outside it",
                 shown_dir, shown);
        }
        return 0;
    }
    const char *rest = path + prefix_len;
    size_t rest_len = strlen(rest);
    bool is_dir = st->path_type == LAKEFS_PATH_COMMON_PREFIX;
    if (st->path_type == LAKEFS_PATH_OBJECT && rest_len == 0)
        return 0; /* the directory's own marker */
    /* A sub-directory marker ("sub/" object) names a directory too. */
    if (rest_len > 0 && rest[rest_len - 1] == '/') {
        is_dir = true;
        rest_len--;
    }
    char *name = strndup(rest, rest_len);
    if (!name)
        return -ENOMEM;
    /* A directory's key counts its '/', as its marker's does. */
    const char *why = !listing_name_is_valid(name) ? "not a valid file name"
                      : strstr(name, JSONNUL_MARK)
                          ? "it holds a NUL, which no file name can"
                      : !listing_utf8_is_valid(name)
                          ? "not UTF-8, which lakeFS's JSON cannot carry"
                      : prefix_len + rest_len + (is_dir ? 1 : 0) >
                              LAKEFS_MAX_PATH_LENGTH
                          ? "longer than lakeFS's 1024-byte keys"
                          : NULL;
    if (why) {
        if (warn) {
            listing_printable(prefix, shown_dir, sizeof(shown_dir));
            listing_printable(path, shown, sizeof(shown));
            warn(warn_ctx, "skipping \"%s\": %s (listing of \"%s\")", shown,
                 why, shown_dir);
        }
        free(name);
        return 0;
    }
    if (is_dir) {
        out->name = name;
        out->is_dir = true;
        out->mode = LISTING_DEFAULT_DIR_MODE;
        return 0;
    }
    int rc = fs_entry_from_object(out, name, st);
    free(name);
    return rc;
}

/* Sorts and drops duplicate names in place; returns the new count. */
static size_t sort_and_dedupe(const char *prefix, fs_entry *entries, size_t n,
                              listing_warn_fn warn, void *warn_ctx)
{
    if (n > 1)
        qsort(entries, n, sizeof(*entries), compare_entries);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (kept && strcmp(entries[kept - 1].name, entries[i].name) == 0) {
            /* Two directories for one name (a marker and its prefix) are
             * one directory; anything else is a real collision. */
            if (warn && !entries[i].is_dir) {
                char shown_dir[LISTING_PRINTABLE_MAX];
                char shown[LISTING_PRINTABLE_MAX];
                listing_printable(prefix, shown_dir, sizeof(shown_dir));
                listing_printable(entries[i].name, shown, sizeof(shown));
                warn(warn_ctx, "listing of \"%s\": object \"%s%s\" is %s",
                     shown_dir, shown_dir, shown,
                     entries[kept - 1].is_dir
                         ? "hidden by the directory of the same name"
                         : "listed twice");
            }
            fs_entry_free(&entries[i]);
            continue;
        }
        if (kept != i)
            entries[kept] = entries[i];
        kept++;
    }
    return kept;
}

int listing_build(const char *prefix, const lakefs_object_stats *items,
                  size_t n, fs_entry **entries_out, size_t *count_out,
                  listing_warn_fn warn, void *warn_ctx)
{
    *entries_out = NULL;
    *count_out = 0;
    size_t prefix_len = prefix ? strlen(prefix) : 0;
    if (!prefix || (prefix_len && prefix[prefix_len - 1] != '/'))
        return -EINVAL;
    if (n == 0)
        return 0;
    fs_entry *entries = calloc(n, sizeof(*entries));
    if (!entries)
        return -ENOMEM;
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = entry_for_item(prefix, prefix_len, &items[i], &entries[count],
                                warn, warn_ctx);
        if (rc) {
            fs_entries_free(entries, count);
            return rc;
        }
        if (entries[count].name)
            count++;
    }
    count = sort_and_dedupe(prefix, entries, count, warn, warn_ctx);
    if (count == 0) {
        free(entries);
        return 0;
    }
    *entries_out = entries;
    *count_out = count;
    return 0;
}

static int compare_name_to_entry(const void *name, const void *elem)
{
    return strcmp(name, ((const fs_entry *)elem)->name);
}

static fs_entry *find_entry(fs_entry *entries, size_t n, const char *name)
{
    return n ? bsearch(name, entries, n, sizeof(*entries),
                       compare_name_to_entry)
             : NULL;
}

/* A name merge_files takes: a valid one, or a directory's own entry "."
 * (tree.h's TREE_MARKER_NAME: its marker's mode, mtime and owner). */
static bool merge_name_ok(const fs_entry *x)
{
    return listing_name_is_valid(x->name) ||
           (x->is_dir && strcmp(x->name, ".") == 0);
}

/* A directory's entry from a marker not uploaded yet: its attributes are
 * the marker's (listed or not: the marker's are the newer). */
static void take_dir_attrs(fs_entry *e, const fs_entry *x)
{
    e->is_dir = true;
    e->mode = x->mode ? x->mode & 07777u : LISTING_DEFAULT_DIR_MODE;
    e->mtime = x->mtime;
    e->has_owner = x->has_owner;
    e->uid = x->uid;
    e->gid = x->gid;
}

/* A file being written shows the owner it holds (recorded, or set by a
 * chown its upload carries), else the listed one's. */
static void take_owner(fs_entry *e, const fs_entry *x)
{
    if (!x->has_owner)
        return;
    e->has_owner = true;
    e->uid = x->uid;
    e->gid = x->gid;
}

int listing_merge_files(fs_entry **entries, size_t *n, const fs_entry *extra,
                        size_t extra_n)
{
    size_t listed = *n, missing = 0;
    for (size_t i = 0; i < extra_n; i++)
        missing += merge_name_ok(&extra[i]) &&
                   !find_entry(*entries, listed, extra[i].name);
    fs_entry *all = *entries;
    if (missing) {
        all = realloc(*entries, (listed + missing) * sizeof(*all));
        if (!all)
            return -ENOMEM;
        *entries = all;
    }
    /* Additions first: on ENOMEM nothing listed has changed yet. */
    size_t count = listed;
    for (size_t i = 0; i < extra_n; i++) {
        const fs_entry *x = &extra[i];
        if (!merge_name_ok(x) || find_entry(all, listed, x->name))
            continue;
        fs_entry *e = &all[count];
        memset(e, 0, sizeof(*e));
        e->name = strdup(x->name);
        if (!e->name) {
            for (size_t j = listed; j < count; j++)
                fs_entry_free(&all[j]);
            return -ENOMEM;
        }
        if (x->is_dir) {
            take_dir_attrs(e, x);
            count++;
            continue;
        }
        e->size = x->size;
        e->mtime = x->mtime;
        e->mode = x->mode ? x->mode & 07777u : LISTING_DEFAULT_FILE_MODE;
        e->unshown_mode = x->unshown_mode;
        take_owner(e, x);
        count++;
        if (copy_metadata(&e->metadata, &x->metadata) != 0) {
            for (size_t j = listed; j < count; j++)
                fs_entry_free(&all[j]);
            return -ENOMEM;
        }
    }
    for (size_t i = 0; i < extra_n; i++) {
        fs_entry *e = merge_name_ok(&extra[i])
                          ? find_entry(all, listed, extra[i].name)
                          : NULL;
        if (e && e->is_dir && extra[i].is_dir && extra[i].mode)
            take_dir_attrs(e, &extra[i]);
        if (!e || e->is_dir || extra[i].is_dir)
            continue;
        if (e->is_symlink || e->special) {
            /* A file written over a symlink or a special file (a rename,
             * or open after its unlink) is what the key will hold once
             * uploaded: a regular file with the file's metadata, not the
             * stale link. */
            lakefs_metadata md = {0};
            if (copy_metadata(&md, &extra[i].metadata) != 0) {
                for (size_t j = listed; j < count; j++)
                    fs_entry_free(&all[j]);
                return -ENOMEM;
            }
            lakefs_metadata_free(&e->metadata);
            e->metadata = md;
            free(e->checksum);
            free(e->physical_address);
            free(e->content_type);
            e->checksum = e->physical_address = e->content_type = NULL;
            e->physical_address_expiry = 0;
            e->is_symlink = false;
            e->special = 0;
            e->rdev = 0;
            e->mode = extra[i].mode ? extra[i].mode & 07777u
                                    : LISTING_DEFAULT_FILE_MODE;
            e->unshown_mode = extra[i].unshown_mode;
            e->has_owner = false;
            take_owner(e, &extra[i]);
            e->size = extra[i].size;
            e->mtime = extra[i].mtime;
            continue;
        }
        if (extra[i].checksum && e->checksum &&
            strcmp(extra[i].checksum, e->checksum) == 0)
            continue; /* the listed object is its bytes: as listed */
        e->size = extra[i].size;
        e->mtime = extra[i].mtime;
        if (extra[i].mode) { /* the bits it shows and keeps unshown */
            e->mode = extra[i].mode & 07777u;
            e->unshown_mode = extra[i].unshown_mode;
        }
        take_owner(e, &extra[i]);
    }
    if (count > listed)
        qsort(all, count, sizeof(*all), compare_entries);
    *n = count;
    return 0;
}
