/* Live monitoring on the cloud (control/usage.h), for operators and nodes:
 *   GET /api/v1/usage[?service=NAME][&node=ID][&since=UNIX][&limit=N]
 *       {"samples": [...]} oldest first, the newest FP_USAGE_QUERY_MAX at
 *       most
 *   GET /api/v1/events[?service=NAME][&after=ID]
 *       {"events": [...], "last": ID}: the recent events after ID
 *   GET /api/v1/events?follow=1[&service=NAME][&after=ID]
 *       the same as Server-Sent Events (text/event-stream), then every new
 *       one as it comes; "id:" lines let a client resume (Last-Event-ID).
 *
 * A stream with nothing to send suspends its connection (libmicrohttpd's
 * suspend/resume) instead of blocking in the reader: a blocked reader
 * would hold a pool thread and every other connection it serves. New
 * events, a keep-alive every STREAM_KEEPALIVE_S and the server stopping
 * resume the suspended ones. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "agent/spec.h"
#include "control/usage.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/range.h"
#include "registry/request.h"

#define STREAM_KEEPALIVE_S 15
#define STREAM_BATCH       64

struct stream {
    struct fp_event_streams *hub;
    fp_usage *usage;
    struct MHD_Connection *conn;
    uint64_t after; /* last event id sent */
    char service[FP_SERVICE_NAME_MAX + 1];
    fp_buf out; /* formatted, not yet handed to libmicrohttpd */
    size_t sent;
    time_t last_write;
    struct stream *next; /* in hub->waiting while suspended */
};

struct fp_event_streams {
    pthread_mutex_t lock;
    bool closing;
    uint64_t wakes;         /* bumped by every wake: a reader's check for a lost one */
    struct stream *waiting; /* suspended streams */
    time_t next_keepalive;
};

int fp_event_streams_new(struct fp_event_streams **out)
{
    struct fp_event_streams *h = calloc(1, sizeof *h);
    if (!h) return -1;
    pthread_mutex_init(&h->lock, NULL);
    *out = h;
    return 0;
}

