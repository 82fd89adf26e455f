/*
 * test_staging.c - unit tests of src/staging.c against real temporary
 * directories. A daemon that dies is a fork()ed child that creates entries
 * and _exit()s without staging_close; a live one is a child blocked on a
 * pipe. No sleeps. Every test removes the directories it creates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include "staging.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PATH_LEN 512
#define MAX_NAMES 16

typedef struct fixture {
    char dir[64];         /* the outer mkdtemp directory */
    char cache[PATH_LEN]; /* dir/cache, handed to staging */
    char root[PATH_LEN];  /* dir/cache/staging */
} fixture;

/* out = dir/name, in a PATH_LEN buffer; false when it does not fit. */
static bool join(char *out, const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    if (a + b + 2 > PATH_LEN)
        return false;
    memmove(out, dir, a); /* out may be dir */
    out[a] = '/';
    memcpy(out + a + 1, name, b + 1);
    return true;
}

static void path_join(char *out, const char *dir, const char *name)
{
    assert_true(join(out, dir, name));
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    if (testutil_make_temp_dir(f->dir, sizeof(f->dir), "test_staging") != 0) {
        free(f);
        return -1;
    }
    if (!join(f->cache, f->dir, "cache") ||
        !join(f->root, f->cache, "staging")) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    testutil_remove_tree(f->dir);
    free(f);
    return 0;
}

/* ---- helpers ---- */

/* Names in a directory, sorted, without . and ..; returns how many. */
static size_t dir_names(const char *dir, char names[][PATH_LEN], size_t max)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    if (d == NULL)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (n < max)
            strcpy(names[n], de->d_name); /* d_name: at most 256 bytes */
        n++;
    }
    closedir(d);
    for (size_t i = 1; i < n && i < max; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char tmp[PATH_LEN];
            memcpy(tmp, names[j], PATH_LEN);
            memcpy(names[j], names[j - 1], PATH_LEN);
            memcpy(names[j - 1], tmp, PATH_LEN);
        }
    return n;
}

static size_t count_names(const char *dir)
{
    char names[1][PATH_LEN];
    return dir_names(dir, names, 0);
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Descriptors open in this process: nothing may leak one. */
static size_t open_fds(void)
{
    return count_names("/proc/self/fd");
}

static unsigned perm_bits(const char *path)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    return (unsigned)(st.st_mode & 07777);
}

