/*-------------------------------------------------------------------------
 *
 * guard.c
 *	  Keep history append-only: triggers on es_events, and an event trigger
 *	  that keeps them, the table and es_pg's functions as they were made.
 *
 * es_events_append_only refuses UPDATE, DELETE and TRUNCATE for every role,
 * table owner and superusers included, and under session_replication_role
 * = replica (the triggers are ENABLE ALWAYS).  It fires both per statement
 * and per row: statement triggers do not fire for rows reached through an
 * inheritance parent or by logical replication's apply worker, row
 * triggers do.  The one exception is es_archive's own DELETE of rows it
 * has archived already (archive.c).
 *
 * es_events_dispatch_inline runs the inline projections (projinline.c);
 * without it they would silently stop following the events.
 *
 * es_events_insert_guard lets es_append's inserts through and opens a
 * direct-insert window for any other INSERT or COPY (direct.c, lock.c).
 *
 * es_ddl_guard is the event trigger of every DDL command, at its start and
 * at its end.  Outside es_pg's own install and update scripts it refuses:
 *
 *	- ALTER TABLE on es_pg's tables except the subcommands that change
 *	  neither stored values nor the guards (storage parameters, statistics,
 *	  constraints an administrator adds, replica identity, row-level
 *	  security, tablespace, clustering, enabling and disabling triggers
 *	  other than es_pg's); ALTER on their indexes except storage settings;
 *	  any ALTER of es_pg's sequence and views;
 *	- renaming, moving to another schema or changing the owner of any of
 *	  es_pg's objects (or of columns, constraints, indexes and triggers of
 *	  its tables), or of the extension's schema;
 *	- replacing (CREATE OR REPLACE) or altering any of es_pg's functions
 *	  and views, and ALTER EXTENSION es_pg ADD or DROP;
 *	- making es_events a partition, an inheritance child or parent, and
 *	  subscriptions that would replicate into it (created, or refreshed);
 *	- DROP EXTENSION es_pg, DROP SCHEMA ... CASCADE of its schema and DROP
 *	  OWNED BY its owner while events exist, unless es_pg.allow_drop_history
 *	  is on;
 *
 * and after every command checks that es_events still has its triggers,
 * enabled ALWAYS and calling es_pg's functions, its constraints, no rules,
 * permanent storage and no inheritance.  es_events is found by its OID in
 * the extension's schema, never left unchecked.
 *
 * What remains out of reach is said in docs/privileges.md: a superuser who
 * disables event triggers (ALTER EVENT TRIGGER ... DISABLE, event_triggers
 * = off on 17 and later, single-user mode) or edits the catalogs.
 *
 * IDENTIFICATION
 *	  src/guard.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_subscription_rel.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "commands/user.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/guc.h"
#include "utils/syscache.h"

#include "es_pg.h"
#include "common.h"

/* es_pg.allow_drop_history: let DROP EXTENSION remove a non-empty store */
bool		es_allow_drop_history = false;

/* a trigger es_events must keep: its name, function and firing */
typedef struct RequiredTrigger
{
	const char *name;
	const char *function;
	int16		type;
	int			since;
} RequiredTrigger;

/* since: the version whose install first has it */
static const RequiredTrigger es_required_triggers[] = {
	{"es_events_append_only", "es_events_append_only",
	TRIGGER_TYPE_BEFORE | TRIGGER_TYPE_UPDATE | TRIGGER_TYPE_DELETE | TRIGGER_TYPE_TRUNCATE, 0},
	{"es_events_append_only_row", "es_events_append_only",
	TRIGGER_TYPE_ROW | TRIGGER_TYPE_BEFORE | TRIGGER_TYPE_UPDATE | TRIGGER_TYPE_DELETE,
	ES_VERSION_0_2},
	{"es_events_insert_guard", "es_events_insert_guard",
	TRIGGER_TYPE_BEFORE | TRIGGER_TYPE_INSERT, 0},
	{"es_events_dispatch_inline", "es_dispatch_inline",
	TRIGGER_TYPE_INSERT, 0},
};

/* constraints es_events must keep */
static const struct
{
	const char *name;
	char		type;
	int			since;
}			es_required_constraints[] = {
	{"es_events_pkey", CONSTRAINT_PRIMARY, 0},
	{ES_STREAM_VERSION_CONSTRAINT, CONSTRAINT_UNIQUE, 0},
	{ES_EVENT_ID_CONSTRAINT, CONSTRAINT_UNIQUE, 0},
	{"es_events_version_check", CONSTRAINT_CHECK, 0},
	{ES_INSERT_CHECK_CONSTRAINT, CONSTRAINT_CHECK, ES_VERSION_0_2},
};

