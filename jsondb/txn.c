/*
 * txn.c — JsonDB calls inside a Postgres transaction.
 *
 * Snapshot.  The first jsondb call of a transaction pins an engine snapshot;
 * every read goes to the transaction's own buffered writes first (xact.c's
 * buffer, so savepoints work; found in O(1) through the own-write index
 * below, so a transaction's cost stays linear in its size), then to that
 * snapshot.  The snapshot is
 * released when TopTransactionContext goes away (after the transaction's
 * portals and their iterators), or before the backend detaches.
 *
 * Writes are buffered in xact.c without a Postgres xid: a transaction that
 * touches only JsonDB commits with one engine-WAL fsync.
 *
 * Commit (the pre-commit hook, before xact.c builds the engine batch), only
 * for transactions that wrote to a store:
 *   1. lock every store the transaction wrote (exclusive) or read (share),
 *      in store-id order.  Locks are Postgres advisory-style locks on
 *      (database, 'JD', store id), held until after the batch is published,
 *      so validation, the change-log sequence and publication are atomic
 *      with respect to other committers of those stores;
 *   2. a store whose definition changed since the transaction used it
 *      (another session's create/delete_index) fails the commit (40001);
 *   3. OCC validation (skipped when no batch was published since the
 *      snapshot): every document (and unique-index entry) the
 *      transaction read or wrote must still be as its snapshot showed it:
 *      absent if it was absent, present and not rewritten since the
 *      snapshot (its engine seq <= the snapshot's seq) if it was present;
 *      nothing of the value is kept or hashed.  Otherwise 40001 (23505
 *      for a unique entry taken by another document).  Range reads validate the documents they returned, not the
 *      absence of others (no phantom protection);
 *   4. the change log: each changed document gets the store's next sequence
 *      number (commit order, because of 1), written in the same batch;
 *   5. watched stores queue a NOTIFY per change (delivered after commit).
 * Read-only transactions skip all of it: they read one snapshot, which is a
 * consistent prefix of the commit order.
 */
#include "jsondb.h"

#include "access/xact.h"
#include "commands/async.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#define JDB_LOCK_FIELD4 0x4A44	/* 'JD': distinct from user advisory locks (1, 2) */

/*
 * The OCC read set: what the snapshot showed for each document (and unique
 * index entry) the transaction read, appended in read order.  A read pays
 * only the append (its key is copied into blocks of TopTransactionContext
 * that grow from 1 kB to 64 kB); duplicates are dropped at commit, and only by
 * transactions that wrote, since read-only ones never validate.  Every
 * entry of a key was read through the same snapshot, so entries of one key
 * agree; were they ever to disagree, each is validated and the commit
 * fails (never a missed conflict).
 */
typedef struct Tracked
{
	const uint8 *key;
	uint32		len;
	bool		present;		/* what the snapshot showed */
} Tracked;

#define RS_BLOCK_MIN 1024		/* key-byte blocks double up to RS_BLOCK_MAX */
#define RS_BLOCK_MAX (64 * 1024)

typedef struct StoreUse
{
	int32		id;
	char		name[JDB_MAX_NAME + 1];
	int64		def_version;
	bool		written;
	bool		ddl;
} StoreUse;

static bool active = false;
static lsm_snapshot *snap = NULL;
static uint64 snap_seq = 0;
static lsm_db *snap_db = NULL;
static Tracked *reads = NULL;
static int	nreads = 0;
static int	reads_cap = 0;
static uint8 *rs_ptr = NULL;	/* read-set key bytes: current block */
static size_t rs_left = 0;
static size_t rs_block = 0;		/* size of the next block */
static int32 last_read_store = -1;	/* store_use() already done for it */
static StoreUse *uses = NULL;
static int	nuses = 0;
static int	uses_cap = 0;
static MemoryContextCallback release_cb;

/*
 * The own-write index: an exact hash map from a key to the position of the
 * transaction's latest buffered op on it in xact.c's op array, so a read
 * finds its own write in O(1) instead of searching the buffer.  Invariant:
 * ops [0, ow_count) of the buffer are indexed, and for each key (at ts 0)
 * the map holds the latest of them; ow_prev[i] is the earlier op on op i's
 * key (-1 none; OW_NOT_ENTERED: op i is not in the map).
 *   - ops appended by anyone (jdb_write_*, the change log, flowdb's own SQL
 *     writes in the same transaction) are indexed lazily by ow_sync();
 *   - ROLLBACK TO drops the subtransaction's trailing ops; subxact_cb
 *     unindexes them newest first, which gives each key back its earlier op.
 * Ops at another ts are never read by jsondb and stay out of the map.  A
 * DELETE_RANGE op (jsondb writes none) makes lookups fall back to xact.c's
 * linear search while it is in the buffer.
 */
