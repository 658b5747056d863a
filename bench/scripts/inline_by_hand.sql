-- single-event append to a random account, then the three projections'
-- handlers called on it by hand, in the same transaction
\set sid :client_id + :nclients * random(0, :streams / :nclients - 1)
SELECT bench.append_by_hand('account-' || :sid, 'MoneyDeposited', :data::jsonb);
