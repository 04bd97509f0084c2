/* Tests for agent/runtime and agent/shim with the real runc (and crun when
 * installed): a busybox rootfs, containers started through the shim, their
 * log, stop (graceful and escalated), exit records, OOM kills, the pids
 * limit, the read-only root, no new privileges, and a shim outliving its
 * parent. Needs root, runc and a static /bin/busybox; skipped otherwise.
 *
 * This binary is also the shim: fp_shim_start runs /proc/self/exe "shim". */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/bundle.h"
#include "agent/cgroup.h"
#include "agent/runtime.h"
#include "agent/shim.h"
#include "core/fs.h"

static char g_dir[64];     /* per-run temp dir */
static char g_rootfs[128]; /* busybox rootfs, shared read-only by the containers */
static char g_self[PATH_MAX];
static char g_cgparent[64]; /* /fogport-test/<pid>: every container's cgroup is below it */
static bool g_skip;
static unsigned g_seq;

/* The containers a test started, deleted in teardown whatever happened. */
struct fx {
    fp_runtime rt;
    char ids[8][64];
    unsigned nids;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int make_rootfs(void)
{
    char p[256];
    snprintf(p, sizeof p, "%s/bin", g_rootfs);
    fp_error err;
    if (fp_mkdir_p(p, 0755, &err) < 0) return -1;
    snprintf(p, sizeof p, "%s/bin/busybox", g_rootfs);
    char *bb = NULL;
    size_t len;
    if (fp_read_file("/bin/busybox", 16 << 20, &bb, &len, &err) < 0) return -1;
    int rc = fp_write_file_atomic(p, bb, len, 0755, &err);
    free(bb);
    if (rc < 0) return -1;
    static const char *const applets[] = {"sh",   "echo", "sleep", "cat", "touch", "head", "tr",
                                          "grep", "seq",  "true",  "id",  "dd",    "kill", NULL};
    for (size_t i = 0; applets[i]; i++) {
        snprintf(p, sizeof p, "%s/bin/%s", g_rootfs, applets[i]);
        if (symlink("busybox", p) < 0) return -1;
    }
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    struct stat st;
    if (geteuid() != 0 || stat("/bin/busybox", &st) < 0) {
        g_skip = true;
        return 0;
    }
    fp_runtime probe;
    fp_error err;
    snprintf(g_dir, sizeof g_dir, "/tmp/fp-rt-XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    char root[128];
    snprintf(root, sizeof root, "%s/probe", g_dir);
    if (fp_runtime_init(&probe, "runc", root, &err) < 0) {
        g_skip = true;
        return 0;
    }
    snprintf(g_rootfs, sizeof g_rootfs, "%s/rootfs", g_dir);
    if (make_rootfs() < 0) return -1;
    ssize_t n = readlink("/proc/self/exe", g_self, sizeof g_self - 1);
    if (n <= 0) return -1;
    g_self[n] = '\0';
    snprintf(g_cgparent, sizeof g_cgparent, "/fogport-test/%d", (int)getpid());
    /* shims are orphans; this process adopts them (and reaps them in
     * teardown) instead of an init that may never reap them */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    return 0;
}

/* Remove the parent cgroups runc leaves behind (it removes the leaves). */
static void rm_cgroup_parents(void)
{
    DIR *d = opendir("/sys/fs/cgroup");
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "/sys/fs/cgroup/%s%s", e->d_name, g_cgparent);
        rmdir(p);
        snprintf(p, sizeof p, "/sys/fs/cgroup/%s/fogport-test", e->d_name);
        rmdir(p);
    }
    closedir(d);
    snprintf(p, sizeof p, "/sys/fs/cgroup%s", g_cgparent);
    rmdir(p);
    rmdir("/sys/fs/cgroup/fogport-test");
}

