/*-------------------------------------------------------------------------
 *
 * archive.c
 *	  es_archive: move the sealed events of deleted streams out of
 *	  es_events into es_archived_events, through the one removal path the
 *	  append-only guard lets through.
 *
 * What moves: the events of streams deleted by es_delete_stream, except
 * their tombstones (which keep the streams deleted), that are sealed (at
 * or below the last seal's to_position) and below before_position.  They
 * are copied into es_archived_events (same columns, its own tablespace if
 * asked), then deleted from es_events, in one transaction: a crash leaves
 * them in one table or the other, never neither.
 *
 * With live_streams, es_archive also moves the sealed events of live
 * streams below before_position, except each stream's last event, under
 * an ACCESS EXCLUSIVE lock on es_events; the read paths then refuse what
 * they would miss (archhorizon.c), and es_read_archived (archread.c) reads
 * it back.
 *
 * The removal path.  es_events_append_only (guard.c) refuses UPDATE,
 * DELETE and TRUNCATE to everyone, and lets a DELETE through only when
 * EsArchiveRemovalAllowed says so: while es_archive runs its own DELETE
 * statement (a flag of this backend, set around that statement and reset
 * on error), and, for each row, only when the archive holds a row at the
 * same position already (one probe of its primary key).  So even user code
 * that runs during that statement (a trigger an administrator added) can
 * remove nothing that is not archived; UPDATE and TRUNCATE never pass.
 *
 * es_verify (verify.c) finds a sealed event missing from es_events in the
 * archive and checks its digest there: the chain still verifies, and says
 * how many of the events it checked were archived.
 *
 * IDENTIFICATION
 *	  src/archive.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "commands/tablespace.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "es_pg.h"
#include "common.h"

/* set while es_archive's own DELETE runs */
static bool archive_removing = false;
static Oid	archive_index = InvalidOid;
static Oid	archive_relid = InvalidOid;

#define ARCHIVE_COLUMNS "global_position, stream_id, version, event_id, " \
	"event_type, data, metadata, recorded_at, schema_version, archive_id"

static const EsStatement CopyToArchiveStatement = {
	"INSERT INTO @extschema@.es_archived_events (" ARCHIVE_COLUMNS ") "
	"SELECT e.global_position, e.stream_id, e.version, e.event_id, "
	"e.event_type, e.data, e.metadata, e.recorded_at, e.schema_version, $2 "
	"FROM @extschema@.es_events e JOIN @extschema@.es_tombstones t "
	"ON t.stream_id OPERATOR(pg_catalog.=) e.stream_id "
	"WHERE e.version OPERATOR(pg_catalog.<) t.version "
	"AND e.global_position OPERATOR(pg_catalog.<=) $1 "
	"ORDER BY e.global_position",
	2, {INT8OID, INT8OID}, false
};

/*
 * With live_streams: every sealed event below the horizon except the last
 * event of its stream (a deleted stream's tombstone, a live stream's head),
 * so that appends keep finding each stream's version.  es_events is locked
 * ACCESS EXCLUSIVE meanwhile, so no stream moves on under it.
 */
static const EsStatement CopyLiveToArchiveStatement = {
	"INSERT INTO @extschema@.es_archived_events (" ARCHIVE_COLUMNS ") "
	"SELECT e.global_position, e.stream_id, e.version, e.event_id, "
	"e.event_type, e.data, e.metadata, e.recorded_at, e.schema_version, $2 "
	"FROM @extschema@.es_events e "
	"WHERE e.global_position OPERATOR(pg_catalog.<=) $1 "
	"AND e.version OPERATOR(pg_catalog.<) (SELECT h.version "
	"  FROM @extschema@.es_events h "
	"  WHERE h.stream_id OPERATOR(pg_catalog.=) e.stream_id "
	"  ORDER BY h.stream_id DESC, h.version DESC LIMIT 1) "
	"ORDER BY e.global_position",
	2, {INT8OID, INT8OID}, false
};

