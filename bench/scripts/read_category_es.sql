-- one page of 1,000 events of the category "account" (es_pg)
\set x random(0, :feed_len - 1000)
SELECT * FROM es_read_category('account', :x, 1000);
