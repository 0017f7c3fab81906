#!/usr/bin/python3
"""xcheck.py - cross-check one generated netc model against PyTorch.

Inputs: a variant name (mlp_sgd, lenet_bn_adam, ..., the .net files next to
this script), the xcheck_driver built against that variant's generated C,
and a work directory. The script writes a fixed random batch (batch.bin),
runs the driver (which saves the initial checkpoint, trains STEPS steps on
the batch, and saves gradients, checkpoints and predictions), then replays
every step in PyTorch in float64 from netc's state before it (the initial
weights come through the safetensors checkpoint) and compares: the loss,
every gradient (before the update), every parameter, batchnorm running
statistic and optimizer state (momentum, Adam moments) after the update,
the update itself (p_after - p_before, up to one
float32 ulp of p_after), and predict() before and after training.

How the update is checked: PyTorch's optimizer (SGD with momentum/Nesterov,
Adam; L2 as per-parameter-group weight decay on the weights) is fed netc's
own gradient. The gradient itself is checked separately, and this keeps
Adam's first step, lr * g / (|g| + eps) ~ lr * sign(g), from turning float32
rounding of a near-zero gradient element into a +-lr disagreement that says
nothing about either implementation. Likewise each step starts from netc's
state, so float32 noise does not compound over steps.

Metric, per tensor: the larger of the normwise relative error
||netc - torch|| / ||torch|| and the scale-relative max error
max|netc - torch| / max|torch|; a tensor passes when it is at most --tol
(1e-4). Elementwise relative error is no fit for float32: a gradient element
that cancels to nearly zero has no correct digits in any float32
implementation (PyTorch's own float32 gradients fail it at 1e-3). A gradient
that is zero up to float64 rounding (the bias of a conv feeding a batchnorm)
must instead be negligible against the model's largest gradient (1e-5).
ReLU inputs within 1e-6 of zero (relative to their tensor) are a coin toss
for any float32 implementation; the replay takes netc's side of such a
kink where that explains netc's gradients (class Kinks) and says so.
Prints a table; exit 0 on agreement, 1 on any mismatch or error, 77 when
torch cannot be imported.

Why float64 on the PyTorch side: the reference is then exact to float32's
eyes, so a figure measures netc's own error, not the sum of two.
"""
import argparse
import json
import os
import struct
import subprocess
import sys

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"xcheck: SKIP: cannot import torch/numpy ({e})")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
import torch_models  # noqa: E402  (bench/torch_models.py: PERFORMANCE.md's models)

# ---- safetensors, read with the standard library ---------------------------

ST_DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64,
             "U64": np.uint64, "U32": np.uint32, "U8": np.uint8, "I8": np.int8,
             "F16": np.float16}


def st_read(path):
    """Return ({name: ndarray}, metadata) of a safetensors file, checking
    that every tensor's byte range lies inside the file."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (hlen,) = struct.unpack("<Q", raw[:8])
    if 8 + hlen > len(raw):
        raise ValueError(f"{path}: header length {hlen} past the end")
    header = json.loads(raw[8:8 + hlen].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = raw[8 + hlen:]
    out = {}
    for name, t in header.items():
        dt = np.dtype(ST_DTYPES[t["dtype"]]).newbyteorder("<")
        a, b = t["data_offsets"]
        if not 0 <= a <= b <= len(data):
            raise ValueError(f"{path}: {name}: offsets {a}..{b} out of bounds")
        arr = np.frombuffer(data[a:b], dtype=dt)
        out[name] = arr.reshape(t["shape"]).copy()
    return out, meta


# ---- the PyTorch side of each model ------------------------------------------


class MultiTask(nn.Module):
    """dsl-examples/multitask.net: shared trunk, fine (10) and coarse (3) heads."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 256), nn.ReLU(), nn.Dropout(0.0))
        self.fine = nn.Linear(256, 10)
        self.coarse = nn.Sequential(nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 3))

    def forward(self, x):
        t = self.trunk(x)
        return self.fine(t), self.coarse(t)


