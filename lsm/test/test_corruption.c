/*
 * test_corruption.c — damaged WAL, SST and MANIFEST files against the
 * public API.
 *
 * A deterministic dataset is built in a child process that "crashes"
 * (_exit without lsm_close): four flushed phases (one compacted) live in
 * SSTs, the last phase only in WAL segments (several, via memtable
 * switches), including two-phase commits and one aborted, tagged batch that
 * the recovery filter rejects.  Every batch carries a marker key m<batch>,
 * so the set of markers visible after recovery tells how many batches
 * survived; values are a pure function of (key, ts, batch), so any returned
 * value can be checked.
 *
 * Each round (seeded xorshift64; LSM_SEED reproduces, LSM_ROUNDS sets the
 * count, LSM_ROUND runs one round) copies the pristine directory, damages
 * one file (byte flips, truncation, zeroed range) and opens it in a forked
 * child under alarm(20), asserting:
 *   WAL       open succeeds with exactly the batches before the first damaged
 *             record (point in time; wal_records_dropped > 0 when damaged
 *             bytes remain), or fails naming the file; after the recovery a
 *             new write survives a crash and a reopen drops nothing.
 *   SST       every read returns exactly the right data, or LSM_CORRUPT
 *             naming the damaged file (scans: a correct prefix, then the
 *             error); verify_checksums=false never crashes; verified reads
 *             after unverified ones are still right (no cache poisoning).
 *   MANIFEST  a damaged complete record fails open with LSM_CORRUPT naming
 *             MANIFEST; a torn tail may be dropped, and then every returned
 *             record must be one that was written.
 * Fixed cases: SST truncated to 0 / below the footer / deleted, garbage WAL
 * segments, an empty MANIFEST, a non-final WAL segment cut at a record
 * boundary.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

#include "testutil.h"

/* ------------------------------------------------------------ dataset */

#define NKEYS 1200
#define NTS 3
#define MARKER_ID 0xFFFFu
#define ABORT_BATCH 0x7FFFFFF0u
#define ABORT_TAG 77u
#define N_SST_PHASES 4
#define SST_PHASE_BATCHES 150
#define WAL_BATCHES 1100
#define N_SST_BATCHES (N_SST_PHASES * SST_PHASE_BATCHES)
#define TOTAL_BATCHES (N_SST_BATCHES + WAL_BATCHES)
#define ABORT_AFTER (N_SST_BATCHES + WAL_BATCHES / 2) /* aborted batch goes before this one */
#define MAX_VALUE 512

enum { OP_PUT = 1, OP_DEL = 2, OP_RANGE = 3 };
typedef struct op {
    uint8_t kind, slot;
    uint16_t a, b;  /* key id; range [a, b) */
} op;

static op *ops;
static uint32_t *batch_first, *batch_nops;  /* TOTAL_BATCHES + 1 (abort batch last) */
static uint64_t data_seed;

static int64_t slot_ts(int slot) { return (int64_t) slot * 1000 - 1000; }

static int ts_slot(int64_t ts)
{
    for (int s = 0; s < NTS; s++)
        if (slot_ts(s) == ts)
            return s;
    return -1;
}

static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* The value of (key, slot) written by batch: self-describing (batch in the
 * first 4 bytes), half of them compressible. */
static size_t gen_value(uint32_t key_id, int slot, uint32_t batch, uint8_t *buf)
{
    uint64_t h = mix64(data_seed ^ ((uint64_t) batch << 24) ^ ((uint64_t) key_id << 4) ^
                       (uint64_t) slot);
    size_t len = 8 + (size_t) (h % 300);
    uint32_t id = key_id | ((uint32_t) slot << 24);
    memcpy(buf, &batch, 4);
    memcpy(buf + 4, &id, 4);
    uint64_t s = h | 1;
    for (size_t i = 8; i < len; i++)
        buf[i] = (h & 1) ? (uint8_t) ('a' + (i * (h >> 8 & 7)) % 26) : (uint8_t) xorshift64(&s);
    return len;
}

static void key_name(char *buf, uint32_t key_id) { snprintf(buf, 16, "k%05u", key_id); }
static void marker_name(char *buf, uint32_t batch) { snprintf(buf, 16, "m%06u", batch); }

static uint32_t n_ops, cap_ops;

static void add_op(op o)
{
    if (n_ops == cap_ops) {
        cap_ops = cap_ops ? 2 * cap_ops : 4096;
        ops = realloc(ops, cap_ops * sizeof *ops);
        if (!ops)
            exit(2);
    }
    ops[n_ops++] = o;
}

static void gen_batch(uint32_t idx, uint64_t salt)
{
    uint64_t r = mix64(data_seed ^ (salt * 0x1234567ull)) | 1;
    uint32_t n = 1 + (uint32_t) (xorshift64(&r) % 12);
    batch_first[idx] = n_ops;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t pick = (uint32_t) (xorshift64(&r) % 100);
        op o = {0};
        o.a = (uint16_t) (xorshift64(&r) % NKEYS);
        o.slot = (uint8_t) (xorshift64(&r) % NTS);
        if (pick < 80) {
            o.kind = OP_PUT;
        } else if (pick < 93) {
            o.kind = OP_DEL;
        } else {
            o.kind = OP_RANGE;
            o.b = (uint16_t) (o.a + 1 + xorshift64(&r) % 6);
        }
        add_op(o);
    }
    batch_nops[idx] = n;
}

static void gen_dataset(void)
{
    batch_first = calloc(TOTAL_BATCHES + 1, sizeof *batch_first);
    batch_nops = calloc(TOTAL_BATCHES + 1, sizeof *batch_nops);
    for (uint32_t b = 0; b < TOTAL_BATCHES; b++)
        gen_batch(b, b + 1);
    gen_batch(TOTAL_BATCHES, 999999);  /* the aborted one */
}

/* cell[k][s] = batch whose put is visible, or -1. */
static int32_t cell[NKEYS][NTS];

static void model_state(uint32_t P)
{
    for (int k = 0; k < NKEYS; k++)
        for (int s = 0; s < NTS; s++)
            cell[k][s] = -1;
    for (uint32_t b = 0; b < P; b++)
        for (uint32_t i = 0; i < batch_nops[b]; i++) {
            const op *o = &ops[batch_first[b] + i];
            if (o->kind == OP_PUT)
                cell[o->a][o->slot] = (int32_t) b;
            else if (o->kind == OP_DEL)
                cell[o->a][o->slot] = -1;
            else
                for (int k = o->a; k < o->b && k < NKEYS; k++)
                    for (int s = 0; s < NTS; s++)
                        cell[k][s] = -1;
        }
}

/* Did batch b (a model batch) put (key, slot)? */
static bool batch_put(uint32_t b, uint32_t key_id, int slot)
{
    if (b >= TOTAL_BATCHES)
        return false;
    for (uint32_t i = 0; i < batch_nops[b]; i++) {
        const op *o = &ops[batch_first[b] + i];
        if (o->kind == OP_PUT && o->a == key_id && o->slot == slot)
            return true;
    }
    return false;
}

/* ------------------------------------------------------------ engine */

