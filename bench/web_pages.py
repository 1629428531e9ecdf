#!/usr/bin/env python3
"""The web UI's server time per page, and what each page ships (Python 3 stdlib only).

Run against a seeded hata (bench/with-hata.sh starts one; --flags sets the data set's size):

  bench/with-hata.sh --flags 10000 -- python3 bench/web_pages.py [--rounds 20]

It creates an admin user through the API, signs in through the UI's form (as a browser
does), then requests each page `--rounds` times after two unrecorded warm-ups, one request at
a time. For each page it reports:

  * server time: the mean of hata's own `http_request_duration_seconds` for the page's route
    template over the recorded requests (from request arrival to the answer's head; read
    from /metrics before and after, so the load generator's time is not in it);
  * client p50 / p90: wall time of the whole answer over loopback, as this script sees it;
  * HTML bytes, raw and gzip -6 (what a compressing proxy would send);
  * JS + CSS bytes the page loads, raw and gzip -6 (every <script src> and stylesheet link,
    fetched once each).

Pages: the flags list's first page, a search matching one flag, a search matching a third of
them, the last page sorted by name, a flag page (with its chart and history), "what does
this user see" for every flag of an environment, and the audit page when this build has one
(tried at /projects/<p>/audit and /audit; reported as absent otherwise).

Prints a markdown table (docs/performance.md, "Web UI") and the machine it ran on.
"""

import argparse
import gzip
import http.client
import json
import os
import platform
import re
import secrets
import statistics
import sys
import time
import urllib.parse

# Greedy: route templates hold braces (`/projects/{project}/flags`).
SAMPLE = re.compile(r'^(http_request_duration_seconds_(?:sum|count))\{(.*)\} (\S+)$')


def connect(url):
    u = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)


class Client:
    def __init__(self, url, admin_token):
        self.url = url
        self.admin_token = admin_token
        self.conn = connect(url)
        self.cookie = None

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if self.cookie:
            headers["Cookie"] = f"hata_session={self.cookie}"
        start = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=headers)
            r = self.conn.getresponse()
            data = r.read()
        except (http.client.HTTPException, OSError):
            # One reconnect: keep-alive connections may be closed by the server.
            self.conn = connect(self.url)
            self.conn.request(method, path, body=body, headers=headers)
            r = self.conn.getresponse()
            data = r.read()
        elapsed = time.perf_counter() - start
        return r.status, r.getheaders(), data, elapsed

    def api(self, method, path, doc):
        status, _, data, _ = self.request(
            method,
            path,
            json.dumps(doc).encode(),
            {"Authorization": f"Bearer {self.admin_token}", "Content-Type": "application/json"},
        )
        return status, data

    def sign_in(self):
        email = f"bench-ui-{secrets.token_hex(4)}@example.com"
        password = "bench " + secrets.token_hex(16)
        status, data = self.api("POST", "/api/v1/users", {"email": email, "password": password, "admin": True})
        if status != 201:
            sys.exit(f"creating the UI user: {status} {data[:300]!r}")
        form = urllib.parse.urlencode({"email": email, "password": password, "next": "/projects"})
        status, headers, data, _ = self.request(
            "POST", "/login", form.encode(), {"Content-Type": "application/x-www-form-urlencoded", "Origin": self.url}
        )
        cookie = None
        for k, v in headers:
            if k.lower() == "set-cookie" and v.startswith("hata_session="):
                cookie = v.split(";", 1)[0].split("=", 1)[1]
        if status != 303 or not cookie:
            sys.exit(f"signing in: {status} {data[:300]!r}")
        self.cookie = cookie

    def durations(self):
        """(method, route) → (sum seconds, count) from /metrics."""
        saved, self.cookie = self.cookie, None
        status, _, data, _ = self.request("GET", "/metrics")
        self.cookie = saved
        if status != 200:
            sys.exit(f"/metrics: {status} (set HATA_METRICS_TOKEN off for the bench)")
        out = {}
        for line in data.decode().splitlines():
            m = SAMPLE.match(line)
            if not m:
                continue
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))
            key = (labels.get("method"), labels.get("route"))
            s, c = out.get(key, (0.0, 0))
            if m.group(1).endswith("_sum"):
                s = float(m.group(3))
            else:
                c = int(float(m.group(3)))
            out[key] = (s, c)
        return out


def gz(data):
    return len(gzip.compress(data, compresslevel=6))


