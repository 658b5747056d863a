/*-------------------------------------------------------------------------
 *
 * snapshot.c
 *	  Snapshots, aggregate state and temporal queries.
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
 * A snapshot is only as good as the code that made it.  Snapshots that
 * es_aggregate stores carry a digest of the reducer's code (language,
 * source, binary, SET options) and of the initial state; a snapshot whose
 * digest does not match the current reducer and initial state is skipped.
 * Snapshots saved with es_save_snapshot carry no digest: the application
 * vouches for them.  A change that the digest cannot see (a function the
 * reducer calls, a table it reads, a new build of a C reducer) needs
 * es_drop_snapshots; docs/snapshots.md explains the trap.
 *
 * A snapshot policy makes es_aggregate store the state it computed when it
 * replayed more than every_n_events events.  Those snapshots are shared by
 * every caller, so no caller's environment may shape them: under a policy
 * the whole fold runs as the reducer's owner, as a security-restricted
 * operation, with the search_path pinned when the policy was set
 * (identity.c), and the digest covers that owner and search_path too.  A
 * caller with its own operator for numeric on its search_path folds with
 * pg_catalog's there.  Without a policy the fold runs as the caller, and
 * nothing it computes is shared.
 *
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
 *	  src/snapshot.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/hashfn.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "es_pg.h"

/* columns of es_snapshots; checked against the catalog on first use */
#define Anum_es_snapshots_stream_id		1
#define Anum_es_snapshots_reducer		2
#define Anum_es_snapshots_version		3
#define Anum_es_snapshots_state			4
#define Anum_es_snapshots_created_at	5
#define Anum_es_snapshots_reducer_digest 6
#define Natts_es_snapshots				6

/* columns of es_snapshot_policies */
#define Anum_es_snapshot_policies_reducer	1
#define Anum_es_snapshot_policies_every_n	2
#define Anum_es_snapshot_policies_search_path	4

/* the key of es_snapshots for snapshots saved without a reducer */
#define ES_NO_REDUCER	""

/* hex SHA-256 plus terminator */
#define ES_DIGEST_LEN	PG_SHA256_DIGEST_STRING_LENGTH

/* es_pg.log_replay: report what each es_aggregate call did */
bool		es_log_replay = false;

/*
 * EsSnapshotCatalog holds the OIDs of the snapshot tables of one install,
 * looked up once per backend like EsCatalog and reset by a relcache
 * callback when one of the tables changes.
 */
typedef struct EsSnapshotCatalog
{
	Oid			namespace_oid;
	Oid			snapshots_relid;
	Oid			snapshots_pkey;		/* (stream_id, reducer, version) */
	Oid			snapshots_stream_index; /* (stream_id, version) */
	Oid			policies_relid;
	Oid			policies_pkey;		/* (reducer) */
	Oid			events_type;	/* row type of es_events */
	int			version;		/* of the install's SQL (EsCatalog) */
} EsSnapshotCatalog;

static EsSnapshotCatalog es_snap_catalog;
static bool es_snap_catalog_valid = false;

/* the prepared upsert of es_snapshots, and the statement it was made from */
static SPIPlanPtr es_upsert_plan = NULL;
static char *es_upsert_sql = NULL;

/* the columns es_snapshots must have, in this order */
static const EsColumn es_snapshots_columns[Natts_es_snapshots] =
{
	{"stream_id", TEXTOID},
	{"reducer", TEXTOID},
	{"version", INT8OID},
	{"state", JSONBOID},
	{"created_at", TIMESTAMPTZOID},
	{"reducer_digest", TEXTOID},
};

/*
 * ReducerInfo describes a function that passed the reducer checks.
 */
typedef struct ReducerInfo
{
	Oid			oid;
	Oid			owner;
	char	   *name;			/* schema-qualified, the key in the tables */
	uint8		code_digest[PG_SHA256_DIGEST_LENGTH];
} ReducerInfo;

/* a reducer's snapshot policy */
typedef struct Policy
{
	int32		every;			/* 0: no policy */
	char	   *search_path;
} Policy;

/* digest of the last reducer seen, valid while its pg_proc row is the same */
static struct
{
	Oid			oid;
	TransactionId xmin;
	ItemPointerData tid;
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
}			es_last_reducer;

/* a snapshot read from es_snapshots */
typedef struct FoundSnapshot
{
	int64		version;
	Jsonb	   *state;
	TimestampTz created_at;
} FoundSnapshot;

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
 * SnapshotRelcacheCallback forgets the cached OIDs when a snapshot table
 * changes or the whole relcache is reset.
 */