def oddconv():
    """tests/xcheck/oddconv_sgd.net: 7x7/2, 5x5/3, 3x3/2 and 1x1/2 convolutions."""
    return nn.Sequential(
        nn.Conv2d(1, 12, 7, stride=2, padding=3), nn.BatchNorm2d(12), nn.ReLU(),
        nn.Conv2d(12, 16, 5, stride=3, padding=2), nn.ReLU(),
        nn.Conv2d(16, 24, 3, stride=2, padding=1), nn.BatchNorm2d(24), nn.ReLU(),
        nn.Conv2d(24, 20, 1, stride=2), nn.ReLU(),
        nn.Flatten(), nn.Linear(20 * 2 * 2, 10))


class Heads(nn.Module):
    """A single-output model returning a 1-tuple, like MultiTask's pair."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return (self.net(x),)


COARSE_MAP = [0, 2, 0, 2, 0, 1, 0, 1, 2, 1]

# Per model: the torch network; input shape; preprocessing (kind, mean, std;
# mean None: fitted on the batch by fit_preprocess, one channel);
# targets (classes, map or None); losses (head, target, weight, smoothing);
# outputs: (head, softmax?) per predict() output. Without `output`
# statements netc returns each loss's input (the logits, docs/language.md).
MODELS = {
    "mlp": dict(build=lambda: Heads(torch_models.mlp(p_drop=0.0)), input=[784],
                pre=("standardize", 0.286, 0.353), targets=[(10, None)],
                losses=[(0, 0, 1.0, 0.0)], outputs=[(0, False)]),
    "lenet_bn": dict(build=lambda: Heads(torch_models.lenet_bn(p_drop=0.0)), input=[1, 28, 28],
                     pre=("standardize", 0.286, 0.353), targets=[(10, None)],
                     losses=[(0, 0, 1.0, 0.0)], outputs=[(0, False)]),
    "resnet8": dict(build=lambda: Heads(torch_models.ResNet8()), input=[1, 28, 28],
                    pre=("standardize", 0.286, 0.353), targets=[(10, None)],
                    losses=[(0, 0, 1.0, 0.0)], outputs=[(0, False)]),
    "oddconv": dict(build=lambda: Heads(oddconv()), input=[1, 28, 28],
                    pre=("standardize", 0.286, 0.353), targets=[(10, None)],
                    losses=[(0, 0, 1.0, 0.0)], outputs=[(0, False)]),
    "multitask": dict(build=MultiTask, input=[1, 28, 28], pre=("mean_channel", None, 1.0),
                      targets=[(10, None), (3, (0, COARSE_MAP))],
                      losses=[(0, 0, 1.0, 0.1), (1, 1, 0.5, 0.0)],
                      outputs=[(0, True), (1, True)]),
}

# The train sections of tests/xcheck/<variant>.net. layer_l2: a layer's own
# l2= (by torch module name), overriding the file's regularize l2.
VARIANTS = {
    "mlp_sgd": ("mlp", dict(opt="sgd", lr=0.01, momentum=0.9, nesterov=False, l2=5e-4)),
    "mlp_adam": ("mlp", dict(opt="adam", lr=1e-3, l2=5e-4)),
    "lenet_bn_sgd": ("lenet_bn", dict(opt="sgd", lr=0.01, momentum=0.9, nesterov=False, l2=5e-4)),
    "lenet_bn_adam": ("lenet_bn", dict(opt="adam", lr=1e-3, l2=5e-4)),
    "resnet8_sgd": ("resnet8", dict(opt="sgd", lr=0.1, momentum=0.9, nesterov=True, l2=5e-4)),
    "resnet8_adam": ("resnet8", dict(opt="adam", lr=1e-3, l2=5e-4)),
    "multitask_sgd": ("multitask", dict(opt="sgd", lr=0.05, momentum=0.9, nesterov=True, l2=5e-4,
                                        layer_l2={"trunk.9": 1e-3})),
    "multitask_adam": ("multitask", dict(opt="adam", lr=1e-3, l2=0.0)),
    "oddconv_sgd": ("oddconv", dict(opt="sgd", lr=0.05, momentum=0.9, nesterov=True, l2=5e-4)),
}

BN_KINDS = [("gamma", "weight"), ("beta", "bias"), ("running_mean", "running_mean"),
            ("running_var", "running_var")]


def torch_layers(model):
    """[(module name, module, [(netc kind, tensor)])] in registration order:
    the order netc creates parameters in (source order, weight before bias,
    gamma, beta, running mean, running var)."""
    layers = []
    for mname, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            ts = [("weight", m.weight)] + ([("bias", m.bias)] if m.bias is not None else [])
            layers.append((mname, m, ts))
        elif isinstance(m, nn.BatchNorm2d):
            layers.append((mname, m, [(k, getattr(m, a)) for k, a in BN_KINDS]))
    return layers


def read_params_txt(path):
    """netc's parameter table: [(index, name, trainable, shape)] in its order."""
    rows = []
    with open(path) as f:
        for line in f:
            p = line.split()
            rows.append((int(p[0]), p[1], p[2] == "1", [int(d) for d in p[3:]]))
    return rows


