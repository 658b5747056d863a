/*-------------------------------------------------------------------------
 *
 * privacy.c
 *	  Crypto-shredding: the protected event types (es_protected_types),
 *	  the encryption of their personal data at append, its decryption for
 *	  the readers allowed to see it, the check of direct inserts, and the
 *	  part of the snapshot digest that says whether a fold saw plain values.
 *
 * es_protect names, for an event type, the JSON paths of its data that
 * hold personal data and the path that names the data subject.  es_append
 * and es_append_batch (AppendEvents) replace the value at each of those
 * paths by a ciphertext marker,
 *
 *	  {"es_pg": "encrypted", "key": <key id>, "sealed": "<base64>"}
 *
 * where sealed is AES-256-GCM (nonce, ciphertext, tag) of the value's
 * jsonb binary form under the subject's key (privkeys.c), bound to the
 * key id, the event id and the path, so that a marker copied into another
 * event or path does not decrypt there.
 *
 * Every read path hands out events through EsUpcastEventTuple
 * (evolution.c), which calls EsPrivacyReveal first: a reader with EXECUTE
 * on es_personal_data_access() gets the plain values back, others keep
 * the ciphertext marker; once the subject's key is destroyed
 * (es_forget_subject) everyone gets {"es_pg": "forgotten", "key": <id>}.
 *
 * An INSERT or COPY into es_events (direct.c) must bring ciphertext markers
 * at the protected paths, or the transaction fails at commit: a restore
 * brings them, a COPY of plain personal data is refused.
 *
 * IDENTIFICATION
 *	  src/privacy.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonpath.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "privacy.h"
#include "common.h"

/* what a value's encryption is bound to, besides key, event and path */
#define VALUE_CONTEXT		"es_pg value 1"

/* a protected path: its keys from the root */
typedef struct ProtectedPath
{
	char	   *text;
	int			nkeys;
	char	  **keys;
	int		   *lens;
} ProtectedPath;

/* a protected event type */
typedef struct ProtectedType
{
	char		key[ES_MAX_EVENT_TYPE_BYTES + 1];	/* hash key */
	int			npaths;
	ProtectedPath *paths;
	ProtectedPath subject;
} ProtectedType;

/* the protected types of one install */
static struct
{
	Oid			namespace_oid;
	Oid			types_relid;	/* InvalidOid: no es_protected_types */
	Oid			access_fn;		/* es_personal_data_access() */
	MemoryContext cxt;
	HTAB	   *types;
	int			ntypes;
	/* the last answer of EsPrivacyRevealAllowed */
	Oid			reader;
	bool		reader_allowed;
}			privacy;

static bool privacy_valid = false;
static uint64 privacy_invalidations = 0;

static const EsStatement LoadStatement = {
	"SELECT p.event_type, p.paths, p.subject_path,"
	" pg_catalog.to_regprocedure('@extschema@.es_personal_data_access()')::pg_catalog.oid"
	" FROM (SELECT NULL) AS d"
	" LEFT JOIN @extschema@.es_protected_types p ON true",
	0, {0}, false
};

/*
 * EsParseProtectedPath turns a path in SQL/JSON path syntax that names one
 * member, from the root down ($.a, $.a.b, $."odd key"), into its keys; any
 * other path is a 22023 error.
 */
List *
EsParseProtectedPath(const char *path, const char *what)
{
	JsonPath   *jp;
	JsonPathItem v;
	List	   *result = NIL;
	bool		ok;

	jp = DatumGetJsonPathP(DirectFunctionCall1(jsonpath_in,
											   CStringGetDatum(path)));
	jspInit(&v, jp);
	ok = v.type == jpiRoot;
	while (ok && jspGetNext(&v, &v))
	{
		int32		len;
		char	   *key;

		if (v.type != jpiKey)
		{
			ok = false;
			break;
		}
		key = jspGetString(&v, &len);
		result = lappend(result, pnstrdup(key, len));
	}
	if (ok && list_length(result) > ES_MAX_PROTECTED_DEPTH)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s \"%s\" is deeper than %d members", what, path,
						ES_MAX_PROTECTED_DEPTH)));
	if (!ok || result == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s \"%s\" is not a path to one member", what, path),
				 errdetail("A protected path names object members from the root, as $.email or $.address.street; it has no wildcards, array steps, filters or methods."),
				 errhint("Protect the whole object or array that holds the personal data: $.address rather than $.address.*.")));
	return result;
}

