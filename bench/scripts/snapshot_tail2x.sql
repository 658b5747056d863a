-- state of a 200-event stream without a snapshot (twice the tail above)
SELECT es_aggregate('tail-1', 'bench.account_reducer(jsonb, es_events)'::regprocedure);
