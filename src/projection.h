/*-------------------------------------------------------------------------
 *
 * projection.h
 *	  Declarations shared by the projection files.
 *
 * A projection is a handler function, handler(event es_events) RETURNS
 * void, registered in es_projections with the event types it wants.  It
 * runs in one of two modes:
 *
 *	inline	es_events' AFTER INSERT FOR EACH STATEMENT trigger
 *			(es_dispatch_inline) calls the handlers inside the appending
 *			transaction, once per es_append or es_append_batch call, with
 *			the rows that call inserted (EsCurrentAppend).  The read model
 *			commits with the events or not at all.
 *
 *	async	a subscription whose consumer is the handler (subscription.c):
 *			after commit, in global feed order (the walk of es_poll, which
 *			never skips an event that commits late), a batch at a time; the
 *			member of the projection's subscription is acknowledged in the
 *			transaction that changed the read model, so each event takes
 *			effect exactly once, and a failing event is retried and parked
 *			as es_nack would.  A background worker (worker.c) or
 *			es_apply_projections does the applying.  (0.1.0 installs not
 *			updated yet keep es_projection_checkpoints.)
 *
 * Handlers run with the rights of the role that created the projection and
 * with the search_path it had then (pg_temp last), as a SECURITY DEFINER
 * function would: an appender needs no privilege on read-model tables and
 * cannot steer the handler through its own search_path.
 *
 * Lock order: es_projections (ShareRowExclusiveLock, create and drop), then
 * the appliers' lock, then the member row of the projection's subscription
 * (FOR UPDATE; 0.1.0: its checkpoint row), then es_events
 * (ExclusiveLock, while an inline projection is created or rebuilt, so that
 * no append can commit between the replayed history and the projection
 * becoming visible).
 *
 * The files, each calling only the ones listed after it:
 *
 *	worker.c		the launcher and the database workers
 *	projadmin.c		es_create_projection and the other admin functions
 *	projwait.c		es_wait_for_projection, es_projection_progress
 *	projinline.c	es_dispatch_inline
 *	projapply.c		async apply: one batch, the appliers' lock
 *	projcall.c		calling handlers: the batch loop, identity, timeout
 *	projcache.c		definitions from es_projections, the inline list
 *	projshmem.c		shared memory, commit-time wake-ups, progress slots
 *
 * IDENTIFICATION
 *	  src/projection.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ES_PROJECTION_H
#define ES_PROJECTION_H

#include "datatype/timestamp.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "postmaster/bgworker.h"
#include "storage/spin.h"

#include "es_pg.h"

#define ES_PROJECTION_NAME_MAX	(NAMEDATALEN - 1)

/* one projection, as read from es_projections */
typedef struct EsProjection
{
	char	   *name;
	bool		async;
	Oid			handler;		/* InvalidOid: no longer resolves */
	char	   *handler_name;	/* schema-qualified signature */
	Oid			reset;			/* InvalidOid: none, or no longer resolves */
	char	   *reset_name;		/* NULL: none */
	bool		has_timeout;	/* false: es_pg.projection_handler_timeout */
	int			timeout_ms;		/* handler timeout of an async batch, 0: none */
	Oid			owner;
	char	   *search_path;
	int			ntypes;			/* 0: every event type */
	char	  **types;			/* sorted with strcmp */
	bool		prepared;		/* flinfo is set up and checked */
	FmgrInfo	flinfo;
} EsProjection;

/*
 * The projections of one install, inline and async, cached per backend for
 * es_dispatch_inline.
 */
typedef struct EsProjectionList
{
	MemoryContext cxt;
	Oid			namespace_oid;
	uint64		generation;		/* es_projections_generation when loaded */
	int			nprojections;
	int			ninline;
	int			nasync;
	EsProjection *projections;
} EsProjectionList;

/* events collected from the feed for one projection */
typedef struct EsEventBatch
{
	EsProjection *proj;
	MemoryContext cxt;
	int64		upto;			/* walk no further than this position */
	int64		last_position;	/* last event walked, matching or not */
	int64		walked;
	int			nevents;		/* events for the handler */
	int			maxevents;
	Datum	   *events;			/* es_events composite datums */
	int64	   *positions;
	int64	   *walk_index;		/* events walked before this one */
	Oid			namespace_oid;	/* of es_events, found on the first event */
	bool		upcast;			/* the install has upcasters */
} EsEventBatch;

