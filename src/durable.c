/*
 * durable.c - seals and identifies staged bytes (SHA-256 digests, store
 * ETags, the boot they were written in) and uploads them only over the
 * base they were written on. Reads staged files with pread in bounded
 * chunks: never holds a file in memory.
 */
#include "durable.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (1u << 20)

static void hex(const unsigned char *d, unsigned n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

/* What one pass over a file gives (fingerprint): each part wanted when
 * its pointer is non-NULL. */
typedef struct fingerprint_out {
    char *sha256;    /* DURABLE_DIGEST_HEX: SHA-256, hex */
    char *md5;       /* DURABLE_ETAG_MAX: MD5, hex (a PUT's ETag) */
    char *multipart; /* DURABLE_ETAG_MAX: "MD5-of-part-MD5s-N" */
    int64_t part_size; /* of multipart, > 0 */
} fingerprint_out;

static EVP_MD_CTX *md_start(const EVP_MD *md, bool wanted, int *rc)
{
    if (!wanted || *rc)
        return NULL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, md, NULL) != 1)
        *rc = -ENOMEM;
    return ctx;
}

static int md_update(EVP_MD_CTX *ctx, const void *p, size_t n)
{
    return !ctx || EVP_DigestUpdate(ctx, p, n) == 1 ? 0 : -EIO;
}

/* Finishes ctx into hex (out non-NULL), 16 raw bytes into raw when given. */
static int md_finish(EVP_MD_CTX *ctx, char *out, unsigned char *raw)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    if (!ctx)
        return 0;
    if (EVP_DigestFinal_ex(ctx, d, &n) != 1)
        return -EIO;
    if (raw)
        memcpy(raw, d, 16);
    if (out)
        hex(d, n, out);
    return 0;
}

/* The first size bytes of fd (pread), read once, hashed every way out
 * asks for. 0, or -EIO when the file is shorter or a digest fails, or
 * -errno. */
static int fingerprint(int fd, int64_t size, const fingerprint_out *out)
{
    int rc = 0;
    long parts = out->multipart
                     ? (long)((size + out->part_size - 1) / out->part_size)
                     : 0;
    unsigned char *part_md5s = parts ? malloc((size_t)parts * 16) : NULL;
    char *buf = malloc(CHUNK);
    if (!buf || (parts && !part_md5s))
        rc = -ENOMEM;
    EVP_MD_CTX *sha = md_start(EVP_sha256(), out->sha256, &rc);
    EVP_MD_CTX *md5 = md_start(EVP_md5(), out->md5, &rc);
    EVP_MD_CTX *part = md_start(EVP_md5(), parts > 0, &rc);
    long part_no = 0;
    int64_t part_left = out->part_size;
    for (int64_t off = 0; rc == 0 && off < size;) {
        size_t want = size - off < (int64_t)CHUNK ? (size_t)(size - off) : CHUNK;
        ssize_t n = pread(fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            break;
        }
        rc = md_update(sha, buf, (size_t)n);
        if (rc == 0)
            rc = md_update(md5, buf, (size_t)n);
        for (size_t at = 0; rc == 0 && part && at < (size_t)n;) {
            size_t take = (size_t)n - at;
            if ((int64_t)take > part_left)
                take = (size_t)part_left;
            rc = md_update(part, buf + at, take);
            at += take;
            part_left -= (int64_t)take;
            if (rc == 0 && part_left == 0) { /* a whole part */
                rc = md_finish(part, NULL, part_md5s + 16 * part_no++);
                if (rc == 0 && EVP_DigestInit_ex(part, EVP_md5(), NULL) != 1)
                    rc = -EIO;
                part_left = out->part_size;
            }
        }
        off += n;
    }
    if (rc == 0 && part && part_left < out->part_size) /* the last, short */
        rc = md_finish(part, NULL, part_md5s + 16 * part_no++);
    if (rc == 0)
        rc = md_finish(sha, out->sha256, NULL);
    if (rc == 0)
        rc = md_finish(md5, out->md5, NULL);
    if (rc == 0 && parts) {
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned n = 0;
        if (part_no != parts ||
            EVP_Digest(part_md5s, (size_t)parts * 16, d, &n, EVP_md5(),
                       NULL) != 1) {
            rc = -EIO;
        } else {
            hex(d, n, out->multipart);
            snprintf(out->multipart + 2 * n, DURABLE_ETAG_MAX - 2 * n, "-%ld",
                     parts);
        }
    }
    EVP_MD_CTX_free(sha);
    EVP_MD_CTX_free(md5);
    EVP_MD_CTX_free(part);
    free(part_md5s);
    free(buf);
    return rc;
}