static void make_config(lsm_config *cfg, const char *dir)
{
    lsm_config_defaults(cfg);
    snprintf(cfg->dir, sizeof cfg->dir, "%s", dir);
    cfg->memtable_size = 4 << 20;  /* the whole WAL phase fits in one */
    cfg->max_frozen_memtables = 8;
    cfg->block_size = 1024;
    cfg->block_cache_size = 2 << 20;
    cfg->index_cache_size = 1 << 20;
    cfg->cache_shards = 1;
    cfg->wal_segment_size = 1 << 20;
    cfg->compaction_threshold = 64;
    cfg->max_tables = 64;
    cfg->max_snapshots = 16;
    cfg->write_wait_ms = 5000;
    cfg->sync_mode = LSM_SYNC_INTERVAL;
}

static bool keep_tag(uint64_t tag, void *arg)
{
    (void) arg;
    return tag != ABORT_TAG;
}

static lsm_status open_dir(const char *dir, lsm_db **db)
{
    lsm_config cfg;
    make_config(&cfg, dir);
    lsm_open_options o = {.tag_filter = keep_tag};
    return lsm_open(&cfg, NULL, 0, &o, db);
}

static lsm_status fill_batch(lsm_batch *bt, uint32_t b, uint32_t value_batch, bool marker)
{
    char k[16], k2[16];
    uint8_t v[MAX_VALUE];
    lsm_status st = LSM_OK;
    lsm_batch_clear(bt);
    lsm_batch_set_ttl(bt, 0);
    if (marker) {
        marker_name(k, value_batch);
        size_t n = gen_value(MARKER_ID, 0, value_batch, v);
        st = lsm_batch_put(bt, k, strlen(k), 0, v, n);
    } else {
        /* the aborted batch: a key no model batch writes */
        snprintf(k, sizeof k, "a-aborted");
        st = lsm_batch_put(bt, k, strlen(k), 0, "x", 1);
    }
    for (uint32_t i = 0; st == LSM_OK && i < batch_nops[b]; i++) {
        const op *o = &ops[batch_first[b] + i];
        key_name(k, o->a);
        if (o->kind == OP_PUT) {
            size_t n = gen_value(o->a, o->slot, value_batch, v);
            st = lsm_batch_put(bt, k, strlen(k), slot_ts(o->slot), v, n);
        } else if (o->kind == OP_DEL) {
            st = lsm_batch_delete(bt, k, strlen(k), slot_ts(o->slot));
        } else {
            key_name(k2, o->b);
            st = lsm_batch_delete_range(bt, k, strlen(k), k2, strlen(k2));
        }
    }
    return st;
}

#define BUILD_OK(expr) do { lsm_status s_ = (expr); if (s_ != LSM_OK) { \
    fprintf(stderr, "build: %s -> %s: %s\n", #expr, lsm_status_name(s_), lsm_errmsg()); \
    _exit(3); } } while (0)

/* Runs in a child: writes everything, then exits without closing. */
static void build_dataset(const char *dir)
{
    lsm_db *db;
    BUILD_OK(open_dir(dir, &db));
    lsm_batch *bt = lsm_batch_new();
    for (uint32_t b = 0; b < TOTAL_BATCHES; b++) {
        if (b == ABORT_AFTER) {
            lsm_ticket t;
            BUILD_OK(fill_batch(bt, TOTAL_BATCHES, ABORT_BATCH, false));
            lsm_batch_set_tag(bt, ABORT_TAG);
            BUILD_OK(lsm_write_prepare(db, bt, &t));
            BUILD_OK(lsm_write_abort(db, &t));
        }
        BUILD_OK(fill_batch(bt, b, b, true));
        if (b >= N_SST_BATCHES && b % 10 == 3) {
            lsm_ticket t;
            lsm_batch_set_tag(bt, 1000 + b);
            BUILD_OK(lsm_write_prepare(db, bt, &t));
            BUILD_OK(lsm_write_commit(db, &t));
        } else {
            BUILD_OK(lsm_write(db, bt));
        }
        if ((b + 1) % SST_PHASE_BATCHES == 0 && b < N_SST_BATCHES) {
            BUILD_OK(lsm_flush(db));
            if (b + 1 == 2 * SST_PHASE_BATCHES)
                BUILD_OK(lsm_compact_full(db));
        }
    }
    BUILD_OK(lsm_wal_sync(db));
    _exit(0);  /* crash: no lsm_close */
}

/* ------------------------------------------------------------ files */

static bool copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    bool ok = in >= 0 && out >= 0;
    char buf[1 << 16];
    ssize_t n;
    while (ok && (n = read(in, buf, sizeof buf)) > 0)
        ok = write(out, buf, (size_t) n) == n;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return ok;
}

static void copy_dir(const char *from, const char *to)
{
    test_rmdir(to);
    if (mkdir(to, 0700) != 0) {
        perror(to);
        exit(2);
    }
    DIR *d = opendir(from);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char a[2048], b[2048];
        snprintf(a, sizeof a, "%s/%s", from, de->d_name);
        snprintf(b, sizeof b, "%s/%s", to, de->d_name);
        if (!copy_file(a, b)) {
            fprintf(stderr, "copy %s failed\n", a);
            exit(2);
        }
    }
    closedir(d);
}

static uint8_t *read_whole(const char *path, size_t *len)
{
    struct stat sb;
    *len = 0;
    if (stat(path, &sb) != 0)
        return NULL;
    uint8_t *p = malloc((size_t) sb.st_size + 1);
    int fd = open(path, O_RDONLY);
    ssize_t got = fd >= 0 ? read(fd, p, (size_t) sb.st_size) : -1;
    if (fd >= 0)
        close(fd);
    if (got != (ssize_t) sb.st_size) {
        free(p);
        return NULL;
    }
    *len = (size_t) sb.st_size;
    return p;
}

static void write_whole(const char *path, const uint8_t *p, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || (len && write(fd, p, len) != (ssize_t) len)) {
        perror(path);
        exit(2);
    }
    close(fd);
}

enum { KIND_WAL, KIND_SST, KIND_MANIFEST };
typedef struct file_list { char names[64][256]; int n; } file_list;

static void list_kind(const char *dir, int kind, file_list *fl)
{
    fl->n = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL && fl->n < 64) {
        const char *nm = de->d_name;
        size_t l = strlen(nm);
        bool match = kind == KIND_WAL ? (strncmp(nm, "wal-", 4) == 0 && l > 4 &&
                                         strcmp(nm + l - 4, ".log") == 0)
                   : kind == KIND_SST ? (l > 4 && strcmp(nm + l - 4, ".sst") == 0)
                                      : strcmp(nm, "MANIFEST") == 0;
        if (match)
            snprintf(fl->names[fl->n++], sizeof fl->names[0], "%.200s", nm);
    }
    closedir(d);
    /* sorted by name = by number (fixed width) */
    for (int i = 1; i < fl->n; i++)
        for (int j = i; j > 0 && strcmp(fl->names[j - 1], fl->names[j]) > 0; j--) {
            char t[sizeof fl->names[0]];
            memcpy(t, fl->names[j], sizeof t);
            memcpy(fl->names[j], fl->names[j - 1], sizeof t);
            memcpy(fl->names[j - 1], t, sizeof t);
        }
}

