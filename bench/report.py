#!/usr/bin/env python3
"""bench/report.py [--ratios FILE --main DOC] OUTDIR REPORT: turn
bench/run.sh's raw results into a table on stdout and the report REPORT
(docs/benchmarks.md on PostgreSQL 15, docs/benchmarks-pgNN.md on another
major).

With --ratios, the run's ratios also go to FILE (bench/ratios-pgNN.tsv),
and the "Across PostgreSQL majors" section of the main report DOC
(docs/benchmarks.md) is rewritten from every bench/ratios-pg*.tsv beside
FILE: in REPORT itself when it is DOC, between its markers otherwise, so a
run on one major leaves the other majors' figures alone.

OUTDIR holds results.tsv (one row per measurement) and meta.tsv (machine,
settings, date).  Every figure is a ratio to the plain-PostgreSQL reference
measured in the same run: per round, es_pg's events/s divided by the
reference's, and the median over the rounds."""

import argparse
import csv
import glob
import math
import os
import re
import statistics

# workload: (title, es_pg variant and what it calls, [(reference variant,
# what it runs, target ratio by durability or None)])
WORKLOADS = [
    ("append", "single-event append, random stream of 10,000, no version check",
     ("es", "es_append"),
     [("ref", "INSERT ... SELECT coalesce(max(version), 0) + 1",
       {"on": 0.95, "off": 0.75})]),
    ("append_expected", "single-event append, exact expected version, client's own stream",
     ("es", "es_append(..., expected_version)"),
     [("ref", "INSERT ... SELECT max(version) + 1 ... WHERE max = expected",
       {"on": 0.95, "off": 0.75})]),
    ("batch10", "batch of 10 events in one call, random stream",
     ("es", "es_append_batch"),
     [("insert", "multi-row INSERT, versions in SQL", None),
      ("copy", "COPY FROM STDIN (psql)", None)]),
    ("batch1000", "batch of 1,000 events in one call, random stream",
     ("es", "es_append_batch"),
     [("insert", "multi-row INSERT, versions in SQL", None),
      ("copy", "COPY FROM STDIN (psql)", {"on": 0.7, "off": 0.7})]),
    ("read_stream", "read a 1,000-event stream",
     ("es", "es_read_stream"),
     [("ref", "SELECT ... WHERE stream_id = $1 ORDER BY version",
       {"any": 0.9})]),
    ("read_all", "global feed, one page of 1,000 events",
     ("es", "es_read_all"),
     [("ref", "SELECT ... WHERE global_position > $1 ORDER BY global_position LIMIT 1000",
       {"any": 0.9})]),
    ("read_no_upcaster", "read a 1,000-event stream, no upcaster registered",
     ("es", "es_read_stream"),
     [("ref", "SELECT ... WHERE stream_id = $1 ORDER BY version",
       {"any": 0.97})]),
    ("read_other_upcaster", "read a 1,000-event stream, upcasters registered for other types only",
     ("es", "es_read_stream"),
     [("ref", "SELECT ... WHERE stream_id = $1 ORDER BY version",
       {"any": 0.97})]),
    ("read_upcast", "read a 1,000-event stream, every event through a one-step SQL upcaster",
     ("es", "es_read_stream, each event through bench.evo_md_v2"),
     [("ref", "SELECT ... WHERE stream_id = $1 ORDER BY version", None),
      ("none", "es_read_stream, no upcaster registered", None)]),
    ("append_validator", "single-event append, random stream, its type with a jsonpath validator",
     ("es", "es_append, validator $.amount > 0"),
     [("none", "es_append, the type not registered", {"on": 0.9, "off": 0.9})]),
    ("append_protected", "single-event append, random stream, its type protected (issue 14): two members encrypted under the key of one of 1,000 customers",
     ("es", "es_append of BenchCustomer (es_protect: $.email, $.address; subject $.customer)"),
     [("none", "es_append of the same data as BenchCustomerPlain, not protected", {"on": 0.8, "off": 0.8})]),
    ("read_category", "category page: 1,000 events of category \"account\" (issue 12)",
     ("es", "es_read_category"),
     [("ref", "SELECT ... WHERE split_part(stream_id, '-', 1) = $1 AND global_position > $2 ORDER BY ... LIMIT 1000, on an index of that expression",
       {"any": 0.9})]),
    ("delivery100", "subscription delivery in pages of 100 (issue 12): 50,000 events from a checkpoint",
     ("es", "BEGIN; es_poll(name, 0, 100); es_ack(name, 0, last); COMMIT"),
     [("ref", "BEGIN; SELECT ... WHERE global_position > checkpoint ORDER BY global_position LIMIT 100; UPDATE of a checkpoint row; COMMIT", None)]),
    ("delivery1000", "subscription delivery in pages of 1,000 (issue 12): 50,000 events from a checkpoint",
     ("es", "BEGIN; es_poll(name, 0, 1000); es_ack(name, 0, last); COMMIT"),
     [("ref", "BEGIN; SELECT ... WHERE global_position > checkpoint ORDER BY global_position LIMIT 1000; UPDATE of a checkpoint row; COMMIT", None)]),
    ("group100", "consumer group: member 0 of 2 of category \"account\", pages of 100 (issue 12): 25,000 events",
     ("es", "BEGIN; es_poll(name, 0, 100) (category account, group of 2); es_ack(name, 0, last); COMMIT"),
     [("msgdb", "BEGIN; Message DB get_category_messages('account', pos, 100, NULL, 0, 2); write_message of the position; COMMIT", None)]),
    ("group1000", "consumer group: member 0 of 2 of category \"account\", pages of 1,000 (issue 12): 25,000 events",
     ("es", "BEGIN; es_poll(name, 0, 1000) (category account, group of 2); es_ack(name, 0, last); COMMIT"),
     [("msgdb", "BEGIN; Message DB get_category_messages('account', pos, 1000, NULL, 0, 2); write_message of the position; COMMIT", None)]),
    ("snapshot", "load a 10,000-event stream's state (loads/s), snapshot 100 events from the head",
     ("snapshot", "es_aggregate, snapshot + 100-event tail"),
     [("replay", "es_aggregate, full replay of 10,000 events (no snapshot)",
       {"any": 20.0}),
      ("tail2x", "es_aggregate, full replay of a 200-event stream (2x the tail)",
       {"any": 1.0})]),
    ("inline_projections", "single-event append to a random account, with the three inline projections",
     ("bank3", "es_append + balance, history and daily-summary projections, inline"),
     [("alone", "es_append, no projection", None),
      ("by_hand", "es_append, then the same three handlers called by hand in the same transaction", None)]),
    ("async_projection", "async catch-up: a backlog applied to the three projections, 1,000 events per projection and transaction",
     ("catchup", "es_apply_projections(NULL, 1000) until done"),
     [("handlers", "the three handlers called on an equal backlog, 1,000 events per statement", None)]),
    ("async_worker", "async catch-up by the background worker: from the backlog's commit to the last projection at the head",
     ("worker", "the projection worker (es_wait_for_projection to see it done)"),
     [("handlers", "the three handlers called on an equal backlog, 1,000 events per statement", None)]),
    ("rebuild_projection", "rebuild of the projections from all events (handler calls/s)",
     ("rebuild", "es_rebuild_projection"),
     [("handlers", "reset, then the handler called on every event from one SQL statement", None)]),
    ("large_event", "single-event appends to other streams while one 100 MB event is appended (appends/s; latency: the slowest)",
     ("beside", "es_append, 1 client, beside a 100 MB es_append"),
     [("alone", "the same es_append, nothing beside it", None)]),
    ("large_event_read", "feed pages while one 100 MB event is appended (pages/s; latency: the slowest)",
     ("beside", "es_read_all(x, 1000), 1 client, beside a 100 MB es_append"),
     [("alone", "the same es_read_all, nothing beside it", None)]),
    ("seal", "es_seal of a backlog of fresh events (events sealed/s)",
     ("es", "es_seal()"),
     [("sha256", "sha256 of each event's text over the same events, one SQL statement", None)]),
    ("verify", "es_verify of the same events (events verified/s)",
     ("es", "es_verify(from, to)"),
     [("sha256", "sha256 of each event's text over the same events, one SQL statement", None)]),
    ("archive", "es_archive of the same events once their streams are deleted and sealed (events archived/s)",
     ("es", "es_archive()"),
     [("move", "the same rows moved between two plain tables: DELETE ... RETURNING into INSERT", None)]),
    ("archive_live", "es_archive of live streams' sealed events, each stream's last one excepted (events archived/s)",
     ("es", "es_archive(NULL, NULL, true)"),
     [("move", "the same rows moved between two plain tables: DELETE ... RETURNING into INSERT", None)]),
]

