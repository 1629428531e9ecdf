#!/usr/bin/env python3
"""Propagation latency between replicas: a write through replica A → the new rule set served
by replicas B and C. Python 3 stdlib only.

Starts three `hata serve` on one fresh PostgreSQL database (see hata_cluster.py), creates a
flag, and opens `GET /api/v1/sdk/stream` on B and C. Each stream event is the environment's
rule set as just swapped in, so the moment it arrives is the moment that replica serves the
new value. Then, `--writes` times (default 200): note the time, `PATCH` the flag's config on
A, and wait until B's and C's streams have delivered a rule set with the flag's new version
(read from the PATCH's `ETag`). Reported, from the moment the PATCH was sent:

  - `patch`: the PATCH answered by A (A serves it before it answers);
  - `b`, `c`: the new rule set received on B's and C's stream;
  - `all`: the later of B and C, i.e. "served everywhere".

Writes are `--gap-ms` apart (default 20) after the previous one reached everyone, so events
never pile up. The readers are threads timestamping with `time.perf_counter()` as each event
is parsed.

Usage:
  bench/propagation.py
  HATA_BIN=~/.cache/hata-target-pg/release/hata bench/propagation.py --writes 200
"""

import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, __import__("os").path.dirname(__file__))
from hata_cluster import Api, Cluster, log, percentile  # noqa: E402

PROJECT = "prop"
FLAG = "f-00000"


class StreamReader(threading.Thread):
    """Reads an SDK stream; records when each version of FLAG first arrived."""

    def __init__(self, base, token):
        super().__init__(daemon=True)
        u = urllib.parse.urlsplit(base)
        # The token was made on A: B and C know it once they heard of it (a 401 until then).
        deadline = time.time() + 10
        while True:
            self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
            self.conn.request("GET", "/api/v1/sdk/stream", headers={"Authorization": f"Bearer {token}"})
            self.resp = self.conn.getresponse()
            if self.resp.status == 200:
                break
            assert self.resp.status == 401 and time.time() < deadline, self.resp.status
            self.conn.close()
            time.sleep(0.05)
        self.seen = {}  # flag version -> perf_counter at arrival
        self.cond = threading.Condition()

    def run(self):
        data = []
        while True:
            line = self.resp.readline()
            if not line:
                return
            line = line.rstrip(b"\r\n")
            if line.startswith(b"data: "):
                data.append(line[6:])
            elif not line and data:
                at = time.perf_counter()
                doc = json.loads(b"".join(data))
                data = []
                for f in doc["flags"]:
                    if f["key"] == FLAG:
                        with self.cond:
                            self.seen.setdefault(f["version"], at)
                            self.cond.notify_all()

    def wait_version(self, version, timeout):
        """Arrival time of `version` or newer (a newer rule set includes it)."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                hits = [t for v, t in self.seen.items() if v >= version]
                if hits:
                    return min(hits)
                left = deadline - time.time()
                if left <= 0:
                    return None
                self.cond.wait(left)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--writes", type=int, default=200)
    p.add_argument("--gap-ms", type=float, default=20)
    args = p.parse_args()

    with Cluster("postgres", 3) as cluster:
        a, b, c = (r.base for r in cluster.replicas)
        api = Api(a)
        s, _, body = api.request("POST", "/api/v1/projects", {"key": PROJECT})
        assert s == 201, body
        s, _, body = api.request("POST", f"/api/v1/projects/{PROJECT}/flags", {
            "key": FLAG, "type": "boolean",
            "environments": {"development": {"enabled": True, "off_variant": "off",
                                             "default": {"variant": "on"}}}})
        assert s == 201, body
        s, _, tok = api.request("POST", "/api/v1/tokens", {"name": "bench", "kind": "server",
                                                          "project": PROJECT, "environment": "development"})
        assert s == 201, tok
        readers = [StreamReader(base, tok["secret"]) for base in (b, c)]
        for r in readers:
            r.start()
        for r in readers:
            assert r.wait_version(1, 10) is not None, "streams did not deliver the first rule set"

        rows = {"patch": [], "b": [], "c": [], "all": []}
        missed = 0
        path = f"/api/v1/projects/{PROJECT}/flags/{FLAG}/environments/development"
        for i in range(args.writes):
            t0 = time.perf_counter()
            s, headers, body = api.request("PATCH", path, {"enabled": i % 2 == 1})
            t_patch = time.perf_counter()
            assert s == 200, (s, body)
            version = int(headers["ETag"].strip('"'))
            arrivals = [r.wait_version(version, 10) for r in readers]
            if None in arrivals:
                missed += 1
                continue
            rows["patch"].append(t_patch - t0)
            rows["b"].append(arrivals[0] - t0)
            rows["c"].append(arrivals[1] - t0)
            rows["all"].append(max(arrivals) - t0)
            time.sleep(args.gap_ms / 1000)

        result = {"writes": args.writes, "missed": missed}
        for k, v in rows.items():
            v.sort()
            result[k] = {"p50_ms": round(percentile(v, 50) * 1000, 2),
                         "p99_ms": round(percentile(v, 99) * 1000, 2),
                         "max_ms": round(v[-1] * 1000, 2)}
        print(json.dumps(result), flush=True)
        log("b/c/all = new rule set on B's / C's stream / both, from the moment the PATCH to A was sent")


if __name__ == "__main__":
    main()
