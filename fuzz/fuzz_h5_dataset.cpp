// Fuzz target: the SIGNS-style HDF5 dataset loader (load_h5_dataset, default and explicit dataset
// names). Any input must load or throw resnet::Error; anything else (a crash, a hang, another
// exception) is a finding. Seeds: fuzz_make_seed_corpus DIR writes DIR/h5_dataset/.
#include <cstdint>

#include "fuzz_common.h"
#include "resnet/data.h"
#include "resnet/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = resnet_fuzz::work_dir() / "dataset.h5";
  if (!resnet_fuzz::write_file(path, data, size)) return 0;
  try {
    const resnet::Dataset d = resnet::load_h5_dataset(path.string());
    (void)d.size();
  } catch (const resnet::Error&) {
  }
  try {
    (void)resnet::load_h5_dataset(
        path.string(), {.x = "train_set_x", .y = "train_set_y", .classes = "list_classes"});
  } catch (const resnet::Error&) {
  }
  return 0;
}
