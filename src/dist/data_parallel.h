// Synchronous data-parallel training, one process's part (used by Model::fit when dist::active()).
//
//  - Sharding: every rank walks the same global order (same seed); global batch b of n samples is
//    split into contiguous shards, rank r taking [r*n/R + min(r, n%R) ...) -- sizes differ by at
//    most one. A trailing global batch with fewer samples than ranks is dropped (all ranks).
//  - Gradients: each rank scales its loss gradient by n_r * R / n (1 when the shards are even) and
//    the reduced gradient is the plain average over ranks, so the step equals the one a single
//    process takes on the whole global batch. Parameters are bucketed (~4 MB, backward order);
//    a bucket's non-blocking allreduce starts as soon as every gradient in it is final.
//  - SyncBN: BatchNormalization layers get a BatchNormSync that combines the statistics.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "resnet/model.h"

namespace resnet::dist::detail {

// [begin, end) of `rank`'s shard of a global batch of n samples over `size` ranks.
std::pair<int64_t, int64_t> shard_range(int64_t n, int rank, int size);

class GradientReducer {
 public:
  GradientReducer(Model& model, int64_t bucket_bytes);
  // Call before backward: resets the buckets.
  void begin_step();
  // The model's grad-ready hook: copies the layer's gradients into their buckets, starts every
  // bucket that became complete (in bucket order, identical on every rank) and drives progress.
  void layer_done(Layer& layer);
  // Starts what is left, waits for everything and writes the averaged gradients back, bucket by
  // bucket; `reduced` (when set) is called for each parameter as soon as its averaged gradient is
  // in place (train steps update it then, and release the gradient).
  void finish(const std::function<void(Param& param)>& reduced = {});
  int64_t buckets() const { return static_cast<int64_t>(buckets_.size()); }
  // Over the steps so far: buckets whose allreduce started before backward ended, and steps.
  int64_t started_during_backward() const { return early_; }
  int64_t steps() const { return steps_; }
  // Seconds spent in finish() (the part of the reduction not hidden behind backward).
  double wait_seconds() const { return wait_s_; }

 private:
  struct Slot {
    Param* param;
    int bucket;
    int64_t offset;
    bool filled = false;
  };
  struct Bucket {
    std::vector<float> data;
    std::vector<int> slots;
    int pending = 0;
    int handle = -1;
  };
  void fill(Slot& s);
  void start_ready();

  std::vector<Slot> slots_;
  std::vector<Bucket> buckets_;
  std::unordered_map<const Layer*, std::vector<int>> by_layer_;
  size_t next_start_ = 0;
  size_t next_test_ = 0;
  int64_t early_ = 0;
  int64_t steps_ = 0;
  double wait_s_ = 0.0;
};

class DataParallel {
 public:
  // Installs the gradient hook (and SyncBN with sync_bn) on `model`; the destructor removes them.
  // Buckets hold about `bucket_bytes` of gradients; 0 takes RESNET_DIST_BUCKET_KB from the
  // environment, else 4 MB.
  DataParallel(Model& model, bool sync_bn, int64_t bucket_bytes = 0);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  // Every parameter (trainable or not) takes rank 0's values.
  void broadcast_parameters();
  // This rank's sample order for an epoch over `global` order in batches of `batch`: the shard of
  // every global batch, concatenated. Fills the global size of every batch kept.
  std::vector<int64_t> shard_order(const std::vector<int64_t>& global, int64_t batch,
                                   std::vector<int64_t>& global_batch_sizes) const;
  // Loss-gradient factor n_r * R / n for this rank's shard of a global batch of n.
  double grad_scale(int64_t global_batch) const;

  GradientReducer& reducer() { return reducer_; }
  // Sums of per-step statistics over ranks (loss * n, n, metric sums), in place.
  void sum_stats(std::vector<double>& values);
  // Averages the non-trainable parameters (BatchNormalization moving statistics, which per-rank
  // statistics make differ) so every rank holds the same model. Nothing to do with SyncBN.
  void average_buffers();

 private:
  Model& model_;
  bool sync_bn_;
  GradientReducer reducer_;
  Model::HookId hook_ = 0;
};

}  // namespace resnet::dist::detail
