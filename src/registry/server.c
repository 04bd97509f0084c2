/* The HTTP server: libmicrohttpd with an internal epoll thread pool. One
 * fp_req per request; the access handler routes it on the first call, feeds
 * body pieces to the handler's sink, and lets the handler answer once the
 * body is complete. The completion callback is the single place where a
 * request that ended badly (client gone, timeout) is rolled back. */
#include "registry/registry.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/enforce.h"
#include "core/cleanup.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/range.h"
#include "federation/directory.h"
#include "control/audit.h"
#include "control/services.h"
#include "control/recalls.h"
#include "control/usage.h"
#include "federation/replication.h"
#include "registry/request.h"
#include "registry/tls_front.h"

static atomic_uint_fast64_t next_request_id = 1;

const char *fp_req_header(fp_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

void fp_respond_json(fp_req *r, json_t *doc)
{
    fp_respond_json_status(r, 200, doc);
}

void fp_respond_json_status(fp_req *r, unsigned status, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text) {
        fp_error err;
        fp_error_set(&err, ENOMEM, "JSON answer");
        fp_respond_internal(r, &err);
        return;
    }
    fp_respond_owned(r, status, "application/json", text, strlen(text));
}

void fp_req_fed_origin(fp_req *r, fp_fed_origin *o)
{
    const char *peer = fp_req_header(r, "Fogport-Peer");
    const char *hops = fp_req_header(r, "Fogport-Hops");
    o->from_peer = peer != NULL;
    o->hops = 0;
    if (hops) {
        uint64_t v;
        /* an unreadable count must not reset it: treat it as exhausted */
        o->hops =
            fp_parse_u64(hops, &v) == 0 && v < FP_FED_MAX_HOPS ? (unsigned)v : FP_FED_MAX_HOPS;
    }
}

const char *fp_req_arg(fp_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* Largest body drained before an early answer (see hold_response). */
#define DRAIN_MAX (16u << 20)

/* Should a response made while routing wait for the last callback?
 * Without a body: yes, or libmicrohttpd closes instead of keeping alive.
 * With a body it has not read yet (an early 413, 404 or 416): closing while
 * the client still sends makes the kernel reset the connection, and the
 * client never sees the answer; so a body of known, modest size is drained
 * first. A huge or unbounded one gets the answer at once and the close. */
static bool hold_response(fp_req *r)
{
    if (fp_req_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING)) return false;
    const char *cl = fp_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t len = 0;
    if (!cl) return true;
    return fp_parse_u64(cl, &len) == 0 && len <= DRAIN_MAX;
}

