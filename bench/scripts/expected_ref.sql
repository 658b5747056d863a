-- single-event append with the exact expected version, own stream (plain
-- INSERT): the check is done in SQL; a wrong version inserts no row, and
-- \gset then fails the client
INSERT INTO bench.ref_events (stream_id, version, event_type, data)
SELECT cur.stream_id, cur.version + 1, 'MoneyDeposited', :data::jsonb
  FROM (SELECT 'own-' || :run || '-' || :client_id AS stream_id,
			   coalesce(max(version), 0) AS version
		  FROM bench.ref_events
		 WHERE stream_id = 'own-' || :run || '-' || :client_id) cur
 WHERE cur.version = :v
RETURNING version AS v
\gset
