// Small helpers shared by the layer implementations (internal).
#pragma once

#include <fmt/format.h>

#include <string>
#include <vector>

#include "ops/ops.h"
#include "resnet/layers.h"

namespace resnet::layers {

// Whether backward must produce the gradient of input i (all of them when need_dx is empty).
inline bool needs_dx(const std::vector<bool>& need_dx, size_t i) {
  return need_dx.empty() || (i < need_dx.size() && need_dx[i]);
}

// Throws unless forward kept what backward needs (a Training-mode forward ran).
inline void require_saved(bool saved, const std::string& where) {
  if (!saved) {
    throw ConfigError(
        fmt::format("{}: backward needs a Training-mode forward first (nothing saved)", where));
  }
}

// Stores a parameter gradient: ops may return blocked layouts, the optimizer reads plain ones.
inline void store_grad(Param& p, const Tensor& g) { p.grad = ops::plain(g); }

// Per-sample shape of rank 3 (H, W, C), else ShapeError naming the layer.
inline void require_rank3(const Shape& s, const std::string& where) {
  if (s.rank() != 3) {
    throw ShapeError(
        fmt::format("{}: expects input (None, H, W, C), got {}", where, s.keras_str()));
  }
}

inline const char* padding_name(Padding p) { return p == Padding::Same ? "same" : "valid"; }

}  // namespace resnet::layers