/*
 * The columns every definition query returns first, in this order; see
 * EsProjectionFromRow.
 */
#define ES_PROJECTION_COLUMNS \
	"p.name, p.mode OPERATOR(pg_catalog.=) 'async', " \
	"p.handler, p.reset, p.event_types, " \
	"p.owner::pg_catalog.oid, p.search_path, p.handler_timeout_ms"
#define ES_PROJECTION_NCOLUMNS 8

/* the same from the es_projections of 0.1.0, whose functions are reg* */
#define ES_PROJECTION_COLUMNS_0_1 \
	"p.name, p.mode OPERATOR(pg_catalog.=) 'async', " \
	"(pg_catalog.pg_identify_object('pg_catalog.pg_proc'::pg_catalog.regclass," \
	" p.handler::pg_catalog.oid, 0)).identity," \
	" CASE WHEN p.reset IS NOT NULL THEN" \
	" (pg_catalog.pg_identify_object('pg_catalog.pg_proc'::pg_catalog.regclass," \
	" p.reset::pg_catalog.oid, 0)).identity END," \
	" p.event_types, p.owner::pg_catalog.oid, p.search_path," \
	" NULL::pg_catalog.int4"

/*
 * EsProjectionExecute runs one of the projection statements as the owner
 * of es_projections (identity.c): callers of the admin functions, and
 * appenders for inline dispatch, need no privilege on those tables.
 */
static inline int
EsProjectionExecute(const EsProjectionCatalog *pc, const EsStatement *stmt,
					Datum *values, const char *nulls, Snapshot snapshot)
{
	return EsExecute(stmt, pc->namespace_oid, pc->owner, values, nulls,
					 snapshot);
}

/* projcache.c */
extern void EsInitProjectionCache(void);
extern void EsProjectionFromRow(const EsProjectionCatalog *pc, EsProjection *p,
								int row, MemoryContext cxt);
extern Oid	EsResolveSignature(const EsProjectionCatalog *pc,
							   const char *signature);
extern bool EsKnownNoProjections(Oid namespace_oid);
extern EsProjectionList *EsGetProjectionList(const EsProjectionCatalog *pc);
extern bool EsProjectionIsAsync(const EsProjectionCatalog *pc,
								const char *name, Snapshot snapshot);
extern char *EsProjectionNameArgument(FunctionCallInfo fcinfo, int argno);
extern void EsUnknownProjection(const char *name);

/* projcall.c */
typedef Datum (*EsEventFetch) (void *arg, int i, int64 *position);

extern int	es_projection_handler_timeout;
extern void EsInitHandlerCalls(void);
extern bool EsProjectionWants(const EsProjection *p, text *event_type);
extern void EsCallHandlers(EsProjection *p, EsEventFetch fetch, void *arg,
						   int nevents, int64 prepare_position,
						   MemoryContext cxt, MemoryContext scratch);
extern bool EsCallHandlersGuarded(EsProjection *p, EsEventBatch *b, int limit,
								  int *fail, ErrorData **edata,
								  MemoryContext cxt);
extern void EsCallReset(EsProjection *p);
extern void EsInitBatch(EsEventBatch *b, EsProjection *p, MemoryContext cxt,
						int64 from, int64 upto);
extern bool EsCollectEvent(HeapTuple tuple, TupleDesc tupdesc, void *arg);
extern int64 EsReplayProjection(const EsCatalog *cat, EsProjection *p,
								int64 from, int64 upto, int batch_size,
								int progress_slot, int64 *last,
								MemoryContext cxt);

/* projapply.c */
extern int	es_projection_retries;
extern int	es_projection_batch_size;
extern void EsInitApply(void);
extern void EsTakeOverProjection(const char *name);
extern List *EsPendingAsyncProjections(const EsCatalog *cat,
									   int retry_delay_ms);
extern int64 EsApplyProjectionBatch(const EsCatalog *cat, const char *name,
									bool skip_locked, int elevel, bool *more);