/*
 * MakePath fills a ProtectedPath in the current memory context.
 */
static void
MakePath(ProtectedPath *p, const char *text)
{
	List	   *keys = EsParseProtectedPath(text, "protected path");
	ListCell   *lc;
	int			i = 0;

	p->text = pstrdup(text);
	p->nkeys = list_length(keys);
	p->keys = palloc(p->nkeys * sizeof(char *));
	p->lens = palloc(p->nkeys * sizeof(int));
	foreach(lc, keys)
	{
		p->keys[i] = lfirst(lc);
		p->lens[i] = strlen(p->keys[i]);
		i++;
	}
}

/*
 * LoadPrivacy reads the protected types of an install.
 */
static void
LoadPrivacy(Oid namespace_oid)
{
	HASHCTL		ctl;
	Snapshot	snapshot;
	MemoryContext oldcxt;
	uint64		invalidations = privacy_invalidations;
	uint64		i;

	privacy_valid = false;
	if (privacy.cxt != NULL)
		MemoryContextDelete(privacy.cxt);
	memset(&privacy, 0, sizeof(privacy));
	privacy.namespace_oid = namespace_oid;
	privacy.types_relid = get_relname_relid("es_protected_types",
											namespace_oid);
	privacy.cxt = AllocSetContextCreate(CacheMemoryContext,
										"es_pg protected types",
										ALLOCSET_SMALL_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = ES_MAX_EVENT_TYPE_BYTES + 1;
	ctl.entrysize = sizeof(ProtectedType);
	ctl.hcxt = privacy.cxt;
	privacy.types = hash_create("es_pg protected types", 16, &ctl,
								HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	if (!OidIsValid(privacy.types_relid))
	{
		privacy_valid = invalidations == privacy_invalidations;
		return;
	}

	snapshot = RegisterSnapshot(GetLatestSnapshot());
	EsSpiConnect();
	if (EsExecute(&LoadStatement, namespace_oid,
				  EsRelationOwner(privacy.types_relid), NULL, NULL,
				  snapshot) != SPI_OK_SELECT)
		elog(ERROR, "could not read es_protected_types");
	oldcxt = MemoryContextSwitchTo(privacy.cxt);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *name = SPI_getvalue(row, desc, 1);
		Datum		d = SPI_getbinval(row, desc, 4, &isnull);
		ProtectedType *t;
		Datum	   *paths;
		int			npaths;
		int			j;

		privacy.access_fn = isnull ? InvalidOid : DatumGetObjectId(d);
		if (name == NULL || strlen(name) > ES_MAX_EVENT_TYPE_BYTES)
			continue;
		t = hash_search(privacy.types, name, HASH_ENTER, NULL);
		deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(row, desc, 2,
														   &isnull)),
						  TEXTOID, -1, false, TYPALIGN_INT, &paths, NULL,
						  &npaths);
		t->npaths = npaths;
		t->paths = palloc(npaths * sizeof(ProtectedPath));
		for (j = 0; j < npaths; j++)
			MakePath(&t->paths[j], TextDatumGetCString(paths[j]));
		MakePath(&t->subject, SPI_getvalue(row, desc, 3));
		privacy.ntypes++;
	}
	MemoryContextSwitchTo(oldcxt);
	SPI_finish();
	UnregisterSnapshot(snapshot);
	privacy_valid = invalidations == privacy_invalidations;
}

/*
 * EsPrivacyActive says whether an install has protected types.
 */
bool
EsPrivacyActive(Oid namespace_oid)
{
	if (!privacy_valid || privacy.namespace_oid != namespace_oid)
		LoadPrivacy(namespace_oid);
	return privacy.ntypes > 0;
}

/*
 * LookupType returns the protection of an event type, or NULL.
 */
static ProtectedType *
LookupType(Oid namespace_oid, const char *event_type, int len)
{
	char		name[ES_MAX_EVENT_TYPE_BYTES + 1];

	if (!EsPrivacyActive(namespace_oid) || len > ES_MAX_EVENT_TYPE_BYTES)
		return NULL;
	memcpy(name, event_type, len);
	name[len] = '\0';
	return hash_search(privacy.types, name, HASH_FIND, NULL);
}

