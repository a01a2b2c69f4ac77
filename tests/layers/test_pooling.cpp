// MaxPooling2D, AveragePooling2D and the global poolings: shapes, values, gradients.
#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "layer_gradcheck.h"
#include "layers/average_pooling2d.h"
#include "layers/global_average_pooling2d.h"
#include "layers/global_max_pooling2d.h"
#include "layers/max_pooling2d.h"
#include "ops/ops.h"
#include "support/allclose.h"

namespace resnet {
namespace {

using testing::AllClose;
using testing::check_layer_grads;
using testing::distinct_tensor;

class LayersPooling : public ::testing::Test {
 protected:
  void SetUp() override { reset_name_counters(); }
  ops::BackendScope ref_{ops::Backend::Ref};
};

TEST_F(LayersPooling, Shapes) {
  SymTensor in = Input({15, 15, 8});
  EXPECT_EQ(MaxPooling2D({.pool_size = {3, 3}, .strides = {2, 2}})(in).shape(), (Shape{7, 7, 8}));
  EXPECT_EQ(MaxPooling2D()(in).shape(), (Shape{7, 7, 8}));  // strides default to the pool size
  EXPECT_EQ(AveragePooling2D({.padding = Padding::Same})(in).shape(), (Shape{8, 8, 8}));
  EXPECT_EQ(AveragePooling2D({.pool_size = {3, 3}, .strides = {1, 1}, .padding = Padding::Same})(in)
                .shape(),
            (Shape{15, 15, 8}));
  EXPECT_EQ(GlobalAveragePooling2D()(in).shape(), (Shape{8}));
  EXPECT_EQ(GlobalMaxPooling2D()(in).shape(), (Shape{8}));
  auto p = MaxPooling2D({.pool_size = {3, 2}});
  EXPECT_EQ(p->options().strides, (std::array<int64_t, 2>{3, 2}));
  EXPECT_THROW(MaxPooling2D({.pool_size = {0, 2}}), ConfigError);
  EXPECT_THROW(GlobalMaxPooling2D()(Input({4})), ShapeError);
}

TEST_F(LayersPooling, Values) {
  // One image 2x2, one channel: {1, 2, 3, 4}.
  Tensor x = Tensor::from_vector(Shape{1, 2, 2, 1}, {1, 2, 3, 4});
  auto avg = GlobalAveragePooling2D();
  avg(Input({2, 2, 1}));
  Tensor y = avg->forward({x}, Mode::Inference);
  EXPECT_EQ(y.shape(), (Shape{1, 1}));
  EXPECT_FLOAT_EQ(ops::plain(y).f32()[0], 2.5f);
  auto mx = GlobalMaxPooling2D();
  mx(Input({2, 2, 1}));
  EXPECT_FLOAT_EQ(ops::plain(mx->forward({x}, Mode::Inference)).f32()[0], 4.0f);
  auto mp = MaxPooling2D();
  mp(Input({2, 2, 1}));
  EXPECT_FLOAT_EQ(ops::plain(mp->forward({x}, Mode::Inference)).f32()[0], 4.0f);
  // 'same' average over a 3x3 window at the corner counts only the real cells.
  auto ap = AveragePooling2D({.pool_size = {3, 3}, .strides = {1, 1}, .padding = Padding::Same});
  ap(Input({2, 2, 1}));
  Tensor a = ops::plain(ap->forward({x}, Mode::Inference));
  EXPECT_EQ(a.to_vector(), (std::vector<float>{2.5f, 2.5f, 2.5f, 2.5f}));
}

TEST_F(LayersPooling, Gradients) {
  struct Case {
    bool max;
    Pool2DOptions o;
    Shape x;
  };
  // Options built in code: GCC 12 warns (falsely, -Wmaybe-uninitialized) about the name string of
  // designated initializers nested in an array of aggregates.
  auto opts = [](std::array<int64_t, 2> pool, std::array<int64_t, 2> strides, Padding padding) {
    Pool2DOptions o;
    o.pool_size = pool;
    o.strides = strides;
    o.padding = padding;
    return o;
  };
  const std::vector<Case> cases = {
      {true, opts({3, 3}, {2, 2}, Padding::Valid), Shape{2, 7, 7, 3}},
      {true, opts({2, 2}, {0, 0}, Padding::Same), Shape{1, 5, 5, 2}},
      {false, opts({2, 2}, {0, 0}, Padding::Valid), Shape{2, 4, 6, 2}},
      {false, opts({3, 3}, {2, 2}, Padding::Same), Shape{1, 5, 4, 3}},
  };
  int i = 0;
  for (const Case& c : cases) {
    std::shared_ptr<Layer> layer;
    if (c.max) {
      layer = MaxPooling2D(c.o).ptr();
    } else {
      layer = AveragePooling2D(c.o).ptr();
    }
    (*layer)(Input(c.x.drop_front()));
    EXPECT_TRUE(
        check_layer_grads(*layer, {distinct_tensor(c.x, 30 + i)}, "case " + std::to_string(i)));
    ++i;
  }
  auto gavg = GlobalAveragePooling2D();
  gavg(Input({3, 4, 5}));
  EXPECT_TRUE(check_layer_grads(*gavg, {distinct_tensor(Shape{2, 3, 4, 5}, 40)}, "global avg"));
  auto gmax = GlobalMaxPooling2D();
  gmax(Input({3, 4, 5}));
  EXPECT_TRUE(check_layer_grads(*gmax, {distinct_tensor(Shape{2, 3, 4, 5}, 41)}, "global max"));
}

}  // namespace
}  // namespace resnet
