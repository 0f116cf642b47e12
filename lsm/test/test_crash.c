/*
 * test_crash.c — a child writes acknowledged batches in `always` sync mode
 * and is killed with SIGKILL at random moments; after each reopen every
 * acknowledged batch is there and no batch is there in part.
 *
 * One engine directory persists across rounds.  Each round forks a child
 * that opens the engine (LSM_SYNC_ALWAYS, 1 MiB memtable, background
 * threads in 70% of rounds, so flushes and compactions are in flight when it
 * dies; without them frozen memtables pile up, so replay spans several) and
 * writes batches until the parent kills it after a random 5-200 ms from the
 * end of the child's open (15% of rounds: 0-5 ms from the fork, so the kill
 * can land inside recovery).
 *
 * Batch `id` (ids grow across rounds) holds:
 *   m<id>          a marker, never deleted: tells whether the batch survived;
 *   b<id>-<j>      K records, j < K;
 *   s<x>           overwrites of a few shared keys, value naming the batch;
 *   sometimes a range delete [b<lo>, b<hi>) of older batches' records.
 * Before writing, the child records the batch's description in a
 * MAP_SHARED array (so the parent knows what a survivor must contain), and
 * after lsm_write (or lsm_write_prepare + commit) returns OK it marks the
 * batch acknowledged; some batches are prepared and then aborted, and marked
 * so once lsm_write_abort returns.  An acknowledgement may be lost to the
 * kill, never invented, so the rules checked after each reopen are:
 *   - every acknowledged batch survived; no batch whose abort returned did;
 *   - survivors of one round are a prefix of its batches (point-in-time
 *     recovery of one sequential writer), apart from a batch being aborted;
 *   - a survivor's K records are all there with their exact values, unless
 *     a surviving later batch's range delete covers it, then none are;
 *     a batch that did not survive has none; a partial batch fails;
 *   - each shared key holds the value of the newest surviving batch that
 *     wrote it, or is absent if none did;
 *   - nothing else exists; and a batch's fate, once seen, never changes.
 *
 *   LSM_SEED=n          seed (default: time-based; always printed)
 *   LSM_CRASH_ROUNDS=n  rounds (default 50)
 */
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "testutil.h"

#define MAX_K 16            /* records per batch */
#define MAX_SHARED_PER 4    /* shared keys per batch */
#define NSHARED 64
#define ROUND_CAP 4000      /* batches one child may write */
#define MAXVAL 4000

enum batch_state { B_INTENT = 0, B_ACKED, B_ABORT_INTENT, B_ABORTED };
enum fate { F_UNKNOWN = 0, F_PRESENT, F_ABSENT };

/* What batch id contains; written by the child before the write. */
typedef struct batch_desc {
    uint8_t k;
    uint8_t n_shared;
    uint8_t shared[MAX_SHARED_PER];
    uint32_t round;
    uint32_t rd_lo, rd_hi;  /* range delete [b<rd_lo>, b<rd_hi>) if rd_hi > 0 */
} batch_desc;

typedef struct shared_state {
    _Atomic uint64_t next_id;
    _Atomic uint32_t opened;    /* the child finished lsm_open */
    _Atomic uint32_t round;
} shared_state;

static shared_state *sh;
static batch_desc *descs;
static _Atomic uint8_t *states;
static uint64_t max_ids;

/* --------------------------------------------------------------- values */

static uint32_t val_len(uint64_t id, uint32_t j)
{
    uint64_t s = id * 0x9e3779b97f4a7c15ull + j * 131 + 17;
    uint64_t r = xorshift64(&s) % 100;
    return 12 + (uint32_t) (r < 50 ? xorshift64(&s) % 100 : xorshift64(&s) % (MAXVAL - 120));
}

/* Value bytes for (kind, id, j): "<kind><id>:<j>:" then derived bytes. */
static size_t make_value(char kind, uint64_t id, uint32_t j, uint32_t len, uint8_t *out)
{
    int h = sprintf((char *) out, "%c%" PRIu64 ":%" PRIu32 ":", kind, id, j);
    uint64_t s = (id + 1) * 0x2545f4914f6cdd1dull ^ ((uint64_t) j << 32) ^ (uint64_t) kind;
    s |= 1;
    for (uint32_t i = (uint32_t) h; i < len; i++)
        out[i] = (uint8_t) (xorshift64(&s) >> 11);
    return len;
}

