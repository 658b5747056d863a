/*-------------------------------------------------------------------------
 *
 * verify.c
 *	  es_verify: recompute the seal chain and report the first mismatch.
 *
 * es_verify walks the seals that cover a range of positions, in seal order,
 * with one snapshot.  For each seal it checks, in this order:
 *
 *	1. that it follows the one before (seal_id one more, after_position
 *	   equal to the previous to_position, prev_hash equal to the previous
 *	   hash; before the first seal: seal_id 0, position 0, zeros);
 *	2. that it is well formed (a known format, positions increasing
 *	   within its range and ending at to_position, one digest each);
 *	3. that its hash is the hash of what it holds (seal.c's EsSealHash);
 *	4. that the events of its range in es_events are the sealed ones: each
 *	   position present, no other, and each event's digest the sealed one.
 *
 * The first failure is returned with its position: the seal's first
 * position for 1 to 3, the event's for 4.  A sealed event that es_archive
 * moved out of es_events is checked in es_archived_events (archive.c),
 * and counted apart.
 *
 * Progress: every es_pg.verify_progress_events events a NOTICE says how
 * far it got, so that a long run can be followed (and is CHECK_FOR_
 * INTERRUPTS-cancellable throughout).
 *
 * IDENTIFICATION
 *	  src/verify.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "es_pg.h"
#include "audit.h"
#include "common.h"

/* es_pg.verify_progress_events: a NOTICE every so many events, 0: none */
int			es_verify_progress_events = 1000000;

static const EsStatement SealStatement = {
	"SELECT s.seal_id, s.format, s.after_position, s.to_position, "
	"s.positions, s.digests, s.prev_hash, s.hash "
	"FROM @extschema@.es_seals s "
	"WHERE s.seal_id OPERATOR(pg_catalog.>) $1 "
	"AND s.to_position OPERATOR(pg_catalog.>=) $2 "
	"ORDER BY s.seal_id LIMIT 1",
	2, {INT8OID, INT8OID}, true
};

static const EsStatement SealByIdStatement = {
	"SELECT s.seal_id, s.to_position, s.hash "
	"FROM @extschema@.es_seals s WHERE s.seal_id OPERATOR(pg_catalog.=) $1",
	1, {INT8OID}, false
};

/* one seal as es_verify reads it */
typedef struct Seal
{
	int64		seal_id;
	int32		format;
	int64		after_position;
	int64		to_position;
	int			nevents;
	int64	   *positions;
	int			ndigests;
	uint8	   *digests;
	bytea	   *prev_hash;
	bytea	   *hash;
} Seal;

/* the first mismatch, or none */
typedef struct Mismatch
{
	const char *problem;		/* NULL: intact so far */
	int64		position;
	char	   *expected;
	char	   *found;
	int64		seal_id;
} Mismatch;

#define NONE_TEXT "(none)"

/* es_archived_events, where es_archive moved sealed events */
typedef struct Archive
{
	Relation	rel;			/* NULL: the install has none */
	Oid			index;
	EsSealColumns cols;
	int64		narchived;		/* sealed events checked there */
} Archive;

/*
 * ByteaHex returns a bytea's bytes as hex.
 */
