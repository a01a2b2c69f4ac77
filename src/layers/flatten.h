// Flatten: y[n, :] = x[n, ...] in row-major (NHWC) order, as Keras with channels_last.
//
// Shapes: x (N, d1, ..., dk), y (N, d1*...*dk).
// Gradient: dx = dy reshaped to x's shape.
#pragma once

#include <vector>

#include "resnet/layers.h"

namespace resnet::layers {

class Flatten : public Layer {
 public:
  explicit Flatten(NamedOptions o);

  Config config() const override;
  static std::shared_ptr<Layer> from_config(const Config& c);
  Shape infer(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, Mode mode) override;
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>& need_dx) override;

 private:
  Shape x_shape_;  // of the last forward
};

}  // namespace resnet::layers
