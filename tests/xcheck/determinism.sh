#!/bin/sh
# determinism.sh - the same seed gives bitwise-identical training.
#
# Usage: determinism.sh NETC LIBNETRT SRCROOT WORKDIR [MODEL.net...]
# For each model (default: dsl-examples mlp, lenet_bn, resnet8, multitask;
# tests/golden/gradcheck_reg.net: every regularizer, zca and mixup;
# tests/golden/gradcheck_cutmix.net: cutmix; tests/xcheck/oddconv_sgd.net: the
# strided and large-kernel convolution paths): netc emits C, cc builds it with xcheck_driver.c, and the
# driver trains 20 steps on synthetic batches from one seed three times:
# OMP_NUM_THREADS=1, 2, and 2 again. The FNV-1a hash of every parameter and
# running statistic, and the SHA-256 of the saved checkpoint's tensor data
# (the bytes after the safetensors header), must be the same in all three.
# Exit: 0 identical, 1 any difference or failure.
set -u
netc=$1 libnetrt=$2 src=$3 work=$4
shift 4
here=$src/tests/xcheck
cc=${CC:-cc}
steps=20 seed=12345
models=${*:-"$src/dsl-examples/mlp.net $src/dsl-examples/lenet_bn.net $src/dsl-examples/resnet8.net $src/dsl-examples/multitask.net $src/tests/golden/gradcheck_reg.net $src/tests/golden/gradcheck_cutmix.net $src/tests/xcheck/oddconv_sgd.net"}
# A netc without its C generator yet says so: skip rather than fail.
probe=$("$netc" "$here/mlp_sgd.net" -o "${TMPDIR:-/tmp}/xcheck-probe-$$.c" 2>&1)
rm -f "${TMPDIR:-/tmp}/xcheck-probe-$$.c" "${TMPDIR:-/tmp}/xcheck-probe-$$.h"
case $probe in
    *"not implemented yet"*) echo "SKIP: this netc cannot generate C yet"; exit 77 ;;
esac

libdir=$(cd "$(dirname "$libnetrt")" && pwd)
mkdir -p "$work" || exit 1

# SHA-256 of a safetensors file's data: skip 8 + the little-endian header length.
data_sha() {
    hl=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
    tail -c +$((9 + hl)) "$1" | sha256sum | cut -d' ' -f1
}

fails=0 passes=0
for net in $models; do
    name=$(basename "$net" .net)
    d=$work/$name
    rm -rf "$d" && mkdir -p "$d" || exit 1
    model=$(sed -n 's/^model \([A-Za-z_][A-Za-z0-9_]*\);.*/\1/p' "$net")
    if ! "$netc" "$net" -o "$d/$model.c" >"$d/netc.log" 2>&1 ||
       ! $cc -std=c11 -O2 -fopenmp -D_POSIX_C_SOURCE=200809L -I"$src/runtime" -I"$d" \
            -DMODEL_INFO="${model}_info" "$here/xcheck_driver.c" "$d/$model.c" -o "$d/driver" \
            -L"$libdir" -Wl,-rpath,"$libdir" -lnetrt -lm >"$d/cc.log" 2>&1; then
        cat "$d/netc.log" "$d/cc.log"
        echo "determinism: $name: FAIL (build)"
        fails=$((fails + 1))
        continue
    fi
    results=""
    for run in t1 t2 t2again; do
        threads=${run#t}; threads=${threads%again}
        if ! OMP_NUM_THREADS=$threads "$d/driver" train $steps $seed "$d/$run.safetensors" \
                >"$d/$run.log" 2>&1; then
            cat "$d/$run.log"
            results="$results FAILED"
            continue
        fi
        h=$(sed -n 's/^params_hash //p' "$d/$run.log")
        results="$results $h/$(data_sha "$d/$run.safetensors" | cut -c1-16)"
    done
    set -- $results
    if [ $# -eq 3 ] && [ "$1" = "$2" ] && [ "$2" = "$3" ] && [ "$1" != FAILED ]; then
        echo "determinism: $name: PASS (1, 2, 2 threads: $1)"
        passes=$((passes + 1))
    else
        echo "determinism: $name: FAIL (1, 2, 2 threads:$results)"
        fails=$((fails + 1))
    fi
done
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
