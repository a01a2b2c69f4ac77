// Fuzz target: the ONNX importer (import_onnx on the bytes of a file). Any input must import or
// throw resnet::Error; anything else (a crash, another exception, a sanitizer report) is a
// finding. A model that imports is run once on a small input. Built with RESNET_FUZZ=ON
// (fuzz/CMakeLists.txt); seed: fuzz/corpus/onnx/ (tests/io/onnx/make_fuzz_seed.py).
#include <cstdint>
#include <string>
#include <string_view>

#include "io/onnx/import.h"
#include "resnet/error.h"
#include "resnet/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    resnet::Model m = resnet::import_onnx_bytes(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.onnx");
    (void)m.count_params();
    const resnet::Shape in = m.input_shapes()[0];
    if (in.numel() <= 4096) (void)m.predict(resnet::Tensor(in.prepend(1)));
  } catch (const resnet::Error&) {
  }
  return 0;
}
