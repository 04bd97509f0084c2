#include "auth/x5c.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "auth/nodes.h"
#include "auth/pki.h"
#include "core/cleanup.h"

#define MAX_CHAIN 4
#define MAX_CERT  8192 /* base64 characters of one certificate */

struct fp_x5c_trust {
    X509_STORE *store; /* shared by all threads: OpenSSL locks it */
};

int fp_x5c_trust_load(const char *ca_path, fp_x5c_trust **out, fp_error *err)
{
    cleanup_fclose FILE *f = fopen(ca_path, "re");
    if (!f) return fp_error_set(err, errno, "open CA %s", ca_path);
    X509 *ca = PEM_read_X509(f, NULL, NULL, NULL);
    fp_x5c_trust *t = calloc(1, sizeof *t);
    if (!ca || !t || !(t->store = X509_STORE_new()) || X509_STORE_add_cert(t->store, ca) != 1) {
        X509_free(ca);
        fp_x5c_trust_free(t);
        return fp_error_set(err, 0, "%s: no usable CA certificate", ca_path);
    }
    X509_free(ca); /* the store holds its own reference */
    *out = t;
    return 0;
}

void fp_x5c_trust_free(fp_x5c_trust *t)
{
    if (!t) return;
    X509_STORE_free(t->store);
    free(t);
}

int fp_x5c_from_pem(const char *pem, fp_buf *x5c, time_t *not_after, fp_error *err)
{
    BIO *in = BIO_new_mem_buf(pem, -1);
    X509 *c;
    int n = 0;
    fp_buf_puts(x5c, "[");
    while (in && n < MAX_CHAIN && (c = PEM_read_bio_X509(in, NULL, NULL, NULL))) {
        unsigned char *der = NULL;
        int dl = i2d_X509(c, &der);
        if (n == 0 && not_after) {
            struct tm tm;
            *not_after = ASN1_TIME_to_tm(X509_get0_notAfter(c), &tm) == 1 ? timegm(&tm) : 0;
        }
        X509_free(c);
        if (dl <= 0) break;
        /* base64 of dl bytes: 4 per 3, and the NUL EVP_EncodeBlock adds */
        char *b64 = malloc((size_t)(dl + 2) / 3 * 4 + 1);
        if (b64) {
            EVP_EncodeBlock((unsigned char *)b64, der, dl);
            fp_buf_printf(x5c, "%s\"%s\"", n ? "," : "", b64);
            n++;
        }
        free(b64);
        OPENSSL_free(der);
    }
    BIO_free(in);
    fp_buf_puts(x5c, "]");
    return n ? 0 : fp_error_set(err, EINVAL, "no certificate in the signer chain");
}

int fp_x5c_signer_load(const char *key_path, const char *crt_path, fp_key **key, fp_buf *x5c,
                       time_t *not_after, fp_error *err)
{
    *key = NULL;
    cleanup_buf fp_buf pem = FP_BUF_INIT;
    fp_key *k = NULL;
    if (fp_key_load(key_path, &k, err) < 0 || fp_pem_read(crt_path, &pem, err) < 0 ||
        fp_x5c_from_pem(pem.data, x5c, not_after, err) < 0) {
        fp_key_free(k);
        return -1;
    }
    /* the leaf's key must be this key */
    BIO *in = BIO_new_mem_buf(pem.data, (int)pem.len);
    X509 *leaf = in ? PEM_read_bio_X509(in, NULL, NULL, NULL) : NULL;
    BIO_free(in);
    fp_key *pub = leaf ? fp_key_from_evp(X509_get_pubkey(leaf)) : NULL;
    X509_free(leaf);
    bool match = pub && !strcmp(fp_key_id(pub), fp_key_id(k));
    fp_key_free(pub);
    if (!match) {
        fp_key_free(k);
        return fp_error_set(err, 0, "%s does not certify the key in %s", crt_path, key_path);
    }
    *key = k;
    return 0;
}

static int fail(char *why, size_t whylen, const char *msg)
{
    snprintf(why, whylen, "%s", msg);
    return -1;
}

