/*-------------------------------------------------------------------------
 *
 * read.c
 *	  Read a stream forward or backward, a stream's version, and the global
 *	  feed.
 *
 * Stream reads are plain MVCC index scans of es_events_stream_id_version_key
 * with the statement's snapshot.
 *
 * The global feed is the delicate one.  Positions come from a sequence, and
 * transactions commit in any order, so a follower that asks for "events
 * after position P" with an ordinary snapshot could receive P+2, move on,
 * and never see P+1 when its transaction commits a moment later.  es_pg's
 * feed never does that:
 *
 *	1. It asks lock.c for the safe high position H: every position up to
 *	   H that will ever be committed is in the global_position index
 *	   already (lock.c's header comment says why).
 *	2. It walks the index from P upward with SnapshotAny, up to H, and checks
 *	   each row against an MVCC snapshot taken after step 1.  A visible row
 *	   is returned; a row that can never become visible (its transaction
 *	   aborted, or it was deleted by a transaction that committed, which
 *	   only a superuser with the guards switched off can do) is stepped
 *	   over; a row of a transaction still in progress, or committed after
 *	   the snapshot, ends the page, so the follower asks again from the last
 *	   row it got.
 *
 * Only appending transactions hold the feed back, and only from their own
 * first position on: a long transaction that did not append is not looked
 * at.  Positions stay plain bigints, so pg_dump and restore keep them.
 *
 * IDENTIFICATION
 *	  src/read.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/procarray.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "es_pg.h"
#include "common.h"

/*
 * EsStreamHead returns the highest version of the stream visible to the
 * snapshot, or 0 when the stream has no events.  When maybe_deleted is not
 * NULL it says whether that head event is a tombstone ("$StreamDeleted"):
 * a deleted stream's head always is one, since nothing is appended to it
 * after its tombstone (es_append refuses, and so does a direct insert,
 * direct.c), so a stream whose head is anything else needs no probe of
 * es_tombstones (tombstone.c).
 */
int64
EsStreamHead(const EsCatalog *cat, Relation rel, text *stream_id,
			 Snapshot snapshot, bool *maybe_deleted)
{
	EsIndexProbe probe;
	ScanKeyData key;
	int64		version = 0;

	if (maybe_deleted != NULL)
		*maybe_deleted = false;
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(stream_id));
	EsProbeOpenOn(&probe, rel, cat->stream_index);
	EsProbeStart(&probe, snapshot, &key, 1);
	if (EsProbeNext(&probe, BackwardScanDirection))
	{
		bool		isnull;

		version = DatumGetInt64(slot_getattr(probe.slot,
											 Anum_es_events_version,
											 &isnull));
		if (maybe_deleted != NULL)
		{
			Datum		type = slot_getattr(probe.slot,
											Anum_es_events_event_type,
											&isnull);

			*maybe_deleted = !isnull &&
				EsIsTombstoneType(DatumGetTextPP(type));
		}
	}
	EsProbeClose(&probe);
	return version;
}

/*
 * EsStreamVersion returns the highest version of the stream visible to the
 * snapshot, or 0 when the stream has no events.
 */
int64
EsStreamVersion(const EsCatalog *cat, Relation rel, text *stream_id,
				Snapshot snapshot)
{
	return EsStreamHead(cat, rel, stream_id, snapshot, NULL);
}

/*
 * GetCount reads an optional row-count argument: NULL means no limit.
 */
static int64
GetCount(FunctionCallInfo fcinfo, int argno, const char *what)
{
	int64		value;

	if (PG_ARGISNULL(argno))
		return PG_INT64_MAX;
	value = PG_GETARG_INT64(argno);
	if (value < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be negative", what),
				 errhint("Pass NULL for no limit.")));
	return value;
}

/*
 * GetStart reads an optional, non-negative version or position argument.
 */
