#!/usr/bin/env bash
# scripts/fuzz.sh [TARGET] [SECONDS] - a long libFuzzer campaign (ASan+UBSan)
# on one parser of untrusted input:
#   frontend     the .net front end (tests/fuzz/fuzz_frontend.c)
#   safetensors  the checkpoint loader (runtime/checkpoint.c)
#   idx          the IDX/gzip data loader (runtime/data.c)
# TARGET defaults to frontend, SECONDS to one hour; FUZZ_JOBS (default 2)
# parallel workers, FUZZ_RUNS (default unlimited) stops after that many
# executions (one worker). On a shared machine: nice -n 19 scripts/fuzz.sh idx 3600.
# The corpus grows in build-fuzz/fuzz-long-TARGET/corpus (kept between runs),
# findings land in build-fuzz/fuzz-long-TARGET/artifacts; turn each into a
# regression test (a unit test, and the input under tests/fuzz/corpus/TARGET/).
# The last lines of fuzz-long-TARGET/log.txt hold the executions and coverage.
set -euo pipefail
cd "$(dirname "$0")/.."
target=frontend
case "${1:-}" in
  frontend|safetensors|idx) target=$1; shift ;;
  ''|[0-9]*) ;;
  *) echo "usage: scripts/fuzz.sh [frontend|safetensors|idx] [SECONDS]" >&2; exit 2 ;;
esac
seconds=${1:-3600}
jobs=${FUZZ_JOBS:-2}
if [ ! -d build-fuzz ]; then
  CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
    -Djit=disabled >/dev/null
fi
ninja -C build-fuzz "tests/fuzz_$target"
work=build-fuzz/fuzz-long-$target
mkdir -p "$work/corpus" "$work/artifacts"
seeds=(tests/fuzz/corpus/$target)
dict=()
if [ "$target" = frontend ]; then
  seeds+=(dsl-examples tests/errors)
else
  dict=(-dict=tests/fuzz/$target.dict)
fi
par=()
[ "$jobs" -gt 1 ] && par=(-jobs="$jobs" -workers="$jobs")
[ -n "${FUZZ_RUNS:-}" ] && par=(-runs="$FUZZ_RUNS")
# Small ASan quarantine: the loaders allocate and free buffers per input.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=16}
# UBSan's findings are crashes too (by default it prints and goes on).
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
"build-fuzz/tests/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  "${par[@]}" "${dict[@]}" -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
  "$work/corpus" "${seeds[@]}" 2>&1 | tee "$work/log.txt" | grep -E "DONE|ERROR|stat::|SUMMARY" || true
ls "$work/artifacts" | grep -q . && { echo "findings in $work/artifacts"; exit 1; }
exit 0
