// Layer base: naming, connecting, parameter bookkeeping.
#include <gtest/gtest.h>

#include "layers/add.h"
#include "layers/batch_normalization.h"
#include "layers/conv2d.h"
#include "layers/dense.h"
#include "layers/input_layer.h"
#include "resnet/layers.h"

namespace resnet {
namespace {

// The exact message of the exception `stmt` throws, as type `E`.
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("wrong exception type: ") + e.what();
  }
  return "no exception";
}

TEST(LayersNaming, KerasAutomaticNames) {
  reset_name_counters();
  EXPECT_EQ(Conv2D({.filters = 1}).layer().name(), "conv2d");
  EXPECT_EQ(Conv2D({.filters = 1}).layer().name(), "conv2d_1");
  EXPECT_EQ(Conv2D({.filters = 1, .name = "mine"}).layer().name(), "mine");
  EXPECT_EQ(Conv2D({.filters = 1}).layer().name(), "conv2d_2");
  EXPECT_EQ(BatchNormalization().layer().name(), "batch_normalization");
  EXPECT_EQ(Activation("relu").layer().name(), "activation");
  EXPECT_EQ(ReLU().layer().name(), "re_lu");
  EXPECT_EQ(Add().layer().name(), "add");
  EXPECT_EQ(MaxPooling2D().layer().name(), "max_pooling2d");
  EXPECT_EQ(AveragePooling2D().layer().name(), "average_pooling2d");
  EXPECT_EQ(GlobalAveragePooling2D().layer().name(), "global_average_pooling2d");
  EXPECT_EQ(GlobalMaxPooling2D().layer().name(), "global_max_pooling2d");
  EXPECT_EQ(ZeroPadding2D().layer().name(), "zero_padding2d");
  EXPECT_EQ(Flatten().layer().name(), "flatten");
  EXPECT_EQ(Dense({.units = 2}).layer().name(), "dense");
  EXPECT_EQ(Dropout().layer().name(), "dropout");
  EXPECT_EQ(Activation("relu").layer().name(), "activation_1");
  EXPECT_EQ(Input({2}).layer().name(), "input_1");
  EXPECT_EQ(Input({2}).layer().name(), "input_2");
  EXPECT_EQ(Input({2}, "pixels").layer().name(), "pixels");
  EXPECT_EQ(Input({2}).layer().class_name(), "InputLayer");
  reset_name_counters();
  EXPECT_EQ(Conv2D({.filters = 1}).layer().name(), "conv2d");
  EXPECT_EQ(Input({2}).layer().name(), "input_1");
}

TEST(LayersNaming, UniqueLayerNameIsPerPrefix) {
  reset_name_counters();
  EXPECT_EQ(unique_layer_name("block"), "block");
  EXPECT_EQ(unique_layer_name("other"), "other");
  EXPECT_EQ(unique_layer_name("block"), "block_1");
  EXPECT_EQ(unique_layer_name("block"), "block_2");
}

TEST(LayersBase, InputAndShapeInference) {
  reset_name_counters();
  SymTensor in = Input({64, 64, 3});
  EXPECT_EQ(in.shape(), (Shape{64, 64, 3}));
  EXPECT_TRUE(in.node()->inputs.empty());
  auto pad = ZeroPadding2D({.padding = {3, 3, 3, 3}});
  SymTensor x = pad(in);
  EXPECT_EQ(x.shape(), (Shape{70, 70, 3}));
  EXPECT_EQ(&x.layer(), &pad.layer());
  ASSERT_EQ(x.node()->inputs.size(), 1u);
  EXPECT_EQ(x.node()->inputs[0].node(), in.node());
  x = Conv2D({.filters = 64, .kernel = {7, 7}, .strides = {2, 2}, .name = "conv1"})(x);
  EXPECT_EQ(x.shape(), (Shape{32, 32, 64}));
  x = BatchNormalization({.axis = 3, .name = "bn_conv1"})(x);
  x = Activation("relu")(x);
  x = MaxPooling2D({.pool_size = {3, 3}, .strides = {2, 2}})(x);
  EXPECT_EQ(x.shape(), (Shape{15, 15, 64}));
}

