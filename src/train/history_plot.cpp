// History plot: the figure is computed here (axes, ticks, curves, legend) and handed to Graphviz as
// DOT with every node at a fixed position (pos="x,y!", points, y up). The "nop" layout (neato -n)
// keeps the positions and draws straight edges (splines=line): consecutive points of a series are
// joined by edges, frame and grid are edges between invisible points, text is plaintext nodes.
#include "train/history_plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "graph/graphviz.h"
#include "resnet/error.h"
#include "resnet/io.h"

namespace resnet {

namespace {
// Geometry in points (1/72 inch).
constexpr double kPlotW = 380;  // plot area of one panel
constexpr double kPlotH = 250;
constexpr double kLeft = 72;     // room for the y tick labels
constexpr double kGap = 110;     // between the two panels
constexpr double kBottom = 100;  // y of the plot area's bottom edge
constexpr double kInset = 12;    // keeps the first and last epoch off the frame
constexpr double kTickLen = 4;
constexpr double kLegendLine = 32;  // length of the line sample in the legend
constexpr double kLegendGap = 24;   // between legend entries
constexpr int kMaxMarkers = 60;     // more epochs than this: lines only
constexpr const char* kTrainColor = "#1f77b4";
constexpr const char* kValColor = "#ff7f0e";
constexpr const char* kFont = "DejaVu Sans";

struct Series {
  std::string label;  // "training" or "validation"
  std::vector<double> x, y;
  bool validation = false;
};

struct Panel {
  std::string title;  // the key, e.g. "loss"
  std::vector<Series> series;
};

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string escape_html(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Rough width of text in DejaVu Sans (about half an em per character), for laying out the legend.
double text_width(const std::string& s, double font_size) {
  return 0.5 * font_size * static_cast<double>(s.size());
}

double nice_step(double range, int target_ticks) {
  const double raw = range / target_ticks;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  const double nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  return nice * mag;
}

struct Axis {
  double lo = 0, hi = 1, step = 1;
  int decimals = 0;
  std::vector<double> ticks;
};

Axis value_axis(double lo, double hi) {
  if (hi - lo < 1e-12 * std::max(1.0, std::abs(hi))) {
    const double pad = lo == 0 ? 0.1 : 0.1 * std::abs(lo);
    lo -= pad;
    hi += pad;
  } else {
    // 5% headroom keeps the extreme points off the frame; non-negative data keeps a floor of 0.
    const double pad = 0.05 * (hi - lo);
    lo = lo >= 0 ? std::max(0.0, lo - pad) : lo - pad;
    hi += pad;
  }
  Axis a;
  a.step = nice_step(hi - lo, 5);
  a.lo = std::floor(lo / a.step + 1e-9) * a.step;
  a.hi = std::ceil(hi / a.step - 1e-9) * a.step;
  a.decimals = std::max(0, static_cast<int>(-std::floor(std::log10(a.step) + 1e-9)));
  const int n = static_cast<int>(std::lround((a.hi - a.lo) / a.step));
  for (int i = 0; i <= n; ++i) a.ticks.push_back(a.lo + i * a.step);
  return a;
}

Axis epoch_axis(double first, double last) {
  Axis a;
  a.lo = first;
  a.hi = last;
  if (a.hi <= a.lo) {  // one epoch: centred, with only its own tick
    a.lo -= 0.5;
    a.hi += 0.5;
  }
  a.step = std::max(1.0, std::round(nice_step(a.hi - a.lo, 8)));
  for (double t = std::ceil(a.lo / a.step) * a.step; t <= a.hi + 1e-9; t += a.step) {
    a.ticks.push_back(t);
  }
  return a;
}

std::string tick_label(double v, const Axis& a) {
  if (std::abs(v) < a.step * 1e-9) v = 0;  // no "-0.00"
  if (a.decimals > 6 || std::abs(v) >= 1e6) return fmt::format("{:.3g}", v);
  return fmt::format("{:.{}f}", v, a.decimals);
}

class DotWriter {
 public:
  // An invisible point, for the ends of frame, grid and tick edges.
  std::string point(double x, double y) {
    const std::string name = fmt::format("p{}", next_++);
    body_ += fmt::format(
        "  {} [pos=\"{:.2f},{:.2f}!\", shape=point, width=0, height=0, "
        "style=invis];\n",
        name, x, y);
    return name;
  }
  // A visible dot of a series (or an invisible joint when `visible` is false).
  std::string marker(double x, double y, const char* color, bool visible) {
    const std::string name = fmt::format("p{}", next_++);
    body_ += fmt::format(
        "  {} [pos=\"{:.2f},{:.2f}!\", shape=point, width={}, height={}, "
        "color=\"{}\", fillcolor=\"{}\"{}];\n",
        name, x, y, visible ? 0.06 : 0, visible ? 0.06 : 0, color, color,
        visible ? "" : ", style=invis");
    return name;
  }
  void edge(const std::string& a, const std::string& b, const std::string& attrs) {
    body_ += fmt::format("  {} -- {} [{}];\n", a, b, attrs);
  }
  void line(double x1, double y1, double x2, double y2, const std::string& attrs) {
    const std::string a = point(x1, y1);
    const std::string b = point(x2, y2);
    edge(a, b, attrs);
  }
  // Text centred at (x, y).
  void text(double x, double y, const std::string& label, double font_size,
            const std::string& extra = "") {
    body_ += fmt::format(
        "  p{} [pos=\"{:.2f},{:.2f}!\", shape=plaintext, margin=0, width=0, "
        "height=0, fontsize={}, label=\"{}\"{}];\n",
        next_++, x, y, font_size, escape(label), extra);
  }
  // Bold text centred at (x, y), through an HTML-like label (SVG gets font-weight="bold").
  void bold_text(double x, double y, const std::string& label, double font_size) {
    body_ += fmt::format(
        "  p{} [pos=\"{:.2f},{:.2f}!\", shape=plaintext, margin=0, width=0, "
        "height=0, fontsize={}, label=<<B>{}</B>>];\n",
        next_++, x, y, font_size, escape_html(label));
  }
  // Text whose right end is at x: a wide fixed-size node with its line right-justified.
  void text_right(double x, double y, const std::string& label, double font_size) {
    const double box = text_box(label, font_size);
    justified(x - box / 2, box, y, escape(label) + "\\r", font_size);
  }
  // Text starting at x (left-justified in a wide fixed-size node).
  void text_left(double x, double y, const std::string& label, double font_size) {
    const double box = text_box(label, font_size);
    justified(x + box / 2, box, y, escape(label) + "\\l", font_size);
  }
  const std::string& body() const { return body_; }

 private:
  // A box surely wider than the text (so it never wraps or spills) but not so wide that it pushes
  // the drawing's bounding box out.
  static double text_box(const std::string& label, double font_size) {
    return 1.3 * text_width(label, font_size) + 10;
  }
  void justified(double cx, double box, double y, const std::string& label_dot, double font_size) {
    body_ += fmt::format(
        "  p{} [pos=\"{:.2f},{:.2f}!\", shape=plaintext, margin=0, fixedsize=true, "
        "width={:.4f}, height={:.4f}, fontsize={}, label=\"{}\"];\n",
        next_++, cx, y, box / 72, font_size * 1.4 / 72, font_size, label_dot);
  }

  std::string body_;
  int next_ = 0;
};

void draw_panel(DotWriter& dot, const Panel& panel, double x0, double y0) {
  // Ranges over the finite values of every series.
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (const Series& s : panel.series) {
    for (size_t i = 0; i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      xmin = std::min(xmin, s.x[i]);
      xmax = std::max(xmax, s.x[i]);
      ymin = std::min(ymin, s.y[i]);
      ymax = std::max(ymax, s.y[i]);
    }
  }
  if (!std::isfinite(ymin)) {  // nothing finite to draw: an empty frame with a note
    xmin = xmax = 1;
    ymin = 0;
    ymax = 1;
    dot.text(x0 + kPlotW / 2, y0 + kPlotH / 2, "no finite values", 11, ", fontcolor=\"#888888\"");
  }
  const Axis ax = epoch_axis(xmin, xmax);
  const Axis ay = value_axis(ymin, ymax);
  auto px = [&](double x) {
    return x0 + kInset + (x - ax.lo) / (ax.hi - ax.lo) * (kPlotW - 2 * kInset);
  };
  auto py = [&](double y) { return y0 + (y - ay.lo) / (ay.hi - ay.lo) * kPlotH; };

  // Grid and y ticks.
  for (double t : ay.ticks) {
    const double y = py(t);
    if (y > y0 + 0.5 && y < y0 + kPlotH - 0.5) {
      dot.line(x0, y, x0 + kPlotW, y, "color=\"#e0e0e0\", penwidth=0.8");
    }
    dot.line(x0 - kTickLen, y, x0, y, "color=black, penwidth=1");
    dot.text_right(x0 - kTickLen - 4, y, tick_label(t, ay), 10);
  }
  // x ticks.
  for (double t : ax.ticks) {
    const double x = px(t);
    dot.line(x, y0 - kTickLen, x, y0, "color=black, penwidth=1");
    dot.text(x, y0 - kTickLen - 10, tick_label(t, ax), 10);
  }
  // Frame.
  const std::string bl = dot.point(x0, y0), br = dot.point(x0 + kPlotW, y0);
  const std::string tl = dot.point(x0, y0 + kPlotH), tr = dot.point(x0 + kPlotW, y0 + kPlotH);
  const std::string frame = "color=black, penwidth=1";
  dot.edge(bl, br, frame);
  dot.edge(br, tr, frame);
  dot.edge(tr, tl, frame);
  dot.edge(tl, bl, frame);

  // Series: training first, validation on top.
  for (const Series& s : panel.series) {
    const char* color = s.validation ? kValColor : kTrainColor;
    const bool markers = s.x.size() <= static_cast<size_t>(kMaxMarkers);
    const std::string style =
        fmt::format("color=\"{}\", penwidth=2{}", color, s.validation ? ", style=dashed" : "");
    std::string prev;  // empty after a non-finite value: the line breaks there
    for (size_t i = 0; i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i])) {
        prev.clear();
        continue;
      }
      const std::string node = dot.marker(px(s.x[i]), py(s.y[i]), color, markers);
      if (!prev.empty()) dot.edge(prev, node, style);
      prev = node;
    }
  }

