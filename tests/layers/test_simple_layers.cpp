// Activation, ReLU, LeakyReLU, Add, ZeroPadding2D, Flatten, InputLayer: values and gradients.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>

#include "layer_gradcheck.h"
#include "layers/activation.h"
#include "layers/add.h"
#include "layers/flatten.h"
#include "layers/input_layer.h"
#include "layers/leaky_re_lu.h"
#include "layers/re_lu.h"
#include "layers/zero_padding2d.h"
#include "ops/ops.h"
#include "support/allclose.h"

namespace resnet {
namespace {

using testing::AllClose;
using testing::away_from_zero;
using testing::check_layer_grads;
using testing::random_tensor;

class LayersSimple : public ::testing::Test {
 protected:
  void SetUp() override { reset_name_counters(); }
  ops::BackendScope ref_{ops::Backend::Ref};
};

TEST_F(LayersSimple, ActivationValues) {
  Tensor x = Tensor::from_vector(Shape{1, 3}, {-1.0f, 0.5f, 2.0f});
  auto relu = Activation("relu");
  relu(Input({3}));
  EXPECT_EQ(ops::plain(relu->forward({x}, Mode::Inference)).to_vector(),
            (std::vector<float>{0.0f, 0.5f, 2.0f}));
  auto sig = Activation("sigmoid");
  sig(Input({3}));
  EXPECT_NEAR(ops::plain(sig->forward({x}, Mode::Inference)).f32()[2], 1 / (1 + std::exp(-2.0)),
              1e-6);
  auto lin = Activation("linear");
  lin(Input({3}));
  EXPECT_EQ(ops::plain(lin->forward({x}, Mode::Inference)).to_vector(), x.to_vector());
  auto sm = Activation("softmax");
  sm(Input({3}));
  std::vector<float> p = ops::plain(sm->forward({x}, Mode::Inference)).to_vector();
  const double z = std::exp(-1.0) + std::exp(0.5) + std::exp(2.0);
  EXPECT_NEAR(p[0], std::exp(-1.0) / z, 1e-6);
  EXPECT_NEAR(p[2], std::exp(2.0) / z, 1e-6);
}

TEST_F(LayersSimple, ActivationGradients) {
  int i = 0;
  for (const char* kind : {"relu", "sigmoid", "tanh", "linear", "softmax"}) {
    auto a = Activation(kind);
    a(Input({3, 3, 4}));
    EXPECT_TRUE(check_layer_grads(*a, {away_from_zero(Shape{2, 3, 3, 4}, 50 + i++)}, kind));
  }
  auto r = ReLU();
  r(Input({4, 5}));
  EXPECT_TRUE(check_layer_grads(*r, {away_from_zero(Shape{2, 4, 5}, 60)}, "ReLU"));
}

TEST_F(LayersSimple, LeakyReLUValuesAndGradients) {
  const Tensor x = Tensor::from_vector(Shape{1, 4}, {-2.0f, -0.5f, 1.0f, 3.0f});
  auto dflt = LeakyReLU();
  dflt(Input({4}));
  EXPECT_DOUBLE_EQ(dflt->negative_slope(), 0.3);  // Keras's default
  EXPECT_TRUE(AllClose(ops::plain(dflt->forward({x}, Mode::Inference)),
                       Tensor::from_vector(Shape{1, 4}, {-0.6f, -0.15f, 1.0f, 3.0f}), 1e-6));
  for (double slope : {0.3, 0.0, 2.0}) {
    auto l = LeakyReLU({.negative_slope = slope});
    l(Input({3, 3, 5}));
    EXPECT_TRUE(check_layer_grads(*l, {away_from_zero(Shape{2, 3, 3, 5}, 61)},
                                  fmt::format("LeakyReLU slope {}", slope)));
  }
  // The same on oneDNN (blocked layouts stay blocked).
  {
    ops::BackendScope dnn(ops::Backend::OneDnn);
    auto l = LeakyReLU({.negative_slope = 0.2});
    l(Input({4}));
    EXPECT_TRUE(AllClose(ops::plain(l->forward({x}, Mode::Training)),
                         Tensor::from_vector(Shape{1, 4}, {-0.4f, -0.1f, 1.0f, 3.0f}), 1e-6));
    const Tensor dy = Tensor::from_vector(Shape{1, 4}, {1.0f, 2.0f, 3.0f, 4.0f});
    EXPECT_TRUE(AllClose(ops::plain(l->backward(dy, {true})[0]),
                         Tensor::from_vector(Shape{1, 4}, {0.2f, 0.4f, 3.0f, 4.0f}), 1e-6));
  }
  EXPECT_THROW(LeakyReLU({.negative_slope = -0.1}), ConfigError);
  EXPECT_THROW(LeakyReLU({.negative_slope = std::nan("")}), ConfigError);
}

TEST_F(LayersSimple, AddValuesAndGradients) {
  SymTensor a = Input({2, 2, 3}), b = Input({2, 2, 3}), c = Input({2, 2, 3});
  auto add = Add();
  EXPECT_EQ(add({a, b, c}).shape(), (Shape{2, 2, 3}));
  Tensor x0 = random_tensor(Shape{2, 2, 2, 3}, 1), x1 = random_tensor(Shape{2, 2, 2, 3}, 2),
         x2 = random_tensor(Shape{2, 2, 2, 3}, 3);
  Tensor y = ops::plain(add->forward({x0, x1, x2}, Mode::Inference));
  for (int64_t i = 0; i < y.numel(); ++i) {
    EXPECT_NEAR(y.f32()[i], x0.f32()[i] + x1.f32()[i] + x2.f32()[i], 1e-6);
  }
  EXPECT_TRUE(check_layer_grads(*add, {x0, x1, x2}, "three inputs"));
  Tensor dy = random_tensor(y.shape(), 4);
  add->forward({x0, x1, x2}, Mode::Training);
  std::vector<Tensor> dx = add->backward(dy, {true, false, true});
  ASSERT_EQ(dx.size(), 3u);
  EXPECT_TRUE(AllClose(dx[0], dy, 0));
  EXPECT_FALSE(dx[1].defined());
  EXPECT_TRUE(AllClose(dx[2], dy, 0));
}

TEST_F(LayersSimple, ZeroPadding) {
  auto pad = ZeroPadding2D({.padding = {1, 0, 2, 1}});
  EXPECT_EQ(pad(Input({2, 3, 2})).shape(), (Shape{3, 6, 2}));
  Tensor x = random_tensor(Shape{1, 2, 3, 2}, 1);
  Tensor y = ops::plain(pad->forward({x}, Mode::Inference));
  EXPECT_EQ(y.shape(), (Shape{1, 3, 6, 2}));
  EXPECT_EQ(y.f32()[0], 0.0f);                      // top row
  EXPECT_EQ(y.f32()[(1 * 6 + 2) * 2], x.f32()[0]);  // first real pixel at (1, 2)
  EXPECT_TRUE(check_layer_grads(*pad, {x}, "pad 1,0,2,1"));
  EXPECT_THROW(ZeroPadding2D({.padding = {-1, 0, 0, 0}}), ConfigError);
}

TEST_F(LayersSimple, Flatten) {
  auto flat = Flatten();
  EXPECT_EQ(flat(Input({2, 3, 4})).shape(), (Shape{24}));
  Tensor x = random_tensor(Shape{2, 2, 3, 4}, 1);
  Tensor y = flat->forward({x}, Mode::Inference);
  EXPECT_EQ(y.shape(), (Shape{2, 24}));
  EXPECT_EQ(ops::plain(y).to_vector(), x.to_vector());  // NHWC row-major order is kept
  EXPECT_TRUE(check_layer_grads(*flat, {x}, "flatten"));
}

TEST_F(LayersSimple, InputIsIdentity) {
  SymTensor in = Input({3});
  Tensor x = random_tensor(Shape{2, 3}, 1);
  std::vector<Tensor> dx = in.layer().backward(x, {true});
  ASSERT_EQ(dx.size(), 1u);
  EXPECT_TRUE(dx[0].shares_storage(x));
  EXPECT_EQ(in.layer().count_params(), 0);
  EXPECT_EQ(in.layer().min_inputs(), 0);
}

}  // namespace
}  // namespace resnet

