'use strict';
/*
 * The NATS forwarder against a real PostgreSQL and a real nats-server
 * (Debian's, with JetStream, started here): a forwarder killed in the
 * middle of a batch, after publishing part of it and before acking it, is
 * followed by another that publishes the batch again once the lease is
 * over; every event reaches the JetStream stream, each once (the
 * duplicates are dropped by message id), and the subscription ends at the
 * head.
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');
const pg = require('pg');
const { connect } = require('nats');

const DB = 'es_nats_node';
const EVENTS = 300;
const settings = (database) => ({
  host: process.env.PGHOST,
  port: process.env.PGPORT ? Number(process.env.PGPORT) : undefined,
  user: process.env.PGUSER,
  password: process.env.PGPASSWORD,
  database,
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let admin;
let db;
let natsServer;
let natsUrl;
let nc;
let storeDir;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

before(async () => {
  const natsBin = fs.existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server';
  const port = await freePort();
  storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'es-nats-'));
  natsServer = spawn(natsBin, ['-js', '-sd', storeDir, '-a', '127.0.0.1', '-p', String(port)],
    { stdio: 'ignore' });
  natsUrl = `127.0.0.1:${port}`;
  for (let i = 0; i < 100 && !nc; i++) {
    try { nc = await connect({ servers: natsUrl }); } catch (e) { await sleep(100); }
  }
  assert.ok(nc, 'nats-server is up');
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name: 'PARCELS', subjects: ['parcels.>'],
    duplicate_window: 120 * 1e9 });

  admin = new pg.Client(settings('postgres'));
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${DB}`);
  db = new pg.Client(settings(DB));
  await db.connect();
  await db.query('CREATE EXTENSION es_pg');
  await db.query(`SELECT count(es_append('parcel-' || (i % 10), 'ParcelScanned', jsonb_build_object('i', i)))
                    FROM generate_series(1, ${EVENTS}) i`);
  await db.query(`SELECT es_append('other-1', 'Noise', '{}')`);
  await db.query(`SELECT es_create_subscription('to_nats', 'parcel', lease => '1 second')`);
});

after(async () => {
  if (nc) await nc.close();
  if (natsServer) natsServer.kill('SIGTERM');
  if (db) await db.end();
  if (admin) {
    await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
    await admin.end();
  }
  if (storeDir) fs.rmSync(storeDir, { recursive: true, force: true });
});

function forwarder(env) {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'forwarder.js'), 'to_nats', '0', 'parcels'],
    { env: { ...process.env, PGDATABASE: DB, NATS_URL: natsUrl, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const res = { out: '', err: '' };
  child.stdout.on('data', (d) => { res.out += d; });
  child.stderr.on('data', (d) => { res.err += d; });
  res.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  res.child = child;
  return res;
}

async function status() {
  const { rows } = await db.query(`SELECT position, delivered_to,
      (SELECT max(global_position) FROM es_events WHERE stream_id LIKE 'parcel-%') AS last
      FROM es_subscription_status WHERE subscription = 'to_nats'`);
  return { position: BigInt(rows[0].position), delivered: BigInt(rows[0].delivered_to),
    last: BigInt(rows[0].last) };
}

test('at-least-once to NATS across a killed forwarder, nothing lost', async () => {
  /* the first forwarder dies after 120 messages: two batches of 50 acked,
     20 of the third published and not acked */
  const a = forwarder({ FORWARD_CRASH_AFTER: '120' });
  const ea = await a.exited;
  assert.equal(ea.signal, 'SIGKILL', a.err);
  let s = await status();
  assert.ok(s.delivered > s.position, 'the killed forwarder left a batch unacknowledged');
  assert.ok(s.position < s.last);

  /* the second one waits for the lease, publishes the batch again, then the rest */
  const b = forwarder({});
  for (let i = 0; i < 600; i++) {
    s = await status();
    if (s.position >= s.last) break;
    await sleep(50);
  }
  assert.ok(s.position >= s.last, 'the subscription reached the last event');
  b.child.kill('SIGTERM');
  const eb = await b.exited;
  assert.equal(eb.code, 0, b.err);
  const published = Number(/published (\d+)/.exec(b.out)[1]);
  assert.ok(120 + published > EVENTS, `duplicates were sent: ${120 + published} messages for ${EVENTS} events`);

  /* the stream has each event once */
  const jsm = await nc.jetstreamManager();
  const info = await jsm.streams.info('PARCELS');
  assert.equal(info.state.messages, EVENTS);
  const ids = new Set();
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage('PARCELS', { seq });
    ids.add(m.header.get('Nats-Msg-Id'));
  }
  const { rows } = await db.query(`SELECT event_id FROM es_events WHERE stream_id LIKE 'parcel-%'`);
  assert.equal(ids.size, EVENTS);
  for (const r of rows) assert.ok(ids.has(r.event_id), `event ${r.event_id} reached NATS`);
});
