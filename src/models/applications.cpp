// keras.applications ResNet V1 and V2 (keras/applications/resnet.py, resnet_v2.py): the same
// layers, names, order and defaults, so parameter counts and weight files line up with Keras.
#include <fmt/format.h>

#include "resnet/models.h"

namespace resnet {

namespace {
constexpr double kBnEpsilon = 1.001e-5;  // every BatchNormalization of keras.applications ResNets

SymTensor bn(const SymTensor& x, const std::string& name) {
  return BatchNormalization({.axis = 3, .epsilon = kBnEpsilon, .name = name})(x);
}

SymTensor stack1(SymTensor x, int64_t filters, int blocks, int64_t stride1,
                 const std::string& name) {
  x = bottleneck_block(x, filters, 3, stride1, true, name + "_block1");
  for (int i = 2; i <= blocks; ++i) {
    x = bottleneck_block(x, filters, 3, 1, false, fmt::format("{}_block{}", name, i));
  }
  return x;
}

SymTensor stack2(SymTensor x, int64_t filters, int blocks, int64_t stride1,
                 const std::string& name) {
  x = preact_bottleneck_block(x, filters, 3, 1, true, name + "_block1");
  for (int i = 2; i < blocks; ++i) {
    x = preact_bottleneck_block(x, filters, 3, 1, false, fmt::format("{}_block{}", name, i));
  }
  return preact_bottleneck_block(x, filters, 3, stride1, false,
                                 fmt::format("{}_block{}", name, blocks));
}

// The common frame of keras.applications.resnet.ResNet: stem, stacks, optional top.
Model resnet_frame(const ApplicationOptions& o, bool preact, const std::array<int, 4>& blocks,
                   const std::string& model_name) {
  if (o.input_shape.rank() != 3 || o.input_shape[0] < 32 || o.input_shape[1] < 32) {
    throw ConfigError(fmt::format("{}: input_shape must be (H, W, C) with H, W >= 32, got {}",
                                  model_name, o.input_shape.str()));
  }
  if (!o.include_top && !o.pooling.empty() && o.pooling != "avg" && o.pooling != "max") {
    throw ConfigError(
        fmt::format("{}: pooling must be '', 'avg' or 'max', got '{}'", model_name, o.pooling));
  }
  SymTensor input = Input(o.input_shape);
  SymTensor x = ZeroPadding2D({.padding = {3, 3, 3, 3}, .name = "conv1_pad"})(input);
  x = Conv2D({.filters = 64, .kernel = {7, 7}, .strides = {2, 2}, .name = "conv1_conv"})(x);
  if (!preact) {
    x = bn(x, "conv1_bn");
    x = Activation("relu", "conv1_relu")(x);
  }
  x = ZeroPadding2D({.padding = {1, 1, 1, 1}, .name = "pool1_pad"})(x);
  x = MaxPooling2D({.pool_size = {3, 3}, .strides = {2, 2}, .name = "pool1_pool"})(x);
  const std::array<int64_t, 4> filters = {64, 128, 256, 512};
  for (int s = 0; s < 4; ++s) {
    const std::string name = fmt::format("conv{}", s + 2);
    if (preact) {
      x = stack2(x, filters[s], blocks[s], s == 3 ? 1 : 2, name);
    } else {
      x = stack1(x, filters[s], blocks[s], s == 0 ? 1 : 2, name);
    }
  }
  if (preact) {
    x = bn(x, "post_bn");
    x = Activation("relu", "post_relu")(x);
  }
  if (o.include_top) {
    x = GlobalAveragePooling2D({.name = "avg_pool"})(x);
    x = Dense({.units = o.classes, .activation = o.classifier_activation, .name = "predictions"})(
        x);
  } else if (o.pooling == "avg") {
    x = GlobalAveragePooling2D({.name = "avg_pool"})(x);
  } else if (o.pooling == "max") {
    x = GlobalMaxPooling2D({.name = "max_pool"})(x);
  }
  return Model(input, x, model_name);
}
}  // namespace

SymTensor bottleneck_block(const SymTensor& x, int64_t filters, int64_t kernel, int64_t stride,
                           bool conv_shortcut, const std::string& name) {
  SymTensor shortcut = x;
  if (conv_shortcut) {
    shortcut = Conv2D({.filters = 4 * filters,
                       .kernel = {1, 1},
                       .strides = {stride, stride},
                       .name = name + "_0_conv"})(x);
    shortcut = bn(shortcut, name + "_0_bn");
  }
  SymTensor y = Conv2D({.filters = filters,
                        .kernel = {1, 1},
                        .strides = {stride, stride},
                        .name = name + "_1_conv"})(x);
  y = bn(y, name + "_1_bn");
  y = Activation("relu", name + "_1_relu")(y);
  y = Conv2D({.filters = filters,
              .kernel = {kernel, kernel},
              .padding = Padding::Same,
              .name = name + "_2_conv"})(y);
  y = bn(y, name + "_2_bn");
  y = Activation("relu", name + "_2_relu")(y);
  y = Conv2D({.filters = 4 * filters, .kernel = {1, 1}, .name = name + "_3_conv"})(y);
  y = bn(y, name + "_3_bn");
  y = Add({.name = name + "_add"})({shortcut, y});
  return Activation("relu", name + "_out")(y);
}

SymTensor preact_bottleneck_block(const SymTensor& x, int64_t filters, int64_t kernel,
                                  int64_t stride, bool conv_shortcut, const std::string& name) {
  SymTensor preact = bn(x, name + "_preact_bn");
  preact = Activation("relu", name + "_preact_relu")(preact);
  SymTensor shortcut = x;
  if (conv_shortcut) {
    shortcut = Conv2D({.filters = 4 * filters,
                       .kernel = {1, 1},
                       .strides = {stride, stride},
                       .name = name + "_0_conv"})(preact);
  } else if (stride > 1) {
    shortcut = MaxPooling2D({.pool_size = {1, 1}, .strides = {stride, stride}})(x);
  }
  SymTensor y = Conv2D(
      {.filters = filters, .kernel = {1, 1}, .use_bias = false, .name = name + "_1_conv"})(preact);
  y = bn(y, name + "_1_bn");
  y = Activation("relu", name + "_1_relu")(y);
  y = ZeroPadding2D({.padding = {1, 1, 1, 1}, .name = name + "_2_pad"})(y);
  y = Conv2D({.filters = filters,
              .kernel = {kernel, kernel},
              .strides = {stride, stride},
              .use_bias = false,
              .name = name + "_2_conv"})(y);
  y = bn(y, name + "_2_bn");
  y = Activation("relu", name + "_2_relu")(y);
  y = Conv2D({.filters = 4 * filters, .kernel = {1, 1}, .name = name + "_3_conv"})(y);
  return Add({.name = name + "_out"})({shortcut, y});
}

Model ResNet50(const ApplicationOptions& o) {
  return resnet_frame(o, false, {3, 4, 6, 3}, "resnet50");
}
Model ResNet101(const ApplicationOptions& o) {
  return resnet_frame(o, false, {3, 4, 23, 3}, "resnet101");
}
Model ResNet152(const ApplicationOptions& o) {
  return resnet_frame(o, false, {3, 8, 36, 3}, "resnet152");
}
Model ResNet50V2(const ApplicationOptions& o) {
  return resnet_frame(o, true, {3, 4, 6, 3}, "resnet50v2");
}
Model ResNet101V2(const ApplicationOptions& o) {
  return resnet_frame(o, true, {3, 4, 23, 3}, "resnet101v2");
}
Model ResNet152V2(const ApplicationOptions& o) {
  return resnet_frame(o, true, {3, 8, 36, 3}, "resnet152v2");
}

}  // namespace resnet
