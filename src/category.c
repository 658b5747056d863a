/*-------------------------------------------------------------------------
 *
 * category.c
 *	  Category reads, and the one place where events read for a consumer
 *	  become result rows.
 *
 * A stream's category is the part of its id before the first "-"
 * ("account-42" is in category "account"), as in KurrentDB and Message DB;
 * a stream id without "-" is in no category.  es_events_category_idx is an
 * index on (split_part(stream_id, '-', 1), global_position), filled in an
 * append's flight like the global_position index (append.c), so that every
 * row at or below the feed's safe high position (lock.c) is in it too.
 * es_read_category walks it with the global feed's walk (read.c,
 * EsReadFeedIndex): in global order, never past a row whose transaction
 * might still commit, and reading only the category's rows.
 *
 * EsPutEventRow builds the rows that category reads and subscription polls
 * return, from es_events' own tuple descriptor, by column name: a column
 * es_events gains appears in results that declare it.  It is the one place
 * a read for consumers passes an event through, where event upcasting
 * plugs in.
 *
 * IDENTIFICATION
 *	  src/category.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"

#include "es_pg.h"
#include "common.h"
#include "subscription.h"

/*
 * EsCategoryIndex returns the OID of the category index of the install, or
 * raises an error when it is missing (dropped by its owner).
 */
Oid
EsCategoryIndex(const EsCatalog *cat)
{
	Oid			index = get_relname_relid(ES_CATEGORY_INDEX, cat->namespace_oid);

	if (!OidIsValid(index))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("index \"%s\" of es_pg is missing", ES_CATEGORY_INDEX),
				 errhint("Create it again: CREATE INDEX %s ON es_events (split_part(stream_id, '-', 1), global_position).",
						 ES_CATEGORY_INDEX)));
	return index;
}

/*
 * EsCheckCategory raises an error unless "category" can name a category:
 * not empty, no "-", and what a stream id may contain.
 */
void
EsCheckCategory(text *category)
{
	const char *p = VARDATA_ANY(category);
	int			len = VARSIZE_ANY_EXHDR(category);

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("category must not be empty"),
				 errhint("A category is the part of a stream id before its first \"-\".")));
	if (memchr(p, '-', len) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("category \"%s\" contains \"-\"",
						text_to_cstring(category)),
				 errhint("A category is the part of a stream id before its first \"-\": \"account\" for stream \"account-42\".")));
	EsValidateStreamId(category);
}

/*
 * EsCategoryScanKeys fills the two scan keys of a walk of the category
 * index: the category, and positions after from_position.
 */
void
EsCategoryScanKeys(ScanKey keys, text *category, int64 from_position)
{
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(category));
	keys[0].sk_collation = C_COLLATION_OID;
	ScanKeyInit(&keys[1], 2, BTGreaterStrategyNumber, F_INT8GT,
				Int64GetDatum(from_position));
}

/*
 * EsInCategory says whether an event of the category index's walk belongs
 * to the category: its stream id goes on past the category (with the "-"
 * that split_part cut at), rather than being the category itself.
 */
bool
EsInCategory(HeapTuple tuple, TupleDesc tupdesc, int category_len)
{
	bool		isnull;
	Datum		stream = heap_getattr(tuple, Anum_es_events_stream_id, tupdesc,
									  &isnull);

	return !isnull && VARSIZE_ANY_EXHDR(DatumGetPointer(stream)) > category_len;
}

/*
 * BuildEventRowMap fills the map from the result's columns to es_events'
 * columns, by name: -1 for a result column es_events does not have (it
 * takes the next extra value), -2 for a dropped one.
 */
static void
BuildEventRowMap(EsEventRowMap *map, TupleDesc result, TupleDesc tupdesc)
{
	int			i;

	map->source = MemoryContextAlloc(CurrentMemoryContext,
									 Max(result->natts, 1) * sizeof(int));
	map->identity = result->natts == tupdesc->natts;
	for (i = 0; i < result->natts; i++)
	{
		Form_pg_attribute ra = TupleDescAttr(result, i);
		int			j;

		map->source[i] = ra->attisdropped ? -2 : -1;
		if (ra->attisdropped)
		{
			map->identity = false;
			continue;
		}
		for (j = 0; j < tupdesc->natts; j++)
		{
			Form_pg_attribute ea = TupleDescAttr(tupdesc, j);

			if (!ea->attisdropped &&
				strcmp(NameStr(ea->attname), NameStr(ra->attname)) == 0)
			{
				map->source[i] = j;
				break;
			}
		}
		if (map->source[i] != i ||
			TupleDescAttr(tupdesc, i)->atttypid != ra->atttypid)
			map->identity = false;
	}
}

/*
 * EsPutEventRow appends one event to a result set whose descriptor is
 * "result": each column takes the es_events column of the same name, and
 * the columns es_events does not have take extra[] in order (the delivery
 * attempt of es_poll).  The map (zeroed by the caller) is built at the
 * first row.  Every read for consumers returns events through here.
 */
