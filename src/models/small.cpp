// ResNet-18/34 (torchvision's ImageNet layout) and the CIFAR ResNets of He et al. 2015 / 2016.
#include <fmt/format.h>

#include "resnet/models.h"

namespace resnet {

namespace {
// PyTorch's BatchNorm2d defaults, in Keras terms: eps 1e-5, momentum 1 - 0.1.
SymTensor torch_bn(const SymTensor& x, const std::string& name) {
  return BatchNormalization({.axis = 3, .momentum = 0.9, .epsilon = 1e-5, .name = name})(x);
}

SymTensor conv(const SymTensor& x, int64_t filters, int64_t k, int64_t stride, Padding padding,
               const std::string& name) {
  return Conv2D({.filters = filters,
                 .kernel = {k, k},
                 .strides = {stride, stride},
                 .padding = padding,
                 .use_bias = false,
                 .kernel_initializer = Initializer::he_normal(),
                 .name = name})(x);
}

// torchvision's ImageNet ResNet frame: the 7x7 stem and max pool, four stages of `block`
// (64, 128, 256, 512 wide; stride 2 on the first block of stages 3-5), average pool, Dense head.
using Block = SymTensor (*)(const SymTensor&, int64_t, int64_t, const std::string&);
Model torchvision_frame(Shape input_shape, int64_t classes, const std::array<int, 4>& blocks,
                        const std::string& name, Block block) {
  if (input_shape.rank() != 3 || input_shape[0] < 32 || input_shape[1] < 32) {
    throw ConfigError(fmt::format("{}: input_shape must be (H, W, C) with H, W >= 32, got {}", name,
                                  input_shape.str()));
  }
  SymTensor input = Input(std::move(input_shape));
  SymTensor x = ZeroPadding2D({.padding = {3, 3, 3, 3}, .name = "conv1_pad"})(input);
  x = conv(x, 64, 7, 2, Padding::Valid, "conv1_conv");
  x = torch_bn(x, "conv1_bn");
  x = Activation("relu", "conv1_relu")(x);
  // Zero padding before the max pool equals PyTorch's -inf padding here: inputs are >= 0.
  x = ZeroPadding2D({.padding = {1, 1, 1, 1}, .name = "pool1_pad"})(x);
  x = MaxPooling2D({.pool_size = {3, 3}, .strides = {2, 2}, .name = "pool1_pool"})(x);
  const std::array<int64_t, 4> filters = {64, 128, 256, 512};
  for (int s = 0; s < 4; ++s) {
    for (int b = 1; b <= blocks[s]; ++b) {
      const int64_t stride = (s > 0 && b == 1) ? 2 : 1;
      x = block(x, filters[s], stride, fmt::format("conv{}_block{}", s + 2, b));
    }
  }
  x = GlobalAveragePooling2D({.name = "avg_pool"})(x);
  x = Dense({.units = classes, .activation = "softmax", .name = "predictions"})(x);
  return Model(input, x, name);
}

SymTensor basic_block_b(const SymTensor& x, int64_t filters, int64_t stride,
                        const std::string& name) {
  return basic_block(x, filters, stride, name);
}
}  // namespace

SymTensor option_a_shortcut(const SymTensor& x, int64_t filters, int64_t stride,
                            const std::string& name) {
  const int64_t in_channels = x.shape()[-1];
  if ((filters - in_channels) % 2 != 0 || filters < in_channels) {
    throw ConfigError(
        fmt::format("{}: an option-A shortcut pads {} channels to {}: the difference "
                    "must be even and not negative",
                    name, in_channels, filters));
  }
  SymTensor y = Conv2D({.filters = filters,
                        .kernel = {1, 1},
                        .strides = {stride, stride},
                        .padding = Padding::Valid,
                        .use_bias = false,
                        .kernel_initializer = Initializer::zeros(),
                        .name = name,
                        .trainable = false})(x);
  // kernel[0][0][c][c + pad] = 1: input channel c goes to output channel c + pad, the channels
  // below and above stay zero (PyTorch: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, pad, pad))).
  Tensor& k = y.layer().params()[0].value;
  k.fill(0.0f);
  const int64_t pad = (filters - in_channels) / 2;
  for (int64_t c = 0; c < in_channels; ++c) k.f32()[c * filters + c + pad] = 1.0f;
  k.bump_version();
  return y;
}

SymTensor basic_block(const SymTensor& x, int64_t filters, int64_t stride, const std::string& name,
                      Shortcut shortcut_kind) {
  const int64_t in_channels = x.shape()[-1];
  SymTensor shortcut = x;
  if (stride != 1 || in_channels != filters) {
    if (shortcut_kind == Shortcut::A) {
      shortcut = option_a_shortcut(x, filters, stride, name + "_shortcut_a");
    } else {
      shortcut = conv(x, filters, 1, stride, Padding::Valid, name + "_0_conv");
      shortcut = torch_bn(shortcut, name + "_0_bn");
    }
  }
  // PyTorch pads 3x3 convolutions by 1 on every side. For stride 1 that is Keras 'same'; for
  // stride 2 'same' would pad only bottom/right, so the padding is explicit there.
  SymTensor y = x;
  if (stride != 1) {
    y = ZeroPadding2D({.padding = {1, 1, 1, 1}, .name = name + "_1_pad"})(y);
    y = conv(y, filters, 3, stride, Padding::Valid, name + "_1_conv");
  } else {
    y = conv(y, filters, 3, 1, Padding::Same, name + "_1_conv");
  }
  y = torch_bn(y, name + "_1_bn");
  y = Activation("relu", name + "_1_relu")(y);
  y = conv(y, filters, 3, 1, Padding::Same, name + "_2_conv");
  y = torch_bn(y, name + "_2_bn");
  y = Add({.name = name + "_add"})({shortcut, y});
  return Activation("relu", name + "_out")(y);
}

Model resnet18(Shape input_shape, int64_t classes) {
  return torchvision_frame(std::move(input_shape), classes, {2, 2, 2, 2}, "resnet18",
                           basic_block_b);
}
Model resnet34(Shape input_shape, int64_t classes) {
  return torchvision_frame(std::move(input_shape), classes, {3, 4, 6, 3}, "resnet34",
                           basic_block_b);
}

SymTensor torchvision_bottleneck(const SymTensor& x, int64_t width, int64_t stride,
                                 const std::string& name) {
  const int64_t in_channels = x.shape()[-1];
  const int64_t out_channels = 4 * width;
  SymTensor shortcut = x;
  if (stride != 1 || in_channels != out_channels) {
    shortcut = conv(x, out_channels, 1, stride, Padding::Valid, name + "_0_conv");
    shortcut = torch_bn(shortcut, name + "_0_bn");
  }
  SymTensor y = conv(x, width, 1, 1, Padding::Valid, name + "_1_conv");
  y = torch_bn(y, name + "_1_bn");
  y = Activation("relu", name + "_1_relu")(y);
  // ResNet v1.5: the stride sits on the 3x3 convolution, padded by 1 on every side.
  if (stride != 1) {
    y = ZeroPadding2D({.padding = {1, 1, 1, 1}, .name = name + "_2_pad"})(y);
    y = conv(y, width, 3, stride, Padding::Valid, name + "_2_conv");
  } else {
    y = conv(y, width, 3, 1, Padding::Same, name + "_2_conv");
  }
  y = torch_bn(y, name + "_2_bn");
  y = Activation("relu", name + "_2_relu")(y);
  y = conv(y, out_channels, 1, 1, Padding::Valid, name + "_3_conv");
  y = torch_bn(y, name + "_3_bn");
  y = Add({.name = name + "_add"})({shortcut, y});
  return Activation("relu", name + "_out")(y);
}

Model torchvision_resnet(int depth, Shape input_shape, int64_t classes) {
  std::array<int, 4> blocks;
  if (depth == 50) {
    blocks = {3, 4, 6, 3};
  } else if (depth == 101) {
    blocks = {3, 4, 23, 3};
  } else if (depth == 152) {
    blocks = {3, 8, 36, 3};
  } else {
    throw ConfigError(
        fmt::format("torchvision ResNet depth must be 50, 101 or 152, got {}", depth));
  }
  return torchvision_frame(std::move(input_shape), classes, blocks,
                           fmt::format("resnet{}_torchvision", depth), torchvision_bottleneck);
}

Model cifar_resnet(int depth, Shape input_shape, int64_t classes, Shortcut shortcut) {
  if (depth < 8 || (depth - 2) % 6 != 0) {
    throw ConfigError(
        fmt::format("CIFAR ResNet depth must be 6n + 2 (20, 32, 44, 56, 110, 1202), "
                    "got {}",
                    depth));
  }
  const int n = (depth - 2) / 6;
  SymTensor input = Input(std::move(input_shape));
  SymTensor x = conv(input, 16, 3, 1, Padding::Same, "conv1_conv");
  x = torch_bn(x, "conv1_bn");
  x = Activation("relu", "conv1_relu")(x);
  const std::array<int64_t, 3> filters = {16, 32, 64};
  for (int s = 0; s < 3; ++s) {
    for (int b = 1; b <= n; ++b) {
      const int64_t stride = (s > 0 && b == 1) ? 2 : 1;
      x = basic_block(x, filters[s], stride, fmt::format("conv{}_block{}", s + 2, b), shortcut);
    }
  }
  x = GlobalAveragePooling2D({.name = "avg_pool"})(x);
  x = Dense({.units = classes, .activation = "softmax", .name = "predictions"})(x);
  return Model(input, x, fmt::format("resnet{}", depth));
}

Model preact_resnet(int depth, Shape input_shape, int64_t classes) {
  if (depth < 11 || (depth - 2) % 9 != 0) {
    throw ConfigError(
        fmt::format("pre-activation ResNet depth must be 9n + 2 (164, 1001), got {}", depth));
  }
  const int n = (depth - 2) / 9;
  SymTensor input = Input(std::move(input_shape));
  SymTensor x = conv(input, 16, 3, 1, Padding::Same, "conv1_conv");
  const std::array<int64_t, 3> widths = {16, 32, 64};  // bottleneck width; outputs are 4x
  for (int s = 0; s < 3; ++s) {
    for (int b = 1; b <= n; ++b) {
      const int64_t stride = (s > 0 && b == 1) ? 2 : 1;
      const std::string name = fmt::format("conv{}_block{}", s + 2, b);
      const int64_t w = widths[s];
      SymTensor pre = torch_bn(x, name + "_preact_bn");
      pre = Activation("relu", name + "_preact_relu")(pre);
      SymTensor shortcut = x;
      if (b == 1) shortcut = conv(pre, 4 * w, 1, stride, Padding::Valid, name + "_0_conv");
      SymTensor y = conv(pre, w, 1, 1, Padding::Valid, name + "_1_conv");
      y = torch_bn(y, name + "_1_bn");
      y = Activation("relu", name + "_1_relu")(y);
      y = conv(y, w, 3, stride, Padding::Same, name + "_2_conv");
      y = torch_bn(y, name + "_2_bn");
      y = Activation("relu", name + "_2_relu")(y);
      y = conv(y, 4 * w, 1, 1, Padding::Valid, name + "_3_conv");
      x = Add({.name = name + "_out"})({shortcut, y});
    }
  }
  x = torch_bn(x, "post_bn");
  x = Activation("relu", "post_relu")(x);
  x = GlobalAveragePooling2D({.name = "avg_pool"})(x);
  x = Dense({.units = classes, .activation = "softmax", .name = "predictions"})(x);
  return Model(input, x, fmt::format("preact_resnet{}", depth));
}

}  // namespace resnet
