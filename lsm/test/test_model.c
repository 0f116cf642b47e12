/*
 * test_model.c — model-based randomized test of the engine.
 *
 * Seeded random operations (puts, deletes, range deletes, TTLs, two-phase
 * writes that commit or abort, gets, get_latest, scans of every shape and
 * direction with limits, snapshots) interleaved with flushes, compactions,
 * GC and close/reopen.  Every read is compared with a simple in-memory model:
 * a dense table over a small key x ts universe, so collisions, shadowing and
 * tombstones are frequent.
 *
 *   LSM_SEED=n        seed (default: time-based; always printed)
 *   LSM_MODEL_OPS=n   operations (default 1,000,000)
 * A failing run prints the seed and op number; the same seed reproduces it.
 */
#include <inttypes.h>
#include <time.h>

#include "testutil.h"

#define NKEYS 48
#define NTS 24
#define MAXVAL 3000

typedef struct cell {
    uint32_t present;
    uint32_t val_id;      /* value bytes are derived from val_id */
    uint32_t val_len;
    int64_t expire_at;
} cell;

typedef struct model {
    cell c[NKEYS][NTS];
} model;

static char keys[NKEYS][16];
static size_t key_lens[NKEYS];
static int64_t tss[NTS];
static int64_t now_secs = 1700000000;
static uint64_t rng;
static uint64_t op_no;
static unsigned long mismatches;

static int64_t clock_fn(void *arg) { (void) arg; return now_secs; }

static void make_value(uint32_t id, uint32_t len, uint8_t *out)
{
    uint64_t s = id * 2654435761u + 1;
    for (uint32_t i = 0; i < len; i++)
        out[i] = (uint8_t) (xorshift64(&s) & 0xff);
}

static int cmp_key_idx(const void *a, const void *b)
{
    const char *x = a, *y = b;
    size_t lx = strlen(x), ly = strlen(y);
    size_t n = lx < ly ? lx : ly;
    int c = memcmp(x, y, n);
    return c ? c : (lx > ly) - (lx < ly);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

/* Keys with shared prefixes and 0xff bytes; sorted bytewise. */
static void make_universe(void)
{
    const char *alpha = "ab\xff";
    for (int i = 0; i < NKEYS; i++) {
        int len = 1 + (int) (xorshift64(&rng) % 4);
        char k[16];
        for (;;) {
            for (int j = 0; j < len; j++)
                k[j] = alpha[xorshift64(&rng) % 3];
            k[len] = 0;
            int dup = 0;
            for (int p = 0; p < i; p++)
                dup |= strcmp(keys[p], k) == 0;
            if (!dup)
                break;
            len = 1 + (int) (xorshift64(&rng) % 5);
        }
        strcpy(keys[i], k);
    }
    qsort(keys, NKEYS, sizeof keys[0], cmp_key_idx);
    for (int i = 0; i < NKEYS; i++)
        key_lens[i] = strlen(keys[i]);
    int64_t fixed[] = {INT64_MIN, INT64_MIN + 1, -1000, -1, 0, 1, 2, 10, 1000, INT64_MAX - 1,
                       INT64_MAX};
    int n = 0;
    for (; n < (int) (sizeof fixed / sizeof fixed[0]); n++)
        tss[n] = fixed[n];
    while (n < NTS) {
        int64_t t = (int64_t) (xorshift64(&rng) % 100000) - 50000;
        int dup = 0;
        for (int p = 0; p < n; p++)
            dup |= tss[p] == t;
        if (!dup)
            tss[n++] = t;
    }
    qsort(tss, NTS, sizeof tss[0], cmp_i64);
}

static bool cell_live(const cell *c)
{
    return c->present && (c->expire_at == 0 || c->expire_at > now_secs);
}

#define FAIL(...) do { \
    mismatches++; \
    fprintf(stderr, "op %" PRIu64 ": ", op_no); \
    fprintf(stderr, __VA_ARGS__); \
    fputc('\n', stderr); \
} while (0)

