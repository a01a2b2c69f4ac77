// `resnet summary`, `resnet plot`, `resnet models`: inspect the zoo without computing anything.
#include <fmt/format.h>

#include <cstdio>
#include <sstream>

#include "cli/commands.h"
#include "resnet/error.h"
#include "resnet/io.h"
#include "resnet/models.h"

namespace resnet::cli {

Model::Recompute recompute_mode(bool full, bool none) {
  if (full && none) throw ConfigError("--recompute and --no-recompute exclude each other");
  return full ? Model::Recompute::Full : none ? Model::Recompute::Off : Model::Recompute::Pointwise;
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
};

void add_model_options(CLI::App* cmd, ModelChoice& c) {
  cmd->add_option("--model", c.model, "zoo model name (see `resnet models`)")->required();
  cmd->add_option("--input-shape", c.input_shape, "input shape H,W,C (default: the model's)");
  cmd->add_option("--classes", c.classes, "number of classes (default: the model's)")
      ->check(CLI::PositiveNumber);
}

Model build(const ModelChoice& c) {
  reset_name_counters();
  return build_model(c.model, parse_shape(c.input_shape), c.classes);
}
}  // namespace

void add_model_commands(CLI::App& app) {
  {
    auto c = std::make_shared<ModelChoice>();
    auto file = std::make_shared<std::string>();
    CLI::App* cmd = app.add_subcommand(
        "summary", "Print the Keras-style summary of a zoo model or of a Keras .h5 model file");
    cmd->add_option("file", *file, "Keras .h5 model file (instead of --model)");
    cmd->add_option("--model", c->model, "zoo model name (see `resnet models`)");
    cmd->add_option("--input-shape", c->input_shape, "input shape H,W,C (default: the model's)");
    cmd->add_option("--classes", c->classes, "number of classes (default: the model's)")
        ->check(CLI::PositiveNumber);
    cmd->callback([c, file] {
      if (file->empty() == c->model.empty()) {
        throw ConfigError("summary: give either a model file or --model NAME");
      }
      const Model m = file->empty() ? build(*c) : load_model(*file, /*compile=*/false);
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
