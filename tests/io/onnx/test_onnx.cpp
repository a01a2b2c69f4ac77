// ONNX export and import: onnx.checker, ONNX Runtime (Node), a PyTorch-exported torchvision
// ResNet-18, round trips and corrupt files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "resnet/io.h"
#include "resnet/layers.h"
#include "resnet/model.h"
#include "resnet/models.h"
#include "resnet/onnx.h"
#include "resnet/optim.h"
#include "support/allclose.h"
#include "support/process.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace resnet;
using resnet::testing::AllClose;
using resnet::testing::random_tensor;

namespace {

const char* kPython = "/usr/bin/python3";

using resnet::testing::TempDir;

// Runs a shell command; returns its exit status and stdout+stderr.
int run(const std::string& cmd, std::string* output = nullptr) {
  const resnet::testing::CommandResult c = resnet::testing::run_command(cmd + " 2>&1");
  if (output != nullptr) *output = c.out;
  return c.code;
}

bool python_has(const std::string& modules) {
  return run(std::string(kPython) + " -c 'import " + modules + "'") == 0;
}

std::string ort_module() {
  return std::string(RESNET_SOURCE_DIR) + "/.deps/ort/node_modules/onnxruntime-node";
}
bool have_ort() { return run("node --version") == 0 && fs::exists(ort_module()); }

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void write_f32(const std::string& path, const Tensor& t) {
  const Tensor p = t.to_f32();
  write_file(path, std::string(reinterpret_cast<const char*>(p.f32()), p.numel() * sizeof(float)));
}
Tensor read_f32(const std::string& path, const Shape& shape) {
  const std::string bytes = read_file(path);
  Tensor t(shape);
  EXPECT_EQ(bytes.size(), static_cast<size_t>(t.numel()) * sizeof(float)) << path;
  if (bytes.size() == static_cast<size_t>(t.numel()) * sizeof(float)) {
    std::memcpy(t.f32(), bytes.data(), bytes.size());
  }
  return t;
}

// (N, H, W, C) <-> (N, C, H, W).
Tensor nhwc_to_nchw(const Tensor& x) {
  const int64_t n = x.shape()[0], h = x.shape()[1], w = x.shape()[2], c = x.shape()[3];
  Tensor y(Shape{n, c, h, w});
  const float* s = x.f32();
  float* d = y.f32();
  for (int64_t a = 0; a < n; ++a)
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < w; ++j)
        for (int64_t k = 0; k < c; ++k)
          d[((a * c + k) * h + i) * w + j] = s[((a * h + i) * w + j) * c + k];
  return y;
}
Tensor nchw_to_nhwc(const Tensor& x) {
  const int64_t n = x.shape()[0], c = x.shape()[1], h = x.shape()[2], w = x.shape()[3];
  Tensor y(Shape{n, h, w, c});
  const float* s = x.f32();
  float* d = y.f32();
  for (int64_t a = 0; a < n; ++a)
    for (int64_t k = 0; k < c; ++k)
      for (int64_t i = 0; i < h; ++i)
        for (int64_t j = 0; j < w; ++j)
          d[((a * h + i) * w + j) * c + k] = s[((a * c + k) * h + i) * w + j];
  return y;
}

// Non-trivial BatchNormalization parameters and statistics (a fresh model has 1, 0, 0, 1).
void randomize_bn(Model& m, uint64_t seed) {
  for (const auto& l : m.layers()) {
    if (l->class_name() != "BatchNormalization") continue;
    const Shape s = l->param("gamma").value.shape();
    l->param("gamma").value.copy_from(random_tensor(s, seed++, 0.5f, 1.5f));
    l->param("beta").value.copy_from(random_tensor(s, seed++, -0.2f, 0.2f));
    l->param("moving_mean").value.copy_from(random_tensor(s, seed++, -0.2f, 0.2f));
    l->param("moving_variance").value.copy_from(random_tensor(s, seed++, 0.5f, 1.5f));
  }
}

