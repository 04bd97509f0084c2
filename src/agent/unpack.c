/* Layer unpacking with libarchive's reader and our own writer. libarchive's
 * archive_write_disk is not used: its safety flags work on path strings,
 * while here every path is resolved by the kernel inside the layer directory
 * (openat2 RESOLVE_IN_ROOT), so a symlink unpacked earlier in the layer can
 * only ever lead to another place inside it, and the final component of a
 * path is never followed (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW): an entry that
 * replaces a symlink replaces the link, never what it points to. */
#include "agent/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/fs.h"
#include "core/log.h"

/* libarchive is loaded for the unpacking of a layer and unloaded after it
 * (dlopen), not linked: linked, it and what it pulls in (libxml2, ICU,
 * libstdc++, liblzma, lz4, bzip2, acl) were mapped into every fogport process
 * from its start, some 2.3 MiB of an idle edge's resident set, for the few
 * moments of its life that it unpacks. (Once loaded, libstdc++ stays: it
 * cannot be unloaded.) */
#define ARCHIVE_SONAME "libarchive.so.13"
#define ARCHIVE_FUNCS(X)                                                                           \
    X(archive_entry_atime)                                                                         \
    X(archive_entry_atime_is_set)                                                                  \
    X(archive_entry_atime_nsec)                                                                    \
    X(archive_entry_filetype)                                                                      \
    X(archive_entry_gid)                                                                           \
    X(archive_entry_hardlink)                                                                      \
    X(archive_entry_mtime)                                                                         \
    X(archive_entry_mtime_is_set)                                                                  \
    X(archive_entry_mtime_nsec)                                                                    \
    X(archive_entry_pathname)                                                                      \
    X(archive_entry_perm)                                                                          \
    X(archive_entry_size)                                                                          \
    X(archive_entry_size_is_set)                                                                   \
    X(archive_entry_symlink)                                                                       \
    X(archive_entry_uid)                                                                           \
    X(archive_entry_xattr_next)                                                                    \
    X(archive_entry_xattr_reset)                                                                   \
    X(archive_error_string)                                                                        \
    X(archive_filter_count)                                                                        \
    X(archive_filter_name)                                                                         \
    X(archive_read_data)                                                                           \
    X(archive_read_free)                                                                           \
    X(archive_read_new)                                                                            \
    X(archive_read_next_header)                                                                    \
    X(archive_read_open_fd)                                                                        \
    X(archive_read_support_filter_gzip)                                                            \
    X(archive_read_support_filter_none)                                                            \
    X(archive_read_support_filter_zstd)                                                            \
    X(archive_read_support_format_tar)

static struct {
    pthread_mutex_t lock;
    unsigned refs; /* unpackings using the functions below */
    void *handle;
#define ARC_FIELD(f) __typeof__(f) *f;
    ARCHIVE_FUNCS(ARC_FIELD)
#undef ARC_FIELD
} arc = {.lock = PTHREAD_MUTEX_INITIALIZER};

#ifdef FP_STATIC_BUILD
/* The static build (make edge) links libarchive in: there is no loader to
 * map it later, and its code is paged in only while a layer is unpacked. */
static int arc_acquire(fp_error *err)
{
    (void)err;
#define ARC_SET(f) arc.f = f;
    ARCHIVE_FUNCS(ARC_SET)
#undef ARC_SET
    return 0;
}

static void arc_release(void) {}
#else
/* Load libarchive (or count one more user); its functions are in arc until
 * the matching arc_release(). */