/* ------------------------------------------------------------- engine */

static lsm_config cfg;
static lsm_db *db;

static void db_open(void)
{
    lsm_open_options o = {.clock = clock_fn};
    lsm_status st = lsm_open(&cfg, NULL, 0, &o, &db);
    if (st != LSM_OK) {
        fprintf(stderr, "open failed: %s\n", lsm_errmsg());
        exit(1);
    }
}

/* --------------------------------------------------------------- writes */

static uint8_t valbuf[MAXVAL + 1];

typedef struct pending_op {
    int kind; /* 0 put, 1 delete, 2 range */
    int k, t, k2;
    uint32_t val_id, val_len;
    int64_t expire_at;
} pending_op;

static void apply_ops(model *m, const pending_op *ops, int n, int64_t ttl_expire)
{
    for (int i = 0; i < n; i++) {
        const pending_op *p = &ops[i];
        if (p->kind == 0) {
            cell *c = &m->c[p->k][p->t];
            c->present = 1;
            c->val_id = p->val_id;
            c->val_len = p->val_len;
            c->expire_at = p->expire_at ? p->expire_at : ttl_expire;
        } else if (p->kind == 1) {
            m->c[p->k][p->t].present = 0;
        } else {
            for (int k = p->k; k < p->k2; k++)
                for (int t = 0; t < NTS; t++)
                    m->c[k][t].present = 0;
        }
    }
}

static uint32_t random_len(void)
{
    uint64_t r = xorshift64(&rng) % 100;
    if (r < 5)
        return 0;
    if (r < 95)
        return 1 + (uint32_t) (xorshift64(&rng) % 64);
    return (uint32_t) (xorshift64(&rng) % MAXVAL);
}

static uint8_t inplace_vals[8][MAXVAL + 1];

/* Writes ops[0, n) with lsm_write_prepare_ops, a put without its own expiry
 * expiring at ttl_expire (0 = never); aborts instead of committing when
 * abort is set. */
static void write_in_place(const pending_op *ops, int n, int64_t ttl_expire, bool abort)
{
    lsm_write_op w[8];
    static const char top[] = "\xff\xff\xff\xff\xff\xff";
    for (int i = 0; i < n; i++) {
        const pending_op *p = &ops[i];
        if (p->kind == 0) {
            make_value(p->val_id, p->val_len, inplace_vals[i]);
            w[i] = (lsm_write_op) {LSM_OP_PUT, keys[p->k], key_lens[p->k], inplace_vals[i],
                                   p->val_len, tss[p->t], p->expire_at ? p->expire_at : ttl_expire};
        } else if (p->kind == 1) {
            w[i] = (lsm_write_op) {LSM_OP_DELETE, keys[p->k], key_lens[p->k], NULL, 0, tss[p->t], 0};
        } else {
            bool to_top = p->k2 == NKEYS;
            w[i] = (lsm_write_op) {LSM_OP_DELETE_RANGE, keys[p->k], key_lens[p->k],
                                   to_top ? (const void *) top : keys[p->k2],
                                   to_top ? 6 : key_lens[p->k2], 0, 0};
        }
    }
    lsm_batch *scratch = lsm_batch_new();
    lsm_ticket t;
    CHECK_OK(lsm_write_prepare_ops(db, w, (size_t) n, 0, scratch, &t));
    if (abort)
        CHECK_OK(lsm_write_abort(db, &t));
    else
        CHECK_OK(lsm_write_commit(db, &t));
    lsm_batch_free(scratch);
}

