/* Blob pull-through. One fetch per digest at a time, on its own thread:
 * bytes from the nearest holder go into an upload session of the store
 * (hashed on the way, like a push) while every request waiting for the blob
 * reads them back from the session's file as they arrive. Until the first
 * byte a silent holder is hedged (hedge.c): the next holder is asked too,
 * and the first to deliver a byte becomes the session's one writer. When a
 * holder fails part-way the fetch resumes from the next holder with a Range
 * request; when the finished bytes do not match the digest, the readers'
 * streams are cut (their clients see a broken transfer, never wrong bytes
 * that look complete), the bytes are thrown away and the next holder is
 * tried from the start. Only verified bytes are committed to the store. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "federation/fed_internal.h"

enum fetch_state { F_STARTING, F_RUNNING, F_DONE, F_FAILED };

struct fp_fetch {
    fp_federation *fed;
    unsigned refs; /* under fed->lock */
    char repo[FP_NAME_MAX + 1];
    char digest[FP_DIGEST_MAX];
    fp_fed_origin origin;
    /* under fed->lock */
    enum fetch_state state;
    bool not_found;    /* failed because nobody had it */
    bool anyone;       /* a holder said it has it */
    unsigned epoch;    /* bumped when bytes are thrown away */
    fp_upload *upload; /* the session: written by the attempt that claimed the race */
    int session_fd;    /* read-only on the session's file, for readers to dup (-1: none);
                          once committed the same inode is the stored blob */
    uint64_t written;  /* bytes in the session */
    uint64_t size;     /* announced by the holder; 0 until known */
    bool size_known;
    pthread_cond_t moved; /* written, state or epoch changed */
    struct fp_fetch *next;
};

struct fp_fetch_reader {
    fp_fetch *fetch;
    unsigned epoch;
    int fd;
};

/* Sink state for one request to one holder. */
struct transfer {
    fp_fetch *x;
    fed_race *race;
    unsigned slot;
    bool claimed;  /* this transfer is the session's one writer */
    uint64_t skip; /* bytes to drop first (a holder that ignored our Range) */
    fp_error err;
    bool write_failed;
};

static int on_bytes(void *ctx, const char *data, size_t len)
{
    struct transfer *t = ctx;
    fp_fetch *x = t->x;
    if (t->skip) {
        size_t drop = len < t->skip ? len : (size_t)t->skip;
        t->skip -= drop;
        data += drop;
        len -= drop;
        if (!len) return 0;
    }
    /* the first holder to deliver a byte writes the session; the others
     * of a hedged race stop here */
    if (!t->claimed && !(t->claimed = fp_fed_race_claim(t->race, t->slot))) {
        fp_error_set(&t->err, 0, "another holder was faster");
        return -1;
    }
    uint64_t max = x->fed->cfg->max_blob_bytes;
    if ((x->size_known && x->written + len > x->size) || (max && x->written + len > max)) {
        fp_error_set(&t->err, EFBIG, "more bytes than announced");
        t->write_failed = true;
        return -1;
    }
    if (fp_upload_write(x->upload, data, len, &t->err) < 0) {
        t->write_failed = true;
        return -1;
    }
    pthread_mutex_lock(&x->fed->lock);
    x->written += len;
    pthread_cond_broadcast(&x->moved);
    pthread_mutex_unlock(&x->fed->lock);
    return 0;
}

/* total of "bytes a-b/total" */
static bool range_total(const char *cr, uint64_t *start, uint64_t *total)
{
    unsigned long long a, b, t;
    if (sscanf(cr, "bytes %llu-%llu/%llu", &a, &b, &t) != 3) return false;
    *start = a;
    *total = t;
    return true;
}