/*
 * es_events_append_only refuses to change or remove events.
 */
PG_FUNCTION_INFO_V1(es_events_append_only);
Datum
es_events_append_only(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = EsCheckTriggerCall(fcinfo, "es_events_append_only");
	const char *op;

	/* the one removal path: es_archive's own DELETE of archived rows */
	if (EsArchiveRemovalAllowed(trigdata))
		return TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ?
			PointerGetDatum(trigdata->tg_trigtuple) : PointerGetDatum(NULL);

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
 * es_events_insert_guard opens a direct-insert window for inserts that
 * bypass es_append.
 */
PG_FUNCTION_INFO_V1(es_events_insert_guard);
Datum
es_events_insert_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = EsCheckTriggerCall(fcinfo, "es_events_insert_guard");

	if (!EsInsideAppend())
		EsDirectInsertBegin(trigdata->tg_relation);
	/* a statement-level trigger returns a null pointer, not SQL NULL */
	return PointerGetDatum(NULL);
}

/*
 * Refuse raises the error for DDL that would change what es_pg keeps.
 */
static void
Refuse(const char *what, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s is not allowed: es_pg keeps it as it was made", what),
			 errdetail("%s", detail),
			 errhint("Events are never changed; the objects that keep them so are not either. See docs/privileges.md.")));
}

/*
 * IsMember says whether an object belongs to extension ext_oid, or is an
 * index, trigger or constraint of a relation that does.
 */
static bool
IsMember(Oid classid, Oid objid, Oid ext_oid)
{
	if (!OidIsValid(objid))
		return false;
	if (getExtensionOfObject(classid, objid) == ext_oid)
		return true;
	if (classid == RelationRelationId && get_rel_relkind(objid) == RELKIND_INDEX)
	{
		HeapTuple	tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(objid));
		Oid			table;

		if (!HeapTupleIsValid(tuple))
			return false;
		table = ((Form_pg_index) GETSTRUCT(tuple))->indrelid;
		ReleaseSysCache(tuple);
		return getExtensionOfObject(RelationRelationId, table) == ext_oid;
	}
	return false;
}

static bool
IsMemberRelation(RangeVar *rv, Oid ext_oid)
{
	Oid			relid;

	if (rv == NULL)
		return false;
	relid = RangeVarGetRelid(rv, NoLock, true);
	return IsMember(RelationRelationId, relid, ext_oid);
}

/*
 * IsMemberObject resolves an object named in a statement and says whether
 * it is one of es_pg's; objects that do not exist are left to the command.
 */
static bool
IsMemberObject(ObjectType type, Node *object, Oid ext_oid)
{
	ObjectAddress addr;
	Relation	rel = NULL;

	if (object == NULL)
		return false;
	addr = get_object_address(type, object, &rel, AccessShareLock, true);
	if (rel != NULL)
		relation_close(rel, NoLock);
	if (!OidIsValid(addr.objectId))
		return false;
	if (type == OBJECT_SCHEMA)
		return addr.objectId == EsExtensionNamespace(true);
	return IsMember(addr.classId, addr.objectId, ext_oid);
}

/*
 * AllowedTableSubcommand says whether an ALTER TABLE subcommand leaves
 * stored values and the guards alone (triggers and constraints are checked
 * again when the command ends).
 */
static bool
AllowedTableSubcommand(AlterTableType type)
{
	switch (type)
	{
		case AT_SetRelOptions:
		case AT_ResetRelOptions:
		case AT_SetStatistics:
		case AT_SetStorage:
		case AT_SetCompression:
		case AT_SetNotNull:
		case AT_AddConstraint:
		case AT_AddIndexConstraint:
		case AT_ValidateConstraint:
		case AT_AlterConstraint:
		case AT_DropConstraint:
		case AT_ClusterOn:
		case AT_DropCluster:
		case AT_ReplicaIdentity:
		case AT_EnableRowSecurity:
		case AT_DisableRowSecurity:
		case AT_ForceRowSecurity:
		case AT_NoForceRowSecurity:
		case AT_SetTableSpace:
		case AT_EnableTrig:
		case AT_EnableAlwaysTrig:
		case AT_EnableReplicaTrig:
		case AT_DisableTrig:
		case AT_EnableTrigAll:
		case AT_DisableTrigAll:
		case AT_EnableTrigUser:
		case AT_DisableTrigUser:
			return true;
		default:
			return false;
	}
}

