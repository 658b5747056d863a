/*-------------------------------------------------------------------------
 *
 * projection.c
 *	  Projections: user functions that turn events into read models.
 *
 * A projection is a handler function, handler(event es_events) RETURNS
 * void, registered in es_projections with the event types it wants.  It
 * runs in one of two modes:
 *
 *	inline	es_events' AFTER INSERT FOR EACH STATEMENT trigger
 *			(es_dispatch_inline) calls the handlers inside the appending
 *			transaction, once per es_append or es_append_batch call, with
 *			the rows that call inserted (EsCurrentAppend).  The read model
 *			commits with the events or not at all.
 *
 *	async	after commit, in global feed order (EsReadFeed, which never
 *			skips an event that commits late), a batch at a time; the
 *			projection's row in es_projection_checkpoints is updated in the
 *			transaction that changed the read model, so each event takes
 *			effect exactly once.  A background worker (worker.c) or
 *			es_apply_projections does the applying.
 *
 * Handlers run with the rights of the role that created the projection and
 * with the search_path it had then (pg_temp last), as a SECURITY DEFINER
 * function would: an appender needs no privilege on read-model tables and
 * cannot steer the handler through its own search_path.
 *
 * Lock order: es_projections (ShareRowExclusiveLock, create and drop), then
 * the projection's checkpoint row (FOR UPDATE), then es_events
 * (ExclusiveLock, while an inline projection is created or rebuilt, so that
 * no append can commit between the replayed history and the projection
 * becoming visible).
 *
 * IDENTIFICATION
 *	  src/projection.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "common/hashfn.h"
#include "common/int.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parse_func.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/procarray.h"
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
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/wait_event.h"

#include "es_pg.h"

/* es_pg.projection_retries: attempts on one event before parking */
int			es_projection_retries = 3;

/* es_pg.projection_batch_size: events per async transaction and rebuild step */
int			es_projection_batch_size = 1000;

/* es_pg.projection_handler_timeout: longest async batch of handler calls, ms */
int			es_projection_handler_timeout = 60000;

#define ES_PROJECTION_NAME_MAX	(NAMEDATALEN - 1)

/* one projection, as read from es_projections */
typedef struct EsProjection
{
	char	   *name;
	bool		async;
	Oid			handler;		/* InvalidOid: no longer resolves */
	char	   *handler_name;	/* schema-qualified signature */
	Oid			reset;			/* InvalidOid: none, or no longer resolves */
	char	   *reset_name;		/* NULL: none */
	int			timeout_ms;		/* handler timeout of an async batch, 0: none */
	Oid			owner;
	char	   *search_path;
	int			ntypes;			/* 0: every event type */
	char	  **types;			/* sorted with strcmp */
	bool		prepared;		/* flinfo is set up and checked */
	FmgrInfo	flinfo;
} EsProjection;

/* the projections of one install, cached per backend for inline dispatch */
typedef struct ProjectionList
{
	MemoryContext cxt;
	Oid			namespace_oid;
	int			nprojections;
	int			ninline;
	int			nasync;
	EsProjection *projections;
} ProjectionList;

/* the extension's projection tables, looked up once per backend */
typedef struct ProjCatalog
{
	Oid			namespace_oid;
	char	   *schema;			/* quoted, for statement text */
	Oid			projections_relid;
	Oid			checkpoints_relid;
	Oid			owner;			/* owner of es_projections */
	Oid			events_type;	/* row type of es_events */
	int			version;		/* of the install's SQL (EsCatalog) */
} ProjCatalog;

/* events collected from the feed for one projection */
typedef struct EventBatch
{
	EsProjection *proj;
	MemoryContext cxt;
	int64		upto;			/* walk no further than this position */
	int64		last_position;	/* last event walked, matching or not */
	int64		walked;
	int			nevents;		/* events for the handler */
	int			maxevents;
	Datum	   *events;			/* es_events composite datums */
	int64	   *positions;
	int64	   *walk_index;		/* events walked before this one */
} EventBatch;

/* argument of the error context callback */
typedef struct HandlerErrorArg
{
	const char *name;
	int64		position;		/* 0: the reset function */
} HandlerErrorArg;

/* the outcome of one async batch */
typedef struct ApplyResult
{
	int64		applied;		/* handler calls that took effect */
	int64		walked;			/* events the checkpoint moved over */
	bool		failed;
	bool		more;			/* the batch was full: more may be pending */
} ApplyResult;

static ProjCatalog proj_catalog;
static bool proj_catalog_valid = false;

static ProjectionList *inline_list = NULL;
static bool inline_list_valid = false;
static List *retired_lists = NIL;

/* the append whose inline handlers are running (see es_dispatch_inline) */
static EsAppendedEvents *es_dispatching = NULL;

static void CheckProjectionName(text *name);
static int64 IntervalMicroseconds(const Interval *interval);

/*
 * ProjRelcacheCallback forgets the cached OIDs and the inline projection
 * list when the projection tables change (es_projections_changed sends a
 * relcache invalidation for every write to es_projections).
 */
static void
ProjRelcacheCallback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == proj_catalog.projections_relid)
	{
		inline_list_valid = false;
		proj_catalog_valid = false;
	}
	else if (relid == proj_catalog.checkpoints_relid)
		proj_catalog_valid = false;
}

/*
 * ProjSyscacheCallback forgets the inline projection list when a function
 * or a role changes: a handler replaced, EXECUTE revoked, an owner dropped.
 */
static void
ProjSyscacheCallback(Datum arg, int cacheid, uint32 hashvalue)
{
	inline_list_valid = false;
}

/*
 * ProjXactCallback frees the projection lists that were replaced during the
 * transaction; an outer dispatch may have been iterating over them.
 */
static void
ProjXactCallback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PREPARE)
		return;
	es_dispatching = NULL;
	foreach(lc, retired_lists)
		MemoryContextDelete((MemoryContext) lfirst(lc));
	list_free(retired_lists);
	retired_lists = NIL;
}

/*
 * EsInitProjections defines the projection settings and registers the cache
 * callbacks; with es_pg preloaded it also sets up shared memory and the
 * launcher (worker.c).  Called from _PG_init.
 */
