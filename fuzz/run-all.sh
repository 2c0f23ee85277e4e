#!/bin/sh
# Runs every fuzz target for SECONDS each (default 600), one after another, logging to out/.
set -u
cd "$(dirname "$0")"
SECONDS_EACH=${1:-600}
mkdir -p out
for t in subscription format record pipeline scan inventory; do
    mkdir -p corpus/$t
    RUSTC_BOOTSTRAP=1 ../.tools/bin/cargo-fuzz run $t corpus/$t seeds/$t -- \
        -max_total_time=$SECONDS_EACH -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 > out/$t.log 2>&1
    echo "$t exit $?" >> out/summary.txt
done
