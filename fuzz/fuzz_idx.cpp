// Fuzz target: the IDX loader (load_idx: MNIST/Fashion-MNIST images + labels, plain or gzip).
// The input is two files: a 4-byte little-endian length n, then n bytes of the images file
// (n clamped to what is left), then the labels file. Any input must load or throw
// resnet::Error. Seeds: fuzz_make_seed_corpus DIR writes DIR/idx/.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "fuzz_common.h"
#include "resnet/data.h"
#include "resnet/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uint32_t n = 0;
  if (size >= 4) std::memcpy(&n, data, 4);
  const size_t head = std::min<size_t>(4, size);
  const size_t images = std::min<size_t>(n, size - head);
  const auto dir = resnet_fuzz::work_dir();
  if (!resnet_fuzz::write_file(dir / "images-idx3-ubyte", data + head, images) ||
      !resnet_fuzz::write_file(dir / "labels-idx1-ubyte", data + head + images,
                               size - head - images)) {
    return 0;
  }
  try {
    const resnet::Dataset d = resnet::load_idx((dir / "images-idx3-ubyte").string(),
                                               (dir / "labels-idx1-ubyte").string());
    (void)d.size();
  } catch (const resnet::Error&) {
  }
  return 0;
}