/* ------------------------------------------------------------ WAL map */

/* Where each model batch's WAL record lies (from parsing the pristine WAL
 * per WAL_MANIFEST_FORMAT.md). */
typedef struct wal_rec { int seg; uint64_t start, end; int64_t batch; } wal_rec;
static wal_rec wrecs[TOTAL_BATCHES + 64];
static int n_wrecs;
static file_list wal_files;
static size_t wal_sizes[64];

static uint32_t le32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

static size_t get_varint(const uint8_t *p, size_t n, uint64_t *v)
{
    *v = 0;
    for (size_t i = 0; i < n && i < 10; i++) {
        *v |= (uint64_t) (p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80))
            return i + 1;
    }
    return 0;
}

/* Batch index of a BATCH payload (its first op is the marker put), or -1. */
static int64_t payload_batch(const uint8_t *p, size_t len)
{
    uint64_t kl, vl;
    if (len < 1 || p[0] != 1)
        return -1;
    size_t o = 1, n;
    if (!(n = get_varint(p + o, len - o, &kl)))
        return -1;
    o += n;
    if (!(n = get_varint(p + o, len - o, &vl)))
        return -1;
    o += n + 16;
    if (o + kl > len || kl != 7 || p[o] != 'm')
        return -1;
    char buf[8];
    memcpy(buf, p + o + 1, 6);
    buf[6] = 0;
    return atoll(buf);
}

static void map_wal(const char *dir)
{
    list_kind(dir, KIND_WAL, &wal_files);
    n_wrecs = 0;
    for (int s = 0; s < wal_files.n; s++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, wal_files.names[s]);
        size_t len;
        uint8_t *p = read_whole(path, &len);
        wal_sizes[s] = len;
        uint64_t pos = 32;
        while (p && pos + 36 <= len) {
            bool padding = true;  /* the engine zero-extends segments ahead */
            for (int z = 0; z < 28 && padding; z++)
                padding = p[pos + z] == 0;
            if (padding)
                break;
            uint32_t plen = le32(p + pos);
            uint64_t end = pos + 28 + plen + 8;
            if (end > len)
                break;
            wal_rec *w = &wrecs[n_wrecs++];
            w->seg = s;
            w->start = pos;
            w->end = end;
            w->batch = p[pos + 24] == 1 ? payload_batch(p + pos + 28, plen) : -1;
            pos = end;
        }
        bool tail_zero = true;
        for (uint64_t z = pos; p && z < len && tail_zero; z++)
            tail_zero = p[z] == 0;
        if (!tail_zero)
            fprintf(stderr, "map_wal: %s: records end at %" PRIu64 " of %zu\n", path, pos, len);
        free(p);
    }
}

/* ------------------------------------------------------------ reads */

typedef struct rec { char key[16]; int64_t ts; uint8_t *val; size_t len; } rec;
typedef struct scan_res { rec *r; size_t n, cap; lsm_status st; char msg[512]; } scan_res;

static void scan_free(scan_res *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->r[i].val);
    free(s->r);
    memset(s, 0, sizeof *s);
}

static void scan_run(lsm_db *db, bool verify, const lsm_scan_spec *spec, scan_res *out)
{
    memset(out, 0, sizeof *out);
    lsm_read_options ro;
    lsm_read_options_init(&ro);
    ro.verify_checksums = verify;
    lsm_iter *it = NULL;
    out->st = lsm_iter_open(db, &ro, spec, &it);
    if (out->st != LSM_OK) {
        snprintf(out->msg, sizeof out->msg, "%s", lsm_errmsg());
        return;
    }
    lsm_record r;
    while ((out->st = lsm_iter_next(it, &r)) == LSM_OK) {
        if (out->n == out->cap) {
            out->cap = out->cap ? 2 * out->cap : 1024;
            out->r = realloc(out->r, out->cap * sizeof *out->r);
        }
        rec *x = &out->r[out->n++];
        memset(x, 0, sizeof *x);
        snprintf(x->key, sizeof x->key, "%.*s", (int) (r.key_len < 15 ? r.key_len : 15),
                 (const char *) r.key);
        if (r.key_len >= 15)
            x->key[0] = '?';
        x->ts = r.ts;
        x->len = r.value_len;
        x->val = malloc(r.value_len + 1);
        memcpy(x->val, r.value, r.value_len);
    }
    if (out->st != LSM_DONE)
        snprintf(out->msg, sizeof out->msg, "%s", lsm_errmsg());
    lsm_iter_close(it);
}

/* Expected records of state(P) (call model_state(P) first). */
typedef struct exp_rec { char key[16]; int64_t ts; uint32_t key_id, batch; int slot; } exp_rec;
static exp_rec *expv;
static size_t n_exp;

static void build_expected(uint32_t P)
{
    free(expv);
    expv = malloc((NKEYS * NTS + P + 1) * sizeof *expv);
    n_exp = 0;
    for (uint32_t k = 0; k < NKEYS; k++)
        for (int s = 0; s < NTS; s++)
            if (cell[k][s] >= 0) {
                exp_rec *e = &expv[n_exp++];
                key_name(e->key, k);
                e->ts = slot_ts(s);
                e->key_id = k;
                e->slot = s;
                e->batch = (uint32_t) cell[k][s];
            }
    for (uint32_t b = 0; b < P; b++) {
        exp_rec *e = &expv[n_exp++];
        marker_name(e->key, b);
        e->ts = 0;
        e->key_id = MARKER_ID;
        e->slot = 0;
        e->batch = b;
    }
}

static bool value_is(const uint8_t *v, size_t len, uint32_t key_id, int slot, uint32_t batch)
{
    uint8_t want[MAX_VALUE];
    size_t n = gen_value(key_id, slot, batch, want);
    return len == n && memcmp(v, want, n) == 0;
}

static bool rec_matches(const rec *r, const exp_rec *e)
{
    return strcmp(r->key, e->key) == 0 && r->ts == e->ts &&
           value_is(r->val, r->len, e->key_id, e->slot, e->batch);
}

/* A record that some model batch wrote (MANIFEST damage: the state may be
 * any mixture, but never garbage). */
static bool rec_valid(const char *key, int64_t ts, const uint8_t *v, size_t len)
{
    if (len < 8)
        return false;
    uint32_t batch;
    memcpy(&batch, v, 4);
    if (key[0] == 'm' && strlen(key) == 7)
        return ts == 0 && (uint32_t) atoi(key + 1) == batch && batch < TOTAL_BATCHES &&
               value_is(v, len, MARKER_ID, 0, batch);
    int slot = ts_slot(ts);
    if (key[0] != 'k' || strlen(key) != 6 || slot < 0)
        return false;
    uint32_t k = (uint32_t) atoi(key + 1);
    return k < NKEYS && batch_put(batch, k, slot) && value_is(v, len, k, slot, batch);
}

static bool error_names(lsm_status st, const char *msg, const char *name)
{
    return st == LSM_CORRUPT && name && strstr(msg, name) != NULL;
}

/* Failure report inside a round child. */
#define RFAIL(...) do { test_checks++; test_failed++; \
    fprintf(stderr, "  [%s] ", round_desc); fprintf(stderr, __VA_ARGS__); \
    fputc('\n', stderr); } while (0)
