/*-------------------------------------------------------------------------
 *
 * projadmin.c
 *	  Administering projections: es_create_projection, es_drop_projection,
 *	  es_rebuild_projection, es_set_projection_timeout and
 *	  es_resume_projection, the event trigger that keeps projections from
 *	  pointing at dropped or renamed functions, and the trigger that lets
 *	  a restore replace a checkpoint.
 *
 * Every statement on the projection tables runs as the owner of
 * es_projections (EsProjectionExecute): callers need no privilege on them.
 * Creating or rebuilding an inline projection replays the history through
 * the handler (projcall.c) while holding appends off; dropping, rebuilding
 * or resuming a projection first takes it over from an applier at work
 * (projapply.c).
 *
 * IDENTIFICATION
 *	  src/projadmin.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parse_func.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "common.h"
#include "projection.h"

static const EsStatement ExistsStatement = {
	"SELECT 1 FROM @extschema@.es_projections p"
	" WHERE p.name OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}, false
};

/* whether the stored definition is the one given (0.2.0 tables) */
static const EsStatement SameDefinitionStatement = {
	"SELECT p.mode OPERATOR(pg_catalog.=) $2"
	" AND p.handler OPERATOR(pg_catalog.=) $3"
	" AND p.reset IS NOT DISTINCT FROM $4"
	" AND p.event_types IS NOT DISTINCT FROM $5"
	" FROM @extschema@.es_projections p"
	" WHERE p.name OPERATOR(pg_catalog.=) $1",
	5, {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID}, false
};

static const EsStatement InsertStatement = {
	"INSERT INTO @extschema@.es_projections"
	" (name, mode, handler, reset, event_types, owner, search_path,"
	" extension)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
	8, {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, REGROLEOID, TEXTOID,
	NAMEOID}, false
};

/* the same for the es_projections of 0.1.0, whose functions are reg* */
static const EsStatement InsertStatement_0_1 = {
	"INSERT INTO @extschema@.es_projections"
	" (name, mode, handler, reset, event_types, owner, search_path)"
	" VALUES ($1, $2, $3::pg_catalog.regprocedure,"
	" $4::pg_catalog.regprocedure, $5, $6, $7)",
	7, {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, REGROLEOID, TEXTOID},
	false
};

static const EsStatement DefinitionStatement = {
	"SELECT " ES_PROJECTION_COLUMNS
	" FROM @extschema@.es_projections p"
	" WHERE p.name OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}, false
};

static const EsStatement DefinitionStatement_0_1 = {
	"SELECT " ES_PROJECTION_COLUMNS_0_1
	" FROM @extschema@.es_projections p"
	" WHERE p.name OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}, false
};

static const EsStatement InsertCheckpointStatement = {
	"INSERT INTO @extschema@.es_projection_checkpoints"
	" (name, position, updated_at)"
	" VALUES ($1, $2, pg_catalog.clock_timestamp())",
	2, {TEXTOID, INT8OID}, false
};

/*
 * 0.2.0: an async projection is a subscription whose consumer is its
 * handler (subscription.c, projapply.c): one member, the projection's
 * event types, es_pg.projection_retries attempts per event.
 */
static const EsStatement SubscriptionExistsStatement = {
	"SELECT 1 FROM @extschema@.es_subscriptions s"
	" WHERE s.name OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}, false
};

static const EsStatement InsertSubscriptionStatement = {
	"INSERT INTO @extschema@.es_subscriptions"
	" (name, category, event_types, group_size, start_position,"
	" max_attempts, lease, projection)"
	" VALUES ($1, NULL, $3, 1, $2, $4, '30 seconds', $1)",
	4, {TEXTOID, INT8OID, TEXTARRAYOID, INT4OID}, false
};

static const EsStatement InsertMemberStatement = {
	"INSERT INTO @extschema@.es_subscription_members"
	" (subscription, member, checkpoint, delivered_to, scanned_to, last_ack)"
	" VALUES ($1, 0, $2, $2, $2, pg_catalog.clock_timestamp())",
	2, {TEXTOID, INT8OID}, false
};