/* The one session directory under staging (fails if not exactly one). */
static void only_session(const fixture *f, char *path)
{
    char names[MAX_NAMES][PATH_LEN];
    assert_int_equal(dir_names(f->root, names, MAX_NAMES), 1);
    path_join(path, f->root, names[0]);
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

static void write_pattern(int fd, size_t size)
{
    char buf[512];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (char)('a' + i % 26);
    while (size > 0) {
        size_t n = size < sizeof(buf) ? size : sizeof(buf);
        if (write(fd, buf, n) != (ssize_t)n)
            abort();
        size -= n;
    }
}

/* ---- a daemon in another process ---- */

typedef struct entry_spec {
    const char *repo;
    const char *branch;
    const char *path;
    staging_state initial;
    size_t size;        /* bytes written to the data file */
    const char *rename; /* staging_set_path afterwards, unless NULL */
    uint32_t mode;      /* staging_set_mode afterwards, unless 0 */
    bool change_state;  /* staging_set_state(state, error) afterwards */
    staging_state state;
    const char *error;
} entry_spec;

/* In a child process: one session with the given entries, then death
 * without staging_close. Any failure is the child's exit status. */
static void crash_with_entries(const fixture *f, const entry_spec *specs,
                               size_t n)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int err = 0;
        staging *s = staging_open(f->cache, &err);
        if (s == NULL)
            _exit(10);
        for (size_t i = 0; i < n; i++) {
            const entry_spec *e = &specs[i];
            uint64_t id = 0;
            int fd = -1;
            if (staging_create(s, e->repo, e->branch, e->path, e->initial, &id,
                               &fd) != 0 ||
                id != i + 1)
                _exit(11);
            write_pattern(fd, e->size);
            close(fd);
            if (e->rename && staging_set_path(s, id, e->rename) != 0)
                _exit(12);
            if (e->mode && staging_set_mode(s, id, e->mode) != 0)
                _exit(13);
            if (e->change_state &&
                staging_set_state(s, id, e->state, e->error) != 0)
                _exit(14);
        }
        _exit(0); /* the daemon dies: no staging_close */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static const entry_spec two_entries[] = {
    {"repo", "main", "a/one.csv", STAGING_PENDING, 3, NULL, 0, false, 0, NULL},
    {"repo", "dev", "b/two.bin", STAGING_CLEAN, 5000, NULL, 0, false, 0, NULL},
};

static void assert_entry(const staging_entry *e, const entry_spec *spec)
{
    assert_string_equal(e->repo, spec->repo);
    assert_string_equal(e->branch, spec->branch);
    assert_string_equal(e->path, spec->rename ? spec->rename : spec->path);
    assert_int_equal(e->size, (int64_t)spec->size);
    assert_int_equal(e->mode, spec->mode);
    staging_state state = spec->change_state ? spec->state : spec->initial;
    assert_int_equal(e->state, state);
    if (state == STAGING_FAILED)
        assert_string_equal(e->error, spec->error);
    else
        assert_null(e->error);
    assert_true(e->data_path[0] == '/');
    assert_true(exists(e->data_path));
}

/* ---- tests ---- */

static void test_create_list_remove(void **state)
{
    fixture *f = *state;
    int err = 1;
    staging *s = staging_open(f->cache, &err);
    assert_non_null(s);
    assert_int_equal(err, 0);
    uint64_t id1 = 0, id2 = 0;
    int fd1 = -1, fd2 = -1;
    assert_int_equal(staging_create(s, "repo", "main", "dir/file.txt",
                                    STAGING_PENDING, &id1, &fd1),
                     0);
    assert_int_equal(
        staging_create(s, "repo", "main", "other", STAGING_CLEAN, &id2, &fd2),
        0);
    assert_int_equal(id1, 1);
    assert_int_equal(id2, 2);
    assert_int_equal(fcntl(fd1, F_GETFL) & O_ACCMODE, O_RDWR);
    assert_true(fcntl(fd1, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(write(fd1, "hello", 5), 5);
    close(fd1);
    close(fd2);

    char session[PATH_LEN], path[PATH_LEN];
    only_session(f, session);
    assert_int_equal(perm_bits(f->root), 0700);
    assert_int_equal(perm_bits(session), 0700);
    const char *files[] = {"1.data", "1.json", "2.data", "2.json", "lock"};
    char names[MAX_NAMES][PATH_LEN];
    assert_int_equal(dir_names(session, names, MAX_NAMES), 5);
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(names[i], files[i]); /* no temp files left */
        path_join(path, session, files[i]);
        assert_int_equal(perm_bits(path), 0600);
    }

    staging_entry *e = NULL;
    size_t n = 0;
    assert_int_equal(staging_list(s, &e, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(e[0].id, 1);
    assert_string_equal(e[0].repo, "repo");
    assert_string_equal(e[0].branch, "main");
    assert_string_equal(e[0].path, "dir/file.txt");
    assert_int_equal(e[0].state, STAGING_PENDING);
    assert_null(e[0].error);
    assert_int_equal(e[0].size, 5);
    assert_true(e[0].mtime > 0);
    path_join(path, session, "1.data");
    assert_string_equal(e[0].data_path, path);
    assert_string_equal(e[0].session, strrchr(session, '/') + 1);
    assert_int_equal(e[1].id, 2);
    assert_int_equal(e[1].state, STAGING_CLEAN);
    assert_int_equal(e[1].size, 0);
    staging_entries_free(e, n);

    assert_int_equal(staging_remove(s, 1), 0);
    assert_int_equal(staging_remove(s, 1), -ENOENT);
    assert_false(exists(path));
    assert_int_equal(staging_list(s, &e, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(e[0].id, 2);
    staging_entries_free(e, n);
    assert_int_equal(staging_remove(s, 2), 0);
    assert_int_equal(staging_list(s, &e, &n), 0);
    assert_int_equal(n, 0);
    assert_null(e);
    staging_close(s);
    assert_false(exists(session));
    assert_int_equal(count_names(f->root), 0);
}

static void test_journal_format(void **state)
{
    fixture *f = *state;
    staging *s = staging_open(f->cache, NULL);
    assert_non_null(s);
    uint64_t id = 0;
    int fd = -1;
    assert_int_equal(
        staging_create(s, "r", "b", "p", STAGING_PENDING, &id, &fd), 0);
    close(fd);
    assert_int_equal(staging_set_state(s, id, STAGING_FAILED, "HTTP 503"), 0);
    assert_int_equal(staging_set_mode(s, id, 0640), 0);
    char session[PATH_LEN], path[PATH_LEN];
    only_session(f, session);
    path_join(path, session, "1.json");
    char text[1024] = {0};
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    assert_true(fread(text, 1, sizeof(text) - 1, fp) > 0);
    fclose(fp);
    cJSON *o = cJSON_Parse(text);
    assert_non_null(o);
    assert_int_equal(cJSON_GetObjectItem(o, "version")->valueint, 2);
    assert_string_equal(cJSON_GetObjectItem(o, "repo")->valuestring, "r");
    assert_string_equal(cJSON_GetObjectItem(o, "branch")->valuestring, "b");
    assert_string_equal(cJSON_GetObjectItem(o, "path")->valuestring, "p");
    assert_string_equal(cJSON_GetObjectItem(o, "state")->valuestring,
                        "failed");
    assert_string_equal(cJSON_GetObjectItem(o, "error")->valuestring,
                        "HTTP 503");
    assert_int_equal(cJSON_GetObjectItem(o, "mode")->valueint, 0640);
    cJSON_Delete(o);
    /* Back to pending: the error goes. */
    assert_int_equal(staging_set_state(s, id, STAGING_PENDING, "ignored"), 0);
    staging_entry *e = NULL;
    size_t n = 0;
    assert_int_equal(staging_list(s, &e, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(e[0].state, STAGING_PENDING);
    assert_null(e[0].error);
    assert_int_equal(e[0].mode, 0640);
    staging_entries_free(e, n);
    /* lock, 1.data, 1.json and the spare the changes went through */
    assert_int_equal(count_names(session), 4);
    assert_int_equal(staging_remove(s, id), 0);
    staging_close(s);
}

static ino_t inode_of(const char *dir, const char *name)
{
    char path[PATH_LEN];
    path_join(path, dir, name);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    return st.st_ino;
}

/* A change of a journal makes no inode and frees none: the new journal is
 * written into the session's spare file, which then trades names with it
 * (on ext4 without a journal each new inode costs a scan of those freed in
 * the last seconds). The journal reads back as the newest change each
 * time, synced or not, and the spare is no entry. */
static void test_changes_reuse_the_spare(void **state)
{
    fixture *f = *state;
    staging *s = staging_open(f->cache, NULL);
    assert_non_null(s);
    uint64_t id = 0;
    int fd = -1;
    assert_int_equal(
        staging_create(s, "r", "b", "p", STAGING_PENDING, &id, &fd), 0);
    close(fd);
    char session[PATH_LEN];
    only_session(f, session);
    assert_int_equal(staging_set_mode(s, id, 0600), 0); /* makes the spare */
    ino_t a = inode_of(session, "1.json");
    ino_t b = inode_of(session, ".tmp-spare.json");
    assert_true(a != b);
    for (uint32_t i = 0; i < 10; i++) {
        staging_entry e = {.repo = "r", .branch = "b", .path = "p",
                           .state = STAGING_PENDING, .mode = 0700 + i};
        int rc = i % 2 ? staging_write(s, id, &e)
                       : staging_write_unsynced(s, id, &e);
        assert_int_equal(rc, 0);
        ino_t now = inode_of(session, "1.json");
        assert_true(now == a || now == b);
        assert_true(inode_of(session, ".tmp-spare.json") == (now == a ? b : a));
        staging_entry *list = NULL;
        size_t n = 0;
        assert_int_equal(staging_list(s, &list, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(list[0].mode, 0700 + i);
        staging_entries_free(list, n);
    }
    assert_int_equal(staging_remove(s, id), 0);
    staging_close(s);
    assert_int_equal(count_names(f->root), 0); /* the spare went too */
}

/* The unsynced variants write the same journal (only the fsyncs differ,
 * which staging_get_stats counts): an entry created and rewritten without
 * them lists as written, and staging_remove_clean removes it and its data
 * without a directory fsync. */
static void assert_journal_costs(staging *s, uint64_t writes, uint64_t fsyncs)
{
    staging_stats st;
    staging_get_stats(s, &st);
    assert_int_equal(st.journal_writes, writes);
    assert_int_equal(st.fsyncs, fsyncs);
}

static void test_unsynced_writes_and_clean_removal(void **state)
{
    fixture *f = *state;
    staging *s = staging_open(f->cache, NULL);
    assert_non_null(s);
    staging_entry init = {.repo = "r", .branch = "b", .path = "new.c",
                          .state = STAGING_PENDING, .base_absent = true,
                          .generation = 1, .mode = S_IFREG | 0600};
    uint64_t id = 0;
    int fd = -1;
    assert_int_equal(staging_create_entry_unsynced(s, &init, &id, &fd), 0);
    assert_int_equal(write(fd, "abc", 3), 3);
    close(fd);
    init.generation = 4;
    init.mode = S_IFREG | 0640;
    init.client_mtime = 1500000000;
    assert_int_equal(staging_write_unsynced(s, id, &init), 0);
    assert_journal_costs(s, 2, 0);
    staging_entry *e = NULL;
    size_t n = 0;
    assert_int_equal(staging_list(s, &e, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(e[0].path, "new.c");
    assert_int_equal(e[0].state, STAGING_PENDING);
    assert_true(e[0].base_absent);
    assert_int_equal(e[0].generation, 4);
    assert_int_equal(e[0].mode, S_IFREG | 0640);
    assert_int_equal(e[0].client_mtime, 1500000000);
    assert_int_equal(e[0].size, 3);
    staging_entries_free(e, n);
    init.state = STAGING_CLEAN;
    assert_int_equal(staging_write(s, id, &init), 0);
    assert_journal_costs(s, 3, 2); /* the journal and its directory */
    assert_int_equal(staging_remove_clean(s, id), 0);
    assert_journal_costs(s, 3, 2);
    assert_int_equal(staging_remove_clean(s, id), -ENOENT);
    int fd2 = -1;
    uint64_t id2 = 0;
    assert_int_equal(staging_create_entry_unsynced(s, &init, &id2, &fd2), 0);
    close(fd2);
    assert_int_equal(staging_remove(s, id2), 0);
    assert_journal_costs(s, 4, 3); /* a durable removal: its directory */
    assert_int_equal(staging_list(s, &e, &n), 0);
    assert_int_equal(n, 0);
    staging_close(s);
    assert_int_equal(count_names(f->root), 0);
}

/* The writer's mode is lakectl's Mode: S_IFREG | bits when recorded, so a
 * recorded 0000 is not 0 ("none"); the journal keeps it, special bits too. */
static void test_recorded_modes_round_trip(void **state)
{
    fixture *f = *state;
    staging *s = staging_open(f->cache, NULL);
    assert_non_null(s);
    const uint32_t modes[] = {S_IFREG | 0, S_IFREG | 04755, S_IFREG | 01644,
                              0};
    for (size_t i = 0; i < 4; i++) {
        char path[16];
        snprintf(path, sizeof(path), "p%zu", i);
        staging_entry init = {.repo = "r", .branch = "b", .path = path,
                              .state = STAGING_PENDING, .mode = modes[i],
                              .base_absent = true, .boot_id = "boot"};
        uint64_t id = 0;
        int fd = -1;
        assert_int_equal(staging_create_entry(s, &init, &id, &fd), 0);
        close(fd);
    }
    staging_close(s);
    staging_entry *e = NULL;
    size_t n = 0;
    assert_int_equal(staging_list_orphans(f->cache, &e, &n), 0);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++) {
        size_t k = (size_t)(e[i].path[1] - '0');
        assert_int_equal(e[i].mode, modes[k]);
    }
    staging_entries_free(e, n);
}

/* Version 2 fields (base, generation, seal, owner, metadata) survive a
 * crash and an orphan rewrite exactly; hostile values are refused. */
static void test_version2_round_trip(void **state)
{
    fixture *f = *state;
    staging *s = staging_open(f->cache, NULL);
    assert_non_null(s);
    staging_entry init = {.repo = "r", .branch = "b", .path = "dir/p",
                          .state = STAGING_PENDING, .mode = 0600,
                          .base = "0123456789abcdef0123456789abcdef",
                          .generation = 18446744073709551615ULL,
                          .sealed = true, .sealed_size = 5,
                          .digest = "d1g35t", .boot_id = "boot-1",
                          .client_mtime = 1900000000, .has_owner = true,
                          .uid = 1234, .gid = 4294967295u,
                          .content_type = "text/plain"};
    assert_int_equal(lakefs_metadata_set(&init.metadata, "color", "blue"), 0);
    assert_int_equal(lakefs_metadata_set(&init.metadata, "k\"ey", "v\nal"), 0);
    uint64_t id = 0;
    int fd = -1;
    assert_int_equal(staging_create_entry(s, &init, &id, &fd), 0);
    assert_int_equal(write(fd, "hello", 5), 5);
    close(fd);
    /* The daemon dies: the entry is an orphan with every field. */
    staging_close(s);
    staging_entry *e = NULL;
    size_t n = 0;
    assert_int_equal(staging_list_orphans(f->cache, &e, &n), 0);
    assert_int_equal(n, 1);
    assert_false(e[0].base_absent);
    assert_string_equal(e[0].base, init.base);
    assert_true(e[0].generation == init.generation);
    assert_true(e[0].sealed);
    assert_int_equal(e[0].sealed_size, 5);
    assert_int_equal(e[0].size, 5);
    assert_string_equal(e[0].digest, "d1g35t");
    assert_string_equal(e[0].boot_id, "boot-1");
    assert_int_equal(e[0].client_mtime, 1900000000);
    assert_true(e[0].has_owner);
    assert_int_equal(e[0].uid, 1234);
    assert_int_equal(e[0].gid, 4294967295u);
    assert_string_equal(e[0].content_type, "text/plain");
    assert_string_equal(lakefs_metadata_get(&e[0].metadata, "color"), "blue");
    assert_string_equal(lakefs_metadata_get(&e[0].metadata, "k\"ey"), "v\nal");
    /* Recovery records a conflict in the orphan's journal. */
    e[0].state = STAGING_CONFLICT;
    e[0].error = strdup("changed by another client");
    assert_int_equal(staging_write_orphan(f->cache, &e[0]), 0);
    staging_entries_free(e, n);
    assert_int_equal(staging_list_orphans(f->cache, &e, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(e[0].state, STAGING_CONFLICT);
    assert_string_equal(e[0].error, "changed by another client");
    assert_string_equal(e[0].base, init.base);
    staging_entries_free(e, n);
    lakefs_metadata_free(&init.metadata);
}

static void test_ids_unique_and_increasing(void **state)
{
    fixture *f = *state;
    staging *a = staging_open(f->cache, NULL);
    staging *b = staging_open(f->cache, NULL);
    assert_non_null(a);
    assert_non_null(b);
    uint64_t last = 0;
    for (int i = 0; i < 25; i++) {
        uint64_t id = 0;
        int fd = -1;
        assert_int_equal(
            staging_create(a, "r", "b", "p", STAGING_PENDING, &id, &fd), 0);
        assert_true(id > last);
        last = id;
        close(fd);
    }
    assert_int_equal(last, 25);
    uint64_t other = 0;
    int fd = -1;
    assert_int_equal(
        staging_create(b, "r", "b", "p", STAGING_PENDING, &other, &fd), 0);
    assert_int_equal(other, 1); /* a counter per session */
    close(fd);
    staging_entry *e = NULL;
    size_t n = 0;
    assert_int_equal(staging_list(a, &e, &n), 0);
    assert_int_equal(n, 25);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(e[i].id, i + 1); /* numeric order: 2 before 10 */
    assert_string_not_equal(e[0].session, "");
    staging_entry *eb = NULL;
    size_t nb = 0;
    assert_int_equal(staging_list(b, &eb, &nb), 0);
    assert_int_equal(nb, 1);
    assert_string_not_equal(e[0].session, eb[0].session);
    staging_entries_free(e, n);
    staging_entries_free(eb, nb);
    staging_close(a);
    staging_close(b);
    assert_int_equal(count_names(f->root), 2); /* both kept their entries */
}

static void test_crashed_daemon_leaves_orphans(void **state)
{
    fixture *f = *state;
    size_t fds = open_fds();
    crash_with_entries(f, two_entries, 2);
    /* This process's own live session, with an entry, is never an orphan
     * even though its lock file is open again by the scan. */
    staging *s = staging_open(f->cache, NULL);
    assert_non_null(s);
    uint64_t id = 0;
    int fd = -1;
    assert_int_equal(
        staging_create(s, "mine", "main", "x", STAGING_PENDING, &id, &fd), 0);
    close(fd);
    staging_entry *e = NULL;
    size_t n = 0;
    assert_int_equal(staging_list_orphans(f->cache, &e, &n), 0);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(e[i].id, i + 1);
        assert_entry(&e[i], &two_entries[i]);
        assert_string_equal(e[i].session, e[0].session);
    }
    staging_entry *own = NULL;
    size_t own_n = 0;
    assert_int_equal(staging_list(s, &own, &own_n), 0);
    assert_int_equal(own_n, 1);
    assert_string_not_equal(own[0].session, e[0].session);
    staging_entries_free(own, own_n);
    staging_entries_free(e, n);
    assert_int_equal(staging_remove(s, id), 0);
    staging_close(s);
    /* Listing is not consuming: the orphans are still there. */
    assert_int_equal(staging_list_orphans(f->cache, &e, &n), 0);
    assert_int_equal(n, 2);
    staging_entries_free(e, n);
    assert_int_equal(open_fds(), fds);
}

static void test_live_session_in_other_process(void **state)
{
    fixture *f = *state;
    int ready[2], hold[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(hold), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        close(hold[1]);
        staging *s = staging_open(f->cache, NULL);
        uint64_t id = 0;
        int fd = -1;
        if (s == NULL || staging_create(s, "r", "b", "live", STAGING_PENDING,
                                        &id, &fd) != 0)
            _exit(1);
        char c = 'x';
        if (write(ready[1], &c, 1) != 1)
            _exit(2);
        while (read(hold[0], &c, 1) > 0) /* until the parent lets go */
            ;
        _exit(0); /* dies holding the session */
    }
    close(ready[1]);
    close(hold[0]);
    char c = 0;
    assert_int_equal(read(ready[0], &c, 1), 1);
    staging_entry *e = NULL;
    size_t n = 0;
    assert_int_equal(staging_list_orphans(f->cache, &e, &n), 0);
    assert_int_equal(n, 0);
    assert_null(e);
    assert_int_equal(count_names(f->root), 1); /* and it was not touched */
    close(hold[1]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(ready[0]);
    /* Its death released the lock: now it is an orphan. */
    assert_int_equal(staging_list_orphans(f->cache, &e, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(e[0].path, "live");
    staging_entries_free(e, n);
}

static void test_setters_round_trip_through_orphans(void **state)
{
    fixture *f = *state;
    const entry_spec specs[] = {
        {"r", "b", "old/name", STAGING_PENDING, 10, "new/name", 0, false, 0,
         NULL},
        {"r", "b", "m", STAGING_PENDING, 0, NULL, 0755, false, 0, NULL},
        {"r", "b", "f", STAGING_PENDING, 1, NULL, 0, true, STAGING_FAILED,
         "lakeFS said: 500 \"internal\"\nretry later"},
        {"r", "b", "c", STAGING_PENDING, 2, NULL, 04777, true, STAGING_CLEAN,
         NULL},
        {"r", "b", "p", STAGING_CLEAN, 3, "q", 01, true, STAGING_PENDING,
         NULL},
    };
    size_t count = sizeof(specs) / sizeof(specs[0]);
    crash_with_entries(f, specs, count);
    staging_entry *e = NULL;
    size_t n = 0;
    assert_int_equal(staging_list_orphans(f->cache, &e, &n), 0);
    assert_int_equal(n, count);
    for (size_t i = 0; i < n; i++)
        assert_entry(&e[i], &specs[i]);
    staging_entries_free(e, n);
}

static void test_setters_reject_unknown_ids_and_states(void **state)
{
    fixture *f = *state;
    staging *s = staging_open(f->cache, NULL);
    assert_non_null(s);
    assert_int_equal(staging_set_path(s, 7, "x"), -ENOENT);
    assert_int_equal(staging_set_mode(s, 7, 0644), -ENOENT);
    assert_int_equal(staging_set_state(s, 7, STAGING_CLEAN, NULL), -ENOENT);
    assert_int_equal(staging_remove(s, 7), -ENOENT);
    uint64_t id = 0;
    int fd = -1;
    assert_int_equal(
        staging_create(s, "r", "b", "p", STAGING_PENDING, &id, &fd), 0);
    close(fd);
    assert_int_equal(staging_set_state(s, id, (staging_state)42, NULL),
                     -EINVAL);
    assert_int_equal(staging_set_path(s, id, NULL), -EINVAL);
    assert_int_equal(
        staging_create(s, "r", "b", "p", (staging_state)-1, &id, &fd),
        -EINVAL);
    assert_int_equal(
        staging_create(s, NULL, "b", "p", STAGING_PENDING, &id, &fd), -EINVAL);
    assert_int_equal(staging_remove(s, 1), 0);
    staging_close(s);
    assert_int_equal(count_names(f->root), 0);
}

static char long_path[4097];

static void test_hostile_strings_round_trip(void **state)
{
    fixture *f = *state;
    /* 4 KiB: "../" segments, quotes, a newline and backslashes. */
    for (size_t i = 0; i < sizeof(long_path) - 1; i++)
        long_path[i] = "../\"x\n\\y/"[i % 10];
    long_path[sizeof(long_path) - 1] = '\0';
    const entry_spec specs[] = {
        {"re po\n", "br\"anch", "../../../etc/passwd", STAGING_PENDING, 1,
         NULL, 0, false, 0, NULL},
        {"r", "b", long_path, STAGING_PENDING, 2, NULL, 0, false, 0, NULL},
        {"{\"json\":1}", "\\u0000\\", "ctl \x01\x1f\x7f tab\t", STAGING_CLEAN,
         3, NULL, 0, false, 0, NULL},
        {"données", "日本語", "bad utf-8 \xff\xfe\xc3", STAGING_PENDING, 4,
         "/leading/slash/ and spaces ", 0, true, STAGING_FAILED,
         "error with \"quotes\",\nnewlines and \xe2\x80\xa8"},
    };
    size_t count = sizeof(specs) / sizeof(specs[0]);
    crash_with_entries(f, specs, count);
    staging_entry *e = NULL;
    size_t n = 0;
    assert_int_equal(staging_list_orphans(f->cache, &e, &n), 0);
    assert_int_equal(n, count);
    for (size_t i = 0; i < n; i++)
        assert_entry(&e[i], &specs[i]);
    /* Only the entry files: no name was made from a user string. */
    char session[PATH_LEN];
    path_join(session, f->root, e[0].session);
    assert_int_equal(count_names(session), 2 * count + 1);
    assert_int_equal(count_names(f->root), 1);
    assert_int_equal(count_names(f->cache), 1);
    assert_int_equal(count_names(f->dir), 1);
    staging_entries_free(e, n);

    /* The same through this process's own session. */
    staging *s = staging_open(f->cache, NULL);
    assert_non_null(s);
    uint64_t id = 0;
    int fd = -1;
    assert_int_equal(staging_create(s, specs[0].repo, specs[0].branch,
                                    long_path, STAGING_PENDING, &id, &fd),
                     0);
    close(fd);
    assert_int_equal(staging_set_path(s, id, specs[3].path), 0);
    assert_int_equal(staging_list(s, &e, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(e[0].repo, specs[0].repo);
    assert_string_equal(e[0].branch, specs[0].branch);
    assert_string_equal(e[0].path, specs[3].path);
    staging_entries_free(e, n);
    assert_int_equal(staging_remove(s, id), 0);
    staging_close(s);
}

static void test_corrupt_journal_and_missing_data(void **state)
{
    fixture *f = *state;
    const entry_spec specs[] = {
        {"r", "b", "corrupt", STAGING_PENDING, 1, NULL, 0, false, 0, NULL},
        {"r", "b", "no-data", STAGING_PENDING, 1, NULL, 0, false, 0, NULL},
        {"r", "b", "fine", STAGING_PENDING, 7, NULL, 0, false, 0, NULL},
        {"r", "b", "future", STAGING_PENDING, 1, NULL, 0, false, 0, NULL},
        {"r", "b", "no-repo", STAGING_PENDING, 1, NULL, 0, false, 0, NULL},
        {"r", "b", "clean", STAGING_CLEAN, 1, NULL, 0, false, 0, NULL},
    };
    crash_with_entries(f, specs, 6);
    char session[PATH_LEN], path[PATH_LEN];
    only_session(f, session);
    path_join(path, session, "1.json");
    write_file(path, "{\"version\":1,\"repo\":\"r\",\"bra"); /* torn */
    path_join(path, session, "2.data");
    assert_int_equal(unlink(path), 0);
    path_join(path, session, "6.data");
    assert_int_equal(unlink(path), 0);
    path_join(path, session, "4.json");
    write_file(path, "{\"version\":3,\"repo\":\"r\",\"branch\":\"b\","
                     "\"path\":\"future\",\"state\":\"pending\"}");
    path_join(path, session, "5.json");
    write_file(path, "{\"version\":1,\"branch\":\"b\",\"path\":\"p\","
                     "\"state\":\"pending\",\"error\":null,\"mode\":0}");
    /* Leftovers a crash can leave: a journal being written, data never
     * acknowledged. */
    path_join(path, session, ".tmp-3.json");
    write_file(path, "{\"version\":1,");
    path_join(path, session, "9.data");
    write_file(path, "unacknowledged");

    staging_entry *e = NULL;
    size_t n = 0;
    assert_int_equal(staging_list_orphans(f->cache, &e, &n), 0);
    assert_int_equal(n, 6);
    assert_int_equal(e[0].state, STAGING_FAILED);
    assert_non_null(strstr(e[0].error, "journal"));
    assert_null(e[0].repo);
    assert_null(e[0].path);
    assert_int_equal(e[0].size, 1); /* the data is still there to save */
    assert_int_equal(e[1].state, STAGING_FAILED);
    assert_non_null(strstr(e[1].error, "data file missing"));
    assert_string_equal(e[1].path, "no-data"); /* the journal was fine */
    assert_int_equal(e[1].size, 0);
    assert_int_equal(e[2].state, STAGING_PENDING);
    assert_null(e[2].error);
    assert_int_equal(e[2].size, 7);
    assert_int_equal(e[3].state, STAGING_FAILED);
    assert_non_null(strstr(e[3].error, "version"));
    assert_int_equal(e[4].state, STAGING_FAILED);
    assert_non_null(strstr(e[4].error, "repo"));
    assert_null(e[4].repo);
    /* A clean entry needs no data: recovery drops it, nothing failed. */
    assert_int_equal(e[5].state, STAGING_CLEAN);
    assert_null(e[5].error);
    assert_int_equal(e[5].size, 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(e[i].id, i + 1);
        assert_non_null(e[i].data_path);
    }
    staging_entries_free(e, n);
    path_join(path, session, ".tmp-3.json");
    assert_false(exists(path)); /* cleaned */
    path_join(path, session, "9.data");
    assert_true(exists(path)); /* ignored, kept until the session goes */
}

static void test_remove_orphan(void **state)
{
    fixture *f = *state;
    size_t fds = open_fds();
    crash_with_entries(f, two_entries, 2);
    char session[PATH_LEN], stray[PATH_LEN];
    only_session(f, session);
    path_join(stray, session, "9.data");
    write_file(stray, "never acknowledged");
    staging_entry *e = NULL;
    size_t n = 0;
    assert_int_equal(staging_list_orphans(f->cache, &e, &n), 0);
    assert_int_equal(n, 2);
    char data0[PATH_LEN];
    assert_true(strlen(e[0].data_path) < sizeof(data0));
    strcpy(data0, e[0].data_path);

    assert_int_equal(staging_remove_orphan(f->cache, &e[0]), 0);
    assert_false(exists(data0));
    assert_true(exists(session));
    assert_int_equal(count_names(session), 4); /* 2.data 2.json 9.data lock */
    assert_int_equal(staging_remove_orphan(f->cache, &e[1]), 0);
    assert_false(exists(session)); /* the last entry took the session */
    assert_int_equal(count_names(f->root), 0);
    assert_int_equal(staging_remove_orphan(f->cache, &e[1]), -ENOENT);
    staging_entries_free(e, n);
    assert_int_equal(staging_list_orphans(f->cache, &e, &n), 0);
    assert_int_equal(n, 0);

    /* Never an entry of a live session. */
    staging *s = staging_open(f->cache, NULL);
    uint64_t id = 0;
    int fd = -1;
    assert_int_equal(
        staging_create(s, "r", "b", "p", STAGING_PENDING, &id, &fd), 0);
    close(fd);
    assert_int_equal(staging_list(s, &e, &n), 0);
    assert_int_equal(staging_remove_orphan(f->cache, &e[0]), -EBUSY);
    assert_true(exists(e[0].data_path));
    staging_entry bad = e[0];
    bad.session = "../escape";
    assert_int_equal(staging_remove_orphan(f->cache, &bad), -EINVAL);
    staging_entries_free(e, n);
    assert_int_equal(staging_remove(s, id), 0);
    staging_close(s);
    assert_int_equal(open_fds(), fds);
}

static void test_close_removes_only_empty_sessions(void **state)
{
    fixture *f = *state;
    staging *s = staging_open(f->cache, NULL);
    assert_non_null(s);
    char session[PATH_LEN];
    only_session(f, session);
    staging_close(s);
    assert_false(exists(session));

    s = staging_open(f->cache, NULL);
    uint64_t id = 0;
    int fd = -1;
    assert_int_equal(
        staging_create(s, "r", "b", "kept", STAGING_PENDING, &id, &fd), 0);
    assert_int_equal(write(fd, "data", 4), 4);
    close(fd);
    only_session(f, session);
    staging_close(s);
    assert_true(exists(session));
    assert_int_equal(count_names(session), 3); /* lock, 1.data, 1.json */
    /* Closing released the lock: the next mount recovers the entry. */
    staging_entry *e = NULL;
    size_t n = 0;
    assert_int_equal(staging_list_orphans(f->cache, &e, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(e[0].path, "kept");
    assert_int_equal(e[0].size, 4);
    staging_entries_free(e, n);
}

static void test_lockless_and_empty_orphan_sessions(void **state)
{
    fixture *f = *state;
    crash_with_entries(f, two_entries, 1);
    crash_with_entries(f, two_entries, 0); /* an empty dead session */
    assert_int_equal(count_names(f->root), 2);
    char names[MAX_NAMES][PATH_LEN], path[PATH_LEN];
    assert_int_equal(dir_names(f->root, names, MAX_NAMES), 2);
    /* The first session (older name) has the entry; lose its lock file,
     * as a crash between mkdir and the lock would. */
    path_join(path, f->root, names[0]);
    path_join(path, path, "lock");
    assert_int_equal(unlink(path), 0);
    staging_entry *e = NULL;
    size_t n = 0;
    assert_int_equal(staging_list_orphans(f->cache, &e, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(e[0].session, names[0]);
    assert_entry(&e[0], &two_entries[0]);
    path_join(path, f->root, names[1]);
    assert_false(exists(path)); /* the empty orphan was cleaned */
    assert_int_equal(staging_remove_orphan(f->cache, &e[0]), 0);
    staging_entries_free(e, n);
    assert_int_equal(count_names(f->root), 0);
}

static void test_planted_symlinks_are_not_followed(void **state)
{
    fixture *f = *state;
    char outside[PATH_LEN], target[PATH_LEN], path[PATH_LEN];
    path_join(outside, f->dir, "outside");
    assert_int_equal(mkdir(outside, 0700), 0);
    path_join(target, outside, "1.json");
    write_file(target, "{\"version\":1,\"repo\":\"r\",\"branch\":\"b\","
                       "\"path\":\"p\",\"state\":\"pending\"}");
    path_join(target, outside, "1.data");
    write_file(target, "precious");
    crash_with_entries(f, two_entries, 1);
    char session[PATH_LEN];
    only_session(f, session);
    /* A session that is a symlink to a directory outside is skipped. */
    path_join(path, f->root, "evil");
    assert_int_equal(symlink(outside, path), 0);
    /* A data file that is a symlink is reported, and removing the entry
     * removes the link, never its target. */
    path_join(path, session, "1.data");
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink(target, path), 0);
    staging_entry *e = NULL;
    size_t n = 0;
    assert_int_equal(staging_list_orphans(f->cache, &e, &n), 0);
    assert_int_equal(n, 1);
    assert_string_not_equal(e[0].session, "evil");
    assert_int_equal(e[0].state, STAGING_FAILED);
    assert_non_null(strstr(e[0].error, "regular file"));
    assert_int_equal(staging_remove_orphan(f->cache, &e[0]), 0);
    staging_entries_free(e, n);
    assert_true(exists(target));
    assert_int_equal(count_names(outside), 2);
    path_join(path, f->root, "evil");
    assert_int_equal(unlink(path), 0);
    assert_int_equal(count_names(f->root), 0);
}

static void test_bad_arguments_and_missing_dirs(void **state)
{
    fixture *f = *state;
    int err = 0;
    assert_null(staging_open(NULL, &err));
    assert_int_equal(err, -EINVAL);
    assert_null(staging_open("", &err));
    assert_int_equal(err, -EINVAL);
    char missing[PATH_LEN];
    path_join(missing, f->cache, "a/b");
    assert_null(staging_open(missing, &err));
    assert_int_equal(err, -ENOENT);
    staging_entry *e = (staging_entry *)1;
    size_t n = 9;
    assert_int_equal(staging_list_orphans(f->cache, &e, &n), 0);
    assert_int_equal(n, 0);
    assert_null(e);
    assert_int_equal(staging_list_orphans(NULL, &e, &n), -EINVAL);
    staging_close(NULL);
    staging_entries_free(NULL, 0);
    /* A staging directory that is a symlink is refused. */
    char elsewhere[PATH_LEN];
    path_join(elsewhere, f->dir, "elsewhere");
    assert_int_equal(mkdir(elsewhere, 0700), 0);
    assert_int_equal(mkdir(f->cache, 0700), 0);
    assert_int_equal(symlink(elsewhere, f->root), 0);
    assert_null(staging_open(f->cache, &err));
    assert_true(err == -ENOTDIR || err == -ELOOP); /* O_NOFOLLOW's answer */
    assert_int_equal(count_names(elsewhere), 0);
}

/* A staging directory another user could write to (or a symbolic link in
 * its place) is refused: staged bytes and journals must be the user's
 * alone. */
static void test_shared_staging_directory_refused(void **state)
{
    fixture *f = *state;
    assert_int_equal(mkdir(f->cache, 0700), 0);
    assert_int_equal(mkdir(f->root, 0700), 0);
    assert_int_equal(chmod(f->root, 0777), 0);
    int err = 0;
    assert_null(staging_open(f->cache, &err));
    assert_int_equal(err, -EPERM);
    assert_int_equal(chmod(f->root, 0770), 0);
    assert_null(staging_open(f->cache, &err));
    assert_int_equal(err, -EPERM);
    assert_int_equal(count_names(f->root), 0); /* no session was made */
    assert_int_equal(chmod(f->root, 0700), 0);
    staging *s = staging_open(f->cache, &err);
    assert_non_null(s);
    staging_close(s);
    /* A symlink where the staging directory goes is not followed. */
    char elsewhere[PATH_LEN];
    path_join(elsewhere, f->dir, "elsewhere");
    assert_int_equal(mkdir(elsewhere, 0700), 0);
    testutil_remove_tree(f->root);
    assert_int_equal(symlink(elsewhere, f->root), 0);
    assert_null(staging_open(f->cache, &err));
    assert_int_equal(count_names(elsewhere), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_list_remove, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_journal_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes_reuse_the_spare, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unsynced_writes_and_clean_removal,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_version2_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recorded_modes_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids_unique_and_increasing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_crashed_daemon_leaves_orphans,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_session_in_other_process,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_setters_round_trip_through_orphans, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_setters_reject_unknown_ids_and_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_strings_round_trip, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_journal_and_missing_data,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_orphan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_removes_only_empty_sessions,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_lockless_and_empty_orphan_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_planted_symlinks_are_not_followed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_staging_directory_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments_and_missing_dirs,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
