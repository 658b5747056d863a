/*-------------------------------------------------------------------------
 *
 * guard.c
 *	  Keep history append-only: triggers on es_events and an event trigger
 *	  that keeps them in place.
 *
 * es_events_append_only refuses UPDATE, DELETE and TRUNCATE for every role,
 * table owner and superusers included, and under session_replication_role
 * = replica (the triggers are ENABLE ALWAYS).
 *
 * es_events_dispatch_inline runs the inline projections (projection.c);
 * without it they would silently stop following the events.
 *
 * es_events_insert_guard lets es_append's inserts through and makes any
 * other INSERT or COPY (a restore, the owner by hand) hold the feed lock to
 * the end of its transaction, so that followers of the global feed cannot
 * skip its rows (see lock.c).
 *
 * es_ddl_guard is an event trigger: after ALTER TABLE, DROP TRIGGER, ALTER
 * TRIGGER, CREATE RULE and DROP INDEX it checks that the triggers above
 * still exist and fire always, that no rule rewrites es_events and that its
 * unique constraints are in place; before DROP EXTENSION
 * es_pg or DROP SCHEMA ... CASCADE of its schema, it refuses while events
 * exist unless es_pg.allow_drop_history is on.
 *
 * IDENTIFICATION
 *	  src/guard.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "nodes/parsenodes.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "es_pg.h"

/* triggers es_events must keep, enabled ALWAYS */
static const char *const es_required_triggers[] = {
	"es_events_append_only",
	"es_events_insert_guard",
	"es_events_dispatch_inline",
};

/* unique indexes (and their constraints) es_events must keep */
static const char *const es_required_indexes[] = {
	"es_events_pkey",
	ES_STREAM_VERSION_CONSTRAINT,
	ES_EVENT_ID_CONSTRAINT,
};

/*
 * CheckTriggerCall raises the 39P01 error when a trigger function is called
 * some other way.
 */
static TriggerData *
CheckTriggerCall(FunctionCallInfo fcinfo, const char *name)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function %s must be called as a trigger", name)));
	return (TriggerData *) fcinfo->context;
}

/*
 * es_events_append_only refuses to change or remove events.
 */
PG_FUNCTION_INFO_V1(es_events_append_only);
Datum
es_events_append_only(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = CheckTriggerCall(fcinfo, "es_events_append_only");
	const char *op;

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		op = "UPDATE";
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		op = "DELETE";
	else if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		op = "TRUNCATE";
	else
		op = "this command";

	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s is not allowed on %s: events are never changed or removed",
					op, RelationGetRelationName(trigdata->tg_relation)),
			 errdetail("The event store is append-only, for every role including its owner."),
			 errhint("Record the correction as a new event with es_append.")));
	PG_RETURN_NULL();
}

/*
 * es_events_insert_guard makes inserts that bypass es_append keep the feed
 * lock until they commit.
 */
PG_FUNCTION_INFO_V1(es_events_insert_guard);
Datum
es_events_insert_guard(PG_FUNCTION_ARGS)
{
	(void) CheckTriggerCall(fcinfo, "es_events_insert_guard");
	if (!EsInsideAppend())
		EsLockFeedUntilCommit();
	/* a statement-level trigger returns a null pointer, not SQL NULL */
	return PointerGetDatum(NULL);
}

/*
 * CheckTriggersInPlace raises an error if the protective triggers of
 * es_events are missing or do not fire always, if a rule rewrites
 * es_events, or if one of its unique constraints is gone.
 */
static void
CheckTriggersInPlace(Oid namespace_oid)
{
	Oid			events_relid = get_relname_relid("es_events", namespace_oid);
	Relation	rel;
	TriggerDesc *trigdesc;
	int			i;

	/*
	 * Look the objects up by name rather than through EsGetCatalog: the
	 * command being checked may just have dropped one of them.
	 */
	if (!OidIsValid(events_relid))
		return;
	rel = table_open(events_relid, AccessShareLock);
	trigdesc = rel->trigdesc;
	for (i = 0; i < lengthof(es_required_triggers); i++)
	{
		const char *name = es_required_triggers[i];
		bool		ok = false;
		int			j;

		for (j = 0; trigdesc != NULL && j < trigdesc->numtriggers; j++)
		{
			Trigger    *trig = &trigdesc->triggers[j];

			if (strcmp(trig->tgname, name) == 0)
				ok = (trig->tgenabled == TRIGGER_FIRES_ALWAYS);
		}
		if (!ok)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("trigger \"%s\" on es_events must stay in place and enabled ALWAYS",
							name),
					 errdetail("It keeps the event store append-only and the global feed gap-free.")));
	}
	if (rel->rd_rel->relhasrules)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("rules on es_events are not allowed"),
				 errdetail("A rule could turn a refused UPDATE or DELETE into a silent no-op.")));
	table_close(rel, AccessShareLock);

	for (i = 0; i < lengthof(es_required_indexes); i++)
	{
		if (!OidIsValid(get_relname_relid(es_required_indexes[i],
										  namespace_oid)))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("constraint \"%s\" on es_events must stay in place",
							es_required_indexes[i]),
					 errdetail("Versions, event ids and global positions rely on it being unique.")));
	}
}

/*
 * DropWouldRemoveHistory says whether a DROP statement names the extension,
 * or cascades over the schema that holds it.
 */
static bool
DropWouldRemoveHistory(DropStmt *stmt, const EsCatalog *cat)
{
	ListCell   *lc;
	char	   *schema;

	if (stmt->removeType == OBJECT_EXTENSION)
	{
		foreach(lc, stmt->objects)
		{
			if (strcmp(strVal(lfirst(lc)), "es_pg") == 0)
				return true;
		}
		return false;
	}
	if (stmt->removeType != OBJECT_SCHEMA || stmt->behavior != DROP_CASCADE)
		return false;
	schema = get_namespace_name(cat->namespace_oid);
	foreach(lc, stmt->objects)
	{
		if (strcmp(strVal(lfirst(lc)), schema) == 0)
			return true;
	}
	return false;
}

/*
 * es_ddl_guard is the event trigger function described at the top.
 */
PG_FUNCTION_INFO_V1(es_ddl_guard);
Datum
es_ddl_guard(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	Oid			namespace_oid;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function es_ddl_guard must be called as an event trigger")));
	trigdata = (EventTriggerData *) fcinfo->context;

	/* extension scripts may rebuild triggers; they are checked afterwards */
	if (creating_extension)
		PG_RETURN_NULL();
	namespace_oid = EsExtensionNamespace(true);
	if (!OidIsValid(namespace_oid))
		PG_RETURN_NULL();

	if (strcmp(trigdata->event, "ddl_command_start") != 0)
		CheckTriggersInPlace(namespace_oid);
	else if (IsA(trigdata->parsetree, DropStmt) && !es_allow_drop_history)
	{
		const EsCatalog *cat = EsGetCatalog(namespace_oid);

		if (DropWouldRemoveHistory((DropStmt *) trigdata->parsetree, cat))
		{
			int64		head;
			Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());

			head = EsHeadPosition(cat, snapshot);
			UnregisterSnapshot(snapshot);
			if (head > 0)
				ereport(ERROR,
						(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
						 errmsg("dropping es_pg would delete the event history"),
						 errdetail("es_events holds events up to global position %lld.",
								   (long long) head),
						 errhint("Dump the database first. To drop the event store and its history for good, a superuser sets es_pg.allow_drop_history = on.")));
		}
	}
	PG_RETURN_NULL();
}
