// Zero padding of H and W. A plain input (the network input) is padded with row copies: each
// output row is zeros, a copy of an input row, zeros. An input in a channel-blocked layout
// (nChw8c / nChw16c, what convolutions produce) stays in that layout: the output is zeroed and
// the input reordered into the interior window (a oneDNN sub-memory), and backward reorders that
// window out of the gradient, so ZeroPadding2D between convolutions costs no layout round trip.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "ops/onednn/common.h"
#include "ops/onednn/onednn.h"

namespace resnet::ops::onednn {
namespace {

void expect_nhwc(const char* op, const Tensor& t) {
  if (!t.defined() || t.rank() != 4) {
    throw ShapeError(fmt::format("oneDNN {}: expected a 4-D (N, H, W, C) tensor, got {}", op,
                                 t.defined() ? t.shape().str() : "undefined"));
  }
}

void check_pads(const char* op, const Pad2& p) {
  if (p.top < 0 || p.bottom < 0 || p.left < 0 || p.right < 0) {
    throw ShapeError(fmt::format("oneDNN {}: negative padding ({}, {}, {}, {})", op, p.top,
                                 p.bottom, p.left, p.right));
  }
}

// The channel-blocked tag (aBcd8b = nChw8c, aBcd16b = nChw16c) that describes `md` exactly, or
// tag::undef.
tag channel_blocked_tag(const memory::desc& md) {
  const dnnl_memory_desc_t& d = md.data;
  if (d.ndims != 4 || d.format_kind != dnnl_blocked) return tag::undef;
  const memory::dims dims(d.dims, d.dims + 4);
  for (tag t : {tag::aBcd8b, tag::aBcd16b}) {
    if (tagged_md(dims, t) == md) return t;
  }
  return tag::undef;
}

}  // namespace

Tensor zero_pad_forward(const Tensor& x_any, const Pad2& p) {
  const char* op = "zero_pad_forward";
  expect_nhwc(op, x_any);
  check_pads(op, p);
  if (!x_any.is_plain()) {
    const memory::desc x_md = md_of(x_any);
    const tag t = channel_blocked_tag(x_md);
    if (t != tag::undef) {
      return guarded(
          op, [&] { return describe(x_any); },
          [&] {
            const Shape& s = x_any.shape();
            const Shape out{s[0], s[1] + p.top + p.bottom, s[2] + p.left + p.right, s[3]};
            const memory::desc y_md = tagged_md(dnnl_dims(out), t);
            Tensor y = make_output(out, y_md);
            std::memset(y.raw(), 0, y.nbytes());
            const memory::desc window = y_md.submemory_desc(dnnl_dims(s), {0, 0, p.top, p.left});
            reorder(mem_over(x_any, x_md), memory(window, engine(), y.raw()));
            return y;
          });
    }
  }
  const Tensor x = to_plain(x_any);
  const int64_t n = x.shape()[0], h = x.shape()[1], w = x.shape()[2], c = x.shape()[3];
  const int64_t oh = h + p.top + p.bottom, ow = w + p.left + p.right;
  Tensor y = Tensor::empty(Shape{n, oh, ow, c});
  const float* src = x.f32();
  float* dst = y.f32();
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < n * oh; ++row) {
    const int64_t i = row / oh, r = row % oh;
    float* out = dst + row * ow * c;
    if (r < p.top || r >= p.top + h) {
      std::fill(out, out + ow * c, 0.0f);
      continue;
    }
    const float* in = src + (i * h + (r - p.top)) * w * c;
    std::fill(out, out + p.left * c, 0.0f);
    std::memcpy(out + p.left * c, in, sizeof(float) * w * c);
    std::fill(out + (p.left + w) * c, out + ow * c, 0.0f);
  }
  return y;
}

Tensor zero_pad_backward(const Tensor& dy_any, const Pad2& p) {
  const char* op = "zero_pad_backward";
  expect_nhwc(op, dy_any);
  check_pads(op, p);
  if (!dy_any.is_plain()) {
    const memory::desc dy_md = md_of(dy_any);
    const tag t = channel_blocked_tag(dy_md);
    const Shape& s = dy_any.shape();
    const Shape in{s[0], s[1] - p.top - p.bottom, s[2] - p.left - p.right, s[3]};
    if (t != tag::undef && in[1] > 0 && in[2] > 0) {
      return guarded(
          op, [&] { return describe(dy_any); },
          [&] {
            const memory::desc window = dy_md.submemory_desc(dnnl_dims(in), {0, 0, p.top, p.left});
            const memory::desc dx_md = tagged_md(dnnl_dims(in), t);
            Tensor dx = make_output(in, dx_md);
            std::memset(dx.raw(), 0, dx.nbytes());  // channel padding lanes stay zero
            reorder(memory(window, engine(), dy_any.raw()), mem_over(dx, dx_md));
            return dx;
          });
    }
  }
  const Tensor dy = to_plain(dy_any);
  const int64_t n = dy.shape()[0], oh = dy.shape()[1], ow = dy.shape()[2], c = dy.shape()[3];
  const int64_t h = oh - p.top - p.bottom, w = ow - p.left - p.right;
  if (h < 0 || w < 0) {
    throw ShapeError(
        fmt::format("oneDNN {}: padding larger than the gradient {}", op, dy.shape().str()));
  }
  Tensor dx = Tensor::empty(Shape{n, h, w, c});
  const float* src = dy.f32();
  float* dst = dx.f32();
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < n * h; ++row) {
    const int64_t i = row / h, r = row % h;
    std::memcpy(dst + row * w * c, src + ((i * oh + r + p.top) * ow + p.left) * c,
                sizeof(float) * w * c);
  }
  return dx;
}

}  // namespace resnet::ops::onednn
