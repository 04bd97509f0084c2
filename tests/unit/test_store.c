/* Unit tests for the store (src/store) through its public face, store.h.
 * Each test gets a fresh data directory (mkdtemp) that is removed after.
 * Manifests are real JSON with real digests, parsed with fp_manifest_parse
 * and turned into a put request the way the registry's handler does. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/digest.h"
#include "core/fs.h"
#include "core/manifest.h"
#include "store/store.h"

#define REPO      "test/app"
#define MT_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_LAYER  "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_EMPTY  "application/vnd.oci.empty.v1+json"
#define MT_SIG    "application/vnd.example.signature.v1"
#define MT_SBOM   "application/vnd.example.sbom.v1+json"
#define UUID_RE   "3f1c2b8e-4a5d-4e6f-9a0b-1c2d3e4f5a6b"

/* ------------------------------------------------------------ fixtures */

struct fx {
    char dir[64];
    fp_store *s;
};

static const struct fp_store_options opts_exclusive = {.upload_expiry_s = 0, .exclusive = true};

static void check_rc(int got, int want, const fp_error *e, const char *what, const char *file,
                     int line)
{
    if (got != want)
        fail_msg("%s:%d: %s returned %d, expected %d%s%s", file, line, what, got, want,
                 got < 0 ? ": " : "", got < 0 ? e->msg : "");
}
/* Both need a local `fp_error err`. */
#define OK(expr)       check_rc((expr), 0, &err, #expr, __FILE__, __LINE__)
#define RC(expr, want) check_rc((expr), (want), &err, #expr, __FILE__, __LINE__)

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/fp-test-store-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    fp_error err;
    if (fp_store_open(&f->s, f->dir, &opts_exclusive, &err) != 0) {
        fprintf(stderr, "fp_store_open: %s\n", err.msg);
        fp_rm_rf(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (!f) return 0;
    fp_store_close(f->s);
    fp_rm_rf(f->dir);
    free(f);
    return 0;
}

static void reopen_with(struct fx *f, const struct fp_store_options *opt)
{
    fp_error err = {0};
    fp_store_close(f->s);
    f->s = NULL;
    OK(fp_store_open(&f->s, f->dir, opt, &err));
}

static void reopen(struct fx *f)
{
    reopen_with(f, &opts_exclusive);
}

/* ------------------------------------------------------------ helpers */

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    int n = vasprintf(&s, f, ap);
    va_end(ap);
    assert_true(n >= 0);
    return s;
}

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Entries of a directory other than . and .. */
static size_t count_dir(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

static void sub_path(const struct fx *f, const char *sub, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s/%s", f->dir, sub);
    assert_true(n > 0 && (size_t)n < outlen);
}

static void blob_file(const struct fx *f, const char *digest, char *out, size_t outlen)
{
    assert_int_equal(fp_store_blob_path(f->s, digest, out, outlen), 0);
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    assert_true(fd >= 0);
    assert_int_equal(fp_write_all(fd, data, len), 0);
    close(fd);
}

static char *read_whole(const char *path, size_t *len)
{
    fp_error err = {0};
    char *buf = NULL;
    OK(fp_read_file(path, 1 << 26, &buf, len, &err));
    return buf;
}

/* Read a blob through the store; returns a malloc'd copy. */
static char *read_blob(fp_store *s, const char *repo, const char *digest, size_t *len)
{
    fp_error err = {0};
    int fd = -1;
    uint64_t size = 0;
    OK(fp_store_blob_open(s, repo, digest, &fd, &size, &err));
    assert_true(fd >= 0);
    char *buf = malloc(size ? size : 1);
    assert_non_null(buf);
    size_t done = 0;
    while (done < size) {
        ssize_t n = read(fd, buf + done, size - done);
        assert_true(n > 0);
        done += (size_t)n;
    }
    char extra;
    assert_int_equal(read(fd, &extra, 1), 0); /* and not a byte more */
    close(fd);
    *len = (size_t)size;
    return buf;
}

static void assert_blob_content(fp_store *s, const char *repo, const char *digest, const void *data,
                                size_t len)
{
    size_t got_len;
    char *got = read_blob(s, repo, digest, &got_len);
    assert_int_equal(got_len, len);
    if (len) assert_memory_equal(got, data, len);
    free(got);
}

/* Upload data into repo through a session in two chunks. */
static void upload_blob(fp_store *s, const char *repo, const void *data, size_t len,
                        char digest[FP_DIGEST_MAX])
{
    fp_error err = {0};
    char id[37], computed[FP_DIGEST_MAX];
    fp_upload *u;
    assert_int_equal(fp_digest_bytes(FP_SHA256, data, len, digest), 0);
    OK(fp_upload_create(s, repo, id, &err));
    OK(fp_upload_acquire(s, repo, id, &u, &err));
    size_t half = len / 2;
    OK(fp_upload_write(u, data, half, &err));
    OK(fp_upload_write(u, (const char *)data + half, len - half, &err));
    OK(fp_upload_finish(u, digest, computed, &err));
    assert_string_equal(computed, digest);
}

/* A descriptor of something stored. */
struct desc {
    const char *mt;
    char digest[FP_DIGEST_MAX];
    size_t size;
    bool urls; /* a foreign layer (not in the registry) */
};

static void blob_desc(fp_store *s, const char *repo, const char *mt, const char *content,
                      struct desc *d)
{
    memset(d, 0, sizeof *d);
    d->mt = mt;
    d->size = strlen(content);
    upload_blob(s, repo, content, d->size, d->digest);
}

static void print_desc(FILE *f, const struct desc *d)
{
    fprintf(f, "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu", d->mt, d->digest, d->size);
    if (d->urls) fprintf(f, ",\"urls\":[\"https://example.com/%s\"]", d->digest);
    fputc('}', f);
}

/* Manifest JSON: an image manifest when config is set, else an index. */
static char *manifest_json(const char *mt, const struct desc *config, const struct desc *items,
                           size_t n, const struct desc *subject, const char *artifact_type,
                           const char *annotations)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    fprintf(f, "{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"%s\",\n", mt);
    if (artifact_type) fprintf(f, "   \"artifactType\": \"%s\",\n", artifact_type);
    if (config) {
        fputs("   \"config\": ", f);
        print_desc(f, config);
        fputs(",\n   \"layers\": [", f);
    } else {
        fputs("   \"manifests\": [", f);
    }
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ",\n      " : "\n      ", f);
        print_desc(f, &items[i]);
    }
    fputs("\n   ]", f);
    if (subject) {
        fputs(",\n   \"subject\": ", f);
        print_desc(f, subject);
    }
    if (annotations) fprintf(f, ",\n   \"annotations\": %s", annotations);
    fputs("\n}\n", f);
    fclose(f);
    return buf;
}

/* Parse body as the registry does, compute its digest and store it (tag
 * may be NULL). Returns the store's result; fills digest and missing. */
static int put_manifest(fp_store *s, const char *repo, const char *body, const char *tag,
                        char digest[FP_DIGEST_MAX], char missing[FP_DIGEST_MAX])
{
    fp_manifest m;
    char why[256];
    if (fp_manifest_parse(body, strlen(body), NULL, &m, why, sizeof why) != 0)
        fail_msg("test manifest does not parse: %s\n%s", why, body);
    assert_int_equal(fp_digest_bytes(FP_SHA256, body, strlen(body), digest), 0);
    const char *tags[1] = {tag};
    fp_error err = {0};
    missing[0] = '\0';
    int rc = fp_store_manifest_put_parsed(s, repo, &m, digest, body, strlen(body), tags,
                                          tag ? 1 : 0, false, missing, &err);
    if (rc < 0) fail_msg("fp_store_manifest_put_parsed: %s", err.msg);
    fp_manifest_free(&m);
    return rc;
}

/* put_manifest that must succeed; out describes the manifest. */
static void push_manifest(fp_store *s, const char *repo, const char *body, const char *tag,
                          const char *mt, struct desc *out)
{
    char missing[FP_DIGEST_MAX];
    memset(out, 0, sizeof *out);
    int rc = put_manifest(s, repo, body, tag, out->digest, missing);
    if (rc != 0) fail_msg("manifest put into %s: rc %d, missing %s", repo, rc, missing);
    out->mt = mt;
    out->size = strlen(body);
}

struct image {
    struct desc config, layer, self;
};

/* Upload a config and a layer derived from seed, and push an image manifest
 * referencing them (plus extra, already in repo, if given). */
static void push_image(fp_store *s, const char *repo, const char *seed, const struct desc *extra,
                       const char *tag, struct image *im)
{
    char content[160];
    snprintf(content, sizeof content,
             "{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":\"%s\"}", seed);
    blob_desc(s, repo, MT_CONFIG, content, &im->config);
    snprintf(content, sizeof content, "layer bytes of %s", seed);
    blob_desc(s, repo, MT_LAYER, content, &im->layer);
    struct desc layers[2] = {im->layer};
    size_t n = 1;
    if (extra) layers[n++] = *extra;
    char *body = manifest_json(FP_MT_OCI_MANIFEST, &im->config, layers, n, NULL, NULL, NULL);
    push_manifest(s, repo, body, tag, FP_MT_OCI_MANIFEST, &im->self);
    free(body);
}

struct referrer {
    struct desc config, payload, self;
};

/* An artifact manifest (empty config, one payload blob) whose subject is
 * subject, untagged. */
static void push_referrer(fp_store *s, const char *repo, const struct desc *subject,
                          const char *artifact_type, const char *payload, const char *annotations,
                          struct referrer *r)
{
    blob_desc(s, repo, MT_EMPTY, "{}", &r->config);
    blob_desc(s, repo, artifact_type ? artifact_type : MT_SIG, payload, &r->payload);
    char *body = manifest_json(FP_MT_OCI_MANIFEST, &r->config, &r->payload, 1, subject,
                               artifact_type, annotations);
    push_manifest(s, repo, body, NULL, FP_MT_OCI_MANIFEST, &r->self);
    free(body);
}

/* Name lists (tags, catalog). */
struct names {
    size_t n, stop_after;
    char v[32][160];
};

static int collect_name(void *ctx, const char *name)
{
    struct names *ns = ctx;
    assert_true(ns->n < 32);
    snprintf(ns->v[ns->n++], sizeof ns->v[0], "%s", name);
    return ns->stop_after && ns->n >= ns->stop_after;
}

/* Compare a name list with the expected one, "a,b,c" ("" for none). */
static void assert_names(const struct names *ns, const char *expected)
{
    char got[1024] = "";
    for (size_t i = 0; i < ns->n; i++) {
        if (i) strcat(got, ",");
        strcat(got, ns->v[i]);
    }
    assert_string_equal(got, expected);
}

static void assert_tags(fp_store *s, const char *repo, const char *last, unsigned limit,
                        const char *expected)
{
    fp_error err = {0};
    struct names ns = {0};
    OK(fp_store_tags(s, repo, last, limit, collect_name, &ns, &err));
    assert_names(&ns, expected);
}

static void assert_catalog(fp_store *s, const char *last, unsigned limit, const char *expected)
{
    fp_error err = {0};
    struct names ns = {0};
    OK(fp_store_catalog(s, last, limit, collect_name, &ns, &err));
    assert_names(&ns, expected);
}

struct referrer_row {
    char digest[FP_DIGEST_MAX];
    char media_type[256];
    uint64_t size;
    char artifact_type[256];
    bool has_artifact_type;
    char annotations[512];
    bool has_annotations;
};

struct referrers {
    size_t n;
    struct referrer_row v[8];
};

static int collect_referrer(void *ctx, const fp_referrer *r)
{
    struct referrers *rs = ctx;
    assert_true(rs->n < 8);
    struct referrer_row *e = &rs->v[rs->n++];
    snprintf(e->digest, sizeof e->digest, "%s", r->digest);
    snprintf(e->media_type, sizeof e->media_type, "%s", r->media_type);
    e->size = r->size;
    e->has_artifact_type = r->artifact_type != NULL;
    snprintf(e->artifact_type, sizeof e->artifact_type, "%s",
             r->artifact_type ? r->artifact_type : "");
    e->has_annotations = r->annotations != NULL;
    snprintf(e->annotations, sizeof e->annotations, "%s", r->annotations ? r->annotations : "");
    return 0;
}

struct reports {
    size_t n;
    struct {
        char kind[32];
        char digest[400];
    } v[16];
};

static void collect_report(void *ctx, const char *kind, const char *digest, const char *detail)
{
    struct reports *rs = ctx;
    (void)detail;
    if (rs->n >= 16) return;
    snprintf(rs->v[rs->n].kind, sizeof rs->v[0].kind, "%s", kind);
    snprintf(rs->v[rs->n].digest, sizeof rs->v[0].digest, "%s", digest);
    rs->n++;
}

static void assert_fsck_clean(fp_store *s)
{
    fp_error err = {0};
    struct reports rs = {0};
    struct fp_fsck_stats st;
    OK(fp_store_fsck(s, collect_report, &rs, &st, &err));
    if (rs.n) fail_msg("fsck reports %s %s", rs.v[0].kind, rs.v[0].digest);
    assert_int_equal(st.problems, 0);
}

/* A manifest present (or not) in repo, by digest. */
static int manifest_rc(fp_store *s, const char *repo, const char *ref, bool by_digest)
{
    fp_error err = {0};
    fp_manifest_row row;
    int rc = fp_store_manifest_get(s, repo, ref, by_digest, false, &row, &err);
    if (rc < 0) fail_msg("fp_store_manifest_get: %s", err.msg);
    return rc;
}

static int blob_rc(fp_store *s, const char *repo, const char *digest)
{
    fp_error err = {0};
    uint64_t size;
    int rc = fp_store_blob_stat(s, repo, digest, &size, &err);
    if (rc < 0) fail_msg("fp_store_blob_stat: %s", err.msg);
    return rc;
}

/* Stored and linked in repo, file on disk. */
static void assert_blob_kept(const struct fx *f, const char *repo, const struct desc *d)
{
    char path[4096];
    if (blob_rc(f->s, repo, d->digest) != 0)
        fail_msg("blob %s (%s) no longer in %s", d->digest, d->mt, repo);
    blob_file(f, d->digest, path, sizeof path);
    if (!exists(path)) fail_msg("blob file of %s is gone", d->digest);
}

/* Gone from the store entirely: no row, no file. */
static void assert_blob_gone(const struct fx *f, const struct desc *d)
{
    fp_error err = {0};
    char path[4096];
    uint64_t size;
    if (fp_store_blob_exists(f->s, d->digest, &size, &err) != FP_STORE_NOT_FOUND)
        fail_msg("blob %s (%s) still recorded", d->digest, d->mt);
    blob_file(f, d->digest, path, sizeof path);
    if (exists(path)) fail_msg("blob file of %s still on disk", d->digest);
}

/* Sleep until the wall clock is in a later second than now (the store keeps
 * creation times in whole seconds). */
static void wait_next_second(void)
{
    time_t t0 = time(NULL);
    while (time(NULL) <= t0)
        usleep(10000);
}

/* Run SQL against the store's database directly (as an operator would). */
static void sql_exec(const struct fx *f, const char *sql)
{
    char path[4096];
    sub_path(f, "meta.db", path, sizeof path);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
    sqlite3_close(db);
}

/* ------------------------------------------------------------ life cycle */

