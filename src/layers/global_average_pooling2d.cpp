#include "layers/global_average_pooling2d.h"

namespace resnet {

LayerRef<layers::GlobalAveragePooling2D> GlobalAveragePooling2D(NamedOptions o) {
  return LayerRef<layers::GlobalAveragePooling2D>(
      std::make_shared<layers::GlobalAveragePooling2D>(std::move(o)));
}

}  // namespace resnet
