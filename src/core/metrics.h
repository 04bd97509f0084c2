/* Metrics in the Prometheus text exposition format (version 0.0.4): the
 * counters and histograms the hot path updates (atomics, no lock: many
 * request threads bump them at once), and the rendering of a scrape.
 * Names follow Prometheus conventions: counters end in _total, units are
 * in the name (_bytes, _seconds). Label values are escaped here, but
 * callers must only pass bounded values (route families, node and service
 * names), never raw paths or secrets. */
#ifndef FP_CORE_METRICS_H
#define FP_CORE_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef struct fp_label {
    const char *name, *value;
} fp_label;

#define FP_HISTOGRAM_MAX_BUCKETS 16

/* Observations in buckets by upper bound (non-cumulative counts; the last
 * slot is above every bound). The sum is kept in millionths so that it is
 * one atomic integer. Zero-initialise, then set bounds/nbounds. */
typedef struct fp_histogram {
    const double *bounds; /* ascending, finite */
    size_t nbounds;       /* <= FP_HISTOGRAM_MAX_BUCKETS */
    atomic_uint_fast64_t bucket[FP_HISTOGRAM_MAX_BUCKETS + 1];
    atomic_uint_fast64_t sum_micro;
} fp_histogram;

void fp_histogram_observe(fp_histogram *h, double v);

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void fp_metrics_family(fp_buf *b, const char *name, const char *type, const char *help);
/* One sample line: name{labels} value. */
void fp_metrics_sample(fp_buf *b, const char *name, const fp_label *labels, size_t nlabels,
                       double value);
/* The same with an exact integer value. */
void fp_metrics_sample_u64(fp_buf *b, const char *name, const fp_label *labels, size_t nlabels,
                           uint64_t value);
/* A histogram's samples: name_bucket{labels,le} cumulative up to le="+Inf",
 * name_sum and name_count (equal to the +Inf bucket). */
void fp_metrics_histogram(fp_buf *b, const char *name, const fp_label *labels, size_t nlabels,
                          const fp_histogram *h);

/* The content type of a scrape. */
#define FP_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
