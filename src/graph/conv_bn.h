// The one matcher of "a convolution followed by its batch norm" (y = BN(conv(x))), shared by the
// inference plan (which fuses the pair), the pointwise recomputation (which replays it) and the
// ONNX exporter (which folds it), so the three always agree on what a pair is.
#pragma once

#include <vector>

#include "resnet/model.h"

namespace resnet::graph_detail {

// Indices into Model::layers().
struct ConvBn {
  int conv = -1;
  int bn = -1;
};

// Every pair of a Conv2D with a linear activation and a BatchNormalization whose only input is
// that convolution's output, when the convolution's output is used by nothing else and is not a
// model output (folding or dropping it would lose it). In layer order.
std::vector<ConvBn> conv_bn_pairs(const Model& model);

}  // namespace resnet::graph_detail
