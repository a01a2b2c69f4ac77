// The functional graph and its executor: Keras layer order, name checks, shape errors, gradient
// summation over shortcuts, buffer release, very deep graphs, batch consistency.
#include <gtest/gtest.h>

#include <cmath>

#include "ops/ops.h"
#include "resnet/model.h"
#include "resnet/models.h"
#include "support/allclose.h"

namespace resnet {
namespace {

using testing::AllClose;
using testing::random_tensor;

std::vector<std::string> layer_names(const Model& m) {
  std::vector<std::string> v;
  for (const auto& l : m.layers()) v.push_back(l->name());
  return v;
}

TEST(Graph, ConvolutionalBlockLayerOrderMatchesKerasSummary) {
  reset_name_counters();
  SymTensor in = Input({15, 15, 64});
  SymTensor out = convolutional_block(in, 3, {64, 64, 256}, 2, "a", 1);
  Model m(in, out, "block");
  // KERAS.md §1: the order model.summary() prints for a convolutional block.
  const std::vector<std::string> expected = {"input_1",       "res2a_branch2a", "bn2a_branch2a",
                                             "activation",    "res2a_branch2b", "bn2a_branch2b",
                                             "activation_1",  "res2a_branch2c", "res2a_branch1",
                                             "bn2a_branch2c", "bn2a_branch1",   "add",
                                             "activation_2"};
  EXPECT_EQ(layer_names(m), expected);
  EXPECT_EQ(m.inbound(m.layer("add")), (std::vector<std::string>{"bn2a_branch2c", "bn2a_branch1"}));
  EXPECT_EQ(m.output_shapes()[0], (Shape{15, 15, 256}));
  // res2a_branch2a 4,160; res2a_branch2b 36,928; res2a_branch2c and res2a_branch1 16,640 each.
  EXPECT_EQ(m.layer("res2a_branch2a").count_params(), 4160);
  EXPECT_EQ(m.layer("res2a_branch2b").count_params(), 36928);
  EXPECT_EQ(m.layer("res2a_branch1").count_params(), 16640);
  EXPECT_EQ(m.layer("bn2a_branch2a").count_params(), 4 * 64);
  EXPECT_EQ(m.layer("bn2a_branch2a").count_trainable_params(), 2 * 64);
}

TEST(Graph, DuplicateLayerNamesAreRejectedWithBothTypes) {
  reset_name_counters();
  SymTensor in = Input({8, 8, 3});
  SymTensor x = Conv2D({.filters = 4, .name = "same_name"})(in);
  x = BatchNormalization({.name = "same_name"})(x);
  try {
    Model m(in, x);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("duplicate layer name 'same_name'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Conv2D"), std::string::npos) << msg;
    EXPECT_NE(msg.find("BatchNormalization"), std::string::npos) << msg;
  }
}

TEST(Graph, OutputDependingOnAForeignInputIsRejected) {
  reset_name_counters();
  SymTensor a = Input({4}, "a");
  SymTensor b = Input({4}, "b");
  SymTensor y = Add()({a, b});
  try {
    Model m(a, y);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("input 'b'"), std::string::npos) << e.what();
  }
}

TEST(Graph, ForwardChecksTheInputShape) {
  reset_name_counters();
  SymTensor in = Input({6, 6, 3}, "pixels");
  Model m(in, Flatten()(in));
  try {
    m.forward(Tensor::zeros({2, 6, 5, 3}), Mode::Inference);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'pixels'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(None, 6, 6, 3)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(2, 6, 5, 3)"), std::string::npos) << msg;
  }
}

// A small residual network whose input feeds two branches: the executor must sum both gradients.
// Checked against central differences of L = sum(out * r) through the float reference backend.
TEST(Graph, ShortcutGradientsAreSummedAndMatchFiniteDifferences) {
  ops::BackendScope ref(ops::Backend::Ref);
  reset_name_counters();
  set_global_seed(3);
  SymTensor in = Input({5, 5, 2});
  SymTensor a = Conv2D({.filters = 2, .padding = Padding::Same})(in);
  a = Activation("tanh")(a);
  SymTensor b = Conv2D({.filters = 2, .kernel = {1, 1}})(in);
  SymTensor y = Add()({a, b, in});
  y = Activation("sigmoid")(y);
  Model m(in, y);

  Tensor x = random_tensor({2, 5, 5, 2}, 11);
  Tensor r = random_tensor({2, 5, 5, 2}, 12);
  auto loss = [&](const Tensor& input) {
    Tensor out = m.forward(input, Mode::Inference);
    double s = 0;
    for (int64_t i = 0; i < out.numel(); ++i) s += double(out.f32()[i]) * r.f32()[i];
    return s;
  };
  m.forward(x, Mode::Training);
  Tensor dx = m.backward(r, /*input_grad=*/true);
  ASSERT_TRUE(dx.defined());
  Tensor numeric = Tensor::empty(x.shape());
  const float eps = 1e-2f;
  for (int64_t i = 0; i < x.numel(); ++i) {
    Tensor xp = x.clone(), xm = x.clone();
    xp.f32()[i] += eps;
    xm.f32()[i] -= eps;
    numeric.f32()[i] = static_cast<float>((loss(xp) - loss(xm)) / (2 * eps));
  }
  EXPECT_TRUE(AllClose(dx, numeric, 2e-3, "input gradient"));

  // Parameter gradient of the first conv kernel, a few elements.
  m.forward(x, Mode::Training);
  m.backward(r);
  Param& k = m.layer("conv2d").param("kernel");
  Tensor analytic = k.grad.clone();
  for (int64_t i = 0; i < k.value.numel(); i += 5) {
    const float saved = k.value.f32()[i];
    k.value.f32()[i] = saved + eps;
    const double lp = loss(x);
    k.value.f32()[i] = saved - eps;
    const double lm = loss(x);
    k.value.f32()[i] = saved;
    const double num = (lp - lm) / (2 * eps);
    EXPECT_NEAR(analytic.f32()[i], num, 2e-3 * std::max(1.0, std::abs(num)))
        << "kernel[" << i << "]";
  }
}

