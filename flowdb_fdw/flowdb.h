/*
 * flowdb.h — the Postgres-facing module's internal interfaces.
 *
 * Pieces (one file each):
 *   module.c   _PG_init: refuses to load outside shared_preload_libraries,
 *              defines GUCs, installs shared-memory hooks, the worker and the
 *              transaction callbacks.
 *   guc.c      the flowdb.* settings and the lsm_config built from them.
 *   shmem.c    the engine region + FlowdbControl in Postgres shared memory.
 *   worker.c   the background worker hosting the engine (recovery with the
 *              clog-based tag filter, maintenance loop, clean close).
 *   engine.c   a backend's lazily attached engine handle, status -> SQLSTATE
 *              mapping, the registry that closes iterators on error/exit.
 *   keys.c     key encoding (database OID / kind / keyspace / user key), the
 *              keyspace catalog lookup cache, and the OID lookup of the
 *              extension's catalog tables (flowdb.keyspaces, jsondb.stores).
 *   xact.c     per-transaction write buffer, savepoints, 2-phase commit into
 *              the engine at PRE_COMMIT / COMMIT / ABORT.
 *   cursor.c   a scan that merges the transaction's own writes with an engine
 *              iterator.
 *   functions.c / admin.c   the SQL-callable functions.
 */
#ifndef FLOWDB_H
#define FLOWDB_H

#include "postgres.h"

#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/spin.h"

#include "lsm.h"

/* ----------------------------------------------------------------- GUCs */

extern char *flowdb_data_dir;
extern int	flowdb_memtable_size_mb;
extern int	flowdb_max_frozen_memtables;
extern int	flowdb_block_size;
extern int	flowdb_bloom_bits_per_key;
extern int	flowdb_block_cache_mb;
extern int	flowdb_index_memory_mb;
extern int	flowdb_wal_sync_mode;	/* an lsm_sync_mode value */
extern int	flowdb_wal_sync_interval_ms;
extern int	flowdb_wal_segment_size_mb;
extern int	flowdb_compaction_threshold;
extern int	flowdb_max_size_amp_percent;
extern int	flowdb_compaction_interval_ms;
extern int	flowdb_gc_interval_secs;
extern int	flowdb_default_ttl_secs;
extern int	flowdb_time_bucket_secs;

extern void flowdb_define_gucs(void);
/* The engine configuration from the GUCs (slot counts sized by MaxBackends
 * once it is known).  Does not validate. */
extern void flowdb_build_config(lsm_config *cfg);

/* ------------------------------------------------------- shared memory */

typedef struct FlowdbControl
{
	slock_t		mutex;			/* protects the fields below except ready */
	pg_atomic_uint32 ready;		/* 1 while the worker has the engine open */
	pid_t		worker_pid;
	Size		region_size;	/* bytes of the engine region after this struct */
	char		last_error[512];	/* worker's last open failure, "" if none */
} FlowdbControl;

extern FlowdbControl *flowdb_ctl;
extern void *flowdb_region;

extern void flowdb_install_shmem_hooks(void);

/* --------------------------------------------------------------- worker */

extern void flowdb_register_worker(void);
extern PGDLLEXPORT void flowdb_worker_main(Datum arg);

/* ------------------------------------------------- engine (per backend) */

/* This backend's engine handle; waits for the worker and attaches on first
 * use.  Errors (55000/57P03) if the engine does not become ready in time. */
extern lsm_db *flowdb_db(void);
/* The handle if attached already, else NULL (never waits). */
extern lsm_db *flowdb_db_if_attached(void);

/* Copy lsm_errmsg() aside; call right after a failing engine call, before
 * releasing anything that could overwrite the thread's message. */
extern void flowdb_capture_error(lsm_status st);
/* ereport(ERROR) for the captured status; `what` names the operation. */
extern void flowdb_raise_captured(const char *what) pg_attribute_noreturn();
/* capture + raise in one go, for failures with nothing to release */
extern void flowdb_raise(lsm_status st, const char *what) pg_attribute_noreturn();
extern int	flowdb_sqlstate(lsm_status st);

