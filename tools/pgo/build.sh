#!/usr/bin/env bash
# The release build with profile-guided optimisation (PGO), of the service
# and of the framework's ceiling (examples/ceiling.rs) alike, each on its own:
#   1. an instrumented release build (-Cprofile-generate);
#   2. a training run: the binary started on loopback and sent the hook
#      calls of tools/pgo/train.py (the clinical scenarios and the example
#      charts, not the load harness's bodies), then stopped with SIGTERM so
#      that it writes its profile; llvm-profdata merges it;
#   3. the release build again, with that profile (-Cprofile-use).
# Same release profile as `cargo build --release` (fat LTO, one codegen
# unit). The service is built alone, as `cargo build --release --bin
# cramp-cds` builds it: built beside the example it would get the features
# the dev-dependencies turn on in shared crates, and differ from what ships.
# A profile is kept per instrumented binary and training set, so a second
# run without changes trains and builds nothing.
#
#   tools/pgo/build.sh                  # PGO=auto: profile-guided where it can be
#   PGO=on tools/pgo/build.sh           # profile-guided or fail
#   PGO=off tools/pgo/build.sh          # the plain release build
#   tools/pgo/build.sh --service-only   # no ceiling (the Dockerfile)
#
# Prints three lines: the service's path, the ceiling's path (empty with
# --service-only), and which build they are. PGO needs python3 and an
# llvm-profdata of rustc's own LLVM version (rustup component add
# llvm-tools, or Debian's llvm-N for LLVM N); without one, PGO=auto says so
# and makes the plain release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
host=$(rustc -vV | sed -n 's/^host: //p')
llvm=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
mode=${PGO:-auto}
case $mode in auto | on | off) ;; *) echo "PGO=$mode: auto, on or off" >&2; exit 2 ;; esac
ceiling=yes
[ "${1:-}" != --service-only ] || ceiling=""

plain() {
    echo "== plain release build (target/release): $1" >&2
    cargo build --release --locked --bin cramp-cds >&2
    [ -z "$ceiling" ] || cargo build --release --locked --example ceiling >&2
    echo "$root/target/release/cramp-cds"
    echo "${ceiling:+$root/target/release/examples/ceiling}"
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

# --target: the flags reach only the binaries, not build scripts or proc
# macros. Each binary has its own profile and its own final build: shared
# crates (actix-web, serde_json) are optimised for that binary's own run.
generate=$root/target/pgo-generate
work=$(mktemp -d /tmp/cramp-cds-pgo.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
keys=""

# pgo NAME CARGO-TARGET BINARY-PATH ARGS...: sets `final` to the built binary.
# ARGS start the instrumented binary; {port} and {work} are filled in.
pgo() {
    local name=$1 target=$2 path=$3
    shift 3
    echo "== PGO $name 1/3: instrumented build (target/pgo-generate)" >&2
    RUSTFLAGS="-Cprofile-generate=$generate/profraw" \
        cargo build --release --locked --target "$host" --target-dir "$generate" $target >&2
    local instrumented=$generate/$host/release/$path
    local key
    key=$(cat "$instrumented" tools/pgo/train.py tests/scenarios/*.json cds-hooks/examples/*.json \
        cds-hooks/examples/draft-orders/*.json | sha256sum | cut -c1-16)
    keys="$keys $name $key"
    local profile=$generate/profiles/$name-$key.profdata
    if [ -f "$profile" ]; then
        echo "== PGO $name 2/3: profile $name-$key is current: not trained again" >&2
    else
        echo "== PGO $name 2/3: training run" >&2
        local port
        port=$(free_port)
        local args=("${@//\{port\}/$port}")
        args=("${args[@]//\{work\}/$work}")
        LLVM_PROFILE_FILE="$work/raw/$name-%p-%m.profraw" "$instrumented" "${args[@]}" >"$work/$name.log" 2>&1 &
        local pid=$! tries=0
        # The service is ready at /readyz; the ceiling has only its two routes.
        until if [ "$name" = service ]; then curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"; else
            curl -fs -o /dev/null -X POST -H 'Content-Type: application/json' -d '{}' "http://127.0.0.1:$port/lex"; fi; do
            tries=$((tries + 1))
            [ $tries -lt 600 ] || { cat "$work/$name.log" >&2; echo "$name did not start" >&2; exit 1; }
            sleep 0.05
        done
        python3 tools/pgo/train.py "$name" "http://127.0.0.1:$port" >&2
        # SIGTERM: a clean exit writes the profile.
        kill -TERM $pid
        wait $pid || { cat "$work/$name.log" >&2; echo "$name did not stop cleanly" >&2; exit 1; }
        mkdir -p "$generate/profiles"
        "$profdata" merge -o "$profile.tmp" "$work"/raw/"$name"-*.profraw
        mv "$profile.tmp" "$profile"
    fi
    # The profile's path is in RUSTFLAGS: a new profile rebuilds every crate,
    # the same one rebuilds nothing.
    echo "== PGO $name 3/3: release build with the profile (target/pgo-use/$name)" >&2
    RUSTFLAGS="-Cprofile-use=$profile" \
        cargo build --release --locked --target "$host" --target-dir "$root/target/pgo-use/$name" $target >&2
    final=$root/target/pgo-use/$name/$host/release/$path
}

pgo service "--bin cramp-cds" cramp-cds --port "{port}" --database-url "sqlite://{work}/train.db?mode=rwc"
service_binary=$final
ceiling_binary=""
if [ -n "$ceiling" ]; then
    pgo ceiling "--example ceiling" examples/ceiling "{port}"
    ceiling_binary=$final
fi
echo "$service_binary"
echo "$ceiling_binary"
echo "release, profile-guided (profiles:$keys; $(basename "$profdata"))"