#define RCHECK(cond, ...) do { if (cond) test_checks++; else RFAIL(__VA_ARGS__); } while (0)

static char round_desc[512];

/* Outcome tallies, shared with the round children. */
enum { OUT_OPEN_FAILED, OUT_READ_CORRUPT, OUT_CLEAN, OUT_TORN_ACCEPTED, OUT_DROPPED, N_OUT };
static volatile unsigned *outcomes;  /* [kind][N_OUT] */
static void tally(int kind, int what) { __atomic_fetch_add(&outcomes[kind * N_OUT + what], 1, __ATOMIC_RELAXED); }
static int cur_kind;
static bool saw_corrupt;

/* Compares a scan with expv[lo..hi) (reversed if rev).  err_name: a CORRUPT
 * error naming it ends the scan acceptably; NULL: no error allowed. */
static void check_scan(const scan_res *s, size_t lo, size_t hi, bool rev, const char *err_name,
                       const char *what)
{
    size_t want = hi - lo;
    size_t n = s->n < want ? s->n : want;
    for (size_t i = 0; i < n; i++) {
        const exp_rec *e = &expv[rev ? hi - 1 - i : lo + i];
        if (!rec_matches(&s->r[i], e)) {
            RFAIL("%s: record %zu is %s@%" PRId64 " (len %zu), want %s@%" PRId64 " batch %u", what,
                  i, s->r[i].key, s->r[i].ts, s->r[i].len, e->key, e->ts, e->batch);
            return;
        }
    }
    if (s->st == LSM_DONE) {
        RCHECK(s->n == want, "%s: %zu records, want %zu", what, s->n, want);
    } else {
        RCHECK(s->n <= want, "%s: %zu records before error, want <= %zu", what, s->n, want);
        saw_corrupt = true;
        RCHECK(error_names(s->st, s->msg, err_name), "%s: ended with %s \"%s\" (allowed: corrupt naming %s)",
               what, lsm_status_name(s->st), s->msg, err_name ? err_name : "nothing");
    }
}

