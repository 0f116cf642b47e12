/*
 * txn.c — JsonDB calls inside a Postgres transaction.
 *
 * Snapshot.  The first jsondb call of a transaction pins an engine snapshot;
 * every read goes to the transaction's own buffered writes first (xact.c's
 * buffer, so savepoints work), then to that snapshot.  The snapshot is
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
 * A filter over the keys this transaction wrote through jdb_write_*: a clear
 * bit means "not in xact.c's write buffer", so reads skip that buffer's
 * linear search.  It is trusted only while every op in the buffer came
 * through jdb_write_* (its count equals wf_ops) and no subtransaction was
 * rolled back; otherwise reads take the full search for the rest of the
 * transaction.  Bits only cause a full search, never a wrong answer.
 */
#define WF_MIN_BITS (1 << 16)
static uint64 *wf = NULL;
static uint32 wf_bits = 0;		/* a power of two; kept >= 8 bits per op */
static int	wf_ops = 0;
static bool wf_valid = true;

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
	wf = NULL;
	wf_bits = 0;
	wf_ops = 0;
	wf_valid = true;
}

static inline void
wf_set(const uint8 *key, int klen)
{
	uint32		h = hash_bytes(key, klen) & (wf_bits - 1);

	wf[h >> 6] |= UINT64CONST(1) << (h & 63);
}

static void
wf_add(const uint8 *key, int klen)
{
	if (wf == NULL)
	{
		wf_bits = WF_MIN_BITS;
		wf = MemoryContextAllocZero(TopTransactionContext, wf_bits / 8);
	}
	wf_ops++;
	if (wf_valid && (uint64) wf_ops * 8 > wf_bits && wf_bits < ((uint32) 1 << 30))
	{
		/* grow (x4) and rebuild from the buffer: while the filter is valid
		 * every op in it came through here, this one included */
		int			nops;
		const FlowdbOp *ops = flowdb_xact_ops(&nops);

		if (nops != wf_ops)
		{
			wf_valid = false;
			return;
		}
		pfree(wf);
		wf_bits *= 4;
		wf = MemoryContextAllocExtended(TopTransactionContext, wf_bits / 8,
										MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
		for (int i = 0; i < nops; i++)
			wf_set(ops[i].key, ops[i].key_len);
		return;
	}
	wf_set(key, klen);
}

/* false: key is certainly not in the transaction's write buffer */
static bool
own_write_possible(const uint8 *key, int klen)
{
	int			nops;
	uint32		h;

	(void) flowdb_xact_ops(&nops);
	if (nops == 0)
		return false;
	if (!wf_valid || nops != wf_ops || wf == NULL)
	{
		wf_valid = false;
		return true;
	}
	h = hash_bytes(key, klen) & (wf_bits - 1);
	return (wf[h >> 6] >> (h & 63)) & 1;
}

static void
subxact_cb(SubXactEvent event, SubTransactionId my_subid, SubTransactionId parent_subid,
		   void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		wf_valid = false;		/* its ops left the buffer */
}

bool
jdb_scan_tracks(const lsm_record *rec)
{
	return !own_write_possible(rec->key, rec->key_len) ||
		!flowdb_xact_touches(rec->key, rec->key_len);
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
	switch (own_write_possible(key, klen) ? flowdb_xact_lookup(key, klen, 0, 0, &op)
			: FLOWDB_OWN_NONE)
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
	flowdb_xact_put_xidless(key, klen, 0, 0, val, vlen);
	wf_add(key, klen);
}

void
jdb_write_delete(const JdbStore *s, const uint8 *key, int klen)
{
	jdb_note_store_write(s);
	flowdb_xact_delete_xidless(key, klen, 0);
	wf_add(key, klen);
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
		StringInfoData k,
					v;
		uint8		b8[8];
		uint64		version = 0;
		const uint8 *pk = op->key + 10;
		int			pklen = op->key_len - 10;

		last++;
		initStringInfo(&k);
		appendBinaryStringInfo(&k, (char *) prefix, 9);
		appendStringInfoChar(&k, 'c');
		put_be64(b8, last);
		appendBinaryStringInfo(&k, (char *) b8, 8);
		if (op->kind == FLOWDB_OP_PUT && op->value_len >= 8)
			version = get_be64(op->value);
		initStringInfo(&v);
		appendStringInfoChar(&v, op->kind == FLOWDB_OP_PUT ? 'p' : 'd');
		put_be64(b8, version);
		appendBinaryStringInfo(&v, (char *) b8, 8);
		appendBinaryStringInfo(&v, (char *) pk, pklen);
		flowdb_xact_put_xidless((uint8 *) k.data, k.len, 0, 0, (uint8 *) v.data, v.len);
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
			Async_Notify(JDB_NOTIFY_CHANNEL, payload.data);
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
			flowdb_xact_delete_xidless((uint8 *) dk.data, dk.len, 0);
		}
		first = new_first;
	}
	put_be64(mbuf, last);
	put_be64(mbuf + 8, first);
	flowdb_xact_put_xidless((uint8 *) meta_key.data, meta_key.len, 0, 0, mbuf, 16);
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
