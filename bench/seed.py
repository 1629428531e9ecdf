#!/usr/bin/env python3
"""Seed a running hata with the benchmark data set (Python 3 stdlib only).

Creates project `bench` (environments `development` and `production`), 3 segments and N flags
(default 100), all enabled in `development`:

  * static-NNNNN   a third: boolean, no rules, default serves `on`            (reason STATIC)
  * rules-NNNNN    a third: boolean, 3 ordered rules (segment, starts_with, gt, in, semver_gt);
                   the benchmark context falls through the first two and matches the third
                   (reason TARGETING_MATCH)
  * rollout-NNNNN  a third: string flag, variants a/b/c, 3-way percentage rollout on
                   targetingKey (reason SPLIT)

Then creates a `server` and a `client` token bound to bench/development and prints JSON:

  {"base_url": ..., "project": "bench", "environment": "development",
   "server_token": ..., "client_token": ..., "flags": N,
   "sample": {"static": "static-00000", "rules": "rules-00000", "rollout": "rollout-00000"},
   "seconds": ...}

`bench/unleash-bootstrap.py` writes the equivalent Unleash Edge bootstrap (same keys).

Usage:
  bench/seed.py --url http://127.0.0.1:7070 --admin-token "$HATA_ADMIN_TOKEN" [--flags 10000]
"""

import argparse
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

PROJECT = "bench"
ENVIRONMENTS = ["development", "production"]
ENV = "development"

# The context every benchmark request sends (also used by run.sh and sse_latency.mjs).
BENCH_CONTEXT = {
    "targetingKey": "user-1",
    "email": "a@example.com",
    "plan": "pro",
    "version": "2.3.0",
    "age": 30,
}

SEGMENTS = [
    {
        "key": "beta-testers",
        "name": "Beta testers",
        "description": "explicit list plus anyone on the beta domain",
        "included": [f"beta-user-{i}" for i in range(50)],
        "excluded": ["user-666"],
        "rules": [[{"attribute": "email", "operator": "ends_with", "values": ["@beta.example.com"]}]],
    },
    {
        "key": "internal",
        "name": "Internal",
        "description": "staff accounts",
        "included": [],
        "excluded": [],
        "rules": [
            [{"attribute": "email", "operator": "ends_with", "values": ["@hata.dev"]}],
            [{"attribute": "email", "operator": "matches", "values": ["^[a-z]+\\+staff@"]}],
        ],
    },
    {
        "key": "paying",
        "name": "Paying customers",
        "description": "pro and enterprise plans",
        "included": [],
        "excluded": [],
        "rules": [[{"attribute": "plan", "operator": "in", "values": ["pro", "enterprise"]}]],
    },
]


def flag_key(kind, i):
    return f"{kind}-{i:05d}"


