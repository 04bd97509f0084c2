/* The pull-through counters: bumped by request threads and fetch threads
 * alike, so plain atomics. */
#include "federation/fed_internal.h"

void fp_fed_count(fp_federation *f, enum fp_fed_kind kind, enum fp_fed_source src)
{
    if (!f || kind >= FP_FED_NKINDS || src >= FP_FED_NSOURCES) return;
    atomic_fetch_add_explicit(&f->pulled[kind][src], 1, memory_order_relaxed);
}

uint64_t fp_fed_counted(fp_federation *f, enum fp_fed_kind kind, enum fp_fed_source src)
{
    if (!f || kind >= FP_FED_NKINDS || src >= FP_FED_NSOURCES) return 0;
    return atomic_load_explicit(&f->pulled[kind][src], memory_order_relaxed);
}

const char *fp_fed_kind_name(enum fp_fed_kind kind)
{
    return kind == FP_FED_MANIFEST ? "manifest" : "blob";
}

const char *fp_fed_source_name(enum fp_fed_source src)
{
    static const char *const names[FP_FED_NSOURCES] = {"local", "owner", "peer", "parent", "none"};
    return src < FP_FED_NSOURCES ? names[src] : "none";
}