static void
SnapshotRelcacheCallback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == es_snap_catalog.snapshots_relid ||
		relid == es_snap_catalog.policies_relid)
		es_snap_catalog_valid = false;
}

/*
 * EsInitSnapshots defines es_pg.log_replay and registers the cache
 * callback; called from _PG_init.
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
	CacheRegisterRelcacheCallback(SnapshotRelcacheCallback, (Datum) 0);
}

/*
 * GetSnapshotCatalog returns the OIDs of the snapshot tables of the install
 * that cat describes.
 */
static const EsSnapshotCatalog *
GetSnapshotCatalog(const EsCatalog *cat)
{
	EsSnapshotCatalog *sc = &es_snap_catalog;

	if (es_snap_catalog_valid && sc->namespace_oid == cat->namespace_oid)
		return sc;

	es_snap_catalog_valid = false;
	sc->namespace_oid = cat->namespace_oid;
	sc->snapshots_relid =
		EsLookupRelation("es_snapshots", cat->namespace_oid, false);
	sc->snapshots_pkey =
		EsLookupRelation("es_snapshots_pkey", cat->namespace_oid, false);
	sc->snapshots_stream_index =
		EsLookupRelation("es_snapshots_stream_id_version_idx",
						 cat->namespace_oid, false);
	sc->policies_relid =
		EsLookupRelation("es_snapshot_policies", cat->namespace_oid, false);
	sc->policies_pkey =
		EsLookupRelation("es_snapshot_policies_pkey", cat->namespace_oid,
						 false);
	sc->events_type = get_rel_type_id(cat->events_relid);
	sc->version = cat->version;
	EsCheckTableShape(sc->snapshots_relid, es_snapshots_columns,
					  Natts_es_snapshots);
	es_snap_catalog_valid = true;
	return sc;
}

/*
 * RequireArgument raises the 22004 error for a NULL where a value is
 * needed.
 */
static void
RequireArgument(FunctionCallInfo fcinfo, int argno, const char *what)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
}

/*
 * DigestUpdate feeds bytes to a hash, followed by a separator so that
 * ("ab", "c") and ("a", "bc") differ.
 */
static void
DigestUpdate(pg_cryptohash_ctx *ctx, const char *data, size_t len)
{
	static const uint8 separator = 0;

	if (pg_cryptohash_update(ctx, (const uint8 *) data, len) < 0 ||
		pg_cryptohash_update(ctx, &separator, 1) < 0)
		elog(ERROR, "could not compute a SHA-256 digest: %s",
			 pg_cryptohash_error(ctx));
}

static pg_cryptohash_ctx *
DigestBegin(void)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (ctx == NULL || pg_cryptohash_init(ctx) < 0)
		elog(ERROR, "could not compute a SHA-256 digest: %s",
			 pg_cryptohash_error(ctx));
	return ctx;
}

