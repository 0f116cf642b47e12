/*
 * region.h — the layout of the engine's shared memory region.
 *
 * Everything that more than one process must see lives here; the region is
 * addressed by offsets from its base so it works at any mapping address.
 *
 *   region_header | memtable slots | table slots | version pool |
 *   in-flight write slots | data block cache | index/filter cache
 *
 * Locks (process-shared pthread mutexes), in the only order they nest:
 *   flush_mu -> compact_mu -> write_mu -> manifest_mu -> version_mu -> inflight_mu
 *   -> sync_mu
 *   flush_mu     one flusher at a time
 *   compact_mu   one compaction / GC at a time
 *   write_mu     WAL append + memtable insert + memtable switch; the single
 *                memtable writer
 *   manifest_mu  a manifest edit together with the version change it
 *                describes (flush, compaction, GC, ingest), so a manifest
 *                rewrite never snapshots a version that lacks a logged edit
 *   version_mu   the current version, version pool, table and memtable slot
 *                states and reference counts
 *   inflight_mu  seq assignment, in-flight batches, visible_seq
 *   sync_mu      one WAL fsync at a time (group commit)
 *
 * Visibility: visible_seq is the largest seq such that every batch with a
 * seq <= it is committed or aborted.  Readers take visible_seq first and a
 * version after, so the version contains every entry they may see.
 */
#ifndef LSM_REGION_H
#define LSM_REGION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "histogram.h"
#include "lsm.h"
#include "memtable.h"
#include "table_meta.h"

#define REGION_MAGIC 0x464c4f57444c534dull /* "FLOWDLSM" */
#define REGION_VERSION 1
#define MAX_MEMTABLES 65 /* 1 active + 64 frozen */

/* INIT -> RECOVERING (host only: internal flushes run) -> READY (attach,
 * public calls) -> CLOSED. */
enum region_state { REGION_INIT = 0, REGION_READY = 1, REGION_CLOSED = 2, REGION_RECOVERING = 3 };
/* Memtable slots: FREE -> ACTIVE -> FROZEN -> OBSOLETE (flushed) -> FREE once
 * no version references it.  Table slots: FREE -> RESERVED (being written)
 * -> LIVE -> OBSOLETE (compacted away) -> DELETING -> FREE once unreferenced. */
enum slot_state {
    SLOT_FREE = 0, SLOT_ACTIVE, SLOT_FROZEN, SLOT_RESERVED, SLOT_LIVE, SLOT_OBSOLETE, SLOT_DELETING
};

typedef struct mem_slot {
    uint32_t state;          /* slot_state: FREE, ACTIVE, FROZEN */
    uint32_t refs;           /* versions referencing it (version_mu) */
    uint64_t first_wal_seg;  /* oldest WAL segment holding its entries */
    uint64_t gen;            /* bumps at each reuse */
    uint64_t offset;         /* memtable offset from region base */
} mem_slot;

typedef struct table_slot {
    uint32_t state;          /* FREE, LIVE (in current version), OBSOLETE */
    uint32_t refs;           /* versions referencing it (version_mu) */
    int64_t min_expire_hint; /* smallest non-zero expire_at; INT64_MIN unknown */
    table_meta meta;
} table_slot;

/* An immutable set of sources, newest first: memtables then tables.
 * pins = generation << 32 | count, count = readers + 1 while current.  A
 * slot's generation bumps when it is freed, and a count of 0 is never
 * raised again, so a reader's CAS pin cannot land on a freed or reused
 * slot (version.c). */
typedef struct version {
    _Atomic uint64_t pins;
    uint32_t in_use;
    uint32_t n_mem, n_tables;
    uint32_t mem[MAX_MEMTABLES];
    uint32_t tables[];       /* max_tables entries */
} version;

typedef struct inflight_slot {
    uint64_t first_seq;      /* 0 = slot free */
    uint32_t count;
    uint32_t mem_index;      /* memtable slot its nodes live in */
    uint32_t arena_from, arena_to;
    int32_t ingest_table;    /* table slot + 1 of an ingested batch (ingest.c); 0 = none */
    uint64_t ingest_wal_seg; /* the WAL segment holding its INGEST record */
} inflight_slot;

/* Read counters are bumped by every get from every process: one cache line
 * per stripe, a process (thread) always using the same stripe, so readers
 * in different processes do not bounce one line between cores. */
