/*-------------------------------------------------------------------------
 *
 * snapstore.c
 *	  The snapshot store: es_snapshots and es_snapshot_policies, read with
 *	  index probes and written through SPI as the tables' owner.
 *
 * A snapshot policy makes es_aggregate store the state it computed when it
 * replayed more than every_n_events events (EsStorePolicySnapshot).
 * es_aggregate is a read for its caller, so the policy's write must never
 * make it fail or wait:
 *
 *	- it is skipped on a standby, in a read-only or serializable
 *	  transaction, and in parallel mode;
 *	- a transaction-scoped lock on (stream, reducer), taken without waiting,
 *	  lets one transaction at a time store a snapshot of the pair; the
 *	  others skip;
 *	- a dirty-snapshot probe skips the write when the row exists or is being
 *	  written by another transaction (so the insert never waits for one);
 *	- the insert runs in a subtransaction whose errors (a serialization
 *	  failure under REPEATABLE READ, a lock timeout, ...) are swallowed;
 *	- it runs as the owner of es_snapshots, so readers need no privilege on
 *	  the table.
 *
 * Events are immutable and a stream's versions have no gaps, so the state at
 * version V is the same in every transaction that sees V: concurrent writers
 * of one snapshot write the same state, and skipping a write loses nothing
 * but time.
 *
 * IDENTIFICATION
 *	  src/snapstore.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "common.h"
#include "snapshot.h"

/* what a dirty-snapshot probe finds where a policy snapshot would go */
typedef enum SnapshotRowState
{
	SNAPSHOT_ROW_ABSENT,		/* no row */
	SNAPSHOT_ROW_SAME,			/* a committed row with the same digest */
	SNAPSHOT_ROW_BUSY,			/* a row another transaction is writing */
	SNAPSHOT_ROW_OTHER			/* a committed row with another digest */
} SnapshotRowState;

/*
 * The upsert of es_snapshots.  With $6 (force), an existing snapshot of the
 * same stream, reducer and version is replaced; without, only when its
 * digest differs (the reducer's code changed).  Kept prepared: a snapshot
 * policy runs it from es_aggregate.
 */
static const EsStatement UpsertSnapshotStatement = {
	"INSERT INTO @extschema@.es_snapshots AS s "
	"(stream_id, reducer, version, state, created_at, reducer_digest) "
	"VALUES ($1, $2, $3, $4, pg_catalog.now(), $5) "
	"ON CONFLICT ON CONSTRAINT es_snapshots_pkey DO UPDATE "
	"SET state = excluded.state, created_at = excluded.created_at, "
	"reducer_digest = excluded.reducer_digest "
	"WHERE $6 OR s.reducer_digest IS NULL "
	"OR s.reducer_digest OPERATOR(pg_catalog.<>) excluded.reducer_digest",
	6, {TEXTOID, TEXTOID, INT8OID, JSONBOID, TEXTOID, BOOLOID}, true
};

static const EsStatement SetPolicyStatement = {
	"INSERT INTO @extschema@.es_snapshot_policies AS p (reducer, every_n_events, updated_at, "
	"search_path, extension) "
	"VALUES ($1, $2, pg_catalog.now(), $3, $4) "
	"ON CONFLICT ON CONSTRAINT es_snapshot_policies_pkey DO UPDATE "
	"SET every_n_events = excluded.every_n_events, "
	"updated_at = excluded.updated_at, "
	"search_path = excluded.search_path",
	4, {TEXTOID, INT4OID, TEXTOID, NAMEOID}, false
};

/* the same for the es_snapshot_policies of 0.1.0 */
static const EsStatement SetPolicyStatement_0_1 = {
	"INSERT INTO @extschema@.es_snapshot_policies AS p (reducer, every_n_events, updated_at) "
	"VALUES ($1, $2, pg_catalog.now()) "
	"ON CONFLICT ON CONSTRAINT es_snapshot_policies_pkey DO UPDATE "
	"SET every_n_events = excluded.every_n_events, "
	"updated_at = excluded.updated_at",
	2, {TEXTOID, INT4OID}, false
};

static const EsStatement DropPolicyStatement = {
	"DELETE FROM @extschema@.es_snapshot_policies WHERE reducer OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}, false
};

