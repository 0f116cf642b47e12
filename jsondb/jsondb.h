/*
 * jsondb.h — JsonDB: IndexedDB-style document stores on the flowdb engine.
 *
 * Pieces (one file each):
 *   key.c       IndexedDB keys: validity, the order-preserving byte encoding
 *               (number < date < string < binary < array), decoding, the
 *               tagged JSON forms, key paths and their evaluation.
 *   catalog.c   store / index definitions (table jsondb.stores), a per-backend
 *               cache, engine key layout of a store.
 *   txn.c       the transaction: engine snapshot at the first call, reads
 *               merged with own writes, the OCC read/write set, the
 *               pre-commit hook (store locks, validation, change log, NOTIFY).
 *   docs.c      documents: put / add / get / delete / patch, index
 *               maintenance, auto-increment, versions.
 *   read.c      ranges: count / get_all / get_all_keys / index reads.
 *   query.c     the JSON filter query and its explain.
 *   changes.c   the change feed reader.
 *
 * Engine key layout (all under the database prefix D | 'j', see keys.c):
 *
 *   D 'j' S 'd' <pk>              document: value = version (8 bytes BE) | jsonb
 *   D 'j' S 'i' I <ik> [<pk>]     index entry: non-unique indexes append the
 *                                 primary key to the key (value empty);
 *                                 unique ones store it as the value
 *   D 'j' S 'g'                   key generator: next key (8 bytes BE)
 *   D 'j' S 'm'                   change-log meta: last seq, first kept seq
 *   D 'j' S 'c' <seq 8 bytes BE>  change-log entry
 *
 * S is the store id (4 bytes BE), I the index id (2 bytes BE), <pk>/<ik>
 * encoded keys (self-delimiting, so concatenation keeps (ik, pk) order).
 */
#ifndef JSONDB_H
#define JSONDB_H

#include "flowdb.h"

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"

/* ------------------------------------------------------------------ keys */

#define JDB_TAG_NUMBER 0x10
#define JDB_TAG_DATE   0x20
#define JDB_TAG_STRING 0x30
#define JDB_TAG_BINARY 0x40
#define JDB_TAG_ARRAY  0x50
#define JDB_KEY_END    0x00

/* A key path: '' (the whole value: nsegs 0) or dotted identifiers. */
typedef struct JdbPath
{
	int			nsegs;
	char	  **segs;
} JdbPath;

/* A store or index key path: one path, or an array of them (compound). */
typedef struct JdbKeyPath
{
	bool		is_array;
	int			npaths;
	JdbPath    *paths;
} JdbKeyPath;

/* Parse and validate a key path given as jsonb ("a.b" or ["a", "b"]);
 * raises 42602-class errors naming `what` when it is not valid. */
extern void jdb_keypath_parse(Jsonb *kp, JdbKeyPath *out, const char *what);
extern void jdb_path_parse(const char *s, JdbPath *out, const char *what);

/* Encode a JSON value as a key, appending to `out`.  false (and *why) if it
 * is not a valid key.  Never raises for invalid input. */
extern bool jdb_encode_value(JsonbValue *v, StringInfo out, const char **why);
/* The same for a whole jsonb datum. */
extern bool jdb_encode_jsonb(Jsonb *j, StringInfo out, const char **why);
/* Encode or raise 22023 "invalid key". */
extern void jdb_encode_jsonb_or_error(Jsonb *j, StringInfo out, const char *what);

/* Evaluate key path kp on doc: encode the key to out.  Returns
 *   JDB_EVAL_OK        key encoded
 *   JDB_EVAL_MISSING   a path does not resolve
 *   JDB_EVAL_INVALID   it resolves to something that is not a valid key (*why) */
typedef enum
{
	JDB_EVAL_OK,
	JDB_EVAL_MISSING,
	JDB_EVAL_INVALID
} JdbEval;
extern JdbEval jdb_eval_keypath(Jsonb *doc, const JdbKeyPath *kp, StringInfo out,
								const char **why);