typedef struct OwnSlot
{
	uint32		hash;
	int32		op;				/* OW_EMPTY, OW_DELETED or an op position */
} OwnSlot;

#define OW_EMPTY (-1)
#define OW_DELETED (-2)			/* tombstone: probing continues past it */
#define OW_NOT_ENTERED (-2)
#define OW_MIN_SLOTS 1024

static OwnSlot *ow_slots = NULL;
static uint32 ow_cap = 0;		/* a power of two */
static uint32 ow_live = 0;		/* keys in the map */
static uint32 ow_filled = 0;	/* live + tombstones; kept <= 1/2 of ow_cap */
static int32 *ow_prev = NULL;
static int	ow_prev_cap = 0;
static int	ow_count = 0;
static int	ow_ranges = 0;		/* DELETE_RANGE ops among the indexed */

bool		jdb_scan_latest = false;

/* ---------------------------------------------------------- lifecycle */

/*
 * The engine's value buffer, reused across reads (lsm.h).  A view returned
 * by engine_get points into it and stays valid until the next engine_get;
 * a buffer grown past 1 MiB by a big document is given back at the next
 * read (or at transaction end).
 */
static lsm_value engine_buf = {0};

static void
engine_buf_trim(void)
{
	if (engine_buf.cap > 1024 * 1024)
		lsm_value_free(&engine_buf);
}


static void
ow_reset(void)
{
	ow_slots = NULL;			/* memory goes with TopTransactionContext */
	ow_cap = ow_live = ow_filled = 0;
	ow_prev = NULL;
	ow_prev_cap = 0;
	ow_count = 0;
	ow_ranges = 0;
}

static void
release_snapshot(void *arg)
{
	if (snap && snap_db && flowdb_db_if_attached() == snap_db)
		lsm_snapshot_release(snap_db, snap);
	snap = NULL;
	snap_db = NULL;
	active = false;
	engine_buf_trim();
	reads = NULL;
	nreads = reads_cap = 0;
	rs_ptr = NULL;
	rs_left = 0;
	rs_block = 0;
	last_read_store = -1;
	uses = NULL;
	nuses = uses_cap = 0;
	ow_reset();
}

/*
 * The slot of key (hash h) in the map: its live slot if present (*found),
 * else where to enter it (the first tombstone on the probe path, or the
 * empty slot that ended it).
 */
static OwnSlot *
ow_probe(const FlowdbOp *ops, const uint8 *key, int klen, uint32 h, bool *found)
{
	uint32		mask = ow_cap - 1;
	OwnSlot    *reuse = NULL;

	for (uint32 i = h & mask;; i = (i + 1) & mask)
	{
		OwnSlot    *sl = &ow_slots[i];

		if (sl->op == OW_EMPTY)
		{
			*found = false;
			return reuse ? reuse : sl;
		}
		if (sl->op == OW_DELETED)
		{
			if (reuse == NULL)
				reuse = sl;
			continue;
		}
		if (sl->hash == h && ops[sl->op].key_len == (uint32) klen &&
			memcmp(ops[sl->op].key, key, klen) == 0)
		{
			*found = true;
			return sl;
		}
	}
}

/* Rebuild the map with room for twice its live keys, dropping tombstones. */
static void
ow_resize(void)
{
	OwnSlot    *old = ow_slots;
	uint32		old_cap = ow_cap;
	uint32		cap = OW_MIN_SLOTS;

	while (cap < (ow_live + 1) * 4)
		cap *= 2;
	ow_slots = MemoryContextAllocExtended(TopTransactionContext, (Size) cap * sizeof(OwnSlot),
										  MCXT_ALLOC_HUGE);
	for (uint32 i = 0; i < cap; i++)
		ow_slots[i].op = OW_EMPTY;
	ow_cap = cap;
	ow_filled = ow_live;
	for (uint32 i = 0; i < old_cap; i++)
	{
		uint32		j;

		if (old[i].op < 0)
			continue;
		for (j = old[i].hash & (cap - 1); ow_slots[j].op != OW_EMPTY; j = (j + 1) & (cap - 1))
			;
		ow_slots[j] = old[i];
	}
	if (old)
		pfree(old);
}

