/* The paper's service images (see demo_images.h): a ustar writer, gzip by
 * zlib (no timestamp in its header), the OCI config and manifest, an image
 * layout writer and a registry push. */
#include "cli/demo_images.h"

#include <elf.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <zlib.h>

#include "core/cleanup.h"
#include "core/fs.h"

#define STAMP      "2024-01-01T00:00:00Z"
#define STAMP_UNIX 1704067200L /* STAMP, every file's mtime */
#define PATH_ENV   "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_CONFIG   "application/vnd.oci.image.config.v1+json"
#define MT_LAYER    "application/vnd.oci.image.layer.v1.tar+gzip"

/* One entry of a layer: a directory (text and link NULL), a symlink, or a
 * file with text (or, for bin/busybox, the host's busybox). */
struct entry {
    const char *path;
    unsigned mode;
    const char *text;
    const char *link;
};

#define DIR_(p)                                                                                    \
    {                                                                                              \
        p, 0755, NULL, NULL                                                                        \
    }
#define LINK(a)                                                                                    \
    {                                                                                              \
        "bin/" a, 0777, NULL, "busybox"                                                            \
    }
#define BUSYBOX_ "bin/busybox"

static const struct entry base_layer[] = {
    DIR_("bin"),
    {BUSYBOX_, 0755, NULL, NULL},
    LINK("cat"),
    LINK("date"),
    LINK("echo"),
    LINK("env"),
    LINK("false"),
    LINK("grep"),
    LINK("head"),
    LINK("hostname"),
    LINK("httpd"),
    LINK("id"),
    LINK("kill"),
    LINK("ls"),
    LINK("mkdir"),
    LINK("printf"),
    LINK("ps"),
    LINK("rm"),
    LINK("seq"),
    LINK("sh"),
    LINK("sleep"),
    LINK("tail"),
    LINK("tee"),
    LINK("test"),
    LINK("true"),
    LINK("uname"),
    LINK("wc"),
    LINK("wget"),
    DIR_("etc"),
    {"etc/group", 0644, "root:x:0:\nnogroup:x:65534:\n", NULL},
    {"etc/passwd", 0644,
     "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", NULL},
    DIR_("sbin"),
    DIR_("srv"),
    {"tmp", 01777, NULL, NULL},
    DIR_("usr"),
    DIR_("usr/bin"),
    DIR_("usr/sbin"),
    DIR_("var"),
    DIR_("var/log"),
    DIR_("www"),
};

static const struct entry web_layer[] = {
    DIR_("www"),
    {"www/health", 0644, "ok\n", NULL},
    {"www/index.html", 0644,
     "<!doctype html>\n"
     "<html><head><title>web_service</title></head>\n"
     "<body><h1>web_service</h1><p>Served by busybox httpd from a fogport registry.</p></body>\n"
     "</html>\n",
     NULL},
};

static const struct entry iot_layer[] = {
    DIR_("srv"),
    {"srv/iot.sh", 0755,
     "#!/bin/sh\n"
     "# Simulated sensor: one reading per INTERVAL seconds, to stdout and to OUT.\n"
     "INTERVAL=${INTERVAL:-2}\n"
     "OUT=${OUT:-/tmp/readings.log}\n"
     "SENSOR=${SENSOR_ID:-$(hostname)}\n"
     "n=0\n"
     "while :; do\n"
     "    n=$((n + 1))\n"
     "    t=$((RANDOM % 150 + 150))                 # 15.0 .. 29.9 degrees C\n"
     "    line=\"$(date -u +%Y-%m-%dT%H:%M:%SZ) sensor=$SENSOR seq=$n "
     "temperature=$((t / 10)).$((t % 10))\"\n"
     "    echo \"$line\" | tee -a \"$OUT\"\n"
     "    [ -n \"$COUNT\" ] && [ \"$n\" -ge \"$COUNT\" ] && exit 0\n"
     "    sleep \"$INTERVAL\"\n"
     "done\n",
     NULL},
};