SYNC_LABEL = {"on": "sync on", "off": "sync off", "any": "n/a (read)"}
READS = {"read_stream", "read_all", "read_category", "snapshot", "read_no_upcaster",
         "read_other_upcaster", "read_upcast", "seal", "verify", "archive", "archive_live"}


def sync_label(workload, sync):
    """Reads write no commit record; the projection rebuild and catch-up run
    with the server's default."""
    if sync == "any" and workload not in READS:
        return "default (on)"
    return SYNC_LABEL.get(sync, sync)


def load(outdir):
    with open(os.path.join(outdir, "results.tsv")) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    with open(os.path.join(outdir, "meta.tsv")) as f:
        meta = {r["key"]: r["value"] for r in csv.DictReader(f, delimiter="\t")}
    return rows, meta


def fmt_rate(x):
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:,.1f}"


def fmt_ratio(rs):
    """The median ratio and its range, rounded down (so that a figure shown
    as 0.90x never hides a 0.898x that missed a 0.9x target)."""
    if not rs:
        return "-"
    med = statistics.median(rs)
    digits = 1 if med >= 10 else 2

    def down(x):
        return f"{math.floor(x * 10 ** digits) / 10 ** digits:.{digits}f}"
    s = down(med) + "x"
    if len(rs) > 1:
        s += f" ({down(min(rs))}-{down(max(rs))})"
    return s