static int arc_acquire(fp_error *err)
{
    pthread_mutex_lock(&arc.lock);
    if (arc.refs == 0) {
        void *h = dlopen(ARCHIVE_SONAME, RTLD_NOW | RTLD_LOCAL);
        const char *missing = NULL;
#define ARC_SYM(f)                                                                                 \
    if (h && !missing && !(arc.f = (__typeof__(f) *)dlsym(h, #f))) missing = #f;
        ARCHIVE_FUNCS(ARC_SYM)
#undef ARC_SYM
        if (!h || missing) {
            const char *why = h ? missing : dlerror();
            if (h) dlclose(h);
            pthread_mutex_unlock(&arc.lock);
            return fp_error_set(err, 0, "cannot load %s (layers are unpacked with it): %s",
                                ARCHIVE_SONAME, why ? why : "?");
        }
        arc.handle = h;
    }
    arc.refs++;
    pthread_mutex_unlock(&arc.lock);
    return 0;
}

static void arc_release(void)
{
    pthread_mutex_lock(&arc.lock);
    if (--arc.refs == 0) {
        dlclose(arc.handle);
        arc.handle = NULL;
    }
    pthread_mutex_unlock(&arc.lock);
}
#endif

/* OCI whiteouts (image-spec layer.md) and their overlayfs form. */
#define WH_PREFIX  ".wh."
#define WH_META    ".wh..wh." /* aufs bookkeeping; only .wh..wh..opq means something */
#define WH_OPAQUE  ".wh..wh..opq"
#define OVL_OPAQUE "trusted.overlay.opaque"

#define COPY_BUF (1 << 16)

/* Directory times are set after the whole layer is written: creating the
 * entries inside a directory would move its mtime again. */
struct dirtime {
    char *path;
    struct timespec ts[2];
};

typedef struct unpacker {
    struct archive *a;
    int root; /* the layer directory; every path is resolved beneath it */
    uint64_t max_bytes, max_entries;
    uint64_t used; /* bytes charged against max_bytes so far */
    bool allow_setuid;
    fp_unpack_stats *st;
    fp_error *err;
    const char *name; /* the entry being unpacked, for messages */
    char *buf;
    struct dirtime *dirs;
    size_t ndirs, capdirs;
} unpacker;

/* Entry names come from the archive: keep control characters out of the
 * messages that carry them. */
static void printable(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    for (; s && *s && o + 4 < outlen; s++)
        out[o++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
    if (s && *s) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* Fail the layer, naming the entry. Returns -1. */
__attribute__((format(printf, 3, 4))) static int refuse(unpacker *u, int errnum, const char *fmt,
                                                        ...)
{
    char why[320], name[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    printable(u->name, name, sizeof name);
    return fp_error_set(u->err, errnum, "layer entry \"%s\": %s", name, why);
}

static const char *archive_msg(struct archive *a)
{
    const char *s = arc.archive_error_string(a);
    return s ? s : "unknown libarchive error";
}

/* Normalise an archive path into out: "." and empty components dropped, so
 * "./a//b/" is "a/b" and the layer root itself is "". Absolute paths, ".."
 * anywhere and empty names are refused rather than repaired: a layer that
 * carries them was not made by a build tool. Returns NULL or the reason. */
static const char *clean_path(const char *in, char *out, size_t outlen)
{
    if (!in || !*in) return "empty name";
    if (in[0] == '/') return "absolute path";
    size_t o = 0;
    for (const char *p = in; *p;) {
        while (*p == '/')
            p++;
        if (!*p) break;
        const char *end = strchrnul(p, '/');
        size_t n = (size_t)(end - p);
        if (n == 2 && p[0] == '.' && p[1] == '.') return "\"..\" component";
        if (n > NAME_MAX) return "name component too long";
        if (!(n == 1 && p[0] == '.')) {
            if (o + 1 + n >= outlen) return "path too long";
            if (o) out[o++] = '/';
            memcpy(out + o, p, n);
            o += n;
        }
        p = end;
    }
    out[o] = '\0';
    return NULL;
}

/* Split a cleaned path into its parent (copied to parent, "" for the root)
 * and its last component (returned, pointing into path). */
static const char *split_leaf(const char *path, char parent[PATH_MAX])
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        parent[0] = '\0';
        return path;
    }
    memcpy(parent, path, (size_t)(slash - path));
    parent[slash - path] = '\0';
    return slash + 1;
}

/* Would a relative symlink at a link in directory `parent` (cleaned, relative
 * to the root) climb above the root when read lexically? */
static bool climbs_out(const char *parent, const char *target)
{
    long depth = 0;
    if (*parent) {
        depth = 1;
        for (const char *p = parent; *p; p++)
            depth += *p == '/';
    }
    for (const char *p = target; *p;) {
        while (*p == '/')
            p++;
        if (!*p) break;
        const char *end = strchrnul(p, '/');
        size_t n = (size_t)(end - p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (--depth < 0) return true;
        } else if (!(n == 1 && p[0] == '.')) {
            depth++;
        }
        p = end;
    }
    return false;
}

/* openat2 beneath the layer root: ".." and absolute symlinks stop at the
 * root, /proc magic links are not followed. EAGAIN means a rename raced the
 * lookup somewhere on the system; the kernel asks for a retry. */
static int open_in_root(int root, const char *path, int flags)
{
    struct open_how how = {
        .flags = (uint64_t)(unsigned)(flags | O_CLOEXEC),
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    for (int tries = 0;; tries++) {
        long fd = syscall(SYS_openat2, root, *path ? path : ".", &how, sizeof how);
        if (fd >= 0) return (int)fd;
        if (errno != EAGAIN || tries == 16) return -1;
    }
}

/* The directory at path (cleaned), resolved inside the root and opened with
 * flags; missing directories on the way are created (0755): a tar stream
 * need not list a directory before the entries in it. */
static int open_dir(unpacker *u, const char *path, int flags)
{
    int fd = open_in_root(u->root, path, flags | O_DIRECTORY);
    if (fd >= 0) return fd;
    if (errno != ENOENT) return refuse(u, errno, "open directory \"%s\"", *path ? path : ".");

    char prefix[PATH_MAX];
    size_t len = strlen(path);
    cleanup_close int cur = open_in_root(u->root, "", O_PATH | O_DIRECTORY);
    if (cur < 0) return refuse(u, errno, "open the layer root");
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && path[j] != '/')
            j++;
        memcpy(prefix, path, j);
        prefix[j] = '\0';
        const char *comp = prefix + i;
        int next = open_in_root(u->root, prefix, O_PATH | O_DIRECTORY);
        if (next < 0 && errno == ENOENT) {
            if (mkdirat(cur, comp, 0755) == 0) {
                /* the umask must not decide who may traverse the image */
                next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (next >= 0 && fchmod(next, 0755) < 0) {
                    close(next);
                    next = -1;
                }
            } else if (errno == EEXIST) {
                /* a dangling symlink or a file: the lookup below says which */
                next = open_in_root(u->root, prefix, O_PATH | O_DIRECTORY);
            }
        }
        if (next < 0) return refuse(u, errno, "parent directory \"%s\" in the layer", prefix);
        close(cur);
        cur = next;
        i = j + 1;
    }
    fd = open_in_root(u->root, path, flags | O_DIRECTORY);
    if (fd < 0) return refuse(u, errno, "open directory \"%s\"", path);
    return fd;
}

/* Remove everything inside the directory top. A layer can nest directories
 * deeper than PATH_MAX (entries below a symlink to a deep directory), and
 * deeper than there are descriptors, so this holds one descriptor at a time
 * and climbs back by "..", keeping only the names on the way down. Nothing
 * is followed: O_NOFOLLOW on the way down, ".." of a real directory on the
 * way up. Returns -1 with errno set. */
static int empty_tree(int top)
{
    char **names = NULL;
    size_t depth = 0, cap = 0;
    int rc = -1;
    int cur = fcntl(top, F_DUPFD_CLOEXEC, 0);
    while (cur >= 0) {
        int dup_fd = fcntl(cur, F_DUPFD_CLOEXEC, 0);
        DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
        if (!d) {
            if (dup_fd >= 0) close(dup_fd);
            break;
        }
        int sub = -1;
        bool failed = false;
        struct dirent *de;
        while (!failed && sub < 0 && (de = readdir(d))) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
            if (unlinkat(cur, de->d_name, 0) == 0 || errno == ENOENT) continue;
            if (errno != EISDIR) {
                failed = true;
                break;
            }
            if (depth == cap) {
                size_t ncap = cap ? cap * 2 : 32;
                char **grown = realloc(names, ncap * sizeof *grown);
                if (!grown) {
                    failed = true;
                    break;
                }
                names = grown;
                cap = ncap;
            }
            names[depth] = strdup(de->d_name);
            if (!names[depth]) {
                failed = true;
                break;
            }
            sub = openat(cur, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                free(names[depth]);
                failed = true;
                break;
            }
            depth++;
        }
        int e = errno;
        closedir(d);
        errno = e;
        if (failed) break;
        if (sub >= 0) {
            close(cur);
            cur = sub;
            continue;
        }
        /* cur is empty: back up and remove it */
        if (depth == 0) {
            rc = 0;
            break;
        }
        int parent = openat(cur, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        close(cur);
        cur = parent;
        depth--;
        if (cur >= 0 && unlinkat(cur, names[depth], AT_REMOVEDIR) < 0) {
            free(names[depth]);
            break;
        }
        free(names[depth]);
    }
    int e = errno;
    if (cur >= 0) close(cur);
    while (depth)
        free(names[--depth]);
    free(names);
    errno = e;
    return rc;
}

/* Remove name in dfd, a directory with everything in it. */
static int remove_at(int dfd, const char *name)
{
    if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT) return 0;
    if (errno != EISDIR) return -1;
    cleanup_close int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || empty_tree(fd) < 0) return -1;
    return unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT ? -1 : 0;
}

int fp_layer_remove(const char *dir, fp_error *err)
{
    if (remove_at(AT_FDCWD, dir) < 0) return fp_error_set(err, errno, "remove %s", dir);
    return 0;
}

/* Make room for a new entry at pfd/leaf. An earlier entry of the layer
 * there is replaced: removed, unless both are directories (they merge).
 * *was_whiteout tells that the old entry was a whiteout we made (the layer
 * may not carry device nodes, so a 0/0 character device is ours). Returns 1
 * when an existing directory stays, 0 when the place is free, -1 on error. */
static int make_room(unpacker *u, int pfd, const char *leaf, bool dir, bool *was_whiteout)
{
    struct stat sb;
    *was_whiteout = false;
    if (fstatat(pfd, leaf, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT) return 0;
        return refuse(u, errno, "stat");
    }
    if (dir && S_ISDIR(sb.st_mode)) return 1;
    *was_whiteout = S_ISCHR(sb.st_mode) && sb.st_rdev == makedev(0, 0);
    if (remove_at(pfd, leaf) < 0) return refuse(u, errno, "remove the entry it replaces");
    return 0;
}

static int entry_owner(unpacker *u, struct archive_entry *e, uid_t *uid, gid_t *gid)
{
    int64_t o = arc.archive_entry_uid(e), g = arc.archive_entry_gid(e);
    /* (uid_t)-1 means "leave unchanged" to chown: not an owner */
    if (o < 0 || o >= (int64_t)UINT32_MAX || g < 0 || g >= (int64_t)UINT32_MAX)
        return refuse(u, 0, "owner %" PRId64 ":%" PRId64 " out of range", o, g);
    *uid = (uid_t)o;
    *gid = (gid_t)g;
    return 0;
}

/* Permission bits as in the tar, without setuid/setgid unless allowed: an
 * image must not bring its own privilege escalation. A directory keeps
 * setgid, which only makes new files inherit its group. */
static mode_t entry_mode(unpacker *u, struct archive_entry *e, bool dir)
{
    mode_t mode = arc.archive_entry_perm(e) & 07777;
    mode_t drop = dir ? S_ISUID : (S_ISUID | S_ISGID);
    if (!u->allow_setuid && (mode & drop)) {
        mode &= ~drop;
        u->st->stripped_setuid++;
    }
    return mode;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2])
{
    ts[1].tv_sec = 0;
    ts[1].tv_nsec = UTIME_OMIT;
    if (arc.archive_entry_mtime_is_set(e)) {
        ts[1].tv_sec = arc.archive_entry_mtime(e);
        long ns = arc.archive_entry_mtime_nsec(e);
        ts[1].tv_nsec = ns >= 0 && ns < 1000000000L ? ns : 0;
    }
    ts[0] = ts[1];
    if (arc.archive_entry_atime_is_set(e)) {
        ts[0].tv_sec = arc.archive_entry_atime(e);
        long ns = arc.archive_entry_atime_nsec(e);
        ts[0].tv_nsec = ns >= 0 && ns < 1000000000L ? ns : 0;
    }
}

