// The one dispatch by file type: every public function that takes a model or weights file picks
// its format here, from file_format(path), and calls the folder of that format (keras/, onnx/,
// torch/, rnw/). A new format is one more FileFormat value and one more case in each switch below.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "graph/usage.h"
#include "io/keras/h5_files.h"
#include "io/keras/keras_file.h"
#include "io/rnw/rnw.h"
#include "io/torch/torch_file.h"
#include "resnet/error.h"
#include "resnet/io.h"
#include "resnet/onnx.h"

namespace resnet {

FileFormat file_format(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ext == ".h5" || ext == ".hdf5") return FileFormat::KerasH5;
  if (ext == ".keras") return FileFormat::Keras3;
  if (ext == ".onnx") return FileFormat::Onnx;
  if (ext == ".pth" || ext == ".pt") return FileFormat::Torch;
  if (ext == ".tar") {
    std::string stem = std::filesystem::path(path).stem().extension().string();
    std::transform(stem.begin(), stem.end(), stem.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (stem == ".pth" || stem == ".pt") return FileFormat::Torch;
  }
  return FileFormat::Rnw;
}

void save_model(Model& model, const std::string& path, const SaveModelOptions& options) {
  graph_detail::ModelUse use(model, graph_detail::ModelUse::Kind::Shared, "save_model");
  switch (file_format(path)) {
    case FileFormat::KerasH5:
      keras_detail::save_h5_model(model, path, options.include_optimizer, options.attributes);
      return;
    case FileFormat::Onnx:
      export_onnx(model, path);
      return;
    case FileFormat::Keras3:
      keras_detail::save_keras_file(model, path, options.include_optimizer, options.attributes);
      return;
    case FileFormat::Torch:
    case FileFormat::Rnw:
      break;
  }
  throw IoError(
      fmt::format("cannot save '{}': save_model writes Keras .h5 and .onnx files; PyTorch "
                  "state_dicts and resnet.cpp's own format hold weights only (save_weights)",
                  path));
}

Model load_model(const std::string& path, bool compile) {
  switch (file_format(path)) {
    case FileFormat::KerasH5:
      return keras_detail::load_h5_model(path, compile);
    case FileFormat::Keras3:
      return keras_detail::load_keras_file(path, compile);
    case FileFormat::Onnx:
      return import_onnx(path);
    case FileFormat::Torch:
      throw IoError(
          fmt::format("'{}' is a PyTorch file: a state_dict holds weights, not the architecture; "
                      "build the model first (a zoo model, e.g. resnet18 or resnet20), then "
                      "load_torch_weights",
                      path));
    case FileFormat::Rnw:
      break;
  }
  throw IoError(
      fmt::format("'{}' is not a model file: load_model reads Keras .h5 and .onnx files; a "
                  "resnet.cpp weights file needs the model built first (load_weights)",
                  path));
}

std::map<std::string, std::string> read_model_attributes(const std::string& path) {
  switch (file_format(path)) {
    case FileFormat::KerasH5:
      return keras_detail::read_h5_attributes(path);
    case FileFormat::Keras3:
      return keras_detail::read_keras_attributes(path);
    case FileFormat::Onnx:
      return {};
    case FileFormat::Torch:
      return torch_detail::read_torch_attributes(path);
    case FileFormat::Rnw:
      return rnw_detail::read_rnw_attributes(path);
  }
  return {};
}

void save_weights(Model& model, const std::string& path, const SaveWeightsOptions& options) {
  graph_detail::ModelUse use(model, graph_detail::ModelUse::Kind::Shared, "save_weights");
  switch (file_format(path)) {
    case FileFormat::KerasH5:
      keras_detail::save_h5_weights(model, path, options.attributes, options.include_optimizer);
      return;
    case FileFormat::Rnw:
      rnw_detail::save_rnw(model, path, options.attributes, options.include_optimizer);
      return;
    case FileFormat::Torch: {
      std::map<std::string, std::string> attrs = options.attributes;
      attrs["model_name"] = model.name();
      torch_detail::save_torch_state_dict(model, path, attrs);
      return;
    }
    case FileFormat::Keras3:
      throw IoError(fmt::format(
          "cannot save weights to '{}': a .keras file is a whole model (save_model); weights go "
          "to .h5, .pth or .rnw files",
          path));
    case FileFormat::Onnx:
      break;
  }
  throw IoError(fmt::format(
      "cannot save weights to '{}': an ONNX file is a whole model (save_model or export_onnx)",
      path));
}

std::map<std::string, std::string> load_weights(Model& model, const std::string& path,
                                                const LoadWeightsOptions& options) {
  graph_detail::ModelUse use(model, graph_detail::ModelUse::Kind::Exclusive, "load_weights");
  LoadWeightsReport local;
  LoadWeightsReport& report = options.report ? *options.report : local;
  report = {};
  switch (file_format(path)) {
    case FileFormat::KerasH5:
      return keras_detail::load_h5_weights(model, path, options, report);
    case FileFormat::Rnw:
      return rnw_detail::load_rnw(model, path, options.optimizer, report);
    case FileFormat::Torch:
      load_torch_weights(model, path,
                         {.strict = !options.by_name && !options.skip_mismatch, .report = &report});
      return torch_detail::read_torch_attributes(path);
    case FileFormat::Keras3:
      keras_detail::load_keras_weights(model, path, options, report);
      return {};
    case FileFormat::Onnx:
      break;
  }
  throw IoError(fmt::format(
      "cannot load weights from '{}': an ONNX file is a whole model (load_model or import_onnx)",
      path));
}

std::map<std::string, std::string> load_weights(Model& model, const std::string& path) {
  return load_weights(model, path, LoadWeightsOptions{});
}

}  // namespace resnet

namespace resnet {
void save_torch_state_dict(const Model& model, const std::string& path) {
  graph_detail::ModelUse use(model, graph_detail::ModelUse::Kind::Shared, "save_torch_state_dict");
  torch_detail::save_torch_state_dict(model, path);
}
}  // namespace resnet
