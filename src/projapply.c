/*-------------------------------------------------------------------------
 *
 * projapply.c
 *	  Async apply: one batch of one async projection at a time, in global
 *	  feed order, through the member of its subscription (subscription.c),
 *	  acknowledged or failed in the same transaction.
 *
 * The worker (worker.c) and es_apply_projections apply batches.  An
 * applier holds a lock on the projection's name for its batch (the
 * appliers' lock), so that es_drop_projection, es_rebuild_projection and
 * es_resume_projection can find it, cancel it and take the projection over
 * (EsTakeOverProjection).
 *
 * IDENTIFICATION
 *	  src/projapply.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "common.h"
#include "projection.h"
#include "subscription.h"

/* es_pg.projection_retries: attempts on one event before parking */
int			es_projection_retries = 3;

/* es_pg.projection_batch_size: events per async transaction and rebuild step */
int			es_projection_batch_size = 1000;

/* the outcome of one async batch */
typedef struct ApplyResult
{
	int64		applied;		/* handler calls that took effect */
	int64		walked;			/* events the checkpoint moved over */
	bool		failed;
	bool		more;			/* the batch was full: more may be pending */
} ApplyResult;

/*
 * The definition and the checkpoint row of one projection, locked (FOR
 * UPDATE, or SKIP LOCKED for the worker).  These and the checkpoint
 * updates run once per batch and are kept prepared.
 */
#define BATCH_COLUMNS ", c.position, c.parked, c.retries, c.error_position" \
	" FROM @extschema@.es_projection_checkpoints c" \
	" JOIN @extschema@.es_projections p ON p.name OPERATOR(pg_catalog.=) c.name" \
	" WHERE c.name OPERATOR(pg_catalog.=) $1" \
	" FOR UPDATE OF c"

static const EsStatement BatchStatement = {
	"SELECT " ES_PROJECTION_COLUMNS BATCH_COLUMNS,
	1, {TEXTOID}, true
};

static const EsStatement BatchSkipLockedStatement = {
	"SELECT " ES_PROJECTION_COLUMNS BATCH_COLUMNS " SKIP LOCKED",
	1, {TEXTOID}, true
};

static const EsStatement BatchStatement_0_1 = {
	"SELECT " ES_PROJECTION_COLUMNS_0_1 BATCH_COLUMNS,
	1, {TEXTOID}, true
};

static const EsStatement BatchSkipLockedStatement_0_1 = {
	"SELECT " ES_PROJECTION_COLUMNS_0_1 BATCH_COLUMNS " SKIP LOCKED",
	1, {TEXTOID}, true
};

/* the checkpoint of a failed batch: just before the failing event */
static const EsStatement FailStatement = {
	"UPDATE @extschema@.es_projection_checkpoints SET"
	" updated_at = CASE WHEN $2 OPERATOR(pg_catalog.>) position"
	" THEN pg_catalog.clock_timestamp() ELSE updated_at END,"
	" position = $2, retries = $3, parked = $4,"
	" error_position = $5, error_sqlstate = $6,"
	" error_message = $7, error_at = pg_catalog.clock_timestamp()"
	" WHERE name OPERATOR(pg_catalog.=) $1",
	7, {TEXTOID, INT8OID, INT4OID, BOOLOID, INT8OID, TEXTOID, TEXTOID}, true
};

/* the checkpoint of a batch that went through */
static const EsStatement AdvanceStatement = {
	"UPDATE @extschema@.es_projection_checkpoints SET"
	" position = $2, updated_at = pg_catalog.clock_timestamp(),"
	" retries = CASE WHEN error_position OPERATOR(pg_catalog.<=) $2"
	" THEN 0 ELSE retries END,"
	" error_sqlstate = CASE WHEN error_position OPERATOR(pg_catalog.<=) $2"
	" THEN NULL ELSE error_sqlstate END,"
	" error_message = CASE WHEN error_position OPERATOR(pg_catalog.<=) $2"
	" THEN NULL ELSE error_message END,"
	" error_at = CASE WHEN error_position OPERATOR(pg_catalog.<=) $2"
	" THEN NULL ELSE error_at END,"
	" error_position = CASE WHEN error_position OPERATOR(pg_catalog.<=) $2"
	" THEN NULL ELSE error_position END"
	" WHERE name OPERATOR(pg_catalog.=) $1",
	2, {TEXTOID, INT8OID}, true
};

