#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS] - a long libFuzzer campaign on the front end
# (default one hour), with ASan+UBSan, both cores. Findings land in
# build-fuzz/fuzz-long/artifacts; turn each into a regression file under
# tests/errors/ or tests/fuzz/corpus/frontend/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-3600}
if [ ! -d build-fuzz ]; then
  CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
    -Djit=disabled >/dev/null
fi
ninja -C build-fuzz tests/fuzz_frontend
mkdir -p build-fuzz/fuzz-long/corpus build-fuzz/fuzz-long/artifacts
exec build-fuzz/tests/fuzz_frontend -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -jobs=2 -workers=2 -print_final_stats=1 -artifact_prefix=build-fuzz/fuzz-long/artifacts/ \
  build-fuzz/fuzz-long/corpus tests/fuzz/corpus/frontend dsl-examples tests/errors
