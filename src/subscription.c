/*-------------------------------------------------------------------------
 *
 * subscription.c
 *	  Subscriptions: consumer groups reading the global feed with
 *	  server-side checkpoints, acks, retries, parking and leases.
 *
 * A subscription is a filter on the global feed (a category, event types)
 * read by a consumer group of group_size members; a stream belongs to
 * member (hashtextextended(stream_id, 0) & 0x7fffffffffffffff) % group_size,
 * so each stream's events reach one member, in order.  Each member has a
 * row in es_subscription_members:
 *
 *	checkpoint		every event of the member up to it is acked or parked;
 *	delivered_to	the last event handed out and not acked (= checkpoint
 *					when none);
 *	scanned_to		how far the walk that handed it out went: the member has
 *					no event between delivered_to and scanned_to, so an ack
 *					of delivered_to moves the checkpoint there;
 *	attempts		how often the events after the checkpoint up to
 *					delivered_to were handed out.
 *
 * es_poll walks the feed from the checkpoint with the global feed's walk
 * (read.c; along the category index when the subscription has a category),
 * so it never passes an event whose transaction might still commit.  While
 * events are delivered and not acked, a poll hands the same ones out again
 * (attempts + 1) and nothing after them: at-least-once, in order.  es_ack
 * moves the checkpoint (cumulative, never back, never past what was
 * delivered).  es_nack acks what came before the event and counts a failed
 * attempt of it; at max_attempts the event is parked (es_subscription_parked)
 * and the checkpoint passes it.  es_replay_parked marks parked events for
 * delivery: the next polls hand them out (alone, before new events) until
 * they are acked, or nacked, which parks them again.
 *
 * Nothing is kept between calls: the state is in the tables, so polls work
 * through a transaction-mode pooler.  A poll locks its member's row until
 * its transaction ends (a second poller of the member at that time gets
 * 55006 at once), and a named consumer leases the member for the
 * subscription's lease, renewed by each poll and ack: another consumer gets
 * 55006 until the lease has expired, and then takes the member over,
 * receiving what was delivered and not acked.  An ack in the consumer's own
 * transaction, beside the writes its handling made, makes the effect
 * exactly-once (docs/subscriptions.md).
 *
 * A poll with a wait walks again whenever an append commits (subwait.c), up
 * to the wait.  The member's state is written once, when the poll returns.
 *
 * The tables are written by their owner through es_pg's statements
 * (identity.c); the caller needs the read privilege on es_events, checked
 * as for every read.  An async projection is a subscription whose consumer
 * is its handler (es_subscriptions.projection names it): its applier
 * (projapply.c) walks, acknowledges and fails its one member through the
 * functions at the end of this file, with the code of es_poll, es_ack and
 * es_nack; the consumer API refuses it (RefuseProjection).
 *
 * IDENTIFICATION
 *	  src/subscription.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/stratnum.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "es_pg.h"
#include "common.h"
#include "subscription.h"
#include "projection.h"

#define MAX_NAME_BYTES		255
#define MAX_GROUP_SIZE		1024
#define MAX_POLL_COUNT		100000
#define MAX_WAIT_USECS		(INT64CONST(3600) * USECS_PER_SEC)

/* the columns of es_subscription_members, for its restore trigger */
#define MEMBER_NATTS		14

/* the relations of an install's subscriptions */
typedef struct SubscriptionRels
{
	Oid			namespace_oid;
	Oid			owner;			/* of es_subscriptions: statements run as it */
} SubscriptionRels;

/* a member's row, with its subscription's definition */
typedef struct Member
{
	text	   *category;		/* NULL: every stream */
	int			category_len;
	char	  **types;			/* NULL: every type */
	int			ntypes;
	int			group_size;
	int			max_attempts;
	int			member;
	int64		checkpoint;
	int64		delivered_to;
	int64		scanned_to;
	int32		attempts;
	char	   *consumer;		/* lease holder, NULL: none */
	bool		lease_live;
	bool		replay_pending;
	bool		projection;		/* an async projection's subscription */
} Member;

/*
 * A member's row with its subscription's definition, locked.  The consumer
 * API's forms leave out the subscriptions of async projections before
 * locking, so that a consumer call on one is refused at once (and not after
 * waiting for the applier that holds the member); their appliers use the
 * forms without the filter.
 */
#define LOAD_MEMBER_SQL \
	"SELECT s.category, s.event_types, s.group_size, s.max_attempts," \
	" m.checkpoint, m.delivered_to, m.scanned_to, m.attempts, m.consumer," \
	" COALESCE(m.lease_until OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp(), false)," \
	" EXISTS (SELECT 1 FROM @extschema@.es_subscription_parked p" \
	"  WHERE p.subscription OPERATOR(pg_catalog.=) m.subscription" \
	"  AND p.member OPERATOR(pg_catalog.=) m.member AND p.replay)," \
	" s.projection IS NOT NULL" \
	" FROM @extschema@.es_subscriptions s" \
	" JOIN @extschema@.es_subscription_members m" \
	" ON m.subscription OPERATOR(pg_catalog.=) s.name" \
	" WHERE s.name OPERATOR(pg_catalog.=) $1" \
	" AND m.member OPERATOR(pg_catalog.=) $2"

static const EsStatement LoadMemberStatement = {
	LOAD_MEMBER_SQL " AND s.projection IS NULL FOR UPDATE OF m SKIP LOCKED",
	2, {TEXTOID, INT4OID}, true
};

/* the same, waiting for the row: acks, nacks and releases */
static const EsStatement LoadMemberWaitStatement = {
	LOAD_MEMBER_SQL " AND s.projection IS NULL FOR UPDATE OF m",
	2, {TEXTOID, INT4OID}, true
};

/* the member of an async projection's subscription, for its applier */
static const EsStatement LoadAppliedMemberStatement = {
	LOAD_MEMBER_SQL " FOR UPDATE OF m SKIP LOCKED",
	2, {TEXTOID, INT4OID}, true
};

static const EsStatement LoadAppliedMemberWaitStatement = {
	LOAD_MEMBER_SQL " FOR UPDATE OF m",
	2, {TEXTOID, INT4OID}, true
};

static const EsStatement GroupSizeStatement = {
	"SELECT s.group_size, s.projection IS NOT NULL"
	" FROM @extschema@.es_subscriptions s"
	" WHERE s.name OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}, false
};

static const EsStatement UpdateMemberStatement = {
	"UPDATE @extschema@.es_subscription_members m"
	" SET checkpoint = $3, delivered_to = $4, scanned_to = $5, attempts = $6,"
	" consumer = $7,"
	" lease_until = CASE WHEN $7 IS NULL THEN NULL"
	"  ELSE pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+)"
	"  (SELECT s.lease FROM @extschema@.es_subscriptions s"
	"   WHERE s.name OPERATOR(pg_catalog.=) $1) END,"
	" last_poll = CASE WHEN $8 THEN pg_catalog.clock_timestamp()"
	"  ELSE m.last_poll END,"
	" last_ack = CASE WHEN $8 THEN m.last_ack"
	"  ELSE pg_catalog.clock_timestamp() END"
	" WHERE m.subscription OPERATOR(pg_catalog.=) $1"
	" AND m.member OPERATOR(pg_catalog.=) $2",
	8, {TEXTOID, INT4OID, INT8OID, INT8OID, INT8OID, INT4OID, TEXTOID, BOOLOID},
	true
};

static const EsStatement MemberErrorStatement = {
	"UPDATE @extschema@.es_subscription_members m"
	" SET last_error = $3, last_error_at = pg_catalog.clock_timestamp(),"
	" error_position = $4, error_sqlstate = $5"
	" WHERE m.subscription OPERATOR(pg_catalog.=) $1"
	" AND m.member OPERATOR(pg_catalog.=) $2",
	5, {TEXTOID, INT4OID, TEXTOID, INT8OID, TEXTOID}, false
};

