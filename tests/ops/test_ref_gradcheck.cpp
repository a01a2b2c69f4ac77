// Every reference backward kernel against central differences of its own forward, in double.
// The reference kernels are the oracle for the oneDNN backend, so their gradients are checked
// independently here. Each case prints its parameters (and the checker its seed) when it fails.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <ostream>
#include <string>
#include <vector>

#include "ops/ops.h"
#include "ops/ref/ref.h"
#include "resnet/tensor.h"
#include "support/gradcheck.h"

// GCC 12 warns about designated initializers that leave members to their default member
// initializers (ConvGeom{.n = 1, ...} without .pad); that is exactly the intended use here.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace resnet::ops {
namespace {

using testing::gradcheck;
using testing::GradInput;
using testing::GradValues;
using testing::random_values;
using Vec = std::vector<double>;

const double kNaN = std::numeric_limits<double>::quiet_NaN();

// Output buffers start as NaN so that a forward kernel leaving an element unwritten makes the
// checker fail on a non-finite output.
Vec nan_vec(int64_t n) { return Vec(static_cast<size_t>(n), kNaN); }

// Distinct values at least `gap` apart in random order: max pooling has no ties, and no
// central-difference step (1e-5) can change which cell wins.
Vec distinct_values(int64_t n, uint64_t seed, double gap = 2e-3) {
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  Rng rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    std::swap(perm[i], perm[static_cast<int64_t>(rng.below(static_cast<uint64_t>(i + 1)))]);
  }
  Vec v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = (static_cast<double>(perm[i]) - 0.5 * n) * gap;
  return v;
}

