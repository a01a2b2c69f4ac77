#!/usr/bin/python3
"""Exports a torchvision ResNet-18 (random weights, no download) to ONNX for the import tests.

Usage: /usr/bin/python3 export_torchvision_resnet18.py OUTDIR [--size 64] [--batch 2]

Writes into OUTDIR:
  resnet18.onnx      torch.onnx.export, opset 13, eval mode (PyTorch folds BatchNorm into Conv)
  resnet18_bn.onnx   the same with TrainingMode.PRESERVE: BatchNormalization nodes kept
  input.bin          float32 input, NCHW (batch, 3, size, size), little-endian, row-major
  output.bin         float32 PyTorch output (batch, 1000)
  view_dynamic.onnx, view_static.onnx, view_input.bin (batch, 3, 16, 16), view_output.bin
                     a small CNN flattening with x.view(x.size(0), -1), dynamic / fixed batch
Run by tests/io/onnx/test_onnx.cpp (needs python3-torch and python3-torchvision).
"""
import argparse
import os

import torch
import torchvision


class SmallCnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.pool = torch.nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=True)
        self.fc = torch.nn.Linear(6 * 9 * 9, 5)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv(x)))
        return self.fc(x.view(x.size(0), -1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("outdir")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=2)
    a = p.parse_args()
    os.makedirs(a.outdir, exist_ok=True)

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    # Non-trivial BatchNorm parameters and statistics, so that importing them is really tested.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    model.eval()

    x = torch.randn(a.batch, 3, a.size, a.size)
    with torch.no_grad():
        y = model(x)

    common = dict(opset_version=13, input_names=["input"], output_names=["output"],
                  dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
    torch.onnx.export(model, x, os.path.join(a.outdir, "resnet18.onnx"), **common)
    torch.onnx.export(model, x, os.path.join(a.outdir, "resnet18_bn.onnx"),
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False,
                      **common)
    x.numpy().astype("<f4").tofile(os.path.join(a.outdir, "input.bin"))
    y.numpy().astype("<f4").tofile(os.path.join(a.outdir, "output.bin"))

    # A small CNN in the older style, flattening an 8x8 map with x.view(x.size(0), -1): with a
    # dynamic batch PyTorch emits Shape -> Gather -> Unsqueeze -> Concat -> Reshape; without, a
    # constant shape with the batch size baked in. Its Linear sees the map in CHW order.
    small = SmallCnn().eval()
    xs = torch.randn(a.batch, 3, 16, 16)
    with torch.no_grad():
        ys = small(xs)
    torch.onnx.export(small, xs, os.path.join(a.outdir, "view_dynamic.onnx"), **common)
    torch.onnx.export(small, xs, os.path.join(a.outdir, "view_static.onnx"), opset_version=13,
                      input_names=["input"], output_names=["output"])
    xs.numpy().astype("<f4").tofile(os.path.join(a.outdir, "view_input.bin"))
    ys.numpy().astype("<f4").tofile(os.path.join(a.outdir, "view_output.bin"))
    print(f"wrote {a.outdir}: input {tuple(x.shape)}, output {tuple(y.shape)}")


if __name__ == "__main__":
    main()
