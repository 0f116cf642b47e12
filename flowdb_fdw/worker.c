/*
 * worker.c — the background worker that hosts the engine.
 *
 * It starts once Postgres recovery has finished (so the commit log is
 * consistent), opens the engine on the shared region (lsm_open recovers from
 * the manifest and WAL, keeping only batches whose Postgres transaction
 * committed — see tag_filter), marks it ready for backends, and then runs
 * maintenance (flush, compaction, TTL GC, interval WAL sync) until SIGTERM,
 * when it closes the engine (flush + sync).  If it dies any other way the
 * postmaster's crash-restart reinitialises shared memory and starts it again.
 */
#include "flowdb.h"

#include <signal.h>

#include "access/transam.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/guc.h"
#include "utils/wait_event.h"

#define MAINTENANCE_WAIT_MS 100

static volatile sig_atomic_t got_sigterm = false;

void
flowdb_register_worker(void)
{
	BackgroundWorker w;

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = 5;		/* also restarted by crash-restart */
	snprintf(w.bgw_library_name, BGW_MAXLEN, "flowdb");
	snprintf(w.bgw_function_name, BGW_MAXLEN, "flowdb_worker_main");
	snprintf(w.bgw_name, BGW_MAXLEN, "flowdb engine");
	snprintf(w.bgw_type, BGW_MAXLEN, "flowdb engine");
	RegisterBackgroundWorker(&w);
}

/*
 * Recovery filter: keep a WAL batch iff the Postgres transaction that wrote
 * it committed.  The tag is the transaction's FullTransactionId.
 *
 *  - A tag at or beyond the next xid was never committed (a commit record
 *    would have advanced nextXid during Postgres recovery): drop.
 *  - A tag older than the clog horizon (oldestClogXid) can no longer be looked
 *    up.  Clog is only truncated past transactions that finished long ago,
 *    and an aborted batch is discarded by the engine itself (lsm_write_abort
 *    logs the abort), while a batch orphaned by a crash was decided by the
 *    recovery right after that crash, which flushes its result (see below).
 *    So a batch still in the WAL that old committed: keep ("committed if
 *    frozen").
 *  - Otherwise ask the commit log.
 */
static bool
tag_filter(uint64_t tag, void *arg)
{
	FullTransactionId fxid = FullTransactionIdFromU64(tag);
	FullTransactionId next = ReadNextFullTransactionId();
	TransactionId xid = XidFromFullTransactionId(fxid);
	uint64		age,
				horizon_age;

	if (!FullTransactionIdPrecedes(fxid, next))
		return false;
	age = U64FromFullTransactionId(next) - tag;
	horizon_age = (uint32) (XidFromFullTransactionId(next) - ShmemVariableCache->oldestClogXid);
	if (age > horizon_age || !TransactionIdIsNormal(xid))
		return true;
	return TransactionIdDidCommit(xid);
}

static void
handle_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	got_sigterm = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

static void
set_last_error(const char *msg)
{
	SpinLockAcquire(&flowdb_ctl->mutex);
	strlcpy(flowdb_ctl->last_error, msg, sizeof(flowdb_ctl->last_error));
	SpinLockRelease(&flowdb_ctl->mutex);
}

static lsm_db *
open_engine(void)
{
	lsm_config	cfg;
	lsm_open_options opts;
	lsm_db	   *db = NULL;
	lsm_status	st;

	flowdb_build_config(&cfg);
	memset(&opts, 0, sizeof(opts));
	opts.tag_filter = tag_filter;
	opts.background_threads = false;

	st = lsm_open(&cfg, flowdb_region, flowdb_ctl->region_size, &opts, &db);
	if (st != LSM_OK)
	{
		char		msg[512];

		snprintf(msg, sizeof(msg), "%s: %s", lsm_status_name(st), lsm_errmsg());
		set_last_error(msg);
		ereport(ERROR,
				(errcode(flowdb_sqlstate(st)),
				 errmsg("flowdb: could not open the engine in \"%s\": %s", cfg.dir, msg)));
	}

	/* Persist what recovery decided, so a later recovery never re-judges a
	 * dropped batch (its xid may be reused after this crash). */
	st = lsm_flush(db);
	if (st != LSM_OK)
		ereport(WARNING,
				(errmsg("flowdb: flush after recovery failed: %s", lsm_errmsg())));
	return db;
}

static void
maintenance_loop(lsm_db *db)
{
	int			failures = 0;

	while (!got_sigterm)
	{
		lsm_status	st;

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		st = lsm_maintenance_run(db);
		if (st != LSM_OK)
		{
			/* Log, back off, keep serving: a failed flush/compaction leaves
			 * the data where it was (memtable/WAL or old tables). */
			if (failures++ % 100 == 0)
				ereport(WARNING,
						(errcode(flowdb_sqlstate(st)),
						 errmsg("flowdb: engine maintenance failed: %s", lsm_errmsg())));
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 1000L, PG_WAIT_EXTENSION);
		}
		else
		{
			failures = 0;
			lsm_maintenance_wait(db, MAINTENANCE_WAIT_MS);
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 0L, PG_WAIT_EXTENSION);
		}
		ResetLatch(MyLatch);
	}
}

void
flowdb_worker_main(Datum arg)
{
	lsm_db	   *db;
	lsm_status	st;

	pqsignal(SIGTERM, handle_sigterm);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	db = open_engine();

	SpinLockAcquire(&flowdb_ctl->mutex);
	flowdb_ctl->worker_pid = MyProcPid;
	flowdb_ctl->last_error[0] = '\0';
	SpinLockRelease(&flowdb_ctl->mutex);
	pg_atomic_write_u32(&flowdb_ctl->ready, 1);
	ereport(LOG, (errmsg("flowdb: engine ready")));

	/* Take the first-touch page faults of the memtable arenas and block
	 * caches here, on the worker, instead of in the first writers. */
	lsm_prefault(db);

	maintenance_loop(db);

	pg_atomic_write_u32(&flowdb_ctl->ready, 0);
	st = lsm_close(db);
	if (st != LSM_OK)
		ereport(WARNING, (errmsg("flowdb: closing the engine failed: %s", lsm_errmsg())));
	else
		ereport(LOG, (errmsg("flowdb: engine closed")));
	proc_exit(0);
}