static bool
AllowedIndexSubcommand(AlterTableType type)
{
	return type == AT_SetRelOptions || type == AT_ResetRelOptions ||
		type == AT_SetTableSpace || type == AT_SetStatistics;
}

/*
 * CheckAlterTable refuses the subcommands of an ALTER TABLE (or ALTER
 * INDEX, VIEW, SEQUENCE) on es_pg's relations that could change stored
 * values or the guards, and any that would hang es_events under, or over,
 * another table.
 */
static void
CheckAlterTable(AlterTableStmt *stmt, Oid ext_oid)
{
	bool		member = IsMemberRelation(stmt->relation, ext_oid);
	char		relkind = 0;
	ListCell   *lc;

	if (member)
		relkind = get_rel_relkind(RangeVarGetRelid(stmt->relation, NoLock, true));
	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);

		/* ATTACH PARTITION es_events, INHERIT es_events, on any table */
		if (cmd->subtype == AT_AttachPartition &&
			IsMemberRelation(((PartitionCmd *) cmd->def)->name, ext_oid))
			Refuse("attaching a table of es_pg as a partition",
				   "Rows of a partition can be reached through its parent, which es_pg's triggers do not guard.");
		if (cmd->subtype == AT_AddInherit &&
			IsMemberRelation((RangeVar *) cmd->def, ext_oid))
			Refuse("inheriting from a table of es_pg",
				   "Rows of a child table would show in the parent as if they were events.");
		if (!member)
			continue;
		if (relkind == RELKIND_INDEX || relkind == RELKIND_PARTITIONED_INDEX)
		{
			if (!AllowedIndexSubcommand(cmd->subtype))
				Refuse("this ALTER INDEX on an index of es_pg",
					   "Only storage parameters, statistics and the tablespace of es_pg's indexes may change.");
		}
		else if (relkind != RELKIND_RELATION)
			Refuse("ALTER on a view or sequence of es_pg",
				   "es_pg's views and its position sequence are part of what keeps the feed right.");
		else if (!AllowedTableSubcommand(cmd->subtype))
			Refuse("this ALTER TABLE on a table of es_pg",
				   "It could change stored values, the table's shape or its guards: column types, defaults, generated or identity columns, adding, dropping or renaming columns, NOT NULL, unlogged storage, the access method, inheritance, partitions, typed tables and the owner are kept as they are.");
	}
}

/*
 * HistoryExists says whether es_events holds events.
 */
static bool
HistoryExists(const EsCatalog *cat)
{
	int64		head;
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());

	head = EsHeadPosition(cat, snapshot);
	UnregisterSnapshot(snapshot);
	return head > 0;
}

/*
 * DropWouldRemoveHistory says whether a DROP statement names the extension,
 * or cascades over the schema that holds it, or a DROP OWNED drops the
 * objects of the role that owns it.
 */
static bool
DropWouldRemoveHistory(Node *parsetree, Oid ext_oid, Oid namespace_oid)
{
	ListCell   *lc;
	char	   *schema;

	if (IsA(parsetree, DropOwnedStmt))
	{
		Oid			owner = InvalidOid;
		HeapTuple	tuple;
		List	   *roles = roleSpecsToIds(((DropOwnedStmt *) parsetree)->roles);

		tuple = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(namespace_oid));
		if (HeapTupleIsValid(tuple))
		{
			owner = ((Form_pg_namespace) GETSTRUCT(tuple))->nspowner;
			ReleaseSysCache(tuple);
		}
		return list_member_oid(roles, owner) ||
			list_member_oid(roles, EsRelationOwner(EsGetCatalog(namespace_oid)->events_relid));
	}
	if (!IsA(parsetree, DropStmt))
		return false;
	if (((DropStmt *) parsetree)->removeType == OBJECT_EXTENSION)
	{
		foreach(lc, ((DropStmt *) parsetree)->objects)
		{
			if (strcmp(strVal(lfirst(lc)), "es_pg") == 0)
				return true;
		}
		return false;
	}
	if (((DropStmt *) parsetree)->removeType != OBJECT_SCHEMA ||
		((DropStmt *) parsetree)->behavior != DROP_CASCADE)
		return false;
	schema = get_namespace_name(namespace_oid);
	foreach(lc, ((DropStmt *) parsetree)->objects)
	{
		if (strcmp(strVal(lfirst(lc)), schema) == 0)
			return true;
	}
	return false;
}

/*
 * CheckCommandStart looks at a command before it runs.
 */
