// Finite-difference gradient checker, in double precision.
//
// The checked function maps inputs (flat vectors) to an output vector y. The checker reduces y to
// the scalar L = dot(y, r) with r a seeded random vector, so every output element contributes to
// L with its own weight (a bug that only swaps or mis-scales outputs still shows). Then:
//   analytic: backward(inputs, dy = r) writes dL/dinput into buffers PRE-FILLED WITH NaN, so an
//             element the kernel forgets to write (or accumulates into) fails;
//   numeric:  central differences (L(x + h e_k) - L(x - h e_k)) / 2h for every element k;
// and requires |analytic - numeric| <= tol * max(|analytic|, |numeric|, 1) (Caffe's scaling).
//
//   auto r = gradcheck({{"x", x}, {"w", w}},
//       [&](const GradValues& v) { ...; return y; },
//       [&](const GradValues& v, const std::vector<double>& dy, GradValues& grads) { ... },
//       "conv n=1 h=5 ...");
//   EXPECT_TRUE(r);
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace resnet::testing {

struct GradInput {
  std::string name;  // printed in failures: "x", "gamma", ...
  std::vector<double> value;
  // False for inputs the backward does not differentiate (BN's fixed statistics): they are neither
  // perturbed nor checked, and their gradient buffer is passed empty.
  bool differentiable = true;
};

// One flat vector per input, in the order the inputs were given.
using GradValues = std::vector<std::vector<double>>;
// Computes y from the inputs. Must be deterministic and must not keep state between calls.
using GradForward = std::function<std::vector<double>(const GradValues& inputs)>;
// Writes dL/dinput for every differentiable input into grads[i] (already sized, NaN-filled);
// must not resize the buffers.
using GradBackward =
    std::function<void(const GradValues& inputs, const std::vector<double>& dy, GradValues& grads)>;

struct GradCheckOptions {
  double step = 1e-5;     // central-difference step h
  double tol = 1e-6;      // relative tolerance (scaled by max(|g|, |n|, 1))
  uint64_t seed = 12345;  // seed of the projection vector r
  int max_reported = 10;  // failing elements printed in full
};

// Success, or a failure naming the case, the input, the flat element index and both values.
::testing::AssertionResult gradcheck(const std::vector<GradInput>& inputs,
                                     const GradForward& forward, const GradBackward& backward,
                                     const std::string& context,
                                     const GradCheckOptions& options = {});

// n values uniform in [lo, hi) from resnet::Rng(seed): identical on every platform.
std::vector<double> random_values(int64_t n, uint64_t seed, double lo = -1.0, double hi = 1.0);

}  // namespace resnet::testing