/*
 * The definition of a projection whose member is locked (0.2.0), read once
 * per batch.
 */
static const EsStatement DefinitionStatement = {
	"SELECT " ES_PROJECTION_COLUMNS
	" FROM @extschema@.es_projections p"
	" WHERE p.name OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}, true
};

/*
 * The async projections that have work, once per worker round (0.2.0):
 * behind the head, or parked events marked for replay.  One whose handler
 * failed on an event waits before the next attempt: es_pg.projection_naptime
 * ($1, milliseconds) times 2^(failed attempts - 1), at most five minutes.
 */
static const EsStatement PendingMembersStatement = {
	"SELECT s.name FROM @extschema@.es_subscriptions s"
	" JOIN @extschema@.es_subscription_members m"
	" ON m.subscription OPERATOR(pg_catalog.=) s.name"
	" WHERE s.projection IS NOT NULL"
	" AND (m.checkpoint OPERATOR(pg_catalog.<) (SELECT e.global_position"
	"  FROM @extschema@.es_events e ORDER BY e.global_position DESC LIMIT 1)"
	"  OR EXISTS (SELECT 1 FROM @extschema@.es_subscription_parked k"
	"   WHERE k.subscription OPERATOR(pg_catalog.=) s.name AND k.replay))"
	" AND NOT (m.delivered_to OPERATOR(pg_catalog.>) m.checkpoint"
	"  AND m.last_error_at IS NOT NULL"
	"  AND m.last_error_at OPERATOR(pg_catalog.>)"
	"  (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-)"
	"  LEAST(pg_catalog.make_interval(secs =>"
	"  ($1::pg_catalog.float8 OPERATOR(pg_catalog./) 1000.0::pg_catalog.float8)"
	"  OPERATOR(pg_catalog.*) pg_catalog.power(2::pg_catalog.float8,"
	"  (LEAST(GREATEST(m.attempts, 1), 30) OPERATOR(pg_catalog.-) 1)::pg_catalog.float8)),"
	"  '5 minutes'::pg_catalog.interval)))"
	" ORDER BY s.name",
	1, {INT4OID}, true
};

/* the async projections that lag behind the head; once per worker round */
static const EsStatement PendingStatement = {
	"SELECT c.name FROM @extschema@.es_projection_checkpoints c"
	" JOIN @extschema@.es_projections p ON p.name OPERATOR(pg_catalog.=) c.name"
	" WHERE p.mode OPERATOR(pg_catalog.=) 'async' AND NOT c.parked"
	" AND c.position OPERATOR(pg_catalog.<) (SELECT e.global_position"
	" FROM @extschema@.es_events e ORDER BY e.global_position DESC LIMIT 1)"
	" ORDER BY c.name",
	0, {InvalidOid}, true
};

static const EsStatement AsyncNamesStatement = {
	"SELECT p.name FROM @extschema@.es_projections p"
	" WHERE p.mode OPERATOR(pg_catalog.=) 'async'"
	" ORDER BY p.name",
	0, {InvalidOid}, false
};

/*
 * EsInitApply defines the settings of async apply; called from _PG_init.
 */
void
EsInitApply(void)
{
	DefineCustomIntVariable("es_pg.projection_retries",
							"Attempts an async projection makes on a failing event before it is parked.",
							NULL,
							&es_projection_retries,
							3, 1, 1000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("es_pg.projection_batch_size",
							"Events an async projection applies per transaction, and a rebuild per step.",
							NULL,
							&es_projection_batch_size,
							1000, 1, 1000000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
}

/*
 * ApplyLockTag names the lock an applier of one projection holds for its
 * batch (a worker, or es_apply_projections), so that it can be found.
 */
static void
ApplyLockTag(LOCKTAG *tag, const char *name)
{
	uint64		hash = hash_bytes_extended((const unsigned char *) name,
										   strlen(name), 0);

	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) (hash >> 32),
						 (uint32) hash, ES_LOCKTAG_APPLY);
}

