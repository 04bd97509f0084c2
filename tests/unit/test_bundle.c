/* Unit tests for agent/bundle: image config + service definition ->
 * config.json (args, env, user lookup in a fake rootfs, limits, read-only
 * root, capabilities, namespaces). No root needed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/bundle.h"
#include "core/fs.h"

struct fx {
    char dir[64];      /* temp dir */
    char rootfs[128];  /* dir/rootfs: a fake image root with /etc/passwd, /etc/group */
    char outside[128]; /* dir/outside: host files a symlink in an image may point at */
    fp_service svc;
};

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/fp-bundle-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->rootfs, sizeof f->rootfs, "%s/rootfs", f->dir);
    snprintf(f->outside, sizeof f->outside, "%s/outside", f->dir);
    char p[256];
    snprintf(p, sizeof p, "%s/etc", f->rootfs);
    fp_error err;
    assert_int_equal(fp_mkdir_p(p, 0755, &err), 0);
    assert_int_equal(fp_mkdir_p(f->outside, 0755, &err), 0);
    snprintf(p, sizeof p, "%s/etc/passwd", f->rootfs);
    put(p, "# comment\n"
           "root:x:0:0:root:/root:/bin/sh\n"
           "web:x:1000:1001:Web:/home/web:/bin/sh\n"
           "odd:x:notanumber:1:::\n");
    snprintf(p, sizeof p, "%s/etc/group", f->rootfs);
    put(p, "root:x:0:\n"
           "web:x:1001:\n"
           "extra:x:2000:other,web\n"
           "more:x:2001:web\n"
           "none:x:2002:other\n");
    /* what a hostile image would like the agent to read */
    snprintf(p, sizeof p, "%s/passwd", f->outside);
    put(p, "evil:x:4242:4242::/:/bin/sh\n");
    snprintf(p, sizeof p, "%s/group", f->outside);
    put(p, "evil:x:4242:\n");
    fp_service_init(&f->svc);
    snprintf(f->svc.name, sizeof f->svc.name, "web");
    snprintf(f->svc.image, sizeof f->svc.image, "web:1");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    fp_service_free(&f->svc);
    fp_rm_rf(f->dir);
    free(f);
    return 0;
}

static json_t *image(const char *json)
{
    json_error_t je;
    json_t *j = json_loads(json, 0, &je);
    if (!j) fail_msg("bad test JSON: %s", je.text);
    return j;
}

static fp_strv strv(const char *a, ...)
{
    fp_strv v = calloc(1, sizeof *v);
    va_list ap;
    va_start(ap, a);
    for (const char *s = a; s; s = va_arg(ap, const char *))
        assert_int_equal(fp_strv_push(&v, s), 0);
    va_end(ap);
    return v;
}

/* Build the config; NULL on error (the message in *err). */
static json_t *build(struct fx *f, const char *img, fp_bundle_opts *o, fp_error *err)
{
    fp_bundle_opts def = {.rootfs = f->rootfs, .host_network = true};
    if (!o) o = &def;
    if (!o->rootfs) o->rootfs = f->rootfs;
    json_t *ic = img ? image(img) : NULL;
    json_t *out = NULL;
    int rc = fp_bundle_config(ic, &f->svc, o, &out, err);
    json_decref(ic);
    if (rc < 0) {
        assert_null(out);
        return NULL;
    }
    assert_non_null(out);
    return out;
}

static json_t *must_build(struct fx *f, const char *img, fp_bundle_opts *o)
{
    fp_error err;
    json_t *c = build(f, img, o, &err);
    if (!c) fail_msg("fp_bundle_config: %s", err.msg);
    return c;
}

