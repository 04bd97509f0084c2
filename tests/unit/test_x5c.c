/* Unit tests for auth/x5c and the signer certificates of auth/pki: a chain
 * from the deployment CA verifies, and everything that is not a current
 * signer certificate of that CA is refused (another CA, a TLS certificate,
 * an expired one, malformed entries); an x5c-signed JWT verifies with the
 * leaf's key. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/jwt.h"
#include "auth/pki.h"
#include "auth/x5c.h"
#include "core/fs.h"

struct fixture {
    char dir[64];
    char ca[96], other_ca[96];
    fp_key *signer;
    fp_buf chain; /* signer chain from ca (PEM) */
};

/* A CSR for key k (names are irrelevant: the CA decides). */
static void csr_for(fp_key *k, const char *cn, fp_buf *csr)
{
    const char *dns[] = {cn};
    fp_error err;
    assert_int_equal(fp_csr_create(fp_key_evp(k), cn, dns, 1, NULL, 0, csr, &err), 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/fogport-test-x5c-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->ca, sizeof f->ca, "%s/ca", f->dir);
    snprintf(f->other_ca, sizeof f->other_ca, "%s/other", f->dir);
    fp_error err;
    assert_int_equal(fp_ca_init(f->ca, "test CA", &err), 0);
    assert_int_equal(fp_ca_init(f->other_ca, "other CA", &err), 0);
    assert_int_equal(fp_key_generate(&f->signer, &err), 0);
    fp_buf csr = FP_BUF_INIT;
    csr_for(f->signer, "fog-1", &csr);
    assert_int_equal(fp_signer_csr_sign(f->ca, csr.data, "fog-1", 30, &f->chain, &err), 0);
    fp_buf_free(&csr);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    fp_rm_rf(f->dir);
    fp_key_free(f->signer);
    fp_buf_free(&f->chain);
    free(f);
    return 0;
}

static fp_x5c_trust *trust(struct fixture *f, const char *ca_dir)
{
    char path[128];
    snprintf(path, sizeof path, "%s/ca.crt", ca_dir);
    fp_x5c_trust *t = NULL;
    fp_error err;
    assert_int_equal(fp_x5c_trust_load(path, &t, &err), 0);
    return t;
}

/* Verify a PEM chain against a CA at time now; returns the result. */
static int verify_pem(struct fixture *f, const char *ca_dir, const char *pem, time_t now,
                      char cn[64], char *why)
{
    fp_buf x5c = FP_BUF_INIT;
    fp_error err;
    time_t not_after = 0;
    assert_int_equal(fp_x5c_from_pem(pem, &x5c, &not_after, &err), 0);
    assert_true(not_after > time(NULL));
    json_t *arr = json_loads(x5c.data, 0, NULL);
    assert_non_null(arr);
    fp_x5c_trust *t = trust(f, ca_dir);
    fp_key *k = NULL;
    int rc = fp_x5c_verify(t, arr, now, cn, &k, why, 128);
    if (rc == 0) assert_non_null(k);
    fp_key_free(k);
    fp_x5c_trust_free(t);
    json_decref(arr);
    fp_buf_free(&x5c);
    return rc;
}

static void test_signer_chain_verifies(void **state)
{
    struct fixture *f = *state;
    char cn[64], why[128];
    assert_int_equal(verify_pem(f, f->ca, f->chain.data, time(NULL), cn, why), 0);
    assert_string_equal(cn, "fog-1");
}

static void test_other_ca_refused(void **state)
{
    struct fixture *f = *state;
    char cn[64], why[128];
    assert_int_equal(verify_pem(f, f->other_ca, f->chain.data, time(NULL), cn, why), -1);
    assert_non_null(strstr(why, "does not verify"));
}

static void test_expired_refused(void **state)
{
    struct fixture *f = *state;
    char cn[64], why[128];
    assert_int_equal(verify_pem(f, f->ca, f->chain.data, time(NULL) + 31 * 86400, cn, why), -1);
    assert_int_equal(verify_pem(f, f->ca, f->chain.data, time(NULL) - 2 * 86400, cn, why), -1);
}

