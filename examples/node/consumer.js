'use strict';
/*
 * A consumer of an es_pg subscription with node-postgres: one loop per
 * member of a consumer group, each with its own connection, long-polling,
 * acking in the handler's own transaction (exactly-once effects in the
 * database), nacking what fails, and stopping cleanly on SIGTERM or SIGINT
 * (the batch in hand is finished and acknowledged, the leases released).
 *
 *   node consumer.js SUBSCRIPTION GROUP_SIZE
 *
 * handle() below writes each event to the table "handled"; replace it
 * with your own code.  Connection settings come from the PG* environment
 * variables, as with psql.
 */
const os = require('os');
const pg = require('pg');
const { connectionSettings } = require('./bank');

/* apply one event, inside the transaction that acknowledges it */
async function handle(client, event) {
  await client.query(
    'INSERT INTO handled (global_position, stream_id, version, member) VALUES ($1, $2, $3, $4)',
    [event.global_position, event.stream_id, event.version, event.member]);
}

class Consumer {
  constructor(subscription, member, options = {}) {
    this.subscription = subscription;
    this.member = member;
    this.wait = options.wait || '1 second';
    this.page = options.page || 100;
    /* the lease belongs to this id, not to a connection */
    this.consumerId = `${os.hostname()}-${process.pid}-${member}`;
    this.client = new pg.Client(connectionSettings());
    this.handled = 0;
    this.stopping = false;
  }

  /* one transaction: poll, handle, ack (or nack the failing event) */
  async pollOnce() {
    const c = this.client;
    await c.query('BEGIN');
    try {
      const { rows } = await c.query(
        `SELECT global_position, stream_id, version, event_type, data, attempt
           FROM es_poll($1, $2, $3, $4, $5)`,
        [this.subscription, this.member, this.page, this.wait, this.consumerId]);
      let last = null;
      let failed = null;
      for (const row of rows) {
        await c.query('SAVEPOINT event');
        try {
          await handle(c, { ...row, member: this.member });
        } catch (err) {
          await c.query('ROLLBACK TO SAVEPOINT event');
          failed = { position: row.global_position, error: String(err) };
          break;
        }
        await c.query('RELEASE SAVEPOINT event');
        last = row.global_position; /* a bigint, as a string: pass it back as is */
        this.handled++;
      }
      if (failed)
        await c.query('SELECT es_nack($1, $2, $3, $4, $5)',
          [this.subscription, this.member, failed.position, failed.error, this.consumerId]);
      else if (last !== null)
        await c.query('SELECT es_ack($1, $2, $3, $4)',
          [this.subscription, this.member, last, this.consumerId]);
      await c.query('COMMIT');
      return rows.length;
    } catch (err) {
      await c.query('ROLLBACK');
      throw err;
    }
  }

  async run() {
    await this.client.connect();
    try {
      while (!this.stopping) await this.pollOnce();
    } finally {
      await this.client.query('SELECT es_release($1, $2, $3)',
        [this.subscription, this.member, this.consumerId]);
      await this.client.end();
    }
  }

  stop() {
    this.stopping = true;
  }
}

/* every member of the group, each in a loop of its own */
async function runGroup(subscription, groupSize) {
  const consumers = [];
  for (let m = 0; m < groupSize; m++) consumers.push(new Consumer(subscription, m));
  const stop = () => consumers.forEach((c) => c.stop());
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  await Promise.all(consumers.map((c) => c.run()));
  return consumers;
}

module.exports = { Consumer, runGroup };

if (require.main === module) {
  const [subscription, groupSize] = process.argv.slice(2);
  runGroup(subscription, Number(groupSize)).then((consumers) => {
    console.log('handled ' + consumers.map((c) => `member ${c.member}: ${c.handled}`).join(', '));
  }, (err) => {
    console.error(err);
    process.exit(1);
  });
}