#define READ_STRIPES 16
typedef struct read_stripe {
    _Atomic uint64_t records, bytes;
    char pad[64 - 2 * sizeof(uint64_t)];
} read_stripe;

typedef struct region_stats {
    _Atomic uint64_t records_written, bytes_written;
    _Atomic uint32_t next_read_stripe;
    read_stripe reads[READ_STRIPES] __attribute__((aligned(64)));
    _Atomic uint64_t flushes, compactions, gc_runs, records_purged;
    _Atomic uint64_t wal_bytes, wal_records_dropped, write_stalls;
    _Atomic uint64_t ingests;
    _Atomic uint64_t ingests_streamed;
    _Atomic uint64_t raw_bytes_flushed, sst_bytes_flushed;
    histogram write_latency, read_latency, flush_latency;
} region_stats;

typedef struct region_header {
    uint64_t magic;
    uint32_t format_version;
    _Atomic uint32_t state;
    size_t total_size;
    lsm_config cfg;

    uint64_t off_memtables, memtable_stride;
    uint64_t off_tables, off_versions, version_stride, off_inflight;
    uint64_t off_data_cache, off_index_cache;
    uint32_t n_mem_slots, n_versions;

    pthread_mutex_t flush_mu, compact_mu, write_mu, manifest_mu, version_mu, inflight_mu, sync_mu;
    pthread_cond_t stall_cv;        /* with version_mu: a memtable slot freed */
    pthread_cond_t inflight_cv;     /* with inflight_mu: an in-flight batch ended */
    pthread_mutex_t maint_mu;
    pthread_cond_t maint_cv;        /* maintenance may be due */
    uint32_t maint_pending;

    /* write_mu */
    uint32_t active_mem;            /* memtable slot index */
    uint64_t wal_seg, wal_offset;   /* current segment and append offset */
    uint64_t wal_last_seq;          /* last seq of a BATCH record in the WAL */
    uint64_t wal_zeroed;            /* current segment is zero-filled below this */
    _Atomic uint64_t wal_written;   /* logical WAL bytes ever written */
    _Atomic uint64_t wal_synced;    /* logical WAL bytes known durable */
    /* inflight_mu */
    _Atomic uint64_t last_seq;
    _Atomic uint64_t visible_seq;
    /* version_mu (current_tag is also read lock-free) */
    uint32_t current_version;
    _Atomic uint64_t current_tag;   /* generation << 32 | current_version */
    _Atomic uint64_t version_gen;   /* bumps when the current version changes */
    uint64_t next_file_no;
    uint64_t log_number;
    _Atomic uint64_t manifest_gen;  /* bumps when MANIFEST is rewritten */
    uint64_t manifest_bytes;        /* manifest_mu */
    uint64_t manifest_base_bytes;   /* size right after the last rewrite */

    _Atomic int64_t last_sync_ms, last_compact_ms, last_gc_ms;
    region_stats stats;
} region_header;

static inline void *region_at(const region_header *h, uint64_t off)
{
    return (char *) h + off;
}

static inline mem_slot *region_mem_slot(region_header *h, uint32_t i);
static inline memtable *region_memtable(region_header *h, uint32_t i);

/* Memtable slots are stored as [mem_slot | memtable arena] strides. */
static inline mem_slot *region_mem_slot(region_header *h, uint32_t i)
{
    return (mem_slot *) region_at(h, h->off_memtables + (uint64_t) i * h->memtable_stride);
}

static inline memtable *region_memtable(region_header *h, uint32_t i)
{
    return (memtable *) region_at(h, region_mem_slot(h, i)->offset);
}

static inline table_slot *region_table(region_header *h, uint32_t i)
{
    return (table_slot *) region_at(h, h->off_tables) + i;
}

static inline version *region_version(region_header *h, uint32_t i)
{
    return (version *) region_at(h, h->off_versions + (uint64_t) i * h->version_stride);
}

static inline inflight_slot *region_inflight(region_header *h, uint32_t i)
{
    return (inflight_slot *) region_at(h, h->off_inflight) + i;
}

size_t region_size_for(const lsm_config *cfg);
/* Lays out and initialises every structure of a fresh region. */
lsm_status region_init(region_header *h, size_t size, const lsm_config *cfg);

#endif /* LSM_REGION_H */
