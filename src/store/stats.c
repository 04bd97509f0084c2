#include "store/store_internal.h"

#include <string.h>

static const char stats_sql[] =
    "SELECT (SELECT COUNT(*) FROM blobs), (SELECT COALESCE(SUM(size), 0) FROM blobs), "
    "(SELECT COUNT(*) FROM manifests), (SELECT COALESCE(SUM(size), 0) FROM manifests), "
    "(SELECT COUNT(*) FROM repos)";

int fp_store_stats(fp_store *s, struct fp_store_stats *st, fp_error *err)
{
    memset(st, 0, sizeof *st);
    fp_db *db = fp_db_get(s, err);
    if (!db) return -1;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db->db, stats_sql, -1, &q, NULL) != SQLITE_OK)
        return fp_db_fail(db, err, "store stats");
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        st->blobs = (uint64_t)sqlite3_column_int64(q, 0);
        st->blob_bytes = (uint64_t)sqlite3_column_int64(q, 1);
        st->manifests = (uint64_t)sqlite3_column_int64(q, 2);
        st->manifest_bytes = (uint64_t)sqlite3_column_int64(q, 3);
        st->repositories = (uint64_t)sqlite3_column_int64(q, 4);
    }
    sqlite3_finalize(q);
    return rc == SQLITE_ROW ? 0 : fp_db_fail(db, err, "store stats");
}
