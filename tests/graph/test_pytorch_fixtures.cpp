// Cross-framework tests: small graphs (Conv2D -> BN -> ReLU, the tutorial's identity and
// convolutional blocks) run by resnet.cpp against outputs, gradients and moving statistics computed
// by PyTorch in double precision (tests/reference/generate_fixtures.py), under both backends.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "ops/ops.h"
#include "resnet/error.h"
#include "resnet/layers.h"
#include "resnet/model.h"
#include "resnet/models.h"
#include "support/allclose.h"
#include "support/fixtures.h"

namespace resnet::testing {
namespace {

constexpr double kTol = 1e-4;

// ---------------------------------------------------------------------------------------------
// Graphs, named as in the tutorial (KERAS.md section 1).

struct Graph {
  Model model;
  std::vector<std::string> convs;  // Conv2D layers (kernel, bias)
  std::vector<std::string> bns;    // BatchNormalization layers
};

Shape per_sample(const Tensor& batch) { return batch.shape().drop_front(); }

BatchNormalizationOptions bn_options(const std::string& name) {
  return {.axis = 3, .momentum = 0.99, .epsilon = 1e-3, .name = name};
}

// Conv2D(k x k, stride, padding, bias) -> BN -> ReLU.
Graph conv_bn_relu(const Fixture& fx, int64_t k, int64_t stride, Padding padding) {
  const Tensor& kernel = fx.at("conv1/kernel");
  auto in = Input(per_sample(fx.at("input")), "input_1");
  auto x = Conv2D({.filters = kernel.shape()[3],
                   .kernel = {k, k},
                   .strides = {stride, stride},
                   .padding = padding,
                   .name = "conv1"})(in);
  x = BatchNormalization(bn_options("bn_conv1"))(x);
  x = Activation("relu", "activation")(x);
  return {Model(in, x, "conv_bn_relu"), {"conv1"}, {"bn_conv1"}};
}

// The main path of both blocks: 1x1 (stride s) -> BN -> ReLU -> f x f same -> BN -> ReLU -> 1x1
// -> BN.
SymTensor main_path(SymTensor x, const std::string& base, int64_t f, const int64_t filters[3],
                    int64_t s) {
  x = Conv2D({.filters = filters[0],
              .kernel = {1, 1},
              .strides = {s, s},
              .padding = Padding::Valid,
              .name = "res" + base + "2a"})(x);
  x = BatchNormalization(bn_options("bn" + base + "2a"))(x);
  x = Activation("relu", "relu" + base + "2a")(x);
  x = Conv2D({.filters = filters[1],
              .kernel = {f, f},
              .strides = {1, 1},
              .padding = Padding::Same,
              .name = "res" + base + "2b"})(x);
  x = BatchNormalization(bn_options("bn" + base + "2b"))(x);
  x = Activation("relu", "relu" + base + "2b")(x);
  x = Conv2D({.filters = filters[2],
              .kernel = {1, 1},
              .strides = {1, 1},
              .padding = Padding::Valid,
              .name = "res" + base + "2c"})(x);
  x = BatchNormalization(bn_options("bn" + base + "2c"))(x);
  return x;
}

void block_filters(const Fixture& fx, const std::string& base, int64_t filters[3]) {
  filters[0] = fx.at("res" + base + "2a/kernel").shape()[3];
  filters[1] = fx.at("res" + base + "2b/kernel").shape()[3];
  filters[2] = fx.at("res" + base + "2c/kernel").shape()[3];
}

// identity_block(X, f=3, filters, stage=2, block='b').
Graph identity_block(const Fixture& fx) {
  const std::string base = "2b_branch";
  int64_t filters[3];
  block_filters(fx, base, filters);
  auto in = Input(per_sample(fx.at("input")), "input_1");
  auto x = main_path(in, base, 3, filters, 1);
  x = Add({.name = "add"})({x, in});
  x = Activation("relu", "relu2b_out")(x);
  Graph g{Model(in, x, "identity_block"), {}, {}};
  for (const char* b : {"2a", "2b", "2c"}) {
    g.convs.push_back("res" + base + b);
    g.bns.push_back("bn" + base + b);
  }
  return g;
}

// convolutional_block(X, f=3, filters, stage=2, block='a', s=2).
Graph convolutional_block(const Fixture& fx) {
  const std::string base = "2a_branch";
  const int64_t s = 2;
  int64_t filters[3];
  block_filters(fx, base, filters);
  auto in = Input(per_sample(fx.at("input")), "input_1");
  auto x = main_path(in, base, 3, filters, s);
  auto sc = Conv2D({.filters = filters[2],
                    .kernel = {1, 1},
                    .strides = {s, s},
                    .padding = Padding::Valid,
                    .name = "res" + base + "1"})(in);
  sc = BatchNormalization(bn_options("bn" + base + "1"))(sc);
  x = Add({.name = "add"})({x, sc});
  x = Activation("relu", "relu2a_out")(x);
  Graph g{Model(in, x, "convolutional_block"), {}, {}};
  for (const char* b : {"2a", "2b", "2c", "1"}) {
    g.convs.push_back("res" + base + b);
    g.bns.push_back("bn" + base + b);
  }
  return g;
}

// The same blocks from the model zoo (resnet/models.h), which must name their layers as above.
Graph zoo_identity_block(const Fixture& fx) {
  int64_t filters[3];
  block_filters(fx, "2b_branch", filters);
  auto in = Input(per_sample(fx.at("input")), "input_1");
  auto y = resnet::identity_block(in, 3, {filters[0], filters[1], filters[2]}, 2, "b");
  Graph g{Model(in, y, "zoo_identity_block"), {}, {}};
  for (const char* b : {"2a", "2b", "2c"}) {
    g.convs.push_back(std::string("res2b_branch") + b);
    g.bns.push_back(std::string("bn2b_branch") + b);
  }
  return g;
}

Graph zoo_convolutional_block(const Fixture& fx) {
  int64_t filters[3];
  block_filters(fx, "2a_branch", filters);
  auto in = Input(per_sample(fx.at("input")), "input_1");
  auto y = resnet::convolutional_block(in, 3, {filters[0], filters[1], filters[2]}, 2, "a", 2);
  Graph g{Model(in, y, "zoo_convolutional_block"), {}, {}};
  for (const char* b : {"2a", "2b", "2c", "1"}) {
    g.convs.push_back(std::string("res2a_branch") + b);
    g.bns.push_back(std::string("bn2a_branch") + b);
  }
  return g;
}

// ---------------------------------------------------------------------------------------------

struct Case {
  std::string label;
  std::string fixture;
  std::function<Graph(const Fixture&)> build;
  ops::Backend backend;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.label << " (fixture " << c.fixture << ", backend " << ops::backend_name(c.backend)
      << ")";
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string b = ops::backend_name(info.param.backend);
  std::string name = info.param.label + "_" + b;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (ops::Backend b : {ops::Backend::Ref, ops::Backend::OneDnn}) {
    out.push_back({"conv_bn_relu", "conv_bn_relu",
                   [](const Fixture& fx) { return conv_bn_relu(fx, 3, 1, Padding::Same); }, b});
    out.push_back({"conv_bn_relu_s2_valid", "conv_bn_relu_s2_valid",
                   [](const Fixture& fx) { return conv_bn_relu(fx, 3, 2, Padding::Valid); }, b});
    out.push_back({"identity_block", "identity_block", identity_block, b});
    out.push_back({"identity_block_wide", "identity_block_wide", identity_block, b});
    out.push_back({"convolutional_block", "convolutional_block", convolutional_block, b});
    out.push_back({"convolutional_block_wide", "convolutional_block_wide", convolutional_block, b});
    out.push_back({"zoo_identity_block", "identity_block", zoo_identity_block, b});
    out.push_back(
        {"zoo_convolutional_block_wide", "convolutional_block_wide", zoo_convolutional_block, b});
  }
  return out;
}

// Copies every parameter of the graph from the fixture ("<layer>/<param>").
void load_params(Graph& g, const Fixture& fx) {
  for (const auto& c : g.convs) {
    Layer& l = g.model.layer(c);
    l.param("kernel").value.copy_from(fx.at(c + "/kernel"));
    l.param("bias").value.copy_from(fx.at(c + "/bias"));
  }
  for (const auto& b : g.bns) {
    Layer& l = g.model.layer(b);
    for (const char* p : {"gamma", "beta", "moving_mean", "moving_variance"}) {
      l.param(p).value.copy_from(fx.at(b + "/" + p));
    }
  }
}

double max_abs(const Tensor& t) {
  Tensor f = ops::plain(t).to_f32();
  double m = 0.0;
  for (float v : f.span<float>()) m = std::max(m, static_cast<double>(std::abs(v)));
  return m;
}

// For gradients that are zero in exact arithmetic (a conv bias followed by a training-mode BN):
// max |actual - expected| <= tol * scale, with `scale` the size of a related non-zero quantity.
::testing::AssertionResult NearZeroGrad(const Tensor& actual, const Tensor& expected, double tol,
                                        double scale, const std::string& context) {
  if (actual.shape() != expected.shape()) {
    return ::testing::AssertionFailure() << context << ": shape " << actual.shape().str()
                                         << " != expected " << expected.shape().str();
  }
  Tensor a = ops::plain(actual).to_f32(), e = ops::plain(expected).to_f32();
  double err = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    double d = std::abs(static_cast<double>(a.f32()[i]) - e.f32()[i]);
    if (!std::isfinite(d)) d = INFINITY;
    err = std::max(err, d);
  }
  if (err <= tol * scale) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << context << ": max abs error " << err << " > " << tol
                                       << " * " << scale << " (expected ~0)";
}

class PyTorchFixtureTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    fx_ = load_fixture(GetParam().fixture);
    ctx_ = GetParam().label + " [" + ops::backend_name(GetParam().backend) + "]";
  }
  Fixture fx_;
  std::string ctx_;
};

