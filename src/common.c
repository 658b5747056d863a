/*-------------------------------------------------------------------------
 *
 * common.c
 *	  Helpers shared by the C files of es_pg (see common.h).
 *
 * IDENTIFICATION
 *	  src/common.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "commands/event_trigger.h"
#include "commands/trigger.h"
#include "common/int.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#include "es_pg.h"
#include "common.h"

/*
 * EsRequireArgument raises the 22004 error for a NULL where a value is
 * needed.
 */
void
EsRequireArgument(FunctionCallInfo fcinfo, int argno, const char *what)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
}

/*
 * EsTextArgument reads a required text argument.
 */
text *
EsTextArgument(FunctionCallInfo fcinfo, int argno, const char *what)
{
	EsRequireArgument(fcinfo, argno, what);
	return PG_GETARG_TEXT_PP(argno);
}

/*
 * EsCompareCStrings orders C strings with strcmp, for qsort and bsearch of
 * arrays of char *.
 */
int
EsCompareCStrings(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * EsCheckExecute raises an error unless role may execute fn.
 */
void
EsCheckExecute(Oid fn, Oid role)
{
	AclResult	aclresult = EsProcAclCheck(fn, role, ACL_EXECUTE);

	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FUNCTION, get_func_name(fn));
}

/*
 * EsIntervalMicroseconds returns an interval's length in microseconds (a
 * month counting 30 days), saturated at the ends of int64 instead of
 * wrapping around.
 */
int64
EsIntervalMicroseconds(const Interval *interval)
{
	int64		days = (int64) interval->month * DAYS_PER_MONTH + interval->day;
	int64		span;

	if (pg_mul_s64_overflow(days, USECS_PER_DAY, &span) ||
		pg_add_s64_overflow(span, interval->time, &span))
		return days < 0 ? PG_INT64_MIN : PG_INT64_MAX;
	return span;
}

/*
 * EsCheckTriggerCall raises the 39P01 error when a trigger function is
 * called some other way.
 */
TriggerData *
EsCheckTriggerCall(FunctionCallInfo fcinfo, const char *name)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function %s must be called as a trigger", name)));
	return (TriggerData *) fcinfo->context;
}

/*
 * EsTriggerMisfired raises the 39P01 error for a trigger function fired
 * otherwise than "how" (say, "AFTER INSERT FOR EACH STATEMENT").
 */
void
EsTriggerMisfired(const char *name, const char *how)
{
	ereport(ERROR,
			(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
			 errmsg("function %s must be fired %s", name, how)));
}

/*
 * EsCheckEventTriggerCall does the same for event trigger functions.
 */
EventTriggerData *
EsCheckEventTriggerCall(FunctionCallInfo fcinfo, const char *name)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function %s must be called as an event trigger",
						name)));
	return (EventTriggerData *) fcinfo->context;
}

/*
 * EsJsonbValueKind names the type of a JSON value for error details, with
 * an article ("an object", "a string") or without ("object", "string").
 */
const char *
EsJsonbValueKind(const JsonbValue *v, bool article)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return article ? "a string" : "string";
		case jbvNumeric:
			return article ? "a number" : "number";
		case jbvBool:
			return article ? "a boolean" : "boolean";
		case jbvBinary:
			if (JsonContainerIsObject(v->val.binary.data))
				return article ? "an object" : "object";
			return article ? "an array" : "array";
		default:
			return article ? "a value" : "value";
	}
}

/*
 * EsJsonbKind names the kind of a JSON document the same way.
 */
const char *
EsJsonbKind(Jsonb *jb, bool article)
{
	JsonbValue	v;

	if (!JB_ROOT_IS_SCALAR(jb))
	{
		v.type = jbvBinary;
		v.val.binary.data = &jb->root;
		v.val.binary.len = VARSIZE(jb) - VARHDRSZ;
	}
	else if (!JsonbExtractScalar(&jb->root, &v))
		return article ? "a value" : "value";
	return EsJsonbValueKind(&v, article);
}

/*
 * EsBatchContext adds "event N of the batch" to an error about one element
 * of a batch; batch_index is negative outside batches.  For use inside
 * ereport().
 */
int
EsBatchContext(int batch_index)
{
	if (batch_index >= 0)
		return errcontext("event %d of the batch", batch_index + 1);
	return 0;
}

/*
 * EsTrySubtransaction is described in common.h.
 */
