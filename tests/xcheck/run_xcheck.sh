#!/bin/sh
# run_xcheck.sh - the PyTorch cross-check of issue #3, every model x optimizer.
#
# Usage: run_xcheck.sh NETC LIBNETRT SRCROOT WORKDIR [VARIANT...]
#   NETC      the netc executable
#   LIBNETRT  the built runtime library (its folder goes on -L and the rpath)
#   SRCROOT   the source tree (runtime/netrt.h, tests/xcheck/)
#   WORKDIR   scratch space (emptied per variant)
# For each variant (tests/xcheck/<variant>.net, default: all of them): netc
# emits C, cc compiles it with xcheck_driver.c, and xcheck.py runs the driver
# and replays the steps in PyTorch (float64), comparing loss, gradients,
# parameters, running statistics and predictions to 1e-4 relative. Four
# variants run a second time on a partial batch (n = 29 of 32).
# Exit: 0 all agree, 1 any mismatch or build failure, 77 no torch here.
set -u
netc=$1 libnetrt=$2 src=$3 work=$4
shift 4
here=$src/tests/xcheck
python=/usr/bin/python3
[ -x "$python" ] || python=python3
cc=${CC:-cc}

if ! "$python" -c 'import torch, numpy' 2>/dev/null; then
    echo "xcheck: SKIP: PyTorch (python3-torch) is not importable by $python"
    exit 77
fi

# A netc without its C generator yet says so: skip rather than fail.
probe=$("$netc" "$here/mlp_sgd.net" -o "${TMPDIR:-/tmp}/xcheck-probe-$$.c" 2>&1)
rm -f "${TMPDIR:-/tmp}/xcheck-probe-$$.c" "${TMPDIR:-/tmp}/xcheck-probe-$$.h"
case $probe in
    *"not implemented yet"*) echo "SKIP: this netc cannot generate C yet"; exit 77 ;;
esac

variants=${*:-"mlp_sgd mlp_adam lenet_bn_sgd lenet_bn_adam resnet8_sgd resnet8_adam multitask_sgd multitask_adam oddconv_sgd"}
partial="mlp_adam lenet_bn_sgd resnet8_adam multitask_sgd oddconv_sgd"
libdir=$(cd "$(dirname "$libnetrt")" && pwd)
mkdir -p "$work" || exit 1
fails=0 passes=0 summary=""
for v in $variants; do
    d=$work/$v
    rm -rf "$d" && mkdir -p "$d/run" || exit 1
    model=$(sed -n 's/^model \([A-Za-z_][A-Za-z0-9_]*\);.*/\1/p' "$here/$v.net")
    echo "== $v (model $model)"
    if ! "$netc" "$here/$v.net" -o "$d/$model.c" >"$d/netc.log" 2>&1; then
        cat "$d/netc.log"; echo "xcheck: $v: netc failed"
        fails=$((fails + 1)); summary="$summary
XCHECK $v FAIL (netc)"; continue
    fi
    # The generated C must build warning-free as LANGUAGE.md promises.
    if ! $cc -std=c11 -O2 -Wall -Wextra -Wpedantic -Werror -fopenmp -D_POSIX_C_SOURCE=200809L \
            -I"$src/runtime" -I"$d" -DMODEL_INFO="${model}_info" \
            "$here/xcheck_driver.c" "$d/$model.c" -o "$d/driver" \
            -L"$libdir" -Wl,-rpath,"$libdir" -lnetrt -lm >"$d/cc.log" 2>&1; then
        cat "$d/cc.log"; echo "xcheck: $v: cc failed"
        fails=$((fails + 1)); summary="$summary
XCHECK $v FAIL (cc)"; continue
    fi
    "$python" "$here/xcheck.py" "$v" "$d/driver" "$d/run" | tee "$d/xcheck.log"
    if grep -q "^XCHECK .* PASS" "$d/xcheck.log"; then
        passes=$((passes + 1))
    else
        fails=$((fails + 1))
    fi
    line=$(grep "^XCHECK " "$d/xcheck.log" || echo "XCHECK $v FAIL (no result)")
    summary="$summary
$line"
    # A partial batch (n < the model's batch) for some: BN statistics and
    # the loss average over n, and the tail of every buffer must not count.
    case " $partial " in *" $v "*)
        "$python" "$here/xcheck.py" "$v" "$d/driver" "$d/run29" --n 29 >"$d/xcheck29.log" 2>&1
        grep -q "^XCHECK .* PASS" "$d/xcheck29.log" && passes=$((passes + 1)) || {
            cat "$d/xcheck29.log"; fails=$((fails + 1)); }
        line=$(grep "^XCHECK " "$d/xcheck29.log" || echo "XCHECK $v FAIL (no result)")
        summary="$summary
$line (n=29)" ;;
    esac
done
echo
echo "max relative differences (normwise or scale-relative max, see xcheck.py), tolerance 1e-4:$summary"
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
