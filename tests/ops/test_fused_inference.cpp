// Fused inference path against the unfused reference:
// - ops::conv2d_forward_fused on oneDNN (one primitive: bias, sum post-op, ReLU post-op) against
//   the ref backend's unfused conv + add + relu, over a table of cases;
// - reusing the residual's buffer gives the same result as a copy;
// - ops::fold_batchnorm: conv with the folded kernel/bias equals conv then inference batch norm;
// - Model's inference plan (BN folded, add/ReLU fused) against the layer-by-layer forward, to
//   1e-5, on tutorial blocks, keras.applications bottleneck blocks and a CIFAR ResNet, also after
//   the weights change (refolding), and on the reference backend.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "ops/onednn/onednn.h"
#include "ops/onednn/small_conv.h"
#include "ops/onednn/winograd.h"
#include "ops/ops.h"
#include "resnet/layers.h"
#include "resnet/model.h"
#include "resnet/models.h"
#include "support/allclose.h"

namespace resnet::ops {
namespace {

using testing::AllClose;
using testing::random_tensor;

ConvGeom conv_geom(int64_t n, int64_t h, int64_t w, int64_t c, int64_t k, int64_t f, int64_t s,
                   bool same) {
  ConvGeom g;
  g.n = n;
  g.h = h;
  g.w = w;
  g.c = c;
  g.kh = k;
  g.kw = k;
  g.f = f;
  g.sh = s;
  g.sw = s;
  if (same) {
    auto [t, b] = same_padding(h, k, s, 1);
    auto [l, r] = same_padding(w, k, s, 1);
    g.pad = {t, b, l, r};
  }
  g.finish();
  return g;
}

// relu?(conv(x, w, b) + r?) on the reference backend, unfused (r undefined: no residual).
Tensor reference_fused(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeom& g,
                       const Tensor& r, bool relu) {
  BackendScope ref(Backend::Ref);
  Tensor y = conv2d_forward(plain(x), w, b, g);
  if (r.defined()) y = add({y, plain(r)});
  if (relu) y = eltwise_forward(Eltwise::Relu, y);
  return y;
}

TEST(FusedConv, OneDnnMatchesUnfusedReference) {
  const std::vector<ConvGeom> geoms = {
      conv_geom(2, 7, 7, 3, 3, 5, 1, true),     conv_geom(1, 8, 8, 16, 1, 32, 1, false),
      conv_geom(2, 9, 9, 8, 3, 16, 2, true),    conv_geom(3, 15, 15, 64, 1, 256, 1, false),
      conv_geom(2, 4, 4, 256, 3, 256, 1, true), conv_geom(1, 5, 6, 7, 1, 9, 2, false)};
  int seed = 1;
  for (const ConvGeom& g : geoms) {
    for (int mask = 0; mask < 8; ++mask) {
      const bool bias = mask & 1, with_res = mask & 2, relu = mask & 4;
      const std::string ctx = g.str() + " bias=" + std::to_string(bias) +
                              " residual=" + std::to_string(with_res) +
                              " relu=" + std::to_string(relu);
      const Tensor x = random_tensor({g.n, g.h, g.w, g.c}, ++seed);
      const Tensor w = random_tensor({g.kh, g.kw, g.c, g.f}, ++seed, -0.3f, 0.3f);
      const Tensor b = bias ? random_tensor({g.f}, ++seed) : Tensor();
      const Tensor r = with_res ? random_tensor({g.n, g.oh, g.ow, g.f}, ++seed) : Tensor();
      const Tensor expected = reference_fused(x, w, b, g, r, relu);
      Tensor actual;
      {
        BackendScope dnn(Backend::OneDnn);
        actual = plain(conv2d_forward_fused(x, w, b, g, r, relu));
        // Prepared once, run twice: the same as the one-shot call (bit for bit when both are
        // the same oneDNN primitive; small outputs take the streaming kernel, tested below).
        const PreparedConv prepared(w, b, g, with_res, relu);
        EXPECT_TRUE(prepared.defined());
        const Tensor first = plain(prepared(x, r, false)).clone();
        EXPECT_TRUE(AllClose(plain(prepared(x, r, false)), first, 0.0, ctx + " prepared again"));
        // Winograd (3x3 stride 1 with 4x4+ outputs on AVX2) rounds differently: within 1e-4.
        const bool same_primitive = prepared.kernel() == "onednn";
        const bool winograd = prepared.kernel().find("winograd") != std::string::npos;
        EXPECT_TRUE(AllClose(first, actual,
                             same_primitive ? 0.0
                             : winograd     ? 1e-4
                                            : 1e-5,
                             ctx + " prepared " + prepared.kernel()));
      }
      EXPECT_TRUE(AllClose(actual, expected, 1e-5, ctx));
      // The ref backend's fused call is the unfused chain.
      {
        BackendScope ref(Backend::Ref);
        EXPECT_TRUE(AllClose(conv2d_forward_fused(x, w, b, g, r, relu), expected, 0.0, ctx));
      }
    }
  }
}

TEST(FusedConv, ResidualLayoutsAndReuse) {
  BackendScope dnn(Backend::OneDnn);
  const ConvGeom g = conv_geom(2, 8, 8, 32, 1, 64, 1, false);
  const Tensor x = random_tensor({g.n, g.h, g.w, g.c}, 11);
  const Tensor w = random_tensor({g.kh, g.kw, g.c, g.f}, 12, -0.3f, 0.3f);
  const Tensor b = random_tensor({g.f}, 13);
  // Residuals as a network produces them: the output of a training-mode convolution (blocked
  // layout) and the output of the same fused primitive (its own output layout).
  const Tensor x2 = random_tensor({g.n, g.h, g.w, g.c}, 14);
  const Tensor r0 = random_tensor({g.n, g.oh, g.ow, g.f}, 15);
  for (const Tensor& r :
       {conv2d_forward(x2, w, Tensor(), g), conv2d_forward_fused(x2, w, b, g, r0, true, false)}) {
    const Tensor r_plain = plain(r).clone();
    const Tensor expected = reference_fused(x, w, b, g, r_plain, true);
    const Tensor copied = plain(conv2d_forward_fused(x, w, b, g, r, true, false));
    EXPECT_TRUE(AllClose(plain(r), r_plain, 0.0, "residual unchanged without reuse"));
    EXPECT_TRUE(AllClose(copied, expected, 1e-5, "copied residual"));
    const Tensor reused = conv2d_forward_fused(x, w, b, g, r, true, true);
    EXPECT_TRUE(AllClose(plain(reused), expected, 1e-5, "reused residual"));
  }
  // The output of the same fused primitive is in its output layout: reused in place.
  const Tensor r = conv2d_forward_fused(x2, w, b, g, r0, true, false);
  const Tensor reused = conv2d_forward_fused(x, w, b, g, r, true, true);
  EXPECT_TRUE(reused.shares_storage(r));
}

TEST(PreparedConv, InputsInOtherLayoutsReuseAndErrors) {
  BackendScope dnn(Backend::OneDnn);
  const ConvGeom g = conv_geom(2, 8, 8, 32, 3, 64, 1, true);
  const Tensor w = random_tensor({g.kh, g.kw, g.c, g.f}, 21, -0.3f, 0.3f);
  const Tensor b = random_tensor({g.f}, 22);
  const PreparedConv prepared(w, b, g, true, true);
  // An input in a training convolution's (blocked) layout, and plain.
  const ConvGeom g0 = conv_geom(2, 8, 8, 16, 1, 32, 1, false);
  const Tensor x_blocked = conv2d_forward(random_tensor({2, 8, 8, 16}, 23),
                                          random_tensor({1, 1, 16, 32}, 24), Tensor(), g0);
  const Tensor x_plain = plain(x_blocked).clone();
  const Tensor r = random_tensor({g.n, g.oh, g.ow, g.f}, 25);
  const Tensor expected = reference_fused(x_plain, w, b, g, r, true);
  EXPECT_TRUE(AllClose(plain(prepared(x_blocked, r, false)), expected, 1e-5, "blocked input"));
  EXPECT_TRUE(AllClose(plain(prepared(x_plain, r, false)), expected, 1e-5, "plain input"));
  // A residual produced by the prepared convolution itself is overwritten in place when handed
  // over, and left alone otherwise.
  const Tensor own = prepared(x_plain, r, false);
  const Tensor own_copy = plain(own).clone();
  const Tensor kept = prepared(x_plain, own, false);
  EXPECT_FALSE(kept.shares_storage(own));
  EXPECT_TRUE(AllClose(plain(own), own_copy, 0.0, "residual untouched"));
  const Tensor reused = prepared(x_plain, own, true);
  EXPECT_TRUE(reused.shares_storage(own));
  EXPECT_TRUE(AllClose(plain(reused), plain(kept), 0.0, "reused"));
  // Wrong shapes are refused with the op's name.
  try {
    prepared(random_tensor({1, 8, 8, 32}, 26), r, false);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("conv2d_forward_fused"), std::string::npos) << e.what();
  }
  EXPECT_THROW(prepared(x_plain, random_tensor({2, 8, 8, 63}, 27), false), ShapeError);
  // On the reference backend it is the unfused chain.
  BackendScope ref(Backend::Ref);
  const PreparedConv on_ref(w, b, g, true, true);
  EXPECT_FALSE(on_ref.defined());
  EXPECT_TRUE(AllClose(on_ref(x_plain, r, false), expected, 0.0, "ref"));
}

TEST(FusedConv, RejectsWrongResidualShape) {
  const ConvGeom g = conv_geom(1, 4, 4, 3, 3, 4, 1, true);
  const Tensor x = random_tensor({1, 4, 4, 3}, 1);
  const Tensor w = random_tensor({3, 3, 3, 4}, 2);
  EXPECT_THROW(conv2d_forward_fused(x, w, Tensor(), g, random_tensor({1, 4, 4, 5}, 3), false),
               ShapeError);
}

TEST(FoldBatchnorm, ConvWithFoldedWeightsEqualsConvThenBatchnorm) {
  for (Backend be : {Backend::Ref, Backend::OneDnn}) {
    BackendScope scope(be);
    for (bool bias : {false, true}) {
      const ConvGeom g = conv_geom(2, 6, 6, 5, 3, 7, 1, true);
      const Tensor x = random_tensor({g.n, g.h, g.w, g.c}, 21);
      const Tensor w = random_tensor({3, 3, 5, 7}, 22);
      const Tensor b = bias ? random_tensor({7}, 23) : Tensor();
      const Tensor gamma = random_tensor({7}, 24, 0.5f, 2.0f);
      const Tensor beta = random_tensor({7}, 25);
      const Tensor mean = random_tensor({7}, 26);
      const Tensor var = random_tensor({7}, 27, 0.1f, 3.0f);
      const double eps = 1e-3;
      const Tensor expected = plain(
          batchnorm_forward_inference(conv2d_forward(x, w, b, g), gamma, beta, mean, var, eps));
      Tensor wf, bf;
      fold_batchnorm(w, b, gamma, beta, mean, var, eps, wf, bf);
      const uint64_t v = wf.version();
      EXPECT_TRUE(AllClose(plain(conv2d_forward(x, wf, bf, g)), expected, 1e-5,
                           std::string(backend_name(be)) + " bias=" + std::to_string(bias)));
      // Folding again into the same tensors reuses them and bumps their versions.
      const Tensor same = wf;
      fold_batchnorm(w, b, gamma, beta, mean, var, eps, wf, bf);
      EXPECT_TRUE(wf.shares_storage(same));
      EXPECT_GT(wf.version(), v);
    }
  }
  Tensor wf, bf;
  EXPECT_THROW(fold_batchnorm(random_tensor({1, 1, 2, 3}, 1), Tensor(), random_tensor({4}, 2),
                              random_tensor({3}, 3), random_tensor({3}, 4), random_tensor({3}, 5),
                              1e-3, wf, bf),
               ShapeError);
}

// ---------------------------------------------------------------------------------------------
// The streaming kernels for outputs of a few pixels (src/ops/onednn/small_conv.h), on every
// instruction set this CPU runs, against the reference.

// Restores the kernel choice made at start-up.
class SmallConvIsaScope {
 public:
  explicit SmallConvIsaScope(onednn::SmallConvIsa isa) : saved_(onednn::small_conv_isa()) {
    onednn::set_small_conv_isa(isa);
  }
  ~SmallConvIsaScope() { onednn::set_small_conv_isa(saved_); }

