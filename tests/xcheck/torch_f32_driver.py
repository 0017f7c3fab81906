#!/usr/bin/python3
"""torch_f32_driver.py - PyTorch in float32 standing in for a generated model.

Speaks xcheck_driver's protocol (`xcheck DIR STEPS`: reads DIR/batch.bin,
writes init/step<k>.safetensors, results.safetensors, params.txt,
config.txt) and follows netc's conventions (grad() includes the L2 term, the
loss does not) for the variant named in $XCHECK_VARIANT, so the harness itself
can be tested without netc: a correct float32 implementation must pass
xcheck.py's tolerance (this is how 1e-4 was calibrated: PyTorch's own float32
step sits at 1e-5 or below), and a deliberately wrong one
($XCHECK_BREAK=l2_bias: L2 on biases too; =bn_momentum: batchnorm momentum
0.2; =adam_eps: eps 1e-3) must fail.
"""
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xcheck as X  # noqa: E402


def st_write(path, tensors):
    header, blobs, off = {}, [], 0
    for k, v in tensors.items():
        b = np.ascontiguousarray(v, dtype="<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(np.shape(v)), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_batch(path, ntargets_expected):
    raw = open(path, "rb").read()
    n, nt, isz, fit, _ = struct.unpack("<iiqii", raw[4:28])
    assert raw[:4] == b"XCB1" and nt == ntargets_expected
    off = 28
    x = np.frombuffer(raw[off:off + 4 * n * isz], "<f4").reshape(n, isz)
    off += 4 * n * isz
    ys = []
    for _ in range(nt):
        ys.append(np.frombuffer(raw[off:off + 4 * n], "<i4"))
        off += 4 * n
    return x, ys, fit


def main():
    variant, brk = os.environ["XCHECK_VARIANT"], os.environ.get("XCHECK_BREAK", "")
    mname, cfg = X.VARIANTS[variant]
    cfg = dict(cfg, layer_l2=dict(cfg.get("layer_l2", {})))
    spec = X.MODELS[mname]
    work, steps = sys.argv[2], int(sys.argv[3])
    x, ys, fit = read_batch(os.path.join(work, "batch.bin"), len(spec["targets"]))
    n = x.shape[0]
    torch.manual_seed(1)
    model = spec["build"]()
    names = [(ln.replace(".", "_") + "." + k, ln, k, t, k in ("weight", "bias", "gamma", "beta"))
             for ln, _, ts in X.torch_layers(model) for k, t in ts]
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d) and brk == "bn_momentum":
            m.momentum = 0.2
    with open(os.path.join(work, "params.txt"), "w") as f:
        for i, (nm, _, _, t, tr) in enumerate(names):
            f.write(f"{i} {nm} {int(tr)} {' '.join(map(str, t.shape))}\n")
    with open(os.path.join(work, "config.txt"), "w") as f:
        f.write(f"n {n}\noptimizer {cfg['opt']}\nlr {cfg['lr']}\nmomentum {cfg.get('momentum', 0)}\n"
                f"nesterov {int(cfg.get('nesterov', False))}\nbeta1 0.9\nbeta2 0.999\neps 1e-8\n")

    opt = None

    def state():  # parameters, running statistics, optimizer state as netc names them
        out = {nm: t.detach().numpy().copy() for nm, _, _, t, _ in names}
        for nm, _, _, t, tr in names:
            st = opt.state.get(t, {}) if opt is not None and tr else {}
            for sfx, key in X.OPT_STATE[cfg["opt"]]:
                if key in st:
                    out[f"{nm}.{sfx}"] = st[key].numpy().copy()
        return out

    if fit:
        mean = float(np.round(x.astype(np.float64) * 255).mean() / 255)
        spec = dict(spec, pre=(spec["pre"][0], mean, 1.0))
    pre = {"preprocess.mean": np.array([spec["pre"][1]], np.float32)}
    if spec["pre"][0] == "standardize":
        pre["preprocess.std"] = np.array([spec["pre"][2]], np.float32)
    st_write(os.path.join(work, "init.safetensors"), dict(state(), **pre))
    xp = X.preprocess(spec, torch.from_numpy(x.copy()).view(n, *spec["input"])).float()
    yt = [torch.from_numpy(y.astype(np.int64)) for y in ys]
    res = {f"pred0.{k}": p.numpy() for k, p in enumerate(X.predict(spec, model, xp))}
    opt = X.make_optimizer(cfg, model, names)
    if brk == "l2_bias":
        opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg.get("momentum", 0),
                              nesterov=cfg.get("nesterov", False), weight_decay=cfg["l2"]) \
            if cfg["opt"] == "sgd" else torch.optim.Adam(model.parameters(), lr=cfg["lr"],
                                                         weight_decay=cfg["l2"])
    if brk == "adam_eps":
        for g in opt.param_groups:
            g["eps"] = 1e-3
    losses = []
    for s in range(1, steps + 1):
        opt.zero_grad()
        loss = X.losses_of(spec, model(xp), yt)
        loss.backward()
        losses.append(float(loss))
        for nm, ln, k, t, tr in names:
            if tr:  # as netc reports it: with the L2 term (nrt_penalty_grad)
                wd = X.l2_of(cfg, ln, k)
                res[f"grad{s}.{nm}"] = (t.grad + wd * t.detach()).numpy().copy()
        opt.step()
        st_write(os.path.join(work, f"step{s}.safetensors"), state())
    res.update({f"pred_final.{k}": p.numpy() for k, p in enumerate(X.predict(spec, model, xp))})
    res["loss"] = np.array(losses, np.float32)
    st_write(os.path.join(work, "results.safetensors"), res)
    print(f"torch float32 stand-in: {variant}: loss {' '.join(f'{v:.7g}' for v in losses)}")


if __name__ == "__main__":
    main()