TEST_P(PyTorchFixtureTest, Training) {
  ops::BackendScope scope(GetParam().backend);
  Graph g = GetParam().build(fx_);
  load_params(g, fx_);

  Tensor y = g.model.forward(fx_.at("input"), Mode::Training);
  EXPECT_TRUE(AllClose(y, fx_.at("output"), kTol, ctx_ + " training output"));

  Tensor dx = g.model.backward(fx_.at("dy"), /*input_grad=*/true);
  ASSERT_TRUE(dx.defined()) << ctx_ << ": no input gradient";
  EXPECT_TRUE(AllClose(dx, fx_.at("grad_input"), kTol, ctx_ + " grad_input"));

  for (const auto& c : g.convs) {
    Layer& l = g.model.layer(c);
    const Tensor& gk = fx_.at(c + "/grad_kernel");
    EXPECT_TRUE(AllClose(l.param("kernel").grad, gk, kTol, ctx_ + " " + c + "/grad_kernel"));
    // Every conv here feeds a training-mode BN, which removes any per-channel offset: the bias
    // gradient is zero up to rounding.
    EXPECT_TRUE(NearZeroGrad(l.param("bias").grad, fx_.at(c + "/grad_bias"), kTol,
                             std::max(max_abs(gk), 1e-3), ctx_ + " " + c + "/grad_bias"));
  }
  for (const auto& b : g.bns) {
    Layer& l = g.model.layer(b);
    EXPECT_TRUE(AllClose(l.param("gamma").grad, fx_.at(b + "/grad_gamma"), kTol,
                         ctx_ + " " + b + "/grad_gamma"));
    EXPECT_TRUE(AllClose(l.param("beta").grad, fx_.at(b + "/grad_beta"), kTol,
                         ctx_ + " " + b + "/grad_beta"));
    EXPECT_TRUE(AllClose(l.param("moving_mean").value, fx_.at(b + "/moving_mean_after"), kTol,
                         ctx_ + " " + b + "/moving_mean after the training forward"));
    EXPECT_TRUE(AllClose(l.param("moving_variance").value, fx_.at(b + "/moving_variance_after"),
                         kTol, ctx_ + " " + b + "/moving_variance after the training forward"));
  }
}