void
EsInitProjections(void)
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
	DefineCustomIntVariable("es_pg.projection_handler_timeout",
							"Longest time one batch of an async projection's handler calls may run before it is canceled; 0 means no limit.",
							"A canceled batch counts as a handler error (SQLSTATE 57014): the event is retried, then the projection is parked. es_set_projection_timeout overrides it per projection.",
							&es_projection_handler_timeout,
							60000, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("es_pg.projection_naptime",
							"Time the projection worker sleeps when no async projection has work.",
							NULL,
							&es_projection_naptime,
							1000, 10, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("es_pg.projection_workers",
							 "Runs background workers that apply async projections (needs es_pg in shared_preload_libraries).",
							 NULL,
							 &es_projection_workers,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	CacheRegisterRelcacheCallback(ProjRelcacheCallback, (Datum) 0);
	CacheRegisterSyscacheCallback(PROCOID, ProjSyscacheCallback, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, ProjSyscacheCallback, (Datum) 0);
	RegisterXactCallback(ProjXactCallback, NULL);

	EsInitWorkers();
}

/*
 * GetProjCatalog returns the projection tables of the install that "cat"
 * describes.  With missing_ok, NULL means they do not exist (yet).
 */
static const ProjCatalog *
GetProjCatalog(const EsCatalog *cat, bool missing_ok)
{
	HeapTuple	tuple;
	Oid			relid;

	if (proj_catalog_valid && proj_catalog.namespace_oid == cat->namespace_oid)
		return &proj_catalog;

	proj_catalog_valid = false;
	relid = EsLookupRelation("es_projections", cat->namespace_oid, missing_ok);
	if (!OidIsValid(relid))
		return NULL;
	proj_catalog.projections_relid = relid;
	proj_catalog.checkpoints_relid =
		EsLookupRelation("es_projection_checkpoints", cat->namespace_oid,
						 missing_ok);
	if (!OidIsValid(proj_catalog.checkpoints_relid))
		return NULL;
	proj_catalog.namespace_oid = cat->namespace_oid;
	if (proj_catalog.schema != NULL)
		pfree(proj_catalog.schema);
	proj_catalog.schema =
		MemoryContextStrdup(TopMemoryContext,
							quote_identifier(get_namespace_name(cat->namespace_oid)));
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	proj_catalog.owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	proj_catalog.events_type = get_rel_type_id(cat->events_relid);
	proj_catalog.version = cat->version;
	proj_catalog_valid = true;
	return &proj_catalog;
}

/*
 * RunAsOwner executes one statement on the projection tables through SPI,
 * as the owner of es_projections: callers of the admin functions (and
 * appenders, for inline dispatch) need no privilege on those tables.  A
 * valid snapshot runs a read-only statement with it; otherwise the
 * statement runs as usual, firing triggers.
 */
static int
RunAsOwner(const ProjCatalog *pc, const char *sql, int nargs, Oid *argtypes,
		   Datum *values, const char *nulls, Snapshot snapshot, long tcount)
{
	return EsExecuteAs(pc->owner, sql, nargs, argtypes, values, nulls,
					   snapshot, false, tcount);
}

/*
 * The columns every definition query returns first, in this order; see
 * ProjectionFromRow.
 */
#define PROJECTION_COLUMNS \
	"p.name, p.mode OPERATOR(pg_catalog.=) 'async', " \
	"p.handler, p.reset, p.event_types, " \
	"p.owner::pg_catalog.oid, p.search_path, p.handler_timeout_ms"
#define PROJECTION_NCOLUMNS 8

/* the same from the es_projections of 0.1.0, whose functions are reg* */
#define PROJECTION_COLUMNS_0_1 \
	"p.name, p.mode OPERATOR(pg_catalog.=) 'async', " \
	"(pg_catalog.pg_identify_object('pg_catalog.pg_proc'::pg_catalog.regclass," \
	" p.handler::pg_catalog.oid, 0)).identity," \
	" CASE WHEN p.reset IS NOT NULL THEN" \
	" (pg_catalog.pg_identify_object('pg_catalog.pg_proc'::pg_catalog.regclass," \
	" p.reset::pg_catalog.oid, 0)).identity END," \
	" p.event_types, p.owner::pg_catalog.oid, p.search_path," \
	" NULL::pg_catalog.int4"

/*
 * ProjectionColumns returns the columns of a definition query for the
 * install's version of es_projections.
 */
static const char *
ProjectionColumns(const ProjCatalog *pc)
{
	return pc->version >= ES_VERSION_0_2 ? PROJECTION_COLUMNS :
		PROJECTION_COLUMNS_0_1;
}

/*
 * ResolveSignature returns the function a stored schema-qualified
 * signature names, or InvalidOid when none does.
 */
static Oid
ResolveSignature(const char *signature)
{
	LOCAL_FCINFO(fcinfo, 1);
	Datum		result;
	EsIdentity	id;

	/*
	 * As the owner of the projection tables: an appender dispatching inline
	 * projections need not see the handler's schema.
	 */
	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = CStringGetTextDatum(signature);
	fcinfo->args[0].isnull = false;
	EsBecomeOwner(proj_catalog.owner, NULL, false, &id);
	result = to_regprocedure(fcinfo);
	EsRestoreIdentity(&id);
	return fcinfo->isnull ? InvalidOid : DatumGetObjectId(result);
}

/*
 * CompareStrings orders event types for bsearch.
 */
static int
CompareStrings(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * ProjectionFromRow fills "p" from row "row" of the last SPI result, with
 * the strings copied into cxt.
 */
static void
ProjectionFromRow(EsProjection *p, int row, MemoryContext cxt)
{
	HeapTuple	tuple = SPI_tuptable->vals[row];
	TupleDesc	desc = SPI_tuptable->tupdesc;
	MemoryContext oldcxt;
	bool		isnull;
	Datum		d;

	oldcxt = MemoryContextSwitchTo(cxt);
	memset(p, 0, sizeof(EsProjection));
	p->name = TextDatumGetCString(SPI_getbinval(tuple, desc, 1, &isnull));
	p->async = DatumGetBool(SPI_getbinval(tuple, desc, 2, &isnull));
	p->handler_name = TextDatumGetCString(SPI_getbinval(tuple, desc, 3, &isnull));
	p->handler = ResolveSignature(p->handler_name);
	d = SPI_getbinval(tuple, desc, 4, &isnull);
	p->reset_name = isnull ? NULL : TextDatumGetCString(d);
	p->reset = isnull ? InvalidOid : ResolveSignature(p->reset_name);
	d = SPI_getbinval(tuple, desc, 5, &isnull);
	if (!isnull)
	{
		ArrayType  *arr = DatumGetArrayTypeP(d);
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		int			i;

		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &nulls, &n);
		p->types = palloc(Max(n, 1) * sizeof(char *));
		for (i = 0; i < n; i++)
			if (!nulls[i])
				p->types[p->ntypes++] = TextDatumGetCString(elems[i]);
		qsort(p->types, p->ntypes, sizeof(char *), CompareStrings);
	}
	p->owner = DatumGetObjectId(SPI_getbinval(tuple, desc, 6, &isnull));
	p->search_path = TextDatumGetCString(SPI_getbinval(tuple, desc, 7, &isnull));
	d = SPI_getbinval(tuple, desc, 8, &isnull);
	p->timeout_ms = isnull ? es_projection_handler_timeout : DatumGetInt32(d);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * TypeMatches says whether an event type is one the projection wants.
 */
static bool
TypeMatches(const EsProjection *p, text *event_type)
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
	AclResult	aclresult;

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
	aclresult = EsProcAclCheck(fn, p->owner, ACL_EXECUTE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FUNCTION, get_func_name(fn));
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
 * EnterHandlerContext switches to the projection owner's rights and pinned
 * search_path, as a security-restricted operation (identity.c): nothing
 * the handler does may outlive the call under another identity.
 */
static void
EnterHandlerContext(const EsProjection *p, EsIdentity *hc)
{
	EsBecomeOwner(p->owner, p->search_path, false, hc);
}

static void
LeaveHandlerContext(EsIdentity *hc)
{
	EsRestoreIdentity(hc);
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
 * CallReset empties the projection's read model with its reset function.
 */
static void
CallReset(EsProjection *p)
{
	FmgrInfo	flinfo;
	EsIdentity	hc;
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
	errcallback.callback = HandlerErrorContext;
	errcallback.arg = &errarg;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	EnterHandlerContext(p, &hc);
	InitFunctionCallInfoData(*fcinfo, &flinfo, 0, InvalidOid, NULL, NULL);
	(void) FunctionCallInvoke(fcinfo);
	CommandCounterIncrement();
	LeaveHandlerContext(&hc);
	error_context_stack = errcallback.previous;
}

/*
 * LoadInlineList reads every projection of the install, with a fresh
 * snapshot: a projection created by a transaction that committed after
 * ours started must not be missed (the creator held ExclusiveLock on
 * es_events until it committed, so we see it once we hold our lock).
 */
static ProjectionList *
LoadInlineList(const ProjCatalog *pc)
{
	MemoryContext cxt;
	ProjectionList *list;
	char	   *sql;
	int			i;

	cxt = AllocSetContextCreate(CacheMemoryContext, "es_pg projections",
								ALLOCSET_SMALL_SIZES);
	PG_TRY();
	{
		list = MemoryContextAllocZero(cxt, sizeof(ProjectionList));
		list->cxt = cxt;
		list->namespace_oid = pc->namespace_oid;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		sql = psprintf("SELECT %s"
					   " FROM %s.es_projections p ORDER BY p.name",
					   ProjectionColumns(pc), pc->schema);
		RunAsOwner(pc, sql, 0, NULL, NULL, NULL, GetLatestSnapshot(), 0);
		list->nprojections = SPI_processed;
		list->projections = MemoryContextAllocZero(cxt,
												   Max(list->nprojections, 1) * sizeof(EsProjection));
		for (i = 0; i < list->nprojections; i++)
		{
			ProjectionFromRow(&list->projections[i], i, cxt);
			if (list->projections[i].async)
				list->nasync++;
			else
				list->ninline++;
		}
		SPI_finish();
	}
	PG_CATCH();
	{
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return list;
}

/*
 * GetInlineList returns the cached projection list, reloading it after an
 * invalidation.  A replaced list stays allocated until the end of the
 * transaction, since a dispatch further up the stack may still use it.
 */
static ProjectionList *
GetInlineList(const ProjCatalog *pc)
{
	ProjectionList *list;

	if (inline_list != NULL && inline_list_valid &&
		inline_list->namespace_oid == pc->namespace_oid)
		return inline_list;

	if (inline_list != NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(TopMemoryContext);

		retired_lists = lappend(retired_lists, inline_list->cxt);
		MemoryContextSwitchTo(oldcxt);
		inline_list = NULL;
	}
	/* an invalidation that arrives while loading makes us load again */
	inline_list_valid = true;
	list = LoadInlineList(pc);
	inline_list = list;
	return list;
}

/*
 * DispatchInline calls the handlers of the inline projections for the
 * events of one append, projection by projection, each event in order.
 */
static void
DispatchInline(ProjectionList *list, EsAppendedEvents *appended)
{
	MemoryContext scratch;
	int		   *matched;
	int			i;

	scratch = AllocSetContextCreate(CurrentMemoryContext,
									"es_pg inline dispatch",
									ALLOCSET_DEFAULT_SIZES);
	matched = palloc(appended->nslots * sizeof(int));

	for (i = 0; i < list->nprojections; i++)
	{
		EsProjection *p = &list->projections[i];
		EsIdentity	hc;
		HandlerErrorArg errarg;
		ErrorContextCallback errcallback;
		int			nmatched = 0;
		int			j;

		if (p->async)
			continue;
		for (j = 0; j < appended->nslots; j++)
		{
			bool		isnull;
			Datum		type = slot_getattr(appended->slots[j],
											Anum_es_events_event_type,
											&isnull);

			if (TypeMatches(p, DatumGetTextPP(type)))
				matched[nmatched++] = j;
		}
		if (nmatched == 0)
			continue;

		errarg.name = p->name;
		errarg.position = 0;
		errcallback.callback = HandlerErrorContext;
		errcallback.arg = &errarg;
		errcallback.previous = error_context_stack;
		error_context_stack = &errcallback;

		PrepareHandler(p, list->cxt);
		EnterHandlerContext(p, &hc);
		for (j = 0; j < nmatched; j++)
		{
			TupleTableSlot *slot = appended->slots[matched[j]];
			MemoryContext oldcxt;
			bool		isnull;

			errarg.position = DatumGetInt64(slot_getattr(slot,
														 Anum_es_events_global_position,
														 &isnull));
			oldcxt = MemoryContextSwitchTo(scratch);
			CallHandler(p, ExecFetchSlotHeapTupleDatum(slot));
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(scratch);
		}
		LeaveHandlerContext(&hc);
		error_context_stack = errcallback.previous;
	}
	pfree(matched);
	MemoryContextDelete(scratch);
}

/*
 * es_dispatch_inline is the AFTER INSERT FOR EACH STATEMENT trigger of
 * es_events.  It fires once per es_append or es_append_batch call and hands
 * the events of that call to the inline projections.  Inserts that do not
 * come from es_append (a restore's COPY, the owner inserting by hand) leave
 * EsCurrentAppend NULL: nothing is dispatched for them, and a restore brings
 * read models back from the dump instead.
 */
PG_FUNCTION_INFO_V1(es_dispatch_inline);
Datum
es_dispatch_inline(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata;
	EsAppendedEvents *appended = EsCurrentAppend;
	const EsCatalog *cat;
	const ProjCatalog *pc;
	ProjectionList *list;
	EsAppendedEvents *save;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function es_dispatch_inline must be called as a trigger")));
	trigdata = (TriggerData *) fcinfo->context;
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function es_dispatch_inline must be fired AFTER INSERT FOR EACH STATEMENT")));

	/*
	 * Nothing to do for inserts outside es_append, and nothing for an insert
	 * that a handler of this very append makes by hand (the append's own
	 * events are being dispatched already).
	 */
	if (appended == NULL || appended == es_dispatching ||
		appended->events_relid != RelationGetRelid(trigdata->tg_relation))
		return PointerGetDatum(NULL);

	/* the common case costs two comparisons */
	if (inline_list != NULL && inline_list_valid &&
		inline_list->nprojections == 0 &&
		inline_list->namespace_oid == RelationGetNamespace(trigdata->tg_relation))
		return PointerGetDatum(NULL);

	cat = EsGetCatalog(RelationGetNamespace(trigdata->tg_relation));
	pc = GetProjCatalog(cat, false);
	list = GetInlineList(pc);
	if (list->nasync > 0)
		EsWakeWorkerAtCommit();
	if (list->ninline == 0)
		return PointerGetDatum(NULL);

	save = es_dispatching;
	es_dispatching = appended;
	PG_TRY();
	{
		DispatchInline(list, appended);
	}
	PG_FINALLY();
	{
		es_dispatching = save;
	}
	PG_END_TRY();
	return PointerGetDatum(NULL);
}

/*
 * es_projections_changed is the statement trigger of es_projections: any
 * change (es_create_projection, es_drop_projection, a restore's COPY)
 * resets the projection caches of every backend, and makes sure a worker
 * looks after this database's async projections.
 */
PG_FUNCTION_INFO_V1(es_projections_changed);
Datum
es_projections_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function es_projections_changed must be called as a trigger")));
	trigdata = (TriggerData *) fcinfo->context;
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	EsRequestWorkerAtCommit();
	return PointerGetDatum(NULL);
}

/*
 * CollectEvent is the EsReadFeed callback that gathers the events of one
 * batch for a projection.
 */
static bool
CollectEvent(HeapTuple tuple, TupleDesc tupdesc, void *arg)
{
	EventBatch *b = (EventBatch *) arg;
	MemoryContext oldcxt;
	bool		isnull;
	int64		position;

	position = DatumGetInt64(heap_getattr(tuple, Anum_es_events_global_position,
										  tupdesc, &isnull));
	if (position > b->upto)
		return false;

	oldcxt = MemoryContextSwitchTo(b->cxt);
	if (b->proj->ntypes == 0 ||
		TypeMatches(b->proj,
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
 * InitBatch prepares an empty batch for projection p.
 */
static void
InitBatch(EventBatch *b, EsProjection *p, MemoryContext cxt, int64 from,
		  int64 upto)
{
	memset(b, 0, sizeof(EventBatch));
	b->proj = p;
	b->cxt = cxt;
	b->upto = upto;
	b->last_position = from;
}

/* the timeout that cancels a batch of handler calls that runs too long */
static TimeoutId handler_timeout_id = MAX_TIMEOUTS;
static volatile sig_atomic_t handler_timed_out = false;

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
 * RunHandlersGuarded calls the handler for the first "limit" events of the
 * batch inside one subtransaction.  On error it rolls the subtransaction
 * back and returns false, with the index of the failing event and a copy
 * of the error (in cxt).  One subtransaction per batch, not per event,
 * keeps big batches clear of subtransaction overflow.
 */
static bool
RunHandlersGuarded(EsProjection *p, EventBatch *b, int limit, int *fail,
				   ErrorData **edata, MemoryContext cxt)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	MemoryContext scratch;
	volatile int current = 0;
	volatile bool ok = true;

	scratch = AllocSetContextCreate(oldcxt, "es_pg projection events",
									ALLOCSET_DEFAULT_SIZES);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		EsIdentity	hc;
		HandlerErrorArg errarg;
		ErrorContextCallback errcallback;
		int			i;

		errarg.name = p->name;
		errarg.position = limit > 0 ? b->positions[0] : 0;
		errcallback.callback = HandlerErrorContext;
		errcallback.arg = &errarg;
		errcallback.previous = error_context_stack;
		error_context_stack = &errcallback;

		PrepareHandler(p, cxt);
		StartHandlerTimeout(p->timeout_ms);
		EnterHandlerContext(p, &hc);
		for (i = 0; i < limit; i++)
		{
			current = i;
			errarg.position = b->positions[i];
			MemoryContextSwitchTo(scratch);
			CallHandler(p, b->events[i]);
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(scratch);
		}
		LeaveHandlerContext(&hc);
		StopHandlerTimeout();
		error_context_stack = errcallback.previous;

		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		bool		timed_out = handler_timed_out;

		if (handler_timeout_id != MAX_TIMEOUTS)
			disable_timeout(handler_timeout_id, false);
		handler_timed_out = false;
		MemoryContextSwitchTo(cxt);
		*edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;

		/*
		 * Our timeout is the handler's failure, like any error it raises.
		 * In the worker so is any other cancel (a handler raising 57014
		 * itself, or es_drop_projection taking the projection over, which
		 * then discards the record); in a session, a cancel is the user's
		 * and stops es_apply_projections.
		 */
		if ((*edata)->sqlerrcode == ERRCODE_QUERY_CANCELED && timed_out)
			(*edata)->message =
				MemoryContextStrdup(cxt,
									psprintf("the projection's handler calls were canceled after %d ms (its handler timeout)",
											 p->timeout_ms));
		else if ((*edata)->sqlerrcode == ERRCODE_QUERY_CANCELED &&
				 !EsIsBackgroundWorker())
			ReThrowError(*edata);
		*fail = current;
		ok = false;
	}
	PG_END_TRY();
	MemoryContextDelete(scratch);
	return ok;
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
 * TakeOverProjection keeps appliers of a projection away for the rest of
 * the transaction, for dropping, rebuilding or resuming it.  An applier at
 * work is asked to cancel its batch (as pg_cancel_backend does), so that a
 * handler that never returns cannot hold the command up; the batch rolls
 * back and records nothing.
 */
static void
TakeOverProjection(const char *name)
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
ApplyBatch(const EsCatalog *cat, const ProjCatalog *pc, const char *name,
		   bool skip_locked, int64 max_events, int elevel, ApplyResult *res)
{
	MemoryContext cxt;
	MemoryContext oldcxt = CurrentMemoryContext;
	EsProjection p;
	EventBatch b;
	char	   *sql;
	Oid			argtypes[8];
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
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	sql = psprintf("SELECT %s, c.position, c.parked, "
				   "c.retries, c.error_position"
				   " FROM %s.es_projection_checkpoints c"
				   " JOIN %s.es_projections p ON p.name OPERATOR(pg_catalog.=) c.name"
				   " WHERE c.name OPERATOR(pg_catalog.=) $1"
				   " FOR UPDATE OF c%s",
				   ProjectionColumns(pc), pc->schema, pc->schema,
				   skip_locked ? " SKIP LOCKED" : "");
	argtypes[0] = TEXTOID;
	values[0] = CStringGetTextDatum(name);
	RunAsOwner(pc, sql, 1, argtypes, values, NULL, InvalidSnapshot, 0);
	if (SPI_processed == 0)
	{
		/* dropped, or another applier holds it */
		SPI_finish();
		MemoryContextDelete(cxt);
		return;
	}
	ProjectionFromRow(&p, 0, cxt);
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	position = DatumGetInt64(SPI_getbinval(row, desc, PROJECTION_NCOLUMNS + 1, &isnull));
	parked = DatumGetBool(SPI_getbinval(row, desc, PROJECTION_NCOLUMNS + 2, &isnull));
	retries = DatumGetInt32(SPI_getbinval(row, desc, PROJECTION_NCOLUMNS + 3, &isnull));
	error_position = DatumGetInt64(SPI_getbinval(row, desc, PROJECTION_NCOLUMNS + 4, &isnull));
	if (isnull)
		error_position = -1;
	if (!p.async || parked)
	{
		SPI_finish();
		MemoryContextDelete(cxt);
		return;
	}

	InitBatch(&b, &p, cxt, position, PG_INT64_MAX);
	(void) EsReadFeed(cat, position, max_events, CollectEvent, &b);
	if (b.walked == 0)
	{
		SPI_finish();
		MemoryContextDelete(cxt);
		return;
	}

	/* apply; on failure apply the good prefix again */
	limit = b.nevents;
	while (limit > 0)
	{
		int			fail = 0;
		ErrorData  *e = NULL;

		if (RunHandlersGuarded(&p, &b, limit, &fail, &e, cxt))
			break;
		failed_at = fail;
		edata = e;
		limit = fail;
	}

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

		sql = psprintf("UPDATE %s.es_projection_checkpoints SET"
					   " updated_at = CASE WHEN $2 OPERATOR(pg_catalog.>) position"
					   " THEN pg_catalog.clock_timestamp() ELSE updated_at END,"
					   " position = $2, retries = $3, parked = $4,"
					   " error_position = $5, error_sqlstate = $6,"
					   " error_message = $7, error_at = pg_catalog.clock_timestamp()"
					   " WHERE name OPERATOR(pg_catalog.=) $1",
					   pc->schema);
		argtypes[1] = INT8OID;
		values[1] = Int64GetDatum(new_position);
		argtypes[2] = INT4OID;
		values[2] = Int32GetDatum(retries);
		argtypes[3] = BOOLOID;
		values[3] = BoolGetDatum(now_parked);
		argtypes[4] = INT8OID;
		values[4] = Int64GetDatum(fail_position);
		argtypes[5] = TEXTOID;
		values[5] = CStringGetTextDatum(sqlstate);
		argtypes[6] = TEXTOID;
		values[6] = CStringGetTextDatum(edata->message ? edata->message : "");
		RunAsOwner(pc, sql, 7, argtypes, values, NULL, InvalidSnapshot, 0);

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
		sql = psprintf("UPDATE %s.es_projection_checkpoints SET"
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
					   pc->schema);
		argtypes[1] = INT8OID;
		values[1] = Int64GetDatum(new_position);
		RunAsOwner(pc, sql, 2, argtypes, values, NULL, InvalidSnapshot, 0);
	}
	if (new_position > position)
		EsCheckpointAdvanced();

	SPI_finish();
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
}

/*
 * EsApplyProjectionBatch applies one batch of one async projection for the
 * worker and returns the handler calls that took effect.  *more says
 * whether the batch was full.
 */
int64
EsApplyProjectionBatch(const EsCatalog *cat, const char *name,
					   bool skip_locked, int64 max_events, int elevel,
					   bool *more)
{
	const ProjCatalog *pc = GetProjCatalog(cat, false);
	ApplyResult res;

	ApplyBatch(cat, pc, name, skip_locked, max_events, elevel, &res);
	*more = res.more;
	return res.applied;
}

/*
 * EsPendingAsyncProjections returns the names of the async projections that
 * are not parked and lag behind the head, in the caller's memory context.
 */
List *
EsPendingAsyncProjections(const EsCatalog *cat)
{
	const ProjCatalog *pc = GetProjCatalog(cat, true);
	MemoryContext oldcxt = CurrentMemoryContext;
	List	   *names = NIL;
	char	   *sql;
	uint64		i;

	if (pc == NULL)
		return NIL;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	sql = psprintf("SELECT c.name FROM %s.es_projection_checkpoints c"
				   " JOIN %s.es_projections p ON p.name OPERATOR(pg_catalog.=) c.name"
				   " WHERE p.mode OPERATOR(pg_catalog.=) 'async' AND NOT c.parked"
				   " AND c.position OPERATOR(pg_catalog.<) (SELECT e.global_position"
				   " FROM %s.es_events e ORDER BY e.global_position DESC LIMIT 1)"
				   " ORDER BY c.name",
				   pc->schema, pc->schema, pc->schema);
	RunAsOwner(pc, sql, 0, NULL, NULL, NULL, InvalidSnapshot, 0);
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
 * ReplayEvents calls the handler for every event after "from" up to
 * "upto", in global order, a batch at a time, without a subtransaction: a
 * handler error fails the caller.  Progress goes to the shared slot.
 * Returns the handler calls; *last is the last position walked.
 */
static int64
ReplayEvents(const EsCatalog *cat, EsProjection *p, int64 from, int64 upto,
			 int progress_slot, int64 *last, MemoryContext cxt)
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
		EventBatch	b;
		EsIdentity	hc;
		HandlerErrorArg errarg;
		ErrorContextCallback errcallback;
		int			i;

		InitBatch(&b, p, batch_cxt, position, upto);
		(void) EsReadFeed(cat, position, es_projection_batch_size,
						  CollectEvent, &b);
		if (b.walked == 0)
			break;

		errarg.name = p->name;
		errarg.position = 0;
		errcallback.callback = HandlerErrorContext;
		errcallback.arg = &errarg;
		errcallback.previous = error_context_stack;
		error_context_stack = &errcallback;
		if (b.nevents > 0)
		{
			PrepareHandler(p, cxt);
			EnterHandlerContext(p, &hc);
			for (i = 0; i < b.nevents; i++)
			{
				MemoryContext oldcxt;

				EsProgressUpdate(progress_slot, walked + b.walk_index[i]);
				errarg.position = b.positions[i];
				oldcxt = MemoryContextSwitchTo(scratch);
				CallHandler(p, b.events[i]);
				MemoryContextSwitchTo(oldcxt);
				MemoryContextReset(scratch);
				calls++;
			}
			LeaveHandlerContext(&hc);
		}
		error_context_stack = errcallback.previous;

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

/*
 * GetName reads a projection name argument: 22004 for NULL, 22023 for a
 * name that is empty or too long.
 */
static char *
GetName(FunctionCallInfo fcinfo, int argno)
{
	text	   *name;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("projection name must not be null")));
	name = PG_GETARG_TEXT_PP(argno);
	CheckProjectionName(name);
	return text_to_cstring(name);
}

static void
CheckProjectionName(text *name)
{
	int			len = VARSIZE_ANY_EXHDR(name);

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("projection name must not be empty")));
	if (len > ES_PROJECTION_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("projection name is too long"),
				 errdetail("The name has %d bytes; the limit is %d.",
						   len, ES_PROJECTION_NAME_MAX)));
}

/*
 * UnknownProjection raises the 42704 error.
 */
static void
UnknownProjection(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("projection \"%s\" does not exist", name)));
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
	qsort(strs, n, sizeof(char *), CompareStrings);
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
 * es_create_projection registers a projection.
 *
 * es_create_projection(name text, handler regprocedure, event_types text[],
 *						mode text, reset regprocedure, from_beginning boolean)
 */
