/*-------------------------------------------------------------------------
 *
 * es_pg.h
 *	  Declarations shared by the C files of the es_pg extension.
 *
 * Each section names the file that defines what it declares.  The helpers
 * every file may use are in common.h; the projection files share
 * projection.h, the snapshot files snapshot.h.  docs/developing.md shows
 * which file may call which.
 *
 * IDENTIFICATION
 *	  src/es_pg.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ES_PG_H
#define ES_PG_H

#include "fmgr.h"
#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "access/htup.h"
#include "executor/tuptable.h"
#include "utils/jsonb.h"
#include "utils/relcache.h"
#include "access/skey.h"
#include "utils/snapshot.h"
#include "utils/uuid.h"

#include "compat.h"

/* limits on identifiers, documented in docs/api.md */
#define ES_MAX_STREAM_ID_BYTES		1024
#define ES_MAX_EVENT_TYPE_BYTES		255

/* attribute numbers of es_events; checked against the catalog on first use */
#define Anum_es_events_global_position	1
#define Anum_es_events_stream_id		2
#define Anum_es_events_version			3
#define Anum_es_events_event_id			4
#define Anum_es_events_event_type		5
#define Anum_es_events_data				6
#define Anum_es_events_metadata			7
#define Anum_es_events_recorded_at		8
#define Natts_es_events					8
/* 0.2.0 added schema_version (30_evolution.sql); 0.1.0's SQL has 8 columns */
#define Anum_es_events_schema_version	9

/* attribute numbers of es_snapshots; checked against the catalog too */
#define Anum_es_snapshots_stream_id		1
#define Anum_es_snapshots_reducer		2
#define Anum_es_snapshots_version		3
#define Anum_es_snapshots_state			4
#define Anum_es_snapshots_created_at	5
#define Anum_es_snapshots_reducer_digest 6
#define Natts_es_snapshots				6

/* attribute numbers of es_snapshot_policies */
#define Anum_es_snapshot_policies_reducer	1
#define Anum_es_snapshot_policies_every_n	2
#define Anum_es_snapshot_policies_search_path	4

/*
 * Lock tags.  They live in the advisory lock space (pg_locks shows them as
 * "advisory" with objsubid set to these values), apart from the keys that
 * pg_advisory_lock(bigint) (1) and pg_advisory_lock(int, int) (2) use.
 */
#define ES_LOCKTAG_STREAM	0x4553	/* one stream: held until transaction end */
#define ES_LOCKTAG_FEED		0x4546	/* position allocation: held briefly */
#define ES_LOCKTAG_SNAPSHOT	0x534E	/* a policy snapshot writer: try-lock */
#define ES_LOCKTAG_WORKER	0x4557	/* a database's projection worker */
#define ES_LOCKTAG_APPLY	0x4541	/* an applier of one projection */
#define ES_LOCKTAG_SEAL		0x534C	/* es_seal of a database: held until transaction end */
#define ES_LOCKTAG_SUBSCRIPTION	0x5355	/* creating or dropping a subscription */

#define ES_ERRCODE_VERSION_CONFLICT ERRCODE_T_R_SERIALIZATION_FAILURE
/* 55Z01: a stream deleted by es_delete_stream (tombstone.c) */
#define ES_ERRCODE_STREAM_DELETED	MAKE_SQLSTATE('5','5','Z','0','1')
/* events a read needs are archived (archhorizon.c) */
#define ES_ERRCODE_EVENTS_ARCHIVED	MAKE_SQLSTATE('5','5','Z','0','2')

#define ES_STREAM_VERSION_CONSTRAINT	"es_events_stream_id_version_key"
#define ES_EVENT_ID_CONSTRAINT			"es_events_event_id_key"
#define ES_INSERT_CHECK_CONSTRAINT		"es_events_insert_check"
#define ES_CATEGORY_INDEX				"es_events_category_idx"

/*
 * EsCatalog holds the OIDs of the extension's objects in this database.  It
 * is looked up once per backend and reset by a relcache callback when
 * es_events goes away (DROP EXTENSION).
 */