/* One x5c entry (standard base64 of DER, RFC 7515 §4.1.6) as a certificate. */
static X509 *decode_cert(const char *b64)
{
    size_t bl = strlen(b64);
    if (bl == 0 || bl > MAX_CERT || bl % 4) return NULL;
    unsigned char der[MAX_CERT / 4 * 3];
    int dl = EVP_DecodeBlock(der, (const unsigned char *)b64, (int)bl);
    if (dl < 0) return NULL;
    /* EVP_DecodeBlock counts '=' padding as zero bytes */
    for (size_t i = bl; i > 0 && b64[i - 1] == '='; i--)
        dl--;
    const unsigned char *p = der;
    X509 *c = d2i_X509(NULL, &p, dl);
    if (c && p != der + dl) { /* trailing bytes: not one certificate */
        X509_free(c);
        return NULL;
    }
    return c;
}

/* The signer marker: the signer extended key usage, and nothing else in
 * it; digitalSignature; not a CA; OU as the CA writes it. */
static bool is_signer(X509 *leaf)
{
    if (X509_check_ca(leaf) != 0) return false;
    if (!(X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) ||
        !(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE))
        return false;
    EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(leaf, NID_ext_key_usage, NULL, NULL);
    ASN1_OBJECT *want = OBJ_txt2obj(FP_SIGNER_EKU_OID, 1);
    bool ok = eku && want && sk_ASN1_OBJECT_num(eku) == 1 &&
              OBJ_cmp(sk_ASN1_OBJECT_value(eku, 0), want) == 0;
    ASN1_OBJECT_free(want);
    EXTENDED_KEY_USAGE_free(eku);
    char ou[64] = "";
    return ok &&
           X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_organizationalUnitName, ou,
                                     sizeof ou) > 0 &&
           !strcmp(ou, FP_SIGNER_OU);
}

int fp_x5c_verify(const fp_x5c_trust *t, const json_t *x5c, time_t now, char cn[64], fp_key **key,
                  char *why, size_t whylen)
{
    *key = NULL;
    cn[0] = '\0';
    if (!t) return fail(why, whylen, "x5c token but no deployment CA to verify it");
    size_t n = json_array_size(x5c);
    if (!json_is_array(x5c) || n == 0 || n > MAX_CHAIN)
        return fail(why, whylen, "x5c is not a chain of 1 to 4 certificates");
    X509 *leaf = NULL;
    STACK_OF(X509) *rest = sk_X509_new_null();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int rc = -1;
    if (!rest || !ctx) {
        fail(why, whylen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const char *b64 = json_string_value(json_array_get(x5c, i));
        X509 *c = b64 ? decode_cert(b64) : NULL;
        if (!c) {
            fail(why, whylen, "x5c holds a malformed certificate");
            goto out;
        }
        if (i == 0)
            leaf = c;
        else if (!sk_X509_push(rest, c)) {
            X509_free(c);
            fail(why, whylen, "out of memory");
            goto out;
        }
    }
    /* the chain must end at the deployment CA; certificates after the leaf
     * are only candidates for intermediates, never trusted themselves */
    if (X509_STORE_CTX_init(ctx, t->store, leaf, rest) != 1) {
        fail(why, whylen, "out of memory");
        goto out;
    }
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), now);
    if (X509_verify_cert(ctx) != 1) {
        snprintf(why, whylen, "x5c chain does not verify: %s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        goto out;
    }
    if (!is_signer(leaf)) {
        fail(why, whylen, "x5c leaf is not a token-signing certificate");
        goto out;
    }
    char name[64] = "";
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, name, sizeof name) <=
            0 ||
        !fp_node_id_valid(name)) {
        fail(why, whylen, "x5c leaf does not name a node");
        goto out;
    }
    fp_key *k = fp_key_from_evp(X509_get_pubkey(leaf));
    if (!k) {
        fail(why, whylen, "x5c leaf key is not EC P-256");
        goto out;
    }
    snprintf(cn, 64, "%s", name);
    *key = k;
    rc = 0;
out:
    X509_STORE_CTX_free(ctx);
    sk_X509_pop_free(rest, X509_free);
    X509_free(leaf);
    return rc;
}