namespace resnet {
namespace {

// y = w * x with a scalar parameter w; `bug` selects a deliberate mistake in backward.
class ScaleForTest : public Layer {
 public:
  enum class Bug { None, WrongInputGrad, ParamGradNotWritten };
  explicit ScaleForTest(Bug bug) : Layer("ScaleForTest", ""), bug_(bug) {}
  Shape infer(const std::vector<Shape>& in) const override { return in[0]; }
  void build(const std::vector<Shape>&) override {
    add_param("w", Shape{1}, Initializer::constant(1.5), 1, 1, true);
  }
  Tensor forward(const std::vector<Tensor>& in, Mode) override {
    x_ = ops::plain(in[0]);
    Tensor y = Tensor::empty(x_.shape());
    for (int64_t i = 0; i < y.numel(); ++i) y.f32()[i] = w() * x_.f32()[i];
    return y;
  }
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>&) override {
    Tensor d = ops::plain(dy), dx = Tensor::empty(d.shape());
    double dw = 0;
    for (int64_t i = 0; i < d.numel(); ++i) {
      dx.f32()[i] = (bug_ == Bug::WrongInputGrad ? 1.0f : w()) * d.f32()[i];
      dw += d.f32()[i] * x_.f32()[i];
    }
    if (bug_ != Bug::ParamGradNotWritten) param("w").grad.f32()[0] = static_cast<float>(dw);
    return {dx};
  }

 private:
  float w() { return param("w").value.f32()[0]; }
  Bug bug_;
  Tensor x_;
};

TEST(LayersGradCheck, CatchesWrongAndUnwrittenGradients) {
  ops::BackendScope ref(ops::Backend::Ref);
  const Tensor x = random_tensor(Shape{2, 3}, 1);
  for (auto bug : {ScaleForTest::Bug::None, ScaleForTest::Bug::WrongInputGrad,
                   ScaleForTest::Bug::ParamGradNotWritten}) {
    auto layer = std::make_shared<ScaleForTest>(bug);
    (*layer)(Input({3}));
    ::testing::AssertionResult r = check_layer_grads(*layer, {x}, "scale");
    EXPECT_EQ(static_cast<bool>(r), bug == ScaleForTest::Bug::None) << r.message();
  }
}

}  // namespace
}  // namespace resnet
