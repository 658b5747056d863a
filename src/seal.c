/*-------------------------------------------------------------------------
 *
 * seal.c
 *	  The seal chain: the canonical encoding of events and seals, es_seal,
 *	  and the trigger that keeps seals as they were written.
 *
 * A seal covers the committed events with a position in (after_position,
 * to_position], in position order.  It stores each event's position and
 * the SHA-256 digest of its canonical encoding, and the SHA-256 hash of
 * the previous seal's hash, its own header and those positions and
 * digests.  Changing, removing or adding a sealed event therefore changes
 * a digest; changing a seal changes its hash, which the next seal names.
 * docs/audit.md gives the encoding byte by byte.
 *
 * Format 1 encodes the nine columns of es_events of 0.2.0 (global_position,
 * stream_id, version, event_id, event_type, data, metadata, recorded_at,
 * schema_version), each by its canonical text, found in the relation's tuple descriptor by
 * name: a column added later is not covered until a new format covers it.
 *
 * es_seal runs after commit, never on the append path.  It seals what the
 * global feed may return (read.c's EsReadFeed, which never passes an event
 * whose transaction might still commit), so a late commit is never
 * skipped: the next seal starts right after the last event sealed, as a
 * follower passes the last position it received.  One es_seal at a time
 * per database (a transaction-level lock), and it reads the last seal with
 * a snapshot taken after the lock, so two never seal the same range.  Its
 * seals are rows of one transaction: a crash before commit leaves none of
 * them, a crash after leaves them all.
 *
 * IDENTIFICATION
 *	  src/seal.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "es_pg.h"
#include "audit.h"
#include "common.h"

/* the covered columns, in encoding order, with their types */
static const EsColumn es_seal_fields[ES_SEAL_NFIELDS] = {
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

static const EsStatement LastSealStatement = {
	"SELECT s.seal_id, s.to_position, s.hash FROM @extschema@.es_seals s "
	"ORDER BY s.seal_id DESC LIMIT 1",
	0, {InvalidOid}, false
};

static const EsStatement InsertSealStatement = {
	"INSERT INTO @extschema@.es_seals (seal_id, format, after_position, "
	"to_position, positions, digests, prev_hash, hash) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
	8, {INT8OID, INT4OID, INT8OID, INT8OID, INT8ARRAYOID, BYTEAOID,
	BYTEAOID, BYTEAOID}, false
};

/* what the feed callback of es_seal collects for one seal */
typedef struct SealBatch
{
	const EsSealColumns *cols;
	pg_cryptohash_ctx *ctx;
	MemoryContext event_cxt;	/* reset after each event */
	int			nevents;
	int64	   *positions;
	uint8	   *digests;
	Datum	   *values;
	bool	   *nulls;
} SealBatch;

/*
 * EsSealResolveColumns finds the covered columns of es_events in its tuple
 * descriptor, by name, and checks their types.
 */
void
EsSealResolveColumns(TupleDesc tupdesc, EsSealColumns *cols)
{
	int			i;

	for (i = 0; i < ES_SEAL_NFIELDS; i++)
	{
		int			j;

		cols->attnums[i] = InvalidAttrNumber;
		for (j = 0; j < tupdesc->natts; j++)
		{
			Form_pg_attribute att = TupleDescAttr(tupdesc, j);

			if (!att->attisdropped &&
				strcmp(NameStr(att->attname), es_seal_fields[i].name) == 0)
			{
				if (att->atttypid != es_seal_fields[i].type)
					ereport(ERROR,
							(errcode(ERRCODE_DATA_CORRUPTED),
							 errmsg("column \"%s\" of es_events has type %s, not %s",
									es_seal_fields[i].name,
									format_type_be(att->atttypid),
									format_type_be(es_seal_fields[i].type)),
							 errhint("Seals cover the columns of es_events as es_pg made them.")));
				cols->attnums[i] = att->attnum;
				break;
			}
		}
		if (cols->attnums[i] == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("es_events has no column \"%s\"",
							es_seal_fields[i].name),
					 errhint("Seals cover the columns of es_events as es_pg made them.")));
	}
	cols->natts = tupdesc->natts;
}

