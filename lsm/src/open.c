/*
 * open.c — opening (with recovery), attaching, closing, and snapshots.
 *
 * Recovery, run by the host before the region is marked ready:
 *   1. load the manifest: the live tables (ordered newest first by max_seq)
 *      and the counters; delete SST files it does not list (orphans of a
 *      flush or compaction that crashed before its manifest edit);
 *   2. replay the WAL from log_number in two passes: first collect ABORT
 *      records (and the tables INGEST records name, which step 1 spares),
 *      then apply every BATCH that was not aborted and that the tag filter
 *      keeps, with its original seqs; an INGEST the same way adds its table
 *      (unless the manifest lists it already) or deletes its file.  Replay stops at the first
 *      torn or corrupt record (point in time); what follows is counted as
 *      dropped;
 *   3. flush what was replayed, start a fresh WAL segment, record the new
 *      log_number, and delete the replayed segments — so old damage can
 *      never hide records written after this recovery.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "coding.h"
#include "db.h"
#include "ingest.h"
#include "status.h"
#include "wal.h"

void maintenance_start_thread(lsm_db *db);
void maintenance_stop_thread(lsm_db *db);

size_t lsm_region_size(const lsm_config *cfg)
{
    if (!cfg || lsm_config_validate(cfg) != LSM_OK)
        return 0;
    return region_size_for(cfg);
}

bool lsm_region_ready(const void *region)
{
    const region_header *h = region;
    return h && h->magic == REGION_MAGIC &&
           atomic_load(&((region_header *) h)->state) == REGION_READY;
}

/* ------------------------------------------------------ process handle */

static lsm_status db_new(region_header *h, const lsm_open_options *opts, lsm_db **out)
{
    lsm_db *db = calloc(1, sizeof *db);
    if (!db)
        return lsm_fail(LSM_NO_MEMORY, "engine handle");
    db->handles = calloc(h->cfg.max_tables, sizeof *db->handles);
    if (!db->handles) {
        free(db);
        return lsm_fail(LSM_NO_MEMORY, "engine handle");
    }
    db->hdr = h;
    if (opts)
        db->opts = *opts;
    db->dir = h->cfg.dir;
    db->data_cache = region_at(h, h->off_data_cache);
    db->index_cache = region_at(h, h->off_index_cache);
    db->wal_fd = db->sync_fd = db->lock_fd = -1;
    pthread_mutex_init(&db->local_mu, NULL);
    *out = db;
    return LSM_OK;
}

static void db_free(lsm_db *db)
{
    table_handles_close_all(db);
    free(db->handles);
    if (db->wal_fd >= 0)
        close(db->wal_fd);
    if (db->sync_fd >= 0)
        close(db->sync_fd);
    if (db->man)
        manifest_close(db->man);
    if (db->lock_fd >= 0)
        close(db->lock_fd);
    pthread_mutex_destroy(&db->local_mu);
    if (db->owned_region)
        munmap(db->owned_region, db->owned_size);
    free(db);
}

/* ------------------------------------------------------------ directory */

static void prefault_region(void *p, size_t len)
{
#ifdef MADV_POPULATE_WRITE
    if (madvise(p, len, MADV_POPULATE_WRITE) == 0)
        return;
#endif
    /* Adding 0 atomically faults a page in for writing without changing
     * a byte that another process may be writing at the same moment. */
    for (size_t off = 0; off < len; off += 4096)
        __atomic_fetch_add((char *) p + off, 0, __ATOMIC_RELAXED);
}

void lsm_prefault(lsm_db *db)
{
    if (db && db->hdr)
        prefault_region(db->hdr, db->hdr->total_size);
}

