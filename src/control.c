/*
 * control.c - what reading a file under .lakefs/ gives: head, stats,
 * status (and status.json), diff/REF, and the last result of commit,
 * merge, branch and reset. Reading never changes anything on the server.
 */
#include "control.h"

#include "fs_ops.h"
#include "fs_times.h"
#include "prefetch.h"
#include "urlbatch.h"
#include "workflow.h"
#include "jsonnul.h"
#include "textfield.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_u64(cJSON *obj, const char *name, uint64_t v)
{
    cJSON_AddNumberToObject(obj, name, (double)v);
}

/* One counter of a stats struct: the name it has in the JSON, and where
 * it is (every counter is a 64-bit unsigned integer). */
typedef struct stat_field {
    const char *name;
    size_t offset;
} stat_field;

#define FIELD(type, member) {#member, offsetof(type, member)}
#define FIELD_AS(name, type, member) {name, offsetof(type, member)}
#define FIELDS(table) table, sizeof(table) / sizeof(table[0])

static void add_fields(cJSON *obj, const void *stats, const stat_field *f,
                       size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        memcpy(&v, (const char *)stats + f[i].offset, sizeof(v));
        add_u64(obj, f[i].name, v);
    }
}

static const stat_field metacache_fields[] = {
    FIELD(metacache_stats, hits),          FIELD(metacache_stats, misses),
    FIELD(metacache_stats, negative_hits), FIELD(metacache_stats, evictions),
    FIELD(metacache_stats, bytes),         FIELD(metacache_stats, listings),
};

/* Small-file prefetch: files fetched ahead, opens they served, files
 * fetched for nothing (prefetch.h). */
static const stat_field prefetch_fields[] = {
    FIELD(prefetch_stats, files),     FIELD(prefetch_stats, hits),
    FIELD(prefetch_stats, wasted),    FIELD(prefetch_stats, cancelled),
    FIELD(prefetch_stats, errors),    FIELD(prefetch_stats, bytes),
};

static const stat_field blockcache_fields[] = {
    FIELD(blockcache_stats, hits),
    FIELD(blockcache_stats, misses),
    FIELD(blockcache_stats, bytes_served),
    FIELD(blockcache_stats, bytes_stored),
    FIELD(blockcache_stats, evictions),
    FIELD(blockcache_stats, used_bytes),
    FIELD(blockcache_stats, max_bytes),
    FIELD(blockcache_stats, write_errors),
    FIELD(blockcache_stats, corrupt),
    FIELD(blockcache_stats, file_opens),
    FIELD(blockcache_stats, files_hashed),
    FIELD(blockcache_stats, file_bytes_read),
    FIELD(blockcache_stats, open_files),
    FIELD(blockcache_stats, bytes_pinned),
    FIELD(blockcache_stats, stamps_written),
};

/* The reader's counters stand at the top level, some under older names. */
static const stat_field reader_fields[] = {
    FIELD(reader_stats, bytes_fetched),
    FIELD_AS("bytes_served_from_cache", reader_stats, bytes_from_cache),
    FIELD_AS("bytes_read", reader_stats, bytes_served),
    FIELD(reader_stats, fetches),
    FIELD(reader_stats, readahead_blocks),
    FIELD(reader_stats, fill_blocks),
    FIELD(reader_stats, fetch_errors),
};

static const stat_field warm_fields[] = {
    FIELD(warm_stats, queued),
    FIELD(warm_stats, blocks),
    FIELD(warm_stats, failed),
    FIELD(warm_stats, dropped),
};

_Static_assert(sizeof(unsigned long long) == sizeof(uint64_t),
               "fs_readdir_stats counters are read as uint64_t");
static const stat_field readdir_fields[] = {
    FIELD(fs_readdir_stats, requests),
    FIELD(fs_readdir_stats, entries),
    FIELD(fs_readdir_stats, steps),
    FIELD(fs_readdir_stats, snapshots),
};

