#!/usr/bin/env bash
# scripts/test.sh - build netc every way CI needs and run every test.
#
#   gcc      -Werror, all suites but fuzz (the main build)
#   clang    -Werror, unit and errors suites
#   sanitize gcc with ASan+UBSan (no recovery), unit and errors suites
#   minimal  no LLVM, no OpenMP: unit suite (everything must work without them)
#   fuzz     clang libFuzzer + ASan+UBSan: replays the corpus, fuzzes briefly
#
# Ends with the plain line "N passed, N failed, N skipped" summed over all
# builds (from meson's testlog.json), and exits non-zero on any failure.
# Set NETC_TEST_QUICK=1 to run only the gcc build.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/install-deps.sh || { echo "install-deps failed"; echo "0 passed, 1 failed"; exit 1; }

passed=0 failed=0 skipped=0
failures=()

# tally BUILD_DIR: adds the results of the last `meson test` in BUILD_DIR.
tally() {
    local counts
    counts=$(python3 - "$1/meson-logs/testlog.json" <<'PY'
import json, sys
p = f = s = 0
names = []
try:
    for line in open(sys.argv[1]):
        r = json.loads(line)
        res = r.get("result")
        if res in ("OK", "EXPECTEDFAIL"):
            p += 1
        elif res == "SKIP":
            s += 1
        else:
            f += 1
            names.append(r.get("name", "?"))
except OSError:
    f += 1
    names.append("(no test log)")
print(p, f, s, " ".join(names))
PY
)
    read -r p f s names <<<"$counts"
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    [ "$f" -eq 0 ] || failures+=("$(basename "$1"): $names")
}

# run_build NAME "SUITES" [meson setup args...]; CC comes from the environment.
run_build() {
    local name=$1 suites=$2 dir="build-test-$1"
    shift 2
    echo "==== build: $name ($*)"
    if [ -d "$dir" ]; then
        meson setup --reconfigure "$dir" "$@" >"$dir.setup.log" 2>&1
    else
        meson setup "$dir" "$@" >"$dir.setup.log" 2>&1
    fi || { cat "$dir.setup.log"; failed=$((failed + 1)); failures+=("$name: meson setup"); return; }
    if ! ninja -C "$dir" >"$dir.build.log" 2>&1; then
        tail -n 60 "$dir.build.log"
        failed=$((failed + 1)); failures+=("$name: build"); return
    fi
    local args=()
    for s in $suites; do args+=(--suite "$s"); done
    meson test -C "$dir" --print-errorlogs --num-processes 2 "${args[@]}"
    tally "$dir"
}

run_build gcc "unit errors examples golden" --werror -Dbuildtype=debugoptimized
if [ "${NETC_TEST_QUICK:-0}" != 1 ]; then
    CC=clang run_build clang "unit errors" --werror
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
        run_build sanitize "unit errors" -Db_sanitize=address,undefined -Db_lundef=false \
        -Dc_args=-fno-sanitize-recover=all -Djit=disabled
    run_build minimal "unit" -Djit=disabled -Dopenmp=disabled --werror
    CC=clang run_build fuzz "fuzz" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
        -Djit=disabled
fi

echo
for f in "${failures[@]}"; do echo "FAILED in $f"; done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
