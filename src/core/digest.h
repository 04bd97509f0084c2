/* Content digests as the OCI image spec defines them ("algorithm:encoded"),
 * and incremental hashing. Every byte that enters a store goes through an
 * fp_hasher; the strings are the identity of blobs and manifests. */
#ifndef FP_CORE_DIGEST_H
#define FP_CORE_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum fp_digest_alg { FP_SHA256, FP_SHA512 };

/* "sha512:" + 128 hex + NUL */
#define FP_DIGEST_MAX 136

/* Result of fp_digest_parse. */
enum fp_digest_status {
    FP_DIGEST_OK = 0,
    FP_DIGEST_SYNTAX = -1,      /* not "alg:encoded" per the OCI grammar */
    FP_DIGEST_UNSUPPORTED = -2, /* well-formed, algorithm we do not implement */
    FP_DIGEST_BAD_ENCODING = -3 /* sha256/sha512 with wrong length or non-lowercase-hex */
};

/* Validate s; on success *alg is set. len = strlen(s) unless s is not
 * NUL-terminated (pass its length). */
enum fp_digest_status fp_digest_parse(const char *s, size_t len, enum fp_digest_alg *alg);
bool fp_digest_valid(const char *s);
const char *fp_digest_alg_name(enum fp_digest_alg alg);
/* The encoded part (after the colon) of a valid digest string. */
const char *fp_digest_hex(const char *digest);

typedef struct fp_hasher {
    void *ctx; /* EVP_MD_CTX */
    enum fp_digest_alg alg;
} fp_hasher;

int fp_hasher_init(fp_hasher *h, enum fp_digest_alg alg);
int fp_hasher_update(fp_hasher *h, const void *data, size_t len);
/* Writes "alg:hex" into out (FP_DIGEST_MAX bytes). The hasher stays usable:
 * it finalizes a copy, so more data may follow. */
int fp_hasher_peek(const fp_hasher *h, char out[FP_DIGEST_MAX]);
void fp_hasher_free(fp_hasher *h);
/* Copy the state of src into dst (dst must be freed or uninitialised). */
int fp_hasher_copy(fp_hasher *dst, const fp_hasher *src);

int fp_digest_bytes(enum fp_digest_alg alg, const void *data, size_t len, char out[FP_DIGEST_MAX]);
/* Hash the first `limit` bytes of fd from offset 0 (UINT64_MAX: to EOF),
 * feeding them into h (already initialised). Returns bytes hashed or -1. */
int64_t fp_hasher_update_fd(fp_hasher *h, int fd, uint64_t limit);

#endif
