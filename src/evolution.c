/*-------------------------------------------------------------------------
 *
 * evolution.c
 *	  Event schema evolution: the per-backend cache of the event type
 *	  registry, validation at append, and the upcaster chains that every
 *	  read path runs over the events it hands out.
 *
 * Stored events never change; the code that reads them moves on.  A
 * registered event type has a current schema version, which es_append
 * records in es_events.schema_version (NULL is version 1: the type was not
 * registered), and optionally a validator, a SQL/JSON path predicate that
 * the data of every appended event must match (jsonb_path_match), and a
 * validator function for what a path cannot say.  An upcaster,
 * upcaster(event es_events) RETURNS es_events, turns an event of version v
 * into version v + 1 of its type, or into an event of another type (a
 * rename: the result's schema_version says which version of that type,
 * NULL meaning 1).  Readers get each event through the chain from its
 * stored version up to the current one (EsUpcastEventTuple).
 *
 * The registry is read once per backend into a cache that the tables'
 * statement trigger (es_event_registry_changed) resets through a relcache
 * invalidation, and that changes of functions and roles reset too.  With
 * no type registered an append does one comparison more, and with no
 * upcaster registered a read does one comparison more per event
 * (EsUpcastingActive).
 *
 * Upcasters and validator functions belong to the roles that created
 * them: they run as those roles, as a security-restricted operation, with
 * the search_path pinned when they were created (identity.c), like
 * projection handlers.  An upcaster may change the type, the data and the
 * metadata of an event, never its position, stream, version, id or time:
 * a result that does is refused.
 *
 * An upcaster may read events itself (the cache may then be reloaded while
 * a chain runs): a cache that is in use is retired rather than freed, and
 * freed when no chain runs any more.
 *
 * IDENTIFICATION
 *	  src/evolution.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonpath.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/uuid.h"

#include "es_pg.h"
#include "common.h"

/* renames may lead from type to type; no event needs more steps than this */
#define ES_MAX_UPCAST_STEPS		1000

/* an upcaster, as loaded from es_upcasters */
typedef struct Upcaster
{
	const char *event_type;
	int32		from_version;
	Oid			fn;				/* InvalidOid: no longer resolves */
	char	   *name;			/* schema-qualified signature */
	Oid			owner;
	char	   *search_path;
	bool		prepared;		/* checked, flinfo set up */
	FmgrInfo	flinfo;
} Upcaster;

/* a registered event type, as loaded from es_event_types */
typedef struct EventType
{
	char		key[ES_MAX_EVENT_TYPE_BYTES + 1];	/* hash key */
	int32		version;
	JsonPath   *validator;		/* NULL: none */
	char	   *validator_text;
	char	   *validator_name; /* NULL: no validator function */
	Oid			validator_fn;	/* InvalidOid: none, or no longer resolves */
	Oid			owner;
	char	   *search_path;
	bool		validator_prepared;
	FmgrInfo	validator_flinfo;
	Upcaster  **upcasters;		/* indexed by from_version, 1..version-1 */
} EventType;

/* the registry of one install */
typedef struct Registry
{
	Oid			namespace_oid;
	Oid			events_relid;
	Oid			types_relid;	/* InvalidOid: before 0.2.0 */
	Oid			upcasters_relid;
	MemoryContext cxt;
	HTAB	   *types;
	int			ntypes;
	int			nupcasters;
	Upcaster  **ordered;		/* by type and from_version, for the digest */
	int			nupcast_types;	/* types that have upcasters, */
	EventType **upcast_types;	/* compared by hand when they are few */
	int		   *upcast_type_lens;
	bool		digest_ready;
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
} Registry;

static Registry registry;
static bool registry_valid = false;

/* invalidations seen: one that arrives while the cache loads voids it */
static uint64 registry_invalidations = 0;

/* uses of the cache running user code, and caches retired while they ran */
static int	upcast_depth = 0;
static MemoryContext retired_cxt = NULL;

/*
 * A reader that hands out many events with no code of anyone else's
 * between them (es_read_stream, es_read_all) brackets its loop with
 * EsUpcastBatchBegin and EsUpcastBatchEnd: the identity of an upcaster then
 * stays switched from one event to the next while the upcaster stays the
 * same owner's with the same search_path, instead of being switched and
 * restored around every call (on PostgreSQL 15 each restore walks every
 * setting).  Only the outermost chain of the batch keeps it; the batch's
 * end, and any error, give the reader its identity back.
 */
static struct
{
	int			depth;			/* batches open */
	bool		active;			/* an identity is kept ... */
	int			level;			/* ... for the batch at this depth */
	Oid			owner;
	char		search_path[1024];
	EsIdentity	id;
}			upcast_batch;

/* where an upcaster is, for the error context */
typedef struct UpcastPosition
{
	const Upcaster *upcaster;
	int64		position;
} UpcastPosition;

