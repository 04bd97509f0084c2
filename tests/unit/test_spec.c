/* Unit tests for agent/spec: a service definition to and from JSON, and
 * the validation that stands between the wire and the runtime. Rejections
 * start from a minimal valid definition and change one field, so each case
 * fails for the reason it names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/spec.h"

#define DIGEST "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static json_t *load(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j) fail_msg("bad test JSON (%s): %s", je.text, text);
    return j;
}

/* A definition with every field set, in the key order fp_service_to_json
 * does not promise (json_equal ignores order). */
static const char full_json[] =
    "{\"name\": \"web-1_a\", \"image\": \"registry.local:5000/app/web:1.2\","
    " \"digest\": \"" DIGEST "\", \"node\": \"edge-7\", \"role\": \"edge\","
    " \"entrypoint\": [\"/bin/web\"], \"cmd\": [\"--port\", \"80\", \"\"],"
    " \"env\": [\"A=1\", \"B_2=x=y\", \"_EMPTY=\"], \"ports\": [80, 443, 1, 65535],"
    " \"memory\": 268435456, \"cpus\": 0.25, \"pids\": 64,"
    " \"capabilities\": [\"CAP_NET_BIND_SERVICE\", \"CAP_CHOWN\"], \"writable\": true,"
    " \"user\": \"1000:1000\", \"restart\": \"on-failure\", \"stop_grace_s\": 30}";

static void assert_strv(fp_strv v, const char *const *want)
{
    assert_non_null(v);
    size_t n = 0;
    for (; want[n]; n++) {
        assert_non_null(v[n]);
        assert_string_equal(v[n], want[n]);
    }
    assert_null(v[n]);
    assert_int_equal(fp_strv_len(v), n);
}

static void assert_same(const fp_service *a, const fp_service *b)
{
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->image, b->image);
    assert_string_equal(a->digest, b->digest);
    assert_string_equal(a->node, b->node);
    assert_string_equal(a->role, b->role);
    assert_string_equal(a->user, b->user);
    fp_strv av[] = {a->entrypoint, a->cmd, a->env, a->capabilities};
    fp_strv bv[] = {b->entrypoint, b->cmd, b->env, b->capabilities};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(av[i] == NULL, bv[i] == NULL);
        if (av[i]) assert_strv(av[i], (const char *const *)bv[i]);
    }
    assert_int_equal(a->nports, b->nports);
    assert_memory_equal(a->ports, b->ports, sizeof a->ports);
    assert_int_equal(a->memory, b->memory);
    assert_true(a->cpus == b->cpus);
    assert_int_equal(a->pids, b->pids);
    assert_int_equal(a->writable, b->writable);
    assert_int_equal(a->restart, b->restart);
    assert_int_equal(a->stop_grace_s, b->stop_grace_s);
}

static void test_full_round_trip(void **state)
{
    (void)state;
    json_t *j = load(full_json);
    fp_service s;
    fp_error err;
    if (fp_service_from_json(j, &s, &err) < 0) fail_msg("%s", err.msg);
    assert_string_equal(s.name, "web-1_a");
    assert_string_equal(s.image, "registry.local:5000/app/web:1.2");
    assert_string_equal(s.digest, DIGEST);
    assert_string_equal(s.node, "edge-7");
    assert_string_equal(s.role, "edge");
    assert_strv(s.entrypoint, (const char *const[]){"/bin/web", NULL});
    assert_strv(s.cmd, (const char *const[]){"--port", "80", "", NULL});
    assert_strv(s.env, (const char *const[]){"A=1", "B_2=x=y", "_EMPTY=", NULL});
    assert_int_equal(s.nports, 4);
    assert_int_equal(s.ports[0], 80);
    assert_int_equal(s.ports[1], 443);
    assert_int_equal(s.ports[2], 1);
    assert_int_equal(s.ports[3], 65535);
    assert_int_equal(s.memory, 268435456);
    assert_true(s.cpus == 0.25);
    assert_int_equal(s.pids, 64);
    assert_strv(s.capabilities, (const char *const[]){"CAP_NET_BIND_SERVICE", "CAP_CHOWN", NULL});
    assert_true(s.writable);
    assert_string_equal(s.user, "1000:1000");
    assert_int_equal(s.restart, FP_RESTART_ON_FAILURE);
    assert_int_equal(s.stop_grace_s, 30);

    /* to JSON: the same document */
    json_t *out = fp_service_to_json(&s);
    assert_non_null(out);
    if (!json_equal(out, j)) {
        char *a = json_dumps(out, JSON_SORT_KEYS), *b = json_dumps(j, JSON_SORT_KEYS);
        fail_msg("round trip differs:\n  got  %s\n  want %s", a, b);
    }
    /* and back again: the same definition, also through text */
    char *text = json_dumps(out, JSON_COMPACT);
    json_t *again = load(text);
    free(text);
    fp_service t;
    if (fp_service_from_json(again, &t, &err) < 0) fail_msg("%s", err.msg);
    assert_same(&s, &t);
    fp_service_free(&t);
    fp_service_free(&s);
    /* freeing leaves an initialised definition, safe to free twice */
    assert_null(s.cmd);
    fp_service_free(&s);
    json_decref(again);
    json_decref(out);
    json_decref(j);
}

