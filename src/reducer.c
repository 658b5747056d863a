/*-------------------------------------------------------------------------
 *
 * reducer.c
 *	  Reducers: the checks a function passes to be one, and the digest of
 *	  its code that es_aggregate's snapshots carry.
 *
 * A snapshot is only as good as the code that made it.  Snapshots that
 * es_aggregate stores carry a digest of the reducer's code (language,
 * source, binary, SET options) and of the initial state; a snapshot whose
 * digest does not match the current reducer and initial state is skipped.
 * Under a snapshot policy the digest covers the reducer's owner and the
 * policy's search_path too, which the fold then runs with (snapshot.c).
 * Snapshots saved with es_save_snapshot carry no digest: the application
 * vouches for them.  A change that the digest cannot see (a function the
 * reducer calls, a table it reads, a new build of a C reducer) needs
 * es_drop_snapshots; docs/snapshots.md explains the trap.
 *
 * IDENTIFICATION
 *	  src/reducer.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

#include "snapshot.h"

/* digest of the last reducer seen, valid while its pg_proc row is the same */
static struct
{
	Oid			oid;
	TransactionId xmin;
	ItemPointerData tid;
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
}			es_last_reducer;

/*
 * EsDigestUpdate feeds bytes to a hash, followed by a separator so that
 * ("ab", "c") and ("a", "bc") differ.
 */
void
EsDigestUpdate(pg_cryptohash_ctx *ctx, const char *data, size_t len)
{
	static const uint8 separator = 0;

	if (pg_cryptohash_update(ctx, (const uint8 *) data, len) < 0 ||
		pg_cryptohash_update(ctx, &separator, 1) < 0)
		elog(ERROR, "could not compute a SHA-256 digest: %s",
			 pg_cryptohash_error(ctx));
}

/*
 * DigestBegin starts a SHA-256 digest.
 */
static pg_cryptohash_ctx *
DigestBegin(void)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (ctx == NULL || pg_cryptohash_init(ctx) < 0)
		elog(ERROR, "could not compute a SHA-256 digest: %s",
			 pg_cryptohash_error(ctx));
	return ctx;
}

/*
 * DigestEnd finishes it into dest.
 */
