/*-------------------------------------------------------------------------
 *
 * append.c
 *	  Append events to a stream with an expected-version check and
 *	  idempotent retries by event id.
 *
 * An append runs in this order:
 *
 *	1. validate every argument, and the data of each event against its
 *	   registered type's validators (evolution.c): nothing is locked or
 *	   written before that;
 *	2. lock the stream until the end of the transaction (lock.c);
 *	3. look up caller-supplied event ids: a retry of a committed call
 *	   returns the version it reached, any other reuse is a 23505;
 *	4. read the stream's version with a fresh snapshot and check the
 *	   expected version (40001 on a mismatch);
 *	5. under the feed lock, allocate positions and insert the rows into the
 *	   heap and the indexes; release the feed lock;
 *	6. queue AFTER triggers and fire them (inline projections run here).
 *
 * Rows go in through the executor's own insert machinery (the one COPY and
 * logical replication use): constraints are checked, indexes maintained and
 * triggers fired as for INSERT, without planning or executing a statement.
 *
 * IDENTIFICATION
 *	  src/append.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "es_pg.h"
#include "common.h"
#include "subscription.h"

/* rows handed to table_multi_insert at once, as in COPY */
#define ES_MULTI_INSERT_CHUNK	1000

/* one event to append, after validation */
typedef struct NewEvent
{
	Datum		event_type;		/* text */
	Datum		data;			/* jsonb */
	Datum		metadata;		/* jsonb, unless metadata_null */
	bool		metadata_null;
	bool		has_id;			/* the caller supplied event_id */
	pg_uuid_t	event_id;
	int32		schema_version; /* 0: the type is not registered (NULL) */
} NewEvent;

/* es_pg.max_append_events: events one es_append_batch call may carry */
int			es_max_append_events = 100000;

/* es_pg.max_append_events_ceiling: the most a role may raise it to */
int			es_max_append_events_ceiling = 100000;

/* es_pg.max_event_bytes, es_pg.max_batch_bytes: size caps of appends */
int			es_max_event_bytes = 64 * 1024 * 1024;
int			es_max_batch_bytes = 256 * 1024 * 1024;

EsAppendedEvents *EsCurrentAppend = NULL;

/* true while es_append fires the BEFORE STATEMENT triggers of its insert */
static bool es_inside_append = false;

/*
 * EsInsideAppend tells the insert guard trigger whether the insert it fires
 * for comes from es_append.
 */
bool
EsInsideAppend(void)
{
	return es_inside_append;
}

/*
 * ParseExpectedVersion reads the expected_version argument.  It returns
 * false when no check is wanted (NULL or -1).
 */
static bool
ParseExpectedVersion(FunctionCallInfo fcinfo, int argno, int64 *expected)
{
	int64		value;

	if (PG_ARGISNULL(argno))
		return false;
	value = PG_GETARG_INT64(argno);
	if (value == -1)
		return false;
	if (value < -2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid expected version %lld", (long long) value),
				 errhint("Pass NULL or -1 for no check, 0 for a stream that must not exist yet, -2 for a stream that must exist, or the stream's current version.")));
	*expected = value;
	return true;
}

/*
 * LookupEventId finds an event by id.  Rows of transactions still in
 * progress are waited for, so the answer is about committed rows and the
 * caller's own.  On success it returns the stream and version of the event.
 */
static bool
LookupEventId(Relation rel, Relation index, TupleTableSlot *slot,
			  pg_uuid_t *event_id, text **stream_id, int64 *version)
{
	SnapshotData dirty;
	ScanKeyData key;
	IndexScanDesc scan;

	InitDirtySnapshot(dirty);
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_UUID_EQ,
				UUIDPGetDatum(event_id));
	for (;;)
	{
		bool		found;
		TransactionId xwait;

		scan = EsIndexBeginScan(rel, index, &dirty, 1, 0);
		index_rescan(scan, &key, 1, NULL, 0);
		found = index_getnext_slot(scan, ForwardScanDirection, slot);
		xwait = TransactionIdIsValid(dirty.xmin) ? dirty.xmin : dirty.xmax;
		index_endscan(scan);

		if (!found)
			return false;
		if (TransactionIdIsValid(xwait))
		{
			/* another transaction is inserting this id: wait for it */
			XactLockTableWait(xwait, rel, &slot->tts_tid, XLTW_InsertIndex);
			continue;
		}
		*stream_id = DatumGetTextPP(slot_getattr(slot, Anum_es_events_stream_id,
												 &found));
		*version = DatumGetInt64(slot_getattr(slot, Anum_es_events_version,
											  &found));
		return true;
	}
}

/*
 * DuplicateEventId raises the 23505 error for an event id that exists
 * outside of an exact retry.
 */