static const EsStatement LockMemberStatement = {
	"SELECT 1 FROM @extschema@.es_subscription_members m"
	" WHERE m.subscription OPERATOR(pg_catalog.=) $1 FOR UPDATE",
	1, {TEXTOID}, false
};

static const EsStatement ResetMemberStatement = {
	"UPDATE @extschema@.es_subscription_members SET"
	" checkpoint = $2, delivered_to = $2, scanned_to = $2, attempts = 0,"
	" last_ack = pg_catalog.clock_timestamp(), last_error = NULL,"
	" last_error_at = NULL, error_position = NULL, error_sqlstate = NULL"
	" WHERE subscription OPERATOR(pg_catalog.=) $1",
	2, {TEXTOID, INT8OID}, false
};

/* a rebuild handed every event to the handler, the parked ones too */
static const EsStatement DeleteParkedStatement = {
	"DELETE FROM @extschema@.es_subscription_parked"
	" WHERE subscription OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}, false
};

static const EsStatement ReplayParkedStatement = {
	"UPDATE @extschema@.es_subscription_parked SET replay = true"
	" WHERE subscription OPERATOR(pg_catalog.=) $1 AND NOT replay",
	1, {TEXTOID}, false
};

static const EsStatement LockCheckpointStatement = {
	"SELECT 1 FROM @extschema@.es_projection_checkpoints c"
	" WHERE c.name OPERATOR(pg_catalog.=) $1 FOR UPDATE",
	1, {TEXTOID}, false
};

static const EsStatement DeleteProjectionStatement = {
	"DELETE FROM @extschema@.es_projections p"
	" WHERE p.name OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}, false
};

static const EsStatement DeleteCheckpointStatement = {
	"DELETE FROM @extschema@.es_projection_checkpoints c"
	" WHERE c.name OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}, false
};

static const EsStatement RebuildStatement_0_1 = {
	"SELECT " ES_PROJECTION_COLUMNS_0_1
	" FROM @extschema@.es_projection_checkpoints c"
	" JOIN @extschema@.es_projections p ON p.name OPERATOR(pg_catalog.=) c.name"
	" WHERE c.name OPERATOR(pg_catalog.=) $1 FOR UPDATE OF c",
	1, {TEXTOID}, false
};

static const EsStatement CountStatement = {
	"SELECT pg_catalog.count(*) FROM @extschema@.es_events e"
	" WHERE e.global_position OPERATOR(pg_catalog.<=) $1",
	1, {INT8OID}, false
};

static const EsStatement ResetCheckpointStatement = {
	"UPDATE @extschema@.es_projection_checkpoints SET"
	" position = $2, updated_at = pg_catalog.clock_timestamp(),"
	" parked = false, retries = 0, error_position = NULL,"
	" error_sqlstate = NULL, error_message = NULL, error_at = NULL"
	" WHERE name OPERATOR(pg_catalog.=) $1",
	2, {TEXTOID, INT8OID}, false
};

static const EsStatement SetTimeoutStatement = {
	"UPDATE @extschema@.es_projections SET handler_timeout_ms = $2"
	" WHERE name OPERATOR(pg_catalog.=) $1",
	2, {TEXTOID, INT4OID}, false
};

static const EsStatement ResumeStatement = {
	"UPDATE @extschema@.es_projection_checkpoints SET parked = false,"
	" retries = 0 WHERE name OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}, false
};

static const EsStatement FunctionsStatement = {
	"SELECT p.name, p.handler, p.reset FROM @extschema@.es_projections p"
	" ORDER BY p.name",
	0, {InvalidOid}, false
};

/* the projections whose functions the command being run drops */
#define DROPPED_PROJECTIONS \
	"SELECT DISTINCT p.name, d.object_identity" \
	" FROM @extschema@.es_projections p," \
	" pg_catalog.pg_event_trigger_dropped_objects() d" \
	" WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass"

static const EsStatement DroppedStatement = {
	DROPPED_PROJECTIONS
	" AND (d.object_identity OPERATOR(pg_catalog.=) p.handler"
	" OR d.object_identity OPERATOR(pg_catalog.=) p.reset)"
	" ORDER BY 1",
	0, {InvalidOid}, false
};

