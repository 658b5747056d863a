/*-------------------------------------------------------------------------
 *
 * validate.c
 *	  Check stream ids, event types and JSON payloads before anything is
 *	  written.
 *
 * Every check raises an error with a SQLSTATE a client can act on; see the
 * SQLSTATE table in docs/api.md.  Nothing here writes or locks.
 *
 * IDENTIFICATION
 *	  src/validate.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "es_pg.h"
#include "common.h"
#include "parse.h"

/*
 * ValidateName checks a stream id or an event type: not empty, not longer
 * than max_bytes, no control characters.
 */
static void
ValidateName(text *value, const char *what, int max_bytes, int batch_index)
{
	int			len = VARSIZE_ANY_EXHDR(value);
	int			code;
	int			offset;

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", what),
				 EsBatchContext(batch_index)));
	if (len > max_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is too long", what),
				 errdetail("The limit is %d bytes; this one has %d bytes.",
						   max_bytes, len),
				 EsBatchContext(batch_index)));
	offset = EsFindControlCharacter((const unsigned char *) VARDATA_ANY(value),
									len, GetDatabaseEncoding() == PG_UTF8,
									&code);
	if (offset >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not contain control characters", what),
				 errdetail("Byte %d is the control character U+%04X.",
						   offset + 1, code),
				 EsBatchContext(batch_index)));
}

/*
 * EsValidateStreamId raises an error for an empty, over-long or unprintable
 * stream id.
 */
void
EsValidateStreamId(text *stream_id)
{
	ValidateName(stream_id, "stream id", ES_MAX_STREAM_ID_BYTES, -1);
}

/*
 * EsValidateEventType does the same for an event type.
 */
void
EsValidateEventType(text *event_type, int batch_index)
{
	ValidateName(event_type, "event type", ES_MAX_EVENT_TYPE_BYTES,
				 batch_index);
}

/*
 * EsValidateJsonObject raises an error unless jb is a JSON object.  "what"
 * names the argument ("event data", "event metadata").
 */
void
EsValidateJsonObject(Jsonb *jb, const char *what, int batch_index)
{
	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a JSON object", what),
				 errdetail("Got a JSON %s.", EsJsonbKind(jb, false)),
				 EsBatchContext(batch_index)));
}

/*
 * EsParseUuid parses a uuid written as 32 hex digits, optionally with the
 * four hyphens of the canonical form (8-4-4-4-12).  It returns false instead
 * of raising an error, so that the caller can say which event was wrong.
 * The parsing itself is in parse.c.
 */
bool
EsParseUuid(const char *str, int len, pg_uuid_t *out)
{
	StaticAssertStmt(sizeof(out->data) == ES_UUID_BYTES,
					 "a uuid has 16 bytes");
	return EsParseUuidBytes(str, len, out->data);
}