static void
DuplicateEventId(Relation rel, pg_uuid_t *event_id, text *other_stream,
				 int64 other_version)
{
	char	   *id = DatumGetCString(DirectFunctionCall1(uuid_out,
														 UUIDPGetDatum(event_id)));

	if (other_stream == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("duplicate event id %s in one append", id),
				 errdetail("Every event needs an id of its own."),
				 errtableconstraint(rel, ES_EVENT_ID_CONSTRAINT)));
	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("event id %s already exists", id),
			 errdetail("It is event %lld of stream \"%s\", and this call is not an exact retry of the append that wrote it.",
					   (long long) other_version, text_to_cstring(other_stream)),
			 errhint("Give new events fresh ids; a retry must resend the same events, in the same order, to the same stream."),
			 errtableconstraint(rel, ES_EVENT_ID_CONSTRAINT)));
}

/*
 * UuidCompare orders uuids for the in-call duplicate check.
 */
static int
UuidCompare(const void *a, const void *b)
{
	return memcmp(*(pg_uuid_t *const *) a, *(pg_uuid_t *const *) b, UUID_LEN);
}

/*
 * CheckEventIds handles caller-supplied ids.  It returns the stream version
 * to report when the call is an exact retry of a committed append, or -1
 * when the events are new and must be written.
 */
static int64
CheckEventIds(const EsCatalog *cat, Relation rel, text *stream_id,
			  NewEvent *events, int nevents)
{
	pg_uuid_t **ids;
	int			nids = 0;
	int			i;
	Relation	index;
	TupleTableSlot *slot;
	text	   *found_stream;
	int64		found_version;
	int64		result = -1;

	for (i = 0; i < nevents; i++)
		if (events[i].has_id)
			nids++;
	if (nids == 0)
		return -1;

	/* the same id twice within the call */
	if (nids > 1)
	{
		int			j = 0;

		ids = palloc(nids * sizeof(pg_uuid_t *));
		for (i = 0; i < nevents; i++)
			if (events[i].has_id)
				ids[j++] = &events[i].event_id;
		qsort(ids, nids, sizeof(pg_uuid_t *), UuidCompare);
		for (i = 1; i < nids; i++)
			if (memcmp(ids[i - 1], ids[i], UUID_LEN) == 0)
				DuplicateEventId(rel, ids[i], NULL, 0);
		pfree(ids);
	}

	index = index_open(cat->event_id_index, AccessShareLock);
	slot = table_slot_create(rel, NULL);

	if (nids == nevents &&
		LookupEventId(rel, index, slot, &events[0].event_id,
					  &found_stream, &found_version))
	{
		int64		first_version = found_version;

		/*
		 * The first id exists.  This is a retry if and only if it stands in
		 * this stream and every following id stands right after it.
		 */
		if (!EsTextEqual(found_stream, stream_id))
			DuplicateEventId(rel, &events[0].event_id, found_stream,
							 found_version);
		for (i = 1; i < nevents; i++)
		{
			if (!LookupEventId(rel, index, slot, &events[i].event_id,
							   &found_stream, &found_version))
				DuplicateEventId(rel, &events[0].event_id, stream_id,
								 first_version);
			if (!EsTextEqual(found_stream, stream_id) ||
				found_version != first_version + i)
				DuplicateEventId(rel, &events[i].event_id, found_stream,
								 found_version);
		}
		result = first_version + nevents - 1;
	}
	else
	{
		/*
		 * New events: none of their ids may exist anywhere.  When every
		 * event has an id, the first one was looked up above already.
		 */
		for (i = (nids == nevents) ? 1 : 0; i < nevents; i++)
		{
			if (events[i].has_id &&
				LookupEventId(rel, index, slot, &events[i].event_id,
							  &found_stream, &found_version))
				DuplicateEventId(rel, &events[i].event_id, found_stream,
								 found_version);
		}
	}

	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	return result;
}

/*
 * CheckExpectedVersion raises the 40001 error when the stream is not where
 * the caller expected it.
 */
static void
CheckExpectedVersion(Relation rel, text *stream_id, int64 actual,
					 int64 expected)
{
	const char *want;

	if (expected > 0 && actual == expected)
		return;
	if (expected == 0 && actual == 0)
		return;
	if (expected == -2 && actual > 0)
		return;

	if (expected == 0)
		want = "a new stream (version 0)";
	else if (expected == -2)
		want = "an existing stream (-2)";
	else
		want = psprintf("version %lld", (long long) expected);

	ereport(ERROR,
			(errcode(ES_ERRCODE_VERSION_CONFLICT),
			 errmsg("wrong expected version for stream \"%s\"",
					text_to_cstring(stream_id)),
			 errdetail("Stream \"%s\" is at version %lld; the append expected %s.",
					   text_to_cstring(stream_id), (long long) actual, want),
			 errhint("Reload the stream and retry the command."),
			 errtableconstraint(rel, ES_STREAM_VERSION_CONSTRAINT)));
}

/*
 * NextRandomUuid fills one version 4 uuid.
 */
