// Internal: the Keras HDF5 model loader's graph builder (exposed for tests).
#pragma once

#include <string>

#include "resnet/model.h"

namespace resnet::keras_detail {

// Builds the model described by a Keras `model_config` JSON ({"class_name": "Functional" or
// "Model", "config": {"name", "layers", "input_layers", "output_layers"}}) through the functional
// API, layers in a topological order of their inbound nodes. Parameters are freshly initialized.
// Throws IoError prefixed with `where` (the file): malformed JSON, an unknown layer class (naming
// the layer and its class), an unsupported option, or a broken graph.
Model build_keras_model_from_json(const std::string& json, const std::string& where);

}  // namespace resnet::keras_detail
