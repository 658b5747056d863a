-- single-event append to a random stream of an event naming one of 1,000
-- customers, of type :type (protected, or not: bench/sql/privacy.sql)
\set sid :client_id + :nclients * random(0, :streams / :nclients - 1)
\set customer :sid % 1000
SELECT es_append('customer-' || :sid, :type,
	jsonb_build_object('customer', 'c' || :customer,
		'email', 'c' || :customer || '@example.com',
		'address', jsonb_build_object('street', 'Main Street 1', 'city', 'Springfield'),
		'plan', 'gold'));