static void
NextRandomUuid(pg_uuid_t *uuid)
{
	unsigned char *d = uuid->data;

	EsRandomBytes(d, UUID_LEN);
	d[6] = (d[6] & 0x0f) | 0x40;	/* version 4 */
	d[8] = (d[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
}

/*
 * GenerateEventIds fills in random (version 4) uuids for events without an
 * id.
 */
static void
GenerateEventIds(NewEvent *events, int nevents)
{
	int			i;

	for (i = 0; i < nevents; i++)
		if (!events[i].has_id)
			NextRandomUuid(&events[i].event_id);
}

/*
 * NeedsConstraintCheck says whether ExecConstraints has anything to check
 * that es_append has not made sure of already: the rows it builds have no
 * NULL outside metadata, a version above 0 (es_events_version_check), and
 * come from es_append (es_events_insert_check).  A constraint an
 * administrator added is checked as usual.
 */
static bool
NeedsConstraintCheck(Relation rel)
{
	TupleConstr *constr = rel->rd_att->constr;
	int			i;

	if (constr == NULL)
		return false;
	if (constr->has_generated_stored ||
		TupleDescAttr(rel->rd_att, Anum_es_events_metadata - 1)->attnotnull)
		return true;
	for (i = 0; i < constr->num_check; i++)
	{
		if (strcmp(constr->check[i].ccname, "es_events_version_check") != 0 &&
			strcmp(constr->check[i].ccname, ES_INSERT_CHECK_CONSTRAINT) != 0)
			return true;
	}
	return false;
}

/*
 * The indexes filled in flight: the global_position index, and the category
 * index of 0.2.0 (es_events_category_idx, category.c), whose readers rely
 * on the feed protocol's safe high position as much as es_read_all does.
 */
typedef struct PositionIndex
{
	Relation	index;
	IndexInfo  *info;
	Relation	category;		/* NULL: none (a 0.1.0 install) */
	IndexInfo  *category_info;
	int			nindices;		/* ri_NumIndices with them included */
} PositionIndex;

/*
 * MoveIndexToEnd swaps index i of the result relation with the last one of
 * the first n and returns it.
 */
static void
MoveIndexToEnd(ResultRelInfo *rri, int i, int n)
{
	Relation	index = rri->ri_IndexRelationDescs[i];
	IndexInfo  *info = rri->ri_IndexRelationInfo[i];

	rri->ri_IndexRelationDescs[i] = rri->ri_IndexRelationDescs[n - 1];
	rri->ri_IndexRelationInfo[i] = rri->ri_IndexRelationInfo[n - 1];
	rri->ri_IndexRelationDescs[n - 1] = index;
	rri->ri_IndexRelationInfo[n - 1] = info;
}

/*
 * TakeOutPositionIndex moves es_events_pkey (and the category index, when
 * the install has it) to the end of the result relation's index arrays and
 * hides them from ExecInsertIndexTuples, which then fills only the other
 * indexes.  PutBackPositionIndex undoes it before the indexes are closed.
 */
static void
TakeOutPositionIndex(const EsCatalog *cat, ResultRelInfo *rri,
					 PositionIndex *pkey)
{
	int			n = rri->ri_NumIndices;
	int			i;

	for (i = 0; i < n; i++)
	{
		if (RelationGetRelid(rri->ri_IndexRelationDescs[i]) == cat->position_index)
			break;
	}
	if (i == n)
		elog(ERROR, "es_events_pkey is not among the indexes of es_events");

	pkey->nindices = n;
	MoveIndexToEnd(rri, i, n);
	pkey->index = rri->ri_IndexRelationDescs[n - 1];
	pkey->info = rri->ri_IndexRelationInfo[n - 1];
	n--;
	pkey->category = NULL;
	pkey->category_info = NULL;
	for (i = 0; i < n; i++)
	{
		Relation	index = rri->ri_IndexRelationDescs[i];

		if (RelationGetNamespace(index) == cat->namespace_oid &&
			strcmp(RelationGetRelationName(index), ES_CATEGORY_INDEX) == 0)
		{
			MoveIndexToEnd(rri, i, n);
			pkey->category = rri->ri_IndexRelationDescs[n - 1];
			pkey->category_info = rri->ri_IndexRelationInfo[n - 1];
			n--;
			break;
		}
	}
	rri->ri_NumIndices = n;
}

static void
PutBackPositionIndex(ResultRelInfo *rri, PositionIndex *pkey)
{
	rri->ri_NumIndices = pkey->nindices;
}

/*
 * InsertCategoryEntry puts one appended row into the category index: an
 * expression index, whose key the executor computes from the slot.
 */
static void
InsertCategoryEntry(EState *estate, Relation rel, PositionIndex *pkey,
					TupleTableSlot *slot)
{
	ExprContext *econtext = GetPerTupleExprContext(estate);
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];

	econtext->ecxt_scantuple = slot;
	FormIndexDatum(pkey->category_info, slot, estate, values, isnull);
	index_insert(pkey->category, values, isnull, &slot->tts_tid, rel,
				 UNIQUE_CHECK_NO, false, pkey->category_info);
	ResetPerTupleExprContext(estate);
}

/*
 * CheckTriggerKeptKeys raises an error when a BEFORE ROW trigger changed a
 * column es_pg assigns: the position (the feed relies on it), the stream
 * and version (no gaps), the event id (retries) or the time.
 */
static void
CheckTriggerKeptKeys(TupleTableSlot *slot, int64 position, text *stream_id,
					 int64 version, pg_uuid_t *event_id, TimestampTz recorded_at)
{
	bool		n1,
				n2,
				n3,
				n4,
				n5;
	Datum		p = slot_getattr(slot, Anum_es_events_global_position, &n1);
	Datum		s = slot_getattr(slot, Anum_es_events_stream_id, &n2);
	Datum		v = slot_getattr(slot, Anum_es_events_version, &n3);
	Datum		id = slot_getattr(slot, Anum_es_events_event_id, &n4);
	Datum		t = slot_getattr(slot, Anum_es_events_recorded_at, &n5);

	if (n1 || n2 || n3 || n4 || n5 ||
		DatumGetInt64(p) != position ||
		!EsTextEqual(DatumGetTextPP(s), stream_id) ||
		DatumGetInt64(v) != version ||
		memcmp(DatumGetUUIDP(id), event_id, UUID_LEN) != 0 ||
		DatumGetTimestampTz(t) != recorded_at)
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg("a BEFORE INSERT trigger on es_events changed a column es_pg assigns"),
				 errdetail("Triggers on es_events may change event_type, data and metadata, never global_position, stream_id, version, event_id or recorded_at.")));
}

