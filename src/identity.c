/*-------------------------------------------------------------------------
 *
 * identity.c
 *	  The one place where es_pg runs code or statements as another role.
 *
 * Two things run as someone other than the caller:
 *
 *	- code of the user's that es_pg calls on the user's behalf: projection
 *	  handlers and reset functions (as the projection's creator), reducers
 *	  under a snapshot policy (as the policy's creator);
 *	- es_pg's own statements on its tables (as the table's owner), so that
 *	  callers need no privilege on them.
 *
 * Both go through EsBecomeOwner, which does what PostgreSQL does for index
 * expressions during maintenance and for REFRESH MATERIALIZED VIEW: the
 * role becomes current user as a security-restricted operation
 * (SECURITY_RESTRICTED_OPERATION), with a new GUC nesting level, and the
 * search_path pinned.  A security-restricted operation cannot SET ROLE or
 * SESSION AUTHORIZATION, create temporary objects, open a cursor WITH HOLD,
 * PREPARE, LISTEN or DISCARD, and, what matters most here, cannot queue a
 * deferred trigger: PostgreSQL refuses (42501, "cannot fire deferred
 * trigger within security-restricted operation") at the end of the
 * statement that would queue one.  So nothing the code does can outlive the
 * call and run later as the appender, the worker or a superuser.
 * EsRestoreIdentity rolls back every setting the code changed, SET without
 * LOCAL included, and the previous role; an error does the same through
 * (sub)transaction abort.
 *
 * es_pg's own statements (EsStatement, EsExecute) run the same way, as the
 * owner of the tables they touch, with search_path pinned to pg_catalog
 * and pg_temp (their text is schema-qualified throughout) and forced
 * row-level security out of the way.  Statements that run per batch or per
 * append are kept prepared, once per backend and install schema; the plan
 * cache re-plans them when the tables they use change.
 *
 * IDENTIFICATION
 *	  src/identity.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "es_pg.h"

/* the search_path of es_pg's own statements, which are schema-qualified */
#define ES_INTERNAL_SEARCH_PATH "pg_catalog, pg_temp"

/* what stands for the install's schema in the text of an EsStatement */
#define ES_SCHEMA_TOKEN "@extschema@"

/* the plan of a kept statement, for the schema it was prepared for */
typedef struct KeptPlan
{
	const EsStatement *stmt;	/* hash key */
	Oid			namespace_oid;
	SPIPlanPtr	plan;
} KeptPlan;

static HTAB *kept_plans = NULL;

/*
 * EsBecomeOwner makes "role" the current user for code that belongs to it,
 * as a security-restricted operation with search_path set to search_path
 * (NULL: pg_catalog, pg_temp).  bypass_forced_rls lets es_pg's own
 * statements read their tables whole even under FORCE ROW LEVEL SECURITY.
 */