/*
 * LockApplier takes that lock until the end of the transaction; false when
 * dont_wait and another applier holds it.
 */
static bool
LockApplier(const char *name, bool dont_wait)
{
	LOCKTAG		tag;

	ApplyLockTag(&tag, name);
	return LockAcquire(&tag, ExclusiveLock, false, dont_wait) !=
		LOCKACQUIRE_NOT_AVAIL;
}

/*
 * EsTakeOverProjection keeps appliers of a projection away for the rest of
 * the transaction, for dropping, rebuilding or resuming it.  An applier at
 * work is asked to cancel its batch (as pg_cancel_backend does), so that a
 * handler that never returns cannot hold the command up; the batch rolls
 * back and records nothing.
 */
void
EsTakeOverProjection(const char *name)
{
	LOCKTAG		tag;
	VirtualTransactionId *holders;
	int			i;

	if (LockApplier(name, true))
		return;
	ApplyLockTag(&tag, name);
	holders = GetLockConflicts(&tag, ExclusiveLock, NULL);
	for (i = 0; VirtualTransactionIdIsValid(holders[i]); i++)
	{
		PGPROC	   *proc = EsVirtualXactProc(holders[i]);

		if (proc != NULL && proc->pid != 0 && proc->pid != MyProcPid)
			(void) kill(proc->pid, SIGINT);
	}
	(void) LockApplier(name, false);
}

/*
 * ApplyGoodPrefix applies the batch's events; when one fails it applies the
 * events before it again (EsCallHandlersGuarded), until a prefix
 * commits (or none is left).  Returns how many were applied; *failed_at and
 * *edata are set for the event that failed last, left alone when none did.
 */
static int
ApplyGoodPrefix(EsProjection *p, EsEventBatch *b, MemoryContext cxt,
				int *failed_at, ErrorData **edata)
{
	int			limit = b->nevents;

	while (limit > 0)
	{
		int			fail = 0;
		ErrorData  *e = NULL;

		if (EsCallHandlersGuarded(p, b, limit, &fail, &e, cxt))
			break;
		*failed_at = fail;
		*edata = e;
		limit = fail;
	}
	return limit;
}

/*
 * ApplyBatch applies at most max_events events of one async projection,
 * from its checkpoint on, in the current transaction, and moves the
 * checkpoint in the same transaction.
 *
 * The checkpoint row is locked first (FOR UPDATE, or SKIP LOCKED for the
 * worker), so two appliers never apply the same events.  A handler error
 * rolls back the batch's subtransaction; the events before the failing one
 * are then applied again (the "good prefix"), the checkpoint stops just
 * before the failing event, and the error is recorded there.  After
 * es_pg.projection_retries failures on the same event the projection is
 * parked until es_resume_projection.
 */