/*
 * projshmem.c: what needs es_pg in shared_preload_libraries.  Database
 * slots go only to databases that have async projections (and, briefly, to
 * the ones the launcher looks into): at least ES_MIN_DB_SLOTS, and at least
 * max_worker_processes, since each running worker takes one of those.
 */
#define ES_MIN_DB_SLOTS		64
#define ES_MAX_REBUILDS		32

/* the state of a database's worker, as the launcher sees it */
typedef enum EsDbState
{
	ES_DB_FREE = 0,				/* slot unused */
	ES_DB_WANTED,				/* start a worker as soon as possible */
	ES_DB_STARTING,				/* registered, not running yet */
	ES_DB_RUNNING,
	ES_DB_AWAY,					/* left for a database-wide command */
	ES_DB_FAILED				/* could not start, or exited with an error */
} EsDbState;

/* why a database has no running worker (ES_DB_FAILED, ES_DB_WANTED) */
typedef enum EsDbReason
{
	ES_REASON_NONE = 0,
	ES_REASON_NO_BGWORKER_SLOT, /* max_worker_processes reached */
	ES_REASON_DIED_STARTING,	/* exited before it was running */
	ES_REASON_CRASHED,			/* exited with an error */
	ES_REASON_DISABLED			/* es_pg.projection_workers = off */
} EsDbReason;

typedef struct EsDbSlot
{
	Oid			dboid;
	EsDbState	state;
	EsDbReason	reason;
	bool		probe;			/* the launcher looks whether it needs one */
	bool		requested;		/* asked for since the worker's last look */
	int			failures;		/* failed starts in a row */
	pid_t		pid;
	Latch	   *latch;
	TimestampTz retry_at;		/* for WANTED, AWAY and FAILED */
	TimestampTz started_at;		/* for STARTING */
	TimestampTz failed_at;		/* the first failure in a row */
	NameData	dbname;			/* for log lines; may be empty */
} EsDbSlot;

typedef struct EsProgressSlot
{
	Oid			dboid;
	pid_t		pid;			/* 0: free */
	NameData	name;
	int64		total;
	pg_atomic_uint64 done;
	TimestampTz started_at;
} EsProgressSlot;

typedef struct EsProjectionShared
{
	slock_t		mutex;
	Latch	   *launcher_latch;
	pid_t		launcher_pid;
	ConditionVariable checkpoint_cv;	/* a checkpoint moved (committed) */
	EsProgressSlot progress[ES_MAX_REBUILDS];
	int			ndbs;
	EsDbSlot	dbs[FLEXIBLE_ARRAY_MEMBER];
} EsProjectionShared;

/* NULL when es_pg is not preloaded */
extern EsProjectionShared *es_projection_shared;
extern bool es_projection_workers;	/* es_pg.projection_workers */

extern void EsInitProjectionShmem(void);
extern EsDbSlot *EsFindDbSlot(Oid dboid);
extern EsDbSlot *EsNewDbSlot(Oid dboid, const char *dbname);
extern const char *EsDbReasonText(EsDbReason reason);
extern const char *EsMyDatabaseName(void);
extern pid_t EsFindWorkerPid(Oid dboid);
extern bool EsRegisterWorker(Oid dboid, const char *dbname, bool notify,
							 BackgroundWorkerHandle **handle);
extern void EsWakeWorkerAtCommit(void);
extern void EsRequestWorkerAtCommit(void);
extern bool EsWorkerAskedAtCommit(void);
extern void EsWakeWorkerNow(void);
extern void EsCheckpointAdvanced(void);
extern void EsWaitForCheckpoint(long timeout_ms, bool *prepared);
extern int	EsProgressStart(const char *name, int64 total);
extern void EsProgressUpdate(int slot, int64 done);
extern void EsProgressEnd(int slot);
extern int	EsProgressSnapshot(Oid dboid, char (*names)[NAMEDATALEN],
							   int *pids, int64 *done, int64 *total,
							   TimestampTz *started, int max);

/* projinline.c */
extern void EsInitInlineDispatch(void);

/* worker.c */
#define ES_WORKER_TYPE "es_pg projection worker"
extern int	es_projection_naptime;
extern void EsInitWorkers(void);

#endif							/* ES_PROJECTION_H */
