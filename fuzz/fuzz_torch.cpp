// Fuzz target: the PyTorch file reader (zip container, pickle machine, storages, tensors) on the
// bytes of a file, then the mapping of what it read onto a small CIFAR ResNet. Any input must load
// or throw resnet::Error; anything else (a crash, another exception, a sanitizer report, a hang)
// is a finding. Seeds: fuzz_make_seed_corpus DIR writes DIR/torch/.
#include <cstdint>
#include <string>

#include "io/torch/torch_file.h"
#include "resnet/error.h"
#include "resnet/io.h"
#include "resnet/models.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static resnet::Model model = resnet::cifar_resnet(8, {8, 8, 3}, 3);
  try {
    const resnet::TorchStateDict sd = resnet::torch_detail::read_torch_bytes(
        std::string(reinterpret_cast<const char*>(data), size), "fuzz.pth");
    resnet::load_torch_weights(model, sd, {.strict = false});
  } catch (const resnet::Error&) {
  }
  return 0;
}
