#!/bin/sh
# run_cli.sh NETC SOURCE_ROOT - the driver's contract: exit codes (0 ok,
# 1 input errors, 2 usage or unreadable file), --help/--version, the
# `netc check` table (its figures checked against hand-computed ones), and
# `netc graph` output (valid DOT when Graphviz is installed).
set -u
netc=$1
root=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

# expect STATUS DESCRIPTION COMMAND...: runs COMMAND, keeps its output in
# $tmp/out and $tmp/err, and checks the exit status.
expect() {
    want=$1 what=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" -eq "$want" ]; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL $what: exit $got, expected $want"
        sed 's/^/    | /' "$tmp/err" | head -5
    fi
}

# contains FILE TEXT DESCRIPTION
contains() {
    if grep -qF -- "$2" "$1"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL $3: '$2' not in output"
    fi
}

ex=$root/dsl-examples

expect 0 "--help" "$netc" --help
contains "$tmp/out" "usage: netc" "--help text"
expect 0 "--version" "$netc" --version
contains "$tmp/out" "netc 0." "--version text"
expect 2 "no arguments" "$netc"
expect 2 "unknown option" "$netc" check --frobnicate "$ex/mlp.net"
contains "$tmp/err" "unknown option '--frobnicate'" "unknown option message"
expect 2 "missing file" "$netc" check "$tmp/none.net"
contains "$tmp/err" "cannot open" "missing file message"
expect 2 "a directory as the model" "$netc" check "$tmp"
expect 2 "two model files" "$netc" check "$ex/mlp.net" "$ex/lenet.net"
expect 2 "-o without a file" "$netc" graph "$ex/mlp.net" -o
expect 2 "bad color mode" "$netc" check --color=sometimes "$ex/mlp.net"
expect 2 "--ir with graph" "$netc" graph --ir "$ex/mlp.net"
expect 2 "C output without -o" "$netc" "$ex/mlp.net"

# The LeNet-BN table: PyTorch's lenet_bn has 61,750 trainable parameters
# (conv 156 + bn 12 + conv 2,416 + bn 32 + dense 48,120 + 10,164 + 850).
expect 0 "check lenet_bn" "$netc" check "$ex/lenet_bn.net"
contains "$tmp/out" "parameters:              61750" "lenet_bn parameter total"
contains "$tmp/out" "[6, 28, 28]" "conv1 output shape"
contains "$tmp/out" "[16, 5, 5]" "second pool output shape"
contains "$tmp/out" "forward FLOPs / sample" "FLOPs total"
contains "$tmp/out" "activations / sample" "activation memory"
# The planned arena is the one the generated code allocates (ARENA_FLOATS
# of generated/lenet_bn.c, 4 bytes each), and reuse makes it smaller.
arena=$(sed -n 's/^#define ARENA_FLOATS \([0-9]*\).*/\1/p' "$root/generated/lenet_bn.c")
contains "$tmp/out" "planned arena, batch 64  4.2 MiB ($((arena * 4)) bytes; 9.9 MiB without buffer reuse)" \
    "lenet_bn planned arena"
contains "$tmp/out" "planned parameter block:" "lenet_bn parameter block"
# --no-fuse: without the fusion passes every relu and batchnorm has a
# buffer of its own (docs/architecture.md, "Fusion"); unknown passes are usage errors.
expect 0 "check --no-fuse" "$netc" check --no-fuse "$ex/lenet_bn.net"
contains "$tmp/out" "planned arena, batch 64  6.8 MiB (7125120 bytes; 16.2 MiB without buffer reuse)" \
    "lenet_bn planned arena without fusion"
expect 0 "--no-fuse=LIST" "$netc" "$ex/lenet_bn.net" --no-fuse=bnfold,elementwise -o "$tmp/nofold.c"
grep -q nrt_batchnorm_fold "$tmp/nofold.c" && { fail=$((fail + 1)); echo "FAIL: --no-fuse=bnfold folded"; } \
    || pass=$((pass + 1))
grep -q "NRT_ACT_RELU" "$tmp/nofold.c" && pass=$((pass + 1)) \
    || { fail=$((fail + 1)); echo "FAIL: --no-fuse=bnfold,elementwise turned the epilogues off too"; }
# update: the penalties are steps of their own only without it.
expect 0 "--no-fuse=update" "$netc" "$ex/mlp.net" --no-fuse=update -o "$tmp/nofuseupd.c"
grep -q "nrt_penalty_grad" "$tmp/nofuseupd.c" && ! grep -q "nrt_penalty_grad" "$root/generated/mlp.c" \
    && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: --no-fuse=update: penalty steps"; }
expect 2 "--no-fuse=unknown" "$netc" check --no-fuse=bnfold,nope "$ex/lenet_bn.net"
contains "$tmp/err" "unknown fusion pass in '--no-fuse=bnfold,nope'" "--no-fuse message"
# mlp: 784*512+512 + 512*256+256 + 256*10+10 = 535,818.
expect 0 "check mlp" "$netc" check "$ex/mlp.net"
contains "$tmp/out" "parameters:              535818" "mlp parameter total"

