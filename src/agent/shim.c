/* The per-container shim. The agent spawns `fogport shim` in a new session
 * with nothing but /dev/null, its log and a status pipe; the shim forks
 * once more and the middle process exits, so the shim is adopted by init
 * (or the nearest subreaper) and never by the agent: killing the agent
 * leaves it and its container running. The shim is itself a child
 * subreaper, so the container's init, orphaned when `runc create` exits,
 * becomes its child and its wait status is the container's exit status. */
#include "agent/shim.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/cgroup.h"
#include "core/cleanup.h"
#include "core/fs.h"

extern char **environ;

/* How long the agent waits for the shim to report the container started:
 * longer than create and start may take (60 s each, then the shim reports
 * their failure). */
#define SHIM_START_DEADLINE_MS 150000
/* After the container's init is gone, how long output still draining from
 * the pipe is copied (its other processes die with it). */
#define SHIM_DRAIN_MS 2000
/* A line longer than this is logged in pieces. */
#define SHIM_LINE_MAX 16384
/* The descriptor the status pipe is handed over on. */
#define SHIM_STATUS_FD 3

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int state_path(char *out, size_t len, const char *dir, const char *name, fp_error *err)
{
    if (snprintf(out, len, "%s/%s", dir, name) >= (int)len)
        return fp_error_set(err, ENAMETOOLONG, "%s/%s", dir, name);
    return 0;
}

/* The last line of the shim's own log: why it gave up, when it could not
 * even report. */
static void shim_log_tail(const char *state_dir, char *out, size_t outlen)
{
    out[0] = '\0';
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/shim.log", state_dir) >= (int)sizeof path) return;
    char *text = NULL;
    fp_error e;
    if (fp_read_file(path, 1 << 20, &text, NULL, &e) < 0) return;
    char *end = text + strlen(text);
    while (end > text && (end[-1] == '\n' || end[-1] == ' '))
        *--end = '\0';
    char *nl = strrchr(text, '\n');
    snprintf(out, outlen, "%s", nl ? nl + 1 : text);
    free(text);
}

/* ------------------------------------------------------------------ */
/* The agent's side                                                     */

