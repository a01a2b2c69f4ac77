// Fuzz target: the CIFAR-10 binary batch loader (load_cifar10_bin), on one file and on the same
// file twice. Any input must load or throw resnet::Error. Seeds: fuzz_make_seed_corpus DIR
// writes DIR/cifar/.
#include <cstdint>

#include "fuzz_common.h"
#include "resnet/data.h"
#include "resnet/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = (resnet_fuzz::work_dir() / "data_batch_1.bin").string();
  if (!resnet_fuzz::write_file(path, data, size)) return 0;
  try {
    (void)resnet::load_cifar10_bin({path}).size();
  } catch (const resnet::Error&) {
  }
  try {
    (void)resnet::load_cifar10_bin({path, path}).size();
  } catch (const resnet::Error&) {
  }
  return 0;
}