static lsm_status open_directory(const lsm_config *cfg, int *lock_fd)
{
    if (mkdir(cfg->dir, 0700) != 0 && errno != EEXIST)
        return lsm_fail(LSM_IO, "cannot create engine directory %s: %s", cfg->dir,
                        strerror(errno));
    char path[1100];
    snprintf(path, sizeof path, "%s/LOCK", cfg->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return lsm_fail(LSM_IO, "cannot open %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return lsm_fail(LSM_BUSY, "engine directory %s is already open in another process",
                        cfg->dir);
    }
    *lock_fd = fd;
    return LSM_OK;
}

static bool listed(const manifest_state *ms, uint64_t file_no)
{
    for (uint32_t i = 0; i < ms->n_tables; i++)
        if (ms->tables[i].file_no == file_no)
            return true;
    return false;
}

/* Deletes SST files the manifest does not list (a flush or compaction that
 * crashed before its edit).  Without any MANIFEST there can be no such
 * orphan — a fresh directory has no tables — so tables there mean the
 * MANIFEST was lost: refuse to open rather than delete the data. */
typedef struct replay_ctx replay_ctx;
static bool ingest_named(const replay_ctx *c, uint64_t file_no);

static lsm_status remove_orphans(lsm_db *db, const manifest_state *ms, const replay_ctx *c)
{
    DIR *d = opendir(db->dir);
    if (!d)
        return lsm_fail(LSM_IO, "cannot list %s: %s", db->dir, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        unsigned long long no;
        char tail[8];
        if (sscanf(de->d_name, "%llu.%7s", &no, tail) != 2 || strcmp(tail, "sst") != 0)
            continue;
        if (!ms->found) {
            /* format before closedir: de points into the DIR's buffer */
            lsm_status st = lsm_fail(LSM_CORRUPT,
                                     "%s/MANIFEST is missing but table %s exists; refusing to "
                                     "open (restore the MANIFEST, or move the tables away to "
                                     "start empty)",
                                     db->dir, de->d_name);
            closedir(d);
            return st;
        }
        if (!listed(ms, no) && !ingest_named(c, no)) {
            char path[1100];
            sst_file_path(path, sizeof path, db->dir, no);
            unlink(path);
        }
    }
    closedir(d);
    return LSM_OK;
}

/* ------------------------------------------------------------- manifest */

static int by_max_seq_desc(const void *a, const void *b)
{
    const table_meta *x = a, *y = b;
    return (x->max_seq < y->max_seq) - (x->max_seq > y->max_seq);
}

static lsm_status install_tables(lsm_db *db, manifest_state *ms)
{
    region_header *h = db->hdr;
    if (ms->n_tables > h->cfg.max_tables)
        return lsm_fail(LSM_INVALID, "manifest lists %u tables; max_tables is %u", ms->n_tables,
                        h->cfg.max_tables);
    if (ms->n_tables > 1)
        qsort(ms->tables, ms->n_tables, sizeof *ms->tables, by_max_seq_desc);
    version *v = region_version(h, 0);
    for (uint32_t i = 0; i < ms->n_tables; i++) {
        char path[1100];
        struct stat sb;
        sst_file_path(path, sizeof path, db->dir, ms->tables[i].file_no);
        if (stat(path, &sb) != 0)
            return lsm_fail(LSM_CORRUPT, "%s/MANIFEST lists table %s, which is missing", db->dir,
                            path);
        table_slot *t = region_table(h, i);
        t->state = SLOT_LIVE;
        t->refs = 1;
        t->min_expire_hint = INT64_MIN;
        t->meta = ms->tables[i];
        v->tables[i] = i;
    }
    v->n_tables = ms->n_tables;
    v->n_mem = 1;
    v->mem[0] = 0;
    v->in_use = 1;
    atomic_store(&v->pins, 1);          /* generation 0, the current pin */
    atomic_store(&h->current_tag, 0);   /* generation 0, slot 0 */
    mem_slot *ms0 = region_mem_slot(h, 0);
    ms0->state = SLOT_ACTIVE;
    ms0->refs = 1;
    h->current_version = 0;
    h->active_mem = 0;
    h->next_file_no = ms->next_file_no ? ms->next_file_no : 1;
    h->log_number = ms->log_number;
    uint64_t last = ms->last_seq;
    for (uint32_t i = 0; i < ms->n_tables; i++)
        if (ms->tables[i].max_seq > last)
            last = ms->tables[i].max_seq;
    atomic_store(&h->last_seq, last);
    atomic_store(&h->visible_seq, last);
    return LSM_OK;
}