  // Title, x label and legend.
  dot.bold_text(x0 + kPlotW / 2, y0 + kPlotH + 16, panel.title, 13);
  dot.text(x0 + kPlotW / 2, y0 - kTickLen - 30, "epoch", 11);
  const double ly = y0 - kTickLen - 58;
  std::vector<std::string> labels;
  double legend_width = 0;
  for (const Series& s : panel.series) {
    labels.push_back(fmt::format("{} ({}{})", s.label, s.validation ? "val_" : "", panel.title));
    legend_width += kLegendLine + 6 + text_width(labels.back(), 10) + kLegendGap;
  }
  double lx = x0 + (kPlotW - (legend_width - kLegendGap)) / 2;
  for (size_t i = 0; i < panel.series.size(); ++i) {
    const bool validation = panel.series[i].validation;
    dot.line(lx, ly, lx + kLegendLine, ly,
             fmt::format("color=\"{}\", penwidth=2{}", validation ? kValColor : kTrainColor,
                         validation ? ", style=dashed" : ""));
    dot.text_left(lx + kLegendLine + 6, ly, labels[i], 10);
    lx += kLegendLine + 6 + text_width(labels[i], 10) + kLegendGap;
  }
}

bool is_val(const std::string& k) { return k.starts_with("val_"); }

