// BatchNormalization: moving statistics (Keras momentum semantics, Bessel-corrected variance),
// inference mode, frozen layers, gradients.
#include <gtest/gtest.h>

#include <cmath>

#include "layer_gradcheck.h"
#include "layers/batch_normalization.h"
#include "ops/ops.h"
#include "support/allclose.h"

namespace resnet {
namespace {

using testing::AllClose;

class LayersBatchNormalization : public ::testing::Test {
 protected:
  void SetUp() override { reset_name_counters(); }
  ops::BackendScope ref_{ops::Backend::Ref};
};

// x (N=2, H=1, W=2, C=2): channel 0 holds {1, 2, 3, 6}, channel 1 holds {-1, 0, 0, 5}.
Tensor small_batch() { return Tensor::from_vector(Shape{2, 1, 2, 2}, {1, -1, 2, 0, 3, 0, 6, 5}); }

TEST_F(LayersBatchNormalization, MovingStatisticsUpdate) {
  auto bn = BatchNormalization({.name = "bn"});
  bn(Input({1, 2, 2}));
  Tensor y = ops::plain(bn->forward({small_batch()}, Mode::Training));
  // Hand computation. Channel 0: mean 3, biased var (4+1+0+9)/4 = 3.5, unbiased 14/3.
  // Channel 1: mean 1, biased var (4+1+1+16)/4 = 5.5, unbiased 22/3. M = 4.
  const double eps = 1e-3;
  const std::vector<double> mean = {3.0, 1.0}, var = {3.5, 5.5}, unbiased = {14.0 / 3, 22.0 / 3};
  std::vector<float> x = small_batch().to_vector(), expected(8);
  for (int i = 0; i < 8; ++i) {
    expected[i] = static_cast<float>((x[i] - mean[i % 2]) / std::sqrt(var[i % 2] + eps));
  }
  EXPECT_TRUE(AllClose(y, Tensor::from_vector(y.shape(), expected), 1e-5));
  std::vector<float> mm = bn->param("moving_mean").value.to_vector();
  std::vector<float> mv = bn->param("moving_variance").value.to_vector();
  for (int c = 0; c < 2; ++c) {
    EXPECT_NEAR(mm[c], 0.0 * 0.99 + mean[c] * 0.01, 1e-6) << c;
    EXPECT_NEAR(mv[c], 1.0 * 0.99 + unbiased[c] * 0.01, 1e-6) << c;
  }
  // A second step starts from the updated values.
  const uint64_t version = bn->param("moving_mean").value.version();
  bn->forward({small_batch()}, Mode::Training);
  EXPECT_GT(bn->param("moving_mean").value.version(), version);
  mm = bn->param("moving_mean").value.to_vector();
  mv = bn->param("moving_variance").value.to_vector();
  for (int c = 0; c < 2; ++c) {
    const double m1 = mean[c] * 0.01, v1 = 0.99 + unbiased[c] * 0.01;
    EXPECT_NEAR(mm[c], m1 * 0.99 + mean[c] * 0.01, 1e-6) << c;
    EXPECT_NEAR(mv[c], v1 * 0.99 + unbiased[c] * 0.01, 1e-6) << c;
  }
}

TEST_F(LayersBatchNormalization, CustomMomentum) {
  auto bn = BatchNormalization({.momentum = 0.5});
  bn(Input({1, 2, 2}));
  bn->forward({small_batch()}, Mode::Training);
  std::vector<float> mv = bn->param("moving_variance").value.to_vector();
  EXPECT_NEAR(mv[0], 0.5 + 0.5 * 14.0 / 3, 1e-5);
  EXPECT_NEAR(mv[1], 0.5 + 0.5 * 22.0 / 3, 1e-5);
}

TEST_F(LayersBatchNormalization, InferenceUsesMovingStatistics) {
  auto bn = BatchNormalization({.epsilon = 1.001e-5});
  bn(Input({1, 2, 2}));
  bn->param("gamma").value.copy_from(Tensor::from_vector(Shape{2}, {2.0f, 0.5f}));
  bn->param("beta").value.copy_from(Tensor::from_vector(Shape{2}, {0.1f, -0.2f}));
  bn->param("moving_mean").value.copy_from(Tensor::from_vector(Shape{2}, {1.0f, -1.0f}));
  bn->param("moving_variance").value.copy_from(Tensor::from_vector(Shape{2}, {4.0f, 0.25f}));
  const std::vector<float> mm_before = bn->param("moving_mean").value.to_vector();
  Tensor y = ops::plain(bn->forward({small_batch()}, Mode::Inference));
  std::vector<float> x = small_batch().to_vector(), expected(8);
  const double g[2] = {2, 0.5}, b[2] = {0.1, -0.2}, m[2] = {1, -1}, v[2] = {4, 0.25};
  for (int i = 0; i < 8; ++i) {
    const int c = i % 2;
    expected[i] = static_cast<float>(g[c] * (x[i] - m[c]) / std::sqrt(v[c] + 1.001e-5) + b[c]);
  }
  EXPECT_TRUE(AllClose(y, Tensor::from_vector(y.shape(), expected), 1e-5));
  EXPECT_EQ(bn->param("moving_mean").value.to_vector(), mm_before);
}

TEST_F(LayersBatchNormalization, FrozenLayerRunsInInferenceMode) {
  auto bn = BatchNormalization({.trainable = false});
  bn(Input({1, 2, 2}));
  EXPECT_EQ(bn->count_trainable_params(), 0);
  bn->param("moving_mean").value.copy_from(Tensor::from_vector(Shape{2}, {0.5f, 0.25f}));
  bn->param("moving_variance").value.copy_from(Tensor::from_vector(Shape{2}, {2.0f, 3.0f}));
  const std::vector<float> mm = bn->param("moving_mean").value.to_vector();
  const std::vector<float> mv = bn->param("moving_variance").value.to_vector();
  Tensor y_train = ops::plain(bn->forward({small_batch()}, Mode::Training));
  Tensor y_infer = ops::plain(bn->forward({small_batch()}, Mode::Inference));
  EXPECT_EQ(y_train.to_vector(), y_infer.to_vector());
  EXPECT_EQ(bn->param("moving_mean").value.to_vector(), mm);
  EXPECT_EQ(bn->param("moving_variance").value.to_vector(), mv);

  // Backward: the statistics are constants, dx = dy * gamma / sqrt(var + eps); no param grads.
  bn->param("gamma").grad = Tensor::full(bn->param("gamma").value.shape(), 7.0f);
  Tensor dy = testing::random_tensor(Shape{2, 1, 2, 2}, 3);
  bn->forward({small_batch()}, Mode::Training);
  std::vector<Tensor> dx = bn->backward(dy, {true});
  std::vector<float> d = dy.to_vector(), expected(8);
  for (int i = 0; i < 8; ++i) expected[i] = static_cast<float>(d[i] / std::sqrt(mv[i % 2] + 1e-3));
  EXPECT_TRUE(AllClose(dx[0], Tensor::from_vector(dy.shape(), expected), 1e-5));
  for (float g : bn->param("gamma").grad.to_vector()) EXPECT_EQ(g, 7.0f);
  EXPECT_TRUE(testing::check_layer_grads(*bn, {testing::random_tensor(Shape{2, 3, 2, 2}, 4)},
                                         "frozen, stats fixed"));
}

TEST_F(LayersBatchNormalization, ScaleAndCenterOff) {
  auto bn = BatchNormalization(
      {.center = false, .scale = false, .gamma_initializer = Initializer::constant(3)});
  bn(Input({4, 4, 8}));
  EXPECT_EQ(bn->count_params(), 32);  // gamma and beta are kept (fixed at 1 and 0)
  EXPECT_EQ(bn->count_trainable_params(), 0);
  for (float g : bn->param("gamma").value.to_vector()) EXPECT_EQ(g, 1.0f);
  EXPECT_FALSE(bn->param("gamma").trainable);
  EXPECT_TRUE(testing::check_layer_grads(*bn, {testing::random_tensor(Shape{2, 4, 4, 8}, 5)},
                                         "center=false scale=false"));
}

TEST_F(LayersBatchNormalization, GradientsTrainingMode) {
  auto bn = BatchNormalization({.beta_initializer = Initializer::random_uniform(-0.5, 0.5, 2),
                                .gamma_initializer = Initializer::random_uniform(0.5, 1.5, 1)});
  bn(Input({3, 2, 4}));
  EXPECT_TRUE(testing::check_layer_grads(*bn, {testing::random_tensor(Shape{2, 3, 2, 4}, 6)},
                                         "n=2 h=3 w=2 c=4"));
  auto bn2 = BatchNormalization();
  bn2(Input({5}));  // rank-2 batches (after Dense) are normalized per feature too
  EXPECT_TRUE(
      testing::check_layer_grads(*bn2, {testing::random_tensor(Shape{6, 5}, 7)}, "n=6 c=5"));
}

TEST_F(LayersBatchNormalization, ClearSavedDropsState) {
  auto bn = BatchNormalization();
  bn(Input({1, 2, 2}));
  bn->forward({small_batch()}, Mode::Training);
  bn->clear_saved();
  EXPECT_THROW(bn->backward(small_batch(), {true}), ConfigError);
}

}  // namespace
}  // namespace resnet
