// Fuzz target: the Keras .h5 model loader (load_model, read_model_attributes, load_weights by name
// with skip_mismatch). Any input must load or throw resnet::Error; anything else (a crash, a hang,
// another exception, a sanitizer report) is a finding. Seeds: fuzz_make_seed_corpus DIR writes
// DIR/keras_h5/.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "fuzz_common.h"
#include "resnet/error.h"
#include "resnet/io.h"
#include "resnet/model.h"

namespace {

const std::string& input_path() {
  static const std::string path = (resnet_fuzz::work_dir() / "model.h5").string();
  return path;
}

resnet::Model& weights_target() {
  static resnet::Model* m = [] {
    using namespace resnet;
    set_global_seed(1);
    SymTensor in = Input({6, 6, 2}, "input_1");
    SymTensor x = Conv2D({.filters = 3, .padding = Padding::Same, .name = "conv2d"})(in);
    x = BatchNormalization({.name = "batch_normalization"})(x);
    x = Activation("relu", "activation")(x);
    x = GlobalAveragePooling2D({.name = "avg_pool"})(x);
    x = Dense({.units = 2, .activation = "softmax", .name = "dense"})(x);
    return new Model(in, x, "fuzz_target");
  }();
  return *m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = input_path();
  if (!resnet_fuzz::write_file(path, data, size)) return 0;
  try {
    resnet::Model m = resnet::load_model(path, /*compile=*/true);
    (void)m.count_params();
  } catch (const resnet::Error&) {
  }
  try {
    (void)resnet::read_model_attributes(path);
  } catch (const resnet::Error&) {
  }
  try {
    resnet::load_weights(weights_target(), path, {.by_name = true, .skip_mismatch = true});
  } catch (const resnet::Error&) {
  }
  return 0;
}
