/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  Background workers that apply async projections.
 *
 With es_pg in shared_preload_libraries, a launcher worker starts one
 * worker per database that has async projections.  It cannot look into a
 * database itself (a process connects to one database, once), so it learns
 * about them in two ways: backends post requests at commit when
 * es_projections changes (es_create_projection, a restore's COPY) or when
 * an append concerns async projections; and, once per database and
 * launcher lifetime (at start, and for each new database), it starts a
 * worker there that looks and leaves at once when the database has no
 * async projections, or no es_pg: a few of those at a time, so that they
 * never crowd out the workers that are needed.  A database without async
 * projections keeps no worker and no slot.
 *
 * A database worker applies the pending events of every async projection,
 * a batch per projection per transaction, then sleeps
 * es_pg.projection_naptime or until an append that concerns async
 * projections commits and sets its latch.  It leaves when the last async
 * projection is dropped.
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
 When no worker can start (every background worker slot is taken), the
 * launcher logs it once per database and tries again every ten seconds;
 * es_projection_worker() and es_projection_status give the reason, and
 * es_start_projection_worker() returns false with a warning that names the
 * setting to raise.
 *
 * Without preloading there is no shared memory: a backend registers the
 * worker itself, as a dynamic background worker, when a transaction that
 * changed es_projections or appended for async projections commits and
 * finds none (projshmem.c), and es_start_projection_worker starts one
 * directly.  An advisory lock keeps it to one worker per database either
 * way.  The workers call the apply code (projapply.c), the projection list
 * (projcache.c) and the shared memory, and nothing else of the projection
 * subsystem; nothing calls back into this file.
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
#include "access/xlog.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "funcapi.h"
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

/* seconds between scans of pg_database, and before restarting a worker */
#define ES_SCAN_INTERVAL_S	10
#define ES_RETRY_AWAY_S		3
#define ES_RETRY_FAILED_S	10
#define ES_STARTING_LIMIT_S 60

/* how many databases the launcher looks into at once */
#define ES_MAX_PROBES		2

/* how long a new worker waits for one that is leaving (preloaded) */
#define ES_LOCK_WAIT_MS		2000

/* how a round of ApplyRound went */
typedef enum RoundResult
{
	ROUND_IDLE,					/* nothing more to do now */
	ROUND_MORE,					/* some batch was full: more work now */
	ROUND_NOT_INSTALLED,		/* es_pg is not installed here */
	ROUND_NO_ASYNC,				/* no async projection here */
	ROUND_CLAIMED				/* a command claims the database */
} RoundResult;

/* a database the launcher has seen in pg_database */
typedef struct SeenDatabase
{
	Oid			dboid;
	bool		probed;			/* looked into, or asked for by a backend */
	bool		present;		/* in the last scan */
	NameData	name;
} SeenDatabase;

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
 * WorkerLockTag names the advisory lock a database's worker holds.
 */
static void
WorkerLockTag(LOCKTAG *tag, Oid dboid)
{
	SET_LOCKTAG_ADVISORY(*tag, dboid, 0, 0, ES_LOCKTAG_WORKER);
}

/*
 * WorkerHoldsLock says whether some worker holds this database's worker
 * lock.
 */
static bool
WorkerHoldsLock(Oid dboid)
{
	LOCKTAG		tag;

	WorkerLockTag(&tag, dboid);
	if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		return true;
	LockRelease(&tag, ExclusiveLock, false);
	return false;
}

/*
 * HasAsyncProjections says whether this database's install has async
 * projections.
 */
static bool
HasAsyncProjections(const EsCatalog *cat)
{
	const EsProjectionCatalog *pc = EsGetProjectionCatalog(cat, true);

	return pc != NULL && EsGetProjectionList(pc)->nasync > 0;
}

/*
 * NoWorkerWarning reports that no worker could be started, naming what to
 * change.
 */
static void
NoWorkerWarning(EsDbReason reason)
{
	if (reason == ES_REASON_NO_BGWORKER_SLOT)
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start an es_pg projection worker for database \"%s\"",
						EsMyDatabaseName()),
				 errdetail("All %d background worker slots are in use.",
						   max_worker_processes),
				 errhint("Raise max_worker_processes (needs a restart); until then es_apply_projections() applies async projections.")));
	else
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the es_pg projection worker for database \"%s\" exited as it started",
						EsMyDatabaseName()),
				 errhint("See the server log.")));
}