static int64
GetStart(FunctionCallInfo fcinfo, int argno, const char *what, int64 dflt)
{
	int64		value;

	if (PG_ARGISNULL(argno))
		return dflt;
	value = PG_GETARG_INT64(argno);
	if (value < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be negative", what)));
	return value;
}

/*
 * es_stream_version returns the stream's current version, 0 when it does
 * not exist.
 */
PG_FUNCTION_INFO_V1(es_stream_version);
Datum
es_stream_version(PG_FUNCTION_ARGS)
{
	text	   *stream_id = EsTextArgument(fcinfo, 0, "stream id");
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	Relation	rel;
	int64		version;

	bool		maybe_deleted;

	EsCheckReadPrivilege(cat);
	rel = table_open(cat->events_relid, AccessShareLock);
	version = EsStreamHead(cat, rel, stream_id, GetActiveSnapshot(),
						   &maybe_deleted);
	table_close(rel, AccessShareLock);
	if (maybe_deleted)
		EsCheckStreamNotDeleted(cat, stream_id, GetActiveSnapshot());
	PG_RETURN_INT64(version);
}

/*
 * What a stream read saw of the stream's ends: the first and the last
 * event it read, and whether it read up to the end of the index range.
 */
typedef struct StreamEnds
{
	ItemPointerData first;
	ItemPointerData last;
	bool		exhausted;
} StreamEnds;

/*
 * NextOfStream is EsProbeNext for a stream read, noting the ends: the
 * tids of the first and the last event read, and whether the range ran
 * out.
 */
static inline bool
NextOfStream(EsIndexProbe *probe, ScanDirection dir, int64 count,
			 StreamEnds *ends)
{
	if (!EsProbeNext(probe, dir))
	{
		ends->exhausted = true;
		return false;
	}
	if (count == 0)
		ends->first = probe->slot->tts_tid;
	ends->last = probe->slot->tts_tid;
	return true;
}

/*
 * IsTombstoneAt says whether the event at a tid, as the snapshot sees it,
 * is a tombstone ("$StreamDeleted"); true when it cannot be read, so that
 * the caller asks es_tombstones.
 */
static bool
IsTombstoneAt(EsIndexProbe *probe, ItemPointer tid, Snapshot snapshot)
{
	ItemPointerData copy = *tid;
	bool		isnull;
	Datum		type;

	if (!table_tuple_fetch_row_version(probe->heap, &copy, snapshot,
									   probe->slot))
		return true;
	type = slot_getattr(probe->slot, Anum_es_events_event_type, &isnull);
	return isnull || EsIsTombstoneType(DatumGetTextPP(type));
}

/*
 * UpcastStored replaces the events a read stored by their current shape:
 * its second pass, when one of them has to change.
 */
static void
UpcastStored(ReturnSetInfo *rsinfo, const EsCatalog *cat, TupleDesc desc,
			 MemoryContext scratch)
{
	Tuplestorestate *stored = rsinfo->setResult;
	Tuplestorestate *result;
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	MemoryContext oldcxt;

	oldcxt = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	result = tuplestore_begin_heap((rsinfo->allowedModes &
									SFRM_Materialize_Random) != 0,
								   false, work_mem);
	MemoryContextSwitchTo(oldcxt);
	tuplestore_rescan(stored);
	while (tuplestore_gettupleslot(stored, true, false, slot))
	{
		HeapTuple	tuple;
		bool		should_free;

		/* the copy of the stored tuple goes with the scratch context */
		oldcxt = MemoryContextSwitchTo(scratch);
		tuple = ExecFetchSlotHeapTuple(slot, false, &should_free);
		tuple = EsUpcastEventTuple(cat->namespace_oid, tuple, desc);
		MemoryContextSwitchTo(oldcxt);
		tuplestore_puttuple(result, tuple);
		MemoryContextReset(scratch);
	}
	ExecDropSingleTupleTableSlot(slot);
	tuplestore_end(stored);
	rsinfo->setResult = result;
}

/*
 * ReadUpcast is the loop of ReadStreamEvents when the install has
 * upcasters or protected types: each event in its current shape
 * (evolution.c).  Each event is stored as it is and tested after the copy,
 * which brought it into the cache: testing it before cost reads of types
 * that no upcaster applies to a few percent.  Only when one of them has to
 * change does a second pass (UpcastStored) upcast them.
 */
static int64
ReadUpcast(ReturnSetInfo *rsinfo, const EsCatalog *cat, EsIndexProbe *probe,
		   ScanDirection dir, int64 max_count, MemoryContext scratch,
		   StreamEnds *ends)
{
	int64		count = 0;
	bool		changes = false;
	TupleDesc	desc = probe->slot->tts_tupleDescriptor;

	while (count < max_count && NextOfStream(probe, dir, count, ends))
	{
		tuplestore_puttupleslot(rsinfo->setResult, probe->slot);
		if (!changes)
			changes = EsUpcastMayChange(cat->namespace_oid,
										TTS_IS_BUFFERTUPLE(probe->slot) ?
										((BufferHeapTupleTableSlot *) probe->slot)->base.tuple :
										ExecFetchSlotHeapTuple(probe->slot,
															   false, NULL),
										desc);
		count++;
	}
	if (changes)
		UpcastStored(rsinfo, cat, desc, scratch);
	return count;
}

/*
 * ReadStreamEvents returns up to max_count events of one stream: forward from
 * the version after "bound", or backward from the version before it (no
 * bound when has_bound is false).
 */
static void
ReadStreamEvents(FunctionCallInfo fcinfo, text *stream_id, bool has_bound,
				 int64 bound, int64 max_count, ScanDirection dir)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	EsIndexProbe probe;
	ScanKeyData keys[2];
	int			nkeys = 1;
	int64		count = 0;
	MemoryContext scratch = NULL;
	StreamEnds	ends;
	bool		checked = false;
	bool		head_seen;

	EsCheckReadPrivilege(cat);
	InitMaterializedSRF(fcinfo, 0);
	if (max_count == 0)
	{
		EsCheckStreamNotDeleted(cat, stream_id, GetActiveSnapshot());
		return;
	}

	EsProbeOpen(&probe, cat->events_relid, cat->stream_index);

	/*
	 * A deleted stream's tombstone is its last event, and es_archive keeps
	 * it (tombstone.c), so a read that sees the head learns from its type
	 * whether es_tombstones must be asked, and most reads need not ask.
	 * With archives of live streams, the deleted stream's error comes
	 * before that of its archived versions, as it always did.
	 */
	if (EsArchiveHorizon(cat) != 0)
	{
		EsCheckStreamNotDeleted(cat, stream_id, GetActiveSnapshot());
		checked = true;
	}
	/* archived first versions (archhorizon.c): es_events is locked now */
	EsCheckStreamNotArchived(cat, stream_id, GetActiveSnapshot(),
							 ScanDirectionIsBackward(dir),
							 has_bound ? bound : 0, has_bound ? bound : -1,
							 max_count);
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(stream_id));
	if (has_bound)
	{
		if (ScanDirectionIsForward(dir))
			ScanKeyInit(&keys[1], 2, BTGreaterStrategyNumber, F_INT8GT,
						Int64GetDatum(bound));
		else
			ScanKeyInit(&keys[1], 2, BTLessStrategyNumber, F_INT8LT,
						Int64GetDatum(bound));
		nkeys = 2;
	}
	if (EsUpcastingActive(cat->namespace_oid))
		scratch = AllocSetContextCreate(CurrentMemoryContext,
										"es_read_stream upcast",
										ALLOCSET_DEFAULT_SIZES);
	EsProbeStart(&probe, GetActiveSnapshot(), keys, nkeys);
	memset(&ends, 0, sizeof(ends));
	ItemPointerSetInvalid(&ends.first);
	ItemPointerSetInvalid(&ends.last);
	if (scratch != NULL)
	{
		/* no code of anyone else's runs between the events */
		EsUpcastBatchBegin();
		PG_TRY();
		{
			count = ReadUpcast(rsinfo, cat, &probe, dir, max_count, scratch,
							   &ends);
		}
		PG_CATCH();
		{
			EsUpcastBatchEnd(true);
			PG_RE_THROW();
		}
		PG_END_TRY();
		EsUpcastBatchEnd(false);
	}
	else
	{
		while (count < max_count && NextOfStream(&probe, dir, count, &ends))
		{
			tuplestore_puttupleslot(rsinfo->setResult, probe.slot);
			count++;
		}
	}

	/*
	 * The head: forward, the last event of a read that ran to the end;
	 * backward from the top, the first.  Without it, ask es_tombstones.
	 */
	if (!checked)
	{
		if (ScanDirectionIsForward(dir))
			head_seen = ends.exhausted && count > 0;
		else
			head_seen = !has_bound && count > 0;
		if (!head_seen ||
			IsTombstoneAt(&probe,
						  ScanDirectionIsForward(dir) ? &ends.last : &ends.first,
						  GetActiveSnapshot()))
			EsCheckStreamNotDeleted(cat, stream_id, GetActiveSnapshot());
	}
	EsProbeClose(&probe);
	if (scratch != NULL)
		MemoryContextDelete(scratch);
}

