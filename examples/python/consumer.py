"""A consumer of an es_pg subscription with psycopg2: one thread per member
of a consumer group, each with its own connection, long-polling, acking in
the handler's own transaction (exactly-once effects in the database),
nacking what fails, and stopping cleanly on SIGTERM or SIGINT (the batch in
hand is finished and acknowledged, the leases are released).

    python3 consumer.py SUBSCRIPTION GROUP_SIZE

handle() below writes each event to the table "handled"; replace it with
your own code.  Connection settings come from the PG* environment
variables, as with psql.
"""

import os
import signal
import socket
import sys
import threading

import psycopg2


def handle(cur, event):
    """Apply one event, inside the transaction that acknowledges it."""
    cur.execute("INSERT INTO handled (global_position, stream_id, version, member)"
                " VALUES (%s, %s, %s, %s)",
                (event["global_position"], event["stream_id"],
                 event["version"], event["member"]))


class Consumer:
    """Runs one member of a subscription until stop is set."""

    def __init__(self, subscription, member, stop, wait="1 second", page=100):
        self.subscription = subscription
        self.member = member
        self.stop = stop
        self.wait = wait
        self.page = page
        # the lease belongs to this id, not to a connection: it works
        # through a transaction-mode pooler
        self.consumer_id = "%s-%d-%d" % (socket.gethostname(), os.getpid(), member)
        self.conn = psycopg2.connect("")
        self.handled = 0

    def poll_once(self):
        """One transaction: poll, handle, ack (or nack the failing event)."""
        failed = None
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                "SELECT global_position, stream_id, version, event_type, data, attempt"
                "  FROM es_poll(%s, %s, %s, %s, %s)",
                (self.subscription, self.member, self.page, self.wait,
                 self.consumer_id))
            rows = cur.fetchall()
            last = None
            for position, stream_id, version, event_type, data, attempt in rows:
                event = {"global_position": position, "stream_id": stream_id,
                         "version": version, "event_type": event_type,
                         "data": data, "attempt": attempt, "member": self.member}
                cur.execute("SAVEPOINT event")
                try:
                    handle(cur, event)
                except Exception as exc:   # the handler's failure, not ours
                    cur.execute("ROLLBACK TO SAVEPOINT event")
                    failed = (position, str(exc))
                    break
                cur.execute("RELEASE SAVEPOINT event")
                last = position
                self.handled += 1
            if failed is not None:
                # acks what came before it; parked at max_attempts
                cur.execute("SELECT es_nack(%s, %s, %s, %s, %s)",
                            (self.subscription, self.member, failed[0],
                             failed[1], self.consumer_id))
            elif last is not None:
                cur.execute("SELECT es_ack(%s, %s, %s, %s)",
                            (self.subscription, self.member, last,
                             self.consumer_id))
        return len(rows)

    def run(self):
        try:
            while not self.stop.is_set():
                self.poll_once()
        finally:
            with self.conn, self.conn.cursor() as cur:
                cur.execute("SELECT es_release(%s, %s, %s)",
                            (self.subscription, self.member, self.consumer_id))
            self.conn.close()


def run_group(subscription, group_size, stop):
    """Runs every member of the group in a thread of its own."""
    consumers = [Consumer(subscription, m, stop) for m in range(group_size)]
    threads = [threading.Thread(target=c.run, name="member-%d" % c.member)
               for c in consumers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return consumers


def main():
    subscription = sys.argv[1]
    group_size = int(sys.argv[2])
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    consumers = run_group(subscription, group_size, stop)
    print("handled %s" % ", ".join("member %d: %d" % (c.member, c.handled)
                                   for c in consumers), flush=True)


if __name__ == "__main__":
    main()
