// MaxPooling2D: y = max over each window of x; dx routes dy to each window's maximum (first in
// window order on ties).
//
// Shapes: x (N,H,W,C), y (N,OH,OW,C); geometry and padding as in Pooling2D (pooling2d.h).
#pragma once

#include "layers/pooling2d.h"

namespace resnet::layers {

class MaxPooling2D : public Pooling2D {
 public:
  explicit MaxPooling2D(Pool2DOptions o)
      : Pooling2D("MaxPooling2D", ops::PoolKind::Max, std::move(o)) {}
  static std::shared_ptr<Layer> from_config(const Config& c);
};

}  // namespace resnet::layers
