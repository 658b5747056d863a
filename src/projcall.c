/*-------------------------------------------------------------------------
 *
 * projcall.c
 *	  Calling a projection's handler: the one batch loop that inline
 *	  dispatch, async apply and replays (create, rebuild) use.
 *
 * The loop checks and looks up the handler once per cached projection,
 * names the projection and the event in error reports, and calls the
 * handler for each event as the projection's owner, with the search_path
 * pinned when the projection was created, as a security-restricted
 * operation (identity.c): nothing the handler does may outlive the call
 * under another identity.  Each call runs in a scratch memory context
 * that is reset after it.  Async batches also run under the handler
 * timeout, in one subtransaction whose error is handed back to the caller
 * (EsCallHandlersGuarded).
 *
 * IDENTIFICATION
 *	  src/projcall.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_proc.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timeout.h"

#include "common.h"
#include "projection.h"

/* es_pg.projection_handler_timeout: longest async batch of handler calls, ms */
int			es_projection_handler_timeout = 60000;

/* argument of the error context callback */
typedef struct HandlerErrorArg
{
	const char *name;
	int64		position;		/* 0: the reset function */
} HandlerErrorArg;

/* what EsCallHandlersGuarded hands to its subtransaction */
typedef struct GuardedBatch
{
	EsProjection *proj;
	EsEventBatch *batch;
	int			limit;
	int			timeout_ms;
	MemoryContext cxt;
	MemoryContext scratch;
	volatile int current;		/* the event being handled */
	bool		timed_out;		/* the handler timeout ended the batch */
} GuardedBatch;

/* the timeout that cancels a batch of handler calls that runs too long */
static TimeoutId handler_timeout_id = MAX_TIMEOUTS;
static volatile sig_atomic_t handler_timed_out = false;

/*
 * EsInitHandlerCalls defines es_pg.projection_handler_timeout; called from
 * _PG_init.
 */
void
EsInitHandlerCalls(void)
{
	DefineCustomIntVariable("es_pg.projection_handler_timeout",
							"Longest time one batch of an async projection's handler calls may run before it is canceled; 0 means no limit.",
							"A canceled batch counts as a handler error (SQLSTATE 57014): the event is retried, then the projection is parked. es_set_projection_timeout overrides it per projection.",
							&es_projection_handler_timeout,
							60000, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
}

/*
 * EsProjectionWants says whether an event type is one the projection
 * wants.
 */
bool
EsProjectionWants(const EsProjection *p, text *event_type)
{
	const char *data = VARDATA_ANY(event_type);
	int			len = VARSIZE_ANY_EXHDR(event_type);
	int			lo = 0;
	int			hi = p->ntypes - 1;

	if (p->ntypes == 0)
		return true;
	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		const char *s = p->types[mid];
		int			slen = strlen(s);
		int			c = memcmp(data, s, Min(len, slen));

		if (c == 0)
			c = (len > slen) - (len < slen);
		if (c == 0)
			return true;
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return false;
}

/*
 * CheckCallable raises an error unless the projection's owner still exists
 * and may execute fn.
 */
static void
CheckCallable(const EsProjection *p, Oid fn, const char *what,
			  const char *signature)
{
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(p->owner)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the role that created projection \"%s\" no longer exists",
						p->name),
				 errhint("Drop the projection with es_drop_projection and create it again.")));
	if (!SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(fn)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("the %s function %s of projection \"%s\" no longer exists",
						what, signature, p->name),
				 errhint("Drop the projection with es_drop_projection and create it again.")));
	EsCheckExecute(fn, p->owner);
}

/*
 * PrepareHandler checks the handler and looks it up for calls, once per
 * cached projection.
 */
static void
PrepareHandler(EsProjection *p, MemoryContext cxt)
{
	if (p->prepared)
		return;
	CheckCallable(p, p->handler, "handler", p->handler_name);
	fmgr_info_cxt(p->handler, &p->flinfo, cxt);
	p->prepared = true;
}

/*
 * HandlerErrorContext names the projection and the event in error reports.
 */
static void
HandlerErrorContext(void *arg)
{
	HandlerErrorArg *a = (HandlerErrorArg *) arg;

	if (a->position > 0)
		errcontext("projection \"%s\", event at global position %lld",
				   a->name, (long long) a->position);
	else
		errcontext("projection \"%s\", reset function", a->name);
}

