// Winograd F(4x4, 3x3) convolutions on AVX2 (see winograd.h).
#include "ops/onednn/winograd.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/allocator.h"
#include "ops/onednn/common.h"
#include "ops/onednn/onednn.h"
#include "ops/onednn/small_conv.h"
#include "ops/onednn/small_conv_kernel.h"
#include "resnet/runtime.h"

namespace resnet::ops::onednn {

namespace {

using panel::KernelArgs;
using panel::KernelFn;

// F(M x M, 3x3): M output pixels per tile side (4 or 2), M + 2 input pixels, (M + 2)^2
// transformed positions per tile.
constexpr int kPanel = 16;   // output channels per weight panel (two AVX2 vectors)
constexpr int kRowsMax = 6;  // tiles per kernel call (the two-vector kernel's row count)

// What a block of tiles needs: the geometry, the prepared filters and the call's buffers.
struct BlockArgs {
  const ConvGeom* g = nullptr;
  int64_t th = 0, tw = 0, panels = 0, bt = 0;  // tiles per image; panels; tiles per block
  const float* u = nullptr;
  const float* bias = nullptr;
  const float* zeros = nullptr;
  bool relu = false;
  // Activations are plain NHWC or nChw8c (oneDNN's AVX2 layout: [n][c / 8][h][w][8]).
  const float* x = nullptr;
  const float* res = nullptr;
  float* y = nullptr;
  bool x_blocked = false, res_blocked = false, y_blocked = false;
  float* vbuf = nullptr;  // [positions][bt][c]
  float* mbuf = nullptr;  // [positions][bt][f]
};

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
typedef float V __attribute__((vector_size(32)));
constexpr int W = 8;
#include "ops/onednn/small_conv_kernel.inc"

inline V load(const float* p) {
  V v;
  __builtin_memcpy(&v, p, sizeof(V));
  return v;
}
inline void store(float* p, V v) { __builtin_memcpy(p, &v, sizeof(V)); }

// B^T d B for one tile and 8 channels: src[i * (M + 2) + j] points at input pixel (i, j) of the
// tile (a row of zeros outside the input); position (i, j) goes to v + (i * (M + 2) + j) * ldv.
// The rows of B^T: F(4x4): (4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
// (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1); F(2x2): (1, 0, -1, 0),
// (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1).
template <int M>
inline void transform_in(const V* d, V* r);
template <>
inline void transform_in<4>(const V* d, V* r) {
  r[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
  r[1] = -4.0f * (d[1] + d[2]) + d[3] + d[4];
  r[2] = 4.0f * (d[1] - d[2]) - d[3] + d[4];
  r[3] = 2.0f * (d[3] - d[1]) - d[2] + d[4];
  r[4] = 2.0f * (d[1] - d[3]) - d[2] + d[4];
  r[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
}
template <>
inline void transform_in<2>(const V* d, V* r) {
  r[0] = d[0] - d[2];
  r[1] = d[1] + d[2];
  r[2] = d[2] - d[1];
  r[3] = d[1] - d[3];
}

template <int M>
void input_transform(const float* const* src, float* v, int64_t ldv) {
  constexpr int n = M + 2;
  V d[n][n];
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) d[i][j] = load(src[i * n + j]);
  }
  V t[n][n];  // B^T d, column by column
  for (int j = 0; j < n; ++j) {
    V col[n], r[n];
    for (int i = 0; i < n; ++i) col[i] = d[i][j];
    transform_in<M>(col, r);
    for (int i = 0; i < n; ++i) t[i][j] = r[i];
  }
  for (int i = 0; i < n; ++i) {  // (B^T d) B, row by row
    V r[n];
    transform_in<M>(t[i], r);
    for (int j = 0; j < n; ++j) store(v + (i * n + j) * ldv, r[j]);
  }
}

// A^T m A for one tile and 8 channels: m + pos * ldm holds position pos; out[oy * M + ox] gets
// the outputs. The rows of A^T: F(4x4): (1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0),
// (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1); F(2x2): (1, 1, 1, 0), (0, 1, -1, -1).
template <int M>
inline void transform_out(const V* m, V* o);
template <>
inline void transform_out<4>(const V* m, V* o) {
  const V s12 = m[1] + m[2], d12 = m[1] - m[2], s34 = m[3] + m[4], d34 = m[3] - m[4];
  o[0] = m[0] + s12 + s34;
  o[1] = d12 + 2.0f * d34;
  o[2] = s12 + 4.0f * s34;
  o[3] = d12 + 8.0f * d34 + m[5];
}
template <>
inline void transform_out<2>(const V* m, V* o) {
  o[0] = m[0] + m[1] + m[2];
  o[1] = m[1] - m[2] - m[3];
}

template <int M>
void output_transform(const float* m, int64_t ldm, V* out) {
  constexpr int n = M + 2;
  V t[M][n];  // A^T m, column by column
  for (int j = 0; j < n; ++j) {
    V col[n], r[M];
    for (int i = 0; i < n; ++i) col[i] = load(m + (i * n + j) * ldm);
    transform_out<M>(col, r);
    for (int i = 0; i < M; ++i) t[i][j] = r[i];
  }
  for (int i = 0; i < M; ++i) transform_out<M>(t[i], out + i * M);
}

V relu(V v) {
  const V zero = V{};
  return v > zero ? v : zero;
}
// One block: tiles t0 .. t0 + nt - 1 (in image order) through the input transform, the
// (M + 2)^2 products and the output transform, for the output channels of panels p0 .. p1 - 1.
template <int M>
void run_block(const BlockArgs& a, int64_t t0, int64_t nt, int64_t p0, int64_t p1) {
  constexpr int kTile = M, kIn = M + 2, kPos = kIn * kIn;
  const ConvGeom& g = *a.g;
  const int64_t c = g.c, f = g.f, bt = a.bt;
  static const float kZeroBias[kPanel] = {};
  const float* src[kIn * kIn];
  int64_t at[kIn * kIn];  // offset of the tile's pixel in channel group 0, -1 outside the input
  const float* rows[kRowsMax];
  // Input offsets: pixel (n, iy, ix), channels c0 .. c0 + 7.
  const int64_t x_group = a.x_blocked ? g.h * g.w * W : W;  // from one group of 8 to the next
  const int64_t x_pixel = a.x_blocked ? W : c;
  for (int64_t tt = 0; tt < nt; ++tt) {
    const int64_t tile = t0 + tt;
    const int64_t n = tile / (a.th * a.tw), ty = tile / a.tw % a.th, tx = tile % a.tw;
    const int64_t image = a.x_blocked ? n * g.c * g.h * g.w : n * g.h * g.w * c;
    for (int i = 0; i < kIn; ++i) {
      const int64_t iy = ty * kTile - g.pad.top + i;
      for (int j = 0; j < kIn; ++j) {
        const int64_t ix = tx * kTile - g.pad.left + j;
        const bool inside = iy >= 0 && iy < g.h && ix >= 0 && ix < g.w;
        at[i * kIn + j] = inside ? image + (iy * g.w + ix) * x_pixel : -1;
      }
    }
    for (int64_t c0 = 0; c0 < c; c0 += W) {
      const int64_t group = c0 / W * x_group;
      for (int k = 0; k < kIn * kIn; ++k) src[k] = at[k] >= 0 ? a.x + at[k] + group : a.zeros;
      input_transform<M>(src, a.vbuf + tt * c + c0, bt * c);
    }
  }
  for (int pos = 0; pos < kPos; ++pos) {
    for (int64_t pn = p0; pn < p1; ++pn) {
      for (int64_t r0 = 0; r0 < nt; r0 += kRowsMax) {
        const int mr = static_cast<int>(nt - r0 < kRowsMax ? nt - r0 : kRowsMax);
        for (int i = 0; i < mr; ++i) rows[i] = a.vbuf + (pos * bt + r0 + i) * c;
        KernelArgs args;
        args.taps = 1;
        args.c = c;
        args.rows = rows;
        args.w = a.u + (pos * a.panels + pn) * c * kPanel;
        args.bias = kZeroBias;
        args.y = a.mbuf + (pos * bt + r0) * f + pn * kPanel;
        args.ldy = f;
        args.cols = kPanel;
        args.panel_floats = c * kPanel;
        kernels2[mr](args);
      }
    }
  }
  for (int64_t tt = 0; tt < nt; ++tt) {
    const int64_t tile = t0 + tt;
    const int64_t n = tile / (a.th * a.tw), ty = tile / a.tw % a.th, tx = tile % a.tw;
    // Plain arithmetic only in this region (no library templates: see small_conv_kernel.inc).
    const int64_t oy_end = g.oh - ty * kTile < kTile ? g.oh - ty * kTile : kTile;
    const int64_t ox_end = g.ow - tx * kTile < kTile ? g.ow - tx * kTile : kTile;
    for (int64_t f0 = p0 * kPanel; f0 < p1 * kPanel; f0 += W) {
      V o[kTile * kTile];
      output_transform<M>(a.mbuf + tt * f + f0, bt * f, o);
      const V bias = load(a.bias + f0);
      for (int64_t oy = 0; oy < oy_end; ++oy) {
        for (int64_t ox = 0; ox < ox_end; ++ox) {
          const int64_t py = ty * kTile + oy, px = tx * kTile + ox;
          const int64_t plain = ((n * g.oh + py) * g.ow + px) * f + f0;
          const int64_t blocked = (((n * f + f0) / W * g.oh + py) * g.ow + px) * W;
          V v = o[oy * kTile + ox] + bias;
          if (a.res != nullptr) v += load(a.res + (a.res_blocked ? blocked : plain));
          if (a.relu) v = relu(v);
          store(a.y + (a.y_blocked ? blocked : plain), v);
        }
      }
    }
  }
}
template void run_block<4>(const BlockArgs&, int64_t, int64_t, int64_t, int64_t);
template void run_block<2>(const BlockArgs&, int64_t, int64_t, int64_t, int64_t);
}  // namespace avx2
#pragma GCC pop_options

}  // namespace

