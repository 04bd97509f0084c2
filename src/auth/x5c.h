/* Tokens signed by a fog's token-signing certificate ("x5c" tokens, RFC
 * 7515 §4.1.6, allowed by the Docker token spec): while the cloud is
 * unreachable a fog issues tokens itself, with its signer key, and puts its
 * certificate chain (leaf, then the deployment CA) in the JWT header. A
 * registry trusts such a token when the chain verifies up to the deployment
 * CA it holds and the leaf is a signer certificate (src/auth/pki.h) valid
 * now; who the signer may speak for is decided by the caller (authz). */
#ifndef FP_AUTH_X5C_H
#define FP_AUTH_X5C_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

#include "auth/jwt.h"
#include "core/buf.h"
#include "core/error.h"

/* The deployment CA, the only trust anchor for x5c chains. */
typedef struct fp_x5c_trust fp_x5c_trust;
int fp_x5c_trust_load(const char *ca_path, fp_x5c_trust **out, fp_error *err);
void fp_x5c_trust_free(fp_x5c_trust *t);

/* From a PEM chain (leaf first): the header's x5c value as JSON text (an
 * array of standard base64 DER certificates) and the leaf's notAfter. */
int fp_x5c_from_pem(const char *pem, fp_buf *x5c, time_t *not_after, fp_error *err);

/* A fog's signer: its private key (PEM) and certificate chain (PEM), which
 * must belong together; *x5c and *not_after as fp_x5c_from_pem. */
int fp_x5c_signer_load(const char *key_path, const char *crt_path, fp_key **key, fp_buf *x5c,
                       time_t *not_after, fp_error *err);

/* Verify a header's x5c value: 1 to 4 certificates, leaf first, the leaf a
 * signer certificate valid at `now` whose chain ends at the trusted CA, its
 * CN a node id and its key P-256. On success cn gets the CN and *key the
 * leaf's public key (caller frees). */
int fp_x5c_verify(const fp_x5c_trust *t, const json_t *x5c, time_t now, char cn[64], fp_key **key,
                  char *why, size_t whylen);

#endif