static const EsStatement LoadStatement = {
	"SELECT t.event_type, t.schema_version, t.validator,"
	" t.validator_function,"
	" pg_catalog.to_regprocedure(t.validator_function)::pg_catalog.oid,"
	" t.owner::pg_catalog.oid, t.search_path,"
	" u.from_version, u.upcaster,"
	" pg_catalog.to_regprocedure(u.upcaster)::pg_catalog.oid,"
	" u.owner::pg_catalog.oid, u.search_path"
	" FROM @extschema@.es_event_types t"
	" LEFT JOIN @extschema@.es_upcasters u"
	" ON u.event_type OPERATOR(pg_catalog.=) t.event_type"
	" ORDER BY t.event_type, u.from_version",
	0, {0}, false
};

/*
 * RelcacheCallback forgets the registry when one of its tables, or
 * es_events, changes (es_event_registry_changed sends an invalidation for
 * every write to the registry's tables).
 */
static void
RelcacheCallback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == registry.types_relid ||
		relid == registry.upcasters_relid || relid == registry.events_relid)
	{
		registry_valid = false;
		registry_invalidations++;
	}
}

/*
 * SyscacheCallback forgets the registry when a function or a role changes:
 * an upcaster replaced (its digest), EXECUTE revoked, an owner dropped.
 */
static void
SyscacheCallback(Datum arg, int cacheid, uint32 hashvalue)
{
	registry_valid = false;
	registry_invalidations++;
}

/*
 * EsInitEvolution registers the invalidation callbacks; called from
 * _PG_init.
 */
void
EsInitEvolution(void)
{
	CacheRegisterRelcacheCallback(RelcacheCallback, (Datum) 0);
	CacheRegisterSyscacheCallback(PROCOID, SyscacheCallback, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, SyscacheCallback, (Datum) 0);
}

/*
 * RetireRegistry lets go of the cache's memory: freed now when no chain
 * runs, else when the last one ends.
 */
static void
RetireRegistry(void)
{
	if (registry.cxt == NULL)
		return;
	if (upcast_depth == 0)
		MemoryContextDelete(registry.cxt);
	else
	{
		if (retired_cxt == NULL)
			retired_cxt = AllocSetContextCreate(CacheMemoryContext,
												"es_pg retired event registry",
												ALLOCSET_SMALL_SIZES);
		MemoryContextSetParent(registry.cxt, retired_cxt);
	}
	registry.cxt = NULL;
	registry.types = NULL;
}

/*
 * ReleaseRegistry ends a use of the cache that user code ran in (a chain of
 * upcasters, a validator function): the caches retired meanwhile are freed
 * when no use is left.
 */
static void
ReleaseRegistry(void)
{
	upcast_depth--;
	if (upcast_depth == 0 && retired_cxt != NULL)
		MemoryContextReset(retired_cxt);
}

/*
 * LookupType returns the registered type named by a text, or NULL.
 */
static EventType *
LookupType(const char *data, int len)
{
	char		key[ES_MAX_EVENT_TYPE_BYTES + 1];

	if (registry.ntypes == 0 || len > ES_MAX_EVENT_TYPE_BYTES)
		return NULL;
	memcpy(key, data, len);
	key[len] = '\0';
	return (EventType *) hash_search(registry.types, key, HASH_FIND, NULL);
}

/*
 * LookupUpcastType returns the registered type named by a text if it has
 * upcasters, or NULL: the per-event check of readers, by hand when few
 * types have upcasters.
 */
static EventType *
LookupUpcastType(const char *data, int len)
{
	int			i;

	if (registry.nupcast_types > 8)
	{
		EventType  *t = LookupType(data, len);

		return t != NULL && t->version > 1 ? t : NULL;
	}
	for (i = 0; i < registry.nupcast_types; i++)
	{
		if (registry.upcast_type_lens[i] == len &&
			memcmp(registry.upcast_types[i]->key, data, len) == 0)
			return registry.upcast_types[i];
	}
	return NULL;
}

/*
 * LoadRegistry reads the registry of the install in namespace_oid into a
 * fresh cache.
 */
