/*
 * writer.h - the one module that decides when written bytes reach lakeFS.
 * Each branch path being written has one staged file (staging.h) shared by
 * every descriptor open on it, and a journal entry that says what the
 * bytes are and what they were written on. Never holds file data in
 * memory; never acknowledges an fsync, or a close (unless -o async_close,
 * writer_pool.c, which acknowledges it once staged), before lakeFS has the
 * bytes;
 * never holds a lock across the network that stat, readdir, open or
 * rename of another file needs; never uploads to a name the file no longer
 * owns, or over an object that is not its base (background retries and
 * recovery).
 *
 * States of a wfile (journal "state" in brackets):
 *
 *   CLEAN(base)     [clean]    the staged copy is what the server holds at
 *                              the path (or is still to be copied in from
 *                              base); nothing to upload. base: the object's
 *                              checksum, or ABSENT.
 *   DIRTY(gen)      [pending]  changed since the last upload; gen counts
 *                              changes (content and attributes). Not sealed:
 *                              the data may be torn after a power loss, so
 *                              recovery trusts it only in the same boot.
 *   UPLOADING(gen)  [pending]  an upload of generation gen is in flight.
 *                              Content changes wait for it (the io lock);
 *                              attribute changes, stat, open and reads do
 *                              not (a rename of the file itself does).
 *   FAILED(gen,err) [failed]   the upload failed; the journal is sealed
 *                              (size and SHA-256 of the bytes it tried to
 *                              send: recovery refuses data that no longer
 *                              matches). The staged copy stays and
 *                              is what the mount shows (reads, size, appends
 *                              extend it). Retried in the background with
 *                              backoff, conditionally on base; permanent
 *                              refusals (400, 403, 404...) wait for the next
 *                              close or fsync.
 *   CONFLICT        [conflict] a conditional upload found another object at
 *                              the path than base: the bytes are kept aside
 *                              (listed by `.lakefs/status` and `lakefuse
 *                              staged list`, exported or discarded by
 *                              `lakefuse staged`), never uploaded, and the
 *                              name goes back to the server's object.
 *   DETACHED                   the name was unlinked, or a rename replaced
 *                              it: out of the table, journal removed,
 *                              descriptors still open read the bytes.
 *
 * Transitions:
 *   open existing       -> CLEAN(checksum)     open new/O_TRUNC -> DIRTY(1)
 *   write/truncate/chmod/utimens/xattr: CLEAN|DIRTY|FAILED -> DIRTY(gen+1),
 *                          journaled (fsync) before the change is acked
 *   async_close:         DIRTY|FAILED stay, queued (a reference) for a
 *                          pool thread, which then uploads as a close does
 *   close/fsync/retry:   DIRTY|FAILED -> UPLOADING(gen) -> CLEAN(new
 *                          checksum) if gen unchanged, else DIRTY;
 *                          or FAILED(gen, err); or (conditional) CONFLICT
 *   unlink, replaced by rename: any -> DETACHED
 *   rename:              key changes, state kept; base becomes what the
 *                          server holds at the new name; the files it
 *                          replaced are DETACHED (writer_move_*)
 *   last release:        CLEAN -> freed (staged file removed); DIRTY ->
 *                          uploaded in the background; FAILED stays
 *   recovery (recover.c): a journal left by a dead mount is uploaded only
 *                          if the server still holds its base (durable.h);
 *                          else CONFLICT.
 *
 * Journal fsyncs: a change to a CLEAN file and every FAILED or CONFLICT
 * outcome are fsync'd before they are acknowledged or acted on; an
 * unsealed DIRTY state is not (its bytes are trusted only in the boot they
 * were written in), nor is the CLEAN state after an upload when no state of
 * the entry was ever fsync'd (what a power loss can bring back of it is
 * harmless: recovery drops CLEAN, and drops an unsealed PENDING of an
 * earlier boot when the server holds exactly its bytes, else keeps it
 * aside). A new file's create, upload and release cost no fsync.
 *
 * Locks, in this order: a wfile's io lock (content and uploads), the
 * writer's table lock, a wfile's state lock (state, attributes, key,
 * journal writes; never held across the network). Nothing takes an io
 * lock while holding the table lock. The table is keyed by (repo, branch,
 * key): a rename changes a key under the table lock and the state lock
 * both, so a lookup needs the table lock alone. Opens and renames fsync
 * no journal under the table lock: a new CLEAN wfile's journal is made and
 * fsync'd before the wfile joins the table (it is private until then, and
 * staging's lock nests in none of the writer's); a second lookup then
 * links it or, when another open linked a wfile of the key meanwhile,
 * drops it (a CLEAN journal, removed as any). A rename's journal_sync
 * comes after the table lock is let go. (A last release's journal_sync
 * and a journal's removal still run under it.)
 */