struct WinogradConv {
  ConvGeom g;
  int m = 4;  // output tile side: F(4x4, 3x3) or F(2x2, 3x3)
  bool relu = false;
  int64_t th = 0, tw = 0;  // tiles per image, vertically and horizontally
  int64_t panels = 0;      // f / 16
  int64_t block = 0;       // tiles per block (a multiple of 6)
  std::shared_ptr<void> storage;
  const float* u = nullptr;  // [positions][panels][c][16]
  std::vector<float> bias;   // f values (zeros without a bias)
  std::vector<float> zeros;  // 8 zeros: the input outside the image
  // nChw8c of the input and the output: read and written in place, so that the AVX2
  // convolutions around this one need no reorders.
  std::shared_ptr<const detail::Layout> x_layout, y_layout;
  size_t y_bytes = 0;
};

bool winograd_conv_applies(const ConvGeom& g) {
  return inference_winograd() && small_conv_isa() == SmallConvIsa::Avx2 && g.kh == 3 && g.kw == 3 &&
         g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.c % 8 == 0 && g.f % kPanel == 0 &&
         g.oh >= 1 && g.ow >= 1;
}

std::shared_ptr<const WinogradConv> prepare_winograd_conv(const Tensor& w, const Tensor& b,
                                                          const ConvGeom& g, bool relu) {
  if (!winograd_conv_applies(g)) return nullptr;
  auto p = std::make_shared<WinogradConv>();
  p->g = g;
  p->relu = relu;
  // 4x4 tiles; 2x2 ones where an output side is below 4 (a 4x4 tile would mostly be waste).
  p->m = g.oh >= 4 && g.ow >= 4 ? 4 : 2;
  const int m = p->m, n_in = m + 2, pos_count = n_in * n_in;
  p->th = (g.oh + m - 1) / m;
  p->tw = (g.ow + m - 1) / m;
  p->panels = g.f / kPanel;
  // About 220 KB of transformed input per block (positions x tiles x c floats), at least one
  // kernel call of 6 rows.
  p->block = std::max<int64_t>(kRowsMax, 55296 / pos_count / g.c / kRowsMax * kRowsMax);
  p->zeros.assign(8, 0.0f);
  p->x_layout = layout_of(tagged_md({g.n, g.c, g.h, g.w}, tag::nChw8c));
  const memory::desc y_md = tagged_md({g.n, g.f, g.oh, g.ow}, tag::nChw8c);
  p->y_layout = layout_of(y_md);
  p->y_bytes = y_md.get_size();
  p->bias.assign(static_cast<size_t>(g.f), 0.0f);
  if (b.defined()) {
    const Tensor bp = to_plain(b);
    std::copy(bp.f32(), bp.f32() + g.f, p->bias.begin());
  }
  // U = G g G^T per (c, f), in double: G is (M + 2) x 3.
  static const double G4[6][3] = {{1.0 / 4, 0, 0},
                                  {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                  {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                  {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                  {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                  {0, 0, 1}};
  static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  const double(*G)[3] = m == 4 ? G4 : G2;
  const size_t floats = static_cast<size_t>(pos_count * g.c * g.f);
  p->storage = detail::shared_block(floats * sizeof(float));
  float* u = static_cast<float*>(p->storage.get());
  const Tensor wp = to_plain(w);  // HWIO
  const float* src = wp.f32();
  for (int64_t c = 0; c < g.c; ++c) {
    for (int64_t f = 0; f < g.f; ++f) {
      double k[3][3];
      for (int ky = 0; ky < 3; ++ky) {
        for (int kx = 0; kx < 3; ++kx) k[ky][kx] = src[((ky * 3 + kx) * g.c + c) * g.f + f];
      }
      double gk[6][3];  // G k
      for (int i = 0; i < n_in; ++i) {
        for (int kx = 0; kx < 3; ++kx) {
          gk[i][kx] = G[i][0] * k[0][kx] + G[i][1] * k[1][kx] + G[i][2] * k[2][kx];
        }
      }
      const int64_t panel = f / kPanel, col = f % kPanel;
      for (int i = 0; i < n_in; ++i) {
        for (int j = 0; j < n_in; ++j) {
          const double v = gk[i][0] * G[j][0] + gk[i][1] * G[j][1] + gk[i][2] * G[j][2];
          const int64_t pos = i * n_in + j;
          u[((pos * p->panels + panel) * g.c + c) * kPanel + col] = static_cast<float>(v);
        }
      }
    }
  }
  p->u = u;
  return p;
}

const char* winograd_conv_kernel(const WinogradConv& p) {
  return p.m == 4 ? "winograd-f4x4 avx2" : "winograd-f2x2 avx2";
}

Tensor run_winograd_conv(const WinogradConv& p, const Tensor& x, const Tensor& residual,
                         bool reuse_residual) {
  const ConvGeom& g = p.g;
  // Inputs in nChw8c or plain are read where they are; others are made plain first.
  const bool x_blocked = x.layout() == p.x_layout;
  const Tensor xp = x_blocked || x.is_plain() ? x : to_plain(x);
  Tensor rp;
  bool res_blocked = false;
  if (residual.defined()) {
    res_blocked = residual.layout() == p.y_layout;
    rp = res_blocked || residual.is_plain() ? residual : to_plain(residual);
  }
  // The result goes into the residual when it is handed over and read where it is; else into a
  // new nChw8c tensor.
  const bool in_place = rp.defined() && reuse_residual && rp.shares_storage(residual);
  const Shape y_shape{g.n, g.oh, g.ow, g.f};
  Tensor y = in_place ? residual : Tensor::with_layout(y_shape, DType::F32, p.y_layout, p.y_bytes);
  const bool y_blocked = in_place ? res_blocked : true;
  const int64_t tiles = g.n * p.th * p.tw;
  const int64_t pos_count = (p.m + 2) * (p.m + 2);
  // Tiles per block: about 220 KB of transformed input (positions x tiles x c floats) while the
  // transformed filters are small enough to stay in the caches between blocks; else each
  // thread's share of the tiles in as few blocks as possible (up to 96 tiles: each position's
  // rows, 96 x c floats, still fit in L2), because every block streams all the filters again.
  const int64_t nthreads = num_threads();
  int64_t bt = p.block;
  if (pos_count * g.c * g.f * 4 > (int64_t{2} << 20)) {
    const int64_t share = (tiles + nthreads - 1) / nthreads;
    bt = std::min<int64_t>(96, std::max(bt, (share + kRowsMax - 1) / kRowsMax * kRowsMax));
  }
  const int64_t blocks = (tiles + bt - 1) / bt;
  // Fewer blocks than threads (batch 1, small maps): the output channels are split too, each
  // share transforming the block's input itself (a small part of the work).
  const int64_t groups =
      blocks >= nthreads ? 1 : std::min(p.panels, (nthreads + blocks - 1) / blocks);
  const int64_t items = blocks * groups;
  const int threads = static_cast<int>(std::min<int64_t>(nthreads, items));
  const float* xs = static_cast<const float*>(xp.raw());
  const float* res = rp.defined() ? static_cast<const float*>(rp.raw()) : nullptr;
  float* out = static_cast<float*>(y.raw());
#pragma omp parallel num_threads(threads)
  {
    // Per thread: the transformed inputs [positions][block][c] and products [positions][block][f],
    // kept between calls (a fresh block of this size would be mapped and zeroed on every call).
    thread_local std::vector<float> vbuf, mbuf;
    const size_t vsize = static_cast<size_t>(pos_count * bt * g.c),
                 msize = static_cast<size_t>(pos_count * bt * g.f);
    if (vbuf.size() < vsize) vbuf.resize(vsize);
    if (mbuf.size() < msize) mbuf.resize(msize);
    BlockArgs a;
    a.g = &g;
    a.th = p.th;
    a.tw = p.tw;
    a.panels = p.panels;
    a.bt = bt;
    a.u = p.u;
    a.bias = p.bias.data();
    a.zeros = p.zeros.data();
    a.relu = p.relu;
    a.x = xs;
    a.res = res;
    a.y = out;
    a.x_blocked = x_blocked;
    a.res_blocked = res_blocked;
    a.y_blocked = y_blocked;
    a.vbuf = vbuf.data();
    a.mbuf = mbuf.data();
#pragma omp for schedule(static)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t blk = item / groups, grp = item % groups;
      const int64_t nt = std::min(bt, tiles - blk * bt);
      const int64_t p0 = p.panels * grp / groups, p1 = p.panels * (grp + 1) / groups;
      if (p.m == 4) {
        avx2::run_block<4>(a, blk * bt, nt, p0, p1);
      } else {
        avx2::run_block<2>(a, blk * bt, nt, p0, p1);
      }
    }
  }
  return y;
}

}  // namespace resnet::ops::onednn
