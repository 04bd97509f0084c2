/* Finding a process's cgroup directories and reading resource usage from
 * them, for cgroup v1 and v2. The kernel's files in /proc and /sys report a
 * size of 0, so they are read to EOF here rather than with fp_read_file
 * (which trusts st_size). */
#include "agent/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/range.h"

/* mountinfo on a busy Kubernetes node runs to a few hundred KiB. */
#define MOUNTINFO_MAX   (8u << 20)
#define PROC_CGROUP_MAX (64u << 10)
/* cpu.stat, memory.events, memory.oom_control: a dozen short lines. */
#define ATTR_MAX 8192

/* Read a whole file up to max bytes, to EOF (st_size is 0 for kernel files). */
static int read_to_eof(const char *path, size_t max, char **out, fp_error *err)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fp_error_set(err, errno, "open %s", path);
    size_t cap = 4096, len = 0;
    cleanup_free char *buf = malloc(cap);
    if (!buf) return fp_error_set(err, ENOMEM, "read %s", path);
    for (;;) {
        if (len + 1 == cap) {
            if (len >= max)
                return fp_error_set(err, EFBIG, "%s is larger than %zu bytes", path, max);
            char *grown = realloc(buf, cap * 2);
            if (!grown) return fp_error_set(err, ENOMEM, "read %s", path);
            buf = grown;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fp_error_set(err, errno, "read %s", path);
        if (n == 0) break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *out = fp_steal_ptr(buf);
    return 0;
}

/* ------------------------------------------------------------ resolving */

/* Is name one of the comma-separated entries of list ("rw,cpu,cpuacct")?
 * Whole entries only: "cpu" is not "cpuacct". */
static bool list_has(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0) return true;
        p = comma ? comma + 1 : NULL;
    }
    return false;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s)
{
    char *w = s;
    for (const char *r = s; *r;) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 4;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

struct cg_mount {
    const char *root;      /* the cgroup path mounted there ("/" for the whole hierarchy) */
    const char *point;     /* where */
    const char *superopts; /* v1: the hierarchy's controllers ("rw,cpu,cpuacct") */
    bool v2;
};

/* The cgroup and cgroup2 mounts of a mountinfo text (modified in place;
 * the entries point into it). Lines: ID PARENT MAJ:MIN ROOT POINT OPTS
 * [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS. */
static int parse_mountinfo(char *text, struct cg_mount **out, size_t *nout, fp_error *err)
{
    size_t n = 0, cap = 0;
    cleanup_free struct cg_mount *m = NULL;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[6], *fsave = NULL;
        size_t nf = 0;
        for (char *t = line; nf < 6 && (t = strtok_r(t, " ", &fsave)); t = NULL)
            f[nf++] = t;
        if (nf < 6) continue;
        char *t = strtok_r(NULL, " ", &fsave);
        while (t && strcmp(t, "-") != 0) /* optional fields: shared:N master:N ... */
            t = strtok_r(NULL, " ", &fsave);
        char *fstype = t ? strtok_r(NULL, " ", &fsave) : NULL;
        char *source = fstype ? strtok_r(NULL, " ", &fsave) : NULL;
        char *superopts = source ? strtok_r(NULL, " ", &fsave) : NULL;
        if (!superopts) continue;
        bool v2 = strcmp(fstype, "cgroup2") == 0;
        if (!v2 && strcmp(fstype, "cgroup") != 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            struct cg_mount *grown = realloc(m, cap * sizeof *m);
            if (!grown) return fp_error_set(err, ENOMEM, "mountinfo");
            m = grown;
        }
        unescape_octal(f[3]);
        unescape_octal(f[4]);
        m[n++] = (struct cg_mount){.root = f[3], .point = f[4], .superopts = superopts, .v2 = v2};
    }
    *out = fp_steal_ptr(m);
    *nout = n;
    return 0;
}

/* Length of root when it is path or one of path's ancestors, else -1. */
static long root_prefix(const char *root, const char *path)
{
    if (strcmp(root, "/") == 0) return 0;
    size_t n = strlen(root);
    if (strncmp(path, root, n) != 0 || (path[n] != '\0' && path[n] != '/')) return -1;
    return (long)n;
}

/* Map cgroup path `path` of a hierarchy to a directory: the mount of that
 * hierarchy (v2, or v1 carrying `controller`) whose root is the longest
 * ancestor of path, then its mount point + the rest of path. Returns 1 when
 * mapped, 0 when no mount of ours shows that cgroup (e.g. a process outside
 * our cgroup namespace: its path starts with "/.."), -1 on error. */
