#!/usr/bin/env bash
# Load harness: the release server with its store on, and beside it a bare
# Node.js baseline, both driven by wrk with the same realistic requests.
# Prints requests/s, p50, p99, errors and peak RSS, the ratio to the
# baseline, start-up time, and a soak run's memory over time.
#
#   tools/load/run.sh                # 30 s per run, 60 s soak
#   DURATION=10 SOAK=20 tools/load/run.sh
#
# Needs wrk and node (apt-get install wrk nodejs). Traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-30}
SOAK=${SOAK:-60}
CONNECTIONS=${CONNECTIONS:-32}
work=$(mktemp -d /tmp/cramp-cds-load.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true' EXIT

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
command -v node >/dev/null || { echo "node is not installed" >&2; exit 1; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

cargo build --release --locked --bin cramp-cds >&2
python3 tools/load/requests.py "$work" >&2

server_port=$(free_port)
start_ns=$(date +%s%N)
target/release/cramp-cds --port "$server_port" --database-url "sqlite://$work/load.db?mode=rwc" 2>"$work/server.log" &
server_pid=$!
until curl -fs "http://127.0.0.1:$server_port/readyz" >/dev/null 2>&1; do sleep 0.005; done
ready_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))

baseline_port=$(free_port)
PORT=$baseline_port node tools/load/baseline.mjs >/dev/null &
until curl -fs -X POST -H 'Content-Type: application/json' -d '{}' "http://127.0.0.1:$baseline_port/" >/dev/null 2>&1; do sleep 0.05; done

# wrk's summary -> "rps p50 p99 errors"
measure() {
    local url=$1 body=$2 seconds=$3
    BODY="$body" wrk -t2 -c"$CONNECTIONS" -d"${seconds}s" --latency -s tools/load/post.lua "$url" >"$work/wrk.txt"
    python3 - "$work/wrk.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def latency(p):
    m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", text, re.M)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
errors = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(int(g) for g in socket.groups()) if socket else 0)
print(f"{rps:.0f} {latency(50):.2f} {latency(99):.2f} {errors}")
PY
}
peak_rss_mb() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

echo
echo "cramp-cds ready ${ready_ms} ms after start (store: SQLite, on)"
echo
printf '| request | cramp-cds req/s | p50 ms | p99 ms | errors | Node baseline req/s | ratio |\n|---|---|---|---|---|---|---|\n'
for name in patient-view-4k patient-view-100k order-sign-4k order-sign-100k; do
    body="$work/$name.json"
    read -r rps p50 p99 errors < <(measure "http://127.0.0.1:$server_port/cds-services/leg-cramps-${name%-*k}" "$body" "$DURATION")
    read -r base _ _ base_errors < <(measure "http://127.0.0.1:$baseline_port/" "$body" "$DURATION")
    ratio=$(python3 -c "print(f'{$rps / $base:.1f}x')")
    printf '| %s (%s bytes) | %s | %s | %s | %s | %s | %s |\n' "$name" "$(stat -c %s "$body")" "$rps" "$p50" "$p99" "$errors" "$base" "$ratio"
done
echo
echo "peak RSS after the runs: $(peak_rss_mb $server_pid) MB"

echo
echo "soak: ${SOAK} s of patient-view-100k at $CONNECTIONS connections; RSS every 5 s:"
BODY="$work/patient-view-100k.json" wrk -t2 -c"$CONNECTIONS" -d"${SOAK}s" --latency -s tools/load/post.lua \
    "http://127.0.0.1:$server_port/cds-services/leg-cramps-patient-view" >"$work/soak.txt" &
soak_pid=$!
samples=""
while kill -0 $soak_pid 2>/dev/null; do
    samples="$samples $(awk '/VmRSS/ {printf "%.0f", $2 / 1024}' /proc/$server_pid/status)"
    sleep 5
done
wait $soak_pid
echo "RSS MB:$samples"
grep -E "Requests/sec|Non-2xx|Socket errors" "$work/soak.txt" || true
echo "soak errors: $(grep -oE 'Non-2xx or 3xx responses: [0-9]+' "$work/soak.txt" | grep -oE '[0-9]+$' || echo 0)"
echo "peak RSS: $(peak_rss_mb $server_pid) MB"
echo "server log lines with ERROR: $(grep -c ERROR "$work/server.log" || true)"
echo "cards not recorded (store_failures_total): $(curl -fs "http://127.0.0.1:$server_port/metrics" | awk '/^store_failures_total/ {n += $2} END {print n + 0}')"
echo "cards recorded: $(curl -fs "http://127.0.0.1:$server_port/metrics" | awk '/^store_cards_written_total/ {n += $2} END {print n + 0}')"
