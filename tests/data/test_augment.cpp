// Augmentation: identity, flips, exact whole-pixel maps, fill modes, determinism, crops.
#include <gtest/gtest.h>

#include <algorithm>
#include <numbers>
#include <vector>

#include "data/augment.h"
#include "resnet/data.h"
#include "resnet/error.h"

namespace resnet {
namespace {

using data_detail::affine_transform;
using data_detail::AffineParams;

// An (h, w, c) image with distinct values: 100 r + 10 col + ch.
std::vector<float> ramp(int64_t h, int64_t w, int64_t c) {
  std::vector<float> v(static_cast<size_t>(h * w * c));
  for (int64_t r = 0; r < h; ++r) {
    for (int64_t col = 0; col < w; ++col) {
      for (int64_t ch = 0; ch < c; ++ch)
        v[static_cast<size_t>((r * w + col) * c + ch)] = 100.0f * r + 10.0f * col + ch;
    }
  }
  return v;
}

float at(const std::vector<float>& v, int64_t w, int64_t c, int64_t r, int64_t col, int64_t ch) {
  return v[static_cast<size_t>((r * w + col) * c + ch)];
}

TEST(DataAugment, DisabledIsExactIdentity) {
  const AugmentOptions o;
  EXPECT_FALSE(o.enabled());
  std::vector<float> src = ramp(5, 7, 3), dst(src.size(), -1.0f);
  src[4] = 0.123456789f;
  Rng rng(1);
  augment_image(src.data(), dst.data(), 5, 7, 3, o, rng);
  EXPECT_EQ(dst, src);
  EXPECT_TRUE((AugmentOptions{.horizontal_flip = true}).enabled());
  EXPECT_TRUE((AugmentOptions{.random_crop_padding = 4}).enabled());
  EXPECT_TRUE((AugmentOptions{.zoom_range = 0.1}).enabled());
}

TEST(DataAugment, HorizontalFlipMirrorsColumnsHalfTheTime) {
  const int64_t h = 3, w = 4, c = 2;
  const std::vector<float> src = ramp(h, w, c);
  const AugmentOptions o{.horizontal_flip = true};
  int flipped = 0, kept = 0;
  for (uint64_t seed = 0; seed < 64; ++seed) {
    std::vector<float> dst(src.size());
    Rng rng(seed);
    augment_image(src.data(), dst.data(), h, w, c, o, rng);
    if (dst == src) {
      ++kept;
      continue;
    }
    ++flipped;
    for (int64_t r = 0; r < h; ++r) {
      for (int64_t col = 0; col < w; ++col) {
        for (int64_t ch = 0; ch < c; ++ch) {
          ASSERT_EQ(at(dst, w, c, r, col, ch), at(src, w, c, r, w - 1 - col, ch));
        }
      }
    }
  }
  EXPECT_GT(flipped, 16);
  EXPECT_GT(kept, 16);
}

TEST(DataAugment, WholePixelShiftMovesPixelsExactlyWithNearestFill) {
  const int64_t h = 5, w = 6, c = 2;
  const std::vector<float> src = ramp(h, w, c);
  std::vector<float> dst(src.size());
  // Output (r, col) samples input (r + 1, col - 2): the content moves up 1 and right 2.
  affine_transform(src.data(), dst.data(), h, w, c, AffineParams{.shift_rows = 1, .shift_cols = -2},
                   FillMode::Nearest, 0.0f);
  for (int64_t r = 0; r < h; ++r) {
    for (int64_t col = 0; col < w; ++col) {
      const int64_t sr = std::min<int64_t>(r + 1, h - 1), sc = std::max<int64_t>(col - 2, 0);
      for (int64_t ch = 0; ch < c; ++ch) {
        ASSERT_EQ(at(dst, w, c, r, col, ch), at(src, w, c, sr, sc, ch)) << r << "," << col;
      }
    }
  }
}

TEST(DataAugment, FillModesOutsideTheImage) {
  const int64_t h = 1, w = 4, c = 1;
  const std::vector<float> src = {1, 2, 3, 4};
  std::vector<float> dst(4);
  const AffineParams shift3{.shift_cols = 3};  // output col samples input col + 3
  affine_transform(src.data(), dst.data(), h, w, c, shift3, FillMode::Constant, -5.0f);
  EXPECT_EQ(dst, (std::vector<float>{4, -5, -5, -5}));
  affine_transform(src.data(), dst.data(), h, w, c, shift3, FillMode::Nearest, 0.0f);
  EXPECT_EQ(dst, (std::vector<float>{4, 4, 4, 4}));
  affine_transform(src.data(), dst.data(), h, w, c, shift3, FillMode::Reflect, 0.0f);
  EXPECT_EQ(dst, (std::vector<float>{4, 4, 3, 2}));  // abcd|dcba
  affine_transform(src.data(), dst.data(), h, w, c, shift3, FillMode::Wrap, 0.0f);
  EXPECT_EQ(dst, (std::vector<float>{4, 1, 2, 3}));  // abcd|abcd
  // Half a pixel: bilinear interpolation between neighbours.
  affine_transform(src.data(), dst.data(), h, w, c, AffineParams{.shift_cols = 0.5},
                   FillMode::Nearest, 0.0f);
  EXPECT_EQ(dst, (std::vector<float>{1.5f, 2.5f, 3.5f, 4.0f}));
}

TEST(DataAugment, QuarterTurnIsAnExactRotation) {
  const int64_t n = 4, c = 1;
  const std::vector<float> src = ramp(n, n, c);
  std::vector<float> dst(src.size());
  affine_transform(src.data(), dst.data(), n, n, c, AffineParams{.theta = std::numbers::pi / 2},
                   FillMode::Constant, -1.0f);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t col = 0; col < n; ++col) {
      ASSERT_EQ(at(dst, n, c, r, col, 0), at(src, n, c, n - 1 - col, r, 0)) << r << "," << col;
    }
  }
}

