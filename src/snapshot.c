/*-------------------------------------------------------------------------
 *
 * snapshot.c
 *	  es_aggregate: aggregate state and temporal queries, folding a
 *	  stream through a reducer from its newest usable snapshot.
 *
 * es_aggregate folds the events of a stream, in version order, through a
 * user function reducer(state jsonb, event es_events) RETURNS jsonb.  It
 * starts from the newest usable snapshot of the same reducer at or before
 * the bound (one backward probe of es_snapshots_pkey) and replays only the
 * tail, read with an index scan of es_events_stream_id_version_key.  The
 * loop is C: the reducer is looked up once and called through one FmgrInfo,
 * kept in es_aggregate's fn_extra for the whole query (an SQL reducer is
 * planned once per query, even one that aggregates many streams; a PL/pgSQL
 * one keeps its cached plans), each event is passed as an es_events composite
 * built from the heap tuple, and every call runs in a scratch memory context
 * that is reset after the state has been copied out.
 *
 * Snapshots carry a digest of the reducer's code and of the initial state
 * (reducer.c); the snapshot store and snapshot policies are in snapstore.c.
 *
 * Snapshots stored under a policy are shared by every caller, so no
 * caller's environment may shape them: under a policy the whole fold runs
 * as the reducer's owner, as a security-restricted operation, with the
 * search_path pinned when the policy was set (identity.c), and the digest
 * covers that owner and search_path too.  A caller with its own operator
 * for numeric on its search_path folds with pg_catalog's there.  Without a
 * policy the fold runs as the caller, and nothing it computes is shared.
 *
 * IDENTIFICATION
 *	  src/snapshot.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/objectaccess.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "common.h"
#include "snapshot.h"

/* es_pg.log_replay: report what each es_aggregate call did */
bool		es_log_replay = false;

/*
 * AggregateCallCache keeps the reducer's FmgrInfo in es_aggregate's own
 * fn_extra, so that a query calling es_aggregate for many streams looks the
 * reducer up (and plans an SQL reducer) once, not once per row.
 */
typedef struct AggregateCallCache
{
	Oid			reducer;
	FmgrInfo	flinfo;
} AggregateCallCache;

/* where es_aggregate is in its fold, for the error context */
typedef struct FoldPosition
{
	text	   *stream_id;
	const char *reducer;
	TupleTableSlot *slot;
	int64		version;
} FoldPosition;

/*
 * EsInitSnapshots defines es_pg.log_replay; called from _PG_init.
 */
