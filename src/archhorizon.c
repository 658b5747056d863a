/*-------------------------------------------------------------------------
 *
 * archhorizon.c
 *	  The archive horizon: what the read paths refuse once es_archive moved
 *	  events of live streams out of es_events (docs/audit.md, Archiving).
 *
 * es_archive(..., live_streams => true) moves the sealed events below a
 * position of every stream, except each stream's last event (so that
 * appends keep finding the stream's version, and expected versions keep
 * their meaning), into es_archived_events.  From then on the global feed
 * up to the highest archived position, and the first versions of those
 * streams, are no longer all in es_events.  Rather than return them with
 * holes, the read paths refuse (ES_ERRCODE_EVENTS_ARCHIVED, with a hint
 * naming es_read_archived):
 *
 *	- the feed (EsReadFeedIndex: es_read_all, es_read_category, es_poll,
 *	  subscriptions, projection rebuilds and appliers) when it is asked for
 *	  events after a position below the horizon, the highest position that
 *	  a live-stream archive moved (es_archives.last_position);
 *	- stream reads and es_aggregate's fold when they would need a version
 *	  below the stream's first version left in es_events;
 *	- a subscription's replay of a parked event that was archived.
 *
 * A follower past the horizon pays one comparison: the horizon is cached
 * per backend, and forgotten when es_archives changes (its trigger
 * es_archives_changed sends a relcache invalidation, so each backend
 * reloads it).  That cannot come late: es_archive takes an ACCESS EXCLUSIVE
 * lock on es_events before it moves live streams' events, so every reader
 * either finished its transaction before, or locks es_events after the
 * archive committed and sent its invalidation, and a lock taken processes
 * pending invalidations before the reader looks at the cache.  Deleted
 * streams' archives (the default) do not move the horizon: those streams
 * are refused by stream reads already, and their tombstones stay in the
 * feed, as before.
 *
 * IDENTIFICATION
 *	  src/archhorizon.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "es_pg.h"
#include "common.h"

/* the horizon of one install, as last loaded by this backend */
static struct
{
	bool		valid;
	Oid			namespace_oid;
	Oid			archives_relid;
	int64		horizon;
}			cached;

static bool callback_registered = false;

/*
 * HorizonCallback forgets the cached horizon when es_archives changes (or
 * every relation is invalidated).
 */
static void
HorizonCallback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == cached.archives_relid)
		cached.valid = false;
}

/*
 * LoadHorizon reads the highest position moved by a live-stream archive
 * from es_archives, with the latest snapshot; 0 when there is none.
 */
static int64
LoadHorizon(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	live = get_attnum(relid, "live_streams");
	AttrNumber	last = get_attnum(relid, "last_position");
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	TableScanDesc scan;
	TupleTableSlot *slot;
	int64		horizon = 0;

	if (live == InvalidAttrNumber || last == InvalidAttrNumber ||
		live > desc->natts || last > desc->natts)
		elog(ERROR, "es_archives has no columns live_streams and last_position");
	slot = table_slot_create(rel, NULL);
	scan = table_beginscan(rel, snapshot, 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		value = slot_getattr(slot, live, &isnull);

		if (isnull || !DatumGetBool(value))
			continue;
		value = slot_getattr(slot, last, &isnull);
		if (!isnull && DatumGetInt64(value) > horizon)
			horizon = DatumGetInt64(value);
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	return horizon;
}

/*
 * EsArchiveHorizon returns the highest position that es_archive moved out
 * of es_events with live streams, 0 when it never did.  The caller holds a
 * lock on es_events (see the header comment).
 */
int64
EsArchiveHorizon(const EsCatalog *cat)
{
	Oid			relid;

	/* 0.1.0's SQL (before ALTER EXTENSION UPDATE) archives nothing */
	if (cat->version < ES_VERSION_0_2)
		return 0;
	if (cached.valid && cached.namespace_oid == cat->namespace_oid)
		return cached.horizon;
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(HorizonCallback, (Datum) 0);
		callback_registered = true;
	}
	relid = EsLookupRelation("es_archives", cat->namespace_oid, true);
	if (!OidIsValid(relid))
		return 0;
	cached.valid = false;
	cached.namespace_oid = cat->namespace_oid;
	cached.archives_relid = relid;
	cached.horizon = LoadHorizon(relid);
	cached.valid = true;
	return cached.horizon;
}

/*
 * EsCheckFeedNotArchived raises ES_ERRCODE_EVENTS_ARCHIVED when a read of
 * the feed after from_position would miss archived events of live streams.
 */
void
EsCheckFeedNotArchived(const EsCatalog *cat, int64 from_position)
{
	int64		horizon = EsArchiveHorizon(cat);

	if (from_position < horizon)
		ereport(ERROR,
				(errcode(ES_ERRCODE_EVENTS_ARCHIVED),
				 errmsg("events after position %lld are archived",
						(long long) from_position),
				 errdetail("es_archive moved events of live streams up to position %lld into es_archived_events.",
						   (long long) horizon),
				 errhint("Read positions up to %lld with es_read_archived(%lld), then read the feed from position %lld on.",
						 (long long) horizon, (long long) from_position,
						 (long long) horizon)));
}

/*
 * EsCheckEventNotArchived raises ES_ERRCODE_EVENTS_ARCHIVED when the event
 * at a position, which a caller did not find in es_events, may have been
 * moved out by a live-stream archive (a parked event of a subscription
 * replayed after it).
 */
