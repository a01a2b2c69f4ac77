#!/usr/bin/python3
"""PyTorch side of bench/compare.sh: training or inference speed and peak RSS of one model.

Models: "tutorial" (the deeplearning.ai ResNet-50 of bench/signs_pytorch.py, 6 classes) and
"resnet50" (torchvision resnet50, 1000 classes). Training = forward, cross-entropy, backward,
Adam step (as resnet.cpp's train_step); inference = eval-mode forward under no_grad.
Prints one JSON line: img_per_s (batch / median step), ms_per_step, peak_rss_mb (ru_maxrss).

  --export PATH   write the model (eval mode) as ONNX opset 13, batch axis dynamic, and exit.

Usage: /usr/bin/python3 bench/compare_torch.py --model tutorial --mode train --batch 32 \
           --size 64 --threads 2 --layout channels_last --steps 10 --warmup 2
"""
import argparse
import json
import os
import re
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def build(name):
    if name == "tutorial":
        from signs_pytorch import ResNet50
        return ResNet50(6), 6
    if name == "resnet50":
        import torchvision
        return torchvision.models.resnet50(), 1000
    raise SystemExit("unknown model " + name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tutorial")
    ap.add_argument("--mode", default="train", choices=["train", "infer"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layout", default="nchw", choices=["nchw", "channels_last"])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--export", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model, classes = build(a.model)

    if a.export:
        model.eval()
        x = torch.rand(1, 3, a.size, a.size)
        torch.onnx.export(model, x, a.export, opset_version=13, input_names=["input"],
                          output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        return

    fmt = torch.channels_last if a.layout == "channels_last" else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x = torch.rand(a.batch, 3, a.size, a.size).contiguous(memory_format=fmt)
    y = torch.randint(0, classes, (a.batch,))
    if a.mode == "train":
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)

        def step():
            out = model(x)
            loss = F.cross_entropy(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    else:
        model.eval()

        def step():
            with torch.no_grad():
                model(x)
    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    # The ISA ATen's own kernels dispatch to (ATEN_CPU_CAPABILITY caps it); oneDNN's cap is
    # ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA in the environment.
    cap = re.search(r"CPU capability usage: (\S+)", torch.__config__.show())
    onednn_cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    print(json.dumps({"framework": "pytorch " + torch.__version__, "model": a.model,
                      "aten_isa": cap.group(1).lower() if cap else "unknown",
                      "onednn_max_isa": onednn_cap.lower() if onednn_cap else "native",
                      "mode": a.mode, "batch": a.batch, "size": a.size, "threads": a.threads,
                      "layout": a.layout, "img_per_s": a.batch / med, "ms_per_step": med * 1e3,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))


if __name__ == "__main__":
    main()
