#!/usr/bin/env bash
# hata serving benchmark (not part of CI). See bench/README.md.
#
# Builds hata (release) and the ceiling server, starts hata on a temporary data dir, seeds it,
# starts the ceiling and Unleash Edge, then measures every case interleaved with the ceiling
# (per round: ceiling, case, ceiling, case, ...) and prints a table plus a markdown table.
#
#   bench/run.sh [options] [CASE...]
#
#   -d, --duration S    seconds per measurement (default 10)
#   -r, --rounds N      rounds (default 3)
#   -q, --quick         --duration 3 --rounds 1
#   --no-build          use existing binaries (HATA_BIN, ceiling, unleash-edge)
#   --skip-hata         do not build/start hata (ceiling and Unleash cases only)
#   --skip-unleash      do not install/start Unleash Edge
#   --flags N           seed N flags (default 100)
#   --list              list the cases and exit
#   CASE...             run only these cases (names from --list)
#
# Environment: CARGO_TARGET_DIR (hata build, default ~/.cache/hata-target), HATA_BIN (use this
# hata binary instead of building), BENCH_HOME (tools, default ~/.cache/hata-bench),
# HATA_PORT / CEILING_PORT / EDGE_PORT (default 7370 / 7371 / 7372), WRK_THREADS (default 2).

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BENCH_HOME=${BENCH_HOME:-$HOME/.cache/hata-bench}
HATA_TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/hata-target}
HATA_PORT=${HATA_PORT:-7370}
CEILING_PORT=${CEILING_PORT:-7371}
EDGE_PORT=${EDGE_PORT:-7372}
WRK_THREADS=${WRK_THREADS:-2}
DURATION=10
ROUNDS=3
BUILD=1
SKIP_HATA=0
SKIP_UNLEASH=0
FLAGS=100
ONLY=()

ALL_CASES=(
  ofrep-single-64 ofrep-single-1 ofrep-bulk-64 sdk-config-64 sdk-config-304-64
  unleash-single-64 unleash-single-1 unleash-all-64 unleash-all-1
)

usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    -d|--duration) DURATION=$2; shift 2 ;;
    -r|--rounds) ROUNDS=$2; shift 2 ;;
    -q|--quick) DURATION=3; ROUNDS=1; shift ;;
    --no-build) BUILD=0; shift ;;
    --skip-hata) SKIP_HATA=1; shift ;;
    --skip-unleash) SKIP_UNLEASH=1; shift ;;
    --flags) FLAGS=$2; shift 2 ;;
    --list) printf '%s\n' "${ALL_CASES[@]}"; exit 0 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) ONLY+=("$1"); shift ;;
  esac
done
for c in "${ONLY[@]}"; do
  [[ " ${ALL_CASES[*]} " == *" $c "* ]] || { echo "run.sh: unknown case $c (see --list)" >&2; exit 2; }
done

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$HERE/lib.sh"