static int group_teardown(void **state)
{
    (void)state;
    if (g_dir[0]) {
        /* shims still finishing after their containers were deleted */
        int64_t until = now_ms() + 3000;
        while (waitpid(-1, NULL, WNOHANG) >= 0 && now_ms() < until)
            sleep_ms(20);
        rm_cgroup_parents();
        if (getenv("FP_TEST_KEEP")) /* to read the shims' files after a failure */
            fprintf(stderr, "kept %s\n", g_dir);
        else
            fp_rm_rf(g_dir);
    }
    return 0;
}

static int setup(void **state)
{
    if (g_skip) return 0;
    struct fx *f = calloc(1, sizeof *f);
    char root[128];
    /* a state root per test: nothing one test leaves can confuse another */
    snprintf(root, sizeof root, "%s/state-%u", g_dir, ++g_seq);
    fp_error err;
    if (fp_runtime_init(&f->rt, "runc", root, &err) < 0) {
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
    fp_error err;
    for (unsigned i = 0; i < f->nids; i++)
        fp_runtime_delete(&f->rt, f->ids[i], true, &err);
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    free(f);
    return 0;
}

#define SKIP_UNLESS_ROOT()                                                                         \
    do {                                                                                           \
        if (g_skip) {                                                                              \
            print_message("skipped: needs root, runc and /bin/busybox\n");                         \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

struct ctr {
    char id[64];
    char bundle[256];
    char state[256];
    char log[300];
    pid_t pid;
};

/* A service running `sh -c script`, ready for fp_shim_start. */
static void prepare_ex(struct fx *f, struct ctr *c, const char *script, fp_service *svc,
                       bool own_cgroup, bool host_network, const char *resolv_conf)
{
    snprintf(c->id, sizeof c->id, "fp-t-%d-%u", (int)getpid(), ++g_seq);
    snprintf(f->ids[f->nids++], sizeof f->ids[0], "%s", c->id);
    snprintf(c->bundle, sizeof c->bundle, "%s/%s/bundle", g_dir, c->id);
    snprintf(c->state, sizeof c->state, "%s/%s/state", g_dir, c->id);
    snprintf(c->log, sizeof c->log, "%s/log", c->state);
    fp_error err;
    assert_int_equal(fp_mkdir_p(c->bundle, 0700, &err), 0);
    snprintf(svc->name, sizeof svc->name, "svc");
    fp_strv_free(svc->cmd);
    svc->cmd = NULL;
    assert_int_equal(fp_strv_push(&svc->cmd, "/bin/sh"), 0);
    assert_int_equal(fp_strv_push(&svc->cmd, "-c"), 0);
    assert_int_equal(fp_strv_push(&svc->cmd, script), 0);
    char cg[256];
    snprintf(cg, sizeof cg, "%s/%s", g_cgparent, c->id);
    fp_bundle_opts o = {.rootfs = g_rootfs,
                        .cgroup_path = own_cgroup ? cg : NULL,
                        .host_network = host_network,
                        .resolv_conf = resolv_conf};
    json_t *config = NULL;
    if (fp_bundle_config(NULL, svc, &o, &config, &err) < 0) fail_msg("bundle: %s", err.msg);
    assert_int_equal(fp_bundle_write(c->bundle, config, &err), 0);
    json_decref(config);
}

static void prepare(struct fx *f, struct ctr *c, const char *script, fp_service *svc,
                    bool own_cgroup)
{
    prepare_ex(f, c, script, svc, own_cgroup, true, NULL);
}

static int start(struct fx *f, struct ctr *c, fp_error *err)
{
    fp_shim_opts so = {.self_exe = g_self,
                       .rt = &f->rt,
                       .id = c->id,
                       .bundle = c->bundle,
                       .state_dir = c->state,
                       .log_max = 1 << 20};
    return fp_shim_start(&so, &c->pid, err);
}

static void must_start(struct fx *f, struct ctr *c)
{
    fp_error err;
    if (start(f, c, &err) < 0) fail_msg("fp_shim_start: %s", err.msg);
    assert_true(c->pid > 0);
}

static bool log_has(const char *path, const char *needle)
{
    char *text = NULL;
    fp_error err;
    char p1[320];
    snprintf(p1, sizeof p1, "%s", path);
    if (fp_read_file(p1, 16 << 20, &text, NULL, &err) < 0) return false;
    bool yes = strstr(text, needle) != NULL;
    free(text);
    return yes;
}

static void wait_log(const struct ctr *c, const char *needle, int ms)
{
    int64_t until = now_ms() + ms;
    while (!log_has(c->log, needle)) {
        if (now_ms() > until) {
            char *text = NULL;
            fp_error err;
            fp_read_file(c->log, 1 << 20, &text, NULL, &err);
            fail_msg("log of %s has no \"%s\" after %d ms; log:\n%s", c->id, needle, ms,
                     text ? text : "(none)");
        }
        sleep_ms(20);
    }
}

static fp_shim_exit wait_exit(const struct ctr *c, int ms)
{
    fp_shim_exit ex;
    fp_error err;
    int64_t until = now_ms() + ms;
    for (;;) {
        int r = fp_shim_exit_read(c->state, &ex, &err);
        if (r < 0) fail_msg("exit record: %s", err.msg);
        if (r == 0) return ex;
        if (now_ms() > until) fail_msg("%s: no exit record after %d ms", c->id, ms);
        sleep_ms(20);
    }
}

static void expect_status(struct fx *f, const struct ctr *c, const char *want)
{
    fp_container_state st;
    fp_error err;
    int r = fp_runtime_state(&f->rt, c->id, &st, &err);
    if (r < 0) fail_msg("state %s: %s", c->id, err.msg);
    if (r == 1) fail_msg("state %s: no such container, want %s", c->id, want);
    assert_string_equal(st.status, want);
}

/* pid holds at most max descriptors and none open on /dev/zero. */
static void expect_fds(pid_t pid, int max)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[128], target[256];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        ssize_t len = readlink(p, target, sizeof target - 1);
        target[len > 0 ? len : 0] = '\0';
        if (strcmp(target, "/dev/zero") == 0) fail_msg("pid %d inherited fd %s", (int)pid, p);
        n++;
    }
    closedir(d);
    if (n > max) fail_msg("pid %d has %d descriptors, want at most %d", (int)pid, n, max);
}

struct seen {
    const char *id;
    bool found;
    char status[16];
};

static int list_cb(void *ctx, const char *id, const fp_container_state *st)
{
    struct seen *s = ctx;
    if (strcmp(id, s->id) == 0) {
        s->found = true;
        snprintf(s->status, sizeof s->status, "%s", st->status);
    }
    return 0;
}

static void test_run_log_stop(void **state)
{
    SKIP_UNLESS_ROOT();
    struct fx *f = *state;
    fp_service svc;
    fp_service_init(&svc);
    struct ctr c;
    prepare(f, &c,
            "trap 'echo got TERM; exit 143' TERM; echo hello; echo to-stderr >&2; "
            "sleep 30 & wait",
            &svc, true);
    /* a descriptor without O_CLOEXEC, like the agent's sockets may be */
    int leak = open("/dev/zero", O_RDONLY);
    assert_true(leak >= 0);
    must_start(f, &c);
    close(leak);
    expect_status(f, &c, "running");
    fp_container_state st;
    fp_error err;
    assert_int_equal(fp_runtime_state(&f->rt, c.id, &st, &err), 0);
    assert_int_equal(st.pid, c.pid);
    wait_log(&c, "hello", 5000);
    wait_log(&c, "to-stderr", 5000);
    /* every line: RFC 3339 UTC timestamp, the stream, the text */
    char *text = NULL;
    assert_int_equal(fp_read_file(c.log, 1 << 20, &text, NULL, &err), 0);
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{9}Z "
                             "out hello$",
                             REG_EXTENDED | REG_NEWLINE | REG_NOSUB),
                     0);
    assert_int_equal(regexec(&re, text, 0, NULL, 0), 0);
    regfree(&re);
    free(text);

    struct seen s = {.id = c.id};
    assert_int_equal(fp_runtime_list(&f->rt, list_cb, &s, &err), 0);
    assert_true(s.found);
    assert_string_equal(s.status, "running");

    char shim_pid[300];
    snprintf(shim_pid, sizeof shim_pid, "%s/shim.pid", c.state);
    struct stat sb;
    assert_int_equal(stat(shim_pid, &sb), 0);
    assert_int_equal(fp_read_file(shim_pid, 64, &text, NULL, &err), 0);
    pid_t spid = (pid_t)strtol(text, NULL, 10);
    free(text);
    assert_true(spid > 0);
    /* the shim is in its own session, and holds none of its starter's
     * descriptors; nor does the container */
    assert_int_not_equal(getsid(spid), getsid(0));
    assert_int_not_equal(getsid(spid), spid); /* and not its leader: no terminal can reach it */
    expect_fds(spid, 6);
    expect_fds(c.pid, 3);
    /* a second start of a running container fails and leaves it alone */
    pid_t first = c.pid;
    assert_int_equal(start(f, &c, &err), -1);
    assert_int_equal(err.errnum, EEXIST);
    c.pid = first;
    assert_int_equal(stat(shim_pid, &sb), 0);
    expect_status(f, &c, "running");

    int64_t t0 = now_ms();
    if (fp_runtime_stop(&f->rt, c.id, 5, &err) < 0) fail_msg("stop: %s", err.msg);
    assert_true(now_ms() - t0 < 4000); /* it honoured SIGTERM: no waiting out the grace */
    fp_shim_exit ex = wait_exit(&c, 5000);
    assert_int_equal(ex.exit_code, 143);
    assert_int_equal(ex.signal, 0);
    assert_false(ex.oom_killed);
    assert_true(ex.finished > 0 && ex.finished <= time(NULL));
    wait_log(&c, "got TERM", 1000);
    /* the shim deleted the container before writing the record */
    assert_int_equal(fp_runtime_state(&f->rt, c.id, &st, &err), 1);
    assert_int_equal(fp_runtime_stop(&f->rt, c.id, 1, &err), 0);
    int64_t until = now_ms() + 2000;
    while (stat(shim_pid, &sb) == 0 && now_ms() < until)
        sleep_ms(20);
    assert_int_not_equal(stat(shim_pid, &sb), 0);

    /* the id is free again: the same container can be started anew */
    must_start(f, &c);
    expect_status(f, &c, "running");
    assert_int_equal(fp_runtime_stop(&f->rt, c.id, 5, &err), 0);
    assert_int_equal(wait_exit(&c, 5000).exit_code, 143);
    fp_service_free(&svc);
}

