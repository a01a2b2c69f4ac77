#!/usr/bin/python3
"""Whole-network fixture for resnet.cpp: a small ResNet in the tutorial's style trained by PyTorch.

Run with Debian's python3 (python3-torch):

    /usr/bin/python3 tests/reference/generate_network_fixture.py

It writes tests/reference/fixtures/network_sgd.rnfx (format and layouts: generate_fixtures.py),
read by tests/graph/test_network_fixture.cpp. In the style of llm.c's reference check: the same
initial weights, the same batch and the same optimizer, then for every step the loss and the
gradient of every trainable parameter, and at the end every parameter (moving statistics too).

The network (the layer names of resnet.cpp's zoo blocks, resnet/models.h):
    input (4, 16, 16, 3)
    conv1 3x3 'same' (8) -> bn_conv1 -> ReLU -> MaxPooling2D 2x2 stride 2         -> 8x8x8
    convolutional_block(f=3, [4, 4, 16], stage=2, block='a', s=1)                  -> 8x8x16
    identity_block(f=3, [4, 4, 16], stage=2, block='b')
    convolutional_block(f=3, [8, 8, 32], stage=3, block='a', s=2)                  -> 4x4x32
    identity_block(f=3, [8, 8, 32], stage=3, block='b')
    GlobalAveragePooling2D -> Dense(6, softmax) "fc"
Loss: categorical cross-entropy, mean over the batch. Optimizer: Keras SGD(learning_rate 0.05,
momentum 0.9): v = 0.9 v - 0.05 g, w += v (torch.optim.SGD at a constant rate is the same).
BatchNormalization in training mode (Keras momentum 0.99, epsilon 1e-3), as in fit.

Names:
    input, labels (one-hot)
    <layer>/<param>                          initial values (kernel, bias, gamma, beta,
                                             moving_mean, moving_variance)
    step<k>/loss                             (1,), k = 1..STEPS, before the k-th update
    step<k>/<layer>/grad_<param>             every trainable parameter's gradient at step k
    final/<layer>/<param>                    every parameter after the last step
"""

import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from generate_fixtures import BN, Conv, OUT_DIR, hwio, nchw, read_rnfx, write_rnfx  # noqa: E402

STEPS = 3
LR = 0.05
MOMENTUM = 0.9
N, H, W, C, CLASSES = 4, 16, 16, 3, 6
MAX_BYTES = 400 * 1024


class Dense:
    def __init__(self, name, d_in, units):
        self.name = name
        limit = (6.0 / (d_in + units)) ** 0.5
        self.weight = ((torch.rand(units, d_in, dtype=torch.float64) * 2 - 1) * limit)
        self.bias = torch.randn(units, dtype=torch.float64) * 0.1
        self.weight.requires_grad_(True)
        self.bias.requires_grad_(True)

    def __call__(self, x, training):
        return F.linear(x, self.weight, self.bias)

    def named(self):
        return [(self.name + "/kernel", self.weight, lambda t: t.t()),
                (self.name + "/bias", self.bias, lambda t: t)]


def conv_named(c):
    return [(c.name + "/kernel", c.weight, hwio), (c.name + "/bias", c.bias, lambda t: t)]


def bn_named(b):
    return [(b.name + "/gamma", b.gamma, lambda t: t), (b.name + "/beta", b.beta, lambda t: t)]


def block(stage, name, c_in, filters, s, shortcut):
    f1, f2, f3 = filters
    base = str(stage) + name + "_branch"
    layers = [Conv("res" + base + "2a", c_in, f1, 1, s), BN("bn" + base + "2a", f1),
              Conv("res" + base + "2b", f1, f2, 3, 1, "same"), BN("bn" + base + "2b", f2),
              Conv("res" + base + "2c", f2, f3, 1), BN("bn" + base + "2c", f3)]
    if shortcut:
        layers += [Conv("res" + base + "1", c_in, f3, 1, s), BN("bn" + base + "1", f3)]

    def forward(x, training):
        t = F.relu(layers[1](layers[0](x, training), training))
        t = F.relu(layers[3](layers[2](t, training), training))
        t = layers[5](layers[4](t, training), training)
        sc = layers[7](layers[6](x, training), training) if shortcut else x
        return F.relu(t + sc)

    return layers, forward


def main():
    torch.manual_seed(20261203)
    conv1, bn1 = Conv("conv1", C, 8, 3, 1, "same"), BN("bn_conv1", 8)
    l2a, f2a = block(2, "a", 8, (4, 4, 16), 1, True)
    l2b, f2b = block(2, "b", 16, (4, 4, 16), 1, False)
    l3a, f3a = block(3, "a", 16, (8, 8, 32), 2, True)
    l3b, f3b = block(3, "b", 32, (8, 8, 32), 1, False)
    fc = Dense("fc", 32, CLASSES)
    convs_bns = [conv1, bn1] + l2a + l2b + l3a + l3b

    def forward(x):
        t = F.relu(bn1(conv1(x, True), True))
        t = F.max_pool2d(t, 2, 2)
        for f in (f2a, f2b, f3a, f3b):
            t = f(t, True)
        return fc(t.mean(dim=(2, 3)), True)  # logits

    named = []  # (name, tensor, to_keras)
    for l in convs_bns:
        named += conv_named(l) if isinstance(l, Conv) else bn_named(l)
    named += fc.named()
    bns = [l for l in convs_bns if isinstance(l, BN)]

    x_nhwc = torch.rand(N, H, W, C, dtype=torch.float64)
    labels = torch.zeros(N, CLASSES, dtype=torch.float64)
    for i, k in enumerate([0, 3, 5, 3]):
        labels[i, k] = 1.0

    tensors = [("input", x_nhwc), ("labels", labels)]
    for n, t, keras in named:
        tensors.append((n, keras(t).detach().clone()))
    for b in bns:
        tensors += [(b.name + "/moving_mean", b.mean0.clone()),
                    (b.name + "/moving_variance", b.var0.clone())]

    velocity = [torch.zeros_like(t) for _, t, _ in named]
    for step in range(1, STEPS + 1):
        for _, t, _ in named:
            t.grad = None
        logits = forward(nchw(x_nhwc))
        loss = -(labels * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
        loss.backward()
        tensors.append(("step%d/loss" % step, loss.detach().reshape(1)))
        for n, t, keras in named:
            layer, param = n.rsplit("/", 1)
            tensors.append(("step%d/%s/grad_%s" % (step, layer, param), keras(t.grad).clone()))
        with torch.no_grad():
            for (n, t, _), v in zip(named, velocity):
                v.mul_(MOMENTUM).sub_(LR * t.grad)
                t.add_(v)
        print("step %d loss %.6f" % (step, loss.item()))

    for n, t, keras in named:
        tensors.append(("final/" + n, keras(t).detach().clone()))
    for b in bns:
        tensors += [("final/%s/moving_mean" % b.name, b.running_mean.clone()),
                    ("final/%s/moving_variance" % b.name, b.running_var.clone())]

    path = os.path.join(OUT_DIR, "network_sgd.rnfx")
    size = write_rnfx(path, tensors)
    back = read_rnfx(path)
    for n, t in tensors:
        assert back[n].shape == tuple(t.shape), n
    assert size <= MAX_BYTES, size
    print("%s: %d bytes, %d tensors" % (path, size, len(tensors)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