/* Only user.* extended attributes are written. security.capability would
 * hand out file capabilities (a privilege, like setuid); trusted.overlay.*
 * and user.overlay.* (overlayfs's own, the latter with userxattr) would let
 * a layer forge opaque directories, redirects or metacopy; security.selinux
 * and friends are the host's to set. */
static bool xattr_allowed(const char *name)
{
    return strncmp(name, "user.", 5) == 0 && strncmp(name, "user.overlay.", 13) != 0;
}

static int apply_xattrs(unpacker *u, struct archive_entry *e, int fd)
{
    const char *name;
    const void *value;
    size_t size;
    arc.archive_entry_xattr_reset(e);
    while (arc.archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
        if (!name || !xattr_allowed(name)) {
            char q[128];
            fp_debug("event=layer_xattr_dropped name=%s",
                     fp_log_quote(name ? name : "", q, sizeof q));
            continue;
        }
        if (fsetxattr(fd, name, value, size, 0) < 0) {
            /* a file system without user xattrs loses them, as with cp -a */
            if (errno == ENOTSUP) continue;
            char q[128];
            printable(name, q, sizeof q);
            return refuse(u, errno, "set extended attribute %s", q);
        }
    }
    return 0;
}

/* Owner, mode and extended attributes of a directory (fd open on it); its
 * times are recorded for the end. */
