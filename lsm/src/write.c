/*
 * write.c — the write path: WAL append, memtable insert, visibility, fsync.
 *
 * A batch goes through:
 *   1. write_mu: make room (switch memtables, waiting for flush when all
 *      are frozen), reserve a seq range and an in-flight slot, append one
 *      WAL record, insert the entries (invisible: seq > visible_seq).
 *   2. without locks: fsync in LSM_SYNC_ALWAYS mode.  Writers that arrive
 *      while one fsync runs are covered by the next one (group commit).
 *   3. commit: drop the in-flight slot, which lets visible_seq advance past
 *      the batch once every older batch has committed or aborted.
 * An abort logs an ABORT record and flags the batch's memtable nodes, so
 * neither readers nor replay ever see it.
 *
 * Invariant: visible_seq = (smallest first_seq among in-flight batches) - 1,
 * or last_seq when none is in flight.  It only grows.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "coding.h"
#include "db.h"
#include "ingest.h"
#include "status.h"
#include "table_stream.h"
#include "wal.h"

#define WAL_ZERO_AHEAD (4u << 20)

/* ------------------------------------------------------------ WAL files */

static lsm_status wal_fd_for(lsm_db *db, uint64_t seg, int *fd, int *slot_fd, uint64_t *slot_seg)
{
    lsm_status st = LSM_OK;
    mu_lock(&db->local_mu);
    if (*slot_fd < 0 || *slot_seg != seg) {
        if (*slot_fd >= 0)
            close(*slot_fd);
        *slot_fd = -1;
        st = wal_segment_open(db->dir, seg, slot_fd);
        *slot_seg = seg;
    }
    *fd = *slot_fd;
    mu_unlock(&db->local_mu);
    return st;
}

static uint64_t current_wal_seg(region_header *h)
{
    return __atomic_load_n(&h->wal_seg, __ATOMIC_ACQUIRE);
}

/* Creates segment seg_no and makes it the append target (write_mu held, or
 * the host during open).  The previous segment is synced first, so every
 * byte before the switch is durable and wal_synced can jump forward. */
lsm_status wal_start_segment(lsm_db *db, uint64_t seg_no)
{
    region_header *h = db->hdr;
    if (db->wal_fd >= 0 && db->wal_fd_seg == current_wal_seg(h)) {
        lsm_status st = wal_sync(db->wal_fd);
        if (st != LSM_OK)
            return st;
    }
    uint64_t written = atomic_load(&h->wal_written);
    int fd;
    uint64_t start;
    lsm_status st = wal_segment_create(db->dir, seg_no, h->wal_last_seq, &fd, &start);
    if (st != LSM_OK)
        return st;
    mu_lock(&db->local_mu);
    if (db->wal_fd >= 0)
        close(db->wal_fd);
    db->wal_fd = fd;
    db->wal_fd_seg = seg_no;
    mu_unlock(&db->local_mu);
    h->wal_offset = start;
    h->wal_zeroed = start;
    __atomic_store_n(&h->wal_seg, seg_no, __ATOMIC_RELEASE);
    uint64_t synced = atomic_load(&h->wal_synced);
    while (synced < written && !atomic_compare_exchange_weak(&h->wal_synced, &synced, written))
        ;
    return LSM_OK;
}

lsm_status wal_group_sync(lsm_db *db, uint64_t upto)
{
    region_header *h = db->hdr;
    if (atomic_load(&h->wal_synced) >= upto)
        return LSM_OK;
    mu_lock(&h->sync_mu);
    lsm_status st = LSM_OK;
    if (atomic_load(&h->wal_synced) < upto) {
        /* Bytes <= written live in segments <= seg; older segments were
         * synced when they were rolled. */
        uint64_t written = atomic_load(&h->wal_written);
        uint64_t seg = current_wal_seg(h);
        int fd;
        st = wal_fd_for(db, seg, &fd, &db->sync_fd, &db->sync_fd_seg);
        if (st == LSM_OK)
            st = wal_sync(fd);
        if (st == LSM_OK) {
            uint64_t synced = atomic_load(&h->wal_synced);
            while (synced < written &&
                   !atomic_compare_exchange_weak(&h->wal_synced, &synced, written))
                ;
        }
    }
    mu_unlock(&h->sync_mu);
    return st;
}