static const EsStatement DroppedStatement_0_1 = {
	DROPPED_PROJECTIONS
	" AND (d.objid OPERATOR(pg_catalog.=) p.handler::pg_catalog.oid"
	" OR d.objid OPERATOR(pg_catalog.=) p.reset::pg_catalog.oid)"
	" ORDER BY 1",
	0, {InvalidOid}, false
};

/*
 * RunForName runs a projection statement whose one argument is the
 * projection's name and returns the rows it processed.  The caller is
 * connected to SPI.
 */
static uint64
RunForName(const EsProjectionCatalog *pc, const EsStatement *stmt,
		   const char *name)
{
	Datum		values[1];

	values[0] = CStringGetTextDatum(name);
	EsProjectionExecute(pc, stmt, values, NULL, InvalidSnapshot);
	return SPI_processed;
}

/*
 * DeleteProjection deletes a projection's definition and its checkpoint;
 * false when there is no such definition.
 */
static bool
DeleteProjection(const EsProjectionCatalog *pc, const char *name)
{
	if (RunForName(pc, &DeleteProjectionStatement, name) == 0)
		return false;
	/* 0.2.0: the subscription goes with it (ON DELETE CASCADE) */
	if (pc->version < ES_VERSION_0_2)
		(void) RunForName(pc, &DeleteCheckpointStatement, name);
	return true;
}

/*
 * CheckSignature raises a clear error unless fn is a plain function with
 * the given single argument type (or none) returning void.
 */
static void
CheckSignature(Oid fn, Oid argtype, const char *what, const char *expected)
{
	HeapTuple	tuple;
	Form_pg_proc proc;
	bool		ok;

	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("%s function with OID %u does not exist", what, fn)));
	proc = (Form_pg_proc) GETSTRUCT(tuple);
	ok = proc->prokind == PROKIND_FUNCTION && !proc->proretset &&
		proc->prorettype == VOIDOID &&
		(OidIsValid(argtype) ?
		 (proc->pronargs == 1 && proc->proargtypes.values[0] == argtype) :
		 proc->pronargs == 0);
	ReleaseSysCache(tuple);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s %s has the wrong signature", what,
						format_procedure(fn)),
				 errdetail("A projection's %s must be a function %s RETURNS void.",
						   what, expected)));
}

/*
 * EventTypesArray validates the event_types argument and returns it sorted
 * and without duplicates.
 */
static Datum
EventTypesArray(ArrayType *arr)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	int			k = 0;
	char	  **strs;
	Datum	   *out;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event_types must be a one-dimensional array")));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event_types must not be empty"),
				 errhint("Pass NULL for every event type.")));
	strs = palloc(n * sizeof(char *));
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("event_types must not contain nulls")));
		EsValidateEventType(DatumGetTextPP(elems[i]), -1);
		strs[i] = TextDatumGetCString(elems[i]);
	}
	qsort(strs, n, sizeof(char *), EsCompareCStrings);
	out = palloc(n * sizeof(Datum));
	for (i = 0; i < n; i++)
		if (i == 0 || strcmp(strs[i], strs[i - 1]) != 0)
			out[k++] = CStringGetTextDatum(strs[i]);
	return PointerGetDatum(construct_array(out, k, TEXTOID, -1, false,
										   TYPALIGN_INT));
}

/*
 * RequireReadCommitted refuses to run at REPEATABLE READ or SERIALIZABLE
 * where a snapshot taken before our locks would hide events.
 */
static void
RequireReadCommitted(const char *what)
{
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s must run at the READ COMMITTED isolation level", what),
				 errdetail("A transaction snapshot taken before its locks could hide events that committed in between.")));
}

/*
 * CreateProjection registers a projection: the work of es_create_projection
 * and es_create_projection_if_not_exists, whose arguments are the same
 * (name text, handler regprocedure, event_types text[], mode text, reset
 * regprocedure, from_beginning boolean).  With if_not_exists a projection
 * of that name with the same definition (mode, handler, reset function,
 * event types) is left as it is, with a notice, and false returned; one
 * with another definition is an error either way.  Returns true when it
 * created the projection.
 *
 * Whether the name is taken is read with a fresh snapshot once the lock on
 * es_projections is held, so two migrations that create the same
 * projection at once serialize: the second waits for the first, then sees
 * its projection, at any isolation level.
 */