static const struct entry monitoring_layer[] = {
    DIR_("srv"),
    {"srv/monitor.sh", 0755,
     "#!/bin/sh\n"
     "# Polls each endpoint given as an argument (or in $ENDPOINTS) with wget,\n"
     "# printing one status line per endpoint per round.\n"
     "[ $# -gt 0 ] || set -- $ENDPOINTS\n"
     "INTERVAL=${INTERVAL:-5}\n"
     "n=0\n"
     "while :; do\n"
     "    n=$((n + 1))\n"
     "    for url in \"$@\"; do\n"
     "        if body=$(wget -q -O- \"$url\"); then\n"
     "            echo \"$(date -u +%Y-%m-%dT%H:%M:%SZ) UP   $url bytes=${#body}\"\n"
     "        else\n"
     "            echo \"$(date -u +%Y-%m-%dT%H:%M:%SZ) DOWN $url\"\n"
     "        fi\n"
     "    done\n"
     "    [ -n \"$COUNT\" ] && [ \"$n\" -ge \"$COUNT\" ] && exit 0\n"
     "    sleep \"$INTERVAL\"\n"
     "done\n",
     NULL},
};

#define N(a) (sizeof(a) / sizeof *(a))

/* What each image runs. */
static const struct service_image {
    const char *repo, *tag, *what;
    const struct entry *files;
    size_t nfiles;
    const char *entrypoint[2], *cmd[8], *env[4];
    const char *port, *workdir, *volume;
} paper[FP_DEMO_IMAGES] = {
    {"iot_service",
     "1.0",
     "iot_service (sensor readings)",
     iot_layer,
     N(iot_layer),
     {"/bin/sh"},
     {"/srv/iot.sh"},
     {PATH_ENV, "INTERVAL=2", "OUT=/tmp/readings.log"},
     NULL,
     NULL,
     "/tmp"},
    {"monitoring_service",
     "1.0",
     "monitoring_service (wget poller)",
     monitoring_layer,
     N(monitoring_layer),
     {"/bin/sh"},
     {"/srv/monitor.sh", "http://web_service:8080/", "http://web_service:8080/health"},
     {PATH_ENV, "INTERVAL=5"},
     NULL,
     NULL,
     NULL},
    {"web_service",
     "latest",
     "web_service (busybox httpd)",
     web_layer,
     N(web_layer),
     {"/bin/busybox"},
     {"httpd", "-f", "-p", "8080", "-h", "/www"},
     {PATH_ENV},
     "8080/tcp",
     "/www",
     NULL},
};

/* ---- tar ------------------------------------------------------------- */

static void octal(char *field, size_t width, unsigned long long v)
{
    snprintf(field, width, "%0*llo", (int)width - 1, v);
}

