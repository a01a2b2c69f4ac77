// Training curves of a History, drawn through Graphviz (libgvc) with fixed node positions.
#pragma once

#include <string>
#include <vector>

#include "resnet/train.h"

namespace resnet {

// Two panels side by side: the loss, and an accuracy key ("accuracy", "acc" or another
// *accuracy/*acc key; the panel is left out when there is none). Training values are solid blue
// lines, validation ("val_" keys) dashed orange, per epoch (1-based on the x axis), with tick
// labels, a legend under each panel and a title. The format follows the extension of `path`:
// .png, .svg, or .dot/.gv (the DOT text). Written atomically (a temporary file in the same folder,
// then a rename). Throws ConfigError for an empty history or another extension, IoError when the
// file cannot be written.
void write_history_plot(const History& h, const std::string& path);

// Writes `stem` + ".png" and `stem` + ".svg"; returns the two paths.
std::vector<std::string> write_history_plots(const History& h, const std::string& stem);

// The DOT text of the plot (every node positioned, for Graphviz's "nop" layout).
std::string history_plot_dot(const History& h);

}  // namespace resnet
