/*
 * version.c — immutable source sets and the reference counts that keep
 * memtables and tables alive while any reader may still use them.
 *
 * A version lists memtable slots (active first, then frozen, newest first)
 * and table slots (newest first).  The current version holds one reference
 * on itself; each reader pin holds one more.  Every version holds one
 * reference on each slot it lists.  A slot leaves service (memtable: flushed;
 * table: compacted or GC'd) by becoming OBSOLETE, and is recycled only when
 * its last referencing version is freed.  All of this runs under version_mu.
 */
#include "db.h"

#include <string.h>
#include <unistd.h>

#include "status.h"

uint32_t version_pin_current(lsm_db *db, uint64_t *visible_seq)
{
    region_header *h = db->hdr;
    mu_lock(&h->version_mu);
    uint32_t v = h->current_version;
    atomic_fetch_add(&region_version(h, v)->refs, 1);
    /* Read under version_mu: every table in v holds only seqs <= this. */
    if (visible_seq)
        *visible_seq = atomic_load(&h->visible_seq);
    mu_unlock(&h->version_mu);
    return v;
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

/* Drops one reference; frees the version when it was the last (version_mu). */
static void version_deref_locked(region_header *h, uint32_t vi)
{
    version *v = region_version(h, vi);
    if (atomic_fetch_sub(&v->refs, 1) != 1)
        return;
    for (uint32_t i = 0; i < v->n_mem; i++)
        release_mem_slot(h, v->mem[i]);
    for (uint32_t i = 0; i < v->n_tables; i++)
        region_table(h, v->tables[i])->refs--;
    v->in_use = 0;
}

void version_unpin(lsm_db *db, uint32_t v)
{
    region_header *h = db->hdr;
    bool maybe_obsolete;
    mu_lock(&h->version_mu);
    version_deref_locked(h, v);
    maybe_obsolete = region_version(h, v)->in_use == 0;
    mu_unlock(&h->version_mu);
    if (maybe_obsolete)
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
    atomic_store(&nv->refs, 1);
    for (uint32_t i = 0; i < nv->n_mem; i++)
        region_mem_slot(h, nv->mem[i])->refs++;
    for (uint32_t i = 0; i < nv->n_tables; i++)
        region_table(h, nv->tables[i])->refs++;
    update_slot_states(h, cur, c);
    uint32_t old = h->current_version;
    h->current_version = (uint32_t) slot;
    atomic_fetch_add(&h->version_gen, 1);
    version_deref_locked(h, old);
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