/*
 * es_read_stream returns the events of a stream with a version greater than
 * from_version, oldest first, at most max_count of them.
 */
PG_FUNCTION_INFO_V1(es_read_stream);
Datum
es_read_stream(PG_FUNCTION_ARGS)
{
	text	   *stream_id = EsTextArgument(fcinfo, 0, "stream id");
	int64		from_version = GetStart(fcinfo, 1, "from_version", 0);
	int64		max_count = GetCount(fcinfo, 2, "max_count");

	ReadStreamEvents(fcinfo, stream_id, true, from_version, max_count,
					 ForwardScanDirection);
	return (Datum) 0;
}

/*
 * es_read_stream_backward returns the events of a stream with a version
 * less than before_version (all of them when it is NULL), newest first.
 */
PG_FUNCTION_INFO_V1(es_read_stream_backward);
Datum
es_read_stream_backward(PG_FUNCTION_ARGS)
{
	text	   *stream_id = EsTextArgument(fcinfo, 0, "stream id");
	bool		has_bound = !PG_ARGISNULL(1);
	int64		before_version = GetStart(fcinfo, 1, "before_version", 0);
	int64		max_count = GetCount(fcinfo, 2, "max_count");

	ReadStreamEvents(fcinfo, stream_id, has_bound, before_version, max_count,
					 BackwardScanDirection);
	return (Datum) 0;
}

