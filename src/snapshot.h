/*-------------------------------------------------------------------------
 *
 * snapshot.h
 *	  Declarations shared by the snapshot files: reducer.c (reducer checks
 *	  and digests), snapstore.c (the snapshot store and policies) and
 *	  snapshot.c (the fold, es_aggregate).
 *
 * IDENTIFICATION
 *	  src/snapshot.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ES_SNAPSHOT_H
#define ES_SNAPSHOT_H

#include "common/sha2.h"

#include "es_pg.h"

/* the key of es_snapshots for snapshots saved without a reducer */
#define ES_NO_REDUCER	""

/* hex SHA-256 plus terminator */
#define ES_DIGEST_LEN	PG_SHA256_DIGEST_STRING_LENGTH

/* a function that passed the reducer checks */
typedef struct EsReducer
{
	Oid			oid;
	Oid			owner;
	char	   *name;			/* schema-qualified, the key in the tables */
	uint8		code_digest[PG_SHA256_DIGEST_LENGTH];
} EsReducer;

/* a reducer's snapshot policy */
typedef struct EsSnapshotPolicy
{
	int32		every;			/* 0: no policy */
	char	   *search_path;
} EsSnapshotPolicy;

/* a snapshot read from es_snapshots */
typedef struct EsFoundSnapshot
{
	int64		version;
	Jsonb	   *state;
	TimestampTz created_at;
	bool		folded;			/* es_aggregate made it (it has a digest) */
} EsFoundSnapshot;

/* reducer.c */
extern void EsCheckReducer(const EsSnapshotCatalog *sc, Oid fn,
						   EsReducer *info);
extern const char *EsReducerArgument(FunctionCallInfo fcinfo, int argno,
									 const EsSnapshotCatalog *sc,
									 EsReducer *info);
extern void EsFoldDigest(const EsReducer *reducer,
						 const EsSnapshotPolicy *policy, Jsonb *initial,
						 char *hex);

/* snapstore.c */
extern int64 EsStreamVersionOf(const EsCatalog *cat, text *stream_id,
							   Snapshot snapshot);
extern bool EsFindReducerSnapshot(const EsSnapshotCatalog *sc,
								  Snapshot snapshot, text *stream_id,
								  const char *reducer, int64 bound,
								  const char *digest, EsFoundSnapshot *found,
								  int64 *stale);
extern void EsLookupPolicy(const EsSnapshotCatalog *sc, Snapshot snapshot,
						   const char *reducer, EsSnapshotPolicy *policy);
extern char *EsStorePolicySnapshot(const EsSnapshotCatalog *sc,
								   text *stream_id, const char *reducer,
								   int64 version, Datum state,
								   const char *digest);

/* snapshot.c */
extern bool es_log_replay;
extern void EsInitSnapshots(void);

#endif							/* ES_SNAPSHOT_H */
