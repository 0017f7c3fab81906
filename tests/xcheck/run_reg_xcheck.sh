#!/bin/sh
# run_reg_xcheck.sh LIBNETRT SRCROOT WORKDIR - libnetrt's fractional max
# pooling (forward, indices, backward), drop_path and the mixup loss against
# PyTorch / torchvision (reg_xcheck.py says what is compared and why).
# Exit: 0 agree, 1 mismatch or build failure, 77 no torch.
set -u
libnetrt=$1 src=$2 work=$3
python=/usr/bin/python3
[ -x "$python" ] || python=python3
if ! "$python" -c 'import torch, numpy' 2>/dev/null; then
    echo "reg_xcheck: SKIP: PyTorch is not importable by $python"
    exit 77
fi
libdir=$(cd "$(dirname "$libnetrt")" && pwd)
mkdir -p "$work" || exit 1
if ! ${CC:-cc} -std=c11 -O1 -I "$src/runtime" "$src/tests/xcheck/reg_driver.c" -L "$libdir" \
        -lnetrt -lm -Wl,-rpath,"$libdir" -o "$work/reg_driver"; then
    echo "reg_xcheck: cannot build reg_driver.c"
    exit 1
fi
exec "$python" "$src/tests/xcheck/reg_xcheck.py" "$work/reg_driver" "$work"
