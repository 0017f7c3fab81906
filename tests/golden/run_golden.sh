#!/bin/sh
# run_golden.sh - the golden tests of the C backend.
#
#   run_golden.sh NETC SRCDIR LIBDIR [MODEL ...]
#
# For every dsl-examples/*.net (or the MODELs named), from SRCDIR:
#   1. `netc dsl-examples/X.net -o TMP/X.c` and compare TMP/X.c and TMP/X.h
#      byte for byte with generated/X.c and generated/X.h; a model the C
#      backend refuses must exit 1 and print exactly generated/X.unsupported;
#   2. compile X.c with gcc and with clang, -std=c11 -Wall -Wextra -Wpedantic
#      -Werror -fopenmp, against runtime/netrt.h, linked with LIBDIR's
#      libnetrt, together with tests/golden/driver.c;
#   3. run each driver: create/fit/train_step/predict/save/load, loss going
#      down, save -> load identical predictions, 1 vs 2 threads identical;
# then checks the gradients of tests/golden/gradcheck*.net against finite
# differences (tests/golden/gradcheck.c; GOLDEN_ONLY=1 skips them).
# Prints one line per failure and "N passed, N failed"; exits 1 on any
# failure. A compiler that is not installed is skipped, not passed.
# Refresh the goldens with scripts/update-golden.sh (and review the diff).
set -u
netc=$1 src=$2 lib=$3
shift 3
case $netc in /*) ;; *) netc=$PWD/$netc ;; esac
case $lib in /*) ;; *) lib=$PWD/$lib ;; esac
cd "$src" || exit 1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/netc-golden.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0 skip=0
flags="-std=c11 -Wall -Wextra -Wpedantic -Werror -fopenmp -O2"

bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }

one() {
    x=$1
    out=$tmp/$x
    mkdir -p "$out"
    "$netc" "dsl-examples/$x.net" -o "$out/$x.c" >"$out/stdout" 2>"$out/stderr"
    st=$?
    if [ -f "generated/$x.unsupported" ]; then
        if [ $st -ne 1 ]; then bad "$x" "netc exited $st, expected 1 (unsupported)"; return; fi
        if ! cmp -s "$out/stderr" "generated/$x.unsupported"; then
            bad "$x" "diagnostics differ from generated/$x.unsupported:"
            diff "generated/$x.unsupported" "$out/stderr" | head -20
            return
        fi
        pass=$((pass + 1))
        return
    fi
    if [ $st -ne 0 ]; then bad "$x" "netc exited $st"; cat "$out/stderr"; return; fi
    for ext in c h; do
        if ! cmp -s "$out/$x.$ext" "generated/$x.$ext"; then
            bad "$x" "$x.$ext differs from generated/$x.$ext (scripts/update-golden.sh refreshes)"
            diff "generated/$x.$ext" "$out/$x.$ext" | head -20
            return
        fi
    done
    pass=$((pass + 1))
    for cc in gcc clang; do
        if ! command -v $cc >/dev/null 2>&1; then skip=$((skip + 1)); continue; fi
        if ! $cc $flags -I runtime -I "$out" -DMODEL_INFO="${x}_info" tests/golden/driver.c \
                "$out/$x.c" -L "$lib" -lnetrt -lm -Wl,-rpath,"$lib" -o "$out/driver-$cc" \
                >"$out/cc-$cc" 2>&1; then
            bad "$x" "$cc cannot compile the generated code:"
            head -30 "$out/cc-$cc"
            continue
        fi
        pass=$((pass + 1))
        if ! "$out/driver-$cc" "$out" >"$out/run-$cc" 2>&1; then
            bad "$x" "the $cc-built driver failed:"
            cat "$out/run-$cc"
            continue
        fi
        pass=$((pass + 1))
        echo "ok $x ($cc): $(cat "$out/run-$cc")"
    done
}

if [ $# -eq 0 ]; then
    set -- $(ls dsl-examples/*.net | sed 's|dsl-examples/||; s|\.net$||')
fi
for x in "$@"; do one "$x"; done
# The finite-difference checks of generated train_steps: every
# differentiable op, fan-out, both losses (gradcheck.net), every regularizer,
# zca and mixup (gradcheck_reg.net), cutmix (gradcheck_cutmix.net):
# tests/golden/gradcheck.c.
gradcheck() {
    for net in tests/golden/gradcheck*.net; do
        x=$(basename "$net" .net)
        out=$tmp/$x
        mkdir -p "$out"
        if ! "$netc" "$net" -o "$out/${x}_model.c" 2>"$out/stderr"; then
            bad "$x" "netc failed:"; cat "$out/stderr"; continue
        fi
        for cc in gcc clang; do
            if ! command -v $cc >/dev/null 2>&1; then skip=$((skip + 1)); continue; fi
            if ! $cc $flags -I runtime -I "$out" -DMODEL_INFO="${x}_info" tests/golden/gradcheck.c \
                    "$out/${x}_model.c" -L "$lib" -lnetrt -lm -Wl,-rpath,"$lib" \
                    -o "$out/gradcheck-$cc" >"$out/cc-$cc" 2>&1; then
                bad "$x" "$cc cannot compile:"; head -30 "$out/cc-$cc"; continue
            fi
            if "$out/gradcheck-$cc" >"$out/run-$cc" 2>&1; then
                pass=$((pass + 1)); echo "ok $x ($cc): $(tail -1 "$out/run-$cc")"
            else
                bad "$x" "($cc):"; cat "$out/run-$cc"
            fi
        done
    done
}
[ -n "${GOLDEN_ONLY:-}" ] || gradcheck

for g in generated/*.c generated/*.unsupported; do
    [ -e "$g" ] || continue
    b=$(basename "$g"); b=${b%.*}
    [ -f "dsl-examples/$b.net" ] || bad "$b" "$g has no dsl-examples/$b.net (stale golden)"
done
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
