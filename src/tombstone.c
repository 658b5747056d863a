/*-------------------------------------------------------------------------
 *
 * tombstone.c
 *	  Deleted streams: the check that appends and stream reads make.
 *	  es_delete_stream (delete.c) writes a tombstone event and a row of
 *	  es_tombstones; appends and stream reads then refuse the stream.
 *
 * A deleted stream keeps its history: its events, the tombstone event
 * (type "$StreamDeleted") among them, stay in es_events, in the global
 * feed and in the seal chain.  What changes is that es_append,
 * es_append_batch, es_read_stream, es_read_stream_backward,
 * es_stream_version and es_aggregate raise ES_ERRCODE_STREAM_DELETED for
 * it.  The check is one probe of es_tombstones' primary key: appends make
 * it holding the stream lock, with a snapshot taken after it, so an append
 * that waited for es_delete_stream sees the tombstone; readers make it with
 * their own snapshot, so a reader whose snapshot is older than the deletion
 * still reads the stream as it was then.  Appends and es_stream_version
 * make it only when the stream's head event, which they read anyway, is a
 * tombstone event (EsStreamHead, read.c): nothing follows a tombstone in
 * its stream, so any other head means the stream is not deleted.
 *
 * Direct inserts (INSERT or COPY into es_events, which is how a restore
 * brings events back) are checked at commit only for rows that would follow
 * a tombstone es_tombstones records (direct.c): a restore loads
 * es_tombstones and es_events in whatever order pg_restore chooses, and a
 * dump never has such rows.
 *
 * An install whose SQL has no es_tombstones (0.1.0 before ALTER EXTENSION
 * UPDATE) has no deleted streams.
 *
 * IDENTIFICATION
 *	  src/tombstone.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "es_pg.h"
#include "common.h"

/*
 * EsTombstoneIndex returns the OID of es_tombstones' primary key, or
 * InvalidOid for an install without it.
 */
Oid
EsTombstoneIndex(const EsCatalog *cat, Oid *relid)
{
	if (cat->version < ES_VERSION_0_2)
		return InvalidOid;
	*relid = EsLookupRelation("es_tombstones", cat->namespace_oid, true);
	if (!OidIsValid(*relid))
		return InvalidOid;
	return EsLookupRelation("es_tombstones_pkey", cat->namespace_oid, false);
}

/*
 * EsIsTombstoneType says whether an event type is the tombstone's.
 */
bool
EsIsTombstoneType(text *event_type)
{
	return VARSIZE_ANY_EXHDR(event_type) == strlen(ES_TOMBSTONE_EVENT_TYPE) &&
		memcmp(VARDATA_ANY(event_type), ES_TOMBSTONE_EVENT_TYPE,
			   strlen(ES_TOMBSTONE_EVENT_TYPE)) == 0;
}

/*
 * EsStreamDeletedAt returns the version of the stream's tombstone visible
 * to the snapshot, or 0 when the stream is not deleted.
 */
int64
EsStreamDeletedAt(const EsCatalog *cat, text *stream_id, Snapshot snapshot)
{
	EsIndexProbe probe;
	ScanKeyData key;
	Oid			relid;
	Oid			index = EsTombstoneIndex(cat, &relid);
	int64		version = 0;

	if (!OidIsValid(index))
		return 0;
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(stream_id));
	EsProbeOpen(&probe, relid, index);
	EsProbeStart(&probe, snapshot, &key, 1);
	if (EsProbeNext(&probe, ForwardScanDirection))
	{
		bool		isnull;

		version = DatumGetInt64(slot_getattr(probe.slot, 2, &isnull));
	}
	EsProbeClose(&probe);
	return version;
}

/*
 * EsCheckStreamNotDeleted raises ES_ERRCODE_STREAM_DELETED when the stream
 * has a tombstone visible to the snapshot.
 */
void
EsCheckStreamNotDeleted(const EsCatalog *cat, text *stream_id,
						Snapshot snapshot)
{
	int64		version = EsStreamDeletedAt(cat, stream_id, snapshot);

	if (version > 0)
		ereport(ERROR,
				(errcode(ES_ERRCODE_STREAM_DELETED),
				 errmsg("stream \"%s\" is deleted", text_to_cstring(stream_id)),
				 errdetail("es_delete_stream wrote its tombstone at version %lld; its history stays in es_events and the global feed.",
						   (long long) version),
				 errhint("Use another stream id; read the deleted stream's history with es_read_all or SELECT on es_events.")));
}
