/*-------------------------------------------------------------------------
 *
 * audit.h
 *	  Shared by the files of the seal chain: seal.c (the canonical encoding
 *	  of events and seals, es_seal) and verify.c (es_verify).
 *
 * docs/audit.md describes the encoding byte by byte; audit/verify_export.py
 * computes the same digests from an export, without es_pg.
 *
 * IDENTIFICATION
 *	  src/audit.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ES_AUDIT_H
#define ES_AUDIT_H

#include "access/tupdesc.h"
#include "common/cryptohash.h"
#include "common/sha2.h"

#include "es_pg.h"

/* the encoding of events that seals of this version write */
#define ES_SEAL_FORMAT			1

/* the most events one seal covers */
#define ES_SEAL_MAX_EVENTS		10000

#define ES_SEAL_HASH_LEN		PG_SHA256_DIGEST_LENGTH

/* the columns of es_events that format 1 covers, in encoding order */
#define ES_SEAL_NFIELDS			9

/*
 * EsSealColumns holds the attribute numbers of the covered columns in the
 * tuple descriptor of es_events, looked up by name: a column added to
 * es_events later moves nothing.
 */
typedef struct EsSealColumns
{
	AttrNumber	attnums[ES_SEAL_NFIELDS];
	int			natts;			/* of the tuple descriptor */
} EsSealColumns;

/*
 * EsSealHead is the end of the chain that a new seal links to: seal_id 0,
 * to_position 0 and a hash of zeros before the first seal.
 */
typedef struct EsSealHead
{
	int64		seal_id;
	int64		to_position;
	uint8		hash[ES_SEAL_HASH_LEN];
} EsSealHead;

/* seal.c */
extern void EsSealResolveColumns(TupleDesc tupdesc, EsSealColumns *cols);
extern pg_cryptohash_ctx *EsSealDigestBegin(void);
extern void EsSealEventDigest(pg_cryptohash_ctx *ctx,
							  const EsSealColumns *cols,
							  const Datum *values, const bool *nulls,
							  uint8 *digest);
extern void EsSealHash(pg_cryptohash_ctx *ctx, const uint8 *prev_hash,
					   int64 seal_id, int64 after_position,
					   int64 to_position, int nevents,
					   const int64 *positions, const uint8 *digests,
					   uint8 *hash);
extern Oid	EsSealsRelation(const EsCatalog *cat);
extern char *EsHexString(const uint8 *bytes, size_t len);

#endif							/* ES_AUDIT_H */
