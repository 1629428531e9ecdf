# shellcheck shell=bash
# Shared shell helpers of bench/run.sh and bench/with-hata.sh (sourced, not run).
#
# Callers set: HERE (bench dir), ROOT (repo root), BENCH_HOME, HATA_TARGET, and call
# bench_init once; every process started with bench_spawn is killed on exit.

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

PIDS=()
WORK=

bench_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ $rc -ne 0 && -n $WORK && -d $WORK ]]; then
    mkdir -p "$BENCH_HOME/failed"
    local keep
    keep="$BENCH_HOME/failed/$(basename "$WORK")"
    cp -r "$WORK" "$keep" 2>/dev/null && log "logs of the failed run kept in $keep" || true
  fi
  [[ -n $WORK ]] && rm -rf "$WORK"
  exit "$rc"
}

bench_init() {
  mkdir -p "$BENCH_HOME"
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/hata-bench.XXXXXX")
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# bench_spawn VAR LOGFILE CMD... : starts CMD in the background, records its pid in VAR and PIDS.
bench_spawn() {
  local var=$1 logfile=$2
  shift 2
  "$@" >"$logfile" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  printf -v "$var" '%s' "$pid"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

require_free_port() {
  port_busy "$1" && die "port $1 is busy (something listens on 127.0.0.1:$1); pick another with ${2:-the port variable}"
  return 0
}

wait_http() { # url name pid logfile
  local url=$1 name=$2 pid=$3 logfile=$4
  for _ in $(seq 1 300); do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$logfile" >&2
      die "$name exited during start (log above)"
    fi
    if curl -fs -o /dev/null "$url"; then return 0; fi
    sleep 0.1
  done
  tail -n 20 "$logfile" >&2
  die "$name did not answer $url within 30 s (log above)"
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

ensure_wrk() {
  command -v wrk >/dev/null && return 0
  log "installing wrk (Debian package)"
  if [[ $(id -u) -eq 0 ]]; then
    apt-get install -y wrk >&2 || { apt-get update >&2 && apt-get install -y wrk >&2; }
  else
    sudo apt-get install -y wrk >&2
  fi
  command -v wrk >/dev/null || die "wrk is missing and could not be installed"
}

# build_hata: sets HATA_BIN (honours a preset HATA_BIN; builds unless BUILD=0).
build_hata() {
  if [[ -n ${HATA_BIN:-} ]]; then
    log "using HATA_BIN=$HATA_BIN"
  else
    HATA_BIN=$HATA_TARGET/release/hata
    if [[ ${BUILD:-1} -eq 1 ]]; then
      log "building hata (release, CARGO_TARGET_DIR=$HATA_TARGET)"
      (cd "$ROOT" && CARGO_TARGET_DIR=$HATA_TARGET nice -n 10 cargo build --release -p hata-cli --quiet) \
        || die "hata build failed (bench/run.sh --skip-hata measures only the ceiling and Unleash Edge)"
    fi
  fi
  [[ -x "$HATA_BIN" ]] || die "hata binary missing: $HATA_BIN"
}

# start_hata PORT FLAGS: starts hata on a fresh data dir and seeds it. Sets HATA_PID,
# HATA_URL, HATA_ADMIN_TOKEN and SEED (path of seed.py's JSON output).
start_hata() {
  local port=$1 flags=$2
  require_free_port "$port" HATA_PORT
  HATA_ADMIN_TOKEN=$(python3 -c 'import secrets; print("bench-admin-" + secrets.token_hex(16))')
  HATA_URL=http://127.0.0.1:$port
  mkdir -p "$WORK/hata-data"
  # Many open streams need many descriptors.
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  # Seeding is bulk load through the admin API: no admin budget (default 100/min) for it.
  bench_spawn HATA_PID "$WORK/hata.log" \
    env HATA_ADMIN_TOKEN="$HATA_ADMIN_TOKEN" HATA_ADMIN_RATE_LIMIT=0 "$HATA_BIN" serve --data-dir "$WORK/hata-data" --listen "127.0.0.1:$port"
  wait_http "$HATA_URL/health/live" hata "$HATA_PID" "$WORK/hata.log"
  log "hata up on :$port (pid $HATA_PID, RSS $(rss_kb "$HATA_PID") kB); seeding $flags flags"
  SEED=$WORK/seed.json
  python3 "$HERE/seed.py" --url "$HATA_URL" --admin-token "$HATA_ADMIN_TOKEN" --flags "$flags" >"$SEED" \
    || die "seeding failed"
  wait_http "$HATA_URL/health/ready" hata "$HATA_PID" "$WORK/hata.log"
  log "seeded in $(seed_get seconds) s; hata RSS $(rss_kb "$HATA_PID") kB"
}

# restart_hata PORT: stops the seeded hata (graceful) and starts it again on the same data dir,
# so it loads what was seeded the way a restarted server does. Updates HATA_PID.
restart_hata() {
  local port=$1
  kill -INT "$HATA_PID"
  wait "$HATA_PID" 2>/dev/null || true
  bench_spawn HATA_PID "$WORK/hata-restarted.log" \
    env HATA_ADMIN_TOKEN="$HATA_ADMIN_TOKEN" HATA_ADMIN_RATE_LIMIT=0 "$HATA_BIN" serve --data-dir "$WORK/hata-data" --listen "127.0.0.1:$port"
  wait_http "$HATA_URL/health/ready" hata "$HATA_PID" "$WORK/hata-restarted.log"
  log "restarted on the seeded data (pid $HATA_PID, RSS $(rss_kb "$HATA_PID") kB)"
}

# seed_get KEY[.SUBKEY]: a value from seed.py's output.
seed_get() {
  python3 - "$SEED" "$1" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v[k]
print(v)
PY
}