static void do_write(model *m)
{
    pending_op ops[8];
    int n = 1 + (int) (xorshift64(&rng) % 6);
    lsm_batch *b = lsm_batch_new();
    int64_t ttl = -1;
    uint64_t r = xorshift64(&rng) % 10;
    if (r == 0)
        ttl = 1 + (int64_t) (xorshift64(&rng) % 30);
    else if (r == 1)
        ttl = 0;
    lsm_batch_set_ttl(b, ttl);
    for (int i = 0; i < n; i++) {
        pending_op *p = &ops[i];
        memset(p, 0, sizeof *p);
        p->k = (int) (xorshift64(&rng) % NKEYS);
        p->t = (int) (xorshift64(&rng) % NTS);
        uint64_t kind = xorshift64(&rng) % 20;
        if (kind < 15) {
            p->kind = 0;
            p->val_id = (uint32_t) xorshift64(&rng);
            p->val_len = random_len();
            make_value(p->val_id, p->val_len, valbuf);
            if (xorshift64(&rng) % 10 == 0)
                p->expire_at = now_secs + 1 + (int64_t) (xorshift64(&rng) % 40);
            CHECK_OK(lsm_batch_put_expiring(b, keys[p->k], key_lens[p->k], tss[p->t], p->expire_at,
                                            valbuf, p->val_len));
        } else if (kind < 19) {
            p->kind = 1;
            CHECK_OK(lsm_batch_delete(b, keys[p->k], key_lens[p->k], tss[p->t]));
        } else {
            p->kind = 2;
            p->k2 = p->k + 1 + (int) (xorshift64(&rng) % 4);
            if (p->k2 > NKEYS)
                p->k2 = NKEYS;
            if (p->k2 == NKEYS) {
                /* end key: something above every key in the universe */
                CHECK_OK(lsm_batch_delete_range(b, keys[p->k], key_lens[p->k], "\xff\xff\xff\xff\xff\xff", 6));
            } else {
                CHECK_OK(lsm_batch_delete_range(b, keys[p->k], key_lens[p->k], keys[p->k2],
                                                key_lens[p->k2]));
            }
        }
    }
    int64_t ttl_expire = ttl > 0 ? now_secs + ttl : 0;
    uint64_t mode = xorshift64(&rng) % 20;
    if (mode == 0) {
        /* two-phase, aborted: nothing may change */
        lsm_ticket t;
        CHECK_OK(lsm_write_prepare(db, b, &t));
        CHECK_OK(lsm_write_abort(db, &t));
    } else if (mode == 1) {
        lsm_ticket t;
        CHECK_OK(lsm_write_prepare(db, b, &t));
        CHECK_OK(lsm_write_commit(db, &t));
        apply_ops(m, ops, n, ttl_expire);
    } else if (mode < 6) {
        /* the same ops given in place, with absolute expiries: large ones
         * are ingested, small ones encoded into the scratch batch */
        write_in_place(ops, n, ttl_expire, mode == 2);
        if (mode != 2)
            apply_ops(m, ops, n, ttl_expire);
    } else {
        CHECK_OK(lsm_write(db, b));
        apply_ops(m, ops, n, ttl_expire);
    }
    lsm_batch_free(b);
}

/* ---------------------------------------------------------------- reads */

static const lsm_read_options *read_opts(lsm_read_options *ro, lsm_snapshot *snap)
{
    lsm_read_options_init(ro);
    ro->snapshot = snap;
    ro->fill_cache = xorshift64(&rng) % 4 != 0;
    return ro;
}

static void check_get(const model *m, lsm_snapshot *snap)
{
    int k = (int) (xorshift64(&rng) % NKEYS), t = (int) (xorshift64(&rng) % NTS);
    lsm_read_options ro;
    lsm_value v = {0};
    lsm_status st = lsm_get(db, read_opts(&ro, snap), keys[k], key_lens[k], tss[t], &v);
    const cell *c = &m->c[k][t];
    if (!cell_live(c)) {
        if (st != LSM_NOT_FOUND)
            FAIL("get(%d,%d): got %s, want not found", k, t, lsm_status_name(st));
    } else if (st != LSM_OK) {
        FAIL("get(%d,%d): got %s (%s), want value", k, t, lsm_status_name(st), lsm_errmsg());
    } else {
        make_value(c->val_id, c->val_len, valbuf);
        if (v.len != c->val_len || (v.len && memcmp(v.data, valbuf, v.len) != 0) ||
            v.expire_at != c->expire_at)
            FAIL("get(%d,%d): wrong value/expiry", k, t);
    }
    lsm_value_free(&v);
}