void fp_respond(fp_req *r, unsigned status, struct MHD_Response *resp)
{
    if (!resp) {
        fp_errorf("event=response_alloc_failed request=%llu", (unsigned long long)r->id);
        r->responded = true; /* MHD closes the connection */
        return;
    }
    MHD_add_response_header(resp, "Docker-Distribution-API-Version", "registry/2.0");
    if (status == 401 && r->challenge[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, r->challenge);
    if (status == 429 && r->retry_after) {
        char ra[16];
        snprintf(ra, sizeof ra, "%u", r->retry_after);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    r->status = status;
    r->responded = true;
    if (r->routing && hold_response(r)) {
        r->pending = resp;
        r->pending_status = status;
        return;
    }
    if (MHD_queue_response(r->conn, status, resp) != MHD_YES)
        fp_warn("event=queue_response_failed request=%llu status=%u", (unsigned long long)r->id,
                status);
    MHD_destroy_response(resp);
}

static void error_body(fp_buf *b, const char *code, const char *msg)
{
    /* Hand-built: codes are constants, messages are escaped. */
    fp_buf_puts(b, "{\"errors\":[{\"code\":\"");
    fp_buf_puts(b, code);
    fp_buf_puts(b, "\",\"message\":\"");
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        if (*p == '"' || *p == '\\')
            fp_buf_printf(b, "\\%c", *p);
        else if (*p < 0x20)
            fp_buf_printf(b, "\\u%04x", *p);
        else
            fp_buf_append(b, p, 1);
    }
    fp_buf_puts(b, "\",\"detail\":null}]}");
}

void fp_respond_error(fp_req *r, unsigned status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cleanup_buf fp_buf b = FP_BUF_INIT;
    error_body(&b, code, msg);
    fp_respond_bytes(r, status, "application/json", b.data, b.len);
}

void fp_respond_internal(fp_req *r, const fp_error *err)
{
    char q[600];
    fp_errorf("event=internal_error request=%llu method=%s path=%s error=%s",
              (unsigned long long)r->id, r->method_name, r->path,
              fp_log_quote(err->msg, q, sizeof q));
    if (err->errnum == ENOSPC)
        fp_respond_error(r, 507, "UNKNOWN", "insufficient storage on the registry");
    else
        fp_respond_error(r, 500, "UNKNOWN", "internal error (request %llu)",
                         (unsigned long long)r->id);
}

void fp_respond_bytes(fp_req *r, unsigned status, const char *content_type, const void *data,
                      size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (resp && content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    r->bytes_out = len;
    fp_respond(r, status, resp);
}

void fp_respond_owned(fp_req *r, unsigned status, const char *content_type, void *data, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (!resp)
        free(data);
    else if (content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    r->bytes_out = len;
    fp_respond(r, status, resp);
}

void fp_respond_empty(fp_req *r, unsigned status, ...)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    va_list ap;
    va_start(ap, status);
    const char *name;
    while (resp && (name = va_arg(ap, const char *))) {
        const char *value = va_arg(ap, const char *);
        if (value) MHD_add_response_header(resp, name, value);
    }
    va_end(ap);
    fp_respond(r, status, resp);
}

static ssize_t no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    (void)pos;
    (void)buf;
    (void)max;
    return MHD_CONTENT_READER_END_OF_STREAM;
}

struct MHD_Response *fp_response_sized(uint64_t size)
{
    /* libmicrohttpd never calls the reader for HEAD: Content-Length without
     * reading or copying anything */
    return MHD_create_response_from_callback(size, 4096, no_body, NULL, NULL);
}

void fp_respond_store_error(fp_req *r, int rc, const fp_error *err, const char *code,
                            const char *message)
{
    if (rc == FP_STORE_NOT_FOUND)
        fp_respond_error(r, 404, code, "%s", message);
    else
        fp_respond_internal(r, err);
}

bool fp_req_read_only(fp_req *r)
{
    if (r->method == M_GET || r->method == M_HEAD) return true;
    fp_respond_error(r, 405, "UNSUPPORTED", "method not allowed");
    return false;
}

int fp_req_fail(fp_req *r, unsigned status, const char *code, const char *fmt, ...)
{
    if (r->err_status) return -1; /* keep the first error */
    r->err_status = status;
    r->err_code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err_msg, sizeof r->err_msg, fmt, ap);
    va_end(ap);
    return -1;
}

bool fp_req_digest_ok(fp_req *r, const char *digest)
{
    enum fp_digest_status st = fp_digest_parse(digest, strlen(digest), NULL);
    if (st == FP_DIGEST_OK) return true;
    fp_respond_error(r, 400, "DIGEST_INVALID",
                     st == FP_DIGEST_UNSUPPORTED ? "unsupported digest algorithm (sha256, sha512)"
                                                 : "invalid digest");
    return false;
}

static enum fp_method parse_method(const char *m)
{
    static const char *const names[] = {"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"};
    for (int i = 0; i < 6; i++)
        if (strcmp(m, names[i]) == 0) return (enum fp_method)i;
    return M_OTHER;
}

/* Mutual TLS: did this connection's client present a certificate that
 * chains to [tls] client_ca? The TLS front knows, by the socket it handed
 * to libmicrohttpd. */
static bool client_cert_valid(fp_req *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    bool ok = ci && fp_tls_front_client_verified(r->reg->tls, ci->connect_fd);
    if (!ok) fp_warn("event=client_cert_refused remote=%s", r->remote);
    return ok;
}

