#!/usr/bin/python3
"""feed_checker.py: attack the promise of es_pg's global feed (issue 10).

The promise: a follower of the global feed that pages es_read_all(last, n),
passing the last position it received, sees every committed event exactly
once, in increasing position order, and never an event whose transaction
aborted; for every mix of writers, with and without es_pg in
shared_preload_libraries.

The program creates two databases in the server it is pointed at: a main
one, and a "twin" whose OID is the main one's modulo 16 (with es_pg
preloaded, 0.1.0 hashed databases onto 16 feed lock slots that way), both
with es_pg.  Until a deadline, writers of every kind write to streams of
their own (so each knows its next version):

  single     es_append of one event
  batch      es_append_batch of 5 to 40 small events
  toast      es_append_batch of 2 to 4 events of 100 kB to 1 MB (TOASTed)
  insert     a direct INSERT INTO es_events of 1 to 5 rows (positions from
             the column default), the transaction left open a few ms
  copy       COPY es_events FROM STDIN of 1 to 20 rows
  rollback   appends, batches and direct INSERTs that roll back
  savepoint  appends in SAVEPOINTs, some rolled back to, some released;
             one transaction in ten rolled back as a whole
  twophase   PREPARE TRANSACTION of appends (one in four a direct INSERT),
             then COMMIT PREPARED or ROLLBACK PREPARED
  long       an append, then the transaction stays open 0.3 to 1 s before
             a second append and COMMIT (and a pause of 1.5 to 3 s)
  twin-insert, twin-append
             direct INSERT / COPY, and appends, in the twin database

Readers page es_read_all(last, 100) from the last position they received:
two READ COMMITTED followers, a REPEATABLE READ follower with one transaction
per page, a REPEATABLE READ follower that reads up to 10 pages per
transaction, a follower of the twin database, and an async projection whose
handler records every event it is given (applied by the background worker
when es_pg is preloaded, else by a loop calling es_apply_projections).

After the deadline the writers finish their transaction (prepared ones are
resolved), the readers drain to the head, and the program checks:

  - the table: every acknowledged commit is there exactly once, at the
    stream and version its writer got; nothing of an aborted transaction,
    savepoint or prepared-then-rolled-back transaction is; nothing else is;
    every stream's versions are 1..N;
  - every follower and the projection: saw each event of the final table
    exactly once, in strictly increasing position order, identical (id and
    tag), and nothing else (an aborted event, or one that does not exist).

It prints the figures, writes them to --figures (appended) and a summary to
--json, and exits 0 when every check passed, 1 when one failed, 2 when it
could not run.  Python 3 with Debian's psycopg2 (python3-psycopg2).

  /usr/bin/python3 test/feed_checker.py --host /tmp/sock --port 5432 --seconds 30
"""

import argparse
import array
import base64
import io
import json
import os
import random
import sys
import threading
import time
import traceback
import uuid

import psycopg2
import psycopg2.extensions

PAGE = 100
SLOTS = 16
PROJECTION = 'feed_checker'
NS = uuid.UUID('6c8e0b8a-6a43-4d5e-9d0a-6f1f2bd51f10')

# writer kinds of the default mix: (kind, database, how many)
DEFAULT_MIX = [
    ('single', 'main', 2),
    ('batch', 'main', 1),
    ('toast', 'main', 1),
    ('insert', 'main', 1),
    ('copy', 'main', 1),
    ('rollback', 'main', 1),
    ('savepoint', 'main', 1),
    ('twophase', 'main', 1),
    ('long', 'main', 1),
    ('twin-insert', 'twin', 1),
    ('twin-append', 'twin', 1),
]

# Pauses between transactions, in seconds, by writer kind.  A transaction
# that is open holds the feed back (followers stop before its first
# position) and a direct insert makes everyone wait for its commit, so a
# writer of those kinds that never paused would keep the followers from
# ever meeting the other writers' races; the long transaction in particular
# is open only a quarter of the time or so.
PAUSES = {
    'insert': (0.05, 0.15),
    'copy': (0.05, 0.15),
    'rollback': (0.005, 0.03),
    'savepoint': (0.005, 0.03),
    'twophase': (0.005, 0.03),
    'long': (1.5, 3.0),
}


class Run:
    """What all threads share: settings, the deadline, the stop flags."""

    def __init__(self, args):
        self.args = args
        self.dsn = {}
        self.run_id = uuid.uuid4().hex[:8]
        self.deadline = None
        self.preloaded = False
        self.drain_target = {}      # database -> head position to drain to
        self.drain_started = None
        self.stop_readers = threading.Event()

    def connect(self, db, name):
        conn = psycopg2.connect(dbname=self.dsn[db],
                                application_name='feed_checker/' + name,
                                **self.args.conn)
        conn.autocommit = True
        return conn

    def time_left(self):
        return self.deadline - time.monotonic()


def sqlstate(exc):
    return getattr(exc, 'pgcode', None) or ''


