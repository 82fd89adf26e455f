/*
 * control.c - renders .lakefs/head and .lakefs/stats. Reads counters only:
 * it never changes state, and calls lakeFS only to read a branch head.
 */
#include "control.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_u64(cJSON *obj, const char *name, uint64_t v)
{
    cJSON_AddNumberToObject(obj, name, (double)v);
}

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

static cJSON *metadata_cache_json(metacache *mc)
{
    metacache_stats st;
    metacache_get_stats(mc, &st);
    cJSON *o = cJSON_CreateObject();
    if (o) {
        add_u64(o, "hits", st.hits);
        add_u64(o, "misses", st.misses);
        add_u64(o, "negative_hits", st.negative_hits);
        add_u64(o, "evictions", st.evictions);
        add_u64(o, "bytes", st.bytes);
        add_u64(o, "listings", st.listings);
    }
    return o;
}

static cJSON *data_cache_json(blockcache *bc)
{
    blockcache_stats st = {0};
    if (bc)
        blockcache_get_stats(bc, &st);
    cJSON *o = cJSON_CreateObject();
    if (o) {
        add_u64(o, "hits", st.hits);
        add_u64(o, "misses", st.misses);
        add_u64(o, "bytes_served", st.bytes_served);
        add_u64(o, "bytes_stored", st.bytes_stored);
        add_u64(o, "evictions", st.evictions);
        add_u64(o, "used_bytes", st.used_bytes);
        add_u64(o, "max_bytes", st.max_bytes);
    }
    return o;
}

char *control_stats_json(lakefuse_fs *fs)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    uint64_t total;
    cJSON_AddItemToObject(root, "api_calls", api_calls_json(fs->client, &total));
    add_u64(root, "api_calls_total", total);
    cJSON_AddItemToObject(root, "metadata_cache", metadata_cache_json(fs->meta));
    cJSON_AddItemToObject(root, "data_cache", data_cache_json(fs->blocks));
    reader_stats rs = {0};
    if (fs->reader)
        reader_get_stats(fs->reader, &rs);
    add_u64(root, "bytes_fetched", rs.bytes_fetched);
    add_u64(root, "bytes_served_from_cache", rs.bytes_from_cache);
    add_u64(root, "bytes_read", rs.bytes_served);
    add_u64(root, "fetches", rs.fetches);
    add_u64(root, "readahead_blocks", rs.readahead_blocks);
    add_u64(root, "fetch_errors", rs.fetch_errors);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

/* This mount's uploads still to do on the ref's branch, a line each:
 * "pending PATH" or "failed PATH: ERROR". Paths are relative to the ref
 * root, as the mount shows them. */
static char *status_text(lakefuse_fs *fs, const tree_ref *ref)
{
    staging_entry *e = NULL;
    size_t n = 0;
    if (!fs->staging || staging_list(fs->staging, &e, &n) != 0)
        n = 0;
    size_t prefix_len = strlen(ref->prefix);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    for (size_t i = 0; out && i < n; i++) {
        if (e[i].state == STAGING_CLEAN || !e[i].repo || !e[i].branch ||
            !e[i].path || strcmp(e[i].repo, ref->repo) != 0 ||
            strcmp(e[i].branch, ref->api_ref) != 0 ||
            strncmp(e[i].path, ref->prefix, prefix_len) != 0)
            continue;
        if (e[i].state == STAGING_FAILED)
            fprintf(out, "failed %s: %s\n", e[i].path + prefix_len,
                    e[i].error ? e[i].error : "?");
        else
            fprintf(out, "pending %s\n", e[i].path + prefix_len);
    }
    if (out)
        fclose(out);
    staging_entries_free(e, n);
    return text;
}

int control_render(lakefuse_fs *fs, const tree_node *node, char **out,
                   size_t *len)
{
    *out = NULL;
    *len = 0;
    char *text = NULL;
    if (node->control == TREE_CONTROL_STATUS) {
        /* Lines already end in newlines; empty when all is uploaded. */
        *out = status_text(fs, node->ref);
        if (!*out)
            return -ENOMEM;
        *len = strlen(*out);
        return 0;
    }
    if (node->control == TREE_CONTROL_STATS) {
        text = control_stats_json(fs);
        if (!text)
            return -ENOMEM;
    } else {
        char *head = NULL;
        int rc = tree_ref_head(fs->tree, node->ref, &head);
        if (rc)
            return rc;
        text = NULL;
        if (asprintf(&text, "%s", head) < 0)
            text = NULL;
        free(head);
        if (!text)
            return -ENOMEM;
    }
    /* Every control file is a line of text or JSON ending in a newline. */
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