static void test_open_close(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    char path[4096];
    assert_string_equal(fp_store_root(f->s), f->dir);
    const char *subs[] = {"blobs", "uploads", "trash", "meta.db"};
    for (size_t i = 0; i < 4; i++) {
        sub_path(f, subs[i], path, sizeof path);
        if (!exists(path)) fail_msg("%s missing after open", path);
    }
    /* an exclusive open excludes another one */
    fp_store *other = NULL;
    assert_int_equal(fp_store_open(&other, f->dir, &opts_exclusive, &err), -1);
    assert_true(strlen(err.msg) > 0);
    /* a non-exclusive open (gc, fsck) works alongside */
    struct fp_store_options shared = {0};
    OK(fp_store_open(&other, f->dir, &shared, &err));
    fp_store_close(other);
    fp_store_maintain(f->s);
    fp_store_close(f->s);
    f->s = NULL;
    /* after close, the lock is free again; trailing slashes are ignored */
    char slashed[128];
    snprintf(slashed, sizeof slashed, "%s//", f->dir);
    OK(fp_store_open(&f->s, slashed, &opts_exclusive, &err));
    assert_string_equal(fp_store_root(f->s), f->dir);
    /* a fresh directory below a missing parent is created */
    fp_store *nested = NULL;
    snprintf(path, sizeof path, "%s/deeper/data", f->dir);
    OK(fp_store_open(&nested, path, NULL, &err));
    fp_store_close(nested);
    sub_path(f, "deeper/data/meta.db", path, sizeof path);
    assert_true(exists(path));
    /* a data directory that is a file cannot be opened */
    sub_path(f, "afile", path, sizeof path);
    write_file(path, "x", 1);
    assert_int_equal(fp_store_open(&nested, path, NULL, &err), -1);
    fp_store_close(NULL);
}

/* ------------------------------------------------------------ uploads */

static void test_upload_roundtrip(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    char id[37], computed[FP_DIGEST_MAX], digest[FP_DIGEST_MAX], path[4096];
    const char *parts[] = {"The quick brown fox ", "", "jumps over ", "the lazy dog"};
    char all[128] = "";
    for (size_t i = 0; i < 4; i++)
        strcat(all, parts[i]);
    assert_int_equal(fp_digest_bytes(FP_SHA256, all, strlen(all), digest), 0);

    OK(fp_upload_create(f->s, REPO, id, &err));
    assert_int_equal(strlen(id), 36);
    fp_upload *u;
    OK(fp_upload_acquire(f->s, REPO, id, &u, &err));
    assert_string_equal(fp_upload_id(u), id);
    assert_int_equal(fp_upload_offset(u), 0);
    uint64_t off = 0;
    for (size_t i = 0; i < 2; i++) {
        OK(fp_upload_write(u, parts[i], strlen(parts[i]), &err));
        off += strlen(parts[i]);
        assert_int_equal(fp_upload_offset(u), off);
    }
    fp_upload_release(u);
    uint64_t status = 0;
    OK(fp_upload_status(f->s, REPO, id, &status, &err));
    assert_int_equal(status, off);
    /* the next request continues where the last one stopped */
    OK(fp_upload_acquire(f->s, REPO, id, &u, &err));
    assert_int_equal(fp_upload_offset(u), off);
    for (size_t i = 2; i < 4; i++)
        OK(fp_upload_write(u, parts[i], strlen(parts[i]), &err));
    assert_int_equal(fp_upload_offset(u), strlen(all));
    OK(fp_upload_finish(u, digest, computed, &err));
    assert_string_equal(computed, digest);

    uint64_t size = 0;
    OK(fp_store_blob_stat(f->s, REPO, digest, &size, &err));
    assert_int_equal(size, strlen(all));
    size = 0;
    OK(fp_store_blob_exists(f->s, digest, &size, &err));
    assert_int_equal(size, strlen(all));
    assert_blob_content(f->s, REPO, digest, all, strlen(all));
    /* the file is where fp_store_blob_path says, with the same bytes */
    blob_file(f, digest, path, sizeof path);
    size_t flen;
    char *fbytes = read_whole(path, &flen);
    assert_int_equal(flen, strlen(all));
    assert_memory_equal(fbytes, all, flen);
    free(fbytes);
    assert_non_null(strstr(path, "/blobs/sha256/"));
    /* the session is over */
    RC(fp_upload_status(f->s, REPO, id, &status, &err), FP_STORE_NOT_FOUND);
    RC(fp_upload_acquire(f->s, REPO, id, &u, &err), FP_STORE_NOT_FOUND);
    sub_path(f, "uploads", path, sizeof path);
    assert_int_equal(count_dir(path), 0);
    /* the blob belongs to REPO only */
    RC(fp_store_blob_stat(f->s, "test/other", digest, &size, &err), FP_STORE_NOT_FOUND);
    int fd = -1;
    RC(fp_store_blob_open(f->s, "test/other", digest, &fd, &size, &err), FP_STORE_NOT_FOUND);
    /* uploading the same content again is harmless */
    upload_blob(f->s, REPO, all, strlen(all), computed);
    assert_string_equal(computed, digest);
    assert_blob_content(f->s, REPO, digest, all, strlen(all));
    assert_fsck_clean(f->s);
}

static void test_upload_empty_and_large(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    char digest[FP_DIGEST_MAX];
    uint64_t size = 1;
    upload_blob(f->s, REPO, "", 0, digest);
    assert_string_equal(digest,
                        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    OK(fp_store_blob_stat(f->s, REPO, digest, &size, &err));
    assert_int_equal(size, 0);
    size_t len;
    free(read_blob(f->s, REPO, digest, &len));
    assert_int_equal(len, 0);

    /* 17 MiB + a bit, in uneven chunks (crosses several write-back windows) */
    size_t total = (17u << 20) + 12345;
    unsigned char *data = malloc(total);
    assert_non_null(data);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < total; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data[i] = (unsigned char)x;
    }
    char id[37], computed[FP_DIGEST_MAX];
    fp_upload *u;
    OK(fp_upload_create(f->s, REPO, id, &err));
    OK(fp_upload_acquire(f->s, REPO, id, &u, &err));
    size_t done = 0, chunk = 1;
    while (done < total) {
        size_t n = chunk < total - done ? chunk : total - done;
        OK(fp_upload_write(u, data + done, n, &err));
        done += n;
        chunk = chunk * 3 + 7;
        if (chunk > (3u << 20)) chunk = 65537;
        if (done > total / 2 && done - n <= total / 2) {
            /* release and come back half way, as a chunked client would */
            fp_upload_release(u);
            OK(fp_upload_acquire(f->s, REPO, id, &u, &err));
            assert_int_equal(fp_upload_offset(u), done);
        }
    }
    assert_int_equal(fp_digest_bytes(FP_SHA256, data, total, digest), 0);
    OK(fp_upload_finish(u, digest, computed, &err));
    assert_string_equal(computed, digest);
    char *back = read_blob(f->s, REPO, digest, &len);
    assert_int_equal(len, total);
    assert_true(memcmp(back, data, total) == 0);
    free(back);
    free(data);
}

static void test_upload_wrong_digest(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    char id[37], computed[FP_DIGEST_MAX], actual[FP_DIGEST_MAX], claimed[FP_DIGEST_MAX];
    char path[4096];
    const char *data = "these are the bytes";
    assert_int_equal(fp_digest_bytes(FP_SHA256, data, strlen(data), actual), 0);
    assert_int_equal(fp_digest_bytes(FP_SHA256, "other bytes", 11, claimed), 0);

    fp_upload *u;
    OK(fp_upload_create(f->s, REPO, id, &err));
    OK(fp_upload_acquire(f->s, REPO, id, &u, &err));
    OK(fp_upload_write(u, data, strlen(data), &err));
    RC(fp_upload_finish(u, claimed, computed, &err), FP_STORE_MISMATCH);
    assert_string_equal(computed, actual); /* what the content really hashes to */
    /* nothing stored under either digest, the session is cancelled */
    uint64_t size;
    RC(fp_store_blob_exists(f->s, actual, &size, &err), FP_STORE_NOT_FOUND);
    RC(fp_store_blob_exists(f->s, claimed, &size, &err), FP_STORE_NOT_FOUND);
    RC(fp_store_blob_stat(f->s, REPO, actual, &size, &err), FP_STORE_NOT_FOUND);
    blob_file(f, actual, path, sizeof path);
    assert_false(exists(path));
    blob_file(f, claimed, path, sizeof path);
    assert_false(exists(path));
    RC(fp_upload_acquire(f->s, REPO, id, &u, &err), FP_STORE_NOT_FOUND);
    RC(fp_upload_status(f->s, REPO, id, &size, &err), FP_STORE_NOT_FOUND);
    sub_path(f, "uploads", path, sizeof path);
    assert_int_equal(count_dir(path), 0);
    reopen(f);
    RC(fp_upload_acquire(f->s, REPO, id, &u, &err), FP_STORE_NOT_FOUND);

    /* sha512 mismatch too */
    char claimed512[FP_DIGEST_MAX];
    assert_int_equal(fp_digest_bytes(FP_SHA512, "other bytes", 11, claimed512), 0);
    OK(fp_upload_create(f->s, REPO, id, &err));
    OK(fp_upload_acquire(f->s, REPO, id, &u, &err));
    OK(fp_upload_write(u, data, strlen(data), &err));
    RC(fp_upload_finish(u, claimed512, computed, &err), FP_STORE_MISMATCH);
    assert_true(strncmp(computed, "sha512:", 7) == 0);
    RC(fp_store_blob_exists(f->s, claimed512, &size, &err), FP_STORE_NOT_FOUND);
    RC(fp_upload_acquire(f->s, REPO, id, &u, &err), FP_STORE_NOT_FOUND);

    /* an invalid digest is an error that leaves the session alone */
    OK(fp_upload_create(f->s, REPO, id, &err));
    OK(fp_upload_acquire(f->s, REPO, id, &u, &err));
    OK(fp_upload_write(u, data, strlen(data), &err));
    const char *invalid[] = {"sha256:abc", "md5:d41d8cd98f00b204e9800998ecf8427e", "", "sha256"};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(fp_upload_finish(u, invalid[i], computed, &err), -1);
    fp_upload_release(u);
    OK(fp_upload_status(f->s, REPO, id, &size, &err));
    assert_int_equal(size, strlen(data));
    OK(fp_upload_acquire(f->s, REPO, id, &u, &err));
    OK(fp_upload_finish(u, actual, computed, &err));
    assert_blob_content(f->s, REPO, actual, data, strlen(data));
}

static void test_upload_rollback(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    char id[37], computed[FP_DIGEST_MAX], digest[FP_DIGEST_MAX], path[4096];
    fp_upload *u;
    uint64_t status;
    OK(fp_upload_create(f->s, REPO, id, &err));
    snprintf(path, sizeof path, "%s/uploads/%s", f->dir, id);

    OK(fp_upload_acquire(f->s, REPO, id, &u, &err));
    fp_upload_rollback(u); /* nothing to undo */
    assert_int_equal(fp_upload_offset(u), 0);
    OK(fp_upload_write(u, "abc", 3, &err));
    fp_upload_release(u);

    /* a request that writes, then fails: back to where it started */
    OK(fp_upload_acquire(f->s, REPO, id, &u, &err));
    OK(fp_upload_write(u, "defgh", 5, &err));
    OK(fp_upload_write(u, "ijk", 3, &err));
    assert_int_equal(fp_upload_offset(u), 11);
    /* while the request is in flight, status shows the committed offset */
    OK(fp_upload_status(f->s, REPO, id, &status, &err));
    assert_int_equal(status, 3);
    fp_upload_rollback(u);
    assert_int_equal(fp_upload_offset(u), 3);
    fp_upload_rollback(u); /* idempotent */
    assert_int_equal(fp_upload_offset(u), 3);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, 3);
    fp_upload_release(u);
    OK(fp_upload_status(f->s, REPO, id, &status, &err));
    assert_int_equal(status, 3);

    /* a rollback in the same request as new writes, then more data: the
     * running hash must match the file */
    OK(fp_upload_acquire(f->s, REPO, id, &u, &err));
    OK(fp_upload_write(u, "zzzzzz", 6, &err));
    fp_upload_rollback(u);
    OK(fp_upload_write(u, "XYZ", 3, &err));
    fp_upload_release(u);
    OK(fp_upload_acquire(f->s, REPO, id, &u, &err));
    assert_int_equal(fp_upload_offset(u), 6);
    OK(fp_upload_write(u, "!", 1, &err));
    assert_int_equal(fp_digest_bytes(FP_SHA256, "abcXYZ!", 7, digest), 0);
    OK(fp_upload_finish(u, digest, computed, &err));
    assert_string_equal(computed, digest);
    assert_blob_content(f->s, REPO, digest, "abcXYZ!", 7);
}

/* The running hash is computed by the store's hasher thread while the
 * request keeps writing. Roll back while megabytes are still queued for
 * hashing, across several requests, and the digest must still be exactly
 * that of the bytes in the file. */
static void test_upload_async_hash_rollback(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    char id[37], computed[FP_DIGEST_MAX], digest[FP_DIGEST_MAX];
    fp_upload *u;
    enum { PIECE = 64 * 1024, PIECES = 96 }; /* 6 MiB a request */
    char *piece = malloc(PIECE);
    char *expect = malloc((size_t)PIECE * PIECES * 2);
    assert_non_null(piece);
    assert_non_null(expect);
    OK(fp_upload_create(f->s, REPO, id, &err));
    size_t kept = 0;
    for (int round = 0; round < 4; round++) {
        OK(fp_upload_acquire(f->s, REPO, id, &u, &err));
        for (int i = 0; i < PIECES; i++) {
            memset(piece, 'a' + (round * 7 + i) % 26, PIECE);
            OK(fp_upload_write(u, piece, PIECE, &err));
            if (round % 2 == 0) memcpy(expect + kept + (size_t)i * PIECE, piece, PIECE);
        }
        if (round % 2 == 1)
            fp_upload_rollback(u); /* odd rounds fail: their bytes vanish */
        else
            kept += (size_t)PIECE * PIECES;
        assert_int_equal(fp_upload_offset(u), kept);
        fp_upload_release(u);
    }
    OK(fp_upload_acquire(f->s, REPO, id, &u, &err));
    assert_int_equal(fp_digest_bytes(FP_SHA256, expect, kept, digest), 0);
    OK(fp_upload_finish(u, digest, computed, &err));
    assert_string_equal(computed, digest);
    free(piece);
    free(expect);
}

