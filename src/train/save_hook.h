// How training code saves a model (ModelCheckpoint, `resnet train --out`): one entry point, so the
// checkpoint policy (a full model or weights, in which format) is decided in one place.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "resnet/model.h"
#include "resnet/train.h"

namespace resnet {

// Saves `model` to `path` atomically. A path ending in .h5 gets a Keras HDF5 model file
// (save_model: config, weights, optimizer state) or, with weights_only, a Keras save_weights file;
// any other path gets resnet.cpp's .rnw weights file (with the optimizer state unless
// weights_only).
void save_model_file(Model& model, const std::string& path, bool weights_only);
// The same, storing resnet.cpp's attributes (zoo_model, input_shape, classes, preprocess,
// class_names, epoch) with the model (as "resnet_" root attributes in .h5 files).
void save_model_file_with_attributes(Model& model, const std::string& path, bool weights_only,
                                     const std::map<std::string, std::string>& attributes);

// The signature of save_model_file.
using SaveModelFn = std::function<void(Model& model, const std::string& path, bool weights_only)>;

// ModelCheckpoint that saves through `save` instead of save_model_file (tests record the calls).
std::shared_ptr<Callback> ModelCheckpointWithSaver(ModelCheckpointOptions o, SaveModelFn save);

}  // namespace resnet