static void
LoadRegistry(Oid namespace_oid)
{
	MemoryContext oldcxt;
	HASHCTL		ctl;
	Snapshot	snapshot;
	uint64		i;
	int			nordered = 0;
	uint64		invalidations = registry_invalidations;

	/* a load that fails half way leaves no cache behind */
	registry_valid = false;
	RetireRegistry();
	memset(&registry, 0, sizeof(registry));
	registry.namespace_oid = namespace_oid;
	registry.events_relid = get_relname_relid("es_events", namespace_oid);
	registry.types_relid = get_relname_relid("es_event_types", namespace_oid);
	registry.upcasters_relid = get_relname_relid("es_upcasters",
												 namespace_oid);
	registry.cxt = AllocSetContextCreate(CacheMemoryContext,
										 "es_pg event registry",
										 ALLOCSET_SMALL_SIZES);
	ctl.keysize = ES_MAX_EVENT_TYPE_BYTES + 1;
	ctl.entrysize = sizeof(EventType);
	ctl.hcxt = registry.cxt;
	registry.types = hash_create("es_pg event types", 16, &ctl,
								 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	registry.upcast_types = NULL;
	registry.upcast_type_lens = NULL;

	/* before 0.2.0 (or while its update script runs) there is no registry */
	if (!OidIsValid(registry.types_relid) ||
		!OidIsValid(registry.upcasters_relid))
	{
		registry_valid = invalidations == registry_invalidations;
		return;
	}

	/*
	 * The latest snapshot, as for the catalogs: the cache outlives the
	 * transaction, so it must not hold what an older snapshot (REPEATABLE
	 * READ) saw after the invalidation that made it reload was consumed.
	 */
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	EsSpiConnect();
	if (EsExecute(&LoadStatement, namespace_oid,
				  EsRelationOwner(registry.types_relid), NULL, NULL,
				  snapshot) != SPI_OK_SELECT)
		elog(ERROR, "could not read the event type registry");

	oldcxt = MemoryContextSwitchTo(registry.cxt);
	registry.ordered = palloc0(Max(SPI_processed, 1) * sizeof(Upcaster *));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *name = SPI_getvalue(tuple, desc, 1);
		EventType  *t;
		bool		found;
		Datum		d;

		if (strlen(name) > ES_MAX_EVENT_TYPE_BYTES)
			continue;
		t = (EventType *) hash_search(registry.types, name, HASH_ENTER,
									  &found);
		if (!found)
		{
			registry.ntypes++;
			t->version = DatumGetInt32(SPI_getbinval(tuple, desc, 2, &isnull));
			t->validator = NULL;
			t->validator_text = NULL;
			d = SPI_getbinval(tuple, desc, 3, &isnull);
			if (!isnull)
			{
				t->validator = (JsonPath *) PG_DETOAST_DATUM_COPY(d);
				t->validator_text = SPI_getvalue(tuple, desc, 3);
			}
			t->validator_name = SPI_getvalue(tuple, desc, 4);
			d = SPI_getbinval(tuple, desc, 5, &isnull);
			t->validator_fn = isnull ? InvalidOid : DatumGetObjectId(d);
			t->owner = DatumGetObjectId(SPI_getbinval(tuple, desc, 6, &isnull));
			t->search_path = SPI_getvalue(tuple, desc, 7);
			t->validator_prepared = false;
			t->upcasters = palloc0((Max(t->version, 1)) * sizeof(Upcaster *));
		}

		/* its upcasters, if any; one below the current version only */
		d = SPI_getbinval(tuple, desc, 8, &isnull);
		if (!isnull)
		{
			int32		from = DatumGetInt32(d);
			Upcaster   *u;

			if (from < 1 || from >= t->version)
				continue;
			u = palloc0(sizeof(Upcaster));
			u->event_type = t->key;
			u->from_version = from;
			u->name = SPI_getvalue(tuple, desc, 9);
			d = SPI_getbinval(tuple, desc, 10, &isnull);
			u->fn = isnull ? InvalidOid : DatumGetObjectId(d);
			u->owner = DatumGetObjectId(SPI_getbinval(tuple, desc, 11, &isnull));
			u->search_path = SPI_getvalue(tuple, desc, 12);
			if (nordered == 0 ||
				registry.ordered[nordered - 1]->event_type != t->key)
				registry.nupcast_types++;
			t->upcasters[from] = u;
			registry.ordered[nordered++] = u;
			registry.nupcasters++;
		}
	}
	registry.upcast_types = palloc0(Max(registry.nupcast_types, 1) *
									sizeof(EventType *));
	registry.upcast_type_lens = palloc0(Max(registry.nupcast_types, 1) *
										sizeof(int));
	registry.nupcast_types = 0;
	for (i = 0; i < (uint64) nordered; i++)
	{
		const char *key = registry.ordered[i]->event_type;

		if (i > 0 && registry.ordered[i - 1]->event_type == key)
			continue;
		registry.upcast_types[registry.nupcast_types] =
			(EventType *) hash_search(registry.types, key, HASH_FIND, NULL);
		registry.upcast_type_lens[registry.nupcast_types] = strlen(key);
		registry.nupcast_types++;
	}
	MemoryContextSwitchTo(oldcxt);
	SPI_finish();
	UnregisterSnapshot(snapshot);
	/* serves this call; the next one reloads if it changed meanwhile */
	registry_valid = invalidations == registry_invalidations;
}

/*
 * GetRegistry returns the registry of the install in namespace_oid.
 */
static Registry *
GetRegistry(Oid namespace_oid)
{
	if (!registry_valid || registry.namespace_oid != namespace_oid)
		LoadRegistry(namespace_oid);
	return &registry;
}

/*
 * EsUpcastingActive says whether the install has any upcaster: without
 * one, readers hand out the stored rows as they are.
 */
