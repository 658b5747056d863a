/*-------------------------------------------------------------------------
 *
 * lock.c
 *	  The two locks that make appends and the global feed safe.
 *
 * Stream lock: es_append takes an exclusive lock on a hash of the stream id
 * and keeps it until the transaction ends.  Two appenders of one stream are
 * therefore serialized: the second one waits, then reads the version the
 * first one committed, so an expected-version check can never pass twice.
 * Hash collisions only make unrelated streams wait for each other.
 *
 * Feed lock: position allocation and the insertion of the new rows into the
 * es_events indexes happen while holding ES_LOCKTAG_FEED exclusively; the
 * lock is released as soon as the rows are in the indexes, well before
 * commit.  Positions therefore enter the global_position index in increasing
 * order.  A reader of the feed takes the lock in share mode for an instant
 * and notes the highest position in the index: every position up to that
 * one is then either in the index (committed, aborted or still in progress)
 * or was never used, which is what lets es_read_all stop at the first event
 * whose transaction is still open instead of skipping it.  See read.c.
 *
 * Both are heavyweight locks in the advisory space, so they take part in
 * deadlock detection and show up in pg_locks.
 *
 * IDENTIFICATION
 *	  src/lock.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/lock.h"

#include "es_pg.h"

/*
 * EsLockStream locks one stream until the end of the transaction.
 */
void
EsLockStream(text *stream_id)
{
	LOCKTAG		tag;
	uint64		hash;

	hash = hash_bytes_extended((const unsigned char *) VARDATA_ANY(stream_id),
							   VARSIZE_ANY_EXHDR(stream_id), 0);
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (hash >> 32),
						 (uint32) hash, ES_LOCKTAG_STREAM);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

static inline void
FeedLockTag(LOCKTAG *tag)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, 0, 0, ES_LOCKTAG_FEED);
}

/*
 * EsLockFeed takes the feed lock exclusively.  es_append releases it with
 * EsUnlockFeed as soon as its rows are in the indexes; an insert that does
 * not come from es_append (a restore, the table owner inserting by hand)
 * cannot say when its rows reach the indexes, so it keeps the lock until its
 * transaction ends.  Transaction or subtransaction abort releases it too.
 */
void
EsLockFeed(void)
{
	LOCKTAG		tag;

	FeedLockTag(&tag);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

void
EsUnlockFeed(void)
{
	LOCKTAG		tag;

	FeedLockTag(&tag);
	if (!LockRelease(&tag, ExclusiveLock, false))
		elog(WARNING, "es_pg feed lock was not held");
}

/*
 * EsLockFeedShared waits until no appender is between allocating a position
 * and inserting it into the indexes, and keeps them out until
 * EsUnlockFeedShared.  The caller reads the highest indexed position in
 * between.
 */
void
EsLockFeedShared(void)
{
	LOCKTAG		tag;

	FeedLockTag(&tag);
	(void) LockAcquire(&tag, ShareLock, false, false);
}

void
EsUnlockFeedShared(void)
{
	LOCKTAG		tag;

	FeedLockTag(&tag);
	if (!LockRelease(&tag, ShareLock, false))
		elog(WARNING, "es_pg feed lock was not held");
}
