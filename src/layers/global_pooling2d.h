// GlobalPooling2D: the shared base of GlobalAveragePooling2D and GlobalMaxPooling2D.
//
//   y[n,c] = mean (or max) over h, w of x[n,h,w,c]
// Shapes: x (N,H,W,C), y (N,C). Computed as a pooling whose window is the whole image.
// Gradient: average: dx[n,h,w,c] = dy[n,c] / (H*W); max: dy[n,c] goes to the (first) maximum.
#pragma once

#include <vector>

#include "ops/ops.h"
#include "resnet/layers.h"

namespace resnet::layers {

class GlobalPooling2D : public Layer {
 public:
  GlobalPooling2D(std::string class_name, ops::PoolKind kind, NamedOptions o);

  Config config() const override;
  Shape infer(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, Mode mode) override;
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>& need_dx) override;
  void clear_saved() override;

 private:
  ops::PoolKind kind_;
  // Saved in Training mode.
  Tensor x_, workspace_;
  ops::PoolGeom g_;
};

// The options of a Keras GlobalAverage/GlobalMaxPooling2D config; ConfigError for keepdims=True.
NamedOptions global_pool_options_from_config(const Config& c);

}  // namespace resnet::layers
