/* The processes a sandbox started (nodes, etcd members), stopped by pid.
 * A pid from a file may have been reused since, so each is checked by its
 * command line before every signal. */
#ifndef FP_CLI_SANDBOX_PROC_H
#define FP_CLI_SANDBOX_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* pid's command line, its arguments joined by spaces; false when the
 * process is gone. */
bool fp_sbproc_cmdline(pid_t pid, char *out, size_t len);

/* SIGTERM every pid that ours() accepts, wait up to grace_ms for them to
 * exit (reaping our own children), then SIGKILL what is left. Returns how
 * many were signalled. */
size_t fp_sbproc_stop(const pid_t *pids, size_t n, bool (*ours)(pid_t), unsigned grace_ms);

#endif