typedef struct EsCatalog
{
	Oid			namespace_oid;
	Oid			events_relid;
	Oid			position_index;		/* es_events_pkey (global_position) */
	Oid			stream_index;		/* es_events_stream_id_version_key */
	Oid			event_id_index;		/* es_events_event_id_key */
	Oid			position_seq;		/* es_events_position_seq */
	int			version;		/* installed version, 0.2.0 is 200 */
	int			events_natts;	/* columns of es_events: 8, or 9 from 0.2.0 */
} EsCatalog;

/* versions whose SQL the C code tells apart */
#define ES_VERSION_0_2	200

/*
 * EsSnapshotCatalog holds the OIDs of the snapshot tables of one install,
 * looked up once per backend like EsCatalog.
 */
typedef struct EsSnapshotCatalog
{
	Oid			namespace_oid;
	Oid			snapshots_relid;
	Oid			snapshots_pkey;		/* (stream_id, reducer, version) */
	Oid			snapshots_stream_index; /* (stream_id, version) */
	Oid			policies_relid;
	Oid			policies_pkey;		/* (reducer) */
	Oid			events_type;	/* row type of es_events */
	int			version;		/* of the install's SQL (EsCatalog) */
} EsSnapshotCatalog;

/*
 * EsProjectionCatalog holds the OIDs of the projection tables of one
 * install, looked up once per backend like EsCatalog.
 */
typedef struct EsProjectionCatalog
{
	Oid			namespace_oid;
	Oid			projections_relid;
	Oid			checkpoints_relid;
	Oid			owner;			/* owner of es_projections */
	Oid			events_type;	/* row type of es_events */
	int			version;		/* of the install's SQL (EsCatalog) */
} EsProjectionCatalog;

/* a column a table of the extension must have, for EsCheckTableShape */
typedef struct EsColumn
{
	const char *name;
	Oid			type;
} EsColumn;

/* catalog.c */
extern Oid	EsLookupRelation(const char *name, Oid namespace_oid,
							 bool missing_ok);
extern void EsCheckTableShape(Oid relid, const EsColumn *columns,
							  int ncolumns);
extern const EsCatalog *EsGetCatalog(Oid namespace_oid);
extern const EsCatalog *EsGetCatalogForFunction(FunctionCallInfo fcinfo);
extern const EsCatalog *EsGetCatalogForExtension(bool missing_ok);
extern Oid	EsExtensionNamespace(bool missing_ok);
extern void EsCheckReadPrivilege(const EsCatalog *cat);
extern Datum EsCreatingExtensionName(void);
extern int	EsInstalledVersion(Oid namespace_oid);
extern const EsSnapshotCatalog *EsGetSnapshotCatalog(const EsCatalog *cat);
extern const EsProjectionCatalog *EsGetProjectionCatalog(const EsCatalog *cat,
														 bool missing_ok);
extern uint64 es_projections_generation;
extern void EsInitCatalogCache(void);

/* identity.c */
typedef struct EsIdentity
{
	Oid			save_userid;
	int			save_sec_context;
	int			nestlevel;
} EsIdentity;

extern void EsBecomeOwner(Oid role, const char *search_path,
						  bool bypass_forced_rls, EsIdentity *id);
extern void EsRestoreIdentity(EsIdentity *id);
extern char *EsPinnedSearchPath(void);
extern Oid	EsRelationOwner(Oid relid);
extern int	EsExecuteAs(Oid role, const char *sql, int nargs, Oid *argtypes,
						Datum *values, const char *nulls, Snapshot snapshot,
						bool read_only, long tcount);
extern int	EsRunAsOwner(Oid relid, const char *sql, int nargs, Oid *argtypes,
						 Datum *values, const char *nulls, bool read_only,
						 long tcount);

/*
 * EsStatement is one of es_pg's own statements on its tables, written
 * beside the code that runs it.  "@extschema@" in the text stands for the
 * install's schema.  A kept statement is prepared once per backend and
 * install schema (SPI_keepplan), for the paths that run it per batch or per
 * append; the others are prepared for each call.
 */
