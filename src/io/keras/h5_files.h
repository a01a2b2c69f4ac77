// Internal: the Keras HDF5 side of the file dispatch (src/io/model_io.cpp).
#pragma once

#include <map>
#include <string>

#include "resnet/io.h"
#include "resnet/model.h"

namespace resnet::keras_detail {

// save_model / load_model for .h5 paths (include/resnet/io.h).
void save_h5_model(Model& model, const std::string& path, bool include_optimizer,
                   const std::map<std::string, std::string>& extra_attributes);
Model load_h5_model(const std::string& path, bool compile);

// A Keras save_weights file (layer groups at the root), resnet.cpp's attributes as "resnet_"
// root attributes, and with include_optimizer the optimizer state. Written atomically.
void save_h5_weights(Model& model, const std::string& path,
                     const std::map<std::string, std::string>& attributes, bool include_optimizer);
// Loads the weights of a Keras weights file or of the model_weights group of a model file.
std::map<std::string, std::string> load_h5_weights(Model& model, const std::string& path,
                                                   const LoadWeightsOptions& options,
                                                   LoadWeightsReport& report);
// The "resnet_" root attributes (prefix removed).
std::map<std::string, std::string> read_h5_attributes(const std::string& path);

}  // namespace resnet::keras_detail