static void dispatch(fp_req *r)
{
    /* probes of load balancers and service managers carry no credentials */
    if (!strcmp(r->path, "/healthz")) {
        fp_handle_healthz(r);
        return;
    }
    if (!strcmp(r->path, "/readyz")) {
        fp_handle_readyz(r);
        return;
    }
    /* A joining node has no certificate yet: the join token vouches for it. */
    if (r->reg->cfg->tls_require_client_cert && strcmp(r->path, "/api/v1/join") != 0 &&
        !client_cert_valid(r)) {
        fp_respond_error(r, 403, "DENIED", "a client certificate from the deployment is required");
        return;
    }
    if (r->reg->authz->token_service && strcmp(r->path, "/auth/token") == 0) {
        fp_handle_token(r);
        return;
    }
    if (r->reg->authz->nodes && strcmp(r->path, "/api/v1/join") == 0) {
        fp_handle_join(r);
        return;
    }
    if (r->reg->authz->nodes && strcmp(r->path, "/api/v1/revoked") == 0) {
        fp_handle_revoked(r);
        return;
    }
    if (strcmp(r->path, "/metrics") == 0) {
        fp_handle_metrics(r);
        return;
    }
    if (r->reg->dir && strcmp(r->path, "/api/v1/heartbeat") == 0) {
        fp_handle_heartbeat(r);
        return;
    }
    if (r->reg->dir && strcmp(r->path, "/api/v1/nodes") == 0) {
        fp_handle_nodes(r);
        return;
    }
    if (r->reg->dir && (!strcmp(r->path, "/api/v1/replication") ||
                        !strncmp(r->path, "/api/v1/replication/tasks", 25))) {
        fp_handle_replication(r);
        return;
    }
    if (r->reg->services &&
        (!strcmp(r->path, "/api/v1/services") || !strncmp(r->path, "/api/v1/services/", 17) ||
         !strcmp(r->path, "/api/v1/agent/desired") || !strcmp(r->path, "/api/v1/instances") ||
         !strcmp(r->path, "/api/v1/violations"))) {
        fp_handle_services(r);
        return;
    }
    if (r->reg->recalls &&
        (!strcmp(r->path, "/api/v1/recalls") || !strncmp(r->path, "/api/v1/recalls/", 16))) {
        fp_handle_recalls(r);
        return;
    }
    if (r->reg->usage &&
        (!strcmp(r->path, "/api/v1/usage") || !strcmp(r->path, "/api/v1/events"))) {
        fp_handle_usage(r);
        return;
    }
    if ((r->reg->agent || r->reg->services) && !strncmp(r->path, "/api/v1/logs/", 13)) {
        fp_handle_logs(r);
        return;
    }
    if (r->reg->dir && strcmp(r->path, "/api/v1/catalog") == 0) {
        fp_handle_api_catalog(r);
        return;
    }
    /* the dashboard: the cloud's only (fogs and edges answer 404) */
    if (r->reg->dir && (!strcmp(r->path, "/ui") || !strncmp(r->path, "/ui/", 4))) {
        fp_handle_ui(r);
        return;
    }
    if (r->reg->audit && strcmp(r->path, "/api/v1/audit") == 0) {
        fp_handle_audit(r);
        return;
    }
    if (r->reg->authz->nodes && strcmp(r->path, "/api/v1/signer") == 0) {
        fp_handle_signer(r);
        return;
    }
    if (r->reg->authz->nodes && strcmp(r->path, "/api/v1/authdata") == 0) {
        fp_handle_authdata(r);
        return;
    }
    fp_route_parse(r->path, &r->route);
    if (r->route.kind == FP_ROUTE_NONE) {
        fp_respond_bytes(r, 404, "text/plain; charset=utf-8", "404 page not found\n", 19);
        return;
    }
    if (r->route.kind != FP_ROUTE_NAME_INVALID && !fp_authorize(r)) return;
    switch (r->route.kind) {
    case FP_ROUTE_NAME_INVALID:
        fp_respond_error(r, 400, "NAME_INVALID", "invalid repository name");
        return;
    case FP_ROUTE_BASE:
        fp_handle_base(r);
        return;
    case FP_ROUTE_CATALOG:
        fp_handle_catalog(r);
        return;
    case FP_ROUTE_TAGS:
        fp_handle_tags(r);
        return;
    case FP_ROUTE_MANIFEST:
        fp_handle_manifest(r);
        return;
    case FP_ROUTE_BLOB:
        fp_handle_blob(r);
        return;
    case FP_ROUTE_UPLOAD_START:
        fp_handle_upload_start(r);
        return;
    case FP_ROUTE_UPLOAD:
        fp_handle_upload(r);
        return;
    case FP_ROUTE_RESOLVE:
        fp_handle_resolve(r);
        return;
    case FP_ROUTE_REFERRERS:
        fp_handle_referrers(r);
        return;
    case FP_ROUTE_NONE:
        return;
    }
}