/*
 * A projection's handler calls went through up to $3: the checkpoint moves
 * there.  An error recorded on an event now behind it is history, unless
 * that event is parked (then it stays until the event is replayed, or
 * another error replaces it).
 */
static const EsStatement ProjectionAckStatement = {
	"UPDATE @extschema@.es_subscription_members m"
	" SET checkpoint = $3, delivered_to = $3, scanned_to = $3, attempts = 0,"
	" last_ack = pg_catalog.clock_timestamp(),"
	" (last_error, last_error_at, error_sqlstate, error_position) ="
	" (SELECT CASE WHEN c.clear THEN NULL ELSE m.last_error END,"
	"  CASE WHEN c.clear THEN NULL ELSE m.last_error_at END,"
	"  CASE WHEN c.clear THEN NULL ELSE m.error_sqlstate END,"
	"  CASE WHEN c.clear THEN NULL ELSE m.error_position END"
	"  FROM (SELECT m.error_position OPERATOR(pg_catalog.<=) $3"
	"   AND NOT EXISTS (SELECT 1 FROM @extschema@.es_subscription_parked k"
	"    WHERE k.subscription OPERATOR(pg_catalog.=) m.subscription"
	"    AND k.member OPERATOR(pg_catalog.=) m.member"
	"    AND k.position OPERATOR(pg_catalog.=) m.error_position) AS clear) c)"
	" WHERE m.subscription OPERATOR(pg_catalog.=) $1"
	" AND m.member OPERATOR(pg_catalog.=) $2",
	3, {TEXTOID, INT4OID, INT8OID}, true
};

/* a replayed parked event went through: its error is history */
static const EsStatement ReplayedErrorStatement = {
	"UPDATE @extschema@.es_subscription_members m"
	" SET last_error = NULL, last_error_at = NULL, error_sqlstate = NULL,"
	" error_position = NULL"
	" WHERE m.subscription OPERATOR(pg_catalog.=) $1"
	" AND m.member OPERATOR(pg_catalog.=) $2"
	" AND m.error_position OPERATOR(pg_catalog.=) $3",
	3, {TEXTOID, INT4OID, INT8OID}, false
};

static const EsStatement IsProjectionStatement = {
	"SELECT 1 FROM @extschema@.es_subscriptions s"
	" WHERE s.name OPERATOR(pg_catalog.=) $1 AND s.projection IS NOT NULL",
	1, {TEXTOID}, false
};

static const EsStatement ParkStatement = {
	"INSERT INTO @extschema@.es_subscription_parked AS p"
	" (subscription, member, position, stream_id, event_type, attempts,"
	" last_error, parked_at)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, pg_catalog.clock_timestamp())"
	" ON CONFLICT (subscription, member, position) DO UPDATE"
	" SET attempts = excluded.attempts, last_error = excluded.last_error,"
	" parked_at = excluded.parked_at, replay = false",
	7, {TEXTOID, INT4OID, INT8OID, TEXTOID, TEXTOID, INT4OID, TEXTOID}, false
};

static const EsStatement ReplayedStatement = {
	"SELECT p.position, p.attempts FROM @extschema@.es_subscription_parked p"
	" WHERE p.subscription OPERATOR(pg_catalog.=) $1"
	" AND p.member OPERATOR(pg_catalog.=) $2 AND p.replay"
	" ORDER BY p.position LIMIT $3",
	3, {TEXTOID, INT4OID, INT4OID}, false
};

static const EsStatement AckReplayedStatement = {
	"DELETE FROM @extschema@.es_subscription_parked p"
	" WHERE p.subscription OPERATOR(pg_catalog.=) $1"
	" AND p.member OPERATOR(pg_catalog.=) $2 AND p.replay"
	" AND p.position OPERATOR(pg_catalog.<=) $3",
	3, {TEXTOID, INT4OID, INT8OID}, false
};

static const EsStatement NackReplayedStatement = {
	"UPDATE @extschema@.es_subscription_parked p"
	" SET attempts = p.attempts OPERATOR(pg_catalog.+) 1, last_error = $4,"
	" parked_at = pg_catalog.clock_timestamp(), replay = false"
	" WHERE p.subscription OPERATOR(pg_catalog.=) $1"
	" AND p.member OPERATOR(pg_catalog.=) $2 AND p.replay"
	" AND p.position OPERATOR(pg_catalog.=) $3",
	4, {TEXTOID, INT4OID, INT8OID, TEXTOID}, false
};

static const EsStatement ReplayStatement = {
	"UPDATE @extschema@.es_subscription_parked p SET replay = true"
	" WHERE p.subscription OPERATOR(pg_catalog.=) $1"
	" AND ($2 IS NULL OR p.member OPERATOR(pg_catalog.=) $2)"
	" AND ($3 IS NULL OR p.position OPERATOR(pg_catalog.=) $3)"
	" AND NOT p.replay",
	3, {TEXTOID, INT4OID, INT8OID}, false
};

static const EsStatement ReleaseStatement = {
	"UPDATE @extschema@.es_subscription_members m"
	" SET consumer = NULL, lease_until = NULL"
	" WHERE m.subscription OPERATOR(pg_catalog.=) $1"
	" AND m.member OPERATOR(pg_catalog.=) $2"
	" AND m.consumer OPERATOR(pg_catalog.=) $3",
	3, {TEXTOID, INT4OID, TEXTOID}, false
};

static const EsStatement SameSubscriptionStatement = {
	"SELECT s.projection IS NULL"
	" AND s.category IS NOT DISTINCT FROM $2"
	" AND s.event_types IS NOT DISTINCT FROM $3"
	" AND s.group_size OPERATOR(pg_catalog.=) $4"
	" AND s.start_position OPERATOR(pg_catalog.=) $5"
	" AND s.max_attempts OPERATOR(pg_catalog.=) $6"
	" AND s.lease OPERATOR(pg_catalog.=) $7, s.projection"
	" FROM @extschema@.es_subscriptions s"
	" WHERE s.name OPERATOR(pg_catalog.=) $1",
	7, {TEXTOID, TEXTOID, TEXTARRAYOID, INT4OID, INT8OID, INT4OID, INTERVALOID},
	false
};

static const EsStatement InsertSubscriptionStatement = {
	"INSERT INTO @extschema@.es_subscriptions"
	" (name, category, event_types, group_size, start_position,"
	" max_attempts, lease)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7)",
	7, {TEXTOID, TEXTOID, TEXTARRAYOID, INT4OID, INT8OID, INT4OID, INTERVALOID},
	false
};

static const EsStatement InsertMembersStatement = {
	"INSERT INTO @extschema@.es_subscription_members"
	" (subscription, member, checkpoint, delivered_to, scanned_to)"
	" SELECT $1, g, $3, $3, $3"
	" FROM pg_catalog.generate_series(0, $2 OPERATOR(pg_catalog.-) 1) g",
	3, {TEXTOID, INT4OID, INT8OID}, false
};

static const EsStatement DeleteSubscriptionStatement = {
	"DELETE FROM @extschema@.es_subscriptions s"
	" WHERE s.name OPERATOR(pg_catalog.=) $1 AND s.projection IS NULL",
	1, {TEXTOID}, false
};

/*
 * GetRels finds the subscription tables of the install the function
 * belongs to.
 */
static void
GetRels(const EsCatalog *cat, SubscriptionRels *rels)
{
	Oid			relid = EsLookupRelation("es_subscriptions", cat->namespace_oid,
										 false);

	rels->namespace_oid = cat->namespace_oid;
	rels->owner = EsRelationOwner(relid);
}

/*
 * NameArgument reads a subscription or consumer name: not NULL (unless
 * optional), not empty, at most MAX_NAME_BYTES, no control characters.
 */
