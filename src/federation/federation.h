/* Federation: how content flows between nodes. A fog or edge registry asked
 * for something it does not hold fetches it from the nearest holder (the
 * repository's owning fog, then peers ordered by measured round-trip time,
 * then its parent), verifies it against its digest while it streams to the
 * client and into the store, and serves it locally from then on. The node
 * authenticates to other nodes with its own credential, so each holder
 * enforces the cloud's policy on the fog that asks. The cloud fetches a
 * fog-registered service (fog-2/...) from its owner, with a token it signs
 * itself.
 *
 * Loops are impossible by construction: a request from a peer (header
 * Fogport-Peer) is answered from what the node holds or is fetching, never
 * forwarded; requests up the parent chain carry a hop count (Fogport-Hops)
 * and stop at FP_FED_MAX_HOPS. */
#ifndef FP_FEDERATION_FEDERATION_H
#define FP_FEDERATION_FEDERATION_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "core/config.h"
#include "core/error.h"
#include "core/platform.h"
#include "store/store.h"

#define FP_FED_MAX_HOPS 4

typedef struct fp_federation fp_federation;

/* How a request reached this node (from its headers). */
typedef struct fp_fed_origin {
    bool from_peer; /* a peer asks: serve what is here, forward nothing */
    unsigned hops;  /* forwards so far up the parent chain */
    char via[64];   /* replication: ask this peer first, and let it fetch for us */
} fp_fed_origin;

/* NULL in *out (and 0) when this node does not pull through (a standalone
 * registry, a cloud without a token key, or [federation] enabled = false). */
int fp_federation_open(fp_federation **out, const fp_config *cfg, fp_store *store, fp_error *err);
/* The recalled images this node never fetches (borrowed; set before the
 * registry serves). */
struct fp_recall_set;
void fp_federation_set_recalled(fp_federation *f, struct fp_recall_set *recalled);
void fp_federation_free(fp_federation *f);
/* From the serve loop, once a second: refresh the peer list, measure
 * round-trip times. */
void fp_federation_tick(fp_federation *f, time_t now);

/* May this request be forwarded at all? */
bool fp_fed_may_forward(const fp_federation *f, const fp_fed_origin *o);

/* Bring a manifest into the store from the nearest holder. by tag: ask the
 * owner or the parent (tags are theirs to say). 0: stored now;
 * FP_STORE_NOT_FOUND: no holder has it (or may give it to us); -1: error. */
int fp_fed_pull_manifest(fp_federation *f, const char *repo, const char *ref, bool by_digest,
                         const fp_fed_origin *o, fp_error *err);

/* A blob on its way into the store, shared by every request that wants it. */
typedef struct fp_fetch fp_fetch;
/* Start (or join) fetching digest into repo. When start is false (a peer
 * asks) only an existing fetch is joined. Waits until the size is known.
 * FP_STORE_NOT_FOUND: no holder has it. */
int fp_fed_fetch_blob(fp_federation *f, const char *repo, const char *digest, bool start,
                      const fp_fed_origin *o, fp_fetch **out, uint64_t *size, fp_error *err);
/* A reader of a fetch: its bytes as they arrive. */
typedef struct fp_fetch_reader fp_fetch_reader;
int fp_fetch_reader_open(fp_fetch *x, fp_fetch_reader **out, fp_error *err);
/* Copy bytes at pos; waits for them. >0: bytes, 0: end, -1: the fetch
 * failed or its source lied (the reader's stream must be cut). */
long fp_fetch_reader_read(fp_fetch_reader *rd, uint64_t pos, char *buf, size_t max);
void fp_fetch_reader_close(fp_fetch_reader *rd);
/* Wait until the blob is in the store (0) or the fetch failed (-1). */
int fp_fetch_wait(fp_fetch *x);
void fp_fetch_unref(fp_fetch *x);

/* Make store hold image repo@digest (manifest, an index's children, every
 * blob) from the nearest holders; adds the bytes fetched to *bytes (may be
 * NULL). f may be NULL: then only what the store holds counts. */
int fp_fed_hold(fp_federation *f, fp_store *store, const char *repo, const char *digest,
                const fp_fed_origin *o, uint64_t *bytes, fp_error *err);
/* The same for a node that runs one platform: of an index only the
 * manifest for want (core/platform.h) is held, with its blobs; an index
 * with none for want is an error naming the platforms it has. want NULL:
 * every platform, as fp_fed_hold. */
int fp_fed_hold_platform(fp_federation *f, fp_store *store, const char *repo, const char *digest,
                         const fp_platform *want, const fp_fed_origin *o, uint64_t *bytes,
                         fp_error *err);

/* The nearest other node holding repo (one with tags for it): its id,
 * registry URL and measured round trip (-1 when unmeasured). The owner,
 * then peers by round-trip time are asked; the parent answers last (it
 * resolves further up). FP_STORE_NOT_FOUND when nobody has it. */
int fp_fed_resolve(fp_federation *f, const char *repo, char id[64], char url[512], double *rtt_ms,
                   fp_error *err);

/* Forward a referrers query for a subject this node does not hold.
 * *body (malloc'd JSON) on 0; FP_STORE_NOT_FOUND when nobody answers. */
int fp_fed_referrers(fp_federation *f, const char *repo, const char *digest, const char *query,
                     const fp_fed_origin *o, char **body, size_t *len, fp_error *err);

/* Pull-through counters (stats.c): what a node that pulls through
 * answered from its own store (local), and what it brought from another
 * node by the kind of holder that delivered it (or none: no holder had
 * it, or every one failed). */
enum fp_fed_kind { FP_FED_MANIFEST, FP_FED_BLOB, FP_FED_NKINDS };
enum fp_fed_source {
    FP_FED_LOCAL,
    FP_FED_OWNER,  /* the fog that registered the repository */
    FP_FED_PEER,   /* another node of the same level */
    FP_FED_PARENT, /* the node's parent (a fog, or the cloud) */
    FP_FED_NONE,
    FP_FED_NSOURCES
};
void fp_fed_count(fp_federation *f, enum fp_fed_kind kind, enum fp_fed_source src);
uint64_t fp_fed_counted(fp_federation *f, enum fp_fed_kind kind, enum fp_fed_source src);
const char *fp_fed_kind_name(enum fp_fed_kind kind);
const char *fp_fed_source_name(enum fp_fed_source src);

#endif
