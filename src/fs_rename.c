/*
 * fs_rename.c - rename on a branch: a file is a server-side copy and a
 * delete (never a re-upload; a file still being written keeps its staged
 * bytes for the new name), a directory is copied object by object up to
 * max_rename_objects, beyond which EXDEV lets mv copy instead. Never
 * destroys data: a directory replaces only an empty one, and a replaced
 * file's open descriptors can no longer upload over its new content.
 */
#include "fs_internal.h"
#include "workflow.h"


#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DELETE_BATCH 1000

/* ---- rename ---- */

static int copy_key(lakefuse_fs *fs, const tree_ref *ref, const char *from,
                    const char *to, lakefs_object_stats *out)
{
    lakefs_error err = {0};
    int rc, tries = 0;
    do {
        if (out)
            lakefs_object_stats_free(out);
        rc = lakefs_copy_object(fs->client, ref->repo, ref->api_ref, from,
                                NULL, to, out, &err);
    } while (lakefs_retry_idempotent(rc, &tries));
    if (rc)
        logger_write(fs->log, LOG_LEVEL_ERROR, "copying '%s' to '%s': %s",
                     from, to, err.message);
    return rc == -ENOENT ? rc : rc ? -EIO : 0;
}

/* dst_base: the checksum of the object the rename replaces, "" when the
 * destination holds none. The writer's files at both names keep still
 * until the server-side steps are done (writer_move_*). */
static int rename_file(lakefuse_fs *fs, const tree_node *src,
                       const tree_ref *ref, const char *dst_rel,
                       const char *dst_base, bool bits_noted)
{
    char *from = tree_object_key(src);
    char *to = fs_object_key(ref, dst_rel);
    writer_move *move = NULL;
    if (from && to) /* descriptors reading the replaced file keep its bytes */
        fs_readers_pin(fs, ref, to, false);
    int rc = from && to ? writer_move_begin(fs->writer, ref->repo,
                                            ref->api_ref, from, to, false,
                                            &move)
                        : -ENOMEM;
    lakefs_object_stats st;
    memset(&st, 0, sizeof(st));
    bool staged = rc == 0 && writer_move_dirty(move);
    if (staged) {
        /* Its newest bytes are staged: they go to the new name with its
         * next upload; the old name's object (an older version, if any)
         * goes away now. */
        rc = fs_delete_key(fs, ref, from);
        if (rc == 0)
            fs_cache_set(fs, ref, dst_rel, &src->entry);
    } else if (rc == 0) {
        rc = copy_key(fs, ref, from, to, &st);
        if (rc == 0)
            rc = fs_delete_key(fs, ref, from);
        /* The special bits src showed, no others. When this mount noted
         * them, the new name is noted already and shows what the copy
         * holds: src->entry may predate a chmod's upload that landed
         * before the copy (an upload of the file in flight meanwhile). */
        if (rc == 0)
            fs_cache_set_object_as(fs, ref, dst_rel, &st,
                                   bits_noted ? NULL : &src->entry);
    }
    /* The replaced file's descriptors never upload over the new content;
     * a failed step changes nothing in the writer. */
    int end = writer_move_end(move, rc == 0, staged ? dst_base : NULL);
    if (rc == 0)
        rc = end;
    if (rc == 0) {
        fs_cache_set(fs, ref, src->key, NULL);
        /* Descriptors reading the file follow it, as on a local file
         * system: they read what is written at its new name. */
        fs_readers_move(fs, ref, from, to);
        if (!staged)
            fs_readers_uploaded(fs, ref, dst_rel, &st);
    } else {
        /* Half done, or done with its answer lost: ask lakeFS again, the
         * kernel too (its cached attributes of the names). */
        fs_forget_parent(fs, ref, src->key);
        fs_forget_parent(fs, ref, dst_rel);
        workflow_forget_kernel(fs, ref, src->key);
        workflow_forget_kernel(fs, ref, dst_rel);
    }
    lakefs_object_stats_free(&st);
    free(from);
    free(to);
    return rc;
}

