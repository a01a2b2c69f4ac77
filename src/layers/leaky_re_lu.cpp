#include "layers/leaky_re_lu.h"

#include <fmt/format.h>

#include <cmath>

#include "layers/config_json.h"
#include "layers/layer_util.h"

namespace resnet::layers {

LeakyReLU::LeakyReLU(LeakyReLUOptions o) : Layer("LeakyReLU", o.name), o_(std::move(o)) {
  if (!(o_.negative_slope >= 0.0) || !std::isfinite(o_.negative_slope)) {
    throw ConfigError(fmt::format("{}: negative_slope must be finite and >= 0, got {}", where(),
                                  o_.negative_slope));
  }
}

Shape LeakyReLU::infer(const std::vector<Shape>& inputs) const { return inputs[0]; }

Tensor LeakyReLU::forward(const std::vector<Tensor>& inputs, Mode mode) {
  Tensor y = ops::eltwise_forward(ops::Eltwise::Relu, inputs[0], o_.negative_slope);
  if (mode == Mode::Training) y_ = y;
  return y;
}

std::vector<Tensor> LeakyReLU::backward(const Tensor& dy, const std::vector<bool>& need_dx) {
  require_saved(y_.defined(), where());
  std::vector<Tensor> dx(1);
  if (needs_dx(need_dx, 0)) {
    dx[0] = ops::eltwise_backward(ops::Eltwise::Relu, dy, Tensor(), y_, o_.negative_slope);
  }
  return dx;
}

void LeakyReLU::clear_saved() { y_ = Tensor(); }

// Keras 2.4 writes the slope as "alpha"; Keras 3 as "negative_slope". Both are read.
Config LeakyReLU::config() const { return Layer::config().set("alpha", o_.negative_slope); }

std::shared_ptr<Layer> LeakyReLU::from_config(const Config& c) {
  LeakyReLUOptions o;
  o.negative_slope = c.get_double("negative_slope", c.get_double("alpha", o.negative_slope));
  o.name = config_name(c);
  return std::make_shared<LeakyReLU>(std::move(o));
}

}  // namespace resnet::layers

namespace resnet {

LayerRef<layers::LeakyReLU> LeakyReLU(LeakyReLUOptions o) {
  return LayerRef<layers::LeakyReLU>(std::make_shared<layers::LeakyReLU>(std::move(o)));
}

}  // namespace resnet
