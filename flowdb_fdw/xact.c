/*
 * xact.c — FlowDB writes are atomic with the Postgres transaction.
 *
 * Writes are buffered in the backend (TopTransactionContext), each tagged
 * with the subtransaction nesting level that made it.  Invariant: levels are
 * non-decreasing along the buffer, because writes are appended at the current
 * level and a finished subtransaction's entries are either dropped (ROLLBACK
 * TO / subtransaction abort) or relabelled to its parent's level (RELEASE).
 * So both operations only touch the buffer's tail.
 *
 * Commit protocol (two-phase, against the engine's WAL):
 *   PRE_COMMIT  the buffered writes, tagged with the FullTransactionId
 *               when the transaction has one (else see xid-less below), are
 *               prepared with lsm_write_prepare_ops (a large transaction
 *               is written as a table straight from the buffer; a small
 *               one as one batch): in the engine WAL (synced in
 *               "always" mode) but invisible.  Before that, a small Postgres
 *               WAL record carrying the xid is written (and flushed in
 *               "always" mode) so that after a crash Postgres never hands the
 *               same xid to another transaction, and the commit itself is a
 *               normal synchronous commit.
 *   COMMIT      lsm_write_commit publishes the batch.  It fails only when a
 *               large batch, written as a table of its own, cannot be added
 *               to the engine's manifest (I/O error): PANIC, and recovery
 *               installs the table.
 *   ABORT       lsm_write_abort discards a prepared batch.
 * After a crash the worker's recovery keeps a batch iff clog says its xid
 * committed, so a transaction that did not commit in Postgres never appears.
 * PREPARE TRANSACTION (2PC) with buffered writes is refused.
 *
 * Xid-less commits: buffering a write does not assign a Postgres
 * transaction id.  If at PRE_COMMIT the transaction still has none (it
 * wrote nothing to Postgres itself: a foreign-table INSERT / COPY / UPDATE /
 * DELETE, a JsonDB call or a flowdb.put alone), its engine batch is its only
 * effect: the batch is prepared untagged (recovery keeps it unless its
 * ABORT record was logged) and no Postgres WAL is written, so the commit
 * costs one fsync (the engine WAL's) instead of three (the xid's record,
 * the engine WAL, the commit record), as a heap INSERT costs one.  A
 * transaction that also writes to Postgres has an xid by PRE_COMMIT and
 * takes the tagged path above.  Under SERIALIZABLE an xid is assigned
 * anyway, because Postgres may still raise a serialization failure after
 * PRE_COMMIT; a later failure aborts the batch (logged before the error is
 * reported).  Residual window: an error raised after PRE_COMMIT in an
 * xid-less transaction (a user NOTIFY whose queue is full, another
 * extension's pre-commit callback) followed by a crash before the ABORT
 * record reaches disk.
 *
 * Streaming: a transaction whose writes come in table order (puts and
 * deletes at the top level, (key, ts) strictly increasing: a sorted bulk
 * load) hands them to an engine table stream once they are more than the
 * engine would take into a memtable; a helper thread writes the table
 * while the transaction goes on, and PRE_COMMIT only finishes it
 * (lsm_write_prepare_stream).  The buffer keeps every write as before (reads
 * of the transaction's own writes, and the fallback): the stream points
 * into it, so it is abandoned before the buffer's memory can go (abort,
 * detach).  The first write out of order, in a subtransaction or a range
 * delete abandons it; PRE_COMMIT then prepares the buffer as usual.
 *
 * flowdb_xact_pre_commit_hook (JsonDB's OCC validation and change log) runs
 * at PRE_COMMIT before the batch is built; it may add writes or raise.
 */
#include "flowdb.h"

#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "replication/message.h"
#include "utils/memutils.h"

#define BATCH_KEEP_BYTES (64 * 1024 * 1024)

static FlowdbOp *ops = NULL;
static int	nops = 0;
static int	ops_cap = 0;
static uint32 next_seq = 0;

/*
 * Keys and values of buffered writes are carved from 1 MiB blocks of
 * TopTransactionContext: a large COPY buffers a million small writes, and a
 * palloc each (rounded up to a power of two, plus a chunk header) took about
 * half as much memory again (benchmark Q rows: ~300 instead of ~200 bytes),
 * all of it freshly faulted in.  The memory goes with the
 * transaction; ROLLBACK TO leaves its bytes unused until then.  Once a
 * transaction has used PREFAULT_AFTER_BLOCKS blocks, later blocks are
 * allocated a few ahead and their pages touched by a prefault.c thread, so
 * the page faults of a bulk load's buffer are taken on another core.
 * (Advising the blocks as huge pages instead made a million-row COPY
 * slower here: the first fault of each 2 MiB page cost more than the
 * 4 KiB faults it saved.)
 */