static void test_stop_escalates_to_sigkill(void **state)
{
    SKIP_UNLESS_ROOT();
    struct fx *f = *state;
    fp_service svc;
    fp_service_init(&svc);
    struct ctr c;
    /* a pid-1 shell without a trap ignores SIGTERM */
    prepare(f, &c, "echo hello; sleep 30", &svc, true);
    must_start(f, &c);
    wait_log(&c, "hello", 5000);
    fp_error err;
    int64_t t0 = now_ms();
    if (fp_runtime_stop(&f->rt, c.id, 1, &err) < 0) fail_msg("stop: %s", err.msg);
    int64_t took = now_ms() - t0;
    assert_true(took >= 900 && took < 5000);
    fp_shim_exit ex = wait_exit(&c, 5000);
    assert_int_equal(ex.signal, SIGKILL);
    assert_int_equal(ex.exit_code, 128 + SIGKILL);
    assert_false(ex.oom_killed);
    fp_service_free(&svc);
}

static void test_oom_killed(void **state)
{
    SKIP_UNLESS_ROOT();
    struct fx *f = *state;
    fp_service svc;
    fp_service_init(&svc);
    svc.memory = 16u << 20;
    svc.writable = true;
    struct ctr c;
    /* the shell holds a 100 MB string; no cgroupsPath: the runtime's default
     * cgroup, nested below this process's own (mapped via mountinfo) */
    prepare(f, &c, "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo ${#x}", &svc, false);
    must_start(f, &c);
    fp_shim_exit ex = wait_exit(&c, 15000);
    assert_true(ex.oom_killed);
    assert_false(log_has(c.log, "100000000"));
    fp_service_free(&svc);
}

