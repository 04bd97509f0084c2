#include "core/metrics.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void fp_histogram_observe(fp_histogram *h, double v)
{
    size_t i = 0;
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    if (v > 0)
        atomic_fetch_add_explicit(&h->sum_micro, (uint64_t)(v * 1e6 + 0.5), memory_order_relaxed);
}

/* HELP text escapes backslash and newline; label values also the quote. */
static void escape(fp_buf *b, const char *s, int quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            fp_buf_puts(b, "\\\\");
        else if (*s == '\n')
            fp_buf_puts(b, "\\n");
        else if (*s == '"' && quote)
            fp_buf_puts(b, "\\\"");
        else
            fp_buf_append(b, s, 1);
    }
}

void fp_metrics_family(fp_buf *b, const char *name, const char *type, const char *help)
{
    fp_buf_printf(b, "# HELP %s ", name);
    escape(b, help, 0);
    fp_buf_printf(b, "\n# TYPE %s %s\n", name, type);
}

static void head(fp_buf *b, const char *name, const char *suffix, const fp_label *labels,
                 size_t nlabels, const char *le)
{
    fp_buf_puts(b, name);
    fp_buf_puts(b, suffix);
    if (!nlabels && !le) {
        fp_buf_puts(b, " ");
        return;
    }
    fp_buf_puts(b, "{");
    for (size_t i = 0; i < nlabels; i++) {
        fp_buf_printf(b, "%s%s=\"", i ? "," : "", labels[i].name);
        escape(b, labels[i].value ? labels[i].value : "", 1);
        fp_buf_puts(b, "\"");
    }
    if (le) fp_buf_printf(b, "%sle=\"%s\"", nlabels ? "," : "", le);
    fp_buf_puts(b, "} ");
}

static void value(fp_buf *b, double v)
{
    if (isnan(v))
        fp_buf_puts(b, "NaN\n");
    else if (isinf(v))
        fp_buf_puts(b, v > 0 ? "+Inf\n" : "-Inf\n");
    else
        fp_buf_printf(b, "%.15g\n", v);
}

void fp_metrics_sample(fp_buf *b, const char *name, const fp_label *labels, size_t nlabels,
                       double v)
{
    head(b, name, "", labels, nlabels, NULL);
    value(b, v);
}

void fp_metrics_sample_u64(fp_buf *b, const char *name, const fp_label *labels, size_t nlabels,
                           uint64_t v)
{
    head(b, name, "", labels, nlabels, NULL);
    fp_buf_printf(b, "%llu\n", (unsigned long long)v);
}

void fp_metrics_histogram(fp_buf *b, const char *name, const fp_label *labels, size_t nlabels,
                          const fp_histogram *h)
{
    /* _count is the +Inf bucket's sum, read once: a scrape racing an
     * observation stays consistent */
    uint64_t cum = 0;
    for (size_t i = 0; i <= h->nbounds; i++) {
        cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        char le[32];
        if (i < h->nbounds)
            snprintf(le, sizeof le, "%.15g", h->bounds[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        head(b, name, "_bucket", labels, nlabels, le);
        fp_buf_printf(b, "%llu\n", (unsigned long long)cum);
    }
    head(b, name, "_sum", labels, nlabels, NULL);
    value(b, (double)atomic_load_explicit(&h->sum_micro, memory_order_relaxed) / 1e6);
    head(b, name, "_count", labels, nlabels, NULL);
    fp_buf_printf(b, "%llu\n", (unsigned long long)cum);
}
