#!/usr/bin/env bash
# Capacity figures for docs/deployment.md, from CPU time rather than wall
# clock (a shared machine's wall-clock rates are noise; CPU seconds per hook
# much less so): one release replica storing its cards in PostgreSQL (fsync
# on, as in production), driven by wrk at 4 KB and 100 KB. Prints, per body:
# hooks answered, the replica's CPU per hook (-> hooks per core-second),
# cards recorded against cards answered, and PostgreSQL's CPU per card
# (-> cards one PostgreSQL core takes per second). AUTH=1 turns JWT
# authentication on, as in production: every hook then also writes its
# token's jti to the shared replay store, and carries its own token.
#
#   tools/scale/capacity.sh            # 15 s per body
#   SECS=30 AUTH=1 tools/scale/capacity.sh
#
# Needs wrk and PostgreSQL (apt-get install wrk postgresql); with AUTH=1,
# python3 with PyJWT (pip install 'pyjwt[crypto]').
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${SECS:-15}
CONNECTIONS=${CONNECTIONS:-32}
AUTH=${AUTH:-0}
TOKENS=${TOKENS:-40000}
BIN=${CRAMP_CDS_BIN:-target/release/cramp-cds}
[ -x "$BIN" ] || { echo "no binary at $BIN (cargo build --release)" >&2; exit 1; }
work=$(mktemp -d /tmp/cramp-cds-capacity.XXXXXX)
chmod 755 "$work"
server=""
jwks=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
    [ -n "$jwks" ] && kill "$jwks" 2>/dev/null || true
    tools/test-postgres.sh stop "$work/pg" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
tick=$(getconf CLK_TCK)
# CPU seconds (user + system, with waited-for children) of processes.
cpu() { cat "${@/#//proc/}" 2>/dev/null | sed 's/^.*) //' | awk -v t="$tick" '{s += $12 + $13 + $14 + $15} END {print s / t}'; }
# PostgreSQL: the postmaster and every live child.
pg_cpu() {
    local main
    main=$(head -n 1 "$work/pg/data/postmaster.pid")
    cpu "$main/stat" $(pgrep -P "$main" | sed 's|$|/stat|')
}

db=$(CRAMP_CDS_TEST_POSTGRES_FSYNC=on tools/test-postgres.sh start "$work/pg")
python3 tools/load/requests.py "$work" >/dev/null
port=$(free_port)
auth_env=()
if [ "$AUTH" = 1 ]; then
    jwks_port=$(free_port)
    mkdir "$work/keys"
    python3 tools/scale/scale.py keys "$work/keys"
    python3 -m http.server --bind 127.0.0.1 --directory "$work/keys" "$jwks_port" >/dev/null 2>&1 &
    jwks=$!
    cat >"$work/issuers.json" <<JSON
{"issuers": [{"iss": "https://ehr.example.org", "jwksUrl": "http://127.0.0.1:$jwks_port/jwks.json",
  "fhirServers": ["https://ehr.example.org/fhir"]}]}
JSON
    auth_env=(CRAMP_CDS_ISSUERS="$work/issuers.json" CRAMP_CDS_PUBLIC_BASE_URL="http://127.0.0.1:$port")
fi
env DATABASE_URL="$db" "${auth_env[@]}" "$BIN" --port "$port" 2>"$work/server.log" &
server=$!
until curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do sleep 0.05; done
cards() { psql "$db" -tAc "SELECT count(*) FROM issued_cards"; }
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; ${SECS} s per body, $CONNECTIONS connections"
echo "authentication: $([ "$AUTH" = 1 ] && echo "on (a JWT per hook, its jti stored)" || echo off)"
echo "| body | hooks/s (wall) | replica CPU per hook | hooks per core-second | cards answered | cards recorded | PostgreSQL CPU per card | PostgreSQL CPU per hook | hooks per PostgreSQL core-second |"
echo "|---|---|---|---|---|---|---|---|---|"
for size in 4k 100k; do
    body="$work/patient-view-$size.json"
    if [ "$AUTH" = 1 ]; then
        per_hook=$(python3 tools/scale/scale.py cards-per-hook "$work/keys/private.pem" "http://127.0.0.1:$port" "$body" "$port")
        python3 tools/scale/scale.py tokens "$work/keys/private.pem" "http://127.0.0.1:$port" "$TOKENS" "$work/tokens"
    else
        per_hook=$(curl -s -X POST -H 'Content-Type: application/json' --data-binary "@$body" \
            "http://127.0.0.1:$port/cds-services/leg-cramps-patient-view" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["cards"]))')
    fi
    sleep 1
    cards0=$(cards)
    server0=$(cpu "$server/stat")
    pg0=$(pg_cpu)
    if [ "$AUTH" = 1 ]; then
        # Each request with its own token; a thread out of tokens stops.
        BODY="$body" TOKENS="$work/tokens" THREADS=2 OUT="$work/failures" wrk -t2 -c"$CONNECTIONS" -d"${SECS}s" \
            -s tools/scale/hook.lua "http://127.0.0.1:$port/cds-services/leg-cramps-patient-view" >"$work/wrk.txt"
    else
        BODY="$body" wrk -t2 -c"$CONNECTIONS" -d"${SECS}s" -s tools/load/post.lua \
            "http://127.0.0.1:$port/cds-services/leg-cramps-patient-view" >"$work/wrk.txt"
    fi
    server1=$(cpu "$server/stat")
    # The writer drains what wrk's last requests queued.
    sleep 2
    pg1=$(pg_cpu)
    recorded=$(( $(cards) - cards0 ))
    python3 - "$work/wrk.txt" "$size" "$per_hook" "$recorded" "$server0" "$server1" "$pg0" "$pg1" "$SECS" "$AUTH" <<'PY'
import re, sys
text, size, per_hook, recorded = open(sys.argv[1]).read(), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
server0, server1, pg0, pg1, secs = map(float, sys.argv[5:10])
auth = sys.argv[10] == "1"
requests = int(re.search(r"(\d+) requests in", text).group(1))
non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
answered = requests - (int(non_2xx.group(1)) if non_2xx else 0)
per_hook_us = (server1 - server0) / answered * 1e6
pg_per_card_us = (pg1 - pg0) / max(recorded, 1) * 1e6
pg_per_hook_us = (pg1 - pg0) / answered * 1e6
# With authentication a thread stops when its tokens run out: no wall rate.
wall = "n/a" if auth else f"{answered / secs:,.0f}"
print(f"| {size.upper()}B | {wall} | {per_hook_us:,.0f} us | {1e6 / per_hook_us:,.0f} | "
      f"{answered * per_hook:,} | {recorded:,} | {pg_per_card_us:,.1f} us | {pg_per_hook_us:,.1f} us | {1e6 / pg_per_hook_us:,.0f} |")
PY
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
