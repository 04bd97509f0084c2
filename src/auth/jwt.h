/* JSON Web Tokens as the Docker token flow uses them, signed with ES256
 * (ECDSA P-256, SHA-256) and nothing else: a token whose header names any
 * other algorithm ("none", HS256, RS256 ...) is refused before any key is
 * touched, so algorithm confusion is impossible. Keys are identified by
 * their RFC 7638 JWK thumbprint ("kid"), which lets the cloud rotate keys:
 * a keyring may hold several public keys at once. */
#ifndef FP_AUTH_JWT_H
#define FP_AUTH_JWT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/error.h"

/* base64url without padding (RFC 7515 §2). decode returns -1 on any
 * character outside the alphabet or an impossible length. */
int fp_b64url_encode(const void *in, size_t len, fp_buf *out);
int fp_b64url_decode(const char *in, size_t len, fp_buf *out);

typedef struct fp_key fp_key; /* an EC P-256 key, private or public */

/* Generate a new P-256 key pair. */
int fp_key_generate(fp_key **out, fp_error *err);
/* Load from PEM: a private key ("PRIVATE KEY"/"EC PRIVATE KEY") or a public
 * key ("PUBLIC KEY"). */
int fp_key_load(const char *path, fp_key **out, fp_error *err);
/* Write the private key (mode 0600) or the public half as PEM. */
int fp_key_save_private(const fp_key *k, const char *path, fp_error *err);
int fp_key_save_public(const fp_key *k, const char *path, fp_error *err);
const char *fp_key_id(const fp_key *k);
/* The public half as PEM, appended to pem. */
int fp_key_public_pem(const fp_key *k, fp_buf *pem);
void fp_key_free(fp_key *k);
/* The OpenSSL EVP_PKEY inside (for certificates). */
void *fp_key_evp(const fp_key *k);
/* Is an OpenSSL EVP_PKEY an EC P-256 key? */
bool fp_evp_is_p256(const void *evp);
/* Wrap an OpenSSL EVP_PKEY (a P-256 key; its reference is taken over, and
 * freed on failure). NULL if it is not P-256. */
fp_key *fp_key_from_evp(void *evp);

/* Public keys that tokens may be signed with, looked up by kid. */
typedef struct fp_keyring fp_keyring;
fp_keyring *fp_keyring_new(void);
/* Takes ownership of k. */
int fp_keyring_add(fp_keyring *r, fp_key *k);
/* Every PUBLIC KEY block in a PEM file. */
int fp_keyring_load(fp_keyring *r, const char *path, fp_error *err);
const fp_key *fp_keyring_find(const fp_keyring *r, const char *kid);
size_t fp_keyring_size(const fp_keyring *r);
void fp_keyring_free(fp_keyring *r);

/* ES256 over any bytes (the audit log signs its entries with the token
 * key): sig gets base64url of r||s appended, as in a JWS. */
int fp_es256_sign(const fp_key *k, const void *data, size_t len, fp_buf *sig, fp_error *err);
bool fp_es256_verify(const fp_key *k, const void *data, size_t len, const char *sig);

/* header.payload.signature with {"alg":"ES256","typ":"JWT","kid":...}. */
int fp_jwt_sign(const fp_key *k, const json_t *claims, fp_buf *token, fp_error *err);
/* The same with {"alg":"ES256","typ":"JWT","x5c":X5C}, where x5c is the
 * JSON text of the certificate chain array (src/auth/x5c.h). */
int fp_jwt_sign_x5c(const fp_key *k, const char *x5c, const json_t *claims, fp_buf *token,
                    fp_error *err);
/* The decoded header (caller decrefs), NULL if malformed; nothing is
 * verified: it only says which verification applies (kid or x5c). */
json_t *fp_jwt_header(const char *token, size_t len);
/* Check structure, algorithm, kid and signature; on success *claims is the
 * decoded payload (caller decrefs). Claims are NOT checked here. */
int fp_jwt_verify(const char *token, size_t len, const fp_keyring *keys, json_t **claims, char *why,
                  size_t whylen);
/* The same with one given key instead of a keyring (the kid is ignored). */
int fp_jwt_verify_key(const char *token, size_t len, const fp_key *key, json_t **claims, char *why,
                      size_t whylen);

#endif