static int dir_meta(unpacker *u, struct archive_entry *e, int fd, const char *path)
{
    uid_t uid;
    gid_t gid;
    if (entry_owner(u, e, &uid, &gid) < 0) return -1;
    if (fchown(fd, uid, gid) < 0) return refuse(u, errno, "chown");
    if (fchmod(fd, entry_mode(u, e, true)) < 0) return refuse(u, errno, "chmod");
    if (apply_xattrs(u, e, fd) < 0) return -1;
    if (u->ndirs == u->capdirs) {
        size_t cap = u->capdirs ? u->capdirs * 2 : 64;
        struct dirtime *grown = realloc(u->dirs, cap * sizeof *grown);
        if (!grown) return refuse(u, ENOMEM, "directory times");
        u->dirs = grown;
        u->capdirs = cap;
    }
    char *copy = strdup(path);
    if (!copy) return refuse(u, ENOMEM, "directory times");
    u->dirs[u->ndirs].path = copy;
    entry_times(e, u->dirs[u->ndirs].ts);
    u->ndirs++;
    return 0;
}

static int set_opaque(unpacker *u, int dirfd_)
{
    if (fsetxattr(dirfd_, OVL_OPAQUE, "y", 1, 0) < 0)
        return refuse(u, errno, "mark the directory opaque (%s)", OVL_OPAQUE);
    return 0;
}