/* ----------------------------------------------------------- WAL replay */

typedef struct replay_ctx {
    lsm_db *db;
    uint64_t *aborted;
    size_t n_aborted, cap_aborted;
    uint64_t *ingested;         /* file numbers named by INGEST records */
    size_t n_ingested, cap_ingested;
    uint64_t max_seq;
    uint64_t seq;
} replay_ctx;

static lsm_status push_u64(uint64_t **a, size_t *n, size_t *cap, uint64_t v)
{
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        uint64_t *p = realloc(*a, c * sizeof *p);
        if (!p)
            return lsm_fail(LSM_NO_MEMORY, "WAL replay");
        *a = p;
        *cap = c;
    }
    (*a)[(*n)++] = v;
    return LSM_OK;
}

static lsm_status collect_abort(uint8_t kind, uint64_t tag, uint64_t first_seq, uint32_t count,
                                const uint8_t *payload, size_t len, void *arg)
{
    replay_ctx *c = arg;
    if (kind == WAL_RECORD_INGEST)
        return push_u64(&c->ingested, &c->n_ingested, &c->cap_ingested, get_u64(payload));
    if (kind != WAL_RECORD_ABORT)
        return LSM_OK;
    return push_u64(&c->aborted, &c->n_aborted, &c->cap_aborted, first_seq);
}

static bool ingest_named(const replay_ctx *c, uint64_t file_no)
{
    for (size_t i = 0; i < c->n_ingested; i++)
        if (c->ingested[i] == file_no)
            return true;
    return false;
}

static bool was_aborted(const replay_ctx *c, uint64_t first_seq)
{
    for (size_t i = 0; i < c->n_aborted; i++)
        if (c->aborted[i] == first_seq)
            return true;
    return false;
}

/* Flushes the active memtable during recovery into a new table. */
static lsm_status recovery_flush(lsm_db *db)
{
    region_header *h = db->hdr;
    if (memtable_is_empty(region_memtable(h, h->active_mem)))
        return LSM_OK;
    /* Freeze into a second slot so flush_frozen's normal path runs; the
     * "next newer" memtable's first_wal_seg keeps log_number unchanged. */
    mu_lock(&h->version_mu);
    int slot = -1;
    for (uint32_t i = 0; i < h->n_mem_slots && slot < 0; i++)
        if (region_mem_slot(h, i)->state == SLOT_FREE)
            slot = (int) i;
    if (slot < 0) {
        mu_unlock(&h->version_mu);
        return lsm_fail(LSM_BUSY, "recovery: no free memtable");
    }
    region_mem_slot(h, (uint32_t) slot)->first_wal_seg = h->log_number;
    version_change c;
    version_change_init(&c);
    c.new_active = slot;
    lsm_status st = version_apply(db, &c);
    if (st == LSM_OK)
        h->active_mem = (uint32_t) slot;
    mu_unlock(&h->version_mu);
    if (st == LSM_OK)
        st = flush_frozen(db);
    return st;
}

typedef struct replay_insert {
    replay_ctx *c;
    memtable *mem;
} replay_insert;

static lsm_status replay_entry(const lsm_entry *e, void *arg)
{
    replay_insert *ri = arg;
    lsm_entry copy = *e;
    copy.seq = ri->c->seq++;
    return memtable_add(ri->mem, &copy);
}

static bool in_current_version(region_header *h, uint64_t file_no)
{
    version *v = region_version(h, h->current_version);
    for (uint32_t i = 0; i < v->n_tables; i++)
        if (region_table(h, v->tables[i])->meta.file_no == file_no)
            return true;
    return false;
}

