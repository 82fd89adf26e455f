/*
 * staging_journal.c - the journal of one staged file: JSON saying where
 * its data belongs, written whole (temp file, fsync, rename, directory
 * fsync) and read back defensively (a torn or foreign journal is reported
 * as failed, never trusted). Never reads the data file's content.
 */
#include "staging_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Journal "state" values, indexed by staging_state. */
static const char *const state_names[] = {
    [STAGING_PENDING] = "pending",
    [STAGING_FAILED] = "failed",
    [STAGING_CLEAN] = "clean",
    [STAGING_CONFLICT] = "conflict",
};
#define STATE_COUNT (sizeof(state_names) / sizeof(state_names[0]))

static void staging_entry_v2_clear(staging_entry *e);
static int parse_version2(const cJSON *o, staging_entry *e, const char **why);

void staging_entry_file_name(char *buf, uint64_t id, const char *suffix)
{
    snprintf(buf, ENTRY_NAME_MAX, "%" PRIu64 "%s", id, suffix);
}

/* ---- small helpers ---- */

bool staging_state_valid(staging_state state)
{
    return (unsigned)state < STATE_COUNT;
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Reads a regular file of at most JOURNAL_MAX_BYTES, NUL-terminated.
 * -EINVAL: not a regular file; -EFBIG: too large. */
int staging_read_journal_text(int dir_fd, const char *name, char **text,
                             size_t *len)
{
    struct stat st;
    int rc = 0;
    size_t got = 0;
    int fd =
        openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    *text = NULL;
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0)
        rc = -errno;
    else if (!S_ISREG(st.st_mode))
        rc = -EINVAL;
    else if (st.st_size > JOURNAL_MAX_BYTES)
        rc = -EFBIG;
    else if ((*text = malloc((size_t)st.st_size + 1)) == NULL)
        rc = -ENOMEM;
    while (rc == 0 && got < (size_t)st.st_size) {
        ssize_t r = read(fd, *text + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            rc = r < 0 ? -errno : -EIO;
        else
            got += (size_t)r;
    }
    close(fd);
    if (rc != 0) {
        free(*text);
        *text = NULL;
        return rc;
    }
    (*text)[got] = '\0';
    *len = got;
    return 0;
}

/* ---- journals ---- */

static bool add_optional_string(cJSON *o, const char *key, const char *v)
{
    return v ? cJSON_AddStringToObject(o, key, v) != NULL
             : cJSON_AddNullToObject(o, key) != NULL;
}

static bool add_metadata(cJSON *o, const lakefs_metadata *md)
{
    cJSON *m = cJSON_AddObjectToObject(o, "metadata");
    for (size_t i = 0; m && i < md->count; i++)
        if (!cJSON_AddStringToObject(m, md->items[i].key, md->items[i].value))
            return false;
    return m != NULL;
}

/* Numbers that must survive JSON's doubles exactly are strings. */
static bool add_u64_string(cJSON *o, const char *key, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    return cJSON_AddStringToObject(o, key, buf) != NULL;
}

static bool add_attempts(cJSON *o, const staging_entry *e)
{
    cJSON *a = cJSON_AddArrayToObject(o, "attempts");
    for (size_t i = 0; a && i < e->n_attempts; i++) {
        cJSON *item = cJSON_CreateString(e->attempts[i]);
        if (!item)
            return false;
        cJSON_AddItemToArray(a, item);
    }
    return a != NULL;
}

static char *journal_render(const staging_entry *e)
{
    cJSON *o = cJSON_CreateObject();
    bool with_error = e->state == STAGING_FAILED || e->state == STAGING_CONFLICT;
    bool ok = o != NULL &&
              cJSON_AddNumberToObject(o, "version", JOURNAL_VERSION) &&
              cJSON_AddStringToObject(o, "repo", e->repo) &&
              cJSON_AddStringToObject(o, "branch", e->branch) &&
              cJSON_AddStringToObject(o, "path", e->path) &&
              cJSON_AddStringToObject(o, "state", state_names[e->state]) &&
              add_optional_string(o, "error", with_error ? e->error : NULL) &&
              cJSON_AddNumberToObject(o, "mode", (double)e->mode) &&
              cJSON_AddBoolToObject(o, "base_absent", e->base_absent) &&
              add_optional_string(o, "base", e->base) &&
              add_u64_string(o, "generation", e->generation) &&
              cJSON_AddBoolToObject(o, "sealed", e->sealed) &&
              add_u64_string(o, "sealed_size", (uint64_t)e->sealed_size) &&
              add_optional_string(o, "digest", e->digest) &&
              add_optional_string(o, "boot_id", e->boot_id) &&
              cJSON_AddNumberToObject(o, "client_mtime",
                                      (double)e->client_mtime) &&
              cJSON_AddBoolToObject(o, "has_owner", e->has_owner) &&
              cJSON_AddNumberToObject(o, "uid", (double)e->uid) &&
              cJSON_AddNumberToObject(o, "gid", (double)e->gid) &&
              add_metadata(o, &e->metadata) &&
              add_optional_string(o, "content_type", e->content_type) &&
              add_attempts(o, e);
    char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return text;
}

static int open_temp(int dir_fd, const char *name)
{
    return openat(dir_fd, name,
                  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
}

/* Replaces <id>.json whole: after a crash it is the old or the new one;
 * durable: fsync'd with its directory before this returns. */
static int journal_write(int dir_fd, uint64_t id, const staging_entry *e,
                         bool durable)
{
    char tmp[ENTRY_NAME_MAX], final[ENTRY_NAME_MAX];
    snprintf(tmp, sizeof(tmp), TEMP_PREFIX "%" PRIu64 ".json", id);
    staging_entry_file_name(final, id, ".json");
    char *text = journal_render(e);
    if (text == NULL)
        return -ENOMEM;
    int rc = 0;
    int fd = open_temp(dir_fd, tmp);
    if (fd < 0 && errno == EEXIST && unlinkat(dir_fd, tmp, 0) == 0)
        fd = open_temp(dir_fd, tmp); /* left by an earlier failed write */
    if (fd < 0) {
        free(text);
        return -errno;
    }
    rc = write_all(fd, text, strlen(text));
    if (rc == 0 && durable && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && renameat(dir_fd, tmp, dir_fd, final) != 0)
        rc = -errno;
    if (rc == 0 && durable && fsync(dir_fd) != 0)
        rc = -errno;
    if (rc != 0)
        unlinkat(dir_fd, tmp, 0);
    free(text);
    return rc;
}

int staging_journal_write(int dir_fd, uint64_t id, const staging_entry *e)
{
    return journal_write(dir_fd, id, e, true);
}

/* A change of an existing journal, written into the directory's spare file
 * (SPARE_NAME), which then trades names with <id>.json (renameat2
 * RENAME_EXCHANGE, atomic): after a crash <id>.json is the old or the new
 * one, as with journal_write, but no inode is made or freed per change -
 * the old journal becomes the spare, rewritten by the next change. (On
 * ext4 without a journal every new inode is checked against the inodes
 * freed in the last seconds: an untar, whose files each change their
 * journal several times, spent most of the daemon's CPU there.) The
 * callers serialise the changes in one directory (the staging mutex).
 * Without RENAME_EXCHANGE, or without <id>.json, the spare takes the name
 * by a plain rename. */
static int journal_replace(int dir_fd, uint64_t id, const staging_entry *e,
                           bool durable)
{
    char final[ENTRY_NAME_MAX];
    staging_entry_file_name(final, id, ".json");
    char *text = journal_render(e);
    if (text == NULL)
        return -ENOMEM;
    int fd = openat(dir_fd, SPARE_NAME,
                    O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                    0600);
    int rc = fd < 0 ? -errno : write_all(fd, text, strlen(text));
    free(text);
    if (rc == 0 && durable && fsync(fd) != 0)
        rc = -errno;
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 &&
        renameat2(dir_fd, SPARE_NAME, dir_fd, final, RENAME_EXCHANGE) != 0) {
        rc = -errno;
        if ((rc == -EINVAL || rc == -ENOSYS || rc == -ENOENT) &&
            renameat(dir_fd, SPARE_NAME, dir_fd, final) == 0)
            rc = 0;
    }
    if (rc == 0 && durable && fsync(dir_fd) != 0)
        rc = -errno;
    return rc;
}

int staging_journal_replace(int dir_fd, uint64_t id, const staging_entry *e)
{
    return journal_replace(dir_fd, id, e, true);
}

int staging_journal_replace_unsynced(int dir_fd, uint64_t id,
                                     const staging_entry *e)
{
    return journal_replace(dir_fd, id, e, false);
}

int staging_journal_write_unsynced(int dir_fd, uint64_t id,
                                   const staging_entry *e)
{
    return journal_write(dir_fd, id, e, false);
}

static int dup_member(const cJSON *o, const char *key, char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v))
        return -EINVAL;
    *out = strdup(v->valuestring);
    return *out ? 0 : -ENOMEM;
}

