/*-------------------------------------------------------------------------
 *
 * projwait.c
 *	  Waiting for projections and watching rebuilds:
 *	  es_wait_for_projection and es_projection_progress.
 *
 * An inline projection has applied an event once the event is committed:
 * the wait looks the position up in the global_position index with a
 * dirty snapshot and waits for the transaction writing it.  An async one
 * has applied it once its checkpoint reaches the position: the wait reads
 * the committed checkpoint and sleeps on the checkpoint condition variable
 * (projshmem.c) until the next one moves; it wakes the database's worker
 * first, or has one started when none runs (after a restart without
 * preloading nothing else may have asked for one).
 *
 * IDENTIFICATION
 *	  src/projwait.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/wait_event.h"

#include "common.h"
#include "projection.h"

/* the committed checkpoint of a projection; read on every look */
static const EsStatement CheckpointStatement = {
	"SELECT m.checkpoint FROM @extschema@.es_subscription_members m"
	" WHERE m.subscription OPERATOR(pg_catalog.=) $1"
	" AND m.member OPERATOR(pg_catalog.=) 0",
	1, {TEXTOID}, true
};

/* the same in 0.1.0, before async projections were subscriptions */
static const EsStatement CheckpointStatement_0_1 = {
	"SELECT c.position FROM @extschema@.es_projection_checkpoints c"
	" WHERE c.name OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}, true
};

/*
 * ReadCheckpoint returns the committed checkpoint of a projection, read
 * with a fresh snapshot whatever the isolation level.
 */
static int64
ReadCheckpoint(const EsProjectionCatalog *pc, const char *name)
{
	Datum		values[1];
	bool		isnull;
	int64		position;

	values[0] = CStringGetTextDatum(name);
	EsSpiConnect();
	EsProjectionExecute(pc, pc->version >= ES_VERSION_0_2 ?
						&CheckpointStatement : &CheckpointStatement_0_1,
						values, NULL, GetLatestSnapshot());
	if (SPI_processed == 0)
		EsUnknownProjection(name);
	position = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return position;
}

/*
 * PositionState looks up the event at a position.  It returns true when
 * the position is settled: committed, written by this transaction,
 * aborted, or skipped while later positions exist.  Otherwise *xwait is
 * the transaction still writing it, or invalid for a position not handed
 * out yet.
 */
static bool
PositionState(const EsCatalog *cat, int64 position, TransactionId *xwait)
{
	EsIndexProbe probe;
	SnapshotData dirty;
	ScanKeyData key;
	bool		found;
	bool		settled;

	EsProbeOpen(&probe, cat->events_relid, cat->position_index);
	*xwait = InvalidTransactionId;

	/*
	 * Read the highest indexed position first: positions enter the index
	 * in increasing order (lock.c), so if it is past ours, ours is in the
	 * index or never will be.
	 */
	settled = EsFeedSafeHigh(probe.heap, probe.index) >= position;

	InitDirtySnapshot(dirty);
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(position));
	EsProbeStart(&probe, &dirty, &key, 1);
	found = EsProbeNext(&probe, ForwardScanDirection);
	if (found && TransactionIdIsValid(dirty.xmin))
	{
		*xwait = dirty.xmin;
		settled = false;
	}
	else if (found)
		settled = true;
	EsProbeClose(&probe);
	return settled;
}

/* what WaitForXact hands to its subtransaction */
typedef struct XactWait
{
	TransactionId xid;
	long		timeout_ms;
} XactWait;

/*
 * WaitBody is the body of WaitForXact's subtransaction: a lock wait for
 * the transaction, bounded by a local lock_timeout.
 */
static void
WaitBody(void *arg)
{
	XactWait   *w = (XactWait *) arg;
	int			nestlevel = NewGUCNestLevel();
	char		buf[32];

	snprintf(buf, sizeof(buf), "%ld", Max(w->timeout_ms, 1));
	(void) set_config_option("lock_timeout", buf, PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
							 false);
	XactLockTableWait(w->xid, NULL, NULL, XLTW_None);
	AtEOXact_GUC(true, nestlevel);
}

/*
 * WaitForXact waits for a transaction to end, at most timeout_ms; false on
 * timeout.  The wait is a real lock wait (interruptible, seen by
 * pg_locks), bounded by a local lock_timeout in a subtransaction.
 */