int durable_digest_fd(int fd, int64_t size, char out[DURABLE_DIGEST_HEX])
{
    int rc = fingerprint(fd, size, &(fingerprint_out){.sha256 = out});
    if (rc)
        out[0] = '\0';
    return rc;
}

static bool is_md5_hex(const char *s, size_t len)
{
    if (len != 32)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* "<md5 of the parts' md5s>-<parts>" of size bytes in part_size parts. */
static int multipart_etag(int fd, int64_t size, int64_t part_size,
                          char out[DURABLE_ETAG_MAX])
{
    return fingerprint(fd, size, &(fingerprint_out){.multipart = out,
                                                    .part_size = part_size});
}

static bool multipart_etag_matches(int fd, int64_t size, int64_t part_size,
                                   const char *want, long parts)
{
    char text[DURABLE_ETAG_MAX];
    if (part_size <= 0 || size <= 0 ||
        (size + part_size - 1) / part_size != parts)
        return false;
    return multipart_etag(fd, size, part_size, text) == 0 &&
           strncasecmp(text, want, 32) == 0;
}

bool durable_bytes_match(int fd, int64_t size, const char *checksum,
                         const upload_caps *caps)
{
    if (!checksum)
        return false;
    const char *s = checksum;
    size_t len = strlen(s);
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
        s++;
        len -= 2;
    }
    const char *dash = memchr(s, '-', len);
    if (dash) {
        char *end = NULL;
        long parts = strtol(dash + 1, &end, 10);
        if (!is_md5_hex(s, (size_t)(dash - s)) || parts <= 0 ||
            end != s + len)
            return false;
        return multipart_etag_matches(fd, size, upload_part_size(caps, size), s,
                                      parts);
    }
    if (!is_md5_hex(s, len))
        return false;
    char text[DURABLE_ETAG_MAX];
    if (fingerprint(fd, size, &(fingerprint_out){.md5 = text}) != 0)
        return false;
    return strncasecmp(text, s, 32) == 0;
}

int durable_failed_attempt(int fd, int64_t size, const upload_caps *caps,
                           char digest[DURABLE_DIGEST_HEX],
                           char etags[DURABLE_ATTEMPT_ETAGS][DURABLE_ETAG_MAX],
                           size_t *n)
{
    bool multi = etags && upload_eager_in_parts(caps, size);
    fingerprint_out o = {.sha256 = digest,
                         .md5 = etags ? etags[0] : NULL,
                         .multipart = multi ? etags[1] : NULL,
                         .part_size = multi ? upload_part_size(caps, size) : 0};
    int rc = fingerprint(fd, size, &o);
    if (n)
        *n = rc == 0 && etags ? (multi ? 2 : 1) : 0;
    if (rc && digest)
        digest[0] = '\0';
    return rc;
}

static bool one_of(const char *checksum, const char *const *list, size_t n)
{
    for (size_t i = 0; checksum && i < n; i++)
        if (list[i] && strcmp(list[i], checksum) == 0)
            return true;
    return false;
}

void durable_boot_id(char out[DURABLE_BOOT_ID_MAX])
{
    out[0] = '\0';
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, out, DURABLE_BOOT_ID_MAX - 1);
    close(fd);
    out[n > 0 ? n : 0] = '\0';
    char *nl = strchr(out, '\n');
    if (nl)
        *nl = '\0';
}