// onnx.checker with full_check (which includes strict shape inference).
void expect_onnx_checker_passes(const std::string& path) {
  std::string out;
  const int rc = run(std::string(kPython) +
                         " -c 'import onnx, sys; m = onnx.load(sys.argv[1]); "
                         "onnx.checker.check_model(m, full_check=True); "
                         "print(\"ok\", m.opset_import[0].version)' " +
                         path,
                     &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("ok 13"), std::string::npos) << out;
}

// ONNX Runtime's output for an NHWC input (converted to NCHW for the file).
Tensor run_ort(const TempDir& dir, const std::string& model, const Tensor& x_nhwc,
               const Shape& out_shape) {
  const Tensor x = nhwc_to_nchw(x_nhwc);
  write_f32(dir.file("ort_in.bin"), x);
  const auto& d = x.shape();
  std::string out;
  const std::string cmd = "node " + std::string(RESNET_SOURCE_DIR) + "/tests/io/onnx/ort_run.js " +
                          ort_module() + " " + model + " " + dir.file("ort_in.bin") + " " +
                          std::to_string(d[0]) + "," + std::to_string(d[1]) + "," +
                          std::to_string(d[2]) + "," + std::to_string(d[3]) + " " +
                          dir.file("ort_out.bin");
  const int rc = run(cmd, &out);
  EXPECT_EQ(rc, 0) << cmd << "\n" << out;
  EXPECT_NE(out.find("\"inputs\":[\"input\"]"), std::string::npos) << out;
  EXPECT_NE(out.find("\"outputs\":[\"output\"]"), std::string::npos) << out;
  return read_f32(dir.file("ort_out.bin"), out_shape);
}

// Export, then: checker, ONNX Runtime against predict(), and import_onnx against predict().
void check_export(Model& m, const OnnxExportOptions& o, const std::string& what) {
  SCOPED_TRACE(what);
  TempDir dir;
  const std::string path = dir.file("model.onnx");
  export_onnx(m, path, o);
  const Shape in = m.input_shapes()[0];
  const Tensor x = random_tensor(in.prepend(2), 7, 0.0f, 1.0f);
  const Tensor expected = m.predict(x);

  // Round trip: the imported model (NHWC input again) gives the same outputs.
  Model back = import_onnx(path);
  EXPECT_EQ(back.input_shapes()[0], in);
  const Tensor round_trip = back.predict(x);
  std::printf("%s: round trip max rel error %.3g\n", what.c_str(),
              resnet::testing::max_rel_error(round_trip, expected));
  EXPECT_TRUE(AllClose(round_trip, expected, 1e-5, what + " round trip"));

  if (python_has("onnx")) {
    expect_onnx_checker_passes(path);
  } else {
    std::fprintf(stderr, "note: python3-onnx is not installed: onnx.checker not run\n");
  }
  if (have_ort()) {
    const Tensor ort = run_ort(dir, path, x, expected.shape());
    std::printf("%s: ONNX Runtime max rel error %.3g\n", what.c_str(),
                resnet::testing::max_rel_error(ort, expected));
    EXPECT_TRUE(AllClose(ort, expected, 1e-4, what + " ONNX Runtime"));
  } else {
    std::fprintf(stderr,
                 "note: node or onnxruntime-node (scripts/setup.sh) is missing: "
                 "ONNX Runtime check not run\n");
  }
}

bool skip_without_onnx() { return !onnx_available(); }

}  // namespace

#define REQUIRE_ONNX()                          \
  if (skip_without_onnx())                      \
  GTEST_SKIP() << "built without ONNX support " \
                  "(libonnx-dev, libprotobuf-dev absent)"

TEST(OnnxExport, TutorialResNet50) {
  REQUIRE_ONNX();
  if (!python_has("onnx")) GTEST_SKIP() << "python3-onnx is not installed (scripts/setup.sh)";
  if (!have_ort()) GTEST_SKIP() << "node / onnxruntime-node missing (scripts/setup.sh)";
  set_global_seed(1);
  reset_name_counters();
  Model m = resnet50_tutorial({64, 64, 3}, 6);
  randomize_bn(m, 100);
  check_export(m, {}, "resnet50_tutorial");
}