/*
 * StartAndWait registers this database's worker and waits until the
 * postmaster has started it.  Returns false (with reason) when it could
 * not.
 */
static bool
StartAndWait(EsDbReason *reason)
{
	BackgroundWorkerHandle *handle;
	BgwHandleStatus status;
	pid_t		pid;

	if (!EsRegisterWorker(MyDatabaseId, EsMyDatabaseName(), true, &handle))
	{
		*reason = ES_REASON_NO_BGWORKER_SLOT;
		return false;
	}
	status = WaitForBackgroundWorkerStartup(handle, &pid);
	pfree(handle);
	if (status == BGWH_STARTED)
		return true;
	*reason = ES_REASON_DIED_STARTING;
	return false;
}

/*
 * es_start_projection_worker makes sure a worker applies this database's
 * async projections: it starts one now unless one runs or is starting
 * (with es_pg preloaded the launcher learns of it through the database's
 * slot).  Returns true when a worker runs or has started; false, with a
 * warning that says why and what to change, when none can; false, with a
 * notice, when the database has no async projections to apply.
 */
PG_FUNCTION_INFO_V1(es_start_projection_worker);
Datum
es_start_projection_worker(PG_FUNCTION_ARGS)
{
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	EsDbSlot   *s = NULL;
	EsDbReason	reason = ES_REASON_NONE;
	bool		started;

	if (!es_projection_workers)
	{
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("es_pg.projection_workers is off"),
				 errhint("Set es_pg.projection_workers = on and reload the configuration; until then es_apply_projections() applies async projections.")));
		PG_RETURN_BOOL(false);
	}
	if (RecoveryInProgress() || IsBinaryUpgrade)
	{
		ereport(WARNING,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("no es_pg projection worker runs during recovery"),
				 errhint("Async projections are applied on the primary; a standby gets their read models by replication.")));
		PG_RETURN_BOOL(false);
	}
	if (!HasAsyncProjections(cat))
	{
		ereport(NOTICE,
				(errmsg("database \"%s\" has no async projections: it needs no projection worker",
						EsMyDatabaseName())));
		PG_RETURN_BOOL(false);
	}

	if (es_projection_shared != NULL)
	{
		SpinLockAcquire(&es_projection_shared->mutex);
		s = EsFindDbSlot(MyDatabaseId);
		if (s != NULL && (s->state == ES_DB_RUNNING ||
						  s->state == ES_DB_STARTING))
		{
			SpinLockRelease(&es_projection_shared->mutex);
			PG_RETURN_BOOL(true);
		}
		if (s == NULL)
			s = EsNewDbSlot(MyDatabaseId, EsMyDatabaseName());
		if (s != NULL)
		{
			s->state = ES_DB_STARTING;
			s->probe = false;
			s->started_at = GetCurrentTimestamp();
		}
		SpinLockRelease(&es_projection_shared->mutex);
	}
	else if (WorkerHoldsLock(MyDatabaseId) ||
			 EsFindWorkerPid(MyDatabaseId) != 0)
		PG_RETURN_BOOL(true);

	started = StartAndWait(&reason);
	if (!started && s != NULL)
	{
		TimestampTz now = GetCurrentTimestamp();

		SpinLockAcquire(&es_projection_shared->mutex);
		if (s->dboid == MyDatabaseId && s->state == ES_DB_STARTING)
		{
			s->state = ES_DB_FAILED;
			s->reason = reason;
			if (s->failures++ == 0)
				s->failed_at = now;
			s->retry_at = now + ES_RETRY_FAILED_S * USECS_PER_SEC;
		}
		SpinLockRelease(&es_projection_shared->mutex);
	}
	if (!started)
		NoWorkerWarning(reason);
	PG_RETURN_BOOL(started);
}

/*
 * es_projection_worker says whether a worker applies this database's async
 * projections: its state, its pid while it runs, and why there is none.
 */