static const EsStatement DropSnapshotsStatement = {
	"DELETE FROM @extschema@.es_snapshots WHERE reducer OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}, false
};

static const EsStatement DropStreamSnapshotsStatement = {
	"DELETE FROM @extschema@.es_snapshots WHERE reducer OPERATOR(pg_catalog.=) $1 "
	"AND stream_id OPERATOR(pg_catalog.=) $2",
	2, {TEXTOID, TEXTOID}, false
};

/*
 * EsStreamVersionOf returns the stream's version in the given snapshot.
 */
int64
EsStreamVersionOf(const EsCatalog *cat, text *stream_id, Snapshot snapshot)
{
	Relation	rel = table_open(cat->events_relid, AccessShareLock);
	int64		version = EsStreamVersion(cat, rel, stream_id, snapshot);

	table_close(rel, AccessShareLock);
	return version;
}

/*
 * ReadSnapshotRow copies the version, state and creation time out of a
 * slot of es_snapshots.
 */
static void
ReadSnapshotRow(TupleTableSlot *slot, EsFoundSnapshot *found)
{
	bool		isnull;

	found->version = DatumGetInt64(slot_getattr(slot, Anum_es_snapshots_version,
												&isnull));
	found->state = DatumGetJsonbPCopy(slot_getattr(slot, Anum_es_snapshots_state,
												   &isnull));
	found->created_at = DatumGetTimestampTz(slot_getattr(slot,
														 Anum_es_snapshots_created_at,
														 &isnull));
	(void) slot_getattr(slot, Anum_es_snapshots_reducer_digest, &isnull);
	found->folded = !isnull;
}

/*
 * EsFindReducerSnapshot finds the newest snapshot of a stream made by one
 * reducer with a version at or before bound: one backward probe of
 * es_snapshots_pkey.  With a digest, snapshots made by other code or from
 * another initial state are skipped (and counted in *stale); snapshots
 * without a digest are taken as they are.
 */
bool
EsFindReducerSnapshot(const EsSnapshotCatalog *sc, Snapshot snapshot,
					  text *stream_id, const char *reducer, int64 bound,
					  const char *digest, EsFoundSnapshot *found,
					  int64 *stale)
{
	EsIndexProbe probe;
	ScanKeyData keys[3];
	bool		result = false;

	EsProbeOpen(&probe, sc->snapshots_relid, sc->snapshots_pkey);
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(stream_id));
	ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_TEXTEQ,
				CStringGetTextDatum(reducer));
	ScanKeyInit(&keys[2], 3, BTLessEqualStrategyNumber, F_INT8LE,
				Int64GetDatum(bound));
	EsProbeStart(&probe, snapshot, keys, 3);
	while (EsProbeNext(&probe, BackwardScanDirection))
	{
		bool		isnull;
		Datum		row_digest;

		if (digest != NULL)
		{
			row_digest = slot_getattr(probe.slot,
									  Anum_es_snapshots_reducer_digest,
									  &isnull);
			if (!isnull && !EsTextEqualsCString(DatumGetTextPP(row_digest),
												digest))
			{
				(*stale)++;
				continue;
			}
		}
		ReadSnapshotRow(probe.slot, found);
		result = true;
		break;
	}
	EsProbeClose(&probe);
	return result;
}

/*
 * FindNewestSnapshot finds the newest snapshot of a stream whatever its
 * reducer: the highest version, and of those the most recently created.
 */
static bool
FindNewestSnapshot(const EsSnapshotCatalog *sc, Snapshot snapshot,
				   text *stream_id, EsFoundSnapshot *found)
{
	EsIndexProbe probe;
	ScanKeyData key;
	bool		result = false;

	EsProbeOpen(&probe, sc->snapshots_relid, sc->snapshots_stream_index);
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(stream_id));
	EsProbeStart(&probe, snapshot, &key, 1);
	while (EsProbeNext(&probe, BackwardScanDirection))
	{
		bool		isnull;
		int64		version;
		TimestampTz created_at;

		version = DatumGetInt64(slot_getattr(probe.slot,
											 Anum_es_snapshots_version,
											 &isnull));
		if (result && version != found->version)
			break;
		created_at = DatumGetTimestampTz(slot_getattr(probe.slot,
													  Anum_es_snapshots_created_at,
													  &isnull));
		if (!result || created_at > found->created_at)
			ReadSnapshotRow(probe.slot, found);
		result = true;
	}
	EsProbeClose(&probe);
	return result;
}

