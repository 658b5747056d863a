/*-------------------------------------------------------------------------
 *
 * privkeys.c
 *	  Crypto-shredding keys: the master key file named by
 *	  es_pg.master_key_file, AES-256-GCM through OpenSSL's EVP interface,
 *	  the subject keys of es_subject_keys and their per-backend cache.
 *
 * Every data subject has a key of its own, made of random bytes when an
 * event of a protected type first names the subject, and stored in
 * es_subject_keys wrapped (AES-256-GCM) by a master key that never enters
 * the database: it lives in a file that only the server's OS user may read.
 * The file holds one or more keys, one per line, "<id> <64 hex digits>";
 * the last line is the newest key, which wraps new subject keys and which
 * es_rotate_master_key rewraps the others under.  Each wrapped key records
 * the id of the master key that wrapped it.
 *
 * The file is read when a subject key must be wrapped or unwrapped and is
 * not in the cache, and read again when its name, inode, size or time of
 * change differ from the copy held (a reload, an edit).
 *
 * Unwrapped subject keys are cached per backend.  The cache is dropped when
 * es_subject_keys is updated, deleted from or truncated (es_forget_subject,
 * es_rotate_master_key: the statement trigger es_privacy_changed sends a
 * relcache invalidation that every backend receives before its next
 * transaction reads), and when a transaction or subtransaction aborts (it
 * may have cached a key it created and never committed).  Keys are zeroed
 * before their memory is freed.
 *
 * IDENTIFICATION
 *	  src/privkeys.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "access/stratnum.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/fmgroids.h"
#include "utils/snapmgr.h"

#include "privacy.h"
#include "common.h"

/* the most master keys one file may hold */
#define ES_MAX_MASTER_KEYS	16

/* what wrapping binds a subject key to, besides the subject */
#define WRAP_CONTEXT		"es_pg subject key 1"

/* what the check value of a master key is bound to, besides its id */
#define CHECK_CONTEXT		"es_pg master key check 1"

/* es_pg.master_key_file */
char	   *es_master_key_file = NULL;

/* one master key of the file */
typedef struct MasterKey
{
	char		id[ES_MAX_MASTER_KEY_ID + 1];
	uint8		key[ES_KEY_BYTES];
	Oid			verified;		/* install whose es_master_keys it matched */
} MasterKey;

/* the master key file as last read */
static struct
{
	bool		loaded;
	char		path[MAXPGPATH];
	dev_t		dev;
	ino_t		ino;
	off_t		size;
	time_t		mtime;
	time_t		ctime;
	int			nkeys;
	MasterKey	keys[ES_MAX_MASTER_KEYS];
}			master;

/* an entry of the cache by subject */
typedef struct SubjectEntry
{
	char		subject[ES_MAX_SUBJECT_BYTES + 1];	/* hash key */
	EsSubjectKey key;
} SubjectEntry;

/* an entry of the cache by key id */
typedef struct KeyEntry
{
	int64		key_id;			/* hash key */
	EsSubjectKey key;
} KeyEntry;

/* the caches of unwrapped subject keys, for one install */
static struct
{
	Oid			namespace_oid;
	Oid			keys_relid;
	Oid			live_index;		/* es_subject_keys_live_idx (subject) */
	Oid			pkey_index;		/* es_subject_keys_pkey (key_id) */
	MemoryContext cxt;
	HTAB	   *by_subject;
	HTAB	   *by_id;
}			keys;

/* set by invalidations and aborts: drop the caches before the next use */
static bool keys_stale = true;

static const EsStatement InsertKeyStatement = {
	"INSERT INTO @extschema@.es_subject_keys AS k (subject, master_key, wrapped)"
	" VALUES ($1, $2, $3)"
	" ON CONFLICT (subject) WHERE forgotten_at IS NULL"
	" DO UPDATE SET subject = k.subject"
	" RETURNING key_id, master_key, wrapped",
	3, {TEXTOID, TEXTOID, BYTEAOID}, true
};

static const EsStatement MasterCheckStatement = {
	"SELECT check_value FROM @extschema@.es_master_keys"
	" WHERE master_key OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}, false
};

static const EsStatement RegisterMasterStatement = {
	"INSERT INTO @extschema@.es_master_keys (master_key, check_value)"
	" VALUES ($1, $2) ON CONFLICT (master_key) DO NOTHING",
	2, {TEXTOID, BYTEAOID}, false
};