static long read_long(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("open %s: %s", path, strerror(errno));
    long v = -1;
    if (fscanf(f, "%ld", &v) != 1) v = -1;
    fclose(f);
    return v;
}

static void test_pids_limit(void **state)
{
    SKIP_UNLESS_ROOT();
    struct fx *f = *state;
    fp_service svc;
    fp_service_init(&svc);
    svc.pids = 20;
    struct ctr c;
    /* the fork loop in a child shell (ash gives up at the first failed
     * fork); the init then execs, needing no new process */
    prepare(f, &c, "sh -c 'for i in $(seq 1 60); do sleep 30 & done'; echo spawned; exec sleep 30",
            &svc, true);
    must_start(f, &c);
    wait_log(&c, "spawned", 5000);
    assert_true(log_has(c.log, "can't fork"));
    char p[PATH_MAX + 32];
    fp_cgroup cg;
    fp_error err;
    if (fp_cgroup_of_pid("/proc", c.pid, &cg, &err) < 0) fail_msg("pids cgroup: %s", err.msg);
    const char *dir = cg.pids;
    assert_non_null(strstr(dir, c.id));
    /* cgroup files have no size: read them as streams */
    snprintf(p, sizeof p, "%s/pids.current", dir);
    long cur = read_long(p);
    if (cur < 15 || cur > 20) fail_msg("pids.current %ld in %s, want 15..20", cur, dir);
    snprintf(p, sizeof p, "%s/pids.max", dir);
    assert_int_equal(read_long(p), 20);
    assert_int_equal(fp_runtime_stop(&f->rt, c.id, 0, &err), 0);
    assert_int_equal(wait_exit(&c, 5000).signal, SIGKILL);
    fp_service_free(&svc);
}

