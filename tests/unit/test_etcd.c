/* Unit tests for federation/etcd (the JSON gateway's encoding: base64 keys
 * and values, 64-bit numbers as strings, the claim and release
 * transactions, range answers, endpoint lists) and agent/handover's
 * ranking and the kind of definition the fogs hand over. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "agent/handover.h"
#include "federation/etcd.h"

static void test_base64(void **state)
{
    (void)state;
    fp_buf b = FP_BUF_INIT;
    assert_int_equal(fp_etcd_b64("/fogport/fogs/fog-1", 19, &b), 0);
    assert_string_equal(b.data, "L2ZvZ3BvcnQvZm9ncy9mb2ctMQ==");
    fp_buf_free(&b);
    char *out;
    size_t len;
    assert_int_equal(fp_etcd_unb64("L2ZvZ3BvcnQvZm9ncy9mb2ctMQ==", &out, &len), 0);
    assert_int_equal(len, 19);
    assert_string_equal(out, "/fogport/fogs/fog-1");
    free(out);
    /* padding of one and none; the empty string */
    assert_int_equal(fp_etcd_unb64("YWI=", &out, &len), 0);
    assert_int_equal(len, 2);
    assert_string_equal(out, "ab");
    free(out);
    assert_int_equal(fp_etcd_unb64("YWJj", &out, &len), 0);
    assert_int_equal(len, 3);
    free(out);
    assert_int_equal(fp_etcd_unb64("", &out, &len), 0);
    assert_int_equal(len, 0);
    free(out);
    /* not base64 */
    assert_int_equal(fp_etcd_unb64("abc", &out, &len), -1);
    assert_int_equal(fp_etcd_unb64("a*c=", &out, &len), -1);
}

static void test_prefix_end(void **state)
{
    (void)state;
    fp_buf b = FP_BUF_INIT;
    assert_int_equal(fp_etcd_prefix_end("/fogport/", &b), 0);
    char *out;
    assert_int_equal(fp_etcd_unb64(b.data, &out, NULL), 0);
    assert_string_equal(out, "/fogport0"); /* '/' + 1 */
    free(out);
    fp_buf_free(&b);
}

static const char *key_of(json_t *o)
{
    return json_string_value(json_object_get(o, "key"));
}

static void test_txn_create(void **state)
{
    (void)state;
    json_t *t = fp_etcd_txn_create_body("/fogport/always-on/web", "{\"fog\":\"fog-2\"}",
                                        7587883021735427338LL);
    assert_non_null(t);
    json_t *cmp = json_array_get(json_object_get(t, "compare"), 0);
    assert_string_equal(json_string_value(json_object_get(cmp, "target")), "CREATE");
    assert_string_equal(json_string_value(json_object_get(cmp, "result")), "EQUAL");
    /* absent: created at revision 0; int64 as a string */
    assert_string_equal(json_string_value(json_object_get(cmp, "create_revision")), "0");
    assert_string_equal(key_of(cmp), "L2ZvZ3BvcnQvYWx3YXlzLW9uL3dlYg==");
    json_t *put = json_object_get(json_array_get(json_object_get(t, "success"), 0), "request_put");
    assert_string_equal(key_of(put), key_of(cmp));
    assert_string_equal(json_string_value(json_object_get(put, "value")), "eyJmb2ciOiJmb2ctMiJ9");
    assert_string_equal(json_string_value(json_object_get(put, "lease")), "7587883021735427338");
    assert_int_equal(json_array_size(json_object_get(t, "failure")), 0);
    json_decref(t);
}

static void test_txn_release(void **state)
{
    (void)state;
    json_t *t = fp_etcd_txn_delete_if_lease_body("/fogport/always-on/web", 42);
    json_t *cmp = json_array_get(json_object_get(t, "compare"), 0);
    assert_string_equal(json_string_value(json_object_get(cmp, "target")), "LEASE");
    assert_string_equal(json_string_value(json_object_get(cmp, "lease")), "42");
    json_t *del =
        json_object_get(json_array_get(json_object_get(t, "success"), 0), "request_delete_range");
    assert_string_equal(key_of(del), key_of(cmp));
    json_decref(t);
}

