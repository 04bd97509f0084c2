/* The federation object: which nodes this one may fetch from (its parent,
 * its peers from configuration or from the cloud's node directory), how
 * near each is (round-trip times measured every 30 s), and which are down. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/nodes.h"
#include "core/log.h"
#include "federation/fed_internal.h"

#define PEERS_REFRESH_S 10
#define RTT_INTERVAL_S  30
#define RTT_TIMEOUT_S   2
#define DOWN_FOR_S      10

static void trim_url(char *url)
{
    size_t n = strlen(url);
    while (n && url[n - 1] == '/')
        url[--n] = '\0';
}

/* "id=URL, id=URL" */
static size_t parse_peers(const char *list, struct fp_source *out, size_t max)
{
    size_t n = 0;
    for (const char *p = list; *p && n < max;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t len = strcspn(p, ", ");
        const char *eq = memchr(p, '=', len);
        if (eq && eq > p && (size_t)(eq - p) < sizeof out->id && len - (size_t)(eq - p) > 1) {
            struct fp_source *s = &out[n];
            memset(s, 0, sizeof *s);
            snprintf(s->id, sizeof s->id, "%.*s", (int)(eq - p), p);
            snprintf(s->url, sizeof s->url, "%.*s", (int)(len - (size_t)(eq - p) - 1), eq + 1);
            trim_url(s->url);
            s->rtt_ms = -1;
            if (fp_node_id_valid(s->id)) n++;
        }
        p += len;
    }
    return n;
}

/* The cloud: no node credential, no parent. It verifies fogs with its CA,
 * presents its own TLS certificate (a fog may require one), signs its
 * tokens with the token key and finds the owners in its own directory. */
static int open_cloud(fp_federation *f, fp_error *err)
{
    const fp_config *cfg = f->cfg;
    f->cloud = true;
    if (cfg->node_ca[0])
        snprintf(f->cred.cacert, sizeof f->cred.cacert, "%s/ca.crt", cfg->node_ca);
    else
        snprintf(f->cred.cacert, sizeof f->cred.cacert, "%s", cfg->node_cacert);
    if (cfg->tls_cert[0] && cfg->tls_key[0]) {
        snprintf(f->cred.cert, sizeof f->cred.cert, "%s", cfg->tls_cert);
        snprintf(f->cred.key, sizeof f->cred.key, "%s", cfg->tls_key);
        f->cred.has_cert = true;
    }
    if (fp_key_load(cfg->token_key, &f->signing, err) < 0 ||
        fp_directory_open(&f->dir, cfg->data_dir, err) < 0 ||
        fp_nodes_open(&f->nodes, cfg->data_dir, err) < 0)
        return -1;
    fp_info("event=federation role=cloud sources=owners");
    return 0;
}

int fp_federation_open(fp_federation **out, const fp_config *cfg, fp_store *store, fp_error *err)
{
    *out = NULL;
    bool fog = !strcmp(cfg->node_role, "fog"), edge = !strcmp(cfg->node_role, "edge");
    /* a cloud fetches fog-registered services from their owners; without a
     * token key it has nothing to authenticate to them with */
    bool cloud = !strcmp(cfg->node_role, "cloud") && cfg->token_key[0];
    if (!cfg->fed_enabled || (!fog && !edge && !cloud)) return 0;
    fp_federation *f = calloc(1, sizeof *f);
    if (!f) return fp_error_set(err, ENOMEM, "federation");
    f->cfg = cfg;
    f->store = store;
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->threads_done, NULL);
    if (cloud) {
        if (open_cloud(f, err) < 0) {
            fp_federation_free(f);
            return -1;
        }
        *out = f;
        return 0;
    }
    if (fp_node_cred_load(cfg, &f->cred, err) < 0) {
        fp_federation_free(f);
        return -1;
    }
    /* a fog's parent is the cloud unless configured; an edge names its fog */
    const char *parent = cfg->node_parent[0] ? cfg->node_parent : cfg->node_cloud;
    if (parent[0]) {
        f->has_parent = true;
        snprintf(f->parent.id, sizeof f->parent.id, "%s", "parent");
        snprintf(f->parent.url, sizeof f->parent.url, "%s", parent);
        trim_url(f->parent.url);
        f->parent.parent = true;
        f->parent.kind = FP_FED_PARENT;
        f->parent.rtt_ms = -1;
    }
    /* edges take everything from their fog; fogs also share among peers */
    if (fog && cfg->fed_peers[0]) {
        f->npeers = parse_peers(cfg->fed_peers, f->peers, FED_MAX_SOURCES);
        f->peers_configured = true;
    }
    fp_info("event=federation parent=%s peers=%s", f->has_parent ? f->parent.url : "-",
            f->peers_configured ? "configured" : (fog ? "directory" : "none"));
    *out = f;
    return 0;
}