/* An INGEST record that replay keeps: its table joins the manifest and the
 * version as the newest table (no memtable replayed so far shares a key
 * with it, as at prepare time). */
static lsm_status readd_ingested(lsm_db *db, uint64_t file_no)
{
    region_header *h = db->hdr;
    char path[1100];
    sst_file_path(path, sizeof path, db->dir, file_no);
    /* Gone although kept: the table was installed and later merged away
     * (or dropped whole by GC), and its file deleted only after the
     * manifest recorded that; its data is in the current version.  (An
     * ingest's file and directory entry are synced before its WAL record,
     * and an aborted one's file is deleted only after its ABORT record.) */
    if (access(path, F_OK) != 0 && errno == ENOENT)
        return LSM_OK;
    sst_table *t;
    lsm_status st = sst_table_open(path, file_no, &t);
    if (st != LSM_OK)
        return lsm_fail(st, "WAL names ingested table %s: %s", path, lsm_errmsg());
    table_meta meta = *sst_table_meta(t);
    sst_table_close(t);
    mu_lock(&h->version_mu);
    int slot = table_slot_alloc(db);
    mu_unlock(&h->version_mu);
    if (slot < 0)
        return lsm_fail(LSM_BUSY, "recovery: all %u table slots are in use", h->cfg.max_tables);
    region_table(h, (uint32_t) slot)->meta = meta;
    return ingest_install(db, slot); /* as its commit would have */
}

static lsm_status apply_ingest(replay_ctx *c, uint64_t tag, uint64_t first_seq,
                               const uint8_t *payload)
{
    lsm_db *db = c->db;
    uint64_t file_no = get_u64(payload);
    if (in_current_version(db->hdr, file_no))
        return LSM_OK; /* committed before the crash */
    bool keep = !was_aborted(c, first_seq) &&
                (tag == 0 || !db->opts.tag_filter || db->opts.tag_filter(tag, db->opts.tag_filter_arg));
    if (keep)
        return readd_ingested(db, file_no);
    char path[1100];
    sst_file_path(path, sizeof path, db->dir, file_no);
    unlink(path);
    return LSM_OK;
}

static lsm_status apply_batch(uint8_t kind, uint64_t tag, uint64_t first_seq, uint32_t count,
                              const uint8_t *payload, size_t len, void *arg)
{
    replay_ctx *c = arg;
    lsm_db *db = c->db;
    region_header *h = db->hdr;
    if ((kind != WAL_RECORD_BATCH && kind != WAL_RECORD_INGEST) || count == 0)
        return LSM_OK;
    if (first_seq + count - 1 > c->max_seq) {
        c->max_seq = first_seq + count - 1;
        /* Replayed batches are final: let a mid-replay flush see them as
         * resolved (visible_seq) rather than wait for them. */
        atomic_store(&h->last_seq, c->max_seq);
        if (atomic_load(&h->visible_seq) < c->max_seq)
            atomic_store(&h->visible_seq, c->max_seq);
    }
    if (kind == WAL_RECORD_INGEST)
        return apply_ingest(c, tag, first_seq, payload);
    if (was_aborted(c, first_seq))
        return LSM_OK;
    if (tag != 0 && db->opts.tag_filter && !db->opts.tag_filter(tag, db->opts.tag_filter_arg))
        return LSM_OK;
    size_t need = len + (size_t) count * memtable_entry_cost(0, 0);
    if (!memtable_has_room(region_memtable(h, h->active_mem), need)) {
        lsm_status st = recovery_flush(db);
        if (st != LSM_OK)
            return st;
    }
    replay_insert ri = {c, region_memtable(h, h->active_mem)};
    c->seq = first_seq;
    lsm_status st = batch_iterate(payload, len, replay_entry, &ri);
    if (st != LSM_OK)
        return lsm_fail(st, "WAL batch at seq %llu: %s", (unsigned long long) first_seq,
                        lsm_errmsg());
    return LSM_OK;
}

