#include "support/allclose.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "ops/ops.h"

namespace resnet::testing {

namespace {
template <class T>
double rel_error_impl(const T* a, const T* e, int64_t n, int64_t* worst) {
  double scale = 0.0;
  for (int64_t i = 0; i < n; ++i) scale = std::max(scale, std::abs(static_cast<double>(e[i])));
  double err = 0.0;
  *worst = 0;
  for (int64_t i = 0; i < n; ++i) {
    double d = std::abs(static_cast<double>(a[i]) - static_cast<double>(e[i]));
    if (!std::isfinite(static_cast<double>(a[i]))) d = std::numeric_limits<double>::infinity();
    if (d > err || (std::isinf(d) && !std::isinf(err))) {
      err = d;
      *worst = i;
    }
  }
  return err / std::max(scale, 1e-30);
}
}  // namespace

double max_rel_error(const float* actual, const float* expected, int64_t count) {
  int64_t worst;
  return rel_error_impl(actual, expected, count, &worst);
}
double max_rel_error(const double* actual, const double* expected, int64_t count) {
  int64_t worst;
  return rel_error_impl(actual, expected, count, &worst);
}

double max_rel_error(const Tensor& actual, const Tensor& expected) {
  Tensor a = ops::plain(actual).to_f32(), e = ops::plain(expected).to_f32();
  if (a.numel() != e.numel()) return std::numeric_limits<double>::infinity();
  return max_rel_error(a.f32(), e.f32(), a.numel());
}

::testing::AssertionResult AllClose(const Tensor& actual, const Tensor& expected, double tol,
                                    const std::string& context) {
  if (actual.shape() != expected.shape()) {
    return ::testing::AssertionFailure() << context << ": shape " << actual.shape().str()
                                         << " != expected " << expected.shape().str();
  }
  Tensor a = ops::plain(actual).to_f32(), e = ops::plain(expected).to_f32();
  int64_t worst = 0;
  double err = rel_error_impl(a.f32(), e.f32(), a.numel(), &worst);
  if (err <= tol) return ::testing::AssertionSuccess();
  std::ostringstream os;
  os << context << ": max relative error " << err << " > " << tol << " at element " << worst
     << " (actual " << a.f32()[worst] << ", expected " << e.f32()[worst] << ", shape "
     << a.shape().str() << ")";
  return ::testing::AssertionFailure() << os.str();
}

Tensor random_tensor(const Shape& shape, uint64_t seed, float lo, float hi) {
  Rng rng(seed);
  Tensor t = Tensor::empty(shape);
  for (float& v : t.span<float>()) v = static_cast<float>(rng.uniform(lo, hi));
  return t;
}

}  // namespace resnet::testing
