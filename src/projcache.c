/*-------------------------------------------------------------------------
 *
 * projcache.c
 *	  The projection catalog cache: definitions read from es_projections,
 *	  the signatures they name, and the list of every projection that
 *	  es_dispatch_inline keeps per backend.
 *
 * Projections name their handler and reset functions by schema-qualified
 * signature; a signature is resolved as the owner of es_projections, so
 * that an appender dispatching inline projections need not see the
 * handler's schema.  The list is loaded again after es_projections, a
 * function or a role changed (es_projections_generation, catalog.c); a
 * replaced list stays allocated until the end of the transaction, since a
 * dispatch further up the stack may still be iterating over it.
 *
 * IDENTIFICATION
 *	  src/projcache.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "common.h"
#include "projection.h"

/*
 * Every projection of the install, read with a fresh snapshot: a
 * projection created by a transaction that committed after ours started
 * must not be missed (the creator held ExclusiveLock on es_events until it
 * committed, so we see it once we hold our lock).  Kept prepared: appends
 * load the list after every change of es_projections.
 */
static const EsStatement ListStatement = {
	"SELECT " ES_PROJECTION_COLUMNS
	" FROM @extschema@.es_projections p ORDER BY p.name",
	0, {InvalidOid}, true
};

static const EsStatement ListStatement_0_1 = {
	"SELECT " ES_PROJECTION_COLUMNS_0_1
	" FROM @extschema@.es_projections p ORDER BY p.name",
	0, {InvalidOid}, true
};

static const EsStatement IsAsyncStatement = {
	"SELECT p.mode OPERATOR(pg_catalog.=) 'async'"
	" FROM @extschema@.es_projections p"
	" WHERE p.name OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}, true
};

/* the cached list, and lists replaced during this transaction */
static EsProjectionList *projection_list = NULL;
static List *retired_lists = NIL;

/*
 * CacheXactCallback frees the projection lists that were replaced during
 * the transaction; an outer dispatch may have been iterating over them.
 */
static void
CacheXactCallback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PREPARE)
		return;
	foreach(lc, retired_lists)
		MemoryContextDelete((MemoryContext) lfirst(lc));
	list_free(retired_lists);
	retired_lists = NIL;
}

/*
 * EsInitProjectionCache registers the transaction callback; called from
 * _PG_init.
 */
void
EsInitProjectionCache(void)
{
	RegisterXactCallback(CacheXactCallback, NULL);
}

/*
 * EsResolveSignature returns the function a stored schema-qualified
 * signature names, or InvalidOid when none does.
 */
Oid
EsResolveSignature(const EsProjectionCatalog *pc, const char *signature)
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
	EsBecomeOwner(pc->owner, NULL, false, &id);
	result = to_regprocedure(fcinfo);
	EsRestoreIdentity(&id);
	return fcinfo->isnull ? InvalidOid : DatumGetObjectId(result);
}

/*
 * EsProjectionFromRow fills "p" from row "row" of the last SPI result (a
 * definition query of the install whose projection catalog pc is), with
 * the strings copied into cxt.
 */
void
EsProjectionFromRow(const EsProjectionCatalog *pc, EsProjection *p, int row,
					MemoryContext cxt)
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
	p->handler = EsResolveSignature(pc, p->handler_name);
	d = SPI_getbinval(tuple, desc, 4, &isnull);
	p->reset_name = isnull ? NULL : TextDatumGetCString(d);
	p->reset = isnull ? InvalidOid : EsResolveSignature(pc, p->reset_name);
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
		qsort(p->types, p->ntypes, sizeof(char *), EsCompareCStrings);
	}
	p->owner = DatumGetObjectId(SPI_getbinval(tuple, desc, 6, &isnull));
	p->search_path = TextDatumGetCString(SPI_getbinval(tuple, desc, 7, &isnull));
	d = SPI_getbinval(tuple, desc, 8, &isnull);
	p->has_timeout = !isnull;
	p->timeout_ms = isnull ? 0 : DatumGetInt32(d);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * LoadProjectionList reads every projection of the install (see
 * ListStatement).
 */