void
EsInitSnapshots(void)
{
	DefineCustomBoolVariable("es_pg.log_replay",
							 "Reports the snapshot each es_aggregate call started from and the events it replayed.",
							 "The report is a NOTICE; with the setting off it is a DEBUG1 message.",
							 &es_log_replay,
							 false,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
}

/*
 * FoldErrorContext names the event the reducer was folding when an error
 * occurred.
 */
static void
FoldErrorContext(void *arg)
{
	FoldPosition *pos = (FoldPosition *) arg;
	bool		isnull;
	Datum		type;

	if (TTS_EMPTY(pos->slot))
		return;
	type = slot_getattr(pos->slot, Anum_es_events_event_type, &isnull);
	errcontext("es_aggregate folding event %lld (%s) of stream \"%s\" through %s",
			   (long long) pos->version,
			   isnull ? "?" : TextDatumGetCString(type),
			   text_to_cstring(pos->stream_id), pos->reducer);
}

/*
 * FoldEvents calls the reducer, through flinfo, for each event of the stream
 * with a version after "after" and at most "bound", in version order, and
 * returns the number of events it folded.  *state holds the initial state on
 * entry and the final one, allocated in the caller's memory context, on
 * exit.
 */
static int64
FoldEvents(const EsCatalog *cat, Snapshot snapshot, text *stream_id,
		   const EsReducer *reducer, FmgrInfo *flinfo, int64 after,
		   int64 bound, Datum *state)
{
	MemoryContext callcxt = CurrentMemoryContext;
	MemoryContext foldcxt;
	MemoryContext scratch;
	MemoryContext statecxt[2];
	int			next = 0;
	LOCAL_FCINFO(fcinfo, 2);
	PgStat_FunctionCallUsage fcusage;
	EsIndexProbe probe;
	ScanKeyData keys[3];
	FoldPosition pos;
	ErrorContextCallback errcallback;
	Datum		current = *state;
	int64		count = 0;
	bool		upcast;

	if (bound <= after)
		return 0;
	upcast = EsUpcastingActive(cat->namespace_oid);

	foldcxt = AllocSetContextCreate(callcxt, "es_aggregate",
									ALLOCSET_DEFAULT_SIZES);
	scratch = AllocSetContextCreate(foldcxt, "es_aggregate event",
									ALLOCSET_DEFAULT_SIZES);
	statecxt[0] = AllocSetContextCreate(foldcxt, "es_aggregate state",
										ALLOCSET_DEFAULT_SIZES);
	statecxt[1] = AllocSetContextCreate(foldcxt, "es_aggregate state",
										ALLOCSET_DEFAULT_SIZES);

	InitFunctionCallInfoData(*fcinfo, flinfo, 2, InvalidOid, NULL, NULL);

	EsProbeOpen(&probe, cat->events_relid, cat->stream_index);
	/* versions archived below a snapshot's (archhorizon.c) */
	EsCheckStreamNotArchived(cat, stream_id, snapshot, false, after, 0,
							 bound - after);
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(stream_id));
	ScanKeyInit(&keys[1], 2, BTGreaterStrategyNumber, F_INT8GT,
				Int64GetDatum(after));
	ScanKeyInit(&keys[2], 2, BTLessEqualStrategyNumber, F_INT8LE,
				Int64GetDatum(bound));
	EsProbeStart(&probe, snapshot, keys, 3);

	pos.stream_id = stream_id;
	pos.reducer = reducer->name;
	pos.slot = probe.slot;
	pos.version = 0;

	for (;;)
	{
		bool		isnull;
		Datum		result;

		/*
		 * The index AM may allocate lazily what it keeps until the end of
		 * the scan (btree's killed-items array), so it must not run in a
		 * context that is reset during the loop.
		 */
		MemoryContextSwitchTo(callcxt);
		if (!EsProbeNext(&probe, ForwardScanDirection))
			break;
		CHECK_FOR_INTERRUPTS();
		pos.version = DatumGetInt64(slot_getattr(probe.slot,
												 Anum_es_events_version,
												 &isnull));

		MemoryContextSwitchTo(scratch);
		fcinfo->args[0].value = current;
		fcinfo->args[0].isnull = false;
		if (upcast)
		{
			/* the event in its current shape (evolution.c) */
			TupleDesc	desc = probe.slot->tts_tupleDescriptor;
			HeapTuple	tuple = EsUpcastEventTuple(cat->namespace_oid,
												   ExecFetchSlotHeapTuple(probe.slot,
																		  false, NULL),
												   desc);

			fcinfo->args[1].value = heap_copy_tuple_as_datum(tuple, desc);
		}
		else
			fcinfo->args[1].value = ExecFetchSlotHeapTupleDatum(probe.slot);
		fcinfo->args[1].isnull = false;
		fcinfo->isnull = false;

		EsPushErrorContext(&errcallback, FoldErrorContext, &pos);
		pgstat_init_function_usage(fcinfo, &fcusage);
		result = FunctionCallInvoke(fcinfo);
		pgstat_end_function_usage(&fcusage, true);
		if (fcinfo->isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("reducer %s returned null", reducer->name),
					 errhint("A reducer returns the new state, and the state unchanged for events it ignores (for example ELSE state in a CASE).")));
		EsPopErrorContext(&errcallback);

		/*
		 * The result may point into the scratch context, into the event, or
		 * be the previous state itself: copy it into the state context that
		 * does not hold the previous state, then free the rest.
		 */
		MemoryContextReset(statecxt[next]);
		MemoryContextSwitchTo(statecxt[next]);
		current = PointerGetDatum(PG_DETOAST_DATUM_COPY(result));
		next = 1 - next;
		MemoryContextReset(scratch);
		count++;
	}

	EsProbeClose(&probe);

	MemoryContextSwitchTo(callcxt);
	if (count > 0)
		*state = PointerGetDatum(PG_DETOAST_DATUM_COPY(current));
	MemoryContextDelete(foldcxt);
	return count;
}

/*
 * VersionAtTime returns the highest version at most upto of the events
 * recorded at or before t, 0 when there is none: a backward walk of the
 * stream from upto, which reads only the events recorded after t.
 */
static int64
VersionAtTime(const EsCatalog *cat, Snapshot snapshot, text *stream_id,
			  int64 upto, TimestampTz t)
{
	EsIndexProbe probe;
	ScanKeyData keys[2];
	int64		version = 0;

	EsProbeOpen(&probe, cat->events_relid, cat->stream_index);
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(stream_id));
	ScanKeyInit(&keys[1], 2, BTLessEqualStrategyNumber, F_INT8LE,
				Int64GetDatum(upto));
	EsProbeStart(&probe, snapshot, keys, 2);
	while (EsProbeNext(&probe, BackwardScanDirection))
	{
		bool		isnull;

		CHECK_FOR_INTERRUPTS();
		if (DatumGetTimestampTz(slot_getattr(probe.slot,
											 Anum_es_events_recorded_at,
											 &isnull)) <= t)
		{
			version = DatumGetInt64(slot_getattr(probe.slot,
												 Anum_es_events_version,
												 &isnull));
			break;
		}
	}
	EsProbeClose(&probe);
	return version;
}

/*
 * es_aggregate folds a stream through a reducer and returns the state, as
 * of now, of a version, or of a time.
 *
 * es_aggregate(stream_id text, reducer regprocedure, initial jsonb,
 *				as_of_version bigint, as_of_time timestamptz)
 */