PG_FUNCTION_INFO_V1(es_projection_worker);
Datum
es_projection_worker(PG_FUNCTION_ARGS)
{
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, true, true};
	const char *state = NULL;
	const char *reason = NULL;
	pid_t		pid = 0;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	if (es_projection_shared != NULL)
	{
		EsDbSlot   *s;

		SpinLockAcquire(&es_projection_shared->mutex);
		s = EsFindDbSlot(MyDatabaseId);
		if (s != NULL)
		{
			switch (s->state)
			{
				case ES_DB_RUNNING:
					state = "running";
					pid = s->pid;
					break;
				case ES_DB_STARTING:
					state = "starting";
					break;
				case ES_DB_WANTED:
					state = "waiting";
					reason = EsDbReasonText(s->reason);
					break;
				case ES_DB_AWAY:
					state = "away";
					reason = "stepped aside for a database-wide command; back in a few seconds";
					break;
				case ES_DB_FAILED:
					state = "failed";
					reason = EsDbReasonText(s->reason);
					break;
				case ES_DB_FREE:
					break;
			}
		}
		SpinLockRelease(&es_projection_shared->mutex);
	}
	if (state == NULL || strcmp(state, "running") != 0)
	{
		pid = EsFindWorkerPid(MyDatabaseId);
		if (pid != 0)
		{
			state = "running";
			reason = NULL;
		}
	}
	if (es_projection_shared != NULL && es_projection_workers && pid == 0 &&
		(state == NULL || strcmp(state, "starting") != 0) &&
		!IsBinaryUpgrade && HasAsyncProjections(cat))
	{
		bool		launcher;

		SpinLockAcquire(&es_projection_shared->mutex);
		launcher = es_projection_shared->launcher_pid != 0;
		SpinLockRelease(&es_projection_shared->mutex);
		if (!launcher)
		{
			state = "failed";
			reason = "the es_pg projection launcher is not running: raise max_worker_processes (needs a restart)";
		}
	}
	if (state == NULL && es_projection_workers && EsWorkerAskedAtCommit())
		state = "requested";	/* when this transaction commits */
	if (state == NULL || (!es_projection_workers && pid == 0))
	{
		bool		async = HasAsyncProjections(cat);

		pid = 0;
		if (!es_projection_workers)
		{
			state = "disabled";
			reason = EsDbReasonText(ES_REASON_DISABLED);
		}
		else if (!async)
		{
			state = "not needed";
			reason = "this database has no async projections";
		}
		else if (RecoveryInProgress())
		{
			state = "not running";
			reason = "the server is in recovery";
		}
		else if (es_projection_shared == NULL)
		{
			state = "not running";
			reason = "es_pg is not preloaded: the next append for an async projection, or es_start_projection_worker(), starts one";
		}
		else
		{
			state = "not running";
			reason = "none asked for since the server started: the next append for an async projection, or es_start_projection_worker(), starts one";
		}
	}
	values[0] = CStringGetTextDatum(state);
	if (pid != 0)
	{
		values[1] = Int32GetDatum((int32) pid);
		nulls[1] = false;
	}
	if (reason != NULL)
	{
		values[2] = CStringGetTextDatum(reason);
		nulls[2] = false;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * FindSeen returns the launcher's entry for a database, or NULL.
 */
static SeenDatabase *
FindSeen(List *seen, Oid dboid)
{
	ListCell   *lc;

	foreach(lc, seen)
	{
		SeenDatabase *d = (SeenDatabase *) lfirst(lc);

		if (d->dboid == dboid)
			return d;
	}
	return NULL;
}

/*
 * ScanDatabases brings the launcher's list of databases up to date from
 * pg_database (those that accept connections and are not templates), and
 * frees the slots of databases that are gone.  Runs in the launcher, which
 * is connected to no database.  The list lives in TopMemoryContext.
 */
static List *
ScanDatabases(List *seen)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;
	ListCell   *lc;
	List	   *kept = NIL;
	MemoryContext oldcxt;
	int			i;

	foreach(lc, seen)
		((SeenDatabase *) lfirst(lc))->present = false;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tuple);
		SeenDatabase *d;

		if (!db->datallowconn || db->datistemplate)
			continue;
		d = FindSeen(seen, db->oid);
		if (d == NULL)
		{
			oldcxt = MemoryContextSwitchTo(TopMemoryContext);
			d = palloc0(sizeof(SeenDatabase));
			d->dboid = db->oid;
			seen = lappend(seen, d);
			MemoryContextSwitchTo(oldcxt);
		}
		d->present = true;
		d->name = db->datname;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();

	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	foreach(lc, seen)
	{
		SeenDatabase *d = (SeenDatabase *) lfirst(lc);

		if (d->present)
			kept = lappend(kept, d);
		else
			pfree(d);
	}
	list_free(seen);
	MemoryContextSwitchTo(oldcxt);

	SpinLockAcquire(&es_projection_shared->mutex);
	for (i = 0; i < es_projection_shared->ndbs; i++)
	{
		EsDbSlot   *s = &es_projection_shared->dbs[i];
		SeenDatabase *d;

		if (s->state == ES_DB_FREE)
			continue;
		d = FindSeen(kept, s->dboid);
		if (d != NULL)
		{
			/* a database a backend asked for needs no look */
			d->probed = true;
			if (NameStr(s->dbname)[0] == '\0')
				s->dbname = d->name;
		}
		else if (s->state != ES_DB_RUNNING && s->state != ES_DB_STARTING)
			s->state = ES_DB_FREE;
	}
	SpinLockRelease(&es_projection_shared->mutex);
	return kept;
}

