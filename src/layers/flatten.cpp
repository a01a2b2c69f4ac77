#include "layers/flatten.h"

#include <fmt/format.h>

#include "layers/config_json.h"
#include "layers/layer_util.h"

namespace resnet::layers {

Flatten::Flatten(NamedOptions o) : Layer("Flatten", std::move(o.name)) {}

Shape Flatten::infer(const std::vector<Shape>& inputs) const {
  if (inputs[0].rank() < 1) {
    throw ShapeError(fmt::format("{}: cannot flatten input {}", where(), inputs[0].keras_str()));
  }
  return Shape{inputs[0].numel()};
}

Tensor Flatten::forward(const std::vector<Tensor>& inputs, Mode mode) {
  const Tensor& x = inputs[0];
  if (x.rank() < 1) {
    throw ShapeError(fmt::format("{}: expects a batch, got {}", where(), x.shape().str()));
  }
  if (mode == Mode::Training) x_shape_ = x.shape();
  const int64_t n = x.shape()[0];
  // A blocked layout is not row-major NHWC: convert before reinterpreting the elements.
  return ops::plain(x).reshape(Shape{n, n == 0 ? 0 : x.numel() / n});
}

std::vector<Tensor> Flatten::backward(const Tensor& dy, const std::vector<bool>& need_dx) {
  require_saved(x_shape_.rank() > 0, where());
  std::vector<Tensor> dx(1);
  if (needs_dx(need_dx, 0)) dx[0] = ops::plain(dy).reshape(x_shape_);
  return dx;
}

}  // namespace resnet::layers

namespace resnet {

LayerRef<layers::Flatten> Flatten(NamedOptions o) {
  return LayerRef<layers::Flatten>(std::make_shared<layers::Flatten>(std::move(o)));
}

}  // namespace resnet

namespace resnet::layers {

Config Flatten::config() const { return Layer::config().set("data_format", "channels_last"); }

std::shared_ptr<Layer> Flatten::from_config(const Config& c) {
  return std::make_shared<Flatten>(NamedOptions{.name = config_name(c)});
}

}  // namespace resnet::layers