static text *
NameArgument(FunctionCallInfo fcinfo, int argno, const char *what,
			 bool optional)
{
	text	   *value;
	const char *p;
	int			len;
	int			i;

	if (optional && PG_ARGISNULL(argno))
		return NULL;
	value = EsTextArgument(fcinfo, argno, what);
	p = VARDATA_ANY(value);
	len = VARSIZE_ANY_EXHDR(value);
	if (len == 0 || len > MAX_NAME_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be 1 to %d bytes long", what, MAX_NAME_BYTES)));
	for (i = 0; i < len; i++)
	{
		if ((unsigned char) p[i] < 0x20 || p[i] == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not contain control characters", what)));
	}
	return value;
}

/*
 * MemberArgument reads a member number: not NULL, not negative.  Its range
 * is checked against the subscription.
 */
static int
MemberArgument(FunctionCallInfo fcinfo, int argno)
{
	int			member;

	EsRequireArgument(fcinfo, argno, "member");
	member = PG_GETARG_INT32(argno);
	if (member < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("member must not be negative"),
				 errhint("Members of a group of N are numbered 0 to N - 1.")));
	return member;
}

/*
 * LockName serializes creators and droppers of one subscription name until
 * the end of the transaction, so that concurrent if-not-exists calls see
 * each other's row.
 */
static void
LockName(text *name)
{
	LOCKTAG		tag;
	uint64		hash;

	hash = hash_bytes_extended((const unsigned char *) VARDATA_ANY(name),
							   VARSIZE_ANY_EXHDR(name), 0);
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (hash >> 32),
						 (uint32) hash, ES_LOCKTAG_SUBSCRIPTION);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/*
 * UnknownSubscription raises the 42704 error of a subscription that does
 * not exist.
 */
static void
UnknownSubscription(text *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("subscription \"%s\" does not exist", text_to_cstring(name)),
			 errhint("es_create_subscription creates it; es_subscription_status lists those that exist.")));
}

/*
 * RefuseProjection raises the 42809 error of a consumer call on the
 * subscription of an async projection: its worker is its one consumer.
 */
static void
RefuseProjection(text *name, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("subscription \"%s\" belongs to async projection \"%s\"",
					text_to_cstring(name), text_to_cstring(name)),
			 errdetail("The projection's worker is its only consumer; %s would take events from its handler.",
					   what),
			 errhint("Use es_projection_status, es_parked_events and es_replay_parked for it, es_rebuild_projection or es_drop_projection to reset or drop it.")));
}

/*
 * MissingMember raises the error of a member row that was not found: the
 * subscription does not exist, the member is out of its range, or (when
 * the row was locked) another transaction is using it.  Caller is
 * connected to SPI.
 */
static void
MissingMember(const SubscriptionRels *rels, text *name, int member,
			  const char *what)
{
	Datum		values[1];
	int			group_size;
	bool		isnull;

	values[0] = PointerGetDatum(name);
	if (EsExecute(&GroupSizeStatement, rels->namespace_oid, rels->owner,
				  values, NULL, InvalidSnapshot) != SPI_OK_SELECT)
		elog(ERROR, "could not read es_subscriptions");
	if (SPI_processed == 0)
		UnknownSubscription(name);
	group_size = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 1,
											 &isnull));
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
								   SPI_tuptable->tupdesc, 2, &isnull)))
		RefuseProjection(name, what);
	if (member >= group_size)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("member %d is out of range for subscription \"%s\"",
						member, text_to_cstring(name)),
				 errdetail("The subscription has a group of %d: members 0 to %d.",
						   group_size, group_size - 1)));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_IN_USE),
			 errmsg("member %d of subscription \"%s\" is in use",
					member, text_to_cstring(name)),
			 errdetail("Another transaction is polling or acknowledging it."),
			 errhint("Poll another member, or again once that transaction has ended.")));
}

/*
 * ReadMember reads and locks a member's row with its subscription's
 * definition; false when there is none, or (unless wait) another
 * transaction has it locked, or (unless applier) it is the member of an
 * async projection's subscription.  Caller is connected to SPI; the strings live
 * in its context.
 */
static bool
ReadMember(const SubscriptionRels *rels, text *name, int member, bool wait,
		   bool applier, Member *m)
{
	Datum		values[2];
	HeapTuple	tuple;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;
	const EsStatement *stmt;

	if (applier)
		stmt = wait ? &LoadAppliedMemberWaitStatement : &LoadAppliedMemberStatement;
	else
		stmt = wait ? &LoadMemberWaitStatement : &LoadMemberStatement;
	values[0] = PointerGetDatum(name);
	values[1] = Int32GetDatum(member);
	if (EsExecute(stmt, rels->namespace_oid, rels->owner, values, NULL,
				  InvalidSnapshot) != SPI_OK_SELECT)
		elog(ERROR, "could not read es_subscription_members");
	if (SPI_processed == 0)
		return false;

	tuple = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	memset(m, 0, sizeof(Member));
	m->member = member;
	d = SPI_getbinval(tuple, desc, 1, &isnull);
	if (!isnull)
	{
		m->category = DatumGetTextPCopy(d);
		m->category_len = VARSIZE_ANY_EXHDR(m->category);
	}
	d = SPI_getbinval(tuple, desc, 2, &isnull);
	if (!isnull)
	{
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		int			i;

		deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false,
						  TYPALIGN_INT, &elems, &nulls, &n);
		m->types = palloc(Max(n, 1) * sizeof(char *));
		m->ntypes = 0;
		for (i = 0; i < n; i++)
			if (!nulls[i])
				m->types[m->ntypes++] = TextDatumGetCString(elems[i]);
	}
	m->group_size = DatumGetInt32(SPI_getbinval(tuple, desc, 3, &isnull));
	m->max_attempts = DatumGetInt32(SPI_getbinval(tuple, desc, 4, &isnull));
	m->checkpoint = DatumGetInt64(SPI_getbinval(tuple, desc, 5, &isnull));
	m->delivered_to = DatumGetInt64(SPI_getbinval(tuple, desc, 6, &isnull));
	m->scanned_to = DatumGetInt64(SPI_getbinval(tuple, desc, 7, &isnull));
	m->attempts = DatumGetInt32(SPI_getbinval(tuple, desc, 8, &isnull));
	d = SPI_getbinval(tuple, desc, 9, &isnull);
	m->consumer = isnull ? NULL : TextDatumGetCString(d);
	m->lease_live = DatumGetBool(SPI_getbinval(tuple, desc, 10, &isnull));
	m->replay_pending = DatumGetBool(SPI_getbinval(tuple, desc, 11, &isnull));
	m->projection = DatumGetBool(SPI_getbinval(tuple, desc, 12, &isnull));
	return true;
}

/*
 * LoadMember reads and locks a member's row for a consumer call ("what":
 * es_poll, es_ack...), raising the error of a missing or busy member, and
 * refusing the subscription of an async projection.
 */
static void
LoadMember(const SubscriptionRels *rels, text *name, int member, bool wait,
		   Member *m, const char *what)
{
	if (!ReadMember(rels, name, member, wait, false, m))
		MissingMember(rels, name, member, what);
}

/*
 * CheckLease raises 55006 when a consumer other than "consumer" (NULL: an
 * anonymous one) holds a live lease on the member.
 */
static void
CheckLease(const Member *m, text *name, text *consumer)
{
	if (!m->lease_live || m->consumer == NULL)
		return;
	if (consumer != NULL && strcmp(m->consumer, text_to_cstring(consumer)) == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_IN_USE),
			 errmsg("member %d of subscription \"%s\" is leased to consumer \"%s\"",
					m->member, text_to_cstring(name), m->consumer),
			 errdetail("One consumer at a time reads a member; the lease is renewed by each poll and ack of its consumer."),
			 errhint("Poll another member, or wait until the lease expires: then the member is taken over with what was delivered and not acknowledged.")));
}