static const stat_field file_request_fields[] = {
    FIELD(fs_file_request_stats, opens),
    FIELD(fs_file_request_stats, reads),
    FIELD(fs_file_request_stats, flushes),
    FIELD(fs_file_request_stats, releases),
};

static const stat_field times_fields[] = {
    FIELD(fs_times_stats, entries),
    FIELD(fs_times_stats, evicted),
};

static const stat_field xattr_fields[] = {
    FIELD(fs_xattr_stats, requests),
    FIELD(fs_xattr_stats, unsupported),
};

static const stat_field urlbatch_fields[] = {
    FIELD(urlbatch_stats, batches),
    FIELD(urlbatch_stats, urls),
};

/* -o async_close's upload pool (writer.h). */
static const stat_field pool_fields[] = {
    FIELD(writer_pool_stats, threads),   FIELD(writer_pool_stats, queued),
    FIELD(writer_pool_stats, in_flight), FIELD(writer_pool_stats, max_in_flight),
    FIELD(writer_pool_stats, done),      FIELD(writer_pool_stats, failed),
};

static const stat_field journal_fields[] = {
    FIELD_AS("writes", staging_stats, journal_writes),
    FIELD(staging_stats, fsyncs),
};

static cJSON *api_calls_json(lakefs_client *client, uint64_t *total)
{
    cJSON *calls = cJSON_CreateObject();
    *total = 0;
    for (int op = 0; calls && op < LAKEFS_OP_COUNT; op++) {
        lakefs_op_stats st;
        lakefs_client_op_stats(client, (lakefs_op)op, &st);
        if (st.requests == 0)
            continue;
        add_u64(calls, lakefs_op_name((lakefs_op)op), st.requests);
        *total += st.requests;
    }
    return calls;
}

/* Staged files of this mount not yet on the server: to upload (queued,
 * in flight, being written), failed (retried in the background) and kept
 * aside as conflicts (never uploaded automatically). */
typedef struct pending_stats {
    uint64_t pending_uploads;
    uint64_t failed_uploads;
    uint64_t conflicts;
    uint64_t open_for_writing; /* descriptors: their close uploads */
} pending_stats;

static const stat_field pending_fields[] = {
    FIELD(pending_stats, pending_uploads),
    FIELD(pending_stats, failed_uploads),
    FIELD(pending_stats, conflicts),
    FIELD(pending_stats, open_for_writing),
};

/* Every layer's counters (read one after the other); a layer that is off
 * leaves its counters zero. */
typedef struct all_stats {
    metacache_stats meta;
    blockcache_stats blocks;
    reader_stats reader;
    prefetch_stats prefetch;
    urlbatch_stats urls;
    pending_stats pending;
    writer_pool_stats pool;
    staging_stats staging;
    fs_readdir_stats readdir;
    fs_file_request_stats files;
    fs_xattr_stats xattr;
    fs_times_stats times;
} all_stats;

static void gather_stats(lakefuse_fs *fs, all_stats *a)
{
    memset(a, 0, sizeof(*a));
    metacache_get_stats(fs->meta, &a->meta);
    if (fs->blocks)
        blockcache_get_stats(fs->blocks, &a->blocks);
    if (fs->reader)
        reader_get_stats(fs->reader, &a->reader);
    prefetch_get_stats(fs->prefetch, &a->prefetch);
    if (fs->urls)
        urlbatch_get_stats(fs->urls, &a->urls);
    staging_entry *e = NULL;
    size_t n = 0;
    if (fs->staging && staging_list(fs->staging, &e, &n) == 0)
        for (size_t i = 0; i < n; i++) {
            a->pending.pending_uploads += e[i].state == STAGING_PENDING;
            a->pending.failed_uploads += e[i].state == STAGING_FAILED;
            a->pending.conflicts += e[i].state == STAGING_CONFLICT;
        }
    staging_entries_free(e, n);
    a->pending.open_for_writing = fs_files_open_for_writing(fs);
    if (fs->writer)
        writer_pool_get_stats(fs->writer, &a->pool);
    if (fs->staging)
        staging_get_stats(fs->staging, &a->staging);
    fs_readdir_get_stats(fs, &a->readdir);
    fs_file_request_get_stats(fs, &a->files);
    fs_xattr_get_stats(fs, &a->xattr);
    fs_times_get_stats(fs->times, &a->times);
}

