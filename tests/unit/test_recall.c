/* Unit tests for the recalls: the cloud's table (control/recalls.h: put,
 * replace, list, remove) and the set every node applies
 * (control/recallset.h): lookups, a changed/unchanged replace, unusable
 * records left out, and, over a real store, that a recalled image's own
 * blobs are refused while a base layer another image of the repository
 * shares is not, and that applying deletes the manifest and its tag. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control/recalls.h"
#include "control/recallset.h"
#include "core/digest.h"
#include "core/manifest.h"
#include "store/store.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/fp-recall-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static json_t *record(const char *digest, const char *repo, json_int_t t)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:[], s:[s], s:[s]}", "digest", digest, "repo",
                     repo, "ref", repo, "user", "admin", "time", t, "reason", "why", "children",
                     "tags", "1.0", "blobs", D3);
}

static void test_table(void **state)
{
    (void)state;
    fp_recalls *rc;
    fp_error err;
    assert_int_equal(fp_recalls_open(&rc, dir, &err), 0);
    json_t *a = record(D1, "iot", 10), *b = record(D2, "web", 5);
    assert_int_equal(fp_recalls_put(rc, a, &err), 0);
    assert_int_equal(fp_recalls_put(rc, b, &err), 0);
    assert_int_equal(fp_recalls_put(rc, a, &err), 0); /* again: replaced, not doubled */
    json_t *list;
    assert_int_equal(fp_recalls_list(rc, &list, &err), 0);
    assert_int_equal(json_array_size(list), 2);
    /* oldest first */
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "digest")), D2);
    assert_true(json_equal(json_array_get(list, 1), a));
    json_decref(list);
    fp_recalls_close(rc);

    /* kept across a reopen; removing returns the record, twice is 1 */
    assert_int_equal(fp_recalls_open(&rc, dir, &err), 0);
    json_t *gone = NULL;
    assert_int_equal(fp_recalls_remove(rc, D1, &gone, &err), 0);
    assert_true(json_equal(gone, a));
    json_decref(gone);
    assert_int_equal(fp_recalls_remove(rc, D1, &gone, &err), 1);
    assert_null(gone);
    assert_int_equal(fp_recalls_list(rc, &list, &err), 0);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
    fp_recalls_close(rc);
    json_decref(a);
    json_decref(b);
}

static void test_set(void **state)
{
    (void)state;
    fp_recall_set *s;
    fp_error err;
    assert_false(fp_recall_set_has(NULL, D1));
    assert_int_equal(fp_recall_set_new(&s, &err), 0);
    assert_false(fp_recall_set_has(s, D1));
    json_t *rec = record(D1, "iot", 1);
    json_array_append_new(json_object_get(rec, "children"), json_string(D2));
    /* a record without a usable digest or repository is left out */
    json_t *list = json_pack("[o, {s:s, s:s}, {s:s, s:s}]", rec, "digest", "nope", "repo", "x",
                             "digest", D3, "repo", "Bad Name");
    assert_int_equal(fp_recall_set_replace(s, list, &err), 1);
    assert_int_equal(fp_recall_set_replace(s, list, &err), 0); /* the same again */
    assert_int_equal(fp_recall_set_count(s), 1);
    assert_true(fp_recall_set_has(s, D1));
    assert_true(fp_recall_set_has(s, D2)); /* an index's child goes with it */
    assert_false(fp_recall_set_has(s, D3));
    assert_true(fp_recall_set_tag(s, "iot", "1.0"));
    assert_false(fp_recall_set_tag(s, "iot", "2.0"));
    assert_false(fp_recall_set_tag(s, "web", "1.0"));
    assert_int_equal(fp_recall_set_replace(s, json_object_get(rec, "digest"), &err), -1);
    json_t *empty = json_array();
    assert_int_equal(fp_recall_set_replace(s, empty, &err), 1);
    assert_false(fp_recall_set_has(s, D1));
    json_decref(empty);
    json_decref(list);
    fp_recall_set_free(s);
}

/* ---- over a store ---------------------------------------------------- */

static void blob(fp_store *st, const char *repo, const char *data, char digest[FP_DIGEST_MAX])
{
    fp_error err;
    char id[37], computed[FP_DIGEST_MAX];
    fp_upload *u;
    fp_digest_bytes(FP_SHA256, data, strlen(data), digest);
    assert_int_equal(fp_upload_create(st, repo, id, &err), 0);
    assert_int_equal(fp_upload_acquire(st, repo, id, &u, &err), 0);
    assert_int_equal(fp_upload_write(u, data, strlen(data), &err), 0);
    assert_int_equal(fp_upload_finish(u, digest, computed, &err), 0);
}

/* An image of a config and two layers (base shared); returns its digest. */
static void image(fp_store *st, const char *repo, const char *tag, const char *cfg,
                  const char *base, const char *top, char digest[FP_DIGEST_MAX])
{
    char c[FP_DIGEST_MAX], b[FP_DIGEST_MAX], t[FP_DIGEST_MAX];
    blob(st, repo, cfg, c);
    blob(st, repo, base, b);
    blob(st, repo, top, t);
    char body[1024];
    snprintf(body, sizeof body,
             "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
             "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
             "\"digest\":\"%s\",\"size\":%zu},\"layers\":["
             "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\","
             "\"size\":%zu},"
             "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\","
             "\"size\":%zu}]}",
             c, strlen(cfg), b, strlen(base), t, strlen(top));
    fp_manifest m;
    char why[256], missing[FP_DIGEST_MAX];
    assert_int_equal(fp_manifest_parse(body, strlen(body), NULL, &m, why, sizeof why), 0);
    fp_digest_bytes(FP_SHA256, body, strlen(body), digest);
    const char *tags[1] = {tag};
    fp_error err;
    assert_int_equal(fp_store_manifest_put_parsed(st, repo, &m, digest, body, strlen(body), tags, 1,
                                                  false, missing, &err),
                     0);
    fp_manifest_free(&m);
}

