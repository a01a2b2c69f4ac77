// Dataset slicing, validation split, preprocessing modes and one-hot labels.
#include <gtest/gtest.h>

#include <cmath>

#include "data/data_util.h"
#include "data_test_util.h"
#include "resnet/data.h"
#include "resnet/error.h"

namespace resnet {
namespace {

// n samples of (1, 1, 1) uint8 whose pixel is the sample index; label index % 3.
Dataset counting_dataset(int64_t n) {
  Dataset d;
  d.x = Tensor(Shape{n, 1, 1, 1}, DType::U8);
  d.y = Tensor(Shape{n}, DType::I64);
  for (int64_t i = 0; i < n; ++i) {
    d.x.data<uint8_t>()[i] = static_cast<uint8_t>(i);
    d.y.data<int64_t>()[i] = i % 3;
  }
  d.num_classes = 3;
  d.class_names = {"a", "b", "c"};
  d.source = "counting";
  return d;
}

TEST(DataDataset, SplitLastTakesTheLastFractionWithFloor) {
  const Dataset d = counting_dataset(10);
  auto [train, val] = d.split_last(0.25);  // floor(10 * 0.75) = 7
  ASSERT_EQ(train.size(), 7);
  ASSERT_EQ(val.size(), 3);
  for (int64_t i = 0; i < 3; ++i) EXPECT_EQ(val.x.data<uint8_t>()[i], 7 + i);
  EXPECT_EQ(train.x.data<uint8_t>()[6], 6);
  EXPECT_EQ(val.class_names, d.class_names);
  EXPECT_EQ(val.num_classes, 3);
  // The split copies: writing into a part leaves the original alone.
  val.x.data<uint8_t>()[0] = 99;
  EXPECT_EQ(d.x.data<uint8_t>()[7], 7);

  auto [all, none] = d.split_last(0.0);
  EXPECT_EQ(all.size(), 10);
  EXPECT_EQ(none.size(), 0);
  EXPECT_EQ(none.sample_shape(), (Shape{1, 1, 1}));
  // As Python's int(n * (1 - v)) in Keras.
  EXPECT_EQ(counting_dataset(1080).split_last(0.1).first.size(), 972);
  EXPECT_EQ(counting_dataset(100).split_last(0.3).first.size(), 70);
  EXPECT_THROW(d.split_last(1.5), ConfigError);
}

TEST(DataDataset, SliceAndTakeCopyTheRequestedSamples) {
  const Dataset d = counting_dataset(6);
  const Dataset s = d.slice(2, 5);
  ASSERT_EQ(s.size(), 3);
  EXPECT_EQ(s.x.data<uint8_t>()[0], 2);
  EXPECT_EQ(s.y.data<int64_t>()[2], 4 % 3);
  const Dataset t = d.take({5, 0, 5});
  ASSERT_EQ(t.size(), 3);
  EXPECT_EQ(t.x.data<uint8_t>()[0], 5);
  EXPECT_EQ(t.x.data<uint8_t>()[1], 0);
  EXPECT_EQ(t.y.data<int64_t>()[2], 2);
  EXPECT_THROW(d.slice(4, 7), ConfigError);
  EXPECT_THROW(d.take({6}), ConfigError);
}

TEST(DataDataset, ValidateNamesTheSourceOnInconsistencies) {
  Dataset d = counting_dataset(4);
  EXPECT_NO_THROW(d.validate());
  d.y.data<int64_t>()[1] = 3;  // == num_classes
  testing::expect_io_error([&] { d.validate(); }, {"counting", "label 3"});
  Dataset e = counting_dataset(4);
  e.y = Tensor(Shape{3}, DType::I64);
  testing::expect_io_error([&] { e.validate(); }, {"counting", "4 images but 3 labels"});
  Dataset f = counting_dataset(4);
  f.x = f.x.reshape(Shape{4, 1, 1});
  testing::expect_io_error([&] { f.validate(); }, {"counting", "4-D"});
}

TEST(DataDataset, FinishPadsClassNamesForLabelsBeyondThem) {
  Dataset d = counting_dataset(5);
  d.y.data<int64_t>()[4] = 4;
  d.class_names = {"zero", "one"};
  d.num_classes = 0;
  data_detail::finish_dataset(d);
  EXPECT_EQ(d.num_classes, 5);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"zero", "one", "2", "3", "4"}));
}

