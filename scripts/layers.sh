#!/usr/bin/env bash
# Counts the references in src/ that run up the layer order of docs/architecture.md
# ("Layering"): a module may name the ones before it in ORDER, never one after.
# Test code (files named tests.rs, an inline `#[cfg(test)] mod tests` to the end of
# its file) is left out: a test may wire several layers together. The fixtures in
# src/synth.rs are for tests only and named by none of the shipped code.
# Prints each upward reference and exits 1 if there is any.
set -euo pipefail
cd "$(dirname "$0")/.."

ORDER=(text anomaly privs capture net tcp pgwire tls session filter output pooler hints metrics tui cli pipeline)

declare -A rank
for i in "${!ORDER[@]}"; do rank[${ORDER[$i]}]=$i; done

bad=0
while IFS= read -r file; do
    rel=${file#src/}
    from=${rel%%/*}
    from=${from%.rs}
    [[ $from == main || $from == lib || $from == synth ]] && continue
    if [[ -z ${rank[$from]+x} ]]; then
        echo "$file: module '$from' has no place in scripts/layers.sh's ORDER" >&2
        bad=1
        continue
    fi
    [[ $(basename "$file") == tests.rs || $rel == */tests/* ]] && continue
    # Shipped lines only, then every module a `crate::` path names, also inside
    # `crate::{a, b::c}` groups.
    while IFS=: read -r line to; do
        if [[ -z ${rank[$to]+x} ]]; then
            echo "$file:$line: crate::$to has no place in scripts/layers.sh's ORDER" >&2
            bad=1
        elif ((rank[$to] > rank[$from])); then
            echo "$file:$line: $from uses crate::$to, a later layer"
            bad=1
        fi
    done < <(awk '
        /^#\[cfg\(test\)\]/ { pending = 1; next }
        pending && /^(pub(\(crate\))? )?mod tests \{/ { exit }
        { pending = 0 }
        /^[[:space:]]*\/\// { next }
        {
            s = $0
            while (match(s, /crate::(\{[^}]*\}|[a-z_]+)/)) {
                m = substr(s, RSTART + 7, RLENGTH - 7)
                s = substr(s, RSTART + RLENGTH)
                gsub(/[{}]/, "", m)
                n = split(m, parts, ",")
                for (i = 1; i <= n; i++) {
                    p = parts[i]
                    gsub(/^[[:space:]]+/, "", p)
                    sub(/::.*/, "", p)
                    if (p != "" && p != "self") print NR ":" p
                }
            }
        }' "$file")
done < <(find src -name '*.rs' | sort)
exit $bad