bool
EsUpcastingActive(Oid namespace_oid)
{
	if (registry_valid && registry.namespace_oid == namespace_oid &&
		registry.nupcasters > 0)
		return true;
	/* protected types are decrypted at the same choke point (privacy.c) */
	return GetRegistry(namespace_oid)->nupcasters > 0 ||
		EsPrivacyActive(namespace_oid);
}

/*
 * CheckRunnable raises an error unless the owner of a validator function or
 * upcaster still exists and may execute it.
 */
static void
CheckRunnable(Oid fn, Oid owner, const char *what, const char *name,
			  const char *event_type)
{
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(owner)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the role that created the %s of event type \"%s\" no longer exists",
						what, event_type),
				 errhint("Create the %s again as an existing role.", what)));
	if (!OidIsValid(fn) ||
		!SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(fn)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("the %s function %s of event type \"%s\" no longer exists",
						what, name, event_type),
				 errhint("Create the function again, or drop the %s.", what)));
	EsCheckExecute(fn, owner);
}

/*
 * RunValidatorFunction calls validator(data, metadata) as the type's owner
 * and says whether it returned true.
 */
static bool
RunValidatorFunction(EventType *t, Jsonb *data, Jsonb *metadata)
{
	EsIdentity	id;
	Datum		result;

	LOCAL_FCINFO(fcinfo, 2);

	if (!t->validator_prepared)
	{
		CheckRunnable(t->validator_fn, t->owner, "validator",
					  t->validator_name, t->key);
		fmgr_info_cxt(t->validator_fn, &t->validator_flinfo, registry.cxt);
		t->validator_prepared = true;
	}
	InitFunctionCallInfoData(*fcinfo, &t->validator_flinfo, 2, InvalidOid,
							 NULL, NULL);
	fcinfo->args[0].value = JsonbPGetDatum(data);
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].value = metadata ? JsonbPGetDatum(metadata) : (Datum) 0;
	fcinfo->args[1].isnull = metadata == NULL;
	EsBecomeOwner(t->owner, t->search_path, false, &id);
	result = FunctionCallInvoke(fcinfo);
	EsRestoreIdentity(&id);
	return !fcinfo->isnull && DatumGetBool(result);
}

/*
 * RefuseEvent raises the 23514 error of an event that its type's validator
 * refused.
 */
static void
RefuseEvent(const EventType *t, int batch_index, const char *what)
{
	char	   *where = batch_index >= 0 ?
		psprintf("event %d of the batch", batch_index + 1) : "the event";

	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("%s does not match the schema of event type \"%s\" version %d",
					where, t->key, t->version),
			 errdetail("Its data does not satisfy %s.", what),
			 errhint("Append the data in the shape of version %d of \"%s\", or register a new version with es_register_event_type.",
					 t->version, t->key),
			 EsBatchContext(batch_index)));
}

/*
 * EsCheckEventSchema checks an event about to be appended against its
 * registered type and returns the schema version to record with it, 0
 * (NULL in es_events) for a type that is not registered.  A validator that
 * does not match, or a validator function that does not return true,
 * refuses the event (23514) before anything is written.
 */
int32
EsCheckEventSchema(Oid namespace_oid, text *event_type, Jsonb *data,
				   Jsonb *metadata, int batch_index)
{
	Registry   *r;
	EventType  *t;
	int32		version;

	if (registry_valid && registry.namespace_oid == namespace_oid &&
		registry.ntypes == 0)
		return 0;
	r = GetRegistry(namespace_oid);
	if (r->ntypes == 0)
		return 0;
	t = LookupType(VARDATA_ANY(event_type), VARSIZE_ANY_EXHDR(event_type));
	if (t == NULL)
		return 0;

	if (t->validator != NULL)
	{
		LOCAL_FCINFO(fcinfo, 2);
		Datum		result;

		/* jsonb_path_match(data, validator), silent: errors do not match */
		InitFunctionCallInfoData(*fcinfo, NULL, 2, InvalidOid, NULL, NULL);
		fcinfo->args[0].value = JsonbPGetDatum(data);
		fcinfo->args[0].isnull = false;
		fcinfo->args[1].value = PointerGetDatum(t->validator);
		fcinfo->args[1].isnull = false;
		result = jsonb_path_match(fcinfo);
		if (fcinfo->isnull || !DatumGetBool(result))
			RefuseEvent(t, batch_index,
						psprintf("the validator %s", t->validator_text));
	}
	version = t->version;
	if (t->validator_name != NULL)
	{
		/* the function may make the registry reload: keep this one */
		upcast_depth++;
		PG_TRY();
		{
			if (!RunValidatorFunction(t, data, metadata))
				RefuseEvent(t, batch_index,
							psprintf("the validator function %s",
									 t->validator_name));
		}
		PG_FINALLY();
		{
			ReleaseRegistry();
		}
		PG_END_TRY();
	}
	return version;
}

