// Five training steps of Dense(6->5, relu) -> Dense(5->3, softmax) with categorical
// cross-entropy, against PyTorch (tests/reference/generate_optimizer_fixtures.py): the loss before
// every step and the final weights, for each optimizer and both backends.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "ops/ops.h"
#include "resnet/layers.h"
#include "resnet/model.h"
#include "resnet/optim.h"
#include "support/allclose.h"
#include "support/fixtures.h"

namespace resnet {
namespace {

using testing::Fixture;
using testing::load_fixture;
using testing::max_rel_error;

// Float32 against float64 reaches ~1e-7 here. The weight tolerance is tight enough to tell Keras's
// Adam from torch.optim.Adam (epsilon added to sqrt(v) vs sqrt(v / (1 - b2^t))): ~5e-5 apart.
constexpr double kLossTol = 1e-6;    // relative, per step
constexpr double kWeightTol = 1e-5;  // max_rel_error of each final weight tensor

const std::vector<std::pair<std::string, std::string>> kParams = {
    {"dense_1", "kernel"}, {"dense_1", "bias"}, {"dense_2", "kernel"}, {"dense_2", "bias"}};

struct Case {
  std::string fixture;
  std::function<std::shared_ptr<Optimizer>()> make;
  bool sparse_targets;  // int64 labels instead of the one-hot rows
};

std::string case_name(const ::testing::TestParamInfo<std::tuple<Case, ops::Backend>>& info) {
  const auto& [c, b] = info.param;
  return c.fixture + (c.sparse_targets ? "_sparse_" : "_") + ops::backend_name(b);
}

// The one-hot rows as int64 labels.
Tensor to_labels(const Tensor& onehot) {
  const int64_t n = onehot.shape()[0], c = onehot.shape()[1];
  Tensor t = Tensor::zeros(Shape{n}, DType::I64);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < c; ++j) {
      if (onehot.f32()[i * c + j] == 1.0f) t.data<int64_t>()[i] = j;
    }
  }
  return t;
}

class OptimPyTorch : public ::testing::TestWithParam<std::tuple<Case, ops::Backend>> {};

TEST_P(OptimPyTorch, FiveStepsMatch) {
  const auto& [c, backend] = GetParam();
  ops::BackendScope scope(backend);
  reset_name_counters();
  const Fixture fx = load_fixture("optim_" + c.fixture);
  const Tensor& x = fx.at("input");
  const Tensor targets = c.sparse_targets ? to_labels(fx.at("targets")) : fx.at("targets");

  auto in = Input(Shape{x.shape()[1]}, "input_1");
  auto h = Dense({.units = 5, .activation = "relu", .name = "dense_1"})(in);
  auto out = Dense({.units = 3, .activation = "softmax", .name = "dense_2"})(h);
  Model model(in, out, "mlp");
  for (const auto& [layer, param] : kParams) {
    model.layer(layer).param(param).value.copy_from(fx.at(layer + "/" + param));
  }

  auto opt = c.make();
  const Tensor& expected_losses = fx.at("losses");
  const int64_t steps = expected_losses.numel();
  double worst_loss = 0.0;
  for (int64_t step = 0; step < steps; ++step) {
    const Tensor y = model.forward(x, Mode::Training);
    const LossValue lv = compute_loss(LossKind::CategoricalCrossentropy, y, targets);
    const double expected = expected_losses.f32()[step];
    const double rel = std::abs(lv.loss - expected) / std::max(std::abs(expected), 1e-30);
    worst_loss = std::max(worst_loss, rel);
    EXPECT_LE(rel, kLossTol) << "step " << step << ": loss " << lv.loss << ", PyTorch " << expected;
    model.backward(lv.grad);
    opt->apply(model.trainable_params());
  }
  EXPECT_EQ(opt->iterations(), steps);

  double worst_weight = 0.0;
  for (const auto& [layer, param] : kParams) {
    const std::string name = layer + "/" + param;
    const Tensor& actual = model.layer(layer).param(param).value;
    const Tensor& expected = fx.at("final/" + name);
    const double err = max_rel_error(actual, expected);
    worst_weight = std::max(worst_weight, err);
    EXPECT_LE(err, kWeightTol) << name;
  }
  std::printf("[ %s ] max rel. error: losses %.3g, final weights %.3g\n",
              case_name({GetParam(), 0}).c_str(), worst_loss, worst_weight);
}

const std::vector<Case> kCases = {
    {"adam", [] { return Adam({.common = {.learning_rate = 0.01}}); }, false},
    {"adam", [] { return Adam({.common = {.learning_rate = 0.01}}); }, true},
    {"adamw", [] { return AdamW({.common = {.learning_rate = 0.01, .weight_decay = 0.1}}); },
     false},
    {"sgd_momentum", [] { return SGD({.common = {.learning_rate = 0.1}, .momentum = 0.9}); },
     false},
    {"sgd_nesterov",
     [] { return SGD({.common = {.learning_rate = 0.1}, .momentum = 0.9, .nesterov = true}); },
     false},
    {"rmsprop",
     [] {
       return RMSprop(
           {.common = {.learning_rate = 0.01}, .rho = 0.9, .momentum = 0.5, .centered = true});
     },
     false},
};

INSTANTIATE_TEST_SUITE_P(Optim, OptimPyTorch,
                         ::testing::Combine(::testing::ValuesIn(kCases),
                                            ::testing::Values(ops::Backend::Ref,
                                                              ops::Backend::OneDnn)),
                         case_name);

}  // namespace
}  // namespace resnet