static bool prefetch_on(const lakefuse_fs *fs)
{
    return fs->prefetch != NULL;
}

static bool pool_on(const lakefuse_fs *fs)
{
    return fs->writer && writer_async(fs->writer);
}

/* One part of .lakefs/stats: an object named name (NULL: its counters
 * stand at the top level) holding the counters at offset in all_stats,
 * starting with "enabled" when the layer can be off (enabled non-NULL). */
typedef struct stats_section {
    const char *name;
    size_t offset;
    bool (*enabled)(const lakefuse_fs *fs);
    const stat_field *fields;
    size_t n;
} stats_section;

#define AT(member) offsetof(all_stats, member)

/* In the order they appear, after api_calls and api_calls_total. */
static const stats_section stats_sections[] = {
    {"metadata_cache", AT(meta), NULL, FIELDS(metacache_fields)},
    {"data_cache", AT(blocks), NULL, FIELDS(blockcache_fields)},
    {NULL, AT(reader), NULL, FIELDS(reader_fields)},
    {"page_cache_warm", AT(reader.warm), NULL, FIELDS(warm_fields)},
    {"prefetch", AT(prefetch), prefetch_on, FIELDS(prefetch_fields)},
    {"presigned_urls", AT(urls), NULL, FIELDS(urlbatch_fields)},
    {NULL, AT(pending), NULL, FIELDS(pending_fields)},
    {"async_uploads", AT(pool), pool_on, FIELDS(pool_fields)},
    {"staging_journal", AT(staging), NULL, FIELDS(journal_fields)},
    {"readdir", AT(readdir), NULL, FIELDS(readdir_fields)},
    {"file_requests", AT(files), NULL, FIELDS(file_request_fields)},
    {"getxattr", AT(xattr), NULL, FIELDS(xattr_fields)},
    {"times", AT(times), NULL, FIELDS(times_fields)},
};

char *control_stats_json(lakefuse_fs *fs)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    uint64_t total;
    cJSON_AddItemToObject(root, "api_calls", api_calls_json(fs->client, &total));
    add_u64(root, "api_calls_total", total);
    all_stats a;
    gather_stats(fs, &a);
    for (size_t i = 0; i < sizeof(stats_sections) / sizeof(stats_sections[0]);
         i++) {
        const stats_section *sec = &stats_sections[i];
        cJSON *obj = sec->name ? cJSON_AddObjectToObject(root, sec->name)
                               : root;
        if (!obj)
            continue;
        if (sec->enabled)
            cJSON_AddBoolToObject(obj, "enabled", sec->enabled(fs));
        add_fields(obj, (const char *)&a + sec->offset, sec->fields, sec->n);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

/* This mount's staged files on the ref's branch still to upload. */
typedef struct pending_list {
    staging_entry *entries;
    size_t n;
} pending_list;

static bool pending_applies(const tree_ref *ref, const staging_entry *e)
{
    return e->state != STAGING_CLEAN && e->repo && e->branch && e->path &&
           strcmp(e->repo, ref->repo) == 0 &&
           strcmp(e->branch, ref->api_ref) == 0 &&
           strncmp(e->path, ref->prefix, strlen(ref->prefix)) == 0;
}

static char diff_letter(lakefs_diff_type t)
{
    switch (t) {
    case LAKEFS_DIFF_ADDED:
        return 'A';
    case LAKEFS_DIFF_REMOVED:
        return 'D';
    case LAKEFS_DIFF_CONFLICT:
        return 'C';
    default:
        return 'M';
    }
}

static const char *diff_word(lakefs_diff_type t)
{
    switch (t) {
    case LAKEFS_DIFF_ADDED:
        return "added";
    case LAKEFS_DIFF_REMOVED:
        return "removed";
    case LAKEFS_DIFF_CONFLICT:
        return "conflict";
    default:
        return "changed";
    }
}

/* textfield_put of s in a new string (*out). */
static int quoted(const char *s, char **out)
{
    size_t len = 0;
    FILE *f = open_memstream(out, &len);
    if (!f)
        return -ENOMEM;
    textfield_put(f, s);
    if (fclose(f) == 0)
        return 0;
    free(*out);
    *out = NULL;
    return -ENOMEM;
}

static void diff_lines(FILE *out, const lakefs_diff *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "%c ", diff_letter(d[i].type));
        textfield_put(out, d[i].path);
        fputc('\n', out);
    }
}