#define ARENA_BLOCK (1024 * 1024)
#define PREFAULT_AFTER_BLOCKS 16
static uint8 *arena_ptr = NULL;
static size_t arena_left = 0;
static int	arena_blocks_used = 0;
static FlowdbPrefaulter *prefaulter = NULL; /* its blocks: TopTransactionContext */

void		(*flowdb_xact_pre_commit_hook) (void) = NULL;

static lsm_batch *batch = NULL;
static bool prepared = false;
static lsm_ticket ticket;

/* Invariant: stream != NULL only while stream_possible, and then it holds
 * exactly ops [0, nops). */
static lsm_table_stream *stream = NULL;
static bool stream_possible = true; /* ops so far qualify (see header) */
static size_t buffered_kv_bytes = 0;	/* keys + values of ops [0, nops) */

static void
stream_stop(void)
{
	stream_possible = false;
	if (stream)
		lsm_table_stream_abandon(stream);
	stream = NULL;
}

static void
reset_buffer(void)
{
	stream_stop();				/* it reads the buffer, about to go */
	flowdb_prefault_stop(prefaulter);	/* it touches blocks about to go */
	prefaulter = NULL;
	ops = NULL;					/* memory goes with TopTransactionContext */
	arena_ptr = NULL;
	arena_left = 0;
	arena_blocks_used = 0;
	nops = 0;
	ops_cap = 0;
	next_seq = 0;
	stream_possible = true;
	buffered_kv_bytes = 0;
}

static FlowdbOp *
append_op(FlowdbOpKind kind)
{
	FlowdbOp   *op;

	if (nops == 0 && ops == NULL)
	{
		if (RecoveryInProgress())
			ereport(ERROR,
					(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
					 errmsg("flowdb: cannot write during recovery")));
		(void) flowdb_db();		/* engine ready? fail now, not at commit */
		ops_cap = 64;
		ops = MemoryContextAlloc(TopTransactionContext, ops_cap * sizeof(FlowdbOp));
	}
	else if (nops == ops_cap)
	{
		if (prefaulter)
			flowdb_prefault_forget_range(prefaulter);	/* repalloc may move it */
		ops_cap *= 2;
		ops = repalloc(ops, ops_cap * sizeof(FlowdbOp));
		if (prefaulter)
			flowdb_prefault_range(prefaulter, (uint8 *) (ops + nops),
								  (ops_cap - nops) * sizeof(FlowdbOp));
	}
	op = &ops[nops++];
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	op->nest_level = GetCurrentTransactionNestLevel();
	op->seq = next_seq++;
	return op;
}

/* The next arena block: from the prefaulter once the buffer is large. */
static uint8 *
arena_block_new(void)
{
	if (++arena_blocks_used == PREFAULT_AFTER_BLOCKS)
		prefaulter = flowdb_prefault_start(ARENA_BLOCK);
	if (prefaulter == NULL)
		return MemoryContextAlloc(TopTransactionContext, ARENA_BLOCK);
	while (flowdb_prefault_has_room(prefaulter))
		flowdb_prefault_submit(prefaulter,
							   MemoryContextAlloc(TopTransactionContext, ARENA_BLOCK));
	return flowdb_prefault_take(prefaulter);
}

static uint8 *
copy_bytes(const uint8 *p, int len)
{
	size_t		need = MAXALIGN(Max(len, 1));	/* callers may read fixed-size fields */
	uint8	   *c;

	if (need > ARENA_BLOCK / 8)	/* big: its own chunk */
		c = MemoryContextAlloc(TopTransactionContext, need);
	else
	{
		if (need > arena_left)
		{
			arena_ptr = arena_block_new();
			arena_left = ARENA_BLOCK;
		}
		c = arena_ptr;
		arena_ptr += need;
		arena_left -= need;
	}
	if (len > 0)
		memcpy(c, p, len);
	return c;
}

static lsm_write_op
engine_op(const FlowdbOp *op)
{
	switch (op->kind)
	{
		case FLOWDB_OP_PUT:
			return (lsm_write_op) {LSM_OP_PUT, op->key, op->key_len, op->value,
				op->value_len, op->ts, op->expire_at};
		case FLOWDB_OP_DELETE:
			return (lsm_write_op) {LSM_OP_DELETE, op->key, op->key_len, NULL, 0, op->ts, 0};
		case FLOWDB_OP_DELETE_RANGE:
			break;
	}
	return (lsm_write_op) {LSM_OP_DELETE_RANGE, op->key, op->key_len, op->end,
		op->end_len, 0, 0};
}

