/* The dashboard's files (ui/), embedded in the binary at build time by
 * scripts/embed-ui (build/gen/ui_assets.c) and served by h_ui.c. */
#ifndef FP_REGISTRY_UI_ASSETS_H
#define FP_REGISTRY_UI_ASSETS_H

#include <stddef.h>

typedef struct fp_ui_asset {
    const char *name;         /* file name under /ui/ */
    const char *content_type; /* from its extension */
    const unsigned char *data;
    size_t size;
    const char *etag; /* "sha256-HEX", quoted: strong */
} fp_ui_asset;

extern const fp_ui_asset fp_ui_assets[];
extern const size_t fp_ui_nassets;

#endif
