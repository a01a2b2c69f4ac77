#include "layers/dense.h"

#include <fmt/format.h>

#include "layers/config_json.h"
#include "layers/layer_util.h"

namespace resnet::layers {

Dense::Dense(DenseOptions o)
    : Layer("Dense", o.name), o_(std::move(o)), act_(parse_activation(o_.activation, where())) {
  if (o_.units <= 0) {
    throw ConfigError(fmt::format("{}: units must be positive, got {}", where(), o_.units));
  }
  trainable_ = o_.trainable;
}

Shape Dense::infer(const std::vector<Shape>& inputs) const {
  const Shape& s = inputs[0];
  if (s.rank() != 1) {
    throw ShapeError(fmt::format(
        "{}: expects flat input (None, features), got {}; add a Flatten() (or a global pooling) "
        "layer before it",
        where(), s.keras_str()));
  }
  return Shape{o_.units};
}

void Dense::build(const std::vector<Shape>& inputs) {
  const int64_t k = inputs[0][0];
  add_param("kernel", Shape{k, o_.units}, o_.kernel_initializer, k, o_.units, true);
  if (o_.use_bias) add_param("bias", Shape{o_.units}, o_.bias_initializer, k, o_.units, true);
}

Tensor Dense::logits(const Tensor& x) const {
  const int64_t k = param("kernel").value.shape()[0];
  if (x.rank() != 2 || x.shape()[1] != k) {
    throw ShapeError(
        fmt::format("{}: expects a batch (N, {}), got {}", where(), k, x.shape().str()));
  }
  const Tensor bias = o_.use_bias ? param("bias").value : Tensor();
  return ops::dense_forward(x, param("kernel").value, bias);
}

Tensor Dense::forward(const std::vector<Tensor>& inputs, Mode mode) {
  Tensor z = logits(inputs[0]);
  Tensor y = activation_forward(act_, z);
  if (mode == Mode::Training) {
    x_ = inputs[0];
    y_ = y;
    z_ = z;
  }
  return y;
}

Tensor Dense::forward_with_logits(const std::vector<Tensor>& inputs, Tensor& logits_out) {
  logits_out = logits(inputs[0]);
  return activation_forward(act_, logits_out);
}

std::vector<Tensor> Dense::backward(const Tensor& dy, const std::vector<bool>& need_dx) {
  require_saved(x_.defined(), where());
  // With the softmax bypass, dy already is the gradient with respect to the logits z.
  Tensor dz = (softmax_bypass_ && act_ == ActivationKind::Softmax)
                  ? dy
                  : activation_backward(act_, dy, z_, y_);
  std::vector<Tensor> dx(1);
  if (needs_dx(need_dx, 0)) dx[0] = ops::dense_backward_data(dz, param("kernel").value);
  if (trainable_) {
    Tensor dw, db;
    ops::dense_backward_weights(x_, dz, o_.use_bias, dw, db);
    store_grad(param("kernel"), dw);
    if (o_.use_bias) store_grad(param("bias"), db);
  }
  return dx;
}

void Dense::clear_saved() {
  x_ = Tensor();
  z_ = Tensor();
  y_ = Tensor();
}

}  // namespace resnet::layers

namespace resnet {

LayerRef<layers::Dense> Dense(DenseOptions o) {
  return LayerRef<layers::Dense>(std::make_shared<layers::Dense>(std::move(o)));
}

}  // namespace resnet

namespace resnet::layers {

Config Dense::config() const {
  Config c = Layer::config();
  c.set("units", o_.units);
  kernel_layer_config(c, o_.activation, o_.use_bias, o_.kernel_initializer, o_.bias_initializer);
  return c;
}

std::shared_ptr<Layer> Dense::from_config(const Config& c) {
  DenseOptions o;
  o.units = c.get_int("units");
  o.activation = config_activation(c);
  o.use_bias = c.get_bool("use_bias", true);
  o.kernel_initializer = config_initializer(c, "kernel_initializer", o.kernel_initializer);
  o.bias_initializer = config_initializer(c, "bias_initializer", o.bias_initializer);
  o.name = config_name(c);
  o.trainable = config_trainable(c);
  return std::make_shared<Dense>(std::move(o));
}

double Dense::params_needed(const std::vector<Shape>& inputs) const {
  if (inputs.empty() || inputs[0].rank() == 0) return 0;
  return static_cast<double>(o_.units) *
         (static_cast<double>(inputs[0][-1]) + (o_.use_bias ? 1.0 : 0.0));
}

}  // namespace resnet::layers
