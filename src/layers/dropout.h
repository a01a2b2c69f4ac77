// Dropout (inverted): in Training mode y = x * mask, mask[i] = 1/(1-rate) with probability
// 1-rate and 0 otherwise, drawn from the layer's own generator; in Inference mode y = x.
//
// Shapes: x and y (N, ...), any rank; the mask has x's shape.
// Gradient: dx = dy * mask (the mask of the last Training-mode forward).
#pragma once

#include <optional>
#include <vector>

#include "resnet/layers.h"

namespace resnet::layers {

class Dropout : public Layer {
 public:
  explicit Dropout(DropoutOptions o);

  const DropoutOptions& options() const { return o_; }
  double rate() const { return o_.rate; }

  Config config() const override;
  static std::shared_ptr<Layer> from_config(const Config& c);
  Shape infer(const std::vector<Shape>& inputs) const override;
  // Seeds the layer's generator: from options.seed, else split from the global generator.
  void build(const std::vector<Shape>& inputs) override;
  Tensor forward(const std::vector<Tensor>& inputs, Mode mode) override;
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>& need_dx) override;
  void clear_saved() override;
  bool replayable() const override { return false; }  // a new forward draws a new mask

 private:
  Rng& rng();

  DropoutOptions o_;
  std::optional<Rng> rng_;
  Tensor mask_;  // saved in Training mode: 0 or 1/(1-rate) per element
};

}  // namespace resnet::layers