/*
 * DigestBytes feeds bytes to a hash.
 */
static inline void
DigestBytes(pg_cryptohash_ctx *ctx, const void *data, size_t len)
{
	if (pg_cryptohash_update(ctx, (const uint8 *) data, len) < 0)
		elog(ERROR, "could not compute a SHA-256 digest: %s",
			 pg_cryptohash_error(ctx));
}

static inline void
DigestUint32(pg_cryptohash_ctx *ctx, uint32 value)
{
	uint32		be = pg_hton32(value);

	DigestBytes(ctx, &be, sizeof(be));
}

static inline void
DigestInt64(pg_cryptohash_ctx *ctx, int64 value)
{
	uint64		be = pg_hton64((uint64) value);

	DigestBytes(ctx, &be, sizeof(be));
}

/*
 * DigestField feeds one field: a NULL as the byte 0, a value as the byte 1,
 * its length as 4 bytes big-endian, and its bytes.
 */
static void
DigestField(pg_cryptohash_ctx *ctx, const char *data, size_t len)
{
	uint8		flag = 1;

	if (len > PG_UINT32_MAX)
		elog(ERROR, "field of %zu bytes is too long to seal", len);
	DigestBytes(ctx, &flag, 1);
	DigestUint32(ctx, (uint32) len);
	DigestBytes(ctx, data, len);
}

static void
DigestNull(pg_cryptohash_ctx *ctx)
{
	uint8		flag = 0;

	DigestBytes(ctx, &flag, 1);
}

static void
DigestInit(pg_cryptohash_ctx *ctx)
{
	if (pg_cryptohash_init(ctx) < 0)
		elog(ERROR, "could not compute a SHA-256 digest: %s",
			 pg_cryptohash_error(ctx));
}

static void
DigestFinal(pg_cryptohash_ctx *ctx, uint8 *dest)
{
	if (pg_cryptohash_final(ctx, dest, ES_SEAL_HASH_LEN) < 0)
		elog(ERROR, "could not compute a SHA-256 digest: %s",
			 pg_cryptohash_error(ctx));
}

/*
 * EsSealDigestBegin makes a SHA-256 context, for EsSealEventDigest and
 * EsSealHash to use again and again.  It belongs to the current resource
 * owner, which frees it on error; pg_cryptohash_free frees it otherwise.
 */
pg_cryptohash_ctx *
EsSealDigestBegin(void)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (ctx == NULL)
		elog(ERROR, "could not create a SHA-256 context: out of memory");
	return ctx;
}

/*
 * EsSealEventDigest computes the digest of one event of format 1 from the
 * values of its row (as heap_deform_tuple gives them): 4 bytes of format,
 * then each covered column as DigestField or DigestNull of its canonical
 * text.  Memory it allocates is the caller's to reset.
 */
