#!/usr/bin/env python3
"""run_errors.py - the diagnostic tests: bad .net files must fail exactly as
their header says, and every dsl-example must pass.

    run_errors.py NETC [--root SRCDIR] [-v] [FILE.net ...]

Each tests/errors/*.net opens with comment lines
    # expect: LINE:COL: fragment      an error at LINE:COL whose message
                                      contains fragment (case-insensitive)
    # note: LINE:COL: fragment        the same for a note
    # any-other-errors                more errors than expected are fine
                                      (a cascade the language cannot avoid)
For each file the runner runs `NETC check FILE` and requires: exit status 1;
no crash (signal, sanitizer report, internal error); every expectation met
on a `FILE:LINE:COL: error:` (or `note:`) line; and no error beyond the
expected ones unless the file says `# any-other-errors`. A few inputs that
cannot be written as text (NUL bytes, invalid UTF-8) are generated here.
Then every dsl-examples/*.net must check with exit status 0 and no error.

Prints one line per failure and a summary `N passed, M failed`; exit status
0 when everything passed. Why Python: the matching (regexes, per-file
headers) stays readable, and it needs only the standard library.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

TIMEOUT = 20  # seconds; generous for sanitizer builds on a loaded machine
CRASH_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
               "runtime error:", "internal error", "Segmentation fault", "Aborted")
HEADER_RE = re.compile(r"#\s*(expect|note):\s*(\d+):(\d+):\s*(.*?)\s*$")

# Inputs written at test time: (name, bytes, [(kind, line, col, fragment)]).
GENERATED = [
    ("lex_nul_byte",
     b"# a NUL byte in the middle of a line\nmodel m;\ninput x [1, 28,\x00 28];\n"
     b"target y classes(10);\nlogits = x -> dense(10);\nloss cross_entropy(logits, y);\n",
     [("error", 3, 16, "unexpected character '\\x00'")]),
    ("lex_invalid_utf8",
     b"# a byte that is not UTF-8 outside a comment\nmodel m;\ninput x [1, 28, 28];\n"
     b"target y classes(10);\nlogits = x \xff-> dense(10);\nloss cross_entropy(logits, y);\n",
     [("error", 5, 12, "unexpected character '\\xff'")]),
]


def parse_header(text):
    """Returns (expectations, any_other_errors) from the leading comments."""
    exps, any_other = [], False
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        m = HEADER_RE.match(line)
        if m:
            exps.append((m.group(1) if m.group(1) == "note" else "error",
                         int(m.group(2)), int(m.group(3)), m.group(4)))
        elif line.strip() == "# any-other-errors":
            any_other = True
    return exps, any_other


def run_check(netc, path):
    """Runs `netc check path`; returns (status, stderr) or (None, why)."""
    try:
        p = subprocess.run([netc, "check", path], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, "timed out after %d s" % TIMEOUT
    return p.returncode, p.stderr.decode("utf-8", "replace")


def crash_reason(status, stderr):
    if status is not None and status < 0:
        return "killed by signal %d" % -status
    for mark in CRASH_MARKS:
        if mark in stderr:
            return "crash report in stderr (%s)" % mark
    return None


def diag_lines(path, stderr, kind):
    """The `path:L:C: kind: msg` lines of stderr as (L, C, msg)."""
    pat = re.compile(r"^%s:(\d+):(\d+): %s: (.*)$" % (re.escape(path), kind))
    out = []
    for line in stderr.splitlines():
        m = pat.match(line)
        if m:
            out.append((int(m.group(1)), int(m.group(2)), m.group(3)))
    return out


def check_bad_file(netc, path, exps, any_other):
    """Returns a list of problems (empty when the file behaves as expected)."""
    if not exps:
        return ["no '# expect:' line in the header"]
    status, stderr = run_check(netc, path)
    if status is None:
        return [stderr]
    crash = crash_reason(status, stderr)
    if crash:
        return [crash]
    problems = []
    if status != 1:
        problems.append("exit status %d, expected 1" % status)
    found = {"error": diag_lines(path, stderr, "error"),
             "note": diag_lines(path, stderr, "note")}
    used = set()
    for kind, line, col, frag in exps:
        hit = next((i for i, (l, c, msg) in enumerate(found[kind])
                    if l == line and c == col and frag.lower() in msg.lower()
                    and (kind, i) not in used), None)
        if hit is None:
            problems.append("missing %s %d:%d containing '%s'" % (kind, line, col, frag))
        else:
            used.add((kind, hit))
    if not any_other:
        for i, (l, c, msg) in enumerate(found["error"]):
            if ("error", i) not in used:
                problems.append("unexpected error %d:%d: %s" % (l, c, msg))
    if problems:
        problems.append("stderr was:\n" + indent(stderr))
    return problems


def check_example(netc, path):
    status, stderr = run_check(netc, path)
    if status is None:
        return [stderr]
    crash = crash_reason(status, stderr)
    if crash:
        return [crash]
    if status != 0 or " error: " in stderr:
        return ["exit status %d, expected 0; stderr:\n%s" % (status, indent(stderr))]
    return []


def indent(s, limit=40):
    lines = s.rstrip("\n").splitlines()
    more = len(lines) - limit
    lines = lines[:limit] + (["... (%d more lines)" % more] if more > 0 else [])
    return "\n".join("      | " + l for l in lines)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("netc")
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(here)))
    ap.add_argument("-v", "--verbose", action="store_true", help="print every test")
    ap.add_argument("files", nargs="*", help="only these files (default: all)")
    args = ap.parse_args()
    if not os.access(args.netc, os.X_OK):
        print("run_errors: %s is not an executable" % args.netc)
        return 2

    err_dir = os.path.join(args.root, "tests", "errors")
    ex_dir = os.path.join(args.root, "dsl-examples")
    bad = args.files or sorted(os.path.join(err_dir, f) for f in os.listdir(err_dir)
                               if f.endswith(".net"))
    examples = [] if args.files else sorted(
        os.path.join(ex_dir, f) for f in os.listdir(ex_dir) if f.endswith(".net"))

    passed, failed = 0, []

    def report(name, problems):
        nonlocal passed
        if problems:
            failed.append(name)
            print("FAIL %s\n    %s" % (name, "\n    ".join(problems)))
        else:
            passed += 1
            if args.verbose:
                print("ok   %s" % name)

    for path in bad:
        with open(path, encoding="utf-8", errors="replace") as f:
            exps, any_other = parse_header(f.read())
        report(os.path.relpath(path, args.root), check_bad_file(args.netc, path, exps, any_other))
    if not args.files:
        with tempfile.TemporaryDirectory(prefix="netc-errors-") as tmp:
            for name, data, exps in GENERATED:
                path = os.path.join(tmp, name + ".net")
                with open(path, "wb") as f:
                    f.write(data)
                report("(generated) " + name, check_bad_file(args.netc, path, exps, False))
    for path in examples:
        report(os.path.relpath(path, args.root), check_example(args.netc, path))

    print("errors: %d passed, %d failed" % (passed, len(failed)))
    if failed:
        print("failed: " + " ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