/*
 * EsPrivacyTypeProtected says whether an event type (len bytes) is
 * protected.
 */
bool
EsPrivacyTypeProtected(Oid namespace_oid, const char *event_type, int len)
{
	return LookupType(namespace_oid, event_type, len) != NULL;
}

/*
 * EsPrivacyTypesRelid returns the OID of es_protected_types of an install.
 */
Oid
EsPrivacyTypesRelid(Oid namespace_oid)
{
	EsPrivacyActive(namespace_oid);
	return privacy.types_relid;
}

/*
 * EsPrivacyRevealAllowed says whether a role sees plain personal data:
 * whether it may execute es_personal_data_access().
 */
bool
EsPrivacyRevealAllowed(Oid namespace_oid, Oid reader)
{
	if (!EsPrivacyActive(namespace_oid))
		return false;
	if (privacy.reader != reader || !OidIsValid(reader))
	{
		privacy.reader_allowed = OidIsValid(privacy.access_fn) &&
			EsProcAclCheck(privacy.access_fn, reader, ACL_EXECUTE) == ACLCHECK_OK;
		privacy.reader = reader;
	}
	return privacy.reader_allowed;
}

/*
 * FindPath finds the value at a path; false when it is absent.
 */
static bool
FindPath(Jsonb *data, const ProtectedPath *p, JsonbValue *v)
{
	JsonbContainer *c = &data->root;
	int			i;

	for (i = 0; i < p->nkeys; i++)
	{
		if (!JsonContainerIsObject(c) ||
			getKeyJsonValueFromContainer(c, p->keys[i], p->lens[i], v) == NULL)
			return false;
		if (i < p->nkeys - 1)
		{
			if (v->type != jbvBinary)
				return false;
			c = v->val.binary.data;
		}
	}
	return true;
}

/*
 * PushReplacement pushes a value in place of another.
 */
static void PushMarker(JsonbParseState **st, const char *kind, int64 key_id,
					   const char *sealed, int sealed_len);

/*
 * What takes the place of the value at a path: a value, or a marker pushed
 * member by member (building it as a document first and unpacking it again
 * into the event's data cost more than the encryption).
 */
typedef struct Replacement
{
	Jsonb	   *value;			/* a value, or NULL */
	const char *kind;			/* a marker of this kind, or NULL */
	int64		key_id;
	const char *sealed;			/* the marker's base64, or NULL */
	int			sealed_len;
} Replacement;

#define REPLACES(r) ((r)->value != NULL || (r)->kind != NULL)

static JsonbValue *
PushReplacement(JsonbParseState **st, const Replacement *r)
{
	JsonbValue	v;
	Jsonb	   *value = r->value;

	if (value == NULL)
	{
		PushMarker(st, r->kind, r->key_id, r->sealed, r->sealed_len);
		return NULL;
	}
	if (JB_ROOT_IS_SCALAR(value))
		JsonbExtractScalar(&value->root, &v);
	else
	{
		v.type = jbvBinary;
		v.val.binary.data = &value->root;
		v.val.binary.len = VARSIZE(value) - VARHDRSZ;
	}
	return pushJsonbValue(st, WJB_VALUE, &v);
}

/*
 * MatchingPath returns the index of the path of a type that names the
 * member just read (keys[0..depth-1], every level an object), or -1.
 */
static int
MatchingPath(const ProtectedType *t, const Replacement *values, JsonbValue *keys,
			 const bool *isobj, int depth)
{
	int			i;
	int			j;

	for (i = 0; i < t->npaths; i++)
	{
		const ProtectedPath *p = &t->paths[i];

		if (!REPLACES(&values[i]) || p->nkeys != depth)
			continue;
		for (j = 0; j < depth; j++)
			if (!isobj[j] || keys[j].val.string.len != p->lens[j] ||
				memcmp(keys[j].val.string.val, p->keys[j], p->lens[j]) != 0)
				break;
		if (j == depth)
			return i;
	}
	return -1;
}

/*
 * ReplacePaths returns data with the value at each path of a type for
 * which values[i] is set replaced by it, in one pass over the document.
 */
