/* The OCI runtime spec for a service. Everything a container may do is
 * decided here, so the defaults are the narrow ones: no new privileges,
 * Docker's capability set at most, a read-only root unless the service asks
 * otherwise, a process limit always, runc's masked and read-only /proc and
 * /sys paths, a seccomp allowlist (seccomp.c). */
#include "agent/bundle.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent/seccomp.h"
#include "core/cleanup.h"
#include "core/fs.h"

/* /etc/passwd and /etc/group larger than this are not plausible. */
#define ETC_FILE_MAX (4u << 20)

/* ------------------------------------------------------------------ */
/* User lookup in the image's own /etc files                           */

/* Open REL below the rootfs with every path component and symlink
 * resolved as if the rootfs were "/" (RESOLVE_IN_ROOT), so an image whose
 * /etc/passwd is a symlink to /etc/shadow or ../../host reads its own file
 * or nothing, never the node's. Returns 1 when the file does not exist. */
static int read_in_root(int rootfd, const char *rel, char **out, fp_error *err)
{
    struct open_how how = {
        .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, /* a FIFO must not block us */
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    cleanup_close int fd = (int)syscall(SYS_openat2, rootfd, rel, &how, sizeof how);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) return 1;
        return fp_error_set(err, errno, "open /%s in the rootfs", rel);
    }
    struct stat st;
    if (fstat(fd, &st) < 0) return fp_error_set(err, errno, "stat /%s in the rootfs", rel);
    if (!S_ISREG(st.st_mode)) return fp_error_set(err, 0, "/%s in the rootfs is not a file", rel);
    if ((uint64_t)st.st_size > ETC_FILE_MAX)
        return fp_error_set(err, EFBIG, "/%s in the rootfs", rel);
    cleanup_free char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) return fp_error_set(err, ENOMEM, "read /%s", rel);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fp_error_set(err, errno, "read /%s in the rootfs", rel);
        if (n == 0) break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    *out = fp_steal_ptr(buf);
    return 0;
}

/* A uid or gid: decimal, below the kernel's (uid_t)-1 "no id". */
static bool parse_id(const char *s, unsigned *out)
{
    if (!*s || strlen(s) > 10) return false;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p)) return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v >= UINT32_MAX) return false;
    *out = (unsigned)v;
    return true;
}

/* Split one line of a colon-separated /etc file into at most max fields
 * (in place). Returns the number of fields. */
static size_t split_fields(char *line, char **f, size_t max)
{
    size_t n = 0;
    f[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == ':') {
            *p = '\0';
            f[n++] = p + 1;
        }
    return n;
}

/* Walk the lines of an /etc file, skipping comments and NIS "+"/"-" entries.
 * The callback gets the fields of one line; non-zero stops the walk. */
typedef int (*etc_cb)(void *ctx, char **f, size_t n);
static int etc_walk(char *text, size_t nfields, etc_cb cb, void *ctx)
{
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || line[0] == '+' || line[0] == '-') continue;
        char *f[8];
        size_t n = split_fields(line, f, nfields);
        if (n < nfields) continue;
        int r = cb(ctx, f, n);
        if (r) return r;
    }
    return 0;
}

struct pw_query {
    const char *name; /* by name, or */
    unsigned uid;     /* by uid when name is NULL */
    bool found;
    char pw_name[256];
    unsigned pw_uid, pw_gid;
    char home[1024];
};

static int pw_match(void *ctx, char **f, size_t n)
{
    struct pw_query *q = ctx;
    unsigned uid, gid;
    if (!parse_id(f[2], &uid) || !parse_id(f[3], &gid)) return 0;
    if (q->name ? strcmp(f[0], q->name) != 0 : uid != q->uid) return 0;
    q->found = true;
    snprintf(q->pw_name, sizeof q->pw_name, "%s", f[0]);
    q->pw_uid = uid;
    q->pw_gid = gid;
    snprintf(q->home, sizeof q->home, "%s", n > 5 && f[5][0] == '/' ? f[5] : "/");
    return 1;
}

struct gr_query {
    const char *name; /* the group to find by name (NULL: none) */
    bool found;
    unsigned gid;
    const char *member; /* the user whose supplementary groups to collect (NULL: none) */
    unsigned *groups;
    size_t ngroups;
    bool nomem;
};