PG_FUNCTION_INFO_V1(es_create_projection);
Datum
es_create_projection(PG_FUNCTION_ARGS)
{
	char	   *name = GetName(fcinfo, 0);
	Oid			handler;
	Oid			reset = InvalidOid;
	Datum		types = (Datum) 0;
	bool		async;
	bool		from_beginning;
	char	   *mode;
	const EsCatalog *cat;
	const ProjCatalog *pc;
	AclResult	aclresult;
	char	   *search_path;
	char	   *sql;
	Oid			argtypes[8];
	Datum		values[8];
	char		nulls[8];
	int64		position;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("projection handler must not be null")));
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
	if (PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("from_beginning must not be null")));
	from_beginning = PG_GETARG_BOOL(5);

	cat = EsGetCatalogForFunction(fcinfo);
	pc = GetProjCatalog(cat, false);

	CheckSignature(handler, pc->events_type, "handler", "(event es_events)");
	aclresult = EsProcAclCheck(handler, GetUserId(), ACL_EXECUTE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FUNCTION, get_func_name(handler));
	if (OidIsValid(reset))
	{
		CheckSignature(reset, InvalidOid, "reset", "()");
		aclresult = EsProcAclCheck(reset, GetUserId(), ACL_EXECUTE);
		if (aclresult != ACLCHECK_OK)
			aclcheck_error(aclresult, OBJECT_FUNCTION, get_func_name(reset));
	}
	if (!PG_ARGISNULL(2))
		types = EventTypesArray(PG_GETARG_ARRAYTYPE_P(2));
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
	LockRelationOid(pc->projections_relid, ShareRowExclusiveLock);
	if (!async || !from_beginning)
		LockRelationOid(cat->events_relid, ExclusiveLock);

	search_path = EsPinnedSearchPath();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	sql = psprintf("SELECT 1 FROM %s.es_projections p"
				   " WHERE p.name OPERATOR(pg_catalog.=) $1", pc->schema);
	argtypes[0] = TEXTOID;
	values[0] = CStringGetTextDatum(name);
	RunAsOwner(pc, sql, 1, argtypes, values, NULL, InvalidSnapshot, 0);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("projection \"%s\" already exists", name),
				 errhint("Drop it first with es_drop_projection, or rebuild it with es_rebuild_projection.")));

	position = from_beginning ? 0 : EsHeadPosition(cat, GetLatestSnapshot());

	if (pc->version >= ES_VERSION_0_2)
		sql = psprintf("INSERT INTO %s.es_projections"
					   " (name, mode, handler, reset, event_types, owner, search_path,"
					   " extension)"
					   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", pc->schema);
	else
		sql = psprintf("INSERT INTO %s.es_projections"
					   " (name, mode, handler, reset, event_types, owner, search_path)"
					   " VALUES ($1, $2, $3::pg_catalog.regprocedure,"
					   " $4::pg_catalog.regprocedure, $5, $6, $7)", pc->schema);
	memset(nulls, ' ', sizeof(nulls));
	argtypes[1] = TEXTOID;
	values[1] = CStringGetTextDatum(mode);
	argtypes[2] = TEXTOID;
	values[2] = CStringGetTextDatum(format_procedure_qualified(handler));
	argtypes[3] = TEXTOID;
	values[3] = OidIsValid(reset) ?
		CStringGetTextDatum(format_procedure_qualified(reset)) : (Datum) 0;
	nulls[3] = OidIsValid(reset) ? ' ' : 'n';
	argtypes[4] = TEXTARRAYOID;
	values[4] = types;
	nulls[4] = PG_ARGISNULL(2) ? 'n' : ' ';
	argtypes[5] = REGROLEOID;
	values[5] = ObjectIdGetDatum(GetUserId());
	argtypes[6] = TEXTOID;
	values[6] = CStringGetTextDatum(search_path);
	argtypes[7] = NAMEOID;
	values[7] = EsCreatingExtensionName();
	nulls[7] = values[7] == (Datum) 0 ? 'n' : ' ';
	RunAsOwner(pc, sql, pc->version >= ES_VERSION_0_2 ? 8 : 7, argtypes,
			   values, nulls, InvalidSnapshot, 0);

	if (!async && from_beginning)
	{
		EsProjection p;
		MemoryContext cxt = CurrentMemoryContext;

		/* the definition just stored, with this transaction's snapshot */
		sql = psprintf("SELECT %s"
					   " FROM %s.es_projections p"
					   " WHERE p.name OPERATOR(pg_catalog.=) $1",
					   ProjectionColumns(pc), pc->schema);
		RunAsOwner(pc, sql, 1, argtypes, values, NULL, InvalidSnapshot, 0);
		ProjectionFromRow(&p, 0, cxt);
		(void) ReplayEvents(cat, &p, 0, PG_INT64_MAX, -1, &position, cxt);
	}

	sql = psprintf("INSERT INTO %s.es_projection_checkpoints"
				   " (name, position, updated_at)"
				   " VALUES ($1, $2, pg_catalog.clock_timestamp())", pc->schema);
	argtypes[1] = INT8OID;
	values[1] = Int64GetDatum(position);
	RunAsOwner(pc, sql, 2, argtypes, values, NULL, InvalidSnapshot, 0);

	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * es_drop_projection unregisters a projection.  Its read-model tables are
 * left alone.
 */
PG_FUNCTION_INFO_V1(es_drop_projection);
Datum
es_drop_projection(PG_FUNCTION_ARGS)
{
	char	   *name = GetName(fcinfo, 0);
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	const ProjCatalog *pc = GetProjCatalog(cat, false);
	char	   *sql;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];

	values[0] = CStringGetTextDatum(name);
	LockRelationOid(pc->projections_relid, ShareRowExclusiveLock);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* cancel an applier at work, wait for a rebuild to finish */
	TakeOverProjection(name);
	sql = psprintf("SELECT 1 FROM %s.es_projection_checkpoints c"
				   " WHERE c.name OPERATOR(pg_catalog.=) $1 FOR UPDATE",
				   pc->schema);
	RunAsOwner(pc, sql, 1, argtypes, values, NULL, InvalidSnapshot, 0);

	sql = psprintf("DELETE FROM %s.es_projections p"
				   " WHERE p.name OPERATOR(pg_catalog.=) $1", pc->schema);
	RunAsOwner(pc, sql, 1, argtypes, values, NULL, InvalidSnapshot, 0);
	if (SPI_processed == 0)
		UnknownProjection(name);
	sql = psprintf("DELETE FROM %s.es_projection_checkpoints c"
				   " WHERE c.name OPERATOR(pg_catalog.=) $1", pc->schema);
	RunAsOwner(pc, sql, 1, argtypes, values, NULL, InvalidSnapshot, 0);
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
	char	   *name = GetName(fcinfo, 0);
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	const ProjCatalog *pc = GetProjCatalog(cat, false);
	MemoryContext cxt = CurrentMemoryContext;
	EsProjection p;
	char	   *sql;
	Oid			argtypes[2];
	Datum		values[2];
	int64		upto;
	int64		total;
	int64		last = 0;
	int64		calls = 0;
	int			slot;
	bool		isnull;

	RequireReadCommitted("es_rebuild_projection");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* the worker skips a projection whose row is locked */
	TakeOverProjection(name);
	sql = psprintf("SELECT %s"
				   " FROM %s.es_projection_checkpoints c"
				   " JOIN %s.es_projections p ON p.name OPERATOR(pg_catalog.=) c.name"
				   " WHERE c.name OPERATOR(pg_catalog.=) $1 FOR UPDATE OF c",
				   ProjectionColumns(pc), pc->schema, pc->schema);
	argtypes[0] = TEXTOID;
	values[0] = CStringGetTextDatum(name);
	RunAsOwner(pc, sql, 1, argtypes, values, NULL, InvalidSnapshot, 0);
	if (SPI_processed == 0)
		UnknownProjection(name);
	ProjectionFromRow(&p, 0, cxt);
	if (p.reset_name == NULL)
		CallReset(&p);			/* raises the error */

	if (!p.async)
		LockRelationOid(cat->events_relid, ExclusiveLock);
	upto = EsHeadPosition(cat, GetLatestSnapshot());

	sql = psprintf("SELECT pg_catalog.count(*) FROM %s.es_events e"
				   " WHERE e.global_position OPERATOR(pg_catalog.<=) $1",
				   pc->schema);
	argtypes[0] = INT8OID;
	values[0] = Int64GetDatum(upto);
	RunAsOwner(pc, sql, 1, argtypes, values, NULL, InvalidSnapshot, 0);
	total = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1, &isnull));

	slot = EsProgressStart(name, total);
	PG_TRY();
	{
		CallReset(&p);
		calls = ReplayEvents(cat, &p, 0, upto, slot, &last, cxt);
	}
	PG_FINALLY();
	{
		EsProgressEnd(slot);
	}
	PG_END_TRY();

	sql = psprintf("UPDATE %s.es_projection_checkpoints SET"
				   " position = $2, updated_at = pg_catalog.clock_timestamp(),"
				   " parked = false, retries = 0, error_position = NULL,"
				   " error_sqlstate = NULL, error_message = NULL, error_at = NULL"
				   " WHERE name OPERATOR(pg_catalog.=) $1", pc->schema);
	argtypes[0] = TEXTOID;
	values[0] = CStringGetTextDatum(name);
	argtypes[1] = INT8OID;
	values[1] = Int64GetDatum(last);
	RunAsOwner(pc, sql, 2, argtypes, values, NULL, InvalidSnapshot, 0);
	EsCheckpointAdvanced();
	if (p.async)
		EsWakeWorkerAtCommit();

	SPI_finish();
	PG_RETURN_INT64(calls);
}

