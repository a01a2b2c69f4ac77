// Forward + backward of conv -> BN (training) -> ReLU on the oneDNN backend, at every distinct
// conv shape of the tutorial ResNet-50 (64x64 input, KERAS.md section 1), batch 32 by default.
//
// Prints per shape: milliseconds per fwd+bwd step (whole conv-BN-ReLU, and its conv part), conv
// GFLOP/s and the fraction of this machine's FP32 peak. Conv FLOPs = 2*N*OH*OW*F*KH*KW*C forward,
// x3 for forward + backward data + backward weights. Peak = threads x FLOP/cycle x the clock
// measured with a chain of dependent adds (1 cycle each). FLOP/cycle is 32 (two 8-wide FMA
// units, AVX2) unless the CPU has two full-width AVX-512 FMA units (Intel AVX-512 server parts,
// AMD Zen 5: 64); AMD Zen 4 runs AVX-512 on 256-bit units, so 32. Override with the 3rd argument.
// Also printed: minor page faults per step (fresh output buffers being touched for the first time
// cost as much as some of the kernels).
//
// Usage: bench_conv_bn_relu [batch] [min_seconds_per_shape] [flop_per_cycle]
#include <cpuid.h>
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "ops/ops.h"
#include "resnet/error.h"
#include "resnet/tensor.h"

namespace {

using resnet::Shape;
using resnet::Tensor;
namespace ops = resnet::ops;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Clock in GHz from a chain of dependent integer adds (latency 1 cycle each). The best of several
// short runs, so a run descheduled by other load on a shared machine does not lower it.
double measure_ghz() {
#if defined(__x86_64__)
  double best = 0.0;
  for (int rep = 0; rep < 20; ++rep) {
    uint64_t x = 0;
    constexpr int64_t kLoops = 200000;
    const auto t0 = Clock::now();
    for (int64_t i = 0; i < kLoops; ++i) {
      asm volatile(
          ".rept 100\n\t"
          "add $1, %0\n\t"
          ".endr"
          : "+r"(x));
    }
    const double s = seconds_since(t0);
    best = std::max(best, kLoops * 100.0 / s / 1e9);
  }
  return best;
#else
  return 0.0;
#endif
}

// "cpu MHz" of the first processor in /proc/cpuinfo, in GHz (0 when absent).
double cpuinfo_ghz() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("cpu MHz", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return std::atof(line.c_str() + colon + 1) / 1000.0;
    }
  }
  return 0.0;
}

// FP32 FLOP per cycle per core: see the file comment.
int flop_per_cycle() {
#if defined(__x86_64__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  __get_cpuid(0, &eax, &ebx, &ecx, &edx);
  const bool amd = ebx == 0x68747541;  // "Auth"enticAMD
  __get_cpuid(1, &eax, &ebx, &ecx, &edx);
  const unsigned family = ((eax >> 8) & 0xf) + (((eax >> 8) & 0xf) == 0xf ? (eax >> 20) & 0xff : 0);
  if (__builtin_cpu_supports("avx512f")) return amd && family < 0x1a ? 32 : 64;
  if (__builtin_cpu_supports("avx2")) return 32;
  return 16;
#else
  return 16;
#endif
}

int64_t minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

struct ConvShape {
  const char* name;
  int64_t h, w, c, k, f, stride;
  bool same;
  int count;  // how many convs of this shape the network has
};

