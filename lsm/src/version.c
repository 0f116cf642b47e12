/*
 * version.c — immutable source sets and the reference counts that keep
 * memtables and tables alive while any reader may still use them.
 *
 * A version lists memtable slots (active first, then frozen, newest first)
 * and table slots (newest first).  The current version holds one pin on
 * itself; each reader holds one more, taken without a lock (region.h).  Every version holds one
 * reference on each slot it lists.  A slot leaves service (memtable: flushed;
 * table: compacted or GC'd) by becoming OBSOLETE, and is recycled only when
 * its last referencing version is freed.  Slot states and reference counts
 * change under version_mu.
 */
#include "db.h"

#include <string.h>
#include <unistd.h>

#include "status.h"

#define PIN_COUNT(w) ((uint32_t) (w))
#define PIN_GEN(w) ((uint32_t) ((w) >> 32))

/* Lock-free: read visible_seq, then pin the version current after it, so
 * the version holds every entry the snapshot may see (a memtable switch is
 * installed before any write lands in the new memtable). */
uint32_t version_pin_current(lsm_db *db, uint64_t *visible_seq)
{
    region_header *h = db->hdr;
    for (;;) {
        uint64_t snap = atomic_load(&h->visible_seq);
        uint64_t tag = atomic_load(&h->current_tag);
        uint32_t vi = (uint32_t) tag;
        version *v = region_version(h, vi);
        uint64_t w = atomic_load(&v->pins);
        while (PIN_GEN(w) == PIN_GEN(tag) && PIN_COUNT(w) != 0) {
            if (atomic_compare_exchange_weak(&v->pins, &w, w + 1)) {
                if (visible_seq)
                    *visible_seq = snap;
                return vi;
            }
        }
    }
}

static void release_mem_slot(region_header *h, uint32_t i)
{
    mem_slot *s = region_mem_slot(h, i);
    if (--s->refs == 0 && s->state == SLOT_OBSOLETE) {
        memtable_init(region_memtable(h, i), h->cfg.memtable_size);
        s->state = SLOT_FREE;
        pthread_cond_broadcast(&h->stall_cv);
    }
}

/* Frees a version whose pin count reached 0 (version_mu held). */
static void version_free_locked(region_header *h, uint32_t vi)
{
    version *v = region_version(h, vi);
    for (uint32_t i = 0; i < v->n_mem; i++)
        release_mem_slot(h, v->mem[i]);
    for (uint32_t i = 0; i < v->n_tables; i++)
        region_table(h, v->tables[i])->refs--;
    v->in_use = 0;
    uint64_t w = atomic_load(&v->pins);
    atomic_store(&v->pins, (uint64_t) (PIN_GEN(w) + 1) << 32);
}

/* Drops one pin; true when it was the last (the caller frees). */
static bool version_drop_pin(region_header *h, uint32_t vi)
{
    return PIN_COUNT(atomic_fetch_sub(&region_version(h, vi)->pins, 1)) == 1;
}

void version_unpin(lsm_db *db, uint32_t vi)
{
    region_header *h = db->hdr;
    if (!version_drop_pin(h, vi))
        return;
    mu_lock(&h->version_mu);
    version_free_locked(h, vi);
    mu_unlock(&h->version_mu);
    db_delete_obsolete_tables(db);
}

void version_change_init(version_change *c)
{
    memset(c, 0, sizeof *c);
    c->new_active = -1;
    c->drop_mem = -1;
    c->add_table_front = -1;
    c->replacement = -1;
}

static int free_version_slot(region_header *h)
{
    for (uint32_t i = 0; i < h->n_versions; i++)
        if (!region_version(h, i)->in_use)
            return (int) i;
    return -1;
}

static void build_mem_list(const version *cur, const version_change *c, version *nv)
{
    nv->n_mem = 0;
    if (c->new_active >= 0)
        nv->mem[nv->n_mem++] = (uint32_t) c->new_active;
    for (uint32_t i = 0; i < cur->n_mem; i++)
        if ((int) cur->mem[i] != c->drop_mem)
            nv->mem[nv->n_mem++] = cur->mem[i];
}

static lsm_status build_table_list(const version *cur, const version_change *c, version *nv)
{
    nv->n_tables = 0;
    if (c->add_table_front >= 0)
        nv->tables[nv->n_tables++] = (uint32_t) c->add_table_front;
    uint32_t i = 0;
    while (i < cur->n_tables) {
        if (c->n_replace > 0 && cur->tables[i] == c->replace[0]) {
            for (uint32_t k = 0; k < c->n_replace; k++)
                if (i + k >= cur->n_tables || cur->tables[i + k] != c->replace[k])
                    return lsm_fail(LSM_INVALID, "compaction inputs are no longer contiguous");
            if (c->replacement >= 0)
                nv->tables[nv->n_tables++] = (uint32_t) c->replacement;
            i += c->n_replace;
            continue;
        }
        nv->tables[nv->n_tables++] = cur->tables[i++];
    }
    return LSM_OK;
}

