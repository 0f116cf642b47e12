/*
 * table_cache.c — this process's open SST handles, and block fetching
 * through the shared caches.
 *
 * Handles are indexed by table slot and tagged with the file number, so a
 * recycled slot is noticed and reopened.  When the current version changes,
 * handles of slots that no longer hold their file are closed, so deleted
 * files do not stay open (and keep their disk space) in this process.
 * A handle is only closed when no version lists its slot, so no reader of
 * this process can be using it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "status.h"

void sst_file_path(char *buf, size_t len, const char *dir, uint64_t file_no)
{
    snprintf(buf, len, "%s/%016llu.sst", dir, (unsigned long long) file_no);
}

static void handle_close(table_handle *th)
{
    block_ref_release(&th->index_ref);
    block_ref_release(&th->filter_ref);
    fence_index_free(&th->fences);
    if (th->table)
        sst_table_close(th->table);
    memset(th, 0, sizeof *th);
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
        if (!live)
            handle_close(th);
    }
}

/* Opens (or finds) the handle for slot; local_mu held. */
static lsm_status handle_open_locked(lsm_db *db, uint32_t slot, table_handle **out)
{
    region_header *h = db->hdr;
    uint64_t file_no = region_table(h, slot)->meta.file_no;
    uint64_t gen = atomic_load(&h->version_gen);
    if (gen != db->handles_gen) {
        close_stale_handles(db);
        db->handles_gen = gen;
    }
    table_handle *th = &db->handles[slot];
    if (th->table && th->file_no != file_no)
        handle_close(th);
    if (!th->table) {
        char path[1100];
        sst_file_path(path, sizeof path, db->dir, file_no);
        lsm_status st = sst_table_open(path, file_no, &th->table);
        if (st != LSM_OK)
            return st;
        th->file_no = file_no;
    }
    *out = th;
    return LSM_OK;
}

lsm_status table_open_slot(lsm_db *db, uint32_t slot, sst_table **out)
{
    table_handle *th;
    mu_lock(&db->local_mu);
    lsm_status st = handle_open_locked(db, slot, &th);
    *out = st == LSM_OK ? th->table : NULL;
    mu_unlock(&db->local_mu);
    return st;
}

/* Keeps a fetched block for the handle's lifetime: pinned in the cache, or
 * copied out of the scratch buffer into memory of its own. */
static lsm_status keep_block(block_ref *ref, block_buf *scratch)
{
    if (ref->cache || ref->own)
        return LSM_OK;
    ref->own = malloc(ref->len ? ref->len : 1);
    if (!ref->own)
        return lsm_fail(LSM_NO_MEMORY, "table metadata of %zu bytes", ref->len);
    memcpy(ref->own, scratch->data, ref->len);
    ref->data = ref->own;
    return LSM_OK;
}

static lsm_status load_meta(lsm_db *db, table_handle *th, const lsm_read_options *ro)
{
    block_buf scratch = {0};
    /* Metadata is kept for the handle's lifetime and trusted by every later
     * read, so it is always verified, whatever this read asked for. */
    lsm_read_options meta_ro = *ro;
    meta_ro.fill_cache = true;
    meta_ro.verify_checksums = true;
    lsm_status st = block_fetch(db, th->table, th->file_no, sst_table_index_handle(th->table),
                                true, &meta_ro, &scratch, &th->index_ref, &th->index);
    if (st == LSM_OK)
        st = keep_block(&th->index_ref, &scratch);
    if (st == LSM_OK)
        sst_block_parse_trusted(th->index_ref.data, th->index_ref.len, &th->index);
    if (st == LSM_OK)
        st = fence_index_build(&th->fences, &th->index);
    if (st == LSM_OK)
        st = block_fetch(db, th->table, th->file_no, sst_table_filter_handle(th->table), true,
                         &meta_ro, &scratch, &th->filter_ref, NULL);
    if (st == LSM_OK)
        st = keep_block(&th->filter_ref, &scratch);
    block_buf_free(&scratch);
    if (st != LSM_OK) {
        block_ref_release(&th->index_ref);
        block_ref_release(&th->filter_ref);
        return st;
    }
    th->meta_loaded = true;
    return LSM_OK;
}

lsm_status table_error(lsm_db *db, uint64_t file_no, lsm_status st)
{
    if (st == LSM_OK || st == LSM_NOT_FOUND || st == LSM_DONE)
        return st;
    char path[1100];
    sst_file_path(path, sizeof path, db->dir, file_no);
    if (strstr(lsm_errmsg(), path))
        return st;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", lsm_errmsg());
    return lsm_fail(st, "%s: %s", path, msg);
}

lsm_status table_handle_get(lsm_db *db, uint32_t slot, const lsm_read_options *ro,
                            table_handle **out)
{
    table_handle *th = &db->handles[slot];
    uint64_t file_no = region_table(db->hdr, slot)->meta.file_no;
    /* Fast path: this process has it open and loaded.  The caller's pinned
     * version keeps the slot from being recycled, and only this process
     * closes its handles (under local_mu, for unlisted slots only). */
    if (th->meta_loaded && th->file_no == file_no) {
        *out = th;
        return LSM_OK;
    }
    mu_lock(&db->local_mu);
    lsm_status st = handle_open_locked(db, slot, &th);
    if (st == LSM_OK && !th->meta_loaded)
        st = load_meta(db, th, ro);
    mu_unlock(&db->local_mu);
    *out = th;
    return st;
}

void table_handles_close_all(lsm_db *db)
{
    if (!db->handles)
        return;
    for (uint32_t i = 0; i < db->hdr->cfg.max_tables; i++)
        if (db->handles[i].table)
            handle_close(&db->handles[i]);
}

lsm_status block_fetch(lsm_db *db, sst_table *t, uint64_t file_no, sst_handle h, bool meta,
                       const lsm_read_options *ro, block_buf *scratch, block_ref *out,
                       sst_block *parsed)
{
    block_cache *cache = meta ? db->index_cache : db->data_cache;
    memset(out, 0, sizeof *out);
    size_t len;
    const uint8_t *hit = block_cache_lookup(cache, file_no, h.offset, &len, &out->pin);
    if (hit) {
        out->data = hit;
        out->len = len;
        out->cache = cache;
        if (parsed)
            sst_block_parse_trusted(hit, len, parsed);
        return LSM_OK;
    }
    lsm_status st = sst_read_block(t, h, ro->verify_checksums, scratch);
    if (st == LSM_OK && parsed)
        st = sst_block_parse(scratch->data, scratch->len, parsed);
    if (st != LSM_OK)
        return st;
    out->data = scratch->data;
    out->len = scratch->len;
    /* Only checksum-verified bytes may enter the shared cache. */
    if (ro->fill_cache && ro->verify_checksums) {
        const uint8_t *copy = block_cache_insert(cache, file_no, h.offset, scratch->data,
                                                 scratch->len, &out->pin);
        if (copy) {
            out->data = copy;
            out->cache = cache;
            if (parsed)
                sst_block_parse_trusted(copy, scratch->len, parsed);
        }
    }
    return LSM_OK;
}

void block_ref_release(block_ref *r)
{
    if (r->cache)
        block_cache_release(r->cache, r->pin);
    free(r->own);
    memset(r, 0, sizeof *r);
}