/*
 * EsLookupPolicy fills in the reducer's snapshot policy (every 0 when it
 * has none).
 */
void
EsLookupPolicy(const EsSnapshotCatalog *sc, Snapshot snapshot,
			   const char *reducer, EsSnapshotPolicy *policy)
{
	EsIndexProbe probe;
	ScanKeyData key;

	EsProbeOpen(&probe, sc->policies_relid, sc->policies_pkey);
	policy->every = 0;
	policy->search_path = NULL;
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ,
				CStringGetTextDatum(reducer));
	EsProbeStart(&probe, snapshot, &key, 1);
	if (EsProbeNext(&probe, ForwardScanDirection))
	{
		bool		isnull;

		policy->every = DatumGetInt32(slot_getattr(probe.slot,
												   Anum_es_snapshot_policies_every_n,
												   &isnull));
		/* 0.1.0's policies fold as the caller, with the digest of then */
		if (sc->version >= ES_VERSION_0_2)
			policy->search_path =
				TextDatumGetCString(slot_getattr(probe.slot,
												 Anum_es_snapshot_policies_search_path,
												 &isnull));
	}
	EsProbeClose(&probe);
}

/*
 * UpsertSnapshot stores a snapshot with SPI, as the owner of es_snapshots
 * (see UpsertSnapshotStatement for force).
 */
static void
UpsertSnapshot(const EsSnapshotCatalog *sc, text *stream_id,
			   const char *reducer, int64 version, Datum state,
			   const char *digest, bool force)
{
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};

	values[0] = PointerGetDatum(stream_id);
	values[1] = CStringGetTextDatum(reducer);
	values[2] = Int64GetDatum(version);
	values[3] = state;
	if (digest != NULL)
		values[4] = CStringGetTextDatum(digest);
	else
	{
		values[4] = (Datum) 0;
		nulls[4] = 'n';
	}
	values[5] = BoolGetDatum(force);
	(void) EsRunStatement(&UpsertSnapshotStatement, sc->namespace_oid,
						  EsRelationOwner(sc->snapshots_relid), values, nulls,
						  SPI_OK_INSERT);
}

/*
 * LockSnapshotWriter tries to take the transaction-scoped lock that lets
 * one transaction at a time store policy snapshots of a stream and
 * reducer, without waiting.  Hash collisions only make a writer skip.
 */
static bool
LockSnapshotWriter(text *stream_id, const char *reducer)
{
	LOCKTAG		tag;
	uint64		hash;

	hash = hash_bytes_extended((const unsigned char *) VARDATA_ANY(stream_id),
							   VARSIZE_ANY_EXHDR(stream_id),
							   hash_bytes((const unsigned char *) reducer,
										  strlen(reducer)));
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (hash >> 32),
						 (uint32) hash, ES_LOCKTAG_SNAPSHOT);
	return LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
}

/*
 * ProbeSnapshotRow looks for the row of (stream, reducer, version) with a
 * dirty snapshot: committed rows invisible to our snapshot and rows of
 * transactions in progress count.
 */
static SnapshotRowState
ProbeSnapshotRow(const EsSnapshotCatalog *sc, text *stream_id,
				 const char *reducer, int64 version, const char *digest)
{
	EsIndexProbe probe;
	SnapshotData dirty;
	ScanKeyData keys[3];
	SnapshotRowState result = SNAPSHOT_ROW_ABSENT;

	EsProbeOpen(&probe, sc->snapshots_relid, sc->snapshots_pkey);
	InitDirtySnapshot(dirty);
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(stream_id));
	ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_TEXTEQ,
				CStringGetTextDatum(reducer));
	ScanKeyInit(&keys[2], 3, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(version));
	EsProbeStart(&probe, &dirty, keys, 3);
	if (EsProbeNext(&probe, ForwardScanDirection))
	{
		bool		isnull;
		Datum		row_digest;

		if (TransactionIdIsValid(dirty.xmin) || TransactionIdIsValid(dirty.xmax))
			result = SNAPSHOT_ROW_BUSY;
		else
		{
			row_digest = slot_getattr(probe.slot,
									  Anum_es_snapshots_reducer_digest,
									  &isnull);
			result = (!isnull &&
					  EsTextEqualsCString(DatumGetTextPP(row_digest), digest)) ?
				SNAPSHOT_ROW_SAME : SNAPSHOT_ROW_OTHER;
		}
	}
	EsProbeClose(&probe);
	return result;
}