TEST(OnnxExport, CifarResNet20PlainAndFoldedBn) {
  REQUIRE_ONNX();
  if (!python_has("onnx")) GTEST_SKIP() << "python3-onnx is not installed (scripts/setup.sh)";
  if (!have_ort()) GTEST_SKIP() << "node / onnxruntime-node missing (scripts/setup.sh)";
  set_global_seed(2);
  reset_name_counters();
  Model m = cifar_resnet(20, {32, 32, 3}, 10);
  randomize_bn(m, 200);
  // A small classifier keeps the softmax away from saturation (else every output is 0 or 1).
  Param& k = m.layer("predictions").param("kernel");
  k.value.copy_from(random_tensor(k.value.shape(), 201, -0.002f, 0.002f));
  check_export(m, {}, "resnet20");
  check_export(m, {.fold_bn = true}, "resnet20 fold_bn");
}

// Every layer type, the TensorFlow 'same' paddings of stride-2 windows, a Flatten of a 3x3 map
// feeding Dense (kernel rows permuted to CHW order), BN after Dense, a three-way Add.
TEST(OnnxExport, EveryLayerType) {
  REQUIRE_ONNX();
  if (!python_has("onnx")) GTEST_SKIP() << "python3-onnx is not installed (scripts/setup.sh)";
  if (!have_ort()) GTEST_SKIP() << "node / onnxruntime-node missing (scripts/setup.sh)";
  set_global_seed(3);
  reset_name_counters();
  auto in = Input({13, 11, 3});
  auto x = ZeroPadding2D({.padding = {1, 2, 0, 1}})(in);
  x = Conv2D({.filters = 8, .kernel = {3, 3}, .strides = {2, 2}, .padding = Padding::Same})(x);
  x = BatchNormalization()(x);
  x = ReLU()(x);
  auto a = Conv2D({.filters = 8,
                   .kernel = {3, 3},
                   .padding = Padding::Same,
                   .dilation = {2, 2},
                   .activation = "tanh"})(x);
  a = LeakyReLU({.negative_slope = 0.2})(a);
  auto b = Conv2D({.filters = 8, .kernel = {1, 1}, .activation = "sigmoid"})(x);
  x = Add()({x, a, b});
  x = MaxPooling2D({.pool_size = {3, 3}, .strides = {2, 2}, .padding = Padding::Same})(x);
  auto gap = GlobalAveragePooling2D()(x);
  auto gmp = GlobalMaxPooling2D()(x);
  x = AveragePooling2D({.pool_size = {2, 2}, .strides = {1, 1}, .padding = Padding::Same})(x);
  x = Activation("relu")(x);
  x = Flatten()(x);
  x = Dropout({.rate = 0.3})(x);
  x = Dense({.units = 8, .activation = "relu"})(x);
  x = Add()({x, gap, gmp});
  x = BatchNormalization()(x);
  x = Dense({.units = 5, .activation = "softmax"})(x);
  Model m(in, x, "every_layer");
  randomize_bn(m, 300);
  check_export(m, {}, "every layer");
  check_export(m, {.fold_bn = true}, "every layer fold_bn");
}

// The exporter folds batch norm with the same function as the inference plan: a folded export
// imported back gives exactly what the model gives in-process. (Each convolution ends in a ReLU,
// so the imported ones run on the fused path too: a lone convolution runs on the plain one, whose
// rounding differs.)
TEST(OnnxExport, FoldedBatchNormEqualsTheInProcessFold) {
  REQUIRE_ONNX();
  set_global_seed(8);
  reset_name_counters();
  auto in = Input({9, 9, 5});
  auto x = Conv2D({.filters = 7, .kernel = {3, 3}, .padding = Padding::Same})(in);
  x = BatchNormalization()(x);
  x = ReLU()(x);
  x = Conv2D({.filters = 6, .kernel = {1, 1}, .use_bias = false})(x);
  x = BatchNormalization({.epsilon = 1.001e-5})(x);
  x = Activation("relu")(x);
  Model m(in, x, "conv_bn");
  randomize_bn(m, 500);
  TempDir dir;
  export_onnx(m, dir.file("folded.onnx"), {.fold_bn = true});
  Model back = import_onnx(dir.file("folded.onnx"));
  int convs = 0, bns = 0;
  for (const auto& l : back.layers()) {
    convs += l->class_name() == "Conv2D";
    bns += l->class_name() == "BatchNormalization";
  }
  EXPECT_EQ(convs, 2);
  EXPECT_EQ(bns, 0);
  const Tensor x_in = random_tensor({3, 9, 9, 5}, 9, -1.0f, 1.0f);
  EXPECT_EQ(back.predict(x_in).to_vector(), m.predict(x_in).to_vector());
}