static void test_readonly_root_no_new_privs(void **state)
{
    SKIP_UNLESS_ROOT();
    struct fx *f = *state;
    fp_service svc;
    fp_service_init(&svc);
    struct ctr c;
    /* also: a network namespace of its own (only lo), the node's
     * resolv.conf read-only */
    prepare_ex(f, &c,
               "touch /x && echo root-writable; touch /tmp/y && echo tmp-ok; "
               "touch /run/z && echo run-ok; grep -E 'NoNewPrivs|CapBnd' /proc/self/status; "
               "echo ifaces=$(grep -c : /proc/net/dev); "
               "cat /etc/resolv.conf >/dev/null && echo resolv-ok; "
               "echo x >>/etc/resolv.conf || echo resolv-ro; exit 3",
               &svc, true, false, "/etc/resolv.conf");
    must_start(f, &c);
    fp_shim_exit ex = wait_exit(&c, 5000);
    assert_int_equal(ex.exit_code, 3);
    assert_int_equal(ex.signal, 0);
    assert_true(log_has(c.log, "Read-only file system"));
    assert_false(log_has(c.log, "root-writable"));
    assert_true(log_has(c.log, "tmp-ok"));
    assert_true(log_has(c.log, "run-ok"));
    assert_true(log_has(c.log, "NoNewPrivs:\t1"));
    /* Docker's default set: chown dac_override fowner fsetid kill setgid
     * setuid setpcap net_bind_service net_raw sys_chroot mknod audit_write
     * setfcap */
    assert_true(log_has(c.log, "CapBnd:\t00000000a80425fb"));
    assert_true(log_has(c.log, "ifaces=1\n"));
    assert_true(log_has(c.log, "resolv-ok"));
    assert_true(log_has(c.log, "resolv-ro"));
    char p[300];
    snprintf(p, sizeof p, "%s/x", g_rootfs);
    struct stat st;
    assert_int_not_equal(stat(p, &st), 0);
    fp_service_free(&svc);
}