/* An engine iterator owned by a memory context: closed when the context is
 * reset/deleted (error, cancel, end of query) or when the backend detaches
 * from the engine, whichever comes first. */
typedef struct FlowdbIterRef
{
	lsm_iter   *iter;			/* NULL once closed */
	struct FlowdbIterRef *prev,
			   *next;
	MemoryContextCallback cb;
} FlowdbIterRef;

extern FlowdbIterRef *flowdb_iter_open(MemoryContext owner, const lsm_read_options *ro,
									   const lsm_scan_spec *spec);
extern void flowdb_iter_close(FlowdbIterRef *ref);

/* Called before the backend detaches from the engine (after its iterators
 * are closed): JsonDB releases its transaction snapshot. */
extern void (*flowdb_before_detach_hook) (lsm_db *db);

/* ----------------------------------------------------------------- keys */

#define FLOWDB_KIND_KEYSPACE 'k'	/* SQL function key spaces */
#define FLOWDB_KIND_TABLE    't'	/* reserved: table access method */
#define FLOWDB_KIND_JSONDB   'j'	/* reserved: jsondb */

#define FLOWDB_MAX_KEYSPACE_NAME 63
#define FLOWDB_MAX_PREFIX (4 + 1 + 1 + FLOWDB_MAX_KEYSPACE_NAME)

/* A resolved keyspace: its name and the engine key prefix of its records. */
typedef struct FlowdbKeyspace
{
	char		name[FLOWDB_MAX_KEYSPACE_NAME + 1];
	uint8		prefix[FLOWDB_MAX_PREFIX];
	int			prefix_len;
} FlowdbKeyspace;

/* Prefix bytes of kind `kind` in this database (no name). */
extern int	flowdb_db_prefix(uint8 *out, char kind);
/* Build the prefix for `name` without consulting the catalog. */
extern void flowdb_keyspace_init(FlowdbKeyspace *ks, const char *name, int name_len);
/* Resolve `name` (must exist in flowdb.keyspaces: else 42704). */
extern void flowdb_keyspace_lookup(FlowdbKeyspace *ks, text *name);
/* The OID of a catalog table the extension script creates (schema.table);
 * 55000 with a CREATE EXTENSION hint when it is missing. */
extern Oid	flowdb_extension_table_relid(const char *schema, const char *table);
/* Forget cached keyspace lookups (after create/drop). */
extern void flowdb_keyspace_cache_reset(void);
extern void flowdb_keyspace_cache_register(void);

/* Encode user key bytes under ks (palloc'd); checks emptiness and size. */
extern uint8 *flowdb_encode_key(const FlowdbKeyspace *ks, const char *key, int key_len,
								int *out_len);
/* Same for a range bound: empty allowed (= keyspace start). */
extern uint8 *flowdb_encode_bound(const FlowdbKeyspace *ks, const char *key, int key_len,
								  int *out_len);
/* The smallest key greater than every key starting with p (palloc'd);
 * returns false if none exists (p is all 0xFF). */
extern bool flowdb_prefix_successor(const uint8 *p, int len, uint8 **out, int *out_len);
/* Bytewise key order: shorter first on a common prefix. */
extern int	flowdb_key_cmp(const uint8 *a, size_t alen, const uint8 *b, size_t blen);

/* ----------------------------------------------------------- write buffer */

typedef enum FlowdbOpKind
{
	FLOWDB_OP_PUT,
	FLOWDB_OP_DELETE,
	FLOWDB_OP_DELETE_RANGE
} FlowdbOpKind;

/* One buffered write.  Memory lives in TopTransactionContext. */
typedef struct FlowdbOp
{
	uint8	   *key;			/* encoded; range start for DELETE_RANGE */
	union
	{
		uint8	   *value;		/* PUT */
		uint8	   *end;		/* DELETE_RANGE: exclusive end */
	};
	int64		ts;
	int64		expire_at;		/* absolute Unix seconds, 0 = never */
	uint32		key_len;
	union
	{
		uint32		value_len;
		uint32		end_len;
	};
	uint32		seq;			/* position in the transaction */
	int			nest_level;		/* subtransaction level that wrote it */
	FlowdbOpKind kind;
} FlowdbOp;						/* 56 bytes: a bulk load buffers millions */