/* Every object under prefix (markers included), at most max + 1. */
static int collect_keys(lakefuse_fs *fs, const tree_ref *ref,
                        const char *prefix, uint64_t max, char ***keys,
                        size_t *n)
{
    /* Pages no larger than what is wanted: an emptiness check asks for 2. */
    lakefs_list_params p = {.prefix = prefix,
                            .amount = max < 1000 ? (int)max + 1 : 1000,
                            .no_user_metadata = true};
    lakefs_object_iter it;
    int rc = lakefs_object_iter_init(&it, fs->client, ref->repo,
                                     ref->api_ref, &p);
    if (rc)
        return rc;
    const lakefs_object_stats *st;
    lakefs_error err = {0};
    size_t cap = 0;
    while (*n <= max && (rc = lakefs_object_iter_next(&it, &st, &err)) == 1) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = realloc(*keys, cap * sizeof(**keys));
            if (!grown) {
                rc = -ENOMEM;
                break;
            }
            *keys = grown;
        }
        if (!((*keys)[*n] = strdup(st->path))) {
            rc = -ENOMEM;
            break;
        }
        (*n)++;
    }
    lakefs_object_iter_free(&it);
    return rc < 0 ? -EIO : 0;
}

static int delete_keys(lakefuse_fs *fs, const tree_ref *ref, char **keys,
                       size_t n)
{
    for (size_t i = 0; i < n; i += DELETE_BATCH) {
        size_t count = n - i < DELETE_BATCH ? n - i : DELETE_BATCH;
        lakefs_error err = {0};
        int rc, tries = 0;
        do
            rc = lakefs_delete_objects(fs->client, ref->repo, ref->api_ref,
                                       (const char *const *)keys + i, count,
                                       NULL, &err);
        while (lakefs_retry_idempotent(rc, &tries));
        if (rc) {
            logger_write(fs->log, LOG_LEVEL_ERROR, "deleting objects: %s",
                         err.message);
            return -EIO;
        }
    }
    return 0;
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* After a delete that failed: 0 when none of keys (sorted, as listed) is
 * under prefix any more (lakeFS applied the delete, its answer was lost),
 * -EIO when some are or lakeFS cannot say. Keys another client added
 * there meanwhile are not the rename's. */
static int confirm_deleted(lakefuse_fs *fs, const tree_ref *ref,
                           const char *prefix, char **keys, size_t n)
{
    char **left = NULL;
    size_t n_left = 0;
    int rc = collect_keys(fs, ref, prefix, fs->max_rename_objects, &left,
                          &n_left);
    if (n_left > fs->max_rename_objects) /* cut short: not all seen */
        rc = -EIO;
    for (size_t i = 0; i < n_left; i++) {
        if (rc == 0 && bsearch(&left[i], keys, n, sizeof(*keys),
                               compare_keys) != NULL)
            rc = -EIO;
        free(left[i]);
    }
    free(left);
    return rc ? -EIO : 0;
}

/* A directory rename that failed while copying: the copies go again, and
 * a replaced empty directory gets its marker back as it was (old_marker:
 * its stats, with the mode, owner and mtime in its metadata), so that the
 * failed rename leaves the tree as it was (best effort: a failure here
 * leaves copies, never loses the source). */
static void undo_copies(lakefuse_fs *fs, const tree_ref *ref, char **copied,
                        size_t n, const lakefs_object_stats *old_marker)
{
    if (delete_keys(fs, ref, copied, n) != 0)
        return;
    if (old_marker && old_marker->path) {
        const char *kept = lakefs_metadata_get(&old_marker->metadata,
                                               LISTING_KEY_CLIENT_MTIME);
        upload_attrs attrs = {.mtime = kept ? strtoll(kept, NULL, 10)
                                            : old_marker->mtime,
                              .extra = &old_marker->metadata};
        fs_upload_empty_attrs(fs, ref, old_marker->path, &attrs, NULL);
    }
}

struct special_move {
    lakefuse_fs *fs;
    const tree_ref *ref;
};

static int move_special_mode(void *ctx, const char *old_key,
                             const char *new_key)
{
    struct special_move *sm = ctx;
    tree_move_special_mode(sm->fs->tree, sm->ref->repo, old_key, new_key);
    return 0;
}

/* A file the writer moves along fits lakeFS's key limit at its new name
 * (writer_move_foreach). */
static int moved_key_fits(void *ctx, const char *old_key, const char *new_key)
{
    (void)ctx;
    (void)old_key;
    return strlen(new_key) > LAKEFS_MAX_PATH_LENGTH ? -ENAMETOOLONG : 0;
}

/* Object by object on the server, up to max_rename_objects: beyond that
 * EXDEV, so that mv copies instead of lakefuse doing an unbounded job.
 * replace: the destination is an existing empty directory, whose marker
 * the source's own takes the place of, or which goes after the copies. */
static int rename_dir(lakefuse_fs *fs, const tree_node *src,
                      const tree_ref *ref, const char *dst_rel, bool replace)
{
    char *from = fs_object_key(ref, src->key);
    char *to = fs_object_key(ref, dst_rel);
    char *from_prefix = NULL;
    char **keys = NULL;
    size_t n = 0;
    writer_move *move = NULL;
    if (from && to) {
        fs_readers_pin(fs, ref, from, true);
        fs_readers_pin(fs, ref, to, true);
    }
    int rc = from && to && asprintf(&from_prefix, "%s/", from) >= 0
                 ? writer_move_begin(fs->writer, ref->repo, ref->api_ref,
                                     from, to, true, &move)
                 : -ENOMEM;
    /* Listed after the uploads in flight under it: what they wrote moves. */
    if (rc == 0)
        rc = collect_keys(fs, ref, from_prefix, fs->max_rename_objects, &keys,
                          &n);
    if (rc == 0 && n > fs->max_rename_objects)
        rc = -EXDEV;
    /* Every new key must be one lakeFS accepts, before anything moves. */
    size_t grow = strlen(to ? to : "") - strlen(from ? from : "");
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (strlen(keys[i]) + grow > LAKEFS_MAX_PATH_LENGTH)
            rc = -ENAMETOOLONG;
    if (rc == 0 && strlen(to) + 1 > LAKEFS_MAX_PATH_LENGTH)
        rc = -ENAMETOOLONG; /* its marker */
    /* ...and so must the new key of every file the writer moves along (open
     * for writing, queued or waiting for a retry: not on lakeFS yet), or its
     * upload would be refused there for good. */
    if (rc == 0 && move)
        rc = writer_move_foreach(move, moved_key_fits, NULL);
    char *marker = NULL;
    bool marker_gone = false;
    lakefs_object_stats old_marker; /* the replaced directory's, for an undo */
    memset(&old_marker, 0, sizeof(old_marker));
    if (rc == 0 && replace && asprintf(&marker, "%s/", to) < 0)
        rc = -ENOMEM;
    if (rc == 0 && replace) {
        lakefs_error err = {0};
        int got = lakefs_stat_object(fs->client, ref->repo, ref->api_ref,
                                     marker, false, &old_marker, &err);
        if (got != 0 && got != -ENOENT) /* ENOENT: only a prefix */
            rc = -EIO;
    }
    /* The replaced directory's marker is never deleted before the copies:
     * a daemon killed in between would leave neither directory there. The
     * source's own marker, copied first (it sorts first), takes its place;
     * without one, the old marker goes once every copy is there. */
    size_t from_len = strlen(from ? from : "");
    char **copied = rc == 0 && n ? calloc(n, sizeof(*copied)) : NULL;
    size_t n_copied = 0;
    if (rc == 0 && n && !copied)
        rc = -ENOMEM;
    bool src_marker = false;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char *dst = NULL;
        bool is_marker = strcmp(keys[i], from_prefix) == 0;
        if (asprintf(&dst, "%s%s", to, keys[i] + from_len) < 0)
            rc = -ENOMEM;
        else
            rc = copy_key(fs, ref, keys[i], dst, NULL);
        if (rc == 0) {
            copied[n_copied++] = dst;
            src_marker = src_marker || is_marker;
            /* the replaced directory's marker is this copy now */
            marker_gone = marker_gone || (is_marker && old_marker.path);
        } else {
            free(dst);
        }
    }
    if (rc == 0 && replace && !src_marker && old_marker.path) {
        rc = fs_delete_key(fs, ref, marker);
        marker_gone = true; /* or it may be: the undo puts it back */
    }
    free(marker);
    if (rc && (n_copied || marker_gone))
        undo_copies(fs, ref, copied, n_copied,
                    marker_gone ? &old_marker : NULL);
    lakefs_object_stats_free(&old_marker);
    /* The bits this mount showed go along once every copy is there, and
     * before the deletes: a rename whose deletes fail leaves the copies,
     * showing them as the originals do. Noted before the copies, a failed
     * copy would leave the new names noted, unmasking the bits of whatever
     * object lands there later (another client's). */
    for (size_t i = 0; rc == 0 && i < n_copied; i++)
        tree_move_special_mode(fs->tree, ref->repo, keys[i], copied[i]);
    for (size_t i = 0; i < n_copied; i++)
        free(copied[i]);
    free(copied);
    /* Every object is at its new name: the writer's files (bytes not on
     * lakeFS yet) go there too, whatever the deletes do. Left at the old
     * names after deletes that lakeFS applied, they would bring back a
     * directory holding only them; after deletes that failed, the new
     * names are the whole directory and the old ones a stale copy. */
    bool copied_all = rc == 0;
    if (rc == 0 && delete_keys(fs, ref, keys, n) != 0)
        rc = confirm_deleted(fs, ref, from_prefix, keys, n);
    /* Files the server has no object of yet (created, still being
     * written) move in the writer alone; their upload would show them
     * masked otherwise. */
    if (copied_all) {
        struct special_move sm = {fs, ref};
        writer_move_foreach(move, move_special_mode, &sm);
    }
    int end = writer_move_end(move, copied_all, NULL);
    if (rc == 0)
        rc = end;
    /* Many listings changed: let them be fetched again. After a failure
     * lakeFS may hold the rename half done (copies made, deletes refused),
     * and the kernel's cached attributes of the names (the replaced
     * directory's mode with the copied marker's metadata) are dropped
     * too. */
    if (rc == 0)
        metacache_invalidate_ref(fs->meta, ref->cache_key);
    else
        workflow_refresh(fs, ref);
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
    free(from_prefix);
    free(from);
    free(to);
    return rc;
}

