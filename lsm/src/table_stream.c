/*
 * table_stream.c — a large transaction's table, built while it still writes.
 *
 * A bulk load (one COPY of a million rows) used to reach the engine at
 * commit: sorted, encoded, compressed and written there, one core busy
 * while the other idled.  A stream takes the ops as the transaction makes
 * them, already in table order, and a helper thread encodes, compresses
 * and writes them to the table file meanwhile; the commit only finishes the
 * file (lsm_write_prepare_stream in write.c).
 *
 * The seqs are not known until the commit reserves them, so entries are
 * written with seq 0 and the table is finished as a uniform-seq table
 * (sst.h): every entry reads back with the batch's last seq.  That is exact
 * because the ops are strictly increasing in (key, ts): one version each.
 *
 * Threads: the caller's thread fills chunks of ops (copies of the
 * lsm_write_op, whose bytes the caller keeps valid); the helper writes
 * them in order.  `produced` and `consumed` count chunks (under mu); the
 * producer fills chunk produced % STREAM_CHUNKS only while fewer than
 * STREAM_CHUNKS chunks are handed over and not yet written, so neither side
 * touches a chunk the other owns.  The helper owns the builder until the
 * stream is drained, then the caller does.  The helper blocks every signal
 * (the host's handlers belong to its main thread) and calls nothing but the
 * builder.  A helper error is kept (status and message) and reported by the
 * next hand-over or by the drain; the helper then only consumes chunks.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "db.h"
#include "sst.h"
#include "table_stream.h"

#define STREAM_CHUNKS 4
#define CHUNK_OPS 8192

struct lsm_table_stream {
    lsm_db *db;
    int slot;                       /* reserved table slot; -1 once passed on */
    char path[1100];
    sst_builder *sb;                /* helper's until drained; NULL once finished */
    int64_t now;                    /* puts expired by then become tombstones */
    int64_t min_expire;             /* helper's: smallest nonzero expire_at */

    /* caller's thread */
    lsm_write_op *chunk[STREAM_CHUNKS];
    uint32_t fill;                  /* ops in chunk[produced % STREAM_CHUNKS] */
    uint64_t count;
    size_t bytes;
    const uint8_t *first_key, *last_key;
    uint32_t first_len, last_len;
    int64_t last_ts;
    bool thread_running, drained;

    /* shared, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t produced, consumed;
    uint32_t chunk_n[STREAM_CHUNKS];
    bool closing, cancel;
    lsm_status thread_st;
    char thread_msg[512];
    pthread_t thread;
};

/* ------------------------------------------------------------- helper */

static lsm_status write_op(lsm_table_stream *s, const lsm_write_op *op)
{
    lsm_entry e = {.key = op->key, .key_len = (uint32_t) op->key_len, .ts = op->ts, .seq = 0};
    if (op->kind == LSM_OP_PUT) {
        e.type = ENTRY_PUT;
        e.expire_at = op->expire_at;
        e.value = op->value;
        e.value_len = (uint32_t) op->value_len;
    } else {
        e.type = ENTRY_DELETE;
    }
    ingest_table_entry(&e, s->now, &s->min_expire);
    return sst_builder_add(s->sb, &e);
}

static lsm_status write_chunk(lsm_table_stream *s, const lsm_write_op *ops, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        lsm_status st = write_op(s, &ops[i]);
        if (st != LSM_OK)
            return st;
    }
    return LSM_OK;
}

static void *helper_main(void *arg)
{
    lsm_table_stream *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (s->consumed == s->produced && !s->closing)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->consumed == s->produced) {
            pthread_mutex_unlock(&s->mu);
            return NULL;
        }
        uint32_t idx = (uint32_t) (s->consumed % STREAM_CHUNKS);
        uint32_t n = s->chunk_n[idx];
        bool work = s->thread_st == LSM_OK && !s->cancel;
        pthread_mutex_unlock(&s->mu);

        lsm_status st = work ? write_chunk(s, s->chunk[idx], n) : LSM_OK;

        pthread_mutex_lock(&s->mu);
        if (st != LSM_OK && s->thread_st == LSM_OK) {
            s->thread_st = st;
            snprintf(s->thread_msg, sizeof s->thread_msg, "%s", lsm_errmsg());
        }
        s->consumed++;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
}

/* Starts the helper with every signal blocked (it inherits the mask). */
static lsm_status start_helper(lsm_table_stream *s)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&s->thread, NULL, helper_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return lsm_fail(LSM_NO_MEMORY, "table stream: cannot start a thread: %s", strerror(rc));
    s->thread_running = true;
    return LSM_OK;
}

static void stop_helper(lsm_table_stream *s, bool cancel)
{
    if (!s->thread_running)
        return;
    pthread_mutex_lock(&s->mu);
    s->closing = true;
    s->cancel = cancel;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    s->thread_running = false;
}

/* -------------------------------------------------------------- public */