/* A handful of random (key, ts) at once through lsm_get_many. */
static void check_get_many(const model *m, lsm_snapshot *snap)
{
    enum { MAX = 24 };
    int n = 1 + (int) (xorshift64(&rng) % MAX), ks[MAX], ts[MAX];
    lsm_key_ts q[MAX];
    static lsm_value out[MAX];
    lsm_status found[MAX];
    for (int i = 0; i < n; i++) {
        ks[i] = (int) (xorshift64(&rng) % NKEYS);
        ts[i] = (int) (xorshift64(&rng) % NTS);
        q[i] = (lsm_key_ts) {keys[ks[i]], key_lens[ks[i]], tss[ts[i]]};
    }
    lsm_read_options ro;
    CHECK_OK(lsm_get_many(db, read_opts(&ro, snap), q, (size_t) n, out, found));
    for (int i = 0; i < n; i++) {
        const cell *c = &m->c[ks[i]][ts[i]];
        if (!cell_live(c)) {
            if (found[i] != LSM_NOT_FOUND)
                FAIL("get_many(%d,%d): got %s, want not found", ks[i], ts[i],
                     lsm_status_name(found[i]));
            continue;
        }
        make_value(c->val_id, c->val_len, valbuf);
        if (found[i] != LSM_OK || out[i].len != c->val_len ||
            (out[i].len && memcmp(out[i].data, valbuf, out[i].len) != 0) ||
            out[i].expire_at != c->expire_at)
            FAIL("get_many(%d,%d): got %s or a wrong value/expiry", ks[i], ts[i],
                 lsm_status_name(found[i]));
    }
}

static void check_latest(const model *m, lsm_snapshot *snap)
{
    int k = (int) (xorshift64(&rng) % NKEYS);
    int want = -1;
    for (int t = NTS - 1; t >= 0 && want < 0; t--)
        if (cell_live(&m->c[k][t]))
            want = t;
    lsm_read_options ro;
    lsm_value v = {0};
    lsm_status st = lsm_get_latest(db, read_opts(&ro, snap), keys[k], key_lens[k], &v);
    if (want < 0 && st != LSM_NOT_FOUND) {
        FAIL("get_latest(%d): got %s ts %" PRId64 ", want not found", k, lsm_status_name(st), v.ts);
        for (int t = 0; t < NTS; t++)
            if (m->c[k][t].present)
                fprintf(stderr, "  model ts %" PRId64 " expire %" PRId64 " (now %" PRId64 ")\n",
                        tss[t], m->c[k][t].expire_at, now_secs);
    }
    else if (want >= 0 && (st != LSM_OK || v.ts != tss[want]))
        FAIL("get_latest(%d): got %s ts %" PRId64 ", want ts %" PRId64, k, lsm_status_name(st),
             v.ts, tss[want]);
    lsm_value_free(&v);
}

typedef struct scan_case {
    lsm_scan_spec spec;
    int prefix_k;      /* -1 none: prefix is keys[prefix_k] cut to prefix_len */
    int lo_k, hi_k;    /* -1 none */
} scan_case;

static bool key_in_case(const scan_case *sc, int k)
{
    const lsm_scan_spec *s = &sc->spec;
    if (s->prefix && (key_lens[k] < s->prefix_len || memcmp(keys[k], s->prefix, s->prefix_len)))
        return false;
    if (sc->lo_k >= 0 && (k < sc->lo_k || (k == sc->lo_k && s->key_lo_exclusive)))
        return false;
    if (sc->hi_k >= 0 && (k > sc->hi_k || (k == sc->hi_k && !s->key_hi_inclusive)))
        return false;
    return true;
}

