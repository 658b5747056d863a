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

PG_MODULE_MAGIC;

/* es_pg.max_append_events: events one es_append_batch call may carry */
int			es_max_append_events = 100000;

/* es_pg.allow_drop_history: let DROP EXTENSION remove a non-empty store */
bool		es_allow_drop_history = false;

void		_PG_init(void);

/*
 * _PG_init defines the settings and registers the cache callbacks; the
 * projection part (projection.c, worker.c) also sets up shared memory and
 * the launcher worker when es_pg is preloaded.
 */
void
_PG_init(void)
{
	DefineCustomIntVariable("es_pg.max_append_events",
							"Largest number of events one es_append_batch call may append.",
							NULL,
							&es_max_append_events,
							100000, 1, 10000000,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("es_pg.allow_drop_history",
							 "Lets DROP EXTENSION es_pg delete an event store that holds events.",
							 NULL,
							 &es_allow_drop_history,
							 false,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
	EsInitFeedLock();
	EsInitSnapshots();
	EsInitProjections();
	MarkGUCPrefixReserved("es_pg");

	EsInitCatalogCache();
}