static void test_upload_busy_and_other_repo(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    char id[37], path[4096];
    fp_upload *u, *u2;
    uint64_t status;
    OK(fp_upload_create(f->s, REPO, id, &err));
    /* not loaded yet: another repository does not see it */
    RC(fp_upload_acquire(f->s, "test/other", id, &u2, &err), FP_STORE_NOT_FOUND);
    RC(fp_upload_status(f->s, "test/other", id, &status, &err), FP_STORE_NOT_FOUND);
    OK(fp_upload_acquire(f->s, REPO, id, &u, &err));
    OK(fp_upload_write(u, "12345", 5, &err));
    /* held: a second request is refused, the other repo still does not see it */
    RC(fp_upload_acquire(f->s, REPO, id, &u2, &err), FP_STORE_BUSY);
    RC(fp_upload_acquire(f->s, "test/other", id, &u2, &err), FP_STORE_NOT_FOUND);
    RC(fp_upload_cancel(f->s, REPO, id, &err), FP_STORE_BUSY);
    RC(fp_upload_status(f->s, "test/other", id, &status, &err), FP_STORE_NOT_FOUND);
    fp_upload_release(u);
    /* released: loaded in the table now */
    RC(fp_upload_acquire(f->s, "test/other", id, &u2, &err), FP_STORE_NOT_FOUND);
    RC(fp_upload_cancel(f->s, "test/other", id, &err), FP_STORE_NOT_FOUND);
    OK(fp_upload_acquire(f->s, REPO, id, &u, &err));
    assert_int_equal(fp_upload_offset(u), 5);
    fp_upload_release(u);

    /* ids that are not ours never reach the file system */
    const char *bad_ids[] = {"",
                             "..",
                             "../meta.db",
                             "3F1C2B8E-4A5D-4E6F-9A0B-1C2D3E4F5A6B",
                             "3f1c2b8e-4a5d-4e6f-9a0b-1c2d3e4f5a6",
                             UUID_RE};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        RC(fp_upload_acquire(f->s, REPO, bad_ids[i], &u2, &err), FP_STORE_NOT_FOUND);
        RC(fp_upload_status(f->s, REPO, bad_ids[i], &status, &err), FP_STORE_NOT_FOUND);
        RC(fp_upload_cancel(f->s, REPO, bad_ids[i], &err), FP_STORE_NOT_FOUND);
    }

    /* cancel ends it: file and session gone */
    OK(fp_upload_cancel(f->s, REPO, id, &err));
    RC(fp_upload_acquire(f->s, REPO, id, &u, &err), FP_STORE_NOT_FOUND);
    RC(fp_upload_status(f->s, REPO, id, &status, &err), FP_STORE_NOT_FOUND);
    RC(fp_upload_cancel(f->s, REPO, id, &err), FP_STORE_NOT_FOUND);
    sub_path(f, "uploads", path, sizeof path);
    assert_int_equal(count_dir(path), 0);
    reopen(f);
    RC(fp_upload_acquire(f->s, REPO, id, &u, &err), FP_STORE_NOT_FOUND);
}

static void test_upload_survives_reopen(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    char id[37], id2[37], computed[FP_DIGEST_MAX], digest[FP_DIGEST_MAX];
    fp_upload *u;
    uint64_t status;
    const char *one = "first chunk, ", *two = "second chunk, ", *three = "third chunk";
    OK(fp_upload_create(f->s, REPO, id, &err));
    OK(fp_upload_acquire(f->s, REPO, id, &u, &err));
    OK(fp_upload_write(u, one, strlen(one), &err));
    fp_upload_release(u);
    /* a second session that is only created before the restart */
    OK(fp_upload_create(f->s, REPO, id2, &err));

    reopen(f);
    OK(fp_upload_status(f->s, REPO, id, &status, &err));
    assert_int_equal(status, strlen(one));
    RC(fp_upload_acquire(f->s, "test/other", id, &u, &err), FP_STORE_NOT_FOUND);
    OK(fp_upload_acquire(f->s, REPO, id, &u, &err));
    assert_int_equal(fp_upload_offset(u), strlen(one));
    OK(fp_upload_write(u, two, strlen(two), &err));
    fp_upload_release(u);

    reopen(f); /* again, with no write after the reload: hash rebuilt at finish */
    OK(fp_upload_acquire(f->s, REPO, id, &u, &err));
    assert_int_equal(fp_upload_offset(u), strlen(one) + strlen(two));
    OK(fp_upload_write(u, three, strlen(three), &err));
    char *all = fmt("%s%s%s", one, two, three);
    assert_int_equal(fp_digest_bytes(FP_SHA256, all, strlen(all), digest), 0);
    OK(fp_upload_finish(u, digest, computed, &err));
    assert_string_equal(computed, digest);
    assert_blob_content(f->s, REPO, digest, all, strlen(all));

    /* finishing right after a reload (no write since) verifies too */
    OK(fp_upload_acquire(f->s, REPO, id2, &u, &err));
    OK(fp_upload_write(u, all, strlen(all), &err));
    fp_upload_release(u);
    reopen(f);
    OK(fp_upload_acquire(f->s, REPO, id2, &u, &err));
    fp_upload_rollback(u); /* nothing written since acquire */
    OK(fp_upload_finish(u, digest, computed, &err));
    assert_string_equal(computed, digest);
    free(all);
}

static void test_upload_sha512(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    char id[37], computed[FP_DIGEST_MAX], d512[FP_DIGEST_MAX], d256[FP_DIGEST_MAX];
    char path[4096];
    const char *data = "hashed with sha-512 at the end";
    assert_int_equal(fp_digest_bytes(FP_SHA512, data, strlen(data), d512), 0);
    assert_int_equal(fp_digest_bytes(FP_SHA256, data, strlen(data), d256), 0);
    fp_upload *u;
    OK(fp_upload_create(f->s, REPO, id, &err));
    OK(fp_upload_acquire(f->s, REPO, id, &u, &err));
    OK(fp_upload_write(u, data, 10, &err));
    fp_upload_release(u);
    reopen(f);
    OK(fp_upload_acquire(f->s, REPO, id, &u, &err));
    OK(fp_upload_write(u, data + 10, strlen(data) - 10, &err));
    OK(fp_upload_finish(u, d512, computed, &err));
    assert_string_equal(computed, d512);
    uint64_t size;
    OK(fp_store_blob_stat(f->s, REPO, d512, &size, &err));
    assert_int_equal(size, strlen(data));
    RC(fp_store_blob_exists(f->s, d256, &size, &err), FP_STORE_NOT_FOUND);
    assert_blob_content(f->s, REPO, d512, data, strlen(data));
    blob_file(f, d512, path, sizeof path);
    assert_non_null(strstr(path, "/blobs/sha512/"));
    assert_true(exists(path));
    assert_fsck_clean(f->s);
}

static void test_upload_ephemeral(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    char computed[FP_DIGEST_MAX], digest[FP_DIGEST_MAX], path[4096];
    const char *data = "monolithic upload body";
    assert_int_equal(fp_digest_bytes(FP_SHA256, data, strlen(data), digest), 0);
    fp_upload *u;
    uint64_t status;
    OK(fp_upload_begin_ephemeral(f->s, REPO, &u, &err));
    char id[37];
    snprintf(id, sizeof id, "%s", fp_upload_id(u));
    assert_int_equal(strlen(id), 36);
    assert_int_equal(fp_upload_offset(u), 0);
    /* not a resumable session */
    RC(fp_upload_status(f->s, REPO, id, &status, &err), FP_STORE_NOT_FOUND);
    OK(fp_upload_write(u, data, strlen(data), &err));
    OK(fp_upload_finish(u, digest, computed, &err));
    assert_string_equal(computed, digest);
    assert_blob_content(f->s, REPO, digest, data, strlen(data));
    sub_path(f, "uploads", path, sizeof path);
    assert_int_equal(count_dir(path), 0);

    /* released without finishing: discarded */
    OK(fp_upload_begin_ephemeral(f->s, REPO, &u, &err));
    OK(fp_upload_write(u, "abandoned", 9, &err));
    fp_upload_release(u);
    assert_int_equal(count_dir(path), 0);

    /* a mismatch stores nothing */
    char other[FP_DIGEST_MAX], actual[FP_DIGEST_MAX];
    assert_int_equal(fp_digest_bytes(FP_SHA256, "x", 1, other), 0);
    assert_int_equal(fp_digest_bytes(FP_SHA256, "not x", 5, actual), 0);
    OK(fp_upload_begin_ephemeral(f->s, REPO, &u, &err));
    OK(fp_upload_write(u, "not x", 5, &err));
    RC(fp_upload_finish(u, other, computed, &err), FP_STORE_MISMATCH);
    assert_string_equal(computed, actual);
    RC(fp_store_blob_exists(f->s, actual, &status, &err), FP_STORE_NOT_FOUND);
    RC(fp_store_blob_exists(f->s, other, &status, &err), FP_STORE_NOT_FOUND);
    assert_int_equal(count_dir(path), 0);

    /* sha512 works for ephemeral uploads too */
    char d512[FP_DIGEST_MAX];
    assert_int_equal(fp_digest_bytes(FP_SHA512, data, strlen(data), d512), 0);
    OK(fp_upload_begin_ephemeral(f->s, "test/other", &u, &err));
    OK(fp_upload_write(u, data, strlen(data), &err));
    OK(fp_upload_finish(u, d512, computed, &err));
    assert_blob_content(f->s, "test/other", d512, data, strlen(data));
    RC(fp_store_blob_stat(f->s, REPO, d512, &status, &err), FP_STORE_NOT_FOUND);
}

/* ------------------------------------------------------------ blobs */

static void test_blob_mount(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    char digest[FP_DIGEST_MAX], unknown[FP_DIGEST_MAX];
    const char *data = "a layer to share";
    upload_blob(f->s, "src/a", data, strlen(data), digest);
    assert_int_equal(fp_digest_bytes(FP_SHA256, "never uploaded", 14, unknown), 0);
    assert_int_equal(blob_rc(f->s, "dst/b", digest), FP_STORE_NOT_FOUND);

    /* with from */
    OK(fp_store_blob_mount(f->s, "dst/b", digest, "src/a", &err));
    assert_int_equal(blob_rc(f->s, "dst/b", digest), 0);
    assert_blob_content(f->s, "dst/b", digest, data, strlen(data));
    OK(fp_store_blob_mount(f->s, "dst/b", digest, "src/a", &err)); /* again: fine */
    /* from a repository that does not have it */
    RC(fp_store_blob_mount(f->s, "dst/c", digest, "src/none", &err), FP_STORE_NOT_FOUND);
    RC(fp_store_blob_mount(f->s, "dst/c", digest, "dst/c", &err), FP_STORE_NOT_FOUND);
    assert_int_equal(blob_rc(f->s, "dst/c", digest), FP_STORE_NOT_FOUND);
    /* without from: any repository will do */
    OK(fp_store_blob_mount(f->s, "dst/c", digest, NULL, &err));
    assert_blob_content(f->s, "dst/c", digest, data, strlen(data));
    /* unknown blobs */
    RC(fp_store_blob_mount(f->s, "dst/d", unknown, NULL, &err), FP_STORE_NOT_FOUND);
    RC(fp_store_blob_mount(f->s, "dst/d", unknown, "src/a", &err), FP_STORE_NOT_FOUND);
    assert_int_equal(blob_rc(f->s, "dst/d", unknown), FP_STORE_NOT_FOUND);
    assert_int_equal(blob_rc(f->s, "src/a", unknown), FP_STORE_NOT_FOUND);
    /* a mounted blob serves a manifest in the target repository */
    struct desc cfg;
    blob_desc(f->s, "src/a", MT_CONFIG, "{\"os\":\"linux\"}", &cfg);
    OK(fp_store_blob_mount(f->s, "dst/b", cfg.digest, "src/a", &err));
    struct desc layer = {.mt = MT_LAYER, .size = strlen(data)};
    snprintf(layer.digest, sizeof layer.digest, "%s", digest);
    char *body = manifest_json(FP_MT_OCI_MANIFEST, &cfg, &layer, 1, NULL, NULL, NULL);
    struct desc m;
    push_manifest(f->s, "dst/b", body, "latest", FP_MT_OCI_MANIFEST, &m);
    free(body);
    assert_fsck_clean(f->s);
}

static void test_blob_delete(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    char digest[FP_DIGEST_MAX], path[4096];
    const char *data = "linked twice";
    upload_blob(f->s, "repo/a", data, strlen(data), digest);
    OK(fp_store_blob_mount(f->s, "repo/b", digest, "repo/a", &err));

    OK(fp_store_blob_delete(f->s, "repo/a", digest, &err));
    assert_int_equal(blob_rc(f->s, "repo/a", digest), FP_STORE_NOT_FOUND);
    int fd = -1;
    uint64_t size;
    RC(fp_store_blob_open(f->s, "repo/a", digest, &fd, &size, &err), FP_STORE_NOT_FOUND);
    /* still in the other repository, still on disk */
    assert_int_equal(blob_rc(f->s, "repo/b", digest), 0);
    assert_blob_content(f->s, "repo/b", digest, data, strlen(data));
    OK(fp_store_blob_exists(f->s, digest, &size, &err));
    blob_file(f, digest, path, sizeof path);
    assert_true(exists(path));
    /* twice, unknown repository, unknown digest */
    RC(fp_store_blob_delete(f->s, "repo/a", digest, &err), FP_STORE_NOT_FOUND);
    RC(fp_store_blob_delete(f->s, "repo/none", digest, &err), FP_STORE_NOT_FOUND);
    char unknown[FP_DIGEST_MAX];
    assert_int_equal(fp_digest_bytes(FP_SHA256, "?", 1, unknown), 0);
    RC(fp_store_blob_delete(f->s, "repo/b", unknown, &err), FP_STORE_NOT_FOUND);
    /* can be mounted back */
    OK(fp_store_blob_mount(f->s, "repo/a", digest, "repo/b", &err));
    assert_int_equal(blob_rc(f->s, "repo/a", digest), 0);
}

/* ------------------------------------------------------------ manifests */

static void test_manifest_put_missing_blob(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    char digest[FP_DIGEST_MAX], missing[FP_DIGEST_MAX];
    struct desc cfg, layer = {.mt = MT_LAYER, .size = 11};
    blob_desc(f->s, REPO, MT_CONFIG, "{\"os\":\"linux\",\"n\":1}", &cfg);
    assert_int_equal(fp_digest_bytes(FP_SHA256, "layer bytes", 11, layer.digest), 0);
    char *body = manifest_json(FP_MT_OCI_MANIFEST, &cfg, &layer, 1, NULL, NULL, NULL);

    assert_int_equal(put_manifest(f->s, REPO, body, "latest", digest, missing), FP_STORE_NOT_FOUND);
    assert_string_equal(missing, layer.digest);
    assert_int_equal(manifest_rc(f->s, REPO, digest, true), FP_STORE_NOT_FOUND);
    assert_int_equal(manifest_rc(f->s, REPO, "latest", false), FP_STORE_NOT_FOUND);
    struct names ns = {0};
    RC(fp_store_tags(f->s, REPO, NULL, 100, collect_name, &ns, &err), FP_STORE_NOT_FOUND);
    assert_catalog(f->s, NULL, 100, "");

    /* in another repository does not count */
    char other_layer[FP_DIGEST_MAX];
    upload_blob(f->s, "test/other", "layer bytes", 11, other_layer);
    assert_string_equal(other_layer, layer.digest);
    assert_int_equal(put_manifest(f->s, REPO, body, "latest", digest, missing), FP_STORE_NOT_FOUND);
    assert_string_equal(missing, layer.digest);

    /* once linked, the put succeeds */
    OK(fp_store_blob_mount(f->s, REPO, layer.digest, "test/other", &err));
    assert_int_equal(put_manifest(f->s, REPO, body, "latest", digest, missing), 0);
    assert_int_equal(manifest_rc(f->s, REPO, "latest", false), 0);
    free(body);

    /* a missing config is reported too */
    struct desc cfg2 = {.mt = MT_CONFIG, .size = 2};
    assert_int_equal(fp_digest_bytes(FP_SHA256, "{}", 2, cfg2.digest), 0);
    body = manifest_json(FP_MT_OCI_MANIFEST, &cfg2, &layer, 1, NULL, NULL, NULL);
    assert_int_equal(put_manifest(f->s, REPO, body, "v2", digest, missing), FP_STORE_NOT_FOUND);
    assert_string_equal(missing, cfg2.digest);
    assert_int_equal(manifest_rc(f->s, REPO, "v2", false), FP_STORE_NOT_FOUND);
    free(body);

    /* a foreign layer (urls) need not be in the registry */
    struct desc foreign = {.mt = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                           .size = 123456,
                           .urls = true};
    assert_int_equal(fp_digest_bytes(FP_SHA256, "windows base", 12, foreign.digest), 0);
    struct desc layers[2] = {foreign, layer};
    body = manifest_json(FP_MT_OCI_MANIFEST, &cfg, layers, 2, NULL, NULL, NULL);
    assert_int_equal(put_manifest(f->s, REPO, body, "foreign", digest, missing), 0);
    assert_int_equal(manifest_rc(f->s, REPO, "foreign", false), 0);
    free(body);
    assert_fsck_clean(f->s);
}

