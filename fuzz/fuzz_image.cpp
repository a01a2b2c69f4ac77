// Fuzz target: the image decoder of load_image and load_image_folder (stb_image: PNG, JPEG, BMP,
// GIF, ...), at the file's size and resized to a size (1..64 each way) drawn from its first bytes.
// The file is named .png, but stb_image detects the format from the content. Any input must load or
// throw resnet::Error. Seeds: fuzz_make_seed_corpus DIR writes DIR/image/; past findings:
// fuzz/regressions/image/.
#include <cstdint>
#include <filesystem>

#include "fuzz_common.h"
#include "resnet/data.h"
#include "resnet/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto root = resnet_fuzz::work_dir() / "images";
  std::filesystem::create_directories(root / "a");
  const auto path = root / "a" / "input.png";
  if (!resnet_fuzz::write_file(path, data, size)) return 0;
  try {
    (void)resnet::load_image(path.string(), 0, 0, 3).numel();
  } catch (const resnet::Error&) {
  }
  try {
    (void)resnet::load_image(path.string(), 0, 0, 1).numel();
  } catch (const resnet::Error&) {
  }
  // Resized to a size picked by the first bytes (1..64 each way), through our own resizer.
  const int64_t h = size > 0 ? 1 + data[0] % 64 : 8;
  const int64_t w = size > 1 ? 1 + data[1] % 64 : 8;
  try {
    (void)resnet::load_image(path.string(), h, w, 3).numel();
  } catch (const resnet::Error&) {
  }
  return 0;
}