TEST(DataAugment, SmallRotationKeepsTheCentrePixel) {
  const int64_t n = 9, c = 3;
  const std::vector<float> src = ramp(n, n, c);
  const AugmentOptions o{.rotation_range = 15};
  bool changed = false;
  for (uint64_t seed = 0; seed < 8; ++seed) {
    std::vector<float> dst(src.size());
    Rng rng(seed);
    augment_image(src.data(), dst.data(), n, n, c, o, rng);
    for (int64_t ch = 0; ch < c; ++ch) EXPECT_EQ(at(dst, n, c, 4, 4, ch), at(src, n, c, 4, 4, ch));
    changed = changed || dst != src;
  }
  EXPECT_TRUE(changed);
}

TEST(DataAugment, DeterministicForASeed) {
  const int64_t h = 8, w = 10, c = 3;
  const std::vector<float> src = ramp(h, w, c);
  const AugmentOptions o{.rotation_range = 20,
                         .width_shift_range = 0.2,
                         .height_shift_range = 2,
                         .zoom_range = 0.15,
                         .horizontal_flip = true,
                         .fill_mode = FillMode::Reflect,
                         .random_crop_padding = 2};
  auto run = [&](uint64_t seed) {
    std::vector<float> dst(src.size());
    Rng rng(seed);
    augment_image(src.data(), dst.data(), h, w, c, o, rng);
    return dst;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
  for (float v : run(7)) {
    EXPECT_GE(v, 0.0f);
    EXPECT_LE(v, 792.0f);
  }
}

TEST(DataAugment, RandomCropIsAZeroFilledShift) {
  const int64_t h = 6, w = 5, c = 1;
  const std::vector<float> src = ramp(h, w, c);
  const AugmentOptions o{.random_crop_padding = 2};
  int shifted = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::vector<float> dst(src.size());
    Rng rng(seed);
    augment_image(src.data(), dst.data(), h, w, c, o, rng);
    bool found = false;
    for (int64_t dy = -2; dy <= 2 && !found; ++dy) {
      for (int64_t dx = -2; dx <= 2 && !found; ++dx) {
        bool match = true;
        for (int64_t r = 0; r < h && match; ++r) {
          for (int64_t col = 0; col < w && match; ++col) {
            const int64_t sr = r + dy, sc = col + dx;
            const float want =
                (sr < 0 || sr >= h || sc < 0 || sc >= w) ? 0.0f : at(src, w, c, sr, sc, 0);
            match = at(dst, w, c, r, col, 0) == want;
          }
        }
        if (match) {
          found = true;
          shifted += (dy != 0 || dx != 0);
        }
      }
    }
    EXPECT_TRUE(found) << "seed " << seed;
  }
  EXPECT_GT(shifted, 10);
}

TEST(DataAugment, NegativeRangesAreRejected) {
  std::vector<float> img(4);
  Rng rng(0);
  EXPECT_THROW(
      augment_image(img.data(), img.data(), 2, 2, 1, AugmentOptions{.rotation_range = -1}, rng),
      ConfigError);
}

}  // namespace
}  // namespace resnet