static size_t lower_bound(const char *key)
{
    size_t lo = 0, hi = n_exp;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(expv[mid].key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Point reads against cell[] / P. */
static void check_gets(lsm_db *db, uint32_t P, uint64_t *rng, const char *err_name, bool verify,
                       bool judge)
{
    lsm_read_options ro;
    lsm_read_options_init(&ro);
    ro.verify_checksums = verify;
    lsm_value v = {0};
    char k[16];
    for (int i = 0; i < 300; i++) {
        uint32_t key_id = (uint32_t) (xorshift64(rng) % NKEYS);
        int slot = (int) (xorshift64(rng) % NTS);
        key_name(k, key_id);
        lsm_status st = lsm_get(db, &ro, k, strlen(k), slot_ts(slot), &v);
        if (!judge)
            continue;
        int32_t want = cell[key_id][slot];
        if (st == LSM_OK)
            RCHECK(want >= 0 && v.ts == slot_ts(slot) &&
                   value_is(v.data, v.len, key_id, slot, (uint32_t) want),
                   "get %s@%d returned a wrong value (len %zu), want batch %d", k, slot, v.len, want);
        else if (st == LSM_NOT_FOUND)
            RCHECK(want < 0, "get %s@%d not found, want batch %d", k, slot, want);
        else if ((saw_corrupt = true))
            RCHECK(error_names(st, lsm_errmsg(), err_name), "get %s@%d -> %s \"%s\"", k, slot,
                   lsm_status_name(st), lsm_errmsg());
    }
    for (int i = 0; i < 100; i++) {
        uint32_t key_id = (uint32_t) (xorshift64(rng) % NKEYS);
        key_name(k, key_id);
        lsm_status st = lsm_get_latest(db, &ro, k, strlen(k), &v);
        if (!judge)
            continue;
        int s = NTS - 1;
        while (s >= 0 && cell[key_id][s] < 0)
            s--;
        if (st == LSM_OK)
            RCHECK(s >= 0 && v.ts == slot_ts(s) &&
                   value_is(v.data, v.len, key_id, s, (uint32_t) cell[key_id][s]),
                   "get_latest %s wrong (ts %" PRId64 ", len %zu)", k, v.ts, v.len);
        else if (st == LSM_NOT_FOUND)
            RCHECK(s < 0, "get_latest %s not found", k);
        else
            RCHECK(error_names(st, lsm_errmsg(), err_name), "get_latest %s -> %s \"%s\"", k,
                   lsm_status_name(st), lsm_errmsg());
    }
    /* markers around the survival boundary and a few random ones */
    for (int i = 0; i < 24; i++) {
        uint32_t b = i < 4 ? (uint32_t) (P + i - 2) : (uint32_t) (xorshift64(rng) % TOTAL_BATCHES);
        if (b >= TOTAL_BATCHES)
            continue;
        marker_name(k, b);
        lsm_status st = lsm_get(db, &ro, k, strlen(k), 0, &v);
        if (!judge)
            continue;
        if (st == LSM_OK)
            RCHECK(b < P && value_is(v.data, v.len, MARKER_ID, 0, b), "get %s wrong (P=%u)", k, P);
        else if (st == LSM_NOT_FOUND)
            RCHECK(b >= P, "get %s not found (P=%u)", k, P);
        else
            RCHECK(error_names(st, lsm_errmsg(), err_name), "get %s -> %s \"%s\"", k,
                   lsm_status_name(st), lsm_errmsg());
    }
    lsm_value_free(&v);
}

/* Full check of state(P): forward, reverse and a range scan plus gets.
 * err_name NULL: every read must succeed. */
static void check_state(lsm_db *db, uint32_t P, uint64_t *rng, const char *err_name, bool verify)
{
    model_state(P);
    build_expected(P);
    lsm_scan_spec sp;
    scan_res s;
    lsm_scan_spec_init(&sp);
    scan_run(db, verify, &sp, &s);
    check_scan(&s, 0, n_exp, false, err_name, "forward scan");
    scan_free(&s);
    sp.reverse = true;
    scan_run(db, verify, &sp, &s);
    check_scan(&s, 0, n_exp, true, err_name, "reverse scan");
    scan_free(&s);
    char lo[16], hi[16];
    uint32_t a = (uint32_t) (xorshift64(rng) % NKEYS), b = a + (uint32_t) (xorshift64(rng) % 200);
    key_name(lo, a);
    key_name(hi, b);
    lsm_scan_spec_init(&sp);
    sp.key_lo = lo;
    sp.key_lo_len = strlen(lo);
    sp.key_hi = hi;
    sp.key_hi_len = strlen(hi);
    scan_run(db, verify, &sp, &s);
    check_scan(&s, lower_bound(lo), lower_bound(hi), false, err_name, "range scan");
    scan_free(&s);
    check_gets(db, P, rng, err_name, verify, true);
}

/* Survivors of WAL damage: markers must be m0..m(P-1); returns P. */
static uint32_t observed_batches(lsm_db *db)
{
    lsm_scan_spec sp;
    lsm_scan_spec_init(&sp);
    sp.prefix = "m";
    sp.prefix_len = 1;
    scan_res s;
    scan_run(db, true, &sp, &s);
    RCHECK(s.st == LSM_DONE, "marker scan -> %s \"%s\"", lsm_status_name(s.st), s.msg);
    uint32_t P = 0;
    bool contiguous = true;
    for (size_t i = 0; i < s.n; i++) {
        char want[16];
        marker_name(want, (uint32_t) i);
        if (strcmp(s.r[i].key, want) != 0 && contiguous) {
            contiguous = false;
            RFAIL("not point in time: marker %zu is %s (batches missing before later ones)", i,
                  s.r[i].key);
        }
    }
    P = (uint32_t) s.n;
    scan_free(&s);
    return P;
}

static uint64_t dropped_count(lsm_db *db)
{
    lsm_stats st;
    memset(&st, 0, sizeof st);
    lsm_get_stats(db, &st);
    return st.wal_records_dropped;
}

/* ------------------------------------------------------------ rounds */

typedef struct round_plan {
    int kind;
    char file[64];        /* damaged file's name */
    bool changed;         /* any byte differs from pristine */
    bool torn_only;       /* MANIFEST: only a tail was lost (truncation/zero-to-end) */
    uint32_t P_expected;  /* WAL */
    bool expect_dropped;  /* WAL */
    bool sst_reads_must_fail;
    bool open_must_fail;
    bool unverified_first;
} round_plan;

static char pristine[1100], work[1100];

static void wal_round(const round_plan *pl, uint64_t *rng)
{
    pid_t pid = fork();
    if (pid == 0) {
        /* first recovery, verification, a new write, then a crash */
        lsm_db *db = NULL;
        lsm_status st = open_dir(work, &db);
        if (st != LSM_OK) {
            RCHECK(strstr(lsm_errmsg(), pl->file) != NULL,
                   "open failed with %s \"%s\", which does not name %s", lsm_status_name(st),
                   lsm_errmsg(), pl->file);
            tally(KIND_WAL, OUT_OPEN_FAILED);
            _exit(test_failed ? 1 : 4);
        }
        uint64_t dropped = dropped_count(db);
        uint32_t P = observed_batches(db);
        tally(KIND_WAL, dropped ? OUT_DROPPED : OUT_CLEAN);
        RCHECK(P == pl->P_expected, "%u batches survived, want %u (point in time at the damage)",
               P, pl->P_expected);
        if (pl->expect_dropped)
            RCHECK(dropped > 0, "wal_records_dropped = 0 though damaged records remained");
        else
            RCHECK(dropped == 0, "wal_records_dropped = %" PRIu64 ", want 0", dropped);
        if (test_failed)
            _exit(1);  /* the state is not state(P): comparing it would only add noise */
        check_state(db, P, rng, NULL, true);
        lsm_batch *bt = lsm_batch_new();
        lsm_batch_put(bt, "znew", 4, 5, "after", 5);
        RCHECK(lsm_write(db, bt) == LSM_OK, "write after recovery: %s", lsm_errmsg());
        RCHECK(lsm_wal_sync(db) == LSM_OK, "sync after recovery: %s", lsm_errmsg());
        lsm_batch_free(bt);
        fflush(stderr);
        _exit(test_failed ? 1 : (int) (P == pl->P_expected ? 0 : 1));
    }
    int status;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) {
        RFAIL("first open killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
        return;
    }
    int code = WEXITSTATUS(status);
    if (code == 4)
        return;  /* open failed, naming the file: accepted */
    if (code != 0) {
        RFAIL("first open/verification failed (exit %d)", code);
        return;
    }
    /* second recovery: the damage is gone, the new write is kept */
    lsm_db *db = NULL;
    lsm_status st = open_dir(work, &db);
    RCHECK(st == LSM_OK, "reopen after recovery -> %s \"%s\"", lsm_status_name(st), lsm_errmsg());
    if (st != LSM_OK)
        return;
    RCHECK(dropped_count(db) == 0, "reopen after recovery dropped %" PRIu64 " WAL records",
           dropped_count(db));
    uint32_t P = observed_batches(db);
    RCHECK(P == pl->P_expected, "reopen: %u batches, want %u", P, pl->P_expected);
    lsm_value v = {0};
    st = lsm_get(db, NULL, "znew", 4, 5, &v);
    RCHECK(st == LSM_OK && v.len == 5 && memcmp(v.data, "after", 5) == 0,
           "record written after the recovery lost on reopen (%s)", lsm_status_name(st));
    lsm_value_free(&v);
    lsm_batch *bt = lsm_batch_new();
    lsm_batch_delete(bt, "znew", 4, 5);
    RCHECK(lsm_write(db, bt) == LSM_OK, "delete znew: %s", lsm_errmsg());
    lsm_batch_free(bt);
    check_state(db, P, rng, NULL, true);
    lsm_close(db);
}

static void sst_round(const round_plan *pl, uint64_t *rng)
{
    lsm_db *db = NULL;
    lsm_status st = open_dir(work, &db);
    if (pl->open_must_fail) {
        RCHECK(st == LSM_CORRUPT && strstr(lsm_errmsg(), pl->file) != NULL,
               "open with a missing table -> %s \"%s\", want corrupt naming %s",
               lsm_status_name(st), lsm_errmsg(), pl->file);
        if (st == LSM_OK)
            lsm_close(db);
        return;
    }
    if (st != LSM_OK) {
        RCHECK(strstr(lsm_errmsg(), pl->file) != NULL, "open -> %s \"%s\", does not name %s",
               lsm_status_name(st), lsm_errmsg(), pl->file);
        tally(KIND_SST, OUT_OPEN_FAILED);
        return;
    }
    RCHECK(dropped_count(db) == 0, "SST damage made the WAL replay drop records");
    uint64_t rng2 = *rng;
    if (pl->unverified_first) {
        model_state(TOTAL_BATCHES);
        build_expected(TOTAL_BATCHES);
        lsm_scan_spec sp;
        scan_res s;
        lsm_scan_spec_init(&sp);
        scan_run(db, false, &sp, &s);
        scan_free(&s);
        check_gets(db, TOTAL_BATCHES, &rng2, NULL, false, false);
    }
    check_state(db, TOTAL_BATCHES, rng, pl->file, true);
    if (pl->sst_reads_must_fail) {
        lsm_scan_spec sp;
        scan_res s;
        lsm_scan_spec_init(&sp);
        scan_run(db, true, &sp, &s);
        RCHECK(s.st != LSM_DONE, "full scan ignored the damaged table %s", pl->file);
        scan_free(&s);
    }
    if (!pl->unverified_first) {
        lsm_scan_spec sp;
        scan_res s;
        lsm_scan_spec_init(&sp);
        scan_run(db, false, &sp, &s);
        scan_free(&s);
        sp.reverse = true;
        scan_run(db, false, &sp, &s);
        scan_free(&s);
        check_gets(db, TOTAL_BATCHES, &rng2, NULL, false, false);
        /* verified reads after unverified ones: no poisoned cache */
        check_state(db, TOTAL_BATCHES, rng, pl->file, true);
    }
    tally(KIND_SST, saw_corrupt ? OUT_READ_CORRUPT : OUT_CLEAN);
    lsm_close(db);
}

static void manifest_round(const round_plan *pl, uint64_t *rng)
{
    lsm_db *db = NULL;
    lsm_status st = open_dir(work, &db);
    if (st != LSM_OK) {
        RCHECK(pl->changed, "open of an unchanged directory failed: %s", lsm_errmsg());
        tally(KIND_MANIFEST, OUT_OPEN_FAILED);
        RCHECK(st == LSM_CORRUPT && strstr(lsm_errmsg(), "MANIFEST") != NULL,
               "open -> %s \"%s\", want corrupt naming MANIFEST", lsm_status_name(st),
               lsm_errmsg());
        return;
    }
    RCHECK(!pl->changed || pl->torn_only,
           "open accepted a MANIFEST whose complete records were damaged");
    tally(KIND_MANIFEST, pl->changed ? OUT_TORN_ACCEPTED : OUT_CLEAN);
    if (!pl->changed) {
        check_state(db, TOTAL_BATCHES, rng, NULL, true);
    } else {
        /* torn tail dropped: edits may be lost, but nothing may be garbage */
        lsm_scan_spec sp;
        scan_res s;
        lsm_scan_spec_init(&sp);
        scan_run(db, true, &sp, &s);
        RCHECK(s.st == LSM_DONE, "scan after torn MANIFEST -> %s \"%s\"", lsm_status_name(s.st),
               s.msg);
        for (size_t i = 0; i < s.n; i++)
            if (!rec_valid(s.r[i].key, s.r[i].ts, s.r[i].val, s.r[i].len)) {
                RFAIL("scan returned a record nobody wrote: %s@%" PRId64 " len %zu", s.r[i].key,
                      s.r[i].ts, s.r[i].len);
                break;
            }
        scan_free(&s);
        lsm_value v = {0};
        char k[16];
        for (int i = 0; i < 200; i++) {
            uint32_t key_id = (uint32_t) (xorshift64(rng) % NKEYS);
            int slot = (int) (xorshift64(rng) % NTS);
            key_name(k, key_id);
            st = lsm_get(db, NULL, k, strlen(k), slot_ts(slot), &v);
            RCHECK(st == LSM_NOT_FOUND || (st == LSM_OK && rec_valid(k, v.ts, v.data, v.len)),
                   "get %s@%d after torn MANIFEST -> %s", k, slot, lsm_status_name(st));
        }
        lsm_value_free(&v);
    }
    lsm_close(db);
}

/* Runs fn in a child under alarm(20); a signal death or failed checks fail
 * the round. */
static void run_isolated(const round_plan *pl, uint64_t round_seed)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(20);
        test_checks = test_failed = 0;
        uint64_t rng = round_seed | 1;
        if (pl->kind == KIND_WAL)
            wal_round(pl, &rng);
        else if (pl->kind == KIND_SST)
            sst_round(pl, &rng);
        else
            manifest_round(pl, &rng);
        fflush(stderr);
        _exit(test_failed ? 1 : 0);
    }
    int status;
    waitpid(pid, &status, 0);
    test_checks++;
    if (WIFSIGNALED(status)) {
        test_failed++;
        fprintf(stderr, "[%s] round child killed by signal %d (%s)%s\n", round_desc,
                WTERMSIG(status), strsignal(WTERMSIG(status)),
                WTERMSIG(status) == SIGALRM ? " — a hang" : "");
    } else if (WEXITSTATUS(status) != 0) {
        test_failed++;
        fprintf(stderr, "[%s] failed (exit %d)\n", round_desc, WEXITSTATUS(status));
    }
}

