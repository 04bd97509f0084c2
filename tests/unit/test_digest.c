/* Unit tests for core/digest: OCI digest strings and incremental hashing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/digest.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ABC_SHA256   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define ABC_SHA512                                                                                 \
    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"                             \
    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"

static enum fp_digest_status parse(const char *s)
{
    enum fp_digest_alg alg;
    return fp_digest_parse(s, strlen(s), &alg);
}

static void test_parse_good(void **state)
{
    (void)state;
    enum fp_digest_alg alg = FP_SHA512;
    assert_int_equal(fp_digest_parse("sha256:" ABC_SHA256, 71, &alg), FP_DIGEST_OK);
    assert_int_equal(alg, FP_SHA256);
    alg = FP_SHA256;
    assert_int_equal(fp_digest_parse("sha512:" ABC_SHA512, 135, &alg), FP_DIGEST_OK);
    assert_int_equal(alg, FP_SHA512);
    /* alg may be NULL */
    assert_int_equal(fp_digest_parse("sha256:" EMPTY_SHA256, 71, NULL), FP_DIGEST_OK);
    assert_true(fp_digest_valid("sha256:" EMPTY_SHA256));
    assert_true(fp_digest_valid("sha512:" ABC_SHA512));
}

static void test_parse_explicit_length(void **state)
{
    (void)state;
    /* The buffer is not NUL-terminated at len: only len bytes count. */
    const char *s = "sha256:" ABC_SHA256 "trailing junk";
    enum fp_digest_alg alg = FP_SHA512;
    assert_int_equal(fp_digest_parse(s, 71, &alg), FP_DIGEST_OK);
    assert_int_equal(alg, FP_SHA256);
    assert_int_equal(fp_digest_parse(s, 70, &alg), FP_DIGEST_BAD_ENCODING);
    assert_int_equal(fp_digest_parse(s, strlen(s), &alg), FP_DIGEST_SYNTAX);
    assert_int_equal(fp_digest_parse(s, 0, &alg), FP_DIGEST_SYNTAX);
}

static void test_parse_syntax(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "sha256",
        "sha256:",
        ":" ABC_SHA256,
        "SHA256:" ABC_SHA256, /* algorithm components are lower case */
        "sha256+:abc",        /* separator needs a component after it */
        "+sha256:abc",
        "sha256:abc def",
        "sha256:abc/def",
        "sha256:abc:def",
        "sha 256:abc",
        "sha256 :" ABC_SHA256,
        "sha256:" ABC_SHA256 " ",
        "sha256:" ABC_SHA256 "\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse(bad[i]) != FP_DIGEST_SYNTAX)
            fail_msg("'%s' should be a syntax error, got %d", bad[i], parse(bad[i]));
        assert_false(fp_digest_valid(bad[i]));
    }
    assert_false(fp_digest_valid(NULL));
}

static void test_parse_unsupported(void **state)
{
    (void)state;
    assert_int_equal(parse("md5:d41d8cd98f00b204e9800998ecf8427e"), FP_DIGEST_UNSUPPORTED);
    assert_int_equal(parse("sha384:abc"), FP_DIGEST_UNSUPPORTED);
    assert_int_equal(parse("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564"),
                     FP_DIGEST_UNSUPPORTED);
    assert_int_equal(parse("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8"),
                     FP_DIGEST_UNSUPPORTED);
    assert_int_equal(parse("sha256.x:" ABC_SHA256), FP_DIGEST_UNSUPPORTED);
    assert_int_equal(parse("sha2:" ABC_SHA256), FP_DIGEST_UNSUPPORTED);
    assert_false(fp_digest_valid("md5:d41d8cd98f00b204e9800998ecf8427e"));
}

