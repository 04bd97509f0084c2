#include "control/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/config.h"
#include "core/fs.h"
#include "core/log.h"

/* One encoding only, so that the bytes on disk are the bytes hashed:
 * keys sorted, no spaces, everything outside ASCII escaped. */
#define CANON       (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII)
#define SIG_DOMAIN  "fogport-audit-v1:"
#define HEAD_DOMAIN "fogport-audit-head-v1:"
/* seq, time, kind, actor, subject, details, prev, kid, hash, sig */
#define ENTRY_FIELDS 10

struct fp_audit {
    pthread_mutex_t lock; /* request threads; flock() covers other processes */
    int fd;               /* O_APPEND */
    const fp_key *key;
    char path[FP_PATH_MAX + 16];
    char head[FP_PATH_MAX + 16];
    char key_path[FP_PATH_MAX];
};

/* The chain's end as the file has it. */
struct tail {
    uint64_t seq;
    char hash[FP_DIGEST_MAX];
    off_t size;
};

static const char *const own_actor = "fogport";

void fp_audit_head_path(const char *log_path, char *out, size_t outlen)
{
    size_t n = strlen(log_path);
    if (n > 4 && !strcmp(log_path + n - 4, ".log"))
        snprintf(out, outlen, "%.*s.head", (int)(n - 4), log_path);
    else
        snprintf(out, outlen, "%s.head", log_path);
}

const char *fp_audit_path(const fp_audit *a)
{
    return a->path;
}

void fp_audit_set_key_path(fp_audit *a, const char *path)
{
    if (a && path) snprintf(a->key_path, sizeof a->key_path, "%s", path);
}

/* sha256 of the entry's encoding without "hash" and "sig". */
static int entry_hash(const json_t *e, char out[FP_DIGEST_MAX])
{
    json_t *body = json_copy((json_t *)e);
    if (!body) return -1;
    json_object_del(body, "hash");
    json_object_del(body, "sig");
    char *text = json_dumps(body, CANON);
    json_decref(body);
    if (!text) return -1;
    fp_digest_bytes(FP_SHA256, text, strlen(text), out);
    free(text);
    return 0;
}

static int sign_text(const fp_key *k, const char *text, fp_buf *sig, fp_error *err)
{
    return fp_es256_sign(k, text, strlen(text), sig, err);
}

static bool pread_all(int fd, void *buf, size_t len, off_t at)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, (char *)buf + got, len - got, at + (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        got += (size_t)n;
    }
    return true;
}

/* Offset just past the last '\n' among the first size bytes (0: none). */
static int end_of_last_line(int fd, off_t size, off_t *end, fp_error *err)
{
    char buf[8192];
    off_t pos = size;
    while (pos > 0) {
        size_t n = pos < (off_t)sizeof buf ? (size_t)pos : sizeof buf;
        pos -= (off_t)n;
        if (!pread_all(fd, buf, n, pos)) return fp_error_set(err, errno, "read audit log");
        const char *nl = memrchr(buf, '\n', n);
        if (nl) {
            *end = pos + (off_t)(nl - buf) + 1;
            return 0;
        }
    }
    *end = 0;
    return 0;
}

/* The entry on the last line of a file whose first `end` bytes end in
 * '\n' (end > 0). */
static int last_entry(int fd, off_t end, json_t **entry, fp_error *err)
{
    size_t win = end > FP_AUDIT_LINE_MAX + 1 ? FP_AUDIT_LINE_MAX + 1 : (size_t)end;
    cleanup_free char *buf = malloc(win);
    if (!buf) return fp_error_set(err, ENOMEM, "audit log");
    if (!pread_all(fd, buf, win, end - (off_t)win))
        return fp_error_set(err, errno, "read audit log");
    const char *nl = win > 1 ? memrchr(buf, '\n', win - 1) : NULL;
    if (!nl && (off_t)win < end) return fp_error_set(err, 0, "audit log: last line too long");
    const char *start = nl ? nl + 1 : buf;
    *entry = json_loadb(start, (size_t)(buf + win - 1 - start), JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(*entry) || !json_is_integer(json_object_get(*entry, "seq")) ||
        !json_is_string(json_object_get(*entry, "hash"))) {
        json_decref(*entry);
        return fp_error_set(err, 0,
                            "audit log: the last entry is unreadable, so nothing can chain to it "
                            "(see fogport audit verify; move the file aside to start a new log)");
    }
    return 0;
}