static void
DigestEnd(pg_cryptohash_ctx *ctx, uint8 *dest)
{
	if (pg_cryptohash_final(ctx, dest, PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "could not compute a SHA-256 digest: %s",
			 pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
}

/*
 * EsDigestProcAttr feeds a text-like attribute of a pg_proc row to the hash
 * (a NULL feeds a marker of its own).
 */
void
EsDigestProcAttr(pg_cryptohash_ctx *ctx, HeapTuple tuple, AttrNumber attno)
{
	bool		isnull;
	Datum		value = SysCacheGetAttr(PROCOID, tuple, attno, &isnull);

	if (isnull)
		EsDigestUpdate(ctx, "\x01null", 5);
	else
	{
		text	   *t = DatumGetTextPP(value);

		EsDigestUpdate(ctx, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	}
}

/*
 * ComputeCodeDigest fingerprints what a function does: its language, its
 * source (or SQL body), its object file and its SET options.  Names of
 * languages are used rather than OIDs so that the digest survives a dump
 * and restore.  A BEGIN ATOMIC body is stored as a parse tree with OIDs in
 * it, so its digest changes on restore: those snapshots are then replayed
 * once and stored again.
 */
static void
ComputeCodeDigest(HeapTuple tuple, uint8 *dest)
{
	Form_pg_proc proc = (Form_pg_proc) GETSTRUCT(tuple);
	pg_cryptohash_ctx *ctx = DigestBegin();
	char	   *lang = get_language_name(proc->prolang, false);
	bool		isnull;
	Datum		config;

	EsDigestUpdate(ctx, "es_pg reducer 1", 15);
	EsDigestUpdate(ctx, lang, strlen(lang));
	EsDigestProcAttr(ctx, tuple, Anum_pg_proc_prosrc);
	EsDigestProcAttr(ctx, tuple, Anum_pg_proc_probin);
	EsDigestProcAttr(ctx, tuple, Anum_pg_proc_prosqlbody);
	config = SysCacheGetAttr(PROCOID, tuple, Anum_pg_proc_proconfig, &isnull);
	if (!isnull)
	{
		Datum	   *items;
		bool	   *nulls;
		int			nitems;
		int			i;

		deconstruct_array(DatumGetArrayTypeP(config), TEXTOID, -1, false,
						  TYPALIGN_INT, &items, &nulls, &nitems);
		for (i = 0; i < nitems; i++)
		{
			text	   *t;

			if (nulls[i])
				continue;
			t = DatumGetTextPP(items[i]);
			EsDigestUpdate(ctx, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
		}
	}
	DigestEnd(ctx, dest);
}

/*
 * DescribeSignature renders "name(argtypes) returns type" for errors.
 */
static char *
DescribeSignature(Oid fn, Form_pg_proc proc)
{
	return psprintf("%s returns %s%s", format_procedure(fn),
					proc->proretset ? "setof " : "",
					format_type_be(proc->prorettype));
}

/*
 * EsCheckReducer verifies that fn can be a reducer, (jsonb, es_events) ->
 * jsonb, and fills in its name and code digest.  A function that does not
 * exist is a 42883; one of the wrong shape a 22023.
 */
void
EsCheckReducer(const EsSnapshotCatalog *sc, Oid fn, EsReducer *info)
{
	HeapTuple	tuple;
	Form_pg_proc proc;
	const char *problem = NULL;

	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("reducer function with OID %u does not exist", fn)));
	proc = (Form_pg_proc) GETSTRUCT(tuple);

	if (proc->prokind == PROKIND_AGGREGATE)
		problem = "it is an aggregate function";
	else if (proc->prokind == PROKIND_WINDOW)
		problem = "it is a window function";
	else if (proc->prokind == PROKIND_PROCEDURE)
		problem = "it is a procedure";
	else if (proc->pronargs != 2 ||
			 proc->proargtypes.values[0] != JSONBOID ||
			 proc->proargtypes.values[1] != sc->events_type)
		problem = "its arguments are not (jsonb, es_events)";
	else if (proc->prorettype != JSONBOID || proc->proretset)
		problem = "it does not return jsonb";
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("function %s is not a reducer: %s",
						format_procedure(fn), problem),
				 errdetail("The function is %s.", DescribeSignature(fn, proc)),
				 errhint("A reducer is a function reducer(state jsonb, event %s) RETURNS jsonb that returns the state after the event.",
						 format_type_be(sc->events_type))));

	info->oid = fn;
	info->owner = proc->proowner;
	info->name = quote_qualified_identifier(get_namespace_name(proc->pronamespace),
											NameStr(proc->proname));

	if (es_last_reducer.oid != fn ||
		es_last_reducer.xmin != HeapTupleHeaderGetRawXmin(tuple->t_data) ||
		!ItemPointerEquals(&es_last_reducer.tid, &tuple->t_self))
	{
		ComputeCodeDigest(tuple, es_last_reducer.digest);
		es_last_reducer.oid = fn;
		es_last_reducer.xmin = HeapTupleHeaderGetRawXmin(tuple->t_data);
		es_last_reducer.tid = tuple->t_self;
	}
	memcpy(info->code_digest, es_last_reducer.digest, PG_SHA256_DIGEST_LENGTH);
	ReleaseSysCache(tuple);
}

/*
 * EsReducerArgument reads an optional reducer argument: NULL names the
 * application's own snapshots.
 */
const char *
EsReducerArgument(FunctionCallInfo fcinfo, int argno,
				  const EsSnapshotCatalog *sc, EsReducer *info)
{
	if (PG_ARGISNULL(argno))
		return ES_NO_REDUCER;
	EsCheckReducer(sc, PG_GETARG_OID(argno), info);
	return info->name;
}

/*
 * EsFoldDigest combines the reducer's code digest with the initial state
 * into the hex digest stored with es_aggregate's snapshots.
 */
void
EsFoldDigest(const EsReducer *reducer, const EsSnapshotPolicy *policy,
			 Jsonb *initial, char *hex)
{
	pg_cryptohash_ctx *ctx = DigestBegin();
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char	   *initial_text = JsonbToCString(NULL, &initial->root,
											  VARSIZE(initial));

	EsDigestUpdate(ctx, (const char *) reducer->code_digest,
				 PG_SHA256_DIGEST_LENGTH);
	EsDigestUpdate(ctx, initial_text, strlen(initial_text));
	if (policy->search_path != NULL)
	{
		/* role names, not OIDs, so that the digest survives a restore */
		char	   *owner = GetUserNameFromId(reducer->owner, false);

		EsDigestUpdate(ctx, "policy", 6);
		EsDigestUpdate(ctx, owner, strlen(owner));
		EsDigestUpdate(ctx, policy->search_path, strlen(policy->search_path));
	}
	DigestEnd(ctx, digest);
	hex_encode((const char *) digest, PG_SHA256_DIGEST_LENGTH, hex);
	hex[ES_DIGEST_LEN - 1] = '\0';
}
