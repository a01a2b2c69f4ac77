#include "layers/average_pooling2d.h"

namespace resnet {

LayerRef<layers::AveragePooling2D> AveragePooling2D(Pool2DOptions o) {
  return LayerRef<layers::AveragePooling2D>(
      std::make_shared<layers::AveragePooling2D>(std::move(o)));
}

}  // namespace resnet
