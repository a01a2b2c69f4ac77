#include "layers/input_layer.h"

#include <fmt/format.h>

#include "layers/layer_util.h"

namespace resnet::layers {

InputLayer::InputLayer(Shape shape, std::string name)
    : Layer("InputLayer", std::move(name)), shape_(std::move(shape)) {
  for (int64_t d : shape_.dims()) {
    if (d <= 0) {
      throw ShapeError(
          fmt::format("{}: dimensions must be positive, got {}", where(), shape_.keras_str()));
    }
  }
}

Shape InputLayer::infer(const std::vector<Shape>& inputs) const { return shape_; }

Tensor InputLayer::forward(const std::vector<Tensor>& inputs, Mode mode) {
  if (inputs.size() != 1) {
    throw ConfigError(
        fmt::format("{}: forward expects the input batch, got {} tensors", where(), inputs.size()));
  }
  const Tensor& x = inputs[0];
  if (x.rank() != shape_.rank() + 1 || x.shape().drop_front() != shape_) {
    throw ShapeError(fmt::format("{}: expects a batch of shape {}, got {}", where(),
                                 shape_.keras_str(), x.shape().str()));
  }
  return x;
}

std::vector<Tensor> InputLayer::backward(const Tensor& dy, const std::vector<bool>& need_dx) {
  return std::vector<Tensor>(need_dx.empty() ? 1 : need_dx.size(), dy);
}

}  // namespace resnet::layers

namespace resnet {

SymTensor Input(Shape shape, std::string name) {
  auto layer = std::make_shared<layers::InputLayer>(std::move(shape), std::move(name));
  return (*layer)(std::vector<SymTensor>{});
}

}  // namespace resnet