static void
CheckCommandStart(Node *parsetree, Oid ext_oid, Oid namespace_oid)
{
	switch (nodeTag(parsetree))
	{
		case T_AlterTableStmt:
			CheckAlterTable((AlterTableStmt *) parsetree, ext_oid);
			break;
		case T_RenameStmt:
			{
				RenameStmt *stmt = (RenameStmt *) parsetree;

				if (stmt->relation != NULL ?
					IsMemberRelation(stmt->relation, ext_oid) :
					IsMemberObject(stmt->renameType, stmt->object, ext_oid) ||
					(stmt->renameType == OBJECT_SCHEMA &&
					 strcmp(stmt->subname, get_namespace_name(namespace_oid)) == 0))
					Refuse("renaming an object of es_pg",
						   "es_pg and its users find its objects, columns, constraints and triggers by name.");
				break;
			}
		case T_AlterObjectSchemaStmt:
			{
				AlterObjectSchemaStmt *stmt = (AlterObjectSchemaStmt *) parsetree;

				if (stmt->relation != NULL ?
					IsMemberRelation(stmt->relation, ext_oid) :
					IsMemberObject(stmt->objectType, stmt->object, ext_oid))
					Refuse("moving an object of es_pg to another schema",
						   "es_pg's objects live in the schema it was installed in.");
				break;
			}
		case T_AlterOwnerStmt:
			{
				AlterOwnerStmt *stmt = (AlterOwnerStmt *) parsetree;

				if (stmt->relation != NULL ?
					IsMemberRelation(stmt->relation, ext_oid) :
					IsMemberObject(stmt->objectType, stmt->object, ext_oid))
					Refuse("changing the owner of an object of es_pg",
						   "es_pg runs its statements as the owners of its tables.");
				break;
			}
		case T_AlterFunctionStmt:
			{
				AlterFunctionStmt *stmt = (AlterFunctionStmt *) parsetree;
				Oid			fn = LookupFuncWithArgs(stmt->objtype, stmt->func, true);

				if (IsMember(ProcedureRelationId, fn, ext_oid))
					Refuse("altering a function of es_pg",
						   "Its volatility, security, settings and cost are part of what it promises.");
				break;
			}
		case T_AlterExtensionContentsStmt:
			if (strcmp(((AlterExtensionContentsStmt *) parsetree)->extname, "es_pg") == 0)
				Refuse("ALTER EXTENSION es_pg ADD or DROP",
					   "An object detached from es_pg could be replaced or dropped, and its guards with it.");
			break;
		case T_AlterSeqStmt:
			if (IsMemberRelation(((AlterSeqStmt *) parsetree)->sequence, ext_oid))
				Refuse("ALTER SEQUENCE on es_pg's position sequence",
					   "Positions must be handed out one at a time, in increasing order (CACHE 1, INCREMENT 1, NO CYCLE).");
			break;
		case T_RuleStmt:
			if (IsMemberRelation(((RuleStmt *) parsetree)->relation, ext_oid))
				Refuse("a rule on a table of es_pg",
					   "A rule could turn a refused UPDATE or DELETE into a silent no-op.");
			break;
		case T_CreateStmt:
			{
				ListCell   *lc;

				foreach(lc, ((CreateStmt *) parsetree)->inhRelations)
				{
					if (IsMemberRelation((RangeVar *) lfirst(lc), ext_oid))
						Refuse("inheriting from a table of es_pg",
							   "Rows of a child table would show in the parent as if they were events.");
				}
				break;
			}
		case T_DropStmt:
		case T_DropOwnedStmt:
			if (!es_allow_drop_history &&
				DropWouldRemoveHistory(parsetree, ext_oid, namespace_oid))
			{
				const EsCatalog *cat = EsGetCatalog(namespace_oid);

				if (HistoryExists(cat))
					ereport(ERROR,
							(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
							 errmsg("dropping es_pg would delete the event history"),
							 errdetail("es_events holds events up to global position %lld.",
									   (long long) EsHeadPosition(cat, GetActiveSnapshot())),
							 errhint("Dump the database first. To drop the event store and its history for good, a superuser sets es_pg.allow_drop_history = on.")));
			}
			break;
		default:
			break;
	}
}

/*
 * CheckChangedObjects refuses a command that changed one of es_pg's
 * objects in ways the start check cannot see coming: CREATE OR REPLACE of
 * a function or view, and any other command on one of them except those
 * the start check vetted and those that change no definition.
 */
