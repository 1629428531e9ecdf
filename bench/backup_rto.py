#!/usr/bin/env python3
"""The restore drill's figures: recovery time (RTO) of a seeded hata from its backup.

Run against a seeded, serving hata (it takes writes while the backup runs):

    bench/with-hata.sh --flags 10000 -- python3 bench/backup_rto.py --postgres postgres://postgres@127.0.0.1/test
    bench/with-hata.sh --flags 10000 -- python3 bench/backup_rto.py --grow-to 100000 --postgres …

--grow-to N first makes a bigger store from the seeded one, since seeding 100,000 flags
through the API takes most of an hour: the seeded store's export with project `bench`'s flags
copied (keys suffixed `-gK`) up to N flags, imported into a new data dir and served by this
script (`hata serve` on a free port, the seeded hata's admin token); the change record is the
seeded one's (a creation per seeded flag and the writes since).

It takes a full backup of the running store to a directory while a writer creates flags through
the admin API, then measures, each on its own and as one sum (the RTO):

  verify   `hata backup verify ID` (fetch, checksums, decompression, chain, the import's checks)
  restore  `hata restore ID` into a fresh SQLite data dir (and a fresh PostgreSQL database with
           --postgres): verification again, then the one import transaction
  ready    `hata serve` on the restored store until /health/ready answers 200

and checks that the restored store's `hata export` equals the backup's document. Prints one JSON
object; the figures go into docs/operations.md ("Backups and restore").
"""
import argparse
import copy
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request


def run(args, env=None, check=True):
    t0 = time.monotonic()
    p = subprocess.run(args, capture_output=True, text=True, env=env)
    dt = time.monotonic() - t0
    if check and p.returncode != 0:
        sys.exit(f"{' '.join(args[:3])} failed: {p.stderr}")
    return p, dt


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def writer(url, token, stop, counter):
    """Creates flags through the admin API until told to stop: the backup runs under writes."""
    i = 0
    while not stop.is_set():
        body = json.dumps({"key": f"rto-w-{i}", "type": "boolean"}).encode()
        req = urllib.request.Request(
            f"{url}/api/v1/projects/bench/flags", data=body, method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=10).read()
            counter[0] += 1
        except Exception:
            pass
        i += 1


def ready_time(hata, store_args, work):
    port = free_port()
    t0 = time.monotonic()
    env = dict(os.environ, HATA_ADMIN_TOKEN="bench-restored-admin-token-0123")
    proc = subprocess.Popen([hata, "serve", "--listen", f"127.0.0.1:{port}", *store_args],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "restored.log"), "w"),
                            env=env)
    try:
        while True:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2).status == 200:
                    return time.monotonic() - t0
            except Exception:
                pass
            if proc.poll() is not None:
                sys.exit("the restored hata exited; see restored.log")
            time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait()


def grow(hata, data, n, work):
    """A store with `n` flags in project bench, served: (data dir, URL, the process)."""
    p, _ = run([hata, "export", "--data-dir", data])
    doc = json.loads(p.stdout)
    bench = next(p for p in doc["projects"] if p["key"] == "bench")
    seeded = list(bench["flags"])
    k = 0
    while len(bench["flags"]) < n:
        flag = copy.deepcopy(seeded[k % len(seeded)])
        flag["key"] = f"{flag['key']}-g{k // len(seeded)}"
        bench["flags"].append(flag)
        k += 1
    path = os.path.join(work, "grown.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    grown = os.path.join(work, "grown")
    _, import_s = run([hata, "import", path, "--data-dir", grown])
    os.remove(path)
    port = free_port()
    proc = subprocess.Popen([hata, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", grown],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "grown.log"), "w"),
                            env=dict(os.environ, HATA_ADMIN_RATE_LIMIT="0"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/health/ready", timeout=2).status == 200:
                return grown, url, proc, import_s
        except Exception:
            pass
        time.sleep(0.1)
    sys.exit("the grown store's hata did not become ready; see grown.log")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--postgres", help="admin URL of a PostgreSQL to restore into as well")
    ap.add_argument("--grow-to", type=int, help="grow project bench to this many flags first")
    a = ap.parse_args()
    hata = os.environ["HATA_BENCH_BIN"]
    data = os.environ["HATA_BENCH_DATA_DIR"]
    url = os.environ["HATA_URL"]
    work = tempfile.mkdtemp(dir=os.environ.get("HATA_BENCH_WORK"))
    dest = os.path.join(work, "backups")
    grown_proc, import_s = None, None
    if a.grow_to:
        data, url, grown_proc, import_s = grow(hata, data, a.grow_to, work)

    stop, written = threading.Event(), [0]
    w = threading.Thread(target=writer, args=(url, os.environ["HATA_ADMIN_TOKEN"], stop, written), daemon=True)
    w.start()
    time.sleep(0.5)
    p, backup_s = run([hata, "backup", "--to", dest, "--data-dir", data])
    stop.set()
    w.join()
    backup_id = p.stdout.split()[1]
    size = sum(os.path.getsize(os.path.join(dest, backup_id, f)) for f in os.listdir(os.path.join(dest, backup_id)))

    _, verify_s = run([hata, "backup", "verify", backup_id, "--to", dest])
    if grown_proc:
        grown_proc.terminate()
        grown_proc.wait()
    result = {"flags": a.grow_to or int(json.load(open(os.environ["HATA_SEED"]))["flags"]),
              "grown_import_s": import_s and round(import_s, 2),
              "backup_id": backup_id, "backup_s": round(backup_s, 2), "backup_bytes": size,
              "writes_during_backup": written[0], "verify_s": round(verify_s, 2), "targets": {}}

    # The document the backup holds, to compare every restore with.
    first = os.path.join(work, "first")
    run([hata, "restore", backup_id, "--from", dest, "--data-dir", first])
    expected, _ = run([hata, "export", "--data-dir", first])

    targets = [("sqlite", lambda n: ["--data-dir", os.path.join(work, n)])]
    databases = []
    if a.postgres:
        base = a.postgres.rsplit("/", 1)[0]
        def pg(n):
            db = f"hata_rto_{n}_{os.getpid()}"
            run(["psql", a.postgres, "-c", f"CREATE DATABASE {db}"])
            databases.append(db)
            return ["--database-url", f"{base}/{db}"]
        targets.append(("postgres", pg))
    for name, make in targets:
        store_args = make(f"restored_{name}")
        _, restore_s = run([hata, "restore", backup_id, "--from", dest, *store_args])
        got, _ = run([hata, "export", *store_args])
        if got.stdout != expected.stdout:
            sys.exit(f"{name}: the restored export differs from the backup's document")
        ready_s = ready_time(hata, store_args, work)
        result["targets"][name] = {"restore_s": round(restore_s, 2), "ready_s": round(ready_s, 2),
                                   "rto_s": round(verify_s + restore_s + ready_s, 2)}
    for db in databases:
        run(["psql", a.postgres, "-c", f"DROP DATABASE {db}"], check=False)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
