#include "cli/sandbox_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/sandbox_net.h"

pid_t fp_sbproc_spawn(const char *file, char *const argv[], const char *log, const char *ns,
                      const char *hint)
{
    pid_t pid = fork();
    if (pid != 0) return pid;
    /* its own session: it outlives the shell that ran `sandbox up` */
    setsid();
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
    }
    if (null >= 0) dup2(null, STDIN_FILENO);
    if (ns && fp_sbnet_enter(ns) < 0) {
        fprintf(stderr, "fogport: enter network namespace %s: %s\n", ns, strerror(errno));
        _exit(127);
    }
    execvp(file, argv);
    if (hint)
        fprintf(stderr, "fogport: %s: %s (%s)\n", file, strerror(errno), hint);
    else
        fprintf(stderr, "fogport: %s: %s\n", file, strerror(errno));
    _exit(127);
}

bool fp_sbproc_cmdline(pid_t pid, char *out, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    out[0] = '\0';
    FILE *f = fopen(path, "re");
    if (!f) return false;
    size_t n = fread(out, 1, len - 1, f);
    fclose(f);
    out[n] = '\0';
    while (n > 0 && out[n - 1] == '\0')
        n--;
    for (size_t i = 0; i < n; i++)
        if (!out[i]) out[i] = ' ';
    return n > 0;
}

size_t fp_sbproc_stop(const pid_t *pids, size_t n, bool (*ours)(pid_t), unsigned grace_ms)
{
    pid_t *left = calloc(n ? n : 1, sizeof *left);
    if (!left) return 0;
    size_t signalled = 0;
    for (size_t i = 0; i < n; i++)
        if (pids[i] > 1 && ours(pids[i]) && kill(pids[i], SIGTERM) == 0)
            left[signalled++] = pids[i];
    for (unsigned waited = 0; waited < grace_ms; waited += 50) {
        bool alive = false;
        for (size_t k = 0; k < signalled; k++) {
            waitpid(left[k], NULL, WNOHANG);
            if (left[k] && kill(left[k], 0) == 0 && ours(left[k]))
                alive = true;
            else
                left[k] = 0;
        }
        if (!alive) break;
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
    for (size_t k = 0; k < signalled; k++)
        if (left[k] && ours(left[k])) kill(left[k], SIGKILL);
    free(left);
    return signalled;
}