/* Index op i (== ow_count): it becomes its key's latest op. */
static void
ow_enter(const FlowdbOp *ops, int i)
{
	const FlowdbOp *op = &ops[i];
	uint32		h;
	bool		found;
	OwnSlot    *sl;

	if (i == ow_prev_cap)
	{
		ow_prev_cap = ow_prev_cap ? ow_prev_cap * 2 : 1024;
		ow_prev = ow_prev ? repalloc_huge(ow_prev, (Size) ow_prev_cap * sizeof(int32))
			: MemoryContextAlloc(TopTransactionContext, ow_prev_cap * sizeof(int32));
	}
	ow_count = i + 1;
	ow_prev[i] = OW_NOT_ENTERED;
	if (op->kind == FLOWDB_OP_DELETE_RANGE)
	{
		ow_ranges++;
		return;
	}
	if (op->ts != 0)
		return;
	if ((ow_filled + 1) * 2 > ow_cap)
		ow_resize();
	h = hash_bytes(op->key, op->key_len);
	sl = ow_probe(ops, op->key, op->key_len, h, &found);
	if (found)
		ow_prev[i] = sl->op;
	else
	{
		ow_prev[i] = -1;
		if (sl->op == OW_EMPTY)
			ow_filled++;
		ow_live++;
		sl->hash = h;
	}
	sl->op = i;
}

/* Unindex op ow_count - 1 (still in the op array): its key's earlier op, if
 * any, becomes the latest again. */
static void
ow_leave(const FlowdbOp *ops)
{
	int			i = --ow_count;
	const FlowdbOp *op = &ops[i];
	bool		found;
	OwnSlot    *sl;

	if (op->kind == FLOWDB_OP_DELETE_RANGE)
	{
		ow_ranges--;
		return;
	}
	if (ow_prev[i] == OW_NOT_ENTERED)
		return;
	sl = ow_probe(ops, op->key, op->key_len, hash_bytes(op->key, op->key_len), &found);
	Assert(found && sl->op == i);
	if (ow_prev[i] >= 0)
		sl->op = ow_prev[i];
	else
	{
		sl->op = OW_DELETED;
		ow_live--;
	}
}

/* Index the ops appended since the last call; the buffer, for lookups. */
static const FlowdbOp *
ow_sync(void)
{
	int			nops;
	const FlowdbOp *ops = flowdb_xact_ops(&nops);

	if (nops < ow_count)
	{
		/* the buffer shrank behind our back (never expected): start over */
		ow_reset();
	}
	while (ow_count < nops)
		ow_enter(ops, ow_count);
	return ops;
}

/*
 * The transaction's latest own write on key (at ts 0), as flowdb_xact_lookup
 * would report it, in O(1).
 */
FlowdbOwnWrite
jdb_own_lookup(const uint8 *key, int klen, const FlowdbOp **op)
{
	const FlowdbOp *ops = ow_sync();
	OwnSlot    *sl;
	bool		found;

	if (ow_count == 0)
		return FLOWDB_OWN_NONE;
	if (ow_ranges > 0)
		return flowdb_xact_lookup(key, klen, 0, 0, op);
	if (ow_live == 0)
		return FLOWDB_OWN_NONE;
	sl = ow_probe(ops, key, klen, hash_bytes(key, klen), &found);
	if (!found)
		return FLOWDB_OWN_NONE;
	if (ops[sl->op].kind == FLOWDB_OP_DELETE)
		return FLOWDB_OWN_GONE;
	*op = &ops[sl->op];
	return FLOWDB_OWN_PUT;
}

/* Did the transaction write key (at ts 0, or a range over it)? */
static bool
own_write_touches(const uint8 *key, int klen)
{
	const FlowdbOp *ops = ow_sync();
	bool		found;

	if (ow_ranges > 0)
		return flowdb_xact_touches(key, klen);
	if (ow_live == 0)
		return false;
	(void) ow_probe(ops, key, klen, hash_bytes(key, klen), &found);
	return found;
}

/*
 * ROLLBACK TO: unindex the trailing ops of the aborted subtransaction (nest
 * level >= its level; levels never decrease along the buffer).  Works
 * whether xact.c has already truncated its buffer or not: the op array's
 * slots past its count are only reused by later writes.
 */
static void
subxact_cb(SubXactEvent event, SubTransactionId my_subid, SubTransactionId parent_subid,
		   void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	int			nops;
	const FlowdbOp *ops;
	int			keep;

	if (event != SUBXACT_EVENT_ABORT_SUB || ow_count == 0)
		return;
	ops = flowdb_xact_ops(&nops);
	keep = Min(ow_count, nops);
	while (keep > 0 && ops[keep - 1].nest_level >= level)
		keep--;
	while (ow_count > keep)
		ow_leave(ops);
}

bool
jdb_scan_tracks(const lsm_record *rec)
{
	return !own_write_touches(rec->key, rec->key_len);
}