int fp_audit_head_read(const char *head_path, json_t **head, fp_error *err)
{
    cleanup_free char *text = NULL;
    size_t len;
    if (fp_read_file(head_path, FP_AUDIT_LINE_MAX, &text, &len, err) < 0)
        return err->errnum == ENOENT ? 1 : -1;
    *head = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(*head)) {
        json_decref(*head);
        return fp_error_set(err, 0, "%s: not a JSON object", head_path);
    }
    return 0;
}

/* Write one entry after t (updated) and the head that names it. Locked. */
static int append_locked(fp_audit *a, struct tail *t, const char *kind, const char *actor,
                         const char *subject, const json_t *details, fp_error *err)
{
    if (details && !json_is_object(details))
        return fp_error_set(err, EINVAL, "audit %s: details must be an object", kind);
    json_t *e = json_pack("{s:I, s:I, s:s, s:s, s:s, s:o, s:s, s:s}", "seq",
                          (json_int_t)(t->seq + 1), "time", (json_int_t)time(NULL), "kind", kind,
                          "actor", actor ? actor : "", "subject", subject ? subject : "", "details",
                          details ? json_deep_copy(details) : json_object(), "prev", t->hash, "kid",
                          fp_key_id(a->key));
    char hash[FP_DIGEST_MAX];
    cleanup_buf fp_buf sig = FP_BUF_INIT, input = FP_BUF_INIT;
    if (!e || entry_hash(e, hash) < 0) {
        json_decref(e);
        return fp_error_set(err, ENOMEM, "audit entry");
    }
    fp_buf_printf(&input, SIG_DOMAIN "%s", hash);
    if (sign_text(a->key, input.data, &sig, err) < 0) {
        json_decref(e);
        return fp_error_prefix(err, "audit entry");
    }
    json_object_set_new(e, "hash", json_string(hash));
    json_object_set_new(e, "sig", json_string(sig.data));
    cleanup_free char *line = json_dumps(e, CANON);
    json_decref(e);
    if (!line) return fp_error_set(err, ENOMEM, "audit entry");
    size_t len = strlen(line);
    if (len + 1 > FP_AUDIT_LINE_MAX)
        return fp_error_set(err, EFBIG, "audit %s: entry larger than %d bytes", kind,
                            FP_AUDIT_LINE_MAX);
    line[len] = '\n'; /* the terminating NUL is not written */
    /* one write of the whole line; whatever part of a failed one landed is
     * cut again, so the next entry never follows half a line */
    if (fp_write_all(a->fd, line, len + 1) < 0 || fsync(a->fd) < 0) {
        int e2 = errno;
        if (ftruncate(a->fd, t->size) < 0)
            fp_errorf("event=audit_rollback_failed path=%s errno=%d", a->path, errno);
        return fp_error_set(err, e2, "append to %s", a->path);
    }
    t->seq++;
    t->size += (off_t)len + 1;
    snprintf(t->hash, sizeof t->hash, "%s", hash);

    /* the head: signed apart from the entry, under its own prefix, so an
     * entry's signature never passes for a head's */
    fp_buf_reset(&input);
    fp_buf_reset(&sig);
    fp_buf_printf(&input, HEAD_DOMAIN "%llu:%s", (unsigned long long)t->seq, hash);
    if (sign_text(a->key, input.data, &sig, err) < 0) return fp_error_prefix(err, "audit head");
    json_t *h =
        json_pack("{s:I, s:s, s:s, s:s, s:I}", "seq", (json_int_t)t->seq, "hash", hash, "kid",
                  fp_key_id(a->key), "sig", sig.data, "time", (json_int_t)time(NULL));
    if (h && a->key_path[0]) json_object_set_new(h, "key", json_string(a->key_path));
    cleanup_free char *htext = h ? json_dumps(h, CANON) : NULL;
    json_decref(h);
    fp_error herr;
    /* the entry stands without it: a head one entry behind is what a crash
     * between the two writes leaves, and verifies */
    if (!htext || fp_write_file_atomic(a->head, htext, strlen(htext), 0600, &herr) < 0)
        fp_errorf("event=audit_head_failed path=%s error=\"%s\"", a->head,
                  htext ? herr.msg : "out of memory");
    return 0;
}

/* Find the chain's end; cut a torn last line; compare with the signed
 * head, and record either finding in the log itself. Locked. */
