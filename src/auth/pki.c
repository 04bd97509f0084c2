#include "auth/pki.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/jwt.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fs.h"

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext) return -1;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : -1;
}

/* A certificate for key, named cn (in organizational unit ou, if any), valid
 * for days, not yet signed. */
static X509 *new_cert(EVP_PKEY *key, const char *cn, const char *ou, unsigned days)
{
    X509 *cert = X509_new();
    if (!cert) return NULL;
    unsigned char serial[16];
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7f; /* positive */
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    ASN1_INTEGER *sn = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    X509_NAME *name = X509_NAME_new();
    bool ok = sn && name && X509_set_version(cert, 2) == 1 &&
              X509_set_serialNumber(cert, sn) == 1 &&
              X509_gmtime_adj(X509_getm_notBefore(cert), -3600) &&
              X509_gmtime_adj(X509_getm_notAfter(cert), (long)days * 86400) &&
              X509_set_pubkey(cert, key) == 1 &&
              X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"fogport",
                                         -1, -1, 0) == 1 &&
              (!ou || X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_UTF8,
                                                 (const unsigned char *)ou, -1, -1, 0) == 1) &&
              X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                         -1, 0) == 1 &&
              X509_set_subject_name(cert, name) == 1;
    ASN1_INTEGER_free(sn);
    BN_free(bn);
    X509_NAME_free(name);
    if (!ok) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

