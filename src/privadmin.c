/*-------------------------------------------------------------------------
 *
 * privadmin.c
 *	  Administration of crypto-shredding: es_protect, es_unprotect,
 *	  es_forget_subject and es_rotate_master_key (docs/privacy.md).
 *
 * A protection is fixed while events of its type exist: adding a path
 * later would leave the values of older events in plain text, and
 * dropping one would leave their ciphertext unread.  So es_protect and
 * es_unprotect refuse to change the protection of a type that has events.
 *
 * IDENTIFICATION
 *	  src/privadmin.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "privacy.h"
#include "common.h"

static const EsStatement TypeHasEventsStatement = {
	"SELECT 1 FROM @extschema@.es_events"
	" WHERE event_type OPERATOR(pg_catalog.=) $1 LIMIT 1",
	1, {TEXTOID}, false
};

static const EsStatement SameProtectionStatement = {
	"SELECT 1 FROM @extschema@.es_protected_types"
	" WHERE event_type OPERATOR(pg_catalog.=) $1"
	" AND paths OPERATOR(pg_catalog.=) $2"
	" AND subject_path OPERATOR(pg_catalog.=) $3",
	3, {TEXTOID, TEXTARRAYOID, TEXTOID}, false
};

static const EsStatement ProtectStatement = {
	"INSERT INTO @extschema@.es_protected_types AS p"
	" (event_type, paths, subject_path, subject_keys)"
	" VALUES ($1, $2, $3, $4)"
	" ON CONFLICT (event_type) DO UPDATE SET paths = excluded.paths,"
	" subject_path = excluded.subject_path,"
	" subject_keys = excluded.subject_keys, created_at = pg_catalog.now()",
	4, {TEXTOID, TEXTARRAYOID, TEXTOID, TEXTARRAYOID}, false
};

static const EsStatement UnprotectStatement = {
	"DELETE FROM @extschema@.es_protected_types"
	" WHERE event_type OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}, false
};

static const EsStatement ForgetStatement = {
	"UPDATE @extschema@.es_subject_keys"
	" SET wrapped = NULL, master_key = NULL, forgotten_at = pg_catalog.now()"
	" WHERE subject OPERATOR(pg_catalog.=) $1 AND forgotten_at IS NULL",
	1, {TEXTOID}, false
};

/*
 * The streams that hold events naming the subject, in es_events or in the
 * archive (es_archive with live_streams keeps a stream's snapshots, and
 * es_aggregate then needs them), and the removal of their snapshots: the
 * snapshots es_aggregate folded, and those the application saved, may hold
 * the subject's plain values.
 */
static const EsStatement ForgetSnapshotsStatement = {
	"WITH s AS (SELECT e.stream_id FROM @extschema@.es_events e"
	" JOIN @extschema@.es_protected_types p"
	" ON e.event_type OPERATOR(pg_catalog.=) p.event_type"
	" WHERE (e.data OPERATOR(pg_catalog.#>>) p.subject_keys)"
	" OPERATOR(pg_catalog.=) $1"
	" UNION SELECT a.stream_id FROM @extschema@.es_archived_events a"
	" JOIN @extschema@.es_protected_types p"
	" ON a.event_type OPERATOR(pg_catalog.=) p.event_type"
	" WHERE (a.data OPERATOR(pg_catalog.#>>) p.subject_keys)"
	" OPERATOR(pg_catalog.=) $1),"
	" d AS (DELETE FROM @extschema@.es_snapshots n USING s"
	" WHERE n.stream_id OPERATOR(pg_catalog.=) s.stream_id RETURNING 1)"
	" SELECT (SELECT pg_catalog.count(*) FROM s),"
	" (SELECT pg_catalog.count(*) FROM d)",
	1, {TEXTOID}, false
};

/*
 * CheckOverlap raises the 22023 error for two paths of which one holds the
 * other.
 */
static void
CheckOverlap(const char *a, List *ka, const char *b, List *kb)
{
	ListCell   *la;
	ListCell   *lb;

	forboth(la, ka, lb, kb)
	{
		if (strcmp(lfirst(la), lfirst(lb)) != 0)
			return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("paths %s and %s overlap", a, b),
			 errdetail("One of them holds the other, or they are the same."),
			 errhint("The subject path and the protected paths name separate members.")));
}

/*
 * KeysArray turns a list of keys into text[].
 */
static ArrayType *
KeysArray(List *keys)
{
	Datum	   *elems = palloc(list_length(keys) * sizeof(Datum));
	ListCell   *lc;
	int			i = 0;

	foreach(lc, keys)
		elems[i++] = CStringGetTextDatum(lfirst(lc));
	return construct_array(elems, i, TEXTOID, -1, false, TYPALIGN_INT);
}

/*
 * TypeHasEvents says whether es_events holds an event of a type.
 */
static bool
TypeHasEvents(const EsCatalog *cat, text *event_type)
{
	Datum		values[1] = {PointerGetDatum(event_type)};

	return EsRunStatement(&TypeHasEventsStatement, cat->namespace_oid,
						  EsRelationOwner(cat->events_relid), values, NULL,
						  SPI_OK_SELECT) > 0;
}

/*
 * ProtectionFixed raises the 55000 error for a change to the protection of
 * a type that has events.
 */
static void
ProtectionFixed(text *event_type)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("event type \"%s\" already has events",
					text_to_cstring(event_type)),
			 errdetail("The protection of a type is fixed once events of it exist: their personal data would stay in plain text, or their ciphertext unread."),
			 errhint("Protect an event type before its first event; to erase a person, use es_forget_subject.")));
}

/*
 * es_protect declares which paths of an event type's data hold personal
 * data and which path names the data subject.
 *
 * es_protect(event_type text, paths text[], subject_path text)
 */
