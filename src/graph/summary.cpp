// Model::summary(): the table of classic tf.keras (2.0-2.6) print_summary, and Model::to_dot().
#include <fmt/format.h>

#include <sstream>

#include "resnet/model.h"

namespace resnet {

namespace {
// Keras's print_row: each field is appended after replacing the previous column's last character
// by a space, then cut and padded to the column's end position.
std::string row(const std::vector<std::string>& fields, const std::vector<size_t>& positions) {
  std::string line;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0 && !line.empty()) line.back() = ' ';
    line += fields[i];
    if (line.size() > positions[i]) line.resize(positions[i]);
    line.append(positions[i] - line.size(), ' ');
  }
  // Keras prints the trailing padding too; strip it so golden files stay readable.
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line + "\n";
}

std::string with_commas(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

std::string dot_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}
}  // namespace

std::string Model::summary() const {
  // A chain (every layer has at most one input and feeds at most one layer) prints in Keras's
  // Sequential-like form without the "Connected to" column.
  bool sequential_like = output_steps_.size() == 1 && input_steps_.size() == 1;
  for (const Step& s : steps_) {
    if (s.inputs.size() > 1 || s.consumers > 1) sequential_like = false;
  }
  const size_t width = sequential_like ? 65 : 98;
  std::vector<size_t> pos;
  std::vector<std::string> header;
  if (sequential_like) {
    pos = {29, 55, 65};
    header = {"Layer (type)", "Output Shape", "Param #"};
  } else {
    pos = {32, 53, 65, 98};
    header = {"Layer (type)", "Output Shape", "Param #", "Connected to"};
  }
  std::ostringstream os;
  os << "Model: \"" << name_ << "\"\n";
  os << std::string(width, '_') << "\n";
  os << row(header, pos);
  os << std::string(width, '=') << "\n";
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Layer& l = *steps_[i].layer;
    std::string shape = shapes_[i].keras_str();
    if (l.class_name() == "InputLayer") shape = "[" + shape + "]";
    std::vector<std::string> fields = {l.name() + " (" + l.class_name() + ")", shape,
                                       std::to_string(l.count_params())};
    std::vector<std::string> connections;
    for (int p : steps_[i].inputs) connections.push_back(steps_[p].layer->name() + "[0][0]");
    if (!sequential_like) fields.push_back(connections.empty() ? "" : connections[0]);
    os << row(fields, pos);
    for (size_t c = 1; !sequential_like && c < connections.size(); ++c) {
      os << row({"", "", "", connections[c]}, pos);
    }
    os << std::string(width, i + 1 == steps_.size() ? '=' : '_') << "\n";
  }
  os << "Total params: " << with_commas(count_params()) << "\n";
  os << "Trainable params: " << with_commas(count_trainable_params()) << "\n";
  os << "Non-trainable params: " << with_commas(count_non_trainable_params()) << "\n";
  os << std::string(width, '_') << "\n";
  return os.str();
}

std::string Model::to_dot(bool show_shapes) const {
  std::ostringstream os;
  os << "digraph \"" << dot_escape(name_) << "\" {\n";
  os << "  graph [rankdir=TB, dpi=96, label=\"" << dot_escape(name_) << "\", labelloc=t];\n";
  os << "  node [shape=record, fontname=\"Helvetica\", fontsize=11, style=filled, "
        "fillcolor=\"#eef3fb\"];\n";
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Layer& l = *steps_[i].layer;
    std::string label = dot_escape(l.name()) + ": " + l.class_name();
    if (show_shapes) {
      std::string in;
      if (steps_[i].inputs.empty()) {
        in = shapes_[i].keras_str();
      } else {
        std::vector<std::string> ins;
        for (int p : steps_[i].inputs) ins.push_back(shapes_[p].keras_str());
        in = fmt::format("{}", fmt::join(ins, ", "));
      }
      // Record labels treat braces, pipes and angle brackets as structure; shapes use parens only.
      label = fmt::format("{{{}|{{input:|output:}}|{{{}|{}}}}}", label, in, shapes_[i].keras_str());
    }
    os << "  n" << i << " [label=\"" << label << "\"];\n";
  }
  for (size_t i = 0; i < steps_.size(); ++i) {
    for (int p : steps_[i].inputs) os << "  n" << p << " -> n" << i << ";\n";
  }
  os << "}\n";
  return os.str();
}

}  // namespace resnet
