#!/usr/bin/env bash
# bench/run.sh [REPS] - netc against PyTorch at its best, one table.
#
# For mlp, lenet_bn and resnet8 (PERFORMANCE.md), on 1 and 2 threads:
#   train64 / train256  training images/s at batch 64 / 256:
#       netc: `netc train --epochs 1` on an in-memory subset (the epoch's
#       images/s, batch gather and shuffling included); with
#       `--backend jit` too when this netc has the JIT (column netc-jit);
#       PyTorch: a training step on a fixed batch (SGD momentum 0.9, weight
#       decay 5e-4), so it is, if anything, favoured;
#   infer256            inference images/s at batch 256;
#   lat1                latency of one image (microseconds, lower is better):
#       netc: bench_infer on the generated C compiled as a shared object
#       (cc -O3 -march=native, as netc's C backend does), built for batch
#       256 and 1; PyTorch: eval mode under no_grad.
# PyTorch runs in every configuration PERFORMANCE.md asks for (as installed;
# GOMP_SPINCOUNT=0; OpenBLAS-OpenMP with OPENBLAS_CORETYPE=SkylakeX +
# jit.trace/freeze, with GOMP_SPINCOUNT=0 and with netc's 20000); the table
# quotes the best one per row. OpenMP waiting: `netc train` picks its own
# (a short spin, main.c, and one thread while that is faster,
# compiler/thread_tuner.h); bench_infer runs with the same GOMP_SPINCOUNT. netc and the
# PyTorch configurations alternate (A B A B ...) for REPS rounds (default
# 3) and every figure is the median over the rounds. Ratio = netc / best
# PyTorch for throughput, best PyTorch / netc for latency (> 1: netc is
# better). GFLOP/s counts 2 FLOPs per multiply-add of the convolutions and
# dense layers (3x the forward for training); % of peak is against
# PERFORMANCE.md's 166 (1 thread) / 310 (2 threads) GFLOP/s.
# Takes about 4 minutes per round on a 2-core machine. Not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
py=/usr/bin/python3
bdir=build-bench
netc=$bdir/compiler/netc

if ! dpkg-query -W -f='${Status}' libopenblas0-openmp 2>/dev/null | grep -q "ok installed"; then
    apt-get install -y -q --no-install-recommends libopenblas0-openmp >/dev/null
fi
[ -d $bdir ] || meson setup $bdir -Dbuildtype=release >/dev/null
ninja -C $bdir >/dev/null
export NETC_CACHE_DIR=$PWD/$bdir/cache
openblas_dir=$(dirname "$(dpkg -L libopenblas0-openmp | grep 'libblas.so.3$' | head -n 1)")
work=$(mktemp -d)
results=$work/results
trap 'rm -rf "$work"' EXIT

backends=cc
if "$netc" train dsl-examples/mlp.net --backend jit --epochs 1 --limit-train 64 \
       --limit-test 64 --out "$work/probe.safetensors" >/dev/null 2>&1; then
    backends="cc jit"
fi

# The generated C of each model for batch 256 and 1, as shared objects.
for model in mlp lenet_bn resnet8; do
    for b in 256 1; do
        sed "s/^\( *\)batch [0-9]*;/\1batch $b;/" "dsl-examples/$model.net" >"$work/${model}_b$b.net"
        "$netc" "$work/${model}_b$b.net" -o "$work/${model}_b$b.c"
        cc -O3 -march=native -ffp-contract=fast -fopenmp -fPIC -shared -I runtime \
            "$work/${model}_b$b.c" -o "$work/${model}_b$b.so"
    done
done

netc_train() {   # backend model batch threads -> img/s
    local steps=150
    case $2 in lenet_bn) steps=100 ;; resnet8) steps=40; [ "$3" = 64 ] || steps=15 ;; esac
    "$netc" train "dsl-examples/$2.net" --backend "$1" --epochs 1 --batch "$3" --threads "$4" \
        --limit-train $(( $3 * steps )) --limit-test 64 --out "$work/bench.safetensors" 2>/dev/null \
        | sed -n 's/.*loss [0-9.]*, \([0-9.]*\) img\/s.*/\1/p' | head -n 1
}

