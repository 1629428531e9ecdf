"""Start hata replicas for the replica benchmarks (Python 3 stdlib only; imported, not run).

- `Database`: a fresh PostgreSQL database (created and dropped with `psql`), or a SQLite file.
- `Replica`: one `hata serve` on a free port with its log in a temporary directory.
- `Cluster`: replicas sharing one database; everything is stopped and removed on exit.
- `Api`: a keep-alive HTTP/1.1 client for one replica (one per thread).

`HATA_BIN` names the binary; by default `cargo build --release -p hata-cli` is run and
`$CARGO_TARGET_DIR/release/hata` is used. `HATA_TEST_POSTGRES_URL` (default
`postgres://postgres@127.0.0.1:5432/test`) is the PostgreSQL admin connection.
"""

import http.client
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADMIN_TOKEN = "bench-admin-" + secrets.token_hex(16)


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def hata_bin():
    if os.environ.get("HATA_BIN"):
        return os.environ["HATA_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/hata-target"))
    if os.environ.get("BUILD", "1") == "1":
        log(f"building hata (release, CARGO_TARGET_DIR={target})")
        subprocess.run(["nice", "-n", "10", "cargo", "build", "--release", "-p", "hata-cli", "--quiet"],
                       cwd=ROOT, check=True, env={**os.environ, "CARGO_TARGET_DIR": target})
    return os.path.join(target, "release", "hata")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Database:
    """A fresh database: `backend` is `postgres` or `sqlite`."""

    def __init__(self, backend, workdir):
        self.backend = backend
        if backend == "sqlite":
            self.url = f"sqlite://{workdir}/hata.db?mode=rwc"
            self.name = None
            return
        admin = os.environ.get("HATA_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
        self.admin = admin
        self.name = "hata_bench_" + secrets.token_hex(6)
        self.psql(f"CREATE DATABASE {self.name}")
        parsed = urllib.parse.urlsplit(admin)
        self.url = urllib.parse.urlunsplit(parsed._replace(path="/" + self.name))

    def psql(self, sql, db=None):
        url = self.admin
        if db:
            url = urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path="/" + db))
        out = subprocess.run(["psql", url, "-Atqc", sql], check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def drop(self):
        if self.name:
            self.psql(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
            self.name = None


class Replica:
    def __init__(self, binary, name, database_url, workdir, extra_env=None):
        self.name = name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        data = os.path.join(workdir, name)
        os.makedirs(data, exist_ok=True)
        self.log_path = os.path.join(workdir, f"{name}.log")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HATA_")}
        env.update({"HATA_ADMIN_TOKEN": ADMIN_TOKEN, "HATA_DATABASE_URL": database_url,
                    "HATA_DATA_DIR": data, "HATA_LISTEN": f"127.0.0.1:{self.port}",
                    # Benchmarks write through the admin API in bulk: no admin budget.
                    "HATA_ADMIN_RATE_LIMIT": "0",
                    "RUST_LOG": env.get("RUST_LOG", "warn")})
        env.update(extra_env or {})
        self.proc = subprocess.Popen([binary, "serve"], env=env, stdin=subprocess.DEVNULL,
                                     stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT)

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited:\n{open(self.log_path).read()[-3000:]}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/health/ready")
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"{self.name} not ready:\n{open(self.log_path).read()[-3000:]}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Cluster:
    """`n` replicas on one database; use as a context manager."""

    def __init__(self, backend, n, extra_env=None):
        self.workdir = tempfile.mkdtemp(prefix="hata-bench-")
        self.binary = hata_bin()
        self.db = Database(backend, self.workdir)
        self.replicas = []
        try:
            # Started together, as an orchestrator would.
            self.replicas = [Replica(self.binary, chr(ord("a") + i), self.db.url, self.workdir, extra_env)
                             for i in range(n)]
            for r in self.replicas:
                r.wait_ready()
        except BaseException:
            self.close()
            raise
        log(f"{n} replica(s) on {backend} ready: " + ", ".join(r.base for r in self.replicas))

    def close(self):
        for r in self.replicas:
            r.stop()
        try:
            self.db.drop()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Api:
    """A keep-alive connection to one replica."""

    def __init__(self, base, token=ADMIN_TOKEN, timeout=30):
        u = urllib.parse.urlsplit(base)
        self.host, self.port, self.token, self.timeout = u.hostname, u.port, token, timeout
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        """Returns (status, headers, parsed JSON or None)."""
        data = None if body is None else json.dumps(body).encode()
        h = {"Authorization": f"Bearer {self.token}"}
        if data is not None:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=data, headers=h)
                r = self.conn.getresponse()
                raw = r.read()
                return r.status, r.headers, (json.loads(raw) if raw else None)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A keep-alive connection the server closed: retry once on a fresh one.
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def create_project(api, project, flags, writers=8):
    """Creates `project` and `flags` boolean flags `f-00000`… (concurrently); returns flags/s."""
    from concurrent.futures import ThreadPoolExecutor
    import threading
    status, _, body = api.request("POST", "/api/v1/projects", {"key": project})
    assert status in (201, 409), (status, body)
    local = threading.local()

    def create(i):
        if not hasattr(local, "api"):
            local.api = Api(f"http://{api.host}:{api.port}")
        s, _, b = local.api.request("POST", f"/api/v1/projects/{project}/flags", {
            "key": f"f-{i:05d}", "type": "boolean",
            "environments": {"development": {"enabled": True, "off_variant": "off",
                                             "default": {"variant": "on"}}}})
        assert s in (201, 409), (s, b)

    started = time.time()
    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(create, range(flags)))
    return flags / (time.time() - started)
