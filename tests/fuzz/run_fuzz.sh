#!/bin/sh
# run_fuzz.sh FUZZER SECONDS WORKDIR SEED_DIR...
# Replays every seed, then fuzzes for SECONDS; new inputs go to WORKDIR/corpus,
# crashes to WORKDIR/artifacts. Exit status is libFuzzer's (non-zero on a finding).
set -eu
fuzzer=$1; seconds=$2; work=$3; shift 3
mkdir -p "$work/corpus" "$work/artifacts"
# UBSan's findings are crashes too (by default it prints and goes on, and
# libFuzzer would not keep the input).
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" "$@"