/*
 * ProjectionMode returns whether the projection is async, or raises 42704.
 */
static bool
ProjectionIsAsync(const ProjCatalog *pc, const char *name, Snapshot snapshot)
{
	char	   *sql;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	bool		isnull;
	bool		async;

	values[0] = CStringGetTextDatum(name);
	sql = psprintf("SELECT p.mode OPERATOR(pg_catalog.=) 'async'"
				   " FROM %s.es_projections p"
				   " WHERE p.name OPERATOR(pg_catalog.=) $1", pc->schema);
	RunAsOwner(pc, sql, 1, argtypes, values, NULL, snapshot, 0);
	if (SPI_processed == 0)
		UnknownProjection(name);
	async = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
	return async;
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
	const ProjCatalog *pc = GetProjCatalog(cat, false);
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

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (!PG_ARGISNULL(0))
	{
		char	   *name = GetName(fcinfo, 0);

		if (!ProjectionIsAsync(pc, name, InvalidSnapshot))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("projection \"%s\" is inline", name),
					 errdetail("Inline projections are applied by each append, in its transaction.")));
		names = list_make1(name);
	}
	else
	{
		char	   *sql;
		uint64		i;

		sql = psprintf("SELECT p.name FROM %s.es_projections p"
					   " WHERE p.mode OPERATOR(pg_catalog.=) 'async'"
					   " ORDER BY p.name", pc->schema);
		RunAsOwner(pc, sql, 0, NULL, NULL, NULL, InvalidSnapshot, 0);
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

/*
 * es_set_projection_timeout sets how long one async batch of a
 * projection's handler calls may run (NULL: es_pg.projection_handler_timeout).
 */
PG_FUNCTION_INFO_V1(es_set_projection_timeout);
Datum
es_set_projection_timeout(PG_FUNCTION_ARGS)
{
	char	   *name = GetName(fcinfo, 0);
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	const ProjCatalog *pc = GetProjCatalog(cat, false);
	char	   *sql;
	Oid			argtypes[2] = {TEXTOID, INT4OID};
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
		int64		span = IntervalMicroseconds(PG_GETARG_INTERVAL_P(1));

		if (span < 1000 || span / 1000 > INT_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("projection timeout must be between 1 millisecond and %d milliseconds",
							INT_MAX),
					 errhint("Pass NULL to use es_pg.projection_handler_timeout.")));
		values[1] = Int32GetDatum((int32) (span / 1000));
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	sql = psprintf("UPDATE %s.es_projections SET handler_timeout_ms = $2"
				   " WHERE name OPERATOR(pg_catalog.=) $1", pc->schema);
	RunAsOwner(pc, sql, 2, argtypes, values, nulls, InvalidSnapshot, 0);
	if (SPI_processed == 0)
		UnknownProjection(name);
	SPI_finish();
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
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function es_projection_checkpoints_restore must be fired BEFORE INSERT FOR EACH ROW on es_projection_checkpoints")));
	heap_deform_tuple(row, desc, values, isnull);
	for (i = 0; i < 9; i++)
	{
		nulls[i] = isnull[i] ? 'n' : ' ';
		argtypes[i] = TupleDescAttr(desc, i)->atttypid;
	}
	if (isnull[0])
		return PointerGetDatum(row);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
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
 * es_resume_projection lets a parked projection try the failing event
 * again (es_pg.projection_retries more times).
 */
PG_FUNCTION_INFO_V1(es_resume_projection);
Datum
es_resume_projection(PG_FUNCTION_ARGS)
{
	char	   *name = GetName(fcinfo, 0);
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	const ProjCatalog *pc = GetProjCatalog(cat, false);
	char	   *sql;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];

	values[0] = CStringGetTextDatum(name);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	TakeOverProjection(name);
	sql = psprintf("UPDATE %s.es_projection_checkpoints SET parked = false,"
				   " retries = 0 WHERE name OPERATOR(pg_catalog.=) $1",
				   pc->schema);
	RunAsOwner(pc, sql, 1, argtypes, values, NULL, InvalidSnapshot, 0);
	if (SPI_processed == 0)
		UnknownProjection(name);
	SPI_finish();
	EsWakeWorkerAtCommit();
	PG_RETURN_VOID();
}

