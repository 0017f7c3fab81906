#!/usr/bin/env bash
# scripts/kill_resume.sh [KILLS] [BUILD_DIR] - the long crash-safety run:
# tests/e2e/kill_resume.sh with KILLS (default 200) SIGKILLs at random
# moments, each followed by a resume; the final checkpoint must equal an
# uninterrupted run's byte for byte. meson test runs it with 20.
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${1:-200}
build=${2:-build}
ninja -C "$build" compiler/netc >/dev/null
exec sh tests/e2e/kill_resume.sh "$build/compiler/netc" "$PWD" "$kills"
