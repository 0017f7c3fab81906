#!/bin/sh
# kill_resume.sh - crash-safe resume: SIGKILL at random moments, resume,
# and the final checkpoint is bitwise identical to an uninterrupted run.
#
# usage: kill_resume.sh NETC ROOT [KILLS]        (default 20 kills)
#
# tests/e2e/tiny.net (parameters, Adam moments, batchnorm statistics,
# dropout keyed by the step, a step schedule) trains 4 epochs on 640
# images, saving after every step (--checkpoint-every 1) so kills land in
# saves too. Reference: one uninterrupted run (twice: they must agree).
# Then until KILLS kills: start `netc train` (from scratch, or --resume the
# checkpoint when there is one), kill -9 it after a random delay in
# [0, 1.3 x the reference's duration), check that the checkpoint (if any)
# still loads with `netc eval`. A run that ends before its kill must have
# written exactly the reference's bytes (parameters, optimizer state,
# statistics, step, metadata), and the next cycle starts from scratch; the
# last cycle is resumed to the end and compared too. Leftover
# NAME.tmp.PID files count the kills that hit a save; they are left in
# place, and the next save removes them (their writers are dead): after
# the final resumed run none may remain.
set -u
NETC=$1 ROOT=$2 KILLS=${3:-20}
TMP=$(mktemp -d /tmp/netc-kill-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
export NETC_CACHE_DIR="$TMP/cache"
MODEL=$ROOT/tests/e2e/tiny.net
FLAGS="--backend cc --limit-train 640 --limit-test 64 --epochs 4 --checkpoint-every 1 --threads 1"
fail() { echo "FAIL: $*"; exit 1; }
now_ms() { date +%s%3N; }

t0=$(now_ms)
"$NETC" train "$MODEL" $FLAGS --out "$TMP/ref.st" >"$TMP/ref.out" 2>&1 \
    || { cat "$TMP/ref.out"; fail "the reference run failed"; }
t1=$(now_ms)
"$NETC" train "$MODEL" $FLAGS --out "$TMP/ref2.st" >/dev/null 2>&1 || fail "second reference run"
t2=$(now_ms)
cmp -s "$TMP/ref.st" "$TMP/ref2.st" || fail "two uninterrupted runs differ"
span=$(( (t2 - t1) * 13 / 10 ))       # the cached run's duration, x 1.3
[ "$span" -ge 50 ] || span=50
echo "reference: $(sha256sum < "$TMP/ref.st" | cut -c1-16) (first run $((t1 - t0)) ms, cached $((t2 - t1)) ms)"

rm -rf "$NETC_CACHE_DIR"               # the first kills may also hit the compiler cache
ck=$TMP/run.st
killed=0 cycles=0 midsave=0 tries=0
# A run that ends before its kill closes a cycle: its checkpoint must equal
# the reference; then the next cycle starts from scratch, so every one of
# the KILLS lands in a run that still has work to do.
while [ $killed -lt "$KILLS" ]; do
    tries=$((tries + 1))
    [ $tries -le $((KILLS * 4 + 20)) ] || fail "only $killed kills in $tries tries"
    resume=
    [ -f "$ck" ] && resume="--resume $ck"
    delay=$(( $(od -An -N4 -tu4 /dev/urandom) % span ))
    "$NETC" train "$MODEL" $FLAGS $resume --out "$ck" >"$TMP/run.out" 2>&1 &
    pid=$!
    sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
    if kill -9 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null
        killed=$((killed + 1))
        if [ -f "$ck" ]; then
            "$NETC" eval "$MODEL" --backend cc --limit-test 64 --weights "$ck" >"$TMP/eval.out" 2>&1 \
                || { cat "$TMP/eval.out"; fail "kill $killed (after ${delay} ms) left a checkpoint that does not load"; }
        fi
    else
        wait "$pid" || { cat "$TMP/run.out"; fail "an unkilled run failed"; }
        cmp -s "$ck" "$TMP/ref.st" || fail "cycle $((cycles + 1)): the resumed run's checkpoint differs from the uninterrupted run's"
        cycles=$((cycles + 1))
        rm -f "$ck"
    fi
    for f in $(ls "$TMP" | grep '^run\.st\.tmp\.'); do
        grep -qxF "$f" "$TMP/seen" 2>/dev/null || { echo "$f" >>"$TMP/seen"; midsave=$((midsave + 1)); }
    done
done
resume=
[ -f "$ck" ] && resume="--resume $ck"
"$NETC" train "$MODEL" $FLAGS $resume --out "$ck" >"$TMP/run.out" 2>&1 \
    || { cat "$TMP/run.out"; fail "the final resume failed"; }
cmp -s "$ck" "$TMP/ref.st" || fail "the resumed run's checkpoint differs from the uninterrupted run's"
cycles=$((cycles + 1))
left=$(ls "$TMP" | grep '^run\.st\.tmp\.' || true)
[ -z "$left" ] || fail "temporary files of killed saves left after the resumed run: $left"
echo "$killed SIGKILLs ($midsave during a save, their temporaries removed by a later save) over $cycles complete runs, each resumed to the end"
echo "PASS: every run's final checkpoint is bitwise identical to the uninterrupted run ($(sha256sum < "$ck" | cut -c1-16))"
