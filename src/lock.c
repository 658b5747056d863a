/*-------------------------------------------------------------------------
 *
 * lock.c
 *	  The locks that make appends and the global feed safe.
 *
 * Stream lock: es_append takes an exclusive lock on a hash of the stream id
 * and keeps it until the transaction ends.  Two appenders of one stream are
 * therefore serialized: the second one waits, then reads the version the
 * first one committed, so an expected-version check can never pass twice.
 * Hash collisions only make unrelated streams wait for each other.  Stream
 * locks are heavyweight locks in the advisory space, so they take part in
 * deadlock detection and show up in pg_locks.
 *
 * The feed protocol
 * -----------------
 *
 * Positions come from a sequence, transactions commit in any order, and
 * rows enter the global_position index (es_events_pkey) some time after
 * their position was handed out.  A reader of the feed (read.c) asks this
 * file for a "safe high" position H: every position up to H that will
 * ever be committed is in the index already.  It then walks the index up
 * to H and stops at the first row whose transaction might still commit;
 * a follower that always passes the last position it received therefore
 * never skips an event.  The whole protocol exists to make H true.
 *
 * Writers are of two kinds:
 *
 *	- appends (es_append, es_append_batch), whose flight, from taking
 *	  their first position to having every row in the index, is short and
 *	  runs es_pg's code (and BEFORE ROW triggers, if an administrator added
 *	  some);
 *	- direct inserts (INSERT or COPY into es_events that bypass es_append:
 *	  a restore, a migration), whose positions es_pg cannot see being taken
 *	  (the column default calls nextval), and which open a "window" with
 *	  their first statement's BEFORE STATEMENT trigger and keep it until
 *	  their transaction is about to commit (guard.c, direct.c).
 *
 * The rules:
 *
 *	R1. A direct-insert window excludes every other writer of the database:
 *		it is opened only when no append is in flight and no other window
 *		is open, and nothing is appended while it is open.
 *	R2. An append in flight is known to readers: either as its first
 *		position, registered where readers look before they read the
 *		index (with es_pg preloaded), or by a lock that readers wait for
 *		(without).
 *	R3. A reader takes H as the highest indexed position, lowered to just
 *		below the first position of every registered append in flight, at
 *		an instant when no window is open and no unregistered append is in
 *		flight.
 *
 * Why H is safe: take a position p <= H that is not in the index when the
 * reader looks.  p was handed out by a writer W.  If W is a direct insert,
 * its window was closed at that instant (R3), so all its rows were in the
 * index already (it closes the window after its last statement, when every
 * row it wrote is indexed), unless it never used p.  If W is an append, it
 * was either done (p indexed) or in flight; in flight and registered means
 * H < first position of W <= p, a contradiction; in flight and not
 * registered cannot be (R3).  So p was never used, or is indexed.
 * Positions handed out after that instant come from the sequence, which
 * never goes back (a window that inserted explicit positions moves it past
 * them before it closes, and a window refuses positions at or below the
 * highest one in use when it opened), so they are above H.
 *
 * The two implementations of R2 and R3:
 *
 *	With es_pg in shared_preload_libraries, each database maps to one of
 *	ES_FEED_SLOTS slots, each with an LWLock, a count of open or opening
 *	windows and a count of registered appends; each backend has a
 *	registry entry (database, first position in flight).  An append takes
 *	the slot's LWLock exclusively, checks that no window is open or
 *	opening in the slot, takes its positions from the sequence, registers
 *	the first one and releases the LWLock: nothing else happens under it,
 *	so the slow part of an append (TOAST, heap and index inserts, BEFORE
 *	ROW triggers) holds up neither other appenders nor readers.  When it
 *	has put its rows into the index it clears its entry.  A reader takes
 *	the LWLock in share mode (no position is handed out meanwhile), reads
 *	the registry and then the index.  A window raises the slot's count,
 *	then takes the heavyweight feed lock (below) exclusively, then takes
 *	and releases the LWLock (after which every append of the slot sees the
 *	count) and waits until no append of its database is registered.
 *	While the count is raised, appenders of the slot first take the
 *	heavyweight lock in RowExclusive mode and readers in Share mode (so
 *	they wait for a window of their database, not of another database of
 *	the slot), and then proceed as above: every append is registered and
 *	every position is handed out under the LWLock, whichever path it took,
 *	so the count going down at any moment never leaves an append
 *	unregistered.  Appends with BEFORE ROW triggers (user code in flight)
 *	also hold the heavyweight lock in RowExclusive mode in flight, so that
 *	a window waits for them through the lock manager, where a deadlock
 *	with them is detected, rather than by polling the registry.
 *
 *	Without preloading there is no shared memory, and the heavyweight
 *	lock ES_LOCKTAG_FEED of the database does everything: an append holds
 *	it in RowExclusive mode for its flight (appenders do not conflict with
 *	each other), a reader takes it in Share mode for an instant (waiting
 *	for the appends in flight), a window holds it in Exclusive mode.
 *
 * A window's heavyweight lock belongs to the top-level transaction, so a
 * rolled-back subtransaction does not end it; it goes with the commit (the
 * count is lowered once the transaction's rows are visible), or just
 * before PREPARE, or at abort.  Every registry entry is cleared when its append leaves
 * flight, on error, and at backend exit.
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
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/resowner.h"
#include "utils/wait_event.h"

#include "es_pg.h"
#include "common.h"

/* feed lock slots in shared memory; databases hash onto them */
#define ES_FEED_SLOTS	16

