#include "layers/input_layer.h"

#include <fmt/format.h>

#include "layers/config_json.h"
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

namespace resnet::layers {

Config InputLayer::config() const {
  // Keras 2.4's InputLayer config: no trainable flag; the batch dimension is None.
  Config c;
  auto& shape = ConfigAccess::json(c)["batch_input_shape"];
  shape = nlohmann::ordered_json::array({nullptr});
  for (int64_t d : shape_.dims()) shape.push_back(d);
  return c.set("dtype", "float32").set("sparse", false).set("ragged", false).set("name", name());
}

std::shared_ptr<Layer> InputLayer::from_config(const Config& c) {
  // Keras 2: batch_input_shape; Keras 3: batch_shape.
  const nlohmann::ordered_json& j = ConfigAccess::json(c);
  const nlohmann::ordered_json shape = c.has("batch_input_shape")
                                           ? j.at("batch_input_shape")
                                           : j.value("batch_shape", nlohmann::ordered_json());
  if (!shape.is_array() || shape.size() < 2) {
    throw ConfigError("missing or malformed batch_input_shape");
  }
  std::vector<int64_t> dims;
  for (size_t d = 1; d < shape.size(); ++d) {
    if (!shape[d].is_number_integer()) {
      throw ConfigError("dynamic input dimensions are not supported");
    }
    const int64_t v = shape[d].get<int64_t>();
    if (v <= 0 || v > (int64_t{1} << 24))
      throw ConfigError(fmt::format("bad input dimension {}", v));
    dims.push_back(v);
  }
  return std::make_shared<InputLayer>(Shape(dims), config_name(c));
}

}  // namespace resnet::layers