static void
DigestEnd(pg_cryptohash_ctx *ctx, uint8 *dest)
{
	if (pg_cryptohash_final(ctx, dest, PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "could not compute a SHA-256 digest: %s",
			 pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
}

/*
 * DigestTextAttr feeds a text-like attribute of a pg_proc row to the hash
 * (a NULL feeds a marker of its own).
 */
static void
DigestTextAttr(pg_cryptohash_ctx *ctx, HeapTuple tuple, AttrNumber attno)
{
	bool		isnull;
	Datum		value = SysCacheGetAttr(PROCOID, tuple, attno, &isnull);

	if (isnull)
		DigestUpdate(ctx, "\x01null", 5);
	else
	{
		text	   *t = DatumGetTextPP(value);

		DigestUpdate(ctx, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	}
}

/*
 * ComputeCodeDigest fingerprints what a function does: its language, its
 * source (or SQL body), its object file and its SET options.  Names of
 * languages are used rather than OIDs so that the digest survives a dump
 * and restore.  A BEGIN ATOMIC body is stored as a parse tree with OIDs in
 * it, so its digest changes on restore: those snapshots are then replayed
 * once and stored again.
 */
static void
ComputeCodeDigest(HeapTuple tuple, uint8 *dest)
{
	Form_pg_proc proc = (Form_pg_proc) GETSTRUCT(tuple);
	pg_cryptohash_ctx *ctx = DigestBegin();
	char	   *lang = get_language_name(proc->prolang, false);
	bool		isnull;
	Datum		config;

	DigestUpdate(ctx, "es_pg reducer 1", 15);
	DigestUpdate(ctx, lang, strlen(lang));
	DigestTextAttr(ctx, tuple, Anum_pg_proc_prosrc);
	DigestTextAttr(ctx, tuple, Anum_pg_proc_probin);
	DigestTextAttr(ctx, tuple, Anum_pg_proc_prosqlbody);
	config = SysCacheGetAttr(PROCOID, tuple, Anum_pg_proc_proconfig, &isnull);
	if (!isnull)
	{
		Datum	   *items;
		bool	   *nulls;
		int			nitems;
		int			i;

		deconstruct_array(DatumGetArrayTypeP(config), TEXTOID, -1, false,
						  TYPALIGN_INT, &items, &nulls, &nitems);
		for (i = 0; i < nitems; i++)
		{
			text	   *t;

			if (nulls[i])
				continue;
			t = DatumGetTextPP(items[i]);
			DigestUpdate(ctx, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
		}
	}
	DigestEnd(ctx, dest);
}

/*
 * DescribeSignature renders "name(argtypes) returns type" for errors.
 */
static char *
DescribeSignature(Oid fn, Form_pg_proc proc)
{
	return psprintf("%s returns %s%s", format_procedure(fn),
					proc->proretset ? "setof " : "",
					format_type_be(proc->prorettype));
}

/*
 * CheckReducer verifies that fn can be a reducer, (jsonb, es_events) ->
 * jsonb, and fills in its name and code digest.  A function that does not
 * exist is a 42883; one of the wrong shape a 22023.
 */
static void
CheckReducer(const EsSnapshotCatalog *sc, Oid fn, ReducerInfo *info)
{
	HeapTuple	tuple;
	Form_pg_proc proc;
	const char *problem = NULL;

	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("reducer function with OID %u does not exist", fn)));
	proc = (Form_pg_proc) GETSTRUCT(tuple);

	if (proc->prokind == PROKIND_AGGREGATE)
		problem = "it is an aggregate function";
	else if (proc->prokind == PROKIND_WINDOW)
		problem = "it is a window function";
	else if (proc->prokind == PROKIND_PROCEDURE)
		problem = "it is a procedure";
	else if (proc->pronargs != 2 ||
			 proc->proargtypes.values[0] != JSONBOID ||
			 proc->proargtypes.values[1] != sc->events_type)
		problem = "its arguments are not (jsonb, es_events)";
	else if (proc->prorettype != JSONBOID || proc->proretset)
		problem = "it does not return jsonb";
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("function %s is not a reducer: %s",
						format_procedure(fn), problem),
				 errdetail("The function is %s.", DescribeSignature(fn, proc)),
				 errhint("A reducer is a function reducer(state jsonb, event %s) RETURNS jsonb that returns the state after the event.",
						 format_type_be(sc->events_type))));

	info->oid = fn;
	info->owner = proc->proowner;
	info->name = quote_qualified_identifier(get_namespace_name(proc->pronamespace),
											NameStr(proc->proname));

	if (es_last_reducer.oid != fn ||
		es_last_reducer.xmin != HeapTupleHeaderGetRawXmin(tuple->t_data) ||
		!ItemPointerEquals(&es_last_reducer.tid, &tuple->t_self))
	{
		ComputeCodeDigest(tuple, es_last_reducer.digest);
		es_last_reducer.oid = fn;
		es_last_reducer.xmin = HeapTupleHeaderGetRawXmin(tuple->t_data);
		es_last_reducer.tid = tuple->t_self;
	}
	memcpy(info->code_digest, es_last_reducer.digest, PG_SHA256_DIGEST_LENGTH);
	ReleaseSysCache(tuple);
}

/*
 * GetReducerArgument reads an optional reducer argument: NULL names the
 * application's own snapshots.
 */
static const char *
GetReducerArgument(FunctionCallInfo fcinfo, int argno,
				   const EsSnapshotCatalog *sc, ReducerInfo *info)
{
	if (PG_ARGISNULL(argno))
		return ES_NO_REDUCER;
	CheckReducer(sc, PG_GETARG_OID(argno), info);
	return info->name;
}

/*
 * FoldDigest combines the reducer's code digest with the initial state
 * into the hex digest stored with es_aggregate's snapshots.
 */
static void
FoldDigest(const ReducerInfo *reducer, const Policy *policy, Jsonb *initial,
		   char *hex)
{
	pg_cryptohash_ctx *ctx = DigestBegin();
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char	   *initial_text = JsonbToCString(NULL, &initial->root,
											  VARSIZE(initial));

	DigestUpdate(ctx, (const char *) reducer->code_digest,
				 PG_SHA256_DIGEST_LENGTH);
	DigestUpdate(ctx, initial_text, strlen(initial_text));
	if (policy->search_path != NULL)
	{
		/* role names, not OIDs, so that the digest survives a restore */
		char	   *owner = GetUserNameFromId(reducer->owner, false);

		DigestUpdate(ctx, "policy", 6);
		DigestUpdate(ctx, owner, strlen(owner));
		DigestUpdate(ctx, policy->search_path, strlen(policy->search_path));
	}
	DigestEnd(ctx, digest);
	hex_encode((const char *) digest, PG_SHA256_DIGEST_LENGTH, hex);
	hex[ES_DIGEST_LEN - 1] = '\0';
}