static bool value_is(char kind, uint64_t id, uint32_t j, uint32_t len, const uint8_t *v,
                     size_t vlen)
{
    static uint8_t want[MAXVAL];
    if (vlen != len)
        return false;
    make_value(kind, id, j, len, want);
    return memcmp(want, v, vlen) == 0;
}

static size_t marker_key(uint64_t id, char *buf) { return (size_t) sprintf(buf, "m%08" PRIu64, id); }
static size_t bkey(uint64_t id, uint32_t j, char *buf)
{
    return (size_t) sprintf(buf, "b%08" PRIu64 "-%02" PRIu32, id, j);
}
static size_t bprefix(uint64_t id, char *buf) { return (size_t) sprintf(buf, "b%08" PRIu64, id); }
static size_t skey(uint32_t x, char *buf) { return (size_t) sprintf(buf, "s%03" PRIu32, x); }

/* ---------------------------------------------------------------- config */

static void configure(lsm_config *cfg, const char *dir)
{
    lsm_config_defaults(cfg);
    snprintf(cfg->dir, sizeof cfg->dir, "%s", dir);
    cfg->memtable_size = 1u << 20;
    cfg->max_frozen_memtables = 2;
    cfg->block_size = 2048;
    cfg->block_cache_size = 1u << 20;
    cfg->index_cache_size = 1u << 20;
    cfg->cache_shards = 4;
    cfg->sync_mode = LSM_SYNC_ALWAYS;
    cfg->wal_segment_size = 1u << 20;
    cfg->compaction_threshold = 3;
    cfg->compaction_interval_ms = 5;
    cfg->max_inflight_writes = 4;
    cfg->write_wait_ms = 10000;   /* a stuck wait fails the round in 10 s */
}

/* ----------------------------------------------------------------- child */

static void build_batch(uint64_t id, uint64_t *rng, lsm_batch *b, batch_desc *d)
{
    static uint8_t val[MAXVAL];
    char key[32], end[32];
    memset(d, 0, sizeof *d);
    d->round = atomic_load(&sh->round);
    d->k = (uint8_t) (1 + xorshift64(rng) % MAX_K);
    d->n_shared = (uint8_t) (xorshift64(rng) % (MAX_SHARED_PER + 1));
    for (int i = 0; i < d->n_shared; i++)
        d->shared[i] = (uint8_t) (xorshift64(rng) % NSHARED);
    uint64_t r = xorshift64(rng) % 100;
    if (r < 5 && id > 300) {            /* trim everything older than id - 300 */
        d->rd_lo = 0;
        d->rd_hi = (uint32_t) (id - 300);
    } else if (r < 15 && id > 0) {      /* a random run of older batches */
        uint64_t back = 1 + xorshift64(rng) % (id < 2000 ? id : 2000);
        d->rd_lo = (uint32_t) (id - back);
        d->rd_hi = d->rd_lo + 1 + (uint32_t) (xorshift64(rng) % 50);
        if (d->rd_hi > id)
            d->rd_hi = (uint32_t) id;
    }
    lsm_batch_clear(b);
    lsm_status st = LSM_OK;
    /* The range delete goes first or last: it only covers older batches. */
    bool rd_first = xorshift64(rng) % 2;
    if (d->rd_hi && rd_first)
        st = lsm_batch_delete_range(b, key, bprefix(d->rd_lo, key), end, bprefix(d->rd_hi, end));
    for (uint32_t j = 0; j < d->k && st == LSM_OK; j++) {
        uint32_t len = val_len(id, j);
        make_value('b', id, j, len, val);
        st = lsm_batch_put(b, key, bkey(id, j, key), 0, val, len);
    }
    for (int i = 0; i < d->n_shared && st == LSM_OK; i++) {
        make_value('s', id, d->shared[i], 24, val);
        st = lsm_batch_put(b, key, skey(d->shared[i], key), 0, val, 24);
    }
    if (st == LSM_OK) {
        make_value('m', id, d->k, 32, val);
        st = lsm_batch_put(b, key, marker_key(id, key), 0, val, 32);
    }
    if (st == LSM_OK && d->rd_hi && !rd_first)
        st = lsm_batch_delete_range(b, key, bprefix(d->rd_lo, key), end, bprefix(d->rd_hi, end));
    if (st != LSM_OK) {
        fprintf(stderr, "child: batch build: %s\n", lsm_errmsg());
        _exit(3);
    }
}

