/*-------------------------------------------------------------------------
 *
 * projshmem.c
 *	  The shared memory of the projection subsystem: the database workers'
 *	  slots, the commit-time wake-ups, the condition variable that projection
 *	  waits sleep on, and the progress slots of rebuilds.
 *
 The shared memory needs es_pg in shared_preload_libraries.  Without it
 * the commit-time wake-ups go straight to the worker: a backend finds its
 * database's worker among the server's processes (by its background worker
 * type), remembers it, and sets its latch; when there is none, it registers
 * one (a dynamic background worker needs no preloading), at most once a
 * second.  So creating an async projection starts the worker, and after a
 * restart the first append that concerns async projections does.
 * Projection waits then sleep on their own latch in short steps, and
 * rebuild progress is not shown.
 *
 * With the shared memory, database slots go only to the databases that
 * have async projections (and to those the launcher is looking into): a
 * database without es_pg, or without async projections, takes no slot and
 * no worker.
 *
 * This file calls no other file of es_pg; the launcher and the workers
 * (worker.c) and the projection code use it.
 *
 * IDENTIFICATION
 *	  src/projshmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "projection.h"

EsProjectionShared *es_projection_shared = NULL;

/* es_pg.projection_workers */
bool		es_projection_workers = true;

/* without shared memory: this database's worker as last found */
static pid_t known_worker_pid = 0;
static PGPROC *known_worker_proc = NULL;
static TimestampTz last_worker_search = 0;
static TimestampTz last_worker_start = 0;
static bool start_failure_logged = false;

/*
 * How often a backend without shared memory looks for a missing worker,
 * and starts one when it finds none.
 */
#define ES_SEARCH_INTERVAL_MS	10
#define ES_START_INTERVAL_MS	1000

/* this database's name, for log lines and worker names */
static Oid	my_dbname_oid = InvalidOid;
static NameData my_dbname;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* things to do when the current transaction commits */
static bool wake_worker_at_commit = false;
static bool request_worker_at_commit = false;
static bool broadcast_at_commit = false;

static bool progress_exit_registered = false;

/*
 * DbSlotCount is the number of database slots: a running worker takes a
 * background worker slot, so more than max_worker_processes of them are
 * never running at once.
 */
static int
DbSlotCount(void)
{
	return Max(ES_MIN_DB_SLOTS, max_worker_processes);
}

/*
 * ShmemSize is the size of the shared state.
 */
static Size
ShmemSize(void)
{
	return add_size(offsetof(EsProjectionShared, dbs),
					mul_size(DbSlotCount(), sizeof(EsDbSlot)));
}

/*
 * ShmemRequest reserves the shared state (preload only).
 */
static void
ShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(ShmemSize()));
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
	es_projection_shared = ShmemInitStruct("es_pg projections", ShmemSize(), &found);
	if (!found)
	{
		memset(es_projection_shared, 0, ShmemSize());
		es_projection_shared->ndbs = DbSlotCount();
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

	for (i = 0; i < es_projection_shared->ndbs; i++)
		if (es_projection_shared->dbs[i].state != ES_DB_FREE &&
			es_projection_shared->dbs[i].dboid == dboid)
			return &es_projection_shared->dbs[i];
	return NULL;
}

/*
 * EsNewDbSlot takes a free slot for a database that wants a worker, or
 * returns NULL when all are in use.  Caller holds the mutex.
 */
EsDbSlot *
EsNewDbSlot(Oid dboid, const char *dbname)
{
	int			i;

	for (i = 0; i < es_projection_shared->ndbs; i++)
	{
		EsDbSlot   *s = &es_projection_shared->dbs[i];

		if (s->state == ES_DB_FREE)
		{
			memset(s, 0, sizeof(EsDbSlot));
			s->dboid = dboid;
			s->state = ES_DB_WANTED;
			if (dbname != NULL)
				namestrcpy(&s->dbname, dbname);
			return s;
		}
	}
	return NULL;
}

/*
 * EsDbReasonText says in words why a database has no running worker.
 */
const char *
EsDbReasonText(EsDbReason reason)
{
	switch (reason)
	{
		case ES_REASON_NONE:
			break;
		case ES_REASON_NO_BGWORKER_SLOT:
			return "no background worker slot is free: raise max_worker_processes (needs a restart)";
		case ES_REASON_DIED_STARTING:
			return "the worker exited before it was running: see the server log";
		case ES_REASON_CRASHED:
			return "the worker exited with an error: see the server log; it is started again";
		case ES_REASON_DISABLED:
			return "es_pg.projection_workers is off";
	}
	return NULL;
}

