#!/usr/bin/env python3
"""A burst of logins against evaluation (issue 22): argon2id is deliberately slow, and hata
bounds how many hashes run at once (half the cores, --password-hashers) so that logins cannot
take the cores evaluation needs. Reports OFREP single-flag latency alone, then while
--threads clients log in as fast as they can (right password, so every attempt hashes), and
how the logins fared (200s, 503 Busy when the hashing queue is full).

Run it without the login budget, which would otherwise turn the burst into 429s before any
hashing (that budget is per account and address; this measures the hashing bound itself):

    HATA_LOGIN_RATE_LIMIT=0 bench/with-hata.sh -- python3 bench/login_burst.py

Python 3 standard library only; shares `request` and `single_eval` with attacks.py.
"""

import argparse
import os
import sys
import threading
import time

# The same client and evaluation probe as the hardening figures.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attacks import ADMIN, request, single_eval  # noqa: E402

EMAIL = "burst@example.com"
PASSWORD = "a long enough password for the burst"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=32)
    ap.add_argument("--evaluations", type=int, default=2000)
    args = ap.parse_args()
    status, _ = request("POST", "/api/v1/users",
                        {"email": EMAIL, "password": PASSWORD}, ADMIN)
    assert status == 201, f"creating the user: {status}"
    print(f"alone: OFREP single {single_eval(args.evaluations)}")

    stop = threading.Event()
    logins = []

    def burst():
        while not stop.is_set():
            s, ms = request("POST", "/api/v1/auth/login", {"email": EMAIL, "password": PASSWORD})
            logins.append((s, ms))

    threads = [threading.Thread(target=burst) for _ in range(args.threads)]
    for t in threads:
        t.start()
    time.sleep(2)
    under = single_eval(args.evaluations)
    stop.set()
    for t in threads:
        t.join()
    ok = sorted(ms for s, ms in logins if s == 200)
    statuses = {}
    for s, _ in logins:
        statuses[s] = statuses.get(s, 0) + 1
    print(f"under {args.threads} clients logging in: OFREP single {under}")
    print(f"logins: {len(logins)} ({statuses}); 200s p50 "
          f"{round(ok[len(ok) // 2]) if ok else '-'} ms")


if __name__ == "__main__":
    main()
