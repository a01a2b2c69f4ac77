// AveragePooling2D: y = mean over each window of x (padded cells not counted); dx spreads dy /
// count over the window.
//
// Shapes: x (N,H,W,C), y (N,OH,OW,C); geometry and padding as in Pooling2D (pooling2d.h).
#pragma once

#include "layers/pooling2d.h"

namespace resnet::layers {

class AveragePooling2D : public Pooling2D {
 public:
  explicit AveragePooling2D(Pool2DOptions o)
      : Pooling2D("AveragePooling2D", ops::PoolKind::Avg, std::move(o)) {}
  static std::shared_ptr<Layer> from_config(const Config& c);
};

}  // namespace resnet::layers
