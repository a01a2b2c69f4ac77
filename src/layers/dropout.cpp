#include "layers/dropout.h"

#include <fmt/format.h>

#include "layers/config_json.h"
#include "layers/layer_util.h"

namespace resnet::layers {

Dropout::Dropout(DropoutOptions o) : Layer("Dropout", o.name), o_(std::move(o)) {
  if (!(o_.rate >= 0.0 && o_.rate < 1.0)) {
    throw ConfigError(fmt::format("{}: rate must be in [0, 1), got {}", where(), o_.rate));
  }
}

Shape Dropout::infer(const std::vector<Shape>& inputs) const { return inputs[0]; }

void Dropout::build(const std::vector<Shape>& inputs) {
  rng_.emplace(o_.seed ? Rng(*o_.seed) : global_rng().split());
}

Rng& Dropout::rng() {
  // A layer used outside a graph (never connected) still gets a generator.
  if (!rng_) rng_.emplace(o_.seed ? Rng(*o_.seed) : global_rng().split());
  return *rng_;
}

Tensor Dropout::forward(const std::vector<Tensor>& inputs, Mode mode) {
  const Tensor& x = inputs[0];
  if (mode == Mode::Inference) return x;
  const Tensor xp = ops::plain(x);
  const int64_t n = xp.numel();
  const float scale = static_cast<float>(1.0 / (1.0 - o_.rate));
  Tensor mask = Tensor::empty(xp.shape());
  Tensor y = Tensor::empty(xp.shape());
  float* m = mask.f32();
  float* yp = y.f32();
  const float* xv = xp.f32();
  Rng& r = rng();
  for (int64_t i = 0; i < n; ++i) {
    // Keep when the draw is at least `rate` (TensorFlow's comparison).
    m[i] = r.uniform01() >= o_.rate ? scale : 0.0f;
    yp[i] = xv[i] * m[i];
  }
  mask_ = mask;
  return y;
}

std::vector<Tensor> Dropout::backward(const Tensor& dy, const std::vector<bool>& need_dx) {
  require_saved(mask_.defined(), where());
  std::vector<Tensor> dx(1);
  if (needs_dx(need_dx, 0)) {
    const Tensor dyp = ops::plain(dy);
    if (dyp.shape() != mask_.shape()) {
      throw ShapeError(fmt::format("{}: gradient {} does not match the last forward's {}", where(),
                                   dyp.shape().str(), mask_.shape().str()));
    }
    Tensor g = Tensor::empty(dyp.shape());
    const float* d = dyp.f32();
    const float* m = mask_.f32();
    float* gp = g.f32();
    for (int64_t i = 0; i < g.numel(); ++i) gp[i] = d[i] * m[i];
    dx[0] = g;
  }
  return dx;
}

void Dropout::clear_saved() { mask_ = Tensor(); }

}  // namespace resnet::layers

namespace resnet {

LayerRef<layers::Dropout> Dropout(DropoutOptions o) {
  return LayerRef<layers::Dropout>(std::make_shared<layers::Dropout>(std::move(o)));
}

}  // namespace resnet

namespace resnet::layers {

Config Dropout::config() const {
  Config c = Layer::config();
  c.set("rate", o_.rate).set_null("noise_shape");
  if (o_.seed) {
    c.set("seed", static_cast<int64_t>(*o_.seed));
  } else {
    c.set_null("seed");
  }
  return c;
}

std::shared_ptr<Layer> Dropout::from_config(const Config& c) {
  DropoutOptions o;
  o.rate = c.get_double("rate", o.rate);
  if (c.has("seed")) o.seed = static_cast<uint64_t>(c.get_int("seed"));
  o.name = config_name(c);
  return std::make_shared<Dropout>(std::move(o));
}

}  // namespace resnet::layers