int fp_shim_start(const fp_shim_opts *o, pid_t *container_pid, fp_error *err)
{
    *container_pid = 0;
    if (!o->self_exe || o->self_exe[0] != '/')
        return fp_error_set(err, 0, "shim: self_exe must be an absolute path");
    if (!o->rt || !o->id || !fp_runtime_id_valid(o->id))
        return fp_error_set(err, 0, "shim: container id \"%s\" is not valid", o->id ? o->id : "");
    if (!o->bundle || !o->state_dir) return fp_error_set(err, 0, "shim: bundle and state_dir");
    if (fp_mkdir_p(o->state_dir, 0700, err) < 0) return fp_error_prefix(err, "shim state dir");
    /* the shim runs from "/", so it is handed absolute paths */
    char state[PATH_MAX], bundle[PATH_MAX];
    if (!realpath(o->state_dir, state)) return fp_error_set(err, errno, "%s", o->state_dir);
    if (!realpath(o->bundle, bundle)) return fp_error_set(err, errno, "bundle %s", o->bundle);
    /* a container (and so a shim) still there keeps its files */
    fp_container_state st;
    int r = fp_runtime_state(o->rt, o->id, &st, err);
    if (r < 0) return -1;
    if (r == 0)
        return fp_error_set(err, EEXIST, "container %s (%s)", o->id,
                            st.status[0] ? st.status : "unknown state");
    static const char *const stale[] = {"exit", "shim.pid", "container.pid"};
    for (size_t i = 0; i < sizeof stale / sizeof stale[0]; i++) {
        char p[PATH_MAX + 32];
        snprintf(p, sizeof p, "%s/%s", state, stale[i]);
        if (unlink(p) < 0 && errno != ENOENT) return fp_error_set(err, errno, "remove %s", p);
    }
    char shim_log[PATH_MAX + 32];
    if (state_path(shim_log, sizeof shim_log, state, "shim.log", err) < 0) return -1;

    int sp[2];
    if (pipe2(sp, O_CLOEXEC) < 0) return fp_error_set(err, errno, "pipe");
    cleanup_close int rd = sp[0];
    /* above the descriptors the file actions below set up */
    int wr = fcntl(sp[1], F_DUPFD_CLOEXEC, 10);
    close(sp[1]);
    if (wr < 0) return fp_error_set(err, errno, "dup");

    char log_max[32], status_fd[16];
    snprintf(log_max, sizeof log_max, "%llu",
             (unsigned long long)(o->log_max ? o->log_max : FP_SHIM_LOG_MAX_DEFAULT));
    snprintf(status_fd, sizeof status_fd, "%d", SHIM_STATUS_FD);
    const char *argv[] = {o->self_exe,   "shim", "--runtime", o->rt->bin, "--root",
                          o->rt->root,   "--id", o->id,       "--bundle", bundle,
                          "--state-dir", state,  "--log-max", log_max,    "--status-fd",
                          status_fd,     NULL};

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, shim_log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&fa, wr, SHIM_STATUS_FD);
    /* none of the agent's sockets and files may live on in the shim */
    posix_spawn_file_actions_addclosefrom_np(&fa, SHIM_STATUS_FD + 1);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr,
                             POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int rc = posix_spawn(&pid, o->self_exe, &fa, &attr, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(wr);
    if (rc != 0) return fp_error_set(err, rc, "run %s shim", o->self_exe);
    /* the middle process exits as soon as it has forked the shim */
    int ws;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }

    char report[4096];
    size_t got = 0;
    int64_t deadline = mono_ms() + SHIM_START_DEADLINE_MS;
    for (;;) {
        int64_t left = deadline - mono_ms();
        struct pollfd pfd = {.fd = rd, .events = POLLIN};
        int pr = left > 0 ? poll(&pfd, 1, (int)left) : 0;
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0)
            return fp_error_set(err, pr < 0 ? errno : ETIMEDOUT, "container %s: shim report",
                                o->id);
        ssize_t n = read(rd, report + got, sizeof report - 1 - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
        if (got == sizeof report - 1) break;
    }
    report[got] = '\0';
    json_t *j = json_loads(report, JSON_DISABLE_EOF_CHECK, NULL);
    const json_t *jpid = json_object_get(j, "pid");
    const json_t *jerr = json_object_get(j, "error");
    if (json_is_integer(jpid) && json_integer_value(jpid) > 0) {
        *container_pid = (pid_t)json_integer_value(jpid);
        json_decref(j);
        return 0;
    }
    if (json_is_string(jerr)) {
        fp_error_set(err, 0, "container %s: %s", o->id, json_string_value(jerr));
        json_decref(j);
        return -1;
    }
    json_decref(j);
    char tail[300];
    shim_log_tail(state, tail, sizeof tail);
    return fp_error_set(err, 0, "container %s: the shim ended without a report%s%s", o->id,
                        tail[0] ? ": " : "", tail);
}

int fp_shim_exit_read(const char *state_dir, fp_shim_exit *ex, fp_error *err)
{
    memset(ex, 0, sizeof *ex);
    char path[PATH_MAX];
    if (state_path(path, sizeof path, state_dir, "exit", err) < 0) return -1;
    char *text = NULL;
    fp_error rerr;
    if (fp_read_file(path, 4096, &text, NULL, &rerr) < 0) {
        if (rerr.errnum == ENOENT) return 1;
        if (err) *err = rerr;
        return -1;
    }
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    free(text);
    if (!json_is_object(j)) {
        json_decref(j);
        return fp_error_set(err, 0, "%s: not a JSON object (%s)", path, je.text);
    }
    json_int_t code = 0, sig = 0, fin = 0;
    int oom = 0;
    if (json_unpack_ex(j, &je, 0, "{s:I, s:I, s:b, s:I}", "exit_code", &code, "signal", &sig,
                       "oom_killed", &oom, "finished", &fin) < 0) {
        json_decref(j);
        return fp_error_set(err, 0, "%s: %s", path, je.text);
    }
    json_decref(j);
    ex->exit_code = (int)code;
    ex->signal = (int)sig;
    ex->oom_killed = oom;
    ex->finished = (time_t)fin;
    return 0;
}

/* ------------------------------------------------------------------ */
/* The shim's side                                                      */

struct shim_args {
    const char *runtime, *root, *id, *bundle, *state_dir;
    uint64_t log_max;
    int status_fd;
};

/* Report to the agent once; later reports (and a gone agent) are ignored. */
static void report(int *status_fd, pid_t pid, const char *error)
{
    if (*status_fd < 0) return;
    json_t *j = error ? json_pack("{s:s}", "error", error) : json_pack("{s:i}", "pid", (int)pid);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (text) fp_write_all(*status_fd, text, strlen(text));
    free(text);
    json_decref(j);
    close(*status_fd);
    *status_fd = -1;
}

