// LeakyReLU: y = x for x > 0, y = negative_slope * x otherwise, element-wise (Keras LeakyReLU;
// Keras 2 calls the slope `alpha`, default 0.3).
//
// Shapes: x and y (N, ...), any rank.
// Gradient: dx = dy where x > 0, negative_slope * dy otherwise. The slope is >= 0, so y > 0
// exactly where x > 0 and backward needs only the output.
#pragma once

#include <vector>

#include "resnet/layers.h"

namespace resnet::layers {

class LeakyReLU : public Layer {
 public:
  explicit LeakyReLU(LeakyReLUOptions o);

  double negative_slope() const { return o_.negative_slope; }

  Config config() const override;
  static std::shared_ptr<Layer> from_config(const Config& c);
  Shape infer(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, Mode mode) override;
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>& need_dx) override;
  void clear_saved() override;

 private:
  LeakyReLUOptions o_;
  Tensor y_;  // the output, saved in Training mode
};

}  // namespace resnet::layers
