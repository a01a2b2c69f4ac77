// Internal: Keras model_config / training_config JSON <-> resnet.cpp graphs (exposed for tests,
// the HDF5 model files in h5_files.cpp and `resnet finetune`).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "resnet/model.h"
#include "resnet/train.h"

namespace resnet::keras_detail {

// A graph built from a model_config: the symbolic tensors of every layer by name, so callers can
// build a Model from any of them or connect more layers (transfer learning).
struct KerasGraph {
  std::string name;
  std::vector<SymTensor> inputs, outputs;
  std::map<std::string, SymTensor> tensors;
  std::vector<std::string> order;  // layer names in file order
};

// Builds the model described by a Keras `model_config` JSON (Keras 2: {"class_name": "Functional"
// or "Model", "config": {"name", "layers", "input_layers", "output_layers"}}; Keras 3 files too:
// "module"/"registered_name" keys, inbound nodes as {"args": [__keras_tensor__ ...]}, a flat
// input_layers entry) through the functional API, layers in a topological order of their inbound
// nodes, each created from its config by the layer registry (resnet/config.h: built-in classes
// and those the user registered). Parameters are freshly initialized. Throws IoError prefixed with
// `where` (the file): malformed JSON, an unknown layer class (naming the layer and its class), an
// unsupported option, or a broken graph. `max_params` >= 0 refuses (IoError) a config whose layers
// would create more parameters than that before they are allocated (a file can hold at most file
// size / 4 float32 weights).
Model build_keras_model_from_json(const std::string& json, const std::string& where,
                                  int64_t max_params = -1);
KerasGraph build_keras_graph(const std::string& json, const std::string& where,
                             int64_t max_params = -1);

// The Keras 2.4 model_config of `model` (class_name "Functional"): every layer's Layer::config()
// (Conv2D kernel_size/strides lists, initializers as {"class_name", "config"}, BatchNormalization
// axis [3], ...) with Keras 2 inbound nodes.
std::string model_config_json(const Model& model);

// The config.json of a Keras 3 .keras file: the Keras 3 serialization of `model` ("module",
// "registered_name", DTypePolicy dtypes, build_config, inbound nodes of __keras_tensor__ args,
// flat input_layers/output_layers for one input/output) and, when compiled, its compile_config.
std::string keras3_config_json(Model& model);

// Keras 2.4 training_config of a compiled model: loss, metrics (MeanMetricWrapper), and
// optimizer_config from the optimizer.
std::string training_config_json(Model& model);

// CompileOptions from a training_config (Adam, AdamW, SGD, RMSprop; learning rate constant or an
// ExponentialDecay/CosineDecay schedule; Keras loss names or classes; accuracy metrics). Throws
// IoError naming `where` for an optimizer or loss resnet.cpp does not have.
CompileOptions compile_options_from_training_config(const std::string& json,
                                                    const std::string& where);

}  // namespace resnet::keras_detail