/* Absent: NULL (keep the image's / Docker's default); an empty array: an
 * empty list (run with none). null counts as absent. Both survive a round
 * trip. */
static void test_empty_and_absent(void **state)
{
    (void)state;
    fp_error err;
    json_t *j = load("{\"name\": \"a\", \"image\": \"x\", \"entrypoint\": [], \"cmd\": [],"
                     " \"env\": [], \"capabilities\": [], \"ports\": []}");
    fp_service s;
    if (fp_service_from_json(j, &s, &err) < 0) fail_msg("%s", err.msg);
    fp_strv lists[] = {s.entrypoint, s.cmd, s.env, s.capabilities};
    for (int i = 0; i < 4; i++) {
        assert_non_null(lists[i]);
        assert_null(lists[i][0]);
    }
    json_t *out = fp_service_to_json(&s);
    const char *keys[] = {"entrypoint", "cmd", "env", "capabilities", "ports"};
    for (int i = 0; i < 5; i++) {
        json_t *v = json_object_get(out, keys[i]);
        if (!json_is_array(v) || json_array_size(v) != 0) fail_msg("%s: not []", keys[i]);
    }
    fp_service t;
    if (fp_service_from_json(out, &t, &err) < 0) fail_msg("%s", err.msg);
    assert_same(&s, &t);
    fp_service_free(&t);
    fp_service_free(&s);
    json_decref(out);
    json_decref(j);

    /* absent, and explicitly null: NULL, the defaults, and null on the way out */
    const char *forms[] = {
        "{\"name\": \"a\", \"image\": \"x\"}",
        "{\"name\": \"a\", \"image\": \"x\", \"entrypoint\": null, \"cmd\": null, \"env\": null,"
        " \"capabilities\": null, \"ports\": null, \"restart\": null, \"stop_grace_s\": null,"
        " \"user\": null, \"memory\": null, \"cpus\": null}",
    };
    for (int f = 0; f < 2; f++) {
        j = load(forms[f]);
        if (fp_service_from_json(j, &s, &err) < 0) fail_msg("%s", err.msg);
        assert_null(s.entrypoint);
        assert_null(s.cmd);
        assert_null(s.env);
        assert_null(s.capabilities);
        assert_int_equal(s.nports, 0);
        assert_int_equal(s.restart, FP_RESTART_ALWAYS);
        assert_int_equal(s.stop_grace_s, 10);
        assert_int_equal(s.memory, 0);
        assert_true(s.cpus == 0);
        assert_false(s.writable);
        assert_string_equal(s.user, "");
        out = fp_service_to_json(&s);
        for (int i = 0; i < 4; i++)
            if (!json_is_null(json_object_get(out, keys[i]))) fail_msg("%s: not null", keys[i]);
        assert_string_equal(json_string_value(json_object_get(out, "restart")), "always");
        fp_service_init(&t);
        if (fp_service_from_json(out, &t, &err) < 0) fail_msg("%s", err.msg);
        assert_same(&s, &t);
        fp_service_free(&t);
        fp_service_free(&s);
        json_decref(out);
        json_decref(j);
    }
}

/* ------------------------------------------------------------ rejections */

/* The minimal valid definition with key set to v (stolen; NULL deletes the
 * key) must be refused with a message containing `want`, and leave s
 * initialised (nothing half-parsed to leak or trust). */