static char *
ByteaHex(bytea *b)
{
	return EsHexString((const uint8 *) VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
}

/*
 * ReadSeal reads the next seal after seal_id whose range reaches
 * from_position; false when there is none.
 */
static bool
ReadSeal(const EsCatalog *cat, Oid owner, Snapshot snapshot, int64 after_id,
		 int64 from_position, Seal *seal)
{
	Datum		args[2];
	int			rc;
	bool		found = false;

	args[0] = Int64GetDatum(after_id);
	args[1] = Int64GetDatum(from_position);
	EsSpiConnect();
	rc = EsExecute(&SealStatement, cat->namespace_oid, owner, args, NULL,
				   snapshot);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
	if (SPI_processed > 0)
	{
		HeapTuple	tuple = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		MemoryContext oldcxt;
		ArrayType  *arr;
		Datum	   *elems;
		bool	   *elnulls;
		bytea	   *digests;
		int16		typlen;
		bool		typbyval;
		char		typalign;
		int			i;

		/* copy out of SPI's memory into the caller's */
		oldcxt = MemoryContextSwitchTo(GetMemoryChunkContext(seal));
		seal->seal_id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
		seal->format = DatumGetInt32(SPI_getbinval(tuple, desc, 2, &isnull));
		seal->after_position = DatumGetInt64(SPI_getbinval(tuple, desc, 3, &isnull));
		seal->to_position = DatumGetInt64(SPI_getbinval(tuple, desc, 4, &isnull));
		arr = DatumGetArrayTypePCopy(SPI_getbinval(tuple, desc, 5, &isnull));
		get_typlenbyvalalign(INT8OID, &typlen, &typbyval, &typalign);
		deconstruct_array(arr, INT8OID, typlen, typbyval, typalign,
						  &elems, &elnulls, &seal->nevents);
		seal->positions = palloc(sizeof(int64) * Max(seal->nevents, 1));
		for (i = 0; i < seal->nevents; i++)
			seal->positions[i] = elnulls[i] ? -1 : DatumGetInt64(elems[i]);
		digests = DatumGetByteaPCopy(SPI_getbinval(tuple, desc, 6, &isnull));
		seal->ndigests = VARSIZE(digests) - VARHDRSZ;
		seal->digests = (uint8 *) VARDATA(digests);
		seal->prev_hash = DatumGetByteaPCopy(SPI_getbinval(tuple, desc, 7, &isnull));
		seal->hash = DatumGetByteaPCopy(SPI_getbinval(tuple, desc, 8, &isnull));
		MemoryContextSwitchTo(oldcxt);
		found = true;
	}
	SPI_finish();
	return found;
}

/*
 * ReadHeadBefore sets *head to the seal before seal_id (the start of the
 * chain before seal 1); false when that seal does not exist.
 */
static bool
ReadHeadBefore(const EsCatalog *cat, Oid owner, Snapshot snapshot,
			   int64 seal_id, EsSealHead *head)
{
	Datum		arg = Int64GetDatum(seal_id - 1);
	bool		found = false;
	int			rc;

	memset(head, 0, sizeof(*head));
	if (seal_id <= 1)
		return true;
	EsSpiConnect();
	rc = EsExecute(&SealByIdStatement, cat->namespace_oid, owner, &arg, NULL,
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
		memcpy(head->hash, VARDATA_ANY(hash),
			   Min(VARSIZE_ANY_EXHDR(hash), ES_SEAL_HASH_LEN));
		found = true;
	}
	SPI_finish();
	return found;
}

static void
SetMismatch(Mismatch *m, const char *problem, int64 position, char *expected,
			char *found, int64 seal_id)
{
	m->problem = problem;
	m->position = position;
	m->expected = expected;
	m->found = found;
	m->seal_id = seal_id;
}

/*
 * CheckSealItself runs checks 1 to 3 of the header comment on one seal.
 */
static bool
CheckSealItself(const Seal *seal, const EsSealHead *head,
				pg_cryptohash_ctx *ctx, Mismatch *m)
{
	int64		first = seal->nevents > 0 ? seal->positions[0] : seal->after_position + 1;
	uint8		hash[ES_SEAL_HASH_LEN];
	int			i;

	if (seal->seal_id != head->seal_id + 1)
	{
		SetMismatch(m, "seal missing", head->to_position + 1,
					psprintf("seal " INT64_FORMAT, head->seal_id + 1),
					psprintf("seal " INT64_FORMAT, seal->seal_id),
					seal->seal_id);
		return false;
	}
	if (seal->after_position != head->to_position)
	{
		SetMismatch(m, "chain broken", Min(first, head->to_position + 1),
					psprintf("after_position " INT64_FORMAT, head->to_position),
					psprintf("after_position " INT64_FORMAT, seal->after_position),
					seal->seal_id);
		return false;
	}
	if (VARSIZE_ANY_EXHDR(seal->prev_hash) != ES_SEAL_HASH_LEN ||
		memcmp(VARDATA_ANY(seal->prev_hash), head->hash, ES_SEAL_HASH_LEN) != 0)
	{
		SetMismatch(m, "chain broken", first,
					EsHexString(head->hash, ES_SEAL_HASH_LEN),
					ByteaHex(seal->prev_hash), seal->seal_id);
		return false;
	}
	if (seal->format != ES_SEAL_FORMAT)
	{
		SetMismatch(m, "unknown seal format", first,
					psprintf("format %d", ES_SEAL_FORMAT),
					psprintf("format %d", seal->format), seal->seal_id);
		return false;
	}
	for (i = 0; i < seal->nevents; i++)
	{
		int64		p = seal->positions[i];
		int64		lower = i == 0 ? seal->after_position : seal->positions[i - 1];

		if (p <= lower || p > seal->to_position)
		{
			SetMismatch(m, "seal malformed", first,
						"positions increasing within the seal's range",
						psprintf("position " INT64_FORMAT " after " INT64_FORMAT,
								 p, lower),
						seal->seal_id);
			return false;
		}
	}
	if (seal->nevents == 0 ||
		seal->positions[seal->nevents - 1] != seal->to_position ||
		seal->ndigests != seal->nevents * ES_SEAL_HASH_LEN)
	{
		SetMismatch(m, "seal malformed", first,
					psprintf("%d digests of events up to position " INT64_FORMAT,
							 seal->nevents, seal->to_position),
					psprintf("%d bytes of digests", seal->ndigests),
					seal->seal_id);
		return false;
	}
	EsSealHash(ctx, (const uint8 *) VARDATA_ANY(seal->prev_hash),
			   seal->seal_id, seal->after_position, seal->to_position,
			   seal->nevents, seal->positions, seal->digests, hash);
	if (VARSIZE_ANY_EXHDR(seal->hash) != ES_SEAL_HASH_LEN ||
		memcmp(VARDATA_ANY(seal->hash), hash, ES_SEAL_HASH_LEN) != 0)
	{
		SetMismatch(m, "seal changed", first, ByteaHex(seal->hash),
					EsHexString(hash, ES_SEAL_HASH_LEN), seal->seal_id);
		return false;
	}
	return true;
}

/*
 * CheckArchived checks sealed event i, absent from es_events, in the
 * archive: true when it is there with the sealed digest; otherwise the
 * mismatch is set.
 */
static bool
CheckArchived(const Seal *seal, int i, Archive *archive, Snapshot snapshot,
			  pg_cryptohash_ctx *ctx, MemoryContext event_cxt, Mismatch *m,
			  int64 *nchecked)
{
	const uint8 *sealed = seal->digests + (size_t) i * ES_SEAL_HASH_LEN;
	EsIndexProbe probe;
	ScanKeyData key;
	uint8		digest[ES_SEAL_HASH_LEN];
	bool		found = false;

	if (archive->rel != NULL)
	{
		ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ,
					Int64GetDatum(seal->positions[i]));
		EsProbeOpenOn(&probe, archive->rel, archive->index);
		EsProbeStart(&probe, snapshot, &key, 1);
		if (EsProbeNext(&probe, ForwardScanDirection))
		{
			MemoryContext oldcxt = MemoryContextSwitchTo(event_cxt);

			slot_getallattrs(probe.slot);
			EsSealEventDigest(ctx, &archive->cols, probe.slot->tts_values,
							  probe.slot->tts_isnull, digest);
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(event_cxt);
			found = true;
		}
		EsProbeClose(&probe);
	}
	if (!found)
	{
		SetMismatch(m, "event missing", seal->positions[i],
					EsHexString(sealed, ES_SEAL_HASH_LEN), NONE_TEXT,
					seal->seal_id);
		return false;
	}
	(*nchecked)++;
	if (memcmp(digest, sealed, ES_SEAL_HASH_LEN) != 0)
	{
		SetMismatch(m, "archived event changed", seal->positions[i],
					EsHexString(sealed, ES_SEAL_HASH_LEN),
					EsHexString(digest, ES_SEAL_HASH_LEN), seal->seal_id);
		return false;
	}
	archive->narchived++;
	return true;
}