PG_FUNCTION_INFO_V1(es_aggregate);
Datum
es_aggregate(PG_FUNCTION_ARGS)
{
	text	   *stream_id;
	Jsonb	   *initial;
	const EsCatalog *cat;
	const EsSnapshotCatalog *sc;
	EsReducer	reducer;
	AggregateCallCache *cache;
	char		digest[ES_DIGEST_LEN];
	Snapshot	snapshot;
	int64		head;
	int64		bound;
	int64		stale = 0;
	int64		replayed;
	EsFoundSnapshot found;
	bool		have_snapshot = false;
	Datum		state;
	char	   *outcome = NULL;
	EsSnapshotPolicy policy;
	EsIdentity	id;
	StringInfoData report;

	EsRequireArgument(fcinfo, 0, "stream id");
	EsRequireArgument(fcinfo, 1, "reducer");
	EsRequireArgument(fcinfo, 2, "initial state");
	stream_id = PG_GETARG_TEXT_PP(0);
	initial = PG_GETARG_JSONB_P(2);
	if (!PG_ARGISNULL(3) && PG_GETARG_INT64(3) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("as_of_version must not be negative"),
				 errhint("Pass NULL for the current version, 0 for the initial state.")));

	cat = EsGetCatalogForFunction(fcinfo);
	EsCheckReadPrivilege(cat);
	EsCheckStreamNotDeleted(cat, stream_id, GetActiveSnapshot());
	sc = EsGetSnapshotCatalog(cat);
	EsCheckReducer(sc, PG_GETARG_OID(1), &reducer);
	EsCheckExecute(reducer.oid, GetUserId());
	InvokeFunctionExecuteHook(reducer.oid);

	snapshot = RegisterSnapshot(GetActiveSnapshot());
	EsLookupPolicy(sc, snapshot, reducer.name, &policy);
	if (policy.search_path != NULL)
		EsCheckExecute(reducer.oid, reducer.owner);
	EsFoldDigest(&reducer, &policy, initial, digest);
	/* a snapshot is folded through the upcasters too (evolution.c) */
	EsUpcastFoldDigest(cat->namespace_oid, digest);

	/* one lookup and one FmgrInfo per reducer for the whole query */
	cache = (AggregateCallCache *) fcinfo->flinfo->fn_extra;
	if (cache == NULL || cache->reducer != reducer.oid)
	{
		if (cache == NULL)
			cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt,
										   sizeof(AggregateCallCache));
		fmgr_info_cxt(reducer.oid, &cache->flinfo, fcinfo->flinfo->fn_mcxt);
		cache->reducer = reducer.oid;
		fcinfo->flinfo->fn_extra = cache;
	}

	head = EsStreamVersionOf(cat, stream_id, snapshot);
	bound = head;
	if (!PG_ARGISNULL(3))
	{
		bound = PG_GETARG_INT64(3);
		if (bound > head)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("as_of_version %lld is beyond the end of stream \"%s\"",
							(long long) bound, text_to_cstring(stream_id)),
					 errdetail("Stream \"%s\" is at version %lld.",
							   text_to_cstring(stream_id), (long long) head)));
	}
	if (!PG_ARGISNULL(4) && bound > 0)
		bound = VersionAtTime(cat, snapshot, stream_id, bound,
							  PG_GETARG_TIMESTAMPTZ(4));

	state = JsonbPGetDatum(initial);
	if (bound > 0)
		have_snapshot = EsFindReducerSnapshot(sc, snapshot, stream_id,
											  reducer.name, bound, digest,
											  &found, &stale);
	if (have_snapshot)
		state = JsonbPGetDatum(found.state);

	/* a fold whose snapshots are shared runs in the policy's environment */
	if (policy.search_path != NULL)
		EsBecomeOwner(reducer.owner, policy.search_path, false, &id);
	replayed = FoldEvents(cat, snapshot, stream_id, &reducer, &cache->flinfo,
						  have_snapshot ? found.version : 0, bound, &state);
	if (policy.search_path != NULL)
		EsRestoreIdentity(&id);

	if (replayed > 0 && policy.every > 0 && replayed > policy.every)
		outcome = EsStorePolicySnapshot(sc, stream_id, reducer.name, bound,
										state, digest);
	UnregisterSnapshot(snapshot);

	if (!es_log_replay && !message_level_is_interesting(DEBUG1))
		PG_RETURN_DATUM(state);
	initStringInfo(&report);
	appendStringInfo(&report, "es_aggregate: stream \"%s\", reducer %s, ",
					 text_to_cstring(stream_id), reducer.name);
	if (have_snapshot)
		appendStringInfo(&report, "snapshot at version %lld",
						 (long long) found.version);
	else
		appendStringInfoString(&report, "no snapshot");
	if (stale > 0)
		appendStringInfo(&report, " (skipped %lld stale)", (long long) stale);
	appendStringInfo(&report, ", replayed %lld event%s, state at version %lld",
					 (long long) replayed, replayed == 1 ? "" : "s",
					 (long long) bound);
	if (outcome != NULL)
		appendStringInfo(&report, ", %s", outcome);
	ereport(es_log_replay ? NOTICE : DEBUG1,
			(errmsg_internal("%s", report.data)));

	PG_RETURN_DATUM(state);
}