# ---------------------------------------------------------------------------------------------
# Which parts are needed.
want() { # case → 0 if selected
  [[ ${#ONLY[@]} -eq 0 ]] && return 0
  [[ " ${ONLY[*]} " == *" $1 "* ]]
}
NEED_HATA=0; NEED_EDGE=0
for c in "${ALL_CASES[@]}"; do
  want "$c" || continue
  case "$c" in unleash-*) NEED_EDGE=1 ;; *) NEED_HATA=1 ;; esac
done
[[ $SKIP_HATA -eq 1 ]] && NEED_HATA=0
[[ $SKIP_UNLEASH -eq 1 ]] && NEED_EDGE=0

bench_init
ensure_wrk
command -v curl >/dev/null || die "curl is required"
command -v python3 >/dev/null || die "python3 is required"

EDGE_BIN=${EDGE_BIN:-$BENCH_HOME/bin/unleash-edge}
if [[ $NEED_EDGE -eq 1 && ! -x "$EDGE_BIN" ]]; then
  if [[ $BUILD -eq 0 ]]; then
    die "Unleash Edge not found at $EDGE_BIN (install: cargo install unleash-edge --locked --root $BENCH_HOME, or --skip-unleash)"
  fi
  log "installing Unleash Edge into $BENCH_HOME (slow: 15+ minutes; log: $BENCH_HOME/unleash-build.log)"
  CARGO_TARGET_DIR=$BENCH_HOME/target-unleash nice -n 19 \
    cargo install unleash-edge --locked --root "$BENCH_HOME" >"$BENCH_HOME/unleash-build.log" 2>&1 \
    || die "cargo install unleash-edge failed; see $BENCH_HOME/unleash-build.log"
fi

# ---------------------------------------------------------------------------------------------
# Builds.
CEILING_BIN=$BENCH_HOME/target/release/hata-bench-ceiling
if [[ $BUILD -eq 1 ]]; then
  log "building the ceiling (release)"
  (cd "$HERE/ceiling" && CARGO_TARGET_DIR=$BENCH_HOME/target nice -n 10 cargo build --release --quiet) \
    || die "ceiling build failed"
fi
[[ -x "$CEILING_BIN" ]] || die "ceiling binary missing: $CEILING_BIN"

if [[ $NEED_HATA -eq 1 ]]; then
  build_hata
fi

# ---------------------------------------------------------------------------------------------
# Start the servers.
require_free_port "$CEILING_PORT" CEILING_PORT
[[ $NEED_EDGE -eq 1 ]] && require_free_port "$EDGE_PORT" EDGE_PORT

bench_spawn CEILING_PID "$WORK/ceiling.log" "$CEILING_BIN" "127.0.0.1:$CEILING_PORT"
wait_http "http://127.0.0.1:$CEILING_PORT/" ceiling "$CEILING_PID" "$WORK/ceiling.log"
log "ceiling up on :$CEILING_PORT (pid $CEILING_PID)"

HATA_PID=
SEED=
if [[ $NEED_HATA -eq 1 ]]; then
  start_hata "$HATA_PORT" "$FLAGS"
fi

EDGE_PID=
EDGE_TOKEN='*:development.bench-frontend-token'
if [[ $NEED_EDGE -eq 1 ]]; then
  python3 "$HERE/unleash-bootstrap.py" --flags "$FLAGS" -o "$WORK/unleash-bootstrap.json"
  bench_spawn EDGE_PID "$WORK/edge.log" \
    "$EDGE_BIN" --port "$EDGE_PORT" --interface 127.0.0.1 offline \
    --bootstrap-file "$WORK/unleash-bootstrap.json" \
    --client-tokens '*:development.bench-client-token' \
    --frontend-tokens "$EDGE_TOKEN"
  wait_http "http://127.0.0.1:$EDGE_PORT/internal-backstage/health" "Unleash Edge" "$EDGE_PID" "$WORK/edge.log"
  log "Unleash Edge up on :$EDGE_PORT (pid $EDGE_PID, RSS $(rss_kb "$EDGE_PID") kB)"
fi

# ---------------------------------------------------------------------------------------------
# Cases. Each: target pid, connections, method, URL, body, headers.
CTX='{"context":{"targetingKey":"user-1","email":"a@example.com","plan":"pro","version":"2.3.0","age":30}}'
# Unleash context as a query: userId is the targeting key, the rest are properties.
UQ='userId=user-1&properties%5Bemail%5D=a%40example.com&properties%5Bplan%5D=pro&properties%5Bversion%5D=2.3.0&properties%5Bage%5D=30'
RULES_FLAG=rules-00000
H=http://127.0.0.1:$HATA_PORT
E=http://127.0.0.1:$EDGE_PORT
SERVER_TOKEN=
if [[ -n $SEED ]]; then
  SERVER_TOKEN=$(seed_get server_token)
  RULES_FLAG=$(seed_get sample.rules)
fi

declare -A C_PID C_CONNS C_METHOD C_URL C_BODY C_HEADERS C_WHAT
def() { # name pid conns method url body headers what
  C_PID[$1]=$2; C_CONNS[$1]=$3; C_METHOD[$1]=$4; C_URL[$1]=$5; C_BODY[$1]=$6; C_HEADERS[$1]=$7; C_WHAT[$1]=$8
}
AUTH="Authorization: Bearer $SERVER_TOKEN"
def ofrep-single-64 "$HATA_PID" 64 POST "$H/ofrep/v1/evaluate/flags/$RULES_FLAG" "$CTX" "$AUTH" "hata OFREP single flag (3 rules), 64 conns"
def ofrep-single-1 "$HATA_PID" 1 POST "$H/ofrep/v1/evaluate/flags/$RULES_FLAG" "$CTX" "$AUTH" "hata OFREP single flag (3 rules), 1 conn"
def ofrep-bulk-64 "$HATA_PID" 64 POST "$H/ofrep/v1/evaluate/flags" "$CTX" "$AUTH" "hata OFREP bulk ($FLAGS flags), 64 conns"
def sdk-config-64 "$HATA_PID" 64 GET "$H/api/v1/sdk/config" "" "$AUTH" "hata SDK config (full body), 64 conns"
def sdk-config-304-64 "$HATA_PID" 64 GET "$H/api/v1/sdk/config" "" "$AUTH" "hata SDK config, If-None-Match (304), 64 conns"
def unleash-single-64 "$EDGE_PID" 64 GET "$E/api/frontend/features/$RULES_FLAG?$UQ" "" "Authorization: $EDGE_TOKEN" "Unleash Edge frontend single flag, 64 conns"
def unleash-single-1 "$EDGE_PID" 1 GET "$E/api/frontend/features/$RULES_FLAG?$UQ" "" "Authorization: $EDGE_TOKEN" "Unleash Edge frontend single flag, 1 conn"
def unleash-all-64 "$EDGE_PID" 64 GET "$E/api/frontend/all?$UQ" "" "Authorization: $EDGE_TOKEN" "Unleash Edge frontend all flags ($FLAGS), 64 conns"
def unleash-all-1 "$EDGE_PID" 1 GET "$E/api/frontend/all?$UQ" "" "Authorization: $EDGE_TOKEN" "Unleash Edge frontend all flags ($FLAGS), 1 conn"

# Probe each selected case once; skip (with the reason) those that do not answer 2xx.
CASES=()
for c in "${ALL_CASES[@]}"; do
  want "$c" || continue
  case "$c" in
    unleash-*) [[ $NEED_EDGE -eq 1 ]] || { log "skip $c: Unleash Edge not started"; continue; } ;;
    *) [[ $NEED_HATA -eq 1 ]] || { log "skip $c: hata not started"; continue; } ;;
  esac
  args=(-s -o "$WORK/probe.body" -D "$WORK/probe.headers" -w '%{http_code}' -X "${C_METHOD[$c]}" -H "${C_HEADERS[$c]}")
  [[ -n ${C_BODY[$c]} ]] && args+=(-H 'Content-Type: application/json' --data "${C_BODY[$c]}")
  code=$(curl "${args[@]}" "${C_URL[$c]}" || echo 000)
  if [[ $code != 2* ]]; then
    log "skip $c: ${C_METHOD[$c]} ${C_URL[$c]%%\?*} answered $code$([[ $code == 404 ]] && echo ' (endpoint not implemented yet?)') $(head -c 200 "$WORK/probe.body" 2>/dev/null | tr '\n' ' ')"
    continue
  fi
  if [[ $c == sdk-config-304-64 ]]; then
    etag=$(awk 'tolower($1)=="etag:" {sub(/\r$/,""); $1=""; sub(/^ /,""); print}' "$WORK/probe.headers")
    if [[ -z $etag ]]; then log "skip $c: GET /api/v1/sdk/config sent no ETag"; continue; fi
    C_HEADERS[$c]="${C_HEADERS[$c]}"$'\n'"If-None-Match: $etag"
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "$AUTH" -H "If-None-Match: $etag" "${C_URL[$c]}" || echo 000)
    [[ $code == 304 ]] || { log "skip $c: If-None-Match $etag answered $code, not 304"; continue; }
    log "case $c: GET /api/v1/sdk/config with If-None-Match: $etag -> 304"
    CASES+=("$c")
    continue
  fi
  log "case $c: ${C_METHOD[$c]} ${C_URL[$c]%%\?*} -> $code ($(wc -c <"$WORK/probe.body") bytes): $(head -c 160 "$WORK/probe.body" | tr '\n' ' ')"
  CASES+=("$c")