/*
 * StoreMember writes a member's state back; a poll sets last_poll, an ack
 * or nack last_ack.  The lease goes to "consumer" (NULL: none).  Caller is
 * connected to SPI.
 */
static void
StoreMember(const SubscriptionRels *rels, text *name, const Member *m,
			text *consumer, bool poll)
{
	Datum		values[8];
	char		nulls[8];

	memset(nulls, ' ', sizeof(nulls));
	values[0] = PointerGetDatum(name);
	values[1] = Int32GetDatum(m->member);
	values[2] = Int64GetDatum(m->checkpoint);
	values[3] = Int64GetDatum(m->delivered_to);
	values[4] = Int64GetDatum(m->scanned_to);
	values[5] = Int32GetDatum(m->attempts);
	values[6] = PointerGetDatum(consumer);
	if (consumer == NULL)
		nulls[6] = 'n';
	values[7] = BoolGetDatum(poll);
	if (EsExecute(&UpdateMemberStatement, rels->namespace_oid, rels->owner,
				  values, nulls, InvalidSnapshot) != SPI_OK_UPDATE ||
		SPI_processed != 1)
		elog(ERROR, "could not update es_subscription_members");
}

/*
 * MemberOf returns the member of a group of group_size that a stream goes
 * to: (hashtextextended(stream_id, 0) & 0x7fffffffffffffff) % group_size.
 */
static int
MemberOf(Datum stream_id, int group_size)
{
	text	   *t = DatumGetTextPP(stream_id);
	uint64		hash;

	hash = hash_bytes_extended((const unsigned char *) VARDATA_ANY(t),
							   VARSIZE_ANY_EXHDR(t), 0);
	return (int) ((hash & UINT64CONST(0x7fffffffffffffff)) % (uint64) group_size);
}

/*
 * Matches says whether an event is the member's: in the category, of one of
 * the types, and of a stream of the member.
 */
static bool
Matches(const Member *m, HeapTuple tuple, TupleDesc tupdesc)
{
	bool		isnull;
	Datum		stream;

	if (m->category != NULL && !EsInCategory(tuple, tupdesc, m->category_len))
		return false;
	if (m->types != NULL)
	{
		Datum		type = heap_getattr(tuple, Anum_es_events_event_type,
										tupdesc, &isnull);
		text	   *t = DatumGetTextPP(type);
		int			len = VARSIZE_ANY_EXHDR(t);
		int			i;

		for (i = 0; i < m->ntypes; i++)
		{
			if (strlen(m->types[i]) == len &&
				memcmp(m->types[i], VARDATA_ANY(t), len) == 0)
				break;
		}
		if (i == m->ntypes)
			return false;
	}
	if (m->group_size == 1)
		return true;
	stream = heap_getattr(tuple, Anum_es_events_stream_id, tupdesc, &isnull);
	return MemberOf(stream, m->group_size) == m->member;
}

/* the state of one walk of a poll */
typedef struct PollWalk
{
	const Member *m;
	ReturnSetInfo *rsinfo;
	EsEventRowMap *map;
	int			max_count;
	int			count;
	int64		bound;			/* stop after this position; 0: none */
	int32		attempt;
	int64		last;			/* position of the last event delivered */
	Oid			namespace_oid;
	MemoryContext scratch;		/* for upcasting; NULL: no upcasters */
} PollWalk;

/*
 * DeliverEvent is the walk's callback of es_poll.
 */
static bool
DeliverEvent(HeapTuple tuple, TupleDesc tupdesc, void *arg)
{
	PollWalk   *walk = (PollWalk *) arg;
	bool		isnull;
	int64		position;
	Datum		extra[1];
	bool		extra_null[1] = {false};
	HeapTuple	current;
	bool		matches;

	position = DatumGetInt64(heap_getattr(tuple, Anum_es_events_global_position,
										  tupdesc, &isnull));
	if (walk->bound > 0 && position > walk->bound)
		return false;
	/* the event types a subscription names are those of the current shape */
	current = EsConsumerShape(walk->namespace_oid, walk->scratch, tuple,
							  tupdesc);
	matches = Matches(walk->m, current, tupdesc);
	if (matches)
	{
		extra[0] = Int32GetDatum(walk->attempt);
		EsPutEventRow(walk->rsinfo->setResult, walk->rsinfo->setDesc,
					  walk->map, current, tupdesc, extra, extra_null, 1);
		walk->last = position;
	}
	if (current != tuple)
		MemoryContextReset(walk->scratch);
	if (!matches)
		return true;
	return ++walk->count < walk->max_count;
}

/*
 * Walk walks the member's part of the feed after "from", delivering up to
 * max_count events with the given attempt number, and not past bound (0:
 * none).  Returns the walk's state; *reached is set as EsReadFeedIndex
 * sets it.
 */
static int
Walk(const EsCatalog *cat, const Member *m, ReturnSetInfo *rsinfo,
	 int64 from, int max_count, int64 bound, int32 attempt, int64 *last,
	 int64 *reached)
{
	PollWalk	walk;
	EsEventRowMap map = {0};

	walk.m = m;
	walk.rsinfo = rsinfo;
	walk.map = &map;
	walk.max_count = max_count;
	walk.count = 0;
	walk.bound = bound;
	walk.attempt = attempt;
	walk.last = 0;
	walk.namespace_oid = cat->namespace_oid;
	walk.scratch = EsConsumerScratch(cat);
	(void) EsWalkSubscriptionFeed(cat, m->category, from, PG_INT64_MAX,
								  DeliverEvent, &walk, reached);
	if (walk.scratch != NULL)
		MemoryContextDelete(walk.scratch);
	*last = walk.last;
	return walk.count;
}

/*
 * FetchEvent reads the event at a position with a fresh snapshot into
 * *tuple (a copy); false when there is none.
 */
static bool
FetchEvent(const EsCatalog *cat, int64 position, HeapTuple *tuple,
		   TupleDesc *tupdesc)
{
	EsIndexProbe probe;
	ScanKeyData key;
	bool		found = false;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(position));
	EsProbeOpen(&probe, cat->events_relid, cat->position_index);
	EsProbeStart(&probe, GetLatestSnapshot(), &key, 1);
	if (EsProbeNext(&probe, ForwardScanDirection))
	{
		*tuple = ExecCopySlotHeapTuple(probe.slot);
		*tupdesc = CreateTupleDescCopy(probe.slot->tts_tupleDescriptor);
		found = true;
	}
	EsProbeClose(&probe);
	return found;
}

/*
 * DeliverReplays hands out the member's parked events marked for replay,
 * up to max_count, with attempt = their attempts + 1.  Caller is connected
 * to SPI.  Returns how many.
 */
static int
DeliverReplays(const EsCatalog *cat, const SubscriptionRels *rels,
			   text *name, const Member *m, ReturnSetInfo *rsinfo,
			   int max_count)
{
	Datum		values[3];
	SPITupleTable *tuptable;
	uint64		n;
	uint64		i;
	int			count = 0;
	EsEventRowMap map = {0};
	MemoryContext scratch = EsConsumerScratch(cat);

	values[0] = PointerGetDatum(name);
	values[1] = Int32GetDatum(m->member);
	values[2] = Int32GetDatum(max_count);
	if (EsExecute(&ReplayedStatement, rels->namespace_oid, rels->owner,
				  values, NULL, InvalidSnapshot) != SPI_OK_SELECT)
		elog(ERROR, "could not read es_subscription_parked");
	tuptable = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		int64		position = DatumGetInt64(SPI_getbinval(tuptable->vals[i],
														   tuptable->tupdesc,
														   1, &isnull));
		int32		attempts = DatumGetInt32(SPI_getbinval(tuptable->vals[i],
														   tuptable->tupdesc,
														   2, &isnull));
		HeapTuple	tuple;
		TupleDesc	tupdesc;
		Datum		extra[1];
		bool		extra_null[1] = {false};

		if (!FetchEvent(cat, position, &tuple, &tupdesc))
		{
			/* archived since it was parked (archhorizon.c) */
			EsCheckEventNotArchived(cat, position);
			continue;
		}
		extra[0] = Int32GetDatum(attempts + 1);
		tuple = EsConsumerShape(cat->namespace_oid, scratch, tuple, tupdesc);
		EsPutEventRow(rsinfo->setResult, rsinfo->setDesc, &map, tuple,
					  tupdesc, extra, extra_null, 1);
		count++;
	}
	if (scratch != NULL)
		MemoryContextDelete(scratch);
	return count;
}