static int tar_entry(fp_buf *tar, const char *path, char type, unsigned mode, const char *link,
                     const void *data, size_t len)
{
    unsigned char h[512] = {0};
    size_t pl = strlen(path);
    if (pl + (type == '5') >= 100) return -1; /* the layers' paths are short */
    memcpy(h, path, pl);
    if (type == '5') h[pl] = '/';
    octal((char *)h + 100, 8, mode);
    octal((char *)h + 108, 8, 0);
    octal((char *)h + 116, 8, 0);
    octal((char *)h + 124, 12, type == '0' ? len : 0);
    octal((char *)h + 136, 12, STAMP_UNIX);
    memset(h + 148, ' ', 8);
    h[156] = (unsigned char)type;
    if (link) memcpy(h + 157, link, strlen(link));
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memcpy(h + 265, "root", 4);
    memcpy(h + 297, "root", 4);
    unsigned sum = 0;
    for (size_t i = 0; i < sizeof h; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    if (fp_buf_append(tar, h, sizeof h) < 0) return -1;
    if (type != '0' || !len) return 0;
    static const char zero[512];
    if (fp_buf_append(tar, data, len) < 0) return -1;
    return len % 512 ? fp_buf_append(tar, zero, 512 - len % 512) : 0;
}

static int gzip(const fp_buf *in, fp_buf *out, fp_error *err)
{
    z_stream z = {0};
    /* windowBits 15 + 16: a gzip wrapper; zlib writes mtime 0 in it */
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return fp_error_set(err, 0, "gzip: deflateInit2 failed");
    size_t bound = deflateBound(&z, in->len);
    if (fp_buf_reserve(out, bound) < 0) {
        deflateEnd(&z);
        return fp_error_set(err, ENOMEM, "gzip");
    }
    z.next_in = (Bytef *)in->data;
    z.avail_in = (uInt)in->len;
    z.next_out = (Bytef *)out->data;
    z.avail_out = (uInt)bound;
    int rc = deflate(&z, Z_FINISH);
    out->len = z.total_out;
    deflateEnd(&z);
    return rc == Z_STREAM_END ? 0 : fp_error_set(err, 0, "gzip: deflate failed (%d)", rc);
}

/* A layer from entries: its gzip blob, and the digest of the tar itself
 * (the config's diff_id). */
static int build_layer(const struct entry *e, size_t n, const char *busybox, fp_demo_blob *blob,
                       char diff_id[FP_DIGEST_MAX], fp_error *err)
{
    cleanup_buf fp_buf tar = FP_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        int rc;
        if (!strcmp(e[i].path, BUSYBOX_)) {
            char *data = NULL;
            size_t len = 0;
            if (fp_read_file(busybox, 64u << 20, &data, &len, err) < 0) return -1;
            rc = tar_entry(&tar, e[i].path, '0', e[i].mode, NULL, data, len);
            free(data);
        } else if (e[i].link) {
            rc = tar_entry(&tar, e[i].path, '2', e[i].mode, e[i].link, NULL, 0);
        } else if (e[i].text) {
            rc = tar_entry(&tar, e[i].path, '0', e[i].mode, NULL, e[i].text, strlen(e[i].text));
        } else {
            rc = tar_entry(&tar, e[i].path, '5', e[i].mode, NULL, NULL, 0);
        }
        if (rc < 0) return fp_error_set(err, ENOMEM, "layer entry %s", e[i].path);
    }
    static const char end[1024];
    if (fp_buf_append(&tar, end, sizeof end) < 0) return fp_error_set(err, ENOMEM, "layer");
    fp_digest_bytes(FP_SHA256, tar.data, tar.len, diff_id);
    if (gzip(&tar, &blob->data, err) < 0) return -1;
    blob->media_type = MT_LAYER;
    return fp_digest_bytes(FP_SHA256, blob->data.data, blob->data.len, blob->digest) < 0
               ? fp_error_set(err, 0, "digest")
               : 0;
}

/* The busybox must run alone in an image: a static executable, no
 * interpreter (a dynamic one needs the host's libc). */
static int check_static(const char *path, fp_error *err)
{
    char *data = NULL;
    size_t len = 0;
    if (fp_read_file(path, 64u << 20, &data, &len, err) < 0) return -1;
    int rc = 0;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)data;
    if (len < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
        eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_phoff + (size_t)eh->e_phnum * sizeof(Elf64_Phdr) > len) {
        rc = fp_error_set(err, 0, "%s is not a 64-bit ELF executable", path);
    } else {
        const Elf64_Phdr *ph = (const Elf64_Phdr *)(data + eh->e_phoff);
        for (unsigned i = 0; i < eh->e_phnum && rc == 0; i++)
            if (ph[i].p_type == PT_INTERP)
                rc = fp_error_set(err, 0,
                                  "%s is dynamically linked; the images need a static busybox "
                                  "(Debian: apt-get install busybox-static)",
                                  path);
    }
    free(data);
    return rc;
}

/* The host's busybox runs on the host's architecture, fogport's own. */
static const char *oci_arch(void)
{
#if defined(__x86_64__)
    return "amd64";
#elif defined(__aarch64__)
    return "arm64";
#elif defined(__i386__)
    return "386";
#else
    return "unknown";
#endif
}

static json_t *strv(const char *const *v, size_t max)
{
    json_t *a = json_array();
    for (size_t i = 0; i < max && v[i]; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static int set_blob(fp_demo_blob *b, const char *media_type, json_t *doc, fp_error *err)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!text || fp_buf_puts(&b->data, text) < 0) {
        free(text);
        return fp_error_set(err, ENOMEM, "image json");
    }
    free(text);
    b->media_type = media_type;
    fp_digest_bytes(FP_SHA256, b->data.data, b->data.len, b->digest);
    return 0;
}

static json_t *descriptor(const fp_demo_blob *b)
{
    return json_pack("{s:s, s:s, s:I}", "mediaType", b->media_type, "digest", b->digest, "size",
                     (json_int_t)b->data.len);
}