/* ------------------------------------------------------- memtable switch */

static int free_mem_slot(region_header *h)
{
    for (uint32_t i = 0; i < h->n_mem_slots; i++)
        if (region_mem_slot(h, i)->state == SLOT_FREE)
            return (int) i;
    return -1;
}

/* Claims a free memtable slot, waiting for flushes to free one. */
static lsm_status claim_mem_slot(lsm_db *db, int *out)
{
    region_header *h = db->hdr;
    int64_t deadline = mono_ms() + h->cfg.write_wait_ms;
    bool stalled = false;
    mu_lock(&h->version_mu);
    int slot;
    while ((slot = free_mem_slot(h)) < 0) {
        if (!stalled) {
            atomic_fetch_add(&h->stats.write_stalls, 1);
            stalled = true;
        }
        if (mono_ms() >= deadline) {
            mu_unlock(&h->version_mu);
            return lsm_fail(LSM_BUSY,
                            "write waited %u ms for a memtable flush (all %u memtables full)",
                            h->cfg.write_wait_ms, h->n_mem_slots);
        }
        mu_unlock(&h->version_mu);
        /* Help: flush inline unless someone else is flushing already. */
        bool ran;
        lsm_status st = flush_frozen_if_idle(db, &ran);
        if (st != LSM_OK)
            return st;
        if (!ran)
            db_wake_maintenance(db);
        mu_lock(&h->version_mu);
        if (!ran && free_mem_slot(h) < 0)
            cv_wait_ms(&h->stall_cv, &h->version_mu, 50);
    }
    region_mem_slot(h, (uint32_t) slot)->state = SLOT_RESERVED;
    mu_unlock(&h->version_mu);
    *out = slot;
    return LSM_OK;
}

lsm_status db_switch_memtable(lsm_db *db)
{
    region_header *h = db->hdr;
    int slot = -1;
    lsm_status st = claim_mem_slot(db, &slot);
    if (st != LSM_OK)
        return st;
    uint64_t seg = current_wal_seg(h) + 1;
    st = wal_start_segment(db, seg);
    mu_lock(&h->version_mu);
    if (st == LSM_OK) {
        mem_slot *ms = region_mem_slot(h, (uint32_t) slot);
        ms->first_wal_seg = seg;
        ms->gen++;
        version_change c;
        version_change_init(&c);
        c.new_active = slot;
        st = version_apply(db, &c);
        if (st == LSM_OK)
            h->active_mem = (uint32_t) slot;
    }
    if (st != LSM_OK)
        region_mem_slot(h, (uint32_t) slot)->state = SLOT_FREE;
    mu_unlock(&h->version_mu);
    db_wake_maintenance(db);
    return st;
}

/* ------------------------------------------------------ in-flight slots */

static void recompute_visible(region_header *h)
{
    uint64_t min_first = 0;
    for (uint32_t i = 0; i < h->cfg.max_inflight_writes; i++) {
        uint64_t f = region_inflight(h, i)->first_seq;
        if (f && (!min_first || f < min_first))
            min_first = f;
    }
    uint64_t vis = min_first ? min_first - 1 : atomic_load(&h->last_seq);
    if (vis > atomic_load(&h->visible_seq))
        atomic_store(&h->visible_seq, vis);
}

static lsm_status reserve_seqs(lsm_db *db, uint32_t count, lsm_ticket *t)
{
    region_header *h = db->hdr;
    int64_t deadline = mono_ms() + h->cfg.write_wait_ms;
    mu_lock(&h->inflight_mu);
    for (;;) {
        for (uint32_t i = 0; i < h->cfg.max_inflight_writes; i++) {
            inflight_slot *s = region_inflight(h, i);
            if (s->first_seq)
                continue;
            uint64_t first = atomic_load(&h->last_seq) + 1;
            atomic_store(&h->last_seq, first + count - 1);
            s->first_seq = first;
            s->count = count;
            s->mem_index = h->active_mem;
            s->arena_from = memtable_alloc_mark(region_memtable(h, h->active_mem));
            s->arena_to = s->arena_from;
            s->ingest_table = 0;
            s->ingest_wal_seg = 0;
            t->first_seq = first;
            t->count = count;
            t->slot = i;
            mu_unlock(&h->inflight_mu);
            return LSM_OK;
        }
        if (mono_ms() >= deadline)
            break;
        cv_wait_ms(&h->inflight_cv, &h->inflight_mu, 50);
    }
    mu_unlock(&h->inflight_mu);
    return lsm_fail(LSM_BUSY, "all %u in-flight write slots are busy", h->cfg.max_inflight_writes);
}