static void diag(const char *id, const char *what, const fp_error *e)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(stderr, "%s shim %s: %s%s%s\n", when, id, what, e ? ": " : "", e ? e->msg : "");
}

/* Give up before the container runs: say why in shim.log and to the agent. */
static int setup_failed(const char *id, int *status_fd, const char *what, const fp_error *e)
{
    diag(id, what, e);
    report(status_fd, 0, e->msg);
    return 1;
}

/* The container's output log: timestamped lines, rotated at max bytes. */
struct clog {
    int fd;
    char path[PATH_MAX], old[PATH_MAX + 4];
    uint64_t size, max;
    char line[SHIM_LINE_MAX];
    size_t len;
};

static int clog_open(struct clog *l, bool truncate)
{
    l->fd =
        open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0640);
    if (l->fd < 0) return -1;
    struct stat st;
    l->size = fstat(l->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    return 0;
}

static void clog_emit(struct clog *l)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char rec[64 + SHIM_LINE_MAX];
    size_t n = strftime(rec, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(rec + n, 32, ".%09ldZ out ", ts.tv_nsec);
    memcpy(rec + n, l->line, l->len);
    n += l->len;
    rec[n++] = '\n';
    l->len = 0;
    if (l->size > 0 && l->size + n > l->max) {
        /* one old file is kept: log.1 is replaced */
        if (l->fd >= 0) close(l->fd);
        rename(l->path, l->old);
        if (clog_open(l, true) < 0) return;
    }
    if (l->fd < 0 && clog_open(l, false) < 0) return;
    if (fp_write_all(l->fd, rec, n) == 0) l->size += n;
}

static void clog_feed(struct clog *l, const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            clog_emit(l);
            continue;
        }
        l->line[l->len++] = buf[i];
        if (l->len == sizeof l->line) clog_emit(l);
    }
}

/* "key N" from a cgroup file like memory.events or memory.oom_control. */
static uint64_t cg_value(const char *dir, const char *file, const char *key)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    cleanup_fclose FILE *f = fopen(path, "re");
    if (!f) return 0;
    char name[64];
    unsigned long long v;
    size_t klen = strlen(key);
    if (!*key) return fscanf(f, "%llu", &v) == 1 ? v : 0;
    while (fscanf(f, "%63s %llu", name, &v) == 2)
        if (strlen(name) == klen && strcmp(name, key) == 0) return v;
    return 0;
}

static bool oom_killed(const char *memdir, bool v2, int sig)
{
    if (!memdir[0]) return false;
    uint64_t kills = cg_value(memdir, v2 ? "memory.events" : "memory.oom_control", "oom_kill");
    /* a SIGKILL while the cgroup hit its limit: an OOM kill the counter
     * missed (kernels without oom_kill in oom_control) */
    uint64_t hits =
        v2 ? cg_value(memdir, "memory.events", "max") : cg_value(memdir, "memory.failcnt", "");
    return kills > 0 || (sig == SIGKILL && hits > 0);
}

static int write_exit(const char *state_dir, int wstatus, bool oom, fp_error *err)
{
    int code, sig = 0;
    if (WIFSIGNALED(wstatus)) {
        sig = WTERMSIG(wstatus);
        code = 128 + sig;
    } else
        code = WEXITSTATUS(wstatus);
    json_t *j = json_pack("{s:i, s:i, s:b, s:I}", "exit_code", code, "signal", sig, "oom_killed",
                          oom, "finished", (json_int_t)time(NULL));
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text) return fp_error_set(err, ENOMEM, "exit record");
    char path[PATH_MAX];
    int rc = state_path(path, sizeof path, state_dir, "exit", err);
    if (rc == 0) rc = fp_write_file_atomic(path, text, strlen(text), 0640, err);
    free(text);
    return rc;
}