/* ------------------------------------------------------------ damage */

enum { DMG_FLIP, DMG_TRUNC, DMG_ZERO };
static const char *dmg_name[] = {"flip", "truncate", "zero"};

/* Applies one random damage to work/<name>; returns the first changed
 * offset (SIZE_MAX if nothing changed) and the new size. */
static size_t damage_file(const char *name, int how, uint64_t *rng, size_t *new_size, char *desc,
                          size_t desc_len, bool *to_end)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", work, name);
    size_t len;
    uint8_t *orig = read_whole(path, &len);
    uint8_t *p = malloc(len + 1);
    memcpy(p, orig, len);
    size_t n = len;
    *to_end = false;
    if (len == 0) {
        how = -1;
        snprintf(desc, desc_len, "empty file untouched");
    } else if (how == DMG_FLIP) {
        int flips = 1 + (int) (xorshift64(rng) % 8);
        /* half the time near the end (footers, last records) */
        size_t region = (xorshift64(rng) & 1) && len > 300 ? 300 : len;
        int o = snprintf(desc, desc_len, "flip");
        for (int i = 0; i < flips; i++) {
            size_t off = len - region + (size_t) (xorshift64(rng) % region);
            uint8_t mask = (uint8_t) (1 + xorshift64(rng) % 255);
            p[off] ^= mask;
            if (o < (int) desc_len - 24)
                o += snprintf(desc + o, desc_len - (size_t) o, " %zu^%02x", off, mask);
        }
    } else if (how == DMG_TRUNC) {
        n = (size_t) (xorshift64(rng) % len);
        *to_end = true;
        snprintf(desc, desc_len, "truncate %zu -> %zu", len, n);
    } else {
        size_t off = (size_t) (xorshift64(rng) % len);
        size_t zl = 1 + (size_t) (xorshift64(rng) % 4096);
        if (zl > len - off)
            zl = len - off;
        memset(p + off, 0, zl);
        *to_end = off + zl == len;
        snprintf(desc, desc_len, "zero [%zu, %zu) of %zu", off, off + zl, len);
    }
    write_whole(path, p, n);
    size_t first = SIZE_MAX;
    for (size_t i = 0; i < n; i++)
        if (p[i] != orig[i]) {
            first = i;
            break;
        }
    if (first == SIZE_MAX && n < len)
        first = n;
    *new_size = n;
    free(p);
    free(orig);
    return first;
}

/* Does the (damaged) WAL segment seg in work/ hold a non-zero byte in
 * [from, to)? */
static bool nonzero_between(int seg, uint64_t from, size_t to)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", work, wal_files.names[seg]);
    size_t len;
    uint8_t *p = read_whole(path, &len);
    bool any = false;
    for (size_t i = (size_t) from; p && i < to && i < len && !any; i++)
        any = p[i] != 0;
    free(p);
    return any;
}

/* Point-in-time expectation for damage at `first` in WAL segment seg. */
static void wal_expectation(int seg, size_t first, size_t new_size, round_plan *pl)
{
    if (first == SIZE_MAX) {
        pl->P_expected = TOTAL_BATCHES;
        pl->expect_dropped = false;
        return;
    }
    uint64_t data_end = 32;  /* where seg's records end and its zero padding starts */
    for (int i = 0; i < n_wrecs; i++)
        if (wrecs[i].seg == seg && wrecs[i].end > data_end)
            data_end = wrecs[i].end;
    if (first >= data_end && !nonzero_between(seg, data_end, new_size)) {
        /* truncated or zeroed inside the padding: nothing was lost */
        pl->P_expected = TOTAL_BATCHES;
        pl->expect_dropped = false;
        return;
    }
    uint64_t stop = 0;  /* the last record boundary at or before the damage */
    uint32_t P = N_SST_BATCHES;
    for (int i = 0; i < n_wrecs; i++) {
        const wal_rec *w = &wrecs[i];
        if (w->seg < seg || (w->seg == seg && first >= 32 && w->end <= first)) {
            if (w->batch >= 0)
                P++;
            if (w->seg == seg)
                stop = w->end;
        }
    }
    if (first >= 32 && stop == 0)
        stop = 32;
    if (first < 32)
        stop = 0;
    bool later = false;
    for (int s = seg + 1; s < wal_files.n; s++)
        later |= wal_sizes[s] > 0;
    pl->P_expected = P;
    /* Zero bytes after the stop point read as the zero padding the engine
     * extends segments with (a clean end), so only non-zero ones count. */
    pl->expect_dropped = nonzero_between(seg, stop, new_size) || later;
}