/*
 * FollowHotChain finds the version of a HOT-updated row visible to the
 * snapshot (an event a superuser rewrote with the guards off) and points
 * *tuple at it; false when there is none.  The buffer stays pinned.
 */
static bool
FollowHotChain(Relation rel, Buffer buffer, Snapshot snapshot,
			   HeapTuple tuple)
{
	ItemPointerData tid = tuple->t_self;
	bool		all_dead;
	bool		found;

	LockBuffer(buffer, BUFFER_LOCK_SHARE);
	found = heap_hot_search_buffer(&tid, rel, buffer, snapshot, tuple,
								   &all_dead, true);
	LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
	return found;
}

/*
 * EsReadFeed calls callback for each event after from_position, in
 * position order, up to max_count events, and never past an event whose
 * transaction might still commit (see the header comment).  The callback
 * may stop the walk by returning false.  Returns the number of events
 * passed to the callback.
 */
int64
EsReadFeed(const EsCatalog *cat, int64 from_position, int64 max_count,
		   EsFeedCallback callback, void *arg)
{
	ScanKeyData key;

	ScanKeyInit(&key, 1, BTGreaterStrategyNumber, F_INT8GT,
				Int64GetDatum(from_position));
	return EsReadFeedIndex(cat, InvalidOid, &key, 1, from_position,
						   max_count, callback, arg, NULL);
}

/*
 * EsReadFeedIndex is EsReadFeed along another index of es_events whose
 * entries are in global position order for the scan keys given (the
 * category index, category.c); InvalidOid walks the global_position index.
 * The keys select the positions after from_position.  *reached (unless
 * NULL) is set to the position up to which the walk saw every entry of the
 * index that will ever commit: the last row passed to the callback when the
 * walk stopped there, else just below the row that ended it, else the safe
 * high position.
 */
