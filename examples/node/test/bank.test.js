'use strict';
/*
 * Tests of the Node.js bank client against a real server: a fresh database
 * with es_pg_bank, the design notes' story, every rule's SQLSTATE, and a
 * real version conflict between two connections, retried by the client.
 */
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const pg = require('pg');
const { BankClient, connectionSettings } = require('../bank');

const DB = 'es_bank_node';
let admin;
let bank;

before(async () => {
  admin = new pg.Client(connectionSettings('postgres'));
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${DB}`);
  const setup = new pg.Client(connectionSettings(DB));
  await setup.connect();
  await setup.query('CREATE EXTENSION es_pg_bank CASCADE');
  await setup.end();
  bank = await new BankClient({ database: DB }).connect();
});

after(async () => {
  if (bank) await bank.close();
  if (admin) {
    await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
    await admin.end();
  }
});

/* events of an account, oldest first */
async function events(client, id) {
  const res = await client.client.query(
    `SELECT version::int, event_type, data->>'amount' AS amount,
            (metadata->>'attempt')::int AS attempt
       FROM es_read_stream(bank_stream_id($1))`, [id]);
  return res.rows;
}

/* wait until the backend pid waits for a lock (it is blocked on the stream) */
async function waitForLockWait(pid) {
  for (let i = 0; i < 200; i++) {
    const res = await admin.query(
      `SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1`, [pid]);
    if (res.rows.length && res.rows[0].wait_event_type === 'Lock') return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`backend ${pid} never waited for a lock`);
}

test('the design notes story: create 1000, deposit 500, withdraw 200', async () => {
  assert.equal(await bank.createAccount('ACC-001', 'Alice', '1000'), 1);
  assert.equal(await bank.deposit('ACC-001', '500'), 2);
  assert.equal(await bank.withdraw('ACC-001', '200'), 3);

  const account = await bank.account('ACC-001');
  assert.equal(account.owner, 'Alice');
  assert.equal(account.balance, '1300');
  assert.equal(account.status, 'open');
  assert.equal(Number(account.version), 3);

  const history = await bank.history('ACC-001');
  assert.deepEqual(history.map((h) => [Number(h.version), h.type, h.amount]),
    [[2, 'deposit', '500'], [3, 'withdrawal', '200']]);

  /* one row per UTC day: one row, unless the test ran across midnight */
  const summary = await bank.dailySummary();
  const total = (col) => summary.reduce((sum, row) => sum + Number(row[col]), 0);
  assert.deepEqual([total('deposits'), total('withdrawals'), total('net'), total('transactions')],
    [500, 200, 300, 2]);

  /* the write model agrees, and remembers the past */
  assert.equal(await bank.replayedBalance('ACC-001'), '1300');
  assert.equal(await bank.replayedBalance('ACC-001', 2), '1500');
});

test('every rule is refused with its SQLSTATE', async () => {
  await bank.createAccount('ACC-RULES', 'Bob', '10');
  const cases = [
    [() => bank.deposit('ACC-NOPE', '1'), 'EB001', 'account_not_found'],
    [() => bank.createAccount('ACC-RULES', 'Eve', '0'), 'EB002', 'account_already_exists'],
    [() => bank.deposit('ACC-RULES', '-5'), 'EB004', 'invalid_amount'],
    [() => bank.withdraw('ACC-RULES', '0'), 'EB004', 'invalid_amount'],
    [() => bank.withdraw('ACC-RULES', '10.01'), 'EB005', 'insufficient_funds'],
    [() => bank.closeAccount('ACC-RULES'), 'EB006', 'nonzero_balance'],
  ];
  for (const [run, code, rule] of cases) {
    await assert.rejects(run, { name: 'BankRuleError', code, rule });
  }
  await bank.withdraw('ACC-RULES', '10');
  await bank.closeAccount('ACC-RULES');
  await assert.rejects(() => bank.deposit('ACC-RULES', '1'),
    { code: 'EB003', rule: 'account_closed' });
  await assert.rejects(() => bank.withdraw('ACC-RULES', '1'), { code: 'EB003' });

  /* refused commands wrote nothing */
  assert.deepEqual((await events(bank, 'ACC-RULES')).map((e) => e.event_type),
    ['AccountCreated', 'MoneyWithdrawn', 'AccountClosed']);
  const account = await bank.account('ACC-RULES');
  assert.equal(account.status, 'closed');
  assert.equal(account.balance, '0');
});

test('a real 40001 between two connections is retried by the client', async () => {
  await bank.createAccount('ACC-RACE', 'Carol', '1000');
  const a = await new BankClient({ database: DB }).connect();
  const b = await new BankClient({ database: DB }).connect();
  try {
    /* a deposits and keeps its transaction open */
    await a.client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await a.client.query("SELECT bank_deposit('ACC-RACE', 100)");

    /* b withdraws: it loads version 1 and waits for a's stream lock */
    const withdrawal = b.withdraw('ACC-RACE', '50');
    await waitForLockWait(b.pid);
    await a.client.query('COMMIT');

    /* b's append then finds version 2: 40001, and b retries */
    assert.equal(await withdrawal, 3);
    assert.equal(b.retries, 1);
  } finally {
    await a.close();
    await b.close();
  }
  /* both took effect, exactly once each */
  assert.deepEqual((await events(bank, 'ACC-RACE')).map((e) => [e.event_type, e.amount]),
    [['AccountCreated', null], ['MoneyDeposited', '100'], ['MoneyWithdrawn', '50']]);
  assert.equal((await bank.account('ACC-RACE')).balance, '1050');
  assert.equal(await bank.replayedBalance('ACC-RACE'), '1050');
});

test('under READ COMMITTED the bank function retries by itself', async () => {
  await bank.createAccount('ACC-RACE-RC', 'Dan', '1000');
  const a = await new BankClient({ database: DB }).connect();
  const b = await new BankClient({ database: DB, isolation: 'READ COMMITTED' }).connect();
  const notices = [];
  b.client.on('notice', (n) => notices.push(n.message));
  try {
    await a.client.query('BEGIN');
    await a.client.query("SELECT bank_deposit('ACC-RACE-RC', 100)");
    const withdrawal = b.withdraw('ACC-RACE-RC', '50');
    await waitForLockWait(b.pid);
    await a.client.query('COMMIT');
    assert.equal(await withdrawal, 3);
    assert.equal(b.retries, 0);
  } finally {
    await a.close();
    await b.close();
  }
  assert.match(notices.join('\n'), /version conflict on account "ACC-RACE-RC": retrying \(attempt 2 of 5\)/);
  /* the withdrawal was written by the function's second attempt */
  assert.deepEqual((await events(bank, 'ACC-RACE-RC')).map((e) => [e.event_type, e.amount, e.attempt]),
    [['AccountCreated', null, 1], ['MoneyDeposited', '100', 1], ['MoneyWithdrawn', '50', 2]]);
  assert.equal((await bank.account('ACC-RACE-RC')).balance, '1050');
});

test('a transfer is one unit of work', async () => {
  await bank.createAccount('ACC-T1', 'Erin', '300');
  await bank.createAccount('ACC-T2', 'Frank', '0');
  await bank.transfer('ACC-T1', 'ACC-T2', '120.50');
  /* too much: the withdrawal is refused and the deposit never happens */
  await assert.rejects(() => bank.transfer('ACC-T1', 'ACC-T2', '1000'), { code: 'EB005' });
  assert.equal((await bank.account('ACC-T1')).balance, '179.50');
  assert.equal((await bank.account('ACC-T2')).balance, '120.50');
  assert.equal((await events(bank, 'ACC-T2')).length, 2);
});
