/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  Background workers that apply async projections.
 *
 * With es_pg in shared_preload_libraries, a launcher worker starts one
 * worker per database that has es_pg installed.  It learns about databases
 * by reading pg_database (every ten seconds) and from requests that
 * backends post at commit when es_projections changes (es_create_projection,
 * a restore's COPY).  A database worker applies the pending events of every
 * async projection, a batch per projection per transaction, then sleeps
 * es_pg.projection_naptime or until an append that concerns async
 * projections commits and sets its latch.
 *
 * A database worker stays connected to its database, which would make DROP
 * DATABASE, ALTER DATABASE RENAME or SET TABLESPACE and CREATE DATABASE
 * ... TEMPLATE fail with "being accessed by other users".  Those commands
 * lock the database before they count its users, and wait up to five
 * seconds for them to leave; the worker tries a conflicting lock on its
 * database every round, and leaves when it cannot get it.  The launcher
 * starts it again a few seconds later (its connection then waits for the
 * command to finish, and fails if the database is gone).
 *
 * Without preloading there is no shared memory (projshmem.c):
 * es_start_projection_worker starts a worker for the current database
 * directly.  An advisory lock keeps it to one worker per database either
 * way.  The workers call the apply code (projapply.c) and nothing else of
 * the projection subsystem; nothing calls back into this file.
 *
 * IDENTIFICATION
 *	  src/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "projection.h"

/* es_pg.projection_naptime, milliseconds */
int			es_projection_naptime = 1000;

/* es_pg.projection_workers */
bool		es_projection_workers = true;

/* seconds between scans of pg_database, and before restarting a worker */
#define ES_SCAN_INTERVAL_S	10
#define ES_RETRY_AWAY_S		3
#define ES_RETRY_FAILED_S	10
#define ES_STARTING_LIMIT_S 60

/* how a round of ApplyRound went */
typedef enum RoundResult
{
	ROUND_IDLE,					/* nothing more to do now */
	ROUND_MORE,					/* some batch was full: more work now */
	ROUND_NOT_INSTALLED,		/* es_pg is not installed here */
	ROUND_CLAIMED				/* a command claims the database */
} RoundResult;

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

PGDLLEXPORT void es_projection_launcher_main(Datum main_arg);
PGDLLEXPORT void es_projection_worker_main(Datum main_arg);

/*
 * DatabaseToLeave returns the database a utility command needs to itself,
 * whose worker must leave it first: DROP DATABASE, ALTER DATABASE RENAME
 * or SET TABLESPACE, CREATE DATABASE ... TEMPLATE.
 */
static Oid
DatabaseToLeave(Node *parsetree)
{
	const char *dbname = NULL;
	ListCell   *lc;

	if (IsA(parsetree, DropdbStmt))
		dbname = ((DropdbStmt *) parsetree)->dbname;
	else if (IsA(parsetree, RenameStmt) &&
			 ((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
		dbname = ((RenameStmt *) parsetree)->subname;
	else if (IsA(parsetree, AlterDatabaseStmt))
	{
		foreach(lc, ((AlterDatabaseStmt *) parsetree)->options)
			if (strcmp(((DefElem *) lfirst(lc))->defname, "tablespace") == 0)
				dbname = ((AlterDatabaseStmt *) parsetree)->dbname;
	}
	else if (IsA(parsetree, CreatedbStmt))
	{
		foreach(lc, ((CreatedbStmt *) parsetree)->options)
		{
			DefElem    *def = (DefElem *) lfirst(lc);

			if (strcmp(def->defname, "template") == 0 && def->arg != NULL)
				dbname = defGetString(def);
		}
	}
	return dbname ? get_database_oid(dbname, true) : InvalidOid;
}

/*
 * WorkerProcessUtility makes the worker of a database leave before a command
 * that needs the database to itself waits for its users to go (five
 * seconds, then it fails): a worker in the middle of a long handler call
 * would not notice in time.  The launcher starts it again a few seconds
 * later.  Preloaded only.
 */
static void
WorkerProcessUtility(PlannedStmt *pstmt, const char *queryString,
					 bool readOnlyTree, ProcessUtilityContext context,
					 ParamListInfo params, QueryEnvironment *queryEnv,
					 DestReceiver *dest, QueryCompletion *qc)
{
	Oid			dboid = DatabaseToLeave(pstmt->utilityStmt);

	if (OidIsValid(dboid) && es_projection_shared != NULL)
	{
		EsDbSlot   *s;
		pid_t		pid = 0;

		SpinLockAcquire(&es_projection_shared->mutex);
		s = EsFindDbSlot(dboid);
		if (s != NULL && s->state == ES_DB_RUNNING)
		{
			pid = s->pid;
			s->state = ES_DB_AWAY;
			s->pid = 0;
			s->latch = NULL;
			s->retry_at = GetCurrentTimestamp() + ES_RETRY_AWAY_S * USECS_PER_SEC;
		}
		SpinLockRelease(&es_projection_shared->mutex);
		if (pid != 0)
			(void) kill(pid, SIGTERM);
	}
	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
							queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}

/*
 * EsInitWorkers defines the worker settings, and with es_pg preloaded
 * registers the launcher and the utility hook.  Called from _PG_init.
 */
void
EsInitWorkers(void)
{
	BackgroundWorker worker;

	DefineCustomIntVariable("es_pg.projection_naptime",
							"Time the projection worker sleeps when no async projection has work.",
							NULL,
							&es_projection_naptime,
							1000, 10, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("es_pg.projection_workers",
							 "Runs background workers that apply async projections (needs es_pg in shared_preload_libraries).",
							 NULL,
							 &es_projection_workers,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = WorkerProcessUtility;

	/*
	 * No workers while pg_upgrade runs the server (binary upgrade): they
	 * would connect to databases it is dropping and creating.
	 */
	if (IsBinaryUpgrade)
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "es_pg");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "es_projection_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "es_pg projection launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "es_pg projection launcher");
	RegisterBackgroundWorker(&worker);
}

/*
 * FillWorker describes a database worker.
 */
static void
FillWorker(BackgroundWorker *worker, Oid dboid)
{
	memset(worker, 0, sizeof(BackgroundWorker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker->bgw_library_name, BGW_MAXLEN, "es_pg");
	snprintf(worker->bgw_function_name, BGW_MAXLEN, "es_projection_worker_main");
	snprintf(worker->bgw_name, BGW_MAXLEN, "es_pg projection worker for database %u",
			 dboid);
	snprintf(worker->bgw_type, BGW_MAXLEN, "es_pg projection worker");
	worker->bgw_main_arg = ObjectIdGetDatum(dboid);
}

/*
 * StartWorkerNow registers a database worker directly, for installs
 * without the launcher.  Returns false (with a warning if "report") when
 * no background worker slot is free.
 */
static bool
StartWorkerNow(Oid dboid, bool report)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	FillWorker(&worker, dboid);
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		if (report)
			ereport(WARNING,
					(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
					 errmsg("could not start an es_pg projection worker"),
					 errhint("Raise max_worker_processes.")));
		return false;
	}
	return true;
}

/*
 * WorkerLockTag names the advisory lock a database's worker holds.
 */
static void
WorkerLockTag(LOCKTAG *tag, Oid dboid)
{
	SET_LOCKTAG_ADVISORY(*tag, dboid, 0, 0, ES_LOCKTAG_WORKER);
}

/*
 * es_start_projection_worker makes sure a worker applies this database's
 * async projections: with the launcher running it asks the launcher (at
 * commit), otherwise it starts one now.  Returns true when a worker runs or
 * has been asked for.
 */
PG_FUNCTION_INFO_V1(es_start_projection_worker);
Datum
es_start_projection_worker(PG_FUNCTION_ARGS)
{
	LOCKTAG		tag;
	bool		launcher = false;

	(void) EsGetCatalogForFunction(fcinfo);
	if (es_projection_shared != NULL)
	{
		SpinLockAcquire(&es_projection_shared->mutex);
		launcher = es_projection_shared->launcher_pid != 0;
		SpinLockRelease(&es_projection_shared->mutex);
	}
	if (launcher && es_projection_workers)
	{
		EsRequestWorkerAtCommit();
		PG_RETURN_BOOL(true);
	}

	/* is a worker running already? */
	WorkerLockTag(&tag, MyDatabaseId);
	if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		PG_RETURN_BOOL(true);
	LockRelease(&tag, ExclusiveLock, false);
	PG_RETURN_BOOL(StartWorkerNow(MyDatabaseId, true));
}

/*
 * ScanDatabases adds a slot for every database that accepts connections
 * and is not a template, and frees the slots of databases that are gone.
 * Runs in the launcher, which is connected to no database.
 */
static void
ScanDatabases(void)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;
	Oid			found[ES_MAX_DATABASES * 4];
	int			nfound = 0;
	bool		complete = true;
	int			i;
	int			j;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tuple);

		if (!db->datallowconn || db->datistemplate)
			continue;
		if (nfound < lengthof(found))
			found[nfound++] = db->oid;
		else
			complete = false;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();

	SpinLockAcquire(&es_projection_shared->mutex);
	for (i = 0; i < nfound; i++)
		if (EsFindDbSlot(found[i]) == NULL)
			(void) EsNewDbSlot(found[i]);
	if (complete)
	{
		for (i = 0; i < ES_MAX_DATABASES; i++)
		{
			EsDbSlot   *s = &es_projection_shared->dbs[i];
			bool		exists = false;

			if (s->state == ES_DB_FREE || s->state == ES_DB_RUNNING ||
				s->state == ES_DB_STARTING)
				continue;
			for (j = 0; j < nfound && !exists; j++)
				exists = (found[j] == s->dboid);
			if (!exists)
				s->state = ES_DB_FREE;
		}
	}
	SpinLockRelease(&es_projection_shared->mutex);
}

/*
 * StartWorkers starts the workers that are due and notices the ones that
 * died before they were running.
 */
static void
StartWorkers(BackgroundWorkerHandle **handles, TimestampTz now)
{
	int			i;
	bool		rescan = false;

	/*
	 * A worker that left for a database-wide command is started again only
	 * if its database still exists: look at pg_database first.
	 */
	SpinLockAcquire(&es_projection_shared->mutex);
	for (i = 0; i < ES_MAX_DATABASES; i++)
		if (es_projection_shared->dbs[i].state == ES_DB_AWAY &&
			now >= es_projection_shared->dbs[i].retry_at)
			rescan = true;
	SpinLockRelease(&es_projection_shared->mutex);
	if (rescan)
		ScanDatabases();

	for (i = 0; i < ES_MAX_DATABASES; i++)
	{
		EsDbSlot   *s = &es_projection_shared->dbs[i];
		Oid			dboid = InvalidOid;
		BackgroundWorker worker;
		pid_t		pid;

		SpinLockAcquire(&es_projection_shared->mutex);
		if (s->state == ES_DB_STARTING &&
			(handles[i] != NULL ?
			 GetBackgroundWorkerPid(handles[i], &pid) == BGWH_STOPPED :
			 now > s->started_at + ES_STARTING_LIMIT_S * USECS_PER_SEC))
		{
			/* died before it got going, e.g. its database was dropped */
			s->state = ES_DB_FAILED;
			s->retry_at = now + ES_RETRY_FAILED_S * USECS_PER_SEC;
		}
		if ((s->state == ES_DB_WANTED || s->state == ES_DB_AWAY ||
			 s->state == ES_DB_FAILED) && now >= s->retry_at)
		{
			dboid = s->dboid;
			s->state = ES_DB_STARTING;
			s->started_at = now;
		}
		SpinLockRelease(&es_projection_shared->mutex);
		if (!OidIsValid(dboid))
			continue;

		if (handles[i] != NULL)
		{
			pfree(handles[i]);
			handles[i] = NULL;
		}
		FillWorker(&worker, dboid);
		worker.bgw_notify_pid = MyProcPid;
		if (!RegisterDynamicBackgroundWorker(&worker, &handles[i]))
		{
			handles[i] = NULL;
			ereport(LOG,
					(errmsg("es_pg could not start a projection worker for database %u",
							dboid),
					 errhint("Raise max_worker_processes.")));
			SpinLockAcquire(&es_projection_shared->mutex);
			if (s->state == ES_DB_STARTING && s->dboid == dboid)
			{
				s->state = ES_DB_FAILED;
				s->retry_at = now + ES_RETRY_FAILED_S * USECS_PER_SEC;
			}
			SpinLockRelease(&es_projection_shared->mutex);
		}
	}
}

/*
 * es_projection_launcher_main is the launcher's entry point.
 */
void
es_projection_launcher_main(Datum main_arg)
{
	BackgroundWorkerHandle *handles[ES_MAX_DATABASES];
	TimestampTz next_scan = 0;
	int			i;

	memset(handles, 0, sizeof(handles));
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	SpinLockAcquire(&es_projection_shared->mutex);
	es_projection_shared->launcher_latch = MyLatch;
	es_projection_shared->launcher_pid = MyProcPid;
	/* after a launcher restart, workers it started may still be starting */
	for (i = 0; i < ES_MAX_DATABASES; i++)
		if (es_projection_shared->dbs[i].state == ES_DB_STARTING)
			es_projection_shared->dbs[i].started_at = GetCurrentTimestamp();
	SpinLockRelease(&es_projection_shared->mutex);

	for (;;)
	{
		TimestampTz now;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (es_projection_workers)
		{
			now = GetCurrentTimestamp();
			if (now >= next_scan)
			{
				ScanDatabases();
				next_scan = now + ES_SCAN_INTERVAL_S * USECS_PER_SEC;
			}
			StartWorkers(handles, now);
		}
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* the worker's slot, for the exit callback */
static EsDbSlot *my_slot = NULL;

/*
 * SetMyState records the worker's state and, when it leaves, when the
 * launcher may start it again.
 */
static void
SetMyState(EsDbState state, int retry_s)
{
	Latch	   *launcher = NULL;

	if (my_slot == NULL)
		return;
	SpinLockAcquire(&es_projection_shared->mutex);
	if (my_slot->dboid == MyDatabaseId && my_slot->state != ES_DB_FREE)
	{
		my_slot->state = state;
		if (state == ES_DB_RUNNING)
		{
			my_slot->pid = MyProcPid;
			my_slot->latch = MyLatch;
		}
		else
		{
			my_slot->pid = 0;
			my_slot->latch = NULL;
			my_slot->retry_at = GetCurrentTimestamp() +
				(int64) retry_s * USECS_PER_SEC;
			launcher = es_projection_shared->launcher_latch;
		}
	}
	SpinLockRelease(&es_projection_shared->mutex);
	if (launcher != NULL)
		SetLatch(launcher);
}

/*
 * WorkerExit tells the launcher that the worker is gone.  A worker that
 * leaves on purpose has set its state already; anything else is a failure.
 */
static void
WorkerExit(int code, Datum arg)
{
	bool		running;

	if (my_slot == NULL)
		return;
	SpinLockAcquire(&es_projection_shared->mutex);
	running = my_slot->state == ES_DB_RUNNING && my_slot->pid == MyProcPid;
	SpinLockRelease(&es_projection_shared->mutex);
	if (running)
		SetMyState(ES_DB_FAILED, ES_RETRY_FAILED_S);
}

/*
 * DatabaseClaimed says whether a command waits to have the database to
 * itself (DROP DATABASE, ALTER DATABASE, CREATE DATABASE ... TEMPLATE):
 * they hold a lock on it that conflicts with the one connections take.
 */
static bool
DatabaseClaimed(void)
{
	LOCKTAG		tag;
	LockAcquireResult r;

	SET_LOCKTAG_OBJECT(tag, InvalidOid, DatabaseRelationId, MyDatabaseId, 0);
	r = LockAcquire(&tag, RowExclusiveLock, false, true);
	if (r == LOCKACQUIRE_NOT_AVAIL)
		return true;
	LockRelease(&tag, RowExclusiveLock, false);
	return false;
}

/*
 * ApplyRound gives every pending async projection one batch, each in its
 * own transaction.
 */
static RoundResult
ApplyRound(MemoryContext round_cxt)
{
	const EsCatalog *cat;
	List	   *names;
	ListCell   *lc;
	bool		more = false;
	MemoryContext oldcxt;

	MemoryContextReset(round_cxt);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (DatabaseClaimed())
	{
		CommitTransactionCommand();
		return ROUND_CLAIMED;
	}
	PushActiveSnapshot(GetTransactionSnapshot());
	cat = EsGetCatalogForExtension(true);
	if (cat == NULL)
	{
		PopActiveSnapshot();
		CommitTransactionCommand();
		return ROUND_NOT_INSTALLED;
	}
	oldcxt = MemoryContextSwitchTo(round_cxt);
	names = EsPendingAsyncProjections(cat);
	MemoryContextSwitchTo(oldcxt);
	PopActiveSnapshot();
	CommitTransactionCommand();

	foreach(lc, names)
	{
		const char *name = (const char *) lfirst(lc);
		bool		batch_more = false;

		CHECK_FOR_INTERRUPTS();
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, name);
		cat = EsGetCatalogForExtension(true);
		if (cat != NULL)
			(void) EsApplyProjectionBatch(cat, name, true, LOG, &batch_more);
		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_activity(STATE_IDLE, NULL);
		if (cat == NULL)
			return ROUND_NOT_INSTALLED;
		more = more || batch_more;
	}
	return more ? ROUND_MORE : ROUND_IDLE;
}

/*
 * ApplyRoundGuarded runs a round and survives its errors: handler errors
 * are recorded by the apply code, but a batch can also end in an error of
 * its own (canceled by es_drop_projection or es_rebuild_projection taking
 * the projection over, a deadlock, a lost lock).  The error is logged, the
 * transaction rolled back, and the worker goes on after a pause.
 */
static RoundResult
ApplyRoundGuarded(MemoryContext round_cxt)
{
	volatile RoundResult r = ROUND_IDLE;

	PG_TRY();
	{
		r = ApplyRound(round_cxt);
	}
	PG_CATCH();
	{
		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(TopMemoryContext);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
		RESUME_INTERRUPTS();
		r = ROUND_IDLE;
	}
	PG_END_TRY();
	return r;
}

/*
 * es_projection_worker_main is the entry point of a database's worker.
 */
void
es_projection_worker_main(Datum main_arg)
{
	Oid			dboid = DatumGetObjectId(main_arg);
	MemoryContext round_cxt;
	LOCKTAG		tag;
	bool		installed;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);

	if (es_projection_shared != NULL)
	{
		SpinLockAcquire(&es_projection_shared->mutex);
		my_slot = EsFindDbSlot(dboid);
		SpinLockRelease(&es_projection_shared->mutex);
		before_shmem_exit(WorkerExit, (Datum) 0);
	}

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	installed = OidIsValid(get_extension_oid("es_pg", true));
	CommitTransactionCommand();
	if (!installed)
	{
		SetMyState(ES_DB_ABSENT, 0);
		proc_exit(0);
	}

	/* one worker per database, with or without the launcher */
	WorkerLockTag(&tag, dboid);
	if (LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
	{
		SetMyState(ES_DB_AWAY, ES_RETRY_FAILED_S);
		proc_exit(0);
	}
	SetMyState(ES_DB_RUNNING, 0);
	ereport(DEBUG1,
			(errmsg("es_pg projection worker started for database %u", dboid)));

	round_cxt = AllocSetContextCreate(TopMemoryContext,
									  "es_pg projection worker",
									  ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		RoundResult r;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!es_projection_workers)
		{
			SetMyState(ES_DB_WANTED, ES_RETRY_FAILED_S);
			proc_exit(0);
		}

		r = ApplyRoundGuarded(round_cxt);
		if (r == ROUND_NOT_INSTALLED)
		{
			SetMyState(ES_DB_ABSENT, 0);
			proc_exit(0);
		}
		if (r == ROUND_CLAIMED)
		{
			SetMyState(ES_DB_AWAY, ES_RETRY_AWAY_S);
			proc_exit(0);
		}
		if (r == ROUND_IDLE)
		{
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 es_projection_naptime, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
}
