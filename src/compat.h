/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Differences between the PostgreSQL versions es_pg builds against.
 *
 * es_pg supports PostgreSQL 15, 17 and 18 (16 is in no Debian release; the
 * branches for it are the ones 17 and 18 take).  Every difference in the
 * server's interfaces that the C code meets lives here, each with the
 * major that brought it and the upstream change.
 *
 * IDENTIFICATION
 *	  src/compat.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ES_COMPAT_H
#define ES_COMPAT_H

#if PG_VERSION_NUM < 150000
#error "es_pg requires PostgreSQL 15 or later"
#endif

#include "access/genam.h"
#include "executor/executor.h"
#include "utils/acl.h"
#if PG_VERSION_NUM >= 160000
#include "catalog/pg_proc.h"
#include "parser/parse_relation.h"
#endif

/* InitMaterializedSRF was called SetSingleFuncCall in early 15.x releases */
#if PG_VERSION_NUM < 160000 && !defined(MAT_SRF_USE_EXPECTED_DESC)
#define InitMaterializedSRF(fcinfo, flags) SetSingleFuncCall(fcinfo, flags)
#endif

/*
 * 18 gave index_beginscan an IndexScanInstrumentation argument, for
 * EXPLAIN ANALYZE's index search counts; es_pg's own scans are not
 * instrumented.
 */
#if PG_VERSION_NUM >= 180000
#define EsIndexBeginScan(heap, index, snapshot, nkeys, norderbys) \
	index_beginscan(heap, index, snapshot, NULL, nkeys, norderbys)
#else
#define EsIndexBeginScan(heap, index, snapshot, nkeys, norderbys) \
	index_beginscan(heap, index, snapshot, nkeys, norderbys)
#endif

/*
 * 16 moved permission information out of range table entries into a list
 * of RTEPermissionInfo, which ExecConstraints needs to describe a failing
 * row (without one, a CHECK violation is reported as "invalid perminfoindex
 * 0"); 18 added the set of relations left after pruning.  EsInitRangeTable sets up a range table of one relation,
 * the table an append inserts into.
 */
static inline void
EsInitRangeTable(EState *estate, RangeTblEntry *rte)
{
#if PG_VERSION_NUM >= 160000
	List	   *perminfos = NIL;
	RTEPermissionInfo *perminfo = addRTEPermissionInfo(&perminfos, rte);

	perminfo->requiredPerms = ACL_INSERT;
#endif
#if PG_VERSION_NUM >= 180000
	ExecInitRangeTable(estate, list_make1(rte), perminfos,
					   bms_make_singleton(1));
#elif PG_VERSION_NUM >= 160000
	ExecInitRangeTable(estate, list_make1(rte), perminfos);
#else
	ExecInitRangeTable(estate, list_make1(rte));
#endif
}

/* 16 added the "only summarizing indexes" flag (HOT updates with BRIN) */
#if PG_VERSION_NUM >= 160000
#define EsInsertIndexTuples(rri, slot, estate) \
	ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL, false)
#else
#define EsInsertIndexTuples(rri, slot, estate) \
	ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL)
#endif

/* 16 replaced pg_proc_aclcheck and its kin by object_aclcheck */
#if PG_VERSION_NUM >= 160000
#define EsProcAclCheck(fn, role, mode) \
	object_aclcheck(ProcedureRelationId, fn, role, mode)
#else
#define EsProcAclCheck(fn, role, mode) pg_proc_aclcheck(fn, role, mode)
#endif

/*
 * 17 numbers processes from 0 (MyProcNumber) where 15 and 16 number
 * backends from 1 (MyBackendId); both index the arrays of MaxBackends
 * entries that regular backends and background workers use.
 */
#if PG_VERSION_NUM >= 170000
#include "storage/procnumber.h"
#define EsMyProcIndex() ((int) MyProcNumber)
#else
#include "storage/backendid.h"
#define EsMyProcIndex() ((int) MyBackendId - 1)
#endif

/* 17 replaced the IsBackgroundWorker flag by the process's backend type */
#if PG_VERSION_NUM >= 170000
#define EsIsBackgroundWorker() AmBackgroundWorkerProcess()
#else
#define EsIsBackgroundWorker() IsBackgroundWorker
#endif

/* the process behind a virtual transaction id, by the same numbering */
#if PG_VERSION_NUM >= 170000
#define EsVirtualXactProc(vxid) ProcNumberGetProc((vxid).procNumber)
#else
#include "storage/sinvaladt.h"
#define EsVirtualXactProc(vxid) BackendIdGetProc((vxid).backendId)
#endif

#endif							/* ES_COMPAT_H */
