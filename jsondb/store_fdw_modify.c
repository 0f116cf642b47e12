/*
 * store_fdw_modify.c — INSERT, UPDATE and DELETE on a store foreign table.
 *
 * Every write goes through the SQL-level functions' C entry points
 * (jsondb.add, jsondb.put, jsondb.delete), so indexes, versions, unique
 * constraints, the key generator, the change log and OCC behave exactly as
 * for those calls, and the writes are part of the Postgres transaction.
 *
 *   INSERT  jsondb.add: a document whose key exists fails (unique_violation).
 *           The key column may be left out / NULL; when given it must equal
 *           the key at the store's key path of the document (22023
 *           otherwise).  With a key generator and no key in the document the
 *           generated key is put into the document, and RETURNING shows it.
 *   UPDATE  replaces the document (jsondb.put: version + 1).  The primary key
 *           cannot change (0A000: DELETE and INSERT instead); on a store with
 *           a key generator a new document without a key keeps the old key.
 *   DELETE  jsondb.delete of the row's key.
 * UPDATE and DELETE find the row by its document as read (the junk column
 * jsondb_old_doc), whose key path gives its primary key.
 */
#include "jsondb.h"

#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "nodes/execnodes.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

extern Datum jsondb_add(PG_FUNCTION_ARGS);
extern Datum jsondb_put(PG_FUNCTION_ARGS);
extern Datum jsondb_delete(PG_FUNCTION_ARGS);

typedef struct StoreModify
{
	const JdbFdwTable *t;
	AttrNumber	old_doc_attno;	/* junk column in the plan slot (UPDATE / DELETE) */
	MemoryContext row_cxt;		/* one row's work and the returned slot's
								 * values: reset when the next row comes */
} StoreModify;

/* Start a row: its allocations go to a context reset per row. */
static MemoryContext
row_begin(StoreModify *m)
{
	MemoryContextReset(m->row_cxt);
	return MemoryContextSwitchTo(m->row_cxt);
}

static void
begin_common(ModifyTableState *mtstate, ResultRelInfo *rinfo, bool insert_only)
{
	StoreModify *m = palloc0(sizeof(StoreModify));

	m->t = jdb_fdw_table(RelationGetRelid(rinfo->ri_RelationDesc));
	m->row_cxt = AllocSetContextCreate(CurrentMemoryContext, "jsondb store table row",
									   ALLOCSET_DEFAULT_SIZES);
	(void) jdb_fdw_store(m->t);	/* 42P01 now if the store is gone */
	if (!insert_only && mtstate->operation != CMD_INSERT)
	{
		Plan	   *sub = outerPlanState(mtstate)->plan;

		m->old_doc_attno = ExecFindJunkAttributeInTlist(sub->targetlist, "jsondb_old_doc");
		if (!AttributeNumberIsValid(m->old_doc_attno))
			elog(ERROR, "jsondb: junk column jsondb_old_doc is missing");
	}
	rinfo->ri_FdwState = m;
}

void
jdb_fdw_begin_modify(ModifyTableState *mtstate, ResultRelInfo *rinfo, List *fdw_private,
					 int subplan, int eflags)
{
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	begin_common(mtstate, rinfo, false);
}

void
jdb_fdw_begin_insert(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	begin_common(mtstate, rinfo, true);
}

void
jdb_fdw_end_modify(EState *estate, ResultRelInfo *rinfo)
{
}

static Datum
store_name(const JdbFdwTable *t)
{
	return CStringGetTextDatum(t->store);
}

static Jsonb *
new_doc(StoreModify *m, TupleTableSlot *slot)
{
	slot_getallattrs(slot);
	if (slot->tts_isnull[m->t->doc_attno - 1])
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("flowdb: column \"doc\" of store table \"%s\" must not be NULL",
						get_rel_name(m->t->relid))));
	return DatumGetJsonbP(slot->tts_values[m->t->doc_attno - 1]);
}

/* The key column's value, encoded (false if absent / NULL). */
static bool
given_key(StoreModify *m, TupleTableSlot *slot, StringInfo out)
{
	if (m->t->key_attno == 0 || slot->tts_isnull[m->t->key_attno - 1])
		return false;
	jdb_encode_jsonb_or_error(DatumGetJsonbP(slot->tts_values[m->t->key_attno - 1]), out,
							  "the key column");
	return true;
}

