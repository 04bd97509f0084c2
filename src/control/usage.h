/* Live monitoring at the cloud: the usage history of every instance and
 * the events seen in agents' reports.
 *
 * History: every heartbeat's instances append one sample each (time, node,
 * service, state, cpu, memory, pids, restarts, OOM kills) to a table of
 * DATA/control.db. It stays bounded: samples of the last hour are kept as
 * they came; older ones are folded into one-minute averages, kept for a
 * day (fp_usage_prune, from the cloud's tick).
 *
 * Events: an instance's state changes between two reports (started,
 * exited, failed, backoff, ...), an OOM kill, an instance a node no longer
 * reports, kept in a bounded in-memory ring of the most recent ones, each
 * with an increasing id a reader resumes after. */
#ifndef FP_CONTROL_USAGE_H
#define FP_CONTROL_USAGE_H

#include <jansson.h>
#include <stdint.h>
#include <time.h>

#include "core/error.h"

typedef struct fp_usage fp_usage;

/* Samples younger than this stay at full resolution. */
#define FP_USAGE_FULL_S 3600
/* Older samples become averages over buckets this long... */
#define FP_USAGE_BUCKET_S 60
/* ...and are dropped after this. */
#define FP_USAGE_KEEP_S (24 * 3600)
/* Most samples one query answers. */
#define FP_USAGE_QUERY_MAX 3600
/* Events the ring keeps. */
#define FP_USAGE_EVENTS_MAX 1024

int fp_usage_open(fp_usage **out, const char *data_dir, fp_error *err);
void fp_usage_close(fp_usage *u);

/* Node reported its instances (the heartbeat's array) at time now: one
 * sample each, and an event for every change since its previous report.
 * Returns the number of events added, or -1. */
int fp_usage_record(fp_usage *u, const char *node, const json_t *instances, time_t now,
                    fp_error *err);

/* An event the controller made rather than an agent reported: "handover"
 * (the service was placed on node, taken from the dead node from), with
 * state "placed". Returns its id. */
uint64_t fp_usage_event(fp_usage *u, time_t now, const char *node, const char *service,
                        const char *event, const char *from);

typedef struct fp_usage_filter {
    const char *service; /* NULL: every service */
    const char *node;    /* NULL: every node */
    int64_t since;       /* samples at or after this time (0: any) */
    size_t limit;        /* the newest this many (0 or more than the max: the max) */
} fp_usage_filter;

/* Samples matching f, oldest first: a JSON array of objects {t, node,
 * service, state, cpu, memory, memory_limit, pids, restarts, oom_kills,
 * period} where period is 1 for a sample as reported and the bucket
 * length for an average (caller decrefs). */
int fp_usage_query(fp_usage *u, const fp_usage_filter *f, json_t **out, fp_error *err);

/* Fold samples older than an hour into one-minute averages and drop
 * averages older than a day; only whole minutes are folded, so a bucket is
 * folded once. Cheap when there is nothing to do. */
int fp_usage_prune(fp_usage *u, time_t now, fp_error *err);

/* Events with an id above after (of service, when not NULL), oldest first,
 * at most max: a JSON array of {id, time, node, service, event, state,
 * from, restarts, oom_kills, exit_code}. *last (may be NULL) gets the
 * last id looked at (at least after): the next call's after. */
json_t *fp_usage_events(fp_usage *u, uint64_t after, const char *service, size_t max,
                        uint64_t *last);

#endif
