#include "layers/max_pooling2d.h"

#include "layers/config_json.h"

namespace resnet {

LayerRef<layers::MaxPooling2D> MaxPooling2D(Pool2DOptions o) {
  return LayerRef<layers::MaxPooling2D>(std::make_shared<layers::MaxPooling2D>(std::move(o)));
}

}  // namespace resnet

namespace resnet::layers {

std::shared_ptr<Layer> MaxPooling2D::from_config(const Config& c) {
  return std::make_shared<MaxPooling2D>(pool_options_from_config(c));
}

}  // namespace resnet::layers
