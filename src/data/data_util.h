// Helpers shared by the dataset loaders (internal).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "resnet/data.h"

namespace resnet::data_detail {

// The most elements a loader allocates for one array: a corrupt header claiming more is refused
// before anything is allocated (2^31 bytes of uint8 images is far beyond any dataset we load
// whole).
constexpr int64_t kMaxElements = int64_t{1} << 31;

// Product of `dims`, or -1 when any is negative or the product exceeds kMaxElements.
int64_t checked_numel(const std::vector<int64_t>& dims);

// Sets num_classes = max(class_names.size(), max label + 1), pads class_names with the label
// numbers when the labels go beyond them, then validates (throws IoError naming `d.source`).
void finish_dataset(Dataset& d);

}  // namespace resnet::data_detail
