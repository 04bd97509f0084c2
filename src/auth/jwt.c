#include "auth/jwt.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/cleanup.h"
#include "core/digest.h"

struct fp_key {
    EVP_PKEY *pkey;
    char kid[48];
};

struct fp_keyring {
    fp_key **keys;
    size_t n, cap;
};

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int fp_b64url_encode(const void *in, size_t len, fp_buf *out)
{
    const unsigned char *p = in;
    if (fp_buf_reserve(out, (len + 2) / 3 * 4) < 0) return -1;
    size_t i = 0;
    char q[4];
    for (; i + 3 <= len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        q[0] = b64url[v >> 18];
        q[1] = b64url[(v >> 12) & 63];
        q[2] = b64url[(v >> 6) & 63];
        q[3] = b64url[v & 63];
        fp_buf_append(out, q, 4);
    }
    if (len - i == 1) {
        unsigned v = (unsigned)p[i] << 16;
        q[0] = b64url[v >> 18];
        q[1] = b64url[(v >> 12) & 63];
        fp_buf_append(out, q, 2);
    } else if (len - i == 2) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
        q[0] = b64url[v >> 18];
        q[1] = b64url[(v >> 12) & 63];
        q[2] = b64url[(v >> 6) & 63];
        fp_buf_append(out, q, 3);
    }
    return 0;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

int fp_b64url_decode(const char *in, size_t len, fp_buf *out)
{
    if (len % 4 == 1) return -1;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(in[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            unsigned char c = (unsigned char)(acc >> bits);
            if (fp_buf_append(out, &c, 1) < 0) return -1;
            acc &= (1u << bits) - 1;
        }
    }
    /* leftover bits must be zero (canonical encoding) */
    return acc == 0 ? 0 : -1;
}

/* RFC 7638 thumbprint of an EC P-256 public key. */
static int compute_kid(fp_key *k)
{
    unsigned char *pub = NULL;
    size_t n = EVP_PKEY_get1_encoded_public_key(k->pkey, &pub);
    if (n != 65 || pub[0] != 0x04) {
        OPENSSL_free(pub);
        return -1;
    }
    cleanup_buf fp_buf x = FP_BUF_INIT, y = FP_BUF_INIT, jwk = FP_BUF_INIT;
    fp_b64url_encode(pub + 1, 32, &x);
    fp_b64url_encode(pub + 33, 32, &y);
    OPENSSL_free(pub);
    fp_buf_printf(&jwk, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x.data,
                  y.data);
    unsigned char md[32];
    unsigned mdl = 0;
    if (EVP_Digest(jwk.data, jwk.len, md, &mdl, EVP_sha256(), NULL) != 1) return -1;
    cleanup_buf fp_buf kid = FP_BUF_INIT;
    fp_b64url_encode(md, mdl, &kid);
    snprintf(k->kid, sizeof k->kid, "%s", kid.data);
    return 0;
}

bool fp_evp_is_p256(const void *evp)
{
    EVP_PKEY *pkey = (EVP_PKEY *)evp;
    char group[32] = "";
    size_t gl = 0;
    return EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC &&
           EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                          &gl) == 1 &&
           strcmp(group, "prime256v1") == 0;
}

static fp_key *wrap(EVP_PKEY *pkey)
{
    if (!pkey || !fp_evp_is_p256(pkey)) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    fp_key *k = calloc(1, sizeof *k);
    if (!k) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    k->pkey = pkey;
    if (compute_kid(k) < 0) {
        fp_key_free(k);
        return NULL;
    }
    return k;
}

fp_key *fp_key_from_evp(void *evp)
{
    return wrap(evp);
}

int fp_key_generate(fp_key **out, fp_error *err)
{
    fp_key *k = wrap(EVP_EC_gen("P-256"));
    if (!k) return fp_error_set(err, 0, "cannot generate a P-256 key");
    *out = k;
    return 0;
}

int fp_key_load(const char *path, fp_key **out, fp_error *err)
{
    cleanup_fclose FILE *f = fopen(path, "re");
    if (!f) return fp_error_set(err, errno, "open key %s", path);
    EVP_PKEY *pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    if (!pkey) {
        rewind(f);
        pkey = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    }
    fp_key *k = wrap(pkey);
    if (!k) return fp_error_set(err, 0, "%s: not an EC P-256 key in PEM", path);
    *out = k;
    return 0;
}

int fp_key_save_private(const fp_key *k, const char *path, fp_error *err)
{
    mode_t old = umask(077);
    FILE *f = fopen(path, "we");
    umask(old);
    if (!f) return fp_error_set(err, errno, "create %s", path);
    int ok = PEM_write_PrivateKey(f, k->pkey, NULL, NULL, 0, NULL, NULL) == 1;
    ok = (fclose(f) == 0) && ok;
    return ok ? 0 : fp_error_set(err, EIO, "write %s", path);
}