/*
 * UpcastErrorContext names the upcaster and the event in error reports.
 */
static void
UpcastErrorContext(void *arg)
{
	UpcastPosition *pos = (UpcastPosition *) arg;

	errcontext("upcaster %s of event type \"%s\" from version %d, event at global position %lld",
			   pos->upcaster->name, pos->upcaster->event_type,
			   pos->upcaster->from_version, (long long) pos->position);
}

/*
 * BadUpcast raises the error of an upcaster whose result breaks the rules.
 */
static void
BadUpcast(const Upcaster *u, const char *problem)
{
	ereport(ERROR,
			(errcode(ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION),
			 errmsg("upcaster %s of event type \"%s\" %s",
					u->name, u->event_type, problem),
			 errdetail("An upcaster may change event_type, data, metadata and schema_version, never global_position, stream_id, version, event_id or recorded_at."),
			 errhint("Fix the upcaster; the stored events are unchanged.")));
}

/*
 * SameAttribute says whether attribute attno is equal in both tuples.
 */
static bool
SameAttribute(HeapTuple a, HeapTuple b, TupleDesc desc, int attno)
{
	Form_pg_attribute att = TupleDescAttr(desc, attno - 1);
	bool		na;
	bool		nb;
	Datum		da = heap_getattr(a, attno, desc, &na);
	Datum		db = heap_getattr(b, attno, desc, &nb);

	if (na || nb)
		return na == nb;
	return datumIsEqual(da, db, att->attbyval, att->attlen);
}

/*
 * CallUpcaster runs one upcaster over an event, as its owner, and returns
 * the checked result, allocated in the current memory context.
 */
static HeapTuple
CallUpcaster(Upcaster *u, HeapTuple event, HeapTuple original,
			 TupleDesc desc)
{
	EsIdentity	id;
	Datum		result;
	HeapTupleHeader td;
	HeapTupleData tmp;
	HeapTuple	out;
	bool		isnull;
	Datum		d;

	LOCAL_FCINFO(fcinfo, 1);

	if (!u->prepared)
	{
		CheckRunnable(u->fn, u->owner, "upcaster", u->name, u->event_type);
		fmgr_info_cxt(u->fn, &u->flinfo, registry.cxt);
		u->prepared = true;
	}
	InitFunctionCallInfoData(*fcinfo, &u->flinfo, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = heap_copy_tuple_as_datum(event, desc);
	fcinfo->args[0].isnull = false;
	if (upcast_batch.depth > 0 && upcast_depth == 1 &&
		strlen(u->search_path) < sizeof(upcast_batch.search_path) &&
		(!upcast_batch.active || upcast_batch.level == upcast_batch.depth))
	{
		/* in a batch: keep the identity for the next event */
		if (upcast_batch.active &&
			(upcast_batch.owner != u->owner ||
			 strcmp(upcast_batch.search_path, u->search_path) != 0))
		{
			upcast_batch.active = false;
			EsRestoreIdentity(&upcast_batch.id);
		}
		if (!upcast_batch.active)
		{
			EsBecomeOwner(u->owner, u->search_path, false, &upcast_batch.id);
			upcast_batch.active = true;
			upcast_batch.level = upcast_batch.depth;
			upcast_batch.owner = u->owner;
			strlcpy(upcast_batch.search_path, u->search_path,
					sizeof(upcast_batch.search_path));
		}
		result = FunctionCallInvoke(fcinfo);
	}
	else
	{
		EsBecomeOwner(u->owner, u->search_path, false, &id);
		result = FunctionCallInvoke(fcinfo);
		EsRestoreIdentity(&id);
	}
	if (fcinfo->isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("upcaster %s of event type \"%s\" returned null",
						u->name, u->event_type),
				 errhint("An upcaster returns the event in its next shape.")));

	td = DatumGetHeapTupleHeader(result);
	if (HeapTupleHeaderGetTypeId(td) != desc->tdtypeid)
		BadUpcast(u, "did not return an es_events row");
	tmp.t_len = HeapTupleHeaderGetDatumLength(td);
	ItemPointerSetInvalid(&tmp.t_self);
	tmp.t_tableOid = InvalidOid;
	tmp.t_data = td;
	out = heap_copytuple(&tmp);
	out->t_self = original->t_self;
	out->t_tableOid = original->t_tableOid;

	if (!SameAttribute(out, original, desc, Anum_es_events_global_position) ||
		!SameAttribute(out, original, desc, Anum_es_events_stream_id) ||
		!SameAttribute(out, original, desc, Anum_es_events_version) ||
		!SameAttribute(out, original, desc, Anum_es_events_event_id) ||
		!SameAttribute(out, original, desc, Anum_es_events_recorded_at))
		BadUpcast(u, "changed a column that identifies the event");
	d = heap_getattr(out, Anum_es_events_event_type, desc, &isnull);
	if (isnull || VARSIZE_ANY_EXHDR(DatumGetPointer(d)) == 0 ||
		VARSIZE_ANY_EXHDR(DatumGetPointer(d)) > ES_MAX_EVENT_TYPE_BYTES)
		BadUpcast(u, "returned an event type that is null, empty or too long");
	d = heap_getattr(out, Anum_es_events_data, desc, &isnull);
	if (isnull || !JB_ROOT_IS_OBJECT(DatumGetJsonbP(d)))
		BadUpcast(u, "returned data that is not a JSON object");
	d = heap_getattr(out, Anum_es_events_metadata, desc, &isnull);
	if (!isnull && !JB_ROOT_IS_OBJECT(DatumGetJsonbP(d)))
		BadUpcast(u, "returned metadata that is not a JSON object");
	return out;
}

