// compile / fit / evaluate / predict end to end on small synthetic data.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "resnet/model.h"
#include "resnet/models.h"
#include "support/temp_dir.h"

namespace resnet {
namespace {

// Images whose mean brightness encodes the class: learnable in a few steps.
Dataset synthetic(int64_t n, int64_t classes, uint64_t seed) {
  Rng rng(seed);
  Dataset d;
  d.x = Tensor::empty({n, 8, 8, 1}, DType::U8);
  d.y = Tensor::empty({n}, DType::I64);
  d.num_classes = classes;
  d.source = "synthetic";
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = static_cast<int64_t>(rng.below(classes));
    d.y.data<int64_t>()[i] = label;
    for (int64_t j = 0; j < 64; ++j) {
      const double v = 40.0 + 60.0 * label + rng.normal(0, 20);
      d.x.data<uint8_t>()[i * 64 + j] = static_cast<uint8_t>(std::clamp(v, 0.0, 255.0));
    }
  }
  return d;
}

Model small_net(uint64_t seed) {
  set_global_seed(seed);
  reset_name_counters();
  SymTensor in = Input({8, 8, 1});
  SymTensor x = Conv2D({.filters = 8, .padding = Padding::Same})(in);
  // Momentum 0.9: the moving statistics settle within the few dozen steps of these tests (with
  // Keras's 0.99 inference-mode accuracy lags for hundreds of steps).
  x = BatchNormalization({.momentum = 0.9})(x);
  x = Activation("relu")(x);
  x = GlobalAveragePooling2D()(x);
  x = Dense({.units = 3, .activation = "softmax"})(x);
  return Model(in, x, "small");
}

class CountBatches : public Callback {
 public:
  void on_batch_end(int, int64_t, const Logs&, TrainContext&) override { ++batches; }
  int64_t batches = 0;
};

TEST(Fit, EvaluatingNoSamplesIsAnErrorNotALossOfZero) {
  Model m = small_net(3);
  m.compile({.optimizer = make_optimizer("sgd"), .loss = "sparse_categorical_crossentropy"});
  Dataset empty = synthetic(0, 3, 1);
  empty.source = "empty.h5";
  try {
    m.evaluate(empty, {.verbose = 0});
    FAIL() << "evaluate of 0 samples returned";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("empty.h5"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("no samples"), std::string::npos) << e.what();
  }
}

TEST(Fit, LastPartialBatchIsUsed) {
  Model m = small_net(1);
  m.compile({.optimizer = Adam(), .loss = "sparse_categorical_crossentropy"});
  auto counter = std::make_shared<CountBatches>();
  std::ostringstream out;
  m.fit(synthetic(1080, 3, 2),
        {.epochs = 1, .batch_size = 32, .callbacks = {counter}, .out = &out});
  EXPECT_EQ(counter->batches, 34);  // 1080 / 32 rounded up, as Keras
  EXPECT_NE(out.str().find("Epoch 1/1\n34/34 [==============================]"), std::string::npos)
      << out.str();
}

TEST(Fit, LossFallsAndAccuracyRises) {
  Model m = small_net(1);
  m.compile({.optimizer = Adam({.common = {.learning_rate = 0.01}}),
             .loss = "sparse_categorical_crossentropy"});
  std::ostringstream out;
  History h = m.fit(synthetic(512, 3, 3), {.epochs = 4, .batch_size = 32, .out = &out, .seed = 5});
  ASSERT_EQ(h.values["loss"].size(), 4u);
  EXPECT_LT(h.values["loss"].back(), 0.7 * h.values["loss"].front());
  Logs r = m.evaluate(synthetic(256, 3, 4), {.verbose = 0});
  EXPECT_GT(r["accuracy"], 0.9);
  EXPECT_EQ(m.predict(synthetic(5, 3, 6).x.to_f32(), 2).shape(), (Shape{5, 3}));
}

TEST(Fit, SameSeedSameLosses) {
  auto run = [] {
    Model m = small_net(7);
    m.compile({.optimizer = SGD({.common = {.learning_rate = 0.05}, .momentum = 0.9}),
               .loss = "sparse_categorical_crossentropy"});
    std::ostringstream out;
    AugmentOptions aug{.width_shift_range = 0.1, .horizontal_flip = true};
    return m
        .fit(synthetic(300, 3, 8),
             {.epochs = 2, .batch_size = 16, .out = &out, .augment = aug, .seed = 11})
        .values["loss"];
  };
  EXPECT_EQ(run(), run());
}

TEST(Fit, ValidationSplitHoldsOutTheLastFraction) {
  Dataset d = synthetic(200, 3, 9);
  Model m = small_net(2);
  m.compile({.optimizer = Adam(), .loss = "sparse_categorical_crossentropy"});
  std::ostringstream out;
  History h = m.fit(d, {.epochs = 1, .batch_size = 32, .validation_split = 0.25, .out = &out});
  // Keras: split_at = floor(200 * 0.75) = 150; validation is samples [150, 200).
  Logs r = m.evaluate(d.slice(150, 200), {.verbose = 0});
  ASSERT_EQ(h.values["val_loss"].size(), 1u);
  EXPECT_NEAR(h.values["val_loss"][0], r["loss"], 1e-6);
  EXPECT_NEAR(h.values["val_accuracy"][0], r["accuracy"], 1e-9);
  EXPECT_NE(out.str().find(" - val_loss: "), std::string::npos);
}

TEST(Fit, FusedSoftmaxLossMatchesTheProbabilityLoss) {
  // With moderate logits the fused (from logits) and the clipped probability losses agree.
  Dataset d = synthetic(64, 3, 10);
  Model m = small_net(3);
  m.compile({.optimizer = Adam(), .loss = "sparse_categorical_crossentropy"});
  Logs r = m.evaluate(d, {.verbose = 0});
  Tensor x = d.x.to_f32();
  for (float& v : x.span<float>()) v /= 255.0f;
  Tensor p = m.predict(x);
  LossValue direct = compute_loss(LossKind::SparseCategoricalCrossentropy, p, d.y);
  EXPECT_NEAR(r["loss"], direct.loss, 1e-5);
}

TEST(Fit, EarlyStoppingStopsAndRestores) {
  Model m = small_net(4);
  m.compile({.optimizer = SGD({.common = {.learning_rate = 1e-9}}),
             .loss = "sparse_categorical_crossentropy"});
  std::ostringstream out;
  History h =
      m.fit(synthetic(64, 3, 12),
            {.epochs = 20,
             .batch_size = 32,
             .callbacks = {EarlyStopping({.monitor = "loss", .min_delta = 1.0, .patience = 2})},
             .out = &out});
  EXPECT_EQ(h.epochs.size(), 3u) << out.str();
  EXPECT_NE(out.str().find("Epoch 3: early stopping"), std::string::npos) << out.str();
}

TEST(Fit, TrainingBeforeCompileIsAnError) {
  Model m = small_net(5);
  try {
    m.fit(synthetic(8, 3, 1));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("compile()"), std::string::npos);
  }
}

}  // namespace
}  // namespace resnet

