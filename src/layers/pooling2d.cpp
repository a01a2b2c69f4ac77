#include "layers/pooling2d.h"

#include <fmt/format.h>

#include <algorithm>

#include "layers/config_json.h"
#include "layers/layer_util.h"

namespace resnet::layers {

Pooling2D::Pooling2D(std::string class_name, ops::PoolKind kind, Pool2DOptions o)
    : Layer(std::move(class_name), o.name), kind_(kind), o_(std::move(o)) {
  // Keras strides=None means the pool size.
  if (o_.strides[0] == 0 && o_.strides[1] == 0) o_.strides = o_.pool_size;
  if (o_.pool_size[0] <= 0 || o_.pool_size[1] <= 0 || o_.strides[0] <= 0 || o_.strides[1] <= 0) {
    throw ConfigError(fmt::format(
        "{}: pool_size and strides must be positive, got pool_size ({}, {}), strides ({}, {})",
        where(), o_.pool_size[0], o_.pool_size[1], o_.strides[0], o_.strides[1]));
  }
}

ops::PoolGeom Pooling2D::geometry(int64_t n, const Shape& sample) const {
  require_rank3(sample, where());
  ops::PoolGeom g;
  g.kind = kind_;
  g.n = n;
  g.h = sample[0];
  g.w = sample[1];
  g.c = sample[2];
  g.kh = o_.pool_size[0];
  g.kw = o_.pool_size[1];
  g.sh = o_.strides[0];
  g.sw = o_.strides[1];
  if (o_.padding == Padding::Same) {
    auto [t, b] = ops::same_padding(g.h, g.kh, g.sh, 1);
    auto [l, r] = ops::same_padding(g.w, g.kw, g.sw, 1);
    g.pad = {t, b, l, r};
  }
  // Checked here, before ops' own check, so the message names the layer and the Keras shape.
  const int64_t oh = ops::window_out(g.h, g.kh, g.sh, 1, g.pad.top, g.pad.bottom);
  const int64_t ow = ops::window_out(g.w, g.kw, g.sw, 1, g.pad.left, g.pad.right);
  if (oh <= 0 || ow <= 0) {
    throw ShapeError(fmt::format(
        "{}: input {} is too small for pool_size ({}, {}) with padding '{}' (output would be "
        "{}x{})",
        where(), sample.keras_str(), g.kh, g.kw, padding_name(o_.padding), std::max<int64_t>(oh, 0),
        std::max<int64_t>(ow, 0)));
  }
  try {
    g.finish();
  } catch (const ShapeError& e) {
    throw ShapeError(fmt::format("{}: input {}: {}", where(), sample.keras_str(), e.what()));
  }
  return g;
}

Shape Pooling2D::infer(const std::vector<Shape>& inputs) const {
  ops::PoolGeom g = geometry(1, inputs[0]);
  return Shape{g.oh, g.ow, g.c};
}

Tensor Pooling2D::forward(const std::vector<Tensor>& inputs, Mode mode) {
  const Tensor& x = inputs[0];
  if (x.rank() != 4) {
    throw ShapeError(
        fmt::format("{}: expects a batch (N, H, W, C), got {}", where(), x.shape().str()));
  }
  ops::PoolGeom g = geometry(x.shape()[0], x.shape().drop_front());
  Tensor workspace;
  Tensor y = ops::pool_forward(x, g, workspace);
  if (mode == Mode::Training) {
    x_ = x;
    workspace_ = workspace;
    g_ = g;
  }
  return y;
}

std::vector<Tensor> Pooling2D::backward(const Tensor& dy, const std::vector<bool>& need_dx) {
  require_saved(x_.defined(), where());
  std::vector<Tensor> dx(1);
  if (needs_dx(need_dx, 0)) dx[0] = ops::pool_backward(dy, x_, workspace_, g_);
  return dx;
}

void Pooling2D::clear_saved() {
  x_ = Tensor();
  workspace_ = Tensor();
}

}  // namespace resnet::layers

namespace resnet::layers {

Config Pooling2D::config() const {
  Config c = Layer::config();
  return c.set("pool_size", std::vector<int64_t>{o_.pool_size[0], o_.pool_size[1]})
      .set("padding", padding_name(o_.padding))
      .set("strides", std::vector<int64_t>{o_.strides[0], o_.strides[1]})
      .set("data_format", "channels_last");
}

Pool2DOptions pool_options_from_config(const Config& c) {
  require_channels_last(c);
  Pool2DOptions o;
  o.pool_size = config_pair(c, "pool_size", o.pool_size);
  o.strides = config_pair(c, "strides", o.strides);  // absent or null: the pool size
  o.padding = config_padding(c);
  o.name = config_name(c);
  return o;
}

}  // namespace resnet::layers