static void test_manifest_put_missing_child(void **state)
{
    struct fx *f = *state;
    char missing[FP_DIGEST_MAX], digest[FP_DIGEST_MAX];
    struct image amd, arm;
    push_image(f->s, "test/other", "amd64", NULL, NULL, &amd);
    push_image(f->s, REPO, "arm64", NULL, NULL, &arm);
    struct desc children[2] = {arm.self, amd.self};
    char *body = manifest_json(FP_MT_OCI_INDEX, NULL, children, 2, NULL, NULL, NULL);
    /* amd64 is only in another repository */
    assert_int_equal(put_manifest(f->s, REPO, body, "multi", digest, missing), FP_STORE_NOT_FOUND);
    assert_string_equal(missing, amd.self.digest);
    assert_int_equal(manifest_rc(f->s, REPO, digest, true), FP_STORE_NOT_FOUND);
    assert_int_equal(manifest_rc(f->s, REPO, "multi", false), FP_STORE_NOT_FOUND);
    /* the child's bytes uploaded as a blob do not make it a child manifest */
    char *child_body =
        manifest_json(FP_MT_OCI_MANIFEST, &amd.config, &amd.layer, 1, NULL, NULL, NULL);
    char as_blob[FP_DIGEST_MAX];
    upload_blob(f->s, REPO, child_body, strlen(child_body), as_blob);
    assert_string_equal(as_blob, amd.self.digest);
    free(child_body);
    assert_int_equal(put_manifest(f->s, REPO, body, "multi", digest, missing), FP_STORE_NOT_FOUND);
    assert_string_equal(missing, amd.self.digest);
    /* push the child, then the index goes in */
    struct image amd2;
    push_image(f->s, REPO, "amd64", NULL, NULL, &amd2);
    assert_string_equal(amd2.self.digest, amd.self.digest);
    assert_int_equal(put_manifest(f->s, REPO, body, "multi", digest, missing), 0);
    assert_int_equal(manifest_rc(f->s, REPO, "multi", false), 0);
    free(body);
    /* an index of an index */
    struct desc idx = {.mt = FP_MT_OCI_INDEX};
    fp_error err = {0};
    fp_manifest_row row;
    OK(fp_store_manifest_get(f->s, REPO, "multi", false, false, &row, &err));
    snprintf(idx.digest, sizeof idx.digest, "%s", row.digest);
    idx.size = row.size;
    body = manifest_json(FP_MT_OCI_INDEX, NULL, &idx, 1, NULL, NULL, NULL);
    assert_int_equal(put_manifest(f->s, REPO, body, "nested", digest, missing), 0);
    assert_int_equal(put_manifest(f->s, "test/other", body, "nested", digest, missing),
                     FP_STORE_NOT_FOUND);
    assert_string_equal(missing, idx.digest);
    free(body);
    assert_fsck_clean(f->s);
}

static void test_manifest_get(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    struct desc cfg, layer;
    blob_desc(f->s, REPO, "application/vnd.docker.container.image.v1+json", "{\"os\":\"linux\"}",
              &cfg);
    blob_desc(f->s, REPO, "application/vnd.docker.image.rootfs.diff.tar.gzip", "gzip bytes",
              &layer);
    char *body = manifest_json(FP_MT_DOCKER_V2, &cfg, &layer, 1, NULL, NULL, NULL);
    struct desc m;
    push_manifest(f->s, REPO, body, "1.0", FP_MT_DOCKER_V2, &m);

    fp_manifest_row row;
    memset(&row, 0x5a, sizeof row);
    OK(fp_store_manifest_get(f->s, REPO, "1.0", false, true, &row, &err));
    assert_string_equal(row.digest, m.digest);
    assert_string_equal(row.media_type, FP_MT_DOCKER_V2);
    assert_int_equal(row.size, strlen(body));
    assert_non_null(row.body);
    assert_memory_equal(row.body, body, strlen(body)); /* byte for byte, whitespace and all */
    free(row.body);

    memset(&row, 0x5a, sizeof row);
    OK(fp_store_manifest_get(f->s, REPO, m.digest, true, true, &row, &err));
    assert_string_equal(row.digest, m.digest);
    assert_string_equal(row.media_type, FP_MT_DOCKER_V2);
    assert_int_equal(row.size, strlen(body));
    assert_memory_equal(row.body, body, strlen(body));
    free(row.body);
    /* the stored bytes hash to the digest */
    char again[FP_DIGEST_MAX];
    assert_int_equal(fp_digest_bytes(FP_SHA256, body, strlen(body), again), 0);
    assert_string_equal(again, m.digest);

    /* without the body (HEAD) */
    memset(&row, 0x5a, sizeof row);
    OK(fp_store_manifest_get(f->s, REPO, "1.0", false, false, &row, &err));
    assert_null(row.body);
    assert_int_equal(row.size, strlen(body));
    assert_string_equal(row.digest, m.digest);

    /* not found: unknown tag, unknown digest, other repo, tag used as digest */
    assert_int_equal(manifest_rc(f->s, REPO, "2.0", false), FP_STORE_NOT_FOUND);
    assert_int_equal(manifest_rc(f->s, REPO, cfg.digest, true), FP_STORE_NOT_FOUND);
    assert_int_equal(manifest_rc(f->s, "test/other", "1.0", false), FP_STORE_NOT_FOUND);
    assert_int_equal(manifest_rc(f->s, "test/other", m.digest, true), FP_STORE_NOT_FOUND);
    assert_int_equal(manifest_rc(f->s, REPO, m.digest, false), FP_STORE_NOT_FOUND);
    assert_int_equal(manifest_rc(f->s, REPO, "1.0", true), FP_STORE_NOT_FOUND);

    /* re-tagging moves the tag; the old manifest stays by digest */
    struct image im;
    push_image(f->s, REPO, "newer", NULL, "1.0", &im);
    OK(fp_store_manifest_get(f->s, REPO, "1.0", false, false, &row, &err));
    assert_string_equal(row.digest, im.self.digest);
    assert_string_equal(row.media_type, FP_MT_OCI_MANIFEST);
    assert_int_equal(manifest_rc(f->s, REPO, m.digest, true), 0);
    /* the same manifest pushed again (and under a second tag) is fine */
    struct desc m2;
    push_manifest(f->s, REPO, body, "again", FP_MT_DOCKER_V2, &m2);
    assert_string_equal(m2.digest, m.digest);
    assert_tags(f->s, REPO, NULL, 100, "1.0,again");
    /* the same manifest in another repository */
    OK(fp_store_blob_mount(f->s, "test/other", cfg.digest, REPO, &err));
    OK(fp_store_blob_mount(f->s, "test/other", layer.digest, REPO, &err));
    push_manifest(f->s, "test/other", body, "x", FP_MT_DOCKER_V2, &m2);
    assert_int_equal(manifest_rc(f->s, "test/other", m.digest, true), 0);
    free(body);
    assert_fsck_clean(f->s);
}

static void test_tags_listing(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    struct image im;
    const char *tags[] = {"latest", "b", "1.0", "a", "B", "c", "1.0-rc_1"};
    push_image(f->s, REPO, "tagged", NULL, tags[0], &im);
    for (size_t i = 1; i < sizeof tags / sizeof tags[0]; i++) {
        char *body = manifest_json(FP_MT_OCI_MANIFEST, &im.config, &im.layer, 1, NULL, NULL, NULL);
        struct desc m;
        push_manifest(f->s, REPO, body, tags[i], FP_MT_OCI_MANIFEST, &m);
        free(body);
    }
    /* byte order */
    assert_tags(f->s, REPO, NULL, 100, "1.0,1.0-rc_1,B,a,b,c,latest");
    assert_tags(f->s, REPO, "", 100, "1.0,1.0-rc_1,B,a,b,c,latest");
    assert_tags(f->s, REPO, NULL, 2, "1.0,1.0-rc_1");
    assert_tags(f->s, REPO, "1.0-rc_1", 2, "B,a");
    assert_tags(f->s, REPO, "a", 100, "b,c,latest");
    assert_tags(f->s, REPO, "b", 1, "c");
    assert_tags(f->s, REPO, "bb", 100, "c,latest"); /* last need not exist */
    assert_tags(f->s, REPO, "0", 1, "1.0");         /* before the first */
    assert_tags(f->s, REPO, "latest", 100, "");     /* after the last */
    assert_tags(f->s, REPO, "zzz", 100, "");
    assert_tags(f->s, REPO, NULL, 0, "");
    /* paging through with limit 3 sees every tag once */
    char last[160] = "";
    char seen[512] = "";
    for (int pages = 0; pages < 10; pages++) {
        struct names ns = {0};
        OK(fp_store_tags(f->s, REPO, last[0] ? last : NULL, 3, collect_name, &ns, &err));
        if (ns.n == 0) break;
        for (size_t i = 0; i < ns.n; i++) {
            strcat(seen, seen[0] ? "," : "");
            strcat(seen, ns.v[i]);
        }
        snprintf(last, sizeof last, "%s", ns.v[ns.n - 1]);
    }
    assert_string_equal(seen, "1.0,1.0-rc_1,B,a,b,c,latest");
    /* the callback can stop early */
    struct names ns = {.stop_after = 2};
    OK(fp_store_tags(f->s, REPO, NULL, 100, collect_name, &ns, &err));
    assert_names(&ns, "1.0,1.0-rc_1");
    /* unknown repository; a repository with only blobs */
    RC(fp_store_tags(f->s, "test/none", NULL, 100, collect_name, &ns, &err), FP_STORE_NOT_FOUND);
    char d[FP_DIGEST_MAX];
    upload_blob(f->s, "test/blobsonly", "b", 1, d);
    RC(fp_store_tags(f->s, "test/blobsonly", NULL, 100, collect_name, &ns, &err),
       FP_STORE_NOT_FOUND);
    /* a repository with manifests but no tags: empty list */
    struct image untagged;
    push_image(f->s, "test/untagged", "u", NULL, NULL, &untagged);
    assert_tags(f->s, "test/untagged", NULL, 100, "");
    /* tags of another repository are separate */
    struct image other;
    push_image(f->s, "test/other", "o", NULL, "only-here", &other);
    assert_tags(f->s, "test/other", NULL, 100, "only-here");
    assert_tags(f->s, REPO, "c", 100, "latest");
}

static void test_catalog(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    const char *repos[] = {"zeta", "beta/two", "alpha", "beta/one", "beta", "beta-x"};
    for (size_t i = 0; i < sizeof repos / sizeof repos[0]; i++) {
        struct image im;
        push_image(f->s, repos[i], repos[i], NULL, i % 2 ? "latest" : NULL, &im);
    }
    /* a repository with only blobs (or an upload in progress) is not listed */
    char d[FP_DIGEST_MAX], id[37];
    upload_blob(f->s, "blobs/only", "x", 1, d);
    OK(fp_upload_create(f->s, "uploading", id, &err));

    assert_catalog(f->s, NULL, 100, "alpha,beta,beta-x,beta/one,beta/two,zeta");
    assert_catalog(f->s, NULL, 2, "alpha,beta");
    assert_catalog(f->s, "beta", 2, "beta-x,beta/one");
    assert_catalog(f->s, "beta/one", 100, "beta/two,zeta");
    assert_catalog(f->s, "b", 1, "beta");
    assert_catalog(f->s, "zeta", 100, "");
    assert_catalog(f->s, NULL, 0, "");
    struct names ns = {.stop_after = 1};
    OK(fp_store_catalog(f->s, NULL, 100, collect_name, &ns, &err));
    assert_names(&ns, "alpha");
}

static void test_referrers(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    struct image subject, unrelated;
    push_image(f->s, REPO, "subject", NULL, "v1", &subject);
    push_image(f->s, REPO, "unrelated", NULL, "v2", &unrelated);
    struct referrer sig, sbom;
    push_referrer(f->s, REPO, &subject.self, MT_SIG, "signature bytes",
                  "{\"org.opencontainers.image.created\":\"2024-01-01T00:00:00Z\",\"a\":\"b\"}",
                  &sig);
    /* no artifactType: the config's media type is reported */
    push_referrer(f->s, REPO, &subject.self, NULL, "sbom bytes", NULL, &sbom);

    struct referrers rs = {0};
    OK(fp_store_referrers(f->s, REPO, subject.self.digest, collect_referrer, &rs, &err));
    assert_int_equal(rs.n, 2);
    /* ordered by digest */
    bool sig_first = strcmp(sig.self.digest, sbom.self.digest) < 0;
    struct referrer_row *rsig = &rs.v[sig_first ? 0 : 1], *rsbom = &rs.v[sig_first ? 1 : 0];
    assert_string_equal(rsig->digest, sig.self.digest);
    assert_string_equal(rsig->media_type, FP_MT_OCI_MANIFEST);
    assert_int_equal(rsig->size, sig.self.size);
    assert_true(rsig->has_artifact_type);
    assert_string_equal(rsig->artifact_type, MT_SIG);
    assert_true(rsig->has_annotations);
    assert_string_equal(
        rsig->annotations,
        "{\"a\":\"b\",\"org.opencontainers.image.created\":\"2024-01-01T00:00:00Z\"}");
    assert_string_equal(rsbom->digest, sbom.self.digest);
    assert_int_equal(rsbom->size, sbom.self.size);
    assert_string_equal(rsbom->artifact_type, MT_EMPTY);
    assert_false(rsbom->has_annotations);

    /* none for another subject, or in another repository */
    memset(&rs, 0, sizeof rs);
    OK(fp_store_referrers(f->s, REPO, unrelated.self.digest, collect_referrer, &rs, &err));
    assert_int_equal(rs.n, 0);
    OK(fp_store_referrers(f->s, "test/other", subject.self.digest, collect_referrer, &rs, &err));
    assert_int_equal(rs.n, 0);
    OK(fp_store_referrers(f->s, "test/none", subject.self.digest, collect_referrer, &rs, &err));
    assert_int_equal(rs.n, 0);

    /* a referrer may arrive before its subject */
    struct desc future = {.mt = FP_MT_OCI_MANIFEST, .size = 100};
    assert_int_equal(fp_digest_bytes(FP_SHA256, "future", 6, future.digest), 0);
    struct referrer early;
    push_referrer(f->s, REPO, &future, MT_SBOM, "early bytes", NULL, &early);
    memset(&rs, 0, sizeof rs);
    OK(fp_store_referrers(f->s, REPO, future.digest, collect_referrer, &rs, &err));
    assert_int_equal(rs.n, 1);
    assert_string_equal(rs.v[0].digest, early.self.digest);
    assert_string_equal(rs.v[0].artifact_type, MT_SBOM);

    /* an index can be a referrer too */
    struct desc kids[1] = {unrelated.self};
    char *body = manifest_json(FP_MT_OCI_INDEX, NULL, kids, 1, &subject.self, MT_SBOM, NULL);
    struct desc idx;
    push_manifest(f->s, REPO, body, NULL, FP_MT_OCI_INDEX, &idx);
    free(body);
    memset(&rs, 0, sizeof rs);
    OK(fp_store_referrers(f->s, REPO, subject.self.digest, collect_referrer, &rs, &err));
    assert_int_equal(rs.n, 3);
    bool found = false;
    for (size_t i = 0; i < rs.n; i++) {
        if (i) assert_true(strcmp(rs.v[i - 1].digest, rs.v[i].digest) < 0);
        if (strcmp(rs.v[i].digest, idx.digest) == 0) {
            found = true;
            assert_string_equal(rs.v[i].media_type, FP_MT_OCI_INDEX);
            assert_string_equal(rs.v[i].artifact_type, MT_SBOM);
        }
    }
    assert_true(found);

    /* a deleted referrer is no longer listed */
    OK(fp_store_manifest_delete(f->s, REPO, sig.self.digest, true, &err));
    memset(&rs, 0, sizeof rs);
    OK(fp_store_referrers(f->s, REPO, subject.self.digest, collect_referrer, &rs, &err));
    assert_int_equal(rs.n, 2);
    for (size_t i = 0; i < rs.n; i++)
        assert_string_not_equal(rs.v[i].digest, sig.self.digest);
}