TEST(Graph, ActivationsAreReleasedDuringForward) {
  reset_name_counters();
  SymTensor in = Input({4, 4, 2});
  SymTensor x = in;
  for (int i = 0; i < 50; ++i) x = Activation("relu")(x);
  Model m(in, x);
  m.forward(random_tensor({1, 4, 4, 2}, 1), Mode::Inference);
  // A chain keeps at most the current input and output alive.
  EXPECT_LE(m.last_peak_live_tensors(), 3);
}

TEST(Graph, ThousandLayerResidualNetworkRunsForwardAndBackward) {
  reset_name_counters();
  set_global_seed(5);
  SymTensor in = Input({4, 4, 4});
  SymTensor x = in;
  int layers = 1;
  // 250 residual units of 4 layers each (conv, BN, add, relu) = 1001 layers.
  for (int u = 0; u < 250; ++u) {
    SymTensor y = Conv2D({.filters = 4, .padding = Padding::Same})(x);
    y = BatchNormalization()(y);
    y = Add()({y, x});
    x = ReLU()(y);
    layers += 4;
  }
  {
    Model m(in, x, "deep");
    ASSERT_EQ(static_cast<int>(m.layers().size()), layers);
    EXPECT_GT(layers, 1000);
    Tensor out = m.forward(random_tensor({2, 4, 4, 4}, 2), Mode::Training);
    EXPECT_EQ(out.shape(), (Shape{2, 4, 4, 4}));
    m.backward(random_tensor({2, 4, 4, 4}, 3));
    const Param& k = m.layer("conv2d").param("kernel");
    ASSERT_TRUE(k.grad.defined());
    for (float g : ops::plain(k.grad).span<float>()) ASSERT_TRUE(std::isfinite(g));
  }
}

TEST(Graph, VeryDeepChainIsDestroyedWithoutRecursion) {
  // 100,000 nodes: a recursive destructor chain this deep would overflow an 8 MB stack.
  SymTensor in = Input({2});
  SymTensor x = in;
  for (int i = 0; i < 100000; ++i) x = Activation("linear", "lin" + std::to_string(i))(x);
  // The graph holds its layers alive, and releasing the last tensors frees every one of them.
  const std::weak_ptr<Layer> first = in.node()->layer, last = x.node()->layer;
  ASSERT_FALSE(first.expired());
  x = SymTensor();
  EXPECT_FALSE(first.expired());  // `in` still holds the input node
  EXPECT_TRUE(last.expired());
  in = SymTensor();
  EXPECT_TRUE(first.expired());
}

TEST(Graph, BatchedInferenceEqualsPerSampleInference) {
  reset_name_counters();
  set_global_seed(9);
  SymTensor in = Input({9, 9, 3});
  SymTensor x = ZeroPadding2D({.padding = {1, 1, 1, 1}})(in);
  x = Conv2D({.filters = 8, .strides = {2, 2}})(x);
  x = BatchNormalization()(x);
  x = Activation("relu")(x);
  x = convolutional_block(x, 3, {4, 4, 8}, 2, "a", 1);
  x = GlobalAveragePooling2D()(x);
  x = Dense({.units = 3, .activation = "softmax"})(x);
  Model m(in, x);
  Tensor batch = random_tensor({3, 9, 9, 3}, 4);
  Tensor all = m.forward(batch, Mode::Inference);
  for (int64_t i = 0; i < 3; ++i) {
    Tensor one = Tensor::empty({1, 9, 9, 3});
    std::copy_n(batch.f32() + i * 243, 243, one.f32());
    Tensor y = m.forward(one, Mode::Inference);
    Tensor expect = Tensor::empty({1, 3});
    std::copy_n(all.f32() + i * 3, 3, expect.f32());
    EXPECT_TRUE(AllClose(y, expect, 1e-5, "sample " + std::to_string(i)));
  }
}

TEST(Graph, FreezeUntilMakesLayersNonTrainable) {
  reset_name_counters();
  SymTensor in = Input({6, 6, 3});
  SymTensor x = Conv2D({.filters = 4, .name = "c1"})(in);
  x = BatchNormalization({.name = "b1"})(x);
  x = Conv2D({.filters = 4, .name = "c2"})(x);
  Model m(in, x);
  const int64_t before = m.count_trainable_params();
  m.freeze_until("b1");
  EXPECT_FALSE(m.layer("c1").trainable());
  EXPECT_FALSE(m.layer("b1").trainable());
  EXPECT_TRUE(m.layer("c2").trainable());
  EXPECT_EQ(m.count_trainable_params(), before - (3 * 3 * 3 * 4 + 4) - 8);
  EXPECT_THROW(m.freeze_until("nope"), ConfigError);
}

}  // namespace
}  // namespace resnet
