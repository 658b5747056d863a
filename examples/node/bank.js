'use strict';
/*
 * A Node.js client of the es_pg_bank example.
 *
 * Write side: the bank commands (bank_create_account, bank_deposit,
 * bank_withdraw, bank_close_account) through node-postgres, each command or
 * unit of work in a REPEATABLE READ transaction.  When another session
 * changed the account in between, PostgreSQL answers SQLSTATE 40001 (es_pg's
 * version conflict) and the client retries the whole transaction: it
 * reloads and decides again, so the command takes effect exactly once.
 * Deadlocks (40P01) are retried the same way.
 *
 * Read side: the read models (tables bank_accounts, bank_transactions,
 * bank_daily_summary) through knex's query builder.  The bank projections
 * are inline: a committed command is visible there at once.
 *
 * Rule violations arrive as SQLSTATEs of class EB (see docs/bank.md) and are
 * thrown as BankRuleError with the rule's name.
 *
 * Connection settings come from the usual PG* environment variables.
 *
 *   node bank.js        runs the design notes' story against $PGDATABASE
 */
const pg = require('pg');
const knexFactory = require('knex');

/* numeric columns arrive as strings: keep them exact, compare as strings */

const RULES = {
  EB001: 'account_not_found',
  EB002: 'account_already_exists',
  EB003: 'account_closed',
  EB004: 'invalid_amount',
  EB005: 'insufficient_funds',
  EB006: 'nonzero_balance',
};

const RETRYABLE = new Set(['40001', '40P01']);

class BankRuleError extends Error {
  constructor(err) {
    super(err.message);
    this.name = 'BankRuleError';
    this.code = err.code;
    this.rule = RULES[err.code];
    this.detail = err.detail;
  }
}

function connectionSettings(database) {
  return {
    host: process.env.PGHOST,
    port: process.env.PGPORT ? Number(process.env.PGPORT) : undefined,
    user: process.env.PGUSER,
    password: process.env.PGPASSWORD,
    database: database || process.env.PGDATABASE,
  };
}

class BankClient {
  /*
   * options: database (default $PGDATABASE), maxAttempts (default 5),
   * isolation (default 'REPEATABLE READ').
   */
  constructor(options = {}) {
    this.settings = connectionSettings(options.database);
    this.maxAttempts = options.maxAttempts || 5;
    this.isolation = options.isolation || 'REPEATABLE READ';
    this.retries = 0; /* transactions retried after 40001 or 40P01 */
    this.client = new pg.Client(this.settings);
    this.knex = knexFactory({
      client: 'pg',
      connection: this.settings,
      pool: { min: 0, max: 2 },
    });
  }

  async connect() {
    await this.client.connect();
    return this;
  }

  /* the backend pid of the command connection (to watch it wait) */
  get pid() {
    return this.client.processID;
  }

  async close() {
    await this.client.end();
    await this.knex.destroy();
  }

  /*
   * transaction(work) runs work(tx) in one transaction and retries it on
   * 40001 and 40P01, up to maxAttempts times.  tx has the command methods.
   * Everything work does must be safe to run again: it is, when it only
   * issues bank commands, since a failed attempt rolled back entirely.
   */
  async transaction(work) {
    for (let attempt = 1; ; attempt++) {
      await this.client.query(`BEGIN ISOLATION LEVEL ${this.isolation}`);
      try {
        const result = await work(this._commands());
        await this.client.query('COMMIT');
        return result;
      } catch (err) {
        await this.client.query('ROLLBACK');
        if (RETRYABLE.has(err.code) && attempt < this.maxAttempts) {
          this.retries++;
          continue;
        }
        throw err.code in RULES ? new BankRuleError(err) : err;
      }
    }
  }

  _commands() {
    const call = async (sql, params) => {
      const res = await this.client.query(sql, params);
      return Number(Object.values(res.rows[0])[0]); /* the new version */
    };
    return {
      createAccount: (id, owner, initialDeposit = '0') =>
        call('SELECT bank_create_account($1, $2, $3)', [id, owner, initialDeposit]),
      deposit: (id, amount) => call('SELECT bank_deposit($1, $2)', [id, amount]),
      withdraw: (id, amount) => call('SELECT bank_withdraw($1, $2)', [id, amount]),
      closeAccount: (id) => call('SELECT bank_close_account($1)', [id]),
    };
  }

  /* one command, one transaction */
  createAccount(id, owner, initialDeposit) {
    return this.transaction((tx) => tx.createAccount(id, owner, initialDeposit));
  }
  deposit(id, amount) {
    return this.transaction((tx) => tx.deposit(id, amount));
  }
  withdraw(id, amount) {
    return this.transaction((tx) => tx.withdraw(id, amount));
  }
  closeAccount(id) {
    return this.transaction((tx) => tx.closeAccount(id));
  }
  /* two commands, one unit of work: both or neither */
  transfer(from, to, amount) {
    return this.transaction(async (tx) => {
      await tx.withdraw(from, amount);
      await tx.deposit(to, amount);
    });
  }

  /* queries: the read models through knex */
  account(id) {
    return this.knex('bank_accounts').where({ account_id: id }).first();
  }
  history(id) {
    return this.knex('bank_transactions')
      .select('version', 'type', 'amount', 'recorded_at')
      .where({ account_id: id })
      .orderBy('version');
  }
  dailySummary() {
    return this.knex('bank_daily_summary')
      .select(this.knex.raw('day::text AS day'), 'deposits', 'withdrawals', 'net', 'transactions')
      .orderBy('day');
  }
  /* the write model: the account replayed from its events, at a version */
  async replayedBalance(id, asOfVersion = null) {
    const res = await this.client.query(
      "SELECT bank_account_state($1, $2)->>'balance' AS balance", [id, asOfVersion]);
    return res.rows[0].balance;
  }
}

async function story() {
  const bank = await new BankClient().connect();
  try {
    const id = `NODE-${process.pid}`;
    await bank.createAccount(id, 'Alice', '1000');
    await bank.deposit(id, '500');
    await bank.withdraw(id, '200');
    console.log('account:', await bank.account(id));
    console.log('history:', await bank.history(id));
    console.log('replayed balance:', await bank.replayedBalance(id));
    try {
      await bank.withdraw(id, '5000');
    } catch (err) {
      console.log(`refused: ${err.code} ${err.rule}: ${err.message}`);
    }
  } finally {
    await bank.close();
  }
}

module.exports = { BankClient, BankRuleError, RULES, connectionSettings };

if (require.main === module) {
  story().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
