// Losses: hand-computed values and gradients (with Keras's clipping and huge logits), finite-
// difference checks of every gradient, target forms and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "resnet/error.h"
#include "resnet/optim.h"
#include "support/allclose.h"

namespace resnet {
namespace {

using testing::random_tensor;

Tensor labels(const std::vector<int64_t>& v) {
  Tensor t = Tensor::zeros(Shape{static_cast<int64_t>(v.size())}, DType::I64);
  for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
  return t;
}

Tensor mat(int64_t n, int64_t c, const std::vector<float>& v) {
  return Tensor::from_vector(Shape{n, c}, v);
}

void expect_grad(const Tensor& g, const std::vector<double>& expected, double tol = 1e-6) {
  ASSERT_EQ(g.numel(), static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(g.f32()[i], expected[i], tol * std::max(1.0, std::abs(expected[i])))
        << "element " << i;
  }
}

// Central differences of the loss on every output element, with the step actually taken in float.
void finite_difference_check(LossKind kind, const Tensor& output, const Tensor& targets,
                             bool from_logits, const std::string& context) {
  const LossValue lv = compute_loss(kind, output, targets, from_logits);
  Tensor o = output.clone();
  for (int64_t k = 0; k < o.numel(); ++k) {
    const float x = o.f32()[k];
    const float h = 1e-3f * std::max(1.0f, std::abs(x));
    const float xp = x + h, xm = x - h;
    o.f32()[k] = xp;
    const double lp = compute_loss(kind, o, targets, from_logits).loss;
    o.f32()[k] = xm;
    const double lm = compute_loss(kind, o, targets, from_logits).loss;
    o.f32()[k] = x;
    const double numeric = (lp - lm) / (static_cast<double>(xp) - xm);
    const double analytic = lv.grad.f32()[k];
    EXPECT_NEAR(analytic, numeric, 2e-3 * std::max({std::abs(numeric), std::abs(analytic), 1e-2}))
        << context << ": element " << k;
  }
}

// Rows of positive "probabilities" (unnormalized, kept away from the clip boundaries).
Tensor random_probs(int64_t n, int64_t c, uint64_t seed) {
  return random_tensor(Shape{n, c}, seed, 0.05f, 1.0f);
}

TEST(LossNames, RoundTrip) {
  for (LossKind k : {LossKind::CategoricalCrossentropy, LossKind::SparseCategoricalCrossentropy,
                     LossKind::BinaryCrossentropy, LossKind::MeanSquaredError}) {
    EXPECT_EQ(loss_from_name(loss_name(k)), k);
  }
  EXPECT_EQ(loss_from_name("CategoricalCrossentropy"), LossKind::CategoricalCrossentropy);
  EXPECT_EQ(loss_from_name("mse"), LossKind::MeanSquaredError);
  EXPECT_THROW(loss_from_name("hinge"), ConfigError);
}

TEST(LossCategorical, HandComputedFromProbabilities) {
  // Row 0 sums to 2: p = (0.2, 0.3, 0.5), label 2. Row 1: p = (0.1, 0.7, 0.2), label 1.
  // L = (-log 0.5 - log 0.7) / 2. With a_j = -y_j / p_j and s the row sum:
  // dL/do_k = (a_k - sum_j a_j p_j) / s / N: row 0 (1, 1, -1) / 2 / 2; row 1 (1, 1 - 1/0.7, 1) / 2.
  const Tensor o = mat(2, 3, {0.4f, 0.6f, 1.0f, 0.1f, 0.7f, 0.2f});
  const LossValue lv = compute_loss(LossKind::CategoricalCrossentropy, o, labels({2, 1}));
  EXPECT_NEAR(lv.loss, (std::log(2.0) - std::log(0.7)) / 2, 1e-6);
  expect_grad(lv.grad, {0.25, 0.25, -0.25, 0.5, 0.5 * (1 - 1 / 0.7), 0.5});
  // The same with one-hot targets, and as the sparse loss.
  const Tensor onehot = mat(2, 3, {0, 0, 1, 0, 1, 0});
  const LossValue dense = compute_loss(LossKind::CategoricalCrossentropy, o, onehot);
  EXPECT_NEAR(dense.loss, lv.loss, 1e-12);
  expect_grad(dense.grad, std::vector<double>(lv.grad.f32(), lv.grad.f32() + 6), 0);
  const LossValue sparse = compute_loss(LossKind::SparseCategoricalCrossentropy, o, labels({2, 1}));
  EXPECT_NEAR(sparse.loss, lv.loss, 1e-12);
}

TEST(LossCategorical, ClippingFromProbabilities) {
  // p = 0 for the true class: clipped to 1e-7, L = -log(1e-7); the clip stops the gradient.
  const Tensor o = mat(1, 3, {0.0f, 1.0f, 0.0f});
  LossValue lv = compute_loss(LossKind::CategoricalCrossentropy, o, labels({0}));
  EXPECT_NEAR(lv.loss, -std::log(1e-7), 1e-9);
  expect_grad(lv.grad, {0, 0, 0}, 0);
  // p = 1 for the true class: clipped to 1 - 1e-7.
  lv = compute_loss(LossKind::CategoricalCrossentropy, o, labels({1}));
  EXPECT_NEAR(lv.loss, -std::log(1 - 1e-7), 1e-12);
  expect_grad(lv.grad, {0, 0, 0}, 0);
  EXPECT_TRUE(std::isfinite(lv.loss));
}

TEST(LossCategorical, HandComputedFromLogits) {
  // z = (1, 2, 3), label 0: L = logsumexp(z) - 1; grad = softmax(z) - y.
  const Tensor z = mat(1, 3, {1, 2, 3});
  const LossValue lv = compute_loss(LossKind::CategoricalCrossentropy, z, labels({0}), true);
  EXPECT_NEAR(lv.loss, 2.40760596444438, 1e-9);
  expect_grad(lv.grad, {0.0900305731703805 - 1, 0.244728471054798, 0.665240955774822});
}

TEST(LossCategorical, HugeLogitsStayFinite) {
  const Tensor z = mat(2, 3, {1000, -1000, 0, 1000, -1000, 0});
  const LossValue lv = compute_loss(LossKind::CategoricalCrossentropy, z, labels({0, 1}), true);
  // Row 0: L = 0, grad 0; row 1: L = 2000, grad (1, -1, 0); mean over 2 rows.
  EXPECT_NEAR(lv.loss, 1000.0, 1e-9);
  expect_grad(lv.grad, {0, 0, 0, 0.5, -0.5, 0});
  for (float g : lv.grad.to_vector()) EXPECT_TRUE(std::isfinite(g));
}

TEST(LossCategorical, SoftLabelsFromLogits) {
  // Soft targets that do not sum to one: dL/dz = softmax * sum(y) - y.
  const Tensor z = mat(1, 3, {1, 2, 3});
  const Tensor y = mat(1, 3, {0.2f, 0.8f, 0.5f});
  const LossValue lv = compute_loss(LossKind::CategoricalCrossentropy, z, y, true);
  const double lse = 3.40760596444438;
  EXPECT_NEAR(lv.loss, 0.2 * (lse - 1) + 0.8 * (lse - 2) + 0.5 * (lse - 3), 1e-6);
  expect_grad(lv.grad, {0.0900305731703805 * 1.5 - 0.2, 0.244728471054798 * 1.5 - 0.8,
                        0.665240955774822 * 1.5 - 0.5});
}

TEST(LossCategorical, FiniteDifferences) {
  const Tensor p = random_probs(4, 5, 3);
  finite_difference_check(LossKind::CategoricalCrossentropy, p, labels({0, 4, 2, 2}), false,
                          "categorical probs, sparse targets");
  const Tensor soft = random_tensor(Shape{4, 5}, 4, 0.0f, 1.0f);
  finite_difference_check(LossKind::CategoricalCrossentropy, p, soft, false,
                          "categorical probs, soft targets");
  const Tensor z = random_tensor(Shape{4, 5}, 5, -3.0f, 3.0f);
  finite_difference_check(LossKind::CategoricalCrossentropy, z, labels({1, 3, 0, 4}), true,
                          "categorical logits, sparse targets");
  finite_difference_check(LossKind::SparseCategoricalCrossentropy, z, soft, true,
                          "sparse logits, soft targets");
}

TEST(LossBinary, HandComputed) {
  // Keras: L = -(y log(q + eps) + (1 - y) log(1 - q + eps)), q = clip(o, eps, 1 - eps).
  const Tensor o = mat(2, 1, {0.8f, 0.3f});
  const Tensor y = mat(2, 1, {1, 0});
  const LossValue lv = compute_loss(LossKind::BinaryCrossentropy, o, y);
  const double e = 1e-7, o0 = 0.8f, o1 = 0.3f;
  EXPECT_NEAR(lv.loss, -(std::log(o0 + e) + std::log(1 - o1 + e)) / 2, 1e-9);
  expect_grad(lv.grad, {-1 / (o0 + e) / 2, 1 / (1 - o1 + e) / 2});
  // int64 labels of shape (N,) work the same.
  const LossValue sparse = compute_loss(LossKind::BinaryCrossentropy, o, labels({1, 0}));
  EXPECT_NEAR(sparse.loss, lv.loss, 1e-12);
  // Clipping: o = 1 with target 0 gives -log(2e-7) and no gradient.
  const LossValue clipped =
      compute_loss(LossKind::BinaryCrossentropy, mat(1, 1, {1.0f}), mat(1, 1, {0}));
  EXPECT_NEAR(clipped.loss, -std::log(2e-7), 1e-6);
  expect_grad(clipped.grad, {0}, 0);
}

TEST(LossBinary, HandComputedFromLogits) {
  // max(z, 0) - z y + log(1 + exp(-|z|)); grad sigmoid(z) - y, mean over 3 elements.
  const Tensor z = mat(3, 1, {0, 1000, -1000});
  const LossValue lv = compute_loss(LossKind::BinaryCrossentropy, z, mat(3, 1, {1, 0, 0}), true);
  EXPECT_NEAR(lv.loss, (std::log(2.0) + 1000.0 + 0.0) / 3, 1e-9);
  expect_grad(lv.grad, {-0.5 / 3, 1.0 / 3, 0});
}

TEST(LossBinary, FiniteDifferences) {
  const Tensor o = random_tensor(Shape{3, 4}, 7, 0.05f, 0.95f);
  const Tensor y = random_tensor(Shape{3, 4}, 8, 0.0f, 1.0f);
  finite_difference_check(LossKind::BinaryCrossentropy, o, y, false, "binary probs");
  const Tensor z = random_tensor(Shape{3, 4}, 9, -4.0f, 4.0f);
  finite_difference_check(LossKind::BinaryCrossentropy, z, y, true, "binary logits");
}

TEST(LossMeanSquared, HandComputed) {
  const Tensor o = mat(2, 2, {1, 2, 3, 4});
  const LossValue lv = compute_loss(LossKind::MeanSquaredError, o, mat(2, 2, {0, 2, 1, 1}));
  EXPECT_NEAR(lv.loss, 3.5, 1e-12);
  expect_grad(lv.grad, {0.5, 0, 1, 1.5});
  // Class indices stand for one-hot rows.
  const LossValue sparse = compute_loss(LossKind::MeanSquaredError, o, labels({1, 0}));
  EXPECT_NEAR(sparse.loss, (1 + 1 + 4 + 16) / 4.0, 1e-12);
  finite_difference_check(LossKind::MeanSquaredError, random_tensor(Shape{3, 4}, 10),
                          random_tensor(Shape{3, 4}, 11), false, "mse");
}

TEST(LossErrors, ShapesAndLabels) {
  const Tensor o = random_probs(2, 3, 1);
  try {
    compute_loss(LossKind::CategoricalCrossentropy, o, Tensor::zeros(Shape{2, 4}));
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("(2, 3)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(2, 4)"), std::string::npos) << msg;
  }
  EXPECT_THROW(compute_loss(LossKind::CategoricalCrossentropy, o, labels({0, 1, 2})), ShapeError);
  EXPECT_THROW(compute_loss(LossKind::MeanSquaredError, o, Tensor::zeros(Shape{3, 3})), ShapeError);
  EXPECT_THROW(compute_loss(LossKind::CategoricalCrossentropy, Tensor::zeros(Shape{6}),
                            labels({0, 1, 2, 0, 1, 2})),
               ShapeError);
  EXPECT_THROW(compute_loss(LossKind::SparseCategoricalCrossentropy, o, labels({0, 3})),
               ConfigError);
  EXPECT_THROW(compute_loss(LossKind::CategoricalCrossentropy, o, labels({-1, 0})), ConfigError);
  EXPECT_THROW(compute_loss(LossKind::BinaryCrossentropy, mat(2, 1, {0.5f, 0.5f}), labels({0, 2})),
               ConfigError);
}

}  // namespace
}  // namespace resnet
