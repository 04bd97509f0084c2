/* Internal to src/registry: one HTTP request as the handlers see it, and the
 * helpers that build responses. Every response goes through fp_respond, which
 * adds the headers every registry response carries. */
#ifndef FP_REGISTRY_REQUEST_H
#define FP_REGISTRY_REQUEST_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/error.h"
#include "auth/access.h"
#include "registry/authz.h"
#include "federation/federation.h"
#include "registry/route.h"
#include "store/store.h"

struct fp_registry {
    struct MHD_Daemon *daemon;
    struct fp_tls_front *tls; /* terminates TLS when [tls] cert is set, or NULL */
    const fp_config *cfg;
    fp_store *store;
    struct fp_authz *authz;
    fp_federation *fed;               /* pull-through from other nodes, or NULL */
    struct fp_directory *dir;         /* the cloud's node directory, or NULL */
    struct fp_replication *repl;      /* the cloud's replication rules, or NULL */
    struct fp_services *services;     /* the cloud's service definitions, or NULL */
    struct fp_usage *usage;           /* the cloud's usage history and events, or NULL */
    struct fp_event_streams *streams; /* open GET /api/v1/events?follow=1 */
    struct fp_audit *audit;           /* the cloud's audit trail, or NULL */
    struct fp_agent *agent;           /* a fog's or edge's agent, or NULL */
    struct fp_replicator *replicator; /* a fog's replication tasks, or NULL */
    struct fp_recalls *recalls;       /* the cloud's recalls (control.db), or NULL */
    struct fp_recall_set *recalled;   /* recalled images every node refuses (never NULL) */
    time_t started;                   /* failure detection waits dead_after from here */
    const char *_Atomic unready;      /* why /readyz says 503 (a constant), or NULL */
    unsigned port;
};

enum fp_method { M_GET, M_HEAD, M_PUT, M_POST, M_PATCH, M_DELETE, M_OTHER };

typedef struct fp_req fp_req;

/* Body sink: called for each piece of the request body. Returning -1 marks
 * the request failed (the handler has recorded the error); the rest of the
 * body is then discarded and the error answered at the end. */
typedef int (*fp_body_fn)(fp_req *r, const char *data, size_t len);
/* Called once the whole body has arrived; must respond. */
typedef void (*fp_end_fn)(fp_req *r);

struct fp_req {
    struct fp_registry *reg;
    struct MHD_Connection *conn;
    enum fp_method method;
    const char *method_name;
    const char *path;
    fp_route route;
    uint64_t id;
    struct timespec start;
    unsigned status;
    uint64_t bytes_in;
    uint64_t bytes_out;
    bool responded;
    /* A response made while routing (first callback) waits here for the
     * last callback: queued earlier, libmicrohttpd would close the
     * connection instead of keeping it alive. */
    bool routing;
    struct MHD_Response *pending;
    unsigned pending_status;
    char user[64];        /* authenticated principal, "" if anonymous */
    char kind[8];         /* "user" or "node" when authenticated */
    char role[16];        /* a node\'s role */
    char remote[48];      /* client address */
    fp_grant *grant;      /* verified token (Bearer mode) */
    char challenge[700];  /* WWW-Authenticate for a 401 */
    unsigned retry_after; /* Retry-After for a 429 */

    fp_body_fn on_body;
    fp_end_fn on_end;
    /* deferred error (set by a body sink) */
    unsigned err_status;
    const char *err_code;
    char err_msg[256];

    /* handler state */
    fp_buf body;
    uint64_t body_limit;
    fp_upload *upload;
    bool has_length;
    uint64_t length; /* Content-Length when has_length */
    bool has_range;
    uint64_t range_start, range_end;
    char digest[FP_DIGEST_MAX];
};

/* Request header / query argument (NULL when absent). */
const char *fp_req_header(fp_req *r, const char *name);
const char *fp_req_arg(fp_req *r, const char *name);

/* How the request reached us, from its forwarding headers. */
void fp_req_fed_origin(fp_req *r, fp_fed_origin *o);