/* Pass 1: aborted batches and ingested tables.  File numbers of ingested
 * tables were reserved before the manifest learnt of them: skip past. */
static lsm_status replay_scan(lsm_db *db, replay_ctx *c)
{
    region_header *h = db->hdr;
    wal_replay_stats st1 = {0};
    lsm_status st = wal_replay(db->dir, h->log_number, collect_abort, c, &st1);
    for (size_t i = 0; st == LSM_OK && i < c->n_ingested; i++)
        if (c->ingested[i] >= h->next_file_no)
            h->next_file_no = c->ingested[i] + 1;
    return st;
}

/* Pass 2: apply. */
static lsm_status replay_wal(lsm_db *db, replay_ctx *c_in, uint64_t *max_seg)
{
    region_header *h = db->hdr;
    replay_ctx c = *c_in;
    wal_replay_stats st2 = {0};
    lsm_status st = wal_replay(db->dir, h->log_number, apply_batch, &c, &st2);
    if (st != LSM_OK)
        return st;
    atomic_store(&h->stats.wal_records_dropped, st2.records_dropped);
    if (c.max_seq > atomic_load(&h->last_seq)) {
        atomic_store(&h->last_seq, c.max_seq);
        atomic_store(&h->visible_seq, c.max_seq);
    }
    *max_seg = st2.max_seg;
    return LSM_OK;
}

/* Flushes the replayed data, opens a fresh WAL segment above every old one,
 * records it as log_number, and removes the replayed segments. */
static lsm_status finish_recovery(lsm_db *db, uint64_t max_seg)
{
    region_header *h = db->hdr;
    uint64_t seg = (max_seg > h->log_number ? max_seg : h->log_number) + 1;
    h->wal_last_seq = atomic_load(&h->last_seq);
    lsm_status st = recovery_flush(db);
    if (st == LSM_OK)
        st = wal_start_segment(db, seg);
    if (st != LSM_OK)
        return st;
    region_mem_slot(h, h->active_mem)->first_wal_seg = seg;
    manifest_edit e = {0};
    e.has_next_file_no = true;
    e.next_file_no = h->next_file_no;
    e.has_log_number = true;
    e.log_number = seg;
    e.has_last_seq = true;
    e.last_seq = atomic_load(&h->last_seq);
    st = manifest_write_edit(db, &e);
    if (st != LSM_OK)
        return st;
    h->log_number = seg;
    return wal_delete_segments_below(db->dir, seg);
}

static lsm_status recover(lsm_db *db)
{
    manifest_state ms = {0};
    replay_ctx c = {.db = db};
    lsm_status st = manifest_load(db->dir, &ms);
    if (st == LSM_OK)
        st = install_tables(db, &ms);
    if (st == LSM_OK)
        st = replay_scan(db, &c);
    if (st == LSM_OK)
        st = remove_orphans(db, &ms, &c);
    manifest_state_free(&ms);
    uint64_t max_seg = 0;
    if (st == LSM_OK) {
        atomic_store(&db->hdr->state, REGION_RECOVERING);
        st = replay_wal(db, &c, &max_seg);
    }
    free(c.aborted);
    free(c.ingested);
    if (st == LSM_OK)
        st = finish_recovery(db, max_seg);
    if (st == LSM_OK)
        atomic_store(&db->hdr->state, REGION_READY);
    return st;
}

/* ----------------------------------------------------------- public API */