/* Does op keep the buffer streamable after prev (NULL: it is the first)? */
static bool
streamable_after(const FlowdbOp *prev, const FlowdbOp *op)
{
	int			c;

	if (op->kind == FLOWDB_OP_DELETE_RANGE || op->nest_level != 1)
		return false;
	if (prev == NULL)
		return true;
	c = flowdb_key_cmp(prev->key, prev->key_len, op->key, op->key_len);
	return c < 0 || (c == 0 && prev->ts < op->ts);
}

static bool
stream_feed(const FlowdbOp *op)
{
	lsm_write_op w = engine_op(op);

	if (lsm_table_stream_add(stream, &w) == LSM_OK)
		return true;
	stream_stop();				/* PRE_COMMIT's usual path reports any error */
	return false;
}

/* The last op was just filled in: keep the stream (or the chance of one). */
static void
stream_note_last_op(void)
{
	const FlowdbOp *op = &ops[nops - 1];

	if (!stream_possible)
		return;
	/* Once a stream runs, it checks the (key, ts) order itself. */
	if (!streamable_after(stream || nops == 1 ? NULL : &ops[nops - 2], op))
	{
		stream_stop();
		return;
	}
	buffered_kv_bytes += op->key_len + op->value_len;
	if (stream)
	{
		(void) stream_feed(op);
		return;
	}
	if (!lsm_write_ops_ingested(flowdb_db(), nops, buffered_kv_bytes))
		return;
	if (lsm_table_stream_open(flowdb_db(), &stream) != LSM_OK)
	{
		stream_stop();			/* the open left stream NULL */
		return;
	}
	for (int i = 0; i < nops; i++)
		if (!stream_feed(&ops[i]))
			return;
}

void
flowdb_xact_put(const uint8 *key, int key_len, int64 ts, int64 expire_at,
				const uint8 *value, int value_len)
{
	FlowdbOp   *op = append_op(FLOWDB_OP_PUT);

	op->key = copy_bytes(key, key_len);
	op->key_len = key_len;
	op->ts = ts;
	op->expire_at = expire_at;
	op->value = copy_bytes(value, value_len);
	op->value_len = value_len;
	stream_note_last_op();
}

void
flowdb_xact_delete(const uint8 *key, int key_len, int64 ts)
{
	FlowdbOp   *op = append_op(FLOWDB_OP_DELETE);

	op->key = copy_bytes(key, key_len);
	op->key_len = key_len;
	op->ts = ts;
	stream_note_last_op();
}

void
flowdb_xact_delete_range(const uint8 *start, int start_len, const uint8 *end, int end_len)
{
	FlowdbOp   *op = append_op(FLOWDB_OP_DELETE_RANGE);

	op->key = copy_bytes(start, start_len);
	op->key_len = start_len;
	op->end = copy_bytes(end, end_len);
	op->end_len = end_len;
	stream_stop();
}

static bool
range_covers(const FlowdbOp *op, const uint8 *key, int key_len)
{
	return flowdb_key_cmp(op->key, op->key_len, key, key_len) <= 0 &&
		flowdb_key_cmp(key, key_len, op->end, op->end_len) < 0;
}

FlowdbOwnWrite
flowdb_xact_lookup(const uint8 *key, int key_len, int64 ts, int64 now, const FlowdbOp **out)
{
	for (int i = nops - 1; i >= 0; i--)
	{
		const FlowdbOp *op = &ops[i];

		if (op->kind == FLOWDB_OP_DELETE_RANGE)
		{
			if (range_covers(op, key, key_len))
				return FLOWDB_OWN_GONE;
			continue;
		}
		if (op->ts != ts || flowdb_key_cmp(op->key, op->key_len, key, key_len) != 0)
			continue;
		if (op->kind == FLOWDB_OP_DELETE ||
			(op->expire_at != 0 && op->expire_at <= now))
			return FLOWDB_OWN_GONE;
		*out = op;
		return FLOWDB_OWN_PUT;
	}
	return FLOWDB_OWN_NONE;
}

bool
flowdb_xact_touches(const uint8 *key, int key_len)
{
	for (int i = 0; i < nops; i++)
	{
		const FlowdbOp *op = &ops[i];

		if (op->kind == FLOWDB_OP_DELETE_RANGE ? range_covers(op, key, key_len)
			: flowdb_key_cmp(op->key, op->key_len, key, key_len) == 0)
			return true;
	}
	return false;
}

const FlowdbOp *
flowdb_xact_ops(int *n)
{
	*n = nops;
	return ops;
}

/* ---------------------------------------------------------- commit path */

/*
 * The buffered writes as the engine's in-place ops.  They point into the
 * buffer, so a large transaction goes to the engine without being encoded
 * into a batch first (the engine sorts and writes it as a table).
 */
