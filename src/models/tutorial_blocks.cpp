// The blocks of the deeplearning.ai ResNet-50 (Keras 2 notebook), layer for layer:
// every Conv2D uses glorot_uniform(seed=0), every BatchNormalization axis 3 with Keras defaults.
#include <fmt/format.h>

#include "resnet/models.h"

namespace resnet {

namespace {
SymTensor conv_bn(const SymTensor& x, int64_t filters, int64_t k, int64_t stride, Padding padding,
                  const std::string& conv_name, const std::string& bn_name) {
  SymTensor y = Conv2D({.filters = filters,
                        .kernel = {k, k},
                        .strides = {stride, stride},
                        .padding = padding,
                        .kernel_initializer = Initializer::glorot_uniform(0),
                        .name = conv_name})(x);
  return BatchNormalization({.axis = 3, .name = bn_name})(y);
}
}  // namespace

SymTensor identity_block(const SymTensor& x, int64_t f, std::array<int64_t, 3> filters, int stage,
                         const std::string& block) {
  const std::string conv = fmt::format("res{}{}_branch", stage, block);
  const std::string bn = fmt::format("bn{}{}_branch", stage, block);
  SymTensor y = conv_bn(x, filters[0], 1, 1, Padding::Valid, conv + "2a", bn + "2a");
  y = Activation("relu")(y);
  y = conv_bn(y, filters[1], f, 1, Padding::Same, conv + "2b", bn + "2b");
  y = Activation("relu")(y);
  y = conv_bn(y, filters[2], 1, 1, Padding::Valid, conv + "2c", bn + "2c");
  y = Add()({y, x});
  return Activation("relu")(y);
}

SymTensor convolutional_block(const SymTensor& x, int64_t f, std::array<int64_t, 3> filters,
                              int stage, const std::string& block, int64_t s) {
  const std::string conv = fmt::format("res{}{}_branch", stage, block);
  const std::string bn = fmt::format("bn{}{}_branch", stage, block);
  SymTensor y = conv_bn(x, filters[0], 1, s, Padding::Valid, conv + "2a", bn + "2a");
  y = Activation("relu")(y);
  y = conv_bn(y, filters[1], f, 1, Padding::Same, conv + "2b", bn + "2b");
  y = Activation("relu")(y);
  y = conv_bn(y, filters[2], 1, 1, Padding::Valid, conv + "2c", bn + "2c");
  SymTensor shortcut = conv_bn(x, filters[2], 1, s, Padding::Valid, conv + "1", bn + "1");
  y = Add()({y, shortcut});
  return Activation("relu")(y);
}

}  // namespace resnet