static int unpack_whiteout(unpacker *u, const char *parent, const char *leaf)
{
    if (strcmp(leaf, WH_OPAQUE) == 0) {
        /* the directory hides everything below it in lower layers */
        cleanup_close int fd = open_dir(u, parent, O_RDONLY);
        if (fd < 0 || set_opaque(u, fd) < 0) return -1;
        u->st->whiteouts++;
        return 0;
    }
    if (strncmp(leaf, WH_META, strlen(WH_META)) == 0) {
        /* .wh..wh.plnk and kin: aufs's own bookkeeping, no meaning here */
        fp_debug("event=layer_entry_skipped reason=aufs_meta");
        return 0;
    }
    const char *name = leaf + strlen(WH_PREFIX);
    if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return refuse(u, 0, "whiteout of an invalid name");
    cleanup_close int pfd = open_dir(u, parent, O_PATH);
    if (pfd < 0) return -1;
    struct stat sb;
    if (fstatat(pfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
        /* A whiteout hides the lower layers only; an entry of this layer
         * under that name stays. It already hides a lower file; a directory
         * must also stop merging with the lower one: it becomes opaque. */
        if (S_ISDIR(sb.st_mode)) {
            cleanup_close int fd =
                openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) return refuse(u, errno, "open the directory it hides");
            if (set_opaque(u, fd) < 0) return -1;
        }
    } else if (errno != ENOENT) {
        return refuse(u, errno, "stat the name it hides");
    } else if (mknodat(pfd, name, S_IFCHR, makedev(0, 0)) < 0) {
        return refuse(u, errno, "create the overlay whiteout");
    }
    u->st->whiteouts++;
    return 0;
}

