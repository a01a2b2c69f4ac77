#include "layers/re_lu.h"

#include "layers/config_json.h"
#include "layers/layer_util.h"

namespace resnet::layers {

ReLU::ReLU(NamedOptions o) : Layer("ReLU", std::move(o.name)) {}

Shape ReLU::infer(const std::vector<Shape>& inputs) const { return inputs[0]; }

Tensor ReLU::forward(const std::vector<Tensor>& inputs, Mode mode) {
  Tensor y = ops::eltwise_forward(ops::Eltwise::Relu, inputs[0]);
  // relu'(x) = [y > 0]: backward needs the output only, so the input can be freed early.
  if (mode == Mode::Training) y_ = y;
  return y;
}

std::vector<Tensor> ReLU::backward(const Tensor& dy, const std::vector<bool>& need_dx) {
  require_saved(y_.defined(), where());
  std::vector<Tensor> dx(1);
  if (needs_dx(need_dx, 0)) dx[0] = ops::eltwise_backward(ops::Eltwise::Relu, dy, Tensor(), y_);
  return dx;
}

void ReLU::clear_saved() { y_ = Tensor(); }

}  // namespace resnet::layers

namespace resnet {

LayerRef<layers::ReLU> ReLU(NamedOptions o) {
  return LayerRef<layers::ReLU>(std::make_shared<layers::ReLU>(std::move(o)));
}

}  // namespace resnet

namespace resnet::layers {

Config ReLU::config() const {
  return Layer::config().set_null("max_value").set("negative_slope", 0.0).set("threshold", 0.0);
}

std::shared_ptr<Layer> ReLU::from_config(const Config& c) {
  if (c.has("max_value") || c.get_double("negative_slope", 0.0) != 0.0 ||
      c.get_double("threshold", 0.0) != 0.0) {
    throw ConfigError(
        "max_value, negative_slope and threshold are not supported (LeakyReLU is a layer of its "
        "own)");
  }
  return std::make_shared<ReLU>(NamedOptions{.name = config_name(c)});
}

}  // namespace resnet::layers
