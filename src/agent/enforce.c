#include "agent/enforce.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/spec.h"

bool fp_enforce_policy_set(const fp_enforce_policy *p)
{
    return p->max_cpu > 0 || p->max_memory > 0 || p->max_pids > 0;
}

void fp_enforce_push(fp_enforce_window *w, const fp_enforce_sample *s)
{
    if (w->n == FP_ENFORCE_SAMPLES) {
        memmove(&w->s[0], &w->s[1], (FP_ENFORCE_SAMPLES - 1) * sizeof w->s[0]);
        w->n--;
    }
    w->s[w->n++] = *s;
}

static const char *const kind_names[] = {"none", "cpu", "memory", "pids", "privilege"};

const char *fp_violation_kind_name(fp_violation_kind k)
{
    return (unsigned)k < sizeof kind_names / sizeof kind_names[0] ? kind_names[k] : "none";
}

static bool over(const fp_enforce_sample *s, fp_violation_kind k, double limit)
{
    switch (k) {
    case FP_VIOLATION_CPU:
        /* the first sample after a start has no share yet: no evidence */
        return s->has_cpu && s->cpu > limit;
    case FP_VIOLATION_MEMORY:
        return (double)s->memory > limit;
    case FP_VIOLATION_PIDS:
        return (double)s->pids > limit;
    default:
        return false;
    }
}

/* The run of over-limit samples ending at the newest; true when it spans
 * the window. Each sample stands for the second up to it (a CPU share is
 * measured over that second), so n samples 1 s apart cover n seconds. */
static bool sustained(const fp_enforce_sample *s, size_t n, fp_violation_kind k, double limit,
                      unsigned window_s, fp_enforce_verdict *v)
{
    if (limit <= 0 || n == 0 || !over(&s[n - 1], k, limit)) return false;
    size_t first = n - 1;
    while (first > 0 && over(&s[first - 1], k, limit) &&
           s[first].t_ms - s[first - 1].t_ms <= FP_ENFORCE_GAP_MS)
        first--;
    int64_t span = s[n - 1].t_ms - s[first].t_ms + 1000;
    if (span + FP_ENFORCE_SLACK_MS < (int64_t)window_s * 1000) return false;
    *v = (fp_enforce_verdict){.kind = k, .limit = limit, .first = first, .count = n - first};
    return true;
}

void fp_enforce_evaluate(const fp_enforce_sample *s, size_t n, const fp_enforce_policy *p,
                         int64_t now_ms, fp_enforce_verdict *v)
{
    *v = (fp_enforce_verdict){.kind = FP_VIOLATION_NONE};
    if (n == 0 || now_ms - s[n - 1].t_ms > FP_ENFORCE_GAP_MS) return;
    unsigned window = p->window_s ? p->window_s : FP_ENFORCE_WINDOW_DEFAULT;
    if (sustained(s, n, FP_VIOLATION_CPU, p->max_cpu, window, v)) return;
    if (sustained(s, n, FP_VIOLATION_MEMORY, (double)p->max_memory, window, v)) return;
    sustained(s, n, FP_VIOLATION_PIDS, (double)p->max_pids, window, v);
}

json_t *fp_enforce_evidence(const fp_enforce_sample *s, const fp_enforce_verdict *v,
                            const fp_enforce_policy *p)
{
    json_t *samples = json_array();
    for (size_t i = v->first; i < v->first + v->count; i++) {
        json_t *o = json_pack("{s:I, s:I, s:I}", "t", (json_int_t)s[i].wall, "memory",
                              (json_int_t)s[i].memory, "pids", (json_int_t)s[i].pids);
        json_object_set_new(o, "cpu", s[i].has_cpu ? json_real(s[i].cpu) : json_null());
        json_array_append_new(samples, o);
    }
    unsigned window = p->window_s ? p->window_s : FP_ENFORCE_WINDOW_DEFAULT;
    const fp_enforce_sample *last = &s[v->first + v->count - 1];
    char msg[160];
    if (v->kind == FP_VIOLATION_CPU)
        snprintf(msg, sizeof msg, "cpu above %g of one CPU for %u s", v->limit, window);
    else
        snprintf(msg, sizeof msg, "%s above %.0f for %u s", fp_violation_kind_name(v->kind),
                 v->limit, window);
    json_t *j = json_pack("{s:s, s:I, s:I, s:o, s:s}", "kind", fp_violation_kind_name(v->kind),
                          "window_s", (json_int_t)window, "time", (json_int_t)last->wall, "samples",
                          samples, "message", msg);
    json_object_set_new(j, "limit",
                        v->kind == FP_VIOLATION_CPU ? json_real(v->limit)
                                                    : json_integer((json_int_t)v->limit));
    return j;
}