/*
 * StartProbes gives slots to databases the launcher has not looked into
 * yet, a few at a time: their worker looks whether it is needed and
 * leaves at once if not.
 */
static void
StartProbes(List *seen)
{
	ListCell   *lc;
	int			active = 0;
	int			i;

	SpinLockAcquire(&es_projection_shared->mutex);
	for (i = 0; i < es_projection_shared->ndbs; i++)
	{
		EsDbSlot   *s = &es_projection_shared->dbs[i];

		if (s->probe && s->state != ES_DB_FREE && s->state != ES_DB_RUNNING)
			active++;
	}
	foreach(lc, seen)
	{
		SeenDatabase *d = (SeenDatabase *) lfirst(lc);
		EsDbSlot   *s;

		if (active >= ES_MAX_PROBES)
			break;
		if (d->probed)
			continue;
		d->probed = true;
		if (EsFindDbSlot(d->dboid) != NULL)
			continue;
		s = EsNewDbSlot(d->dboid, NameStr(d->name));
		if (s == NULL)
		{
			d->probed = false;	/* try again when a slot is free */
			break;
		}
		s->probe = true;
		active++;
	}
	SpinLockRelease(&es_projection_shared->mutex);
}

/*
 * StartWorkers starts the workers that are due and notices the ones that
 * died before they were running.  handles[i] is the launcher's handle of
 * the worker it started for slot i at time started[i].
 */
