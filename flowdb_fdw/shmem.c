/*
 * shmem.c — the engine's region in Postgres shared memory.
 *
 * Layout of the one ShmemInitStruct block:
 *   FlowdbControl | padding to 64 bytes | engine region of lsm_region_size(cfg) bytes
 * (the engine needs an aligned region; 64 = a cache line, more than the
 * 16 bytes it checks for)
 *
 * The engine region is initialised by the worker's lsm_open(); until it is,
 * backends see ctl->ready == 0 and wait.  After a crash-restart the postmaster
 * creates fresh shared memory and this startup hook runs again, so the
 * control block always starts out "not ready".
 */
#include "flowdb.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "storage/lwlock.h"

FlowdbControl *flowdb_ctl = NULL;
void	   *flowdb_region = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
region_size(void)
{
	lsm_config	cfg;

	flowdb_build_config(&cfg);
	return lsm_region_size(&cfg);
}

#define REGION_ALIGN 64

static Size
total_size(void)
{
	return add_size(sizeof(FlowdbControl) + REGION_ALIGN, region_size());
}

/* Runs in the postmaster once MaxBackends is known: validate the whole
 * configuration (cross-field rules live in the engine) and reserve memory. */
static void
flowdb_shmem_request(void)
{
	lsm_config	cfg;

	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	flowdb_build_config(&cfg);
	if (lsm_config_validate(&cfg) != LSM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid flowdb configuration: %s", lsm_errmsg()),
				 errhint("Check the flowdb.* settings in postgresql.conf.")));
	RequestAddinShmemSpace(total_size());
}

static void
flowdb_shmem_startup(void)
{
	bool		found;
	char	   *base;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	base = ShmemInitStruct("flowdb engine", total_size(), &found);
	flowdb_ctl = (FlowdbControl *) base;
	flowdb_region = (void *) TYPEALIGN(REGION_ALIGN, base + sizeof(FlowdbControl));
	if (!found)
	{
		SpinLockInit(&flowdb_ctl->mutex);
		pg_atomic_init_u32(&flowdb_ctl->ready, 0);
		flowdb_ctl->worker_pid = 0;
		flowdb_ctl->region_size = region_size();
		flowdb_ctl->last_error[0] = '\0';
	}
	LWLockRelease(AddinShmemInitLock);
}

void
flowdb_install_shmem_hooks(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = flowdb_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = flowdb_shmem_startup;
}
