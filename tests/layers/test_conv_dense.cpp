// Conv2D and Dense: forward against the reference kernel, fused activations, gradients.
#include <gtest/gtest.h>

#include "layer_gradcheck.h"
#include "layers/conv2d.h"
#include "layers/dense.h"
#include "ops/ops.h"
#include "support/allclose.h"

namespace resnet {
namespace {

using testing::AllClose;
using testing::check_layer_grads;
using testing::random_tensor;

class LayersConv2D : public ::testing::Test {
 protected:
  void SetUp() override {
    reset_name_counters();
    set_global_seed(1);
  }
  ops::BackendScope ref_{ops::Backend::Ref};
};

class LayersDense : public LayersConv2D {};

TEST_F(LayersConv2D, ForwardMatchesOpWithSamePadding) {
  auto conv = Conv2D({.filters = 4,
                      .kernel = {3, 3},
                      .strides = {2, 2},
                      .padding = Padding::Same,
                      .bias_initializer = Initializer::random_uniform(-1, 1, 3)});
  EXPECT_EQ(conv(Input({5, 6, 3})).shape(), (Shape{3, 3, 4}));
  Tensor x = random_tensor(Shape{2, 5, 6, 3}, 1);
  Tensor y = conv->forward({x}, Mode::Inference);
  EXPECT_EQ(y.shape(), (Shape{2, 3, 3, 4}));
  ops::ConvGeom g{.n = 2, .h = 5, .w = 6, .c = 3, .kh = 3, .kw = 3, .f = 4, .sh = 2, .sw = 2};
  auto [t, b] = ops::same_padding(5, 3, 2, 1);
  auto [l, r] = ops::same_padding(6, 3, 2, 1);
  g.pad = {t, b, l, r};
  g.finish();
  Tensor expected =
      ops::conv2d_forward(x, conv->param("kernel").value, conv->param("bias").value, g);
  EXPECT_TRUE(AllClose(y, expected, 1e-6));
}

TEST_F(LayersConv2D, Gradients) {
  struct Case {
    Conv2DOptions o;
    Shape x;
  };
  const Case cases[] = {
      {{.filters = 3, .kernel = {3, 3}}, Shape{2, 5, 5, 2}},
      {{.filters = 2, .kernel = {3, 2}, .strides = {2, 1}, .padding = Padding::Same},
       Shape{1, 5, 4, 3}},
      {{.filters = 2, .kernel = {1, 1}, .strides = {2, 2}}, Shape{2, 4, 4, 3}},
      {{.filters = 2, .kernel = {2, 2}, .dilation = {2, 2}, .use_bias = false}, Shape{1, 5, 5, 2}},
      {{.filters = 3, .kernel = {3, 3}, .padding = Padding::Same, .activation = "tanh"},
       Shape{1, 4, 4, 2}},
      {{.filters = 3, .kernel = {1, 1}, .activation = "sigmoid"}, Shape{2, 3, 3, 2}},
      {{.filters = 4, .kernel = {2, 2}, .activation = "softmax"}, Shape{1, 3, 3, 2}},
  };
  int i = 0;
  for (const Case& c : cases) {
    Conv2DOptions o = c.o;
    o.bias_initializer = Initializer::random_uniform(-0.5, 0.5, 9);
    auto conv = Conv2D(o);
    conv(Input(c.x.drop_front()));
    EXPECT_TRUE(
        check_layer_grads(*conv, {random_tensor(c.x, 100 + i)}, "case " + std::to_string(i)));
    ++i;
  }
}

TEST_F(LayersConv2D, FusedReluGradient) {
  // ReLU has a kink at 0. With a constant 1x1 kernel of 0.5 and x[..., 1] = x[..., 0], every
  // pre-activation equals x[..., 0], which stays at least 0.2 away from 0.
  auto conv = Conv2D({.filters = 2,
                      .kernel = {1, 1},
                      .activation = "relu",
                      .kernel_initializer = Initializer::constant(0.5)});
  conv(Input({3, 3, 2}));
  std::vector<float> v = testing::away_from_zero(Shape{1, 3, 3, 2}, 3, 0.2f).to_vector();
  for (size_t k = 0; k < v.size(); k += 2) v[k + 1] = v[k];
  EXPECT_TRUE(check_layer_grads(*conv, {Tensor::from_vector(Shape{1, 3, 3, 2}, v)}, "relu 1x1"));
}

TEST_F(LayersConv2D, FrozenLayerComputesNoParamGrads) {
  auto conv = Conv2D({.filters = 2, .trainable = false});
  conv(Input({4, 4, 1}));
  EXPECT_EQ(conv->count_trainable_params(), 0);
  conv->param("kernel").grad = Tensor::full(conv->param("kernel").value.shape(), 5.0f);
  Tensor x = random_tensor(Shape{1, 4, 4, 1}, 1);
  Tensor y = conv->forward({x}, Mode::Training);
  std::vector<Tensor> dx = conv->backward(random_tensor(y.shape(), 2), {true});
  EXPECT_EQ(dx[0].shape(), x.shape());
  for (float g : conv->param("kernel").grad.to_vector()) EXPECT_EQ(g, 5.0f);
  EXPECT_TRUE(check_layer_grads(*conv, {x}, "frozen"));
  // need_dx false: no input gradient.
  conv->forward({x}, Mode::Training);
  EXPECT_FALSE(conv->backward(random_tensor(y.shape(), 2), {false})[0].defined());
}

TEST_F(LayersConv2D, BackwardWithoutTrainingForwardThrows) {
  auto conv = Conv2D({.filters = 2, .name = "c"});
  conv(Input({4, 4, 1}));
  conv->forward({random_tensor(Shape{1, 4, 4, 1}, 1)}, Mode::Inference);
  EXPECT_THROW(conv->backward(Tensor(Shape{1, 2, 2, 2}), {true}), ConfigError);
}

TEST_F(LayersDense, ForwardAndGradients) {
  auto fc = Dense({.units = 3, .bias_initializer = Initializer::random_uniform(-1, 1, 4)});
  EXPECT_EQ(fc(Input({5})).shape(), (Shape{3}));
  Tensor x = random_tensor(Shape{4, 5}, 1);
  Tensor y = fc->forward({x}, Mode::Inference);
  EXPECT_TRUE(
      AllClose(y, ops::dense_forward(x, fc->param("kernel").value, fc->param("bias").value), 1e-6));
  EXPECT_TRUE(check_layer_grads(*fc, {x}, "linear"));

  int i = 0;
  for (const char* act : {"softmax", "sigmoid", "tanh"}) {
    auto d = Dense(
        {.units = 4, .activation = act, .bias_initializer = Initializer::random_uniform(-1, 1, 4)});
    d(Input({6}));
    EXPECT_TRUE(check_layer_grads(*d, {random_tensor(Shape{3, 6}, 10 + i++)}, act));
  }
  auto nobias = Dense({.units = 2, .use_bias = false});
  nobias(Input({3}));
  EXPECT_TRUE(check_layer_grads(*nobias, {random_tensor(Shape{2, 3}, 20)}, "no bias"));
}

TEST_F(LayersDense, SoftmaxRowsSumToOne) {
  auto fc = Dense({.units = 6, .activation = "softmax"});
  fc(Input({8}));
  Tensor y = ops::plain(fc->forward({random_tensor(Shape{3, 8}, 1)}, Mode::Inference));
  for (int n = 0; n < 3; ++n) {
    double s = 0;
    for (int u = 0; u < 6; ++u) s += y.f32()[n * 6 + u];
    EXPECT_NEAR(s, 1.0, 1e-6);
  }
}

}  // namespace
}  // namespace resnet
