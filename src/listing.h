/*
 * listing.h - turns lakeFS listObjects results into POSIX directory entries
 * (fs_entry): names, types, sizes, times and the lakectl ::lakefs:: metadata
 * (client-mtime, posix-permissions, symlink-target). Pure functions: never
 * does I/O, never trusts a server-sent name to be a valid POSIX name.
 */
#ifndef LAKEFUSE_LISTING_H
#define LAKEFUSE_LISTING_H

#include "lakefs.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The lakectl metadata keys (pkg/api/apiutil/constant.go). */
#define LISTING_KEY_CLIENT_MTIME "::lakefs::client-mtime"
#define LISTING_KEY_POSIX_PERMISSIONS "::lakefs::posix-permissions"
#define LISTING_KEY_SYMLINK_TARGET "::lakefs::symlink-target"
/* This project's key: a device node's st_rdev, decimal, as user metadata
 * (lakectl records none: it stores no special files; lower-case, as
 * uploadObject's X-Lakefs-Meta- headers store keys). */
#define LISTING_KEY_RDEV "lakefuse-rdev"

#define LISTING_NAME_MAX 255
#define LISTING_DEFAULT_FILE_MODE 0644u
#define LISTING_DEFAULT_DIR_MODE 0755u

/* One directory entry. Every pointer is owned by the entry (fs_entry_free);
 * a zeroed struct is a valid empty entry. */
typedef struct fs_entry {
    char *name; /* one path component, a valid POSIX name */
    bool is_dir;
    bool is_symlink; /* ::lakefs::symlink-target present */
    uint32_t special; /* S_IFIFO, S_IFSOCK, S_IFCHR or S_IFBLK: a special
                         file, stored as an empty object whose
                         posix-permissions Mode has that type; else 0 */
    uint64_t rdev;    /* a device node's lakefuse-rdev, else 0 */
    int64_t size;    /* 0 for directories */
    int64_t mtime;   /* ::lakefs::client-mtime (decimal seconds) when valid,
                        else the object's mtime; 0 for common prefixes */
    uint32_t mode;   /* permission bits only (low 12 bits of
                        ::lakefs::posix-permissions Mode when valid),
                        else 0644 files / 0755 directories */
    uint32_t unshown_mode;  /* setuid/setgid/sticky bits the object records
                               that this mount does not show (tree.c masks
                               them out of mode); a change of the object
                               records them again */
    uint32_t uid, gid;
    bool has_owner;         /* uid/gid came from posix-permissions */
    bool marker_has_bytes;  /* a directory's marker ("dir/") with bytes,
                               which no file shows */
    char *checksum;         /* NULL for directories */
    char *physical_address; /* may be a presigned URL; NULL for dirs */
    int64_t physical_address_expiry;
    char *content_type;       /* may be NULL */
    lakefs_metadata metadata; /* user metadata, all keys, as received */
} fs_entry;

/* The entry's file type: S_IFDIR, S_IFLNK, its special type or S_IFREG. */
uint32_t fs_entry_type(const fs_entry *e);

/* Frees what the entry owns and zeroes it (freeing twice is harmless). */
void fs_entry_free(fs_entry *e);
/* Deep copy into dst (overwritten, not freed first). 0 or -ENOMEM, in which
 * case dst is left zeroed. */
int fs_entry_copy(fs_entry *dst, const fs_entry *src);
/* Converts one object stat into the entry of a file named `name` (copied;
 * not validated here). 0 or -ENOMEM (out left zeroed). */
int fs_entry_from_object(fs_entry *out, const char *name,
                         const lakefs_object_stats *st);
/* The same for a directory's marker object ("dir/"): a directory entry
 * with the marker's mode (0755 when it records none), owner and mtime. */
int fs_entry_from_marker(fs_entry *out, const char *name,
                         const lakefs_object_stats *marker);