static int map_path(const struct cg_mount *m, size_t n, bool v2, const char *controller,
                    const char *path, char *out, size_t cap, fp_error *err)
{
    const struct cg_mount *best = NULL;
    long best_len = -1;
    for (size_t i = 0; i < n; i++) {
        if (m[i].v2 != v2 || (!v2 && !list_has(m[i].superopts, controller))) continue;
        long len = root_prefix(m[i].root, path);
        /* >=: of two mounts of the same root, the later one may cover the earlier */
        if (len >= 0 && len >= best_len) {
            best = &m[i];
            best_len = len;
        }
    }
    if (!best) return 0;
    const char *rest = path + best_len;
    if (strcmp(rest, "/") == 0) rest = "";
    const char *point = strcmp(best->point, "/") == 0 && rest[0] ? "" : best->point;
    if ((size_t)snprintf(out, cap, "%s%s", point, rest) >= cap)
        return fp_error_set(err, ENAMETOOLONG, "cgroup directory %s%s", point, rest);
    return 1;
}

int fp_cgroup_of_pid(const char *proc_root, pid_t pid, fp_cgroup *cg, fp_error *err)
{
    memset(cg, 0, sizeof *cg);
    char path[PATH_MAX];
    cleanup_free char *cgroups = NULL;
    if ((size_t)snprintf(path, sizeof path, "%s/%d/cgroup", proc_root, (int)pid) >= sizeof path)
        return fp_error_set(err, ENAMETOOLONG, "%s", proc_root);
    if (read_to_eof(path, PROC_CGROUP_MAX, &cgroups, err) < 0) return -1;
    cleanup_free char *mountinfo = NULL;
    snprintf(path, sizeof path, "%s/self/mountinfo", proc_root);
    if (read_to_eof(path, MOUNTINFO_MAX, &mountinfo, err) < 0) return -1;
    cleanup_free struct cg_mount *mounts = NULL;
    size_t nmounts = 0;
    if (parse_mountinfo(mountinfo, &mounts, &nmounts, err) < 0) return -1;

    /* Lines: ID:CONTROLLERS:PATH; v2's is 0::PATH. PATH may hold ':'. */
    static const char *const wanted[] = {"memory", "cpuacct", "pids"};
    char *dirs[] = {cg->memory, cg->cpu, cg->pids};
    const char *unified = NULL;
    bool any_v1 = false;
    char *save = NULL;
    for (char *line = strtok_r(cgroups, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c1 = *c2 = '\0';
        const char *controllers = c1 + 1, *cgpath = c2 + 1;
        if (strcmp(line, "0") == 0 && !controllers[0]) {
            unified = cgpath;
            continue;
        }
        for (size_t i = 0; i < 3; i++) {
            if (!list_has(controllers, wanted[i])) continue;
            int rc = map_path(mounts, nmounts, false, wanted[i], cgpath, dirs[i], sizeof cg->memory,
                              err);
            if (rc < 0) return -1;
            any_v1 |= rc == 1;
        }
    }
    if (any_v1) return 0;
    /* None of our controllers is on a v1 hierarchy: pure v2 (or a hybrid host
     * whose v1 hierarchies we cannot see, where v2 still gives cpu.stat). */
    if (unified) {
        int rc = map_path(mounts, nmounts, true, NULL, unified, cg->memory, sizeof cg->memory, err);
        if (rc < 0) return -1;
        if (rc == 1) {
            cg->v2 = true;
            memcpy(cg->cpu, cg->memory, sizeof cg->cpu);
            memcpy(cg->pids, cg->memory, sizeof cg->pids);
            return 0;
        }
    }
    return fp_error_set(err, ENOENT, "cgroup of process %d: no hierarchy of it is mounted here",
                        (int)pid);
}

/* ------------------------------------------------------------ reading */

/* Read dir/name into buf. 1: read; 0: the file does not exist in a cgroup
 * that does (an older kernel, a controller not enabled); -1: error, errnum
 * ENOENT when the cgroup itself is gone. */
static int read_attr(const char *dir, const char *name, char **buf, fp_error *err)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return fp_error_set(err, ENAMETOOLONG, "%s/%s", dir, name);
    fp_error e;
    if (read_to_eof(path, ATTR_MAX, buf, &e) == 0) return 1;
    /* ENODEV: read through a cgroup removed after we opened the file */
    if (e.errnum == ENODEV) return fp_error_set(err, ENOENT, "cgroup %s is gone", dir);
    if (e.errnum != ENOENT) {
        if (err) *err = e;
        return -1;
    }
    struct stat st;
    if (stat(dir, &st) < 0) return fp_error_set(err, errno, "cgroup %s", dir);
    return 0;
}

/* A one-value file: a number, or "max" (no limit: 0). */
static int read_value(const char *dir, const char *name, uint64_t *v, bool *found, fp_error *err)
{
    cleanup_free char *buf = NULL;
    int rc = read_attr(dir, name, &buf, err);
    if (found) *found = rc == 1;
    if (rc <= 0) return rc;
    buf[strcspn(buf, " \t\n")] = '\0';
    if (strcmp(buf, "max") == 0) {
        *v = 0;
        return 0;
    }
    if (fp_parse_u64(buf, v) < 0)
        return fp_error_set(err, EINVAL, "%s/%s: \"%s\" is not a number", dir, name, buf);
    return 0;
}

