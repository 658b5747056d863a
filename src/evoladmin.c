/*-------------------------------------------------------------------------
 *
 * evoladmin.c
 *	  Administering event schema evolution: es_register_event_type,
 *	  es_drop_event_type, es_create_upcaster, es_drop_upcaster, and the
 *	  event trigger that keeps their functions from being dropped.
 *
 * The functions are idempotent where migrations need it: registering a
 * type again at its current version replaces its validators, creating an
 * upcaster that exists with the same function does nothing, and the drops
 * take missing_ok.  A type's version only goes up: events recorded at a
 * version keep meaning what that version meant.  Each function takes
 * ShareRowExclusiveLock on the table it writes, so that concurrent
 * registrations of one type follow each other.
 *
 * Validator functions and upcasters run as the role that registered or
 * created them, with the search_path of that moment (evolution.c), so the
 * caller must be able to execute them now.
 *
 * IDENTIFICATION
 *	  src/evoladmin.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

#include "es_pg.h"
#include "common.h"

static const EsStatement TypeVersionStatement = {
	"SELECT t.schema_version FROM @extschema@.es_event_types t"
	" WHERE t.event_type OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}, false
};

static const EsStatement RegisterStatement = {
	"INSERT INTO @extschema@.es_event_types AS t"
	" (event_type, schema_version, validator, validator_function, owner,"
	" search_path, extension)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7)"
	" ON CONFLICT (event_type) DO UPDATE SET"
	" schema_version = excluded.schema_version,"
	" validator = excluded.validator,"
	" validator_function = excluded.validator_function,"
	" owner = excluded.owner, search_path = excluded.search_path,"
	" registered_at = pg_catalog.now(), extension = excluded.extension",
	7, {TEXTOID, INT4OID, JSONPATHOID, TEXTOID, REGROLEOID, TEXTOID, NAMEOID},
	false
};

static const EsStatement CountUpcastersStatement = {
	"SELECT 1 FROM @extschema@.es_upcasters u"
	" WHERE u.event_type OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}, false
};

static const EsStatement DropTypeStatement = {
	"DELETE FROM @extschema@.es_event_types t"
	" WHERE t.event_type OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}, false
};

static const EsStatement UpcasterStatement = {
	"SELECT u.upcaster FROM @extschema@.es_upcasters u"
	" WHERE u.event_type OPERATOR(pg_catalog.=) $1"
	" AND u.from_version OPERATOR(pg_catalog.=) $2",
	2, {TEXTOID, INT4OID}, false
};

static const EsStatement CreateUpcasterStatement = {
	"INSERT INTO @extschema@.es_upcasters"
	" (event_type, from_version, upcaster, owner, search_path, extension)"
	" VALUES ($1, $2, $3, $4, $5, $6)",
	6, {TEXTOID, INT4OID, TEXTOID, REGROLEOID, TEXTOID, NAMEOID}, false
};

static const EsStatement DropUpcasterStatement = {
	"DELETE FROM @extschema@.es_upcasters u"
	" WHERE u.event_type OPERATOR(pg_catalog.=) $1"
	" AND u.from_version OPERATOR(pg_catalog.=) $2",
	2, {TEXTOID, INT4OID}, false
};

/* the install and the owner of its registry tables */
typedef struct RegistryTables
{
	const EsCatalog *cat;
	Oid			types_relid;
	Oid			upcasters_relid;
	Oid			owner;
	Oid			events_type;
} RegistryTables;

/*
 * GetRegistryTables finds the registry tables of the called function's
 * install.
 */
static void
GetRegistryTables(FunctionCallInfo fcinfo, RegistryTables *rt)
{
	rt->cat = EsGetCatalogForFunction(fcinfo);
	rt->types_relid = EsLookupRelation("es_event_types",
									   rt->cat->namespace_oid, false);
	rt->upcasters_relid = EsLookupRelation("es_upcasters",
										   rt->cat->namespace_oid, false);
	rt->owner = EsRelationOwner(rt->types_relid);
	rt->events_type = get_rel_type_id(rt->cat->events_relid);
}

/*
 * Run runs a registry statement as the owner of the tables and returns
 * the rows it processed.  The caller is connected to SPI.
 */
static uint64
Run(const RegistryTables *rt, const EsStatement *stmt, Datum *values,
	const char *nulls)
{
	(void) EsExecute(stmt, rt->cat->namespace_oid, rt->owner, values, nulls,
					 InvalidSnapshot);
	return SPI_processed;
}

/*
 * EventTypeArgument reads and checks an event type argument.
 */
static text *
EventTypeArgument(FunctionCallInfo fcinfo, int argno)
{
	text	   *t = EsTextArgument(fcinfo, argno, "event type");

	EsValidateEventType(t, -1);
	return t;
}

