// A whole network against PyTorch, in the style of llm.c's reference check: a small ResNet built
// from the tutorial's blocks (stem, two convolutional and two identity blocks, pooling, softmax)
// starts from the weights PyTorch started from (tests/reference/generate_network_fixture.py) and
// takes the same three SGD-with-momentum steps on the same batch. Every step's loss and every
// trainable parameter's gradient, and every parameter at the end (moving statistics included),
// must match, on both backends.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "ops/ops.h"
#include "resnet/layers.h"
#include "resnet/model.h"
#include "resnet/models.h"
#include "resnet/optim.h"
#include "support/allclose.h"
#include "support/fixtures.h"

namespace resnet::testing {
namespace {

constexpr int kSteps = 3;

Model network() {
  reset_name_counters();
  SymTensor in = Input({16, 16, 3}, "input_1");
  SymTensor x =
      Conv2D({.filters = 8, .kernel = {3, 3}, .padding = Padding::Same, .name = "conv1"})(in);
  x = BatchNormalization({.axis = 3, .name = "bn_conv1"})(x);
  x = Activation("relu")(x);
  x = MaxPooling2D({.pool_size = {2, 2}, .strides = {2, 2}})(x);
  x = convolutional_block(x, 3, {4, 4, 16}, 2, "a", 1);
  x = identity_block(x, 3, {4, 4, 16}, 2, "b");
  x = convolutional_block(x, 3, {8, 8, 32}, 3, "a", 2);
  x = identity_block(x, 3, {8, 8, 32}, 3, "b");
  x = GlobalAveragePooling2D()(x);
  x = Dense({.units = 6, .activation = "softmax", .name = "fc"})(x);
  return Model(in, x, "network");
}

double max_abs(const Tensor& t) {
  double m = 0.0;
  for (float v : ops::plain(t).to_f32().span<float>()) m = std::max(m, double(std::abs(v)));
  return m;
}

// max |a - e| <= tol * max(|e|max, floor): relative to the tensor's own scale, with a floor for
// the tensors that are zero in exact arithmetic (a convolution's bias before a training-mode
// batch norm has no gradient: PyTorch's is ~1e-17, ours float32 rounding).
::testing::AssertionResult Near(const Tensor& actual, const Tensor& expected, double tol,
                                double floor, const std::string& what) {
  const Tensor a = ops::plain(actual).to_f32();
  const Tensor& e = expected;
  if (a.shape() != e.shape()) {
    return ::testing::AssertionFailure()
           << what << ": shape " << a.shape().str() << " != " << e.shape().str();
  }
  double err = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double d = std::abs(double(a.f32()[i]) - double(e.f32()[i]));
    err = std::max(err, std::isfinite(d) ? d : INFINITY);
  }
  const double scale = std::max(max_abs(e), floor);
  if (err <= tol * scale) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << ": max abs error " << err << " > " << tol << " * " << scale;
}

class NetworkFixture : public ::testing::TestWithParam<ops::Backend> {};

TEST_P(NetworkFixture, ThreeSgdStepsMatchPyTorch) {
  ops::BackendScope backend(GetParam());
  const Fixture fx = load_fixture("network_sgd");
  Model m = network();
  // Every parameter from the fixture; every fixture weight used.
  size_t loaded = 0;
  for (const auto& l : m.layers()) {
    for (Param& p : l->params()) {
      p.value.copy_from(fx.at(l->name() + "/" + p.name));
      p.value.bump_version();
      ++loaded;
    }
  }
  size_t initial = 0;
  for (const std::string& n : fx.names()) {
    if (n.find('/') != std::string::npos && n.rfind("step", 0) != 0 && n.rfind("final/", 0) != 0)
      ++initial;
  }
  ASSERT_EQ(loaded, initial);
  m.compile({.optimizer = SGD({.common = {.learning_rate = 0.05}, .momentum = 0.9}),
             .loss = "categorical_crossentropy"});

  // The gradients as backward finishes each layer: this hook runs before train_step's per-layer
  // update, which releases them.
  std::map<std::string, Tensor> grads;
  m.add_grad_ready_hook([&](Layer& l) {
    for (const Param& p : l.params()) {
      if (p.trainable && p.grad.defined()) {
        grads[l.name() + "/grad_" + p.name] = ops::plain(p.grad).to_f32().clone();
      }
    }
  });
  const Tensor& x = fx.at("input");
  const Tensor& y = fx.at("labels");
  for (int s = 1; s <= kSteps; ++s) {
    grads.clear();
    const double loss = m.train_step(x, y);
    const double expected = fx.at("step" + std::to_string(s) + "/loss").f32()[0];
    EXPECT_NEAR(loss, expected, 1e-5 * std::abs(expected)) << "step " << s;
    size_t compared = 0;
    for (const auto& l : m.layers()) {
      for (const Param& p : l->params()) {
        if (!p.trainable) continue;
        const std::string key = l->name() + "/grad_" + p.name;
        ASSERT_TRUE(grads.count(key)) << key << " at step " << s;
        const Tensor& e = fx.at("step" + std::to_string(s) + "/" + key);
        // Biases before a batch norm: compared against the scale of their kernel's gradient.
        const bool before_bn = p.name == "bias" && l->class_name() == "Conv2D";
        const double floor =
            before_bn
                ? max_abs(fx.at("step" + std::to_string(s) + "/" + l->name() + "/grad_kernel"))
                : 0.0;
        EXPECT_TRUE(Near(grads.at(key), e, before_bn ? 1e-4 : 2e-4, floor,
                         key + " at step " + std::to_string(s)));
        ++compared;
      }
    }
    EXPECT_EQ(compared, grads.size());
  }
  for (const auto& l : m.layers()) {
    for (const Param& p : l->params()) {
      const std::string key = l->name() + "/" + p.name;
      EXPECT_TRUE(Near(p.value, fx.at("final/" + key), 1e-5, 0.0, key + " after the last step"));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, NetworkFixture,
                         ::testing::Values(ops::Backend::Ref, ops::Backend::OneDnn),
                         [](const ::testing::TestParamInfo<ops::Backend>& info) {
                           return std::string(ops::backend_name(info.param));
                         });

}  // namespace
}  // namespace resnet::testing