done

# ---------------------------------------------------------------------------------------------
# Measure.
RESULTS=$BENCH_HOME/results/$(date +%Y%m%d-%H%M%S).jsonl
mkdir -p "$(dirname "$RESULTS")"
: >"$RESULTS"

run_wrk() { # case target(ceiling|case) round
  local c=$1 target=$2 round=$3 url conns threads pid out
  conns=${C_CONNS[$c]}
  threads=$(( conns < WRK_THREADS ? conns : WRK_THREADS ))
  if [[ $target == ceiling ]]; then
    # Same request (method, headers, body); the ceiling ignores the path.
    url="http://127.0.0.1:$CEILING_PORT/${C_URL[$c]#http://*/}"; pid=$CEILING_PID
  else
    url=${C_URL[$c]}; pid=${C_PID[$c]}
  fi
  out="$WORK/wrk.json"; : >"$out"
  BENCH_METHOD=${C_METHOD[$c]} BENCH_BODY=${C_BODY[$c]} BENCH_HEADERS=${C_HEADERS[$c]} BENCH_OUT=$out \
    wrk -t"$threads" -c"$conns" -d"${DURATION}s" --timeout 5s -s "$HERE/wrk/request.lua" "$url" \
    >"$WORK/wrk.txt" 2>&1 || { cat "$WORK/wrk.txt" >&2; die "wrk failed for $c ($target)"; }
  [[ -s $out ]] || { cat "$WORK/wrk.txt" >&2; die "wrk wrote no summary for $c ($target)"; }
  kill -0 "$pid" 2>/dev/null || die "the server of $c ($target) died during the run"
  python3 - "$out" "$RESULTS" "$c" "$target" "$round" "$(rss_kb "$pid")" "${HATA_PID:-0}" "$(rss_kb "${HATA_PID:-0}")" <<'PY'
import json, sys
out, results, case, target, rnd, rss, hata_pid, hata_rss = sys.argv[1:]
r = json.loads(open(out).read().strip().splitlines()[-1])
r.update(case=case, target=target, round=int(rnd), server_rss_kb=int(rss or 0),
         hata_rss_kb=int(hata_rss or 0) if hata_pid != "0" else None)
with open(results, "a") as f:
    f.write(json.dumps(r) + "\n")
print(f"  {case:<18} {target:<8} round {rnd}: {r['rps']:>10.0f} req/s  p50 {r['p50_us']/1000:.2f} ms"
      f"  p99 {r['p99_us']/1000:.2f} ms  errors {r['err_status']+r['err_connect']+r['err_read']+r['err_write']+r['err_timeout']}"
      f"  RSS {int(rss or 0)//1024} MB", file=sys.stderr)
PY
}

