// BatchLoader: batch sizes, order, determinism across thread counts, prompt shutdown.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <numeric>

#include "data_test_util.h"
#include "resnet/data.h"
#include "resnet/error.h"

namespace resnet {
namespace {

// n samples (h, w, c) uint8; every pixel of sample i is i % 256; label i % classes.
Dataset constant_images(int64_t n, int64_t h, int64_t w, int64_t c, int64_t classes = 4) {
  Dataset d;
  d.x = Tensor::empty(Shape{n, h, w, c}, DType::U8);
  d.y = Tensor::empty(Shape{n}, DType::I64);
  const int64_t per = h * w * c;
  for (int64_t i = 0; i < n; ++i) {
    std::fill_n(d.x.data<uint8_t>() + i * per, per, static_cast<uint8_t>(i % 256));
    d.y.data<int64_t>()[i] = i % classes;
  }
  d.num_classes = classes;
  d.source = "constant_images";
  return d;
}

// Every pixel of sample i distinct: useful to see augmentation.
Dataset ramp_images(int64_t n, int64_t h, int64_t w, int64_t c) {
  Dataset d = constant_images(n, h, w, c);
  uint8_t* x = d.x.data<uint8_t>();
  for (int64_t i = 0; i < d.x.numel(); ++i) x[i] = static_cast<uint8_t>((i * 37) % 251);
  return d;
}

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

const Preprocess kNone{.mode = Preprocess::Mode::None};

TEST(DataBatchLoader, PartialLastBatchAndOrder) {
  const Dataset d = constant_images(10, 2, 3, 1);
  for (int workers : {0, 1, 3}) {
    SCOPED_TRACE(workers);
    BatchLoader loader(d, 4, kNone, {}, 1, workers, 2);
    std::vector<int64_t> order = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
    loader.start_epoch(order, 0);
    EXPECT_EQ(loader.batches_in_epoch(), 3);
    Batch b;
    std::vector<int64_t> sizes, seen;
    while (loader.next(b)) {
      sizes.push_back(b.x.shape()[0]);
      ASSERT_EQ(b.x.dtype(), DType::F32);
      ASSERT_EQ(b.x.shape().drop_front(), (Shape{2, 3, 1}));
      ASSERT_EQ(b.y.shape(), (Shape{b.x.shape()[0]}));
      for (int64_t k = 0; k < b.x.shape()[0]; ++k) {
        const float v = b.x.f32()[k * 6];
        seen.push_back(static_cast<int64_t>(v));
        EXPECT_EQ(b.y.data<int64_t>()[k], static_cast<int64_t>(v) % 4);
      }
    }
    EXPECT_EQ(sizes, (std::vector<int64_t>{4, 4, 2}));
    EXPECT_EQ(seen, order);
    EXPECT_FALSE(loader.next(b));
  }
}

TEST(DataBatchLoader, AppliesPreprocessing) {
  const Dataset d = constant_images(3, 1, 1, 3);
  BatchLoader loader(d, 8, Preprocess{}, {}, 0, 1);
  loader.start_epoch({2}, 0);
  Batch b;
  ASSERT_TRUE(loader.next(b));
  EXPECT_EQ(b.x.shape(), (Shape{1, 1, 1, 3}));
  EXPECT_FLOAT_EQ(b.x.f32()[0], 2.0f / 255.0f);
  EXPECT_FALSE(loader.next(b));
}

std::vector<std::vector<float>> run_epochs(const Dataset& d, int workers) {
  const AugmentOptions aug{.rotation_range = 20,
                           .width_shift_range = 0.1,
                           .height_shift_range = 0.1,
                           .zoom_range = 0.1,
                           .horizontal_flip = true,
                           .random_crop_padding = 2};
  BatchLoader loader(d, 5, Preprocess::from_name("tf"), aug, 1234, workers, 3);
  std::vector<std::vector<float>> out;
  for (int epoch = 0; epoch < 2; ++epoch) {
    std::vector<int64_t> order = iota(d.size());
    std::reverse(order.begin() + epoch, order.end());
    loader.start_epoch(order, epoch);
    Batch b;
    while (loader.next(b)) {
      out.push_back(b.x.to_vector());
      const std::vector<float> y = b.y.to_f32().to_vector();
      out.push_back(y);
    }
  }
  return out;
}

TEST(DataBatchLoader, SameOutputForAnyNumberOfWorkers) {
  const Dataset d = ramp_images(23, 8, 8, 3);
  const auto one = run_epochs(d, 1);
  EXPECT_EQ(one.size(), 2u * 2u * 5u);
  EXPECT_EQ(one, run_epochs(d, 3));
  EXPECT_EQ(one, run_epochs(d, 0));
  // Augmentation did something, and differs between epochs.
  BatchLoader plain(d, 5, Preprocess::from_name("tf"), {}, 1234, 1);
  plain.start_epoch(iota(d.size()), 0);
  Batch b;
  ASSERT_TRUE(plain.next(b));
  EXPECT_NE(b.x.to_vector(), one[0]);
}

TEST(DataBatchLoader, DestructionMidEpochIsPrompt) {
  const Dataset d = ramp_images(3000, 64, 64, 3);
  const AugmentOptions aug{.rotation_range = 30, .zoom_range = 0.2};
  const auto t0 = std::chrono::steady_clock::now();
  {
    BatchLoader loader(d, 64, Preprocess{}, aug, 7, 3, 8);
    loader.start_epoch(iota(d.size()), 0);
    Batch b;
    ASSERT_TRUE(loader.next(b));
    // Abandon the epoch and start another: it must deliver its own batches from the start.
    loader.start_epoch({5, 6, 7}, 1);
    EXPECT_EQ(loader.batches_in_epoch(), 1);
    ASSERT_TRUE(loader.next(b));
    EXPECT_EQ(b.x.shape()[0], 3);
    EXPECT_EQ(b.y.data<int64_t>()[0], 5 % 4);
    EXPECT_FALSE(loader.next(b));
    loader.start_epoch(iota(d.size()), 2);
    ASSERT_TRUE(loader.next(b));
  }  // destroyed with work in flight
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // A full epoch of this takes many seconds on a loaded machine; stopping must not wait for it.
  EXPECT_LT(seconds, 5.0);
}

TEST(DataBatchLoader, RejectsBadArguments) {
  const Dataset d = constant_images(4, 2, 2, 1);
  EXPECT_THROW(BatchLoader(d, 0, kNone, {}, 0), ConfigError);
  // 'caffe' needs RGB: refused up front rather than on a worker.
  EXPECT_THROW(BatchLoader(d, 2, Preprocess::from_name("caffe"), {}, 0), ConfigError);
  BatchLoader loader(d, 2, kNone, {}, 0, 2);
  Batch b;
  EXPECT_THROW(loader.next(b), ConfigError);
  EXPECT_THROW(loader.start_epoch({0, 4}, 0), ConfigError);
}

TEST(DataBatchLoader, SignsEpochHas34Batches) {
  const std::string path = testing::signs_dir() + "/train_signs.h5";
  if (!std::filesystem::exists(path)) {
    GTEST_SKIP() << "SIGNS not found in '" << testing::signs_dir()
                 << "' (set RESNET_SIGNS_DIR to the folder holding {train,test}_signs.h5)";
  }
  const Dataset d = load_h5_dataset(path);
  BatchLoader loader(d, 32, Preprocess{}, {}, 0, 2);
  loader.start_epoch(iota(d.size()), 0);
  EXPECT_EQ(loader.batches_in_epoch(), 34);
  Batch b;
  int64_t batches = 0, samples = 0, last = 0;
  while (loader.next(b)) {
    ++batches;
    samples += last = b.x.shape()[0];
    for (float v : b.x.span<float>()) ASSERT_TRUE(v >= 0.0f && v <= 1.0f);
  }
  EXPECT_EQ(batches, 34);
  EXPECT_EQ(samples, 1080);
  EXPECT_EQ(last, 1080 - 33 * 32);
}

}  // namespace
}  // namespace resnet