static void
before_detach(lsm_db *db)
{
	release_snapshot(NULL);
}

void
jdb_txn_begin(void)
{
	lsm_db	   *db;
	lsm_status	st;

	if (active)
		return;
	db = flowdb_db();
	st = lsm_snapshot_acquire(db, &snap);
	if (st != LSM_OK)
	{
		snap = NULL;
		flowdb_raise(st, "jsondb: taking the transaction snapshot");
	}
	snap_db = db;
	snap_seq = lsm_snapshot_seq(snap);
	active = true;
	release_cb.func = release_snapshot;
	release_cb.arg = NULL;
	MemoryContextRegisterResetCallback(TopTransactionContext, &release_cb);
	/* the read set is created by the first jdb_track */
}

const lsm_snapshot *
jdb_txn_snapshot(void)
{
	jdb_txn_begin();
	return snap;
}

/* ------------------------------------------------------------- reads */

static int32
key_store_id(const uint8 *key, int klen)
{
	if (klen < 9)
		return -1;
	return (int32) ((uint32) key[5] << 24 | (uint32) key[6] << 16 | (uint32) key[7] << 8 | key[8]);
}

static StoreUse *
store_use(int32 id)
{
	for (int i = 0; i < nuses; i++)
		if (uses[i].id == id)
			return &uses[i];
	if (nuses == uses_cap)
	{
		uses_cap = uses_cap ? uses_cap * 2 : 8;
		uses = uses ? repalloc(uses, uses_cap * sizeof(StoreUse))
			: MemoryContextAlloc(TopTransactionContext, uses_cap * sizeof(StoreUse));
	}
	memset(&uses[nuses], 0, sizeof(StoreUse));
	uses[nuses].id = id;
	uses[nuses].def_version = -1;
	return &uses[nuses++];
}

static const uint8 *
rs_copy(const uint8 *key, int klen)
{
	uint8	   *c;

	if (klen > RS_BLOCK_MAX / 4)
		c = MemoryContextAlloc(TopTransactionContext, klen);
	else
	{
		if ((size_t) klen > rs_left)
		{
			/* small first blocks: most transactions read a few documents */
			rs_block = Min(Max(rs_block * 2, RS_BLOCK_MIN), RS_BLOCK_MAX);
			while (rs_block < (size_t) klen)
				rs_block *= 2;
			rs_ptr = MemoryContextAlloc(TopTransactionContext, rs_block);
			rs_left = rs_block;
		}
		c = rs_ptr;
		rs_ptr += klen;
		rs_left -= klen;
	}
	memcpy(c, key, klen);
	return c;
}

void
jdb_track(const uint8 *key, int klen, const uint8 *val, int vlen, bool present)
{
	int32		sid = key_store_id(key, klen);
	Tracked    *t;

	jdb_txn_begin();
	if (nreads == reads_cap)
	{
		reads_cap = reads_cap ? reads_cap * 2 : 16;
		reads = reads ? repalloc_huge(reads, (Size) reads_cap * sizeof(Tracked))
			: MemoryContextAlloc(TopTransactionContext, reads_cap * sizeof(Tracked));
	}
	t = &reads[nreads++];
	t->key = rs_copy(key, klen);
	t->len = klen;
	t->present = present;
	if (sid != last_read_store)
	{
		(void) store_use(sid);
		last_read_store = sid;
	}
}

/*
 * Point read through snapshot s (NULL: latest).  copy: *val is a palloc'd
 * copy; otherwise a view into engine_buf.
 */
static bool
engine_get(const lsm_snapshot *s, const uint8 *key, int klen, const uint8 **val, int *vlen,
		   uint64 *seq, bool copy)
{
	lsm_read_options ro;
	lsm_status	st;

	engine_buf_trim();
	lsm_read_options_init(&ro);
	ro.snapshot = s;
	st = lsm_get(flowdb_db(), &ro, key, klen, 0, &engine_buf);
	if (st == LSM_NOT_FOUND)
		return false;
	if (st != LSM_OK)
	{
		flowdb_capture_error(st);
		lsm_value_free(&engine_buf);
		flowdb_raise_captured("jsondb: reading");
	}
	if (seq)
		*seq = engine_buf.seq;
	if (val)
	{
		*vlen = (int) engine_buf.len;
		if (copy)
		{
			uint8	   *c = palloc(Max(engine_buf.len, 1));

			memcpy(c, engine_buf.data, engine_buf.len);
			*val = c;
		}
		else
			*val = engine_buf.data;
	}
	return true;
}

