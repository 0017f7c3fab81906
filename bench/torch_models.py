"""The reference models of PERFORMANCE.md in PyTorch.

Used by bench_torch.py (the PyTorch side of the benchmark) and by the
cross-check tests, so both compare netc with exactly these networks.
Parameter names match netc's checkpoint names where the test maps them.
"""
import torch
import torch.nn as nn


def mlp(p_drop=0.5):
    """784-512-256-10, ReLU, dropout after each hidden layer."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 512), nn.ReLU(), nn.Dropout(p_drop),
        nn.Linear(512, 256), nn.ReLU(), nn.Dropout(p_drop),
        nn.Linear(256, 10))


def lenet_bn(p_drop=0.5):
    """conv 6@5x5 pad 2 - BN - ReLU - pool - conv 16@5x5 - BN - ReLU - pool -
    dense 120 - ReLU - dropout - dense 84 - ReLU - dense 10."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Dropout(p_drop),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x if self.shortcut is None else self.shortcut(x)
        return torch.relu(y + s)


class ResNet8(nn.Module):
    """conv3x3 16 - BN - ReLU; stages 16, 32/2, 64/2 of one basic block;
    global average pool; dense 10."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1), nn.BatchNorm2d(16), nn.ReLU())
        self.stages = nn.Sequential(BasicBlock(16, 16, 1), BasicBlock(16, 32, 2),
                                    BasicBlock(32, 64, 2))
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        x = self.stages(self.stem(x))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


MODELS = {"mlp": mlp, "lenet_bn": lenet_bn, "resnet8": ResNet8}


def forward_flops(name):
    """Forward FLOPs per sample (multiply-add = 2), convs and dense only."""
    model = MODELS[name]()
    flops = 0
    x = torch.zeros(1, 1, 28, 28)
    hooks = []

    def conv_hook(m, inp, out):
        nonlocal flops
        flops += 2 * out.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1]

    def lin_hook(m, inp, out):
        nonlocal flops
        flops += 2 * m.in_features * m.out_features

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(lin_hook))
    model.eval()
    with torch.no_grad():
        model(x)
    return flops