static void client_address(struct MHD_Connection *conn, char *out, size_t outlen)
{
    snprintf(out, outlen, "-");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr) return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)outlen);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)outlen);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    fp_req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        *con_cls = r;
        r->reg = cls;
        r->conn = conn;
        r->method_name = method;
        r->method = parse_method(method);
        r->path = url;
        r->id = atomic_fetch_add(&next_request_id, 1);
        clock_gettime(CLOCK_MONOTONIC, &r->start);
        client_address(conn, r->remote, sizeof r->remote);
        r->routing = true;
        dispatch(r);
        r->routing = false;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        r->bytes_in += n;
        if (!r->responded && !r->err_status && r->on_body) r->on_body(r, upload_data, n);
        return MHD_YES;
    }
    if (r->pending) {
        if (MHD_queue_response(conn, r->pending_status, r->pending) != MHD_YES)
            fp_warn("event=queue_response_failed request=%llu", (unsigned long long)r->id);
        MHD_destroy_response(r->pending);
        r->pending = NULL;
        return MHD_YES;
    }
    if (r->responded) return MHD_YES;
    if (r->err_status) {
        fp_respond_error(r, r->err_status, r->err_code, "%s", r->err_msg);
    } else if (r->on_end) {
        r->on_end(r);
    }
    if (!r->responded) {
        fp_error e;
        fp_error_set(&e, 0, "handler for %s %s gave no response", r->method_name, r->path);
        fp_respond_internal(r, &e);
    }
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    fp_req *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    if (r->pending) MHD_destroy_response(r->pending);
    if (r->upload) {
        /* The request did not finish its upload (client gone, timeout,
         * error): nothing of it stays. */
        fp_upload_rollback(r->upload);
        fp_upload_release(r->upload);
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double ms = (double)(now.tv_sec - r->start.tv_sec) * 1e3 +
                (double)(now.tv_nsec - r->start.tv_nsec) / 1e6;
    fp_metrics_request_done(r, ms / 1e3);
    if (r->reg->cfg->access_log && fp_log_enabled(FP_LOG_INFO)) {
        char qpath[600];
        fp_log(FP_LOG_INFO,
               "event=request id=%llu remote=%s user=%s method=%s path=%s status=%u in=%llu "
               "out=%llu ms=%.2f%s",
               (unsigned long long)r->id, r->remote, r->user[0] ? r->user : "-", r->method_name,
               fp_log_quote(r->path, qpath, sizeof qpath), r->status,
               (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out, ms,
               toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=true");
    }
    fp_grant_unref(r->grant);
    fp_buf_free(&r->body);
    free(r);
}

/* libmicrohttpd's own messages: its format strings, passed through. */
static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512], q[600];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    fp_log(FP_LOG_DEBUG, "event=http_library msg=%s", fp_log_quote(msg, q, sizeof q));
}

static int resolve_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len,
                          fp_error *err)
{
    char host[256];
    const char *port;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':')
            return fp_error_set(err, 0, "listen address %s: expected [v6addr]:port", listen);
        snprintf(host, sizeof host, "%.*s", (int)(close - listen - 1), listen + 1);
        port = close + 2;
    } else {
        const char *colon = strrchr(listen, ':');
        if (!colon) return fp_error_set(err, 0, "listen address %s: expected host:port", listen);
        snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
        port = colon + 1;
    }
    struct addrinfo hints = {.ai_flags = AI_PASSIVE, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc != 0) return fp_error_set(err, 0, "listen address %s: %s", listen, gai_strerror(rc));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* Agents get the node policy built from [control] with their desired
 * state: a mistake in it stops the cloud at start, not every agent. */
static int node_policy_check(const fp_config *cfg, fp_error *err)
{
    json_t *p = NULL;
    int rc = fp_node_policy_build(cfg->control_allowed_caps, cfg->control_allowed_ports,
                                  cfg->control_allowed_host_paths, &p, err);
    json_decref(p);
    return rc;
}

int fp_registry_check(const fp_config *cfg, fp_error *err)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (resolve_listen(cfg->listen, &ss, &sl, err) < 0) return -1;
    if (!cfg->tls_cert[0] != !cfg->tls_key[0])
        return fp_error_set(err, 0, "[tls] needs both cert and key");
    return strcmp(cfg->node_role, "cloud") ? 0 : node_policy_check(cfg, err);
}