Tensor pixel(float r, float g, float b) {
  return Tensor::from_vector(Shape{1, 1, 1, 3}, {r, g, b});
}

TEST(DataPreprocess, ModesMatchKeras) {
  {
    Tensor t = pixel(0, 127.5f, 255);
    Preprocess::from_name("rescale").apply(t);
    EXPECT_FLOAT_EQ(t.f32()[1], 0.5f);
    EXPECT_FLOAT_EQ(t.f32()[2], 1.0f);
  }
  {
    Tensor t = pixel(0, 127.5f, 255);
    Preprocess::from_name("tf").apply(t);
    EXPECT_FLOAT_EQ(t.f32()[0], -1.0f);
    EXPECT_NEAR(t.f32()[1], 0.0f, 1e-6);
    EXPECT_FLOAT_EQ(t.f32()[2], 1.0f);
  }
  {
    // Caffe: RGB -> BGR, then minus the BGR means, no scaling.
    Tensor t = pixel(10, 20, 30);
    Preprocess::from_name("caffe").apply(t);
    EXPECT_NEAR(t.f32()[0], 30 - 103.939f, 1e-4);
    EXPECT_NEAR(t.f32()[1], 20 - 116.779f, 1e-4);
    EXPECT_NEAR(t.f32()[2], 10 - 123.68f, 1e-4);
  }
  {
    Tensor t = pixel(255, 0, 51);
    Preprocess::from_name("torch").apply(t);
    EXPECT_NEAR(t.f32()[0], (1.0 - 0.485) / 0.229, 1e-5);
    EXPECT_NEAR(t.f32()[1], (0.0 - 0.456) / 0.224, 1e-5);
    EXPECT_NEAR(t.f32()[2], (0.2 - 0.406) / 0.225, 1e-5);
  }
  {
    Tensor t = pixel(1, 2, 3);
    Preprocess::from_name("none").apply(t);
    EXPECT_EQ(t.to_vector(), (std::vector<float>{1, 2, 3}));
  }
  {
    Preprocess p{.mode = Preprocess::Mode::MeanStd, .scale = 0.5f, .mean = {1, 2, 3}, .std = {2}};
    Tensor t = pixel(10, 10, 10);
    p.apply(t);
    EXPECT_EQ(t.to_vector(), (std::vector<float>{2.0f, 1.5f, 1.0f}));
  }
  EXPECT_THROW(Preprocess::from_name("imagenet"), ConfigError);
  // Caffe and torch are defined for RGB only.
  Tensor gray = Tensor::from_vector(Shape{1, 1, 1, 1}, {5});
  EXPECT_THROW(Preprocess::from_name("caffe").apply(gray), ConfigError);
}

TEST(DataOneHot, EncodesAndChecksRange) {
  Tensor labels(Shape{3}, DType::I64);
  labels.data<int64_t>()[0] = 2;
  labels.data<int64_t>()[1] = 0;
  labels.data<int64_t>()[2] = 1;
  const Tensor h = one_hot(labels, 3);
  ASSERT_EQ(h.shape(), (Shape{3, 3}));
  EXPECT_EQ(h.to_vector(), (std::vector<float>{0, 0, 1, 1, 0, 0, 0, 1, 0}));
  labels.data<int64_t>()[1] = 3;
  EXPECT_THROW(one_hot(labels, 3), ConfigError);
  labels.data<int64_t>()[1] = -1;
  EXPECT_THROW(one_hot(labels, 3), ConfigError);
}

}  // namespace
}  // namespace resnet
