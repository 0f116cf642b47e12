/*
 * bench_engine.h — the few operations benchmark E needs from a storage
 * engine, so one driver (engine_bench.c) times FlowDB and RocksDB through the
 * same code.  Each adapter (engine_flowdb.c, engine_rocksdb.c) maps them onto
 * its engine's own C API as directly as it can.
 *
 * Records are (key bytes, ts, value bytes), ordered by key then ts, as in
 * lsm.h.  Every operation either succeeds or calls bench_fail(), which prints
 * the engine's message and ends the process: a benchmark that got a wrong
 * answer has no figure to report.
 *
 * Threading: a bench_db is shared; writers and readers are one per thread.
 */
#ifndef FLOWDB_BENCH_ENGINE_H
#define FLOWDB_BENCH_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bench_db bench_db;          /* one open engine directory */
typedef struct bench_writer bench_writer;  /* one batch being filled */
typedef struct bench_reader bench_reader;  /* per-thread read state */

/* One record returned by a scan; valid until the next bench_next call. */
typedef struct bench_record {
    const char *key;   size_t key_len;
    int64_t ts;
    const char *value; size_t value_len;
} bench_record;

typedef struct bench_engine {
    const char *name;
    const char *version;  /* of the library linked */
    /* Fresh engine in dir (which does not exist yet); WAL on.  sync_always:
     * every write is durable before it returns (FlowDB LSM_SYNC_ALWAYS,
     * RocksDB sync=true); otherwise no fsync per write. */
    bench_db *(*open)(const char *dir, bool sync_always);
    void (*close)(bench_db *db);

    bench_writer *(*writer_new)(bench_db *db);
    void (*put)(bench_writer *w, const char *key, size_t key_len, int64_t ts,
                const char *value, size_t value_len);
    /* Apply the batch atomically, then empty it. */
    void (*commit)(bench_writer *w);
    void (*writer_free)(bench_writer *w);

    bench_reader *(*reader_new)(bench_db *db);
    /* Value of exactly (key, ts); false if absent.  *value stays valid until
     * the next call on this reader. */
    bool (*get)(bench_reader *r, const char *key, size_t key_len, int64_t ts,
                const char **value, size_t *value_len);
    /* Start a scan over every record of one key (key != NULL), or over the
     * whole engine (key == NULL).  One scan per reader at a time. */
    void (*scan_open)(bench_reader *r, const char *key, size_t key_len);
    /* Next record in (key, ts) order; false at the end. */
    bool (*scan_next)(bench_reader *r, bench_record *rec);
    void (*scan_close)(bench_reader *r);
    void (*reader_free)(bench_reader *r);

    /* Flush memtables and merge all data into one sorted run; returns when
     * done. */
    void (*flush_compact)(bench_db *db);
} bench_engine;

extern const bench_engine bench_flowdb;
extern const bench_engine bench_rocksdb;

/* Print "engine_bench: <message>" to stderr and exit(1). */
void bench_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif /* FLOWDB_BENCH_ENGINE_H */