/*
 * CallHandler calls handler(event).  The command counter is advanced so
 * that the next call sees what this one wrote, whatever its language.
 */
static void
CallHandler(EsProjection *p, Datum event)
{
	LOCAL_FCINFO(fcinfo, 1);

	InitFunctionCallInfoData(*fcinfo, &p->flinfo, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = event;
	fcinfo->args[0].isnull = false;
	(void) FunctionCallInvoke(fcinfo);
	CommandCounterIncrement();
}

/*
 * HandlerTimeoutHandler runs in the signal handler of the timeout: it asks
 * for a query cancel, as statement_timeout does, and says it was ours.
 */
static void
HandlerTimeoutHandler(void)
{
	handler_timed_out = true;
	QueryCancelPending = true;
	InterruptPending = true;
	SetLatch(MyLatch);
}

/*
 * StartHandlerTimeout arms the timeout of a batch (none for 0).
 */
static void
StartHandlerTimeout(int timeout_ms)
{
	handler_timed_out = false;
	if (timeout_ms <= 0)
		return;
	if (handler_timeout_id == MAX_TIMEOUTS)
		handler_timeout_id = RegisterTimeout(USER_TIMEOUT, HandlerTimeoutHandler);
	enable_timeout_after(handler_timeout_id, timeout_ms);
}

/*
 * StopHandlerTimeout disarms it.  A timeout that fired just as the batch
 * ended must not cancel what comes next.
 */
static void
StopHandlerTimeout(void)
{
	if (handler_timeout_id != MAX_TIMEOUTS)
		disable_timeout(handler_timeout_id, false);
	if (handler_timed_out)
	{
		QueryCancelPending = false;
		handler_timed_out = false;
	}
}

/*
 * HandlerLoop calls the projection's handler for nevents events in order,
 * event i being fetch(arg, i, &position), as the projection's owner, under
 * the handler timeout if "timed".  While the handler is looked up, errors
 * name the event at prepare_position (0: they say "reset function").  cxt
 * holds the handler's FmgrInfo; each call runs in scratch, which is reset
 * after it.  A handler error propagates.
 */
static void
HandlerLoop(EsProjection *p, EsEventFetch fetch, void *arg, int nevents,
			int64 prepare_position, bool timed, int timeout_ms,
			MemoryContext cxt, MemoryContext scratch)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	EsIdentity	id;
	HandlerErrorArg errarg;
	ErrorContextCallback errcallback;
	int			i;

	errarg.name = p->name;
	errarg.position = prepare_position;
	EsPushErrorContext(&errcallback, HandlerErrorContext, &errarg);
	PrepareHandler(p, cxt);
	if (timed)
		StartHandlerTimeout(timeout_ms);
	EsBecomeOwner(p->owner, p->search_path, false, &id);
	for (i = 0; i < nevents; i++)
	{
		Datum		event;

		MemoryContextSwitchTo(scratch);
		event = fetch(arg, i, &errarg.position);
		CallHandler(p, event);
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(scratch);
	}
	EsRestoreIdentity(&id);
	if (timed)
		StopHandlerTimeout();
	EsPopErrorContext(&errcallback);
}

/*
 * EsCallHandlers runs HandlerLoop without the timeout, for inline dispatch
 * and replays.
 */
void
EsCallHandlers(EsProjection *p, EsEventFetch fetch, void *arg, int nevents,
			   int64 prepare_position, MemoryContext cxt,
			   MemoryContext scratch)
{
	HandlerLoop(p, fetch, arg, nevents, prepare_position, false, 0, cxt,
				scratch);
}

/*
 * EsCallReset empties the projection's read model with its reset function.
 */
void
EsCallReset(EsProjection *p)
{
	FmgrInfo	flinfo;
	EsIdentity	id;
	HandlerErrorArg errarg;
	ErrorContextCallback errcallback;

	LOCAL_FCINFO(fcinfo, 0);

	if (p->reset_name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("projection \"%s\" has no reset function", p->name),
				 errdetail("A rebuild empties the read model with the reset function before it replays the events."),
				 errhint("Drop the projection and create it again with a reset function.")));
	CheckCallable(p, p->reset, "reset", p->reset_name);
	fmgr_info(p->reset, &flinfo);

	errarg.name = p->name;
	errarg.position = 0;
	EsPushErrorContext(&errcallback, HandlerErrorContext, &errarg);
	EsBecomeOwner(p->owner, p->search_path, false, &id);
	InitFunctionCallInfoData(*fcinfo, &flinfo, 0, InvalidOid, NULL, NULL);
	(void) FunctionCallInvoke(fcinfo);
	CommandCounterIncrement();
	EsRestoreIdentity(&id);
	EsPopErrorContext(&errcallback);
}

