#!/bin/sh
# Measures pgscope's peak RSS on synthetic worst cases (docs/hardening.md).
# Usage: scripts/hardening-figures.sh [WORKDIR]   (needs /usr/bin/time; the 1 GiB DataRow
# is streamed through a pipe, not written to disk)
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin pgscope --example pgscope-damage
bin=target/release
work=${1:-$(mktemp -d)}
mkdir -p "$work"
rss() { # label, then the pgscope arguments
    label=$1; shift
    /usr/bin/time -f "%M %e" -o "$work/time" "$bin/pgscope" "$@" -o json >/dev/null
    set -- $(cat "$work/time")
    echo "$label: peak RSS $1 KiB, $2 s"
}
per_conn() { # label, n, rss-KiB, baseline-KiB
    echo "$1: $(( ($3 - $4) * 1024 / $2 )) bytes per connection"
}
for spec in "conns 1" "conns 100000" "halfopen 10000" "halfopen 100000"; do
    set -- $spec
    "$bin/examples/pgscope-damage" "$1" "$2" "$work/$1-$2.pcap"
    rss "$1 $2" -r "$work/$1-$2.pcap" | tee "$work/$1-$2.rss"
done
base=$(awk '{print $5}' "$work/conns-1.rss")
for spec in "conns 100000" "halfopen 10000" "halfopen 100000"; do
    set -- $spec
    per_conn "$1 $2" "$2" "$(awk '{print $5}' "$work/$1-$2.rss")" "$base"
done
"$bin/examples/pgscope-damage" bigrow 1073741824 - |
    /usr/bin/time -f "1 GiB DataRow: peak RSS %M KiB, %e s" "$bin/pgscope" -r - -o json >/dev/null
"$bin/examples/pgscope-damage" tiny 1000000 "$work/tiny.pcap"
rss "1,000,000 tiny messages each way" -r "$work/tiny.pcap"