/* The JSON array at path "a.b.c" as one space-joined string. */
static const char *joined(json_t *c, const char *path)
{
    static char buf[4096];
    char p[256];
    snprintf(p, sizeof p, "%s", path);
    json_t *v = c;
    char *save = NULL;
    for (char *k = strtok_r(p, ".", &save); k; k = strtok_r(NULL, ".", &save))
        v = json_object_get(v, k);
    if (!json_is_array(v)) fail_msg("%s is not an array", path);
    buf[0] = '\0';
    size_t i;
    json_t *it;
    json_array_foreach(v, i, it)
    {
        char one[512];
        if (json_is_string(it))
            snprintf(one, sizeof one, "%s", json_string_value(it));
        else if (json_is_integer(it))
            snprintf(one, sizeof one, "%lld", (long long)json_integer_value(it));
        else if (json_is_object(it) && json_object_get(it, "destination"))
            snprintf(one, sizeof one, "%s", json_string_value(json_object_get(it, "destination")));
        else if (json_is_object(it) && json_object_get(it, "type"))
            snprintf(one, sizeof one, "%s", json_string_value(json_object_get(it, "type")));
        else
            snprintf(one, sizeof one, "?");
        if (i) strncat(buf, " ", sizeof buf - strlen(buf) - 1);
        strncat(buf, one, sizeof buf - strlen(buf) - 1);
    }
    return buf;
}

static json_int_t integer(json_t *c, const char *path)
{
    char p[256];
    snprintf(p, sizeof p, "%s", path);
    json_t *v = c;
    char *save = NULL;
    for (char *k = strtok_r(p, ".", &save); k; k = strtok_r(NULL, ".", &save))
        v = json_object_get(v, k);
    if (!json_is_integer(v)) fail_msg("%s is not an integer", path);
    return json_integer_value(v);
}

#define IMG_EP_CMD "{\"config\":{\"Entrypoint\":[\"/bin/app\",\"-v\"],\"Cmd\":[\"serve\"]}}"

static void test_args_image(void **state)
{
    struct fx *f = *state;
    json_t *c = must_build(f, IMG_EP_CMD, NULL);
    assert_string_equal(joined(c, "process.args"), "/bin/app -v serve");
    json_decref(c);
}

static void test_args_cmd_override(void **state)
{
    struct fx *f = *state;
    f->svc.cmd = strv("migrate", "--all", NULL);
    json_t *c = must_build(f, IMG_EP_CMD, NULL);
    assert_string_equal(joined(c, "process.args"), "/bin/app -v migrate --all");
    json_decref(c);
}

static void test_args_entrypoint_drops_image_cmd(void **state)
{
    struct fx *f = *state;
    f->svc.entrypoint = strv("/bin/other", NULL);
    json_t *c = must_build(f, IMG_EP_CMD, NULL);
    assert_string_equal(joined(c, "process.args"), "/bin/other");
    json_decref(c);
    f->svc.cmd = strv("x", NULL);
    c = must_build(f, IMG_EP_CMD, NULL);
    assert_string_equal(joined(c, "process.args"), "/bin/other x");
    json_decref(c);
}

static void test_args_empty_is_error(void **state)
{
    struct fx *f = *state;
    fp_error err;
    assert_null(build(f, "{\"config\":{}}", NULL, &err));
    assert_non_null(strstr(err.msg, "nothing to run"));
    assert_null(build(f, NULL, NULL, &err));
    /* an empty entrypoint override also drops the image's Cmd */
    f->svc.entrypoint = strv(NULL);
    assert_null(build(f, IMG_EP_CMD, NULL, &err));
    /* an image Cmd alone is enough; so is a service cmd alone */
    fp_strv_free(f->svc.entrypoint);
    f->svc.entrypoint = NULL;
    json_t *c = must_build(f, "{\"config\":{\"Cmd\":[\"/bin/sh\"]}}", NULL);
    assert_string_equal(joined(c, "process.args"), "/bin/sh");
    json_decref(c);
    f->svc.cmd = strv("/bin/true", NULL);
    c = must_build(f, NULL, NULL);
    assert_string_equal(joined(c, "process.args"), "/bin/true");
    json_decref(c);
}

static void test_bad_image_config(void **state)
{
    struct fx *f = *state;
    fp_error err;
    assert_null(build(f, "{\"config\":{\"Cmd\":\"/bin/sh\"}}", NULL, &err));
    assert_null(build(f, "{\"config\":{\"Cmd\":[1]}}", NULL, &err));
    assert_null(build(f, "{\"config\":[]}", NULL, &err));
    assert_null(build(f, "{\"config\":{\"Cmd\":[\"x\"],\"Env\":[\"NOEQUALS\"]}}", NULL, &err));
    fp_bundle_opts rel = {.rootfs = "relative/rootfs"};
    assert_null(build(f, IMG_EP_CMD, &rel, &err));
    assert_non_null(strstr(err.msg, "absolute"));
}