/* The value at path in doc (NULL if it does not resolve); *v filled. */
extern bool jdb_path_value(Jsonb *doc, const JdbPath *p, JsonbValue *v);
/* Multi-entry: encoded distinct valid keys of the array at the path (or the
 * single key if it is not an array).  Returns a List of StringInfo. */
extern List *jdb_eval_multi(Jsonb *doc, const JdbKeyPath *kp);

/* Decode one encoded key at *p (advanced) to JSON text appended to out. */
extern bool jdb_decode_key(const uint8 **p, const uint8 *end, StringInfo out);
extern Jsonb *jdb_key_to_jsonb(const uint8 *p, int len);
/* Length of the encoded key at p (self-delimiting), -1 if malformed. */
extern int	jdb_key_length(const uint8 *p, int len);
/* The number in an encoded number key, if it is one. */
extern bool jdb_key_number(const uint8 *p, int len, double *d);
extern void jdb_encode_number(StringInfo out, double d);

/* Jsonb doc with a value set at path (creating objects); false if a step
 * is not an object. */
extern Jsonb *jdb_inject_key(Jsonb *doc, const JdbPath *p, double key, bool *ok);

/* --------------------------------------------------------------- catalog */

#define JDB_MAX_NAME 63

typedef struct JdbIndex
{
	char		name[JDB_MAX_NAME + 1];
	int			id;
	JdbKeyPath	kp;
	bool		unique;
	bool		multi_entry;
} JdbIndex;

typedef struct JdbStore
{
	char		name[JDB_MAX_NAME + 1];
	int32		id;
	int64		def_version;	/* bumped by every definition change */
	JdbKeyPath	kp;
	bool		auto_increment;
	bool		watched;
	int			nindexes;
	JdbIndex   *indexes;
	uint8		prefix[9];		/* D 'j' S */
} JdbStore;

/* Look a store up (cache; 42P01 if unknown).  Valid until the next cache
 * invalidation: do not keep across calls. */
extern JdbStore *jdb_store_lookup(const char *name);
extern JdbStore *jdb_store_lookup_text(text *name);
extern JdbIndex *jdb_index_lookup(JdbStore *s, const char *name);
extern void jdb_catalog_register(void);
extern void jdb_txn_register(void);
extern void jsondb_init(void);

/* engine keys */
extern void jdb_doc_key(const JdbStore *s, StringInfo out, const uint8 *pk, int pklen);
extern void jdb_sub_prefix(const JdbStore *s, char sub, StringInfo out);
extern void jdb_index_prefix(const JdbStore *s, const JdbIndex *ix, StringInfo out);
extern void jdb_store_prefix_of(int32 store_id, uint8 *out9);

/* ------------------------------------------------------------ transaction */

/* Start (idempotent) the jsondb part of the current transaction: engine
 * snapshot, callbacks. */
extern void jdb_txn_begin(void);
extern const lsm_snapshot *jdb_txn_snapshot(void);

/* Read key: own writes first, then the snapshot.  Returns true and a
 * palloc'd copy in *val / *len if present.  `track` records the value seen
 * in the OCC read set. */
extern bool jdb_read(const uint8 *key, int klen, uint8 **val, int *vlen, bool track);
/* The transaction's latest own write on key, as flowdb_xact_lookup(key, 0,
 * 0) reports it, through txn.c's exact index of the write buffer: O(1). */
extern FlowdbOwnWrite jdb_own_lookup(const uint8 *key, int klen, const FlowdbOp **op);
/* The same without the copy: *val is valid until the next jdb_read* call
 * (or the next buffered write); for readers that copy or decode at once. */
extern bool jdb_read_view(const uint8 *key, int klen, const uint8 **val, int *vlen, bool track);
#define JDB_READ_MANY_MAX 64
extern void jdb_read_view_many(int n, const uint8 *const *keys, const int *klens,
							   const uint8 **vals, int *vlens, bool *present);