int fp_key_save_public(const fp_key *k, const char *path, fp_error *err)
{
    FILE *f = fopen(path, "we");
    if (!f) return fp_error_set(err, errno, "create %s", path);
    int ok = PEM_write_PUBKEY(f, k->pkey) == 1;
    ok = (fclose(f) == 0) && ok;
    return ok ? 0 : fp_error_set(err, EIO, "write %s", path);
}

const char *fp_key_id(const fp_key *k)
{
    return k->kid;
}

void *fp_key_evp(const fp_key *k)
{
    return k->pkey;
}

void fp_key_free(fp_key *k)
{
    if (!k) return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

fp_keyring *fp_keyring_new(void)
{
    return calloc(1, sizeof(fp_keyring));
}

int fp_keyring_add(fp_keyring *r, fp_key *k)
{
    if (fp_keyring_find(r, k->kid)) {
        fp_key_free(k);
        return 0;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 4;
        fp_key **g = realloc(r->keys, cap * sizeof *g);
        if (!g) {
            fp_key_free(k);
            return -1;
        }
        r->keys = g;
        r->cap = cap;
    }
    r->keys[r->n++] = k;
    return 0;
}

int fp_keyring_load(fp_keyring *r, const char *path, fp_error *err)
{
    cleanup_fclose FILE *f = fopen(path, "re");
    if (!f) return fp_error_set(err, errno, "open keys %s", path);
    size_t before = r->n;
    EVP_PKEY *pkey;
    while ((pkey = PEM_read_PUBKEY(f, NULL, NULL, NULL))) {
        fp_key *k = wrap(pkey);
        if (!k) return fp_error_set(err, 0, "%s: only EC P-256 public keys are accepted", path);
        if (fp_keyring_add(r, k) < 0) return fp_error_set(err, ENOMEM, "keyring");
    }
    if (r->n == before) return fp_error_set(err, 0, "%s: no PUBLIC KEY found", path);
    return 0;
}

const fp_key *fp_keyring_find(const fp_keyring *r, const char *kid)
{
    for (size_t i = 0; r && i < r->n; i++)
        if (strcmp(r->keys[i]->kid, kid) == 0) return r->keys[i];
    return NULL;
}

size_t fp_keyring_size(const fp_keyring *r)
{
    return r ? r->n : 0;
}

void fp_keyring_free(fp_keyring *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++)
        fp_key_free(r->keys[i]);
    free(r->keys);
    free(r);
}

/* ES256 over data: r||s, 32 bytes each, as JOSE wants (not DER). */
static int es256_raw(const fp_key *k, const void *data, size_t len, unsigned char raw[64],
                     fp_error *err)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[80];
    size_t derlen = sizeof der;
    int ok = md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
             EVP_DigestSign(md, der, &derlen, data, len) == 1;
    EVP_MD_CTX_free(md);
    if (!ok) return fp_error_set(err, 0, "ES256 sign");
    const unsigned char *dp = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &dp, (long)derlen);
    if (!sig) return fp_error_set(err, 0, "ES256 sign: bad signature encoding");
    ok = BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32) == 32 &&
         BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32) == 32;
    ECDSA_SIG_free(sig);
    if (!ok) return fp_error_set(err, 0, "ES256 sign: signature size");
    return 0;
}

/* Does raw (r||s) verify over data with k's public key? */
static bool es256_check(const fp_key *k, const void *data, size_t len, const unsigned char *raw)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, 32, NULL);
    BIGNUM *s = BN_bin2bn(raw + 32, 32, NULL);
    if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
        ECDSA_SIG_free(sig);
        BN_free(r);
        BN_free(s);
        return false;
    }
    unsigned char *der = NULL;
    int derlen = i2d_ECDSA_SIG(sig, &der);
    ECDSA_SIG_free(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = derlen > 0 && md &&
              EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
              EVP_DigestVerify(md, der, (size_t)derlen, data, len) == 1;
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    return ok;
}

int fp_es256_sign(const fp_key *k, const void *data, size_t len, fp_buf *sig, fp_error *err)
{
    unsigned char raw[64];
    if (es256_raw(k, data, len, raw, err) < 0) return -1;
    return fp_b64url_encode(raw, sizeof raw, sig) < 0 ? fp_error_set(err, ENOMEM, "signature") : 0;
}

bool fp_es256_verify(const fp_key *k, const void *data, size_t len, const char *sig)
{
    cleanup_buf fp_buf raw = FP_BUF_INIT;
    if (fp_b64url_decode(sig, strlen(sig), &raw) < 0 || raw.len != 64) return false;
    return es256_check(k, data, len, (const unsigned char *)raw.data);
}

/* header (JSON text) . claims . ES256 signature */
static int sign_with_header(const fp_key *k, const fp_buf *header, const json_t *claims,
                            fp_buf *token, fp_error *err)
{
    cleanup_free char *payload = json_dumps(claims, JSON_COMPACT);
    if (!payload) return fp_error_set(err, ENOMEM, "token claims");
    fp_buf_reset(token);
    fp_b64url_encode(header->data, header->len, token);
    fp_buf_puts(token, ".");
    fp_b64url_encode(payload, strlen(payload), token);
    unsigned char raw[64];
    if (es256_raw(k, token->data, token->len, raw, err) < 0)
        return fp_error_prefix(err, "sign token");
    fp_buf_puts(token, ".");
    fp_b64url_encode(raw, 64, token);
    return 0;
}

