#!/bin/sh
# ablation.sh - the regularization ablation of docs/regularization.md.
#
#   bench/ablation.sh [EPOCHS [OUTDIR [VARIANT ...]]]
#
# Trains one small residual network on Fashion-MNIST (two residual blocks,
# 8 and 16 channels, global average pooling, dense 64, dense 10; SGD with
# Nesterov momentum 0.9, lr 0.05, cosine schedule, batch 64, seed 1) with
# no regularization, then each technique alone, then a combination, all
# with the same epochs (default 2) and seed. For each variant it writes
# OUTDIR/VARIANT.net and OUTDIR/VARIANT.log and prints one table row:
#   | variant | what changes | test accuracy | training img/s |
# img/s is netc train's own figure for the last epoch (evaluation and
# checkpointing excluded). Environment: NETC (default build/compiler/netc),
# NETC_THREADS (default: netc's default, all cores).
# Run from the source root. Each run takes one to two minutes per epoch on
# 2 shared cores; everything is deterministic for a given seed.
set -u
epochs=${1:-2}
out=${2:-bench/ablation-out}
[ $# -ge 2 ] && shift 2 || shift $#
netc=${NETC:-build/compiler/netc}
threads=${NETC_THREADS:+--threads $NETC_THREADS}
mkdir -p "$out" || exit 1

# The base network; @X@ are the places a technique goes (empty: none).
template() {
    cat <<'EOF'
model abl;
input  image [1, 28, 28];
target label classes(10);
preprocess standardize;
default init kaiming;

block res(f) {
  b = in -> conv(f, 3, pad=1) -> batchnorm -> relu
         -> conv(f, 3, pad=1) -> batchnorm@GAMMA@@DROP_PATH@;
  out = relu(in + b);
}

logits = image@NOISE@
  -> conv(8, 3, pad=1)  -> batchnorm -> relu -> res(8)  -> @POOL@    # 8 x 14 x 14
  -> conv(16, 3, pad=1) -> batchnorm -> relu -> res(16) -> @POOL@    # 16 x 7 x 7
  -> global_avgpool -> flatten
  -> dense(64@DROPCONNECT@) -> relu@DROPOUT@
  -> dense(10);

loss cross_entropy(logits, label);

train {
  batch 64;
  seed 1;
  optimizer sgd(lr=0.05, momentum=0.9, nesterov=true);
  schedule cosine;
@TRAIN@}
EOF
}

# variant NAME: the substitutions (sed script) and a description.
subst() {
    gamma= dp= noise= pool='maxpool(2)' dc= dropout= train=
    case $1 in
    none) desc='no regularization' ;;
    dropout) dropout=' -> dropout(0.3)'; desc='dropout(0.3) after dense(64)' ;;
    dropconnect) dc=', dropconnect=0.3'; desc='dense(64, dropconnect=0.3)' ;;
    drop_path) dp=' -> drop_path(0.1)'; desc='drop_path(0.1) on both residual branches' ;;
    gaussian_noise) noise=' -> gaussian_noise(0.1)'; desc='gaussian_noise(0.1) on the input' ;;
    l2) train='  regularize l2(5e-4);\n'; desc='regularize l2(5e-4)' ;;
    augment) train='  augment translate(2), flip;\n'; desc='augment translate(2), flip' ;;
    rotate) train='  augment rotate(10);\n'; desc='augment rotate(10)' ;;
    cutout) train='  augment cutout(8);\n'; desc='augment cutout(8)' ;;
    mixup) train='  mix mixup(0.2);\n'; desc='mix mixup(0.2)' ;;
    cutmix) train='  mix cutmix(1.0);\n'; desc='mix cutmix(1.0)' ;;
    fractional_maxpool) pool='fractional_maxpool(1.41)'; desc='fractional_maxpool(1.41) for both pools (28-19-13)' ;;
    zero_init) gamma='(gamma=zeros)'; desc='batchnorm(gamma=zeros) ending each residual branch' ;;
    combo) gamma='(gamma=zeros)' dropout=' -> dropout(0.3)'
           train='  regularize l2(5e-4);\n  augment translate(2), flip;\n'
           desc='zero_init + dropout(0.3) + l2(5e-4) + translate(2), flip' ;;
    *) echo "ablation.sh: unknown variant '$1'" >&2; return 1 ;;
    esac
    # printf, not echo: dash's echo would turn the \n for sed into a newline
    printf '%s\n' "s|@GAMMA@|$gamma|; s|@DROP_PATH@|$dp|; s|@NOISE@|$noise|; s|@POOL@|$pool|g;" \
        "s|@DROPCONNECT@|$dc|; s|@DROPOUT@|$dropout|; s|@TRAIN@|$train|" "#$desc"
}

run() {
    v=$1
    script=$(subst "$v") || return 1
    desc=$(printf '%s\n' "$script" | sed -n 's/^#//p')
    template | sed "$(printf '%s\n' "$script" | grep -v '^#')" >"$out/$v.net"
    # shellcheck disable=SC2086
    "$netc" train "$out/$v.net" --epochs "$epochs" --out "$out/$v.safetensors" $threads \
        >"$out/$v.log" 2>&1
    st=$?
    acc=$(sed -n 's/.*test accuracy: label \([0-9.]*%\).*/\1/p' "$out/$v.log" | tail -1)
    ips=$(sed -n 's/.*loss [0-9.]*, \([0-9]*\) img\/s.*/\1/p' "$out/$v.log" | tail -1)
    [ $st -eq 0 ] || acc="failed (exit $st, $out/$v.log)"
    echo "| $v | $desc | ${acc:-?} | ${ips:-?} |"
}

[ $# -gt 0 ] || set -- none dropout dropconnect drop_path gaussian_noise l2 augment rotate cutout \
    mixup cutmix fractional_maxpool zero_init combo
echo "ablation: $epochs epochs, seed 1, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores"
echo "| variant | what changes | test accuracy | training img/s |"
echo "| --- | --- | --- | --- |"
for v in "$@"; do
    run "$v"
done