std::vector<Panel> make_panels(const History& h) {
  if (h.epochs.empty() || h.values.empty()) {
    throw ConfigError("history plot: the history is empty (no epoch ran)");
  }
  // Panel keys: "loss" (else the first training key), then an accuracy key.
  std::vector<std::string> keys;
  if (h.values.count("loss")) {
    keys.push_back("loss");
  } else {
    for (const auto& [k, v] : h.values) {
      if (!is_val(k)) {
        keys.push_back(k);
        break;
      }
    }
  }
  std::string acc;
  for (const char* k : {"accuracy", "acc"}) {
    if (acc.empty() && h.values.count(k)) acc = k;
  }
  for (const auto& [k, v] : h.values) {
    if (acc.empty() && !is_val(k) && (k.ends_with("accuracy") || k.ends_with("acc"))) acc = k;
  }
  if (!acc.empty() && (keys.empty() || keys[0] != acc)) keys.push_back(acc);
  if (keys.empty()) throw ConfigError("history plot: the history has only validation values");

  std::vector<Panel> panels;
  for (const std::string& key : keys) {
    Panel p{.title = key};
    for (bool validation : {false, true}) {
      const auto it = h.values.find(validation ? "val_" + key : key);
      if (it == h.values.end()) continue;
      Series s{.label = validation ? "validation" : "training", .validation = validation};
      for (size_t i = 0; i < it->second.size() && i < h.epochs.size(); ++i) {
        s.x.push_back(h.epochs[i] + 1.0);
        s.y.push_back(it->second[i]);
      }
      p.series.push_back(std::move(s));
    }
    panels.push_back(std::move(p));
  }
  return panels;
}

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

