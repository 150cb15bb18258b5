#!/usr/bin/env bash
# Load harness: the release server with its store on, and beside it a bare
# Node.js baseline and the framework's ceiling (examples/ceiling.rs: bare
# actix-web reading the body, and lexing it with IgnoredAny), all driven by
# wrk with the same realistic requests and settings in the same run.
# Prints requests/s, p50, p99, errors and peak RSS, the ratio to the
# baseline and to each ceiling, every server's p50 and p99 (with 32
# connections busy p99 is a multiple of the median, so a slow stretch of
# the host shows in every server run during it), start-up time, a soak
# run's memory over time, and cards recorded against cards answered.
#
#   tools/load/run.sh                # 30 s per run, 60 s soak
#   DURATION=10 SOAK=20 tools/load/run.sh
#   PGO=off tools/load/run.sh        # the plain release build (default: as tools/pgo/build.sh builds)
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

# The release build as it ships, the ceiling built the same way: profile-
# guided where an llvm-profdata of rustc's LLVM is here (tools/pgo/build.sh;
# PGO=off measures the plain release build).
{ read -r server_bin; read -r ceiling_bin; read -r build; } < <(tools/pgo/build.sh)
[ -x "$server_bin" ] && [ -x "$ceiling_bin" ] || { echo "the release build failed" >&2; exit 1; }
python3 tools/load/requests.py "$work" >&2

server_port=$(free_port)
start_ns=$(date +%s%N)
"$server_bin" --port "$server_port" --database-url "sqlite://$work/load.db?mode=rwc" 2>"$work/server.log" &
server_pid=$!
until curl -fs "http://127.0.0.1:$server_port/readyz" >/dev/null 2>&1; do sleep 0.005; done
ready_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))

baseline_port=$(free_port)
PORT=$baseline_port node tools/load/baseline.mjs >/dev/null &
baseline_pid=$!
until curl -fs -X POST -H 'Content-Type: application/json' -d '{}' "http://127.0.0.1:$baseline_port/" >/dev/null 2>&1; do sleep 0.05; done

ceiling_port=$(free_port)
"$ceiling_bin" "$ceiling_port" &
ceiling_pid=$!
until curl -fs -X POST -H 'Content-Type: application/json' -d '{}' "http://127.0.0.1:$ceiling_port/lex" >/dev/null 2>&1; do sleep 0.05; done

# CPU time a process has used, user and system, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# measure URL BODY SECONDS PID: wrk's summary -> "rps p50 p99 errors answered
# server_us wrk_us" (answered: 2xx responses; server_us and wrk_us: CPU per
# request of the server PID and of wrk). wrk and the server share the
# machine's cores, so req/s x (server_us + wrk_us) is at most cores x 1,000,000.
measure() {
    local url=$1 body=$2 seconds=$3 pid=$4 before after
    before=$(cpu_ticks "$pid")
    BODY="$body" wrk -t2 -c"$CONNECTIONS" -d"${seconds}s" --latency -s tools/load/post.lua "$url" >"$work/wrk.txt"
    after=$(cpu_ticks "$pid")
    # `times`: this subshell's own CPU, then its children's: wrk's.
    times >"$work/times.txt"
    python3 - "$work/wrk.txt" "$((after - before))" "$(getconf CLK_TCK)" "$work/times.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
server_s = int(sys.argv[2]) / int(sys.argv[3])
def seconds(t):
    m = re.fullmatch(r"(\d+)m([\d.]+)s", t)
    return int(m.group(1)) * 60 + float(m.group(2))
wrk_s = sum(seconds(t) for t in open(sys.argv[4]).read().split()[2:4])
def latency(p):
    m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", text, re.M)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
errors = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(int(g) for g in socket.groups()) if socket else 0)
sent = int(re.search(r"(\d+) requests in", text).group(1))
answered = sent - (int(non_2xx.group(1)) if non_2xx else 0)
requests = max(sent, 1)
print(f"{rps:.0f} {latency(50):.2f} {latency(99):.2f} {errors} {answered} "
      f"{server_s * 1e6 / requests:.0f} {wrk_s * 1e6 / requests:.0f}")
PY
}
peak_rss_mb() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
metric_sum() { curl -fs "http://127.0.0.1:$server_port/metrics" | awk -v name="$1" '{split($1, key, "{")} key[1] == name {n += $2} END {printf "%d", n}'; }
# Cards in one answer to this body (every answer to the same body has as many).
cards_per_answer() {
    curl -fs -X POST -H 'Content-Type: application/json' --data-binary "@$2" "$1" |
        python3 -c 'import json, sys; print(len(json.load(sys.stdin)["cards"]))'
}
ratio() { python3 -c "print(f'{$1 / $2:.2f}x ({100 * $1 / $2:.0f}%)' if $2 else 'n/a')"; }
cards_seen=0