static void child_main(const lsm_config *cfg, uint64_t seed)
{
    uint64_t rng = seed * 0x9e3779b97f4a7c15ull + atomic_load(&sh->round) * 7919 + 1;
    /* Most rounds flush and compact on background threads; the others
     * leave frozen memtables to pile up until the writer flushes inline, so
     * the WAL to replay often spans several memtables. */
    lsm_open_options opts = {.background_threads = xorshift64(&rng) % 100 < 70};
    lsm_db *db;
    if (lsm_open(cfg, NULL, 0, &opts, &db) != LSM_OK) {
        fprintf(stderr, "child: open: %s\n", lsm_errmsg());
        _exit(4);
    }
    atomic_store(&sh->opened, 1);
    lsm_batch *b = lsm_batch_new();
    for (int n = 0; n < ROUND_CAP; n++) {
        uint64_t id = atomic_load(&sh->next_id);
        if (id >= max_ids)
            break;
        uint64_t mode = xorshift64(&rng) % 100;
        build_batch(id, &rng, b, &descs[id]);
        atomic_store(&states[id], mode < 12 ? B_ABORT_INTENT : B_INTENT);
        atomic_store(&sh->next_id, id + 1);
        lsm_status st;
        if (mode >= 30) {
            st = lsm_write(db, b);
            if (st == LSM_OK)
                atomic_store(&states[id], B_ACKED);
        } else {
            lsm_ticket t;
            st = lsm_write_prepare(db, b, &t);
            if (st == LSM_OK && mode < 12) {
                st = lsm_write_abort(db, &t);
                if (st == LSM_OK)
                    atomic_store(&states[id], B_ABORTED);
            } else if (st == LSM_OK) {
                st = lsm_write_commit(db, &t);
                if (st == LSM_OK)
                    atomic_store(&states[id], B_ACKED);
            }
        }
        if (st != LSM_OK) {
            fprintf(stderr, "child: write of batch %" PRIu64 ": %s\n", id, lsm_errmsg());
            _exit(5);
        }
    }
    /* Out of batches for this round: wait to be killed. */
    for (;;)
        pause();
}

/* ---------------------------------------------------------------- verify */

typedef struct found {
    uint8_t *marker;        /* per id: marker present with a correct value */
    uint16_t *bmask;        /* per id: which b<id>-<j> records exist */
    int64_t shared[NSHARED];/* id named by s<x>, -1 absent */
    uint64_t bad_values, strays, records;
} found;

static unsigned long failures_this_round;

#define VFAIL(...) do { \
    test_failed++; \
    if (failures_this_round++ < 10) { \
        fprintf(stderr, "round %u: ", round); \
        fprintf(stderr, __VA_ARGS__); \
        fputc('\n', stderr); \
    } \
} while (0)

static uint64_t parse_id(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return UINT64_MAX;
        v = v * 10 + (uint64_t) (p[i] - '0');
    }
    return v;
}