/*
 * FetchBatchEvent is the EsEventFetch of a batch collected from the feed.
 */
static Datum
FetchBatchEvent(void *arg, int i, int64 *position)
{
	GuardedBatch *g = (GuardedBatch *) arg;

	g->current = i;
	*position = g->batch->positions[i];
	return g->batch->events[i];
}

/*
 * RunGuardedBatch is the body of EsCallHandlersGuarded's subtransaction.
 */
static void
RunGuardedBatch(void *arg)
{
	GuardedBatch *g = (GuardedBatch *) arg;

	HandlerLoop(g->proj, FetchBatchEvent, g, g->limit,
				g->limit > 0 ? g->batch->positions[0] : 0, true,
				g->timeout_ms, g->cxt, g->scratch);
}

/*
 * StopGuardedBatch runs first when the batch failed: the timeout must not
 * fire while the error is handled, and whether it was ours is noted.
 */
static void
StopGuardedBatch(void *arg)
{
	GuardedBatch *g = (GuardedBatch *) arg;

	g->timed_out = handler_timed_out;
	if (handler_timeout_id != MAX_TIMEOUTS)
		disable_timeout(handler_timeout_id, false);
	handler_timed_out = false;
}

/*
 * EsCallHandlersGuarded calls the handler for the first "limit" events of
 * the batch inside one subtransaction, under the projection's handler
 * timeout.  On error it rolls the subtransaction back and returns false,
 * with the index of the failing event and a copy of the error (in cxt).
 * One subtransaction per batch, not per event, keeps big batches clear of
 * subtransaction overflow.
 */
bool
EsCallHandlersGuarded(EsProjection *p, EsEventBatch *b, int limit, int *fail,
					  ErrorData **edata, MemoryContext cxt)
{
	GuardedBatch g;
	ErrorData  *e;

	g.proj = p;
	g.batch = b;
	g.limit = limit;
	g.timeout_ms = p->has_timeout ? p->timeout_ms :
		es_projection_handler_timeout;
	g.cxt = cxt;
	g.scratch = AllocSetContextCreate(CurrentMemoryContext,
									  "es_pg projection events",
									  ALLOCSET_DEFAULT_SIZES);
	g.current = 0;
	g.timed_out = false;
	e = EsTrySubtransaction(RunGuardedBatch, StopGuardedBatch, &g, cxt);
	if (e != NULL)
	{
		*edata = e;

		/*
		 * Our timeout is the handler's failure, like any error it raises.
		 * In the worker so is any other cancel (a handler raising 57014
		 * itself, or es_drop_projection taking the projection over, which
		 * then discards the record); in a session, a cancel is the user's
		 * and stops es_apply_projections.
		 */
		if (e->sqlerrcode == ERRCODE_QUERY_CANCELED && g.timed_out)
			e->message =
				MemoryContextStrdup(cxt,
									psprintf("the projection's handler calls were canceled after %d ms (its handler timeout)",
											 g.timeout_ms));
		else if (e->sqlerrcode == ERRCODE_QUERY_CANCELED &&
				 !EsIsBackgroundWorker())
			ReThrowError(e);
		*fail = g.current;
	}
	MemoryContextDelete(g.scratch);
	return e == NULL;
}

/*
 * EsCollectEvent is the EsReadFeed callback that gathers the events of one
 * batch for a projection.
 */