static void test_env_merge(void **state)
{
    struct fx *f = *state;
    f->svc.env = strv("B=3", "C=4", "A=", NULL);
    json_t *c = must_build(
        f, "{\"config\":{\"Cmd\":[\"x\"],\"Env\":[\"PATH=/opt/bin\",\"A=1\",\"B=2\",\"A=5\"]}}",
        NULL);
    assert_string_equal(joined(c, "process.env"), "PATH=/opt/bin A= B=3 C=4 HOSTNAME=web HOME=/");
    json_decref(c);
}

static void test_env_defaults(void **state)
{
    struct fx *f = *state;
    fp_bundle_opts o = {.hostname = "web-1", .host_network = true};
    json_t *c = must_build(f, "{\"config\":{\"Cmd\":[\"x\"]}}", &o);
    assert_string_equal(joined(c, "process.env"), FP_BUNDLE_DEFAULT_PATH " HOSTNAME=web-1 HOME=/");
    assert_string_equal(json_string_value(json_object_get(c, "hostname")), "web-1");
    json_decref(c);
    /* the service may set HOSTNAME and HOME itself */
    f->svc.env = strv("HOSTNAME=mine", "HOME=/data", NULL);
    c = must_build(f, "{\"config\":{\"Cmd\":[\"x\"]}}", NULL);
    assert_string_equal(joined(c, "process.env"),
                        "HOSTNAME=mine HOME=/data " FP_BUNDLE_DEFAULT_PATH);
    assert_string_equal(json_string_value(json_object_get(c, "hostname")), "web");
    json_decref(c);
}

static void test_cwd(void **state)
{
    struct fx *f = *state;
    json_t *c = must_build(f, "{\"config\":{\"Cmd\":[\"x\"],\"WorkingDir\":\"/srv/app\"}}", NULL);
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "process"), "cwd")),
                        "/srv/app");
    json_decref(c);
    c = must_build(f, "{\"config\":{\"Cmd\":[\"x\"],\"WorkingDir\":\"\"}}", NULL);
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "process"), "cwd")),
                        "/");
    json_decref(c);
    c = must_build(f, "{\"config\":{\"Cmd\":[\"x\"],\"WorkingDir\":\"app\"}}", NULL);
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "process"), "cwd")),
                        "/app");
    json_decref(c);
}

/* uid, gid and supplementary gids of user (NULL: the call must fail). */
static void expect_user(struct fx *f, const char *user, int uid, int gid, const char *groups)
{
    unsigned u, g, *gs = NULL;
    size_t ng = 0;
    char home[256];
    fp_error err;
    int rc = fp_bundle_resolve_user(f->rootfs, user, &u, &g, &gs, &ng, home, sizeof home, &err);
    if (uid < 0) {
        if (rc == 0) fail_msg("user \"%s\": resolved to %u:%u, want an error", user, u, g);
        free(gs);
        return;
    }
    if (rc < 0) fail_msg("user \"%s\": %s", user, err.msg);
    assert_int_equal(u, (unsigned)uid);
    assert_int_equal(g, (unsigned)gid);
    char got[256] = "";
    for (size_t i = 0; i < ng; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%u", i ? " " : "", gs[i]);
    assert_string_equal(got, groups);
    free(gs);
}

static void test_user_lookup(void **state)
{
    struct fx *f = *state;
    expect_user(f, "", 0, 0, "");
    expect_user(f, "root", 0, 0, "");
    expect_user(f, "web", 1000, 1001, "2000 2001");
    expect_user(f, "web:extra", 1000, 2000, "2000 2001");
    expect_user(f, "web:77", 1000, 77, "2000 2001");
    expect_user(f, "1000", 1000, 1001, "2000 2001"); /* a known uid gets its passwd group */
    expect_user(f, "1234", 1234, 0, "");             /* an unknown uid runs with gid 0 */
    expect_user(f, "1234:55", 1234, 55, "");
    expect_user(f, "1234:web", 1234, 1001, "");
    expect_user(f, "nobody", -1, 0, NULL);
    expect_user(f, "web:nogroup", -1, 0, NULL);
    expect_user(f, "odd", -1, 0, NULL); /* a malformed passwd line is not a user */
    expect_user(f, ":1", -1, 0, NULL);
    expect_user(f, "web:", -1, 0, NULL);
    expect_user(f, "4294967295", -1, 0, NULL);
    expect_user(f, "-1", -1, 0, NULL);
}

static void test_user_in_config(void **state)
{
    struct fx *f = *state;
    json_t *c = must_build(f, "{\"config\":{\"Cmd\":[\"x\"],\"User\":\"web\"}}", NULL);
    assert_int_equal(integer(c, "process.user.uid"), 1000);
    assert_int_equal(integer(c, "process.user.gid"), 1001);
    assert_string_equal(joined(c, "process.user.additionalGids"), "2000 2001");
    assert_non_null(strstr(joined(c, "process.env"), "HOME=/home/web"));
    json_decref(c);
    /* the service's user wins over the image's */
    snprintf(f->svc.user, sizeof f->svc.user, "1234:55");
    c = must_build(f, "{\"config\":{\"Cmd\":[\"x\"],\"User\":\"web\"}}", NULL);
    assert_int_equal(integer(c, "process.user.uid"), 1234);
    assert_int_equal(integer(c, "process.user.gid"), 55);
    json_decref(c);
    fp_error err;
    snprintf(f->svc.user, sizeof f->svc.user, "ghost");
    assert_null(build(f, "{\"config\":{\"Cmd\":[\"x\"]}}", NULL, &err));
    assert_non_null(strstr(err.msg, "ghost"));
}

static void relink(struct fx *f, const char *rel, const char *target)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", f->rootfs, rel);
    if (unlink(p) < 0 && errno != ENOENT) fp_rm_rf(p);
    assert_int_equal(symlink(target, p), 0);
}