static int stop_at_entry(void *ctx, const fs_entry *e)
{
    (void)ctx;
    (void)e;
    return 1;
}

static int stop_at_pending(void *ctx, const writer_entry *e)
{
    (void)ctx;
    return !e->self; /* the directory's own marker is not content */
}

/* 0 when the existing directory dir holds nothing, as its listing, the
 * server (whatever the listing cached) and the writer (files not uploaded
 * yet) see it; else -ENOTEMPTY or a negative errno. */
static int check_dir_empty(lakefuse_fs *fs, const tree_node *dir)
{
    const tree_ref *ref = dir->ref;
    char *prefix = NULL;
    if (asprintf(&prefix, "%s%s/", ref->prefix, dir->key) < 0)
        return -ENOMEM;
    int rc = tree_list(fs->tree, dir, stop_at_entry, NULL);
    if (rc == 0)
        rc = writer_foreach_in_dir(fs->writer, ref->repo, ref->api_ref,
                                   prefix, stop_at_pending, NULL);
    char **keys = NULL;
    size_t n = 0;
    if (rc == 0)
        rc = collect_keys(fs, ref, prefix, 1, &keys, &n);
    /* The directory's own marker sorts first: anything else is content. */
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && strcmp(keys[i], prefix) != 0)
            rc = 1;
        free(keys[i]);
    }
    free(keys);
    free(prefix);
    if (rc == 0)
        rc = fs_marker_holds_nothing(fs, dir);
    return rc > 0 ? -ENOTEMPTY : rc;
}