def assets_of(html):
    """Every script and stylesheet the page loads."""
    scripts = re.findall(r'<script[^>]*\ssrc="([^"]+)"', html)
    styles = re.findall(r'<link[^>]*rel="stylesheet"[^>]*href="([^"]+)"', html)
    styles += re.findall(r'<link[^>]*href="([^"]+)"[^>]*rel="stylesheet"', html)
    return scripts, sorted(set(styles))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=os.environ.get("HATA_URL", "http://127.0.0.1:7370"))
    ap.add_argument("--admin-token", default=os.environ.get("HATA_ADMIN_TOKEN"))
    ap.add_argument("--seed", default=os.environ.get("HATA_SEED"))
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    if not args.admin_token:
        sys.exit("HATA_ADMIN_TOKEN or --admin-token is needed")
    seed = json.load(open(args.seed)) if args.seed else {"project": "bench", "environment": "development", "flags": "?", "sample": {"rules": "rules-00000"}}
    project, env = seed["project"], seed["environment"]
    flag = seed["sample"]["rules"]

    c = Client(args.url, args.admin_token)
    c.sign_in()
    status, _, page, _ = c.request("GET", f"/projects/{project}/flags")
    if status != 200:
        sys.exit(f"flags list: {status}")
    count = re.search(r'id="count">[^<]*?([\d,]+)', page.decode())
    total = int(count.group(1).replace(",", "")) if count else 0
    last_page = max(1, -(-total // 50))
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.decode()).group(1)

    pages = [
        ("flags list, first page", "GET", f"/projects/{project}/flags", None, "/projects/{project}/flags"),
        ("search, one match", "GET", f"/projects/{project}/flags?q={flag}", None, "/projects/{project}/flags"),
        ("search, a third match", "GET", f"/projects/{project}/flags?q=rollout", None, "/projects/{project}/flags"),
        ("last page by name", "GET", f"/projects/{project}/flags?sort=name&page={last_page}", None, "/projects/{project}/flags"),
        ("flag page", "GET", f"/projects/{project}/flags/{flag}", None, "/projects/{project}/flags/{flag}"),
        (
            "what every flag serves",
            "POST",
            f"/projects/{project}/whosees",
            urllib.parse.urlencode({"csrf": csrf, "env": env, "flag": "", "key": "user-1", "attributes": "plan=pro\nage=30"}),
            "/projects/{project}/whosees",
        ),
    ]
    for path, route in [(f"/projects/{project}/audit", "/projects/{project}/audit"), ("/audit", "/audit")]:
        status, _, _, _ = c.request("GET", path)
        if status == 200:
            pages.append(("audit page", "GET", path, None, route))
            break
    else:
        pages.append(("audit page", None, None, None, None))

    asset_sizes = {}
    rows = []
    for name, method, path, body, route in pages:
        if method is None:
            rows.append((name, None))
            continue
        headers = {"Origin": args.url}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = body.encode()
        warm = [c.request(method, path, body, headers)[0] for _ in range(2)]
        if warm[-1] == 404:
            rows.append((name, None))
            continue
        # Builds before the UI's routes had their own templates counted them as `unmatched`
        # (then only this page's requests are, one at a time).
        label = route if (method, route) in c.durations() else "unmatched"
        before = c.durations().get((method, label), (0.0, 0))
        walls = []
        html = b""
        for _ in range(args.rounds):
            status, _, html, elapsed = c.request(method, path, body, headers)
            if status != 200:
                sys.exit(f"{name}: {method} {path} answered {status}")
            walls.append(elapsed)
        after = c.durations().get((method, label), (0.0, 0))
        n = after[1] - before[1]
        server_ms = (after[0] - before[0]) / n * 1000 if n else float("nan")
        scripts, styles = assets_of(html.decode())
        shipped_raw = shipped_gz = 0
        for src in scripts + styles:
            if src not in asset_sizes:
                status, _, data, _ = c.request("GET", src)
                asset_sizes[src] = (len(data), gz(data))
            shipped_raw += asset_sizes[src][0]
            shipped_gz += asset_sizes[src][1]
        walls.sort()
        rows.append(
            (
                name,
                {
                    "route": f"{method} {label}",
                    "counted": n,
                    "server_ms": server_ms,
                    "p50_ms": statistics.median(walls) * 1000,
                    "p90_ms": walls[int(len(walls) * 0.9) - 1] * 1000,
                    "html": len(html),
                    "html_gz": gz(html),
                    "scripts": len(scripts),
                    "assets": shipped_raw,
                    "assets_gz": shipped_gz,
                },
            )
        )

    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    print(f"# {seed.get('flags', '?')} flags in {project}/{env}; {args.rounds} requests per page, one at a time")
    print(f"# machine: {platform.machine()}, {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}")
    print()
    print("| page | server time, mean | client p50 / p90 | HTML (gzip) | JS + CSS (gzip) |")
    print("|---|---:|---:|---:|---:|")
    for name, r in rows:
        if r is None:
            print(f"| {name} | not in this build | | | |")
            continue
        print(
            f"| {name} | {r['server_ms']:.1f} ms | {r['p50_ms']:.1f} / {r['p90_ms']:.1f} ms "
            f"| {r['html'] / 1024:.1f} KB ({r['html_gz'] / 1024:.1f} KB) "
            f"| {r['assets'] / 1024:.1f} KB ({r['assets_gz'] / 1024:.1f} KB), {r['scripts']} scripts |"
        )
    print()
    print(json.dumps({name: r for name, r in rows}, indent=None))


if __name__ == "__main__":
    main()