def analyse(rows):
    """Returns the table rows: one per workload, durability, clients and
    reference, and the skipped workloads with their notes."""
    by_key = {}
    skipped = {}
    invalid = {}
    failed = set()
    cpu_by_key = {}
    for r in rows:
        if r["status"].startswith("skipped: "):
            skipped[r["workload"]] = r["status"][len("skipped: "):]
            continue
        if r["status"].startswith("invalid: "):
            invalid[r["workload"]] = r["status"][len("invalid: "):]
            continue
        if r["status"] != "ok":
            failed.add((r["workload"], r["sync"], r["clients"]))
        key = (r["workload"], r["sync"], r["clients"])
        by_key.setdefault(key, {}).setdefault(r["variant"], {})[r["round"]] = \
            float(r["events_per_s"])
        cpu = r.get("cpu_us_per_event") or "-"
        if cpu != "-" and float(cpu) > 0:
            cpu_by_key.setdefault(key, {}).setdefault(r["variant"], {})[r["round"]] = float(cpu)
    table = []
    for name, title, (es_v, es_what), refs in WORKLOADS:
        keys = sorted((k for k in by_key if k[0] == name),
                      key=lambda k: ({"on": 0, "off": 1, "any": 2}.get(k[1], 3), int(k[2])))
        for key in keys:
            variants = by_key[key]
            es = variants.get(es_v, {})
            cpu = cpu_by_key.get(key, {})
            # the worker's CPU is not a reaped backend's: not measured
            es_cpu = cpu.get(es_v, {}) if es_v != "worker" else {}
            for ref_v, ref_what, target in refs:
                ref = variants.get(ref_v, {})
                ratios = [es[r] / ref[r] for r in es if r in ref and ref[r] > 0]
                ref_cpu = cpu.get(ref_v, {})
                cpu_ratios = [ref_cpu[r] / es_cpu[r] for r in es_cpu if r in ref_cpu]
                med = statistics.median(ratios) if ratios else None
                t = target.get(key[1]) if target else None
                if name in invalid:
                    verdict = "INVALID: " + invalid[name]
                elif key in failed:
                    verdict = "FAILED RUN"
                elif t is None or med is None:
                    verdict = ""
                elif med >= t:
                    verdict = "met"
                else:
                    verdict = "MISSED"
                table.append({
                    "workload": name, "title": title, "sync": key[1],
                    "clients": key[2], "es_what": es_what, "ref_what": ref_what,
                    "ref_v": ref_v,
                    "es": statistics.median(es.values()) if es else None,
                    "ref": statistics.median(ref.values()) if ref else None,
                    "ratios": ratios, "ratio": med, "target": t,
                    "es_cpu": statistics.median(es_cpu.values()) if es_cpu else None,
                    "ref_cpu": statistics.median(ref_cpu.values()) if ref_cpu else None,
                    "cpu_ratios": cpu_ratios,
                    "verdict": verdict,
                })
    return table, skipped


# workloads measured with their reference in one pgbench run (bench_mixed
# in bench/run.sh)
MIXED = {"append", "append_protected", "read_stream", "read_all", "read_category",
         "read_no_upcaster", "read_other_upcaster"}
MIXED_NOTE = ("Measured mixed: es_pg and the reference in the same pgbench run, each "
              "transaction of each client drawn at random from the two, so that both "
              "meet the same disk flushes and CPU; events/s is clients / mean latency, "
              "and the ratio the reference's latency over es_pg's (no CPU figure: the "
              "backends run both).")


def markdown_tables(table):
    """One table per workload: a row per durability and client count, a
    column pair (events/s, ratio) per reference."""
    out = []
    for name, title, (es_v, es_what), refs in WORKLOADS:
        rows = [t for t in table if t["workload"] == name]
        if not rows:
            continue
        unit = {"snapshot": "loads/s", "rebuild_projection": "calls/s",
                "large_event": "appends/s", "large_event_read": "pages/s"}.get(name, "events/s")
        out += [f"### {title}", "",
                f"es_pg: `{es_what}`. " + "; ".join(
                    f"Reference {i + 1}: `{what}`" for i, (_, what, _) in enumerate(refs)) + "." +
                (" " + MIXED_NOTE if name in MIXED else ""),
                ""]
        head = ["durability", "clients", f"es_pg {unit}"]
        align = ["---", "---:", "---:"]
        for i, (ref_v, _, target) in enumerate(refs):
            head += [f"ref. {i + 1} {unit}", f"ratio to ref. {i + 1}"]
            align += ["---:", "---:"]
            if target:
                head += ["target"]
                align += ["---"]
        out += ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
        seen = []
        for t in rows:
            k = (t["sync"], t["clients"])
            if k not in seen:
                seen.append(k)
        for sync, clients in seen:
            cells = [sync_label(name, sync), clients]
            first = True
            for ref_v, _, target in refs:
                t = next((x for x in rows if (x["sync"], x["clients"], x["ref_v"]) ==
                          (sync, clients, ref_v)), None)
                if first:
                    cells.append(fmt_rate(t["es"] if t else None))
                    first = False
                cells += [fmt_rate(t["ref"]) if t else "-", fmt_ratio(t["ratios"]) if t else "-"]
                if target:
                    cells.append(f">= {t['target']:g}x: **{t['verdict']}**"
                                 if t and t["target"] is not None else "-")
            out.append("| " + " | ".join(str(c) for c in cells) + " |")
        out.append("")
    return "\n".join(out)


