// The deeplearning.ai tutorial's ResNet-50 (KERAS.md §1), layer for layer.
#include <fmt/format.h>

#include "resnet/models.h"

namespace resnet {

Model resnet50_tutorial(Shape input_shape, int64_t classes) {
  SymTensor input = Input(std::move(input_shape));
  SymTensor x = ZeroPadding2D({.padding = {3, 3, 3, 3}})(input);
  x = Conv2D({.filters = 64,
              .kernel = {7, 7},
              .strides = {2, 2},
              .kernel_initializer = Initializer::glorot_uniform(0),
              .name = "conv1"})(x);
  x = BatchNormalization({.axis = 3, .name = "bn_conv1"})(x);
  x = Activation("relu")(x);
  x = MaxPooling2D({.pool_size = {3, 3}, .strides = {2, 2}})(x);

  x = convolutional_block(x, 3, {64, 64, 256}, 2, "a", 1);
  x = identity_block(x, 3, {64, 64, 256}, 2, "b");
  x = identity_block(x, 3, {64, 64, 256}, 2, "c");

  x = convolutional_block(x, 3, {128, 128, 512}, 3, "a", 2);
  for (const char* b : {"b", "c", "d"}) x = identity_block(x, 3, {128, 128, 512}, 3, b);

  x = convolutional_block(x, 3, {256, 256, 1024}, 4, "a", 2);
  for (const char* b : {"b", "c", "d", "e", "f"}) x = identity_block(x, 3, {256, 256, 1024}, 4, b);

  x = convolutional_block(x, 3, {512, 512, 2048}, 5, "a", 2);
  x = identity_block(x, 3, {512, 512, 2048}, 5, "b");
  x = identity_block(x, 3, {512, 512, 2048}, 5, "c");

  x = AveragePooling2D({.pool_size = {2, 2}, .name = "avg_pool"})(x);
  x = Flatten()(x);
  x = Dense({.units = classes,
             .activation = "softmax",
             .kernel_initializer = Initializer::glorot_uniform(0),
             .name = fmt::format("fc{}", classes)})(x);
  return Model(input, x, "ResNet50");
}

}  // namespace resnet
