#!/usr/bin/python3
"""Cross-framework fixtures for resnet.cpp, computed by PyTorch.

Run with Debian's python3 (python3-torch):

    /usr/bin/python3 tests/reference/generate_fixtures.py

It writes tests/reference/fixtures/<name>.rnfx. Everything is computed in double precision and
stored as float32. The output is deterministic (torch.manual_seed), so rerunning it reproduces the
committed files byte for byte on the same torch version.

File format (little-endian):
    "RNFX", uint32 version = 1, uint32 count,
    then per tensor: uint32 name length, name bytes (UTF-8), uint32 rank, int64 dims[rank],
                     float32 data[prod(dims)] (row-major).

Tensors use Keras's logical layouts: activations NHWC, conv kernels HWIO (kh, kw, in, out) =
torch weight.permute(2, 3, 1, 0), biases and BN vectors (C,).

Names in every file:
    input                               the batch, NHWC
    dy                                  the output gradient; the loss is L = sum(output * dy)
    <conv>/kernel, <conv>/bias          conv weights
    <bn>/gamma, <bn>/beta               BN weights
    <bn>/moving_mean, <bn>/moving_variance          the moving statistics before the forward
  training mode (BN normalizes with the batch statistics, then updates the moving statistics):
    output, grad_input
    <conv>/grad_kernel, <conv>/grad_bias, <bn>/grad_gamma, <bn>/grad_beta
    <bn>/moving_mean_after, <bn>/moving_variance_after
  inference mode (BN uses the given moving statistics, which stay unchanged):
    inference/output
    inference/grad_input                (BN statistics treated as constants)
    inference_after_training/output     inference with <bn>/moving_*_after

Keras <-> PyTorch BatchNormalization: Keras momentum 0.99 is torch momentum 0.01 (torch updates
running = (1 - m) * running + m * batch). Both normalize with the biased batch variance in
training and fold the unbiased (Bessel-corrected) one into the moving variance (Keras's fused
path). Keras's default epsilon 1e-3 is used here.

Padding: 'same' with stride 1 and an odd kernel is symmetric (k // 2 on each side), which torch's
padding=k//2 reproduces exactly; the stride-2 convs of these fixtures are 'valid', where the two
frameworks agree by definition.
"""

import os
import struct
import sys

import torch
import torch.nn.functional as F

EPSILON = 1e-3          # Keras BatchNormalization default
KERAS_MOMENTUM = 0.99   # Keras BatchNormalization default
TORCH_MOMENTUM = 1.0 - KERAS_MOMENTUM

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
MAX_BYTES = 300 * 1024


# ----------------------------------------------------------------------------------------------
# File format

def write_rnfx(path, tensors):
    """tensors: list of (name, torch tensor) in Keras layout."""
    out = bytearray()
    out += b"RNFX"
    out += struct.pack("<II", 1, len(tensors))
    seen = set()
    for name, t in tensors:
        assert name not in seen, name
        seen.add(name)
        t = t.detach().to(torch.float32).contiguous()
        nb = name.encode("utf-8")
        out += struct.pack("<I", len(nb)) + nb
        out += struct.pack("<I", t.dim())
        out += struct.pack("<%dq" % t.dim(), *t.shape)
        out += t.numpy().astype("<f4").tobytes()
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(out)
    os.replace(tmp, path)
    return len(out)


