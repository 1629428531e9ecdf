#!/usr/bin/env python3
"""Figures for the hardening issue (27, items 1-3), against a running seeded hata
(run through bench/with-hata.sh, which exports HATA_URL, HATA_ADMIN_TOKEN, HATA_PID and
HATA_SEED). Python 3 standard library only.

1. slow connections: opens --slow connections that send half a request header and stop;
   reports how many descriptors hata holds at once and after its header timeout, and the
   latency of /health/live and of OFREP evaluations while they are open.
2. regex memory: hata's RSS around a PUT of one flag with 800 `matches` patterns (refused
   with 422) and around the largest accepted one (50 patterns).
3. wide contexts: p50/p99 of single-flag evaluations alone, then while two clients send
   bulk evaluations with a 90,000-member context (refused with INVALID_CONTEXT).

Usage: bench/with-hata.sh -- python3 bench/attacks.py [--slow 5000]
"""

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import threading
import time
import urllib.error
import urllib.request

URL = os.environ["HATA_URL"]
ADMIN = os.environ["HATA_ADMIN_TOKEN"]
PID = int(os.environ["HATA_PID"])
SEED = json.load(open(os.environ["HATA_SEED"]))
HOST, PORT = URL.split("//")[1].split(":")
PORT = int(PORT)


def rss_mb():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def open_fds():
    return len(os.listdir(f"/proc/{PID}/fd"))


def request(method, path, body=None, token=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(URL + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        e.read()
        status = e.code
    return status, (time.perf_counter() - start) * 1000


def latencies(n, path, body=None, token=None):
    got = [request("POST" if body else "GET", path, body, token) for _ in range(n)]
    ms = sorted(t for _, t in got)
    statuses = sorted({s for s, _ in got})
    return {
        "p50_ms": round(ms[len(ms) // 2], 2),
        "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 2),
        "statuses": statuses,
    }


def single_eval(n):
    key = SEED["sample"]["rules"]
    body = {"context": {"targetingKey": "user-1", "email": "a@b.c", "plan": "pro", "age": 30}}
    return latencies(n, f"/ofrep/v1/evaluate/flags/{key}", body, SEED["server_token"])


async def slow_connections(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    writers = []
    for i in range(n):
        try:
            _, w = await asyncio.open_connection(HOST, PORT)
        except OSError as e:
            print(f"  opened {i} connections, then: {e}")
            break
        w.write(b"POST /ofrep/v1/evaluate/flags/x HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        writers.append(w)
    await asyncio.sleep(1)
    return writers


def part_slow(n):
    print(f"\n## 1. {n} slow connections (half a header each, then nothing)")
    base_fds = open_fds()
    loop = asyncio.new_event_loop()
    t0 = time.monotonic()
    writers = loop.run_until_complete(slow_connections(n))
    opened = time.monotonic() - t0
    held = open_fds() - base_fds
    health = latencies(50, "/health/live")
    evals = single_eval(200)
    print(f"  opened {len(writers)} in {opened:.1f} s; hata holds {held} more descriptors")
    print(f"  while open: /health/live {health}, OFREP single {evals}")
    loop.run_until_complete(asyncio.sleep(12))
    print(f"  12 s later (header timeout 10 s): hata holds {open_fds() - base_fds} more descriptors")
    for w in writers:
        w.close()
    loop.close()


def pattern_flag(key, n):
    return {
        "key": key,
        "type": "boolean",
        "environments": {
            "development": {
                "enabled": True,
                "rules": [
                    {
                        "conditions": [
                            {
                                "attribute": "email",
                                "operator": "matches",
                                # A few bytes each that compile to a large automaton (a
                                # bounded repetition of Unicode word characters), as in the
                                # issue's 11 KB attack.
                                "values": [f"x{i}\\w{{1,300}}" for i in range(n)],
                            }
                        ],
                        "serve": {"variant": "on"},
                    }
                ],
            }
        },
    }


def part_regex():
    print("\n## 2. regex memory")
    for key, n in [("regex-800", 800), ("regex-50", 50)]:
        before = rss_mb()
        body = pattern_flag(key, n)
        size = len(json.dumps(body))
        status, ms = request("POST", "/api/v1/projects/bench/flags", body, ADMIN, timeout=120)
        time.sleep(1)
        after = rss_mb()
        print(f"  {n} patterns ({size // 1024} KiB body): {status} in {ms:.0f} ms, "
              f"RSS {before:.0f} -> {after:.0f} MB")


def part_wide():
    print("\n## 3. wide contexts")
    print(f"  alone: OFREP single {single_eval(500)}")
    context = {"targetingKey": "attacker"}
    # Short names and values, so the body stays under the default 1 MiB limit.
    for i in range(90_000):
        context[f"{i:x}"] = 0
    body = json.dumps({"context": context}).encode()
    stop = threading.Event()
    sent = []

    def attack():
        while not stop.is_set():
            req = urllib.request.Request(URL + "/ofrep/v1/evaluate/flags", data=body, method="POST")
            req.add_header("Content-Type", "application/json")
            req.add_header("Authorization", "Bearer " + SEED["client_token"])
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    r.read()
                    sent.append(r.status)
            except urllib.error.HTTPError as e:
                e.read()
                sent.append(e.code)
            except (urllib.error.URLError, OSError) as e:
                sent.append(type(e).__name__)

    threads = [threading.Thread(target=attack) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(1)
    under = single_eval(500)
    stop.set()
    for t in threads:
        t.join()
    print(f"  under attack ({len(body) // 1024} KiB contexts, {len(sent)} sent, "
          f"statuses {sorted(set(map(str, sent)))}): OFREP single {under}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--slow", type=int, default=5000)
    args = ap.parse_args()
    print(f"hata {URL}, pid {PID}, RSS {rss_mb():.0f} MB")
    part_slow(args.slow)
    part_regex()
    part_wide()


if __name__ == "__main__":
    main()