static void test_parse_bad_encoding(void **state)
{
    (void)state;
    char s[200];
    /* wrong lengths */
    snprintf(s, sizeof s, "sha256:%.63s", ABC_SHA256);
    assert_int_equal(parse(s), FP_DIGEST_BAD_ENCODING);
    snprintf(s, sizeof s, "sha256:%s0", ABC_SHA256);
    assert_int_equal(parse(s), FP_DIGEST_BAD_ENCODING);
    assert_int_equal(parse("sha256:ab"), FP_DIGEST_BAD_ENCODING);
    assert_int_equal(parse("sha512:" ABC_SHA256), FP_DIGEST_BAD_ENCODING);
    assert_int_equal(parse("sha256:" ABC_SHA512), FP_DIGEST_BAD_ENCODING);
    /* upper-case hex */
    snprintf(s, sizeof s, "sha256:%s", ABC_SHA256);
    s[7] = 'B';
    assert_int_equal(parse(s), FP_DIGEST_BAD_ENCODING);
    assert_false(fp_digest_valid(s));
    snprintf(s, sizeof s, "sha512:%s", ABC_SHA512);
    s[134] = 'F';
    assert_int_equal(parse(s), FP_DIGEST_BAD_ENCODING);
    /* grammar-valid but not hex */
    snprintf(s, sizeof s, "sha256:%s", ABC_SHA256);
    s[10] = 'g';
    assert_int_equal(parse(s), FP_DIGEST_BAD_ENCODING);
    s[10] = '=';
    assert_int_equal(parse(s), FP_DIGEST_BAD_ENCODING);
    s[10] = '_';
    assert_int_equal(parse(s), FP_DIGEST_BAD_ENCODING);
}

static void test_alg_name_and_hex(void **state)
{
    (void)state;
    assert_string_equal(fp_digest_alg_name(FP_SHA256), "sha256");
    assert_string_equal(fp_digest_alg_name(FP_SHA512), "sha512");
    assert_string_equal(fp_digest_hex("sha256:" ABC_SHA256), ABC_SHA256);
    assert_string_equal(fp_digest_hex("sha512:" ABC_SHA512), ABC_SHA512);
}

static void test_digest_bytes_vectors(void **state)
{
    (void)state;
    char out[FP_DIGEST_MAX];
    memset(out, 'x', sizeof out);
    assert_int_equal(fp_digest_bytes(FP_SHA256, "", 0, out), 0);
    assert_string_equal(out, "sha256:" EMPTY_SHA256);
    assert_int_equal(fp_digest_bytes(FP_SHA256, "abc", 3, out), 0);
    assert_string_equal(out, "sha256:" ABC_SHA256);
    memset(out, 'x', sizeof out);
    assert_int_equal(fp_digest_bytes(FP_SHA512, "abc", 3, out), 0);
    assert_string_equal(out, "sha512:" ABC_SHA512);
    assert_int_equal(strlen(out), FP_DIGEST_MAX - 1);
    assert_true(fp_digest_valid(out));
}

static void test_hasher_peek_keeps_state(void **state)
{
    (void)state;
    for (int a = 0; a < 2; a++) {
        enum fp_digest_alg alg = a ? FP_SHA512 : FP_SHA256;
        fp_hasher h;
        char peek1[FP_DIGEST_MAX], peek2[FP_DIGEST_MAX], peek3[FP_DIGEST_MAX];
        char want1[FP_DIGEST_MAX], want2[FP_DIGEST_MAX];
        assert_int_equal(fp_hasher_init(&h, alg), 0);
        assert_int_equal(fp_hasher_update(&h, "ab", 2), 0);
        assert_int_equal(fp_hasher_peek(&h, peek1), 0);
        assert_int_equal(fp_digest_bytes(alg, "ab", 2, want1), 0);
        assert_string_equal(peek1, want1);
        /* peeking twice without new data gives the same answer */
        assert_int_equal(fp_hasher_peek(&h, peek3), 0);
        assert_string_equal(peek3, want1);
        assert_int_equal(fp_hasher_update(&h, "c", 1), 0);
        assert_int_equal(fp_hasher_update(&h, "", 0), 0);
        assert_int_equal(fp_hasher_peek(&h, peek2), 0);
        assert_int_equal(fp_digest_bytes(alg, "abc", 3, want2), 0);
        assert_string_equal(peek2, want2);
        assert_string_equal(peek2, a ? "sha512:" ABC_SHA512 : "sha256:" ABC_SHA256);
        fp_hasher_free(&h);
        assert_null(h.ctx);
        fp_hasher_free(&h); /* idempotent */
    }
}