netc_infer() {   # model batch threads -> "img_s us"
    GOMP_SPINCOUNT=20000 $bdir/bench/bench_infer "$work/${1}_b$2.so" "$1" "$2" "$3" \
        | cut -d' ' -f3,4
}

torch_run() {    # config model threads -> result lines
    local cfg=$1 model=$2 threads=$3
    case $cfg in
        torch) $py bench/bench_torch.py --threads "$threads" --models "$model" --config torch ;;
        spin0) GOMP_SPINCOUNT=0 $py bench/bench_torch.py --threads "$threads" --models "$model" \
                   --config spin0 ;;
        openblas-jit) LD_LIBRARY_PATH=$openblas_dir OPENBLAS_CORETYPE=SkylakeX GOMP_SPINCOUNT=0 \
                   $py bench/bench_torch.py --threads "$threads" --models "$model" --jit \
                   --config openblas-jit ;;
        openblas-jit-spin) LD_LIBRARY_PATH=$openblas_dir OPENBLAS_CORETYPE=SkylakeX \
                   GOMP_SPINCOUNT=20000 $py bench/bench_torch.py --threads "$threads" \
                   --models "$model" --jit --config openblas-jit-spin ;;
    esac | $py -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    kind = r["kind"] + (str(r["batch"]) if r["kind"] == "train" else "")
    kind = {"infer": "infer256", "latency": "lat1"}.get(kind, kind)
    print("torch:%s %s %s %d %.2f" % (r["config"], r["model"], kind, r["threads"],
                                      r.get("img_s", r.get("us", 0))))
'
}

for rep in $(seq "$reps"); do
    for model in mlp lenet_bn resnet8; do
        for threads in 1 2; do
            for be in $backends; do
                for batch in 64 256; do
                    echo "netc-$be $model train$batch $threads $(netc_train "$be" $model $batch $threads)"
                done
            done >>"$results"
            read -r ips _ <<<"$(netc_infer $model 256 $threads)"
            echo "netc-cc $model infer256 $threads $ips" >>"$results"
            read -r _ us <<<"$(netc_infer $model 1 $threads)"
            echo "netc-cc $model lat1 $threads $us" >>"$results"
            for cfg in torch spin0 openblas-jit openblas-jit-spin; do
                torch_run $cfg $model $threads >>"$results"
            done
        done
    done
    echo "round $rep of $reps done ($(date -u +%H:%M:%S))" >&2
done

$py - "$results" "$backends" <<'PY'
import collections, statistics, sys
sys.path.insert(0, "bench")
import torch_models
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) == 5 and parts[4]:
        who, model, kind, threads, v = parts
        runs[(model, kind, int(threads), who)].append(float(v))
jit = "jit" in sys.argv[2].split()
peak = {1: 166.0, 2: 310.0}   # GFLOP/s, PERFORMANCE.md
med = lambda k: statistics.median(runs[k]) if runs.get(k) else 0.0
print("| model | threads | measure | netc | netc-jit | best PyTorch (config) | ratio | netc GFLOP/s | % of peak |")
print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for model in ("mlp", "lenet_bn", "resnet8"):
    fwd = torch_models.forward_flops(model)
    for threads in (1, 2):
        for kind in ("train64", "train256", "infer256", "lat1"):
            key = (model, kind, threads)
            n, nj = med(key + ("netc-cc",)), med(key + ("netc-jit",))
            lower_better = kind == "lat1"
            best, cfg = None, "-"
            for who in runs:
                if who[:3] == key and who[3].startswith("torch:"):
                    m = med(who)
                    if m > 0 and (best is None or (m < best if lower_better else m > best)):
                        best, cfg = m, who[3][6:]
            best = best or 0.0
            if lower_better:
                ratio = best / n if n else 0.0
                flops = fwd / (n * 1e-6) if n else 0.0
                fmt = lambda v: f"{v:,.0f} us" if v else "-"
            else:
                ratio = n / best if best else 0.0
                flops = n * fwd * (3 if kind.startswith("train") else 1)
                fmt = lambda v: f"{v:,.0f}" if v else "-"
            g = flops / 1e9
            print(f"| {model} | {threads} | {kind} | {fmt(n)} | {fmt(nj) if jit else 'n/a'} | "
                  f"{fmt(best)} ({cfg}) | {ratio:.2f}x | {g:.1f} | {100 * g / peak[threads]:.0f}% |")
PY
