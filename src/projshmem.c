/*-------------------------------------------------------------------------
 *
 * projshmem.c
 *	  The shared memory of the projection subsystem: the database workers'
 *	  slots, the commit-time wake-ups, the condition variable that projection
 *	  waits sleep on, and the progress slots of rebuilds.
 *
 * Everything here needs es_pg in shared_preload_libraries.  Without it
 * there is no shared memory: wake-ups are dropped (es_start_projection_worker
 * or es_apply_projections does the applying), projection waits fall back to
 * sleeping on the latch, and rebuild progress is not shown.  This file
 * calls no other file of es_pg; the launcher and the workers (worker.c) and
 * the projection code use it.
 *
 * IDENTIFICATION
 *	  src/projshmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "projection.h"

EsProjectionShared *es_projection_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* things to do when the current transaction commits */
static bool wake_worker_at_commit = false;
static bool request_worker_at_commit = false;
static bool broadcast_at_commit = false;

static bool progress_exit_registered = false;

/*
 * ShmemRequest reserves the shared state (preload only).
 */
static void
ShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(EsProjectionShared)));
}

/*
 * ShmemStartup creates or attaches to the shared state.
 */
static void
ShmemStartup(void)
{
	bool		found;
	int			i;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	es_projection_shared = ShmemInitStruct("es_pg projections", sizeof(EsProjectionShared), &found);
	if (!found)
	{
		memset(es_projection_shared, 0, sizeof(EsProjectionShared));
		SpinLockInit(&es_projection_shared->mutex);
		ConditionVariableInit(&es_projection_shared->checkpoint_cv);
		for (i = 0; i < ES_MAX_REBUILDS; i++)
			pg_atomic_init_u64(&es_projection_shared->progress[i].done, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * EsFindDbSlot returns the slot of a database, or NULL.  Caller holds the
 * mutex.
 */
EsDbSlot *
EsFindDbSlot(Oid dboid)
{
	int			i;

	for (i = 0; i < ES_MAX_DATABASES; i++)
		if (es_projection_shared->dbs[i].state != ES_DB_FREE &&
			es_projection_shared->dbs[i].dboid == dboid)
			return &es_projection_shared->dbs[i];
	return NULL;
}

/*
 * EsNewDbSlot takes a free slot for a database, or returns NULL when all are
 * in use.  Caller holds the mutex.
 */
EsDbSlot *
EsNewDbSlot(Oid dboid)
{
	int			i;

	for (i = 0; i < ES_MAX_DATABASES; i++)
	{
		EsDbSlot   *s = &es_projection_shared->dbs[i];

		if (s->state == ES_DB_FREE)
		{
			memset(s, 0, sizeof(EsDbSlot));
			s->dboid = dboid;
			s->state = ES_DB_WANTED;
			return s;
		}
	}
	return NULL;
}

/*
 * WakeOrRequest sets the latch of the database's worker; when there is no
 * worker and "request" is set (or the database has never been seen), it
 * asks the launcher for one.
 */
static void
WakeOrRequest(Oid dboid, bool request)
{
	Latch	   *latch = NULL;
	Latch	   *launcher = NULL;
	EsDbSlot   *s;

	SpinLockAcquire(&es_projection_shared->mutex);
	s = EsFindDbSlot(dboid);
	if (s == NULL)
	{
		s = EsNewDbSlot(dboid);
		if (s != NULL)
			launcher = es_projection_shared->launcher_latch;
	}
	else if (s->state == ES_DB_RUNNING)
		latch = s->latch;
	else if (s->state == ES_DB_ABSENT ||
			 (request && (s->state == ES_DB_AWAY || s->state == ES_DB_FAILED)))
	{
		s->state = ES_DB_WANTED;
		s->retry_at = 0;
		launcher = es_projection_shared->launcher_latch;
	}
	SpinLockRelease(&es_projection_shared->mutex);
	if (latch != NULL)
		SetLatch(latch);
	if (launcher != NULL)
		SetLatch(launcher);
}

/*
 * ShmemXactCallback runs what the transaction asked for once it has
 * committed: its changes are visible by then.
 */
static void
ShmemXactCallback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT && es_projection_shared != NULL)
	{
		if (request_worker_at_commit || wake_worker_at_commit)
			WakeOrRequest(MyDatabaseId, request_worker_at_commit);
		if (broadcast_at_commit)
			ConditionVariableBroadcast(&es_projection_shared->checkpoint_cv);
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		wake_worker_at_commit = false;
		request_worker_at_commit = false;
		broadcast_at_commit = false;
	}
}

/*
 * EsInitProjectionShmem registers the commit callback, and with es_pg
 * preloaded the shared memory hooks.  Called from _PG_init.
 */
void
EsInitProjectionShmem(void)
{
	RegisterXactCallback(ShmemXactCallback, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ShmemStartup;
}

/*
 * EsWakeWorkerAtCommit: an append or a resume that concerns async
 * projections; wake this database's worker when the transaction commits.
 */
void
EsWakeWorkerAtCommit(void)
{
	wake_worker_at_commit = true;
}

/*
 * EsRequestWorkerAtCommit: es_projections changed; make sure this database
 * has a worker once the transaction commits.
 */
void
EsRequestWorkerAtCommit(void)
{
	request_worker_at_commit = true;
}

/*
 * EsCheckpointAdvanced: wake es_wait_for_projection waiters once the
 * transaction commits.
 */
void
EsCheckpointAdvanced(void)
{
	broadcast_at_commit = true;
}

/*
 * EsWaitForCheckpoint sleeps until some checkpoint advances or timeout_ms
 * passes (at most a second, so that callers look again).  The first call
 * only gets ready to sleep, so that the caller checks once more without
 * missing a wakeup; timeout_ms < 0 ends the wait.  Without shared memory it
 * sleeps on the latch for up to 100 ms.
 */
void
EsWaitForCheckpoint(long timeout_ms, bool *prepared)
{
	if (es_projection_shared == NULL)
	{
		if (timeout_ms < 0)
			return;
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(timeout_ms, 100L), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		return;
	}
	if (timeout_ms < 0)
	{
		ConditionVariableCancelSleep();
		*prepared = false;
		return;
	}
	if (!*prepared)
	{
		ConditionVariablePrepareToSleep(&es_projection_shared->checkpoint_cv);
		*prepared = true;
		return;
	}
	(void) ConditionVariableTimedSleep(&es_projection_shared->checkpoint_cv,
									   Min(timeout_ms, 1000L),
									   PG_WAIT_EXTENSION);
}

/*
 * ReleaseProgressSlots frees the progress slots of this backend at exit.
 */
static void
ReleaseProgressSlots(int code, Datum arg)
{
	int			i;

	if (es_projection_shared == NULL)
		return;
	SpinLockAcquire(&es_projection_shared->mutex);
	for (i = 0; i < ES_MAX_REBUILDS; i++)
		if (es_projection_shared->progress[i].pid == MyProcPid)
			es_projection_shared->progress[i].pid = 0;
	SpinLockRelease(&es_projection_shared->mutex);
}

/*
 * EsProgressStart takes a progress slot for a rebuild of "total" events and
 * returns it, or -1 (not preloaded, or every slot in use).
 */
int
EsProgressStart(const char *name, int64 total)
{
	int			i;
	int			slot = -1;

	if (es_projection_shared == NULL)
		return -1;
	if (!progress_exit_registered)
	{
		before_shmem_exit(ReleaseProgressSlots, (Datum) 0);
		progress_exit_registered = true;
	}
	SpinLockAcquire(&es_projection_shared->mutex);
	for (i = 0; i < ES_MAX_REBUILDS; i++)
	{
		EsProgressSlot *p = &es_projection_shared->progress[i];

		if (p->pid == 0)
		{
			p->pid = MyProcPid;
			p->dboid = MyDatabaseId;
			namestrcpy(&p->name, name);
			p->total = total;
			pg_atomic_write_u64(&p->done, 0);
			p->started_at = GetCurrentTimestamp();
			slot = i;
			break;
		}
	}
	SpinLockRelease(&es_projection_shared->mutex);
	return slot;
}

/*
 * EsProgressUpdate records the events walked so far.
 */
void
EsProgressUpdate(int slot, int64 done)
{
	if (slot >= 0 && es_projection_shared != NULL)
		pg_atomic_write_u64(&es_projection_shared->progress[slot].done, (uint64) done);
}

/*
 * EsProgressEnd frees a progress slot.
 */
void
EsProgressEnd(int slot)
{
	if (slot < 0 || es_projection_shared == NULL)
		return;
	SpinLockAcquire(&es_projection_shared->mutex);
	es_projection_shared->progress[slot].pid = 0;
	SpinLockRelease(&es_projection_shared->mutex);
}

/*
 * EsProgressSnapshot copies the progress of the rebuilds running in one
 * database and returns how many there are.
 */
int
EsProgressSnapshot(Oid dboid, char (*names)[NAMEDATALEN], int *pids,
				   int64 *done, int64 *total, TimestampTz *started, int max)
{
	int			i;
	int			n = 0;

	if (es_projection_shared == NULL)
		return 0;
	SpinLockAcquire(&es_projection_shared->mutex);
	for (i = 0; i < ES_MAX_REBUILDS && n < max; i++)
	{
		EsProgressSlot *p = &es_projection_shared->progress[i];

		if (p->pid == 0 || p->dboid != dboid)
			continue;
		strlcpy(names[n], NameStr(p->name), NAMEDATALEN);
		pids[n] = (int) p->pid;
		done[n] = (int64) pg_atomic_read_u64(&p->done);
		total[n] = p->total;
		started[n] = p->started_at;
		n++;
	}
	SpinLockRelease(&es_projection_shared->mutex);
	return n;
}
