#!/usr/bin/python3
"""Writes tiny ONNX models using every op the importer knows: the seeds of fuzz/fuzz_onnx.cpp.

Usage: /usr/bin/python3 tests/io/onnx/make_fuzz_seed.py fuzz/corpus/onnx
Writes tiny.onnx (also used by tests/io/onnx/test_onnx.cpp) and view.onnx (PyTorch's
x.view(x.size(0), -1) shape arithmetic).
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(0)


def init(name, shape):
    return numpy_helper.from_array(rng.uniform(-1, 1, shape).astype(np.float32), name)


nodes = [
    helper.make_node("Pad", ["input", "pads"], ["p"], name="pad"),
    helper.make_node("Conv", ["p", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3],
                     strides=[2, 2]),
    helper.make_node("BatchNormalization", ["c1", "g", "be", "m", "v"], ["bn"], name="bn",
                     epsilon=1e-5),
    helper.make_node("Relu", ["bn"], ["r"], name="relu"),
    helper.make_node("MaxPool", ["r"], ["mp"], name="pool", kernel_shape=[2, 2], pads=[1, 1, 0, 0]),
    helper.make_node("Conv", ["mp", "w2"], ["c2"], name="conv2", kernel_shape=[3, 3],
                     pads=[1, 1, 1, 1]),
    helper.make_node("Add", ["mp", "c2"], ["a"], name="add"),
    helper.make_node("AveragePool", ["a"], ["ap"], name="avg", kernel_shape=[1, 1]),
    helper.make_node("GlobalAveragePool", ["ap"], ["gap"], name="gap"),
    helper.make_node("Constant", [], ["shape"], name="shape",
                     value=numpy_helper.from_array(np.array([0, -1], np.int64), "shape")),
    helper.make_node("Reshape", ["gap", "shape"], ["f"], name="flatten"),
    helper.make_node("Gemm", ["f", "wf", "bf"], ["logits"], name="fc", transB=1),
    helper.make_node("Softmax", ["logits"], ["output"], name="softmax", axis=1),
]
inits = [
    numpy_helper.from_array(np.array([0, 0, 1, 0, 0, 0, 0, 1], np.int64), "pads"),
    init("w1", (4, 2, 3, 3)), init("b1", (4,)),
    init("g", (4,)), init("be", (4,)), init("m", (4,)),
    numpy_helper.from_array(rng.uniform(0.5, 1.5, (4,)).astype(np.float32), "v"),
    init("w2", (4, 4, 3, 3)), init("wf", (3, 4)), init("bf", (3,)),
]
graph = helper.make_graph(
    nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 2, 8, 8])],
    [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3])], inits)


def save(graph, name):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model, full_check=True)
    path = os.path.join(sys.argv[1], name)
    onnx.save(model, path)
    print(f"wrote {path}")


save(graph, "tiny.onnx")

i64 = lambda name, v: numpy_helper.from_array(np.array(v, np.int64), name)  # noqa: E731
view = helper.make_graph(
    [
        helper.make_node("Conv", ["input", "w"], ["c"], name="conv", kernel_shape=[1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Shape", ["r"], ["s"], name="shape"),
        helper.make_node("Constant", [], ["zero"], name="zero", value=i64("zero", 0)),
        helper.make_node("Gather", ["s", "zero"], ["b"], name="batch"),
        helper.make_node("Unsqueeze", ["b", "axes"], ["b1"], name="unsqueeze"),
        helper.make_node("Concat", ["b1", "minus1"], ["shape"], name="concat", axis=0),
        helper.make_node("Reshape", ["r", "shape"], ["f"], name="view"),
        helper.make_node("Gemm", ["f", "wf"], ["output"], name="fc", transB=1),
    ],
    "view", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 2, 3, 3])],
    [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 2])],
    [init("w", (2, 2, 1, 1)), i64("axes", [0]), i64("minus1", [-1]), init("wf", (2, 18))])
save(view, "view.onnx")
