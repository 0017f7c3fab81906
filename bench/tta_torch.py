"""Time to accuracy, the PyTorch side: trains a bench/tta/*.net recipe's
network with the same recipe in PyTorch and prints, per epoch, the test
accuracy with the wall time so far, in the format of `netc train --elapsed`:

    epoch 3/10: loss 0.4312, 2260 img/s, 26.5s; test accuracy: label 91.02%; elapsed 85.10s, training 79.60s

    /usr/bin/python3 bench/tta_torch.py bench/tta/lenet.net [--epochs N] [--threads 2]
        [--jit] [--channels-last] [--probe STEPS]

What is the same as netc (docs/language.md, runtime/*.c):
- the training hyper-parameters are read from the .net file's train section
  and loss line (batch, epochs, seed, sgd lr/momentum/nesterov, cosine
  schedule with warm-up, l2, label smoothing, augment translate/flip), so
  the two sides cannot drift apart there; the architecture is written out
  below per model name and must match the .net file's layers;
- data: the Fashion-MNIST IDX files netc reads ($NETC_FASHION_MNIST_DIR or
  /usr/share/datasets/fashion-mnist), pixels / 255;
- preprocess standardize: mean and population std of all training pixels,
  applied after augmentation (netc's order: translate, flip, standardize);
- augment translate(px): per sample integer shifts dx, dy uniform in
  [-px, px], zero fill; flip: horizontal with p = 0.5;
- init kaiming: conv and dense weights N(0, 2 / fan_in), biases zero,
  batchnorm gamma 1 (or 0 where the .net says gamma=zeros), beta 0;
  batchnorm momentum 0.1, eps 1e-5 (PyTorch's defaults are netc's);
- regularize l2(a): a * w added to the gradient of conv and dense weights
  only (netc's J + a/2 sum w^2); PyTorch's weight_decay in a parameter group
  of those weights is exactly that, also with nesterov momentum
  (v = mu v + g; w -= lr (g + mu v) in both);
- cross_entropy(smoothing=s): (1 - s) one-hot + s / n, PyTorch's
  label_smoothing;
- lr of step s (0-based) = runtime/schedule.c's cosine(warmup=W): a linear
  ramp lr (s + 1) / (W S) over W epochs, then lr (1 + cos(pi (s - W S) /
  ((E - W) S))) / 2, S = ceil(60000 / batch) steps per epoch (the last
  batch of an epoch is smaller, as in netc);
- a new random order of the training set every epoch; evaluation on the
  10,000 test images after every epoch in eval mode (running statistics,
  no dropout).
Random draws differ (PyTorch's generator, not netc's Philox streams), so the
curves agree in distribution, not bit for bit.

Timing: "elapsed" starts when main() starts (after `import torch`), so it
counts data loading and preprocessing statistics as netc's does; "training"
sums the epochs' training loops (augmentation included, evaluation not).
--probe STEPS only measures training images/s over STEPS steps (after 5
warm-up steps) and prints it: bench/tta.sh uses it to pick the fastest
PyTorch configuration (the numerics do not depend on it) for the full run.
"""
import argparse
import gzip
import math
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# ---- the recipe's train section -------------------------------------------------

def read_recipe(path):
    """The settings of the .net file this script reproduces; anything it
    does not know is an error rather than a silently different recipe."""
    text = re.sub(r"#[^\n]*", "", open(path).read())
    r = {"model": re.search(r"\bmodel\s+(\w+)\s*;", text).group(1)}
    train = re.search(r"\btrain\s*\{(.*?)\}", text, re.S).group(1)
    settings = {}
    for stmt in train.split(";"):
        stmt = stmt.strip()
        if stmt:
            key, _, rest = stmt.partition(" ")
            settings[key] = rest.strip()
    known = {"batch", "epochs", "seed", "optimizer", "schedule", "regularize", "augment"}
    unknown = set(settings) - known
    if unknown:
        sys.exit("tta_torch: %s: train settings not reproduced here: %s" % (path, sorted(unknown)))
    r["batch"] = int(settings["batch"])
    r["epochs"] = int(settings["epochs"])
    r["seed"] = int(settings.get("seed", "1"))
    opt = re.fullmatch(r"sgd\((.*)\)", settings["optimizer"])
    if not opt:
        sys.exit("tta_torch: only sgd(...) is reproduced, not %s" % settings["optimizer"])
    args = dict(a.split("=") for a in opt.group(1).replace(" ", "").split(","))
    r["lr"] = float(args.pop("lr"))
    r["momentum"] = float(args.pop("momentum", "0"))
    r["nesterov"] = args.pop("nesterov", "false") == "true"
    if args:
        sys.exit("tta_torch: sgd arguments not reproduced: %s" % args)
    sched = re.fullmatch(r"cosine(?:\(warmup=(\d+)\))?", settings.get("schedule", ""))
    if not sched:
        sys.exit("tta_torch: only schedule cosine[(warmup=W)] is reproduced")
    r["warmup"] = int(sched.group(1) or 0)
    l2 = re.fullmatch(r"l2\(([0-9.eE+-]+)\)", settings.get("regularize", "l2(0)"))
    if not l2:
        sys.exit("tta_torch: only regularize l2(a) is reproduced")
    r["l2"] = float(l2.group(1))
    r["translate"], r["flip"] = 0, False
    for aug in [a.strip() for a in settings.get("augment", "").split(",") if a.strip()]:
        m = re.fullmatch(r"translate\((\d+)\)", aug)
        if m:
            r["translate"] = int(m.group(1))
        elif aug in ("flip", "flip(horizontal)"):
            r["flip"] = True
        else:
            sys.exit("tta_torch: augmentation not reproduced: %s" % aug)
    loss = re.search(r"\bloss\s+cross_entropy\(([^)]*)\)", text)
    sm = re.search(r"smoothing\s*=\s*([0-9.]+)", loss.group(1)) if loss else None
    r["smoothing"] = float(sm.group(1)) if sm else 0.0
    r["dropout"] = [float(p) for p in re.findall(r"\bdropout\(([0-9.]+)\)", text)]
    if "preprocess standardize;" not in text:
        sys.exit("tta_torch: only preprocess standardize is reproduced")
    return r


