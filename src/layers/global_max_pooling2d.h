// GlobalMaxPooling2D: y[n,c] = max over h, w of x[n,h,w,c]; dx puts dy[n,c] on the (first) maximum.
//
// Shapes: x (N,H,W,C), y (N,C). See GlobalPooling2D (global_pooling2d.h).
#pragma once

#include "layers/global_pooling2d.h"

namespace resnet::layers {

class GlobalMaxPooling2D : public GlobalPooling2D {
 public:
  explicit GlobalMaxPooling2D(NamedOptions o)
      : GlobalPooling2D("GlobalMaxPooling2D", ops::PoolKind::Max, std::move(o)) {}
  static std::shared_ptr<Layer> from_config(const Config& c);
};

}  // namespace resnet::layers
