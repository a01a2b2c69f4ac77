#include "layers/add.h"

#include <fmt/format.h>

#include "layers/config_json.h"
#include "layers/layer_util.h"

namespace resnet::layers {

Add::Add(NamedOptions o) : Layer("Add", std::move(o.name)) {}

Shape Add::infer(const std::vector<Shape>& inputs) const {
  for (size_t i = 1; i < inputs.size(); ++i) {
    if (inputs[i] != inputs[0]) {
      // Layer::operator() appends which layers produced the inputs.
      throw ShapeError(fmt::format("{}: inputs must have identical shapes, got {} and {}", where(),
                                   inputs[0].keras_str(), inputs[i].keras_str()));
    }
  }
  return inputs[0];
}

Tensor Add::forward(const std::vector<Tensor>& inputs, Mode mode) {
  for (size_t i = 1; i < inputs.size(); ++i) {
    if (inputs[i].shape() != inputs[0].shape()) {
      throw ShapeError(fmt::format("{}: inputs must have identical shapes, got {} and {}", where(),
                                   inputs[0].shape().str(), inputs[i].shape().str()));
    }
  }
  if (mode == Mode::Training) count_inputs_ = inputs.size();
  return ops::add(inputs);
}

std::vector<Tensor> Add::backward(const Tensor& dy, const std::vector<bool>& need_dx) {
  const size_t n = need_dx.empty() ? count_inputs_ : need_dx.size();
  std::vector<Tensor> dx(n);
  for (size_t i = 0; i < n; ++i) {
    if (needs_dx(need_dx, i)) dx[i] = dy;
  }
  return dx;
}

}  // namespace resnet::layers

namespace resnet {

LayerRef<layers::Add> Add(NamedOptions o) {
  return LayerRef<layers::Add>(std::make_shared<layers::Add>(std::move(o)));
}

}  // namespace resnet

namespace resnet::layers {

Config Add::config() const { return Layer::config(); }

std::shared_ptr<Layer> Add::from_config(const Config& c) {
  return std::make_shared<Add>(NamedOptions{.name = config_name(c)});
}

}  // namespace resnet::layers