static const EsStatement RemoveArchivedStatement = {
	"DELETE FROM @extschema@.es_events e USING @extschema@.es_archived_events a "
	"WHERE a.global_position OPERATOR(pg_catalog.=) e.global_position "
	"AND e.global_position OPERATOR(pg_catalog.<=) $1",
	1, {INT8OID}, false
};

static const EsStatement RecordArchiveStatement = {
	"INSERT INTO @extschema@.es_archives (archive_id, up_to_position, events, "
	"first_position, last_position, tablespace, live_streams) "
	"SELECT $3, $1, pg_catalog.count(*), pg_catalog.min(a.global_position), "
	"pg_catalog.max(a.global_position), $2, $4 "
	"FROM @extschema@.es_archived_events a "
	"WHERE a.archive_id OPERATOR(pg_catalog.=) $3",
	4, {INT8OID, NAMEOID, INT8OID, BOOLOID}, false
};

static const EsStatement SealedToStatement = {
	"SELECT COALESCE(pg_catalog.max(s.to_position), 0), "
	"(SELECT COALESCE(pg_catalog.max(a.archive_id), 0) "
	"   FROM @extschema@.es_archives a) "
	"FROM @extschema@.es_seals s",
	0, {InvalidOid}, false
};

/*
 * EsArchiveRelation returns es_archived_events of the install and its
 * primary key, or InvalidOid for an install without it.
 */
Oid
EsArchiveRelation(const EsCatalog *cat, Oid *index)
{
	Oid			relid;

	*index = InvalidOid;
	if (cat->version < ES_VERSION_0_2)
		return InvalidOid;
	relid = EsLookupRelation("es_archived_events", cat->namespace_oid, true);
	if (OidIsValid(relid))
		*index = EsLookupRelation("es_archived_events_pkey",
								  cat->namespace_oid, false);
	return relid;
}

/*
 * EsArchiveRemovalAllowed says whether the guard of es_events may let this
 * DELETE (statement or row) through: only es_archive's own, and for a row
 * only when the archive has its position.
 */
bool
EsArchiveRemovalAllowed(TriggerData *trigdata)
{
	EsIndexProbe probe;
	ScanKeyData key;
	TupleDesc	desc;
	bool		isnull;
	bool		found;
	Datum		position;

	if (!archive_removing || !TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		return false;
	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		return true;
	desc = RelationGetDescr(trigdata->tg_relation);
	position = heap_getattr(trigdata->tg_trigtuple,
							Anum_es_events_global_position, desc, &isnull);
	if (isnull)
		return false;
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, position);
	EsProbeOpen(&probe, archive_relid, archive_index);
	EsProbeStart(&probe, GetLatestSnapshot(), &key, 1);
	found = EsProbeNext(&probe, ForwardScanDirection);
	EsProbeClose(&probe);
	return found;
}

/*
 * RunRemoval runs es_archive's DELETE with the removal path open.
 */
static uint64
RunRemoval(const EsCatalog *cat, Oid owner, int64 horizon)
{
	Datum		arg = Int64GetDatum(horizon);
	uint64		removed;

	archive_removing = true;
	PG_TRY();
	{
		removed = EsRunStatement(&RemoveArchivedStatement, cat->namespace_oid,
								 owner, &arg, NULL, SPI_OK_DELETE);
	}
	PG_FINALLY();
	{
		archive_removing = false;
	}
	PG_END_TRY();
	return removed;
}

/*
 * es_archive moves the sealed events of deleted streams below
 * before_position (NULL: all sealed ones), tombstones excepted, into
 * es_archived_events, first moved to the tablespace "destination" when it
 * is given; with live_streams, the sealed events of every stream below
 * before_position but each stream's last one.  Returns how many events it
 * moved.
 *
 * es_archive(before_position bigint, destination name, live_streams boolean)
 */