/* Read the latest committed value (ignoring the snapshot and own writes). */
extern bool jdb_read_latest(const uint8 *key, int klen, uint8 **val, int *vlen);
/* Record that the snapshot showed (val, vlen) or absence for key. */
extern void jdb_track(const uint8 *key, int klen, const uint8 *val, int vlen, bool present);
/* Buffer writes (atomic with the transaction). */
extern void jdb_write_put(const JdbStore *s, const uint8 *key, int klen, const uint8 *val, int vlen);
extern void jdb_write_delete(const JdbStore *s, const uint8 *key, int klen);
/* Take the store's transaction lock (key generator, definition changes). */
extern void jdb_lock_store(int32 store_id, bool exclusive);
/* Record the definition version a write used. */
extern void jdb_note_store_write(const JdbStore *s);

/* Scans merged with own writes, through the snapshot. */
typedef struct JdbScan JdbScan;
extern JdbScan *jdb_scan_open(const uint8 *prefix, int plen, const uint8 *lo, int lolen,
							  bool lo_excl, const uint8 *hi, int hilen, bool hi_incl,
							  bool reverse);
extern bool jdb_scan_next(JdbScan *sc, lsm_record *rec);
/* true: scans read the latest committed state, not the snapshot (backfill) */
extern bool jdb_scan_latest;
extern void jdb_scan_close(JdbScan *sc);

/* ------------------------------------------------------------ documents */

#define JDB_MAX_DOC_BYTES (8 * 1024 * 1024)

/* A document as stored: version + jsonb. */
extern Jsonb *jdb_doc_decode(const uint8 *val, int vlen, uint64 *version);
/* The same into buf (reused across calls; the result lives in buf->data). */
extern Jsonb *jdb_doc_decode_into(const uint8 *val, int vlen, StringInfo buf);
extern Jsonb *jdb_get_doc(JdbStore *s, const uint8 *pk, int pklen, uint64 *version);
extern void jdb_delete_doc(JdbStore *s, const uint8 *pk, int pklen, Jsonb *old_doc);
extern void jdb_index_backfill(JdbStore *s, JdbIndex *ix);
extern Jsonb *jdb_merge_patch(Jsonb *target, Jsonb *patch);

/* A key range over encoded keys under a prefix: [lo, hi) engine bounds. */
typedef struct JdbRange
{
	StringInfoData lo;			/* inclusive engine lower bound */
	StringInfoData hi;			/* exclusive engine upper bound; len 0 = none */
	bool		has_hi;
} JdbRange;
/* lower/upper: encoded keys or NULL (unbounded). */
extern void jdb_range_make(JdbRange *r, const char *prefix, int plen,
						   const StringInfo lower, bool lower_open,
						   const StringInfo upper, bool upper_open);
extern bool jdb_scan_tracks(const lsm_record *rec);
/* Documents of index entries in engine range r; dir: 0 next, 1 nextunique,
 * 2 prev, 3 prevunique.  visit returns false to stop. */
typedef bool (*JdbIndexVisit) (void *arg, const uint8 *ik, int iklen, const uint8 *pk, int pklen,
							   Jsonb *doc);
extern void jdb_scan_index_range(JdbStore *s, JdbIndex *ix, const JdbRange *r, int dir,
								 JdbIndexVisit visit, void *arg);

/* Change-log retention per store (entries). */
#define JDB_CHANGE_RETENTION 100000
#define JDB_NOTIFY_CHANNEL "jsondb_changes"


