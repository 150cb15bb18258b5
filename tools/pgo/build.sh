#!/usr/bin/env bash
# The release build with profile-guided optimisation (PGO), of the service
# and of the framework's ceiling (examples/ceiling.rs) alike:
#   1. an instrumented release build (-Cprofile-generate);
#   2. a training run: each binary started on loopback and sent the hook
#      calls of tools/pgo/train.py (the clinical scenarios and the example
#      charts, not the load harness's bodies), then stopped with SIGTERM so
#      that it writes its profile;
#   3. llvm-profdata merges the profiles; the release build is made again
#      with -Cprofile-use.
# Same release profile as `cargo build --release` (fat LTO, one codegen unit).
# The profile is kept per instrumented binary and training set, so a second
# run without changes trains and builds nothing.
#
#   tools/pgo/build.sh           # PGO=auto: profile-guided where it can be
#   PGO=on tools/pgo/build.sh    # profile-guided or fail (the Dockerfile)
#   PGO=off tools/pgo/build.sh   # the plain release build
#
# Prints three lines: the service's path, the ceiling's path, and which
# build they are. PGO needs python3 and an llvm-profdata of rustc's own LLVM
# version (rustup component add llvm-tools, or Debian's llvm-N for LLVM N);
# without one, PGO=auto says so and makes the plain release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
host=$(rustc -vV | sed -n 's/^host: //p')
llvm=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
mode=${PGO:-auto}
case $mode in auto | on | off) ;; *) echo "PGO=$mode: auto, on or off" >&2; exit 2 ;; esac

plain() {
    echo "== plain release build (target/release): $1" >&2
    cargo build --release --locked --bin cramp-cds --example ceiling >&2
    echo "$root/target/release/cramp-cds"
    echo "$root/target/release/examples/ceiling"
    echo "release (no PGO: $1)"
    exit 0
}
[ "$mode" != off ] || plain "PGO=off"

profdata=""
for candidate in "$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata" \
    "$(command -v "llvm-profdata-$llvm" || true)" "$(command -v llvm-profdata || true)"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] || continue
    # A profile from another LLVM version is refused or, worse, misread.
    if "$candidate" --version 2>/dev/null | grep -q "LLVM version $llvm\."; then
        profdata=$candidate
        break
    fi
done
if [ -z "$profdata" ]; then
    missing="no llvm-profdata of LLVM $llvm (rustc's): rustup component add llvm-tools, or apt-get install llvm-$llvm"
    [ "$mode" = auto ] || { echo "$missing" >&2; exit 1; }
    plain "$missing"
fi

# --target: the flags reach only the binaries, not build scripts or proc macros.
generate=$root/target/pgo-generate
use=$root/target/pgo-use
echo "== PGO 1/3: instrumented build (target/pgo-generate)" >&2
RUSTFLAGS="-Cprofile-generate=$generate/profraw" \
    cargo build --release --locked --target "$host" --target-dir "$generate" --bin cramp-cds --example ceiling >&2

instrumented=$generate/$host/release
key=$(cat "$instrumented/cramp-cds" "$instrumented/examples/ceiling" tools/pgo/train.py \
    tests/scenarios/*.json cds-hooks/examples/*.json cds-hooks/examples/draft-orders/*.json |
    sha256sum | cut -c1-16)
merged=$generate/profiles/$key.profdata
if [ -f "$merged" ]; then
    echo "== PGO 2/3: profile $key.profdata is current: not trained again" >&2
else
    echo "== PGO 2/3: training run" >&2
    work=$(mktemp -d /tmp/cramp-cds-pgo.XXXXXX)
    trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
    free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
    # One binary at a time: start, train, SIGTERM, wait for its profile.
    train() {
        local mode=$1 port=$2
        shift 2
        LLVM_PROFILE_FILE="$work/raw/$mode-%p-%m.profraw" "$@" >"$work/$mode.log" 2>&1 &
        local pid=$!
        local tries=0
        # The service is ready at /readyz; the ceiling has only its two routes.
        until if [ "$mode" = service ]; then curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"; else
            curl -fs -o /dev/null -X POST -H 'Content-Type: application/json' -d '{}' "http://127.0.0.1:$port/lex"; fi; do
            tries=$((tries + 1))
            [ $tries -lt 600 ] || { cat "$work/$mode.log" >&2; echo "$mode did not start" >&2; exit 1; }
            sleep 0.05
        done
        python3 tools/pgo/train.py "$mode" "http://127.0.0.1:$port" >&2
        kill -TERM $pid
        wait $pid || { cat "$work/$mode.log" >&2; echo "$mode did not stop cleanly" >&2; exit 1; }
    }
    port=$(free_port)
    train service "$port" \
        "$instrumented/cramp-cds" --port "$port" --database-url "sqlite://$work/train.db?mode=rwc"
    port=$(free_port)
    train ceiling "$port" "$instrumented/examples/ceiling" "$port"
    ls "$work"/raw/service-*.profraw "$work"/raw/ceiling-*.profraw >/dev/null
    mkdir -p "$generate/profiles"
    "$profdata" merge -o "$merged.tmp" "$work"/raw/*.profraw
    mv "$merged.tmp" "$merged"
fi

# The profile's path is in RUSTFLAGS: a new profile rebuilds every crate,
# the same one rebuilds nothing.
echo "== PGO 3/3: release build with the profile (target/pgo-use)" >&2
RUSTFLAGS="-Cprofile-use=$merged" \
    cargo build --release --locked --target "$host" --target-dir "$use" --bin cramp-cds --example ceiling >&2
echo "$use/$host/release/cramp-cds"
echo "$use/$host/release/examples/ceiling"
echo "release, profile-guided (profile $key, $(basename "$profdata"))"