bool
EsCollectEvent(HeapTuple tuple, TupleDesc tupdesc, void *arg)
{
	EsEventBatch *b = (EsEventBatch *) arg;
	MemoryContext oldcxt;
	bool		isnull;
	int64		position;

	position = DatumGetInt64(heap_getattr(tuple, Anum_es_events_global_position,
										  tupdesc, &isnull));
	if (position > b->upto)
		return false;

	/*
	 * Handlers see events in their current shape, and the type filter
	 * applies to the type an upcaster may have renamed (evolution.c).
	 */
	if (!OidIsValid(b->namespace_oid))
	{
		b->namespace_oid = get_rel_namespace(tuple->t_tableOid);
		b->upcast = EsUpcastingActive(b->namespace_oid);
	}
	oldcxt = MemoryContextSwitchTo(b->cxt);
	if (b->upcast)
		tuple = EsUpcastEventTupleFor(b->namespace_oid, tuple, tupdesc,
									  b->proj->owner);	/* the handler's grant */
	if (b->proj->ntypes == 0 ||
		EsProjectionWants(b->proj,
						  DatumGetTextPP(heap_getattr(tuple, Anum_es_events_event_type,
													  tupdesc, &isnull))))
	{
		if (b->nevents >= b->maxevents)
		{
			b->maxevents = Max(64, b->maxevents * 2);
			if (b->events == NULL)
			{
				b->events = palloc(b->maxevents * sizeof(Datum));
				b->positions = palloc(b->maxevents * sizeof(int64));
				b->walk_index = palloc(b->maxevents * sizeof(int64));
			}
			else
			{
				b->events = repalloc(b->events, b->maxevents * sizeof(Datum));
				b->positions = repalloc(b->positions,
										b->maxevents * sizeof(int64));
				b->walk_index = repalloc(b->walk_index,
										 b->maxevents * sizeof(int64));
			}
		}
		b->events[b->nevents] = heap_copy_tuple_as_datum(tuple, tupdesc);
		b->positions[b->nevents] = position;
		b->walk_index[b->nevents] = b->walked;
		b->nevents++;
	}
	MemoryContextSwitchTo(oldcxt);
	b->last_position = position;
	b->walked++;
	return true;
}

/*
 * EsInitBatch prepares an empty batch for projection p.
 */
void
EsInitBatch(EsEventBatch *b, EsProjection *p, MemoryContext cxt, int64 from,
			int64 upto)
{
	memset(b, 0, sizeof(EsEventBatch));
	b->proj = p;
	b->cxt = cxt;
	b->upto = upto;
	b->last_position = from;
}

/* where a replay is, for FetchReplayEvent */
typedef struct ReplayState
{
	EsEventBatch *batch;
	int			progress_slot;
	int64		walked;			/* events walked before this batch */
} ReplayState;

/*
 * FetchReplayEvent is the EsEventFetch of a replay: the batch's event,
 * after recording the progress.
 */
static Datum
FetchReplayEvent(void *arg, int i, int64 *position)
{
	ReplayState *r = (ReplayState *) arg;

	EsProgressUpdate(r->progress_slot, r->walked + r->batch->walk_index[i]);
	*position = r->batch->positions[i];
	return r->batch->events[i];
}

/*
 * EsReplayProjection calls the handler for every event after "from" up to
 * "upto", in global order, batch_size events at a time, without a
 * subtransaction: a handler error fails the caller.  Progress goes to the
 * shared slot.  Returns the handler calls; *last is the last position
 * walked.
 */
int64
EsReplayProjection(const EsCatalog *cat, EsProjection *p, int64 from,
				   int64 upto, int batch_size, int progress_slot,
				   int64 *last, MemoryContext cxt)
{
	int64		calls = 0;
	int64		walked = 0;
	int64		position = from;
	MemoryContext batch_cxt;
	MemoryContext scratch;

	batch_cxt = AllocSetContextCreate(CurrentMemoryContext,
									  "es_pg replay batch",
									  ALLOCSET_DEFAULT_SIZES);
	scratch = AllocSetContextCreate(CurrentMemoryContext,
									"es_pg replay event",
									ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		EsEventBatch b;
		ReplayState r;

		EsInitBatch(&b, p, batch_cxt, position, upto);
		(void) EsReadFeed(cat, position, batch_size, EsCollectEvent, &b);
		if (b.walked == 0)
			break;

		if (b.nevents > 0)
		{
			r.batch = &b;
			r.progress_slot = progress_slot;
			r.walked = walked;
			EsCallHandlers(p, FetchReplayEvent, &r, b.nevents, 0, cxt,
						   scratch);
			calls += b.nevents;
		}

		walked += b.walked;
		position = b.last_position;
		EsProgressUpdate(progress_slot, walked);
		MemoryContextReset(batch_cxt);
		CHECK_FOR_INTERRUPTS();
	}
	MemoryContextDelete(batch_cxt);
	MemoryContextDelete(scratch);
	*last = position;
	return calls;
}