static void test_hasher_copy(void **state)
{
    (void)state;
    fp_hasher h, c;
    char a[FP_DIGEST_MAX], b[FP_DIGEST_MAX];
    assert_int_equal(fp_hasher_init(&h, FP_SHA256), 0);
    assert_int_equal(fp_hasher_update(&h, "a", 1), 0);
    assert_int_equal(fp_hasher_copy(&c, &h), 0);
    assert_int_equal(c.alg, FP_SHA256);
    /* the copy and the original diverge independently */
    assert_int_equal(fp_hasher_update(&c, "bc", 2), 0);
    assert_int_equal(fp_hasher_peek(&c, a), 0);
    assert_string_equal(a, "sha256:" ABC_SHA256);
    assert_int_equal(fp_hasher_peek(&h, b), 0);
    assert_int_equal(fp_digest_bytes(FP_SHA256, "a", 1, a), 0);
    assert_string_equal(b, a);
    fp_hasher_free(&c);
    fp_hasher_free(&h);
}

static int make_temp(const unsigned char *data, size_t len)
{
    char path[] = "/tmp/fogport-test-digest-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    /* the file position is at EOF: update_fd must read from offset 0 */
    return fd;
}

static void test_hasher_update_fd(void **state)
{
    (void)state;
    /* larger than the 64 KiB read chunk, not a multiple of it */
    size_t len = 200001;
    unsigned char *data = malloc(len);
    assert_non_null(data);
    for (size_t i = 0; i < len; i++)
        data[i] = (unsigned char)(i * 131 + (i >> 8));
    int fd = make_temp(data, len);

    struct {
        uint64_t limit;
        size_t expect;
    } cases[] = {
        {UINT64_MAX, 200001},
        {len, 200001},
        {len + 1000, 200001},
        {100000, 100000},
        {65536, 65536},
        {65537, 65537},
        {1, 1},
        {0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fp_hasher h;
        char got[FP_DIGEST_MAX], want[FP_DIGEST_MAX];
        assert_int_equal(fp_hasher_init(&h, FP_SHA256), 0);
        assert_int_equal(fp_hasher_update_fd(&h, fd, cases[i].limit), (int64_t)cases[i].expect);
        assert_int_equal(fp_hasher_peek(&h, got), 0);
        fp_hasher_free(&h);
        assert_int_equal(fp_digest_bytes(FP_SHA256, data, cases[i].expect, want), 0);
        assert_string_equal(got, want);
    }

    /* data already in the hasher is kept: prefix + file contents */
    fp_hasher h;
    char got[FP_DIGEST_MAX], want[FP_DIGEST_MAX];
    unsigned char *both = malloc(len + 3);
    assert_non_null(both);
    memcpy(both, "pre", 3);
    memcpy(both + 3, data, len);
    assert_int_equal(fp_hasher_init(&h, FP_SHA512), 0);
    assert_int_equal(fp_hasher_update(&h, "pre", 3), 0);
    assert_int_equal(fp_hasher_update_fd(&h, fd, UINT64_MAX), (int64_t)len);
    assert_int_equal(fp_hasher_peek(&h, got), 0);
    assert_int_equal(fp_digest_bytes(FP_SHA512, both, len + 3, want), 0);
    assert_string_equal(got, want);
    fp_hasher_free(&h);

    close(fd);
    /* a closed descriptor is an error */
    assert_int_equal(fp_hasher_init(&h, FP_SHA256), 0);
    assert_int_equal(fp_hasher_update_fd(&h, fd, UINT64_MAX), -1);
    fp_hasher_free(&h);
    free(both);
    free(data);
}

static void test_hasher_update_fd_empty(void **state)
{
    (void)state;
    int fd = make_temp((const unsigned char *)"", 0);
    fp_hasher h;
    char got[FP_DIGEST_MAX];
    assert_int_equal(fp_hasher_init(&h, FP_SHA256), 0);
    assert_int_equal(fp_hasher_update_fd(&h, fd, UINT64_MAX), 0);
    assert_int_equal(fp_hasher_peek(&h, got), 0);
    assert_string_equal(got, "sha256:" EMPTY_SHA256);
    fp_hasher_free(&h);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_explicit_length),
        cmocka_unit_test(test_parse_syntax),
        cmocka_unit_test(test_parse_unsupported),
        cmocka_unit_test(test_parse_bad_encoding),
        cmocka_unit_test(test_alg_name_and_hex),
        cmocka_unit_test(test_digest_bytes_vectors),
        cmocka_unit_test(test_hasher_peek_keeps_state),
        cmocka_unit_test(test_hasher_copy),
        cmocka_unit_test(test_hasher_update_fd),
        cmocka_unit_test(test_hasher_update_fd_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