def read_rnfx(path):
    """Reads a file back (self-check of the writer)."""
    import numpy as np
    with open(path, "rb") as f:
        buf = f.read()
    assert buf[:4] == b"RNFX"
    version, count = struct.unpack_from("<II", buf, 4)
    assert version == 1
    pos = 12
    res = {}
    for _ in range(count):
        (n,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        name = buf[pos:pos + n].decode("utf-8")
        pos += n
        (rank,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        dims = struct.unpack_from("<%dq" % rank, buf, pos)
        pos += 8 * rank
        numel = 1
        for d in dims:
            numel *= d
        res[name] = np.frombuffer(buf, dtype="<f4", count=numel, offset=pos).reshape(dims)
        pos += 4 * numel
    assert pos == len(buf)
    return res


def nhwc(t):
    return t.permute(0, 2, 3, 1)


def nchw(t):
    return t.permute(0, 3, 1, 2)


def hwio(w):
    return w.permute(2, 3, 1, 0)


# ----------------------------------------------------------------------------------------------
# A tiny graph description evaluated by torch in double precision

class Conv:
    def __init__(self, name, cin, filters, k, stride=1, padding="valid"):
        self.name, self.k, self.stride, self.padding = name, k, stride, padding
        fan_in, fan_out = cin * k * k, filters * k * k
        limit = (6.0 / (fan_in + fan_out)) ** 0.5  # glorot_uniform scale
        self.weight = (torch.rand(filters, cin, k, k, dtype=torch.float64) * 2 - 1) * limit
        self.bias = torch.randn(filters, dtype=torch.float64) * 0.2
        self.weight.requires_grad_(True)
        self.bias.requires_grad_(True)

    def __call__(self, x, training):
        if self.padding == "same":
            assert self.k % 2 == 1 and self.stride == 1
            pad = self.k // 2
        else:
            pad = 0
        return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=pad)

    def params(self):
        return [(self.name + "/kernel", hwio(self.weight)), (self.name + "/bias", self.bias)]

    def grads(self):
        return [(self.name + "/grad_kernel", hwio(self.weight.grad)),
                (self.name + "/grad_bias", self.bias.grad)]

    def zero_grad(self):
        self.weight.grad = None
        self.bias.grad = None

    def after(self):
        return []

    def reset(self):
        pass


class BN:
    def __init__(self, name, c):
        self.name = name
        self.gamma = (torch.rand(c, dtype=torch.float64) + 0.5).requires_grad_(True)
        self.beta = (torch.randn(c, dtype=torch.float64) * 0.5).requires_grad_(True)
        self.mean0 = torch.randn(c, dtype=torch.float64) * 0.5
        self.var0 = torch.rand(c, dtype=torch.float64) * 1.5 + 0.5
        self.reset()

    def reset(self):
        self.running_mean = self.mean0.clone()
        self.running_var = self.var0.clone()

    def __call__(self, x, training):
        return F.batch_norm(x, self.running_mean, self.running_var, self.gamma, self.beta,
                            training=training, momentum=TORCH_MOMENTUM, eps=EPSILON)

    def params(self):
        return [(self.name + "/gamma", self.gamma), (self.name + "/beta", self.beta),
                (self.name + "/moving_mean", self.mean0),
                (self.name + "/moving_variance", self.var0)]

    def grads(self):
        return [(self.name + "/grad_gamma", self.gamma.grad),
                (self.name + "/grad_beta", self.beta.grad)]

    def after(self):
        return [(self.name + "/moving_mean_after", self.running_mean),
                (self.name + "/moving_variance_after", self.running_var)]

    def zero_grad(self):
        self.gamma.grad = None
        self.beta.grad = None


def check_bn_update(bn, x):
    """Independent check of the Keras moving-statistics rule on the BN input x (NCHW)."""
    m = x.mean(dim=(0, 2, 3))
    n = x.numel() // x.shape[1]
    v_biased = x.var(dim=(0, 2, 3), unbiased=False)
    v_unbiased = v_biased * n / (n - 1)
    exp_mean = bn.mean0 * KERAS_MOMENTUM + m * (1 - KERAS_MOMENTUM)
    exp_var = bn.var0 * KERAS_MOMENTUM + v_unbiased * (1 - KERAS_MOMENTUM)
    assert torch.allclose(bn.running_mean, exp_mean, atol=1e-12), bn.name
    assert torch.allclose(bn.running_var, exp_var, atol=1e-12), bn.name


def make_fixture(name, layers, forward, input_nhwc):
    """layers: the Conv/BN objects (in order); forward(x, training, taps) -> y (NCHW)."""
    x_nhwc = input_nhwc
    x = nchw(x_nhwc).detach().clone().requires_grad_(True)

    # Training mode.
    for l in layers:
        l.reset()
        l.zero_grad()
    taps = {}
    y = forward(x, True, taps)
    dy_nhwc = torch.randn(*nhwc(y).shape, dtype=torch.float64)
    loss = (y * nchw(dy_nhwc)).sum()
    loss.backward()
    for l in layers:
        if isinstance(l, BN):
            check_bn_update(l, taps[l.name].detach())

    tensors = [("input", x_nhwc), ("dy", dy_nhwc)]
    for l in layers:
        tensors += l.params()
    tensors += [("output", nhwc(y)), ("grad_input", nhwc(x.grad))]
    for l in layers:
        tensors += l.grads()
    after_stats = {}
    for l in layers:
        tensors += l.after()
        if isinstance(l, BN):
            after_stats[l.name] = (l.running_mean.clone(), l.running_var.clone())
    # Snapshot: the inference pass below would accumulate into the same .grad tensors.
    tensors = [(n, t.detach().clone()) for n, t in tensors]

    # Inference mode with the initial moving statistics.
    for l in layers:
        l.reset()
        l.zero_grad()
    x_inf = nchw(x_nhwc).detach().clone().requires_grad_(True)
    y_inf = forward(x_inf, False, {})
    (y_inf * nchw(dy_nhwc)).sum().backward()
    for l in layers:
        if isinstance(l, BN):  # inference must not touch the moving statistics
            assert torch.equal(l.running_mean, l.mean0) and torch.equal(l.running_var, l.var0)
    tensors += [("inference/output", nhwc(y_inf)), ("inference/grad_input", nhwc(x_inf.grad))]

    # Inference with the moving statistics as updated by the training-mode forward above.
    for l in layers:
        if isinstance(l, BN):
            l.running_mean = after_stats[l.name][0].clone()
            l.running_var = after_stats[l.name][1].clone()
    with torch.no_grad():
        y_upd = forward(nchw(x_nhwc), False, {})
    tensors += [("inference_after_training/output", nhwc(y_upd))]

    path = os.path.join(OUT_DIR, name + ".rnfx")
    size = write_rnfx(path, tensors)
    back = read_rnfx(path)
    for n, t in tensors:
        assert back[n].shape == tuple(t.shape), n
        assert abs(back[n].astype("float64") - t.detach().numpy()).max() <= \
            1e-6 * max(1.0, abs(t.detach().numpy()).max()), n
    assert size <= MAX_BYTES, (name, size)
    print("%-32s %7d bytes, %2d tensors, output %s" % (name + ".rnfx", size, len(tensors),
                                                     tuple(nhwc(y).shape)))


def tap(taps, name, x):
    taps[name] = x
    return x


# ----------------------------------------------------------------------------------------------
# Fixtures

def conv_bn_relu(name, n, h, w, c, f, k, stride, padding):
    conv = Conv("conv1", c, f, k, stride, padding)
    bn = BN("bn_conv1", f)

    def forward(x, training, taps):
        z = conv(x, training)
        return F.relu(bn(tap(taps, bn.name, z), training))

    make_fixture(name, [conv, bn], forward,
                 torch.randn(n, h, w, c, dtype=torch.float64))


def identity_block(name, n, h, w, f, filters, stage, block):
    F1, F2, F3 = filters
    base = str(stage) + block + "_branch"
    c2a = Conv("res" + base + "2a", F3, F1, 1)
    b2a = BN("bn" + base + "2a", F1)
    c2b = Conv("res" + base + "2b", F1, F2, f, 1, "same")
    b2b = BN("bn" + base + "2b", F2)
    c2c = Conv("res" + base + "2c", F2, F3, 1)
    b2c = BN("bn" + base + "2c", F3)

    def forward(x, training, taps):
        t = c2a(x, training)
        t = F.relu(b2a(tap(taps, b2a.name, t), training))
        t = c2b(t, training)
        t = F.relu(b2b(tap(taps, b2b.name, t), training))
        t = c2c(t, training)
        t = b2c(tap(taps, b2c.name, t), training)
        return F.relu(t + x)

    make_fixture(name, [c2a, b2a, c2b, b2b, c2c, b2c], forward,
                 torch.randn(n, h, w, F3, dtype=torch.float64))


def convolutional_block(name, n, h, w, c, f, filters, stage, block, s):
    F1, F2, F3 = filters
    base = str(stage) + block + "_branch"
    c2a = Conv("res" + base + "2a", c, F1, 1, s)
    b2a = BN("bn" + base + "2a", F1)
    c2b = Conv("res" + base + "2b", F1, F2, f, 1, "same")
    b2b = BN("bn" + base + "2b", F2)
    c2c = Conv("res" + base + "2c", F2, F3, 1)
    b2c = BN("bn" + base + "2c", F3)
    c1 = Conv("res" + base + "1", c, F3, 1, s)
    b1 = BN("bn" + base + "1", F3)

    def forward(x, training, taps):
        t = c2a(x, training)
        t = F.relu(b2a(tap(taps, b2a.name, t), training))
        t = c2b(t, training)
        t = F.relu(b2b(tap(taps, b2b.name, t), training))
        t = c2c(t, training)
        t = b2c(tap(taps, b2c.name, t), training)
        sc = c1(x, training)
        sc = b1(tap(taps, b1.name, sc), training)
        return F.relu(t + sc)

    make_fixture(name, [c2a, b2a, c2b, b2b, c2c, b2c, c1, b1], forward,
                 torch.randn(n, h, w, c, dtype=torch.float64))


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    torch.manual_seed(20240601)
    torch.set_num_threads(1)
    # a) Conv2D(3x3, same, stride 1) -> BN -> ReLU, and a stride-2 valid variant.
    conv_bn_relu("conv_bn_relu", 2, 6, 6, 3, 4, 3, 1, "same")
    conv_bn_relu("conv_bn_relu_s2_valid", 2, 7, 7, 3, 4, 3, 2, "valid")
    # b) identity_block(f=3, filters [2, 3, 4], stage 2, block 'b').
    identity_block("identity_block", 2, 5, 5, 3, [2, 3, 4], 2, "b")
    # c) convolutional_block(f=3, filters [2, 3, 4], stage 2, block 'a', s=2).
    convolutional_block("convolutional_block", 2, 7, 7, 3, 3, [2, 3, 4], 2, "a", 2)
    # Wider variants: channel counts that oneDNN stores in blocked layouts (8/16 channels).
    identity_block("identity_block_wide", 2, 6, 6, 3, [8, 8, 16], 2, "b")
    convolutional_block("convolutional_block_wide", 2, 9, 9, 8, 3, [8, 16, 32], 2, "a", 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
