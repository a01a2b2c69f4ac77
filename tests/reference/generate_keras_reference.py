#!/usr/bin/env python3
"""Reference forward pass of the Keras 2.4 ResNet-8 (CIFAR-10) HDF5 model, for load_model.

No TensorFlow is needed: the graph is read from the file's `model_config` JSON and evaluated with
torch (float64) from the file's weights, in inference mode (BatchNormalization with the moving
statistics, Keras epsilon from the config). Conv2D "same" padding follows TensorFlow (the extra
row/column goes at the bottom/right).

Run with /usr/bin/python3 (h5py, numpy, torch):
    /usr/bin/python3 tests/reference/generate_keras_reference.py [path/to/resnet8_cifar10_keras2.4.h5]
Writes tests/reference/fixtures/keras_resnet8.rnfx with
    input   (2, 32, 32, 3)  seeded uniform [0, 1)
    output  (2, 10)         softmax probabilities
    logits  (2, 10)         the Dense output before the softmax
"""
import json
import math
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from generate_fixtures import write_rnfx  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_H5 = os.path.join(HERE, "..", "..", "..", "shared", "datasets", "keras",
                          "resnet8_cifar10_keras2.4.h5")
OUT = os.path.join(HERE, "fixtures", "keras_resnet8.rnfx")


def pair(v):
    return (v, v) if isinstance(v, int) else (v[0], v[1])


def same_pad(size, k, s, d=1):
    eff = (k - 1) * d + 1
    out = math.ceil(size / s)
    total = max((out - 1) * s + eff - size, 0)
    return total // 2, total - total // 2


def weights(f, name):
    g = f["model_weights"][name]
    names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs["weight_names"]]
    return {n.split("/")[-1].split(":")[0]: torch.from_numpy(np.asarray(g[n], dtype=np.float64))
            for n in names}


def act(x, kind):
    if kind == "linear":
        return x
    if kind == "relu":
        return torch.relu(x)
    if kind == "softmax":
        return torch.softmax(x, dim=-1)
    raise ValueError(kind)


def forward(f, x):
    cfg = json.loads(f.attrs["model_config"])["config"]
    vals = {}
    extra = {}
    for layer in cfg["layers"]:
        cls, c, name = layer["class_name"], layer["config"], layer["name"]
        ins = [vals[n[0]] for n in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
        if cls == "InputLayer":
            y = x
        elif cls == "Conv2D":
            w = weights(f, name)
            kh, kw = pair(c["kernel_size"])
            sh, sw = pair(c["strides"])
            dh, dw = pair(c["dilation_rate"])
            t = ins[0].permute(0, 3, 1, 2)
            if c["padding"] == "same":
                pt, pb = same_pad(t.shape[2], kh, sh, dh)
                pl, pr = same_pad(t.shape[3], kw, sw, dw)
                t = F.pad(t, (pl, pr, pt, pb))
            y = F.conv2d(t, w["kernel"].permute(3, 2, 0, 1), w.get("bias"), (sh, sw),
                         dilation=(dh, dw))
            y = act(y.permute(0, 2, 3, 1), c["activation"])
        elif cls == "BatchNormalization":
            w = weights(f, name)
            y = (ins[0] - w["moving_mean"]) / torch.sqrt(w["moving_variance"] + c["epsilon"])
            y = y * w["gamma"] + w["beta"]
        elif cls == "Activation":
            y = act(ins[0], c["activation"])
        elif cls == "Add":
            y = sum(ins)
        elif cls == "AveragePooling2D":
            assert c["padding"] == "valid"
            t = ins[0].permute(0, 3, 1, 2)
            y = F.avg_pool2d(t, pair(c["pool_size"]), pair(c["strides"])).permute(0, 2, 3, 1)
        elif cls == "Flatten":
            y = ins[0].reshape(ins[0].shape[0], -1)
        elif cls == "Dense":
            w = weights(f, name)
            logits = ins[0] @ w["kernel"] + w["bias"]
            extra["logits"] = logits
            y = act(logits, c["activation"])
        else:
            raise ValueError("unsupported class " + cls)
        vals[name] = y
    return vals[cfg["output_layers"][0][0]], extra


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_H5
    rng = np.random.default_rng(20240607)
    x = rng.uniform(0.0, 1.0, size=(2, 32, 32, 3)).astype(np.float32)
    with h5py.File(path, "r") as f:
        y, extra = forward(f, torch.from_numpy(x.astype(np.float64)))
    n = write_rnfx(OUT, [("input", torch.from_numpy(x)), ("output", y), ("logits", extra["logits"])])
    print(f"wrote {OUT} ({n} bytes); output:\n{y.numpy()}")


if __name__ == "__main__":
    main()
