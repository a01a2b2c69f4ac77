#!/usr/bin/python3
"""Writes PyTorch checkpoints (torch.save, both formats) for the PyTorch-file tests.

Usage:
  /usr/bin/python3 generate_torch_checkpoints.py --small OUTDIR
      the small committed fixtures (tests/reference/fixtures/torch/): checkpoint dicts whose
      tensor values follow formulas the C++ tests recompute (see tests/io/torch/test_torch.cpp)
  /usr/bin/python3 generate_torch_checkpoints.py --models OUTDIR [--size 32] [--batch 2]
      seeded random networks, written at test time: torchvision ResNet-18, ResNet-50 (no
      checkpoint dict), a CIFAR ResNet-20 with option-A shortcuts (cifar_resnet20_a) and one
      (He et al.'s, with option-B projection shortcuts named as in the common PyTorch CIFAR code:
      conv1, bn1, layer1..3 with shortcut.0/1, linear), each as <name>.pth (zip format),
      <name>_legacy.pth (legacy format) and <name>_checkpoint.pth.tar (a training-script
      checkpoint: {"state_dict" with DataParallel's "module." prefix, "epoch", "best_prec1",
      "optimizer", "args" (an argparse.Namespace)}), plus <name>_input.bin (float32 NCHW) and
      <name>_output.bin (float32 softmax of the logits, eval mode), and the inputs, labels and
      losses of three SGD steps from those weights (<name>_sgd_input.bin, _sgd_labels.bin,
      _sgd_losses.bin, starting from _sgd_start.pth; see sgd_steps).
  /usr/bin/python3 generate_torch_checkpoints.py --load ARCH FILE INPUT OUTPUT
      loads FILE (written by resnet.cpp) with torch.load(weights_only=True) into ARCH
      (resnet18, cifar_resnet20 or cifar_resnet20_a) with load_state_dict(strict=True), and writes the softmax of
      its eval-mode output on INPUT (float32 NCHW, batch 2, 32x32) to OUTPUT
"""
import argparse
import collections
import os

import torch
import torch.nn as nn
import torch.nn.functional as F


def small(outdir):
    os.makedirs(outdir, exist_ok=True)
    sd = collections.OrderedDict()
    # conv.weight[o, i, y, x] = (o * 12 + i * 4 + y * 2 + x) / 8
    sd["conv.weight"] = torch.arange(24, dtype=torch.float32).reshape(2, 3, 2, 2) / 8
    # a float16 vector: k * 0.5 - 1
    sd["half"] = (torch.arange(6, dtype=torch.float32) * 0.5 - 1).half()
    sd["double"] = torch.tensor([1.0 / 3, -2.5], dtype=torch.float64)
    sd["bn.num_batches_tracked"] = torch.tensor(123456789012, dtype=torch.int64)
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    sd["base"] = base
    sd["transposed"] = base.t()          # shares base's storage, strides (1, 4)
    sd["row_slice"] = base[1:, 1:3]      # storage offset 5, strides (4, 1)
    sd["empty"] = torch.zeros(0, 3)
    wrapped = collections.OrderedDict(("module." + k, v) for k, v in sd.items())
    ckpt = {
        "epoch": 7,
        "arch": "toy",
        "state_dict": wrapped,
        "best_prec1": torch.tensor(91.25),
        "lr": 0.1,
        "args": argparse.Namespace(lr=0.1, epochs=90),
    }
    torch.save(ckpt, os.path.join(outdir, "checkpoint_zip.pth"))
    torch.save(ckpt, os.path.join(outdir, "checkpoint_legacy.pth"),
               _use_new_zipfile_serialization=False)
    torch.save(sd, os.path.join(outdir, "state_dict_protocol4.pth"), pickle_protocol=4)
    print("wrote", sorted(os.listdir(outdir)))


class OptionA(nn.Module):
    """He et al.'s option A: every second row and column, new channels zero-padded both sides."""
    def __init__(self, planes):
        super().__init__()
        self.pad = planes // 4

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad), "constant", 0)


class CifarBlock(nn.Module):
    def __init__(self, in_planes, planes, stride, option="B"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if (stride != 1 or in_planes != planes) and option == "A":
            self.shortcut = OptionA(planes)
        elif stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False),
                                          nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, n, classes=10, option="B"):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, planes = [], 16
        for s, width in enumerate([16, 32, 64]):
            blocks = []
            for b in range(n):
                stride = 2 if s > 0 and b == 0 else 1
                blocks.append(CifarBlock(planes, width, stride, option))
                planes = width
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.linear = nn.Linear(64, classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, out.size()[3])
        return self.linear(out.view(out.size(0), -1))


