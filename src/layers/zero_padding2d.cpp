#include "layers/zero_padding2d.h"

#include <fmt/format.h>

#include "layers/config_json.h"
#include "layers/layer_util.h"

namespace resnet::layers {

ZeroPadding2D::ZeroPadding2D(ZeroPadding2DOptions o)
    : Layer("ZeroPadding2D", o.name), o_(std::move(o)) {
  const auto& p = o_.padding;
  if (p[0] < 0 || p[1] < 0 || p[2] < 0 || p[3] < 0) {
    throw ConfigError(
        fmt::format("{}: padding must be non-negative, got (top {}, bottom {}, left {}, right {})",
                    where(), p[0], p[1], p[2], p[3]));
  }
  pad_ = {p[0], p[1], p[2], p[3]};
}

Shape ZeroPadding2D::infer(const std::vector<Shape>& inputs) const {
  const Shape& s = inputs[0];
  require_rank3(s, where());
  return Shape{s[0] + pad_.top + pad_.bottom, s[1] + pad_.left + pad_.right, s[2]};
}

Tensor ZeroPadding2D::forward(const std::vector<Tensor>& inputs, Mode mode) {
  if (inputs[0].rank() != 4) {
    throw ShapeError(
        fmt::format("{}: expects a batch (N, H, W, C), got {}", where(), inputs[0].shape().str()));
  }
  return ops::zero_pad_forward(inputs[0], pad_);
}

std::vector<Tensor> ZeroPadding2D::backward(const Tensor& dy, const std::vector<bool>& need_dx) {
  std::vector<Tensor> dx(1);
  if (needs_dx(need_dx, 0)) dx[0] = ops::zero_pad_backward(dy, pad_);
  return dx;
}

}  // namespace resnet::layers

namespace resnet {

LayerRef<layers::ZeroPadding2D> ZeroPadding2D(ZeroPadding2DOptions o) {
  return LayerRef<layers::ZeroPadding2D>(std::make_shared<layers::ZeroPadding2D>(std::move(o)));
}

}  // namespace resnet

namespace resnet::layers {

Config ZeroPadding2D::config() const {
  Config c = Layer::config();
  const auto& p = o_.padding;
  ConfigAccess::json(c)["padding"] = {{p[0], p[1]}, {p[2], p[3]}};
  return c.set("data_format", "channels_last");
}

std::shared_ptr<Layer> ZeroPadding2D::from_config(const Config& c) {
  require_channels_last(c);
  ZeroPadding2DOptions o;
  // 1 -> all sides; (h, w) -> symmetric; ((top, bottom), (left, right)).
  const nlohmann::ordered_json& p = ConfigAccess::json(c).at("padding");
  auto integer = [&](const nlohmann::ordered_json& v) {
    if (!v.is_number_integer()) {
      throw ConfigError(fmt::format("unsupported padding {}", p.dump()));
    }
    return v.get<int64_t>();
  };
  if (p.is_number_integer()) {
    const int64_t v = p.get<int64_t>();
    o.padding = {v, v, v, v};
  } else if (p.is_array() && p.size() == 2 && !p[0].is_array()) {
    const int64_t h = integer(p[0]), w = integer(p[1]);
    o.padding = {h, h, w, w};
  } else if (p.is_array() && p.size() == 2 && p[0].is_array() && p[1].is_array() &&
             p[0].size() == 2 && p[1].size() == 2) {
    o.padding = {integer(p[0][0]), integer(p[0][1]), integer(p[1][0]), integer(p[1][1])};
  } else {
    throw ConfigError(fmt::format("unsupported padding {}", p.dump()));
  }
  o.name = config_name(c);
  return std::make_shared<ZeroPadding2D>(std::move(o));
}

}  // namespace resnet::layers
