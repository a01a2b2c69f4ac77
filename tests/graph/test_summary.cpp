// summary() against Keras's format, and plot_model output files.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "resnet/io.h"
#include "resnet/model.h"
#include "resnet/models.h"
#include "support/temp_dir.h"

namespace resnet {
namespace {

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Minimal XML well-formedness check: every element closed in order, attributes quoted,
// comments, processing instructions and the DOCTYPE skipped. Returns an error or "".
std::string xml_error(const std::string& text) {
  std::vector<std::string> open;
  size_t i = 0;
  while ((i = text.find('<', i)) != std::string::npos) {
    if (text.compare(i, 4, "<!--") == 0) {
      const size_t e = text.find("-->", i);
      if (e == std::string::npos) return "unterminated comment";
      i = e + 3;
      continue;
    }
    const size_t e = text.find('>', i);
    if (e == std::string::npos) return "unterminated tag at " + std::to_string(i);
    const std::string tag = text.substr(i + 1, e - i - 1);
    i = e + 1;
    if (tag.empty()) return "empty tag";
    if (tag[0] == '?' || tag[0] == '!') continue;
    if (tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (open.empty() || open.back() != name) return "unexpected </" + name + ">";
      open.pop_back();
      continue;
    }
    if (std::count(tag.begin(), tag.end(), '"') % 2 != 0)
      return "unbalanced quotes in <" + tag + ">";
    if (tag.back() == '/') continue;
    open.push_back(tag.substr(0, tag.find_first_of(" \t\n")));
  }
  return open.empty() ? "" : "unclosed <" + open.back() + ">";
}

Model small_model() {
  reset_name_counters();
  SymTensor in = Input({8, 8, 3});
  SymTensor x = Conv2D({.filters = 4, .padding = Padding::Same})(in);
  x = BatchNormalization()(x);
  SymTensor s = Conv2D({.filters = 4, .kernel = {1, 1}})(in);
  x = Add()({x, s});
  x = Activation("relu")(x);
  x = GlobalAveragePooling2D()(x);
  x = Dense({.units = 3, .activation = "softmax"})(x);
  return Model(in, x, "small");
}

TEST(Summary, SmallModelMatchesTheGoldenFile) {
  // Golden written by tests/reference/make_summary_golden.py from Keras's print_row rules.
  const std::string golden =
      read_text(std::string(RESNET_SOURCE_DIR) + "/tests/graph/golden/small_summary.txt");
  ASSERT_FALSE(golden.empty());
  EXPECT_EQ(small_model().summary(), golden);
}

TEST(Summary, TutorialResNet50HeaderRowsAndTotals) {
  reset_name_counters();
  Model m = resnet50_tutorial();
  const std::string s = m.summary();
  const std::string rule(98, '_');
  const std::string expected_head =
      "Model: \"ResNet50\"\n" + rule + "\n" +
      "Layer (type)                    Output Shape         Param #     Connected to\n" +
      std::string(98, '=') + "\n" + "input_1 (InputLayer)            [(None, 64, 64, 3)]  0\n" +
      rule + "\n" +
      "zero_padding2d (ZeroPadding2D)  (None, 70, 70, 3)    0           input_1[0][0]\n" + rule +
      "\n" +
      "conv1 (Conv2D)                  (None, 32, 32, 64)   9472        zero_padding2d[0][0]\n" +
      rule + "\n" +
      "bn_conv1 (BatchNormalization)   (None, 32, 32, 64)   256         conv1[0][0]\n" + rule +
      "\n" + "activation (Activation)         (None, 32, 32, 64)   0           bn_conv1[0][0]\n" +
      rule + "\n" +
      "max_pooling2d (MaxPooling2D)    (None, 15, 15, 64)   0           activation[0][0]\n" + rule +
      "\n" +
      "res2a_branch2a (Conv2D)         (None, 15, 15, 64)   4160        max_pooling2d[0][0]\n" +
      rule + "\n" +
      "bn2a_branch2a (BatchNormalizati (None, 15, 15, 64)   256         res2a_branch2a[0][0]\n";
  EXPECT_EQ(s.substr(0, expected_head.size()), expected_head);
  EXPECT_NE(s.find("add (Add)                       (None, 15, 15, 256)  0           "
                   "bn2a_branch2c[0][0]\n"
                   "                                                                 "
                   "bn2a_branch1[0][0]\n"),
            std::string::npos);
  EXPECT_NE(s.find("fc6 (Dense)                     (None, 6)            12294       "
                   "flatten[0][0]\n"),
            std::string::npos);
  const std::string tail = std::string(98, '=') + "\n" +
                           "Total params: 23,600,006\n"
                           "Trainable params: 23,546,886\n"
                           "Non-trainable params: 53,120\n" +
                           rule + "\n";
  ASSERT_GE(s.size(), tail.size());
  EXPECT_EQ(s.substr(s.size() - tail.size()), tail);
  EXPECT_EQ(m.layers().size(), 177u);
}

TEST(Summary, ChainUsesTheSequentialForm) {
  reset_name_counters();
  SymTensor in = Input({4});
  SymTensor x = Dense({.units = 2})(in);
  Model m(in, x, "chain");
  const std::string expected =
      "Model: \"chain\"\n" + std::string(65, '_') + "\n" +
      "Layer (type)                 Output Shape              Param #\n" + std::string(65, '=') +
      "\n" + "input_1 (InputLayer)         [(None, 4)]               0\n" + std::string(65, '_') +
      "\n" + "dense (Dense)                (None, 2)                 10\n" + std::string(65, '=') +
      "\n" + "Total params: 10\nTrainable params: 10\nNon-trainable params: 0\n" +
      std::string(65, '_') + "\n";
  EXPECT_EQ(m.summary(), expected);
}

TEST(Plot, PngSvgAndDotFilesNameEveryLayer) {
  Model m = small_model();
  const resnet::testing::TempDir tmp("resnet_plot");
  const auto& dir = tmp.path();
  const std::string png = (dir / "m.png").string(), svg = (dir / "m.svg").string(),
                    dot = (dir / "m.dot").string();
  plot_model(m, png, {.show_shapes = true});
  plot_model(m, svg, {.show_shapes = true});
  plot_model(m, dot);
  const std::string png_bytes = read_text(png);
  ASSERT_GT(png_bytes.size(), 8u);
  EXPECT_EQ(png_bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  const std::string svg_text = read_text(svg);
  EXPECT_NE(svg_text.find("<svg"), std::string::npos);
  EXPECT_EQ(xml_error(svg_text), "");
  EXPECT_NE(xml_error("<svg><g></svg>"), "");  // the checker itself catches a broken document
  EXPECT_NE(svg_text.find("(None, 8, 8, 4)"), std::string::npos);
  const std::string dot_text = read_text(dot);
  for (const auto& l : m.layers()) {
    EXPECT_NE(svg_text.find(l->name() + ": " + l->class_name()), std::string::npos) << l->name();
    EXPECT_NE(dot_text.find(l->name() + ": " + l->class_name()), std::string::npos) << l->name();
  }
  EXPECT_NE(dot_text.find("n0 -> n1"), std::string::npos);
  EXPECT_THROW(plot_model(m, (dir / "m.bmp").string()), IoError);
  EXPECT_THROW(plot_model(m, "/nonexistent-dir/m.png"), IoError);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace resnet
