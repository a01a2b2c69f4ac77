// Initializers: Keras formulas (bounds, mean, standard deviation) and seeding.
#include <gtest/gtest.h>

#include <cmath>

#include "layers/conv2d.h"
#include "resnet/layers.h"

namespace resnet {
namespace {

struct Stats {
  double mean = 0, stddev = 0, min = 1e300, max = -1e300;
};

Stats stats_of(const Tensor& t) {
  Stats s;
  const float* p = t.f32();
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    sum += p[i];
    sq += static_cast<double>(p[i]) * p[i];
    s.min = std::min<double>(s.min, p[i]);
    s.max = std::max<double>(s.max, p[i]);
  }
  s.mean = sum / t.numel();
  s.stddev = std::sqrt(sq / t.numel() - s.mean * s.mean);
  return s;
}

// A large fill: 200,000 values, so the sample statistics are within ~1% of the true ones.
Stats fill_stats(const Initializer& init, int64_t fan_in, int64_t fan_out) {
  Tensor t(Shape{400, 500});
  init.fill(t, fan_in, fan_out);
  return stats_of(t);
}

void expect_uniform(const Stats& s, double lo, double hi) {
  EXPECT_GE(s.min, lo);
  EXPECT_LT(s.max, hi);
  EXPECT_LT(s.min, lo + 0.001 * (hi - lo));  // the whole range is covered
  EXPECT_GT(s.max, hi - 0.001 * (hi - lo));
  EXPECT_NEAR(s.mean, (lo + hi) / 2, 0.005 * (hi - lo));
  EXPECT_NEAR(s.stddev, (hi - lo) / std::sqrt(12.0), 0.01 * (hi - lo));
}

// Keras's truncated normals: the stddev parameter is corrected so the draw has `target` stddev.
void expect_truncated(const Stats& s, double target) {
  const double param = target / 0.87962566103423978;
  EXPECT_GE(s.min, -2 * param);
  EXPECT_LE(s.max, 2 * param);
  EXPECT_NEAR(s.mean, 0.0, 0.01 * target);
  EXPECT_NEAR(s.stddev, target, 0.015 * target);
}

TEST(LayersInitializer, GlorotUniform) {
  const double limit = std::sqrt(6.0 / (100 + 200));
  expect_uniform(fill_stats(Initializer::glorot_uniform(1), 100, 200), -limit, limit);
}

TEST(LayersInitializer, HeUniform) {
  const double limit = std::sqrt(6.0 / 50);
  expect_uniform(fill_stats(Initializer::he_uniform(2), 50, 7), -limit, limit);
}

TEST(LayersInitializer, GlorotNormal) {
  expect_truncated(fill_stats(Initializer::glorot_normal(3), 100, 200), std::sqrt(2.0 / 300));
}

TEST(LayersInitializer, HeNormal) {
  expect_truncated(fill_stats(Initializer::he_normal(4), 72, 9), std::sqrt(2.0 / 72));
}

TEST(LayersInitializer, RandomUniformAndNormal) {
  expect_uniform(fill_stats(Initializer::random_uniform(), 1, 1), -0.05, 0.05);
  expect_uniform(fill_stats(Initializer::random_uniform(0.5, 2.0, 5), 1, 1), 0.5, 2.0);
  Stats n = fill_stats(Initializer::random_normal(0.0, 0.05, 6), 1, 1);
  EXPECT_NEAR(n.mean, 0.0, 0.001);
  EXPECT_NEAR(n.stddev, 0.05, 0.001);
  EXPECT_GT(n.max, 3 * 0.05);  // not truncated
  Stats m = fill_stats(Initializer::random_normal(1.0, 2.0, 7), 1, 1);
  EXPECT_NEAR(m.mean, 1.0, 0.02);
  EXPECT_NEAR(m.stddev, 2.0, 0.03);
}

TEST(LayersInitializer, Constants) {
  Stats z = fill_stats(Initializer::zeros(), 3, 3);
  EXPECT_EQ(z.min, 0.0);
  EXPECT_EQ(z.max, 0.0);
  Stats o = fill_stats(Initializer::ones(), 3, 3);
  EXPECT_EQ(o.min, 1.0);
  EXPECT_EQ(o.max, 1.0);
  Stats c = fill_stats(Initializer::constant(0.25), 3, 3);
  EXPECT_EQ(c.min, 0.25);
  EXPECT_EQ(c.max, 0.25);
}

TEST(LayersInitializer, SeededIsReproducible) {
  Tensor a(Shape{64}), b(Shape{64}), c(Shape{64});
  Initializer::glorot_uniform(0).fill(a, 8, 8);
  Initializer::glorot_uniform(0).fill(b, 8, 8);
  Initializer::glorot_uniform(1).fill(c, 8, 8);
  EXPECT_EQ(a.to_vector(), b.to_vector());
  EXPECT_NE(a.to_vector(), c.to_vector());
  // A seeded initializer restarts its stream at every fill (Keras with a fixed seed).
  Initializer::glorot_uniform(0).fill(b, 8, 8);
  EXPECT_EQ(a.to_vector(), b.to_vector());
}

TEST(LayersInitializer, UnseededDrawsFromTheGlobalGenerator) {
  Tensor a(Shape{64}), b(Shape{64}), c(Shape{64});
  set_global_seed(42);
  Initializer::he_normal().fill(a, 8, 8);
  Initializer::he_normal().fill(c, 8, 8);
  set_global_seed(42);
  Initializer::he_normal().fill(b, 8, 8);
  EXPECT_EQ(a.to_vector(), b.to_vector());
  EXPECT_NE(a.to_vector(), c.to_vector());

  // Layer weights follow the global seed too.
  set_global_seed(7);
  auto c1 = Conv2D({.filters = 4});
  c1(Input({5, 5, 3}));
  set_global_seed(7);
  auto c2 = Conv2D({.filters = 4});
  c2(Input({5, 5, 3}));
  EXPECT_EQ(c1->param("kernel").value.to_vector(), c2->param("kernel").value.to_vector());
}

TEST(LayersInitializer, ConvKernelUsesReceptiveFieldFans) {
  auto conv = Conv2D(
      {.filters = 64, .kernel = {7, 7}, .kernel_initializer = Initializer::glorot_uniform(0)});
  conv(Input({70, 70, 3}));
  const double limit = std::sqrt(6.0 / (7 * 7 * 3 + 7 * 7 * 64));
  Stats s = stats_of(conv->param("kernel").value);
  EXPECT_GE(s.min, -limit);
  EXPECT_LT(s.max, limit);
  EXPECT_GT(s.max, 0.95 * limit);
  Stats bias = stats_of(conv->param("bias").value);
  EXPECT_EQ(bias.min, 0.0);
  EXPECT_EQ(bias.max, 0.0);
}

TEST(LayersInitializer, Names) {
  EXPECT_EQ(Initializer::from_name("glorot_uniform").kind, Initializer::Kind::GlorotUniform);
  EXPECT_EQ(Initializer::from_name("he_normal").kind, Initializer::Kind::HeNormal);
  EXPECT_EQ(Initializer::from_name("Zeros").kind, Initializer::Kind::Zeros);
  Initializer ru = Initializer::from_name("random_uniform");
  EXPECT_EQ(ru.a, -0.05);
  EXPECT_EQ(ru.b, 0.05);
  EXPECT_EQ(Initializer::from_name("random_normal").b, 0.05);
  EXPECT_EQ(Initializer::glorot_normal().keras_class_name(), "GlorotNormal");
  EXPECT_EQ(Initializer::ones().keras_class_name(), "Ones");
  EXPECT_EQ(Initializer::constant(2).keras_class_name(), "Constant");
  EXPECT_THROW(Initializer::from_name("lecun_normal"), ConfigError);
}

}  // namespace
}  // namespace resnet