/* Copy output and wait for the container's init to end. */
static int supervise(const char *id, int outfd, int sigfd, pid_t cpid, struct clog *log)
{
    int wstatus = 0;
    bool exited = false;
    int64_t drain_until = 0;
    while (!exited || (outfd >= 0 && mono_ms() < drain_until)) {
        struct pollfd pfd[2] = {{.fd = sigfd, .events = POLLIN}, {.fd = outfd, .events = POLLIN}};
        int timeout = exited ? (int)(drain_until - mono_ms()) : -1;
        int pr = poll(pfd, outfd >= 0 ? 2 : 1, timeout < 0 && exited ? 0 : timeout);
        if (pr < 0 && errno != EINTR) break;
        if (pr <= 0) continue;
        if (pfd[0].revents) {
            struct signalfd_siginfo si;
            while (read(sigfd, &si, sizeof si) > 0) {
            }
            /* every orphan in our subtree is ours to reap now */
            int ws;
            pid_t p;
            while ((p = waitpid(-1, &ws, WNOHANG)) > 0)
                if (p == cpid) {
                    wstatus = ws;
                    exited = true;
                    drain_until = mono_ms() + SHIM_DRAIN_MS;
                }
            if (p < 0 && errno == ECHILD && !exited) {
                /* cannot happen while we are its subreaper; do not spin */
                diag(id, "the container's init is not our child", NULL);
                exited = true;
                wstatus = 255 << 8;
            }
        }
        if (outfd >= 0 && pfd[1].revents) {
            char buf[65536];
            ssize_t n = read(outfd, buf, sizeof buf);
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (n <= 0) {
                close(outfd);
                outfd = -1;
            } else
                clog_feed(log, buf, (size_t)n);
        }
    }
    if (log->len) clog_emit(log);
    if (outfd >= 0) close(outfd);
    return wstatus;
}

static int read_pid_file(const char *path, pid_t *pid, fp_error *err)
{
    char *text = NULL;
    if (fp_read_file(path, 64, &text, NULL, err) < 0) return -1;
    long v = strtol(text, NULL, 10);
    free(text);
    if (v <= 0 || v > INT_MAX) return fp_error_set(err, 0, "%s: no pid", path);
    *pid = (pid_t)v;
    return 0;
}

static int shim_run(struct shim_args *a)
{
    int status_fd = a->status_fd;
    fp_error err;
    if (chdir("/") < 0) return 1;
    umask(027);
    int nul = open("/dev/null", O_RDWR);
    if (nul >= 0) {
        dup2(nul, 0);
        dup2(nul, 1);
        if (nul > 2) close(nul);
    }
    /* keep stdio and the status pipe; everything else an invoker leaked goes */
    if (status_fd >= 0 && status_fd != SHIM_STATUS_FD) {
        if (dup2(status_fd, SHIM_STATUS_FD) < 0) return 1;
        close(status_fd);
        status_fd = SHIM_STATUS_FD;
    }
    close_range(SHIM_STATUS_FD + (status_fd >= 0 ? 1 : 0), ~0U, 0);
    if (status_fd >= 0) fcntl(status_fd, F_SETFD, FD_CLOEXEC);

    prctl(PR_SET_CHILD_SUBREAPER, 1);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    cleanup_close int sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sigfd < 0) {
        fp_error_set(&err, errno, "signalfd");
        return setup_failed(a->id, &status_fd, "setup", &err);
    }

    fp_runtime rt;
    char pid_file[PATH_MAX], rt_log[PATH_MAX], shim_pid[PATH_MAX];
    struct clog log = {.fd = -1, .max = a->log_max};
    if (fp_runtime_init(&rt, a->runtime, a->root, &err) < 0 ||
        state_path(pid_file, sizeof pid_file, a->state_dir, "container.pid", &err) < 0 ||
        state_path(rt_log, sizeof rt_log, a->state_dir, "runtime.log", &err) < 0 ||
        state_path(shim_pid, sizeof shim_pid, a->state_dir, "shim.pid", &err) < 0 ||
        state_path(log.path, sizeof log.path, a->state_dir, "log", &err) < 0 ||
        state_path(log.old, sizeof log.old, a->state_dir, "log.1", &err) < 0) {
        return setup_failed(a->id, &status_fd, "setup", &err);
    }
    if (fp_mkdir_p(a->state_dir, 0700, &err) < 0)
        return setup_failed(a->id, &status_fd, "state dir", &err);
    if (clog_open(&log, false) < 0) {
        fp_error_set(&err, errno, "open %s", log.path);
        return setup_failed(a->id, &status_fd, "log", &err);
    }

    /* one pipe for stdout and stderr: the container's init inherits it
     * from `create`, and every process it starts inherits it from init */
    int op[2];
    if (pipe2(op, O_CLOEXEC) < 0) {
        fp_error_set(&err, errno, "pipe");
        return setup_failed(a->id, &status_fd, "setup", &err);
    }
    int created = fp_runtime_create(&rt, a->id, a->bundle, pid_file, rt_log, op[1], &err);
    close(op[1]);
    pid_t cpid = 0;
    if (created == 0) created = read_pid_file(pid_file, &cpid, &err);
    if (created < 0) {
        /* the runtime's stderr went into the pipe: keep it in the log too */
        fcntl(op[0], F_SETFL, O_NONBLOCK);
        char buf[4096];
        ssize_t n;
        while ((n = read(op[0], buf, sizeof buf)) > 0)
            clog_feed(&log, buf, (size_t)n);
        if (log.len) clog_emit(&log);
        close(op[0]);
        fp_error derr;
        fp_runtime_delete(&rt, a->id, true, &derr);
        return setup_failed(a->id, &status_fd, "create", &err);
    }

    /* the memory cgroup, found while the init is alive: runc removes the
     * cgroup on delete, and the OOM counters must be read before that */
    fp_cgroup cg = {0};
    if (fp_cgroup_of_pid("/proc", cpid, &cg, &err) < 0)
        diag(a->id, "memory cgroup (OOM kills will not be detected)", &err);
    const char *memdir = cg.memory;
    bool v2 = cg.v2;

    if (fp_runtime_start(&rt, a->id, &err) < 0) {
        close(op[0]);
        fp_error derr;
        fp_runtime_delete(&rt, a->id, true, &derr);
        return setup_failed(a->id, &status_fd, "start", &err);
    }
    char pidtxt[32];
    snprintf(pidtxt, sizeof pidtxt, "%d\n", (int)getpid());
    if (fp_write_file_atomic(shim_pid, pidtxt, strlen(pidtxt), 0640, &err) < 0)
        diag(a->id, "shim.pid", &err);
    report(&status_fd, cpid, NULL);

    int wstatus = supervise(a->id, op[0], sigfd, cpid, &log);
    if (log.fd >= 0) close(log.fd);
    int sig = WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0;
    bool oom = oom_killed(memdir, v2, sig);
    /* delete before the exit record: when it appears, the id is free */
    if (fp_runtime_delete(&rt, a->id, true, &err) < 0) diag(a->id, "delete", &err);
    if (write_exit(a->state_dir, wstatus, oom, &err) < 0) diag(a->id, "exit record", &err);
    unlink(shim_pid);
    return 0;
}

