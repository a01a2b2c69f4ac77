// Model::set_recompute (activation checkpointing): training with full or pointwise (the default)
// recomputation gives the same weights, moving statistics and losses as without it
// (Recompute::Off), while keeping less activation memory.
#include <gtest/gtest.h>

#include <cstring>

#include "core/allocator.h"
#include "resnet/model.h"
#include "resnet/models.h"
#include "support/allclose.h"
#include "support/same_params.h"

namespace resnet {
namespace {

using testing::expect_same_params;

Tensor random_labels(int64_t n, int64_t classes, uint64_t seed) {
  Rng rng(seed);
  Tensor y = Tensor::empty({n}, DType::I64);
  for (int64_t i = 0; i < n; ++i) y.data<int64_t>()[i] = static_cast<int64_t>(rng.below(classes));
  return y;
}

// Trains `steps` steps on fixed batches; returns the losses.
std::vector<double> train(Model& m, int steps, const Tensor& x, const Tensor& y) {
  std::vector<double> losses;
  for (int i = 0; i < steps; ++i) losses.push_back(m.train_step(x, y));
  return losses;
}

struct TrainRun {
  std::vector<double> losses;
  size_t peak_bytes = 0;  // the most tensor memory live at once during the steps
};

TrainRun run(Model& m, Model::Recompute mode, int steps, const Tensor& x, const Tensor& y) {
  m.set_recompute(mode);
  m.compile({.optimizer = SGD({.common = {.learning_rate = 0.05}, .momentum = 0.9}),
             .loss = "sparse_categorical_crossentropy"});
  detail::reset_peak_memory();
  const size_t live0 = detail::memory_stats().live_bytes;
  TrainRun r;
  r.losses = train(m, steps, x, y);
  r.peak_bytes = detail::memory_stats().peak_live_bytes - live0;
  return r;
}

TEST(Recompute, SameTrainingAsWithoutOnCifarResNet) {
  auto build = [] {
    set_global_seed(7);
    reset_name_counters();
    return cifar_resnet(20, {16, 16, 3}, 5);
  };
  const Tensor x = testing::random_tensor({8, 16, 16, 3}, 1);
  const Tensor y = random_labels(8, 5, 2);
  Model a = build(), b = build();
  const TrainRun plain = run(a, Model::Recompute::Off, 3, x, y);
  const TrainRun recomputed = run(b, Model::Recompute::Full, 3, x, y);
  EXPECT_EQ(b.recompute(), Model::Recompute::Full);
  EXPECT_EQ(plain.losses, recomputed.losses);
  expect_same_params(a, b);
  // Only the block outputs stay from forward to backward: far less activation memory.
  EXPECT_LT(recomputed.peak_bytes, plain.peak_bytes * 3 / 4)
      << recomputed.peak_bytes << " vs " << plain.peak_bytes;
}

TEST(Recompute, SameTrainingAsWithoutOnTheTutorialResNet) {
  auto build = [] {
    set_global_seed(3);
    reset_name_counters();
    return resnet50_tutorial({40, 40, 3}, 6);
  };
  const Tensor x = testing::random_tensor({2, 40, 40, 3}, 4);
  const Tensor y = random_labels(2, 6, 5);
  Model a = build(), b = build();
  const TrainRun plain = run(a, Model::Recompute::Off, 2, x, y);
  const TrainRun recomputed = run(b, Model::Recompute::Full, 2, x, y);
  EXPECT_EQ(plain.losses, recomputed.losses);
  expect_same_params(a, b);
  EXPECT_LT(recomputed.peak_bytes, plain.peak_bytes);
}

TEST(Recompute, PointwiseIsTheDefaultAndTrainsTheSameWithLessMemory) {
  // The tutorial ResNet-50's bottleneck blocks: the 1x1 convolutions' outputs are recomputed
  // in backward instead of kept (the widest activations of each block).
  auto build = [] {
    set_global_seed(3);
    reset_name_counters();
    return resnet50_tutorial({40, 40, 3}, 6);
  };
  const Tensor x = testing::random_tensor({4, 40, 40, 3}, 4);
  const Tensor y = random_labels(4, 6, 5);
  Model a = build(), b = build();
  EXPECT_EQ(b.recompute(), Model::Recompute::Pointwise);  // the default
  const TrainRun plain = run(a, Model::Recompute::Off, 2, x, y);
  const TrainRun pointwise = run(b, Model::Recompute::Pointwise, 2, x, y);
  EXPECT_EQ(plain.losses, pointwise.losses);
  expect_same_params(a, b);
  // At 40x40, batch 4, the weights and the momentum dominate the peak; the 1x1 convolutions'
  // outputs not kept are a few MB of it (at 224x224, batch 32: a third of the peak).
  EXPECT_LT(pointwise.peak_bytes + (size_t{2} << 20), plain.peak_bytes)
      << pointwise.peak_bytes << " vs " << plain.peak_bytes;
}

// A Dropout inside a stretch makes it non-replayable (a replay would draw another mask): kept as
// without recomputation, so the results still match. Frozen layers are not replayed at all.
Model dropout_net(bool freeze) {
  set_global_seed(11);
  reset_name_counters();
  SymTensor in = Input({8, 8, 2});
  SymTensor x = in;
  for (int i = 0; i < 4; ++i) {
    x = Conv2D({.filters = 4, .padding = Padding::Same})(x);
    x = BatchNormalization()(x);
    x = Activation("relu")(x);
    if (i == 1) x = Dropout({.rate = 0.3, .seed = 5})(x);
  }
  x = Flatten()(x);
  x = Dense({.units = 3, .activation = "softmax"})(x);
  Model m(in, x, "chain");
  if (freeze) m.freeze_until("conv2d_1");
  return m;
}

TEST(Recompute, DropoutAndFrozenLayersGiveTheSameResults) {
  const Tensor x = testing::random_tensor({4, 8, 8, 2}, 8);
  const Tensor y = random_labels(4, 3, 9);
  for (bool freeze : {false, true}) {
    Model a = dropout_net(freeze);
    const TrainRun plain = run(a, Model::Recompute::Off, 3, x, y);
    for (auto mode : {Model::Recompute::Full, Model::Recompute::Pointwise}) {
      Model b = dropout_net(freeze);
      const TrainRun recomputed = run(b, mode, 3, x, y);
      EXPECT_EQ(plain.losses, recomputed.losses) << "freeze " << freeze;
      expect_same_params(a, b);
    }
  }
}

TEST(Recompute, BackwardWithoutForwardStillFails) {
  set_global_seed(1);
  reset_name_counters();
  Model m = cifar_resnet(8, {8, 8, 3}, 2);
  m.set_recompute(Model::Recompute::Full);
  EXPECT_THROW(m.backward(Tensor::zeros({1, 2})), ConfigError);
  // Inference is unaffected.
  const Tensor x = testing::random_tensor({1, 8, 8, 3}, 3);
  m.set_recompute(Model::Recompute::Pointwise);
  const Tensor ref = m.forward(x, Mode::Inference).clone();
  m.set_recompute(Model::Recompute::Full);
  const Tensor out = m.forward(x, Mode::Inference);
  EXPECT_EQ(std::memcmp(ref.f32(), out.f32(), ref.numel() * 4), 0);
}

}  // namespace
}  // namespace resnet
