/*-------------------------------------------------------------------------
 *
 * direct.c
 *	  Inserts into es_events that bypass es_append: a restore's COPY, a
 *	  migration's INSERT.
 *
 * Such an insert keeps the invariants es_append keeps, or fails:
 *
 *	- its first statement's BEFORE STATEMENT trigger (es_events_insert_guard)
 *	  opens the transaction's direct-insert window (lock.c), which excludes
 *	  every other writer of the database until the transaction is about to
 *	  commit, and notes the highest position then in use;
 *	- the CHECK constraint es_events_insert_check, which PostgreSQL
 *	  evaluates for every row however it arrives, refuses a row when no
 *	  window is open (logical replication's apply worker fires no statement
 *	  triggers) and a row whose global_position is not above every position
 *	  in use when the window opened (a follower past it would never see it);
 *	- just before commit (or PREPARE), every stream the window wrote to must
 *	  continue without a gap: its new versions follow the highest version it
 *	  had, one by one, and none follows a tombstone es_tombstones records
 *	  (a deleted stream stays deleted, tombstone.c); the position sequence
 *	  is moved past the highest position written; then the window closes.
 *
 * A restore into an empty store is the simplest case of it: the store is
 * empty when the window opens, every row is checked at commit, and the
 * sequence ends past the last position.  Rows may come in any order.
 *
 * IDENTIFICATION
 *	  src/direct.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "es_pg.h"
#include "common.h"

/* the open window of this transaction */
static struct
{
	bool		open;
	Oid			namespace_oid;	/* the install written to */
	int64		floor;			/* highest position in use when it opened */
	int64		highest;		/* highest position written through it */
}			es_direct;

/*
 * EsDirectInsertBegin opens the window for a statement that inserts into
 * es_events without es_append (a no-op when this transaction has one).
 */
void
EsDirectInsertBegin(Relation events_rel)
{
	const EsCatalog *cat;
	Relation	index;

	if (es_direct.open)
		return;
	if (EsFeedInFlight())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot insert into es_events directly while an append is writing it"),
				 errdetail("A trigger of an append, or code it calls, inserted into es_events with INSERT or COPY."),
				 errhint("Append with es_append or es_append_batch instead.")));
	cat = EsGetCatalog(RelationGetNamespace(events_rel));
	EsFeedOpenWindow();
	index = index_open(cat->position_index, AccessShareLock);
	es_direct.floor = EsMaxIndexedPosition(events_rel, index);
	index_close(index, AccessShareLock);
	es_direct.highest = 0;
	es_direct.namespace_oid = cat->namespace_oid;
	es_direct.open = true;
}

/*
 * InsideOwnScript says whether es_pg's own install or update script is
 * running (an update adds es_events_insert_check to a table that holds
 * rows, and PostgreSQL checks them).
 */
static bool
InsideOwnScript(void)
{
	return creating_extension &&
		CurrentExtensionObject == get_extension_oid("es_pg", true);
}

/*
 * es_events_insert_check is the function of the CHECK constraint
 * es_events_insert_check: true for rows of es_append, and for rows of an
 * open window that are above its floor; anything else is an error.
 */
PG_FUNCTION_INFO_V1(es_events_insert_check);
Datum
es_events_insert_check(PG_FUNCTION_ARGS)
{
	int64		position;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();		/* NOT NULL reports it */
	position = PG_GETARG_INT64(0);
	if (EsOwnRowBeingChecked(position))
		PG_RETURN_BOOL(true);
	if (!es_direct.open)
	{
		if (InsideOwnScript())
			PG_RETURN_BOOL(true);
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("events enter es_events only through es_append, es_append_batch, INSERT or COPY"),
				 errdetail("This row reached es_events without its statement triggers firing, as logical replication's apply worker writes rows."),
				 errhint("Replicate an event store physically (streaming replication), or feed another store with es_read_all and es_append.")));
	}
	if (position <= es_direct.floor)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("global position %lld of an inserted event is not above the positions in use",
						(long long) position),
				 errdetail("Position %lld was the highest in use when this transaction began inserting; a follower of the feed past it would never see the event.",
						   (long long) es_direct.floor),
				 errhint("Leave global_position to its default, or restore into an empty event store."),
				 errtableconstraint(table_open(EsGetCatalog(es_direct.namespace_oid)->events_relid,
											   NoLock),
									ES_INSERT_CHECK_CONSTRAINT)));
	if (position > es_direct.highest)
		es_direct.highest = position;
	PG_RETURN_BOOL(true);
}

