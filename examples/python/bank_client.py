"""A Python client of the es_pg_bank example.

Write side: the bank commands (bank_create_account, bank_deposit,
bank_withdraw, bank_close_account) through psycopg2, each command or unit of
work in a REPEATABLE READ transaction.  When another session changed the
account in between, PostgreSQL answers SQLSTATE 40001 (es_pg's version
conflict) and the client retries the whole transaction: the bank function
reloads the account and decides again, so the command takes effect exactly
once.  Deadlocks (40P01) are retried the same way.

Read side: the read models (tables bank_accounts, bank_transactions,
bank_daily_summary) as SQLAlchemy ORM classes.  The bank projections are
inline: a committed command is visible there at once.

Rule violations arrive as SQLSTATEs of class EB (see docs/bank.md) and are
raised as BankRuleError with the rule's name.

Connection settings come from the usual PG* environment variables (libpq).

    /usr/bin/python3 bank_client.py     runs the design notes' story
"""

import os
from contextlib import contextmanager
from decimal import Decimal

import psycopg2
import psycopg2.errors
import psycopg2.extensions
from sqlalchemy import BigInteger, Column, Date, DateTime, Numeric, Text
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, declarative_base

RULES = {
    "EB001": "account_not_found",
    "EB002": "account_already_exists",
    "EB003": "account_closed",
    "EB004": "invalid_amount",
    "EB005": "insufficient_funds",
    "EB006": "nonzero_balance",
}

RETRYABLE = (psycopg2.errors.SerializationFailure,    # 40001
             psycopg2.errors.DeadlockDetected)        # 40P01

Base = declarative_base()


class Account(Base):
    """Projection bank_accounts: one row per account."""
    __tablename__ = "bank_accounts"
    account_id = Column(Text, primary_key=True)
    owner = Column(Text, nullable=False)
    balance = Column(Numeric, nullable=False)
    status = Column(Text, nullable=False)
    opened_at = Column(DateTime(timezone=True), nullable=False)
    last_updated = Column(DateTime(timezone=True), nullable=False)
    version = Column(BigInteger, nullable=False)


class Transaction(Base):
    """Projection bank_transactions: one row per deposit or withdrawal."""
    __tablename__ = "bank_transactions"
    global_position = Column(BigInteger, primary_key=True)
    account_id = Column(Text, nullable=False)
    version = Column(BigInteger, nullable=False)
    type = Column(Text, nullable=False)
    amount = Column(Numeric, nullable=False)
    recorded_at = Column(DateTime(timezone=True), nullable=False)


class DailySummary(Base):
    """Projection bank_daily_summary: one row per UTC day."""
    __tablename__ = "bank_daily_summary"
    day = Column(Date, primary_key=True)
    deposits = Column(Numeric, nullable=False)
    withdrawals = Column(Numeric, nullable=False)
    net = Column(Numeric)
    transactions = Column(BigInteger, nullable=False)


class BankRuleError(Exception):
    """A command refused by a rule of the account (SQLSTATE EB001..EB006)."""

    def __init__(self, error):
        super().__init__(error.diag.message_primary)
        self.sqlstate = error.pgcode
        self.rule = RULES[error.pgcode]
        self.detail = error.diag.message_detail


class Commands:
    """The bank commands, on a cursor inside the current transaction."""

    def __init__(self, cursor):
        self.cur = cursor

    def _call(self, sql, params):
        self.cur.execute(sql, params)
        return self.cur.fetchone()[0]       # the account's new version

    def create_account(self, account_id, owner, initial_deposit=Decimal(0)):
        return self._call("SELECT bank_create_account(%s, %s, %s)",
                          (account_id, owner, initial_deposit))

    def deposit(self, account_id, amount):
        return self._call("SELECT bank_deposit(%s, %s)", (account_id, amount))

    def withdraw(self, account_id, amount):
        return self._call("SELECT bank_withdraw(%s, %s)", (account_id, amount))

    def close_account(self, account_id):
        return self._call("SELECT bank_close_account(%s)", (account_id,))