/* ---- the node policy ------------------------------------------------ */

static bool is_sep(char c)
{
    return c == ',' || isspace((unsigned char)c);
}

/* Next comma- or space-separated item of *p into out; false at the end. */
static bool next_item(const char **p, char *out, size_t n)
{
    while (is_sep(**p))
        (*p)++;
    if (!**p) return false;
    size_t len = 0;
    while ((*p)[len] && !is_sep((*p)[len]))
        len++;
    snprintf(out, n, "%.*s", (int)len, *p);
    *p += len;
    return true;
}

static int parse_port(const char *s, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < 1 || v > 65535) return -1;
    *out = v;
    return 0;
}

int fp_node_policy_build(const char *capabilities, const char *ports, const char *host_paths,
                         json_t **out, fp_error *err)
{
    json_t *pol = json_object();
    char item[128];
    const char *p = capabilities ? capabilities : "";
    if (!*p) {
        json_object_set_new(pol, "capabilities", json_null());
    } else {
        json_t *caps = json_array();
        json_object_set_new(pol, "capabilities", caps);
        while (next_item(&p, item, sizeof item)) {
            if (!strcmp(item, "none")) continue;
            if (!fp_capability_default(item)) {
                json_decref(pol);
                return fp_error_set(err, 0,
                                    "[control] allowed_capabilities: %s is not in Docker's "
                                    "default set (the policy only narrows it)",
                                    item);
            }
            json_array_append_new(caps, json_string(item));
        }
    }
    p = ports ? ports : "";
    if (!*p) {
        json_object_set_new(pol, "ports", json_null());
    } else {
        json_t *ranges = json_array();
        json_object_set_new(pol, "ports", ranges);
        while (next_item(&p, item, sizeof item)) {
            if (!strcmp(item, "none")) continue;
            char *dash = strchr(item, '-');
            long lo, hi;
            if (dash) *dash = '\0';
            if (parse_port(item, &lo) < 0 || parse_port(dash ? dash + 1 : item, &hi) < 0 ||
                hi < lo) {
                json_decref(pol);
                return fp_error_set(err, 0,
                                    "[control] allowed_ports: expected ports and ranges such as "
                                    "\"80, 8000-8999\"");
            }
            json_array_append_new(ranges, json_pack("[I, I]", (json_int_t)lo, (json_int_t)hi));
        }
    }
    json_t *prefixes = json_array();
    json_object_set_new(pol, "host_paths", prefixes);
    char dir[512];
    for (p = host_paths ? host_paths : ""; next_item(&p, dir, sizeof dir);) {
        if (!strcmp(dir, "none")) continue;
        char h[512], c[512];
        bool ro;
        char probe[1100];
        snprintf(probe, sizeof probe, "%s:/x", dir);
        size_t n = strlen(dir);
        if (n < 2 || fp_host_path_parse(probe, h, c, &ro) < 0 || dir[n - 1] == '/') {
            json_decref(pol);
            return fp_error_set(err, 0,
                                "[control] allowed_host_paths: \"%s\" is not an absolute "
                                "directory (not /)",
                                dir);
        }
        json_array_append_new(prefixes, json_string(dir));
    }
    *out = pol;
    return 0;
}

static bool cap_allowed(const char *cap, const json_t *allowed)
{
    if (!fp_capability_default(cap)) return false; /* never more than the default */
    if (!json_is_array(allowed)) return true;
    size_t i;
    json_t *it;
    json_array_foreach(allowed, i, it) if (json_is_string(it) &&
                                           !strcmp(json_string_value(it), cap)) return true;
    return false;
}

