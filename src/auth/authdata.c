#include "auth/authdata.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "auth/htpasswd.h"
#include "core/cleanup.h"
#include "core/fs.h"

#define MAX_DOC (32u << 20)

struct node {
    char id[FP_NODE_ID_MAX + 1];
    char role[16];
    char hash[65];
    bool revoked;
};

struct fp_authdata {
    int refs;
    fp_policy *policy;
    fp_auth *users; /* NULL: no users */
    struct node *nodes;
    size_t nnodes;
};

/* A file's text, or "" when no path is configured. */
static int text_of(const char *path, char **out, fp_error *err)
{
    if (!path[0]) return (*out = strdup("")) ? 0 : fp_error_set(err, ENOMEM, "authdata");
    return fp_read_file(path, 16 << 20, out, NULL, err);
}

int fp_authdata_build(const char *policy_path, const char *htpasswd_path, fp_nodes *nodes,
                      char **json, fp_error *err)
{
    cleanup_free char *policy = NULL, *users = NULL;
    if (text_of(policy_path, &policy, err) < 0 || text_of(htpasswd_path, &users, err) < 0)
        return -1;
    json_t *list = nodes ? fp_nodes_export(nodes, err) : json_array();
    if (!list) return -1;
    json_t *doc = json_pack("{s:i, s:s, s:s, s:o}", "version", 1, "policy", policy, "htpasswd",
                            users, "nodes", list);
    /* sorted keys: an unchanged document is byte for byte the same */
    *json = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(doc);
    OPENSSL_cleanse(users, strlen(users));
    return *json ? 0 : fp_error_set(err, ENOMEM, "authdata");
}

static int parse_nodes(fp_authdata *d, const json_t *list, fp_error *err)
{
    size_t n = json_array_size(list);
    d->nodes = calloc(n + 1, sizeof *d->nodes);
    if (!d->nodes) return fp_error_set(err, ENOMEM, "authdata");
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        const char *id = json_string_value(json_object_get(e, "id"));
        const char *role = json_string_value(json_object_get(e, "role"));
        const char *hash = json_string_value(json_object_get(e, "secret_sha256"));
        if (!id || !role || !hash || !fp_node_id_valid(id) || !fp_node_role_valid(role) ||
            strlen(hash) != 64)
            return fp_error_set(err, EINVAL, "authdata: malformed node entry");
        struct node *nd = &d->nodes[d->nnodes++];
        snprintf(nd->id, sizeof nd->id, "%s", id);
        snprintf(nd->role, sizeof nd->role, "%s", role);
        memcpy(nd->hash, hash, 65);
        nd->revoked = json_is_true(json_object_get(e, "revoked"));
    }
    return 0;
}

int fp_authdata_parse(const char *text, size_t len, fp_authdata **out, fp_error *err)
{
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    const char *policy = json_string_value(json_object_get(doc, "policy"));
    const char *users = json_string_value(json_object_get(doc, "htpasswd"));
    json_t *nodes = json_object_get(doc, "nodes");
    fp_authdata *d = calloc(1, sizeof *d);
    int rc = -1;
    if (!d) {
        fp_error_set(err, ENOMEM, "authdata");
        goto out;
    }
    d->refs = 1;
    if (!policy || !users || !json_is_array(nodes)) {
        fp_error_set(err, EINVAL, "authdata: expected {policy, htpasswd, nodes}");
        goto out;
    }
    if (policy[0] ? fp_policy_parse(policy, "cloud policy", &d->policy, err) < 0
                  : !(d->policy = fp_policy_default()))
        goto out;
    if (users[0] && fp_auth_open_text(&d->users, users, err) < 0) goto out;
    rc = parse_nodes(d, nodes, err);
out:
    json_decref(doc);
    if (rc < 0) {
        fp_authdata_unref(d);
        return -1;
    }
    *out = d;
    return 0;
}

int fp_authdata_load(const char *path, fp_authdata **out, fp_error *err)
{
    cleanup_free char *text = NULL;
    size_t len = 0;
    if (fp_read_file(path, MAX_DOC, &text, &len, err) < 0) return -1;
    int rc = fp_authdata_parse(text, len, out, err);
    OPENSSL_cleanse(text, len);
    return rc < 0 ? fp_error_prefix(err, "%s", path) : 0;
}

fp_authdata *fp_authdata_ref(fp_authdata *d)
{
    if (d) __atomic_add_fetch(&d->refs, 1, __ATOMIC_RELAXED);
    return d;
}

void fp_authdata_unref(fp_authdata *d)
{
    if (!d || __atomic_sub_fetch(&d->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    fp_policy_unref(d->policy);
    fp_auth_free(d->users);
    free(d->nodes);
    free(d);
}

const fp_policy *fp_authdata_policy(const fp_authdata *d)
{
    return d->policy;
}

bool fp_authdata_login(fp_authdata *d, const char *name, const char *password, char user[64],
                       char kind[8], char role[16])
{
    if (fp_node_id_valid(name)) {
        char want[65];
        fp_node_secret_hash(password, want);
        for (size_t i = 0; i < d->nnodes; i++) {
            struct node *n = &d->nodes[i];
            if (strcmp(n->id, name) != 0) continue;
            if (!n->revoked && CRYPTO_memcmp(n->hash, want, 64) == 0) {
                snprintf(user, 64, "%s", n->id);
                snprintf(kind, 8, "node");
                snprintf(role, 16, "%s", n->role);
                return true;
            }
            break;
        }
    }
    if (d->users && fp_auth_verify(d->users, name, password, user)) {
        snprintf(kind, 8, "user");
        role[0] = '\0';
        return true;
    }
    return false;
}

json_t *fp_authdata_revoked(const fp_authdata *d)
{
    json_t *ids = json_array();
    for (size_t i = 0; ids && i < d->nnodes; i++)
        if (d->nodes[i].revoked) json_array_append_new(ids, json_string(d->nodes[i].id));
    return ids;
}
