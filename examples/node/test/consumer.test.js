'use strict';
/*
 * Tests of the Node.js subscription consumer against a real server: a
 * consumer group of 2 in one process gets every event of its category
 * once, each stream at one member in order, follows new appends through its
 * long polls, and on SIGTERM finishes, acknowledges and releases its leases.
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { spawn } = require('child_process');
const pg = require('pg');
const { connectionSettings } = require('../bank');

const DB = 'es_sub_node';
let admin;
let db;

before(async () => {
  admin = new pg.Client(connectionSettings('postgres'));
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${DB}`);
  db = new pg.Client(connectionSettings(DB));
  await db.connect();
  await db.query('CREATE EXTENSION es_pg');
  await db.query(`CREATE TABLE handled (global_position bigint PRIMARY KEY,
                    stream_id text NOT NULL, version bigint NOT NULL,
                    member int NOT NULL, seq bigserial)`);
});

after(async () => {
  if (db) await db.end();
  if (admin) {
    await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
    await admin.end();
  }
});

async function append(n, first) {
  await db.query(`SELECT count(es_append('job-' || (i % 8), 'JobQueued', jsonb_build_object('i', i)))
                    FROM generate_series($1::int, $2::int) i`, [first, first + n - 1]);
  await db.query(`SELECT es_append('other-1', 'Noise', '{}')`);
}

async function scalar(sql) {
  const { rows } = await db.query(sql);
  return Object.values(rows[0])[0];
}

async function waitFor(count, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (Number(await scalar('SELECT count(*) FROM handled')) >= count) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`handled ${await scalar('SELECT count(*) FROM handled')} events, not ${count}`);
}

test('a consumer group of 2 gets every event once, in stream order, and stops cleanly', async () => {
  await append(60, 1);
  await db.query(`SELECT es_create_subscription('jobs', 'job', group_size => 2, if_not_exists => true)`);
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'consumer.js'), 'jobs', '2'],
    { env: { ...process.env, PGDATABASE: DB }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await waitFor(60);
    await append(20, 61); /* new events reach the running consumers */
    await waitFor(80);
    assert.equal(Number(await scalar(`SELECT count(*) FROM es_subscription_status
                                       WHERE subscription = 'jobs' AND lease_live`)), 2);
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0, err);
  assert.match(out, /handled member 0: \d+, member 1: \d+/);

  assert.equal(await scalar(`
    SELECT (SELECT array_agg(global_position ORDER BY global_position) FROM handled) =
           (SELECT array_agg(global_position ORDER BY global_position)
              FROM es_events WHERE stream_id LIKE 'job-%')`), true);
  assert.equal(Number(await scalar(`
    SELECT count(*) FROM (SELECT stream_id FROM handled GROUP BY stream_id
                          HAVING count(DISTINCT member) > 1) x`)), 0);
  assert.equal(await scalar(`
    SELECT bool_and(ordered) FROM (
      SELECT array_agg(version ORDER BY seq) = array_agg(version ORDER BY version) AS ordered
        FROM handled GROUP BY stream_id) x`), true);
  assert.equal(Number(await scalar('SELECT count(DISTINCT member) FROM handled')), 2);
  assert.equal(Number(await scalar(`SELECT count(*) FROM es_subscription_status
                                     WHERE subscription = 'jobs' AND consumer IS NULL
                                       AND delivered_to = position`)), 2);
});
