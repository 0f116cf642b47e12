/*
 * gc.c — TTL garbage collection.
 *
 * 1. Whole tables: a table whose every record has expired (max_expire_at <=
 *    now, which also means it holds no tombstone) is dropped without being
 *    read — but only when no older table overlaps its key range, since its
 *    expired versions may still shadow older versions of the same (key, ts).
 * 2. Rewrites: a table known to hold some expired records (min_expire_hint
 *    <= now) is compacted alone; as the oldest table it loses them outright,
 *    elsewhere they shrink to point tombstones.
 */
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "status.h"

/* Index (newest-first position) of a droppable table, or -1 (version_mu). */
static int find_droppable(region_header *h, int64_t now)
{
    version *v = region_version(h, h->current_version);
    for (int64_t i = (int64_t) v->n_tables - 1; i >= 0; i--) {
        const table_meta *m = &region_table(h, v->tables[i])->meta;
        if (m->max_expire_at > now)
            continue;
        bool shadows = false;
        for (uint32_t j = (uint32_t) i + 1; j < v->n_tables && !shadows; j++)
            shadows = table_ranges_overlap(m, &region_table(h, v->tables[j])->meta);
        if (!shadows)
            return (int) i;
    }
    return -1;
}

static lsm_status drop_expired_tables(lsm_db *db, int64_t now, uint64_t *purged)
{
    region_header *h = db->hdr;
    for (;;) {
        mu_lock(&h->version_mu);
        int i = find_droppable(h, now);
        uint32_t slot = i >= 0 ? region_version(h, h->current_version)->tables[i] : 0;
        uint64_t entries = i >= 0 ? region_table(h, slot)->meta.entry_count : 0;
        mu_unlock(&h->version_mu);
        if (i < 0)
            return LSM_OK;
        lsm_status st = tables_replace(db, &slot, 1, -1);
        if (st != LSM_OK)
            return st;
        *purged += entries;
    }
}

static lsm_status rewrite_tables_with_expired(lsm_db *db, int64_t now, uint64_t *purged)
{
    region_header *h = db->hdr;
    uint32_t n = h->cfg.max_tables;
    uint32_t *todo = malloc(sizeof(uint32_t) * n);
    if (!todo)
        return lsm_fail(LSM_NO_MEMORY, "gc");
    uint32_t n_todo = 0, oldest = UINT32_MAX;
    mu_lock(&h->version_mu);
    version *v = region_version(h, h->current_version);
    for (uint32_t i = 0; i < v->n_tables; i++)
        if (region_table(h, v->tables[i])->min_expire_hint <= now &&
            region_table(h, v->tables[i])->min_expire_hint != INT64_MIN)
            todo[n_todo++] = v->tables[i];
    if (v->n_tables)
        oldest = v->tables[v->n_tables - 1];
    mu_unlock(&h->version_mu);
    lsm_status st = LSM_OK;
    for (uint32_t i = 0; st == LSM_OK && i < n_todo; i++) {
        uint32_t input = todo[i];
        compaction_job job = {.inputs = &input, .n_inputs = 1, .now = now,
                              .bottommost = input == oldest};
        st = compaction_run(db, &job);
        *purged += job.purged;
    }
    free(todo);
    return st;
}

lsm_status lsm_gc(lsm_db *db, uint64_t *purged_out)
{
    if (!db)
        return lsm_fail(LSM_INVALID, "gc: NULL database");
    if (atomic_load(&db->hdr->state) != REGION_READY)
        return lsm_fail(LSM_CLOSED, "engine is not open");
    region_header *h = db->hdr;
    int64_t now = db_now_secs(db);
    uint64_t purged = 0;
    mu_lock(&h->compact_mu);
    lsm_status st = drop_expired_tables(db, now, &purged);
    if (st == LSM_OK)
        st = rewrite_tables_with_expired(db, now, &purged);
    mu_unlock(&h->compact_mu);
    db_delete_obsolete_tables(db);
    atomic_fetch_add(&h->stats.gc_runs, 1);
    atomic_fetch_add(&h->stats.records_purged, purged);
    if (purged_out)
        *purged_out = purged;
    return st;
}