static int prepare_locked(fp_audit *a, struct tail *t, fp_error *err)
{
    struct stat st;
    if (fstat(a->fd, &st) < 0) return fp_error_set(err, errno, "stat %s", a->path);
    t->size = st.st_size;
    t->seq = 0;
    snprintf(t->hash, sizeof t->hash, "%s", FP_AUDIT_GENESIS);
    long long torn = 0;
    char last = '\n';
    if (t->size > 0 && !pread_all(a->fd, &last, 1, t->size - 1))
        return fp_error_set(err, errno, "read %s", a->path);
    if (last != '\n') {
        off_t end;
        if (end_of_last_line(a->fd, t->size, &end, err) < 0) return -1;
        if (ftruncate(a->fd, end) < 0 || fsync(a->fd) < 0)
            return fp_error_set(err, errno, "cut the torn end of %s", a->path);
        torn = (long long)(t->size - end);
        fp_warn("event=audit_torn_tail path=%s cut_bytes=%lld", a->path, torn);
        t->size = end;
    }
    if (t->size > 0) {
        json_t *e = NULL;
        if (last_entry(a->fd, t->size, &e, err) < 0) return fp_error_prefix(err, "%s", a->path);
        t->seq = (uint64_t)json_integer_value(json_object_get(e, "seq"));
        snprintf(t->hash, sizeof t->hash, "%s", json_string_value(json_object_get(e, "hash")));
        json_decref(e);
    }
    json_t *head = NULL, *found = NULL;
    fp_error herr;
    int hrc = fp_audit_head_read(a->head, &head, &herr);
    if (hrc == 0) {
        uint64_t hseq = (uint64_t)json_integer_value(json_object_get(head, "seq"));
        const char *hhash = json_string_value(json_object_get(head, "hash"));
        const char *key = json_string_value(json_object_get(head, "key"));
        if (!a->key_path[0] && key) snprintf(a->key_path, sizeof a->key_path, "%s", key);
        /* a head one behind is a crash between the two writes: fine */
        if (hseq > t->seq || (hseq == t->seq && (!hhash || strcmp(hhash, t->hash) != 0)))
            found = json_pack("{s:s, s:I, s:s, s:I, s:s}", "reason",
                              "the log ends before its signed head", "head_seq", (json_int_t)hseq,
                              "head_hash", hhash ? hhash : "", "log_seq", (json_int_t)t->seq,
                              "log_hash", t->hash);
    } else if (hrc < 0 || t->seq > 1) {
        /* only the very first append can have crashed before its head */
        found = json_pack("{s:s, s:I, s:s}", "reason",
                          hrc < 0 ? "the signed head is unreadable" : "the signed head is missing",
                          "log_seq", (json_int_t)t->seq, "log_hash", t->hash);
    }
    json_decref(head);
    int rc = 0;
    if (torn) {
        json_t *d = json_pack("{s:I}", "cut_bytes", (json_int_t)torn);
        rc = append_locked(a, t, FP_AUDIT_REPAIRED, own_actor, "audit.log", d, err);
        json_decref(d);
    }
    if (found && rc == 0) {
        fp_errorf("event=audit_tampered path=%s reason=\"%s\"", a->path,
                  json_string_value(json_object_get(found, "reason")));
        rc = append_locked(a, t, FP_AUDIT_TAMPERED, own_actor, "audit.log", found, err);
    }
    json_decref(found);
    return rc;
}

static void lock(fp_audit *a)
{
    pthread_mutex_lock(&a->lock);
    while (flock(a->fd, LOCK_EX) < 0 && errno == EINTR)
        ;
}

static void unlock(fp_audit *a)
{
    flock(a->fd, LOCK_UN);
    pthread_mutex_unlock(&a->lock);
}

