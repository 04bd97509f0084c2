/* runc / crun as commands. Each call is a posix_spawn of the binary with
 * only the descriptors it needs (the agent is a threaded server with open
 * sockets: closefrom(3) in the child), default signal dispositions and an
 * empty signal mask (the shim blocks SIGCHLD; a container must not inherit
 * that), and a deadline, so a hung runtime cannot hang the agent. */
#include "agent/runtime.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <linux/magic.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/fs.h"

extern char **environ;

/* How long one runtime command may take before it is killed. */
#define RT_DEADLINE_MS 60000
/* Most stdout kept (list: a few hundred bytes per container). */
#define RT_OUT_MAX (8u << 20)
/* Most stderr kept: the tail, where the runtime's error is. */
#define RT_ERR_MAX 4096

bool fp_runtime_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 128 || !isalnum((unsigned char)id[0])) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (!isalnum(c) && c != '_' && c != '.' && c != '-') return false;
    }
    return true;
}

static bool executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* Find name on PATH, then in the sbin directories a service's PATH often
 * lacks (Debian installs runc in /usr/sbin). */
static bool find_bin(const char *name, char *out, size_t outlen)
{
    if (strchr(name, '/')) {
        if (name[0] != '/' || !executable(name)) return false;
        return snprintf(out, outlen, "%s", name) < (int)outlen;
    }
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             path ? path : "");
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        if (d[0] != '/') continue; /* a relative PATH entry would depend on the cwd */
        if (snprintf(out, outlen, "%s/%s", d, name) >= (int)outlen) continue;
        if (executable(out)) return true;
    }
    return false;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int fp_runtime_init(fp_runtime *rt, const char *preferred, const char *state_root, fp_error *err)
{
    memset(rt, 0, sizeof *rt);
    struct statfs sfs;
    rt->cgroup2 = statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC;
    if (preferred && *preferred) {
        if (strchr(preferred, '/') == NULL && strcmp(preferred, "runc") != 0 &&
            strcmp(preferred, "crun") != 0)
            return fp_error_set(err, 0, "runtime \"%s\": expected runc or crun", preferred);
        if (!find_bin(preferred, rt->bin, sizeof rt->bin))
            return fp_error_set(err, 0, "runtime %s: not installed", preferred);
    } else {
        /* crun handles cgroup v2 natively and starts faster; runc is the
         * reference on cgroup v1 */
        bool found = (rt->cgroup2 && find_bin("crun", rt->bin, sizeof rt->bin)) ||
                     find_bin("runc", rt->bin, sizeof rt->bin) ||
                     find_bin("crun", rt->bin, sizeof rt->bin);
        if (!found) return fp_error_set(err, 0, "no OCI runtime found (install runc or crun)");
    }
    if (!state_root || !*state_root) return fp_error_set(err, 0, "runtime: no state root");
    if (fp_mkdir_p(state_root, 0700, err) < 0) return fp_error_prefix(err, "runtime state root");
    char real[PATH_MAX];
    if (!realpath(state_root, real)) return fp_error_set(err, errno, "%s", state_root);
    if (snprintf(rt->root, sizeof rt->root, "%s", real) >= (int)sizeof rt->root)
        return fp_error_set(err, ENAMETOOLONG, "%s", real);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Running the runtime                                                  */

struct rt_call {
    const char *log_file; /* --log FILE --log-format json (NULL: none) */
    int stdio_fd;         /* >= 0: the child's stdout and stderr, not captured */
    char *out;            /* captured stdout (malloc'd, NUL-terminated) */
    size_t out_len;
    char errtxt[RT_ERR_MAX + 1]; /* the tail of stderr */
    size_t err_len;
    int status; /* wait status */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void keep_tail(struct rt_call *c, const char *buf, size_t n)
{
    if (n >= RT_ERR_MAX) {
        memcpy(c->errtxt, buf + n - RT_ERR_MAX, RT_ERR_MAX);
        c->err_len = RT_ERR_MAX;
    } else {
        if (c->err_len + n > RT_ERR_MAX) {
            size_t drop = c->err_len + n - RT_ERR_MAX;
            memmove(c->errtxt, c->errtxt + drop, c->err_len - drop);
            c->err_len -= drop;
        }
        memcpy(c->errtxt + c->err_len, buf, n);
        c->err_len += n;
    }
    c->errtxt[c->err_len] = '\0';
}

static int append_out(struct rt_call *c, const char *buf, size_t n)
{
    if (c->out_len + n > RT_OUT_MAX) return -1;
    char *grown = realloc(c->out, c->out_len + n + 1);
    if (!grown) return -1;
    memcpy(grown + c->out_len, buf, n);
    c->out = grown;
    c->out_len += n;
    c->out[c->out_len] = '\0';
    return 0;
}

/* Spawn BIN --root ROOT [--log F --log-format json] args... and wait for
 * it, collecting its output. Returns 0 when it ran (c->status says how it
 * ended), -1 when it could not be run or overran its deadline. */
static int rt_exec(const fp_runtime *rt, const char *const *args, struct rt_call *c, fp_error *err)
{
    const char *argv[32];
    size_t n = 0;
    argv[n++] = rt->bin;
    argv[n++] = "--root";
    argv[n++] = rt->root;
    if (c->log_file) {
        argv[n++] = "--log";
        argv[n++] = c->log_file;
        argv[n++] = "--log-format";
        argv[n++] = "json";
    }
    for (size_t i = 0; args[i] && n < sizeof argv / sizeof argv[0] - 1; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    c->out = NULL;
    c->out_len = c->err_len = 0;
    c->errtxt[0] = '\0';
    c->status = 0;

    int outp[2] = {-1, -1}, errp[2] = {-1, -1};
    if (c->stdio_fd < 0 && (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)) {
        int e = errno;
        if (outp[0] >= 0) close(outp[0]), close(outp[1]);
        return fp_error_set(err, e, "pipe");
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, c->stdio_fd >= 0 ? c->stdio_fd : outp[1], 1);
    posix_spawn_file_actions_adddup2(&fa, c->stdio_fd >= 0 ? c->stdio_fd : errp[1], 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int rc = posix_spawn(&pid, rt->bin, &fa, &attr, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (outp[1] >= 0) close(outp[1]);
    if (errp[1] >= 0) close(errp[1]);
    if (rc != 0) {
        if (outp[0] >= 0) close(outp[0]), close(errp[0]);
        return fp_error_set(err, rc, "run %s", rt->bin);
    }

    int64_t deadline = now_ms() + RT_DEADLINE_MS;
    cleanup_close int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    bool exited = false, overflow = false;
    int fds[2] = {outp[0], errp[0]};
    while (fds[0] >= 0 || fds[1] >= 0 || !exited) {
        struct pollfd pfd[3];
        int np = 0;
        for (int i = 0; i < 2; i++)
            if (fds[i] >= 0) pfd[np++] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        if (!exited && pidfd >= 0) pfd[np++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
        if (np == 0) { /* no pidfd (old kernel): nothing left to watch but the exit */
            while (waitpid(pid, &c->status, 0) < 0 && errno == EINTR) {
            }
            exited = true;
            break;
        }
        int64_t left = deadline - now_ms();
        int pr = left > 0 ? poll(pfd, (nfds_t)np, (int)left) : 0;
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) {
            if (!exited) {
                kill(pid, SIGKILL);
                while (waitpid(pid, &c->status, 0) < 0 && errno == EINTR) {
                }
            }
            for (int i = 0; i < 2; i++)
                if (fds[i] >= 0) close(fds[i]);
            free(fp_steal_ptr(c->out));
            return fp_error_set(err, pr < 0 ? errno : ETIMEDOUT, "%s %s", base_name(rt->bin),
                                args[0]);
        }
        for (int k = 0; k < np; k++) {
            if (!pfd[k].revents) continue;
            if (pfd[k].fd == pidfd) {
                pid_t w = waitpid(pid, &c->status, WNOHANG);
                if (w == pid) exited = true;
                if (w < 0 && errno != EINTR) {
                    /* someone else reaped it (SIGCHLD ignored?): its status is lost */
                    for (int i = 0; i < 2; i++)
                        if (fds[i] >= 0) close(fds[i]);
                    free(fp_steal_ptr(c->out));
                    return fp_error_set(err, errno, "%s %s: exit status", base_name(rt->bin),
                                        args[0]);
                }
                continue;
            }
            char buf[8192];
            ssize_t r = read(pfd[k].fd, buf, sizeof buf);
            if (r < 0 && errno == EINTR) continue;
            int which = pfd[k].fd == fds[0] ? 0 : 1;
            if (r <= 0) {
                close(fds[which]);
                fds[which] = -1;
            } else if (which == 0) {
                if (c->out_len < RT_OUT_MAX && append_out(c, buf, (size_t)r) < 0) overflow = true;
            } else
                keep_tail(c, buf, (size_t)r);
        }
    }
    if (overflow) {
        free(fp_steal_ptr(c->out));
        return fp_error_set(err, EFBIG, "%s %s: output too large", base_name(rt->bin), args[0]);
    }
    return 0;
}

/* The runtime's message in a stderr tail: its last non-empty line, and of
 * a logrus line (time="..." level=error msg="...") just the msg. */
static void rt_message(const char *text, char *out, size_t outlen)
{
    out[0] = '\0';
    const char *end = text + strlen(text);
    while (end > text && isspace((unsigned char)end[-1]))
        end--;
    const char *start = end;
    while (start > text && start[-1] != '\n')
        start--;
    char line[RT_ERR_MAX + 1];
    size_t len = (size_t)(end - start);
    memcpy(line, start, len);
    line[len] = '\0';
    const char *m = strstr(line, "msg=\"");
    if (!m) {
        snprintf(out, outlen, "%s", line);
        return;
    }
    size_t o = 0;
    for (const char *p = m + 5; *p && *p != '"' && o + 1 < outlen; p++) {
        if (*p == '\\' && p[1]) p++;
        out[o++] = *p;
    }
    out[o] = '\0';
}

static int rt_fail(const fp_runtime *rt, const char *verb, const char *id, const struct rt_call *c,
                   fp_error *err)
{
    char msg[400];
    rt_message(c->errtxt, msg, sizeof msg);
    if (!msg[0]) {
        if (WIFSIGNALED(c->status))
            snprintf(msg, sizeof msg, "killed by signal %d", WTERMSIG(c->status));
        else
            snprintf(msg, sizeof msg, "exit status %d", WEXITSTATUS(c->status));
    }
    return fp_error_set(err, 0, "%s %s %s: %s", base_name(rt->bin), verb, id, msg);
}

static bool rt_ok(const struct rt_call *c)
{
    return WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0;
}

/* Both runtimes keep a container's state in ROOT/ID. */
static bool state_exists(const fp_runtime *rt, const char *id)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", rt->root, id);
    struct stat st;
    return !(lstat(path, &st) < 0 && errno == ENOENT);
}

/* After a failed call: is it because the container does not exist? */
static bool rt_missing(const fp_runtime *rt, const char *id, const struct rt_call *c)
{
    return !state_exists(rt, id) || strstr(c->errtxt, "does not exist") != NULL;
}

static int check_id(const char *id, fp_error *err)
{
    if (!id || !fp_runtime_id_valid(id))
        return fp_error_set(err, 0, "container id \"%s\" is not valid", id ? id : "");
    return 0;
}

static void state_from_json(const json_t *j, fp_container_state *st)
{
    memset(st, 0, sizeof *st);
    const json_t *s = json_object_get(j, "status");
    if (json_is_string(s)) snprintf(st->status, sizeof st->status, "%s", json_string_value(s));
    const json_t *p = json_object_get(j, "pid");
    if (json_is_integer(p) && json_integer_value(p) > 0 && json_integer_value(p) < INT32_MAX)
        st->pid = (pid_t)json_integer_value(p);
}

int fp_runtime_state(const fp_runtime *rt, const char *id, fp_container_state *st, fp_error *err)
{
    memset(st, 0, sizeof *st);
    if (check_id(id, err) < 0) return -1;
    struct rt_call c = {.stdio_fd = -1};
    if (rt_exec(rt, (const char *[]){"state", id, NULL}, &c, err) < 0) return -1;
    cleanup_free char *out = c.out;
    if (!rt_ok(&c)) return rt_missing(rt, id, &c) ? 1 : rt_fail(rt, "state", id, &c, err);
    json_error_t je;
    json_t *j = json_loads(out ? out : "", 0, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return fp_error_set(err, 0, "%s state %s: unreadable output (%s)", base_name(rt->bin), id,
                            je.text);
    }
    state_from_json(j, st);
    json_decref(j);
    return 0;
}

static int kill_args(const fp_runtime *rt, const char *id, int sig, bool all, fp_error *err)
{
    if (check_id(id, err) < 0) return -1;
    char signum[16];
    snprintf(signum, sizeof signum, "%d", sig);
    struct rt_call c = {.stdio_fd = -1};
    const char *args[] = {"kill", all ? "--all" : id, all ? id : signum, all ? signum : NULL, NULL};
    if (rt_exec(rt, args, &c, err) < 0) return -1;
    free(c.out);
    if (!rt_ok(&c)) return rt_missing(rt, id, &c) ? 1 : rt_fail(rt, "kill", id, &c, err);
    return 0;
}

int fp_runtime_kill(const fp_runtime *rt, const char *id, int sig, fp_error *err)
{
    return kill_args(rt, id, sig, false, err);
}

int fp_runtime_delete(const fp_runtime *rt, const char *id, bool force, fp_error *err)
{
    if (check_id(id, err) < 0) return -1;
    /* delete --force succeeds for a missing container: say so first */
    if (!state_exists(rt, id)) return 1;
    struct rt_call c = {.stdio_fd = -1};
    const char *args[] = {"delete", force ? "--force" : id, force ? id : NULL, NULL};
    if (rt_exec(rt, args, &c, err) < 0) return -1;
    free(c.out);
    if (!rt_ok(&c)) return rt_missing(rt, id, &c) ? 1 : rt_fail(rt, "delete", id, &c, err);
    return 0;
}

int fp_runtime_list(const fp_runtime *rt, fp_runtime_list_cb cb, void *ctx, fp_error *err)
{
    struct rt_call c = {.stdio_fd = -1};
    if (rt_exec(rt, (const char *[]){"list", "--format", "json", NULL}, &c, err) < 0) return -1;
    cleanup_free char *out = c.out;
    if (!rt_ok(&c)) return rt_fail(rt, "list", rt->root, &c, err);
    json_error_t je;
    json_t *j = json_loads(out ? out : "", JSON_DECODE_ANY, &je);
    if (!j)
        return fp_error_set(err, 0, "%s list: unreadable output (%s)", base_name(rt->bin), je.text);
    int rc = 0;
    if (json_is_array(j)) { /* runc prints null for none */
        size_t i;
        json_t *it;
        json_array_foreach(j, i, it)
        {
            const json_t *jid = json_object_get(it, "id");
            if (!json_is_string(jid)) continue;
            fp_container_state st;
            state_from_json(it, &st);
            rc = cb(ctx, json_string_value(jid), &st);
            if (rc) break;
        }
    } else if (!json_is_null(j))
        rc = fp_error_set(err, 0, "%s list: expected a JSON array", base_name(rt->bin));
    json_decref(j);
    return rc;
}

/* 1 when the container is stopped or gone, 0 while it runs. */
static int stopped(const fp_runtime *rt, const char *id, fp_error *err)
{
    fp_container_state st;
    int r = fp_runtime_state(rt, id, &st, err);
    if (r < 0) return -1;
    return r == 1 || strcmp(st.status, "stopped") == 0;
}

static int wait_stopped(const fp_runtime *rt, const char *id, int64_t ms, fp_error *err)
{
    int64_t deadline = now_ms() + ms;
    for (;;) {
        int r = stopped(rt, id, err);
        if (r != 0) return r;
        if (now_ms() >= deadline) return 0;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int fp_runtime_stop(const fp_runtime *rt, const char *id, unsigned grace_s, fp_error *err)
{
    int r = stopped(rt, id, err);
    if (r != 0) return r < 0 ? -1 : 0;
    /* a kill that fails because the container just ended is not a failure */
    if (fp_runtime_kill(rt, id, SIGTERM, err) < 0 && stopped(rt, id, err) == 0) return -1;
    r = wait_stopped(rt, id, (int64_t)grace_s * 1000, err);
    if (r != 0) return r < 0 ? -1 : 0;
    if (kill_args(rt, id, SIGKILL, true, err) < 0 && stopped(rt, id, err) == 0) return -1;
    r = wait_stopped(rt, id, 10000, err);
    if (r != 0) return r < 0 ? -1 : 0;
    return fp_error_set(err, 0, "container %s did not stop after SIGKILL", id);
}

/* The message of the runtime's last error in its JSON log (runc and crun
 * both write {"level":"error","msg":"..."} lines). */
static void log_error(const char *log_file, char *out, size_t outlen)
{
    out[0] = '\0';
    cleanup_fclose FILE *f = fopen(log_file, "re");
    if (!f) return;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *j = json_loads(line, 0, NULL);
        const json_t *lvl = json_object_get(j, "level");
        const json_t *msg = json_object_get(j, "msg");
        if (json_is_string(msg) &&
            (!json_is_string(lvl) || strcmp(json_string_value(lvl), "error") == 0 ||
             strcmp(json_string_value(lvl), "fatal") == 0))
            snprintf(out, outlen, "%s", json_string_value(msg));
        json_decref(j);
    }
    free(line);
}

int fp_runtime_create(const fp_runtime *rt, const char *id, const char *bundle,
                      const char *pid_file, const char *log_file, int stdio_fd, fp_error *err)
{
    if (check_id(id, err) < 0) return -1;
    if (log_file) unlink(log_file); /* only this call's messages */
    struct rt_call c = {.stdio_fd = stdio_fd, .log_file = log_file};
    const char *args[] = {"create", "--bundle", bundle, "--pid-file", pid_file, id, NULL};
    if (rt_exec(rt, args, &c, err) < 0) return -1;
    free(c.out);
    if (rt_ok(&c)) return 0;
    if (log_file) log_error(log_file, c.errtxt, sizeof c.errtxt);
    return rt_fail(rt, "create", id, &c, err);
}

int fp_runtime_start(const fp_runtime *rt, const char *id, fp_error *err)
{
    if (check_id(id, err) < 0) return -1;
    struct rt_call c = {.stdio_fd = -1};
    if (rt_exec(rt, (const char *[]){"start", id, NULL}, &c, err) < 0) return -1;
    free(c.out);
    if (!rt_ok(&c)) return rt_fail(rt, "start", id, &c, err);
    return 0;
}