static int n_open_failed[3], n_rounds_kind[3];

static void random_round(int r, uint64_t seed)
{
    uint64_t rng = mix64(seed ^ (uint64_t) r * 0x9E37ull) | 1;
    round_plan pl;
    memset(&pl, 0, sizeof pl);
    pl.kind = r % 3;
    file_list fl;
    list_kind(pristine, pl.kind, &fl);
    if (fl.n == 0)
        return;
    int fi = (int) (xorshift64(&rng) % (uint64_t) fl.n);
    snprintf(pl.file, sizeof pl.file, "%.60s", fl.names[fi]);
    int how = (int) (xorshift64(&rng) % 3);
    copy_dir(pristine, work);
    char desc[256];
    size_t new_size;
    bool to_end;
    size_t first = damage_file(pl.file, how, &rng, &new_size, desc, sizeof desc, &to_end);
    pl.changed = first != SIZE_MAX;
    pl.torn_only = to_end;
    pl.unverified_first = xorshift64(&rng) & 1;
    if (pl.kind == KIND_WAL) {
        int seg = -1;
        for (int s = 0; s < wal_files.n; s++)
            if (strcmp(wal_files.names[s], pl.file) == 0)
                seg = s;
        wal_expectation(seg, first, new_size, &pl);
    }
    snprintf(round_desc, sizeof round_desc, "seed %" PRIu64 " round %d: %s %s: %s (%s)", seed, r,
             pl.kind == KIND_WAL ? "WAL" : pl.kind == KIND_SST ? "SST" : "MANIFEST", pl.file,
             desc, dmg_name[how]);
    if (getenv("LSM_VERBOSE"))
        fprintf(stderr, "%s\n", round_desc);
    n_rounds_kind[pl.kind]++;
    unsigned long before = test_failed;
    run_isolated(&pl, rng);
    (void) before;
}

/* ------------------------------------------------------------ fixed cases */

static void fixed_sst_cases(uint64_t seed)
{
    file_list fl;
    list_kind(pristine, KIND_SST, &fl);
    for (int i = 0; i < fl.n; i++) {
        char path[2048];
        size_t len;
        snprintf(path, sizeof path, "%s/%s", pristine, fl.names[i]);
        uint8_t *orig = read_whole(path, &len);
        size_t cuts[] = {0, 100, len > 261 ? len - 261 : 0, len - 1, len - 13};
        for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
            round_plan pl;
            memset(&pl, 0, sizeof pl);
            pl.kind = KIND_SST;
            pl.sst_reads_must_fail = true;
            snprintf(pl.file, sizeof pl.file, "%.60s", fl.names[i]);
            copy_dir(pristine, work);
            snprintf(path, sizeof path, "%s/%s", work, fl.names[i]);
            write_whole(path, orig, cuts[c]);
            snprintf(round_desc, sizeof round_desc, "fixed: SST %s truncated %zu -> %zu",
                     fl.names[i], len, cuts[c]);
            run_isolated(&pl, seed + c);
        }
        /* metadata blocks damaged and first loaded by an unverified read:
         * later verified reads must still not trust them.  Filter handle
         * at footer offset 16, index handle at 4 (SST_FORMAT.md). */
        for (int which = 0; which < 2 && len >= 261; which++) {
            const uint8_t *foot = orig + len - 261;
            uint64_t off;
            uint32_t size;
            memcpy(&off, foot + (which ? 4 : 16), 8);
            memcpy(&size, foot + (which ? 12 : 24), 4);
            if (size < 15 || off + size > len)
                continue;
            uint8_t *p = malloc(len);
            memcpy(p, orig, len);
            if (which == 0)
                memset(p + off, 0, size - 14);  /* every bloom bit clear, k kept */
            else
                p[off + (size - 13) / 2] ^= 0x5a;
            round_plan pl;
            memset(&pl, 0, sizeof pl);
            pl.kind = KIND_SST;
            pl.unverified_first = true;
            snprintf(pl.file, sizeof pl.file, "%.60s", fl.names[i]);
            copy_dir(pristine, work);
            snprintf(path, sizeof path, "%s/%s", work, fl.names[i]);
            write_whole(path, p, len);
            free(p);
            snprintf(round_desc, sizeof round_desc,
                     "fixed: SST %s %s block damaged, first read unverified", fl.names[i],
                     which ? "index" : "filter");
            run_isolated(&pl, seed + 7);
        }
        free(orig);
        round_plan pl;
        memset(&pl, 0, sizeof pl);
        pl.kind = KIND_SST;
        pl.open_must_fail = true;
        snprintf(pl.file, sizeof pl.file, "%.60s", fl.names[i]);
        copy_dir(pristine, work);
        snprintf(path, sizeof path, "%s/%s", work, fl.names[i]);
        unlink(path);
        snprintf(round_desc, sizeof round_desc, "fixed: SST %s deleted", fl.names[i]);
        run_isolated(&pl, seed);
    }
}

static void fixed_wal_cases(uint64_t seed)
{
    uint64_t last = 0;
    sscanf(wal_files.names[wal_files.n - 1], "wal-%" SCNu64 ".log", &last);
    uint64_t segs[] = {last + 1, last + 3, 0};
    uint64_t rng = seed | 1;
    for (int i = 0; i < 3; i++) {
        for (int body = 0; body < 2; body++) {
            round_plan pl;
            memset(&pl, 0, sizeof pl);
            pl.kind = KIND_WAL;
            snprintf(pl.file, sizeof pl.file, "wal-%016" PRIu64 ".log", segs[i]);
            copy_dir(pristine, work);
            char path[2048];
            snprintf(path, sizeof path, "%s/%s", work, pl.file);
            uint8_t junk[5000];
            size_t n = body ? sizeof junk : 20;
            for (size_t j = 0; j < n; j++)
                junk[j] = (uint8_t) xorshift64(&rng);
            write_whole(path, junk, n);
            pl.P_expected = TOTAL_BATCHES;
            pl.expect_dropped = segs[i] > last;
            snprintf(round_desc, sizeof round_desc, "fixed: garbage %zu-byte WAL segment %s",
                     n, pl.file);
            run_isolated(&pl, seed + (uint64_t) i);
        }
    }
    /* a non-final segment cut exactly at a record boundary */
    if (wal_files.n >= 2) {
        int seg = 0;
        uint64_t cut = 0;
        int nrec = 0;
        for (int i = 0; i < n_wrecs; i++)
            if (wrecs[i].seg == seg && ++nrec == 10)
                cut = wrecs[i].end;
        round_plan pl;
        memset(&pl, 0, sizeof pl);
        pl.kind = KIND_WAL;
        snprintf(pl.file, sizeof pl.file, "%.60s", wal_files.names[seg]);
        copy_dir(pristine, work);
        char path[2048];
        size_t len;
        snprintf(path, sizeof path, "%s/%s", work, pl.file);
        uint8_t *p = read_whole(path, &len);
        write_whole(path, p, cut);
        free(p);
        wal_expectation(seg, cut, cut, &pl);
        snprintf(round_desc, sizeof round_desc,
                 "fixed: non-final WAL segment %s cut at record boundary %" PRIu64 " of %zu",
                 pl.file, cut, len);
        run_isolated(&pl, seed);
    }
}