/*
 * The position of the last event this backend appended, and the
 * (sub)transaction that wrote it: es_last_position (subscription work of
 * 0.2.0) hands it back while that transaction is current.
 */
static int64 es_last_appended_position = 0;
static TransactionId es_last_appended_xid = InvalidTransactionId;

/* the position whose row es_append is checking constraints of, or 0 */
static int64 es_own_check_position = 0;

/*
 * EsOwnRowBeingChecked tells es_events_insert_check that the row it checks
 * is one es_append wrote.
 */
bool
EsOwnRowBeingChecked(int64 position)
{
	return position != 0 && position == es_own_check_position;
}

/*
 * InsertEvents writes the rows through the executor's insert machinery and
 * fires es_events' triggers once for the whole call.  "version" is the
 * stream's version read under the stream lock; it is read again if the
 * append had to wait for a direct-insert window (see lock.c), which may
 * have written to the stream.  Returns the stream's new version.
 */
static int64
InsertEvents(const EsCatalog *cat, Relation rel, text *stream_id,
			 NewEvent *events, int nevents, int64 version,
			 bool check_version, int64 expected)
{
	EState	   *estate;
	RangeTblEntry *rte;
	ResultRelInfo *rri;
	TransitionCaptureState *tcs;
	TupleTableSlot **slots;
	TupleDesc	slot_desc;
	CommandId	cid;
	TimestampTz recorded_at = GetCurrentTimestamp();
	bool		has_br_triggers;
	bool		check_constraints = NeedsConstraintCheck(rel);
	BulkInsertState bistate = NULL;
	PositionIndex pkey;
	EsFeedHold	hold;
	bool		waited;
	EsAppendedEvents appended;
	MemoryContext oldcxt;
	int64		first_position;
	int64		last_position;
	int			i;

	estate = CreateExecutorState();
	oldcxt = MemoryContextSwitchTo(estate->es_query_cxt);

	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = cat->events_relid;
	rte->relkind = RELKIND_RELATION;
	rte->rellockmode = RowExclusiveLock;
	EsInitRangeTable(estate, rte);
	rri = makeNode(ResultRelInfo);
	ExecInitResultRelation(estate, rri, 1);
	ExecOpenIndices(rri, false);
	TakeOutPositionIndex(cat, rri, &pkey);
	cid = GetCurrentCommandId(true);
	estate->es_output_cid = cid;
	has_br_triggers = rri->ri_TrigDesc != NULL &&
		rri->ri_TrigDesc->trig_insert_before_row;

	AfterTriggerBeginQuery();
	tcs = MakeTransitionCaptureState(rel->trigdesc, cat->events_relid,
									 CMD_INSERT);

	/* BEFORE STATEMENT triggers; the insert guard lets es_append through */
	es_inside_append = true;
	PG_TRY();
	{
		ExecBSInsertTriggers(estate, rri);
	}
	PG_FINALLY();
	{
		es_inside_append = false;
	}
	PG_END_TRY();

	/*
	 * One slot per event.  They share a copy of the tuple descriptor that is
	 * not reference-counted: a slot made by table_slot_create pins the
	 * relation's descriptor, and the resource owner's bookkeeping of many
	 * pins of one descriptor made a batch cost time quadratic in its size.
	 */
	slot_desc = CreateTupleDescCopy(RelationGetDescr(rel));
	slots = palloc(nevents * sizeof(TupleTableSlot *));
	for (i = 0; i < nevents; i++)
	{
		TupleTableSlot *slot = ExecAllocTableSlot(&estate->es_tupleTable,
												  slot_desc,
												  table_slot_callbacks(rel));
		Datum	   *values = slot->tts_values;
		bool	   *isnull = slot->tts_isnull;

		ExecClearTuple(slot);
		values[Anum_es_events_stream_id - 1] = PointerGetDatum(stream_id);
		isnull[Anum_es_events_stream_id - 1] = false;
		isnull[Anum_es_events_version - 1] = false;
		values[Anum_es_events_event_id - 1] = UUIDPGetDatum(&events[i].event_id);
		isnull[Anum_es_events_event_id - 1] = false;
		values[Anum_es_events_event_type - 1] = events[i].event_type;
		isnull[Anum_es_events_event_type - 1] = false;
		values[Anum_es_events_data - 1] = events[i].data;
		isnull[Anum_es_events_data - 1] = false;
		values[Anum_es_events_metadata - 1] = events[i].metadata;
		isnull[Anum_es_events_metadata - 1] = events[i].metadata_null;
		values[Anum_es_events_recorded_at - 1] = TimestampTzGetDatum(recorded_at);
		isnull[Anum_es_events_recorded_at - 1] = false;
		if (slot_desc->natts >= Anum_es_events_schema_version)
		{
			values[Anum_es_events_schema_version - 1] =
				Int32GetDatum(events[i].schema_version);
			isnull[Anum_es_events_schema_version - 1] =
				events[i].schema_version == 0;
		}
		isnull[Anum_es_events_global_position - 1] = false;
		slots[i] = slot;
	}
	if (nevents > 1)
		bistate = GetBulkInsertState();

	/*
	 * Take the positions and start the flight (lock.c): only the sequence
	 * is touched while no other append of the slot may take positions.
	 * Code of the user's (BEFORE ROW triggers, constraints an administrator
	 * added) makes the append hold the heavyweight feed lock in flight too.
	 */
	LockRelationOid(cat->position_seq, RowExclusiveLock);
	EsFeedBeginAppend(&hold, has_br_triggers || check_constraints, &waited);
	PG_TRY();
	{
		for (i = 0; i < nevents; i++)
			slots[i]->tts_values[Anum_es_events_global_position - 1] =
				Int64GetDatum(nextval_internal(cat->position_seq, false));
		first_position =
			DatumGetInt64(slots[0]->tts_values[Anum_es_events_global_position - 1]);
		last_position =
			DatumGetInt64(slots[nevents - 1]->tts_values[Anum_es_events_global_position - 1]);
		EsFeedRegister(&hold, first_position);

		/* a direct-insert window that we waited for may have moved on */
		if (waited)
		{
			int64		now = EsStreamVersion(cat, rel, stream_id,
											  GetLatestSnapshot());

			if (now != version && check_version)
				CheckExpectedVersion(rel, stream_id, now, expected);
			version = now;
		}

		for (i = 0; i < nevents; i++)
		{
			TupleTableSlot *slot = slots[i];
			int64		position =
				DatumGetInt64(slot->tts_values[Anum_es_events_global_position - 1]);

			slot->tts_values[Anum_es_events_version - 1] =
				Int64GetDatum(version + 1 + i);
			ExecStoreVirtualTuple(slot);
			if (has_br_triggers)
			{
				if (!ExecBRInsertTriggers(estate, rri, slot))
					ereport(ERROR,
							(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
							 errmsg("a BEFORE INSERT trigger on es_events skipped an event"),
							 errdetail("Appends are all or nothing; triggers on es_events must not suppress rows.")));
				CheckTriggerKeptKeys(slot, position, stream_id, version + 1 + i,
									 &events[i].event_id, recorded_at);
			}
			if (check_constraints)
			{
				es_own_check_position = position;
				ExecConstraints(rri, slot, estate);
				es_own_check_position = 0;
			}
			ResetPerTupleExprContext(estate);
		}
		if (nevents == 1 || has_br_triggers)
		{
			for (i = 0; i < nevents; i++)
				table_tuple_insert(rel, slots[i], cid, 0, bistate);
		}
		else
		{
			for (i = 0; i < nevents; i += ES_MULTI_INSERT_CHUNK)
			{
				int			n = Min(ES_MULTI_INSERT_CHUNK, nevents - i);
				MemoryContext cxt;

				cxt = MemoryContextSwitchTo(GetPerTupleMemoryContext(estate));
				table_multi_insert(rel, &slots[i], n, cid, 0, bistate);
				MemoryContextSwitchTo(cxt);
				ResetPerTupleExprContext(estate);
			}
		}
		for (i = 0; i < nevents; i++)
		{
			bool		isnull;
			Datum		position = slot_getattr(slots[i],
												Anum_es_events_global_position,
												&isnull);

			index_insert(pkey.index, &position, &isnull, &slots[i]->tts_tid,
						 rel, UNIQUE_CHECK_YES, false, pkey.info);
		}
		if (pkey.category != NULL)
		{
			for (i = 0; i < nevents; i++)
				InsertCategoryEntry(estate, rel, &pkey, slots[i]);
		}
	}
	PG_CATCH();
	{
		es_own_check_position = 0;
		EsFeedEndAppend(&hold);
		PG_RE_THROW();
	}
	PG_END_TRY();
	EsFeedEndAppend(&hold);
	es_last_appended_position = last_position;
	es_last_appended_xid = GetCurrentTransactionId();
	EsSubWaitNoteAppend(last_position);

	for (i = 0; i < nevents; i++)
	{
		List	   *recheck = EsInsertIndexTuples(rri, slots[i], estate);

		list_free(recheck);
		ResetPerTupleExprContext(estate);
	}
	PutBackPositionIndex(rri, &pkey);

	if (bistate != NULL)
	{
		FreeBulkInsertState(bistate);
		table_finish_bulk_insert(rel, 0);
	}

	for (i = 0; i < nevents; i++)
		ExecARInsertTriggers(estate, rri, slots[i], NIL, tcs);
	ExecASInsertTriggers(estate, rri, tcs);

	/* let the trigger functions (and later commands) see the new rows */
	CommandCounterIncrement();

	appended.slots = slots;
	appended.nslots = nevents;
	appended.events_relid = cat->events_relid;
	appended.outer = EsCurrentAppend;
	EsCurrentAppend = &appended;
	PG_TRY();
	{
		AfterTriggerEndQuery(estate);
	}
	PG_FINALLY();
	{
		EsCurrentAppend = appended.outer;
	}
	PG_END_TRY();

	ExecCloseResultRelations(estate);
	ExecCloseRangeTableRelations(estate);
	ExecResetTupleTable(estate->es_tupleTable, false);
	MemoryContextSwitchTo(oldcxt);
	FreeExecutorState(estate);
	return version + nevents;
}

