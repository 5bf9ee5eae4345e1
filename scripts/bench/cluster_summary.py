#!/usr/bin/env python3
"""Summarize scripts/bench/cluster.sh results: per load and configuration (single node,
cluster same-node, cluster split), the medians over repetitions of relayed messages per
second, relay latency p50/p99, and CPU µs per relayed message of each process and in
total, with the ratios the cluster goals are stated in."""
import json
import statistics
import sys


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=1):
    return "-" if x is None else f"{x:.{digits}f}"


def cpu(j, name):
    """µs per relayed message of one process (the single node counts as node1)."""
    c = j.get("cluster")
    if c:
        return c["processes"].get(name, {}).get("us_per_relayed")
    return j["server"]["us_per_relayed"] if name == "node1" else None


def total(j):
    c = j.get("cluster")
    return c["us_per_relayed"] if c else j["server"]["us_per_relayed"]


def main(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    loads = []
    for j in rows:
        key = (j["scenario"], j["pairs"])
        if key not in loads:
            loads.append(key)
    print("| load | configuration | runs | ok | relayed/s | p50 µs | p99 µs | node1 µs | node2 µs"
          " | redis µs | total µs | total / single | p99 / same | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    goals = []
    for load in loads:
        med_of = {}
        for config in ["single", "same", "split"]:
            rs = [j for j in rows if (j["scenario"], j["pairs"]) == load and j["label"] == config]
            if not rs:
                continue
            m = {
                "n": len(rs),
                "ok": sum(1 for j in rs if j["ok"]),
                "rate": med(j["relayed_per_s"] for j in rs),
                "p50": med(j["latency_us"]["p50"] for j in rs),
                "p99": med(j["latency_us"]["p99"] for j in rs),
                "node1": med(cpu(j, "node1") for j in rs),
                "node2": med(cpu(j, "node2") for j in rs),
                "redis": med(cpu(j, "redis") for j in rs),
                "total": med(total(j) for j in rs),
                "uptime": "; ".join(j.get("uptime", "?") for j in rs),
            }
            med_of[config] = m
        single = med_of.get("single", {}).get("total")
        same = med_of.get("same", {})
        for config, m in med_of.items():
            r_single = m["total"] / single if single and m["total"] else None
            r_p99 = m["p99"] / same["p99"] if config == "split" and same.get("p99") else None
            name = f"{load[0]} {load[1]} pairs"
            print(f"| {name} | {config} | {m['n']} | {m['ok']} | {fmt(m['rate'], 0)} | "
                  f"{fmt(m['p50'], 0)} | {fmt(m['p99'], 0)} | {fmt(m['node1'])} | {fmt(m['node2'])} | "
                  f"{fmt(m['redis'])} | {fmt(m['total'])} | {fmt(r_single, 2)} | {fmt(r_p99, 2)} | {m['uptime']} |")
        if single and same.get("total"):
            goals.append(f"- {load[0]} {load[1]} pairs: same-node total CPU / single node = "
                         f"{same['total'] / single:.2f} (goal at most 1.1)")
        split = med_of.get("split", {})
        if split.get("total") and same.get("total"):
            goals.append(f"- {load[0]} {load[1]} pairs: split total CPU / same-node = "
                         f"{split['total'] / same['total']:.2f} (goal at most 2)")
        if split.get("p99") and same.get("p99"):
            goals.append(f"- {load[0]} {load[1]} pairs: split p99 / same-node = "
                         f"{split['p99'] / same['p99']:.2f} (goal at most 2)")
    print()
    print("\n".join(goals))


if __name__ == "__main__":
    main(sys.argv[1])