static void
ApplyBatch(const EsCatalog *cat, const EsProjectionCatalog *pc,
		   const char *name, bool skip_locked, int64 max_events, int elevel,
		   ApplyResult *res)
{
	MemoryContext cxt;
	MemoryContext oldcxt = CurrentMemoryContext;
	EsProjection p;
	EsEventBatch b;
	const EsStatement *stmt;
	Datum		values[8];
	HeapTuple	row;
	TupleDesc	desc;
	bool		isnull;
	int64		position;
	bool		parked;
	int			retries;
	int64		error_position;
	int			limit;
	int			failed_at = -1;
	ErrorData  *edata = NULL;
	int64		new_position;

	memset(res, 0, sizeof(ApplyResult));
	if (!LockApplier(name, skip_locked))
		return;
	cxt = AllocSetContextCreate(oldcxt, "es_pg projection batch",
								ALLOCSET_DEFAULT_SIZES);
	EsSpiConnect();

	if (pc->version >= ES_VERSION_0_2)
		stmt = skip_locked ? &BatchSkipLockedStatement : &BatchStatement;
	else
		stmt = skip_locked ? &BatchSkipLockedStatement_0_1 : &BatchStatement_0_1;
	values[0] = CStringGetTextDatum(name);
	EsProjectionExecute(pc, stmt, values, NULL, InvalidSnapshot);
	if (SPI_processed == 0)
	{
		/* dropped, or another applier holds it */
		SPI_finish();
		MemoryContextDelete(cxt);
		return;
	}
	EsProjectionFromRow(pc, &p, 0, cxt);
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	position = DatumGetInt64(SPI_getbinval(row, desc, ES_PROJECTION_NCOLUMNS + 1, &isnull));
	parked = DatumGetBool(SPI_getbinval(row, desc, ES_PROJECTION_NCOLUMNS + 2, &isnull));
	retries = DatumGetInt32(SPI_getbinval(row, desc, ES_PROJECTION_NCOLUMNS + 3, &isnull));
	error_position = DatumGetInt64(SPI_getbinval(row, desc, ES_PROJECTION_NCOLUMNS + 4, &isnull));
	if (isnull)
		error_position = -1;
	if (!p.async || parked)
	{
		SPI_finish();
		MemoryContextDelete(cxt);
		return;
	}

	EsInitBatch(&b, &p, cxt, position, PG_INT64_MAX);
	(void) EsReadFeed(cat, position, max_events, EsCollectEvent, &b);
	if (b.walked == 0)
	{
		SPI_finish();
		MemoryContextDelete(cxt);
		return;
	}

	limit = ApplyGoodPrefix(&p, &b, cxt, &failed_at, &edata);

	res->applied = limit;
	if (failed_at >= 0)
	{
		int64		fail_position = b.positions[failed_at];
		char		sqlstate[6];
		bool		now_parked;

		new_position = fail_position - 1;
		res->failed = true;
		res->walked = b.walk_index[failed_at];
		retries = (error_position == fail_position) ? retries + 1 : 1;
		now_parked = retries >= es_projection_retries;
		memcpy(sqlstate, unpack_sql_state(edata->sqlerrcode), 6);

		values[1] = Int64GetDatum(new_position);
		values[2] = Int32GetDatum(retries);
		values[3] = BoolGetDatum(now_parked);
		values[4] = Int64GetDatum(fail_position);
		values[5] = CStringGetTextDatum(sqlstate);
		values[6] = CStringGetTextDatum(edata->message ? edata->message : "");
		EsProjectionExecute(pc, &FailStatement, values, NULL, InvalidSnapshot);

		if (now_parked)
			ereport(elevel,
					(errmsg("projection \"%s\" is parked after %d failed attempts",
							p.name, retries),
					 errdetail("The handler failed on the event at global position %lld with SQLSTATE %s: %s",
							   (long long) fail_position, sqlstate,
							   edata->message ? edata->message : ""),
					 errhint("Fix the handler, then call es_resume_projection('%s').",
							 p.name)));
		else
			ereport(elevel,
					(errmsg("projection \"%s\" failed and will retry", p.name),
					 errdetail("The handler failed on the event at global position %lld with SQLSTATE %s: %s (attempt %d of %d).",
							   (long long) fail_position, sqlstate,
							   edata->message ? edata->message : "",
							   retries, es_projection_retries)));
	}
	else
	{
		new_position = b.last_position;
		res->walked = b.walked;
		res->more = b.walked >= max_events;

		/* an error recorded on an event now behind us is history */
		values[1] = Int64GetDatum(new_position);
		EsProjectionExecute(pc, &AdvanceStatement, values, NULL,
							InvalidSnapshot);
	}
	if (new_position > position)
		EsCheckpointAdvanced();

	SPI_finish();
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
}

