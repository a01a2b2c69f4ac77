#include "layers/activation.h"

#include <fmt/format.h>

#include "layers/config_json.h"
#include "ops/ops.h"

namespace resnet::layers {

ActivationKind parse_activation(const std::string& kind, const std::string& where) {
  if (kind == "linear" || kind.empty()) return ActivationKind::Linear;
  if (kind == "relu") return ActivationKind::Relu;
  if (kind == "sigmoid") return ActivationKind::Sigmoid;
  if (kind == "tanh") return ActivationKind::Tanh;
  if (kind == "softmax") return ActivationKind::Softmax;
  throw ConfigError(
      fmt::format("{}: unknown activation '{}' (expected relu, softmax, sigmoid, tanh or linear)",
                  where, kind));
}

const char* activation_name(ActivationKind k) {
  switch (k) {
    case ActivationKind::Linear:
      return "linear";
    case ActivationKind::Relu:
      return "relu";
    case ActivationKind::Sigmoid:
      return "sigmoid";
    case ActivationKind::Tanh:
      return "tanh";
    case ActivationKind::Softmax:
      return "softmax";
  }
  return "linear";
}

namespace {
ops::Eltwise to_eltwise(ActivationKind k) {
  switch (k) {
    case ActivationKind::Relu:
      return ops::Eltwise::Relu;
    case ActivationKind::Sigmoid:
      return ops::Eltwise::Sigmoid;
    case ActivationKind::Tanh:
      return ops::Eltwise::Tanh;
    default:
      return ops::Eltwise::Linear;
  }
}
}  // namespace

Tensor activation_forward(ActivationKind k, const Tensor& x) {
  switch (k) {
    case ActivationKind::Linear:
      return x;
    case ActivationKind::Softmax:
      return ops::softmax_forward(x);
    default:
      return ops::eltwise_forward(to_eltwise(k), x);
  }
}

Tensor activation_backward(ActivationKind k, const Tensor& dy, const Tensor& x, const Tensor& y) {
  switch (k) {
    case ActivationKind::Linear:
      return dy;
    case ActivationKind::Softmax:
      return ops::softmax_backward(dy, y);
    default:
      return ops::eltwise_backward(to_eltwise(k), dy, x, y);
  }
}

Activation::Activation(std::string kind, std::string name)
    : Layer("Activation", std::move(name)),
      kind_name_(std::move(kind)),
      kind_(parse_activation(kind_name_, where())) {}

Shape Activation::infer(const std::vector<Shape>& inputs) const { return inputs[0]; }

Tensor Activation::forward(const std::vector<Tensor>& inputs, Mode mode) {
  Tensor y = activation_forward(kind_, inputs[0]);
  if (mode == Mode::Training) y_ = y;
  // Backward differentiates from the output alone (relu'(x) = [y > 0], sigmoid and tanh from
  // y), so the input is not kept and can be freed as soon as this layer ran; after a softmax it
  // is kept for the fused cross-entropy of training.
  if (mode == Mode::Training && kind_ == ActivationKind::Softmax) x_ = inputs[0];
  return y;
}

Tensor Activation::forward_with_logits(const std::vector<Tensor>& inputs, Tensor& logits) {
  logits = inputs[0];
  return activation_forward(kind_, inputs[0]);
}

std::vector<Tensor> Activation::backward(const Tensor& dy, const std::vector<bool>& need_dx) {
  if (!y_.defined()) {
    throw ConfigError(fmt::format("{}: backward without a Training-mode forward", where()));
  }
  std::vector<Tensor> dx(1);
  if (need_dx.empty() || need_dx[0]) {
    // With the softmax bypass, dy already is the gradient with respect to the logits x.
    dx[0] = (softmax_bypass_ && kind_ == ActivationKind::Softmax)
                ? dy
                : activation_backward(kind_, dy, x_, y_);
  }
  return dx;
}

void Activation::clear_saved() {
  x_ = Tensor();
  y_ = Tensor();
}

}  // namespace resnet::layers

namespace resnet {

LayerRef<layers::Activation> Activation(std::string kind, std::string name) {
  return LayerRef<layers::Activation>(
      std::make_shared<layers::Activation>(std::move(kind), std::move(name)));
}

}  // namespace resnet

namespace resnet::layers {

Config Activation::config() const { return Layer::config().set("activation", kind_name_); }

std::shared_ptr<Layer> Activation::from_config(const Config& c) {
  return std::make_shared<Activation>(config_activation(c), config_name(c));
}

}  // namespace resnet::layers
