// Loading a saved model in the CLI: see model_loading.h.
#include "cli/model_loading.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

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
  Model m = build_model(attrs["zoo_model"], input, classes,
                        parse_shortcut(attrs.count("shortcut") ? attrs["shortcut"] : ""));
  load_weights(m, path, {.by_name = true, .optimizer = false});
  return {std::move(m), std::move(attrs), input};
}

// The classes of a state_dict: the rows of its classifier weight.
int64_t head_classes(const TorchStateDict& sd) {
  for (const char* key : {"fc.weight", "linear.weight", "predictions.weight"}) {
    if (const TorchTensorEntry* e = sd.find(key); e && e->value.shape().rank() == 2) {
      return e->value.shape()[0];
    }
  }
  return 0;
}

LoadedModel load_torch(const std::string& path, const ArchChoice& arch) {
  auto attrs = read_model_attributes(path);
  if (arch.model.empty()) {
    if (attrs.count("zoo_model")) return rebuild_from_zoo(path, std::move(attrs));
    throw ConfigError(fmt::format(
        "{} is a PyTorch state_dict: it holds weights, not the architecture; name it with "
        "--model (a zoo model such as resnet18, resnet34, resnet20 ... resnet1202; see `resnet "
        "models`)",
        path));
  }
  const TorchStateDict sd = load_torch_state_dict(path, {.key = arch.torch_key});
  const int64_t classes = arch.classes != 0 ? arch.classes : head_classes(sd);
  reset_name_counters();
  Model m = build_model(arch.model, parse_shape(arch.input_shape), classes,
                        parse_shortcut(arch.shortcut));
  LoadWeightsReport report;
  load_torch_weights(m, sd, {.strict = arch.strict, .report = &report});
  std::size_t tensors = 0;
  for (const auto& l : m.layers()) {
    if (std::find(report.loaded.begin(), report.loaded.end(), l->name()) != report.loaded.end()) {
      tensors += l->params().size();
    }
  }
  fmt::print(stderr, "{}: {} weights of {} layers loaded into {} ({} format{}{})\n", path, tensors,
             report.loaded.size(), arch.model, sd.format,
             sd.key.empty() ? std::string() : fmt::format(", entry '{}'", sd.key),
             sd.stripped_prefix.empty() ? std::string()
                                        : fmt::format(", prefix '{}' removed", sd.stripped_prefix));
  for (const std::string& s : report.skipped) fmt::print(stderr, "  skipped {}\n", s);
  for (const std::string& l : report.missing) fmt::print(stderr, "  not in the file: {}\n", l);
  attrs.emplace("preprocess", "torch");
  // torchvision's ImageNet models (a 7x7 stem) are evaluated on Resize(256) + CenterCrop(224)
  // crops: at other input sizes, the same proportion.
  for (const auto& l : m.layers()) {
    if (l->name() == "conv1_conv" && !l->params().empty() && l->params()[0].value.shape()[0] == 7) {
      const Shape in = m.input_shapes()[0];
      attrs.emplace("resize", std::to_string(static_cast<int64_t>(std::lround(
                                  static_cast<double>(std::max(in[0], in[1])) / 0.875))));
    }
  }
  attrs["zoo_model"] = arch.model;
  if (parse_shortcut(arch.shortcut) == Shortcut::A) attrs["shortcut"] = "A";
  const Shape input = image_input(m, path);
  return {std::move(m), std::move(attrs), input};
}

}  // namespace

void add_arch_options(CLI::App* cmd, ArchChoice& a, bool zoo_flags_exist) {
  if (!zoo_flags_exist) {
    cmd->add_option("--model", a.model,
                    "with a PyTorch file: its architecture, a zoo model (see `resnet models`)");
    cmd->add_option("--input-shape", a.input_shape,
                    "with a PyTorch file: input shape H,W,C (default: the zoo model's)");
    cmd->add_option("--classes", a.classes,
                    "with a PyTorch file: classes (default: the rows of its fc/linear weight)")
        ->check(CLI::PositiveNumber);
    add_shortcut_option(cmd, a.shortcut);
  }
  cmd->add_option("--strict", a.strict,
                  "with a PyTorch file: every weight must match (true), or load what fits and list "
                  "the rest (false)");
  cmd->add_option("--torch-key", a.torch_key,
                  "with a PyTorch checkpoint: the entry holding the state_dict (default: found)");
}

// A Keras .h5 model (ours, with resnet_ attributes, or a plain Keras file), a .h5 weights file
// written with resnet.cpp's attributes, or a .rnw file written by `resnet train --out`.
// `preprocess` (when not empty) overrides the preprocessing stored with the model; plain Keras
// files store none, so they default to rescaling by 1/255.
LoadedModel load_saved(const std::string& path, const std::string& preprocess,
                       const ArchChoice& arch) {
  const FileFormat format = file_format(path);
  if (format != FileFormat::Torch && arch.given()) {
    throw ConfigError(fmt::format(
        "--model, --input-shape, --classes, --shortcut, --strict and --torch-key describe a "
        "PyTorch "
        "state_dict (.pth, .pt, .pth.tar); {} holds its own architecture",
        path));
  }
  LoadedModel out = [&]() -> LoadedModel {
    if (format == FileFormat::Torch) return load_torch(path, arch);
    if (format == FileFormat::Onnx) {
      // ONNX models (typically PyTorch exports) default to PyTorch's ImageNet preprocessing.
      Model m = import_onnx(path);
      const Shape input = image_input(m, path);
      return {std::move(m), {{"preprocess", "torch"}}, input};
    }
    if (format == FileFormat::Keras3) {
      Model m = load_model(path, /*compile=*/false);
      const Shape input = image_input(m, path);
      return {std::move(m), read_model_attributes(path), input};
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