def map_params(netc_rows, layers):
    """Pair netc's parameters with torch's: netc's names grouped by layer
    prefix ("stage2.conv1.weight" -> "stage2.conv1") in order of first
    appearance, matched with torch's layers in order, then by kind within a
    layer. Every pair must agree in shape. Returns [(netc name, torch module
    name, kind, tensor, trainable)]."""
    groups = []
    for _, name, trainable, shape in netc_rows:
        prefix, _, kind = name.rpartition(".")
        if not groups or groups[-1][0] != prefix:
            groups.append((prefix, []))
        groups[-1][1].append((name, kind, trainable, shape))
    if len(groups) != len(layers):
        raise SystemExit(f"xcheck: netc has {len(groups)} parameterized layers "
                         f"({[g[0] for g in groups]}), torch {len(layers)}")
    pairs = []
    for (prefix, items), (mname, _, ts) in zip(groups, layers):
        tk = dict(ts)
        if sorted(k for _, k, _, _ in items) != sorted(tk):
            raise SystemExit(f"xcheck: layer {prefix} has {[k for _, k, _, _ in items]}, "
                             f"torch {mname} has {sorted(tk)}")
        for name, kind, trainable, shape in items:
            t = tk[kind]
            if list(t.shape) != shape:
                raise SystemExit(f"xcheck: {name} is {shape}, torch {mname}.{kind} is "
                                 f"{list(t.shape)}")
            if trainable != (kind in ("weight", "bias", "gamma", "beta")):
                raise SystemExit(f"xcheck: {name}: trainable={trainable} for a {kind}")
            pairs.append((name, mname, kind, t, trainable))
    return pairs


# ---- the batch -----------------------------------------------------------------


def make_batch(spec, n, seed):
    """Pixels k/255 as decoded uint8 images are, labels uniform, mapped
    targets through their map."""
    rng = np.random.RandomState(seed)
    size = int(np.prod(spec["input"]))
    x = (rng.randint(0, 256, size=(n, size)) / 255.0).astype(np.float32)
    labels = []
    for classes, mp in spec["targets"]:
        if mp is None:
            labels.append(rng.randint(0, classes, size=n).astype(np.int32))
        else:
            base, table = mp
            labels.append(np.array([table[y] for y in labels[base]], dtype=np.int32))
    return x, labels


def write_batch(path, x, labels, fit):
    with open(path, "wb") as f:
        f.write(b"XCB1")
        f.write(struct.pack("<iiqii", x.shape[0], len(labels), x.shape[1], int(fit), 0))
        f.write(x.astype("<f4").tobytes())
        for y in labels:
            f.write(y.astype("<i4").tobytes())


