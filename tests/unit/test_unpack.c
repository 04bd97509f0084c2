/* Unit tests for the agent's image layers: unpacking (agent/unpack), the
 * layer cache (agent/layers) and overlayfs root file systems (agent/rootfs).
 * Layers are tar archives written here with libarchive's writer (or a tar
 * header by hand where the writer would not lie). They need root (chown,
 * mknod, trusted.* xattrs, mount) and run in a private mount namespace so a
 * failed test leaves no mount behind. Every malicious layer must fail with
 * an error naming the entry, and a sentinel directory beside the layer
 * directory must come out untouched. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "agent/layers.h"
#include "agent/rootfs.h"
#include "agent/unpack.h"
#include "agent/unpack_proc.h"
#include "core/digest.h"
#include "core/fs.h"

#define MIB (1024ULL * 1024)
#define T0  1600000000 /* mtimes in the layers */

enum filter { NONE, GZIP, ZSTD, GZIP_TWICE };

/* One tar entry. type: 'f' file, 'd' directory, 'l' symlink, 'h' hard
 * link, 'p' FIFO, 'c'/'b' devices. */
typedef struct tent {
    const char *name;
    char type;
    unsigned mode; /* 0: 0644 for files, 0755 for directories */
    const char *data;
    const char *link;
    int64_t uid, gid;
    time_t mtime; /* 0: T0 */
    const char *xname;
    const char *xval;
    size_t xlen;    /* 0: strlen(xval) */
    uint64_t zeros; /* a file of this many zero bytes instead of data */
} tent;

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void write_tar(const char *path, enum filter filter, const tent *ents, size_t n)
{
    static const char zeros[1 << 20];
    /* Names are UTF-8 in pax headers, as Go's archive/tar writes them; the
     * writer converts from the locale's charset, so it runs in C.UTF-8. The
     * unpacker reads them in the C locale, like the agent. */
    locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    assert_non_null(utf8);
    locale_t old = uselocale(utf8);
    struct archive *a = archive_write_new();
    assert_non_null(a);
    assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    if (filter == GZIP || filter == GZIP_TWICE) {
        assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
        archive_write_set_filter_option(a, "gzip", "compression-level", "1");
    }
    if (filter == GZIP_TWICE) assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    if (filter == ZSTD) {
        assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
        archive_write_set_filter_option(a, "zstd", "compression-level", "1");
    }
    if (archive_write_open_filename(a, path) != ARCHIVE_OK) fail_msg("%s", archive_error_string(a));
    for (size_t i = 0; i < n; i++) {
        const tent *t = &ents[i];
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, t->name);
        archive_entry_set_uid(e, t->uid);
        archive_entry_set_gid(e, t->gid);
        archive_entry_set_mtime(e, t->mtime ? t->mtime : T0, 0);
        uint64_t size = 0;
        switch (t->type) {
        case 'f':
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, t->mode ? t->mode : 0644);
            size = t->zeros ? t->zeros : (t->data ? strlen(t->data) : 0);
            break;
        case 'd':
            archive_entry_set_filetype(e, AE_IFDIR);
            archive_entry_set_perm(e, t->mode ? t->mode : 0755);
            break;
        case 'l':
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_perm(e, 0777);
            archive_entry_set_symlink(e, t->link);
            break;
        case 'h':
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, 0644);
            archive_entry_set_hardlink(e, t->link);
            break;
        case 'p':
            archive_entry_set_filetype(e, AE_IFIFO);
            archive_entry_set_perm(e, t->mode ? t->mode : 0644);
            break;
        case 'c':
        case 'b':
            archive_entry_set_filetype(e, t->type == 'c' ? AE_IFCHR : AE_IFBLK);
            archive_entry_set_perm(e, 0666);
            archive_entry_set_rdev(e, t->type == 'c' ? makedev(1, 3) : makedev(8, 0));
            break;
        default:
            fail_msg("bad type %c", t->type);
        }
        archive_entry_set_size(e, (la_int64_t)size);
        if (t->xname)
            archive_entry_xattr_add_entry(e, t->xname, t->xval,
                                          t->xlen ? t->xlen : strlen(t->xval));
        if (archive_write_header(a, e) != ARCHIVE_OK) fail_msg("%s", archive_error_string(a));
        if (t->zeros) {
            for (uint64_t left = t->zeros; left;) {
                size_t chunk = left < sizeof zeros ? (size_t)left : sizeof zeros;
                assert_int_equal(archive_write_data(a, zeros, chunk), (la_ssize_t)chunk);
                left -= chunk;
            }
        } else if (size) {
            assert_int_equal(archive_write_data(a, t->data, size), (la_ssize_t)size);
        }
        archive_entry_free(e);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    uselocale(old);
    freelocale(utf8);
}

/* ------------------------------------------------------------ fixtures */

struct fx {
    char base[64];
    char layer[128];   /* base/layer: where layers are unpacked */
    char outside[128]; /* base/outside: the sentinel beside it */
    char blob[128];    /* base/blobs/layer.tar */
    char blobs[128];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->base, sizeof f->base, "/tmp/fp-unpack-XXXXXX");
    if (!mkdtemp(f->base)) return -1;
    snprintf(f->layer, sizeof f->layer, "%s/layer", f->base);
    snprintf(f->outside, sizeof f->outside, "%s/outside", f->base);
    snprintf(f->blobs, sizeof f->blobs, "%s/blobs", f->base);
    snprintf(f->blob, sizeof f->blob, "%s/layer.tar", f->blobs);
    char sentinel[160];
    snprintf(sentinel, sizeof sentinel, "%s/sentinel", f->outside);
    fp_error err;
    if (mkdir(f->layer, 0755) < 0 || mkdir(f->outside, 0755) < 0 || mkdir(f->blobs, 0755) < 0 ||
        fp_write_file_atomic(sentinel, "keep", 4, 0644, &err) < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    fp_error err;
    fp_layer_remove(f->base, &err);
    free(f);
    return 0;
}

static void expect_ok(int rc, const fp_error *err, const char *what)
{
    if (rc < 0) fail_msg("%s: %s", what, err->msg);
}

static void reset_layer(struct fx *f)
{
    fp_error err;
    expect_ok(fp_layer_remove(f->layer, &err), &err, "remove layer");
    assert_int_equal(mkdir(f->layer, 0755), 0);
}

static char *read_text(const char *path)
{
    char *s = NULL;
    size_t len;
    fp_error err;
    if (fp_read_file(path, 1 << 20, &s, &len, &err) < 0) fail_msg("%s", err.msg);
    return s;
}