TEST_P(PyTorchFixtureTest, Inference) {
  ops::BackendScope scope(GetParam().backend);
  Graph g = GetParam().build(fx_);
  load_params(g, fx_);

  Tensor y = g.model.forward(fx_.at("input"), Mode::Inference);
  EXPECT_TRUE(AllClose(y, fx_.at("inference/output"), kTol, ctx_ + " inference output"));
  // A second call gives the same result: inference leaves the moving statistics alone.
  Tensor y2 = g.model.forward(fx_.at("input"), Mode::Inference);
  EXPECT_TRUE(AllClose(y2, fx_.at("inference/output"), kTol, ctx_ + " second inference output"));
  for (const auto& b : g.bns) {
    Layer& l = g.model.layer(b);
    EXPECT_TRUE(AllClose(l.param("moving_mean").value, fx_.at(b + "/moving_mean"), 0.0,
                         ctx_ + " " + b + "/moving_mean after inference"));
    EXPECT_TRUE(AllClose(l.param("moving_variance").value, fx_.at(b + "/moving_variance"), 0.0,
                         ctx_ + " " + b + "/moving_variance after inference"));
  }
}

// Training then inference on one model: inference uses the moving statistics as updated by the
// training-mode forward.
TEST_P(PyTorchFixtureTest, InferenceAfterTrainingUsesUpdatedMovingStats) {
  ops::BackendScope scope(GetParam().backend);
  Graph g = GetParam().build(fx_);
  load_params(g, fx_);
  g.model.forward(fx_.at("input"), Mode::Training);
  Tensor y = g.model.forward(fx_.at("input"), Mode::Inference);
  EXPECT_TRUE(AllClose(y, fx_.at("inference_after_training/output"), kTol,
                       ctx_ + " inference output after a training forward"));

  // Restoring the initial moving statistics restores the first inference output.
  load_params(g, fx_);
  Tensor y0 = g.model.forward(fx_.at("input"), Mode::Inference);
  EXPECT_TRUE(AllClose(y0, fx_.at("inference/output"), kTol,
                       ctx_ + " inference output after reloading the parameters"));
}

