-- single-event append to a random stream, no version check (plain INSERT)
\set sid :client_id + :nclients * random(0, :streams / :nclients - 1)
INSERT INTO bench.ref_events (stream_id, version, event_type, data)
SELECT 'account-' || :sid, coalesce(max(version), 0) + 1, 'MoneyDeposited', :data::jsonb
  FROM bench.ref_events
 WHERE stream_id = 'account-' || :sid;