int64
EsReadFeedIndex(const EsCatalog *cat, Oid index_oid, ScanKey keys, int nkeys,
				int64 from_position, int64 max_count,
				EsFeedCallback callback, void *arg, int64 *reached)
{
	Relation	rel;
	Relation	index;
	Relation	walk;
	TupleDesc	tupdesc;
	IndexScanDesc scan;
	Snapshot	snapshot;
	Buffer		buffer = InvalidBuffer;
	int64		high;
	int64		count = 0;
	int64		reached_here = from_position;

	if (reached != NULL)
		*reached = from_position;
	if (max_count <= 0)
		return 0;

	rel = table_open(cat->events_relid, AccessShareLock);
	tupdesc = RelationGetDescr(rel);
	index = index_open(cat->position_index, AccessShareLock);

	/* archived events of live streams (archhorizon.c): never skip them */
	EsCheckFeedNotArchived(cat, from_position);
	high = EsFeedSafeHigh(rel, index);

	if (high <= from_position)
	{
		index_close(index, AccessShareLock);
		table_close(rel, AccessShareLock);
		return 0;
	}
	walk = OidIsValid(index_oid) ? index_open(index_oid, AccessShareLock) : index;

	/*
	 * The snapshot must be taken after "high" was read, so that it sees
	 * every row up to high that had committed by then.  REPEATABLE READ and
	 * SERIALIZABLE keep their transaction snapshot; rows committed after it
	 * then end the page instead of being skipped.
	 */
	if (IsolationUsesXactSnapshot())
		snapshot = RegisterSnapshot(GetTransactionSnapshot());
	else
		snapshot = RegisterSnapshot(GetLatestSnapshot());

	scan = EsIndexBeginScan(rel, walk, SnapshotAny, nkeys, 0);
	index_rescan(scan, keys, nkeys, NULL, 0);

	/*
	 * The heap is read here rather than through index_getnext_slot: rows of
	 * es_events are never updated, so an index entry points straight at
	 * its tuple (no HOT chain to follow), and one buffer lock per row serves
	 * both the fetch and the visibility check.  The tuple is handed to the
	 * callback with only the pin held, which keeps it in place.
	 */
	while (count < max_count)
	{
		ItemPointer tid = index_getnext_tid(scan, ForwardScanDirection);
		BlockNumber block;
		Page		page;
		ItemId		itemid;
		HeapTupleData tuple;
		bool		isnull;
		bool		visible;
		TransactionId xmin;
		int64		position;

		if (tid == NULL)
		{
			reached_here = high;
			break;
		}
		block = ItemPointerGetBlockNumber(tid);
		if (buffer == InvalidBuffer || BufferGetBlockNumber(buffer) != block)
			buffer = ReleaseAndReadBuffer(buffer, rel, block);

		LockBuffer(buffer, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buffer);
		itemid = PageGetItemId(page, ItemPointerGetOffsetNumber(tid));
		if (!ItemIdIsNormal(itemid))
		{
			/* dead and pruned: a rolled-back append */
			LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
			continue;
		}
		tuple.t_data = (HeapTupleHeader) PageGetItem(page, itemid);
		tuple.t_len = ItemIdGetLength(itemid);
		tuple.t_tableOid = RelationGetRelid(rel);
		tuple.t_self = *tid;
		visible = HeapTupleSatisfiesVisibility(&tuple, snapshot, buffer);
		xmin = HeapTupleHeaderGetXmin(tuple.t_data);
		LockBuffer(buffer, BUFFER_LOCK_UNLOCK);

		position = DatumGetInt64(heap_getattr(&tuple,
											  Anum_es_events_global_position,
											  tupdesc, &isnull));
		if (position > high)
		{
			reached_here = high;
			break;
		}

		if (visible)
		{
			count++;
			reached_here = position;
			if (!callback(&tuple, tupdesc, arg))
				break;
			continue;
		}

		/*
		 * Not visible.  A row whose inserting transaction might still become
		 * visible to a later reader (in progress, ours, or committed after
		 * our snapshot) ends the walk before it.  Any other row never will
		 * be: its transaction aborted (its index entry is then marked dead
		 * for later scans), or it committed before our snapshot and the row
		 * was deleted or updated since, which only a superuser with the
		 * guards off can do; both are stepped over (an updated row's new
		 * version on the same page is returned in its place).
		 */
		if (TransactionIdIsCurrentTransactionId(xmin))
		{
			reached_here = position - 1;
			break;
		}
		if (XidInMVCCSnapshot(xmin, snapshot))
		{
			if (!TransactionIdDidAbort(xmin))
			{
				reached_here = position - 1;
				break;
			}
		}
		else if (TransactionIdDidCommit(xmin))
		{
			/* an UPDATE that stayed on the page: its new version, if any */
			reached_here = position;
			if (HeapTupleHeaderIsHotUpdated(tuple.t_data) &&
				FollowHotChain(rel, buffer, snapshot, &tuple))
			{
				count++;
				if (!callback(&tuple, tupdesc, arg))
					break;
			}
			continue;
		}
		reached_here = position;
		if (!scan->xactStartedInRecovery)
			scan->kill_prior_tuple = true;
	}

	if (BufferIsValid(buffer))
		ReleaseBuffer(buffer);
	if (reached != NULL)
		*reached = Max(reached_here, from_position);
	index_endscan(scan);
	UnregisterSnapshot(snapshot);
	if (walk != index)
		index_close(walk, AccessShareLock);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);
	return count;
}

