/*
 * client_exercise.c - drives the lakeFS C client against a live server for
 * the tests and the demo: the getting-started walkthrough, a pass over
 * every client operation with checks, and single operations that the
 * fault-injection tests time with the server's request counters
 * (presigned multipart ones included, and upload_fd as a mount runs it).
 * Endpoint and credentials come from the LAKECTL_* variables (config.c).
 */
#include "config.h"
#include "lakefs.h"
#include "upload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int failures;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "FAILED %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
            failures++;                                                       \
            return 1;                                                         \
        }                                                                     \
    } while (0)

/* A call that must succeed; reports the errno and the server's message. */
#define MUST(call)                                                            \
    do {                                                                      \
        lakefs_error must_err_ = {0};                                         \
        lakefs_error *err = &must_err_;                                       \
        int must_rc_ = (call);                                                \
        CHECK(must_rc_ == 0, "%s (HTTP %d: %s)", strerror(-must_rc_),         \
              must_err_.status, must_err_.message);                           \
    } while (0)

static void step(const char *what)
{
    printf("- %s\n", what);
    fflush(stdout);
}

static int temp_file_with(const char *content, size_t len)
{
    char path[] = "/tmp/lakefuse-exercise-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    unlink(path);
    if (write(fd, content, len) != (ssize_t)len) {
        close(fd);
        return -1;
    }
    return fd;
}

static int upload_string(lakefs_client *c, const char *repo,
                         const char *branch, const char *path,
                         const char *content, const lakefs_metadata *md)
{
    int fd = temp_file_with(content, strlen(content));
    CHECK(fd >= 0, "temp file: %s", strerror(errno));
    lakefs_upload_options opt = {.content_type = "text/plain", .metadata = md};
    lakefs_object_stats st;
    lakefs_error e = {0};
    int rc = lakefs_upload_object_fd(c, repo, branch, path, fd,
                                     (int64_t)strlen(content), &opt, &st, &e);
    close(fd);
    CHECK(rc == 0, "upload %s: %s", path, e.message);
    CHECK(st.size_bytes == (int64_t)strlen(content), "size %lld",
          (long long)st.size_bytes);
    lakefs_object_stats_free(&st);
    return 0;
}

static size_t diff_count(lakefs_diff_list *d, lakefs_diff_type type)
{
    size_t n = 0;
    for (size_t i = 0; i < d->count; i++)
        n += d->items[i].type == type;
    return n;
}

/* Where the repositories this driver creates live: the test server says
 * (a local:// namespace for lakeFS's local blockstore, s3:// otherwise). */
static const char *namespace_prefix(void)
{
    const char *p = getenv("LAKEFUSE_TEST_NAMESPACE_PREFIX");
    return p && *p ? p : "s3://example-bucket/";
}

/* ------------------------------------------------------------------ */
/* The getting-started walkthrough of the lakeFS Python SDK docs.      */