/* Queue resp with status (adds common headers, consumes resp). */
void fp_respond(fp_req *r, unsigned status, struct MHD_Response *resp);
/* An OCI error body {"errors":[{"code","message","detail"}]}. */
void fp_respond_error(fp_req *r, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 500 with the error logged (never the client's secrets). */
void fp_respond_internal(fp_req *r, const fp_error *err);
/* A body the response copies; content_type may be NULL. */
void fp_respond_bytes(fp_req *r, unsigned status, const char *content_type, const void *data,
                      size_t len);
/* A body the response takes ownership of (free()d later). */
void fp_respond_owned(fp_req *r, unsigned status, const char *content_type, void *data, size_t len);
/* 200 with doc as compact JSON; takes the reference (NULL: 500). */
void fp_respond_json(fp_req *r, json_t *doc);
void fp_respond_json_status(fp_req *r, unsigned status, json_t *doc);
/* No body; headers as name/value pairs, NULL-terminated. */
void fp_respond_empty(fp_req *r, unsigned status, ...) __attribute__((sentinel));

/* A response without a body whose Content-Length is size (for HEAD). */
struct MHD_Response *fp_response_sized(uint64_t size);
/* A store result that is not success: 404 with code/message when
 * FP_STORE_NOT_FOUND, else 500 (logged). */
void fp_respond_store_error(fp_req *r, int rc, const fp_error *err, const char *code,
                            const char *message);
/* True for GET and HEAD; otherwise answers 405 and returns false. */
bool fp_req_read_only(fp_req *r);

/* Record an error now, answer it when the body is done. Returns -1. */
int fp_req_fail(fp_req *r, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Handlers (one file per endpoint family). Each either responds at once or
 * sets on_body/on_end. */
void fp_handle_base(fp_req *r);
void fp_handle_catalog(fp_req *r);
void fp_handle_tags(fp_req *r);
void fp_handle_referrers(fp_req *r);
void fp_handle_manifest(fp_req *r);
void fp_handle_blob(fp_req *r);
void fp_handle_upload_start(fp_req *r);
void fp_handle_upload(fp_req *r);
void fp_handle_token(fp_req *r);
void fp_handle_join(fp_req *r);
void fp_handle_revoked(fp_req *r);
void fp_handle_heartbeat(fp_req *r);
void fp_handle_nodes(fp_req *r);
void fp_handle_replication(fp_req *r);
void fp_handle_resolve(fp_req *r);
void fp_handle_services(fp_req *r);
void fp_handle_logs(fp_req *r);
void fp_handle_usage(fp_req *r);
void fp_handle_recalls(fp_req *r);
/* The registry refuses a recalled image (h_recalls.c): answers 403 DENIED
 * and returns true when digest (a manifest) is recalled. */
bool fp_req_refuse_recalled(fp_req *r, const char *digest);
/* Event streams (h_usage.c): wake them when there are new events; close
 * them (before stopping the daemon: none may stay suspended). */
int fp_event_streams_new(struct fp_event_streams **out);
void fp_event_streams_wake(struct fp_event_streams *h);
void fp_event_streams_close(struct fp_event_streams *h);
void fp_event_streams_free(struct fp_event_streams *h);
/* The controller (h_control.c, cloud): every node's health from its
 * heartbeats, an object id -> {role, parent, capacity, used, last_seen,
 * health, revoked} (NULL on failure); place the dynamic definitions and
 * hand over the always-on services of dead nodes (from the tick, and at
 * once after a definition changed). */
json_t *fp_control_nodes(struct fp_registry *reg, time_t now);
void fp_control_place(struct fp_registry *reg, time_t now);
/* service -> why the last placement pass placed fewer instances than the
 * definition asks for (no eligible node, none healthy): a new object. */
json_t *fp_control_unplaced(void);
/* Bound control.db's history ([control] violations_max, ...): every
 * few seconds, from the tick. */
void fp_control_prune(struct fp_registry *reg, time_t now);
/* From fp_registry_tick: fold and drop old usage, keep streams alive. */
void fp_usage_tick(struct fp_registry *reg, time_t now);
/* A manifest was pushed with these tags: queue replication tasks. */
void fp_replication_on_push(fp_req *r, const char *digest, const char *const *tags, size_t ntags);
void fp_handle_signer(fp_req *r);
/* h_metrics.c: /metrics, /healthz, /readyz; the HTTP counters, told of
 * every request as it completes (seconds since it arrived). */
void fp_handle_metrics(fp_req *r);
void fp_handle_healthz(fp_req *r);
void fp_handle_readyz(fp_req *r);
void fp_metrics_request_done(fp_req *r, double seconds);
void fp_handle_authdata(fp_req *r);
void fp_handle_audit(fp_req *r);
/* The cloud's dashboard (h_ui.c) and the catalog it lists (h_listing.c). */
void fp_handle_ui(fp_req *r);
void fp_handle_api_catalog(fp_req *r);
/* The cloud's audit trail (h_audit.c; nothing where there is none): open
 * it at start; append what the request did, as its principal (takes
 * details, an object or NULL); a push's tags; a manifest deletion. */
int fp_registry_audit_open(struct fp_registry *reg, fp_error *err);
/* The cloud: open its recalls and load them into reg->recalled. */
int fp_registry_recalls_open(struct fp_registry *reg, fp_error *err);
void fp_req_audit(fp_req *r, const char *kind, const char *subject, json_t *details);
void fp_audit_on_push(fp_req *r, const char *digest, const char *const *tags, size_t ntags);
void fp_audit_on_delete(fp_req *r);

/* Validate a digest from a request; on failure responds DIGEST_INVALID. */
bool fp_req_digest_ok(fp_req *r, const char *digest);
/* Repository name must exist for read endpoints: responds NAME_UNKNOWN. */

#endif