static void test_shim_outlives_its_parent(void **state)
{
    SKIP_UNLESS_ROOT();
    struct fx *f = *state;
    fp_service svc;
    fp_service_init(&svc);
    struct ctr c;
    prepare(f, &c, "trap 'exit 143' TERM; echo alive; sleep 30 & wait", &svc, true);
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    pid_t agent = fork();
    assert_true(agent >= 0);
    if (agent == 0) {
        /* the "agent": starts the container, reports, waits to be killed */
        close(pp[0]);
        fp_error err;
        int pid = start(f, &c, &err) < 0 ? -1 : (int)c.pid;
        if (write(pp[1], &pid, sizeof pid) != sizeof pid) _exit(1);
        for (;;)
            pause();
    }
    close(pp[1]);
    int pid = 0;
    assert_int_equal(read(pp[0], &pid, sizeof pid), sizeof pid);
    close(pp[0]);
    assert_true(pid > 0);
    kill(agent, SIGKILL);
    assert_int_equal(waitpid(agent, NULL, 0), agent);
    sleep_ms(300);
    expect_status(f, &c, "running");
    wait_log(&c, "alive", 5000);
    /* the shim still supervises: it records the stop */
    fp_error err;
    assert_int_equal(fp_runtime_stop(&f->rt, c.id, 5, &err), 0);
    assert_int_equal(wait_exit(&c, 5000).exit_code, 143);
    fp_service_free(&svc);
}

static void test_start_failure_says_why(void **state)
{
    SKIP_UNLESS_ROOT();
    struct fx *f = *state;
    fp_service svc;
    fp_service_init(&svc);
    struct ctr c;
    prepare(f, &c, "true", &svc, true);
    /* replace the command with one that does not exist */
    fp_strv_free(svc.cmd);
    svc.cmd = NULL;
    assert_int_equal(fp_strv_push(&svc.cmd, "/bin/no-such-program"), 0);
    fp_bundle_opts o = {.rootfs = g_rootfs, .host_network = true};
    json_t *config = NULL;
    fp_error err;
    assert_int_equal(fp_bundle_config(NULL, &svc, &o, &config, &err), 0);
    assert_int_equal(fp_bundle_write(c.bundle, config, &err), 0);
    json_decref(config);
    assert_int_equal(start(f, &c, &err), -1);
    if (!strstr(err.msg, "no-such-program")) fail_msg("unhelpful error: %s", err.msg);
    fp_container_state st;
    assert_int_equal(fp_runtime_state(&f->rt, c.id, &st, &err), 1);
    fp_shim_exit ex;
    assert_int_equal(fp_shim_exit_read(c.state, &ex, &err), 1);
    fp_service_free(&svc);
}

static void test_log_rotation(void **state)
{
    SKIP_UNLESS_ROOT();
    struct fx *f = *state;
    fp_service svc;
    fp_service_init(&svc);
    struct ctr c;
    prepare(f, &c, "for i in $(seq 1 400); do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; done",
            &svc, true);
    fp_shim_opts so = {.self_exe = g_self,
                       .rt = &f->rt,
                       .id = c.id,
                       .bundle = c.bundle,
                       .state_dir = c.state,
                       .log_max = 4096};
    fp_error err;
    if (fp_shim_start(&so, &c.pid, &err) < 0) fail_msg("start: %s", err.msg);
    assert_int_equal(wait_exit(&c, 5000).exit_code, 0);
    char old[320];
    snprintf(old, sizeof old, "%s.1", c.log);
    struct stat a, b;
    assert_int_equal(stat(c.log, &a), 0);
    assert_int_equal(stat(old, &b), 0);
    assert_true(a.st_size <= 4096 && b.st_size <= 4096 && b.st_size > 3000);
    assert_true(log_has(c.log, "line-400-"));
    assert_false(log_has(c.log, "line-1-"));
    assert_false(log_has(old, "line-1-")); /* only one old file is kept */
    fp_service_free(&svc);
}

