// Model::train_step updates each layer's params during backward (as soon as the layer is done)
// unless clipping needs all gradients first: that gives the weights one update after backward
// gives, bit for bit, and the gradients are released after the step. Grad-ready hooks of the
// user's own run beside the per-layer updates.
#include <gtest/gtest.h>

#include "resnet/model.h"
#include "resnet/models.h"
#include "resnet/optim.h"
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

Tensor one_hot(int64_t n, int64_t classes) {
  Tensor y = Tensor::zeros({n, classes});
  for (int64_t i = 0; i < n; ++i) y.f32()[i * classes + i % classes] = 1.0f;
  return y;
}

TEST(TrainStep, PerLayerUpdatesEqualOneUpdateAfterBackward) {
  // Mean squared error: train_step's loss is then exactly compute_loss on the output (no fused
  // softmax), so model b can take the same step by hand: forward, backward, apply().
  const Tensor x = testing::random_tensor({6, 12, 12, 3}, 1);
  const Tensor y = one_hot(6, 4);
  for (const char* opt : {"adam", "sgd", "rmsprop", "adamw"}) {
    Model a = net(), b = net();
    a.compile({.optimizer = make_optimizer(opt), .loss = "mean_squared_error"});
    b.compile({.optimizer = make_optimizer(opt), .loss = "mean_squared_error"});
    std::vector<double> la, lb;
    for (int s = 0; s < 3; ++s) {
      la.push_back(a.train_step(x, y));
      const Tensor out = b.forward(x, Mode::Training);
      const LossValue lv = compute_loss(LossKind::MeanSquaredError, out, y);
      b.backward(lv.grad);
      b.optimizer().apply(b.trainable_params());
      for (Param* p : b.trainable_params()) p->grad = Tensor();
      lb.push_back(lv.loss);
    }
    EXPECT_EQ(la, lb) << opt;
    expect_same_params(a, b);
    EXPECT_EQ(a.optimizer().iterations(), 3);
    EXPECT_EQ(b.optimizer().iterations(), 3);
    for (Param* p : a.trainable_params()) EXPECT_FALSE(p->grad.defined()) << p->name;
  }
}

TEST(TrainStep, GradReadyHooksRunBesidePerLayerUpdates) {
  const Tensor x = testing::random_tensor({6, 12, 12, 3}, 3);
  const Tensor y = labels(6, 4);
  Model a = net(), b = net();
  a.compile({.optimizer = make_optimizer("adam"), .loss = "sparse_categorical_crossentropy"});
  b.compile({.optimizer = make_optimizer("adam"), .loss = "sparse_categorical_crossentropy"});
  // Two hooks of the user's own: each sees every trainable layer's gradients before the
  // per-layer update releases them. Removing one leaves the other.
  int first = 0, second = 0, without_grad = 0;
  const Model::HookId h1 = b.add_grad_ready_hook([&](Layer& l) {
    ++first;
    for (const Param& p : l.params()) {
      if (p.trainable && !p.grad.defined()) ++without_grad;
    }
  });
  b.add_grad_ready_hook([&](Layer&) { ++second; });
  EXPECT_EQ(a.train_step(x, y), b.train_step(x, y));
  const int layers = static_cast<int>(b.layers().size());
  EXPECT_EQ(first, layers);
  EXPECT_EQ(second, layers);
  EXPECT_EQ(without_grad, 0);
  b.remove_grad_ready_hook(h1);
  EXPECT_EQ(a.train_step(x, y), b.train_step(x, y));
  EXPECT_EQ(first, layers);
  EXPECT_EQ(second, 2 * layers);
  expect_same_params(a, b);
  for (Param* p : b.trainable_params()) EXPECT_FALSE(p->grad.defined()) << p->name;
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