/* One full scan, classifying every record. */
static lsm_status scan_all(lsm_db *db, uint64_t n_ids, found *f, unsigned round)
{
    lsm_scan_spec spec;
    lsm_scan_spec_init(&spec);
    lsm_iter *it;
    lsm_status st = lsm_iter_open(db, NULL, &spec, &it);
    if (st != LSM_OK)
        return st;
    for (int x = 0; x < NSHARED; x++)
        f->shared[x] = -1;
    lsm_record r;
    while ((st = lsm_iter_next(it, &r)) == LSM_OK) {
        f->records++;
        const uint8_t *k = r.key;
        if (r.key_len == 9 && k[0] == 'm') {
            uint64_t id = parse_id(k + 1, 8);
            if (id < n_ids && value_is('m', id, descs[id].k, 32, r.value, r.value_len)) {
                f->marker[id] = 1;
                continue;
            }
        } else if (r.key_len == 12 && k[0] == 'b' && k[9] == '-') {
            uint64_t id = parse_id(k + 1, 8), j = parse_id(k + 10, 2);
            if (id < n_ids && j < descs[id].k &&
                value_is('b', id, (uint32_t) j, val_len(id, (uint32_t) j), r.value,
                         r.value_len)) {
                f->bmask[id] |= (uint16_t) (1u << j);
                continue;
            }
        } else if (r.key_len == 4 && k[0] == 's') {
            uint64_t x = parse_id(k + 1, 3);
            if (x < NSHARED && r.value_len == 24 && r.value[0] == 's') {
                uint64_t id = 0;
                size_t i = 1;
                while (i < 24 && r.value[i] >= '0' && r.value[i] <= '9')
                    id = id * 10 + (uint64_t) (r.value[i++] - '0');
                if (id < n_ids && value_is('s', id, (uint32_t) x, 24, r.value, r.value_len)) {
                    f->shared[x] = (int64_t) id;
                    continue;
                }
            }
        }
        f->strays++;
        VFAIL("unexpected record %.*s ts %" PRId64 " (%zu value bytes)", (int) r.key_len,
              (const char *) r.key, r.ts, r.value_len);
    }
    lsm_iter_close(it);
    return st == LSM_DONE ? LSM_OK : st;
}

typedef struct round_summary {
    uint64_t ids, acked, aborted, survived_unacked, lost_unacked, covered;
} round_summary;

static uint8_t *fates;  /* per id: F_* as first seen after its round */

