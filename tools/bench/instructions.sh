#!/usr/bin/env bash
# Instructions per iteration of one bench of benches/evaluate.rs, by valgrind
# callgrind: the comparison of record for a code change, because instruction
# counts do not move with the machine's load the way wall-clock medians do.
# The bench runs twice (10 and 60 iterations; set-up cancels out in the
# difference). Every argument of the bench (4 KB and 100 KB) is counted
# together.
#
#   tools/bench/instructions.sh whole_hook_call [more bench names...]
#
# A name is matched as a substring (divan's filter): give whole names.
#
# Needs valgrind. Builds the release bench binary first.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
[ $# -gt 0 ] || { echo "usage: $0 BENCH [BENCH...]" >&2; exit 2; }
binary=$(cargo bench --bench evaluate --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "evaluate" and m.get("executable"):
        print(m["executable"])')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for bench in "$@"; do
    declare -A total=()
    for n in 10 60; do
        valgrind --tool=callgrind --callgrind-out-file="$work/out.$n" \
            "$binary" --bench "$bench" --sample-count "$n" --sample-size 1 >/dev/null 2>&1
        total[$n]=$(callgrind_annotate "$work/out.$n" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    done
    echo "$bench: $(((total[60] - total[10]) / 50)) instructions per iteration"
done
