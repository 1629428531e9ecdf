#!/usr/bin/env python3
"""Admin write throughput: flag config updates per second, each one a full pass through the
one write path (version check, apply, revision bump, change record, notices) and a reload of
the environment's rule set on the replica that took it. Python 3 stdlib only.

Starts its own hata replica(s) on a fresh database (see hata_cluster.py), creates project
`wbench` with `--flags` boolean flags (timing the creations too: that is the seeding rate),
then `--writers` threads send `PATCH /api/v1/projects/wbench/flags/f-NNNNN/environments/
development` (`{"enabled": true|false}`, flags picked at random) for `--seconds` and count the
200s. With `--replicas 2` the writers are spread over two replicas on one PostgreSQL.

Writes to one project are serialised (they lock the project's row and bump its environments'
revisions), so on PostgreSQL each waits for the previous one's commit to be flushed to disk:
one project's rate is bounded by the disk's flush latency. `--projects P` spreads the flags
over P projects (`wbench-0`…), whose writes commit in parallel (and share flushes).

Usage:
  bench/write_throughput.py --backend sqlite
  bench/write_throughput.py --backend postgres --writers 16
  HATA_BIN=target/release/hata bench/write_throughput.py --backend postgres --replicas 2

Prints one JSON line:
  {"backend", "replicas", "projects", "flags", "writers", "seconds", "creates_per_s", "writes",
   "writes_per_s", "errors", "latency_ms": {"p50", "p99", "max"}, "changes_recorded", "one_change_per_write"}
"""

import argparse
import json
import random
import sys
import threading
import time

sys.path.insert(0, __import__("os").path.dirname(__file__))
from hata_cluster import Api, Cluster, log, percentile  # noqa: E402

PROJECT = "wbench"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--flags", type=int, default=100, help="flags per project")
    p.add_argument("--projects", type=int, default=1)
    p.add_argument("--writers", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10)
    args = p.parse_args()
    if args.backend == "sqlite" and args.replicas != 1:
        p.error("SQLite has one replica")

    with Cluster(args.backend, args.replicas) as cluster:
        bases = [r.base for r in cluster.replicas]
        projects = [PROJECT] if args.projects == 1 else [f"{PROJECT}-{i}" for i in range(args.projects)]
        creates = min(create_project_flags(bases[0], project, args.flags, args.writers) for project in projects)
        log(f"created {args.flags} flags per project at {creates:.0f}/s; writing for {args.seconds} s "
            f"with {args.writers} writers on {len(projects)} project(s)")
        stop = threading.Event()
        lock = threading.Lock()
        latencies, errors = [], []

        def writer(i):
            api = Api(bases[i % len(bases)])
            rnd = random.Random(i)
            mine = []
            while not stop.is_set():
                flag = f"f-{rnd.randrange(args.flags):05d}"
                project = projects[rnd.randrange(len(projects))]
                t0 = time.perf_counter()
                s, _, b = api.request("PATCH", f"/api/v1/projects/{project}/flags/{flag}/environments/development",
                                      {"enabled": rnd.random() < 0.5})
                dt = time.perf_counter() - t0
                if s == 200:
                    mine.append(dt)
                else:
                    with lock:
                        errors.append((s, b))
            with lock:
                latencies.extend(mine)

        # Warm-up: one write, not counted.
        Api(bases[0]).request("PATCH", f"/api/v1/projects/{projects[0]}/flags/f-00000/environments/development",
                              {"enabled": False})
        threads = [threading.Thread(target=writer, args=(i,)) for i in range(args.writers)]
        started = time.time()
        for t in threads:
            t.start()
        time.sleep(args.seconds)
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.time() - started
        changes = count_changes(cluster)
        lat = sorted(latencies)
        result = {
            "backend": args.backend, "replicas": args.replicas, "projects": args.projects, "flags": args.flags,
            "writers": args.writers, "seconds": round(elapsed, 2),
            "creates_per_s": round(creates, 1), "writes": len(lat),
            "writes_per_s": round(len(lat) / elapsed, 1), "errors": len(errors),
            "latency_ms": {k: round(v * 1000, 2) for k, v in
                           (("p50", percentile(lat, 50)), ("p99", percentile(lat, 99)), ("max", lat[-1] if lat else 0))},
            "changes_recorded": changes,
            # The bootstrap token, the projects, the flags, the warm-up write, then one per PATCH.
            "one_change_per_write": changes == 1 + len(projects) * (1 + args.flags) + 1 + len(lat) if changes is not None else None,
        }
        if errors:
            log(f"first errors: {errors[:3]}")
        print(json.dumps(result), flush=True)


def create_project_flags(base, project, flags, writers):
    from hata_cluster import create_project
    return create_project(Api(base), project, flags, writers)


def count_changes(cluster):
    """Rows in `changes` (every write records one); None where not easily readable."""
    if cluster.db.backend == "postgres":
        return int(cluster.db.psql("SELECT count(*) FROM changes", db=cluster.db.name))
    try:
        import sqlite3
        path = cluster.db.url.removeprefix("sqlite://").split("?")[0]
        with sqlite3.connect(path) as c:
            return c.execute("SELECT count(*) FROM changes").fetchone()[0]
    except Exception:  # noqa: BLE001 - informational only
        return None


if __name__ == "__main__":
    main()
