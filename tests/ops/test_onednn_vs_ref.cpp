// The oneDNN backend against the reference kernels, through the public ops:: dispatcher: every op,
// forward and every gradient, over a table of printable cases (odd sizes, batch 1, stride 2,
// valid/same padding, 1x1, dilation, and the real shapes of the tutorial ResNet-50 at 64x64 with
// batch 2). Also: chains where blocked outputs feed the next op, and weight updates that must not
// be served from a stale reorder cache.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "ops/ops.h"
#include "resnet/error.h"
#include "resnet/tensor.h"
#include "support/allclose.h"

namespace resnet::ops {
namespace {

using testing::AllClose;
using testing::random_tensor;

constexpr double kTol = 1e-4;

// Named outputs of one computation; run once per backend and compared name by name.
using Outputs = std::vector<std::pair<std::string, Tensor>>;

void expect_backends_agree(const std::string& context, const std::function<Outputs()>& compute) {
  Outputs expected, actual;
  {
    BackendScope scope(Backend::Ref);
    expected = compute();
  }
  {
    BackendScope scope(Backend::OneDnn);
    actual = compute();
  }
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    const std::string what = context + " [" + actual[i].first + "]";
    ASSERT_TRUE(actual[i].second.defined()) << what;
    ASSERT_EQ(actual[i].second.shape(), expected[i].second.shape()) << what;
    EXPECT_TRUE(AllClose(plain(actual[i].second), expected[i].second, kTol, what));
  }
}

// Test names may hold only [A-Za-z0-9_].
std::string sanitize(std::string s) {
  for (char& ch : s) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return s;
}

// Geometry builders (positional fields set one by one: designated initializers that skip the
// trailing members trip -Wmissing-field-initializers).
ConvGeom make_conv(int64_t n, int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t f) {
  ConvGeom g;
  g.n = n, g.h = h, g.w = w, g.c = c, g.kh = kh, g.kw = kw, g.f = f;
  return g;
}

PoolGeom make_pool(PoolKind kind, int64_t n, int64_t h, int64_t w, int64_t c, int64_t k) {
  PoolGeom g;
  g.kind = kind, g.n = n, g.h = h, g.w = w, g.c = c, g.kh = g.kw = k;
  return g;
}

// ---------------------------------------------------------------------------------------------
// Convolution.

struct ConvCase {
  std::string name;
  int64_t n, h, w, c, kh, kw, f;
  int64_t stride = 1;
  bool same = false;
  int64_t dilation = 1;
  bool bias = true;