int fp_shim_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"runtime", required_argument, NULL, 'r'},   {"root", required_argument, NULL, 'R'},
        {"id", required_argument, NULL, 'i'},        {"bundle", required_argument, NULL, 'b'},
        {"state-dir", required_argument, NULL, 's'}, {"log-max", required_argument, NULL, 'm'},
        {"status-fd", required_argument, NULL, 'f'}, {NULL, 0, NULL, 0},
    };
    struct shim_args a = {.log_max = FP_SHIM_LOG_MAX_DEFAULT, .status_fd = -1};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            a.runtime = optarg;
            break;
        case 'R':
            a.root = optarg;
            break;
        case 'i':
            a.id = optarg;
            break;
        case 'b':
            a.bundle = optarg;
            break;
        case 's':
            a.state_dir = optarg;
            break;
        case 'm':
            a.log_max = strtoull(optarg, NULL, 10);
            if (!a.log_max) a.log_max = FP_SHIM_LOG_MAX_DEFAULT;
            break;
        case 'f':
            a.status_fd = atoi(optarg);
            break;
        default:
            fprintf(stderr, "fogport shim: unknown option (internal command of the agent)\n");
            return 2;
        }
    }
    if (!a.runtime || !a.root || !a.id || !a.bundle || !a.state_dir || a.state_dir[0] != '/' ||
        a.bundle[0] != '/') {
        fprintf(stderr, "usage: fogport shim --runtime BIN --root DIR --id ID --bundle DIR "
                        "--state-dir DIR [--log-max BYTES] [--status-fd FD]\n"
                        "(started by the agent, one per container; paths absolute)\n");
        return 2;
    }
    /* a new session (when not started in one), then a fork whose parent
     * exits: the shim is nobody's session leader and nobody's child but
     * init's (or a subreaper's), so neither a terminal nor the agent's death
     * reaches it */
    setsid();
    pid_t p = fork();
    if (p < 0) {
        perror("fogport shim: fork");
        return 1;
    }
    if (p > 0) _exit(0);
    return shim_run(&a);
}