static void test_tls_cert_is_not_a_signer(void **state)
{
    struct fixture *f = *state;
    fp_buf csr = FP_BUF_INIT, tls = FP_BUF_INIT;
    fp_error err;
    csr_for(f->signer, "fog-1", &csr);
    assert_int_equal(fp_csr_sign(f->ca, csr.data, "fog-1", "127.0.0.1", 30, &tls, &err), 0);
    char cn[64], why[128];
    assert_int_equal(verify_pem(f, f->ca, tls.data, time(NULL), cn, why), -1);
    assert_non_null(strstr(why, "not a token-signing certificate"));
    fp_buf_free(&csr);
    fp_buf_free(&tls);
}

static void test_malformed_refused(void **state)
{
    struct fixture *f = *state;
    fp_x5c_trust *t = trust(f, f->ca);
    static const char *const bad[] = {
        "[]", "{}", "[1]", "[\"not base64!\"]", "[\"AAAA\"]", "[\"a\",\"b\",\"c\",\"d\",\"e\"]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *v = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        assert_non_null(v);
        char cn[64], why[128];
        fp_key *k = (fp_key *)1;
        assert_int_equal(fp_x5c_verify(t, v, time(NULL), cn, &k, why, sizeof why), -1);
        assert_null(k);
        json_decref(v);
    }
    /* no CA configured: never accepted */
    json_t *v = json_loads("[\"AAAA\"]", 0, NULL);
    char cn[64], why[128];
    fp_key *k = NULL;
    assert_int_equal(fp_x5c_verify(NULL, v, time(NULL), cn, &k, why, sizeof why), -1);
    json_decref(v);
    fp_x5c_trust_free(t);
}

static void test_jwt_with_x5c(void **state)
{
    struct fixture *f = *state;
    fp_buf x5c = FP_BUF_INIT, tok = FP_BUF_INIT;
    fp_error err;
    assert_int_equal(fp_x5c_from_pem(f->chain.data, &x5c, NULL, &err), 0);
    json_t *claims = json_pack("{s:s, s:s}", "iss", "fog-1", "aud", "fog-1");
    assert_int_equal(fp_jwt_sign_x5c(f->signer, x5c.data, claims, &tok, &err), 0);
    json_t *h = fp_jwt_header(tok.data, tok.len);
    assert_non_null(h);
    assert_string_equal(json_string_value(json_object_get(h, "alg")), "ES256");
    assert_null(json_object_get(h, "kid"));
    fp_x5c_trust *t = trust(f, f->ca);
    char cn[64], why[128];
    fp_key *k = NULL;
    assert_int_equal(fp_x5c_verify(t, json_object_get(h, "x5c"), time(NULL), cn, &k, why, 128), 0);
    json_t *got = NULL;
    assert_int_equal(fp_jwt_verify_key(tok.data, tok.len, k, &got, why, sizeof why), 0);
    assert_string_equal(json_string_value(json_object_get(got, "iss")), "fog-1");
    json_decref(got);
    /* a keyring does not know the signer: no kid, refused there */
    fp_keyring *ring = fp_keyring_new();
    assert_int_equal(fp_jwt_verify(tok.data, tok.len, ring, &got, why, sizeof why), -1);
    fp_keyring_free(ring);
    /* another key's signature does not verify with the leaf's key */
    fp_key *other = NULL;
    assert_int_equal(fp_key_generate(&other, &err), 0);
    fp_buf forged = FP_BUF_INIT;
    assert_int_equal(fp_jwt_sign_x5c(other, x5c.data, claims, &forged, &err), 0);
    assert_int_equal(fp_jwt_verify_key(forged.data, forged.len, k, &got, why, sizeof why), -1);
    fp_key_free(other);
    fp_buf_free(&forged);
    fp_key_free(k);
    fp_x5c_trust_free(t);
    json_decref(h);
    json_decref(claims);
    fp_buf_free(&x5c);
    fp_buf_free(&tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signer_chain_verifies),
        cmocka_unit_test(test_other_ca_refused),
        cmocka_unit_test(test_expired_refused),
        cmocka_unit_test(test_tls_cert_is_not_a_signer),
        cmocka_unit_test(test_malformed_refused),
        cmocka_unit_test(test_jwt_with_x5c),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
