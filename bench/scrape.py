#!/usr/bin/env python3
"""How long a `/metrics` scrape takes on a loaded replica (Python 3 stdlib only).

Against a running hata seeded by bench/with-hata.sh: one bulk OFREP evaluation with the client
token (every flag of the environment gets evaluation series), N open SDK event streams (the
`hata_sse_streams` gauge), a wait for the evaluation counters' 10 s drain, then M scrapes of
`GET /metrics`, timed end to end (request sent → last byte), one after another.

Usage (the observability issue's case: 10,000 flags, 1,000 streams, target < 50 ms):
  bench/with-hata.sh --flags 10000 -- python3 bench/scrape.py --streams 1000
"""

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rss_streams import Stream, http_json, open_stream, wait_until  # noqa: E402


def scrape(url):
    started = time.perf_counter()
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as r:
        body = r.read()
    return time.perf_counter() - started, body


async def main():
    seed = json.load(open(os.environ["HATA_SEED"])) if os.environ.get("HATA_SEED") else {}
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=os.environ.get("HATA_URL", "http://127.0.0.1:7070"))
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--scrapes", type=int, default=50)
    ap.add_argument("--connect-concurrency", type=int, default=50)
    args = ap.parse_args()
    server, client = seed.get("server_token"), seed.get("client_token")
    if not (server and client):
        sys.exit("scrape: run under bench/with-hata.sh (HATA_SEED with server and client tokens)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.streams + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.streams + 100), hard))

    bulk = http_json("POST", f"{args.url}/ofrep/v1/evaluate/flags", client,
                     {"context": {"targetingKey": "user-1"}})
    evaluated = len((bulk or {}).get("flags") or [])

    u = urllib.parse.urlparse(args.url)
    sts = [Stream(i) for i in range(args.streams)]
    sem = asyncio.Semaphore(args.connect_concurrency)
    tasks = []

    async def start(st):
        ready = asyncio.Event()
        async with sem:
            tasks.append(asyncio.create_task(open_stream(
                st, u.hostname, u.port or 80, "/api/v1/sdk/stream",
                {"Authorization": f"Bearer {server}"}, ready)))
            await ready.wait()

    await asyncio.gather(*(start(st) for st in sts))
    await wait_until(lambda: all(s.events >= 1 or s.error for s in sts), 120)
    errors = sum(1 for s in sts if s.error)
    await asyncio.sleep(11)  # the counters drain every 10 s

    loop = asyncio.get_running_loop()
    times, size, series = [], 0, 0
    for _ in range(args.scrapes):
        took, body = await loop.run_in_executor(None, scrape, args.url)
        times.append(took * 1000)
        size = len(body)
        series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    open_streams = None
    for line in body.decode().splitlines():
        if line.startswith('hata_sse_streams{kind="sdk"}'):
            open_streams = float(line.split()[-1])
    times.sort()
    print(json.dumps({
        "flags_evaluated": evaluated,
        "streams_open": open_streams,
        "stream_errors": errors,
        "scrapes": args.scrapes,
        "bytes": size,
        "series": series,
        "ms_p50": round(statistics.median(times), 2),
        "ms_p95": round(times[int(0.95 * (len(times) - 1))], 2),
        "ms_max": round(times[-1], 2),
    }))
    for t in tasks:
        t.cancel()


if __name__ == "__main__":
    asyncio.run(main())