static Jsonb *
ReplacePaths(Jsonb *data, const ProtectedType *t, const Replacement *values)
{
	JsonbIterator *it = JsonbIteratorInit(&data->root);
	JsonbParseState *st = NULL;
	JsonbValue	v;
	JsonbValue *res = NULL;
	JsonbValue	keys[ES_MAX_PROTECTED_DEPTH];
	bool		isobj[ES_MAX_PROTECTED_DEPTH];
	JsonbIteratorToken tok;
	int			depth = 0;

	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		int			i;

		switch (tok)
		{
			case WJB_BEGIN_OBJECT:
			case WJB_BEGIN_ARRAY:
				if (depth < ES_MAX_PROTECTED_DEPTH)
					isobj[depth] = tok == WJB_BEGIN_OBJECT;
				depth++;
				res = pushJsonbValue(&st, tok,
									 tok == WJB_BEGIN_ARRAY && v.val.array.rawScalar ?
									 &v : NULL);
				break;
			case WJB_END_OBJECT:
			case WJB_END_ARRAY:
				depth--;
				res = pushJsonbValue(&st, tok, NULL);
				break;
			case WJB_KEY:
				res = pushJsonbValue(&st, WJB_KEY, &v);
				if (depth > ES_MAX_PROTECTED_DEPTH)
					break;
				keys[depth - 1] = v;
				i = MatchingPath(t, values, keys, isobj, depth);
				if (i < 0)
					break;
				/* the member's value: skip it whole, push the replacement */
				tok = JsonbIteratorNext(&it, &v, false);
				if (tok == WJB_BEGIN_OBJECT || tok == WJB_BEGIN_ARRAY)
				{
					int			level = 1;

					while (level > 0)
					{
						tok = JsonbIteratorNext(&it, &v, false);
						if (tok == WJB_BEGIN_OBJECT || tok == WJB_BEGIN_ARRAY)
							level++;
						else if (tok == WJB_END_OBJECT || tok == WJB_END_ARRAY)
							level--;
					}
				}
				res = PushReplacement(&st, &values[i]);
				break;
			default:
				res = pushJsonbValue(&st, tok, &v);
				break;
		}
	}
	return JsonbValueToJsonb(res);
}

static const char b64_chars[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* the length of the base64 of n bytes */
#define B64_LEN(n)	(((n) + 2) / 3 * 4)

/*
 * B64Encode writes the base64 (RFC 4648, padded, no line breaks) of len
 * bytes to dst, B64_LEN(len) characters.
 */
static void
B64Encode(const uint8 *src, int len, char *dst)
{
	int			i;

	for (i = 0; i + 2 < len; i += 3)
	{
		uint32		w = (src[i] << 16) | (src[i + 1] << 8) | src[i + 2];

		*dst++ = b64_chars[(w >> 18) & 63];
		*dst++ = b64_chars[(w >> 12) & 63];
		*dst++ = b64_chars[(w >> 6) & 63];
		*dst++ = b64_chars[w & 63];
	}
	if (i < len)
	{
		uint32		w = src[i] << 16;

		if (i + 1 < len)
			w |= src[i + 1] << 8;
		*dst++ = b64_chars[(w >> 18) & 63];
		*dst++ = b64_chars[(w >> 12) & 63];
		*dst++ = i + 1 < len ? b64_chars[(w >> 6) & 63] : '=';
		*dst++ = '=';
	}
}

/*
 * B64Decode decodes len characters of base64 into dst and returns the
 * number of bytes, or -1 for text that is not base64.
 */
static int
B64Decode(const char *src, int len, uint8 *dst)
{
	int			n = 0;
	int			i;

	if (len % 4 != 0)
		return -1;
	for (i = 0; i < len; i += 4)
	{
		uint32		w = 0;
		int			pad = 0;
		int			j;

		for (j = 0; j < 4; j++)
		{
			char		c = src[i + j];
			const char *at;

			w <<= 6;
			if (c == '=' && i + 4 == len && j >= 2)
			{
				pad++;
				continue;
			}
			if (pad > 0 || c == '\0' || (at = strchr(b64_chars, c)) == NULL)
				return -1;
			w |= at - b64_chars;
		}
		dst[n++] = (w >> 16) & 0xff;
		if (pad < 2)
			dst[n++] = (w >> 8) & 0xff;
		if (pad < 1)
			dst[n++] = w & 0xff;
	}
	return n;
}

/*
 * PushString and PushKey add members to an object under construction.
 */
static void
PushKey(JsonbParseState **st, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(st, WJB_KEY, &k);
}

static void
PushString(JsonbParseState **st, const char *key, const char *val, int len)
{
	JsonbValue	v;

	PushKey(st, key);
	v.type = jbvString;
	v.val.string.val = (char *) val;
	v.val.string.len = len;
	pushJsonbValue(st, WJB_VALUE, &v);
}

/*
 * PushMarker pushes {"es_pg": kind, "key": id} and, for a ciphertext, its
 * "sealed" base64, as the value of the member being built.
 */
static void
PushMarker(JsonbParseState **st, const char *kind, int64 key_id,
		   const char *sealed, int sealed_len)
{
	JsonbValue	v;

	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	PushString(st, "es_pg", kind, strlen(kind));
	PushKey(st, "key");
	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(key_id);
	pushJsonbValue(st, WJB_VALUE, &v);
	if (sealed != NULL)
		PushString(st, "sealed", sealed, sealed_len);
	pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

/*
 * ParseMarker says whether a value is a ciphertext marker, and returns its
 * key id and sealed base64.
 */
static bool
ParseMarker(JsonbValue *v, int64 *key_id, char **sealed, int *sealed_len)
{
	JsonbContainer *c;
	JsonbValue	f;
	bool		ok;

	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data) ||
		JsonContainerSize(v->val.binary.data) != 3)
		return false;
	c = v->val.binary.data;
	if (getKeyJsonValueFromContainer(c, "es_pg", 5, &f) == NULL ||
		f.type != jbvString || f.val.string.len != 9 ||
		memcmp(f.val.string.val, "encrypted", 9) != 0)
		return false;
	if (getKeyJsonValueFromContainer(c, "key", 3, &f) == NULL ||
		f.type != jbvNumeric)
		return false;
	*key_id = DatumGetInt64(DirectFunctionCall1(numeric_int8,
												NumericGetDatum(f.val.numeric)));
	if (getKeyJsonValueFromContainer(c, "sealed", 6, &f) == NULL ||
		f.type != jbvString)
		return false;
	ok = f.val.string.len >= B64_LEN(ES_SEALED_OVERHEAD + VARHDRSZ) &&
		f.val.string.len % 4 == 0;
	*sealed = f.val.string.val;
	*sealed_len = f.val.string.len;
	return ok;
}

