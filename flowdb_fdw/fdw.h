/*
 * fdw.h — the foreign data wrapper "flowdb": foreign tables over keyspaces.
 *
 * Pieces (one file each):
 *   fdw_table.c     options validator, the per-table description (which
 *                   column is key / ts / expire_at, how the rest is stored),
 *                   the row codec, the handler and the DDL helper.
 *   fdw_pushdown.c  which WHERE clauses go into the engine scan (decided in
 *                   one place), and turning them into scan bounds at run time.
 *   fdw_plan.c      planner callbacks: sizes, paths (ordered, limited,
 *                   parameterized), count(*) pushed into the scan (upper
 *                   paths), plans, direct range deletes.
 *   fdw_exec.c      executor callbacks: scans, EXPLAIN, INSERT/UPDATE/DELETE,
 *                   COPY FROM, ANALYZE sampling.
 *
 * Stored form of a row (engine record):
 *   key        the key column's bytes (text / varchar, database encoding)
 *   ts         bigint: the value itself; timestamp / timestamptz: PostgreSQL's
 *              own representation, microseconds since 2000-01-01 00:00:00
 *              (UTC for timestamptz), +-infinity as INT64_MAX / INT64_MIN
 *   expire_at  Unix seconds, 0 = never
 *   value      raw mode (the only other column is "value bytea"): the bytes;
 *              else the row encoding below.
 *
 * Row encoding, version 1 (every column other than key / ts / expire_at, in
 * attribute-number order, dropped columns included as NULL):
 *   byte 0      0x01 (format version)
 *   varint      n = number of encoded columns
 *   ceil(n/8)   null bitmap, bit i set = column i is NULL
 *   per non-NULL column, in order:
 *     fixed-length type (typlen > 0): typlen bytes of the datum
 *     varlena (typlen -1): varint length, then the detoasted, uncompressed
 *                          data bytes (no varlena header)
 *     cstring (typlen -2): varint length, then the bytes
 * Columns added later read as NULL from older records (n is smaller).  The
 * datum bytes are the server's in-memory form (like heap pages), so data is
 * tied to this cluster's architecture and major version, like the rest of the
 * engine's files.
 */
#ifndef FLOWDB_FDW_H
#define FLOWDB_FDW_H

#include "flowdb.h"

#include "access/tupdesc.h"
#include "executor/tuptable.h"
#include "foreign/fdwapi.h"
#include "nodes/pathnodes.h"
#include "nodes/plannodes.h"
#include "utils/rel.h"

#define FDW_ROW_FORMAT_V1 0x01

typedef enum FdwTsType
{
	FDW_TS_INT8,
	FDW_TS_TIMESTAMPTZ,
	FDW_TS_TIMESTAMP
} FdwTsType;

/* What a foreign table looks like to FlowDB.  Cached per backend. */
typedef struct FdwTable
{
	Oid			relid;
	FlowdbKeyspace ks;
	int			natts;			/* attributes of the relation, dropped included */
	AttrNumber	key_attno;
	Oid			key_type;		/* TEXTOID or VARCHAROID */
	Oid			key_collation;
	AttrNumber	ts_attno;
	Oid			ts_type;
	AttrNumber	expire_attno;	/* 0 = none */
	Oid			expire_type;	/* INT8OID or TIMESTAMPTZOID */
	AttrNumber	raw_attno;		/* raw mode: the bytea value column; else 0 */
	int64		ttl_secs;		/* table option; -1 = flowdb.default_ttl_secs */
	/* value columns (everything but key / ts / expire_at) in attno order */
	int			nvals;
	AttrNumber *val_attno;
	int16	   *val_typlen;
	bool	   *val_byval;
	bool	   *val_dropped;
} FdwTable;

/* fdw_table.c */
extern FdwTable *fdw_table_get(Oid relid);	/* cached; errors on a bad table */
extern void fdw_table_cache_register(void);
/* Encode the value part of a row (palloc'd in the current context). */
extern uint8 *fdw_encode_row(const FdwTable *t, const Datum *values, const bool *nulls,
							 int *len);
/* Decode record `rec` into values/nulls (natts slots) for the columns with
 * needed[attno-1] set (NULL = all).  Key bytes exclude the keyspace prefix. */
extern void fdw_decode_record(const FdwTable *t, const lsm_record *rec, const bool *needed,
							  Datum *values, bool *nulls);
extern int64 fdw_expire_from_datum(const FdwTable *t, Datum d);

/* fdw_pushdown.c ----------------------------------------------------- */

/* A condition pushed into the engine scan.  Its value is an expression in
 * fdw_exprs (same position), evaluated when the scan starts. */
typedef enum FdwCondKind
{
	FDW_KEY_EQ,					/* key = v */
	FDW_KEY_IN,					/* key = ANY(array v) */
	FDW_KEY_PREFIX,				/* starts_with(key, v), key ^@ v */
	FDW_KEY_LIKE,				/* key LIKE v: the literal prefix of pattern v */
	FDW_KEY_LT,
	FDW_KEY_LE,
	FDW_KEY_GT,
	FDW_KEY_GE,
	FDW_TS_EQ,
	FDW_TS_LT,
	FDW_TS_LE,
	FDW_TS_GT,
	FDW_TS_GE
} FdwCondKind;

