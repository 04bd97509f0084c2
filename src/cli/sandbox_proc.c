#include "cli/sandbox_proc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

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