static void test_unknown_container(void **state)
{
    SKIP_UNLESS_ROOT();
    struct fx *f = *state;
    fp_container_state st;
    fp_error err;
    assert_int_equal(fp_runtime_state(&f->rt, "nope", &st, &err), 1);
    assert_string_equal(st.status, "");
    assert_int_equal(fp_runtime_kill(&f->rt, "nope", SIGTERM, &err), 1);
    assert_int_equal(fp_runtime_delete(&f->rt, "nope", false, &err), 1);
    assert_int_equal(fp_runtime_delete(&f->rt, "nope", true, &err), 1);
    assert_int_equal(fp_runtime_stop(&f->rt, "nope", 1, &err), 0);
    assert_int_equal(fp_runtime_state(&f->rt, "../etc", &st, &err), -1);
    assert_int_equal(fp_runtime_kill(&f->rt, "-rf", SIGTERM, &err), -1);
    struct seen s = {.id = "nope"};
    assert_int_equal(fp_runtime_list(&f->rt, list_cb, &s, &err), 0);
    assert_false(s.found);
    fp_runtime rt;
    assert_int_equal(fp_runtime_init(&rt, "docker", "/tmp", &err), -1);
    char root[128];
    snprintf(root, sizeof root, "%s/auto", g_dir);
    assert_int_equal(fp_runtime_init(&rt, "", root, &err), 0);
    if (!rt.cgroup2) assert_non_null(strstr(rt.bin, "runc")); /* runc first on cgroup v1 */
}

static void test_crun(void **state)
{
    SKIP_UNLESS_ROOT();
    struct fx *f = *state;
    char root[128];
    snprintf(root, sizeof root, "%s/crun-%u", g_dir, ++g_seq);
    fp_error err;
    if (fp_runtime_init(&f->rt, "crun", root, &err) < 0) {
        print_message("skipped: %s\n", err.msg);
        skip();
    }
    fp_service svc;
    fp_service_init(&svc);
    svc.memory = 32u << 20;
    svc.cpus = 0.5;
    svc.pids = 50;
    struct ctr c;
    prepare(f, &c,
            "echo via-crun; grep NoNewPrivs /proc/self/status; touch /x || echo ro-ok; exit 5",
            &svc, true);
    int rc = start(f, &c, &err);
    if (rc < 0 && strstr(err.msg, "hybrid mode")) {
        /* crun 1.x refuses cgroup v1 hosts whose v2 hierarchy has
         * controllers, even with its cgroup manager disabled;
         * fp_runtime_init's automatic choice is runc there */
        print_message("skipped: crun cannot run containers on this host: %s\n", err.msg);
        fp_service_free(&svc);
        skip();
    }
    if (rc < 0) fail_msg("fp_shim_start with crun: %s", err.msg);
    fp_shim_exit ex = wait_exit(&c, 5000);
    assert_int_equal(ex.exit_code, 5);
    assert_true(log_has(c.log, "via-crun"));
    assert_true(log_has(c.log, "ro-ok"));
    assert_true(log_has(c.log, "NoNewPrivs:\t1"));
    fp_service_free(&svc);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "shim") == 0) return fp_shim_main(argc - 1, argv + 1);
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_run_log_stop),
        T(test_stop_escalates_to_sigkill),
        T(test_oom_killed),
        T(test_pids_limit),
        T(test_readonly_root_no_new_privs),
        T(test_shim_outlives_its_parent),
        T(test_start_failure_says_why),
        T(test_log_rotation),
        T(test_unknown_container),
        T(test_crun),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
