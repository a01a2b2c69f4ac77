// Fuzz target: the Keras .h5 model loader (load_model, read_model_attributes, load_weights by name
// with skip_mismatch). Any input must load or throw resnet::Error; anything else (a crash, another
// exception, a sanitizer report) is a finding. Built with RESNET_FUZZ=ON (fuzz/CMakeLists.txt).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "resnet/error.h"
#include "resnet/io.h"
#include "resnet/model.h"

namespace {

// The loader reads files: each input goes to a per-process temporary file.
struct InputFile {
  std::string path = (std::filesystem::temp_directory_path() /
                      ("fuzz_keras_h5_" + std::to_string(::getpid()) + ".h5"))
                         .string();
  ~InputFile() { std::remove(path.c_str()); }
};

const std::string& input_path() {
  static const InputFile file;
  return file.path;
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
  if (FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  } else {
    return 0;
  }
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