void
EsSealEventDigest(pg_cryptohash_ctx *ctx, const EsSealColumns *cols,
				  const Datum *values, const bool *nulls, uint8 *digest)
{
	int			i;

	DigestInit(ctx);
	DigestUint32(ctx, ES_SEAL_FORMAT);
	for (i = 0; i < ES_SEAL_NFIELDS; i++)
	{
		int			k = cols->attnums[i] - 1;
		Datum		value = values[k];
		char		buf[MAXINT8LEN + 1];
		char	   *str;

		if (nulls[k])
		{
			DigestNull(ctx);
			continue;
		}
		switch (es_seal_fields[i].type)
		{
			case INT8OID:
				snprintf(buf, sizeof(buf), INT64_FORMAT, DatumGetInt64(value));
				DigestField(ctx, buf, strlen(buf));
				break;
			case INT4OID:
				snprintf(buf, sizeof(buf), "%d", DatumGetInt32(value));
				DigestField(ctx, buf, strlen(buf));
				break;
			case TEXTOID:
				{
					text	   *t = DatumGetTextPP(value);

					DigestField(ctx, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
				}
				break;
			case UUIDOID:
				str = DatumGetCString(DirectFunctionCall1(uuid_out, value));
				DigestField(ctx, str, strlen(str));
				break;
			case JSONBOID:
				{
					Jsonb	   *jb = DatumGetJsonbP(value);

					str = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
					DigestField(ctx, str, strlen(str));
				}
				break;
			case TIMESTAMPTZOID:
				{
					TimestampTz ts = DatumGetTimestampTz(value);

					if (TIMESTAMP_IS_NOBEGIN(ts))
						str = "-infinity";
					else if (TIMESTAMP_IS_NOEND(ts))
						str = "infinity";
					else
					{
						/* microseconds since 1970-01-01 00:00:00 UTC */
						snprintf(buf, sizeof(buf), INT64_FORMAT,
								 ts + (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY);
						str = buf;
					}
					DigestField(ctx, str, strlen(str));
				}
				break;
			default:
				elog(ERROR, "unexpected type %u in a sealed column",
					 es_seal_fields[i].type);
		}
	}
	DigestFinal(ctx, digest);
}

/*
 * EsSealHash computes a seal's hash: SHA-256 of 4 bytes of format, the
 * previous seal's hash (zeros for the first seal), seal_id,
 * after_position, to_position and the number of events as 8 bytes each,
 * then for each event its position (8 bytes) and digest (32).  Integers
 * are big-endian.
 */
void
EsSealHash(pg_cryptohash_ctx *ctx, const uint8 *prev_hash, int64 seal_id,
		   int64 after_position, int64 to_position, int nevents,
		   const int64 *positions, const uint8 *digests, uint8 *hash)
{
	int			i;

	DigestInit(ctx);
	DigestUint32(ctx, ES_SEAL_FORMAT);
	DigestBytes(ctx, prev_hash, ES_SEAL_HASH_LEN);
	DigestInt64(ctx, seal_id);
	DigestInt64(ctx, after_position);
	DigestInt64(ctx, to_position);
	DigestInt64(ctx, nevents);
	for (i = 0; i < nevents; i++)
	{
		DigestInt64(ctx, positions[i]);
		DigestBytes(ctx, digests + (size_t) i * ES_SEAL_HASH_LEN,
					ES_SEAL_HASH_LEN);
	}
	DigestFinal(ctx, hash);
}

/*
 * EsSealsRelation returns the OID of es_seals of the install, with an
 * error for an install whose SQL has none yet.
 */
Oid
EsSealsRelation(const EsCatalog *cat)
{
	Oid			relid = EsLookupRelation("es_seals", cat->namespace_oid, true);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this install of es_pg has no seal chain"),
				 errhint("Run ALTER EXTENSION es_pg UPDATE.")));
	return relid;
}

/*
 * EsHexString returns bytes as lowercase hexadecimal, palloc'd.
 */
char *
EsHexString(const uint8 *bytes, size_t len)
{
	char	   *str = palloc(len * 2 + 1);

	hex_encode((const char *) bytes, len, str);
	str[len * 2] = '\0';
	return str;
}

/*
 * SealCollect is the EsReadFeed callback of es_seal: the event's position
 * and digest.
 */
static bool
SealCollect(HeapTuple tuple, TupleDesc tupdesc, void *arg)
{
	SealBatch  *batch = (SealBatch *) arg;
	MemoryContext oldcxt;
	int			n = batch->nevents;

	if (tupdesc->natts != batch->cols->natts)
		elog(ERROR, "es_events changed shape while it was being sealed");
	oldcxt = MemoryContextSwitchTo(batch->event_cxt);
	heap_deform_tuple(tuple, tupdesc, batch->values, batch->nulls);
	batch->positions[n] =
		DatumGetInt64(batch->values[batch->cols->attnums[0] - 1]);
	EsSealEventDigest(batch->ctx, batch->cols, batch->values, batch->nulls,
					  batch->digests + (size_t) n * ES_SEAL_HASH_LEN);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(batch->event_cxt);
	batch->nevents++;
	return true;
}

