// plot_model through the Graphviz library (libgvc): DOT text -> dot layout -> PNG or SVG.
#include <fmt/format.h>
#include <graphviz/cgraph.h>
#include <graphviz/gvc.h>

#include <filesystem>

#include "resnet/error.h"
#include "resnet/io.h"

namespace resnet {

void plot_model(const Model& model, const std::string& path, bool show_shapes, int dpi) {
  const std::string ext = std::filesystem::path(path).extension().string();
  std::string dot = model.to_dot(show_shapes);
  if (dpi != 96) {
    dot.replace(dot.find("dpi=96"), 6, fmt::format("dpi={}", dpi));
  }
  if (ext == ".dot" || ext == ".gv") {
    write_file_atomic(path, dot);
    return;
  }
  if (ext != ".png" && ext != ".svg") {
    throw IoError(
        fmt::format("{}: unsupported plot format '{}' (use .png, .svg or .dot)", path, ext));
  }
  GVC_t* gvc = gvContext();
  Agraph_t* graph = agmemread(dot.c_str());
  if (graph == nullptr) {
    gvFreeContext(gvc);
    throw IoError(
        fmt::format("{}: Graphviz could not parse the graph of model '{}'", path, model.name()));
  }
  // Render into memory (gvRenderFilename may exit() when it cannot open the file), then write the
  // bytes atomically.
  char* data = nullptr;
  unsigned int length = 0;
  int rc = gvLayout(gvc, graph, "dot");
  if (rc == 0) rc = gvRenderData(gvc, graph, ext.substr(1).c_str(), &data, &length);
  std::string bytes = (rc == 0 && data != nullptr) ? std::string(data, length) : std::string();
  if (data != nullptr) gvFreeRenderData(data);
  gvFreeLayout(gvc, graph);
  agclose(graph);
  gvFreeContext(gvc);
  if (rc != 0 || bytes.empty()) {
    throw IoError(fmt::format("{}: Graphviz failed to render the plot", path));
  }
  write_file_atomic(path, bytes);
}

}  // namespace resnet