static void test_manifest_delete(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    struct image a, b;
    push_image(f->s, REPO, "a", NULL, "a1", &a);
    push_image(f->s, REPO, "b", NULL, "b1", &b);
    char *body = manifest_json(FP_MT_OCI_MANIFEST, &a.config, &a.layer, 1, NULL, NULL, NULL);
    struct desc same;
    push_manifest(f->s, REPO, body, "a2", FP_MT_OCI_MANIFEST, &same);
    assert_string_equal(same.digest, a.self.digest);
    free(body);
    assert_tags(f->s, REPO, NULL, 100, "a1,a2,b1");

    /* by tag: the tag goes, the manifest stays */
    OK(fp_store_manifest_delete(f->s, REPO, "b1", false, &err));
    assert_int_equal(manifest_rc(f->s, REPO, "b1", false), FP_STORE_NOT_FOUND);
    assert_int_equal(manifest_rc(f->s, REPO, b.self.digest, true), 0);
    assert_tags(f->s, REPO, NULL, 100, "a1,a2");
    RC(fp_store_manifest_delete(f->s, REPO, "b1", false, &err), FP_STORE_NOT_FOUND);

    /* by digest: the manifest and every tag pointing at it go */
    OK(fp_store_manifest_delete(f->s, REPO, a.self.digest, true, &err));
    assert_int_equal(manifest_rc(f->s, REPO, a.self.digest, true), FP_STORE_NOT_FOUND);
    assert_int_equal(manifest_rc(f->s, REPO, "a1", false), FP_STORE_NOT_FOUND);
    assert_int_equal(manifest_rc(f->s, REPO, "a2", false), FP_STORE_NOT_FOUND);
    assert_tags(f->s, REPO, NULL, 100, "");
    RC(fp_store_manifest_delete(f->s, REPO, a.self.digest, true, &err), FP_STORE_NOT_FOUND);
    /* its blobs are still linked until gc */
    assert_int_equal(blob_rc(f->s, REPO, a.layer.digest), 0);

    /* unknown repository, unknown tag, unknown digest, tag given as digest */
    RC(fp_store_manifest_delete(f->s, "test/none", "a1", false, &err), FP_STORE_NOT_FOUND);
    RC(fp_store_manifest_delete(f->s, "test/none", b.self.digest, true, &err), FP_STORE_NOT_FOUND);
    RC(fp_store_manifest_delete(f->s, REPO, "nope", false, &err), FP_STORE_NOT_FOUND);
    RC(fp_store_manifest_delete(f->s, REPO, a.config.digest, true, &err), FP_STORE_NOT_FOUND);
    RC(fp_store_manifest_delete(f->s, REPO, b.self.digest, false, &err), FP_STORE_NOT_FOUND);

    /* deleting in one repository leaves another's copy alone */
    OK(fp_store_blob_mount(f->s, "test/other", b.config.digest, REPO, &err));
    OK(fp_store_blob_mount(f->s, "test/other", b.layer.digest, REPO, &err));
    body = manifest_json(FP_MT_OCI_MANIFEST, &b.config, &b.layer, 1, NULL, NULL, NULL);
    struct desc bo;
    push_manifest(f->s, "test/other", body, "b1", FP_MT_OCI_MANIFEST, &bo);
    free(body);
    OK(fp_store_manifest_delete(f->s, REPO, b.self.digest, true, &err));
    assert_int_equal(manifest_rc(f->s, "test/other", "b1", false), 0);
    assert_int_equal(manifest_rc(f->s, "test/other", b.self.digest, true), 0);
    /* a deleted manifest can be pushed again */
    struct image a2;
    push_image(f->s, REPO, "a", NULL, "back", &a2);
    assert_string_equal(a2.self.digest, a.self.digest);
    assert_int_equal(manifest_rc(f->s, REPO, "back", false), 0);
    assert_fsck_clean(f->s);
}

/* ------------------------------------------------------------ gc */

/* The gc scenario, all in repository "gc/app" unless said:
 *   A      tagged "v1"; layers: its own + `shared`
 *   B      untagged; layers: its own (also used by a tagged image in
 *          gc/other) + `shared`; config its own
 *   IDX    tagged "multi"; children C1, C2 untagged (each with own blobs)
 *   RA     untagged referrer of A (empty config, payload)
 *   RB     untagged referrer of B (same empty config, own payload)
 *   RC1    untagged referrer of C1 (kept through the index, then C1)
 *   loose  a blob linked to gc/app that nothing references
 *   OTHER  tagged "keep" in gc/other, referencing B's layer (mounted)
 *   a live upload session in gc/app */
struct scene {
    struct desc shared, loose;
    struct image a, b, c1, c2, other;
    struct desc idx;
    struct referrer ra, rb, rc1;
    char upload_id[37];
};

#define GC_REPO "gc/app"

static void build_scene(struct fx *f, struct scene *sc)
{
    fp_error err = {0};
    fp_upload *u;
    blob_desc(f->s, GC_REPO, MT_LAYER, "shared base layer", &sc->shared);
    push_image(f->s, GC_REPO, "A", &sc->shared, "v1", &sc->a);
    push_image(f->s, GC_REPO, "B", &sc->shared, NULL, &sc->b);
    push_image(f->s, GC_REPO, "C1", NULL, NULL, &sc->c1);
    push_image(f->s, GC_REPO, "C2", NULL, NULL, &sc->c2);
    struct desc kids[2] = {sc->c1.self, sc->c2.self};
    char *body = manifest_json(FP_MT_OCI_INDEX, NULL, kids, 2, NULL, NULL, NULL);
    push_manifest(f->s, GC_REPO, body, "multi", FP_MT_OCI_INDEX, &sc->idx);
    free(body);
    push_referrer(f->s, GC_REPO, &sc->a.self, MT_SIG, "signature of A", NULL, &sc->ra);
    push_referrer(f->s, GC_REPO, &sc->b.self, MT_SIG, "signature of B", NULL, &sc->rb);
    push_referrer(f->s, GC_REPO, &sc->c1.self, MT_SBOM, "sbom of C1", NULL, &sc->rc1);
    blob_desc(f->s, GC_REPO, MT_LAYER, "nothing refers to me", &sc->loose);

    /* gc/other: a tagged image that also uses B's layer */
    OK(fp_store_blob_mount(f->s, "gc/other", sc->b.layer.digest, GC_REPO, &err));
    blob_desc(f->s, "gc/other", MT_CONFIG, "{\"os\":\"linux\",\"seed\":\"other\"}",
              &sc->other.config);
    sc->other.layer = sc->b.layer;
    body = manifest_json(FP_MT_OCI_MANIFEST, &sc->other.config, &sc->b.layer, 1, NULL, NULL, NULL);
    push_manifest(f->s, "gc/other", body, "keep", FP_MT_OCI_MANIFEST, &sc->other.self);
    free(body);

    OK(fp_upload_create(f->s, GC_REPO, sc->upload_id, &err));
    OK(fp_upload_acquire(f->s, GC_REPO, sc->upload_id, &u, &err));
    OK(fp_upload_write(u, "in progress", 11, &err));
    fp_upload_release(u);
    assert_fsck_clean(f->s);
}

/* What a gc with grace 0 must report for the scene. */
static void assert_scene_stats(const struct scene *sc, const struct fp_gc_stats *st)
{
    /* B and RB */
    assert_int_equal(st->manifests_removed, 2);
    /* gc/app links: B's config, B's layer, RB's payload, loose */
    assert_int_equal(st->blob_links_removed, 4);
    /* files: B's config, RB's payload, loose (B's layer lives on in gc/other) */
    assert_int_equal(st->blobs_removed, 3);
    assert_int_equal(st->bytes_freed, sc->b.config.size + sc->rb.payload.size + sc->loose.size);
    assert_int_equal(st->uploads_purged, 0);
    assert_int_equal(st->orphan_files_removed, 0);
}

/* Everything of the scene is still there. */
static void assert_scene_intact(struct fx *f, const struct scene *sc)
{
    const struct desc *manifests[] = {&sc->a.self, &sc->b.self,  &sc->c1.self, &sc->c2.self,
                                      &sc->idx,    &sc->ra.self, &sc->rb.self, &sc->rc1.self};
    for (size_t i = 0; i < sizeof manifests / sizeof manifests[0]; i++)
        if (manifest_rc(f->s, GC_REPO, manifests[i]->digest, true) != 0)
            fail_msg("manifest %zu (%s) is gone", i, manifests[i]->digest);
    const struct desc *blobs[] = {&sc->shared,     &sc->loose,      &sc->a.config,  &sc->a.layer,
                                  &sc->b.config,   &sc->b.layer,    &sc->c1.config, &sc->c1.layer,
                                  &sc->c2.config,  &sc->c2.layer,   &sc->ra.config, &sc->ra.payload,
                                  &sc->rb.payload, &sc->rc1.payload};
    for (size_t i = 0; i < sizeof blobs / sizeof blobs[0]; i++)
        assert_blob_kept(f, GC_REPO, blobs[i]);
    assert_int_equal(manifest_rc(f->s, "gc/other", "keep", false), 0);
    assert_blob_kept(f, "gc/other", &sc->b.layer);
}

static void test_gc_grace0(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    struct scene sc;
    char path[4096];
    build_scene(f, &sc);
    /* grace 0 is no grace: content created this very second goes too */
    struct fp_gc_stats st;
    OK(fp_store_gc(f->s, 0, false, &st, &err));
    assert_scene_stats(&sc, &st);

    /* removed: the untagged image, its referrer, their blobs */
    assert_int_equal(manifest_rc(f->s, GC_REPO, sc.b.self.digest, true), FP_STORE_NOT_FOUND);
    assert_int_equal(manifest_rc(f->s, GC_REPO, sc.rb.self.digest, true), FP_STORE_NOT_FOUND);
    assert_blob_gone(f, &sc.b.config);
    assert_blob_gone(f, &sc.rb.payload);
    assert_blob_gone(f, &sc.loose);
    assert_int_equal(blob_rc(f->s, GC_REPO, sc.b.layer.digest), FP_STORE_NOT_FOUND);
    struct referrers rs = {0};
    OK(fp_store_referrers(f->s, GC_REPO, sc.b.self.digest, collect_referrer, &rs, &err));
    assert_int_equal(rs.n, 0);

    /* kept: the tagged image and everything it uses */
    assert_int_equal(manifest_rc(f->s, GC_REPO, "v1", false), 0);
    assert_blob_kept(f, GC_REPO, &sc.a.config);
    assert_blob_kept(f, GC_REPO, &sc.a.layer);
    assert_blob_kept(f, GC_REPO, &sc.shared); /* shared with the removed B */
    assert_blob_content(f->s, GC_REPO, sc.shared.digest, "shared base layer", 17);
    /* the tagged index and its untagged children */
    assert_int_equal(manifest_rc(f->s, GC_REPO, "multi", false), 0);
    assert_int_equal(manifest_rc(f->s, GC_REPO, sc.c1.self.digest, true), 0);
    assert_int_equal(manifest_rc(f->s, GC_REPO, sc.c2.self.digest, true), 0);
    assert_blob_kept(f, GC_REPO, &sc.c1.config);
    assert_blob_kept(f, GC_REPO, &sc.c1.layer);
    assert_blob_kept(f, GC_REPO, &sc.c2.config);
    assert_blob_kept(f, GC_REPO, &sc.c2.layer);
    /* a referrer of an index child is kept through the index */
    assert_int_equal(manifest_rc(f->s, GC_REPO, sc.rc1.self.digest, true), 0);
    assert_blob_kept(f, GC_REPO, &sc.rc1.payload);
    /* the referrer of the tagged image, and the config it shares with RB */
    assert_int_equal(manifest_rc(f->s, GC_REPO, sc.ra.self.digest, true), 0);
    assert_blob_kept(f, GC_REPO, &sc.ra.config);
    assert_blob_kept(f, GC_REPO, &sc.ra.payload);
    memset(&rs, 0, sizeof rs);
    OK(fp_store_referrers(f->s, GC_REPO, sc.a.self.digest, collect_referrer, &rs, &err));
    assert_int_equal(rs.n, 1);
    assert_string_equal(rs.v[0].digest, sc.ra.self.digest);
    /* the other repository's image, with the layer it shared with B */
    assert_int_equal(manifest_rc(f->s, "gc/other", "keep", false), 0);
    assert_blob_kept(f, "gc/other", &sc.b.layer);
    assert_blob_kept(f, "gc/other", &sc.other.config);
    /* the live upload session */
    uint64_t off;
    OK(fp_upload_status(f->s, GC_REPO, sc.upload_id, &off, &err));
    assert_int_equal(off, 11);
    /* nothing left in trash, and the store is consistent */
    sub_path(f, "trash", path, sizeof path);
    assert_int_equal(count_dir(path), 0);
    assert_fsck_clean(f->s);
    assert_tags(f->s, GC_REPO, NULL, 100, "multi,v1");

    /* a second run finds nothing more */
    OK(fp_store_gc(f->s, 0, false, &st, &err));
    assert_int_equal(st.manifests_removed, 0);
    assert_int_equal(st.blob_links_removed, 0);
    assert_int_equal(st.blobs_removed, 0);
    assert_int_equal(st.bytes_freed, 0);

    /* untagging A makes it and its referrer collectable, with their blobs
     * (the shared layer too: nothing else uses it now); the empty config
     * stays, RC1 (kept through the index) uses it */
    OK(fp_store_manifest_delete(f->s, GC_REPO, "v1", false, &err));
    OK(fp_store_gc(f->s, 0, false, &st, &err));
    assert_int_equal(st.manifests_removed, 2);
    assert_int_equal(st.blobs_removed, 4);
    assert_int_equal(manifest_rc(f->s, GC_REPO, sc.a.self.digest, true), FP_STORE_NOT_FOUND);
    assert_int_equal(manifest_rc(f->s, GC_REPO, sc.ra.self.digest, true), FP_STORE_NOT_FOUND);
    assert_blob_gone(f, &sc.a.config);
    assert_blob_gone(f, &sc.a.layer);
    assert_blob_gone(f, &sc.shared);
    assert_blob_gone(f, &sc.ra.payload);
    assert_blob_kept(f, GC_REPO, &sc.ra.config);
    assert_int_equal(manifest_rc(f->s, GC_REPO, "multi", false), 0);
    assert_int_equal(manifest_rc(f->s, GC_REPO, sc.rc1.self.digest, true), 0);
    assert_fsck_clean(f->s);
}

