#!/usr/bin/env bash
# scripts/run.sh [MODEL.net] [train flags...] - the main job on a fresh Debian
# machine: install what netc needs, build it, show the default example's
# layers, and train it on the embedded Fashion-MNIST data (test accuracy is
# printed after every epoch; the checkpoint goes to build/MODEL.safetensors).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-dsl-examples/lenet.net}
shift || true
bash scripts/install-deps.sh
[ -d build ] || meson setup build -Dbuildtype=release >/dev/null
ninja -C build
./build/compiler/netc check "$model"
name=$(basename "${model%.net}")
./build/compiler/netc graph "$model" -o "build/$name.dot"
echo "wrote build/$name.dot (render: dot -Tpng build/$name.dot -o $name.png)"
exec ./build/compiler/netc train "$model" --out "build/$name.safetensors" "$@"
