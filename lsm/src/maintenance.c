/*
 * maintenance.c — what the host runs in the background: flush of frozen
 * memtables, interval WAL sync, compaction and TTL GC; the standalone
 * background thread; and statistics.
 *
 * lsm_maintenance_run does whatever is due, one bounded step of each kind,
 * so a host loop stays responsive to its own signals between calls.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "metrics.h"
#include "status.h"

lsm_status lsm_wal_sync(lsm_db *db)
{
    if (!db)
        return lsm_fail(LSM_INVALID, "wal_sync: NULL database");
    if (atomic_load(&db->hdr->state) != REGION_READY)
        return lsm_fail(LSM_CLOSED, "engine is not open");
    lsm_status st = wal_group_sync(db, atomic_load(&db->hdr->wal_written));
    atomic_store(&db->hdr->last_sync_ms, mono_ms());
    return st;
}

static bool due(_Atomic int64_t *last, int64_t interval_ms, int64_t now)
{
    int64_t prev = atomic_load(last);
    return now - prev >= interval_ms && atomic_compare_exchange_strong(last, &prev, now);
}

static bool has_frozen(region_header *h)
{
    mu_lock(&h->version_mu);
    bool any = region_version(h, h->current_version)->n_mem > 1;
    mu_unlock(&h->version_mu);
    return any;
}

lsm_status lsm_maintenance_run(lsm_db *db)
{
    if (!db)
        return lsm_fail(LSM_INVALID, "maintenance: NULL database");
    region_header *h = db->hdr;
    if (atomic_load(&h->state) != REGION_READY)
        return lsm_fail(LSM_CLOSED, "engine is not open");
    mu_lock(&h->maint_mu);
    h->maint_pending = 0;
    mu_unlock(&h->maint_mu);
    lsm_status st = LSM_OK;
    int64_t now = mono_ms();
    if (has_frozen(h))
        st = flush_frozen(db);
    if (st == LSM_OK && h->cfg.sync_mode == LSM_SYNC_INTERVAL &&
        atomic_load(&h->wal_synced) < atomic_load(&h->wal_written) &&
        now - atomic_load(&h->last_sync_ms) >= h->cfg.sync_interval_ms)
        st = lsm_wal_sync(db);
    if (st == LSM_OK && due(&h->last_compact_ms, h->cfg.compaction_interval_ms, now)) {
        bool did;
        st = lsm_compact_step(db, &did);
        if (st == LSM_OK && did)
            atomic_store(&h->last_compact_ms, 0); /* more may be due: look again soon */
    }
    if (st == LSM_OK && due(&h->last_gc_ms, (int64_t) h->cfg.gc_interval_secs * 1000, now))
        st = lsm_gc(db, NULL);
    return st;
}

void lsm_maintenance_wait(lsm_db *db, uint32_t timeout_ms)
{
    region_header *h = db->hdr;
    uint32_t wait = timeout_ms;
    if (h->cfg.sync_mode == LSM_SYNC_INTERVAL && h->cfg.sync_interval_ms < wait)
        wait = h->cfg.sync_interval_ms;
    if (h->cfg.compaction_interval_ms < wait)
        wait = h->cfg.compaction_interval_ms;
    mu_lock(&h->maint_mu);
    if (!h->maint_pending && wait > 0)
        cv_wait_ms(&h->maint_cv, &h->maint_mu, wait);
    mu_unlock(&h->maint_mu);
}

/* Standalone background work runs on two threads, so a long compaction
 * never delays the flush that stalled writers are waiting for:
 *   flusher    frozen memtables and interval WAL sync (woken by writers);
 *   compactor  compaction steps and TTL GC when due. */
static void *flusher_thread(void *arg)
{
    lsm_db *db = arg;
    region_header *h = db->hdr;
    while (!atomic_load(&db->bg_stop)) {
        lsm_maintenance_wait(db, 100);
        if (atomic_load(&db->bg_stop))
            break;
        mu_lock(&h->maint_mu);
        h->maint_pending = 0;
        mu_unlock(&h->maint_mu);
        if (has_frozen(h))
            flush_frozen(db); /* errors surface again on the next foreground call */
        if (h->cfg.sync_mode == LSM_SYNC_INTERVAL &&
            atomic_load(&h->wal_synced) < atomic_load(&h->wal_written) &&
            mono_ms() - atomic_load(&h->last_sync_ms) >= h->cfg.sync_interval_ms)
            lsm_wal_sync(db);
    }
    return NULL;
}