# ---- comparison -------------------------------------------------------------------


class Table:
    """Rows of (category, tensor, error, max abs diff, ok, note): printed when
    verbose or failing; per-category maxima at the end."""

    def __init__(self, tol, verbose):
        self.tol, self.verbose, self.rows, self.notes = tol, verbose, [], []

    def compare(self, cat, name, got, ref):
        if got is None:
            self.add(cat, name, float("inf"), float("inf"), "missing in netc's output")
            return
        got = np.asarray(got, dtype=np.float64).reshape(-1)
        ref = np.asarray(ref, dtype=np.float64).reshape(-1)
        if got.shape != ref.shape:
            self.add(cat, name, float("inf"), float("inf"), f"shape {got.shape} vs {ref.shape}")
            return
        if not np.all(np.isfinite(got)):
            self.add(cat, name, float("inf"), float("inf"), "non-finite values")
            return
        diff = np.abs(got - ref)
        tiny = 1e-30
        norm = float(np.linalg.norm(got - ref) / max(float(np.linalg.norm(ref)), tiny))
        scale = float(diff.max(initial=0.0) / max(float(np.abs(ref).max(initial=0.0)), tiny))
        if norm == 0.0 and scale == 0.0:
            self.add(cat, name, 0.0, 0.0, "")
            return
        i = int(np.argmax(diff))
        self.add(cat, name, max(norm, scale), float(diff[i]),
                 f"norm {norm:.2e} scale {scale:.2e}; worst [{i}] netc {got[i]:.9g} "
                 f"torch {ref[i]:.9g}")

    def compare_update(self, cat, name, got, ref, old, allow):
        """The step itself, p_after - p_before, which a parameter comparison
        hides (a wrong L2 term of lr * 5e-4 * w changes w by 5e-6 of itself).
        Per element, the float32 rounding an exact implementation cannot
        avoid (allow: see update_allowance) is forgiven; the rest is measured
        against the size of the update."""
        if got is None:
            self.add(cat, name, float("inf"), float("inf"), "missing in netc's output")
            return
        got, ref, old = (np.asarray(a, dtype=np.float64).reshape(-1) for a in (got, ref, old))
        e = np.maximum(np.abs(got - ref) - allow.reshape(-1), 0.0)
        step = ref - old
        tiny = 1e-30
        norm = float(np.linalg.norm(e) / max(float(np.linalg.norm(step)), tiny))
        scale = float(e.max(initial=0.0) / max(float(np.abs(step).max(initial=0.0)), tiny))
        i = int(np.argmax(e)) if e.size else 0
        self.add(cat, name, max(norm, scale), float(e[i]) if e.size else 0.0,
                 f"norm {norm:.2e} scale {scale:.2e}; worst [{i}] netc step {got[i] - old[i]:.9g} "
                 f"torch step {step[i]:.9g}")

    def note(self, cat, name, what):
        """Information, not a check."""
        self.notes.append((cat, name, what))
        print(f"  note {cat:<8} {name:<40} {what}")

    def bound(self, cat, name, value, limit, what):
        """A check of the form value <= limit, reported as value / limit * tol."""
        r = value / limit * self.tol if limit > 0 else (0.0 if value == 0 else float("inf"))
        self.add(cat, name, r, value, f"{what}: {value:.3g} <= {limit:.3g}")

    def add(self, cat, name, rel, absd, note):
        ok = rel <= self.tol
        self.rows.append((cat, name, rel, absd, ok, note))
        if self.verbose or not ok:
            print(f"  {'ok  ' if ok else 'FAIL'} {cat:<8} {name:<40} rel {rel:.3e} abs {absd:.3e}"
                  f"  {note if not ok else ''}")

    def summary(self):
        cats = {}
        for cat, _, rel, _, ok, _ in self.rows:
            c = cats.setdefault(cat, [0, 0.0, True])
            c[0] += 1
            c[1] = max(c[1], rel)
            c[2] = c[2] and ok
        return cats

    def ok(self):
        return all(r[4] for r in self.rows)


