#!/bin/sh
# harness_selftest.sh - the cross-check must pass a correct float32 step and
# fail a wrong one, whatever netc does.
#
# Usage: harness_selftest.sh SRCROOT WORKDIR
# Runs xcheck.py against torch_f32_driver.py (PyTorch in float32 standing in
# for a generated model): every variant must PASS; with one deliberate bug
# each (L2 on biases and batchnorm too, batchnorm momentum 0.2, Adam eps
# 1e-3) the variants the bug touches must FAIL.
# Exit: 0 as expected, 1 otherwise, 77 when torch is missing.
set -u
src=$1 work=$2
here=$src/tests/xcheck
python=/usr/bin/python3
[ -x "$python" ] || python=python3
"$python" -c 'import torch, numpy' 2>/dev/null || { echo "SKIP: no torch"; exit 77; }
mkdir -p "$work" || exit 1
fails=0 passes=0
expect() {  # expect pass|fail BREAK VARIANT
    XCHECK_BREAK=$2 "$python" "$here/xcheck.py" "$3" "$here/torch_f32_driver.py" "$work/$3" \
        >"$work/log" 2>&1
    rc=$?
    got=pass; [ $rc -eq 0 ] || got=fail
    if [ $rc -gt 1 ]; then cat "$work/log"; got=error; fi
    if [ "$got" = "$1" ]; then passes=$((passes + 1)); r=ok; else fails=$((fails + 1)); r=WRONG; fi
    echo "$r: ${2:-correct} $3 -> $got ($(tail -1 "$work/log"))"
}
for v in mlp_sgd mlp_adam lenet_bn_sgd lenet_bn_adam resnet8_sgd resnet8_adam multitask_sgd multitask_adam; do
    expect pass "" $v
done
expect fail l2_bias lenet_bn_sgd
expect fail l2_bias resnet8_adam
expect fail bn_momentum multitask_sgd
expect fail adam_eps mlp_adam
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
