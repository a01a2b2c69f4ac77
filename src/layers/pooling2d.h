// Pooling2D: the shared base of MaxPooling2D and AveragePooling2D (Keras semantics).
//
//   y[n,oh,ow,c] = max (or mean) over the window x[n, oh*sh - pt + i, ow*sw - pl + j, c],
//                  0 <= i < KH, 0 <= j < KW
// Shapes: x (N,H,W,C), y (N,OH,OW,C). Strides default to the pool size. 'same' padding: padded
// cells never win a max and are left out of an average's count (TensorFlow).
// Gradient: max routes dy to the winning element of each window; average spreads dy / count over
// the window's cells.
#pragma once

#include <vector>

#include "ops/ops.h"
#include "resnet/layers.h"

namespace resnet::layers {

class Pooling2D : public Layer {
 public:
  Pooling2D(std::string class_name, ops::PoolKind kind, Pool2DOptions o);

  const Pool2DOptions& options() const { return o_; }

  Config config() const override;
  Shape infer(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, Mode mode) override;
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>& need_dx) override;
  void clear_saved() override;

 private:
  ops::PoolGeom geometry(int64_t n, const Shape& sample) const;

  ops::PoolKind kind_;
  Pool2DOptions o_;  // strides resolved (never {0, 0})
  // Saved in Training mode.
  Tensor x_, workspace_;
  ops::PoolGeom g_;
};

// The options of a Keras MaxPooling2D / AveragePooling2D config; ConfigError for what is not
// supported.
Pool2DOptions pool_options_from_config(const Config& c);

}  // namespace resnet::layers
