"""The PyTorch side of the benchmark (PERFORMANCE.md): training images/s at
batch 64 and 256, inference images/s at batch 256, latency at batch 1, for
each reference model, as one configuration of PyTorch.

    /usr/bin/python3 bench/bench_torch.py --threads 2 [--jit] [--models mlp,lenet_bn]

Prints one JSON object per measurement on stdout. The configuration (BLAS
library, GOMP_SPINCOUNT, jit.trace) comes from the environment and flags;
bench/run.sh runs every configuration and keeps the best, as PERFORMANCE.md asks.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
import torch_models  # noqa: E402


def time_it(fn, min_time=1.0, repeats=5):
    """Median seconds per call over `repeats` timed windows of >= min_time/repeats."""
    fn()
    fn()
    per_call = []
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= min_time / repeats:
                break
        per_call.append(dt / n)
    return statistics.median(per_call)


def bench_train(name, batch, jit):
    model = torch_models.MODELS[name]()
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    if jit:   # dropout makes a train-mode trace differ from a re-run: do not compare
        model = torch.jit.trace(model, x, check_trace=False)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    return batch / time_it(step)


def bench_infer(name, batch, jit):
    model = torch_models.MODELS[name]()
    model.eval()
    x = torch.rand(batch, 1, 28, 28)
    with torch.no_grad():
        if jit:
            model = torch.jit.freeze(torch.jit.trace(model, x))
        sec = time_it(lambda: model(x))
    return batch / sec, sec


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--jit", action="store_true")
    ap.add_argument("--models", default="mlp,lenet_bn,resnet8")
    ap.add_argument("--config", default="torch")
    ap.add_argument("--train-only", action="store_true", help="skip inference and latency")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for name in args.models.split(","):
        flops = torch_models.forward_flops(name)
        for batch in (64, 256):
            ips = bench_train(name, batch, args.jit)
            print(json.dumps({"model": name, "kind": "train", "batch": batch,
                              "threads": args.threads, "config": args.config,
                              "img_s": ips, "gflops": ips * 3 * flops / 1e9}), flush=True)
        if args.train_only:
            continue
        ips, _ = bench_infer(name, 256, args.jit)
        print(json.dumps({"model": name, "kind": "infer", "batch": 256, "threads": args.threads,
                          "config": args.config, "img_s": ips, "gflops": ips * flops / 1e9}),
              flush=True)
        _, sec = bench_infer(name, 1, args.jit)
        print(json.dumps({"model": name, "kind": "latency", "batch": 1, "threads": args.threads,
                          "config": args.config, "us": sec * 1e6}), flush=True)


if __name__ == "__main__":
    main()