def large_event_section(rows, meta):
    """The slowest small append and feed page beside the large event, and
    alone, as medians over the rounds of each run's maximum latency."""
    lat = {}
    for r in rows:
        if r["workload"] in ("large_event", "large_event_read") and r["status"] == "ok":
            lat.setdefault((r["workload"], r["variant"]), []).append(float(r["latency_ms"]))
    if not lat:
        return []
    secs = [float(v) for k, v in meta.items() if k.startswith("large_event_seconds_")]

    def med(key):
        xs = lat.get(key)
        return f"{statistics.median(xs):.1f} ms" if xs else "-"
    out = ["## A large event beside small appends", "",
           f"One session appends an event of {meta.get('large_event_mb', '?')} MB (random hex: "
           "it compresses badly and goes to TOAST nearly whole) while another appends single",
           "events to other streams, or reads pages of 1,000 events of the feed, one client, "
           "synchronous_commit on. The slowest call of each run, median over the rounds:", "",
           "| calls | slowest beside the large append | slowest alone |", "|---|---:|---:|",
           f"| `es_append` to another stream | {med(('large_event', 'beside'))} | {med(('large_event', 'alone'))} |",
           f"| `es_read_all(x, 1000)` | {med(('large_event_read', 'beside'))} | {med(('large_event_read', 'alone'))} |",
           ""]
    if secs:
        out += [f"The large append itself took {statistics.median(secs):.2f} s (median). "
                "Its TOAST work runs in flight, outside the feed lock (src/lock.c): the other",
                "appends wait for nothing of it, and the feed reads (preloaded) only stop below",
                "its position until it is in the index.", ""]
    return out


def seal_section(rows, meta):
    """Sealing against the highest append rate of the run: es_seal must keep
    up with the fastest es_pg append workload (issue 14)."""
    def med(pred):
        xs = [float(r["events_per_s"]) for r in rows if r["status"] == "ok" and pred(r)]
        return statistics.median(xs) if xs else None
    seal = med(lambda r: r["workload"] == "seal" and r["variant"] == "es")
    verify = med(lambda r: r["workload"] == "verify" and r["variant"] == "es")
    if seal is None:
        return []
    best, best_name = None, None
    for w in ("append", "append_expected", "batch10", "batch1000"):
        for sync in ("on", "off"):
            for c in ("1", "2"):
                x = med(lambda r: r["workload"] == w and r["variant"] == "es"
                        and r["sync"] == sync and r["clients"] == c)
                if x is not None and (best is None or x > best):
                    best, best_name = x, f"{w}, sync {sync}, {c} client(s)"
    out = ["## The seal chain", "",
           f"es_seal seals {fmt_rate(seal)} events/s and es_verify checks "
           f"{fmt_rate(verify) if verify else '-'} events/s (medians, one backend, backlogs of "
           f"{meta.get('seal_backlog', '?')} events)."]
    if best:
        out += [f"The highest es_pg append rate of this run is {fmt_rate(best)} events/s ({best_name}): "
                f"one es_seal call seals {seal / best:.1f}x that, so sealing every few seconds keeps up "
                f"{'(met)' if seal >= best else '(NOT met: seal more often, in parallel ranges of es_verify, or in larger batches)'}."]
    if meta.get("seal_storage"):
        out += [f"Storage: {meta['seal_storage']}."]
    if meta.get("archive_size_after"):
        before, after = int(meta["archive_size_before"]), int(meta["archive_size_after"])
        out += ["", f"Archiving: es_archive moved {meta.get('archive_events', '?')} events of deleted streams; "
                f"es_events went from {before / 1048576:.1f} MB to {after / 1048576:.1f} MB after "
                f"VACUUM FULL ({meta.get('archive_vacuum_seconds', '?')} s), "
                f"{(before - after) / 1048576:.1f} MB reclaimed; es_archived_events holds "
                f"{int(meta.get('archive_table_size', 0)) / 1048576:.1f} MB."]
    live = med(lambda r: r["workload"] == "archive_live" and r["variant"] == "es")
    if live is not None or meta.get("archive_live_size_after"):
        out += ["", f"Archiving live streams: es_archive(NULL, NULL, true) moves "
                f"{fmt_rate(live) if live else '-'} events/s (median)."]
        if meta.get("archive_live_size_after"):
            before, after = int(meta["archive_live_size_before"]), int(meta["archive_live_size_after"])
            out[-1] += (f" In the last round it moved {meta.get('archive_live_events', '?')} events and kept "
                        f"{meta.get('archive_live_kept', '?')} (each stream's last); es_events went from "
                        f"{before / 1048576:.1f} MB to {after / 1048576:.1f} MB after VACUUM FULL "
                        f"({meta.get('archive_live_vacuum_seconds', '?')} s), "
                        f"{(before - after) / 1048576:.1f} MB ({100 * (before - after) / max(before, 1):.0f}%) reclaimed; "
                        f"es_verify: {meta.get('archive_live_verify', '?')}.")
    return out + [""]