static int unpack_file(unpacker *u, struct archive_entry *e, int pfd, const char *leaf,
                       uint64_t declared)
{
    uid_t uid;
    gid_t gid;
    bool wh;
    if (entry_owner(u, e, &uid, &gid) < 0 || make_room(u, pfd, leaf, false, &wh) < 0) return -1;
    cleanup_close int fd =
        openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return refuse(u, errno, "create file");
    /* The declared size is already charged; libarchive never hands out more
     * than it, but the budget holds on what is written whatever the reader
     * does, so a decompression bomb stops at max_bytes. */
    uint64_t written = 0, extra = 0;
    for (;;) {
        la_ssize_t n = arc.archive_read_data(u->a, u->buf, COPY_BUF);
        if (n == 0) break;
        if (n < 0) return refuse(u, 0, "read: %s", archive_msg(u->a));
        written += (uint64_t)n;
        extra = written > declared ? written - declared : 0;
        if (extra > u->max_bytes - u->used)
            return refuse(u, EFBIG, "the layer writes more than its limit of %" PRIu64 " bytes",
                          u->max_bytes);
        if (fp_write_all(fd, u->buf, (size_t)n) < 0) return refuse(u, errno, "write");
    }
    u->used += extra;
    /* chown before chmod: chown clears setuid/setgid */
    if (fchown(fd, uid, gid) < 0) return refuse(u, errno, "chown");
    if (fchmod(fd, entry_mode(u, e, false)) < 0) return refuse(u, errno, "chmod");
    if (apply_xattrs(u, e, fd) < 0) return -1;
    struct timespec ts[2];
    entry_times(e, ts);
    if (futimens(fd, ts) < 0) return refuse(u, errno, "set times");
    return 0;
}

