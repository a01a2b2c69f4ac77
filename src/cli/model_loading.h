// Loading a saved model in the CLI (evaluate, predict, finetune, export): one place that knows
// every model file format.
#pragma once

#include <CLI/CLI.hpp>
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

// The architecture of a PyTorch state_dict, which holds weights only: --model (a zoo name),
// --input-shape, --classes (default: the rows of the state_dict's fc/linear weight), --strict,
// --torch-key.
struct ArchChoice {
  std::string model;
  std::string input_shape;
  int64_t classes = 0;
  std::string shortcut;  // the CIFAR ResNets: A or B
  bool strict = true;
  std::string torch_key;
  bool given() const {
    return !model.empty() || !input_shape.empty() || classes != 0 || !shortcut.empty() || !strict ||
           !torch_key.empty();
  }
};
// --model, --input-shape, --classes, --shortcut (unless `zoo_flags_exist`: the command has them),
// --strict and --torch-key.
void add_arch_options(CLI::App* cmd, ArchChoice& a, bool zoo_flags_exist = false);

// A Keras .h5 model, a model saved by `resnet train --out`, an ONNX file, or a PyTorch file
// (.pth, .pt, .pth.tar) with its architecture in `arch` (or written by resnet.cpp, which records
// it). `preprocess` (when not empty) overrides the preprocessing stored with the model; Keras files
// store none, so they default to rescaling by 1/255, PyTorch files to `torch`. Throws IoError
// naming the file; ConfigError when `arch` is given for a file that holds its own architecture.
LoadedModel load_saved(const std::string& path, const std::string& preprocess,
                       const ArchChoice& arch = {});

}  // namespace resnet::cli