/*
 * EsMyDatabaseName returns the current database's name, looked up once per
 * backend.  Call it inside a transaction; it may return "" otherwise.
 */
const char *
EsMyDatabaseName(void)
{
	if (my_dbname_oid != MyDatabaseId && IsTransactionState())
	{
		char	   *name = get_database_name(MyDatabaseId);

		namestrcpy(&my_dbname, name ? name : "");
		my_dbname_oid = MyDatabaseId;
	}
	return my_dbname_oid == MyDatabaseId ? NameStr(my_dbname) : "";
}

/*
 * EsRegisterWorker registers a database's worker as a dynamic background
 * worker, which needs no preloading.  With "notify" the caller may wait
 * for it to start through *handle.  False when no background worker slot
 * is free.
 */
bool
EsRegisterWorker(Oid dboid, const char *dbname, bool notify,
				 BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *h = NULL;
	bool		ok;

	memset(&worker, 0, sizeof(BackgroundWorker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "es_pg");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "es_projection_worker_main");
	if (dbname != NULL && dbname[0] != '\0')
		snprintf(worker.bgw_name, BGW_MAXLEN,
				 "es_pg projection worker for database %s", dbname);
	else
		snprintf(worker.bgw_name, BGW_MAXLEN,
				 "es_pg projection worker for database %u", dboid);
	snprintf(worker.bgw_type, BGW_MAXLEN, ES_WORKER_TYPE);
	worker.bgw_main_arg = ObjectIdGetDatum(dboid);
	worker.bgw_notify_pid = notify ? MyProcPid : 0;
	ok = RegisterDynamicBackgroundWorker(&worker, &h);
	if (handle != NULL)
		*handle = ok ? h : NULL;
	else if (h != NULL)
		pfree(h);
	return ok;
}

/*
 * EsFindWorkerPid returns the pid of a database's worker, or 0: a process
 * connected to the database whose background worker type is ours.  It
 * walks every process of the server, so callers remember what it found.
 */
pid_t
EsFindWorkerPid(Oid dboid)
{
	uint32		i;

	for (i = 0; i < ProcGlobal->allProcCount; i++)
	{
		PGPROC	   *proc = &ProcGlobal->allProcs[i];
		pid_t		pid = proc->pid;
		const char *type;

		if (pid == 0 || pid == MyProcPid || proc->databaseId != dboid)
			continue;
		type = GetBackgroundWorkerTypeByPid(pid);
		if (type != NULL && strcmp(type, ES_WORKER_TYPE) == 0)
			return pid;
	}
	return 0;
}

/*
 * WakeUnshared wakes this database's worker without the shared memory:
 * sets the latch of the worker found last time if it is still there,
 * otherwise looks for it (at most every 10 ms), and starts one when there
 * is none (at most once a second per backend: a worker just started takes
 * a few milliseconds to show).  Runs after commit: nothing here raises an
 * error.
 *
 * After a change of es_projections ("request") it also starts a worker
 * when one runs: that one may have just seen no async projection and be
 * leaving, and nothing without shared memory tells.  A leaving worker lets
 * go of the worker lock before its last look (worker.c), so the new one
 * takes over, or finds the lock held and leaves at once.
 */