/* Ends an in-flight batch.  With `await_visible`, also waits until the
 * visibility horizon covers it, so the writer reads its own write: older
 * batches still in flight (other writers between prepare and commit) hold
 * the horizon back.  The wait is bounded by write_wait_ms; past it the
 * batch is committed all the same and becomes visible when they resolve. */
static void end_inflight(region_header *h, const lsm_ticket *t, bool await_visible)
{
    uint64_t last = t->first_seq + t->count - 1;
    mu_lock(&h->inflight_mu);
    region_inflight(h, t->slot)->first_seq = 0;
    recompute_visible(h);
    pthread_cond_broadcast(&h->inflight_cv);
    int64_t deadline = await_visible ? mono_ms() + h->cfg.write_wait_ms : 0;
    while (await_visible && atomic_load(&h->visible_seq) < last && mono_ms() < deadline)
        cv_wait_ms(&h->inflight_cv, &h->inflight_mu, 50);
    mu_unlock(&h->inflight_mu);
}

/* ------------------------------------------------------------ the batch */

typedef struct insert_ctx {
    memtable *mem;
    uint64_t seq;
    uint64_t *hashes;      /* per op, from the prefetch pass; NULL: none */
    uint32_t i;
} insert_ctx;

static lsm_status prefetch_entry(const lsm_entry *e, void *arg)
{
    insert_ctx *ctx = arg;
    ctx->hashes[ctx->i++] = e->type == ENTRY_RANGE_DELETE ? 0 : memtable_prefetch_slot(ctx->mem, e);
    return LSM_OK;
}

static lsm_status insert_entry(const lsm_entry *e, void *arg)
{
    insert_ctx *ctx = arg;
    lsm_entry copy = *e;
    copy.seq = ctx->seq++;
    if (!ctx->hashes)
        return memtable_add(ctx->mem, &copy);
    return memtable_add_hashed(ctx->mem, &copy, ctx->hashes[ctx->i++]);
}

/* Inserts a batch (write_mu held).  Batches of up to PREFETCH_MAX ops are
 * walked twice: first hashing every op and prefetching its hash-index slot,
 * so the slots' cache misses overlap instead of costing one each. */
#define PREFETCH_MAX 1024
static lsm_status insert_batch(lsm_db *db, memtable *mem, const lsm_batch *b, uint64_t first_seq)
{
    insert_ctx ctx = {mem, first_seq, NULL, 0};
    if (b->count <= PREFETCH_MAX) {
        ctx.hashes = db->hash_scratch;
        lsm_status st = batch_iterate(b->buf, b->len, prefetch_entry, &ctx);
        if (st != LSM_OK)
            return st;
        ctx.i = 0;
    }
    return batch_iterate(b->buf, b->len, insert_entry, &ctx);
}

static size_t batch_arena_bound(const lsm_batch *b)
{
    return b->len + (size_t) b->count * memtable_entry_cost(0, 0);
}

