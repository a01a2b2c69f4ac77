// Reference kernels: the test oracle. Plain loops in the logical layout, written to be read.
//
// Shape letters: N batch, H/W input height/width, C input channels, F filters, KH/KW window,
// OH/OW output size, M rows, K/U Dense in/out. Activations NHWC, conv kernels HWIO (KH,KW,C,F),
// Dense kernels (K,U). Every reduction accumulates in double (so the float oracle is more
// accurate than the kernels it judges) in buffers owned here; outputs are only ever assigned.
#include "ops/ref/ref.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "resnet/error.h"

namespace resnet::ops::ref {

namespace {

using Acc = double;

// The kernels trust the geometry for every index, so a ConvGeom/PoolGeom whose output size was
// not computed by finish() would read out of bounds. Fail loudly instead.
void check_finished(const ConvGeom& g) {
  if (g.oh < 1 || g.ow < 1 || g.oh != window_out(g.h, g.kh, g.sh, g.dh, g.pad.top, g.pad.bottom) ||
      g.ow != window_out(g.w, g.kw, g.sw, g.dw, g.pad.left, g.pad.right)) {
    throw ShapeError("ref conv: geometry not finished or inconsistent: " + g.str());
  }
}
void check_finished(const PoolGeom& g) {
  if (g.oh < 1 || g.ow < 1 || g.oh != window_out(g.h, g.kh, g.sh, 1, g.pad.top, g.pad.bottom) ||
      g.ow != window_out(g.w, g.kw, g.sw, 1, g.pad.left, g.pad.right)) {
    throw ShapeError("ref pool: geometry not finished or inconsistent: " + g.str());
  }
}

// Flat offsets in the logical layouts.
inline int64_t nhwc(int64_t n, int64_t h, int64_t w, int64_t c, int64_t H, int64_t W, int64_t C) {
  return ((n * H + h) * W + w) * C + c;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Convolution (cross-correlation, as in Keras/PyTorch).
//   ih = oh*sh - pt + i*dh,  iw = ow*sw - pl + j*dw   (cells outside [0,H)x[0,W) are zero padding)
//   y[n,oh,ow,f] = b[f] + sum_{i,j,c} x[n,ih,iw,c] * w[i,j,c,f]
// Gradients (L a scalar loss, dy = dL/dy):
//   dx[n,ih,iw,c] = sum_{oh,ow,i,j,f : (oh,ow,i,j) maps to (ih,iw)} dy[n,oh,ow,f] * w[i,j,c,f]
//   dw[i,j,c,f]   = sum_{n,oh,ow} x[n,ih,iw,c] * dy[n,oh,ow,f]
//   db[f]         = sum_{n,oh,ow} dy[n,oh,ow,f]
template <class T>
void conv2d_forward(const T* x, const T* w, const T* b, T* y, const ConvGeom& g) {
  check_finished(g);
  std::vector<Acc> acc(g.f);  // (F): one output pixel
  for (int64_t n = 0; n < g.n; ++n) {
    for (int64_t oh = 0; oh < g.oh; ++oh) {
      for (int64_t ow = 0; ow < g.ow; ++ow) {
        for (int64_t f = 0; f < g.f; ++f) acc[f] = b ? static_cast<Acc>(b[f]) : 0.0;
        for (int64_t i = 0; i < g.kh; ++i) {
          const int64_t ih = oh * g.sh - g.pad.top + i * g.dh;
          if (ih < 0 || ih >= g.h) continue;
          for (int64_t j = 0; j < g.kw; ++j) {
            const int64_t iw = ow * g.sw - g.pad.left + j * g.dw;
            if (iw < 0 || iw >= g.w) continue;
            for (int64_t c = 0; c < g.c; ++c) {
              const Acc xv = x[nhwc(n, ih, iw, c, g.h, g.w, g.c)];
              const T* w_row = w + ((i * g.kw + j) * g.c + c) * g.f;  // w[i,j,c,:]
              for (int64_t f = 0; f < g.f; ++f) acc[f] += xv * static_cast<Acc>(w_row[f]);
            }
          }
        }
        T* y_px = y + nhwc(n, oh, ow, 0, g.oh, g.ow, g.f);
        for (int64_t f = 0; f < g.f; ++f) y_px[f] = static_cast<T>(acc[f]);
      }
    }
  }
}

template <class T>
void conv2d_backward_data(const T* dy, const T* w, T* dx, const ConvGeom& g) {
  check_finished(g);
  // Scatter every output pixel's gradient back to the input cells it read; input cells read by
  // no window (stride > kernel, cropped edges) keep their zero.
  std::vector<Acc> acc(g.n * g.h * g.w * g.c, 0.0);  // (N,H,W,C)
  for (int64_t n = 0; n < g.n; ++n) {
    for (int64_t oh = 0; oh < g.oh; ++oh) {
      for (int64_t ow = 0; ow < g.ow; ++ow) {
        const T* dy_px = dy + nhwc(n, oh, ow, 0, g.oh, g.ow, g.f);  // dy[n,oh,ow,:]
        for (int64_t i = 0; i < g.kh; ++i) {
          const int64_t ih = oh * g.sh - g.pad.top + i * g.dh;
          if (ih < 0 || ih >= g.h) continue;
          for (int64_t j = 0; j < g.kw; ++j) {
            const int64_t iw = ow * g.sw - g.pad.left + j * g.dw;
            if (iw < 0 || iw >= g.w) continue;
            for (int64_t c = 0; c < g.c; ++c) {
              const T* w_row = w + ((i * g.kw + j) * g.c + c) * g.f;
              Acc s = 0.0;
              for (int64_t f = 0; f < g.f; ++f) {
                s += static_cast<Acc>(dy_px[f]) * static_cast<Acc>(w_row[f]);
              }
              acc[nhwc(n, ih, iw, c, g.h, g.w, g.c)] += s;
            }
          }
        }
      }
    }
  }
  for (size_t k = 0; k < acc.size(); ++k) dx[k] = static_cast<T>(acc[k]);
}

template <class T>
void conv2d_backward_weights(const T* x, const T* dy, T* dw, T* db, const ConvGeom& g) {
  check_finished(g);
  std::vector<Acc> acc_w(g.kh * g.kw * g.c * g.f, 0.0);  // (KH,KW,C,F)
  std::vector<Acc> acc_b(g.f, 0.0);                      // (F)
  for (int64_t n = 0; n < g.n; ++n) {
    for (int64_t oh = 0; oh < g.oh; ++oh) {
      for (int64_t ow = 0; ow < g.ow; ++ow) {
        const T* dy_px = dy + nhwc(n, oh, ow, 0, g.oh, g.ow, g.f);
        for (int64_t f = 0; f < g.f; ++f) acc_b[f] += static_cast<Acc>(dy_px[f]);
        for (int64_t i = 0; i < g.kh; ++i) {
          const int64_t ih = oh * g.sh - g.pad.top + i * g.dh;
          if (ih < 0 || ih >= g.h) continue;
          for (int64_t j = 0; j < g.kw; ++j) {
            const int64_t iw = ow * g.sw - g.pad.left + j * g.dw;
            if (iw < 0 || iw >= g.w) continue;
            for (int64_t c = 0; c < g.c; ++c) {
              const Acc xv = x[nhwc(n, ih, iw, c, g.h, g.w, g.c)];
              Acc* dw_row = acc_w.data() + ((i * g.kw + j) * g.c + c) * g.f;
              for (int64_t f = 0; f < g.f; ++f) dw_row[f] += xv * static_cast<Acc>(dy_px[f]);
            }
          }
        }
      }
    }
  }
  for (size_t k = 0; k < acc_w.size(); ++k) dw[k] = static_cast<T>(acc_w[k]);
  if (db) {
    for (int64_t f = 0; f < g.f; ++f) db[f] = static_cast<T>(acc_b[f]);
  }
}

// ---------------------------------------------------------------------------------------------
// Batch normalization over the rows of x (M,C), per channel c:
//   mean = (1/M) sum_m x[m,c],  var = (1/M) sum_m (x[m,c] - mean)^2   (biased, as Keras/PyTorch
//   normalize with), inv = 1/sqrt(var + eps), xhat = (x - mean) * inv, y = gamma * xhat + beta.
template <class T>
void batchnorm_forward_training(const T* x, const T* gamma, const T* beta, T* y, T* mean, T* var,
                                int64_t m, int64_t c, double eps) {
  if (m < 1) throw ShapeError("ref batchnorm: batch statistics of an empty batch (M = 0)");
  // Two passes (mean, then squared deviations) avoid the cancellation of E[x^2] - E[x]^2.
  std::vector<Acc> mu(c, 0.0), sigma2(c, 0.0);
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t ch = 0; ch < c; ++ch) mu[ch] += static_cast<Acc>(x[r * c + ch]);
  }
  for (int64_t ch = 0; ch < c; ++ch) mu[ch] /= static_cast<Acc>(m);
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t ch = 0; ch < c; ++ch) {
      const Acc d = static_cast<Acc>(x[r * c + ch]) - mu[ch];
      sigma2[ch] += d * d;
    }
  }
  for (int64_t ch = 0; ch < c; ++ch) sigma2[ch] /= static_cast<Acc>(m);
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t ch = 0; ch < c; ++ch) {
      const Acc inv = 1.0 / std::sqrt(sigma2[ch] + eps);
      const Acc xhat = (static_cast<Acc>(x[r * c + ch]) - mu[ch]) * inv;
      y[r * c + ch] = static_cast<T>(static_cast<Acc>(gamma[ch]) * xhat + beta[ch]);
    }
  }
  for (int64_t ch = 0; ch < c; ++ch) {
    mean[ch] = static_cast<T>(mu[ch]);
    var[ch] = static_cast<T>(sigma2[ch]);
  }
}