int fp_audit_open(fp_audit **out, const char *data_dir, const fp_key *key, fp_error *err)
{
    if (!key) return fp_error_set(err, EINVAL, "the audit log is signed: it needs a private key");
    if (fp_mkdir_p(data_dir, 0700, err) < 0) return -1;
    fp_audit *a = calloc(1, sizeof *a);
    if (!a) return fp_error_set(err, ENOMEM, "audit log");
    a->key = key;
    snprintf(a->path, sizeof a->path, "%s/audit.log", data_dir);
    fp_audit_head_path(a->path, a->head, sizeof a->head);
    pthread_mutex_init(&a->lock, NULL);
    a->fd = open(a->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (a->fd < 0) {
        fp_error_set(err, errno, "open %s", a->path);
        fp_audit_close(a);
        return -1;
    }
    struct tail t;
    lock(a);
    int rc = prepare_locked(a, &t, err);
    unlock(a);
    if (rc < 0) {
        fp_audit_close(a);
        return -1;
    }
    *out = a;
    return 0;
}

void fp_audit_close(fp_audit *a)
{
    if (!a) return;
    if (a->fd >= 0) close(a->fd);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

static bool kind_valid(const char *kind)
{
    if (!kind || !kind[0] || strlen(kind) > 64) return false;
    for (const char *p = kind; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || *p == '_')) return false;
    return true;
}

int fp_audit_append(fp_audit *a, const char *kind, const char *actor, const char *subject,
                    const json_t *details, fp_error *err)
{
    if (!a) return 0;
    if (!kind_valid(kind)) return fp_error_set(err, EINVAL, "audit: bad kind");
    struct tail t;
    lock(a);
    /* the tail is read again every time: `fogport node revoke` may have
     * appended from another process since */
    int rc = prepare_locked(a, &t, err);
    if (rc == 0) rc = append_locked(a, &t, kind, actor, subject, details, err);
    unlock(a);
    return rc;
}

/* Each complete line of path, parsed (NULL when it is not a JSON object):
 * fn returns non-zero to stop. A last line without '\n' is left out. */
typedef int (*line_fn)(void *ctx, uint64_t lineno, json_t *entry);

static int each_line(const char *path, line_fn fn, void *ctx, fp_error *err)
{
    cleanup_fclose FILE *f = fopen(path, "re");
    if (!f) return fp_error_set(err, errno, "open %s", path);
    cleanup_free char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t lineno = 0;
    while ((n = getline(&buf, &cap, f)) > 0) {
        if (buf[n - 1] != '\n') break;
        json_t *e = json_loadb(buf, (size_t)n - 1, JSON_REJECT_DUPLICATES, NULL);
        if (e && !json_is_object(e)) {
            json_decref(e);
            e = NULL;
        }
        int stop = fn(ctx, ++lineno, e);
        json_decref(e);
        if (stop) break;
    }
    if (ferror(f)) return fp_error_set(err, errno, "read %s", path);
    return 0;
}

struct read_ctx {
    uint64_t after;
    size_t limit;
    json_t *out;
    bool more;
};

static int read_one(void *ctx, uint64_t lineno, json_t *e)
{
    (void)lineno;
    struct read_ctx *c = ctx;
    if (!e || (uint64_t)json_integer_value(json_object_get(e, "seq")) <= c->after) return 0;
    if (json_array_size(c->out) >= c->limit) {
        c->more = true;
        return 1;
    }
    json_array_append(c->out, e);
    return 0;
}

int fp_audit_read(const char *path, uint64_t after, size_t limit, json_t **entries, bool *more,
                  fp_error *err)
{
    struct read_ctx c = {.after = after, .limit = limit, .out = json_array()};
    if (each_line(path, read_one, &c, err) < 0) {
        json_decref(c.out);
        return -1;
    }
    *entries = c.out;
    if (more) *more = c.more;
    return 0;
}

struct find_ctx {
    const char *kind;
    json_t *last;
};

static int find_one(void *ctx, uint64_t lineno, json_t *e)
{
    (void)lineno;
    struct find_ctx *c = ctx;
    const char *k = json_string_value(json_object_get(e, "kind"));
    if (k && !strcmp(k, c->kind)) {
        json_decref(c->last);
        c->last = json_incref(e);
    }
    return 0;
}

int fp_audit_find_last(const char *path, const char *kind, json_t **entry, fp_error *err)
{
    struct find_ctx c = {.kind = kind};
    if (each_line(path, find_one, &c, err) < 0) {
        json_decref(c.last);
        return err->errnum == ENOENT ? 1 : -1;
    }
    if (!c.last) return 1;
    *entry = c.last;
    return 0;
}

/* ---- verification ---------------------------------------------------- */

struct verify_ctx {
    const fp_keyring *keys;
    fp_audit_entry_fn fn;
    void *fn_ctx;
    fp_audit_report *rep;
    const json_t *head;
    uint64_t expect;
    char prev[FP_DIGEST_MAX];
    const char *line; /* the current line's bytes, for the encoding check */
    size_t len;
};

static bool has(const json_t *e, const char *key, json_type type)
{
    const json_t *v = json_object_get(e, key);
    return v && json_typeof(v) == type;
}

static const char *field(const json_t *e, const char *key)
{
    return json_string_value(json_object_get(e, key));
}

/* Why the entry is bad (written into why), or NULL when it is good. */
static const char *check_entry(struct verify_ctx *c, const json_t *e, char *why, size_t whylen)
{
    if (!e) return "not a JSON object: edited or corrupted";
    if (!has(e, "seq", JSON_INTEGER) || !has(e, "time", JSON_INTEGER) ||
        !has(e, "kind", JSON_STRING) || !has(e, "actor", JSON_STRING) ||
        !has(e, "subject", JSON_STRING) || !has(e, "details", JSON_OBJECT) ||
        !has(e, "prev", JSON_STRING) || !has(e, "kid", JSON_STRING) ||
        !has(e, "hash", JSON_STRING) || !has(e, "sig", JSON_STRING) ||
        json_object_size(e) != ENTRY_FIELDS)
        return "fields missing, added or of the wrong type: edited";
    /* the bytes must be the one encoding: otherwise a change that keeps the
     * meaning (a space, an escape) would go unnoticed */
    cleanup_free char *canon = json_dumps(e, CANON);
    if (!canon || strlen(canon) != c->len || memcmp(canon, c->line, c->len) != 0)
        return "not in the canonical encoding: edited";
    char hash[FP_DIGEST_MAX];
    if (entry_hash(e, hash) < 0) return "out of memory";
    if (strcmp(hash, field(e, "hash")) != 0) return "hash mismatch: the entry was edited";
    const fp_key *k = fp_keyring_find(c->keys, field(e, "kid"));
    if (!k) {
        snprintf(why, whylen, "signed by an unknown key (kid %s): forged or re-signed",
                 field(e, "kid"));
        return why;
    }
    cleanup_buf fp_buf input = FP_BUF_INIT;
    fp_buf_printf(&input, SIG_DOMAIN "%s", hash);
    if (!fp_es256_verify(k, input.data, input.len, field(e, "sig")))
        return "bad signature: forged or re-signed";
    uint64_t seq = (uint64_t)json_integer_value(json_object_get(e, "seq"));
    if (seq > c->expect) {
        if (seq == c->expect + 1)
            snprintf(why, whylen, "seq %llu where %llu was expected: entry %llu was removed",
                     (unsigned long long)seq, (unsigned long long)c->expect,
                     (unsigned long long)c->expect);
        else
            snprintf(why, whylen,
                     "seq %llu where %llu was expected: entries %llu..%llu were removed or moved",
                     (unsigned long long)seq, (unsigned long long)c->expect,
                     (unsigned long long)c->expect, (unsigned long long)seq - 1);
        return why;
    }
    if (seq < c->expect) {
        snprintf(why, whylen, "seq %llu after %llu: entries were reordered or repeated",
                 (unsigned long long)seq, (unsigned long long)c->expect - 1);
        return why;
    }
    if (strcmp(field(e, "prev"), c->prev) != 0) {
        if (seq == 1) return "prev is not the genesis value: entries before it were removed";
        snprintf(why, whylen,
                 "prev does not match the hash of entry %llu: an entry was removed or moved",
                 (unsigned long long)seq - 1);
        return why;
    }
    const json_t *h = c->head;
    if (h && (uint64_t)json_integer_value(json_object_get(h, "seq")) == seq &&
        strcmp(field(h, "hash"), hash) != 0)
        return "does not match the signed head (same seq, another hash): replaced";
    /* the cloud found the log cut short before this entry and said so:
     * what it lost cannot be verified any more */
    if (!strcmp(field(e, "kind"), FP_AUDIT_TAMPERED)) {
        const json_t *d = json_object_get(e, "details");
        snprintf(why, whylen, "the cloud found the log tampered with before this entry (%s)",
                 field(d, "reason") ? field(d, "reason") : "no reason given");
        return why;
    }
    return NULL;
}

static int verify_line(void *ctx, uint64_t lineno, json_t *e)
{
    struct verify_ctx *c = ctx;
    fp_audit_report *rep = c->rep;
    char why[sizeof rep->why];
    const char *bad = check_entry(c, e, why, sizeof why);
    if (bad) {
        rep->bad_line = lineno;
        rep->bad_seq =
            has(e, "seq", JSON_INTEGER) ? json_integer_value(json_object_get(e, "seq")) : -1;
        if (bad != rep->why) snprintf(rep->why, sizeof rep->why, "%s", bad);
        return 1;
    }
    if (c->fn && c->fn(c->fn_ctx, e) != 0) {
        rep->bad_line = lineno;
        rep->bad_seq = (int64_t)c->expect;
        snprintf(rep->why, sizeof rep->why, "stopped by the caller");
        return 1;
    }
    rep->entries++;
    c->expect++;
    snprintf(c->prev, sizeof c->prev, "%s", field(e, "hash"));
    return 0;
}

/* each_line with the raw bytes at hand too (the canonical check needs
 * them), and the length of a torn last line. */
static int verify_lines(const char *path, struct verify_ctx *c, fp_error *err)
{
    cleanup_fclose FILE *f = fopen(path, "re");
    if (!f) return fp_error_set(err, errno, "open %s", path);
    cleanup_free char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t lineno = 0;
    while ((n = getline(&buf, &cap, f)) > 0) {
        if (buf[n - 1] != '\n') {
            c->rep->torn_bytes = (size_t)n;
            break;
        }
        c->line = buf;
        c->len = (size_t)n - 1;
        json_t *e = json_loadb(buf, c->len, JSON_REJECT_DUPLICATES, NULL);
        if (e && !json_is_object(e)) {
            json_decref(e);
            e = NULL;
        }
        int stop = verify_line(c, ++lineno, e);
        json_decref(e);
        if (stop) return 1;
    }
    if (ferror(f)) return fp_error_set(err, errno, "read %s", path);
    return 0;
}

static int head_bad(fp_audit_report *rep, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int head_bad(fp_audit_report *rep, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->why, sizeof rep->why, fmt, ap);
    va_end(ap);
    return 1;
}

int fp_audit_verify(const char *path, const char *head_path, const fp_keyring *keys,
                    fp_audit_entry_fn fn, void *ctx, fp_audit_report *rep, fp_error *err)
{
    memset(rep, 0, sizeof *rep);
    json_t *head = NULL;
    if (head_path) {
        int rc = fp_audit_head_read(head_path, &head, err);
        if (rc < 0)
            return head_bad(rep, "the signed head %s is unreadable: %s", head_path, err->msg);
        if (rc == 0) {
            /* the head is checked before the entries: a forged one must not
             * vouch for anything */
            const char *hash = field(head, "hash"), *kid = field(head, "kid");
            const fp_key *k = kid ? fp_keyring_find(keys, kid) : NULL;
            cleanup_buf fp_buf input = FP_BUF_INIT;
            if (!has(head, "seq", JSON_INTEGER) || !hash || !field(head, "sig")) {
                json_decref(head);
                return head_bad(rep, "the head %s lacks seq, hash or sig", head_path);
            }
            rep->head_found = true;
            rep->head_seq = (uint64_t)json_integer_value(json_object_get(head, "seq"));
            fp_buf_printf(&input, HEAD_DOMAIN "%llu:%s", (unsigned long long)rep->head_seq, hash);
            if (!k || !fp_es256_verify(k, input.data, input.len, field(head, "sig"))) {
                json_decref(head);
                return head_bad(rep, "the head %s is not signed by the cloud's key: forged",
                                head_path);
            }
        }
    }
    struct verify_ctx c = {
        .keys = keys, .fn = fn, .fn_ctx = ctx, .rep = rep, .head = head, .expect = 1};
    snprintf(c.prev, sizeof c.prev, "%s", FP_AUDIT_GENESIS);
    int rc = verify_lines(path, &c, err);
    json_decref(head);
    if (rc != 0) return rc;
    snprintf(rep->last_hash, sizeof rep->last_hash, "%s", c.prev);
    if (head_path && !rep->head_found && rep->entries > 0)
        return head_bad(rep,
                        "no signed head (%s): entries cut off the end would go unnoticed (give "
                        "it, or check the chain alone)",
                        head_path);
    if (rep->head_found && rep->head_seq > rep->entries)
        return head_bad(rep,
                        "the log ends at entry %llu but its signed head is at entry %llu: "
                        "entries %llu..%llu were removed",
                        (unsigned long long)rep->entries, (unsigned long long)rep->head_seq,
                        (unsigned long long)rep->entries + 1, (unsigned long long)rep->head_seq);
    return 0;
}