/* what one backend has in flight */
typedef struct InFlight
{
	Oid			dboid;
	pg_atomic_uint64 first;		/* first position in flight, 0: none */
} InFlight;

typedef struct FeedShared
{
	pg_atomic_uint32 windows[ES_FEED_SLOTS];	/* open or opening */
	pg_atomic_uint32 in_flight[ES_FEED_SLOTS];	/* registered appends */
	int			nentries;
	InFlight	entries[FLEXIBLE_ARRAY_MEMBER];
} FeedShared;

static FeedShared *es_feed_shared = NULL;
static LWLockPadded *es_feed_lwlocks = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * This backend's registry entry, and how many appends it stands for: an
 * append nested in another one's flight (a BEFORE ROW trigger that calls
 * es_append) keeps the outer one's first position, which is lower.
 */
static InFlight *my_entry = NULL;
static int	my_entry_depth = 0;

/* appends of this backend in flight, nested ones included */
static int	flight_depth = 0;

/* the window of this transaction */
static bool window_open = false;
static int	window_raised_slot = -1;

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

static inline int
FeedSlot(void)
{
	return (int) (MyDatabaseId % ES_FEED_SLOTS);
}

static Size
FeedShmemSize(void)
{
	return add_size(offsetof(FeedShared, entries),
					mul_size(MaxBackends, sizeof(InFlight)));
}

/*
 * FeedShmemRequest reserves the LWLocks, the counters and the registry.
 */
static void
FeedShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(FeedShmemSize()));
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
	es_feed_shared = ShmemInitStruct("es_pg feed", FeedShmemSize(), &found);
	if (!found)
	{
		for (i = 0; i < ES_FEED_SLOTS; i++)
		{
			pg_atomic_init_u32(&es_feed_shared->windows[i], 0);
			pg_atomic_init_u32(&es_feed_shared->in_flight[i], 0);
		}
		es_feed_shared->nentries = MaxBackends;
		for (i = 0; i < MaxBackends; i++)
		{
			es_feed_shared->entries[i].dboid = InvalidOid;
			pg_atomic_init_u64(&es_feed_shared->entries[i].first, 0);
		}
	}
	es_feed_lwlocks = GetNamedLWLockTranche("es_pg feed");
	LWLockRelease(AddinShmemInitLock);
}

/*
 * ClearEntry takes this backend's append out of the registry.  The rows
 * it registered are in the index (or the append failed) by then; the
 * barrier orders those index writes before the entry disappears for
 * readers.
 */
static void
ClearEntry(void)
{
	if (my_entry_depth == 0)
		return;
	pg_write_barrier();
	pg_atomic_write_u64(&my_entry->first, 0);
	pg_atomic_fetch_sub_u32(&es_feed_shared->in_flight[FeedSlot()], 1);
	my_entry_depth = 0;
}

/*
 * FeedBackendExit clears the registry entry of a backend that exits with
 * an append in flight.
 */
static void
FeedBackendExit(int code, Datum arg)
{
	ClearEntry();
}

/*
 * FeedXactCallback closes a window that is still open when the
 * transaction ends: at abort (the normal close, just before commit or
 * PREPARE, is EsFeedCloseWindow, called by direct.c once its checks are
 * done), and clears a registry entry an error left behind.
 */
static void
FeedXactCallback(XactEvent event, void *arg)
{
	if (event != XACT_EVENT_ABORT && event != XACT_EVENT_PARALLEL_ABORT &&
		event != XACT_EVENT_COMMIT && event != XACT_EVENT_PREPARE)
		return;
	ClearEntry();
	flight_depth = 0;
	if (window_raised_slot >= 0)
	{
		pg_atomic_fetch_sub_u32(&es_feed_shared->windows[window_raised_slot], 1);
		window_raised_slot = -1;
	}
	window_open = false;
}

/*
 * EsFeedInFlight says whether this backend is in the middle of an append:
 * a trigger of that append must not open a direct-insert window, which
 * would wait for the append to end.
 */
