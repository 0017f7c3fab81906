#!/usr/bin/env bash
# bench/jit.sh [REPS] - the LLVM JIT against the emitted C (issue #5).
#
# A release build (build-bench), then bench_jit on the bench models (mlp,
# lenet_bn, resnet8 at batch 64, 1 thread): JIT compile time (median of REPS,
# default 5) and the C path's emit + cc -O3 -march=native time into an empty
# cache, then training images/s of both backends in one process, alternated
# REPS times (median). Not a test: a benchmark; the table goes into
# bench/RESULTS.md. Targets: compile < 1 s for resnet8, JIT within 10% of C.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-5}
[ -d build-bench ] || meson setup build-bench -Dbuildtype=release >/dev/null
ninja -C build-bench bench/bench_jit >/dev/null
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
export NETC_CACHE_DIR=$cache OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
export NETC_RUNTIME_INCLUDE_DIR=$PWD/runtime NETC_RUNTIME_LIB_DIR=$PWD/build-bench/runtime
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc --all) CPUs, 1 OpenMP thread"
build-bench/bench/bench_jit --batch 64 --steps 30 --reps "$reps" \
    dsl-examples/mlp.net dsl-examples/lenet_bn.net dsl-examples/resnet8.net