/*
 * ReadCheckpoint returns the committed checkpoint of a projection, read
 * with a fresh snapshot whatever the isolation level.
 */
static int64
ReadCheckpoint(const ProjCatalog *pc, const char *name)
{
	char	   *sql;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	bool		isnull;
	int64		position;

	values[0] = CStringGetTextDatum(name);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	sql = psprintf("SELECT c.position FROM %s.es_projection_checkpoints c"
				   " WHERE c.name OPERATOR(pg_catalog.=) $1", pc->schema);
	RunAsOwner(pc, sql, 1, argtypes, values, NULL, GetLatestSnapshot(), 0);
	if (SPI_processed == 0)
		UnknownProjection(name);
	position = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return position;
}

/*
 * PositionState looks up the event at a position.  It returns true when
 * the position is settled: committed, written by this transaction,
 * aborted, or skipped while later positions exist.  Otherwise *xwait is
 * the transaction still writing it, or invalid for a position not handed
 * out yet.
 */
static bool
PositionState(const EsCatalog *cat, int64 position, TransactionId *xwait)
{
	Relation	rel = table_open(cat->events_relid, AccessShareLock);
	Relation	index = index_open(cat->position_index, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	SnapshotData dirty;
	ScanKeyData key;
	IndexScanDesc scan;
	bool		found;
	bool		settled;

	*xwait = InvalidTransactionId;

	/*
	 * Read the highest indexed position first: positions enter the index
	 * in increasing order (lock.c), so if it is past ours, ours is in the
	 * index or never will be.
	 */
	settled = EsFeedSafeHigh(rel, index) >= position;

	InitDirtySnapshot(dirty);
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(position));
	scan = EsIndexBeginScan(rel, index, &dirty, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	if (found && TransactionIdIsValid(dirty.xmin))
	{
		*xwait = dirty.xmin;
		settled = false;
	}
	else if (found)
		settled = true;
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);
	return settled;
}

