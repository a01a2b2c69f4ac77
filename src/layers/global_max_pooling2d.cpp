#include "layers/global_max_pooling2d.h"

namespace resnet {

LayerRef<layers::GlobalMaxPooling2D> GlobalMaxPooling2D(NamedOptions o) {
  return LayerRef<layers::GlobalMaxPooling2D>(
      std::make_shared<layers::GlobalMaxPooling2D>(std::move(o)));
}

}  // namespace resnet