static void verify(lsm_db *db, unsigned round, uint32_t round_first_id, round_summary *sum)
{
    uint64_t n = atomic_load(&sh->next_id);
    found f = {0};
    f.marker = calloc(n + 1, 1);
    f.bmask = calloc(n + 1, sizeof *f.bmask);
    int32_t *cover = calloc(n + 2, sizeof *cover);   /* difference array */
    lsm_status st = scan_all(db, n, &f, round);
    if (st != LSM_OK)
        VFAIL("full scan: %s", lsm_errmsg());

    /* Acknowledgements, aborts, and fates fixed by earlier rounds. */
    for (uint64_t id = 0; id < n; id++) {
        uint8_t s = atomic_load(&states[id]);
        bool present = f.marker[id];
        if (s == B_ACKED && !present)
            VFAIL("acknowledged batch %" PRIu64 " is missing", id);
        if (s == B_ABORTED && present)
            VFAIL("batch %" PRIu64 " was aborted but is present", id);
        if (fates[id] && fates[id] != (present ? F_PRESENT : F_ABSENT))
            VFAIL("batch %" PRIu64 " was %s after an earlier reopen and is %s now", id,
                  fates[id] == F_PRESENT ? "present" : "absent", present ? "present" : "absent");
        fates[id] = present ? F_PRESENT : F_ABSENT;
        if (present && descs[id].rd_hi) {
            cover[descs[id].rd_lo]++;
            cover[descs[id].rd_hi]--;
        }
        if (id >= round_first_id) {
            sum->ids++;
            sum->acked += s == B_ACKED;
            sum->aborted += s == B_ABORTED;
            sum->survived_unacked += present && s != B_ACKED;
            sum->lost_unacked += !present && s != B_ACKED && s != B_ABORTED;
        }
    }
    /* Point in time: within this round, nothing survives after a lost batch
     * that was meant to commit. */
    uint64_t first_lost = UINT64_MAX;
    for (uint64_t id = round_first_id; id < n; id++) {
        uint8_t s = atomic_load(&states[id]);
        if (!f.marker[id] && s != B_ABORTED && s != B_ABORT_INTENT && first_lost == UINT64_MAX)
            first_lost = id;
        if (f.marker[id] && first_lost != UINT64_MAX)
            VFAIL("batch %" PRIu64 " survived but the earlier batch %" PRIu64 " did not", id,
                  first_lost);
    }
    /* Each batch's records: all or none. */
    int32_t covered = 0;
    for (uint64_t id = 0; id < n; id++) {
        covered += cover[id];
        uint16_t full = (uint16_t) ((1u << descs[id].k) - 1);
        uint16_t want = f.marker[id] && covered == 0 ? full : 0;
        if (f.marker[id] && covered)
            sum->covered++;     /* over every batch so far */
        if (f.bmask[id] != want) {
            bool partial = f.bmask[id] != 0 && f.bmask[id] != full;
            VFAIL("batch %" PRIu64 " (%s, state %u, %scovered by a range delete): records "
                  "%#x, expected %#x%s", id, f.marker[id] ? "marker present" : "marker absent",
                  atomic_load(&states[id]), covered ? "" : "not ", f.bmask[id], want,
                  partial ? " — PARTIAL BATCH" : "");
        }
    }
    /* Shared keys: the newest surviving writer. */
    int64_t want_shared[NSHARED];
    for (int x = 0; x < NSHARED; x++)
        want_shared[x] = -1;
    for (uint64_t id = 0; id < n; id++)
        if (f.marker[id])
            for (int i = 0; i < descs[id].n_shared; i++)
                want_shared[descs[id].shared[i]] = (int64_t) id;
    for (int x = 0; x < NSHARED; x++)
        if (f.shared[x] != want_shared[x])
            VFAIL("shared key s%03d names batch %" PRId64 ", expected %" PRId64, x, f.shared[x],
                  want_shared[x]);

    /* Point reads of the round's acknowledged batches agree with the scan. */
    lsm_value v = {0};
    char key[32];
    for (uint64_t id = round_first_id; id < n; id++) {
        if (atomic_load(&states[id]) != B_ACKED)
            continue;
        st = lsm_get(db, NULL, key, marker_key(id, key), 0, &v);
        if (st != LSM_OK || !value_is('m', id, descs[id].k, 32, v.data, v.len))
            VFAIL("get %s: %s", key, lsm_status_name(st));
        uint32_t j = (uint32_t) (id % descs[id].k);
        st = lsm_get_latest(db, NULL, key, bkey(id, j, key), &v);
        bool have = f.bmask[id] & (1u << j);
        if (have ? st != LSM_OK || !value_is('b', id, j, val_len(id, j), v.data, v.len)
                 : st != LSM_NOT_FOUND)
            VFAIL("get_latest %s: %s, scan saw it %s", key, lsm_status_name(st),
                  have ? "present" : "absent");
    }
    lsm_value_free(&v);
    test_checks += 6;
    free(f.marker);
    free(f.bmask);
    free(cover);
}

/* ------------------------------------------------------------------ main */