INSTANTIATE_TEST_SUITE_P(PyTorch, PyTorchFixtureTest, ::testing::ValuesIn(cases()), case_name);

// ---------------------------------------------------------------------------------------------
// The fixture reader itself.

class PyTorchFixtureFile : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::temp_directory_path() /
             ("resnet_fixture_" + std::to_string(::getpid()) + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".rnfx"))
                .string();
  }
  void TearDown() override { std::remove(path_.c_str()); }
  std::string path_;
};

TEST_F(PyTorchFixtureFile, EveryFixtureHasItsTensors) {
  for (const char* name :
       {"conv_bn_relu", "conv_bn_relu_s2_valid", "identity_block", "identity_block_wide",
        "convolutional_block", "convolutional_block_wide"}) {
    Fixture fx = load_fixture(name);
    for (const char* t : {"input", "dy", "output", "grad_input", "inference/output",
                          "inference/grad_input", "inference_after_training/output"}) {
      EXPECT_TRUE(fx.contains(t)) << name << " lacks " << t;
    }
    EXPECT_EQ(fx.at("input").rank(), 4) << name;
    EXPECT_EQ(fx.at("output").shape(), fx.at("dy").shape()) << name;
    EXPECT_EQ(fx.at("output").shape(), fx.at("inference/output").shape()) << name;
    EXPECT_EQ(fx.at("input").shape(), fx.at("grad_input").shape()) << name;
  }
}

TEST_F(PyTorchFixtureFile, RoundTrip) {
  std::map<std::string, Tensor> in;
  in["a"] = Tensor::from_vector({2, 3}, {1, 2, 3, 4, 5, 6});
  in["layer/kernel"] = Tensor::from_vector({1, 1, 2, 1}, {-1.5f, 2.25f});
  in["scalar"] = Tensor::from_vector({}, {7});
  write_fixture_file(path_, in);
  Fixture fx = read_fixture_file(path_);
  EXPECT_EQ(fx.size(), 3u);
  for (const auto& [name, t] : in) {
    ASSERT_TRUE(fx.contains(name)) << name;
    EXPECT_EQ(fx.at(name).shape(), t.shape()) << name;
    EXPECT_EQ(fx.at(name).to_vector(), t.to_vector()) << name;
  }
}

TEST_F(PyTorchFixtureFile, MissingTensorNamesFileAndTensor) {
  Fixture fx = load_fixture("conv_bn_relu");
  try {
    fx.at("no_such/tensor");
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("conv_bn_relu.rnfx"), std::string::npos) << msg;
    EXPECT_NE(msg.find("no_such/tensor"), std::string::npos) << msg;
  }
}

TEST_F(PyTorchFixtureFile, MissingFileThrows) {
  try {
    load_fixture("no_such_fixture");
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_fixture.rnfx"), std::string::npos) << e.what();
  }
}

TEST_F(PyTorchFixtureFile, TruncatedFileThrowsNamingTheFile) {
  std::ifstream src(std::string(RESNET_FIXTURE_DIR) + "/conv_bn_relu.rnfx", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(src)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 100u);
  // Cut inside the header, inside a name, inside the data, and one byte short of the end.
  for (size_t cut : {size_t{2}, size_t{10}, size_t{15}, bytes.size() / 2, bytes.size() - 1}) {
    {
      std::ofstream out(path_, std::ios::binary | std::ios::trunc);
      out.write(bytes.data(), static_cast<std::streamsize>(cut));
    }
    try {
      read_fixture_file(path_);
      ADD_FAILURE() << "no error for a file cut at " << cut << " bytes";
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find(path_), std::string::npos) << e.what();
    }
  }
}

TEST_F(PyTorchFixtureFile, BadMagicVersionAndTrailingBytesThrow) {
  std::ifstream src(std::string(RESNET_FIXTURE_DIR) + "/conv_bn_relu.rnfx", std::ios::binary);
  const std::string good((std::istreambuf_iterator<char>(src)), std::istreambuf_iterator<char>());
  auto expect_error = [&](std::string bytes, const std::string& what) {
    {
      std::ofstream out(path_, std::ios::binary | std::ios::trunc);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    EXPECT_THROW(read_fixture_file(path_), IoError) << what;
  };
  std::string bad = good;
  bad[0] = 'X';
  expect_error(bad, "bad magic");
  bad = good;
  bad[4] = 2;
  expect_error(bad, "version 2");
  expect_error(good + "junk", "trailing bytes");
  EXPECT_NO_THROW(read_fixture_file(std::string(RESNET_FIXTURE_DIR) + "/conv_bn_relu.rnfx"));
}

}  // namespace
}  // namespace resnet::testing