static void test_parse_range(void **state)
{
    (void)state;
    json_t *a = json_loads(
        "{\"header\":{\"revision\":\"9\"},\"kvs\":[{\"key\":\"L2ZvZ3BvcnQvZm9ncy9mb2ctMQ==\","
        "\"create_revision\":\"5\",\"mod_revision\":\"7\",\"version\":\"2\",\"value\":"
        "\"eyJmb2ciOiJmb2ctMSJ9\",\"lease\":\"7587883021735427338\"},{\"key\":\"YQ==\"}],"
        "\"count\":\"2\"}",
        0, NULL);
    fp_etcd_kv *kvs;
    size_t n;
    fp_error err;
    assert_int_equal(fp_etcd_parse_range(a, &kvs, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(kvs[0].key, "/fogport/fogs/fog-1");
    assert_string_equal(kvs[0].value, "{\"fog\":\"fog-1\"}");
    assert_int_equal(kvs[0].create_revision, 5);
    assert_int_equal(kvs[0].mod_revision, 7);
    assert_true(kvs[0].lease == 7587883021735427338LL);
    /* no value, no lease: empty and 0 */
    assert_string_equal(kvs[1].key, "a");
    assert_int_equal(kvs[1].value_len, 0);
    assert_int_equal(kvs[1].lease, 0);
    fp_etcd_kvs_free(kvs, n);
    json_decref(a);
    /* an empty range has no "kvs" */
    a = json_loads("{\"header\":{}}", 0, NULL);
    assert_int_equal(fp_etcd_parse_range(a, &kvs, &n, &err), 0);
    assert_int_equal(n, 0);
    fp_etcd_kvs_free(kvs, n);
    json_decref(a);
    a = json_loads("{\"kvs\":[{\"key\":\"***\"}]}", 0, NULL);
    assert_int_equal(fp_etcd_parse_range(a, &kvs, &n, &err), -1);
    json_decref(a);
}

static void test_endpoints(void **state)
{
    (void)state;
    fp_etcd e;
    fp_error err;
    assert_int_equal(fp_etcd_init(&e, "http://10.0.0.3:2379/, http://10.0.0.4:2379", &err), 0);
    assert_int_equal(e.n, 2);
    assert_string_equal(e.endpoints[0], "http://10.0.0.3:2379");
    assert_string_equal(e.endpoints[1], "http://10.0.0.4:2379");
    assert_int_equal(fp_etcd_init(&e, "", &err), -1);
    assert_int_equal(fp_etcd_init(&e, "10.0.0.3:2379", &err), -1);
    assert_non_null(strstr(err.msg, "not an http"));
}

/* fp_etcd_txn takes the body it is given (the handover passes the
 * builders' answers straight in): nothing leaks, answered or not. */
static void test_txn_takes_body(void **state)
{
    (void)state;
    fp_etcd e;
    fp_error err;
    assert_int_equal(fp_etcd_init(&e, "http://127.0.0.1:1", &err), 0);
    e.timeout_ms = 500;
    bool ok = true;
    assert_int_equal(fp_etcd_txn(&e, fp_etcd_txn_create_body("/k", "v", 7), &ok, &err), -1);
    assert_int_equal(fp_etcd_txn(&e, fp_etcd_txn_delete_if_lease_body("/k", 7), &ok, &err), -1);
    assert_int_equal(fp_etcd_txn(&e, NULL, &ok, &err), -1);
}

static void test_int(void **state)
{
    (void)state;
    json_t *s = json_string("7587883021735427338"), *i = json_integer(12);
    assert_true(fp_etcd_int(s) == 7587883021735427338LL);
    assert_int_equal(fp_etcd_int(i), 12);
    assert_int_equal(fp_etcd_int(NULL), 0);
    json_decref(s);
    json_decref(i);
}

static void test_rank(void **state)
{
    (void)state;
    const char *alive[] = {"fog-3", "fog-2", "fog-1"};
    /* the first by id, other than the fog the service leaves */
    assert_string_equal(fp_handover_rank(alive, 3, "fog-1"), "fog-2");
    assert_string_equal(fp_handover_rank(alive, 3, "fog-9"), "fog-1");
    assert_string_equal(fp_handover_rank(alive, 3, NULL), "fog-1");
    const char *one[] = {"fog-1"};
    assert_null(fp_handover_rank(one, 1, "fog-1"));
    assert_null(fp_handover_rank(NULL, 0, "fog-1"));
    /* the same answer whatever the order etcd listed them in */
    const char *other[] = {"fog-2", "fog-3"};
    assert_string_equal(fp_handover_rank(other, 2, "fog-1"), "fog-2");
}

static void test_kind(void **state)
{
    (void)state;
    json_t *d = json_loads("{\"name\":\"web\",\"node\":\"fog-1\",\"always_on\":true}", 0, NULL);
    assert_true(fp_handover_kind(d));
    json_object_set_new(d, "replicas", json_integer(2));
    assert_false(fp_handover_kind(d)); /* replicas: the cloud's alone */
    json_decref(d);
    d = json_loads("{\"name\":\"web\",\"node\":\"fog-1\"}", 0, NULL);
    assert_false(fp_handover_kind(d));
    json_decref(d);
    d = json_loads("{\"name\":\"web\",\"role\":\"fog\",\"always_on\":true}", 0, NULL);
    assert_false(fp_handover_kind(d));
    json_decref(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64),      cmocka_unit_test(test_prefix_end),
        cmocka_unit_test(test_txn_create),  cmocka_unit_test(test_txn_release),
        cmocka_unit_test(test_parse_range), cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_int),         cmocka_unit_test(test_txn_takes_body),
        cmocka_unit_test(test_rank),        cmocka_unit_test(test_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