# ---- the networks (must match bench/tta/*.net layer for layer) --------------------

def conv_bn(cin, cout, stride=1):
    """conv(cout, 3, stride, pad=1, bias=false) -> batchnorm."""
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)]


def tta_lenet(recipe):
    """bench/tta/lenet.net."""
    p = recipe["dropout"][0]
    return nn.Sequential(
        *conv_bn(1, 32), nn.ReLU(), nn.MaxPool2d(2),
        *conv_bn(32, 64), nn.ReLU(), nn.MaxPool2d(2),
        *conv_bn(64, 128), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(128 * 3 * 3, 128, bias=False), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(p),
        nn.Linear(128, 10))


class Basic(nn.Module):
    """bench/tta/resnet.net's `basic(f)` (identity shortcut) and `down(f)`
    (stride 2, 1x1 conv + BN shortcut); ReLU after the add."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.branch = nn.Sequential(*conv_bn(cin, cout, stride), nn.ReLU(), *conv_bn(cout, cout))
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        s = x if self.shortcut is None else self.shortcut(x)
        return torch.relu(self.branch(x) + s)


def tta_resnet(recipe):
    """bench/tta/resnet.net."""
    return nn.Sequential(
        *conv_bn(1, 32), nn.ReLU(), nn.MaxPool2d(2),       # 32 x 14 x 14
        Basic(32, 32, 1),                                  # 32 x 14 x 14
        Basic(32, 64, 2),                                  # 64 x 7 x 7
        Basic(64, 128, 2),                                 # 128 x 4 x 4
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(128, 10))


MODELS = {"tta_lenet": tta_lenet, "tta_resnet": tta_resnet}


def init_kaiming(model):
    """netc's `default init kaiming`: N(0, 2 / fan_in) weights, zero biases."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / m.weight[0].numel()))
            if m.bias is not None:
                nn.init.zeros_(m.bias)


# ---- data ------------------------------------------------------------------------

def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion_mnist():
    d = os.environ.get("NETC_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
    get = lambda name: torch.from_numpy(read_idx(os.path.join(d, name)).copy())
    xtr, ytr = get("train-images-idx3-ubyte.gz"), get("train-labels-idx1-ubyte.gz")
    xte, yte = get("t10k-images-idx3-ubyte.gz"), get("t10k-labels-idx1-ubyte.gz")
    return xtr.unsqueeze(1), ytr.long(), xte.unsqueeze(1), yte.long()


def augment(x, translate, flip, gen):
    """x: (n, 1, h, w) floats in [0, 1]. translate(px): shift by integers
    dx, dy in [-px, px] with zero fill; then flip: mirror horizontally with
    p = 0.5 (netc's order; runtime/augment.c)."""
    n, _, h, w = x.shape
    rows = torch.arange(h).expand(n, h)
    cols = torch.arange(w).expand(n, w)
    if flip:
        flipped = torch.rand(n, generator=gen) < 0.5
        cols = torch.where(flipped[:, None], w - 1 - cols, cols)
    if translate:
        p = translate
        dy = torch.randint(-p, p + 1, (n, 1), generator=gen)
        dx = torch.randint(-p, p + 1, (n, 1), generator=gen)
        x = F.pad(x, (p, p, p, p))               # zero border: shifted-in pixels are 0
        rows = rows - dy + p
        cols = cols - dx + p
    idx = torch.arange(n)[:, None, None]
    return x[idx, 0, rows[:, :, None], cols[:, None, :]].unsqueeze(1)


# ---- training --------------------------------------------------------------------

def lr_at(recipe, step, spe, epochs):
    """runtime/schedule.c's cosine(warmup=W)."""
    lr, warm, total = recipe["lr"], recipe["warmup"] * spe, epochs * spe
    if step < warm:
        return lr * (step + 1) / warm
    if step >= total:
        return 0.0
    return lr * 0.5 * (1.0 + math.cos(math.pi * (step - warm) / (total - warm)))


def make_optimizer(model, recipe):
    """l2 on conv and dense weights only (biases and batchnorm exempt)."""
    decay, rest = [], []
    for m in model.modules():
        for name, p in m.named_parameters(recurse=False):
            is_weight = isinstance(m, (nn.Conv2d, nn.Linear)) and name == "weight"
            (decay if is_weight else rest).append(p)
    return torch.optim.SGD([{"params": decay, "weight_decay": recipe["l2"]},
                            {"params": rest, "weight_decay": 0.0}],
                           lr=recipe["lr"], momentum=recipe["momentum"],
                           nesterov=recipe["nesterov"])


def evaluate(model, x, y, mean, std, channels_last):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), 1000):
            xb = (x[i:i + 1000].float() / 255.0 - mean) / std
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            correct += (model(xb).argmax(1) == y[i:i + 1000]).sum().item()
    model.train()
    return 100.0 * correct / len(x)