int fp_demo_images_build(fp_demo_images *out, const char *busybox, fp_error *err)
{
    memset(out, 0, sizeof *out);
    if (!busybox) busybox = "/bin/busybox";
    if (check_static(busybox, err) < 0) goto fail;
    char base_diff[FP_DIGEST_MAX], own_diff[FP_DIGEST_MAX];
    if (build_layer(base_layer, N(base_layer), busybox, &out->base, base_diff, err) < 0) goto fail;
    for (size_t i = 0; i < FP_DEMO_IMAGES; i++) {
        const struct service_image *s = &paper[i];
        fp_demo_image *img = &out->image[i];
        img->repo = s->repo;
        img->tag = s->tag;
        if (build_layer(s->files, s->nfiles, busybox, &out->own[i], own_diff, err) < 0) goto fail;
        img->layers[0] = &out->base;
        img->layers[1] = &out->own[i];

        json_t *cfg =
            json_pack("{s:o, s:o, s:o}", "Env", strv(s->env, N(s->env)), "Entrypoint",
                      strv(s->entrypoint, N(s->entrypoint)), "Cmd", strv(s->cmd, N(s->cmd)));
        if (s->port) json_object_set_new(cfg, "ExposedPorts", json_pack("{s:{}}", s->port));
        if (s->volume) json_object_set_new(cfg, "Volumes", json_pack("{s:{}}", s->volume));
        if (s->workdir) json_object_set_new(cfg, "WorkingDir", json_string(s->workdir));
        json_object_set_new(cfg, "Labels",
                            json_pack("{s:s}", "org.opencontainers.image.title", s->repo));
        char by[128];
        snprintf(by, sizeof by, "fogport sandbox images: %s", s->what);
        json_t *config = json_pack(
            "{s:s, s:s, s:s, s:o, s:{s:s, s:[s, s]}, s:[{s:s, s:s}, {s:s, s:s}]}", "created", STAMP,
            "architecture", oci_arch(), "os", "linux", "config", cfg, "rootfs", "type", "layers",
            "diff_ids", base_diff, own_diff, "history", "created", STAMP, "created_by",
            "fogport sandbox images: busybox base", "created", STAMP, "created_by", by);
        if (set_blob(&img->config, MT_CONFIG, config, err) < 0) goto fail;
        json_t *manifest = json_pack("{s:i, s:s, s:o, s:[o, o]}", "schemaVersion", 2, "mediaType",
                                     MT_MANIFEST, "config", descriptor(&img->config), "layers",
                                     descriptor(img->layers[0]), descriptor(img->layers[1]));
        if (set_blob(&img->manifest, MT_MANIFEST, manifest, err) < 0) goto fail;
    }
    return 0;
fail:
    fp_demo_images_free(out);
    return -1;
}

void fp_demo_images_free(fp_demo_images *imgs)
{
    fp_buf_free(&imgs->base.data);
    for (size_t i = 0; i < FP_DEMO_IMAGES; i++) {
        fp_buf_free(&imgs->own[i].data);
        fp_buf_free(&imgs->image[i].config.data);
        fp_buf_free(&imgs->image[i].manifest.data);
    }
}

/* ---- OCI image layout ------------------------------------------------- */

static int write_blob(const char *dir, const fp_demo_blob *b, fp_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/blobs/sha256/%s", dir, fp_digest_hex(b->digest));
    return fp_write_file_atomic(path, b->data.data, b->data.len, 0644, err);
}

int fp_demo_images_write_layout(const fp_demo_images *imgs, const char *dir, fp_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/blobs/sha256", dir);
    if (fp_mkdir_p(path, 0755, err) < 0 || write_blob(dir, &imgs->base, err) < 0) return -1;
    json_t *manifests = json_array();
    for (size_t i = 0; i < FP_DEMO_IMAGES; i++) {
        const fp_demo_image *img = &imgs->image[i];
        if (write_blob(dir, img->layers[1], err) < 0 || write_blob(dir, &img->config, err) < 0 ||
            write_blob(dir, &img->manifest, err) < 0) {
            json_decref(manifests);
            return -1;
        }
        char ref[128];
        snprintf(ref, sizeof ref, "%s:%s", img->repo, img->tag);
        json_t *d = descriptor(&img->manifest);
        json_object_set_new(d, "annotations",
                            json_pack("{s:s}", "org.opencontainers.image.ref.name", ref));
        json_array_append_new(manifests, d);
    }
    json_t *index = json_pack("{s:i, s:s, s:o}", "schemaVersion", 2, "mediaType",
                              "application/vnd.oci.image.index.v1+json", "manifests", manifests);
    char *text = json_dumps(index, JSON_COMPACT);
    json_decref(index);
    static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
    snprintf(path, sizeof path, "%s/oci-layout", dir);
    int rc = fp_write_file_atomic(path, layout, strlen(layout), 0644, err);
    snprintf(path, sizeof path, "%s/index.json", dir);
    if (rc == 0) rc = text ? fp_write_file_atomic(path, text, strlen(text), 0644, err) : -1;
    free(text);
    return rc;
}