/*
 * AppendEvents is the common path of es_append and es_append_batch.  The
 * arguments have been validated; it returns the stream's new version.
 */
static int64
AppendEvents(FunctionCallInfo fcinfo, text *stream_id, NewEvent *events,
			 int nevents, bool check_version, int64 expected)
{
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	Relation	rel;
	int64		version;
	bool		maybe_deleted;

	rel = table_open(cat->events_relid, RowExclusiveLock);
	EsLockStream(stream_id);

	version = CheckEventIds(cat, rel, stream_id, events, nevents);
	if (version >= 0)
	{
		/* an exact retry of an append that committed: nothing to write */
		table_close(rel, NoLock);
		return version;
	}

	/*
	 * Read the version with a fresh snapshot: holding the stream lock, every
	 * earlier appender of this stream has committed or aborted, even if our
	 * own transaction snapshot is older (REPEATABLE READ).
	 */
	version = EsStreamHead(cat, rel, stream_id, GetLatestSnapshot(),
						   &maybe_deleted);
	if (maybe_deleted)
		EsCheckStreamNotDeleted(cat, stream_id, GetLatestSnapshot());
	if (check_version)
		CheckExpectedVersion(rel, stream_id, version, expected);

	GenerateEventIds(events, nevents);
	if (EsPrivacyActive(cat->namespace_oid))
	{
		int			i;

		/* personal data of protected types, encrypted (privacy.c) */
		for (i = 0; i < nevents; i++)
			events[i].data = JsonbPGetDatum(EsPrivacyProtect(cat->namespace_oid,
															 DatumGetTextPP(events[i].event_type),
															 DatumGetJsonbP(events[i].data),
															 &events[i].event_id,
															 nevents > 1 ? i : -1));
	}
	version = InsertEvents(cat, rel, stream_id, events, nevents, version,
						   check_version, expected);
	table_close(rel, NoLock);
	return version;
}