/*
 * ValueAad builds what a value's encryption is bound to.
 */
static int
ValueAad(int64 key_id, const pg_uuid_t *event_id, const ProtectedPath *p,
		 uint8 **aad)
{
	int			n = sizeof(VALUE_CONTEXT) + 8 + UUID_LEN + strlen(p->text);
	uint8	   *b = palloc(n);
	uint64		id = pg_hton64((uint64) key_id);

	memcpy(b, VALUE_CONTEXT, sizeof(VALUE_CONTEXT));
	memcpy(b + sizeof(VALUE_CONTEXT), &id, 8);
	memcpy(b + sizeof(VALUE_CONTEXT) + 8, event_id->data, UUID_LEN);
	memcpy(b + sizeof(VALUE_CONTEXT) + 8 + UUID_LEN, p->text, strlen(p->text));
	*aad = b;
	return n;
}

/*
 * SubjectOf returns the subject an event of a protected type names (a
 * string, or a number as text), or raises the 22023 error.
 */
static char *
SubjectOf(ProtectedType *t, Jsonb *data, int *len, int batch_index)
{
	JsonbValue	v;
	char	   *s = NULL;

	if (FindPath(data, &t->subject, &v))
	{
		if (v.type == jbvString)
		{
			s = v.val.string.val;
			*len = v.val.string.len;
		}
		else if (v.type == jbvNumeric)
		{
			s = DatumGetCString(DirectFunctionCall1(numeric_out,
													NumericGetDatum(v.val.numeric)));
			*len = strlen(s);
		}
	}
	if (s == NULL || *len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event of protected type \"%s\" names no data subject",
						t->key),
				 errdetail("Its data has no non-empty string or number at %s.",
						   t->subject.text),
				 errhint("Every event of a protected type names the person its personal data is about at the subject path given to es_protect."),
				 EsBatchContext(batch_index)));
	if (*len > ES_MAX_SUBJECT_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("data subject of an event of protected type \"%s\" is too long",
						t->key),
				 errdetail("It takes %d bytes; the limit is %d.", *len,
						   ES_MAX_SUBJECT_BYTES),
				 EsBatchContext(batch_index)));
	return s;
}