static bool
CreateProjection(FunctionCallInfo fcinfo, bool if_not_exists)
{
	char	   *name = EsProjectionNameArgument(fcinfo, 0);
	Oid			handler;
	Oid			reset = InvalidOid;
	Datum		types = (Datum) 0;
	bool		async;
	bool		from_beginning;
	char	   *mode;
	const EsCatalog *cat;
	const EsProjectionCatalog *pc;
	char	   *search_path;
	Datum		values[8];
	char		nulls[8];
	int64		position;
	bool		isnull;

	EsRequireArgument(fcinfo, 1, "projection handler");
	handler = PG_GETARG_OID(1);
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("projection mode must not be null"),
				 errhint("The mode is 'inline' or 'async'.")));
	mode = text_to_cstring(PG_GETARG_TEXT_PP(3));
	if (strcmp(mode, "inline") == 0)
		async = false;
	else if (strcmp(mode, "async") == 0)
		async = true;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid projection mode \"%s\"", mode),
				 errhint("The mode is 'inline' or 'async'.")));
	if (!PG_ARGISNULL(4))
		reset = PG_GETARG_OID(4);
	EsRequireArgument(fcinfo, 5, "from_beginning");
	from_beginning = PG_GETARG_BOOL(5);

	cat = EsGetCatalogForFunction(fcinfo);
	pc = EsGetProjectionCatalog(cat, false);

	CheckSignature(handler, pc->events_type, "handler", "(event es_events)");
	EsCheckExecute(handler, GetUserId());
	if (OidIsValid(reset))
	{
		CheckSignature(reset, InvalidOid, "reset", "()");
		EsCheckExecute(reset, GetUserId());
	}
	if (!PG_ARGISNULL(2))
		types = EventTypesArray(PG_GETARG_ARRAYTYPE_P(2));

	search_path = EsPinnedSearchPath();
	memset(nulls, ' ', sizeof(nulls));
	values[0] = CStringGetTextDatum(name);
	values[1] = CStringGetTextDatum(mode);
	values[2] = CStringGetTextDatum(format_procedure_qualified(handler));
	values[3] = OidIsValid(reset) ?
		CStringGetTextDatum(format_procedure_qualified(reset)) : (Datum) 0;
	nulls[3] = OidIsValid(reset) ? ' ' : 'n';
	values[4] = types;
	nulls[4] = PG_ARGISNULL(2) ? 'n' : ' ';
	values[5] = ObjectIdGetDatum(GetUserId());
	values[6] = CStringGetTextDatum(search_path);
	values[7] = EsCreatingExtensionName();
	nulls[7] = values[7] == (Datum) 0 ? 'n' : ' ';

	LockRelationOid(pc->projections_relid, ShareRowExclusiveLock);
	EsSpiConnect();

	if (EsProjectionExecute(pc, &ExistsStatement, values, nulls,
							GetLatestSnapshot()) > 0 && SPI_processed > 0)
	{
		if (!if_not_exists)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("projection \"%s\" already exists", name),
					 errhint("Drop it first with es_drop_projection, or rebuild it with es_rebuild_projection.")));
		if (pc->version < ES_VERSION_0_2 ||
			EsProjectionExecute(pc, &SameDefinitionStatement, values, nulls,
								GetLatestSnapshot()) <= 0 ||
			SPI_processed == 0 ||
			!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1, &isnull)) ||
			isnull)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("projection \"%s\" already exists with another definition", name),
					 errdetail("The mode, handler, reset function or event types differ."),
					 errhint("Compare with es_projection_status; to change a projection, drop it with es_drop_projection and create it again.")));
		ereport(NOTICE,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("projection \"%s\" already exists, skipping", name)));
		SPI_finish();
		return false;
	}

	if (async && pc->version >= ES_VERSION_0_2 &&
		RunForName(pc, &SubscriptionExistsStatement, name) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("subscription \"%s\" already exists", name),
				 errdetail("An async projection is applied through a subscription of its name: subscriptions and async projections share one name space."),
				 errhint("Choose another name for the projection, or drop the subscription with es_drop_subscription.")));
	if (!async)
		RequireReadCommitted("creating an inline projection");

	/*
	 * An inline projection must see every event: history is replayed below,
	 * later appends call the handler once they see the projection, and in
	 * between no append may commit.  ExclusiveLock on es_events waits for
	 * the appenders in flight and holds new ones until we commit (they then
	 * process our cache invalidation when they get their lock).  An async
	 * projection starting at the head needs the same for an exact head.
	 */
	if (!async || !from_beginning)
		LockRelationOid(cat->events_relid, ExclusiveLock);

	position = from_beginning ? 0 : EsHeadPosition(cat, GetLatestSnapshot());

	EsProjectionExecute(pc, pc->version >= ES_VERSION_0_2 ?
						&InsertStatement : &InsertStatement_0_1,
						values, nulls, InvalidSnapshot);

	if (!async && from_beginning)
	{
		EsProjection p;
		MemoryContext cxt = CurrentMemoryContext;

		/* the definition just stored, with this transaction's snapshot */
		(void) RunForName(pc, pc->version >= ES_VERSION_0_2 ?
						  &DefinitionStatement : &DefinitionStatement_0_1,
						  name);
		EsProjectionFromRow(pc, &p, 0, cxt);
		(void) EsReplayProjection(cat, &p, 0, PG_INT64_MAX,
								  es_projection_batch_size, -1, &position,
								  cxt);
	}

	values[1] = Int64GetDatum(position);
	if (pc->version < ES_VERSION_0_2)
		EsProjectionExecute(pc, &InsertCheckpointStatement, values, NULL,
							InvalidSnapshot);
	else if (async)
	{
		/* the event types, sorted, as es_projections has them */
		values[2] = types;
		nulls[2] = nulls[4];
		values[3] = Int32GetDatum(es_projection_retries);
		nulls[3] = ' ';
		EsProjectionExecute(pc, &InsertSubscriptionStatement, values, nulls,
							InvalidSnapshot);
		EsProjectionExecute(pc, &InsertMemberStatement, values, NULL,
							InvalidSnapshot);
	}

	SPI_finish();
	return true;
}