/* 0: every byte arrived; 1: the holder does not have it; -1: failed. */
static int fetch_from(fp_fetch *x, const struct fp_source *src, fed_race *race, unsigned slot)
{
    fp_federation *f = x->fed;
    char path[FP_NAME_MAX + FP_DIGEST_MAX + 32], range[64];
    snprintf(path, sizeof path, "/v2/%s/blobs/%s", x->repo, x->digest);
    pthread_mutex_lock(&f->lock);
    uint64_t from = x->written;
    pthread_mutex_unlock(&f->lock);
    snprintf(range, sizeof range, "Range: bytes=%" PRIu64 "-", from);
    const char *extra[] = {from ? range : NULL, NULL};
    struct transfer t = {.x = x, .race = race, .slot = slot};
    fp_http_opts opts = {.connect_timeout_s =
                             f->cfg->fed_peer_timeout_s ? f->cfg->fed_peer_timeout_s : 3,
                         .stall_s = 15,
                         .sink = on_bytes,
                         .sink_ctx = &t};
    fp_fed_race_opts(race, slot, &opts);
    fp_http_response resp;
    fp_error err;
    int rc = fp_fed_call(f, src, "GET", path, x->repo, &x->origin, extra, &opts, &resp, &err);
    if (fp_fed_race_lost(race, slot)) {
        if (rc == 0) fp_http_response_free(&resp);
        return -1;
    }
    long status = rc == 0 ? resp.status : 0;
    if (rc == 0) fp_http_response_free(&resp);
    if (rc == 0 && (status == 404 || status == 401 || status == 403)) return 1;
    if (rc == 0 && status != 200 && status != 206) {
        fp_warn("event=fetch_failed source=%s digest=%s status=%ld", src->id, x->digest, status);
        return -1;
    }
    if (rc == 0 && status == 206) {
        uint64_t start = 0, total = 0;
        if (!range_total(resp.content_range, &start, &total) || start != from) return -1;
    }
    if (rc < 0 || t.write_failed) {
        fp_warn("event=fetch_interrupted source=%s digest=%s at=%" PRIu64 " error=\"%s\"", src->id,
                x->digest, x->written, t.write_failed ? t.err.msg : err.msg);
        return -1;
    }
    /* an empty body: the first holder to finish wins */
    if (!t.claimed && !fp_fed_race_claim(race, slot)) return -1;
    pthread_mutex_lock(&f->lock);
    bool whole = !x->size_known || x->written == x->size;
    pthread_mutex_unlock(&f->lock);
    return whole ? 0 : -1;
}

/* The size, once a holder has said it: from a HEAD (cheap, and lets the
 * waiting requests answer before the first byte). */
static int learn_size(fp_fetch *x, const struct fp_source *src, fed_race *race, unsigned slot)
{
    char path[FP_NAME_MAX + FP_DIGEST_MAX + 32];
    snprintf(path, sizeof path, "/v2/%s/blobs/%s", x->repo, x->digest);
    unsigned quiet = x->fed->cfg->fed_peer_timeout_s ? x->fed->cfg->fed_peer_timeout_s : 3;
    fp_http_opts opts = {.timeout_s = 15, .connect_timeout_s = quiet, .stall_s = quiet};
    fp_fed_race_opts(race, slot, &opts);
    fp_http_response resp;
    fp_error err;
    if (fp_fed_call(x->fed, src, "HEAD", path, x->repo, &x->origin, NULL, &opts, &resp, &err) < 0)
        return -1;
    long status = resp.status;
    bool has = resp.has_length;
    uint64_t len = resp.content_length;
    fp_http_response_free(&resp);
    if (status == 404 || status == 401 || status == 403) return 1;
    if (status != 200 || !has) return -1;
    pthread_mutex_lock(&x->fed->lock);
    if (!x->size_known) { /* a hedged holder may have said it first */
        x->size = len;
        x->size_known = true;
        pthread_cond_broadcast(&x->moved);
    }
    pthread_mutex_unlock(&x->fed->lock);
    return 0;
}

/* A new session to write into, published to the readers as a descriptor
 * (a path would race with the rename into the store). */
