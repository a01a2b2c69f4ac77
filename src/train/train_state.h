// What compile() fixes on a Model.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "resnet/model.h"
#include "resnet/optim.h"

namespace resnet {

struct Model::TrainState {
  CompileOptions options;
  std::shared_ptr<Optimizer> optimizer;
  LossKind loss = LossKind::CategoricalCrossentropy;
  // Cross-entropy after a softmax output layer: the loss is computed from that layer's logits.
  Layer* softmax_output = nullptr;
  bool accuracy = false;
  bool top_k = false;
};

}  // namespace resnet