/*
 * RunChain runs the upcasters that apply to an event, from its stored
 * version up, and returns the event in its current shape.
 */
static HeapTuple
RunChain(HeapTuple tuple, TupleDesc desc, EventType *t, int32 version)
{
	HeapTuple	current = tuple;
	UpcastPosition pos;
	ErrorContextCallback errcallback;
	bool		isnull;
	int			steps = 0;
	Datum		values[1];
	bool		nulls[1] = {false};
	int			cols[1] = {Anum_es_events_schema_version};

	pos.position = DatumGetInt64(heap_getattr(tuple,
											  Anum_es_events_global_position,
											  desc, &isnull));
	while (t != NULL && version >= 1 && version < t->version &&
		   t->upcasters[version] != NULL)
	{
		Upcaster   *u = t->upcasters[version];
		Datum		type;
		text	   *newtype;

		if (++steps > ES_MAX_UPCAST_STEPS)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("event at global position %lld went through %d upcasters",
							(long long) pos.position, ES_MAX_UPCAST_STEPS),
					 errhint("Upcasters that rename event types probably lead round in a circle.")));
		CHECK_FOR_INTERRUPTS();
		pos.upcaster = u;
		EsPushErrorContext(&errcallback, UpcastErrorContext, &pos);
		current = CallUpcaster(u, current, tuple, desc);
		EsPopErrorContext(&errcallback);

		type = heap_getattr(current, Anum_es_events_event_type, desc, &isnull);
		newtype = DatumGetTextPP(type);
		if (VARSIZE_ANY_EXHDR(newtype) == strlen(t->key) &&
			memcmp(VARDATA_ANY(newtype), t->key, strlen(t->key)) == 0)
			version++;
		else
		{
			/* a rename: the result says which version of the new type */
			Datum		v = heap_getattr(current,
										 Anum_es_events_schema_version,
										 desc, &isnull);

			version = isnull ? 1 : DatumGetInt32(v);
			t = LookupType(VARDATA_ANY(newtype), VARSIZE_ANY_EXHDR(newtype));
		}
		values[0] = Int32GetDatum(version);
		current = heap_modify_tuple_by_cols(current, desc, 1, cols, values,
											nulls);
		current->t_self = tuple->t_self;
		current->t_tableOid = tuple->t_tableOid;
	}
	return current;
}

/*
 * EsEventTypeOf returns the bytes of an es_events tuple's event_type and
 * their number, without a terminating NUL: the per-event test of the read
 * paths (upcasting here, decryption in privacy.c), which must cost nothing
 * measurable for events of other types.  heap_getattr walks the columns
 * before it from the general case each time (stream_id is of variable
 * length); the first five columns are NOT NULL and of fixed types, so the
 * offset follows from stream_id's length alone, aligned as tuple deforming
 * aligns.  A tuple that does not fit (a null among them, a row type of
 * another shape, an event type stored compressed or out of line) takes the
 * general path; the result then points into memory of the current memory
 * context.
 */
const char *
EsEventTypeOf(HeapTuple tuple, TupleDesc tupdesc, int *len)
{
	HeapTupleHeader td = tuple->t_data;
	char	   *tp = (char *) td + td->t_hoff;
	uint32		off;
	char	   *p;
	text	   *t;
	bool		isnull;
	Datum		d;

	/* global_position bigint, stream_id text, version bigint, event_id uuid */
	if (tupdesc->natts >= Anum_es_events_event_type &&
		HeapTupleHeaderGetNatts(td) >= Anum_es_events_event_type &&
		(!HeapTupleHasNulls(tuple) ||
		 (td->t_bits[0] & 0x1F) == 0x1F) &&
		TupleDescAttr(tupdesc, 0)->atttypid == INT8OID &&
		TupleDescAttr(tupdesc, 1)->atttypid == TEXTOID &&
		TupleDescAttr(tupdesc, 2)->atttypid == INT8OID &&
		TupleDescAttr(tupdesc, 3)->atttypid == UUIDOID &&
		TupleDescAttr(tupdesc, 4)->atttypid == TEXTOID)
	{
		off = sizeof(int64);
		off = att_align_pointer(off, TYPALIGN_INT, -1, tp + off);
		off += VARSIZE_ANY(tp + off);
		off = att_align_nominal(off, TYPALIGN_DOUBLE) + sizeof(int64);
		off += UUID_LEN;
		off = att_align_pointer(off, TYPALIGN_INT, -1, tp + off);
		p = tp + off;
		if (!VARATT_IS_EXTERNAL(p) && !VARATT_IS_COMPRESSED(p))
		{
			*len = VARSIZE_ANY_EXHDR(p);
			return VARDATA_ANY(p);
		}
	}

	d = heap_getattr(tuple, Anum_es_events_event_type, tupdesc, &isnull);
	if (isnull)
		return NULL;
	t = DatumGetTextPP(d);
	*len = VARSIZE_ANY_EXHDR(t);
	return VARDATA_ANY(t);
}