/* diff_error: 0, or why the branch's changes could not be listed (the
 * mount's own uploads are shown all the same). */
static char *status_text(const tree_ref *ref, const lakefs_diff *d, size_t n,
                         const pending_list *p, int diff_error)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        return NULL;
    if (diff_error)
        fprintf(out, "error: the branch's changes could not be listed: %s\n",
                strerror(-diff_error));
    diff_lines(out, d, n);
    size_t pl = strlen(ref->prefix);
    for (size_t i = 0; i < p->n; i++) {
        const staging_entry *e = &p->entries[i];
        if (!pending_applies(ref, e))
            continue;
        bool failed = e->state == STAGING_FAILED;
        bool conflict = e->state == STAGING_CONFLICT;
        fputs(failed ? "failed " : conflict ? "conflict " : "pending ", out);
        textfield_put(out, e->path + pl);
        if (failed || conflict) {
            fputs(": ", out);
            textfield_put(out, e->error ? e->error : "?");
        }
        fputc('\n', out);
    }
    fclose(out);
    return text;
}

static char *status_json(const tree_ref *ref, const lakefs_diff *d, size_t n,
                         const pending_list *p, int diff_error)
{
    cJSON *o = cJSON_CreateObject();
    if (diff_error)
        cJSON_AddStringToObject(o, "error", strerror(-diff_error));
    cJSON *changes = cJSON_AddArrayToObject(o, "changes");
    cJSON *pending = cJSON_AddArrayToObject(o, "pending");
    cJSON *failed = cJSON_AddArrayToObject(o, "failed");
    cJSON *conflicts = cJSON_AddArrayToObject(o, "conflicts");
    for (size_t i = 0; i < n; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "type", diff_word(d[i].type));
        cJSON_AddStringToObject(c, "path", d[i].path);
        cJSON_AddItemToArray(changes, c);
    }
    size_t pl = strlen(ref->prefix);
    for (size_t i = 0; i < p->n; i++) {
        const staging_entry *e = &p->entries[i];
        if (!pending_applies(ref, e))
            continue;
        if (e->state == STAGING_FAILED || e->state == STAGING_CONFLICT) {
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "path", e->path + pl);
            cJSON_AddStringToObject(f, "error", e->error ? e->error : "?");
            cJSON_AddItemToArray(e->state == STAGING_FAILED ? failed
                                                            : conflicts,
                                 f);
        } else {
            cJSON_AddItemToArray(pending, cJSON_CreateString(e->path + pl));
        }
    }
    char *text = jsonnul_print(o, true);
    cJSON_Delete(o);
    if (!text)
        return NULL;
    size_t len = strlen(text);
    char *with_newline = realloc(text, len + 2);
    if (!with_newline) {
        free(text);
        return NULL;
    }
    memcpy(with_newline + len, "\n", 2);
    return with_newline;
}

/* What earlier mounts left that is still not on the server (conflicts
 * kept aside, failed recoveries) shows with this mount's own. */
static void append_orphans(lakefuse_fs *fs, pending_list *p)
{
    staging_entry *o = NULL;
    size_t n = 0;
    if (!fs->cache_dir || staging_list_orphans(fs->cache_dir, &o, &n) != 0 ||
        n == 0)
        return;
    staging_entry *all = realloc(p->entries, (p->n + n) * sizeof(*all));
    if (!all) {
        staging_entries_free(o, n);
        return;
    }
    memcpy(all + p->n, o, n * sizeof(*o));
    free(o);
    p->entries = all;
    p->n += n;
}

