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

/* es_pg.max_append_events_ceiling: the most a role may raise it to */
int			es_max_append_events_ceiling = 100000;

/* es_pg.max_event_bytes, es_pg.max_batch_bytes: size caps of appends */
int			es_max_event_bytes = 64 * 1024 * 1024;
int			es_max_batch_bytes = 256 * 1024 * 1024;

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
	DefineCustomIntVariable("es_pg.max_append_events_ceiling",
							"Largest value es_pg.max_append_events takes effect with; only superusers change it.",
							"A batch uses about 2 kB of backend memory per event while it is appended.",
							&es_max_append_events_ceiling,
							100000, 1, 10000000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("es_pg.max_event_bytes",
							"Largest size of one event's data and metadata together.",
							NULL,
							&es_max_event_bytes,
							64 * 1024 * 1024, 1024, INT_MAX,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomIntVariable("es_pg.max_batch_bytes",
							"Largest size of the events argument of one es_append_batch call.",
							NULL,
							&es_max_batch_bytes,
							256 * 1024 * 1024, 1024, INT_MAX,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("es_pg.allow_drop_history",
							 "Lets DROP EXTENSION es_pg delete an event store that holds events.",
							 NULL,
							 &es_allow_drop_history,
							 false,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
	EsInitFeedLock();
	EsInitDirect();
	EsInitSnapshots();
	EsInitProjections();
	MarkGUCPrefixReserved("es_pg");

	EsInitCatalogCache();
}
