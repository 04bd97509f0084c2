/* Platforms of multi-platform images (an OCI index or a Docker manifest
 * list): which child manifest a node runs. The names are Go's (GOOS,
 * GOARCH, GOARM-style variants), as in the index's "platform" objects. */
#ifndef FP_CORE_PLATFORM_H
#define FP_CORE_PLATFORM_H

#include <stddef.h>

#include "core/digest.h"

typedef struct fp_platform {
    char os[32];      /* "linux" */
    char arch[32];    /* "amd64", "arm64", "arm", "386", ... */
    char variant[16]; /* "v8", "v7", ...; "" for none */
} fp_platform;

/* This machine's platform (uname): x86_64 is linux/amd64, aarch64
 * linux/arm64/v8, armv7l linux/arm/v7, ... */
void fp_platform_host(fp_platform *p);

/* The platform as "os/arch[/variant]". */
void fp_platform_str(const fp_platform *p, char *out, size_t n);

/* The child manifest of an index (its JSON body) for platform want: same
 * os and architecture (aliases normalised: x86_64 is amd64, aarch64
 * arm64), and the best variant: the same, else none given (arm64's is v8),
 * else for arm the highest variant below want's (v7 runs v6 and v5). Ties
 * go to the first listed. -1 with a reason naming the platforms the index
 * has when none fits. */
int fp_platform_pick(const char *index_body, size_t len, const fp_platform *want,
                     char out[FP_DIGEST_MAX], char *why, size_t whylen);

#endif
