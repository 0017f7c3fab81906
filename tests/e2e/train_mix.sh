#!/bin/sh
# train_mix.sh - netc train with mixup and with cutmix, end to end.
#
# usage: train_mix.sh NETC SRCDIR
# For tests/e2e/mixup.net (mixup, zca, gaussian_noise, dense dropconnect,
# drop_path on an MLP) and tests/e2e/cutmix.net (cutmix, conv dropconnect,
# fractional max pooling): one epoch on the first 2000 training and 500
# test images must finish, print a test accuracy of at least 45% (chance is
# 10%), and `netc eval` on the checkpoint must print the same accuracy
# (inference is deterministic: no mixing, masks or noise, fixed pooling
# regions; zca's statistics come from the checkpoint). Skipped (77)
# without the Fashion-MNIST data.
set -u
NETC=$1 SRC=$2
data=${NETC_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
[ -f "$data/train-images-idx3-ubyte.gz" ] || { echo "SKIP: no Fashion-MNIST in $data"; exit 77; }
TMP=$(mktemp -d /tmp/netc-mix-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
export NETC_CACHE_DIR="$TMP/cache"
LIMITS="--limit-train 2000 --limit-test 500"
fails=0

accuracy() {
    grep -o 'test accuracy: [A-Za-z_0-9]* [0-9.]*%' "$1" | tail -n 1 | sed 's/.* \([0-9.]*\)%/\1/'
}

for x in mixup cutmix; do
    model=$SRC/tests/e2e/$x.net
    if ! "$NETC" train "$model" --epochs 1 $LIMITS --out "$TMP/$x.st" >"$TMP/$x.out" 2>&1; then
        cat "$TMP/$x.out"; echo "FAIL $x: netc train failed"; fails=$((fails + 1)); continue
    fi
    acc=$(accuracy "$TMP/$x.out")
    "$NETC" eval "$model" $LIMITS --weights "$TMP/$x.st" >"$TMP/$x.eval" 2>&1
    again=$(accuracy "$TMP/$x.eval")
    if [ -z "$acc" ] || ! awk -v a="$acc" 'BEGIN { exit !(a + 0 >= 45) }'; then
        cat "$TMP/$x.out"; echo "FAIL $x: test accuracy '$acc' < 45%"; fails=$((fails + 1))
    elif [ "$again" != "$acc" ]; then
        cat "$TMP/$x.eval"; echo "FAIL $x: eval says '$again', training said $acc%"; fails=$((fails + 1))
    else
        echo "ok $x: $(tail -n 2 "$TMP/$x.out" | head -n 1)"
    fi
done
[ $fails -eq 0 ]