static void sleep_ms(uint32_t ms)
{
    struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *compactor_thread(void *arg)
{
    lsm_db *db = arg;
    region_header *h = db->hdr;
    while (!atomic_load(&db->bg_stop)) {
        bool did = false;
        int64_t now = mono_ms();
        if (due(&h->last_compact_ms, h->cfg.compaction_interval_ms, now) &&
            lsm_compact_step(db, &did) == LSM_OK && did)
            atomic_store(&h->last_compact_ms, 0);
        if (due(&h->last_gc_ms, (int64_t) h->cfg.gc_interval_secs * 1000, now))
            lsm_gc(db, NULL);
        if (!did)
            sleep_ms(h->cfg.compaction_interval_ms < 100 ? h->cfg.compaction_interval_ms : 100);
    }
    return NULL;
}

void maintenance_start_thread(lsm_db *db);
void maintenance_start_thread(lsm_db *db)
{
    atomic_store(&db->bg_stop, false);
    db->bg_running = pthread_create(&db->bg_thread, NULL, flusher_thread, db) == 0;
    db->bg2_running = db->bg_running &&
                      pthread_create(&db->bg_thread2, NULL, compactor_thread, db) == 0;
}

void maintenance_stop_thread(lsm_db *db);
void maintenance_stop_thread(lsm_db *db)
{
    if (!db->bg_running)
        return;
    atomic_store(&db->bg_stop, true);
    db_wake_maintenance(db);
    pthread_join(db->bg_thread, NULL);
    if (db->bg2_running)
        pthread_join(db->bg_thread2, NULL);
    db->bg_running = db->bg2_running = false;
}

/* ---------------------------------------------------------------- stats */

static void version_totals(region_header *h, lsm_stats *out)
{
    mu_lock(&h->version_mu);
    version *v = region_version(h, h->current_version);
    out->frozen_memtables = v->n_mem ? v->n_mem - 1 : 0;
    for (uint32_t i = 0; i < v->n_mem; i++) {
        memtable *m = region_memtable(h, v->mem[i]);
        out->memtable_records += atomic_load(&m->entries);
        out->memtable_bytes += atomic_load(&m->data_bytes);
    }
    out->table_count = v->n_tables;
    for (uint32_t i = 0; i < v->n_tables; i++)
        out->table_bytes += region_table(h, v->tables[i])->meta.file_size;
    mu_unlock(&h->version_mu);
}

lsm_status lsm_get_stats(lsm_db *db, lsm_stats *out)
{
    if (!db || !out)
        return lsm_fail(LSM_INVALID, "stats: NULL argument");
    region_header *h = db->hdr;
    region_stats *s = &h->stats;
    memset(out, 0, sizeof *out);
    out->records_written = atomic_load(&s->records_written);
    out->bytes_written = atomic_load(&s->bytes_written);
    for (int i = 0; i < READ_STRIPES; i++) {
        out->records_read += atomic_load(&s->reads[i].records);
        out->bytes_read += atomic_load(&s->reads[i].bytes);
    }
    out->flushes = atomic_load(&s->flushes);
    out->compactions = atomic_load(&s->compactions);
    out->gc_runs = atomic_load(&s->gc_runs);
    out->records_purged = atomic_load(&s->records_purged);
    out->wal_bytes = atomic_load(&s->wal_bytes);
    out->wal_records_dropped = atomic_load(&s->wal_records_dropped);
    out->write_stalls = atomic_load(&s->write_stalls);
    out->ingests = atomic_load(&s->ingests);
    out->ingests_streamed = atomic_load(&s->ingests_streamed);
    out->raw_bytes_flushed = atomic_load(&s->raw_bytes_flushed);
    out->sst_bytes_flushed = atomic_load(&s->sst_bytes_flushed);
    out->compression_ratio = out->sst_bytes_flushed
                                 ? (double) out->raw_bytes_flushed / (double) out->sst_bytes_flushed
                                 : 0;
    out->last_seq = atomic_load(&h->last_seq);
    version_totals(h, out);
    block_cache_stats d, x;
    block_cache_get_stats(db->data_cache, &d);
    block_cache_get_stats(db->index_cache, &x);
    out->cache_hits = d.hits + x.hits;
    out->cache_misses = d.misses + x.misses;
    uint64_t total = out->cache_hits + out->cache_misses;
    out->cache_hit_rate = total ? (double) out->cache_hits / (double) total : 0;
    histogram_to_latency(&s->write_latency, &out->write_latency);
    histogram_to_latency(&s->read_latency, &out->read_latency);
    histogram_to_latency(&s->flush_latency, &out->flush_latency);
    return LSM_OK;
}

lsm_status lsm_metrics_text(lsm_db *db, char **out)
{
    lsm_stats st;
    lsm_status rc = lsm_get_stats(db, &st);
    if (rc != LSM_OK)
        return rc;
    return metrics_format(&st, out);
}
