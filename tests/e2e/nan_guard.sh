#!/bin/sh
# nan_guard.sh - the numeric guard of netc train (docs/training.md).
#
# usage: nan_guard.sh NETC ROOT
#
# NETC_TEST_POISON (the driver's test hook) writes a NaN or Inf into a
# parameter or the input just before a chosen step of tests/e2e/tiny.net:
#   - a NaN parameter stops the run at that step, naming the step and the
#     parameter, exit 1; the last checkpoint is the one from before (step 10)
#     and holds only finite numbers;
#   - an Inf input gives non-finite gradients: the message names the step
#     and the gradient's parameter (linear.net), or the batchnorm running
#     mean it spoils first (tiny.net);
#   - --on-nan rollback reloads the last checkpoint and continues: the
#     one-off fault is gone, so the run ends bitwise identical to a clean one;
#   - rollback with no checkpoint yet stops with its own message;
#   - only the loss non-finite (loss_guard.net, a target of 1e30 under mse:
#     the float loss overflows, gradients and parameters stay finite): the
#     guard stops before the update saying it is the loss, rollback rolls
#     back, on both backends;
#   - --resume with another --seed or training-set size is refused.
set -u
NETC=$1 ROOT=$2
TMP=$(mktemp -d /tmp/netc-nan-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
export NETC_CACHE_DIR="$TMP/cache"
MODEL=$ROOT/tests/e2e/tiny.net
FLAGS="--backend cc --limit-train 320 --limit-test 64 --epochs 2 --checkpoint-every 5 --threads 1"
PY=/usr/bin/python3
fail() { echo "FAIL: $*"; exit 1; }

# run NAME EXPECTED_STATUS [env assignments...] -- netc train flags
run() {
    name=$1 want=$2
    shift 2
    env "$@" >"$TMP/$name.out" 2>&1
    st=$?
    cat "$TMP/$name.out"
    [ $st -eq "$want" ] || fail "$name: exit $st, expected $want"
}
has() { grep -q -- "$2" "$TMP/$1.out" || fail "$1: no '$2' in the output"; }

# The checkpoint's step and whether every float in it is finite.
ckinfo() {
    "$PY" - "$1" <<'PY'
import json, math, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
data = b[8 + n:]
ok = all(math.isfinite(v) for v in struct.unpack("<%df" % (len(data) // 4), data))
print(h["__metadata__"]["step"], "finite" if ok else "NOT-FINITE")
PY
}

run clean 0 "$NETC" train "$MODEL" $FLAGS --out "$TMP/clean.st"

run param 1 NETC_TEST_POISON=13:dense1.weight:nan "$NETC" train "$MODEL" $FLAGS --out "$TMP/p.st"
has param "epoch 2, step 13: parameter 'dense1.weight' is nan at element 0 (before the update)"
has param "training stopped; the last checkpoint ($TMP/p.st) is unchanged"
[ "$(ckinfo "$TMP/p.st")" = "10 finite" ] || fail "param: checkpoint is $(ckinfo "$TMP/p.st"), expected '10 finite'"

# (linear.net: without batchnorm, whose running mean would be hit first)
run grad 1 NETC_TEST_POISON=4:input:inf "$NETC" train "$ROOT/tests/e2e/linear.net" $FLAGS \
    --checkpoint-every 2 --out "$TMP/g.st"
has grad "epoch 1, step 4: the gradient of 'dense1.weight' is -*[a-z]* at element [0-9]* (before the update)"
[ "$(ckinfo "$TMP/g.st")" = "2 finite" ] || fail "grad: checkpoint is $(ckinfo "$TMP/g.st"), expected '2 finite'"

# (tiny.net: the running mean of batchnorm1 is the first number the NaN input spoils)
run stats 1 NETC_TEST_POISON=7:input:nan "$NETC" train "$MODEL" $FLAGS --out "$TMP/s.st"
has stats "epoch 1, step 7: parameter 'batchnorm1.running_mean' is -*nan"

run rollback 0 NETC_TEST_POISON=13:input:nan "$NETC" train "$MODEL" $FLAGS --on-nan rollback \
    --out "$TMP/r.st"
has rollback "step 13: parameter .batchnorm1.running_mean. is -*nan"
has rollback "rolled back to $TMP/r.st (step 10); continuing"
cmp -s "$TMP/r.st" "$TMP/clean.st" || fail "rollback: the run does not end as the clean run"

# Only the loss goes bad. Without a guard on the float loss this step would
# update with gradients of 1e28 and stop only after it ("training diverged").
LG=$ROOT/tests/e2e/loss_guard.net
run lclean 0 "$NETC" train "$LG" $FLAGS --out "$TMP/lc.st"
run loss 1 NETC_TEST_POISON=13:level:1e30 "$NETC" train "$LG" $FLAGS --out "$TMP/l.st"
has loss "epoch 2, step 13: the loss is inf (before the update)"
[ "$(ckinfo "$TMP/l.st")" = "10 finite" ] || fail "loss: checkpoint is $(ckinfo "$TMP/l.st"), expected '10 finite'"
run lrollback 0 NETC_TEST_POISON=13:level:1e30 "$NETC" train "$LG" $FLAGS --on-nan rollback \
    --out "$TMP/lr.st"
has lrollback "step 13: the loss is inf (before the update)"
has lrollback "rolled back to $TMP/lr.st (step 10); continuing"
cmp -s "$TMP/lr.st" "$TMP/lc.st" || fail "loss rollback: the run does not end as the clean run"

run early 1 NETC_TEST_POISON=3:dense2.bias:-inf "$NETC" train "$MODEL" $FLAGS --on-nan rollback \
    --out "$TMP/e.st"
has early "step 3: parameter 'dense2.bias' is -inf"
has early "no checkpoint to roll back to yet"

# The JIT's step has the same guard as the emitted C (jit_model.c runs it
# between the compiled train and update lists): the same stop, message and
# checkpoint (skipped without LLVM).
JFLAGS=$(echo "$FLAGS" | sed 's/--backend cc/--backend jit/')
if "$NETC" train "$MODEL" $JFLAGS --epochs 1 --out "$TMP/j0.st" >/dev/null 2>&1; then
    run jit 1 NETC_TEST_POISON=13:dense1.weight:nan "$NETC" train "$MODEL" $JFLAGS --out "$TMP/j.st"
    has jit "epoch 2, step 13: parameter 'dense1.weight' is -*nan at element 0 (before the update)"
    [ "$(ckinfo "$TMP/j.st")" = "10 finite" ] || fail "jit: checkpoint is $(ckinfo "$TMP/j.st")"
    run jitrb 0 NETC_TEST_POISON=13:input:nan "$NETC" train "$MODEL" $JFLAGS --on-nan rollback \
        --out "$TMP/jr.st"
    has jitrb "rolled back to $TMP/jr.st (step 10); continuing"
    [ "$(ckinfo "$TMP/jr.st")" = "20 finite" ] || fail "jit rollback: checkpoint is $(ckinfo "$TMP/jr.st")"
    run jitloss 1 NETC_TEST_POISON=13:level:1e30 "$NETC" train "$LG" $JFLAGS --out "$TMP/jl.st"
    has jitloss "epoch 2, step 13: the loss is inf (before the update)"
    [ "$(ckinfo "$TMP/jl.st")" = "10 finite" ] || fail "jit loss: checkpoint is $(ckinfo "$TMP/jl.st")"
    run jitlrb 0 NETC_TEST_POISON=13:level:1e30 "$NETC" train "$LG" $JFLAGS --on-nan rollback \
        --out "$TMP/jlr.st"
    has jitlrb "rolled back to $TMP/jlr.st (step 10); continuing"
    cmp -s "$TMP/jlr.st" "$TMP/lc.st" || fail "jit loss rollback: the run does not end as the clean C run"
else
    echo "(no JIT in this netc: its part skipped)"
fi

# Resuming is continuing the same run: another seed or training set is refused.
run reseed 2 "$NETC" train "$MODEL" $FLAGS --epochs 3 --resume "$TMP/clean.st" --seed 99 --out "$TMP/y.st"
has reseed "--seed 99 but $TMP/clean.st was trained with seed 7"
run relimit 2 "$NETC" train "$MODEL" --backend cc --limit-train 160 --limit-test 64 --epochs 3 \
    --resume "$TMP/clean.st" --out "$TMP/y.st"
has relimit "was trained on 320 examples per epoch, this run has 160"

run badflag 2 "$NETC" train "$MODEL" $FLAGS --on-nan retry --out "$TMP/x.st"
has badflag "--on-nan needs 'stop' or 'rollback', not 'retry'"
echo "PASS"