static EsProjectionList *
LoadProjectionList(const EsProjectionCatalog *pc)
{
	MemoryContext cxt;
	EsProjectionList *list;
	int			i;

	cxt = AllocSetContextCreate(CacheMemoryContext, "es_pg projections",
								ALLOCSET_SMALL_SIZES);
	PG_TRY();
	{
		list = MemoryContextAllocZero(cxt, sizeof(EsProjectionList));
		list->cxt = cxt;
		list->namespace_oid = pc->namespace_oid;

		EsSpiConnect();
		EsProjectionExecute(pc, pc->version >= ES_VERSION_0_2 ?
							&ListStatement : &ListStatement_0_1,
							NULL, NULL, GetLatestSnapshot());
		list->nprojections = SPI_processed;
		list->projections = MemoryContextAllocZero(cxt,
												   Max(list->nprojections, 1) * sizeof(EsProjection));
		for (i = 0; i < list->nprojections; i++)
		{
			EsProjectionFromRow(pc, &list->projections[i], i, cxt);
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
 * EsKnownNoProjections says whether the cached list, still valid, says the
 * install has no projections: the common case of es_dispatch_inline, which
 * then costs a few comparisons.
 */
bool
EsKnownNoProjections(Oid namespace_oid)
{
	return projection_list != NULL &&
		projection_list->generation == es_projections_generation &&
		projection_list->nprojections == 0 &&
		projection_list->namespace_oid == namespace_oid;
}

/*
 * EsGetProjectionList returns the cached projection list, reloading it
 * after an invalidation.  A replaced list stays allocated until the end of the
 * transaction, since a dispatch further up the stack may still use it.
 */
EsProjectionList *
EsGetProjectionList(const EsProjectionCatalog *pc)
{
	EsProjectionList *list;
	uint64		generation;

	if (projection_list != NULL &&
		projection_list->generation == es_projections_generation &&
		projection_list->namespace_oid == pc->namespace_oid)
		return projection_list;

	if (projection_list != NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(TopMemoryContext);

		retired_lists = lappend(retired_lists, projection_list->cxt);
		MemoryContextSwitchTo(oldcxt);
		projection_list = NULL;
	}
	/* an invalidation that arrives while loading makes us load again */
	generation = es_projections_generation;
	list = LoadProjectionList(pc);
	list->generation = generation;
	projection_list = list;
	return list;
}

/*
 * EsProjectionIsAsync returns whether the projection is async, or raises
 * 42704.  The caller is connected to SPI.
 */
bool
EsProjectionIsAsync(const EsProjectionCatalog *pc, const char *name,
					Snapshot snapshot)
{
	Datum		values[1];
	bool		isnull;
	bool		async;

	values[0] = CStringGetTextDatum(name);
	EsProjectionExecute(pc, &IsAsyncStatement, values, NULL, snapshot);
	if (SPI_processed == 0)
		EsUnknownProjection(name);
	async = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
	return async;
}

/*
 * EsProjectionNameArgument reads a projection name argument: 22004 for
 * NULL, 22023 for a name that is empty or too long.
 */
char *
EsProjectionNameArgument(FunctionCallInfo fcinfo, int argno)
{
	text	   *name = EsTextArgument(fcinfo, argno, "projection name");
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
	return text_to_cstring(name);
}

/*
 * EsUnknownProjection raises the 42704 error.
 */
void
EsUnknownProjection(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("projection \"%s\" does not exist", name)));
}

/*
 * es_projections_changed is the statement trigger of es_projections: any
 * change (es_create_projection, es_drop_projection, a restore's COPY)
 * resets the projection caches of every backend (catalog.c), and makes
 * sure a worker looks after this database's async projections.
 */
PG_FUNCTION_INFO_V1(es_projections_changed);
Datum
es_projections_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = EsCheckTriggerCall(fcinfo,
											   "es_projections_changed");

	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	EsRequestWorkerAtCommit();
	return PointerGetDatum(NULL);
}