void fp_federation_free(fp_federation *f)
{
    if (!f) return;
    /* fetch threads hold the store: wait for them */
    pthread_mutex_lock(&f->lock);
    while (f->threads)
        pthread_cond_wait(&f->threads_done, &f->lock);
    pthread_mutex_unlock(&f->lock);
    for (size_t i = 0; i < FED_TOKEN_SLOTS; i++)
        free(f->tokens[i].token);
    fp_node_cred_clear(&f->cred);
    fp_key_free(f->signing);
    fp_directory_close(f->dir);
    fp_nodes_close(f->nodes);
    pthread_cond_destroy(&f->threads_done);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

bool fp_fed_may_forward(const fp_federation *f, const fp_fed_origin *o)
{
    return f && !o->from_peer && o->hops < FP_FED_MAX_HOPS;
}

static int by_rtt(const void *a, const void *b)
{
    const struct fp_source *x = a, *y = b;
    /* unmeasured peers after measured ones, in their given order */
    double rx = x->rtt_ms < 0 ? 1e12 : x->rtt_ms, ry = y->rtt_ms < 0 ? 1e12 : y->rtt_ms;
    return rx < ry ? -1 : rx > ry ? 1 : 0;
}

static size_t cloud_owner(fp_federation *f, const char *repo, struct fp_source *out);

size_t fp_fed_sources(fp_federation *f, const char *repo, bool by_digest, const char *via,
                      struct fp_source *out, size_t max)
{
    size_t n = 0, owner_len = strcspn(repo, "/");
    time_t now = time(NULL);
    /* this node's own namespace: it is the authority, nobody else has it */
    if (repo[owner_len] == '/' && strlen(f->cfg->node_id) == owner_len &&
        !memcmp(f->cfg->node_id, repo, owner_len))
        return 0;
    /* the cloud asks owners only: whatever else a fog holds came from it */
    if (f->cloud) return max ? cloud_owner(f, repo, out) : 0;
    pthread_mutex_lock(&f->lock);
    struct fp_source peers[FED_MAX_SOURCES];
    size_t np = f->npeers;
    memcpy(peers, f->peers, np * sizeof *peers);
    struct fp_source parent = f->parent;
    bool has_parent = f->has_parent;
    pthread_mutex_unlock(&f->lock);
    if (!f->cfg->fed_peer_order_config) qsort(peers, np, sizeof *peers, by_rtt);
    for (size_t i = 0; via && via[0] && i < np && n < max; i++)
        if (!strcmp(peers[i].id, via)) {
            out[n] = peers[i];
            out[n].kind = FP_FED_PEER;
            out[n++].parent = true; /* asked like a parent: it fetches what it lacks */
        }
    /* the fog that registered the service holds it for sure */
    for (size_t i = 0; i < np && n < max; i++)
        if (repo[owner_len] == '/' && strlen(peers[i].id) == owner_len &&
            !memcmp(peers[i].id, repo, owner_len) && peers[i].down_until <= now) {
            out[n] = peers[i];
            out[n++].kind = FP_FED_OWNER;
        }
    /* a tag is its owner's or the parent's to say; content by digest is
     * the same wherever it is, so the nearest peer will do */
    for (size_t i = 0; by_digest && i < np && n < max; i++) {
        bool owner = strlen(peers[i].id) == owner_len && !memcmp(peers[i].id, repo, owner_len);
        bool seed = via && !strcmp(peers[i].id, via);
        if (!owner && !seed && peers[i].down_until <= now) {
            out[n] = peers[i];
            out[n++].kind = FP_FED_PEER;
        }
    }
    /* the parent is the last resort, even when it failed lately */
    if (has_parent && n < max) out[n++] = parent;
    return n;
}

void fp_fed_source_failed(fp_federation *f, const char *id)
{
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < f->npeers; i++)
        if (!strcmp(f->peers[i].id, id)) f->peers[i].down_until = time(NULL) + DOWN_FOR_S;
    pthread_mutex_unlock(&f->lock);
}

