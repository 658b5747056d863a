/*-------------------------------------------------------------------------
 *
 * common.h
 *	  Helpers shared by the C files of es_pg: argument and trigger-call
 *	  checks, JSON kind names, error contexts, text comparison, the guarded
 *	  subtransaction and index probes.
 *
 * Like contrib/amcheck's verify_common.h: what more than one file needs
 * lives here once.  Nothing here knows es_pg's tables.
 *
 * IDENTIFICATION
 *	  src/common.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ES_COMMON_H
#define ES_COMMON_H

#include "access/genam.h"
#include "access/sdir.h"
#include "access/skey.h"
#include "datatype/timestamp.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "utils/jsonb.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"

struct TriggerData;
struct EventTriggerData;

/* arguments */
extern void EsRequireArgument(FunctionCallInfo fcinfo, int argno,
							  const char *what);
extern text *EsTextArgument(FunctionCallInfo fcinfo, int argno,
							const char *what);
extern int	EsCompareCStrings(const void *a, const void *b);
extern void EsCheckExecute(Oid fn, Oid role);
extern int64 EsIntervalMicroseconds(const Interval *interval);
extern void EsRandomBytes(void *out, int len);

/* trigger functions called the wrong way */
extern struct TriggerData *EsCheckTriggerCall(FunctionCallInfo fcinfo,
											  const char *name);
extern void EsTriggerMisfired(const char *name, const char *how);
extern struct EventTriggerData *EsCheckEventTriggerCall(FunctionCallInfo fcinfo,
														const char *name);

/* JSON kind names for error details: "object", or "an object" */
extern const char *EsJsonbValueKind(const JsonbValue *v, bool article);
extern const char *EsJsonbKind(Jsonb *jb, bool article);

/* "event N of the batch" in errors about one element of a batch */
extern int	EsBatchContext(int batch_index);

/*
 * EsPushErrorContext puts a callback on the error context stack;
 * EsPopErrorContext takes it off again.
 */
static inline void
EsPushErrorContext(ErrorContextCallback *cb, void (*callback) (void *arg),
				   void *arg)
{
	cb->callback = callback;
	cb->arg = arg;
	cb->previous = error_context_stack;
	error_context_stack = cb;
}

static inline void
EsPopErrorContext(ErrorContextCallback *cb)
{
	error_context_stack = cb->previous;
}

/*
 * EsTextEqual compares two text values byte for byte (es_pg's keys use the
 * "C" collation, where equality is byte equality); EsTextEqualsCString
 * compares one with a C string.
 */
static inline bool
EsTextEqual(text *a, text *b)
{
	int			len = VARSIZE_ANY_EXHDR(a);

	return len == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), len) == 0;
}

static inline bool
EsTextEqualsCString(text *t, const char *str)
{
	size_t		len = strlen(str);

	return VARSIZE_ANY_EXHDR(t) == len &&
		memcmp(VARDATA_ANY(t), str, len) == 0;
}

/*
 * EsTrySubtransaction runs body(arg) in an internal subtransaction.  It
 * returns NULL when body returned, or a copy (in errcxt) of the error that
 * ended it, after on_error(arg) (if any) ran first thing and the
 * subtransaction was rolled back.  The caller decides whether to re-throw.
 */
typedef void (*EsGuardedFunction) (void *arg);

extern ErrorData *EsTrySubtransaction(EsGuardedFunction body,
									  EsGuardedFunction on_error, void *arg,
									  MemoryContext errcxt);

/*
 * EsIndexProbe is one index scan of a heap: open the relations, start the
 * scan, read slots, close everything again.
 */
typedef struct EsIndexProbe
{
	Relation	heap;
	Relation	index;
	TupleTableSlot *slot;
	IndexScanDesc scan;
	bool		own_heap;		/* opened by EsProbeOpen, closed by EsProbeClose */
} EsIndexProbe;

extern void EsProbeOpen(EsIndexProbe *probe, Oid relid, Oid indexid);
extern void EsProbeOpenOn(EsIndexProbe *probe, Relation heap, Oid indexid);
extern void EsProbeStart(EsIndexProbe *probe, Snapshot snapshot,
						 ScanKey keys, int nkeys);
extern bool EsProbeNext(EsIndexProbe *probe, ScanDirection dir);
extern void EsProbeClose(EsIndexProbe *probe);
extern int64 EsMaxIndexedPosition(Relation rel, Relation index);

/* whether the statement being run drops with CASCADE (event triggers) */
extern bool EsDropCascades(Node *parsetree);

#endif							/* ES_COMMON_H */
