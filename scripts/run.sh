#!/usr/bin/env bash
# scripts/run.sh [MODEL.net] - the main job on a fresh Debian machine:
# install what netc needs, build it, and run it on the default example.
# (Training lands with code generation; until then: check and graph.)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-dsl-examples/lenet.net}
bash scripts/install-deps.sh
[ -d build ] || meson setup build -Dbuildtype=release >/dev/null
ninja -C build
./build/compiler/netc check "$model"
dot="build/$(basename "${model%.net}").dot"
./build/compiler/netc graph "$model" -o "$dot"
echo "wrote $dot (render: dot -Tpng $dot -o model.png)"