namespace resnet {
namespace {

TEST(Fit, KerasStyleArraysWithOneHotTargets) {
  Dataset d = synthetic(96, 3, 21);
  Tensor x = d.x.to_f32();
  for (float& v : x.span<float>()) v /= 255.0f;  // X_train = X_train_orig / 255.
  Tensor y = one_hot(d.y, 3);                    // Y_train = convert_to_one_hot(...)
  Model m = small_net(6);
  m.compile({.optimizer = Adam(), .loss = "categorical_crossentropy"});
  std::ostringstream out;
  History h = m.fit(x, y, {.epochs = 2, .batch_size = 32, .out = &out});
  EXPECT_EQ(h.values["loss"].size(), 2u);
  // The same numbers through the Dataset path (which rescales uint8 by 1/255).
  Logs a = m.evaluate(x, y, {.verbose = 0});
  Logs b = m.evaluate(d, {.verbose = 0});
  EXPECT_NEAR(a["loss"], b["loss"], 1e-6);
  Tensor soft = y.clone();
  soft.f32()[0] = 0.5f;
  EXPECT_THROW(m.fit(x, soft, {.out = &out}), ConfigError);
}

}  // namespace
}  // namespace resnet

#include "resnet/io.h"

namespace resnet {
namespace {

TEST(Fit, ResumeFromASavedFileContinuesWithTheSameLosses) {
  const Dataset d = synthetic(200, 3, 31);
  const FitOptions base{.batch_size = 32, .augment = {.horizontal_flip = true}, .seed = 4};
  std::ostringstream out;
  auto fresh = [] {
    Model m = small_net(8);
    m.compile({.optimizer = Adam({.common = {.learning_rate = 0.01}}),
               .loss = "sparse_categorical_crossentropy"});
    return m;
  };
  FitOptions two = base;
  two.epochs = 2;
  two.out = &out;
  Model straight = fresh();
  const std::vector<double> expected = straight.fit(d, two).values["loss"];

  const resnet::testing::TempDir tmp("resnet_fit");
  const std::string path = tmp.file("resume_test.rnw");
  {
    Model first = fresh();
    FitOptions one = base;
    one.epochs = 1;
    one.out = &out;
    first.fit(d, one);
    save_weights(first, path, {.include_optimizer = true});
  }
  Model resumed = fresh();
  load_weights(resumed, path);
  EXPECT_EQ(resumed.optimizer().iterations(), 7);  // 200 / 32 rounded up
  FitOptions rest = two;
  rest.initial_epoch = 1;
  const std::vector<double> got = resumed.fit(d, rest).values["loss"];
  ASSERT_EQ(got.size(), 1u);
  EXPECT_NEAR(got[0], expected[1], 1e-6 * std::abs(expected[1]));
  std::remove(path.c_str());
}

}  // namespace
}  // namespace resnet
