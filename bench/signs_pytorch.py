#!/usr/bin/python3
"""PyTorch reference for the deeplearning.ai Keras 2 ResNet-50 on SIGNS.

Same model and recipe as resnet.cpp's tutorial run (see shared/KERAS.md section 1):
ZeroPad 3, conv1 7x7/2 (bias), BN, ReLU, MaxPool 3x3/2, stages 2-5 (stride on the
first 1x1 conv and the 1x1 shortcut), 3x3 'same', glorot_uniform, zero biases,
AvgPool 2x2, Flatten, Dense(6). Adam lr 1e-3 (0.9/0.999, eps 1e-7), batch 32,
shuffled each epoch, categorical cross-entropy, BN momentum 0.01 (Keras 0.99), eps 1e-3.

Prints per epoch: running train loss/accuracy (training mode) and the test
loss/accuracy in eval mode (moving statistics).

Usage: /usr/bin/python3 bench/signs_pytorch.py [--epochs 25] [--seed 0] [--data DIR]
"""
import argparse
import time

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def bn(c):
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)


class Block(nn.Module):
    def __init__(self, cin, filters, f, stride, shortcut):
        super().__init__()
        f1, f2, f3 = filters
        self.c1 = nn.Conv2d(cin, f1, 1, stride=stride)
        self.b1 = bn(f1)
        self.c2 = nn.Conv2d(f1, f2, f, padding=f // 2)
        self.b2 = bn(f2)
        self.c3 = nn.Conv2d(f2, f3, 1)
        self.b3 = bn(f3)
        if shortcut:
            self.cs = nn.Conv2d(cin, f3, 1, stride=stride)
            self.bs = bn(f3)
        else:
            self.cs = None

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        y = F.relu(self.b2(self.c2(y)))
        y = self.b3(self.c3(y))
        s = self.bs(self.cs(x)) if self.cs is not None else x
        return F.relu(y + s)


class ResNet50(nn.Module):
    def __init__(self, classes=6):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2)
        self.bn1 = bn(64)
        layers = []
        cin = 64
        for filters, s, n in [([64, 64, 256], 1, 3), ([128, 128, 512], 2, 4),
                              ([256, 256, 1024], 2, 6), ([512, 512, 2048], 2, 3)]:
            layers.append(Block(cin, filters, 3, s, True))
            cin = filters[2]
            for _ in range(n - 1):
                layers.append(Block(cin, filters, 3, 1, False))
        self.stages = nn.Sequential(*layers)
        self.fc = nn.Linear(2048, classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)  # == Keras glorot_uniform
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.pad(x, (3, 3, 3, 3))
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, 3, 2)
        x = self.stages(x)
        x = F.avg_pool2d(x, 2)
        return self.fc(torch.flatten(x, 1))  # logits; softmax is inside the loss


def load(path, split):
    with h5py.File(path, "r") as f:
        x = np.array(f[split + "_set_x"], dtype=np.float32) / 255.0
        y = np.array(f[split + "_set_y"], dtype=np.int64).reshape(-1)
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default="/work/shared/datasets/signs")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)

    xtr, ytr = load(a.data + "/train_signs.h5", "train")
    xte, yte = load(a.data + "/test_signs.h5", "test")
    model = ResNet50(6)
    print("params total %d trainable %d" % (
        sum(p.numel() for p in model.parameters()) + sum(b.numel() for n, b in model.named_buffers() if "running" in n),
        sum(p.numel() for p in model.parameters())), flush=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    n = xtr.shape[0]
    for ep in range(1, a.epochs + 1):
        t0 = time.time()
        model.train()
        perm = torch.randperm(n)
        tl, tc = 0.0, 0
        for i in range(0, n, a.batch):
            idx = perm[i:i + a.batch]
            xb, yb = xtr[idx], ytr[idx]
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tl += loss.item() * len(idx)
            tc += (out.argmax(1) == yb).sum().item()
        ttrain = time.time() - t0
        model.eval()
        with torch.no_grad():
            out = torch.cat([model(xte[i:i + a.batch]) for i in range(0, xte.shape[0], a.batch)])
            vl = F.cross_entropy(out, yte).item()
            va = (out.argmax(1) == yte).float().mean().item()
        print("epoch %2d  train loss %.4f acc %.4f  test(eval) loss %.4f acc %.4f  %.1fs train %.1fs total"
              % (ep, tl / n, tc / n, vl, va, ttrain, time.time() - t0), flush=True)


if __name__ == "__main__":
    main()
