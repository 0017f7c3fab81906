#!/usr/bin/env bash
# scripts/coverage.sh [SUITES...] - line and branch coverage of the tests.
#
# Builds build-cov (gcc --coverage, -O0, no JIT), runs the given meson test
# suites (default: unit errors; add examples for the end-to-end runs, which
# take minutes), then prints per-file and total line and branch coverage of
# compiler/ and runtime/ from gcc's own gcov (JSON output, no extra
# package). Only code built in build-cov counts: models that netc train
# compiles at run time are not instrumented.
#   e.g. scripts/coverage.sh                 # unit + errors
#        scripts/coverage.sh unit errors examples
set -euo pipefail
cd "$(dirname "$0")/.."
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(unit errors)
dir=build-cov
if [ "${COVERAGE_REPORT_ONLY:-0}" = 1 ]; then
  :
elif [ -d "$dir" ]; then
  meson setup --reconfigure "$dir" -Db_coverage=true -Dbuildtype=debug -Djit=disabled >/dev/null
else
  meson setup "$dir" -Db_coverage=true -Dbuildtype=debug -Djit=disabled >/dev/null
fi
if [ "${COVERAGE_REPORT_ONLY:-0}" != 1 ]; then   # 1: report the last run again
  ninja -C "$dir" >/dev/null
  find "$dir" -name '*.gcda' -delete
  args=()
  for s in "${suites[@]}"; do args+=(--suite "$s"); done
  meson test -C "$dir" --num-processes 2 "${args[@]}" | tail -n 8 || true
fi
/usr/bin/python3 - "$dir" <<'PY'
import gzip, json, os, subprocess, sys
build = os.path.abspath(sys.argv[1])
root = os.path.dirname(build)
files = {}   # source -> {line: count}, {(line, i): count}
for d, _, names in os.walk(build):
    for n in names:
        if not n.endswith(".gcda"):
            continue
        out = subprocess.run(["gcov", "--json-format", "--stdout", "--branch-probabilities",
                              os.path.join(d, n)], cwd=d, capture_output=True).stdout
        for chunk in out.splitlines():
            if not chunk.strip():
                continue
            js = json.loads(chunk)
            cwd = js.get("current_working_directory", d)
            for f in js["files"]:
                path = os.path.normpath(os.path.join(cwd, f["file"]))
                rel = os.path.relpath(path, root)
                if rel.startswith(os.path.relpath(build, root) + "/"):
                    rel = "(generated) " + os.path.basename(rel)   # flex/bison output
                elif not (rel.startswith("compiler/") or rel.startswith("runtime/")):
                    continue
                lines, branches = files.setdefault(rel, ({}, {}))
                for ln in f["lines"]:
                    k = ln["line_number"]
                    lines[k] = max(lines.get(k, 0), ln["count"])
                    for i, b in enumerate(ln.get("branches", [])):
                        branches[(k, i)] = max(branches.get((k, i), 0), b["count"])
def pct(a, b):
    return 100.0 * a / b if b else 100.0
tot = [0, 0, 0, 0]
print("%-42s %14s %16s" % ("file", "lines", "branches"))
for rel in sorted(files):
    lines, branches = files[rel]
    lh = sum(1 for c in lines.values() if c > 0)
    bh = sum(1 for c in branches.values() if c > 0)
    tot = [tot[0] + lh, tot[1] + len(lines), tot[2] + bh, tot[3] + len(branches)]
    print("%-42s %5d/%-5d %5.1f%% %5d/%-5d %5.1f%%" % (rel, lh, len(lines), pct(lh, len(lines)),
                                                        bh, len(branches), pct(bh, len(branches))))
print("%-42s %5d/%-5d %5.1f%% %5d/%-5d %5.1f%%" % ("TOTAL", tot[0], tot[1], pct(tot[0], tot[1]),
                                                    tot[2], tot[3], pct(tot[2], tot[3])))
PY
