#!/bin/sh
# Runs every fuzz target in turn for SECS seconds each (default 420), with one job and
# one worker (the machine is shared), then keeps in corpus-min/ the inputs of at most
# 2 KiB that add coverage (the committed corpus stays small).
# Usage: fuzz/run-all.sh [SECS] [TARGET...]
set -eu
cd "$(dirname "$0")"
secs=${1:-420}
[ $# -gt 0 ] && shift
targets=${*:-decoder reassembly net pipeline}
bin=target/x86_64-unknown-linux-gnu/release
for t in $targets; do
    mkdir -p "corpus/$t" "corpus-min/$t"
    cp corpus-min/"$t"/* "corpus/$t/" 2>/dev/null || true
    if [ "$t" = pipeline ]; then
        find ../captures -name '*.pcap*' -size -16k -exec cp {} "corpus/$t/" \;
    fi
    cargo +nightly fuzz run "$t" "corpus/$t" -- -jobs=1 -workers=1 \
        -max_total_time="$secs" -max_len=16384 -print_final_stats=1 \
        >"logs-$t.txt" 2>&1 || { echo "$t: FAILED (see fuzz/logs-$t.txt)"; continue; }
    grep -E 'stat::number_of_executed_units|stat::average_exec_per_sec' "logs-$t.txt" | sed "s/^/$t: /"
    small=$(mktemp -d)
    find "corpus/$t" -type f -size -2049c -exec cp {} "$small/" \;
    rm -rf "corpus-min/$t" && mkdir -p "corpus-min/$t"
    "$bin/$t" -merge=1 "corpus-min/$t" "$small" >/dev/null 2>&1
    rm -rf "$small"
done