/*
 * CheckEventSize raises the 54000 error for an event larger than
 * es_pg.max_event_bytes.
 */
static void
CheckEventSize(const NewEvent *event, int batch_index)
{
	Size		size = VARSIZE_ANY(DatumGetPointer(event->data));

	if (!event->metadata_null)
		size += VARSIZE_ANY(DatumGetPointer(event->metadata));
	if (size > (Size) es_max_event_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("event too large"),
				 errdetail("Its data and metadata take %zu bytes; es_pg.max_event_bytes is %d.",
						   size, es_max_event_bytes),
				 errhint("Keep large payloads outside the event and store a reference to them."),
				 EsBatchContext(batch_index)));
}

/*
 * es_append appends one event to a stream and returns the stream's new
 * version.
 *
 * es_append(stream_id text, event_type text, data jsonb,
 *			 expected_version bigint, metadata jsonb, event_id uuid)
 */
PG_FUNCTION_INFO_V1(es_append);
Datum
es_append(PG_FUNCTION_ARGS)
{
	text	   *stream_id;
	NewEvent	event;
	bool		check_version;
	int64		expected = 0;

	EsRequireArgument(fcinfo, 0, "stream id");
	EsRequireArgument(fcinfo, 1, "event type");
	EsRequireArgument(fcinfo, 2, "event data");

	stream_id = PG_GETARG_TEXT_PP(0);
	EsValidateStreamId(stream_id);
	event.event_type = PointerGetDatum(PG_GETARG_TEXT_PP(1));
	EsValidateEventType(DatumGetTextPP(event.event_type), -1);
	event.data = PointerGetDatum(PG_GETARG_JSONB_P(2));
	EsValidateJsonObject(DatumGetJsonbP(event.data), "event data", -1);
	check_version = ParseExpectedVersion(fcinfo, 3, &expected);

	event.metadata_null = PG_ARGISNULL(4);
	event.metadata = (Datum) 0;
	if (!event.metadata_null)
	{
		event.metadata = PointerGetDatum(PG_GETARG_JSONB_P(4));
		EsValidateJsonObject(DatumGetJsonbP(event.metadata),
							 "event metadata", -1);
	}
	event.has_id = !PG_ARGISNULL(5);
	if (event.has_id)
		memcpy(&event.event_id, PG_GETARG_UUID_P(5), sizeof(pg_uuid_t));
	CheckEventSize(&event, -1);
	event.schema_version =
		EsCheckEventSchema(EsGetCatalogForFunction(fcinfo)->namespace_oid,
						   DatumGetTextPP(event.event_type),
						   DatumGetJsonbP(event.data),
						   event.metadata_null ? NULL :
						   DatumGetJsonbP(event.metadata), -1);

	PG_RETURN_INT64(AppendEvents(fcinfo, stream_id, &event, 1,
								 check_version, expected));
}