def main():
    t_start = time.perf_counter()
    ap = argparse.ArgumentParser()
    ap.add_argument("net", help="the recipe: bench/tta/lenet.net or bench/tta/resnet.net")
    ap.add_argument("--epochs", type=int, help="override the recipe's epochs (and schedule)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--jit", action="store_true", help="torch.jit.trace the training model")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--probe", type=int, default=0, help="only measure img/s over N steps")
    ap.add_argument("--config", default="torch", help="a label printed with the result")
    ap.add_argument("--limit-train", type=int, default=0, help="only the first N training images")
    ap.add_argument("--limit-test", type=int, default=0, help="only the first N test images")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    recipe = read_recipe(args.net)
    epochs = args.epochs or recipe["epochs"]
    torch.manual_seed(recipe["seed"])
    gen = torch.Generator().manual_seed(recipe["seed"])

    xtr, ytr, xte, yte = load_fashion_mnist()
    if args.limit_train:
        xtr, ytr = xtr[:args.limit_train], ytr[:args.limit_train]
    if args.limit_test:
        xte, yte = xte[:args.limit_test], yte[:args.limit_test]
    pixels = xtr.double() / 255.0
    mean, std = pixels.mean().item(), pixels.std(unbiased=False).item()
    del pixels

    model = MODELS[recipe["model"]](recipe)
    init_kaiming(model)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = make_optimizer(model, recipe)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe["smoothing"])
    B, N = recipe["batch"], len(xtr)
    spe = (N + B - 1) // B

    def batch_input(idx):
        xb = augment(xtr[idx].float() / 255.0, recipe["translate"], recipe["flip"], gen)
        xb = (xb - mean) / std
        return xb.contiguous(memory_format=torch.channels_last) if args.channels_last else xb

    net = model
    if args.jit:    # shares model's parameters; dropout differs per call: no trace check
        net = torch.jit.trace(model, batch_input(torch.arange(B)), check_trace=False)

    def step(idx, lr):
        for g in opt.param_groups:
            g["lr"] = lr
        xb = batch_input(idx)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xb), ytr[idx])
        loss.backward()
        opt.step()
        return loss.item()

    if args.probe:
        order = torch.randperm(N, generator=gen)
        for k in range(5):
            step(order[k * B:(k + 1) * B], recipe["lr"])
        t0 = time.perf_counter()
        for k in range(args.probe):
            j = (k + 5) % (N // B)
            step(order[j * B:(j + 1) * B], recipe["lr"])
        print("probe %s %s %.1f img/s" % (args.config, recipe["model"],
                                          args.probe * B / (time.perf_counter() - t0)))
        return

    train_s, s = 0.0, 0
    for epoch in range(epochs):
        t0 = time.perf_counter()
        order = torch.randperm(N, generator=gen)
        loss_sum = 0.0
        for k in range(spe):
            loss_sum += step(order[k * B:(k + 1) * B], lr_at(recipe, s, spe, epochs))
            s += 1
        dt = time.perf_counter() - t0
        train_s += dt
        acc = evaluate(model, xte, yte, mean, std, args.channels_last)
        print("epoch %d/%d: loss %.4f, %.0f img/s, %.1fs; test accuracy: label %.2f%%; "
              "elapsed %.2fs, training %.2fs" % (epoch + 1, epochs, loss_sum / spe, N / dt, dt,
                                                 acc, time.perf_counter() - t_start, train_s),
              flush=True)


if __name__ == "__main__":
    main()
