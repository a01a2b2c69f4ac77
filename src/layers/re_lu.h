// ReLU: y = max(x, 0) element-wise (Keras ReLU layer with default arguments).
//
// Shapes: x and y (N, ...), any rank.
// Gradient: dx = dy where x > 0, else 0.
#pragma once

#include <vector>

#include "resnet/layers.h"

namespace resnet::layers {

class ReLU : public Layer {
 public:
  explicit ReLU(NamedOptions o);

  Config config() const override;
  static std::shared_ptr<Layer> from_config(const Config& c);
  Shape infer(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, Mode mode) override;
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>& need_dx) override;
  void clear_saved() override;

 private:
  Tensor y_;  // the output, saved in Training mode (backward needs nothing else)
};

}  // namespace resnet::layers