def flag_keys(n):
    """The flag keys for n flags, in creation order: (kind, index, key)."""
    out = []
    for i in range(n):
        kind = ("static", "rules", "rollout")[i % 3]
        out.append((kind, i // 3, flag_key(kind, i // 3)))
    return out


def static_flag(key, i):
    return {
        "key": key,
        "name": f"Static {i}",
        "description": "benchmark: no rules",
        "type": "boolean",
        "tags": ["bench", "static"],
        "environments": {
            ENV: {"enabled": True, "off_variant": "off", "default": {"variant": "on"}},
        },
    }


def rules_flag(key, i):
    # Rule 3 alternates between an `in` condition and the `paying` segment, and the semver
    # threshold varies, so flags are not all identical; the bench context matches rule 3 always.
    plan_condition = (
        {"attribute": "plan", "operator": "in", "values": ["pro", "enterprise"]}
        if i % 2 == 0
        else {"segment": "paying"}
    )
    return {
        "key": key,
        "name": f"Rules {i}",
        "description": "benchmark: three ordered rules",
        "type": "boolean",
        "tags": ["bench", "rules"],
        "environments": {
            ENV: {
                "enabled": True,
                "off_variant": "off",
                "targets": [{"variant": "on", "values": ["vip-1", "vip-2"]}],
                "rules": [
                    {
                        "id": "beta",
                        "conditions": [{"segment": "beta-testers"}],
                        "serve": {"variant": "on"},
                    },
                    {
                        "id": "admins",
                        "conditions": [
                            {"attribute": "email", "operator": "starts_with", "values": ["admin@", "root@"]},
                            {"attribute": "age", "operator": "gt", "values": [18]},
                        ],
                        "serve": {"variant": "on"},
                    },
                    {
                        "id": "modern-paying",
                        "conditions": [
                            plan_condition,
                            {"attribute": "version", "operator": "semver_gt", "values": [f"2.{i % 3}.0"]},
                            {"attribute": "age", "operator": "gt", "values": [21]},
                        ],
                        "serve": {"variant": "on"},
                    },
                ],
                "default": {"variant": "off"},
            },
        },
    }


def rollout_flag(key, i):
    return {
        "key": key,
        "name": f"Rollout {i}",
        "description": "benchmark: 3-way percentage rollout",
        "type": "string",
        "tags": ["bench", "rollout"],
        "variants": [
            {"key": "a", "value": "alpha"},
            {"key": "b", "value": "beta"},
            {"key": "c", "value": "gamma"},
        ],
        "environments": {
            ENV: {
                "enabled": True,
                "off_variant": "a",
                "default": {
                    "rollout": {
                        "weights": [
                            {"variant": "a", "weight": 33334},
                            {"variant": "b", "weight": 33333},
                            {"variant": "c", "weight": 33333},
                        ]
                    }
                },
            },
        },
    }


BUILDERS = {"static": static_flag, "rules": rules_flag, "rollout": rollout_flag}


class Api:
    def __init__(self, base_url, token, timeout=30):
        self.base = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.local = threading.local()

    def call(self, method, path, body=None, ok=(200, 201)):
        """Returns (status, json body or None). Raises on a status outside ok (plus 409)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for attempt in range(5):
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as res:
                    raw = res.read()
                    return res.status, (json.loads(raw) if raw else None)
            except urllib.error.HTTPError as e:
                raw = e.read()
                if e.code in ok:
                    return e.code, (json.loads(raw) if raw else None)
                if e.code in (429, 503) and attempt < 4:
                    time.sleep(0.2 * (attempt + 1))
                    continue
                raise SystemExit(
                    f"seed: {method} {path} -> {e.code}: {raw.decode(errors='replace')[:2000]}"
                )
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                if attempt < 4:
                    time.sleep(0.2 * (attempt + 1))
                    continue
                raise SystemExit(f"seed: {method} {path}: {e}")
        raise SystemExit(f"seed: {method} {path}: gave up")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:7070", help="hata base URL")
    ap.add_argument("--admin-token", required=True, help="admin token (HATA_ADMIN_TOKEN)")
    ap.add_argument("--flags", type=int, default=100, help="number of flags (default 100)")
    ap.add_argument("--threads", type=int, default=8, help="concurrent flag creations (default 8)")
    ap.add_argument("--no-tokens", action="store_true", help="do not create server/client tokens")
    args = ap.parse_args()

    api = Api(args.url, args.admin_token)
    t0 = time.monotonic()

    status, _ = api.call(
        "POST",
        "/api/v1/projects",
        {
            "key": PROJECT,
            "name": "Benchmark",
            "description": "created by bench/seed.py",
            "environments": [
                {"key": e, "name": e.capitalize(), "description": "", "protected": False}
                for e in ENVIRONMENTS
            ],
        },
        ok=(201, 409),
    )
    if status == 409:
        print("seed: project bench exists; creating what is missing", file=sys.stderr)

    for seg in SEGMENTS:
        api.call("POST", f"/api/v1/projects/{PROJECT}/segments", seg, ok=(201, 409))

    keys = flag_keys(args.flags)
    created = [0]
    existing = [0]
    lock = threading.Lock()

    def create(item):
        kind, i, key = item
        status, _ = api.call(
            "POST", f"/api/v1/projects/{PROJECT}/flags", BUILDERS[kind](key, i), ok=(201, 409)
        )
        with lock:
            if status == 201:
                created[0] += 1
            else:
                existing[0] += 1
            done = created[0] + existing[0]
            if args.flags >= 1000 and done % 1000 == 0:
                print(f"seed: {done}/{args.flags} flags", file=sys.stderr)

    with ThreadPoolExecutor(max_workers=max(1, args.threads)) as pool:
        list(pool.map(create, keys))

    out = {
        "base_url": args.url,
        "project": PROJECT,
        "environment": ENV,
        "flags": args.flags,
        "created": created[0],
        "existing": existing[0],
        "sample": {k: flag_key(k, 0) for k in ("static", "rules", "rollout")},
        "context": BENCH_CONTEXT,
    }
    if not args.no_tokens:
        for kind in ("server", "client"):
            _, tok = api.call(
                "POST",
                "/api/v1/tokens",
                {"name": f"bench-{kind}", "kind": kind, "project": PROJECT, "environment": ENV},
                ok=(201,),
            )
            out[f"{kind}_token"] = tok["secret"]
    out["seconds"] = round(time.monotonic() - t0, 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