static lsm_write_op *
engine_ops(void)
{
	lsm_write_op *w = MemoryContextAllocHuge(TopTransactionContext,
											 Max(nops, 1) * sizeof(lsm_write_op));

	for (int i = 0; i < nops; i++)
		w[i] = engine_op(&ops[i]);
	return w;
}

/* Make the xid durable in Postgres' WAL before the engine batch can be. */
static void
log_xid_for_engine(void)
{
	FullTransactionId fxid = GetTopFullTransactionId();
	uint64		tag = U64FromFullTransactionId(fxid);
	XLogRecPtr	lsn;

	lsn = LogLogicalMessage("flowdb", (const char *) &tag, sizeof(tag), false);
	if (flowdb_wal_sync_mode == LSM_SYNC_ALWAYS)
		XLogFlush(lsn);
}

static void
prepare_batch(void)
{
	lsm_db	   *db = flowdb_db();
	lsm_status	st;
	bool		tagged;
	uint64		tag;
	lsm_write_op *w;

	if (batch == NULL && (batch = lsm_batch_new()) == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("flowdb: out of memory for a write batch")));

	if (IsolationIsSerializable())
		(void) GetTopFullTransactionId();	/* SSI may still fail the commit */
	tagged = FullTransactionIdIsValid(GetTopFullTransactionIdIfAny());
	tag = tagged ? U64FromFullTransactionId(GetTopFullTransactionId()) : 0;
	if (tagged)
		log_xid_for_engine();
	if (stream)
	{
		Assert(stream_possible && lsm_table_stream_count(stream) == (uint64) nops);
		st = lsm_write_prepare_stream(db, stream, tag, &ticket);
		stream = NULL;			/* freed by the call */
	}
	else
	{
		w = engine_ops();
		st = lsm_write_prepare_ops(db, w, nops, tag, batch, &ticket);
		pfree(w);
	}
	if (st != LSM_OK)
		flowdb_raise(st, "writing the transaction to the engine WAL");
	prepared = true;
}

static void
release_batch_memory(void)
{
	if (batch && lsm_batch_bytes(batch) > BATCH_KEEP_BYTES)
	{
		lsm_batch_free(batch);
		batch = NULL;
	}
	else if (batch)
		lsm_batch_clear(batch);
}

static void
finish_batch(bool commit)
{
	lsm_db	   *db = flowdb_db_if_attached();
	lsm_status	st;

	if (!prepared || db == NULL)
		return;
	prepared = false;
	if (commit)
	{
		st = lsm_write_commit(db, &ticket);
		/* The xid is committed in clog: recovery would publish this batch.
		 * Restart so memory and disk agree again. */
		if (st != LSM_OK)
			ereport(PANIC,
					(errmsg("flowdb: publishing a committed batch failed: %s", lsm_errmsg())));
	}
	else
	{
		st = lsm_write_abort(db, &ticket);
		if (st != LSM_OK)		/* recovery drops it anyway: xid not committed */
			ereport(WARNING,
					(errmsg("flowdb: discarding an aborted batch failed: %s", lsm_errmsg())));
	}
	release_batch_memory();
}

static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (flowdb_xact_pre_commit_hook)
				flowdb_xact_pre_commit_hook();
			if (nops > 0)
				prepare_batch();
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (nops > 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("flowdb: cannot PREPARE a transaction that wrote to flowdb"),
						 errdetail("Two-phase commit is not supported by flowdb.")));
			break;
		case XACT_EVENT_COMMIT:
			finish_batch(true);
			reset_buffer();
			break;
		case XACT_EVENT_ABORT:
			finish_batch(false);
			reset_buffer();
			break;
		case XACT_EVENT_PREPARE:
			reset_buffer();
			break;
		default:
			break;
	}
}

static void
subxact_callback(SubXactEvent event, SubTransactionId my_subid,
				 SubTransactionId parent_subid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();

	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		/* A stream never holds ops of a subtransaction (they stop it). */
		Assert(stream == NULL || nops == 0 || ops[nops - 1].nest_level < level);
		while (nops > 0 && ops[nops - 1].nest_level >= level)
			nops--;
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (int i = nops - 1; i >= 0 && ops[i].nest_level >= level; i--)
			ops[i].nest_level = level - 1;
	}
}

void
flowdb_xact_before_detach(lsm_db *db)
{
	if (prepared)
	{
		prepared = false;
		(void) lsm_write_abort(db, &ticket);
	}
	reset_buffer();				/* stops a stream still running */
}

void
flowdb_xact_register(void)
{
	RegisterXactCallback(xact_callback, NULL);
	RegisterSubXactCallback(subxact_callback, NULL);
}