PG_FUNCTION_INFO_V1(es_archive);
Datum
es_archive(PG_FUNCTION_ARGS)
{
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	int64		before = PG_ARGISNULL(0) ? PG_INT64_MAX : PG_GETARG_INT64(0);
	bool		live;
	Oid			owner;
	Oid			index;
	int64		sealed_to;
	int64		archive_id;
	int64		horizon;
	uint64		copied;
	uint64		removed;
	int			rc;
	bool		isnull;
	LOCKTAG		tag;
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	char	   *tablespace = NULL;

	if (before < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("before_position must not be negative"),
				 errhint("Pass NULL to archive every sealed event of deleted streams.")));
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("live_streams must not be NULL"),
				 errhint("Pass false to archive deleted streams only, true to archive live streams too.")));
	live = PG_GETARG_BOOL(2);
	EsCheckReadPrivilege(cat);
	archive_relid = EsArchiveRelation(cat, &index);
	archive_index = index;
	if (!OidIsValid(archive_relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this install of es_pg cannot archive events"),
				 errhint("Run ALTER EXTENSION es_pg UPDATE.")));
	owner = EsRelationOwner(cat->events_relid);

	/* one es_archive or es_seal at a time */
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, 0, 0, ES_LOCKTAG_SEAL);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);

	/*
	 * Live streams: no append, read or follower may run meanwhile, and every
	 * later one sees the new archive horizon (archhorizon.c).
	 */
	if (live)
		LockRelationOid(cat->events_relid, AccessExclusiveLock);

	if (!PG_ARGISNULL(1))
	{
		Name		dest = PG_GETARG_NAME(1);
		Oid			spcoid = get_tablespace_oid(NameStr(*dest), false);
		Relation	arch = table_open(archive_relid, AccessShareLock);
		Oid			current = arch->rd_rel->reltablespace;

		table_close(arch, AccessShareLock);
		tablespace = pstrdup(NameStr(*dest));
		if (spcoid != (OidIsValid(current) ? current : MyDatabaseTableSpace))
		{
			char	   *sql = psprintf("ALTER TABLE %s.es_archived_events SET TABLESPACE %s",
									   quote_identifier(get_namespace_name(cat->namespace_oid)),
									   quote_identifier(tablespace));

			EsSpiConnect();
			(void) EsExecuteAs(owner, sql, 0, NULL, NULL, NULL,
							   InvalidSnapshot, false, 0);
			SPI_finish();
		}
	}

	EsSpiConnect();
	rc = EsExecute(&SealedToStatement, cat->namespace_oid, owner, NULL, NULL,
				   GetLatestSnapshot());
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
	sealed_to = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											SPI_tuptable->tupdesc, 1, &isnull));
	archive_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 2, &isnull)) + 1;
	SPI_finish();
	horizon = Min(sealed_to, before == 0 ? 0 : before - 1);
	if (horizon <= 0)
		PG_RETURN_INT64(0);

	values[0] = Int64GetDatum(horizon);
	values[1] = Int64GetDatum(archive_id);
	copied = EsRunStatement(live ? &CopyLiveToArchiveStatement :
							&CopyToArchiveStatement, cat->namespace_oid,
							owner, values, NULL, SPI_OK_INSERT);
	if (copied == 0)
		PG_RETURN_INT64(0);
	removed = RunRemoval(cat, owner, horizon);
	if (removed != copied)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("es_archive copied " UINT64_FORMAT " events but removed " UINT64_FORMAT,
						copied, removed),
				 errhint("Nothing was archived; run es_verify().")));

	values[0] = Int64GetDatum(horizon);
	if (tablespace != NULL)
		values[1] = DirectFunctionCall1(namein, CStringGetDatum(tablespace));
	else
	{
		values[1] = (Datum) 0;
		nulls[1] = 'n';
	}
	values[2] = Int64GetDatum(archive_id);
	values[3] = BoolGetDatum(live);
	(void) EsRunStatement(&RecordArchiveStatement, cat->namespace_oid, owner,
						  values, nulls, SPI_OK_INSERT);
	PG_RETURN_INT64((int64) removed);
}