/* ------------------------------------- store foreign tables (store_fdw_*.c)
 *
 * CREATE FOREIGN TABLE t (key jsonb, doc jsonb) SERVER flowdb
 *     OPTIONS (store 'name')   -- the key column is optional
 * The flowdb handler (fdw_table.c) sends tables with option store here.
 *   store_fdw_table.c   what a store table is (kind cache, columns)
 *   store_fdw_quals.c   which WHERE clauses can narrow the scan
 *   store_fdw_keyset.c  primary keys a key comparison can hold for
 *   store_fdw_scan.c    what a scan reads, given the values (index / keys)
 *   store_fdw_plan.c    planner callbacks (sizes, paths, plan, row identity)
 *   store_fdw_exec.c    scans, EXPLAIN, ANALYZE sampling
 *   store_fdw_modify.c  INSERT / UPDATE / DELETE through add / put / delete
 */
#include "commands/explain.h"
#include "foreign/fdwapi.h"

/* The index plan of a JSON filter (query.c), as jsondb.query chooses it. */
typedef struct JdbFilterPlan
{
	JdbIndex   *ix;				/* NULL: no index fits (full scan) */
	List	   *ranges;			/* List of JdbRange* over ix's entries */
	const char *how;			/* "index equality", "index range", ... */
	int			rank;			/* 0 full scan .. 6 unique equality */
} JdbFilterPlan;
extern void jdb_plan_filter(JdbStore *s, Jsonb *filter, bool arrays, JdbFilterPlan *out);

/* What a store foreign table is (store_fdw_table.c).  Cached per backend. */
typedef struct JdbFdwTable
{
	Oid			relid;
	char		store[JDB_MAX_NAME + 1];
	AttrNumber	key_attno;		/* 0: no key column */
	AttrNumber	doc_attno;
	int			natts;
} JdbFdwTable;
/* Is relid a flowdb foreign table with option store?  (cached) */
extern bool jdb_fdw_is_store_table(Oid relid);
/* Its description; errors on a bad column shape. */
extern const JdbFdwTable *jdb_fdw_table(Oid relid);
/* The table's store (42P01 if it does not exist). */
extern JdbStore *jdb_fdw_store(const JdbFdwTable *t);

/* A WHERE clause that narrows the scan (store_fdw_quals.c). */
typedef enum JdbQualKind
{
	JDB_Q_TEXT_EQ,				/* doc path ->> = v */
	JDB_Q_NUM_CMP,				/* (doc path)::int/numeric op v */
	JDB_Q_KEY_CMP,				/* key op v */
	JDB_Q_KEY_IN,				/* key IN (...) */
	JDB_Q_CONTAINS				/* doc [path] @> v */
} JdbQualKind;

typedef struct JdbQual
{
	JdbQualKind kind;
	char	   *path;			/* dotted document path (doc conditions) */
	int			strategy;		/* btree strategy, as if the column were on the left */
	bool		int_cast;		/* numeric comparison through an integer cast */
	bool		from_text;		/* numeric comparison of ->> text (strings may cast) */
	Expr	   *value;			/* computed when the scan starts (no Var of the table) */
} JdbQual;

extern bool jdb_fdw_classify(PlannerInfo *root, Index relid, const JdbFdwTable *t, Expr *clause,
							 JdbQual *q);
extern bool jdb_fdw_is_target(Index relid, const JdbFdwTable *t, Expr *e);
extern bool jdb_fdw_segment_ok(const char *s, int len);
extern List *jdb_fdw_quals_to_private(List *quals);
extern List *jdb_fdw_quals_from_private(List *priv, List *values);

/* Sets of encoded primary keys (store_fdw_keyset.c): List of intervals. */
typedef struct JdbKeyInterval JdbKeyInterval;
extern List *jdb_keyset_all(void);
extern List *jdb_keyset_stand_in(void);
extern List *jdb_keyset_cmp(int strategy, Jsonb *c);	/* key op c, a superset */
extern List *jdb_keyset_in(Datum jsonb_array);	/* key IN (...) */
extern List *jdb_keyset_intersect(List *a, List *b);
extern bool jdb_keyset_is_all(List *s);
extern bool jdb_keyset_is_points(List *s);
extern List *jdb_keyset_ranges(List *s, StringInfo prefix);
extern void jdb_keyset_show(StringInfo out, List *s);