/*
 * ReplayParked hands the parked events of a projection marked for replay
 * (es_replay_parked) to the handler, one at a time, each in its own
 * guarded subtransaction: one that goes through leaves the parked events,
 * one that fails is parked again with one more attempt.
 */
static void
ReplayParked(const EsCatalog *cat, EsProjection *p, int64 max_events,
			 int elevel, MemoryContext cxt, ApplyResult *res)
{
	int			max = (int) Min(max_events, (int64) 1000);
	int64	   *positions = palloc(max * sizeof(int64));
	int32	   *attempts = palloc(max * sizeof(int32));
	int			n = EsProjectionReplays(cat, p->name, max, positions, attempts);
	int			i;

	for (i = 0; i < n; i++)
	{
		EsEventBatch b;
		HeapTuple	tuple;
		TupleDesc	tupdesc;
		int			fail = 0;
		ErrorData  *edata = NULL;
		bool		ok = true;

		EsInitBatch(&b, p, cxt, positions[i] - 1, PG_INT64_MAX);
		if (!EsFetchEventAt(cat, positions[i], &tuple, &tupdesc))
		{
			/*
			 * Archived since it was parked: not skipped in silence, it stays
			 * parked with the reason (es_read_archived reads it).
			 */
			EsProjectionReplayed(cat, p->name, positions[i], false,
								 "the event is no longer in es_events (archived since it was parked)");
			res->failed = true;
			continue;
		}
		tuple->t_tableOid = cat->events_relid;
		(void) EsCollectEvent(tuple, tupdesc, &b);
		if (b.nevents > 0)
			ok = EsCallHandlersGuarded(p, &b, 1, &fail, &edata, cxt);
		EsProjectionReplayed(cat, p->name, positions[i], ok,
							 ok ? NULL : (edata->message ? edata->message : ""));
		if (ok)
			res->applied += b.nevents;
		else
		{
			res->failed = true;
			ereport(elevel,
					(errmsg("projection \"%s\" failed again on a parked event, which stays parked",
							p->name),
					 errdetail("The handler failed on the event at global position %lld with SQLSTATE %s: %s (attempt %d).",
							   (long long) positions[i],
							   unpack_sql_state(edata->sqlerrcode),
							   edata->message ? edata->message : "",
							   attempts[i] + 1)));
		}
	}
	res->more = (n == max);
}

/*
 * ApplyMemberBatch applies at most max_events events of one async
 * projection of a 0.2.0 install: the projection is a subscription whose
 * consumer is its handler (subscription.c).  The member row is locked
 * first (FOR UPDATE, or SKIP LOCKED for the worker), so two appliers never
 * apply the same events.  Parked events marked for replay go first, then
 * the event that failed last (delivered_to after the checkpoint) alone,
 * as es_poll hands it out again; otherwise the walk goes on from the
 * checkpoint.  A handler error rolls back the batch's subtransaction; the
 * events before the failing one are applied again (the "good prefix") and
 * acknowledged, and the failure is counted as es_nack counts it: at
 * max_attempts the event is parked and the checkpoint passes it.  Every
 * outcome is recorded in the transaction of the handler's writes.
 */
