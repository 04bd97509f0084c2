/* The image manifest model: what a registry must understand of the four
 * manifest kinds it stores (OCI image manifest, OCI image index, Docker
 * schema2 manifest, Docker manifest list) to check them and to follow their
 * references. Bodies are never rewritten: this only reads them. */
#ifndef FP_CORE_MANIFEST_H
#define FP_CORE_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/digest.h"

#define FP_MT_OCI_MANIFEST     "application/vnd.oci.image.manifest.v1+json"
#define FP_MT_OCI_INDEX        "application/vnd.oci.image.index.v1+json"
#define FP_MT_DOCKER_V2        "application/vnd.docker.distribution.manifest.v2+json"
#define FP_MT_DOCKER_LIST      "application/vnd.docker.distribution.manifest.list.v2+json"
#define FP_MT_DOCKER_V1        "application/vnd.docker.distribution.manifest.v1+json"
#define FP_MT_DOCKER_V1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"

typedef struct fp_descriptor {
    char media_type[256];
    char digest[FP_DIGEST_MAX];
    uint64_t size;
    bool has_urls; /* foreign / non-distributable content */
} fp_descriptor;

typedef struct fp_manifest {
    char media_type[256];
    bool is_index;
    fp_descriptor config; /* image manifests */
    fp_descriptor *refs;  /* layers (image) or manifests (index) */
    size_t nrefs;
    bool has_subject;
    char subject[FP_DIGEST_MAX];
    char artifact_type[256]; /* "" when none (after the referrers fallback rule) */
    char *annotations;       /* JSON object text or NULL */
} fp_manifest;

/* Parse and validate body. content_type is the request's Content-Type
 * (parameters ignored; NULL if absent). On failure returns -1 and writes
 * a reason to why. */
int fp_manifest_parse(const void *body, size_t len, const char *content_type, fp_manifest *m,
                      char *why, size_t whylen);
void fp_manifest_free(fp_manifest *m);

bool fp_media_type_is_manifest(const char *mt);

#endif
