// Loading a saved model in the CLI: see model_loading.h.
#include "cli/model_loading.h"

#include <fmt/format.h>

#include <filesystem>

#include "cli/commands.h"
#include "resnet/error.h"
#include "resnet/io.h"
#include "resnet/models.h"

namespace resnet::cli {

// A Keras .h5 model, or a model saved by `resnet train --out`: rebuilt from its zoo name and
// loaded. `preprocess` (when not empty) overrides the preprocessing stored with the model;
// Keras files store none, so they default to rescaling by 1/255.
LoadedModel load_saved(const std::string& path, const std::string& preprocess) {
  if (std::filesystem::path(path).extension() == ".h5") {
    Model m = load_keras_model(path);
    const Shape input = m.input_shapes()[0];
    if (input.rank() != 3) {
      throw IoError(fmt::format("{}: the model input {} is not an image (H, W, C)", path,
                                input.keras_str()));
    }
    std::map<std::string, std::string> attrs = {
        {"preprocess", preprocess.empty() ? "rescale" : preprocess}};
    return {std::move(m), std::move(attrs), input};
  }
  auto attrs = read_weights_attributes(path);
  if (!preprocess.empty()) attrs["preprocess"] = preprocess;
  if (!attrs.count("zoo_model") || !attrs.count("input_shape") || !attrs.count("classes")) {
    throw IoError(fmt::format("{}: no model description (zoo_model, input_shape, classes); "
                              "only files written by `resnet train --out` can be rebuilt",
                              path));
  }
  reset_name_counters();
  const Shape input = parse_shape(attrs["input_shape"]);
  Model m = build_model(attrs["zoo_model"], input, std::stoll(attrs["classes"]));
  load_weights(m, path);
  attrs["preprocess"] = attrs.count("preprocess") ? attrs["preprocess"] : "rescale";
  return {std::move(m), std::move(attrs), input};
}

}  // namespace resnet::cli
