// History::to_csv (keras CSVLogger layout), Python float repr, and the history plot files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "resnet/error.h"
#include "resnet/train.h"
#include "support/temp_dir.h"
#include "train/history_plot.h"
#include "train/py_format.h"

namespace resnet {
namespace {

namespace fs = std::filesystem;

using HistoryTempDir = testing::TempDir;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

History sample_history(int epochs, bool with_val = true) {
  History h;
  for (int e = 0; e < epochs; ++e) {
    h.epochs.push_back(e);
    const double t = e / std::max(1.0, epochs - 1.0);
    h.values["loss"].push_back(1.8 * std::exp(-2.5 * t) + 0.1);
    h.values["accuracy"].push_back(0.2 + 0.75 * (1 - std::exp(-3 * t)));
    if (with_val) {
      h.values["val_loss"].push_back(1.9 * std::exp(-2.0 * t) + 0.25 + 0.05 * std::sin(5 * t));
      h.values["val_accuracy"].push_back(0.18 + 0.65 * (1 - std::exp(-2.5 * t)));
    }
  }
  return h;
}

TEST(HistoryPythonRepr, MatchesPythonFloatRepr) {
  EXPECT_EQ(python_float_repr(0.1), "0.1");
  EXPECT_EQ(python_float_repr(1.0), "1.0");
  EXPECT_EQ(python_float_repr(-2.5), "-2.5");
  EXPECT_EQ(python_float_repr(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(python_float_repr(0.0001), "0.0001");
  EXPECT_EQ(python_float_repr(0.00001), "1e-05");
  EXPECT_EQ(python_float_repr(1.5e-7), "1.5e-07");
  EXPECT_EQ(python_float_repr(1e15), "1000000000000000.0");
  EXPECT_EQ(python_float_repr(1e16), "1e+16");
  EXPECT_EQ(python_float_repr(123456789012345678.0), "1.2345678901234568e+17");
  EXPECT_EQ(python_float_repr(0.0), "0.0");
  EXPECT_EQ(python_float_repr(std::nan("")), "nan");
  EXPECT_EQ(python_float_repr(-INFINITY), "-inf");
  // float32 values widened to double, as Keras logs them.
  EXPECT_EQ(python_float_repr(static_cast<double>(0.1f)), "0.10000000149011612");
}

TEST(HistoryCsv, HeaderIsEpochThenSortedKeysAndEpochsAreZeroBased) {
  History h;
  h.epochs = {0, 1};
  h.values["loss"] = {0.5, 0.25};
  h.values["accuracy"] = {0.75, 1.0};
  h.values["val_loss"] = {0.6, 0.4};
  h.values["val_accuracy"] = {0.7, 0.8};
  EXPECT_EQ(h.to_csv(),
            "epoch,accuracy,loss,val_accuracy,val_loss\n"
            "0,0.75,0.5,0.7,0.6\n"
            "1,1.0,0.25,0.8,0.4\n");
}

TEST(HistoryCsv, ResumedTrainingKeepsItsEpochNumbersAndShortColumnsPrintNA) {
  History h;
  h.epochs = {3, 4};
  h.values["loss"] = {1e-05, std::nan("")};
  h.values["lr"] = {0.001};
  EXPECT_EQ(h.to_csv(), "epoch,loss,lr\n3,1e-05,0.001\n4,nan,NA\n");
  EXPECT_EQ(History{}.to_csv(), "epoch\n");
}

TEST(HistoryPlot, WritesPngAndSvgAtomically) {
  HistoryTempDir dir;
  const History h = sample_history(12);
  const std::vector<std::string> paths = write_history_plots(h, dir.file("curves"));
  ASSERT_EQ(paths.size(), 2u);
  const std::string png = read_all(paths[0]);
  ASSERT_GT(png.size(), 1000u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  const std::string svg = read_all(paths[1]);
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  for (const char* text : {"Training history", "loss", "accuracy", "epoch", "validation"}) {
    EXPECT_NE(svg.find(text), std::string::npos) << text;
  }
  EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos);  // the dashed validation lines
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"curves.png", "curves.svg"}));
}

TEST(HistoryPlot, DotPositionsEveryNodeForTheNopLayout) {
  const std::string dot = history_plot_dot(sample_history(5));
  EXPECT_NE(dot.find("splines=line"), std::string::npos);
  EXPECT_NE(dot.find("style=dashed"), std::string::npos);
  // Every node statement carries a pinned position.
  std::istringstream lines(dot);
  std::string line;
  int nodes = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("  p", 0) == 0 && line.find(" -- ") == std::string::npos) {
      ++nodes;
      EXPECT_NE(line.find("!\""), std::string::npos) << line;
    }
  }
  EXPECT_GT(nodes, 40);
}

TEST(HistoryPlot, HandlesOneEpochNoValidationNoAccuracyAndNaN) {
  HistoryTempDir dir;
  History one = sample_history(1, false);
  EXPECT_NO_THROW(write_history_plot(one, dir.file("one.png")));
  History loss_only;
  loss_only.epochs = {0, 1, 2};
  loss_only.values["loss"] = {1.0, std::nan(""), 0.5};
  EXPECT_NO_THROW(write_history_plot(loss_only, dir.file("loss.svg")));
  EXPECT_EQ(read_all(dir.file("loss.svg")).find("accuracy"), std::string::npos);
  EXPECT_NO_THROW(write_history_plot(loss_only, dir.file("loss.dot")));
  EXPECT_NE(read_all(dir.file("loss.dot")).find("graph history"), std::string::npos);
}

TEST(HistoryPlot, RejectsEmptyHistoryUnknownExtensionAndMissingFolder) {
  HistoryTempDir dir;
  EXPECT_THROW(write_history_plot(History{}, dir.file("x.png")), ConfigError);
  EXPECT_THROW(write_history_plot(sample_history(3), dir.file("x.jpg")), ConfigError);
  EXPECT_THROW(write_history_plot(sample_history(3), dir.file("missing/x.png")), IoError);
  EXPECT_TRUE(dir.entries().empty());
}

}  // namespace
}  // namespace resnet