/*
 * TextDatumEquals compares a text datum with a C string byte for byte (the
 * key columns use the "C" collation).
 */
static bool
TextDatumEquals(Datum value, const char *str)
{
	text	   *t = DatumGetTextPP(value);
	size_t		len = strlen(str);

	return VARSIZE_ANY_EXHDR(t) == len &&
		memcmp(VARDATA_ANY(t), str, len) == 0;
}

/*
 * ReadSnapshotRow copies the version, state and creation time out of a
 * slot of es_snapshots.
 */
static void
ReadSnapshotRow(TupleTableSlot *slot, FoundSnapshot *found)
{
	bool		isnull;

	found->version = DatumGetInt64(slot_getattr(slot, Anum_es_snapshots_version,
												&isnull));
	found->state = DatumGetJsonbPCopy(slot_getattr(slot, Anum_es_snapshots_state,
												   &isnull));
	found->created_at = DatumGetTimestampTz(slot_getattr(slot,
														 Anum_es_snapshots_created_at,
														 &isnull));
}

/*
 * FindReducerSnapshot finds the newest snapshot of a stream made by one
 * reducer with a version at or before bound: one backward probe of
 * es_snapshots_pkey.  With a digest, snapshots made by other code or from
 * another initial state are skipped (and counted in *stale); snapshots
 * without a digest are taken as they are.
 */
static bool
FindReducerSnapshot(const EsSnapshotCatalog *sc, Snapshot snapshot,
					text *stream_id, const char *reducer, int64 bound,
					const char *digest, FoundSnapshot *found, int64 *stale)
{
	Relation	rel = table_open(sc->snapshots_relid, AccessShareLock);
	Relation	index = index_open(sc->snapshots_pkey, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	IndexScanDesc scan;
	ScanKeyData keys[3];
	bool		result = false;

	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(stream_id));
	ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_TEXTEQ,
				CStringGetTextDatum(reducer));
	ScanKeyInit(&keys[2], 3, BTLessEqualStrategyNumber, F_INT8LE,
				Int64GetDatum(bound));
	scan = EsIndexBeginScan(rel, index, snapshot, 3, 0);
	index_rescan(scan, keys, 3, NULL, 0);
	while (index_getnext_slot(scan, BackwardScanDirection, slot))
	{
		bool		isnull;
		Datum		row_digest;

		if (digest != NULL)
		{
			row_digest = slot_getattr(slot, Anum_es_snapshots_reducer_digest,
									  &isnull);
			if (!isnull && !TextDatumEquals(row_digest, digest))
			{
				(*stale)++;
				continue;
			}
		}
		ReadSnapshotRow(slot, found);
		result = true;
		break;
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);
	return result;
}

/*
 * FindNewestSnapshot finds the newest snapshot of a stream whatever its
 * reducer: the highest version, and of those the most recently created.
 */
