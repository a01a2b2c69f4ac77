#include "layers/conv2d.h"

#include <fmt/format.h>

#include <algorithm>

#include "layers/config_json.h"
#include "layers/layer_util.h"

namespace resnet::layers {

Conv2D::Conv2D(Conv2DOptions o)
    : Layer("Conv2D", o.name), o_(std::move(o)), act_(parse_activation(o_.activation, where())) {
  if (o_.filters <= 0) {
    throw ConfigError(fmt::format("{}: filters must be positive, got {}", where(), o_.filters));
  }
  for (int64_t v :
       {o_.kernel[0], o_.kernel[1], o_.strides[0], o_.strides[1], o_.dilation[0], o_.dilation[1]}) {
    if (v <= 0) {
      throw ConfigError(fmt::format(
          "{}: kernel, strides and dilation must be positive, got kernel ({}, {}), strides ({}, "
          "{}), dilation ({}, {})",
          where(), o_.kernel[0], o_.kernel[1], o_.strides[0], o_.strides[1], o_.dilation[0],
          o_.dilation[1]));
    }
  }
  trainable_ = o_.trainable;
}

ops::ConvGeom Conv2D::geometry(int64_t n, const Shape& sample) const {
  require_rank3(sample, where());
  ops::ConvGeom g;
  g.n = n;
  g.h = sample[0];
  g.w = sample[1];
  g.c = sample[2];
  g.kh = o_.kernel[0];
  g.kw = o_.kernel[1];
  g.f = o_.filters;
  g.sh = o_.strides[0];
  g.sw = o_.strides[1];
  g.dh = o_.dilation[0];
  g.dw = o_.dilation[1];
  if (o_.padding == Padding::Same) {
    auto [t, b] = ops::same_padding(g.h, g.kh, g.sh, g.dh);
    auto [l, r] = ops::same_padding(g.w, g.kw, g.sw, g.dw);
    g.pad = {t, b, l, r};
  }
  // Checked here, before ops' own check, so the message names the layer and the Keras shape.
  const int64_t oh = ops::window_out(g.h, g.kh, g.sh, g.dh, g.pad.top, g.pad.bottom);
  const int64_t ow = ops::window_out(g.w, g.kw, g.sw, g.dw, g.pad.left, g.pad.right);
  if (oh <= 0 || ow <= 0) {
    throw ShapeError(fmt::format(
        "{}: input {} is too small for kernel ({}, {}) with dilation ({}, {}) and padding '{}' "
        "(output would be {}x{})",
        where(), sample.keras_str(), g.kh, g.kw, g.dh, g.dw, padding_name(o_.padding),
        std::max<int64_t>(oh, 0), std::max<int64_t>(ow, 0)));
  }
  try {
    g.finish();
  } catch (const ShapeError& e) {
    throw ShapeError(fmt::format("{}: input {}: {}", where(), sample.keras_str(), e.what()));
  }
  return g;
}

Shape Conv2D::infer(const std::vector<Shape>& inputs) const {
  ops::ConvGeom g = geometry(1, inputs[0]);
  return Shape{g.oh, g.ow, g.f};
}

void Conv2D::build(const std::vector<Shape>& inputs) {
  const int64_t c = inputs[0][2];
  const int64_t rf = o_.kernel[0] * o_.kernel[1];
  add_param("kernel", Shape{o_.kernel[0], o_.kernel[1], c, o_.filters}, o_.kernel_initializer,
            rf * c, rf * o_.filters, true);
  if (o_.use_bias) add_param("bias", Shape{o_.filters}, o_.bias_initializer, c, o_.filters, true);
}

Tensor Conv2D::forward(const std::vector<Tensor>& inputs, Mode mode) {
  const Tensor& x = inputs[0];
  if (x.rank() != 4) {
    throw ShapeError(
        fmt::format("{}: expects a batch (N, H, W, C), got {}", where(), x.shape().str()));
  }
  ops::ConvGeom g = geometry(x.shape()[0], x.shape().drop_front());
  const Tensor bias = o_.use_bias ? param("bias").value : Tensor();
  Tensor z = ops::conv2d_forward(x, param("kernel").value, bias, g);
  Tensor y = activation_forward(act_, z);
  if (mode == Mode::Training) {
    x_ = x;
    z_ = z;
    y_ = y;
    g_ = g;
  }
  return y;
}

std::vector<Tensor> Conv2D::backward(const Tensor& dy, const std::vector<bool>& need_dx) {
  require_saved(x_.defined(), where());
  Tensor dz = activation_backward(act_, dy, z_, y_);
  std::vector<Tensor> dx(1);
  if (needs_dx(need_dx, 0)) dx[0] = ops::conv2d_backward_data(dz, param("kernel").value, g_);
  if (trainable_) {
    Tensor dw, db;
    ops::conv2d_backward_weights(x_, dz, g_, o_.use_bias, dw, db);
    store_grad(param("kernel"), dw);
    if (o_.use_bias) store_grad(param("bias"), db);
  }
  return dx;
}

void Conv2D::clear_saved() {
  x_ = Tensor();
  z_ = Tensor();
  y_ = Tensor();
}

}  // namespace resnet::layers

namespace resnet {

LayerRef<layers::Conv2D> Conv2D(Conv2DOptions o) {
  return LayerRef<layers::Conv2D>(std::make_shared<layers::Conv2D>(std::move(o)));
}

}  // namespace resnet

namespace resnet::layers {

Config Conv2D::config() const {
  Config c = Layer::config();
  c.set("filters", o_.filters)
      .set("kernel_size", std::vector<int64_t>{o_.kernel[0], o_.kernel[1]})
      .set("strides", std::vector<int64_t>{o_.strides[0], o_.strides[1]})
      .set("padding", padding_name(o_.padding))
      .set("data_format", "channels_last")
      .set("dilation_rate", std::vector<int64_t>{o_.dilation[0], o_.dilation[1]})
      .set("groups", 1);
  kernel_layer_config(c, o_.activation, o_.use_bias, o_.kernel_initializer, o_.bias_initializer);
  return c;
}

std::shared_ptr<Layer> Conv2D::from_config(const Config& c) {
  require_channels_last(c);
  if (c.get_int("groups", 1) != 1) {
    throw ConfigError("grouped convolutions (groups != 1) are not supported");
  }
  Conv2DOptions o;
  o.filters = c.get_int("filters");
  o.kernel = config_pair(c, "kernel_size");
  o.strides = config_pair(c, "strides", o.strides);
  o.padding = config_padding(c);
  o.dilation = config_pair(c, "dilation_rate", o.dilation);
  o.activation = config_activation(c);
  o.use_bias = c.get_bool("use_bias", true);
  o.kernel_initializer = config_initializer(c, "kernel_initializer", o.kernel_initializer);
  o.bias_initializer = config_initializer(c, "bias_initializer", o.bias_initializer);
  o.name = config_name(c);
  o.trainable = config_trainable(c);
  return std::make_shared<Conv2D>(std::move(o));
}

double Conv2D::params_needed(const std::vector<Shape>& inputs) const {
  if (inputs.empty() || inputs[0].rank() == 0) return 0;
  const double per_filter = static_cast<double>(o_.kernel[0]) * static_cast<double>(o_.kernel[1]) *
                                static_cast<double>(inputs[0][-1]) +
                            (o_.use_bias ? 1.0 : 0.0);
  return static_cast<double>(o_.filters) * per_filter;
}

}  // namespace resnet::layers