  ConvGeom geom() const {
    ConvGeom g = make_conv(n, h, w, c, kh, kw, f);
    g.sh = g.sw = stride;
    g.dh = g.dw = dilation;
    if (same) {
      auto [top, bottom] = same_padding(h, kh, stride, dilation);
      auto [left, right] = same_padding(w, kw, stride, dilation);
      g.pad = {top, bottom, left, right};
    }
    g.finish();
    return g;
  }
  std::string str() const { return name + ": " + geom().str() + (bias ? " bias" : " no-bias"); }
};

void PrintTo(const ConvCase& c, std::ostream* os) { *os << c.str(); }

const std::vector<ConvCase> kConvCases = {
    // Small and odd.
    {"odd_3x3_valid", 2, 7, 9, 3, 3, 3, 5},
    {"odd_3x3_same", 2, 7, 9, 5, 3, 3, 7, 1, true},
    {"batch1_3x3_same_stride2", 1, 9, 8, 6, 3, 3, 10, 2, true},
    {"stride2_valid_even", 3, 10, 10, 4, 3, 3, 8, 2, false},
    {"stride2_same_5x5", 2, 11, 11, 3, 5, 5, 4, 2, true, 1, false},
    {"1x1_odd_channels", 2, 5, 5, 13, 1, 1, 17},
    {"1x1_stride2_odd", 2, 7, 7, 8, 1, 1, 16, 2},
    {"dilation2_same", 2, 9, 9, 8, 3, 3, 16, 1, true, 2},
    {"dilation2_valid_no_bias", 1, 10, 12, 5, 3, 3, 6, 1, false, 2, false},
    {"rect_kernel_1x3", 2, 6, 8, 16, 1, 3, 16, 1, true},
    // The tutorial ResNet-50 at 64x64 (KERAS.md section 1), batch 2.
    {"r50_conv1_7x7s2", 2, 70, 70, 3, 7, 7, 64, 2},
    {"r50_res2a_2a_1x1", 2, 15, 15, 64, 1, 1, 64},
    {"r50_res2a_2b_3x3", 2, 15, 15, 64, 3, 3, 64, 1, true},
    {"r50_res2a_2c_1x1", 2, 15, 15, 64, 1, 1, 256},
    {"r50_res2b_2a_1x1", 2, 15, 15, 256, 1, 1, 64},
    {"r50_res3a_2a_1x1s2", 2, 15, 15, 256, 1, 1, 128, 2},
    {"r50_res3a_1_1x1s2", 2, 15, 15, 256, 1, 1, 512, 2},
    {"r50_res3a_2b_3x3", 2, 8, 8, 128, 3, 3, 128, 1, true},
    {"r50_res3a_2c_1x1", 2, 8, 8, 128, 1, 1, 512},
    {"r50_res3b_2a_1x1", 2, 8, 8, 512, 1, 1, 128},
    {"r50_res4a_2a_1x1s2", 2, 8, 8, 512, 1, 1, 256, 2},
    {"r50_res4a_1_1x1s2", 2, 8, 8, 512, 1, 1, 1024, 2},
    {"r50_res4a_2b_3x3", 2, 4, 4, 256, 3, 3, 256, 1, true},
    {"r50_res4a_2c_1x1", 2, 4, 4, 256, 1, 1, 1024},
    {"r50_res4b_2a_1x1", 2, 4, 4, 1024, 1, 1, 256},
    {"r50_res5a_2a_1x1s2", 2, 4, 4, 1024, 1, 1, 512, 2},
    {"r50_res5a_1_1x1s2", 2, 4, 4, 1024, 1, 1, 2048, 2},
    {"r50_res5a_2b_3x3", 2, 2, 2, 512, 3, 3, 512, 1, true},
    {"r50_res5a_2c_1x1", 2, 2, 2, 512, 1, 1, 2048},
    {"r50_res5b_2a_1x1", 2, 2, 2, 2048, 1, 1, 512},
};

class OneDnnConv : public ::testing::TestWithParam<ConvCase> {};

TEST_P(OneDnnConv, ForwardAndGradientsMatchRef) {
  const ConvCase& cc = GetParam();
  const ConvGeom g = cc.geom();
  const Tensor x = random_tensor({g.n, g.h, g.w, g.c}, 1);
  const Tensor w = random_tensor({g.kh, g.kw, g.c, g.f}, 2);
  const Tensor b = cc.bias ? random_tensor({g.f}, 3) : Tensor();
  const Tensor dy = random_tensor({g.n, g.oh, g.ow, g.f}, 4);
  expect_backends_agree(cc.str(), [&] {
    Tensor y = conv2d_forward(x, w, b, g);
    Tensor dx = conv2d_backward_data(dy, w, g);
    Tensor dw, db;
    conv2d_backward_weights(x, dy, g, cc.bias, dw, db);
    Outputs out{{"y", y}, {"dx", dx}, {"dw", dw}};
    if (cc.bias) out.emplace_back("db", db);
    return out;
  });
}

INSTANTIATE_TEST_SUITE_P(OneDnnTable, OneDnnConv, ::testing::ValuesIn(kConvCases),
                         [](const auto& info) { return sanitize(info.param.name); });

// ---------------------------------------------------------------------------------------------
// Pooling.

struct PoolCase {
  std::string name;
  PoolKind kind;
  int64_t n, h, w, c, k, stride;
  bool same = false;

