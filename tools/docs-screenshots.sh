#!/usr/bin/env bash
# Remakes the README's pictures (docs/card-in-console.png,
# docs/handout-print.png) with the browser suite's guidance test: a real
# server on a free loopback port, Debian's chromium through playwright-core.
# Needs what the browser suite needs (README: "Test it"); pngquant, when
# installed (Debian's pngquant package), keeps the files small.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DATABASE_URL="sqlite://$work/docs.db?mode=rwc" target/debug/cramp-cds --port "$port" >"$work/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 50); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
(cd tests/browser && CRAMP_CDS_URL="http://127.0.0.1:$port" CRAMP_CDS_ARTIFACTS="$work/artifacts" \
  CRAMP_CDS_DOCS_SCREENSHOTS="$PWD/../../docs" node --test guidance.test.mjs)
if command -v pngquant >/dev/null; then
  for png in docs/card-in-console.png docs/handout-print.png; do
    pngquant --quality 60-85 --speed 1 --force --output "$png" "$png"
  done
fi
ls -l docs/card-in-console.png docs/handout-print.png