/*
 * CheckFunction raises a clear error unless fn is a plain function taking
 * the argument types and returning rettype.
 */
static void
CheckFunction(Oid fn, int nargs, const Oid *argtypes, Oid rettype,
			  const char *what, const char *expected)
{
	HeapTuple	tuple;
	Form_pg_proc proc;
	bool		ok;
	int			i;

	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("%s function with OID %u does not exist", what, fn)));
	proc = (Form_pg_proc) GETSTRUCT(tuple);
	ok = proc->prokind == PROKIND_FUNCTION && !proc->proretset &&
		proc->prorettype == rettype && proc->pronargs == nargs;
	for (i = 0; ok && i < nargs; i++)
		ok = proc->proargtypes.values[i] == argtypes[i];
	ReleaseSysCache(tuple);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s %s has the wrong signature", what,
						format_procedure(fn)),
				 errdetail("A%s %s must be a function %s.",
						   what[0] == 'u' ? "n" : "", what, expected)));
}

/*
 * CurrentVersion returns the registered version of a type, 0 when it is
 * not registered.  The caller is connected to SPI.
 */
static int32
CurrentVersion(const RegistryTables *rt, text *event_type)
{
	Datum		values[1];
	bool		isnull;

	values[0] = PointerGetDatum(event_type);
	if (Run(rt, &TypeVersionStatement, values, NULL) == 0)
		return 0;
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * es_register_event_type registers an event type at a schema version, or
 * raises its version, with the validators that appends of that version
 * must pass.  Registering a type again at its current version replaces
 * its validators.
 *
 * es_register_event_type(event_type text, schema_version integer,
 *						  validator jsonpath, validator_function regprocedure)
 */
PG_FUNCTION_INFO_V1(es_register_event_type);
Datum
es_register_event_type(PG_FUNCTION_ARGS)
{
	text	   *event_type = EventTypeArgument(fcinfo, 0);
	int32		version;
	int32		current;
	RegistryTables rt;
	Datum		values[7];
	char		nulls[7];

	EsRequireArgument(fcinfo, 1, "schema version");
	version = PG_GETARG_INT32(1);
	if (version < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("schema version must be at least 1"),
				 errdetail("Got %d.", version)));
	GetRegistryTables(fcinfo, &rt);

	memset(nulls, ' ', sizeof(nulls));
	values[0] = PointerGetDatum(event_type);
	values[1] = Int32GetDatum(version);
	values[2] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	nulls[2] = PG_ARGISNULL(2) ? 'n' : ' ';
	values[3] = (Datum) 0;
	nulls[3] = 'n';
	if (!PG_ARGISNULL(3))
	{
		Oid			fn = PG_GETARG_OID(3);
		Oid			argtypes[2] = {JSONBOID, JSONBOID};

		CheckFunction(fn, 2, argtypes, BOOLOID, "validator",
					  "validator(data jsonb, metadata jsonb) RETURNS boolean");
		EsCheckExecute(fn, GetUserId());
		values[3] = CStringGetTextDatum(format_procedure_qualified(fn));
		nulls[3] = ' ';
	}
	values[4] = ObjectIdGetDatum(GetUserId());
	values[5] = CStringGetTextDatum(EsPinnedSearchPath());
	values[6] = EsCreatingExtensionName();
	nulls[6] = values[6] == (Datum) 0 ? 'n' : ' ';

	LockRelationOid(rt.types_relid, ShareRowExclusiveLock);
	EsSpiConnect();
	current = CurrentVersion(&rt, event_type);
	if (version < current)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event type \"%s\" is at schema version %d already",
						text_to_cstring(event_type), current),
				 errdetail("A schema version only goes up: events recorded at version %d keep meaning what it meant.",
						   current),
				 errhint("Register version %d or higher.", current)));
	(void) Run(&rt, &RegisterStatement, values, nulls);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * es_drop_event_type forgets a registered type, which must have no
 * upcasters.  Its events keep the versions recorded with them; new appends
 * of the type record none.
 *
 * es_drop_event_type(event_type text, missing_ok boolean)
 */
