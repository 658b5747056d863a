/*-------------------------------------------------------------------------
 *
 * archread.c
 *	  es_read_archived: read the archived range back, archived events and
 *	  the events that stayed in es_events alike, in position order.
 *
 * After es_archive(..., live_streams => true), the read paths refuse to
 * read below the archive horizon (archhorizon.c).  es_read_archived is
 * what their hint names: the events with a position after from_position
 * and at most the highest archived position, from es_archived_events and
 * es_events (each stream's last event, tombstones, and what was not sealed
 * when it was archived stay there), in position order, in the shape
 * es_read_all returns them (upcast, like the other read paths).  A
 * follower reads it until it reaches the horizon and then goes on with
 * es_read_all; a stream reader gives a stream id and goes on with
 * es_read_stream after the last version it got.
 *
 * The archived range is sealed and no longer written (es_archive moves
 * only sealed events, below the seal horizon), so a plain query with the
 * statement's snapshot reads it: no late commit can land in it.
 *
 * IDENTIFICATION
 *	  src/archread.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "es_pg.h"
#include "common.h"

#define READ_COLUMNS "global_position, stream_id, version, event_id, " \
	"event_type, data, metadata, recorded_at, schema_version"

static const EsStatement ReadArchivedStatement = {
	"WITH h AS (SELECT pg_catalog.max(r.last_position) AS horizon "
	"  FROM @extschema@.es_archives r) "
	"SELECT " READ_COLUMNS " FROM ("
	"  SELECT " READ_COLUMNS " FROM @extschema@.es_archived_events a "
	"  WHERE a.global_position OPERATOR(pg_catalog.>) $1 "
	"  AND a.global_position OPERATOR(pg_catalog.<=) (SELECT horizon FROM h) "
	"  AND ($3 IS NULL OR a.stream_id OPERATOR(pg_catalog.=) $3) "
	"  UNION ALL "
	"  SELECT " READ_COLUMNS " FROM @extschema@.es_events e "
	"  WHERE e.global_position OPERATOR(pg_catalog.>) $1 "
	"  AND e.global_position OPERATOR(pg_catalog.<=) (SELECT horizon FROM h) "
	"  AND ($3 IS NULL OR e.stream_id OPERATOR(pg_catalog.=) $3)"
	") u ORDER BY global_position LIMIT $2",
	3, {INT8OID, INT8OID, TEXTOID}, false
};

/*
 * StoreRow puts one row of the query into the result, in the row type of
 * es_events (columns matched by name), upcast when the install has
 * upcasters.
 */
static void
StoreRow(Tuplestorestate *store, TupleDesc result, HeapTuple row,
		 TupleDesc rowdesc, Oid namespace_oid, bool upcast)
{
	Datum	   *values = palloc0(sizeof(Datum) * result->natts);
	bool	   *nulls = palloc(sizeof(bool) * result->natts);
	HeapTuple	tuple;
	int			i;

	for (i = 0; i < result->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(result, i);
		int			fnumber;

		nulls[i] = true;
		if (att->attisdropped)
			continue;
		fnumber = SPI_fnumber(rowdesc, NameStr(att->attname));
		if (fnumber <= 0)
			continue;
		values[i] = SPI_getbinval(row, rowdesc, fnumber, &nulls[i]);
	}
	tuple = heap_form_tuple(result, values, nulls);
	if (upcast)
		tuple = EsUpcastEventTuple(namespace_oid, tuple, result);
	tuplestore_puttuple(store, tuple);
}

/*
 * es_read_archived returns the events with a position after from_position
 * and at most the highest archived one, archived or not, oldest first, at
 * most max_count (NULL: all) of them, of one stream if stream_id is given.
 *
 * es_read_archived(from_position bigint, max_count bigint, stream_id text)
 */
PG_FUNCTION_INFO_V1(es_read_archived);
Datum
es_read_archived(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	int64		from_position = PG_ARGISNULL(0) ? 0 : PG_GETARG_INT64(0);
	Oid			index;
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	MemoryContext scratch;
	MemoryContext oldcxt;
	bool		upcast;
	int			rc;
	uint64		i;

	if (from_position < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("from_position must not be negative")));
	if (!PG_ARGISNULL(1) && PG_GETARG_INT64(1) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_count must not be negative"),
				 errhint("Pass NULL for no limit.")));
	EsCheckReadPrivilege(cat);
	InitMaterializedSRF(fcinfo, 0);
	if (!OidIsValid(EsArchiveRelation(cat, &index)))
		return (Datum) 0;		/* 0.1.0's SQL: nothing archived */

	values[0] = Int64GetDatum(from_position);
	if (PG_ARGISNULL(1))
		nulls[1] = 'n';
	else
		values[1] = PG_GETARG_DATUM(1);
	if (PG_ARGISNULL(2))
		nulls[2] = 'n';
	else
		values[2] = PointerGetDatum(EsTextArgument(fcinfo, 2, "stream id"));

	upcast = EsUpcastingActive(cat->namespace_oid);
	scratch = AllocSetContextCreate(CurrentMemoryContext,
									"es_read_archived row",
									ALLOCSET_DEFAULT_SIZES);
	EsSpiConnect();
	rc = EsExecute(&ReadArchivedStatement, cat->namespace_oid,
				   EsRelationOwner(cat->events_relid), values, nulls,
				   GetActiveSnapshot());
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
	if (upcast)
		EsUpcastBatchBegin();
	PG_TRY();
	{
		for (i = 0; i < SPI_processed; i++)
		{
			CHECK_FOR_INTERRUPTS();
			oldcxt = MemoryContextSwitchTo(scratch);
			StoreRow(rsinfo->setResult, rsinfo->setDesc,
					 SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
					 cat->namespace_oid, upcast);
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(scratch);
		}
	}
	PG_CATCH();
	{
		if (upcast)
			EsUpcastBatchEnd(true);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (upcast)
		EsUpcastBatchEnd(false);
	SPI_finish();
	MemoryContextDelete(scratch);
	return (Datum) 0;
}