# ---- the PyTorch replay -------------------------------------------------------------


def preprocess(spec, x):
    kind, mean, std = spec["pre"]
    return (x - mean) / std if kind == "standardize" else x - mean


def losses_of(spec, heads, ys):
    total = 0.0
    for h, t, w, smooth in spec["losses"]:
        total = total + w * F.cross_entropy(heads[h], ys[t], label_smoothing=smooth)
    return total


def predict(spec, model, xp):
    model.eval()
    with torch.no_grad():
        heads = model(xp)
    model.train()
    return [torch.softmax(heads[h], dim=1) if sm else heads[h] for h, sm in spec["outputs"]]


def make_optimizer(cfg, model, pairs):
    """Per-parameter groups so that L2 falls on conv/dense weights only (and
    a layer's own l2= where given), as netc's regularize l2 says; PyTorch's
    weight_decay adds wd * w to the gradient (coupled, also for Adam), which
    is the gradient of J + wd/2 * sum(w^2)."""
    groups = {}
    for _, mname, kind, t, trainable in pairs:
        if not trainable:
            continue
        wd = cfg["layer_l2"].get(mname, cfg["l2"]) if kind == "weight" else 0.0
        groups.setdefault(wd, []).append(t)
    params = [{"params": ts, "weight_decay": wd} for wd, ts in groups.items()]
    if cfg["opt"] == "sgd":
        return torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"],
                               nesterov=cfg["nesterov"])
    return torch.optim.Adam(params, lr=cfg["lr"], betas=(0.9, 0.999), eps=1e-8)


def l2_of(cfg, mname, kind):
    return cfg["layer_l2"].get(mname, cfg["l2"]) if kind == "weight" else 0.0


def check_config(cfg, path, n):
    """The driver's view of the train section must be the one replayed here."""
    conf = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.strip().partition(" ")
            conf.setdefault(k, []).append(v)
    want = {"optimizer": cfg["opt"], "lr": cfg["lr"], "n": n}
    if cfg["opt"] == "sgd":
        want.update(momentum=cfg["momentum"], nesterov=int(cfg["nesterov"]))
    else:
        want.update(beta1=0.9, beta2=0.999, eps=1e-8)
    for k, v in want.items():
        got = conf.get(k, ["?"])[0]
        same = got == v if isinstance(v, str) else abs(float(got) - v) <= 1e-12 * max(1, abs(v))
        if not same:
            raise SystemExit(f"xcheck: the generated model says {k} = {got}, the test replays {v}")
    return conf


def check_preprocess(table, spec, init):
    """The preprocessing statistics netc stores ("preprocess.mean", ".std",
    one per channel) against the literal or batch-fitted values; the replay
    then uses netc's float32 values, so that a batch mean of
    conv(x - mean), nearly zero when the mean was fitted on this very batch,
    is not judged by the rounding of the mean to float32."""
    kind, mean, std = spec["pre"]
    want = {"preprocess.mean": mean, "preprocess.std": std if kind == "standardize" else None}
    got = {}
    for key, val in want.items():
        if val is None:
            continue
        if key not in init:
            table.add("prestat", key, float("inf"), float("inf"), "missing in netc's checkpoint")
            continue
        table.compare("prestat", key, init[key], [val])
        got[key] = float(init[key].reshape(-1)[0])
    return dict(spec, pre=(kind, got.get("preprocess.mean", mean), got.get("preprocess.std", std)))