class BankClient:
    """Commands through psycopg2, queries through SQLAlchemy's ORM."""

    def __init__(self, dbname=None, max_attempts=5,
                 isolation=psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ):
        self.dbname = dbname or os.environ.get("PGDATABASE", "postgres")
        self.max_attempts = max_attempts
        self.retries = 0        # transactions retried after 40001 or 40P01
        self.conn = psycopg2.connect(dbname=self.dbname)
        self.conn.set_session(isolation_level=isolation)
        self.engine = create_engine(
            "postgresql+psycopg2://",
            creator=lambda: psycopg2.connect(dbname=self.dbname))

    @property
    def pid(self):
        """Backend pid of the command connection (to watch it wait)."""
        return self.conn.get_backend_pid()

    def close(self):
        self.conn.close()
        self.engine.dispose()

    def transaction(self, work):
        """Run work(commands) in one transaction; retry it on 40001/40P01.

        A failed attempt rolled back entirely, so running the bank commands
        again is safe: they reload the account and decide again.
        """
        attempt = 1
        while True:
            try:
                with self.conn:                 # commit, or roll back
                    with self.conn.cursor() as cur:
                        return work(Commands(cur))
            except RETRYABLE:
                if attempt >= self.max_attempts:
                    raise
                attempt += 1
                self.retries += 1
            except psycopg2.Error as error:
                if error.pgcode in RULES:
                    raise BankRuleError(error) from error
                raise

    # one command, one transaction
    def create_account(self, account_id, owner, initial_deposit=Decimal(0)):
        return self.transaction(
            lambda c: c.create_account(account_id, owner, initial_deposit))

    def deposit(self, account_id, amount):
        return self.transaction(lambda c: c.deposit(account_id, amount))

    def withdraw(self, account_id, amount):
        return self.transaction(lambda c: c.withdraw(account_id, amount))

    def close_account(self, account_id):
        return self.transaction(lambda c: c.close_account(account_id))

    def transfer(self, source, target, amount):
        """Two commands, one unit of work: both or neither."""
        def work(c):
            c.withdraw(source, amount)
            c.deposit(target, amount)
        return self.transaction(work)

    # queries: the read models through the ORM
    @contextmanager
    def session(self):
        with Session(self.engine) as session:
            yield session

    def account(self, account_id):
        with self.session() as s:
            return s.query(Account).filter_by(account_id=account_id).one_or_none()

    def history(self, account_id):
        with self.session() as s:
            return s.execute(
                select(Transaction)
                .where(Transaction.account_id == account_id)
                .order_by(Transaction.version)).scalars().all()

    def daily_summary(self):
        with self.session() as s:
            return s.query(DailySummary).order_by(DailySummary.day).all()

    # the write model: the account replayed from its events, at a version
    def replayed_balance(self, account_id, as_of_version=None):
        with self.conn, self.conn.cursor() as cur:
            cur.execute("SELECT (bank_account_state(%s, %s)->>'balance')::numeric",
                        (account_id, as_of_version))
            return cur.fetchone()[0]


def story():
    bank = BankClient()
    try:
        account_id = "PY-%d" % os.getpid()
        bank.create_account(account_id, "Alice", Decimal("1000"))
        bank.deposit(account_id, Decimal("500"))
        bank.withdraw(account_id, Decimal("200"))
        acc = bank.account(account_id)
        print("account %s of %s: balance %s (%s)"
              % (acc.account_id, acc.owner, acc.balance, acc.status))
        for t in bank.history(account_id):
            print("  v%d %-10s %8s  %s" % (t.version, t.type, t.amount,
                                          t.recorded_at))
        print("replayed balance:", bank.replayed_balance(account_id))
        try:
            bank.withdraw(account_id, Decimal("5000"))
        except BankRuleError as e:
            print("refused: %s %s: %s" % (e.sqlstate, e.rule, e))
    finally:
        bank.close()


if __name__ == "__main__":
    story()
