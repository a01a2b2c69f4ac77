// How training code saves a model (ModelCheckpoint, `resnet train --out`): one entry point, so the
// file format can change in one place (src/io/model_file.cpp).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "resnet/model.h"
#include "resnet/train.h"

namespace resnet {

// Saves `model` to `path` atomically: weights, and (unless weights_only) the optimizer state.
void save_model_file(Model& model, const std::string& path, bool weights_only);

// The signature of save_model_file.
using SaveModelFn = std::function<void(Model& model, const std::string& path, bool weights_only)>;

// ModelCheckpoint that saves through `save` instead of save_model_file (tests record the calls).
std::shared_ptr<Callback> ModelCheckpointWithSaver(ModelCheckpointOptions o, SaveModelFn save);

}  // namespace resnet