static const EsStatement RewrapListStatement = {
	"SELECT key_id, subject, master_key, wrapped"
	" FROM @extschema@.es_subject_keys"
	" WHERE forgotten_at IS NULL AND master_key OPERATOR(pg_catalog.<>) $1"
	" ORDER BY key_id FOR UPDATE",
	1, {TEXTOID}, false
};

static const EsStatement RewrapStatement = {
	"UPDATE @extschema@.es_subject_keys SET master_key = $2, wrapped = $3"
	" WHERE key_id OPERATOR(pg_catalog.=) $1",
	3, {INT8OID, TEXTOID, BYTEAOID}, false
};

/*
 * MasterKeyError raises the F0000 error of a master key file that cannot
 * be used.
 */
static void
MasterKeyError(const char *message, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_CONFIG_FILE_ERROR),
			 errmsg("%s", message),
			 detail ? errdetail("%s", detail) : 0,
			 errhint("A superuser sets es_pg.master_key_file in postgresql.conf to a file that only the server's OS user can read, holding lines \"<id> <64 hex digits>\", and reloads the configuration (docs/privacy.md).")));
}

/*
 * ParseKeyLine reads one line of the key file into a key; false for a line
 * that is empty or a comment.
 */
static bool
ParseKeyLine(char *line, int lineno, MasterKey *key)
{
	char	   *p = line;
	char	   *id;
	char	   *hex;
	size_t		idlen;
	size_t		hexlen;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0' || *p == '\n' || *p == '\r' || *p == '#')
		return false;
	id = p;
	while (*p != '\0' && *p != ' ' && *p != '\t')
		p++;
	idlen = p - id;
	while (*p == ' ' || *p == '\t')
		p++;
	hex = p;
	while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
		   (*p >= 'A' && *p <= 'F'))
		p++;
	hexlen = p - hex;
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	if (idlen == 0 || idlen > ES_MAX_MASTER_KEY_ID ||
		hexlen != 2 * ES_KEY_BYTES || *p != '\0')
		MasterKeyError(psprintf("line %d of master key file \"%s\" is not \"<id> <64 hex digits>\"",
								lineno, es_master_key_file), NULL);
	memcpy(key->id, id, idlen);
	key->id[idlen] = '\0';
	hex_decode(hex, hexlen, (char *) key->key);
	return true;
}

/*
 * LoadMasterKeys makes sure that the master keys of the file that
 * es_pg.master_key_file names are in memory, or raises an F0000 error.
 */
static void
LoadMasterKeys(void)
{
	struct stat st;
	FILE	   *file;
	char		line[512];
	int			lineno = 0;
	int			nkeys = 0;
	MasterKey  *parsed;

	if (es_master_key_file == NULL || es_master_key_file[0] == '\0')
		MasterKeyError("es_pg.master_key_file is not set",
					   "Events of protected types need the master key to wrap and unwrap the keys of their subjects.");
	if (stat(es_master_key_file, &st) != 0)
		MasterKeyError(psprintf("could not open master key file \"%s\": %m",
								es_master_key_file), NULL);
	if (master.loaded && strcmp(master.path, es_master_key_file) == 0 &&
		master.dev == st.st_dev && master.ino == st.st_ino &&
		master.size == st.st_size && master.mtime == st.st_mtime &&
		master.ctime == st.st_ctime)
		return;
	if (!S_ISREG(st.st_mode))
		MasterKeyError(psprintf("master key file \"%s\" is not a regular file",
								es_master_key_file), NULL);
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		MasterKeyError(psprintf("master key file \"%s\" is accessible to other users",
								es_master_key_file),
					   "Its permissions must let only its owner read it (chmod 0600 or 0400).");

	file = AllocateFile(es_master_key_file, "r");
	if (file == NULL)
		MasterKeyError(psprintf("could not open master key file \"%s\": %m",
								es_master_key_file), NULL);
	parsed = palloc0(ES_MAX_MASTER_KEYS * sizeof(MasterKey));
	PG_TRY();
	{
		while (fgets(line, sizeof(line), file) != NULL)
		{
			lineno++;
			if (nkeys == ES_MAX_MASTER_KEYS)
				MasterKeyError(psprintf("master key file \"%s\" holds more than %d keys",
										es_master_key_file, ES_MAX_MASTER_KEYS),
							   NULL);
			if (ParseKeyLine(line, lineno, &parsed[nkeys]))
				nkeys++;
		}
	}
	PG_FINALLY();
	{
		explicit_bzero(line, sizeof(line));
		FreeFile(file);
	}
	PG_END_TRY();
	if (nkeys == 0)
	{
		pfree(parsed);
		MasterKeyError(psprintf("master key file \"%s\" holds no key",
								es_master_key_file), NULL);
	}

	explicit_bzero(&master, sizeof(master));
	memcpy(master.keys, parsed, nkeys * sizeof(MasterKey));
	explicit_bzero(parsed, ES_MAX_MASTER_KEYS * sizeof(MasterKey));
	pfree(parsed);
	master.nkeys = nkeys;
	strlcpy(master.path, es_master_key_file, MAXPGPATH);
	master.dev = st.st_dev;
	master.ino = st.st_ino;
	master.size = st.st_size;
	master.mtime = st.st_mtime;
	master.ctime = st.st_ctime;
	master.loaded = true;
}

