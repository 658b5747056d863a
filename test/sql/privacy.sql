-- crypto-shredding: protect, append, read as granted and not granted on
-- every read path, snapshots, projections, direct inserts, forget.  It
-- needs es_pg.master_key_file (scripts/test.sh sets one); the key file
-- missing, wrong, rotated and reloaded is test/t/080_privacy_keys.pl.  It
-- runs in a database of its own: its protected types would otherwise stay
-- in the shared one.
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_privacy;
DROP ROLE IF EXISTS regress_priv_admin;
DROP ROLE IF EXISTS regress_priv_admin2;
DROP ROLE IF EXISTS regress_priv_reader;
DROP ROLE IF EXISTS regress_priv_personal;
RESET client_min_messages;
CREATE DATABASE regress_privacy;
\c regress_privacy
SET client_min_messages = warning;
CREATE EXTENSION es_pg;
RESET client_min_messages;

CREATE ROLE regress_priv_admin;
CREATE ROLE regress_priv_admin2;
CREATE ROLE regress_priv_reader;
CREATE ROLE regress_priv_personal;
SELECT es_grant_admin('regress_priv_admin'), es_grant_appender('regress_priv_admin'),
	   es_grant_admin('regress_priv_admin2'), es_grant_appender('regress_priv_admin2'),
	   es_grant_reader('regress_priv_reader');
SELECT es_privileges_apply('personal', 'regress_priv_personal', true),
	   es_privileges_apply('personal', 'regress_priv_admin', true);