#ifndef LAKEFUSE_WRITER_H
#define LAKEFUSE_WRITER_H

#include "lakefs.h"
#include "listing.h"
#include "log.h"
#include "reader.h"
#include "staging.h"
#include "upload.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct writer writer;
typedef struct wfile wfile;

/* Called after an upload succeeded, with the tag the wfile was opened
 * with and the new object's stats (so the mount's listing shows it); from
 * any thread, with no writer lock held. */
typedef void (*writer_uploaded_fn)(void *ctx, const void *tag,
                                   const lakefs_object_stats *st);

typedef struct writer_config {
    lakefs_client *client;
    staging *staging;
    logger *log;
    upload_caps caps; /* how uploads reach lakeFS */
    uid_t uid;        /* recorded with explicit modes */
    gid_t gid;
    writer_uploaded_fn on_uploaded; /* may be NULL */
    void *on_uploaded_ctx;
    const char *cache_dir; /* where earlier mounts' staged files are */
    int retry_min_ms; /* background retry backoff; 0: defaults */
    int retry_max_ms;
    int upload_threads; /* > 0: -o async_close, wfile_queue's pool */
} writer_config;

/* The async_close pool's counters (writer_pool_get_stats). */
typedef struct writer_pool_stats {
    uint64_t threads;
    uint64_t queued;        /* files waiting for a pool thread now */
    uint64_t in_flight;     /* uploads the pool runs now */
    uint64_t max_in_flight; /* the most at once since the mount */
    uint64_t done;          /* uploads the pool finished */
    uint64_t failed;        /* of which failed (retried as any failure) */
} writer_pool_stats;

writer *writer_new(const writer_config *cfg, int *err);
/* An earlier mount's staged file for this path failed to upload: the
 * first successful upload of the path through this mount supersedes it
 * (removes it), so it can never be uploaded over newer bytes. */
void writer_note_orphan(writer *w, const char *repo, const char *branch,
                        const char *path);
/* Starts the background retry thread (after the daemon has forked). */
int writer_start(writer *w);
/* Stops the retry thread, tries each file still to upload once more
 * (conditionally), and frees the table; what could not be uploaded stays
 * journaled for the next mount. Every descriptor must have been released. */
void writer_free(writer *w);

/* What an existing object is, for a wfile opened on it. */
typedef struct writer_base {
    reader_file *reader;   /* its content, copied in on first use */
    const fs_entry *entry; /* size, mtime, checksum, mode, owner, user
                              metadata and content type to keep */
    /* landed_valid: landed is writer_landed() taken before entry was
     * read (see Landings below). */
    bool landed_valid;
    uint64_t landed;
} writer_base;