static int write_certs(const char *path, X509 *a, X509 *b, fp_error *err)
{
    FILE *f = fopen(path, "we");
    if (!f) return fp_error_set(err, errno, "create %s", path);
    int ok = PEM_write_X509(f, a) == 1 && (!b || PEM_write_X509(f, b) == 1);
    ok = fclose(f) == 0 && ok;
    return ok ? 0 : fp_error_set(err, EIO, "write %s", path);
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

int fp_ca_init(const char *dir, const char *name, fp_error *err)
{
    char p_key[4096], p_crt[4096], p_tok[4096], p_pub[4096];
    snprintf(p_key, sizeof p_key, "%s/ca.key", dir);
    snprintf(p_crt, sizeof p_crt, "%s/ca.crt", dir);
    snprintf(p_tok, sizeof p_tok, "%s/token.key", dir);
    snprintf(p_pub, sizeof p_pub, "%s/token.pub", dir);
    if (exists(p_key) || exists(p_crt))
        return fp_error_set(err, EEXIST, "%s already holds a CA; not overwriting it", dir);
    if (fp_mkdir_p(dir, 0700, err) < 0) return -1;
    fp_key *ca = NULL, *tok = NULL;
    if (fp_key_generate(&ca, err) < 0) return -1;
    EVP_PKEY *pkey = fp_key_evp(ca);
    X509 *cert = new_cert(pkey, name, NULL, 3650);
    int rc = -1;
    if (!cert || X509_set_issuer_name(cert, X509_get_subject_name(cert)) != 1 ||
        add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:1") < 0 ||
        add_ext(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature") < 0 ||
        add_ext(cert, cert, NID_subject_key_identifier, "hash") < 0 ||
        X509_sign(cert, pkey, EVP_sha256()) <= 0) {
        fp_error_set(err, 0, "create CA certificate");
        goto out;
    }
    if (fp_key_save_private(ca, p_key, err) < 0 || write_certs(p_crt, cert, NULL, err) < 0 ||
        fp_key_generate(&tok, err) < 0 || fp_key_save_private(tok, p_tok, err) < 0 ||
        fp_key_save_public(tok, p_pub, err) < 0)
        goto out;
    rc = 0;
out:
    X509_free(cert);
    fp_key_free(ca);
    fp_key_free(tok);
    return rc;
}

/* Make cert a leaf for TLS servers and clients, valid for the names in san,
 * issued and signed by the CA. */
static int sign_leaf(X509 *cert, X509 *ca_cert, fp_key *ca_key, const char *san)
{
    return X509_set_issuer_name(cert, X509_get_subject_name(ca_cert)) == 1 &&
                   add_ext(cert, ca_cert, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
                   add_ext(cert, ca_cert, NID_key_usage,
                           "critical,digitalSignature,keyAgreement") == 0 &&
                   add_ext(cert, ca_cert, NID_ext_key_usage, "serverAuth,clientAuth") == 0 &&
                   add_ext(cert, ca_cert, NID_subject_alt_name, san) == 0 &&
                   add_ext(cert, ca_cert, NID_authority_key_identifier, "keyid") == 0 &&
                   X509_sign(cert, fp_key_evp(ca_key), EVP_sha256()) > 0
               ? 0
               : -1;
}

static X509 *load_cert(const char *path, fp_error *err)
{
    cleanup_fclose FILE *f = fopen(path, "re");
    if (!f) {
        fp_error_set(err, errno, "open %s", path);
        return NULL;
    }
    X509 *c = PEM_read_X509(f, NULL, NULL, NULL);
    if (!c) fp_error_set(err, 0, "%s: no certificate", path);
    return c;
}

static int san_text(fp_buf *san, const char *const *dns, size_t ndns, const char *const *ips,
                    size_t nips)
{
    for (size_t i = 0; i < ndns; i++)
        fp_buf_printf(san, "%sDNS:%s", san->len ? "," : "", dns[i]);
    for (size_t i = 0; i < nips; i++)
        fp_buf_printf(san, "%sIP:%s", san->len ? "," : "", ips[i]);
    return san->len ? 0 : -1;
}

int fp_cert_issue(const char *ca_dir, const char *cn, const char *const *dns, size_t ndns,
                  const char *const *ips, size_t nips, unsigned days, const char *prefix,
                  fp_error *err)
{
    char p_key[4096], p_crt[4096], o_key[4096], o_crt[4096];
    snprintf(p_key, sizeof p_key, "%s/ca.key", ca_dir);
    snprintf(p_crt, sizeof p_crt, "%s/ca.crt", ca_dir);
    snprintf(o_key, sizeof o_key, "%s.key", prefix);
    snprintf(o_crt, sizeof o_crt, "%s.crt", prefix);
    cleanup_buf fp_buf san = FP_BUF_INIT;
    if (san_text(&san, dns, ndns, ips, nips) < 0)
        return fp_error_set(err, EINVAL, "a certificate needs at least one --dns or --ip");
    fp_key *ca = NULL, *leaf = NULL;
    X509 *ca_cert = NULL, *cert = NULL;
    int rc = -1;
    if (fp_key_load(p_key, &ca, err) < 0 || !(ca_cert = load_cert(p_crt, err)) ||
        fp_key_generate(&leaf, err) < 0)
        goto out;
    cert = new_cert(fp_key_evp(leaf), cn, NULL, days ? days : 365);
    if (!cert || sign_leaf(cert, ca_cert, ca, san.data) < 0) {
        fp_error_set(err, 0, "issue certificate for %s (names: %s)", cn, san.data);
        goto out;
    }
    if (fp_key_save_private(leaf, o_key, err) < 0 || write_certs(o_crt, cert, ca_cert, err) < 0)
        goto out;
    rc = 0;
out:
    X509_free(cert);
    X509_free(ca_cert);
    fp_key_free(ca);
    fp_key_free(leaf);
    return rc;
}

int fp_pem_read(const char *path, fp_buf *pem, fp_error *err)
{
    cleanup_free char *text = NULL;
    size_t len;
    if (fp_read_file(path, 1 << 20, &text, &len, err) < 0) return -1;
    return fp_buf_append(pem, text, len);
}

int fp_csr_create(void *evp_key, const char *cn, const char *const *dns, size_t ndns,
                  const char *const *ips, size_t nips, fp_buf *pem, fp_error *err)
{
    cleanup_buf fp_buf san = FP_BUF_INIT;
    if (san_text(&san, dns, ndns, ips, nips) < 0)
        return fp_error_set(err, EINVAL, "a certificate request needs a DNS name or IP address");
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san.data);
    BIO *bio = BIO_new(BIO_s_mem());
    bool ok = req && name && exts && ext && bio &&
              X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                         -1, 0) == 1 &&
              X509_REQ_set_subject_name(req, name) == 1 && X509_REQ_set_pubkey(req, evp_key) == 1 &&
              sk_X509_EXTENSION_push(exts, ext) > 0;
    if (ok) {
        ext = NULL; /* owned by exts now */
        ok = X509_REQ_add_extensions(req, exts) == 1 &&
             X509_REQ_sign(req, evp_key, EVP_sha256()) > 0 && PEM_write_bio_X509_REQ(bio, req) == 1;
    }
    if (ok) {
        char *data;
        long len = BIO_get_mem_data(bio, &data);
        ok = fp_buf_append(pem, data, (size_t)len) == 0;
    }
    X509_EXTENSION_free(ext);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME_free(name);
    X509_REQ_free(req);
    BIO_free(bio);
    return ok ? 0 : fp_error_set(err, 0, "create certificate request");
}

/* A certificate request from PEM whose signature proves its key. */
static X509_REQ *read_csr(const char *csr_pem, fp_error *err)
{
    BIO *in = BIO_new_mem_buf(csr_pem, -1);
    X509_REQ *req = in ? PEM_read_bio_X509_REQ(in, NULL, NULL, NULL) : NULL;
    BIO_free(in);
    if (!req) {
        fp_error_set(err, EINVAL, "not a PEM certificate request");
        return NULL;
    }
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    if (!pub || X509_REQ_verify(req, pub) != 1) {
        X509_REQ_free(req);
        fp_error_set(err, EINVAL, "certificate request signature does not verify");
        return NULL;
    }
    return req;
}

int fp_csr_sign(const char *ca_dir, const char *csr_pem, const char *cn, const char *allowed_ip,
                unsigned days, fp_buf *pem, fp_error *err)
{
    char p_key[4096], p_crt[4096];
    snprintf(p_key, sizeof p_key, "%s/ca.key", ca_dir);
    snprintf(p_crt, sizeof p_crt, "%s/ca.crt", ca_dir);
    X509_REQ *req = read_csr(csr_pem, err);
    if (!req) return -1;
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    /* the node's own name always; requested names only where they are its */
    cleanup_buf fp_buf san = FP_BUF_INIT;
    fp_buf_printf(&san, "DNS:%s", cn);
    size_t cnl = strlen(cn);
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    for (int i = 0; exts && i < sk_X509_EXTENSION_num(exts); i++) {
        X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);
        if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) != NID_subject_alt_name) continue;
        GENERAL_NAMES *gens = X509V3_EXT_d2i(e);
        for (int k = 0; gens && k < sk_GENERAL_NAME_num(gens); k++) {
            GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, k);
            if (g->type == GEN_DNS) {
                const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
                int l = ASN1_STRING_length(g->d.dNSName);
                bool clean = l > 0 && l < 254;
                for (int c = 0; clean && c < l; c++)
                    clean = (d[c] >= 'a' && d[c] <= 'z') || (d[c] >= 'A' && d[c] <= 'Z') ||
                            (d[c] >= '0' && d[c] <= '9') || d[c] == '.' || d[c] == '-';
                bool under =
                    (size_t)l > cnl + 1 && !strncmp((const char *)d, cn, cnl) && d[cnl] == '.';
                if (clean && under) fp_buf_printf(&san, ",DNS:%.*s", l, (const char *)d);
            } else if (g->type == GEN_IPADD) {
                const unsigned char *ip = ASN1_STRING_get0_data(g->d.iPAddress);
                int l = ASN1_STRING_length(g->d.iPAddress);
                char txt[INET6_ADDRSTRLEN];
                if ((l == 4 || l == 16) &&
                    inet_ntop(l == 4 ? AF_INET : AF_INET6, ip, txt, sizeof txt) && allowed_ip &&
                    !strcmp(txt, allowed_ip))
                    fp_buf_printf(&san, ",IP:%s", txt);
            }
        }
        GENERAL_NAMES_free(gens);
    }
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    fp_key *ca = NULL;
    X509 *ca_cert = NULL, *cert = NULL;
    int rc = -1;
    if (fp_key_load(p_key, &ca, err) < 0 || !(ca_cert = load_cert(p_crt, err))) goto out;
    cert = new_cert(pub, cn, NULL, days ? days : 365);
    BIO *out = BIO_new(BIO_s_mem());
    if (!cert || !out || sign_leaf(cert, ca_cert, ca, san.data) < 0 ||
        PEM_write_bio_X509(out, cert) != 1 || PEM_write_bio_X509(out, ca_cert) != 1) {
        BIO_free(out);
        fp_error_set(err, 0, "sign certificate for %s", cn);
        goto out;
    }
    char *data;
    long len = BIO_get_mem_data(out, &data);
    rc = fp_buf_append(pem, data, (size_t)len);
    BIO_free(out);