/*
 * CheckAad builds what the check value of a master key is bound to.
 */
static int
CheckAad(const MasterKey *mk, uint8 *aad)
{
	int			n = sizeof(CHECK_CONTEXT);

	memcpy(aad, CHECK_CONTEXT, n);
	memcpy(aad + n, mk->id, strlen(mk->id));
	return n + strlen(mk->id);
}

/*
 * VerifyMasterKey makes sure that a master key is the one the install
 * knows under its id: es_master_keys holds, for every id ever used, a
 * check value (an AES-256-GCM tag under the key) made when the id was
 * first used.  A file that holds another key under a known id is an F0000
 * error before anything is wrapped or unwrapped with it.
 */
static void
VerifyMasterKey(Oid namespace_oid, MasterKey *mk)
{
	Oid			relid = get_relname_relid("es_master_keys", namespace_oid);
	Oid			owner;
	Datum		values[2];
	uint8		aad[sizeof(CHECK_CONTEXT) + ES_MAX_MASTER_KEY_ID];
	int			aadlen = CheckAad(mk, aad);
	bytea	   *check;
	bool		isnull;
	bool		ok;
	Snapshot	snapshot;

	if (mk->verified == namespace_oid || !OidIsValid(relid))
		return;
	owner = EsRelationOwner(relid);
	values[0] = CStringGetTextDatum(mk->id);
	EsSpiConnect();
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	if (EsExecute(&MasterCheckStatement, namespace_oid, owner, values, NULL,
				  snapshot) != SPI_OK_SELECT)
		elog(ERROR, "could not read es_master_keys");
	UnregisterSnapshot(snapshot);
	if (SPI_processed == 0)
	{
		check = palloc(VARHDRSZ + ES_SEALED_OVERHEAD);
		SET_VARSIZE(check, VARHDRSZ + ES_SEALED_OVERHEAD);
		EsSealBytes(mk->key, aad, aadlen, NULL, 0, (uint8 *) VARDATA(check));
		values[1] = PointerGetDatum(check);
		if (EsExecute(&RegisterMasterStatement, namespace_oid, owner, values,
					  NULL, InvalidSnapshot) != SPI_OK_INSERT ||
			EsExecute(&MasterCheckStatement, namespace_oid, owner, values,
					  NULL, InvalidSnapshot) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "could not register a master key");
	}
	check = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull));
	ok = !isnull && VARSIZE_ANY_EXHDR(check) == ES_SEALED_OVERHEAD &&
		EsOpenBytes(mk->key, aad, aadlen, (const uint8 *) VARDATA_ANY(check),
					ES_SEALED_OVERHEAD, NULL);
	SPI_finish();
	if (!ok)
		MasterKeyError(psprintf("master key \"%s\" of master key file \"%s\" is not the key this database knows under that id",
								mk->id, es_master_key_file),
					   "The subject keys it wraps would not unwrap: nothing was written, and the keys become usable again with the right file.");
	mk->verified = namespace_oid;
}

/*
 * FindMasterKey returns the verified master key with an id, or NULL.
 */
