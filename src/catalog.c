/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  Find the extension's tables, indexes and sequence, once per backend.
 *
 * Every SQL-callable function of es_pg lives in the extension's schema, so
 * the schema of the function being called names the install.  Three caches
 * keep the OIDs, each for one install at a time: EsCatalog (es_events, its
 * indexes and sequence), EsSnapshotCatalog (the snapshot tables) and
 * EsProjectionCatalog (the projection tables).  One relcache callback
 * resets each when one of its tables is dropped or rebuilt, which covers
 * DROP EXTENSION followed by CREATE, and counts the changes of
 * es_projections (es_projections_generation, see projcache.c); syscache
 * callbacks count the changes of functions and roles there too, which the
 * cached projection definitions depend on.
 *
 * IDENTIFICATION
 *	  src/catalog.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/syscache.h"

#include "es_pg.h"

static EsCatalog es_catalog;
static bool es_catalog_valid = false;

static EsSnapshotCatalog es_snapshot_catalog;
static bool es_snapshot_catalog_valid = false;

static EsProjectionCatalog es_projection_catalog;
static bool es_projection_catalog_valid = false;

/* changes of es_projections, functions and roles seen by this backend */
uint64		es_projections_generation = 0;

/* the columns es_events must have, in this order (the last from 0.2.0 on) */
static const EsColumn es_events_columns[Natts_es_events + 1] =
{
	{"global_position", INT8OID},
	{"stream_id", TEXTOID},
	{"version", INT8OID},
	{"event_id", UUIDOID},
	{"event_type", TEXTOID},
	{"data", JSONBOID},
	{"metadata", JSONBOID},
	{"recorded_at", TIMESTAMPTZOID},
	{"schema_version", INT4OID},
};

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
 * RelcacheCallback forgets the cached OIDs of the tables that changed,
 * or all of them when the whole relcache is reset.  es_projections_changed
 * sends a relcache invalidation for every write to es_projections.
 */
static void
RelcacheCallback(Datum arg, Oid relid)
{
	bool		all = !OidIsValid(relid);

	if (all || relid == es_catalog.events_relid)
		es_catalog_valid = false;
	if (all || relid == es_snapshot_catalog.snapshots_relid ||
		relid == es_snapshot_catalog.policies_relid)
		es_snapshot_catalog_valid = false;
	if (all || relid == es_projection_catalog.projections_relid)
	{
		es_projection_catalog_valid = false;
		es_projections_generation++;
	}
	else if (relid == es_projection_catalog.checkpoints_relid)
		es_projection_catalog_valid = false;
}

/*
 * SyscacheCallback counts a change of a function or a role: a handler
 * replaced, EXECUTE revoked, an owner dropped.
 */
static void
SyscacheCallback(Datum arg, int cacheid, uint32 hashvalue)
{
	es_projections_generation++;
}

/*
 * EsInitCatalogCache registers the invalidation callbacks; called from
 * _PG_init.
 */
void
EsInitCatalogCache(void)
{
	CacheRegisterRelcacheCallback(RelcacheCallback, (Datum) 0);
	CacheRegisterSyscacheCallback(PROCOID, SyscacheCallback, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, SyscacheCallback, (Datum) 0);
}

/*
 * EsLookupRelation returns the OID of a relation of the extension in the
 * given schema.  A missing one is InvalidOid when missing_ok, else an error
 * that tells the user the install is damaged.
 */
Oid
EsLookupRelation(const char *name, Oid namespace_oid, bool missing_ok)
{
	Oid			relid = get_relname_relid(name, namespace_oid);

	if (!OidIsValid(relid) && !missing_ok)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("relation \"%s.%s\" of extension es_pg does not exist",
						get_namespace_name(namespace_oid), name),
				 errhint("Reinstall the extension with DROP EXTENSION es_pg and CREATE EXTENSION es_pg.")));
	return relid;
}

/*
 * EsCheckTableShape verifies that a table of the extension has the columns
 * the C code reads and writes by attribute number.
 */