// The same formula with given (moving) statistics.
template <class T>
void batchnorm_forward_inference(const T* x, const T* gamma, const T* beta, const T* mean,
                                 const T* var, T* y, int64_t m, int64_t c, double eps) {
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t ch = 0; ch < c; ++ch) {
      const Acc inv = 1.0 / std::sqrt(static_cast<Acc>(var[ch]) + eps);
      const Acc xhat = (static_cast<Acc>(x[r * c + ch]) - mean[ch]) * inv;
      y[r * c + ch] = static_cast<T>(static_cast<Acc>(gamma[ch]) * xhat + beta[ch]);
    }
  }
}

// Gradients, with xhat and inv computed from the given mean and var:
//   dbeta[c]  = sum_m dy[m,c]
//   dgamma[c] = sum_m dy[m,c] * xhat[m,c]
//   training (mean and var are functions of x):
//     dx[m,c] = gamma * inv / M * (M * dy[m,c] - dbeta[c] - xhat[m,c] * dgamma[c])
//   stats_fixed (inference form; mean and var are constants):
//     dx[m,c] = dy[m,c] * gamma * inv
template <class T>
void batchnorm_backward(const T* dy, const T* x, const T* gamma, const T* mean, const T* var, T* dx,
                        T* dgamma, T* dbeta, int64_t m, int64_t c, double eps, bool stats_fixed) {
  if (m < 1) throw ShapeError("ref batchnorm backward: empty batch (M = 0)");
  std::vector<Acc> inv(c), sum_dy(c, 0.0), sum_dy_xhat(c, 0.0);
  for (int64_t ch = 0; ch < c; ++ch) inv[ch] = 1.0 / std::sqrt(static_cast<Acc>(var[ch]) + eps);
  auto xhat = [&](int64_t r, int64_t ch) {
    return (static_cast<Acc>(x[r * c + ch]) - static_cast<Acc>(mean[ch])) * inv[ch];
  };
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t ch = 0; ch < c; ++ch) {
      const Acc g = dy[r * c + ch];
      sum_dy[ch] += g;
      sum_dy_xhat[ch] += g * xhat(r, ch);
    }
  }
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t ch = 0; ch < c; ++ch) {
      const Acc scale = static_cast<Acc>(gamma[ch]) * inv[ch];
      const Acc g = dy[r * c + ch];
      Acc d;
      if (stats_fixed) {
        d = g * scale;
      } else {
        const Acc mm = static_cast<Acc>(m);
        d = scale / mm * (mm * g - sum_dy[ch] - xhat(r, ch) * sum_dy_xhat[ch]);
      }
      dx[r * c + ch] = static_cast<T>(d);
    }
  }
  for (int64_t ch = 0; ch < c; ++ch) {
    dgamma[ch] = static_cast<T>(sum_dy_xhat[ch]);
    dbeta[ch] = static_cast<T>(sum_dy[ch]);
  }
}

