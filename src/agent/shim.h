/* The shim: one small process per container (like conmon or
 * containerd-shim) that owns the container's stdio and exit status, so the
 * agent can crash, be killed or be upgraded without its containers dying
 * or their output being lost. The shim is `fogport shim ...`, detached from
 * the agent (its own session, reparented away from the agent); it creates
 * and starts the container, copies its output into a bounded log, reaps it
 * (as a child subreaper), records how it ended and deletes it.
 *
 * Files in the state directory:
 *   shim.pid       the shim's pid, while it runs
 *   shim.log       the shim's own diagnostics (its stderr)
 *   runtime.log    the runtime's JSON log of create
 *   container.pid  the container init's host pid
 *   log, log.1     container output, "RFC3339-UTC out LINE" per line,
 *                  rotated at log_max bytes (one old file kept)
 *   exit           how the container ended (JSON), written once it has been
 *                  deleted, so the id is free again when this file appears */
#ifndef FP_AGENT_SHIM_H
#define FP_AGENT_SHIM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "agent/runtime.h"
#include "core/error.h"

#define FP_SHIM_LOG_MAX_DEFAULT (10u << 20)

typedef struct fp_shim_opts {
    const char *self_exe;  /* path to the fogport binary (/proc/self/exe resolved) */
    const fp_runtime *rt;  /* the runtime and its state root */
    const char *id;        /* container id */
    const char *bundle;    /* bundle dir with config.json */
    const char *state_dir; /* where the shim writes (created 0700) */
    uint64_t log_max;      /* bytes per log file before rotating (0: the default) */
} fp_shim_opts;

/* Start the shim detached, which creates and starts the container; return
 * once the container runs (*container_pid: its init on the host) or failed
 * to start (err says why, from the runtime). A previous exit record in
 * state_dir is removed first. */
int fp_shim_start(const fp_shim_opts *o, pid_t *container_pid, fp_error *err);

typedef struct fp_shim_exit {
    int exit_code;   /* the exit status, or 128 + signal */
    int signal;      /* the signal that ended it, 0 for a normal exit */
    bool oom_killed; /* the memory cgroup recorded an OOM kill */
    time_t finished; /* when the shim reaped it (Unix seconds) */
} fp_shim_exit;

/* Read the exit record; returns 1 when the container has not ended yet. */
int fp_shim_exit_read(const char *state_dir, fp_shim_exit *ex, fp_error *err);

/* The shim process: `fogport shim --runtime BIN --root DIR --id ID --bundle
 * DIR --state-dir DIR [--log-max N] [--status-fd FD]` (argv[0] is "shim").
 * Reports {"pid":N} or {"error":"..."} on the status descriptor. */
int fp_shim_main(int argc, char **argv);

#endif