out:
    X509_free(cert);
    X509_free(ca_cert);
    fp_key_free(ca);
    X509_REQ_free(req);
    return rc;
}

/* Make cert a token-signing certificate: digital signatures only, and the
 * signer extended key usage, critical, alone. Without serverAuth/clientAuth
 * and without names it is useless for TLS; a TLS certificate lacks the
 * signer usage, so it is useless for tokens. */
static int sign_signer(X509 *cert, X509 *ca_cert, fp_key *ca_key)
{
    return X509_set_issuer_name(cert, X509_get_subject_name(ca_cert)) == 1 &&
                   add_ext(cert, ca_cert, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
                   add_ext(cert, ca_cert, NID_key_usage, "critical,digitalSignature") == 0 &&
                   add_ext(cert, ca_cert, NID_ext_key_usage, "critical," FP_SIGNER_EKU_OID) == 0 &&
                   add_ext(cert, ca_cert, NID_authority_key_identifier, "keyid") == 0 &&
                   X509_sign(cert, fp_key_evp(ca_key), EVP_sha256()) > 0
               ? 0
               : -1;
}

int fp_signer_csr_sign(const char *ca_dir, const char *csr_pem, const char *cn, unsigned days,
                       fp_buf *pem, fp_error *err)
{
    char p_key[4096], p_crt[4096];
    snprintf(p_key, sizeof p_key, "%s/ca.key", ca_dir);
    snprintf(p_crt, sizeof p_crt, "%s/ca.crt", ca_dir);
    X509_REQ *req = read_csr(csr_pem, err);
    if (!req) return -1;
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    fp_key *ca = NULL;
    X509 *ca_cert = NULL, *cert = NULL;
    BIO *out = NULL;
    int rc = -1;
    if (!fp_evp_is_p256(pub)) {
        fp_error_set(err, EINVAL, "a token signer key must be EC P-256 (ES256)");
        goto out;
    }
    if (fp_key_load(p_key, &ca, err) < 0 || !(ca_cert = load_cert(p_crt, err))) goto out;
    cert = new_cert(pub, cn, FP_SIGNER_OU, days ? days : 30);
    out = BIO_new(BIO_s_mem());
    if (!cert || !out || sign_signer(cert, ca_cert, ca) < 0 || PEM_write_bio_X509(out, cert) != 1 ||
        PEM_write_bio_X509(out, ca_cert) != 1) {
        fp_error_set(err, 0, "sign token signer certificate for %s", cn);
        goto out;
    }
    char *data;
    long len = BIO_get_mem_data(out, &data);
    rc = fp_buf_append(pem, data, (size_t)len);
out:
    BIO_free(out);
    X509_free(cert);
    X509_free(ca_cert);
    fp_key_free(ca);
    X509_REQ_free(req);
    return rc;
}