static lsm_status append_wal_record(lsm_db *db, uint8_t kind, uint64_t tag, uint64_t first_seq,
                                    uint32_t count, const uint8_t *payload, size_t len,
                                    uint64_t *lsn)
{
    region_header *h = db->hdr;
    uint64_t seg = current_wal_seg(h);
    int fd;
    lsm_status st = wal_fd_for(db, seg, &fd, &db->wal_fd, &db->wal_fd_seg);
    if (st != LSM_OK)
        return st;
    wal_frame f;
    wal_frame_record(&f, kind, tag, first_seq, count, payload, len);
    char what[64];
    snprintf(what, sizeof what, "WAL segment %llu", (unsigned long long) seg);
    size_t rec = wal_record_size(len);
    if (h->wal_offset + rec > h->wal_zeroed) {
        /* Zero ahead, so the fdatasyncs of the next appends need not
         * journal a new file size (one in WAL_ZERO_AHEAD bytes does).  The
         * record's own bytes are not zeroed first: a large batch would be
         * written twice.  Until the record lands, the gap reads as zeros
         * (a hole), i.e. as the clean end of the log. */
        uint64_t end = h->wal_offset + rec;
        uint64_t from = h->wal_zeroed > end ? h->wal_zeroed : end;
        uint64_t to = end + WAL_ZERO_AHEAD;
        st = wal_zero_extend(fd, from, to, what);
        if (st != LSM_OK)
            return st;
        h->wal_zeroed = to;
    }
    st = wal_append_frame(fd, h->wal_offset, &f, payload, len, what);
    if (st != LSM_OK)
        return st;
    h->wal_offset += rec;
    if (kind == WAL_RECORD_BATCH || kind == WAL_RECORD_INGEST)
        h->wal_last_seq = first_seq + count - 1;
    atomic_fetch_add(&h->stats.wal_bytes, rec);
    *lsn = atomic_fetch_add(&h->wal_written, rec) + rec;
    return LSM_OK;
}

/* Discards a prepared batch whose WAL record was written: logs an ABORT
 * record (so replay skips it) and flags its nodes [arena_from, arena_to). */
static void abort_prepared(lsm_db *db, const lsm_ticket *t)
{
    region_header *h = db->hdr;
    inflight_slot *s = region_inflight(h, t->slot);
    uint64_t lsn;
    mu_lock(&h->write_mu);
    append_wal_record(db, WAL_RECORD_ABORT, 0, t->first_seq, t->count, NULL, 0, &lsn);
    memtable_mark_aborted(region_memtable(h, s->mem_index), s->arena_from, s->arena_to);
    mu_unlock(&h->write_mu);
    if (h->cfg.sync_mode == LSM_SYNC_ALWAYS)
        wal_group_sync(db, lsn);
}

static lsm_status check_writable(lsm_db *db, lsm_batch *b)
{
    if (!db || !b)
        return lsm_fail(LSM_INVALID, "write: NULL database or batch");
    if (atomic_load(&db->hdr->state) != REGION_READY)
        return lsm_fail(LSM_CLOSED, "engine is not open");
    return LSM_OK;
}

static lsm_status maybe_roll_segment(lsm_db *db)
{
    region_header *h = db->hdr;
    if (h->wal_offset < h->cfg.wal_segment_size)
        return LSM_OK;
    return wal_start_segment(db, current_wal_seg(h) + 1);
}

static void note_written(region_header *h, uint32_t count, size_t bytes, uint64_t t0)
{
    atomic_fetch_add(&h->stats.records_written, count);
    atomic_fetch_add(&h->stats.bytes_written, bytes);
    histogram_record(&h->stats.write_latency, mono_us() - t0);
}

/* Writes (or finishes) an ingested batch's table for seqs first_seq ..
 * first_seq + count - 1, under write_mu; on failure leaves no file or slot. */
typedef lsm_status (*ingest_table_fn)(lsm_db *db, void *arg, uint64_t first_seq, uint32_t count,
                                      int *slot);

static lsm_status build_sorted_run(lsm_db *db, void *run, uint64_t first_seq, uint32_t count,
                                   int *slot)
{
    return ingest_build(db, run, first_seq, slot);
}

static lsm_status finish_stream(lsm_db *db, void *stream, uint64_t first_seq, uint32_t count,
                                int *slot)
{
    return table_stream_finish(stream, first_seq + count - 1, slot);
}

/* The INGEST form of prepare (ingest.c): run holds the batch's key range
 * (for a sorted run, the batch itself), count its ops, `bytes` their
 * encoded size (statistics).  Under write_mu make room, reserve seqs, have
 * `table` produce the table and log its number, so the WAL stays in seq
 * order.  The in-flight slot remembers the table. */