TEST(LayersBase, ParamsAndCounts) {
  reset_name_counters();
  auto conv = Conv2D({.filters = 64, .kernel = {7, 7}, .name = "conv1"});
  EXPECT_FALSE(conv->built());
  conv(Input({70, 70, 3}));
  EXPECT_TRUE(conv->built());
  EXPECT_EQ(conv->count_params(), 9472);  // KERAS.md: conv1 of the tutorial ResNet-50
  EXPECT_EQ(conv->count_trainable_params(), 9472);
  EXPECT_EQ(conv->param("kernel").value.shape(), (Shape{7, 7, 3, 64}));
  EXPECT_FALSE(conv->param("kernel").grad.defined());  // until a backward sets it
  EXPECT_EQ(conv->param("bias").value.shape(), (Shape{64}));
  EXPECT_EQ(message_of<ConfigError>([&] { conv->param("gamma"); }),
            "layer 'conv1' (Conv2D) has no parameter 'gamma'");
  conv->set_trainable(false);
  EXPECT_EQ(conv->count_trainable_params(), 0);
  EXPECT_EQ(conv->count_params(), 9472);

  auto bn = BatchNormalization({.name = "bn"});
  bn(Input({4, 4, 256}));
  EXPECT_EQ(bn->count_params(), 4 * 256);
  EXPECT_EQ(bn->count_trainable_params(), 2 * 256);
  EXPECT_FALSE(bn->param("moving_mean").grad.defined());
  EXPECT_FALSE(bn->param("moving_mean").trainable);
  EXPECT_EQ(bn->params()[0].name, "gamma");
  EXPECT_EQ(bn->params()[3].name, "moving_variance");

  auto fc = Dense({.units = 6, .activation = "softmax", .name = "fc6"});
  fc(Input({2048}));
  EXPECT_EQ(fc->count_params(), 12294);  // KERAS.md: fc6
  auto nobias = Dense({.units = 6, .use_bias = false});
  nobias(Input({10}));
  EXPECT_EQ(nobias->count_params(), 60);
  EXPECT_EQ(nobias->params().size(), 1u);
}

TEST(LayersBase, ConnectErrors) {
  reset_name_counters();
  SymTensor in = Input({8, 8, 4});
  auto conv = Conv2D({.filters = 4, .name = "x"});
  conv(in);
  EXPECT_EQ(message_of<ConfigError>([&] { conv(in); }),
            "layer 'x' is already connected; create a new layer");
  EXPECT_EQ(message_of<ConfigError>([&] { Add({.name = "sum"})(in); }),
            "layer 'sum' (Add): expects at least 2 inputs, got 1");
  EXPECT_EQ(message_of<ConfigError>([&] {
              ReLU({.name = "r"})(std::vector<SymTensor>{in, in});
            }),
            "layer 'r' (ReLU): expects 1 input, got 2");
  EXPECT_EQ(message_of<ConfigError>([&] { ReLU({.name = "r2"})(SymTensor()); }),
            "layer 'r2' (ReLU): input 0 is an undefined symbolic tensor");
  EXPECT_EQ(message_of<ConfigError>([] { Activation("swish", "act"); }),
            "layer 'act' (Activation): unknown activation 'swish' (expected relu, softmax, "
            "sigmoid, tanh or linear)");
  EXPECT_EQ(
      message_of<ConfigError>([] { Conv2D({.filters = 2, .activation = "gelu", .name = "c"}); }),
      "layer 'c' (Conv2D): unknown activation 'gelu' (expected relu, softmax, sigmoid, tanh "
      "or linear)");
  EXPECT_THROW(Conv2D({.filters = 0}), ConfigError);
  EXPECT_THROW(Dense({.units = 0}), ConfigError);
  EXPECT_THROW(Conv2D({.filters = 1, .strides = {0, 1}}), ConfigError);
}

