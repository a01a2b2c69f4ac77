// Synchronous data-parallel training: sharding, bucketed gradient averaging overlapped with
// backward, parameter broadcast, buffer averaging, SyncBN.
#include "dist/data_parallel.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "dist/comm.h"
#include "layers/batch_normalization.h"
#include "ops/ops.h"
#include "resnet/runtime.h"

namespace resnet::dist::detail {

std::pair<int64_t, int64_t> shard_range(int64_t n, int rank, int size) {
  const int64_t base = n / size, extra = n % size;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

// ---------------------------------------------------------------------------------------------
GradientReducer::GradientReducer(Model& model, int64_t bucket_bytes) {
  const int64_t cap = std::max<int64_t>(1, bucket_bytes / static_cast<int64_t>(sizeof(float)));
  // Backward visits layers in reverse order: bucket parameters that way, so the first bucket is
  // complete first.
  const auto& layers = model.layers();
  for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
    Layer& l = **it;
    if (!l.trainable()) continue;
    for (Param& p : l.params()) {
      if (!p.trainable) continue;
      const int64_t n = p.value.numel();
      if (buckets_.empty() || (static_cast<int64_t>(buckets_.back().data.size()) + n > cap &&
                               !buckets_.back().slots.empty())) {
        buckets_.emplace_back();
      }
      Bucket& b = buckets_.back();
      const int si = static_cast<int>(slots_.size());
      slots_.push_back(
          {&p, static_cast<int>(buckets_.size()) - 1, static_cast<int64_t>(b.data.size())});
      b.data.resize(b.data.size() + n);
      b.slots.push_back(si);
      by_layer_[&l].push_back(si);
    }
  }
}

void GradientReducer::begin_step() {
  for (Slot& s : slots_) s.filled = false;
  for (Bucket& b : buckets_) {
    b.pending = static_cast<int>(b.slots.size());
    b.handle = -1;
  }
  next_start_ = 0;
  next_test_ = 0;
}

void GradientReducer::fill(Slot& s) {
  if (s.filled) return;
  Bucket& b = buckets_[s.bucket];
  float* dst = b.data.data() + s.offset;
  const int64_t n = s.param->value.numel();
  const Tensor& g = s.param->grad;
  if (g.defined() && g.numel() == n) {
    const Tensor gp = ops::plain(g);
    std::copy_n(gp.f32(), n, dst);
  } else {
    // No gradient (the optimizer will say so, as in one process): contribute zeros.
    std::fill_n(dst, n, 0.0f);
  }
  s.filled = true;
  --b.pending;
}

void GradientReducer::start_ready() {
  while (next_start_ < buckets_.size() && buckets_[next_start_].pending == 0) {
    Bucket& b = buckets_[next_start_];
    b.handle = start_sum(
        b.data.data(), static_cast<int64_t>(b.data.size()), Channel::Grad,
        fmt::format("the gradient allreduce (bucket {} of {})", next_start_ + 1, buckets_.size()));
    ++next_start_;
  }
}

void GradientReducer::layer_done(Layer& layer) {
  const auto it = by_layer_.find(&layer);
  if (it == by_layer_.end()) return;
  for (int si : it->second) fill(slots_[si]);
  start_ready();
  // Non-blocking collectives progress only inside MPI calls: poke the oldest one in flight.
  while (next_test_ < next_start_ && test(buckets_[next_test_].handle)) ++next_test_;
}

void GradientReducer::finish(const std::function<void(Param& param)>& reduced) {
  const auto t0 = std::chrono::steady_clock::now();
  early_ += static_cast<int64_t>(next_start_);
  ++steps_;
  for (Slot& s : slots_) fill(s);
  start_ready();
  const float inv = 1.0f / static_cast<float>(dist::size());
  for (Bucket& b : buckets_) {
    wait(b.handle);
    b.handle = -1;
    for (int si : b.slots) {
      Slot& s = slots_[si];
      if (!s.param->grad.defined()) continue;
      Tensor g = Tensor::empty(s.param->value.shape());
      const float* src = b.data.data() + s.offset;
      float* dst = g.f32();
      const int64_t n = g.numel();
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i] * inv;
      s.param->grad = g;
      if (reduced) reduced(*s.param);
    }
  }
  wait_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// ---------------------------------------------------------------------------------------------
namespace {
class MpiBatchNormSync : public layers::BatchNormSync {
 public:
  void combine_moments(double& count, std::vector<double>& mean, std::vector<double>& m2) override {
    const int64_t c = static_cast<int64_t>(mean.size());
    const int64_t w = 1 + 2 * c;
    std::vector<double> send(w);
    send[0] = count;
    std::copy(mean.begin(), mean.end(), send.begin() + 1);
    std::copy(m2.begin(), m2.end(), send.begin() + 1 + c);
    std::vector<double> all(static_cast<size_t>(w) * dist::size());
    gather_all(send.data(), w, all.data(), Channel::Bn, "the synchronized batch-norm statistics");
    // Chan et al.'s pairwise combination, in rank order: identical on every rank, and stable.
    double n = 0.0;
    std::vector<double> mu(c, 0.0), s2(c, 0.0);
    for (int r = 0; r < dist::size(); ++r) {
      const double* row = all.data() + static_cast<size_t>(r) * w;
      const double nr = row[0];
      if (!(nr > 0)) continue;
      const double tot = n + nr;
      for (int64_t j = 0; j < c; ++j) {
        const double delta = row[1 + j] - mu[j];
        mu[j] += delta * (nr / tot);
        s2[j] += row[1 + c + j] + delta * delta * (n * nr / tot);
      }
      n = tot;
    }
    count = n;
    mean = std::move(mu);
    m2 = std::move(s2);
  }
  void sum(std::vector<double>& values) override {
    detail::sum(values.data(), static_cast<int64_t>(values.size()), Channel::Bn,
                "the synchronized batch-norm gradient sums");
  }
};

void set_sync_bn(Model& model, const std::shared_ptr<layers::BatchNormSync>& sync) {
  for (const auto& l : model.layers()) {
    if (auto* bn = dynamic_cast<layers::BatchNormalization*>(l.get())) bn->set_sync(sync);
  }
}
}  // namespace

int64_t bucket_bytes_or_default(int64_t bytes) {
  if (bytes > 0) return bytes;
  return runtime_options().dist_bucket_kb * 1024;
}

DataParallel::DataParallel(Model& model, bool sync_bn, int64_t bucket_bytes)
    : model_(model), sync_bn_(sync_bn), reducer_(model, bucket_bytes_or_default(bucket_bytes)) {
  hook_ = model_.add_grad_ready_hook([this](Layer& l) { reducer_.layer_done(l); });
  if (sync_bn_) set_sync_bn(model_, std::make_shared<MpiBatchNormSync>());
}

DataParallel::~DataParallel() {
  // RESNET_DIST_VERBOSE=1: how much of the gradient reduction overlapped with backward.
  if (runtime_options().dist_verbose && dist::rank() == 0 && reducer_.steps() > 0) {
    std::fprintf(stderr,
                 "resnet: data-parallel: %d ranks, %lld gradient bucket(s); on average %.2f "
                 "started during backward and %.2f ms spent waiting after backward per step "
                 "(%lld steps)\n",
                 dist::size(), static_cast<long long>(reducer_.buckets()),
                 static_cast<double>(reducer_.started_during_backward()) /
                     static_cast<double>(reducer_.steps()),
                 1000.0 * reducer_.wait_seconds() / static_cast<double>(reducer_.steps()),
                 static_cast<long long>(reducer_.steps()));
  }
  model_.remove_grad_ready_hook(hook_);
  if (sync_bn_) set_sync_bn(model_, nullptr);
}

void DataParallel::broadcast_parameters() {
  for (Param* p : model_.params()) {
    if (!p->value.is_plain()) p->value = ops::plain(p->value).clone();
    broadcast(p->value.f32(), p->value.numel(), 0, Channel::Misc,
              fmt::format("the initial weights ({})", p->name));
    p->value.bump_version();
  }
}

std::vector<int64_t> DataParallel::shard_order(const std::vector<int64_t>& global, int64_t batch,
                                               std::vector<int64_t>& global_batch_sizes) const {
  std::vector<int64_t> mine;
  global_batch_sizes.clear();
  const int64_t total = static_cast<int64_t>(global.size());
  for (int64_t b = 0; b < total; b += batch) {
    const int64_t n = std::min(batch, total - b);
    if (n < dist::size()) break;  // a trailing batch smaller than the number of ranks: dropped
    const auto [lo, hi] = shard_range(n, dist::rank(), dist::size());
    mine.insert(mine.end(), global.begin() + b + lo, global.begin() + b + hi);
    global_batch_sizes.push_back(n);
  }
  return mine;
}

double DataParallel::grad_scale(int64_t global_batch) const {
  const auto [lo, hi] = shard_range(global_batch, dist::rank(), dist::size());
  return static_cast<double>(hi - lo) * dist::size() / static_cast<double>(global_batch);
}

void DataParallel::sum_stats(std::vector<double>& values) {
  sum(values.data(), static_cast<int64_t>(values.size()), Channel::Misc,
      "the loss and metric sums");
}

void DataParallel::average_buffers() {
  if (sync_bn_) return;
  for (Param* p : model_.params()) {
    if (p->trainable) continue;
    if (!p->value.is_plain()) p->value = ops::plain(p->value).clone();
    float* v = p->value.f32();
    const int64_t n = p->value.numel();
    std::vector<double> d(v, v + n);
    sum(d.data(), n, Channel::Misc, fmt::format("the moving statistics ({})", p->name));
    for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(d[i] / dist::size());
    p->value.bump_version();
  }
}

}  // namespace resnet::dist::detail