static void update_slot_states(region_header *h, const version *cur, const version_change *c)
{
    if (c->new_active >= 0) {
        if (cur->n_mem > 0)
            region_mem_slot(h, cur->mem[0])->state = SLOT_FROZEN;
        region_mem_slot(h, (uint32_t) c->new_active)->state = SLOT_ACTIVE;
    }
    if (c->drop_mem >= 0)
        region_mem_slot(h, (uint32_t) c->drop_mem)->state = SLOT_OBSOLETE;
    if (c->add_table_front >= 0)
        region_table(h, (uint32_t) c->add_table_front)->state = SLOT_LIVE;
    for (uint32_t k = 0; k < c->n_replace; k++)
        region_table(h, c->replace[k])->state = SLOT_OBSOLETE;
    if (c->replacement >= 0)
        region_table(h, (uint32_t) c->replacement)->state = SLOT_LIVE;
}

lsm_status version_apply(lsm_db *db, const version_change *c)
{
    region_header *h = db->hdr;
    int slot = free_version_slot(h);
    if (slot < 0)
        return lsm_fail(LSM_BUSY, "no free version slot: %u snapshots or iterators are pinned",
                        h->n_versions);
    version *cur = region_version(h, h->current_version);
    version *nv = region_version(h, (uint32_t) slot);
    build_mem_list(cur, c, nv);
    lsm_status st = build_table_list(cur, c, nv);
    if (st != LSM_OK)
        return st;
    nv->in_use = 1;
    /* count 0 -> 1: no reader can pin a count-0 slot, so a store is safe */
    uint64_t gen = PIN_GEN(atomic_load(&nv->pins));
    atomic_store(&nv->pins, (gen << 32) | 1);
    for (uint32_t i = 0; i < nv->n_mem; i++)
        region_mem_slot(h, nv->mem[i])->refs++;
    for (uint32_t i = 0; i < nv->n_tables; i++)
        region_table(h, nv->tables[i])->refs++;
    update_slot_states(h, cur, c);
    uint32_t old = h->current_version;
    h->current_version = (uint32_t) slot;
    atomic_store(&h->current_tag, (gen << 32) | (uint32_t) slot);
    atomic_fetch_add(&h->version_gen, 1);
    if (version_drop_pin(h, old))
        version_free_locked(h, old);
    return LSM_OK;
}

void version_apply_waiting(lsm_db *db, const version_change *c)
{
    region_header *h = db->hdr;
    for (;;) {
        mu_lock(&h->version_mu);
        lsm_status st = version_apply(db, c);
        mu_unlock(&h->version_mu);
        if (st != LSM_BUSY)
            return;
        usleep(1000);
    }
}

int table_slot_alloc(lsm_db *db)
{
    region_header *h = db->hdr;
    for (uint32_t i = 0; i < h->cfg.max_tables; i++) {
        table_slot *t = region_table(h, i);
        if (t->state == SLOT_FREE) {
            memset(t, 0, sizeof *t);
            t->state = SLOT_RESERVED;
            t->min_expire_hint = INT64_MIN;
            return (int) i;
        }
    }
    return -1;
}

/* Deletes the files of OBSOLETE tables no version references any more.
 * A slot is claimed (DELETING) under version_mu so one process deletes it. */
void db_delete_obsolete_tables(lsm_db *db)
{
    region_header *h = db->hdr;
    for (uint32_t i = 0; i < h->cfg.max_tables; i++) {
        table_slot *t = region_table(h, i);
        if (t->state != SLOT_OBSOLETE || t->refs != 0)
            continue;
        mu_lock(&h->version_mu);
        bool claimed = t->state == SLOT_OBSOLETE && t->refs == 0;
        if (claimed)
            t->state = SLOT_DELETING;
        uint64_t file_no = t->meta.file_no;
        mu_unlock(&h->version_mu);
        if (!claimed)
            continue;
        char path[1100];
        sst_file_path(path, sizeof path, db->dir, file_no);
        unlink(path);
        block_cache_erase_file(db->data_cache, file_no);
        block_cache_erase_file(db->index_cache, file_no);
        mu_lock(&h->version_mu);
        t->state = SLOT_FREE;
        mu_unlock(&h->version_mu);
    }
}
