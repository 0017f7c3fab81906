#!/bin/sh
# update-golden.sh - regenerate generated/ from dsl-examples/ with netc.
#
#   scripts/update-golden.sh [BUILD_DIR]     (default: build)
#
# Writes generated/X.c and generated/X.h for every dsl-examples/X.net, or
# generated/X.unsupported (netc's diagnostics) for a model the C backend
# refuses, and removes goldens whose example is gone. Review the diff like
# code before committing it: tests/golden/run_golden.sh compares against it.
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
netc=$build/compiler/netc
[ -x "$netc" ] || { echo "update-golden: no $netc (build first: ninja -C $build)" >&2; exit 2; }
mkdir -p generated
rm -f generated/*.c generated/*.h generated/*.unsupported
for f in dsl-examples/*.net; do
    x=$(basename "$f" .net)
    if "$netc" "$f" -o "generated/$x.c" 2>"generated/$x.unsupported"; then
        rm -f "generated/$x.unsupported"
        echo "generated/$x.c, generated/$x.h"
    else
        st=$?
        if [ $st -ne 1 ]; then
            echo "update-golden: netc failed on $f (exit $st):" >&2
            cat "generated/$x.unsupported" >&2
            exit 1
        fi
        rm -f "generated/$x.c" "generated/$x.h"
        echo "generated/$x.unsupported: $(head -1 "generated/$x.unsupported")"
    fi
done