typedef enum JdbScanKind
{
	JDB_SCAN_FULL,
	JDB_SCAN_KEYS,				/* primary-key ranges (sorted, disjoint) */
	JDB_SCAN_INDEX
} JdbScanKind;

/* What one scan reads: a superset of the rows its quals let through. */
typedef struct JdbScanPlan
{
	bool		empty;			/* no row can match */
	JdbScanKind kind;
	List	   *key_ranges;		/* JDB_SCAN_KEYS / FULL: JdbRange* over documents */
	int			nkeys;			/* number of key ranges */
	bool		key_points;		/* every key range is one key */
	JdbFilterPlan ix;			/* JDB_SCAN_INDEX: ix.ix, ix.ranges */
	List	   *key_set;		/* the key ranges as encoded keys (EXPLAIN) */
	const char *filter;			/* the document conditions as a jsondb.query
								 * filter, NULL if none (EXPLAIN VERBOSE) */
	const char *shown;			/* for EXPLAIN: see jdb_fdw_show_scan */
} JdbScanPlan;
extern const char *jdb_fdw_show_scan(const JdbScanPlan *p);

extern void jdb_fdw_make_scan(JdbStore *s, List *quals, Datum *values, bool *nulls,
							  bool *unknown, JdbScanPlan *out);

/* marker: first element of the fdw_private of a store table's scan plan */
#define JDB_FDW_SCAN_MARKER "jsondb store scan"

/* planner callbacks (store_fdw_plan.c) */
extern void jdb_fdw_get_rel_size(PlannerInfo *root, RelOptInfo *rel, Oid relid);
extern void jdb_fdw_get_paths(PlannerInfo *root, RelOptInfo *rel, Oid relid);
extern ForeignScan *jdb_fdw_get_plan(PlannerInfo *root, RelOptInfo *rel, Oid relid,
									 ForeignPath *path, List *tlist, List *scan_clauses,
									 Plan *outer_plan);
extern void jdb_fdw_add_update_targets(PlannerInfo *root, Index rtindex,
									   RangeTblEntry *rte, Relation rel);
extern List *jdb_fdw_plan_modify(PlannerInfo *root, ModifyTable *plan, Index rti, int subplan);

/* executor callbacks (store_fdw_exec.c: scans; store_fdw_modify.c: writes) */
extern void jdb_fdw_begin_scan(ForeignScanState *node, int eflags);
extern TupleTableSlot *jdb_fdw_iterate(ForeignScanState *node);
extern void jdb_fdw_rescan(ForeignScanState *node);
extern void jdb_fdw_end_scan(ForeignScanState *node);
extern void jdb_fdw_explain_scan(ForeignScanState *node, ExplainState *es);
extern bool jdb_fdw_analyze(Relation rel, AcquireSampleRowsFunc *func, BlockNumber *totalpages);
extern void jdb_fdw_begin_modify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
								 List *fdw_private, int subplan, int eflags);
extern void jdb_fdw_begin_insert(ModifyTableState *mtstate, ResultRelInfo *rinfo);
extern TupleTableSlot *jdb_fdw_exec_insert(EState *estate, ResultRelInfo *rinfo,
										   TupleTableSlot *slot, TupleTableSlot *plan_slot);
extern TupleTableSlot *jdb_fdw_exec_update(EState *estate, ResultRelInfo *rinfo,
										   TupleTableSlot *slot, TupleTableSlot *plan_slot);
extern TupleTableSlot *jdb_fdw_exec_delete(EState *estate, ResultRelInfo *rinfo,
										   TupleTableSlot *slot, TupleTableSlot *plan_slot);
extern void jdb_fdw_end_modify(EState *estate, ResultRelInfo *rinfo);

#endif							/* JSONDB_H */