// An output that also feeds another layer: a convolution that is a model output is not folded into
// the batch norm after it (its own output would be lost), and both outputs come out in the
// model's output order.
TEST(OnnxExport, AnOutputThatFeedsAnotherLayerKeepsItsValues) {
  REQUIRE_ONNX();
  set_global_seed(9);
  reset_name_counters();
  auto in = Input({5, 5, 3});
  auto conv =
      Conv2D({.filters = 4, .kernel = {3, 3}, .padding = Padding::Same, .name = "conv"})(in);
  auto bn = BatchNormalization({.name = "bn"})(conv);
  auto head = Conv2D({.filters = 2, .kernel = {1, 1}, .name = "head"})(bn);
  head = BatchNormalization({.name = "head_bn"})(head);
  Model m({in}, {head, conv}, "two_outputs");
  randomize_bn(m, 501);
  TempDir dir;
  export_onnx(m, dir.file("two.onnx"), {.fold_bn = true});
  Model back = import_onnx(dir.file("two.onnx"));
  int bns = 0;
  for (const auto& l : back.layers()) bns += l->class_name() == "BatchNormalization";
  EXPECT_EQ(bns, 1);  // "bn" stays; "head_bn" is folded
  const Tensor x = random_tensor({2, 5, 5, 3}, 10, -1.0f, 1.0f);
  const std::vector<Tensor> expected = m.forward(std::vector<Tensor>{x}, Mode::Inference);
  const std::vector<Tensor> got = back.forward(std::vector<Tensor>{x}, Mode::Inference);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].shape(), expected[0].shape());
  EXPECT_EQ(got[1].shape(), expected[1].shape());
  EXPECT_TRUE(AllClose(got[0], expected[0], 1e-5, "head output"));
  EXPECT_TRUE(AllClose(got[1], expected[1], 1e-5, "conv output"));
}

// A flattened 3x2 map through BatchNormalization (parameters permuted to CHW order) and Dropout
// into Dense.
TEST(OnnxExport, FlattenedMapThroughBatchNorm) {
  REQUIRE_ONNX();
  if (!python_has("onnx")) GTEST_SKIP() << "python3-onnx is not installed (scripts/setup.sh)";
  if (!have_ort()) GTEST_SKIP() << "node / onnxruntime-node missing (scripts/setup.sh)";
  set_global_seed(6);
  reset_name_counters();
  auto in = Input({3, 2, 4});
  auto x = Conv2D({.filters = 5, .kernel = {1, 1}})(in);
  x = Flatten()(x);
  x = BatchNormalization()(x);
  x = Activation("tanh")(x);
  x = Dropout({.rate = 0.5})(x);
  x = Dense({.units = 3})(x);
  Model m(in, x, "flatten_bn");
  randomize_bn(m, 400);
  check_export(m, {}, "flatten bn");
}

// A layer class with no ONNX mapping (defined here: every library layer exports).
class Scale2 : public Layer {
 public:
  Scale2() : Layer("Scale2", "times_two") {}
  Shape infer(const std::vector<Shape>& in) const override { return in[0]; }
  Tensor forward(const std::vector<Tensor>& in, Mode) override { return in[0]; }
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>&) override { return {dy}; }
};

TEST(OnnxExport, UnsupportedLayerNamesIt) {
  REQUIRE_ONNX();
  TempDir dir;
  auto in = Input({4, 4, 2});
  auto x = Conv2D({.filters = 2, .kernel = {1, 1}})(in);
  x = (*std::make_shared<Scale2>())(x);
  x = Flatten()(x);
  Model m(in, x, "custom");
  try {
    export_onnx(m, dir.file("custom.onnx"));
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'times_two' (Scale2)"), std::string::npos) << msg;
  }
  EXPECT_FALSE(fs::exists(dir.file("custom.onnx")));
}

