// Internal augmentation primitives, exposed for tests (augment_image draws their parameters).
#pragma once

#include <cstdint>

#include "resnet/data.h"

namespace resnet::data_detail {

// One affine map in Keras's ImageDataGenerator convention: an output pixel (row, col) samples
// the input at centre + R(theta) * (shift + Z * ((row, col) - centre)), centre = (h/2 - 0.5,
// w/2 - 0.5), Z = diag(zoom_rows, zoom_cols). Shifts are in pixels (rows, cols).
struct AffineParams {
  double theta = 0.0;  // radians
  double shift_rows = 0.0;
  double shift_cols = 0.0;
  double zoom_rows = 1.0;
  double zoom_cols = 1.0;
};

// Bilinear resampling of the (h, w, c) float image `src` into `dst` (no aliasing), points outside
// the image filled per `fill` (scipy.ndimage modes: nearest = edge, reflect = half-sample
// symmetric "dcba|abcd|dcba", wrap = periodic, constant = cval). A map that lands on whole pixels
// copies them exactly.
void affine_transform(const float* src, float* dst, int64_t h, int64_t w, int64_t c,
                      const AffineParams& p, FillMode fill, float cval);

// Throws ConfigError for negative ranges or padding.
void check_augment_options(const AugmentOptions& o);

}  // namespace resnet::data_detail