/*
 * es_create_projection registers a projection; an error if one of that
 * name exists.
 *
 * es_create_projection(name text, handler regprocedure, event_types text[],
 *						mode text, reset regprocedure, from_beginning boolean)
 */
PG_FUNCTION_INFO_V1(es_create_projection);
Datum
es_create_projection(PG_FUNCTION_ARGS)
{
	(void) CreateProjection(fcinfo, false);
	PG_RETURN_VOID();
}

/*
 * es_create_projection_if_not_exists registers a projection unless one of
 * that name and definition exists: for migrations that run more than once,
 * or at the same time.  True when it created it.
 */
PG_FUNCTION_INFO_V1(es_create_projection_if_not_exists);
Datum
es_create_projection_if_not_exists(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(CreateProjection(fcinfo, true));
}

/*
 * es_drop_projection unregisters a projection.  Its read-model tables are
 * left alone.
 */
PG_FUNCTION_INFO_V1(es_drop_projection);
Datum
es_drop_projection(PG_FUNCTION_ARGS)
{
	char	   *name = EsProjectionNameArgument(fcinfo, 0);
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	const EsProjectionCatalog *pc = EsGetProjectionCatalog(cat, false);

	LockRelationOid(pc->projections_relid, ShareRowExclusiveLock);
	EsSpiConnect();

	/* cancel an applier at work, wait for a rebuild to finish */
	EsTakeOverProjection(name);
	(void) RunForName(pc, pc->version >= ES_VERSION_0_2 ?
					  &LockMemberStatement : &LockCheckpointStatement, name);
	if (!DeleteProjection(pc, name))
		EsUnknownProjection(name);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * es_rebuild_projection empties the read model with the reset function and
 * replays every event through the handler, in global order, in batches, in
 * the caller's transaction.  Returns the number of handler calls.
 *
 * Readers of the read model keep seeing the old one until the rebuild
 * commits if the reset function uses DELETE; TRUNCATE would block them.
 * Rebuilding an inline projection holds appends until it commits.
 */
PG_FUNCTION_INFO_V1(es_rebuild_projection);
Datum
es_rebuild_projection(PG_FUNCTION_ARGS)
{
	char	   *name = EsProjectionNameArgument(fcinfo, 0);
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	const EsProjectionCatalog *pc = EsGetProjectionCatalog(cat, false);
	MemoryContext cxt = CurrentMemoryContext;
	EsProjection p;
	Datum		values[2];
	int64		upto;
	int64		total;
	int64		last = 0;
	int64		calls = 0;
	int			slot;
	bool		isnull;

	RequireReadCommitted("es_rebuild_projection");
	EsSpiConnect();

	/* the worker skips a projection whose row is locked */
	EsTakeOverProjection(name);
	if (pc->version >= ES_VERSION_0_2)
	{
		/* the member row of an async one is locked after the definition */
		if (RunForName(pc, &DefinitionStatement, name) == 0)
			EsUnknownProjection(name);
		EsProjectionFromRow(pc, &p, 0, cxt);
		if (p.async)
			(void) RunForName(pc, &LockMemberStatement, name);
	}
	else
	{
		if (RunForName(pc, &RebuildStatement_0_1, name) == 0)
			EsUnknownProjection(name);
		EsProjectionFromRow(pc, &p, 0, cxt);
	}
	if (p.reset_name == NULL)
		EsCallReset(&p);			/* raises the error */

	if (!p.async)
		LockRelationOid(cat->events_relid, ExclusiveLock);
	upto = EsHeadPosition(cat, GetLatestSnapshot());

	values[0] = Int64GetDatum(upto);
	EsProjectionExecute(pc, &CountStatement, values, NULL, InvalidSnapshot);
	total = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1, &isnull));

	slot = EsProgressStart(name, total);
	PG_TRY();
	{
		EsCallReset(&p);
		calls = EsReplayProjection(cat, &p, 0, upto, es_projection_batch_size,
								   slot, &last, cxt);
	}
	PG_FINALLY();
	{
		EsProgressEnd(slot);
	}
	PG_END_TRY();

	values[0] = CStringGetTextDatum(name);
	values[1] = Int64GetDatum(last);
	if (pc->version < ES_VERSION_0_2)
		EsProjectionExecute(pc, &ResetCheckpointStatement, values, NULL,
							InvalidSnapshot);
	else if (p.async)
	{
		EsProjectionExecute(pc, &ResetMemberStatement, values, NULL,
							InvalidSnapshot);
		EsProjectionExecute(pc, &DeleteParkedStatement, values, NULL,
							InvalidSnapshot);
	}
	EsCheckpointAdvanced();
	if (p.async)
		EsWakeWorkerAtCommit();

	SPI_finish();
	PG_RETURN_INT64(calls);
}