static bool
same_key(StringInfo a, StringInfo b)
{
	return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static char *
key_text(StringInfo k)
{
	return JsonbToCString(NULL, &jdb_key_to_jsonb((uint8 *) k->data, k->len)->root, 0);
}

/* Put key and doc into slot (for RETURNING and the executor). */
static TupleTableSlot *
fill_slot(StoreModify *m, TupleTableSlot *slot, Jsonb *key, Jsonb *doc)
{
	int			natts = slot->tts_tupleDescriptor->natts;

	ExecClearTuple(slot);
	for (int i = 0; i < natts; i++)
	{
		slot->tts_values[i] = (Datum) 0;
		slot->tts_isnull[i] = true;
	}
	slot->tts_values[m->t->doc_attno - 1] = JsonbPGetDatum(doc);
	slot->tts_isnull[m->t->doc_attno - 1] = false;
	if (m->t->key_attno)
	{
		slot->tts_values[m->t->key_attno - 1] = JsonbPGetDatum(key);
		slot->tts_isnull[m->t->key_attno - 1] = false;
	}
	return ExecStoreVirtualTuple(slot);
}

TupleTableSlot *
jdb_fdw_exec_insert(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
					TupleTableSlot *plan_slot)
{
	StoreModify *m = rinfo->ri_FdwState;
	MemoryContext old = row_begin(m);
	JdbStore   *s;
	Jsonb	   *doc = new_doc(m, slot);
	StringInfoData given,
				pk;
	const char *why;
	JdbEval		e;
	Jsonb	   *key;
	double		d;

	initStringInfo(&given);
	initStringInfo(&pk);
	jdb_txn_begin();
	s = jdb_fdw_store(m->t);
	e = jdb_eval_keypath(doc, &s->kp, &pk, &why);
	if (given_key(m, slot, &given))
	{
		if (e == JDB_EVAL_MISSING)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("flowdb: the document has no key at the key path of store \"%s\", "
							"but column \"key\" is %s", s->name, key_text(&given)),
					 errhint("Put the key into the document, or leave column \"key\" out.")));
		if (e == JDB_EVAL_OK && !same_key(&given, &pk))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("flowdb: column \"key\" is %s but the document's key in store \"%s\" is %s",
							key_text(&given), s->name, key_text(&pk)),
					 errhint("The key column must equal the key at the store's key path, or be left out.")));
	}
	key = DatumGetJsonbP(DirectFunctionCall2(jsondb_add, store_name(m->t), JsonbPGetDatum(doc)));
	if (e == JDB_EVAL_MISSING)
	{
		StringInfoData k;
		bool		ok;

		/* the generator filled the key: show the document as stored */
		initStringInfo(&k);
		jdb_encode_jsonb_or_error(key, &k, "the generated key");
		if (s->kp.npaths == 1 && jdb_key_number((uint8 *) k.data, k.len, &d))
			doc = jdb_inject_key(doc, &s->kp.paths[0], d, &ok);
	}
	slot = fill_slot(m, slot, key, doc);
	MemoryContextSwitchTo(old);
	return slot;
}

/* The primary key of the row as read (the junk column). */
static Jsonb *
old_row(StoreModify *m, JdbStore *s, TupleTableSlot *plan_slot, StringInfo pk)
{
	bool		isnull;
	Datum		d = ExecGetJunkAttribute(plan_slot, m->old_doc_attno, &isnull);
	Jsonb	   *old;
	const char *why;

	if (isnull)
		elog(ERROR, "jsondb: the row's old document is NULL");
	old = DatumGetJsonbP(d);
	if (jdb_eval_keypath(old, &s->kp, pk, &why) != JDB_EVAL_OK)
		elog(ERROR, "jsondb: a stored document of store \"%s\" has no valid key", s->name);
	return old;
}

TupleTableSlot *
jdb_fdw_exec_update(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
					TupleTableSlot *plan_slot)
{
	StoreModify *m = rinfo->ri_FdwState;
	MemoryContext old = row_begin(m);
	JdbStore   *s;
	Jsonb	   *doc = new_doc(m, slot);
	StringInfoData old_pk,
				pk,
				given;
	const char *why;
	JdbEval		e;
	Jsonb	   *key;

	initStringInfo(&old_pk);
	initStringInfo(&pk);
	initStringInfo(&given);
	jdb_txn_begin();
	s = jdb_fdw_store(m->t);
	(void) old_row(m, s, plan_slot, &old_pk);
	if (given_key(m, slot, &given) && !same_key(&given, &old_pk))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("flowdb: UPDATE cannot change the key of a document (store \"%s\", key %s to %s)",
						s->name, key_text(&old_pk), key_text(&given)),
				 errhint("DELETE the document and INSERT it with its new key.")));
	e = jdb_eval_keypath(doc, &s->kp, &pk, &why);
	if (e == JDB_EVAL_MISSING && s->auto_increment)
	{
		double		d;
		bool		ok;

		/* keep the old generated key rather than generating a new one */
		if (jdb_key_number((uint8 *) old_pk.data, old_pk.len, &d))
		{
			doc = jdb_inject_key(doc, &s->kp.paths[0], d, &ok);
			if (ok)
				e = jdb_eval_keypath(doc, &s->kp, &pk, &why);
		}
	}
	if (e == JDB_EVAL_MISSING && s->auto_increment)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("flowdb: UPDATE cannot change the key of a document (store \"%s\", key %s): "
						"the new document has no key and the old one cannot be put into it",
						s->name, key_text(&old_pk)),
				 errhint("Give the new document its key.")));
	if (e == JDB_EVAL_OK && !same_key(&pk, &old_pk))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("flowdb: UPDATE cannot change the key of a document (store \"%s\", key %s to %s)",
						s->name, key_text(&old_pk), key_text(&pk)),
				 errhint("DELETE the document and INSERT it with its new key.")));
	/* a missing / invalid key: jsondb.put reports it */
	key = DatumGetJsonbP(DirectFunctionCall2(jsondb_put, store_name(m->t), JsonbPGetDatum(doc)));
	slot = fill_slot(m, slot, key, doc);
	MemoryContextSwitchTo(old);
	return slot;
}

TupleTableSlot *
jdb_fdw_exec_delete(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
					TupleTableSlot *plan_slot)
{
	StoreModify *m = rinfo->ri_FdwState;
	MemoryContext cxt = row_begin(m);
	JdbStore   *s;
	StringInfoData pk;
	Jsonb	   *old,
			   *key;

	initStringInfo(&pk);
	jdb_txn_begin();
	s = jdb_fdw_store(m->t);
	old = old_row(m, s, plan_slot, &pk);
	key = jdb_key_to_jsonb((uint8 *) pk.data, pk.len);
	if (DatumGetInt64(DirectFunctionCall2(jsondb_delete, store_name(m->t),
										  JsonbPGetDatum(key))) == 0)
		slot = NULL;			/* already gone (deleted earlier in this transaction) */
	else
		slot = fill_slot(m, slot, key, old);
	MemoryContextSwitchTo(cxt);
	return slot;
}
