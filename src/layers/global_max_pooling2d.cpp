#include "layers/global_max_pooling2d.h"

#include "layers/config_json.h"

namespace resnet {

LayerRef<layers::GlobalMaxPooling2D> GlobalMaxPooling2D(NamedOptions o) {
  return LayerRef<layers::GlobalMaxPooling2D>(
      std::make_shared<layers::GlobalMaxPooling2D>(std::move(o)));
}

}  // namespace resnet

namespace resnet::layers {

std::shared_ptr<Layer> GlobalMaxPooling2D::from_config(const Config& c) {
  return std::make_shared<GlobalMaxPooling2D>(global_pool_options_from_config(c));
}

}  // namespace resnet::layers
