#!/bin/sh
# preview_check.sh NETC SOURCE_ROOT LIBDIR - `netc preview` shows what the
# generated train step feeds the network, bit for bit.
#
# For each model of tests/cli/preview/*.net and a few (seed, step) pairs:
#   1. `netc preview --raw` writes the batch it computed (after augmentation,
#      preprocessing, cutout/noise and mixing) as float32;
#   2. `netc MODEL.net -o m.c` generates the model, and a driver that
#      #includes m.c runs the generated train step's own input steps
#      (tNN_augment_geometric, tNN_preprocess, tNN_augment_post, tNN_mixup /
#      tNN_cutmix, found in m.c) on the same samples (Philox shuffle of the
#      epoch, pixels / 255) after the model's own fit_preprocess, and writes
#      the input buffer they leave (the first layer's input);
#   3. the two files must be identical (cmp), and differ from the plain
#      preprocessed batch (the augmentation did something).
# A model whose first line is '# xfail: WHY' is a known difference of the
# generated code (WHY says where); its mismatches are reported as XFAIL,
# and an XPASS line says when the marker can go.
# Needs the Fashion-MNIST training images (skipped, exit 77, without them)
# and a C compiler.
set -u
netc=$1 root=$2 lib=$3
case $netc in /*) ;; *) netc=$PWD/$netc ;; esac
case $lib in /*) ;; *) lib=$PWD/$lib ;; esac
data=${NETC_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
images=$data/train-images-idx3-ubyte.gz
[ -f "$images" ] || { echo "SKIP: no $images"; exit 77; }
cc=${CC:-cc}
command -v "$cc" >/dev/null 2>&1 || { echo "SKIP: no C compiler"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/netc-preview.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }

# driver.c for the generated m.c: the input steps in m.c's order, the
# input buffer's offset from the preprocess step's output declaration.
make_driver() {
    steps=$(grep -o '^static void t[0-9]*_\(augment_geometric\|preprocess\|augment_post\|mixup\|cutmix\)(' "$1/m.c" \
            | sed 's/^static void //; s/($//')
    pre=$(echo "$steps" | grep '_preprocess$')
    off=$(sed -n "/^static void $pre(/,/^}/p" "$1/m.c" | sed -n 's/^ *float \*y = A(\([0-9]*\));.*/\1/p')
    ppre=$(grep -o '^static void p[0-9]*_preprocess(' "$1/m.c" | sed 's/^static void //; s/($//')
    poff=$(sed -n "/^static void $ppre(/,/^}/p" "$1/m.c" | sed -n 's/^ *float \*y = A(\([0-9]*\));.*/\1/p')
    [ -n "$pre" ] && [ -n "$off" ] && [ -n "$ppre" ] && [ -n "$poff" ] || return 1
    name=$(sed -n 's/^model \([A-Za-z_0-9]*\);.*/\1/p' "$2")
    {
        echo '#include "m.c"'
        echo 'static void input_steps(NrtModel *m, int n)'
        echo '{'
        for s in $steps; do echo "    $s(m, n);"; done
        echo '}'
        echo "static void plain_steps(NrtModel *m, int n) { $ppre(m, n); }"
        echo "#define PLAIN_OFFSET $poff"
        echo "#define MODEL_CREATE ${name}_create"
        echo "#define MODEL_FIT ${name}_fit_preprocess"
        echo "#define MODEL_BATCH ${name}_info()->batch"
        echo "#define INPUT_OFFSET $off"
        cat "$root/tests/cli/preview_driver.c"
    } >"$1/driver.c"
}

check_model() {
    net=$1 x=$(basename "$1" .net)
    out=$tmp/$x
    mkdir -p "$out"
    if ! "$netc" "$net" -o "$out/m.c" >"$out/emit.log" 2>&1; then
        bad "$x" "netc cannot generate C"; sed 's/^/    | /' "$out/emit.log" | head -5; return
    fi
    if ! make_driver "$out" "$net"; then bad "$x" "no preprocess step in the generated C"; return; fi
    if ! $cc -std=c11 -O1 -fopenmp -I "$root/runtime" -I "$out" "$out/driver.c" -L "$lib" -lnetrt \
            -lm -Wl,-rpath,"$lib" -o "$out/driver" >"$out/cc.log" 2>&1; then
        bad "$x" "the driver does not compile"; sed 's/^/    | /' "$out/cc.log" | head -10; return
    fi
    for ss in "1 0" "7 3" "5 1880"; do
        set -- $ss
        if ! "$netc" preview "$net" -o "$out/p.png" --seed "$1" --step "$2" \
                --raw "$out/preview.f32" >"$out/preview.log" 2>&1; then
            bad "$x" "netc preview failed (seed $1, step $2)"; cat "$out/preview.log"; continue
        fi
        if ! "$out/driver" "$images" "$1" "$2" "$out/gen.f32" "$out/plain.f32" >"$out/run.log" 2>&1; then
            bad "$x" "driver failed"; cat "$out/run.log"; continue
        fi
        xfail=$(sed -n '1s/^# xfail: //p' "$net")
        if ! cmp -s "$out/preview.f32" "$out/gen.f32" && [ -n "$xfail" ]; then
            echo "XFAIL $x (seed $1 step $2): $xfail"
        elif ! cmp -s "$out/preview.f32" "$out/gen.f32"; then
            bad "$x" "seed $1 step $2: the preview's batch differs from the generated step's input"
            cmp "$out/preview.f32" "$out/gen.f32" | head -2
        elif cmp -s "$out/gen.f32" "$out/plain.f32"; then
            bad "$x" "seed $1 step $2: augmentation changed nothing"
        else
            [ -z "$xfail" ] || echo "XPASS $x (seed $1 step $2): remove its xfail line"
            pass=$((pass + 1))
        fi
    done
}

for net in "$root"/tests/cli/preview/*.net; do
    check_model "$net"
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