static void test_user_symlink_stays_in_rootfs(void **state)
{
    struct fx *f = *state;
    char target[256];
    /* an absolute symlink to a host file: resolved inside the rootfs, where
     * there is no such file */
    snprintf(target, sizeof target, "%s/passwd", f->outside);
    relink(f, "etc/passwd", target);
    expect_user(f, "evil", -1, 0, NULL);
    expect_user(f, "web", -1, 0, NULL);
    expect_user(f, "4242", 4242, 0, ""); /* numeric ids need no passwd */
    /* a relative one climbing out: ".." stops at the rootfs */
    relink(f, "etc/passwd", "../../outside/passwd");
    expect_user(f, "evil", -1, 0, NULL);
    relink(f, "etc/passwd", "../../../../../../../../../../../../etc/passwd");
    expect_user(f, "root", -1, 0, NULL); /* no /etc/passwd in the rootfs under that name */
    /* the whole /etc a symlink to the outside */
    relink(f, "etc", f->outside);
    expect_user(f, "evil", -1, 0, NULL);
    /* while inside the rootfs a symlink is followed, relative to its root */
    char p[256];
    snprintf(p, sizeof p, "%s/etc", f->rootfs);
    unlink(p);
    snprintf(p, sizeof p, "%s/real/etc", f->rootfs);
    fp_error err;
    assert_int_equal(fp_mkdir_p(p, 0755, &err), 0);
    snprintf(p, sizeof p, "%s/real/etc/passwd", f->rootfs);
    put(p, "inner:x:7:8::/inner:/bin/sh\n");
    relink(f, "etc", "/real/etc");
    expect_user(f, "inner", 7, 8, "");
    /* a passwd that is not a regular file is refused, not read (a FIFO
     * would block) */
    snprintf(p, sizeof p, "%s/real/etc/passwd", f->rootfs);
    unlink(p);
    assert_int_equal(mkfifo(p, 0644), 0);
    expect_user(f, "inner", -1, 0, NULL);
}