static const MasterKey *
FindMasterKey(Oid namespace_oid, const char *id)
{
	int			i;

	LoadMasterKeys();
	for (i = 0; i < master.nkeys; i++)
		if (strcmp(master.keys[i].id, id) == 0)
		{
			VerifyMasterKey(namespace_oid, &master.keys[i]);
			return &master.keys[i];
		}
	return NULL;
}

/*
 * NewestMasterKey returns the last key of the file, verified.
 */
static const MasterKey *
NewestMasterKey(Oid namespace_oid)
{
	LoadMasterKeys();
	VerifyMasterKey(namespace_oid, &master.keys[master.nkeys - 1]);
	return &master.keys[master.nkeys - 1];
}

/*
 * EsCheckMasterKeys raises the F0000 error when the master key file cannot
 * be used.
 */
void
EsCheckMasterKeys(Oid namespace_oid)
{
	(void) NewestMasterKey(namespace_oid);
}

/*
 * A cipher context of OpenSSL, and the key it was last set up with: the
 * values of one event share their subject's key, and setting a context up
 * for a key (the AES key schedule, GCM's hash key) is the expensive part of
 * a short encryption.  One context seals, one opens.  ForgetCipherKeys
 * cleanses both when the key caches go.
 */
typedef struct CipherState
{
	EVP_CIPHER_CTX *ctx;
	bool		ciphered;		/* ctx set up for AES-256-GCM */
	bool		keyed;
	uint8		key[ES_KEY_BYTES];
} CipherState;

static CipherState seal_state;
static CipherState open_state;

static void
ForgetCipherKeys(void)
{
	CipherState *states[2] = {&seal_state, &open_state};
	int			i;

	for (i = 0; i < 2; i++)
	{
		if (states[i]->ctx != NULL)
			EVP_CIPHER_CTX_reset(states[i]->ctx);
		states[i]->ciphered = false;
		states[i]->keyed = false;
		explicit_bzero(states[i]->key, ES_KEY_BYTES);
	}
}

/*
 * CipherInit sets a context up for a key and a nonce, the key only when it
 * changed.  The cipher is named once per context: naming it again with each
 * new key makes OpenSSL 3 look its implementation up among the providers
 * (names compared under locks) every time, which cost more than the
 * encryption when consecutive events name different subjects.
 */
static bool
CipherInit(CipherState *st, bool encrypt, const uint8 *key, const uint8 *nonce)
{
	if (st->ctx == NULL)
	{
		st->ctx = EVP_CIPHER_CTX_new();
		if (st->ctx == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory"),
					 errdetail("OpenSSL could not make a cipher context.")));
	}
	if (st->keyed && memcmp(st->key, key, ES_KEY_BYTES) == 0)
		return EVP_CipherInit_ex(st->ctx, NULL, NULL, NULL, nonce,
								 encrypt ? 1 : 0) == 1;
	st->keyed = false;
	if (!st->ciphered)
	{
		if (EVP_CipherInit_ex(st->ctx, EVP_aes_256_gcm(), NULL, NULL, NULL,
							  encrypt ? 1 : 0) != 1)
			return false;
		st->ciphered = true;
	}
	if (EVP_CipherInit_ex(st->ctx, NULL, NULL, key, nonce,
						  encrypt ? 1 : 0) != 1)
		return false;
	memcpy(st->key, key, ES_KEY_BYTES);
	st->keyed = true;
	return true;
}

/*
 * EsSealBytes encrypts len bytes with AES-256-GCM under a key, binding
 * aad, into out: a random nonce, the ciphertext and the tag
 * (len + ES_SEALED_OVERHEAD bytes).
 */
void
EsSealBytes(const uint8 *key, const uint8 *aad, int aadlen,
			const uint8 *plain, int len, uint8 *out)
{
	EVP_CIPHER_CTX *ctx;
	int			n = 0;
	int			fin = 0;

	EsRandomBytes(out, ES_NONCE_BYTES);
	if (!CipherInit(&seal_state, true, key, out))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("AES-256-GCM encryption failed in OpenSSL")));
	ctx = seal_state.ctx;
	if ((aadlen > 0 && EVP_EncryptUpdate(ctx, NULL, &n, aad, aadlen) != 1) ||
		(len > 0 &&
		 EVP_EncryptUpdate(ctx, out + ES_NONCE_BYTES, &n, plain, len) != 1) ||
		EVP_EncryptFinal_ex(ctx, out + ES_NONCE_BYTES + n, &fin) != 1 ||
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, ES_TAG_BYTES,
							out + ES_NONCE_BYTES + len) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("AES-256-GCM encryption failed in OpenSSL")));
}

