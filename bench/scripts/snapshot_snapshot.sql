-- state of a 10,000-event stream with a snapshot 100 events from its head
SELECT es_aggregate('snap-1', 'bench.account_reducer(jsonb, es_events)'::regprocedure);