static void test_gc_grace_keeps_everything(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    struct scene sc;
    build_scene(f, &sc);
    struct fp_gc_stats st;
    OK(fp_store_gc(f->s, 3600, false, &st, &err));
    assert_int_equal(st.manifests_removed, 0);
    assert_int_equal(st.blob_links_removed, 0);
    assert_int_equal(st.blobs_removed, 0);
    assert_int_equal(st.bytes_freed, 0);
    assert_int_equal(st.uploads_purged, 0);
    assert_int_equal(st.orphan_files_removed, 0);
    assert_scene_intact(f, &sc);
    wait_next_second();
    OK(fp_store_gc(f->s, 3600, false, &st, &err));
    assert_int_equal(st.manifests_removed + st.blob_links_removed + st.blobs_removed, 0);
    assert_scene_intact(f, &sc);
    assert_fsck_clean(f->s);
}

static void test_gc_dry_run(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    struct scene sc;
    char path[4096];
    build_scene(f, &sc);
    struct fp_gc_stats st;
    OK(fp_store_gc(f->s, 0, true, &st, &err));
    /* it reports what it would do ... */
    assert_scene_stats(&sc, &st);
    /* ... and does none of it */
    assert_scene_intact(f, &sc);
    struct referrers rs = {0};
    OK(fp_store_referrers(f->s, GC_REPO, sc.b.self.digest, collect_referrer, &rs, &err));
    assert_int_equal(rs.n, 1);
    sub_path(f, "trash", path, sizeof path);
    assert_int_equal(count_dir(path), 0);
    assert_fsck_clean(f->s);
    /* twice in a row: the same answer */
    OK(fp_store_gc(f->s, 0, true, &st, &err));
    assert_scene_stats(&sc, &st);
    assert_scene_intact(f, &sc);
    /* and the real run then does exactly that */
    OK(fp_store_gc(f->s, 0, false, &st, &err));
    assert_scene_stats(&sc, &st);
    assert_blob_gone(f, &sc.b.config);
}

static void test_gc_orphans_and_expired_uploads(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    char path[4096], digest[FP_DIGEST_MAX], dir[4096], id[37];
    /* a blob file without a row (a crash between rename and commit), old */
    assert_int_equal(fp_digest_bytes(FP_SHA256, "orphan", 6, digest), 0);
    blob_file(f, digest, path, sizeof path);
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    OK(fp_mkdir_p(dir, 0750, &err));
    write_file(path, "orphan", 6);
    struct timeval old[2] = {{.tv_sec = time(NULL) - 7200}, {.tv_sec = time(NULL) - 7200}};
    assert_int_equal(utimes(path, old), 0);
    /* an upload session past its expiry */
    OK(fp_upload_create(f->s, GC_REPO, id, &err));
    char *sql = fmt("UPDATE uploads SET created = created - 200000 WHERE id = '%s'", id);
    sql_exec(f, sql);
    free(sql);
    char upath[4096];
    snprintf(upath, sizeof upath, "%s/uploads/%s", f->dir, id);
    assert_true(exists(upath));
    /* expiry counts from the last write: age the file as well */
    struct timeval older[2] = {{.tv_sec = time(NULL) - 200000}, {.tv_sec = time(NULL) - 200000}};
    assert_int_equal(utimes(upath, older), 0);
    /* and a fresh one */
    char fresh[37];
    OK(fp_upload_create(f->s, GC_REPO, fresh, &err));

    struct fp_gc_stats st;
    OK(fp_store_gc(f->s, 60, true, &st, &err));
    assert_int_equal(st.orphan_files_removed, 1);
    assert_int_equal(st.uploads_purged, 1);
    assert_true(exists(path));
    assert_true(exists(upath));
    OK(fp_store_gc(f->s, 60, false, &st, &err));
    assert_int_equal(st.orphan_files_removed, 1);
    assert_int_equal(st.uploads_purged, 1);
    assert_false(exists(path));
    assert_false(exists(upath));
    fp_upload *u;
    RC(fp_upload_acquire(f->s, GC_REPO, id, &u, &err), FP_STORE_NOT_FOUND);
    uint64_t off;
    OK(fp_upload_status(f->s, GC_REPO, fresh, &off, &err));
    assert_fsck_clean(f->s);
}

/* ------------------------------------------------------------ gc vs. commit
 *
 * A blob commit renames the upload file into place inside its write
 * transaction and records the row at commit; the rename keeps the upload
 * file's mtime, which is the time of its last chunk. gc's sweep of orphan
 * blob files (files without a row, older than the grace period) must
 * therefore never look while a commit is between its rename and its commit,
 * i.e. it must hold the write lock (it did not before 941b51d: the sweep then
 * deleted the file of a blob being committed, leaving a recorded blob with
 * no bytes). To test that interleaving deterministically, the test binary
 * interposes opendir() and rename(), only to pause threads (the store's code
 * runs unchanged): when the sweep opens blobs/sha256 without holding the
 * write lock, it is held until the uploading thread has renamed its file
 * into place, and the uploader is held after that rename until gc has
 * returned. When the sweep does hold the lock, no commit can interleave and
 * nothing is held. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool armed, sweep_waiting, sweep_locked, renamed, gc_done;
} race = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, false, false, false};

/* With race.mu held: wait (at most 5 s) for *flag. */
static bool race_wait(const bool *flag)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    while (!*flag)
        if (pthread_cond_timedwait(&race.cv, &race.mu, &until) != 0) return false;
    return true;
}

static void race_set(bool *flag)
{
    *flag = true;
    pthread_cond_broadcast(&race.cv);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Is the database under root write-locked (by someone else)? */
static bool write_locked(const char *root, size_t rootlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%.*s/meta.db", (int)rootlen, root);
    sqlite3 *db;
    bool locked = false;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
        locked = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_BUSY;
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    sqlite3_close(db);
    return locked;
}

DIR *opendir(const char *name)
{
    DIR *(*real)(const char *) = (DIR * (*)(const char *)) dlsym(RTLD_NEXT, "opendir");
    pthread_mutex_lock(&race.mu);
    if (race.armed && !race.sweep_waiting && ends_with(name, "/blobs/sha256")) {
        race.sweep_locked = write_locked(name, strlen(name) - strlen("/blobs/sha256"));
        race_set(&race.sweep_waiting);
        if (!race.sweep_locked) race_wait(&race.renamed);
    }
    pthread_mutex_unlock(&race.mu);
    return real(name);
}

int rename(const char *from, const char *to)
{
    int (*real)(const char *, const char *) =
        (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    int rc = real(from, to);
    pthread_mutex_lock(&race.mu);
    if (race.armed && !race.renamed && strstr(from, "/uploads/") && strstr(to, "/blobs/sha256/")) {
        race_set(&race.renamed);
        race_wait(&race.gc_done);
    }
    pthread_mutex_unlock(&race.mu);
    return rc;
}

struct gc_job {
    fp_store *s;
    unsigned grace;
    int rc;
    struct fp_gc_stats st;
    fp_error err;
};

static void *gc_thread(void *arg)
{
    struct gc_job *j = arg;
    j->rc = fp_store_gc(j->s, j->grace, false, &j->st, &j->err);
    pthread_mutex_lock(&race.mu);
    race_set(&race.gc_done);
    pthread_mutex_unlock(&race.mu);
    return NULL;
}

/* A chunked upload whose last chunk came a while ago (longer than the grace
 * period) is finished while an online gc runs: the committed blob must keep
 * its file. */
static void test_gc_sweep_vs_upload_commit(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    char id[37], digest[FP_DIGEST_MAX], computed[FP_DIGEST_MAX], path[4096], other[FP_DIGEST_MAX];
    /* blobs/sha256 exists (as on any store in use) */
    upload_blob(f->s, REPO, "an earlier blob", 15, other);
    const char *data = "the last chunk of this upload came two hours ago";
    assert_int_equal(fp_digest_bytes(FP_SHA256, data, strlen(data), digest), 0);
    fp_upload *u;
    OK(fp_upload_create(f->s, REPO, id, &err));
    OK(fp_upload_acquire(f->s, REPO, id, &u, &err));
    OK(fp_upload_write(u, data, strlen(data), &err));
    snprintf(path, sizeof path, "%s/uploads/%s", f->dir, id);
    struct timeval old[2] = {{.tv_sec = time(NULL) - 7200}, {.tv_sec = time(NULL) - 7200}};
    assert_int_equal(utimes(path, old), 0);

    pthread_mutex_lock(&race.mu);
    race.armed = true;
    race.sweep_waiting = race.sweep_locked = race.renamed = race.gc_done = false;
    pthread_mutex_unlock(&race.mu);
    struct gc_job job = {.s = f->s, .grace = 60};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, gc_thread, &job), 0);
    /* gc has committed and is about to sweep */
    pthread_mutex_lock(&race.mu);
    bool reached = race_wait(&race.sweep_waiting);
    pthread_mutex_unlock(&race.mu);
    /* the client's final PUT ?digest= arrives */
    int rc = fp_upload_finish(u, digest, computed, &err);
    pthread_join(th, NULL);
    pthread_mutex_lock(&race.mu);
    race.armed = false;
    bool done = race.renamed && race.gc_done;
    pthread_mutex_unlock(&race.mu);
    assert_true(reached);
    assert_true(done);
    if (job.rc != 0) fail_msg("gc: %s", job.err.msg);
    OK(rc);

    /* the blob is recorded ... */
    assert_int_equal(blob_rc(f->s, REPO, digest), 0);
    /* ... and its bytes must still be there */
    blob_file(f, digest, path, sizeof path);
    if (!exists(path))
        fail_msg("blob %s committed by fp_upload_finish but its file was deleted by gc's orphan "
                 "sweep (orphan_files_removed=%llu): recorded, unreadable",
                 digest, (unsigned long long)job.st.orphan_files_removed);
    assert_blob_content(f->s, REPO, digest, data, strlen(data));
    assert_fsck_clean(f->s);
}

/* ------------------------------------------------------------ fsck */

static void test_fsck(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    struct image im;
    char path[4096];
    push_image(f->s, REPO, "fsck", NULL, "v1", &im);
    struct referrer sig;
    push_referrer(f->s, REPO, &im.self, MT_SIG, "sig", NULL, &sig);

    struct reports rs = {0};
    struct fp_fsck_stats st;
    OK(fp_store_fsck(f->s, collect_report, &rs, &st, &err));
    assert_int_equal(rs.n, 0);
    assert_int_equal(st.problems, 0);
    assert_int_equal(st.blobs_checked, 4); /* config, layer, empty config, sig payload */
    assert_int_equal(st.bytes_checked,
                     im.config.size + im.layer.size + sig.config.size + sig.payload.size);
    assert_int_equal(st.manifests_checked, 2);
    /* no callback is fine */
    OK(fp_store_fsck(f->s, NULL, NULL, &st, &err));
    assert_int_equal(st.problems, 0);

    /* flip a byte of the layer */
    blob_file(f, im.layer.digest, path, sizeof path);
    size_t len;
    char *orig = read_whole(path, &len);
    char *bad = malloc(len);
    assert_non_null(bad);
    memcpy(bad, orig, len);
    bad[len / 2] ^= 0x01;
    write_file(path, bad, len);
    memset(&rs, 0, sizeof rs);
    OK(fp_store_fsck(f->s, collect_report, &rs, &st, &err));
    assert_int_equal(st.problems, 1);
    assert_int_equal(rs.n, 1);
    assert_string_equal(rs.v[0].kind, "corrupt");
    assert_string_equal(rs.v[0].digest, im.layer.digest);

    /* one byte too many */
    write_file(path, orig, len);
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "!", 1), 1);
    close(fd);
    memset(&rs, 0, sizeof rs);
    OK(fp_store_fsck(f->s, collect_report, &rs, &st, &err));
    assert_int_equal(rs.n, 1);
    assert_string_equal(rs.v[0].kind, "size");
    assert_string_equal(rs.v[0].digest, im.layer.digest);

    /* restored: clean again */
    write_file(path, orig, len);
    assert_fsck_clean(f->s);

    /* deleted */
    assert_int_equal(unlink(path), 0);
    memset(&rs, 0, sizeof rs);
    OK(fp_store_fsck(f->s, collect_report, &rs, &st, &err));
    assert_int_equal(st.problems, 1);
    assert_int_equal(rs.n, 1);
    assert_string_equal(rs.v[0].kind, "missing");
    assert_string_equal(rs.v[0].digest, im.layer.digest);
    /* recorded but gone: reading it is "not found", not an error */
    int bfd = -1;
    uint64_t bsize;
    RC(fp_store_blob_open(f->s, REPO, im.layer.digest, &bfd, &bsize, &err), FP_STORE_NOT_FOUND);
    write_file(path, orig, len);
    assert_fsck_clean(f->s);
    free(orig);
    free(bad);

    /* a manifest body edited behind the store's back */
    char *sql =
        fmt("UPDATE manifests SET body = CAST(replace(CAST(body AS TEXT), '   ', '  ') AS BLOB) "
            "WHERE digest = '%s'",
            im.self.digest);
    sql_exec(f, sql);
    free(sql);
    fp_manifest_row row;
    OK(fp_store_manifest_get(f->s, REPO, "v1", false, true, &row, &err));
    assert_int_not_equal(row.size, im.self.size); /* really edited */
    free(row.body);
    memset(&rs, 0, sizeof rs);
    OK(fp_store_fsck(f->s, collect_report, &rs, &st, &err));
    assert_int_equal(st.problems, 1);
    assert_int_equal(rs.n, 1);
    assert_string_equal(rs.v[0].kind, "manifest-corrupt");
    assert_string_equal(rs.v[0].digest, im.self.digest);
    assert_int_equal(st.manifests_checked, 2);
}

/* ------------------------------------------------------------ crash recovery */