TEST(OnnxExport, UnwritableFileThrowsIoError) {
  REQUIRE_ONNX();
  reset_name_counters();
  Model m = cifar_resnet(20, {32, 32, 3}, 10);
  try {
    export_onnx(m, "/nonexistent-dir/model.onnx");
    FAIL() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/model.onnx"), std::string::npos)
        << e.what();
  }
}

// One test (ctest runs each test in its own process, and the PyTorch export takes seconds).
TEST(OnnxImport, TorchvisionResNet18) {
  REQUIRE_ONNX();
  if (!python_has("torch, torchvision, onnx")) {
    GTEST_SKIP() << "python3-torch / python3-torchvision / python3-onnx missing (scripts/setup.sh)";
  }
  TempDir dir;
  std::string out;
  ASSERT_EQ(run(std::string(kPython) + " " + RESNET_SOURCE_DIR +
                    "/tests/reference/export_torchvision_resnet18.py " + dir.file("") +
                    " --size 64 --batch 2",
                &out),
            0)
      << out;
  const Tensor x = nchw_to_nhwc(read_f32(dir.file("input.bin"), {2, 3, 64, 64}));
  const Tensor expected = read_f32(dir.file("output.bin"), {2, 1000});
  // As PyTorch exports by default (BatchNorm folded into the convolutions), then with the
  // BatchNormalization nodes kept.
  for (const auto& [name, bns] :
       std::vector<std::pair<std::string, int>>{{"resnet18.onnx", 0}, {"resnet18_bn.onnx", 20}}) {
    SCOPED_TRACE(name);
    Model m = import_onnx(dir.file(name));
    ASSERT_EQ(m.input_shapes()[0], (Shape{64, 64, 3}));
    int count = 0;
    for (const auto& l : m.layers()) count += l->class_name() == "BatchNormalization";
    EXPECT_EQ(count, bns);
    const Tensor y = m.predict(x);
    std::printf("%s: max rel error against PyTorch %.3g\n", name.c_str(),
                resnet::testing::max_rel_error(y, expected));
    EXPECT_TRUE(AllClose(y, expected, 1e-4, name));
  }
  // x.view(x.size(0), -1) of an 8x8 map, as shape arithmetic and as a baked-in constant.
  const Tensor xs = nchw_to_nhwc(read_f32(dir.file("view_input.bin"), {2, 3, 16, 16}));
  const Tensor ys = read_f32(dir.file("view_output.bin"), {2, 5});
  for (const std::string name : {"view_dynamic.onnx", "view_static.onnx"}) {
    Model v = import_onnx(dir.file(name));
    const Tensor y = v.predict(xs);
    std::printf("%s: max rel error against PyTorch %.3g\n", name.c_str(),
                resnet::testing::max_rel_error(y, ys));
    EXPECT_TRUE(AllClose(y, ys, 1e-4, name));
  }

  // The imported model trains like any other: a few steps lower the loss on a fixed batch.
  Model m = import_onnx(dir.file("resnet18.onnx"));
  m.compile({.optimizer = Adam(), .loss = "mean_squared_error", .metrics = {}});
  const Tensor target(Shape{2, 1000});
  std::vector<double> losses;
  for (int i = 0; i < 3; ++i) losses.push_back(m.train_step(x, target));
  for (double l : losses) EXPECT_TRUE(std::isfinite(l));
  EXPECT_LT(losses.back(), losses.front());
}

// A hand-written graph (tests/io/onnx/make_fuzz_seed.py, also the fuzz seed) with Pad, a strided
// Conv, BatchNormalization, MaxPool with asymmetric pads after Relu, Add, a Constant-shaped
// Reshape, Gemm and Softmax: the imported model reproduces ONNX Runtime.
TEST(OnnxImport, HandWrittenGraphMatchesOnnxRuntime) {
  REQUIRE_ONNX();
  if (!have_ort()) GTEST_SKIP() << "node / onnxruntime-node missing (scripts/setup.sh)";
  TempDir dir;
  const std::string path = std::string(RESNET_SOURCE_DIR) + "/fuzz/corpus/onnx/tiny.onnx";
  Model m = import_onnx(path);
  ASSERT_EQ(m.input_shapes()[0], (Shape{8, 8, 2}));
  const Tensor x = random_tensor({3, 8, 8, 2}, 11, -1.0f, 1.0f);
  const Tensor y = m.predict(x);
  const Tensor ort = run_ort(dir, path, x, y.shape());
  std::printf("tiny.onnx: max rel error against ONNX Runtime %.3g\n",
              resnet::testing::max_rel_error(y, ort));
  EXPECT_TRUE(AllClose(y, ort, 1e-5, "tiny.onnx"));
}