/*
 * IsConcurrencyError says whether an error is one that a concurrent writer
 * of the same snapshot can cause.
 */
static bool
IsConcurrencyError(int sqlerrcode)
{
	return sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE ||
		sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED ||
		sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ||
		sqlerrcode == ERRCODE_UNIQUE_VIOLATION;
}

/* what StorePolicySnapshot hands to its subtransaction */
typedef struct PolicyWrite
{
	const EsSnapshotCatalog *sc;
	text	   *stream_id;
	const char *reducer;
	int64		version;
	Datum		state;
	const char *digest;
} PolicyWrite;

/*
 * WritePolicySnapshot is the body of StorePolicySnapshot's subtransaction.
 */
static void
WritePolicySnapshot(void *arg)
{
	PolicyWrite *w = (PolicyWrite *) arg;

	UpsertSnapshot(w->sc, w->stream_id, w->reducer, w->version, w->state,
				   w->digest, false);
}

/*
 * EsStorePolicySnapshot stores the state es_aggregate computed, if it can
 * do so without failing or waiting (see the header comment).  It returns a
 * phrase for the es_pg.log_replay report.
 */
char *
EsStorePolicySnapshot(const EsSnapshotCatalog *sc, text *stream_id,
					  const char *reducer, int64 version, Datum state,
					  const char *digest)
{
	PolicyWrite w;
	ErrorData  *edata;
	char	   *outcome;

	if (RecoveryInProgress())
		return "snapshot not stored: the server is a standby";
	if (XactReadOnly)
		return "snapshot not stored: read-only transaction";
	if (IsInParallelMode())
		return "snapshot not stored: parallel mode";
	if (IsolationIsSerializable())
		return "snapshot not stored: serializable transaction";
	if (!LockSnapshotWriter(stream_id, reducer))
		return "snapshot not stored: another transaction is storing one";
	switch (ProbeSnapshotRow(sc, stream_id, reducer, version, digest))
	{
		case SNAPSHOT_ROW_SAME:
			return psprintf("snapshot at version %lld exists", (long long) version);
		case SNAPSHOT_ROW_BUSY:
			return psprintf("snapshot not stored: another transaction is writing version %lld",
							(long long) version);
		case SNAPSHOT_ROW_ABSENT:
		case SNAPSHOT_ROW_OTHER:
			break;
	}

	w.sc = sc;
	w.stream_id = stream_id;
	w.reducer = reducer;
	w.version = version;
	w.state = state;
	w.digest = digest;
	edata = EsTrySubtransaction(WritePolicySnapshot, NULL, &w,
								CurrentMemoryContext);
	if (edata == NULL)
		return psprintf("stored a snapshot at version %lld",
						(long long) version);

	if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
		ReThrowError(edata);
	if (!IsConcurrencyError(edata->sqlerrcode))
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("could not store a snapshot of stream \"%s\": %s",
						text_to_cstring(stream_id), edata->message),
				 errdetail("es_aggregate returns its result anyway; the snapshot policy of %s asked for the snapshot.",
						   reducer)));
	outcome = psprintf("snapshot not stored: %s", edata->message);
	FreeErrorData(edata);
	return outcome;
}

/*
 * es_save_snapshot stores the state of a stream at a version, replacing a
 * snapshot of the same reducer at that version.
 *
 * es_save_snapshot(stream_id text, version bigint, state jsonb,
 *					reducer regprocedure)
 */
