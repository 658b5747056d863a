/*-------------------------------------------------------------------------
 *
 * subwait.c
 *	  Wake-ups of long polls (es_poll with a wait) when appends commit.
 *
 * With es_pg in shared_preload_libraries, each database hashes onto one of
 * ES_SUBWAIT_SLOTS slots, each a counter of committed appending
 * transactions and a condition variable.  A transaction that appended
 * (append.c calls EsSubWaitNoteAppend) bumps its slot's counter and
 * broadcasts on its condition variable once it has committed, when its rows
 * are visible to new snapshots.  A poller reads the counter before it walks
 * the feed and sleeps only while the counter still has that value, so a
 * commit between its walk and its sleep is not missed; it wakes within
 * about a millisecond of the commit.  The sleep is bounded (50 ms) so that
 * rows no append wrote (a COPY into es_events, a two-phase commit) are
 * found soon after too.
 *
 * Without preloading there is no shared memory: the poller sleeps 10 ms and
 * walks again, which costs one index probe per wake when nothing is new.
 *
 * es_pg.notify_appends (off by default) makes each appending transaction
 * also send NOTIFY es_pg with the highest position it appended, for
 * clients that LISTEN rather than long-poll.  NOTIFY takes a cluster-wide
 * lock at commit, which serializes the commits of every notifying
 * transaction; LISTEN does not work through a transaction-mode pooler.
 *
 * This file calls no other file of es_pg.
 *
 * IDENTIFICATION
 *	  src/subwait.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/async.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/wait_event.h"

#include "subscription.h"

#define ES_SUBWAIT_SLOTS		16
#define ES_SUBWAIT_SLEEP_MS		50
#define ES_SUBWAIT_POLL_MS		10

typedef struct SubWaitSlot
{
	pg_atomic_uint64 commits;
	ConditionVariable cv;
} SubWaitSlot;

static SubWaitSlot *subwait_slots = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* this transaction appended (its highest position): wake pollers at commit */
static bool appended_in_xact = false;
static int64 appended_position = 0;

/* es_pg.notify_appends */
static bool es_notify_appends = false;

static inline SubWaitSlot *
MySlot(void)
{
	return &subwait_slots[MyDatabaseId % ES_SUBWAIT_SLOTS];
}

/*
 * SubWaitShmemRequest reserves the slots.
 */
static void
SubWaitShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(SubWaitSlot) * ES_SUBWAIT_SLOTS));
}

/*
 * SubWaitShmemStartup creates or attaches to them.
 */
static void
SubWaitShmemStartup(void)
{
	bool		found;
	int			i;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	subwait_slots = ShmemInitStruct("es_pg subscription wake-ups",
									sizeof(SubWaitSlot) * ES_SUBWAIT_SLOTS,
									&found);
	if (!found)
	{
		for (i = 0; i < ES_SUBWAIT_SLOTS; i++)
		{
			pg_atomic_init_u64(&subwait_slots[i].commits, 0);
			ConditionVariableInit(&subwait_slots[i].cv);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * SubWaitXactCallback wakes the pollers of the database once a transaction
 * that appended has committed.
 */
static void
SubWaitXactCallback(XactEvent event, void *arg)
{
	if (!appended_in_xact)
		return;
	if (event == XACT_EVENT_PRE_COMMIT && es_notify_appends)
	{
		char		payload[32];

		snprintf(payload, sizeof(payload), INT64_FORMAT, appended_position);
		Async_Notify("es_pg", payload);
	}
	else if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
	{
		appended_in_xact = false;
		if (subwait_slots != NULL)
		{
			SubWaitSlot *slot = MySlot();

			pg_atomic_fetch_add_u64(&slot->commits, 1);
			ConditionVariableBroadcast(&slot->cv);
		}
	}
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
			 event == XACT_EVENT_PREPARE)
		appended_in_xact = false;
}

/*
 * EsSubWaitNoteAppend records that this transaction appended up to a
 * position; called by append.c for each append.
 */
void
EsSubWaitNoteAppend(int64 position)
{
	if (!appended_in_xact || position > appended_position)
		appended_position = position;
	appended_in_xact = true;
}

/*
 * EsSubWaitGeneration returns the slot's count of committed appending
 * transactions (0 without shared memory), to pass to EsSubWaitSleep.
 */
uint64
EsSubWaitGeneration(void)
{
	if (subwait_slots == NULL)
		return 0;
	return pg_atomic_read_u64(&MySlot()->commits);
}

/*
 * EsSubWaitSleep sleeps until an append commits after the generation was
 * read, or up to timeout_ms (and never more than ES_SUBWAIT_SLEEP_MS, or
 * ES_SUBWAIT_POLL_MS without shared memory).  Interrupts are served.
 */
void
EsSubWaitSleep(uint64 generation, long timeout_ms)
{
	if (timeout_ms <= 0)
		return;
	if (subwait_slots == NULL)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(timeout_ms, ES_SUBWAIT_POLL_MS), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		return;
	}
	ConditionVariablePrepareToSleep(&MySlot()->cv);
	if (pg_atomic_read_u64(&MySlot()->commits) == generation)
		(void) ConditionVariableTimedSleep(&MySlot()->cv,
										   Min(timeout_ms, ES_SUBWAIT_SLEEP_MS),
										   PG_WAIT_EXTENSION);
	ConditionVariableCancelSleep();
	CHECK_FOR_INTERRUPTS();
}

/*
 * EsInitSubWait registers the commit callback, and the shared memory when
 * es_pg is being preloaded; called from _PG_init.
 */
void
EsInitSubWait(void)
{
	DefineCustomBoolVariable("es_pg.notify_appends",
							 "Send NOTIFY es_pg with the highest position when a transaction that appended commits.",
							 "NOTIFY takes a cluster-wide lock at commit; es_poll with a wait needs no notification.",
							 &es_notify_appends,
							 false,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	RegisterXactCallback(SubWaitXactCallback, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = SubWaitShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = SubWaitShmemStartup;
}
