/* The process's own metrics, named as the Prometheus client libraries name
 * them (process_cpu_seconds_total, process_resident_memory_bytes, ...), read
 * from /proc/self at each scrape. */
#ifndef FP_CORE_PROCMETRICS_H
#define FP_CORE_PROCMETRICS_H

#include "core/buf.h"

void fp_procmetrics_render(fp_buf *b);

#endif
