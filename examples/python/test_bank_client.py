"""Tests of the Python bank client against a real server: a fresh database
with es_pg_bank, the design notes' story, every rule's SQLSTATE, and a real
version conflict between two connections, retried by the client.

    /usr/bin/python3 -m unittest -v test_bank_client
"""

import threading
import time
import unittest
from decimal import Decimal

import psycopg2
import psycopg2.extensions

from bank_client import BankClient, BankRuleError, Transaction

DB = "es_bank_python"
D = Decimal


def admin_connection():
    conn = psycopg2.connect(dbname="postgres")
    conn.autocommit = True
    return conn


def events(bank, account_id):
    """(event type, amount, attempt) of an account's events, oldest first."""
    with bank.conn, bank.conn.cursor() as cur:
        cur.execute("""SELECT event_type, (data->>'amount')::numeric,
                              (metadata->>'attempt')::int
                         FROM es_read_stream(bank_stream_id(%s))""",
                    (account_id,))
        return cur.fetchall()


def wait_for_lock_wait(admin, pid):
    """Wait until backend pid waits for a lock (blocked on the stream)."""
    with admin.cursor() as cur:
        for _ in range(200):
            cur.execute("SELECT wait_event_type FROM pg_stat_activity "
                        "WHERE pid = %s", (pid,))
            row = cur.fetchone()
            if row and row[0] == "Lock":
                return
            time.sleep(0.05)
    raise AssertionError("backend %d never waited for a lock" % pid)


class BankClientTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.admin = admin_connection()
        with cls.admin.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)
            cur.execute("CREATE DATABASE %s" % DB)
        setup = psycopg2.connect(dbname=DB)
        setup.autocommit = True
        setup.cursor().execute("CREATE EXTENSION es_pg_bank CASCADE")
        setup.close()
        cls.bank = BankClient(DB)

    @classmethod
    def tearDownClass(cls):
        cls.bank.close()
        with cls.admin.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)
        cls.admin.close()

    def test_1_story(self):
        """The design notes' story: create 1000, deposit 500, withdraw 200."""
        bank = self.bank
        self.assertEqual(bank.create_account("ACC-001", "Alice", D(1000)), 1)
        self.assertEqual(bank.deposit("ACC-001", D(500)), 2)
        self.assertEqual(bank.withdraw("ACC-001", D(200)), 3)

        acc = bank.account("ACC-001")
        self.assertEqual((acc.owner, acc.balance, acc.status, acc.version),
                         ("Alice", D(1300), "open", 3))

        self.assertEqual([(t.version, t.type, t.amount)
                          for t in bank.history("ACC-001")],
                         [(2, "deposit", D(500)), (3, "withdrawal", D(200))])
        self.assertTrue(all(isinstance(t, Transaction)
                            for t in bank.history("ACC-001")))

        # one row per UTC day: one, unless the test ran across midnight
        rows = bank.daily_summary()
        self.assertEqual((sum(r.deposits for r in rows),
                          sum(r.withdrawals for r in rows),
                          sum(r.net for r in rows),
                          sum(r.transactions for r in rows)),
                         (D(500), D(200), D(300), 2))

        # the write model agrees, and remembers the past
        self.assertEqual(bank.replayed_balance("ACC-001"), D(1300))
        self.assertEqual(bank.replayed_balance("ACC-001", 2), D(1500))

    def test_2_rules(self):
        """Every rule is refused with its SQLSTATE, and writes nothing."""
        bank = self.bank
        bank.create_account("ACC-RULES", "Bob", D(10))
        cases = [
            (lambda: bank.deposit("ACC-NOPE", D(1)), "EB001", "account_not_found"),
            (lambda: bank.create_account("ACC-RULES", "Eve"), "EB002", "account_already_exists"),
            (lambda: bank.deposit("ACC-RULES", D(-5)), "EB004", "invalid_amount"),
            (lambda: bank.withdraw("ACC-RULES", D("NaN")), "EB004", "invalid_amount"),
            (lambda: bank.withdraw("ACC-RULES", D("10.01")), "EB005", "insufficient_funds"),
            (lambda: bank.close_account("ACC-RULES"), "EB006", "nonzero_balance"),
        ]
        for run, sqlstate, rule in cases:
            with self.subTest(sqlstate=sqlstate):
                with self.assertRaises(BankRuleError) as cm:
                    run()
                self.assertEqual((cm.exception.sqlstate, cm.exception.rule),
                                 (sqlstate, rule))
        bank.withdraw("ACC-RULES", D(10))
        bank.close_account("ACC-RULES")
        for run in (lambda: bank.deposit("ACC-RULES", D(1)),
                    lambda: bank.withdraw("ACC-RULES", D(1))):
            with self.assertRaises(BankRuleError) as cm:
                run()
            self.assertEqual(cm.exception.sqlstate, "EB003")

        self.assertEqual([e[0] for e in events(bank, "ACC-RULES")],
                         ["AccountCreated", "MoneyWithdrawn", "AccountClosed"])
        acc = bank.account("ACC-RULES")
        self.assertEqual((acc.status, acc.balance), ("closed", D(0)))

    def race(self, account_id, isolation):
        """a deposits and keeps its transaction open; b withdraws meanwhile.

        b loads the account at version 1 and waits for a's stream lock; when
        a commits, b's append finds version 2: a real version conflict.
        Returns b's client and the version its withdrawal returned.
        """
        self.bank.create_account(account_id, "Carol", D(1000))
        a = BankClient(DB)
        b = BankClient(DB, isolation=isolation)
        result = {}

        def withdraw():
            try:
                result["version"] = b.withdraw(account_id, D(50))
            except Exception as e:      # reported by the main thread
                result["error"] = e

        try:
            with a.conn.cursor() as cur:
                cur.execute("SELECT bank_deposit(%s, 100)", (account_id,))
                thread = threading.Thread(target=withdraw)
                thread.start()
                wait_for_lock_wait(self.admin, b.pid)
            a.conn.commit()
            thread.join(30)
            self.assertNotIn("error", result)
            return b, result["version"]
        finally:
            a.close()
            b.close()

    def test_3_conflict_retried_by_client(self):
        """A real 40001 between two connections, retried by the client."""
        b, version = self.race(
            "ACC-RACE", psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ)
        self.assertEqual(version, 3)
        self.assertEqual(b.retries, 1)
        # both took effect, exactly once each
        self.assertEqual(events(self.bank, "ACC-RACE"),
                         [("AccountCreated", None, 1),
                          ("MoneyDeposited", D(100), 1),
                          ("MoneyWithdrawn", D(50), 1)])
        self.assertEqual(self.bank.account("ACC-RACE").balance, D(1050))
        self.assertEqual(self.bank.replayed_balance("ACC-RACE"), D(1050))

    def test_4_conflict_retried_by_function(self):
        """Under READ COMMITTED the bank function retries by itself."""
        b, version = self.race(
            "ACC-RACE-RC", psycopg2.extensions.ISOLATION_LEVEL_READ_COMMITTED)
        self.assertEqual(version, 3)
        self.assertEqual(b.retries, 0)
        self.assertTrue(any('version conflict on account "ACC-RACE-RC": '
                            'retrying (attempt 2 of 5)' in n
                            for n in b.conn.notices))
        self.assertEqual(events(self.bank, "ACC-RACE-RC"),
                         [("AccountCreated", None, 1),
                          ("MoneyDeposited", D(100), 1),
                          ("MoneyWithdrawn", D(50), 2)])
        self.assertEqual(self.bank.account("ACC-RACE-RC").balance, D(1050))

    def test_5_transfer(self):
        """A transfer is one unit of work: both commands or neither."""
        bank = self.bank
        bank.create_account("ACC-T1", "Erin", D(300))
        bank.create_account("ACC-T2", "Frank")
        bank.transfer("ACC-T1", "ACC-T2", D("120.50"))
        with self.assertRaises(BankRuleError) as cm:
            bank.transfer("ACC-T1", "ACC-T2", D(1000))
        self.assertEqual(cm.exception.sqlstate, "EB005")
        self.assertEqual(bank.account("ACC-T1").balance, D("179.50"))
        self.assertEqual(bank.account("ACC-T2").balance, D("120.50"))
        self.assertEqual(len(events(bank, "ACC-T2")), 2)


if __name__ == "__main__":
    unittest.main()