void
EsBecomeOwner(Oid role, const char *search_path, bool bypass_forced_rls,
			  EsIdentity *id)
{
	int			context;

	GetUserIdAndSecContext(&id->save_userid, &id->save_sec_context);
	context = id->save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
		SECURITY_RESTRICTED_OPERATION;
	if (bypass_forced_rls)
		context |= SECURITY_NOFORCE_RLS;
	SetUserIdAndSecContext(role, context);
	id->nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path",
							 search_path ? search_path : ES_INTERNAL_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/*
 * EsRestoreIdentity undoes EsBecomeOwner: every setting changed since,
 * then the role.
 */
void
EsRestoreIdentity(EsIdentity *id)
{
	AtEOXact_GUC(false, id->nestlevel);
	SetUserIdAndSecContext(id->save_userid, id->save_sec_context);
}

/*
 * EsPinnedSearchPath returns the caller's effective search_path as a string
 * with pg_temp last, for handlers to run with.  pg_temp is written out
 * because, left implicit, it would be searched first for tables.
 */
char *
EsPinnedSearchPath(void)
{
	List	   *path = fetch_search_path(false);
	ListCell   *lc;
	StringInfoData buf;

	initStringInfo(&buf);
	foreach(lc, path)
	{
		Oid			ns = lfirst_oid(lc);
		char	   *nspname;

		if (isAnyTempNamespace(ns))
			continue;
		nspname = get_namespace_name(ns);
		if (nspname == NULL)
			continue;
		appendStringInfo(&buf, "%s, ", quote_identifier(nspname));
	}
	appendStringInfoString(&buf, "pg_temp");
	list_free(path);
	return buf.data;
}

/*
 * EsRelationOwner returns the role that owns a relation.
 */
Oid
EsRelationOwner(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

/*
 * EsSpiConnect connects to SPI, or raises an error.
 */
void
EsSpiConnect(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/*
 * PrepareStatement prepares a statement for the SPI connection.
 */
static SPIPlanPtr
PrepareStatement(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	return plan;
}

/*
 * ExecutePlan runs a prepared statement.  With a valid snapshot the
 * statement reads with it and fires no triggers; otherwise it runs as
 * usual.
 */
static int
ExecutePlan(SPIPlanPtr plan, const char *sql, Datum *values,
			const char *nulls, Snapshot snapshot, bool read_only, long tcount)
{
	int			rc;

	if (snapshot != InvalidSnapshot)
		rc = SPI_execute_snapshot(plan, values, nulls, snapshot,
								  InvalidSnapshot, true, false, tcount);
	else
		rc = SPI_execute_plan(plan, values, nulls, read_only, tcount);
	if (rc < 0)
		elog(ERROR, "SPI_execute failed for \"%s\": %s", sql,
			 SPI_result_code_string(rc));
	return rc;
}

/*
 * EsExecuteAs runs one of es_pg's statements through SPI (the caller is
 * connected) as "role".  With a valid snapshot the statement reads with it
 * and fires no triggers; otherwise it runs as usual.  Returns the SPI
 * result code.
 */
int
EsExecuteAs(Oid role, const char *sql, int nargs, Oid *argtypes,
			Datum *values, const char *nulls, Snapshot snapshot,
			bool read_only, long tcount)
{
	EsIdentity	id;
	SPIPlanPtr	plan;
	int			rc;

	EsBecomeOwner(role, NULL, true, &id);
	plan = PrepareStatement(sql, nargs, argtypes);
	rc = ExecutePlan(plan, sql, values, nulls, snapshot, read_only, tcount);
	EsRestoreIdentity(&id);
	SPI_freeplan(plan);
	return rc;
}

/*
 * EsRunAsOwner runs one of es_pg's statements as the owner of relid.
 */
int
EsRunAsOwner(Oid relid, const char *sql, int nargs, Oid *argtypes,
			 Datum *values, const char *nulls, bool read_only, long tcount)
{
	return EsExecuteAs(EsRelationOwner(relid), sql, nargs, argtypes, values,
					   nulls, InvalidSnapshot, read_only, tcount);
}

/*
 * StatementText returns the text of a statement for the install in the
 * given schema.
 */
static char *
StatementText(const EsStatement *stmt, Oid namespace_oid)
{
	char	   *nspname = get_namespace_name(namespace_oid);
	const char *schema;
	const char *rest = stmt->sql;
	const char *token;
	StringInfoData buf;

	if (nspname == NULL)
		elog(ERROR, "cache lookup failed for namespace %u", namespace_oid);
	schema = quote_identifier(nspname);
	initStringInfo(&buf);
	while ((token = strstr(rest, ES_SCHEMA_TOKEN)) != NULL)
	{
		appendBinaryStringInfo(&buf, rest, token - rest);
		appendStringInfoString(&buf, schema);
		rest = token + strlen(ES_SCHEMA_TOKEN);
	}
	appendStringInfoString(&buf, rest);
	return buf.data;
}

/*
 * KeptPlanFor returns the kept plan of a statement for the install in the
 * given schema, preparing it the first time (and again for another
 * schema).
 */
static SPIPlanPtr
KeptPlanFor(const EsStatement *stmt, Oid namespace_oid)
{
	KeptPlan   *entry;
	bool		found;

	if (kept_plans == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(const EsStatement *);
		ctl.entrysize = sizeof(KeptPlan);
		kept_plans = hash_create("es_pg kept plans", 32, &ctl,
								 HASH_ELEM | HASH_BLOBS);
	}
	entry = (KeptPlan *) hash_search(kept_plans, &stmt, HASH_ENTER, &found);
	if (found && entry->plan != NULL && entry->namespace_oid == namespace_oid)
		return entry->plan;
	if (found && entry->plan != NULL)
		SPI_freeplan(entry->plan);
	entry->plan = NULL;
	entry->plan = PrepareStatement(StatementText(stmt, namespace_oid),
								   stmt->nargs, (Oid *) stmt->argtypes);
	if (SPI_keepplan(entry->plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	entry->namespace_oid = namespace_oid;
	return entry->plan;
}

/*
 * EsExecute runs one of es_pg's statements for the install in the given
 * schema through SPI (the caller is connected) as "role", with the plan
 * kept if the statement says so.  A valid snapshot runs a read-only
 * statement with it; otherwise the statement runs as usual, firing
 * triggers.  Returns the SPI result code.
 */
int
EsExecute(const EsStatement *stmt, Oid namespace_oid, Oid role,
		  Datum *values, const char *nulls, Snapshot snapshot)
{
	EsIdentity	id;
	int			rc;

	if (!stmt->keep)
		return EsExecuteAs(role, StatementText(stmt, namespace_oid),
						   stmt->nargs, (Oid *) stmt->argtypes, values, nulls,
						   snapshot, false, 0);
	EsBecomeOwner(role, NULL, true, &id);
	rc = ExecutePlan(KeptPlanFor(stmt, namespace_oid), stmt->sql, values,
					 nulls, snapshot, false, 0);
	EsRestoreIdentity(&id);
	return rc;
}

/*
 * EsRunStatement connects to SPI, runs one statement as EsExecute does,
 * checks that it returned the result code "expected", disconnects and
 * returns the number of rows it processed.
 */
uint64
EsRunStatement(const EsStatement *stmt, Oid namespace_oid, Oid role,
			   Datum *values, const char *nulls, int expected)
{
	int			rc;
	uint64		processed;

	EsSpiConnect();
	rc = EsExecute(stmt, namespace_oid, role, values, nulls, InvalidSnapshot);
	if (rc != expected)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
	processed = SPI_processed;
	SPI_finish();
	return processed;
}