static void test_limits(void **state)
{
    struct fx *f = *state;
    json_t *c = must_build(f, IMG_EP_CMD, NULL);
    json_t *res = json_object_get(json_object_get(c, "linux"), "resources");
    assert_null(json_object_get(res, "memory"));
    assert_null(json_object_get(res, "cpu"));
    assert_int_equal(integer(c, "linux.resources.pids.limit"), FP_BUNDLE_DEFAULT_PIDS);
    json_decref(c);

    f->svc.memory = 16u << 20;
    f->svc.cpus = 0.5;
    f->svc.pids = 20;
    fp_bundle_opts o = {.cgroup_path = "/fogport/fog-1/web", .host_network = true};
    c = must_build(f, IMG_EP_CMD, &o);
    assert_int_equal(integer(c, "linux.resources.memory.limit"), 16 << 20);
    assert_int_equal(integer(c, "linux.resources.memory.swap"), 16 << 20);
    assert_int_equal(integer(c, "linux.resources.cpu.quota"), 50000);
    assert_int_equal(integer(c, "linux.resources.cpu.period"), 100000);
    assert_int_equal(integer(c, "linux.resources.pids.limit"), 20);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(c, "linux"), "cgroupsPath")),
        "/fogport/fog-1/web");
    json_decref(c);

    f->svc.cpus = 0.001; /* below the kernel's 1 ms minimum quota */
    c = must_build(f, IMG_EP_CMD, NULL);
    assert_int_equal(integer(c, "linux.resources.cpu.quota"), 1000);
    json_decref(c);
}

static bool has_mount(json_t *c, const char *dst)
{
    char list[4096];
    snprintf(list, sizeof list, " %s ", joined(c, "mounts"));
    char want[256];
    snprintf(want, sizeof want, " %s ", dst);
    return strstr(list, want) != NULL;
}

static void test_readonly_root(void **state)
{
    struct fx *f = *state;
    json_t *c = must_build(f, IMG_EP_CMD, NULL);
    assert_true(json_is_true(json_object_get(json_object_get(c, "root"), "readonly")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "root"), "path")),
                        f->rootfs);
    assert_string_equal(joined(c, "mounts"),
                        "/proc /dev /dev/pts /dev/shm /dev/mqueue /sys /tmp /run");
    json_decref(c);
    f->svc.writable = true;
    c = must_build(f, IMG_EP_CMD, NULL);
    assert_true(json_is_false(json_object_get(json_object_get(c, "root"), "readonly")));
    assert_false(has_mount(c, "/tmp"));
    assert_false(has_mount(c, "/run"));
    json_decref(c);
}

static void test_mount_options(void **state)
{
    struct fx *f = *state;
    fp_bundle_opts o = {.resolv_conf = "/etc/resolv.conf", .host_network = true};
    json_t *c = must_build(f, IMG_EP_CMD, &o);
    assert_true(has_mount(c, "/etc/resolv.conf"));
    json_t *mounts = json_object_get(c, "mounts");
    size_t i;
    json_t *m;
    json_array_foreach(mounts, i, m)
    {
        const char *dst = json_string_value(json_object_get(m, "destination"));
        char opts[512];
        snprintf(opts, sizeof opts, " %s ", joined(m, "options"));
        if (strcmp(dst, "/sys") == 0) {
            assert_string_equal(json_string_value(json_object_get(m, "type")), "sysfs");
            assert_string_equal(opts, " nosuid noexec nodev ro ");
        }
        if (strcmp(dst, "/etc/resolv.conf") == 0) {
            assert_string_equal(json_string_value(json_object_get(m, "type")), "bind");
            assert_string_equal(json_string_value(json_object_get(m, "source")),
                                "/etc/resolv.conf");
            assert_non_null(strstr(opts, " ro "));
        }
    }
    json_decref(c);
    fp_error err;
    o.resolv_conf = "etc/resolv.conf";
    assert_null(build(f, IMG_EP_CMD, &o, &err));
}