/*
 * es_set_projection_timeout sets how long one async batch of a
 * projection's handler calls may run (NULL: es_pg.projection_handler_timeout).
 */
PG_FUNCTION_INFO_V1(es_set_projection_timeout);
Datum
es_set_projection_timeout(PG_FUNCTION_ARGS)
{
	char	   *name = EsProjectionNameArgument(fcinfo, 0);
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	const EsProjectionCatalog *pc = EsGetProjectionCatalog(cat, false);
	Datum		values[2];
	char		nulls[2] = {' ', ' '};

	values[0] = CStringGetTextDatum(name);
	if (PG_ARGISNULL(1))
	{
		values[1] = (Datum) 0;
		nulls[1] = 'n';
	}
	else
	{
		int64		span = EsIntervalMicroseconds(PG_GETARG_INTERVAL_P(1));

		if (span < 1000 || span / 1000 > INT_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("projection timeout must be between 1 millisecond and %d milliseconds",
							INT_MAX),
					 errhint("Pass NULL to use es_pg.projection_handler_timeout.")));
		values[1] = Int32GetDatum((int32) (span / 1000));
	}
	if (EsRunStatement(&SetTimeoutStatement, pc->namespace_oid, pc->owner,
					   values, nulls, SPI_OK_UPDATE) == 0)
		EsUnknownProjection(name);
	PG_RETURN_VOID();
}