bool
EsFeedInFlight(void)
{
	return flight_depth > 0;
}

/*
 * EsInitFeedLock sets up the feed protocol's shared memory when es_pg is
 * being preloaded, and its transaction callback; called from _PG_init.
 */
void
EsInitFeedLock(void)
{
	RegisterXactCallback(FeedXactCallback, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = FeedShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = FeedShmemStartup;
}

/*
 * MyEntry returns this backend's registry entry, setting up its exit
 * callback the first time.
 */
static InFlight *
MyEntry(void)
{
	int			index = EsMyProcIndex();

	if (my_entry != NULL)
		return my_entry;
	if (index < 0 || index >= es_feed_shared->nentries)
		elog(ERROR, "es_pg feed registry has no entry for process number %d",
			 index);
	my_entry = &es_feed_shared->entries[index];
	before_shmem_exit(FeedBackendExit, (Datum) 0);
	return my_entry;
}

/*
 * EsFeedBeginAppend starts an append's flight.  With es_pg preloaded it
 * returns holding the slot's LWLock exclusively, and the caller takes its
 * positions and calls EsFeedRegister at once; without, it returns holding
 * the heavyweight feed lock in RowExclusive mode and EsFeedRegister does
 * nothing.  user_code says that BEFORE ROW triggers will run in flight.
 * *waited is set when the append had to wait for a direct-insert window,
 * which may have written to the stream meanwhile.
 */
void
EsFeedBeginAppend(EsFeedHold *hold, bool user_code, bool *waited)
{
	LOCKTAG		tag;
	int			slot = FeedSlot();

	memset(hold, 0, sizeof(EsFeedHold));
	*waited = false;
	FeedLockTag(&tag);
	flight_depth++;
	hold->in_flight = true;

	if (es_feed_lwlocks == NULL)
	{
		if (LockAcquire(&tag, RowExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		{
			(void) LockAcquire(&tag, RowExclusiveLock, false, false);
			*waited = true;
		}
		hold->heavyweight = true;
		return;
	}

	if (user_code)
	{
		if (LockAcquire(&tag, RowExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		{
			(void) LockAcquire(&tag, RowExclusiveLock, false, false);
			*waited = true;
		}
		hold->heavyweight = true;
	}
	LWLockAcquire(&es_feed_lwlocks[slot].lock, LW_EXCLUSIVE);
	if (!hold->heavyweight &&
		pg_atomic_read_u32(&es_feed_shared->windows[slot]) > 0)
	{
		/* a window is open or opening in this slot: wait for ours */
		LWLockRelease(&es_feed_lwlocks[slot].lock);
		if (LockAcquire(&tag, RowExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		{
			(void) LockAcquire(&tag, RowExclusiveLock, false, false);
			*waited = true;
		}
		hold->heavyweight = true;
		LWLockAcquire(&es_feed_lwlocks[slot].lock, LW_EXCLUSIVE);
	}
	hold->lwlock = true;
}

/*
 * EsFeedRegister makes the append's first position known to readers and
 * releases the LWLock: the slow part of the flight follows.
 */
void
EsFeedRegister(EsFeedHold *hold, int64 first_position)
{
	InFlight   *entry;

	if (!hold->lwlock)
		return;
	entry = MyEntry();
	if (my_entry_depth++ == 0)
	{
		entry->dboid = MyDatabaseId;
		pg_atomic_write_u64(&entry->first, (uint64) first_position);
		pg_atomic_fetch_add_u32(&es_feed_shared->in_flight[FeedSlot()], 1);
	}
	LWLockRelease(&es_feed_lwlocks[FeedSlot()].lock);
	hold->lwlock = false;
	hold->registered = true;
}

/*
 * EsFeedEndAppend ends the flight once every row is in the index, or
 * after an error (the caller then re-throws).
 */
void
EsFeedEndAppend(EsFeedHold *hold)
{
	LOCKTAG		tag;

	if (hold->in_flight)
	{
		flight_depth--;
		hold->in_flight = false;
	}

	if (hold->lwlock)
	{
		LWLockRelease(&es_feed_lwlocks[FeedSlot()].lock);
		hold->lwlock = false;
	}
	if (hold->registered)
	{
		if (my_entry_depth == 1)
			ClearEntry();
		else if (my_entry_depth > 1)
			my_entry_depth--;
		hold->registered = false;
	}
	if (hold->heavyweight)
	{
		FeedLockTag(&tag);
		if (!LockRelease(&tag, RowExclusiveLock, false))
			elog(WARNING, "es_pg feed lock was not held");
		hold->heavyweight = false;
	}
}

/*
 * RegisteredFloor returns the lowest first position registered in flight
 * in this database, or 0.  Caller holds the slot's LWLock.
 */
static int64
RegisteredFloor(void)
{
	int64		floor = 0;
	int			i;

	if (pg_atomic_read_u32(&es_feed_shared->in_flight[FeedSlot()]) == 0)
		return 0;
	for (i = 0; i < es_feed_shared->nentries; i++)
	{
		InFlight   *e = &es_feed_shared->entries[i];
		int64		first = (int64) pg_atomic_read_u64(&e->first);

		if (first != 0 && e->dboid == MyDatabaseId &&
			(floor == 0 || first < floor))
			floor = first;
	}
	return floor;
}

/*
 * EsFeedSafeHigh returns the position up to which every event that will
 * ever commit is in the global_position index (see the header comment).
 */
int64
EsFeedSafeHigh(Relation rel, Relation index)
{
	LOCKTAG		tag;
	bool		heavyweight = false;
	int64		floor = 0;
	int64		high;
	int			slot = FeedSlot();

	FeedLockTag(&tag);
	if (es_feed_lwlocks == NULL)
	{
		(void) LockAcquire(&tag, ShareLock, false, false);
		high = EsMaxIndexedPosition(rel, index);
		LockRelease(&tag, ShareLock, false);
		return high;
	}

	LWLockAcquire(&es_feed_lwlocks[slot].lock, LW_SHARED);
	if (pg_atomic_read_u32(&es_feed_shared->windows[slot]) > 0)
	{
		LWLockRelease(&es_feed_lwlocks[slot].lock);
		(void) LockAcquire(&tag, ShareLock, false, false);
		heavyweight = true;
		LWLockAcquire(&es_feed_lwlocks[slot].lock, LW_SHARED);
	}
	floor = RegisteredFloor();
	pg_read_barrier();
	high = EsMaxIndexedPosition(rel, index);
	LWLockRelease(&es_feed_lwlocks[slot].lock);
	if (heavyweight)
		LockRelease(&tag, ShareLock, false);
	if (floor > 0 && floor - 1 < high)
		high = floor - 1;
	return high;
}

/*
 * EsFeedOpenWindow opens this transaction's direct-insert window, waiting
 * until no append of the database is in flight and no other window is
 * open.  Opening it twice in a transaction is harmless.
 */
void
EsFeedOpenWindow(void)
{
	LOCKTAG		tag;
	ResourceOwner save_owner = CurrentResourceOwner;
	int			slot = FeedSlot();

	if (window_open)
		return;
	if (es_feed_lwlocks != NULL && window_raised_slot < 0)
	{
		pg_atomic_fetch_add_u32(&es_feed_shared->windows[slot], 1);
		window_raised_slot = slot;
	}

	/* the lock belongs to the transaction, not to a subtransaction */
	FeedLockTag(&tag);
	CurrentResourceOwner = TopTransactionResourceOwner;
	PG_TRY();
	{
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
	}
	PG_FINALLY();
	{
		CurrentResourceOwner = save_owner;
	}
	PG_END_TRY();

	if (es_feed_lwlocks != NULL)
	{
		/* appends registered before they could see the raised count */
		for (;;)
		{
			int64		floor;

			LWLockAcquire(&es_feed_lwlocks[slot].lock, LW_EXCLUSIVE);
			floor = RegisteredFloor();
			LWLockRelease(&es_feed_lwlocks[slot].lock);
			if (floor == 0)
				break;
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 1L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	window_open = true;
}

/*
 * EsFeedWindowOpen says whether this transaction holds a window.
 */
bool
EsFeedWindowOpen(void)
{
	return window_open;
}

/*
 * EsFeedCloseWindow closes the window once every row of it is in the index
 * and checked.  Before commit the lock is kept: it goes with the commit, so
 * that readers waiting for it find the rows committed, and the count goes
 * down right after (FeedXactCallback).  Before PREPARE both go now: the
 * prepared transaction's rows are then like those of any open transaction,
 * which readers stop at.
 */
void
EsFeedCloseWindow(bool prepare)
{
	LOCKTAG		tag;
	ResourceOwner save_owner = CurrentResourceOwner;

	if (!window_open)
		return;
	window_open = false;
	if (!prepare)
		return;
	FeedLockTag(&tag);
	CurrentResourceOwner = TopTransactionResourceOwner;
	if (!LockRelease(&tag, ExclusiveLock, false))
		elog(WARNING, "es_pg feed lock was not held");
	CurrentResourceOwner = save_owner;
	if (window_raised_slot >= 0)
	{
		pg_atomic_fetch_sub_u32(&es_feed_shared->windows[window_raised_slot], 1);
		window_raised_slot = -1;
	}
}
