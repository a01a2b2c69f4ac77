// Streaming convolutions for outputs of a few pixels (see small_conv.h).
#include "ops/onednn/small_conv.h"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "ops/onednn/common.h"
#include "ops/onednn/onednn.h"
#include "ops/onednn/small_conv_kernel.h"
#include "resnet/error.h"
#include "resnet/runtime.h"

namespace resnet::ops::onednn {

namespace {

using panel::KernelArgs;
using panel::KernelFn;

#pragma GCC push_options
#pragma GCC target("avx512f,fma")
namespace avx512 {
typedef float V __attribute__((vector_size(64)));
constexpr int W = 16;
#include "ops/onednn/small_conv_kernel.inc"
}  // namespace avx512
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
typedef float V __attribute__((vector_size(32)));
constexpr int W = 8;
#include "ops/onednn/small_conv_kernel.inc"
}  // namespace avx2
#pragma GCC pop_options

SmallConvIsa detect_isa() {
  if (!runtime_options().small_conv) return SmallConvIsa::None;
  if (cpu_supports(SmallConvIsa::Avx512)) return SmallConvIsa::Avx512;
  if (cpu_supports(SmallConvIsa::Avx2)) return SmallConvIsa::Avx2;
  return SmallConvIsa::None;
}

std::atomic<SmallConvIsa>& isa_setting() {
  static std::atomic<SmallConvIsa> isa{detect_isa()};
  return isa;
}

int vector_width(SmallConvIsa isa) { return isa == SmallConvIsa::Avx512 ? 16 : 8; }

}  // namespace

bool cpu_supports(SmallConvIsa isa) {
  switch (isa) {
    case SmallConvIsa::None:
      return true;
    case SmallConvIsa::Avx2:
      return isa_allowed(CpuIsa::Avx2);
    case SmallConvIsa::Avx512:
      return isa_allowed(CpuIsa::Avx512);
  }
  return false;
}

const char* small_conv_isa_name(SmallConvIsa isa) {
  switch (isa) {
    case SmallConvIsa::None:
      return "none";
    case SmallConvIsa::Avx2:
      return "avx2";
    case SmallConvIsa::Avx512:
      return "avx512";
  }
  return "?";
}

SmallConvIsa small_conv_isa() { return isa_setting().load(); }

void set_small_conv_isa(SmallConvIsa isa) {
  if (!cpu_supports(isa)) {
    throw BackendError(
        fmt::format("small convolutions: this CPU does not support {}", small_conv_isa_name(isa)));
  }
  isa_setting().store(isa);
}

struct SmallConv {
  ConvGeom g;
  bool relu = false;
  SmallConvIsa isa = SmallConvIsa::None;
  int nv = 1;     // vectors per panel row
  int nb = 0;     // panel width in floats
  int mr = 1;     // rows per kernel call (the last call may have fewer)
  int64_t k = 0;  // kh * kw * c
  int64_t panels = 0;
  // offsets[t * m + row]: where output pixel `row` reads tap t in the input (floats), -1 in the
  // padding (it reads `zeros` then).
  std::vector<int64_t> offsets;
  std::vector<float> zeros;
  std::shared_ptr<void> storage;
  const float* packed = nullptr;  // [panels][k][nb]
  std::vector<float> bias;        // panels * nb (zero past f, and without a bias)
};