/* libfuse hides a file unlinked (or about to be replaced) while open by
 * renaming it to a .fuse_hidden name it has just probed (fs_internal.h):
 * for lakeFS that is the unlink; the name lives on in this mount's memory
 * until the last close. libfuse hides only a file open through this mount,
 * so a rename of anything else to such a name is a program's own (an mv):
 * 1, a rename like any other. */
static int hide(lakefuse_fs *fs, const char *from, const char *to)
{
    struct stat st;
    int rc = fs_stat_path(from, &st);
    if (rc)
        return rc;
    if (!S_ISREG(st.st_mode))
        return 1; /* libfuse counts opens of files only */
    tree_node n;
    rc = fs_resolve_writable(fs, from, &n);
    if (rc)
        return rc;
    wfile *w = fs_node_wfile(fs, &n);
    char *key = w ? NULL : tree_object_key(&n);
    bool open = w || (key && fs_readers_has(fs, n.ref, key));
    free(key);
    if (!open) {
        tree_node_free(&n);
        return 1;
    }
    fs_overlay_staged_metadata(fs, &n); /* what the file has now */
    rc = fs_write_unlink(from);
    if (rc == 0)
        rc = fs_hidden_add(fs, to, &st, w, &n.entry);
    else if (w)
        wfile_release(w);
    tree_node_free(&n);
    return rc;
}

/* Whether paths a and b name entries of the same directory. */
static bool same_parent(const char *a, const char *b)
{
    const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');
    return sa && sb && sa - a == sb - b &&
           strncmp(a, b, (size_t)(sa - a)) == 0;
}

