// Dropout: inverted scaling, seeded determinism, identity in inference, gradient = dy * mask.
#include <gtest/gtest.h>

#include "layers/dropout.h"
#include "ops/ops.h"
#include "support/allclose.h"

namespace resnet {
namespace {

class LayersDropout : public ::testing::Test {
 protected:
  void SetUp() override { reset_name_counters(); }
  ops::BackendScope ref_{ops::Backend::Ref};
};

TEST_F(LayersDropout, InvertedScaling) {
  auto d = Dropout({.rate = 0.25, .seed = 3});
  d(Input({100, 100}));
  Tensor x = Tensor::full(Shape{2, 100, 100}, 2.0f);
  Tensor y = ops::plain(d->forward({x}, Mode::Training));
  int64_t kept = 0;
  for (float v : y.to_vector()) {
    ASSERT_TRUE(v == 0.0f || std::abs(v - 2.0f / 0.75f) < 1e-6f) << v;
    kept += v != 0.0f;
  }
  // 20,000 draws: the kept fraction is within 1% of 0.75; the mean is preserved.
  EXPECT_NEAR(static_cast<double>(kept) / x.numel(), 0.75, 0.01);
}

TEST_F(LayersDropout, SeededIsDeterministic) {
  Tensor x = testing::random_tensor(Shape{4, 50}, 1);
  auto a = Dropout({.rate = 0.5, .seed = 11});
  a(Input({50}));
  auto b = Dropout({.rate = 0.5, .seed = 11});
  b(Input({50}));
  Tensor ya1 = a->forward({x}, Mode::Training), ya2 = a->forward({x}, Mode::Training);
  Tensor yb1 = b->forward({x}, Mode::Training);
  EXPECT_EQ(ya1.to_vector(), yb1.to_vector());
  EXPECT_NE(ya1.to_vector(), ya2.to_vector());  // a new mask each step

  // Unseeded layers split from the global generator when connected.
  set_global_seed(5);
  auto c = Dropout();
  c(Input({50}));
  set_global_seed(5);
  auto e = Dropout();
  e(Input({50}));
  EXPECT_EQ(c->forward({x}, Mode::Training).to_vector(),
            e->forward({x}, Mode::Training).to_vector());
}

TEST_F(LayersDropout, InferenceIsIdentity) {
  auto d = Dropout({.rate = 0.9});
  d(Input({10}));
  Tensor x = testing::random_tensor(Shape{3, 10}, 1);
  EXPECT_EQ(ops::plain(d->forward({x}, Mode::Inference)).to_vector(), x.to_vector());
}

TEST_F(LayersDropout, GradientIsMasked) {
  auto d = Dropout({.rate = 0.5, .seed = 2});
  d(Input({4, 4, 3}));
  Tensor x = testing::random_tensor(Shape{2, 4, 4, 3}, 1);
  Tensor y = ops::plain(d->forward({x}, Mode::Training));
  Tensor dy = testing::random_tensor(y.shape(), 2);
  std::vector<Tensor> dx = d->backward(dy, {true});
  ASSERT_EQ(dx.size(), 1u);
  Tensor g = ops::plain(dx[0]);
  for (int64_t i = 0; i < x.numel(); ++i) {
    // y = x * mask, so the mask is y / x (x is never 0 here).
    const float mask = y.f32()[i] / x.f32()[i];
    EXPECT_NEAR(g.f32()[i], dy.f32()[i] * mask, 1e-5f) << i;
  }
  d->clear_saved();
  EXPECT_THROW(d->backward(dy, {true}), ConfigError);
}

TEST_F(LayersDropout, RateOutOfRange) {
  EXPECT_THROW(Dropout({.rate = 1.0}), ConfigError);
  EXPECT_THROW(Dropout({.rate = -0.1}), ConfigError);
  try {
    Dropout({.rate = 1.5, .name = "drop"});
    ADD_FAILURE() << "no exception";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "layer 'drop' (Dropout): rate must be in [0, 1), got 1.5");
  }
}

}  // namespace
}  // namespace resnet