// Renders DOT text with the "nop" layout to `format` bytes.
std::string render(const std::string& dot, const std::string& format, const std::string& path) {
  std::string bytes = graphviz::render(dot, "nop", format.c_str());
  if (bytes.empty()) {
    throw IoError(fmt::format("history plot {}: Graphviz failed to render {}", path, format));
  }
  return bytes;
}
}  // namespace

std::string history_plot_dot(const History& h) {
  const std::vector<Panel> panels = make_panels(h);
  const double width = kLeft + panels.size() * kPlotW + (panels.size() - 1) * kGap + 30;
  const double height = kBottom + kPlotH + 70;
  DotWriter dot;
  // Fixed corners so the drawing keeps its margins whatever the content.
  dot.point(0, 0);
  dot.point(width, height);
  for (size_t i = 0; i < panels.size(); ++i) {
    draw_panel(dot, panels[i], kLeft + i * (kPlotW + kGap), kBottom);
  }
  const size_t n = h.epochs.size();
  dot.bold_text(width / 2, height - 20,
                fmt::format("Training history ({} epoch{})", n, n == 1 ? "" : "s"), 16);
  return fmt::format(
      "graph history {{\n"
      "  graph [splines=line, outputorder=edgesfirst, bgcolor=white, pad=0.1];\n"
      "  node [fontname=\"{}\", label=\"\"];\n"
      "  edge [headclip=false, tailclip=false];\n"
      "{}}}\n",
      kFont, dot.body());
}

void write_history_plot(const History& h, const std::string& path) {
  const std::string ext = lower_extension(path);
  if (ext != ".png" && ext != ".svg" && ext != ".dot" && ext != ".gv") {
    throw ConfigError(fmt::format(
        "history plot {}: unsupported extension '{}' (expected .png, .svg, .dot or .gv)", path,
        ext));
  }
  const std::string dot = history_plot_dot(h);
  if (ext == ".dot" || ext == ".gv") {
    write_file_atomic(path, dot);
    return;
  }
  write_file_atomic(path, render(dot, ext.substr(1), path));
}

std::vector<std::string> write_history_plots(const History& h, const std::string& stem) {
  std::vector<std::string> paths = {stem + ".png", stem + ".svg"};
  for (const std::string& p : paths) write_history_plot(h, p);
  return paths;
}

}  // namespace resnet
