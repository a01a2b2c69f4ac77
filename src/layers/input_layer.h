// InputLayer: a graph input of a fixed per-sample shape; y = x (identity).
//
// Shapes: x and y (N, ...shape). It takes no symbolic inputs (its node has none); the executor
// hands it the batch. Gradient: dx = dy.
#pragma once

#include <vector>

#include "resnet/layers.h"

namespace resnet::layers {

class InputLayer : public Layer {
 public:
  InputLayer(Shape shape, std::string name);

  const Shape& input_shape() const { return shape_; }

  int min_inputs() const override { return 0; }
  int max_inputs() const override { return 0; }

  Config config() const override;
  static std::shared_ptr<Layer> from_config(const Config& c);
  Shape infer(const std::vector<Shape>& inputs) const override;
  // inputs: the batch (one tensor); checks its per-sample shape.
  Tensor forward(const std::vector<Tensor>& inputs, Mode mode) override;
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>& need_dx) override;

 private:
  Shape shape_;
};

}  // namespace resnet::layers