static void test_capabilities_and_privileges(void **state)
{
    struct fx *f = *state;
    json_t *c = must_build(f, IMG_EP_CMD, NULL);
    char want[1024] = "";
    for (size_t i = 0; fp_default_capabilities[i]; i++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s", i ? " " : "",
                 fp_default_capabilities[i]);
    assert_string_equal(joined(c, "process.capabilities.bounding"), want);
    assert_string_equal(joined(c, "process.capabilities.effective"), want);
    assert_string_equal(joined(c, "process.capabilities.permitted"), want);
    assert_string_equal(joined(c, "process.capabilities.inheritable"), "");
    assert_string_equal(joined(c, "process.capabilities.ambient"), "");
    json_t *p = json_object_get(c, "process");
    assert_true(json_is_true(json_object_get(p, "noNewPrivileges")));
    assert_true(json_is_false(json_object_get(p, "terminal")));
    json_t *rl = json_array_get(json_object_get(p, "rlimits"), 0);
    assert_string_equal(json_string_value(json_object_get(rl, "type")), "RLIMIT_NOFILE");
    assert_int_equal(json_integer_value(json_object_get(rl, "soft")), 1024);
    assert_int_equal(json_integer_value(json_object_get(rl, "hard")), 1024);
    assert_string_equal(json_string_value(json_object_get(c, "ociVersion")), "1.0.2");
    json_decref(c);

    f->svc.capabilities = strv("CAP_NET_BIND_SERVICE", NULL);
    c = must_build(f, IMG_EP_CMD, NULL);
    assert_string_equal(joined(c, "process.capabilities.bounding"), "CAP_NET_BIND_SERVICE");
    assert_string_equal(joined(c, "process.capabilities.effective"), "CAP_NET_BIND_SERVICE");
    json_decref(c);
    fp_strv_free(f->svc.capabilities);
    f->svc.capabilities = strv(NULL); /* none at all */
    c = must_build(f, IMG_EP_CMD, NULL);
    assert_string_equal(joined(c, "process.capabilities.bounding"), "");
    json_decref(c);
}

static void test_namespaces_and_paths(void **state)
{
    struct fx *f = *state;
    json_t *c = must_build(f, IMG_EP_CMD, NULL);
    assert_string_equal(joined(c, "linux.namespaces"), "pid mount ipc uts");
    char masked[2048];
    snprintf(masked, sizeof masked, " %s ", joined(c, "linux.maskedPaths"));
    assert_non_null(strstr(masked, " /proc/kcore "));
    assert_non_null(strstr(masked, " /proc/keys "));
    assert_non_null(strstr(masked, " /sys/firmware "));
    assert_string_equal(joined(c, "linux.readonlyPaths"),
                        "/proc/bus /proc/fs /proc/irq /proc/sys /proc/sysrq-trigger");
    assert_null(json_object_get(json_object_get(c, "linux"), "cgroupsPath"));
    json_decref(c);
    fp_bundle_opts o = {.host_network = false};
    c = must_build(f, IMG_EP_CMD, &o);
    assert_string_equal(joined(c, "linux.namespaces"), "pid mount ipc uts network");
    json_decref(c);
}

/* The rule of the profile that names syscall NAME (the first), or NULL. */
static json_t *seccomp_rule(json_t *sc, const char *name)
{
    size_t i, k;
    json_t *r, *n;
    json_array_foreach(json_object_get(sc, "syscalls"), i, r)
    {
        json_array_foreach(json_object_get(r, "names"), k, n)
        {
            if (strcmp(json_string_value(n), name) == 0) return r;
        }
    }
    return NULL;
}

static bool allowed_always(json_t *sc, const char *name)
{
    json_t *r = seccomp_rule(sc, name);
    return r && strcmp(json_string_value(json_object_get(r, "action")), "SCMP_ACT_ALLOW") == 0 &&
           !json_object_get(r, "args");
}

