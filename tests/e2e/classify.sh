#!/bin/sh
# classify.sh NETC SOURCE_ROOT RUNTIME_LIBDIR - the user's path of
# docs/generated-api.md: generate mlp.c/mlp.h with netc, train a checkpoint,
# compile docs/examples/classify.c against the generated code and libnetrt
# (nothing else), run it, and require the accuracy `netc eval` reports for
# the same checkpoint and test images.
set -u
NETC=$1 ROOT=$2 LIBDIR=$3
TMP=$(mktemp -d /tmp/netc-classify-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
export NETC_CACHE_DIR="$TMP/cache"
fail() { echo "FAIL: $*"; exit 1; }
MODEL=$ROOT/dsl-examples/mlp.net

"$NETC" "$MODEL" -o "$TMP/mlp.c" || fail "netc could not generate mlp.c"
[ -f "$TMP/mlp.h" ] || fail "no mlp.h next to mlp.c"
"$NETC" train "$MODEL" --epochs 1 --limit-train 10000 --limit-test 1000 \
    --out "$TMP/mlp.safetensors" >"$TMP/train.out" 2>&1 || { cat "$TMP/train.out"; fail "train"; }
"$NETC" eval "$MODEL" --weights "$TMP/mlp.safetensors" --limit-test 1000 >"$TMP/eval.out" 2>&1 \
    || { cat "$TMP/eval.out"; fail "eval"; }
want=$(grep -o 'test accuracy: [A-Za-z_0-9]* [0-9.]*%' "$TMP/eval.out" | sed 's/.* \([0-9.]*\)%/\1/')

${CC:-cc} -std=c11 -O2 -Wall -Wextra -Wpedantic -Werror -fopenmp -DMODEL_MLP \
    -I "$ROOT/runtime" -I "$TMP" "$ROOT/docs/examples/classify.c" "$TMP/mlp.c" \
    -L "$LIBDIR" -Wl,-rpath,"$LIBDIR" -lnetrt -lm -o "$TMP/classify" || fail "classify.c does not build"
"$TMP/classify" "$TMP/mlp.safetensors" 1000 >"$TMP/classify.out" || { cat "$TMP/classify.out"; fail "classify"; }
cat "$TMP/classify.out"
got=$(sed -n 's/^accuracy on 1000 test images: \([0-9.]*\)%$/\1/p' "$TMP/classify.out")
[ -n "$got" ] || fail "classify printed no accuracy"
[ "$got" = "$want" ] || fail "classify says $got%, netc eval says $want%"
echo "classify: $got% = netc eval's $want% on the same 1000 images"