static int walkthrough(lakefs_client *c, const char *repo)
{
    const char *branch = "experiment-aggregations1";
    char ns[300];
    snprintf(ns, sizeof(ns), "%s%s", namespace_prefix(), repo);

    step("create repository");
    lakefs_repository r;
    MUST(lakefs_create_repository(c, repo, ns, "main", &r, err));
    CHECK(strcmp(r.default_branch, "main") == 0, "%s", r.default_branch);
    lakefs_repository_free(&r);

    step("list branches");
    lakefs_ref_list branches;
    MUST(lakefs_list_branches(c, repo, NULL, &branches, err));
    CHECK(branches.count == 1 && strcmp(branches.items[0].id, "main") == 0,
          "%zu branches", branches.count);
    lakefs_ref_list_free(&branches);

    step("create branch " "experiment-aggregations1");
    char *source = NULL;
    MUST(lakefs_create_branch(c, repo, branch, "main", &source, err));
    CHECK(strlen(source) == 64, "commit id '%s'", source);
    free(source);

    step("upload test.txt");
    if (upload_string(c, repo, branch, "test.txt", "hello lakeFS\n", NULL))
        return 1;

    step("diff branch: one added");
    lakefs_diff_list d;
    MUST(lakefs_diff_branch(c, repo, branch, NULL, &d, err));
    CHECK(d.count == 1 && diff_count(&d, LAKEFS_DIFF_ADDED) == 1 &&
              strcmp(d.items[0].path, "test.txt") == 0,
          "%zu changes", d.count);
    lakefs_diff_list_free(&d);

    step("commit with metadata");
    lakefs_metadata md = {0};
    lakefs_metadata_set(&md, "using", "c_client");
    lakefs_commit commit;
    MUST(lakefs_commit_branch(c, repo, branch, "Add some data!", &md, false,
                              &commit, err));
    lakefs_metadata_free(&md);
    CHECK(strcmp(commit.message, "Add some data!") == 0, "%s",
          commit.message);
    CHECK(lakefs_metadata_get(&commit.metadata, "using") &&
              strcmp(lakefs_metadata_get(&commit.metadata, "using"),
                     "c_client") == 0,
          "metadata lost");
    CHECK(commit.parent_count == 1, "%zu parents", commit.parent_count);
    printf("  commit %s\n", commit.id);
    lakefs_commit_free(&commit);

    step("diff branch: empty");
    MUST(lakefs_diff_branch(c, repo, branch, NULL, &d, err));
    CHECK(d.count == 0, "%zu changes", d.count);
    lakefs_diff_list_free(&d);

    step("diff refs main...branch: one added");
    MUST(lakefs_diff_refs(c, repo, "main", branch, NULL, &d, err));
    CHECK(d.count == 1 && diff_count(&d, LAKEFS_DIFF_ADDED) == 1, "%zu",
          d.count);
    lakefs_diff_list_free(&d);

    step("merge into main");
    char *reference = NULL;
    MUST(lakefs_merge(c, repo, branch, "main", NULL, &reference, err));
    CHECK(reference && strlen(reference) == 64, "reference '%s'",
          reference ? reference : "(null)");
    printf("  merge commit %s\n", reference);
    free(reference);

    step("the merge added one object: diff refs main~1...main");
    MUST(lakefs_diff_refs(c, repo, "main~1", "main", NULL, &d, err));
    CHECK(d.count == 1 && diff_count(&d, LAKEFS_DIFF_ADDED) == 1, "%zu",
          d.count);
    lakefs_diff_list_free(&d);

    step("diff refs main...branch: empty");
    MUST(lakefs_diff_refs(c, repo, "main", branch, NULL, &d, err));
    CHECK(d.count == 0, "%zu changes", d.count);
    lakefs_diff_list_free(&d);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Every client operation once, each result checked.                   */

static int exercise_reads(lakefs_client *c, const char *repo)
{
    MUST(lakefs_health_check(c, err));
    lakefs_config cfg;
    MUST(lakefs_get_config(c, &cfg, err));
    CHECK(lakefs_config_storage_for(&cfg, NULL) != NULL, "no storage");
    lakefs_config_free(&cfg);
    lakefs_user u;
    MUST(lakefs_get_current_user(c, &u, err));
    lakefs_user_free(&u);

    lakefs_repository_list repos;
    lakefs_list_params by_name = {.prefix = repo};
    MUST(lakefs_list_repositories(c, &by_name, &repos, err));
    bool found = false;
    for (size_t i = 0; i < repos.count; i++)
        found |= strcmp(repos.items[i].id, repo) == 0;
    lakefs_repository_list_free(&repos);
    CHECK(found, "repository %s not listed", repo);
    lakefs_repository r;
    MUST(lakefs_get_repository(c, repo, &r, err));
    lakefs_repository_free(&r);

    lakefs_ref_list branches;
    MUST(lakefs_list_branches(c, repo, NULL, &branches, err));
    CHECK(branches.count == 1 && strcmp(branches.items[0].id, "main") == 0,
          "%zu branches", branches.count);
    lakefs_ref_list_free(&branches);
    lakefs_ref b;
    MUST(lakefs_get_branch(c, repo, "main", &b, err));
    lakefs_ref tag;
    MUST(lakefs_create_tag(c, repo, "v1", b.commit_id, &tag, err));
    CHECK(strcmp(tag.commit_id, b.commit_id) == 0, "tag %s", tag.commit_id);
    lakefs_ref_free(&tag);
    lakefs_ref_list tags;
    MUST(lakefs_list_tags(c, repo, NULL, &tags, err));
    CHECK(tags.count == 1 && strcmp(tags.items[0].id, "v1") == 0, "%zu",
          tags.count);
    lakefs_ref_list_free(&tags);
    lakefs_commit cm;
    MUST(lakefs_get_commit(c, repo, "v1", &cm, err));
    CHECK(strcmp(cm.id, b.commit_id) == 0, "v1 -> %s", cm.id);
    lakefs_commit_free(&cm);
    lakefs_commit_list log;
    MUST(lakefs_log_commits(c, repo, "main", NULL, &log, err));
    CHECK(log.count >= 1 && strcmp(log.items[0].id, b.commit_id) == 0,
          "log of %zu", log.count);
    lakefs_commit_list_free(&log);
    lakefs_ref_free(&b);
    return 0;
}

static int exercise_objects(lakefs_client *c, const char *repo)
{
    MUST(lakefs_create_branch(c, repo, "dev", "main", NULL, err));
    lakefs_metadata md = {0};
    lakefs_metadata_set(&md, "color", "blue");
    lakefs_metadata_set(&md, "::lakefs::client-mtime", "1700000000");
    int bad = upload_string(c, repo, "dev", "dir/a.txt", "0123456789", &md);
    lakefs_metadata_free(&md);
    if (bad || upload_string(c, repo, "dev", "dir/b.txt", "bee", NULL) ||
        upload_string(c, repo, "dev", "top.txt", "top", NULL))
        return 1;

    lakefs_object_stats st;
    MUST(lakefs_stat_object(c, repo, "dev", "dir/a.txt", false, &st, err));
    CHECK(st.size_bytes == 10, "size");
    CHECK(lakefs_metadata_get(&st.metadata, "color") &&
              lakefs_metadata_get(&st.metadata, "::lakefs::client-mtime"),
          "user metadata not stored");
    lakefs_object_stats_free(&st);

    lakefs_list_params lp = {.delimiter = "/", .amount = 1};
    lakefs_object_iter it;
    CHECK(lakefs_object_iter_init(&it, c, repo, "dev", &lp) == 0, "iter");
    const lakefs_object_stats *o;
    int n = 0, rc;
    lakefs_error e = {0};
    while ((rc = lakefs_object_iter_next(&it, &o, &e)) == 1)
        n++;
    uint64_t pages = it.pages_fetched;
    lakefs_object_iter_free(&it);
    CHECK(rc == 0 && n == 2, "iterated %d entries (rc %d: %s)", n, rc,
          e.message); /* "dir/" and "top.txt" */
    CHECK(pages == 2, "%llu pages", (unsigned long long)pages);

    char buf[16];
    size_t got;
    MUST(lakefs_get_object_range(c, repo, "dev", "dir/a.txt", false, 2, 4,
                                 buf, &got, err));
    CHECK(got == 4 && memcmp(buf, "2345", 4) == 0, "range read");
    MUST(lakefs_get_object_range(c, repo, "dev", "dir/a.txt", true, 8, 8,
                                 buf, &got, err));
    CHECK(got == 2 && memcmp(buf, "89", 2) == 0, "presigned range read");
    MUST(lakefs_get_object_range(c, repo, "dev", "dir/a.txt", false, 10, 4,
                                 buf, &got, err));
    CHECK(got == 0, "read past the end gave %zu", got);
    MUST(lakefs_stat_object(c, repo, "dev", "dir/a.txt", true, &st, err));
    CHECK(st.physical_address_expiry > 0, "not presigned");
    MUST(lakefs_get_url_range(c, st.physical_address, 0, 3, buf, &got, err));
    CHECK(got == 3 && memcmp(buf, "012", 3) == 0, "url range");
    lakefs_object_stats_free(&st);

    int fd = temp_file_with("", 0);
    int64_t size = 0;
    MUST(lakefs_get_object_to_fd(c, repo, "dev", "dir/b.txt", true, fd,
                                 &size, err));
    CHECK(size == 3 && pread(fd, buf, 3, 0) == 3 &&
              memcmp(buf, "bee", 3) == 0,
          "download to fd");
    close(fd);

    MUST(lakefs_copy_object(c, repo, "dev", "dir/a.txt", NULL, "copy.txt",
                            NULL, err));
    lakefs_metadata set = {0};
    lakefs_metadata_set(&set, "color", "red");
    rc = lakefs_update_object_user_metadata(c, repo, "dev", "copy.txt", &set,
                                            &e);
    lakefs_metadata_free(&set);
    CHECK(rc == 0, "update metadata: %s", e.message);
    MUST(lakefs_stat_object(c, repo, "dev", "copy.txt", false, &st, err));
    CHECK(st.size_bytes == 10 &&
              strcmp(lakefs_metadata_get(&st.metadata, "color"), "red") == 0,
          "copy/metadata");
    lakefs_object_stats_free(&st);
    return 0;
}

static int exercise_staging(lakefs_client *c, const char *repo)
{
    const char *data = "staged through the object store";
    lakefs_staging_location loc;
    MUST(lakefs_get_physical_address(c, repo, "dev", "staged.txt", true, &loc,
                                     err));
    CHECK(loc.presigned_url != NULL, "no presigned url");
    int fd = temp_file_with(data, strlen(data));
    char *checksum = NULL;
    MUST(lakefs_put_presigned_fd(c, loc.presigned_url, fd,
                                 (int64_t)strlen(data), "text/plain",
                                 &checksum, err));
    close(fd);
    lakefs_object_stats st;
    MUST(lakefs_link_physical_address(c, repo, "dev", "staged.txt", &loc,
                                      checksum, (int64_t)strlen(data), NULL,
                                      &st, err));
    CHECK(strcmp(st.checksum, checksum) == 0, "checksum %s", st.checksum);
    free(checksum);
    lakefs_object_stats_free(&st);
    lakefs_staging_location_free(&loc);
    char buf[64];
    size_t got;
    MUST(lakefs_get_object_range(c, repo, "dev", "staged.txt", false, 0,
                                 sizeof(buf), buf, &got, err));
    CHECK(got == strlen(data) && memcmp(buf, data, got) == 0, "staged data");
    return 0;
}

/* Presigned multipart: one part read at a file offset, completed with
 * metadata; a second upload aborted, after which it cannot complete. On a
 * branch of its own, so the versioning step below sees only dev. */
static int exercise_multipart(lakefs_client *c, const char *repo)
{
    const char *file = "skipped|multipart payload";
    const char *data = strchr(file, '|') + 1;
    int64_t offset = data - file, size = (int64_t)strlen(data);
    MUST(lakefs_create_branch(c, repo, "mpu", "main", NULL, err));
    lakefs_multipart_upload mpu;
    MUST(lakefs_create_presign_multipart(c, repo, "mpu", "big.bin", 1, &mpu,
                                         err));
    CHECK(mpu.url_count == 1 && mpu.upload_id && mpu.physical_address,
          "%zu presigned URLs", mpu.url_count);
    int fd = temp_file_with(file, strlen(file));
    char *etag = NULL;
    /* A fresh URL for part 1, as after an expired one (uploadPart). */
    char *fresh = NULL;
    MUST(lakefs_upload_part_url(c, repo, "mpu", "big.bin", mpu.upload_id, 1,
                                mpu.physical_address, &fresh, err));
    CHECK(fresh && strncmp(fresh, "http", 4) == 0, "uploadPart URL");
    MUST(lakefs_put_presigned_range_fd(c, fresh, fd, offset, size, &etag,
                                       err));
    free(fresh);
    close(fd);
    lakefs_metadata md = {0};
    lakefs_metadata_set(&md, "::lakefs::client-mtime", "1700000000");
    lakefs_upload_options opt = {.content_type = "text/plain",
                                 .metadata = &md};
    lakefs_upload_part part = {1, etag};
    lakefs_object_stats st;
    MUST(lakefs_complete_presign_multipart(c, repo, "mpu", "big.bin",
                                           mpu.upload_id, mpu.physical_address,
                                           &part, 1, &opt, &st, err));
    lakefs_metadata_free(&md);
    free(etag);
    lakefs_multipart_upload_free(&mpu);
    CHECK(st.size_bytes == size && strcmp(st.path, "big.bin") == 0 &&
              lakefs_metadata_get(&st.metadata, "::lakefs::client-mtime"),
          "completed object: %lld bytes", (long long)st.size_bytes);
    lakefs_object_stats_free(&st);
    char buf[64];
    size_t got;
    MUST(lakefs_get_object_range(c, repo, "mpu", "big.bin", false, 0,
                                 sizeof(buf), buf, &got, err));
    CHECK(got == (size_t)size && memcmp(buf, data, got) == 0,
          "multipart data");

    MUST(lakefs_create_presign_multipart(c, repo, "mpu", "gone.bin", 1, &mpu,
                                         err));
    MUST(lakefs_abort_presign_multipart(
        c, repo, "mpu", "gone.bin", mpu.upload_id, mpu.physical_address, err));
    lakefs_error e = {0};
    part.etag = "\"d41d8cd98f00b204e9800998ecf8427e\"";
    int rc = lakefs_complete_presign_multipart(
        c, repo, "mpu", "gone.bin", mpu.upload_id, mpu.physical_address, &part,
        1, NULL, NULL, &e);
    lakefs_multipart_upload_free(&mpu);
    /* The bundled server answers 404; real lakeFS 500 (its S3 adapter
     * passes NoSuchUpload on unmapped): an error either way. */
    CHECK(rc == -ENOENT || rc == -EIO,
          "completing an aborted upload gave %d (%s)", rc, e.message);
    return 0;
}

static int exercise_versioning(lakefs_client *c, const char *repo)
{
    MUST(lakefs_delete_object(c, repo, "dev", "top.txt", err));
    const char *paths[] = {"dir/b.txt", "no-such-object"};
    MUST(lakefs_delete_objects(c, repo, "dev", paths, 2, NULL, err));
    lakefs_diff_list d;
    MUST(lakefs_diff_branch(c, repo, "dev", NULL, &d, err));
    CHECK(d.count == 3, "%zu uncommitted (dir/a.txt copy.txt staged.txt)",
          d.count);
    lakefs_diff_list_free(&d);
    MUST(lakefs_reset_branch(c, repo, "dev", LAKEFS_RESET_OBJECT,
                             "staged.txt", err));
    MUST(lakefs_diff_branch(c, repo, "dev", NULL, &d, err));
    CHECK(d.count == 2, "%zu after reset", d.count);
    lakefs_diff_list_free(&d);
    lakefs_error e = {0};
    lakefs_commit cm;
    MUST(lakefs_commit_branch(c, repo, "dev", "exercise", NULL, false, &cm,
                              err));
    lakefs_commit_free(&cm);
    int rc = lakefs_commit_branch(c, repo, "dev", "again", NULL, false, NULL,
                                  &e);
    CHECK(rc == -EINVAL && e.status == 400, "empty commit gave %d", rc);
    MUST(lakefs_merge(c, repo, "dev", "main", NULL, NULL, err));
    MUST(lakefs_diff_refs(c, repo, "main", "dev", NULL, &d, err));
    CHECK(d.count == 0, "%zu after merge", d.count);
    lakefs_diff_list_free(&d);
    MUST(lakefs_create_branch(c, repo, "scratch", "main~1", NULL, err));
    MUST(lakefs_delete_branch(c, repo, "scratch", err));
    rc = lakefs_get_branch(c, repo, "scratch", NULL, &e);
    CHECK(rc == -ENOENT, "deleted branch still there (%d)", rc);
    return 0;
}

static int exercise(lakefs_client *c, const char *repo)
{
    char ns[300];
    snprintf(ns, sizeof(ns), "%s%s", namespace_prefix(), repo);
    MUST(lakefs_create_repository(c, repo, ns, NULL, NULL, err));
    step("reads");
    if (exercise_reads(c, repo))
        return 1;
    step("objects");
    if (exercise_objects(c, repo))
        return 1;
    step("staging");
    if (exercise_staging(c, repo))
        return 1;
    step("multipart");
    if (exercise_multipart(c, repo))
        return 1;
    step("versioning");
    return exercise_versioning(c, repo);
}

/* ------------------------------------------------------------------ */
/* Single operations for the fault-injection tests.                    */

static int report(int rc, const lakefs_error *e)
{
    if (rc)
        printf("error %d %s status=%d message=%s\n", rc, strerror(-rc),
               e->status, e->message);
    return rc ? 3 : 0;
}

static int cmd_stat(lakefs_client *c, char **a)
{
    lakefs_object_stats st;
    lakefs_error e = {0};
    int rc = lakefs_stat_object(c, a[0], a[1], a[2], false, &st, &e);
    if (!rc)
        printf("size=%lld checksum=%s\n", (long long)st.size_bytes,
               st.checksum);
    lakefs_object_stats_free(&st);
    return report(rc, &e);
}

/* get REPO REF PATH OFFSET LEN [presign]: the bytes to stdout. */
static int cmd_get(lakefs_client *c, char **a, int n)
{
    size_t len = strtoul(a[4], NULL, 10);
    char *buf = malloc(len ? len : 1);
    size_t got = 0;
    lakefs_error e = {0};
    int rc = lakefs_get_object_range(c, a[0], a[1], a[2],
                                     n > 5 && strcmp(a[5], "presign") == 0,
                                     strtoull(a[3], NULL, 10), len, buf, &got,
                                     &e);
    if (!rc)
        fwrite(buf, 1, got, stdout);
    free(buf);
    return report(rc, &e);
}

/* upload REPO BRANCH PATH SIZE: the body is stdin (a file or a pipe). */
static int cmd_upload(lakefs_client *c, char **a)
{
    lakefs_error e = {0};
    int rc = lakefs_upload_object_fd(c, a[0], a[1], a[2], 0,
                                     strtoll(a[3], NULL, 10), NULL, NULL, &e);
    return report(rc, &e);
}

/* Size of stdin, which must be a regular file (parts are read with
 * pread at their offsets). */
static int stdin_size(int64_t *size)
{
    struct stat st;
    if (fstat(0, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "client_exercise: stdin must be a regular file\n");
        return -1;
    }
    *size = (int64_t)st.st_size;
    return 0;
}

/* mpu REPO BRANCH PATH PART_SIZE <file: the client's multipart calls one
 * by one. Parts go last first (any order is allowed), so a fault on the
 * first PUT hits a part at a non-zero offset; completion lists them in
 * ascending order. */
static int cmd_mpu(lakefs_client *c, char **a)
{
    int64_t size, part_size = strtoll(a[3], NULL, 10);
    if (stdin_size(&size) || part_size <= 0)
        return 2;
    int count = (int)((size + part_size - 1) / part_size);
    lakefs_error e = {0};
    lakefs_multipart_upload mpu;
    int rc =
        lakefs_create_presign_multipart(c, a[0], a[1], a[2], count, &mpu, &e);
    if (rc)
        return report(rc, &e);
    if (mpu.url_count != (size_t)count) {
        fprintf(stderr, "%zu URLs for %d parts\n", mpu.url_count, count);
        lakefs_multipart_upload_free(&mpu);
        return 2;
    }
    lakefs_upload_part *parts = calloc((size_t)count, sizeof(*parts));
    char **etags = calloc((size_t)count, sizeof(*etags));
    for (int i = count - 1; rc == 0 && i >= 0; i--) {
        int64_t offset = (int64_t)i * part_size;
        int64_t len = size - offset < part_size ? size - offset : part_size;
        rc = lakefs_put_presigned_range_fd(c, mpu.presigned_urls[i], 0, offset,
                                           len, &etags[i], &e);
        parts[i] = (lakefs_upload_part){i + 1, etags[i]};
    }
    lakefs_metadata md = {0};
    lakefs_metadata_set(&md, "::lakefs::client-mtime", "1700000000");
    lakefs_metadata_set(&md, "owner", "exercise");
    lakefs_upload_options opt = {.content_type = "application/x-exercise",
                                 .metadata = &md};
    lakefs_object_stats st = {0};
    if (rc == 0)
        rc = lakefs_complete_presign_multipart(
            c, a[0], a[1], a[2], mpu.upload_id, mpu.physical_address, parts,
            (size_t)count, &opt, &st, &e);
    if (rc == 0)
        printf("parts=%d size=%lld checksum=%s\n", count,
               (long long)st.size_bytes, st.checksum);
    lakefs_object_stats_free(&st);
    lakefs_metadata_free(&md);
    for (int i = 0; i < count; i++)
        free(etags[i]);
    free(etags);
    free(parts);
    lakefs_multipart_upload_free(&mpu);
    return report(rc, &e);
}

/* mpu-abort REPO BRANCH PATH <file: create, PUT the file as part 1,
 * abort; then completing it must fail. */
static int cmd_mpu_abort(lakefs_client *c, char **a)
{
    int64_t size;
    if (stdin_size(&size))
        return 2;
    lakefs_error e = {0};
    lakefs_multipart_upload mpu;
    int rc = lakefs_create_presign_multipart(c, a[0], a[1], a[2], 1, &mpu, &e);
    char *etag = NULL;
    if (rc == 0)
        rc = lakefs_put_presigned_range_fd(c, mpu.presigned_urls[0], 0, 0,
                                           size, &etag, &e);
    if (rc == 0)
        rc = lakefs_abort_presign_multipart(c, a[0], a[1], a[2], mpu.upload_id,
                                            mpu.physical_address, &e);
    if (rc == 0) {
        lakefs_upload_part part = {1, etag};
        int late = lakefs_complete_presign_multipart(
            c, a[0], a[1], a[2], mpu.upload_id, mpu.physical_address, &part, 1,
            NULL, NULL, &e);
        printf("aborted; complete afterwards: %d %s status=%d\n", late,
               late ? strerror(-late) : "ok", e.status);
    }
    free(etag);
    lakefs_multipart_upload_free(&mpu);
    return report(rc, &e);
}

/* upload-parts REPO BRANCH PATH PART_SIZE THRESHOLD <file: upload_fd as
 * a mount uploads, presigned multipart allowed. */
static int cmd_upload_parts(lakefs_client *c, char **a)
{
    int64_t size;
    if (stdin_size(&size))
        return 2;
    upload_caps caps = {.presign = true,
                        .multipart = true,
                        .part_size = strtoll(a[3], NULL, 10),
                        .multipart_threshold = strtoll(a[4], NULL, 10)};
    upload_attrs attrs = {.mtime = 1700000000};
    lakefs_object_stats st;
    lakefs_error e = {0};
    int rc = upload_fd(c, &caps, a[0], a[1], a[2], 0, size, &attrs, &st, &e);
    if (rc == 0)
        printf("size=%lld checksum=%s\n", (long long)st.size_bytes,
               st.checksum);
    lakefs_object_stats_free(&st);
    return report(rc, &e);
}

/* dots REPO: every kind of path segment named "." or "..": a repository,
 * a branch (get, delete), a ref (commit, listing, stat, diff) and a merge
 * source. Each must reach the server as the operation it is, with the
 * name escaped, and fail there; prints "NAME rc=RC status=STATUS". */
static int cmd_dots(lakefs_client *c, char **a)
{
    const char *repo = a[0];
    lakefs_error e;
    int rc;
#define DOT_CALL(name, call)                                                  \
    do {                                                                      \
        e = (lakefs_error){0};                                                \
        rc = (call);                                                          \
        printf("%s rc=%d status=%d\n", name, rc, e.status);                   \
    } while (0)
    lakefs_repository r = {0};
    DOT_CALL("get_repository ..", lakefs_get_repository(c, "..", &r, &e));
    lakefs_repository_free(&r);
    lakefs_ref ref = {0};
    DOT_CALL("get_branch ..", lakefs_get_branch(c, repo, "..", &ref, &e));
    lakefs_ref_free(&ref);
    DOT_CALL("delete_branch ..", lakefs_delete_branch(c, repo, "..", &e));
    DOT_CALL("delete_branch .", lakefs_delete_branch(c, repo, ".", &e));
    lakefs_commit commit = {0};
    DOT_CALL("get_commit ..", lakefs_get_commit(c, repo, "..", &commit, &e));
    lakefs_commit_free(&commit);
    lakefs_object_list list = {0};
    DOT_CALL("list_objects .",
             lakefs_list_objects(c, repo, ".", NULL, &list, &e));
    lakefs_object_list_free(&list);
    lakefs_object_stats st = {0};
    DOT_CALL("stat_object ..",
             lakefs_stat_object(c, repo, "..", "x", false, &st, &e));
    lakefs_object_stats_free(&st);
    lakefs_diff_list diff = {0};
    DOT_CALL("diff_refs ..",
             lakefs_diff_refs(c, repo, "..", "main", NULL, &diff, &e));
    lakefs_diff_list_free(&diff);
    char *merged = NULL;
    DOT_CALL("merge ..",
             lakefs_merge(c, repo, "..", "main", NULL, &merged, &e));
    free(merged);
#undef DOT_CALL
    return 0;
}

/* commit REPO BRANCH MESSAGE [KEY=VALUE]: one commit; its id and parent. */
static int cmd_commit(lakefs_client *c, char **a, int n)
{
    lakefs_metadata md = {0};
    for (int i = 3; i < n; i++) {
        char *eq = strchr(a[i], '=');
        if (!eq)
            return 2;
        *eq = '\0';
        lakefs_metadata_set(&md, a[i], eq + 1);
    }
    lakefs_commit commit;
    lakefs_error e = {0};
    int rc = lakefs_commit_branch(c, a[0], a[1], a[2], &md, false, &commit,
                                  &e);
    if (rc == 0)
        printf("commit %s parent %s message %s\n", commit.id,
               commit.parent_count ? commit.parents[0] : "-",
               commit.message);
    lakefs_commit_free(&commit);
    lakefs_metadata_free(&md);
    return report(rc, &e);
}

/* merge REPO SOURCE DEST: the merge commit's id. */
static int cmd_merge(lakefs_client *c, char **a)
{
    char *ref = NULL;
    lakefs_error e = {0};
    lakefs_merge_options opt = {0};
    int rc = lakefs_merge(c, a[0], a[1], a[2], &opt, &ref, &e);
    if (rc == 0)
        printf("merged %s\n", ref ? ref : "-");
    free(ref);
    return report(rc, &e);
}

/* branch REPO NAME SOURCE: the new branch's commit id. */
static int cmd_branch(lakefs_client *c, char **a)
{
    char *id = NULL;
    lakefs_error e = {0};
    int rc = lakefs_create_branch(c, a[0], a[1], a[2], &id, &e);
    if (rc == 0)
        printf("branch %s at %s\n", a[1], id ? id : "-");
    free(id);
    return report(rc, &e);
}

/* tag REPO NAME REF: the tag's commit id. */
static int cmd_tag(lakefs_client *c, char **a)
{
    lakefs_ref ref;
    lakefs_error e = {0};
    int rc = lakefs_create_tag(c, a[0], a[1], a[2], &ref, &e);
    if (rc == 0)
        printf("tag %s at %s\n", ref.id, ref.commit_id);
    lakefs_ref_free(&ref);
    return report(rc, &e);
}

/* create-repo NAME NAMESPACE: a repository with branch main. */
static int cmd_create_repo(lakefs_client *c, char **a)
{
    lakefs_repository r;
    lakefs_error e = {0};
    int rc = lakefs_create_repository(c, a[0], a[1], NULL, &r, &e);
    if (rc == 0)
        printf("repository %s at %s\n", r.id, r.storage_namespace);
    lakefs_repository_free(&r);
    return report(rc, &e);
}

/* get-branch REPO BRANCH: its commit id. */
static int cmd_get_branch(lakefs_client *c, char **a)
{
    lakefs_ref ref;
    lakefs_error e = {0};
    int rc = lakefs_get_branch(c, a[0], a[1], &ref, &e);
    if (rc == 0)
        printf("head %s\n", ref.commit_id);
    lakefs_ref_free(&ref);
    return report(rc, &e);
}

/* copy REPO BRANCH SRC DEST: copyObject on one branch. */
static int cmd_copy(lakefs_client *c, char **a)
{
    lakefs_object_stats st;
    lakefs_error e = {0};
    int rc = lakefs_copy_object(c, a[0], a[1], a[2], NULL, a[3], &st, &e);
    if (rc == 0)
        printf("copied checksum=%s\n", st.checksum);
    lakefs_object_stats_free(&st);
    return report(rc, &e);
}

/* list REPO REF [N]: one listObjects page, N times (default 1), a line
 * each; the status is the last one's. */
static int cmd_list(lakefs_client *c, char **a, int n)
{
    int times = n > 2 ? atoi(a[2]) : 1, status = 0;
    for (int i = 0; i < times; i++) {
        lakefs_object_list list;
        lakefs_error e = {0};
        int rc = lakefs_list_objects(c, a[0], a[1], NULL, &list, &e);
        if (rc == 0)
            printf("listed %zu\n", list.count);
        lakefs_object_list_free(&list);
        status = report(rc, &e);
    }
    return status;
}

static void print_client_stats(lakefs_client *c)
{
    for (int op = 0; op < LAKEFS_OP_COUNT; op++) {
        lakefs_op_stats s;
        lakefs_client_op_stats(c, (lakefs_op)op, &s);
        if (s.requests)
            fprintf(stderr, "stats %s requests=%llu retries=%llu\n",
                    lakefs_op_name((lakefs_op)op),
                    (unsigned long long)s.requests,
                    (unsigned long long)s.retries);
    }
}

static int run(lakefs_client *c, int argc, char **argv)
{
    const char *cmd = argv[1];
    char **a = argv + 2;
    int n = argc - 2;
    if (strcmp(cmd, "ops") == 0) {
        for (int op = 0; op < LAKEFS_OP_COUNT; op++)
            printf("%s\n", lakefs_op_name((lakefs_op)op));
        return 0;
    }
    if (strcmp(cmd, "walkthrough") == 0 && n == 1)
        return walkthrough(c, a[0]);
    if (strcmp(cmd, "exercise") == 0 && n == 1)
        return exercise(c, a[0]);
    if (strcmp(cmd, "stat") == 0 && n == 3)
        return cmd_stat(c, a);
    if (strcmp(cmd, "get") == 0 && n >= 5)
        return cmd_get(c, a, n);
    if (strcmp(cmd, "upload") == 0 && n == 4)
        return cmd_upload(c, a);
    if (strcmp(cmd, "mpu") == 0 && n == 4)
        return cmd_mpu(c, a);
    if (strcmp(cmd, "mpu-abort") == 0 && n == 3)
        return cmd_mpu_abort(c, a);
    if (strcmp(cmd, "upload-parts") == 0 && n == 5)
        return cmd_upload_parts(c, a);
    if (strcmp(cmd, "dots") == 0 && n == 1)
        return cmd_dots(c, a);
    if (strcmp(cmd, "commit") == 0 && n >= 3)
        return cmd_commit(c, a, n);
    if (strcmp(cmd, "merge") == 0 && n == 3)
        return cmd_merge(c, a);
    if (strcmp(cmd, "branch") == 0 && n == 3)
        return cmd_branch(c, a);
    if (strcmp(cmd, "tag") == 0 && n == 3)
        return cmd_tag(c, a);
    if (strcmp(cmd, "create-repo") == 0 && n == 2)
        return cmd_create_repo(c, a);
    if (strcmp(cmd, "get-branch") == 0 && n == 2)
        return cmd_get_branch(c, a);
    if (strcmp(cmd, "copy") == 0 && n == 4)
        return cmd_copy(c, a);
    if (strcmp(cmd, "list") == 0 && (n == 2 || n == 3))
        return cmd_list(c, a, n);
    fprintf(stderr, "usage: client_exercise ops | walkthrough REPO | "
                    "exercise REPO | stat REPO REF PATH | "
                    "get REPO REF PATH OFFSET LEN [presign] | "
                    "upload REPO BRANCH PATH SIZE <body | "
                    "mpu REPO BRANCH PATH PART_SIZE <file | "
                    "mpu-abort REPO BRANCH PATH <file | "
                    "upload-parts REPO BRANCH PATH PART_SIZE THRESHOLD "
                    "<file | dots REPO | "

                    "commit REPO BRANCH MESSAGE [K=V...] | "
                    "merge REPO SOURCE DEST | branch REPO NAME SOURCE | "
                    "get-branch REPO BRANCH | copy REPO BRANCH SRC DEST | "
                    "tag REPO NAME REF | create-repo NAME NAMESPACE | "
                    "list REPO REF [N]\n");
    return 2;
}

/* A number from the environment; 0 (the client's default) when unset. */
static long env_long(const char *name)
{
    const char *v = getenv(name);
    return v ? strtol(v, NULL, 10) : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return run(NULL, argc, argv);
    lakefuse_config cfg;
    lakefuse_config_flags flags = {0};
    char why[512];
    if (config_load(&cfg, &flags, why, sizeof(why)) != 0) {
        fprintf(stderr, "client_exercise: %s\n", why);
        return 2;
    }
    /* Short backoff: the fault tests retry a lot and must stay fast. The
     * timeouts and JSON limits may be made tiny for the tests of them. */
    lakefs_client_config cc = {
        .endpoint = cfg.endpoint,
        .access_key_id = cfg.access_key_id,
        .secret_access_key = cfg.secret_access_key,
        .retry_base_ms = 5,
        .retry_max_delay_ms = 50,
        .request_timeout_ms = env_long("LAKEFUSE_TEST_REQUEST_TIMEOUT_MS"),
        .stall_timeout_ms = env_long("LAKEFUSE_TEST_STALL_TIMEOUT_MS"),
        .json_body_max = (size_t)env_long("LAKEFUSE_TEST_JSON_BODY_MAX"),
        .json_budget = (size_t)env_long("LAKEFUSE_TEST_JSON_BUDGET"),
        .max_attempts = (unsigned)env_long("LAKEFUSE_TEST_MAX_ATTEMPTS"),
        .ca_file = getenv("LAKEFUSE_TEST_CA_FILE"),
    };
    lakefs_error e = {0};
    lakefs_client *c = cfg.endpoint ? lakefs_client_new(&cc, &e) : NULL;
    int status;
    if (!c && strcmp(argv[1], "ops") != 0) {
        fprintf(stderr, "client_exercise: %s\n",
                cfg.endpoint ? e.message : "LAKECTL_SERVER_ENDPOINT_URL unset");
        status = 2;
    } else {
        status = run(c, argc, argv);
        if (c)
            print_client_stats(c);
    }
    lakefs_client_free(c);
    config_free(&cfg);
    if (status == 0 && failures == 0 && strcmp(argv[1], "get") != 0 &&
        strcmp(argv[1], "ops") != 0)
        printf("ok\n");
    return status;
}
