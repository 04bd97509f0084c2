#include "auth/nodes.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fs.h"

struct fp_nodes {
    sqlite3 *db;
    pthread_mutex_t lock; /* one connection, used by many threads */
};

static const char schema[] =
    "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
    "CREATE TABLE IF NOT EXISTS nodes(id TEXT PRIMARY KEY, role TEXT NOT NULL, "
    "  secret_hash TEXT NOT NULL, created INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS join_tokens(hash TEXT PRIMARY KEY, role TEXT NOT NULL, "
    "  node_id TEXT, expires INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0);";

int fp_nodes_open(fp_nodes **out, const char *data_dir, fp_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/identity.db", data_dir);
    if (fp_mkdir_p(data_dir, 0700, err) < 0) return -1;
    fp_nodes *n = calloc(1, sizeof *n);
    if (!n) return fp_error_set(err, ENOMEM, "nodes");
    pthread_mutex_init(&n->lock, NULL);
    char *msg = NULL;
    if (sqlite3_open_v2(path, &n->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
            SQLITE_OK ||
        sqlite3_busy_timeout(n->db, 10000) != SQLITE_OK ||
        sqlite3_exec(n->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        fp_error_set(err, 0, "open %s: %s", path, msg ? msg : sqlite3_errmsg(n->db));
        sqlite3_free(msg);
        fp_nodes_close(n);
        return -1;
    }
    *out = n;
    return 0;
}

void fp_nodes_close(fp_nodes *n)
{
    if (!n) return;
    sqlite3_close(n->db);
    pthread_mutex_destroy(&n->lock);
    free(n);
}

bool fp_node_id_valid(const char *id)
{
    size_t l = strlen(id);
    if (l == 0 || l > FP_NODE_ID_MAX || id[0] == '-' || id[l - 1] == '-') return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-')) return false;
    return true;
}

bool fp_node_role_valid(const char *role)
{
    return !strcmp(role, "cloud") || !strcmp(role, "fog") || !strcmp(role, "edge");
}

void fp_node_secret_hash(const char *secret, char out[65])
{
    unsigned char md[32];
    unsigned ml = 0;
    EVP_Digest(secret, strlen(secret), md, &ml, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int random_secret(const char *prefix, char out[64])
{
    unsigned char raw[32];
    if (fp_random_bytes(raw, sizeof raw) < 0) return -1;
    cleanup_buf fp_buf b = FP_BUF_INIT;
    fp_buf_puts(&b, prefix);
    fp_b64url_encode(raw, sizeof raw, &b);
    snprintf(out, 64, "%s", b.data);
    OPENSSL_cleanse(raw, sizeof raw);
    return 0;
}

static int exec_stmt(fp_nodes *n, const char *sql, const char *const *text, int ntext,
                     const long long *ints, int nints, fp_error *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(n->db, sql, -1, &st, NULL) != SQLITE_OK)
        return fp_error_set(err, 0, "identity db: %s", sqlite3_errmsg(n->db));
    for (int i = 0; i < ntext; i++)
        sqlite3_bind_text(st, i + 1, text[i], -1, SQLITE_STATIC);
    for (int i = 0; i < nints; i++)
        sqlite3_bind_int64(st, ntext + i + 1, ints[i]);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return fp_error_set(err, rc == SQLITE_FULL ? ENOSPC : EIO, "identity db: %s",
                            sqlite3_errmsg(n->db));
    return sqlite3_changes(n->db);
}

int fp_nodes_token_create(fp_nodes *n, const char *role, const char *id, unsigned ttl_s,
                          char token[64], fp_error *err)
{
    if (!fp_node_role_valid(role) || !strcmp(role, "cloud"))
        return fp_error_set(err, EINVAL, "role must be fog or edge");
    if (id && !fp_node_id_valid(id))
        return fp_error_set(err, EINVAL, "invalid node id '%s' ([a-z0-9-], at most 63)", id);
    if (random_secret("fpj_", token) < 0) return fp_error_set(err, errno, "random");
    char hash[65];
    fp_node_secret_hash(token, hash);
    const char *text[] = {hash, role, id};
    long long ints[] = {(long long)time(NULL) + (ttl_s ? ttl_s : 3600)};
    pthread_mutex_lock(&n->lock);
    int rc = id ? exec_stmt(n,
                            "INSERT INTO join_tokens(hash, role, node_id, expires) "
                            "VALUES (?1, ?2, ?3, ?4)",
                            text, 3, ints, 1, err)
                : exec_stmt(n, "INSERT INTO join_tokens(hash, role, expires) VALUES (?1, ?2, ?3)",
                            text, 2, ints, 1, err);
    pthread_mutex_unlock(&n->lock);
    return rc < 0 ? -1 : 0;
}

int fp_nodes_join(fp_nodes *n, const char *token, const char *id, char role[16], char secret[64],
                  fp_error *err)
{
    if (!fp_node_id_valid(id)) return fp_error_set(err, EINVAL, "invalid node id");
    char hash[65];
    fp_node_secret_hash(token, hash);
    pthread_mutex_lock(&n->lock);
    int result = -1;
    sqlite3_exec(n->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(n->db,
                           "SELECT role, node_id FROM join_tokens WHERE hash = ?1 AND used = 0 "
                           "AND expires >= ?2",
                           -1, &st, NULL) != SQLITE_OK) {
        fp_error_set(err, 0, "identity db: %s", sqlite3_errmsg(n->db));
        goto out;
    }
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (long long)time(NULL));
    if (sqlite3_step(st) != SQLITE_ROW) {
        result = 1;
        goto out;
    }
    snprintf(role, 16, "%s", (const char *)sqlite3_column_text(st, 0));
    const char *fixed = (const char *)sqlite3_column_text(st, 1);
    if (fixed && strcmp(fixed, id) != 0) {
        result = 1;
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(n->db, "SELECT 1 FROM nodes WHERE id = ?1", -1, &st, NULL) !=
        SQLITE_OK) {
        fp_error_set(err, 0, "identity db: %s", sqlite3_errmsg(n->db));
        goto out;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        result = 2; /* a node keeps its id; a revoked one cannot come back under it */
        goto out;
    }
    if (random_secret("fpn_", secret) < 0) {
        fp_error_set(err, errno, "random");
        goto out;
    }
    char shash[65];
    fp_node_secret_hash(secret, shash);
    const char *t1[] = {hash};
    const char *t2[] = {id, role, shash};
    long long now[] = {(long long)time(NULL)};
    if (exec_stmt(n, "UPDATE join_tokens SET used = 1 WHERE hash = ?1", t1, 1, NULL, 0, err) < 0 ||
        exec_stmt(n, "INSERT INTO nodes(id, role, secret_hash, created) VALUES (?1, ?2, ?3, ?4)",
                  t2, 3, now, 1, err) < 0)
        goto out;
    result = 0;
out:
    sqlite3_finalize(st);
    sqlite3_exec(n->db, result == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&n->lock);
    return result;
}

bool fp_nodes_token_usable(fp_nodes *n, const char *token, const char *id)
{
    char hash[65];
    fp_node_secret_hash(token, hash);
    bool usable = false;
    pthread_mutex_lock(&n->lock);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(n->db,
                           "SELECT node_id FROM join_tokens WHERE hash = ?1 AND used = 0 AND "
                           "expires >= ?2",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (long long)time(NULL));
        if (sqlite3_step(st) == SQLITE_ROW) {
            const char *fixed = (const char *)sqlite3_column_text(st, 0);
            usable = !fixed || !strcmp(fixed, id);
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&n->lock);
    return usable;
}

int fp_nodes_verify(fp_nodes *n, const char *id, const char *secret, char role[16])
{
    char want[65];
    fp_node_secret_hash(secret, want);
    int ok = 0;
    pthread_mutex_lock(&n->lock);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(n->db,
                           "SELECT secret_hash, role FROM nodes WHERE id = ?1 AND revoked = 0", -1,
                           &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            const char *have = (const char *)sqlite3_column_text(st, 0);
            ok = have && strlen(have) == 64 && CRYPTO_memcmp(have, want, 64) == 0;
            if (ok) snprintf(role, 16, "%s", (const char *)sqlite3_column_text(st, 1));
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&n->lock);
    return ok;
}

bool fp_nodes_revoked(fp_nodes *n, const char *id)
{
    bool revoked = false;
    pthread_mutex_lock(&n->lock);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(n->db, "SELECT revoked FROM nodes WHERE id = ?1", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) revoked = sqlite3_column_int(st, 0) != 0;
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&n->lock);
    return revoked;
}

bool fp_nodes_known(fp_nodes *n, const char *id)
{
    bool known = false;
    pthread_mutex_lock(&n->lock);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(n->db, "SELECT 1 FROM nodes WHERE id = ?1", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        known = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&n->lock);
    return known;
}

int fp_nodes_revoke(fp_nodes *n, const char *id, fp_error *err)
{
    const char *t[] = {id};
    pthread_mutex_lock(&n->lock);
    int rc = exec_stmt(n, "UPDATE nodes SET revoked = 1 WHERE id = ?1", t, 1, NULL, 0, err);
    pthread_mutex_unlock(&n->lock);
    return rc < 0 ? -1 : rc == 0 ? 1 : 0;
}

int fp_nodes_list(fp_nodes *n, fp_node_cb cb, void *ctx, fp_error *err)
{
    pthread_mutex_lock(&n->lock);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(n->db, "SELECT id, role, created, revoked FROM nodes ORDER BY id", -1,
                           &st, NULL) != SQLITE_OK) {
        pthread_mutex_unlock(&n->lock);
        return fp_error_set(err, 0, "identity db: %s", sqlite3_errmsg(n->db));
    }
    while (sqlite3_step(st) == SQLITE_ROW)
        if (cb(ctx, (const char *)sqlite3_column_text(st, 0),
               (const char *)sqlite3_column_text(st, 1), (time_t)sqlite3_column_int64(st, 2),
               sqlite3_column_int(st, 3) != 0))
            break;
    sqlite3_finalize(st);
    pthread_mutex_unlock(&n->lock);
    return 0;
}

json_t *fp_nodes_export(fp_nodes *n, fp_error *err)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&n->lock);
    sqlite3_stmt *st;
    if (!arr || sqlite3_prepare_v2(n->db, "SELECT id, role, secret_hash, revoked FROM nodes", -1,
                                   &st, NULL) != SQLITE_OK) {
        pthread_mutex_unlock(&n->lock);
        json_decref(arr);
        fp_error_set(err, 0, "identity db: %s", sqlite3_errmsg(n->db));
        return NULL;
    }
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:s, s:b}", "id", (const char *)sqlite3_column_text(st, 0),
                           "role", (const char *)sqlite3_column_text(st, 1), "secret_sha256",
                           (const char *)sqlite3_column_text(st, 2), "revoked",
                           sqlite3_column_int(st, 3) != 0));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&n->lock);
    return arr;
}