PG_FUNCTION_INFO_V1(es_save_snapshot);
Datum
es_save_snapshot(PG_FUNCTION_ARGS)
{
	text	   *stream_id;
	int64		version;
	const EsCatalog *cat;
	const EsSnapshotCatalog *sc;
	EsReducer	info;
	const char *reducer;
	int64		current;

	EsRequireArgument(fcinfo, 0, "stream id");
	EsRequireArgument(fcinfo, 1, "snapshot version");
	EsRequireArgument(fcinfo, 2, "snapshot state");
	stream_id = PG_GETARG_TEXT_PP(0);
	version = PG_GETARG_INT64(1);

	cat = EsGetCatalogForFunction(fcinfo);
	EsCheckReadPrivilege(cat);
	sc = EsGetSnapshotCatalog(cat);
	reducer = EsReducerArgument(fcinfo, 3, sc, &info);

	if (version < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid snapshot version %lld", (long long) version),
				 errdetail("A snapshot holds the state after an event; stream versions start at 1.")));
	current = EsStreamVersionOf(cat, stream_id, GetActiveSnapshot());
	if (current == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("stream \"%s\" does not exist", text_to_cstring(stream_id)),
				 errdetail("A snapshot can only be saved for a version the stream has.")));
	if (version > current)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("snapshot version %lld is beyond the end of stream \"%s\"",
						(long long) version, text_to_cstring(stream_id)),
				 errdetail("Stream \"%s\" is at version %lld.",
						   text_to_cstring(stream_id), (long long) current)));

	UpsertSnapshot(sc, stream_id, reducer, version,
				   PointerGetDatum(PG_GETARG_JSONB_P(2)), NULL, true);
	PG_RETURN_VOID();
}

/*
 * ReturnSnapshot emits a found snapshot as the one row of es_load_snapshot.
 */
static void
ReturnSnapshot(FunctionCallInfo fcinfo, const EsCatalog *cat, bool have,
			   EsFoundSnapshot *found)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	if (!have)
		return;
	/* a fold may have seen plain personal data this role may not see */
	if (found->folded && EsPrivacyHidesSnapshots(cat->namespace_oid))
		return;
	values[0] = Int64GetDatum(found->version);
	values[1] = JsonbPGetDatum(found->state);
	values[2] = TimestampTzGetDatum(found->created_at);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * es_load_snapshot returns the newest snapshot of a stream, whatever
 * reducer made it, or no row.
 *
 * es_load_snapshot(stream_id text)
 */
PG_FUNCTION_INFO_V1(es_load_snapshot);
Datum
es_load_snapshot(PG_FUNCTION_ARGS)
{
	const EsCatalog *cat;
	const EsSnapshotCatalog *sc;
	EsFoundSnapshot found;
	bool		have;

	EsRequireArgument(fcinfo, 0, "stream id");
	cat = EsGetCatalogForFunction(fcinfo);
	EsCheckReadPrivilege(cat);
	sc = EsGetSnapshotCatalog(cat);
	InitMaterializedSRF(fcinfo, 0);
	have = FindNewestSnapshot(sc, GetActiveSnapshot(), PG_GETARG_TEXT_PP(0),
							  &found);
	ReturnSnapshot(fcinfo, cat, have, &found);
	return (Datum) 0;
}

/*
 * es_load_snapshot_reducer returns the newest snapshot of a stream made by
 * one reducer (NULL: by the application), or no row.
 *
 * es_load_snapshot(stream_id text, reducer regprocedure)
 */
PG_FUNCTION_INFO_V1(es_load_snapshot_reducer);
Datum
es_load_snapshot_reducer(PG_FUNCTION_ARGS)
{
	const EsCatalog *cat;
	const EsSnapshotCatalog *sc;
	EsReducer	info;
	const char *reducer;
	EsFoundSnapshot found;
	int64		stale = 0;
	bool		have;

	EsRequireArgument(fcinfo, 0, "stream id");
	cat = EsGetCatalogForFunction(fcinfo);
	EsCheckReadPrivilege(cat);
	sc = EsGetSnapshotCatalog(cat);
	reducer = EsReducerArgument(fcinfo, 1, sc, &info);
	InitMaterializedSRF(fcinfo, 0);
	have = EsFindReducerSnapshot(sc, GetActiveSnapshot(), PG_GETARG_TEXT_PP(0),
								 reducer, PG_INT64_MAX, NULL, &found, &stale);
	ReturnSnapshot(fcinfo, cat, have, &found);
	return (Datum) 0;
}