/*
 * CheckStreams raises an error for the first stream that the window's rows
 * do not continue without a gap.  A stream new to es_events may start
 * above version 1 when es_archive moved its first versions to
 * es_archived_events (a restore of an archived store): when its rows end
 * with its tombstone, when the archive holds the version before its first
 * row, or in a restore into an empty store while the archive is still
 * empty (pg_restore -j loads es_events and es_archived_events in either
 * order; es_verify then checks the restored store against its seals).
 */
static void
CheckStreams(const EsCatalog *cat)
{
	Oid			index;
	bool		archived = OidIsValid(EsArchiveRelation(cat, &index));
	const char *live = "";
	const char *schema = quote_identifier(get_namespace_name(cat->namespace_oid));
	char	   *sql;
	Oid			argtypes[2] = {INT8OID, BOOLOID};
	Datum		values[2];

	/*
	 * a live stream whose first versions es_archive moved out
	 * (live_streams): the archive holds the version before its first row,
	 * or, in a restore into an empty store ($2), the archive is not loaded
	 * yet (pg_restore -j loads the tables in any order)
	 */
	if (archived)
		live = psprintf(" AND NOT (b.before IS NULL AND (EXISTS (SELECT 1"
						" FROM %s.es_archived_events x"
						" WHERE x.stream_id OPERATOR(pg_catalog.=) n.stream_id"
						" AND x.version OPERATOR(pg_catalog.=) (n.lo OPERATOR(pg_catalog.-) 1))"
						" OR ($2 AND NOT EXISTS (SELECT 1 FROM %s.es_archived_events))))",
						schema, schema);
	sql = psprintf("SELECT n.stream_id, n.lo, n.hi, n.cnt, b.before"
				   " FROM (SELECT e.stream_id, pg_catalog.min(e.version) AS lo,"
				   " pg_catalog.max(e.version) AS hi, pg_catalog.count(*) AS cnt"
				   " FROM %s.es_events e"
				   " WHERE e.global_position OPERATOR(pg_catalog.>) $1"
				   " GROUP BY e.stream_id) n"
				   " LEFT JOIN LATERAL (SELECT pg_catalog.max(o.version) AS before"
				   " FROM %s.es_events o"
				   " WHERE o.stream_id OPERATOR(pg_catalog.=) n.stream_id"
				   " AND o.global_position OPERATOR(pg_catalog.<=) $1) b ON true"
				   " WHERE n.cnt OPERATOR(pg_catalog.<>)"
				   " ((n.hi OPERATOR(pg_catalog.-) n.lo) OPERATOR(pg_catalog.+) 1)"
				   " OR (n.lo OPERATOR(pg_catalog.<>)"
				   " (COALESCE(b.before, 0) OPERATOR(pg_catalog.+) 1)"
				   /*
					* a deleted stream whose first versions es_archive moved
					* out (archive.c): its rows end with its tombstone and
					* start after the archived ones
					*/
				   " AND NOT (b.before IS NULL AND EXISTS (SELECT 1 FROM %s.es_events t"
				   " WHERE t.stream_id OPERATOR(pg_catalog.=) n.stream_id"
				   " AND t.version OPERATOR(pg_catalog.=) n.hi"
				   " AND t.event_type OPERATOR(pg_catalog.=) '$StreamDeleted'))"
				   "%s)"
				   " ORDER BY n.stream_id LIMIT 1",
				   schema, schema, schema, live);
	values[0] = Int64GetDatum(es_direct.floor);
	values[1] = BoolGetDatum(es_direct.floor == 0 && archived);
	EsRunAsOwner(cat->events_relid, sql, 2, argtypes, values, NULL, true, 1);
	if (SPI_processed > 0)
	{
		HeapTuple	row = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *stream = SPI_getvalue(row, desc, 1);
		char	   *lo = SPI_getvalue(row, desc, 2);
		char	   *hi = SPI_getvalue(row, desc, 3);
		char	   *cnt = SPI_getvalue(row, desc, 4);
		char	   *before = SPI_getvalue(row, desc, 5);
		Relation	rel = table_open(cat->events_relid, NoLock);

		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("events inserted into stream \"%s\" leave a gap in its versions",
						stream),
				 errdetail("The stream was at version %s; this transaction inserted %s events with versions %s to %s.",
						   before ? before : "0", cnt, lo, hi),
				 errhint("A stream's versions are 1, 2, 3... without gaps: give the events the versions that follow, or append them with es_append_batch."),
				 errtableconstraint(rel, ES_INSERT_CHECK_CONSTRAINT)));
	}
}

