/* Recalls at the cloud (control/recalls.h, control/recallset.h):
 *   POST   /api/v1/recalls          {"image": REF, "reason": TEXT}: recall
 *                                   an image (a user who may delete in its
 *                                   repository); a tag is resolved to its
 *                                   manifest digest here, an index recalls
 *                                   its children too
 *   DELETE /api/v1/recalls/DIGEST   un-recall (explicit, same permission)
 *   GET    /api/v1/recalls          the list: nodes fetch it (every
 *                                   record), users see their repositories'
 * The cloud keeps a recalled image's content and refuses it while it is
 * recalled (an un-recall needs no new push); fogs and edges delete it. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control/audit.h"
#include "control/recalls.h"
#include "control/recallset.h"
#include "core/log.h"
#include "core/manifest.h"
#include "core/name.h"
#include "registry/request.h"

#define RECALL_BODY_MAX (16 * 1024)
#define RECALL_TAGS_MAX 1000 /* tags of a repository looked at for the record */

bool fp_req_refuse_recalled(fp_req *r, const char *digest)
{
    if (!fp_recall_set_has(r->reg->recalled, digest)) return false;
    fp_respond_error(r, 403, "DENIED", "%s@%s is recalled", r->route.name[0] ? r->route.name : "-",
                     digest);
    return true;
}

/* The recall set follows control.db: after every change, and at start. */
static int refresh(struct fp_registry *reg, fp_error *err)
{
    json_t *list;
    if (!reg->recalled) return 0;
    if (fp_recalls_list(reg->recalls, &list, err) < 0) return -1;
    int rc = fp_recall_set_replace(reg->recalled, list, err);
    json_decref(list);
    return rc < 0 ? -1 : 0;
}

int fp_registry_recalls_open(struct fp_registry *reg, fp_error *err)
{
    if (fp_recalls_open(&reg->recalls, reg->cfg->data_dir, err) < 0) return -1;
    return refresh(reg, err);
}

static int body_sink(fp_req *r, const char *data, size_t len)
{
    if (r->body.len + len > RECALL_BODY_MAX)
        return fp_req_fail(r, 413, "UNSUPPORTED", "recall request too large");
    return fp_buf_append(&r->body, data, len);
}

static void add_unique(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (!strcmp(json_string_value(v), s)) return;
    json_array_append_new(arr, json_string(s));
}

/* The config and layers of an image manifest, or of every image of an
 * index (its children go to children): what nodes refuse along with it. */
static int collect(fp_req *r, const char *repo, const char *digest, json_t *children, json_t *blobs,
                   int depth, fp_error *err)
{
    fp_manifest_row row;
    int rc = fp_store_manifest_get(r->reg->store, repo, digest, true, true, &row, err);
    if (rc == FP_STORE_NOT_FOUND) return 0; /* a child the cloud never held */
    if (rc < 0) return -1;
    fp_manifest m;
    char why[300];
    rc = fp_manifest_parse(row.body, row.size, row.media_type, &m, why, sizeof why);
    free(row.body);
    if (rc < 0) return 0; /* stored, so it parsed once: nothing to add */
    if (!m.is_index && m.config.digest[0]) add_unique(blobs, m.config.digest);
    for (size_t i = 0; i < m.nrefs && rc == 0; i++) {
        if (m.refs[i].has_urls) continue;
        if (!m.is_index) {
            add_unique(blobs, m.refs[i].digest);
        } else if (depth < 2) {
            add_unique(children, m.refs[i].digest);
            rc = collect(r, repo, m.refs[i].digest, children, blobs, depth + 1, err);
        }
    }
    fp_manifest_free(&m);
    return rc;
}

struct tag_ctx {
    fp_req *r;
    const char *repo, *digest;
    json_t *tags;
};

static int tag_points(void *ctx, const char *tag)
{
    struct tag_ctx *c = ctx;
    fp_manifest_row row;
    fp_error err;
    if (fp_store_manifest_get(c->r->reg->store, c->repo, tag, false, false, &row, &err) == 0 &&
        !strcmp(row.digest, c->digest))
        json_array_append_new(c->tags, json_string(tag));
    return 0;
}