static bool member_of(char *members, const char *user)
{
    char *save = NULL;
    for (char *m = strtok_r(members, ",", &save); m; m = strtok_r(NULL, ",", &save))
        if (strcmp(m, user) == 0) return true;
    return false;
}

static int gr_match(void *ctx, char **f, size_t n)
{
    struct gr_query *q = ctx;
    unsigned gid;
    if (!parse_id(f[2], &gid)) return 0;
    if (q->name && !q->found && strcmp(f[0], q->name) == 0) {
        q->found = true;
        q->gid = gid;
    }
    if (q->member && n > 3 && member_of(f[3], q->member)) {
        for (size_t i = 0; i < q->ngroups; i++)
            if (q->groups[i] == gid) return 0;
        unsigned *grown = realloc(q->groups, (q->ngroups + 1) * sizeof *grown);
        if (!grown) {
            q->nomem = true;
            return 1;
        }
        q->groups = grown;
        q->groups[q->ngroups++] = gid;
    }
    return 0;
}

int fp_bundle_resolve_user(const char *rootfs, const char *user, unsigned *uid, unsigned *gid,
                           unsigned **groups, size_t *ngroups, char *home, size_t homelen,
                           fp_error *err)
{
    *uid = *gid = 0;
    if (groups) *groups = NULL;
    if (ngroups) *ngroups = 0;
    if (home && homelen) snprintf(home, homelen, "/");
    if (!user || !*user) return 0;

    char ubuf[256];
    if (snprintf(ubuf, sizeof ubuf, "%s", user) >= (int)sizeof ubuf)
        return fp_error_set(err, 0, "user \"%s\": too long", user);
    char *gname = strchr(ubuf, ':');
    if (gname) *gname++ = '\0';
    const char *uname = ubuf;
    if (!*uname || (gname && !*gname))
        return fp_error_set(err, 0, "user \"%s\": expected user[:group]", user);

    cleanup_close int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) return fp_error_set(err, errno, "open rootfs %s", rootfs);

    struct pw_query pq = {0};
    unsigned nuid;
    bool numeric = parse_id(uname, &nuid);
    if (numeric)
        pq.uid = nuid;
    else
        pq.name = uname;
    cleanup_free char *passwd = NULL;
    int r = read_in_root(rootfd, "etc/passwd", &passwd, err);
    if (r < 0) return fp_error_prefix(err, "user \"%s\"", user);
    if (r == 0) etc_walk(passwd, 7, pw_match, &pq);
    if (!numeric && !pq.found)
        return fp_error_set(err, 0, "user \"%s\": no such user in the image's /etc/passwd", uname);
    *uid = numeric ? nuid : pq.pw_uid;
    *gid = pq.found ? pq.pw_gid : 0;
    if (home && homelen && pq.found) snprintf(home, homelen, "%s", pq.home);

    unsigned ngid;
    bool gnumeric = gname && parse_id(gname, &ngid);
    if (gnumeric) *gid = ngid;
    /* /etc/group is needed for a group name, and for the supplementary
     * groups of a user the image knows by name. */
    if ((gname && !gnumeric) || (pq.found && groups)) {
        cleanup_free char *group = NULL;
        r = read_in_root(rootfd, "etc/group", &group, err);
        if (r < 0) return fp_error_prefix(err, "user \"%s\"", user);
        struct gr_query gq = {
            .name = gname && !gnumeric ? gname : NULL,
            .member = pq.found && groups ? pq.pw_name : NULL,
        };
        if (r == 0) etc_walk(group, 4, gr_match, &gq);
        if (gq.nomem) {
            free(gq.groups);
            return fp_error_set(err, ENOMEM, "user \"%s\"", user);
        }
        if (gq.name && !gq.found) {
            free(gq.groups);
            return fp_error_set(err, 0, "user \"%s\": no such group in the image's /etc/group",
                                user);
        }
        if (gq.name) *gid = gq.gid;
        if (groups) {
            *groups = gq.groups;
            *ngroups = gq.ngroups;
        } else
            free(gq.groups);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Process: args, env, cwd                                              */

/* A JSON array of strings (or null/absent) from the image config. */
static int image_strv(const json_t *cfg, const char *key, const json_t **out, fp_error *err)
{
    *out = NULL;
    const json_t *v = cfg ? json_object_get(cfg, key) : NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_array(v)) return fp_error_set(err, 0, "image config %s: expected an array", key);
    size_t i;
    const json_t *it;
    json_array_foreach(v, i, it)
    {
        if (!json_is_string(it))
            return fp_error_set(err, 0, "image config %s[%zu]: expected a string", key, i);
    }
    *out = v;
    return 0;
}