#define ES_STATEMENT_MAX_ARGS	8

typedef struct EsStatement
{
	const char *sql;
	int			nargs;
	Oid			argtypes[ES_STATEMENT_MAX_ARGS];
	bool		keep;
} EsStatement;

extern void EsSpiConnect(void);
extern int	EsExecute(const EsStatement *stmt, Oid namespace_oid, Oid role,
					  Datum *values, const char *nulls, Snapshot snapshot);
extern uint64 EsRunStatement(const EsStatement *stmt, Oid namespace_oid,
							 Oid role, Datum *values, const char *nulls,
							 int expected);

/* direct.c */
extern void EsInitDirect(void);
extern void EsDirectInsertBegin(Relation events_rel);

/* guard.c */
extern bool es_allow_drop_history;
extern void EsInitGuard(void);

/* validate.c */
extern void EsValidateStreamId(text *stream_id);
extern void EsValidateEventType(text *event_type, int batch_index);
extern void EsValidateJsonObject(Jsonb *jb, const char *what, int batch_index);
extern bool EsParseUuid(const char *str, int len, pg_uuid_t *out);

/* lock.c: see its header comment for the feed protocol */
typedef struct EsFeedHold
{
	bool		lwlock;			/* the slot's LWLock, exclusively */
	bool		heavyweight;	/* the feed lock, RowExclusiveLock */
	bool		registered;		/* an entry in the in-flight registry */
	bool		in_flight;		/* counted in this backend's flights */
} EsFeedHold;

extern void EsLockStream(text *stream_id);
extern void EsInitFeedLock(void);
extern void EsFeedBeginAppend(EsFeedHold *hold, bool user_code, bool *waited);
extern void EsFeedRegister(EsFeedHold *hold, int64 first_position);
extern void EsFeedEndAppend(EsFeedHold *hold);
extern int64 EsFeedSafeHigh(Relation rel, Relation index);
extern bool EsFeedInFlight(void);
extern void EsFeedOpenWindow(void);
extern bool EsFeedWindowOpen(void);
extern void EsFeedCloseWindow(bool prepare);

/*
 * append.c
 *
 * EsAppendedEvents describes the events one es_append or es_append_batch
 * call inserted.  It is visible to AFTER INSERT trigger functions of
 * es_events (es_dispatch_inline) while the statement's triggers fire; a
 * nested append pushes its own and restores the outer one afterwards.
 */
typedef struct EsAppendedEvents
{
	TupleTableSlot **slots;
	int			nslots;
	Oid			events_relid;
	struct EsAppendedEvents *outer;
} EsAppendedEvents;

extern int	es_max_append_events;
extern int	es_max_append_events_ceiling;
extern int	es_max_event_bytes;
extern int	es_max_batch_bytes;
extern EsAppendedEvents *EsCurrentAppend;
extern void EsInitAppend(void);
extern bool EsInsideAppend(void);
extern bool EsOwnRowBeingChecked(int64 position);

/* read.c */
typedef bool (*EsFeedCallback) (HeapTuple tuple, TupleDesc tupdesc,
								void *arg);
extern int64 EsStreamHead(const EsCatalog *cat, Relation rel,
						  text *stream_id, Snapshot snapshot,
						  bool *maybe_deleted);
extern int64 EsStreamVersion(const EsCatalog *cat, Relation rel,
							 text *stream_id, Snapshot snapshot);
extern int64 EsReadFeed(const EsCatalog *cat, int64 from_position,
						int64 max_count, EsFeedCallback callback, void *arg);
extern int64 EsReadFeedIndex(const EsCatalog *cat, Oid index_oid,
							 ScanKey keys, int nkeys, int64 from_position,
							 int64 max_count, EsFeedCallback callback,
							 void *arg, int64 *reached);
extern int64 EsHeadPosition(const EsCatalog *cat, Snapshot snapshot);

/*
 * evolution.c: event schema evolution.  Every read path hands out events
 * through EsUpcastEventTuple; EsUpcastingActive is its cheap fast path.
 */