static bool mode_ok(const cJSON *mode)
{
    if (mode == NULL)
        return true; /* 0: no mode recorded */
    return cJSON_IsNumber(mode) && mode->valuedouble >= 0 &&
           mode->valuedouble <= UINT32_MAX &&
           mode->valuedouble == (double)(uint32_t)mode->valuedouble;
}

/* Fills repo, branch, path, state, error and mode; on failure leaves them
 * NULL and returns -EINVAL (with *why) or -ENOMEM. */
int staging_journal_parse(const char *text, size_t len, staging_entry *e,
                         const char **why)
{
    cJSON *o = cJSON_ParseWithLength(text, len);
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(o, "version");
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(o, "state");
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(o, "error");
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(o, "mode");
    const char *state_text = cJSON_GetStringValue(state);
    size_t st = 0;
    while (state_text && st < STATE_COUNT &&
           strcmp(state_text, state_names[st]))
        st++;
    bool failed = st == STAGING_FAILED || st == STAGING_CONFLICT;
    int rc = -EINVAL;
    if (!cJSON_IsObject(o)) {
        *why = "not a JSON object";
    } else if (!cJSON_IsNumber(version) ||
               (version->valuedouble != JOURNAL_VERSION &&
                version->valuedouble != 1)) {
        *why = "unsupported version";
    } else if (state_text == NULL || st == STATE_COUNT ||
               !(error == NULL || cJSON_IsNull(error) ||
                 cJSON_IsString(error)) ||
               !mode_ok(mode)) {
        *why = "bad state, error or mode";
    } else {
        *why = "missing repo, branch or path";
        rc = dup_member(o, "repo", &e->repo);
    }
    if (rc == 0)
        rc = dup_member(o, "branch", &e->branch);
    if (rc == 0)
        rc = dup_member(o, "path", &e->path);
    if (rc == 0 && failed) {
        const char *msg =
            cJSON_IsString(error) ? error->valuestring : "upload failed";
        rc = (e->error = strdup(msg)) ? 0 : -ENOMEM;
    }
    if (rc == 0) {
        e->state = (staging_state)st;
        e->mode = mode ? (uint32_t)mode->valuedouble : 0;
        rc = parse_version2(o, e, why);
    }
    cJSON_Delete(o);
    if (rc != 0) {
        staging_entry_v2_clear(e);
        free(e->repo);
        free(e->branch);
        free(e->path);
        free(e->error);
        e->repo = e->branch = e->path = e->error = NULL;
    }
    return rc;
}

