-- single-event append to a random stream, no version check (es_pg)
\set sid :client_id + :nclients * random(0, :streams / :nclients - 1)
SELECT es_append('account-' || :sid, 'MoneyDeposited', :data::jsonb);
