/* The cloud's desired state: the service definitions the operator wrote
 * (`fogport service create`) and, for every node, the instances its agent
 * last reported (state, image digest, endpoint, usage). The controller
 * API (registry/h_services.c) serves both; agents fetch the definitions
 * placed on them and report back with their heartbeat. Lives in
 * DATA/control.db on the cloud. */
#ifndef FP_CONTROL_SERVICES_H
#define FP_CONTROL_SERVICES_H

#include <jansson.h>
#include <stdbool.h>
#include <time.h>

#include "agent/spec.h"
#include "control/placement.h"
#include "core/error.h"

typedef struct fp_services fp_services;

int fp_services_open(fp_services **out, const char *data_dir, fp_error *err);

/* What control.db keeps: at most violations_max violations (the newest;
 * checked as each is recorded), none older than violations_age_s, and a
 * node's reported instances only while it reported within
 * instances_age_s (0: no such limit). */
typedef struct fp_services_limits {
    unsigned violations_max, violations_age_s, instances_age_s;
} fp_services_limits;
void fp_services_set_limits(fp_services *sv, const fp_services_limits *limits);
/* Drop what is older than the limits (from the cloud's tick); the number
 * of rows removed, or -1. */
int fp_services_prune(fp_services *sv, time_t now, fp_error *err);
void fp_services_close(fp_services *sv);

/* Create or replace the definition named s->name; *replaced tells which.
 * A replaced definition is placed afresh unless keep_placements (an update
 * that changed no placement field). */
int fp_services_put(fp_services *sv, const fp_service *s, bool keep_placements, bool *replaced,
                    fp_error *err);
/* 0, or 1 when there is no such service. Its reported instances go too. */
int fp_services_delete(fp_services *sv, const char *name, fp_error *err);
/* Every definition, by name: a JSON array of fp_service_to_json objects
 * each with "created" and "updated" (caller decrefs). */
int fp_services_list(fp_services *sv, json_t **out, fp_error *err);
/* One definition (as in the list); 1 when there is none. */
int fp_services_get(fp_services *sv, const char *name, json_t **out, fp_error *err);

/* Does the definition place the service on node id of role? (Its own
 * fields only: see fp_service_placed.) */
bool fp_service_placed_on(const json_t *def, const char *id, const char *role);

/* The placement facts of a definition (pointers into def). */
void fp_service_place_of(const json_t *def, fp_place_service *out);
/* Is the service placed on node id of role: for a dynamic definition
 * (placement.h) by the controller's placements (fp_services_placements),
 * else by its fields. */
bool fp_service_placed(const json_t *placements, const json_t *def, const char *id,
                       const char *role);
/* The controller's placements: an object service -> [node ids], oldest
 * placement first. Creating or replacing a definition forgets its own. */
int fp_services_placements(fp_services *sv, json_t **out, fp_error *err);
/* Replace them all (same shape); a placement that stays keeps its age. */
int fp_services_set_placements(fp_services *sv, const json_t *placements, fp_error *err);

/* Node's agent reports its instances (a JSON array of objects with at
 * least "service"): replaces what that node reported before. */
int fp_services_report(fp_services *sv, const char *node, const json_t *instances, fp_error *err);
/* Every reported instance: objects as reported plus "node" and
 * "reported" (time), by service then node. */
int fp_services_instances(fp_services *sv, json_t **out, fp_error *err);

/* Policy violations (agent/enforce.h), as agents report them with every
 * heartbeat until the instance is replaced, or as the cloud refused a
 * definition (node "cloud"). record is the violation object with its
 * "id", unique per node and service. Returns 0 when it is new, 1 when it
 * was recorded before (the heartbeat repeats it). */
int fp_services_violation(fp_services *sv, const char *node, const char *service,
                          const json_t *record, fp_error *err);
/* The most recent violations (of service, when not NULL), oldest first:
 * each the record plus "seq", "node", "service" and "recorded" (time). */
#define FP_VIOLATIONS_MAX 1000
int fp_services_violations(fp_services *sv, const char *service, json_t **out, fp_error *err);

#endif