PG_FUNCTION_INFO_V1(es_drop_event_type);
Datum
es_drop_event_type(PG_FUNCTION_ARGS)
{
	text	   *event_type = EventTypeArgument(fcinfo, 0);
	bool		missing_ok;
	RegistryTables rt;
	Datum		values[1];

	EsRequireArgument(fcinfo, 1, "missing_ok");
	missing_ok = PG_GETARG_BOOL(1);
	GetRegistryTables(fcinfo, &rt);
	values[0] = PointerGetDatum(event_type);

	LockRelationOid(rt.types_relid, ShareRowExclusiveLock);
	LockRelationOid(rt.upcasters_relid, ShareRowExclusiveLock);
	EsSpiConnect();
	if (Run(&rt, &CountUpcastersStatement, values, NULL) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("event type \"%s\" has upcasters",
						text_to_cstring(event_type)),
				 errhint("Drop them first with es_drop_upcaster.")));
	if (Run(&rt, &DropTypeStatement, values, NULL) == 0 && !missing_ok)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("event type \"%s\" is not registered",
						text_to_cstring(event_type)),
				 errhint("Pass missing_ok => true to drop it only if it is registered.")));
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * es_create_upcaster makes readers see the events of a type recorded at
 * from_version through upcaster(event es_events) RETURNS es_events, which
 * returns the event in the shape of the next version.  Creating it again
 * with the same function does nothing.
 *
 * es_create_upcaster(event_type text, from_version integer,
 *					  upcaster regprocedure)
 */
PG_FUNCTION_INFO_V1(es_create_upcaster);
Datum
es_create_upcaster(PG_FUNCTION_ARGS)
{
	text	   *event_type = EventTypeArgument(fcinfo, 0);
	int32		from_version;
	int32		current;
	Oid			fn;
	char	   *name;
	RegistryTables rt;
	Datum		values[6];
	char		nulls[6];

	EsRequireArgument(fcinfo, 1, "from_version");
	EsRequireArgument(fcinfo, 2, "upcaster");
	from_version = PG_GETARG_INT32(1);
	fn = PG_GETARG_OID(2);
	GetRegistryTables(fcinfo, &rt);
	CheckFunction(fn, 1, &rt.events_type, rt.events_type, "upcaster",
				  "upcaster(event es_events) RETURNS es_events");
	EsCheckExecute(fn, GetUserId());
	name = format_procedure_qualified(fn);

	LockRelationOid(rt.types_relid, ShareRowExclusiveLock);
	LockRelationOid(rt.upcasters_relid, ShareRowExclusiveLock);
	EsSpiConnect();
	current = CurrentVersion(&rt, event_type);
	if (current == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("event type \"%s\" is not registered",
						text_to_cstring(event_type)),
				 errhint("Register its current version first with es_register_event_type.")));
	if (from_version < 1 || from_version >= current)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("from_version %d is not below the current version of event type \"%s\"",
						from_version, text_to_cstring(event_type)),
				 errdetail("Event type \"%s\" is at schema version %d; an upcaster goes from a version between 1 and %d to the next.",
						   text_to_cstring(event_type), current, current - 1),
				 errhint("Register the version the upcaster leads to first with es_register_event_type.")));

	values[0] = PointerGetDatum(event_type);
	values[1] = Int32GetDatum(from_version);
	if (Run(&rt, &UpcasterStatement, values, NULL) > 0)
	{
		char	   *existing = SPI_getvalue(SPI_tuptable->vals[0],
											SPI_tuptable->tupdesc, 1);

		if (strcmp(existing, name) == 0)
		{
			SPI_finish();
			PG_RETURN_VOID();
		}
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("event type \"%s\" has an upcaster from version %d already",
						text_to_cstring(event_type), from_version),
				 errdetail("It is %s.", existing),
				 errhint("Drop it first with es_drop_upcaster.")));
	}
	memset(nulls, ' ', sizeof(nulls));
	values[2] = CStringGetTextDatum(name);
	values[3] = ObjectIdGetDatum(GetUserId());
	values[4] = CStringGetTextDatum(EsPinnedSearchPath());
	values[5] = EsCreatingExtensionName();
	nulls[5] = values[5] == (Datum) 0 ? 'n' : ' ';
	(void) Run(&rt, &CreateUpcasterStatement, values, nulls);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * es_drop_upcaster drops the upcaster of a type from a version: readers
 * then see those events as they are stored.
 *
 * es_drop_upcaster(event_type text, from_version integer,
 *					missing_ok boolean)
 */
PG_FUNCTION_INFO_V1(es_drop_upcaster);
Datum
es_drop_upcaster(PG_FUNCTION_ARGS)
{
	text	   *event_type = EventTypeArgument(fcinfo, 0);
	int32		from_version;
	bool		missing_ok;
	RegistryTables rt;
	Datum		values[2];

	EsRequireArgument(fcinfo, 1, "from_version");
	EsRequireArgument(fcinfo, 2, "missing_ok");
	from_version = PG_GETARG_INT32(1);
	missing_ok = PG_GETARG_BOOL(2);
	GetRegistryTables(fcinfo, &rt);
	values[0] = PointerGetDatum(event_type);
	values[1] = Int32GetDatum(from_version);

	LockRelationOid(rt.upcasters_relid, ShareRowExclusiveLock);
	EsSpiConnect();
	if (Run(&rt, &DropUpcasterStatement, values, NULL) == 0 && !missing_ok)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("event type \"%s\" has no upcaster from version %d",
						text_to_cstring(event_type), from_version),
				 errhint("Pass missing_ok => true to drop it only if it exists.")));
	SPI_finish();
	PG_RETURN_VOID();
}

