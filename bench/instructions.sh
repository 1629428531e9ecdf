#!/usr/bin/env bash
# Instructions per request under callgrind: the ceiling, then hata (OFREP single, health,
# OFREP bulk), each over one keep-alive connection. Instruction counts do not drift with the
# machine's load the way req/s do, so this is the measure to compare two builds with.
#
#   HATA_BIN=path/to/hata bench/instructions.sh        (default: $CARGO_TARGET_DIR/release/hata)
#
# Needs valgrind and wrk, the ceiling built by bench/run.sh, and hata's release build.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_HOME=${BENCH_HOME:-$HOME/.cache/hata-bench}
BIN=${HATA_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/hata-target}/release/hata}
CEIL=$BENCH_HOME/target/release/hata-bench-ceiling
DUR=${DUR:-8}
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT
CTX='{"context":{"targetingKey":"user-1","email":"a@example.com","plan":"pro","version":"2.3.0","age":30}}'
cat >"$W/req.lua" <<'LUA'
wrk.method = os.getenv("METHOD") or "POST"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "application/json"
local a = os.getenv("AUTH"); if a and a ~= "" then wrk.headers["Authorization"] = a end
LUA
export BODY="$CTX"

measure() { # name port path pid
  local name=$1 port=$2 path=$3 pid=$4
  callgrind_control -z "$pid" >/dev/null 2>&1
  local n
  n=$(wrk -t1 -c1 -d"${DUR}s" -s "$W/req.lua" "http://127.0.0.1:$port$path" 2>&1 | awk '/requests in/ {print $1}')
  callgrind_control -d "$pid" >/dev/null 2>&1
  sleep 1
  local f ir
  f=$(ls -t "$W/$name".out.* | head -1)
  ir=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}')
  printf '%-8s %-42s %8d requests %8d instructions/request\n' "$name" "$path" "$n" $((ir / n))
}

valgrind --tool=callgrind --callgrind-out-file="$W/ceiling.out.%p" "$CEIL" 127.0.0.1:7381 2>"$W/ceiling.log" &
CP=$!
sleep 3
AUTH="" measure ceiling 7381 / $CP
kill $CP; wait $CP 2>/dev/null || true

HATA_ADMIN_TOKEN=bench-admin-token-0123456789 HATA_ADMIN_RATE_LIMIT=0 valgrind --tool=callgrind \
  --callgrind-out-file="$W/hata.out.%p" "$BIN" serve --data-dir "$W/data" --listen 127.0.0.1:7380 2>"$W/hata.log" &
HP=$!
for _ in $(seq 1 120); do curl -sf localhost:7380/health/ready >/dev/null && break; sleep 1; done
python3 "$HERE/seed.py" --url http://127.0.0.1:7380 --admin-token bench-admin-token-0123456789 --flags 100 >"$W/seed.json"
TOKEN=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['server_token'])" "$W/seed.json")
AUTH="Bearer $TOKEN" measure hata 7380 /ofrep/v1/evaluate/flags/rules-00000 $HP
METHOD=GET AUTH="" measure hata 7380 /health/live $HP
AUTH="Bearer $TOKEN" measure hata 7380 /ofrep/v1/evaluate/flags $HP
kill -INT $HP; wait $HP 2>/dev/null || true
