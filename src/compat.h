/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Differences between the PostgreSQL versions es_pg builds against.
 *
 * es_pg is tested on PostgreSQL 15, the version Debian 12 ships.  The
 * macros below cover the executor and SRF interfaces that changed in 16
 * and 17, so that the same sources build there.
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

/* InitMaterializedSRF was called SetSingleFuncCall in early 15.x releases */
#if PG_VERSION_NUM < 160000 && !defined(MAT_SRF_USE_EXPECTED_DESC)
#define InitMaterializedSRF(fcinfo, flags) SetSingleFuncCall(fcinfo, flags)
#endif

/* 16 added RTEPermissionInfo lists and an "only summarizing" index flag */
#if PG_VERSION_NUM >= 160000
#define EsInitRangeTable(estate, rtable) \
	ExecInitRangeTable(estate, rtable, NIL)
#define EsInsertIndexTuples(rri, slot, estate) \
	ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL, false)
#else
#define EsInitRangeTable(estate, rtable) \
	ExecInitRangeTable(estate, rtable)
#define EsInsertIndexTuples(rri, slot, estate) \
	ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL)
#endif

#endif							/* ES_COMPAT_H */
