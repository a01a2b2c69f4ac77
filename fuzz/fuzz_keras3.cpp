// Fuzz target: the Keras 3 .keras loader (the zip container, metadata.json and config.json, the
// weights member through the HDF5 pre-flight, compile_config and the optimizer state), then
// read_model_attributes. Any input must load or throw resnet::Error; anything else (a crash, a
// hang, another exception, a sanitizer report) is a finding. Seeds: fuzz_make_seed_corpus DIR
// writes DIR/keras3/.
#include <cstdint>
#include <string>

#include "fuzz_common.h"
#include "resnet/error.h"
#include "resnet/io.h"
#include "resnet/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = (resnet_fuzz::work_dir() / "model.keras").string();
  if (!resnet_fuzz::write_file(path, data, size)) return 0;
  try {
    resnet::Model m = resnet::load_model(path, /*compile=*/true);
    (void)m.count_params();
    (void)resnet::read_model_attributes(path);
  } catch (const resnet::Error&) {
  }
  return 0;
}