// The 20 distinct conv shapes of ResNet50(input_shape=(64, 64, 3)) (53 convs in all).
const std::vector<ConvShape> kShapes = {
    {"conv1 7x7/2", 70, 70, 3, 7, 64, 2, false, 1},
    {"res2 1x1 64->64", 15, 15, 64, 1, 64, 1, false, 1},
    {"res2 3x3 64", 15, 15, 64, 3, 64, 1, true, 3},
    {"res2 1x1 64->256", 15, 15, 64, 1, 256, 1, false, 4},
    {"res2 1x1 256->64", 15, 15, 256, 1, 64, 1, false, 2},
    {"res3a 1x1/2 256->128", 15, 15, 256, 1, 128, 2, false, 1},
    {"res3 3x3 128", 8, 8, 128, 3, 128, 1, true, 4},
    {"res3 1x1 128->512", 8, 8, 128, 1, 512, 1, false, 4},
    {"res3a 1x1/2 256->512", 15, 15, 256, 1, 512, 2, false, 1},
    {"res3 1x1 512->128", 8, 8, 512, 1, 128, 1, false, 3},
    {"res4a 1x1/2 512->256", 8, 8, 512, 1, 256, 2, false, 1},
    {"res4 3x3 256", 4, 4, 256, 3, 256, 1, true, 6},
    {"res4 1x1 256->1024", 4, 4, 256, 1, 1024, 1, false, 6},
    {"res4a 1x1/2 512->1024", 8, 8, 512, 1, 1024, 2, false, 1},
    {"res4 1x1 1024->256", 4, 4, 1024, 1, 256, 1, false, 5},
    {"res5a 1x1/2 1024->512", 4, 4, 1024, 1, 512, 2, false, 1},
    {"res5 3x3 512", 2, 2, 512, 3, 512, 1, true, 3},
    {"res5 1x1 512->2048", 2, 2, 512, 1, 2048, 1, false, 3},
    {"res5a 1x1/2 1024->2048", 4, 4, 1024, 1, 2048, 2, false, 1},
    {"res5 1x1 2048->512", 2, 2, 2048, 1, 512, 1, false, 2},
};

ops::ConvGeom geom(const ConvShape& s, int64_t n) {
  ops::ConvGeom g;
  g.n = n;
  g.h = s.h;
  g.w = s.w;
  g.c = s.c;
  g.kh = g.kw = s.k;
  g.f = s.f;
  g.sh = g.sw = s.stride;
  if (s.same) {
    auto [top, bottom] = ops::same_padding(s.h, s.k, s.stride, 1);
    auto [left, right] = ops::same_padding(s.w, s.k, s.stride, 1);
    g.pad = {top, bottom, left, right};
  }
  g.finish();
  return g;
}

Tensor random(const Shape& shape, resnet::Rng& rng) {
  Tensor t = Tensor::empty(shape);
  for (float& v : t.span<float>()) v = static_cast<float>(rng.uniform(-1.0, 1.0));
  return t;
}

struct Timing {
  double step_ms;  // median fwd+bwd of conv-BN-ReLU
  double conv_ms;  // median of its conv part (fwd + bwd data + bwd weights)
  double faults;   // minor page faults per step
};

