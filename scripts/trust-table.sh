#!/bin/sh
# Prints the trust table of tests/trust.rs (issue 11) in Markdown, for docs/hardening.md:
# each damage applied to the trust-* captures and a few others, every query record
# judged against the clean run's record of the same statement. The test's own verdict
# (0 wrong, >= 95% of the statements whose packets survived recovered) goes to stderr.
# Usage: scripts/trust-table.sh [VARIANT-SUBSTRING]   (e.g. "swap")
set -eu
cd "$(dirname "$0")/.."
table=$(mktemp)
trap 'rm -f "$table"' EXIT
status=0
PGSCOPE_TRUST_TABLE=$table PGSCOPE_TRUST_ONLY=${1:-} CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} \
    cargo test --release --quiet --test trust damaged_captures_give_no_wrong_records >/dev/null 2>&1 || status=$?
[ -s "$table" ] || { echo "trust-table: the test wrote no table (build failed?)" >&2; exit 2; }
cat "$table"
if [ "$status" -ne 0 ]; then
    echo "trust-table: the test fails: some variant has wrong records or recovers < 95%" >&2
fi
