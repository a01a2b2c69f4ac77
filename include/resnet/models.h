// Model zoo: the residual blocks of the deeplearning.ai tutorial and the ResNet builders.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "resnet/layers.h"
#include "resnet/model.h"

namespace resnet {

// The tutorial's identity block: three convolutions (1x1, f x f 'same', 1x1) with batch norm,
// the input added unchanged before the last ReLU. `filters` = {F1, F2, F3}; the input must have F3
// channels. Layer names: res{stage}{block}_branch2a/2b/2c and bn{stage}{block}_branch2a/2b/2c.
SymTensor identity_block(const SymTensor& x, int64_t f, std::array<int64_t, 3> filters, int stage,
                         const std::string& block);

// The tutorial's convolutional block: like the identity block, with stride `s` on the first 1x1
// convolution and a 1x1 convolution + batch norm (res{stage}{block}_branch1) on the shortcut.
SymTensor convolutional_block(const SymTensor& x, int64_t f, std::array<int64_t, 3> filters,
                              int stage, const std::string& block, int64_t s = 2);

}  // namespace resnet
