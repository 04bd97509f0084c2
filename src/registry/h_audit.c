/* The cloud's audit trail (control/audit.h) seen from the registry:
 *   GET /api/v1/audit?after=SEQ&limit=N   entries with seq > SEQ (default
 *                                         0), at most N (default and most
 *                                         1000), for users (not nodes):
 *                                         {"entries": [...], "more": bool,
 *                                          "head": {"seq", "hash"} | null}
 * and the helpers with which handlers append what they just did, each one
 * line at its call site. The log is kept only where there is a node
 * directory and a token key to sign with: the cloud. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "control/audit.h"
#include "core/cleanup.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/range.h"
#include "registry/request.h"

#define PAGE_MAX 1000

/* "user:NAME" or "node:NAME" as the policy writes principals; a request
 * without a login (a join) by its address. */
static void actor_of(const fp_req *r, char *out, size_t outlen)
{
    if (!r->user[0]) {
        snprintf(out, outlen, "remote:%s", r->remote);
        return;
    }
    const char *kind = r->kind[0] ? r->kind : r->grant && r->grant->node ? "node" : "user";
    snprintf(out, outlen, "%s:%s", kind, r->user);
}

void fp_req_audit(fp_req *r, const char *kind, const char *subject, json_t *details)
{
    if (r->reg->audit) {
        char actor[96];
        actor_of(r, actor, sizeof actor);
        /* a token a fog signed (x5c) says so: the fog vouched for the actor */
        if (r->grant && r->grant->signer[0] && json_is_object(details))
            json_object_set_new(details, "token_signer", json_string(r->grant->signer));
        fp_error err;
        if (fp_audit_append(r->reg->audit, kind, actor, subject, details, &err) < 0)
            fp_errorf("event=audit_append_failed kind=%s subject=%s error=\"%s\"", kind, subject,
                      err.msg);
    }
    json_decref(details);
}

void fp_audit_on_push(fp_req *r, const char *digest, const char *const *tags, size_t ntags)
{
    /* a manifest pushed by digest alone (an index's children) is not a
     * registration: its tag is */
    if (!r->reg->audit || ntags == 0) return;
    json_t *t = json_array();
    for (size_t i = 0; i < ntags; i++)
        json_array_append_new(t, json_string(tags[i]));
    fp_req_audit(
        r, FP_AUDIT_IMAGE_REGISTERED, r->route.name,
        json_pack("{s:s, s:s, s:o}", "repository", r->route.name, "digest", digest, "tags", t));
}

void fp_audit_on_delete(fp_req *r)
{
    if (!r->reg->audit) return;
    fp_req_audit(r, FP_AUDIT_IMAGE_DELETED, r->route.name,
                 json_pack("{s:s, s:s}", "repository", r->route.name, "reference", r->route.ref));
}

/* "sha256:..." of a file's bytes, or "none" when it cannot be read. */
static void file_digest(const char *path, char out[FP_DIGEST_MAX])
{
    cleanup_free char *text = NULL;
    size_t len;
    fp_error err;
    if (!path[0] || fp_read_file(path, 64u << 20, &text, &len, &err) < 0)
        snprintf(out, FP_DIGEST_MAX, "none");
    else
        fp_digest_bytes(FP_SHA256, text, len, out);
}

/* The policy and the users as they are now (at start, and after each edit
 * the cloud noticed), when either differs from what the log last recorded:
 * edits to those files are grants too. */
static void audit_policy(struct fp_registry *reg)
{
    char policy[FP_DIGEST_MAX], users[FP_DIGEST_MAX];
    file_digest(reg->cfg->policy, policy);
    file_digest(reg->cfg->htpasswd, users);
    json_t *last = NULL;
    fp_error err;
    if (fp_audit_find_last(fp_audit_path(reg->audit), FP_AUDIT_POLICY_LOADED, &last, &err) == 0) {
        const json_t *d = json_object_get(last, "details");
        const char *p = json_string_value(json_object_get(d, "policy_digest"));
        const char *u = json_string_value(json_object_get(d, "users_digest"));
        bool same = p && u && !strcmp(p, policy) && !strcmp(u, users);
        json_decref(last);
        if (same) return;
    }
    json_t *d = json_pack("{s:s, s:s, s:s, s:s}", "policy", reg->cfg->policy, "policy_digest",
                          policy, "users", reg->cfg->htpasswd, "users_digest", users);
    if (fp_audit_append(reg->audit, FP_AUDIT_POLICY_LOADED, "fogport", reg->cfg->node_id, d, &err) <
        0)
        fp_errorf("event=audit_append_failed kind=%s error=\"%s\"", FP_AUDIT_POLICY_LOADED,
                  err.msg);
    json_decref(d);
}

static void audit_policy_changed(void *reg)
{
    audit_policy(reg);
}

int fp_registry_audit_open(struct fp_registry *reg, fp_error *err)
{
    if (!reg->authz->signing) {
        fp_warn("event=audit_disabled reason=\"no token key to sign the audit log with\"");
        return 0;
    }
    if (fp_audit_open(&reg->audit, reg->cfg->data_dir, reg->authz->signing, err) < 0) return -1;
    fp_audit_set_key_path(reg->audit, reg->cfg->token_key);
    audit_policy(reg);
    reg->authz->on_change_ctx = reg;
    reg->authz->on_change = audit_policy_changed;
    return 0;
}

void fp_handle_audit(fp_req *r)
{
    if (!fp_req_read_only(r) || !fp_authz_require_login(r)) return;
    if (strcmp(r->kind, "user") != 0) {
        fp_respond_error(r, 403, "DENIED", "the audit log is for operators");
        return;
    }
    uint64_t after = 0, limit = PAGE_MAX;
    const char *a = fp_req_arg(r, "after"), *l = fp_req_arg(r, "limit");
    if ((a && fp_parse_u64(a, &after) < 0) || (l && (fp_parse_u64(l, &limit) < 0 || !limit))) {
        fp_respond_error(r, 400, "UNSUPPORTED", "after and limit are numbers (limit > 0)");
        return;
    }
    if (limit > PAGE_MAX) limit = PAGE_MAX;
    json_t *entries, *head = NULL;
    bool more = false;
    fp_error err;
    const char *path = fp_audit_path(r->reg->audit);
    if (fp_audit_read(path, after, (size_t)limit, &entries, &more, &err) < 0) {
        fp_respond_internal(r, &err);
        return;
    }
    char hp[FP_PATH_MAX + 16];
    fp_audit_head_path(path, hp, sizeof hp);
    json_t *h = NULL;
    if (fp_audit_head_read(hp, &h, &err) == 0)
        head = json_pack("{s:O?, s:O?}", "seq", json_object_get(h, "seq"), "hash",
                         json_object_get(h, "hash"));
    json_decref(h);
    fp_respond_json(r, json_pack("{s:o, s:b, s:o}", "entries", entries, "more", more, "head",
                                 head ? head : json_null()));
}
