"""reg_xcheck.py DRIVER WORKDIR - libnetrt's regularizers against PyTorch.

1. Fractional max pooling with fixed samples: F.fractional_max_pool2d(x, k,
   output_size, return_indices=True, _random_samples=u) forward (values and
   indices) and backward (x.grad for a random dy) against netc's kernels
   (nrt_fracpool_forward/backward) on torch's regions
   (nrt_fracpool_regions_torch). Values and indices must be identical;
   dx must be identical too: each input gets the sum of the dy of the
   outputs that chose it, and both sides add them in output order.
   (netc's fractional_maxpool *layer* draws Graham's pseudo-random
   sequences from Philox instead of torch's fixed-size windows; the layer
   shares these kernels, so this check covers max, argmax and the gradient
   routing; the region rule itself is tested in test_pool.c.)
2. torchvision.ops.stochastic_depth(x, p, mode="row") with netc's mask: the
   Bernoulli draw inside torchvision is replaced by the keep pattern netc
   drew (Philox, the generated code's key), so torchvision's own code runs.
   y and the gradient must be identical where torchvision's survivor scale
   1 / float32(1 - p) equals netc's float32(1 / (1 - p)); the two roundings
   may differ by one ulp, then the difference is at most 1 ulp of y.
3. mixup loss: lam * CE(logits, y) + (1 - lam) * CE(logits, y[perm]) with
   torch in float64 from the same float32 logits, with and without label
   smoothing; loss and dlogits within 1e-6 relative (netc: float logits,
   double sums).
Exit 0 all agree, 1 a mismatch, 77 no torch.
"""
import os
import subprocess
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError:
    print("reg_xcheck: SKIP: no torch/numpy")
    sys.exit(77)
try:
    import torchvision.ops
except ImportError:
    torchvision = None

DRIVER, WORK = sys.argv[1], sys.argv[2]
os.makedirs(WORK, exist_ok=True)
fails = []


def run(mode, parts):
    inp, out = os.path.join(WORK, mode + ".in"), os.path.join(WORK, mode + ".out")
    with open(inp, "wb") as f:
        for p in parts:
            f.write(np.ascontiguousarray(p).tobytes())
    subprocess.run([DRIVER, mode, inp, out], check=True)
    return open(out, "rb").read()


def take(buf, pos, dtype, count):
    a = np.frombuffer(buf, dtype=dtype, count=count, offset=pos)
    return a, pos + a.nbytes


def check(name, ok, detail=""):
    print("%s %s %s" % ("ok  " if ok else "FAIL", name, detail))
    if not ok:
        fails.append(name)


def frac(n, c, h, w, oh, ow, k, seed):
    g = np.random.default_rng(seed)
    x = g.standard_normal((n, c, h, w)).astype(np.float32)
    x[0, 0, :2, :2] = 0.5     # ties: the first index wins on both sides
    u = g.random((n, c, 2)).astype(np.float32) * np.float32(0.999)
    dy = g.standard_normal((n, c, oh, ow)).astype(np.float32)
    buf = run("frac", [np.array([n, c, h, w, oh, ow, k], np.int64), x, u, dy])
    P = n * c
    y, pos = take(buf, 0, np.float32, P * oh * ow)
    arg, pos = take(buf, pos, np.int32, P * oh * ow)
    dx, pos = take(buf, pos, np.float32, P * h * w)
    tx = torch.tensor(x, requires_grad=True)
    ty, ti = F.fractional_max_pool2d(tx, k, output_size=(oh, ow), return_indices=True,
                                     _random_samples=torch.tensor(u))
    ty.backward(torch.tensor(dy))
    tag = "fractional_max_pool2d %dx%d->%dx%d k%d" % (h, w, oh, ow, k)
    check(tag + " forward", np.array_equal(y, ty.detach().numpy().ravel()))
    check(tag + " indices", np.array_equal(arg, ti.numpy().ravel().astype(np.int32)))
    d = np.abs(dx - tx.grad.numpy().ravel())
    check(tag + " backward", np.array_equal(dx, tx.grad.numpy().ravel()),
          "(max |diff| %.3g)" % d.max())