void
EsPutEventRow(Tuplestorestate *store, TupleDesc result, EsEventRowMap *map,
			  HeapTuple tuple, TupleDesc tupdesc, const Datum *extra,
			  const bool *extra_null, int nextra)
{
	Datum	   *ev_values;
	bool	   *ev_null;
	Datum	   *values;
	bool	   *nulls;
	int			next_extra = 0;
	int			i;

	if (map->source == NULL)
		BuildEventRowMap(map, result, tupdesc);
	if (map->identity && nextra == 0)
	{
		/* the result is es_events' row type: the tuple as it is */
		tuplestore_puttuple(store, tuple);
		return;
	}
	ev_values = palloc(tupdesc->natts * sizeof(Datum));
	ev_null = palloc(tupdesc->natts * sizeof(bool));
	values = palloc(result->natts * sizeof(Datum));
	nulls = palloc(result->natts * sizeof(bool));
	heap_deform_tuple(tuple, tupdesc, ev_values, ev_null);
	for (i = 0; i < result->natts; i++)
	{
		int			j = map->source[i];

		if (j >= 0)
		{
			values[i] = ev_values[j];
			nulls[i] = ev_null[j];
		}
		else if (j == -1 && next_extra < nextra)
		{
			values[i] = extra[next_extra];
			nulls[i] = extra_null[next_extra];
			next_extra++;
		}
		else
		{
			values[i] = (Datum) 0;
			nulls[i] = true;
		}
	}
	tuplestore_putvalues(store, result, values, nulls);
	pfree(values);
	pfree(nulls);
	pfree(ev_values);
	pfree(ev_null);
}

/*
 * EsConsumerShape returns the event as consumers see it: in its current
 * shape, through the upcasters of the install (evolution.c), allocated in
 * scratch when that changed it; the tuple itself otherwise.  scratch is
 * NULL when EsUpcastingActive said the install has no upcasters.  The
 * caller resets scratch once the row is stored, when the result differs
 * from the tuple.  It runs upcasters: call it with no buffer lock held.
 */
HeapTuple
EsConsumerShape(Oid namespace_oid, MemoryContext scratch, HeapTuple tuple,
				TupleDesc tupdesc)
{
	MemoryContext oldcxt;
	HeapTuple	current;

	if (scratch == NULL)
		return tuple;
	oldcxt = MemoryContextSwitchTo(scratch);
	current = EsUpcastEventTuple(namespace_oid, tuple, tupdesc);
	MemoryContextSwitchTo(oldcxt);
	return current;
}

/*
 * EsConsumerScratch returns the memory context EsConsumerShape needs, or
 * NULL when the install has no upcasters.
 */
MemoryContext
EsConsumerScratch(const EsCatalog *cat)
{
	if (!EsUpcastingActive(cat->namespace_oid))
		return NULL;
	return AllocSetContextCreate(CurrentMemoryContext, "es_pg consumer upcast",
								 ALLOCSET_DEFAULT_SIZES);
}

/* what es_read_category's walk needs */
typedef struct CategoryRead
{
	ReturnSetInfo *rsinfo;
	EsEventRowMap map;
	Oid			namespace_oid;
	MemoryContext scratch;		/* for upcasting; NULL: no upcasters */
	int			category_len;
	int64		max_count;
	int64		count;
} CategoryRead;

/*
 * StoreCategoryEvent is the walk's callback of es_read_category.
 */
static bool
StoreCategoryEvent(HeapTuple tuple, TupleDesc tupdesc, void *arg)
{
	CategoryRead *read = (CategoryRead *) arg;
	HeapTuple	current;

	if (!EsInCategory(tuple, tupdesc, read->category_len))
		return true;
	current = EsConsumerShape(read->namespace_oid, read->scratch, tuple,
							  tupdesc);
	EsPutEventRow(read->rsinfo->setResult, read->rsinfo->setDesc, &read->map,
				  current, tupdesc, NULL, NULL, 0);
	if (current != tuple)
		MemoryContextReset(read->scratch);
	return ++read->count < read->max_count;
}

/*
 * es_read_category returns up to max_count events of the streams of a
 * category with a global position greater than from_position, in position
 * order, with es_read_all's guarantee: a follower that always passes the
 * last position it received sees every committed event of the category
 * once.
 */
PG_FUNCTION_INFO_V1(es_read_category);
Datum
es_read_category(PG_FUNCTION_ARGS)
{
	text	   *category = EsTextArgument(fcinfo, 0, "category");
	int64		from_position = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1);
	int64		max_count = PG_ARGISNULL(2) ? PG_INT64_MAX : PG_GETARG_INT64(2);
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	ScanKeyData keys[2];
	CategoryRead read;

	if (from_position < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("from_position must not be negative"),
				 errhint("Pass 0 to read from the start.")));
	if (max_count < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_count must not be negative"),
				 errhint("Pass NULL for no limit.")));
	EsCheckCategory(category);
	EsCheckReadPrivilege(cat);
	InitMaterializedSRF(fcinfo, 0);
	if (max_count == 0)
		return (Datum) 0;

	memset(&read, 0, sizeof(read));
	read.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	read.category_len = VARSIZE_ANY_EXHDR(category);
	read.max_count = max_count;
	read.count = 0;
	read.namespace_oid = cat->namespace_oid;
	read.scratch = EsConsumerScratch(cat);
	EsCategoryScanKeys(keys, category, from_position);
	(void) EsReadFeedIndex(cat, EsCategoryIndex(cat), keys, 2, from_position,
						   PG_INT64_MAX, StoreCategoryEvent, &read, NULL);
	if (read.scratch != NULL)
		MemoryContextDelete(read.scratch);
	return (Datum) 0;
}