/*
 * ReadSealHead reads the last seal, with a snapshot taken now.
 */
static void
ReadSealHead(const EsCatalog *cat, Oid owner, EsSealHead *head)
{
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	int			rc;

	memset(head, 0, sizeof(*head));
	EsSpiConnect();
	rc = EsExecute(&LastSealStatement, cat->namespace_oid, owner, NULL, NULL,
				   snapshot);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
	if (SPI_processed > 0)
	{
		HeapTuple	tuple = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		bytea	   *hash;

		head->seal_id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
		head->to_position = DatumGetInt64(SPI_getbinval(tuple, desc, 2, &isnull));
		hash = DatumGetByteaPP(SPI_getbinval(tuple, desc, 3, &isnull));
		if (VARSIZE_ANY_EXHDR(hash) != ES_SEAL_HASH_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("seal " INT64_FORMAT " has a hash of %zu bytes",
							head->seal_id, VARSIZE_ANY_EXHDR(hash)),
					 errhint("Run es_verify() to see where the chain is broken.")));
		memcpy(head->hash, VARDATA_ANY(hash), ES_SEAL_HASH_LEN);
	}
	SPI_finish();
	UnregisterSnapshot(snapshot);
}

/*
 * InsertSeal writes one seal and moves the head to it.
 */
static void
InsertSeal(const EsCatalog *cat, Oid owner, EsSealHead *head,
		   SealBatch *batch, pg_cryptohash_ctx *ctx)
{
	Datum		values[8];
	Datum	   *elems;
	uint8		hash[ES_SEAL_HASH_LEN];
	int64		seal_id = head->seal_id + 1;
	int64		to_position = batch->positions[batch->nevents - 1];
	bytea	   *digests;
	bytea	   *prev;
	bytea	   *hashval;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			i;

	EsSealHash(ctx, head->hash, seal_id, head->to_position, to_position,
			   batch->nevents, batch->positions, batch->digests, hash);

	elems = palloc(sizeof(Datum) * batch->nevents);
	for (i = 0; i < batch->nevents; i++)
		elems[i] = Int64GetDatum(batch->positions[i]);
	digests = palloc(VARHDRSZ + (size_t) batch->nevents * ES_SEAL_HASH_LEN);
	SET_VARSIZE(digests, VARHDRSZ + (size_t) batch->nevents * ES_SEAL_HASH_LEN);
	memcpy(VARDATA(digests), batch->digests,
		   (size_t) batch->nevents * ES_SEAL_HASH_LEN);
	prev = palloc(VARHDRSZ + ES_SEAL_HASH_LEN);
	SET_VARSIZE(prev, VARHDRSZ + ES_SEAL_HASH_LEN);
	memcpy(VARDATA(prev), head->hash, ES_SEAL_HASH_LEN);
	hashval = palloc(VARHDRSZ + ES_SEAL_HASH_LEN);
	SET_VARSIZE(hashval, VARHDRSZ + ES_SEAL_HASH_LEN);
	memcpy(VARDATA(hashval), hash, ES_SEAL_HASH_LEN);

	values[0] = Int64GetDatum(seal_id);
	values[1] = Int32GetDatum(ES_SEAL_FORMAT);
	values[2] = Int64GetDatum(head->to_position);
	values[3] = Int64GetDatum(to_position);
	get_typlenbyvalalign(INT8OID, &typlen, &typbyval, &typalign);
	values[4] = PointerGetDatum(construct_array(elems, batch->nevents, INT8OID,
												typlen, typbyval, typalign));
	values[5] = PointerGetDatum(digests);
	values[6] = PointerGetDatum(prev);
	values[7] = PointerGetDatum(hashval);
	(void) EsRunStatement(&InsertSealStatement, cat->namespace_oid, owner,
						  values, NULL, SPI_OK_INSERT);

	head->seal_id = seal_id;
	head->to_position = to_position;
	memcpy(head->hash, hash, ES_SEAL_HASH_LEN);
}

