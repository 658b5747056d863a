/*
 * bench/sql/privacy.sql: the protected event type of the crypto-shredding
 * workload (issue 14).  BenchCustomer's email and address are encrypted
 * under the key of the customer it names; BenchCustomerPlain, the
 * reference, carries the same data unprotected.  The 1,000 customers'
 * keys exist before the measurement, as in a store that has been running;
 * each pgbench connection still starts with an empty key cache.
 */
SELECT es_protect('BenchCustomer', ARRAY['$.email', '$.address'], '$.customer');
SELECT count(es_append('bench-customer-' || g, 'BenchCustomer',
		jsonb_build_object('customer', 'c' || g, 'email', 'c' || g || '@example.com')))
  FROM generate_series(0, 999) g;