static void append_strv(json_t *a, const fp_strv v)
{
    for (size_t i = 0; v && v[i]; i++)
        json_array_append_new(a, json_string(v[i]));
}

static int build_args(const json_t *cfg, const fp_service *svc, json_t **out, fp_error *err)
{
    const json_t *img_ep, *img_cmd;
    if (image_strv(cfg, "Entrypoint", &img_ep, err) < 0 ||
        image_strv(cfg, "Cmd", &img_cmd, err) < 0)
        return -1;
    json_t *args = json_array();
    if (svc->entrypoint)
        append_strv(args, svc->entrypoint);
    else if (img_ep)
        json_array_extend(args, (json_t *)img_ep);
    if (svc->cmd)
        append_strv(args, svc->cmd);
    else if (img_cmd &&
             !svc->entrypoint) /* a new entrypoint drops the image's Cmd, as Docker does */
        json_array_extend(args, (json_t *)img_cmd);
    if (json_array_size(args) == 0) {
        json_decref(args);
        return fp_error_set(err, 0,
                            "nothing to run: neither the image nor the service sets an "
                            "entrypoint or a command");
    }
    *out = args;
    return 0;
}

static size_t key_len(const char *kv)
{
    const char *eq = strchr(kv, '=');
    return eq ? (size_t)(eq - kv) : strlen(kv);
}

/* Index of the entry in env with kv's key, or -1. */
static long env_find(const json_t *env, const char *kv)
{
    size_t klen = key_len(kv);
    size_t i;
    const json_t *it;
    json_array_foreach(env, i, it)
    {
        const char *s = json_string_value(it);
        if (key_len(s) == klen && strncmp(s, kv, klen) == 0) return (long)i;
    }
    return -1;
}

static void env_set_default(json_t *env, const char *kv)
{
    if (env_find(env, kv) < 0) json_array_append_new(env, json_string(kv));
}

static int build_env(const json_t *cfg, const fp_service *svc, const char *hostname,
                     const char *home, json_t **out, fp_error *err)
{
    const json_t *img_env;
    if (image_strv(cfg, "Env", &img_env, err) < 0) return -1;
    json_t *env = json_array();
    size_t i;
    const json_t *it;
    json_array_foreach(img_env, i, it)
    {
        const char *s = json_string_value(it);
        if (!strchr(s, '=') || s[0] == '=') {
            json_decref(env);
            return fp_error_set(err, 0, "image config Env[%zu]: \"%s\" is not NAME=VALUE", i, s);
        }
        long at = env_find(env, s);
        if (at >= 0)
            json_array_set_new(env, (size_t)at, json_string(s));
        else
            json_array_append_new(env, json_string(s));
    }
    for (size_t k = 0; svc->env && svc->env[k]; k++) {
        long at = env_find(env, svc->env[k]);
        if (at >= 0)
            json_array_set_new(env, (size_t)at, json_string(svc->env[k]));
        else
            json_array_append_new(env, json_string(svc->env[k]));
    }
    env_set_default(env, FP_BUNDLE_DEFAULT_PATH);
    char kv[1100];
    snprintf(kv, sizeof kv, "HOSTNAME=%s", hostname);
    env_set_default(env, kv);
    snprintf(kv, sizeof kv, "HOME=%s", home);
    env_set_default(env, kv);
    *out = env;
    return 0;
}

