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
# Each server gets DURATION seconds per request in ROUNDS slices, the
# servers taking turns, so that the host's slow stretches fall on all alike.
#
#   tools/load/run.sh                # 30 s per server and request (3 slices of 10 s), 60 s soak
#   DURATION=10 SOAK=20 tools/load/run.sh
#   ROUNDS=1 tools/load/run.sh       # each server in one run, one after another
#   PGO=off tools/load/run.sh        # the plain release build (default: as tools/pgo/build.sh builds)
#
# Needs wrk and node (apt-get install wrk nodejs). Traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-30}
ROUNDS=${ROUNDS:-3}
[ "$ROUNDS" -ge 1 ] 2>/dev/null || { echo "ROUNDS=$ROUNDS: a whole number, 1 or more" >&2; exit 2; }
SLICE=$((DURATION / ROUNDS))
[ "$SLICE" -ge 1 ] || { echo "DURATION must be at least ROUNDS seconds" >&2; exit 2; }
SOAK=${SOAK:-60}
CONNECTIONS=${CONNECTIONS:-32}
work=$(mktemp -d /tmp/cramp-cds-load.XXXXXX)
# The store grows by about 2 GB in a full run: the servers stopped, it goes.
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

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
# slice NAME URL BODY SECONDS PID: one wrk run against a server, appended to
# NAME's results: wrk's counts and latency histogram (post.lua), the server
# PID's CPU ticks over the run and wrk's own CPU seconds. Run it in a
# subshell: `times` reports that shell's children, that is wrk.
slice() {
    local name=$1 url=$2 body=$3 seconds=$4 pid=$5 before after n
    n=$(find "$work" -maxdepth 1 -name "result.$name.*" | wc -l)
    before=$(cpu_ticks "$pid")
    BODY="$body" RESULT="$work/result.$name.$n" wrk -t2 -c"$CONNECTIONS" -d"${seconds}s" -s tools/load/post.lua "$url" >/dev/null
    after=$(cpu_ticks "$pid")
    # Not in a pipe: a forked shell's `times` would not count wrk.
    times >"$work/times.txt"
    local wrk_cpu
    wrk_cpu=$(sed -n 2p "$work/times.txt" | python3 -c 'import re, sys
print(sum(int(m) * 60 + float(s) for m, s in re.findall(r"(\d+)m([\d.]+)s", sys.stdin.read())))')
    echo "server_ticks $((after - before))" >>"$work/result.$name.$n"
    echo "wrk_cpu_s $wrk_cpu" >>"$work/result.$name.$n"
}
# measured NAME: NAME's slices added up -> "rps p50 p99 errors answered
# server_us wrk_us" (answered: 2xx responses; server_us and wrk_us: CPU per
# request of the server and of wrk, which share the machine's cores, so
# req/s x (server_us + wrk_us) is at most cores x 1,000,000). Latency
# percentiles come from the slices' histograms merged, as wrk computes them.
measured() {
    python3 - "$(getconf CLK_TCK)" "$work"/result."$1".* <<'PY'
import sys
ticks_per_s = int(sys.argv[1])
total = {"requests": 0, "duration_us": 0, "status_errors": 0, "socket_errors": 0,
         "server_ticks": 0, "wrk_cpu_s": 0.0}
histogram = {}
for path in sys.argv[2:]:
    for line in open(path):
        key, value = line.split()
        if key in total:
            total[key] += float(value) if key == "wrk_cpu_s" else int(value)
        else:
            histogram[int(key)] = histogram.get(int(key), 0) + int(value)
counted = sum(histogram.values())
def percentile(p):
    rank, seen = round(p / 100 * counted + 0.5), 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value / 1000
    return 0.0
requests = max(total["requests"], 1)
rps = total["requests"] / (total["duration_us"] / 1e6)
errors = total["status_errors"] + total["socket_errors"]
answered = total["requests"] - total["status_errors"]
print(f"{rps:.0f} {percentile(50):.2f} {percentile(99):.2f} {errors} {answered} "
      f"{total['server_ticks'] / ticks_per_s * 1e6 / requests:.0f} {total['wrk_cpu_s'] * 1e6 / requests:.0f}")
PY
}
peak_rss_mb() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
metric_sum() { curl -fs "http://127.0.0.1:$server_port/metrics" | awk -v name="$1" '{split($1, key, "{")} key[1] == name {n += $2} END {printf "%d", n}'; }
# Cards in one answer to this body (every answer to the same body has as many).
cards_per_answer() {
    curl -fs -X POST -H 'Content-Type: application/json' --data-binary "@$2" "$1" |
        python3 -c 'import json, sys; print(len(json.load(sys.stdin)["cards"]))'
}
ratio() { python3 -c "print(f'{$1 / $2:.2f}x ({100 * $1 / $2:.1f}%)' if $2 else 'n/a')"; }
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
    # The four servers take turns in ROUNDS slices each, the first turn
    # moving round by round, so that a slow stretch of the host falls on
    # all of them alike instead of on whichever ran during it.
    targets=("service $url $server_pid" "node http://127.0.0.1:$baseline_port/ $baseline_pid"
        "read http://127.0.0.1:$ceiling_port/read $ceiling_pid" "lex http://127.0.0.1:$ceiling_port/lex $ceiling_pid")
    for ((round = 0; round < ROUNDS; round++)); do
        for ((turn = 0; turn < 4; turn++)); do
            read -r target target_url target_pid <<<"${targets[(round + turn) % 4]}"
            (slice "$name.$target" "$target_url" "$body" "$SLICE" "$target_pid")
        done
    done
    read -r rps p50 p99 errors answered cpu wrk_cpu < <(measured "$name.service")
    cards_seen=$((cards_seen + per_answer * answered))
    read -r base base_p50 base_p99 base_errors _ base_cpu base_wrk < <(measured "$name.node")
    read -r read_rps read_p50 read_p99 read_errors _ read_cpu read_wrk < <(measured "$name.read")
    read -r lex_rps lex_p50 lex_p99 lex_errors _ lex_cpu lex_wrk < <(measured "$name.lex")
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