int fp_registry_start(fp_registry **out, const fp_config *cfg, fp_store *store,
                      struct fp_recall_set *recalled, fp_error *err)
{
    if (fp_registry_check(cfg, err) < 0) return -1;
    fp_registry *reg = calloc(1, sizeof *reg);
    if (!reg) return fp_error_set(err, ENOMEM, "registry");
    reg->cfg = cfg;
    reg->store = store;
    reg->recalled = recalled;
    reg->started = time(NULL);
    /* until the caller says what it waits for (fp_registry_set_unready) */
    reg->unready = "starting";
    if (fp_authz_open(&reg->authz, cfg, err) < 0) {
        free(reg);
        return -1;
    }
    /* the cloud keeps the directory of where nodes are */
    if (reg->authz->nodes &&
        (fp_directory_open(&reg->dir, cfg->data_dir, err) < 0 ||
         fp_replication_open(&reg->repl, cfg->fed_replication, err) < 0 ||
         fp_services_open(&reg->services, cfg->data_dir, err) < 0 ||
         fp_usage_open(&reg->usage, cfg->data_dir, err) < 0 ||
         fp_registry_audit_open(reg, err) < 0 || fp_registry_recalls_open(reg, err) < 0 ||
         node_policy_check(cfg, err) < 0)) {
        fp_registry_stop(reg);
        return -1;
    }
    if (reg->services)
        fp_services_set_limits(reg->services, &(fp_services_limits){
                                                  .violations_max = cfg->control_violations_max,
                                                  .violations_age_s = cfg->control_violations_age_s,
                                                  .instances_age_s = cfg->control_instances_age_s,
                                              });
    if (fp_event_streams_new(&reg->streams) < 0) {
        fp_registry_stop(reg);
        return fp_error_set(err, ENOMEM, "registry");
    }
    struct sockaddr_storage ss;
    socklen_t sl;
    if (resolve_listen(cfg->listen, &ss, &sl, err) < 0) {
        fp_registry_stop(reg);
        return -1;
    }
    unsigned threads = cfg->threads;
    if (!threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 1;
    }
    /* poll(), not epoll: in a thread pool libmicrohttpd 0.9.75's epoll mode
     * was seen to leave one worker asleep with a hundred ready connections
     * for 20 s (a lost wakeup under load); poll() has not, and is as fast
     * here with per-thread connection counts in the hundreds. */
    /* suspend/resume: event streams wait for events without a thread */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME;
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    if (cfg->tls_cert[0]) {
        /* TLS is the front's (tls_front.h): it listens, and libmicrohttpd
         * gets the decrypted streams (MHD_USE_ITC: woken for each) */
        fp_tls_front_opts o = {
            .cert = cfg->tls_cert,
            .key = cfg->tls_key,
            .client_ca = cfg->tls_client_ca,
            .threads = threads,
            .max_connections = cfg->max_connections,
            .handshake_s = cfg->timeout_s && cfg->timeout_s < 10 ? cfg->timeout_s : 10,
            .idle_s = cfg->timeout_s,
        };
        if (fp_tls_front_open(&reg->tls, (struct sockaddr *)&ss, sl, &o, err) < 0) {
            fp_registry_stop(reg);
            return -1;
        }
        flags |= MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
    }
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)threads, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)cfg->timeout_s, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)cfg->max_connections, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)cfg->max_connections_per_ip, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, 64 * 1024, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, NULL},
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL},
        {reg->tls ? MHD_OPTION_END : MHD_OPTION_SOCK_ADDR, 0, &ss},
        {MHD_OPTION_END, 0, NULL},
    };
    reg->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, reg, MHD_OPTION_ARRAY, opts,
                                   MHD_OPTION_END);
    if (!reg->daemon) {
        fp_registry_stop(reg);
        return fp_error_set(err, errno, "cannot listen on %s", cfg->listen);
    }
    if (reg->tls && fp_tls_front_run(reg->tls, reg->daemon, err) < 0) {
        fp_registry_stop(reg);
        return -1;
    }
    const union MHD_DaemonInfo *di =
        reg->tls ? NULL : MHD_get_daemon_info(reg->daemon, MHD_DAEMON_INFO_BIND_PORT);
    reg->port = reg->tls ? fp_tls_front_port(reg->tls) : di ? di->port : 0;
    *out = reg;
    return 0;
}

void fp_registry_set_agent(fp_registry *r, struct fp_agent *agent)
{
    r->agent = agent;
}

void fp_registry_set_replicator(fp_registry *r, struct fp_replicator *rp)
{
    r->replicator = rp;
}

void fp_registry_set_federation(fp_registry *r, fp_federation *fed)
{
    r->fed = fed;
}

void fp_registry_node_reload(fp_registry *r)
{
    fp_authz_node_reload(r->authz);
}

bool fp_registry_take_auth_sync(fp_registry *r)
{
    return fp_authz_take_auth_sync(r->authz);
}

void fp_registry_set_revoked(fp_registry *r, const json_t *ids)
{
    fp_authz_set_revoked(r->authz, ids);
}

unsigned fp_registry_port(const fp_registry *r)
{
    return r->port;
}

void fp_registry_stop(fp_registry *r)
{
    if (!r) return;
    /* libmicrohttpd must not be stopped with a connection suspended */
    fp_event_streams_close(r->streams);
    /* the front first: its workers hand connections to the daemon */
    fp_tls_front_stop(r->tls);
    if (r->daemon) MHD_stop_daemon(r->daemon);
    fp_event_streams_free(r->streams);
    fp_usage_close(r->usage);
    fp_authz_free(r->authz);
    fp_directory_close(r->dir);
    fp_services_close(r->services);
    fp_audit_close(r->audit);
    fp_recalls_close(r->recalls);
    fp_replication_free(r->repl);
    free(r);
}
