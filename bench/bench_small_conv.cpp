// Batch-1 inference convolutions of the tutorial ResNet-50's last two stages (64x64 input: 4x4
// and 2x2 outputs), prepared as in the inference plan (bias, residual sum, ReLU fused), run
// through oneDNN and through the streaming small-output kernels (src/ops/onednn/small_conv.h).
//
// Each shape is prepared with enough distinct weight copies (about 256 MB) that every call reads
// its weights from memory, as in a network whose 94 MB of weights do not fit in the caches.
// Prints per shape: microseconds per call (best of the rounds), weight bytes streamed per second
// and GFLOP/s, for both kernels.
//
// Usage: bench_small_conv [rounds] [threads]
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "ops/onednn/onednn.h"
#include "ops/onednn/small_conv.h"
#include "ops/ops.h"
#include "resnet/tensor.h"

namespace {

using resnet::Shape;
using resnet::Tensor;
namespace ops = resnet::ops;
namespace onednn = resnet::ops::onednn;
using Clock = std::chrono::steady_clock;

struct Case {
  const char* name;
  int64_t h, c, k, f, s;
  bool residual;
};

Tensor filled(const Shape& shape, float scale) {
  Tensor t = Tensor::empty(shape);
  float* p = t.f32();
  uint32_t state = 12345;
  for (int64_t i = 0; i < t.numel(); ++i) {
    state = state * 1664525u + 1013904223u;
    p[i] = scale * (static_cast<float>(state >> 8) / 16777216.0f - 0.5f);
  }
  return t;
}

ops::ConvGeom geometry(const Case& c) {
  ops::ConvGeom g;
  g.n = 1;
  g.h = g.w = c.h;
  g.c = c.c;
  g.kh = g.kw = c.k;
  g.f = c.f;
  g.sh = g.sw = c.s;
  if (c.k == 3) g.pad = {1, 1, 1, 1};
  g.finish();
  return g;
}

// Microseconds per call, best of `rounds` passes over all weight copies.
double time_calls(const std::vector<ops::PreparedConv>& convs, const Tensor& x, const Tensor& r,
                  int rounds) {
  double best = 1e30;
  for (int round = 0; round < rounds; ++round) {
    const auto t0 = Clock::now();
    // The residual handed over as the inference plan does (the result goes into its storage),
    // so neither kernel copies it first.
    for (const auto& conv : convs) conv(x, r, true);
    const double us = std::chrono::duration<double>(Clock::now() - t0).count() * 1e6;
    best = std::min(best, us / static_cast<double>(convs.size()));
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 20;
  if (argc > 2) onednn::set_num_threads(std::atoi(argv[2]));
  const std::vector<Case> cases = {
      {"res4 2a 1x1 1024>256", 4, 1024, 1, 256, 1, false},
      {"res4 2b 3x3 256>256", 4, 256, 3, 256, 1, false},
      {"res4 2c 1x1 256>1024 +res", 4, 256, 1, 1024, 1, true},
      {"res4a 1 1x1/2 512>1024", 8, 512, 1, 1024, 2, false},
      {"res5 2a 1x1 2048>512", 2, 2048, 1, 512, 1, false},
      {"res5 2b 3x3 512>512", 2, 512, 3, 512, 1, false},
      {"res5 2c 1x1 512>2048 +res", 2, 512, 1, 2048, 1, true},
      {"res5a 1 1x1/2 1024>2048", 4, 1024, 1, 2048, 2, false},
  };

  const onednn::SmallConvIsa isa = onednn::small_conv_isa();
  fmt::print("threads {}, small-output kernels: {}\n", onednn::num_threads(),
             onednn::small_conv_isa_name(isa));
  fmt::print("{:<28} {:>8} | {:>9} {:>7} {:>7} | {:>9} {:>7} {:>7} | {:>6}\n", "conv", "MB",
             "oneDNN us", "GB/s", "GFLOP/s", "small us", "GB/s", "GFLOP/s", "ratio");
  for (const Case& c : cases) {
    const ops::ConvGeom g = geometry(c);
    const double mb = static_cast<double>(g.kh * g.kw * g.c * g.f) * 4.0 / 1e6;
    const double gflop = 2.0 * static_cast<double>(g.oh * g.ow * g.kh * g.kw * g.c * g.f) / 1e9;
    const int copies = std::max(4, static_cast<int>(256.0 / mb));
    const Tensor x = filled(Shape{1, g.h, g.w, g.c}, 1.0f);
    const Tensor r = c.residual ? filled(Shape{1, g.oh, g.ow, g.f}, 1.0f) : Tensor();
    const Tensor b = filled(Shape{g.f}, 0.1f);
    double us[2] = {0, 0};
    for (int small = 0; small < 2; ++small) {
      if (small == 1 && isa == onednn::SmallConvIsa::None) break;
      onednn::set_small_conv_isa(small ? isa : onednn::SmallConvIsa::None);
      std::vector<ops::PreparedConv> convs;
      for (int i = 0; i < copies; ++i) {
        convs.emplace_back(filled(Shape{g.kh, g.kw, g.c, g.f}, 0.05f), b, g, c.residual, true);
      }
      time_calls(convs, x, r, 2);  // warm-up: primitives, page faults
      us[small] = time_calls(convs, x, r, rounds);
    }
    onednn::set_small_conv_isa(isa);
    auto cols = [&](double t) {
      return t > 0 ? fmt::format("{:>9.1f} {:>7.1f} {:>7.0f}", t, mb / t * 1e3, gflop / t * 1e6)
                   : fmt::format("{:>9} {:>7} {:>7}", "-", "-", "-");
    };
    fmt::print("{:<28} {:>8.2f} | {} | {} | {:>5.2f}x\n", c.name, mb, cols(us[0]), cols(us[1]),
               us[1] > 0 ? us[0] / us[1] : 0.0);
  }
  return 0;
}