static void reject_(const char *key, json_t *v, const char *want, const char *file, int line)
{
    json_t *j = load("{\"name\": \"web\", \"image\": \"x:1\"}");
    if (v)
        json_object_set_new(j, key, v);
    else
        json_object_del(j, key);
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    fp_service s;
    fp_error err = {0};
    int rc = fp_service_from_json(j, &s, &err);
    if (rc != -1) fail_msg("%s:%d: %s accepted", file, line, text);
    if (!strstr(err.msg, want))
        fail_msg("%s:%d: %s: error \"%s\" does not mention \"%s\"", file, line, text, err.msg,
                 want);
    assert_string_equal(s.name, "");
    assert_null(s.entrypoint);
    assert_null(s.cmd);
    assert_null(s.env);
    assert_null(s.capabilities);
    free(text);
    json_decref(j);
}
#define reject(key, v, want) reject_((key), (v), (want), __FILE__, __LINE__)

static void accept_(const char *key, json_t *v, const char *file, int line)
{
    json_t *j = load("{\"name\": \"web\", \"image\": \"x:1\"}");
    json_object_set_new(j, key, v);
    fp_service s;
    fp_error err;
    if (fp_service_from_json(j, &s, &err) < 0) {
        char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("%s:%d: %s refused: %s", file, line, text, err.msg);
    }
    fp_service_free(&s);
    json_decref(j);
}
#define accept(key, v) accept_((key), (v), __FILE__, __LINE__)

static json_t *strs(int n, ...)
{
    json_t *a = json_array();
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_string(va_arg(ap, const char *)));
    va_end(ap);
    return a;
}

static void test_reject_unknown_and_shape(void **state)
{
    (void)state;
    reject("nmae", json_string("web"), "unknown field \"nmae\"");
    reject("Name", json_string("web"), "unknown field");
    reject("volumes", json_array(), "unknown field");

    fp_service s;
    fp_error err;
    json_t *arr = load("[{\"name\": \"web\", \"image\": \"x\"}]");
    assert_int_equal(fp_service_from_json(arr, &s, &err), -1);
    json_decref(arr);

    reject("name", json_integer(5), "name: expected a string");
    reject("cmd", json_string("/bin/sh -c x"), "cmd: expected an array");
    reject("cmd", load("[\"a\", 1]"), "cmd[1]");
    reject("writable", json_string("yes"), "writable");
    reject("writable", json_integer(1), "writable");
}

