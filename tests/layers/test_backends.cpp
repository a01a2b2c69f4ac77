// Layers give the same results on the oneDNN backend (blocked layouts passed between layers) as
// on the reference backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "layers/activation.h"
#include "layers/add.h"
#include "layers/average_pooling2d.h"
#include "layers/batch_normalization.h"
#include "layers/conv2d.h"
#include "layers/dense.h"
#include "layers/dropout.h"
#include "layers/flatten.h"
#include "layers/global_average_pooling2d.h"
#include "layers/global_max_pooling2d.h"
#include "layers/max_pooling2d.h"
#include "layers/re_lu.h"
#include "layers/zero_padding2d.h"
#include "ops/ops.h"
#include "resnet/layers.h"
#include "support/allclose.h"

namespace resnet {
namespace {

using testing::AllClose;
using testing::random_tensor;

struct ChainResult {
  Tensor y, dx;
  std::vector<Tensor> grads;  // every trainable param grad, chain order
};

// Forward (Training) then backward through a chain of single-input layers.
ChainResult run_chain(const std::vector<std::shared_ptr<Layer>>& chain, const Tensor& x,
                      const Tensor& dy_seed, ops::Backend backend) {
  ops::BackendScope scope(backend);
  Tensor h = x;
  for (auto& l : chain) h = l->forward({h}, Mode::Training);
  ChainResult r;
  r.y = ops::plain(h).clone();
  Tensor d = dy_seed;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    d = (*it)->backward(d, {true})[0];
    (*it)->clear_saved();
  }
  r.dx = ops::plain(d).clone();
  for (auto& l : chain) {
    for (Param& p : l->params()) {
      if (p.trainable && l->trainable()) {
        EXPECT_TRUE(p.grad.is_plain()) << l->name() << "/" << p.name;
        r.grads.push_back(p.grad.clone());
      }
    }
  }
  return r;
}

void expect_backends_agree(const std::vector<std::shared_ptr<Layer>>& chain, const Shape& x_shape,
                           const std::string& context) {
  Tensor x = random_tensor(x_shape, 1);
  // Dropout draws a new mask every forward: the comparison chains contain none.
  Shape y_shape;
  {
    ops::BackendScope scope(ops::Backend::Ref);
    Tensor h = x;
    for (auto& l : chain) h = l->forward({h}, Mode::Inference);
    y_shape = h.shape();
  }
  Tensor dy = random_tensor(y_shape, 2);
  ChainResult ref = run_chain(chain, x, dy, ops::Backend::Ref);
  ChainResult dnn = run_chain(chain, x, dy, ops::Backend::OneDnn);
  EXPECT_TRUE(AllClose(dnn.y, ref.y, 1e-4, context + ": y"));
  EXPECT_TRUE(AllClose(dnn.dx, ref.dx, 1e-4, context + ": dx"));
  ASSERT_EQ(dnn.grads.size(), ref.grads.size());
  for (size_t i = 0; i < ref.grads.size(); ++i) {
    // The bias of a conv followed by a training-mode BN has a zero gradient (BN removes the
    // mean): compare such tiny gradients on an absolute scale.
    float scale = 0;
    for (float v : ref.grads[i].to_vector()) scale = std::max(scale, std::abs(v));
    if (scale < 1e-5f) {
      for (float v : dnn.grads[i].to_vector()) EXPECT_LT(std::abs(v), 1e-5f) << context << i;
      continue;
    }
    EXPECT_TRUE(
        AllClose(dnn.grads[i], ref.grads[i], 1e-4, context + ": grad " + std::to_string(i)));
  }
}

// Connects the layers in a chain from an input of `shape` and returns them.
std::vector<std::shared_ptr<Layer>> connect(const Shape& shape,
                                            std::vector<std::shared_ptr<Layer>> chain) {
  SymTensor s = Input(shape);
  for (auto& l : chain) s = (*l)(s);
  return chain;
}

TEST(LayersBackends, OneDnnMatchesRef) {
  reset_name_counters();
  set_global_seed(3);
  auto bias = Initializer::random_uniform(-0.5, 0.5, 4);
  // Channel counts that are multiples of 8 invite blocked layouts between layers.
  auto chain = connect(
      {9, 9, 8},
      {ZeroPadding2D({.padding = {1, 2, 0, 1}}).ptr(),
       Conv2D({.filters = 16, .kernel = {3, 3}, .strides = {2, 2}, .bias_initializer = bias}).ptr(),
       BatchNormalization().ptr(), Activation("relu").ptr(),
       MaxPooling2D({.pool_size = {3, 3}, .strides = {1, 1}, .padding = Padding::Same}).ptr(),
       Conv2D({.filters = 8, .kernel = {1, 1}, .activation = "tanh"}).ptr(),
       AveragePooling2D({.pool_size = {2, 2}}).ptr(), Flatten().ptr(),
       Dense({.units = 5, .activation = "softmax", .bias_initializer = bias}).ptr()});
  expect_backends_agree(chain, Shape{2, 9, 9, 8}, "conv/bn/pool/dense chain");

  auto chain2 = connect({6, 6, 16}, {Conv2D({.filters = 16, .padding = Padding::Same}).ptr(),
                                     BatchNormalization({.trainable = false}).ptr(), ReLU().ptr(),
                                     GlobalAveragePooling2D().ptr(),
                                     Dense({.units = 3, .activation = "sigmoid"}).ptr()});
  expect_backends_agree(chain2, Shape{3, 6, 6, 16}, "frozen bn, global avg");

  auto chain3 = connect({5, 5, 8}, {Conv2D({.filters = 8, .kernel = {2, 2}}).ptr(),
                                    GlobalMaxPooling2D().ptr(), Dense({.units = 4}).ptr()});
  expect_backends_agree(chain3, Shape{2, 5, 5, 8}, "global max");
}

TEST(LayersBackends, AddAndDropoutAcceptBlockedInputs) {
  reset_name_counters();
  ops::BackendScope scope(ops::Backend::OneDnn);
  SymTensor in = Input({4, 4, 8});
  auto conv = Conv2D({.filters = 16, .kernel = {1, 1}});
  SymTensor a = conv(in);
  auto add = Add();
  add({a, a});
  auto drop = Dropout({.rate = 0.5, .seed = 1});
  drop(a);
  Tensor h = conv->forward({random_tensor(Shape{2, 4, 4, 8}, 1)}, Mode::Training);
  Tensor sum = ops::plain(add->forward({h, h}, Mode::Training));
  Tensor hp = ops::plain(h);
  for (int64_t i = 0; i < hp.numel(); ++i) EXPECT_FLOAT_EQ(sum.f32()[i], 2 * hp.f32()[i]);
  Tensor y = ops::plain(drop->forward({h}, Mode::Training));
  int64_t kept = 0;
  for (int64_t i = 0; i < hp.numel(); ++i) {
    ASSERT_NE(hp.f32()[i], 0.0f);
    if (y.f32()[i] != 0.0f) ++kept;
    EXPECT_TRUE(y.f32()[i] == 0.0f || std::abs(y.f32()[i] - 2 * hp.f32()[i]) < 1e-6f);
  }
  // Rate 0.5 over 512 values: about half are kept (neither none nor all).
  EXPECT_GT(kept, hp.numel() * 3 / 10);
  EXPECT_LT(kept, hp.numel() * 7 / 10);
}

}  // namespace
}  // namespace resnet
