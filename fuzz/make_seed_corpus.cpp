// Writes the seed corpus of the fuzz targets into a folder: small Keras .h5 model files (compiled
// and trained, so they hold training_config and optimizer_weights; uncompiled; SGD), a
// save_weights file and a .rnw file, from resnet.cpp's own writers.
//   fuzz_make_seed_corpus DIR
#include <cstdio>
#include <filesystem>
#include <string>

#include "resnet/io.h"
#include "resnet/model.h"

using namespace resnet;

namespace {

Model tiny(uint64_t seed) {
  set_global_seed(seed);
  reset_name_counters();
  SymTensor in = Input({6, 6, 2});
  SymTensor x = ZeroPadding2D({.padding = {1, 1, 1, 1}})(in);
  SymTensor a = Conv2D({.filters = 3, .kernel = {3, 3}})(x);
  a = BatchNormalization()(a);
  a = ReLU()(a);
  SymTensor b = Conv2D({.filters = 3, .kernel = {1, 1}, .padding = Padding::Same})(a);
  SymTensor y = Add()({a, b});
  y = MaxPooling2D({.pool_size = {2, 2}})(y);
  y = Flatten()(y);
  y = Dropout({.rate = 0.25})(y);
  y = Dense({.units = 2, .activation = "softmax"})(y);
  return Model(in, y, "seed_model");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  Tensor x = Tensor::full({4, 6, 6, 2}, 0.5f);
  Tensor y({4}, DType::I64);
  for (int i = 0; i < 4; ++i) y.data<int64_t>()[i] = i % 2;

  Model plain = tiny(1);
  save_model(plain, (dir / "uncompiled.h5").string(), true, {{"preprocess", "rescale"}});
  Model adam = tiny(2);
  adam.compile({.optimizer = Adam(), .loss = "sparse_categorical_crossentropy"});
  adam.train_step(x, y);
  save_model(adam, (dir / "adam.h5").string(), true,
             {{"zoo_model", "none"}, {"class_names", "a\nb"}, {"epoch", "1"}});
  Model sgd = tiny(3);
  sgd.compile({.optimizer = SGD({.momentum = 0.9}), .loss = "sparse_categorical_crossentropy"});
  sgd.train_step(x, y);
  save_model(sgd, (dir / "sgd.h5").string());
  save_weights(adam, (dir / "weights.h5").string());
  save_weights(adam, (dir / "weights.rnw").string(), {{"epoch", "1"}}, true);
  std::printf("seed corpus written to %s\n", dir.c_str());
  return 0;
}