/*
 * es_resume_projection lets a parked projection try the failing event
 * again (es_pg.projection_retries more times).
 */
PG_FUNCTION_INFO_V1(es_resume_projection);
Datum
es_resume_projection(PG_FUNCTION_ARGS)
{
	char	   *name = EsProjectionNameArgument(fcinfo, 0);
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	const EsProjectionCatalog *pc = EsGetProjectionCatalog(cat, false);
	Datum		values[1];

	values[0] = CStringGetTextDatum(name);
	EsTakeOverProjection(name);
	if (pc->version >= ES_VERSION_0_2)
	{
		/* its parked events go to the handler again (es_replay_parked) */
		if (EsRunStatement(&ExistsStatement, pc->namespace_oid, pc->owner,
						   values, NULL, SPI_OK_SELECT) == 0)
			EsUnknownProjection(name);
		(void) EsRunStatement(&ReplayParkedStatement, pc->namespace_oid,
							  pc->owner, values, NULL, SPI_OK_UPDATE);
	}
	else if (EsRunStatement(&ResumeStatement, pc->namespace_oid, pc->owner,
							values, NULL, SPI_OK_UPDATE) == 0)
		EsUnknownProjection(name);
	EsWakeWorkerAtCommit();
	PG_RETURN_VOID();
}

/*
 * es_projection_checkpoints_restore is the BEFORE INSERT trigger of
 * es_projection_checkpoints: a row for a projection that has one already
 * (a restore's COPY of the checkpoint of a projection an extension's script
 * created again) replaces it instead of failing.
 */
PG_FUNCTION_INFO_V1(es_projection_checkpoints_restore);
Datum
es_projection_checkpoints_restore(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = EsCheckTriggerCall(fcinfo,
											   "es_projection_checkpoints_restore");
	Relation	rel = trigdata->tg_relation;
	HeapTuple	row = trigdata->tg_trigtuple;
	TupleDesc	desc = RelationGetDescr(rel);
	Datum		values[9];
	bool		isnull[9];
	char		nulls[9];
	Oid			argtypes[9];
	char	   *sql;
	int			i;

	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) || desc->natts != 9)
		EsTriggerMisfired("es_projection_checkpoints_restore",
						  "BEFORE INSERT FOR EACH ROW on es_projection_checkpoints");
	heap_deform_tuple(row, desc, values, isnull);
	for (i = 0; i < 9; i++)
	{
		nulls[i] = isnull[i] ? 'n' : ' ';
		argtypes[i] = TupleDescAttr(desc, i)->atttypid;
	}
	if (isnull[0])
		return PointerGetDatum(row);
	EsSpiConnect();
	sql = psprintf("UPDATE %s SET position = $2, updated_at = $3, parked = $4,"
				   " retries = $5, error_position = $6, error_sqlstate = $7,"
				   " error_message = $8, error_at = $9"
				   " WHERE name OPERATOR(pg_catalog.=) $1",
				   quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
											  RelationGetRelationName(rel)));
	EsRunAsOwner(RelationGetRelid(rel), sql, 9, argtypes, values, nulls,
				 false, 0);
	i = SPI_processed;
	SPI_finish();
	/* replaced an existing row: skip the insert */
	return PointerGetDatum(i > 0 ? NULL : row);
}

/*
 * RenamedFunction returns what a command would rename or move: the
 * function, or the schema (*nsp), or nothing.
 */
static Oid
RenamedFunction(Node *parsetree, Oid *nsp)
{
	ObjectType	type;
	Node	   *object;

	*nsp = InvalidOid;
	if (IsA(parsetree, RenameStmt))
	{
		RenameStmt *stmt = (RenameStmt *) parsetree;

		if (stmt->renameType == OBJECT_SCHEMA)
		{
			*nsp = get_namespace_oid(stmt->subname, true);
			return InvalidOid;
		}
		type = stmt->renameType;
		object = stmt->object;
	}
	else if (IsA(parsetree, AlterObjectSchemaStmt))
	{
		type = ((AlterObjectSchemaStmt *) parsetree)->objectType;
		object = ((AlterObjectSchemaStmt *) parsetree)->object;
	}
	else
		return InvalidOid;
	if (type != OBJECT_FUNCTION && type != OBJECT_PROCEDURE &&
		type != OBJECT_ROUTINE)
		return InvalidOid;
	return LookupFuncWithArgs(type, (ObjectWithArgs *) object, true);
}