static void expect_content(const char *dir, const char *rel, const char *want)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    char *got = read_text(path);
    if (strcmp(got, want) != 0) fail_msg("%s: \"%s\", want \"%s\"", rel, got, want);
    free(got);
}

static struct stat lstat_in(const char *dir, const char *rel)
{
    char path[PATH_MAX];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    if (lstat(path, &sb) < 0) fail_msg("lstat %s: %s", rel, strerror(errno));
    return sb;
}

static bool exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

static bool exists_in(const char *dir, const char *rel)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return exists(path);
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

/* Nothing but layer/, outside/, blobs/ (and cache/) in base, and outside/
 * holds only the untouched sentinel. */
static void check_outside(struct fx *f)
{
    DIR *d = opendir(f->base);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
            strcmp(de->d_name, "layer") != 0 && strcmp(de->d_name, "outside") != 0 &&
            strcmp(de->d_name, "blobs") != 0 && strcmp(de->d_name, "cache") != 0)
            fail_msg("%s appeared beside the layer", de->d_name);
    closedir(d);
    assert_int_equal(count_entries(f->outside), 1);
    expect_content(f->outside, "sentinel", "keep");
}

/* Unpack ents and expect a refusal whose message names needle. */
static void expect_refused(struct fx *f, const tent *ents, size_t n, const fp_unpack_limits *lim,
                           const char *needle)
{
    reset_layer(f);
    write_tar(f->blob, NONE, ents, n);
    fp_error err = {0};
    if (fp_layer_unpack(f->blob, f->layer, lim, NULL, &err) == 0)
        fail_msg("layer with \"%s\" was accepted", needle);
    if (!strstr(err.msg, needle)) fail_msg("error \"%s\" does not name \"%s\"", err.msg, needle);
    check_outside(f);
}

/* ------------------------------------------------------------ unpacking */

static const tent normal_layer[] = {
    {.name = "./", .type = 'd', .mode = 0755, .mtime = T0 + 1},
    {.name = "etc/", .type = 'd', .mtime = T0 + 2},
    {.name = "etc/hosts", .type = 'f', .data = "127.0.0.1 localhost\n", .mtime = T0 + 3},
    {.name = "etc/secret", .type = 'f', .mode = 0600, .data = "s3cret"},
    {.name = "etc/xa", .type = 'f', .data = "x", .xname = "user.origin", .xval = "test"},
    {.name = "home/user/", .type = 'd', .mode = 0750, .uid = 1000, .gid = 1000, .mtime = T0 + 4},
    {.name = "home/user/run.sh",
     .type = 'f',
     .mode = 0755,
     .uid = 1000,
     .gid = 1001,
     .data = "#!/bin/sh\necho hi\n",
     .mtime = T0 + 5},
    {.name = "bin/sh", .type = 'f', .mode = 0755, .data = "ELF"},
    {.name = "bin/ash", .type = 'h', .link = "bin/sh"},
    {.name = "./usr/bin/env", .type = 'l', .link = "../../bin/sh", .uid = 7, .mtime = T0 + 6},
    {.name = "lib", .type = 'l', .link = "usr/lib"},
    {.name = "abs", .type = 'l', .link = "/etc/hosts"},
    {.name = "run/fifo", .type = 'p', .mode = 0640, .uid = 5, .gid = 6, .mtime = T0 + 7},
    {.name = "implicit/deep/file", .type = 'f', .data = "deep"},
    {.name = "etc/caf\xc3\xa9 \xe2\x98\x95", .type = 'f', .data = "utf-8"}, /* pax, C locale */
};

