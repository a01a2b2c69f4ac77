#include "layers/max_pooling2d.h"

namespace resnet {

LayerRef<layers::MaxPooling2D> MaxPooling2D(Pool2DOptions o) {
  return LayerRef<layers::MaxPooling2D>(std::make_shared<layers::MaxPooling2D>(std::move(o)));
}

}  // namespace resnet