static json_t *strings(const char *const *v)
{
    json_t *a = json_array();
    for (size_t i = 0; v[i]; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *capabilities(const fp_service *svc)
{
    const char *const *caps =
        svc->capabilities ? (const char *const *)svc->capabilities : fp_default_capabilities;
    /* inheritable and ambient stay empty: an exec'd program gets no
     * capability it did not already have by its file bits */
    return json_pack("{s:o, s:o, s:o, s:[], s:[]}", "bounding", strings(caps), "effective",
                     strings(caps), "permitted", strings(caps), "inheritable", "ambient");
}

static int build_process(const json_t *cfg, const fp_service *svc, const fp_bundle_opts *o,
                         const char *hostname, json_t **out, fp_error *err)
{
    const json_t *u = cfg ? json_object_get(cfg, "User") : NULL;
    const char *user = svc->user[0] ? svc->user : json_is_string(u) ? json_string_value(u) : "";
    unsigned uid, gid;
    cleanup_free unsigned *groups = NULL;
    size_t ngroups = 0;
    char home[1024];
    if (fp_bundle_resolve_user(o->rootfs, user, &uid, &gid, &groups, &ngroups, home, sizeof home,
                               err) < 0)
        return -1;

    json_t *args = NULL, *env = NULL;
    if (build_args(cfg, svc, &args, err) < 0) return -1;
    if (build_env(cfg, svc, hostname, home, &env, err) < 0) {
        json_decref(args);
        return -1;
    }

    const json_t *wd = cfg ? json_object_get(cfg, "WorkingDir") : NULL;
    const char *wds = json_is_string(wd) ? json_string_value(wd) : "";
    char cwd[1024];
    /* the runtime spec wants an absolute cwd; Docker reads a relative one from "/" */
    snprintf(cwd, sizeof cwd, "%s%s", wds[0] == '/' ? "" : "/", wds);

    json_t *jgroups = json_array();
    for (size_t i = 0; i < ngroups; i++)
        json_array_append_new(jgroups, json_integer(groups[i]));

    *out = json_pack("{s:b, s:{s:I, s:I, s:o}, s:o, s:o, s:s, s:o, s:[{s:s, s:I, s:I}], s:b}",
                     "terminal", 0, "user", "uid", (json_int_t)uid, "gid", (json_int_t)gid,
                     "additionalGids", jgroups, "args", args, "env", env, "cwd", cwd,
                     "capabilities", capabilities(svc), "rlimits", "type", "RLIMIT_NOFILE", "hard",
                     (json_int_t)1024, "soft", (json_int_t)1024, "noNewPrivileges", 1);
    if (!*out) return fp_error_set(err, ENOMEM, "process spec");
    return 0;
}

/* ------------------------------------------------------------------ */
/* Mounts, namespaces, resources                                        */

static void add_mount(json_t *mounts, const char *dst, const char *type, const char *src,
                      const char *const *opts)
{
    json_array_append_new(mounts, json_pack("{s:s, s:s, s:s, s:o}", "destination", dst, "type",
                                            type, "source", src, "options", strings(opts)));
}

static json_t *build_mounts(const fp_service *svc, const fp_bundle_opts *o)
{
    json_t *m = json_array();
    add_mount(m, "/proc", "proc", "proc", (const char *[]){"nosuid", "noexec", "nodev", NULL});
    add_mount(m, "/dev", "tmpfs", "tmpfs",
              (const char *[]){"nosuid", "strictatime", "mode=755", "size=65536k", NULL});
    add_mount(m, "/dev/pts", "devpts", "devpts",
              (const char *[]){"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                               "gid=5", NULL});
    add_mount(m, "/dev/shm", "tmpfs", "shm",
              (const char *[]){"nosuid", "noexec", "nodev", "mode=1777", "size=65536k", NULL});
    add_mount(m, "/dev/mqueue", "mqueue", "mqueue",
              (const char *[]){"nosuid", "noexec", "nodev", NULL});
    add_mount(m, "/sys", "sysfs", "sysfs",
              (const char *[]){"nosuid", "noexec", "nodev", "ro", NULL});
    if (!svc->writable) {
        /* a read-only root still leaves services somewhere to write scratch
         * files and pid files; tmpfs pages count against the memory limit */
        add_mount(m, "/tmp", "tmpfs", "tmpfs",
                  (const char *[]){"nosuid", "nodev", "mode=1777", "size=65536k", NULL});
        add_mount(m, "/run", "tmpfs", "tmpfs",
                  (const char *[]){"nosuid", "nodev", "mode=755", "size=65536k", NULL});
    }
    if (o->resolv_conf)
        add_mount(m, "/etc/resolv.conf", "bind", o->resolv_conf,
                  (const char *[]){"rbind", "ro", "nosuid", "nodev", "noexec", NULL});
    /* host paths the node policy allowed (agent/enforce.h): never devices
     * or set-uid programs from the host */
    for (size_t i = 0; svc->host_paths && svc->host_paths[i]; i++) {
        char host[512], ctr[512];
        bool ro;
        if (fp_host_path_parse(svc->host_paths[i], host, ctr, &ro) < 0) continue;
        add_mount(m, ctr, "bind", host,
                  (const char *[]){"rbind", ro ? "ro" : "rw", "nosuid", "nodev", NULL});
    }
    return m;
}

static json_t *build_namespaces(const fp_bundle_opts *o)
{
    json_t *ns = json_array();
    static const char *const types[] = {"pid", "mount", "ipc", "uts"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        json_array_append_new(ns, json_pack("{s:s}", "type", types[i]));
    if (!o->host_network) json_array_append_new(ns, json_pack("{s:s}", "type", "network"));
    return ns;
}

static json_t *build_resources(const fp_service *svc)
{
    json_t *r =
        json_pack("{s:[{s:b, s:s}], s:{s:I}}", "devices", "allow", 0, "access", "rwm", "pids",
                  "limit", (json_int_t)(svc->pids ? svc->pids : FP_BUNDLE_DEFAULT_PIDS));
    if (svc->memory) {
        /* swap is memory+swap in the spec (memsw on cgroup v1): the same
         * value means no swap beyond the limit */
        json_int_t mem = svc->memory > INT64_MAX ? INT64_MAX : (json_int_t)svc->memory;
        json_object_set_new(r, "memory", json_pack("{s:I, s:I}", "limit", mem, "swap", mem));
    }
    if (svc->cpus > 0) {
        double q = svc->cpus * FP_BUNDLE_CPU_PERIOD;
        /* the kernel refuses a quota below 1 ms */
        json_int_t quota = q < 1000 ? 1000 : (json_int_t)q;
        json_object_set_new(
            r, "cpu",
            json_pack("{s:I, s:I}", "quota", quota, "period", (json_int_t)FP_BUNDLE_CPU_PERIOD));
    }
    return r;
}

int fp_bundle_config(const json_t *image_config, const fp_service *svc, const fp_bundle_opts *o,
                     json_t **out, fp_error *err)
{
    *out = NULL;
    if (!o->rootfs || o->rootfs[0] != '/')
        return fp_error_set(err, 0, "bundle: the rootfs must be an absolute path");
    if (o->cgroup_path && o->cgroup_path[0] != '/')
        return fp_error_set(err, 0, "bundle: the cgroup path must be absolute");
    if (o->resolv_conf && o->resolv_conf[0] != '/')
        return fp_error_set(err, 0, "bundle: resolv.conf must be an absolute path");
    const json_t *cfg = NULL;
    if (image_config) {
        if (!json_is_object(image_config))
            return fp_error_set(err, 0, "image config: expected a JSON object");
        cfg = json_object_get(image_config, "config");
        if (cfg && json_is_null(cfg)) cfg = NULL;
        if (cfg && !json_is_object(cfg))
            return fp_error_set(err, 0, "image config: \"config\" is not an object");
    }
    const char *hostname = o->hostname && *o->hostname ? o->hostname : svc->name;

    json_t *process = NULL;
    if (build_process(cfg, svc, o, hostname, &process, err) < 0) return -1;

    static const char *const masked[] = {
        "/proc/acpi",
        "/proc/asound",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
        NULL,
    };
    static const char *const readonly[] = {
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL,
    };
    json_t *linux_ = json_pack("{s:o, s:o, s:o, s:o, s:o}", "resources", build_resources(svc),
                               "namespaces", build_namespaces(o), "maskedPaths", strings(masked),
                               "readonlyPaths", strings(readonly), "seccomp", fp_seccomp_profile());
    if (linux_ && o->cgroup_path)
        json_object_set_new(linux_, "cgroupsPath", json_string(o->cgroup_path));

    json_t *spec =
        json_pack("{s:s, s:o, s:{s:s, s:b}, s:s, s:o, s:o}", "ociVersion", "1.0.2", "process",
                  process, "root", "path", o->rootfs, "readonly", !svc->writable, "hostname",
                  hostname, "mounts", build_mounts(svc, o), "linux", linux_);
    if (!spec) return fp_error_set(err, ENOMEM, "bundle config");
    *out = spec;
    return 0;
}

int fp_bundle_write(const char *dir, const json_t *config, fp_error *err)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/config.json", dir) >= (int)sizeof path)
        return fp_error_set(err, ENAMETOOLONG, "%s", dir);
    cleanup_free char *text = json_dumps(config, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text) return fp_error_set(err, ENOMEM, "encode %s", path);
    return fp_write_file_atomic(path, text, strlen(text), 0600, err);
}
