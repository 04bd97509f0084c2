/* A small etcd v3 client over etcd's JSON gateway (/v3/..., etcd 3.4):
 * leases, one-key reads and prefix ranges, compare-and-swap transactions,
 * deletes. Keys and values travel base64 in JSON; 64-bit numbers as
 * strings. The fogs use it to hand always-on services over among
 * themselves while the cloud is away (agent/handover.h).
 *
 * The request bodies and the parsing of answers are separate pure
 * functions (fp_etcd_*_body, fp_etcd_parse_*), unit-tested without an
 * etcd. Every call tries the endpoints in turn, starting with the one that
 * answered last, with short timeouts: a member cut off must not hold a
 * fog's lease keepalive past its TTL. */
#ifndef FP_FEDERATION_ETCD_H
#define FP_FEDERATION_ETCD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"

#define FP_ETCD_MAX_ENDPOINTS 8

typedef struct fp_etcd {
    char endpoints[FP_ETCD_MAX_ENDPOINTS][256]; /* http://host:port, no trailing slash */
    size_t n;
    size_t last_good; /* index to try first */
    long timeout_ms;  /* per request (0: 1500) */
} fp_etcd;

typedef struct fp_etcd_kv {
    char *key, *value; /* decoded, NUL-terminated (malloc()ed) */
    size_t value_len;
    int64_t create_revision, mod_revision, lease;
} fp_etcd_kv;

/* "http://a:2379,http://b:2379" (comma or space separated); -1 when empty,
 * too many or not http(s)://. */
int fp_etcd_init(fp_etcd *e, const char *list, fp_error *err);

/* ---- encoding (pure) ---- */
int fp_etcd_b64(const void *data, size_t len, fp_buf *out);
/* NUL-terminates *out; -1 on bad base64. */
int fp_etcd_unb64(const char *text, char **out, size_t *len);
/* The end of the range of every key starting with prefix (prefix with its
 * last byte incremented), base64 encoded into out. */
int fp_etcd_prefix_end(const char *prefix, fp_buf *out);
/* Transaction: if key does not exist, put value under lease. */
json_t *fp_etcd_txn_create_body(const char *key, const char *value, int64_t lease);
/* Transaction: if key is held by lease, delete it. */
json_t *fp_etcd_txn_delete_if_lease_body(const char *key, int64_t lease);
/* Parse a /v3/kv/range answer (its "kvs"); *out malloc()ed. */
int fp_etcd_parse_range(const json_t *answer, fp_etcd_kv **out, size_t *n, fp_error *err);
/* A 64-bit field that the gateway sends as a string (or a number); 0 when absent. */
int64_t fp_etcd_int(const json_t *v);
void fp_etcd_kvs_free(fp_etcd_kv *kvs, size_t n);

/* ---- calls ---- */
/* POST body to path (e.g. "/v3/kv/range"); *answer the parsed JSON. */
int fp_etcd_call(fp_etcd *e, const char *path, const json_t *body, json_t **answer, fp_error *err);
int fp_etcd_lease_grant(fp_etcd *e, unsigned ttl_s, int64_t *lease, fp_error *err);
/* One keepalive; *ttl is the lease's remaining TTL after it (0: the lease
 * is gone: expired or revoked). */
int fp_etcd_lease_keepalive(fp_etcd *e, int64_t lease, int64_t *ttl, fp_error *err);
int fp_etcd_lease_revoke(fp_etcd *e, int64_t lease, fp_error *err);
int fp_etcd_put(fp_etcd *e, const char *key, const char *value, int64_t lease, fp_error *err);
/* Every key under prefix. */
int fp_etcd_range_prefix(fp_etcd *e, const char *prefix, fp_etcd_kv **out, size_t *n,
                         fp_error *err);
/* Run a transaction body (taken: the builders' answers go in as they
 * are); *succeeded whether its compare held. */
int fp_etcd_txn(fp_etcd *e, json_t *body, bool *succeeded, fp_error *err);

#endif