static void test_reject_name(void **state)
{
    (void)state;
    const char *bad[] = {"Web",     "wEb",  "a/b",  "/",   "..",  ".",     "a..b",
                         ".hidden", "-web", "_web", "a b", "a.b", "web\n", "ä"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        reject("name", json_string(bad[i]), "not a service name");
    reject("name", json_string(""), "name");
    reject("name", NULL, "name");
    char n[70];
    memset(n, 'a', 64);
    n[64] = '\0';
    reject("name", json_string(n), "name");
    n[63] = '\0'; /* 63 is the most */
    accept("name", json_string(n));
    accept("name", json_string("0"));
    accept("name", json_string("a-b_c9"));
    assert_false(fp_service_name_valid(""));
    assert_false(fp_service_name_valid("UPPER"));
    assert_true(fp_service_name_valid("lower"));
}

static void test_reject_image(void **state)
{
    (void)state;
    reject("image", NULL, "image: required");
    reject("image", json_string(""), "image: required");
    reject("image", json_null(), "image: required"); /* null is absent */
    char long_image[600];
    memset(long_image, 'x', 512);
    long_image[512] = '\0';
    reject("image", json_string(long_image), "image: longer than 511");
    long_image[511] = '\0';
    accept("image", json_string(long_image));
}

static void test_reject_ports(void **state)
{
    (void)state;
    reject("ports", load("[0]"), "ports[0]");
    reject("ports", load("[80, 65536]"), "ports[1]");
    reject("ports", load("[-1]"), "ports[0]");
    reject("ports", load("[\"80\"]"), "ports[0]");
    reject("ports", load("[80.0]"), "ports[0]");
    reject("ports", load("[1, 2, 3, 4, 5, 6, 7, 8, 9]"), "at most 8");
    reject("ports", json_integer(80), "ports");
    accept("ports", load("[1, 2, 3, 4, 5, 6, 7, 65535]"));
}

static void test_reject_env(void **state)
{
    (void)state;
    const char *bad[] = {"NOEQUALS", "=value", "1A=b", "A-B=c", "A B=c", "A.B=c", "", "é=1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        reject("env", strs(2, "OK=1", bad[i]), "is not NAME=VALUE");
    accept("env", strs(4, "A=", "_X=1", "a1=b=c", "PATH=/usr/bin:/bin"));
}

static void test_reject_capabilities(void **state)
{
    (void)state;
    reject("capabilities", strs(2, "CAP_CHOWN", "CAP_SYS_ADMIN"), "CAP_SYS_ADMIN is not allowed");
    reject("capabilities", strs(1, "CAP_NET_ADMIN"), "not allowed");
    reject("capabilities", strs(1, "cap_chown"), "not allowed");
    reject("capabilities", strs(1, "CHOWN"), "not allowed");
    reject("capabilities", strs(1, ""), "not allowed");
    /* the whole default set is fine */
    json_t *all = json_array();
    for (size_t i = 0; fp_default_capabilities[i]; i++)
        json_array_append_new(all, json_string(fp_default_capabilities[i]));
    accept("capabilities", all);
    assert_false(fp_capability_default("CAP_SYS_ADMIN"));
    assert_true(fp_capability_default("CAP_KILL"));
}

static void test_reject_numbers(void **state)
{
    (void)state;
    reject("memory", json_integer(-1), "memory: expected a non-negative integer");
    reject("memory", json_real(1.5), "memory");
    reject("memory", json_string("1G"), "memory");
    accept("memory", json_integer(0));
    accept("memory", json_integer(INT64_MAX));

    reject("cpus", json_real(-0.5), "cpus");
    reject("cpus", json_integer(-1), "cpus");
    reject("cpus", json_real(1024.5), "cpus");
    reject("cpus", json_real(1e308), "cpus");
    reject("cpus", json_integer(INT64_MAX), "cpus");
    reject("cpus", json_string("NaN"), "cpus");
    reject("cpus", json_string("nan"), "cpus");
    reject("cpus", json_string("Infinity"), "cpus");
    reject("cpus", json_true(), "cpus");
    /* NaN and infinities cannot reach the parser: JSON has no literal for
     * them and jansson builds no such value */
    assert_null(json_real(NAN));
    assert_null(json_real(INFINITY));
    json_error_t je;
    assert_null(json_loads("{\"cpus\": NaN}", 0, &je));
    assert_null(json_loads("{\"cpus\": 1e999}", 0, &je));
    accept("cpus", json_real(0));
    accept("cpus", json_real(0.5));
    accept("cpus", json_integer(2));
    accept("cpus", json_real(1024));

    reject("pids", json_integer(-1), "pids");
    reject("pids", json_integer((json_int_t)UINT32_MAX + 1), "pids: too large");
    accept("pids", json_integer(UINT32_MAX));

    reject("stop_grace_s", json_integer(3601), "stop_grace_s: at most 3600");
    reject("stop_grace_s", json_integer(-1), "stop_grace_s");
    reject("stop_grace_s", json_integer(INT64_MAX), "stop_grace_s");
    accept("stop_grace_s", json_integer(0));
    accept("stop_grace_s", json_integer(3600));
}

static void test_reject_restart(void **state)
{
    (void)state;
    reject("restart", json_string("sometimes"), "restart: expected always, on-failure or never");
    reject("restart", json_string(""), "restart");
    reject("restart", json_string("Always"), "restart");
    reject("restart", json_integer(0), "restart");
    fp_restart r;
    const char *names[] = {"always", "on-failure", "never"};
    for (int i = 0; i < 3; i++) {
        accept("restart", json_string(names[i]));
        assert_int_equal(fp_restart_parse(names[i], &r), 0);
        assert_string_equal(fp_restart_name(r), names[i]);
    }
}

/* always_on and replicas: checked, round-tripped, and absent from the JSON
 * form when unset (definitions without them keep their canonical form). */
static void test_placement_fields(void **state)
{
    (void)state;
    reject("always_on", json_string("yes"), "always_on: expected true or false");
    reject("replicas", json_integer(-1), "replicas: expected 0..64");
    reject("replicas", json_integer(65), "replicas");
    reject("replicas", json_real(1.5), "replicas");
    accept("replicas", json_integer(64));
    json_t *j = load("{\"name\": \"web\", \"image\": \"x:1\", \"always_on\": true, "
                     "\"replicas\": 3}");
    fp_service s;
    fp_error err;
    assert_int_equal(fp_service_from_json(j, &s, &err), 0);
    assert_true(s.always_on);
    assert_int_equal(s.replicas, 3);
    json_t *out = fp_service_to_json(&s);
    assert_true(json_is_true(json_object_get(out, "always_on")));
    assert_int_equal(json_integer_value(json_object_get(out, "replicas")), 3);
    json_decref(out);
    s.always_on = false;
    s.replicas = 0;
    out = fp_service_to_json(&s);
    assert_null(json_object_get(out, "always_on"));
    assert_null(json_object_get(out, "replicas"));
    json_decref(out);
    fp_service_free(&s);
    json_decref(j);
}

/* JSON strings may hold U+0000; a C string would silently end there, so
 * "web\0anything" must not pass as "web" (nor "always\0..." as "always"). */
static void test_reject_embedded_nul(void **state)
{
    (void)state;
    const char *keys[] = {"name", "image", "digest", "node", "role", "user"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        reject(keys[i], json_stringn("web\0x", 5), "NUL");
    const char *lists[] = {"entrypoint", "cmd", "env", "capabilities"};
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
        json_t *a = json_array();
        json_array_append_new(a, json_string("A=1"));
        json_array_append_new(a, json_stringn("CAP_KILL\0x", 10));
        reject(lists[i], a, "[1]");
    }
    reject("restart", json_stringn("always\0x", 8), "restart");

    /* from text too: jansson decodes \u0000 when allowed to */
    json_error_t je;
    json_t *j = json_loads("{\"name\": \"web\\u0000x\", \"image\": \"x\"}", JSON_ALLOW_NUL, &je);
    assert_non_null(j);
    fp_service s;
    fp_error err;
    assert_int_equal(fp_service_from_json(j, &s, &err), -1);
    json_decref(j);

#if JANSSON_VERSION_HEX >= 0x020e00
    /* and in a key: "name\0x" is not "name" (jansson's parser refuses such
     * keys, but a json_t built in code can hold one) */
    j = load("{\"name\": \"web\", \"image\": \"x\"}");
    json_object_setn_new(j, "name\0x", 6, json_string("other"));
    assert_int_equal(fp_service_from_json(j, &s, &err), -1);
    assert_non_null(strstr(err.msg, "NUL"));
    json_decref(j);
    j = load("{\"image\": \"x\"}");
    json_object_setn_new(j, "name\0x", 6, json_string("web"));
    assert_int_equal(fp_service_from_json(j, &s, &err), -1);
    assert_non_null(strstr(err.msg, "NUL"));
    json_decref(j);
#endif
}

/* user is "uid[:gid]", numbers (the runtime sets ids, it has no passwd) */
static void test_user(void **state)
{
    (void)state;
    const char *bad[] = {"root",       "0:",           ":0",   "1:2:3",  "-1",
                         "+1",         " 1",           "1 ",   "0:0;id", "4294967295",
                         "4294967296", "1:4294967295", "0x10", "1:root"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        reject("user", json_string(bad[i]), "user");
    accept("user", json_string(""));
    accept("user", json_string("0"));
    accept("user", json_string("1000:1000"));
    accept("user", json_string("4294967294:0"));
}

static void test_strv(void **state)
{
    (void)state;
    fp_strv v = NULL;
    assert_int_equal(fp_strv_len(v), 0);
    assert_int_equal(fp_strv_push(&v, "a"), 0);
    assert_int_equal(fp_strv_push(&v, ""), 0);
    assert_strv(v, (const char *const[]){"a", "", NULL});
    fp_strv_free(v);
    fp_strv_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_round_trip),
        cmocka_unit_test(test_empty_and_absent),
        cmocka_unit_test(test_reject_unknown_and_shape),
        cmocka_unit_test(test_reject_name),
        cmocka_unit_test(test_reject_image),
        cmocka_unit_test(test_reject_ports),
        cmocka_unit_test(test_reject_env),
        cmocka_unit_test(test_reject_capabilities),
        cmocka_unit_test(test_reject_numbers),
        cmocka_unit_test(test_reject_restart),
        cmocka_unit_test(test_placement_fields),
        cmocka_unit_test(test_reject_embedded_nul),
        cmocka_unit_test(test_user),
        cmocka_unit_test(test_strv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