/*
 * FirstUpcaster returns the registered type of an event (type, typelen)
 * when an upcaster applies to its stored version, which goes to *version,
 * or NULL.  The registry is loaded.
 */
static EventType *
FirstUpcaster(HeapTuple tuple, TupleDesc tupdesc, const char *type,
			  int typelen, int32 *version)
{
	EventType  *t;
	bool		isnull;
	Datum		d;

	if (registry.nupcasters == 0 ||
		(t = LookupUpcastType(type, typelen)) == NULL)
		return NULL;
	d = heap_getattr(tuple, Anum_es_events_schema_version, tupdesc, &isnull);
	*version = isnull ? 1 : DatumGetInt32(d);
	if (*version < 1 || *version >= t->version ||
		t->upcasters[*version] == NULL)
		return NULL;
	return t;
}

/*
 * EsUpcastEventTuple returns an event of es_events in the current shape of
 * its type: the tuple itself when no upcaster applies, else a new tuple in
 * the current memory context, made by the upcasters from the event's
 * stored version up (its schema_version then says the version reached).
 * tupdesc is es_events' row type.  Every read path calls it on each event
 * it hands out; EsUpcastingActive says cheaply whether any upcaster exists.
 */
HeapTuple
EsUpcastEventTuple(Oid namespace_oid, HeapTuple tuple, TupleDesc tupdesc)
{
	return EsUpcastEventTupleFor(namespace_oid, tuple, tupdesc, InvalidOid);
}

/*
 * EsUpcastEventTupleFor does the same for a given reader: the role whose
 * grant decides whether the event's personal data is decrypted first
 * (privacy.c).  InvalidOid is the current role, or the role a batch of
 * upcasts started as while an upcaster's identity is kept (upcast_batch).
 */
HeapTuple
EsUpcastEventTupleFor(Oid namespace_oid, HeapTuple tuple, TupleDesc tupdesc,
					  Oid reader)
{
	EventType  *t;
	int32		version;
	HeapTuple	result;
	const char *type;
	int			typelen;

	if (!EsUpcastingActive(namespace_oid) ||
		tupdesc->natts < Anum_es_events_schema_version)
		return tuple;
	if (EsPrivacyActive(namespace_oid))
	{
		if (!OidIsValid(reader))
			reader = upcast_batch.active ? upcast_batch.id.save_userid :
				GetUserId();
		tuple = EsPrivacyReveal(namespace_oid, tuple, tupdesc, reader);
	}
	if (GetRegistry(namespace_oid)->nupcasters == 0)
		return tuple;
	type = EsEventTypeOf(tuple, tupdesc, &typelen);
	if (type == NULL)
		return tuple;
	t = FirstUpcaster(tuple, tupdesc, type, typelen, &version);
	if (t == NULL)
		return tuple;

	upcast_depth++;
	PG_TRY();
	{
		result = RunChain(tuple, tupdesc, t, version);
	}
	PG_FINALLY();
	{
		ReleaseRegistry();
	}
	PG_END_TRY();
	return result;
}

/*
 * EsUpcastMayChange says whether EsUpcastEventTuple may hand out something
 * else than the event itself: its type is protected, or has an upcaster
 * for its stored version.  A reader that copies events first can test them
 * after the copy, with the event in the cache (read.c).
 */
bool
EsUpcastMayChange(Oid namespace_oid, HeapTuple tuple, TupleDesc tupdesc)
{
	const char *type;
	int			typelen;
	int32		version;

	if (tupdesc->natts < Anum_es_events_schema_version)
		return false;
	if (!registry_valid || registry.namespace_oid != namespace_oid)
		(void) GetRegistry(namespace_oid);
	type = EsEventTypeOf(tuple, tupdesc, &typelen);
	if (type == NULL)
		return false;
	if (FirstUpcaster(tuple, tupdesc, type, typelen, &version) != NULL)
		return true;
	return EsPrivacyActive(namespace_oid) &&
		EsPrivacyTypeProtected(namespace_oid, type, typelen);
}

/*
 * EsUpcastBatchBegin starts a batch of EsUpcastEventTuple calls between
 * which the caller runs no code of anyone else's (see upcast_batch).
 */