/* Two sets holding the same records (the cloud's and a node's) have one
 * version; any change of the records changes it. */
static void test_version(void **state)
{
    (void)state;
    fp_recall_set *cloud, *node;
    fp_error err;
    assert_int_equal(fp_recall_set_new(&cloud, &err), 0);
    assert_int_equal(fp_recall_set_new(&node, &err), 0);
    char vc[FP_DIGEST_MAX], vn[FP_DIGEST_MAX], empty[FP_DIGEST_MAX];
    fp_recall_set_version(cloud, empty);
    assert_true(fp_digest_valid(empty));
    json_t *list = json_pack("[o, o]", record(D1, "iot", 10), record(D2, "web", 5));
    assert_int_equal(fp_recall_set_replace(cloud, list, &err), 1);
    json_t *served = fp_recall_set_records(cloud); /* what GET /api/v1/recalls gives */
    char *text = json_dumps(served, 0);            /* key order as sent */
    json_t *fetched = json_loads(text, 0, NULL);
    assert_int_equal(fp_recall_set_replace(node, fetched, &err), 1);
    fp_recall_set_version(cloud, vc);
    fp_recall_set_version(node, vn);
    assert_string_equal(vc, vn);
    assert_string_not_equal(vc, empty);
    json_array_remove(list, 1);
    assert_int_equal(fp_recall_set_replace(cloud, list, &err), 1);
    fp_recall_set_version(cloud, vc);
    assert_string_not_equal(vc, vn);
    fp_recall_set_version(NULL, vc);
    assert_string_equal(vc, "");
    free(text);
    json_decref(fetched);
    json_decref(served);
    json_decref(list);
    fp_recall_set_free(cloud);
    fp_recall_set_free(node);
}

static void test_store(void **state)
{
    (void)state;
    char sdir[96];
    snprintf(sdir, sizeof sdir, "%s/store", dir);
    fp_store *st;
    fp_error err;
    struct fp_store_options so = {.exclusive = true};
    assert_int_equal(fp_store_open(&st, sdir, &so, &err), 0);
    char bad[FP_DIGEST_MAX], good[FP_DIGEST_MAX], base[FP_DIGEST_MAX], top[FP_DIGEST_MAX],
        cfg[FP_DIGEST_MAX], other_top[FP_DIGEST_MAX];
    image(st, "iot", "1.0", "{\"a\":1}", "base layer", "bad top", bad);
    image(st, "iot", "mon", "{\"b\":2}", "base layer", "good top", good);
    fp_digest_bytes(FP_SHA256, "base layer", 10, base);
    fp_digest_bytes(FP_SHA256, "bad top", 7, top);
    fp_digest_bytes(FP_SHA256, "{\"a\":1}", 7, cfg);
    fp_digest_bytes(FP_SHA256, "good top", 8, other_top);

    fp_recall_set *s;
    assert_int_equal(fp_recall_set_new(&s, &err), 0);
    json_t *list = json_pack("[{s:s, s:s, s:[s], s:[s, s, s]}]", "digest", bad, "repo", "iot",
                             "tags", "1.0", "blobs", cfg, base, top);
    assert_int_equal(fp_recall_set_replace(s, list, &err), 1);
    assert_true(fp_recall_set_blob_denied(s, st, "iot", top));
    assert_true(fp_recall_set_blob_denied(s, st, "iot", cfg));
    assert_false(fp_recall_set_blob_denied(s, st, "iot", base)); /* "mon" needs it */
    assert_false(fp_recall_set_blob_denied(s, st, "iot", other_top));
    assert_false(fp_recall_set_blob_denied(s, st, "web", top)); /* another repository */

    /* applying deletes the manifest and its tag, unlinks its own blobs */
    assert_int_equal(fp_recall_set_apply(s, st, &err), 1);
    fp_manifest_row row;
    assert_int_equal(fp_store_manifest_get(st, "iot", bad, true, false, &row, &err),
                     FP_STORE_NOT_FOUND);
    assert_int_equal(fp_store_manifest_get(st, "iot", "1.0", false, false, &row, &err),
                     FP_STORE_NOT_FOUND);
    assert_int_equal(fp_store_manifest_get(st, "iot", "mon", false, false, &row, &err), 0);
    uint64_t size;
    assert_int_equal(fp_store_blob_stat(st, "iot", top, &size, &err), FP_STORE_NOT_FOUND);
    assert_int_equal(fp_store_blob_stat(st, "iot", base, &size, &err), 0);
    assert_int_equal(fp_recall_set_apply(s, st, &err), 0); /* nothing left to do */
    json_decref(list);
    fp_recall_set_free(s);
    fp_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store, setup, teardown),
        cmocka_unit_test(test_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