static void
CheckChangedObjects(Oid ext_oid)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];

	values[0] = ObjectIdGetDatum(ext_oid);
	EsSpiConnect();
	EsExecuteAs(GetUserId(),
				"SELECT c.command_tag, c.object_identity"
				" FROM pg_catalog.pg_event_trigger_ddl_commands() c"
				" JOIN pg_catalog.pg_depend d"
				" ON d.classid OPERATOR(pg_catalog.=) c.classid"
				" AND d.objid OPERATOR(pg_catalog.=) c.objid"
				" AND d.deptype OPERATOR(pg_catalog.=) 'e'"
				" AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass"
				" AND d.refobjid OPERATOR(pg_catalog.=) $1"
				" WHERE NOT c.in_extension"
				" AND c.command_tag NOT IN ('ALTER TABLE', 'ALTER INDEX',"
				" 'COMMENT', 'GRANT', 'REVOKE', 'SECURITY LABEL', 'ALTER EXTENSION')"
				" LIMIT 1",
				1, argtypes, values, NULL, InvalidSnapshot, true, 1);
	if (SPI_processed > 0)
	{
		char	   *tag = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		char	   *object = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);

		Refuse(psprintf("%s on %s", tag, object),
			   "Replacing or altering a function or view of es_pg could switch off what it guards.");
	}
	SPI_finish();
}

/*
 * MemberFunction returns the OID of es_pg's function of that name taking
 * no arguments (its trigger functions), or InvalidOid.
 */
static Oid
MemberFunction(const char *name, Oid namespace_oid)
{
	oidvector  *args = buildoidvector(NULL, 0);

	return GetSysCacheOid3(PROCNAMEARGSNSP, Anum_pg_proc_oid,
						   CStringGetDatum(name), PointerGetDatum(args),
						   ObjectIdGetDatum(namespace_oid));
}

/*
 * CheckEventsIntact raises an error unless es_events has kept its
 * triggers, constraints and storage, and has no rules, parents or
 * children.
 */
static void
CheckEventsIntact(Oid namespace_oid)
{
	Oid			events_relid = get_relname_relid("es_events", namespace_oid);
	int			version = EsInstalledVersion(namespace_oid);
	Relation	rel;
	TriggerDesc *trigdesc;
	Relation	crel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	int			i;

	if (!OidIsValid(events_relid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("es_events is no longer in schema \"%s\"",
						get_namespace_name(namespace_oid)),
				 errdetail("es_pg keeps its event table under its name, in the schema it was installed in.")));
	rel = table_open(events_relid, AccessShareLock);

	trigdesc = rel->trigdesc;
	for (i = 0; i < lengthof(es_required_triggers); i++)
	{
		const RequiredTrigger *req = &es_required_triggers[i];
		Oid			fn = MemberFunction(req->function, namespace_oid);
		bool		ok = false;
		int			j;

		if (version < req->since)
			continue;
		for (j = 0; trigdesc != NULL && j < trigdesc->numtriggers; j++)
		{
			Trigger    *trig = &trigdesc->triggers[j];

			if (strcmp(trig->tgname, req->name) == 0)
				ok = trig->tgenabled == TRIGGER_FIRES_ALWAYS &&
					trig->tgfoid == fn && trig->tgtype == req->type;
		}
		if (!ok)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("trigger \"%s\" on es_events must stay in place and enabled ALWAYS",
							req->name),
					 errdetail("It keeps the event store append-only and the global feed gap-free.")));
	}
	if (rel->rd_rel->relhasrules)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("rules on es_events are not allowed"),
				 errdetail("A rule could turn a refused UPDATE or DELETE into a silent no-op.")));
	if (rel->rd_rel->relpersistence != RELPERSISTENCE_PERMANENT ||
		rel->rd_rel->relispartition || rel->rd_rel->relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("es_events must stay a permanent table of its own"),
				 errdetail("An unlogged table loses its rows in a crash; a partition can be written through its parent.")));
	table_close(rel, AccessShareLock);

	/* 0.2.0: category reads and subscriptions walk the category index */
	if (version >= ES_VERSION_0_2 &&
		!OidIsValid(get_relname_relid(ES_CATEGORY_INDEX, namespace_oid)))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("index \"%s\" on es_events must stay in place",
						ES_CATEGORY_INDEX),
				 errdetail("Category reads and subscriptions rely on it.")));

	for (i = 0; i < lengthof(es_required_constraints); i++)
	{
		bool		ok = false;

		if (version < es_required_constraints[i].since)
			continue;
		tuple = SearchSysCache1(CONSTROID,
								ObjectIdGetDatum(get_relation_constraint_oid(events_relid,
																			 es_required_constraints[i].name,
																			 true)));
		if (HeapTupleIsValid(tuple))
		{
			Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tuple);

			ok = con->contype == es_required_constraints[i].type &&
				!con->condeferrable && con->convalidated;
			ReleaseSysCache(tuple);
		}
		if (!ok)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("constraint \"%s\" on es_events must stay in place",
							es_required_constraints[i].name),
					 es_required_constraints[i].type == CONSTRAINT_CHECK ?
					 errdetail("Every event must pass it, however it is inserted.") :
					 errdetail("Versions, event ids and global positions rely on it being unique.")));
	}

	/* neither parent nor child of another table */
	crel = table_open(InheritsRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_inherits_inhparent, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(events_relid));
	scan = systable_beginscan(crel, InheritsParentIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	systable_endscan(scan);
	table_close(crel, AccessShareLock);
	if (HeapTupleIsValid(tuple) || has_superclass(events_relid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("es_events must not inherit from or be inherited by another table"),
				 errdetail("Rows of a child table would show in es_events as if they were events.")));

}

