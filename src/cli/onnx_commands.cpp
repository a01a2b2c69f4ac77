// `resnet export`: write a saved model (or a freshly initialized zoo model) as an ONNX file.
#include <fmt/format.h>

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
    std::string file, model, input_shape, out;
    int64_t classes = 0;
    bool fold_bn = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "export",
      "Write a model as an ONNX file (opset 13, NCHW input \"input\", output \"output\")");
  cmd->add_option("model", o->file,
                  "model file: Keras .h5, .onnx, or a file written by `resnet train --out`");
  cmd->add_option("--model", o->model,
                  "a freshly initialized zoo model instead (see `resnet models`)");
  cmd->add_option("--input-shape", o->input_shape, "with --model: input shape H,W,C");
  cmd->add_option("--classes", o->classes, "with --model: number of classes")
      ->check(CLI::PositiveNumber);
  cmd->add_option("-o,--output", o->out, "the .onnx file to write (must end in .onnx)")->required();
  cmd->add_flag("--fold-bn", o->fold_bn,
                "fold each BatchNormalization that follows a convolution into its weights");
  cmd->callback([o] {
    if (o->file.empty() == o->model.empty()) {
      throw ConfigError("export: give either a model file or --model NAME");
    }
    if (!o->file.empty() && (!o->input_shape.empty() || o->classes != 0)) {
      throw ConfigError("export: --input-shape and --classes go with --model only");
    }
    if (!onnx_available()) {
      throw ConfigError(
          "export: this resnet was built without ONNX support (install "
          "libonnx-dev and libprotobuf-dev, then rebuild)");
    }
    if (file_format(o->out) != FileFormat::Onnx) {
      throw ConfigError(fmt::format("export: -o {} must end in .onnx", o->out));
    }
    check_writable(o->out, "-o");
    reset_name_counters();
    Model m = o->file.empty() ? build_model(o->model, parse_shape(o->input_shape), o->classes)
                              : load_saved(o->file, "").model;
    export_onnx(m, o->out, {.fold_bn = o->fold_bn});
    fmt::print("wrote {} ({} layers, {} parameters; input NCHW)\n", o->out, m.layers().size(),
               m.count_params());
  });
}

}  // namespace resnet::cli
