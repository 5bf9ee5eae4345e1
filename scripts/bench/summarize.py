#!/usr/bin/env python3
"""Medians and ranges of rtcroom-bench JSON lines, as Markdown tables.

    python3 scripts/bench/summarize.py results.jsonl [more.jsonl ...]

Lines are grouped by scenario, load (pairs, rate, members), target and label; each cell is
"median (min–max)" over the repeats, with the number of runs and of failed runs.
"""
import json
import statistics
import sys
from collections import OrderedDict


def load(paths):
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    yield json.loads(line)


def cell(values, fmt="{:.0f}"):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    med = statistics.median(values)
    if len(values) == 1 or min(values) == max(values):
        return fmt.format(med)
    return f"{fmt.format(med)} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def key(j):
    load = j.get("load") or {}
    if j["scenario"] in ("relay", "smoke"):
        what = f'{j["pairs"]} pairs, closed loop ({load.get("closed_loop", "")})'
    elif j["scenario"] == "rate":
        what = f'{j["pairs"]} pairs × {load.get("offers_per_s_per_pair")}/s'
    elif j["scenario"] in ("idle", "idle-call"):
        what = f'{j["members"]} members, rooms of {j["room_size"]}'
    else:
        what = f'{j["members"]} joins, rooms of {j["room_size"]}'
    return (j["scenario"], what, j["target"], j.get("label", ""))


COLUMNS = {
    "relay": [
        ("relayed/s", lambda j: j["relayed_per_s"], "{:.0f}"),
        ("server µs CPU per relayed msg", lambda j: j["server"]["us_per_relayed"], "{:.1f}"),
        ("server CPU %", lambda j: j["server"]["cpu_util_pct"], "{:.0f}"),
        ("p50 µs", lambda j: j["latency_us"]["p50"], "{:.0f}"),
        ("p99 µs", lambda j: j["latency_us"]["p99"], "{:.0f}"),
        ("server RSS MiB", lambda j: (j["server"]["rss_kib_loaded"] or 0) / 1024, "{:.0f}"),
        ("steal %", lambda j: j["steal_pct"], "{:.0f}"),
        ("others %", lambda j: j.get("others_cpu_pct"), "{:.0f}"),
    ],
    "rate": [
        ("relayed/s", lambda j: j["relayed_per_s"], "{:.0f}"),
        ("p50 µs", lambda j: j["latency_us"]["p50"], "{:.0f}"),
        ("p90 µs", lambda j: j["latency_us"]["p90"], "{:.0f}"),
        ("p99 µs", lambda j: j["latency_us"]["p99"], "{:.0f}"),
        ("max µs", lambda j: j["latency_us"]["max"], "{:.0f}"),
        ("server µs CPU per relayed msg", lambda j: j["server"]["us_per_relayed"], "{:.1f}"),
        ("server CPU %", lambda j: j["server"]["cpu_util_pct"], "{:.0f}"),
        ("record writer threads µs CPU per quality row",
         lambda j: j["server"].get("records_us_per_report"), "{:.1f}"),
        ("steal %", lambda j: j["steal_pct"], "{:.0f}"),
        ("others %", lambda j: j.get("others_cpu_pct"), "{:.0f}"),
    ],
    "join-storm": [
        ("seconds", lambda j: j["setup"]["secs"], "{:.2f}"),
        ("joins/s", lambda j: j["setup"]["joins_per_s"], "{:.0f}"),
        ("refused", lambda j: j["join_refused"], "{:.0f}"),
        ("join p50 ms", lambda j: j["latency_us"]["p50"] / 1000, "{:.1f}"),
        ("join p99 ms", lambda j: j["latency_us"]["p99"] / 1000, "{:.1f}"),
        ("server CPU s", lambda j: j["server"]["cpu_s"], "{:.2f}"),
        ("steal %", lambda j: j["steal_pct"], "{:.0f}"),
    ],
    "idle": [
        ("joined", lambda j: j["totals"]["joins"], "{:.0f}"),
        ("dropped", lambda j: j["dropped"], "{:.0f}"),
        ("keepalives answered", lambda j: j["resp_keeplive"], "{:.0f}"),
        ("server RSS MiB", lambda j: (j["server"]["rss_kib_loaded"] or 0) / 1024, "{:.0f}"),
        ("KiB per member", lambda j: j["server"]["rss_kib_per_member"], "{:.1f}"),
        ("server CPU %", lambda j: j["server"]["cpu_util_pct"], "{:.1f}"),
        ("connects/s", lambda j: j["setup"]["connects_per_s"], "{:.0f}"),
    ],
}
COLUMNS["smoke"] = COLUMNS["relay"]
# Members that made their call (SDPs, candidates) before sitting idle.
COLUMNS["idle-call"] = COLUMNS["idle"]


def main(paths):
    groups = OrderedDict()
    for j in load(paths):
        groups.setdefault(key(j), []).append(j)
    by_scenario = OrderedDict()
    for k, runs in groups.items():
        by_scenario.setdefault(k[0], []).append((k, runs))
    for scenario, rows in by_scenario.items():
        cols = COLUMNS[scenario]
        print(f"### {scenario}\n")
        print("| load | target | runs (failed) | " + " | ".join(c[0] for c in cols) + " |")
        print("|---|---|---|" + "---|" * len(cols))
        for (_, what, target, label), runs in rows:
            failed = sum(1 for r in runs if not r["ok"])
            name = f"{target} {label}".strip()
            cells = [cell([f(r) for r in runs], fmt) for _, f, fmt in cols]
            print(f"| {what} | {name} | {len(runs)} ({failed}) | " + " | ".join(cells) + " |")
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
