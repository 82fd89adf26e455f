/*
 * staging_journal.c - the journal of one staged file: JSON saying where
 * its data belongs, written whole (temp file, fsync, rename, directory
 * fsync) and read back defensively (a torn or foreign journal is reported
 * as failed, never trusted). Never reads the data file's content.
 */
#include "staging_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
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
};
#define STATE_COUNT (sizeof(state_names) / sizeof(state_names[0]))

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

static char *journal_render(const staging_entry *e)
{
    cJSON *o = cJSON_CreateObject();
    bool failed = e->state == STAGING_FAILED;
    bool ok = o != NULL &&
              cJSON_AddNumberToObject(o, "version", JOURNAL_VERSION) &&
              cJSON_AddStringToObject(o, "repo", e->repo) &&
              cJSON_AddStringToObject(o, "branch", e->branch) &&
              cJSON_AddStringToObject(o, "path", e->path) &&
              cJSON_AddStringToObject(o, "state", state_names[e->state]) &&
              (failed && e->error
                   ? cJSON_AddStringToObject(o, "error", e->error) != NULL
                   : cJSON_AddNullToObject(o, "error") != NULL) &&
              cJSON_AddNumberToObject(o, "mode", (double)e->mode);
    char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return text;
}

/* Replaces <id>.json whole: after a crash it is the old or the new one. */
int staging_journal_write(int dir_fd, uint64_t id, const staging_entry *e)
{
    char tmp[ENTRY_NAME_MAX], final[ENTRY_NAME_MAX];
    snprintf(tmp, sizeof(tmp), TEMP_PREFIX "%" PRIu64 ".json", id);
    staging_entry_file_name(final, id, ".json");
    char *text = journal_render(e);
    if (text == NULL)
        return -ENOMEM;
    unlinkat(dir_fd, tmp, 0); /* left by an earlier failed write */
    int rc = 0;
    int fd =
        openat(dir_fd, tmp,
               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        free(text);
        return -errno;
    }
    rc = write_all(fd, text, strlen(text));
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && renameat(dir_fd, tmp, dir_fd, final) != 0)
        rc = -errno;
    if (rc == 0 && fsync(dir_fd) != 0)
        rc = -errno;
    if (rc != 0)
        unlinkat(dir_fd, tmp, 0);
    free(text);
    return rc;
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
    bool failed = st == STAGING_FAILED;
    int rc = -EINVAL;
    if (!cJSON_IsObject(o)) {
        *why = "not a JSON object";
    } else if (!cJSON_IsNumber(version) ||
               version->valuedouble != JOURNAL_VERSION) {
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
    }
    cJSON_Delete(o);
    if (rc != 0) {
        free(e->repo);
        free(e->branch);
        free(e->path);
        free(e->error);
        e->repo = e->branch = e->path = e->error = NULL;
    }
    return rc;
}

/* ---- entries ---- */

void staging_entry_clear(staging_entry *e)
{
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

