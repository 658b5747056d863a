-- es_last_position and es_read_category: the position of what a
-- transaction appended, and the events of a category in global order,
-- read along the category index.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
DROP ROLE IF EXISTS regress_cat_reader;
DROP ROLE IF EXISTS regress_cat_nobody;
RESET client_min_messages;
\set VERBOSITY sqlstate

-- es_last_position: NULL before an append in the transaction
SELECT es_last_position() IS NULL AS none_yet;
BEGIN;
SELECT es_last_position() IS NULL AS none_in_this_transaction;
SELECT es_append('rcat-1', 'Opened', '{"n": 1}') AS v;
SELECT es_last_position() = (SELECT max(global_position) FROM es_events
							   WHERE stream_id = 'rcat-1') AS last_is_mine;
SELECT es_append_batch('rcat-1', '[{"type": "Dep", "data": {"n": 2}}, {"type": "Dep", "data": {"n": 3}}]') AS v;
SELECT es_last_position() = (SELECT max(global_position) FROM es_events) AS last_of_batch;
SELECT es_last_position() AS before_savepoint \gset
SAVEPOINT s;
SELECT es_append('rcat-2', 'Opened', '{"n": 4}') AS v;
SELECT es_last_position() > :before_savepoint AS moved;
ROLLBACK TO s;
-- rolled back: the position of the rolled-back append is not handed out
SELECT es_last_position() IS NULL AS null_after_rollback_to;
COMMIT;
-- the next transaction starts with none
SELECT es_last_position() IS NULL AS null_in_next_transaction;
-- in one statement with the append (through a pooler: same transaction)
SELECT v, es_last_position() IS NOT NULL AS same_statement
  FROM (SELECT es_append('rcat-2', 'Opened', '{"n": 4}') AS v OFFSET 0) x;
-- an exact retry writes nothing, so it has no position
SELECT es_append('rcat-2', 'Renamed', '{}', NULL, NULL, '5d1f4c1e-0000-4000-8000-000000000001') AS v;
BEGIN;
SELECT es_append('rcat-2', 'Renamed', '{}', NULL, NULL, '5d1f4c1e-0000-4000-8000-000000000001') AS retry;
SELECT es_last_position() IS NULL AS retry_has_none;
COMMIT;

-- more streams: another category with the same prefix, a stream that is
-- its category's name, and other categories
SELECT es_append('rcatx-1', 'Opened', '{"n": 5}') AS v;
SELECT es_append('rcat', 'Opened', '{"n": 6}') AS v;
SELECT es_append('rcat-3-a', 'Opened', '{"n": 7}') AS v;
SELECT es_append('other-1', 'Opened', '{"n": 8}') AS v;
SELECT es_append('rcat-1', 'Dep', '{"n": 9}') AS v;

-- the category "rcat": rcat-1, rcat-2, rcat-3-a (the part before the
-- first "-"), in global order; not rcatx-1, not rcat itself
SELECT stream_id, version, event_type, data->>'n' AS n
  FROM es_read_category('rcat');
-- the same as a filtered SELECT in global order
SELECT array_agg(global_position ORDER BY global_position) =
	   (SELECT array_agg(global_position ORDER BY global_position)
		  FROM es_events WHERE stream_id LIKE 'rcat-%')
	   AS same_as_select
  FROM es_read_category('rcat');
-- every column, as es_read_all returns them
SELECT (SELECT array_agg(c ORDER BY c.global_position) FROM es_read_category('rcat') c) =
	   (SELECT array_agg(a ORDER BY a.global_position) FROM es_read_all(0, NULL) a
		 WHERE a.stream_id LIKE 'rcat-%') AS same_rows;

-- paging: from the last position received, max_count at a time
SELECT min(global_position) AS first_pos FROM es_events WHERE stream_id LIKE 'rcat-%' \gset
SELECT stream_id, data->>'n' AS n FROM es_read_category('rcat', :first_pos, 2);
SELECT count(*) AS rest FROM es_read_category('rcat', :first_pos);
SELECT count(*) AS none_after_head FROM es_read_category('rcat', es_head_position());
SELECT count(*) AS zero FROM es_read_category('rcat', 0, 0);
SELECT count(*) AS no_limit FROM es_read_category('rcat', 0, NULL);
SELECT count(*) AS other FROM es_read_category('other');
SELECT count(*) AS unknown FROM es_read_category('nosuchcategory');
-- "rcatx" is a category of its own (rcatx-1)
SELECT stream_id FROM es_read_category('rcatx');

-- errors
SELECT * FROM es_read_category('');
SELECT * FROM es_read_category('rcat-1');
SELECT * FROM es_read_category('rcat', -1);
SELECT * FROM es_read_category('rcat', 0, -1);
SELECT * FROM es_read_category(E'rc\x01at');
SELECT * FROM es_read_category(repeat('x', 2000));

-- served by the category index: it reads only the category's entries
SELECT pg_stat_force_next_flush();
SELECT idx_scan AS scans_before, idx_tup_read AS read_before
  FROM pg_stat_user_indexes WHERE indexrelname = 'es_events_category_idx' \gset
SELECT count(*) FROM es_read_category('rcat');
SELECT pg_stat_force_next_flush();
SELECT pg_stat_clear_snapshot();
SELECT idx_scan - :scans_before AS scans, idx_tup_read - :read_before AS entries_read
  FROM pg_stat_user_indexes WHERE indexrelname = 'es_events_category_idx';

-- privileges: a reader may read a category, a role without SELECT may not
CREATE ROLE regress_cat_reader;
CREATE ROLE regress_cat_nobody;
SELECT es_grant_reader('regress_cat_reader');
GRANT USAGE ON SCHEMA public TO regress_cat_nobody;
SET ROLE regress_cat_reader;
SELECT count(*) AS reader_reads FROM es_read_category('rcat');
SELECT es_last_position();
RESET ROLE;
SET ROLE regress_cat_nobody;
SELECT count(*) FROM es_read_category('rcat');
RESET ROLE;

-- a hostile search_path does not change what it reads
CREATE SCHEMA rcat_evil;
CREATE FUNCTION rcat_evil.split_part(text, text, integer) RETURNS text
	LANGUAGE sql AS $$SELECT 'evil'::text$$;
SET search_path = rcat_evil, public;
SELECT count(*) AS same_count FROM es_read_category('rcat');
SELECT es_append('rcat-4', 'Opened', '{"n": 10}') AS v;
RESET search_path;
SELECT stream_id FROM es_read_category('rcat', es_head_position() - 1);
DROP SCHEMA rcat_evil CASCADE;

-- the category index is part of es_pg: it cannot be dropped or renamed
DROP INDEX es_events_category_idx;
ALTER INDEX es_events_category_idx RENAME TO rcat_idx;

SELECT es_revoke_reader('regress_cat_reader');
DROP ROLE regress_cat_reader;
REVOKE USAGE ON SCHEMA public FROM regress_cat_nobody;
DROP ROLE regress_cat_nobody;