/*
 * The wfile of (repo, branch, key), taking a reference: the one in the
 * table (open, or not yet uploaded), else a new one. A new one starts
 * empty when base is NULL (a new file: its base is ABSENT), else on base's
 * object, whose content is copied in on first use unless truncate, so that
 * opening for write and closing unchanged (touch, chmod) costs no download.
 * The wfile owns base->reader (reader_close) in every case. truncate (or a
 * new file) makes it DIRTY. mode: for a new file, lakectl's Mode: S_IFREG
 * | the permission bits, recorded exactly (0000 and 07000 too); 0: none
 * recorded (shown as 0644). tag: the caller's, handed to on_uploaded (the first
 * opener's counts). 0 or a negative errno; -EAGAIN (nothing opened) when
 * a new wfile would start on base's entry (no truncate) but an upload of
 * the key landed since base->landed: its wfile left the table after the
 * caller read the entry, which may be the object before that upload; the
 * caller reads the entry again.
 */
int writer_open(writer *w, const char *repo, const char *branch,
                const char *key, const writer_base *base, bool truncate,
                uint32_t mode, const void *tag, wfile **out);
/* Deletes key's object through delete_fn (0 or a negative errno) and, when
 * that succeeds, detaches key's wfile; its upload in flight finishes
 * first and no other starts meanwhile, so the delete is the last word. */
int writer_unlink(writer *w, const char *repo, const char *branch,
                  const char *key, int (*delete_fn)(void *ctx), void *ctx);
/* The wfile of the key with a reference, or NULL. */
wfile *writer_find(writer *w, const char *repo, const char *branch,
                   const char *key);
/* true when the table is empty (no lock: a hint for hot paths). */
bool writer_idle(const writer *w);
/* Drops a reference; see "last release" above. */
void wfile_release(wfile *f);

ssize_t wfile_read(wfile *f, void *buf, size_t len, off_t off);
/* off < 0: append at the end. */
ssize_t wfile_write(wfile *f, const void *buf, size_t len, off_t off);
int wfile_truncate(wfile *f, off_t size);
/* fallocate(2) on the staged file: mode 0 (allocate, growing the file
 * with zeros), FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE |
 * FALLOC_FL_KEEP_SIZE and FALLOC_FL_ZERO_RANGE (either with or without
 * KEEP_SIZE); what changes bytes or the size is uploaded like a write.
 * Other modes: -EOPNOTSUPP. */
int wfile_fallocate(wfile *f, int mode, off_t off, off_t len);
/* Current size, mtime and mode (S_IFREG | bits when recorded, 0: none
 * recorded, shown as 0644), without waiting for an upload. */
void wfile_attrs(wfile *f, int64_t *size, int64_t *mtime, uint32_t *mode);
/* Its owner when one is recorded or was set (chown) through this mount:
 * what stat shows of a file open for writing, whose object may not have
 * it yet. */
void wfile_owner(wfile *f, bool *has_owner, uid_t *uid, gid_t *gid);
/* Whether f is unsent (its next upload carries what it holds), with its
 * mtime, mode (as wfile_attrs) and owner, read at once. */
bool wfile_unsent_owner(wfile *f, int64_t *mtime, uint32_t *mode,
                        bool *has_owner, uid_t *uid, gid_t *gid);
/* An mtime argument that leaves the mtime as it is: any other value,
 * before 1970 too, is an mtime (epoch seconds). */
#define WFILE_MTIME_KEEP INT64_MIN

/* Attribute changes: journaled; an unsent wfile carries them to the next
 * upload, a CLEAN one only remembers them (the caller updates the object's
 * metadata on the server). uid/gid (uid_t)-1: unchanged. */
int wfile_set_mode(wfile *f, uint32_t mode);
int wfile_set_mtime(wfile *f, int64_t mtime);
int wfile_set_owner(wfile *f, uid_t uid, gid_t gid);
/* value NULL removes key. -ENODATA when removing a key it lacks. */
int wfile_set_meta(wfile *f, const char *key, const char *value);
/* The same changes on an unsent file only (DIRTY or FAILED, an upload of
 * it in flight or not), decided under the lock an upload settles under,
 * so that either its next upload carries them or the server already holds
 * its bytes: 1 when applied, 0 when the file is not unsent (nothing
 * changed: the caller updates the object on the server, then remembers
 * the change with the plain setters), or a negative errno. mtime
 * WFILE_MTIME_KEEP, mode < 0: unchanged. */
