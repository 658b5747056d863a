/*-------------------------------------------------------------------------
 *
 * projinline.c
 *	  Inline dispatch: es_events' AFTER INSERT FOR EACH STATEMENT trigger
 *	  calls the handlers of the inline projections inside the appending
 *	  transaction.
 *
 * The trigger fires once per es_append or es_append_batch call and hands
 * the events of that call (EsCurrentAppend, append.c) to the inline
 * projections, projection by projection, each event in order, through the
 * batch loop of projcall.c.  It also wakes the worker at commit when the
 * install has async projections.
 *
 * IDENTIFICATION
 *	  src/projinline.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/trigger.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "common.h"
#include "projection.h"

/* the events of one append that match one projection, for FetchAppended */
typedef struct MatchedEvents
{
	EsAppendedEvents *appended;
	int		   *matched;		/* indexes into appended->slots */
} MatchedEvents;

/* the append whose inline handlers are running (see es_dispatch_inline) */
static EsAppendedEvents *es_dispatching = NULL;

/*
 * DispatchXactCallback forgets the running dispatch at the end of the
 * transaction.
 */
static void
DispatchXactCallback(XactEvent event, void *arg)
{
	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PREPARE)
		return;
	es_dispatching = NULL;
}

/*
 * EsInitInlineDispatch registers the transaction callback; called from
 * _PG_init.
 */
void
EsInitInlineDispatch(void)
{
	RegisterXactCallback(DispatchXactCallback, NULL);
}

/*
 * FetchAppended is the EsEventFetch of inline dispatch: the i-th matching
 * row of the append, as an es_events composite.
 */
static Datum
FetchAppended(void *arg, int i, int64 *position)
{
	MatchedEvents *m = (MatchedEvents *) arg;
	TupleTableSlot *slot = m->appended->slots[m->matched[i]];
	bool		isnull;

	*position = DatumGetInt64(slot_getattr(slot,
										   Anum_es_events_global_position,
										   &isnull));
	return ExecFetchSlotHeapTupleDatum(slot);
}

/*
 * DispatchInline calls the handlers of the inline projections for the
 * events of one append, projection by projection, each event in order.
 */
static void
DispatchInline(EsProjectionList *list, EsAppendedEvents *appended)
{
	MemoryContext scratch;
	MatchedEvents m;
	int			i;

	scratch = AllocSetContextCreate(CurrentMemoryContext,
									"es_pg inline dispatch",
									ALLOCSET_DEFAULT_SIZES);
	m.appended = appended;
	m.matched = palloc(appended->nslots * sizeof(int));

	for (i = 0; i < list->nprojections; i++)
	{
		EsProjection *p = &list->projections[i];
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

			if (EsProjectionWants(p, DatumGetTextPP(type)))
				m.matched[nmatched++] = j;
		}
		if (nmatched == 0)
			continue;
		EsCallHandlers(p, FetchAppended, &m, nmatched, 0, list->cxt, scratch);
	}
	pfree(m.matched);
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
	TriggerData *trigdata = EsCheckTriggerCall(fcinfo, "es_dispatch_inline");
	EsAppendedEvents *appended = EsCurrentAppend;
	const EsCatalog *cat;
	const EsProjectionCatalog *pc;
	EsProjectionList *list;
	EsAppendedEvents *save;

	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		EsTriggerMisfired("es_dispatch_inline",
						  "AFTER INSERT FOR EACH STATEMENT");

	/*
	 * Nothing to do for inserts outside es_append, and nothing for an insert
	 * that a handler of this very append makes by hand (the append's own
	 * events are being dispatched already).
	 */
	if (appended == NULL || appended == es_dispatching ||
		appended->events_relid != RelationGetRelid(trigdata->tg_relation))
		return PointerGetDatum(NULL);

	/* the common case costs a few comparisons */
	if (EsKnownNoProjections(RelationGetNamespace(trigdata->tg_relation)))
		return PointerGetDatum(NULL);

	cat = EsGetCatalog(RelationGetNamespace(trigdata->tg_relation));
	pc = EsGetProjectionCatalog(cat, false);
	list = EsGetProjectionList(pc);
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
