/*-------------------------------------------------------------------------
 *
 * subscription.h
 *	  Shared by the category and subscription files: category.c (category
 *	  reads and the rows handed to consumers), subscription.c (subscriptions,
 *	  polls, acks, parking) and subwait.c (the wake-ups of long polls).
 *
 * IDENTIFICATION
 *	  src/subscription.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ES_SUBSCRIPTION_H
#define ES_SUBSCRIPTION_H

#include "access/htup.h"
#include "access/skey.h"
#include "access/tupdesc.h"
#include "utils/tuplestore.h"

#include "es_pg.h"

/* category.c */
typedef struct EsEventRowMap
{
	int		   *source;			/* per result column; NULL: not built yet */
	bool		identity;		/* the result is es_events' row type */
} EsEventRowMap;

extern Oid	EsCategoryIndex(const EsCatalog *cat);
extern void EsCheckCategory(text *category);
extern void EsCategoryScanKeys(ScanKey keys, text *category,
							   int64 from_position);
extern bool EsInCategory(HeapTuple tuple, TupleDesc tupdesc,
						 int category_len);
extern HeapTuple EsConsumerShape(Oid namespace_oid, MemoryContext scratch,
								 HeapTuple tuple, TupleDesc tupdesc);
extern MemoryContext EsConsumerScratch(const EsCatalog *cat);
extern void EsPutEventRow(Tuplestorestate *store, TupleDesc result,
						  EsEventRowMap *map, HeapTuple tuple,
						  TupleDesc tupdesc, const Datum *extra,
						  const bool *extra_null, int nextra);

/* subscription.c: the subscriptions of async projections (projapply.c) */
typedef struct EsMemberState
{
	int64		checkpoint;
	int64		delivered_to;	/* > checkpoint: the event there failed */
	int32		attempts;		/* deliveries of it so far */
	int32		max_attempts;
	bool		replay_pending; /* parked events are marked for replay */
} EsMemberState;

extern int64 EsWalkSubscriptionFeed(const EsCatalog *cat, text *category,
									int64 from, int64 max_count,
									EsFeedCallback callback, void *arg,
									int64 *reached);
extern bool EsLockProjectionMember(const EsCatalog *cat, const char *name,
								   bool skip_locked, EsMemberState *st);
extern void EsProjectionApplied(const EsCatalog *cat, const char *name,
								int64 position);
extern bool EsProjectionFailed(const EsCatalog *cat, const char *name,
							   int64 position, int32 attempt,
							   const char *sqlstate, const char *message);
extern int	EsProjectionReplays(const EsCatalog *cat, const char *name,
								int max, int64 *positions, int32 *attempts);
extern void EsProjectionReplayed(const EsCatalog *cat, const char *name,
								 int64 position, bool ok, const char *message);
extern bool EsFetchEventAt(const EsCatalog *cat, int64 position,
						   HeapTuple *tuple, TupleDesc *tupdesc);

/* subwait.c */
extern void EsInitSubWait(void);
extern void EsSubWaitNoteAppend(int64 position);
extern uint64 EsSubWaitGeneration(void);
extern void EsSubWaitSleep(uint64 generation, long timeout_ms);

#endif							/* ES_SUBSCRIPTION_H */