// ---------------------------------------------------------------------------------------------
// Element-wise activations:
//   Linear  y = x                    dx = dy
//   Relu    y = max(x, 0)            dx = dy * [x > 0]      (gradient 0 at the kink, as TF)
//           with alpha > 0 (LeakyReLU) y = alpha * x and dx = alpha * dy where x <= 0
//   Sigmoid y = 1 / (1 + exp(-x))    dx = dy * y * (1 - y)
//   Tanh    y = tanh(x)              dx = dy * (1 - y^2)
template <class T>
void eltwise_forward(Eltwise e, const T* x, T* y, int64_t count, double alpha) {
  for (int64_t k = 0; k < count; ++k) {
    const Acc v = x[k];
    Acc r = 0.0;
    switch (e) {
      case Eltwise::Linear:
        r = v;
        break;
      case Eltwise::Relu:
        r = v > 0.0 ? v : alpha * v;
        break;
      case Eltwise::Sigmoid:
        // Both branches evaluate exp of a non-positive number, so neither overflows.
        r = v >= 0.0 ? 1.0 / (1.0 + std::exp(-v)) : std::exp(v) / (1.0 + std::exp(v));
        break;
      case Eltwise::Tanh:
        r = std::tanh(v);
        break;
    }
    y[k] = static_cast<T>(r);
  }
}

