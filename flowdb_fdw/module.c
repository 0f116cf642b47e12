/*
 * module.c — library entry point.
 *
 * FlowDB keeps its engine in shared memory sized at server start and hosts it
 * in a background worker, so it only works when loaded through
 * shared_preload_libraries.  Loading it any other way (CREATE EXTENSION runs
 * CREATE FUNCTION ... LANGUAGE C, which loads the library) fails here with a
 * message saying exactly what to put in postgresql.conf.
 */
#include "flowdb.h"
#include "fdw.h"

#include "fmgr.h"
#include "miscadmin.h"

PG_MODULE_MAGIC;

void		_PG_init(void);
extern void jsondb_init(void);	/* jsondb/ddl.c */

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("flowdb must be loaded via shared_preload_libraries"),
				 errhint("Add shared_preload_libraries = 'flowdb' to postgresql.conf "
						 "(append it to an existing list, e.g. 'pg_stat_statements,flowdb') "
						 "and restart the server.")));

	flowdb_define_gucs();
	flowdb_install_shmem_hooks();
	flowdb_register_worker();
	flowdb_xact_register();
	flowdb_keyspace_cache_register();
	fdw_table_cache_register();
	jsondb_init();
}
