# FlowDB — top-level PGXS build.
#
#   make              build lsm/build/liblsm.a and flowdb.so (flowdb_fdw/ + lsm/)
#   make install      install flowdb.so, flowdb.control and the SQL script
#   make installcheck run the pg_regress suites in sql/ + expected/ against a
#                     temporary instance with shared_preload_libraries = 'flowdb'
#                     (no running server needed; as root it runs as `postgres`)
#   make check        the same as installcheck
#   make crashcheck   the crash-recovery TAP test (test/t/*.pl)
#
# Both test targets use the installed extension: run `make install` first.

MODULE_big = flowdb
OBJS = \
	flowdb_fdw/admin.o \
	flowdb_fdw/cursor.o \
	flowdb_fdw/engine.o \
	flowdb_fdw/functions.o \
	flowdb_fdw/guc.o \
	flowdb_fdw/keys.o \
	flowdb_fdw/module.o \
	flowdb_fdw/prefault.o \
	flowdb_fdw/shmem.o \
	flowdb_fdw/worker.o \
	flowdb_fdw/xact.o
# foreign data wrapper (issue 5)
OBJS += flowdb_fdw/fdw_exec.o flowdb_fdw/fdw_plan.o flowdb_fdw/fdw_pushdown.o \
	flowdb_fdw/fdw_table.o
# jsondb (issue 6): IndexedDB-style document stores
OBJS += jsondb/catalog.o jsondb/changes.o jsondb/ddl.o jsondb/docs.o jsondb/key.o jsondb/query.o \
	jsondb/read.o jsondb/txn.o
# jsondb stores as foreign tables (issue 6)
OBJS += jsondb/store_fdw_table.o jsondb/store_fdw_quals.o jsondb/store_fdw_keyset.o \
	jsondb/store_fdw_scan.o jsondb/store_fdw_plan.o jsondb/store_fdw_exec.o \
	jsondb/store_fdw_modify.o

EXTENSION = flowdb
DATA = flowdb--0.1.sql
PGFILEDESC = "flowdb - LSM time-series storage for PostgreSQL"

REGRESS = flowdb_basic flowdb_errors flowdb_xact flowdb_patch flowdb_keyspace \
	flowdb_admin flowdb_isolation
# foreign data wrapper (issue 5)
REGRESS += flowdb_fdw_basic flowdb_fdw_pushdown flowdb_fdw_write flowdb_large_txn
# jsondb (issue 6)
REGRESS += jsondb_keys jsondb_docs jsondb_xact jsondb_fdw
ISOLATION = jsondb_unique jsondb_conflicts jsondb_watch jsondb_fdw_conflicts flowdb_stream_order
NO_INSTALLCHECK = 1

LSM_LIB = lsm/build/liblsm.a
PG_CPPFLAGS = -Ilsm/include -Iflowdb_fdw -Ijsondb
# -Bsymbolic: the engine's own symbols bind inside flowdb.so, never to a
# same-named symbol of the postgres executable.
SHLIB_LINK = $(LSM_LIB) -llz4 -lxxhash -lpthread -lm -Wl,-Bsymbolic

ifeq ($(MAKECMDGOALS),check)
# PGXS's own `check` only says it is unsupported; here it is installcheck.
.PHONY: check
check:
	$(MAKE) installcheck
else
PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

.PHONY: lsm-lib installcheck crashcheck clean-lsm isolationcheck FORCE

$(OBJS): flowdb_fdw/flowdb.h lsm/include/lsm.h
$(filter flowdb_fdw/fdw_%,$(OBJS)): flowdb_fdw/fdw.h
$(filter jsondb/%,$(OBJS)): jsondb/jsondb.h
# The engine library is remade by its own Makefile on every build; the
# recipe on the file target itself makes make look at its new timestamp, so
# flowdb.so is relinked whenever the engine changed (with a phony
# prerequisite and no recipe, a change to lsm/ alone was missed).
$(shlib): $(LSM_LIB)
$(LSM_LIB): FORCE
	$(MAKE) -C lsm
lsm-lib: $(LSM_LIB)
FORCE:

installcheck:
	./test/run_regress.sh $(REGRESS)

crashcheck:
	./test/run_crash_test.sh

# jsondb (issue 6): pg_isolation_regress over specs/ (test/run_isolation.sh)
isolationcheck:
	./test/run_isolation.sh $(ISOLATION)

clean: clean-lsm
clean-lsm:
	$(MAKE) -C lsm clean
endif
