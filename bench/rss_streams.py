#!/usr/bin/env python3
"""hata's memory with many open event streams (Python 3 stdlib only, asyncio).

Opens N Server-Sent-Events streams to a running hata, waits until every stream has received
its first event (the rule set on connect), reads hata's RSS (/proc/<pid>/status VmRSS, and the
peak VmHWM), then makes --changes changes through the admin API (toggling one flag), one
after another: for each it measures how long it takes until every stream has received the new
event (fan-out), waits --settle seconds and reads the RSS again.

  --kind sdk    GET /api/v1/sdk/stream with `Authorization: Bearer <server token>` (default)
  --kind ofrep  the OFREP event stream: the `eventStreams[0].url` of a bulk evaluation made
                with the client token (the URL carries its own credentials)

Streams are parsed incrementally (chunked transfer decoding, then SSE framing) without keeping
event payloads, so a 10,000-flag rule set per stream costs the client no memory.

Usage (the RSS case of the serving issue: 10,000 flags, 1,000 streams):
  bench/with-hata.sh --flags 10000 -- python3 bench/rss_streams.py --streams 1000
  python3 bench/rss_streams.py --url http://127.0.0.1:7070 --token SERVER --pid PID \\
      --admin-token ADMIN --streams 1000

Options default to the environment bench/with-hata.sh sets: HATA_URL, HATA_PID,
HATA_ADMIN_TOKEN, HATA_SEED (seed.py output: server_token, client_token, sample.static).
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


def rss(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "Threads"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return {"rss_mb": round(out.get("VmRSS", 0) / 1024, 1), "hwm_mb": round(out.get("VmHWM", 0) / 1024, 1),
            "threads": out.get("Threads", 0)}


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


class Stream:
    """One SSE connection: counts events and remembers the last `id:`, keeping at most the
    first 64 bytes of any line (a rule set in a `data:` line can be megabytes)."""

    def __init__(self, n):
        self.n = n
        self.events = 0
        self.last_id = None
        self.bytes = 0
        self.event_times = []
        self.error = None
        self.head = b""  # the first bytes of the current, unfinished line
        self.line_len = 0  # its length so far
        self.has_data = False
        self.pending_id = None

    def feed(self, data):
        self.bytes += len(data)
        pos = 0
        while pos < len(data):
            nl = data.find(b"\n", pos)
            end = len(data) if nl == -1 else nl
            if len(self.head) < 64:
                self.head += data[pos:min(end, pos + 64 - len(self.head))]
            self.line_len += end - pos
            if nl == -1:
                return
            self._line(self.head.rstrip(b"\r"), self.line_len - (1 if self.head.endswith(b"\r") else 0))
            self.head, self.line_len = b"", 0
            pos = nl + 1

    def _line(self, head, length):
        if length == 0:  # a blank line dispatches the event, if it had data (SSE rules)
            if self.has_data:
                self.events += 1
                self.event_times.append(time.monotonic())
                if self.pending_id is not None:
                    self.last_id = self.pending_id
            self.has_data = False
        elif head.startswith(b"data"):
            self.has_data = True
        elif head.startswith(b"id:"):
            self.pending_id = head[3:].strip().decode(errors="replace")


async def open_stream(st, host, port, path, headers, ready):
    try:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        req = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream",
               "Cache-Control: no-cache"] + [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(req) + "\r\n\r\n").encode())
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            rest = await asyncio.wait_for(reader.read(500), 2)
            raise RuntimeError(f"status {status.decode().strip()} {rest[:200]!r}")
        chunked = False
        ctype = ""
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode().partition(":")
            if k.lower() == "transfer-encoding" and "chunked" in v.lower():
                chunked = True
            if k.lower() == "content-type":
                ctype = v.strip()
        if not ctype.startswith("text/event-stream"):
            raise RuntimeError(f"content-type {ctype!r}")
        ready.set()
        while True:
            if chunked:
                size_line = await reader.readline()
                if not size_line:
                    break
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    break
                remaining = size
                while remaining:
                    data = await reader.read(min(remaining, 1 << 16))
                    if not data:
                        raise RuntimeError("connection closed inside a chunk")
                    st.feed(data)
                    remaining -= len(data)
                await reader.readexactly(2)
            else:
                data = await reader.read(1 << 16)
                if not data:
                    break
                st.feed(data)
        st.error = st.error or "stream ended"
    except Exception as e:  # noqa: BLE001 - report any failure per stream
        st.error = f"{type(e).__name__}: {e}"
        ready.set()


def http_json(method, url, token, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=60) as res:
        raw = res.read()
        return json.loads(raw) if raw else None


async def wait_until(pred, timeout, interval=0.05):
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            return False
        await asyncio.sleep(interval)
    return True


async def main():
    seed = {}
    if os.environ.get("HATA_SEED") and os.path.exists(os.environ["HATA_SEED"]):
        seed = json.load(open(os.environ["HATA_SEED"]))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=os.environ.get("HATA_URL", "http://127.0.0.1:7070"))
    ap.add_argument("--token", default=None, help="server token (sdk) / client token (ofrep)")
    ap.add_argument("--pid", type=int, default=int(os.environ.get("HATA_PID", "0") or 0))
    ap.add_argument("--admin-token", default=os.environ.get("HATA_ADMIN_TOKEN"))
    ap.add_argument("--kind", choices=["sdk", "ofrep"], default="sdk")
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--connect-concurrency", type=int, default=50)
    ap.add_argument("--flag", default=(seed.get("sample") or {}).get("static", "static-00000"))
    ap.add_argument("--project", default=seed.get("project", "bench"))
    ap.add_argument("--environment", default=seed.get("environment", "development"))
    ap.add_argument("--timeout", type=float, default=120, help="seconds to wait for connects / fan-out")
    ap.add_argument("--changes", type=int, default=2, help="changes to fan out, one after another (toggles)")
    ap.add_argument("--settle", type=float, default=2, help="seconds to wait after a fan-out before reading the RSS")
    ap.add_argument("--hold", type=float, default=5, help="seconds to hold the streams open at the end")
    ap.add_argument("--json", action="store_true", help="print one JSON line only")
    args = ap.parse_args()
    token = args.token or seed.get("server_token" if args.kind == "sdk" else "client_token")
    if not token:
        sys.exit("rss_streams: need --token (or HATA_SEED)")
    if not args.pid:
        print("rss_streams: no --pid/HATA_PID: RSS will not be measured", file=sys.stderr)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.streams + 100
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(want, soft)), hard))

    u = urllib.parse.urlparse(args.url)
    host, port = u.hostname, u.port or 80
    if args.kind == "sdk":
        path, headers = "/api/v1/sdk/stream", {"Authorization": f"Bearer {token}"}
    else:
        ctx = seed.get("context") or {"targetingKey": "user-1"}
        bulk = http_json("POST", f"{args.url}/ofrep/v1/evaluate/flags", token, {"context": ctx})
        streams = [s for s in (bulk or {}).get("eventStreams") or [] if s.get("type") == "sse"]
        if not streams:
            sys.exit("rss_streams: the OFREP bulk response carries no eventStreams of type sse")
        es = streams[0]
        es_url = es.get("url") or urllib.parse.urljoin(
            (es.get("endpoint") or {}).get("origin") or args.url, es["endpoint"]["requestUri"])
        eu = urllib.parse.urlparse(es_url)
        host, port = eu.hostname, eu.port or 80
        path = eu.path + ("?" + eu.query if eu.query else "")
        headers = {}

    out = {"kind": args.kind, "streams": args.streams, "pid": args.pid}
    out["rss_before"] = rss(args.pid) if args.pid else None
    out["fds_before"] = fds(args.pid) if args.pid else None

    # Probe once: a clear message when the endpoint is missing.
    probe = Stream(-1)
    ev = asyncio.Event()
    task = asyncio.create_task(open_stream(probe, host, port, path, headers, ev))
    await asyncio.wait_for(ev.wait(), 30)
    if probe.error:
        task.cancel()
        sys.exit(f"rss_streams: GET {path.split('?')[0]} failed: {probe.error}")
    task.cancel()

    sts = [Stream(i) for i in range(args.streams)]
    sem = asyncio.Semaphore(args.connect_concurrency)
    tasks = []
    t0 = time.monotonic()

    async def start(st):
        ready = asyncio.Event()
        async with sem:
            tasks.append(asyncio.create_task(open_stream(st, host, port, path, headers, ready)))
            await ready.wait()

    await asyncio.gather(*(start(st) for st in sts))
    # The SDK stream sends the rule set on connect; the OFREP stream only sends events on change
    # (headers received is all there is to wait for).
    connected = args.kind != "sdk" or await wait_until(
        lambda: all(s.events >= 1 or s.error for s in sts), args.timeout)
    out["connect_seconds"] = round(time.monotonic() - t0, 2)
    errs = [s.error for s in sts if s.error]
    out["stream_errors"] = len(errs)
    if errs:
        out["first_error"] = errs[0]
    out["first_event_all"] = connected
    out["bytes_per_stream_initial"] = int(statistics.median(s.bytes for s in sts)) if sts else 0
    await asyncio.sleep(1)
    out["rss_connected"] = rss(args.pid) if args.pid else None
    out["fds_connected"] = fds(args.pid) if args.pid else None

    # Fan-out of changes: toggle the flag, wait until every stream has the new rule set, let
    # the server settle, read its RSS; repeat. An odd --changes leaves the flag toggled.
    if args.admin_token:
        live = [s for s in sts if not s.error]
        cfg_url = f"{args.url}/api/v1/projects/{args.project}/flags/{args.flag}/environments/{args.environment}"
        enabled = http_json("GET", cfg_url, args.admin_token).get("enabled", True)
        out["changes"] = []
        for _ in range(args.changes):
            before = [s.events for s in sts]
            enabled = not enabled
            t_change = time.monotonic()
            http_json("PATCH", cfg_url, args.admin_token, {"enabled": enabled})
            t_written = time.monotonic()
            done = await wait_until(lambda: all(s.events > before[s.n] or s.error for s in live), args.timeout)
            lat = sorted((s.event_times[before[s.n]] - t_change) * 1000 for s in live if s.events > before[s.n])
            await asyncio.sleep(args.settle)
            out["changes"].append({
                "all_received": done,
                "received": len(lat),
                "write_ms": round((t_written - t_change) * 1000, 1),
                "p50_ms": round(lat[len(lat) // 2], 1) if lat else None,
                "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1) if lat else None,
                "max_ms": round(lat[-1], 1) if lat else None,
                "rss_settled": rss(args.pid) if args.pid else None,
            })
    else:
        print("rss_streams: no --admin-token: skipping the fan-out measurement", file=sys.stderr)

    if args.hold > 0:
        await asyncio.sleep(args.hold)
    out["rss_end"] = rss(args.pid) if args.pid else None
    out["open_at_end"] = sum(1 for s in sts if not s.error)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    if args.json:
        print(json.dumps(out))
        return
    r = lambda k: (out.get(k) or {}).get("rss_mb")  # noqa: E731
    print(f"\n{args.kind} streams: {args.streams} opened in {out['connect_seconds']} s, "
          f"{out['stream_errors']} errors{' (' + out['first_error'] + ')' if errs else ''}; "
          f"{out['bytes_per_stream_initial']:,} bytes received per stream on connect")
    print(f"hata RSS: before {r('rss_before')} MB, {args.streams} streams open {r('rss_connected')} MB, "
          f"end {r('rss_end')} MB, peak (VmHWM) {(out.get('rss_end') or {}).get('hwm_mb')} MB; "
          f"fds {out['fds_before']} -> {out['fds_connected']}")
    for i, f in enumerate(out.get("changes") or [], 1):
        print(f"change {i}: fan-out to {f['received']} streams p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms, "
              f"max {f['max_ms']} ms (PATCH answered after {f['write_ms']} ms); "
              f"RSS {args.settle:g} s after the last stream had it: {(f['rss_settled'] or {}).get('rss_mb')} MB")
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