/*
 * EsPrivacyProtect returns the data of an event to append with the
 * personal data of its type encrypted under its subject's key (the data
 * itself when the type is not protected).
 */
Jsonb *
EsPrivacyProtect(Oid namespace_oid, text *event_type, Jsonb *data,
				 const pg_uuid_t *event_id, int batch_index)
{
	ProtectedType *t = LookupType(namespace_oid, VARDATA_ANY(event_type),
								  VARSIZE_ANY_EXHDR(event_type));
	EsSubjectKey key;
	char	   *subject;
	int			subject_len;
	Replacement *values;
	bool		changed = false;
	int			i;

	if (t == NULL)
		return data;
	subject = SubjectOf(t, data, &subject_len, batch_index);
	key = *EsSubjectKeyForAppend(namespace_oid, subject, subject_len);
	values = palloc0(t->npaths * sizeof(Replacement));
	for (i = 0; i < t->npaths; i++)
	{
		ProtectedPath *p = &t->paths[i];
		JsonbValue	v;
		Jsonb	   *plain;
		uint8	   *aad;
		int			aadlen;
		int			len;
		uint8	   *sealed;
		char	   *hex;

		if (!FindPath(data, p, &v) || v.type == jbvNull)
			continue;
		plain = JsonbValueToJsonb(&v);
		len = VARSIZE(plain) - VARHDRSZ;
		aadlen = ValueAad(key.key_id, event_id, p, &aad);
		sealed = palloc(len + ES_SEALED_OVERHEAD);
		EsSealBytes(key.key, aad, aadlen, (uint8 *) VARDATA(plain), len,
					sealed);
		hex = palloc(B64_LEN(len + ES_SEALED_OVERHEAD));
		B64Encode(sealed, len + ES_SEALED_OVERHEAD, hex);
		/* the marker refers to hex until ReplacePaths has copied it */
		values[i].kind = "encrypted";
		values[i].key_id = key.key_id;
		values[i].sealed = hex;
		values[i].sealed_len = B64_LEN(len + ES_SEALED_OVERHEAD);
		changed = true;
		pfree(sealed);
		pfree(aad);
	}
	if (changed)
		data = ReplacePaths(data, t, values);
	explicit_bzero(&key, sizeof(key));
	return data;
}

/*
 * OpenValue decrypts the value of a marker, or raises the XX001 error of a
 * marker that does not authenticate.
 */
static Jsonb *
OpenValue(const EsSubjectKey *key, const pg_uuid_t *event_id,
		  const ProtectedPath *p, const char *b64, int b64len,
		  int64 position)
{
	uint8	   *sealed = palloc(b64len / 4 * 3);
	int			len = B64Decode(b64, b64len, sealed);
	Jsonb	   *plain = NULL;
	uint8	   *aad;
	int			aadlen = ValueAad(key->key_id, event_id, p, &aad);

	if (len >= ES_SEALED_OVERHEAD + (int) VARHDRSZ)
	{
		plain = palloc(VARHDRSZ + len - ES_SEALED_OVERHEAD);
		SET_VARSIZE(plain, VARHDRSZ + len - ES_SEALED_OVERHEAD);
	}
	if (len < ES_SEALED_OVERHEAD + (int) VARHDRSZ ||
		!EsOpenBytes(key->key, aad, aadlen, sealed, len,
					 (uint8 *) VARDATA(plain)))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the ciphertext at %s of the event at global position %lld does not decrypt",
						p->text, (long long) position),
				 errdetail("It was not made for this event and path with subject key %lld, or it was changed.",
						   (long long) key->key_id),
				 errhint("es_verify finds events changed after they were sealed.")));
	pfree(sealed);
	pfree(aad);
	return plain;
}

/*
 * EsPrivacyReveal returns an event as a reader sees it: with plain values
 * when the reader may see them, ciphertext markers otherwise, and
 * forgotten markers where the subject's key was destroyed.  It returns the
 * tuple itself when nothing changes, else a new tuple in the current
 * memory context.
 */