void fp_event_streams_free(struct fp_event_streams *h)
{
    if (!h) return;
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* Under h->lock. */
static void resume_all(struct fp_event_streams *h)
{
    h->wakes++;
    while (h->waiting) {
        struct stream *s = h->waiting;
        h->waiting = s->next;
        s->next = NULL;
        MHD_resume_connection(s->conn);
    }
}

void fp_event_streams_wake(struct fp_event_streams *h)
{
    if (!h) return;
    pthread_mutex_lock(&h->lock);
    resume_all(h);
    pthread_mutex_unlock(&h->lock);
}

void fp_event_streams_close(struct fp_event_streams *h)
{
    if (!h) return;
    pthread_mutex_lock(&h->lock);
    h->closing = true;
    resume_all(h);
    pthread_mutex_unlock(&h->lock);
}

/* Format the events after s->after as SSE messages. */
static void fill(struct stream *s)
{
    json_t *ev = fp_usage_events(s->usage, s->after, s->service[0] ? s->service : NULL,
                                 STREAM_BATCH, &s->after);
    size_t i;
    json_t *e;
    json_array_foreach(ev, i, e)
    {
        char *text = json_dumps(e, JSON_COMPACT);
        if (!text) continue;
        fp_buf_printf(&s->out, "id: %lld\ndata: %s\n\n",
                      (long long)json_integer_value(json_object_get(e, "id")), text);
        free(text);
    }
    json_decref(ev);
    time_t now = time(NULL);
    if (!s->out.len && now - s->last_write >= STREAM_KEEPALIVE_S - 1)
        fp_buf_puts(&s->out, ": keep-alive\n\n"); /* finds a client that went away */
    if (s->out.len) s->last_write = now;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct stream *s = cls;
    struct fp_event_streams *h = s->hub;
    for (;;) {
        if (s->sent < s->out.len) {
            size_t n = s->out.len - s->sent < max ? s->out.len - s->sent : max;
            memcpy(buf, s->out.data + s->sent, n);
            s->sent += n;
            return (ssize_t)n;
        }
        fp_buf_reset(&s->out);
        s->sent = 0;
        pthread_mutex_lock(&h->lock);
        bool closing = h->closing;
        uint64_t wakes = h->wakes;
        pthread_mutex_unlock(&h->lock);
        if (closing) return MHD_CONTENT_READER_END_OF_STREAM;
        fill(s);
        if (s->out.len) continue;
        pthread_mutex_lock(&h->lock);
        if (h->closing || h->wakes != wakes) {
            /* stopping, or an event came between fill and here: look again */
            pthread_mutex_unlock(&h->lock);
            continue;
        }
        s->next = h->waiting;
        h->waiting = s;
        MHD_suspend_connection(s->conn);
        pthread_mutex_unlock(&h->lock);
        return 0; /* called again once resumed */
    }
}

static void stream_free(void *cls)
{
    struct stream *s = cls;
    fp_buf_free(&s->out);
    free(s);
}

static bool arg_u64(fp_req *r, const char *name, uint64_t *out)
{
    const char *v = fp_req_arg(r, name);
    *out = 0;
    if (!v || fp_parse_u64(v, out) == 0) return true;
    fp_respond_error(r, 400, "UNSUPPORTED", "%s: expected a non-negative integer", name);
    return false;
}

static bool arg_service(fp_req *r, const char **service)
{
    *service = fp_req_arg(r, "service");
    if (!*service || fp_service_name_valid(*service)) return true;
    fp_respond_error(r, 400, "UNSUPPORTED", "service: not a service name");
    return false;
}

static void follow(fp_req *r, const char *service, uint64_t after)
{
    struct stream *s = calloc(1, sizeof *s);
    if (!s) {
        fp_error err;
        fp_error_set(&err, ENOMEM, "event stream");
        fp_respond_internal(r, &err);
        return;
    }
    s->hub = r->reg->streams;
    s->usage = r->reg->usage;
    s->conn = r->conn;
    s->after = after;
    s->last_write = time(NULL);
    if (service) snprintf(s->service, sizeof s->service, "%s", service);
    /* headers reach the client before the first event does */
    fp_buf_puts(&s->out, ": fogport events\nretry: 2000\n\n");
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free);
    if (!resp) {
        stream_free(s);
        fp_respond(r, 500, NULL);
        return;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    /* the keep-alives say whether the client is still there */
    MHD_set_connection_option(r->conn, MHD_CONNECTION_OPTION_TIMEOUT, 0);
    fp_respond(r, 200, resp);
}

static void events(fp_req *r)
{
    const char *service;
    uint64_t after, follow_flag;
    if (!arg_service(r, &service) || !arg_u64(r, "after", &after) ||
        !arg_u64(r, "follow", &follow_flag))
        return;
    const char *last_id = fp_req_header(r, "Last-Event-ID");
    uint64_t resume;
    if (last_id && fp_parse_u64(last_id, &resume) == 0) after = resume;
    if (follow_flag) {
        follow(r, service, after);
        return;
    }
    uint64_t last = 0;
    json_t *list = fp_usage_events(r->reg->usage, after, service, FP_USAGE_EVENTS_MAX, &last);
    fp_respond_json(r, json_pack("{s:o, s:I}", "events", list, "last", (json_int_t)last));
}

static void usage(fp_req *r)
{
    fp_usage_filter f = {.node = fp_req_arg(r, "node")};
    uint64_t since, limit;
    if (!arg_service(r, &f.service) || !arg_u64(r, "since", &since) || !arg_u64(r, "limit", &limit))
        return;
    if (f.node && strlen(f.node) > 64) {
        fp_respond_error(r, 400, "UNSUPPORTED", "node: not a node id");
        return;
    }
    f.since = since > INT64_MAX ? INT64_MAX : (int64_t)since;
    f.limit = (size_t)limit;
    json_t *list;
    fp_error err;
    if (fp_usage_query(r->reg->usage, &f, &list, &err) < 0) {
        fp_respond_internal(r, &err);
        return;
    }
    fp_respond_json(r, json_pack("{s:o}", "samples", list));
}

void fp_handle_usage(fp_req *r)
{
    if (!fp_req_read_only(r)) return;
    if (!fp_authz_require_login(r)) return;
    if (!strcmp(r->path, "/api/v1/usage"))
        usage(r);
    else
        events(r);
}

void fp_usage_tick(struct fp_registry *reg, time_t now)
{
    if (!reg->usage) return;
    fp_error err;
    if (fp_usage_prune(reg->usage, now, &err) < 0)
        fp_warn("event=usage_prune_failed error=\"%s\"", err.msg);
    struct fp_event_streams *h = reg->streams;
    if (h && now >= h->next_keepalive) {
        h->next_keepalive = now + STREAM_KEEPALIVE_S;
        fp_event_streams_wake(h);
    }
}
