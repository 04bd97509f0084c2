/* Unit tests for auth/authdata: the document the cloud builds from its
 * policy, users and nodes parses back into what a fog authenticates with;
 * revoked nodes cannot log in and are listed; malformed documents are
 * refused whole. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/authdata.h"
#include "auth/htpasswd.h"
#include "auth/nodes.h"
#include "core/fs.h"

static void test_round_trip(void **state)
{
    (void)state;
    char dir[64] = "/tmp/fogport-test-authdata-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char users[128], policy[128];
    snprintf(users, sizeof users, "%s/htpasswd", dir);
    snprintf(policy, sizeof policy, "%s/policy", dir);
    fp_error err;
    assert_int_equal(fp_htpasswd_set(users, "admin", "a long password", false, &err), 0);
    const char *rules = "user:admin * pull,push\nrole:fog {self}/* push\n";
    assert_int_equal(fp_write_file_atomic(policy, rules, strlen(rules), 0644, &err), 0);
    fp_nodes *nodes;
    assert_int_equal(fp_nodes_open(&nodes, dir, &err), 0);
    char tok[64], role[16], fog_secret[64], edge_secret[64];
    assert_int_equal(fp_nodes_token_create(nodes, "fog", "fog-1", 60, tok, &err), 0);
    assert_int_equal(fp_nodes_join(nodes, tok, "fog-1", role, fog_secret, &err), 0);
    assert_int_equal(fp_nodes_token_create(nodes, "edge", "edge-1", 60, tok, &err), 0);
    assert_int_equal(fp_nodes_join(nodes, tok, "edge-1", role, edge_secret, &err), 0);
    assert_int_equal(fp_nodes_revoke(nodes, "edge-1", &err), 0);

    char *doc = NULL;
    assert_int_equal(fp_authdata_build(policy, users, nodes, &doc, &err), 0);
    assert_null(strstr(doc, fog_secret)); /* only hashes leave the cloud */
    fp_authdata *d = NULL;
    assert_int_equal(fp_authdata_parse(doc, strlen(doc), &d, &err), 0);
    char user[64], kind[8], r[16];
    assert_true(fp_authdata_login(d, "fog-1", fog_secret, user, kind, r));
    assert_string_equal(kind, "node");
    assert_string_equal(r, "fog");
    assert_false(fp_authdata_login(d, "fog-1", edge_secret, user, kind, r));
    assert_false(fp_authdata_login(d, "edge-1", edge_secret, user, kind, r)); /* revoked */
    assert_true(fp_authdata_login(d, "admin", "a long password", user, kind, r));
    assert_string_equal(kind, "user");
    assert_false(fp_authdata_login(d, "admin", "wrong password", user, kind, r));
    fp_principal p = {.kind = "node", .name = "fog-1", .role = "fog"};
    assert_int_equal(fp_policy_actions(fp_authdata_policy(d), &p, "fog-1/svc"), FP_ACT_PUSH);
    json_t *revoked = fp_authdata_revoked(d);
    assert_int_equal(json_array_size(revoked), 1);
    assert_string_equal(json_string_value(json_array_get(revoked, 0)), "edge-1");
    json_decref(revoked);
    fp_authdata_unref(d);
    /* the same inputs give the same bytes (a fog rewrites only on change) */
    char *again = NULL;
    assert_int_equal(fp_authdata_build(policy, users, nodes, &again, &err), 0);
    assert_string_equal(doc, again);
    free(again);
    free(doc);
    fp_nodes_close(nodes);
    fp_rm_rf(dir);
}

static void test_malformed_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "[]",
        "{\"policy\":\"\",\"htpasswd\":\"\"}",
        "{\"policy\":\"nonsense rule\",\"htpasswd\":\"\",\"nodes\":[]}",
        "{\"policy\":\"\",\"htpasswd\":\"\",\"nodes\":[{\"id\":\"../x\",\"role\":\"fog\","
        "\"secret_sha256\":\"00\"}]}",
        "{\"policy\":\"\",\"htpasswd\":\"\",\"nodes\":[{\"id\":\"fog-1\",\"role\":\"king\","
        "\"secret_sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\"}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fp_authdata *d = NULL;
        fp_error err;
        assert_int_equal(fp_authdata_parse(bad[i], strlen(bad[i]), &d, &err), -1);
        assert_null(d);
    }
    /* empty policy: the default (authenticated may do everything) */
    const char *ok = "{\"policy\":\"\",\"htpasswd\":\"\",\"nodes\":[]}";
    fp_authdata *d = NULL;
    fp_error err;
    assert_int_equal(fp_authdata_parse(ok, strlen(ok), &d, &err), 0);
    fp_principal p = {.kind = "user", .name = "u", .role = ""};
    assert_true(fp_policy_actions(fp_authdata_policy(d), &p, "x") & FP_ACT_PUSH);
    fp_authdata_unref(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_malformed_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