static void check_normal(struct fx *f, enum filter filter)
{
    write_tar(f->blob, filter, normal_layer, N(normal_layer));
    fp_unpack_stats st;
    fp_error err;
    expect_ok(fp_layer_unpack(f->blob, f->layer, NULL, &st, &err), &err, "unpack");
    const char *l = f->layer;

    expect_content(l, "etc/hosts", "127.0.0.1 localhost\n");
    expect_content(l, "home/user/run.sh", "#!/bin/sh\necho hi\n");
    expect_content(l, "implicit/deep/file", "deep");
    expect_content(l, "etc/caf\xc3\xa9 \xe2\x98\x95", "utf-8");

    struct stat sb = lstat_in(l, "etc/secret");
    assert_int_equal(sb.st_mode, S_IFREG | 0600);
    sb = lstat_in(l, "etc/hosts");
    assert_int_equal(sb.st_mode, S_IFREG | 0644);
    assert_int_equal(sb.st_mtime, T0 + 3);
    sb = lstat_in(l, "home/user/run.sh");
    assert_int_equal(sb.st_mode, S_IFREG | 0755);
    assert_int_equal(sb.st_uid, 1000);
    assert_int_equal(sb.st_gid, 1001);
    assert_int_equal(sb.st_mtime, T0 + 5);
    /* directory times survive the entries written into them afterwards */
    sb = lstat_in(l, "home/user");
    assert_int_equal(sb.st_mode, S_IFDIR | 0750);
    assert_int_equal(sb.st_uid, 1000);
    assert_int_equal(sb.st_mtime, T0 + 4);
    sb = lstat_in(l, "etc");
    assert_int_equal(sb.st_mtime, T0 + 2);
    sb = lstat_in(l, ".");
    assert_int_equal(sb.st_mode, S_IFDIR | 0755);
    assert_int_equal(sb.st_mtime, T0 + 1);
    /* directories the tar never listed */
    sb = lstat_in(l, "implicit/deep");
    assert_int_equal(sb.st_mode, S_IFDIR | 0755);

    struct stat sh = lstat_in(l, "bin/sh"), ash = lstat_in(l, "bin/ash");
    assert_int_equal(sh.st_ino, ash.st_ino);
    assert_int_equal(sh.st_nlink, 2);

    char target[PATH_MAX], path[PATH_MAX];
    snprintf(path, sizeof path, "%s/usr/bin/env", l);
    ssize_t n = readlink(path, target, sizeof target - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_string_equal(target, "../../bin/sh");
    sb = lstat_in(l, "usr/bin/env");
    assert_true(S_ISLNK(sb.st_mode));
    assert_int_equal(sb.st_uid, 7);
    assert_int_equal(sb.st_mtime, T0 + 6);
    assert_true(S_ISLNK(lstat_in(l, "lib").st_mode));
    assert_true(S_ISLNK(lstat_in(l, "abs").st_mode));

    sb = lstat_in(l, "run/fifo");
    assert_int_equal(sb.st_mode, S_IFIFO | 0640);
    assert_int_equal(sb.st_uid, 5);
    assert_int_equal(sb.st_gid, 6);
    assert_int_equal(sb.st_mtime, T0 + 7);

    char xv[16] = {0};
    snprintf(path, sizeof path, "%s/etc/xa", l);
    assert_int_equal(lgetxattr(path, "user.origin", xv, sizeof xv), 4);
    assert_string_equal(xv, "test");

    assert_int_equal(st.entries, N(normal_layer));
    assert_int_equal(st.bytes, 20 + 6 + 1 + 18 + 3 + 4 + 5);
    assert_int_equal(st.whiteouts, 0);
    assert_int_equal(st.stripped_setuid, 0);
    check_outside(f);
}

static void test_normal_layer(void **state)
{
    check_normal(*state, NONE);
}

static void test_gzip_layer(void **state)
{
    check_normal(*state, GZIP);
}

static void test_zstd_layer(void **state)
{
    check_normal(*state, ZSTD);
}

/* An entry replacing an earlier one of the same layer replaces it;
 * directories merge. */
static void test_replace_entries(void **state)
{
    struct fx *f = *state;
    char outside_abs[200];
    snprintf(outside_abs, sizeof outside_abs, "%s/sentinel", f->outside);
    const tent ents[] = {
        {.name = "x", .type = 'f', .data = "one"},
        {.name = "x", .type = 'f', .data = "two"},
        {.name = "d", .type = 'f', .data = "file first"},
        {.name = "d/", .type = 'd'},
        {.name = "d/in", .type = 'f', .data = "in"},
        {.name = "m/", .type = 'd'},
        {.name = "m/a", .type = 'f', .data = "a"},
        {.name = "m/", .type = 'd', .mode = 0700},
        {.name = "t/", .type = 'd'},
        {.name = "t/sub/", .type = 'd'},
        {.name = "t/sub/f", .type = 'f', .data = "f"},
        {.name = "t", .type = 'f', .data = "tree replaced"},
        /* the final component is never followed: the file replaces the
         * link and does not write through it */
        {.name = "link", .type = 'l', .link = outside_abs},
        {.name = "link", .type = 'f', .data = "new"},
        {.name = "h", .type = 'h', .link = "x"},
        {.name = "h", .type = 'h', .link = "x"},
    };
    write_tar(f->blob, NONE, ents, N(ents));
    fp_error err;
    expect_ok(fp_layer_unpack(f->blob, f->layer, NULL, NULL, &err), &err, "unpack");
    expect_content(f->layer, "x", "two");
    expect_content(f->layer, "d/in", "in");
    expect_content(f->layer, "m/a", "a");
    assert_int_equal(lstat_in(f->layer, "m").st_mode, S_IFDIR | 0700);
    expect_content(f->layer, "t", "tree replaced");
    expect_content(f->layer, "link", "new");
    assert_true(S_ISREG(lstat_in(f->layer, "link").st_mode));
    assert_int_equal(lstat_in(f->layer, "h").st_ino, lstat_in(f->layer, "x").st_ino);
    check_outside(f);
}

static void expect_whiteout(const char *dir, const char *rel)
{
    struct stat sb = lstat_in(dir, rel);
    if (!S_ISCHR(sb.st_mode) || sb.st_rdev != makedev(0, 0))
        fail_msg("%s is not a 0/0 character device", rel);
}

static void expect_opaque(const char *dir, const char *rel, bool want)
{
    char path[PATH_MAX], v[4] = {0};
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    ssize_t n = lgetxattr(path, "trusted.overlay.opaque", v, sizeof v);
    if (want && (n != 1 || v[0] != 'y')) fail_msg("%s is not opaque", rel);
    if (!want && n >= 0) fail_msg("%s is opaque", rel);
}

static void test_whiteouts(void **state)
{
    struct fx *f = *state;
    const tent ents[] = {
        {.name = "d/", .type = 'd'},
        {.name = "d/.wh..wh..opq", .type = 'f'},
        {.name = ".wh.gone", .type = 'f'},
        {.name = "e/.wh.f", .type = 'f'}, /* parent not listed */
        /* a whiteout hides lower layers only: an entry of this layer stays */
        {.name = "keep", .type = 'f', .data = "kept"},
        {.name = ".wh.keep", .type = 'f'},
        /* ... and a directory of this layer stops merging with the lower */
        {.name = "wd/", .type = 'd'},
        {.name = ".wh.wd", .type = 'f'},
        {.name = ".wh.nd", .type = 'f'},
        {.name = "nd/", .type = 'd'},
        {.name = ".wh.nf", .type = 'f'},
        {.name = "nf", .type = 'f', .data = "nf"},
        {.name = ".wh..wh.plnk", .type = 'd'}, /* aufs bookkeeping: skipped */
    };
    write_tar(f->blob, GZIP, ents, N(ents));
    fp_unpack_stats st;
    fp_error err;
    expect_ok(fp_layer_unpack(f->blob, f->layer, NULL, &st, &err), &err, "unpack");
    expect_opaque(f->layer, "d", true);
    expect_whiteout(f->layer, "gone");
    expect_whiteout(f->layer, "e/f");
    expect_content(f->layer, "keep", "kept");
    expect_opaque(f->layer, "wd", true);
    assert_true(S_ISDIR(lstat_in(f->layer, "nd").st_mode));
    expect_opaque(f->layer, "nd", true);
    expect_content(f->layer, "nf", "nf");
    expect_opaque(f->layer, "e", false);
    assert_false(exists_in(f->layer, ".wh..wh.plnk"));
    assert_false(exists_in(f->layer, ".wh.gone"));
    assert_int_equal(st.whiteouts, 7);
    assert_int_equal(st.entries, N(ents));
    check_outside(f);

    const tent bad[] = {{.name = "a/.wh.", .type = 'f'}};
    expect_refused(f, bad, N(bad), NULL, "a/.wh.");
    const tent bad2[] = {{.name = "a/.wh...", .type = 'f'}};
    expect_refused(f, bad2, N(bad2), NULL, "a/.wh...");
}

/* ------------------------------------------------------------ malicious layers */

static void test_refuse_paths(void **state)
{
    struct fx *f = *state;
    const tent abs[] = {{.name = "/etc/x", .type = 'f', .data = "x"}};
    expect_refused(f, abs, N(abs), NULL, "/etc/x");
    const tent up[] = {{.name = "../x", .type = 'f', .data = "x"}};
    expect_refused(f, up, N(up), NULL, "../x");
    const tent mid[] = {{.name = "a/", .type = 'd'},
                        {.name = "a/../../x", .type = 'f', .data = "x"}};
    expect_refused(f, mid, N(mid), NULL, "a/../../x");
    const tent dir[] = {{.name = "../d/", .type = 'd'}};
    expect_refused(f, dir, N(dir), NULL, "../d/");
    const tent root[] = {{.name = ".", .type = 'f', .data = "x"}};
    expect_refused(f, root, N(root), NULL, "layer root");
    const tent fifo_up[] = {{.name = "../fifo", .type = 'p'}};
    expect_refused(f, fifo_up, N(fifo_up), NULL, "../fifo");
}

static void test_refuse_symlink_escape(void **state)
{
    struct fx *f = *state;
    char esc[64], esc_in[80], root_esc[80];
    snprintf(esc, sizeof esc, "fp-escape-%d", (int)getpid());
    snprintf(esc_in, sizeof esc_in, "evil/%s", esc);
    snprintf(root_esc, sizeof root_esc, "/%s", esc);
    assert_false(exists(root_esc));

    const tent climb[] = {
        {.name = "evil", .type = 'l', .link = "../../.."},
        {.name = esc_in, .type = 'f', .data = "escaped"},
    };
    expect_refused(f, climb, N(climb), NULL, "evil");
    const tent climb2[] = {{.name = "a/b/l", .type = 'l', .link = "../x/../../.."}};
    expect_refused(f, climb2, N(climb2), NULL, "a/b/l");

    /* within the root: fine, even climbing back down */
    const tent ok[] = {{.name = "a/b/l", .type = 'l', .link = "../../c/../a"}};
    reset_layer(f);
    write_tar(f->blob, NONE, ok, N(ok));
    fp_error err;
    expect_ok(fp_layer_unpack(f->blob, f->layer, NULL, NULL, &err), &err, "unpack");

    /* an absolute target resolves inside the root: what is written through
     * it lands in the layer */
    const tent slash[] = {
        {.name = "evil", .type = 'l', .link = "/"},
        {.name = esc_in, .type = 'f', .data = "inside"},
    };
    reset_layer(f);
    write_tar(f->blob, NONE, slash, N(slash));
    expect_ok(fp_layer_unpack(f->blob, f->layer, NULL, NULL, &err), &err, "unpack");
    expect_content(f->layer, esc, "inside");
    assert_false(exists(root_esc));
    check_outside(f);

    /* a symlink to the sentinel's real path: inside the root that path is
     * the layer's own */
    char outside_rel[160], planted[200];
    snprintf(outside_rel, sizeof outside_rel, "%s/", f->outside + 1);
    snprintf(planted, sizeof planted, "%s/sentinel", f->outside + 1);
    const tent mirror[] = {
        {.name = outside_rel, .type = 'd'},
        {.name = "evil", .type = 'l', .link = f->outside},
        {.name = "evil/sentinel", .type = 'f', .data = "pwned"},
        {.name = "evil2", .type = 'l', .link = "/.."},
        {.name = "evil2/top", .type = 'f', .data = "top"},
    };
    reset_layer(f);
    write_tar(f->blob, NONE, mirror, N(mirror));
    expect_ok(fp_layer_unpack(f->blob, f->layer, NULL, NULL, &err), &err, "unpack");
    expect_content(f->layer, planted, "pwned");
    expect_content(f->layer, "top", "top");
    check_outside(f);

    /* through a symlink to a directory the layer lacks: refused, never
     * created on the host */
    const tent dangling[] = {
        {.name = "evil", .type = 'l', .link = "/etc"},
        {.name = "evil/fp-escape", .type = 'f', .data = "x"},
    };
    expect_refused(f, dangling, N(dangling), NULL, "evil/fp-escape");
}

static void test_refuse_hardlinks(void **state)
{
    struct fx *f = *state;
    const tent abs[] = {{.name = "shadow", .type = 'h', .link = "/etc/shadow"}};
    expect_refused(f, abs, N(abs), NULL, "shadow");
    const tent up[] = {{.name = "shadow", .type = 'h', .link = "../../etc/shadow"}};
    expect_refused(f, up, N(up), NULL, "../../etc/shadow");
    const tent via[] = {
        {.name = "etc", .type = 'l', .link = "/etc"},
        {.name = "shadow", .type = 'h', .link = "etc/shadow"},
    };
    expect_refused(f, via, N(via), NULL, "etc/shadow");
    const tent missing[] = {{.name = "h", .type = 'h', .link = "nothing"}};
    expect_refused(f, missing, N(missing), NULL, "nothing");
    const tent dir[] = {{.name = "d/", .type = 'd'}, {.name = "h", .type = 'h', .link = "d"}};
    expect_refused(f, dir, N(dir), NULL, "not a regular file");
    const tent sym[] = {{.name = "s", .type = 'l', .link = "x"},
                        {.name = "h", .type = 'h', .link = "s"}};
    expect_refused(f, sym, N(sym), NULL, "\"h\"");
}

static void test_refuse_devices(void **state)
{
    struct fx *f = *state;
    const tent chr[] = {{.name = "dev/null", .type = 'c'}};
    expect_refused(f, chr, N(chr), NULL, "dev/null");
    const tent blk[] = {{.name = "dev/sda", .type = 'b'}};
    expect_refused(f, blk, N(blk), NULL, "dev/sda");
}

static void test_setuid(void **state)
{
    struct fx *f = *state;
    const tent ents[] = {
        {.name = "bin/su", .type = 'f', .mode = 04755, .data = "su"},
        {.name = "bin/sg", .type = 'f', .mode = 02755, .data = "sg"},
        {.name = "shared/", .type = 'd', .mode = 02775},
        {.name = "tmp/", .type = 'd', .mode = 01777},
    };
    write_tar(f->blob, NONE, ents, N(ents));
    fp_unpack_stats st;
    fp_error err;
    expect_ok(fp_layer_unpack(f->blob, f->layer, NULL, &st, &err), &err, "unpack");
    assert_int_equal(lstat_in(f->layer, "bin/su").st_mode, S_IFREG | 0755);
    assert_int_equal(lstat_in(f->layer, "bin/sg").st_mode, S_IFREG | 0755);
    /* setgid on a directory is group inheritance, not a privilege */
    assert_int_equal(lstat_in(f->layer, "shared").st_mode, S_IFDIR | 02775);
    assert_int_equal(lstat_in(f->layer, "tmp").st_mode, S_IFDIR | 01777);
    assert_int_equal(st.stripped_setuid, 2);

    reset_layer(f);
    fp_unpack_limits lim = {.allow_setuid = true};
    expect_ok(fp_layer_unpack(f->blob, f->layer, &lim, &st, &err), &err, "unpack");
    assert_int_equal(lstat_in(f->layer, "bin/su").st_mode, S_IFREG | 04755);
    assert_int_equal(lstat_in(f->layer, "bin/sg").st_mode, S_IFREG | 02755);
    assert_int_equal(st.stripped_setuid, 0);
    check_outside(f);
}

static void test_xattrs_dropped(void **state)
{
    struct fx *f = *state;
    /* vfs_cap_data v2: CAP_NET_RAW permitted and effective */
    static const char cap[20] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x20};
    const tent ents[] = {
        {.name = "ping",
         .type = 'f',
         .data = "ping",
         .xname = "security.capability",
         .xval = cap,
         .xlen = sizeof cap},
        {.name = "fake/", .type = 'd', .xname = "trusted.overlay.opaque", .xval = "y"},
        {.name = "redir/", .type = 'd', .xname = "trusted.overlay.redirect", .xval = "/etc"},
        {.name = "uo", .type = 'f', .data = "u", .xname = "user.overlay.opaque", .xval = "y"},
        {.name = "kept", .type = 'f', .data = "k", .xname = "user.mime", .xval = "text/plain"},
    };
    write_tar(f->blob, NONE, ents, N(ents));
    fp_error err;
    expect_ok(fp_layer_unpack(f->blob, f->layer, NULL, NULL, &err), &err, "unpack");
    char path[PATH_MAX], v[64];
    snprintf(path, sizeof path, "%s/ping", f->layer);
    assert_int_equal(lgetxattr(path, "security.capability", v, sizeof v), -1);
    assert_int_equal(errno, ENODATA);
    expect_opaque(f->layer, "fake", false);
    snprintf(path, sizeof path, "%s/redir", f->layer);
    assert_int_equal(lgetxattr(path, "trusted.overlay.redirect", v, sizeof v), -1);
    snprintf(path, sizeof path, "%s/uo", f->layer);
    assert_int_equal(lgetxattr(path, "user.overlay.opaque", v, sizeof v), -1);
    snprintf(path, sizeof path, "%s/kept", f->layer);
    assert_int_equal(lgetxattr(path, "user.mime", v, sizeof v), 10);
    check_outside(f);
}

