#include "support/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "resnet/tensor.h"

namespace resnet::testing {

namespace {

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

bool all_finite(const std::vector<double>& v, size_t* bad) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      *bad = i;
      return false;
    }
  }
  return true;
}

}  // namespace

std::vector<double> random_values(int64_t n, uint64_t seed, double lo, double hi) {
  Rng rng(seed);
  std::vector<double> v(static_cast<size_t>(n));
  for (auto& e : v) e = rng.uniform(lo, hi);
  return v;
}

::testing::AssertionResult gradcheck(const std::vector<GradInput>& inputs,
                                     const GradForward& forward, const GradBackward& backward,
                                     const std::string& context, const GradCheckOptions& options) {
  GradValues values;
  for (const auto& in : inputs) values.push_back(in.value);

  const std::vector<double> y = forward(values);
  size_t bad = 0;
  if (y.empty()) return ::testing::AssertionFailure() << context << ": forward returned no output";
  if (!all_finite(y, &bad)) {
    // Also how a forward kernel that leaves a NaN-prefilled output element unwritten shows up.
    return ::testing::AssertionFailure()
           << context << ": forward output element " << bad << " is not finite (" << y[bad] << ")";
  }
  const std::vector<double> r = random_values(static_cast<int64_t>(y.size()), options.seed);

  GradValues grads(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].differentiable) {
      grads[i].assign(inputs[i].value.size(), std::numeric_limits<double>::quiet_NaN());
    }
  }
  backward(values, r, grads);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const size_t want = inputs[i].differentiable ? inputs[i].value.size() : 0;
    if (grads[i].size() != want) {
      return ::testing::AssertionFailure()
             << context << ": backward resized the gradient of '" << inputs[i].name << "' to "
             << grads[i].size() << " elements (expected " << want << ")";
    }
  }

  std::ostringstream failures;
  failures.precision(12);
  int64_t failed = 0, checked = 0;
  double worst = 0.0;
  GradValues probe = values;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].differentiable) continue;
    std::vector<double>& v = probe[i];
    for (size_t k = 0; k < v.size(); ++k) {
      const double saved = v[k];
      v[k] = saved + options.step;
      const std::vector<double> y_plus = forward(probe);
      v[k] = saved - options.step;
      const std::vector<double> y_minus = forward(probe);
      v[k] = saved;
      if (y_plus.size() != y.size() || y_minus.size() != y.size()) {
        return ::testing::AssertionFailure() << context << ": forward output size changed";
      }
      const double numeric = (dot(y_plus, r) - dot(y_minus, r)) / (2.0 * options.step);
      const double analytic = grads[i][k];
      const double scale = std::max({std::abs(analytic), std::abs(numeric), 1.0});
      const double err = std::abs(analytic - numeric) / scale;
      ++checked;
      // Written so that NaN (an unwritten element) fails: every comparison with NaN is false.
      if (!(err <= options.tol)) {
        if (failed < options.max_reported) {
          failures << "\n  input '" << inputs[i].name << "' element " << k << ": analytic "
                   << analytic << ", numeric " << numeric << ", relative error " << err;
        }
        ++failed;
      }
      if (std::isnan(err) || err > worst)
        worst = std::isnan(err) ? std::numeric_limits<double>::infinity() : err;
    }
  }
  if (failed == 0) return ::testing::AssertionSuccess();
  std::ostringstream os;
  os << context << ": " << failed << " of " << checked
     << " gradient elements differ from central differences (tol " << options.tol << ", step "
     << options.step << ", seed " << options.seed << ", worst relative error " << worst << ")"
     << failures.str() << (failed > options.max_reported ? "\n  ..." : "");
  return ::testing::AssertionFailure() << os.str();
}

}  // namespace resnet::testing