echo
echo "build: $build"
echo "cramp-cds ready ${ready_ms} ms after start (store: SQLite, on)"
echo
printf '| request | cramp-cds req/s | p50 ms | p99 ms | errors | Node baseline req/s | ratio |\n|---|---|---|---|---|---|---|\n'
costs=$'| request | cramp-cds | Node | ceiling: read body | ceiling: IgnoredAny |\n|---|---|---|---|---|\n'
latencies=$'| request | cramp-cds | Node | ceiling: read body | ceiling: IgnoredAny |\n|---|---|---|---|---|\n'
ceilings=$'| request | cramp-cds req/s | Node req/s | ceiling: read body req/s | ceiling: IgnoredAny req/s | to Node | to read ceiling | to IgnoredAny ceiling |\n|---|---|---|---|---|---|---|---|\n'
for name in patient-view-4k patient-view-100k order-sign-4k order-sign-100k; do
    body="$work/$name.json"
    url="http://127.0.0.1:$server_port/cds-services/leg-cramps-${name%-*k}"
    per_answer=$(cards_per_answer "$url" "$body")
    cards_seen=$((cards_seen + per_answer))
    read -r rps p50 p99 errors answered cpu wrk_cpu < <(measure "$url" "$body" "$DURATION" $server_pid)
    cards_seen=$((cards_seen + per_answer * answered))
    read -r base base_p50 base_p99 base_errors _ base_cpu base_wrk < <(measure "http://127.0.0.1:$baseline_port/" "$body" "$DURATION" $baseline_pid)
    read -r read_rps read_p50 read_p99 read_errors _ read_cpu read_wrk < <(measure "http://127.0.0.1:$ceiling_port/read" "$body" "$DURATION" $ceiling_pid)
    read -r lex_rps lex_p50 lex_p99 lex_errors _ lex_cpu lex_wrk < <(measure "http://127.0.0.1:$ceiling_port/lex" "$body" "$DURATION" $ceiling_pid)
    latencies+=$(printf '| %s | %s / %s | %s / %s | %s / %s | %s / %s |' "$name" "$p50" "$p99" \
        "$base_p50" "$base_p99" "$read_p50" "$read_p99" "$lex_p50" "$lex_p99")$'\n'
    costs+=$(printf '| %s | %s / %s | %s / %s | %s / %s | %s / %s |' "$name" "$cpu" "$wrk_cpu" \
        "$base_cpu" "$base_wrk" "$read_cpu" "$read_wrk" "$lex_cpu" "$lex_wrk")$'\n'
    ratio=$(python3 -c "print(f'{$rps / $base:.1f}x')")
    printf '| %s (%s bytes) | %s | %s | %s | %s | %s | %s |\n' "$name" "$(stat -c %s "$body")" "$rps" "$p50" "$p99" "$errors" "$base" "$ratio"
    ceilings+=$(printf '| %s | %s | %s | %s | %s | %s | %s | %s |' "$name" "$rps" "$base" "$read_rps" "$lex_rps" \
        "$(ratio "$rps" "$base")" "$(ratio "$rps" "$read_rps")" "$(ratio "$rps" "$lex_rps")")$'\n'
    [ "$base_errors$read_errors$lex_errors" = 000 ] || ceilings+="  (errors: Node $base_errors, read ceiling $read_errors, IgnoredAny ceiling $lex_errors)"$'\n'
done
echo
echo "the same run, beside the framework's ceiling (examples/ceiling.rs, same wrk settings and bodies):"
echo
printf '%s' "$ceilings"
echo "peak RSS: Node $(peak_rss_mb $baseline_pid) MB, ceiling $(peak_rss_mb $ceiling_pid) MB"
echo
cores=$(nproc)
echo "CPU per request, us: the server's / wrk's ($cores cores: req/s x (server + wrk) <= $cores,000,000):"
echo
printf '%s' "$costs"
echo
echo "latency, p50 / p99 ms, every server (the same runs):"
echo
printf '%s' "$latencies"
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
read -r _ _ _ _ soak_answered < <(python3 - "$work/soak.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(0, 0, 0, 0, int(re.search(r"(\d+) requests in", text).group(1)) - (int(non_2xx.group(1)) if non_2xx else 0))
PY
)
soak_per_answer=$(cards_per_answer "http://127.0.0.1:$server_port/cds-services/leg-cramps-patient-view" "$work/patient-view-100k.json")
cards_seen=$((cards_seen + soak_per_answer * (soak_answered + 1)))
echo "RSS MB:$samples"
grep -E "Requests/sec|Non-2xx|Socket errors" "$work/soak.txt" || true
echo "soak errors: $(grep -oE 'Non-2xx or 3xx responses: [0-9]+' "$work/soak.txt" | grep -oE '[0-9]+$' || echo 0)"
echo "peak RSS: $(peak_rss_mb $server_pid) MB"
echo "server log lines with ERROR: $(grep -c ERROR "$work/server.log" || true)"
# The writer drains on its own clock: wait until the count settles.
recorded=-1
for _ in $(seq 50); do
    now=$(metric_sum store_cards_written_total)
    [ "$now" = "$recorded" ] && break
    recorded=$now
    sleep 0.2
done
answered_cards=$(metric_sum cds_cards_total)
echo "cards not recorded (store_failures_total): $(metric_sum store_failures_total)"
echo "cards recorded: $recorded"
echo "cards answered: $answered_cards (the service's cds_cards_total); received by wrk: $cards_seen (wrk does not count answers in flight when a run stops)"
if [ "$recorded" = "$answered_cards" ]; then
    echo "no card lost: cards recorded = cards answered"
else
    echo "CARDS LOST: $((answered_cards - recorded)) answered but not recorded"
fi