int wfile_set_attrs_if_unsent(wfile *f, int64_t mtime, int64_t mode,
                              uid_t uid, gid_t gid);
int wfile_set_meta_if_unsent(wfile *f, const char *key, const char *value);
/* The user metadata the next upload carries (copy; lakefs_metadata_free). */
int wfile_metadata(wfile *f, lakefs_metadata *out);
/* true when the server lacks its newest bytes (DIRTY, UPLOADING, FAILED). */
bool wfile_dirty(wfile *f);
const char *wfile_key(wfile *f);

/* Uploads when not CLEAN: last writer wins (a close or fsync is the
 * program saying "these bytes"). *out (may be NULL) gets the object's
 * stats when an upload happened (returns 1 then), 0 when there was nothing
 * to do. A failure is -EIO (the staged copy stays, FAILED). */
int wfile_flush(wfile *f, lakefs_object_stats *out);

/* Flushes every file of the branch with unsent changes (before a commit or
 * merge). 0, or -EIO when one upload failed. With the pool, the branch's
 * files are queued and uploaded in parallel first. */
int writer_flush_branch(writer *w, const char *repo, const char *branch);
/* fsync of a directory (dir_key "a/b/", the ref's prefix at its root):
 * uploads, or waits for, what its programs handed over in it - its
 * entries and its own marker queued, being uploaded or failed - and not
 * the files still open for writing. 0, or -EIO when one upload failed. */
int writer_flush_dir(writer *w, const char *repo, const char *branch,
                     const char *dir_key);

/*
 * -o async_close (writer_pool.c): a close that queues the upload instead
 * of making it. The staged file and its journal (PENDING) are already the
 * state a failed upload leaves, so the close returns at once; one of
 * cfg.upload_threads threads uploads queued files, oldest first, as a close
 * would (last writer wins); a failure becomes FAILED and is retried in the
 * background as any. A file queued again while its upload runs is uploaded
 * again after it (its io lock orders them). No-op on a file with nothing
 * to upload or already queued; without the pool, uploads as wfile_flush.
 * 0, or what wfile_flush returns.
 */
int wfile_queue(wfile *f);
/* true when this writer queues at close (cfg.upload_threads > 0). */
bool writer_async(const writer *w);
/* Waits until no file of (repo, branch) is queued or being uploaded by
 * the pool (before what reads the branch: diff, status). */
void writer_settle_branch(writer *w, const char *repo, const char *branch);
void writer_pool_get_stats(writer *w, writer_pool_stats *out);

/*
 * Landings: an upload's object reaches the mount's listing (on_uploaded)
 * before its file turns CLEAN and leaves the table. An answer built from
 * the listing read before that and from the writer asked after it (a stat:
 * listing, then "still unsent?"; a directory read: a listing snapshot,
 * then "open here?") would show the listing's older entry (the size before
 * an O_TRUNC rewrite), and the kernel keeps it for the open file. Each
 * landing bumps a count after on_uploaded and before CLEAN: a reader takes
 * writer_landed() before reading the listing, and when
 * writer_landed_since(..., that) is true afterwards, its listing may be
 * older than the writer's answer: it reads again (or gives no attributes).
 * Keyed by a hash of (repo, branch, key): an unrelated landing rarely
 * says true, never a false false.
 */
uint64_t writer_landed(const writer *w);
bool writer_landed_since(const writer *w, const char *repo,
                         const char *branch, const char *key, uint64_t since);
/* Whether a landing is between its on_uploaded and its count now. One who
 * writes an entry it resolved back into the listing checks, after the
 * write, writer_landed_since and this: a landing whose on_uploaded came
 * just before the write (its count not taken yet) was overwritten by it. */
bool writer_landing(const writer *w);