/* Own writes first, then the snapshot; see jdb_read / jdb_read_view. */
static bool
read_key(const uint8 *key, int klen, const uint8 **val, int *vlen, bool track, bool copy)
{
	const FlowdbOp *op;
	bool		present;

	jdb_txn_begin();
	switch (jdb_own_lookup(key, klen, &op))
	{
		case FLOWDB_OWN_PUT:
			*val = op->value;
			*vlen = op->value_len;
			return true;
		case FLOWDB_OWN_GONE:
			return false;
		case FLOWDB_OWN_NONE:
			break;
	}
	present = engine_get(snap, key, klen, val, vlen, NULL, copy);
	if (track)
		jdb_track(key, klen, NULL, 0, present);
	return present;
}

/*
 * n (at most JDB_READ_MANY_MAX) reads like jdb_read_view: own writes first,
 * the others from the snapshot in one lsm_get_many, which overlaps their
 * cache misses.  Nothing is recorded for OCC: the caller tracks what it
 * uses (jdb_track).  vals[i] stay valid until the next call.
 */
static lsm_value many_buf[JDB_READ_MANY_MAX];

void
jdb_read_view_many(int n, const uint8 *const *keys, const int *klens,
				   const uint8 **vals, int *vlens, bool *present)
{
	lsm_key_ts	kt[JDB_READ_MANY_MAX];
	lsm_status	found[JDB_READ_MANY_MAX];
	int			at[JDB_READ_MANY_MAX];
	int			m = 0;
	lsm_read_options ro;
	lsm_status	st;

	Assert(n <= JDB_READ_MANY_MAX);
	jdb_txn_begin();
	for (int i = 0; i < n; i++)
	{
		const FlowdbOp *op;

		present[i] = false;
		switch (jdb_own_lookup(keys[i], klens[i], &op))
		{
			case FLOWDB_OWN_PUT:
				vals[i] = op->value;
				vlens[i] = op->value_len;
				present[i] = true;
				break;
			case FLOWDB_OWN_GONE:
				break;
			case FLOWDB_OWN_NONE:
				if (many_buf[m].cap > 1024 * 1024)
					lsm_value_free(&many_buf[m]);	/* a big document's buffer */
				kt[m] = (lsm_key_ts) {keys[i], klens[i], 0};
				at[m++] = i;
				break;
		}
	}
	if (m == 0)
		return;
	lsm_read_options_init(&ro);
	ro.snapshot = snap;
	st = lsm_get_many(flowdb_db(), &ro, kt, m, many_buf, found);
	if (st != LSM_OK)
	{
		flowdb_capture_error(st);
		flowdb_raise_captured("jsondb: reading");
	}
	for (int j = 0; j < m; j++)
	{
		if (found[j] != LSM_OK)
			continue;
		present[at[j]] = true;
		vals[at[j]] = many_buf[j].data;
		vlens[at[j]] = (int) many_buf[j].len;
	}
}

bool
jdb_read(const uint8 *key, int klen, uint8 **val, int *vlen, bool track)
{
	return read_key(key, klen, (const uint8 **) val, vlen, track, true);
}

bool
jdb_read_view(const uint8 *key, int klen, const uint8 **val, int *vlen, bool track)
{
	return read_key(key, klen, val, vlen, track, false);
}

bool
jdb_read_latest(const uint8 *key, int klen, uint8 **val, int *vlen)
{
	return engine_get(NULL, key, klen, (const uint8 **) val, vlen, NULL, true);
}

/* ------------------------------------------------------------ writes */

void
jdb_note_store_write(const JdbStore *s)
{
	StoreUse   *u;

	jdb_txn_begin();
	u = store_use(s->id);
	u->written = true;
	if (u->def_version < 0)
	{
		u->def_version = s->def_version;
		strlcpy(u->name, s->name, sizeof(u->name));
	}
}

void
jdb_write_put(const JdbStore *s, const uint8 *key, int klen, const uint8 *val, int vlen)
{
	jdb_note_store_write(s);
	flowdb_xact_put(key, klen, 0, 0, val, vlen);
}

void
jdb_write_delete(const JdbStore *s, const uint8 *key, int klen)
{
	jdb_note_store_write(s);
	flowdb_xact_delete(key, klen, 0);
}

static void
lock_store(int32 id, LOCKMODE mode)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, 0, (uint32) id, JDB_LOCK_FIELD4);
	(void) LockAcquire(&tag, mode, false, false);
}

void
jdb_lock_store(int32 store_id, bool exclusive)
{
	jdb_txn_begin();
	lock_store(store_id, exclusive ? ExclusiveLock : ShareLock);
}

