/* libFuzzer target: digest strings and hashing (core/digest). The parser runs
 * on the raw, unterminated input (so ASan catches any read past len) and on a
 * NUL-terminated copy; hashing in pieces must equal hashing in one go. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/digest.h"
#include "fuzz.h"

static bool lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

static void check_parse(const char *raw, size_t size, const char *s, bool has_nul)
{
    enum fp_digest_alg alg = (enum fp_digest_alg)42;
    enum fp_digest_status st = fp_digest_parse(raw, size, &alg);
    CHECK(st == FP_DIGEST_OK || st == FP_DIGEST_SYNTAX || st == FP_DIGEST_UNSUPPORTED ||
          st == FP_DIGEST_BAD_ENCODING);
    bool is256 = size >= 7 && memcmp(raw, "sha256:", 7) == 0;
    bool is512 = size >= 7 && memcmp(raw, "sha512:", 7) == 0;
    if (st == FP_DIGEST_OK) {
        CHECK(!has_nul);
        CHECK((is256 && alg == FP_SHA256 && size == 71) ||
              (is512 && alg == FP_SHA512 && size == 135));
        CHECK(size < FP_DIGEST_MAX);
        CHECK(lower_hex(raw + 7, size - 7));
        CHECK(fp_digest_valid(s));
        CHECK(strcmp(fp_digest_hex(s), s + 7) == 0);
        CHECK(strncmp(s, fp_digest_alg_name(alg), 6) == 0);
    } else {
        CHECK(alg == (enum fp_digest_alg)42); /* untouched on failure */
        if (!has_nul) CHECK(!fp_digest_valid(s));
    }
    if (st == FP_DIGEST_BAD_ENCODING) CHECK(is256 || is512);
    if (st == FP_DIGEST_UNSUPPORTED) CHECK(!is256 && !is512);
    /* the well-formed sha256/sha512 strings of the right length are exactly
     * the lowercase-hex ones */
    if ((is256 && size == 71) || (is512 && size == 135))
        CHECK((st == FP_DIGEST_OK) == lower_hex(raw + 7, size - 7));
}

static void check_hash(const uint8_t *data, size_t size)
{
    enum fp_digest_alg alg = (size & 1) ? FP_SHA512 : FP_SHA256;
    char whole[FP_DIGEST_MAX], mid[FP_DIGEST_MAX], parts[FP_DIGEST_MAX], pre[FP_DIGEST_MAX];
    CHECK(fp_digest_bytes(alg, data, size, whole) == 0);
    enum fp_digest_alg got;
    CHECK(fp_digest_parse(whole, strlen(whole), &got) == FP_DIGEST_OK && got == alg);

    size_t cut = size ? data[0] % (size + 1) : 0;
    fp_hasher h, c;
    CHECK(fp_hasher_init(&h, alg) == 0);
    CHECK(fp_hasher_update(&h, data, cut) == 0);
    CHECK(fp_hasher_peek(&h, mid) == 0);
    CHECK(fp_digest_bytes(alg, data, cut, pre) == 0);
    CHECK(strcmp(mid, pre) == 0);
    CHECK(fp_hasher_copy(&c, &h) == 0);
    CHECK(fp_hasher_update(&h, data + cut, size - cut) == 0);
    CHECK(fp_hasher_peek(&h, parts) == 0);
    CHECK(strcmp(parts, whole) == 0);
    /* the copy still holds the state at the cut */
    CHECK(fp_hasher_peek(&c, mid) == 0);
    CHECK(strcmp(mid, pre) == 0);
    fp_hasher_free(&c);
    fp_hasher_free(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    bool has_nul = memchr(s, '\0', size) != NULL;
    check_parse((const char *)data, size, s, has_nul);
    check_hash(data, size);
    free(s);
    return 0;
}