def apply_latency_section(meta):
    """Append-to-apply latency of an async projection, preloaded and not:
    medians over the rounds of each round's p50, p99 and maximum."""
    per = {}
    for k, v in meta.items():
        m = re.match(r"apply_latency_(preloaded|unpreloaded)\.r\d+$", k)
        if m:
            per.setdefault(m.group(1), []).append([float(x) for x in v.split()])
    if not per:
        return []
    targets = {"preloaded": 50.0, "unpreloaded": 200.0}
    out = ["## Append-to-apply latency of an async projection", "",
           f"Two clients append single events at {meta.get('apply_latency_rate', '?')} a second in all "
           "(synchronous_commit off for them) while the projection",
           "worker applies them to an async projection; an event's latency runs from its insert",
           "(`recorded_at`, a little before its commit) to its handler call. Not preloaded, the",
           "committing backend finds the worker among the server's processes and sets its latch",
           "(src/projshmem.c). Medians over the rounds:", "",
           "| es_pg | events | p50 | p99 | max | the appends' own latency | target (p99) |",
           "|---|---:|---:|---:|---:|---:|---|"]
    for v in ("preloaded", "unpreloaded"):
        xs = per.get(v)
        if not xs:
            continue
        med = [statistics.median(col) for col in zip(*xs)]
        verdict = "met" if med[2] < targets[v] else "missed"
        out.append(f"| {v} | {med[0]:,.0f} | {med[1]:.1f} ms | {med[2]:.1f} ms | {med[3]:.1f} ms "
                   f"| {med[4]:.2f} ms | < {targets[v]:g} ms: **{verdict}** |")
    out.append("")
    return out


def cpu_table(table):
    """Backend CPU per event, es_pg and each reference."""
    out = ["| workload | durability | clients | es_pg µs/event | reference | µs/event | ratio |",
           "|---|---|---:|---:|---|---:|---:|"]
    for t in table:
        if t["es_cpu"] is None or t["ref_cpu"] is None:
            continue
        def unit_fmt(x):
            return f"{x:,.0f}" if x >= 100 else (f"{x:,.1f}" if x >= 10 else f"{x:,.2f}")
        out.append("| {} | {} | {} | {} | {} | {} | {} |".format(
            t["workload"], sync_label(t["workload"], t["sync"]), t["clients"],
            unit_fmt(t["es_cpu"]), t["ref_what"], unit_fmt(t["ref_cpu"]),
            fmt_ratio(t["cpu_ratios"])))
    return "\n".join(out)