/*
 * LockSealing takes the database's seal lock until the transaction ends.
 */
static void
LockSealing(void)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, 0, 0, ES_LOCKTAG_SEAL);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/*
 * es_seal seals the committed events after the last seal, up to the
 * feed's safe horizon and at most max_events of them (NULL: no limit), in
 * seals of at most ES_SEAL_MAX_EVENTS events.  Returns how many events it
 * sealed.
 */
PG_FUNCTION_INFO_V1(es_seal);
Datum
es_seal(PG_FUNCTION_ARGS)
{
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	int64		max_events = PG_INT64_MAX;
	int64		sealed = 0;
	Oid			seals_relid;
	Oid			owner;
	Relation	rel;
	EsSealColumns cols;
	EsSealHead	head;
	SealBatch	batch;
	pg_cryptohash_ctx *ctx;

	if (!PG_ARGISNULL(0))
	{
		max_events = PG_GETARG_INT64(0);
		if (max_events < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("max_events must not be negative"),
					 errhint("Pass NULL to seal every event that can be sealed.")));
	}
	EsCheckReadPrivilege(cat);
	seals_relid = EsSealsRelation(cat);
	owner = EsRelationOwner(seals_relid);
	if (max_events == 0)
		PG_RETURN_INT64(0);

	rel = table_open(cat->events_relid, AccessShareLock);
	EsSealResolveColumns(RelationGetDescr(rel), &cols);

	LockSealing();
	ReadSealHead(cat, owner, &head);

	ctx = EsSealDigestBegin();
	batch.cols = &cols;
	batch.ctx = ctx;
	batch.event_cxt = AllocSetContextCreate(CurrentMemoryContext,
											"es_seal event",
											ALLOCSET_DEFAULT_SIZES);
	batch.positions = palloc(sizeof(int64) * ES_SEAL_MAX_EVENTS);
	batch.digests = palloc((size_t) ES_SEAL_HASH_LEN * ES_SEAL_MAX_EVENTS);
	batch.values = palloc(sizeof(Datum) * cols.natts);
	batch.nulls = palloc(sizeof(bool) * cols.natts);

	while (sealed < max_events)
	{
		int64		want = Min(max_events - sealed, ES_SEAL_MAX_EVENTS);

		CHECK_FOR_INTERRUPTS();
		batch.nevents = 0;
		(void) EsReadFeed(cat, head.to_position, want, SealCollect, &batch);
		if (batch.nevents == 0)
			break;
		InsertSeal(cat, owner, &head, &batch, ctx);
		sealed += batch.nevents;
		if (batch.nevents < want)
			break;
	}

	pg_cryptohash_free(ctx);
	MemoryContextDelete(batch.event_cxt);
	table_close(rel, AccessShareLock);
	PG_RETURN_INT64(sealed);
}

/*
 * es_audit_append_only refuses to change or remove seals (es_seals),
 * tombstones (es_tombstones) and archived events (es_archived_events,
 * es_archives).
 */
PG_FUNCTION_INFO_V1(es_audit_append_only);
Datum
es_audit_append_only(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = EsCheckTriggerCall(fcinfo, "es_audit_append_only");
	const char *relname = RelationGetRelationName(trigdata->tg_relation);
	bool		seals = strcmp(relname, "es_seals") == 0;
	const char *what;
	const char *op;

	if (seals)
		what = "seals";
	else if (strcmp(relname, "es_tombstones") == 0)
		what = "tombstones";
	else
		what = "archived events";

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
			 errmsg("%s is not allowed on %s: %s are never changed or removed",
					op, relname, what),
			 seals ? errdetail("Each seal names the hash of the one before it.") :
			 errdetail("A deleted stream stays deleted, and what es_archive moved stays archived."),
			 seals ? errhint("Seal new events with es_seal().") :
			 errhint("Use another stream id.")));
	PG_RETURN_NULL();
}