static void
StartWorkers(BackgroundWorkerHandle **handles, TimestampTz *started,
			 List **seen, TimestampTz now)
{
	int			i;
	bool		rescan = false;

	/*
	 * A worker that left for a database-wide command is started again only
	 * if its database still exists: look at pg_database first.
	 */
	SpinLockAcquire(&es_projection_shared->mutex);
	for (i = 0; i < es_projection_shared->ndbs; i++)
		if (es_projection_shared->dbs[i].state == ES_DB_AWAY &&
			now >= es_projection_shared->dbs[i].retry_at)
			rescan = true;
	SpinLockRelease(&es_projection_shared->mutex);
	if (rescan)
		*seen = ScanDatabases(*seen);

	for (i = 0; i < es_projection_shared->ndbs; i++)
	{
		EsDbSlot   *s = &es_projection_shared->dbs[i];
		Oid			dboid = InvalidOid;
		NameData	dbname;
		bool		mine;
		bool		stopped;
		bool		report = false;
		pid_t		pid;

		/* no LWLock (GetBackgroundWorkerPid takes one) under the spinlock */
		stopped = handles[i] != NULL &&
			GetBackgroundWorkerPid(handles[i], &pid) == BGWH_STOPPED;
		SpinLockAcquire(&es_projection_shared->mutex);
		mine = handles[i] != NULL && started[i] == s->started_at;
		if (s->state == ES_DB_STARTING &&
			(mine ? stopped :
			 now > s->started_at + ES_STARTING_LIMIT_S * USECS_PER_SEC))
		{
			/* died before it got going, e.g. its database was dropped */
			s->state = ES_DB_FAILED;
			s->reason = ES_REASON_DIED_STARTING;
			s->retry_at = now + ES_RETRY_FAILED_S * USECS_PER_SEC;
		}
		if ((s->state == ES_DB_WANTED || s->state == ES_DB_AWAY ||
			 s->state == ES_DB_FAILED) && now >= s->retry_at)
		{
			dboid = s->dboid;
			dbname = s->dbname;
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
		started[i] = now;
		if (EsRegisterWorker(dboid, NameStr(dbname), true, &handles[i]))
			continue;

		handles[i] = NULL;
		SpinLockAcquire(&es_projection_shared->mutex);
		if (s->state == ES_DB_STARTING && s->dboid == dboid)
		{
			s->state = ES_DB_FAILED;
			s->reason = ES_REASON_NO_BGWORKER_SLOT;
			/* a look into a database that may need no worker is not logged */
			if (!s->probe)
				report = s->failures++ == 0;
			if (report)
				s->failed_at = now;
			s->retry_at = now + ES_RETRY_FAILED_S * USECS_PER_SEC;
		}
		SpinLockRelease(&es_projection_shared->mutex);

		/* once per database, not at every try */
		if (report)
			ereport(LOG,
					(errmsg("es_pg could not start a projection worker for database \"%s\"",
							NameStr(dbname)),
					 errdetail("All %d background worker slots are in use; es_pg tries again every %d seconds and says so here once.",
							   max_worker_processes, ES_RETRY_FAILED_S),
					 errhint("Raise max_worker_processes (needs a restart).")));
	}
}

/*
 * LauncherExit records that the launcher is gone.
 */
static void
LauncherExit(int code, Datum arg)
{
	SpinLockAcquire(&es_projection_shared->mutex);
	if (es_projection_shared->launcher_pid == MyProcPid)
	{
		es_projection_shared->launcher_pid = 0;
		es_projection_shared->launcher_latch = NULL;
	}
	SpinLockRelease(&es_projection_shared->mutex);
}

/*
 * es_projection_launcher_main is the launcher's entry point.
 */
void
es_projection_launcher_main(Datum main_arg)
{
	BackgroundWorkerHandle **handles;
	TimestampTz *started;
	List	   *seen = NIL;
	TimestampTz next_scan = 0;
	int			i;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	handles = MemoryContextAllocZero(TopMemoryContext,
									 es_projection_shared->ndbs * sizeof(BackgroundWorkerHandle *));
	started = MemoryContextAllocZero(TopMemoryContext,
									 es_projection_shared->ndbs * sizeof(TimestampTz));

	before_shmem_exit(LauncherExit, (Datum) 0);
	SpinLockAcquire(&es_projection_shared->mutex);
	es_projection_shared->launcher_latch = MyLatch;
	es_projection_shared->launcher_pid = MyProcPid;
	/* after a launcher restart, workers it started may still be starting */
	for (i = 0; i < es_projection_shared->ndbs; i++)
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
				seen = ScanDatabases(seen);
				next_scan = now + ES_SCAN_INTERVAL_S * USECS_PER_SEC;
			}
			StartProbes(seen);
			StartWorkers(handles, started, &seen, now);
		}
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 es_projection_workers ? 200L : 1000L,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* the worker's slot, for the exit callback */
static EsDbSlot *my_slot = NULL;

/*
 * OtherWorkerRuns says whether the slot belongs to another worker of the
 * database, running (one that lost the race for the worker lock leaves it
 * alone).  Caller holds the mutex.
 */
static bool
OtherWorkerRuns(void)
{
	return my_slot->state == ES_DB_RUNNING && my_slot->pid != 0 &&
		my_slot->pid != MyProcPid;
}

/*
 * SetMyState records the worker's state and, when it leaves, why and when
 * the launcher may start it again.
 */
