/* Layer unpacking in a child process: `fogport unpack-layer`, run by the
 * agent for every layer it unpacks. The archive parser (libarchive) reads
 * untrusted bytes; in a child it does so in an address space of its own,
 * and its code, buffers and decompression windows never become part of the
 * long-lived agent (an edge's whole process has 8 MiB; docs/benchmarks.md,
 * "Agent"). */
#ifndef FP_AGENT_UNPACK_PROC_H
#define FP_AGENT_UNPACK_PROC_H

#include "agent/unpack.h"
#include "core/error.h"

/* fp_layer_unpack, run as `helper unpack-layer ...`: the same result, the
 * same stats and error message. */
int fp_layer_unpack_child(const char *helper, const char *blob_path, const char *dir,
                          const fp_unpack_limits *lim, fp_unpack_stats *st, fp_error *err);

/* The child's side: `fogport unpack-layer BLOB DIR [--max-bytes N]
 * [--max-entries N] [--allow-setuid]`; writes one line, "ok ENTRIES BYTES
 * WHITEOUTS STRIPPED" or "error MESSAGE", to stdout. The exit status. */
int fp_layer_unpack_main(int argc, char **argv);

#endif