lsm_status lsm_open(const lsm_config *cfg, void *region, size_t region_size,
                    const lsm_open_options *opts, lsm_db **out)
{
    lsm_clear_error();
    if (!cfg || !out)
        return lsm_fail(LSM_INVALID, "open: NULL argument");
    *out = NULL;
    lsm_status st = lsm_config_validate(cfg);
    if (st != LSM_OK)
        return st;
    size_t need = region_size_for(cfg);
    void *owned = NULL;
    if (!region) {
        /* Private to this process (its threads share it), so it may use
         * transparent huge pages: memtable hash probes and skiplist hops
         * otherwise miss the TLB on nearly every access. */
        owned = mmap(NULL, need, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (owned == MAP_FAILED)
            return lsm_fail(LSM_NO_MEMORY, "cannot map a %zu-byte engine region", need);
        madvise(owned, need, MADV_HUGEPAGE);
        /* Fault it in now, not on the first writes: huge-page faults may
         * stall in kernel compaction, which belongs to start-up. */
        prefault_region(owned, need);
        region = owned;
        region_size = need;
    }
    int lock_fd = -1;
    st = open_directory(cfg, &lock_fd);
    if (st == LSM_OK)
        st = region_init(region, region_size, cfg);
    lsm_db *db = NULL;
    if (st == LSM_OK)
        st = db_new(region, opts, &db);
    if (st != LSM_OK) {
        if (lock_fd >= 0)
            close(lock_fd);
        if (owned)
            munmap(owned, need);
        return st;
    }
    db->owned_region = owned;
    db->owned_size = need;
    db->lock_fd = lock_fd;
    db->is_host = true;
    st = recover(db);
    if (st != LSM_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", lsm_errmsg());
        atomic_store(&db->hdr->state, REGION_CLOSED);
        db_free(db);
        return lsm_fail(st, "%s", msg);
    }
    if (db->opts.background_threads)
        maintenance_start_thread(db);
    *out = db;
    return LSM_OK;
}

lsm_status lsm_attach(void *region, const lsm_open_options *opts, lsm_db **out)
{
    if (!region || !out)
        return lsm_fail(LSM_INVALID, "attach: NULL argument");
    *out = NULL;
    if (!lsm_region_ready(region))
        return lsm_fail(LSM_CLOSED, "the engine region is not ready (host not started or closed)");
    region_header *h = region;
    lsm_open_options o = opts ? *opts : (lsm_open_options) {0};
    o.background_threads = false;
    return db_new(h, &o, out);
}

void lsm_detach(lsm_db *db)
{
    if (db && !db->is_host)
        db_free(db);
}

lsm_status lsm_close(lsm_db *db)
{
    if (!db)
        return LSM_OK;
    if (!db->is_host) {
        lsm_detach(db);
        return LSM_OK;
    }
    maintenance_stop_thread(db);
    lsm_status st = LSM_OK;
    if (atomic_load(&db->hdr->state) == REGION_READY) {
        st = lsm_flush(db);
        lsm_status st2 = lsm_wal_sync(db);
        if (st == LSM_OK)
            st = st2;
    }
    char msg[512];
    snprintf(msg, sizeof msg, "%s", lsm_errmsg());
    atomic_store(&db->hdr->state, REGION_CLOSED);
    db_free(db);
    return st == LSM_OK ? LSM_OK : lsm_fail(st, "%s", msg);
}

lsm_status lsm_snapshot_acquire(lsm_db *db, lsm_snapshot **out)
{
    if (!db || !out)
        return lsm_fail(LSM_INVALID, "snapshot: NULL argument");
    if (atomic_load(&db->hdr->state) != REGION_READY)
        return lsm_fail(LSM_CLOSED, "engine is not open");
    lsm_snapshot *s = malloc(sizeof *s);
    if (!s)
        return lsm_fail(LSM_NO_MEMORY, "snapshot");
    s->version = version_pin_current(db, &s->seq);
    *out = s;
    return LSM_OK;
}

void lsm_snapshot_release(lsm_db *db, lsm_snapshot *snap)
{
    if (!db || !snap)
        return;
    version_unpin(db, snap->version);
    free(snap);
}

uint64_t lsm_snapshot_seq(const lsm_snapshot *snap)
{
    return snap ? snap->seq : 0;
}