PG_FUNCTION_INFO_V1(es_protect);
Datum
es_protect(PG_FUNCTION_ARGS)
{
	text	   *event_type = EsTextArgument(fcinfo, 0, "event type");
	ArrayType  *paths;
	char	   *subject_path;
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	Oid			owner;
	Datum	   *elems;
	bool	   *elem_nulls;
	int			n;
	int			i;
	int			j;
	List	  **keys;
	List	   *subject_keys;
	Datum		values[4];

	EsRequireArgument(fcinfo, 1, "paths");
	EsRequireArgument(fcinfo, 2, "subject path");
	EsValidateEventType(event_type, -1);
	if (VARSIZE_ANY_EXHDR(event_type) > 0 && *VARDATA_ANY(event_type) == '$')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event types that begin with \"$\" are es_pg's own"),
				 errhint("Protect an event type of the application.")));
	paths = PG_GETARG_ARRAYTYPE_P(1);
	subject_path = text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (ARR_NDIM(paths) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("paths must be a one-dimensional array")));
	deconstruct_array(paths, TEXTOID, -1, false, TYPALIGN_INT, &elems,
					  &elem_nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("paths must not be empty"),
				 errhint("Name the paths that hold personal data, as ARRAY['$.email'].")));
	keys = palloc(n * sizeof(List *));
	subject_keys = EsParseProtectedPath(subject_path, "subject path");
	for (i = 0; i < n; i++)
	{
		char	   *p;

		if (elem_nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("paths must not contain null")));
		p = TextDatumGetCString(elems[i]);
		keys[i] = EsParseProtectedPath(p, "protected path");
		CheckOverlap(p, keys[i], subject_path, subject_keys);
		for (j = 0; j < i; j++)
			CheckOverlap(p, keys[i], TextDatumGetCString(elems[j]), keys[j]);
	}

	/* a protection is useless without the master key: say so now */
	EsCheckMasterKeys(cat->namespace_oid);

	values[0] = PointerGetDatum(event_type);
	values[1] = PointerGetDatum(paths);
	values[2] = CStringGetTextDatum(subject_path);
	values[3] = PointerGetDatum(KeysArray(subject_keys));
	owner = EsRelationOwner(EsPrivacyTypesRelid(cat->namespace_oid));
	if (TypeHasEvents(cat, event_type))
	{
		if (EsRunStatement(&SameProtectionStatement, cat->namespace_oid, owner,
						   values, NULL, SPI_OK_SELECT) > 0)
			PG_RETURN_VOID();
		ProtectionFixed(event_type);
	}
	EsRunStatement(&ProtectStatement, cat->namespace_oid, owner, values, NULL,
				   SPI_OK_INSERT);
	PG_RETURN_VOID();
}

/*
 * es_unprotect drops the protection of an event type that has no events;
 * it returns whether there was one.
 *
 * es_unprotect(event_type text)
 */
PG_FUNCTION_INFO_V1(es_unprotect);
Datum
es_unprotect(PG_FUNCTION_ARGS)
{
	text	   *event_type = EsTextArgument(fcinfo, 0, "event type");
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	Datum		values[1] = {PointerGetDatum(event_type)};
	Oid			relid = EsPrivacyTypesRelid(cat->namespace_oid);

	if (TypeHasEvents(cat, event_type))
		ProtectionFixed(event_type);
	PG_RETURN_BOOL(EsRunStatement(&UnprotectStatement, cat->namespace_oid,
								  EsRelationOwner(relid), values, NULL,
								  SPI_OK_DELETE) > 0);
}

/*
 * es_forget_subject destroys the keys of a data subject and removes the
 * snapshots of the streams whose events name it.  It returns how many keys
 * it destroyed, how many streams hold events of the subject, and how many
 * snapshots it removed.
 *
 * es_forget_subject(subject text, OUT keys_destroyed integer,
 *					 OUT streams bigint, OUT snapshots_removed bigint)
 */
PG_FUNCTION_INFO_V1(es_forget_subject);
Datum
es_forget_subject(PG_FUNCTION_ARGS)
{
	text	   *subject = EsTextArgument(fcinfo, 0, "subject");
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	Oid			owner = EsRelationOwner(EsPrivacyKeysRelid(cat->namespace_oid));
	Datum		values[1] = {PointerGetDatum(subject)};
	TupleDesc	desc;
	Datum		result[3];
	bool		nulls[3] = {false, false, false};
	bool		isnull;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "es_forget_subject must return a record");
	EsSpiConnect();
	if (EsExecute(&ForgetStatement, cat->namespace_oid, owner, values, NULL,
				  InvalidSnapshot) != SPI_OK_UPDATE)
		elog(ERROR, "could not destroy the keys of a subject");
	result[0] = Int32GetDatum((int32) SPI_processed);
	if (EsExecute(&ForgetSnapshotsStatement, cat->namespace_oid, owner, values,
				  NULL, InvalidSnapshot) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not remove the snapshots of a subject");
	result[1] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
							  &isnull);
	result[2] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2,
							  &isnull);
	SPI_finish();
	EsPrivacyForgetCaches();
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc),
													  result, nulls)));
}

/*
 * es_rotate_master_key rewraps every subject key under the newest master
 * key of the key file and returns how many it rewrapped.
 */
PG_FUNCTION_INFO_V1(es_rotate_master_key);
Datum
es_rotate_master_key(PG_FUNCTION_ARGS)
{
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	int64		n;

	EsSpiConnect();
	n = EsRewrapSubjectKeys(cat->namespace_oid);
	SPI_finish();
	PG_RETURN_INT64(n);
}