static void *map_shared(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    return p;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t) (ms / 1000), (long) (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

int main(void)
{
    uint64_t seed = getenv("LSM_SEED") ? strtoull(getenv("LSM_SEED"), NULL, 0)
                                       : (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 20);
    unsigned rounds = getenv("LSM_CRASH_ROUNDS") ? (unsigned) atoi(getenv("LSM_CRASH_ROUNDS")) : 50;
    printf("test_crash: seed %" PRIu64 " (LSM_SEED reproduces), %u rounds\n", seed, rounds);
    fflush(stdout);
    uint64_t rng = seed | 1;

    char dir[512];
    test_tempdir(dir, sizeof dir, "crash");
    lsm_config cfg;
    configure(&cfg, dir);
    CHECK_OK(lsm_config_validate(&cfg));

    max_ids = (uint64_t) rounds * ROUND_CAP + 1;
    sh = map_shared(sizeof *sh);
    descs = map_shared(max_ids * sizeof *descs);
    states = map_shared(max_ids * sizeof *states);
    fates = calloc(max_ids, 1);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    round_summary total = {0};
    unsigned killed_in_open = 0, rounds_done = 0;
    uint64_t dropped = 0;
    for (unsigned round = 0; round < rounds; round++) {
        atomic_store(&sh->round, round);
        atomic_store(&sh->opened, 0);
        uint32_t first_id = (uint32_t) atomic_load(&sh->next_id);
        bool from_fork = xorshift64(&rng) % 100 < 15;
        uint64_t delay = from_fork ? xorshift64(&rng) % 6 : 5 + xorshift64(&rng) % 196;
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0)
            child_main(&cfg, seed);
        if (!from_fork) {
            for (int i = 0; i < 20000 && !atomic_load(&sh->opened); i++)
                usleep(500);
            CHECK(atomic_load(&sh->opened));
        }
        sleep_ms(delay);
        killed_in_open += !atomic_load(&sh->opened);
        kill(pid, SIGKILL);
        int status;
        CHECK(waitpid(pid, &status, 0) == pid);
        bool by_kill = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
        CHECK(by_kill);
        if (!by_kill)
            fprintf(stderr, "round %u: child ended with status %#x, not by SIGKILL\n", round,
                    status);

        lsm_db *db;
        lsm_status st = lsm_open(&cfg, NULL, 0, NULL, &db);
        CHECK(st == LSM_OK);
        if (st != LSM_OK) {
            fprintf(stderr, "round %u: reopen after kill: %s\n", round, lsm_errmsg());
            break;
        }
        failures_this_round = 0;
        round_summary sum = {0};
        verify(db, round, first_id, &sum);
        lsm_stats stats;
        CHECK_OK(lsm_get_stats(db, &stats));
        dropped += stats.wal_records_dropped;
        /* The seq counter survives reopening once any batch reached the
         * WAL (acknowledged, aborted after its prepare, or found present).
         * A child killed between taking its first id and writing that
         * batch leaves next_id > 0 with nothing written. */
        bool written = total.acked + total.aborted + total.survived_unacked + sum.acked +
                       sum.aborted + sum.survived_unacked > 0;
        CHECK(stats.last_seq > 0 || !written);
        CHECK_OK(lsm_close(db));
        rounds_done++;
        total.ids += sum.ids;
        total.acked += sum.acked;
        total.aborted += sum.aborted;
        total.survived_unacked += sum.survived_unacked;
        total.lost_unacked += sum.lost_unacked;
        total.covered = sum.covered;
        if (failures_this_round) {
            fprintf(stderr, "round %u: %lu failures (seed %" PRIu64 ")\n", round,
                    failures_this_round, seed);
            break;
        }
        if (getenv("LSM_CRASH_VERBOSE"))
            printf("  round %u: %s %" PRIu64 " ms, %" PRIu64 " batches (%" PRIu64 " acked, %"
                   PRIu64 " aborted), %" PRIu64 " tables, %" PRIu64 " flushes\n", round,
                   from_fork ? "killed after fork +" : "killed after open +", delay, sum.ids,
                   sum.acked, sum.aborted, stats.table_count, stats.flushes);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("  %u rounds in %.1f s (%u killed before open finished): %" PRIu64 " batches written, "
           "%" PRIu64 " acknowledged, %" PRIu64 " aborted; %" PRIu64 " unacknowledged survived, "
           "%" PRIu64 " unacknowledged lost; at the end %" PRIu64 " surviving batches covered by range deletes; %"
           PRIu64 " WAL records dropped at recovery\n", rounds_done, secs, killed_in_open, total.ids,
           total.acked, total.aborted, total.survived_unacked, total.lost_unacked, total.covered,
           dropped);
    printf("  checked after every reopen: acknowledged batches present, aborted absent, no "
           "partial batch, point-in-time prefix, shared keys = newest survivor, no strays, fates "
           "stable\n");
    CHECK(total.acked > 0);
    test_rmdir(dir);
    if (test_failed)
        fprintf(stderr, "test_crash: FAILED with seed %" PRIu64 "\n", seed);
    return test_report("test_crash");
}
