#!/bin/sh
# thread_flip.sh - netc train gives the same bits when its thread count
# changes between steps, as the thread tuner (compiler/thread_tuner.h) does
# when another process takes a core.
#
# usage: thread_flip.sh NETC SRCROOT
# For mlp, lenet_bn and resnet8: one epoch on a few batches with one thread,
# and again on 2 threads with NETC_TEST_THREAD_FLIP (one thread and two in
# turn, step by step); the checkpoints' tensor data must be the same bytes.
set -u
NETC=$1 SRC=$2
TMP=$(mktemp -d "${TMPDIR:-/tmp}/netc-flip-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export NETC_CACHE_DIR="$TMP/cache"

data_sha() {   # SHA-256 of a safetensors file's data: skip 8 + the header length
    hl=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
    tail -c +$((9 + hl)) "$1" | sha256sum | cut -d' ' -f1
}

fails=0
for model in mlp lenet_bn resnet8; do
    net=$SRC/dsl-examples/$model.net
    flags="--epochs 1 --batch 32 --limit-train 224 --limit-test 32"
    if ! "$NETC" train "$net" $flags --threads 1 --out "$TMP/one.st" >"$TMP/one.log" 2>&1 ||
       ! NETC_TEST_THREAD_FLIP=1 "$NETC" train "$net" $flags --threads 2 --out "$TMP/flip.st" \
            >"$TMP/flip.log" 2>&1; then
        cat "$TMP/one.log" "$TMP/flip.log"
        echo "thread_flip: $model: FAIL (netc train failed)"
        fails=$((fails + 1))
        continue
    fi
    a=$(data_sha "$TMP/one.st") b=$(data_sha "$TMP/flip.st")
    if [ "$a" = "$b" ]; then
        echo "thread_flip: $model: PASS (${a%"${a#????????????????}"})"
    else
        echo "thread_flip: $model: FAIL (1 thread $a, flipping $b)"
        fails=$((fails + 1))
    fi
done
[ "$fails" -eq 0 ]