/*
 * es_set_snapshot_policy makes es_aggregate store a snapshot of a
 * reducer's fold whenever it replays more than every_n_events events.
 *
 * es_set_snapshot_policy(reducer regprocedure, every_n_events integer)
 */
PG_FUNCTION_INFO_V1(es_set_snapshot_policy);
Datum
es_set_snapshot_policy(PG_FUNCTION_ARGS)
{
	const EsSnapshotCatalog *sc;
	EsReducer	info;
	int32		every;
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	EsRequireArgument(fcinfo, 0, "reducer");
	EsRequireArgument(fcinfo, 1, "every_n_events");
	every = PG_GETARG_INT32(1);
	sc = EsGetSnapshotCatalog(EsGetCatalogForFunction(fcinfo));
	EsCheckReducer(sc, PG_GETARG_OID(0), &info);
	if (every < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("every_n_events must be at least 1"),
				 errhint("Use es_drop_snapshot_policy to stop taking snapshots.")));

	values[0] = CStringGetTextDatum(info.name);
	values[1] = Int32GetDatum(every);
	values[2] = CStringGetTextDatum(EsPinnedSearchPath());
	values[3] = EsCreatingExtensionName();
	nulls[3] = values[3] == (Datum) 0 ? 'n' : ' ';
	(void) EsRunStatement(sc->version >= ES_VERSION_0_2 ?
						  &SetPolicyStatement : &SetPolicyStatement_0_1,
						  sc->namespace_oid,
						  EsRelationOwner(sc->policies_relid), values, nulls,
						  SPI_OK_INSERT);
	PG_RETURN_VOID();
}

/*
 * es_drop_snapshot_policy removes a reducer's snapshot policy; it returns
 * false when there was none.  The snapshots stay.
 *
 * es_drop_snapshot_policy(reducer regprocedure)
 */
PG_FUNCTION_INFO_V1(es_drop_snapshot_policy);
Datum
es_drop_snapshot_policy(PG_FUNCTION_ARGS)
{
	const EsSnapshotCatalog *sc;
	EsReducer	info;
	Datum		values[1];
	uint64		deleted;

	EsRequireArgument(fcinfo, 0, "reducer");
	sc = EsGetSnapshotCatalog(EsGetCatalogForFunction(fcinfo));
	EsCheckReducer(sc, PG_GETARG_OID(0), &info);
	values[0] = CStringGetTextDatum(info.name);
	deleted = EsRunStatement(&DropPolicyStatement, sc->namespace_oid,
							 EsRelationOwner(sc->policies_relid), values,
							 NULL, SPI_OK_DELETE);
	PG_RETURN_BOOL(deleted > 0);
}

/*
 * es_drop_snapshots deletes the snapshots of a reducer (NULL: the
 * application's own), of one stream or of all, and returns how many it
 * deleted.  The next es_aggregate of those streams replays from the start.
 *
 * es_drop_snapshots(reducer regprocedure, stream_id text)
 */
PG_FUNCTION_INFO_V1(es_drop_snapshots);
Datum
es_drop_snapshots(PG_FUNCTION_ARGS)
{
	const EsSnapshotCatalog *sc;
	EsReducer	info;
	const char *reducer;
	Datum		values[2];
	uint64		deleted;

	sc = EsGetSnapshotCatalog(EsGetCatalogForFunction(fcinfo));
	reducer = EsReducerArgument(fcinfo, 0, sc, &info);
	values[0] = CStringGetTextDatum(reducer);
	if (PG_ARGISNULL(1))
		deleted = EsRunStatement(&DropSnapshotsStatement, sc->namespace_oid,
								 EsRelationOwner(sc->snapshots_relid),
								 values, NULL, SPI_OK_DELETE);
	else
	{
		values[1] = PointerGetDatum(PG_GETARG_TEXT_PP(1));
		deleted = EsRunStatement(&DropStreamSnapshotsStatement,
								 sc->namespace_oid,
								 EsRelationOwner(sc->snapshots_relid),
								 values, NULL, SPI_OK_DELETE);
	}
	PG_RETURN_INT64((int64) deleted);
}