class Kinks:
    """ReLU inputs within float32 noise of zero. There the mask is a coin
    toss for any float32 implementation (a batchnorm output of 1.5e-7 came
    out <= 0 in netc's float32 and > 0 in float64), and one flipped element
    moves a channel's bias gradient by its whole upstream gradient. torch.relu
    and F.relu are wrapped: `found` collects (call, flat index) of inputs
    with |z| <= delta * max|z| in a forward; `flip` forces the mask of such
    elements the other way, so the replay can take the subgradient netc
    took instead of calling a coin toss a mismatch."""

    def __init__(self, delta):
        self.delta, self.flip, self.found, self.calls = delta, set(), [], 0
        self.relu, self.frelu = torch.relu, F.relu

    def apply(self, z):
        k = self.calls
        self.calls += 1
        mask = z > 0
        if not torch.is_grad_enabled():
            return self.relu(z)
        zf = z.detach().reshape(-1)
        lim = self.delta * float(zf.abs().max()) if zf.numel() else 0.0
        near = torch.nonzero(zf.abs() <= lim).reshape(-1).tolist() if lim > 0 else []
        self.found += [(k, i) for i in near]
        flips = [i for (c, i) in self.flip if c == k]
        if flips:
            mask = mask.clone().reshape(-1)
            mask[flips] = ~mask[flips]
            mask = mask.reshape(z.shape)
        return z * mask

    def install(self):
        torch.relu = lambda z: self.apply(z)
        F.relu = lambda z, inplace=False: self.apply(z)

    def begin(self, flip):
        self.flip, self.found, self.calls = set(flip), [], 0


KINKS = Kinks(float(os.environ.get("XCHECK_KINK", "1e-6")))


def grads_error(res, pairs, cfg, step, args):
    """The largest normwise/scale-relative gradient error (the table's
    metric), to pick among the subgradients at ReLU kinks."""
    worst = 0.0
    gscale = max(float(t.grad.abs().max()) for _, _, _, t, tr in pairs if tr)
    for name, mname, kind, t, tr in pairs:
        if tr and float(t.grad.abs().max()) > 1e-10 * gscale:  # not a structural zero
            ref = grad_ref(t, cfg, mname, kind, args.grad_has_l2).numpy().reshape(-1)
            d = res[f"grad{step}.{name}"].astype(np.float64).reshape(-1) - ref
            worst = max(worst, float(np.abs(d).max() / max(float(np.abs(ref).max()), 1e-30)))
    return worst


def replay_backward(spec, model, xp, ys, pairs, state, res, step, cfg, args, table):
    """Forward and backward from netc's state before `step`, leaving the
    reference gradients in .grad. Where ReLU inputs sit within float32
    noise of zero (at most 16), flips that bring the reference closer to
    netc's gradients are kept, greedily; the table
    notes how many there were. Returns the loss."""
    def run(flip):
        load_state(pairs, state)
        model.zero_grad()
        KINKS.begin(flip)
        loss = losses_of(spec, model(xp), ys)
        loss.backward()
        return loss

    loss = run(())
    near = list(KINKS.found)
    if not near:
        return loss
    base = grads_error(res, pairs, cfg, step, args)
    best, best_err = (), base
    if len(near) <= 16:
        # Greedy: the flips in order of how much each helps alone, each kept
        # only if it brings the reference closer to netc with those before.
        single = []
        for e in near:
            run((e,))
            single.append((grads_error(res, pairs, cfg, step, args), e))
        for err, e in sorted(single):
            if err >= base:
                break
            run(best + (e,))
            err = grads_error(res, pairs, cfg, step, args)
            if err < best_err:
                best, best_err = best + (e,), err
    table.note("kink", f"step{step}", f"{len(near)} ReLU input(s) within {KINKS.delta:g} of "
               f"their tensor's max |z|; {len(best)} taken the other way, as netc did")
    return run(best)


def load_state(pairs, tensors):
    """Parameters and running statistics from a netc checkpoint, widened to
    float64."""
    with torch.no_grad():
        for name, _, _, t, _ in pairs:
            if name not in tensors:
                raise SystemExit(f"xcheck: {name} is not in netc's checkpoint")
            t.copy_(torch.from_numpy(tensors[name].astype(np.float64)))