typedef struct FdwCond
{
	FdwCondKind kind;
	Expr	   *value;
	bool		exact;			/* the scan enforces the clause completely */
	RestrictInfo *rinfo;
} FdwCond;

/* The clause as a pushable condition, or false.  `outer` = relids whose Vars
 * may appear in the value (a parameterized path's required_outer). */
extern bool fdw_classify_clause(PlannerInfo *root, RelOptInfo *rel, const FdwTable *t,
								RestrictInfo *ri, Relids outer, FdwCond *out);
/* A value expression the scan can evaluate at its start. */
extern bool fdw_is_runtime_value(Expr *e, Index relid, Relids outer);

/* Bounds of one scan, from evaluated conditions. */
typedef struct FdwBounds
{
	bool		empty;			/* no row can match */
	bool		has_keys;		/* keys[] is the complete set of keys */
	int			nkeys;
	text	  **keys;			/* sorted bytewise, unique */
	char	   *prefix;			/* user-key prefix or NULL */
	int			prefix_len;
	char	   *lo;				/* user-key lower bound or NULL */
	int			lo_len;
	bool		lo_incl;
	char	   *hi;
	int			hi_len;
	bool		hi_incl;
	int64		ts_min,
				ts_max;
} FdwBounds;

extern void fdw_bounds_init(FdwBounds *b);
/* Apply one condition with its evaluated value. */
extern void fdw_bounds_apply(FdwBounds *b, FdwCondKind kind, Datum v, bool isnull,
							 Oid value_type);
/* Finish: sort keys, drop keys outside the range, detect emptiness. */
extern void fdw_bounds_finish(FdwBounds *b);
/* The literal prefix of a LIKE pattern (backslash escapes); *whole = the rest
 * of the pattern is only '%'; *exact_eq = no wildcard at all.  Returns false
 * if the pattern is malformed (ends with the escape character). */
extern bool fdw_like_prefix(const char *pat, int len, char **prefix, int *prefix_len,
							bool *whole, bool *exact_eq);
extern const char *fdw_cond_name(FdwCondKind kind);
/* Scan direction producing `pathkeys` (1 / -1), or 0 if the scan cannot. */
extern int	fdw_match_pathkeys(RelOptInfo *rel, const FdwTable *t, bool single_key,
							   List *pathkeys);
/* The query's LIMIT may bound this relation's scan (shape checks only). */
extern bool fdw_limit_pushable(PlannerInfo *root, RelOptInfo *rel);

/* fdw_plan.c / fdw_exec.c ------------------------------------------- */

/* fdw_private of a ForeignScan: list of these, in this order. */
enum FdwPrivateIndex
{
	FDW_PRIV_KINDS,				/* IntList of FdwCondKind, one per fdw_exprs entry */
	FDW_PRIV_ORDER,				/* Integer: 0 none, 1 ascending, -1 descending */
	FDW_PRIV_LIMIT,				/* Integer: 1 = fdw_exprs ends with count, offset */
	FDW_PRIV_NEEDED,			/* IntList of attnos to decode (0 = all) */
	FDW_PRIV_DIRECT,			/* Integer: 1 = direct range delete */
	FDW_PRIV_LIKE_RECHECK,		/* Integer: 1 = the local quals are only LIKEs
								 * with run-time patterns, droppable when each
								 * pattern turns out to be prefix + '%' */
	FDW_PRIV_PUSHED_COUNT,		/* Integer: 1 = count pushdown: the scan (scan
								 * relid 0) returns one row, every column of
								 * its fdw_scan_tlist the number of records
								 * that pass the pushed conditions; LIKEs whose
								 * pattern is not prefix + '%' are rechecked on
								 * each record's key, no tuple is formed */
	FDW_PRIV_RELID,				/* Integer: the foreign table's OID (a scan
								 * with scan relid 0 has no relation open) */
	FDW_PRIV_COUNT
};

extern void fdw_get_rel_size(PlannerInfo *root, RelOptInfo *rel, Oid relid);
extern void fdw_get_paths(PlannerInfo *root, RelOptInfo *rel, Oid relid);
extern ForeignScan *fdw_get_plan(PlannerInfo *root, RelOptInfo *rel, Oid relid,
								 ForeignPath *path, List *tlist, List *scan_clauses,
								 Plan *outer_plan);
/* Aggregates computed inside the scan (count(*) over pushed conditions). */
extern void fdw_get_upper_paths(PlannerInfo *root, UpperRelationKind stage,
								RelOptInfo *input_rel, RelOptInfo *output_rel, void *extra);
extern bool fdw_plan_direct_modify(PlannerInfo *root, ModifyTable *plan, Index rti,
								   int subplan_index);
extern void fdw_add_update_targets(PlannerInfo *root, Index rti, RangeTblEntry *rte,
								   Relation rel);
extern List *fdw_plan_modify(PlannerInfo *root, ModifyTable *plan, Index rti,
							 int subplan_index);

extern void fdw_exec_routines(FdwRoutine *r);

#endif							/* FLOWDB_FDW_H */