static int begin_session(fp_fetch *x, fp_error *err)
{
    if (fp_upload_begin_ephemeral(x->fed->store, x->repo, &x->upload, err) < 0) return -1;
    fp_upload_set_cached(x->upload); /* cache, evictable ([storage] cache_max) */
    char path[FP_PATH_MAX + 64];
    fp_upload_file_path(x->upload, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fp_error_set(err, errno, "open fetched bytes");
    pthread_mutex_lock(&x->fed->lock);
    if (x->session_fd >= 0) close(x->session_fd);
    x->session_fd = fd;
    pthread_mutex_unlock(&x->fed->lock);
    return 0;
}

/* Throw the bytes away and start over (a holder lied). */
static int restart(fp_fetch *x, fp_error *err)
{
    if (x->upload) fp_upload_release(x->upload);
    x->upload = NULL;
    pthread_mutex_lock(&x->fed->lock);
    x->written = 0;
    if (x->session_fd >= 0) close(x->session_fd);
    x->session_fd = -1;
    x->epoch++;
    pthread_cond_broadcast(&x->moved);
    pthread_mutex_unlock(&x->fed->lock);
    return begin_session(x, err);
}

static void finish(fp_fetch *x, enum fetch_state state, bool not_found)
{
    fp_federation *f = x->fed;
    pthread_mutex_lock(&f->lock);
    x->state = state;
    x->not_found = not_found;
    /* new requests now go to the store (or start afresh) */
    for (fp_fetch **p = &f->inflight; *p; p = &(*p)->next)
        if (*p == x) {
            *p = x->next;
            break;
        }
    pthread_cond_broadcast(&x->moved);
    pthread_mutex_unlock(&f->lock);
}

/* One attempt at a holder (on its own thread, see hedge.c): its size
 * first unless known, then the bytes. 0: every byte arrived; 1: the holder
 * does not have it; -1: failed, or another holder was faster. */
static int fetch_attempt(fed_race *race, unsigned slot, const struct fp_source *s, void *ctx)
{
    fp_fetch *x = ctx;
    fp_federation *f = x->fed;
    pthread_mutex_lock(&f->lock);
    bool known = x->size_known;
    pthread_mutex_unlock(&f->lock);
    if (!known) {
        int h = learn_size(x, s, race, slot);
        if (h != 0) {
            if (h < 0 && !s->parent && !fp_fed_race_lost(race, slot))
                fp_fed_source_failed(f, s->id);
            return h;
        }
    }
    pthread_mutex_lock(&f->lock);
    x->anyone = true;
    pthread_mutex_unlock(&f->lock);
    int rc = fetch_from(x, s, race, slot);
    if (rc < 0 && !s->parent && !fp_fed_race_lost(race, slot)) fp_fed_source_failed(f, s->id);
    return rc;
}

static void fetch_ref(void *ctx)
{
    fp_fetch *x = ctx;
    pthread_mutex_lock(&x->fed->lock);
    x->refs++;
    pthread_mutex_unlock(&x->fed->lock);
}

static void fetch_unref(void *ctx)
{
    fp_fetch_unref(ctx);
}

static void *fetch_main(void *arg)
{
    fp_fetch *x = arg;
    fp_federation *f = x->fed;
    struct fp_source src[FED_MAX_SOURCES + 2];
    size_t n = fp_fed_sources(f, x->repo, true, x->origin.via, src, FED_MAX_SOURCES + 1);
    /* the parent is the last resort: it gets a second try */
    if (n && src[n - 1].parent) {
        src[n] = src[n - 1];
        n++;
    }
    fp_error err;
    bool done = false;
    if (n && begin_session(x, &err) < 0) {
        fp_warn("event=fetch_failed digest=%s error=\"%s\"", x->digest, err.msg);
        n = 0;
    }
    /* Holders nearest first. Until the first byte, a silent holder is
     * hedged (the next one is asked too, the first to deliver writes the
     * session); an interrupted transfer goes on from the next holder where
     * it stopped, one holder at a time. */
    for (size_t next = 0; next < n && !done;) {
        pthread_mutex_lock(&f->lock);
        bool fresh = x->written == 0;
        pthread_mutex_unlock(&f->lock);
        struct fed_race_spec spec = {.attempt = fetch_attempt,
                                     .ctx = x,
                                     .ctx_ref = fetch_ref,
                                     .ctx_unref = fetch_unref,
                                     .hedge = fresh};
        int rc;
        int w = fp_fed_race_run(f, src, n, &next, &spec, &rc);
        if (w < 0 || rc != 0) continue;
        const struct fp_source *s = &src[w];
        char computed[FP_DIGEST_MAX];
        rc = fp_upload_finish(x->upload, x->digest, computed, &err);
        if (rc == 0) {
            x->upload = NULL;
            done = true;
            fp_info("event=pulled kind=blob repo=%s digest=%s size=%" PRIu64 " source=%s", x->repo,
                    x->digest, x->written, s->id);
            fp_fed_count(f, FP_FED_BLOB, s->kind);
        } else if (rc == FP_STORE_MISMATCH) {
            x->upload = NULL; /* finish discarded it */
            fp_warn("event=fetch_rejected source=%s digest=%s reason=\"bytes hash to %s\"", s->id,
                    x->digest, computed);
            if (!s->parent) fp_fed_source_failed(f, s->id);
            if (restart(x, &err) < 0) break;
        } else {
            fp_warn("event=fetch_failed digest=%s error=\"%s\"", x->digest, err.msg);
            break;
        }
    }
    if (x->upload) fp_upload_release(x->upload);
    x->upload = NULL;
    pthread_mutex_lock(&f->lock);
    bool anyone = x->anyone;
    pthread_mutex_unlock(&f->lock);
    if (!done) fp_fed_count(f, FP_FED_BLOB, FP_FED_NONE);
    finish(x, done ? F_DONE : F_FAILED, !anyone);
    fp_fetch_unref(x); /* the thread's reference */
    pthread_mutex_lock(&f->lock);
    if (--f->threads == 0) pthread_cond_broadcast(&f->threads_done);
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

int fp_fed_fetch_blob(fp_federation *f, const char *repo, const char *digest, bool start,
                      const fp_fed_origin *o, fp_fetch **out, uint64_t *size, fp_error *err)
{
    /* the cloud misses most blobs a client pushes (it HEADs them first):
     * outside a node's namespace there is no one to ask, and no thread to
     * start */
    struct fp_source owner;
    if (f->cloud && fp_fed_sources(f, repo, true, NULL, &owner, 1) == 0) return FP_STORE_NOT_FOUND;
    pthread_mutex_lock(&f->lock);
    /* A client joins only a fetch for its own repository: the holder was
     * asked whether that repository has the blob, and another one's answer
     * would hand out content the client's repository does not hold. A
     * peer asks by digest only (nodes see content by digest). */
    fp_fetch *x = f->inflight;
    while (x && (strcmp(x->digest, digest) != 0 || (start && strcmp(x->repo, repo) != 0)))
        x = x->next;
    /* A peer only joins a fetch that already knows what it is fetching:
     * waiting on one that is still asking around could wait on the asker
     * itself (two fogs each fetching through the other). */
    if ((!x && !start) || (x && !start && !x->size_known)) {
        pthread_mutex_unlock(&f->lock);
        return FP_STORE_NOT_FOUND;
    }
    if (x) {
        x->refs++;
    } else {
        x = calloc(1, sizeof *x);
        if (!x) {
            pthread_mutex_unlock(&f->lock);
            return fp_error_set(err, ENOMEM, "fetch");
        }
        x->fed = f;
        x->refs = 2; /* the caller's and the thread's */
        snprintf(x->repo, sizeof x->repo, "%s", repo);
        snprintf(x->digest, sizeof x->digest, "%s", digest);
        x->origin = *o;
        pthread_cond_init(&x->moved, NULL);
        x->session_fd = -1;
        x->state = F_RUNNING;
        x->next = f->inflight;
        f->inflight = x;
        f->threads++;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_t th;
        if (pthread_create(&th, &attr, fetch_main, x) != 0) {
            f->inflight = x->next;
            f->threads--;
            pthread_mutex_unlock(&f->lock);
            pthread_attr_destroy(&attr);
            pthread_cond_destroy(&x->moved);
            free(x);
            return fp_error_set(err, EAGAIN, "start fetch thread");
        }
        pthread_attr_destroy(&attr);
    }
    /* wait for the size (or the end) */
    while (!x->size_known && x->state == F_RUNNING)
        pthread_cond_wait(&x->moved, &f->lock);
    bool failed = x->state == F_FAILED, not_found = x->not_found;
    *size = x->size;
    pthread_mutex_unlock(&f->lock);
    if (failed) {
        fp_fetch_unref(x);
        return not_found ? FP_STORE_NOT_FOUND
                         : fp_error_set(err, EIO, "no holder could deliver %s", digest);
    }
    *out = x;
    return 0;
}

int fp_fetch_reader_open(fp_fetch *x, fp_fetch_reader **out, fp_error *err)
{
    fp_fetch_reader *rd = calloc(1, sizeof *rd);
    if (!rd) return fp_error_set(err, ENOMEM, "fetch reader");
    rd->fetch = x;
    rd->fd = -1;
    *out = rd;
    return 0;
}

/* The reader's own descriptor for the bytes of the current epoch. Under
 * the lock. */
static int reader_fd(fp_fetch_reader *rd)
{
    fp_fetch *x = rd->fetch;
    if (rd->fd >= 0) return rd->fd;
    rd->epoch = x->epoch;
    if (x->session_fd >= 0) rd->fd = fcntl(x->session_fd, F_DUPFD_CLOEXEC, 0);
    return rd->fd;
}

long fp_fetch_reader_read(fp_fetch_reader *rd, uint64_t pos, char *buf, size_t max)
{
    fp_fetch *x = rd->fetch;
    fp_federation *f = x->fed;
    pthread_mutex_lock(&f->lock);
    for (;;) {
        if (rd->fd >= 0 && rd->epoch != x->epoch) break; /* the bytes it read were wrong */
        if (x->state == F_FAILED) break;
        bool done = x->state == F_DONE;
        /* The last byte waits for the digest check: the client must not see
         * a complete response made of bytes that turn out wrong. */
        uint64_t ready = done                   ? x->size
                         : x->written < x->size ? x->written
                         : x->size              ? x->size - 1
                                                : 0;
        if (pos >= x->size && done) {
            pthread_mutex_unlock(&f->lock);
            return 0;
        }
        if (pos < ready) {
            int fd = reader_fd(rd);
            uint64_t avail = ready - pos;
            pthread_mutex_unlock(&f->lock);
            if (fd < 0) return -1;
            ssize_t n = pread(fd, buf, max < avail ? max : (size_t)avail, (off_t)pos);
            return n > 0 ? (long)n : -1;
        }
        pthread_cond_wait(&x->moved, &f->lock);
    }
    pthread_mutex_unlock(&f->lock);
    return -1;
}

void fp_fetch_reader_close(fp_fetch_reader *rd)
{
    if (!rd) return;
    if (rd->fd >= 0) close(rd->fd);
    fp_fetch_unref(rd->fetch);
    free(rd);
}

int fp_fetch_wait(fp_fetch *x)
{
    pthread_mutex_lock(&x->fed->lock);
    while (x->state == F_RUNNING)
        pthread_cond_wait(&x->moved, &x->fed->lock);
    int rc = x->state == F_DONE ? 0 : -1;
    pthread_mutex_unlock(&x->fed->lock);
    return rc;
}

void fp_fetch_unref(fp_fetch *x)
{
    if (!x) return;
    fp_federation *f = x->fed;
    pthread_mutex_lock(&f->lock);
    bool last = --x->refs == 0;
    pthread_mutex_unlock(&f->lock);
    if (!last) return;
    if (x->session_fd >= 0) close(x->session_fd);
    pthread_cond_destroy(&x->moved);
    free(x);
}