/* upcasters and validator functions that the command being run drops */
static const EsStatement DroppedUpcastersStatement = {
	"SELECT u.event_type, u.from_version, d.object_identity"
	" FROM @extschema@.es_upcasters u,"
	" pg_catalog.pg_event_trigger_dropped_objects() d"
	" WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass"
	" AND d.object_identity OPERATOR(pg_catalog.=) u.upcaster"
	" ORDER BY 1, 2",
	0, {InvalidOid}, false
};

static const EsStatement DroppedValidatorsStatement = {
	"SELECT t.event_type, d.object_identity"
	" FROM @extschema@.es_event_types t,"
	" pg_catalog.pg_event_trigger_dropped_objects() d"
	" WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass"
	" AND d.object_identity OPERATOR(pg_catalog.=) t.validator_function"
	" ORDER BY 1",
	0, {InvalidOid}, false
};

static const EsStatement ClearValidatorStatement = {
	"UPDATE @extschema@.es_event_types t SET validator_function = NULL"
	" WHERE t.event_type OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}, false
};

/*
 * es_evolution_sql_drop is the sql_drop event trigger that keeps upcasters
 * and validator functions from being dropped under the registry: a plain
 * DROP FUNCTION of one is refused (2BP01); with CASCADE (or with its
 * extension) the upcaster is dropped, or the type loses its validator
 * function, with a notice.
 */
PG_FUNCTION_INFO_V1(es_evolution_sql_drop);
Datum
es_evolution_sql_drop(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	const EsCatalog *cat;
	RegistryTables rt;
	bool		cascade;
	uint64		n;
	uint64		i;
	char	  **types;
	int32	   *versions;

	trigdata = EsCheckEventTriggerCall(fcinfo, "es_evolution_sql_drop");
	/* pg_upgrade's restore of the schema drops nothing of ours */
	if (IsBinaryUpgrade)
		PG_RETURN_NULL();
	cat = EsGetCatalogForExtension(true);
	if (cat == NULL || cat->version < ES_VERSION_0_2)
		PG_RETURN_NULL();
	rt.cat = cat;
	rt.types_relid = EsLookupRelation("es_event_types", cat->namespace_oid,
									  true);
	rt.upcasters_relid = EsLookupRelation("es_upcasters", cat->namespace_oid,
										  true);
	if (!OidIsValid(rt.types_relid) || !OidIsValid(rt.upcasters_relid))
		PG_RETURN_NULL();
	rt.owner = EsRelationOwner(rt.types_relid);
	cascade = EsDropCascades(trigdata->parsetree);

	EsSpiConnect();
	n = Run(&rt, &DroppedUpcastersStatement, NULL, NULL);
	if (n > 0 && !cascade)
	{
		bool		isnull;

		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot drop function %s because it is the upcaster of event type \"%s\" from version %d",
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3),
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
						DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
													SPI_tuptable->tupdesc,
													2, &isnull))),
				 errhint("Drop the upcaster first with es_drop_upcaster, or use DROP ... CASCADE.")));
	}
	types = palloc(Max(n, 1) * sizeof(char *));
	versions = palloc(Max(n, 1) * sizeof(int32));
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		types[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		versions[i] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
												  SPI_tuptable->tupdesc, 2,
												  &isnull));
	}
	for (i = 0; i < n; i++)
	{
		Datum		values[2];

		ereport(NOTICE,
				(errmsg("drop cascades to the upcaster of event type \"%s\" from version %d",
						types[i], versions[i])));
		values[0] = CStringGetTextDatum(types[i]);
		values[1] = Int32GetDatum(versions[i]);
		(void) Run(&rt, &DropUpcasterStatement, values, NULL);
	}

	n = Run(&rt, &DroppedValidatorsStatement, NULL, NULL);
	if (n > 0 && !cascade)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot drop function %s because it is the validator function of event type \"%s\"",
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2),
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)),
				 errhint("Register the type again without it with es_register_event_type, or use DROP ... CASCADE.")));
	types = palloc(Max(n, 1) * sizeof(char *));
	for (i = 0; i < n; i++)
		types[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
	for (i = 0; i < n; i++)
	{
		Datum		values[1];

		ereport(NOTICE,
				(errmsg("drop cascades to the validator function of event type \"%s\"",
						types[i])));
		values[0] = CStringGetTextDatum(types[i]);
		(void) Run(&rt, &ClearValidatorStatement, values, NULL);
	}
	SPI_finish();
	PG_RETURN_NULL();
}