/* Replace the peer list, keeping what was measured about peers that stay. */
static void install_peers(fp_federation *f, struct fp_source *fresh, size_t n)
{
    pthread_mutex_lock(&f->lock);
    for (size_t k = 0; k < n; k++)
        for (size_t j = 0; j < f->npeers; j++)
            if (!strcmp(fresh[k].id, f->peers[j].id) && !strcmp(fresh[k].url, f->peers[j].url)) {
                fresh[k].rtt_ms = f->peers[j].rtt_ms;
                fresh[k].down_until = f->peers[j].down_until;
            }
    memcpy(f->peers, fresh, n * sizeof *fresh);
    f->npeers = n;
    pthread_mutex_unlock(&f->lock);
}

static bool add_peer(struct fp_source *out, size_t *n, const char *id, const char *url)
{
    if (*n >= FED_MAX_SOURCES || !url[0] || strlen(url) >= sizeof out->url ||
        strlen(id) >= sizeof out->id)
        return false;
    struct fp_source *s = &out[(*n)++];
    memset(s, 0, sizeof *s);
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->url, sizeof s->url, "%s", url);
    trim_url(s->url);
    s->rtt_ms = -1;
    return true;
}

/* The cloud: the node whose namespace repo is (its first component), when
 * it joined, is not revoked and said where it is. Looked up at each miss,
 * so a deployment of any size needs no list kept here. */
struct owner_scan {
    const char *id;
    struct fp_source *out;
    bool found;
};

static int owner_location(void *ctx, const fp_directory_entry *e)
{
    struct owner_scan *os = ctx;
    if (strcmp(e->id, os->id) != 0) return 0;
    size_t n = 0;
    os->found = add_peer(os->out, &n, e->id, e->url);
    return 1;
}

static size_t cloud_owner(fp_federation *f, const char *repo, struct fp_source *out)
{
    char id[FP_NODE_ID_MAX + 1];
    size_t len = strcspn(repo, "/");
    if (!repo[len] || len >= sizeof id) return 0;
    memcpy(id, repo, len);
    id[len] = '\0';
    if (!fp_node_id_valid(id) || !fp_nodes_known(f->nodes, id) || fp_nodes_revoked(f->nodes, id))
        return 0;
    struct owner_scan os = {.id = id, .out = out};
    fp_error err;
    if (fp_directory_list(f->dir, owner_location, &os, &err) < 0) {
        fp_warn("event=directory_unavailable error=\"%s\"", err.msg);
        return 0;
    }
    if (!os.found) return 0;
    out->kind = FP_FED_OWNER;
    return 1;
}

