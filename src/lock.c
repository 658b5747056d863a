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
 * global_position index happen while holding the feed lock exclusively; the
 * lock is released as soon as the rows are in that index, well before
 * commit.  Positions therefore enter the index in increasing order.  A
 * reader of the feed takes the lock in share mode for an instant and notes
 * the highest position in the index: every position up to that one is then
 * either in the index (committed, aborted or still in progress) or was never
 * used, which is what lets es_read_all stop at the first event whose
 * transaction is still open instead of skipping it.  See read.c.
 *
 * The feed lock comes in two forms:
 *
 *	- ES_LOCKTAG_FEED, a heavyweight lock in the advisory space of the
 *	  database: always available, seen in pg_locks and by the deadlock
 *	  detector;
 *	- with es_pg in shared_preload_libraries, an LWLock per database slot,
 *	  much cheaper to take and to hand over when appenders queue up.
 *
 * es_append uses the LWLock when it can: with es_pg preloaded, and when no
 * code of the user's runs inside the critical section (BEFORE ROW triggers
 * on es_events).  Everything that could wait on another transaction has
 * been taken care of before: the relation and sequence locks are held, and
 * positions from the sequence cannot collide.
 *
 * An insert that does not come from es_append (a restore's COPY, the owner
 * inserting by hand) cannot say when its rows reach the index, so it holds
 * the heavyweight lock until it commits.  It also raises its slot's count of
 * such inserters and waits for the LWLock once; while the count is raised,
 * appenders and readers take the heavyweight lock instead of the LWLock, and
 * so wait for it.  The count drops when its transaction ends, after which
 * its rows are committed or dead, whatever the order the locks go in.
 *
 * Stream locks are heavyweight locks in the advisory space, so they take
 * part in deadlock detection and show up in pg_locks.
 *
 * IDENTIFICATION
 *	  src/lock.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

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

/* feed lock slots in shared memory; databases hash onto them */
#define ES_FEED_SLOTS	16

typedef struct EsFeedShared
{
	pg_atomic_uint32 direct_inserters[ES_FEED_SLOTS];
} EsFeedShared;

static EsFeedShared *es_feed_shared = NULL;
static LWLockPadded *es_feed_lwlocks = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* the slot whose direct-inserter count this transaction raised, or -1 */
static int	es_raised_slot = -1;

/*
 * FeedShmemRequest reserves the LWLocks and the counters.
 */
static void
FeedShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(EsFeedShared)));
	RequestNamedLWLockTranche("es_pg feed", ES_FEED_SLOTS);
}

/*
 * FeedShmemStartup creates or attaches to them.
 */
static void
FeedShmemStartup(void)
{
	bool		found;
	int			i;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	es_feed_shared = ShmemInitStruct("es_pg feed", sizeof(EsFeedShared),
									 &found);
	if (!found)
		for (i = 0; i < ES_FEED_SLOTS; i++)
			pg_atomic_init_u32(&es_feed_shared->direct_inserters[i], 0);
	es_feed_lwlocks = GetNamedLWLockTranche("es_pg feed");
	LWLockRelease(AddinShmemInitLock);
}

/*
 * FeedXactCallback lowers the direct-inserter count when the transaction
 * that raised it ends (or is prepared).
 */
static void
FeedXactCallback(XactEvent event, void *arg)
{
	if (es_raised_slot < 0)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT)
	{
		pg_atomic_fetch_sub_u32(&es_feed_shared->direct_inserters[es_raised_slot], 1);
		es_raised_slot = -1;
	}
}

/*
 * EsInitFeedLock sets up the shared part of the feed lock when es_pg is
 * being preloaded; called from _PG_init.
 */
void
EsInitFeedLock(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = FeedShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = FeedShmemStartup;
	RegisterXactCallback(FeedXactCallback, NULL);
}

static inline int
FeedSlot(void)
{
	return (int) (MyDatabaseId % ES_FEED_SLOTS);
}

/*
 * TryFeedLWLock takes the database's feed LWLock in the given mode, unless
 * a direct insert is under way, in which case it returns false holding
 * nothing.
 */
static bool
TryFeedLWLock(LWLockMode mode)
{
	int			slot = FeedSlot();
	LWLock	   *lock;

	if (es_feed_lwlocks == NULL)
		return false;
	lock = &es_feed_lwlocks[slot].lock;
	LWLockAcquire(lock, mode);
	if (pg_atomic_read_u32(&es_feed_shared->direct_inserters[slot]) == 0)
		return true;
	LWLockRelease(lock);
	return false;
}

/*
 * EsLockFeed takes the feed lock exclusively for es_append, as an LWLock
 * when lightweight_ok and possible, else as the heavyweight lock.  It
 * returns what it took, for EsUnlockFeed.  Transaction or subtransaction
 * abort releases either.
 */
EsFeedLock
EsLockFeed(bool lightweight_ok)
{
	LOCKTAG		tag;

	if (lightweight_ok && TryFeedLWLock(LW_EXCLUSIVE))
		return ES_FEED_LWLOCK;
	FeedLockTag(&tag);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
	return ES_FEED_HEAVYWEIGHT;
}

void
EsUnlockFeed(EsFeedLock held)
{
	LOCKTAG		tag;

	if (held == ES_FEED_LWLOCK)
	{
		LWLockRelease(&es_feed_lwlocks[FeedSlot()].lock);
		return;
	}
	FeedLockTag(&tag);
	if (!LockRelease(&tag, ExclusiveLock, false))
		elog(WARNING, "es_pg feed lock was not held");
}

/*
 * EsLockFeedShared waits until no appender is between allocating a position
 * and inserting it into the index, and keeps them out until
 * EsUnlockFeedShared.  The caller reads the highest indexed position in
 * between.
 */
EsFeedLock
EsLockFeedShared(void)
{
	LOCKTAG		tag;

	if (TryFeedLWLock(LW_SHARED))
		return ES_FEED_LWLOCK;
	FeedLockTag(&tag);
	(void) LockAcquire(&tag, ShareLock, false, false);
	return ES_FEED_HEAVYWEIGHT;
}

void
EsUnlockFeedShared(EsFeedLock held)
{
	LOCKTAG		tag;

	if (held == ES_FEED_LWLOCK)
	{
		LWLockRelease(&es_feed_lwlocks[FeedSlot()].lock);
		return;
	}
	FeedLockTag(&tag);
	if (!LockRelease(&tag, ShareLock, false))
		elog(WARNING, "es_pg feed lock was not held");
}

/*
 * EsLockFeedUntilCommit is for inserts into es_events that do not come from
 * es_append: the heavyweight lock until the transaction ends, and, when
 * preloaded, the direct-inserter count that turns appenders and readers to
 * the heavyweight lock, raised before waiting out the LWLock's holders.
 */
void
EsLockFeedUntilCommit(void)
{
	LOCKTAG		tag;
	int			slot = FeedSlot();

	FeedLockTag(&tag);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
	if (es_feed_lwlocks == NULL || es_raised_slot >= 0)
		return;
	pg_atomic_fetch_add_u32(&es_feed_shared->direct_inserters[slot], 1);
	es_raised_slot = slot;
	LWLockAcquire(&es_feed_lwlocks[slot].lock, LW_EXCLUSIVE);
	LWLockRelease(&es_feed_lwlocks[slot].lock);
}
