/*-------------------------------------------------------------------------
 *
 * es_pg.c
 *	  Module entry point: settings and callbacks.
 *
 * IDENTIFICATION
 *	  src/es_pg.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "es_pg.h"
#include "subscription.h"
#include "projection.h"
#include "snapshot.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/*
 * _PG_init calls the init function of each module: each defines its own
 * settings and registers its own callbacks, and the ones with shared
 * memory or background workers set those up when es_pg is preloaded.  The
 * order keeps the transaction callbacks and shared memory hooks in the
 * order they were always registered in.
 */
void
_PG_init(void)
{
	EsInitAppend();
	EsInitGuard();
	EsInitFeedLock();
	EsInitDirect();
	EsInitSnapshots();
	EsInitProjectionCache();
	EsInitInlineDispatch();
	EsInitHandlerCalls();
	EsInitApply();
	EsInitProjectionShmem();
	EsInitWorkers();
	EsInitSubWait();
	EsInitCatalogCache();
	EsInitEvolution();
	EsInitVerify();
	EsInitPrivacy();
	MarkGUCPrefixReserved("es_pg");
}
