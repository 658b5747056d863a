/*-------------------------------------------------------------------------
 *
 * privacy.h
 *	  Crypto-shredding: declarations shared by privacy.c (protected event
 *	  types, encryption at append, decryption at read), privkeys.c (the
 *	  master key file, AES-256-GCM, the subject keys and their cache) and
 *	  privadmin.c (es_protect, es_unprotect, es_forget_subject,
 *	  es_rotate_master_key).  docs/privacy.md describes the design.
 *
 * IDENTIFICATION
 *	  src/privacy.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ES_PRIVACY_H
#define ES_PRIVACY_H

#include "es_pg.h"

/* the most members a protected path may descend through */
#define ES_MAX_PROTECTED_DEPTH	32

/* the longest subject a protected event may name, in bytes */
#define ES_MAX_SUBJECT_BYTES	255

/* AES-256-GCM: key, nonce and tag sizes */
#define ES_KEY_BYTES			32
#define ES_NONCE_BYTES			12
#define ES_TAG_BYTES			16
#define ES_SEALED_OVERHEAD		(ES_NONCE_BYTES + ES_TAG_BYTES)

/* the longest id of a master key in the key file */
#define ES_MAX_MASTER_KEY_ID	63

/* a subject key as the caches hold it */
typedef struct EsSubjectKey
{
	int64		key_id;
	bool		forgotten;		/* destroyed (or unknown): no key */
	bool		unwrapped;		/* key holds the plain key */
	uint8		key[ES_KEY_BYTES];
} EsSubjectKey;

/* privkeys.c */
extern char *es_master_key_file;
extern void EsInitPrivacyKeys(void);
extern void EsPrivacyForgetCaches(void);
extern void EsSealBytes(const uint8 *key, const uint8 *aad, int aadlen,
						const uint8 *plain, int len, uint8 *out);
extern bool EsOpenBytes(const uint8 *key, const uint8 *aad, int aadlen,
						const uint8 *sealed, int len, uint8 *out);
extern const EsSubjectKey *EsSubjectKeyForAppend(Oid namespace_oid,
												 const char *subject,
												 int subject_len);
extern const EsSubjectKey *EsSubjectKeyById(Oid namespace_oid, int64 key_id,
											bool unwrap);
extern int64 EsRewrapSubjectKeys(Oid namespace_oid);
extern Oid	EsPrivacyKeysRelid(Oid namespace_oid);
extern void EsCheckMasterKeys(Oid namespace_oid);

/* privacy.c */
extern List *EsParseProtectedPath(const char *path, const char *what);
extern bool EsPrivacyRevealAllowed(Oid namespace_oid, Oid reader);
extern Oid	EsPrivacyTypesRelid(Oid namespace_oid);

#endif							/* ES_PRIVACY_H */