static void say(lakefs_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void say(lakefs_error *err, const char *fmt, ...)
{
    va_list ap;
    err->status = 0;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

/* The object at path now: 1 with *st, 0 when there is none, or -errno. */
static int current_object(lakefs_client *c, const char *repo,
                          const char *branch, const char *path,
                          lakefs_object_stats *st, lakefs_error *err)
{
    int rc = lakefs_stat_object(c, repo, branch, path, false, st, err);
    if (rc == -ENOENT)
        return 0;
    return rc ? rc : 1;
}

/* DURABLE_ALREADY_THERE when the object st (have: there is one) holds
 * exactly fd's size bytes, *st then moved to out (or freed); else 0, st
 * left to the caller. */
static int already_there(int fd, int64_t size, const upload_caps *caps,
                         int have, lakefs_object_stats *st,
                         lakefs_object_stats *out)
{
    if (!have || !durable_bytes_match(fd, size, st->checksum, caps))
        return 0;
    if (out) {
        lakefs_object_stats_free(out);
        *out = *st;
        memset(st, 0, sizeof(*st));
    } else {
        lakefs_object_stats_free(st);
    }
    return DURABLE_ALREADY_THERE;
}

int durable_server_has(lakefs_client *c, const upload_caps *caps,
                       const char *repo, const char *branch, const char *path,
                       int fd, int64_t size, lakefs_object_stats *out,
                       lakefs_error *err)
{
    lakefs_object_stats st;
    memset(&st, 0, sizeof(st));
    int have = current_object(c, repo, branch, path, &st, err);
    if (have < 0)
        return have;
    if (already_there(fd, size, caps, have, &st, out))
        return 1;
    lakefs_object_stats_free(&st);
    return 0;
}

int durable_upload_if_base(lakefs_client *c, const upload_caps *caps,
                           const char *repo, const char *branch,
                           const char *path, int fd, int64_t size,
                           const durable_base *base, const upload_attrs *attrs,
                           lakefs_object_stats *out, lakefs_error *err)
{
    lakefs_object_stats st;
    memset(&st, 0, sizeof(st));
    if (out)
        memset(out, 0, sizeof(*out));
    if (!base->absent && !base->checksum) {
        say(err, "the object these bytes were written on is unknown");
        return DURABLE_CONFLICT;
    }
    int have = current_object(c, repo, branch, path, &st, err);
    if (have < 0)
        return have;
    /* An earlier attempt of this file that lakeFS applied though its
     * answer was lost stands for the base. */
    bool own = have && one_of(st.checksum, base->own, base->n_own);
    bool on_base = have && (own || (!base->absent && st.checksum &&
                                    strcmp(st.checksum, base->checksum) == 0));
    if (!on_base && already_there(fd, size, caps, have, &st, out))
        return DURABLE_ALREADY_THERE;
    int rc = 0;
    if (on_base) {
        rc = 0;
    } else if (base->absent && have) {
        say(err, "'%s' was created by another client (checksum %s) since "
                 "these bytes were written",
            path, st.checksum ? st.checksum : "?");
        rc = DURABLE_CONFLICT;
    } else if (!base->absent && !have) {
        say(err, "'%s' was deleted since these bytes were written", path);
        rc = DURABLE_CONFLICT;
    } else if (!base->absent &&
               (!st.checksum || strcmp(st.checksum, base->checksum) != 0)) {
        say(err, "'%s' was changed by another client (now %s) since these "
                 "bytes were written",
            path, st.checksum ? st.checksum : "?");
        rc = DURABLE_CONFLICT;
    }
    lakefs_object_stats_free(&st);
    if (rc)
        return rc;
    upload_attrs a = *attrs;
    a.if_absent = base->absent && !have;
    rc = upload_fd(c, caps, repo, branch, path, fd, size, &a, out, err);
    if (rc == -EEXIST && base->absent) {
        /* The client sends an upload again when its answer was lost, and
         * If-None-Match then refuses the object the first one made: these
         * very bytes. An object holding them is this upload's; another is
         * a create by another client. */
        int there = durable_server_has(c, caps, repo, branch, path, fd,
                                       size, out, err);
        if (there < 0)
            return there;
        if (there)
            return DURABLE_ALREADY_THERE;
        say(err, "'%s' was created by another client since these bytes "
                 "were written",
            path);
        return DURABLE_CONFLICT;
    }
    return rc;
}

bool durable_failure_is_permanent(int rc, const lakefs_error *err)
{
    if (rc == -ENOMEM || rc == -EAGAIN || rc == -ETIMEDOUT)
        return false;
    int s = err ? err->status : 0;
    return s == 400 || s == 401 || s == 403 || s == 404 || s == 412 ||
           s == 422;
}
