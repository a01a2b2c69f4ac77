#include "layers/global_average_pooling2d.h"

#include "layers/config_json.h"

namespace resnet {

LayerRef<layers::GlobalAveragePooling2D> GlobalAveragePooling2D(NamedOptions o) {
  return LayerRef<layers::GlobalAveragePooling2D>(
      std::make_shared<layers::GlobalAveragePooling2D>(std::move(o)));
}

}  // namespace resnet

namespace resnet::layers {

std::shared_ptr<Layer> GlobalAveragePooling2D::from_config(const Config& c) {
  return std::make_shared<GlobalAveragePooling2D>(global_pool_options_from_config(c));
}

}  // namespace resnet::layers