int fp_jwt_sign(const fp_key *k, const json_t *claims, fp_buf *token, fp_error *err)
{
    cleanup_buf fp_buf header = FP_BUF_INIT;
    fp_buf_printf(&header, "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", k->kid);
    return sign_with_header(k, &header, claims, token, err);
}

int fp_jwt_sign_x5c(const fp_key *k, const char *x5c, const json_t *claims, fp_buf *token,
                    fp_error *err)
{
    cleanup_buf fp_buf header = FP_BUF_INIT;
    fp_buf_printf(&header, "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"x5c\":%s}", x5c);
    return sign_with_header(k, &header, claims, token, err);
}

static int fail(char *why, size_t whylen, const char *msg)
{
    snprintf(why, whylen, "%s", msg);
    return -1;
}

/* The three parts of a token, split at its two dots; -1 unless there are
 * exactly two. */
static int split(const char *token, size_t len, const char **dot1, const char **dot2)
{
    if (len > 16384) return -1;
    *dot1 = memchr(token, '.', len);
    *dot2 = *dot1 ? memchr(*dot1 + 1, '.', len - (size_t)(*dot1 + 1 - token)) : NULL;
    if (!*dot2 || memchr(*dot2 + 1, '.', len - (size_t)(*dot2 + 1 - token))) return -1;
    return 0;
}

json_t *fp_jwt_header(const char *token, size_t len)
{
    const char *dot1, *dot2;
    if (split(token, len, &dot1, &dot2) < 0) return NULL;
    cleanup_buf fp_buf hdr = FP_BUF_INIT;
    if (fp_b64url_decode(token, (size_t)(dot1 - token), &hdr) < 0) return NULL;
    json_t *h = json_loadb(hdr.data ? hdr.data : "", hdr.len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(h)) {
        json_decref(h);
        return NULL;
    }
    return h;
}

/* Verify with the key named by kid in keys, or with the given key. */
static int verify(const char *token, size_t len, const fp_keyring *keys, const fp_key *given,
                  json_t **claims, char *why, size_t whylen)
{
    *claims = NULL;
    if (len > 16384) return fail(why, whylen, "token too long");
    const char *dot1, *dot2;
    if (split(token, len, &dot1, &dot2) < 0) return fail(why, whylen, "malformed token");
    cleanup_buf fp_buf hdr = FP_BUF_INIT, body = FP_BUF_INIT, sigraw = FP_BUF_INIT;
    if (fp_b64url_decode(token, (size_t)(dot1 - token), &hdr) < 0 ||
        fp_b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &body) < 0 ||
        fp_b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), &sigraw) < 0)
        return fail(why, whylen, "malformed token encoding");
    json_t *h = json_loadb(hdr.data ? hdr.data : "", hdr.len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(h)) {
        json_decref(h);
        return fail(why, whylen, "malformed token header");
    }
    const char *alg = json_string_value(json_object_get(h, "alg"));
    const char *kid = json_string_value(json_object_get(h, "kid"));
    bool alg_ok = alg && strcmp(alg, "ES256") == 0;
    bool crit = json_object_get(h, "crit") != NULL;
    const fp_key *k = !alg_ok ? NULL : given ? given : kid ? fp_keyring_find(keys, kid) : NULL;
    json_decref(h);
    if (!alg_ok) return fail(why, whylen, "token algorithm is not ES256");
    if (crit) return fail(why, whylen, "token has critical header extensions");
    if (!k) return fail(why, whylen, "token signed by an unknown key");
    if (sigraw.len != 64) return fail(why, whylen, "bad token signature");

    if (!es256_check(k, token, (size_t)(dot2 - token), (const unsigned char *)sigraw.data))
        return fail(why, whylen, "token signature does not verify");
    json_t *c = json_loadb(body.data ? body.data : "", body.len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(c)) {
        json_decref(c);
        return fail(why, whylen, "malformed token claims");
    }
    *claims = c;
    return 0;
}

int fp_jwt_verify(const char *token, size_t len, const fp_keyring *keys, json_t **claims, char *why,
                  size_t whylen)
{
    return verify(token, len, keys, NULL, claims, why, whylen);
}

int fp_jwt_verify_key(const char *token, size_t len, const fp_key *key, json_t **claims, char *why,
                      size_t whylen)
{
    return verify(token, len, NULL, key, claims, why, whylen);
}

int fp_key_public_pem(const fp_key *k, fp_buf *pem)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int rc = -1;
    if (bio && PEM_write_bio_PUBKEY(bio, k->pkey) == 1) {
        char *data;
        long len = BIO_get_mem_data(bio, &data);
        rc = fp_buf_append(pem, data, (size_t)len);
    }
    BIO_free(bio);
    return rc;
}
