/* Unit tests for agent/cgroup: resolving a process's cgroup directories and
 * reading its usage. Most tests build a fake /proc (PID/cgroup and
 * self/mountinfo) and fake cgroup directories in a temp dir, for v1 (nested
 * roots, cpu and cpuacct split and combined) and v2. One test runs against
 * this host's real cgroups when we are root: a child that touches 20 MiB in
 * a cgroup made for it under our own. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/cgroup.h"
#include "core/fs.h"

#define PID 1234
#define MiB (UINT64_C(1) << 20)

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

/* ------------------------------------------------------------ fake trees */

struct fx {
    char dir[64];   /* the temp root; fake /proc is dir/proc */
    char proc[128]; /* dir/proc */
    char buf[4096]; /* for path() */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/fp-test-cgroup-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->proc, sizeof f->proc, "%s/proc", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    fp_rm_rf(f->dir);
    free(f);
    return 0;
}

/* dir + rel, in a buffer reused by the next call. */
static const char *path(struct fx *f, const char *rel)
{
    snprintf(f->buf, sizeof f->buf, "%s%s", f->dir, rel);
    return f->buf;
}

/* Write dir + rel (parents created) with text, every '@' in it replaced by
 * the temp dir so mountinfo can name mount points inside it. */
static void put(struct fx *f, const char *rel, const char *text)
{
    char full[4096], body[16384];
    snprintf(full, sizeof full, "%s%s", f->dir, rel);
    size_t n = 0;
    for (const char *p = text; *p; p++) {
        const char *add = *p == '@' ? f->dir : (char[]){*p, '\0'};
        size_t len = strlen(add);
        assert_true(n + len < sizeof body);
        memcpy(body + n, add, len);
        n += len;
    }
    char *slash = strrchr(full, '/');
    *slash = '\0';
    fp_error err;
    OK(fp_mkdir_p(full, 0755, &err));
    *slash = '/';
    FILE *fp = fopen(full, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(body, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

static void mkdirs(struct fx *f, const char *rel)
{
    fp_error err;
    OK(fp_mkdir_p(path(f, rel), 0755, &err));
}

static void assert_dir(struct fx *f, const char *got, const char *rel)
{
    if (strcmp(got, path(f, rel)) != 0) fail_msg("directory \"%s\", expected \"%s\"", got, f->buf);
}

/* A Debian 12 hybrid host seen from inside a nested memory hierarchy (like
 * this CI host: memory:/process_api/<id>), cpu and cpuacct co-mounted, and
 * the v2 hierarchy without controllers (it must not win). */
static const char mountinfo_v1_combined[] =
    "22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
    "31 22 0:28 / @/sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
    "32 31 0:29 / @/sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 "
    "cgroup2 rw,nsdelegate\n"
    "33 31 0:30 / @/sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup "
    "cgroup rw,xattr,name=systemd\n"
    "34 31 0:31 / @/sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup "
    "cgroup rw,cpu,cpuacct\n"
    "35 31 0:32 / @/sys/fs/cgroup/cpuset rw,relatime shared:15 - cgroup cgroup rw,cpuset\n"
    "36 31 0:33 /process_api @/sys/fs/cgroup/memory rw,relatime shared:16 - cgroup cgroup "
    "rw,memory\n"
    "37 31 0:34 / @/sys/fs/cgroup/pids rw,relatime shared:17 - cgroup cgroup rw,pids\n";

static const char cgroup_v1_combined[] = "12:pids:/fogport/web\n"
                                         "6:cpuset:/\n"
                                         "5:memory:/process_api/abc/fogport/web\n"
                                         "4:cpu,cpuacct:/fogport/web\n"
                                         "1:name=systemd:/system.slice/fogport.service\n"
                                         "0::/system.slice/fogport.service\n";

static void make_v1_combined(struct fx *f)
{
    put(f, "/proc/self/mountinfo", mountinfo_v1_combined);
    put(f, "/proc/1234/cgroup", cgroup_v1_combined);
    put(f, "/sys/fs/cgroup/cpu,cpuacct/fogport/web/cpuacct.usage", "123456789\n");
    put(f, "/sys/fs/cgroup/cpu,cpuacct/fogport/web/cpu.shares", "1024\n");
    const char *mem = "/sys/fs/cgroup/memory/abc/fogport/web/";
    char rel[256];
#define MEM(file, text) (snprintf(rel, sizeof rel, "%s%s", mem, file), put(f, rel, text))
    MEM("memory.usage_in_bytes", "20971520\n");
    MEM("memory.max_usage_in_bytes", "31457280\n");
    MEM("memory.limit_in_bytes", "9223372036854771712\n");
    MEM("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
#undef MEM
    put(f, "/sys/fs/cgroup/pids/fogport/web/pids.current", "4\n");
    put(f, "/sys/fs/cgroup/pids/fogport/web/pids.max", "max\n");
}

static void test_v1_combined_nested(void **state)
{
    struct fx *f = *state;
    fp_error err;
    make_v1_combined(f);
    fp_cgroup cg;
    OK(fp_cgroup_of_pid(f->proc, PID, &cg, &err));
    assert_false(cg.v2);
    /* memory's mount root is /process_api: the rest of the path goes below it */
    assert_dir(f, cg.memory, "/sys/fs/cgroup/memory/abc/fogport/web");
    assert_dir(f, cg.cpu, "/sys/fs/cgroup/cpu,cpuacct/fogport/web");
    assert_dir(f, cg.pids, "/sys/fs/cgroup/pids/fogport/web");

    fp_usage u = {0};
    OK(fp_cgroup_usage(&cg, &u, &err));
    assert_int_equal(u.cpu_ns, 123456789);
    assert_int_equal(u.mem_bytes, 20 * MiB);
    assert_int_equal(u.mem_peak, 30 * MiB);
    assert_int_equal(u.mem_limit, 0); /* PAGE_COUNTER_MAX: none */
    assert_int_equal(u.oom_kills, 3);
    assert_int_equal(u.pids, 4);
    assert_int_equal(u.pids_limit, 0);

    /* with limits set */
    put(f, "/sys/fs/cgroup/memory/abc/fogport/web/memory.limit_in_bytes", "268435456\n");
    put(f, "/sys/fs/cgroup/pids/fogport/web/pids.max", "64\n");
    OK(fp_cgroup_usage(&cg, &u, &err));
    assert_int_equal(u.mem_limit, 256 * MiB);
    assert_int_equal(u.pids_limit, 64);
    /* the kernel keeps the v1 peak: a reader's earlier sample does not count */
    u.mem_peak = 1000 * MiB;
    OK(fp_cgroup_usage(&cg, &u, &err));
    assert_int_equal(u.mem_peak, 30 * MiB);

    /* the "no limit" of 64 KiB-page kernels too */
    put(f, "/sys/fs/cgroup/memory/abc/fogport/web/memory.limit_in_bytes", "9223372036854710272\n");
    OK(fp_cgroup_usage(&cg, &u, &err));
    assert_int_equal(u.mem_limit, 0);
}

/* cpu and cpuacct as separate hierarchies (and cpuset, which is neither):
 * CPU time comes from the cpuacct one. A mount point with a space (escaped
 * \040 in mountinfo). No pids hierarchy: its fields stay 0. An old kernel's
 * memory.oom_control without oom_kill. */
static void test_v1_split_cpu_cpuacct(void **state)
{
    struct fx *f = *state;
    fp_error err;
    put(f, "/proc/self/mountinfo",
        "40 31 0:29 / @/cg/cpu rw,relatime shared:10 - cgroup cgroup rw,cpu\n"
        "41 31 0:30 / @/cg/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
        "42 31 0:31 / @/cg/cpu\\040acct rw,relatime master:3 shared:11 - cgroup cgroup "
        "rw,cpuacct\n"
        "43 31 0:32 / @/cg/memory rw,relatime - cgroup cgroup rw,memory\n");
    put(f, "/proc/1234/cgroup",
        "9:pids:/docker/c1\n"
        "4:cpuset:/docker/c1\n"
        "3:cpuacct:/docker/c1\n"
        "2:cpu:/docker/c1\n"
        "1:memory:/docker/c1\n");
    put(f, "/cg/cpu/docker/c1/cpu.shares", "1024\n");
    put(f, "/cg/cpu acct/docker/c1/cpuacct.usage", "5000000000\n");
    put(f, "/cg/memory/docker/c1/memory.usage_in_bytes", "4096\n");
    put(f, "/cg/memory/docker/c1/memory.max_usage_in_bytes", "8192\n");
    put(f, "/cg/memory/docker/c1/memory.limit_in_bytes", "1073741824\n");
    put(f, "/cg/memory/docker/c1/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n");

    fp_cgroup cg;
    OK(fp_cgroup_of_pid(f->proc, PID, &cg, &err));
    assert_false(cg.v2);
    assert_dir(f, cg.cpu, "/cg/cpu acct/docker/c1");
    assert_dir(f, cg.memory, "/cg/memory/docker/c1");
    assert_string_equal(cg.pids, "");

    fp_usage u = {0};
    OK(fp_cgroup_usage(&cg, &u, &err));
    assert_int_equal(u.cpu_ns, 5000000000);
    assert_int_equal(u.mem_bytes, 4096);
    assert_int_equal(u.mem_peak, 8192);
    assert_int_equal(u.mem_limit, 1024 * MiB);
    assert_int_equal(u.oom_kills, 0);
    assert_int_equal(u.pids, 0);
    assert_int_equal(u.pids_limit, 0);
}

/* Two mounts of the memory hierarchy: the one whose root is the longest
 * ancestor of the path wins. A path outside every mount's root (a process
 * outside our cgroup namespace shows "/../...") is not reachable. */
static void test_v1_mount_choice(void **state)
{
    struct fx *f = *state;
    fp_error err;
    put(f, "/proc/self/mountinfo",
        "43 31 0:32 / @/all rw,relatime - cgroup cgroup rw,memory\n"
        "44 31 0:32 /kubepods/pod1 @/pod rw,relatime - cgroup cgroup rw,memory\n"
        "45 31 0:33 /kubepods/pod1 @/pidsmnt rw,relatime - cgroup cgroup rw,pids\n"
        "46 31 0:33 /kubepods/pod10 @/wrong rw,relatime - cgroup cgroup rw,pids\n");
    put(f, "/proc/1234/cgroup", "2:pids:/kubepods/pod1\n1:memory:/kubepods/pod1/ctr\n");
    mkdirs(f, "/pod/ctr");
    mkdirs(f, "/pidsmnt");
    fp_cgroup cg;
    OK(fp_cgroup_of_pid(f->proc, PID, &cg, &err));
    assert_dir(f, cg.memory, "/pod/ctr");
    /* root == path: the mount point itself; "/kubepods/pod10" is not an ancestor */
    assert_dir(f, cg.pids, "/pidsmnt");

    /* nothing we can reach: ENOENT */
    put(f, "/proc/1234/cgroup", "2:pids:/../other\n1:memory:/../other/ctr\n");
    put(f, "/proc/self/mountinfo",
        "44 31 0:32 /kubepods/pod1 @/pod rw,relatime - cgroup cgroup rw,memory\n"
        "45 31 0:33 /kubepods/pod1 @/pidsmnt rw,relatime - cgroup cgroup rw,pids\n");
    RC(fp_cgroup_of_pid(f->proc, PID, &cg, &err), -1);
    assert_int_equal(err.errnum, ENOENT);
}

static void make_v2(struct fx *f)
{
    put(f, "/proc/self/mountinfo",
        "25 30 0:23 / @/sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
        "rw,nsdelegate,memory_recursiveprot\n"
        "30 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n");
    put(f, "/proc/1234/cgroup", "0::/system.slice/fogport-web.scope\n");
    const char *d = "/sys/fs/cgroup/system.slice/fogport-web.scope/";
    char rel[256];
#define AT(file, text) (snprintf(rel, sizeof rel, "%s%s", d, file), put(f, rel, text))
    AT("cpu.stat", "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n"
                   "nr_periods 0\nnr_throttled 0\nthrottled_usec 0\n");
    AT("memory.current", "10485760\n");
    AT("memory.peak", "12582912\n");
    AT("memory.max", "max\n");
    AT("memory.events", "low 0\nhigh 0\nmax 7\noom 2\noom_kill 1\noom_group_kill 0\n");
    AT("pids.current", "3\n");
    AT("pids.max", "max\n");
#undef AT
}

static void test_v2(void **state)
{
    struct fx *f = *state;
    fp_error err;
    make_v2(f);
    fp_cgroup cg;
    OK(fp_cgroup_of_pid(f->proc, PID, &cg, &err));
    assert_true(cg.v2);
    assert_dir(f, cg.memory, "/sys/fs/cgroup/system.slice/fogport-web.scope");
    assert_string_equal(cg.cpu, cg.memory);
    assert_string_equal(cg.pids, cg.memory);

    fp_usage u = {0};
    OK(fp_cgroup_usage(&cg, &u, &err));
    assert_int_equal(u.cpu_ns, 2500000000);
    assert_int_equal(u.mem_bytes, 10 * MiB);
    assert_int_equal(u.mem_peak, 12 * MiB);
    assert_int_equal(u.mem_limit, 0);
    assert_int_equal(u.oom_kills, 1); /* oom_kill, not oom or oom_group_kill */
    assert_int_equal(u.pids, 3);
    assert_int_equal(u.pids_limit, 0);

    put(f, "/sys/fs/cgroup/system.slice/fogport-web.scope/memory.max", "536870912\n");
    put(f, "/sys/fs/cgroup/system.slice/fogport-web.scope/pids.max", "100\n");
    OK(fp_cgroup_usage(&cg, &u, &err));
    assert_int_equal(u.mem_limit, 512 * MiB);
    assert_int_equal(u.pids_limit, 100);
}

/* Before Linux 5.19 there is no memory.peak: the peak is the most this
 * reader has seen, carried in the caller's previous sample. */
static void test_v2_peak_without_memory_peak(void **state)
{
    struct fx *f = *state;
    fp_error err;
    make_v2(f);
    const char *d = "/sys/fs/cgroup/system.slice/fogport-web.scope";
    char rel[256];
    snprintf(rel, sizeof rel, "%s/memory.peak", d);
    assert_int_equal(unlink(path(f, rel)), 0);
    snprintf(rel, sizeof rel, "%s/memory.current", d);

    fp_cgroup cg;
    OK(fp_cgroup_of_pid(f->proc, PID, &cg, &err));
    fp_usage u = {0};
    OK(fp_cgroup_usage(&cg, &u, &err));
    assert_int_equal(u.mem_peak, 10 * MiB);
    put(f, rel, "4194304\n");
    OK(fp_cgroup_usage(&cg, &u, &err));
    assert_int_equal(u.mem_bytes, 4 * MiB);
    assert_int_equal(u.mem_peak, 10 * MiB);
    put(f, rel, "16777216\n");
    OK(fp_cgroup_usage(&cg, &u, &err));
    assert_int_equal(u.mem_peak, 16 * MiB);
    /* a fresh sample starts over */
    put(f, rel, "1048576\n");
    fp_usage fresh = {0};
    OK(fp_cgroup_usage(&cg, &fresh, &err));
    assert_int_equal(fresh.mem_peak, 1 * MiB);
}

/* v2 below a mount whose root is not "/" (a container's bind mount of its
 * own subtree), and a cgroup without the memory and pids controllers
 * enabled: only cpu.stat, the rest stays 0. */
static void test_v2_nested_root_missing_controllers(void **state)
{
    struct fx *f = *state;
    fp_error err;
    put(f, "/proc/self/mountinfo",
        "700 600 0:23 /machine.slice/ctr @/sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw\n");
    put(f, "/proc/1234/cgroup", "0::/machine.slice/ctr/app\n");
    put(f, "/sys/fs/cgroup/app/cpu.stat", "usage_usec 7\nuser_usec 7\nsystem_usec 0\n");
    fp_cgroup cg;
    OK(fp_cgroup_of_pid(f->proc, PID, &cg, &err));
    assert_true(cg.v2);
    assert_dir(f, cg.memory, "/sys/fs/cgroup/app");
    fp_usage u = {0};
    OK(fp_cgroup_usage(&cg, &u, &err));
    assert_int_equal(u.cpu_ns, 7000);
    assert_int_equal(u.mem_bytes, 0);
    assert_int_equal(u.mem_limit, 0);
    assert_int_equal(u.pids, 0);

    /* the process in the mount's root itself */
    put(f, "/proc/1234/cgroup", "0::/machine.slice/ctr\n");
    OK(fp_cgroup_of_pid(f->proc, PID, &cg, &err));
    assert_dir(f, cg.memory, "/sys/fs/cgroup");
}

/* A process that is gone, a cgroup that is gone (v1 and v2): ENOENT. */
static void test_gone(void **state)
{
    struct fx *f = *state;
    fp_error err;
    make_v2(f);
    fp_cgroup cg;
    RC(fp_cgroup_of_pid(f->proc, 999, &cg, &err), -1);
    assert_int_equal(err.errnum, ENOENT);

    OK(fp_cgroup_of_pid(f->proc, PID, &cg, &err));
    assert_int_equal(fp_rm_rf(path(f, "/sys/fs/cgroup/system.slice/fogport-web.scope")), 0);
    fp_usage u = {.mem_peak = 42};
    RC(fp_cgroup_usage(&cg, &u, &err), -1);
    assert_int_equal(err.errnum, ENOENT);
    assert_int_equal(u.mem_peak, 42); /* the previous peak survives a failed read */

    make_v1_combined(f);
    OK(fp_cgroup_of_pid(f->proc, PID, &cg, &err));
    assert_int_equal(fp_rm_rf(path(f, "/sys/fs/cgroup/pids/fogport/web")), 0);
    RC(fp_cgroup_usage(&cg, &u, &err), -1);
    assert_int_equal(err.errnum, ENOENT);

    fp_cgroup none = {0};
    RC(fp_cgroup_usage(&none, &u, &err), -1);
}

static void test_bad_content(void **state)
{
    struct fx *f = *state;
    fp_error err;
    make_v2(f);
    fp_cgroup cg;
    OK(fp_cgroup_of_pid(f->proc, PID, &cg, &err));
    put(f, "/sys/fs/cgroup/system.slice/fogport-web.scope/memory.current", "-5\n");
    fp_usage u = {0};
    RC(fp_cgroup_usage(&cg, &u, &err), -1);
    assert_int_equal(err.errnum, EINVAL);
    put(f, "/sys/fs/cgroup/system.slice/fogport-web.scope/memory.current", "5\n");
    put(f, "/sys/fs/cgroup/system.slice/fogport-web.scope/cpu.stat", "usage_usec lots\n");
    RC(fp_cgroup_usage(&cg, &u, &err), -1);
    assert_int_equal(err.errnum, EINVAL);
}

static void test_cpu_fraction(void **state)
{
    (void)state;
    fp_usage a = {.cpu_ns = 1000000000}, b = {.cpu_ns = 3000000000};
    assert_true(fabs(fp_usage_cpu_fraction(&a, &b, 2.0) - 1.0) < 1e-9);
    assert_true(fabs(fp_usage_cpu_fraction(&a, &b, 0.5) - 4.0) < 1e-9);
    assert_true(fp_usage_cpu_fraction(&a, &a, 1.0) == 0);
    assert_true(fp_usage_cpu_fraction(&b, &a, 1.0) == 0); /* counter reset */
    assert_true(fp_usage_cpu_fraction(&a, &b, 0) == 0);
    assert_true(fp_usage_cpu_fraction(&a, &b, -1) == 0);
    assert_true(fp_usage_cpu_fraction(&a, &b, NAN) == 0);
    assert_true(fp_usage_cpu_fraction(&a, &b, INFINITY) == 0);
}

/* ------------------------------------------------------------ this host */

struct real {
    pid_t child;
    int go[2], ready[2];
    char made[3][1100]; /* cgroups created, removed at teardown */
    int nmade;
};

static int real_setup(void **state)
{
    struct real *r = calloc(1, sizeof *r);
    if (!r) return -1;
    r->child = -1;
    r->go[0] = r->go[1] = r->ready[0] = r->ready[1] = -1;
    *state = r;
    return 0;
}

static int real_teardown(void **state)
{
    struct real *r = *state;
    if (r->child > 0) {
        kill(r->child, SIGKILL);
        waitpid(r->child, NULL, 0);
    }
    for (int i = 0; i < 2; i++) {
        if (r->go[i] >= 0) close(r->go[i]);
        if (r->ready[i] >= 0) close(r->ready[i]);
    }
    /* a v1 cgroup can stay busy for a moment after its last task is reaped */
    for (int i = r->nmade - 1; i >= 0; i--)
        for (int tries = 0; rmdir(r->made[i]) < 0 && errno == EBUSY && tries < 100; tries++)
            nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
    free(r);
    return 0;
}

static int write_str(const char *dir, const char *file, const char *text)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fp_write_all(fd, text, strlen(text));
    close(fd);
    return rc;
}

/* Make dir/name for the test; false (and the test skips) when this host
 * does not let us. */
static bool make_cgroup(struct real *r, const char *parent, const char *name, char *out)
{
    snprintf(out, 1100, "%s/%s", parent, name);
    if (mkdir(out, 0755) < 0) {
        print_message("skipped: cannot create cgroup %s: %s\n", out, strerror(errno));
        return false;
    }
    memcpy(r->made[r->nmade++], out, 1100);
    return true;
}

/* The child waits for "go" (sent once it is in its cgroups, so the memory is
 * charged there), touches 20 MiB, says "ready" and waits to be killed. */
static void child_main(struct real *r)
{
    close(r->go[1]);
    close(r->ready[0]);
    char c;
    if (read(r->go[0], &c, 1) != 1) _exit(1);
    size_t len = 20 * MiB;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) _exit(1);
    for (size_t i = 0; i < len; i += 4096)
        p[i] = 1;
    if (write(r->ready[1], "r", 1) != 1) _exit(1);
    for (;;)
        pause();
}

static void test_real_host(void **state)
{
    struct real *r = *state;
    fp_error err;
    if (geteuid() != 0) {
        print_message("skipped: not root\n");
        skip();
    }
    char *mountinfo = NULL;
    size_t len = 0;
    FILE *mi = fopen("/proc/self/mountinfo", "r");
    bool mounted = false;
    while (mi && getline(&mountinfo, &len, mi) > 0)
        mounted |= strstr(mountinfo, " - cgroup ") || strstr(mountinfo, " - cgroup2 ");
    free(mountinfo);
    if (mi) fclose(mi);
    if (!mounted) {
        print_message("skipped: no cgroup file system mounted\n");
        skip();
    }
    /* with one mounted, finding our own cgroup must work */
    fp_cgroup self;
    OK(fp_cgroup_of_pid("/proc", getpid(), &self, &err));
    char name[64], mem[1100], cpu[1100] = "", pids[1100] = "";
    snprintf(name, sizeof name, "fp-unit-cgroup-%d", (int)getpid());
    if (self.v2) {
        /* memory.current exists in a child only when our cgroup hands the
         * memory controller down, which it cannot while it holds processes
         * (the no-internal-processes rule) unless it is the root */
        char p[1200];
        snprintf(p, sizeof p, "%s/cgroup.subtree_control", self.memory);
        FILE *fp = fopen(p, "r");
        char line[512] = "";
        if (fp) {
            if (!fgets(line, sizeof line, fp)) line[0] = '\0';
            fclose(fp);
        }
        if (!strstr(line, "memory") || !strstr(line, "pids")) {
            print_message("skipped: %s does not delegate memory and pids (\"%s\")\n", self.memory,
                          line);
            skip();
        }
        if (!make_cgroup(r, self.memory, name, mem)) skip();
        memcpy(cpu, mem, sizeof cpu);
        memcpy(pids, mem, sizeof pids);
        assert_int_equal(write_str(mem, "memory.max", "536870912"), 0);
        assert_int_equal(write_str(mem, "pids.max", "100"), 0);
    } else {
        if (!self.memory[0] || !self.pids[0]) {
            print_message("skipped: no v1 memory or pids hierarchy\n");
            skip();
        }
        if (!make_cgroup(r, self.memory, name, mem) || !make_cgroup(r, self.pids, name, pids))
            skip();
        if (self.cpu[0] && !make_cgroup(r, self.cpu, name, cpu)) skip();
        assert_int_equal(write_str(mem, "memory.limit_in_bytes", "536870912"), 0);
        assert_int_equal(write_str(pids, "pids.max", "100"), 0);
    }

    assert_int_equal(pipe2(r->go, O_CLOEXEC), 0);
    assert_int_equal(pipe2(r->ready, O_CLOEXEC), 0);
    r->child = fork();
    assert_true(r->child >= 0);
    if (r->child == 0) child_main(r);
    close(r->go[0]);
    close(r->ready[1]);
    r->go[0] = r->ready[1] = -1;

    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)r->child);
    for (int i = 0; i < r->nmade; i++)
        if (write_str(r->made[i], "cgroup.procs", pid) < 0)
            fail_msg("move %s into %s: %s", pid, r->made[i], strerror(errno));
    assert_int_equal(write(r->go[1], "g", 1), 1);
    char c;
    assert_int_equal(read(r->ready[0], &c, 1), 1);

    fp_cgroup cg;
    OK(fp_cgroup_of_pid("/proc", r->child, &cg, &err));
    assert_int_equal(cg.v2, self.v2);
    assert_string_equal(cg.memory, mem);
    assert_string_equal(cg.pids, pids);
    if (cpu[0]) assert_string_equal(cg.cpu, cpu);

    fp_usage u = {0};
    OK(fp_cgroup_usage(&cg, &u, &err));
    print_message("real %s: cpu %llu ns, memory %llu (peak %llu, limit %llu), pids %llu/%llu\n",
                  self.v2 ? "v2" : "v1", (unsigned long long)u.cpu_ns,
                  (unsigned long long)u.mem_bytes, (unsigned long long)u.mem_peak,
                  (unsigned long long)u.mem_limit, (unsigned long long)u.pids,
                  (unsigned long long)u.pids_limit);
    assert_true(u.mem_bytes >= 16 * MiB);
    assert_true(u.mem_peak >= u.mem_bytes);
    assert_int_equal(u.mem_limit, 512 * MiB);
    assert_true(u.pids >= 1);
    assert_int_equal(u.pids_limit, 100);
    assert_int_equal(u.oom_kills, 0);
    if (cpu[0]) assert_true(u.cpu_ns > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_v1_combined_nested, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v1_split_cpu_cpuacct, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v1_mount_choice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v2_peak_without_memory_peak, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v2_nested_root_missing_controllers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_content, setup, teardown),
        cmocka_unit_test(test_cpu_fraction),
        cmocka_unit_test_setup_teardown(test_real_host, real_setup, real_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