def randomize_bn(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.num_batches_tracked.fill_(100)


def models(outdir, size, batch):
    import torchvision
    os.makedirs(outdir, exist_ok=True)
    torch.manual_seed(0)
    nets = {"resnet18": torchvision.models.resnet18(weights=None),
            "cifar_resnet20": CifarResNet(3),
            "cifar_resnet20_a": CifarResNet(3, option="A"),
            "resnet50": torchvision.models.resnet50(weights=None)}
    for name, model in nets.items():
        randomize_bn(model)
        model.eval()
        x = torch.rand(batch, 3, size, size)
        with torch.no_grad():
            y = torch.softmax(model(x), dim=1)
        sd = model.state_dict()
        torch.save(sd, os.path.join(outdir, name + ".pth"))
        torch.save(sd, os.path.join(outdir, name + "_legacy.pth"),
                   _use_new_zipfile_serialization=False)
        if name == "resnet50":  # large: no checkpoint dict, no training
            x.numpy().astype("<f4").tofile(os.path.join(outdir, name + "_input.bin"))
            y.numpy().astype("<f4").tofile(os.path.join(outdir, name + "_output.bin"))
            continue
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        ckpt = {"epoch": 12, "arch": name,
                "state_dict": collections.OrderedDict(("module." + k, v) for k, v in sd.items()),
                "best_prec1": 0.5, "optimizer": opt.state_dict(),
                "args": argparse.Namespace(lr=0.1, arch=name)}
        torch.save(ckpt, os.path.join(outdir, name + "_checkpoint.pth.tar"))
        x.numpy().astype("<f4").tofile(os.path.join(outdir, name + "_input.bin"))
        y.numpy().astype("<f4").tofile(os.path.join(outdir, name + "_output.bin"))
        # ResNet-18 at 64x64: 2x2 maps in its last stage, so that batch statistics there are
        # taken over 16 values, not 4 (which makes float rounding grow from step to step).
        sgd_steps(model, name, outdir, 64 if name == "resnet18" else size)
    print("wrote", sorted(os.listdir(outdir)))


def sgd_steps(model, name, outdir, size, steps=3, batch=4):
    """Three plain SGD steps (lr 0.01) in training mode from <name>_sgd_start.pth (the saved
    weights with the classifier scaled by 0.05, so that no probability falls below Keras's
    clipping epsilon 1e-7 and the losses compare exactly): the inputs (steps, batch, 3, size,
    size), the labels as float32 and each step's mean cross-entropy loss (float64), before the
    update of that step."""
    head = model.fc if hasattr(model, "fc") else model.linear
    with torch.no_grad():
        head.weight.mul_(0.05)
    torch.save(model.state_dict(), os.path.join(outdir, name + "_sgd_start.pth"))
    gen = torch.Generator().manual_seed(7)
    x = torch.rand(steps, batch, 3, size, size, generator=gen)
    labels = torch.randint(0, head.out_features, (steps, batch), generator=gen)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    model.train()
    losses = []
    for i in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x[i]), labels[i])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    x.numpy().astype("<f4").tofile(os.path.join(outdir, name + "_sgd_input.bin"))
    labels.numpy().astype("<f4").tofile(os.path.join(outdir, name + "_sgd_labels.bin"))
    __import__("numpy").array(losses, dtype="<f8").tofile(os.path.join(outdir, name + "_sgd_losses.bin"))


def load(arch, path, inp, out):
    import torchvision
    model = (torchvision.models.resnet18(weights=None) if arch == "resnet18" else
             CifarResNet(3, option="A") if arch == "cifar_resnet20_a" else CifarResNet(3))
    sd = torch.load(path, weights_only=True)
    model.load_state_dict(sd, strict=True)
    model.eval()
    x = torch.from_numpy(__import__("numpy").fromfile(inp, dtype="<f4").reshape(2, 3, 32, 32))
    with torch.no_grad():
        y = torch.softmax(model(x), dim=1)
    y.numpy().astype("<f4").tofile(out)
    print("loaded", len(sd), "tensors")


def main():
    p = argparse.ArgumentParser()
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--small", action="store_true")
    g.add_argument("--models", action="store_true")
    g.add_argument("--load", nargs=4, metavar=("ARCH", "FILE", "INPUT", "OUTPUT"))
    p.add_argument("outdir", nargs="?")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch", type=int, default=2)
    a = p.parse_args()
    if a.load:
        load(*a.load)
    elif a.small:
        small(a.outdir)
    else:
        models(a.outdir, a.size, a.batch)


if __name__ == "__main__":
    main()