template <class T>
void eltwise_backward(Eltwise e, const T* dy, const T* x, const T* y, T* dx, int64_t count,
                      double alpha) {
  for (int64_t k = 0; k < count; ++k) {
    const Acc g = dy[k];
    Acc r = 0.0;
    switch (e) {
      case Eltwise::Linear:
        r = g;
        break;
      case Eltwise::Relu:  // from x, or from y when x is not given: y > 0 exactly when x > 0
        r = static_cast<Acc>(x != nullptr ? x[k] : y[k]) > 0.0 ? g : alpha * g;
        break;
      case Eltwise::Sigmoid: {
        const Acc s = y[k];
        r = g * s * (1.0 - s);
        break;
      }
      case Eltwise::Tanh: {
        const Acc t = y[k];
        r = g * (1.0 - t * t);
        break;
      }
    }
    dx[k] = static_cast<T>(r);
  }
}

// ---------------------------------------------------------------------------------------------
// Softmax over each row of length C:
//   y[r,i] = exp(x[r,i] - max_r) / sum_j exp(x[r,j] - max_r)   (subtracting the row max keeps
//   exp from overflowing; the result is unchanged)
//   dx[r,i] = y[r,i] * (dy[r,i] - sum_j dy[r,j] * y[r,j])
template <class T>
void softmax_forward(const T* x, T* y, int64_t rows, int64_t c) {
  std::vector<Acc> e(c);
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * c;
    Acc mx = -std::numeric_limits<Acc>::infinity();
    for (int64_t i = 0; i < c; ++i) mx = std::max(mx, static_cast<Acc>(xr[i]));
    Acc sum = 0.0;
    for (int64_t i = 0; i < c; ++i) {
      e[i] = std::exp(static_cast<Acc>(xr[i]) - mx);
      sum += e[i];
    }
    for (int64_t i = 0; i < c; ++i) y[r * c + i] = static_cast<T>(e[i] / sum);
  }
}