/*
 * BadBatchEvent raises the error for a malformed element of a batch.
 */
static void
BadBatchEvent(int index, const char *message, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s", message),
			 detail ? errdetail("%s", detail) : 0,
			 EsBatchContext(index)));
}

/*
 * FindUnknownKey returns the first key of an event object that es_pg does
 * not know, so that a misspelt "metdata" is refused instead of lost.
 */
static char *
FindUnknownKey(JsonbContainer *container)
{
	JsonbIterator *it = JsonbIteratorInit(container);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			char	   *key = pnstrdup(v.val.string.val, v.val.string.len);

			if (strcmp(key, "type") != 0 && strcmp(key, "data") != 0 &&
				strcmp(key, "metadata") != 0 && strcmp(key, "id") != 0)
				return key;
		}
	}
	return NULL;
}

/*
 * ParseBatchEvent turns one element of the events array into a NewEvent.
 */
static void
ParseBatchEvent(JsonbValue *elem, int index, NewEvent *event)
{
	JsonbContainer *obj;
	JsonbValue	v;
	int			known = 0;

	if (elem->type != jbvBinary || !JsonContainerIsObject(elem->val.binary.data))
		BadBatchEvent(index, "each event of a batch must be a JSON object",
					  psprintf("Got %s.", EsJsonbValueKind(elem, true)));
	obj = elem->val.binary.data;

	if (!getKeyJsonValueFromContainer(obj, "type", 4, &v))
		BadBatchEvent(index, "event has no \"type\"", NULL);
	known++;
	if (v.type != jbvString)
		BadBatchEvent(index, "event \"type\" must be a JSON string",
					  psprintf("Got %s.", EsJsonbValueKind(&v, true)));
	event->event_type = PointerGetDatum(cstring_to_text_with_len(v.val.string.val,
																 v.val.string.len));
	EsValidateEventType(DatumGetTextPP(event->event_type), index);

	if (!getKeyJsonValueFromContainer(obj, "data", 4, &v))
		BadBatchEvent(index, "event has no \"data\"", NULL);
	known++;
	if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
		BadBatchEvent(index, "event data must be a JSON object",
					  psprintf("Got %s.", EsJsonbValueKind(&v, true)));
	event->data = PointerGetDatum(JsonbValueToJsonb(&v));

	event->metadata_null = true;
	event->metadata = (Datum) 0;
	if (getKeyJsonValueFromContainer(obj, "metadata", 8, &v))
	{
		known++;
		if (v.type == jbvBinary && JsonContainerIsObject(v.val.binary.data))
		{
			event->metadata = PointerGetDatum(JsonbValueToJsonb(&v));
			event->metadata_null = false;
		}
		else if (v.type != jbvNull)
			BadBatchEvent(index, "event metadata must be a JSON object",
						  psprintf("Got %s.", EsJsonbValueKind(&v, true)));
	}

	event->has_id = false;
	if (getKeyJsonValueFromContainer(obj, "id", 2, &v))
	{
		known++;
		if (v.type == jbvString)
		{
			if (!EsParseUuid(v.val.string.val, v.val.string.len,
							 &event->event_id))
				BadBatchEvent(index, "event \"id\" is not a valid uuid",
							  psprintf("Got \"%s\".",
									   pnstrdup(v.val.string.val,
												pg_mbcliplen(v.val.string.val,
															 v.val.string.len,
															 64))));
			event->has_id = true;
		}
		else if (v.type != jbvNull)
			BadBatchEvent(index, "event \"id\" must be a uuid string",
						  psprintf("Got %s.", EsJsonbValueKind(&v, true)));
	}

	if (JsonContainerSize(obj) != known)
		BadBatchEvent(index, "event has an unknown key",
					  psprintf("Key \"%s\" is not one of \"type\", \"data\", \"metadata\", \"id\".",
							   FindUnknownKey(obj)));
}

