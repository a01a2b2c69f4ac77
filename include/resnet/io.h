// Files: model plots (and, later, Keras .h5 models and ONNX).
#pragma once

#include <string>

#include "resnet/model.h"

namespace resnet {

// keras.utils.plot_model: renders the graph with Graphviz's dot layout. The format follows the
// extension of `path`: .png, .svg or .dot (the DOT text itself). Written atomically (a temporary
// file in the same folder, then a rename). Throws IoError naming the file on failure.
void plot_model(const Model& model, const std::string& path, bool show_shapes = false,
                int dpi = 96);

// Writes `data` to `path` atomically: a temporary file in the same folder, flushed, then renamed
// over `path`, so an interrupted write never destroys the previous file.
void write_file_atomic(const std::string& path, const std::string& data);

}  // namespace resnet