/*
 * es_poll returns up to max_count events of a member of a subscription
 * after its checkpoint, in global order, each with its delivery attempt.
 * Events delivered and not acknowledged come again first.  With a wait, it
 * returns as soon as there are events, or empty when the wait is over.
 */
PG_FUNCTION_INFO_V1(es_poll);
Datum
es_poll(PG_FUNCTION_ARGS)
{
	text	   *name = NameArgument(fcinfo, 0, "subscription name", false);
	int			member = PG_ARGISNULL(1) ? 0 : MemberArgument(fcinfo, 1);
	int			max_count = PG_ARGISNULL(2) ? 100 : PG_GETARG_INT32(2);
	int64		wait_us = PG_ARGISNULL(3) ? 0 :
		EsIntervalMicroseconds(PG_GETARG_INTERVAL_P(3));
	text	   *consumer = NameArgument(fcinfo, 4, "consumer", true);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const EsCatalog *cat;
	SubscriptionRels rels;
	Member		m;
	TimestampTz deadline;
	MemoryContext walk_cxt;

	if (max_count < 1 || max_count > MAX_POLL_COUNT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_count must be between 1 and %d", MAX_POLL_COUNT)));
	if (wait_us < 0 || wait_us > MAX_WAIT_USECS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("wait must be between 0 and 1 hour"),
				 errhint("Poll again after a wait that returned nothing.")));
	cat = EsGetCatalogForFunction(fcinfo);
	EsCheckReadPrivilege(cat);
	GetRels(cat, &rels);
	InitMaterializedSRF(fcinfo, 0);
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   wait_us / 1000);

	EsSpiConnect();
	LoadMember(&rels, name, member, false, &m, "es_poll");
	CheckLease(&m, name, consumer);

	/* what one walk allocates goes with it: a wait may walk many times */
	walk_cxt = AllocSetContextCreate(CurrentMemoryContext, "es_poll walk",
									 ALLOCSET_SMALL_SIZES);
	for (;;)
	{
		uint64		generation = EsSubWaitGeneration();
		int			count = 0;
		int64		last;
		int64		reached;
		TimestampTz now;
		MemoryContext oldcxt = MemoryContextSwitchTo(walk_cxt);

		if (m.replay_pending)
			count = DeliverReplays(cat, &rels, name, &m, rsinfo, max_count);
		if (count == 0 && m.delivered_to > m.checkpoint)
		{
			/* what was delivered and not acked, again, and nothing after it */
			count = Walk(cat, &m, rsinfo, m.checkpoint, max_count,
						 m.delivered_to, m.attempts + 1, &last, &reached);
			if (count > 0)
				m.attempts++;
			else
			{
				/* nothing of it left (cannot happen, events stay) */
				m.checkpoint = m.delivered_to = m.scanned_to;
				m.attempts = 0;
			}
		}
		if (count == 0 && m.delivered_to == m.checkpoint)
		{
			count = Walk(cat, &m, rsinfo, m.checkpoint, max_count, 0, 1,
						 &last, &reached);
			if (count > 0)
			{
				m.delivered_to = last;
				m.scanned_to = Max(reached, last);
				m.attempts = 1;
			}
			else if (reached > m.checkpoint)
				m.checkpoint = m.delivered_to = m.scanned_to = reached;
		}

		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(walk_cxt);
		now = GetCurrentTimestamp();
		if (count > 0 || now >= deadline)
			break;
		EsSubWaitSleep(generation,
					   (long) ((deadline - now + 999) / 1000));
	}
	MemoryContextDelete(walk_cxt);

	StoreMember(&rels, name, &m, consumer, true);
	SPI_finish();
	return (Datum) 0;
}

/*
 * CheckDelivered raises 22023 for a position after what was delivered.
 */
static void
CheckDelivered(const Member *m, text *name, int64 position)
{
	if (position > m->delivered_to)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("position " INT64_FORMAT " was not delivered to member %d of subscription \"%s\"",
						position, m->member, text_to_cstring(name)),
				 errdetail("The member was delivered events up to position " INT64_FORMAT ".",
						   m->delivered_to),
				 errhint("Acknowledge the global_position of an event es_poll returned.")));
}

/*
 * es_ack acknowledges every event delivered to the member up to position:
 * the checkpoint moves there (never back).  An acknowledgement of a
 * replayed parked event removes it from the parked events.  Returns the
 * checkpoint.
 */
PG_FUNCTION_INFO_V1(es_ack);
Datum
es_ack(PG_FUNCTION_ARGS)
{
	text	   *name = NameArgument(fcinfo, 0, "subscription name", false);
	int			member = MemberArgument(fcinfo, 1);
	int64		position;
	text	   *consumer = NameArgument(fcinfo, 3, "consumer", true);
	const EsCatalog *cat;
	SubscriptionRels rels;
	Member		m;

	EsRequireArgument(fcinfo, 2, "position");
	position = PG_GETARG_INT64(2);
	cat = EsGetCatalogForFunction(fcinfo);
	EsCheckReadPrivilege(cat);
	GetRels(cat, &rels);

	EsSpiConnect();
	LoadMember(&rels, name, member, true, &m, "es_ack");
	CheckLease(&m, name, consumer);
	CheckDelivered(&m, name, position);
	if (position <= m.checkpoint)
	{
		if (m.replay_pending)
		{
			Datum		values[3];

			values[0] = PointerGetDatum(name);
			values[1] = Int32GetDatum(member);
			values[2] = Int64GetDatum(position);
			if (EsExecute(&AckReplayedStatement, rels.namespace_oid,
						  rels.owner, values, NULL,
						  InvalidSnapshot) != SPI_OK_DELETE)
				elog(ERROR, "could not update es_subscription_parked");
		}
	}
	else if (position == m.delivered_to)
	{
		m.checkpoint = m.delivered_to = m.scanned_to;
		m.attempts = 0;
	}
	else
		m.checkpoint = position;
	StoreMember(&rels, name, &m, consumer, false);
	SPI_finish();
	PG_RETURN_INT64(m.checkpoint);
}

/*
 * FailDelivered records a failed delivery of the event at position, one
 * delivered to the member after its checkpoint (tuple, in its current
 * shape): the events before it are acknowledged, and once it has had
 * max_attempts deliveries it is parked and the checkpoint passes it.  The
 * error (with the handler's SQLSTATE, for a projection) is the member's
 * last error.  The caller stores the member.  Returns whether the event
 * was parked.  es_nack and the appliers of async projections share it.
 */
