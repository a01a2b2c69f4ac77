#include "layers/global_pooling2d.h"

#include <fmt/format.h>

#include "layers/config_json.h"
#include "layers/layer_util.h"

namespace resnet::layers {

GlobalPooling2D::GlobalPooling2D(std::string class_name, ops::PoolKind kind, NamedOptions o)
    : Layer(std::move(class_name), std::move(o.name)), kind_(kind) {}

Shape GlobalPooling2D::infer(const std::vector<Shape>& inputs) const {
  require_rank3(inputs[0], where());
  return Shape{inputs[0][2]};
}

Tensor GlobalPooling2D::forward(const std::vector<Tensor>& inputs, Mode mode) {
  const Tensor& x = inputs[0];
  if (x.rank() != 4) {
    throw ShapeError(
        fmt::format("{}: expects a batch (N, H, W, C), got {}", where(), x.shape().str()));
  }
  ops::PoolGeom g;
  g.kind = kind_;
  g.n = x.shape()[0];
  g.h = x.shape()[1];
  g.w = x.shape()[2];
  g.c = x.shape()[3];
  g.kh = g.h;
  g.kw = g.w;
  g.finish();
  Tensor workspace;
  // (N, 1, 1, C) -> (N, C)
  Tensor y = ops::plain(ops::pool_forward(x, g, workspace)).reshape(Shape{g.n, g.c});
  if (mode == Mode::Training) {
    x_ = x;
    workspace_ = workspace;
    g_ = g;
  }
  return y;
}

std::vector<Tensor> GlobalPooling2D::backward(const Tensor& dy, const std::vector<bool>& need_dx) {
  require_saved(x_.defined(), where());
  std::vector<Tensor> dx(1);
  if (needs_dx(need_dx, 0)) {
    Tensor dy4 = ops::plain(dy).reshape(Shape{g_.n, 1, 1, g_.c});
    dx[0] = ops::pool_backward(dy4, x_, workspace_, g_);
  }
  return dx;
}

void GlobalPooling2D::clear_saved() {
  x_ = Tensor();
  workspace_ = Tensor();
}

}  // namespace resnet::layers

namespace resnet::layers {

Config GlobalPooling2D::config() const {
  return Layer::config().set("data_format", "channels_last");
}

NamedOptions global_pool_options_from_config(const Config& c) {
  require_channels_last(c);
  if (c.get_bool("keepdims", false)) throw ConfigError("keepdims=True is not supported");
  return {.name = config_name(c)};
}

}  // namespace resnet::layers