/* Peers from the cloud's node directory: the other fogs that have a URL. */
static void refresh_peers(fp_federation *f)
{
    char url[600];
    snprintf(url, sizeof url, "%s/api/v1/nodes", f->cfg->node_cloud);
    fp_http_opts o = {.timeout_s = 5};
    fp_node_cred_opts(&f->cred, &o);
    fp_http_response resp;
    fp_error err;
    if (fp_http_get(url, &o, &resp, &err) < 0) {
        fp_debug("event=directory_unavailable error=\"%s\"", err.msg);
        return;
    }
    json_t *doc = resp.status == 200 ? json_loadb(resp.body.data, resp.body.len, 0, NULL) : NULL;
    fp_http_response_free(&resp);
    struct fp_source fresh[FED_MAX_SOURCES];
    size_t n = 0, i;
    json_t *node;
    json_array_foreach(json_object_get(doc, "nodes"), i, node)
    {
        const char *id = json_string_value(json_object_get(node, "id"));
        const char *role = json_string_value(json_object_get(node, "role"));
        const char *nurl = json_string_value(json_object_get(node, "url"));
        if (!id || !role || !nurl || strcmp(role, "fog") != 0 || !strcmp(id, f->cfg->node_id) ||
            json_is_true(json_object_get(node, "revoked")))
            continue;
        add_peer(fresh, &n, id, nurl);
    }
    bool ok = json_is_array(json_object_get(doc, "nodes"));
    json_decref(doc);
    if (!ok) return; /* keep the peers we know */
    install_peers(f, fresh, n);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Round trip of GET /v2/ (any HTTP answer counts: 401 is normal). The
 * best of three, so one slow handshake does not decide. */
static double measure(const fp_federation *f, const char *base)
{
    char url[600];
    snprintf(url, sizeof url, "%s/v2/", base);
    /* a round trip that takes seconds says "far" enough; a longer wait
     * would only hold the upkeep thread (and a shutdown waiting for it) */
    unsigned timeout = f->cfg->fed_peer_timeout_s ? f->cfg->fed_peer_timeout_s : 3;
    fp_http_opts o = {.timeout_s = timeout < RTT_TIMEOUT_S ? timeout : RTT_TIMEOUT_S,
                      .cacert = f->cred.cacert[0] ? f->cred.cacert : NULL};
    double best = -1;
    for (int i = 0; i < 3; i++) {
        fp_http_response resp;
        fp_error err;
        double t0 = now_ms();
        if (fp_http_get(url, &o, &resp, &err) < 0) return -1;
        double dt = now_ms() - t0;
        fp_http_response_free(&resp);
        if (best < 0 || dt < best) best = dt;
    }
    return best;
}

static void measure_all(fp_federation *f)
{
    struct fp_source peers[FED_MAX_SOURCES];
    pthread_mutex_lock(&f->lock);
    size_t np = f->npeers;
    memcpy(peers, f->peers, np * sizeof *peers);
    pthread_mutex_unlock(&f->lock);
    for (size_t i = 0; i < np; i++) {
        double rtt = measure(f, peers[i].url);
        pthread_mutex_lock(&f->lock);
        for (size_t j = 0; j < f->npeers; j++)
            if (!strcmp(f->peers[j].id, peers[i].id)) {
                f->peers[j].rtt_ms = rtt;
                if (rtt < 0) f->peers[j].down_until = time(NULL) + DOWN_FOR_S;
            }
        pthread_mutex_unlock(&f->lock);
        fp_debug("event=peer_rtt peer=%s rtt_ms=%.2f", peers[i].id, rtt);
    }
}

/* What upkeep is due now. Under the lock. */
static void upkeep_due(const fp_federation *f, time_t now, bool *peers, bool *rtt)
{
    bool fog = !strcmp(f->cfg->node_role, "fog");
    *peers = fog && !f->peers_configured && now >= f->next_peers;
    /* the cloud asks each namespace's owner only: nothing to choose by */
    *rtt = !f->cloud && (*peers || now >= f->next_rtt);
}

/* Peer upkeep talks to other nodes, any of which may be slow or stopped:
 * it runs on a thread of its own, so the serve loop (and the heartbeat it
 * sends) never waits on a peer. Done in the serve loop, a paused fog held
 * its neighbours' heartbeats for a probe's timeout and made them look
 * dead to the cloud. One upkeep thread at a time. */
static void *upkeep_main(void *arg)
{
    fp_federation *f = arg;
    time_t now = time(NULL);
    pthread_mutex_lock(&f->lock);
    bool peers, rtt;
    upkeep_due(f, now, &peers, &rtt);
    pthread_mutex_unlock(&f->lock);
    if (peers) refresh_peers(f);
    if (rtt) measure_all(f);
    pthread_mutex_lock(&f->lock);
    /* soon again while the deployment is still coming up */
    if (peers) f->next_peers = now + (f->npeers ? PEERS_REFRESH_S : 2);
    if (rtt) f->next_rtt = time(NULL) + RTT_INTERVAL_S;
    f->upkeep_running = false;
    if (--f->threads == 0) pthread_cond_broadcast(&f->threads_done);
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

void fp_federation_tick(fp_federation *f, time_t now)
{
    if (!f) return;
    pthread_mutex_lock(&f->lock);
    bool peers, rtt;
    upkeep_due(f, now, &peers, &rtt);
    bool start = !f->upkeep_running && (peers || rtt);
    if (start) {
        f->upkeep_running = true;
        f->threads++; /* fp_federation_free waits for it like for a fetch */
    }
    pthread_mutex_unlock(&f->lock);
    if (!start) return;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t th;
    if (pthread_create(&th, &attr, upkeep_main, f) != 0) {
        pthread_mutex_lock(&f->lock);
        f->upkeep_running = false;
        if (--f->threads == 0) pthread_cond_broadcast(&f->threads_done);
        pthread_mutex_unlock(&f->lock);
        fp_warn("event=federation_upkeep_failed error=\"cannot start a thread\"");
    }
    pthread_attr_destroy(&attr);
}

void fp_federation_set_recalled(fp_federation *f, struct fp_recall_set *recalled)
{
    if (f) f->recalled = recalled;
}
