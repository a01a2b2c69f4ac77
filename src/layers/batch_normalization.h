// BatchNormalization over the last (channel) axis, Keras semantics.
//
//   y = gamma * (x - mean) / sqrt(var + epsilon) + beta
// Shapes: x and y (N, ..., C), viewed as (M, C) with M = N*H*W; gamma, beta, moving_mean,
// moving_variance (C).
// Training mode (trainable layer): mean/var are the batch mean and biased variance, and
//   moving_mean     = moving_mean * momentum + mean * (1 - momentum)
//   moving_variance = moving_variance * momentum + var * M/(M-1) * (1 - momentum)
// (Bessel-corrected, as Keras's fused path). Inference mode, or a non-trainable layer (Keras runs
// a frozen BN in inference mode), normalizes with the moving statistics and updates nothing.
// Gradient: dbeta = sum_M dy, dgamma = sum_M dy * xhat; dx of the training form (statistics depend
// on x) or, after an inference-mode forward, dx = dy * gamma / sqrt(moving_variance + epsilon).
// gamma (beta) is always created; with scale (center) false it stays 1 (0) and is not trainable.
#pragma once

#include <memory>
#include <vector>

#include "resnet/layers.h"

namespace resnet::layers {

// Synchronized batch normalization across processes (data-parallel training; src/dist/
// implements it over MPI). Both calls are collectives: every process calls them in the same order.
class BatchNormSync {
 public:
  virtual ~BatchNormSync() = default;
  // In: this process's sample count, per-channel mean and M2 (sum of squared deviations from that
  // mean). Out: the same over the samples of every process, identical on every process.
  virtual void combine_moments(double& count, std::vector<double>& mean,
                               std::vector<double>& m2) = 0;
  // Element-wise sums over every process, in place.
  virtual void sum(std::vector<double>& values) = 0;
};

class BatchNormalization : public Layer {
 public:
  explicit BatchNormalization(BatchNormalizationOptions o);

  const BatchNormalizationOptions& options() const { return o_; }
  // update_bn (src/train/update_bn.cpp) averages batch statistics with a changing momentum.
  void set_momentum(double momentum) { o_.momentum = momentum; }

  Config config() const override;
  static std::shared_ptr<Layer> from_config(const Config& c);
  double params_needed(const std::vector<Shape>& inputs) const override;
  Shape infer(const std::vector<Shape>& inputs) const override;
  void build(const std::vector<Shape>& inputs) override;
  Tensor forward(const std::vector<Tensor>& inputs, Mode mode) override;
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>& need_dx) override;
  void clear_saved() override;
  // With a BatchNormSync, Training-mode batch statistics and the matching backward terms cover
  // the samples of every process (SyncBN); null (the default): this batch only, unchanged.
  void set_sync(std::shared_ptr<BatchNormSync> sync) { sync_ = std::move(sync); }
  bool replayable() const override { return sync_ == nullptr; }

 private:
  Tensor forward_synced(const Tensor& x, Tensor& mean, Tensor& var);
  std::vector<Tensor> backward_synced(const Tensor& dy, const std::vector<bool>& need_dx);

  BatchNormalizationOptions o_;
  int64_t batched_rank_ = 0;  // rank of the batched input, known once built
  // Saved in Training mode: input, the statistics used, and whether they were batch statistics.
  Tensor x_, mean_, var_;
  bool stats_fixed_ = false;
  std::shared_ptr<BatchNormSync> sync_;
  bool synced_ = false;      // the last Training forward used synchronized statistics
  double sync_count_ = 0.0;  // ... over this many samples (all processes)
};

}  // namespace resnet::layers