/*
 * StoreTuple is the EsReadFeed callback of es_read_all.
 */
static bool
StoreTuple(HeapTuple tuple, TupleDesc tupdesc, void *arg)
{
	tuplestore_puttuple((Tuplestorestate *) arg, tuple);
	return true;
}

/* what StoreUpcastTuple needs */
typedef struct UpcastStore
{
	Tuplestorestate *store;
	Oid			namespace_oid;
	MemoryContext scratch;
} UpcastStore;

/*
 * StoreUpcastTuple is the EsReadFeed callback of es_read_all when the
 * install has upcasters: the event in its current shape.
 */
static bool
StoreUpcastTuple(HeapTuple tuple, TupleDesc tupdesc, void *arg)
{
	UpcastStore *u = (UpcastStore *) arg;
	MemoryContext oldcxt = MemoryContextSwitchTo(u->scratch);
	HeapTuple	current = EsUpcastEventTuple(u->namespace_oid, tuple, tupdesc);

	MemoryContextSwitchTo(oldcxt);
	tuplestore_puttuple(u->store, current);
	if (current != tuple)
		MemoryContextReset(u->scratch);
	return true;
}

/*
 * es_read_all returns up to max_count events with a global position
 * greater than from_position, in position order.  A follower that always
 * passes the last position it received sees every committed event once.
 */
PG_FUNCTION_INFO_V1(es_read_all);
Datum
es_read_all(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		from_position = GetStart(fcinfo, 0, "from_position", 0);
	int64		max_count = GetCount(fcinfo, 1, "max_count");
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);

	EsCheckReadPrivilege(cat);
	InitMaterializedSRF(fcinfo, 0);
	if (EsUpcastingActive(cat->namespace_oid))
	{
		UpcastStore u;

		u.store = rsinfo->setResult;
		u.namespace_oid = cat->namespace_oid;
		u.scratch = AllocSetContextCreate(CurrentMemoryContext,
										  "es_read_all upcast",
										  ALLOCSET_DEFAULT_SIZES);
		/* no code of anyone else's runs between the events */
		EsUpcastBatchBegin();
		PG_TRY();
		{
			EsReadFeed(cat, from_position, max_count, StoreUpcastTuple, &u);
		}
		PG_CATCH();
		{
			EsUpcastBatchEnd(true);
			PG_RE_THROW();
		}
		PG_END_TRY();
		EsUpcastBatchEnd(false);
		MemoryContextDelete(u.scratch);
	}
	else
		EsReadFeed(cat, from_position, max_count, StoreTuple,
				   rsinfo->setResult);
	return (Datum) 0;
}

/*
 * EsHeadPosition returns the highest global position visible to the
 * snapshot, 0 when there are no events.
 */
int64
EsHeadPosition(const EsCatalog *cat, Snapshot snapshot)
{
	EsIndexProbe probe;
	int64		position = 0;

	EsProbeOpen(&probe, cat->events_relid, cat->position_index);
	EsProbeStart(&probe, snapshot, NULL, 0);
	if (EsProbeNext(&probe, BackwardScanDirection))
	{
		bool		isnull;

		position = DatumGetInt64(slot_getattr(probe.slot,
											  Anum_es_events_global_position,
											  &isnull));
	}
	EsProbeClose(&probe);
	return position;
}

/*
 * es_head_position returns the highest committed global position.
 */
PG_FUNCTION_INFO_V1(es_head_position);
Datum
es_head_position(PG_FUNCTION_ARGS)
{
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);

	EsCheckReadPrivilege(cat);
	PG_RETURN_INT64(EsHeadPosition(cat, GetActiveSnapshot()));
}
