// ZeroPadding2D: y = x surrounded by zeros: `top`/`bottom` rows and `left`/`right` columns.
//
// Shapes: x (N,H,W,C), y (N, H+top+bottom, W+left+right, C).
// Gradient: dx = dy cropped back to (N,H,W,C).
#pragma once

#include <vector>

#include "ops/ops.h"
#include "resnet/layers.h"

namespace resnet::layers {

class ZeroPadding2D : public Layer {
 public:
  explicit ZeroPadding2D(ZeroPadding2DOptions o);

  const ZeroPadding2DOptions& options() const { return o_; }

  Config config() const override;
  static std::shared_ptr<Layer> from_config(const Config& c);
  Shape infer(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, Mode mode) override;
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>& need_dx) override;

 private:
  ZeroPadding2DOptions o_;
  ops::Pad2 pad_;
};

}  // namespace resnet::layers