/*
 * CheckSealEvents runs check 4: the events of the seal's range against its
 * positions and digests.  *nchecked counts the events looked at.
 */
static bool
CheckSealEvents(const EsCatalog *cat, Relation rel, const EsSealColumns *cols,
				const Seal *seal, int64 from_position, int64 to_position,
				Archive *archive, Snapshot snapshot, pg_cryptohash_ctx *ctx,
				MemoryContext event_cxt, Mismatch *m, int64 *nchecked)
{
	EsIndexProbe probe;
	ScanKeyData keys[2];
	int64		low = Max(seal->after_position, from_position - 1);
	int64		high = Min(seal->to_position, to_position);
	int			i = 0;
	int			end;
	bool		ok = true;

	/* the sealed events from low (excluded) to high (included) */
	while (i < seal->nevents && seal->positions[i] <= low)
		i++;
	end = i;
	while (end < seal->nevents && seal->positions[end] <= high)
		end++;

	ScanKeyInit(&keys[0], 1, BTGreaterStrategyNumber, F_INT8GT,
				Int64GetDatum(low));
	ScanKeyInit(&keys[1], 1, BTLessEqualStrategyNumber, F_INT8LE,
				Int64GetDatum(high));
	EsProbeOpenOn(&probe, rel, cat->position_index);
	EsProbeStart(&probe, snapshot, keys, 2);
	while (ok && EsProbeNext(&probe, ForwardScanDirection))
	{
		MemoryContext oldcxt;
		uint8		digest[ES_SEAL_HASH_LEN];
		int64		position;
		bool		isnull;

		CHECK_FOR_INTERRUPTS();
		position = DatumGetInt64(slot_getattr(probe.slot, cols->attnums[0],
											  &isnull));
		/* sealed events before this one are gone from es_events */
		while (i < end && seal->positions[i] < position)
		{
			if (!CheckArchived(seal, i, archive, snapshot, ctx, event_cxt, m,
							   nchecked))
			{
				ok = false;
				break;
			}
			i++;
		}
		if (!ok)
			break;
		oldcxt = MemoryContextSwitchTo(event_cxt);
		slot_getallattrs(probe.slot);
		EsSealEventDigest(ctx, cols, probe.slot->tts_values,
						  probe.slot->tts_isnull, digest);
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(event_cxt);
		(*nchecked)++;
		if (i >= end || seal->positions[i] > position)
		{
			SetMismatch(m, "event added", position, NONE_TEXT,
						EsHexString(digest, ES_SEAL_HASH_LEN), seal->seal_id);
			ok = false;
			break;
		}
		if (memcmp(digest, seal->digests + (size_t) i * ES_SEAL_HASH_LEN,
				   ES_SEAL_HASH_LEN) != 0)
		{
			SetMismatch(m, "event changed", position,
						EsHexString(seal->digests + (size_t) i * ES_SEAL_HASH_LEN,
									ES_SEAL_HASH_LEN),
						EsHexString(digest, ES_SEAL_HASH_LEN), seal->seal_id);
			ok = false;
			break;
		}
		i++;
		if (es_verify_progress_events > 0 &&
			*nchecked % es_verify_progress_events == 0)
			ereport(NOTICE,
					(errmsg("es_verify: " INT64_FORMAT " events verified, up to position " INT64_FORMAT " (seal " INT64_FORMAT ")",
							*nchecked, position, seal->seal_id)));
	}
	EsProbeClose(&probe);
	while (ok && i < end)
	{
		if (!CheckArchived(seal, i, archive, snapshot, ctx, event_cxt, m,
						   nchecked))
			ok = false;
		i++;
	}
	return ok;
}

