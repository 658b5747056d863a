"""Tests of the Python subscription consumer against a real server: a
consumer group of 2 in one process gets every event of its category once,
each stream at one member in order, follows new appends through its long
polls, and on SIGTERM finishes, acknowledges and releases its leases.

    /usr/bin/python3 -m unittest -v test_consumer
"""

import os
import signal
import subprocess
import sys
import time
import unittest

import psycopg2

DB = "es_sub_python"
HERE = os.path.dirname(os.path.abspath(__file__))


def connect(dbname):
    conn = psycopg2.connect(dbname=dbname)
    conn.autocommit = True
    return conn


def scalar(conn, sql, args=()):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()[0]


class ConsumerTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.admin = connect("postgres")
        with cls.admin.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)
            cur.execute("CREATE DATABASE %s" % DB)
        cls.db = connect(DB)
        with cls.db.cursor() as cur:
            cur.execute("CREATE EXTENSION es_pg")
            cur.execute("""CREATE TABLE handled (
                               global_position bigint PRIMARY KEY,
                               stream_id text NOT NULL,
                               version bigint NOT NULL,
                               member int NOT NULL,
                               seq bigserial)""")

    @classmethod
    def tearDownClass(cls):
        cls.db.close()
        with cls.admin.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)
        cls.admin.close()

    def append(self, n, first):
        with self.db.cursor() as cur:
            cur.execute("""SELECT count(es_append('job-' || (i %% 8), 'JobQueued',
                                                  jsonb_build_object('i', i)))
                             FROM generate_series(%s, %s) i""", (first, first + n - 1))
            # events of another category are not delivered
            cur.execute("SELECT es_append('other-1', 'Noise', '{}')")

    def wait_for(self, count, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if scalar(self.db, "SELECT count(*) FROM handled") >= count:
                return
            time.sleep(0.05)
        self.fail("handled %d events, not %d"
                  % (scalar(self.db, "SELECT count(*) FROM handled"), count))

    def test_group_of_two(self):
        self.append(60, 1)
        scalar(self.db, "SELECT es_create_subscription('jobs', 'job', group_size => 2,"
                        " if_not_exists => true)")
        env = dict(os.environ, PGDATABASE=DB)
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "consumer.py"),
                                 "jobs", "2"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            self.wait_for(60)
            # new events reach the running consumers through their long polls
            self.append(20, 61)
            self.wait_for(80)
            # both members are leased to the consumer while it runs
            self.assertEqual(scalar(self.db, """SELECT count(*) FROM es_subscription_status
                                                 WHERE subscription = 'jobs' AND lease_live"""), 2)
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn("handled member 0:", out)

        # every event of the category, once
        self.assertEqual(scalar(self.db, """
            SELECT (SELECT array_agg(global_position ORDER BY global_position) FROM handled) =
                   (SELECT array_agg(global_position ORDER BY global_position)
                      FROM es_events WHERE stream_id LIKE 'job-%%')"""), True)
        # each stream at one member, in version order
        self.assertEqual(scalar(self.db, """
            SELECT count(*) FROM (SELECT stream_id FROM handled GROUP BY stream_id
                                  HAVING count(DISTINCT member) > 1) x"""), 0)
        self.assertEqual(scalar(self.db, """
            SELECT bool_and(ordered) FROM (
                SELECT array_agg(version ORDER BY seq) = array_agg(version ORDER BY version)
                       AS ordered FROM handled GROUP BY stream_id) x"""), True)
        # both members did work, and let go of their leases on the way out
        self.assertEqual(scalar(self.db, "SELECT count(DISTINCT member) FROM handled"), 2)
        self.assertEqual(scalar(self.db, """SELECT count(*) FROM es_subscription_status
                                             WHERE subscription = 'jobs'
                                               AND consumer IS NULL
                                               AND delivered_to = position"""), 2)


if __name__ == "__main__":
    unittest.main()
