// Loading a saved model in the CLI (evaluate, predict, finetune, export): one place that knows
// every model file format.
#pragma once

#include <map>
#include <string>

#include "resnet/model.h"
#include "resnet/shape.h"

namespace resnet::cli {

struct LoadedModel {
  Model model;
  std::map<std::string, std::string> attrs;  // preprocess, class_names, ... when known
  Shape input;                               // per-sample input shape (H, W, C)
};

// A Keras .h5 model, or a model saved by `resnet train --out`: rebuilt and loaded.
// `preprocess` (when not empty) overrides the preprocessing stored with the model; Keras files
// store none, so they default to rescaling by 1/255. Throws IoError naming the file.
LoadedModel load_saved(const std::string& path, const std::string& preprocess);

}  // namespace resnet::cli