if [[ ${#CASES[@]} -eq 0 ]]; then
  die "no case can run (see the skip messages above)"
fi
log "measuring ${#CASES[@]} case(s): $ROUNDS round(s) x (ceiling ${DURATION}s + case ${DURATION}s); results -> $RESULTS"
for c in "${CASES[@]}"; do # warm-up, not recorded
  BENCH_METHOD=${C_METHOD[$c]} BENCH_BODY=${C_BODY[$c]} BENCH_HEADERS=${C_HEADERS[$c]} BENCH_OUT=/dev/null \
    wrk -t1 -c"${C_CONNS[$c]}" -d1s -s "$HERE/wrk/request.lua" "${C_URL[$c]}" >/dev/null 2>&1 || true
done
for round in $(seq 1 "$ROUNDS"); do
  for c in "${CASES[@]}"; do
    run_wrk "$c" ceiling "$round"
    run_wrk "$c" case "$round"
  done
done

# ---------------------------------------------------------------------------------------------
# Report.
# The installed Unleash Edge's version, from cargo's install record (the binary has no
# --version flag).
edge_version() {
  local v
  v=$(grep -o '"unleash-edge [0-9][^ ]*' "$BENCH_HOME/.crates.toml" 2>/dev/null | head -1 | cut -d' ' -f2)
  if [[ -x $EDGE_BIN && -n $v ]]; then echo "$v"; elif [[ -x $EDGE_BIN ]]; then echo "unknown version"; else echo none; fi
}
META=$(printf '{"duration":%s,"rounds":%s,"flags":%s,"cpus":%s,"cpu":"%s","hata_rev":"%s","edge":"%s"}' \
  "$DURATION" "$ROUNDS" "$FLAGS" "$(nproc)" \
  "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo | tr -d '"')" \
  "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)" \
  "$(edge_version)")
WHAT_JSON=$(for c in "${CASES[@]}"; do printf '%s\t%s\n' "$c" "${C_WHAT[$c]}"; done | python3 -c '
import json, sys
print(json.dumps(dict(l.rstrip("\n").split("\t", 1) for l in sys.stdin if l.strip())))')
python3 "$HERE/report.py" "$RESULTS" --meta "$META" --what "$WHAT_JSON"
log "raw results: $RESULTS"
