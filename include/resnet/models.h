// Model zoo: the residual blocks of the deeplearning.ai tutorial and the ResNet builders.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "resnet/layers.h"
#include "resnet/model.h"

namespace resnet {

// The tutorial's identity block: three convolutions (1x1, f x f 'same', 1x1) with batch norm,
// the input added unchanged before the last ReLU. `filters` = {F1, F2, F3}; the input must have F3
// channels. Layer names: res{stage}{block}_branch2a/2b/2c and bn{stage}{block}_branch2a/2b/2c.
SymTensor identity_block(const SymTensor& x, int64_t f, std::array<int64_t, 3> filters, int stage,
                         const std::string& block);

// The tutorial's convolutional block: like the identity block, with stride `s` on the first 1x1
// convolution and a 1x1 convolution + batch norm (res{stage}{block}_branch1) on the shortcut.
SymTensor convolutional_block(const SymTensor& x, int64_t f, std::array<int64_t, 3> filters,
                              int stage, const std::string& block, int64_t s = 2);

}  // namespace resnet

namespace resnet {

// The deeplearning.ai tutorial's ResNet-50 (model name "ResNet50"): ZeroPadding2D 3, conv1 7x7/2,
// bn_conv1, ReLU, MaxPooling2D 3x3/2, stages 2-5 of tutorial blocks, AveragePooling2D 2x2
// "avg_pool", Flatten, Dense "fc{classes}" softmax. 23,600,006 parameters at 64x64x3, 6 classes.
Model resnet50_tutorial(Shape input_shape = {64, 64, 3}, int64_t classes = 6);

// keras.applications options (defaults as in Keras).
struct ApplicationOptions {
  bool include_top = true;
  Shape input_shape = {224, 224, 3};
  std::string pooling;  // with include_top false: "" (4-D output), "avg" or "max"
  int64_t classes = 1000;
  std::string classifier_activation = "softmax";
};

// keras.applications ResNet V1 (bottleneck blocks, stride on the first 1x1 convolution) and V2
// (pre-activation), with Keras layer names (conv2_block1_1_conv, ...).
Model ResNet50(const ApplicationOptions& o = {});
Model ResNet101(const ApplicationOptions& o = {});
Model ResNet152(const ApplicationOptions& o = {});
Model ResNet50V2(const ApplicationOptions& o = {});
Model ResNet101V2(const ApplicationOptions& o = {});
Model ResNet152V2(const ApplicationOptions& o = {});

// keras.applications bottleneck block (block1) and stack (stack1): `name` like "conv2_block1".
SymTensor bottleneck_block(const SymTensor& x, int64_t filters, int64_t kernel, int64_t stride,
                           bool conv_shortcut, const std::string& name);
// keras.applications pre-activation block (block2).
SymTensor preact_bottleneck_block(const SymTensor& x, int64_t filters, int64_t kernel,
                                  int64_t stride, bool conv_shortcut, const std::string& name);
// The basic block of ResNet-18/34: two 3x3 convolutions without bias (torchvision layout: the
// stride on the first, padded by 1 on every side: 'same' at stride 1, an explicit ZeroPadding2D
// at stride 2), a 1x1 projection when the shape changes.
// The shortcut of a block whose shape changes: B is a 1x1 convolution + batch norm (projection),
// A (He et al. 2015, option A) the parameter-free subsampling of every second row and column with
// the new channels zero-padded on both sides, built as a non-trainable 1x1 stride-2 Conv2D
// "<block>_shortcut_a" with fixed 0/1 weights (the same result, and Keras and ONNX files can hold
// it).
enum class Shortcut { A, B };
SymTensor basic_block(const SymTensor& x, int64_t filters, int64_t stride, const std::string& name,
                      Shortcut shortcut = Shortcut::B);

// ResNet-18/34 in the ImageNet layout of torchvision (11,689,512 / 21,797,672 trainable
// parameters at 1000 classes); BatchNormalization with PyTorch's epsilon 1e-5, momentum 0.9.
Model resnet18(Shape input_shape = {224, 224, 3}, int64_t classes = 1000);
Model resnet34(Shape input_shape = {224, 224, 3}, int64_t classes = 1000);

// torchvision's ResNet-50/101/152 (ResNet v1.5: the stride of each first bottleneck block sits on
// its 3x3 convolution, where keras.applications' v1 puts it on the first 1x1; no convolution
// biases; BatchNormalization with PyTorch's epsilon 1e-5, momentum 0.9), with the layer names of
// keras.applications (conv2_block1_1_conv, ...). 25,557,032 / 44,549,160 / 60,192,808 trainable
// parameters at 1000 classes, as torchvision counts them. Model name "resnet<depth>_torchvision";
// depth 50, 101 or 152, else ConfigError.
SymTensor torchvision_bottleneck(const SymTensor& x, int64_t width, int64_t stride,
                                 const std::string& name);
Model torchvision_resnet(int depth, Shape input_shape = {224, 224, 3}, int64_t classes = 1000);

// CIFAR ResNets of He et al. 2015: depth = 6n + 2 (20, 32, 44, 56, 110, 1202), 16/32/64 filters,
// basic blocks, projection shortcuts (option B: 1x1 convolution + batch norm) where the shape
// changes, or the paper's parameter-free option A (Shortcut::A). Throws ConfigError when depth is
// not 6n + 2.
Model cifar_resnet(int depth, Shape input_shape = {32, 32, 3}, int64_t classes = 10,
                   Shortcut shortcut = Shortcut::B);
// Pre-activation bottleneck ResNets of He et al. 2016 for CIFAR: depth = 9n + 2 (164, 1001).
Model preact_resnet(int depth, Shape input_shape = {32, 32, 3}, int64_t classes = 10);

// Every zoo model by its CLI name: resnet50-tutorial, resnet50, resnet101, resnet152, resnet50v2,
// resnet101v2, resnet152v2, resnet18, resnet34, resnet50-torchvision, resnet101-torchvision,
// resnet152-torchvision, resnet20 ... resnet1202, preact-resnet164, preact-resnet1001.
// `input_shape`/`classes` of 0 rank / 0 take the model's defaults.
// `shortcut` A is for the CIFAR ResNets only (ConfigError otherwise).
Model build_model(const std::string& name, const Shape& input_shape = {}, int64_t classes = 0,
                  Shortcut shortcut = Shortcut::B);
std::vector<std::string> model_names();
// The smallest input each model accepts (for tests and help texts).
Shape min_input_shape(const std::string& name);

}  // namespace resnet
