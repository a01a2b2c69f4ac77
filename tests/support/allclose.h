// Comparison helpers shared by the tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "resnet/tensor.h"

namespace resnet::testing {

// Max relative error of `actual` against `expected`, relative to the scale of `expected`:
//   max_i |a_i - e_i| / max(max_i |e_i|, 1e-30)
// Any NaN or infinity in `actual` gives +infinity. Both must have the same element count.
double max_rel_error(const float* actual, const float* expected, int64_t count);
double max_rel_error(const double* actual, const double* expected, int64_t count);
// Tensors are converted to plain F32 first; shapes must match.
double max_rel_error(const Tensor& actual, const Tensor& expected);

// gtest assertion: max_rel_error <= tol, with `context` (the case's parameters) in the message,
// plus the index and values of the worst element.
::testing::AssertionResult AllClose(const Tensor& actual, const Tensor& expected, double tol,
                                    const std::string& context = "");

// A tensor of the given shape filled from Rng(seed) uniformly in [lo, hi).
Tensor random_tensor(const Shape& shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f);

}  // namespace resnet::testing
