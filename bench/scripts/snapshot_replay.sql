-- state of a 10,000-event stream without a snapshot: full replay
SELECT es_aggregate('snap-2', 'bench.account_reducer(jsonb, es_events)'::regprocedure);