/* The name key no longer belongs to its wfile (the object was unlinked, or
 * a rename replaced it): the wfile leaves the table, so that a new file of
 * that name starts afresh, its journal goes, and its bytes are never
 * uploaded; descriptors still open on it keep reading them. Waits for an
 * upload of it in flight, so that the caller's delete comes after it.
 * No-op when key has no wfile. */
void writer_detach(writer *w, const char *repo, const char *branch,
                   const char *key);
void wfile_mark_unlinked(wfile *f);

/* One file of a directory that the writer holds (open, or not yet on the
 * server): its key, current size, mtime and mode (as wfile_attrs), the
 * user metadata its staged copy carries, and base: the checksum of the
 * object it is when CLEAN (the server has its bytes), else NULL. Pointers
 * valid during the call only. */
typedef struct writer_entry {
    const char *key;
    int64_t size;
    int64_t mtime;
    uint32_t mode;         /* as shown: without unshown_mode */
    uint32_t unshown_mode; /* setuid/setgid/sticky bits the file keeps
                              for its upload but this mount does not show
                              (fs_entry.unshown_mode) */
    const lakefs_metadata *meta;
    const char *base;
    /* A directory's marker not uploaded yet (mkdir with -o async_close):
     * of a subdirectory ("a/b/c/" in "a/b/": the directory "c" exists),
     * or, self, of dir_prefix itself (its mode, mtime and owner). */
    bool is_dir, self;
    /* A file or marker not uploaded yet deeper in directory "c" of
     * dir_prefix ("a/b/c/d/x" in "a/b/"): "c" exists, whatever lakeFS
     * lists (is_dir too; key is the file's, mode and owner not c's). */
    bool implied;
    bool has_owner;
    uid_t uid;
    gid_t gid;
} writer_entry;
/* fn for each wfile of (repo, branch) directly in directory dir_prefix
 * ("" for the root, else "a/b/": keys that start with it and hold no
 * further '/'), each marker not uploaded yet of a directory directly
 * in it or of dir_prefix itself (is_dir), and each file or marker not
 * uploaded yet deeper in it (implied). fn runs under the writer's
 * table lock and must not call back into the writer; a non-zero return
 * stops the walk and is returned. */
int writer_foreach_in_dir(writer *w, const char *repo, const char *branch,
                          const char *dir_prefix,
                          int (*fn)(void *ctx, const writer_entry *e),
                          void *ctx);

/*
 * A rename, in three steps around the caller's server-side copies and
 * deletes. writer_move_begin takes the files being moved (key old_key, or
 * everything under old_key + "/" when prefix) and those at the
 * destination, waits for their uploads in flight and keeps new ones from
 * starting, so that the caller's steps are the last word on both names
 * (renames are serialised). writer_move_end(done) then, when the caller's
 * steps succeeded, detaches the destination's files (the rename replaced
 * them: their descriptors keep reading, nothing uploads them) and gives
 * the moved ones their new names; when they failed, changes nothing. Its
 * new_base is what the destination holds on the server after the caller's
 * steps: NULL keeps each file's base (the server copied the objects
 * along), "" makes it ABSENT, else that checksum (the object the rename
 * replaced, which the file's next upload replaces). *out is NULL when the
 * writer holds none of these files.
 */
typedef struct writer_move writer_move;
int writer_move_begin(writer *w, const char *repo, const char *branch,
                      const char *old_key, const char *new_key, bool prefix,
                      writer_move **out);
/* true when a file being moved has bytes the server lacks: they go to the
 * new name with its next upload, no server copy of them is needed. */
bool writer_move_dirty(const writer_move *m);
/* fn(ctx, old_key, new_key) for each file being moved (detached ones
 * aside), between begin and end: the names it will have when the move is
 * done. A non-zero return stops the walk and is returned. */
int writer_move_foreach(const writer_move *m,
                        int (*fn)(void *ctx, const char *old_key,
                                  const char *new_key),
                        void *ctx);
int writer_move_end(writer_move *m, bool done, const char *new_base);

#endif
