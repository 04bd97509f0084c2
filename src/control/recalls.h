/* The cloud's recalls (`fogport recall`): one row per recalled manifest
 * digest in DATA/control.db, kept as the record every node applies
 * (control/recallset.h describes it). Un-recall is explicit: a row goes
 * only by fp_recalls_remove. */
#ifndef FP_CONTROL_RECALLS_H
#define FP_CONTROL_RECALLS_H

#include <jansson.h>

#include "core/error.h"

typedef struct fp_recalls fp_recalls;

int fp_recalls_open(fp_recalls **out, const char *data_dir, fp_error *err);
void fp_recalls_close(fp_recalls *rc);

/* Record (or replace) the recall of record's "digest". */
int fp_recalls_put(fp_recalls *rc, const json_t *record, fp_error *err);
/* 0 and *record (the row that went; caller decrefs, may be NULL), or 1
 * when digest is not recalled. */
int fp_recalls_remove(fp_recalls *rc, const char *digest, json_t **record, fp_error *err);
/* Every record, oldest first: a JSON array (caller decrefs). */
int fp_recalls_list(fp_recalls *rc, json_t **out, fp_error *err);

#endif
