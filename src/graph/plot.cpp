// plot_model through the Graphviz library (libgvc): DOT text -> dot layout -> PNG or SVG.
#include <fmt/format.h>

#include <filesystem>

#include "graph/graphviz.h"
#include "resnet/error.h"
#include "resnet/io.h"

namespace resnet {

void plot_model(const Model& model, const std::string& path, const PlotOptions& options) {
  if (options.dpi < 1 || options.dpi > 2400) {
    throw ConfigError(fmt::format("{}: plot dpi must be 1 to 2400, got {}", path, options.dpi));
  }
  const std::string ext = std::filesystem::path(path).extension().string();
  std::string dot = model.to_dot(options.show_shapes);
  if (options.dpi != 96) {
    dot.replace(dot.find("dpi=96"), 6, fmt::format("dpi={}", options.dpi));
  }
  if (ext == ".dot" || ext == ".gv") {
    write_file_atomic(path, dot);
    return;
  }
  if (ext != ".png" && ext != ".svg") {
    throw IoError(
        fmt::format("{}: unsupported plot format '{}' (use .png, .svg or .dot)", path, ext));
  }
  const std::string bytes = graphviz::render(dot, "dot", ext.c_str() + 1);
  if (bytes.empty()) {
    throw IoError(fmt::format("{}: Graphviz failed to lay out or render the graph of model '{}'",
                              path, model.name()));
  }
  write_file_atomic(path, bytes);
}

}  // namespace resnet