/*
 * WaitForXact waits for a transaction to end, at most timeout_ms; false on
 * timeout.  The wait is a real lock wait (interruptible, seen by
 * pg_locks), bounded by a local lock_timeout in a subtransaction.
 */
static bool
WaitForXact(TransactionId xid, long timeout_ms)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool done = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		int			nestlevel = NewGUCNestLevel();
		char		buf[32];

		snprintf(buf, sizeof(buf), "%ld", Max(timeout_ms, 1));
		(void) set_config_option("lock_timeout", buf, PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
								 false);
		XactLockTableWait(xid, NULL, NULL, XLTW_None);
		AtEOXact_GUC(true, nestlevel);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
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
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			ReThrowError(edata);
		FreeErrorData(edata);
		done = false;
	}
	PG_END_TRY();
	return done;
}

/*
 * IntervalMicroseconds returns an interval's length in microseconds (a
 * month counting 30 days), saturated at the ends of int64 instead of
 * wrapping around.
 */
static int64
IntervalMicroseconds(const Interval *interval)
{
	int64		days = (int64) interval->month * DAYS_PER_MONTH + interval->day;
	int64		span;

	if (pg_mul_s64_overflow(days, USECS_PER_DAY, &span) ||
		pg_add_s64_overflow(span, interval->time, &span))
		return days < 0 ? PG_INT64_MIN : PG_INT64_MAX;
	return span;
}