void
EsCheckTableShape(Oid relid, const EsColumn *columns, int ncolumns)
{
	Relation	rel = table_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	if (desc->natts != ncolumns)
		elog(ERROR, "%s has %d columns, expected %d",
			 RelationGetRelationName(rel), desc->natts, ncolumns);
	for (i = 0; i < ncolumns; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped ||
			strcmp(NameStr(att->attname), columns[i].name) != 0 ||
			att->atttypid != columns[i].type)
			elog(ERROR, "column %d of %s is not \"%s\" of the expected type",
				 i + 1, RelationGetRelationName(rel), columns[i].name);
	}
	table_close(rel, AccessShareLock);
}

/*
 * EsInstalledVersion returns the version of the es_pg install in a schema as
 * major * 10000 + minor * 100 + patch (0.2.0 is 200): the C library serves
 * the SQL of every version until ALTER EXTENSION es_pg UPDATE.  The cache
 * holding it is reset when es_events changes, which every update does.
 */
int
EsInstalledVersion(Oid namespace_oid)
{
	Relation	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	int			version = 0;

	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("es_pg"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple) &&
		((Form_pg_extension) GETSTRUCT(tuple))->extnamespace == namespace_oid)
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);
		int			major = 0,
					minor = 0,
					patch = 0;

		if (!isnull)
			(void) sscanf(TextDatumGetCString(d), "%d.%d.%d",
						  &major, &minor, &patch);
		version = major * 10000 + minor * 100 + patch;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

/*
 * RelationColumns returns the number of columns of a relation.
 */
static int
RelationColumns(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	int			natts;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	natts = ((Form_pg_class) GETSTRUCT(tuple))->relnatts;
	ReleaseSysCache(tuple);
	return natts;
}

/*
 * EsGetCatalog returns the OIDs of the install in the given schema.
 */
const EsCatalog *
EsGetCatalog(Oid namespace_oid)
{
	if (es_catalog_valid && es_catalog.namespace_oid == namespace_oid)
		return &es_catalog;

	es_catalog_valid = false;
	es_catalog.namespace_oid = namespace_oid;
	es_catalog.events_relid =
		EsLookupRelation("es_events", namespace_oid, false);
	es_catalog.position_index =
		EsLookupRelation("es_events_pkey", namespace_oid, false);
	es_catalog.stream_index =
		EsLookupRelation(ES_STREAM_VERSION_CONSTRAINT, namespace_oid, false);
	es_catalog.event_id_index =
		EsLookupRelation(ES_EVENT_ID_CONSTRAINT, namespace_oid, false);
	es_catalog.position_seq =
		EsLookupRelation("es_events_position_seq", namespace_oid, false);
	es_catalog.version = EsInstalledVersion(namespace_oid);
	/* schema_version comes with 0.2.0's SQL, after ALTER EXTENSION UPDATE */
	es_catalog.events_natts =
		RelationColumns(es_catalog.events_relid) > Natts_es_events ?
		Natts_es_events + 1 : Natts_es_events;
	EsCheckTableShape(es_catalog.events_relid, es_events_columns,
					  es_catalog.events_natts);
	es_catalog_valid = true;
	return &es_catalog;
}

/*
 * EsGetSnapshotCatalog returns the OIDs of the snapshot tables of the
 * install that cat describes.
 */
const EsSnapshotCatalog *
EsGetSnapshotCatalog(const EsCatalog *cat)
{
	EsSnapshotCatalog *sc = &es_snapshot_catalog;

	if (es_snapshot_catalog_valid && sc->namespace_oid == cat->namespace_oid)
		return sc;

	es_snapshot_catalog_valid = false;
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
	es_snapshot_catalog_valid = true;
	return sc;
}

/*
 * EsGetProjectionCatalog returns the projection tables of the install that
 * cat describes.  With missing_ok, NULL means they do not exist (yet).
 */
