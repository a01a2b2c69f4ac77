// GlobalAveragePooling2D: y[n,c] = mean over h, w of x[n,h,w,c]; dx[n,h,w,c] = dy[n,c] / (H*W).
//
// Shapes: x (N,H,W,C), y (N,C). See GlobalPooling2D (global_pooling2d.h).
#pragma once

#include "layers/global_pooling2d.h"

namespace resnet::layers {

class GlobalAveragePooling2D : public GlobalPooling2D {
 public:
  explicit GlobalAveragePooling2D(NamedOptions o)
      : GlobalPooling2D("GlobalAveragePooling2D", ops::PoolKind::Avg, std::move(o)) {}
  static std::shared_ptr<Layer> from_config(const Config& c);
};

}  // namespace resnet::layers