static void
WakeUnshared(bool request)
{
	PGPROC	   *proc = NULL;
	TimestampTz now;
	bool		found = false;

	/*
	 * The worker found last time, if its PGPROC still holds it: read without
	 * a lock (PGPROCs live as long as the server; a latch set on a process
	 * that has just taken the slot over is a harmless wake-up).
	 */
	if (known_worker_pid != 0)
	{
		proc = known_worker_proc;
		if (proc != NULL && proc->pid == known_worker_pid &&
			proc->databaseId == MyDatabaseId)
		{
			SetLatch(&proc->procLatch);
			found = true;
		}
		else
			known_worker_pid = 0;
	}
	if (!found)
	{
		now = GetCurrentTimestamp();
		if (!request &&
			!TimestampDifferenceExceeds(last_worker_search, now,
										ES_SEARCH_INTERVAL_MS))
			return;
		last_worker_search = now;
		known_worker_pid = EsFindWorkerPid(MyDatabaseId);
		if (known_worker_pid != 0)
		{
			proc = BackendPidGetProc(known_worker_pid);
			known_worker_proc = proc;
			if (proc != NULL)
				SetLatch(&proc->procLatch);
			found = true;
		}
	}
	if (found && !request)
		return;
	if (!request &&
		!TimestampDifferenceExceeds(last_worker_start, GetCurrentTimestamp(),
									ES_START_INTERVAL_MS))
		return;
	last_worker_start = GetCurrentTimestamp();
	/* no workers while pg_upgrade runs the server (as with the launcher) */
	if (!es_projection_workers || RecoveryInProgress() || IsBinaryUpgrade)
		return;
	if (EsRegisterWorker(MyDatabaseId, EsMyDatabaseName(), false, NULL))
		start_failure_logged = false;
	else
	{
		/* said once per backend, not at every try */
		ereport(start_failure_logged ? DEBUG1 : LOG,
				(errmsg("es_pg could not start a projection worker for database \"%s\"",
						EsMyDatabaseName()),
				 errdetail("All %d background worker slots are in use.",
						   max_worker_processes),
				 errhint("Raise max_worker_processes (needs a restart).")));
		start_failure_logged = true;
	}
}

/*
 * WakeOrRequest sets the latch of the database's worker; when the database
 * has no slot (no worker, none wanted), it takes one and asks the launcher
 * for a worker; when "request" is set (es_projections changed) a worker
 * that failed or stepped aside is asked for again now, and a running one
 * looks again before it leaves.
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
		s = EsNewDbSlot(dboid, NameStr(my_dbname));
		if (s != NULL)
			launcher = es_projection_shared->launcher_latch;
	}
	else if (s->state == ES_DB_RUNNING)
	{
		latch = s->latch;
		s->probe = false;
		if (request)
			s->requested = true;
	}
	else if (request && (s->state == ES_DB_AWAY || s->state == ES_DB_FAILED))
	{
		s->state = ES_DB_WANTED;
		s->retry_at = 0;
		s->probe = false;
		launcher = es_projection_shared->launcher_latch;
	}
	else
	{
		/* this database does need a worker: failures are worth a log line */
		s->probe = false;
		if (request)
			s->requested = true;
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
	else if (event == XACT_EVENT_COMMIT &&
			 (request_worker_at_commit || wake_worker_at_commit))
	{
		/* the worker itself (a handler that appends) looks again */
		if (MyBgworkerEntry != NULL &&
			strcmp(MyBgworkerEntry->bgw_type, ES_WORKER_TYPE) == 0)
			SetLatch(MyLatch);
		else
			WakeUnshared(request_worker_at_commit);
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
	DefineCustomBoolVariable("es_pg.projection_workers",
							 "Runs background workers that apply async projections.",
							 NULL,
							 &es_projection_workers,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
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
	if (!wake_worker_at_commit)
		(void) EsMyDatabaseName();
	wake_worker_at_commit = true;
}

/*
 * EsRequestWorkerAtCommit: es_projections changed; make sure this database
 * has a worker once the transaction commits.
 */
void
EsRequestWorkerAtCommit(void)
{
	(void) EsMyDatabaseName();
	request_worker_at_commit = true;
}

/*
 * EsWakeWorkerNow wakes this database's worker now, or has one started
 * when none runs: for a caller that waits for it (es_wait_for_projection).
 */
void
EsWakeWorkerNow(void)
{
	/* the worker itself (a handler that waits) wakes no one */
	if (MyBgworkerEntry != NULL &&
		strcmp(MyBgworkerEntry->bgw_type, ES_WORKER_TYPE) == 0)
		return;
	(void) EsMyDatabaseName();
	if (es_projection_shared != NULL)
		WakeOrRequest(MyDatabaseId, false);
	else
		WakeUnshared(false);
}

/*
 * EsWorkerAskedAtCommit says whether this transaction asks for the worker
 * when it commits (it changed es_projections, or appended for async
 * projections).
 */
bool
EsWorkerAskedAtCommit(void)
{
	return request_worker_at_commit || wake_worker_at_commit;
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
 * sleeps on the latch for up to 10 ms.
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
						 Min(timeout_ms, 10L), PG_WAIT_EXTENSION);
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