// Values in [-2, 2) kept at least 0.05 away from 0, the kink of ReLU.
Vec away_from_zero(int64_t n, uint64_t seed) {
  Vec v = random_values(n, seed, -2.0, 2.0);
  for (auto& e : v) {
    if (std::abs(e) < 0.05) e = e < 0 ? e - 0.1 : e + 0.1;
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Convolution.
enum class Pad { Valid, Same, Explicit };

struct ConvCase {
  int64_t n, h, w, c, kh, kw, f;
  int64_t sh = 1, sw = 1, dh = 1, dw = 1;
  Pad padding = Pad::Valid;
  Pad2 explicit_pad = {};
  bool bias = true;

  ConvGeom geom() const {
    ConvGeom g{.n = n,
               .h = h,
               .w = w,
               .c = c,
               .kh = kh,
               .kw = kw,
               .f = f,
               .sh = sh,
               .sw = sw,
               .dh = dh,
               .dw = dw};
    if (padding == Pad::Same) {
      auto [t, b] = same_padding(h, kh, sh, dh);
      auto [l, r] = same_padding(w, kw, sw, dw);
      g.pad = {t, b, l, r};
    } else if (padding == Pad::Explicit) {
      g.pad = explicit_pad;
    }
    g.finish();
    return g;
  }
  std::string str() const { return geom().str() + (bias ? " bias" : " no-bias"); }
};
void PrintTo(const ConvCase& c, std::ostream* os) { *os << c.str(); }

const ConvCase kConvCases[] = {
    {.n = 1, .h = 5, .w = 5, .c = 2, .kh = 3, .kw = 3, .f = 3},
    // Odd sizes, stride 2, 'same' padding split (1, 1) on both axes.
    {.n = 2,
     .h = 7,
     .w = 5,
     .c = 3,
     .kh = 3,
     .kw = 3,
     .f = 4,
     .sh = 2,
     .sw = 2,
     .padding = Pad::Same},
    // Even size, stride 2: 'same' padding is asymmetric (0, 1).
    {.n = 1,
     .h = 6,
     .w = 6,
     .c = 3,
     .kh = 3,
     .kw = 3,
     .f = 2,
     .sh = 2,
     .sw = 2,
     .padding = Pad::Same,
     .bias = false},
    {.n = 1, .h = 4, .w = 4, .c = 2, .kh = 3, .kw = 3, .f = 2, .padding = Pad::Same},
    // 1x1 convolutions, as in bottleneck blocks and projection shortcuts.
    {.n = 2, .h = 4, .w = 3, .c = 5, .kh = 1, .kw = 1, .f = 3},
    {.n = 1, .h = 5, .w = 5, .c = 4, .kh = 1, .kw = 1, .f = 2, .sh = 2, .sw = 2, .bias = false},
    // Dilation 2.
    {.n = 1,
     .h = 7,
     .w = 6,
     .c = 2,
     .kh = 3,
     .kw = 3,
     .f = 2,
     .dh = 2,
     .dw = 2,
     .padding = Pad::Same},
    {.n = 1, .h = 7, .w = 7, .c = 2, .kh = 3, .kw = 3, .f = 3, .dh = 2, .dw = 2, .bias = false},
    // Rectangular kernel, unequal strides, explicit asymmetric padding.
    {.n = 1,
     .h = 5,
     .w = 4,
     .c = 2,
     .kh = 2,
     .kw = 3,
     .f = 2,
     .sh = 1,
     .sw = 2,
     .padding = Pad::Explicit,
     .explicit_pad = {1, 0, 2, 1}},
    // The ResNet stem's 7x7 stride 2 'same' conv, shrunk: pads (3, 3) on h=9, (2, 3) on w=8.
    {.n = 1,
     .h = 9,
     .w = 8,
     .c = 1,
     .kh = 7,
     .kw = 7,
     .f = 2,
     .sh = 2,
     .sw = 2,
     .padding = Pad::Same},
    // Kernel as large as the input: a single output pixel.
    {.n = 2, .h = 3, .w = 3, .c = 2, .kh = 3, .kw = 3, .f = 2},
    // Stride larger than the kernel: some input cells are read by no window (gradient 0).
    {.n = 1, .h = 7, .w = 7, .c = 1, .kh = 2, .kw = 2, .f = 2, .sh = 3, .sw = 3},
};

class RefConvGrad : public ::testing::TestWithParam<ConvCase> {};

TEST_P(RefConvGrad, MatchesFiniteDifferences) {
  const ConvCase& cc = GetParam();
  const ConvGeom g = cc.geom();
  const int64_t nx = g.n * g.h * g.w * g.c, nw = g.kh * g.kw * g.c * g.f,
                ny = g.n * g.oh * g.ow * g.f;
  std::vector<GradInput> inputs = {{"x", random_values(nx, 1)}, {"w", random_values(nw, 2)}};
  if (cc.bias) inputs.push_back({"b", random_values(g.f, 3)});

  auto forward = [&](const GradValues& v) {
    Vec y = nan_vec(ny);
    ref::conv2d_forward(v[0].data(), v[1].data(), cc.bias ? v[2].data() : nullptr, y.data(), g);
    return y;
  };
  auto backward = [&](const GradValues& v, const Vec& dy, GradValues& grads) {
    ref::conv2d_backward_data(dy.data(), v[1].data(), grads[0].data(), g);
    ref::conv2d_backward_weights(v[0].data(), dy.data(), grads[1].data(),
                                 cc.bias ? grads[2].data() : nullptr, g);
  };
  EXPECT_TRUE(gradcheck(inputs, forward, backward, cc.str()));
}

INSTANTIATE_TEST_SUITE_P(Ref, RefConvGrad, ::testing::ValuesIn(kConvCases));

// ---------------------------------------------------------------------------------------------
// Batch normalization.
struct BnCase {
  int64_t m, c;
  double eps;
  bool stats_fixed;
  double x_lo = -1.0, x_hi = 1.0;  // an offset range checks the mean is really subtracted
  std::string str() const {
    return fmt::format("batchnorm m={} c={} eps={} {} x in [{}, {})", m, c, eps,
                       stats_fixed ? "stats_fixed" : "training", x_lo, x_hi);
  }
};
void PrintTo(const BnCase& c, std::ostream* os) { *os << c.str(); }

const BnCase kBnCases[] = {
    {.m = 6, .c = 3, .eps = 1e-3, .stats_fixed = false},
    {.m = 10, .c = 4, .eps = 1.001e-5, .stats_fixed = false, .x_lo = 2.0, .x_hi = 5.0},
    {.m = 2, .c = 2, .eps = 1e-3, .stats_fixed = false},
    // One row: var = 0, y = beta whatever x is, so dx must be exactly 0.
    {.m = 1, .c = 3, .eps = 1e-3, .stats_fixed = false},
    {.m = 6, .c = 3, .eps = 1e-3, .stats_fixed = true},
    {.m = 1, .c = 2, .eps = 1e-5, .stats_fixed = true, .x_lo = -3.0, .x_hi = 3.0},
};

class RefBatchNormGrad : public ::testing::TestWithParam<BnCase> {};

TEST_P(RefBatchNormGrad, MatchesFiniteDifferences) {
  const BnCase& bc = GetParam();
  const int64_t m = bc.m, c = bc.c;
  std::vector<GradInput> inputs = {{"x", random_values(m * c, 11, bc.x_lo, bc.x_hi)},
                                   {"gamma", random_values(c, 12, 0.5, 1.5)},
                                   {"beta", random_values(c, 13)}};
  if (!bc.stats_fixed) {
    auto forward = [&](const GradValues& v) {
      Vec y = nan_vec(m * c), mean = nan_vec(c), var = nan_vec(c);
      ref::batchnorm_forward_training(v[0].data(), v[1].data(), v[2].data(), y.data(), mean.data(),
                                      var.data(), m, c, bc.eps);
      return y;
    };
    auto backward = [&](const GradValues& v, const Vec& dy, GradValues& grads) {
      // The statistics the training forward computed at this point, as a layer would keep them.
      Vec y(m * c), mean(c), var(c);
      ref::batchnorm_forward_training(v[0].data(), v[1].data(), v[2].data(), y.data(), mean.data(),
                                      var.data(), m, c, bc.eps);
      ref::batchnorm_backward(dy.data(), v[0].data(), v[1].data(), mean.data(), var.data(),
                              grads[0].data(), grads[1].data(), grads[2].data(), m, c, bc.eps,
                              false);
    };
    EXPECT_TRUE(gradcheck(inputs, forward, backward, bc.str()));
  } else {
    // Moving statistics: constants of the inference form, not differentiated.
    inputs.push_back({"moving_mean", random_values(c, 14, -0.5, 0.5), false});
    inputs.push_back({"moving_var", random_values(c, 15, 0.2, 2.0), false});
    auto forward = [&](const GradValues& v) {
      Vec y = nan_vec(m * c);
      ref::batchnorm_forward_inference(v[0].data(), v[1].data(), v[2].data(), v[3].data(),
                                       v[4].data(), y.data(), m, c, bc.eps);
      return y;
    };
    auto backward = [&](const GradValues& v, const Vec& dy, GradValues& grads) {
      ref::batchnorm_backward(dy.data(), v[0].data(), v[1].data(), v[3].data(), v[4].data(),
                              grads[0].data(), grads[1].data(), grads[2].data(), m, c, bc.eps,
                              true);
    };
    EXPECT_TRUE(gradcheck(inputs, forward, backward, bc.str()));
  }
}

INSTANTIATE_TEST_SUITE_P(Ref, RefBatchNormGrad, ::testing::ValuesIn(kBnCases));

// ---------------------------------------------------------------------------------------------
// Element-wise activations.
class RefEltwiseGrad : public ::testing::TestWithParam<Eltwise> {};

TEST_P(RefEltwiseGrad, MatchesFiniteDifferences) {
  const Eltwise e = GetParam();
  const int64_t n = 40;
  const std::string context = std::string("eltwise ") + eltwise_name(e) + " count=40";
  std::vector<GradInput> inputs = {{"x", away_from_zero(n, 21)}};
  auto forward = [&](const GradValues& v) {
    Vec y = nan_vec(n);
    ref::eltwise_forward(e, v[0].data(), y.data(), n);
    return y;
  };
  auto backward = [&](const GradValues& v, const Vec& dy, GradValues& grads) {
    Vec y(n);
    ref::eltwise_forward(e, v[0].data(), y.data(), n);
    ref::eltwise_backward(e, dy.data(), v[0].data(), y.data(), grads[0].data(), n);
  };
  EXPECT_TRUE(gradcheck(inputs, forward, backward, context));
}

TEST(RefEltwiseGrad, LeakyReluMatchesFiniteDifferences) {
  const int64_t n = 40;
  const double alpha = 0.3;
  std::vector<GradInput> inputs = {{"x", away_from_zero(n, 23)}};
  auto forward = [&](const GradValues& v) {
    Vec y = nan_vec(n);
    ref::eltwise_forward(Eltwise::Relu, v[0].data(), y.data(), n, alpha);
    return y;
  };
  auto backward = [&](const GradValues& v, const Vec& dy, GradValues& grads) {
    Vec y(n);
    ref::eltwise_forward(Eltwise::Relu, v[0].data(), y.data(), n, alpha);
    // From the output only, as the layer does.
    ref::eltwise_backward<double>(Eltwise::Relu, dy.data(), nullptr, y.data(), grads[0].data(), n,
                                  alpha);
  };
  EXPECT_TRUE(gradcheck(inputs, forward, backward, "eltwise leaky relu alpha=0.3 count=40"));
}

INSTANTIATE_TEST_SUITE_P(Ref, RefEltwiseGrad,
                         ::testing::Values(Eltwise::Linear, Eltwise::Relu, Eltwise::Sigmoid,
                                           Eltwise::Tanh),
                         [](const auto& info) { return std::string(eltwise_name(info.param)); });

// ---------------------------------------------------------------------------------------------
// Softmax.
struct SoftmaxCase {
  int64_t rows, c;
  double scale;  // input range [-scale, scale)
  std::string str() const { return fmt::format("softmax rows={} c={} scale={}", rows, c, scale); }
};
void PrintTo(const SoftmaxCase& c, std::ostream* os) { *os << c.str(); }

class RefSoftmaxGrad : public ::testing::TestWithParam<SoftmaxCase> {};

TEST_P(RefSoftmaxGrad, MatchesFiniteDifferences) {
  const SoftmaxCase& sc = GetParam();
  const int64_t n = sc.rows * sc.c;
  std::vector<GradInput> inputs = {{"x", random_values(n, 31, -sc.scale, sc.scale)}};
  auto forward = [&](const GradValues& v) {
    Vec y = nan_vec(n);
    ref::softmax_forward(v[0].data(), y.data(), sc.rows, sc.c);
    return y;
  };
  auto backward = [&](const GradValues& v, const Vec& dy, GradValues& grads) {
    Vec y(n);
    ref::softmax_forward(v[0].data(), y.data(), sc.rows, sc.c);
    ref::softmax_backward(dy.data(), y.data(), grads[0].data(), sc.rows, sc.c);
  };
  EXPECT_TRUE(gradcheck(inputs, forward, backward, sc.str()));
}

INSTANTIATE_TEST_SUITE_P(Ref, RefSoftmaxGrad,
                         ::testing::Values(SoftmaxCase{3, 5, 2.0}, SoftmaxCase{1, 10, 1.0},
                                           SoftmaxCase{4, 1, 1.0}, SoftmaxCase{2, 6, 8.0}));

// ---------------------------------------------------------------------------------------------
// Pooling.
struct PoolCase {
  PoolKind kind;
  int64_t n, h, w, c, kh, kw, s;
  Pad padding = Pad::Valid;
  Pad2 explicit_pad = {};

  PoolGeom geom() const {
    PoolGeom g{.kind = kind, .n = n, .h = h, .w = w, .c = c, .kh = kh, .kw = kw, .sh = s, .sw = s};
    if (padding == Pad::Same) {
      auto [t, b] = same_padding(h, kh, s, 1);
      auto [l, r] = same_padding(w, kw, s, 1);
      g.pad = {t, b, l, r};
    } else if (padding == Pad::Explicit) {
      g.pad = explicit_pad;
    }
    g.finish();
    return g;
  }
  std::string str() const { return geom().str(); }
};
void PrintTo(const PoolCase& c, std::ostream* os) { *os << c.str(); }

const PoolCase kPoolCases[] = {
    // Exact tiling.
    {PoolKind::Max, 2, 4, 4, 2, 2, 2, 2},
    // Overlapping windows with 'same' padding on odd sizes.
    {PoolKind::Max, 1, 7, 5, 2, 3, 3, 2, Pad::Same},
    {PoolKind::Max, 1, 4, 4, 3, 3, 3, 1, Pad::Same},
    // Even size, stride 2: asymmetric 'same' padding (0, 1).
    {PoolKind::Max, 1, 6, 6, 1, 3, 3, 2, Pad::Same},
    // The ResNet stem's pooling: explicit symmetric padding, 3x3 stride 2.
    {PoolKind::Max, 1, 7, 7, 2, 3, 3, 2, Pad::Explicit, {1, 1, 1, 1}},
    // Global window.
    {PoolKind::Max, 2, 5, 3, 3, 5, 3, 1},
    {PoolKind::Avg, 2, 4, 4, 2, 2, 2, 2},
    {PoolKind::Avg, 1, 7, 5, 2, 3, 3, 2, Pad::Same},
    {PoolKind::Avg, 1, 6, 5, 2, 3, 3, 2, Pad::Same},
    {PoolKind::Avg, 1, 4, 4, 3, 3, 3, 1, Pad::Same},
    {PoolKind::Avg, 1, 5, 5, 1, 2, 2, 3},  // stride > window: uncovered cells get 0
    {PoolKind::Avg, 2, 5, 3, 3, 5, 3, 1},  // global average pooling
};

class RefPoolGrad : public ::testing::TestWithParam<PoolCase> {};

TEST_P(RefPoolGrad, MatchesFiniteDifferences) {
  const PoolCase& pc = GetParam();
  const PoolGeom g = pc.geom();
  const int64_t nx = g.n * g.h * g.w * g.c, ny = g.n * g.oh * g.ow * g.c;
  std::vector<GradInput> inputs = {{"x", distinct_values(nx, 41)}};
  auto forward = [&](const GradValues& v) {
    Vec y = nan_vec(ny);
    ref::pool_forward(v[0].data(), y.data(), g);
    return y;
  };
  auto backward = [&](const GradValues& v, const Vec& dy, GradValues& grads) {
    ref::pool_backward(dy.data(), v[0].data(), grads[0].data(), g);
  };
  EXPECT_TRUE(gradcheck(inputs, forward, backward, g.str()));
}

INSTANTIATE_TEST_SUITE_P(Ref, RefPoolGrad, ::testing::ValuesIn(kPoolCases));

// ---------------------------------------------------------------------------------------------
// Zero padding.
class RefZeroPadGrad : public ::testing::TestWithParam<Pad2> {};

TEST_P(RefZeroPadGrad, MatchesFiniteDifferences) {
  const Pad2 p = GetParam();
  const int64_t n = 2, h = 3, w = 4, c = 2;
  const int64_t ny = n * (h + p.top + p.bottom) * (w + p.left + p.right) * c;
  const std::string context =
      fmt::format("zero_pad n=2 h=3 w=4 c=2 pad={},{},{},{}", p.top, p.bottom, p.left, p.right);
  std::vector<GradInput> inputs = {{"x", random_values(n * h * w * c, 51)}};
  auto forward = [&](const GradValues& v) {
    Vec y = nan_vec(ny);
    ref::zero_pad_forward(v[0].data(), y.data(), n, h, w, c, p);
    return y;
  };
  auto backward = [&](const GradValues& v, const Vec& dy, GradValues& grads) {
    ref::zero_pad_backward(dy.data(), grads[0].data(), n, h, w, c, p);
  };
  EXPECT_TRUE(gradcheck(inputs, forward, backward, context));
}

INSTANTIATE_TEST_SUITE_P(Ref, RefZeroPadGrad,
                         ::testing::Values(Pad2{1, 1, 1, 1}, Pad2{0, 2, 3, 0}, Pad2{3, 3, 3, 3},
                                           Pad2{0, 0, 0, 0}));

// ---------------------------------------------------------------------------------------------
// Dense.
struct DenseCase {
  int64_t m, k, u;
  bool bias;
  std::string str() const {
    return fmt::format("dense m={} k={} u={} {}", m, k, u, bias ? "bias" : "no-bias");
  }
};
void PrintTo(const DenseCase& c, std::ostream* os) { *os << c.str(); }

class RefDenseGrad : public ::testing::TestWithParam<DenseCase> {};

TEST_P(RefDenseGrad, MatchesFiniteDifferences) {
  const DenseCase& dc = GetParam();
  const int64_t m = dc.m, k = dc.k, u = dc.u;
  std::vector<GradInput> inputs = {{"x", random_values(m * k, 61)},
                                   {"w", random_values(k * u, 62)}};
  if (dc.bias) inputs.push_back({"b", random_values(u, 63)});
  auto forward = [&](const GradValues& v) {
    Vec y = nan_vec(m * u);
    ref::dense_forward(v[0].data(), v[1].data(), dc.bias ? v[2].data() : nullptr, y.data(), m, k,
                       u);
    return y;
  };
  auto backward = [&](const GradValues& v, const Vec& dy, GradValues& grads) {
    ref::dense_backward_data(dy.data(), v[1].data(), grads[0].data(), m, k, u);
    ref::dense_backward_weights(v[0].data(), dy.data(), grads[1].data(),
                                dc.bias ? grads[2].data() : nullptr, m, k, u);
  };
  EXPECT_TRUE(gradcheck(inputs, forward, backward, dc.str()));
}

INSTANTIATE_TEST_SUITE_P(Ref, RefDenseGrad,
                         ::testing::Values(DenseCase{3, 4, 5, true}, DenseCase{1, 7, 2, false},
                                           DenseCase{5, 1, 1, true}));

// ---------------------------------------------------------------------------------------------
// Add: dL/dx_i = dy for every input (there is no backward kernel; this pins the forward's
// linearity in each input and that every input is read).
class RefAddGrad : public ::testing::TestWithParam<int> {};

TEST_P(RefAddGrad, MatchesFiniteDifferences) {
  const int count_inputs = GetParam();
  const int64_t n = 12;
  std::vector<GradInput> inputs;
  for (int i = 0; i < count_inputs; ++i) {
    inputs.push_back({fmt::format("x{}", i), random_values(n, 70 + i)});
  }
  auto forward = [&](const GradValues& v) {
    std::vector<const double*> xs;
    for (const auto& x : v) xs.push_back(x.data());
    Vec y = nan_vec(n);
    ref::add(xs.data(), static_cast<int64_t>(xs.size()), y.data(), n);
    return y;
  };
  auto backward = [&](const GradValues&, const Vec& dy, GradValues& grads) {
    for (auto& g : grads) std::copy(dy.begin(), dy.end(), g.begin());
  };
  EXPECT_TRUE(gradcheck(inputs, forward, backward, fmt::format("add inputs={}", count_inputs)));
}

INSTANTIATE_TEST_SUITE_P(Ref, RefAddGrad, ::testing::Values(1, 2, 3));

// ---------------------------------------------------------------------------------------------
// The checker itself must reject wrong and incomplete gradients, or every test above is vacuous.
TEST(RefGradCheckSelfTest, RejectsUnwrittenElement) {
  std::vector<GradInput> inputs = {{"x", random_values(6, 81)}};
  auto forward = [](const GradValues& v) { return v[0]; };
  auto backward = [](const GradValues&, const Vec& dy, GradValues& grads) {
    std::copy(dy.begin(), dy.end() - 1, grads[0].begin());  // the last element is forgotten
  };
  auto r = gradcheck(inputs, forward, backward, "identity missing last");
  EXPECT_FALSE(r);
  EXPECT_NE(std::string(r.message()).find("element 5"), std::string::npos) << r.message();
}

TEST(RefGradCheckSelfTest, RejectsAccumulatingBackward) {
  std::vector<GradInput> inputs = {{"x", random_values(6, 82)}};
  auto forward = [](const GradValues& v) { return v[0]; };
  auto backward = [](const GradValues&, const Vec& dy, GradValues& grads) {
    for (size_t i = 0; i < dy.size(); ++i) grads[0][i] += dy[i];  // += into caller memory
  };
  EXPECT_FALSE(gradcheck(inputs, forward, backward, "identity accumulating"));
}

TEST(RefGradCheckSelfTest, RejectsWrongGradient) {
  std::vector<GradInput> inputs = {{"x", random_values(6, 83)}};
  auto forward = [](const GradValues& v) {
    Vec y(v[0].size());
    for (size_t i = 0; i < y.size(); ++i) y[i] = v[0][i] * v[0][i];
    return y;
  };
  auto backward = [](const GradValues& v, const Vec& dy, GradValues& grads) {
    for (size_t i = 0; i < dy.size(); ++i) grads[0][i] = dy[i] * v[0][i];  // missing factor 2
  };
  EXPECT_FALSE(gradcheck(inputs, forward, backward, "square with wrong derivative"));
}

TEST(RefGradCheckSelfTest, AcceptsCorrectGradient) {
  std::vector<GradInput> inputs = {{"x", random_values(6, 84)}, {"k", {3.0}, false}};
  auto forward = [](const GradValues& v) {
    Vec y(v[0].size());
    for (size_t i = 0; i < y.size(); ++i) y[i] = v[1][0] * v[0][i] * v[0][i];
    return y;
  };
  auto backward = [](const GradValues& v, const Vec& dy, GradValues& grads) {
    EXPECT_TRUE(grads[1].empty());  // not differentiable: no buffer
    for (size_t i = 0; i < dy.size(); ++i) grads[0][i] = dy[i] * 2.0 * v[1][0] * v[0][i];
  };
  EXPECT_TRUE(gradcheck(inputs, forward, backward, "3 x^2"));
}

TEST(RefGradCheckSelfTest, RejectsNonFiniteForward) {
  std::vector<GradInput> inputs = {{"x", random_values(3, 85)}};
  auto forward = [](const GradValues& v) { return Vec{v[0][0], kNaN}; };
  auto backward = [](const GradValues&, const Vec&, GradValues& grads) {
    std::fill(grads[0].begin(), grads[0].end(), 0.0);
  };
  EXPECT_FALSE(gradcheck(inputs, forward, backward, "forward leaves NaN"));
}

}  // namespace
}  // namespace resnet::ops