static void random_scan_case(scan_case *sc)
{
    lsm_scan_spec *s = &sc->spec;
    lsm_scan_spec_init(s);
    sc->prefix_k = sc->lo_k = sc->hi_k = -1;
    uint64_t shape = xorshift64(&rng) % 8;
    if (shape & 1) {
        sc->prefix_k = (int) (xorshift64(&rng) % NKEYS);
        s->prefix = keys[sc->prefix_k];
        s->prefix_len = 1 + xorshift64(&rng) % key_lens[sc->prefix_k];
    }
    if (shape & 2) {
        sc->lo_k = (int) (xorshift64(&rng) % NKEYS);
        s->key_lo = keys[sc->lo_k];
        s->key_lo_len = key_lens[sc->lo_k];
        s->key_lo_exclusive = xorshift64(&rng) & 1;
    }
    if (shape & 4) {
        sc->hi_k = (int) (xorshift64(&rng) % NKEYS);
        s->key_hi = keys[sc->hi_k];
        s->key_hi_len = key_lens[sc->hi_k];
        s->key_hi_inclusive = xorshift64(&rng) & 1;
    }
    if (xorshift64(&rng) % 3 == 0) {
        int a = (int) (xorshift64(&rng) % NTS), b = (int) (xorshift64(&rng) % NTS);
        s->ts_min = tss[a < b ? a : b];
        s->ts_max = tss[a < b ? b : a];
    }
    s->reverse = xorshift64(&rng) & 1;
    if (xorshift64(&rng) % 2)
        s->limit = 1 + xorshift64(&rng) % 20;
}

static void check_scan(const model *m, lsm_snapshot *snap)
{
    scan_case sc;
    random_scan_case(&sc);
    const lsm_scan_spec *s = &sc.spec;
    lsm_read_options ro;
    lsm_iter *it;
    lsm_status st = lsm_iter_open(db, read_opts(&ro, snap), s, &it);
    if (st != LSM_OK) {
        FAIL("iter_open: %s (%s)", lsm_status_name(st), lsm_errmsg());
        return;
    }
    uint64_t got = 0;
    lsm_record r;
    bool bad = false;
    for (int kk = 0; kk < NKEYS && !bad; kk++) {
        int k = s->reverse ? NKEYS - 1 - kk : kk;
        if (!key_in_case(&sc, k))
            continue;
        for (int tt = 0; tt < NTS && !bad; tt++) {
            int t = s->reverse ? NTS - 1 - tt : tt;
            const cell *c = &m->c[k][t];
            if (!cell_live(c) || tss[t] < s->ts_min || tss[t] > s->ts_max)
                continue;
            if (s->limit && got >= s->limit)
                break;
            st = lsm_iter_next(it, &r);
            if (st != LSM_OK) {
                FAIL("scan: ended early (%s) at key %d ts %d after %" PRIu64, lsm_status_name(st),
                     k, t, got);
                bad = true;
                break;
            }
            make_value(c->val_id, c->val_len, valbuf);
            if (r.key_len != key_lens[k] || memcmp(r.key, keys[k], r.key_len) || r.ts != tss[t] ||
                r.value_len != c->val_len || (r.value_len && memcmp(r.value, valbuf, r.value_len))) {
                FAIL("scan: record %" PRIu64 " differs (want key %d ts %" PRId64 ", got ts %" PRId64 ")",
                     got, k, tss[t], r.ts);
                bad = true;
            }
            got++;
        }
    }
    if (!bad && lsm_iter_next(it, &r) != LSM_DONE)
        FAIL("scan: extra record after %" PRIu64 " (ts %" PRId64 ")", got, r.ts);
    lsm_iter_close(it);
}

/* ------------------------------------------------------------ the loop */

