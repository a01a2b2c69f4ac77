// ONNX export and import (docs/onnx.md).
//
// Layout convention: resnet.cpp models take NHWC input (Keras); ONNX models exported here take
// NCHW input (the ONNX and PyTorch convention), so an exported file plugs into any ONNX runtime
// like a PyTorch export would. Imported models take NHWC input again, like every Model.
//
// Both need the optional dependency libonnx-dev + libprotobuf-dev at build time; without it
// onnx_available() is false and both functions throw ConfigError saying so.
#pragma once

#include <string>

#include "resnet/model.h"

namespace resnet {

struct OnnxExportOptions {
  // Fold every BatchNormalization that directly follows a Conv2D (its only consumer, with a
  // linear activation) into that convolution's weights and bias. Other BNs stay
  // BatchNormalization nodes.
  bool fold_bn = false;
  // The graph's name; empty: the model's name.
  std::string graph_name;
};

// Whether this build has ONNX support.
bool onnx_available();

// Writes `model` as an ONNX file (opset 13, IR version 7) atomically. The graph has one input
// "input" (N, C, H, W) (rank-1 inputs stay (N, D)) and one output "output" (further inputs and
// outputs are numbered "input_1", "output_1", ...) with a symbolic batch dimension "N".
// Mapping: Conv2D -> Conv (HWIO kernel -> OIHW; 'same' as explicit TensorFlow pads) [+ its
// activation], BatchNormalization -> BatchNormalization (or folded, see options), ReLU -> Relu,
// Activation -> Relu/Sigmoid/Tanh/Softmax/Identity, Add -> Add/Sum, MaxPooling2D -> MaxPool,
// AveragePooling2D -> AveragePool (count_include_pad=0), GlobalAverage/GlobalMaxPooling2D ->
// GlobalAveragePool/GlobalMaxPool + Flatten, ZeroPadding2D -> Pad, Flatten -> Flatten, Dense ->
// Gemm (transB=1; after a Flatten of a feature map larger than 1x1 the kernel rows are permuted
// from HWC to CHW order, so outputs equal the model's), Dropout -> Identity. 4-D model outputs
// are NCHW in the file. A layer with no ONNX equivalent throws ConfigError naming it; a failed
// write throws IoError naming the file.
void export_onnx(Model& model, const std::string& path, const OnnxExportOptions& o = {});

// Reads an ONNX model (opset 11 to 21, one float input (N, C, H, W) with fixed C, H, W) into a
// Model taking NHWC input (H, W, C) that reproduces the ONNX outputs and can be trained further.
// Supported ops: Conv (group 1), BatchNormalization (inference), Relu, Sigmoid, Tanh, Softmax,
// Add, Sum, MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, Flatten, Reshape (flattening
// only; also the Shape/Gather/Unsqueeze/Concat arithmetic of PyTorch's x.view(x.size(0), -1)),
// Gemm, Pad (constant zero), Identity, Dropout, Constant.
// Initializers become the weights (OIHW -> HWIO, Gemm (out, in) -> (in, out)); pads that are not
// TensorFlow's 'same' become a ZeroPadding2D before a 'valid' layer. 4-D outputs come back NHWC.
// An unsupported op or attribute, a corrupt or truncated file, a missing initializer, a wrong
// shape, a NaN or infinite weight or an absurd size throws IoError naming the file and the node or
// initializer.
Model import_onnx(const std::string& path);

}  // namespace resnet
