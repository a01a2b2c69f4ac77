// Random image augmentation following keras ImageDataGenerator.random_transform: one affine map
// (rotation, shift, zoom about the centre) resampled bilinearly (interpolation_order 1), then
// flips, then (not in Keras; the CIFAR ResNet recipe) a random crop of a zero-padded image.
#include "data/augment.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <vector>

#include "resnet/error.h"

namespace resnet {

namespace data_detail {

namespace {

// Maps an integer index outside [0, n) back inside per the fill mode (not used for Constant).
inline int64_t fold(int64_t i, int64_t n, FillMode fill) {
  if (i >= 0 && i < n) return i;
  switch (fill) {
    case FillMode::Reflect: {
      const int64_t period = 2 * n;
      int64_t m = i % period;
      if (m < 0) m += period;
      return m < n ? m : period - 1 - m;
    }
    case FillMode::Wrap: {
      int64_t m = i % n;
      return m < 0 ? m + n : m;
    }
    default:
      return std::clamp<int64_t>(i, 0, n - 1);
  }
}

// Coordinates within this distance of a whole pixel are taken as that pixel, so maps that should
// move pixels exactly (whole-pixel shifts, the centre under rotation) are not blurred by rounding.
constexpr double kSnap = 1e-6;

inline double snap(double v) {
  const double r = std::nearbyint(v);
  return std::abs(v - r) < kSnap ? r : v;
}

}  // namespace

void affine_transform(const float* src, float* dst, int64_t h, int64_t w, int64_t c,
                      const AffineParams& p, FillMode fill, float cval) {
  const double cy = static_cast<double>(h) / 2.0 - 0.5;
  const double cx = static_cast<double>(w) / 2.0 - 0.5;
  const double cos_t = std::cos(p.theta);
  const double sin_t = std::sin(p.theta);
  for (int64_t r = 0; r < h; ++r) {
    for (int64_t col = 0; col < w; ++col) {
      // Keras: transform = rotation @ shift @ zoom, applied to the centred output coordinate.
      const double a = p.zoom_rows * (static_cast<double>(r) - cy) + p.shift_rows;
      const double b = p.zoom_cols * (static_cast<double>(col) - cx) + p.shift_cols;
      const double y = snap(cos_t * a - sin_t * b + cy);
      const double x = snap(sin_t * a + cos_t * b + cx);
      float* out = dst + (r * w + col) * c;
      if (fill == FillMode::Constant && (y < -kSnap || y > static_cast<double>(h - 1) + kSnap ||
                                         x < -kSnap || x > static_cast<double>(w - 1) + kSnap)) {
        std::fill(out, out + c, cval);
        continue;
      }
      const double y0f = std::floor(y);
      const double x0f = std::floor(x);
      const auto fy = static_cast<float>(y - y0f);
      const auto fx = static_cast<float>(x - x0f);
      const auto y0 = static_cast<int64_t>(y0f);
      const auto x0 = static_cast<int64_t>(x0f);
      // Constant mode only gets here inside the image, where clamping the far neighbour is exact
      // (its weight is 0 on the edge).
      const FillMode m = fill == FillMode::Constant ? FillMode::Nearest : fill;
      const int64_t ya = fold(y0, h, m), yb = fold(y0 + 1, h, m);
      const int64_t xa = fold(x0, w, m), xb = fold(x0 + 1, w, m);
      const float* p00 = src + (ya * w + xa) * c;
      const float* p01 = src + (ya * w + xb) * c;
      const float* p10 = src + (yb * w + xa) * c;
      const float* p11 = src + (yb * w + xb) * c;
      if (fy == 0.0f && fx == 0.0f) {
        std::copy(p00, p00 + c, out);
        continue;
      }
      const float w00 = (1 - fy) * (1 - fx), w01 = (1 - fy) * fx;
      const float w10 = fy * (1 - fx), w11 = fy * fx;
      for (int64_t ch = 0; ch < c; ++ch) {
        out[ch] = w00 * p00[ch] + w01 * p01[ch] + w10 * p10[ch] + w11 * p11[ch];
      }
    }
  }
}

void check_augment_options(const AugmentOptions& o) {
  if (o.rotation_range < 0 || o.width_shift_range < 0 || o.height_shift_range < 0 ||
      o.zoom_range < 0 || o.random_crop_padding < 0) {
    throw ConfigError(fmt::format(
        "augmentation ranges must not be negative (rotation {}, width shift {}, height shift {}, "
        "zoom {}, crop padding {})",
        o.rotation_range, o.width_shift_range, o.height_shift_range, o.zoom_range,
        o.random_crop_padding));
  }
}

}  // namespace data_detail

bool AugmentOptions::enabled() const {
  return rotation_range != 0.0 || width_shift_range != 0.0 || height_shift_range != 0.0 ||
         zoom_range != 0.0 || horizontal_flip || vertical_flip || random_crop_padding > 0;
}

void augment_image(const float* src, float* dst, int64_t h, int64_t w, int64_t c,
                   const AugmentOptions& o, Rng& rng) {
  const size_t count = static_cast<size_t>(h * w * c);
  if (!o.enabled()) {
    std::memcpy(dst, src, count * sizeof(float));
    return;
  }
  data_detail::check_augment_options(o);
  // Parameters are drawn in Keras's order: rotation, height shift, width shift, zoom, flips.
  data_detail::AffineParams p;
  if (o.rotation_range > 0) {
    p.theta = rng.uniform(-o.rotation_range, o.rotation_range) * std::numbers::pi / 180.0;
  }
  if (o.height_shift_range > 0) {
    p.shift_rows = rng.uniform(-o.height_shift_range, o.height_shift_range);
    if (o.height_shift_range < 1) p.shift_rows *= static_cast<double>(h);
  }
  if (o.width_shift_range > 0) {
    p.shift_cols = rng.uniform(-o.width_shift_range, o.width_shift_range);
    if (o.width_shift_range < 1) p.shift_cols *= static_cast<double>(w);
  }
  if (o.zoom_range > 0) {
    // Keras's zx scales the first (row) coordinate.
    p.zoom_rows = rng.uniform(1.0 - o.zoom_range, 1.0 + o.zoom_range);
    p.zoom_cols = rng.uniform(1.0 - o.zoom_range, 1.0 + o.zoom_range);
  }
  const bool flip_h = o.horizontal_flip && rng.uniform01() < 0.5;
  const bool flip_v = o.vertical_flip && rng.uniform01() < 0.5;

  const bool affine = o.rotation_range > 0 || o.height_shift_range > 0 || o.width_shift_range > 0 ||
                      o.zoom_range > 0;
  if (affine) {
    data_detail::affine_transform(src, dst, h, w, c, p, o.fill_mode, o.cval);
  } else {
    std::memcpy(dst, src, count * sizeof(float));
  }
  if (flip_h) {
    for (int64_t r = 0; r < h; ++r) {
      float* row = dst + r * w * c;
      for (int64_t a = 0, b = w - 1; a < b; ++a, --b) {
        std::swap_ranges(row + a * c, row + (a + 1) * c, row + b * c);
      }
    }
  }
  if (flip_v) {
    for (int64_t a = 0, b = h - 1; a < b; ++a, --b) {
      std::swap_ranges(dst + a * w * c, dst + (a + 1) * w * c, dst + b * w * c);
    }
  }
  if (o.random_crop_padding > 0) {
    // Crop (h, w) at offset (oy, ox) of the image padded by `pad` zeros on every side: a shift by
    // (oy - pad, ox - pad) with zeros coming in.
    const int64_t pad = o.random_crop_padding;
    const auto span = static_cast<uint64_t>(2 * pad + 1);
    const int64_t dy = static_cast<int64_t>(rng.below(span)) - pad;
    const int64_t dx = static_cast<int64_t>(rng.below(span)) - pad;
    if (dy != 0 || dx != 0) {
      std::vector<float> tmp(dst, dst + count);
      for (int64_t r = 0; r < h; ++r) {
        const int64_t sr = r + dy;
        for (int64_t col = 0; col < w; ++col) {
          const int64_t sc = col + dx;
          float* out = dst + (r * w + col) * c;
          if (sr < 0 || sr >= h || sc < 0 || sc >= w) {
            std::fill(out, out + c, 0.0f);
          } else {
            const float* in = tmp.data() + (sr * w + sc) * c;
            std::copy(in, in + c, out);
          }
        }
      }
    }
  }
}

}  // namespace resnet
