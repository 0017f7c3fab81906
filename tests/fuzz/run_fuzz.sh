#!/bin/sh
# run_fuzz.sh FUZZER SECONDS WORKDIR SEED_DIR...
# Replays every seed, then fuzzes for SECONDS; new inputs go to WORKDIR/corpus,
# crashes to WORKDIR/artifacts. Exit status is libFuzzer's (non-zero on a finding).
set -eu
fuzzer=$1; seconds=$2; work=$3; shift 3
mkdir -p "$work/corpus" "$work/artifacts"
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" "$@"