/*
 * CheckTombstones raises an error for the first stream to which the
 * window's rows add events after the tombstone es_tombstones records for it:
 * nothing follows a deleted stream's tombstone (tombstone.c relies on it).
 * A dump never holds such rows, whichever of es_events and es_tombstones a
 * restore loads first.
 */
static void
CheckTombstones(const EsCatalog *cat)
{
	const char *schema = quote_identifier(get_namespace_name(cat->namespace_oid));
	char	   *sql;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];
	Oid			relid;

	if (!OidIsValid(EsTombstoneIndex(cat, &relid)))
		return;
	sql = psprintf("SELECT t.stream_id, t.version, e.version"
				   " FROM %s.es_events e JOIN %s.es_tombstones t"
				   " ON t.stream_id OPERATOR(pg_catalog.=) e.stream_id"
				   " WHERE e.global_position OPERATOR(pg_catalog.>) $1"
				   " AND e.version OPERATOR(pg_catalog.>) t.version"
				   " ORDER BY e.global_position LIMIT 1",
				   schema, schema);
	values[0] = Int64GetDatum(es_direct.floor);
	EsRunAsOwner(cat->events_relid, sql, 1, argtypes, values, NULL, true, 1);
	if (SPI_processed > 0)
	{
		HeapTuple	row = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		ereport(ERROR,
				(errcode(ES_ERRCODE_STREAM_DELETED),
				 errmsg("stream \"%s\" is deleted", SPI_getvalue(row, desc, 1)),
				 errdetail("Its tombstone is at version %s; this transaction inserted an event at version %s.",
						   SPI_getvalue(row, desc, 2), SPI_getvalue(row, desc, 3)),
				 errhint("Nothing follows a deleted stream's tombstone: insert the events into another stream.")));
	}
}

/*
 * AdvanceSequence moves the position sequence past the highest position
 * the window wrote, so that later appends take positions above it.  The
 * window still excludes every other writer here.
 */
static void
AdvanceSequence(const EsCatalog *cat)
{
	char	   *seq = quote_qualified_identifier(get_namespace_name(cat->namespace_oid),
												 "es_events_position_seq");
	char	   *sql;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];

	sql = psprintf("SELECT pg_catalog.setval('%s'::pg_catalog.regclass, $1)"
				   " FROM %s s WHERE s.last_value OPERATOR(pg_catalog.<) $1"
				   " OR NOT s.is_called",
				   seq, seq);
	values[0] = Int64GetDatum(es_direct.highest);
	EsRunAsOwner(cat->position_seq, sql, 1, argtypes, values, NULL, false, 0);
}

/*
 * DirectXactCallback does the checks at commit (and PREPARE) and closes
 * the window; an abort only forgets it (lock.c releases the lock).
 */
static void
DirectXactCallback(XactEvent event, void *arg)
{
	const EsCatalog *cat;

	if (!es_direct.open)
		return;
	if (event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PRE_PREPARE)
	{
		/* make this transaction's last rows visible to the checks */
		CommandCounterIncrement();
		cat = EsGetCatalog(es_direct.namespace_oid);
		PushActiveSnapshot(GetTransactionSnapshot());
		EsSpiConnect();
		CheckStreams(cat);
		CheckTombstones(cat);
		if (es_direct.highest > 0)
			AdvanceSequence(cat);
		SPI_finish();
		PopActiveSnapshot();
		es_direct.open = false;
		EsFeedCloseWindow(event == XACT_EVENT_PRE_PREPARE);
	}
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_COMMIT ||
			 event == XACT_EVENT_PREPARE)
		es_direct.open = false;
}

/*
 * EsInitDirect registers the transaction callback; called from _PG_init.
 */
void
EsInitDirect(void)
{
	RegisterXactCallback(DirectXactCallback, NULL);
}
