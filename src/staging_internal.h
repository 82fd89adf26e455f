/*
 * staging_internal.h - what the two halves of the staging store share:
 * sessions and locks (staging.c) and the journal format (staging_journal.c).
 * Not for other modules: they use staging.h.
 */
#ifndef LAKEFUSE_STAGING_INTERNAL_H
#define LAKEFUSE_STAGING_INTERNAL_H

#include "staging.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TEMP_PREFIX ".tmp-" /* journals being written */
#define SPARE_NAME TEMP_PREFIX "spare.json" /* see staging_journal_replace */
#define JOURNAL_VERSION 2 /* 1 is still read: it has no base */
/* An entry holds the object's user metadata, which lakeFS may hand over in
 * a JSON answer of up to 16 MiB (LAKEFS_JSON_BODY_MAX): what the writer can
 * write, recovery and .lakefs/status must read back (JSON escapes at most
 * double what came escaped). */
#define JOURNAL_MAX_BYTES (32 * 1024 * 1024)
#define ENTRY_NAME_MAX 48

/* A state the journal can hold. */
bool staging_state_valid(staging_state state);
/* A regular file of at most JOURNAL_MAX_BYTES under dir_fd, read whole and
 * NUL-terminated (*text malloc'd). 0 or -errno. */
int staging_read_journal_text(int dir_fd, const char *name, char **text,
                             size_t *len);
/* Replaces <id>.json whole: temp file, fsync, rename, directory fsync. */
int staging_journal_write(int dir_fd, uint64_t id, const staging_entry *e);
/* The same without the fsyncs: the new journal survives the daemon's
 * death (the page cache does), not necessarily a power loss. */
int staging_journal_write_unsynced(int dir_fd, uint64_t id,
                                   const staging_entry *e);
/* The same for a journal that exists (a change): through the directory's
 * spare file, exchanged with <id>.json, so that no inode is made or freed;
 * the caller serialises the writes in dir_fd. */
int staging_journal_replace(int dir_fd, uint64_t id, const staging_entry *e);
int staging_journal_replace_unsynced(int dir_fd, uint64_t id,
                                     const staging_entry *e);
/* Fills e's repo, branch, path, state, error and mode from a journal;
 * -EINVAL with *why on anything malformed. */
int staging_journal_parse(const char *text, size_t len, staging_entry *e,
                         const char **why);
/* Frees what e owns and zeroes it. */
void staging_entry_clear(staging_entry *e);
/* One entry of a session: its journal and its data file's size and mtime;
 * an unreadable journal or a missing data file gives STAGING_FAILED with
 * the reason rather than an error. */
int staging_entry_load(int dir_fd, const char *session,
                      const char *session_path, uint64_t id, staging_entry *e);
/* "<id><suffix>" (".json", ".data") into buf of ENTRY_NAME_MAX bytes. */
void staging_entry_file_name(char *buf, uint64_t id, const char *suffix);

#endif