// ---------------------------------------------------------------------------------------------
// Corrupt and unsupported files.

class OnnxCorrupt : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_ONNX();
    set_global_seed(4);
    reset_name_counters();
    Model m = cifar_resnet(20, {32, 32, 3}, 10);
    path_ = dir_.file("good.onnx");
    export_onnx(m, path_);
    bytes_ = read_file(path_);
  }
  // Expects import_onnx(path) to throw IoError mentioning the file and every `parts`.
  void expect_io_error(const std::string& bytes, const std::vector<std::string>& parts,
                       const std::string& name = "bad.onnx") {
    const std::string path = dir_.file(name);
    write_file(path, bytes);
    try {
      import_onnx(path);
      ADD_FAILURE() << "no error for " << name;
    } catch (const IoError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << msg;
      for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg;
    }
  }
  static std::string replace_once(std::string s, const std::string& from, const std::string& to) {
    const size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << "pattern not found";
    if (at != std::string::npos) s.replace(at, from.size(), to);
    return s;
  }
  TempDir dir_;
  std::string path_, bytes_;
};

TEST_F(OnnxCorrupt, GoodFileImports) { EXPECT_NO_THROW(import_onnx(path_)); }

TEST_F(OnnxCorrupt, MissingFile) {
  try {
    import_onnx(dir_.file("absent.onnx"));
    FAIL() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("absent.onnx"), std::string::npos);
  }
}

TEST_F(OnnxCorrupt, Truncated) {
  for (size_t keep : {size_t{0}, size_t{1}, size_t{10}, bytes_.size() / 3, bytes_.size() / 2,
                      bytes_.size() - 1}) {
    SCOPED_TRACE(keep);
    expect_io_error(bytes_.substr(0, keep), {}, "truncated.onnx");
  }
}

TEST_F(OnnxCorrupt, FlippedBytes) {
  // The first byte is the tag of ir_version: flipped, the protobuf no longer parses.
  std::string b = bytes_;
  b[0] = static_cast<char>(~b[0]);
  expect_io_error(b, {"not a valid ONNX file"}, "flipped.onnx");
  // Random flips in the graph structure (the first 4 KiB: names, ops, attributes): each either
  // still imports or throws IoError naming the file, never anything else.
  Rng rng(5);
  int errors = 0;
  const size_t span = std::min<size_t>(bytes_.size(), 4096);
  for (int i = 0; i < 60; ++i) {
    std::string c = bytes_;
    const size_t at = rng.below(span);
    c[at] = static_cast<char>(c[at] ^ static_cast<char>(1 + rng.below(255)));
    const std::string path = dir_.file("flip.onnx");
    write_file(path, c);
    try {
      import_onnx(path);
    } catch (const IoError& e) {
      ++errors;
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "flip at " << at << ": not an IoError: " << e.what();
    }
  }
  EXPECT_GT(errors, 0);
}

TEST_F(OnnxCorrupt, UnknownOp) {
  // NodeProto.op_type is field 4 (tag 0x22): "Relu" -> "Relx".
  const std::string b =
      replace_once(bytes_, std::string("\x22\x04Relu", 6), std::string("\x22\x04Relx", 6));
  expect_io_error(b, {"Relx", "unsupported op type"});
}

TEST_F(OnnxCorrupt, MissingInitializer) {
  // TensorProto.name is field 8 (tag 0x42): renaming the initializer leaves the Conv's input
  // "conv1_conv/kernel" undefined.
  const std::string name = "conv1_conv/kernel";
  const std::string b = replace_once(bytes_, std::string("\x42") + char(name.size()) + name,
                                     std::string("\x42") + char(name.size()) + "conv1_conv/kernex");
  expect_io_error(b, {"conv1_conv/kernel", "missing initializer", "'conv1_conv'"});
}