/* A "key value" line of a flat-keyed file (cpu.stat, memory.events,
 * memory.oom_control). A key that is not there reads as 0. */
static int read_key(const char *dir, const char *name, const char *key, uint64_t *v, fp_error *err)
{
    cleanup_free char *buf = NULL;
    int rc = read_attr(dir, name, &buf, err);
    if (rc <= 0) return rc;
    size_t klen = strlen(key);
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
            if (fp_parse_u64(line + klen + 1, v) < 0)
                return fp_error_set(err, EINVAL, "%s/%s: bad %s line", dir, name, key);
            return 0;
        }
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}

/* v1 reports "no limit" as PAGE_COUNTER_MAX pages: LONG_MAX rounded down to a
 * page on 64-bit kernels (9223372036854771712 with 4 KiB pages) and LONG_MAX
 * pages on 32-bit ones (8 TiB with 4 KiB pages, which edge boards still run).
 * Nobody sets a real limit that high. */
static uint64_t v1_limit(uint64_t v)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    if (v >= (UINT64_C(1) << 62) || v == (uint64_t)INT32_MAX * page) return 0;
    return v;
}

static int usage_v1(const fp_cgroup *cg, fp_usage *u, uint64_t prev_peak, fp_error *err)
{
    if (cg->cpu[0] && read_value(cg->cpu, "cpuacct.usage", &u->cpu_ns, NULL, err) < 0) return -1;
    if (cg->memory[0]) {
        bool have_peak = false;
        if (read_value(cg->memory, "memory.usage_in_bytes", &u->mem_bytes, NULL, err) < 0 ||
            read_value(cg->memory, "memory.max_usage_in_bytes", &u->mem_peak, &have_peak, err) <
                0 ||
            read_value(cg->memory, "memory.limit_in_bytes", &u->mem_limit, NULL, err) < 0 ||
            read_key(cg->memory, "memory.oom_control", "oom_kill", &u->oom_kills, err) < 0)
            return -1;
        u->mem_limit = v1_limit(u->mem_limit);
        if (!have_peak) u->mem_peak = prev_peak > u->mem_bytes ? prev_peak : u->mem_bytes;
    }
    if (cg->pids[0] && (read_value(cg->pids, "pids.current", &u->pids, NULL, err) < 0 ||
                        read_value(cg->pids, "pids.max", &u->pids_limit, NULL, err) < 0))
        return -1;
    return 0;
}

static int usage_v2(const fp_cgroup *cg, fp_usage *u, uint64_t prev_peak, fp_error *err)
{
    if (cg->cpu[0]) {
        uint64_t usec = 0;
        if (read_key(cg->cpu, "cpu.stat", "usage_usec", &usec, err) < 0) return -1;
        u->cpu_ns = usec > UINT64_MAX / 1000 ? UINT64_MAX : usec * 1000;
    }
    if (cg->memory[0]) {
        bool have_peak = false;
        if (read_value(cg->memory, "memory.current", &u->mem_bytes, NULL, err) < 0 ||
            read_value(cg->memory, "memory.peak", &u->mem_peak, &have_peak, err) < 0 ||
            read_value(cg->memory, "memory.max", &u->mem_limit, NULL, err) < 0 ||
            read_key(cg->memory, "memory.events", "oom_kill", &u->oom_kills, err) < 0)
            return -1;
        /* memory.peak is Linux 5.19+; before it the peak is what we have seen */
        if (!have_peak) u->mem_peak = prev_peak > u->mem_bytes ? prev_peak : u->mem_bytes;
    }
    if (cg->pids[0] && (read_value(cg->pids, "pids.current", &u->pids, NULL, err) < 0 ||
                        read_value(cg->pids, "pids.max", &u->pids_limit, NULL, err) < 0))
        return -1;
    return 0;
}

int fp_cgroup_usage(const fp_cgroup *cg, fp_usage *u, fp_error *err)
{
    uint64_t prev_peak = u->mem_peak;
    memset(u, 0, sizeof *u);
    if (!cg->memory[0] && !cg->cpu[0] && !cg->pids[0])
        return fp_error_set(err, EINVAL, "cgroup usage: no cgroup directory resolved");
    int rc = cg->v2 ? usage_v2(cg, u, prev_peak, err) : usage_v1(cg, u, prev_peak, err);
    if (rc < 0) {
        /* the caller keeps its previous sample's peak for the next try */
        memset(u, 0, sizeof *u);
        u->mem_peak = prev_peak;
    }
    return rc;
}

double fp_usage_cpu_fraction(const fp_usage *prev, const fp_usage *now, double seconds)
{
    if (!(seconds > 0) || !isfinite(seconds) || now->cpu_ns < prev->cpu_ns) return 0;
    return (double)(now->cpu_ns - prev->cpu_ns) / 1e9 / seconds;
}
