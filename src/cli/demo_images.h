/* The paper's three services as OCI images, built natively so that an
 * installed fogport (no source tree, no umoci) can run the demo:
 * iot_service:1.0, monitoring_service:1.0 and web_service:latest. This is
 * the one definition of what each image holds.
 *
 * Every image is two gzip'd tar layers: a base shared by all three (a
 * static busybox, the applet symlinks the services use, /etc/passwd) and a
 * small layer with the service itself (its page or its script). Owners,
 * modes, times and every `created` stamp are fixed, so two builds from the
 * same busybox give the same digests. */
#ifndef FP_CLI_DEMO_IMAGES_H
#define FP_CLI_DEMO_IMAGES_H

#include <stddef.h>

#include "core/buf.h"
#include "core/digest.h"
#include "core/error.h"
#include "core/http_client.h"

#define FP_DEMO_IMAGES 3

typedef struct fp_demo_blob {
    char digest[FP_DIGEST_MAX];
    const char *media_type;
    fp_buf data;
} fp_demo_blob;

typedef struct fp_demo_image {
    const char *repo, *tag;
    fp_demo_blob config, manifest;
    const fp_demo_blob *layers[2]; /* base, then the service's own */
} fp_demo_image;

typedef struct fp_demo_images {
    fp_demo_blob base, own[FP_DEMO_IMAGES];
    fp_demo_image image[FP_DEMO_IMAGES]; /* in the paper's order, by name */
} fp_demo_images;

/* Build the three images around busybox (NULL: /bin/busybox, which must be
 * a static one: Debian's busybox-static). Free with fp_demo_images_free. */
int fp_demo_images_build(fp_demo_images *out, const char *busybox, fp_error *err);
void fp_demo_images_free(fp_demo_images *imgs);

/* Write them as an OCI image layout in dir (created), each manifest named
 * "REPO:TAG" (org.opencontainers.image.ref.name), as umoci and skopeo's
 * oci: transport read it. */
int fp_demo_images_write_layout(const fp_demo_images *imgs, const char *dir, fp_error *err);

/* Push them to registry (https://HOST:PORT) as a client does: a token for
 * each repository from the registry's token service with o->userpwd (or
 * Basic, or nothing, as the registry asks), blobs it lacks in one POST
 * each, then the manifest under its tag. */
int fp_demo_images_push(const fp_demo_images *imgs, const char *registry, const fp_http_opts *o,
                        fp_error *err);

#endif