/*
 * es_verify recomputes the seal chain over the seals that cover any
 * position from from_position to to_position (both included; NULL: no
 * upper bound) and returns the first mismatch, or intact.
 */
PG_FUNCTION_INFO_V1(es_verify);
Datum
es_verify(PG_FUNCTION_ARGS)
{
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	int64		from_position = PG_ARGISNULL(0) ? 0 : PG_GETARG_INT64(0);
	int64		to_position = PG_ARGISNULL(1) ? PG_INT64_MAX : PG_GETARG_INT64(1);
	TupleDesc	tupdesc;
	Datum		values[11];
	bool		nulls[11];
	Archive		archive;
	Oid			archive_relid;
	Oid			seals_relid;
	Oid			owner;
	Relation	rel;
	EsSealColumns cols;
	EsSealHead	head;
	Snapshot	snapshot;
	pg_cryptohash_ctx *ctx;
	MemoryContext seal_cxt;
	MemoryContext event_cxt;
	MemoryContext oldcxt;
	Mismatch	m;
	int64		last_id = 0;
	int64		nseals = 0;
	int64		nevents = 0;
	int64		sealed_to = -1;

	if (from_position < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("from_position must not be negative")));
	if (to_position < from_position)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("to_position must not be less than from_position"),
				 errhint("Pass NULL as to_position to verify to the last seal.")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	EsCheckReadPrivilege(cat);
	seals_relid = EsSealsRelation(cat);
	owner = EsRelationOwner(seals_relid);
	rel = table_open(cat->events_relid, AccessShareLock);
	EsSealResolveColumns(RelationGetDescr(rel), &cols);
	memset(&archive, 0, sizeof(archive));
	archive_relid = EsArchiveRelation(cat, &archive.index);
	if (OidIsValid(archive_relid))
	{
		archive.rel = table_open(archive_relid, AccessShareLock);
		EsSealResolveColumns(RelationGetDescr(archive.rel), &archive.cols);
	}

	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	ctx = EsSealDigestBegin();
	seal_cxt = AllocSetContextCreate(CurrentMemoryContext, "es_verify seal",
									 ALLOCSET_DEFAULT_SIZES);
	event_cxt = AllocSetContextCreate(CurrentMemoryContext, "es_verify event",
									  ALLOCSET_DEFAULT_SIZES);
	memset(&m, 0, sizeof(m));

	for (;;)
	{
		Seal	   *seal;

		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(seal_cxt);
		oldcxt = MemoryContextSwitchTo(seal_cxt);
		seal = palloc0(sizeof(Seal));
		MemoryContextSwitchTo(oldcxt);
		if (!ReadSeal(cat, owner, snapshot, last_id, from_position, seal))
			break;
		if (seal->after_position >= to_position)
			break;
		if (nseals == 0 &&
			!ReadHeadBefore(cat, owner, snapshot, seal->seal_id, &head))
		{
			/* the seal before the first one looked at is gone */
			head.seal_id = seal->seal_id - 1;
			SetMismatch(&m, "seal missing", seal->after_position,
						psprintf("seal " INT64_FORMAT, seal->seal_id - 1),
						pstrdup(NONE_TEXT), seal->seal_id);
			break;
		}
		oldcxt = MemoryContextSwitchTo(seal_cxt);
		if (!CheckSealItself(seal, &head, ctx, &m) ||
			!CheckSealEvents(cat, rel, &cols, seal, from_position, to_position,
							 &archive, snapshot, ctx, event_cxt, &m, &nevents))
		{
			/* the mismatch's strings must outlive the seal's context */
			MemoryContextSwitchTo(oldcxt);
			m.expected = pstrdup(m.expected);
			m.found = pstrdup(m.found);
			break;
		}
		MemoryContextSwitchTo(oldcxt);
		nseals++;
		last_id = seal->seal_id;
		sealed_to = seal->to_position;
		head.seal_id = seal->seal_id;
		head.to_position = seal->to_position;
		memcpy(head.hash, VARDATA_ANY(seal->hash), ES_SEAL_HASH_LEN);
	}

	pg_cryptohash_free(ctx);
	/* which ranges are archived (archhorizon.c) */
	values[10] = EsArchivedRanges(cat, from_position, to_position, snapshot,
								  &nulls[10]);
	UnregisterSnapshot(snapshot);
	if (archive.rel != NULL)
		table_close(archive.rel, AccessShareLock);
	table_close(rel, AccessShareLock);

	memset(nulls, 0, sizeof(bool) * 10);
	values[0] = BoolGetDatum(m.problem == NULL);
	if (m.problem != NULL)
	{
		values[1] = CStringGetTextDatum(m.problem);
		values[2] = Int64GetDatum(m.position);
		values[3] = CStringGetTextDatum(m.expected);
		values[4] = CStringGetTextDatum(m.found);
		values[5] = Int64GetDatum(m.seal_id);
	}
	else
		nulls[1] = nulls[2] = nulls[3] = nulls[4] = nulls[5] = true;
	MemoryContextDelete(seal_cxt);
	MemoryContextDelete(event_cxt);
	values[6] = Int64GetDatum(nseals);
	values[7] = Int64GetDatum(nevents);
	values[8] = Int64GetDatum(sealed_to);
	nulls[8] = sealed_to < 0;
	values[9] = Int64GetDatum(archive.narchived);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * EsInitVerify defines es_pg.verify_progress_events.
 */
void
EsInitVerify(void)
{
	DefineCustomIntVariable("es_pg.verify_progress_events",
							"es_verify reports its progress every so many events.",
							"0 reports nothing.",
							&es_verify_progress_events,
							1000000, 0, INT_MAX,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
}