def drop_path(n, d, p, seed, step):
    g = np.random.default_rng(seed)
    x = g.standard_normal((n, d)).astype(np.float32)
    dy = g.standard_normal((n, d)).astype(np.float32)
    buf = run("drop_path", [np.array([n, d, seed, step], np.int64), np.array([p], np.float64),
                            x, dy])
    scale, pos = take(buf, 0, np.float32, n)
    y, pos = take(buf, pos, np.float32, n * d)
    dx, pos = take(buf, pos, np.float32, n * d)
    keep = (scale != 0).astype(np.float32)
    tag = "stochastic_depth(p=%g, row) n=%d" % (p, n)
    original = torch.Tensor.bernoulli_

    def netc_mask(self, *args, **kwargs):
        return self.copy_(torch.tensor(keep).reshape(self.shape))
    torch.Tensor.bernoulli_ = netc_mask
    try:
        tx = torch.tensor(x.reshape(n, d, 1, 1), requires_grad=True)
        ty = torchvision.ops.stochastic_depth(tx, p, "row", training=True)
        ty.backward(torch.tensor(dy.reshape(n, d, 1, 1)))
    finally:
        torch.Tensor.bernoulli_ = original
    ty = ty.detach().numpy().ravel()
    tgrad = tx.grad.numpy().ravel()
    tscale = np.float32(1.0) / np.float32(1.0 - p)
    same_scale = tscale == np.float32(1.0 / (1.0 - p))
    alive = keep.sum()
    if same_scale:
        check(tag + " forward", np.array_equal(y, ty), "(%d of %d rows kept)" % (alive, n))
        check(tag + " backward", np.array_equal(dx, tgrad))
    else:
        ulp = np.spacing(np.abs(ty)).max()
        check(tag + " forward", np.abs(y - ty).max() <= ulp,
              "(scales differ by one rounding: max |diff| %.3g)" % np.abs(y - ty).max())
        check(tag + " backward", np.abs(dx - tgrad).max() <= np.spacing(np.abs(tgrad)).max())
    check(tag + " survival pattern", alive > 0 and alive < n)


def mix(n, k, lam, smoothing, seed):
    g = np.random.default_rng(seed)
    logits = (g.standard_normal((n, k)) * 3).astype(np.float32)
    labels = g.integers(0, k, n).astype(np.int32)
    perm = g.permutation(n).astype(np.int64)
    buf = run("mix", [np.array([n, k], np.int64), np.array([lam, smoothing], np.float64),
                      logits, labels, perm])
    loss, pos = take(buf, 0, np.float64, 1)
    dl, pos = take(buf, pos, np.float32, n * k)
    tl = torch.tensor(logits.astype(np.float64), requires_grad=True)
    y = torch.tensor(labels.astype(np.int64))
    tloss = lam * F.cross_entropy(tl, y, label_smoothing=smoothing) + \
        (1 - lam) * F.cross_entropy(tl, y[torch.tensor(perm)], label_smoothing=smoothing)
    tloss.backward()
    tag = "mixup loss lambda=%g smoothing=%g" % (lam, smoothing)
    rl = abs(loss[0] - tloss.item()) / abs(tloss.item())
    check(tag + " value", rl < 1e-6, "(rel diff %.2g)" % rl)
    tg = tl.grad.numpy().ravel()
    rg = np.abs(dl - tg).max() / np.abs(tg).max()
    check(tag + " dlogits", rg < 1e-6, "(rel diff %.2g)" % rg)


frac(2, 3, 11, 13, 7, 8, 2, 1)
frac(3, 2, 28, 28, 19, 19, 2, 2)
frac(1, 4, 17, 9, 5, 4, 3, 3)
if torchvision is None:
    print("reg_xcheck: torchvision missing: stochastic_depth not checked")
else:
    drop_path(64, 12, 0.2, 7, 3)
    drop_path(32, 5, 0.5, 8, 11)
    drop_path(40, 3, 0.3, 9, 0)
mix(32, 10, 0.7, 0.0, 4)
mix(16, 5, 0.25, 0.1, 5)
mix(8, 10, 1.0, 0.0, 6)
print("reg_xcheck: %d failed" % len(fails))
sys.exit(1 if fails else 0)