def text_table(table, skipped):
    head = ("workload", "sync", "cl", "es_pg ev/s", "ref", "ref ev/s", "ratio", "cpu ratio", "target")
    lines = []
    for t in table:
        target = f">={t['target']:g}x {t['verdict']}" if t["target"] is not None else t["verdict"]
        lines.append((t["workload"], t["sync"], t["clients"], fmt_rate(t["es"]),
                      t["ref_v"], fmt_rate(t["ref"]),
                      fmt_ratio(t["ratios"]), fmt_ratio(t["cpu_ratios"]), target))
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
    out = []
    for row in [head] + lines:
        out.append("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())
    for name, note in skipped.items():
        out.append(f"{name}: skipped ({note})")
    return "\n".join(out)


def targets_summary(table):
    """One line per target: met everywhere, or missed where."""
    goals = [
        ("append", "ref", "on", "single-event append >= 0.95x plain INSERT, synchronous_commit on"),
        ("append_expected", "ref", "on", "same, with the expected-version check"),
        ("append", "ref", "off", "single-event append >= 0.75x plain INSERT, synchronous_commit off"),
        ("append_expected", "ref", "off", "same, with the expected-version check"),
        ("batch1000", "copy", None, "batch of 1,000 >= 0.7x COPY's events/s"),
        ("read_stream", "ref", None, "stream read >= 0.9x plain SELECT"),
        ("read_all", "ref", None, "global feed >= 0.9x plain SELECT"),
        ("read_no_upcaster", "ref", None, "(issue 13) stream read, no upcaster registered >= 0.97x plain SELECT"),
        ("read_other_upcaster", "ref", None, "(issue 13) stream read, upcasters for other types only >= 0.97x plain SELECT"),
        ("append_validator", "none", "on", "(issue 13) append with a jsonpath validator >= 0.9x without, synchronous_commit on"),
        ("append_validator", "none", "off", "same, synchronous_commit off"),
        ("append_protected", "none", "on", "(issue 14) append of a protected type >= 0.8x of an unprotected one, synchronous_commit on"),
        ("append_protected", "none", "off", "same, synchronous_commit off"),
        ("snapshot", "replay", None, "snapshot load of a 10,000-event stream >= 20x faster than full replay"),
        ("snapshot", "tail2x", None, "(issue 3's goal) snapshot load costs no more than replaying 2x the tail"),
    ]
    out = []
    for w, ref_v, sync, text in goals:
        rows = [t for t in table if t["workload"] == w and t["ref_v"] == ref_v
                and t["target"] is not None and (sync is None or t["sync"] == sync)]
        if not rows:
            out.append(f"- {text}: **not measured** (workload skipped)")
            continue
        missed = [r for r in rows if r["verdict"] != "met"]
        if not missed:
            out.append(f"- {text}: **met** ({', '.join(fmt_ratio([r['ratio']]) for r in rows)})")
        else:
            where = ", ".join(f"{sync_label(r['workload'], r['sync'])} {r['clients']} client(s): "
                              f"{fmt_ratio([r['ratio']]) if r['ratio'] else 'no figure'}"
                              + (" (run failed)" if r["verdict"] == "FAILED RUN" else "")
                              for r in missed)
            out.append(f"- {text}: **MISSED** ({where})")
    return "\n".join(out)


MAJORS_BEGIN = "<!-- majors:begin (bench/report.py, from bench/ratios-pg*.tsv) -->"
MAJORS_END = "<!-- majors:end -->"
RATIO_FIELDS = ["workload", "ref_v", "sync", "clients", "ratio", "ratio_min", "ratio_max",
                "es", "ref"]


def write_ratios(path, table, meta, report):
    """The run's median ratios, one row per table row, after '#key value'
    lines saying where they come from."""
    with open(path, "w") as f:
        for key in ("pg_major", "postgres", "mode", "rounds", "seconds", "date", "commit", "es_pg"):
            f.write(f"#{key}\t{meta.get(key, '')}\n")
        f.write(f"#report\t{os.path.basename(report)}\n")
        f.write("\t".join(RATIO_FIELDS) + "\n")
        for t in table:
            if t["ratio"] is None:
                continue
            f.write("\t".join(str(x) for x in (
                t["workload"], t["ref_v"], t["sync"], t["clients"],
                f"{t['ratio']:.4f}", f"{min(t['ratios']):.4f}", f"{max(t['ratios']):.4f}",
                f"{t['es']:.1f}" if t["es"] is not None else "",
                f"{t['ref']:.1f}" if t["ref"] is not None else "")) + "\n")


def read_ratios(path):
    meta, rows = {}, []
    with open(path) as f:
        lines = f.read().splitlines()
    body = []
    for line in lines:
        if line.startswith("#"):
            k, _, v = line[1:].partition("\t")
            meta[k] = v
        elif line:
            body.append(line)
    for r in csv.DictReader(body, delimiter="\t"):
        rows.append(r)
    return meta, rows


def majors_section(ratio_files):
    """The section of docs/benchmarks.md that puts the majors side by side."""
    runs = {}
    for path in ratio_files:
        meta, rows = read_ratios(path)
        m = re.search(r"pg(\d+)\.tsv$", path)
        runs[int(meta.get("pg_major") or m.group(1))] = (meta, rows)
    majors = sorted(runs)
    out = [MAJORS_BEGIN, "## Across PostgreSQL majors", "",
           "The same workloads on each supported major, each figure the median ratio of es_pg",
           "to plain PostgreSQL on the same major, measured in the same run on the same",
           "throwaway cluster (`PG_MAJOR=NN bench/run.sh` runs 17 and 18 in Debian chroots).",
           "Compare the ratios, not the events/s: runs on different days see different",
           "machines. A quick run is one round of 1 s per figure, noisier than a full run.",
           "", "| PostgreSQL | run | date | commit | full report |",
           "|---|---|---|---|---|"]
    for mj in majors:
        meta = runs[mj][0]
        version = re.sub(r"^PostgreSQL (\S+).*", r"\1", meta.get("postgres", "")) or str(mj)
        report = meta.get("report", "")
        link = "this file" if report == "benchmarks.md" else f"[{report}]({report})"
        out.append(f"| {version} | {meta.get('mode')} ({meta.get('rounds')} round(s) of "
                   f"{meta.get('seconds')} s) | {meta.get('date')} | {meta.get('commit')} | {link} |")
    out += ["", "| workload | reference | durability | clients | "
            + " | ".join(f"PostgreSQL {mj}" for mj in majors) + " |",
            "|---|---|---|---:|" + "---:|" * len(majors)]
    keys = []
    ratio = {}
    for mj in majors:
        for r in runs[mj][1]:
            k = (r["workload"], r["ref_v"], r["sync"], r["clients"])
            if k not in keys:
                keys.append(k)
            ratio[(mj,) + k] = float(r["ratio"])
    order = {w[0]: i for i, w in enumerate(WORKLOADS)}
    refs = {w[0]: {v: what for v, what, _ in w[3]} for w in WORKLOADS}
    keys.sort(key=lambda k: (order.get(k[0], 99), k[1],
                             {"on": 0, "off": 1, "any": 2}.get(k[2], 3), int(k[3])))
    for k in keys:
        what = refs.get(k[0], {}).get(k[1], k[1])
        cells = [k[0], f"`{what}`", sync_label(k[0], k[2]), k[3]]
        cells += [fmt_ratio([ratio[(mj,) + k]]) if (mj,) + k in ratio else "-" for mj in majors]
        out.append("| " + " | ".join(cells) + " |")
    out += ["", MAJORS_END]
    return "\n".join(out)


def replace_majors_section(main_doc, section):
    """Puts the section into the main report in place of the old one, or
    before "How it is measured" when it has none yet."""
    with open(main_doc) as f:
        text = f.read()
    if MAJORS_BEGIN in text and MAJORS_END in text:
        head, rest = text.split(MAJORS_BEGIN, 1)
        tail = rest.split(MAJORS_END, 1)[1]
        text = head + section + tail
    elif "\n## How it is measured\n" in text:
        head, tail = text.split("\n## How it is measured\n", 1)
        text = head + "\n" + section + "\n\n## How it is measured\n" + tail
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    with open(main_doc, "w") as f:
        f.write(text)


def latency_section(meta):
    """The append-to-delivery latency of a long-polling subscription while
    pgbench appends 1,000 events/s, with es_pg preloaded and not."""
    labels = [("preloaded", "preloaded (shared memory wake-up at commit)"),
              ("not_preloaded", "not preloaded (the poll looks again every 10 ms)")]
    rows = [(text, meta.get(f"latency_{k}_p50_ms"), meta.get(f"latency_{k}_p99_ms"),
             meta.get(f"latency_{k}_max_ms"), meta.get(f"latency_{k}_appended"),
             meta.get(f"latency_{k}_delivered"))
            for k, text in labels if meta.get(f"latency_{k}_p50_ms")]
    if not rows:
        return []
    out = ["## Append to delivery", "",
           "A consumer long-polls a subscription (`es_poll(name, 0, 1000, '1 s')`, then",
           "`es_ack`) while pgbench appends single events at 1,000 per second (2 clients,",
           "synchronous_commit on); for each event, the time from its append (`recorded_at`,",
           "before the commit's WAL flush) to its delivery:", "",
           "| es_pg | p50 | p99 | max | appended | delivered |", "|---|---:|---:|---:|---:|---:|"]
    for text, p50, p99, mx, app, dlv in rows:
        out.append(f"| {text} | {p50} ms | {p99} ms | {mx} ms | {app} | {dlv} |")
    out.append("")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ratios", help="write the run's ratios to this file")
    ap.add_argument("--main", help="the main report, whose majors section is rewritten")
    ap.add_argument("outdir")
    ap.add_argument("doc")
    args = ap.parse_args()
    outdir, doc = args.outdir, args.doc
    rows, meta = load(outdir)
    table, skipped = analyse(rows)
    print(text_table(table, skipped))
    print()
    print(targets_summary(table))
    for line in apply_latency_section(meta):
        print(line)

    section = None
    if args.ratios:
        write_ratios(args.ratios, table, meta, doc)
        section = majors_section(sorted(glob.glob(
            os.path.join(os.path.dirname(os.path.abspath(args.ratios)), "ratios-pg*.tsv"))))
    is_main = bool(args.main) and os.path.abspath(args.main) == os.path.abspath(doc)

    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "notes.md")) as f:
        notes = f.read()
    quick = meta.get("mode") == "quick"
    major = meta.get("pg_major", "")
    parts = [
        "# Benchmarks: es_pg beside plain PostgreSQL"
        + ("" if is_main or not major else f" {major}"),
        "",
        "<!-- written by bench/run.sh (bench/report.py + bench/notes.md): edit those, not this file -->",
        "",
        "Every figure below is a ratio to plain PostgreSQL doing the same job on a table of",
        "the same shape, measured in the same run on the same throwaway cluster (see",
        "[How it is measured](#how-it-is-measured)).",
        "",
        "## Running it",
        "",
        "```sh",
        "bench/run.sh            # every workload, 3 rounds of 2 s per figure (reads 7, single appends 5): about 25 minutes on 2 cores",
        "bench/run.sh --quick    # one round of 1 s per figure: about 4 minutes",
        "PG_MAJOR=17 bench/run.sh --quick    # the same on PostgreSQL 17 (or 18)",
        "```",
        "",
        "As root or with sudo, like `scripts/test.sh`: it installs what is missing (PostgreSQL",
        "from Debian, in a Debian chroot for a major the host's Debian lacks; python3 for the",
        "report), builds and installs es_pg and the bank example, starts a throwaway cluster,",
        "prints the table, writes the report, and removes the cluster (`ES_KEEP=1` keeps it).",
        "The report of PostgreSQL 15 is `docs/benchmarks.md`, that of another major",
        "`docs/benchmarks-pgNN.md`; each run's ratios go to `bench/ratios-pgNN.tsv`, and",
        "the section [Across PostgreSQL majors](benchmarks.md#across-postgresql-majors) puts",
        "them side by side (`$BENCH_DOC` writes the report there instead, and nothing else).",
        "`PG_MAJOR` or `PG_CONFIG` picks the PostgreSQL;",
        "`BENCH_ROUNDS` and `BENCH_SECONDS` override the rounds and the seconds (whole) per",
        "figure (`BENCH_READ_ROUNDS` the reads' rounds: reads add no data, and on 2 cores a",
        "2-client read varies by a fifth between two measurements, so they get 2 x rounds + 1;",
        "`BENCH_APPEND_ROUNDS` those of the single-event appends with a target, whose commits",
        "wait for a disk whose flushes vary by a third: 2 x rounds - 1);",
        "each ratio is the median over the rounds of es_pg's figure over the reference's of the",
        "same round, the two run back to back; `BENCH_NOTE` puts a note at the top of the report. Raw pgbench output, the generated scripts and `results.tsv` (one row per",
        "measurement) stay in `bench/out/<date>/`, which git ignores. A workload whose",
        "functions are not installed is skipped with a note, so the command works on any",
        "build of es_pg.",
        "",
    ]
    if os.environ.get("BENCH_NOTE"):
        parts += ["> " + os.environ["BENCH_NOTE"], ""]
    if quick:
        parts += [f"> **Quick run**: {meta.get('rounds')} short round(s) of {meta.get('seconds')} s "
                  "per figure. Publish the figures of a full run",
                  "> (`bench/run.sh`) on a quiet machine.", ""]
    parts += [
        "## This run",
        "",
        f"- date: {meta.get('date')}; mode: {meta.get('mode')} ({meta.get('rounds')} round(s) "
        f"of {meta.get('seconds')} s per figure, reads {meta.get('read_rounds', meta.get('rounds'))}, "
        f"single appends {meta.get('append_rounds', meta.get('rounds'))}; total {meta.get('duration')}: {meta.get('phases')}); "
        f"commit {meta.get('commit')}",
        f"- machine: {meta.get('cpu')}, {meta.get('cores')} cores, {meta.get('memory')}, "
        f"{meta.get('kernel')}; 8 kB O_DSYNC writes: {meta.get('dsync')}/s; "
        f"load average {meta.get('loadavg_start')} at the start, {meta.get('loadavg_end')} at the end",
        f"- {meta.get('postgres')}",
        f"- es_pg {meta.get('es_pg')}; data at the start: {meta.get('data')} (and the same in the reference table)",
    ] + ([f"- projections: {meta['projections']}"] if meta.get("projections") else []) + [
        f"- settings: {meta.get('settings')}; synchronous_commit per row (on = the default, "
        "commit waits for the WAL flush; off); pgbench and psql on the same machine over a Unix socket",
        "",
        "## Results",
        "",
        "Events per second are medians over the rounds; the ratio is es_pg's events/s over the",
        "reference's, per round, median (lowest-highest). Above 1 means es_pg is faster.",
        "",
        markdown_tables(table),
    ]
    if skipped:
        parts += ["Not measured in this run:", ""]
        parts += [f"- {name}: {note}" for name, note in skipped.items()]
        parts += [""]
    parts += large_event_section(rows, meta)
    parts += seal_section(rows, meta)
    parts += apply_latency_section(meta)
    parts += latency_section(meta)
    parts += ["## Targets", "", targets_summary(table), "",
              "## Backend CPU per event", "",
              "CPU time the server's backends used per event (per load for the snapshot",
              "workload), from the postmaster's reaped-children counters: unlike throughput,",
              "it hardly moves when other processes compete for the cores, so it shows the",
              "extension's own cost even on a busy machine. The ratio is the reference's CPU",
              "per event over es_pg's (above 1: es_pg uses less CPU). With synchronous_commit",
              "on, the wait for the WAL flush is not CPU time and does not show here.", "",
              cpu_table(table), ""]
    if section and is_main:
        parts += [section, ""]
    elif args.main:
        parts += [f"This run beside the other majors: [Across PostgreSQL majors]"
                  f"({os.path.basename(args.main)}#across-postgresql-majors).", ""]
    parts += [notes]
    with open(doc, "w") as f:
        f.write("\n".join(parts).rstrip() + "\n")
    if section and args.main and not is_main and os.path.exists(args.main):
        replace_majors_section(args.main, section)


if __name__ == "__main__":
    main()