static lsm_status prepare_ingest(lsm_db *db, const ingest_run *run, ingest_table_fn table,
                                 void *arg, uint32_t count, uint64_t tag, size_t bytes,
                                 lsm_ticket *t, uint64_t t0)
{
    region_header *h = db->hdr;
    lsm_status st;
    bool reserved = false, logged = false;
    int slot = -1;
    uint64_t lsn = 0;
    mu_lock(&h->write_mu);
    st = ingest_make_room(db, run);
    if (st == LSM_OK && (st = reserve_seqs(db, count, t)) == LSM_OK)
        reserved = true;
    if (st == LSM_OK)
        st = table(db, arg, t->first_seq, count, &slot);
    if (st == LSM_OK) {
        uint8_t payload[8];
        put_u64(payload, region_table(h, (uint32_t) slot)->meta.file_no);
        st = append_wal_record(db, WAL_RECORD_INGEST, tag, t->first_seq, count, payload,
                               sizeof payload, &lsn);
    }
    if (st == LSM_OK) {
        logged = true;
        mu_lock(&h->inflight_mu);
        inflight_slot *s = region_inflight(h, t->slot);
        s->ingest_wal_seg = current_wal_seg(h);
        s->ingest_table = slot + 1;
        mu_unlock(&h->inflight_mu);
        st = maybe_roll_segment(db);
    }
    mu_unlock(&h->write_mu);

    if (st == LSM_OK && h->cfg.sync_mode == LSM_SYNC_ALWAYS)
        st = wal_group_sync(db, lsn);
    if (st != LSM_OK) {
        if (logged)
            abort_prepared(db, t);
        if (slot >= 0)
            ingest_discard(db, slot);
        if (reserved)
            end_inflight(h, t, false);
        memset(t, 0, sizeof *t);
        return st;
    }
    note_written(h, count, bytes, t0);
    atomic_fetch_add(&h->stats.ingests, 1);
    return LSM_OK;
}

lsm_status lsm_write_prepare(lsm_db *db, lsm_batch *b, lsm_ticket *t)
{
    memset(t, 0, sizeof *t);
    lsm_status st = check_writable(db, b);
    if (st != LSM_OK || b->count == 0)
        return st;
    region_header *h = db->hdr;
    uint64_t t0 = mono_us();
    batch_resolve_expiry(b, db_now_secs(db), h->cfg.default_ttl_secs);
    size_t need = batch_arena_bound(b);
    if (ingest_wanted(h, need)) {
        ingest_run run;
        if ((st = ingest_sort(b, &run)) != LSM_OK)
            return st;
        st = prepare_ingest(db, &run, build_sorted_run, &run, b->count, b->tag, b->len, t, t0);
        ingest_run_free(&run);
        return st;
    }
    uint64_t lsn = 0;
    bool logged = false;

    mu_lock(&h->write_mu);
    while (st == LSM_OK && !memtable_has_room(region_memtable(h, h->active_mem), need))
        st = db_switch_memtable(db);
    if (st == LSM_OK)
        st = reserve_seqs(db, b->count, t);
    if (st != LSM_OK) {
        mu_unlock(&h->write_mu);
        memset(t, 0, sizeof *t);
        return st;
    }
    st = append_wal_record(db, WAL_RECORD_BATCH, b->tag, t->first_seq, b->count, b->buf, b->len,
                           &lsn);
    if (st == LSM_OK) {
        logged = true;
        memtable *mem = region_memtable(h, h->active_mem);
        st = insert_batch(db, mem, b, t->first_seq);
        region_inflight(h, t->slot)->arena_to = memtable_alloc_mark(mem);
    }
    if (st == LSM_OK)
        st = maybe_roll_segment(db);
    mu_unlock(&h->write_mu);

    if (st == LSM_OK && h->cfg.sync_mode == LSM_SYNC_ALWAYS)
        st = wal_group_sync(db, lsn);
    if (st != LSM_OK) {
        if (logged)
            abort_prepared(db, t);
        end_inflight(h, t, false);
        memset(t, 0, sizeof *t);
        return st;
    }
    note_written(h, b->count, b->len, t0);
    return LSM_OK;
}

/* Memtable footprint bound of n ops whose batch encoding takes op_bytes. */
static size_t ops_arena_bound(size_t n, size_t op_bytes)
{
    return op_bytes + n * memtable_entry_cost(0, 0);
}

