// Training beside the graph: what compile() fixes on a Model (optimizer, loss, metrics) and the
// Keras loop over it (train_step, fit, evaluate). The Model runs forward and backward (src/graph);
// the Trainer decides what to do with them. Model's compile/fit/evaluate/train_step are thin
// calls to the Trainer it owns (src/train/trainer.cpp).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "resnet/model.h"
#include "resnet/optim.h"
#include "resnet/train.h"

namespace resnet {

class Trainer {
 public:
  // Checks the options against the model (metrics, one output) and picks the fused softmax
  // cross-entropy when the model ends in a softmax. Throws ConfigError naming the model.
  Trainer(const Model& model, CompileOptions options);

  // One optimizer step on a batch; see Model::train_step.
  double train_step(Model& model, const Tensor& x, const Tensor& targets, Logs* metric_sums);
  History fit(Model& model, const Dataset& train, const FitOptions& options);
  Logs evaluate(Model& model, const Dataset& data, const EvaluateOptions& options);

  CompileOptions options;
  std::shared_ptr<Optimizer> optimizer;
  LossKind loss = LossKind::CategoricalCrossentropy;
  // Cross-entropy after a softmax output layer: the loss is computed from that layer's logits.
  Layer* softmax_output = nullptr;
  bool accuracy = false;
  bool top_k = false;
  bool mae = false;
};

}  // namespace resnet
