// Hand-computed values for tiny cases: they pin the forward semantics of the reference kernels
// (padding placement, window order, what a pooling window counts, biased variance), which the
// gradient checks alone cannot, since a consistently wrong forward has a consistent gradient.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ops/ops.h"
#include "ops/ref/ref.h"
#include "resnet/error.h"

// GCC 12 warns about designated initializers that leave members to their default member
// initializers (ConvGeom{.n = 1, ...} without .pad); that is exactly the intended use here.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace resnet::ops {
namespace {

using Vec = std::vector<float>;

const float kNaN = std::numeric_limits<float>::quiet_NaN();

// Outputs start as NaN: a kernel that skips an element cannot pass by luck.
Vec nan_vec(int64_t n) { return Vec(static_cast<size_t>(n), kNaN); }

void expect_near_all(const Vec& actual, const Vec& expected, float tol, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i) {
    EXPECT_NEAR(actual[i], expected[i], tol) << what << ", element " << i;
  }
}

// ---------------------------------------------------------------------------------------------
// Geometry.
TEST(RefGeometry, SamePadding) {
  using P = std::pair<int64_t, int64_t>;
  EXPECT_EQ(same_padding(15, 3, 2, 1), P(1, 1));   // out 8: 7*2 + 3 - 15 = 2
  EXPECT_EQ(same_padding(4, 3, 2, 1), P(0, 1));    // out 2: the odd pixel goes to the end
  EXPECT_EQ(same_padding(224, 7, 2, 1), P(2, 3));  // ResNet-50 stem
  EXPECT_EQ(same_padding(56, 1, 2, 1), P(0, 0));   // 1x1 stride 2: negative total clamps to 0
  EXPECT_EQ(same_padding(5, 3, 1, 1), P(1, 1));
  EXPECT_EQ(same_padding(5, 3, 1, 2), P(2, 2));  // dilation 2: effective kernel 5
  EXPECT_EQ(same_padding(4, 2, 2, 1), P(0, 0));
  EXPECT_EQ(same_padding(1, 3, 1, 1), P(1, 1));
  EXPECT_EQ(same_padding(6, 3, 2, 1), P(0, 1));
}

TEST(RefGeometry, WindowOut) {
  EXPECT_EQ(window_out(15, 3, 2, 1, 1, 1), 8);
  EXPECT_EQ(window_out(15, 3, 2, 1, 0, 0), 7);
  EXPECT_EQ(window_out(224, 7, 2, 1, 2, 3), 112);
  EXPECT_EQ(window_out(4, 3, 2, 1, 0, 1), 2);
  EXPECT_EQ(window_out(7, 3, 1, 2, 0, 0), 3);  // dilated extent 5
  EXPECT_EQ(window_out(3, 3, 1, 1, 0, 0), 1);
  EXPECT_LT(window_out(2, 3, 1, 1, 0, 0), 1);  // does not fit
  // 'same' padding always gives ceil(in / stride).
  for (int64_t in = 1; in <= 20; ++in) {
    for (int64_t k : {1, 2, 3, 5, 7}) {
      for (int64_t s : {1, 2, 3}) {
        for (int64_t d : {1, 2}) {
          auto [lo, hi] = same_padding(in, k, s, d);
          EXPECT_EQ(window_out(in, k, s, d, lo, hi), (in + s - 1) / s)
              << "in=" << in << " k=" << k << " s=" << s << " d=" << d;
          EXPECT_TRUE(hi == lo || hi == lo + 1);
        }
      }
    }
  }
}

TEST(RefGeometry, ConvFinishAndStr) {
  ConvGeom g{.n = 1, .h = 7, .w = 5, .c = 3, .kh = 3, .kw = 3, .f = 4, .sh = 2, .sw = 2};
  g.pad = {1, 1, 1, 1};
  g.finish();
  EXPECT_EQ(g.oh, 4);
  EXPECT_EQ(g.ow, 3);
  EXPECT_EQ(g.str(), "conv n=1 h=7 w=5 c=3 k=3x3 f=4 s=2x2 d=1x1 pad=1,1,1,1 out=4x3");
}