/* ---- push ------------------------------------------------------------- */

/* How to call the registry for repo: a Bearer token in *token (empty when
 * the registry takes Basic credentials or none). */
static int repo_token(const char *registry, const char *repo, const fp_http_opts *o, fp_buf *token,
                      fp_error *err)
{
    char url[1024];
    snprintf(url, sizeof url, "%s/v2/", registry);
    fp_http_opts plain = *o;
    plain.userpwd = NULL;
    fp_http_response r;
    if (fp_http_get(url, &plain, &r, err) < 0) return -1;
    char ch[sizeof r.www_authenticate + 128];
    snprintf(ch, sizeof ch, "%s", r.www_authenticate);
    long status = r.status;
    fp_http_response_free(&r);
    if (status != 401 || strncasecmp(ch, "Bearer ", 7) != 0) return 0;
    /* the /v2/ challenge names no repository: ask for push to this one */
    size_t l = strlen(ch);
    snprintf(ch + l, sizeof ch - l, ",scope=\"repository:%s:pull,push\"", repo);
    return fp_http_fetch_token(ch, o, token, NULL, err);
}

static int call(const char *method, const char *url, const fp_http_opts *o, const char *bearer,
                const fp_demo_blob *body, long want, fp_error *err)
{
    fp_http_opts c = *o;
    if (bearer) c.userpwd = NULL; /* the credentials went to the token service only */
    if (body) {
        c.body = body->data.data;
        c.body_len = body->data.len;
        c.content_type = body->media_type;
    }
    c.timeout_s = 120;
    fp_http_response r;
    if (fp_http_request(method, url, &c, bearer, NULL, &r, err) < 0) return -1;
    long status = r.status;
    int rc = 0;
    if (want && status != want)
        rc = fp_error_set(err, 0, "%s %s: HTTP %ld: %.200s", method, url, status,
                          r.body.data ? r.body.data : "");
    fp_http_response_free(&r);
    return rc < 0 ? -1 : (int)status;
}

static int push_blob(const char *registry, const char *repo, const fp_http_opts *o,
                     const char *bearer, const fp_demo_blob *b, fp_error *err)
{
    char url[1024];
    snprintf(url, sizeof url, "%s/v2/%s/blobs/%s", registry, repo, b->digest);
    int st = call("HEAD", url, o, bearer, NULL, 0, err);
    if (st < 0) return -1;
    if (st == 200) return 0; /* it has it (a shared base layer, a second run) */
    snprintf(url, sizeof url, "%s/v2/%s/blobs/uploads/?digest=%s", registry, repo, b->digest);
    return call("POST", url, o, bearer, b, 201, err) < 0 ? -1 : 0;
}

int fp_demo_images_push(const fp_demo_images *imgs, const char *registry, const fp_http_opts *o,
                        fp_error *err)
{
    for (size_t i = 0; i < FP_DEMO_IMAGES; i++) {
        const fp_demo_image *img = &imgs->image[i];
        cleanup_buf fp_buf token = FP_BUF_INIT;
        if (repo_token(registry, img->repo, o, &token, err) < 0) return -1;
        const char *bearer = token.len ? token.data : NULL;
        if (push_blob(registry, img->repo, o, bearer, img->layers[0], err) < 0 ||
            push_blob(registry, img->repo, o, bearer, img->layers[1], err) < 0 ||
            push_blob(registry, img->repo, o, bearer, &img->config, err) < 0)
            return -1;
        char url[1024];
        snprintf(url, sizeof url, "%s/v2/%s/manifests/%s", registry, img->repo, img->tag);
        if (call("PUT", url, o, bearer, &img->manifest, 201, err) < 0) return -1;
    }
    return 0;
}