static bool
FailDelivered(const SubscriptionRels *rels, text *name, Member *m,
			  int64 position, HeapTuple tuple, TupleDesc tupdesc, text *error,
			  const char *sqlstate)
{
	Datum		values[7];
	char		nulls[7];
	bool		parked = false;

	memset(nulls, ' ', sizeof(nulls));
	values[0] = PointerGetDatum(name);
	values[1] = Int32GetDatum(m->member);
	m->checkpoint = position - 1;
	if (m->attempts >= m->max_attempts)
	{
		bool		isnull;

		values[2] = Int64GetDatum(position);
		values[3] = heap_getattr(tuple, Anum_es_events_stream_id, tupdesc,
								 &isnull);
		values[4] = heap_getattr(tuple, Anum_es_events_event_type, tupdesc,
								 &isnull);
		values[5] = Int32GetDatum(m->attempts);
		values[6] = PointerGetDatum(error);
		if (error == NULL)
			nulls[6] = 'n';
		if (EsExecute(&ParkStatement, rels->namespace_oid, rels->owner, values,
					  nulls, InvalidSnapshot) != SPI_OK_INSERT)
			elog(ERROR, "could not insert into es_subscription_parked");
		parked = true;
		if (position == m->delivered_to)
			m->checkpoint = m->delivered_to = m->scanned_to;
		else
			m->checkpoint = position;
		m->attempts = 0;
	}

	if (error != NULL)
	{
		memset(nulls, ' ', sizeof(nulls));
		values[2] = PointerGetDatum(error);
		values[3] = Int64GetDatum(position);
		values[4] = sqlstate ? CStringGetTextDatum(sqlstate) : (Datum) 0;
		if (sqlstate == NULL)
			nulls[4] = 'n';
		if (EsExecute(&MemberErrorStatement, rels->namespace_oid, rels->owner,
					  values, nulls, InvalidSnapshot) != SPI_OK_UPDATE)
			elog(ERROR, "could not update es_subscription_members");
	}
	return parked;
}

/*
 * es_nack reports that the event at position failed.  The events delivered
 * before it are acknowledged; it comes again with the next poll, unless it
 * has had max_attempts, when it is parked and the checkpoint passes it.
 * A nack of a replayed parked event parks it again.  Returns whether the
 * event is parked.
 */
PG_FUNCTION_INFO_V1(es_nack);
Datum
es_nack(PG_FUNCTION_ARGS)
{
	text	   *name = NameArgument(fcinfo, 0, "subscription name", false);
	int			member = MemberArgument(fcinfo, 1);
	int64		position;
	text	   *error = PG_ARGISNULL(3) ? NULL : PG_GETARG_TEXT_PP(3);
	text	   *consumer = NameArgument(fcinfo, 4, "consumer", true);
	const EsCatalog *cat;
	SubscriptionRels rels;
	Member		m;
	HeapTuple	tuple;
	TupleDesc	tupdesc;
	bool		found;
	bool		parked;
	Datum		values[4];
	char		nulls[4];

	EsRequireArgument(fcinfo, 2, "position");
	position = PG_GETARG_INT64(2);
	cat = EsGetCatalogForFunction(fcinfo);
	EsCheckReadPrivilege(cat);
	GetRels(cat, &rels);

	EsSpiConnect();
	LoadMember(&rels, name, member, true, &m, "es_nack");
	CheckLease(&m, name, consumer);
	CheckDelivered(&m, name, position);
	memset(nulls, ' ', sizeof(nulls));
	values[0] = PointerGetDatum(name);
	values[1] = Int32GetDatum(member);

	if (position <= m.checkpoint)
	{
		values[2] = Int64GetDatum(position);
		values[3] = PointerGetDatum(error);
		if (error == NULL)
			nulls[3] = 'n';
		if (EsExecute(&NackReplayedStatement, rels.namespace_oid, rels.owner,
					  values, nulls, InvalidSnapshot) != SPI_OK_UPDATE)
			elog(ERROR, "could not update es_subscription_parked");
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("position " INT64_FORMAT " is not pending for member %d of subscription \"%s\"",
							position, member, text_to_cstring(name)),
					 errdetail("The member's checkpoint is at " INT64_FORMAT ", and no replayed parked event is there.",
							   m.checkpoint),
					 errhint("Nack the global_position of an event es_poll returned and that was not acknowledged.")));
		StoreMember(&rels, name, &m, consumer, false);
		SPI_finish();
		PG_RETURN_BOOL(true);
	}

	/* delivered: in its current shape, the event matches the member */
	found = FetchEvent(cat, position, &tuple, &tupdesc);
	if (found)
		tuple = EsConsumerShape(cat->namespace_oid, EsConsumerScratch(cat),
								tuple, tupdesc);
	if (!found || !Matches(&m, tuple, tupdesc))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no event at position " INT64_FORMAT " was delivered to member %d of subscription \"%s\"",
						position, member, text_to_cstring(name)),
				 errhint("Nack the global_position of an event es_poll returned.")));

	parked = FailDelivered(&rels, name, &m, position, tuple, tupdesc, error,
						   NULL);
	StoreMember(&rels, name, &m, consumer, false);
	SPI_finish();
	PG_RETURN_BOOL(parked);
}

/*
 * es_release gives up a consumer's lease on a member, so that another
 * consumer may take it at once (a graceful shutdown).  Returns false when
 * the consumer did not hold it.
 */
PG_FUNCTION_INFO_V1(es_release);
Datum
es_release(PG_FUNCTION_ARGS)
{
	text	   *name = NameArgument(fcinfo, 0, "subscription name", false);
	int			member = MemberArgument(fcinfo, 1);
	text	   *consumer = NameArgument(fcinfo, 2, "consumer", false);
	const EsCatalog *cat;
	SubscriptionRels rels;
	Member		m;
	Datum		values[3];
	uint64		n;

	cat = EsGetCatalogForFunction(fcinfo);
	EsCheckReadPrivilege(cat);
	GetRels(cat, &rels);

	EsSpiConnect();
	LoadMember(&rels, name, member, true, &m, "es_release");
	values[0] = PointerGetDatum(name);
	values[1] = Int32GetDatum(member);
	values[2] = PointerGetDatum(consumer);
	if (EsExecute(&ReleaseStatement, rels.namespace_oid, rels.owner, values,
				  NULL, InvalidSnapshot) != SPI_OK_UPDATE)
		elog(ERROR, "could not update es_subscription_members");
	n = SPI_processed;
	SPI_finish();
	PG_RETURN_BOOL(n > 0);
}

/*
 * es_replay_parked marks parked events of a subscription (of one member,
 * or the one at a position) for delivery again.  Returns how many.
 */
PG_FUNCTION_INFO_V1(es_replay_parked);
Datum
es_replay_parked(PG_FUNCTION_ARGS)
{
	text	   *name = NameArgument(fcinfo, 0, "subscription name", false);
	bool		all_members = PG_ARGISNULL(1);
	int			member = all_members ? 0 : MemberArgument(fcinfo, 1);
	const EsCatalog *cat;
	SubscriptionRels rels;
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	bool		isnull;
	int			group_size;
	bool		projection;
	uint64		n;

	cat = EsGetCatalogForFunction(fcinfo);
	GetRels(cat, &rels);
	EsSpiConnect();
	values[0] = PointerGetDatum(name);
	if (EsExecute(&GroupSizeStatement, rels.namespace_oid, rels.owner,
				  values, NULL, InvalidSnapshot) != SPI_OK_SELECT)
		elog(ERROR, "could not read es_subscriptions");
	if (SPI_processed == 0)
		UnknownSubscription(name);
	group_size = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 1,
											 &isnull));
	projection = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
											SPI_tuptable->tupdesc, 2,
											&isnull));
	if (!all_members && member >= group_size)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("member %d is out of range for subscription \"%s\"",
						member, text_to_cstring(name)),
				 errdetail("The subscription has a group of %d: members 0 to %d.",
						   group_size, group_size - 1)));
	values[1] = Int32GetDatum(member);
	if (all_members)
		nulls[1] = 'n';
	if (PG_ARGISNULL(2))
	{
		values[2] = (Datum) 0;
		nulls[2] = 'n';
	}
	else
		values[2] = PG_GETARG_DATUM(2);
	if (EsExecute(&ReplayStatement, rels.namespace_oid, rels.owner, values,
				  nulls, InvalidSnapshot) != SPI_OK_UPDATE)
		elog(ERROR, "could not update es_subscription_parked");
	n = SPI_processed;
	SPI_finish();
	/* a projection's worker hands them to the handler */
	if (projection && n > 0)
		EsWakeWorkerAtCommit();
	PG_RETURN_INT64((int64) n);
}