TEST_F(OnnxCorrupt, NanWeight) {
  reset_name_counters();
  Model m = cifar_resnet(20, {32, 32, 3}, 10);
  m.layer("predictions").param("kernel").value.f32()[3] = std::nanf("");
  const std::string path = dir_.file("nan.onnx");
  export_onnx(m, path);
  expect_io_error(read_file(path), {"predictions/kernel", "not finite"}, "nan_read.onnx");
}

// Shape mismatches and unsupported attributes, written with the onnx Python package.
TEST_F(OnnxCorrupt, WrongShapeAndGroup) {
  if (!python_has("onnx, numpy")) GTEST_SKIP() << "python3-onnx is not installed";
  const std::string script =
      "import onnx, sys, numpy as np\n"
      "from onnx import numpy_helper\n"
      "m = onnx.load(sys.argv[1])\n"
      "w = [t for t in m.graph.initializer if t.name == 'conv2_block1_1_conv/kernel'][0]\n"
      "a = numpy_helper.to_array(w)\n"
      "w.CopyFrom(numpy_helper.from_array(np.zeros((a.shape[0], a.shape[1] + 1) + a.shape[2:], "
      "np.float32), w.name))\n"
      "onnx.save(m, sys.argv[2])\n"
      "m = onnx.load(sys.argv[1])\n"
      "n = [n for n in m.graph.node if n.op_type == 'Conv'][1]\n"
      "[a for a in n.attribute if a.name == 'group'][0].i = 2\n"
      "onnx.save(m, sys.argv[3])\n";
  write_file(dir_.file("mutate.py"), script);
  std::string out;
  ASSERT_EQ(run(std::string(kPython) + " " + dir_.file("mutate.py") + " " + path_ + " " +
                    dir_.file("shape.onnx") + " " + dir_.file("group.onnx"),
                &out),
            0)
      << out;
  for (const auto& [file, parts] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"shape.onnx", {"conv2_block1_1_conv", "conv2_block1_1_conv/kernel", "channels"}},
           {"group.onnx", {"group = 2"}}}) {
    try {
      import_onnx(dir_.file(file));
      ADD_FAILURE() << "no error for " << file;
    } catch (const IoError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(file), std::string::npos) << msg;
      for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// CLI: resnet export.

TEST(OnnxCli, ExportZooModelAndOnnxFile) {
  TempDir dir;
  std::string out;
  const std::string cli = RESNET_CLI_PATH;
  const std::string a = dir.file("a.onnx"), b = dir.file("b.onnx");
  const int rc = run(cli + " export --model resnet20 --classes 4 -o " + a, &out);
  if (!onnx_available()) {
    EXPECT_EQ(rc, 2) << out;
    EXPECT_NE(out.find("without ONNX support"), std::string::npos) << out;
    return;
  }
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("wrote " + a), std::string::npos) << out;
  // An .onnx file is a model file like any other: re-exported with BN folding.
  ASSERT_EQ(run(cli + " export " + a + " --fold-bn -o " + b, &out), 0) << out;
  reset_name_counters();
  Model ma = import_onnx(a), mb = import_onnx(b);
  const Tensor x = random_tensor({2, 32, 32, 3}, 9, 0.0f, 1.0f);
  EXPECT_TRUE(AllClose(mb.predict(x), ma.predict(x), 1e-5, "re-exported"));
  // Usage errors exit with 2.
  EXPECT_EQ(run(cli + " export -o " + b, &out), 2) << out;
  EXPECT_EQ(run(cli + " export " + a + " --model resnet20 -o " + b, &out), 2) << out;
  // A corrupt file exits with 1 and names the file.
  write_file(dir.file("bad.onnx"), "not an onnx file");
  EXPECT_EQ(run(cli + " export " + dir.file("bad.onnx") + " -o " + b, &out), 1) << out;
  EXPECT_NE(out.find("bad.onnx"), std::string::npos) << out;
}
