#!/usr/bin/env python3
"""What a backup costs a serving hata: OFREP throughput and admin-write latency while the
backup job runs inside `hata serve`, against the same load without a backup, interleaved.

    HATA_BACKUP_TO=$HOME/.cache/hata-bench/backup-load HATA_SCHEDULE_BACKUP_FULL=off \
    HATA_SCHEDULE_BACKUP_INCREMENTAL=off HATA_SCHEDULE_BACKUP_VERIFY=off \
        bench/with-hata.sh --flags 10000 -- python3 bench/backup_load.py --rows 1000000

(the issue's case: 10,000 flags and 1,000,000 evaluation-count rows; HATA_BACKUP_TO must be
set for the seeded hata to have the backup jobs, and the schedules off so that only this script
starts backups). Steps:

1. Adds `--rows` evaluation-count rows to the seeded SQLite store (its flags x consecutive
   hours back from now), straight into the database file while hata serves (hata keeps no
   cache of them), so that the backups carry them.
2. `--rounds` times, in turn: a *quiet* window and a *backup* window of the same length. In
   both, wrk runs OFREP single-flag evaluations (`--connections`, 2 threads; 0: no evaluation
   load, to see the admin writes alone) and one client makes admin writes back to back (PATCH
   a flag's description), timing each. In the backup
   window the script starts `backup-full` through `POST /api/v1/jobs/backup-full/run` and starts
   the next as soon as one ends, so the whole window is under backup. The window is 1.5 times
   the first (calibration) backup's duration, at least `--seconds`.
3. Prints one JSON object: per round and window, wrk's requests/s and p99, the admin writes'
   count, p50, p99 and maximum latency, the backups' durations and sizes; and the medians:
   throughput during / quiet, and the longest admin write in each.

The load generator, the server and the backup share the machine's CPUs: the ratio, measured
in the same run, is the figure to read (bench/README.md, "Method").
"""
import argparse
import json
import math
import os
import sys
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def api(method, path, token, body=None, timeout=30):
    url = os.environ["HATA_URL"] + path
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        text = r.read()
        return r.status, (json.loads(text) if text else None)


def add_counts(db, rows):
    """`rows` evaluation-count rows: every flag of project bench, hour after hour back."""
    con = sqlite3.connect(db, timeout=60)
    flags = [k for (k,) in con.execute("SELECT key FROM flags WHERE project = 'bench' ORDER BY key")]
    hours_needed = -(-rows // len(flags))
    now = int(time.time()) // 3600 * 3600
    t0 = time.monotonic()
    added = 0
    con.execute("BEGIN")
    for h in range(hours_needed):
        hour = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(now - 3600 * (h + 1)))
        batch = [("bench", "development", f, hour, "on", "STATIC", 1 + (i + h) % 50)
                 for i, f in enumerate(flags[: rows - added])]
        con.executemany("INSERT OR IGNORE INTO evaluation_counts VALUES (?,?,?,?,?,?,?)", batch)
        added += len(batch)
        if added >= rows:
            break
    con.commit()
    total = con.execute("SELECT COUNT(*) FROM evaluation_counts").fetchone()[0]
    con.close()
    return total, time.monotonic() - t0


class Writer(threading.Thread):
    """Admin writes back to back; (start, seconds, status) of each."""

    def __init__(self, token, flag):
        super().__init__(daemon=True)
        self.token, self.flag = token, flag
        self.stop = threading.Event()
        self.samples = []

    def run(self):
        i = 0
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                status, _ = api("PATCH", f"/api/v1/projects/bench/flags/{self.flag}", self.token,
                                {"description": f"backup load {i}"})
            except Exception as e:  # noqa: BLE001 - an error is a sample too
                status = getattr(e, "code", 0)
            self.samples.append((t0, time.monotonic() - t0, status))
            i += 1


def wrk(seconds, connections, token, flag, out):
    env = dict(os.environ, BENCH_METHOD="POST", BENCH_OUT=out,
               BENCH_BODY=json.dumps({"context": {"targetingKey": "user-1", "email": "a@example.com",
                                                  "plan": "pro", "version": "2.3.0", "age": 30}}),
               BENCH_HEADERS=f"Authorization: Bearer {token}")
    return subprocess.Popen(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
         "-s", os.path.join(HERE, "wrk", "request.lua"),
         f"{os.environ['HATA_URL']}/ofrep/v1/evaluate/flags/{flag}"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(out + ".err", "w"))


