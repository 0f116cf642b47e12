/*
 * table_cache.c — this process's open SST handles, and block fetching
 * through the shared caches.
 *
 * Handles are indexed by table slot and tagged with the file number, so a
 * recycled slot is noticed and reopened.  When the current version changes,
 * handles of slots that no longer hold their file are closed, so deleted
 * files do not stay open (and keep their disk space) in this process.
 */
#include <stdio.h>

#include "db.h"
#include "status.h"

void sst_file_path(char *buf, size_t len, const char *dir, uint64_t file_no)
{
    snprintf(buf, len, "%s/%016llu.sst", dir, (unsigned long long) file_no);
}

static void close_stale_handles(lsm_db *db)
{
    region_header *h = db->hdr;
    for (uint32_t i = 0; i < h->cfg.max_tables; i++) {
        table_handle *th = &db->handles[i];
        if (!th->table)
            continue;
        table_slot *ts = region_table(h, i);
        bool live = (ts->state == SLOT_LIVE || ts->state == SLOT_OBSOLETE) &&
                    ts->meta.file_no == th->file_no;
        if (!live) {
            sst_table_close(th->table);
            th->table = NULL;
            th->file_no = 0;
        }
    }
}

lsm_status table_open_slot(lsm_db *db, uint32_t slot, sst_table **out)
{
    region_header *h = db->hdr;
    uint64_t file_no = region_table(h, slot)->meta.file_no;
    lsm_status st = LSM_OK;
    mu_lock(&db->local_mu);
    uint64_t gen = atomic_load(&h->version_gen);
    if (gen != db->handles_gen) {
        close_stale_handles(db);
        db->handles_gen = gen;
    }
    table_handle *th = &db->handles[slot];
    if (th->table && th->file_no != file_no) {
        sst_table_close(th->table);
        th->table = NULL;
    }
    if (!th->table) {
        char path[1100];
        sst_file_path(path, sizeof path, db->dir, file_no);
        st = sst_table_open(path, file_no, &th->table);
        th->file_no = st == LSM_OK ? file_no : 0;
    }
    *out = th->table;
    mu_unlock(&db->local_mu);
    return st;
}

void table_handles_close_all(lsm_db *db)
{
    if (!db->handles)
        return;
    for (uint32_t i = 0; i < db->hdr->cfg.max_tables; i++) {
        if (db->handles[i].table)
            sst_table_close(db->handles[i].table);
        db->handles[i].table = NULL;
        db->handles[i].file_no = 0;
    }
}

lsm_status block_fetch(lsm_db *db, sst_table *t, uint64_t file_no, sst_handle h, bool meta,
                       const lsm_read_options *ro, block_buf *scratch, block_ref *out)
{
    block_cache *cache = meta ? db->index_cache : db->data_cache;
    size_t len;
    const uint8_t *hit = block_cache_lookup(cache, file_no, h.offset, &len, &out->pin);
    if (hit) {
        out->data = hit;
        out->len = len;
        out->cache = cache;
        return LSM_OK;
    }
    lsm_status st = sst_read_block(t, h, ro->verify_checksums, scratch);
    if (st != LSM_OK)
        return st;
    out->data = scratch->data;
    out->len = scratch->len;
    out->cache = NULL;
    if (ro->fill_cache) {
        const uint8_t *copy = block_cache_insert(cache, file_no, h.offset, scratch->data,
                                                 scratch->len, &out->pin);
        if (copy) {
            out->data = copy;
            out->cache = cache;
        }
    }
    return LSM_OK;
}

void block_ref_release(block_ref *r)
{
    if (r->cache)
        block_cache_release(r->cache, r->pin);
    r->cache = NULL;
    r->data = NULL;
    r->len = 0;
}
