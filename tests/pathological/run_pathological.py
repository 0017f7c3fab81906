#!/usr/bin/env python3
"""run_pathological.py - hostile inputs must end in a clean verdict, fast.

    run_pathological.py NETC [--limit SECONDS] [-v]

Generates each input into a temporary directory (nothing large is committed),
runs `NETC check FILE` on it and requires: the expected exit status (1 for
bad input; 0 where the input is a valid model; some cases accept either,
when the language sets no limit and the compiler may reasonably set one),
no crash (signal, sanitizer report, internal error) and an answer within
--limit CPU seconds (10x that in wall time for a hang that sleeps). Prints
one line per case with its CPU time and a summary.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import resource

CRASH_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
               "runtime error:", "internal error", "Segmentation fault", "Aborted")

HEAD = "model m;\ninput x [1, 28, 28];\ntarget y classes(10);\n"
TAIL = "loss cross_entropy(logits, y);\n"


def garbage(n, seed=12345):
    """n deterministic pseudo-random bytes (a 32-bit LCG: no randomness between runs)."""
    out, s = bytearray(), seed
    for _ in range(n):
        s = (s * 1103515245 + 12345) & 0xFFFFFFFF
        out.append((s >> 16) & 0xFF)
    return bytes(out)


def nested_blocks(n):
    """b0 is relu; b_k calls b_{k-1}: n block definitions, n levels of expansion."""
    parts = ["block b0() {\n  out = in -> relu;\n}\n"]
    for k in range(1, n):
        parts.append("block b%d() {\n  out = in -> b%d;\n}\n" % (k, k - 1))
    return HEAD + "".join(parts) + "logits = x -> b%d -> dense(10);\n" % (n - 1) + TAIL


def exponential_blocks(levels):
    """b_k uses b_{k-1} twice: 2^levels ops once expanded. Must be refused, not run."""
    parts = ["block b0() {\n  out = in -> relu;\n}\n"]
    for k in range(1, levels + 1):
        parts.append("block b%d() {\n  l = in -> b%d;\n  r = in -> b%d;\n  out = l + r;\n}\n"
                     % (k, k - 1, k - 1))
    return HEAD + "".join(parts) + "logits = x -> b%d -> dense(10);\n" % levels + TAIL


def long_chain(n):
    """An n-link -> chain on a small input (valid: the AST stores chains flat).
    Not Fashion-MNIST: 200,000 activations of 784 floats would pass the memory cap."""
    return ("model m;\ninput x [4];\ntarget y classes(10);\nlogits = x"
            + " -> relu" * n + " -> dense(10);\n" + TAIL
            + 'train {\n  data idx(train_images="a", train_labels="b");\n}\n')


def long_sum(n):
    return HEAD + "a = x -> dense(16);\nlogits = (" + " + ".join(["a"] * n) + ") -> dense(10);\n" + TAIL


# (name, generator of bytes, accepted exit statuses)
CASES = [
    ("empty file", lambda: b"", {1}),
    ("only a comment, no newline at EOF", lambda: b"# nothing here", {1}),
    ("valid model, comment without newline at EOF",
     lambda: (HEAD + "logits = x -> dense(10);\n" + TAIL + "# the end").encode(), {0}),
    ("binary garbage, 64 KiB", lambda: garbage(65536), {1}),
    ("NUL bytes, 64 KiB", lambda: b"\0" * 65536, {1}),
    ("NUL after a valid prefix", lambda: (HEAD + "logits = x").encode() + b"\0" * 1000, {1}),
    ("20,000 nested parentheses",
     lambda: (HEAD + "logits = " + "(" * 20000 + "x" + ")" * 20000 + " -> dense(10);\n" + TAIL).encode(),
     {1}),
    ("20,000 unclosed parentheses", lambda: (HEAD + "logits = " + "(" * 20000).encode(), {1}),
    ("20,000 nested calls",
     lambda: (HEAD + "logits = " + "relu(" * 20000 + "x" + ")" * 20000 + " -> dense(10);\n" + TAIL).encode(),
     {1}),
    ("20,000 nested lists",
     lambda: (HEAD + "preprocess standardize(mean=" + "[" * 20000 + "0.5" + "]" * 20000
              + ");\nlogits = x -> dense(10);\n" + TAIL).encode(), {1}),
    ("1 MB identifier, unknown tensor",
     lambda: (HEAD + "logits = " + "a" * (1 << 20) + " -> dense(10);\n" + TAIL).encode(), {1}),
    ("1 MB identifier, bound and used",
     lambda: (HEAD + "b" * (1 << 20) + " = x -> dense(10);\nlogits = " + "b" * (1 << 20)
              + " -> relu;\n" + TAIL).encode(), {0, 1}),
    ("1 MB string", lambda: (HEAD + "logits = x -> dense(10);\n" + TAIL
                             + 'train {\n  data idx(train_images="' + "s" * (1 << 20)
                             + '", train_labels="a", test_images="b", test_labels="c");\n}\n').encode(),
     {0, 1}),
    ("1 MB number", lambda: (HEAD + "logits = x -> dense(" + "9" * (1 << 20) + ");\n" + TAIL).encode(), {1}),
    ("unterminated string at EOF", lambda: (HEAD + 'train {\n  data idx(train_images="abc').encode(), {1}),
    ("5,000 nested block definitions", lambda: nested_blocks(5000).encode(), {0, 1}),
    ("exponential block expansion, 40 levels", lambda: exponential_blocks(40).encode(), {1}),
    ("200,000-link -> chain", lambda: long_chain(200000).encode(), {0}),
    ("100,000-term sum", lambda: long_sum(100000).encode(), {0, 1}),
    ("100,000 syntax errors (error limit)", lambda: (HEAD + "a = -> ;\n" * 100000).encode(), {1}),
    ("100,000 unknown names (error limit)",
     lambda: (HEAD + "".join("t%d = u%d -> relu;\n" % (i, i) for i in range(100000))
              + "logits = x -> dense(10);\n" + TAIL).encode(), {1}),
    ("a huge tensor (64-bit sizes)",
     lambda: ("model m;\ninput x [65536, 65536, 65536];\ntarget y classes(10);\n"
              "logits = x -> conv(65536, 1) -> dense(10);\n" + TAIL).encode(), {1}),
    ("input dimensions overflowing int64",
     lambda: ("model m;\ninput x [2147483647, 2147483647, 2147483647];\ntarget y classes(10);\n"
              "logits = x -> dense(10);\n" + TAIL).encode(), {1}),
]


def run_case(netc, path, limit):
    """Returns (status or None, CPU seconds, stderr head).

    The limit is on the child's CPU time, not wall time: on a loaded CI
    machine (2 cores, several test builds) wall time measures the neighbours.
    A case that burns more than `limit` CPU seconds fails; one that does not
    answer within 10x the limit of wall time (a hang that does not spin)
    fails too.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        p = subprocess.run([netc, "check", path], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=10 * limit)
    except subprocess.TimeoutExpired:
        return None, 10 * limit, ""
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if cpu > limit:
        return None, cpu, ""
    return p.returncode, cpu, p.stderr.decode("utf-8", "replace")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("netc")
    ap.add_argument("--limit", type=float, default=10.0, help="seconds per case")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    failed = []
    with tempfile.TemporaryDirectory(prefix="netc-patho-") as tmp:
        for i, (name, make, ok_status) in enumerate(CASES):
            path = os.path.join(tmp, "case%02d.net" % i)
            with open(path, "wb") as f:
                f.write(make())
            status, secs, err = run_case(args.netc, path, args.limit)
            why = None
            if status is None:
                why = "no answer within %.0f CPU s" % args.limit
            elif status < 0:
                why = "killed by signal %d" % -status
            elif any(m in err for m in CRASH_MARKS):
                why = "crash report in stderr"
            elif status not in ok_status:
                why = "exit status %d, expected %s" % (status, " or ".join(map(str, sorted(ok_status))))
            if why:
                failed.append(name)
                head = "\n".join("      | " + l[:200] for l in err.splitlines()[:12])
                print("FAIL %-48s %6.2f s  %s\n%s" % (name, secs, why, head))
            elif args.verbose:
                print("ok   %-48s %6.2f s  exit %d" % (name, secs, status))
    print("pathological: %d passed, %d failed" % (len(CASES) - len(failed), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