/* Is host (normalized) one of the prefixes or below one? */
static bool host_path_allowed(const char *host, const json_t *prefixes)
{
    size_t i;
    json_t *it;
    json_array_foreach(prefixes, i, it)
    {
        const char *pre = json_string_value(it);
        size_t n = pre ? strlen(pre) : 0;
        if (n && !strncmp(host, pre, n) && (host[n] == '\0' || host[n] == '/')) return true;
    }
    return false;
}

/* Where the host paths lead on this node: a symlink below an allowed
 * directory (one a service with it mounted writable can make) must not
 * take a bind mount out of it, and the runtime follows symlinks in a bind
 * mount's source. */
int fp_enforce_host_paths_here(char *const *host_paths, const json_t *policy, char *why,
                               size_t whylen)
{
    if (!host_paths || !host_paths[0]) return 0;
    /* the allowed directories as they resolve here too */
    json_t *dirs = json_array();
    size_t k;
    json_t *it;
    json_array_foreach(json_object_get(policy, "host_paths"), k, it)
    {
        char pre[PATH_MAX];
        const char *dir = json_string_value(it);
        if (dir) json_array_append_new(dirs, json_string(realpath(dir, pre) ? pre : dir));
    }
    int bad = 0;
    for (size_t i = 0; !bad && host_paths[i]; i++) {
        char host[512], ctr[512], real[PATH_MAX];
        bool ro;
        if (fp_host_path_parse(host_paths[i], host, ctr, &ro) < 0) continue;
        if (!realpath(host, real)) {
            /* the runtime would refuse it too; made later, it could be a
             * symlink this check never saw */
            snprintf(why, whylen, "host path %.200s: %s on this node", host, strerror(errno));
            bad = 1;
        } else if (!host_path_allowed(real, dirs)) {
            snprintf(why, whylen,
                     "host path %.200s leads to %.200s, not allowed by the node policy", host,
                     real);
            bad = 1;
        }
    }
    json_decref(dirs);
    return bad;
}

static bool port_allowed(json_int_t port, const json_t *ranges)
{
    if (!json_is_array(ranges)) return true;
    size_t i;
    json_t *r;
    json_array_foreach(ranges, i, r)
    {
        json_int_t lo = json_integer_value(json_array_get(r, 0));
        json_int_t hi = json_integer_value(json_array_get(r, 1));
        if (port >= lo && port <= hi) return true;
    }
    return false;
}

int fp_enforce_privileges(const json_t *def, const json_t *policy, char *why, size_t whylen)
{
    const json_t *caps = json_object_get(def, "capabilities");
    const json_t *allowed = json_object_get(policy, "capabilities");
    size_t i;
    json_t *it;
    if (caps && !json_is_null(caps) && !json_is_array(caps)) {
        snprintf(why, whylen, "capabilities: not a list");
        return 1;
    }
    json_array_foreach(caps, i, it)
    {
        const char *cap = json_string_value(it);
        if (!cap || strlen(cap) != json_string_length(it)) {
            snprintf(why, whylen, "capabilities[%zu]: not a capability name", i);
            return 1;
        }
        if (!cap_allowed(cap, allowed)) {
            snprintf(why, whylen, "capability %.64s is not allowed by the node policy", cap);
            return 1;
        }
    }
    json_array_foreach(json_object_get(def, "ports"), i, it)
    {
        if (!json_is_integer(it)) continue; /* the parser refuses it */
        if (!port_allowed(json_integer_value(it), json_object_get(policy, "ports"))) {
            snprintf(why, whylen, "port %lld is not allowed by the node policy",
                     (long long)json_integer_value(it));
            return 1;
        }
    }
    json_array_foreach(json_object_get(def, "host_paths"), i, it)
    {
        char host[512], ctr[512];
        bool ro;
        const char *hp = json_string_value(it);
        if (!hp || fp_host_path_parse(hp, host, ctr, &ro) < 0) {
            snprintf(why, whylen, "host_paths[%zu]: not HOST:CONTAINER[:ro]", i);
            return 1;
        }
        /* none by default: a host path is a way out of the container */
        if (!host_path_allowed(host, json_object_get(policy, "host_paths"))) {
            snprintf(why, whylen, "host path %.200s is not allowed by the node policy", host);
            return 1;
        }
    }
    return 0;
}
