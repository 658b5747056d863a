-- single-event append with the exact expected version, own stream (es_pg)
SELECT es_append('own-' || :run || '-' || :client_id, 'MoneyDeposited', :data::jsonb, :v) AS v
\gset