-- every member of an event's data: plain values, or the marker's kind
CREATE FUNCTION priv_show(d jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT string_agg(k || '=' || CASE
			WHEN jsonb_typeof(v) = 'object' AND v ? 'es_pg' THEN '<' || (v->>'es_pg') || '>'
			ELSE v::text END, ' ' ORDER BY k)
	  FROM jsonb_each(d) AS e(k, v) $$;

-- the setting is for superusers only
SET ROLE regress_priv_reader;
\set VERBOSITY sqlstate
SHOW es_pg.master_key_file;
\set VERBOSITY default
RESET ROLE;

-- paths that are not one member, overlapping paths, bad arguments
\set VERBOSITY sqlstate
SELECT es_protect('PrivCustomer', ARRAY['$.email[*]'], '$.id');
SELECT es_protect('PrivCustomer', ARRAY['$.*'], '$.id');
SELECT es_protect('PrivCustomer', ARRAY['$'], '$.id');
SELECT es_protect('PrivCustomer', ARRAY['$.email ? (@ == 1)'], '$.id');
SELECT es_protect('PrivCustomer', ARRAY['not a path'], '$.id');
SELECT es_protect('PrivCustomer', ARRAY['$.a', '$.a.b'], '$.id');
SELECT es_protect('PrivCustomer', ARRAY['$.id'], '$.id');
SELECT es_protect('PrivCustomer', ARRAY['$.who'], '$.who.id');
SELECT es_protect('PrivCustomer', ARRAY[]::text[], '$.id');
SELECT es_protect('PrivCustomer', ARRAY['$.a', NULL], '$.id');
SELECT es_protect('PrivCustomer', ARRAY[['$.a'], ['$.b']], '$.id');
SELECT es_protect('$StreamDeleted', ARRAY['$.a'], '$.id');
SELECT es_protect('', ARRAY['$.a'], '$.id');
-- only admins protect and forget
SET ROLE regress_priv_reader;
SELECT es_protect('PrivCustomer', ARRAY['$.email'], '$.id');
SELECT es_forget_subject('c1');
SELECT es_rotate_master_key();
SELECT * FROM es_subject_keys;
RESET ROLE;
\set VERBOSITY default

SET ROLE regress_priv_admin;
SELECT es_protect('PrivCustomer', ARRAY['$.email', '$.address'], '$.id');
SELECT es_protect('PrivNote', ARRAY['$.text', '$."odd key"'], '$.author.id');
-- again, or changed, while there are no events yet: fine
SELECT es_protect('PrivCustomer', ARRAY['$.email', '$.address'], '$.id');
SELECT es_protect('PrivDropMe', ARRAY['$.x'], '$.id');
SELECT es_unprotect('PrivDropMe'), es_unprotect('PrivDropMe');
RESET ROLE;
SELECT event_type, paths, subject_path, subject_keys FROM es_protected_types ORDER BY 1;
SET ROLE regress_priv_reader;
SELECT count(*) FROM es_protected_types;
RESET ROLE;

-- read models: an inline projection owned by an admin who may not see
-- personal data, an async one owned by one who may
CREATE TABLE priv_model (proj text, pos bigint, shown text, applied_by name,
	PRIMARY KEY (proj, pos));
GRANT ALL ON priv_model TO regress_priv_admin, regress_priv_admin2;
CREATE FUNCTION priv_inline_apply(event es_events) RETURNS void LANGUAGE sql AS $$
	INSERT INTO priv_model VALUES ('inline', event.global_position,
		priv_show(event.data), current_user) $$;
CREATE FUNCTION priv_async_apply(event es_events) RETURNS void LANGUAGE sql AS $$
	INSERT INTO priv_model VALUES ('async', event.global_position,
		priv_show(event.data), current_user) $$;
CREATE FUNCTION priv_inline_reset() RETURNS void LANGUAGE sql AS $$
	DELETE FROM priv_model WHERE proj = 'inline' $$;
CREATE FUNCTION priv_async_reset() RETURNS void LANGUAGE sql AS $$
	DELETE FROM priv_model WHERE proj = 'async' $$;
SET ROLE regress_priv_admin2;
SELECT es_create_projection('priv_inline', 'priv_inline_apply(es_events)',
	NULL, 'inline', 'priv_inline_reset()');
SET ROLE regress_priv_admin;
SELECT es_create_projection('priv_async', 'priv_async_apply(es_events)',
	NULL, 'async', 'priv_async_reset()');
RESET ROLE;
SELECT es_create_subscription('priv_sub_r', 'privcust');
SELECT es_create_subscription('priv_sub_p', 'privcust');

-- appends through es_append and es_append_batch
SET ROLE regress_priv_admin2;
SELECT es_append('privcust-1', 'PrivCustomer',
	'{"id": "c1", "email": "ann@example.com", "address": {"street": "Elm 1"}, "plan": "gold"}');
SELECT es_append_batch('privcust-1', '[
	{"type": "PrivNote", "data": {"author": {"id": "c1"}, "text": "call me", "odd key": [1, 2]}},
	{"type": "PrivPlain", "data": {"id": "c1", "email": "not protected"}}]');
SELECT es_append_batch('privcust-2', '[
	{"type": "PrivCustomer", "data": {"id": 2, "email": "bob@example.com", "address": null}}]');
-- a protected type must name its subject
\set VERBOSITY sqlstate
SELECT es_append('privcust-3', 'PrivCustomer', '{"email": "x@example.com"}');
SELECT es_append('privcust-3', 'PrivCustomer', '{"id": {"x": 1}, "email": "x@example.com"}');
SELECT es_append('privcust-3', 'PrivCustomer', '{"id": "", "email": "x@example.com"}');
SELECT es_append('privcust-3', 'PrivCustomer', jsonb_build_object('id', repeat('x', 256)));
\set VERBOSITY default
SELECT es_append_batch('privcust-3', '[{"type": "PrivPlain", "data": {}},
	{"type": "PrivNote", "data": {"text": "who?"}}]');
RESET ROLE;

-- what is stored: ciphertext, never the plain values
SELECT global_position, event_type, priv_show(data) FROM es_events ORDER BY 1;
SELECT count(*) AS plain_in_store FROM es_events
 WHERE data::text LIKE '%example.com%' OR data::text LIKE '%Elm 1%'
	OR data::text LIKE '%call me%';
SELECT key_id, subject, master_key, length(wrapped) AS wrapped_bytes,
	   forgotten_at IS NULL AS live
  FROM es_subject_keys ORDER BY key_id;
SELECT master_key, length(check_value) FROM es_master_keys;

-- every read path, as a reader who may not see personal data and as one
-- who may
SET ROLE regress_priv_reader;
\set VERBOSITY sqlstate
SELECT es_personal_data_access();
\set VERBOSITY default
SELECT version, priv_show(data) FROM es_read_stream('privcust-1');
RESET ROLE;
SET ROLE regress_priv_personal;
SELECT es_personal_data_access();
SELECT version, priv_show(data) FROM es_read_stream('privcust-1');
SELECT version, priv_show(data) FROM es_read_stream_backward('privcust-1');
SELECT global_position, priv_show(data) FROM es_read_all(0, 100);
SELECT global_position, priv_show(data) FROM es_read_category('privcust');
RESET ROLE;
SET ROLE regress_priv_reader;
SELECT version, priv_show(data) FROM es_read_stream_backward('privcust-1');
SELECT global_position, priv_show(data) FROM es_read_all(0, 100);
SELECT global_position, priv_show(data) FROM es_read_category('privcust');
RESET ROLE;
GRANT EXECUTE ON FUNCTION es_poll(text, integer, integer, interval, text)
	TO regress_priv_reader, regress_priv_personal;
SET ROLE regress_priv_reader;
SELECT global_position, priv_show(data) FROM es_poll('priv_sub_r');
RESET ROLE;
SET ROLE regress_priv_personal;
SELECT global_position, priv_show(data) FROM es_poll('priv_sub_p');
RESET ROLE;
-- a SECURITY DEFINER function reads with its owner's grant
CREATE FUNCTION priv_definer_read() RETURNS SETOF text LANGUAGE sql
	SECURITY DEFINER SET search_path = public AS $$
	SELECT priv_show(data) FROM es_read_stream('privcust-2') $$;
ALTER FUNCTION priv_definer_read() OWNER TO regress_priv_reader;
SET ROLE regress_priv_personal;
SELECT priv_definer_read();
RESET ROLE;

-- projections: the inline handler's owner may not see personal data, the
-- async handler's owner may
SELECT es_apply_projections('priv_async');
SELECT proj, pos, shown, applied_by FROM priv_model ORDER BY proj, pos;

-- es_aggregate and snapshots: a snapshot folded from plain values is never
-- served to a reader who may not see them
CREATE FUNCTION priv_fold(state jsonb, event es_events) RETURNS jsonb
	LANGUAGE sql IMMUTABLE AS $$
	SELECT state || jsonb_build_object('n', coalesce((state->>'n')::int, 0) + 1)
		|| CASE WHEN event.event_type = 'PrivCustomer' THEN
			jsonb_build_object('email', event.data->'email') ELSE '{}' END $$;
SELECT es_set_snapshot_policy('priv_fold(jsonb, es_events)', 1);
SET ROLE regress_priv_personal;
SELECT priv_show(es_aggregate('privcust-1', 'priv_fold(jsonb, es_events)', '{}'));
SELECT version, priv_show(state) FROM es_load_snapshot('privcust-1');
RESET ROLE;
SELECT count(*) AS snapshots FROM es_snapshots WHERE stream_id = 'privcust-1';
SET ROLE regress_priv_reader;
SELECT priv_show(es_aggregate('privcust-1', 'priv_fold(jsonb, es_events)', '{}'));
-- the reader's fold stored a snapshot of its own; es_load_snapshot serves
-- a reader no snapshot that a fold made
SELECT count(*) FROM es_load_snapshot('privcust-1');
SELECT count(*) FROM es_load_snapshot('privcust-1', 'priv_fold(jsonb, es_events)');
RESET ROLE;
SET ROLE regress_priv_personal;
SELECT priv_show(es_aggregate('privcust-1', 'priv_fold(jsonb, es_events)', '{}'));
SELECT version, priv_show(state) FROM es_load_snapshot('privcust-1');
RESET ROLE;
SELECT es_save_snapshot('privcust-1', 1, '{"app": "state"}');

-- direct inserts must bring ciphertext: a COPY of plain personal data fails
-- at commit
\set VERBOSITY sqlstate
INSERT INTO es_events (stream_id, version, event_type, data)
	VALUES ('privcust-9', 1, 'PrivCustomer', '{"id": "c9", "email": "eve@example.com"}');
INSERT INTO es_events (stream_id, version, event_type, data)
	VALUES ('privcust-9', 1, 'PrivCustomer', '{"email": {"es_pg": "encrypted", "key": 1, "sealed": "00"}}');
\set VERBOSITY default
INSERT INTO es_events (stream_id, version, event_type, data)
	VALUES ('privcust-9', 1, 'PrivNote', '{"author": {"id": "c9"}, "text": "plain"}');
SELECT count(*) FROM es_events WHERE stream_id = 'privcust-9';

-- seal, forget, and the seals still verify
SELECT es_seal() > 0 AS sealed;
SELECT intact FROM es_verify();
SET ROLE regress_priv_admin;
SELECT * FROM es_forget_subject('c1');
SELECT * FROM es_forget_subject('c1');
SELECT * FROM es_forget_subject('nobody');
RESET ROLE;
SELECT intact, problem FROM es_verify();
SELECT key_id, subject, master_key IS NULL AS no_master, wrapped IS NULL AS destroyed,
	   forgotten_at IS NOT NULL AS forgotten
  FROM es_subject_keys ORDER BY key_id;
-- the snapshots of the subject's streams are gone, folded or saved
SELECT count(*) AS snapshots FROM es_snapshots WHERE stream_id = 'privcust-1';

-- from now on every read path sees the forgotten marker
SET ROLE regress_priv_personal;
SELECT version, priv_show(data) FROM es_read_stream('privcust-1');
SELECT version, priv_show(data) FROM es_read_stream_backward('privcust-1');
SELECT global_position, priv_show(data) FROM es_read_all(0, 100);
SELECT global_position, priv_show(data) FROM es_read_category('privcust');
SELECT priv_show(es_aggregate('privcust-1', 'priv_fold(jsonb, es_events)', '{}'));
RESET ROLE;
SET ROLE regress_priv_reader;
SELECT version, priv_show(data) FROM es_read_stream('privcust-1');
RESET ROLE;
-- the read models hold what the handlers saw until they are rebuilt
SET ROLE regress_priv_admin;
SELECT es_rebuild_projection('priv_async');
RESET ROLE;
SET ROLE regress_priv_admin2;
SELECT es_rebuild_projection('priv_inline');
RESET ROLE;
SELECT proj, pos, shown, applied_by FROM priv_model ORDER BY proj, pos;

-- a forgotten subject that comes back gets a new key
SET ROLE regress_priv_admin2;
SELECT es_append('privcust-1', 'PrivCustomer', '{"id": "c1", "email": "ann@new.example.com"}');
RESET ROLE;
SET ROLE regress_priv_personal;
SELECT version, priv_show(data) FROM es_read_stream('privcust-1');
RESET ROLE;
SELECT key_id, subject, wrapped IS NULL AS destroyed FROM es_subject_keys ORDER BY key_id;

-- with one master key there is nothing to rewrap
SET ROLE regress_priv_admin;
SELECT es_rotate_master_key();
RESET ROLE;

-- a ciphertext copied into another event does not decrypt there
INSERT INTO es_events (stream_id, version, event_type, data)
	SELECT 'privcopy-1', 1, 'PrivCustomer', data FROM es_events
	 WHERE stream_id = 'privcust-2' AND version = 1;
SET ROLE regress_priv_reader;
SELECT version, priv_show(data) FROM es_read_stream('privcopy-1');
RESET ROLE;
SET ROLE regress_priv_personal;
\set VERBOSITY sqlstate
SELECT version, priv_show(data) FROM es_read_stream('privcopy-1');
\set VERBOSITY default
RESET ROLE;

-- the right is EXECUTE on es_personal_data_access(): revoked, the same
-- session sees ciphertext again; revoking "reader" takes it too
SELECT es_privileges_apply('personal', 'regress_priv_personal', false);
SET ROLE regress_priv_personal;
SELECT version, priv_show(data) FROM es_read_stream('privcust-2');
RESET ROLE;
SELECT es_privileges_apply('personal', 'regress_priv_personal', true);
SET ROLE regress_priv_personal;
SELECT version, priv_show(data) FROM es_read_stream('privcust-2');
RESET ROLE;
SELECT es_revoke_reader('regress_priv_personal');
SELECT has_function_privilege('regress_priv_personal', 'es_personal_data_access()', 'EXECUTE');
-- a role with the right through membership sees plain values
GRANT regress_priv_admin TO regress_priv_reader;
SET ROLE regress_priv_reader;
SELECT version, priv_show(data) FROM es_read_stream('privcust-2');
RESET ROLE;
REVOKE regress_priv_admin FROM regress_priv_reader;
SET ROLE regress_priv_reader;
SELECT version, priv_show(data) FROM es_read_stream('privcust-2');
RESET ROLE;

-- the protection of a type with events is fixed
SET ROLE regress_priv_admin;
\set VERBOSITY sqlstate
SELECT es_protect('PrivCustomer', ARRAY['$.email'], '$.id');
SELECT es_unprotect('PrivCustomer');
\set VERBOSITY default
SELECT es_protect('PrivCustomer', ARRAY['$.email', '$.address'], '$.id');
RESET ROLE;

\c contrib_regression
SET client_min_messages = warning;
DROP DATABASE regress_privacy;
DROP ROLE regress_priv_admin;
DROP ROLE regress_priv_admin2;
DROP ROLE regress_priv_reader;
DROP ROLE regress_priv_personal;
RESET client_min_messages;