PG_FUNCTION_INFO_V1(jsondb_lock_store_ddl);

/* _lock_store_ddl(store_id int): DDL on a store holds it exclusively */
Datum
jsondb_lock_store_ddl(PG_FUNCTION_ARGS)
{
	StoreUse   *u;

	jdb_txn_begin();
	lock_store(PG_GETARG_INT32(0), ExclusiveLock);
	u = store_use(PG_GETARG_INT32(0));
	u->ddl = true;
	PG_RETURN_VOID();
}

/* -------------------------------------------------------------- scans */

struct JdbScan
{
	FlowdbCursor *cur;
	const uint8 *lo;
	int			lolen;
	bool		lo_excl;
	MemoryContext cxt;
};

JdbScan *
jdb_scan_open(const uint8 *prefix, int plen, const uint8 *lo, int lolen, bool lo_excl,
			  const uint8 *hi, int hilen, bool hi_incl, bool reverse)
{
	FlowdbScanBounds b;
	JdbScan    *sc = palloc0(sizeof(JdbScan));

	jdb_txn_begin();
	memset(&b, 0, sizeof(b));
	b.prefix = prefix;
	b.prefix_len = plen;
	b.lo = lo;
	b.lo_len = lo ? lolen : 0;
	b.hi = hi;
	b.hi_len = hi ? hilen : 0;
	b.hi_inclusive = hi_incl;
	b.ts_min = 0;
	b.ts_max = 0;
	b.reverse = reverse;
	b.snapshot = jdb_scan_latest ? NULL : snap;
	sc->lo = lo;
	sc->lolen = lolen;
	sc->lo_excl = lo_excl && lo != NULL;
	sc->cxt = CurrentMemoryContext;
	sc->cur = flowdb_cursor_open(CurrentMemoryContext, &b);
	return sc;
}

bool
jdb_scan_next(JdbScan *sc, lsm_record *rec)
{
	while (flowdb_cursor_next(sc->cur, rec))
	{
		if (sc->lo_excl && flowdb_key_cmp(rec->key, rec->key_len, sc->lo, sc->lolen) == 0)
			continue;
		return true;
	}
	return false;
}

void
jdb_scan_close(JdbScan *sc)
{
	flowdb_cursor_close(sc->cur);
}

/* ----------------------------------------------------------- pre-commit */

static int
int32_cmp(const void *a, const void *b)
{
	int32		x = *(const int32 *) a,
				y = *(const int32 *) b;

	return (x > y) - (x < y);
}

/* A copy of the op: the change log's own writes may move xact.c's op array
 * (keys and values stay put, they live in its arena). */
typedef struct Change
{
	FlowdbOp	op;
	int32		store;
} Change;

static int
change_cmp(const void *a, const void *b)
{
	const Change *x = a,
			   *y = b;
	int			c;

	if (x->store != y->store)
		return (x->store > y->store) - (x->store < y->store);
	c = flowdb_key_cmp(x->op.key, x->op.key_len, y->op.key, y->op.key_len);
	if (c != 0)
		return c;
	return (x->op.seq > y->op.seq) - (x->op.seq < y->op.seq);
}

static int
change_seq_cmp(const void *a, const void *b)
{
	const Change *x = a,
			   *y = b;

	return (x->op.seq > y->op.seq) - (x->op.seq < y->op.seq);
}

static void
put_be64(uint8 *p, uint64 x)
{
	for (int i = 7; i >= 0; i--)
		p[7 - i] = (uint8) (x >> (i * 8));
}

static uint64
get_be64(const uint8 *p)
{
	uint64		x = 0;

	for (int i = 0; i < 8; i++)
		x = (x << 8) | p[i];
	return x;
}

static void
check_definitions(void)
{
	AcceptInvalidationMessages();
	for (int i = 0; i < nuses; i++)
	{
		StoreUse   *u = &uses[i];
		JdbStore   *s;

		if (!u->written || u->ddl || u->def_version < 0)
			continue;
		s = jdb_store_lookup(u->name);
		if (s->id != u->id || s->def_version != u->def_version)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("jsondb: could not serialize access: the definition of store \"%s\" "
							"changed concurrently", u->name),
					 errhint("Retry the transaction.")));
	}
}

static void
unique_violation(const Tracked *t)
{
	StoreUse   *u = store_use(key_store_id(t->key, t->len));
	const char *ixname = "?";

	if (u->name[0])
	{
		JdbStore   *s = jdb_store_lookup(u->name);
		int			id = t->key[10] << 8 | t->key[11];

		for (int i = 0; i < s->nindexes; i++)
			if (s->indexes[i].id == id)
				ixname = s->indexes[i].name;
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("jsondb: duplicate key value violates unique index \"%s\" of store \"%s\"",
					ixname, u->name),
			 errdetail("Another transaction committed a document with the same index key.")));
}