/*
 * EsOpenBytes decrypts what EsSealBytes made (len bytes, overhead
 * included) into out (len - ES_SEALED_OVERHEAD bytes); false when it does
 * not authenticate under this key and aad.
 */
bool
EsOpenBytes(const uint8 *key, const uint8 *aad, int aadlen,
			const uint8 *sealed, int len, uint8 *out)
{
	EVP_CIPHER_CTX *ctx;
	int			plainlen = len - ES_SEALED_OVERHEAD;
	int			n = 0;
	int			fin = 0;
	uint8		tail[ES_TAG_BYTES];

	if (plainlen < 0)
		return false;
	if (!CipherInit(&open_state, false, key, sealed))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("AES-256-GCM decryption failed in OpenSSL")));
	ctx = open_state.ctx;
	if ((aadlen > 0 && EVP_DecryptUpdate(ctx, NULL, &n, aad, aadlen) != 1) ||
		(plainlen > 0 &&
		 EVP_DecryptUpdate(ctx, out, &n, sealed + ES_NONCE_BYTES,
						   plainlen) != 1) ||
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, ES_TAG_BYTES,
							(void *) (sealed + ES_NONCE_BYTES + plainlen)) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("AES-256-GCM decryption failed in OpenSSL")));
	return EVP_DecryptFinal_ex(ctx, plainlen > 0 ? out + n : tail, &fin) == 1;
}

/*
 * WrapAad builds what a wrapped key is bound to: the context and the
 * subject.
 */
static int
WrapAad(const char *subject, int subject_len, uint8 *aad)
{
	int			n = sizeof(WRAP_CONTEXT);

	memcpy(aad, WRAP_CONTEXT, n);
	memcpy(aad + n, subject, subject_len);
	return n + subject_len;
}

/*
 * Unwrap turns a wrapped subject key back into the key, or raises the
 * F0000 error of a master key that is missing or wrong.
 */
static void
Unwrap(Oid namespace_oid, int64 key_id, const char *subject, int subject_len,
	   const char *master_id, bytea *wrapped, uint8 *key)
{
	const MasterKey *mk = FindMasterKey(namespace_oid, master_id);
	uint8		aad[sizeof(WRAP_CONTEXT) + ES_MAX_SUBJECT_BYTES];
	int			aadlen = WrapAad(subject, subject_len, aad);

	if (mk == NULL)
		MasterKeyError(psprintf("master key \"%s\", which wraps subject key %lld, is not in master key file \"%s\"",
								master_id, (long long) key_id,
								es_master_key_file),
					   "Keep every master key in the file until es_rotate_master_key has rewrapped the subject keys under the newest one.");
	if (VARSIZE_ANY_EXHDR(wrapped) != ES_KEY_BYTES + ES_SEALED_OVERHEAD ||
		!EsOpenBytes(mk->key, aad, aadlen,
					 (const uint8 *) VARDATA_ANY(wrapped),
					 VARSIZE_ANY_EXHDR(wrapped), key))
		MasterKeyError(psprintf("master key \"%s\" of master key file \"%s\" does not unwrap subject key %lld",
								master_id, es_master_key_file,
								(long long) key_id),
					   "The file holds another key under this id than the one that wrapped the subject key; nothing was written, and the keys become usable again with the right file.");
}

/*
 * Wrap wraps a subject key under the newest master key: its id goes to
 * *master_id, the result is a bytea.
 */
static bytea *
Wrap(Oid namespace_oid, const char *subject, int subject_len,
	 const uint8 *key, const char **master_id)
{
	const MasterKey *mk = NewestMasterKey(namespace_oid);
	uint8		aad[sizeof(WRAP_CONTEXT) + ES_MAX_SUBJECT_BYTES];
	int			aadlen = WrapAad(subject, subject_len, aad);
	bytea	   *out = palloc(VARHDRSZ + ES_KEY_BYTES + ES_SEALED_OVERHEAD);

	SET_VARSIZE(out, VARHDRSZ + ES_KEY_BYTES + ES_SEALED_OVERHEAD);
	EsSealBytes(mk->key, aad, aadlen, key, ES_KEY_BYTES,
				(uint8 *) VARDATA(out));
	*master_id = mk->id;
	return out;
}

