#!/usr/bin/env python3
"""bench/report.py OUTDIR DOC: turn bench/run.sh's raw results into a table
on stdout and the report DOC (docs/benchmarks.md).

OUTDIR holds results.tsv (one row per measurement) and meta.tsv (machine,
settings, date).  Every figure is a ratio to the plain-PostgreSQL reference
measured in the same run: per round, es_pg's events/s divided by the
reference's, and the median over the rounds."""

import csv
import os
import statistics
import sys

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
    ("snapshot", "load a 10,000-event stream's state (loads/s), snapshot 100 events from the head",
     ("snapshot", "es_aggregate, snapshot + 100-event tail"),
     [("replay", "es_aggregate, full replay of 10,000 events (no snapshot)",
       {"any": 20.0}),
      ("tail2x", "es_aggregate, full replay of a 200-event stream (2x the tail)",
       {"any": 1.0})]),
    ("inline_projections", "single-event append with the bank's three inline projections",
     ("bank3", "es_append + 3 inline projections"),
     [("alone", "es_append, no projection", None),
      ("ref", "plain INSERT, no projection", None)]),
    ("async_projection", "async projections: events applied per second",
     ("catchup", "catch-up of the three bank projections (async)"),
     [("handlers", "the same handlers called over the same events in one SQL loop", None)]),
    ("rebuild_projection", "es_rebuild_projection: events replayed per second",
     ("rebuild", "es_rebuild_projection, three bank projections"),
     [("handlers", "the same handlers called over the same events in one SQL loop", None)]),
]

SYNC_LABEL = {"on": "sync on", "off": "sync off", "any": "-"}


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
    if not rs:
        return "-"
    med = statistics.median(rs)
    digits = 1 if med >= 10 else 2
    s = f"{med:.{digits}f}x"
    if len(rs) > 1:
        s += f" ({min(rs):.{digits}f}-{max(rs):.{digits}f})"
    return s


def analyse(rows):
    """Returns the table rows: one per workload, durability, clients and
    reference, and the skipped workloads with their notes."""
    by_key = {}
    skipped = {}
    failed = set()
    for r in rows:
        if r["status"].startswith("skipped"):
            skipped[r["workload"]] = r["status"][len("skipped: "):]
            continue
        if r["status"] != "ok":
            failed.add((r["workload"], r["sync"], r["clients"]))
        key = (r["workload"], r["sync"], r["clients"])
        by_key.setdefault(key, {}).setdefault(r["variant"], {})[r["round"]] = \
            float(r["events_per_s"])
    table = []
    for name, title, (es_v, es_what), refs in WORKLOADS:
        keys = sorted((k for k in by_key if k[0] == name),
                      key=lambda k: ({"on": 0, "off": 1, "any": 2}.get(k[1], 3), int(k[2])))
        for key in keys:
            variants = by_key[key]
            es = variants.get(es_v, {})
            for ref_v, ref_what, target in refs:
                ref = variants.get(ref_v, {})
                ratios = [es[r] / ref[r] for r in es if r in ref and ref[r] > 0]
                med = statistics.median(ratios) if ratios else None
                t = target.get(key[1]) if target else None
                if key in failed:
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
                    "verdict": verdict,
                })
    return table, skipped


def markdown_table(table):
    out = ["| workload | durability | clients | es_pg | events/s | reference | events/s | ratio | target |",
           "|---|---|---:|---|---:|---|---:|---:|---|"]
    for t in table:
        target = f">= {t['target']:g}x: **{t['verdict']}**" if t["target"] is not None \
            else (f"**{t['verdict']}**" if t["verdict"] else "-")
        out.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            t["workload"], SYNC_LABEL.get(t["sync"], t["sync"]), t["clients"],
            t["es_what"], fmt_rate(t["es"]), t["ref_what"], fmt_rate(t["ref"]),
            fmt_ratio(t["ratios"]), target))
    return "\n".join(out)


def text_table(table, skipped):
    head = ("workload", "sync", "cl", "es_pg ev/s", "ref", "ref ev/s", "ratio", "target")
    lines = []
    for t in table:
        target = f">={t['target']:g}x {t['verdict']}" if t["target"] is not None else t["verdict"]
        lines.append((t["workload"], t["sync"], t["clients"], fmt_rate(t["es"]),
                      t["ref_what"].split(",")[0][:28], fmt_rate(t["ref"]),
                      fmt_ratio(t["ratios"]), target))
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
            where = ", ".join(f"{SYNC_LABEL.get(r['sync'], r['sync'])} {r['clients']} client(s): "
                              f"{fmt_ratio([r['ratio']]) if r['ratio'] else 'no figure'}"
                              + (" (run failed)" if r["verdict"] == "FAILED RUN" else "")
                              for r in missed)
            out.append(f"- {text}: **MISSED** ({where})")
    return "\n".join(out)


def main():
    outdir, doc = sys.argv[1], sys.argv[2]
    rows, meta = load(outdir)
    table, skipped = analyse(rows)
    print(text_table(table, skipped))
    print()
    print(targets_summary(table))

    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "notes.md")) as f:
        notes = f.read()
    quick = meta.get("mode") == "quick"
    parts = [
        "# Benchmarks: es_pg beside plain PostgreSQL",
        "",
        "<!-- written by bench/run.sh (bench/report.py + bench/notes.md): edit those, not this file -->",
        "",
        "Every figure below is a ratio to plain PostgreSQL doing the same job on a table of",
        "the same shape, measured in the same run on the same throwaway cluster (see",
        "[How it is measured](#how-it-is-measured)). Run it yourself with `bench/run.sh`",
        "(about 10 minutes on 2 cores) or `bench/run.sh --quick` (about 2 minutes).",
        "",
    ]
    if quick:
        parts += ["> **Quick run**: one short round per figure. Publish the figures of a full run",
                  "> (`bench/run.sh`) on a quiet machine.", ""]
    parts += [
        "## This run",
        "",
        f"- date: {meta.get('date')}; mode: {meta.get('mode')} ({meta.get('rounds')} round(s) "
        f"of {meta.get('seconds')} s per figure; total {meta.get('duration')}); commit {meta.get('commit')}",
        f"- machine: {meta.get('cpu')}, {meta.get('cores')} cores, {meta.get('memory')}, "
        f"{meta.get('kernel')}; 8 kB O_DSYNC writes: {meta.get('dsync')}/s; "
        f"load average {meta.get('loadavg_start')} at the start, {meta.get('loadavg_end')} at the end",
        f"- {meta.get('postgres')}",
        f"- es_pg {meta.get('es_pg')}; data at the start: {meta.get('data')} (and the same in the reference table)",
        f"- settings: {meta.get('settings')}; synchronous_commit per row (on = the default, "
        "commit waits for the WAL flush; off); pgbench and psql on the same machine over a Unix socket",
        "",
        "## Results",
        "",
        "Events per second are medians over the rounds; the ratio is es_pg's events/s over the",
        "reference's, per round, median (lowest-highest). Above 1 means es_pg is faster.",
        "",
        markdown_table(table),
        "",
    ]
    if skipped:
        parts += ["Not measured in this run:", ""]
        parts += [f"- {name}: {note}" for name, note in skipped.items()]
        parts += [""]
    parts += ["## Targets", "", targets_summary(table), "", notes]
    with open(doc, "w") as f:
        f.write("\n".join(parts).rstrip() + "\n")


if __name__ == "__main__":
    main()
