/* libFuzzer target: layer unpacking (agent/unpack fp_layer_unpack). The
 * first input byte picks a mode: odd, the rest is the layer blob as is;
 * even, the rest drives a generator that writes a tar (libarchive's writer,
 * gzip-compressed when bit 1 is set) from a pool of hostile names, link
 * targets and entry types: a valid tar is hard to stumble upon (header
 * checksums) and libarchive is not instrumented, so this is how short runs
 * reach symlink chains, hard links, whiteouts and replacements.
 *
 * Each input is unpacked into base/layer of a directory made once, beside
 * base/sentinel. Invariants: afterwards base holds exactly blob, layer and
 * the empty sentinel, "/" holds as many entries as before (nothing escaped
 * the layer), the byte limit held, and a layer that unpacked holds no
 * device but 0/0 whiteouts, no setuid/setgid file and no extended attribute
 * but user.* and the opaque marker; fp_layer_remove removes it all. Run as
 * root, like the agent (chown and mknod need it). */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "agent/unpack.h"
#include "core/fs.h"
#include "fuzz.h"

#define MAX_BYTES (1u << 20)

static char base[64], blob[96], layer[96], sentinel[96];
static size_t root_entries;

static const char *const names[] = {
    "a",
    "a/b",
    "a/b/c",
    "d/",
    "d/e",
    "evil",
    "evil/x",
    "evil/y/z",
    "l",
    "l/x",
    "x",
    "./x",
    "x/",
    ".wh.a",
    ".wh.d",
    "d/.wh..wh..opq",
    ".wh..wh..opq",
    ".wh..wh.plnk",
    "d/.wh.e",
    ".wh.",
    "../x",
    "a/../../x",
    "/abs",
    ".",
    "./",
    "",
    "a//b/./c",
    "caf\xc3\xa9",
    "h",
    "d/h",
};

static const char *const targets[] = {
    "/",      "/etc",
    "..",     "../..",
    "a",      "a/b",
    "evil",   "/..",
    "d",      "x",
    "l/x",    "../a",
    "./a",    "",
    "h",      "d/e",
    "/evil",  "l/../../..",
    "evil/x", "/d/../..",
    "d/h",    ".wh.a",
    "a/.",    "./",
    "/a/b",   "../../../etc/passwd",
};

static size_t count(const char *dir)
{
    DIR *d = opendir(dir);
    CHECK(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

static void cleanup(void)
{
    fp_error err;
    fp_layer_remove(base, &err);
}

static void init(void)
{
    snprintf(base, sizeof base, "/tmp/fp-fuzz-unpack-XXXXXX");
    CHECK(mkdtemp(base));
    snprintf(blob, sizeof blob, "%s/blob", base);
    snprintf(layer, sizeof layer, "%s/layer", base);
    snprintf(sentinel, sizeof sentinel, "%s/sentinel", base);
    CHECK(mkdir(sentinel, 0755) == 0);
    root_entries = count("/");
    atexit(cleanup);
}

/* Generated mode: 4 bytes an entry (name, type, target, mode/size). */
static size_t generate(const uint8_t *in, size_t n, bool gzip, char *out, size_t cap)
{
    static const char zeros[4096];
    struct archive *a = archive_write_new();
    CHECK(a);
    archive_write_set_format_pax_restricted(a);
    if (gzip) archive_write_add_filter_gzip(a);
    archive_write_set_bytes_in_last_block(a, 1);
    size_t used = 0;
    if (archive_write_open_memory(a, out, cap, &used) != ARCHIVE_OK) {
        archive_write_free(a);
        return 0;
    }
    for (size_t i = 0; i + 4 <= n; i += 4) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, names[in[i] % (sizeof names / sizeof names[0])]);
        const char *target = targets[in[i + 2] % (sizeof targets / sizeof targets[0])];
        unsigned mode = (in[i + 3] & 0x7) ? 0644 : 06755;
        size_t size = 0;
        switch (in[i + 1] % 8) {
        case 0:
        case 1:
            archive_entry_set_filetype(e, AE_IFREG);
            size = (size_t)(in[i + 3] >> 3) * 128;
            break;
        case 2:
            archive_entry_set_filetype(e, AE_IFDIR);
            break;
        case 3:
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, target);
            break;
        case 4:
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, target);
            break;
        case 5:
            archive_entry_set_filetype(e, AE_IFIFO);
            break;
        case 6:
            archive_entry_set_filetype(e, (in[i + 3] & 1) ? AE_IFCHR : AE_IFBLK);
            archive_entry_set_rdev(e, makedev(in[i + 3] & 2 ? 1 : 0, 0));
            break;
        default:
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_xattr_add_entry(e, (in[i + 3] & 1) ? "security.capability" : "user.x",
                                          "v", 1);
            archive_entry_xattr_add_entry(e, "trusted.overlay.opaque", "y", 1);
            break;
        }
        archive_entry_set_perm(e, mode);
        archive_entry_set_uid(e, in[i + 3] & 0x10 ? 1000 : 0);
        archive_entry_set_size(e, (la_int64_t)size);
        int r = archive_write_header(a, e);
        archive_entry_free(e);
        if (r == ARCHIVE_FATAL) break;
        if (r == ARCHIVE_OK && size) archive_write_data(a, zeros, size);
    }
    archive_write_close(a);
    archive_write_free(a);
    return used;
}

static int check_node(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)type;
    (void)ftw;
    if (S_ISCHR(sb->st_mode)) CHECK(sb->st_rdev == makedev(0, 0));
    CHECK(!S_ISBLK(sb->st_mode));
    if (!S_ISDIR(sb->st_mode)) CHECK(!(sb->st_mode & (S_ISUID | S_ISGID)));
    char list[1024];
    ssize_t n = llistxattr(path, list, sizeof list);
    for (ssize_t off = 0; n > 0 && off < n; off += (ssize_t)strlen(list + off) + 1) {
        const char *x = list + off;
        CHECK(strncmp(x, "user.", 5) == 0 || strcmp(x, "trusted.overlay.opaque") == 0 ||
              strncmp(x, "security.selinux", 16) == 0);
        CHECK(strncmp(x, "user.overlay.", 13) != 0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        init();
        ready = true;
    }
    if (size == 0 || size > (1u << 20)) return 0;
    static char gen[1 << 21];
    const char *bytes = (const char *)data + 1;
    size_t len = size - 1;
    if (!(data[0] & 1)) {
        len = generate(data + 1, size - 1, data[0] & 2, gen, sizeof gen);
        bytes = gen;
    }
    fp_error err;
    CHECK(fp_write_file_atomic(blob, bytes, len, 0644, &err) == 0);
    CHECK(mkdir(layer, 0755) == 0);

    fp_unpack_limits lim = {.max_bytes = MAX_BYTES, .max_entries = 64};
    fp_unpack_stats st;
    int rc = fp_layer_unpack(blob, layer, &lim, &st, &err);
    CHECK(rc == 0 || rc == -1);
    if (rc < 0) CHECK(err.msg[0]);
    CHECK(st.bytes <= lim.max_bytes);
    CHECK(st.entries <= lim.max_entries + 1);
    if (rc == 0) CHECK(nftw(layer, check_node, 16, FTW_PHYS) == 0);

    CHECK(count(base) == 3);
    CHECK(count(sentinel) == 0);
    CHECK(count("/") == root_entries);
    CHECK(fp_layer_remove(layer, &err) == 0);
    struct stat sb;
    CHECK(lstat(layer, &sb) < 0 && errno == ENOENT);
    return 0;
}