static void
ApplyMemberBatch(const EsCatalog *cat, const EsProjectionCatalog *pc,
				 const char *name, bool skip_locked, int64 max_events,
				 int elevel, ApplyResult *res)
{
	MemoryContext cxt;
	MemoryContext oldcxt = CurrentMemoryContext;
	EsProjection p;
	EsEventBatch b;
	EsMemberState st;
	Datum		values[1];
	int64		upto = PG_INT64_MAX;
	int32		attempt = 1;
	int			limit;
	int			failed_at = -1;
	ErrorData  *edata = NULL;

	memset(res, 0, sizeof(ApplyResult));
	if (!LockApplier(name, skip_locked))
		return;
	cxt = AllocSetContextCreate(oldcxt, "es_pg projection batch",
								ALLOCSET_DEFAULT_SIZES);
	EsSpiConnect();
	if (!EsLockProjectionMember(cat, name, skip_locked, &st))
	{
		/* dropped, inline, or another applier holds it */
		SPI_finish();
		MemoryContextDelete(cxt);
		return;
	}
	values[0] = CStringGetTextDatum(name);
	EsProjectionExecute(pc, &DefinitionStatement, values, NULL,
						InvalidSnapshot);
	if (SPI_processed == 0)
	{
		SPI_finish();
		MemoryContextDelete(cxt);
		return;
	}
	EsProjectionFromRow(pc, &p, 0, cxt);

	if (st.replay_pending)
	{
		ReplayParked(cat, &p, max_events, elevel, cxt, res);
		SPI_finish();
		MemoryContextSwitchTo(oldcxt);
		MemoryContextDelete(cxt);
		return;
	}
	if (st.delivered_to > st.checkpoint)
	{
		/* the event that failed, again, and nothing after it */
		upto = st.delivered_to;
		attempt = st.attempts + 1;
	}

	EsInitBatch(&b, &p, cxt, st.checkpoint, upto);
	(void) EsWalkSubscriptionFeed(cat, NULL, st.checkpoint, max_events,
								  EsCollectEvent, &b, NULL);
	if (b.walked == 0)
	{
		/*
		 * The event that failed is gone (archived): as es_poll does, the
		 * checkpoint passes it.
		 */
		if (upto != PG_INT64_MAX)
		{
			EsProjectionApplied(cat, name, upto);
			res->more = true;
		}
		SPI_finish();
		MemoryContextDelete(cxt);
		return;
	}

	limit = ApplyGoodPrefix(&p, &b, cxt, &failed_at, &edata);

	res->applied = limit;
	if (failed_at >= 0)
	{
		int64		fail_position = b.positions[failed_at];
		int32		fail_attempt = (fail_position == st.delivered_to &&
									st.delivered_to > st.checkpoint) ?
			attempt : 1;
		char		sqlstate[6];
		const char *message = edata->message ? edata->message : "";
		bool		parked;

		res->failed = true;
		res->walked = b.walk_index[failed_at];
		memcpy(sqlstate, unpack_sql_state(edata->sqlerrcode), 6);
		parked = EsProjectionFailed(cat, name, fail_position, fail_attempt,
									sqlstate, message);
		if (parked)
			ereport(elevel,
					(errmsg("projection \"%s\" parked an event after %d failed attempts",
							p.name, fail_attempt),
					 errdetail("The handler failed on the event at global position %lld with SQLSTATE %s: %s",
							   (long long) fail_position, sqlstate, message),
					 errhint("The projection goes on after it.  Fix the handler, then call es_replay_parked('%s') to apply it.",
							 p.name)));
		else
			ereport(elevel,
					(errmsg("projection \"%s\" failed and will retry", p.name),
					 errdetail("The handler failed on the event at global position %lld with SQLSTATE %s: %s (attempt %d of %d).",
							   (long long) fail_position, sqlstate, message,
							   fail_attempt, st.max_attempts)));
		if (parked || fail_position - 1 > st.checkpoint)
			EsCheckpointAdvanced();
		if (parked)
		{
			/* dealt with: the events after it are next */
			res->failed = false;
			res->more = true;
		}
	}
	else
	{
		res->walked = b.walked;
		res->more = b.walked >= max_events || upto != PG_INT64_MAX;
		EsProjectionApplied(cat, name, b.last_position);
		if (b.last_position > st.checkpoint)
			EsCheckpointAdvanced();
	}

	SPI_finish();
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
}

/*
 * EsApplyProjectionBatch applies one batch (es_pg.projection_batch_size
 * events) of one async projection for the worker and returns the handler
 * calls that took effect.  *more says whether the batch was full.
 */