/* ---- version 2 fields ---- */

static void staging_entry_v2_clear(staging_entry *e)
{
    for (size_t i = 0; i < e->n_attempts; i++)
        free(e->attempts[i]);
    free(e->attempts);
    e->attempts = NULL;
    e->n_attempts = 0;
    free(e->base);
    free(e->digest);
    free(e->boot_id);
    free(e->content_type);
    lakefs_metadata_free(&e->metadata);
    e->base = e->digest = e->boot_id = e->content_type = NULL;
}

/* An optional string member: absent or null gives NULL. */
static int optional_string(const cJSON *o, const char *key, char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = NULL;
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v))
        return -EINVAL;
    *out = strdup(v->valuestring);
    return *out ? 0 : -ENOMEM;
}

static int optional_u64(const cJSON *o, const char *key, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = 0;
    if (v == NULL)
        return 0;
    const char *text = cJSON_GetStringValue(v);
    char *end = NULL;
    if (!text || !*text || *text < '0' || *text > '9')
        return -EINVAL;
    errno = 0;
    unsigned long long n = strtoull(text, &end, 10);
    if (errno || *end)
        return -EINVAL;
    *out = n;
    return 0;
}

static bool optional_number(const cJSON *o, const char *key, double lo,
                            double hi, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = 0;
    if (v == NULL)
        return true;
    if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return false;
    *out = v->valuedouble;
    return true;
}

