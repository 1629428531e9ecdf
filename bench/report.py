#!/usr/bin/env python3
"""Summarise a bench/run.sh results file (JSON lines) as a text table and a markdown table.

Each line is one wrk run: {case, target: "ceiling"|"case", round, rps, p50_us, p99_us,
err_*, server_rss_kb, ...}. Per case, over the rounds: median req/s, median p50 and p99, the
sum of errors, the median of the per-round ratios case req/s / ceiling req/s (the ceiling run
right before the case in the same round), and the server's RSS after the last run of the case.

Usage: bench/report.py RESULTS.jsonl [--meta JSON] [--what JSON]
"""

import argparse
import json
import statistics
from collections import OrderedDict


def errors(r):
    return r["err_status"] + r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"]


def ms(us):
    return f"{us / 1000:.2f} ms"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--meta", default="{}")
    ap.add_argument("--what", default="{}")
    args = ap.parse_args()
    meta = json.loads(args.meta)
    what = json.loads(args.what)

    runs = [json.loads(l) for l in open(args.results) if l.strip()]
    cases = OrderedDict()
    for r in runs:
        cases.setdefault(r["case"], {"ceiling": {}, "case": {}})[r["target"]][r["round"]] = r

    rows = []
    for name, d in cases.items():
        rounds = sorted(d["case"])
        if not rounds:
            continue
        case_runs = [d["case"][i] for i in rounds]
        ratios = [
            d["case"][i]["rps"] / d["ceiling"][i]["rps"]
            for i in rounds
            if i in d["ceiling"] and d["ceiling"][i]["rps"] > 0
        ]
        ceil_rps = [d["ceiling"][i]["rps"] for i in rounds if i in d["ceiling"]]
        rows.append(
            {
                "case": name,
                "what": what.get(name, ""),
                "rps": statistics.median(r["rps"] for r in case_runs),
                "rps_min": min(r["rps"] for r in case_runs),
                "rps_max": max(r["rps"] for r in case_runs),
                "p50": statistics.median(r["p50_us"] for r in case_runs),
                "p99": statistics.median(r["p99_us"] for r in case_runs),
                "errors": sum(errors(r) for r in case_runs),
                "requests": sum(r["requests"] for r in case_runs),
                "ceiling": statistics.median(ceil_rps) if ceil_rps else 0,
                "ceiling_p99": statistics.median(d["ceiling"][i]["p99_us"] for i in rounds if i in d["ceiling"])
                if ceil_rps
                else 0,
                "ratio": statistics.median(ratios) if ratios else 0,
                "rss_mb": case_runs[-1].get("server_rss_kb", 0) / 1024,
                "rounds": len(rounds),
            }
        )

    head = ["case", "req/s", "p50", "p99", "errors", "ceiling req/s", "ratio", "server RSS"]
    table = [
        [
            r["case"],
            f"{r['rps']:,.0f}",
            ms(r["p50"]),
            ms(r["p99"]),
            f"{r['errors']}/{r['requests']:,}",
            f"{r['ceiling']:,.0f}",
            f"{r['ratio'] * 100:.0f} %",
            f"{r['rss_mb']:.1f} MB",
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(t[i]) for t in table)) if table else len(h) for i, h in enumerate(head)]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    print("  ".join("-" * w for w in widths))
    for t in table:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(t, widths))))
    print()
    if meta:
        print(
            f"{meta.get('rounds')} round(s) x {meta.get('duration')} s per run, {meta.get('flags')} flags, "
            f"{meta.get('cpus')} CPUs ({meta.get('cpu')}), hata {meta.get('hata_rev')}, "
            f"Unleash Edge: {meta.get('edge')}"
        )
    print()
    print("Markdown:")
    print()
    print("| case | what | req/s | p50 | p99 | errors | ceiling req/s (same round) | ratio | server RSS after |")
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|")
    for r in rows:
        print(
            f"| `{r['case']}` | {r['what']} | {r['rps']:,.0f} | {ms(r['p50'])} | {ms(r['p99'])} | "
            f"{r['errors']} | {r['ceiling']:,.0f} | {r['ratio'] * 100:.0f} % | {r['rss_mb']:.1f} MB |"
        )
    if meta:
        print()
        print(
            f"_{meta.get('rounds')} rounds of {meta.get('duration')} s per case, each paired with a "
            f"{meta.get('duration')} s ceiling run (bare hyper, fixed 100-byte JSON) just before it; medians "
            f"over rounds. wrk, {meta.get('cpus')} shared CPUs ({meta.get('cpu')}), load generator on the "
            f"same machine. {meta.get('flags')} flags. hata {meta.get('hata_rev')}; Unleash Edge "
            f"{meta.get('edge')} (offline mode, frontend API)._"
        )


if __name__ == "__main__":
    main()