int64
EsApplyProjectionBatch(const EsCatalog *cat, const char *name,
					   bool skip_locked, int elevel, bool *more)
{
	const EsProjectionCatalog *pc = EsGetProjectionCatalog(cat, false);
	ApplyResult res;

	if (pc->version >= ES_VERSION_0_2)
		ApplyMemberBatch(cat, pc, name, skip_locked, es_projection_batch_size,
						 elevel, &res);
	else
		ApplyBatch(cat, pc, name, skip_locked, es_projection_batch_size,
				   elevel, &res);
	*more = res.more;
	return res.applied;
}

/*
 * EsPendingAsyncProjections returns the names of the async projections that
 * are not parked and lag behind the head, in the caller's memory context.
 */
List *
EsPendingAsyncProjections(const EsCatalog *cat, int retry_delay_ms)
{
	const EsProjectionCatalog *pc = EsGetProjectionCatalog(cat, true);
	MemoryContext oldcxt = CurrentMemoryContext;
	List	   *names = NIL;
	Datum		values[1];
	uint64		i;

	if (pc == NULL)
		return NIL;
	EsSpiConnect();
	values[0] = Int32GetDatum(retry_delay_ms);
	if (pc->version >= ES_VERSION_0_2)
		EsProjectionExecute(pc, &PendingMembersStatement, values, NULL,
							InvalidSnapshot);
	else
		EsProjectionExecute(pc, &PendingStatement, NULL, NULL,
							InvalidSnapshot);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i],
									  SPI_tuptable->tupdesc, 1, &isnull);
		MemoryContext spicxt = MemoryContextSwitchTo(oldcxt);

		names = lappend(names, TextDatumGetCString(d));
		MemoryContextSwitchTo(spicxt);
	}
	SPI_finish();
	return names;
}

/*
 * es_apply_projections applies the pending events of one async projection,
 * or of all of them (name NULL), now, in the caller's transaction.  At most
 * max_events events per projection (NULL: all pending).  Returns the
 * number of handler calls that took effect.  Handler errors are recorded
 * on the projection (and reported as warnings), not raised.
 */
PG_FUNCTION_INFO_V1(es_apply_projections);
Datum
es_apply_projections(PG_FUNCTION_ARGS)
{
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	const EsProjectionCatalog *pc = EsGetProjectionCatalog(cat, false);
	int64		max_events = PG_INT64_MAX;
	List	   *names = NIL;
	ListCell   *lc;
	int64		total = 0;

	if (!PG_ARGISNULL(1))
	{
		max_events = PG_GETARG_INT64(1);
		if (max_events < 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("max_events must be positive"),
					 errhint("Pass NULL for no limit.")));
	}

	EsSpiConnect();
	if (!PG_ARGISNULL(0))
	{
		char	   *name = EsProjectionNameArgument(fcinfo, 0);

		if (!EsProjectionIsAsync(pc, name, InvalidSnapshot))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("projection \"%s\" is inline", name),
					 errdetail("Inline projections are applied by each append, in its transaction.")));
		names = list_make1(name);
	}
	else
	{
		uint64		i;

		EsProjectionExecute(pc, &AsyncNamesStatement, NULL, NULL,
							InvalidSnapshot);
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[i],
										  SPI_tuptable->tupdesc, 1, &isnull);

			names = lappend(names, TextDatumGetCString(d));
		}
	}

	foreach(lc, names)
	{
		int64		remaining = max_events;
		ApplyResult res;

		do
		{
			if (pc->version >= ES_VERSION_0_2)
				ApplyMemberBatch(cat, pc, (char *) lfirst(lc), false,
								 Min(remaining, (int64) es_projection_batch_size),
								 WARNING, &res);
			else
				ApplyBatch(cat, pc, (char *) lfirst(lc), false,
						   Min(remaining, (int64) es_projection_batch_size),
						   WARNING, &res);
			total += res.applied;
			remaining -= res.walked;
			CHECK_FOR_INTERRUPTS();
		} while (res.more && !res.failed && remaining > 0);
	}
	SPI_finish();
	PG_RETURN_INT64(total);
}
