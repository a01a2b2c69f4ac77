#include "layers/average_pooling2d.h"

#include "layers/config_json.h"

namespace resnet {

LayerRef<layers::AveragePooling2D> AveragePooling2D(Pool2DOptions o) {
  return LayerRef<layers::AveragePooling2D>(
      std::make_shared<layers::AveragePooling2D>(std::move(o)));
}

}  // namespace resnet

namespace resnet::layers {

std::shared_ptr<Layer> AveragePooling2D::from_config(const Config& c) {
  return std::make_shared<AveragePooling2D>(pool_options_from_config(c));
}

}  // namespace resnet::layers