def run_backup(token):
    """Runs backup-full through the API and waits for it; returns its run."""
    _, asked = api("POST", "/api/v1/jobs/backup-full/run", token)
    while True:
        _, listed = api("GET", "/api/v1/jobs?job=backup-full&limit=5", token)
        run = next((r for r in listed["runs"] if r["id"] == asked["id"]), None)
        if run and run["outcome"] in ("succeeded", "failed"):
            if run["outcome"] != "succeeded":
                raise SystemExit(f"backup failed: {run}")
            return run
        time.sleep(0.05)


def stats(samples):
    lat = sorted(s[1] for s in samples)
    if not lat:
        return {"writes": 0}
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]  # noqa: E731
    return {"writes": len(lat), "errors": sum(1 for s in samples if s[2] >= 400 or s[2] == 0),
            "p50_ms": round(q(0.5) * 1e3, 1), "p99_ms": round(q(0.99) * 1e3, 1),
            "max_ms": round(lat[-1] * 1e3, 1)}


def window(kind, seconds, a):
    out = tempfile.mktemp(suffix=".jsonl", dir=os.environ.get("HATA_BENCH_WORK"))
    writer = Writer(a.token, a.write_flag)
    # --connections 0: admin writes alone, to see what the backup itself does to them.
    load = wrk(seconds, a.connections, a.server_token, a.eval_flag, out) if a.connections else None
    writer.start()
    t0 = time.monotonic()
    backups = []
    if kind == "backup":
        while time.monotonic() - t0 < seconds - 0.2:
            run = run_backup(a.token)
            backups.append({"id": run["id"], "duration_ms": run["duration_ms"], "detail": run["detail"]})
    if load:
        load.wait()
    else:
        time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
    writer.stop.set()
    writer.join()
    if not load:
        return {"window": kind, "admin": stats(writer.samples), "backups": backups}
    if not os.path.exists(out):
        raise SystemExit(f"wrk wrote no summary: {open(out + '.err').read()}")
    with open(out) as f:
        w = json.loads(f.read().strip().splitlines()[-1])
    return {"window": kind, "rps": round(w["rps"]), "ofrep_p99_ms": round(w["p99_us"] / 1e3, 2),
            "ofrep_errors": w["err_status"] + w["err_timeout"] + w["err_connect"],
            "admin": stats(writer.samples), "backups": backups}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--connections", type=int, default=32)
    a = ap.parse_args()
    seed = json.load(open(os.environ["HATA_SEED"]))
    a.token, a.server_token = os.environ["HATA_ADMIN_TOKEN"], seed["server_token"]
    a.eval_flag, a.write_flag = seed["sample"]["rules"], seed["sample"]["static"]

    db = os.path.join(os.environ["HATA_BENCH_DATA_DIR"], "hata.db")
    rows, added_s = add_counts(db, a.rows)
    # Warm-up, and the calibration backup that sizes the windows.
    calibration = run_backup(a.token)
    # Whole seconds: wrk reads no fractions.
    seconds = math.ceil(max(a.seconds, 1.5 * calibration["duration_ms"] / 1e3))
    print(json.dumps({"rows": rows, "calibration": calibration, "window_s": seconds}), file=sys.stderr, flush=True)
    rounds = []
    for r in range(a.rounds):
        pair = [window("quiet", seconds, a), window("backup", seconds, a)]
        rounds.append(pair)
        print(json.dumps({"round": r, "windows": pair}), file=sys.stderr, flush=True)
    loaded = a.connections > 0
    ratio = statistics.median(p[1]["rps"] / p[0]["rps"] for p in rounds) if loaded else None
    result = {
        "evaluation_count_rows": rows, "rows_added_s": round(added_s, 1),
        "calibration_backup": {"duration_ms": calibration["duration_ms"], "detail": calibration["detail"]},
        "window_s": round(seconds, 1), "connections": a.connections,
        "median_rps_quiet": statistics.median(p[0]["rps"] for p in rounds) if loaded else None,
        "median_rps_backup": statistics.median(p[1]["rps"] for p in rounds) if loaded else None,
        "median_rps_ratio": round(ratio, 3) if loaded else None,
        "max_admin_write_ms_quiet": max(p[0]["admin"].get("max_ms", 0) for p in rounds),
        "max_admin_write_ms_backup": max(p[1]["admin"].get("max_ms", 0) for p in rounds),
        "rounds": rounds,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
