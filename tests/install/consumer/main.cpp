// Uses the installed resnet.cpp: builds a small model, runs it, checks a zoo model's size.
#include <resnet/model.h>
#include <resnet/models.h>

#include <cmath>
#include <iostream>

int main() {
  using namespace resnet;
  set_global_seed(1);
  SymTensor input = Input({8, 8, 3});
  SymTensor x = Conv2D({.filters = 4, .kernel = {3, 3}, .padding = Padding::Same})(input);
  x = BatchNormalization()(x);
  x = Activation("relu")(x);
  x = GlobalAveragePooling2D()(x);
  x = Dense({.units = 2, .activation = "softmax"})(x);
  Model model(input, x, "consumer");
  Tensor y = model.predict(Tensor::full({3, 8, 8, 3}, 0.5f));
  const double row_sum = y.f32()[0] + y.f32()[1];
  const int64_t zoo = cifar_resnet(20).count_params();
  std::cout << "consumer: " << model.count_params() << " params, softmax row sum " << row_sum
            << ", resnet20 " << zoo << " params\n";
  return model.count_params() == 138 && std::abs(row_sum - 1.0) < 1e-5 && zoo > 250000 &&
                 zoo < 300000
             ? 0
             : 1;
}