TEST(RefGeometry, ConvFinishThrowsWhenKernelLargerThanInput) {
  ConvGeom g{.n = 1, .h = 3, .w = 3, .c = 1, .kh = 5, .kw = 5, .f = 1};
  EXPECT_THROW(g.finish(), ShapeError);
  ConvGeom dilated{.n = 1, .h = 4, .w = 4, .c = 1, .kh = 3, .kw = 3, .f = 1, .dh = 2, .dw = 2};
  EXPECT_THROW(dilated.finish(), ShapeError);  // dilated extent 5 > 4
  ConvGeom zero_stride{.n = 1, .h = 4, .w = 4, .c = 1, .kh = 1, .kw = 1, .f = 1, .sh = 0};
  EXPECT_THROW(zero_stride.finish(), ShapeError);
  // The same kernel fits once padded.
  g.pad = {1, 1, 1, 1};
  EXPECT_NO_THROW(g.finish());
  EXPECT_EQ(g.oh, 1);
}

TEST(RefGeometry, PoolFinishAndStr) {
  PoolGeom g{
      .kind = PoolKind::Avg, .n = 2, .h = 6, .w = 5, .c = 3, .kh = 3, .kw = 3, .sh = 2, .sw = 2};
  g.pad = {0, 1, 1, 1};
  g.finish();
  EXPECT_EQ(g.oh, 3);
  EXPECT_EQ(g.ow, 3);
  EXPECT_EQ(g.str(), "pool avg n=2 h=6 w=5 c=3 k=3x3 s=2x2 pad=0,1,1,1 out=3x3");

  PoolGeom too_big{.n = 1, .h = 2, .w = 2, .c = 1, .kh = 3, .kw = 3};
  EXPECT_THROW(too_big.finish(), ShapeError);
  // A window made only of padding has no maximum and nothing to average.
  PoolGeom all_pad{.n = 1, .h = 4, .w = 4, .c = 1, .kh = 2, .kw = 2, .sh = 2, .sw = 2};
  all_pad.pad = {2, 0, 0, 0};
  EXPECT_THROW(all_pad.finish(), ShapeError);
}

TEST(RefGeometry, EltwiseNames) {
  EXPECT_STREQ(eltwise_name(Eltwise::Linear), "linear");
  EXPECT_STREQ(eltwise_name(Eltwise::Relu), "relu");
  EXPECT_STREQ(eltwise_name(Eltwise::Sigmoid), "sigmoid");
  EXPECT_STREQ(eltwise_name(Eltwise::Tanh), "tanh");
}

// ---------------------------------------------------------------------------------------------
// Convolution: 3x3, stride 2, 'same' on a 4x4 input -> 2x2 output, padding (0, 1) on both axes,
// so the bottom row and right column of every edge window are zeros.
//   channel 0: x = 1..16 row-major; channel 1: all ones.
//   filter 0:  w[i,j,0,0] = 3i+j+1 (1..9), w[i,j,1,0] = 10, bias 1
//   filter 1:  w[i,j,0,1] = 0,             w[i,j,1,1] = 1,  bias -1  (counts real cells)
// filter 0 = sum x*w + 10 * cells + 1: windows give sum x*w = 348, 252, 274, 175 and cells
// 9, 6, 6, 4 -> 439, 313, 335, 216; filter 1 = cells - 1 -> 8, 5, 5, 3.
// The distinct w[..,1,0] and w[..,0,1] catch a swapped (C, F) index.
TEST(RefKnown, Conv3x3Stride2Same) {
  ConvGeom g{.n = 1, .h = 4, .w = 4, .c = 2, .kh = 3, .kw = 3, .f = 2, .sh = 2, .sw = 2};
  auto [t, b] = same_padding(4, 3, 2, 1);
  auto [l, r] = same_padding(4, 3, 2, 1);
  g.pad = {t, b, l, r};
  g.finish();
  ASSERT_EQ(g.oh, 2);
  ASSERT_EQ(g.ow, 2);
  ASSERT_EQ(g.pad.top, 0);
  ASSERT_EQ(g.pad.bottom, 1);

  Vec x(4 * 4 * 2);
  for (int64_t p = 0; p < 16; ++p) {
    x[p * 2 + 0] = static_cast<float>(p + 1);
    x[p * 2 + 1] = 1.0f;
  }
  Vec w(3 * 3 * 2 * 2);
  for (int64_t i = 0; i < 3; ++i) {
    for (int64_t j = 0; j < 3; ++j) {
      const int64_t base = (i * 3 + j) * 2 * 2;  // w[i,j,:,:] is (C=2, F=2)
      w[base + 0 * 2 + 0] = static_cast<float>(3 * i + j + 1);
      w[base + 0 * 2 + 1] = 0.0f;
      w[base + 1 * 2 + 0] = 10.0f;
      w[base + 1 * 2 + 1] = 1.0f;
    }
  }
  const Vec bias = {1.0f, -1.0f};
  Vec y = nan_vec(2 * 2 * 2);
  ref::conv2d_forward(x.data(), w.data(), bias.data(), y.data(), g);
  // (OH, OW, F)
  expect_near_all(y, {439, 8, 313, 5, 335, 5, 216, 3}, 0.0f, g.str());

  Vec y_nobias = nan_vec(8);
  ref::conv2d_forward<float>(x.data(), w.data(), nullptr, y_nobias.data(), g);
  expect_near_all(y_nobias, {438, 9, 312, 6, 334, 6, 215, 4}, 0.0f, g.str() + " no bias");
}