typedef enum FlowdbOwnWrite
{
	FLOWDB_OWN_NONE,			/* transaction did not touch (key, ts) */
	FLOWDB_OWN_PUT,				/* its latest write is a put: *op */
	FLOWDB_OWN_GONE				/* deleted, range-deleted or expired */
} FlowdbOwnWrite;

extern void flowdb_xact_register(void);
/* Memory blocks touched ahead of use on a helper thread (prefault.c).
 * start: NULL if no thread could be started.  submit only while has_room;
 * take (after a submit) returns the oldest submitted block not taken yet,
 * once touched.  stop before freeing any submitted block. */
typedef struct FlowdbPrefaulter FlowdbPrefaulter;
extern FlowdbPrefaulter *flowdb_prefault_start(size_t block_size);
extern bool flowdb_prefault_has_room(const FlowdbPrefaulter *p);
extern void flowdb_prefault_submit(FlowdbPrefaulter *p, uint8 *block);
extern uint8 *flowdb_prefault_take(FlowdbPrefaulter *p);
extern void flowdb_prefault_stop(FlowdbPrefaulter *p);
/* Touch [start, start + len), which the caller may be writing into (the
 * contents stay); forget_range returns once the thread has left it, and
 * must be called before that memory is freed or moved. */
extern void flowdb_prefault_range(FlowdbPrefaulter *p, uint8 *start, size_t len);
extern void flowdb_prefault_forget_range(FlowdbPrefaulter *p);

/* Buffered writes; none assigns a Postgres xid (xact.c: xid-less commits). */
extern void flowdb_xact_put(const uint8 *key, int key_len, int64 ts, int64 expire_at,
							const uint8 *value, int value_len);
extern void flowdb_xact_delete(const uint8 *key, int key_len, int64 ts);
/* Called at PRE_COMMIT before the batch is built (JsonDB validation). */
extern void (*flowdb_xact_pre_commit_hook) (void);
extern void flowdb_xact_delete_range(const uint8 *start, int start_len,
									 const uint8 *end, int end_len);
extern FlowdbOwnWrite flowdb_xact_lookup(const uint8 *key, int key_len, int64 ts, int64 now,
										 const FlowdbOp **op);
/* true if the transaction wrote anything that may affect `key` */
extern bool flowdb_xact_touches(const uint8 *key, int key_len);
/* The buffered ops in write order (valid until the transaction ends). */
extern const FlowdbOp *flowdb_xact_ops(int *n);
/* Called before detaching: abort a prepared-but-unfinished batch. */
extern void flowdb_xact_before_detach(lsm_db *db);

/* --------------------------------------------------------------- cursor */

typedef struct FlowdbCursor FlowdbCursor;

typedef struct FlowdbScanBounds
{
	const uint8 *prefix;		/* encoded; never NULL (at least the keyspace) */
	int			prefix_len;
	const uint8 *lo;			/* encoded inclusive lower bound or NULL */
	int			lo_len;
	const uint8 *hi;			/* encoded upper bound or NULL */
	int			hi_len;
	bool		hi_inclusive;
	int64		ts_min,
				ts_max;
	bool		reverse;
	uint64		limit;			/* 0 = none */
	const lsm_snapshot *snapshot;	/* engine reads through it; NULL = latest */
} FlowdbScanBounds;

/* Open in memory context `mcxt` (which owns the engine iterator). */
extern FlowdbCursor *flowdb_cursor_open(MemoryContext mcxt, const FlowdbScanBounds *b);
/* true with *rec filled (valid until the next call), false at the end. */
extern bool flowdb_cursor_next(FlowdbCursor *c, lsm_record *rec);
extern void flowdb_cursor_close(FlowdbCursor *c);
/* The engine iterator's counters so far (zeros once closed). */
extern void flowdb_cursor_stats(const FlowdbCursor *c, lsm_iter_stats *st);

/* ---------------------------------------------------------------- misc */

extern int64 flowdb_now(void);
/* expire_at for a put with ttl_secs (isnull: the default TTL). */
extern int64 flowdb_expire_at(bool ttl_isnull, int64 ttl_secs);

#endif							/* FLOWDB_H */