/* A ustar header written by hand: the size field in GNU base-256 form can
 * claim any size without the bytes behind it. */
static void ustar_header(unsigned char h[512], const char *name, uint64_t size)
{
    memset(h, 0, 512);
    snprintf((char *)h, 100, "%s", name);
    memcpy(h + 100, "0000644", 8);
    memcpy(h + 108, "0000000", 8);
    memcpy(h + 116, "0000000", 8);
    h[124] = 0x80;
    for (int i = 0; i < 8; i++)
        h[135 - i] = (unsigned char)(size >> (8 * i));
    memcpy(h + 136, "13330000000", 12);
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

static void test_refuse_huge_declared(void **state)
{
    struct fx *f = *state;
    unsigned char block[512 + 65536];
    ustar_header(block, "huge", 10ULL << 30);
    memset(block + 512, 'A', sizeof block - 512);
    FILE *fp = fopen(f->blob, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(block, 1, sizeof block, fp), sizeof block);
    fclose(fp);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fp_error err = {0};
    fp_unpack_stats st;
    /* the default limit (8 GiB) refuses it; so would any smaller one */
    assert_int_equal(fp_layer_unpack(f->blob, f->layer, NULL, &st, &err), -1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_non_null(strstr(err.msg, "\"huge\""));
    assert_non_null(strstr(err.msg, "10737418240"));
    assert_true(t1.tv_sec - t0.tv_sec < 2);
    assert_false(exists_in(f->layer, "huge"));
    assert_int_equal(st.bytes, 0);
    check_outside(f);
}

static void test_refuse_bombs(void **state)
{
    struct fx *f = *state;
    fp_unpack_limits lim = {.max_bytes = 64 * MIB};
    fp_unpack_stats st;
    fp_error err = {0};

    /* 256 MiB of zeros: about 1 MiB of gzip */
    const tent one[] = {{.name = "bomb", .type = 'f', .zeros = 256 * MIB}};
    write_tar(f->blob, GZIP, one, N(one));
    struct stat sb;
    assert_int_equal(stat(f->blob, &sb), 0);
    assert_true((uint64_t)sb.st_size < 4 * MIB);
    assert_int_equal(fp_layer_unpack(f->blob, f->layer, &lim, &st, &err), -1);
    assert_non_null(strstr(err.msg, "\"bomb\""));
    assert_false(exists_in(f->layer, "bomb"));
    check_outside(f);

    /* many parts, each within the limit, together over it */
    reset_layer(f);
    const tent parts[] = {
        {.name = "p1", .type = 'f', .zeros = 20 * MIB},
        {.name = "p2", .type = 'f', .zeros = 20 * MIB},
        {.name = "p3", .type = 'f', .zeros = 20 * MIB},
        {.name = "p4", .type = 'f', .zeros = 20 * MIB},
        {.name = "p5", .type = 'f', .zeros = 20 * MIB},
    };
    write_tar(f->blob, ZSTD, parts, N(parts));
    assert_int_equal(fp_layer_unpack(f->blob, f->layer, &lim, &st, &err), -1);
    assert_non_null(strstr(err.msg, "\"p4\""));
    assert_true(st.bytes <= lim.max_bytes);
    assert_int_equal(st.bytes, 60 * MIB);
    assert_false(exists_in(f->layer, "p4"));
    check_outside(f);
}

static void test_refuse_too_many_entries(void **state)
{
    struct fx *f = *state;
    tent ents[10];
    char names[10][8];
    for (int i = 0; i < 10; i++) {
        snprintf(names[i], sizeof names[i], "f%d", i);
        ents[i] = (tent){.name = names[i], .type = 'f', .data = "x"};
    }
    fp_unpack_limits lim = {.max_entries = 5};
    expect_refused(f, ents, 10, &lim, "more than 5 entries");
    reset_layer(f);
    fp_error err;
    expect_ok(fp_layer_unpack(f->blob, f->layer, NULL, NULL, &err), &err, "unpack");
    assert_int_equal(count_entries(f->layer), 10);
}

static void test_refuse_not_a_layer(void **state)
{
    struct fx *f = *state;
    fp_error err = {0};
    /* compressed twice */
    const tent ents[] = {{.name = "a", .type = 'f', .data = "a"}};
    write_tar(f->blob, GZIP_TWICE, ents, N(ents));
    assert_int_equal(fp_layer_unpack(f->blob, f->layer, NULL, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "more than once"));
    /* not a tar */
    fp_error werr;
    expect_ok(fp_write_file_atomic(f->blob, "hello, world\n", 13, 0644, &werr), &werr, "write");
    assert_int_equal(fp_layer_unpack(f->blob, f->layer, NULL, NULL, &err), -1);
    /* a directory that is not empty */
    write_tar(f->blob, NONE, ents, N(ents));
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/already", f->layer);
    expect_ok(fp_write_file_atomic(path, "x", 1, 0644, &werr), &werr, "write");
    assert_int_equal(fp_layer_unpack(f->blob, f->layer, NULL, NULL, &err), -1);
    assert_int_equal(err.errnum, ENOTEMPTY);
    check_outside(f);
}

/* fp_layer_remove copes with trees deeper than PATH_MAX */
static void test_remove_deep(void **state)
{
    struct fx *f = *state;
    int fd = open(f->layer, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    for (int i = 0; i < 600; i++) {
        assert_int_equal(mkdirat(fd, "directory", 0755), 0);
        int sub = openat(fd, "directory", O_RDONLY | O_DIRECTORY);
        assert_true(sub >= 0);
        if (i % 100 == 0) {
            int file = openat(sub, "file", O_WRONLY | O_CREAT, 0644);
            assert_true(file >= 0);
            close(file);
        }
        close(fd);
        fd = sub;
    }
    close(fd);
    fp_error err;
    expect_ok(fp_layer_remove(f->layer, &err), &err, "remove");
    assert_false(exists(f->layer));
    expect_ok(fp_layer_remove(f->layer, &err), &err, "remove missing");
    assert_int_equal(mkdir(f->layer, 0755), 0);
    check_outside(f);
}

/* ------------------------------------------------------------ root file systems */

static void unpack_to(struct fx *f, const char *name, const tent *ents, size_t n, char *dir)
{
    snprintf(dir, PATH_MAX, "%s/%s", f->base, name);
    assert_int_equal(mkdir(dir, 0755), 0);
    write_tar(f->blob, GZIP, ents, n);
    fp_error err;
    expect_ok(fp_layer_unpack(f->blob, dir, NULL, NULL, &err), &err, "unpack");
}

static void test_rootfs_mount(void **state)
{
    struct fx *f = *state;
    const tent lower[] = {
        {.name = "a", .type = 'f', .data = "lower a"},
        {.name = "keep", .type = 'f', .data = "k"},
        {.name = "d/", .type = 'd'},
        {.name = "d/old", .type = 'f', .data = "o"},
        {.name = "e/", .type = 'd'},
        {.name = "e/low", .type = 'f', .data = "l"},
        {.name = "over", .type = 'f', .data = "lower"},
    };
    const tent upper_layer[] = {
        {.name = ".wh.a", .type = 'f'},
        {.name = "d/", .type = 'd'},
        {.name = "d/.wh..wh..opq", .type = 'f'},
        {.name = "d/new", .type = 'f', .data = "n"},
        {.name = "e/", .type = 'd'},
        {.name = "e/top", .type = 'f', .data = "t"},
        {.name = "over", .type = 'f', .data = "upper"},
    };
    char l1[PATH_MAX], l2[PATH_MAX], m[PATH_MAX], up[PATH_MAX], work[PATH_MAX], path[PATH_MAX];
    unpack_to(f, "l1", lower, N(lower), l1);
    unpack_to(f, "l2", upper_layer, N(upper_layer), l2);
    snprintf(m, sizeof m, "%s/m", f->base);
    snprintf(up, sizeof up, "%s/upper", f->base);
    snprintf(work, sizeof work, "%s/work", f->base);
    assert_int_equal(mkdir(m, 0755), 0);

    const char *lowers[] = {l1, l2}; /* bottom first */
    fp_error err;
    expect_ok(fp_rootfs_mount(lowers, 2, NULL, NULL, m, &err), &err, "mount read-only");
    assert_false(exists_in(m, "a"));
    expect_content(m, "keep", "k");
    assert_false(exists_in(m, "d/old"));
    expect_content(m, "d/new", "n");
    expect_content(m, "e/low", "l");
    expect_content(m, "e/top", "t");
    expect_content(m, "over", "upper");
    snprintf(path, sizeof path, "%s/written", m);
    assert_int_equal(open(path, O_WRONLY | O_CREAT, 0644), -1);
    assert_int_equal(errno, EROFS);
    expect_ok(fp_rootfs_unmount(m, &err), &err, "unmount");
    assert_false(exists_in(m, "keep"));
    /* not mounted any more: not an error */
    expect_ok(fp_rootfs_unmount(m, &err), &err, "unmount again");

    /* writable: writes land in upper, the layers stay as they were */
    expect_ok(fp_rootfs_mount(lowers, 2, up, work, m, &err), &err, "mount writable");
    expect_ok(fp_write_file_atomic(path, "w", 1, 0644, &err), &err, "write");
    snprintf(path, sizeof path, "%s/keep", m);
    assert_int_equal(unlink(path), 0);
    expect_ok(fp_rootfs_unmount(m, &err), &err, "unmount");
    expect_content(up, "written", "w");
    expect_content(l1, "keep", "k");
    assert_false(exists_in(l1, "written"));
    assert_false(exists_in(l2, "written"));

    /* one layer, read-only: a read-only bind */
    const char *one[] = {l1};
    expect_ok(fp_rootfs_mount(one, 1, NULL, NULL, m, &err), &err, "mount one layer");
    expect_content(m, "a", "lower a");
    snprintf(path, sizeof path, "%s/written", m);
    assert_int_equal(open(path, O_WRONLY | O_CREAT, 0644), -1);
    assert_int_equal(errno, EROFS);
    expect_ok(fp_rootfs_unmount(m, &err), &err, "unmount");

    /* one layer, writable: overlayfs */
    expect_ok(fp_rootfs_mount(one, 1, up, work, m, &err), &err, "mount one layer writable");
    expect_content(m, "a", "lower a");
    expect_content(m, "written", "w");
    expect_ok(fp_rootfs_unmount(m, &err), &err, "unmount");
}

static void test_rootfs_refusals(void **state)
{
    struct fx *f = *state;
    char m[PATH_MAX];
    snprintf(m, sizeof m, "%s/m", f->base);
    assert_int_equal(mkdir(m, 0755), 0);
    fp_error err = {0};

    /* options longer than a page: refused with a clear error, nothing
     * mounted */
    static char paths[64][128];
    const char *many[64];
    for (int i = 0; i < 64; i++) {
        snprintf(paths[i], sizeof paths[i], "/var/lib/fogport/layers/sha256/%064d/%02d", i, i);
        many[i] = paths[i];
    }
    assert_int_equal(fp_rootfs_mount(many, 64, NULL, NULL, m, &err), -1);
    assert_int_equal(err.errnum, E2BIG);
    assert_non_null(strstr(err.msg, "page"));

    const char *colon[] = {"/tmp/a:b", "/tmp/c"};
    assert_int_equal(fp_rootfs_mount(colon, 2, NULL, NULL, m, &err), -1);
    assert_non_null(strstr(err.msg, "/tmp/a:b"));
    const char *comma[] = {"/tmp/a", "/tmp/c,upperdir=/"};
    assert_int_equal(fp_rootfs_mount(comma, 2, NULL, NULL, m, &err), -1);
    assert_int_equal(fp_rootfs_mount(comma, 0, NULL, NULL, m, &err), -1);
    const char *ok[] = {"/tmp/a", "/tmp/c"};
    assert_int_equal(fp_rootfs_mount(ok, 2, "/tmp/u", NULL, m, &err), -1);
    assert_int_equal(count_entries(m), 0);
}

/* ------------------------------------------------------------ layer cache */

static void blob_digest(const char *path, char out[FP_DIGEST_MAX])
{
    char *data = NULL;
    size_t len;
    fp_error err;
    if (fp_read_file(path, 64 << 20, &data, &len, &err) < 0) fail_msg("%s", err.msg);
    assert_int_equal(fp_digest_bytes(FP_SHA256, data, len, out), 0);
    free(data);
}

static void make_blob(struct fx *f, const char *name, const char *content, char *path,
                      char digest[FP_DIGEST_MAX])
{
    snprintf(path, PATH_MAX, "%s/%s.tar.gz", f->blobs, name);
    const tent ents[] = {
        {.name = "etc/", .type = 'd'},
        {.name = "etc/id", .type = 'f', .data = content},
    };
    write_tar(path, GZIP, ents, N(ents));
    blob_digest(path, digest);
}

static void test_cache_ensure(void **state)
{
    struct fx *f = *state;
    char cache[PATH_MAX], blob[PATH_MAX], digest[FP_DIGEST_MAX], out[PATH_MAX], out2[PATH_MAX],
        want[PATH_MAX], tmp[PATH_MAX];
    snprintf(cache, sizeof cache, "%s/cache", f->base);
    make_blob(f, "a", "layer a", blob, digest);
    snprintf(want, sizeof want, "%s/sha256/%s", cache, fp_digest_hex(digest));
    snprintf(tmp, sizeof tmp, "%s/tmp", cache);

    fp_error err;
    assert_int_equal(fp_layer_cache_has(cache, digest), 0);
    expect_ok(fp_layer_cache_ensure(cache, digest, blob, NULL, out, sizeof out, &err), &err,
              "ensure");
    assert_string_equal(out, want);
    assert_int_equal(fp_layer_cache_has(cache, digest), 1);
    expect_content(out, "etc/id", "layer a");
    assert_int_equal(lstat_in(out, ".").st_mode, S_IFDIR | 0755);
    assert_int_equal(count_entries(tmp), 0);

    /* the second time it is not unpacked again: the blob is not even read */
    struct stat before = lstat_in(out, "etc/id");
    assert_int_equal(unlink(blob), 0);
    expect_ok(fp_layer_cache_ensure(cache, digest, blob, NULL, out2, sizeof out2, &err), &err,
              "ensure again");
    assert_string_equal(out2, out);
    assert_int_equal(lstat_in(out, "etc/id").st_ino, before.st_ino);

    /* out too small */
    char small[16];
    assert_int_equal(fp_layer_cache_ensure(cache, digest, blob, NULL, small, sizeof small, &err),
                     -1);

    /* a blob that is not the digest's, and one that fails to unpack: nothing
     * under the digest, nothing left in tmp */
    char blob_b[PATH_MAX], digest_b[FP_DIGEST_MAX], out_b[PATH_MAX], other[FP_DIGEST_MAX];
    make_blob(f, "b", "layer b", blob_b, digest_b);
    assert_int_equal(fp_digest_bytes(FP_SHA256, "other", 5, other), 0);
    assert_int_equal(fp_layer_cache_ensure(cache, other, blob_b, NULL, out_b, sizeof out_b, &err),
                     -1);
    assert_non_null(strstr(err.msg, "has digest"));
    assert_int_equal(fp_layer_cache_has(cache, other), 0);
    const tent bad[] = {{.name = "../x", .type = 'f', .data = "x"}};
    write_tar(blob_b, GZIP, bad, N(bad));
    blob_digest(blob_b, digest_b);
    assert_int_equal(
        fp_layer_cache_ensure(cache, digest_b, blob_b, NULL, out_b, sizeof out_b, &err), -1);
    assert_non_null(strstr(err.msg, digest_b));
    assert_non_null(strstr(err.msg, "../x"));
    assert_int_equal(fp_layer_cache_has(cache, digest_b), 0);
    assert_int_equal(count_entries(tmp), 0);
    check_outside(f);
}

static void test_cache_bad_digest(void **state)
{
    struct fx *f = *state;
    char cache[PATH_MAX], blob[PATH_MAX], digest[FP_DIGEST_MAX], out[PATH_MAX];
    snprintf(cache, sizeof cache, "%s/cache", f->base);
    make_blob(f, "a", "a", blob, digest);
    static const char *const bad[] = {
        "",
        "sha256:",
        "sha256:../../../../etc",
        "sha256:ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789",
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "../sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/..",
    };
    for (size_t i = 0; i < N(bad); i++) {
        fp_error err = {0};
        if (fp_layer_cache_ensure(cache, bad[i], blob, NULL, out, sizeof out, &err) == 0)
            fail_msg("digest \"%s\" accepted", bad[i]);
        assert_int_equal(err.errnum, EINVAL);
        assert_int_equal(fp_layer_cache_has(cache, bad[i]), 0);
    }
    fp_error err;
    assert_int_equal(fp_layer_cache_ensure(cache, NULL, blob, NULL, out, sizeof out, &err), -1);
    assert_int_equal(fp_layer_cache_has(cache, NULL), 0);
    assert_false(exists(cache));
}

static void test_cache_prune(void **state)
{
    struct fx *f = *state;
    char cache[PATH_MAX], out[PATH_MAX], path[PATH_MAX];
    char blobs[3][PATH_MAX], digests[3][FP_DIGEST_MAX];
    snprintf(cache, sizeof cache, "%s/cache", f->base);
    fp_error err;
    for (int i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof name, "l%d", i);
        make_blob(f, name, name, blobs[i], digests[i]);
        expect_ok(fp_layer_cache_ensure(cache, digests[i], blobs[i], NULL, out, sizeof out, &err),
                  &err, "ensure");
    }
    /* the leftover of a crashed unpack, and an unpack in progress */
    snprintf(path, sizeof path, "%s/tmp/crashed/etc", cache);
    expect_ok(fp_mkdir_p(path, 0755, &err), &err, "mkdir");
    snprintf(path, sizeof path, "%s/tmp/busy", cache);
    assert_int_equal(mkdir(path, 0700), 0);
    int busy = open(path, O_RDONLY | O_DIRECTORY);
    assert_true(busy >= 0);
    assert_int_equal(flock(busy, LOCK_EX), 0);

    const char *keep[] = {digests[0], digests[2], NULL};
    assert_int_equal(fp_layer_cache_prune(cache, keep, &err), 1);
    assert_int_equal(fp_layer_cache_has(cache, digests[0]), 1);
    assert_int_equal(fp_layer_cache_has(cache, digests[1]), 0);
    assert_int_equal(fp_layer_cache_has(cache, digests[2]), 1);
    snprintf(path, sizeof path, "%s/tmp/crashed", cache);
    assert_false(exists(path));
    snprintf(path, sizeof path, "%s/tmp/busy", cache);
    assert_true(exists(path));
    close(busy);

    /* nothing kept: everything goes, the abandoned busy directory too */
    assert_int_equal(fp_layer_cache_prune(cache, NULL, &err), 2);
    assert_int_equal(fp_layer_cache_has(cache, digests[0]), 0);
    assert_false(exists(path));
    /* a cache that does not exist yet prunes to nothing */
    snprintf(path, sizeof path, "%s/none", f->base);
    assert_int_equal(fp_layer_cache_prune(path, NULL, &err), 0);
}

struct race {
    const char *cache, *digest, *blob;
    char out[PATH_MAX];
    int rc;
    fp_error err;
};

static void *race_ensure(void *arg)
{
    struct race *r = arg;
    r->rc =
        fp_layer_cache_ensure(r->cache, r->digest, r->blob, NULL, r->out, sizeof r->out, &r->err);
    return NULL;
}

/* Callers for the same layer at once: all get the one directory. */
static void test_cache_concurrent(void **state)
{
    struct fx *f = *state;
    char cache[PATH_MAX], blob[PATH_MAX], digest[FP_DIGEST_MAX], tmp[PATH_MAX];
    snprintf(cache, sizeof cache, "%s/cache", f->base);
    snprintf(tmp, sizeof tmp, "%s/tmp", cache);
    snprintf(blob, sizeof blob, "%s/big.tar", f->blobs);
    tent ents[64];
    char names[64][16];
    for (int i = 0; i < 64; i++) {
        snprintf(names[i], sizeof names[i], "d%d/f", i);
        ents[i] = (tent){.name = names[i], .type = 'f', .data = names[i]};
    }
    write_tar(blob, NONE, ents, 64);
    blob_digest(blob, digest);
    struct race r[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (struct race){.cache = cache, .digest = digest, .blob = blob};
        assert_int_equal(pthread_create(&th[i], NULL, race_ensure, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        expect_ok(r[i].rc, &r[i].err, "ensure");
        assert_string_equal(r[i].out, r[0].out);
    }
    assert_int_equal(count_entries(r[0].out), 64);
    assert_int_equal(count_entries(tmp), 0);
}

/* The agent unpacks in a child (`fogport unpack-layer`, run from the
 * release build, which `make` builds before the unit tests): the same
 * files and stats as in this process, the same refusal, and a clear error
 * when the helper cannot run or dies. */
#define HELPER "build/fogport"
static void test_child_process(void **state)
{
    struct fx *f = *state;
    if (access(HELPER, X_OK) != 0) fail_msg("%s not built (make build/fogport)", HELPER);
    write_tar(f->blob, GZIP, normal_layer, N(normal_layer));
    fp_unpack_stats here, there;
    fp_error err;
    expect_ok(fp_layer_unpack(f->blob, f->layer, NULL, &here, &err), &err, "unpack here");
    reset_layer(f);
    fp_unpack_limits lim = {.helper = HELPER};
    expect_ok(fp_layer_unpack_child(HELPER, f->blob, f->layer, &lim, &there, &err), &err,
              "unpack in a child");
    assert_int_equal(there.entries, here.entries);
    assert_int_equal(there.bytes, here.bytes);
    expect_content(f->layer, "etc/hosts", "127.0.0.1 localhost\n");
    expect_content(f->layer, "implicit/deep/file", "deep");
    assert_true(lstat_in(f->layer, "home/user/run.sh").st_uid == 1000);

    /* a refusal, with the child's message */
    reset_layer(f);
    const tent up[] = {{.name = "../x", .type = 'f', .data = "x"}};
    write_tar(f->blob, NONE, up, N(up));
    assert_int_equal(fp_layer_unpack_child(HELPER, f->blob, f->layer, &lim, NULL, &err), -1);
    if (!strstr(err.msg, "../x")) fail_msg("error \"%s\" does not name ../x", err.msg);
    check_outside(f);

    /* limits reach the child */
    reset_layer(f);
    write_tar(f->blob, NONE, normal_layer, N(normal_layer));
    lim.max_entries = 3;
    assert_int_equal(fp_layer_unpack_child(HELPER, f->blob, f->layer, &lim, NULL, &err), -1);
    if (!strstr(err.msg, "entries")) fail_msg("error \"%s\" is not about entries", err.msg);

    /* no helper; a helper that dies */
    assert_int_equal(
        fp_layer_unpack_child("/nonexistent/fogport", f->blob, f->layer, &lim, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "unpack-layer"));
    assert_int_equal(fp_layer_unpack_child("/bin/false", f->blob, f->layer, &lim, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "exit 1"));
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "test_unpack: skipped, needs root (chown, mknod, mount)\n");
        return 0;
    }
    /* mounts made here vanish with the process, even when a test fails */
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        fprintf(stderr, "test_unpack: no private mount namespace: %s\n", strerror(errno));
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_normal_layer),
        T(test_gzip_layer),
        T(test_zstd_layer),
        T(test_replace_entries),
        T(test_whiteouts),
        T(test_refuse_paths),
        T(test_refuse_symlink_escape),
        T(test_refuse_hardlinks),
        T(test_refuse_devices),
        T(test_setuid),
        T(test_xattrs_dropped),
        T(test_refuse_huge_declared),
        T(test_refuse_bombs),
        T(test_refuse_too_many_entries),
        T(test_refuse_not_a_layer),
        T(test_remove_deep),
        T(test_rootfs_mount),
        T(test_rootfs_refusals),
        T(test_cache_ensure),
        T(test_cache_bad_digest),
        T(test_cache_prune),
        T(test_cache_concurrent),
        T(test_child_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