static void test_recover_trash(void **state)
{
    struct fx *f = *state;
    char kept[FP_DIGEST_MAX], gone[FP_DIGEST_MAX], path[4096], trash[4096];
    const char *kept_data = "recorded blob, moved to trash by a gc that then crashed";
    const char *gone_data = "unrecorded blob, its row already deleted by gc";
    upload_blob(f->s, REPO, kept_data, strlen(kept_data), kept);
    assert_int_equal(fp_digest_bytes(FP_SHA256, gone_data, strlen(gone_data), gone), 0);
    fp_store_close(f->s);
    f->s = NULL;

    /* what a gc killed between its rename to trash and its commit leaves */
    {
        fp_store *tmp;
        fp_error err = {0};
        struct fp_store_options o = {0};
        OK(fp_store_open(&tmp, f->dir, &o, &err));
        assert_int_equal(fp_store_blob_path(tmp, kept, path, sizeof path), 0);
        fp_store_close(tmp);
    }
    snprintf(trash, sizeof trash, "%s/trash/%s", f->dir, kept);
    assert_int_equal(rename(path, trash), 0);
    /* ... and one a gc killed after its commit */
    char gone_trash[4096];
    snprintf(gone_trash, sizeof gone_trash, "%s/trash/%s", f->dir, gone);
    write_file(gone_trash, gone_data, strlen(gone_data));

    reopen(f);
    /* the recorded blob is back in place, intact */
    assert_true(exists(path));
    assert_false(exists(trash));
    assert_blob_content(f->s, REPO, kept, kept_data, strlen(kept_data));
    /* the unrecorded one is deleted */
    assert_false(exists(gone_trash));
    char tdir[4096];
    sub_path(f, "trash", tdir, sizeof tdir);
    assert_int_equal(count_dir(tdir), 0);
    fp_error err = {0};
    uint64_t size;
    RC(fp_store_blob_exists(f->s, gone, &size, &err), FP_STORE_NOT_FOUND);
    assert_fsck_clean(f->s);

    /* a non-exclusive open (gc, fsck) recovers the trash too */
    fp_store_close(f->s);
    f->s = NULL;
    assert_int_equal(rename(path, trash), 0);
    struct fp_store_options shared = {0};
    reopen_with(f, &shared);
    assert_true(exists(path));
    assert_int_equal(count_dir(tdir), 0);
}

static void test_recover_uploads(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    char live[37], lost[37], expired[37], path[4096];
    fp_upload *u;
    OK(fp_upload_create(f->s, REPO, live, &err));
    OK(fp_upload_acquire(f->s, REPO, live, &u, &err));
    OK(fp_upload_write(u, "kept across the crash", 21, &err));
    fp_upload_release(u);
    /* a session row whose file is gone */
    OK(fp_upload_create(f->s, REPO, lost, &err));
    /* a session past its expiry */
    OK(fp_upload_create(f->s, REPO, expired, &err));
    fp_store_close(f->s);
    f->s = NULL;
    snprintf(path, sizeof path, "%s/uploads/%s", f->dir, lost);
    assert_int_equal(unlink(path), 0);
    char *sql = fmt("UPDATE uploads SET created = created - 200000 WHERE id = '%s'", expired);
    sql_exec(f, sql);
    free(sql);
    char expired_path[4096];
    snprintf(expired_path, sizeof expired_path, "%s/uploads/%s", f->dir, expired);
    assert_true(exists(expired_path));
    /* expiry counts from the last write: age the file as well */
    struct timeval old[2] = {{.tv_sec = time(NULL) - 200000}, {.tv_sec = time(NULL) - 200000}};
    assert_int_equal(utimes(expired_path, old), 0);
    /* an upload file without a row: an ephemeral upload cut off by a crash */
    const char *orphan_id = "0a1b2c3d-0000-4000-8000-000000000001";
    char orphan[4096];
    snprintf(orphan, sizeof orphan, "%s/uploads/%s", f->dir, orphan_id);
    write_file(orphan, "half a monolithic upload", 24);

    reopen(f);
    assert_false(exists(orphan));
    assert_false(exists(expired_path));
    uint64_t off;
    OK(fp_upload_status(f->s, REPO, live, &off, &err));
    assert_int_equal(off, 21);
    RC(fp_upload_status(f->s, REPO, lost, &off, &err), FP_STORE_NOT_FOUND);
    RC(fp_upload_acquire(f->s, REPO, lost, &u, &err), FP_STORE_NOT_FOUND);
    RC(fp_upload_status(f->s, REPO, expired, &off, &err), FP_STORE_NOT_FOUND);
    RC(fp_upload_acquire(f->s, REPO, expired, &u, &err), FP_STORE_NOT_FOUND);
    RC(fp_upload_acquire(f->s, REPO, orphan_id, &u, &err), FP_STORE_NOT_FOUND);
    /* the live one still finishes */
    char digest[FP_DIGEST_MAX], computed[FP_DIGEST_MAX];
    assert_int_equal(fp_digest_bytes(FP_SHA256, "kept across the crash", 21, digest), 0);
    OK(fp_upload_acquire(f->s, REPO, live, &u, &err));
    OK(fp_upload_finish(u, digest, computed, &err));
    assert_blob_content(f->s, REPO, digest, "kept across the crash", 21);
    sub_path(f, "uploads", path, sizeof path);
    assert_int_equal(count_dir(path), 0);
}

/* ------------------------------------------------------------ threads */

struct worker {
    fp_store *s;
    int n;
    int failures;
    char msg[600];
};

static void *work(void *arg)
{
    struct worker *w = arg;
    char repo[32];
    snprintf(repo, sizeof repo, "conc/r%d", w->n % 3);
    for (int i = 0; i < 8; i++) {
        fp_error err;
        char data[64], digest[FP_DIGEST_MAX], computed[FP_DIGEST_MAX], id[37];
        int len = snprintf(data, sizeof data, "worker %d blob %d", w->n, i);
        fp_digest_bytes(FP_SHA256, data, (size_t)len, digest);
        fp_upload *u;
        int rc = fp_upload_create(w->s, repo, id, &err);
        if (rc == 0) rc = fp_upload_acquire(w->s, repo, id, &u, &err);
        if (rc == 0) {
            rc = fp_upload_write(u, data, (size_t)len, &err);
            if (rc == 0)
                rc = fp_upload_finish(u, digest, computed, &err);
            else
                fp_upload_release(u);
        }
        if (rc == 0) {
            char tag[32];
            snprintf(tag, sizeof tag, "w%d-%d", w->n, i);
            fp_manifest_ref ref = {.digest = digest};
            char body[512], mdigest[FP_DIGEST_MAX], missing[FP_DIGEST_MAX];
            int blen = snprintf(body, sizeof body,
                                "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{"
                                "\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%d},"
                                "\"layers\":[]}",
                                FP_MT_OCI_MANIFEST, MT_CONFIG, digest, len);
            fp_digest_bytes(FP_SHA256, body, (size_t)blen, mdigest);
            const char *tags[1] = {tag};
            fp_manifest_put put = {.digest = mdigest,
                                   .media_type = FP_MT_OCI_MANIFEST,
                                   .body = body,
                                   .size = (size_t)blen,
                                   .refs = &ref,
                                   .nrefs = 1,
                                   .tags = tags,
                                   .ntags = 1};
            rc = fp_store_manifest_put(w->s, repo, &put, missing, &err);
        }
        if (rc != 0) {
            w->failures++;
            snprintf(w->msg, sizeof w->msg, "rc %d: %s", rc, rc < 0 ? err.msg : "");
        }
    }
    return NULL;
}

static void test_concurrent_writers(void **state)
{
    struct fx *f = *state;
    enum { N = 6 };
    pthread_t th[N];
    struct worker w[N];
    for (int i = 0; i < N; i++) {
        w[i] = (struct worker){.s = f->s, .n = i};
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (w[i].failures) fail_msg("worker %d: %d failures, last %s", i, w[i].failures, w[i].msg);
    }
    assert_catalog(f->s, NULL, 100, "conc/r0,conc/r1,conc/r2");
    fp_error err = {0};
    struct names ns = {0};
    OK(fp_store_tags(f->s, "conc/r0", NULL, 100, collect_name, &ns, &err));
    assert_int_equal(ns.n, 16); /* workers 0 and 3, 8 each */
    assert_fsck_clean(f->s);
}

/* Pull-through: a manifest from another node is stored without its blobs
 * (lazy), its tag marked cached; a blob this node holds for another
 * repository is linked only when a manifest of the repository references
 * it; fsck accepts lazy manifests' missing blobs. And a version 1 store
 * (before these columns) is migrated on open without losing anything. */
