// Conv2D: y = act(conv(x, kernel) + bias), Keras semantics (cross-correlation, 'valid'/'same').
//
//   y[n,oh,ow,f] = act(bias[f] + sum_{i,j,c} x[n, oh*sh - pt + i*dh, ow*sw - pl + j*dw, c]
//                                             * kernel[i,j,c,f])
// Shapes: x (N,H,W,C), kernel (KH,KW,C,F), bias (F), y (N,OH,OW,F); 'same' pads as TensorFlow
// (the odd pixel bottom/right). Initializer fans: fan_in = KH*KW*C, fan_out = KH*KW*F.
// Gradient: with dz = dy * act'(.), dx = conv_transpose(dz, kernel),
//   dkernel[i,j,c,f] = sum_{n,oh,ow} x[...] * dz[n,oh,ow,f], dbias[f] = sum_{n,oh,ow}
//   dz[n,oh,ow,f].
#pragma once

#include <vector>

#include "layers/activation.h"
#include "ops/ops.h"
#include "resnet/layers.h"

namespace resnet::layers {

class Conv2D : public Layer {
 public:
  explicit Conv2D(Conv2DOptions o);

  const Conv2DOptions& options() const { return o_; }

  Config config() const override;
  static std::shared_ptr<Layer> from_config(const Config& c);
  double params_needed(const std::vector<Shape>& inputs) const override;
  Shape infer(const std::vector<Shape>& inputs) const override;
  void build(const std::vector<Shape>& inputs) override;
  Tensor forward(const std::vector<Tensor>& inputs, Mode mode) override;
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>& need_dx) override;
  void clear_saved() override;
  // Geometry for a batch of n samples of per-sample shape (H, W, C); throws ShapeError.
  ops::ConvGeom geometry(int64_t n, const Shape& sample) const;

 private:
  Conv2DOptions o_;
  ActivationKind act_;
  // Saved in Training mode: input, pre-activation, output, geometry.
  Tensor x_, z_, y_;
  ops::ConvGeom g_;
};

}  // namespace resnet::layers
