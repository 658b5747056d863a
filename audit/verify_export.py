#!/usr/bin/env python3
"""Verify an export of es_pg's seal chain without es_pg.

    python3 audit/verify_export.py export.jsonl [--head HASH]

The export is what audit/export.sql prints: one JSON object per line,
{"seal": {...}} or {"event": {...}}.  This script recomputes every event's
digest and every seal's hash from the encoding in docs/audit.md (format 1)
with nothing but Python's standard library, and prints each mismatch as

    MISMATCH <problem> at position <p> (seal <n>): expected <x>, found <y>

then a summary.  --head names the hash of the last seal as recorded outside
the database (a notary, a ticket, a printed report): a chain recomputed
consistently after an edit is caught there.  Exit status: 0 intact, 1
mismatches, 2 bad input.
"""
import argparse
import hashlib
import json
import struct
import sys

FORMAT = 1
ZERO = bytes(32)
# the columns of format 1, in encoding order
FIELDS = ("global_position", "stream_id", "version", "event_id",
          "event_type", "data", "metadata", "recorded_at", "schema_version")


def event_digest(event):
    """SHA-256 of 4 bytes of format, then per field: 0x00 for NULL, or
    0x01, the length of its UTF-8 text as 4 bytes big-endian, the text."""
    h = hashlib.sha256(struct.pack(">I", FORMAT))
    for name in FIELDS:
        value = event[name]
        if value is None:
            h.update(b"\x00")
        else:
            data = value.encode("utf-8")
            h.update(b"\x01" + struct.pack(">I", len(data)) + data)
    return h.digest()


def seal_hash(seal, positions, digests):
    """SHA-256 of 4 bytes of format, prev_hash, seal_id, after_position,
    to_position, the count (8 bytes each, big-endian, signed), then per
    event its position (8 bytes) and digest (32 bytes)."""
    h = hashlib.sha256(struct.pack(">I", seal["format"]))
    h.update(bytes.fromhex(seal["prev_hash"]))
    h.update(struct.pack(">qqqq", seal["seal_id"], seal["after_position"],
                         seal["to_position"], len(positions)))
    for i, p in enumerate(positions):
        h.update(struct.pack(">q", p) + digests[i])
    return h.digest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("export")
    ap.add_argument("--head", help="the last seal's hash, recorded elsewhere")
    ap.add_argument("--max-report", type=int, default=100,
                    help="print at most this many mismatches (all are counted)")
    args = ap.parse_args()

    seals, events = [], {}
    try:
        with open(args.export, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                obj = json.loads(line)
                if "seal" in obj:
                    seals.append(obj["seal"])
                elif "event" in obj:
                    e = obj["event"]
                    events[int(e["global_position"])] = e
                else:
                    raise ValueError("line %d is neither a seal nor an event" % n)
    except (OSError, ValueError, KeyError) as exc:
        print("bad export: %s" % exc, file=sys.stderr)
        return 2
    seals.sort(key=lambda s: s["seal_id"])

    problems = []

    def report(problem, position, seal_id, expected, found):
        problems.append(position)
        if len(problems) > args.max_report:
            return
        print("MISMATCH %s at position %d (seal %d): expected %s, found %s"
              % (problem, position, seal_id, expected, found))

    prev = None
    checked = 0
    for seal in seals:
        sid = seal["seal_id"]
        positions = seal["positions"]
        raw = bytes.fromhex(seal["digests"])
        first = positions[0] if positions else seal["after_position"] + 1
        if seal["format"] != FORMAT:
            report("unknown seal format", first, sid, FORMAT, seal["format"])
            prev = seal
            continue
        if len(raw) != 32 * len(positions) or not positions \
                or positions[-1] != seal["to_position"] \
                or any(b <= a for a, b in zip([seal["after_position"]] + positions, positions)):
            report("seal malformed", first, sid, "one digest per increasing position",
                   "%d positions, %d bytes of digests" % (len(positions), len(raw)))
            prev = seal
            continue
        digests = [raw[32 * i:32 * i + 32] for i in range(len(positions))]
        if prev is None and sid == 1:
            prev = {"seal_id": 0, "to_position": 0, "hash": ZERO.hex()}
        if prev is not None:
            if sid != prev["seal_id"] + 1:
                report("seal missing", prev["to_position"] + 1, sid,
                       "seal %d" % (prev["seal_id"] + 1), "seal %d" % sid)
            elif seal["after_position"] != prev["to_position"]:
                report("chain broken", first, sid,
                       "after_position %d" % prev["to_position"],
                       "after_position %d" % seal["after_position"])
            elif seal["prev_hash"] != prev["hash"]:
                report("chain broken", first, sid, prev["hash"], seal["prev_hash"])
        recomputed = seal_hash(seal, positions, digests).hex()
        if recomputed != seal["hash"]:
            report("seal changed", first, sid, seal["hash"], recomputed)
        sealed = dict(zip(positions, digests))
        for p in positions:
            e = events.get(p)
            if e is None:
                report("event missing", p, sid, digests[positions.index(p)].hex(), "(none)")
                continue
            checked += 1
            d = event_digest(e)
            if d != sealed[p]:
                report("event changed", p, sid, sealed[p].hex(), d.hex())
        for p in sorted(events):
            if seal["after_position"] < p <= seal["to_position"] and p not in sealed:
                report("event added", p, sid, "(none)", event_digest(events[p]).hex())
        prev = seal

    if args.head is not None:
        last = seals[-1]["hash"] if seals else ZERO.hex()
        if last != args.head.lower():
            report("head differs", seals[-1]["to_position"] if seals else 0,
                   seals[-1]["seal_id"] if seals else 0, args.head.lower(), last)

    print("%d seals, %d events checked, %d mismatches%s"
          % (len(seals), checked, len(problems),
             "" if problems else ": intact"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