static void test_cached_manifests_and_migration(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    struct image im;
    push_image(f->s, "a", "cached", NULL, "1", &im);
    char *body = manifest_json(FP_MT_OCI_MANIFEST, &im.config, &im.layer, 1, NULL, NULL, NULL);
    fp_manifest m;
    char why[256], digest[FP_DIGEST_MAX], missing[FP_DIGEST_MAX];
    assert_int_equal(fp_manifest_parse(body, strlen(body), NULL, &m, why, sizeof why), 0);
    fp_digest_bytes(FP_SHA256, body, strlen(body), digest);
    const char *tags[1] = {"v1"};
    /* not cached: refused, the blobs are not in b */
    RC(fp_store_manifest_put_parsed(f->s, "b", &m, digest, body, strlen(body), tags, 1, false,
                                    missing, &err),
       FP_STORE_NOT_FOUND);
    OK(fp_store_manifest_put_parsed(f->s, "b", &m, digest, body, strlen(body), tags, 1, true,
                                    missing, &err));
    fp_manifest_free(&m);
    fp_manifest_row row;
    OK(fp_store_manifest_get(f->s, "b", "v1", false, false, &row, &err));
    assert_true(row.tag_cached);
    assert_true(row.tag_updated >= (int64_t)time(NULL) - 5);
    assert_string_equal(row.digest, digest);
    /* a pushed tag is not cached */
    OK(fp_store_manifest_get(f->s, "a", "1", false, false, &row, &err));
    assert_false(row.tag_cached);

    uint64_t size;
    RC(fp_store_blob_stat(f->s, "b", im.layer.digest, &size, &err), FP_STORE_NOT_FOUND);
    OK(fp_store_blob_link_referenced(f->s, "b", im.layer.digest, &err));
    OK(fp_store_blob_stat(f->s, "b", im.layer.digest, &size, &err));
    assert_int_equal(size, im.layer.size);
    /* c references nothing: no link, even for a blob the node holds */
    RC(fp_store_blob_link_referenced(f->s, "c", im.layer.digest, &err), FP_STORE_NOT_FOUND);
    RC(fp_store_blob_link_referenced(
           f->s, "b",
           "sha256:"
           "0000000000000000000000000000000000000000000000000000000000000000",
           &err),
       FP_STORE_NOT_FOUND);
    /* config not linked in b yet, and not held... it is held (in a): fine.
     * fsck must accept b's manifest as lazy */
    assert_fsck_clean(f->s);
    free(body);

    /* back to a version 1 schema */
    fp_store_close(f->s);
    f->s = NULL;
    char db[128];
    snprintf(db, sizeof db, "%s/meta.db", f->dir);
    sqlite3 *sq;
    assert_int_equal(sqlite3_open(db, &sq), SQLITE_OK);
    assert_int_equal(sqlite3_exec(sq,
                                  "ALTER TABLE manifests DROP COLUMN lazy; ALTER TABLE tags DROP "
                                  "COLUMN cached; ALTER TABLE blobs DROP COLUMN cached; ALTER "
                                  "TABLE repo_manifests DROP COLUMN last_used; PRAGMA "
                                  "user_version = 1;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(sq);
    reopen(f);
    OK(fp_store_manifest_get(f->s, "b", "v1", false, false, &row, &err));
    assert_string_equal(row.digest, digest);
    assert_false(row.tag_cached); /* the column came back with its default */
    OK(fp_store_manifest_get(f->s, "a", "1", false, false, &row, &err));
    assert_int_equal(sqlite3_open(db, &sq), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(sq, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 3);
    sqlite3_finalize(st);
    sqlite3_close(sq);
    /* a newer store than this program: refused, not damaged */
    fp_store_close(f->s);
    f->s = NULL;
    assert_int_equal(sqlite3_open(db, &sq), SQLITE_OK);
    assert_int_equal(sqlite3_exec(sq, "PRAGMA user_version = 9", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(sq);
    assert_int_equal(fp_store_open(&f->s, f->dir, &opts_exclusive, &err), -1);
    assert_non_null(strstr(err.msg, "newer"));
    assert_int_equal(sqlite3_open(db, &sq), SQLITE_OK);
    assert_int_equal(sqlite3_exec(sq, "PRAGMA user_version = 3", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(sq);
    reopen(f);
}

/* ------------------------------------------------------------ cache eviction */

/* Bring a blob in as pull-through does: an ephemeral session whose bytes
 * are recorded as cache. */
static void fetch_blob(fp_store *s, const char *repo, const char *mt, const char *content,
                       struct desc *d)
{
    fp_error err = {0};
    memset(d, 0, sizeof *d);
    d->mt = mt;
    d->size = strlen(content);
    assert_int_equal(fp_digest_bytes(FP_SHA256, content, d->size, d->digest), 0);
    fp_upload *u;
    char computed[FP_DIGEST_MAX];
    OK(fp_upload_begin_ephemeral(s, repo, &u, &err));
    fp_upload_set_cached(u);
    OK(fp_upload_write(u, content, d->size, &err));
    OK(fp_upload_finish(u, d->digest, computed, &err));
}

/* Store a manifest as pull-through does (lazy; tag may be NULL). */
static void fetch_manifest(fp_store *s, const char *repo, const char *body, const char *tag,
                           const char *mt, struct desc *out)
{
    fp_manifest m;
    char why[256], missing[FP_DIGEST_MAX];
    fp_error err = {0};
    memset(out, 0, sizeof *out);
    if (fp_manifest_parse(body, strlen(body), NULL, &m, why, sizeof why) != 0)
        fail_msg("test manifest does not parse: %s", why);
    fp_digest_bytes(FP_SHA256, body, strlen(body), out->digest);
    const char *tags[1] = {tag};
    OK(fp_store_manifest_put_parsed(s, repo, &m, out->digest, body, strlen(body), tags, tag ? 1 : 0,
                                    true, missing, &err));
    fp_manifest_free(&m);
    out->mt = mt;
    out->size = strlen(body);
}

/* A pulled-through image: config and a layer of layer_bytes (a seeded
 * pattern; the same seed gives the same layer), manifest tagged tag. */
static void fetch_image(fp_store *s, const char *repo, const char *seed, const char *layer_seed,
                        size_t layer_bytes, const char *tag, struct image *im)
{
    char config[160];
    snprintf(config, sizeof config, "{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":\"%s\"}",
             seed);
    fetch_blob(s, repo, MT_CONFIG, config, &im->config);
    char *layer = malloc(layer_bytes + 1);
    assert_non_null(layer);
    for (size_t i = 0; i < layer_bytes; i++)
        layer[i] = layer_seed[i % strlen(layer_seed)];
    layer[layer_bytes] = '\0';
    fetch_blob(s, repo, MT_LAYER, layer, &im->layer);
    free(layer);
    char *body = manifest_json(FP_MT_OCI_MANIFEST, &im->config, &im->layer, 1, NULL, NULL, NULL);
    fetch_manifest(s, repo, body, tag, FP_MT_OCI_MANIFEST, &im->self);
    free(body);
}

static void touch(fp_store *s, const char *repo, const struct desc *m, int64_t when)
{
    fp_error err = {0};
    OK(fp_store_manifest_touch(s, repo, m->digest, when, &err));
}

static uint64_t usage(fp_store *s)
{
    fp_error err = {0};
    uint64_t bytes = 0;
    OK(fp_store_cache_usage(s, &bytes, &err));
    return bytes;
}

/* One call of fp_store_evict down to limit bytes, at time now. */
static struct fp_evict_stats evict_below(fp_store *s, uint64_t limit, int64_t now)
{
    fp_error err = {0};
    struct fp_evict_opts o = {
        .max_bytes = limit, .protect = "fog-1/", .now = now, .min_idle_s = 10};
    struct fp_evict_stats st;
    OK(fp_store_evict(s, &o, &st, &err));
    return st;
}

/* Which images eviction takes, in which order, and what stays: the least
 * recently used pulled-through image first, whole (tags, an index's
 * children, the blobs nothing else needs); never this node's namespace,
 * pushed content, a blob a push adopted or another image still needs, an
 * image used within min_idle. */
static void test_cache_eviction(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    int64_t base = (int64_t)time(NULL) + 1000;
    /* pushed here: never evicted, not counted */
    struct image own, local;
    push_image(f->s, "fog-1/own", "own", NULL, "1", &own);
    push_image(f->s, "local", "local", NULL, "1", &local);
    assert_int_equal(usage(f->s), 0);

    struct image a, b, c, d, prot;
    fetch_image(f->s, "a", "a", "layer a ", 4000, "1", &a);
    fetch_image(f->s, "b", "b", "shared layer ", 3000, "1", &b);
    fetch_image(f->s, "c", "c", "layer c ", 5000, "1", &c);
    fetch_image(f->s, "d", "d", "shared layer ", 3000, "1", &d); /* b's layer */
    assert_string_equal(b.layer.digest, d.layer.digest);
    fetch_image(f->s, "fog-1/cached", "prot", "layer prot ", 2000, "1", &prot);
    /* an index with two children, pulled by digest */
    struct image kid1, kid2;
    fetch_image(f->s, "idx", "kid1", "kid one ", 1500, NULL, &kid1);
    fetch_image(f->s, "idx", "kid2", "kid two ", 1500, NULL, &kid2);
    struct desc kids[2] = {kid1.self, kid2.self}, index;
    char *ibody = manifest_json(FP_MT_OCI_INDEX, NULL, kids, 2, NULL, NULL, NULL);
    fetch_manifest(f->s, "idx", ibody, "1", FP_MT_OCI_INDEX, &index);
    free(ibody);
    /* a push mounts a's layer: adopted, it stays when a goes */
    OK(fp_store_blob_mount(f->s, "mine", a.layer.digest, "a", &err));

    touch(f->s, "a", &a.self, base + 1);
    touch(f->s, "c", &c.self, base + 2);
    touch(f->s, "b", &b.self, base + 3);
    touch(f->s, "idx", &index, base + 4);
    touch(f->s, "d", &d.self, base + 5);
    touch(f->s, "fog-1/cached", &prot.self, base);
    /* an index's children were used with it: their own last use does not
     * make them images of their own */
    touch(f->s, "idx", &kid1.self, base);

    fp_manifest_row row;
    OK(fp_store_manifest_get(f->s, "a", "1", false, false, &row, &err));
    assert_int_equal(row.last_used, base + 1);
    OK(fp_store_manifest_get(f->s, "a", a.self.digest, true, false, &row, &err));
    assert_int_equal(row.last_used, base + 1);
    /* touching never goes back in time */
    touch(f->s, "a", &a.self, base - 5);
    OK(fp_store_manifest_get(f->s, "a", "1", false, false, &row, &err));
    assert_int_equal(row.last_used, base + 1);

    uint64_t total = usage(f->s);
    /* under the limit: nothing happens */
    struct fp_evict_stats st = evict_below(f->s, total, base + 100);
    assert_int_equal(st.images_evicted, 0);
    assert_int_equal(st.cache_bytes, total);

    /* one byte over: the least recently used image (a) goes, whole; its
     * layer stays, adopted by the push into mine */
    st = evict_below(f->s, total - 1, base + 100);
    assert_int_equal(st.images_evicted, 1);
    assert_int_equal(st.manifests_removed, 1);
    assert_int_equal(st.blobs_removed, 1); /* the config */
    assert_int_equal(manifest_rc(f->s, "a", "1", false), FP_STORE_NOT_FOUND);
    assert_int_equal(manifest_rc(f->s, "a", a.self.digest, true), FP_STORE_NOT_FOUND);
    assert_blob_gone(f, &a.config);
    assert_blob_kept(f, "mine", &a.layer);
    assert_true(usage(f->s) == total - a.config.size - a.self.size); /* adopted: not counted */
    assert_fsck_clean(f->s);

    /* next: c (used before b) */
    st = evict_below(f->s, usage(f->s) - 1, base + 100);
    assert_int_equal(st.images_evicted, 1);
    assert_int_equal(manifest_rc(f->s, "c", "1", false), FP_STORE_NOT_FOUND);
    assert_blob_gone(f, &c.layer);
    assert_blob_gone(f, &c.config);
    assert_int_equal(manifest_rc(f->s, "b", "1", false), 0);

    /* b is used again: the index goes next, with its children and their
     * blobs */
    touch(f->s, "b", &b.self, base + 50);
    st = evict_below(f->s, usage(f->s) - 1, base + 100);
    assert_int_equal(st.images_evicted, 1);
    assert_int_equal(st.manifests_removed, 3);
    assert_int_equal(st.blobs_removed, 4);
    assert_int_equal(manifest_rc(f->s, "idx", "1", false), FP_STORE_NOT_FOUND);
    assert_int_equal(manifest_rc(f->s, "idx", kid1.self.digest, true), FP_STORE_NOT_FOUND);
    assert_int_equal(manifest_rc(f->s, "idx", kid2.self.digest, true), FP_STORE_NOT_FOUND);
    assert_blob_gone(f, &kid1.layer);
    assert_blob_gone(f, &kid2.config);

    /* d goes; the layer it shares with b stays (b links and needs it) */
    st = evict_below(f->s, usage(f->s) - 1, base + 100);
    assert_int_equal(st.images_evicted, 1);
    assert_int_equal(manifest_rc(f->s, "d", "1", false), FP_STORE_NOT_FOUND);
    assert_blob_gone(f, &d.config);
    assert_blob_kept(f, "b", &b.layer);
    assert_int_equal(blob_rc(f->s, "d", d.layer.digest), FP_STORE_NOT_FOUND);

    /* b was used 5 s before "now": too recent to go */
    st = evict_below(f->s, 0, base + 55);
    assert_int_equal(st.images_evicted, 0);
    /* later it goes, and then only what is protected is left */
    st = evict_below(f->s, 0, base + 100);
    assert_int_equal(st.images_evicted, 1);
    assert_blob_gone(f, &b.layer);
    assert_int_equal(manifest_rc(f->s, "fog-1/cached", "1", false), 0);
    assert_int_equal(manifest_rc(f->s, "fog-1/own", "1", false), 0);
    assert_int_equal(manifest_rc(f->s, "local", "1", false), 0);
    assert_blob_kept(f, "local", &local.layer);
    assert_blob_kept(f, "fog-1/cached", &prot.layer);
    assert_int_equal(usage(f->s), prot.config.size + prot.layer.size + prot.self.size);
    assert_catalog(f->s, NULL, 100, "fog-1/cached,fog-1/own,local");
    assert_fsck_clean(f->s);

    /* a manifest pushed over a cached one adopts it and its blobs */
    struct image e;
    fetch_image(f->s, "e", "e", "layer e ", 1000, "1", &e);
    char *body = manifest_json(FP_MT_OCI_MANIFEST, &e.config, &e.layer, 1, NULL, NULL, NULL);
    struct desc pushed;
    push_manifest(f->s, "e", body, "2", FP_MT_OCI_MANIFEST, &pushed);
    free(body);
    assert_string_equal(pushed.digest, e.self.digest);
    st = evict_below(f->s, 0, base + 1000);
    assert_int_equal(st.images_evicted, 0);
    assert_int_equal(manifest_rc(f->s, "e", "1", false), 0);
    assert_int_equal(usage(f->s), prot.config.size + prot.layer.size + prot.self.size);
}

/* Cached blobs no manifest of their repository references (fetched by
 * digest alone) go before any image, once unneeded for orphan_idle_s; an
 * image's blobs, pushed blobs and the protected namespace's stay. */
static void test_cache_eviction_unneeded(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    struct image im, own;
    fetch_image(f->s, "img", "img", "image layer ", 2000, "1", &im);
    push_image(f->s, "pushed", "pushed", NULL, "1", &own);
    struct desc old_orphan, new_orphan, prot_orphan;
    fetch_blob(f->s, "loose", MT_LAYER, "fetched by digest, long ago", &old_orphan);
    fetch_blob(f->s, "loose", MT_LAYER, "fetched by digest, just now", &new_orphan);
    fetch_blob(f->s, "fog-1/loose", MT_LAYER, "fetched into the own namespace", &prot_orphan);
    int64_t now = (int64_t)time(NULL);
    char *sql = fmt("UPDATE repo_blobs SET created = %lld WHERE digest IN ('%s', '%s', '%s'); "
                    "UPDATE repo_manifests SET last_used = %lld;",
                    (long long)(now - 1000), old_orphan.digest, prot_orphan.digest, im.layer.digest,
                    (long long)(now - 1000));
    sql_exec(f, sql);
    free(sql);
    struct fp_evict_opts o = {.max_bytes = usage(f->s) - 1,
                              .protect = "fog-1/",
                              .now = now,
                              .min_idle_s = 10,
                              .orphan_idle_s = 600};
    struct fp_evict_stats st;
    OK(fp_store_evict(f->s, &o, &st, &err));
    /* the old loose blob was enough: the image stays */
    assert_int_equal(st.images_evicted, 0);
    assert_int_equal(st.blobs_removed, 1);
    assert_blob_gone(f, &old_orphan);
    assert_blob_kept(f, "loose", &new_orphan);
    assert_blob_kept(f, "fog-1/loose", &prot_orphan);
    assert_blob_kept(f, "img", &im.layer);
    assert_int_equal(manifest_rc(f->s, "img", "1", false), 0);
    assert_blob_kept(f, "pushed", &own.layer);
    /* disabled: only images go */
    o.max_bytes = 0;
    o.orphan_idle_s = 0;
    OK(fp_store_evict(f->s, &o, &st, &err));
    assert_int_equal(st.images_evicted, 1);
    assert_blob_kept(f, "loose", &new_orphan);
    assert_blob_gone(f, &im.layer);
    assert_fsck_clean(f->s);
}

/* Pinned images (what an agent runs or is about to) never go, however
 * long unused, and neither does an index that lists a pinned manifest;
 * the rest goes as usual. */
static void test_cache_eviction_pinned(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    int64_t base = (int64_t)time(NULL) + 1000;
    struct image run, other, kid1, kid2;
    fetch_image(f->s, "run", "run", "running layer ", 3000, "1", &run);
    fetch_image(f->s, "other", "other", "other layer ", 3000, "1", &other);
    fetch_image(f->s, "idx", "kid1", "kid one ", 1500, NULL, &kid1);
    fetch_image(f->s, "idx", "kid2", "kid two ", 1500, NULL, &kid2);
    struct desc kids[2] = {kid1.self, kid2.self}, index;
    char *ibody = manifest_json(FP_MT_OCI_INDEX, NULL, kids, 2, NULL, NULL, NULL);
    fetch_manifest(f->s, "idx", ibody, "1", FP_MT_OCI_INDEX, &index);
    free(ibody);
    touch(f->s, "run", &run.self, base + 1); /* the least recently used */
    touch(f->s, "idx", &index, base + 2);
    touch(f->s, "other", &other.self, base + 3);
    /* the agent runs "run" and the platform manifest kid1 of idx */
    char *pinned = fmt("[\"%s\", \"%s\"]", run.self.digest, kid1.self.digest);
    struct fp_evict_opts o = {
        .max_bytes = 0, .protect = "fog-1/", .now = base + 100, .min_idle_s = 10, .pinned = pinned};
    struct fp_evict_stats st;
    OK(fp_store_evict(f->s, &o, &st, &err));
    assert_int_equal(st.images_evicted, 1); /* only other */
    assert_int_equal(manifest_rc(f->s, "other", "1", false), FP_STORE_NOT_FOUND);
    assert_blob_gone(f, &other.layer);
    assert_int_equal(manifest_rc(f->s, "run", "1", false), 0);
    assert_blob_kept(f, "run", &run.layer);
    assert_int_equal(manifest_rc(f->s, "idx", "1", false), 0);
    assert_int_equal(manifest_rc(f->s, "idx", kid1.self.digest, true), 0);
    assert_blob_kept(f, "idx", &kid1.layer);
    /* no longer pinned: they go */
    o.pinned = "[]";
    OK(fp_store_evict(f->s, &o, &st, &err));
    assert_int_equal(st.images_evicted, 2);
    assert_int_equal(manifest_rc(f->s, "run", "1", false), FP_STORE_NOT_FOUND);
    assert_int_equal(manifest_rc(f->s, "idx", kid1.self.digest, true), FP_STORE_NOT_FOUND);
    assert_fsck_clean(f->s);
    free(pinned);
}

/* A version 2 store (before the cache's columns) is migrated on open:
 * what it holds counts as pushed (its blobs are not cache), its images
 * were last used when stored. */
static void test_cache_migration(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    struct image im;
    fetch_image(f->s, "a", "a", "layer a ", 1000, "1", &im);
    assert_true(usage(f->s) > im.layer.size);
    fp_manifest_row row;
    OK(fp_store_manifest_get(f->s, "a", "1", false, false, &row, &err));
    int64_t stored = row.last_used;
    assert_true(stored >= (int64_t)time(NULL) - 5);
    fp_store_close(f->s);
    f->s = NULL;
    sql_exec(f, "ALTER TABLE blobs DROP COLUMN cached; ALTER TABLE repo_manifests DROP COLUMN "
                "last_used; PRAGMA user_version = 2;");
    reopen(f);
    OK(fp_store_manifest_get(f->s, "a", "1", false, false, &row, &err));
    assert_int_equal(row.last_used, stored); /* from created */
    assert_true(row.tag_cached);
    assert_int_equal(usage(f->s), im.self.size); /* the lazy manifest alone */
    char db[128];
    snprintf(db, sizeof db, "%s/meta.db", f->dir);
    sqlite3 *sq;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(db, &sq), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(sq, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 3);
    sqlite3_finalize(st);
    sqlite3_close(sq);
    assert_fsck_clean(f->s);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_open_close),
        T(test_cached_manifests_and_migration),
        T(test_cache_eviction),
        T(test_cache_eviction_unneeded),
        T(test_cache_eviction_pinned),
        T(test_cache_migration),
        T(test_upload_roundtrip),
        T(test_upload_async_hash_rollback),
        T(test_upload_empty_and_large),
        T(test_upload_wrong_digest),
        T(test_upload_rollback),
        T(test_upload_busy_and_other_repo),
        T(test_upload_survives_reopen),
        T(test_upload_sha512),
        T(test_upload_ephemeral),
        T(test_blob_mount),
        T(test_blob_delete),
        T(test_manifest_put_missing_blob),
        T(test_manifest_put_missing_child),
        T(test_manifest_get),
        T(test_tags_listing),
        T(test_catalog),
        T(test_referrers),
        T(test_manifest_delete),
        T(test_gc_grace0),
        T(test_gc_grace_keeps_everything),
        T(test_gc_dry_run),
        T(test_gc_orphans_and_expired_uploads),
        T(test_gc_sweep_vs_upload_commit),
        T(test_fsck),
        T(test_recover_trash),
        T(test_recover_uploads),
        T(test_concurrent_writers),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