lsm_status lsm_table_stream_open(lsm_db *db, lsm_table_stream **out)
{
    *out = NULL;
    if (!db)
        return lsm_fail(LSM_INVALID, "table stream: NULL database");
    if (atomic_load(&db->hdr->state) != REGION_READY)
        return lsm_fail(LSM_CLOSED, "engine is not open");
    lsm_table_stream *s = calloc(1, sizeof *s);
    if (s == NULL)
        return lsm_fail(LSM_NO_MEMORY, "table stream: out of memory");
    s->db = db;
    s->slot = -1;
    s->now = db_now_secs(db);
    s->min_expire = INT64_MAX;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    for (int i = 0; i < STREAM_CHUNKS; i++)
        if ((s->chunk[i] = malloc(CHUNK_OPS * sizeof(lsm_write_op))) == NULL) {
            lsm_table_stream_abandon(s);
            return lsm_fail(LSM_NO_MEMORY, "table stream: out of memory");
        }
    uint64_t file_no;
    sst_options opt;
    lsm_status st = table_file_reserve(db, &s->slot, &file_no);
    if (st == LSM_OK) {
        sst_file_path(s->path, sizeof s->path, db->dir, file_no);
        table_build_options(db, &opt);
        st = sst_builder_open(s->path, file_no, &opt, &s->sb);
    }
    if (st == LSM_OK)
        st = start_helper(s);
    if (st != LSM_OK) {
        lsm_table_stream_abandon(s);
        return st;
    }
    *out = s;
    return LSM_OK;
}

/* Hands the filled chunk to the helper; waits for a free one. */
static lsm_status hand_over(lsm_table_stream *s, bool wait_for_room)
{
    pthread_mutex_lock(&s->mu);
    s->chunk_n[s->produced % STREAM_CHUNKS] = s->fill;
    s->produced++;
    pthread_cond_broadcast(&s->cv);
    while (wait_for_room && s->produced - s->consumed >= STREAM_CHUNKS)
        pthread_cond_wait(&s->cv, &s->mu);
    lsm_status st = s->thread_st;
    char msg[sizeof s->thread_msg];
    memcpy(msg, s->thread_msg, sizeof msg);
    pthread_mutex_unlock(&s->mu);
    s->fill = 0;
    return st == LSM_OK ? LSM_OK : lsm_fail(st, "%s", msg);
}

lsm_status lsm_table_stream_add(lsm_table_stream *s, const lsm_write_op *op)
{
    if (!s || !op || s->drained)
        return lsm_fail(LSM_INVALID, "table stream: NULL or already drained");
    if (s->count >= UINT32_MAX)
        return lsm_fail(LSM_TOO_LARGE, "write: more than %u operations", UINT32_MAX);
    lsm_status st = batch_check_op(op, s->count);
    if (st != LSM_OK)
        return st;
    if (op->kind != LSM_OP_PUT && op->kind != LSM_OP_DELETE)
        return lsm_fail(LSM_INVALID, "table stream: op %llu is a range delete",
                        (unsigned long long) s->count);
    if (s->count &&
        entry_compare_kt(op->key, op->key_len, op->ts, s->last_key, s->last_len, s->last_ts) <= 0)
        return lsm_fail(LSM_INVALID, "table stream: op %llu is not after the one before in "
                        "(key, ts) order", (unsigned long long) s->count);
    if (s->count == 0) {
        s->first_key = op->key;
        s->first_len = (uint32_t) op->key_len;
    }
    s->last_key = op->key;
    s->last_len = (uint32_t) op->key_len;
    s->last_ts = op->ts;
    s->count++;
    s->bytes += batch_op_bound(op);
    s->chunk[s->produced % STREAM_CHUNKS][s->fill++] = *op;
    return s->fill == CHUNK_OPS ? hand_over(s, true) : LSM_OK;
}

uint64_t lsm_table_stream_count(const lsm_table_stream *s) { return s ? s->count : 0; }

void lsm_table_stream_abandon(lsm_table_stream *s)
{
    if (s == NULL)
        return;
    stop_helper(s, true);
    sst_builder_abandon(s->sb);   /* unlinks the file */
    if (s->slot >= 0)
        table_file_release(s->db, s->slot);
    for (int i = 0; i < STREAM_CHUNKS; i++)
        free(s->chunk[i]);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

/* ------------------------------------------------- write.c's two steps */

lsm_status table_stream_drain(lsm_table_stream *s, ingest_run *bounds, uint32_t *count,
                              size_t *bytes)
{
    memset(bounds, 0, sizeof *bounds);
    if (s->drained)
        return lsm_fail(LSM_INVALID, "table stream: already drained");
    lsm_status st = s->fill ? hand_over(s, false) : LSM_OK;
    stop_helper(s, false);
    s->drained = true;
    if (st == LSM_OK && s->thread_st != LSM_OK)
        st = lsm_fail(s->thread_st, "%s", s->thread_msg);
    /* The data blocks reach the disk now, outside every lock; the
     * commit's fsync then covers only the table's tail. */
    if (st == LSM_OK)
        st = sst_builder_sync(s->sb);
    if (st != LSM_OK)
        return st;
    if (s->count) {
        bounds->n_points = s->count;
        bounds->lo = s->first_key;
        bounds->lo_len = s->first_len;
        bounds->hi = s->last_key;
        bounds->hi_len = s->last_len;
    }
    *count = (uint32_t) s->count;
    *bytes = s->bytes;
    return LSM_OK;
}

lsm_status table_stream_finish(lsm_table_stream *s, uint64_t seq, int *slot)
{
    int reserved = s->slot;
    table_slot *ts = region_table(s->db->hdr, (uint32_t) reserved);
    lsm_status st = sst_builder_set_uniform_seq(s->sb, seq);
    if (st != LSM_OK)
        sst_builder_abandon(s->sb);
    else
        st = sst_builder_finish(s->sb, &ts->meta); /* frees it either way */
    s->sb = NULL;
    s->slot = -1; /* settled below: passed on or freed */
    ts->min_expire_hint = s->min_expire;
    return ingest_table_settle(s->db, reserved, s->path, st, slot);
}
