// Files: model plots (and, later, Keras .h5 models and ONNX).
#pragma once

#include <map>
#include <string>

#include "resnet/model.h"

namespace resnet {

// keras.utils.plot_model: renders the graph with Graphviz's dot layout. The format follows the
// extension of `path`: .png, .svg or .dot (the DOT text itself). Written atomically (a temporary
// file in the same folder, then a rename). Throws IoError naming the file on failure.
void plot_model(const Model& model, const std::string& path, bool show_shapes = false,
                int dpi = 96);

// resnet.cpp's own weights file (".rnw"; Keras .h5 comes later): string attributes, every
// parameter as "layer/param", and optionally the optimizer state. Written atomically.
// Layout, little-endian: "RNWT", u32 version (1), u32 attribute count, then (u32 length, bytes)
// key/value pairs, u32 tensor count, then per tensor (u32 length, name bytes, u32 rank, i64 dims,
// float32 data).
void save_weights(Model& model, const std::string& path,
                  const std::map<std::string, std::string>& attributes = {},
                  bool include_optimizer = false);
// Loads every parameter by name (shapes must match; a missing or extra tensor, a shape mismatch,
// a NaN weight, truncation or corruption throw IoError naming the file and the tensor), and the
// optimizer state when the file has one and the model is compiled. Returns the attributes.
std::map<std::string, std::string> load_weights(Model& model, const std::string& path);
// Only the attributes (cheap: stops before the tensors).
std::map<std::string, std::string> read_weights_attributes(const std::string& path);

// keras.models.load_model for a Keras 2.x HDF5 file (model.save('x.h5')): builds the graph from
// the root attribute `model_config` (Functional/Model JSON; supported classes: InputLayer, Conv2D,
// BatchNormalization, Activation, ReLU, Add, ZeroPadding2D, Max/AveragePooling2D,
// GlobalAverage/GlobalMaxPooling2D, Flatten, Dense, Dropout), then loads every parameter from
// `model_weights/<layer>/<layer>/<var>:0`. The model is named after the config. An unknown layer
// class, a missing dataset or a shape mismatch throws IoError naming the file and the layer or
// dataset. The optimizer state and training config are not loaded.
Model load_keras_model(const std::string& path);

// Writes `data` to `path` atomically: a temporary file in the same folder, flushed, then renamed
// over `path`, so an interrupted write never destroys the previous file.
void write_file_atomic(const std::string& path, const std::string& data);

}  // namespace resnet
