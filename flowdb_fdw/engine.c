/*
 * engine.c — a backend's handle on the shared engine.
 *
 * Backends attach lazily on first use: wait (bounded) for the worker to have
 * opened and recovered the engine, then lsm_attach.  Before the backend
 * leaves shared memory it closes every iterator it still holds, aborts a
 * prepared batch, and detaches.
 *
 * All engine failures become ereports here, with one status -> SQLSTATE map.
 * The rule for callers: capture the status and message, release what the
 * engine handed out (iterators, snapshots), then raise.
 */
#include "flowdb.h"

#include "access/xlog.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#define ATTACH_TIMEOUT_MS 30000
#define ATTACH_POLL_MS 20

static lsm_db *backend_db = NULL;

void		(*flowdb_before_detach_hook) (lsm_db *db) = NULL;
static bool exit_callback_registered = false;

/* Open iterators of this backend (doubly linked, head sentinel-less). */
static FlowdbIterRef *open_iters = NULL;

static lsm_status captured_status = LSM_OK;
static char captured_msg[1024];

int
flowdb_sqlstate(lsm_status st)
{
	switch (st)
	{
		case LSM_INVALID:
			return ERRCODE_INVALID_PARAMETER_VALUE;
		case LSM_TOO_LARGE:
			return ERRCODE_PROGRAM_LIMIT_EXCEEDED;
		case LSM_IO:
			return ERRCODE_IO_ERROR;
		case LSM_CORRUPT:
			return ERRCODE_DATA_CORRUPTED;
		case LSM_NO_MEMORY:
			return ERRCODE_OUT_OF_MEMORY;
		case LSM_BUSY:
			return ERRCODE_INSUFFICIENT_RESOURCES;
		case LSM_CLOSED:
			return ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
		default:
			return ERRCODE_INTERNAL_ERROR;
	}
}

void
flowdb_capture_error(lsm_status st)
{
	captured_status = st;
	strlcpy(captured_msg, lsm_errmsg(), sizeof(captured_msg));
}

void
flowdb_raise_captured(const char *what)
{
	lsm_status	st = captured_status;

	ereport(ERROR,
			(errcode(flowdb_sqlstate(st)),
			 errmsg("flowdb: %s failed: %s", what,
					captured_msg[0] ? captured_msg : lsm_status_name(st)),
			 st == LSM_BUSY ?
			 errhint("The engine is applying back-pressure (memtables full or too many concurrent "
					 "writers/iterators); retry, or raise flowdb.max_frozen_memtables.") : 0));
	pg_unreachable();
}

void
flowdb_raise(lsm_status st, const char *what)
{
	flowdb_capture_error(st);
	flowdb_raise_captured(what);
}

/* ------------------------------------------------------------ iterators */

static void
iter_unlink(FlowdbIterRef *ref)
{
	if (ref->prev)
		ref->prev->next = ref->next;
	else if (open_iters == ref)
		open_iters = ref->next;
	if (ref->next)
		ref->next->prev = ref->prev;
	ref->prev = ref->next = NULL;
}

void
flowdb_iter_close(FlowdbIterRef *ref)
{
	if (ref->iter)
	{
		lsm_iter_close(ref->iter);
		ref->iter = NULL;
		iter_unlink(ref);
	}
}

static void
iter_context_reset(void *arg)
{
	flowdb_iter_close((FlowdbIterRef *) arg);
}

FlowdbIterRef *
flowdb_iter_open(MemoryContext owner, const lsm_read_options *ro, const lsm_scan_spec *spec)
{
	lsm_db	   *db = flowdb_db();
	FlowdbIterRef *ref = MemoryContextAllocZero(owner, sizeof(FlowdbIterRef));
	lsm_status	st;

	st = lsm_iter_open(db, ro, spec, &ref->iter);
	if (st != LSM_OK)
	{
		ref->iter = NULL;
		flowdb_raise(st, "opening a scan");
	}
	ref->next = open_iters;
	if (open_iters)
		open_iters->prev = ref;
	open_iters = ref;
	ref->cb.func = iter_context_reset;
	ref->cb.arg = ref;
	MemoryContextRegisterResetCallback(owner, &ref->cb);
	return ref;
}

/* -------------------------------------------------------- attach/detach */

static void
detach_at_exit(int code, Datum arg)
{
	lsm_db	   *db = backend_db;

	if (db == NULL)
		return;
	while (open_iters)
		flowdb_iter_close(open_iters);
	if (flowdb_before_detach_hook)
		flowdb_before_detach_hook(db);
	flowdb_xact_before_detach(db);
	backend_db = NULL;
	lsm_detach(db);
}

static bool
engine_ready(void)
{
	return flowdb_ctl != NULL &&
		pg_atomic_read_u32(&flowdb_ctl->ready) == 1 &&
		lsm_region_ready(flowdb_region);
}

static void
wait_until_ready(void)
{
	long		waited = 0;

	while (!engine_ready())
	{
		if (waited >= ATTACH_TIMEOUT_MS)
		{
			char		last_error[512];

			SpinLockAcquire(&flowdb_ctl->mutex);
			strlcpy(last_error, flowdb_ctl->last_error, sizeof(last_error));
			SpinLockRelease(&flowdb_ctl->mutex);
			ereport(ERROR,
					(errcode(ERRCODE_CANNOT_CONNECT_NOW),
					 errmsg("flowdb: the engine is not ready after %d seconds",
							ATTACH_TIMEOUT_MS / 1000),
					 last_error[0] ?
					 errdetail("The flowdb engine worker failed to open the engine: %s", last_error) :
					 errdetail("The flowdb engine worker has not finished recovery."),
					 errhint("See the server log for messages from the \"flowdb engine\" worker.")));
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ATTACH_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		waited += ATTACH_POLL_MS;
	}
}

lsm_db *
flowdb_db_if_attached(void)
{
	return backend_db;
}

lsm_db *
flowdb_db(void)
{
	lsm_open_options opts;
	lsm_status	st;

	if (backend_db)
		return backend_db;
	if (flowdb_ctl == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("flowdb shared memory is not initialised"),
				 errhint("Add shared_preload_libraries = 'flowdb' to postgresql.conf and restart the server.")));
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("flowdb is not available during recovery or on a standby")));

	wait_until_ready();

	if (!exit_callback_registered)
	{
		before_shmem_exit(detach_at_exit, (Datum) 0);
		exit_callback_registered = true;
	}
	memset(&opts, 0, sizeof(opts));
	st = lsm_attach(flowdb_region, &opts, &backend_db);
	if (st != LSM_OK)
	{
		backend_db = NULL;
		flowdb_raise(st, "attaching to the engine");
	}
	return backend_db;
}
