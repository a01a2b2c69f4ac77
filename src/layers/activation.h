// Activation: y = f(x) element-wise (relu, sigmoid, tanh, linear) or softmax over the last axis.
//
// Shapes: x and y (N, ...), any rank; softmax normalizes over the last dimension.
// Gradient: dx = dy * f'(x) for the element-wise kinds; softmax: dx = y * (dy - sum(dy * y)) per
// row. Also the fused activation of Conv2D and Dense (the helpers below).
#pragma once

#include <string>
#include <vector>

#include "resnet/layers.h"

namespace resnet::layers {

enum class ActivationKind { Linear, Relu, Sigmoid, Tanh, Softmax };

// "relu" -> Relu, ...; throws ConfigError naming `where` (the layer) and the kind.
ActivationKind parse_activation(const std::string& kind, const std::string& where);
const char* activation_name(ActivationKind k);
// y = f(x).
Tensor activation_forward(ActivationKind k, const Tensor& x);
// dx from dy, the input x and the output y of activation_forward.
Tensor activation_backward(ActivationKind k, const Tensor& dy, const Tensor& x, const Tensor& y);

class Activation : public Layer {
 public:
  Activation(std::string kind, std::string name);

  ActivationKind kind() const { return kind_; }
  const std::string& kind_name() const { return kind_name_; }

  Config config() const override;
  static std::shared_ptr<Layer> from_config(const Config& c);
  Shape infer(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, Mode mode) override;
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>& need_dx) override;
  void clear_saved() override;
  bool ends_in_softmax() const override { return kind_ == ActivationKind::Softmax; }
  Tensor softmax_logits() const override { return x_; }
  Tensor forward_with_logits(const std::vector<Tensor>& inputs, Tensor& logits) override;

 private:
  std::string kind_name_;
  ActivationKind kind_;
  Tensor x_, y_;  // saved in Training mode
};

}  // namespace resnet::layers
