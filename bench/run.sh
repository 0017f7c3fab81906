#!/usr/bin/env bash
# bench/run.sh [REPS] - training images/s of netc and PyTorch, side by side.
#
# For mlp, lenet_bn and resnet8 (PERFORMANCE.md), batch 64 and 256, 1 and 2
# threads: netc (`netc train --epochs 1` on an in-memory subset; the figure is
# the epoch's images/s, data gather and shuffling included) and PyTorch in
# each configuration PERFORMANCE.md asks for (as installed; GOMP_SPINCOUNT=0;
# OpenBLAS-OpenMP with OPENBLAS_CORETYPE=SkylakeX + jit.trace), alternated
# A B A B for REPS rounds (default 3). Prints the median of each and the
# ratio against the best PyTorch configuration. Not a test: a benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
py=/usr/bin/python3
netc=build-bench/compiler/netc

if ! dpkg-query -W -f='${Status}' libopenblas0-openmp 2>/dev/null | grep -q "ok installed"; then
    apt-get install -y -q --no-install-recommends libopenblas0-openmp >/dev/null
fi
[ -d build-bench ] || meson setup build-bench -Dbuildtype=release >/dev/null
ninja -C build-bench >/dev/null
export NETC_CACHE_DIR=$PWD/build-bench/cache
openblas_dir=$(dirname "$(dpkg -L libopenblas0-openmp | grep 'libblas.so.3$' | head -n 1)")
results=$(mktemp)
trap 'rm -f "$results"' EXIT

netc_run() {   # model batch threads -> img/s
    local steps=150
    [ "$1" != resnet8 ] || steps=40
    local limit=$(( $2 * steps ))
    "$netc" train "dsl-examples/$1.net" --epochs 1 --batch "$2" --threads "$3" \
        --limit-train "$limit" --limit-test 64 --out build-bench/bench.safetensors 2>/dev/null \
        | sed -n 's/.*loss [0-9.]*, \([0-9.]*\) img\/s.*/\1/p' | head -n 1
}

torch_run() {  # config model threads -> JSON lines
    local cfg=$1 model=$2 threads=$3
    case $cfg in
        torch) $py bench/bench_torch.py --threads "$threads" --models "$model" --config torch --train-only ;;
        spin0) GOMP_SPINCOUNT=0 $py bench/bench_torch.py --threads "$threads" --models "$model" \
                   --config spin0 --train-only ;;
        openblas-jit) LD_LIBRARY_PATH=$openblas_dir OPENBLAS_CORETYPE=SkylakeX GOMP_SPINCOUNT=0 \
                   $py bench/bench_torch.py --threads "$threads" --models "$model" --jit \
                   --config openblas-jit --train-only ;;
    esac
}

for rep in $(seq "$reps"); do
    for model in mlp lenet_bn resnet8; do
        for threads in 1 2; do
            for batch in 64 256; do
                echo "netc $model $batch $threads $(netc_run $model $batch $threads)" >>"$results"
            done
            for cfg in torch spin0 openblas-jit; do
                torch_run $cfg $model $threads | $py -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    if r["kind"] == "train":
        print("torch:%s %s %d %d %.1f" % (r["config"], r["model"], r["batch"], r["threads"], r["img_s"]))
' >>"$results"
            done
        done
    done
    echo "round $rep of $reps done" >&2
done

$py - "$results" <<'PY'
import collections, statistics, sys
sys.path.insert(0, "bench")
import torch_models
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    who, model, batch, threads, ips = line.split()
    if ips:
        runs[(model, int(batch), int(threads), who)].append(float(ips))
peak = {1: 166.0, 2: 310.0}   # GFLOP/s, PERFORMANCE.md
print("| model | batch | threads | netc img/s | best PyTorch img/s (config) | ratio | netc GFLOP/s | % of peak |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for model in ("mlp", "lenet_bn", "resnet8"):
    flops = 3 * torch_models.forward_flops(model)
    for threads in (1, 2):
        for batch in (64, 256):
            key = (model, batch, threads)
            n = statistics.median(runs.get(key + ("netc",), [0]))
            best, cfg = 0.0, "-"
            for who, vals in runs.items():
                if who[:3] == key and who[3].startswith("torch:"):
                    m = statistics.median(vals)
                    if m > best:
                        best, cfg = m, who[3][6:]
            g = n * flops / 1e9
            print(f"| {model} | {batch} | {threads} | {n:,.0f} | {best:,.0f} ({cfg}) | "
                  f"{n / best if best else 0:.2f}x | {g:.1f} | {100 * g / peak[threads]:.0f}% |")
PY
