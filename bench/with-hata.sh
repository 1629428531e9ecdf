#!/usr/bin/env bash
# Start a seeded hata on a temporary data dir, run a command against it, stop hata.
#
#   bench/with-hata.sh [--flags N] [--port P] [--no-build] [--restart] -- CMD [ARGS...]
#
# --restart stops hata after seeding and starts it again on the same data, so the command
# meets a server that loaded the flags at start instead of one that took every write.
#
# The command sees HATA_URL, HATA_ADMIN_TOKEN, HATA_PID, HATA_SEED (seed.py's JSON output:
# server_token, client_token, sample flag keys), HATA_BENCH_NODE (npm prefix with the web
# provider, see bench/README.md), HATA_BENCH_BIN (the hata binary), HATA_BENCH_DATA_DIR (the
# running hata's data dir) and HATA_BENCH_WORK (a scratch dir removed at exit). Examples:
#
#   bench/with-hata.sh -- node bench/sse_latency.mjs
#   bench/with-hata.sh --flags 10000 -- python3 bench/rss_streams.py --streams 1000
#   bench/with-hata.sh -- bash            # poke at it by hand; exit the shell to stop hata
#
# HATA_BIN uses an existing binary; otherwise hata is built in release mode into
# CARGO_TARGET_DIR (default ~/.cache/hata-target).

set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BENCH_HOME=${BENCH_HOME:-$HOME/.cache/hata-bench}
HATA_TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/hata-target}
PORT=${HATA_PORT:-7370}
FLAGS=100
BUILD=1
RESTART=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --flags) FLAGS=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --restart) RESTART=1; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) break ;;
  esac
done
[[ $# -gt 0 ]] || { echo "with-hata.sh: no command (see --help)" >&2; exit 2; }

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$HERE/lib.sh"
bench_init
build_hata
start_hata "$PORT" "$FLAGS"
[[ $RESTART -eq 0 ]] || restart_hata "$PORT"

export HATA_URL HATA_ADMIN_TOKEN HATA_PID
export HATA_SEED=$WORK/seed.json
export HATA_BENCH_BIN=$HATA_BIN HATA_BENCH_DATA_DIR=$WORK/hata-data HATA_BENCH_WORK=$WORK
export HATA_BENCH_NODE=$BENCH_HOME/node
set +e
"$@"
rc=$?
set -e
exit "$rc"
