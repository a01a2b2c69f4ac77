// Metrics: accuracy (sparse, one-hot, binary) and top-k counts on known tensors.
#include <gtest/gtest.h>

#include <vector>

#include "resnet/error.h"
#include "resnet/optim.h"

namespace resnet {
namespace {

Tensor labels(const std::vector<int64_t>& v) {
  Tensor t = Tensor::zeros(Shape{static_cast<int64_t>(v.size())}, DType::I64);
  for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
  return t;
}

// Row 2 is wrong for argmax (0.4 at class 2, label 0) but inside the top 2.
const Tensor& outputs() {
  static const Tensor o = Tensor::from_vector(
      Shape{4, 3}, {0.1f, 0.7f, 0.2f, 0.5f, 0.3f, 0.2f, 0.3f, 0.3f, 0.4f, 0.2f, 0.2f, 0.6f});
  return o;
}

TEST(MetricAccuracy, SparseLabels) {
  EXPECT_EQ(count_correct(outputs(), labels({1, 0, 0, 2})), 3.0);
  EXPECT_EQ(count_correct(outputs(), labels({0, 0, 0, 0})), 1.0);
  // (N, 1) labels are class indices too.
  EXPECT_EQ(count_correct(outputs(), labels({1, 0, 0, 2}).reshape(Shape{4, 1})), 3.0);
}

TEST(MetricAccuracy, OneHotTargets) {
  const Tensor y = Tensor::from_vector(Shape{4, 3}, {0, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1});
  EXPECT_EQ(count_correct(outputs(), y), 3.0);
}

TEST(MetricAccuracy, TiesTakeTheFirstMaximum) {
  const Tensor o = Tensor::from_vector(Shape{1, 3}, {0.4f, 0.4f, 0.2f});
  EXPECT_EQ(count_correct(o, labels({0})), 1.0);
  EXPECT_EQ(count_correct(o, labels({1})), 0.0);
}

TEST(MetricAccuracy, Binary) {
  const Tensor o = Tensor::from_vector(Shape{4, 1}, {0.2f, 0.6f, 0.5f, 0.9f});
  // Predictions (o > 0.5): 0, 1, 0, 1.
  EXPECT_EQ(count_correct(o, Tensor::from_vector(Shape{4, 1}, {0, 1, 1, 0})), 2.0);
  EXPECT_EQ(count_correct(o, labels({0, 1, 0, 1})), 4.0);
}

TEST(MetricTopK, Counts) {
  const Tensor y = labels({1, 0, 0, 2});
  EXPECT_EQ(count_top_k(outputs(), y, 1), 3.0);
  EXPECT_EQ(count_top_k(outputs(), y, 2), 4.0);
  EXPECT_EQ(count_top_k(outputs(), labels({2, 2, 1, 0}), 1), 0.0);
  // Row 0: 0.1 is the smallest of three: only top-3 holds it.
  EXPECT_EQ(count_top_k(outputs(), labels({0, 2, 1, 0}), 2), 2.0);
  EXPECT_EQ(count_top_k(outputs(), labels({0, 2, 1, 0}), 3), 4.0);
  EXPECT_EQ(count_top_k(outputs(), labels({0, 2, 1, 0}), 10), 4.0);
}

TEST(MetricTopK, TiesAtTheBoundaryCountAsInside) {
  // tf.math.in_top_k: a class tied with the k-th largest is inside.
  const Tensor o = Tensor::from_vector(Shape{1, 3}, {0.4f, 0.4f, 0.2f});
  EXPECT_EQ(count_top_k(o, labels({1}), 1), 1.0);
  EXPECT_EQ(count_top_k(o, labels({2}), 2), 0.0);
}

TEST(MetricErrors, ShapesAndK) {
  EXPECT_THROW(count_correct(outputs(), labels({0, 1})), ShapeError);
  EXPECT_THROW(count_correct(outputs(), Tensor::zeros(Shape{4, 2})), ShapeError);
  EXPECT_THROW(count_top_k(outputs(), labels({0, 0, 0, 0}), 0), ConfigError);
}

}  // namespace
}  // namespace resnet

namespace resnet {
namespace {
// Mean absolute error by hand: per sample the mean over its elements, summed over the batch.
TEST(Metrics, MeanAbsoluteErrorByHand) {
  const Tensor out = Tensor::from_vector(Shape{2, 2}, {1.0f, -2.0f, 0.5f, 4.0f});
  const Tensor y = Tensor::from_vector(Shape{2, 2}, {0.0f, 1.0f, 0.5f, 1.0f});
  // (|1| + |-3|) / 2 + (0 + 3) / 2 = 2 + 1.5
  EXPECT_DOUBLE_EQ(sum_absolute_error(out, y), 3.5);
  EXPECT_THROW(sum_absolute_error(out, Tensor::zeros(Shape{2, 3})), ShapeError);
}
}  // namespace
}  // namespace resnet