ErrorData *
EsTrySubtransaction(EsGuardedFunction body, EsGuardedFunction on_error,
					void *arg, MemoryContext errcxt)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		body(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		if (on_error != NULL)
			on_error(arg);
		MemoryContextSwitchTo(errcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_END_TRY();
	return edata;
}

/*
 * EsProbeOpen opens a heap and one of its indexes for a probe, with
 * AccessShareLock; EsProbeOpenOn uses a heap the caller has open.
 */
void
EsProbeOpen(EsIndexProbe *probe, Oid relid, Oid indexid)
{
	EsProbeOpenOn(probe, table_open(relid, AccessShareLock), indexid);
	probe->own_heap = true;
}

void
EsProbeOpenOn(EsIndexProbe *probe, Relation heap, Oid indexid)
{
	probe->heap = heap;
	probe->own_heap = false;
	probe->index = index_open(indexid, AccessShareLock);
	probe->slot = table_slot_create(heap, NULL);
	probe->scan = NULL;
}

/*
 * EsProbeStart starts the scan with the given keys on the index columns.
 */
void
EsProbeStart(EsIndexProbe *probe, Snapshot snapshot, ScanKey keys, int nkeys)
{
	probe->scan = EsIndexBeginScan(probe->heap, probe->index, snapshot,
								   nkeys, 0);
	index_rescan(probe->scan, keys, nkeys, NULL, 0);
}

/*
 * EsProbeNext reads the next row into probe->slot; false at the end.
 */
bool
EsProbeNext(EsIndexProbe *probe, ScanDirection dir)
{
	return index_getnext_slot(probe->scan, dir, probe->slot);
}

/*
 * EsProbeClose ends the scan and closes what EsProbeOpen opened.
 */
void
EsProbeClose(EsIndexProbe *probe)
{
	if (probe->scan != NULL)
		index_endscan(probe->scan);
	ExecDropSingleTupleTableSlot(probe->slot);
	index_close(probe->index, AccessShareLock);
	if (probe->own_heap)
		table_close(probe->heap, AccessShareLock);
}

/*
 * EsMaxIndexedPosition returns the highest global_position in the index,
 * whatever the state of its transaction, or 0 for an empty index.
 */
int64
EsMaxIndexedPosition(Relation rel, Relation index)
{
	IndexScanDesc scan;
	int64		position = 0;

	scan = EsIndexBeginScan(rel, index, SnapshotAny, 0, 0);
	scan->xs_want_itup = true;
	index_rescan(scan, NULL, 0, NULL, 0);
	if (index_getnext_tid(scan, BackwardScanDirection) != NULL)
	{
		bool		isnull;

		position = DatumGetInt64(index_getattr(scan->xs_itup, 1,
											   scan->xs_itupdesc, &isnull));
	}
	index_endscan(scan);
	return position;
}

/*
 * EsDropCascades says whether the statement being run drops objects with
 * CASCADE (or drops a whole extension or a role's objects, which takes
 * what hangs on them along too).
 */
bool
EsDropCascades(Node *parsetree)
{
	if (parsetree == NULL)
		return false;
	if (IsA(parsetree, DropStmt))
	{
		DropStmt   *stmt = (DropStmt *) parsetree;

		return stmt->behavior == DROP_CASCADE ||
			stmt->removeType == OBJECT_EXTENSION;
	}
	if (IsA(parsetree, DropOwnedStmt))
		return ((DropOwnedStmt *) parsetree)->behavior == DROP_CASCADE;
	return false;
}

/*
 * Random bytes that need not stay secret (event ids, nonces) are drawn from
 * the strong random source in blocks, since each call to it costs about a
 * microsecond (more than a small insert's share), whatever it returns.  The
 * buffer is filled lazily in each backend, never before a fork, and each
 * byte is handed out once.  Keys are drawn from the source directly.
 */
#define ES_RANDOM_BUFFER_BYTES	4096
static unsigned char es_random_buffer[ES_RANDOM_BUFFER_BYTES];
static int	es_random_used = ES_RANDOM_BUFFER_BYTES;

/*
 * EsRandomBytes fills len bytes (at most ES_RANDOM_BUFFER_BYTES) with
 * strong random bytes.
 */
void
EsRandomBytes(void *out, int len)
{
	Assert(len > 0 && len <= ES_RANDOM_BUFFER_BYTES);
	if (es_random_used + len > ES_RANDOM_BUFFER_BYTES)
	{
		if (!pg_strong_random(es_random_buffer, ES_RANDOM_BUFFER_BYTES))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate random values")));
		es_random_used = 0;
	}
	memcpy(out, es_random_buffer + es_random_used, len);
	memset(es_random_buffer + es_random_used, 0, len);
	es_random_used += len;
}
