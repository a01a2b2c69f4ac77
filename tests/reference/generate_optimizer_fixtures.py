#!/usr/bin/python3
"""Optimizer fixtures for resnet.cpp: five training steps of a small model, computed by PyTorch.

Run with Debian's python3 (python3-torch):

    /usr/bin/python3 tests/reference/generate_optimizer_fixtures.py

It writes tests/reference/fixtures/optim_<name>.rnfx (format: see generate_fixtures.py, whose
writer this script reuses). Everything is computed in double precision and stored as float32.

The model, in Keras terms:
    Input(6) -> Dense(5, relu, name='dense_1') -> Dense(3, softmax, name='dense_2')
with categorical cross-entropy from the probabilities (Keras: p / sum(p), clipped to
[1e-7, 1 - 1e-7]; the clip is inactive here), mean over the batch.

Names in every file:
    input (8, 6), targets (8, 3) one-hot
    dense_1/kernel (6, 5), dense_1/bias (5,), dense_2/kernel (5, 3), dense_2/bias (3,)  initial
    losses (5,)                          the batch loss before each of the five steps
    final/<layer>/<param>                the weights after the five steps

Optimizers (Keras semantics; where torch.optim implements the same update it is used and, for
Adam, compared with the Keras form):
    adam          Adam(lr 0.01, beta 0.9/0.999, epsilon 1e-7), Keras "epsilon-hat" form:
                  w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
    adamw         the same with decoupled weight decay 0.1: w -= lr * wd * w before the step
    sgd_momentum  SGD(lr 0.1, momentum 0.9) = torch.optim.SGD at constant lr
                  (Keras v = mu v - lr g, w += v  <=>  torch buf = mu buf + g, w -= lr buf)
    sgd_nesterov  SGD(lr 0.1, momentum 0.9, nesterov) = torch.optim.SGD(nesterov=True)
    rmsprop       RMSprop(lr 0.01, rho 0.9, momentum 0.5, epsilon 1e-7, centered) =
                  torch.optim.RMSprop(alpha=0.9, eps=1e-7, momentum=0.5, centered=True)
"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from generate_fixtures import OUT_DIR, read_rnfx, write_rnfx  # noqa: E402

EPS = 1e-7  # keras.backend.epsilon()
STEPS = 5
N, D_IN, D_HID, D_OUT = 8, 6, 5, 3
PARAM_NAMES = ["dense_1/kernel", "dense_1/bias", "dense_2/kernel", "dense_2/bias"]


def forward_loss(params, x, y):
    """Batch-mean Keras categorical cross-entropy of the model; also the smallest |pre-ReLU|."""
    w1, b1, w2, b2 = params
    pre = x @ w1 + b1
    h = torch.relu(pre)
    p = torch.softmax(h @ w2 + b2, dim=1)
    p = p / p.sum(dim=1, keepdim=True)
    p = torch.clamp(p, EPS, 1 - EPS)
    loss = -(y * torch.log(p)).sum(dim=1).mean()
    return loss, pre.detach().abs().min().item()


class KerasAdam:
    """Keras Adam (epsilon-hat form), optional decoupled weight decay (AdamW)."""

    def __init__(self, params, lr, beta_1=0.9, beta_2=0.999, eps=1e-7, weight_decay=0.0):
        self.params = params
        self.lr, self.b1, self.b2, self.eps, self.wd = lr, beta_1, beta_2, eps, weight_decay
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self):
        self.t += 1
        lr_t = self.lr * (1 - self.b2 ** self.t) ** 0.5 / (1 - self.b1 ** self.t)
        for p, m, v in zip(self.params, self.m, self.v):
            g = p.grad
            if self.wd:
                p.sub_(self.lr * self.wd * p)
            m.mul_(self.b1).add_((1 - self.b1) * g)
            v.mul_(self.b2).add_((1 - self.b2) * g * g)
            p.sub_(lr_t * m / (v.sqrt() + self.eps))


class KerasSGD:
    """Keras SGD with momentum, written out (to check that torch.optim.SGD agrees)."""

    def __init__(self, params, lr, momentum, nesterov=False):
        self.params, self.lr, self.mu, self.nesterov = params, lr, momentum, nesterov
        self.v = [torch.zeros_like(p) for p in params]

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self):
        for p, v in zip(self.params, self.v):
            g = p.grad
            v.mul_(self.mu).sub_(self.lr * g)
            if self.nesterov:
                p.add_(self.mu * v - self.lr * g)
            else:
                p.add_(v)


class KerasRMSprop:
    """Keras RMSprop (centered, momentum), written out (to check torch.optim.RMSprop)."""

    def __init__(self, params, lr, rho, momentum, eps, centered):
        self.params, self.lr, self.rho, self.mu, self.eps = params, lr, rho, momentum, eps
        self.centered = centered
        self.rms = [torch.zeros_like(p) for p in params]
        self.mg = [torch.zeros_like(p) for p in params]
        self.mom = [torch.zeros_like(p) for p in params]

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self):
        for p, rms, mg, mom in zip(self.params, self.rms, self.mg, self.mom):
            g = p.grad
            rms.mul_(self.rho).add_((1 - self.rho) * g * g)
            denom = rms
            if self.centered:
                mg.mul_(self.rho).add_((1 - self.rho) * g)
                denom = rms - mg * mg
            mom.mul_(self.mu).add_(self.lr * g / (denom.sqrt() + self.eps))
            p.sub_(mom)


def train(init, x, y, make_opt):
    params = [t.clone().requires_grad_(True) for t in init]
    opt = make_opt(params)
    losses, min_pre = [], float("inf")
    for _ in range(STEPS):
        opt.zero_grad()
        loss, mp = forward_loss(params, x, y)
        min_pre = min(min_pre, mp)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return torch.tensor(losses, dtype=torch.float64), [p.detach() for p in params], min_pre


def max_diff(a, b):
    return max((p - q).abs().max().item() for p, q in zip(a, b))


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    torch.manual_seed(20240611)
    torch.set_num_threads(1)
    f64 = torch.float64
    x = torch.randn(N, D_IN, dtype=f64)
    labels = torch.randint(0, D_OUT, (N,))
    y = torch.nn.functional.one_hot(labels, D_OUT).to(f64)
    lim1 = (6.0 / (D_IN + D_HID)) ** 0.5
    lim2 = (6.0 / (D_HID + D_OUT)) ** 0.5
    init = [
        (torch.rand(D_IN, D_HID, dtype=f64) * 2 - 1) * lim1,
        torch.randn(D_HID, dtype=f64) * 0.1,
        (torch.rand(D_HID, D_OUT, dtype=f64) * 2 - 1) * lim2,
        torch.randn(D_OUT, dtype=f64) * 0.1,
    ]
    # Start from exactly the float32 values stored in the file.
    x = x.float().double()
    init = [t.float().double() for t in init]

    cases = {
        "adam": lambda p: KerasAdam(p, lr=0.01),
        "adamw": lambda p: KerasAdam(p, lr=0.01, weight_decay=0.1),
        "sgd_momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
        "sgd_nesterov": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
        "rmsprop": lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-7, momentum=0.5,
                                                 centered=True),
    }
    # Cross-checks of the Keras forms against torch.optim (printed, asserted where identical).
    checks = {
        "adam": lambda p: torch.optim.Adam(p, lr=0.01, eps=1e-7),
        "sgd_momentum": lambda p: KerasSGD(p, lr=0.1, momentum=0.9),
        "sgd_nesterov": lambda p: KerasSGD(p, lr=0.1, momentum=0.9, nesterov=True),
        "rmsprop": lambda p: KerasRMSprop(p, lr=0.01, rho=0.9, momentum=0.5, eps=1e-7,
                                          centered=True),
    }
    for name, make_opt in cases.items():
        losses, final, min_pre = train(init, x, y, make_opt)
        assert min_pre > 1e-3, f"{name}: a pre-ReLU value is {min_pre}, too close to the kink"
        msg = f"{name}: losses {[round(v, 6) for v in losses.tolist()]}, min |pre-ReLU| {min_pre:.4f}"
        if name in checks:
            _, other, _ = train(init, x, y, checks[name])
            d = max_diff(final, other)
            msg += f", max |w - w_check| {d:.3g}"
            if name != "adam":
                assert d < 1e-12, (name, d)
            else:
                # torch's epsilon is added to sqrt(v / (1 - b2^t)), Keras's to sqrt(v): in the first
                # steps sqrt(v) is small, so the two differ by a fraction of a percent of a step.
                assert d < 1e-4, (name, d)
        print(msg)
        tensors = [("input", x), ("targets", y)]
        tensors += list(zip(PARAM_NAMES, init))
        tensors.append(("losses", losses))
        tensors += [("final/" + n, t) for n, t in zip(PARAM_NAMES, final)]
        path = os.path.join(OUT_DIR, f"optim_{name}.rnfx")
        write_rnfx(path, tensors)
        back = read_rnfx(path)
        assert sorted(back) == sorted(n for n, _ in tensors), path
    return 0


if __name__ == "__main__":
    sys.exit(main())
