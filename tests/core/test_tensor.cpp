#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

#include "resnet/error.h"
#include "resnet/tensor.h"

namespace resnet {
namespace {

TEST(Shape, PrintsLikePythonAndKeras) {
  EXPECT_EQ((Shape{2, 3, 4}).str(), "(2, 3, 4)");
  EXPECT_EQ((Shape{5}).str(), "(5,)");
  EXPECT_EQ((Shape{15, 15, 64}).keras_str(), "(None, 15, 15, 64)");
  EXPECT_EQ((Shape{6}).keras_str(), "(None, 6)");
  EXPECT_EQ((Shape{2, 3, 4}).numel(), 24);
  EXPECT_EQ((Shape{}).numel(), 1);
}

TEST(Shape, NegativeIndexCountsFromTheEndAndRangeIsChecked) {
  Shape s{2, 3, 4};
  EXPECT_EQ(s[-1], 4);
  EXPECT_EQ(s[0], 2);
  EXPECT_EQ(s.prepend(7), (Shape{7, 2, 3, 4}));
  EXPECT_EQ(s.drop_front(), (Shape{3, 4}));
  try {
    (void)s[3];
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("(2, 3, 4)"), std::string::npos);
  }
}

TEST(Tensor, StorageIsAlignedAndZeroed) {
  for (int64_t n : {1, 3, 17, 1000}) {
    Tensor t({n});
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 64, 0u);
    for (float v : t.span<float>()) EXPECT_EQ(v, 0.0f);
  }
  Tensor u({4}, DType::U8);
  EXPECT_EQ(u.nbytes(), 4u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(u.raw()) % 64, 0u);
}

TEST(Tensor, CopiesShareAndCloneIsDeep) {
  Tensor a = Tensor::from_vector({2, 2}, {1, 2, 3, 4});
  Tensor b = a;
  Tensor c = a.clone();
  a.f32()[0] = 9;
  EXPECT_EQ(b.f32()[0], 9);
  EXPECT_EQ(c.f32()[0], 1);
  Tensor r = a.reshape({4});
  EXPECT_TRUE(r.shares_storage(a));
  EXPECT_THROW(a.reshape({3}), ShapeError);
}

TEST(Tensor, TypedAccessChecksTheDtype) {
  Tensor t({3}, DType::I64);
  EXPECT_THROW(t.f32(), Error);
  t.data<int64_t>()[1] = 5;
  EXPECT_EQ(t.to_vector(), (std::vector<float>{0, 5, 0}));
  EXPECT_THROW(Tensor::from_vector({2, 2}, {1, 2, 3}), ShapeError);
  EXPECT_THROW(Tensor({-1, 2}), ShapeError);
}

TEST(Tensor, VersionTracksInPlaceChanges) {
  Tensor t({3});
  const uint64_t v0 = t.version();
  t.fill(2.0f);
  EXPECT_GT(t.version(), v0);
  Tensor other({3});
  EXPECT_NE(t.storage_id(), other.storage_id());
  const uint64_t v1 = t.version();
  t.copy_from(other);
  EXPECT_GT(t.version(), v1);
}

TEST(Rng, IsDeterministicPerSeed) {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
    (void)c;
  }
  EXPECT_NE(Rng(1).next_u64(), Rng(2).next_u64());
}

TEST(Rng, DistributionsHaveTheRightMoments) {
  Rng rng(7);
  const int n = 200000;
  double su = 0, sn = 0, sn2 = 0;
  double max_trunc = 0;
  for (int i = 0; i < n; ++i) {
    const double u = rng.uniform01();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    su += u;
    const double z = rng.normal();
    sn += z;
    sn2 += z * z;
    max_trunc = std::max(max_trunc, std::abs(rng.truncated_normal(0.0, 1.0)));
  }
  EXPECT_NEAR(su / n, 0.5, 0.005);
  EXPECT_NEAR(sn / n, 0.0, 0.01);
  EXPECT_NEAR(sn2 / n, 1.0, 0.01);
  EXPECT_LE(max_trunc, 2.0);
  for (int i = 0; i < 1000; ++i) EXPECT_LT(rng.below(7), 7u);
  EXPECT_THROW(rng.below(0), ConfigError);
}

}  // namespace
}  // namespace resnet