static bool
FindNewestSnapshot(const EsSnapshotCatalog *sc, Snapshot snapshot,
				   text *stream_id, FoundSnapshot *found)
{
	Relation	rel = table_open(sc->snapshots_relid, AccessShareLock);
	Relation	index = index_open(sc->snapshots_stream_index, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	IndexScanDesc scan;
	ScanKeyData key;
	bool		result = false;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(stream_id));
	scan = EsIndexBeginScan(rel, index, snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	while (index_getnext_slot(scan, BackwardScanDirection, slot))
	{
		bool		isnull;
		int64		version;
		TimestampTz created_at;

		version = DatumGetInt64(slot_getattr(slot, Anum_es_snapshots_version,
											 &isnull));
		if (result && version != found->version)
			break;
		created_at = DatumGetTimestampTz(slot_getattr(slot,
													  Anum_es_snapshots_created_at,
													  &isnull));
		if (!result || created_at > found->created_at)
			ReadSnapshotRow(slot, found);
		result = true;
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);
	return result;
}

/*
 * LookupPolicy fills in the reducer's snapshot policy (every 0 when it has
 * none).
 */
static void
LookupPolicy(const EsSnapshotCatalog *sc, Snapshot snapshot,
			 const char *reducer, Policy *policy)
{
	Relation	rel = table_open(sc->policies_relid, AccessShareLock);
	Relation	index = index_open(sc->policies_pkey, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	IndexScanDesc scan;
	ScanKeyData key;

	policy->every = 0;
	policy->search_path = NULL;
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ,
				CStringGetTextDatum(reducer));
	scan = EsIndexBeginScan(rel, index, snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	if (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;

		policy->every = DatumGetInt32(slot_getattr(slot,
												   Anum_es_snapshot_policies_every_n,
												   &isnull));
		/* 0.1.0's policies fold as the caller, with the digest of then */
		if (sc->version >= ES_VERSION_0_2)
			policy->search_path =
				TextDatumGetCString(slot_getattr(slot,
												 Anum_es_snapshot_policies_search_path,
												 &isnull));
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);
}

/*
 * QualifiedTable renders schema.table of the install for SPI statements.
 */
static char *
QualifiedTable(const EsSnapshotCatalog *sc, const char *table)
{
	return quote_qualified_identifier(get_namespace_name(sc->namespace_oid),
									  table);
}

/*
 * UpsertSnapshot stores a snapshot with SPI, as the owner of es_snapshots.
 * With force, an existing snapshot of the same stream, reducer and version
 * is replaced; without, it is replaced only when its digest differs (the
 * reducer's code changed).
 */
static void
UpsertSnapshot(const EsSnapshotCatalog *sc, text *stream_id,
			   const char *reducer, int64 version, Datum state,
			   const char *digest, bool force)
{
	Oid			argtypes[6] = {TEXTOID, TEXTOID, INT8OID, JSONBOID, TEXTOID, BOOLOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	char	   *sql;
	EsIdentity	id;
	int			rc;

	sql = psprintf("INSERT INTO %s AS s "
				   "(stream_id, reducer, version, state, created_at, reducer_digest) "
				   "VALUES ($1, $2, $3, $4, pg_catalog.now(), $5) "
				   "ON CONFLICT ON CONSTRAINT es_snapshots_pkey DO UPDATE "
				   "SET state = excluded.state, created_at = excluded.created_at, "
				   "reducer_digest = excluded.reducer_digest "
				   "WHERE $6 OR s.reducer_digest IS NULL "
				   "OR s.reducer_digest OPERATOR(pg_catalog.<>) excluded.reducer_digest",
				   QualifiedTable(sc, "es_snapshots"));

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

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	EsBecomeOwner(EsRelationOwner(sc->snapshots_relid), NULL, true, &id);

	/* the plan is kept for the backend; remade if the install moved */
	if (es_upsert_plan == NULL || strcmp(es_upsert_sql, sql) != 0)
	{
		SPIPlanPtr	plan;

		if (es_upsert_plan != NULL)
		{
			SPI_freeplan(es_upsert_plan);
			es_upsert_plan = NULL;
		}
		plan = SPI_prepare(sql, 6, argtypes);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s",
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		if (es_upsert_sql != NULL)
			pfree(es_upsert_sql);
		es_upsert_sql = MemoryContextStrdup(TopMemoryContext, sql);
		es_upsert_plan = plan;
	}
	rc = SPI_execute_plan(es_upsert_plan, values, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	EsRestoreIdentity(&id);
	SPI_finish();
}

/*
 * RunAsOwner runs one statement with SPI as the owner of relid and returns
 * the number of rows it processed.
 */
static uint64
RunAsOwner(Oid relid, const char *sql, int nargs, Oid *argtypes,
		   Datum *values, const char *nulls, int expected)
{
	int			rc;
	uint64		processed;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = EsRunAsOwner(relid, sql, nargs, argtypes, values, nulls, false, 0);
	if (rc != expected)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
	processed = SPI_processed;
	SPI_finish();
	return processed;
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
 * transactions in progress count.  Returns 0 for no row, 1 for a committed
 * row with the same digest, 2 for a row being written by another
 * transaction, 3 for a committed row with another digest.
 */
static int
ProbeSnapshotRow(const EsSnapshotCatalog *sc, text *stream_id,
				 const char *reducer, int64 version, const char *digest)
{
	Relation	rel = table_open(sc->snapshots_relid, AccessShareLock);
	Relation	index = index_open(sc->snapshots_pkey, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	SnapshotData dirty;
	IndexScanDesc scan;
	ScanKeyData keys[3];
	int			result = 0;

	InitDirtySnapshot(dirty);
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(stream_id));
	ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_TEXTEQ,
				CStringGetTextDatum(reducer));
	ScanKeyInit(&keys[2], 3, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(version));
	scan = EsIndexBeginScan(rel, index, &dirty, 3, 0);
	index_rescan(scan, keys, 3, NULL, 0);
	if (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		row_digest;

		if (TransactionIdIsValid(dirty.xmin) || TransactionIdIsValid(dirty.xmax))
			result = 2;
		else
		{
			row_digest = slot_getattr(slot, Anum_es_snapshots_reducer_digest,
									  &isnull);
			result = (!isnull && TextDatumEquals(row_digest, digest)) ? 1 : 3;
		}
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);
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

/*
 * StorePolicySnapshot stores the state es_aggregate computed, if it can do
 * so without failing or waiting (see the header comment).  It returns a
 * phrase for the es_pg.log_replay report.
 */
static char *
StorePolicySnapshot(const EsSnapshotCatalog *sc, text *stream_id,
					const char *reducer, int64 version, Datum state,
					const char *digest)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	char	   *volatile outcome = NULL;

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
		case 1:
			return psprintf("snapshot at version %lld exists", (long long) version);
		case 2:
			return psprintf("snapshot not stored: another transaction is writing version %lld",
							(long long) version);
		default:
			break;
	}

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		UpsertSnapshot(sc, stream_id, reducer, version, state, digest, false);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		outcome = psprintf("stored a snapshot at version %lld",
						   (long long) version);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;

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
	}
	PG_END_TRY();
	return outcome;
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
		   const ReducerInfo *reducer, FmgrInfo *flinfo, int64 after,
		   int64 bound, Datum *state)
{
	MemoryContext callcxt = CurrentMemoryContext;
	MemoryContext foldcxt;
	MemoryContext scratch;
	MemoryContext statecxt[2];
	int			next = 0;
	LOCAL_FCINFO(fcinfo, 2);
	PgStat_FunctionCallUsage fcusage;
	Relation	rel;
	Relation	index;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData keys[3];
	FoldPosition pos;
	ErrorContextCallback errcallback;
	Datum		current = *state;
	int64		count = 0;

	if (bound <= after)
		return 0;

	foldcxt = AllocSetContextCreate(callcxt, "es_aggregate",
									ALLOCSET_DEFAULT_SIZES);
	scratch = AllocSetContextCreate(foldcxt, "es_aggregate event",
									ALLOCSET_DEFAULT_SIZES);
	statecxt[0] = AllocSetContextCreate(foldcxt, "es_aggregate state",
										ALLOCSET_DEFAULT_SIZES);
	statecxt[1] = AllocSetContextCreate(foldcxt, "es_aggregate state",
										ALLOCSET_DEFAULT_SIZES);

	InitFunctionCallInfoData(*fcinfo, flinfo, 2, InvalidOid, NULL, NULL);

	rel = table_open(cat->events_relid, AccessShareLock);
	index = index_open(cat->stream_index, AccessShareLock);
	slot = table_slot_create(rel, NULL);
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(stream_id));
	ScanKeyInit(&keys[1], 2, BTGreaterStrategyNumber, F_INT8GT,
				Int64GetDatum(after));
	ScanKeyInit(&keys[2], 2, BTLessEqualStrategyNumber, F_INT8LE,
				Int64GetDatum(bound));
	scan = EsIndexBeginScan(rel, index, snapshot, 3, 0);
	index_rescan(scan, keys, 3, NULL, 0);

	pos.stream_id = stream_id;
	pos.reducer = reducer->name;
	pos.slot = slot;
	pos.version = 0;
	errcallback.callback = FoldErrorContext;
	errcallback.arg = &pos;

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
		if (!index_getnext_slot(scan, ForwardScanDirection, slot))
			break;
		CHECK_FOR_INTERRUPTS();
		pos.version = DatumGetInt64(slot_getattr(slot, Anum_es_events_version,
												 &isnull));

		MemoryContextSwitchTo(scratch);
		fcinfo->args[0].value = current;
		fcinfo->args[0].isnull = false;
		fcinfo->args[1].value = ExecFetchSlotHeapTupleDatum(slot);
		fcinfo->args[1].isnull = false;
		fcinfo->isnull = false;

		errcallback.previous = error_context_stack;
		error_context_stack = &errcallback;
		pgstat_init_function_usage(fcinfo, &fcusage);
		result = FunctionCallInvoke(fcinfo);
		pgstat_end_function_usage(&fcusage, true);
		if (fcinfo->isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("reducer %s returned null", reducer->name),
					 errhint("A reducer returns the new state, and the state unchanged for events it ignores (for example ELSE state in a CASE).")));
		error_context_stack = errcallback.previous;

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

	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);

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
	Relation	rel = table_open(cat->events_relid, AccessShareLock);
	Relation	index = index_open(cat->stream_index, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	IndexScanDesc scan;
	ScanKeyData keys[2];
	int64		version = 0;

	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(stream_id));
	ScanKeyInit(&keys[1], 2, BTLessEqualStrategyNumber, F_INT8LE,
				Int64GetDatum(upto));
	scan = EsIndexBeginScan(rel, index, snapshot, 2, 0);
	index_rescan(scan, keys, 2, NULL, 0);
	while (index_getnext_slot(scan, BackwardScanDirection, slot))
	{
		bool		isnull;

		CHECK_FOR_INTERRUPTS();
		if (DatumGetTimestampTz(slot_getattr(slot, Anum_es_events_recorded_at,
											 &isnull)) <= t)
		{
			version = DatumGetInt64(slot_getattr(slot, Anum_es_events_version,
												 &isnull));
			break;
		}
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);
	return version;
}

