// Internal: DOT text rendered to PNG/SVG bytes through the Graphviz library (libgvc), for
// plot_model and the training-history plots.
#pragma once

#include <string>

namespace resnet::graphviz {

// Lays out `dot` with `layout` ("dot", or "nop" for positions given in the text) and renders it
// in `format` ("png", "svg"). Returns empty bytes when Graphviz cannot parse, lay out or render
// the graph (the caller names the file in its error). Thread-safe (one render at a time).
std::string render(const std::string& dot, const char* layout, const char* format);

}  // namespace resnet::graphviz