static void test_seccomp(void **state)
{
    struct fx *f = *state;
    json_t *c = must_build(f, IMG_EP_CMD, NULL);
    json_t *sc = json_object_get(json_object_get(c, "linux"), "seccomp");
    assert_non_null(sc);
    /* an allowlist: what is not named fails with EPERM */
    assert_string_equal(json_string_value(json_object_get(sc, "defaultAction")), "SCMP_ACT_ERRNO");
    assert_int_equal(json_integer_value(json_object_get(sc, "defaultErrnoRet")), EPERM);
#if defined(__aarch64__)
    assert_string_equal(joined(c, "linux.seccomp.architectures"),
                        "SCMP_ARCH_AARCH64 SCMP_ARCH_ARM");
#else
    assert_string_equal(joined(c, "linux.seccomp.architectures"),
                        "SCMP_ARCH_X86_64 SCMP_ARCH_X86 SCMP_ARCH_X32");
#endif
    /* what a web server, a shell and a libc need */
    static const char *const need[] = {
        "read",   "write", "openat",      "close",        "execve",     "mmap",       "mprotect",
        "brk",    "futex", "accept4",     "bind",         "listen",     "sendto",     "recvfrom",
        "wait4",  "fork",  "epoll_pwait", "rt_sigaction", "newfstatat", "exit_group", "getpid",
        "setuid", "prctl", "arch_prctl",  "rseq",         "statx",      NULL,
    };
    for (size_t i = 0; need[i]; i++)
        if (!allowed_always(sc, need[i])) fail_msg("%s is not allowed", need[i]);
    /* what leaves or attacks the confinement is in no rule at all */
    static const char *const denied[] = {
        "mount",
        "umount2",
        "pivot_root",
        "unshare",
        "setns",
        "keyctl",
        "add_key",
        "request_key",
        "bpf",
        "perf_event_open",
        "ptrace",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "reboot",
        "swapon",
        "swapoff",
        "open_by_handle_at",
        "userfaultfd",
        "acct",
        "settimeofday",
        "clock_settime",
        "iopl",
        "ioperm",
        "quotactl",
        "process_vm_readv",
        "process_vm_writev",
        "kcmp",
        "io_uring_setup",
        "fsopen",
        "fsmount",
        "move_mount",
        "open_tree",
        "pidfd_getfd",
        "syslog",
        NULL,
    };
    for (size_t i = 0; denied[i]; i++)
        if (seccomp_rule(sc, denied[i])) fail_msg("%s has a rule", denied[i]);
    /* clone only without namespace flags; clone3 (flags out of reach) ENOSYS */
    json_t *r = seccomp_rule(sc, "clone");
    assert_non_null(r);
    json_t *a = json_array_get(json_object_get(r, "args"), 0);
    assert_string_equal(json_string_value(json_object_get(a, "op")), "SCMP_CMP_MASKED_EQ");
    assert_int_equal(json_integer_value(json_object_get(a, "value")), 0x7E020000);
    assert_int_equal(json_integer_value(json_object_get(a, "valueTwo")), 0);
    r = seccomp_rule(sc, "clone3");
    assert_string_equal(json_string_value(json_object_get(r, "action")), "SCMP_ACT_ERRNO");
    assert_int_equal(json_integer_value(json_object_get(r, "errnoRet")), ENOSYS);
    /* personality: only the harmless values, each its own rule */
    r = seccomp_rule(sc, "personality");
    a = json_array_get(json_object_get(r, "args"), 0);
    assert_string_equal(json_string_value(json_object_get(a, "op")), "SCMP_CMP_EQ");
    assert_int_equal(json_integer_value(json_object_get(a, "value")), 0);
    json_decref(c);

    /* a definition cannot relax it: every capability asked for, same profile */
    json_t *before = must_build(f, IMG_EP_CMD, NULL);
    f->svc.capabilities = strv("CAP_SYS_ADMIN", "CAP_SYS_PTRACE", NULL);
    f->svc.writable = true;
    c = must_build(f, IMG_EP_CMD, NULL);
    assert_true(json_equal(json_object_get(json_object_get(c, "linux"), "seccomp"),
                           json_object_get(json_object_get(before, "linux"), "seccomp")));
    json_decref(c);
    json_decref(before);
}

static void test_write(void **state)
{
    struct fx *f = *state;
    json_t *c = must_build(f, IMG_EP_CMD, NULL);
    fp_error err;
    assert_int_equal(fp_bundle_write(f->dir, c, &err), 0);
    char p[256];
    snprintf(p, sizeof p, "%s/config.json", f->dir);
    json_t *back = json_load_file(p, 0, NULL);
    assert_non_null(back);
    assert_true(json_equal(back, c));
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    json_decref(back);
    json_decref(c);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_args_image),
        T(test_args_cmd_override),
        T(test_args_entrypoint_drops_image_cmd),
        T(test_args_empty_is_error),
        T(test_bad_image_config),
        T(test_env_merge),
        T(test_env_defaults),
        T(test_cwd),
        T(test_user_lookup),
        T(test_user_in_config),
        T(test_user_symlink_stays_in_rootfs),
        T(test_limits),
        T(test_readonly_root),
        T(test_mount_options),
        T(test_capabilities_and_privileges),
        T(test_namespaces_and_paths),
        T(test_seccomp),
        T(test_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