int fs_write_rename(const char *from, const char *to, unsigned int flags)
{
    if (flags & RENAME_EXCHANGE)
        return -EINVAL;
    lakefuse_fs *fs = fs_current();
    /* from: any name, one like libfuse's too */
    if (fs_hidden_name(to) && fs_hidden_probe_was(to)) {
        int rc = hide(fs, from, to);
        if (rc != 1)
            return rc;
    }
    tree_node src, parent, dst;
    char *dst_rel;
    int rc = fs_resolve_writable(fs, from, &src);
    if (rc)
        return rc;
    if (src.kind != TREE_FILE && (src.kind != TREE_DIR || src.ref_root)) {
        tree_node_free(&src);
        return -EPERM; /* branches are not renamed through the filesystem */
    }
    rc = fs_resolve_new_name(fs, to, &parent, &dst_rel);
    if (rc) {
        tree_node_free(&src);
        return rc == -EPERM ? -EPERM : rc;
    }
    if (parent.ref != src.ref)
        rc = -EXDEV; /* another ref: mv copies */
    /* What is at the destination decides what the rename may do: a look
     * that fails (a listing lakeFS did not answer) is the rename's error,
     * never "nothing there" (a directory would merge into a full one). */
    int look = rc ? -ENOENT : tree_resolve(fs->tree, to, &dst);
    int exists = look == 0;
    if (look != 0 && look != -ENOENT)
        rc = look;
    if (rc == 0 && exists && (flags & RENAME_NOREPLACE))
        rc = -EEXIST;
    else if (rc == 0 && exists && dst.kind == TREE_DIR && src.kind == TREE_FILE)
        rc = -EISDIR;
    else if (rc == 0 && exists && dst.kind == TREE_FILE && src.kind == TREE_DIR)
        rc = -ENOTDIR;
    else if (rc == 0 && exists && dst.kind == TREE_DIR)
        rc = check_dir_empty(fs, &dst); /* only an empty one is replaced */
    char *dst_base = strdup(exists && dst.kind == TREE_FILE &&
                                    dst.entry.checksum
                                ? dst.entry.checksum
                                : "");
    if (exists)
        tree_node_free(&dst);
    if (rc == 0 && !dst_base)
        rc = -ENOMEM;
    /* The bits this mount showed go with the file. Noted before the
     * rename: an upload of the file at its new name can land during it (a
     * background retry, the rename's own), and its listing entry is masked
     * by what is noted then. A file being written may have had them set by
     * a chmod the server has not seen yet (src.entry is the listed
     * object): its note moves too. A rename that fails takes the note back,
     * or it would unmask the bits of the object it meant to replace
     * (another client's). */
    char *special = rc == 0 && src.kind == TREE_FILE
                        ? fs_object_key(src.ref, dst_rel)
                        : NULL;
    char *src_key = special ? fs_object_key(src.ref, src.key) : NULL;
    bool carry = src_key && ((src.entry.mode & 07000u) ||
                             tree_special_mode_noted(fs->tree, src.ref->repo,
                                                     src_key));
    bool noted_before = carry && tree_special_mode_noted(fs->tree,
                                                         src.ref->repo,
                                                         special);
    if (carry)
        rc = tree_note_special_mode(fs->tree, src.ref->repo, special);
    if (rc == 0 && !same_parent(from, to))
        rc = fs_keep_parent_dir(fs, src.ref, src.key);
    if (rc == 0)
        rc = src.kind == TREE_FILE
                 ? rename_file(fs, &src, src.ref, dst_rel, dst_base, carry)
                 : rename_dir(fs, &src, src.ref, dst_rel, exists);
    if (rc != 0 && carry && !noted_before)
        tree_forget_special_mode(fs->tree, src.ref->repo, special);
    free(src_key);
    free(special);
    if (rc == 0 && src.kind == TREE_DIR) {
        fs_hidden_move_dir(fs, from, to);
        if (tree_move_local_dirs(fs->tree, src.ref, src.key, dst_rel))
            logger_write(fs->log, LOG_LEVEL_WARNING,
                         "renaming '%s': out of memory for the empty "
                         "directories kept in memory under it", from);
    }
    if (rc == 0) {
        fs_dir_changed(fs, src.ref, src.key);
        fs_dir_changed(fs, src.ref, dst_rel);
        /* The kept times go along (a directory's with everything under
         * it), and the moved name's ctime becomes now, as Linux's file
         * systems set it. */
        char *old_key = fs_object_key(src.ref, src.key);
        char *new_key = fs_object_key(src.ref, dst_rel);
        if (old_key && new_key) {
            if (src.kind == TREE_DIR)
                fs_times_move_dir(fs->times, src.ref->repo, src.ref->api_ref,
                                  old_key, new_key);
            else
                fs_times_move(fs->times, src.ref->repo, src.ref->api_ref,
                              old_key, new_key);
            fs_times_change(fs->times, src.ref->repo, src.ref->api_ref,
                            new_key, NULL, NULL);
        }
        free(old_key);
        free(new_key);
    }
    free(dst_base);
    free(dst_rel);
    tree_node_free(&parent);
    tree_node_free(&src);
    return rc;
}