TEST(LayersBase, ShapeErrorsNameLayersAndShapes) {
  reset_name_counters();
  SymTensor in = Input({15, 15, 256});
  EXPECT_EQ(message_of<ShapeError>([&] {
              Conv2D({.filters = 512, .kernel = {16, 16}, .name = "res3a_branch1"})(in);
            }),
            "layer 'res3a_branch1' (Conv2D): input (None, 15, 15, 256) is too small for kernel "
            "(16, 16) with dilation (1, 1) and padding 'valid' (output would be 0x0)");
  // 'same' padding never shrinks below 1.
  EXPECT_EQ(Conv2D({.filters = 2, .kernel = {16, 16}, .padding = Padding::Same})(in).shape(),
            (Shape{15, 15, 2}));

  SymTensor a = Conv2D({.filters = 8, .kernel = {1, 1}, .name = "bn3a_branch2c"})(in);
  SymTensor b =
      Conv2D({.filters = 8, .kernel = {1, 1}, .strides = {2, 2}, .name = "bn3a_branch1"})(in);
  EXPECT_EQ(message_of<ShapeError>([&] {
              Add({.name = "add_3"})({a, b});
            }),
            "layer 'add_3' (Add): inputs must have identical shapes, got (None, 15, 15, 8) and "
            "(None, 8, 8, 8); inputs from layer 'bn3a_branch2c' (None, 15, 15, 8), layer "
            "'bn3a_branch1' (None, 8, 8, 8)");
  SymTensor c = Conv2D({.filters = 8, .kernel = {1, 1}})(in);
  EXPECT_EQ(Add()({a, c}).shape(), (Shape{15, 15, 8}));

  EXPECT_EQ(message_of<ShapeError>([&] { Dense({.units = 6, .name = "fc6"})(in); }),
            "layer 'fc6' (Dense): expects flat input (None, features), got (None, 15, 15, 256); "
            "add a Flatten() (or a global pooling) layer before it");
  EXPECT_EQ(message_of<ShapeError>([&] {
              MaxPooling2D({.pool_size = {16, 16}, .name = "p"})(in);
            }),
            "layer 'p' (MaxPooling2D): input (None, 15, 15, 256) is too small for pool_size "
            "(16, 16) with padding 'valid' (output would be 0x0)");
  SymTensor flat = Input({10});
  EXPECT_EQ(message_of<ShapeError>([&] { Conv2D({.filters = 1, .name = "c2"})(flat); }),
            "layer 'c2' (Conv2D): expects input (None, H, W, C), got (None, 10)");
  EXPECT_EQ(message_of<ConfigError>([&] { BatchNormalization({.axis = 1, .name = "bn"})(in); }),
            "layer 'bn' (BatchNormalization): only the last (channel) axis is supported: axis -1 "
            "or 3 for input (None, 15, 15, 256), got 1");
}

TEST(LayersBase, InputLayerForwardChecksShape) {
  reset_name_counters();
  SymTensor in = Input({4, 4, 3});
  Layer& l = in.layer();
  Tensor x(Shape{2, 4, 4, 3});
  EXPECT_TRUE(l.forward({x}, Mode::Inference).shares_storage(x));
  EXPECT_EQ(
      message_of<ShapeError>([&] {
        l.forward({Tensor(Shape{2, 5, 4, 3})}, Mode::Inference);
      }),
      "layer 'input_1' (InputLayer): expects a batch of shape (None, 4, 4, 3), got (2, 5, 4, 3)");
}

TEST(LayersBase, SymTensorOfUndefined) {
  SymTensor s;
  EXPECT_FALSE(s.defined());
  EXPECT_THROW(s.shape(), ConfigError);
}

}  // namespace
}  // namespace resnet
