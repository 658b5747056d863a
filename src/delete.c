/*-------------------------------------------------------------------------
 *
 * delete.c
 *	  es_delete_stream: the tombstone event and its row of es_tombstones.
 *
 * The check that appends and reads make is in tombstone.c, below read.c
 * and append.c; this file calls them (through SQL, for the append) and so
 * sits above them.
 *
 * IDENTIFICATION
 *	  src/delete.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "es_pg.h"
#include "common.h"

static const EsStatement AppendTombstoneStatement = {
	"SELECT @extschema@.es_append($1, '" ES_TOMBSTONE_EVENT_TYPE "', "
	"pg_catalog.jsonb_build_object('deleted_version', $2::bigint), $3, $4)",
	4, {TEXTOID, INT8OID, INT8OID, JSONBOID}, false
};

static const EsStatement InsertTombstoneStatement = {
	"INSERT INTO @extschema@.es_tombstones (stream_id, version, global_position) "
	"SELECT e.stream_id, e.version, e.global_position FROM @extschema@.es_events e "
	"WHERE e.stream_id OPERATOR(pg_catalog.=) $1 AND e.version OPERATOR(pg_catalog.=) $2",
	2, {TEXTOID, INT8OID}, false
};

/*
 * es_delete_stream deletes a stream: it appends the tombstone event (with
 * the expected-version check of es_append when expected_version is given)
 * and records it in es_tombstones.  Returns the tombstone's version.
 *
 * es_delete_stream(stream_id text, expected_version bigint, metadata jsonb)
 */
PG_FUNCTION_INFO_V1(es_delete_stream);
Datum
es_delete_stream(PG_FUNCTION_ARGS)
{
	text	   *stream_id = EsTextArgument(fcinfo, 0, "stream id");
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	Oid			relid;
	Oid			owner;
	Relation	rel;
	int64		current;
	int64		version;
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	bool		isnull;
	int			rc;

	EsValidateStreamId(stream_id);
	if (!OidIsValid(EsTombstoneIndex(cat, &relid)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this install of es_pg cannot delete streams"),
				 errhint("Run ALTER EXTENSION es_pg UPDATE.")));
	owner = EsRelationOwner(cat->events_relid);

	/* under the stream lock, nothing is appended to it meanwhile */
	rel = table_open(cat->events_relid, RowExclusiveLock);
	EsLockStream(stream_id);
	EsCheckStreamNotDeleted(cat, stream_id, GetLatestSnapshot());
	current = EsStreamVersion(cat, rel, stream_id, GetLatestSnapshot());
	table_close(rel, NoLock);
	if (current == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("stream \"%s\" does not exist", text_to_cstring(stream_id)),
				 errhint("Only a stream with events can be deleted.")));

	values[0] = PointerGetDatum(stream_id);
	values[1] = Int64GetDatum(current);
	if (PG_ARGISNULL(1))
	{
		values[2] = (Datum) 0;
		nulls[2] = 'n';
	}
	else
		values[2] = PG_GETARG_DATUM(1);
	if (PG_ARGISNULL(2))
	{
		values[3] = (Datum) 0;
		nulls[3] = 'n';
	}
	else
		values[3] = PG_GETARG_DATUM(2);

	EsSpiConnect();
	rc = EsExecute(&AppendTombstoneStatement, cat->namespace_oid, owner,
				   values, nulls, InvalidSnapshot);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
	version = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();

	values[1] = Int64GetDatum(version);
	if (EsRunStatement(&InsertTombstoneStatement, cat->namespace_oid,
					   EsRelationOwner(relid), values, NULL,
					   SPI_OK_INSERT) != 1)
		elog(ERROR, "the tombstone of stream \"%s\" was not recorded",
			 text_to_cstring(stream_id));
	PG_RETURN_INT64(version);
}
