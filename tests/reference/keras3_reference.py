#!/usr/bin/python3
"""Predictions of a Keras 3 .keras file computed with numpy alone, from the file's own config.json
and model.weights.h5 (no Keras): the reference for tests/io/keras/test_keras3.cpp.

Usage: /usr/bin/python3 keras3_reference.py FILE.keras OUT.bin [--batch 4] [--seed 0]
Writes OUT.bin: int32 batch, int32 features, then float32 inputs (batch, features) drawn from a
seeded standard normal, then float64 outputs (batch, units) in inference mode.
Layers: InputLayer, Dense (linear, relu, sigmoid, tanh, softmax), BatchNormalization (moving
statistics), Activation, Add. Each layer's weights are found through the "name" attribute of its
layers/<object>/vars group.
"""
import argparse
import io
import json
import struct
import zipfile

import h5py
import numpy as np

ACT = {"linear": lambda x: x, "relu": lambda x: np.maximum(x, 0),
       "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "tanh": np.tanh,
       "softmax": lambda x: np.exp(x - x.max(-1, keepdims=True)) /
       np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True)}


def sources(layer):
    out = []
    for node in layer["inbound_nodes"]:
        for a in node["args"]:
            for t in (a if isinstance(a, list) else [a]):
                out.append(t["config"]["keras_history"][0])
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("file")
    p.add_argument("out")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    z = zipfile.ZipFile(a.file)
    cfg = json.loads(z.read("config.json"))["config"]
    h5 = h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")
    weights = {}
    for g in h5["layers"]:
        v = h5["layers"][g]["vars"]
        weights[v.attrs["name"]] = [np.asarray(v[str(i)], dtype=np.float64) for i in range(len(v))]
    first = cfg["layers"][0]
    features = first["config"]["batch_shape"][1]
    x = np.random.default_rng(a.seed).standard_normal((a.batch, features)).astype(np.float32)
    values = {}
    for layer in cfg["layers"]:
        cls, name, c = layer["class_name"], layer["name"], layer["config"]
        ins = [values[s] for s in sources(layer)]
        w = weights.get(name, [])
        if cls == "InputLayer":
            y = x.astype(np.float64)
        elif cls == "Dense":
            y = ins[0] @ w[0] + (w[1] if c.get("use_bias", True) else 0)
            y = ACT[c.get("activation", "linear")](y)
        elif cls == "BatchNormalization":
            gamma, beta, mean, var = w
            y = (ins[0] - mean) / np.sqrt(var + c["epsilon"]) * gamma + beta
        elif cls == "Activation":
            y = ACT[c["activation"]](ins[0])
        elif cls == "Add":
            y = sum(ins)
        else:
            raise SystemExit("unsupported layer " + cls)
        values[name] = y
    out = values[cfg["output_layers"][0]]
    with open(a.out, "wb") as f:
        f.write(struct.pack("<ii", a.batch, features))
        f.write(x.astype("<f4").tobytes())
        f.write(out.astype("<f8").tobytes())
    print("wrote", a.out, "outputs", out.ravel()[:4])


if __name__ == "__main__":
    main()