def replay(variant, args, table):
    mname, cfg = VARIANTS[variant]
    cfg = dict(cfg)
    cfg.setdefault("layer_l2", {})
    spec = MODELS[mname]
    work = args.work
    os.makedirs(work, exist_ok=True)
    x, labels = make_batch(spec, args.n, args.seed)
    fit = spec["pre"][1] is None
    write_batch(os.path.join(work, "batch.bin"), x, labels, fit)
    if fit:  # statistics fitted on the batch itself, in double as netc does
        spec = dict(spec, pre=(spec["pre"][0], float(np.round(x.astype(np.float64) * 255).mean()
                                                     / 255.0), 1.0))
    env = dict(os.environ, XCHECK_VARIANT=variant)  # for torch_f32_driver.py
    run = subprocess.run([args.driver, "xcheck", work, str(args.steps)], capture_output=True,
                         text=True, env=env)
    sys.stdout.write(run.stdout)
    if run.returncode != 0:
        sys.stderr.write(run.stderr)
        raise SystemExit(f"xcheck: driver failed with exit code {run.returncode}")
    check_config(cfg, os.path.join(work, "config.txt"), args.n)

    torch.manual_seed(0)
    model = spec["build"]().double()
    pairs = map_params(read_params_txt(os.path.join(work, "params.txt")), torch_layers(model))
    init, _ = st_read(os.path.join(work, "init.safetensors"))
    load_state(pairs, init)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum, m.eps = 0.1, 1e-5
    res, _ = st_read(os.path.join(work, "results.safetensors"))
    spec = check_preprocess(table, spec, init)

    xt = torch.from_numpy(x.astype(np.float64)).view(args.n, *spec["input"])
    xp = preprocess(spec, xt)
    ys = [torch.from_numpy(y.astype(np.int64)) for y in labels]
    for k, p in enumerate(predict(spec, model, xp)):
        table.compare("predict", f"before.{k}", res[f"pred0.{k}"], p.numpy())

    opt = make_optimizer(cfg, model, pairs)
    model.train()
    state = init
    for step in range(1, args.steps + 1):
        loss = replay_backward(spec, model, xp, ys, pairs, state, res, step, cfg, args, table)
        penalty = sum(0.5 * l2_of(cfg, mn, k) * float((t.detach() ** 2).sum())
                      for _, mn, k, t, tr in pairs if tr)
        table.compare("loss", f"step{step}", res["loss"][step - 1:step],
                      [float(loss) + (penalty if args.loss_has_l2 else 0.0)])
        compare_grads(table, res, pairs, cfg, step, args)
        feed_netc_grads(res, pairs, cfg, step, args)
        opt.step()
        prev = state
        state, _ = st_read(os.path.join(work, f"step{step}.safetensors"))
        compare_opt_state(table, opt, cfg, state, pairs, step)
        for name, mname, kind, t, tr in pairs:
            table.compare("param" if tr else "bnstat", f"step{step}.{name}", state.get(name),
                          t.detach().numpy())
            if tr:
                allow = update_allowance(opt, cfg, t, l2_of(cfg, mname, kind), prev[name])
                table.compare_update("update", f"step{step}.{name}", state.get(name),
                                     t.detach().numpy(), prev[name], allow)
    load_state(pairs, state)
    for k, p in enumerate(predict(spec, model, xp)):
        table.compare("predict", f"after.{k}", res[f"pred_final.{k}"], p.numpy())


def update_allowance(opt, cfg, t, wd, old):
    """Rounding a float32 step cannot avoid, per element: one ulp of the
    stored parameter, plus the effective gradient g + wd * w rounded once
    (2^-24 relative, x4 for a few operations) times the step's sensitivity
    to it: lr (1 + momentum) for SGD; for Adam lr * (1 - b1) / (1 - b1^t) /
    (sqrt(v_hat) + eps), which reaches lr / eps = 1e5 where the L2 term
    cancels the data gradient."""
    ref = t.detach().numpy()
    ulp = np.abs(np.spacing(ref.astype(np.float32))).astype(np.float64)
    geff = np.abs(t.grad.numpy()) + np.abs(wd * old.astype(np.float64))
    if cfg["opt"] == "sgd":
        kappa = cfg["lr"] * (1 + cfg["momentum"])
    else:
        st = opt.state[t]
        k = float(st["step"])
        vhat = st["exp_avg_sq"].numpy() / (1 - 0.999 ** k)
        kappa = cfg["lr"] * 0.1 / (1 - 0.9 ** k) / (np.sqrt(vhat) + 1e-8)
    return ulp + kappa * 4 * 2.0 ** -24 * geff


