// Internal: Keras 3 native .keras files, the .keras side of the file dispatch
// (src/io/model_io.cpp).
#pragma once

#include <map>
#include <string>

#include "resnet/io.h"
#include "resnet/model.h"

namespace resnet::keras_detail {

struct KerasFileInfo {
  std::string keras_version;        // metadata.json
  bool optimizer_restored = false;  // optimizer/vars loaded into the compiled model
};

// keras.models.load_model of a .keras file: the graph from config.json (the Keras 3 serialization
// that build_keras_model_from_json reads), every weight from model.weights.h5 (the group of each
// layer found by the layer name its vars record, else by Keras's object name: the class in snake
// case, numbered in layer order), and with `compile` the compile_config (optimizer, loss,
// metrics) and the optimizer state (optimizer/vars: iterations, learning rate, then each
// trainable variable's slots). Throws IoError naming the file and the member: not a zip, a
// missing or damaged member, a config that does not match the weights.
Model load_keras_file(const std::string& path, bool compile, KerasFileInfo* info = nullptr);

// keras model.save("m.keras"): metadata.json (keras_version 3.13.2, the layout reproduced),
// config.json (keras3_config_json), model.weights.h5 (layers/<object>/vars/<i> with the layer
// name as the vars' "name" attribute; with include_optimizer and a compiled model,
// optimizer/vars: iterations, learning rate, each trainable variable's slots; vars with the
// model name), and `attributes` in a member resnet_attributes.json of its own. Stored members;
// written atomically.
void save_keras_file(Model& model, const std::string& path, bool include_optimizer,
                     const std::map<std::string, std::string>& attributes);
// Keras model.load_weights("m.keras"): the file's model is loaded, then its weights copied into
// `model` by layer name (options.by_name: model layers absent from the file are reported, not
// refused; options.skip_mismatch: layers of other shapes are reported). Checked before anything
// changes.
void load_keras_weights(Model& model, const std::string& path, const LoadWeightsOptions& options,
                        LoadWeightsReport& report);

// Those attributes ({} when the file has none).
std::map<std::string, std::string> read_keras_attributes(const std::string& path);

}  // namespace resnet::keras_detail