 private:
  onednn::SmallConvIsa saved_;
};

std::vector<onednn::SmallConvIsa> small_conv_isas() {
  std::vector<onednn::SmallConvIsa> isas;
  for (auto isa : {onednn::SmallConvIsa::Avx512, onednn::SmallConvIsa::Avx2}) {
    if (onednn::cpu_supports(isa)) isas.push_back(isa);
  }
  return isas;
}

ConvGeom dilated(ConvGeom g, int64_t d) {
  g.dh = g.dw = d;
  g.finish();
  return g;
}

TEST(SmallConv, MatchesReferenceOnEveryIsa) {
  const auto isas = small_conv_isas();
  if (isas.empty()) GTEST_SKIP() << "this CPU has neither AVX2+FMA nor AVX-512";
  // N*OH*OW from 1 to 16: a ResNet's last stages at batch 1 (2x2 and 4x4 outputs, 3x3 and 1x1,
  // stride 2) and batch 2, channel counts that are not multiples of the panel width, odd input
  // channels, one output pixel, a column of pixels, 9 and 12 rows (two kernel calls), every row
  // count of each panel kind's switch (2/3, 4/5, 6/7, 12/13), dilation.
  const std::vector<ConvGeom> geoms = {conv_geom(1, 2, 2, 64, 3, 64, 1, true),
                                       conv_geom(1, 4, 4, 48, 1, 80, 1, false),
                                       conv_geom(1, 4, 4, 40, 3, 32, 1, true),
                                       conv_geom(1, 8, 8, 24, 1, 96, 2, false),
                                       conv_geom(2, 2, 2, 24, 1, 20, 1, false),
                                       conv_geom(1, 1, 1, 16, 1, 8, 1, false),
                                       conv_geom(1, 3, 3, 7, 3, 9, 1, true),
                                       conv_geom(1, 5, 6, 7, 1, 9, 2, false),
                                       conv_geom(1, 4, 4, 16, 3, 70, 2, true),
                                       conv_geom(3, 1, 2, 5, 1, 33, 1, false),
                                       conv_geom(1, 7, 1, 5, 3, 17, 1, true),
                                       conv_geom(1, 3, 4, 12, 3, 24, 1, true),
                                       conv_geom(1, 1, 2, 9, 3, 40, 1, true),
                                       conv_geom(1, 1, 3, 9, 1, 40, 1, false),
                                       conv_geom(1, 1, 5, 6, 3, 72, 1, true),
                                       conv_geom(1, 13, 1, 6, 1, 20, 1, false),
                                       dilated(conv_geom(1, 6, 7, 8, 3, 16, 1, false), 2)};
  int seed = 100;
  for (const auto isa : isas) {
    SmallConvIsaScope scope(isa);
    BackendScope dnn(Backend::OneDnn);
    for (const ConvGeom& g : geoms) {
      ASSERT_LE(g.n * g.oh * g.ow, onednn::kSmallConvMaxPixels) << g.str();
      for (int mask = 0; mask < 8; ++mask) {
        const bool bias = mask & 1, with_res = mask & 2, relu = mask & 4;
        const std::string ctx = std::string(onednn::small_conv_isa_name(isa)) + " " + g.str() +
                                " bias=" + std::to_string(bias) +
                                " residual=" + std::to_string(with_res) +
                                " relu=" + std::to_string(relu);
        const Tensor x = random_tensor({g.n, g.h, g.w, g.c}, ++seed);
        const Tensor w = random_tensor({g.kh, g.kw, g.c, g.f}, ++seed, -0.3f, 0.3f);
        const Tensor b = bias ? random_tensor({g.f}, ++seed) : Tensor();
        const Tensor r = with_res ? random_tensor({g.n, g.oh, g.ow, g.f}, ++seed) : Tensor();
        const Tensor expected = reference_fused(x, w, b, g, r, relu);
        const PreparedConv prepared(w, b, g, with_res, relu);
        EXPECT_EQ(prepared.kernel(), std::string("small-conv ") + onednn::small_conv_isa_name(isa))
            << ctx;
        const Tensor r_before = with_res ? r.clone() : Tensor();
        const Tensor y = prepared(x, r, false);
        EXPECT_TRUE(AllClose(y, expected, 1e-5, ctx));
        if (with_res) {
          EXPECT_TRUE(AllClose(r, r_before, 0.0, ctx + " residual untouched"));
          // Handed over: the result goes into the residual's storage.
          const Tensor r2 = r.clone();
          const Tensor in_place = prepared(x, r2, true);
          EXPECT_TRUE(in_place.shares_storage(r2)) << ctx;
          EXPECT_TRUE(AllClose(in_place, expected, 1e-5, ctx + " in place"));
        }
      }
    }
  }
}

TEST(SmallConv, BlockedInputsLargeOutputsAndSwitchingOff) {
  const auto isas = small_conv_isas();
  if (isas.empty()) GTEST_SKIP() << "this CPU has neither AVX2+FMA nor AVX-512";
  BackendScope dnn(Backend::OneDnn);
  SmallConvIsaScope scope(isas.front());
  // An input and a residual in a training convolution's blocked layout.
  const ConvGeom g0 = conv_geom(1, 2, 2, 16, 1, 32, 1, false);
  const Tensor x = conv2d_forward(random_tensor({1, 2, 2, 16}, 1), random_tensor({1, 1, 16, 32}, 2),
                                  Tensor(), g0);
  const ConvGeom g = conv_geom(1, 2, 2, 32, 3, 32, 1, true);
  const Tensor w = random_tensor({3, 3, 32, 32}, 3, -0.3f, 0.3f);
  const Tensor b = random_tensor({32}, 4);
  const Tensor r = conv2d_forward(random_tensor({1, 2, 2, 16}, 5), random_tensor({1, 1, 16, 32}, 6),
                                  Tensor(), g0);
  const Tensor expected = reference_fused(x, w, b, g, r, true);
  const PreparedConv prepared(w, b, g, true, true);
  ASSERT_NE(prepared.kernel().find("small-conv"), std::string::npos);
  EXPECT_TRUE(AllClose(prepared(x, r, false), expected, 1e-5, "blocked input and residual"));
  EXPECT_TRUE(AllClose(prepared(x, r, true), expected, 1e-5, "blocked residual handed over"));
  // More output pixels than the kernels take: oneDNN (or, on AVX2, our Winograd).
  const ConvGeom big = conv_geom(2, 4, 4, 32, 3, 32, 1, true);
  ASSERT_GT(big.n * big.oh * big.ow, onednn::kSmallConvMaxPixels);
  const std::string big_kernel = PreparedConv(w, b, big, false, true).kernel();
  EXPECT_TRUE(big_kernel == "onednn" || big_kernel.find("winograd-f") == 0) << big_kernel;
  // Switched off: oneDNN, the same result.
  SmallConvIsaScope off(onednn::SmallConvIsa::None);
  const PreparedConv on_onednn(w, b, g, true, true);
  EXPECT_EQ(on_onednn.kernel(), "onednn");
  EXPECT_TRUE(AllClose(on_onednn(x, r, false), expected, 1e-5, "oneDNN"));
}

// Our Winograd F(4x4, 3x3) and F(2x2, 3x3) (AVX2) against the reference convolution: within 1e-4 of
// the output's largest magnitude (the bound; measured below 1e-5 here, printed), over
// partial tiles at the right and bottom edges, same and valid padding, one and many blocks of
// tiles, bias / residual / ReLU, the residual handed over, and an input in a blocked layout.
TEST(WinogradConv, MatchesReferenceWithinTolerance) {
  if (!onednn::cpu_supports(onednn::SmallConvIsa::Avx2)) GTEST_SKIP() << "no AVX2+FMA";
  BackendScope dnn(Backend::OneDnn);
  SmallConvIsaScope scope(onednn::SmallConvIsa::Avx2);
  const std::vector<ConvGeom> geoms = {
      conv_geom(1, 4, 4, 8, 3, 16, 1, true),    conv_geom(1, 8, 8, 16, 3, 32, 1, true),
      conv_geom(2, 15, 15, 64, 3, 64, 1, true), conv_geom(1, 9, 7, 24, 3, 16, 1, false),
      conv_geom(1, 3, 5, 8, 3, 16, 1, true),    conv_geom(3, 14, 14, 256, 3, 32, 1, true),
      conv_geom(1, 28, 28, 32, 3, 48, 1, true)};
  double worst = 0;
  int seed = 700;
  for (const ConvGeom& g : geoms) {
    ASSERT_TRUE(onednn::winograd_conv_applies(g)) << g.str();
    for (int mask = 0; mask < 8; ++mask) {
      const bool bias = mask & 1, with_res = mask & 2, relu = mask & 4;
      const std::string ctx = g.str() + " bias=" + std::to_string(bias) +
                              " residual=" + std::to_string(with_res) +
                              " relu=" + std::to_string(relu);
      const Tensor x = random_tensor({g.n, g.h, g.w, g.c}, ++seed);
      const Tensor w = random_tensor({3, 3, g.c, g.f}, ++seed, -0.3f, 0.3f);
      const Tensor b = bias ? random_tensor({g.f}, ++seed) : Tensor();
      const Tensor r = with_res ? random_tensor({g.n, g.oh, g.ow, g.f}, ++seed) : Tensor();
      const Tensor expected = reference_fused(x, w, b, g, r, relu);
      const auto p = onednn::prepare_winograd_conv(w, b, g, relu);
      ASSERT_NE(p, nullptr) << ctx;
      const Tensor y = onednn::run_winograd_conv(*p, x, r, false);
      EXPECT_TRUE(AllClose(y, expected, 1e-4, ctx));
      worst = std::max(worst, testing::max_rel_error(y, expected));
      if (with_res) {
        const Tensor r2 = r.clone();
        const Tensor in_place = onednn::run_winograd_conv(*p, x, r2, true);
        EXPECT_TRUE(in_place.shares_storage(r2)) << ctx;
        EXPECT_TRUE(AllClose(in_place, y, 0.0, ctx + " in place"));
      }
    }
  }
  std::printf("Winograd max |winograd - direct| / max |direct|: %.3g\n", worst);
  // Through PreparedConv, where the plan's rule picks it (512+ output pixels per batch), with
  // the input in a training convolution's blocked layout.
  const ConvGeom g = conv_geom(2, 16, 16, 32, 3, 32, 1, true);
  const ConvGeom g0 = conv_geom(2, 16, 16, 16, 1, 32, 1, false);
  const Tensor x = conv2d_forward(random_tensor({2, 16, 16, 16}, 1),
                                  random_tensor({1, 1, 16, 32}, 2), Tensor(), g0);
  const Tensor w = random_tensor({3, 3, 32, 32}, 3, -0.3f, 0.3f);
  const Tensor b = random_tensor({32}, 4);
  const PreparedConv prepared(w, b, g, false, true);
  EXPECT_EQ(prepared.kernel(), "winograd-f4x4 avx2");
  EXPECT_TRUE(AllClose(prepared(x, Tensor(), false), reference_fused(x, w, b, g, Tensor(), true),
                       1e-4, "prepared, blocked input"));
  // 2x2 outputs of 128+ channels in a batch of 8: 2x2 tiles.
  const ConvGeom g2 = conv_geom(8, 2, 2, 128, 3, 32, 1, true);
  const Tensor x2 = random_tensor({8, 2, 2, 128}, 5);
  const Tensor w2 = random_tensor({3, 3, 128, 32}, 6, -0.3f, 0.3f);
  const PreparedConv prepared2(w2, Tensor(), g2, false, false);
  EXPECT_EQ(prepared2.kernel(), "winograd-f2x2 avx2");
  EXPECT_TRUE(AllClose(prepared2(x2, Tensor(), false),
                       reference_fused(x2, w2, Tensor(), g2, Tensor(), false), 1e-4,
                       "prepared, 2x2 tiles"));
  // Switched off (RESNET_WINOGRAD=0's setting): direct.
  onednn::set_inference_winograd(false);
  EXPECT_EQ(PreparedConv(w, b, g, false, true).kernel(), "onednn");
  onednn::set_inference_winograd(true);
  // Not for stride 2, dilation or channel counts off the vector width.
  EXPECT_FALSE(onednn::winograd_conv_applies(conv_geom(1, 8, 8, 16, 3, 16, 2, true)));
  EXPECT_FALSE(onednn::winograd_conv_applies(dilated(conv_geom(1, 8, 8, 16, 3, 16, 1, false), 2)));
  EXPECT_FALSE(onednn::winograd_conv_applies(conv_geom(1, 8, 8, 12, 3, 16, 1, true)));
  EXPECT_FALSE(onednn::winograd_conv_applies(conv_geom(1, 8, 8, 16, 3, 24, 1, true)));
}

TEST(SmallConv, NaNInputsGiveWhatOneDnnGives) {
  // A NaN input makes its pixel's outputs NaN; a fused ReLU turns them into 0, as oneDNN's
  // fused ReLU (a max with 0) and the reference ReLU do.
  const auto isas = small_conv_isas();
  if (isas.empty()) GTEST_SKIP() << "this CPU has neither AVX2+FMA nor AVX-512";
  BackendScope dnn(Backend::OneDnn);
  const ConvGeom g = conv_geom(1, 2, 2, 16, 1, 40, 1, false);
  Tensor x = random_tensor({1, 2, 2, 16}, 41);
  x.f32()[16 + 3] = std::nanf("");  // pixel 1
  const Tensor w = random_tensor({1, 1, 16, 40}, 42, -0.3f, 0.3f);
  const Tensor b = random_tensor({40}, 43);
  for (bool relu : {false, true}) {
    Tensor on_onednn;
    {
      SmallConvIsaScope off(onednn::SmallConvIsa::None);
      on_onednn = plain(PreparedConv(w, b, g, false, relu)(x, Tensor(), false));
    }
    for (const auto isa : isas) {
      SmallConvIsaScope scope(isa);
      const Tensor y = PreparedConv(w, b, g, false, relu)(x, Tensor(), false);
      for (int64_t i = 0; i < y.numel(); ++i) {
        const bool nan_expected = !relu && i / 40 == 1;
        EXPECT_EQ(std::isnan(on_onednn.f32()[i]), nan_expected)
            << "oneDNN relu=" << relu << " " << i;
        EXPECT_EQ(std::isnan(y.f32()[i]), nan_expected)
            << onednn::small_conv_isa_name(isa) << " relu=" << relu << " " << i;
        if (!nan_expected) {
          EXPECT_NEAR(y.f32()[i], on_onednn.f32()[i], 1e-5) << i;
        }
      }
    }
  }
}

TEST(PreparedConv, WinogradForLarge3x3Outputs) {
  BackendScope dnn(Backend::OneDnn);
  // 3x3 stride 1, 16x16 outputs at batch 2: oneDNN's Winograd kernels where the CPU has them
  // (AVX-512), within 1e-5 of the reference (their rounding differs from direct convolution).
  const ConvGeom g = conv_geom(2, 16, 16, 24, 3, 40, 1, true);
  const Tensor x = random_tensor({g.n, g.h, g.w, g.c}, 31);
  const Tensor w = random_tensor({3, 3, g.c, g.f}, 32, -0.3f, 0.3f);
  const Tensor b = random_tensor({g.f}, 33);
  const Tensor r = random_tensor({g.n, g.oh, g.ow, g.f}, 34);
  for (bool with_res : {false, true}) {
    const Tensor expected = reference_fused(x, w, b, g, with_res ? r : Tensor(), true);
    const PreparedConv prepared(w, b, g, with_res, true);
    EXPECT_EQ(prepared.kernel(), onednn::winograd_available() ? "onednn winograd" : "onednn");
    EXPECT_TRUE(AllClose(prepared(x, with_res ? r : Tensor(), false), expected, 1e-5,
                         prepared.kernel() + " residual=" + std::to_string(with_res)));
    // Fewer output pixels, strided, 1x1 or switched off: direct.
    EXPECT_EQ(PreparedConv(w, b, conv_geom(1, 16, 16, 24, 3, 40, 1, true), with_res, true).kernel(),
              "onednn");
    EXPECT_EQ(PreparedConv(w, b, conv_geom(4, 16, 16, 24, 3, 40, 2, true), with_res, true).kernel(),
              "onednn");
    onednn::set_inference_winograd(false);
    const PreparedConv direct(w, b, g, with_res, true);
    onednn::set_inference_winograd(true);
    EXPECT_EQ(direct.kernel(), "onednn");
    EXPECT_TRUE(AllClose(direct(x, with_res ? r : Tensor(), false), expected, 1e-5, "direct"));
  }
}

// ---------------------------------------------------------------------------------------------
// The model-level plan.

// Random moving statistics and affine parameters, so that folding is not the identity.
void randomize_batchnorm(Model& m, uint64_t seed) {
  for (const auto& l : m.layers()) {
    if (l->class_name() != "BatchNormalization") continue;
    const int64_t c = l->param("gamma").value.numel();
    l->param("gamma").value.copy_from(random_tensor({c}, ++seed, 0.5f, 1.5f));
    l->param("beta").value.copy_from(random_tensor({c}, ++seed, -0.5f, 0.5f));
    l->param("moving_mean").value.copy_from(random_tensor({c}, ++seed, -0.3f, 0.3f));
    l->param("moving_variance").value.copy_from(random_tensor({c}, ++seed, 0.5f, 2.0f));
  }
}

void expect_plan_matches_layers(Model& m, const Tensor& x, const std::string& ctx) {
  m.set_inference_fusion(false);
  const Tensor expected = m.forward(x, Mode::Inference);
  m.set_inference_fusion(true);
  const Tensor fused = m.forward(x, Mode::Inference);
  EXPECT_TRUE(AllClose(fused, expected, 1e-5, ctx));
  // Twice: the second run uses the cached plan, folded weights and primitives.
  EXPECT_TRUE(AllClose(m.forward(x, Mode::Inference), expected, 1e-5, ctx + " (again)"));
}

Model tutorial_blocks(int64_t size = 9) {
  SymTensor in = Input({size, size, 3});
  SymTensor x = Conv2D({.filters = 8, .kernel = {3, 3}, .name = "conv1"})(in);
  x = BatchNormalization({.name = "bn_conv1"})(x);
  x = Activation("relu")(x);
  x = convolutional_block(x, 3, {4, 4, 16}, 2, "a", 2);
  x = identity_block(x, 3, {4, 4, 16}, 2, "b");
  x = GlobalAveragePooling2D()(x);
  x = Dense({.units = 5, .activation = "softmax"})(x);
  return Model(in, x, "blocks");
}

TEST(InferencePlan, TutorialBlocksMatchLayerByLayer) {
  for (Backend be : {Backend::OneDnn, Backend::Ref}) {
    BackendScope scope(be);
    Model m = tutorial_blocks();
    randomize_batchnorm(m, 100);
    expect_plan_matches_layers(m, random_tensor({3, 9, 9, 3}, 5, 0.0f, 1.0f), backend_name(be));
    // Batch 1 at 5x5 (2x2 block outputs): the streaming kernels for small outputs, with the
    // residual sum of the identity block.
    Model small = tutorial_blocks(5);
    randomize_batchnorm(small, 150);
    expect_plan_matches_layers(small, random_tensor({1, 5, 5, 3}, 6, 0.0f, 1.0f),
                               std::string(backend_name(be)) + " batch 1, 5x5");
  }
}

TEST(InferencePlan, RefoldsAfterWeightsChange) {
  Model m = tutorial_blocks();
  randomize_batchnorm(m, 200);
  const Tensor x = random_tensor({2, 9, 9, 3}, 6, 0.0f, 1.0f);
  expect_plan_matches_layers(m, x, "before");
  // An optimizer-like in-place update (bumps versions) and a new moving variance.
  randomize_batchnorm(m, 300);
  Tensor& k = m.layer("res2a_branch2b").param("kernel").value;
  k.copy_from(random_tensor(k.shape(), 7, -0.2f, 0.2f));
  expect_plan_matches_layers(m, x, "after update");
}

TEST(InferencePlan, ZooModelsMatchLayerByLayer) {
  // CIFAR ResNet-20 (ReLU layers, projection shortcuts) at batch 1 and 2, ResNet-18 (explicit
  // ZeroPadding2D before strided convolutions, convolutions without bias). The tutorial and
  // keras.applications ResNet-50 are left out for time: tutorial_blocks has their blocks.
  Model r20 = build_model("resnet20", {16, 16, 3}, 4);
  randomize_batchnorm(r20, 400);
  for (int64_t batch : {1, 2}) {
    expect_plan_matches_layers(r20, random_tensor({batch, 16, 16, 3}, 8, 0.0f, 1.0f),
                               "resnet20 batch " + std::to_string(batch));
  }
  Model r18 = build_model("resnet18", {32, 32, 3}, 4);
  randomize_batchnorm(r18, 500);
  expect_plan_matches_layers(r18, random_tensor({2, 32, 32, 3}, 9, 0.0f, 1.0f), "resnet18");
}

TEST(InferencePlan, TrainingModeIsUnaffected) {
  Model m = tutorial_blocks();
  randomize_batchnorm(m, 500);
  const Tensor x = random_tensor({2, 9, 9, 3}, 9, 0.0f, 1.0f);
  m.set_inference_fusion(true);
  const Tensor a = m.forward(x, Mode::Training);
  m.set_inference_fusion(false);
  const Tensor b = m.forward(x, Mode::Training);
  EXPECT_TRUE(AllClose(a, b, 0.0, "training forward"));
}

TEST(InferencePlan, TrainingReleasesThePlansWeights) {
  // An evaluation between training epochs leaves folded and reordered copies of the kernels in
  // the plan; the next training forward drops them (they are stale once the weights change).
  set_global_seed(4);
  reset_name_counters();
  Model m = cifar_resnet(20, {8, 8, 3}, 10);
  size_t kernel_bytes = 0;
  for (const auto& l : m.layers()) {
    for (const Param& p : l->params()) {
      if (p.name == "kernel") kernel_bytes += static_cast<size_t>(p.value.numel()) * 4;
    }
  }
  const Tensor x = random_tensor({1, 8, 8, 3}, 5, 0.0f, 1.0f);
  const size_t base = detail::memory_stats().live_bytes;
  const Tensor y0 = m.forward(x, Mode::Inference).clone();
  const size_t after_inference = detail::memory_stats().live_bytes;
  EXPECT_GE(after_inference, base + kernel_bytes);  // at least the folded copy
  m.forward(x, Mode::Training);
  const size_t after_training = detail::memory_stats().live_bytes;
  // What the training forward keeps for backward (batch 1, 8x8) is far less than the kernels.
  EXPECT_LT(after_training + kernel_bytes / 2, after_inference)
      << base << " " << after_inference << " " << after_training << " " << kernel_bytes;
  // The next inference forward folds again (the training forward moved the BN statistics):
  // the same as layer by layer.
  const Tensor fused = m.forward(x, Mode::Inference).clone();
  m.set_inference_fusion(false);
  EXPECT_TRUE(AllClose(fused, m.forward(x, Mode::Inference), 1e-5, "refolded"));
  EXPECT_FALSE(AllClose(fused, y0, 1e-5, "moved"));
}

}  // namespace
}  // namespace resnet::ops