static bool
WaitForXact(TransactionId xid, long timeout_ms)
{
	XactWait	w;
	ErrorData  *edata;

	w.xid = xid;
	w.timeout_ms = timeout_ms;
	edata = EsTrySubtransaction(WaitBody, NULL, &w, CurrentMemoryContext);
	if (edata == NULL)
		return true;
	if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
		ReThrowError(edata);
	FreeErrorData(edata);
	return false;
}

/*
 * RemainingMs returns the milliseconds left until deadline, at least 0.
 */
static long
RemainingMs(TimestampTz deadline)
{
	TimestampTz now = GetCurrentTimestamp();

	if (now >= deadline)
		return 0;
	return (long) Min((deadline - now + 999) / 1000, (int64) INT_MAX);
}

/*
 * es_wait_for_projection waits until the projection has applied the event
 * at "position": for an inline projection, until that event is committed;
 * for an async one, until its checkpoint reaches the position.  Returns
 * false when the timeout expires first.
 */
PG_FUNCTION_INFO_V1(es_wait_for_projection);
Datum
es_wait_for_projection(PG_FUNCTION_ARGS)
{
	char	   *name = EsProjectionNameArgument(fcinfo, 0);
	int64		position;
	Interval   *timeout;
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	const EsProjectionCatalog *pc = EsGetProjectionCatalog(cat, false);
	TimestampTz deadline;
	int64		span;
	bool		async;
	bool		reached = false;

	EsRequireArgument(fcinfo, 1, "position");
	EsRequireArgument(fcinfo, 2, "timeout");
	position = PG_GETARG_INT64(1);
	timeout = PG_GETARG_INTERVAL_P(2);
	if (position < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("position must not be negative")));
	span = EsIntervalMicroseconds(timeout);
	if (span < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout must not be negative")));
	deadline = GetCurrentTimestamp();
	if (pg_add_s64_overflow(deadline, span, &deadline))
		deadline = PG_INT64_MAX;

	EsSpiConnect();
	async = EsProjectionIsAsync(pc, name, GetLatestSnapshot());
	SPI_finish();

	if (!async)
	{
		for (;;)
		{
			TransactionId xwait;
			long		remaining;

			if (PositionState(cat, position, &xwait))
			{
				reached = true;
				break;
			}
			remaining = RemainingMs(deadline);
			if (remaining <= 0)
				break;
			if (TransactionIdIsValid(xwait))
			{
				if (!WaitForXact(xwait, remaining))
					break;
				continue;
			}
			/* a position not handed out yet: look again shortly */
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 Min(remaining, 100L), PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	else
	{
		bool		prepared = false;
		bool		woken = false;

		for (;;)
		{
			long		remaining;

			if (ReadCheckpoint(pc, name) >= position)
			{
				reached = true;
				break;
			}
			/* a wait needs a worker: start one if none runs (after a restart) */
			if (!woken)
			{
				EsWakeWorkerNow();
				woken = true;
			}
			remaining = RemainingMs(deadline);
			if (remaining <= 0)
				break;
			EsWaitForCheckpoint(remaining, &prepared);
		}
		if (prepared)
			EsWaitForCheckpoint(-1, &prepared);
	}
	PG_RETURN_BOOL(reached);
}

/*
 * es_projection_progress returns the rebuilds running in this database:
 * events walked so far out of the events to replay.  Empty when es_pg is
 * not in shared_preload_libraries.
 */
PG_FUNCTION_INFO_V1(es_projection_progress);
Datum
es_projection_progress(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char		(*names)[NAMEDATALEN];
	int			pids[ES_MAX_REBUILDS];
	int64		done[ES_MAX_REBUILDS];
	int64		total[ES_MAX_REBUILDS];
	TimestampTz started[ES_MAX_REBUILDS];
	int			n;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	names = palloc(ES_MAX_REBUILDS * NAMEDATALEN);
	n = EsProgressSnapshot(MyDatabaseId, names, pids, done, total, started,
						   ES_MAX_REBUILDS);
	for (i = 0; i < n; i++)
	{
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		values[0] = CStringGetTextDatum(names[i]);
		values[1] = Int32GetDatum(pids[i]);
		values[2] = Int64GetDatum(done[i]);
		values[3] = Int64GetDatum(total[i]);
		values[4] = TimestampTzGetDatum(started[i]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