static int unpack_dir(unpacker *u, struct archive_entry *e, int pfd, const char *leaf,
                      const char *path)
{
    bool wh;
    int r = make_room(u, pfd, leaf, true, &wh);
    if (r < 0) return -1;
    if (r == 0 && mkdirat(pfd, leaf, 0700) < 0) return refuse(u, errno, "create directory");
    cleanup_close int fd = openat(pfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return refuse(u, errno, "open directory");
    /* it replaces a whiteout of the same layer: the lower directory stays
     * hidden, this one shows alone */
    if (wh && set_opaque(u, fd) < 0) return -1;
    return dir_meta(u, e, fd, path);
}

/* Owner, mode and times of a symlink or FIFO at pfd/leaf, by name without
 * following it (neither can be opened for this without side effects). */
static int node_meta(unpacker *u, struct archive_entry *e, int pfd, const char *leaf, bool chmod)
{
    uid_t uid;
    gid_t gid;
    struct timespec ts[2];
    if (entry_owner(u, e, &uid, &gid) < 0) return -1;
    if (fchownat(pfd, leaf, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) return refuse(u, errno, "chown");
    if (chmod && fchmodat(pfd, leaf, entry_mode(u, e, false), AT_SYMLINK_NOFOLLOW) < 0)
        return refuse(u, errno, "chmod");
    entry_times(e, ts);
    if (utimensat(pfd, leaf, ts, AT_SYMLINK_NOFOLLOW) < 0) return refuse(u, errno, "set times");
    return 0;
}

static int unpack_symlink(unpacker *u, struct archive_entry *e, int pfd, const char *parent,
                          const char *leaf)
{
    const char *target = arc.archive_entry_symlink(e);
    if (!target || !*target) return refuse(u, 0, "empty symlink target");
    /* An absolute target resolves inside the container's root, and inside
     * the layer here (RESOLVE_IN_ROOT). A relative one that climbs above the
     * root only makes sense to a host that follows it. */
    if (target[0] != '/' && climbs_out(parent, target)) {
        char q[200];
        printable(target, q, sizeof q);
        return refuse(u, 0, "symlink target \"%s\" climbs above the layer root", q);
    }
    bool wh;
    if (make_room(u, pfd, leaf, false, &wh) < 0) return -1;
    if (symlinkat(target, pfd, leaf) < 0) return refuse(u, errno, "create symlink");
    return node_meta(u, e, pfd, leaf, false);
}

static int unpack_fifo(unpacker *u, struct archive_entry *e, int pfd, const char *leaf)
{
    bool wh;
    if (make_room(u, pfd, leaf, false, &wh) < 0) return -1;
    if (mknodat(pfd, leaf, S_IFIFO | 0600, 0) < 0) return refuse(u, errno, "create FIFO");
    return node_meta(u, e, pfd, leaf, true);
}

/* A hard link may only name a regular file this layer already holds:
 * linking to anything else (a host file, a device, a directory) would give
 * the image a second name for something it must not reach. */
static int unpack_hardlink(unpacker *u, const char *link, int pfd, const char *leaf)
{
    char tpath[PATH_MAX], tparent[PATH_MAX], q[200];
    printable(link, q, sizeof q);
    const char *why = clean_path(link, tpath, sizeof tpath);
    if (why) return refuse(u, 0, "hard link target \"%s\": %s", q, why);
    if (!*tpath) return refuse(u, 0, "hard link to the layer root");
    const char *tleaf = split_leaf(tpath, tparent);
    cleanup_close int tpfd = open_in_root(u->root, tparent, O_PATH | O_DIRECTORY);
    struct stat tsb, sb;
    if (tpfd < 0 || fstatat(tpfd, tleaf, &tsb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(tsb.st_mode))
        return refuse(u, 0, "hard link target \"%s\" is not a regular file of this layer", q);
    if (fstatat(pfd, leaf, &sb, AT_SYMLINK_NOFOLLOW) == 0 && sb.st_dev == tsb.st_dev &&
        sb.st_ino == tsb.st_ino)
        return 0; /* already that file */
    bool wh;
    if (make_room(u, pfd, leaf, false, &wh) < 0) return -1;
    /* flags 0: link the name itself, never what a symlink would point to */
    if (linkat(tpfd, tleaf, pfd, leaf, 0) < 0) return refuse(u, errno, "create hard link");
    return 0;
}

static int unpack_entry(unpacker *u, struct archive_entry *e)
{
    char path[PATH_MAX], parent[PATH_MAX];
    const char *why = clean_path(u->name, path, sizeof path);
    if (why) return refuse(u, 0, "%s refused", why);

    /* Charge the declared size before anything is written: an entry that
     * claims 10 GiB is refused without writing a byte of it. Data a
     * directory or link carries is skipped, but skipping decompresses it,
     * so it is charged too. */
    int64_t size = arc.archive_entry_size_is_set(e) ? arc.archive_entry_size(e) : 0;
    uint64_t declared = size > 0 ? (uint64_t)size : 0;
    if (declared > u->max_bytes - u->used)
        return refuse(u, EFBIG,
                      "declares %" PRIu64 " bytes, more than the %" PRIu64
                      " left of the layer's limit of %" PRIu64,
                      declared, u->max_bytes - u->used, u->max_bytes);
    u->used += declared;

    const char *link = arc.archive_entry_hardlink(e);
    mode_t type = arc.archive_entry_filetype(e);
    if (!*path) {
        /* "./": the layer root's own owner, mode and times */
        if (link || type != AE_IFDIR) return refuse(u, 0, "names the layer root");
        return dir_meta(u, e, u->root, "");
    }
    const char *leaf = split_leaf(path, parent);
    if (strncmp(leaf, WH_PREFIX, strlen(WH_PREFIX)) == 0) return unpack_whiteout(u, parent, leaf);

    switch (link ? AE_IFREG : type) {
    case AE_IFREG:
    case AE_IFDIR:
    case AE_IFLNK:
    case AE_IFIFO:
        break;
    case AE_IFCHR:
        return refuse(u, 0, "character device refused");
    case AE_IFBLK:
        return refuse(u, 0, "block device refused");
    case AE_IFSOCK:
        return refuse(u, 0, "socket refused");
    default:
        return refuse(u, 0, "unsupported entry type 0%o", (unsigned)type);
    }
    cleanup_close int pfd = open_dir(u, parent, O_PATH);
    if (pfd < 0) return -1;
    if (link) return unpack_hardlink(u, link, pfd, leaf);
    switch (type) {
    case AE_IFREG:
        return unpack_file(u, e, pfd, leaf, declared);
    case AE_IFDIR:
        return unpack_dir(u, e, pfd, leaf, path);
    case AE_IFLNK:
        return unpack_symlink(u, e, pfd, parent, leaf);
    default:
        return unpack_fifo(u, e, pfd, leaf);
    }
}

static int apply_dirtimes(unpacker *u)
{
    u->name = NULL;
    for (size_t i = 0; i < u->ndirs; i++) {
        struct dirtime *d = &u->dirs[i];
        if (!*d->path) {
            if (futimens(u->root, d->ts) < 0)
                return fp_error_set(u->err, errno, "set times of the layer root");
            continue;
        }
        char parent[PATH_MAX];
        const char *leaf = split_leaf(d->path, parent);
        cleanup_close int pfd = open_in_root(u->root, parent, O_PATH | O_DIRECTORY);
        struct stat sb;
        /* gone or replaced by a later entry of the layer: nothing to do */
        if (pfd < 0 || fstatat(pfd, leaf, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(sb.st_mode))
            continue;
        if (utimensat(pfd, leaf, d->ts, AT_SYMLINK_NOFOLLOW) < 0) {
            u->name = d->path;
            return refuse(u, errno, "set directory times");
        }
    }
    return 0;
}

static int unpack_all(unpacker *u)
{
    /* One compression layer at most: gzip inside gzip multiplies a bomb's
     * ratio and no image tool makes it. */
    if (arc.archive_filter_count(u->a) > 2)
        return fp_error_set(u->err, 0, "layer is compressed more than once (%s)",
                            arc.archive_filter_name(u->a, 0));
    for (;;) {
        struct archive_entry *e;
        u->name = NULL;
        int r = arc.archive_read_next_header(u->a, &e);
        if (r == ARCHIVE_EOF) return 0;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
            return fp_error_set(u->err, 0, "layer after %" PRIu64 " entries: %s", u->st->entries,
                                archive_msg(u->a));
        u->name = arc.archive_entry_pathname(e);
        if (++u->st->entries > u->max_entries)
            return refuse(u, 0, "the layer has more than %" PRIu64 " entries", u->max_entries);
        if (unpack_entry(u, e) < 0) return -1;
        u->st->bytes = u->used;
    }
}

static int dir_is_empty(int fd)
{
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) return -1;
    DIR *d = fdopendir(dup_fd);
    if (!d) {
        close(dup_fd);
        return -1;
    }
    int empty = 1;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            empty = 0;
            break;
        }
    closedir(d);
    return empty;
}

int fp_layer_unpack(const char *blob_path, const char *dir, const fp_unpack_limits *lim,
                    fp_unpack_stats *st, fp_error *err)
{
    fp_unpack_stats local;
    if (!st) st = &local;
    memset(st, 0, sizeof *st);
    unpacker u = {
        .max_bytes = lim && lim->max_bytes ? lim->max_bytes : FP_UNPACK_DEFAULT_MAX_BYTES,
        .max_entries = lim && lim->max_entries ? lim->max_entries : FP_UNPACK_DEFAULT_MAX_ENTRIES,
        .allow_setuid = lim && lim->allow_setuid,
        .st = st,
        .err = err,
    };

    cleanup_close int blob = open(blob_path, O_RDONLY | O_CLOEXEC);
    if (blob < 0) return fp_error_set(err, errno, "open layer blob %s", blob_path);
    cleanup_close int root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) return fp_error_set(err, errno, "open layer directory %s", dir);
    int empty = dir_is_empty(root);
    if (empty < 0) return fp_error_set(err, errno, "read layer directory %s", dir);
    if (!empty) return fp_error_set(err, ENOTEMPTY, "layer directory %s", dir);
    u.root = root;

    if (arc_acquire(err) < 0) return -1;
    cleanup_free char *buf = malloc(COPY_BUF);
    struct archive *a = arc.archive_read_new();
    if (!buf || !a) {
        arc.archive_read_free(a);
        arc_release();
        return fp_error_set(err, ENOMEM, "unpack layer");
    }
    u.buf = buf;
    u.a = a;
    int rc;
    /* Exactly these: tar (ustar, pax, GNU) and none/gzip/zstd. ARCHIVE_WARN
     * from a filter means libarchive would run an external program. */
    if (arc.archive_read_support_format_tar(a) != ARCHIVE_OK ||
        arc.archive_read_support_filter_none(a) != ARCHIVE_OK ||
        arc.archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
        arc.archive_read_support_filter_zstd(a) != ARCHIVE_OK) {
        rc = fp_error_set(err, 0, "libarchive: %s", archive_msg(a));
    } else if (arc.archive_read_open_fd(a, blob, COPY_BUF) != ARCHIVE_OK) {
        rc = fp_error_set(err, 0, "layer blob %s: %s", blob_path, archive_msg(a));
    } else {
        rc = unpack_all(&u);
        if (rc == 0) rc = apply_dirtimes(&u);
    }
    st->bytes = u.used;
    arc.archive_read_free(a);
    arc_release();
    for (size_t i = 0; i < u.ndirs; i++)
        free(u.dirs[i].path);
    free(u.dirs);
    return rc;
}