static int
tracked_cmp(const void *a, const void *b)
{
	const Tracked *x = a,
			   *y = b;
	int			c = flowdb_key_cmp(x->key, x->len, y->key, y->len);

	if (c != 0)
		return c;
	return (int) x->present - (int) y->present;
}

/*
 * Has any batch been published since the transaction's snapshot?  Called
 * with the store locks held, so every earlier committer of a store this
 * transaction read or wrote has published: if the engine's visibility
 * horizon is still the snapshot's seq, nothing it read can have changed
 * (a batch in flight holds the horizon below its own seqs, which are above
 * the snapshot's, lsm.h).
 */
static bool
published_since_snapshot(void)
{
	lsm_snapshot *now;
	lsm_status	st = lsm_snapshot_acquire(flowdb_db(), &now);
	bool		moved;

	if (st != LSM_OK)
		flowdb_raise(st, "jsondb: reading the engine's commit horizon");
	moved = lsm_snapshot_seq(now) != snap_seq;
	lsm_snapshot_release(flowdb_db(), now);
	return moved;
}

/* The read set in key order (engine reads in order), duplicates validated once. */
static void
validate(void)
{
	if (nreads == 0 || !published_since_snapshot())
		return;
	qsort(reads, nreads, sizeof(Tracked), tracked_cmp);
	for (int i = 0; i < nreads; i++)
	{
		const Tracked *t = &reads[i];
		uint64		now_seq = 0;
		bool		present;

		if (i > 0 && tracked_cmp(t, &reads[i - 1]) == 0)
			continue;
		present = engine_get(NULL, t->key, t->len, NULL, NULL, &now_seq, false);
		/* unchanged since the snapshot: the same presence, and if present
		 * not rewritten after it (lsm.h: a later write has seq > snapshot) */
		if (present == t->present && (!present || now_seq <= snap_seq))
			continue;
		if (present && t->len > 9 && t->key[9] == 'i')
			unique_violation(t);
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("jsondb: could not serialize access due to a concurrent update"),
				 errdetail("A document this transaction read or wrote was changed by a transaction "
						   "that committed after this transaction's snapshot."),
				 errhint("Retry the transaction.")));
	}
}

/* Append change-log entries for the final document writes of one store. */
static void
log_changes(int32 store_id, Change *ch, int n, bool watched, const char *store_name)
{
	uint8		prefix[9];
	StringInfoData meta_key;
	uint8	   *mv;
	int			mvlen;
	uint64		last = 0,
				first = 1;
	uint8		mbuf[16];
	StringInfoData k,
				v;

	/* one key and one value buffer for all entries (xact.c copies them) */
	initStringInfo(&k);
	initStringInfo(&v);

	jdb_store_prefix_of(store_id, prefix);
	initStringInfo(&meta_key);
	appendBinaryStringInfo(&meta_key, (char *) prefix, 9);
	appendStringInfoChar(&meta_key, 'm');
	if (jdb_read_latest((uint8 *) meta_key.data, meta_key.len, &mv, &mvlen) && mvlen == 16)
	{
		last = get_be64(mv);
		first = get_be64(mv + 8);
	}
	for (int i = 0; i < n; i++)
	{
		const FlowdbOp *op = &ch[i].op;
		uint8		b8[8];
		uint64		version = 0;
		const uint8 *pk = op->key + 10;
		int			pklen = op->key_len - 10;

		last++;
		resetStringInfo(&k);
		appendBinaryStringInfo(&k, (char *) prefix, 9);
		appendStringInfoChar(&k, 'c');
		put_be64(b8, last);
		appendBinaryStringInfo(&k, (char *) b8, 8);
		if (op->kind == FLOWDB_OP_PUT && op->value_len >= 8)
			version = get_be64(op->value);
		resetStringInfo(&v);
		appendStringInfoChar(&v, op->kind == FLOWDB_OP_PUT ? 'p' : 'd');
		put_be64(b8, version);
		appendBinaryStringInfo(&v, (char *) b8, 8);
		appendBinaryStringInfo(&v, (char *) pk, pklen);
		flowdb_xact_put((uint8 *) k.data, k.len, 0, 0, (uint8 *) v.data, v.len);
		if (watched)
		{
			StringInfoData payload;
			Jsonb	   *kj = jdb_key_to_jsonb(pk, pklen);
			char	   *kt = JsonbToCString(NULL, &kj->root, VARSIZE(kj));

			initStringInfo(&payload);
			appendStringInfoString(&payload, "{\"store\": ");
			escape_json(&payload, store_name);
			appendStringInfo(&payload, ", \"seq\": " UINT64_FORMAT ", \"key\": %s}", last,
							 strlen(kt) < 7000 ? kt : "null");
			Async_Notify(JDB_NOTIFY_CHANNEL, payload.data);	/* copies it */
			pfree(payload.data);
			pfree(kt);
			pfree(kj);
		}
	}
	/*
	 * bounded retention: keep the last JDB_CHANGE_RETENTION entries, deleting
	 * the ones that fall out one by one.  Never a range delete: any engine
	 * range tombstone makes every point read of the database check it.
	 */
	if (last >= first + JDB_CHANGE_RETENTION)
	{
		uint64		new_first = last - JDB_CHANGE_RETENTION + 1;
		StringInfoData dk;
		uint8		b8[8];

		initStringInfo(&dk);
		for (uint64 q = first; q < new_first; q++)
		{
			resetStringInfo(&dk);
			appendBinaryStringInfo(&dk, (char *) prefix, 9);
			appendStringInfoChar(&dk, 'c');
			put_be64(b8, q);
			appendBinaryStringInfo(&dk, (char *) b8, 8);
			flowdb_xact_delete((uint8 *) dk.data, dk.len, 0);
		}
		first = new_first;
	}
	put_be64(mbuf, last);
	put_be64(mbuf + 8, first);
	flowdb_xact_put((uint8 *) meta_key.data, meta_key.len, 0, 0, mbuf, 16);
}