const EsProjectionCatalog *
EsGetProjectionCatalog(const EsCatalog *cat, bool missing_ok)
{
	EsProjectionCatalog *pc = &es_projection_catalog;
	Oid			relid;

	if (es_projection_catalog_valid && pc->namespace_oid == cat->namespace_oid)
		return pc;

	es_projection_catalog_valid = false;
	relid = EsLookupRelation("es_projections", cat->namespace_oid, missing_ok);
	if (!OidIsValid(relid))
		return NULL;
	pc->projections_relid = relid;
	/* where async projections stand: their subscriptions' members (0.2.0) */
	pc->checkpoints_relid =
		EsLookupRelation(cat->version >= ES_VERSION_0_2 ?
						 "es_subscription_members" : "es_projection_checkpoints",
						 cat->namespace_oid, missing_ok);
	if (!OidIsValid(pc->checkpoints_relid))
		return NULL;
	pc->namespace_oid = cat->namespace_oid;
	pc->owner = EsRelationOwner(relid);
	pc->events_type = get_rel_type_id(cat->events_relid);
	pc->version = cat->version;
	es_projection_catalog_valid = true;
	return pc;
}

/*
 * EsGetCatalogForFunction returns the catalog of the install that the
 * called function belongs to.
 */
const EsCatalog *
EsGetCatalogForFunction(FunctionCallInfo fcinfo)
{
	Oid			namespace_oid = get_func_namespace(fcinfo->flinfo->fn_oid);

	if (!OidIsValid(namespace_oid))
		elog(ERROR, "cache lookup failed for function %u",
			 fcinfo->flinfo->fn_oid);
	return EsGetCatalog(namespace_oid);
}

/*
 * ExtensionSchema returns the schema an extension was installed in
 * (get_extension_schema is not exported before PostgreSQL 16).
 */
static Oid
ExtensionSchema(Oid ext_oid)
{
	Relation	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			result = InvalidOid;

	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(ext_oid));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
		result = ((Form_pg_extension) GETSTRUCT(tuple))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return result;
}

/*
 * EsGetCatalogForExtension finds the install through pg_extension, for code
 * that does not run inside one of the extension's functions (background
 * workers, event triggers).
 */
const EsCatalog *
EsGetCatalogForExtension(bool missing_ok)
{
	Oid			namespace_oid = EsExtensionNamespace(missing_ok);

	if (!OidIsValid(namespace_oid))
		return NULL;
	return EsGetCatalog(namespace_oid);
}

/*
 * EsExtensionNamespace returns the schema es_pg is installed in, or
 * InvalidOid when it is not installed and missing_ok.
 */
Oid
EsExtensionNamespace(bool missing_ok)
{
	Oid			ext_oid = get_extension_oid("es_pg", missing_ok);

	if (!OidIsValid(ext_oid))
		return InvalidOid;
	return ExtensionSchema(ext_oid);
}

/*
 * EsCreatingExtensionName returns, as a name Datum, the extension whose
 * install or update script is running, or 0 outside scripts: rows such a
 * script creates in es_pg's configuration tables are left out of dumps.
 */
Datum
EsCreatingExtensionName(void)
{
	char	   *name;
	NameData   *result;

	if (!creating_extension)
		return (Datum) 0;
	name = get_extension_name(CurrentExtensionObject);
	if (name == NULL)
		return (Datum) 0;
	result = (NameData *) palloc0(NAMEDATALEN);
	namestrcpy(result, name);
	return NameGetDatum(result);
}

/*
 * EsCheckReadPrivilege raises an error unless the current user may SELECT
 * from es_events and no row-level security policy applies to it there.
 * Readers are C functions that scan the table directly, so they check the
 * table privilege themselves; they do not evaluate policies, so rather than
 * hand a role rows its policies would hide, they refuse while row-level
 * security is in force for it (roles that bypass it, the table owner
 * without FORCE ROW LEVEL SECURITY, and superusers read as before).
 */
void
EsCheckReadPrivilege(const EsCatalog *cat)
{
	AclResult	aclresult;

	aclresult = pg_class_aclcheck(cat->events_relid, GetUserId(), ACL_SELECT);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_TABLE, "es_events");
	if (check_enable_rls(cat->events_relid, InvalidOid, true) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("es_pg read functions do not apply row-level security"),
				 errdetail("Row-level security is enabled on es_events for role \"%s\".",
						   GetUserNameFromId(GetUserId(), false)),
				 errhint("Read es_events with SELECT, where its policies apply, or read as a role that bypasses row-level security.")));
}