static void
SetMyState(EsDbState state, EsDbReason reason, int retry_s)
{
	Latch	   *launcher = NULL;
	int			failures = 0;

	if (my_slot == NULL)
		return;
	SpinLockAcquire(&es_projection_shared->mutex);
	if (my_slot->dboid == MyDatabaseId && my_slot->state != ES_DB_FREE &&
		!OtherWorkerRuns())
	{
		my_slot->state = state;
		my_slot->reason = reason;
		if (state == ES_DB_RUNNING)
		{
			my_slot->pid = MyProcPid;
			my_slot->latch = MyLatch;
			my_slot->probe = false;
			failures = my_slot->failures;
			my_slot->failures = 0;
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
	if (failures > 0)
		ereport(LOG,
				(errmsg("es_pg projection worker started for database \"%s\" after %d failed attempts",
						EsMyDatabaseName(), failures)));
}

/*
 * LeaveUnneeded gives up the slot of a database that needs no worker (no
 * es_pg, or no async projection), unless a backend asked for a worker
 * since the last look: then the launcher starts one again at once.
 */
static void
LeaveUnneeded(void)
{
	Latch	   *launcher = NULL;

	if (my_slot == NULL)
		return;
	SpinLockAcquire(&es_projection_shared->mutex);
	if (my_slot->dboid == MyDatabaseId && my_slot->state != ES_DB_FREE &&
		!OtherWorkerRuns())
	{
		my_slot->pid = 0;
		my_slot->latch = NULL;
		if (my_slot->requested)
		{
			my_slot->state = ES_DB_WANTED;
			my_slot->reason = ES_REASON_NONE;
			my_slot->retry_at = 0;
			my_slot->probe = false;
			launcher = es_projection_shared->launcher_latch;
		}
		else
			my_slot->state = ES_DB_FREE;
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
		SetMyState(ES_DB_FAILED, ES_REASON_CRASHED, ES_RETRY_FAILED_S);
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

	/* a request from now on makes the worker look again before it leaves */
	if (my_slot != NULL)
	{
		SpinLockAcquire(&es_projection_shared->mutex);
		if (my_slot->dboid == MyDatabaseId)
			my_slot->requested = false;
		SpinLockRelease(&es_projection_shared->mutex);
	}

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
	if (!HasAsyncProjections(cat))
	{
		PopActiveSnapshot();
		CommitTransactionCommand();
		return ROUND_NO_ASYNC;
	}
	oldcxt = MemoryContextSwitchTo(round_cxt);
	names = EsPendingAsyncProjections(cat, es_projection_naptime);
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
 * TakeWorkerLock takes this database's worker lock.  False when another
 * worker keeps it.  With the shared memory it waits a little for a worker
 * that is leaving (the launcher may start a database's worker again while
 * the one that stepped aside is still on its way out); without it a
 * worker that leaves lets go of the lock before it looks a last time
 * (StillNeeded), so a newcomer that finds the lock held has a worker
 * beside it and leaves at once.
 */
static bool
TakeWorkerLock(Oid dboid)
{
	LOCKTAG		tag;
	int			waited;

	WorkerLockTag(&tag, dboid);
	for (waited = 0;; waited += 10)
	{
		if (LockAcquire(&tag, ExclusiveLock, true, true) != LOCKACQUIRE_NOT_AVAIL)
			return true;
		if (waited >= ES_LOCK_WAIT_MS || es_projection_shared == NULL)
			return false;
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * StillNeeded is the last look of a worker without the shared memory that
 * found no async projection: it lets go of the worker lock first, then
 * looks again with a new snapshot.  A projection created before that look
 * keeps it (if it gets the lock back); one created after it has its
 * creating backend start a new worker at commit, which finds the lock
 * free.  So no async projection is left without a worker.
 */
static bool
StillNeeded(Oid dboid)
{
	LOCKTAG		tag;
	const EsCatalog *cat;
	bool		needed;

	WorkerLockTag(&tag, dboid);
	LockRelease(&tag, ExclusiveLock, true);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	cat = EsGetCatalogForExtension(true);
	needed = cat != NULL && HasAsyncProjections(cat);
	PopActiveSnapshot();
	CommitTransactionCommand();
	return needed &&
		LockAcquire(&tag, ExclusiveLock, true, true) != LOCKACQUIRE_NOT_AVAIL;
}

/*
 * es_projection_worker_main is the entry point of a database's worker.
 */
void
es_projection_worker_main(Datum main_arg)
{
	Oid			dboid = DatumGetObjectId(main_arg);
	MemoryContext round_cxt;

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
	(void) EsMyDatabaseName();
	CommitTransactionCommand();

	/* one worker per database, with or without the launcher */
	if (!TakeWorkerLock(dboid))
	{
		SetMyState(ES_DB_AWAY, ES_REASON_NONE, ES_RETRY_FAILED_S);
		proc_exit(0);
	}
	SetMyState(ES_DB_RUNNING, ES_REASON_NONE, 0);

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
			SetMyState(ES_DB_WANTED, ES_REASON_DISABLED, ES_RETRY_FAILED_S);
			proc_exit(0);
		}

		r = ApplyRoundGuarded(round_cxt);
		if ((r == ROUND_NOT_INSTALLED || r == ROUND_NO_ASYNC) &&
			es_projection_shared == NULL && StillNeeded(dboid))
			continue;
		if (r == ROUND_NOT_INSTALLED || r == ROUND_NO_ASYNC)
		{
			/* nothing to apply here: the slot and the process go */
			ereport(DEBUG1,
					(errmsg("es_pg projection worker leaves database \"%s\": no async projections",
							EsMyDatabaseName())));
			LeaveUnneeded();
			proc_exit(0);
		}
		if (r == ROUND_CLAIMED)
		{
			SetMyState(ES_DB_AWAY, ES_REASON_NONE, ES_RETRY_AWAY_S);
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