std::shared_ptr<const SmallConv> prepare_small_conv(const Tensor& w, const Tensor& b,
                                                    const ConvGeom& g, bool relu) {
  const SmallConvIsa isa = small_conv_isa();
  const int64_t m = g.n * g.oh * g.ow;
  if (isa == SmallConvIsa::None || m < 1 || m > kSmallConvMaxPixels) return nullptr;
  auto p = std::make_shared<SmallConv>();
  p->g = g;
  p->relu = relu;
  p->isa = isa;
  // Four-vector panels when the rows are so few that the kernel only streams weights. Else, on
  // AVX-512, one-vector panels, up to 8 rows per call (16 rows as two calls of 8, the second
  // reading the panel from L2). On AVX2 (16 registers): one-vector panels for 3-4 rows (still
  // streaming; measured 5-15% faster there than two-vector panels), and two-vector panels, up to 6
  // rows per call, for 5-16 rows (12 accumulators; 16 rows as calls of 6, 5 and 5): two weight
  // loads and six broadcasts feed twelve FMAs, where one-vector panels at 8 rows spend a load
  // per FMA (4x4 outputs: 10-30% faster, bench/bench_small_conv).
  int64_t max_rows = 0;
  if (isa == SmallConvIsa::Avx512) {
    p->nv = m <= 4 ? 4 : 1;
    max_rows = p->nv == 4 ? 4 : 8;
  } else {
    p->nv = m <= 2 ? 4 : m <= 4 ? 1 : 2;
    max_rows = p->nv == 4 ? 2 : p->nv == 1 ? 4 : 6;
  }
  const int64_t calls = (m + max_rows - 1) / max_rows;
  p->mr = static_cast<int>((m + calls - 1) / calls);
  p->nb = p->nv * vector_width(isa);
  p->k = g.kh * g.kw * g.c;
  p->panels = (g.f + p->nb - 1) / p->nb;
  const int64_t taps = g.kh * g.kw;
  p->offsets.resize(static_cast<size_t>(taps * m));
  for (int64_t row = 0; row < m; ++row) {
    const int64_t n = row / (g.oh * g.ow), oy = row / g.ow % g.oh, ox = row % g.ow;
    for (int64_t ky = 0; ky < g.kh; ++ky) {
      for (int64_t kx = 0; kx < g.kw; ++kx) {
        const int64_t iy = oy * g.sh - g.pad.top + ky * g.dh;
        const int64_t ix = ox * g.sw - g.pad.left + kx * g.dw;
        const bool inside = iy >= 0 && iy < g.h && ix >= 0 && ix < g.w;
        p->offsets[static_cast<size_t>((ky * g.kw + kx) * m + row)] =
            inside ? ((n * g.h + iy) * g.w + ix) * g.c : -1;
      }
    }
  }
  p->zeros.assign(static_cast<size_t>(g.c), 0.0f);
  const size_t floats = static_cast<size_t>(p->panels * p->k * p->nb);
  p->storage = detail::shared_block(floats * sizeof(float));
  float* packed = static_cast<float*>(p->storage.get());
  const Tensor wp = to_plain(w);  // HWIO: row (kh, kw, c), column f
  const float* src = wp.f32();
  for (int64_t panel = 0; panel < p->panels; ++panel) {
    const int64_t f0 = panel * p->nb;
    const int64_t cols = std::min<int64_t>(p->nb, g.f - f0);
    for (int64_t r = 0; r < p->k; ++r) {
      float* dst = packed + (panel * p->k + r) * p->nb;
      std::memcpy(dst, src + r * g.f + f0, static_cast<size_t>(cols) * sizeof(float));
      std::fill(dst + cols, dst + p->nb, 0.0f);
    }
  }
  p->packed = packed;
  p->bias.assign(static_cast<size_t>(p->panels * p->nb), 0.0f);
  if (b.defined()) {
    const Tensor bp = to_plain(b);
    std::copy(bp.f32(), bp.f32() + g.f, p->bias.begin());
  }
  return p;
}

SmallConvIsa small_conv_isa_of(const SmallConv& p) { return p.isa; }

Tensor run_small_conv(const SmallConv& p, const Tensor& x, const Tensor& residual,
                      bool reuse_residual) {
  const ConvGeom& g = p.g;
  const int64_t m = g.n * g.oh * g.ow;
  const Tensor xp = to_plain(x);
  const Tensor rp = residual.defined() ? to_plain(residual) : Tensor();
  const bool in_place = rp.defined() && reuse_residual && rp.shares_storage(residual);
  Tensor y = in_place ? residual : Tensor::empty(Shape{g.n, g.oh, g.ow, g.f});
  const int64_t taps = g.kh * g.kw;
  const int calls = static_cast<int>((m + p.mr - 1) / p.mr);
  const int64_t items = p.panels * calls;
  const int threads = static_cast<int>(std::min<int64_t>(num_threads(), items));
  const KernelFn* table = nullptr;
  if (p.isa == SmallConvIsa::Avx512) {
    table = p.nv == 4 ? avx512::kernels4 : avx512::kernels1;
  } else {
    table = p.nv == 4 ? avx2::kernels4 : p.nv == 2 ? avx2::kernels2 : avx2::kernels1;
  }
  const float* xs = xp.f32();
  const float* res = rp.defined() ? rp.f32() : nullptr;
  float* out = y.f32();
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t item = 0; item < items; ++item) {
    const int64_t panel = item / calls;
    const int64_t row0 = (item % calls) * p.mr;
    const int64_t nrows = std::min<int64_t>(p.mr, m - row0);
    KernelArgs args;
    const float* rows[9 * kSmallConvMaxPixels];
    std::vector<const float*> many;  // windows larger than 3x3
    const float** row_ptrs = rows;
    if (taps * nrows > static_cast<int64_t>(std::size(rows))) {
      many.resize(static_cast<size_t>(taps * nrows));
      row_ptrs = many.data();
    }
    for (int64_t t = 0; t < taps; ++t) {
      for (int64_t i = 0; i < nrows; ++i) {
        const int64_t off = p.offsets[static_cast<size_t>(t * m + row0 + i)];
        row_ptrs[t * nrows + i] = off >= 0 ? xs + off : p.zeros.data();
      }
    }
    args.rows = row_ptrs;
    const int64_t f0 = panel * p.nb;
    args.taps = static_cast<int>(taps);
    args.c = g.c;
    args.w = p.packed + panel * p.k * p.nb;
    args.bias = p.bias.data() + f0;
    args.res = res != nullptr ? res + row0 * g.f + f0 : nullptr;
    args.ldr = g.f;
    args.y = out + row0 * g.f + f0;
    args.ldy = g.f;
    args.cols = static_cast<int>(std::min<int64_t>(p.nb, g.f - f0));
    args.relu = p.relu;
    args.next_panel = calls > 1 && row0 + nrows == m;
    args.panel_floats = p.k * p.nb;
    table[nrows](args);
  }
  return y;
}

}  // namespace resnet::ops::onednn
