/* Internal to src/federation: the federation object shared by its files. */
#ifndef FP_FEDERATION_INTERNAL_H
#define FP_FEDERATION_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "auth/join.h"
#include "auth/jwt.h"
#include "auth/nodes.h"
#include "core/http_client.h"
#include "core/name.h"
#include "federation/directory.h"
#include "federation/federation.h"

#define FED_MAX_SOURCES 16
#define FED_TOKEN_SLOTS 64

/* A node content may come from. */
struct fp_source {
    char id[64];
    char url[512];
    bool parent;
    enum fp_fed_source kind; /* for the pull-through counters */
    double rtt_ms;           /* last measured round trip; < 0: not measured */
    time_t down_until;       /* skipped until then after a failure */
};

struct fed_token {
    char key[640]; /* source URL + " " + repository */
    char *token;
    time_t expires;
};

struct fp_federation {
    const fp_config *cfg;
    fp_store *store;
    fp_node_cred cred;              /* the cloud: only its CA and TLS certificate */
    struct fp_recall_set *recalled; /* never fetched (control/recallset.h), or NULL */
    /* The cloud: its sources are the fogs that own a namespace (from its
     * own directory), and it authenticates to them with tokens it signs
     * itself: fogs trust the cloud's token key. */
    bool cloud;
    fp_key *signing;
    fp_directory *dir;
    fp_nodes *nodes;
    pthread_mutex_t lock; /* guards everything below */
    struct fp_source parent;
    bool has_parent;
    struct fp_source peers[FED_MAX_SOURCES];
    size_t npeers;
    bool peers_configured; /* from [federation] peers, not the directory */
    time_t next_peers, next_rtt;
    bool upkeep_running; /* the peer upkeep thread (federation.c) */
    struct fed_token tokens[FED_TOKEN_SLOTS];
    struct fp_fetch *inflight; /* blob fetches under way */
    /* pull-through counters by kind and source (stats.c; no lock) */
    atomic_uint_fast64_t pulled[FP_FED_NKINDS][FP_FED_NSOURCES];
    unsigned threads; /* fetch threads and the upkeep thread running */
    pthread_cond_t threads_done;
};

/* The holders to ask for repo, nearest first: the owning fog (a peer whose
 * id is the repository's first component), then for content addressed by
 * digest the other peers by round-trip time, then the parent. via (a
 * replication seed) goes first and may fetch on our behalf. */
size_t fp_fed_sources(fp_federation *f, const char *repo, bool by_digest, const char *via,
                      struct fp_source *out, size_t max);
/* A source failed: skip it for a while. */
void fp_fed_source_failed(fp_federation *f, const char *id);

/* A hedged race between holders (hedge.c): one attempt per holder, each
 * on its own thread, the next holder asked when those asked so far have
 * been silent for [federation] hedge_after (or at once when they all ended
 * without an answer). The first attempt to claim the race wins; the others
 * are told (fp_fed_race_lost, polled by their transfers through
 * fp_fed_race_opts) and end on their own. */
#define FED_RACE_MAX (FED_MAX_SOURCES + 2)
typedef struct fed_race fed_race;
struct fed_race_spec {
    /* One attempt at src; its result is the caller's convention. slot
     * names the attempt in fp_fed_race_claim/lost/opts. */
    int (*attempt)(fed_race *race, unsigned slot, const struct fp_source *src, void *ctx);
    void *ctx;
    /* attempts may outlive the race's return: ctx is kept alive for them */
    void (*ctx_ref)(void *ctx);
    void (*ctx_unref)(void *ctx);
    bool hedge; /* false: one holder at a time */
};
/* Ask src[*next], src[*next + 1] ... until an attempt claims the race and
 * ends. Returns the index in src of the winner (*rc its result), or -1
 * when every holder was asked and none claimed. *next: the first holder
 * not asked. Losers may still be running when this returns. */
int fp_fed_race_run(fp_federation *f, const struct fp_source *src, size_t n, size_t *next,
                    const struct fed_race_spec *spec, int *rc);
/* From an attempt: take the race; true when this attempt holds it. */
bool fp_fed_race_claim(fed_race *r, unsigned slot);
/* Has another attempt won? */
bool fp_fed_race_lost(fed_race *r, unsigned slot);
/* Make the attempt's HTTP transfers end once another attempt has won. */
void fp_fed_race_opts(fed_race *r, unsigned slot, fp_http_opts *opts);

/* One request to a source as this node, with a cached token for the
 * repository's pull scope (fetched on a 401 Bearer challenge), and the
 * forwarding headers that prevent loops. extra: more header lines
 * (NULL-terminated) or NULL. */
int fp_fed_call(fp_federation *f, const struct fp_source *src, const char *method, const char *path,
                const char *repo, const fp_fed_origin *o, const char *const *extra,
                fp_http_opts *opts, fp_http_response *resp, fp_error *err);

#endif
