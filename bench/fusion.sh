#!/usr/bin/env bash
# bench/fusion.sh [REPS] [THREADS] - what each fusion pass buys
# (docs/architecture.md, "Fusion"; bench/RESULTS.md, "Fusion").
#
# The same model built with every pass (fused), without one of them
# (--no-fuse=bnfold / elementwise / epilogue / update) and without any (--no-fuse):
#   infer256 / lat1  images/s of predict at batch 256 and the latency of one
#                    image (us), bench_infer on the generated C compiled as
#                    run.sh does it (lenet_bn, resnet8: the models with
#                    batchnorm);
#   train64          `netc train` images/s at batch 64 (JIT backend, the
#                    default; mlp, lenet_bn, resnet8).
# Variants alternate within every round (fused, then each switch), REPS
# rounds (default 3), medians printed; THREADS (default 2) OpenMP threads.
# The load average is printed before and after: on a shared machine,
# compare variants of the same run only. Not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
threads=${2:-2}
bdir=${BENCH_BUILD:-build-bench}    # a release build
netc=$bdir/compiler/netc
[ -d $bdir ] || meson setup $bdir -Dbuildtype=release >/dev/null
ninja -C $bdir >/dev/null
export NETC_CACHE_DIR=$PWD/$bdir/cache OMP_WAIT_POLICY=passive
work=$(mktemp -d)
results=$work/results
trap 'rm -rf "$work"' EXIT

flag() {   # variant -> netc flag
    case $1 in fused) echo "" ;; all) echo "--no-fuse" ;; *) echo "--no-fuse=$1" ;; esac
}

infer_variants="fused bnfold all"
for model in lenet_bn resnet8; do
    for b in 256 1; do
        sed "s/^\( *\)batch [0-9]*;/\1batch $b;/" "dsl-examples/$model.net" >"$work/${model}_b$b.net"
        for v in $infer_variants; do
            # shellcheck disable=SC2046
            "$netc" "$work/${model}_b$b.net" -o "$work/${model}_b${b}_$v.c" $(flag "$v")
            cc -O3 -march=native -ffp-contract=fast -fopenmp -fPIC -shared -I runtime \
                "$work/${model}_b${b}_$v.c" -o "$work/${model}_b${b}_$v.so"
        done
    done
done

netc_train() {   # variant model -> img/s
    local steps=150
    case $2 in lenet_bn) steps=100 ;; resnet8) steps=40 ;; esac
    # shellcheck disable=SC2046
    "$netc" train "dsl-examples/$2.net" --epochs 1 --batch 64 --threads "$threads" \
        --limit-train $(( 64 * steps )) --limit-test 64 --out "$work/bench.safetensors" \
        $(flag "$1") 2>/dev/null | sed -n 's/.*loss [0-9.]*, \([0-9.]*\) img\/s.*/\1/p' | head -n 1
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for rep in $(seq "$reps"); do
    for model in lenet_bn resnet8; do
        for v in $infer_variants; do
            read -r _ _ ips _ <<<"$($bdir/bench/bench_infer "$work/${model}_b256_$v.so" "$model" 256 "$threads")"
            echo "$v $model infer256 $ips" >>"$results"
            read -r _ _ _ us _ <<<"$($bdir/bench/bench_infer "$work/${model}_b1_$v.so" "$model" 1 "$threads")"
            echo "$v $model lat1 $us" >>"$results"
        done
    done
    for model in mlp lenet_bn resnet8; do
        for v in fused elementwise epilogue update all; do
            echo "$v $model train64 $(netc_train "$v" $model)" >>"$results"
        done
    done
    echo "round $rep of $reps done ($(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg))" >&2
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

/usr/bin/python3 - "$results" "$threads" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) == 4 and p[3]:
        runs[(p[1], p[2], p[0])].append(float(p[3]))
med = lambda k: statistics.median(runs[k]) if runs.get(k) else 0.0
names = {"fused": "all passes", "bnfold": "--no-fuse=bnfold", "elementwise": "--no-fuse=elementwise",
         "epilogue": "--no-fuse=epilogue", "update": "--no-fuse=update", "all": "--no-fuse"}
print("threads: %s; medians of %d rounds; gain = fused / variant (lat1: variant / fused)"
      % (sys.argv[2], max(len(v) for v in runs.values())))
print()
print("| model | measure | variant | value | gain of the pass(es) |")
print("| --- | --- | --- | ---: | ---: |")
for model in ("mlp", "lenet_bn", "resnet8"):
    for kind in ("train64", "infer256", "lat1"):
        f = med((model, kind, "fused"))
        if not f:
            continue
        unit = " us" if kind == "lat1" else ""
        print("| %s | %s | all passes | %s%s | |" % (model, kind, format(f, ",.0f"), unit))
        for v in ("bnfold", "elementwise", "epilogue", "update", "all"):
            x = med((model, kind, v))
            if x:
                gain = x / f if kind == "lat1" else f / x
                print("| %s | %s | %s | %s%s | %.3fx |" % (model, kind, names[v], format(x, ",.0f"), unit, gain))
PY
