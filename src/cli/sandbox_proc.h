/* The processes a sandbox starts (nodes, etcd members): started detached,
 * stopped by pid. A pid from a file may have been reused since, so each is
 * checked by its command line before every signal. */
#ifndef FP_CLI_SANDBOX_PROC_H
#define FP_CLI_SANDBOX_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Start file (searched in PATH when it has no slash) with argv, detached:
 * in its own session, stdin from /dev/null, stdout and stderr appended to
 * log, in network namespace ns when not NULL. When it cannot be started the
 * child writes why to log, followed by hint when not NULL. Returns the
 * child's pid, -1 when fork fails. */
pid_t fp_sbproc_spawn(const char *file, char *const argv[], const char *log, const char *ns,
                      const char *hint);

/* pid's command line, its arguments joined by spaces; false when the
 * process is gone. */
bool fp_sbproc_cmdline(pid_t pid, char *out, size_t len);

/* SIGTERM every pid that ours() accepts, wait up to grace_ms for them to
 * exit (reaping our own children), then SIGKILL what is left. Returns how
 * many were signalled. */
size_t fp_sbproc_stop(const pid_t *pids, size_t n, bool (*ours)(pid_t), unsigned grace_ms);

#endif