static void recall_end(fp_req *r)
{
    json_error_t jerr;
    json_t *j = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, &jerr);
    const char *image = json_string_value(json_object_get(j, "image"));
    const char *reason = json_string_value(json_object_get(j, "reason"));
    fp_reference ref;
    if (!image || fp_reference_parse(image, &ref) < 0) {
        fp_respond_error(r, 400, "NAME_INVALID", "recall: \"image\" must be an image reference");
        json_decref(j);
        return;
    }
    if (strcmp(r->kind, "user") != 0 || !fp_authz_policy_may(r, ref.name, FP_ACT_DELETE)) {
        fp_respond_error(r, 403, "DENIED", "%s may not recall %s", r->user, ref.name);
        json_decref(j);
        return;
    }
    fp_error err;
    char digest[FP_DIGEST_MAX];
    if (ref.digest[0]) {
        snprintf(digest, sizeof digest, "%s", ref.digest);
    } else {
        fp_manifest_row row;
        int rc = fp_store_manifest_get(r->reg->store, ref.name, ref.tag[0] ? ref.tag : "latest",
                                       false, false, &row, &err);
        if (rc != 0) {
            fp_respond_store_error(r, rc, &err, "MANIFEST_UNKNOWN",
                                   "the tag is not registered at the cloud");
            json_decref(j);
            return;
        }
        snprintf(digest, sizeof digest, "%s", row.digest);
    }
    json_t *children = json_array(), *blobs = json_array(), *tags = json_array();
    struct tag_ctx tc = {.r = r, .repo = ref.name, .digest = digest, .tags = tags};
    if (collect(r, ref.name, digest, children, blobs, 0, &err) < 0 ||
        fp_store_tags(r->reg->store, ref.name, NULL, RECALL_TAGS_MAX, tag_points, &tc, &err) < 0) {
        json_decref(children);
        json_decref(blobs);
        json_decref(tags);
        json_decref(j);
        fp_respond_internal(r, &err);
        return;
    }
    json_t *rec =
        json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:o, s:o, s:o}", "digest", digest, "repo",
                  ref.name, "ref", image, "user", r->user, "time", (json_int_t)time(NULL), "reason",
                  reason ? reason : "", "children", children, "tags", tags, "blobs", blobs);
    json_decref(j);
    if (!rec || fp_recalls_put(r->reg->recalls, rec, &err) < 0 || refresh(r->reg, &err) < 0) {
        if (!rec) fp_error_set(&err, ENOMEM, "recall");
        json_decref(rec);
        fp_respond_internal(r, &err);
        return;
    }
    /* image pointed into the request's JSON, gone now: the record's copy */
    fp_info("event=recall repo=%s digest=%s ref=%s user=%s", ref.name, digest,
            json_string_value(json_object_get(rec, "ref")), r->user);
    fp_req_audit(r, FP_AUDIT_RECALL, digest, json_deep_copy(rec));
    fp_respond_json_status(r, 201, rec);
}

static void unrecall(fp_req *r, const char *digest)
{
    if (!fp_req_digest_ok(r, digest)) return;
    json_t *all;
    fp_error err;
    if (fp_recalls_list(r->reg->recalls, &all, &err) < 0) {
        fp_respond_internal(r, &err);
        return;
    }
    const char *repo = NULL;
    size_t i;
    json_t *rec;
    json_array_foreach(
        all, i, rec) if (!strcmp(json_string_value(json_object_get(rec, "digest")) ?: "", digest))
        repo = json_string_value(json_object_get(rec, "repo"));
    if (!repo) {
        json_decref(all);
        fp_respond_error(r, 404, "MANIFEST_UNKNOWN", "%s is not recalled", digest);
        return;
    }
    if (strcmp(r->kind, "user") != 0 || !fp_authz_policy_may(r, repo, FP_ACT_DELETE)) {
        fp_respond_error(r, 403, "DENIED", "%s may not un-recall in %s", r->user, repo);
        json_decref(all);
        return;
    }
    json_decref(all);
    json_t *gone = NULL;
    int rc = fp_recalls_remove(r->reg->recalls, digest, &gone, &err);
    if (rc < 0 || refresh(r->reg, &err) < 0) {
        json_decref(gone);
        fp_respond_internal(r, &err);
        return;
    }
    fp_info("event=unrecall digest=%s user=%s", digest, r->user);
    fp_req_audit(r, FP_AUDIT_UNRECALL, digest, gone); /* the recall that ended */
    fp_respond_empty(r, 204, (char *)NULL);
}

static void list(fp_req *r)
{
    json_t *all = fp_recall_set_records(r->reg->recalled);
    json_t *visible = json_array();
    size_t i;
    json_t *rec;
    json_array_foreach(all, i, rec)
    {
        const char *repo = json_string_value(json_object_get(rec, "repo"));
        /* a node applies every recall; a user sees their repositories' */
        if (!strcmp(r->kind, "node") || (repo && fp_authz_policy_may(r, repo, FP_ACT_PULL)))
            json_array_append(visible, rec);
    }
    json_decref(all);
    fp_respond_json(r, json_pack("{s:o}", "recalls", visible));
}

void fp_handle_recalls(fp_req *r)
{
    if (!fp_authz_require_login(r)) return;
    static const char prefix[] = "/api/v1/recalls";
    const char *p = r->path + sizeof prefix - 1;
    if (!*p) {
        if (r->method == M_POST) {
            r->on_body = body_sink;
            r->on_end = recall_end;
            return;
        }
        if (fp_req_read_only(r)) list(r);
        return;
    }
    if (r->method != M_DELETE) {
        fp_respond_error(r, 405, "UNSUPPORTED", "method not allowed");
        return;
    }
    unrecall(r, p + 1);
}
