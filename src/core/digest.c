#include "core/digest.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>
#include <unistd.h>

static bool alg_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
static bool alg_sep(char c)
{
    return c == '+' || c == '.' || c == '_' || c == '-';
}
static bool enc_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '=' ||
           c == '_' || c == '-';
}

enum fp_digest_status fp_digest_parse(const char *s, size_t len, enum fp_digest_alg *alg)
{
    /* algorithm := component (separator component)*, component := [a-z0-9]+ */
    size_t i = 0;
    for (;;) {
        size_t start = i;
        while (i < len && alg_char(s[i]))
            i++;
        if (i == start) return FP_DIGEST_SYNTAX;
        if (i < len && alg_sep(s[i])) {
            i++;
            continue;
        }
        break;
    }
    if (i >= len || s[i] != ':') return FP_DIGEST_SYNTAX;
    size_t alg_len = i++;
    size_t enc_len = len - i;
    if (enc_len == 0) return FP_DIGEST_SYNTAX;
    for (size_t j = i; j < len; j++)
        if (!enc_char(s[j])) return FP_DIGEST_SYNTAX;

    size_t want;
    enum fp_digest_alg a;
    if (alg_len == 6 && memcmp(s, "sha256", 6) == 0) {
        a = FP_SHA256;
        want = 64;
    } else if (alg_len == 6 && memcmp(s, "sha512", 6) == 0) {
        a = FP_SHA512;
        want = 128;
    } else {
        return FP_DIGEST_UNSUPPORTED;
    }
    if (enc_len != want) return FP_DIGEST_BAD_ENCODING;
    for (size_t j = i; j < len; j++)
        if (!((s[j] >= '0' && s[j] <= '9') || (s[j] >= 'a' && s[j] <= 'f')))
            return FP_DIGEST_BAD_ENCODING;
    if (alg) *alg = a;
    return FP_DIGEST_OK;
}

bool fp_digest_valid(const char *s)
{
    return s && fp_digest_parse(s, strlen(s), NULL) == FP_DIGEST_OK;
}

const char *fp_digest_alg_name(enum fp_digest_alg alg)
{
    return alg == FP_SHA512 ? "sha512" : "sha256";
}

const char *fp_digest_hex(const char *digest)
{
    const char *c = strchr(digest, ':');
    return c ? c + 1 : digest;
}

static const EVP_MD *alg_md(enum fp_digest_alg alg)
{
    return alg == FP_SHA512 ? EVP_sha512() : EVP_sha256();
}

int fp_hasher_init(fp_hasher *h, enum fp_digest_alg alg)
{
    h->alg = alg;
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx) {
        errno = ENOMEM;
        return -1;
    }
    if (EVP_DigestInit_ex(h->ctx, alg_md(alg), NULL) != 1) {
        fp_hasher_free(h);
        errno = EIO;
        return -1;
    }
    return 0;
}

int fp_hasher_update(fp_hasher *h, const void *data, size_t len)
{
    return EVP_DigestUpdate(h->ctx, data, len) == 1 ? 0 : -1;
}

static void hex_encode(const unsigned char *in, unsigned n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int fp_hasher_peek(const fp_hasher *h, char out[FP_DIGEST_MAX])
{
    EVP_MD_CTX *copy = EVP_MD_CTX_new();
    if (!copy) return -1;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    int ok = EVP_MD_CTX_copy_ex(copy, h->ctx) == 1 && EVP_DigestFinal_ex(copy, md, &n) == 1;
    EVP_MD_CTX_free(copy);
    if (!ok) return -1;
    const char *name = fp_digest_alg_name(h->alg);
    size_t nl = strlen(name);
    memcpy(out, name, nl);
    out[nl] = ':';
    hex_encode(md, n, out + nl + 1);
    return 0;
}

void fp_hasher_free(fp_hasher *h)
{
    if (h->ctx) EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
}

int fp_hasher_copy(fp_hasher *dst, const fp_hasher *src)
{
    dst->alg = src->alg;
    dst->ctx = EVP_MD_CTX_new();
    if (!dst->ctx) return -1;
    if (EVP_MD_CTX_copy_ex(dst->ctx, src->ctx) != 1) {
        fp_hasher_free(dst);
        return -1;
    }
    return 0;
}

int fp_digest_bytes(enum fp_digest_alg alg, const void *data, size_t len, char out[FP_DIGEST_MAX])
{
    fp_hasher h;
    if (fp_hasher_init(&h, alg) < 0) return -1;
    int rc = fp_hasher_update(&h, data, len) == 0 ? fp_hasher_peek(&h, out) : -1;
    fp_hasher_free(&h);
    return rc;
}

int64_t fp_hasher_update_fd(fp_hasher *h, int fd, uint64_t limit)
{
    static __thread char chunk[1 << 16];
    uint64_t done = 0;
    while (done < limit) {
        size_t want = sizeof chunk;
        if (limit - done < want) want = (size_t)(limit - done);
        ssize_t n = pread(fd, chunk, want, (off_t)done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (n == 0) break;
        if (fp_hasher_update(h, chunk, (size_t)n) < 0) return -1;
        done += (uint64_t)n;
    }
    return (int64_t)done;
}
