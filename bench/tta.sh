#!/usr/bin/env bash
# bench/tta.sh [RECIPE...] - time to accuracy on Fashion-MNIST, netc against
# PyTorch running the same recipe (issue #6, PERFORMANCE.md).
#
# RECIPE: lenet (target 93%) and/or resnet (target 94%), default both; each
# is bench/tta/RECIPE.net. For each recipe, in this order:
#   netc     `netc train RECIPE.net --backend jit --threads 2 --elapsed`
#            (release build in build-bench/; test accuracy after every epoch);
#   PyTorch  bench/tta_torch.py, the same recipe (hyper-parameters read from
#            the .net file), 2 threads, in the fastest of PERFORMANCE.md's
#            configurations: each is probed for TTA_PROBE (default 40)
#            training steps and the full run uses the best one (the
#            numerics do not depend on the configuration).
# Then one table per recipe: epochs to the target, wall time to the target
# ("elapsed": from the start of the process, compiling, data loading and
# every evaluation included; "training": the training steps only), final
# and best accuracy, training images/s (all epochs' images / training time),
# and the test-accuracy curve with the wall time of each point. Logs stay in $TTA_LOGS (default a temporary
# folder that is removed). TTA_EPOCHS overrides the recipes' epochs (the
# cosine schedule follows it) and TTA_LIMIT=N keeps only the first N
# training and test images, for short trial runs (the targets then mean
# nothing): `TTA_EPOCHS=1 TTA_LIMIT=2560 TTA_PROBE=5 bash bench/tta.sh`.
# Takes roughly 10 (lenet) + 50 (resnet, 30 epochs) minutes on an idle
# 2-core machine (bench/RESULTS.md).
# Not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
recipes=${*:-lenet resnet}
py=/usr/bin/python3
bdir=build-bench
netc=$bdir/compiler/netc
probe=${TTA_PROBE:-40}
epochs_flag=()
[ -n "${TTA_EPOCHS:-}" ] && epochs_flag=(--epochs "$TTA_EPOCHS")
[ -n "${TTA_LIMIT:-}" ] && epochs_flag+=(--limit-train "$TTA_LIMIT" --limit-test "$TTA_LIMIT")

declare -A target=([lenet]=93 [resnet]=94)
for r in $recipes; do
    [ -f "bench/tta/$r.net" ] && [ -n "${target[$r]:-}" ] \
        || { echo "tta.sh: unknown recipe '$r' (lenet, resnet)" >&2; exit 2; }
done

[ -d $bdir ] || meson setup $bdir -Dbuildtype=release >/dev/null
ninja -C $bdir >/dev/null
export NETC_CACHE_DIR=$PWD/$bdir/cache   # netc train picks its OpenMP waiting (main.c)
openblas_dir=$(dirname "$(dpkg -L libopenblas0-openmp 2>/dev/null | grep 'libblas.so.3$' | head -n 1)")
if [ -n "${TTA_LOGS:-}" ]; then
    logs=$TTA_LOGS
    mkdir -p "$logs"
else
    logs=$(mktemp -d)
    trap 'rm -rf "$logs"' EXIT
fi

torch_run() {    # config recipe [args...]: the PyTorch script in that configuration
    local cfg=$1 r=$2
    shift 2
    case $cfg in
        torch) $py bench/tta_torch.py "bench/tta/$r.net" --config "$cfg" "$@" ;;
        spin0) GOMP_SPINCOUNT=0 $py bench/tta_torch.py "bench/tta/$r.net" --config "$cfg" "$@" ;;
        spin0-cl) GOMP_SPINCOUNT=0 $py bench/tta_torch.py "bench/tta/$r.net" --channels-last \
                      --config "$cfg" "$@" ;;
        openblas-jit) LD_LIBRARY_PATH=$openblas_dir OPENBLAS_CORETYPE=SkylakeX GOMP_SPINCOUNT=0 \
                      $py bench/tta_torch.py "bench/tta/$r.net" --jit --config "$cfg" "$@" ;;
    esac
}

summary() {      # log target who row|curve -> one table row, or the accuracy curve
    $py - "$@" <<'PY'
import re, sys
log, target, who, what = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
rows = []
for line in open(log):
    m = re.match(r"epoch (\d+)/(\d+): loss [0-9.]+, ([0-9.]+) img/s, ([0-9.]+)s; "
                 r"test accuracy: label ([0-9.]+)%;(?: [0-9]+% of the steps on one thread "
                 r"\(faster while the cores were busy\);)? elapsed ([0-9.]+)s, training ([0-9.]+)s",
                 line)
    if m:
        rows.append((int(m[1]), int(m[2]), float(m[5]), float(m[6]), float(m[7]),
                     float(m[3]) * float(m[4]), float(m[4])))
if what == "curve":
    print("- %s, test accuracy after each epoch (wall time): %s"
          % (who, ", ".join("%.2f%% (%.0f s)" % (r[2], r[3]) for r in rows)))
    sys.exit()
if not rows:
    print("| %s | no epoch finished | | | | | |" % who)
    sys.exit()
hit = next((r for r in rows if r[2] >= target), None)
last = rows[-1]
secs = sum(r[6] for r in rows)       # images / training seconds over all epochs
ips = sum(r[5] for r in rows) / secs if secs > 0 else 0
if hit:
    to = "%d | %.0f s | %.0f s" % (hit[0], hit[3], hit[4])
else:
    to = "not reached in %d | - | -" % last[0]
print("| %s | %s | %.2f%% | %.2f%% | %s |" % (who, to, last[2], max(r[2] for r in rows),
                                              "{:,.0f}".format(ips)))
PY
}

for r in $recipes; do
    echo "== $r: netc ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    "$netc" train "bench/tta/$r.net" --backend jit --threads 2 --elapsed "${epochs_flag[@]}" \
        --out "$logs/$r.safetensors" | tee "$logs/netc_$r.log" >&2
    echo "== $r: PyTorch probes ($probe steps each)" >&2
    best= best_ips=0
    for cfg in torch spin0 spin0-cl openblas-jit; do
        line=$(torch_run $cfg "$r" --threads 2 --probe "$probe" | tail -n 1)
        echo "   $line" >&2
        ips=$(echo "$line" | sed -n 's/.* \([0-9.]*\) img\/s$/\1/p')
        if [ -n "$ips" ] && $py -c "import sys; sys.exit(not $ips > $best_ips)"; then
            best=$cfg best_ips=$ips
        fi
    done
    echo "== $r: PyTorch ($best) ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    torch_run "$best" "$r" --threads 2 "${epochs_flag[@]}" | tee "$logs/torch_$r.log" >&2
    echo "$best" >"$logs/torch_$r.config"
done

echo
for r in $recipes; do
    echo "### $r (bench/tta/$r.net), target ${target[$r]}%"
    echo
    echo "| run | epochs to target | wall time to target | training time to target | final accuracy | best accuracy | training img/s |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    torch="PyTorch ($(cat "$logs/torch_$r.config"))"
    summary "$logs/netc_$r.log" "${target[$r]}" "netc (jit)" row
    summary "$logs/torch_$r.log" "${target[$r]}" "$torch" row
    echo
    summary "$logs/netc_$r.log" "${target[$r]}" "netc (jit)" curve
    summary "$logs/torch_$r.log" "${target[$r]}" "$torch" curve
    echo
done