/*
 * es_create_subscription creates a subscription and the members of its
 * group, each with its checkpoint at start_position.  With if_not_exists,
 * a subscription of that name with the same definition is left as it is
 * (false); one with another definition is an error either way.
 */
PG_FUNCTION_INFO_V1(es_create_subscription);
Datum
es_create_subscription(PG_FUNCTION_ARGS)
{
	text	   *name = NameArgument(fcinfo, 0, "subscription name", false);
	text	   *category = PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1);
	ArrayType  *types = PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2);
	int32		group_size = PG_ARGISNULL(3) ? 1 : PG_GETARG_INT32(3);
	int64		start_position = PG_ARGISNULL(4) ? 0 : PG_GETARG_INT64(4);
	int32		max_attempts = PG_ARGISNULL(5) ? 5 : PG_GETARG_INT32(5);
	Datum		lease;
	bool		if_not_exists = PG_ARGISNULL(7) ? false : PG_GETARG_BOOL(7);
	const EsCatalog *cat;
	SubscriptionRels rels;
	Datum		values[7];
	char		nulls[7];
	bool		isnull;

	if (PG_ARGISNULL(6))
		lease = DirectFunctionCall3(interval_in, CStringGetDatum("30 seconds"),
									ObjectIdGetDatum(InvalidOid),
									Int32GetDatum(-1));
	else
		lease = PG_GETARG_DATUM(6);
	if (category != NULL)
		EsCheckCategory(category);
	if (types != NULL)
	{
		Datum	   *elems;
		bool	   *elem_nulls;
		int			n;
		int			i;

		if (ARR_NDIM(types) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("event_types must be a one-dimensional array")));
		deconstruct_array(types, TEXTOID, -1, false, TYPALIGN_INT, &elems,
						  &elem_nulls, &n);
		if (n == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("event_types must not be empty"),
					 errhint("Pass NULL for every event type.")));
		for (i = 0; i < n; i++)
		{
			if (elem_nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("event_types must not contain NULL")));
			EsValidateEventType(DatumGetTextPP(elems[i]), -1);
		}
	}
	if (group_size < 1 || group_size > MAX_GROUP_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("group_size must be between 1 and %d", MAX_GROUP_SIZE)));
	if (start_position < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("start_position must not be negative"),
				 errhint("Pass 0 to start at the first event, es_head_position() to start after the last one.")));
	if (max_attempts < 1 || max_attempts > 1000000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_attempts must be between 1 and 1000000")));
	if (EsIntervalMicroseconds(DatumGetIntervalP(lease)) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lease must be positive")));

	cat = EsGetCatalogForFunction(fcinfo);
	GetRels(cat, &rels);
	LockName(name);

	memset(nulls, ' ', sizeof(nulls));
	values[0] = PointerGetDatum(name);
	values[1] = PointerGetDatum(category);
	if (category == NULL)
		nulls[1] = 'n';
	values[2] = PointerGetDatum(types);
	if (types == NULL)
		nulls[2] = 'n';
	values[3] = Int32GetDatum(group_size);
	values[4] = Int64GetDatum(start_position);
	values[5] = Int32GetDatum(max_attempts);
	values[6] = lease;

	EsSpiConnect();
	if (EsExecute(&SameSubscriptionStatement, rels.namespace_oid, rels.owner,
				  values, nulls, InvalidSnapshot) != SPI_OK_SELECT)
		elog(ERROR, "could not read es_subscriptions");
	if (SPI_processed > 0)
	{
		bool		same = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
													  SPI_tuptable->tupdesc,
													  1, &isnull));

		if (if_not_exists && same && !isnull)
		{
			SPI_finish();
			PG_RETURN_BOOL(false);
		}
		(void) SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2,
							 &isnull);
		if (!isnull)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("subscription \"%s\" already exists",
							text_to_cstring(name)),
					 errdetail("It is the subscription of async projection \"%s\": subscriptions and async projections share one name space.",
							   text_to_cstring(name)),
					 errhint("Choose another name.")));
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("subscription \"%s\" already exists",
						text_to_cstring(name)),
				 if_not_exists ?
				 errdetail("It exists with another definition.") : 0,
				 errhint("Drop it first with es_drop_subscription, or pass if_not_exists => true with the same definition.")));
	}
	if (EsExecute(&InsertSubscriptionStatement, rels.namespace_oid,
				  rels.owner, values, nulls, InvalidSnapshot) != SPI_OK_INSERT)
		elog(ERROR, "could not insert into es_subscriptions");
	values[1] = Int32GetDatum(group_size);
	values[2] = Int64GetDatum(start_position);
	if (EsExecute(&InsertMembersStatement, rels.namespace_oid, rels.owner,
				  values, NULL, InvalidSnapshot) != SPI_OK_INSERT)
		elog(ERROR, "could not insert into es_subscription_members");
	SPI_finish();
	PG_RETURN_BOOL(true);
}

/*
 * es_drop_subscription drops a subscription with its members' checkpoints
 * and its parked events.  It waits for polls of its members in progress.
 * With if_exists a subscription that does not exist is no error (false).
 */
PG_FUNCTION_INFO_V1(es_drop_subscription);
Datum
es_drop_subscription(PG_FUNCTION_ARGS)
{
	text	   *name = NameArgument(fcinfo, 0, "subscription name", false);
	bool		if_exists = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);
	SubscriptionRels rels;
	Datum		values[1];
	uint64		n;

	GetRels(cat, &rels);
	LockName(name);
	values[0] = PointerGetDatum(name);
	if (EsRunStatement(&IsProjectionStatement, rels.namespace_oid, rels.owner,
					   values, NULL, SPI_OK_SELECT) > 0)
		RefuseProjection(name, "es_drop_subscription");
	n = EsRunStatement(&DeleteSubscriptionStatement, rels.namespace_oid,
					   rels.owner, values, NULL, SPI_OK_DELETE);
	if (n == 0 && !if_exists)
		UnknownSubscription(name);
	PG_RETURN_BOOL(n > 0);
}

/*
 * The subscriptions of async projections.  Their worker (projapply.c) is
 * the one consumer of member 0: it walks the feed from the checkpoint
 * with the walk es_poll uses, hands the events to the handler, and records
 * the outcome with the acknowledgement and failure code of es_ack and
 * es_nack, in the transaction of the handler's writes.  Callers are
 * connected to SPI.
 */

/*
 * EsWalkSubscriptionFeed walks the feed after "from" for a subscription
 * of a category (NULL: every stream) as es_poll does: along the category
 * index or the global_position index, never past an event that might
 * still commit.  Returns what EsReadFeedIndex returns.
 */
int64
EsWalkSubscriptionFeed(const EsCatalog *cat, text *category, int64 from,
					   int64 max_count, EsFeedCallback callback, void *arg,
					   int64 *reached)
{
	ScanKeyData keys[2];

	if (category != NULL)
	{
		EsCategoryScanKeys(keys, category, from);
		return EsReadFeedIndex(cat, EsCategoryIndex(cat), keys, 2, from,
							   max_count, callback, arg, reached);
	}
	ScanKeyInit(&keys[0], 1, BTGreaterStrategyNumber, F_INT8GT,
				Int64GetDatum(from));
	return EsReadFeedIndex(cat, InvalidOid, keys, 1, from, max_count,
						   callback, arg, reached);
}