  PoolGeom geom() const {
    PoolGeom g = make_pool(kind, n, h, w, c, k);
    g.sh = g.sw = stride;
    if (same) {
      auto [top, bottom] = same_padding(h, k, stride, 1);
      auto [left, right] = same_padding(w, k, stride, 1);
      g.pad = {top, bottom, left, right};
    }
    g.finish();
    return g;
  }
  std::string str() const { return name + ": " + geom().str(); }
};

void PrintTo(const PoolCase& c, std::ostream* os) { *os << c.str(); }

const std::vector<PoolCase> kPoolCases = {
    {"max_3x3s2_odd", PoolKind::Max, 2, 9, 11, 5, 3, 2},
    {"max_3x3s2_same", PoolKind::Max, 2, 9, 10, 5, 3, 2, true},
    {"max_2x2s2_batch1", PoolKind::Max, 1, 8, 8, 16, 2, 2},
    {"max_3x3s1_same", PoolKind::Max, 2, 7, 7, 3, 3, 1, true},
    {"avg_2x2s2_odd", PoolKind::Avg, 2, 7, 9, 6, 2, 2},
    {"avg_3x3s2_same_excludes_pad", PoolKind::Avg, 2, 8, 9, 5, 3, 2, true},
    {"avg_3x3s1_same_batch1", PoolKind::Avg, 1, 6, 6, 17, 3, 1, true},
    {"r50_max_pool_3x3s2", PoolKind::Max, 2, 32, 32, 64, 3, 2},
    {"r50_avg_pool_2x2", PoolKind::Avg, 2, 2, 2, 2048, 2, 2},
};

// Distinct values so max pooling has no ties (whose winner the two backends may pick differently).
Tensor distinct_tensor(const Shape& shape, uint64_t seed) {
  Tensor t = random_tensor(shape, seed);
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = p[i] * 0.5f + static_cast<float>(i) * 1e-3f;
  return t;
}

class OneDnnPool : public ::testing::TestWithParam<PoolCase> {};

TEST_P(OneDnnPool, ForwardAndGradientMatchRef) {
  const PoolCase& pc = GetParam();
  const PoolGeom g = pc.geom();
  const Tensor x = distinct_tensor({g.n, g.h, g.w, g.c}, 5);
  const Tensor dy = random_tensor({g.n, g.oh, g.ow, g.c}, 6);
  expect_backends_agree(pc.str(), [&] {
    Tensor workspace;
    Tensor y = pool_forward(x, g, workspace);
    Tensor dx = pool_backward(dy, x, workspace, g);
    // Without the forward workspace the backend must still be right (it recomputes one).
    Tensor dx_no_ws = pool_backward(dy, x, Tensor(), g);
    return Outputs{{"y", y}, {"dx", dx}, {"dx_without_workspace", dx_no_ws}};
  });
}

INSTANTIATE_TEST_SUITE_P(OneDnnTable, OneDnnPool, ::testing::ValuesIn(kPoolCases),
                         [](const auto& info) { return sanitize(info.param.name); });

// ---------------------------------------------------------------------------------------------
// Batch normalization.

// At least 3 rows per channel: with 2, training-mode dx is exactly zero and only rounding noise
// would be compared.
const std::vector<Shape> kBnShapes = {
    {2, 5, 7, 3}, {1, 4, 4, 16}, {2, 15, 15, 64}, {2, 8, 8, 128}, {2, 2, 2, 2048}, {6, 17}, {5, 33},
};

TEST(OneDnnBatchNorm, TrainingForwardAndBackwardMatchRef) {
  for (const Shape& s : kBnShapes) {
    const int64_t c = s[-1];
    const Tensor x = random_tensor(s, 7, -2.0f, 3.0f);
    const Tensor gamma = random_tensor({c}, 8, 0.5f, 1.5f);
    const Tensor beta = random_tensor({c}, 9);
    const Tensor dy = random_tensor(s, 10);
    for (double eps : {1e-3, 1.001e-5}) {
      const std::string ctx = "batchnorm training x=" + s.str() + " eps=" + std::to_string(eps);
      expect_backends_agree(ctx, [&] {
        Tensor mean, var, dx, dgamma, dbeta;
        Tensor y = batchnorm_forward_training(x, gamma, beta, eps, mean, var);
        batchnorm_backward(dy, x, gamma, mean, var, eps, false, dx, dgamma, dbeta);
        return Outputs{{"y", y},   {"mean", mean},     {"var", var},
                       {"dx", dx}, {"dgamma", dgamma}, {"dbeta", dbeta}};
      });
    }
  }
}

TEST(OneDnnBatchNorm, InferenceForwardAndFixedStatsBackwardMatchRef) {
  for (const Shape& s : kBnShapes) {
    const int64_t c = s[-1];
    const Tensor x = random_tensor(s, 11, -2.0f, 3.0f);
    const Tensor gamma = random_tensor({c}, 12, 0.5f, 1.5f);
    const Tensor beta = random_tensor({c}, 13);
    const Tensor mean = random_tensor({c}, 14);
    const Tensor var = random_tensor({c}, 15, 0.2f, 2.0f);
    const Tensor dy = random_tensor(s, 16);
    const double eps = 1e-3;
    expect_backends_agree("batchnorm inference x=" + s.str(), [&] {
      Tensor dx, dgamma, dbeta;
      Tensor y = batchnorm_forward_inference(x, gamma, beta, mean, var, eps);
      batchnorm_backward(dy, x, gamma, mean, var, eps, true, dx, dgamma, dbeta);
      return Outputs{{"y", y}, {"dx", dx}, {"dgamma", dgamma}, {"dbeta", dbeta}};
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Element-wise, softmax, add, zero padding.

TEST(OneDnnEltwise, ForwardAndBackwardMatchRef) {
  const std::vector<Shape> shapes = {{2, 5, 7, 3}, {1, 8, 8, 16}, {3, 17}, {11}};
  for (Eltwise e : {Eltwise::Linear, Eltwise::Relu, Eltwise::Sigmoid, Eltwise::Tanh}) {
    for (const Shape& s : shapes) {
      const Tensor x = random_tensor(s, 17, -3.0f, 3.0f);
      const Tensor dy = random_tensor(s, 18);
      expect_backends_agree(std::string(eltwise_name(e)) + " x=" + s.str(), [&] {
        Tensor y = eltwise_forward(e, x);
        Tensor dx = eltwise_backward(e, dy, x, y);
        return Outputs{{"y", y}, {"dx", dx}};
      });
    }
  }
}

TEST(OneDnnEltwise, LeakyReluMatchesRefFromTheInputAndFromTheOutput) {
  for (double alpha : {0.3, 0.01, 1.5}) {
    for (const Shape& s : std::vector<Shape>{{2, 5, 7, 3}, {1, 8, 8, 16}, {3, 17}}) {
      const Tensor x = random_tensor(s, 21, -3.0f, 3.0f);
      const Tensor dy = random_tensor(s, 22);
      expect_backends_agree(fmt::format("leaky relu alpha={} x={}", alpha, s.str()), [&] {
        Tensor y = eltwise_forward(Eltwise::Relu, x, alpha);
        Tensor dx_from_x = eltwise_backward(Eltwise::Relu, dy, x, Tensor(), alpha);
        Tensor dx_from_y = eltwise_backward(Eltwise::Relu, dy, Tensor(), y, alpha);
        return Outputs{{"y", y}, {"dx_from_x", dx_from_x}, {"dx_from_y", dx_from_y}};
      });
    }
  }
  // Known values, and a negative slope is refused.
  const Tensor x = Tensor::from_vector(Shape{4}, {-2.0f, -0.5f, 0.0f, 3.0f});
  for (Backend b : {Backend::Ref, Backend::OneDnn}) {
    BackendScope scope(b);
    EXPECT_EQ(plain(eltwise_forward(Eltwise::Relu, x, 0.25)).to_vector(),
              (std::vector<float>{-0.5f, -0.125f, 0.0f, 3.0f}));
    EXPECT_THROW(eltwise_forward(Eltwise::Relu, x, -0.1), ConfigError);
  }
}

TEST(OneDnnSoftmax, ForwardAndBackwardMatchRef) {
  for (const Shape& s : std::vector<Shape>{{2, 6}, {1, 6}, {5, 17}, {3, 1000}}) {
    const Tensor x = random_tensor(s, 19, -4.0f, 4.0f);
    const Tensor dy = random_tensor(s, 20);
    expect_backends_agree("softmax x=" + s.str(), [&] {
      Tensor y = softmax_forward(x);
      Tensor dx = softmax_backward(dy, y);
      return Outputs{{"y", y}, {"dx", dx}};
    });
  }
}

TEST(OneDnnAdd, MatchesRef) {
  for (const Shape& s : std::vector<Shape>{{2, 15, 15, 256}, {1, 3, 5, 7}, {4, 9}}) {
    for (int inputs : {1, 2, 3}) {
      std::vector<Tensor> xs;
      for (int i = 0; i < inputs; ++i) xs.push_back(random_tensor(s, 21 + i));
      expect_backends_agree("add x=" + s.str() + " inputs=" + std::to_string(inputs), [&] {
        return Outputs{{"y", add(xs)}};
      });
    }
  }
}

TEST(OneDnnZeroPad, ForwardAndBackwardMatchRef) {
  const std::vector<std::pair<Shape, Pad2>> cases = {
      {{2, 64, 64, 3}, {3, 3, 3, 3}},
      {{1, 5, 7, 2}, {0, 1, 2, 0}},
      {{2, 4, 4, 16}, {1, 1, 1, 1}},
  };
  for (const auto& [s, p] : cases) {
    const Tensor x = random_tensor(s, 24);
    const Tensor dy =
        random_tensor({s[0], s[1] + p.top + p.bottom, s[2] + p.left + p.right, s[3]}, 25);
    expect_backends_agree("zero_pad x=" + s.str(), [&] {
      return Outputs{{"y", zero_pad_forward(x, p)}, {"dx", zero_pad_backward(dy, p)}};
    });
  }
}

// Zero padding of tensors in the blocked layouts convolutions produce (channel counts that fill
// the block, and 12 and 20 that leave padding lanes) stays blocked and matches the reference.
TEST(OneDnnZeroPad, BlockedInputsStayBlockedAndMatchRef) {
  for (int64_t c : {8, 12, 16, 20, 32}) {
    for (const Pad2 p : {Pad2{1, 1, 1, 1}, Pad2{0, 1, 2, 0}, Pad2{3, 3, 3, 3}}) {
      const std::string ctx = "zero_pad blocked c=" + std::to_string(c) +
                              " pad=" + std::to_string(p.top) + "," + std::to_string(p.bottom) +
                              "," + std::to_string(p.left) + "," + std::to_string(p.right);
      BackendScope dnn(Backend::OneDnn);
      // A 1x1 convolution turns plain data into oneDNN's preferred (blocked) layout.
      auto blocked = [&](const Shape& s, uint64_t seed) {
        ConvGeom g{.n = s[0], .h = s[1], .w = s[2], .c = 3, .kh = 1, .kw = 1, .f = s[3]};
        g.finish();
        return conv2d_forward(random_tensor({s[0], s[1], s[2], 3}, seed),
                              random_tensor({1, 1, 3, s[3]}, seed + 1), Tensor(), g);
      };
      const Shape xs{2, 5, 6, c};
      const Shape ys{2, 5 + p.top + p.bottom, 6 + p.left + p.right, c};
      const Tensor x = blocked(xs, 30), dy = blocked(ys, 40);
      const Tensor y = zero_pad_forward(x, p), dx = zero_pad_backward(dy, p);
      ASSERT_FALSE(x.is_plain()) << ctx << ": the blocked path is not exercised";
      EXPECT_FALSE(y.is_plain()) << ctx;
      EXPECT_FALSE(dx.is_plain()) << ctx;
      Tensor y_ref, dx_ref;
      {
        BackendScope ref(Backend::Ref);
        y_ref = zero_pad_forward(plain(x), p);
        dx_ref = zero_pad_backward(plain(dy), p);
      }
      EXPECT_TRUE(AllClose(y, y_ref, 0.0, ctx + " forward"));
      EXPECT_TRUE(AllClose(dx, dx_ref, 0.0, ctx + " backward"));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Dense.

TEST(OneDnnDense, ForwardAndGradientsMatchRef) {
  struct DenseCase {
    int64_t m, k, u;
    bool bias;
  };
  for (const DenseCase& dc : std::vector<DenseCase>{
           {2, 2048, 6, true}, {1, 2048, 6, true}, {3, 17, 5, true}, {7, 9, 13, false}}) {
    const Tensor x = random_tensor({dc.m, dc.k}, 26);
    const Tensor w = random_tensor({dc.k, dc.u}, 27);
    const Tensor b = dc.bias ? random_tensor({dc.u}, 28) : Tensor();
    const Tensor dy = random_tensor({dc.m, dc.u}, 29);
    const std::string ctx = "dense m=" + std::to_string(dc.m) + " k=" + std::to_string(dc.k) +
                            " u=" + std::to_string(dc.u) + (dc.bias ? " bias" : " no-bias");
    expect_backends_agree(ctx, [&] {
      Tensor dw, db;
      Tensor y = dense_forward(x, w, b);
      Tensor dx = dense_backward_data(dy, w);
      dense_backward_weights(x, dy, dc.bias, dw, db);
      Outputs out{{"y", y}, {"dx", dx}, {"dw", dw}};
      if (dc.bias) out.emplace_back("db", db);
      return out;
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Chains: blocked outputs feed the next op without passing through the logical layout.

ConvGeom conv_geom(int64_t n, int64_t h, int64_t w, int64_t c, int64_t k, int64_t f,
                   int64_t stride) {
  ConvGeom g = make_conv(n, h, w, c, k, k, f);
  g.sh = g.sw = stride;
  auto [top, bottom] = same_padding(h, k, stride, 1);
  auto [left, right] = same_padding(w, k, stride, 1);
  g.pad = {top, bottom, left, right};
  g.finish();
  return g;
}

TEST(OneDnnChain, ConvBnReluConvForwardAndBackwardMatchRef) {
  const ConvGeom g1 = conv_geom(2, 9, 9, 16, 3, 32, 1);
  const ConvGeom g2 = conv_geom(2, 9, 9, 32, 3, 16, 2);
  const Tensor x = random_tensor({2, 9, 9, 16}, 30);
  const Tensor w1 = random_tensor({3, 3, 16, 32}, 31), b1 = random_tensor({32}, 32);
  const Tensor gamma = random_tensor({32}, 33, 0.5f, 1.5f), beta = random_tensor({32}, 34);
  const Tensor w2 = random_tensor({3, 3, 32, 16}, 35), b2 = random_tensor({16}, 36);
  const Tensor dz = random_tensor({2, g2.oh, g2.ow, 16}, 37);
  const double eps = 1e-3;
  expect_backends_agree("conv-bn-relu-conv", [&] {
    Tensor mean, var;
    Tensor h1 = conv2d_forward(x, w1, b1, g1);
    Tensor h2 = batchnorm_forward_training(h1, gamma, beta, eps, mean, var);
    Tensor h3 = eltwise_forward(Eltwise::Relu, h2);
    Tensor z = conv2d_forward(h3, w2, b2, g2);
    if (backend() == Backend::OneDnn) {
      // BN and ReLU work in the layout the conv chose: no reorder between layers.
      EXPECT_EQ(h2.layout(), h1.layout());
      EXPECT_EQ(h3.layout(), h1.layout());
    }
    Tensor dw2, db2, dw1, db1, dgamma, dbeta, dh2;
    Tensor dh3 = conv2d_backward_data(dz, w2, g2);
    conv2d_backward_weights(h3, dz, g2, true, dw2, db2);
    Tensor dh2_in = eltwise_backward(Eltwise::Relu, dh3, h2, h3);
    batchnorm_backward(dh2_in, h1, gamma, mean, var, eps, false, dh2, dgamma, dbeta);
    Tensor dx = conv2d_backward_data(dh2, w1, g1);
    conv2d_backward_weights(x, dh2, g1, true, dw1, db1);
    // db1 is not compared: a bias followed by training-mode BN has an exactly zero gradient,
    // so both backends return rounding noise there.
    return Outputs{{"z", plain(z)},    {"h3", h3},       {"dx", dx},   {"dw1", dw1},
                   {"dgamma", dgamma}, {"dbeta", dbeta}, {"dw2", dw2}, {"db2", db2}};
  });
}

TEST(OneDnnChain, ResidualAddOfMixedLayoutsMatchesRef) {
  // Main path blocked (conv output), shortcut plain: add reorders the shortcut only.
  const ConvGeom g = conv_geom(2, 8, 8, 32, 1, 32, 1);
  const Tensor x = random_tensor({2, 8, 8, 32}, 38);
  const Tensor w = random_tensor({1, 1, 32, 32}, 39);
  expect_backends_agree("conv + shortcut", [&] {
    Tensor y = conv2d_forward(x, w, Tensor(), g);
    // The last one reorders two inputs in one call: two temporaries live at once.
    return Outputs{{"main+shortcut", add({y, x})},
                   {"shortcut+main", add({x, y})},
                   {"shortcut+main+main", add({x, y, y})}};
  });
}

TEST(OneDnnChain, MaxPoolAndAvgPoolOnBlockedInputMatchRef) {
  const ConvGeom g = conv_geom(2, 10, 10, 8, 3, 32, 1);
  PoolGeom pmax = make_pool(PoolKind::Max, 2, 10, 10, 32, 3);
  pmax.sh = pmax.sw = 2;
  pmax.finish();
  PoolGeom pavg = pmax;
  pavg.kind = PoolKind::Avg;
  const Tensor x = random_tensor({2, 10, 10, 8}, 40);
  const Tensor w = random_tensor({3, 3, 8, 32}, 41);
  const Tensor dy = random_tensor({2, pmax.oh, pmax.ow, 32}, 42);
  expect_backends_agree("conv -> pool", [&] {
    Tensor h = conv2d_forward(x, w, Tensor(), g);
    Tensor ws_max, ws_avg;
    Tensor ymax = pool_forward(h, pmax, ws_max);
    Tensor yavg = pool_forward(h, pavg, ws_avg);
    return Outputs{{"max", ymax},
                   {"avg", yavg},
                   {"dmax", pool_backward(dy, h, ws_max, pmax)},
                   {"davg", pool_backward(dy, h, ws_avg, pavg)}};
  });
}

// ---------------------------------------------------------------------------------------------
// Weight updates: the reordered-weights cache is keyed by (storage, version), so writing new
// values and bumping the version must change the result.

void overwrite(Tensor& t, uint64_t seed) {
  t.copy_from(random_tensor(t.shape(), seed));
  t.bump_version();
}

TEST(OneDnnWeightCache, ConvPicksUpUpdatedWeights) {
  const ConvGeom g = conv_geom(2, 7, 7, 16, 3, 32, 1);
  const Tensor x = random_tensor({2, 7, 7, 16}, 43);
  const Tensor dy = random_tensor({2, 7, 7, 32}, 44);
  Tensor w = random_tensor({3, 3, 16, 32}, 45);
  BackendScope scope(Backend::OneDnn);
  Tensor y_before = plain(conv2d_forward(x, w, Tensor(), g));
  conv2d_backward_data(dy, w, g);  // fills the backward-data weights cache too
  overwrite(w, 46);
  Tensor y_after = plain(conv2d_forward(x, w, Tensor(), g));
  Tensor dx_after = plain(conv2d_backward_data(dy, w, g));
  Tensor y_expected, dx_expected;
  {
    BackendScope ref(Backend::Ref);
    y_expected = conv2d_forward(x, w, Tensor(), g);
    dx_expected = conv2d_backward_data(dy, w, g);
  }
  EXPECT_TRUE(AllClose(y_after, y_expected, kTol, "conv forward after update"));
  EXPECT_TRUE(AllClose(dx_after, dx_expected, kTol, "conv backward data after update"));
  EXPECT_FALSE(AllClose(y_before, y_expected, kTol, "stale output differs"));
}

TEST(OneDnnWeightCache, DensePicksUpUpdatedWeights) {
  const Tensor x = random_tensor({2, 64}, 47);
  Tensor w = random_tensor({64, 6}, 48);
  BackendScope scope(Backend::OneDnn);
  dense_forward(x, w, Tensor());
  overwrite(w, 49);
  Tensor y_after = dense_forward(x, w, Tensor());
  Tensor y_expected;
  {
    BackendScope ref(Backend::Ref);
    y_expected = dense_forward(x, w, Tensor());
  }
  EXPECT_TRUE(AllClose(y_after, y_expected, kTol, "dense forward after update"));
}

// ---------------------------------------------------------------------------------------------
// Errors are typed and name the op.

TEST(OneDnnErrors, ShapeMismatchThrowsShapeError) {
  BackendScope scope(Backend::OneDnn);
  const ConvGeom g = conv_geom(2, 7, 7, 16, 3, 32, 1);
  const Tensor x = random_tensor({2, 7, 7, 8}, 50);
  const Tensor w = random_tensor({3, 3, 16, 32}, 51);
  EXPECT_THROW(conv2d_forward(x, w, Tensor(), g), ShapeError);
}

TEST(OneDnnLayout, ToPlainOfPlainIsIdentity) {
  const Tensor x = random_tensor({2, 3}, 52);
  EXPECT_TRUE(plain(x).shares_storage(x));
}

}  // namespace
}  // namespace resnet::ops