/*
 * RemainingMs returns the milliseconds left until deadline, at least 0.
 */
static long
RemainingMs(TimestampTz deadline)
{
	TimestampTz now = GetCurrentTimestamp();

	if (now >= deadline)
		return 0;
	return (long) Min((deadline - now + 999) / 1000, (int64) INT_MAX);
}

/*
 * es_wait_for_projection waits until the projection has applied the event
 * at "position": for an inline projection, until that event is committed;
 * for an async one, until its checkpoint reaches the position.  Returns
 * false when the timeout expires first.
 */
PG_FUNCTION_INFO_V1(es_wait_for_projection);
Datum
es_wait_for_projection(PG_FUNCTION_ARGS)
{
	char	   *name = GetName(fcinfo, 0);
	int64		position;
	Interval   *timeout;
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	const ProjCatalog *pc = GetProjCatalog(cat, false);
	TimestampTz deadline;
	int64		span;
	bool		async;
	bool		reached = false;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null",
						PG_ARGISNULL(1) ? "position" : "timeout")));
	position = PG_GETARG_INT64(1);
	timeout = PG_GETARG_INTERVAL_P(2);
	if (position < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("position must not be negative")));
	span = IntervalMicroseconds(timeout);
	if (span < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout must not be negative")));
	deadline = GetCurrentTimestamp();
	if (pg_add_s64_overflow(deadline, span, &deadline))
		deadline = PG_INT64_MAX;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	async = ProjectionIsAsync(pc, name, GetLatestSnapshot());
	SPI_finish();

	if (!async)
	{
		for (;;)
		{
			TransactionId xwait;
			long		remaining;

			if (PositionState(cat, position, &xwait))
			{
				reached = true;
				break;
			}
			remaining = RemainingMs(deadline);
			if (remaining <= 0)
				break;
			if (TransactionIdIsValid(xwait))
			{
				if (!WaitForXact(xwait, remaining))
					break;
				continue;
			}
			/* a position not handed out yet: look again shortly */
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 Min(remaining, 100L), PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	else
	{
		bool		prepared = false;

		for (;;)
		{
			long		remaining;

			if (ReadCheckpoint(pc, name) >= position)
			{
				reached = true;
				break;
			}
			remaining = RemainingMs(deadline);
			if (remaining <= 0)
				break;
			EsWaitForCheckpoint(remaining, &prepared);
		}
		if (prepared)
			EsWaitForCheckpoint(-1, &prepared);
	}
	PG_RETURN_BOOL(reached);
}

/*
 * es_projection_progress returns the rebuilds running in this database:
 * events walked so far out of the events to replay.  Empty when es_pg is
 * not in shared_preload_libraries.
 */
PG_FUNCTION_INFO_V1(es_projection_progress);
Datum
es_projection_progress(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char		(*names)[NAMEDATALEN];
	int			pids[64];
	int64		done[64];
	int64		total[64];
	TimestampTz started[64];
	int			n;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	names = palloc(64 * NAMEDATALEN);
	n = EsProgressSnapshot(MyDatabaseId, names, pids, done, total, started, 64);
	for (i = 0; i < n; i++)
	{
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		values[0] = CStringGetTextDatum(names[i]);
		values[1] = Int32GetDatum(pids[i]);
		values[2] = Int64GetDatum(done[i]);
		values[3] = Int64GetDatum(total[i]);
		values[4] = TimestampTzGetDatum(started[i]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * DropCascades says whether the statement being run drops objects with
 * CASCADE (or drops a whole extension or a role's objects, which takes
 * their projections along too).
 */
static bool
DropCascades(Node *parsetree)
{
	if (parsetree == NULL)
		return false;
	if (IsA(parsetree, DropStmt))
	{
		DropStmt   *stmt = (DropStmt *) parsetree;

		return stmt->behavior == DROP_CASCADE ||
			stmt->removeType == OBJECT_EXTENSION;
	}
	if (IsA(parsetree, DropOwnedStmt))
		return ((DropOwnedStmt *) parsetree)->behavior == DROP_CASCADE;
	return false;
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
RefuseRenames(const ProjCatalog *pc, Node *parsetree)
{
	Oid			nsp;
	Oid			fn = RenamedFunction(parsetree, &nsp);
	char	   *sql;
	uint64		i;

	if (!OidIsValid(fn) && !OidIsValid(nsp))
		return;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	sql = psprintf("SELECT p.name, p.handler, p.reset FROM %s.es_projections p"
				   " ORDER BY p.name", pc->schema);
	RunAsOwner(pc, sql, 0, NULL, NULL, NULL, InvalidSnapshot, 0);
	for (i = 0; i < SPI_processed; i++)
	{
		int			col;

		for (col = 2; col <= 3; col++)
		{
			char	   *signature = SPI_getvalue(SPI_tuptable->vals[i],
												 SPI_tuptable->tupdesc, col);
			Oid			used = signature ? ResolveSignature(signature) : InvalidOid;

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
	const ProjCatalog *pc;
	char	   *sql;
	uint64		i;
	uint64		n;
	char	  **names;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function es_projection_sql_drop must be called as an event trigger")));
	trigdata = (EventTriggerData *) fcinfo->context;
	cat = EsGetCatalogForExtension(true);
	if (cat == NULL)
		PG_RETURN_NULL();
	pc = GetProjCatalog(cat, true);
	if (pc == NULL)
		PG_RETURN_NULL();
	if (strcmp(trigdata->event, "ddl_command_start") == 0)
	{
		RefuseRenames(pc, trigdata->parsetree);
		PG_RETURN_NULL();
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	sql = psprintf("SELECT DISTINCT p.name, d.object_identity"
				   " FROM %s.es_projections p,"
				   " pg_catalog.pg_event_trigger_dropped_objects() d"
				   " WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass"
				   " AND (%s)"
				   " ORDER BY 1", pc->schema,
				   pc->version >= ES_VERSION_0_2 ?
				   "d.object_identity OPERATOR(pg_catalog.=) p.handler"
				   " OR d.object_identity OPERATOR(pg_catalog.=) p.reset" :
				   "d.objid OPERATOR(pg_catalog.=) p.handler::pg_catalog.oid"
				   " OR d.objid OPERATOR(pg_catalog.=) p.reset::pg_catalog.oid");
	RunAsOwner(pc, sql, 0, NULL, NULL, NULL, InvalidSnapshot, 0);
	n = SPI_processed;
	if (n > 0 && !DropCascades(trigdata->parsetree))
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
		Oid			argtypes[1] = {TEXTOID};
		Datum		values[1];

		if (i > 0 && strcmp(names[i], names[i - 1]) == 0)
			continue;
		values[0] = CStringGetTextDatum(names[i]);
		ereport(NOTICE,
				(errmsg("drop cascades to projection \"%s\"", names[i])));
		sql = psprintf("DELETE FROM %s.es_projections p"
					   " WHERE p.name OPERATOR(pg_catalog.=) $1", pc->schema);
		RunAsOwner(pc, sql, 1, argtypes, values, NULL, InvalidSnapshot, 0);
		sql = psprintf("DELETE FROM %s.es_projection_checkpoints c"
					   " WHERE c.name OPERATOR(pg_catalog.=) $1", pc->schema);
		RunAsOwner(pc, sql, 1, argtypes, values, NULL, InvalidSnapshot, 0);
	}
	SPI_finish();
	PG_RETURN_NULL();
}