/*
 * RefuseRenames keeps the handler and reset functions of projections from
 * being renamed or moved to another schema (directly, or with their schema)
 * while projections name them.
 */
static void
RefuseRenames(const EsProjectionCatalog *pc, Node *parsetree)
{
	Oid			nsp;
	Oid			fn = RenamedFunction(parsetree, &nsp);
	uint64		i;

	if (!OidIsValid(fn) && !OidIsValid(nsp))
		return;
	EsSpiConnect();
	EsProjectionExecute(pc, &FunctionsStatement, NULL, NULL, InvalidSnapshot);
	for (i = 0; i < SPI_processed; i++)
	{
		int			col;

		for (col = 2; col <= 3; col++)
		{
			char	   *signature = SPI_getvalue(SPI_tuptable->vals[i],
												 SPI_tuptable->tupdesc, col);
			Oid			used = signature ? EsResolveSignature(pc, signature) : InvalidOid;

			if (!OidIsValid(used) ||
				(used != fn && get_func_namespace(used) != nsp))
				continue;
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("cannot rename or move function %s because projection \"%s\" uses it",
							signature,
							SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1)),
					 errdetail("Projections name their functions by schema-qualified signature."),
					 errhint("Drop the projection with es_drop_projection, rename the function, then create the projection again.")));
		}
	}
	SPI_finish();
}

/*
 * es_projection_sql_drop is the event trigger that keeps projections from
 * pointing at dropped functions: dropping a handler or reset function with
 * CASCADE (or with its extension) drops the projection too; a plain DROP
 * FUNCTION of one is refused.  At ddl_command_start of ALTER FUNCTION,
 * ALTER SCHEMA and their kin, it refuses renaming or moving them.
 */
PG_FUNCTION_INFO_V1(es_projection_sql_drop);
Datum
es_projection_sql_drop(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	const EsCatalog *cat;
	const EsProjectionCatalog *pc;
	uint64		i;
	uint64		n;
	char	  **names;

	trigdata = EsCheckEventTriggerCall(fcinfo, "es_projection_sql_drop");
	/* pg_upgrade's restore of the schema renames and drops nothing of ours */
	if (IsBinaryUpgrade)
		PG_RETURN_NULL();
	cat = EsGetCatalogForExtension(true);
	if (cat == NULL)
		PG_RETURN_NULL();
	pc = EsGetProjectionCatalog(cat, true);
	if (pc == NULL)
		PG_RETURN_NULL();
	if (strcmp(trigdata->event, "ddl_command_start") == 0)
	{
		RefuseRenames(pc, trigdata->parsetree);
		PG_RETURN_NULL();
	}

	EsSpiConnect();
	EsProjectionExecute(pc, pc->version >= ES_VERSION_0_2 ?
						&DroppedStatement : &DroppedStatement_0_1,
						NULL, NULL, InvalidSnapshot);
	n = SPI_processed;
	if (n > 0 && !EsDropCascades(trigdata->parsetree))
	{
		bool		isnull;

		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot drop function %s because projection \"%s\" uses it",
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2),
						TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0],
														  SPI_tuptable->tupdesc,
														  1, &isnull))),
				 errhint("Drop the projection first with es_drop_projection, or use DROP ... CASCADE.")));
	}
	names = palloc(Max(n, 1) * sizeof(char *));
	for (i = 0; i < n; i++)
		names[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
	for (i = 0; i < n; i++)
	{
		if (i > 0 && strcmp(names[i], names[i - 1]) == 0)
			continue;
		ereport(NOTICE,
				(errmsg("drop cascades to projection \"%s\"", names[i])));
		(void) DeleteProjection(pc, names[i]);
	}
	SPI_finish();
	PG_RETURN_NULL();
}