/*
 * ZeroCache zeroes the keys of one cache before its memory goes.
 */
static void
ZeroCache(HTAB *table, bool by_subject)
{
	HASH_SEQ_STATUS seq;
	void	   *entry;

	if (table == NULL)
		return;
	hash_seq_init(&seq, table);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		if (by_subject)
			explicit_bzero(&((SubjectEntry *) entry)->key, sizeof(EsSubjectKey));
		else
			explicit_bzero(&((KeyEntry *) entry)->key, sizeof(EsSubjectKey));
	}
}

/*
 * PrepareCaches drops stale caches and makes empty ones for an install.
 */
static void
PrepareCaches(Oid namespace_oid)
{
	HASHCTL		ctl;

	if (!keys_stale && keys.cxt != NULL && keys.namespace_oid == namespace_oid)
		return;
	if (keys.cxt != NULL)
	{
		ZeroCache(keys.by_subject, true);
		ZeroCache(keys.by_id, false);
		MemoryContextDelete(keys.cxt);
	}
	ForgetCipherKeys();
	memset(&keys, 0, sizeof(keys));
	keys_stale = false;
	keys.namespace_oid = namespace_oid;
	keys.keys_relid = get_relname_relid("es_subject_keys", namespace_oid);
	keys.live_index = get_relname_relid("es_subject_keys_live_idx",
										namespace_oid);
	keys.pkey_index = get_relname_relid("es_subject_keys_pkey", namespace_oid);
	keys.cxt = AllocSetContextCreate(CacheMemoryContext, "es_pg subject keys",
									 ALLOCSET_SMALL_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = ES_MAX_SUBJECT_BYTES + 1;
	ctl.entrysize = sizeof(SubjectEntry);
	ctl.hcxt = keys.cxt;
	keys.by_subject = hash_create("es_pg subject keys by subject", 64, &ctl,
								  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(KeyEntry);
	ctl.hcxt = keys.cxt;
	keys.by_id = hash_create("es_pg subject keys by id", 64, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/*
 * EsPrivacyKeysRelid returns the OID of es_subject_keys of an install.
 */
Oid
EsPrivacyKeysRelid(Oid namespace_oid)
{
	PrepareCaches(namespace_oid);
	return keys.keys_relid;
}

/*
 * EsPrivacyForgetCaches drops the key caches before their next use.
 */
void
EsPrivacyForgetCaches(void)
{
	keys_stale = true;
}

/*
 * RememberById puts a key into the cache by id.
 */
static const EsSubjectKey *
RememberById(const EsSubjectKey *key)
{
	bool		found;
	KeyEntry   *e = hash_search(keys.by_id, &key->key_id, HASH_ENTER, &found);

	e->key = *key;
	return &e->key;
}

/* a row of es_subject_keys, copied out of the table */
typedef struct KeyRow
{
	int64		key_id;
	char	   *subject;
	char	   *master_id;		/* NULL once forgotten */
	bytea	   *wrapped;		/* NULL once forgotten */
} KeyRow;

/* the columns of es_subject_keys (55_privacy.sql) */
#define Anum_subject_keys_key_id		1
#define Anum_subject_keys_subject		2
#define Anum_subject_keys_master_key	3
#define Anum_subject_keys_wrapped		4

/*
 * ProbeKey reads one row of es_subject_keys through an index, with the
 * latest snapshot (the caches outlive the transaction, as for the
 * catalogs): the live key of a subject, or the key with an id.
 */
static bool
ProbeKey(Oid indexid, Datum value, RegProcedure eqproc, KeyRow *row)
{
	EsIndexProbe probe;
	ScanKeyData key;
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	bool		found;

	EsProbeOpen(&probe, keys.keys_relid, indexid);
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, eqproc, value);
	EsProbeStart(&probe, snapshot, &key, 1);
	found = EsProbeNext(&probe, ForwardScanDirection);
	if (found)
	{
		bool		isnull;
		Datum		d;

		row->key_id = DatumGetInt64(slot_getattr(probe.slot,
												 Anum_subject_keys_key_id,
												 &isnull));
		row->subject = TextDatumGetCString(slot_getattr(probe.slot,
														Anum_subject_keys_subject,
														&isnull));
		d = slot_getattr(probe.slot, Anum_subject_keys_master_key, &isnull);
		row->master_id = isnull ? NULL : TextDatumGetCString(d);
		d = slot_getattr(probe.slot, Anum_subject_keys_wrapped, &isnull);
		row->wrapped = (isnull || row->master_id == NULL) ? NULL :
			DatumGetByteaPCopy(d);
	}
	EsProbeClose(&probe);
	UnregisterSnapshot(snapshot);
	return found;
}

/*
 * FromRow fills a key from a row, unwrapping it when asked to.
 */
static void
FromRow(const KeyRow *row, bool unwrap, EsSubjectKey *key)
{
	memset(key, 0, sizeof(*key));
	key->key_id = row->key_id;
	key->forgotten = row->wrapped == NULL;
	if (!key->forgotten && unwrap)
	{
		Unwrap(keys.namespace_oid, row->key_id, row->subject,
			   strlen(row->subject), row->master_id, row->wrapped, key->key);
		key->unwrapped = true;
	}
}

/*
 * CreateKey makes a key for a subject that has none, wrapped under the
 * newest master key, and returns its row; a concurrent append that made
 * one first wins, and its row comes back.
 */
static void
CreateKey(Oid namespace_oid, const char *subject, int subject_len,
		  KeyRow *row)
{
	uint8		fresh[ES_KEY_BYTES];
	const char *master_id;
	bytea	   *wrapped;
	Datum		values[3];
	bool		isnull;
	HeapTuple	tuple;
	TupleDesc	desc;
	MemoryContext callcxt = CurrentMemoryContext;
	MemoryContext oldcxt;

	if (!pg_strong_random(fresh, ES_KEY_BYTES))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random subject key")));
	wrapped = Wrap(namespace_oid, subject, subject_len, fresh, &master_id);
	explicit_bzero(fresh, sizeof(fresh));
	values[0] = PointerGetDatum(cstring_to_text_with_len(subject, subject_len));
	values[1] = CStringGetTextDatum(master_id);
	values[2] = PointerGetDatum(wrapped);
	EsSpiConnect();
	if (EsExecute(&InsertKeyStatement, namespace_oid,
				  EsRelationOwner(keys.keys_relid), values, NULL,
				  InvalidSnapshot) != SPI_OK_INSERT_RETURNING ||
		SPI_processed != 1)
		elog(ERROR, "could not store a subject key");
	tuple = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	oldcxt = MemoryContextSwitchTo(callcxt);
	row->key_id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
	row->subject = pnstrdup(subject, subject_len);
	row->master_id = TextDatumGetCString(SPI_getbinval(tuple, desc, 2, &isnull));
	row->wrapped = DatumGetByteaPCopy(SPI_getbinval(tuple, desc, 3, &isnull));
	MemoryContextSwitchTo(oldcxt);
	SPI_finish();
}

/*
 * EsSubjectKeyForAppend returns the key of a subject, unwrapped, making it
 * (wrapped under the newest master key) when the subject has none.
 */
const EsSubjectKey *
EsSubjectKeyForAppend(Oid namespace_oid, const char *subject, int subject_len)
{
	char		name[ES_MAX_SUBJECT_BYTES + 1];
	SubjectEntry *e;
	bool		found;
	EsSubjectKey key;
	KeyRow		row;

	PrepareCaches(namespace_oid);
	memcpy(name, subject, subject_len);
	name[subject_len] = '\0';
	e = hash_search(keys.by_subject, name, HASH_FIND, NULL);
	if (e != NULL)
		return &e->key;

	if (!ProbeKey(keys.live_index,
				  PointerGetDatum(cstring_to_text_with_len(subject, subject_len)),
				  F_TEXTEQ, &row))
		CreateKey(namespace_oid, subject, subject_len, &row);
	FromRow(&row, true, &key);

	/* an invalidation read meanwhile voids the caches */
	PrepareCaches(namespace_oid);
	e = hash_search(keys.by_subject, name, HASH_ENTER, &found);
	e->key = key;
	RememberById(&key);
	explicit_bzero(&key, sizeof(key));
	return &e->key;
}

/*
 * EsSubjectKeyById returns the key with an id: forgotten when it was
 * destroyed (or never existed), unwrapped when asked to.
 */
const EsSubjectKey *
EsSubjectKeyById(Oid namespace_oid, int64 key_id, bool unwrap)
{
	KeyEntry   *e;
	EsSubjectKey key;
	KeyRow		row;
	const EsSubjectKey *result;

	PrepareCaches(namespace_oid);
	e = hash_search(keys.by_id, &key_id, HASH_FIND, NULL);
	if (e != NULL && (e->key.forgotten || e->key.unwrapped || !unwrap))
		return &e->key;

	if (ProbeKey(keys.pkey_index, Int64GetDatum(key_id), F_INT8EQ, &row))
		FromRow(&row, unwrap, &key);
	else
	{
		memset(&key, 0, sizeof(key));
		key.key_id = key_id;
		key.forgotten = true;
	}

	PrepareCaches(namespace_oid);
	result = RememberById(&key);
	explicit_bzero(&key, sizeof(key));
	return result;
}

/*
 * EsRewrapSubjectKeys rewraps every subject key that another master key
 * wraps under the newest one, and returns how many it rewrapped.  The
 * caller is connected to SPI.
 */
int64
EsRewrapSubjectKeys(Oid namespace_oid)
{
	const MasterKey *newest = NewestMasterKey(namespace_oid);
	Oid			owner = EsRelationOwner(EsPrivacyKeysRelid(namespace_oid));
	Datum		values[3];
	SPITupleTable *rows;
	uint64		n;
	uint64		i;

	values[0] = CStringGetTextDatum(newest->id);
	if (EsExecute(&RewrapListStatement, namespace_oid, owner, values, NULL,
				  InvalidSnapshot) != SPI_OK_SELECT)
		elog(ERROR, "could not read es_subject_keys");
	rows = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		HeapTuple	row = rows->vals[i];
		bool		isnull;
		int64		key_id = DatumGetInt64(SPI_getbinval(row, rows->tupdesc, 1,
														 &isnull));
		char	   *subject = SPI_getvalue(row, rows->tupdesc, 2);
		uint8		key[ES_KEY_BYTES];
		const char *master_id;

		CHECK_FOR_INTERRUPTS();
		Unwrap(namespace_oid, key_id, subject, strlen(subject),
			   SPI_getvalue(row, rows->tupdesc, 3),
			   DatumGetByteaPP(SPI_getbinval(row, rows->tupdesc, 4, &isnull)),
			   key);
		values[0] = Int64GetDatum(key_id);
		values[2] = PointerGetDatum(Wrap(namespace_oid, subject,
										 strlen(subject), key, &master_id));
		values[1] = CStringGetTextDatum(master_id);
		explicit_bzero(key, sizeof(key));
		if (EsExecute(&RewrapStatement, namespace_oid, owner, values, NULL,
					  InvalidSnapshot) != SPI_OK_UPDATE)
			elog(ERROR, "could not rewrap a subject key");
	}
	keys_stale = true;
	return (int64) n;
}

/*
 * KeysRelcacheCallback drops the caches when es_subject_keys changes.
 */
static void
KeysRelcacheCallback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == keys.keys_relid)
		keys_stale = true;
}

/*
 * KeysXactCallback drops the caches when a transaction aborts: they may
 * hold a key that it created.
 */
static void
KeysXactCallback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		keys_stale = true;
}

/*
 * KeysSubXactCallback does the same for a subtransaction.
 */
static void
KeysSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		keys_stale = true;
}

/*
 * EsInitPrivacyKeys defines es_pg.master_key_file and registers the
 * callbacks; called from _PG_init (through EsInitPrivacy).
 */
void
EsInitPrivacyKeys(void)
{
	DefineCustomStringVariable("es_pg.master_key_file",
							   "File holding the master keys that wrap the keys of data subjects.",
							   "Lines \"<id> <64 hex digits>\"; the last is the newest. Only the server's OS user may read the file.",
							   &es_master_key_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	CacheRegisterRelcacheCallback(KeysRelcacheCallback, (Datum) 0);
	RegisterXactCallback(KeysXactCallback, NULL);
	RegisterSubXactCallback(KeysSubXactCallback, NULL);
}
