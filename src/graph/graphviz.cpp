#include "graph/graphviz.h"

#include <graphviz/cgraph.h>
#include <graphviz/gvc.h>

#include <mutex>

namespace resnet::graphviz {

std::string render(const std::string& dot, const char* layout, const char* format) {
  // One Graphviz context for the process, never freed: Graphviz 2.42 frees its font cache with
  // the context while the pango plugin keeps a pointer into it, so a second context reads freed
  // memory while measuring text (AddressSanitizer: heap-use-after-free in textspan_size).
  // Graphviz is not thread-safe, hence the lock.
  static std::mutex mutex;
  static GVC_t* const gvc = gvContext();
  std::lock_guard<std::mutex> lock(mutex);
  Agraph_t* graph = agmemread(dot.c_str());
  if (graph == nullptr) return {};
  // Into memory rather than with gvRenderFilename, which exits the process when it cannot open
  // the output file: the caller writes the bytes atomically.
  char* data = nullptr;
  unsigned int length = 0;
  int rc = gvLayout(gvc, graph, layout);
  if (rc == 0) rc = gvRenderData(gvc, graph, format, &data, &length);
  std::string bytes;
  if (rc == 0 && data != nullptr) bytes.assign(data, length);
  if (data != nullptr) gvFreeRenderData(data);
  gvFreeLayout(gvc, graph);
  agclose(graph);
  return bytes;
}

}  // namespace resnet::graphviz
