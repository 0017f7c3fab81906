#!/bin/sh
# train_mlp.sh - end to end: netc train, netc eval, --resume, errors, SIGINT.
#
# usage: train_mlp.sh NETC MODEL.net MIN_ACCURACY [extra netc flags...]
#   e.g. train_mlp.sh build/compiler/netc dsl-examples/mlp.net 80
#
# Trains one epoch on the first 20000 training and 2000 test images and
# requires test accuracy >= MIN_ACCURACY percent; `netc eval` on the
# checkpoint must print the same accuracy; --resume must continue at
# epoch 2; bad data, a bad checkpoint and bad flags must fail with exit
# status 1, 1 and 2; SIGINT must stop the run with status 130 and leave
# the last checkpoint loadable. Exits 77 (skipped) when this netc cannot
# generate C yet.
set -u
NETC=$1 MODEL=$2 MIN=$3
shift 3
TMP=$(mktemp -d /tmp/netc-e2e-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
export NETC_CACHE_DIR="$TMP/cache"
LIMITS="--limit-train 20000 --limit-test 2000"

fail() { echo "FAIL: $*"; exit 1; }

accuracy() {   # the first target's accuracy in the last line that has one
    grep -o 'test accuracy: [A-Za-z_0-9]* [0-9.]*%' "$1" | tail -n 1 | sed 's/.* \([0-9.]*\)%/\1/'
}

# 1. train one epoch
start=$(date +%s)
"$NETC" train "$MODEL" "$@" --epochs 1 $LIMITS --out "$TMP/a.st" >"$TMP/train.out" 2>"$TMP/train.err"
status=$?
cat "$TMP/train.out" "$TMP/train.err"
if [ $status -ne 0 ] && grep -q "no C code generator" "$TMP/train.err"; then
    echo "SKIP: this netc cannot generate C yet"
    exit 77
fi
[ $status -eq 0 ] || fail "netc train exited $status"
acc=$(accuracy "$TMP/train.out")
[ -n "$acc" ] || fail "no test accuracy printed"
echo "trained 1 epoch in $(( $(date +%s) - start ))s: test accuracy $acc% (need >= $MIN%)"
awk -v a="$acc" -v m="$MIN" 'BEGIN { exit !(a + 0 >= m + 0) }' || fail "accuracy $acc% < $MIN%"

# 2. eval gives the same number; with the C backend (the JIT caches nothing)
#    the second build of the model came from the cache
"$NETC" eval "$MODEL" "$@" $LIMITS --weights "$TMP/a.st" >"$TMP/eval.out" 2>&1 \
    || { cat "$TMP/eval.out"; fail "netc eval failed"; }
cat "$TMP/eval.out"
[ "$(accuracy "$TMP/eval.out")" = "$acc" ] || fail "eval accuracy differs from training's"
if [ -d "$NETC_CACHE_DIR" ]; then
    [ "$(ls "$NETC_CACHE_DIR"/*.so | wc -l)" -eq 1 ] || fail "the cached model was not reused"
fi

# 3. resume continues with epoch 2
"$NETC" train "$MODEL" "$@" --epochs 2 $LIMITS --resume "$TMP/a.st" --out "$TMP/b.st" \
    >"$TMP/resume.out" 2>&1 || { cat "$TMP/resume.out"; fail "--resume failed"; }
cat "$TMP/resume.out"
grep -q '^resuming from .* at step 313$' "$TMP/resume.out" || fail "resume did not start at step 313"
grep -q '^epoch 1/2' "$TMP/resume.out" && fail "resume repeated epoch 1"
grep -q '^epoch 2/2: ' "$TMP/resume.out" || fail "resume did not train epoch 2"
[ -s "$TMP/b.st" ] || fail "no checkpoint after resuming"

# 4. errors: bad data (exit 1), bad checkpoint (exit 1), bad flag (exit 2)
mkdir "$TMP/bad"
printf 'not an idx file' >"$TMP/bad/train-images-idx3-ubyte.gz"
"$NETC" train "$MODEL" "$@" --data "$TMP/bad" >"$TMP/err.out" 2>&1
[ $? -eq 1 ] || { cat "$TMP/err.out"; fail "bad data: expected exit 1"; }
grep -q "train-images-idx3-ubyte.gz" "$TMP/err.out" || fail "bad data: message names no file"
head -c 100 "$TMP/a.st" >"$TMP/truncated.st"
"$NETC" eval "$MODEL" "$@" $LIMITS --weights "$TMP/truncated.st" >"$TMP/err.out" 2>&1
[ $? -eq 1 ] || { cat "$TMP/err.out"; fail "truncated checkpoint: expected exit 1"; }
"$NETC" train "$MODEL" "$@" --epochs zero >"$TMP/err.out" 2>&1
[ $? -eq 2 ] || fail "bad flag: expected exit 2"

# 5. SIGINT after the first checkpoint: exit 130, the checkpoint still loads
"$NETC" train "$MODEL" "$@" --epochs 1000 --limit-train 2000 --limit-test 100 \
    --out "$TMP/c.st" >"$TMP/int.out" 2>&1 &
pid=$!
i=0
while [ ! -s "$TMP/c.st" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
kill -INT $pid
wait $pid
status=$?
[ $status -eq 130 ] || { cat "$TMP/int.out"; fail "SIGINT: expected exit 130, got $status"; }
grep -q "interrupted" "$TMP/int.out" || fail "SIGINT: no message"
"$NETC" eval "$MODEL" "$@" --limit-test 100 --weights "$TMP/c.st" >/dev/null 2>&1 \
    || fail "the checkpoint left by an interrupted run does not load"
echo "PASS"