# netc's checkpoint names for optimizer state -> PyTorch's state keys.
OPT_STATE = {"sgd": [("momentum", "momentum_buffer")],
             "adam": [("adam_m", "exp_avg"), ("adam_v", "exp_avg_sq")]}


def compare_opt_state(table, opt, cfg, state, pairs, step):
    """Momentum buffers and Adam moments in netc's checkpoint against
    PyTorch's optimizer state after the same step (both from netc's
    gradients). Only where the optimizer keeps state: plain SGD has none."""
    if cfg["opt"] == "sgd" and cfg["momentum"] == 0:
        return
    for name, _, _, t, tr in pairs:
        if not tr:
            continue
        for sfx, key in OPT_STATE[cfg["opt"]]:
            table.compare("optstate", f"step{step}.{name}.{sfx}", state.get(f"{name}.{sfx}"),
                          opt.state[t][key].numpy())


def feed_netc_grads(res, pairs, cfg, step, args):
    """Replace the reference gradients by netc's, as the data-loss gradient
    torch's optimizer expects (it adds the L2 term itself)."""
    with torch.no_grad():
        for name, mname, kind, t, tr in pairs:
            if tr:
                g = torch.from_numpy(res[f"grad{step}.{name}"].astype(np.float64))
                if args.grad_has_l2:
                    g = g - l2_of(cfg, mname, kind) * t
                t.grad.copy_(g)


def grad_ref(t, cfg, mname, kind, has_l2):
    g = t.grad.detach()
    return g + l2_of(cfg, mname, kind) * t.detach() if has_l2 else g


def compare_grads(table, res, pairs, cfg, step, args):
    """Every gradient, before the update. A tensor whose reference gradient is
    zero up to float64 rounding (a conv's bias right before batchnorm: the
    normalization removes it exactly) has no relative figure; there netc's
    gradient must be negligible against the model's gradient scale."""
    gscale = max(float(t.grad.abs().max()) for _, _, _, t, tr in pairs if tr)
    for name, mname, kind, t, tr in pairs:
        if not tr:
            continue
        got = res[f"grad{step}.{name}"]
        if float(t.grad.abs().max()) <= 1e-10 * gscale:
            table.bound("grad", f"step{step}.{name} (zero)", float(np.abs(got).max()),
                        1e-5 * gscale, "max|g| vs 1e-5 x the largest gradient")
        else:
            table.compare("grad", f"step{step}.{name}", got,
                          grad_ref(t, cfg, mname, kind, args.grad_has_l2).numpy())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("variant", choices=sorted(VARIANTS))
    ap.add_argument("driver")
    ap.add_argument("work")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--n", type=int, default=32, help="samples in the batch")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--grad-has-l2", type=int, default=1,
                    help="1 (netc's contract: nrt_penalty_grad adds l2 * w into the gradient "
                         "buffer before the update): grad() includes the L2 term")
    ap.add_argument("--loss-has-l2", type=int, default=0,
                    help="1: the loss train_step returns includes the L2 penalty (netc's: no, "
                         "it is the weighted data loss)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    KINKS.install()
    table = Table(args.tol, args.verbose)
    replay(args.variant, args, table)
    cats = table.summary()
    line = "  ".join(f"{c} {v[1]:.2e}{'' if v[2] else '!'}" for c, v in cats.items())
    print(f"XCHECK {args.variant:<16} {'PASS' if table.ok() else 'FAIL'}  {line}")
    return 0 if table.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