extern void EsInitEvolution(void);
extern bool EsUpcastingActive(Oid namespace_oid);
extern HeapTuple EsUpcastEventTuple(Oid namespace_oid, HeapTuple tuple,
									TupleDesc tupdesc);
extern HeapTuple EsUpcastEventTupleFor(Oid namespace_oid, HeapTuple tuple,
									   TupleDesc tupdesc, Oid reader);
extern bool EsUpcastMayChange(Oid namespace_oid, HeapTuple tuple,
							  TupleDesc tupdesc);
extern const char *EsEventTypeOf(HeapTuple tuple, TupleDesc tupdesc,
								 int *len);
extern void EsUpcastBatchBegin(void);
extern void EsUpcastBatchEnd(bool aborting);
extern int32 EsCheckEventSchema(Oid namespace_oid, text *event_type,
								Jsonb *data, Jsonb *metadata,
								int batch_index);
extern void EsUpcastFoldDigest(Oid namespace_oid, char *hex);

/*
 * privacy.c: crypto-shredding (privacy.h is shared by its files).  Appends
 * encrypt through EsPrivacyProtect; EsUpcastEventTuple decrypts through
 * EsPrivacyReveal before upcasting.
 */
extern void EsInitPrivacy(void);
extern bool EsPrivacyActive(Oid namespace_oid);
extern bool EsPrivacyTypeProtected(Oid namespace_oid, const char *event_type,
								   int len);
extern Jsonb *EsPrivacyProtect(Oid namespace_oid, text *event_type,
							   Jsonb *data, const pg_uuid_t *event_id,
							   int batch_index);
extern HeapTuple EsPrivacyReveal(Oid namespace_oid, HeapTuple tuple,
								 TupleDesc tupdesc, Oid reader);
extern void EsPrivacyFoldDigest(Oid namespace_oid, Oid reader, char *hex);
extern bool EsPrivacyHidesSnapshots(Oid namespace_oid);
extern void EsPrivacyCheckDirect(Oid namespace_oid, Oid events_relid,
								 int64 floor);

/* reducer.c: the pieces of a function's digest, shared with evolution.c */
struct pg_cryptohash_ctx;
extern void EsDigestUpdate(struct pg_cryptohash_ctx *ctx, const char *data,
						   size_t len);
extern void EsDigestProcAttr(struct pg_cryptohash_ctx *ctx, HeapTuple tuple,
							 AttrNumber attno);
/* tombstone.c: the event type of a deleted stream's last event */
#define ES_TOMBSTONE_EVENT_TYPE "$StreamDeleted"
extern bool EsIsTombstoneType(text *event_type);
extern Oid	EsTombstoneIndex(const EsCatalog *cat, Oid *relid);
extern int64 EsStreamDeletedAt(const EsCatalog *cat, text *stream_id,
							   Snapshot snapshot);
extern void EsCheckStreamNotDeleted(const EsCatalog *cat, text *stream_id,
									Snapshot snapshot);

/* archive.c */
struct TriggerData;
extern Oid	EsArchiveRelation(const EsCatalog *cat, Oid *index);
extern bool EsArchiveRemovalAllowed(struct TriggerData *trigdata);

/* archhorizon.c: what reads refuse after live streams were archived */
extern int64 EsArchiveHorizon(const EsCatalog *cat);
extern void EsCheckFeedNotArchived(const EsCatalog *cat, int64 from_position);
extern void EsCheckEventNotArchived(const EsCatalog *cat, int64 position);
extern void EsCheckStreamNotArchived(const EsCatalog *cat, text *stream_id,
									 Snapshot snapshot, bool backward,
									 int64 after, int64 before,
									 int64 max_count);
extern Datum EsArchivedRanges(const EsCatalog *cat, int64 from_position,
							  int64 to_position, Snapshot snapshot,
							  bool *isnull);

/* verify.c (the seal chain's files share audit.h) */
extern int	es_verify_progress_events;
extern void EsInitVerify(void);

#endif							/* ES_PG_H */