# Input errors exit 1 and say where.
printf 'model m;\ninput x [4];\nh = x -> dense(0);\n' >"$tmp/bad.net"
expect 1 "bad model" "$netc" check "$tmp/bad.net"
contains "$tmp/err" "bad.net:3:" "error location"
expect 1 "bad model, graph" "$netc" graph "$tmp/bad.net" -o "$tmp/bad.dot"
[ ! -e "$tmp/bad.dot" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: graph wrote a file for a bad model"; }

# netc preview: usage and file errors (its pixels: tests/cli/preview_check.sh).
pv=$root/tests/cli/preview/augment.net
expect 0 "preview --help" "$netc" preview --help
contains "$tmp/out" "usage: netc preview" "preview usage text"
expect 2 "preview without -o" "$netc" preview "$pv"
contains "$tmp/err" "preview needs -o FILE.png" "preview -o message"
expect 2 "preview bad --step" "$netc" preview "$pv" -o "$tmp/p.png" --step -3
contains "$tmp/err" "--step needs a non-negative integer" "preview --step message"
expect 2 "preview --count 0" "$netc" preview "$pv" -o "$tmp/p.png" --count 0
expect 2 "preview unknown flag" "$netc" preview "$pv" -o "$tmp/p.png" --frobnicate
expect 2 "preview missing model" "$netc" preview "$tmp/none.net" -o "$tmp/p.png"
expect 1 "preview bad model" "$netc" preview "$tmp/bad.net" -o "$tmp/p.png"
contains "$tmp/err" "bad.net:3:" "preview error location"
expect 1 "preview of a non-image input" "$netc" preview "$ex/mlp.net" -o "$tmp/p.png"
contains "$tmp/err" "preview shows images" "preview non-image message"
expect 2 "preview missing data" "$netc" preview "$pv" -o "$tmp/p.png" --data "$tmp/nodata"
contains "$tmp/err" "nodata/train-images-idx3-ubyte.gz" "preview missing data names the file"
if [ -f "${NETC_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}/train-images-idx3-ubyte.gz" ]; then
    expect 2 "preview unwritable -o" "$netc" preview "$pv" -o "$tmp/no/such/dir/p.png"
    contains "$tmp/err" "no/such/dir" "preview unwritable message names the path"
    expect 0 "preview" "$netc" preview "$pv" -o "$tmp/p.png" --count 9 --step 2
    contains "$tmp/out" "step 2 (epoch 1, batch 2)" "preview summary"
    [ "$(head -c 8 "$tmp/p.png" | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ] \
        && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: preview did not write a PNG"; }
fi
[ ! -e "$tmp/p.png.tmp" ] || { fail=$((fail + 1)); echo "FAIL: preview left a temp file"; }

# netc train --elapsed: every epoch line ends with "elapsed A s, training B s",
# A never decreasing from epoch to epoch and 0 <= B <= A (the wall time since netc
# started includes compiling, loading, evaluation and checkpoints).
expect 2 "eval --elapsed" "$netc" eval "$root/tests/e2e/tiny.net" --weights "$tmp/w" --elapsed
contains "$tmp/err" "--elapsed go with 'netc train'" "eval --elapsed message"
if [ -f "${NETC_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}/train-images-idx3-ubyte.gz" ]; then
    expect 0 "train --elapsed" "$netc" train "$root/tests/e2e/tiny.net" --epochs 3 \
        --limit-train 256 --limit-test 64 --elapsed --out "$tmp/tiny.safetensors"
    contains "$tmp/out" "epoch 3/3: loss" "train --elapsed epoch lines"
    sed -n 's/^epoch .*; elapsed \([0-9]*\.[0-9][0-9]\)s, training \([0-9]*\.[0-9][0-9]\)s$/\1 \2/p' \
        "$tmp/out" >"$tmp/elapsed"
    if awk '{ n++; if ($1 < last || $2 < lastt || $2 > $1) bad = 1; last = $1; lastt = $2 }
            END { exit n == 3 && !bad ? 0 : 1 }' "$tmp/elapsed"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1)); echo "FAIL: train --elapsed lines"; sed 's/^/    | /' "$tmp/out"
    fi
fi

# Graph output, for every example; checked by Graphviz when it is there.
for f in "$ex"/*.net; do
    name=$(basename "$f" .net)
    expect 0 "graph $name" "$netc" graph "$f" -o "$tmp/$name.dot"
    contains "$tmp/$name.dot" "digraph \"" "DOT header of $name"
    if command -v dot >/dev/null 2>&1; then
        expect 0 "dot accepts $name" dot -Tsvg "$tmp/$name.dot" -o "$tmp/$name.svg"
    fi
done
contains "$tmp/resnet.dot" "subgraph cluster_" "blocks drawn as clusters"
expect 2 "graph to an unwritable path" "$netc" graph "$ex/mlp.net" -o "$tmp/no/such/dir/m.dot"

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