class Writer(threading.Thread):
    """A writer loops over transactions of one kind until the deadline.

    Every event gets a tag, writer/transaction/index, stored in its data
    (in its metadata for TOASTed events, whose data is large) and turned
    into its event id where the caller may give one.  The writer keeps what
    it was told, compactly (a soak run writes millions of events): per
    transaction the stream, first version and event indexes of what was
    committed, and the indexes of what was rolled back.
    """

    def __init__(self, run, kind, db, index):
        super().__init__(name='%s-%d' % (kind, index), daemon=True)
        self.ctx = run
        self.kind = kind
        self.db = db
        self.label = self.name
        self.rng = random.Random('%s/%s/%s' % (run.args.seed, kind, index))
        self.versions = {}          # stream -> committed version
        self.streams = ['%s-%s-%d' % (run.run_id, self.label, i) for i in range(3)]
        self.committed = []         # (txn, stream, first version, indexes)
        self.aborted = []           # (txn, indexes)
        self.events_committed = 0
        self.events_aborted = 0
        self.tx_committed = 0
        self.tx_aborted = 0
        self.txn = 0
        self.error = None
        self.conn = None

    # helpers

    def tag(self, i):
        return '%s/%d/%d' % (self.label, self.txn, i)

    def event_id(self, tag):
        return str(uuid.uuid5(NS, self.ctx.run_id + '/' + tag))

    def pick_stream(self):
        s = self.rng.choice(self.streams)
        return s, self.versions.get(s, 0)

    def q(self, sql, params=None):
        cur = self.conn.cursor()
        cur.execute(sql, params)
        row = cur.fetchone() if cur.description else None
        cur.close()
        return row

    def append_one(self, stream, v, tag):
        got = self.q('SELECT es_append(%s, %s, %s::jsonb, %s, NULL, %s::uuid)',
                     (stream, 'Checked', json.dumps({'tag': tag}), v,
                      self.event_id(tag)))[0]
        if got != v + 1:
            raise AssertionError('es_append on %s at %d returned %d' % (stream, v, got))
        return got

    def append_batch(self, stream, v, tags, sizes=None):
        events = []
        for k, tag in enumerate(tags):
            if sizes:
                payload = base64.b64encode(os.urandom(sizes[k] * 3 // 4)).decode()
                events.append({'type': 'CheckedLarge',
                               'data': {'blob': payload},
                               'metadata': {'tag': tag},
                               'id': self.event_id(tag)})
            else:
                events.append({'type': 'CheckedBatch', 'data': {'tag': tag},
                               'id': self.event_id(tag)})
        got = self.q('SELECT es_append_batch(%s, %s::jsonb, %s)',
                     (stream, json.dumps(events), v))[0]
        if got != v + len(tags):
            raise AssertionError('es_append_batch on %s at %d returned %d'
                                 % (stream, v, got))
        return got

    def direct_insert(self, stream, v, tags):
        values = []
        params = []
        for k, tag in enumerate(tags):
            values.append('(%s, %s, %s, %s::jsonb)')
            params += [stream, v + 1 + k, 'CheckedInsert', json.dumps({'tag': tag})]
        self.q('INSERT INTO es_events (stream_id, version, event_type, data) VALUES '
               + ', '.join(values), params)
        return v + len(tags)

    def copy_in(self, stream, v, tags):
        buf = io.StringIO()
        for k, tag in enumerate(tags):
            data = json.dumps({'tag': tag}).replace('\\', '\\\\')
            buf.write('%s\t%d\tCheckedCopy\t%s\n' % (stream, v + 1 + k, data))
        buf.seek(0)
        cur = self.conn.cursor()
        cur.copy_expert('COPY es_events (stream_id, version, event_type, data) FROM STDIN', buf)
        cur.close()
        return v + len(tags)

    @staticmethod
    def indexes(tags):
        return tuple(int(t[t.rindex('/') + 1:]) for t in tags)

    def done(self, stream, first, tags, commit):
        """Record a finished transaction's events on one stream."""
        if commit:
            self.committed.append((self.txn, stream, first, self.indexes(tags)))
            self.versions[stream] = first + len(tags) - 1
            self.events_committed += len(tags)
        else:
            self.abort(tags)

    def abort(self, tags):
        if tags:
            self.aborted.append((self.txn, self.indexes(tags)))
            self.events_aborted += len(tags)

    def acks(self):
        """(tag, stream, version, committed) of every event it wrote."""
        for txn, stream, first, idx in self.committed:
            for k, i in enumerate(idx):
                yield '%s/%d/%d' % (self.label, txn, i), stream, first + k, True
        for tag in self.aborted_tags():
            yield tag, None, None, False

    def aborted_tags(self):
        for txn, idx in self.aborted:
            for i in idx:
                yield '%s/%d/%d' % (self.label, txn, i)

    def run(self):
        try:
            self.conn = self.ctx.connect(self.db, self.label)
            lo, hi = PAUSES.get(self.kind, (0, 0))
            while self.ctx.time_left() > 0:
                self.txn += 1
                self.step()
                if hi:
                    time.sleep(max(0.0, min(self.rng.uniform(lo, hi), self.ctx.time_left())))
        except Exception as exc:
            self.error = '%s (SQLSTATE %s) in transaction %d:\n%s' % (
                exc.__class__.__name__, sqlstate(exc) or '-', self.txn,
                traceback.format_exc())
        finally:
            if self.conn is not None:
                try:
                    if self.conn.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
                        self.conn.cancel()
                        self.q('ROLLBACK')
                    self.conn.close()
                except Exception:
                    pass

    # the kinds

    def step(self):
        getattr(self, 'step_' + self.kind.replace('twin-', 'twin_'))()

    def step_single(self):
        stream, v = self.pick_stream()
        tag = self.tag(1)
        self.append_one(stream, v, tag)
        self.done(stream, v + 1, [tag], True)
        self.tx_committed += 1

    def step_batch(self):
        stream, v = self.pick_stream()
        tags = [self.tag(i) for i in range(1, self.rng.randint(5, 40) + 1)]
        self.append_batch(stream, v, tags)
        self.done(stream, v + 1, tags, True)
        self.tx_committed += 1

    def step_toast(self):
        stream, v = self.pick_stream()
        n = self.rng.randint(2, 4)
        tags = [self.tag(i) for i in range(1, n + 1)]
        # log-uniform between 100 kB and 1 MB
        sizes = [int(100_000 * 10 ** self.rng.random()) for _ in tags]
        self.append_batch(stream, v, tags, sizes)
        self.done(stream, v + 1, tags, True)
        self.tx_committed += 1

    def step_insert(self):
        stream, v = self.pick_stream()
        tags = [self.tag(i) for i in range(1, self.rng.randint(1, 5) + 1)]
        self.q('BEGIN')
        self.direct_insert(stream, v, tags)
        # stay open a moment, so that appenders queue up behind the insert
        time.sleep(self.rng.uniform(0, 0.01))
        self.q('COMMIT')
        self.done(stream, v + 1, tags, True)
        self.tx_committed += 1

    def step_copy(self):
        stream, v = self.pick_stream()
        tags = [self.tag(i) for i in range(1, self.rng.randint(1, 20) + 1)]
        self.q('BEGIN')
        self.copy_in(stream, v, tags)
        time.sleep(self.rng.uniform(0, 0.005))
        self.q('COMMIT')
        self.done(stream, v + 1, tags, True)
        self.tx_committed += 1

    def step_rollback(self):
        stream, v = self.pick_stream()
        self.q('BEGIN')
        way = self.txn % 3
        if way == 0:
            tags = [self.tag(1)]
            self.append_one(stream, v, tags[0])
        elif way == 1:
            tags = [self.tag(i) for i in range(1, self.rng.randint(2, 10) + 1)]
            self.append_batch(stream, v, tags)
        else:
            tags = [self.tag(i) for i in range(1, self.rng.randint(1, 3) + 1)]
            self.direct_insert(stream, v, tags)
        time.sleep(self.rng.uniform(0, 0.005))
        self.q('ROLLBACK')
        self.done(stream, v + 1, tags, False)
        self.tx_aborted += 1
        # every tenth time, commit an append too, so that later rolled-back
        # appends take versions that committed events hold
        if self.txn % 10 == 0:
            tag = self.tag(99)
            self.append_one(stream, v, tag)
            self.done(stream, v + 1, [tag], True)
            self.tx_committed += 1

    def step_savepoint(self):
        stream, v = self.pick_stream()
        start = v
        kept = []
        dropped = []
        self.q('BEGIN')
        for i in range(1, self.rng.randint(2, 5) + 1):
            tag = self.tag(i)
            self.q('SAVEPOINT s')
            self.append_one(stream, v, tag)
            if self.rng.random() < 0.4:
                self.q('ROLLBACK TO SAVEPOINT s')
                dropped.append(tag)
            else:
                self.q('RELEASE SAVEPOINT s')
                kept.append(tag)
                v += 1
        if self.rng.random() < 0.1:
            self.q('ROLLBACK')
            self.abort(kept + dropped)
            self.tx_aborted += 1
        else:
            self.q('COMMIT')
            if kept:
                self.done(stream, start + 1, kept, True)
            self.abort(dropped)
            self.tx_committed += 1

    def step_twophase(self):
        stream, v = self.pick_stream()
        gid = 'feed_checker_%s_%s_%d' % (self.ctx.run_id, self.label, self.txn)
        self.q('BEGIN')
        if self.txn % 4 == 0:
            tags = [self.tag(i) for i in range(1, self.rng.randint(1, 3) + 1)]
            self.direct_insert(stream, v, tags)
        elif self.txn % 2 == 0:
            tags = [self.tag(i) for i in range(1, self.rng.randint(2, 6) + 1)]
            self.append_batch(stream, v, tags)
        else:
            tags = [self.tag(1)]
            self.append_one(stream, v, tags[0])
        self.q("PREPARE TRANSACTION '%s'" % gid)
        time.sleep(self.rng.uniform(0, 0.01))
        if self.rng.random() < 0.5:
            self.q("COMMIT PREPARED '%s'" % gid)
            self.done(stream, v + 1, tags, True)
            self.tx_committed += 1
        else:
            self.q("ROLLBACK PREPARED '%s'" % gid)
            self.done(stream, v + 1, tags, False)
            self.tx_aborted += 1

    def step_long(self):
        stream, v = self.pick_stream()
        tags = [self.tag(1), self.tag(2)]
        self.q('BEGIN')
        self.append_one(stream, v, tags[0])
        time.sleep(max(0.0, min(self.rng.uniform(0.3, 1.0), self.ctx.time_left())))
        self.append_one(stream, v + 1, tags[1])
        self.q('COMMIT')
        self.done(stream, v + 1, tags, True)
        self.tx_committed += 1

    def step_twin_insert(self):
        stream, v = self.pick_stream()
        self.q('BEGIN')
        if self.txn % 2:
            tags = [self.tag(i) for i in range(1, self.rng.randint(1, 5) + 1)]
            self.direct_insert(stream, v, tags)
        else:
            tags = [self.tag(i) for i in range(1, self.rng.randint(1, 20) + 1)]
            self.copy_in(stream, v, tags)
        time.sleep(self.rng.uniform(0, 0.005))
        self.q('COMMIT')
        self.done(stream, v + 1, tags, True)
        self.tx_committed += 1

    def step_twin_append(self):
        if self.txn % 3:
            self.step_single()
        else:
            self.step_batch()


class Follower(threading.Thread):
    """A follower pages es_read_all(last, 100) and records what it got."""

    SQL = ('SELECT global_position, event_id::text, '
           "coalesce(metadata->>'tag', data->>'tag') "
           'FROM es_read_all(%s, %s)')

    def __init__(self, run, label, db, mode):
        super().__init__(name=label, daemon=True)
        self.ctx = run
        self.label = label
        self.db = db
        self.mode = mode            # rc, rr_page, rr_multi
        self.rng = random.Random('%s/%s' % (run.args.seed, label))
        self.seen = Seen()
        self.pages = 0
        self.transactions = 0
        self.stuck = None
        self.error = None

    def page(self, cur, last):
        cur.execute(self.SQL, (last, PAGE))
        rows = cur.fetchall()
        self.pages += 1
        self.seen.add(rows)
        return rows[-1][0] if rows else last, len(rows)

    def run(self):
        conn = None
        last = 0
        try:
            conn = self.ctx.connect(self.db, self.label)
            cur = conn.cursor()
            while True:
                if self.mode == 'rc':
                    last, got = self.page(cur, last)
                else:
                    cur.execute('BEGIN ISOLATION LEVEL REPEATABLE READ')
                    for _ in range(1 if self.mode == 'rr_page' else 10):
                        last, got = self.page(cur, last)
                        if got < PAGE:
                            break
                    cur.execute('COMMIT')
                    self.transactions += 1
                if got == PAGE:
                    # behind: read on at once
                    continue
                target = self.ctx.drain_target.get(self.db)
                if target is not None:
                    if last >= target:
                        break
                    if time.monotonic() - self.ctx.drain_started > self.ctx.args.drain_timeout:
                        self.stuck = last
                        break
                if self.ctx.stop_readers.is_set():
                    break
                # followers that come at random moments, not queued up behind
                # one another, are the ones that meet an appender mid-flight
                time.sleep(self.rng.uniform(0, 0.004))
        except Exception as exc:
            self.error = '%s (SQLSTATE %s):\n%s' % (
                exc.__class__.__name__, sqlstate(exc) or '-', traceback.format_exc())
        finally:
            if conn is not None:
                try:
                    conn.close()
                except Exception:
                    pass


class Applier(threading.Thread):
    """Without es_pg preloaded no worker runs: apply the projection by hand."""

    def __init__(self, run):
        super().__init__(name='applier', daemon=True)
        self.ctx = run
        self.calls = 0
        self.error = None

    def run(self):
        conn = None
        try:
            conn = self.ctx.connect('main', 'applier')
            cur = conn.cursor()
            while not self.ctx.stop_readers.is_set():
                cur.execute('SELECT es_apply_projections(%s, 1000)', (PROJECTION,))
                self.calls += 1
                if cur.fetchone()[0] == 0:
                    time.sleep(0.01)
        except Exception as exc:
            self.error = '%s (SQLSTATE %s):\n%s' % (
                exc.__class__.__name__, sqlstate(exc) or '-', traceback.format_exc())
        finally:
            if conn is not None:
                try:
                    conn.close()
                except Exception:
                    pass


def admin_exec(conn, sql, params=None):
    cur = conn.cursor()
    cur.execute(sql, params)
    rows = cur.fetchall() if cur.description else None
    cur.close()
    return rows


def setup(run):
    """Create the main and the twin database (same lock slot), with es_pg."""
    args = run.args
    admin = psycopg2.connect(dbname=args.admin_db, application_name='feed_checker/setup',
                             **args.conn)
    admin.autocommit = True
    libs = admin_exec(admin, 'SHOW shared_preload_libraries')[0][0]
    run.preloaded = 'es_pg' in [s.strip().strip('"') for s in libs.split(',')]
    mpx = int(admin_exec(admin, 'SHOW max_prepared_transactions')[0][0])
    if mpx < 2:
        raise RuntimeError('max_prepared_transactions must be at least 2 (it is %d)' % mpx)
    main = args.prefix + '_main'
    twin = args.prefix + '_twin'
    for db in (main, twin):
        admin_exec(admin, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % db)
    admin_exec(admin, 'CREATE DATABASE "%s"' % main)
    main_oid = admin_exec(admin, 'SELECT oid FROM pg_database WHERE datname = %s', (main,))[0][0]
    tries = 0
    while True:
        tries += 1
        admin_exec(admin, 'CREATE DATABASE "%s"' % twin)
        twin_oid = admin_exec(admin, 'SELECT oid FROM pg_database WHERE datname = %s',
                              (twin,))[0][0]
        if twin_oid % SLOTS == main_oid % SLOTS:
            break
        admin_exec(admin, 'DROP DATABASE "%s"' % twin)
        if tries > 4 * SLOTS:
            raise RuntimeError('no database landed in the slot of OID %d' % main_oid)
    run.dsn = {'main': main, 'twin': twin}
    run.oids = {'main': main_oid, 'twin': twin_oid, 'tries': tries}
    admin.close()

    for db in ('main', 'twin'):
        conn = run.connect(db, 'setup')
        admin_exec(conn, 'CREATE EXTENSION es_pg')
        if db == 'main':
            admin_exec(conn, '''
                CREATE TABLE checker_projection_seen (
                    seq bigserial PRIMARY KEY,
                    global_position bigint NOT NULL,
                    event_id uuid NOT NULL,
                    tag text);
                CREATE FUNCTION checker_projection_apply(e es_events) RETURNS void
                LANGUAGE sql AS $$
                    INSERT INTO checker_projection_seen (global_position, event_id, tag)
                    VALUES (e.global_position, e.event_id,
                            coalesce(e.metadata->>'tag', e.data->>'tag'))
                $$;''')
            admin_exec(conn, "SELECT es_create_projection(%s, "
                       "'checker_projection_apply(es_events)', NULL, 'async')",
                       (PROJECTION,))
        run.es_version = admin_exec(
            conn, "SELECT extversion FROM pg_extension WHERE extname = 'es_pg'")[0][0]
        conn.close()


def teardown(run):
    args = run.args
    admin = psycopg2.connect(dbname=args.admin_db, application_name='feed_checker/teardown',
                             **args.conn)
    admin.autocommit = True
    leftover = admin_exec(admin, "SELECT gid FROM pg_prepared_xacts WHERE gid LIKE %s",
                          ('feed_checker_%s_%%' % run.run_id,))
    for (gid,) in leftover:
        admin_exec(admin, "ROLLBACK PREPARED '%s'" % gid)
    if not args.keep:
        for db in run.dsn.values():
            admin_exec(admin, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % db)
    admin.close()
    return [g for (g,) in leftover]


def wait_projection(run, head, applier):
    """Wait until the async projection has applied everything up to head,
    then read what its handler recorded."""
    conn = run.connect('main', 'projection-wait')
    cur = conn.cursor()
    t0 = time.monotonic()
    status = None
    while True:
        cur.execute('SELECT position, parked, last_error FROM es_projection_status '
                    'WHERE name = %s', (PROJECTION,))
        status = cur.fetchone()
        if status[0] is not None and status[0] >= head:
            break
        # an event the handler gave up on (parked) is a finding already
        if status[1] > 0 or time.monotonic() - t0 > run.args.drain_timeout:
            break
        if applier is not None and not applier.is_alive():
            break
        time.sleep(0.05)
    conn.autocommit = False
    cur = conn.cursor(name='projection_seen')
    cur.itersize = 20000
    cur.execute('SELECT global_position, event_id::text, tag '
                'FROM checker_projection_seen ORDER BY seq')
    seen = Seen(cur)
    conn.rollback()
    conn.close()
    return seen, status


def sig32(event_id, tag):
    return hash((event_id, tag)) & 0xffffffff


def tag32(tag):
    return hash(tag) & 0xffffffff


class Seen:
    """What one reader got, in order, kept compact (a soak run reads
    millions of events): positions, and 32-bit hashes of (event id, tag) and
    of the tag."""

    def __init__(self, rows=()):
        self.pos = array.array('q')
        self.sig = array.array('I')
        self.tag = array.array('I')
        self.add(rows)

    def add(self, rows):
        for pos, eid, tag in rows:
            self.pos.append(pos)
            self.sig.append(sig32(eid, tag))
            self.tag.append(tag32(tag))


def kind_of(tag):
    if not tag:
        return '?'
    return tag.split('/')[0].rsplit('-', 1)[0]


class Expected:
    """The final table as every reader should have seen it, in position
    order, and the hashes of the tags of everything rolled back."""

    def __init__(self, rows, aborted_tags, tag_lookup):
        self.pos = array.array('q')
        self.sig = array.array('I')
        self.kind = array.array('B')
        self.kinds = []
        index = {}
        for pos, eid, tag in rows:
            k = kind_of(tag)
            if k not in index:
                index[k] = len(self.kinds)
                self.kinds.append(k)
            self.pos.append(pos)
            self.sig.append(sig32(eid, tag))
            self.kind.append(index[k])
        self.aborted = {tag32(t) for t in aborted_tags}
        self.tag_lookup = tag_lookup    # positions -> {position: tag}


class GenReader:
    """A file-like reader of the lines of a generator, for COPY FROM STDIN."""

    def __init__(self, lines):
        self.it = iter(lines)
        self.buf = ''

    def read(self, size=-1):
        parts = [self.buf]
        have = len(self.buf)
        while size < 0 or have < size:
            try:
                line = next(self.it)
            except StopIteration:
                break
            parts.append(line)
            have += len(line)
        buf = ''.join(parts)
        if size < 0:
            size = len(buf)
        out, self.buf = buf[:size], buf[size:]
        return out

    readline = read


def copy_field(v):
    if v is None:
        return '\\N'
    if v is True or v is False:
        return 't' if v else 'f'
    return str(v).replace('\\', '\\\\').replace('\t', '\\t').replace('\n', '\\n')


TABLE_CHECKS = [
    ('tags stand more than once in es_events',
     'SELECT tag FROM checker_ev GROUP BY tag HAVING count(*) > 1'),
    ('acknowledged events are missing from es_events',
     'SELECT a.tag FROM checker_acks a WHERE a.committed '
     'AND NOT EXISTS (SELECT FROM checker_ev e WHERE e.tag = a.tag)'),
    ('events are not at the stream and version their writer got',
     'SELECT a.tag FROM checker_acks a JOIN checker_ev e USING (tag) WHERE a.committed '
     'AND (e.stream_id, e.version) IS DISTINCT FROM (a.stream_id, a.version)'),
    ('events of rolled-back transactions are in es_events',
     'SELECT a.tag FROM checker_acks a JOIN checker_ev e USING (tag) WHERE NOT a.committed'),
    ('events in es_events that no writer wrote',
     "SELECT coalesce(e.tag, 'untagged at ' || e.global_position) FROM checker_ev e "
     'WHERE NOT EXISTS (SELECT FROM checker_acks a WHERE a.tag = e.tag)'),
    ('streams whose versions are not 1..N',
     'SELECT stream_id FROM checker_ev GROUP BY stream_id HAVING min(version) <> 1 '
     'OR max(version) <> count(*) OR count(DISTINCT version) <> count(*)'),
]


def check_table(conn, writers, source='es_events'):
    """The final table against what the writers were told, in SQL (in the
    caller's transaction, with temporary tables dropped at its end).
    Returns the problems, the number of events and the highest position."""
    cur = conn.cursor()
    cur.execute('CREATE TEMP TABLE checker_acks (tag text, stream_id text, version bigint, '
                'committed boolean) ON COMMIT DROP')
    lines = ('\t'.join(copy_field(f) for f in ack) + '\n'
             for w in writers for ack in w.acks())
    cur.copy_expert('COPY checker_acks FROM STDIN', GenReader(lines))
    cur.execute('CREATE TEMP TABLE checker_ev ON COMMIT DROP AS '
                'SELECT global_position, stream_id, version, event_id::text AS event_id, '
                "coalesce(metadata->>'tag', data->>'tag') AS tag FROM " + source)
    cur.execute('CREATE UNIQUE INDEX ON checker_ev (global_position); '
                'ANALYZE checker_acks; ANALYZE checker_ev')
    problems = []
    for what, query in TABLE_CHECKS:
        cur.execute('SELECT count(*), (array_agg(x ORDER BY x))[1:5] FROM (%s) s(x)' % query)
        n, examples = cur.fetchone()
        if n:
            problems.append('%d %s, e.g. %s' % (n, what, ', '.join(examples)))
    cur.execute('SELECT count(*), coalesce(max(global_position), 0) FROM checker_ev')
    count, high = cur.fetchone()
    cur.close()
    return problems, count, high


def load_expected(conn, writers):
    """Read checker_ev (see check_table) in position order."""
    def lookup(positions):
        c = conn.cursor()
        c.execute('SELECT global_position, tag FROM checker_ev '
                  'WHERE global_position = ANY(%s)', (list(positions),))
        found = dict(c.fetchall())
        c.close()
        return found
    cur = conn.cursor(name='checker_ev')
    cur.itersize = 20000
    cur.execute('SELECT global_position, event_id, tag FROM checker_ev ORDER BY global_position')
    expected = Expected(cur, (t for w in writers for t in w.aborted_tags()), lookup)
    cur.close()
    return expected


def check_seen(name, seen, expected):
    """One reader's record against the final table: a merge of two lists
    in position order."""
    positions = seen.pos
    out_of_order = sum(1 for i in range(1, len(positions))
                       if positions[i] <= positions[i - 1])
    order = range(len(positions))
    if out_of_order:
        order = sorted(order, key=positions.__getitem__)
    table = expected.pos
    n = len(table)
    i = 0
    prev = None
    duplicates = mismatched = missed = 0
    first_missed = []
    missed_kinds = {}
    not_in_table = []
    aborted_seen = []

    def miss(i):
        nonlocal missed
        missed += 1
        k = expected.kinds[expected.kind[i]]
        missed_kinds[k] = missed_kinds.get(k, 0) + 1
        if len(first_missed) < 10:
            first_missed.append(table[i])

    for j in order:
        p = positions[j]
        if p == prev:
            duplicates += 1
            continue
        prev = p
        while i < n and table[i] < p:
            miss(i)
            i += 1
        if i < n and table[i] == p:
            if expected.sig[i] != seen.sig[j]:
                mismatched += 1
            i += 1
        else:
            not_in_table.append(p)
            if seen.tag[j] in expected.aborted:
                aborted_seen.append(p)
    while i < n:
        miss(i)
        i += 1

    tags = expected.tag_lookup(first_missed) if first_missed else {}
    fig = {
        'reader': name,
        'seen': len(positions),
        'expected': n,
        'missed': missed,
        'duplicates': duplicates,
        'out_of_order': out_of_order,
        'aborted_seen': len(aborted_seen),
        'not_in_table': len(not_in_table),
        'mismatched': mismatched,
        'missed_by_kind': missed_kinds,
        'first_missed': [[p, tags.get(p)] for p in first_missed],
    }
    problems = []
    if missed:
        problems.append('%s missed %d of %d committed events (by writer kind: %s), first: %s'
                        % (name, missed, n,
                           ', '.join('%s %d' % kv for kv in sorted(missed_kinds.items())),
                           ', '.join('%d (%s)' % (p, tags.get(p)) for p in first_missed[:5])))
    if duplicates:
        problems.append('%s saw %d events more than once' % (name, duplicates))
    if out_of_order:
        problems.append('%s saw positions out of order %d times' % (name, out_of_order))
    if aborted_seen:
        problems.append('%s saw %d events of aborted transactions, at positions %s'
                        % (name, len(aborted_seen), ', '.join(map(str, aborted_seen[:5]))))
    if len(not_in_table) > len(aborted_seen):
        problems.append('%s saw %d events that are not in es_events and belong to no '
                        'aborted transaction, at positions %s'
                        % (name, len(not_in_table) - len(aborted_seen),
                           ', '.join(str(p) for p in not_in_table[:5]
                                     if p not in aborted_seen)))
    if mismatched:
        problems.append('%s saw %d events whose id or tag differ from the table\'s'
                        % (name, mismatched))
    return fig, problems


def self_test(args):
    """Show that each check fires: feed the checks records that are wrong
    in one way each, and tables that are wrong in one way each (in
    temporary tables of the server, which need not have es_pg)."""
    class W:
        def __init__(self, acks):
            self._acks = acks

        def acks(self):
            return iter(self._acks)

        def aborted_tags(self):
            return (a[0] for a in self._acks if not a[3])

    # positions 2, 4, ... 20: the odd ones are those of rolled-back appends
    rows = [(2 * v, 's', v, 'id%d' % v, 'single-1/%d/1' % v) for v in range(1, 11)]
    aborted_tag = 'rollback-1/1/1'
    writer = W([(r[4], 's', r[2], True) for r in rows] + [(aborted_tag, None, None, False)])
    good = [(r[0], r[3], r[4]) for r in rows]
    tags = {r[0]: r[4] for r in rows}
    expected = Expected(good, writer.aborted_tags(),
                        lambda ps: {p: tags[p] for p in ps if p in tags})
    failures = 0
    cases = [
        ('a faithful follower', good, {}),
        ('one skipped', good[:4] + good[5:], {'missed': 1}),
        ('the last skipped', good[:-1], {'missed': 1}),
        ('one twice', good[:5] + good[4:], {'duplicates': 1, 'out_of_order': 1}),
        ('two swapped', good[:3] + [good[4], good[3]] + good[5:], {'out_of_order': 1}),
        ('an aborted event', good[:3] + [(7, 'id', aborted_tag)] + good[3:],
         {'aborted_seen': 1, 'not_in_table': 1}),
        ('an aborted event past the end', good + [(21, 'id', aborted_tag)],
         {'aborted_seen': 1, 'not_in_table': 1}),
        ('an invented event', good[:3] + [(7, 'id', 'nobody/1/1')] + good[3:],
         {'not_in_table': 1}),
        ('another event at a position', good[:2] + [(6, 'id3', 'single-1/99/1')] + good[3:],
         {'mismatched': 1}),
        ('another id', good[:2] + [(6, 'other', good[2][2])] + good[3:], {'mismatched': 1}),
    ]
    for name, seen, want in cases:
        fig, problems = check_seen(name, Seen(seen), expected)
        got = {k: fig[k] for k in ('missed', 'duplicates', 'out_of_order', 'aborted_seen',
                                   'not_in_table', 'mismatched') if fig[k]}
        want = {k: v for k, v in want.items() if v}
        if got != want or bool(problems) != bool(want):
            failures += 1
            print('self-test: %s: got %s, want %s' % (name, got, want))

    conn = psycopg2.connect(dbname=args.admin_db, application_name='feed_checker/self-test',
                            **args.conn)
    table_cases = [
        ('a faithful table', rows, []),
        ('a lost commit', rows[:-1], ['missing from es_events']),
        ('a rolled-back event stored', rows + [(21, 's', 11, 'id11', aborted_tag)],
         ['rolled-back transactions are in es_events']),
        ('an event nobody wrote', rows + [(21, 's', 11, 'id11', 'nobody/1/1')],
         ['no writer wrote']),
        ('an event stored twice', rows + [(21, 's', 11, 'id11', rows[0][4])],
         ['more than once', 'not at the stream and version']),
        ('a version gap', rows[:4] + [(10, 's', 6, 'id5', rows[4][4])] + rows[5:],
         ['not at the stream and version', 'versions are not 1..N']),
    ]
    for name, table, want in table_cases:
        cur = conn.cursor()
        cur.execute('CREATE TEMP TABLE checker_fake_events (global_position bigint, '
                    'stream_id text, version bigint, event_id text, data jsonb, '
                    'metadata jsonb) ON COMMIT DROP')
        for pos, stream, version, eid, tag in table:
            cur.execute('INSERT INTO checker_fake_events VALUES (%s, %s, %s, %s, %s, NULL)',
                        (pos, stream, version, eid, json.dumps({'tag': tag})))
        problems, _, _ = check_table(conn, [writer], 'checker_fake_events')
        conn.rollback()
        if len(problems) != len(want) or not all(
                any(w in p for p in problems) for w in want):
            failures += 1
            print('self-test: %s: got %s, want %s' % (name, problems, want))
    conn.close()
    total = len(cases) + len(table_cases)
    print('self-test: %d of %d cases as expected' % (total - failures, total))
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--host', default=os.environ.get('PGHOST'))
    ap.add_argument('--port', default=os.environ.get('PGPORT'))
    ap.add_argument('--user', default=os.environ.get('PGUSER'))
    ap.add_argument('--admin-db', default='postgres',
                    help='database to connect to for CREATE DATABASE (postgres)')
    ap.add_argument('--prefix', default='feed_checker',
                    help='name prefix of the two databases (feed_checker)')
    soak = os.environ.get('ES_SOAK', '') not in ('', '0')
    ap.add_argument('--seconds', type=float,
                    default=float(os.environ.get('ES_FEED_SECONDS') or (300 if soak else 30)))
    ap.add_argument('--drain-timeout', type=float, default=120.0)
    ap.add_argument('--mix', default=None,
                    help='writers, e.g. single=2,insert=1,twin-insert=1 (default: the full mix)')
    ap.add_argument('--rc-followers', type=int, default=2,
                    help='READ COMMITTED followers of the main database (2)')
    ap.add_argument('--seed', default=None)
    ap.add_argument('--label', default='')
    ap.add_argument('--figures', default=None, help='append the figures to this file')
    ap.add_argument('--json', default=None, help='write a summary to this file')
    ap.add_argument('--keep', action='store_true', help='keep the databases')
    ap.add_argument('--self-test', action='store_true',
                    help='check the checks on made-up records, without a server')
    args = ap.parse_args()
    if args.self_test:
        args.conn = {k: v for k, v in (('host', args.host), ('port', args.port),
                                       ('user', args.user)) if v}
        return self_test(args)
    args.conn = {k: v for k, v in (('host', args.host), ('port', args.port),
                                   ('user', args.user)) if v}
    args.seed = args.seed or str(random.randrange(1 << 30))

    mix = DEFAULT_MIX
    if args.mix:
        want = dict((kv.split('=')[0], int(kv.split('=')[1])) for kv in args.mix.split(','))
        mix = [(k, 'twin' if k.startswith('twin-') else 'main', n)
               for k, n in want.items() if n > 0]
        for k, _, _ in mix:
            if not hasattr(Writer, 'step_' + k.replace('twin-', 'twin_')):
                ap.error('unknown writer kind %s' % k)

    run = Run(args)
    t_start = time.monotonic()
    try:
        setup(run)
    except Exception as exc:
        print('feed checker: setup failed: %s' % exc, file=sys.stderr)
        return 2

    writers = []
    for kind, db, n in mix:
        for i in range(1, n + 1):
            writers.append(Writer(run, kind, db, i))
    followers = [Follower(run, 'follower-rc-%d' % i, 'main', 'rc')
                 for i in range(1, args.rc_followers + 1)]
    followers += [
                 Follower(run, 'follower-rr-page', 'main', 'rr_page'),
                 Follower(run, 'follower-rr-multi', 'main', 'rr_multi'),
                 Follower(run, 'twin-follower-rc', 'twin', 'rc')]
    applier = None if run.preloaded else Applier(run)

    print('feed checker %s: es_pg %s, %s, %.0f s, %d writers, seed %s; databases %s '
          '(OID %d) and %s (OID %d, slot %d, %d tries)'
          % (args.label, run.es_version,
             'preloaded' if run.preloaded else 'not preloaded', args.seconds,
             len(writers), args.seed, run.dsn['main'], run.oids['main'], run.dsn['twin'],
             run.oids['twin'], run.oids['main'] % SLOTS, run.oids['tries']), flush=True)

    run.deadline = time.monotonic() + args.seconds
    for t in followers + writers + ([applier] if applier else []):
        t.start()

    problems = []
    hung = []
    for w in writers:
        w.join(max(1.0, run.time_left() + 120))
        if w.is_alive():
            hung.append(w.label)
    t_writers = time.monotonic()
    if hung:
        problems.append('writers did not finish within 120 s of the deadline: %s'
                        % ', '.join(hung))

    # the final tables, against what the writers were told; their
    # temporary copies stay, in an open transaction, for the readers' checks
    finals = {}
    for db in ('main', 'twin'):
        conn = run.connect(db, 'final')
        conn.autocommit = False
        dbw = [w for w in writers if w.db == db]
        p, count, high = check_table(conn, dbw)
        problems += ['%s database: %s' % (db, x) for x in p]
        cur = conn.cursor()
        cur.execute('SELECT es_head_position()')
        head = cur.fetchone()[0]
        cur.close()
        if head != high:
            problems.append('%s database: es_head_position() is %d, the highest position %d'
                            % (db, head, high))
        finals[db] = (conn, dbw, count, high)
    run.drain_started = time.monotonic()
    for db in ('main', 'twin'):
        run.drain_target[db] = finals[db][3]
    for f in followers:
        f.join(args.drain_timeout + 30)
    projection_seen, projection_status = wait_projection(run, run.drain_target['main'], applier)
    run.stop_readers.set()
    for f in followers:
        f.join(10)
    if applier:
        applier.join(30)
    t_drained = time.monotonic()

    # what the writers did
    kinds = {}
    for w in writers:
        k = kinds.setdefault(w.kind, {'writers': 0, 'tx_committed': 0, 'tx_aborted': 0,
                                      'events_committed': 0, 'events_aborted': 0})
        k['writers'] += 1
        k['tx_committed'] += w.tx_committed
        k['tx_aborted'] += w.tx_aborted
        k['events_committed'] += w.events_committed
        k['events_aborted'] += w.events_aborted
        if w.error:
            problems.append('writer %s failed: %s' % (w.label, w.error))

    # what the readers saw, against the final tables
    readers = []
    for db in ('main', 'twin'):
        conn, dbw, count, high = finals[db]
        expected = load_expected(conn, dbw)
        for f in followers:
            if f.db != db:
                continue
            if f.error:
                problems.append('%s failed: %s' % (f.label, f.error))
            if f.is_alive() or f.stuck is not None:
                problems.append('%s did not reach the head %d within %.0f s (stuck at %s)'
                                % (f.label, high, args.drain_timeout, f.stuck))
            fig, p = check_seen(f.label, f.seen, expected)
            fig['pages'] = f.pages
            fig['transactions'] = f.transactions
            readers.append(fig)
            problems += p
        if db == 'main':
            name = 'projection-%s' % ('worker' if run.preloaded else 'apply')
            if applier is not None and applier.error:
                problems.append('the projection applier failed: %s' % applier.error)
            pos, state, err = projection_status
            if pos is None or pos < high:
                problems.append('the async projection did not reach the head %d '
                                '(position %s, state %s, error %s)' % (high, pos, state, err))
            fig, p = check_seen(name, projection_seen, expected)
            readers.append(fig)
            problems += p
        del expected
        conn.rollback()
        conn.close()

    leftover = []
    try:
        leftover = teardown(run)
    except Exception as exc:
        problems.append('teardown failed: %s' % exc)
    if leftover:
        problems.append('prepared transactions left behind (rolled back now): %s'
                        % ', '.join(leftover))

    t_end = time.monotonic()
    events_main = finals['main'][2]
    events_twin = finals['twin'][2]
    summary = {
        'label': args.label,
        'es_pg': run.es_version,
        'preloaded': run.preloaded,
        'seconds': args.seconds,
        'seed': args.seed,
        'oids': run.oids,
        'kinds': kinds,
        'events': {'main': events_main, 'twin': events_twin},
        'committed_events': sum(w.events_committed for w in writers),
        'aborted_events': sum(w.events_aborted for w in writers),
        'committed_tx': sum(w.tx_committed for w in writers),
        'aborted_tx': sum(w.tx_aborted for w in writers),
        'readers': readers,
        'problems': problems,
        'ok': not problems,
        'elapsed': {'total': round(t_end - t_start, 1),
                    'writers': round(t_writers - t_start, 1),
                    'after_writers': round(t_end - t_writers, 1),
                    'table_checks': round(run.drain_started - t_writers, 1),
                    'drain': round(t_drained - run.drain_started, 1),
                    'reader_checks': round(t_end - t_drained, 1)},
        'peak_rss_mb': peak_rss_mb(),
    }
    text = report(summary)
    print(text, flush=True)
    if args.figures:
        with open(args.figures, 'a') as fh:
            fh.write(text + '\n')
    if args.json:
        with open(args.json, 'w') as fh:
            json.dump(summary, fh, indent=1)
    return 0 if not problems else 1


def peak_rss_mb():
    try:
        with open('/proc/self/status') as fh:
            for line in fh:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def report(s):
    lines = []
    lines.append('# feed checker%s: es_pg %s, %s, writers for %.0f s, seed %s; '
                 '%.1f s in all, %.1f s of them after the writers (table %.1f, '
                 'drain %.1f, readers %.1f), %s MB'
                 % (' ' + s['label'] if s['label'] else '', s['es_pg'],
                    'preloaded' if s['preloaded'] else 'not preloaded', s['seconds'],
                    s['seed'], s['elapsed']['total'], s['elapsed']['after_writers'],
                    s['elapsed']['table_checks'], s['elapsed']['drain'],
                    s['elapsed']['reader_checks'],
                    s['peak_rss_mb']))
    lines.append('%-12s %7s %9s %9s %9s %9s' % ('writer kind', 'writers', 'tx ok', 'tx abort',
                                                'ev ok', 'ev abort'))
    for kind, k in s['kinds'].items():
        lines.append('%-12s %7d %9d %9d %9d %9d' % (kind, k['writers'], k['tx_committed'],
                                                    k['tx_aborted'], k['events_committed'],
                                                    k['events_aborted']))
    lines.append('%-12s %7s %9d %9d %9d %9d' % ('all', '', s['committed_tx'], s['aborted_tx'],
                                                s['committed_events'], s['aborted_events']))
    lines.append('events at the end: %d in the main database, %d in the twin'
                 % (s['events']['main'], s['events']['twin']))
    lines.append('%-18s %8s %8s %8s %6s %6s %8s %8s %8s'
                 % ('reader', 'expected', 'seen', 'missed', 'dup', 'order', 'aborted',
                    'unknown', 'mismatch'))
    for r in s['readers']:
        lines.append('%-18s %8d %8d %8d %6d %6d %8d %8d %8d'
                     % (r['reader'], r['expected'], r['seen'], r['missed'], r['duplicates'],
                        r['out_of_order'], r['aborted_seen'],
                        r['not_in_table'] - r['aborted_seen'], r['mismatched']))
    if s['problems']:
        lines.append('FAILED, %d problem(s):' % len(s['problems']))
        lines += ['  - ' + p.replace('\n', '\n    ') for p in s['problems']]
    else:
        lines.append('ok: every reader saw every committed event once, in order, '
                     'and nothing else; every acknowledged commit is stored, nothing '
                     'rolled back is')
    return '\n'.join(lines)


if __name__ == '__main__':
    sys.exit(main())