template <class T>
void softmax_backward(const T* dy, const T* y, T* dx, int64_t rows, int64_t c) {
  for (int64_t r = 0; r < rows; ++r) {
    Acc dot = 0.0;
    for (int64_t i = 0; i < c; ++i) dot += static_cast<Acc>(dy[r * c + i]) * y[r * c + i];
    for (int64_t i = 0; i < c; ++i) {
      dx[r * c + i] = static_cast<T>(static_cast<Acc>(y[r * c + i]) * (dy[r * c + i] - dot));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Pooling over the window W(oh,ow) = {(ih,iw) = (oh*sh - pt + i, ow*sw - pl + j) : 0<=i<KH,
// 0<=j<KW}, restricted to real (non-padded) cells R(oh,ow):
//   Max: y[n,oh,ow,c] = max_{R} x[n,ih,iw,c]; padded cells never win (no implicit 0 or -inf
//        candidate); ties go to the first cell in window order (i, then j).
//        dx[n,ih,iw,c] = sum over windows whose argmax is (ih,iw) of dy[n,oh,ow,c]
//   Avg: y = (1/|R|) sum_{R} x   (TensorFlow 'same': padding is excluded from the count)
//        dx[n,ih,iw,c] = sum over windows containing (ih,iw) of dy[n,oh,ow,c] / |R(oh,ow)|
namespace {

// Visits the real cells of one window in window order: fn(ih, iw).
template <class Fn>
void for_each_cell(const PoolGeom& g, int64_t oh, int64_t ow, Fn&& fn) {
  for (int64_t i = 0; i < g.kh; ++i) {
    const int64_t ih = oh * g.sh - g.pad.top + i;
    if (ih < 0 || ih >= g.h) continue;
    for (int64_t j = 0; j < g.kw; ++j) {
      const int64_t iw = ow * g.sw - g.pad.left + j;
      if (iw < 0 || iw >= g.w) continue;
      fn(ih, iw);
    }
  }
}

// Flat input offset of the maximum of one window and channel; -1 if the window has no real cell
// (impossible once PoolGeom::finish accepted the geometry).
template <class T>
int64_t window_argmax(const T* x, const PoolGeom& g, int64_t n, int64_t oh, int64_t ow, int64_t c) {
  int64_t best = -1;
  for_each_cell(g, oh, ow, [&](int64_t ih, int64_t iw) {
    const int64_t k = nhwc(n, ih, iw, c, g.h, g.w, g.c);
    if (best < 0 || x[k] > x[best]) best = k;  // strict: the first of equal values wins
  });
  return best;
}

}  // namespace

template <class T>
void pool_forward(const T* x, T* y, const PoolGeom& g) {
  check_finished(g);
  for (int64_t n = 0; n < g.n; ++n) {
    for (int64_t oh = 0; oh < g.oh; ++oh) {
      for (int64_t ow = 0; ow < g.ow; ++ow) {
        for (int64_t c = 0; c < g.c; ++c) {
          Acc r = 0.0;
          if (g.kind == PoolKind::Max) {
            const int64_t best = window_argmax(x, g, n, oh, ow, c);
            r = best >= 0 ? static_cast<Acc>(x[best]) : 0.0;
          } else {
            Acc sum = 0.0;
            int64_t count = 0;
            for_each_cell(g, oh, ow, [&](int64_t ih, int64_t iw) {
              sum += static_cast<Acc>(x[nhwc(n, ih, iw, c, g.h, g.w, g.c)]);
              ++count;
            });
            r = count > 0 ? sum / static_cast<Acc>(count) : 0.0;
          }
          y[nhwc(n, oh, ow, c, g.oh, g.ow, g.c)] = static_cast<T>(r);
        }
      }
    }
  }
}

template <class T>
void pool_backward(const T* dy, const T* x, T* dx, const PoolGeom& g) {
  check_finished(g);
  std::vector<Acc> acc(g.n * g.h * g.w * g.c, 0.0);  // (N,H,W,C)
  for (int64_t n = 0; n < g.n; ++n) {
    for (int64_t oh = 0; oh < g.oh; ++oh) {
      for (int64_t ow = 0; ow < g.ow; ++ow) {
        for (int64_t c = 0; c < g.c; ++c) {
          const Acc gy = dy[nhwc(n, oh, ow, c, g.oh, g.ow, g.c)];
          if (g.kind == PoolKind::Max) {
            const int64_t best = window_argmax(x, g, n, oh, ow, c);
            if (best >= 0) acc[best] += gy;
          } else {
            int64_t count = 0;
            for_each_cell(g, oh, ow, [&](int64_t, int64_t) { ++count; });
            if (count == 0) continue;
            const Acc share = gy / static_cast<Acc>(count);
            for_each_cell(g, oh, ow, [&](int64_t ih, int64_t iw) {
              acc[nhwc(n, ih, iw, c, g.h, g.w, g.c)] += share;
            });
          }
        }
      }
    }
  }
  for (size_t k = 0; k < acc.size(); ++k) dx[k] = static_cast<T>(acc[k]);
}

// ---------------------------------------------------------------------------------------------
// Zero padding of H and W: y (N, H+pt+pb, W+pl+pr, C),
//   y[n, h+pt, w+pl, c] = x[n,h,w,c], zero elsewhere.
// Backward crops: dx[n,h,w,c] = dy[n, h+pt, w+pl, c]  (h, w: the unpadded size).
template <class T>
void zero_pad_forward(const T* x, T* y, int64_t n, int64_t h, int64_t w, int64_t c, const Pad2& p) {
  const int64_t ph = h + p.top + p.bottom, pw = w + p.left + p.right;
  std::fill(y, y + n * ph * pw * c, T(0));
  for (int64_t in = 0; in < n; ++in) {
    for (int64_t ih = 0; ih < h; ++ih) {
      for (int64_t iw = 0; iw < w; ++iw) {
        const T* src = x + nhwc(in, ih, iw, 0, h, w, c);
        std::copy(src, src + c, y + nhwc(in, ih + p.top, iw + p.left, 0, ph, pw, c));
      }
    }
  }
}

template <class T>
void zero_pad_backward(const T* dy, T* dx, int64_t n, int64_t h, int64_t w, int64_t c,
                       const Pad2& p) {
  const int64_t ph = h + p.top + p.bottom, pw = w + p.left + p.right;
  for (int64_t in = 0; in < n; ++in) {
    for (int64_t ih = 0; ih < h; ++ih) {
      for (int64_t iw = 0; iw < w; ++iw) {
        const T* src = dy + nhwc(in, ih + p.top, iw + p.left, 0, ph, pw, c);
        std::copy(src, src + c, dx + nhwc(in, ih, iw, 0, h, w, c));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Dense: x (M,K), w (K,U), b (U):
//   y[m,u]  = b[u] + sum_k x[m,k] * w[k,u]
//   dx[m,k] = sum_u dy[m,u] * w[k,u]
//   dw[k,u] = sum_m x[m,k] * dy[m,u]
//   db[u]   = sum_m dy[m,u]
template <class T>
void dense_forward(const T* x, const T* w, const T* b, T* y, int64_t m, int64_t k, int64_t u) {
  std::vector<Acc> acc(u);
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t o = 0; o < u; ++o) acc[o] = b ? static_cast<Acc>(b[o]) : 0.0;
    for (int64_t i = 0; i < k; ++i) {
      const Acc xv = x[r * k + i];
      for (int64_t o = 0; o < u; ++o) acc[o] += xv * static_cast<Acc>(w[i * u + o]);
    }
    for (int64_t o = 0; o < u; ++o) y[r * u + o] = static_cast<T>(acc[o]);
  }
}

template <class T>
void dense_backward_data(const T* dy, const T* w, T* dx, int64_t m, int64_t k, int64_t u) {
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t i = 0; i < k; ++i) {
      Acc s = 0.0;
      for (int64_t o = 0; o < u; ++o) s += static_cast<Acc>(dy[r * u + o]) * w[i * u + o];
      dx[r * k + i] = static_cast<T>(s);
    }
  }
}

template <class T>
void dense_backward_weights(const T* x, const T* dy, T* dw, T* db, int64_t m, int64_t k,
                            int64_t u) {
  std::vector<Acc> acc_w(k * u, 0.0), acc_b(u, 0.0);
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t o = 0; o < u; ++o) acc_b[o] += static_cast<Acc>(dy[r * u + o]);
    for (int64_t i = 0; i < k; ++i) {
      const Acc xv = x[r * k + i];
      for (int64_t o = 0; o < u; ++o) acc_w[i * u + o] += xv * static_cast<Acc>(dy[r * u + o]);
    }
  }
  for (int64_t e = 0; e < k * u; ++e) dw[e] = static_cast<T>(acc_w[e]);
  if (db) {
    for (int64_t o = 0; o < u; ++o) db[o] = static_cast<T>(acc_b[o]);
  }
}

// ---------------------------------------------------------------------------------------------
// Sum of same-shape inputs: y = sum_i xs[i]. The gradient of each input is dy itself (no kernel).
template <class T>
void add(const T* const* xs, int64_t count_inputs, T* y, int64_t count) {
  for (int64_t e = 0; e < count; ++e) {
    Acc s = 0.0;
    for (int64_t i = 0; i < count_inputs; ++i) s += static_cast<Acc>(xs[i][e]);
    y[e] = static_cast<T>(s);
  }
}

// ---------------------------------------------------------------------------------------------
// float: the `ref` backend; double: finite-difference gradient checks.
#define RESNET_REF_INSTANTIATE(T)                                                                 \
  template void conv2d_forward<T>(const T*, const T*, const T*, T*, const ConvGeom&);             \
  template void conv2d_backward_data<T>(const T*, const T*, T*, const ConvGeom&);                 \
  template void conv2d_backward_weights<T>(const T*, const T*, T*, T*, const ConvGeom&);          \
  template void batchnorm_forward_training<T>(const T*, const T*, const T*, T*, T*, T*, int64_t,  \
                                              int64_t, double);                                   \
  template void batchnorm_forward_inference<T>(const T*, const T*, const T*, const T*, const T*,  \
                                               T*, int64_t, int64_t, double);                     \
  template void batchnorm_backward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*,   \
                                      T*, int64_t, int64_t, double, bool);                        \
  template void eltwise_forward<T>(Eltwise, const T*, T*, int64_t, double);                       \
  template void eltwise_backward<T>(Eltwise, const T*, const T*, const T*, T*, int64_t, double);  \
  template void softmax_forward<T>(const T*, T*, int64_t, int64_t);                               \
  template void softmax_backward<T>(const T*, const T*, T*, int64_t, int64_t);                    \
  template void pool_forward<T>(const T*, T*, const PoolGeom&);                                   \
  template void pool_backward<T>(const T*, const T*, T*, const PoolGeom&);                        \
  template void zero_pad_forward<T>(const T*, T*, int64_t, int64_t, int64_t, int64_t,             \
                                    const Pad2&);                                                 \
  template void zero_pad_backward<T>(const T*, T*, int64_t, int64_t, int64_t, int64_t,            \
                                     const Pad2&);                                                \
  template void dense_forward<T>(const T*, const T*, const T*, T*, int64_t, int64_t, int64_t);    \
  template void dense_backward_data<T>(const T*, const T*, T*, int64_t, int64_t, int64_t);        \
  template void dense_backward_weights<T>(const T*, const T*, T*, T*, int64_t, int64_t, int64_t); \
  template void add<T>(const T* const*, int64_t, T*, int64_t);

RESNET_REF_INSTANTIATE(float)
RESNET_REF_INSTANTIATE(double)

#undef RESNET_REF_INSTANTIATE

}  // namespace resnet::ops::ref
