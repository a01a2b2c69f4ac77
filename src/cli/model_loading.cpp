// Loading a saved model in the CLI: see model_loading.h.
#include "cli/model_loading.h"

#include <fmt/format.h>

#include "cli/commands.h"
#include "resnet/error.h"
#include "resnet/io.h"
#include "resnet/models.h"
#include "resnet/onnx.h"

namespace resnet::cli {

namespace {

Shape image_input(const Model& m, const std::string& path) {
  const Shape input = m.input_shapes()[0];
  if (input.rank() != 3) {
    throw IoError(
        fmt::format("{}: the model input {} is not an image (H, W, C)", path, input.keras_str()));
  }
  return input;
}

// A file with only weights and resnet.cpp's description (zoo_model, input_shape, classes):
// rebuilt from the zoo and loaded.
LoadedModel rebuild_from_zoo(const std::string& path, std::map<std::string, std::string> attrs) {
  if (!attrs.count("zoo_model") || !attrs.count("input_shape") || !attrs.count("classes")) {
    throw IoError(
        fmt::format("{}: no model description (zoo_model, input_shape, classes); "
                    "only files written by `resnet train --out` can be rebuilt",
                    path));
  }
  reset_name_counters();
  const Shape input = parse_shape(attrs["input_shape"]);
  int64_t classes = 0;
  try {
    classes = std::stoll(attrs["classes"]);
  } catch (const std::exception&) {
    throw IoError(fmt::format("{}: bad classes attribute '{}'", path, attrs["classes"]));
  }
  Model m = build_model(attrs["zoo_model"], input, classes);
  load_weights(m, path, {.by_name = true, .optimizer = false});
  return {std::move(m), std::move(attrs), input};
}

}  // namespace

// A Keras .h5 model (ours, with resnet_ attributes, or a plain Keras file), a .h5 weights file
// written with resnet.cpp's attributes, or a .rnw file written by `resnet train --out`.
// `preprocess` (when not empty) overrides the preprocessing stored with the model; plain Keras
// files store none, so they default to rescaling by 1/255.
LoadedModel load_saved(const std::string& path, const std::string& preprocess) {
  LoadedModel out = [&]() -> LoadedModel {
    const FileFormat format = file_format(path);
    if (format == FileFormat::Onnx) {
      // ONNX models (typically PyTorch exports) default to PyTorch's ImageNet preprocessing.
      Model m = import_onnx(path);
      const Shape input = image_input(m, path);
      return {std::move(m), {{"preprocess", "torch"}}, input};
    }
    if (format == FileFormat::KerasH5) {
      auto attrs = read_model_attributes(path);
      try {
        Model m = load_model(path, /*compile=*/false);
        const Shape input = image_input(m, path);
        return {std::move(m), std::move(attrs), input};
      } catch (const IoError& e) {
        // A weights-only .h5 file can still be rebuilt from its zoo description.
        if (std::string(e.what()).find("no model_config") == std::string::npos ||
            !attrs.count("zoo_model")) {
          throw;
        }
        return rebuild_from_zoo(path, std::move(attrs));
      }
    }
    return rebuild_from_zoo(path, read_model_attributes(path));
  }();
  if (!preprocess.empty()) out.attrs["preprocess"] = preprocess;
  if (!out.attrs.count("preprocess")) out.attrs["preprocess"] = "rescale";
  return out;
}

}  // namespace resnet::cli
