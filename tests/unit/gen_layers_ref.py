#!/usr/bin/python3
"""Reference numbers for tests/unit/test_optim.c, test_loss.c, test_pool.c.

Run once with Debian's python3-torch (1.13): /usr/bin/python3 gen_layers_ref.py
and paste the printed C arrays into the tests. Inputs are pure functions of
the index, val(i, a, b) = float32(sin(a*i + b)), which the C tests rebuild
with (float)sin(a*i + b) (same libm, same double, same rounding).
"""
import math
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float32)


def val(n, a, b):
    return torch.tensor([math.sin(a * i + b) for i in range(n)], dtype=torch.float32)


def carr(name, t):
    vals = ", ".join("%.9g" % v for v in t.flatten().tolist())
    print("static const double %s[%d] = {%s};" % (name, t.numel(), vals))


def optim_ref(name, make, steps=3, n=7):
    w = val(n, 0.7, 0.3).clone().requires_grad_(True)
    opt = make([w])
    for s in range(steps):
        w.grad = val(n, 1.3, 0.5 + s)
        opt.step()
    carr(name, w.detach())
    return opt


optim_ref("torch_sgd_nesterov", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True))
optim_ref("torch_sgd_momentum", lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.5))
optim_ref("torch_adam", lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, 0.999), eps=1e-8))
optim_ref("torch_adam_l2", lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1))
optim_ref("torch_adamw", lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1))

# cross entropy with label smoothing 0.1, n=5 rows of k=4 logits, labels i % 4.
z = val(20, 0.9, 0.2).mul(3).view(5, 4).requires_grad_(True)
y = torch.tensor([i % 4 for i in range(5)])
loss = F.cross_entropy(z, y, label_smoothing=0.1)
loss.backward()
print("static const double torch_ce_smooth_loss = %.17g;" % loss.item())
carr("torch_ce_smooth_grad", z.grad)

# fractional max pooling: x (2, 3, 9, 11), kernel 2, output 6 x 7.
x = val(2 * 3 * 9 * 11, 0.61, 0.05).view(2, 3, 9, 11)
u = val(2 * 3 * 2, 2.3, 0.9).abs().view(2, 3, 2) * 0.99
yf, idx = F.fractional_max_pool2d(x, 2, output_size=(6, 7), return_indices=True, _random_samples=u)
carr("torch_frac_y", yf)
carr("torch_frac_idx", idx)