Timing time_shape(const ops::ConvGeom& g, double min_seconds) {
  resnet::Rng rng(42);
  const Tensor w = random({g.kh, g.kw, g.c, g.f}, rng);
  const Tensor b = random({g.f}, rng);
  const Tensor gamma = Tensor::full({g.f}, 1.0f);
  const Tensor beta = Tensor::zeros({g.f});
  // Inputs as a network hands them over: x in the layout the backend gives activations (the one
  // this conv's backward-data returns), dz in this conv's output layout. Plain inputs would add
  // activation reorders to every step that a network does only at its input.
  const Tensor x = ops::conv2d_backward_data(random({g.n, g.oh, g.ow, g.f}, rng), w, g);
  const Tensor dz = ops::conv2d_forward(x, w, Tensor(), g);
  const double eps = 1e-3;

  double conv_s = 0.0;
  auto conv_part = [&](auto&& f) {
    const auto t0 = Clock::now();
    f();
    conv_s += seconds_since(t0);
  };
  auto step = [&] {
    Tensor y, mean, var, dw, db;
    conv_part([&] { y = ops::conv2d_forward(x, w, b, g); });
    Tensor h = ops::batchnorm_forward_training(y, gamma, beta, eps, mean, var);
    Tensor z = ops::eltwise_forward(ops::Eltwise::Relu, h);
    Tensor dh = ops::eltwise_backward(ops::Eltwise::Relu, dz, h, z);
    Tensor dy, dgamma, dbeta, dx;
    ops::batchnorm_backward(dh, y, gamma, mean, var, eps, false, dy, dgamma, dbeta);
    conv_part([&] {
      dx = ops::conv2d_backward_data(dy, w, g);
      ops::conv2d_backward_weights(x, dy, g, true, dw, db);
    });
  };

  for (int i = 0; i < 3; ++i) step();  // primitive creation, weight reorder, warm caches
  std::vector<double> steps, convs;
  const int64_t faults0 = minor_faults();
  const auto start = Clock::now();
  while (steps.size() < 5 || seconds_since(start) < min_seconds) {
    conv_s = 0.0;
    const auto t0 = Clock::now();
    step();
    steps.push_back(seconds_since(t0) * 1e3);
    convs.push_back(conv_s * 1e3);
  }
  auto median = [](std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  const double faults = static_cast<double>(minor_faults() - faults0) / steps.size();
  return {median(steps), median(convs), faults};
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const int64_t batch = argc > 1 ? std::atoll(argv[1]) : 32;
    const double min_seconds = argc > 2 ? std::atof(argv[2]) : 1.0;
    ops::set_backend(ops::Backend::OneDnn);

    const int threads = ops::num_threads();
    const int fpc = argc > 3 ? std::atoi(argv[3]) : flop_per_cycle();
    const double ghz = measure_ghz();
    const double info_ghz = cpuinfo_ghz();
    const double clock = ghz > 0.0 ? ghz : info_ghz;
    const double peak = threads * fpc * clock;  // GFLOP/s
    fmt::print("conv-BN-ReLU forward+backward, oneDNN backend, batch {}, {} threads\n", batch,
               threads);
    fmt::print("clock: {:.2f} GHz measured (dependent-add loop); /proc/cpuinfo says {:.2f} GHz\n",
               ghz, info_ghz);
    fmt::print("FP32 peak: {} threads x {} FLOP/cycle x {:.2f} GHz = {:.1f} GFLOP/s\n\n", threads,
               fpc, clock, peak);
    fmt::print("{:<24} {:>18} {:>5} {:>8} {:>8} {:>7} {:>8} {:>7} {:>8}\n", "shape", "in -> out",
               "count", "step ms", "conv ms", "GFLOP", "GFLOP/s", "% peak", "faults");

    double total_step = 0, total_conv = 0, total_flop = 0;
    double net_step = 0, net_conv = 0, net_flop = 0;
    for (const ConvShape& s : kShapes) {
      const ops::ConvGeom g = geom(s, batch);
      const Timing t = time_shape(g, min_seconds);
      const double flop = 3.0 * 2.0 * g.n * g.oh * g.ow * g.f * g.kh * g.kw * g.c;
      const double gflops = flop / (t.step_ms * 1e-3) / 1e9;
      fmt::print("{:<24} {:>18} {:>5} {:>8.2f} {:>8.2f} {:>7.3f} {:>8.1f} {:>6.1f}% {:>8.0f}\n",
                 s.name, fmt::format("{}x{}x{}->{}x{}x{}", g.h, g.w, g.c, g.oh, g.ow, g.f), s.count,
                 t.step_ms, t.conv_ms, flop / 1e9, gflops, 100.0 * gflops / peak, t.faults);
      total_step += t.step_ms;
      total_conv += t.conv_ms;
      total_flop += flop;
      net_step += s.count * t.step_ms;
      net_conv += s.count * t.conv_ms;
      net_flop += s.count * flop;
    }
    auto total_line = [&](const char* label, double step_ms, double conv_ms, double flop) {
      const double gflops = flop / (step_ms * 1e-3) / 1e9;
      fmt::print("{:<24} {:>18} {:>5} {:>8.2f} {:>8.2f} {:>7.3f} {:>8.1f} {:>6.1f}%\n", label, "",
                 "", step_ms, conv_ms, flop / 1e9, gflops, 100.0 * gflops / peak);
    };
    fmt::print("\n");
    total_line("total (distinct shapes)", total_step, total_conv, total_flop);
    total_line("total x count (53 convs)", net_step, net_conv, net_flop);
    fmt::print("\nGFLOP/s and % peak use the whole conv-BN-ReLU step time; conv FLOPs only.\n");
    return 0;
  } catch (const resnet::Error& e) {
    fmt::print(stderr, "bench_conv_bn_relu: {}\n", e.what());
    return 1;
  }
}
