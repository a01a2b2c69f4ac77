// Zero padding of H and W. Used at the network input (plain data), so it works on the logical
// layout with row copies: each output row is zeros, a copy of an input row, zeros.
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

}  // namespace

Tensor zero_pad_forward(const Tensor& x_any, const Pad2& p) {
  const char* op = "zero_pad_forward";
  expect_nhwc(op, x_any);
  check_pads(op, p);
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