void
EsUpcastBatchBegin(void)
{
	upcast_batch.depth++;
}

/*
 * EsUpcastBatchEnd ends it and gives the caller its identity back.  On
 * error, pass aborting: the (sub)transaction abort then restores the
 * identity, and only the batch is forgotten here.
 */
void
EsUpcastBatchEnd(bool aborting)
{
	if (upcast_batch.active && upcast_batch.level == upcast_batch.depth)
	{
		upcast_batch.active = false;
		if (!aborting)
			EsRestoreIdentity(&upcast_batch.id);
	}
	upcast_batch.depth--;
}

/*
 * DigestUpcaster feeds what an upcaster does to the hash: which step it is,
 * its signature, its code and settings, its owner and search_path (names,
 * not OIDs, so that the digest survives a dump and restore).
 */
static void
DigestUpcaster(pg_cryptohash_ctx *ctx, const Upcaster *u)
{
	char		version[32];
	HeapTuple	tuple;
	char	   *owner = GetUserNameFromId(u->owner, true);

	snprintf(version, sizeof(version), "%d", u->from_version);
	EsDigestUpdate(ctx, u->event_type, strlen(u->event_type));
	EsDigestUpdate(ctx, version, strlen(version));
	EsDigestUpdate(ctx, u->name, strlen(u->name));
	EsDigestUpdate(ctx, owner ? owner : "", owner ? strlen(owner) : 0);
	EsDigestUpdate(ctx, u->search_path, strlen(u->search_path));
	tuple = OidIsValid(u->fn) ?
		SearchSysCache1(PROCOID, ObjectIdGetDatum(u->fn)) : NULL;
	if (!HeapTupleIsValid(tuple))
	{
		EsDigestUpdate(ctx, "\x01missing", 8);
		return;
	}
	EsDigestProcAttr(ctx, tuple, Anum_pg_proc_prosrc);
	EsDigestProcAttr(ctx, tuple, Anum_pg_proc_probin);
	EsDigestProcAttr(ctx, tuple, Anum_pg_proc_prosqlbody);
	EsDigestProcAttr(ctx, tuple, Anum_pg_proc_proconfig);
	ReleaseSysCache(tuple);
}

/*
 * EsUpcastFoldDigest folds the install's upcasters into the hex digest of
 * a reducer that es_aggregate stores with its snapshots, so that a snapshot
 * folded through one set of upcasters is not reused under another.  With
 * no upcaster the digest is left as it is, so snapshots of installs that
 * never used upcasters stay valid.
 */
void
EsUpcastFoldDigest(Oid namespace_oid, char *hex)
{
	Registry   *r = GetRegistry(namespace_oid);
	pg_cryptohash_ctx *ctx;
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	int			i;

	/* whether the fold sees plain personal data (privacy.c) */
	EsPrivacyFoldDigest(namespace_oid, GetUserId(), hex);
	if (r->nupcasters == 0)
		return;
	if (!r->digest_ready)
	{
		ctx = pg_cryptohash_create(PG_SHA256);
		if (ctx == NULL || pg_cryptohash_init(ctx) < 0)
			elog(ERROR, "could not compute a SHA-256 digest");
		EsDigestUpdate(ctx, "es_pg upcasters 1", 17);
		for (i = 0; i < r->nupcasters; i++)
			DigestUpcaster(ctx, r->ordered[i]);
		if (pg_cryptohash_final(ctx, r->digest, PG_SHA256_DIGEST_LENGTH) < 0)
			elog(ERROR, "could not compute a SHA-256 digest");
		pg_cryptohash_free(ctx);
		r->digest_ready = true;
	}

	ctx = pg_cryptohash_create(PG_SHA256);
	if (ctx == NULL || pg_cryptohash_init(ctx) < 0)
		elog(ERROR, "could not compute a SHA-256 digest");
	EsDigestUpdate(ctx, hex, strlen(hex));
	EsDigestUpdate(ctx, (const char *) r->digest, PG_SHA256_DIGEST_LENGTH);
	if (pg_cryptohash_final(ctx, digest, PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "could not compute a SHA-256 digest");
	pg_cryptohash_free(ctx);
	hex_encode((const char *) digest, PG_SHA256_DIGEST_LENGTH, hex);
	hex[PG_SHA256_DIGEST_STRING_LENGTH - 1] = '\0';
}

/*
 * es_event_registry_changed is the statement trigger of es_event_types and
 * es_upcasters: any change (registering, creating, dropping, a restore's
 * COPY) resets the registry caches of every backend.
 */
PG_FUNCTION_INFO_V1(es_event_registry_changed);
Datum
es_event_registry_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = EsCheckTriggerCall(fcinfo,
											   "es_event_registry_changed");

	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event))
		EsTriggerMisfired("es_event_registry_changed",
						  "AFTER ... FOR EACH STATEMENT");
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	return PointerGetDatum(NULL);
}
