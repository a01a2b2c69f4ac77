// `resnet export`: convert a saved model (or a freshly initialized zoo model) to ONNX, Keras .h5 or
// a PyTorch state_dict.
#include <fmt/format.h>

#include <map>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/model_loading.h"
#include "core/atomic_file.h"
#include "resnet/error.h"
#include "resnet/io.h"
#include "resnet/models.h"
#include "resnet/onnx.h"

namespace resnet::cli {

void add_onnx_commands(CLI::App& app) {
  struct Options {
    std::string file, model, input_shape, out, shortcut;
    int64_t classes = 0;
    bool fold_bn = false;
  };
  auto o = std::make_shared<Options>();
  auto arch = std::make_shared<ArchChoice>();
  CLI::App* cmd = app.add_subcommand(
      "export",
      "Convert a model: to ONNX (opset 13, NCHW input \"input\", output \"output\"), a Keras .h5 "
      "model or a PyTorch state_dict (.pth), from any model file resnet.cpp reads");
  cmd->add_option("model", o->file,
                  "model file: Keras .h5, .onnx, PyTorch .pth (with --model naming its "
                  "architecture), or a file written by `resnet train --out`");
  cmd->add_option("--model", o->model,
                  "a zoo model: freshly initialized, or the architecture of a PyTorch file");
  cmd->add_option("--input-shape", o->input_shape, "with --model: input shape H,W,C");
  cmd->add_option("--classes", o->classes, "with --model: number of classes")
      ->check(CLI::PositiveNumber);
  add_shortcut_option(cmd, o->shortcut);
  add_arch_options(cmd, *arch, /*zoo_flags_exist=*/true);
  cmd->add_option(
         "-o,--output", o->out,
         "the file to write: .onnx, .h5 or .keras (Keras model), .pth/.pt (PyTorch state_dict)")
      ->required();
  cmd->add_flag("--fold-bn", o->fold_bn,
                "ONNX: fold each BatchNormalization that follows a convolution into its weights");
  cmd->callback([o, arch] {
    const bool torch_in = !o->file.empty() && file_format(o->file) == FileFormat::Torch;
    if (!torch_in && o->file.empty() == o->model.empty()) {
      throw ConfigError(
          "export: give either a model file or --model NAME (both only for a PyTorch file)");
    }
    if (!torch_in && !o->file.empty() &&
        (!o->input_shape.empty() || o->classes != 0 || !o->shortcut.empty())) {
      throw ConfigError("export: --input-shape, --classes and --shortcut go with --model only");
    }
    if (!torch_in && (!arch->strict || !arch->torch_key.empty())) {
      throw ConfigError("export: --strict and --torch-key go with a PyTorch file");
    }
    const FileFormat to = file_format(o->out);
    if (to == FileFormat::Rnw) {
      throw ConfigError(
          fmt::format("export: -o {} must end in .onnx, .h5, .keras or .pth (.pt)", o->out));
    }
    if (o->fold_bn && to != FileFormat::Onnx) {
      throw ConfigError("export: --fold-bn applies to ONNX output only");
    }
    if (to == FileFormat::Onnx && !onnx_available()) {
      throw ConfigError(
          "export: this resnet was built without ONNX support (install "
          "libonnx-dev and libprotobuf-dev, then rebuild)");
    }
    check_writable(o->out, "-o");
    reset_name_counters();
    ArchChoice a = *arch;
    if (torch_in) {
      a.model = o->model;
      a.input_shape = o->input_shape;
      a.classes = o->classes;
      a.shortcut = o->shortcut;
    }
    LoadedModel lm = o->file.empty()
                         ? LoadedModel{build_model(o->model, parse_shape(o->input_shape),
                                                   o->classes, parse_shortcut(o->shortcut)),
                                       {{"zoo_model", o->model}},
                                       {}}
                         : load_saved(o->file, "", a);
    Model& m = lm.model;
    // What resnet.cpp knows of the model travels with it where the format has room.
    std::map<std::string, std::string> attrs;
    for (const char* k : {"preprocess", "class_names", "resize"}) {
      if (lm.attrs.count(k)) attrs[k] = lm.attrs.at(k);
    }
    const std::string zoo = torch_in                      ? o->model
                            : lm.attrs.count("zoo_model") ? lm.attrs["zoo_model"]
                                                          : "";
    if (!zoo.empty()) {
      attrs["zoo_model"] = zoo;
      const Shape in = m.input_shapes()[0];
      attrs["input_shape"] = fmt::format("{}", fmt::join(in.dims(), ","));
      attrs["classes"] = std::to_string(m.output_shapes()[0][-1]);
      const std::string sc = torch_in || o->file.empty()
                                 ? o->shortcut
                                 : (lm.attrs.count("shortcut") ? lm.attrs["shortcut"] : "");
      if (parse_shortcut(sc) == Shortcut::A) attrs["shortcut"] = "A";
    }
    switch (to) {
      case FileFormat::Onnx:
        export_onnx(m, o->out, {.fold_bn = o->fold_bn});
        fmt::print("wrote {} ({} layers, {} parameters; input NCHW)\n", o->out, m.layers().size(),
                   m.count_params());
        return;
      case FileFormat::KerasH5:
      case FileFormat::Keras3:
        save_model(m, o->out, {.include_optimizer = false, .attributes = attrs});
        break;
      case FileFormat::Torch:
        save_weights(m, o->out, {.attributes = attrs});
        break;
      case FileFormat::Rnw:
        break;
    }
    fmt::print("wrote {} ({} layers, {} parameters)\n", o->out, m.layers().size(),
               m.count_params());
  });
}

}  // namespace resnet::cli
