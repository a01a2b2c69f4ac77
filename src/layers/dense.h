// Dense: y = act(x @ kernel + bias), a fully connected layer on flat samples.
//
//   y[n,u] = act(bias[u] + sum_k x[n,k] * kernel[k,u])
// Shapes: x (N,K), kernel (K,U), bias (U), y (N,U). A 4-D input must be flattened first (unlike
// Keras, which would apply the kernel to the last axis): connecting one throws ShapeError.
// Initializer fans: fan_in = K, fan_out = U.
// Gradient: with dz = dy * act'(.), dx = dz @ kernel^T, dkernel = x^T @ dz, dbias = sum_n dz.
#pragma once

#include <vector>

#include "layers/activation.h"
#include "resnet/layers.h"

namespace resnet::layers {

class Dense : public Layer {
 public:
  explicit Dense(DenseOptions o);

  const DenseOptions& options() const { return o_; }

  Config config() const override;
  static std::shared_ptr<Layer> from_config(const Config& c);
  double params_needed(const std::vector<Shape>& inputs) const override;
  Shape infer(const std::vector<Shape>& inputs) const override;
  void build(const std::vector<Shape>& inputs) override;
  Tensor forward(const std::vector<Tensor>& inputs, Mode mode) override;
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>& need_dx) override;
  void clear_saved() override;
  bool ends_in_softmax() const override { return act_ == ActivationKind::Softmax; }
  Tensor softmax_logits() const override { return z_; }
  Tensor forward_with_logits(const std::vector<Tensor>& inputs, Tensor& logits) override;

 private:
  Tensor logits(const Tensor& x) const;  // the pre-activation output, z = x kernel + bias
  DenseOptions o_;
  ActivationKind act_;
  Tensor x_, z_, y_;  // saved in Training mode: input, pre-activation, output
};

}  // namespace resnet::layers
