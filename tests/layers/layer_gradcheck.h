// Layer-level finite-difference gradient check (float32, reference backend).
//
// Wraps the shared double-precision checker (support/gradcheck.h): the layer's inputs and its
// trainable parameters become the checked variables; the forward runs the layer in Training mode
// on float32 tensors; the backward pre-fills every parameter grad with NaN, so a grad the layer
// forgets to overwrite fails the check. Float32 needs a large step and a loose tolerance.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ops/ops.h"
#include "resnet/layers.h"
#include "support/gradcheck.h"

namespace resnet::testing {

inline ::testing::AssertionResult check_layer_grads(Layer& layer, const std::vector<Tensor>& xs,
                                                    const std::string& context, double step = 1e-2,
                                                    double tol = 1e-2) {
  ops::BackendScope scope(ops::Backend::Ref);
  std::vector<GradInput> vars;
  for (size_t i = 0; i < xs.size(); ++i) {
    std::vector<float> v = xs[i].to_vector();
    vars.push_back({fmt::format("x{}", i), std::vector<double>(v.begin(), v.end())});
  }
  // Parameters the layer must differentiate: trainable params of a trainable layer.
  std::vector<Param*> params;
  for (Param& p : layer.params()) {
    if (!p.trainable || !layer.trainable()) continue;
    std::vector<float> v = p.value.to_vector();
    vars.push_back({p.name, std::vector<double>(v.begin(), v.end())});
    params.push_back(&p);
  }
  auto to_tensor = [](const Shape& s, const std::vector<double>& v) {
    return Tensor::from_vector(s, std::vector<float>(v.begin(), v.end()));
  };
  auto set_values = [&](const GradValues& v) {
    std::vector<Tensor> inputs;
    for (size_t i = 0; i < xs.size(); ++i) inputs.push_back(to_tensor(xs[i].shape(), v[i]));
    for (size_t k = 0; k < params.size(); ++k) {
      float* p = params[k]->value.f32();
      const std::vector<double>& src = v[xs.size() + k];
      for (size_t j = 0; j < src.size(); ++j) p[j] = static_cast<float>(src[j]);
      params[k]->value.bump_version();
    }
    return inputs;
  };
  auto forward = [&](const GradValues& v) {
    Tensor y = ops::plain(layer.forward(set_values(v), Mode::Training));
    std::vector<float> f = y.to_vector();
    return std::vector<double>(f.begin(), f.end());
  };
  auto backward = [&](const GradValues& v, const std::vector<double>& dy, GradValues& grads) {
    Tensor y = layer.forward(set_values(v), Mode::Training);
    for (Param* p : params) {
      p->grad = Tensor::full(p->value.shape(), std::numeric_limits<float>::quiet_NaN());
    }
    std::vector<Tensor> dx =
        layer.backward(to_tensor(y.shape(), dy), std::vector<bool>(xs.size(), true));
    layer.clear_saved();
    auto copy = [](const Tensor& t, std::vector<double>& out) {
      std::vector<float> f = ops::plain(t).to_vector();
      if (f.size() != out.size()) {
        std::fill(out.begin(), out.end(), std::numeric_limits<double>::quiet_NaN());
        return;
      }
      std::copy(f.begin(), f.end(), out.begin());
    };
    // Input gradients are poisoned too: an input gradient the layer does not return fails.
    for (size_t i = 0; i < xs.size(); ++i) {
      std::fill(grads[i].begin(), grads[i].end(), std::numeric_limits<double>::quiet_NaN());
      if (i < dx.size() && dx[i].defined()) copy(dx[i], grads[i]);
    }
    for (size_t k = 0; k < params.size(); ++k) copy(params[k]->grad, grads[xs.size() + k]);
  };
  GradCheckOptions options;
  options.step = step;
  options.tol = tol;
  return gradcheck(vars, forward, backward,
                   fmt::format("{} ({}): {}", layer.name(), layer.class_name(), context), options);
}

// Values spaced `gap` apart in a seeded random order (no ties, no near ties: max-pool kinks stay
// farther than the finite-difference step), centered on 0.
inline Tensor distinct_tensor(const Shape& s, uint64_t seed, float gap = 0.05f) {
  const int64_t n = s.numel();
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = (static_cast<float>(i) - n / 2.0f) * gap;
  Rng rng(seed);
  for (int64_t i = n - 1; i > 0; --i) std::swap(v[i], v[rng.below(i + 1)]);
  return Tensor::from_vector(s, v);
}

// Uniform values in [-1, 1) pushed at least `margin` away from 0 (ReLU's kink).
inline Tensor away_from_zero(const Shape& s, uint64_t seed, float margin = 0.1f) {
  Rng rng(seed);
  std::vector<float> v(s.numel());
  for (float& x : v) {
    float u = static_cast<float>(rng.uniform(-1.0, 1.0));
    x = u < 0 ? u - margin : u + margin;
  }
  return Tensor::from_vector(s, v);
}

}  // namespace resnet::testing
