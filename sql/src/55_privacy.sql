
/*
 * 55_privacy.sql: crypto-shredding of personal data.
 * See docs/privacy.md and src/privacy.c, src/privkeys.c, src/privadmin.c.
 */

/*
 * The protected event types: which members of their data hold personal
 * data (paths), and which names the data subject (subject_path; its keys
 * from the root in subject_keys, for es_forget_subject).
 */
CREATE TABLE @extschema@.es_protected_types (
	event_type	text COLLATE "C" NOT NULL,
	paths		text[] NOT NULL,
	subject_path text NOT NULL,
	subject_keys text[] NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT es_protected_types_pkey PRIMARY KEY (event_type)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_protected_types', '');
REVOKE ALL ON @extschema@.es_protected_types FROM PUBLIC;
COMMENT ON TABLE @extschema@.es_protected_types IS
	'event types whose personal data es_append encrypts with the key of its subject';
COMMENT ON COLUMN @extschema@.es_protected_types.paths IS
	'SQL/JSON paths of the members that hold personal data';
COMMENT ON COLUMN @extschema@.es_protected_types.subject_path IS
	'SQL/JSON path of the member that names the data subject';

/*
 * The keys of data subjects, wrapped by a master key of the key file that
 * es_pg.master_key_file names.  es_forget_subject destroys a key: its
 * wrapped form and master key become NULL and forgotten_at is set.
 */
CREATE SEQUENCE @extschema@.es_subject_keys_key_id_seq AS bigint;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_subject_keys_key_id_seq', '');
REVOKE ALL ON @extschema@.es_subject_keys_key_id_seq FROM PUBLIC;
CREATE TABLE @extschema@.es_subject_keys (
	key_id		bigint NOT NULL
		DEFAULT pg_catalog.nextval('@extschema@.es_subject_keys_key_id_seq'::pg_catalog.regclass),
	subject		text COLLATE "C" NOT NULL,
	master_key	text COLLATE "C",
	wrapped		bytea,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	forgotten_at timestamptz,
	CONSTRAINT es_subject_keys_pkey PRIMARY KEY (key_id),
	CONSTRAINT es_subject_keys_forgotten_check CHECK
		((forgotten_at IS NULL) = (wrapped IS NOT NULL AND master_key IS NOT NULL))
);
ALTER SEQUENCE @extschema@.es_subject_keys_key_id_seq
	OWNED BY @extschema@.es_subject_keys.key_id;
/* one live key per subject; forgotten keys stay as a record */
CREATE UNIQUE INDEX es_subject_keys_live_idx
	ON @extschema@.es_subject_keys (subject) WHERE forgotten_at IS NULL;
CREATE INDEX es_subject_keys_subject_idx
	ON @extschema@.es_subject_keys (subject);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_subject_keys', '');
REVOKE ALL ON @extschema@.es_subject_keys FROM PUBLIC;
COMMENT ON TABLE @extschema@.es_subject_keys IS
	'keys of data subjects, wrapped by a master key outside the database; NULL once forgotten';
COMMENT ON COLUMN @extschema@.es_subject_keys.master_key IS
	'id of the master key (in es_pg.master_key_file) that wraps the key';
COMMENT ON COLUMN @extschema@.es_subject_keys.wrapped IS
	'AES-256-GCM of the key under the master key: nonce, ciphertext, tag';

/*
 * The master keys ever used, by id, each with a check value (an AES-256-GCM
 * tag under the key) that tells the right key from another one under the
 * same id.
 */
CREATE TABLE @extschema@.es_master_keys (
	master_key	text COLLATE "C" NOT NULL,
	check_value bytea NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT es_master_keys_pkey PRIMARY KEY (master_key)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_master_keys', '');
REVOKE ALL ON @extschema@.es_master_keys FROM PUBLIC;
COMMENT ON TABLE @extschema@.es_master_keys IS
	'ids of the master keys used, with a check value that recognizes each key';

/* a change resets the caches of every backend */
CREATE FUNCTION @extschema@.es_privacy_changed()
	RETURNS trigger
	AS 'MODULE_PATHNAME', 'es_privacy_changed'
	LANGUAGE C;
CREATE TRIGGER es_protected_types_changed
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.es_protected_types
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.es_privacy_changed();
ALTER TABLE @extschema@.es_protected_types ENABLE ALWAYS TRIGGER es_protected_types_changed;
CREATE TRIGGER es_subject_keys_changed
	AFTER UPDATE OR DELETE OR TRUNCATE ON @extschema@.es_subject_keys
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.es_privacy_changed();
ALTER TABLE @extschema@.es_subject_keys ENABLE ALWAYS TRIGGER es_subject_keys_changed;
REVOKE ALL ON FUNCTION @extschema@.es_privacy_changed() FROM PUBLIC;

CREATE FUNCTION @extschema@.es_protect(event_type text, paths text[],
		subject_path text)
	RETURNS void
	AS 'MODULE_PATHNAME', 'es_protect'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_protect(text, text[], text) IS
	'encrypt the personal data at paths of an event type with the key of the subject at subject_path';
REVOKE ALL ON FUNCTION @extschema@.es_protect(text, text[], text) FROM PUBLIC;

CREATE FUNCTION @extschema@.es_unprotect(event_type text)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'es_unprotect'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_unprotect(text) IS
	'drop the protection of an event type that has no events';
REVOKE ALL ON FUNCTION @extschema@.es_unprotect(text) FROM PUBLIC;

CREATE FUNCTION @extschema@.es_forget_subject(subject text,
		OUT keys_destroyed integer, OUT streams bigint,
		OUT snapshots_removed bigint)
	RETURNS record
	AS 'MODULE_PATHNAME', 'es_forget_subject'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_forget_subject(text) IS
	'destroy the keys of a data subject and remove the snapshots of its streams';
REVOKE ALL ON FUNCTION @extschema@.es_forget_subject(text) FROM PUBLIC;

CREATE FUNCTION @extschema@.es_rotate_master_key()
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'es_rotate_master_key'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_rotate_master_key() IS
	'rewrap every subject key under the newest master key of es_pg.master_key_file';
REVOKE ALL ON FUNCTION @extschema@.es_rotate_master_key() FROM PUBLIC;

/* EXECUTE on this function is the right to see plain personal data */
CREATE FUNCTION @extschema@.es_personal_data_access()
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'es_personal_data_access'
	LANGUAGE C STABLE;
COMMENT ON FUNCTION @extschema@.es_personal_data_access() IS
	'whether the current role sees plain personal data; EXECUTE on it is that right';
REVOKE ALL ON FUNCTION @extschema@.es_personal_data_access() FROM PUBLIC;