static void fixed_manifest_cases(uint64_t seed)
{
    round_plan pl;
    memset(&pl, 0, sizeof pl);
    pl.kind = KIND_MANIFEST;
    pl.changed = true;
    snprintf(pl.file, sizeof pl.file, "MANIFEST");
    copy_dir(pristine, work);
    char path[2048];
    snprintf(path, sizeof path, "%s/MANIFEST", work);
    write_whole(path, (const uint8_t *) "", 0);
    snprintf(round_desc, sizeof round_desc, "fixed: empty MANIFEST");
    run_isolated(&pl, seed);
    /* header only: every table edit gone, but the file is well-formed */
    copy_dir(pristine, work);
    size_t len;
    uint8_t *p = read_whole(path, &len);
    write_whole(path, p, 16);
    free(p);
    pl.torn_only = true;
    snprintf(round_desc, sizeof round_desc, "fixed: MANIFEST cut to its header");
    run_isolated(&pl, seed);
}

/* An undamaged WAL holding more than one memtable of batches (the crash
 * left a frozen memtable behind) must recover: replay flushes mid-way. */
static void replay_beyond_memtable(const char *base)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%.1000s/bigwal", base);
    lsm_config cfg;
    make_config(&cfg, dir);
    cfg.memtable_size = 1 << 20;
    cfg.write_wait_ms = 1000;
    pid_t pid = fork();
    if (pid == 0) {
        lsm_db *db;
        BUILD_OK(lsm_open(&cfg, NULL, 0, NULL, &db));
        lsm_batch *b = lsm_batch_new();
        char k[32], v[200];
        memset(v, 'v', sizeof v);
        for (int i = 0; i < 10000; i++) {
            lsm_batch_clear(b);
            snprintf(k, sizeof k, "key%06d", i);
            BUILD_OK(lsm_batch_put(b, k, strlen(k), 1, v, sizeof v));
            BUILD_OK(lsm_write(db, b));
        }
        BUILD_OK(lsm_wal_sync(db));
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    lsm_db *db = NULL;
    lsm_status st = lsm_open(&cfg, NULL, 0, NULL, &db);
    if (st != LSM_OK)
        fprintf(stderr, "recovery of a WAL bigger than one memtable -> %s \"%s\"\n",
                lsm_status_name(st), lsm_errmsg());
    CHECK(st == LSM_OK);
    if (st == LSM_OK) {
        lsm_scan_spec sp;
        scan_res s;
        lsm_scan_spec_init(&sp);
        scan_run(db, true, &sp, &s);
        CHECK(s.st == LSM_DONE && s.n == 10000);
        CHECK(dropped_count(db) == 0);
        scan_free(&s);
        lsm_close(db);
    }
}

/* ------------------------------------------------------------ main */

int main(void)
{
    const char *se = getenv("LSM_SEED");
    uint64_t seed = se ? strtoull(se, NULL, 0) : (uint64_t) time(NULL) ^ (uint64_t) getpid() << 16;
    if (!seed)
        seed = 1;
    int rounds = getenv("LSM_ROUNDS") ? atoi(getenv("LSM_ROUNDS")) : 210;
    int only = getenv("LSM_ROUND") ? atoi(getenv("LSM_ROUND")) : -1;
    printf("test_corruption: seed %" PRIu64 " (LSM_SEED=%" PRIu64 " reproduces)\n", seed, seed);
    fflush(stdout);
    data_seed = mix64(seed);
    gen_dataset();
    outcomes = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (outcomes == MAP_FAILED)
        return 2;

    char base[1024];
    test_tempdir(base, sizeof base, "corruption");
    snprintf(pristine, sizeof pristine, "%s/pristine", base);
    snprintf(work, sizeof work, "%s/work", base);

    pid_t pid = fork();
    if (pid == 0)
        build_dataset(pristine);
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (test_failed) {
        test_rmdir(base);
        return test_report("test_corruption");
    }
    map_wal(pristine);
    file_list sl;
    list_kind(pristine, KIND_SST, &sl);
    int wal_batches = 0;
    bool order_ok = true;
    for (int i = 0; i < n_wrecs; i++)
        if (wrecs[i].batch >= 0) {
            order_ok &= wrecs[i].batch == N_SST_BATCHES + wal_batches;
            wal_batches++;
        }
    printf("test_corruption: dataset %d batches: %d SSTs, %d WAL segments with %d records\n",
           TOTAL_BATCHES, sl.n, wal_files.n, n_wrecs);
    CHECK(order_ok && wal_batches == WAL_BATCHES);  /* the WAL map is what we think it is */
    CHECK(wal_files.n >= 2 && sl.n >= 3);

    /* the pristine copy recovers everything and drops nothing */
    snprintf(round_desc, sizeof round_desc, "pristine");
    {
        round_plan pl;
        memset(&pl, 0, sizeof pl);
        pl.kind = KIND_WAL;
        snprintf(pl.file, sizeof pl.file, "none");
        pl.P_expected = TOTAL_BATCHES;
        copy_dir(pristine, work);
        run_isolated(&pl, seed);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (only < 0) {
        replay_beyond_memtable(base);
        fixed_sst_cases(seed);
        fixed_wal_cases(seed);
        fixed_manifest_cases(seed);
    }
    for (int r = 0; r < rounds; r++)
        if (only < 0 || r == only)
            random_round(r, seed);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("test_corruption: %d WAL, %d SST, %d MANIFEST random rounds in %.1f s\n",
           n_rounds_kind[0], n_rounds_kind[1], n_rounds_kind[2],
           (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9);
    (void) n_open_failed;
    (void) cur_kind;
    static const char *kn[] = {"WAL", "SST", "MANIFEST"};
    for (int k = 0; k < 3; k++)
        printf("  %-8s open failed %u, reads hit corrupt %u, torn tail accepted %u, "
               "records dropped %u, clean %u\n", kn[k], outcomes[k * N_OUT + OUT_OPEN_FAILED],
               outcomes[k * N_OUT + OUT_READ_CORRUPT], outcomes[k * N_OUT + OUT_TORN_ACCEPTED],
               outcomes[k * N_OUT + OUT_DROPPED], outcomes[k * N_OUT + OUT_CLEAN]);
    if (!test_failed || !getenv("LSM_KEEP"))
        test_rmdir(base);
    else
        fprintf(stderr, "kept %s\n", base);
    return test_report("test_corruption");
}