/*
 * EsLockProjectionMember locks the member of an async projection's
 * subscription (SKIP LOCKED for the worker) and reads its state; false
 * when there is none or another applier holds it.
 */
bool
EsLockProjectionMember(const EsCatalog *cat, const char *name,
					   bool skip_locked, EsMemberState *st)
{
	SubscriptionRels rels;
	Member		m;

	GetRels(cat, &rels);
	if (!ReadMember(&rels, cstring_to_text(name), 0, !skip_locked, true, &m) ||
		!m.projection)
		return false;
	st->checkpoint = m.checkpoint;
	st->delivered_to = m.delivered_to;
	st->attempts = m.attempts;
	st->max_attempts = m.max_attempts;
	st->replay_pending = m.replay_pending;
	return true;
}

/*
 * EsProjectionApplied moves the checkpoint of a projection's member to
 * position, as es_ack of everything delivered up to it.
 */
void
EsProjectionApplied(const EsCatalog *cat, const char *name, int64 position)
{
	SubscriptionRels rels;
	Datum		values[3];

	GetRels(cat, &rels);
	values[0] = CStringGetTextDatum(name);
	values[1] = Int32GetDatum(0);
	values[2] = Int64GetDatum(position);
	if (EsExecute(&ProjectionAckStatement, rels.namespace_oid, rels.owner,
				  values, NULL, InvalidSnapshot) != SPI_OK_UPDATE ||
		SPI_processed != 1)
		elog(ERROR, "could not update es_subscription_members");
}

/*
 * EsProjectionFailed records that the handler failed on the event at
 * position, on delivery number "attempt": what came before it is
 * acknowledged, and the failure is counted as es_nack counts it, parking
 * the event at max_attempts.  Returns whether it was parked.
 */
bool
EsProjectionFailed(const EsCatalog *cat, const char *name, int64 position,
				   int32 attempt, const char *sqlstate, const char *message)
{
	SubscriptionRels rels;
	text	   *tname = cstring_to_text(name);
	Member		m;
	HeapTuple	tuple;
	TupleDesc	tupdesc;
	bool		parked;

	GetRels(cat, &rels);
	if (!ReadMember(&rels, tname, 0, true, true, &m))
		elog(ERROR, "the subscription of projection \"%s\" is gone", name);
	if (!FetchEvent(cat, position, &tuple, &tupdesc))
		elog(ERROR, "no event at position " INT64_FORMAT, position);
	tuple = EsConsumerShape(cat->namespace_oid, EsConsumerScratch(cat),
							tuple, tupdesc);
	/* delivered up to the failing event: the handler saw nothing after it */
	m.delivered_to = m.scanned_to = position;
	m.attempts = attempt;
	parked = FailDelivered(&rels, tname, &m, position, tuple, tupdesc,
						   cstring_to_text(message), sqlstate);
	StoreMember(&rels, tname, &m, NULL, false);
	return parked;
}

/*
 * EsProjectionReplays returns up to max of the parked events of a
 * projection marked for replay, oldest first: their positions and the
 * attempts they had.  Returns how many.
 */
int
EsProjectionReplays(const EsCatalog *cat, const char *name, int max,
					int64 *positions, int32 *attempts)
{
	SubscriptionRels rels;
	Datum		values[3];
	uint64		i;

	GetRels(cat, &rels);
	values[0] = CStringGetTextDatum(name);
	values[1] = Int32GetDatum(0);
	values[2] = Int32GetDatum(max);
	if (EsExecute(&ReplayedStatement, rels.namespace_oid, rels.owner,
				  values, NULL, InvalidSnapshot) != SPI_OK_SELECT)
		elog(ERROR, "could not read es_subscription_parked");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		positions[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
												   SPI_tuptable->tupdesc, 1,
												   &isnull));
		attempts[i] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
												  SPI_tuptable->tupdesc, 2,
												  &isnull));
	}
	return (int) SPI_processed;
}

/*
 * EsProjectionReplayed records the outcome of a replayed parked event: on
 * success it leaves the parked events (as es_ack of it), on failure it is
 * parked again with attempts + 1 (as es_nack of it).
 */
void
EsProjectionReplayed(const EsCatalog *cat, const char *name, int64 position,
					 bool ok, const char *message)
{
	SubscriptionRels rels;
	Datum		values[4];

	GetRels(cat, &rels);
	values[0] = CStringGetTextDatum(name);
	values[1] = Int32GetDatum(0);
	values[2] = Int64GetDatum(position);
	if (ok)
	{
		if (EsExecute(&AckReplayedStatement, rels.namespace_oid, rels.owner,
					  values, NULL, InvalidSnapshot) != SPI_OK_DELETE)
			elog(ERROR, "could not update es_subscription_parked");
		if (EsExecute(&ReplayedErrorStatement, rels.namespace_oid, rels.owner,
					  values, NULL, InvalidSnapshot) != SPI_OK_UPDATE)
			elog(ERROR, "could not update es_subscription_members");
		return;
	}
	values[3] = CStringGetTextDatum(message);
	if (EsExecute(&NackReplayedStatement, rels.namespace_oid, rels.owner,
				  values, NULL, InvalidSnapshot) != SPI_OK_UPDATE)
		elog(ERROR, "could not update es_subscription_parked");
}

/*
 * EsFetchEventAt reads the event at a position with a fresh snapshot (a
 * copy, as stored); false when there is none.
 */
bool
EsFetchEventAt(const EsCatalog *cat, int64 position, HeapTuple *tuple,
			   TupleDesc *tupdesc)
{
	return FetchEvent(cat, position, tuple, tupdesc);
}

/*
 * es_subscription_members_restore is the BEFORE INSERT trigger of
 * es_subscription_members: a row for a member that exists already (a
 * restore's COPY of the member of a projection an extension's script
 * created again) replaces it instead of failing.
 */
PG_FUNCTION_INFO_V1(es_subscription_members_restore);
Datum
es_subscription_members_restore(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = EsCheckTriggerCall(fcinfo,
											   "es_subscription_members_restore");
	Relation	rel = trigdata->tg_relation;
	HeapTuple	row = trigdata->tg_trigtuple;
	TupleDesc	desc = RelationGetDescr(rel);
	Datum		values[MEMBER_NATTS];
	bool		isnull[MEMBER_NATTS];
	char		nulls[MEMBER_NATTS];
	Oid			argtypes[MEMBER_NATTS];
	StringInfoData sql;
	int			i;

	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		desc->natts != MEMBER_NATTS)
		EsTriggerMisfired("es_subscription_members_restore",
						  "BEFORE INSERT FOR EACH ROW on es_subscription_members");
	heap_deform_tuple(row, desc, values, isnull);
	if (isnull[0] || isnull[1])
		return PointerGetDatum(row);
	initStringInfo(&sql);
	appendStringInfo(&sql, "UPDATE %s SET ",
					 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												RelationGetRelationName(rel)));
	for (i = 0; i < MEMBER_NATTS; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		nulls[i] = isnull[i] ? 'n' : ' ';
		argtypes[i] = att->atttypid;
		if (i >= 2)
			appendStringInfo(&sql, "%s%s = $%d", i > 2 ? ", " : "",
							 quote_identifier(NameStr(att->attname)), i + 1);
	}
	appendStringInfoString(&sql, " WHERE subscription OPERATOR(pg_catalog.=) $1"
						   " AND member OPERATOR(pg_catalog.=) $2");
	EsSpiConnect();
	EsRunAsOwner(RelationGetRelid(rel), sql.data, MEMBER_NATTS, argtypes,
				 values, nulls, false, 0);
	i = SPI_processed;
	SPI_finish();
	/* replaced an existing row: skip the insert */
	return PointerGetDatum(i > 0 ? NULL : row);
}