/* status and status.json: the branch's uncommitted changes (from the
 * server, so other clients' show too) and this mount's pending uploads. */
static int render_status(lakefuse_fs *fs, const tree_node *node, char **out)
{
    lakefs_diff *d = NULL;
    size_t n = 0;
    int rc = node->ref->is_branch ? workflow_diff(fs, node->ref, NULL, &d, &n)
                                  : 0;
    if (rc == -ENOMEM)
        return rc;
    pending_list p = {0};
    if (fs->staging && staging_list(fs->staging, &p.entries, &p.n) != 0)
        p.n = 0;
    append_orphans(fs, &p);
    /* The mount's own uploads still to do (failed ones above all) show
     * even when lakeFS cannot list the branch's changes (the branch was
     * deleted, the server is down): a status that failed whole would hide
     * the only sign of bytes that are not on lakeFS. */
    bool own = false;
    for (size_t i = 0; i < p.n && !own; i++)
        own = pending_applies(node->ref, &p.entries[i]);
    if (rc && !own) {
        staging_entries_free(p.entries, p.n);
        return rc;
    }
    *out = node->control == TREE_CONTROL_STATUS
               ? status_text(node->ref, d, n, &p, rc)
               : status_json(node->ref, d, n, &p, rc);
    staging_entries_free(p.entries, p.n);
    workflow_diff_free(d, n);
    return *out ? 0 : -ENOMEM;
}

static int render_diff(lakefuse_fs *fs, const tree_node *node, char **out)
{
    lakefs_diff *d = NULL;
    size_t n = 0;
    /* Files closed through this mount are on the branch as far as its
     * user knows: the async_close pool's queued uploads land first. (status
     * does not wait: it lists them as pending.) */
    if (node->ref->is_branch)
        writer_settle_branch(fs->writer, node->ref->repo, node->ref->api_ref);
    int rc = workflow_diff(fs, node->ref, node->key, &d, &n);
    if (rc)
        return rc;
    size_t len = 0;
    FILE *f = open_memstream(out, &len);
    if (f) {
        diff_lines(f, d, n);
        fclose(f);
    }
    workflow_diff_free(d, n);
    return *out ? 0 : -ENOMEM;
}

int control_render(lakefuse_fs *fs, const tree_node *node, char **out,
                   size_t *len)
{
    *out = NULL;
    *len = 0;
    char *text = NULL;
    int rc = 0;
    switch (node->control) {
    case TREE_CONTROL_STATUS:
    case TREE_CONTROL_STATUS_JSON:
        rc = render_status(fs, node, out);
        break;
    case TREE_CONTROL_DIFF:
        rc = render_diff(fs, node, out);
        break;
    case TREE_CONTROL_COMMIT:
    case TREE_CONTROL_MERGE:
    case TREE_CONTROL_BRANCH:
    case TREE_CONTROL_RESET:
        rc = control_last_result(fs, node->ref, node->control, out);
        break;
    case TREE_CONTROL_STATS:
        text = control_stats_json(fs);
        rc = text ? 0 : -ENOMEM;
        break;
    default: {
        char *head = NULL;
        rc = tree_ref_head(fs->tree, node->ref, &head);
        if (rc == 0)
            rc = quoted(head, &text);
        free(head);
        break;
    }
    }
    if (rc)
        return rc;
    if (*out) {
        *len = strlen(*out);
        return 0;
    }
    /* head and stats: a line of text or JSON ending in a newline. */
    size_t n = strlen(text);
    char *with_newline = realloc(text, n + 2);
    if (!with_newline) {
        free(text);
        return -ENOMEM;
    }
    with_newline[n] = '\n';
    with_newline[n + 1] = '\0';
    *out = with_newline;
    *len = n + 1;
    return 0;
}