void
EsCheckEventNotArchived(const EsCatalog *cat, int64 position)
{
	int64		horizon = EsArchiveHorizon(cat);

	if (position <= horizon)
		ereport(ERROR,
				(errcode(ES_ERRCODE_EVENTS_ARCHIVED),
				 errmsg("the event at position %lld is archived",
						(long long) position),
				 errdetail("es_archive moved events of live streams up to position %lld into es_archived_events.",
						   (long long) horizon),
				 errhint("Read it with es_read_archived(%lld, 1).",
						 (long long) (position - 1))));
}

/*
 * FirstVersion returns the lowest version of the stream in es_events
 * visible to the snapshot (with the highest one in *head), 0 when none.
 */
static int64
FirstVersion(const EsCatalog *cat, text *stream_id, Snapshot snapshot,
			 int64 *head)
{
	EsIndexProbe probe;
	ScanKeyData key;
	int64		first = 0;
	bool		isnull;

	*head = 0;
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(stream_id));
	EsProbeOpen(&probe, cat->events_relid, cat->stream_index);
	EsProbeStart(&probe, snapshot, &key, 1);
	if (EsProbeNext(&probe, ForwardScanDirection))
		first = DatumGetInt64(slot_getattr(probe.slot, Anum_es_events_version,
										   &isnull));
	if (first > 1)
	{
		index_endscan(probe.scan);
		EsProbeStart(&probe, snapshot, &key, 1);
		if (EsProbeNext(&probe, BackwardScanDirection))
			*head = DatumGetInt64(slot_getattr(probe.slot,
											   Anum_es_events_version,
											   &isnull));
	}
	EsProbeClose(&probe);
	return first;
}

/*
 * EsCheckStreamNotArchived raises ES_ERRCODE_EVENTS_ARCHIVED when a read
 * of the stream would need versions that es_archive moved out: a forward
 * read of the versions after "after", or (backward) a read of up to
 * max_count versions below "before" (-1: the whole stream, newest first).
 * Costs nothing in a store without live-stream archives.
 */
void
EsCheckStreamNotArchived(const EsCatalog *cat, text *stream_id,
						 Snapshot snapshot, bool backward, int64 after,
						 int64 before, int64 max_count)
{
	int64		first;
	int64		head;
	bool		misses;

	if (max_count <= 0 || EsArchiveHorizon(cat) == 0)
		return;
	first = FirstVersion(cat, stream_id, snapshot, &head);
	if (first <= 1)
		return;
	if (!backward)
		misses = after + 1 < first;
	else
	{
		/* the versions it reads: below "before", down to first */
		int64		top = (before < 0 || before > head + 1) ? head + 1 : before;

		misses = top > 1 && top - first < max_count;
	}
	if (misses)
		ereport(ERROR,
				(errcode(ES_ERRCODE_EVENTS_ARCHIVED),
				 errmsg("versions 1 to %lld of stream \"%s\" are archived",
						(long long) (first - 1), text_to_cstring(stream_id)),
				 errdetail("es_archive moved them into es_archived_events; es_events holds versions %lld to %lld.",
						   (long long) first, (long long) head),
				 errhint("Read them with es_read_archived(0, NULL, stream_id), or read the stream from version %lld on.",
						 (long long) (first - 1))));
}

static const EsStatement ArchivedRangesStatement = {
	"SELECT pg_catalog.range_agg(pg_catalog.int8range(a.first_position, "
	"a.last_position, '[]')) FROM @extschema@.es_archives a "
	"WHERE a.first_position OPERATOR(pg_catalog.<=) $2 "
	"AND a.last_position OPERATOR(pg_catalog.>=) $1",
	2, {INT8OID, INT8OID}, false
};

/*
 * EsArchivedRanges returns the ranges of positions (an int8multirange,
 * from es_archives) in which es_archive moved events, among the positions
 * from_position to to_position, as the snapshot sees them; *isnull when
 * there are none.  For es_verify.
 */
Datum
EsArchivedRanges(const EsCatalog *cat, int64 from_position,
				 int64 to_position, Snapshot snapshot, bool *isnull)
{
	Oid			relid = InvalidOid;
	Datum		values[2];
	Datum		result = (Datum) 0;
	int			rc;

	*isnull = true;
	if (cat->version >= ES_VERSION_0_2)
		relid = EsLookupRelation("es_archives", cat->namespace_oid, true);
	if (!OidIsValid(relid))
		return (Datum) 0;
	values[0] = Int64GetDatum(from_position);
	values[1] = Int64GetDatum(to_position);
	EsSpiConnect();
	rc = EsExecute(&ArchivedRangesStatement, cat->namespace_oid,
				   EsRelationOwner(relid), values, NULL, snapshot);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
						   isnull);
	if (!*isnull)
		result = SPI_datumTransfer(result, false, -1);
	SPI_finish();
	return result;
}

/*
 * es_archives_changed is the AFTER INSERT statement trigger of
 * es_archives: every backend reloads its horizon.
 */
PG_FUNCTION_INFO_V1(es_archives_changed);
Datum
es_archives_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = EsCheckTriggerCall(fcinfo, "es_archives_changed");

	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event))
		EsTriggerMisfired("es_archives_changed", "AFTER INSERT FOR EACH STATEMENT");
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	return PointerGetDatum(NULL);
}