HeapTuple
EsPrivacyReveal(Oid namespace_oid, HeapTuple tuple, TupleDesc tupdesc,
				Oid reader)
{
	ProtectedType *t;
	bool		isnull;
	Datum		d;
	Jsonb	   *data;
	pg_uuid_t  *event_id;
	int64		position;
	int			reveal = -1;
	bool		changed = false;
	int			i;
	Replacement *values;
	Datum		newdata[1];
	bool		nulls[1] = {false};
	int			cols[1] = {Anum_es_events_data};
	HeapTuple	result;
	const char *type;
	int			typelen;

	type = EsEventTypeOf(tuple, tupdesc, &typelen);
	if (type == NULL)
		return tuple;
	t = LookupType(namespace_oid, type, typelen);
	if (t == NULL)
		return tuple;
	d = heap_getattr(tuple, Anum_es_events_data, tupdesc, &isnull);
	if (isnull)
		return tuple;
	data = DatumGetJsonbP(d);
	event_id = DatumGetUUIDP(heap_getattr(tuple, Anum_es_events_event_id,
										  tupdesc, &isnull));
	position = DatumGetInt64(heap_getattr(tuple, Anum_es_events_global_position,
										  tupdesc, &isnull));
	values = palloc0(t->npaths * sizeof(Replacement));
	for (i = 0; i < t->npaths; i++)
	{
		ProtectedPath *p = &t->paths[i];
		JsonbValue	v;
		int64		key_id;
		char	   *hex;
		int			hexlen;
		EsSubjectKey key;

		if (!FindPath(data, p, &v) ||
			!ParseMarker(&v, &key_id, &hex, &hexlen))
			continue;
		if (reveal < 0)
			reveal = EsPrivacyRevealAllowed(namespace_oid, reader) ? 1 : 0;
		key = *EsSubjectKeyById(namespace_oid, key_id, reveal == 1);
		if (key.forgotten)
		{
			values[i].kind = "forgotten";
			values[i].key_id = key_id;
		}
		else if (reveal == 1)
			values[i].value = OpenValue(&key, event_id, p, hex, hexlen,
										position);
		else
			continue;
		explicit_bzero(&key, sizeof(key));
		changed = true;
	}
	if (!changed)
		return tuple;
	newdata[0] = JsonbPGetDatum(ReplacePaths(data, t, values));
	result = heap_modify_tuple_by_cols(tuple, tupdesc, 1, cols, newdata, nulls);
	result->t_self = tuple->t_self;
	result->t_tableOid = tuple->t_tableOid;
	return result;
}

/*
 * EsPrivacyFoldDigest folds into the hex digest of a snapshot whether the
 * fold sees plain personal data or ciphertext, so that a snapshot folded
 * from plain values is never served to a reader who may not see them.
 * Installs without protected types keep their digests.
 */
void
EsPrivacyFoldDigest(Oid namespace_oid, Oid reader, char *hex)
{
	pg_cryptohash_ctx *ctx;
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	const char *what;

	if (!EsPrivacyActive(namespace_oid))
		return;
	what = EsPrivacyRevealAllowed(namespace_oid, reader) ?
		"es_pg privacy 1: plain" : "es_pg privacy 1: ciphertext";
	ctx = pg_cryptohash_create(PG_SHA256);
	if (ctx == NULL || pg_cryptohash_init(ctx) < 0)
		elog(ERROR, "could not compute a SHA-256 digest");
	EsDigestUpdate(ctx, hex, strlen(hex));
	EsDigestUpdate(ctx, what, strlen(what));
	if (pg_cryptohash_final(ctx, digest, PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "could not compute a SHA-256 digest");
	pg_cryptohash_free(ctx);
	hex_encode((const char *) digest, PG_SHA256_DIGEST_LENGTH, hex);
	hex[PG_SHA256_DIGEST_STRING_LENGTH - 1] = '\0';
}

/*
 * EsPrivacyHidesSnapshots says whether es_load_snapshot must hide the
 * snapshots es_aggregate folded from the current role: the install has
 * protected types and the role may not see plain personal data.
 */
bool
EsPrivacyHidesSnapshots(Oid namespace_oid)
{
	return EsPrivacyActive(namespace_oid) &&
		!EsPrivacyRevealAllowed(namespace_oid, GetUserId());
}

/*
 * CheckDirectRow raises the 23514 error for a row inserted directly whose
 * personal data is not encrypted.
 */
static void
CheckDirectRow(ProtectedType *t, int64 position, Jsonb *data)
{
	JsonbValue	v;
	int			i;
	int			len;
	int64		key_id;
	char	   *hex;

	(void) SubjectOf(t, data, &len, -1);
	for (i = 0; i < t->npaths; i++)
	{
		if (!FindPath(data, &t->paths[i], &v) || v.type == jbvNull ||
			ParseMarker(&v, &key_id, &hex, &len))
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("event at global position %lld of protected type \"%s\" holds personal data in plain text",
						(long long) position, t->key),
				 errdetail("The value at %s is not an es_pg ciphertext.",
						   t->paths[i].text),
				 errhint("Append events of protected types with es_append or es_append_batch, which encrypt them; a restore brings the ciphertext, and es_subject_keys, with it.")));
	}
}