/* base, generation, seal, owner, metadata...: absent in version 1. */
static int parse_version2(const cJSON *o, staging_entry *e, const char **why)
{
    const cJSON *absent = cJSON_GetObjectItemCaseSensitive(o, "base_absent");
    const cJSON *sealed = cJSON_GetObjectItemCaseSensitive(o, "sealed");
    const cJSON *owner = cJSON_GetObjectItemCaseSensitive(o, "has_owner");
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(o, "metadata");
    uint64_t sealed_size = 0;
    double mtime, uid, gid;
    *why = "bad version 2 fields";
    if ((absent && !cJSON_IsBool(absent)) || (sealed && !cJSON_IsBool(sealed)) ||
        (owner && !cJSON_IsBool(owner)) || (md && !cJSON_IsObject(md)) ||
        !optional_number(o, "client_mtime", -1e15, 1e15, &mtime) ||
        !optional_number(o, "uid", 0, UINT32_MAX, &uid) ||
        !optional_number(o, "gid", 0, UINT32_MAX, &gid))
        return -EINVAL;
    int rc = optional_u64(o, "generation", &e->generation);
    if (rc == 0)
        rc = optional_u64(o, "sealed_size", &sealed_size);
    if (rc == 0 && sealed_size > INT64_MAX)
        rc = -EINVAL;
    if (rc == 0)
        rc = optional_string(o, "base", &e->base);
    if (rc == 0)
        rc = optional_string(o, "digest", &e->digest);
    if (rc == 0)
        rc = optional_string(o, "boot_id", &e->boot_id);
    if (rc == 0)
        rc = optional_string(o, "content_type", &e->content_type);
    const cJSON *attempts = cJSON_GetObjectItemCaseSensitive(o, "attempts");
    int count = attempts ? cJSON_GetArraySize(attempts) : 0;
    if (rc == 0 && attempts &&
        (!cJSON_IsArray(attempts) || count > STAGING_MAX_ATTEMPTS))
        rc = -EINVAL;
    if (rc == 0 && count > 0 &&
        !(e->attempts = calloc((size_t)count, sizeof(*e->attempts))))
        rc = -ENOMEM;
    const cJSON *item = attempts ? attempts->child : NULL;
    for (; rc == 0 && item; item = item->next) {
        if (!cJSON_IsString(item))
            rc = -EINVAL;
        else if (!(e->attempts[e->n_attempts] = strdup(item->valuestring)))
            rc = -ENOMEM;
        else
            e->n_attempts++;
    }
    const cJSON *kv = md ? md->child : NULL;
    for (; rc == 0 && kv; kv = kv->next)
        rc = cJSON_IsString(kv) && kv->string
                 ? lakefs_metadata_set(&e->metadata, kv->string,
                                       kv->valuestring)
                 : -EINVAL;
    if (rc)
        return rc;
    e->base_absent = cJSON_IsTrue(absent);
    e->sealed = cJSON_IsTrue(sealed) && e->digest != NULL;
    e->sealed_size = (int64_t)sealed_size;
    e->client_mtime = (int64_t)mtime;
    e->has_owner = cJSON_IsTrue(owner);
    e->uid = (uint32_t)uid;
    e->gid = (uint32_t)gid;
    return 0;
}

/* ---- entries ---- */

void staging_entry_clear(staging_entry *e)
{
    staging_entry_v2_clear(e);
    free(e->session);
    free(e->repo);
    free(e->branch);
    free(e->path);
    free(e->data_path);
    free(e->error);
    memset(e, 0, sizeof(*e));
}

static int entry_fail(staging_entry *e, const char *what, const char *detail)
{
    free(e->error);
    e->error = NULL;
    e->state = STAGING_FAILED;
    if (asprintf(&e->error, "%s%s%s", what, detail ? ": " : "",
                 detail ? detail : "") < 0) {
        e->error = NULL;
        return -ENOMEM;
    }
    return 0;
}

/* Loads one entry from its journal and data file. -ENOENT: the journal is
 * gone (removed since the directory was read). */
int staging_entry_load(int dir_fd, const char *session,
                      const char *session_path, uint64_t id, staging_entry *e)
{
    char name[ENTRY_NAME_MAX];
    char *text = NULL;
    size_t len = 0;
    const char *why = NULL;
    struct stat st;
    e->id = id;
    e->session = strdup(session);
    if (e->session == NULL ||
        asprintf(&e->data_path, "%s/%" PRIu64 ".data", session_path, id) < 0)
        return -ENOMEM;
    staging_entry_file_name(name, id, ".json");
    int rc = staging_read_journal_text(dir_fd, name, &text, &len);
    if (rc == -ENOENT || rc == -ENOMEM)
        return rc;
    if (rc == 0)
        rc = staging_journal_parse(text, len, e, &why);
    else if (rc == -EINVAL)
        why = "not a regular file";
    else if (rc == -EFBIG)
        why = "too large";
    else
        why = strerror(-rc);
    free(text);
    if (rc == -ENOMEM)
        return rc;
    if (rc != 0 && entry_fail(e, "journal unreadable", why) != 0)
        return -ENOMEM;
    /* Bad data only matters to an entry whose bytes the server lacks: a
     * clean one stays clean (recovery drops it). */
    bool check_data = rc == 0 && e->state != STAGING_CLEAN;
    staging_entry_file_name(name, id, ".data");
    if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (check_data)
            return entry_fail(e, "data file missing",
                              errno == ENOENT ? NULL : strerror(errno));
        return 0;
    }
    if (!S_ISREG(st.st_mode) && check_data)
        return entry_fail(e, "data file is not a regular file", NULL);
    e->size = S_ISREG(st.st_mode) ? (int64_t)st.st_size : 0;
    e->mtime = (int64_t)st.st_mtime;
    return 0;
}

