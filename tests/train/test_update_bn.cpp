// update_bn: moving statistics become the average of the per-batch statistics.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "layers/batch_normalization.h"
#include "resnet/model.h"
#include "resnet/models.h"
#include "resnet/optim.h"

namespace resnet {
namespace {

Dataset float_data(int64_t n, uint64_t seed) {
  Rng rng(seed);
  Dataset d;
  d.x = Tensor::empty({n, 3, 3, 2});
  d.y = Tensor::zeros({n}, DType::I64);
  d.num_classes = 2;
  d.source = "synthetic";
  for (int64_t i = 0; i < d.x.numel(); ++i) {
    d.x.f32()[i] = static_cast<float>(rng.normal(i % 2 ? 3.0 : -1.0, i % 2 ? 0.5 : 2.0));
  }
  return d;
}

// Mean and Bessel-corrected variance of channel c over samples [b, e).
std::pair<double, double> stats(const Dataset& d, int64_t b, int64_t e, int c) {
  double s = 0, ss = 0;
  int64_t m = 0;
  for (int64_t i = b * 9; i < e * 9; ++i) {
    const double v = d.x.f32()[i * 2 + c];
    s += v;
    ss += v * v;
    ++m;
  }
  const double mean = s / m;
  return {mean, (ss / m - mean * mean) * m / (m - 1)};
}

const float* values(const Model& m, const char* layer, const char* param) {
  return m.layer(layer).param(param).value.f32();
}

Model bn_model(bool trainable) {
  reset_name_counters();
  SymTensor in = Input({3, 3, 2});
  SymTensor x = BatchNormalization({.name = "bn"})(in);
  Model m(in, x, "bn_only");
  m.layer("bn").set_trainable(trainable);
  return m;
}

const Preprocess kNone{.mode = Preprocess::Mode::None};

TEST(UpdateBn, MovingStatisticsAreTheMeanOfTheBatchStatistics) {
  Model m = bn_model(true);
  const Dataset d = float_data(10, 3);  // batches of 4, 4 and 2 samples
  EXPECT_EQ(update_bn(m, d, {.batch_size = 4, .preprocess = kNone}), 3);
  for (int c = 0; c < 2; ++c) {
    double mean = 0, var = 0;
    for (auto [b, e] : {std::pair<int64_t, int64_t>{0, 4}, {4, 8}, {8, 10}}) {
      const auto [bm, bv] = stats(d, b, e, c);
      mean += bm / 3;
      var += bv / 3;
    }
    EXPECT_NEAR(values(m, "bn", "moving_mean")[c], mean, 1e-5 * (1 + std::abs(mean))) << c;
    EXPECT_NEAR(values(m, "bn", "moving_variance")[c], var, 1e-5 * (1 + var)) << c;
  }
  // The momentum is restored, gamma and beta are untouched.
  EXPECT_DOUBLE_EQ(dynamic_cast<layers::BatchNormalization&>(m.layer("bn")).options().momentum,
                   0.99);
  EXPECT_EQ(values(m, "bn", "gamma")[0], 1.0f);
  EXPECT_EQ(values(m, "bn", "beta")[1], 0.0f);
}

TEST(UpdateBn, MaxBatchesLimitsThePass) {
  Model m = bn_model(true);
  const Dataset d = float_data(10, 4);
  EXPECT_EQ(update_bn(m, d, {.batch_size = 4, .max_batches = 1, .preprocess = kNone}), 1);
  const auto [bm, bv] = stats(d, 0, 4, 1);
  EXPECT_NEAR(values(m, "bn", "moving_mean")[1], bm, 1e-5 * (1 + std::abs(bm)));
  EXPECT_NEAR(values(m, "bn", "moving_variance")[1], bv, 1e-5 * (1 + bv));
}

TEST(UpdateBn, FrozenBatchNormalizationKeepsItsStatistics) {
  Model m = bn_model(false);
  EXPECT_EQ(update_bn(m, float_data(8, 5), {.batch_size = 4, .preprocess = kNone}), 0);
  EXPECT_EQ(values(m, "bn", "moving_mean")[0], 0.0f);
  EXPECT_EQ(values(m, "bn", "moving_variance")[0], 1.0f);
}

TEST(UpdateBn, FitOptionMakesInferenceMatchTheFinalBatchStatistics) {
  // One batch per epoch: after update_bn the moving statistics are exactly that batch's, so the
  // inference-mode output equals the training-mode output up to the Bessel correction.
  reset_name_counters();
  SymTensor in = Input({3, 3, 2});
  SymTensor x = BatchNormalization({.name = "bn"})(in);
  x = GlobalAveragePooling2D()(x);
  x = Dense({.units = 2, .activation = "softmax"})(x);
  Model m(in, x, "bn_head");
  m.compile({.optimizer = SGD({.common = {.learning_rate = 0.0}}),
             .loss = "sparse_categorical_crossentropy"});
  const Dataset d = float_data(6, 6);
  std::ostringstream out;
  m.fit(d, {.epochs = 1,
            .batch_size = 6,
            .verbose = 0,
            .out = &out,
            .preprocess = kNone,
            .update_bn = true});
  const auto [bm, bv] = stats(d, 0, 6, 0);
  EXPECT_NEAR(values(m, "bn", "moving_mean")[0], bm, 1e-5 * (1 + std::abs(bm)));
  EXPECT_NEAR(values(m, "bn", "moving_variance")[0], bv, 1e-5 * (1 + bv));
}

TEST(UpdateBn, RejectsABadBatchSize) {
  Model m = bn_model(true);
  EXPECT_THROW(update_bn(m, float_data(4, 1), {.batch_size = 0}), ConfigError);
}

}  // namespace
}  // namespace resnet
