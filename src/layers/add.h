// Add: y = x_0 + x_1 + ... + x_{k-1} (k >= 2), element-wise; the residual connection.
//
// Shapes: every x_i and y (N, ...), all identical (no broadcasting).
// Gradient: dx_i = dy for every input (the same tensor; ops never modify their inputs).
#pragma once

#include <limits>
#include <vector>

#include "resnet/layers.h"

namespace resnet::layers {

class Add : public Layer {
 public:
  explicit Add(NamedOptions o);

  int min_inputs() const override { return 2; }
  int max_inputs() const override { return std::numeric_limits<int>::max(); }

  Config config() const override;
  static std::shared_ptr<Layer> from_config(const Config& c);
  Shape infer(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, Mode mode) override;
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>& need_dx) override;

 private:
  size_t count_inputs_ = 0;
};

}  // namespace resnet::layers
