// Model::train_step updates each layer's params during backward (as soon as the layer is done)
// unless clipping or a grad-ready hook needs all gradients first: both ways give bit-identical
// weights, and the gradients are released after the step.
#include <gtest/gtest.h>

#include "resnet/model.h"
#include "resnet/models.h"
#include "support/allclose.h"
#include "support/same_params.h"

namespace resnet {
namespace {

using testing::expect_same_params;

Model net() {
  set_global_seed(21);
  reset_name_counters();
  return cifar_resnet(8, {12, 12, 3}, 4);
}

Tensor labels(int64_t n, int64_t classes) {
  Tensor y = Tensor::empty({n}, DType::I64);
  for (int64_t i = 0; i < n; ++i) y.data<int64_t>()[i] = i % classes;
  return y;
}

TEST(TrainStep, PerLayerUpdatesEqualOneUpdateAfterBackward) {
  const Tensor x = testing::random_tensor({6, 12, 12, 3}, 1);
  const Tensor y = labels(6, 4);
  for (const char* opt : {"adam", "sgd", "rmsprop", "adamw"}) {
    Model a = net(), b = net();
    a.compile({.optimizer = make_optimizer(opt), .loss = "sparse_categorical_crossentropy"});
    b.compile({.optimizer = make_optimizer(opt), .loss = "sparse_categorical_crossentropy"});
    // Any grad-ready hook makes train_step update everything after backward (apply()).
    int calls = 0;
    b.set_grad_ready_hook([&](Layer&) { ++calls; });
    std::vector<double> la, lb;
    for (int s = 0; s < 3; ++s) {
      la.push_back(a.train_step(x, y));
      lb.push_back(b.train_step(x, y));
    }
    EXPECT_GT(calls, 0);
    EXPECT_EQ(la, lb) << opt;
    expect_same_params(a, b);
    EXPECT_EQ(a.optimizer().iterations(), 3);
    EXPECT_EQ(b.optimizer().iterations(), 3);
    // Gradients are released after the step, both ways.
    for (Param* p : a.trainable_params()) EXPECT_FALSE(p->grad.defined()) << p->name;
    for (Param* p : b.trainable_params()) EXPECT_FALSE(p->grad.defined()) << p->name;
  }
}

TEST(TrainStep, ClippingUsesAllGradientsAndStillTrains) {
  const Tensor x = testing::random_tensor({6, 12, 12, 3}, 2);
  const Tensor y = labels(6, 4);
  Model m = net();
  auto opt = SGD({.common = {.learning_rate = 0.05, .global_clipnorm = 0.5}});
  EXPECT_FALSE(opt->updates_per_param());
  EXPECT_THROW(opt->begin_step(m.trainable_params()), Error);
  m.compile({.optimizer = opt, .loss = "sparse_categorical_crossentropy"});
  const double first = m.train_step(x, y);
  double last = first;
  for (int s = 0; s < 8; ++s) last = m.train_step(x, y);
  EXPECT_LT(last, first);
}

TEST(TrainStep, BackwardStillLeavesGradientsForInspection) {
  Model m = net();
  const Tensor x = testing::random_tensor({2, 12, 12, 3}, 3);
  const Tensor out = m.forward(x, Mode::Training);
  m.backward(testing::random_tensor(out.shape(), 4));
  for (Param* p : m.trainable_params()) {
    ASSERT_TRUE(p->grad.defined()) << p->name;
    EXPECT_EQ(p->grad.shape(), p->value.shape());
  }
  // The optimizer refuses params without gradients (apply after a train_step released them).
  m.compile({.optimizer = Adam(), .loss = "sparse_categorical_crossentropy"});
  m.train_step(x, labels(2, 4));
  EXPECT_THROW(m.optimizer().apply(m.trainable_params()), Error);
}

}  // namespace
}  // namespace resnet