lsm_status lsm_write_prepare_ops(lsm_db *db, const lsm_write_op *ops, size_t n, uint64_t tag,
                                 lsm_batch *scratch, lsm_ticket *t)
{
    memset(t, 0, sizeof *t);
    if (!db || !scratch || (n && !ops))
        return lsm_fail(LSM_INVALID, "write: NULL database, ops or scratch batch");
    if (n == 0)
        return LSM_OK;
    if (atomic_load(&db->hdr->state) != REGION_READY)
        return lsm_fail(LSM_CLOSED, "engine is not open");
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += batch_op_bound(&ops[i]);
    if (!ingest_wanted(db->hdr, ops_arena_bound(n, bytes))) {
        lsm_batch_clear(scratch);
        lsm_batch_set_tag(scratch, tag);
        lsm_batch_set_ttl(scratch, 0);  /* expire_at 0 = never */
        lsm_status st = batch_append_ops(scratch, ops, n);
        return st == LSM_OK ? lsm_write_prepare(db, scratch, t) : st;
    }
    uint64_t t0 = mono_us();
    ingest_run run;
    lsm_status st = ingest_sort_ops(ops, n, &run);
    if (st != LSM_OK)
        return st;
    st = prepare_ingest(db, &run, build_sorted_run, &run, (uint32_t) n, tag, bytes, t, t0);
    ingest_run_free(&run);
    return st;
}

bool lsm_write_ops_ingested(lsm_db *db, size_t n, size_t key_value_bytes)
{
    lsm_write_op empty = {0}; /* batch_op_bound of it: the per-op overhead */
    return db && ingest_wanted(db->hdr, ops_arena_bound(n, key_value_bytes +
                                                               n * batch_op_bound(&empty)));
}

lsm_status lsm_write_prepare_stream(lsm_db *db, lsm_table_stream *s, uint64_t tag,
                                    lsm_ticket *t)
{
    memset(t, 0, sizeof *t);
    if (!db || !s) {
        lsm_table_stream_abandon(s);
        return lsm_fail(LSM_INVALID, "write: NULL database or table stream");
    }
    uint64_t t0 = mono_us();
    ingest_run bounds;
    uint32_t count = 0;
    size_t bytes = 0;
    lsm_status st = table_stream_drain(s, &bounds, &count, &bytes);
    if (st == LSM_OK && count > 0) {
        if (atomic_load(&db->hdr->state) != REGION_READY)
            st = lsm_fail(LSM_CLOSED, "engine is not open");
        else if ((st = prepare_ingest(db, &bounds, finish_stream, s, count, tag, bytes, t,
                                      t0)) == LSM_OK)
            atomic_fetch_add(&db->hdr->stats.ingests_streamed, 1);
    }
    lsm_table_stream_abandon(s);
    return st;
}

lsm_status lsm_write_commit(lsm_db *db, const lsm_ticket *t)
{
    if (!db || !t)
        return lsm_fail(LSM_INVALID, "commit: NULL argument");
    if (t->count == 0)
        return LSM_OK;
    /* An ingested batch's table is installed before the batch turns
     * visible: readers above visible_seq skip its entries meanwhile.  If
     * the install fails the batch stays in flight (holding visibility back,
     * keeping its WAL record) until a restart's recovery installs it. */
    int32_t ingest_table = region_inflight(db->hdr, t->slot)->ingest_table;
    if (ingest_table) {
        lsm_status st = ingest_install(db, ingest_table - 1);
        if (st != LSM_OK)
            return st;
    }
    end_inflight(db->hdr, t, true);
    return LSM_OK;
}

lsm_status lsm_write_abort(lsm_db *db, const lsm_ticket *t)
{
    if (!db || !t)
        return lsm_fail(LSM_INVALID, "abort: NULL argument");
    if (t->count == 0)
        return LSM_OK;
    abort_prepared(db, t);
    int32_t ingest_table = region_inflight(db->hdr, t->slot)->ingest_table;
    if (ingest_table)
        ingest_discard(db, ingest_table - 1);
    end_inflight(db->hdr, t, false);
    return LSM_OK;
}

lsm_status lsm_write(lsm_db *db, lsm_batch *b)
{
    lsm_ticket t;
    lsm_status st = lsm_write_prepare(db, b, &t);
    if (st != LSM_OK)
        return st;
    return lsm_write_commit(db, &t);
}