/* true when name can be one POSIX path component: not empty, not "." or
 * "..", no "/", at most LISTING_NAME_MAX bytes. (A C string cannot hold a
 * NUL, so names with one arrive truncated and the client rejects them.) */
bool listing_name_is_valid(const char *name);

/* true when s is valid UTF-8 (no overlong forms, surrogates or bytes
 * above U+10FFFF). lakeFS's JSON answers are UTF-8: a name that is not
 * cannot be a real lakeFS key, nor be asked for again. */
bool listing_utf8_is_valid(const char *s);
/* The same, with U+0000 as JSONNUL_MARK (jsonnul.h) allowed: a value
 * that may hold NULs (user metadata). */
bool listing_utf8_nul_is_valid(const char *s);

/* A server-sent string made fit for one log line: control characters,
 * '\\', '"' and bytes that are not UTF-8 as \xNN (U+0000, jsonnul.h's
 * mark, as \x00), cut with "..." to fit cap bytes (NUL included). */
#define LISTING_PRINTABLE_MAX 512
void listing_printable(const char *s, char *buf, size_t cap);

typedef void (*listing_warn_fn)(void *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Builds the entries of directory `prefix` ("" or ending in "/"), sorted by
 * name (bytewise), from the listObjects(delimiter="/") results of that
 * prefix, all pages concatenated in server order.
 *   - the marker object whose path == prefix is dropped;
 *   - common prefixes become directories named without the trailing "/";
 *   - names that cannot be POSIX names (empty - from "//" -, ".", "..",
 *     longer than 255 bytes), names that are not UTF-8 and results whose
 *     key is longer than LAKEFS_MAX_PATH_LENGTH (a directory's counting its
 *     '/') are skipped with a warning (names in it escaped, one line);
 *   - an object "a" and a prefix "a/" both present: the directory wins and
 *     the object is reported through warn;
 *   - a result not starting with prefix is skipped with a warning.
 * warn may be NULL. On success *entries_out (free each entry with
 * fs_entry_free, then the array with free; NULL when *count_out is 0) and
 * *count_out are set. Returns 0, -EINVAL (bad prefix) or -ENOMEM.
 */
int listing_build(const char *prefix, const lakefs_object_stats *items,
                  size_t n, fs_entry **entries_out, size_t *count_out,
                  listing_warn_fn warn, void *warn_ctx);

/*
 * Merges into entries (n of them, sorted as listing_build makes them) the
 * regular files a directory holds beyond what lakeFS listed - files being
 * written, whose bytes are newer than any object of the same name:
 *   - a name not listed is added (its extra's size, mtime and user
 *     metadata; mode 0: 0644, else its permission bits: extra's mode may
 *     carry S_IFREG so that a recorded 0000 is not 0), unshown_mode and
 *     owner (has_owner, uid, gid: the mount's when it has none);
 *   - a regular file already listed takes its extra's size and mtime, and
 *     its mode and unshown_mode when the mode is not 0 (extra's mode holds
 *     no bit of its unshown_mode: the caller masks it), and its owner when
 *     it has one (has_owner) - unless extra's
 *     checksum (set when the server has the file's bytes) is the listed
 *     one's: that object is the file, as listed;
 *   - a directory or symlink of that name stays as listed;
 *   - an extra that is_dir (a directory's marker not uploaded yet: its name,
 *     or "." for the listed directory's own) is added as a directory, or
 *     gives a listed directory its mode, mtime and owner (a file listed
 *     under that name stays); one whose mode is 0 (a directory that
 *     exists, with no attributes of its own) is only added: a listed
 *     entry of that name stays as listed.
 * Names in extra must be distinct; invalid ones are skipped. The result
 * stays sorted. 0, or -ENOMEM with *entries and *n unchanged.
 */
int listing_merge_files(fs_entry **entries, size_t *n, const fs_entry *extra,
                        size_t extra_n);

/* Frees an array of count entries and the array itself. */
void fs_entries_free(fs_entry *entries, size_t count);

#endif