/*
 * StreamVersion returns the stream's version in the given snapshot.
 */
static int64
StreamVersion(const EsCatalog *cat, text *stream_id, Snapshot snapshot)
{
	Relation	rel = table_open(cat->events_relid, AccessShareLock);
	int64		version = EsStreamVersion(cat, rel, stream_id, snapshot);

	table_close(rel, AccessShareLock);
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
	ReducerInfo reducer;
	AggregateCallCache *cache;
	AclResult	aclresult;
	char		digest[ES_DIGEST_LEN];
	Snapshot	snapshot;
	int64		head;
	int64		bound;
	int64		stale = 0;
	int64		replayed;
	FoundSnapshot found;
	bool		have_snapshot = false;
	Datum		state;
	char	   *outcome = NULL;
	Policy		policy;
	EsIdentity	id;
	StringInfoData report;

	RequireArgument(fcinfo, 0, "stream id");
	RequireArgument(fcinfo, 1, "reducer");
	RequireArgument(fcinfo, 2, "initial state");
	stream_id = PG_GETARG_TEXT_PP(0);
	initial = PG_GETARG_JSONB_P(2);
	if (!PG_ARGISNULL(3) && PG_GETARG_INT64(3) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("as_of_version must not be negative"),
				 errhint("Pass NULL for the current version, 0 for the initial state.")));

	cat = EsGetCatalogForFunction(fcinfo);
	EsCheckReadPrivilege(cat);
	sc = GetSnapshotCatalog(cat);
	CheckReducer(sc, PG_GETARG_OID(1), &reducer);
	aclresult = EsProcAclCheck(reducer.oid, GetUserId(), ACL_EXECUTE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FUNCTION, get_func_name(reducer.oid));
	InvokeFunctionExecuteHook(reducer.oid);

	snapshot = RegisterSnapshot(GetActiveSnapshot());
	LookupPolicy(sc, snapshot, reducer.name, &policy);
	if (policy.search_path != NULL)
	{
		aclresult = EsProcAclCheck(reducer.oid, reducer.owner, ACL_EXECUTE);
		if (aclresult != ACLCHECK_OK)
			aclcheck_error(aclresult, OBJECT_FUNCTION, get_func_name(reducer.oid));
	}
	FoldDigest(&reducer, &policy, initial, digest);

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

	head = StreamVersion(cat, stream_id, snapshot);
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
		have_snapshot = FindReducerSnapshot(sc, snapshot, stream_id,
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
		outcome = StorePolicySnapshot(sc, stream_id, reducer.name, bound,
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
	ReducerInfo info;
	const char *reducer;
	int64		current;

	RequireArgument(fcinfo, 0, "stream id");
	RequireArgument(fcinfo, 1, "snapshot version");
	RequireArgument(fcinfo, 2, "snapshot state");
	stream_id = PG_GETARG_TEXT_PP(0);
	version = PG_GETARG_INT64(1);

	cat = EsGetCatalogForFunction(fcinfo);
	EsCheckReadPrivilege(cat);
	sc = GetSnapshotCatalog(cat);
	reducer = GetReducerArgument(fcinfo, 3, sc, &info);

	if (version < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid snapshot version %lld", (long long) version),
				 errdetail("A snapshot holds the state after an event; stream versions start at 1.")));
	current = StreamVersion(cat, stream_id, GetActiveSnapshot());
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
ReturnSnapshot(FunctionCallInfo fcinfo, bool have, FoundSnapshot *found)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	if (!have)
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
	FoundSnapshot found;
	bool		have;

	RequireArgument(fcinfo, 0, "stream id");
	cat = EsGetCatalogForFunction(fcinfo);
	EsCheckReadPrivilege(cat);
	sc = GetSnapshotCatalog(cat);
	InitMaterializedSRF(fcinfo, 0);
	have = FindNewestSnapshot(sc, GetActiveSnapshot(), PG_GETARG_TEXT_PP(0),
							  &found);
	ReturnSnapshot(fcinfo, have, &found);
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
	ReducerInfo info;
	const char *reducer;
	FoundSnapshot found;
	int64		stale = 0;
	bool		have;

	RequireArgument(fcinfo, 0, "stream id");
	cat = EsGetCatalogForFunction(fcinfo);
	EsCheckReadPrivilege(cat);
	sc = GetSnapshotCatalog(cat);
	reducer = GetReducerArgument(fcinfo, 1, sc, &info);
	InitMaterializedSRF(fcinfo, 0);
	have = FindReducerSnapshot(sc, GetActiveSnapshot(), PG_GETARG_TEXT_PP(0),
							   reducer, PG_INT64_MAX, NULL, &found, &stale);
	ReturnSnapshot(fcinfo, have, &found);
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
	ReducerInfo info;
	int32		every;
	Oid			argtypes[4] = {TEXTOID, INT4OID, TEXTOID, NAMEOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	RequireArgument(fcinfo, 0, "reducer");
	RequireArgument(fcinfo, 1, "every_n_events");
	every = PG_GETARG_INT32(1);
	sc = GetSnapshotCatalog(EsGetCatalogForFunction(fcinfo));
	CheckReducer(sc, PG_GETARG_OID(0), &info);
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
	if (sc->version >= ES_VERSION_0_2)
		RunAsOwner(sc->policies_relid,
				   psprintf("INSERT INTO %s AS p (reducer, every_n_events, updated_at, "
							"search_path, extension) "
							"VALUES ($1, $2, pg_catalog.now(), $3, $4) "
							"ON CONFLICT ON CONSTRAINT es_snapshot_policies_pkey DO UPDATE "
							"SET every_n_events = excluded.every_n_events, "
							"updated_at = excluded.updated_at, "
							"search_path = excluded.search_path",
							QualifiedTable(sc, "es_snapshot_policies")),
				   4, argtypes, values, nulls, SPI_OK_INSERT);
	else
		RunAsOwner(sc->policies_relid,
				   psprintf("INSERT INTO %s AS p (reducer, every_n_events, updated_at) "
							"VALUES ($1, $2, pg_catalog.now()) "
							"ON CONFLICT ON CONSTRAINT es_snapshot_policies_pkey DO UPDATE "
							"SET every_n_events = excluded.every_n_events, "
							"updated_at = excluded.updated_at",
							QualifiedTable(sc, "es_snapshot_policies")),
				   2, argtypes, values, nulls, SPI_OK_INSERT);
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
	ReducerInfo info;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	uint64		deleted;

	RequireArgument(fcinfo, 0, "reducer");
	sc = GetSnapshotCatalog(EsGetCatalogForFunction(fcinfo));
	CheckReducer(sc, PG_GETARG_OID(0), &info);
	values[0] = CStringGetTextDatum(info.name);
	deleted = RunAsOwner(sc->policies_relid,
						 psprintf("DELETE FROM %s WHERE reducer OPERATOR(pg_catalog.=) $1",
								  QualifiedTable(sc, "es_snapshot_policies")),
						 1, argtypes, values, NULL, SPI_OK_DELETE);
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
	ReducerInfo info;
	const char *reducer;
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	uint64		deleted;
	const char *table;

	sc = GetSnapshotCatalog(EsGetCatalogForFunction(fcinfo));
	reducer = GetReducerArgument(fcinfo, 0, sc, &info);
	table = QualifiedTable(sc, "es_snapshots");
	values[0] = CStringGetTextDatum(reducer);
	if (PG_ARGISNULL(1))
		deleted = RunAsOwner(sc->snapshots_relid,
							 psprintf("DELETE FROM %s WHERE reducer OPERATOR(pg_catalog.=) $1",
									  table),
							 1, argtypes, values, NULL, SPI_OK_DELETE);
	else
	{
		values[1] = PointerGetDatum(PG_GETARG_TEXT_PP(1));
		deleted = RunAsOwner(sc->snapshots_relid,
							 psprintf("DELETE FROM %s WHERE reducer OPERATOR(pg_catalog.=) $1 "
									  "AND stream_id OPERATOR(pg_catalog.=) $2",
									  table),
							 2, argtypes, values, NULL, SPI_OK_DELETE);
	}
	PG_RETURN_INT64((int64) deleted);
}
