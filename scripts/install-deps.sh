#!/usr/bin/env bash
# Installs every Debian package netc needs to build, test and benchmark.
# Idempotent: packages already present are left alone. Run as root (or via sudo).
set -euo pipefail

packages=(
  build-essential pkg-config meson ninja-build flex bison   # build
  libcmocka-dev                                            # unit tests
  zlib1g-dev libjansson-dev libpng-dev                     # runtime: gzip IDX, safetensors, PNG
  llvm-dev clang libclang-rt-14-dev                        # JIT, clang build, libFuzzer, sanitizers
  dataset-fashion-mnist                                    # the embedded default data set
  graphviz                                                 # tests check netc graph output with dot
  python3-torch python3-torchvision python3-numpy          # PyTorch cross-checks
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