// Backward data of the same geometry with dy = 1 for filter 1 only: dx[.,.,1] counts how many
// windows read each cell, dx[.,.,0] = 0 (w[..,0,1] = 0).
TEST(RefKnown, Conv3x3Stride2SameBackwardData) {
  ConvGeom g{.n = 1, .h = 4, .w = 4, .c = 2, .kh = 3, .kw = 3, .f = 2, .sh = 2, .sw = 2};
  g.pad = {0, 1, 0, 1};
  g.finish();
  Vec w(36, 0.0f);
  for (int64_t ij = 0; ij < 9; ++ij) w[ij * 4 + 1 * 2 + 1] = 1.0f;
  const Vec dy = {0, 1, 0, 1, 0, 1, 0, 1};
  Vec dx = nan_vec(32);
  ref::conv2d_backward_data(dy.data(), w.data(), dx.data(), g);
  // Rows 0,1 are read by window row 0; row 2 by both; row 3 by window row 1. Same for columns.
  const int rows[4] = {1, 1, 2, 1};
  for (int64_t h = 0; h < 4; ++h) {
    for (int64_t ww = 0; ww < 4; ++ww) {
      EXPECT_EQ(dx[(h * 4 + ww) * 2 + 0], 0.0f);
      EXPECT_EQ(dx[(h * 4 + ww) * 2 + 1], static_cast<float>(rows[h] * rows[ww]))
          << "h=" << h << " w=" << ww;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Average pooling 3x3 stride 1 'same' on x = 1..9 (3x3): padding (1, 1); edge windows average
// only their real cells (TensorFlow), e.g. the corner mean(1, 2, 4, 5) = 3, not 12/9.
TEST(RefKnown, AvgPoolSameExcludesPadding) {
  PoolGeom g{.kind = PoolKind::Avg, .n = 1, .h = 3, .w = 3, .c = 1, .kh = 3, .kw = 3};
  g.pad = {1, 1, 1, 1};
  g.finish();
  const Vec x = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  Vec y = nan_vec(9);
  ref::pool_forward(x.data(), y.data(), g);
  expect_near_all(y, {3, 3.5f, 4, 4.5f, 5, 5.5f, 6, 6.5f, 7}, 1e-6f, g.str());

  // dy = 1: each cell collects 1/|window| from every window containing it.
  const Vec dy(9, 1.0f);
  Vec dx = nan_vec(9);
  ref::pool_backward(dy.data(), x.data(), dx.data(), g);
  const float corner = 1.0f / 4 + 2.0f / 6 + 1.0f / 9;  // 25/36
  const float edge = 2.0f / 4 + 3.0f / 6 + 1.0f / 9;    // (0,1): 2 corner, 3 edge windows
  const float center = 4.0f / 4 + 4.0f / 6 + 1.0f / 9;  // 16/9
  expect_near_all(dx, {corner, edge, corner, edge, center, edge, corner, edge, corner}, 1e-6f,
                  g.str() + " backward");
}

// 2x2 stride 2 'same' on 5x5: padding (0, 1); the last row/column windows hold 2 cells and the
// corner window only x[4,4].
TEST(RefKnown, AvgPoolSameStride2) {
  PoolGeom g{
      .kind = PoolKind::Avg, .n = 1, .h = 5, .w = 5, .c = 1, .kh = 2, .kw = 2, .sh = 2, .sw = 2};
  auto [t, b] = same_padding(5, 2, 2, 1);
  g.pad = {t, b, t, b};
  g.finish();
  ASSERT_EQ(g.oh, 3);
  Vec x(25);
  for (int i = 0; i < 25; ++i) x[i] = static_cast<float>(i);
  Vec y = nan_vec(9);
  ref::pool_forward(x.data(), y.data(), g);
  // mean(0,1,5,6)=3, mean(2,3,7,8)=5, mean(4,9)=6.5, mean(10,11,15,16)=13, mean(12,13,17,18)=15,
  // mean(14,19)=16.5, mean(20,21)=20.5, mean(22,23)=22.5, mean(24)=24.
  expect_near_all(y, {3, 5, 6.5f, 13, 15, 16.5f, 20.5f, 22.5f, 24}, 1e-6f, g.str());
}

// Max pooling with padding on negative values: an implicit 0 from the padding would win every
// edge window; padded cells must never win.
TEST(RefKnown, MaxPoolPaddingNeverWins) {
  const Vec x = {-1, -2, -3, -4, -5, -6, -7, -8, -9};
  PoolGeom g{.kind = PoolKind::Max, .n = 1, .h = 3, .w = 3, .c = 1, .kh = 3, .kw = 3};
  g.pad = {1, 1, 1, 1};
  g.finish();
  Vec y = nan_vec(9);
  ref::pool_forward(x.data(), y.data(), g);
  expect_near_all(y, {-1, -1, -2, -1, -1, -2, -4, -4, -5}, 0.0f, g.str());

  // 2x2 stride 2 'same': padding (0, 1); the corner window holds only x[2,2].
  PoolGeom g2{
      .kind = PoolKind::Max, .n = 1, .h = 3, .w = 3, .c = 1, .kh = 2, .kw = 2, .sh = 2, .sw = 2};
  g2.pad = {0, 1, 0, 1};
  g2.finish();
  Vec y2 = nan_vec(4);
  ref::pool_forward(x.data(), y2.data(), g2);
  expect_near_all(y2, {-1, -3, -7, -9}, 0.0f, g2.str());
  Vec dx = nan_vec(9);
  const Vec dy2 = {1, 2, 3, 4};
  ref::pool_backward(dy2.data(), x.data(), dx.data(), g2);
  expect_near_all(dx, {1, 0, 2, 0, 0, 0, 3, 0, 4}, 0.0f, g2.str() + " backward");
}

// Ties go to the first cell in window order (row by row): the whole gradient goes there.
TEST(RefKnown, MaxPoolTiesGoToFirst) {
  PoolGeom g{.kind = PoolKind::Max, .n = 1, .h = 2, .w = 2, .c = 2, .kh = 2, .kw = 2};
  g.finish();
  // channel 0: all equal; channel 1: [[0, 5], [5, 0]].
  const Vec x = {1, 0, 1, 5, 1, 5, 1, 0};
  Vec y = nan_vec(2);
  ref::pool_forward(x.data(), y.data(), g);
  expect_near_all(y, {1, 5}, 0.0f, g.str());
  const Vec dy = {1, 1};
  Vec dx = nan_vec(8);
  ref::pool_backward(dy.data(), x.data(), dx.data(), g);
  expect_near_all(dx, {1, 0, 0, 1, 0, 0, 0, 0}, 0.0f, g.str() + " backward");
}

// ---------------------------------------------------------------------------------------------
// Batch norm, M = 4 rows, C = 2, eps = 4 (chosen to make the numbers round):
//   channel 0: x = 0, 0, 0, 8: mean 2, biased var 12, 1/sqrt(16) = 1/4, xhat = -.5,-.5,-.5,1.5
//   channel 1: x = 1, 3, 5, 7: mean 4, biased var 5,  1/sqrt(9) = 1/3,  xhat = -1,-1/3,1/3,1
//   gamma = (2, 3), beta = (0.5, -1): y0 = -.5,-.5,-.5,3.5; y1 = -4,-2,0,2.
TEST(RefKnown, BatchNormTinyBatch) {
  const Vec x = {0, 1, 0, 3, 0, 5, 8, 7};
  const Vec gamma = {2, 3}, beta = {0.5f, -1};
  Vec y = nan_vec(8), mean = nan_vec(2), var = nan_vec(2);
  ref::batchnorm_forward_training(x.data(), gamma.data(), beta.data(), y.data(), mean.data(),
                                  var.data(), 4, 2, 4.0);
  expect_near_all(mean, {2, 4}, 1e-6f, "bn mean");
  expect_near_all(var, {12, 5}, 1e-6f, "bn biased variance");
  expect_near_all(y, {-0.5f, -4, -0.5f, -2, -0.5f, 0, 3.5f, 2}, 1e-5f, "bn training y");

  // A constant dy shifts y uniformly, which normalization removes: dx = 0 in training form;
  // dbeta = M, dgamma = sum(xhat) = 0.
  const Vec ones(8, 1.0f);
  Vec dx = nan_vec(8), dgamma = nan_vec(2), dbeta = nan_vec(2);
  ref::batchnorm_backward(ones.data(), x.data(), gamma.data(), mean.data(), var.data(), dx.data(),
                          dgamma.data(), dbeta.data(), 4, 2, 4.0, false);
  expect_near_all(dx, Vec(8, 0.0f), 1e-6f, "bn training dx");
  expect_near_all(dgamma, {0, 0}, 1e-6f, "bn dgamma");
  expect_near_all(dbeta, {4, 4}, 0.0f, "bn dbeta");

  // Inference form: dx = dy * gamma / sqrt(var + eps) = 2/4 and 3/3.
  ref::batchnorm_backward(ones.data(), x.data(), gamma.data(), mean.data(), var.data(), dx.data(),
                          dgamma.data(), dbeta.data(), 4, 2, 4.0, true);
  expect_near_all(dx, {0.5f, 1, 0.5f, 1, 0.5f, 1, 0.5f, 1}, 1e-6f, "bn stats_fixed dx");
  expect_near_all(dgamma, {0, 0}, 1e-6f, "bn stats_fixed dgamma");
  expect_near_all(dbeta, {4, 4}, 0.0f, "bn stats_fixed dbeta");
}

// Inference with given statistics mean (1, 0), var (0, 5), eps 4: xhat0 = (x - 1) / 2,
// xhat1 = x / 3; y0 = 2 xhat0 + .5 = -.5,-.5,-.5,7.5; y1 = 3 xhat1 - 1 = 0,2,4,6.
TEST(RefKnown, BatchNormInference) {
  const Vec x = {0, 1, 0, 3, 0, 5, 8, 7};
  const Vec gamma = {2, 3}, beta = {0.5f, -1}, mean = {1, 0}, var = {0, 5};
  Vec y = nan_vec(8);
  ref::batchnorm_forward_inference(x.data(), gamma.data(), beta.data(), mean.data(), var.data(),
                                   y.data(), 4, 2, 4.0);
  expect_near_all(y, {-0.5f, 0, -0.5f, 2, -0.5f, 4, 7.5f, 6}, 1e-5f, "bn inference y");
}

// ---------------------------------------------------------------------------------------------
// Softmax of exp-weights 1:2:3:4 is (.1, .2, .3, .4), also after a shift by 1000 (which would
// overflow exp without the max subtraction).
TEST(RefKnown, Softmax) {
  const float l2 = std::log(2.0f), l3 = std::log(3.0f), l4 = std::log(4.0f);
  const Vec x = {0, l2, l3, l4, 1000, 1000 + l2, 1000 + l3, 1000 + l4};
  Vec y = nan_vec(8);
  ref::softmax_forward(x.data(), y.data(), 2, 4);
  expect_near_all(y, {0.1f, 0.2f, 0.3f, 0.4f, 0.1f, 0.2f, 0.3f, 0.4f}, 1e-4f, "softmax");

  const Vec big = {1000, 1000, -1000, 0};
  Vec yb = nan_vec(4);
  ref::softmax_forward(big.data(), yb.data(), 2, 2);
  expect_near_all(yb, {0.5f, 0.5f, 0, 1}, 1e-6f, "softmax extremes");

  // y = (.5, .5), dy = (1, 0): sum(dy*y) = .5, dx = (.25, -.25).
  const Vec yh = {0.5f, 0.5f}, dy = {1, 0};
  Vec dx = nan_vec(2);
  ref::softmax_backward(dy.data(), yh.data(), dx.data(), 1, 2);
  expect_near_all(dx, {0.25f, -0.25f}, 1e-7f, "softmax backward");
}

TEST(RefKnown, Eltwise) {
  const Vec x = {-1000, -1, 0, 2, 1000};
  Vec y = nan_vec(5), dx = nan_vec(5);
  const Vec dy(5, 1.0f);
  ref::eltwise_forward(Eltwise::Relu, x.data(), y.data(), 5);
  expect_near_all(y, {0, 0, 0, 2, 1000}, 0.0f, "relu");
  ref::eltwise_backward(Eltwise::Relu, dy.data(), x.data(), y.data(), dx.data(), 5);
  expect_near_all(dx, {0, 0, 0, 1, 1}, 0.0f, "relu backward (0 at the kink)");

  ref::eltwise_forward(Eltwise::Sigmoid, x.data(), y.data(), 5);
  expect_near_all(y, {0, 1.0f / (1.0f + std::exp(1.0f)), 0.5f, 1.0f / (1.0f + std::exp(-2.0f)), 1},
                  1e-7f, "sigmoid");
  ref::eltwise_backward(Eltwise::Sigmoid, dy.data(), x.data(), y.data(), dx.data(), 5);
  EXPECT_NEAR(dx[2], 0.25f, 1e-7f);

  ref::eltwise_forward(Eltwise::Tanh, x.data(), y.data(), 5);
  expect_near_all(y, {-1, std::tanh(-1.0f), 0, std::tanh(2.0f), 1}, 1e-7f, "tanh");
  ref::eltwise_backward(Eltwise::Tanh, dy.data(), x.data(), y.data(), dx.data(), 5);
  EXPECT_NEAR(dx[2], 1.0f, 1e-7f);

  ref::eltwise_forward(Eltwise::Linear, x.data(), y.data(), 5);
  expect_near_all(y, x, 0.0f, "linear");
}

// ---------------------------------------------------------------------------------------------
// Dense: x = [[1,2,3],[4,5,6]], w = [[1,0],[0,1],[1,1]], b = (.5, -1):
//   y = [[1+3, 2+3], [4+6, 5+6]] + b = [[4.5, 4], [10.5, 10]]
//   dy = I: dx = rows of w^T = [[1,0,1],[0,1,1]]; dw = x^T dy = [[1,4],[2,5],[3,6]]; db = (1, 1).
TEST(RefKnown, Dense) {
  const Vec x = {1, 2, 3, 4, 5, 6}, w = {1, 0, 0, 1, 1, 1}, b = {0.5f, -1};
  Vec y = nan_vec(4);
  ref::dense_forward(x.data(), w.data(), b.data(), y.data(), 2, 3, 2);
  expect_near_all(y, {4.5f, 4, 10.5f, 10}, 0.0f, "dense");

  const Vec dy = {1, 0, 0, 1};
  Vec dx = nan_vec(6), dw = nan_vec(6), db = nan_vec(2);
  ref::dense_backward_data(dy.data(), w.data(), dx.data(), 2, 3, 2);
  expect_near_all(dx, {1, 0, 1, 0, 1, 1}, 0.0f, "dense dx");
  ref::dense_backward_weights(x.data(), dy.data(), dw.data(), db.data(), 2, 3, 2);
  expect_near_all(dw, {1, 4, 2, 5, 3, 6}, 0.0f, "dense dw");
  expect_near_all(db, {1, 1}, 0.0f, "dense db");
}

// Zero padding (top 1, bottom 0, left 0, right 2) of a single 1x1 pixel with 2 channels.
TEST(RefKnown, ZeroPadAndCrop) {
  const Vec x = {7, 8};
  const Pad2 p{1, 0, 0, 2};
  Vec y = nan_vec(2 * 3 * 2);  // (1, 2, 3, 2)
  ref::zero_pad_forward(x.data(), y.data(), 1, 1, 1, 2, p);
  expect_near_all(y, {0, 0, 0, 0, 0, 0, 7, 8, 0, 0, 0, 0}, 0.0f, "zero_pad");
  Vec dy(12);
  for (int i = 0; i < 12; ++i) dy[i] = static_cast<float>(i);
  Vec dx = nan_vec(2);
  ref::zero_pad_backward(dy.data(), dx.data(), 1, 1, 1, 2, p);
  expect_near_all(dx, {6, 7}, 0.0f, "zero_pad backward");
}

TEST(RefKnown, Add) {
  const Vec a = {1, 2, 3}, b = {10, 20, 30}, c = {-1, -1, -1};
  const float* xs[] = {a.data(), b.data(), c.data()};
  Vec y = nan_vec(3);
  ref::add(xs, 3, y.data(), 3);
  expect_near_all(y, {10, 21, 32}, 0.0f, "add");
}

// The kernels reject a geometry whose output size finish() did not compute.
TEST(RefKnown, UnfinishedGeometryThrows) {
  ConvGeom g{.n = 1, .h = 4, .w = 4, .c = 1, .kh = 3, .kw = 3, .f = 1};
  Vec x(16), w(9), y(4);
  EXPECT_THROW(ref::conv2d_forward<float>(x.data(), w.data(), nullptr, y.data(), g), ShapeError);
  PoolGeom pg{.n = 1, .h = 4, .w = 4, .c = 1, .kh = 2, .kw = 2};
  EXPECT_THROW(ref::pool_forward<float>(x.data(), y.data(), pg), ShapeError);
}

}  // namespace
}  // namespace resnet::ops