int main(void)
{
    const char *seed_env = getenv("LSM_SEED");
    const char *ops_env = getenv("LSM_MODEL_OPS");
    uint64_t seed = seed_env ? strtoull(seed_env, NULL, 10) : (uint64_t) time(NULL);
    uint64_t n_ops = ops_env ? strtoull(ops_env, NULL, 10) : 1000000;
    if (seed == 0)
        seed = 1;
    rng = seed;
    printf("test_model: seed %" PRIu64 ", %" PRIu64 " ops (LSM_SEED=%" PRIu64 " reproduces)\n",
           seed, n_ops, seed);
    fflush(stdout);
    make_universe();

    char dir[256];
    test_tempdir(dir, sizeof dir, "model");
    lsm_config_defaults(&cfg);
    snprintf(cfg.dir, sizeof cfg.dir, "%s", dir);
    cfg.memtable_size = 1 << 20;
    cfg.max_frozen_memtables = 2;
    cfg.block_size = 256;
    cfg.block_cache_size = 2 << 20;
    cfg.index_cache_size = 1 << 20;
    cfg.cache_shards = 4;
    cfg.compaction_threshold = 2;
    cfg.max_tables = 128;
    cfg.max_snapshots = 8;
    cfg.wal_segment_size = 1 << 20;
    cfg.write_wait_ms = 10000;
    /* batches carrying large values (some 250 per million ops) are ingested
     * as tables; each ingest costs several fsyncs */
    cfg.ingest_batch_size = 4500;
    db_open();

    model *live = calloc(1, sizeof *live);
    model *snap_model = calloc(1, sizeof *snap_model);
    lsm_snapshot *snap = NULL;
    for (op_no = 0; op_no < n_ops && mismatches < 10; op_no++) {
        uint64_t r = xorshift64(&rng) % 1000;
        if (r < 450)
            do_write(live);
        else if (r < 650)
            check_get(live, NULL);
        else if (r < 700)
            check_get_many(live, NULL);
        else if (r < 760)
            check_latest(live, NULL);
        else if (r < 800)
            check_scan(live, NULL);
        else if (r < 815 && snap)
            check_get(snap_model, snap);
        else if (r < 830 && snap)
            check_get_many(snap_model, snap);
        else if (r < 840 && snap)
            check_scan(snap_model, snap);
        else if (r < 843) {
            if (snap)
                lsm_snapshot_release(db, snap);
            snap = NULL;
            if (xorshift64(&rng) & 1) {
                CHECK_OK(lsm_snapshot_acquire(db, &snap));
                *snap_model = *live;
            }
        } else if (r < 850)
            now_secs += 1 + (int64_t) (xorshift64(&rng) % 5);
        else if (r < 852)
            CHECK_OK(lsm_flush(db));
        else if (r < 854) {
            bool did;
            CHECK_OK(lsm_compact_step(db, &did));
        } else if (r == 854)
            CHECK_OK(lsm_compact_full(db));
        else if (r == 855)
            CHECK_OK(lsm_gc(db, NULL));
        else if (r == 856 && xorshift64(&rng) % 20 == 0) {
            if (snap)
                lsm_snapshot_release(db, snap);
            snap = NULL;
            CHECK_OK(lsm_close(db));
            db_open();
        } else if (r < 900)
            CHECK_OK(lsm_maintenance_run(db));
        else
            check_get(live, NULL);
    }
    if (mismatches)
        fprintf(stderr, "test_model: FAILED with seed %" PRIu64 " (LSM_SEED=%" PRIu64 ")\n", seed,
                seed);
    test_checks += op_no;
    test_failed += mismatches;
    if (snap)
        lsm_snapshot_release(db, snap);
    lsm_stats st;
    CHECK_OK(lsm_get_stats(db, &st));
    printf("test_model: %" PRIu64 " flushes, %" PRIu64 " compactions, %" PRIu64 " tables\n",
           st.flushes, st.compactions, st.table_count);
    CHECK_OK(lsm_close(db));
    free(live);
    free(snap_model);
    test_rmdir(dir);
    return test_report("test_model");
}
