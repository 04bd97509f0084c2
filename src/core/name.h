/* Repository names, tags and image references, by the OCI distribution
 * grammar:
 *   name      [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
 *   tag       [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
 *   reference [host[:port]/]name[:tag][@digest]   (as docker/skopeo write it)
 * These are the gate for every path that reaches storage: a name that passes
 * cannot contain "..", "//", a leading "/" or upper case. */
#ifndef FP_CORE_NAME_H
#define FP_CORE_NAME_H

#include <stdbool.h>
#include <stddef.h>

#define FP_NAME_MAX 255
#define FP_TAG_MAX  128

bool fp_name_valid(const char *name, size_t len);
/* A service name (the controller's): [a-z0-9][a-z0-9_-]*, at most 63; safe
 * as a path component, a container id and a token scope. */
#define FP_SERVICE_NAME_MAX 63
bool fp_service_name_valid(const char *name);
bool fp_tag_valid(const char *tag, size_t len);
/* Node labels and label selectors: "k=v" pairs, comma-separated, keys
 * [a-z0-9][a-z0-9_./-]*, values [A-Za-z0-9_.-]* (may be empty), at most
 * FP_LABELS_MAX characters in all, no spaces. max_pairs 1: exactly one
 * pair (a preference). */
#define FP_LABELS_MAX 255
bool fp_labels_valid(const char *labels, unsigned max_pairs);

typedef struct fp_reference {
    char host[256]; /* "" when the reference names no registry host */
    char name[FP_NAME_MAX + 1];
    char tag[FP_TAG_MAX + 1]; /* "" when absent */
    char digest[136];         /* "" when absent */
} fp_reference;

/* Parse an image reference. A first component is a host when it contains '.'
 * or ':' or is "localhost" (docker's rule). Returns 0 or -1 when invalid. */
int fp_reference_parse(const char *s, fp_reference *ref);

#endif
