// `resnet summary`, `resnet plot`, `resnet models`: inspect the zoo without computing anything.
#include <fmt/format.h>

#include <cstdio>
#include <sstream>

#include "cli/commands.h"
#include "cli/model_loading.h"
#include "resnet/error.h"
#include "resnet/io.h"
#include "resnet/models.h"

namespace resnet::cli {

Model::Recompute recompute_mode(bool full, bool none) {
  if (full && none) throw ConfigError("--recompute and --no-recompute exclude each other");
  return full ? Model::Recompute::Full : none ? Model::Recompute::Off : Model::Recompute::Pointwise;
}

Shortcut parse_shortcut(const std::string& text) {
  if (text.empty() || text == "B" || text == "b") return Shortcut::B;
  if (text == "A" || text == "a") return Shortcut::A;
  throw ConfigError(fmt::format("--shortcut must be A or B, got '{}'", text));
}

void add_shortcut_option(CLI::App* cmd, std::string& value) {
  cmd->add_option("--shortcut", value,
                  "CIFAR ResNets: B, projection shortcuts (default), or A, He et al.'s "
                  "parameter-free subsample-and-pad")
      ->check(CLI::IsMember({"A", "B", "a", "b"}));
}

Shape parse_shape(const std::string& text) {
  if (text.empty()) return {};
  std::vector<int64_t> dims;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    try {
      size_t used = 0;
      const long long v = std::stoll(part, &used);
      if (used != part.size() || v <= 0) throw std::invalid_argument(part);
      dims.push_back(v);
    } catch (const std::exception&) {
      throw ConfigError(
          fmt::format("--input-shape '{}': expected H,W,C with positive integers", text));
    }
  }
  if (dims.size() != 3) {
    throw ConfigError(fmt::format("--input-shape '{}': expected three values H,W,C", text));
  }
  return Shape(dims);
}

namespace {
struct ModelChoice {
  std::string model;
  std::string input_shape;
  int64_t classes = 0;
  std::string shortcut;
};

void add_model_options(CLI::App* cmd, ModelChoice& c) {
  cmd->add_option("--model", c.model, "zoo model name (see `resnet models`)")->required();
  cmd->add_option("--input-shape", c.input_shape, "input shape H,W,C (default: the model's)");
  cmd->add_option("--classes", c.classes, "number of classes (default: the model's)")
      ->check(CLI::PositiveNumber);
  add_shortcut_option(cmd, c.shortcut);
}

Model build(const ModelChoice& c) {
  reset_name_counters();
  return build_model(c.model, parse_shape(c.input_shape), c.classes, parse_shortcut(c.shortcut));
}
}  // namespace

void add_model_commands(CLI::App& app) {
  {
    auto c = std::make_shared<ModelChoice>();
    auto file = std::make_shared<std::string>();
    auto arch = std::make_shared<ArchChoice>();
    CLI::App* cmd = app.add_subcommand(
        "summary",
        "Print the Keras-style summary of a zoo model, of a Keras .h5 model file, or of a PyTorch "
        "state_dict loaded into a zoo model");
    cmd->add_option("file", *file,
                    "Keras .h5 model file (instead of --model), or a PyTorch .pth file (with "
                    "--model naming its architecture)");
    cmd->add_option("--model", c->model, "zoo model name (see `resnet models`)");
    cmd->add_option("--input-shape", c->input_shape, "input shape H,W,C (default: the model's)");
    cmd->add_option("--classes", c->classes, "number of classes (default: the model's)")
        ->check(CLI::PositiveNumber);
    add_shortcut_option(cmd, c->shortcut);
    add_arch_options(cmd, *arch, /*zoo_flags_exist=*/true);
    cmd->callback([c, file, arch] {
      const bool torch = !file->empty() && file_format(*file) == FileFormat::Torch;
      if (!torch && file->empty() == c->model.empty()) {
        throw ConfigError(
            "summary: give either a model file or --model NAME (both only for a PyTorch file)");
      }
      if (!torch && !file->empty() &&
          (!c->input_shape.empty() || c->classes != 0 || !c->shortcut.empty())) {
        throw ConfigError(fmt::format(
            "summary: --input-shape, --classes and --shortcut go with --model; {} holds its own "
            "architecture",
            *file));
      }
      ArchChoice a = *arch;
      a.model = c->model;
      a.input_shape = c->input_shape;
      a.classes = c->classes;
      a.shortcut = c->shortcut;
      if (!torch && (!arch->strict || !arch->torch_key.empty())) {
        throw ConfigError("summary: --strict and --torch-key go with a PyTorch file");
      }
      const Model m = torch           ? load_saved(*file, "", a).model
                      : file->empty() ? build(*c)
                                      : load_model(*file, /*compile=*/false);
      std::fputs(m.summary().c_str(), stdout);
    });
  }
  {
    auto c = std::make_shared<ModelChoice>();
    auto out = std::make_shared<std::string>();
    auto shapes = std::make_shared<bool>(false);
    auto dpi = std::make_shared<int>(96);
    CLI::App* cmd = app.add_subcommand("plot", "Draw the graph of a zoo model (PNG, SVG or DOT)");
    add_model_options(cmd, *c);
    cmd->add_option("-o,--output", *out, "output file: .png, .svg or .dot")->required();
    cmd->add_flag("--show-shapes", *shapes, "label every layer with its input and output shapes");
    cmd->add_option("--dpi", *dpi, "resolution of PNG output")->check(CLI::Range(24, 600));
    cmd->callback([=] {
      Model m = build(*c);
      plot_model(m, *out, {.show_shapes = *shapes, .dpi = *dpi});
      fmt::print("wrote {} ({} layers)\n", *out, m.layers().size());
    });
  }
  {
    CLI::App* cmd = app.add_subcommand("models", "List the zoo models");
    cmd->callback([] {
      for (const std::string& name : model_names()) {
        const Shape s = min_input_shape(name);
        fmt::print("{:<20} smallest input {}x{}\n", name, s[0], s[1]);
      }
    });
  }
}

}  // namespace resnet::cli