/*
 * es_append_batch appends the events of a JSON array to one stream,
 * atomically and in order, and returns the stream's new version.
 *
 * es_append_batch(stream_id text, events jsonb, expected_version bigint)
 */
PG_FUNCTION_INFO_V1(es_append_batch);
Datum
es_append_batch(PG_FUNCTION_ARGS)
{
	text	   *stream_id;
	Jsonb	   *batch;
	int			nevents;
	NewEvent   *events;
	bool		check_version;
	int64		expected = 0;
	Oid			namespace_oid;
	int			i;

	EsRequireArgument(fcinfo, 0, "stream id");
	EsRequireArgument(fcinfo, 1, "events");

	stream_id = PG_GETARG_TEXT_PP(0);
	EsValidateStreamId(stream_id);
	batch = PG_GETARG_JSONB_P(1);
	if (!JB_ROOT_IS_ARRAY(batch) || JB_ROOT_IS_SCALAR(batch))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("events must be a JSON array"),
				 errdetail("Got a JSON %s.",
						   JB_ROOT_IS_OBJECT(batch) ? "object" : "scalar"),
				 errhint("Pass [{\"type\": ..., \"data\": {...}}, ...].")));
	nevents = JB_ROOT_COUNT(batch);
	if (nevents == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("events must not be an empty array")));
	if (nevents > Min(es_max_append_events, es_max_append_events_ceiling))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many events in one append"),
				 errdetail("The batch has %d events; es_pg.max_append_events is %d and es_pg.max_append_events_ceiling is %d.",
						   nevents, es_max_append_events,
						   es_max_append_events_ceiling),
				 errhint("Split the batch; a superuser may raise es_pg.max_append_events_ceiling.")));
	if (VARSIZE(batch) > (Size) es_max_batch_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("batch too large"),
				 errdetail("The events take %zu bytes; es_pg.max_batch_bytes is %d.",
						   (Size) VARSIZE(batch), es_max_batch_bytes),
				 errhint("Split the batch.")));
	check_version = ParseExpectedVersion(fcinfo, 2, &expected);

	events = palloc(nevents * sizeof(NewEvent));
	for (i = 0; i < nevents; i++)
	{
		JsonbValue *elem = getIthJsonbValueFromContainer(&batch->root, i);

		ParseBatchEvent(elem, i, &events[i]);
		CheckEventSize(&events[i], i);
	}
	/* the registered schemas, once every event is well-formed */
	namespace_oid = EsGetCatalogForFunction(fcinfo)->namespace_oid;
	for (i = 0; i < nevents; i++)
		events[i].schema_version =
			EsCheckEventSchema(namespace_oid,
							   DatumGetTextPP(events[i].event_type),
							   DatumGetJsonbP(events[i].data),
							   events[i].metadata_null ? NULL :
							   DatumGetJsonbP(events[i].metadata), i);

	PG_RETURN_INT64(AppendEvents(fcinfo, stream_id, events, nevents,
								 check_version, expected));
}

/*
 * es_last_position returns the global position of the last event an append
 * of this transaction wrote, NULL when it wrote none (or only in
 * subtransactions that rolled back since, or only exact retries, which
 * write nothing).  Its own transaction's positions are known to the
 * caller, so no privilege is checked.
 */
PG_FUNCTION_INFO_V1(es_last_position);
Datum
es_last_position(PG_FUNCTION_ARGS)
{
	if (es_last_appended_position == 0 ||
		!TransactionIdIsValid(es_last_appended_xid) ||
		!TransactionIdIsCurrentTransactionId(es_last_appended_xid))
		PG_RETURN_NULL();
	PG_RETURN_INT64(es_last_appended_position);
}

/*
 * EsInitAppend defines the settings that limit appends; called from
 * _PG_init.
 */
void
EsInitAppend(void)
{
	DefineCustomIntVariable("es_pg.max_append_events",
							"Largest number of events one es_append_batch call may append.",
							NULL,
							&es_max_append_events,
							100000, 1, 10000000,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("es_pg.max_append_events_ceiling",
							"Largest value es_pg.max_append_events takes effect with; only superusers change it.",
							"A batch uses about 2 kB of backend memory per event while it is appended.",
							&es_max_append_events_ceiling,
							100000, 1, 10000000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("es_pg.max_event_bytes",
							"Largest size of one event's data and metadata together.",
							NULL,
							&es_max_event_bytes,
							64 * 1024 * 1024, 1024, INT_MAX,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomIntVariable("es_pg.max_batch_bytes",
							"Largest size of the events argument of one es_append_batch call.",
							NULL,
							&es_max_batch_bytes,
							256 * 1024 * 1024, 1024, INT_MAX,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
}
