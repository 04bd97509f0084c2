#include "agent/unpack_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/range.h"

extern char **environ;

int fp_layer_unpack_child(const char *helper, const char *blob_path, const char *dir,
                          const fp_unpack_limits *lim, fp_unpack_stats *st, fp_error *err)
{
    char max_bytes[32], max_entries[32];
    snprintf(max_bytes, sizeof max_bytes, "%" PRIu64, lim ? lim->max_bytes : 0);
    snprintf(max_entries, sizeof max_entries, "%" PRIu64, lim ? lim->max_entries : 0);
    char *argv[] = {"fogport",
                    "unpack-layer",
                    (char *)blob_path,
                    (char *)dir,
                    "--max-bytes",
                    max_bytes,
                    "--max-entries",
                    max_entries,
                    lim && lim->allow_setuid ? "--allow-setuid" : NULL,
                    NULL};
    int out[2];
    if (pipe2(out, O_CLOEXEC) < 0) return fp_error_set(err, errno, "pipe for unpack-layer");
    /* the child gets the pipe as its output and nothing else of ours */
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
    /* the agent's threads block signals; the child starts with none blocked */
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
    pid_t pid;
    int rc = posix_spawn(&pid, helper, &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(out[1]);
    if (rc != 0) {
        close(out[0]);
        return fp_error_set(err, rc, "run %s unpack-layer", helper);
    }
    fp_buf line = FP_BUF_INIT;
    char chunk[512];
    for (;;) {
        ssize_t n = read(out[0], chunk, sizeof chunk);
        if (n > 0 && line.len < 4096) fp_buf_append(&line, chunk, (size_t)n);
        if (n == 0 || (n < 0 && errno != EINTR)) break;
    }
    close(out[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    fp_unpack_stats got = {0};
    const char *text = line.data ? line.data : "";
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
        sscanf(text, "ok %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64, &got.entries, &got.bytes,
               &got.whiteouts, &got.stripped_setuid) == 4) {
        if (st) *st = got;
        fp_buf_free(&line);
        return 0;
    }
    if (!strncmp(text, "error ", 6)) {
        size_t l = strcspn(text + 6, "\n");
        fp_error_set(err, 0, "%.*s", (int)l, text + 6);
    } else if (WIFSIGNALED(status)) {
        fp_error_set(err, 0, "unpack-layer killed by signal %d", WTERMSIG(status));
    } else {
        fp_error_set(err, 0, "unpack-layer failed (exit %d)",
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    fp_buf_free(&line);
    return -1;
}

int fp_layer_unpack_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"max-bytes", required_argument, NULL, 'b'},
        {"max-entries", required_argument, NULL, 'e'},
        {"allow-setuid", no_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    static const char usage[] =
        "usage: fogport unpack-layer BLOB DIR [--max-bytes N] [--max-entries N] [--allow-setuid]";
    fp_unpack_limits lim = {0};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if ((c == 'b' && fp_parse_u64(optarg, &lim.max_bytes) < 0) ||
            (c == 'e' && fp_parse_u64(optarg, &lim.max_entries) < 0) || c == '?') {
            printf("error %s\n", usage);
            return 2;
        }
        if (c == 's') lim.allow_setuid = true;
    }
    if (argc - optind != 2) {
        printf("error %s\n", usage);
        return 2;
    }
    fp_unpack_stats st;
    fp_error err;
    if (fp_layer_unpack(argv[optind], argv[optind + 1], &lim, &st, &err) < 0) {
        printf("error %s\n", err.msg);
        return 1;
    }
    printf("ok %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", st.entries, st.bytes,
           st.whiteouts, st.stripped_setuid);
    return 0;
}