/*
 * EsPrivacyCheckDirect checks the rows of protected types that a
 * direct-insert window wrote (above its floor) at commit.  The caller is
 * connected to SPI.
 */
void
EsPrivacyCheckDirect(Oid namespace_oid, Oid events_relid, int64 floor)
{
	HASH_SEQ_STATUS seq;
	ProtectedType *t;
	char	   *sql;
	Oid			argtypes[2] = {INT8OID, TEXTOID};
	Datum		values[2];

	if (!EsPrivacyActive(namespace_oid))
		return;
	sql = psprintf("SELECT e.global_position, e.data FROM %s.es_events e"
				   " WHERE e.global_position OPERATOR(pg_catalog.>) $1"
				   " AND e.event_type OPERATOR(pg_catalog.=) $2",
				   quote_identifier(get_namespace_name(namespace_oid)));
	values[0] = Int64GetDatum(floor);
	hash_seq_init(&seq, privacy.types);
	while ((t = hash_seq_search(&seq)) != NULL)
	{
		uint64		i;

		values[1] = CStringGetTextDatum(t->key);
		EsRunAsOwner(events_relid, sql, 2, argtypes, values, NULL, true, 0);
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			HeapTuple	row = SPI_tuptable->vals[i];

			CheckDirectRow(t,
						   DatumGetInt64(SPI_getbinval(row, SPI_tuptable->tupdesc,
													   1, &isnull)),
						   DatumGetJsonbP(SPI_getbinval(row, SPI_tuptable->tupdesc,
														2, &isnull)));
		}
	}
}

/*
 * PrivacyRelcacheCallback forgets the protected types when their table
 * changes; PrivacySyscacheCallback forgets the privilege answer when a
 * function, a role or a membership changes.
 */
static void
PrivacyRelcacheCallback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == privacy.types_relid)
	{
		privacy_valid = false;
		privacy_invalidations++;
	}
}

static void
PrivacySyscacheCallback(Datum arg, int cacheid, uint32 hashvalue)
{
	privacy.reader = InvalidOid;
}

/*
 * es_privacy_changed is the statement trigger of es_protected_types and
 * es_subject_keys: a change resets the caches of every backend.
 */
PG_FUNCTION_INFO_V1(es_privacy_changed);
Datum
es_privacy_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = EsCheckTriggerCall(fcinfo, "es_privacy_changed");

	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event))
		EsTriggerMisfired("es_privacy_changed",
						  "AFTER ... FOR EACH STATEMENT");
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	return PointerGetDatum(NULL);
}

/*
 * es_personal_data_access is the object whose EXECUTE privilege lets a
 * role see plain personal data: it says whether the current role does.
 */
PG_FUNCTION_INFO_V1(es_personal_data_access);
Datum
es_personal_data_access(PG_FUNCTION_ARGS)
{
	const EsCatalog *cat = EsGetCatalogForFunction(fcinfo);

	PG_RETURN_BOOL(!EsPrivacyActive(cat->namespace_oid) ||
				   EsPrivacyRevealAllowed(cat->namespace_oid, GetUserId()));
}

/*
 * EsInitPrivacy registers the callbacks and es_pg.master_key_file; called
 * from _PG_init.
 */
void
EsInitPrivacy(void)
{
	CacheRegisterRelcacheCallback(PrivacyRelcacheCallback, (Datum) 0);
	CacheRegisterSyscacheCallback(PROCOID, PrivacySyscacheCallback, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, PrivacySyscacheCallback, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, PrivacySyscacheCallback,
								  (Datum) 0);
	EsInitPrivacyKeys();
}