/*
 * CheckSubscription refuses a command that creates a subscription, or
 * gives one new tables, and es_events is now among them: the apply worker
 * would write events past es_pg's checks, in an order the feed cannot
 * follow (the check constraint refuses its rows anyway; this says so at
 * once).  Other subscription commands are left alone, so that such a
 * subscription can still be disabled and dropped.
 */
static void
CheckSubscription(Node *parsetree, Oid namespace_oid)
{
	Relation	crel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			events_relid = get_relname_relid("es_events", namespace_oid);

	if (!IsA(parsetree, CreateSubscriptionStmt) &&
		!(IsA(parsetree, AlterSubscriptionStmt) &&
		  (((AlterSubscriptionStmt *) parsetree)->kind == ALTER_SUBSCRIPTION_REFRESH ||
		   ((AlterSubscriptionStmt *) parsetree)->kind == ALTER_SUBSCRIPTION_ADD_PUBLICATION ||
		   ((AlterSubscriptionStmt *) parsetree)->kind == ALTER_SUBSCRIPTION_SET_PUBLICATION)))
		return;
	crel = table_open(SubscriptionRelRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_subscription_rel_srrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(events_relid));
	scan = systable_beginscan(crel, InvalidOid, false, NULL, 1, &key);
	tuple = systable_getnext(scan);
	systable_endscan(scan);
	table_close(crel, AccessShareLock);
	if (HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("es_events cannot be the target of a logical replication subscription"),
				 errdetail("The apply worker would write events past es_pg's checks, in an order the feed cannot follow."),
				 errhint("Replicate the database physically, or follow es_read_all and append with es_append.")));
}

/*
 * es_ddl_guard is the event trigger function described at the top.
 */
PG_FUNCTION_INFO_V1(es_ddl_guard);
Datum
es_ddl_guard(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	Oid			ext_oid;
	Oid			namespace_oid;

	trigdata = EsCheckEventTriggerCall(fcinfo, "es_ddl_guard");

	ext_oid = get_extension_oid("es_pg", true);
	if (!OidIsValid(ext_oid))
		PG_RETURN_NULL();
	/*
	 * es_pg's own scripts build and rebuild what is checked here, and so
	 * does pg_upgrade's restore of the schema (binary upgrade), which adds
	 * every object to the extension one by one.
	 */
	if ((creating_extension && CurrentExtensionObject == ext_oid) ||
		IsBinaryUpgrade)
		PG_RETURN_NULL();
	namespace_oid = EsExtensionNamespace(true);
	if (!OidIsValid(namespace_oid))
		PG_RETURN_NULL();

	if (strcmp(trigdata->event, "ddl_command_start") == 0)
		CheckCommandStart(trigdata->parsetree, ext_oid, namespace_oid);
	else
	{
		CheckChangedObjects(ext_oid);
		CheckEventsIntact(namespace_oid);
		CheckSubscription(trigdata->parsetree, namespace_oid);
	}
	PG_RETURN_NULL();
}

/*
 * EsInitGuard defines es_pg.allow_drop_history; called from _PG_init.
 */
void
EsInitGuard(void)
{
	DefineCustomBoolVariable("es_pg.allow_drop_history",
							 "Lets DROP EXTENSION es_pg delete an event store that holds events.",
							 NULL,
							 &es_allow_drop_history,
							 false,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
}