static void
pre_commit(void)
{
	int			nops;
	const FlowdbOp *ops;
	uint8		dbp[5];
	Change	   *ch;
	int			nch = 0;
	int32	   *ids;
	int			nids = 0;
	bool		any_write = false;

	if (!active)
		return;
	ops = flowdb_xact_ops(&nops);
	(void) flowdb_db_prefix(dbp, FLOWDB_KIND_JSONDB);
	ch = palloc(Max(nops, 1) * sizeof(Change));
	for (int i = 0; i < nops; i++)
	{
		const FlowdbOp *op = &ops[i];

		if (op->key_len < 10 || memcmp(op->key, dbp, 5) != 0)
			continue;
		any_write = true;
		if (op->kind != FLOWDB_OP_DELETE_RANGE && op->key[9] == 'd')
		{
			ch[nch].op = *op;
			ch[nch].store = key_store_id(op->key, op->key_len);
			nch++;
		}
		store_use(key_store_id(op->key, op->key_len))->written = true;
	}
	if (!any_write)
		return;

	/* 1. store locks in id order */
	ids = palloc(nuses * sizeof(int32));
	for (int i = 0; i < nuses; i++)
		ids[nids++] = uses[i].id;
	qsort(ids, nids, sizeof(int32), int32_cmp);
	for (int i = 0; i < nids; i++)
		lock_store(ids[i], store_use(ids[i])->written ? ExclusiveLock : ShareLock);

	PushActiveSnapshot(GetTransactionSnapshot());
	check_definitions();		/* 2 */
	validate();					/* 3 */

	/* 4, 5: the final write of each document, per store, in write order */
	qsort(ch, nch, sizeof(Change), change_cmp);
	{
		int			i = 0;

		while (i < nch)
		{
			int32		sid = ch[i].store;
			Change	   *fin = palloc(nch * sizeof(Change));
			int			nfin = 0;
			StoreUse   *u = store_use(sid);
			JdbStore   *s = u->name[0] ? jdb_store_lookup(u->name) : NULL;

			for (; i < nch && ch[i].store == sid; i++)
				if (i + 1 == nch || ch[i + 1].store != sid ||
					flowdb_key_cmp(ch[i].op.key, ch[i].op.key_len,
								   ch[i + 1].op.key, ch[i + 1].op.key_len) != 0)
					fin[nfin++] = ch[i];
			/* write order (op seq) is the log order within the transaction */
			qsort(fin, nfin, sizeof(Change), change_seq_cmp);
			if (s && s->watched)
				(void) GetTopTransactionId();	/* NOTIFY needs an xid: tagged commit */
			log_changes(sid, fin, nfin, s && s->watched, u->name);
		}
	}
	PopActiveSnapshot();
}

void
jdb_txn_register(void)
{
	flowdb_xact_pre_commit_hook = pre_commit;
	RegisterSubXactCallback(subxact_cb, NULL);
	flowdb_before_detach_hook = before_detach;
}
