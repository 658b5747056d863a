'use strict';
/*
 * Forwards one member of an es_pg subscription to NATS JetStream.
 *
 *   NATS_URL=localhost:4222 node forwarder.js SUBSCRIPTION MEMBER SUBJECT_PREFIX
 *
 * Each event is published to SUBJECT_PREFIX.<event_type> with the event's id
 * as Nats-Msg-Id; once JetStream has acknowledged every message of a batch,
 * the batch is acknowledged in es_pg.  A forwarder killed in between leaves
 * the batch unacknowledged: the next forwarder (after the lease, 55006
 * until then) publishes it again, and JetStream drops the duplicates by
 * their message id within its duplicate window.  Nothing is lost; what
 * reaches the stream is each event once.
 *
 * Connection settings of PostgreSQL come from the PG* environment
 * variables.  FORWARD_CRASH_AFTER=n makes the process kill itself after
 * publishing n messages, before their ack (for the test).  SIGTERM and
 * SIGINT stop it cleanly: the batch in hand is published and acked, and
 * the lease released.
 */
const os = require('os');
const pg = require('pg');
const { connect, headers, JSONCodec } = require('nats');

const jc = JSONCodec();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Forwarder {
  constructor(subscription, member, prefix, options = {}) {
    this.subscription = subscription;
    this.member = member;
    this.prefix = prefix;
    this.consumerId = options.consumerId || `nats-${os.hostname()}-${process.pid}-${member}`;
    this.crashAfter = options.crashAfter || 0;
    this.published = 0;
    this.stopping = false;
    this.db = new pg.Client({
      host: process.env.PGHOST,
      port: process.env.PGPORT ? Number(process.env.PGPORT) : undefined,
      user: process.env.PGUSER,
      password: process.env.PGPASSWORD,
      database: process.env.PGDATABASE,
    });
  }

  async start(natsUrl) {
    await this.db.connect();
    this.nc = await connect({ servers: natsUrl });
    this.js = this.nc.jetstream();
  }

  /* one batch: poll, publish each event, ack the batch in es_pg */
  async forwardOnce() {
    let rows;
    try {
      ({ rows } = await this.db.query(
        `SELECT global_position, stream_id, version, event_id, event_type, data,
                recorded_at, attempt
           FROM es_poll($1, $2, 50, '1 second', $3)`,
        [this.subscription, this.member, this.consumerId]));
    } catch (err) {
      if (err.code === '55006') { /* another forwarder's lease: wait for it */
        await sleep(250);
        return 0;
      }
      throw err;
    }
    for (const e of rows) {
      const h = headers();
      h.set('Nats-Msg-Id', e.event_id);
      h.set('Es-Position', String(e.global_position));
      await this.js.publish(`${this.prefix}.${e.event_type}`, jc.encode({
        stream_id: e.stream_id, version: Number(e.version), event_id: e.event_id,
        event_type: e.event_type, data: e.data, recorded_at: e.recorded_at,
        global_position: e.global_position, attempt: e.attempt,
      }), { headers: h });
      this.published++;
      if (this.crashAfter && this.published === this.crashAfter)
        process.kill(process.pid, 'SIGKILL'); /* dies before the ack */
    }
    if (rows.length > 0)
      await this.db.query('SELECT es_ack($1, $2, $3, $4)',
        [this.subscription, this.member, rows[rows.length - 1].global_position, this.consumerId]);
    return rows.length;
  }

  async run() {
    try {
      while (!this.stopping) await this.forwardOnce();
    } finally {
      await this.db.query('SELECT es_release($1, $2, $3)',
        [this.subscription, this.member, this.consumerId]);
      await this.db.end();
      await this.nc.drain();
    }
  }
}

module.exports = { Forwarder };

if (require.main === module) {
  const [subscription, member, prefix] = process.argv.slice(2);
  const f = new Forwarder(subscription, Number(member), prefix,
    { crashAfter: Number(process.env.FORWARD_CRASH_AFTER || 0) });
  const stop = () => { f.stopping = true; };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  f.start(process.env.NATS_URL || 'localhost:4222')
    .then(() => f.run())
    .then(() => console.log(`published ${f.published}`), (err) => {
      console.error(err);
      process.exit(1);
    });
}
