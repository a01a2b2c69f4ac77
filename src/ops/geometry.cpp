// Window geometry shared by every backend: output sizes, Keras 'same' padding, printable cases.
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <utility>

#include "ops/ops.h"
#include "resnet/error.h"

namespace resnet::ops {

namespace {

// Floor division that rounds toward -infinity (C++ `/` truncates toward zero), so that
// window_out reports a non-positive size instead of 1 when the window does not fit at all.
int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

void check_window_args(int64_t in, int64_t k, int64_t stride, int64_t dilation, int64_t pad_lo,
                       int64_t pad_hi) {
  if (in < 1 || k < 1 || stride < 1 || dilation < 1 || pad_lo < 0 || pad_hi < 0) {
    throw ShapeError(fmt::format(
        "invalid window geometry: in={} k={} stride={} dilation={} pad=({}, {}); sizes, strides "
        "and dilations must be >= 1 and paddings >= 0",
        in, k, stride, dilation, pad_lo, pad_hi));
  }
}

}  // namespace

int64_t window_out(int64_t in, int64_t k, int64_t stride, int64_t dilation, int64_t pad_lo,
                   int64_t pad_hi) {
  check_window_args(in, k, stride, dilation, pad_lo, pad_hi);
  return floor_div(in + pad_lo + pad_hi - dilation * (k - 1) - 1, stride) + 1;
}

// TensorFlow: out = ceil(in / stride); the padding makes the last window end exactly at the
// padded edge, and the odd extra pixel goes to the end (bottom/right), unlike PyTorch/oneDNN
// which would need it spelled out explicitly.
std::pair<int64_t, int64_t> same_padding(int64_t in, int64_t k, int64_t stride, int64_t dilation) {
  check_window_args(in, k, stride, dilation, 0, 0);
  const int64_t out = (in + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + (k - 1) * dilation + 1 - in, 0);
  const int64_t lo = total / 2;
  return {lo, total - lo};
}

void ConvGeom::finish() {
  if (n < 1 || h < 1 || w < 1 || c < 1 || kh < 1 || kw < 1 || f < 1 || sh < 1 || sw < 1 || dh < 1 ||
      dw < 1 || pad.top < 0 || pad.bottom < 0 || pad.left < 0 || pad.right < 0) {
    throw ShapeError("invalid convolution geometry (sizes, strides, dilations >= 1, pads >= 0): " +
                     str());
  }
  oh = window_out(h, kh, sh, dh, pad.top, pad.bottom);
  ow = window_out(w, kw, sw, dw, pad.left, pad.right);
  if (oh < 1 || ow < 1) {
    throw ShapeError("convolution output would be empty (kernel larger than the padded input): " +
                     str());
  }
}

std::string ConvGeom::str() const {
  return fmt::format(
      "conv n={} h={} w={} c={} k={}x{} f={} s={}x{} d={}x{} pad={},{},{},{} out={}x{}", n, h, w, c,
      kh, kw, f, sh, sw, dh, dw, pad.top, pad.bottom, pad.left, pad.right, oh, ow);
}

void PoolGeom::finish() {
  if (n < 1 || h < 1 || w < 1 || c < 1 || kh < 1 || kw < 1 || sh < 1 || sw < 1 || pad.top < 0 ||
      pad.bottom < 0 || pad.left < 0 || pad.right < 0) {
    throw ShapeError("invalid pooling geometry (sizes and strides >= 1, pads >= 0): " + str());
  }
  // A window made only of padding would have no maximum and nothing to average. Requiring
  // padding < window (as oneDNN and TensorFlow's 'same' padding do) rules that out.
  if (pad.top >= kh || pad.bottom >= kh || pad.left >= kw || pad.right >= kw) {
    throw ShapeError("pooling padding must be smaller than the window: " + str());
  }
  oh = window_out(h, kh, sh, 1, pad.top, pad.bottom);
  ow = window_out(w, kw, sw, 1, pad.left, pad.right);
  if (oh < 1 || ow < 1) {
    throw ShapeError("pooling output would be empty (window larger than the padded input): " +
                     str());
  }
}

std::string PoolGeom::str() const {
  return fmt::format("pool {} n={} h={} w={} c={} k={}x{} s={}x{} pad={},{},{},{} out={}x{}",
                     kind == PoolKind::Max ? "max" : "avg", n, h, w, c, kh, kw, sh, sw, pad.top,
                     pad.bottom, pad.left, pad.right, oh, ow);
}

const char* eltwise_name(Eltwise e) {
  switch (e) {
    case Eltwise::Linear:
      return "linear";
    case Eltwise::Relu:
      return "relu";
    case Eltwise::Sigmoid:
      return "sigmoid";
    case Eltwise::Tanh:
      return "tanh";
  }
  return "unknown";
}

}  // namespace resnet::ops
